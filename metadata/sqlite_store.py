"""The default :class:`~metadata.store_contract.Store`: one SQLite file, shared by the threads and
worker processes of one host.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from metadata.store_contract import StoreUnavailable, check_cap, check_namespace

__all__ = ["SQLiteStore"]

_PURGE_EVERY = 60.0  # seconds between sweeps of expired SQLite rows


_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS entries (
    ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires REAL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_expiry ON entries (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS lists (
    seq INTEGER PRIMARY KEY, ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS lists_by_name ON lists (ns, key, seq);
COMMIT;
"""


class _ThreadConnection:
    """One thread's connection, closed when the thread ends (its locals are dropped) or on close()."""

    __slots__ = ("__weakref__", "close", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.close = weakref.finalize(self, conn.close)


def _before_fork(ref: weakref.ref[SQLiteStore]) -> None:
    store = ref()
    if store is not None:
        store._drop_thread_connection()


class SQLiteStore:
    """The default store: one SQLite file in WAL mode, safe across threads and processes of one host.

    Each thread opens its own connection (opening one per call costs ~0.5 ms); the forking
    thread's connection is closed before a fork, since SQLite connections must not cross one.
    Writes take the write lock up front (``BEGIN IMMEDIATE``): a deferred transaction that
    reads and then writes can fail with SQLITE_BUSY_SNAPSHOT in WAL mode, which no busy
    timeout waits out. ``synchronous=NORMAL``: in WAL mode a crashed process loses nothing;
    only a power failure may lose the last commits.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._open: weakref.WeakSet[_ThreadConnection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        self._next_purge = 0.0
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Created 0600 before SQLite sees it; SQLite gives the -wal and -shm files the same mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreUnavailable(f"SQLite store {self.path} cannot be created: {exc}") from exc
        self._create_schema()
        os.register_at_fork(before=functools.partial(_before_fork, weakref.ref(self)))

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _create_schema(self) -> None:
        # Workers starting together all do this at once. Switching to WAL takes an exclusive lock
        # for which SQLite may answer "locked" without waiting out the busy timeout, so wait here.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                with self._guard() as conn:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.executescript(_SCHEMA)
                return
            except StoreUnavailable as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _drop_thread_connection(self) -> None:
        holder: _ThreadConnection | None = getattr(self._local, "holder", None)
        if holder is not None:
            self._local.holder = None
            holder.close()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise ValueError(f"{self!r} is closed")
        holder: _ThreadConnection | None = getattr(self._local, "holder", None)
        if holder is None:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            holder = _ThreadConnection(conn)
            self._local.holder = holder
            with self._lock:
                self._open.add(holder)
        return holder.conn

    @contextlib.contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._connection()
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as exc:  # locked past the timeout, unreadable, not a database…
            raise StoreUnavailable(f"SQLite store {self.path} is unavailable: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, float]]:
        with self._guard() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = self._clock()
                if now >= self._next_purge:
                    self._next_purge = now + _PURGE_EVERY
                    conn.execute("DELETE FROM entries WHERE expires <= ?", (now,))
                yield conn, now
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:  # the body or the COMMIT failed
                    conn.execute("ROLLBACK")

    def put(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None:
        check_namespace(ns, ttl)
        with self._write() as (conn, now):
            conn.execute(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                (ns, key, value, None if ttl is None else now + ttl),
            )

    def put_many(self, items: Sequence[tuple[str, str, bytes, float | None]]) -> None:
        for ns, _, _, ttl in items:
            check_namespace(ns, ttl)
        if not items:
            return
        with self._write() as (conn, now):  # one transaction: one lock, one commit
            conn.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                [(ns, key, value, None if ttl is None else now + ttl) for ns, key, value, ttl in items],
            )

    def add(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        check_namespace(ns, ttl)
        with self._write() as (conn, now):
            conn.execute("DELETE FROM entries WHERE ns = ? AND key = ? AND expires <= ?", (ns, key, now))
            cursor = conn.execute(
                "INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?)",
                (ns, key, value, None if ttl is None else now + ttl),
            )
            return cursor.rowcount == 1

    def get(self, ns: str, key: str) -> bytes | None:
        check_namespace(ns)
        with self._guard() as conn:
            row = conn.execute(
                "SELECT value FROM entries WHERE ns = ? AND key = ? AND (expires IS NULL OR expires > ?)",
                (ns, key, self._clock()),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def take(self, ns: str, key: str) -> bytes | None:
        check_namespace(ns)
        with self._write() as (conn, now):
            row = conn.execute("SELECT value, expires FROM entries WHERE ns = ? AND key = ?", (ns, key)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM entries WHERE ns = ? AND key = ?", (ns, key))
        value, expires = row
        return bytes(value) if expires is None or expires > now else None

    def delete(self, ns: str, key: str) -> bool:
        check_namespace(ns)
        with self._write() as (conn, now):
            row = conn.execute("SELECT expires FROM entries WHERE ns = ? AND key = ?", (ns, key)).fetchone()
            conn.execute("DELETE FROM entries WHERE ns = ? AND key = ?", (ns, key))
        return row is not None and (row[0] is None or row[0] > now)

    def keys(self, ns: str) -> list[str]:
        check_namespace(ns)
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT key FROM entries WHERE ns = ? AND (expires IS NULL OR expires > ?) ORDER BY key",
                (ns, self._clock()),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def append(self, ns: str, key: str, value: bytes, max_items: int) -> None:
        check_namespace(ns)
        check_cap(max_items)
        with self._write() as (conn, _):
            conn.execute("INSERT INTO lists (ns, key, value) VALUES (?, ?, ?)", (ns, key, value))
            conn.execute(
                "DELETE FROM lists WHERE ns = ? AND key = ? AND seq <= (SELECT seq FROM lists"
                " WHERE ns = ? AND key = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (ns, key, ns, key, max_items),
            )

    def recent(self, ns: str, key: str, n: int) -> list[bytes]:
        check_namespace(ns)
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT value FROM lists WHERE ns = ? AND key = ? ORDER BY seq DESC LIMIT ?", (ns, key, max(n, 0))
            ).fetchall()
        return [bytes(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            holders = list(self._open)
        for holder in holders:
            holder.close()
