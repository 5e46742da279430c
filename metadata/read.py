"""XML tree → metadata model. Reads by fixed paths, values with :func:`metadata.xml.text_of`.

The tree comes from :func:`metadata.xml.parse_untrusted` (or from re-parsed signed bytes).
Reading is lenient about what the schema check reports anyway (a bad ``index`` is kept as
None) and strict about meaning: only elements in the right namespaces count.
"""

from __future__ import annotations

import base64
import binascii
import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

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
    SPRole,
)
from metadata.saml import DS, MD, NS, SAML
from metadata.xml import line_of, text_of

_ENTITY = f"{{{MD}}}EntityDescriptor"
_ENTITIES = f"{{{MD}}}EntitiesDescriptor"
_IDP = f"{{{MD}}}IDPSSODescriptor"
_SP = f"{{{MD}}}SPSSODescriptor"
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


def check_root(root: etree._Element) -> None:
    """Raise :class:`NotMetadata` unless `root` is an EntityDescriptor or EntitiesDescriptor."""
    if root.tag not in (_ENTITY, _ENTITIES):
        raise NotMetadata(str(root.tag), line_of(root))


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: the model is acyclic, and building 10,000 entities'
    worth of it under the collector costs a third of the reading time for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_metadata(tree: etree._ElementTree | etree._Element) -> MetadataDocument:
    """Read a metadata document; raise :class:`NotMetadata` when the root is something else."""
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    check_root(root)
    with collector_paused():
        return _document(root)


def _document(root: etree._Element) -> MetadataDocument:
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
    raise NotMetadata(str(root.tag), line_of(root))  # unreachable after check_root


def _walk_entities(group: etree._Element) -> Iterator[etree._Element]:
    # Aggregates may nest EntitiesDescriptor groups (SAML Metadata §2.3.1).
    for child in group.iterchildren(_ENTITY, _ENTITIES):
        if child.tag == _ENTITY:
            yield child
        else:
            yield from _walk_entities(child)


def _has_signature(element: etree._Element) -> bool:
    # A direct child ds:Signature; iterchildren filters in C where find() walks a path in Python.
    return next(element.iterchildren(_SIGNATURE), None) is not None


def _local(tag: str) -> str:
    return tag[tag.rfind("}") + 1 :]


def _entity(element: etree._Element) -> EntityDescriptor:
    idp_roles = []
    sp_roles = []
    others = []
    signed = False
    for child in element.iterchildren(etree.Element):
        tag = child.tag
        if tag == _IDP:
            idp_roles.append(_idp_role(child))
        elif tag == _SIGNATURE:
            signed = True
        elif tag.endswith("Descriptor"):
            others.append(_local(tag))
            if tag == _SP:
                sp_roles.append(_sp_role(child))
    return EntityDescriptor(
        entity_id=element.get("entityID", ""),
        idp_roles=tuple(idp_roles),
        other_roles=tuple(others),
        valid_until=element.get("validUntil"),
        id=element.get("ID"),
        signed=signed,
        line=line_of(element),
        sp_roles=tuple(sp_roles),
    )


_ACS = f"{{{MD}}}AssertionConsumerService"


def _flag(value: str | None) -> bool | None:
    return None if value is None else value.strip() in ("true", "1")


MAX_PER_KIND = 250
"""Children of one kind read from a role (endpoints, keys, formats, attributes); the rest are
counted, not read. Real IdPs list a handful of each (AD FS: some 50 saml:Attribute); 43,000
endpoints in 5 MiB of metadata cost five seconds through the checks, the vendor detection and
the report."""


def _sp_role(role: etree._Element) -> SPRole:
    unread: Counter[str] = Counter()
    return SPRole(
        protocols=tuple(role.get("protocolSupportEnumeration", "").split()),
        acs=tuple(_endpoint(e, "AssertionConsumerService") for e in _capped(role, _ACS, unread)),
        slo=tuple(_endpoint(e, "SingleLogoutService") for e in _capped(role, _SLO, unread)),
        authn_requests_signed=_flag(role.get("AuthnRequestsSigned")),
        want_assertions_signed=_flag(role.get("WantAssertionsSigned")),
        nameid_formats=tuple(text_of(e).strip() for e in _capped(role, _NAMEID_FORMAT, unread)),
        keys=tuple(_key_descriptor(k) for k in _capped(role, _KEY_DESCRIPTOR, unread)),
        line=line_of(role),
        unread=tuple(unread.items()),
    )


def _capped(role: etree._Element, tag: str, unread: Counter[str]) -> Iterator[etree._Element]:
    """The first MAX_PER_KIND children `tag` of `role`; the others are counted in `unread`."""
    for count, child in enumerate(role.iterchildren(tag), 1):
        if count > MAX_PER_KIND:
            unread[f"md:{_local(tag)}"] += 1
        else:
            yield child


_SSO = f"{{{MD}}}SingleSignOnService"
_SLO = f"{{{MD}}}SingleLogoutService"
_NAMEID_FORMAT = f"{{{MD}}}NameIDFormat"
_KEY_DESCRIPTOR = f"{{{MD}}}KeyDescriptor"
_ATTRIBUTE = f"{{{SAML}}}Attribute"
_OTHER_ENDPOINTS = tuple(
    f"{{{MD}}}{kind}"
    for kind in (
        "ArtifactResolutionService", "ManageNameIDService", "NameIDMappingService", "AssertionIDRequestService"
    )
)
_IDP_CHILDREN = (_SSO, _SLO, _NAMEID_FORMAT, _KEY_DESCRIPTOR, _ATTRIBUTE, *_OTHER_ENDPOINTS)


def _idp_role(role: etree._Element) -> IdPRole:
    # One pass over the role's children: aggregates have tens of thousands of roles.
    sso: list[Endpoint] = []
    slo: list[Endpoint] = []
    formats: list[str] = []
    keys: list[KeyDescriptor] = []
    attributes: list[Attribute] = []
    others: list[Endpoint] = []
    unread: dict[str, int] = {}
    for child in role.iterchildren(*_IDP_CHILDREN):
        tag: str = child.tag
        if tag == _SSO:
            if len(sso) < MAX_PER_KIND:
                sso.append(_endpoint(child, "SingleSignOnService"))
                continue
        elif tag == _NAMEID_FORMAT:
            if len(formats) < MAX_PER_KIND:
                formats.append(text_of(child).strip())
                continue
        elif tag == _KEY_DESCRIPTOR:
            if len(keys) < MAX_PER_KIND:
                keys.append(_key_descriptor(child))
                continue
        elif tag == _SLO:
            if len(slo) < MAX_PER_KIND:
                slo.append(_endpoint(child, "SingleLogoutService"))
                continue
        elif tag == _ATTRIBUTE:
            if len(attributes) < MAX_PER_KIND:
                attributes.append(_attribute(child))
                continue
        elif len(others) < MAX_PER_KIND:  # the other endpoints share one budget
            others.append(_endpoint(child, _local(tag)))
            continue
        unread[tag] = unread.get(tag, 0) + 1
    return IdPRole(
        protocols=tuple(role.get("protocolSupportEnumeration", "").split()),
        want_authn_requests_signed=_flag(role.get("WantAuthnRequestsSigned")),
        sso=tuple(sso),
        slo=tuple(slo),
        nameid_formats=tuple(formats),
        keys=tuple(keys),
        attributes=tuple(attributes),
        valid_until=role.get("validUntil"),
        line=line_of(role),
        other_endpoints=tuple(others),
        unread=tuple((_prefixed(tag), n) for tag, n in unread.items()),
    )


LINED_TAGS = (_ENTITY, _IDP, _SP, _SSO, _SLO, _ACS, *_OTHER_ENDPOINTS, _KEY_DESCRIPTOR,
              f"{{{DS}}}X509Certificate", _ATTRIBUTE)
"""Every element whose source line the model keeps (``line``), and no other (the root's line
only when it is an EntityDescriptor). A caller that re-parses signed bytes and carries the
partner's line numbers over needs to carry only these: in document order, the same elements
are these tags in both trees."""


def _prefixed(tag: str) -> str:
    return ("saml:" if tag.startswith(f"{{{SAML}}}") else "md:") + _local(tag)


def _endpoint(element: etree._Element, kind: str) -> Endpoint:
    index = element.get("index")
    default = element.get("isDefault")
    return Endpoint(
        kind=kind,
        binding=element.get("Binding", ""),
        location=element.get("Location", ""),
        response_location=element.get("ResponseLocation"),
        index=int(index) if index is not None and index.isdigit() else None,
        line=line_of(element),
        is_default=None if default is None else default.strip() in ("true", "1"),
    )


_KEY_INFO = f"{{{DS}}}KeyInfo"
_X509_DATA = f"{{{DS}}}X509Data"
_X509_CERTIFICATE = f"{{{DS}}}X509Certificate"
_KEY_NAME = f"{{{DS}}}KeyName"


def _key_descriptor(element: etree._Element) -> KeyDescriptor:
    key_info = next(element.iterchildren(_KEY_INFO), None)
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
        for part in key_info.iterchildren(_X509_DATA, _KEY_NAME):
            if part.tag == _KEY_NAME:
                names.append(text_of(part).strip())
            else:
                certificates.extend(_certificate(c) for c in part.iterchildren(_X509_CERTIFICATE))
    return KeyDescriptor(
        use=element.get("use"),
        certificates=tuple(certificates),
        key_names=tuple(names),
        foreign_keyinfo_namespace=foreign,
        line=line_of(element),
    )


def _certificate(element: etree._Element) -> Certificate:
    text = "".join(text_of(element).split())
    der: bytes | None = None
    if text:
        try:
            # Strict decoding succeeds exactly on canonical base64, where it gives what
            # b64decode(validate=True) gives, without that function's regular expression first.
            der = binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            try:
                der = base64.b64decode(text, validate=True)
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
