"""The SP model: a service provider as an IdP knows it (entity ID, ACS endpoints, whether and
with which certificates it signs), and where a response to one of its AuthnRequests may go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from metadata.authn_request import AuthnRequest
from metadata.model import Endpoint, EntityDescriptor
from metadata.saml import BINDING_POST


@dataclass(frozen=True)
class ServiceProvider:
    """A registered SP, as the IdP's SP registry builds it from SP metadata."""

    entity_id: str
    acs: tuple[Endpoint, ...]
    """Its AssertionConsumerService endpoints, as the metadata model reads them."""
    authn_requests_signed: bool = False
    signing_certificates: tuple[bytes, ...] = ()
    """DER certificates of the SP's signing keys."""

    @classmethod
    def from_entity(cls, entity: EntityDescriptor) -> ServiceProvider:
        """The SP an entity's SPSSODescriptor describes; signing certificates are those of keys
        with use="signing" or no use (Metadata §2.4.1.1)."""
        role = entity.sp
        if role is None:
            raise ValueError(f"{entity.entity_id!r} has no SPSSODescriptor")
        signing = tuple(c.der for k in role.keys if k.use in (None, "signing") for c in k.certificates if c.der)
        return cls(entity.entity_id, role.acs, bool(role.authn_requests_signed), signing)

    @classmethod
    def inline(cls, entity_id: str, acs_urls: tuple[str, ...] | list[str]) -> ServiceProvider:
        """An SP described without metadata: HTTP-POST ACS URLs, the first the default."""
        return cls(entity_id, tuple(acs_endpoint(url, index=i, is_default=(i == 0)) for i, url in enumerate(acs_urls)))


def acs_endpoint(location: str, *, binding: str = BINDING_POST, index: int | None = None,
                 is_default: bool | None = None) -> Endpoint:
    """An AssertionConsumerService endpoint."""
    return Endpoint("AssertionConsumerService", binding, location, index=index, is_default=is_default)


def default_acs(sp: ServiceProvider) -> Endpoint | None:
    """The default HTTP-POST ACS (Metadata §2.2.3): the first with isDefault="true", else the first
    without isDefault="false", else the first. Only HTTP-POST ones count: the IdP only posts."""
    posts = [a for a in sp.acs if a.binding == BINDING_POST]
    for candidate in (a for a in posts if a.is_default), (a for a in posts if a.is_default is not False):
        chosen = next(candidate, None)
        if chosen is not None:
            return chosen
    return posts[0] if posts else None


AcsRequest = Literal["conflict", "url", "index", "default"]


@dataclass(frozen=True)
class AcsResolution:
    """How a response's ACS is decided for one AuthnRequest (Core §3.4.1): what the request asks
    for, which of the SP's ACS that names, and where the response may go (:attr:`endpoint`)."""

    asked_by: AcsRequest
    """AssertionConsumerServiceURL (``url``), AssertionConsumerServiceIndex (``index``), neither
    (``default``), or the index together with a URL or a ProtocolBinding (``conflict``)."""
    named: tuple[Endpoint, ...] = ()
    """The SP's ACS endpoints with the requested URL or index, in any binding, in metadata order."""
    candidate: Endpoint | None = None
    """The first HTTP-POST endpoint of `named`; for ``default``, the SP's default HTTP-POST ACS."""
    other_binding: str | None = None
    """The ProtocolBinding asked for, when it is not HTTP-POST."""
    conflicting: tuple[str, ...] = ()
    """For ``conflict``: the attributes sent together with AssertionConsumerServiceIndex."""

    @property
    def endpoint(self) -> Endpoint | None:
        """Where the response may go: None on a conflict, for another binding than HTTP-POST, or when
        the request names no registered HTTP-POST ACS."""
        return None if self.asked_by == "conflict" or self.other_binding is not None else self.candidate


def _first_post(endpoints: tuple[Endpoint, ...]) -> Endpoint | None:
    return next((a for a in endpoints if a.binding == BINDING_POST), None)


def _sent_with_index(request: AuthnRequest) -> tuple[str, ...]:
    """Core §3.4.1: AssertionConsumerServiceIndex excludes AssertionConsumerServiceURL and ProtocolBinding."""
    if request.acs_index_raw is None:
        return ()
    sent = (("AssertionConsumerServiceURL", request.acs_url), ("ProtocolBinding", request.protocol_binding))
    return tuple(name for name, value in sent if value is not None)


def acs_resolution(request: AuthnRequest, sp: ServiceProvider | None) -> AcsResolution:
    """The whole decision of :func:`resolve_acs`, with what the request named; without a registered
    SP (`sp` None) only what the request itself says is decided."""
    binding = request.protocol_binding
    other = binding if binding is not None and binding != BINDING_POST else None
    conflicting = _sent_with_index(request)
    if conflicting:
        return AcsResolution("conflict", other_binding=other, conflicting=conflicting)
    acs = sp.acs if sp is not None else ()
    if request.acs_url is not None:
        named = tuple(a for a in acs if a.location == request.acs_url)
        return AcsResolution("url", named, _first_post(named), other)
    if request.acs_index_raw is not None:
        named = tuple(a for a in acs if a.index is not None and a.index == request.acs_index)
        return AcsResolution("index", named, _first_post(named), other)
    return AcsResolution("default", (), default_acs(sp) if sp is not None else None, other)


def resolve_acs(request: AuthnRequest, sp: ServiceProvider) -> Endpoint | None:
    """Where the response may go (Core §3.4.1), or None when the request names no registered HTTP-POST ACS."""
    return acs_resolution(request, sp).endpoint
