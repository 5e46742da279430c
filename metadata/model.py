"""The SAML 2.0 metadata model (SAML Metadata 2.0, OASIS saml-metadata-2.0-os): frozen
data read from a document by :mod:`metadata.read`, free of lxml objects.

Only what the checks need is modelled. Each element keeps its source ``line`` so that
findings can point into the partner's file.
"""

from __future__ import annotations

from dataclasses import dataclass

from metadata.saml import SAMLP


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An EndpointType / IndexedEndpointType element (SingleSignOnService, …)."""

    kind: str
    """The element's local name, e.g. ``SingleSignOnService``."""
    binding: str
    location: str
    response_location: str | None = None
    index: int | None = None
    line: int | None = None
    is_default: bool | None = None
    """isDefault of an indexed endpoint (an SP's AssertionConsumerService)."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """One ds:X509Certificate, as base64 text from the document and decoded DER."""

    der: bytes | None
    """None when the base64 text could not be decoded."""
    text: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class KeyDescriptor:
    use: str | None
    """``signing``, ``encryption`` or None (no ``use``: the key serves both, §2.4.1.1)."""
    certificates: tuple[Certificate, ...]
    key_names: tuple[str, ...] = ()
    foreign_keyinfo_namespace: str | None = None
    """When KeyInfo was found outside the XML-DSig namespace (a typo such as
    ``https://www.w3.org/2000/09/xmldsig#``), that namespace; such a key is unusable."""
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Attribute:
    """A saml:Attribute offered in metadata (ADFS, PingOne, vCenter list them)."""

    name: str
    name_format: str | None
    friendly_name: str | None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class IdPRole:
    """An IDPSSODescriptor."""

    protocols: tuple[str, ...]
    want_authn_requests_signed: bool | None
    sso: tuple[Endpoint, ...]
    slo: tuple[Endpoint, ...]
    nameid_formats: tuple[str, ...]
    keys: tuple[KeyDescriptor, ...]
    attributes: tuple[Attribute, ...]
    valid_until: str | None = None
    line: int | None = None
    other_endpoints: tuple[Endpoint, ...] = ()
    """ArtifactResolutionService, ManageNameIDService, NameIDMappingService, AssertionIDRequestService."""
    unread: tuple[tuple[str, int], ...] = ()
    """Children past :data:`metadata.read.MAX_PER_KIND` of one kind, not read: (element name, count)."""

    @property
    def supports_saml2(self) -> bool:
        return SAMLP in self.protocols


@dataclass(frozen=True, slots=True)
class SPRole:
    """An SPSSODescriptor: where a test IdP may send responses, and with which keys."""

    protocols: tuple[str, ...]
    acs: tuple[Endpoint, ...]
    slo: tuple[Endpoint, ...]
    authn_requests_signed: bool | None
    want_assertions_signed: bool | None
    nameid_formats: tuple[str, ...]
    keys: tuple[KeyDescriptor, ...]
    line: int | None = None
    unread: tuple[tuple[str, int], ...] = ()
    """Children past :data:`metadata.read.MAX_PER_KIND` of one kind, not read: (element name, count)."""

    @property
    def supports_saml2(self) -> bool:
        return SAMLP in self.protocols


@dataclass(frozen=True, slots=True)
class EntityDescriptor:
    entity_id: str
    idp_roles: tuple[IdPRole, ...]
    other_roles: tuple[str, ...]
    """Local names of the other role descriptors (SPSSODescriptor, RoleDescriptor, …)."""
    valid_until: str | None = None
    id: str | None = None
    signed: bool = False
    """Has a ds:Signature as a direct child."""
    line: int | None = None
    sp_roles: tuple[SPRole, ...] = ()

    @property
    def sp(self) -> SPRole | None:
        """The first SAML 2.0 SPSSODescriptor, if any."""
        return next((role for role in self.sp_roles if role.supports_saml2), None)

    @property
    def idp(self) -> IdPRole | None:
        """The first SAML 2.0 IDPSSODescriptor, else the first one of any protocol."""
        for role in self.idp_roles:
            if role.supports_saml2:
                return role
        return self.idp_roles[0] if self.idp_roles else None


@dataclass(frozen=True, slots=True)
class MetadataDocument:
    """A whole metadata document: one EntityDescriptor or an EntitiesDescriptor aggregate."""

    root: str
    """``EntityDescriptor`` or ``EntitiesDescriptor``."""
    entities: tuple[EntityDescriptor, ...]
    valid_until: str | None = None
    """validUntil of the root (for an aggregate, it bounds every entity inside)."""
    name: str | None = None
    signed: bool = False

    def find(self, entity_id: str) -> EntityDescriptor | None:
        for entity in self.entities:
            if entity.entity_id == entity_id:
                return entity
        return None

    @property
    def idp_entities(self) -> tuple[EntityDescriptor, ...]:
        return tuple(e for e in self.entities if e.idp_roles)
