"""XML tree → metadata model. Reads by fixed paths, values with :func:`metadata.xml.text_of`.

The tree comes from :func:`metadata.xml.parse_untrusted` (or from re-parsed signed bytes).
Reading is lenient about what the schema check reports anyway (a bad ``index`` is kept as
None) and strict about meaning: only elements in the right namespaces count.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from lxml import etree

from metadata.errors import MetadataError
from metadata.model import (
    Attribute,
    Certificate,
    Endpoint,
    EntityDescriptor,
    IdPRole,
    KeyDescriptor,
    MetadataDocument,
)
from metadata.xml import line_of, text_of

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"md": MD, "saml": SAML, "ds": DS}

_ENTITY = f"{{{MD}}}EntityDescriptor"
_ENTITIES = f"{{{MD}}}EntitiesDescriptor"
_IDP = f"{{{MD}}}IDPSSODescriptor"
_SIGNATURE = f"{{{DS}}}Signature"


class NotMetadata(MetadataError, ValueError):
    """The document is XML but not SAML metadata (its root element says so)."""

    def __init__(self, root_tag: str, line: int | None) -> None:
        self.root_tag = root_tag
        self.line = line
        super().__init__(
            f"the root element is {_clark_to_prefixed(root_tag)}; SAML metadata starts with "
            "md:EntityDescriptor or md:EntitiesDescriptor"
        )


def _clark_to_prefixed(tag: str) -> str:
    qname = etree.QName(tag)
    prefix = {v: k for k, v in NS.items()}.get(qname.namespace or "")
    if prefix:
        return f"{prefix}:{qname.localname}"
    return f"{qname.localname} (namespace {qname.namespace})" if qname.namespace else qname.localname


def read_metadata(tree: etree._ElementTree | etree._Element) -> MetadataDocument:
    """Read a metadata document; raise :class:`NotMetadata` when the root is something else."""
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    if root.tag == _ENTITY:
        return MetadataDocument(
            root="EntityDescriptor",
            entities=(_entity(root),),
            valid_until=root.get("validUntil"),
            signed=_has_signature(root),
        )
    if root.tag == _ENTITIES:
        return MetadataDocument(
            root="EntitiesDescriptor",
            entities=tuple(_entity(e) for e in _walk_entities(root)),
            valid_until=root.get("validUntil"),
            name=root.get("Name"),
            signed=_has_signature(root),
        )
    raise NotMetadata(str(root.tag), line_of(root))


def _walk_entities(group: etree._Element) -> Iterator[etree._Element]:
    # Aggregates may nest EntitiesDescriptor groups (SAML Metadata §2.3.1).
    for child in group.iterchildren(_ENTITY, _ENTITIES):
        if child.tag == _ENTITY:
            yield child
        else:
            yield from _walk_entities(child)


def _has_signature(element: etree._Element) -> bool:
    return element.find(_SIGNATURE) is not None


def _entity(element: etree._Element) -> EntityDescriptor:
    idp_roles = tuple(_idp_role(r) for r in element.iterchildren(_IDP))
    others = tuple(
        etree.QName(child).localname
        for child in element.iterchildren(etree.Element)
        if child.tag != _IDP and etree.QName(child).localname.endswith("Descriptor")
    )
    return EntityDescriptor(
        entity_id=element.get("entityID", ""),
        idp_roles=idp_roles,
        other_roles=others,
        valid_until=element.get("validUntil"),
        id=element.get("ID"),
        signed=_has_signature(element),
        line=line_of(element),
    )


def _idp_role(role: etree._Element) -> IdPRole:
    want = role.get("WantAuthnRequestsSigned")
    return IdPRole(
        protocols=tuple(role.get("protocolSupportEnumeration", "").split()),
        want_authn_requests_signed=None if want is None else want.strip() in ("true", "1"),
        sso=tuple(_endpoints(role, "SingleSignOnService")),
        slo=tuple(_endpoints(role, "SingleLogoutService")),
        nameid_formats=tuple(text_of(e).strip() for e in role.iterchildren(f"{{{MD}}}NameIDFormat")),
        keys=tuple(_key_descriptor(k) for k in role.iterchildren(f"{{{MD}}}KeyDescriptor")),
        attributes=tuple(_attribute(a) for a in role.iterchildren(f"{{{SAML}}}Attribute")),
        valid_until=role.get("validUntil"),
        line=line_of(role),
    )


def _endpoints(role: etree._Element, kind: str) -> Iterator[Endpoint]:
    for element in role.iterchildren(f"{{{MD}}}{kind}"):
        index = element.get("index")
        yield Endpoint(
            kind=kind,
            binding=element.get("Binding", ""),
            location=element.get("Location", ""),
            response_location=element.get("ResponseLocation"),
            index=int(index) if index is not None and index.isdigit() else None,
            line=line_of(element),
        )


def _key_descriptor(element: etree._Element) -> KeyDescriptor:
    key_info = element.find(f"{{{DS}}}KeyInfo")
    foreign: str | None = None
    certificates: list[Certificate] = []
    names: list[str] = []
    if key_info is None:
        for child in element.iterchildren(etree.Element):
            qname = etree.QName(child)
            if qname.localname == "KeyInfo":
                foreign = qname.namespace or "(no namespace)"
                break
    else:
        for cert in key_info.iterfind("ds:X509Data/ds:X509Certificate", NS):
            certificates.append(_certificate(cert))
        names = [text_of(n).strip() for n in key_info.iterfind("ds:KeyName", NS)]
    return KeyDescriptor(
        use=element.get("use"),
        certificates=tuple(certificates),
        key_names=tuple(names),
        foreign_keyinfo_namespace=foreign,
        line=line_of(element),
    )


def _certificate(element: etree._Element) -> Certificate:
    text = "".join(text_of(element).split())
    try:
        der: bytes | None = base64.b64decode(text, validate=True) if text else None
    except (binascii.Error, ValueError):
        der = None
    return Certificate(der=der, text=text, line=line_of(element))


def _attribute(element: etree._Element) -> Attribute:
    return Attribute(
        name=element.get("Name", ""),
        name_format=element.get("NameFormat"),
        friendly_name=element.get("FriendlyName"),
        line=line_of(element),
    )
