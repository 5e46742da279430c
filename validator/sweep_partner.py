"""One partner of a sweep, step by step: its record, its metadata from the first trust source on
record and its checks (:mod:`validator.sweep_sources`), the comparison with its last good copy,
the signer, what is written to its history, the run log, the timing.

Each step is a small function of what the steps before it found; :func:`sweep_partner` runs
them in order and assembles the partner's :class:`~validator.report.Report` at the end. The
store is reached only through a :class:`GuardedStore`: its first failure becomes the partner's
CRM204 finding, beside its own findings, and nothing is read or written for it after that.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from metadata.crm import CRMRecord
from metadata.errors import CRMRecordError
from metadata.store import Store, StoreUnavailable
from metadata.xml import MiB
from validator.checks.crm_record import check_record
from validator.checks.sweep import (
    DUPLICATE_BILLER,
    HISTORY_UNAVAILABLE,
    RECORD_UNREADABLE,
    Signer,
    Snapshot,
    SnapshotCertificate,
    choose_signer,
    compare,
    signer_finding,
)
from validator.findings import Finding, FindingLog, Severity
from validator.inspection import MetadataOptions
from validator.json_value import Plain, iso_z
from validator.metadata_facts import MetadataFacts
from validator.record_facts import BillerFacts
from validator.report import Facts, Report
from validator.sweep_history import (
    HistoryNote,
    LastGood,
    RunEntry,
    SeenSigner,
    append_run,
    keep_last_good,
    last_signer,
    read_last_good,
)
from validator.sweep_sources import Fetched, Found, find_metadata, source_findings
from validator.trust import TrustSource
from validator.uploaded_metadata import latest_upload

if TYPE_CHECKING:
    from metadata.fetch import FetchPolicy

CHANGE_CODES = {"MD020": "entity ID", "MD021": "SSO endpoint", "KEY020": "certificate added",
                "KEY021": "certificate removed"}
_T = TypeVar("_T")


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


@dataclass(frozen=True)
class RecordEntry:
    """A record file of the folder, loaded (or why not), and whether another has its biller ID."""

    path: Path
    record: CRMRecord | None
    error: CRMRecordError | None
    duplicate: bool = False


@dataclass(frozen=True)
class PartnerResult:
    record: str
    """The record's file name within the folder."""
    report: Report
    biller_id: str | None = None
    biller_name: str | None = None
    certificates: tuple[SnapshotCertificate, ...] = ()
    """The signing certificates now, or in the last good copy when none could be read now."""
    certificates_from: str | None = None
    """``metadata`` (this run), ``signing_certificates`` (the record's, this run) or ``last good copy``."""
    signer: Signer | None = None
    test_login: SeenSigner | None = None
    """The clean test login that showed the signer, when that is how it is known."""
    changes: tuple[str, ...] = ()
    """Short labels of what changed since the last good copy, for the summary table."""
    history: HistoryNote = field(default_factory=lambda: HistoryNote(False))
    seconds: float = 0.0
    source: TrustSource | None = None
    """Where the partner's metadata or certificates came from; None when nothing on record gives them."""

    @property
    def name(self) -> str:
        if self.biller_id is None:
            return self.record
        return f"{self.biller_id} {self.biller_name}".strip() if self.biller_name else self.biller_id

    def next_expiry(self, now: datetime) -> SnapshotCertificate | None:
        return next_expiry(self.certificates, now)


def next_expiry(certificates: Sequence[SnapshotCertificate], now: datetime) -> SnapshotCertificate | None:
    """The signing certificate that expires next (the last one to have expired when all have)."""
    ahead = [c for c in certificates if c.not_after >= now]
    if ahead:
        return min(ahead, key=lambda c: c.not_after)
    return max(certificates, key=lambda c: c.not_after, default=None)


@dataclass(frozen=True)
class SweepFacts:
    """What the sweep adds to a partner's report: its record, changes, history, signer, next expiry."""

    record: str
    now: datetime
    changes: tuple[str, ...] = ()
    history: HistoryNote = field(default_factory=lambda: HistoryNote(False))
    signer: Signer | None = None
    test_login: SeenSigner | None = None
    certificates: tuple[SnapshotCertificate, ...] = ()
    certificates_from: str | None = None

    def json(self) -> dict[str, Plain]:
        facts: dict[str, Plain] = {"record": self.record, "changes": list(self.changes), "history": self.history.json()}
        if self.signer is not None:
            signer: dict[str, Plain] = {"sha256": self.signer.sha256, "how": self.signer.how, "note": self.signer.note}
            if self.test_login is not None:
                # The login's ID stays in the store: it opens that login's result page, claims included.
                signer["test_login"] = {"at": iso_z(self.test_login.verified_at)}
            facts["signer"] = signer
        expiry = next_expiry_json(self.certificates, self.certificates_from, self.signer, self.now)
        if expiry is not None:
            facts["next_expiry"] = expiry
        return {"sweep": facts}


def next_expiry_json(certificates: Sequence[SnapshotCertificate], source: str | None, signer: Signer | None,
                     now: datetime) -> dict[str, Plain] | None:
    expiry = next_expiry(certificates, now)
    if expiry is None:
        return None
    return {
        "subject": expiry.subject, "sha256": expiry.sha256, "not_after": iso_z(expiry.not_after),
        "days_left": (expiry.not_after - now).days, "from": source,
        "signer": signer is not None and signer.sha256 == expiry.sha256,
    }


class GuardedStore:
    """The store as one partner's sweep uses it: the first failure is that partner's CRM204 finding
    (added to `log` where it happens), and every call after it returns its default untried, so
    nothing is written on top of what could not be read."""

    def __init__(self, store: Store, where: str, log: FindingLog) -> None:
        self.store, self.where, self.log = store, where, log
        self.failed = False

    def call(self, action: Callable[[Store], _T], default: _T) -> _T:
        if self.failed:
            return default
        try:
            return action(self.store)
        except StoreUnavailable as exc:
            self.failed = True
            self.log.add(HISTORY_UNAVAILABLE.finding(str(exc), where=self.where))
            return default


STORE_DOWN = HistoryNote(False, "the store did not answer: no history was written")
NO_METADATA = HistoryNote(False, "no metadata to compare: the record gives the IdP's signing certificates "
                                 "([idp] signing_certificates), not its metadata, so no history was read or written")
NOTHING_ON_RECORD = "nothing on record gives the IdP's metadata"


# --- the steps ---------------------------------------------------------------------------------


def unreadable_record(entry: RecordEntry, started: float, options: SweepOptions) -> PartnerResult:
    """A record that did not load: its problems are its findings, and no history is touched."""
    assert entry.error is not None
    name = entry.path.name
    log = FindingLog()
    log.extend(RECORD_UNREADABLE.finding(f"{path}: {problem}", where=f"{name}: {path}")
               for path, problem in entry.error.problems)
    history = HistoryNote(False, "the record did not load, so no history was read or written")
    report = Report(subject="metadata", inputs={"crm": name}, clock=options.now, findings=log.frozen(),
                    facts=(SweepFacts(name, options.now, history=history),))
    return PartnerResult(name, report, history=history, seconds=time.perf_counter() - started)


def record_findings(entry: RecordEntry, record: CRMRecord, log: FindingLog) -> None:
    """The record's own checks, and what makes it unusable for a sweep (a shared biller ID)."""
    name = entry.path.name
    log.extend(check_record(record, name))
    if entry.duplicate:
        log.add(DUPLICATE_BILLER.finding(f"another record in the folder also has the biller ID {record.biller.id!r}",
                                         where="biller.id", actual=record.biller.id))


def metadata_options(options: SweepOptions) -> MetadataOptions:
    """How every partner's metadata is judged: as ``saml-validate metadata`` judges it, at the sweep's clock."""
    return MetadataOptions(now=options.now, warn_days=options.warn_days, max_bytes=options.max_bytes,
                           fetch_policy=options.fetch_policy)


def comparison(previous: LastGood | None, current: Snapshot | None, where: str) -> tuple[Finding, ...] | None:
    """What changed since the last good copy; None when there is nothing to compare."""
    if previous is None or current is None:
        return None
    return tuple(compare(previous.snapshot, current, since=previous.fetched_at, where=where))


@dataclass(frozen=True)
class SignerView:
    certificates: tuple[SnapshotCertificate, ...] = ()
    certificates_from: str | None = None
    signer: Signer | None = None
    test_login: SeenSigner | None = None


def signer_view(shown: Snapshot | None, shown_from: str, seen: Callable[[], SeenSigner | None],
                now: datetime) -> SignerView:
    """The certificates to show (now, else the last good copy's: `shown_from` says which) and which
    of them signs; `seen` asks the store for the last clean test login's signer, only when there
    are certificates."""
    if shown is None:
        return SignerView()
    login = seen()
    signer = choose_signer(shown.certificates, now, seen=(login.sha256, login.verified_at) if login else None)
    test_login = login if signer is not None and signer.how == "test-login" else None
    return SignerView(shown.certificates, shown_from, signer, test_login)


def change_labels(findings: Sequence[Finding]) -> list[str]:
    counts = Counter(CHANGE_CODES[f.code] for f in findings if f.code in CHANGE_CODES)
    return [label if n == 1 else f"{label} ×{n}" for label, n in counts.items()]


def why_not_kept(source: TrustSource | None, fetched: Fetched | None) -> str:
    if source is None or fetched is None:
        return NOTHING_ON_RECORD
    if fetched.body is None:
        return "the fetch failed" if source.kind == "metadata_url" else "the metadata file could not be read"
    if fetched.snapshot is None:
        return "what came back could not be read as the partner's metadata"
    return f"the checks of this {'fetch' if source.kind == 'metadata_url' else 'copy'} found errors"


def good_copy(found: Found, now: datetime) -> LastGood | None:
    """This copy (fetched, uploaded, read from its file) as the next last good one: only when it was
    read and its checks found no error."""
    fetched = found.fetched
    if found.source is None or fetched is None or fetched.body is None or fetched.snapshot is None \
            or fetched.errors:
        return None
    return LastGood(now, found.where, fetched.snapshot, fetched.body, found.source.kind)


def write_policy(entry: RecordEntry, options: SweepOptions, store: GuardedStore, biller_id: str,
                 previous: LastGood | None, candidate: LastGood | None, why_not: str) -> HistoryNote:
    """Whether this sweep writes the last good copy, and what the store holds afterwards."""
    if entry.duplicate:
        return HistoryNote(False, "history untouched: another record has the same biller ID (CRM203)")
    if not options.record_history:
        return HistoryNote(False, "a what-if sweep (--now): history read, nothing written")
    if store.failed:  # what was read is unsure: nothing is written on top of it
        return STORE_DOWN
    return store.call(lambda s: keep_last_good(s, biller_id, previous, candidate, why_not), STORE_DOWN)


def run_entry(name: str, report: Report, found: Found, changes: Sequence[str], history: HistoryNote,
              signer: Signer | None) -> RunEntry:
    body = found.fetched.body if found.fetched is not None else None
    return RunEntry(
        at=report.clock, record=name, verdict=report.verdict, errors=report.count(Severity.ERROR),
        warnings=report.count(Severity.WARNING),
        codes=tuple(sorted({f.code for f in report.findings if f.severity is not Severity.INFO})),
        sha256=hashlib.sha256(body).hexdigest() if body is not None else None, changes=tuple(changes),
        last_good_replaced=history.replaced, signer=signer.sha256 if signer else None,
        source=found.source.kind if found.source is not None else None,
    )


# --- the partner -------------------------------------------------------------------------------


def sweep_partner(entry: RecordEntry, options: SweepOptions, store: Store) -> PartnerResult:
    """One partner; a store that fails is that partner's finding (CRM204), never the sweep's end."""
    started = time.perf_counter()
    if entry.record is None:
        return unreadable_record(entry, started, options)
    return _sweep_record(entry, entry.record, options, store, started)


def _sweep_record(entry: RecordEntry, record: CRMRecord, options: SweepOptions, store: Store,
                  started: float) -> PartnerResult:
    name, biller_id = entry.path.name, record.biller.id
    log = FindingLog()
    guarded = GuardedStore(store, name, log)
    record_findings(entry, record, log)
    found = find_metadata(record, entry.path.parent, metadata_options(options), name,
                          lambda: guarded.call(lambda s: latest_upload(s, biller_id), None))
    log.extend(source_findings(found))
    keeps = found.pinned is None  # signing certificates alone are no metadata: no history at all
    previous = guarded.call(lambda s: read_last_good(s, biller_id), None) if keeps and not entry.duplicate else None
    compared = _judged(found, previous, log)
    view = _signer(found, previous, lambda: guarded.call(lambda s: last_signer(s, biller_id), None), options.now, log)
    changes = change_labels(log.frozen())
    history = _history(entry, options, guarded, biller_id, previous, found, changes) if keeps else NO_METADATA
    sweep = SweepFacts(name, options.now, tuple(changes), history, view.signer, view.test_login, view.certificates,
                       view.certificates_from)
    report = partner_report(name, record, found, compared, sweep, log.frozen(), options.now)
    if keeps and _writes(entry, options):
        run = run_entry(name, report, found, changes, history, view.signer)
        guarded.call(lambda s: append_run(s, biller_id, run), None)
        report = replace(report, findings=log.frozen())  # a failure to log the run is a finding too
    return PartnerResult(name, report, biller_id, record.biller.name, view.certificates, view.certificates_from,
                         view.signer, view.test_login, tuple(changes), history, time.perf_counter() - started,
                         found.source)


def _history(entry: RecordEntry, options: SweepOptions, store: GuardedStore, biller_id: str,
             previous: LastGood | None, found: Found, changes: list[str]) -> HistoryNote:
    """Write the last good copy when this one is good (and say so among the `changes` when it is the first)."""
    candidate = good_copy(found, options.now)
    history = write_policy(entry, options, store, biller_id, previous, candidate, why_not_kept(found.source,
                                                                                                found.fetched))
    if previous is None and candidate is not None and _writes(entry, options, store):
        changes.append("first copy kept")
    return history


def _writes(entry: RecordEntry, options: SweepOptions, store: GuardedStore | None = None) -> bool:
    """Whether this sweep writes the partner's history: not for a shared biller ID, not for a
    what-if, not after the store failed."""
    return not entry.duplicate and options.record_history and not (store is not None and store.failed)


def _signer(found: Found, previous: LastGood | None, seen: Callable[[], SeenSigner | None], now: datetime,
            log: FindingLog) -> SignerView:
    """Which certificate signs, from what the source gave now (or else the last good copy); KEY022
    says so for what was found now."""
    current = found.snapshot
    if current is None:
        view = signer_view(previous.snapshot if previous else None, "last good copy", seen, now)
    else:
        view = signer_view(current, "signing_certificates" if found.pinned else "metadata", seen, now)
        if view.signer is not None:
            log.add(signer_finding(view.signer, found.where))
    return view


def _judged(found: Found, previous: LastGood | None, log: FindingLog) -> bool:
    """Add what the checks of the metadata found, then what changed since the last good copy;
    whether there was something to compare."""
    fetched = found.fetched
    if fetched is not None:
        log.add_all(fetched.inspection.findings)
    changed = comparison(previous, fetched.snapshot if fetched is not None else None, found.where)
    if changed is not None:
        log.extend(changed)
    return changed is not None


def partner_report(name: str, record: CRMRecord, found: Found, compared: bool, sweep: SweepFacts,
                   findings: tuple[Finding, ...], now: datetime) -> Report:
    """The partner's report: its record, its metadata as ``saml-validate metadata`` judges it (or its
    signing certificates), where they came from, the sweep."""
    fetched = found.fetched
    subjects = ("crm-record", *(fetched.inspection.subjects_run if fetched else ()), *(("sweep",) if compared else ()))
    facts: tuple[Facts, ...] = (BillerFacts(record),
                                *((MetadataFacts(fetched.inspection, show_warn_days=False),) if fetched else ()),
                                *((found.source,) if found.source is not None else ()), sweep)
    inputs = {"crm": name}
    if found.source is not None:
        inputs["signing_certificates" if found.pinned is not None else "metadata"] = found.source.location
    return Report(subject="metadata", inputs=inputs, clock=now, findings=findings, subjects_run=subjects, facts=facts)
