"""SP metadata for the tests of runtime SP registration: one EntityDescriptor, or an aggregate of them."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from lxml import etree

from metadata.saml import BINDING_POST, BINDING_REDIRECT, DS, MD, SAMLP

SAML1 = "urn:oasis:names:tc:SAML:1.1:protocol"
NEW_SP = "https://new-sp.example.com/saml/metadata"
NEW_ACS = "https://new-sp.example.com/saml/acs"


def sp_element(
    entity_id: str = NEW_SP,
    acs: Sequence[tuple[str, str]] = ((BINDING_POST, NEW_ACS),),
    *,
    keys: Sequence[tuple[str | None, bytes]] = (),
    authn_requests_signed: bool | None = None,
    protocol: str = SAMLP,
    idp: bool = False,
) -> etree._Element:
    """An EntityDescriptor with one SPSSODescriptor (or an IDPSSODescriptor when `idp`): its ACS
    endpoints as (binding, Location), its keys as (use, DER certificate)."""
    entity = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS}, entityID=entity_id)
    role = etree.SubElement(entity, f"{{{MD}}}{'IDPSSODescriptor' if idp else 'SPSSODescriptor'}",
                            protocolSupportEnumeration=protocol)
    if authn_requests_signed is not None:
        role.set("AuthnRequestsSigned", "true" if authn_requests_signed else "false")
    for use, der in keys:
        descriptor = etree.SubElement(role, f"{{{MD}}}KeyDescriptor")
        if use:
            descriptor.set("use", use)
        data = etree.SubElement(etree.SubElement(descriptor, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
        etree.SubElement(data, f"{{{DS}}}X509Certificate").text = base64.b64encode(der).decode()
    if idp:
        etree.SubElement(role, f"{{{MD}}}SingleSignOnService", Binding=BINDING_REDIRECT,
                         Location="https://idp.example.com/sso")
        return entity
    for index, (binding, location) in enumerate(acs):
        etree.SubElement(role, f"{{{MD}}}AssertionConsumerService", Binding=binding, Location=location,
                         index=str(index))
    return entity


def sp_metadata(entity_id: str = NEW_SP, acs: Sequence[tuple[str, str]] = ((BINDING_POST, NEW_ACS),),
                **options: object) -> str:
    """:func:`sp_element` as a document."""
    return etree.tostring(sp_element(entity_id, acs, **options), encoding="unicode")  # type: ignore[arg-type]


def aggregate(*entities: etree._Element) -> str:
    """An EntitiesDescriptor holding `entities`."""
    group = etree.Element(f"{{{MD}}}EntitiesDescriptor", nsmap={"md": MD}, Name="https://federation.example.org")
    group.extend(entities)
    return etree.tostring(group, encoding="unicode")
