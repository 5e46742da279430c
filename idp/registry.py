"""The service providers the test IdP answers: registered from SP metadata (a file, or an
https URL through the safe fetcher) or inline in the settings, and at runtime through the API or
the ``/sps`` page (:mod:`idp.registrations`), kept in the store.

A response is only ever sent to an ACS URL registered here (SECURITY.md §5).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError

from metadata.errors import MetadataError
from metadata.model import EntityDescriptor
from metadata.read import read_metadata
from metadata.saml import BINDING_POST
from metadata.service_provider import ServiceProvider
from metadata.store import Store
from metadata.xml import PASTED_LIMITS, copied_limits, parse_untrusted

from .errors import RegistryError
from .settings import ServiceProvider as SPSettings

log = logging.getLogger("idp")

FILE = "file"
"""The source of an SP from idp.toml; a stored one's is ``api`` or ``page``."""
RUNTIME_SOURCES = ("api", "page")
STORED = "idp-sps"
"""The store namespace of the SPs registered at runtime: entity ID → :func:`stored_value`."""
STORED_LIMITS = copied_limits(PASTED_LIMITS)
"""A stored SP's metadata: one EntityDescriptor, serialised alone, at most 1 MiB."""
CACHED = 256
"""Parsed stored SPs kept per process (a replaced one leaves its old value behind until pushed out)."""


class StoredSPError(RegistryError):
    """A stored SP's value does not read back (bad JSON, options or metadata)."""


@dataclass(frozen=True)
class RegisteredSP:
    """An SP as the IdP knows it: what the request checks need, and how to answer it."""

    sp: ServiceProvider
    options: SPSettings
    encryption_certificate: bytes | None = None
    source: str = FILE
    """Where it was registered: ``file`` (idp.toml), ``api`` or ``page`` (stored, see :class:`SPRegistry`)."""
    slo: tuple[tuple[str, str], ...] = ()
    """(binding, URL) of the SP's SingleLogoutService endpoints (ResponseLocation when given)."""
    registered_at: str | None = None
    registered_by: str | None = None
    """Who registered a stored SP: the free text given (``by``), or None."""
    metadata_url: str | None = None
    """The URL its metadata was fetched from, when it was."""

    @property
    def entity_id(self) -> str:
        return self.sp.entity_id

    @property
    def stored(self) -> bool:
        """Registered at runtime (API or page), so it may be replaced or deleted; a file SP may not."""
        return self.source != FILE


class SPRegistry:
    """Entity ID → registered SP: the SPs of idp.toml, built once at start, then those registered at
    runtime, kept in the store under :data:`STORED` so that every worker and host sharing it sees them.

    A stored SP is its metadata and options as JSON (:func:`stored_value`). It is parsed when first
    looked up in this process, then found by the SHA-256 of the stored value in a small cache: a
    lookup is one store read. A stored value that no longer reads (a newer rule, a hand-edited store)
    is logged once and treated as not registered; it can still be deleted.
    """

    def __init__(self, sps: list[RegisteredSP], store: Store | None = None) -> None:
        self._by_id: dict[str, RegisteredSP] = {}
        for registered in sps:
            if registered.entity_id in self._by_id:
                raise RegistryError(f"the SP {registered.entity_id!r} is registered twice")
            self._by_id[registered.entity_id] = registered
        self._store = store
        self._parsed: OrderedDict[bytes, RegisteredSP | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, entity_id: str | None) -> RegisteredSP | None:
        found = self._by_id.get(entity_id or "")
        if found is not None or not entity_id or self._store is None:
            return found
        raw = self._store.get(STORED, entity_id)
        return self._parse(entity_id, raw) if raw is not None else None

    def file_sp(self, entity_id: str) -> RegisteredSP | None:
        """The SP of idp.toml with this entity ID (never replaced or deleted at runtime), or None."""
        return self._by_id.get(entity_id)

    def stored_ids(self) -> list[str]:
        """The entity IDs of the stored SPs that a file SP does not shadow, sorted; readable or not."""
        if self._store is None:
            return []
        return [key for key in self._store.keys(STORED) if key not in self._by_id]

    def __iter__(self) -> Iterator[RegisteredSP]:
        yield from self._by_id.values()
        for entity_id in self.stored_ids():
            found = self.get(entity_id)
            if found is not None:
                yield found

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def entity_ids(self) -> tuple[str, ...]:
        """File SPs first, then the stored ones: one store call, no parse."""
        return (*self._by_id, *self.stored_ids())

    def _parse(self, entity_id: str, raw: bytes) -> RegisteredSP | None:
        digest = hashlib.sha256(raw).digest()
        with self._lock:
            if digest in self._parsed:
                self._parsed.move_to_end(digest)
                return self._parsed[digest]
        try:
            parsed: RegisteredSP | None = from_stored(raw)
        except StoredSPError as exc:
            log.error("the stored SP %r is treated as not registered: %s", entity_id, exc)
            parsed = None
        if parsed is not None and parsed.entity_id != entity_id:
            log.error("the stored SP %r is treated as not registered: its metadata is for %r", entity_id,
                      parsed.entity_id)
            parsed = None
        self._cache(digest, parsed)
        return parsed

    def remember(self, raw: bytes) -> RegisteredSP:
        """The SP that `raw` (a :func:`stored_value` about to be stored) describes, cached for the
        lookups of this process; :class:`StoredSPError` when it does not read."""
        parsed = from_stored(raw)
        self._cache(hashlib.sha256(raw).digest(), parsed)
        return parsed

    def _cache(self, digest: bytes, parsed: RegisteredSP | None) -> None:
        with self._lock:
            self._parsed[digest] = parsed
            while len(self._parsed) > CACHED:
                self._parsed.popitem(last=False)


def stored_value(entity_xml: str, options: SPSettings, *, source: str, at: str, by: str | None,
                 metadata_url: str | None) -> bytes:
    """What the store keeps for an SP registered at runtime: its EntityDescriptor's XML and options as JSON."""
    record = {"metadata": entity_xml, "options": options.model_dump(include=set(STORED_OPTIONS), exclude_none=True),
              "source": source, "registered_at": at, "registered_by": by, "metadata_url": metadata_url}
    return json.dumps(record, sort_keys=True).encode()


STORED_OPTIONS = ("sign", "encrypt", "name_format", "nameid_format")
"""The per-SP options an SP registered at runtime may have (those of ``[[sps]]`` besides where it is)."""


def from_stored(raw: bytes) -> RegisteredSP:
    """The SP a :func:`stored_value` describes; :class:`StoredSPError` when it does not read."""
    try:
        record = json.loads(raw)
        if not isinstance(record, dict) or not isinstance(record.get("metadata"), str):
            raise StoredSPError("not a JSON object with the metadata as a string")
        options = SPSettings.model_validate(record.get("options", {}))
        document = read_metadata(parse_untrusted(record["metadata"].encode(), STORED_LIMITS))
        if len(document.entities) != 1:
            raise StoredSPError(f"{len(document.entities)} entities where one was stored")
        registered = _registered(document.entities[0], options, "stored metadata")
    except (ValueError, MetadataError, ValidationError, RegistryError) as exc:  # JSONDecodeError is a ValueError
        raise StoredSPError(str(exc).splitlines()[0]) from exc
    source = record.get("source") if record.get("source") in RUNTIME_SOURCES else RUNTIME_SOURCES[0]
    return replace(registered, source=str(source), registered_at=_text(record, "registered_at"),
                   registered_by=_text(record, "registered_by"), metadata_url=_text(record, "metadata_url"))


def _text(record: dict[str, object], key: str) -> str | None:
    value = record.get(key)
    return value if isinstance(value, str) else None


def register(options: SPSettings, *, base: Path = Path(".")) -> RegisteredSP:
    """One SP from its settings: metadata (file or URL) or inline entity ID and ACS URLs."""
    if options.metadata:
        return _from_metadata(options, _metadata_bytes(options.metadata, base))
    if not options.entity_id or not options.acs:
        raise RegistryError("an inline SP needs entity_id and at least one acs URL (or give its metadata)")
    return RegisteredSP(ServiceProvider.inline(options.entity_id, options.acs), options)


def _metadata_bytes(location: str, base: Path) -> bytes:
    if "://" in location:
        # Loaded only for an SP whose metadata is a URL: the safe fetcher brings urllib3 in.
        from metadata.fetch import FetchError, fetch

        try:
            return fetch(location).body
        except FetchError as exc:
            raise RegistryError(f"SP metadata {location}: {exc.message}") from exc
    path = base / location
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"SP metadata {path}: {exc.strerror or exc}") from exc


def _from_metadata(options: SPSettings, data: bytes) -> RegisteredSP:
    source = options.metadata or "metadata"
    try:
        document = read_metadata(parse_untrusted(data))
    except MetadataError as exc:
        raise RegistryError(f"SP metadata {source}: {exc}") from exc
    candidates = [e for e in document.entities if e.sp is not None]
    if options.entity_id:
        candidates = [e for e in candidates if e.entity_id == options.entity_id]
    if len(candidates) != 1:
        found = ", ".join(e.entity_id for e in document.entities if e.sp) or "none"
        raise RegistryError(f"SP metadata {source}: expected one SP entity"
                            f"{f' {options.entity_id!r}' if options.entity_id else ''}; found {found}")
    return _registered(candidates[0], options, source)


def _registered(entity: EntityDescriptor, options: SPSettings, source: str) -> RegisteredSP:
    """The SP of `entity` (`source` names its metadata in errors): refused without an HTTP-POST ACS, or
    when encryption is asked for and it has no encryption certificate."""
    role = entity.sp
    if role is None:
        raise RegistryError(f"SP metadata {source}: {entity.entity_id!r} has no SAML 2.0 SPSSODescriptor")
    if not any(a.binding == BINDING_POST for a in role.acs):
        raise RegistryError(f"SP metadata {source}: {entity.entity_id!r} has no HTTP-POST AssertionConsumerService")
    encryption = next((c.der for k in role.keys if k.use in (None, "encryption") for c in k.certificates if c.der),
                      None)
    if options.encrypt and encryption is None:
        raise RegistryError(f"SP {entity.entity_id!r}: encrypt = true, but its metadata has no encryption key; "
                            "set encrypt = false or add a KeyDescriptor use=\"encryption\"")
    sp = ServiceProvider.from_entity(entity)
    slo = tuple((e.binding, e.response_location or e.location) for e in role.slo)
    return RegisteredSP(sp, options, encryption, slo=slo)
