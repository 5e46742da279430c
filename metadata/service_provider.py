"""The SP model: a service provider as an IdP knows it (entity ID, ACS endpoints, whether and
with which certificates it signs), and where a response to one of its AuthnRequests may go."""

from __future__ import annotations

from dataclasses import dataclass

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


def resolve_acs(request: AuthnRequest, sp: ServiceProvider) -> Endpoint | None:
    """Where the response may go (Core §3.4.1), or None when the request names no registered HTTP-POST ACS."""
    if request.acs_index_raw is not None and (request.acs_url is not None or request.protocol_binding is not None):
        return None
    if request.protocol_binding is not None and request.protocol_binding != BINDING_POST:
        return None
    posts = [a for a in sp.acs if a.binding == BINDING_POST]
    if request.acs_url is not None:
        return next((a for a in posts if a.location == request.acs_url), None)
    if request.acs_index_raw is not None:
        return next((a for a in posts if a.index is not None and a.index == request.acs_index), None)
    return default_acs(sp)
