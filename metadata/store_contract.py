"""The :class:`Store` seam: its contract, its one error, and the argument checks every
implementation makes the same way (:mod:`metadata.sqlite_store`, :mod:`metadata.redis_store`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from metadata.errors import MetadataError
from metadata.urls import redact_url

__all__ = ["Store", "StoreUnavailable", "check_cap", "check_namespace", "redacted_store_url"]

_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


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

    def put_many(self, items: Sequence[tuple[str, str, bytes, float | None]]) -> None:
        """:meth:`put` each ``(ns, key, value, ttl)`` of `items`, all in one atomic write: every
        argument is checked before anything is stored, and no reader sees some without the others."""

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


def check_namespace(ns: str, ttl: float | None = None) -> None:
    """Refuse a namespace outside the contract's alphabet, or a ttl that is not positive."""
    if not _NAMESPACE.fullmatch(ns):
        raise ValueError(f"store namespace {ns!r} must be 1–64 characters of A-Z a-z 0-9 _ . -")
    if ttl is not None and not ttl > 0:
        raise ValueError(f"store ttl must be a positive number of seconds, not {ttl!r}")


def check_cap(max_items: int) -> None:
    if max_items < 1:
        raise ValueError(f"max_items must be at least 1, not {max_items}")


def redacted_store_url(url: str) -> str:
    """``url`` without its password and query (which may carry ``password=``), for messages."""
    return re.split(r"[?#]", redact_url(url), maxsplit=1)[0]
