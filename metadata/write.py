"""Model → XML: the test IdP's own metadata, built with lxml elements (never strings).

:func:`idp_metadata_xml` gives an ``md:EntityDescriptor`` with one IDPSSODescriptor, valid
against the OASIS metadata schema and carrying an ``ID`` so that
``metadata.signing.sign(element, …, after=None)`` can sign it (SAML Metadata §3.1.1).
Sign before serialising with any indentation: whitespace added later breaks the signature.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from lxml import etree

from metadata.errors import MetadataError
from metadata.saml import DS, MD, SAMLP

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

ContactType = Literal["technical", "support", "administrative", "billing", "other"]


class MetadataWriteError(MetadataError, ValueError):
    """Input from which no schema-valid metadata can be written."""


def new_id() -> str:
    """A fresh XML ID: ``_`` and 40 hex characters from `secrets` (SECURITY.md §5).

    The leading underscore makes it an NCName (an xs:ID may not start with a digit).
    """
    return "_" + secrets.token_hex(20)


def xs_datetime(when: datetime) -> str:
    """`when` as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (SAML Core §1.3.3: UTC, no time zone offset)."""
    if when.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; pass an aware UTC datetime")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Organization:
    """md:Organization (SAML Metadata §2.3.2.1); each value is written once, in `lang`."""

    name: str
    display_name: str
    url: str
    lang: str = "en"


@dataclass(frozen=True)
class Contact:
    """md:ContactPerson (SAML Metadata §2.3.2.2)."""

    contact_type: ContactType
    company: str | None = None
    given_name: str | None = None
    surname: str | None = None
    email: str | None = None
    """An address; ``mailto:`` is added when missing (the schema types it as anyURI)."""
    telephone: str | None = None


def idp_metadata_xml(
    entity_id: str,
    sso_urls: Mapping[str, str],
    slo_urls: Mapping[str, str],
    certificates: Sequence[bytes],
    nameid_formats: Sequence[str],
    want_authn_requests_signed: bool,
    valid_until: datetime | None = None,
    *,
    organization: Organization | None = None,
    contacts: Sequence[Contact] = (),
    document_id: str | None = None,
) -> etree._Element:
    """An md:EntityDescriptor for an IdP.

    `sso_urls` and `slo_urls` map a binding URI (:data:`BINDING_REDIRECT`, :data:`BINDING_POST`) to
    a location; `certificates` are DER, published in order as KeyDescriptor use="signing"
    (the current key first during a rollover). `document_id` defaults to :func:`new_id`.
    """
    if not sso_urls:
        raise MetadataWriteError("an IDPSSODescriptor needs at least one SingleSignOnService")
    if not certificates:
        raise MetadataWriteError("an IdP needs at least one signing certificate")
    entity = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS})
    entity.set("entityID", entity_id)
    entity.set("ID", document_id or new_id())
    if valid_until is not None:
        entity.set("validUntil", xs_datetime(valid_until))
    idp = etree.SubElement(entity, f"{{{MD}}}IDPSSODescriptor")
    idp.set("protocolSupportEnumeration", SAMLP)
    idp.set("WantAuthnRequestsSigned", "true" if want_authn_requests_signed else "false")
    # Child order is the schema's: KeyDescriptor*, SingleLogoutService*, NameIDFormat*,
    # SingleSignOnService+ (SSODescriptorType, then IDPSSODescriptorType).
    for der in certificates:
        descriptor = etree.SubElement(idp, f"{{{MD}}}KeyDescriptor", use="signing")
        key_info = etree.SubElement(descriptor, f"{{{DS}}}KeyInfo")
        x509_data = etree.SubElement(key_info, f"{{{DS}}}X509Data")
        etree.SubElement(x509_data, f"{{{DS}}}X509Certificate").text = base64.b64encode(der).decode("ascii")
    for binding, location in slo_urls.items():
        etree.SubElement(idp, f"{{{MD}}}SingleLogoutService", Binding=binding, Location=location)
    for nameid_format in nameid_formats:
        etree.SubElement(idp, f"{{{MD}}}NameIDFormat").text = nameid_format
    for binding, location in sso_urls.items():
        etree.SubElement(idp, f"{{{MD}}}SingleSignOnService", Binding=binding, Location=location)
    if organization is not None:
        entity.append(_organization(organization))
    for contact in contacts:
        entity.append(_contact(contact))
    return entity


def _organization(org: Organization) -> etree._Element:
    element = etree.Element(f"{{{MD}}}Organization")
    for tag, value in (("OrganizationName", org.name), ("OrganizationDisplayName", org.display_name),
                       ("OrganizationURL", org.url)):
        child = etree.SubElement(element, f"{{{MD}}}{tag}")
        child.set(_XML_LANG, org.lang)
        child.text = value
    return element


def _contact(contact: Contact) -> etree._Element:
    element = etree.Element(f"{{{MD}}}ContactPerson", contactType=contact.contact_type)
    email = contact.email
    if email is not None and not email.lower().startswith("mailto:"):
        email = "mailto:" + email
    for tag, value in (("Company", contact.company), ("GivenName", contact.given_name),
                       ("SurName", contact.surname), ("EmailAddress", email),
                       ("TelephoneNumber", contact.telephone)):
        if value is not None:
            etree.SubElement(element, f"{{{MD}}}{tag}").text = value
    return element
