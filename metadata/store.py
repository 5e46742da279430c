"""State shared by the workers of a service: one small :class:`Store` seam, two implementations.

Pending AuthnRequests, IdP sessions, replay caches, key metadata and sweep history all live
here. :class:`SQLiteStore` is the default (one file, shared by the gunicorn workers of one
host); :class:`RedisStore` serves several hosts. :func:`open_store` picks one from a URL.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from metadata.errors import MetadataError
from metadata.urls import redact_url

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore", "SQLiteStore", "Store", "StoreUnavailable", "open_store"]

_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PURGE_EVERY = 60.0  # seconds between sweeps of expired SQLite rows


class StoreUnavailable(MetadataError, OSError):
    """The store cannot be reached or opened; a web layer answers 503 and tries again later."""


class Store(Protocol):
    """Byte values under ``(namespace, key)``, shared by every worker and thread of a service.

    Contract, for every implementation:

    * A namespace is 1–64 characters of ``A-Z a-z 0-9 _ . -`` (a constant chosen in code, never
      user input); otherwise ``ValueError``. Keys are any string.
    * ``ttl`` is in seconds and must be positive; ``None`` keeps the value until it is deleted.
      An expired value is never returned, listed or counted, whether or not it is purged yet.
    * :meth:`add` and :meth:`take` are atomic across processes and hosts: of two callers racing
      to add the same key exactly one gets ``True``; a value is taken by exactly one caller.
      A pending AuthnRequest or an InResponseTo is therefore consumed exactly once.
    * Lists (:meth:`append`, :meth:`recent`) are a separate space from values: a list and a
      value may share a name without meeting. Lists do not expire; they are capped instead.
    * When the backing service cannot be reached every operation raises
      :class:`StoreUnavailable`; the same store object works again once the service is back.
    """

    def put(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``, replacing any current one."""

    def add(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only if the key holds no live value; ``True`` if it was stored."""

    def get(self, ns: str, key: str) -> bytes | None:
        """The live value, or ``None``."""

    def take(self, ns: str, key: str) -> bytes | None:
        """Remove and return the live value, or ``None``; atomic."""

    def delete(self, ns: str, key: str) -> bool:
        """Remove the value; ``True`` if a live one was there."""

    def keys(self, ns: str) -> list[str]:
        """The keys of the live values in ``ns``, sorted."""

    def append(self, ns: str, key: str, value: bytes, max_items: int) -> None:
        """Push ``value`` onto a list that keeps only its ``max_items`` newest items."""

    def recent(self, ns: str, key: str, n: int) -> list[bytes]:
        """Up to ``n`` items of a list, newest first."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""


def _check(ns: str, ttl: float | None = None) -> None:
    if not _NAMESPACE.fullmatch(ns):
        raise ValueError(f"store namespace {ns!r} must be 1–64 characters of A-Z a-z 0-9 _ . -")
    if ttl is not None and not ttl > 0:
        raise ValueError(f"store ttl must be a positive number of seconds, not {ttl!r}")


def _check_cap(max_items: int) -> None:
    if max_items < 1:
        raise ValueError(f"max_items must be at least 1, not {max_items}")


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
        _check(ns, ttl)
        with self._write() as (conn, now):
            conn.execute(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                (ns, key, value, None if ttl is None else now + ttl),
            )

    def add(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        _check(ns, ttl)
        with self._write() as (conn, now):
            conn.execute("DELETE FROM entries WHERE ns = ? AND key = ? AND expires <= ?", (ns, key, now))
            cursor = conn.execute(
                "INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?)",
                (ns, key, value, None if ttl is None else now + ttl),
            )
            return cursor.rowcount == 1

    def get(self, ns: str, key: str) -> bytes | None:
        _check(ns)
        with self._guard() as conn:
            row = conn.execute(
                "SELECT value FROM entries WHERE ns = ? AND key = ? AND (expires IS NULL OR expires > ?)",
                (ns, key, self._clock()),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def take(self, ns: str, key: str) -> bytes | None:
        _check(ns)
        with self._write() as (conn, now):
            row = conn.execute("SELECT value, expires FROM entries WHERE ns = ? AND key = ?", (ns, key)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM entries WHERE ns = ? AND key = ?", (ns, key))
        value, expires = row
        return bytes(value) if expires is None or expires > now else None

    def delete(self, ns: str, key: str) -> bool:
        _check(ns)
        with self._write() as (conn, now):
            row = conn.execute("SELECT expires FROM entries WHERE ns = ? AND key = ?", (ns, key)).fetchone()
            conn.execute("DELETE FROM entries WHERE ns = ? AND key = ?", (ns, key))
        return row is not None and (row[0] is None or row[0] > now)

    def keys(self, ns: str) -> list[str]:
        _check(ns)
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT key FROM entries WHERE ns = ? AND (expires IS NULL OR expires > ?) ORDER BY key",
                (ns, self._clock()),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def append(self, ns: str, key: str, value: bytes, max_items: int) -> None:
        _check(ns)
        _check_cap(max_items)
        with self._write() as (conn, _):
            conn.execute("INSERT INTO lists (ns, key, value) VALUES (?, ?, ?)", (ns, key, value))
            conn.execute(
                "DELETE FROM lists WHERE ns = ? AND key = ? AND seq <= (SELECT seq FROM lists"
                " WHERE ns = ? AND key = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (ns, key, ns, key, max_items),
            )

    def recent(self, ns: str, key: str, n: int) -> list[bytes]:
        _check(ns)
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


def _redacted(url: str) -> str:
    """``url`` without its password and query (which may carry ``password=``), for messages."""
    return re.split(r"[?#]", redact_url(url), maxsplit=1)[0]


def _value_name(ns: str, key: str) -> str:
    return f"saml-preflight:{ns}:{key}"


def _list_name(ns: str, key: str) -> str:
    return f"saml-preflight-list:{ns}:{key}"


def _milliseconds(ttl: float | None) -> int | None:
    return None if ttl is None else math.ceil(ttl * 1000)


def _bytes(value: bytes | str) -> bytes:
    # redis-py types replies as bytes | str; without decode_responses they are always bytes.
    return value.encode() if isinstance(value, str) else value


class RedisStore:
    """A store in Redis, for services on several hosts; keys are ``saml-preflight:{ns}:{key}``.

    Lists live under ``saml-preflight-list:{ns}:{key}``, outside the values' key space. Timeouts
    are short and retries few: an unreachable Redis must become a prompt 503, not a hung worker.
    """

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise ImportError("RedisStore needs redis-py: pip install 'redis>=5'") from exc
        self.url = _redacted(url)
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        # One retry reconnects a pooled connection that died while Redis restarted.
        self._client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1),
        )

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    @contextlib.contextmanager
    def _guard(self) -> Iterator[redis.Redis]:
        try:
            yield self._client
        except self._errors as exc:
            raise StoreUnavailable(f"Redis store {self.url} is unreachable: {exc}") from exc

    def put(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None:
        _check(ns, ttl)
        name, px = _value_name(ns, key), _milliseconds(ttl)
        with self._guard() as client:
            client.set(name, value, px=px)

    def add(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        _check(ns, ttl)
        name, px = _value_name(ns, key), _milliseconds(ttl)
        with self._guard() as client:
            return bool(client.set(name, value, px=px, nx=True))

    def get(self, ns: str, key: str) -> bytes | None:
        _check(ns)
        name = _value_name(ns, key)
        with self._guard() as client:
            value = client.get(name)
        return None if value is None else _bytes(value)

    def take(self, ns: str, key: str) -> bytes | None:
        _check(ns)
        name = _value_name(ns, key)
        with self._guard() as client:
            value = client.getdel(name)
        return None if value is None else _bytes(value)

    def delete(self, ns: str, key: str) -> bool:
        _check(ns)
        name = _value_name(ns, key)
        with self._guard() as client:
            return client.delete(name) == 1

    def keys(self, ns: str) -> list[str]:
        _check(ns)
        prefix = _value_name(ns, "")  # the namespace rule keeps glob characters out of the pattern
        with self._guard() as client:
            names = list(client.scan_iter(match=f"{prefix}*", count=1000))
        return sorted({_bytes(name).decode()[len(prefix) :] for name in names})

    def append(self, ns: str, key: str, value: bytes, max_items: int) -> None:
        _check(ns)
        _check_cap(max_items)
        name = _list_name(ns, key)
        with self._guard() as client:
            pipe = client.pipeline(transaction=True)
            pipe.lpush(name, value)
            pipe.ltrim(name, 0, max_items - 1)
            pipe.execute()

    def recent(self, ns: str, key: str, n: int) -> list[bytes]:
        _check(ns)
        if n < 1:
            return []  # LRANGE 0 -1 would return the whole list
        with self._guard() as client:
            items = client.lrange(_list_name(ns, key), 0, n - 1)
        return [_bytes(item) for item in items]

    def close(self) -> None:
        self._client.close()


def open_store(url: str | None, default_path: Path) -> Store:
    """The store a service is configured with: ``None`` → SQLite at ``default_path``.

    Accepted URLs: ``sqlite:///ABSOLUTE/PATH`` (SQLAlchemy's four slashes work too),
    ``redis://[user:password@]host[:port][/db]`` and ``rediss://…`` (TLS).
    """
    if url is None:
        return SQLiteStore(default_path)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite" and not parts.netloc and parts.path.strip("/") and not (parts.query or parts.fragment):
        return SQLiteStore(Path("/" + unquote(parts.path).lstrip("/")))
    if scheme in ("redis", "rediss"):
        try:
            return RedisStore(url)
        except ValueError:  # redis-py's own words may quote part of the password
            raise ValueError(f"store URL {_redacted(url)!r} is not a valid Redis URL: use "
                             "redis://[user:password@]host[:port][/db] or rediss://… (TLS)") from None
    raise ValueError(
        f"store URL {_redacted(url)!r} is not supported: use sqlite:///ABSOLUTE/PATH,"
        " redis://[user:password@]host[:port][/db] or rediss://… (TLS)"
    )
