"""The Store contract, run against SQLiteStore and against RedisStore on a real redis-server."""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from metadata.errors import MetadataError
from metadata.store import RedisStore, SQLiteStore, Store, StoreUnavailable, open_store
from tests.redis_server import RedisServer

RACERS = 8
RACE_KEYS = [f"id-{i:03d}" for i in range(200)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    store: Store
    url: str
    advance: Callable[[float], None]
    """Let ``seconds`` pass for the store's expiry clock."""


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    store: Store
    if request.param == "sqlite":
        clock = FakeClock()

        def advance(seconds: float) -> None:
            clock.now += seconds

        path = tmp_path / "state.db"
        store = SQLiteStore(path, clock=clock)
        found = Backend(store, f"sqlite:///{path}", advance)
    else:
        import redis

        url = request.getfixturevalue("redis_url")
        with contextlib.closing(redis.Redis.from_url(url)) as client:
            client.flushdb()
        store = RedisStore(url)
        found = Backend(store, url, time.sleep)
    yield found
    store.close()


# The contract, for both stores.


def test_put_get_overwrite_delete(backend: Backend) -> None:
    store = backend.store
    assert store.get("sessions", "s1") is None
    store.put("sessions", "s1", b"first")
    store.put("sessions", "s1", b"second")
    store.put("other", "s1", b"elsewhere")
    assert store.get("sessions", "s1") == b"second"
    assert store.get("other", "s1") == b"elsewhere"
    assert store.delete("sessions", "s1") is True
    assert store.delete("sessions", "s1") is False
    assert store.get("sessions", "s1") is None
    assert store.get("other", "s1") == b"elsewhere"


def test_values_and_keys_round_trip_exactly(backend: Backend) -> None:
    store = backend.store
    odd_keys = ["a:b:c", "ünïcode", "*?[x]", ""]
    for i, key in enumerate(odd_keys):
        store.put("keys.meta", key, bytes([0, 255, i]) + b"\r\n")
    store.put("keys.meta", "empty", b"")
    assert store.keys("keys.meta") == sorted([*odd_keys, "empty"])
    assert store.get("keys.meta", "*?[x]") == bytes([0, 255, 2]) + b"\r\n"
    assert store.get("keys.meta", "empty") == b""
    assert store.keys("keys") == []


def test_expired_entries_are_never_returned(backend: Backend) -> None:
    store = backend.store
    store.put("pending", "short", b"s", ttl=0.3)
    store.put("pending", "long", b"l", ttl=60)
    store.put("pending", "forever", b"f")
    assert store.add("pending", "added", b"a", ttl=0.3) is True
    assert store.keys("pending") == ["added", "forever", "long", "short"]
    assert store.get("pending", "short") == b"s"

    backend.advance(0.45)
    assert store.get("pending", "short") is None
    assert store.take("pending", "added") is None
    assert store.delete("pending", "short") is False
    assert store.keys("pending") == ["forever", "long"]
    assert store.get("pending", "long") == b"l"


def test_put_many_stores_every_item_at_once(backend: Backend) -> None:
    store = backend.store
    store.put("debug", "s1", b"old")
    store.put_many([("session", "s1", b"who", 0.3), ("debug", "s1", b"new", 60), ("forever", "k", b"f", None)])
    assert store.get("session", "s1") == b"who"
    assert store.get("debug", "s1") == b"new"  # replaced, like put
    assert store.get("forever", "k") == b"f"
    store.put_many([])

    backend.advance(0.45)  # each item keeps its own ttl
    assert store.get("session", "s1") is None
    assert store.get("debug", "s1") == b"new"
    assert store.keys("forever") == ["k"]


@pytest.mark.parametrize(
    "items",
    [[("ok", "k", b"v", None), ("a:b", "k", b"v", None)], [("ok", "k", b"v", 60), ("ok", "k2", b"v", 0)]],
    ids=["bad-namespace", "zero-ttl"],
)
def test_put_many_checks_every_item_before_storing_any(
    backend: Backend, items: list[tuple[str, str, bytes, float | None]]
) -> None:
    with pytest.raises(ValueError):
        backend.store.put_many(items)
    assert backend.store.get("ok", "k") is None


def test_add_inserts_only_when_absent(backend: Backend) -> None:
    store = backend.store
    assert store.add("replay", "_a1", b"first", ttl=0.3) is True
    assert store.add("replay", "_a1", b"second", ttl=60) is False
    assert store.get("replay", "_a1") == b"first"

    backend.advance(0.45)  # an expired entry is absent
    assert store.add("replay", "_a1", b"third") is True
    assert store.get("replay", "_a1") == b"third"
    assert store.delete("replay", "_a1") is True
    assert store.add("replay", "_a1", b"fourth") is True


def test_take_consumes_once(backend: Backend) -> None:
    store = backend.store
    store.put("pending", "_req1", b"request")
    assert store.take("pending", "_req1") == b"request"
    assert store.take("pending", "_req1") is None
    assert store.get("pending", "_req1") is None
    assert store.take("pending", "never") is None


def test_lists_are_capped_and_newest_first(backend: Backend) -> None:
    store = backend.store
    for i in range(1, 8):
        store.append("debug", "session-1", f"response {i}".encode(), max_items=5)
    store.append("debug", "session-2", b"other", max_items=5)
    assert store.recent("debug", "session-1", 10) == [f"response {i}".encode() for i in (7, 6, 5, 4, 3)]
    assert store.recent("debug", "session-1", 2) == [b"response 7", b"response 6"]
    assert store.recent("debug", "session-1", 0) == []
    assert store.recent("debug", "session-2", 10) == [b"other"]
    assert store.recent("debug", "nobody", 10) == []

    # A list and a value of the same name do not meet; keys() lists values only.
    store.put("debug", "session-1", b"value")
    assert store.get("debug", "session-1") == b"value"
    assert store.recent("debug", "session-1", 1) == [b"response 7"]
    assert store.keys("debug") == ["session-1"]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.put("a:b", "k", b""),
        lambda s: s.get("", "k"),
        lambda s: s.keys("sp ace"),
        lambda s: s.put("ns", "k", b"", ttl=0),
        lambda s: s.add("ns", "k", b"", ttl=-1),
        lambda s: s.append("ns", "k", b"", max_items=0),
    ],
    ids=["colon-namespace", "empty-namespace", "space-namespace", "zero-ttl", "negative-ttl", "zero-cap"],
)
def test_bad_arguments_are_refused(backend: Backend, call: Callable[[Store], object]) -> None:
    with pytest.raises(ValueError):
        call(backend.store)


def test_take_and_add_are_exactly_once_across_threads(backend: Backend) -> None:
    store = backend.store
    for key in RACE_KEYS:
        store.put("pending", key, key.encode())
    barrier = threading.Barrier(RACERS)
    results: list[tuple[list[str], list[str]]] = []

    def race() -> None:
        barrier.wait(timeout=30)
        results.append(_claim(store))

    threads = [threading.Thread(target=race) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    _assert_each_key_once(results)


def _claim(store: Store) -> tuple[list[str], list[str]]:
    added = [key for key in RACE_KEYS if store.add("replay", key, b"seen")]
    taken = [key for key in RACE_KEYS if store.take("pending", key) == key.encode()]
    return added, taken


def _racer(url: str, barrier: Any, results: Any) -> None:
    store = open_store(url, Path("unused.db"))
    try:
        barrier.wait(timeout=60)
        results.put(_claim(store))
    finally:
        store.close()


def _assert_each_key_once(results: list[tuple[list[str], list[str]]]) -> None:
    assert len(results) == RACERS
    added = collections.Counter(key for result in results for key in result[0])
    taken = collections.Counter(key for result in results for key in result[1])
    assert added == collections.Counter(RACE_KEYS)
    assert taken == collections.Counter(RACE_KEYS)


def test_take_and_add_are_exactly_once_across_processes(backend: Backend) -> None:
    for key in RACE_KEYS:
        backend.store.put("pending", key, key.encode())
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(RACERS)
    queue = context.Queue()
    processes = [context.Process(target=_racer, args=(backend.url, barrier, queue)) for _ in range(RACERS)]
    for process in processes:
        process.start()
    try:
        results = [queue.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
        queue.close()
        queue.join_thread()
    assert [process.exitcode for process in processes] == [0] * RACERS
    _assert_each_key_once(results)


# SQLite only.


def test_sqlite_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state" / "store.db"
    old_umask = os.umask(0)
    try:
        store = SQLiteStore(path)
        store.put("keys.meta", "k", b"v")
    finally:
        os.umask(old_umask)
    try:
        for name in ("store.db", "store.db-wal", "store.db-shm"):
            assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        store.close()


def test_sqlite_instances_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    stores: list[SQLiteStore] = []
    barrier = threading.Barrier(RACERS)

    def open_and_write(i: int) -> None:
        barrier.wait(timeout=30)
        store = SQLiteStore(path)  # every worker creates the schema at once
        store.put("sessions", f"s{i}", b"x")
        stores.append(store)

    threads = [threading.Thread(target=open_and_write, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(stores) == RACERS
    assert stores[0].keys("sessions") == [f"s{i}" for i in range(RACERS)]
    for store in stores:
        store.close()


def test_sqlite_store_survives_fork(tmp_path: Path) -> None:
    # gunicorn --preload: the master uses the store, then forks workers that keep using it.
    store = SQLiteStore(tmp_path / "store.db")
    store.put("sessions", "master", b"1")
    pid = os.fork()
    if pid == 0:
        try:
            store.put("sessions", "worker", b"2")
            os._exit(0 if store.get("sessions", "master") == b"1" else 1)
        finally:
            os._exit(2)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert store.keys("sessions") == ["master", "worker"]
    store.close()


def test_sqlite_purges_expired_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "store.db", clock=clock)
    store.put("pending", "old", b"x", ttl=1)
    clock.now += 3600
    store.put("pending", "new", b"y", ttl=1)
    store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as conn:
        assert conn.execute("SELECT key FROM entries").fetchall() == [("new",)]


def test_sqlite_store_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="cannot be created"):
        SQLiteStore(tmp_path)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file" * 100)
    with pytest.raises(StoreUnavailable, match="not a database"):
        SQLiteStore(garbage)


def test_sqlite_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    store.close()
    with pytest.raises(ValueError, match="closed"):
        store.get("sessions", "s1")


# Redis only.


def test_redis_key_layout(redis_url: str) -> None:
    import redis

    store = RedisStore(redis_url)
    try:
        store.put("pending", "_r1", b"x", ttl=30)
        store.append("debug", "_r1", b"y", max_items=3)
        with contextlib.closing(redis.Redis.from_url(redis_url)) as client:
            assert 0 < client.pttl("saml-preflight:pending:_r1") <= 30_000
            assert client.lrange("saml-preflight-list:debug:_r1", 0, -1) == [b"y"]
    finally:
        store.close()


def test_redis_outage_raises_store_unavailable_and_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, password="s3cret-pw")
    server.start()
    store = RedisStore(server.url)
    try:
        store.put("sessions", "s1", b"x")
        server.stop(kill=True)

        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised:
            store.get("sessions", "s1")
        assert time.monotonic() - started < 2
        assert isinstance(raised.value, OSError)
        assert isinstance(raised.value, MetadataError)
        message = str(raised.value)
        assert f"redis://***@127.0.0.1:{server.port}/0" in message  # the password hidden, its place shown
        assert "s3cret" not in message
        assert "s3cret" not in repr(store)
        with pytest.raises(StoreUnavailable):
            store.put("sessions", "s2", b"y")

        server.start()  # same port, same password; the data did not persist
        assert store.get("sessions", "s1") is None
        store.put("sessions", "s1", b"back")
        assert store.get("sessions", "s1") == b"back"
    finally:
        store.close()
        server.stop()


# open_store


def test_open_store_defaults_to_sqlite(tmp_path: Path) -> None:
    store = open_store(None, tmp_path / "default.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "default.db"
    store.close()


@pytest.mark.parametrize("slashes", ["///", "////"])
def test_open_store_sqlite_url(tmp_path: Path, slashes: str) -> None:
    store = open_store(f"sqlite:{slashes}{str(tmp_path).lstrip('/')}/my%20state.db", tmp_path / "default.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "my state.db"
    assert not (tmp_path / "default.db").exists()
    store.close()


@pytest.mark.parametrize("url", ["redis://:pw@127.0.0.1:1/2", "rediss://user:pw@cache.example:6380/0"])
def test_open_store_redis_url_does_not_connect_or_show_password(tmp_path: Path, url: str) -> None:
    store = open_store(url, tmp_path / "default.db")
    assert isinstance(store, RedisStore)
    assert "pw" not in repr(store)
    store.close()


@pytest.mark.parametrize(
    "url", ["", "memory:", "postgres://u:pw@db/x", "sqlite://", "sqlite:///", "sqlite://host/x.db", "unix:///tmp/r"]
)
def test_open_store_refuses_other_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite:///ABSOLUTE/PATH, redis://") as raised:
        open_store(url, tmp_path / "default.db")
    assert "pw" not in str(raised.value)
