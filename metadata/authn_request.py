"""The AuthnRequest model (SAML Core §3.4.1): what an SP asks of the IdP, read by fixed paths
from a tree the one parser made. The IdP answers from it and the validator's request checks
judge it; neither reads the XML again."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from metadata.errors import MetadataError
from metadata.saml import DS, SAML, SAMLP
from metadata.xml import line_of, text_of


class NotAnAuthnRequest(MetadataError, ValueError):
    """The SAMLRequest's root element is not samlp:AuthnRequest."""

    def __init__(self, root_tag: str, line: int | None) -> None:
        qname = etree.QName(root_tag)
        name = f"samlp:{qname.localname}" if qname.namespace == SAMLP else (
            f"{qname.localname} (namespace {qname.namespace or 'none'})")
        super().__init__(f"the root element is {name}, not samlp:AuthnRequest")
        self.root_tag = root_tag
        self.line = line


@dataclass(frozen=True)
class AuthnRequest:
    """What an AuthnRequest says, read by fixed paths; None where an attribute is absent."""

    id: str | None
    version: str | None
    issue_instant: str | None
    destination: str | None
    issuer: str | None
    issuer_format: str | None
    acs_url: str | None
    acs_index: int | None
    acs_index_raw: str | None
    """The attribute as written; set while `acs_index` is None when it is not an unsignedShort."""
    protocol_binding: str | None
    nameid_format: str | None
    allow_create: bool | None
    force_authn: bool
    is_passive: bool
    has_signature: bool
    """A ds:Signature is a direct child (HTTP-POST signing)."""
    line: int | None


def _unsigned_short(value: str | None) -> int | None:
    """An xs:unsignedShort (XML Schema Part 2 §3.3.23: decimal digits #x30-#x39, leading zeros allowed), or None.

    Stricter than a schema validator, which would collapse surrounding whitespace first: " 0" and the
    Unicode digits that \\d and int() accept ("٠") are second spellings of an index, and are refused.
    """
    if not value or not value.isascii() or not value.isdigit():
        return None
    significant = value.lstrip("0") or "0"  # int() of a long run of zeros costs, and past 4,300 digits raises
    return int(significant) if len(significant) <= 5 and int(significant) <= 0xFFFF else None


def _boolean(value: str | None) -> bool | None:
    return None if value is None else value.strip() in ("true", "1")


def read_authn_request(tree: etree._ElementTree | etree._Element) -> AuthnRequest:
    """Read an AuthnRequest; raise :class:`NotAnAuthnRequest` when the root is something else."""
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    if root.tag != f"{{{SAMLP}}}AuthnRequest":
        raise NotAnAuthnRequest(str(root.tag), line_of(root))
    issuer = root.find(f"{{{SAML}}}Issuer")
    policy = root.find(f"{{{SAMLP}}}NameIDPolicy")
    index_raw = root.get("AssertionConsumerServiceIndex")
    return AuthnRequest(
        id=root.get("ID"),
        version=root.get("Version"),
        issue_instant=root.get("IssueInstant"),
        destination=root.get("Destination"),
        issuer=text_of(issuer).strip() if issuer is not None else None,
        issuer_format=issuer.get("Format") if issuer is not None else None,
        acs_url=root.get("AssertionConsumerServiceURL"),
        acs_index=_unsigned_short(index_raw),
        acs_index_raw=index_raw,
        protocol_binding=root.get("ProtocolBinding"),
        nameid_format=policy.get("Format") if policy is not None else None,
        allow_create=_boolean(policy.get("AllowCreate")) if policy is not None else None,
        force_authn=bool(_boolean(root.get("ForceAuthn"))),
        is_passive=bool(_boolean(root.get("IsPassive"))),
        has_signature=root.find(f"{{{DS}}}Signature") is not None,
        line=line_of(root),
    )
