"""The onboarding sweep: every CRM record in a folder, its metadata found, checked and compared.

For each record (``*.toml``, ``*.json``) :func:`run_sweep` loads it (a record that does not
load is that partner's CRM201 finding) and takes the IdP's metadata from the same trust sources,
in the same order, as the live test login (:mod:`validator.sweep_sources`): the newest metadata
uploaded for the biller in the web app, the record's ``idp.metadata_file``, its
``idp.signing_certificates`` (no metadata: each certificate's expiry is checked, nothing is
compared or kept), then ``idp.metadata_url`` fetched with the safe fetcher. A document is judged
against the record exactly as ``saml-validate metadata SOURCE --crm RECORD`` does; then compared
with the partner's last good copy (:mod:`validator.sweep_history`), whichever source gave either;
the sweep says which certificate signs, and keeps the history:

* the last good copy is replaced only by a copy whose checks found no error; a failed
  fetch, an unreadable file, an HTML page or a malformed document never overwrites or deletes it;
* one summary per partner is appended to its capped run log.

Records are loaded first, in the calling thread (two records with one biller ID would share
history: CRM203); partners are then swept by a bounded pool of threads, each fetch bounded by
the fetcher's timeouts, each partner step by step (:mod:`validator.sweep_partner`). Only
failures of the tool itself raise (a bug); a store that is down is the partner's CRM204.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from metadata.config import FORMATS as RECORD_SUFFIXES
from metadata.crm import load_crm
from metadata.errors import CRMRecordError
from metadata.schema import prepare as prepare_schemas
from metadata.store import Store
from validator.errors import UsageError
from validator.findings import Severity
from validator.sweep_partner import CHANGE_CODES, PartnerResult, RecordEntry, SweepOptions, sweep_partner

if TYPE_CHECKING:
    from metadata.fetch import FetchPolicy

__all__ = ["CHANGE_CODES", "SCHEMA", "PartnerResult", "SweepOptions", "SweepResult", "fetch_policy",
           "open_sweep_store", "record_files", "run_sweep"]

SCHEMA = "saml-preflight/sweep/v1"


@dataclass(frozen=True)
class SweepResult:
    folder: str
    clock: datetime
    warn_days: int
    partners: tuple[PartnerResult, ...]

    def exit_code(self, *, strict: bool = False) -> int:
        return max((p.report.exit_code(strict=strict) for p in self.partners), default=0)

    def count(self, severity: Severity) -> int:
        return sum(p.report.count(severity) for p in self.partners)


def record_files(folder: Path) -> list[Path]:
    """The CRM records in `folder` (not its subfolders), sorted; UsageError when there is none."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in RECORD_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not files:
        raise UsageError(f"{folder} holds no CRM record (*.toml or *.json)")
    return files


def fetch_policy(allow_http: bool) -> FetchPolicy:
    """The command line's fetch policy: the secure defaults, plain http only when asked for."""
    from metadata.fetch import FetchPolicy

    return FetchPolicy(allow_http=allow_http)


def open_sweep_store(url: str | None) -> Store:
    """``--store URL``, else ``$VALIDATOR_STORE``, else the web app's default store
    (:func:`validator.store_location.open_web_store`, in the per-user data folder): sharing the web
    app's store lets the sweep read which certificate verified a partner's last test login."""
    from validator.store_location import open_web_store

    return open_web_store(url)


def run_sweep(
    folder: Path, options: SweepOptions, store: Store, *, progress: Callable[[PartnerResult], None] | None = None
) -> SweepResult:
    """Sweep every record in `folder`; `progress` is called (in this thread) as each partner finishes."""
    entries = _load(record_files(folder))
    prepare_schemas("metadata", options.concurrency)  # no compile while the threads parse (metadata.schema)
    results: dict[Path, PartnerResult] = {}
    with ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="sweep") as pool:
        futures: dict[Future[PartnerResult], Path] = {
            pool.submit(sweep_partner, entry, options, store): entry.path for entry in entries
        }
        try:
            for future in as_completed(futures):
                results[futures[future]] = result = future.result()
                if progress is not None:
                    progress(result)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return SweepResult(str(folder), options.now, options.warn_days, tuple(results[e.path] for e in entries))


def _load(paths: list[Path]) -> list[RecordEntry]:
    entries: list[RecordEntry] = []
    for path in paths:
        try:
            entries.append(RecordEntry(path, load_crm(path), None))
        except CRMRecordError as exc:
            entries.append(RecordEntry(path, None, exc))
    ids = Counter(e.record.biller.id for e in entries if e.record is not None)
    return [replace(e, duplicate=True) if e.record is not None and ids[e.record.biller.id] > 1 else e
            for e in entries]
