"""A :class:`~metadata.store_contract.Store` in Redis, for services that run on several hosts."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from metadata.store_contract import StoreUnavailable, check_cap, check_namespace, redacted_store_url

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore"]


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
        self.url = redacted_store_url(url)
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
        check_namespace(ns, ttl)
        name, px = _value_name(ns, key), _milliseconds(ttl)
        with self._guard() as client:
            client.set(name, value, px=px)

    def put_many(self, items: Sequence[tuple[str, str, bytes, float | None]]) -> None:
        for ns, _, _, ttl in items:
            check_namespace(ns, ttl)
        if not items:
            return
        with self._guard() as client:
            pipe = client.pipeline(transaction=True)  # MULTI/EXEC: one round trip, all or none seen
            for ns, key, value, ttl in items:
                pipe.set(_value_name(ns, key), value, px=_milliseconds(ttl))
            pipe.execute()

    def add(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        check_namespace(ns, ttl)
        name, px = _value_name(ns, key), _milliseconds(ttl)
        with self._guard() as client:
            return bool(client.set(name, value, px=px, nx=True))

    def get(self, ns: str, key: str) -> bytes | None:
        check_namespace(ns)
        name = _value_name(ns, key)
        with self._guard() as client:
            value = client.get(name)
        return None if value is None else _bytes(value)

    def take(self, ns: str, key: str) -> bytes | None:
        check_namespace(ns)
        name = _value_name(ns, key)
        with self._guard() as client:
            value = client.getdel(name)
        return None if value is None else _bytes(value)

    def delete(self, ns: str, key: str) -> bool:
        check_namespace(ns)
        name = _value_name(ns, key)
        with self._guard() as client:
            return client.delete(name) == 1

    def keys(self, ns: str) -> list[str]:
        check_namespace(ns)
        prefix = _value_name(ns, "")  # the namespace rule keeps glob characters out of the pattern
        with self._guard() as client:
            names = list(client.scan_iter(match=f"{prefix}*", count=1000))
        return sorted({_bytes(name).decode()[len(prefix) :] for name in names})

    def append(self, ns: str, key: str, value: bytes, max_items: int) -> None:
        check_namespace(ns)
        check_cap(max_items)
        name = _list_name(ns, key)
        with self._guard() as client:
            pipe = client.pipeline(transaction=True)
            pipe.lpush(name, value)
            pipe.ltrim(name, 0, max_items - 1)
            pipe.execute()

    def recent(self, ns: str, key: str, n: int) -> list[bytes]:
        check_namespace(ns)
        if n < 1:
            return []  # LRANGE 0 -1 would return the whole list
        with self._guard() as client:
            items = client.lrange(_list_name(ns, key), 0, n - 1)
        return [_bytes(item) for item in items]

    def close(self) -> None:
        self._client.close()
