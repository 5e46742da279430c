"""The service providers the test IdP answers: registered from SP metadata (a file, or an
https URL through the safe fetcher) or inline in the settings.

A response is only ever sent to an ACS URL registered here (SECURITY.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from metadata.errors import MetadataError
from metadata.model import EntityDescriptor
from metadata.read import read_metadata
from metadata.saml import BINDING_POST
from metadata.service_provider import ServiceProvider
from metadata.xml import parse_untrusted

from .errors import RegistryError
from .settings import ServiceProvider as SPSettings


@dataclass(frozen=True)
class RegisteredSP:
    """An SP as the IdP knows it: what the request checks need, and how to answer it."""

    sp: ServiceProvider
    options: SPSettings
    encryption_certificate: bytes | None = None
    source: str = "inline"
    slo: tuple[tuple[str, str], ...] = ()
    """(binding, URL) of the SP's SingleLogoutService endpoints (ResponseLocation when given)."""

    @property
    def entity_id(self) -> str:
        return self.sp.entity_id


class SPRegistry:
    """Entity ID → registered SP. Several SPs at once; built once at start."""

    def __init__(self, sps: list[RegisteredSP]) -> None:
        self._by_id: dict[str, RegisteredSP] = {}
        for registered in sps:
            if registered.entity_id in self._by_id:
                raise RegistryError(f"the SP {registered.entity_id!r} is registered twice")
            self._by_id[registered.entity_id] = registered

    def get(self, entity_id: str | None) -> RegisteredSP | None:
        return self._by_id.get(entity_id or "")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def entity_ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)


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
    role = entity.sp
    assert role is not None
    if not any(a.binding == BINDING_POST for a in role.acs):
        raise RegistryError(f"SP metadata {source}: {entity.entity_id!r} has no HTTP-POST AssertionConsumerService")
    encryption = next((c.der for k in role.keys if k.use in (None, "encryption") for c in k.certificates if c.der),
                      None)
    if options.encrypt and encryption is None:
        raise RegistryError(f"SP {entity.entity_id!r}: encrypt = true, but its metadata has no encryption key; "
                            "set encrypt = false or add a KeyDescriptor use=\"encryption\"")
    sp = ServiceProvider.from_entity(entity)
    slo = tuple((e.binding, e.response_location or e.location) for e in role.slo)
    return RegisteredSP(sp, options, encryption, source, slo)
