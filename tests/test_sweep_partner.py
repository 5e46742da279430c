"""The steps of one partner's sweep, each alone: the guarded store, the write policy, what changed,
why a copy is not kept. The whole sweep, with a server and a store, is tests/test_sweep.py."""

from __future__ import annotations

from pathlib import Path

from metadata.store import SQLiteStore, Store, StoreUnavailable
from tests.factory import NOW
from tests.helpers import crm
from validator.checks.sweep import SSO_CHANGED, Snapshot
from validator.findings import Finding, FindingLog, Severity
from validator.inspection import MetadataInspection
from validator.sweep_history import HistoryNote, LastGood, read_last_good
from validator.sweep_partner import (
    Fetched,
    GuardedStore,
    RecordEntry,
    SweepOptions,
    change_labels,
    why_not_kept,
    write_policy,
)
from validator.trust import TrustSource

SNAPSHOT = Snapshot("https://idp.example.com/saml", (), ())


class _Down:
    """A store that never answers, counting what was asked of it."""

    def __init__(self) -> None:
        self.asked = 0

    def get(self, *args: object) -> bytes | None:
        self.asked += 1
        raise StoreUnavailable("the store did not answer (test)")


def test_the_first_store_failure_is_one_finding_and_nothing_is_asked_after_it() -> None:
    log = FindingLog()
    down = _Down()
    guarded = GuardedStore(down, "b1.toml", log)  # type: ignore[arg-type]
    assert guarded.call(lambda s: s.get("ns", "k"), "default") == "default"
    assert guarded.call(lambda s: s.get("ns", "k"), "again") == "again"
    assert down.asked == 1 and guarded.failed
    assert [(f.code, f.where) for f in log.frozen()] == [("CRM204", "b1.toml")]


def test_the_write_policy_writes_only_a_good_copy_of_a_partner_of_its_own(tmp_path: Path) -> None:
    store: Store = SQLiteStore(tmp_path / "s.sqlite3")
    entry = RecordEntry(tmp_path / "b1.toml", crm(), None)
    options = SweepOptions(now=NOW)
    good = LastGood(NOW, "https://idp.example.com/md", SNAPSHOT, b"<md/>")

    def policy(entry: RecordEntry = entry, options: SweepOptions = options, candidate: LastGood | None = good,
               guarded: GuardedStore | None = None) -> HistoryNote:
        return write_policy(entry, options, guarded or GuardedStore(store, "b1.toml", FindingLog()), "B-1", None,
                            candidate, "the checks of this fetch found errors")

    assert "CRM203" in (policy(entry=RecordEntry(entry.path, entry.record, None, duplicate=True)).kept or "")
    assert "what-if" in (policy(options=SweepOptions(now=NOW, record_history=False)).kept or "")
    failed = GuardedStore(store, "b1.toml", FindingLog())
    failed.failed = True
    assert policy(guarded=failed) == HistoryNote(False, "the store did not answer: no history was written")
    assert read_last_good(store, "B-1") is None  # none of the three wrote anything
    assert policy(candidate=None).kept == "no good copy yet: the checks of this fetch found errors"
    written = policy()
    assert written.replaced and written.last_good is not None and written.last_good.fetched_at == NOW
    kept = read_last_good(store, "B-1")
    assert kept is not None and kept.body == b"<md/>" and kept.snapshot == SNAPSHOT
    store.close()


def test_changes_are_counted_by_kind() -> None:
    moved = SSO_CHANGED.finding("moved", where="u")
    other = Finding("KEY006", Severity.WARNING, "t", "expires")
    added = Finding("KEY020", Severity.WARNING, "t", "added")
    assert change_labels([moved, other, moved, added]) == ["SSO endpoint ×2", "certificate added"]
    assert change_labels([other]) == []


def test_why_a_copy_is_not_kept() -> None:
    inspection = MetadataInspection("https://idp.example.com/md", "https://idp.example.com/md", NOW, 30, (), ())
    url = TrustSource("metadata_url", "https://idp.example.com/md")
    assert why_not_kept(None, None) == "nothing on record gives the IdP's metadata"
    assert why_not_kept(url, Fetched(inspection, None, None)) == "the fetch failed"
    assert why_not_kept(url, Fetched(inspection, b"<html/>", None)) == (
        "what came back could not be read as the partner's metadata")
    assert why_not_kept(url, Fetched(inspection, b"<md/>", SNAPSHOT)) == "the checks of this fetch found errors"
    file = TrustSource("metadata_file", "records/b1.idp.xml")
    assert why_not_kept(file, Fetched(inspection, None, None)) == "the metadata file could not be read"
    assert why_not_kept(file, Fetched(inspection, b"<md/>", SNAPSHOT)) == "the checks of this copy found errors"
