"""What the automation API arms for the next login (idp.arming), against a real SQLite store with a
clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp import arming
from idp.faults import fault
from metadata.store import SQLiteStore

SP = "https://sp.example.com/saml/metadata"
OTHER_SP = "https://other.example.com/saml/metadata"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(SQLiteStore):
    """A SQLite store that counts its reads."""

    reads = 0

    def get(self, ns: str, key: str) -> bytes | None:
        self.reads += 1
        return super().get(ns, key)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> CountingStore:
    return CountingStore(tmp_path / "state.sqlite3", clock=clock)


def always(faults: tuple[object, ...]) -> bool:
    return True


def test_an_armed_login_is_taken_once_the_sps_own_before_any_sps(store: CountingStore) -> None:
    arming.arm_login(store, None, "bob")
    arming.arm_login(store, SP, "alice")
    assert arming.take_login(store, SP) == ("alice", None)
    assert arming.take_login(store, SP) == ("bob", None)
    assert arming.take_login(store, OTHER_SP) is None


def test_armed_faults_wait_for_a_login_they_fit(store: CountingStore) -> None:
    expired = fault("expired")
    arming.arm_faults(store, SP, "alice", [expired])
    assert arming.take_faults(store, SP, "bob", (), always) == ()  # another persona's
    assert arming.take_faults(store, SP, "alice", (), lambda faults: False) == ()  # does not fit: stays
    assert arming.take_faults(store, SP, "alice", (), always) == (expired,)
    assert arming.take_faults(store, SP, "alice", (), always) == ()


def test_with_nothing_armed_a_login_reads_the_store_once_per_kind(store: CountingStore) -> None:
    assert arming.take_login(store, SP) is None
    assert arming.take_faults(store, SP, "alice", (), always) == ()
    assert store.reads == 2


def test_a_login_asks_for_the_marker_once_for_both_kinds(store: CountingStore) -> None:
    armed = arming.maybe_armed(store)
    assert arming.take_login(store, SP, armed=armed) is None
    assert arming.take_faults(store, SP, "alice", (), always, armed=armed) == ()
    assert store.reads == 1
    arming.arm_login(store, SP, "alice")
    arming.arm_faults(store, SP, "alice", [fault("expired")])
    armed = arming.maybe_armed(store)
    assert armed
    assert arming.take_login(store, SP, armed=armed) == ("alice", None)
    assert arming.take_faults(store, SP, "alice", (), always, armed=armed) == (fault("expired"),)


def test_the_marker_outlives_every_entry_armed_with_it(store: CountingStore, clock: Clock) -> None:
    arming.arm_faults(store, SP, None, [fault("expired")])
    clock.now += 200
    arming.arm_login(store, SP, "alice")  # refreshes the marker: it now ends 200 s after the faults
    clock.now += arming.ARMED_TTL - 201  # 1 s before the faults expire
    assert arming.take_faults(store, SP, "alice", (), always) == (fault("expired"),)
    clock.now += 150  # the faults would have expired by now; the login has not
    assert arming.take_login(store, SP) == ("alice", None)
    clock.now += arming.ARMED_TTL
    arming.arm_login(store, None, "bob")  # everything earlier expired; the marker comes back with this
    assert arming.take_login(store, SP) == ("bob", None)


def test_a_login_armed_by_an_idp_before_edits_is_still_taken(store: CountingStore) -> None:
    """During a rolling upgrade an older worker arms a bare persona ID; a newer one takes it."""
    store.put(arming.LOGINS, SP, b"alice", arming.ARMED_TTL)
    store.put(*arming.MARKER, b"1", arming.ARMED_TTL)
    assert arming.take_login(store, SP) == ("alice", None)
