"""State shared by the workers of a service: one small :class:`Store` seam, two implementations.

Pending AuthnRequests, IdP sessions, replay caches, key metadata and sweep history all live
here. :class:`SQLiteStore` is the default (one file, shared by the gunicorn workers of one
host); :class:`RedisStore` serves several hosts. :func:`open_store` picks one from a URL.

The contract is in :mod:`metadata.store_contract`, the implementations in
:mod:`metadata.sqlite_store` and :mod:`metadata.redis_store`; this module is where the rest of
the code base takes them from.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from metadata.redis_store import RedisStore
from metadata.sqlite_store import SQLiteStore
from metadata.store_contract import Store, StoreUnavailable, redacted_store_url

__all__ = ["RedisStore", "SQLiteStore", "Store", "StoreUnavailable", "open_store"]


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
            raise ValueError(f"store URL {redacted_store_url(url)!r} is not a valid Redis URL: use "
                             "redis://[user:password@]host[:port][/db] or rediss://… (TLS)") from None
    raise ValueError(
        f"store URL {redacted_store_url(url)!r} is not supported: use sqlite:///ABSOLUTE/PATH,"
        " redis://[user:password@]host[:port][/db] or rediss://… (TLS)"
    )
