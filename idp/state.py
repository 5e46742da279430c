"""Everything one running test IdP holds: settings, signing key, SP registry, store, clock.

Clock and ID generation are injected so that tests pin time and compare whole responses.
The IdP's own records in the store (pending requests, sessions …) are frozen dataclasses written
as JSON objects by :meth:`IdPState.put_record` and read back by :meth:`IdPState.get_record`.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from flask import current_app

from metadata.crm import CRMRecord
from metadata.keys import KeyFolder, KeyPair
from metadata.store import Store, StoreUnavailable, open_store
from metadata.write import new_id as default_new_id

from .registry import SPRegistry, register
from .settings import Persona, Settings
from .vendors import VendorProfile, idp_entity_id, profile

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R")


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class IdPState:
    settings: Settings
    keys: KeyFolder
    store: Store
    registry: SPRegistry
    clock: Callable[[], datetime] = _utc_now
    new_id: Callable[[], str] = default_new_id
    personas: dict[str, Persona] = field(default_factory=dict)
    crm: CRMRecord | None = None
    """The biller's CRM record when the IdP plays that biller (``saml-idp serve --crm``)."""

    # The settings are fixed for the app's life: what derives from them is worked out once.
    @functools.cached_property
    def vendor(self) -> VendorProfile:
        return profile(self.settings.server.vendor)

    @property
    def key(self) -> KeyPair:
        """The current signing key, read from the key folder each time: a rotation (``saml-idp keygen
        --rotate``) takes effect at once in every worker, and a key file opened to others is refused."""
        return self.keys.current()

    @functools.cached_property
    def entity_id(self) -> str:
        return idp_entity_id(self.settings.server)

    def url(self, path: str) -> str:
        return f"{self.settings.server.base_url.rstrip('/')}{path}"

    @property
    def sso_urls(self) -> tuple[str, ...]:
        return (self.url("/sso"),)

    # The IdP's records in the store: the one place they become JSON and back ------------------
    def put_record(self, ns: str, key: str, record: DataclassInstance, ttl: float | None = None) -> None:
        """Keep `record` (a flat dataclass of JSON values) under `ns` and `key` as a JSON object."""
        self.store.put(*record_item(ns, key, record, ttl))

    def get_record(self, ns: str, key: str, kind: Callable[..., R], *, take: bool = False) -> R | None:
        """The record under `ns` and `key` as a `kind` (its fields from the JSON object), or None;
        `take` removes it (atomically: of two workers, one gets it)."""
        raw = self.store.take(ns, key) if take else self.store.get(ns, key)
        return kind(**json.loads(raw)) if raw else None


def record_item(
    ns: str, key: str, record: DataclassInstance, ttl: float | None = None
) -> tuple[str, str, bytes, float | None]:
    """What :meth:`IdPState.put_record` stores, as an item for :meth:`Store.put_many`."""
    return ns, key, json.dumps(vars(record)).encode(), ttl  # vars: asdict deep-copies


def build_state(
    settings: Settings,
    *,
    base: Path = Path("."),
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    new_id: Callable[[], str] | None = None,
    crm: CRMRecord | None = None,
) -> IdPState:
    """Open (or create) the key folder and the store, and register every configured SP; the SPs
    registered at runtime are read from the store when asked for (:class:`SPRegistry`)."""
    server = settings.server
    keys = KeyFolder(base / server.key_folder)
    now = (clock or _utc_now)()
    keys.ensure(f"SAML Preflight test IdP ({idp_entity_id(server)})"[:64], server.key_kind, now=now)
    store = store or open_store(server.store, base / "var" / "idp" / "state.sqlite3")
    registry = SPRegistry([register(options, base=base) for options in settings.sps], store)
    return IdPState(
        settings=settings, keys=keys, store=store, registry=registry, clock=clock or _utc_now,
        new_id=new_id or default_new_id, personas={p.id: p for p in settings.personas}, crm=crm,
    )


def state() -> IdPState:
    """The IdP of the current Flask app."""
    found: IdPState = current_app.extensions["saml_idp"]
    return found


def secret_token() -> str:
    return secrets.token_urlsafe(24)


SECRET = ("idp-config", "session-secret")
"""Where the IdP's own secret lives in the store: Flask's session key and the key of pairwise
persistent NameIDs, the same for every worker and restart."""


def shared_secret(store: Store) -> bytes:
    """The IdP's secret from the store, created by whichever worker asks first. Asked for on each
    use: a store that lost it (a Redis without persistence, restarted) gets a new one, never none."""
    value = store.get(*SECRET)
    if not value:
        store.add(*SECRET, secrets.token_hex(32).encode())  # of two workers adding at once, one wins
        value = store.get(*SECRET)
    if not value:
        raise StoreUnavailable(f"{store!r} lost the IdP secret right after storing it")
    return value
