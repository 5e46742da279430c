"""The audit trail (validator/auth/audit.py): events kept per UTC day, read newest first and
filtered, one JSON object per line, and nothing in an event that could forge a second line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from metadata.store import SQLiteStore
from validator.auth.audit import (
    ACTIONS,
    DAY_CAP,
    NAMESPACE,
    AuditEvent,
    as_json_lines,
    event,
    events,
    record,
)
from validator.auth.principal import LOCAL, Principal

NOW = datetime(2026, 12, 6, 9, 30, 15, 999999, tzinfo=UTC)
ANA = Principal("staff", name="ana@x.example", billers=None, access="write")


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "s.sqlite3")


def _at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def test_an_event_names_its_principal_and_its_second() -> None:
    made = event("sign-in", ANA, biller_id=None, address="203.0.113.7", detail="password", now=NOW)
    assert made == AuditEvent(at="2026-12-06T09:30:15Z", action="sign-in", who="staff:ana@x.example",
                              biller_id=None, address="203.0.113.7", detail="password")
    assert event("record-change", "cli:root", biller_id="B-1", address=None, detail="", now=NOW).who == "cli:root"
    assert event("test-login", LOCAL, biller_id="B-1", address="::1", detail="", now=NOW).who == "local"


def test_free_text_is_made_one_short_line() -> None:
    made = event("metadata-upload", "invite:inv_0123456789ab", biller_id="B-1", address="192.0.2.1",
                 detail="evil\nat=2026 action=sign-in\u2028" + "x" * 1000, now=NOW)
    assert "\n" not in made.detail and "\u2028" not in made.detail
    assert made.detail.startswith("evil at=2026 action=sign-in") and len(made.detail) == 300
    assert made.detail.endswith("…")


def test_an_event_refuses_what_would_make_the_trail_lie() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        AuditEvent(at="2026-12-06T09:30:15Z", action="delete-all", who="x", biller_id=None,  # type: ignore[arg-type]
                   address=None, detail="")
    with pytest.raises(ValueError, match="one line"):
        AuditEvent(at="2026-12-06T09:30:15Z", action="sign-in", who="x", biller_id=None, address=None,
                   detail="two\nlines")
    with pytest.raises(ValueError, match="ending in Z"):
        AuditEvent(at="2026-12-06T09:30:15+01:00", action="sign-in", who="x", biller_id=None, address=None,
                   detail="")


def test_actions_are_the_issues_list() -> None:
    assert len(ACTIONS) == 14 and len(set(ACTIONS)) == 14  # the issue's list, and a sweep run from the app
    assert {"sign-in", "invite-used", "report-download", "staff-removed", "sweep-run"} <= set(ACTIONS)


def test_json_is_one_compact_object() -> None:
    made = event("invite-created", ANA, biller_id="B-1", address=None, detail="inv_x for é@x.example", now=NOW)
    raw = made.json()
    assert b"\n" not in raw
    assert json.loads(raw) == {"at": "2026-12-06T09:30:15Z", "action": "invite-created",
                               "who": "staff:ana@x.example", "biller_id": "B-1", "address": None,
                               "detail": "inv_x for é@x.example"}
    assert AuditEvent.from_json(raw) == made


def test_json_lines_one_object_per_line() -> None:
    found = [event("sign-in", ANA, biller_id=None, address=None, detail=str(n), now=NOW) for n in range(3)]
    text = as_json_lines(found)
    assert text.endswith("\n") and text.count("\n") == 3
    assert [json.loads(line)["detail"] for line in text.splitlines()] == ["0", "1", "2"]
    assert as_json_lines([]) == ""


def test_events_come_back_newest_first_across_days(store: SQLiteStore) -> None:
    for minutes in (-3 * 24 * 60, -24 * 60, -5, -1):
        record(store, event("sign-in", ANA, biller_id=None, address=None, detail=str(minutes), now=_at(minutes)))
    assert [e.detail for e in events(store, now=NOW)] == ["-1", "-5", "-1440", "-4320"]
    assert [e.detail for e in events(store, now=NOW, limit=3)] == ["-1", "-5", "-1440"]


def test_events_are_kept_in_one_list_per_utc_day(store: SQLiteStore) -> None:
    late = datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC)
    record(store, event("sign-in", ANA, biller_id=None, address=None, detail="late", now=late))
    east = datetime(2026, 12, 6, 0, 30, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))  # still the 6th in UTC
    assert east.day == 6 and east.hour == 9
    record(store, event("sign-in", ANA, biller_id=None, address=None, detail="early", now=east))
    assert [json.loads(v)["detail"] for v in store.recent(NAMESPACE, "2026-12-05", 10)] == ["late"]
    assert [json.loads(v)["detail"] for v in store.recent(NAMESPACE, "2026-12-06", 10)] == ["early"]
    assert store.keys(NAMESPACE) == []  # lists only: nothing is a value that could be rewritten


def test_the_window_leaves_out_older_days(store: SQLiteStore) -> None:
    record(store, event("sign-in", ANA, biller_id=None, address=None, detail="old", now=NOW - timedelta(days=31)))
    record(store, event("sign-in", ANA, biller_id=None, address=None, detail="edge", now=NOW - timedelta(days=30)))
    record(store, event("sign-in", ANA, biller_id=None, address=None, detail="new", now=NOW))
    assert [e.detail for e in events(store, now=NOW)] == ["new", "edge"]
    assert [e.detail for e in events(store, now=NOW, days=1)] == ["new"]
    assert [e.detail for e in events(store, now=NOW, days=40)] == ["new", "edge", "old"]


def test_filters_keep_only_matching_events(store: SQLiteStore) -> None:
    bob = "token:ci"
    record(store, event("metadata-upload", ANA, biller_id="B-1", address=None, detail="a", now=_at(-3)))
    record(store, event("test-login", bob, biller_id="B-1", address=None, detail="b", now=_at(-2)))
    record(store, event("test-login", ANA, biller_id="B-2", address=None, detail="c", now=_at(-1)))
    assert [e.detail for e in events(store, now=NOW, biller_id="B-1")] == ["b", "a"]
    assert [e.detail for e in events(store, now=NOW, action="test-login")] == ["c", "b"]
    assert [e.detail for e in events(store, now=NOW, who="staff:ana@x.example")] == ["c", "a"]
    assert [e.detail for e in events(store, now=NOW, who=bob, biller_id="B-1", action="test-login")] == ["b"]
    assert events(store, now=NOW, biller_id="B-3") == []
    assert events(store, now=NOW, action="sign-in") == []
    assert [e.detail for e in events(store, now=NOW, biller_id="B-1", limit=1)] == ["b"]


@pytest.mark.parametrize("query", [{"days": 0}, {"days": 401}, {"limit": 0}, {"action": "delete-all"}])
def test_a_query_that_cannot_be_meant_is_refused(store: SQLiteStore, query: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        events(store, now=NOW, **query)  # type: ignore[arg-type]


def test_a_line_that_does_not_parse_is_left_out(store: SQLiteStore) -> None:
    record(store, event("sign-in", ANA, biller_id=None, address=None, detail="good", now=NOW))
    store.append(NAMESPACE, "2026-12-06", b"{garbage", max_items=DAY_CAP)
    assert [e.detail for e in events(store, now=NOW)] == ["good"]


def test_a_day_is_capped_by_the_store_not_by_rewriting(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import validator.auth.audit as module

    monkeypatch.setattr(module, "DAY_CAP", 2)
    for n in range(3):
        record(store, event("sign-in", ANA, biller_id=None, address=None, detail=str(n), now=NOW))
    assert [e.detail for e in events(store, now=NOW)] == ["2", "1"]
