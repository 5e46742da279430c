"""The onboarding sweep: every CRM record in a folder, its metadata fetched, checked and compared.

For each record (``*.toml``, ``*.json``) :func:`run_sweep` loads it (a record that does not
load is that partner's CRM201 finding), fetches ``idp.metadata_url`` with the safe fetcher
and runs the ordinary metadata checks against the record, exactly as ``saml-validate
metadata URL --crm RECORD`` does; then compares the result with the partner's last good copy
(:mod:`validator.sweep_history`), says which certificate signs, and keeps the history:

* the last good copy is replaced only after a fetch whose checks found no error; a failed
  fetch, an HTML page or a malformed document never overwrites or deletes it;
* one summary per partner is appended to its capped run log.

Records are loaded first, in the calling thread (two records with one biller ID would share
history: CRM203); partners are then swept by a bounded pool of threads, each fetch bounded by
the fetcher's timeouts. Only failures of the tool itself raise (a store that is down, a bug).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from metadata.config import FORMATS as RECORD_SUFFIXES
from metadata.crm import CRMRecord, load_crm
from metadata.errors import CRMRecordError
from metadata.store import Store, StoreUnavailable, open_store
from metadata.xml import MiB
from validator.checks.crm_record import check_record
from validator.checks.sweep import (
    DUPLICATE_BILLER,
    HISTORY_UNAVAILABLE,
    NO_METADATA_URL,
    RECORD_UNREADABLE,
    Signer,
    Snapshot,
    SnapshotCertificate,
    choose_signer,
    compare,
    signer_finding,
)
from validator.errors import UsageError
from validator.findings import Severity
from validator.inspection import MetadataInspection, MetadataOptions, inspect_fetched
from validator.metadata_facts import metadata_facts
from validator.metadata_fetch import fetch_metadata
from validator.report import Report
from validator.sweep_history import (
    LastGood,
    SeenSigner,
    append_run,
    keep_last_good,
    last_signer,
    read_last_good,
    snapshot_from_facts,
)

if TYPE_CHECKING:
    from metadata.fetch import FetchPolicy

SCHEMA = "saml-preflight/sweep/v1"
CHANGE_CODES = {"MD020": "entity ID", "MD021": "SSO endpoint", "KEY020": "certificate added",
                "KEY021": "certificate removed"}


@dataclass(frozen=True)
class SweepOptions:
    now: datetime
    """The clock every partner is judged against, and the time recorded in the history."""
    warn_days: int = 30
    """Warn (KEY006) when a signing certificate expires within this many days."""
    concurrency: int = 8
    """Partners swept at once."""
    fetch_policy: FetchPolicy | None = None
    """How metadata URLs are fetched; None means FetchPolicy's secure defaults."""
    max_bytes: int = 5 * MiB
    record_history: bool = True
    """Write the last good copy and the run log; off for a what-if sweep (``--now``), which reads them."""


@dataclass
class PartnerResult:
    record: str
    """The record's file name within the folder."""
    report: Report
    biller_id: str | None = None
    biller_name: str | None = None
    certificates: tuple[SnapshotCertificate, ...] = ()
    """The signing certificates now, or in the last good copy when none could be read now."""
    certificates_from: str | None = None
    """``metadata`` (this run) or ``last good copy``."""
    signer: Signer | None = None
    test_login: SeenSigner | None = None
    """The clean test login that showed the signer, when that is how it is known."""
    changes: list[str] = field(default_factory=list)
    """Short labels of what changed since the last good copy, for the summary table."""
    history: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def name(self) -> str:
        if self.biller_id is None:
            return self.record
        return f"{self.biller_id} {self.biller_name}".strip() if self.biller_name else self.biller_id

    def next_expiry(self, now: datetime) -> SnapshotCertificate | None:
        """The signing certificate that expires next (the last one to have expired when all have)."""
        ahead = [c for c in self.certificates if c.not_after >= now]
        if ahead:
            return min(ahead, key=lambda c: c.not_after)
        return max(self.certificates, key=lambda c: c.not_after, default=None)


@dataclass
class SweepResult:
    folder: str
    clock: datetime
    warn_days: int
    partners: list[PartnerResult]

    def exit_code(self, *, strict: bool = False) -> int:
        return max((p.report.exit_code(strict=strict) for p in self.partners), default=0)

    def count(self, severity: Severity) -> int:
        return sum(p.report.count(severity) for p in self.partners)


@dataclass(frozen=True)
class _Entry:
    path: Path
    record: CRMRecord | None
    error: CRMRecordError | None
    duplicate: bool = False


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
    """``--store URL``, else ``$VALIDATOR_STORE``, else the web app's SQLite file in the working
    directory: sharing the web app's store lets the sweep read which certificate verified a
    partner's last test login."""
    import os

    from validator.web import DEFAULT_STORE

    return open_store(url or os.environ.get("VALIDATOR_STORE"), Path.cwd() / DEFAULT_STORE)


def run_sweep(
    folder: Path, options: SweepOptions, store: Store, *, progress: Callable[[PartnerResult], None] | None = None
) -> SweepResult:
    """Sweep every record in `folder`; `progress` is called (in this thread) as each partner finishes."""
    entries = _load(record_files(folder))
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
    return SweepResult(str(folder), options.now, options.warn_days, [results[e.path] for e in entries])


def _load(paths: list[Path]) -> list[_Entry]:
    entries: list[_Entry] = []
    for path in paths:
        try:
            entries.append(_Entry(path, load_crm(path), None))
        except CRMRecordError as exc:
            entries.append(_Entry(path, None, exc))
    ids = Counter(e.record.biller.id for e in entries if e.record is not None)
    return [replace(e, duplicate=True) if e.record is not None and ids[e.record.biller.id] > 1 else e
            for e in entries]


def sweep_partner(entry: _Entry, options: SweepOptions, store: Store) -> PartnerResult:
    """One partner; a store that fails is that partner's finding (CRM204), never the sweep's end."""
    try:
        return _sweep_partner(entry, options, store)
    except StoreUnavailable as exc:
        name = entry.path.name
        report = Report(subject="metadata", inputs={"crm": name}, clock=options.now)
        report.findings.append(HISTORY_UNAVAILABLE.finding(str(exc), where=name))
        result = PartnerResult(name, report)
        if entry.record is not None:
            result.biller_id, result.biller_name = entry.record.biller.id, entry.record.biller.name
        result.history = dict(_STORE_DOWN)
        report.facts["sweep"] = _facts(result, options)
        return result


_STORE_DOWN = {"replaced": False, "kept": "the store did not answer: no history was written"}
_T = TypeVar("_T")


def _sweep_partner(entry: _Entry, options: SweepOptions, store: Store) -> PartnerResult:
    started = time.perf_counter()
    name = entry.path.name
    # Subjects are added as they run, so that JUnit lists only checks that ran.
    report = Report(subject="metadata", inputs={"crm": name}, clock=options.now)
    result = PartnerResult(name, report)
    if entry.record is None:
        assert entry.error is not None
        report.extend(RECORD_UNREADABLE.finding(f"{path}: {problem}", where=f"{name}: {path}")
                      for path, problem in entry.error.problems)
        result.history = {"replaced": False, "kept": "the record did not load, so no history was read or written"}
        report.facts["sweep"] = _facts(result, options)
        result.seconds = time.perf_counter() - started
        return result
    record = entry.record
    result.biller_id, result.biller_name = record.biller.id, record.biller.name
    report.facts["biller"] = {"id": record.biller.id, "name": record.biller.name}
    report.subjects_run += ("crm-record",)
    report.extend(check_record(record, name))
    if entry.duplicate:
        report.findings.append(DUPLICATE_BILLER.finding(
            f"another record in the folder also has the biller ID {record.biller.id!r}", where="biller.id",
            actual=record.biller.id))
    url = record.idp.metadata_url
    if not url:
        report.findings.append(NO_METADATA_URL.finding("the record names no metadata URL to fetch",
                                                       where="idp.metadata_url"))
    failed: list[StoreUnavailable] = []  # the first store failure: CRM204 beside the partner's own findings

    def stored(call: Callable[[], _T], default: _T) -> _T:
        if failed:
            return default
        try:
            return call()
        except StoreUnavailable as exc:
            failed.append(exc)
            report.findings.append(HISTORY_UNAVAILABLE.finding(str(exc), where=name))
            return default

    previous = stored(lambda: read_last_good(store, record.biller.id), None) if not entry.duplicate else None
    current: Snapshot | None = None
    body: bytes | None = None
    metadata_errors = 0
    if url:
        inspection, body = fetch_and_inspect(url, options, record)
        report.inputs["metadata"] = inspection.shown
        report.subjects_run += inspection.subjects_run
        report.findings.extend(inspection.findings)
        report.facts.update(metadata_facts(inspection, warn_days=False))
        metadata_errors = sum(1 for f in inspection.findings if f.severity is Severity.ERROR)
        current = snapshot_from_facts(report.facts) if body is not None else None
    where = report.inputs.get("metadata", "metadata")
    if previous is not None and current is not None:
        report.subjects_run += ("sweep",)
        report.extend(compare(previous.snapshot, current, since=previous.fetched_at, where=where))
    shown = current or (previous.snapshot if previous else None)
    if shown is not None:
        result.certificates = shown.certificates
        result.certificates_from = "metadata" if current is not None else "last good copy"
        seen = stored(lambda: last_signer(store, record.biller.id), None)
        result.signer = choose_signer(shown.certificates, options.now,
                                      seen=(seen.sha256, seen.verified_at) if seen else None)
        if result.signer is not None and result.signer.how == "test-login" and seen is not None:
            result.test_login = seen
        if result.signer is not None and current is not None:
            report.findings.append(signer_finding(result.signer, where))
    counts = Counter(CHANGE_CODES[f.code] for f in report.findings if f.code in CHANGE_CODES)
    result.changes = [label if n == 1 else f"{label} ×{n}" for label, n in counts.items()]
    good = body is not None and current is not None and metadata_errors == 0
    if entry.duplicate:
        result.history = {"replaced": False,
                          "kept": "history untouched: another record has the same biller ID (CRM203)"}
    elif not options.record_history:
        result.history = {"replaced": False, "kept": "a what-if sweep (--now): history read, nothing written"}
    elif failed:  # what was read is unsure: nothing is written on top of it
        result.history = dict(_STORE_DOWN)
    else:
        why_not = ("the record has no metadata URL" if not url else "the fetch failed" if body is None else
                   "what came back could not be read as the partner's metadata" if current is None else
                   "the checks of this fetch found errors")
        candidate = (LastGood(options.now, where, current, body)
                     if good and current is not None and body is not None else None)
        result.history = stored(lambda: keep_last_good(store, record.biller.id, previous, candidate, why_not),
                                dict(_STORE_DOWN))
    if previous is None and good and not entry.duplicate and not failed and options.record_history:
        result.changes.append("first copy kept")
    report.facts["sweep"] = _facts(result, options)
    if not entry.duplicate and options.record_history:
        stored(lambda: append_run(store, record.biller.id, _run_entry(result, options, body, good)), None)
    result.seconds = time.perf_counter() - started
    return result


def fetch_and_inspect(url: str, options: SweepOptions, record: CRMRecord) -> tuple[MetadataInspection, bytes | None]:
    """Fetch `url` and judge it exactly as ``saml-validate metadata URL`` does; the body too when it
    was fetched (whatever the checks found), None when the fetch failed."""
    metadata_options = MetadataOptions(now=options.now, warn_days=options.warn_days, max_bytes=options.max_bytes,
                                       fetch_policy=options.fetch_policy)
    fetched = fetch_metadata(url, options.fetch_policy, options.max_bytes)
    return inspect_fetched(url, fetched, metadata_options, record), fetched.body


def _facts(result: PartnerResult, options: SweepOptions) -> dict[str, Any]:
    expiry = result.next_expiry(options.now)
    facts: dict[str, Any] = {"record": result.record, "changes": list(result.changes), "history": result.history}
    if result.signer is not None:
        facts["signer"] = {"sha256": result.signer.sha256, "how": result.signer.how, "note": result.signer.note}
        if result.test_login is not None:
            # The login's ID stays in the store: it opens that login's result page, claims included.
            facts["signer"]["test_login"] = {"at": result.test_login.verified_at}
    if expiry is not None:
        facts["next_expiry"] = {
            "subject": expiry.subject, "sha256": expiry.sha256, "not_after": expiry.not_after,
            "days_left": (expiry.not_after - options.now).days, "from": result.certificates_from,
            "signer": result.signer is not None and result.signer.sha256 == expiry.sha256,
        }
    return facts


def _run_entry(result: PartnerResult, options: SweepOptions, body: bytes | None, good: bool) -> dict[str, Any]:
    report = result.report
    return {
        "at": options.now.isoformat().replace("+00:00", "Z"),
        "record": result.record,
        "verdict": report.verdict,
        "errors": report.count(Severity.ERROR),
        "warnings": report.count(Severity.WARNING),
        "codes": sorted({f.code for f in report.findings if f.severity is not Severity.INFO}),
        "fetched": body is not None,
        "sha256": hashlib.sha256(body).hexdigest() if body is not None else None,
        "changes": list(result.changes),
        "last_good_replaced": bool(result.history.get("replaced")),
        "signer": result.signer.sha256 if result.signer else None,
    }
