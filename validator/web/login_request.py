"""What the test SP sends and remembers to start a test login: the AuthnRequest to the partner's
SSO URL, the pending entry the ACS finds again by the response's InResponseTo, and the test SP's
own metadata.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from lxml import etree

from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.keys import KeyPair
from metadata.read import read_metadata
from metadata.saml import BINDING_POST, BINDING_REDIRECT, DS, MD, SAML, SAMLP
from metadata.xml import metadata_limits, parse_untrusted
from validator.json_value import iso_z

from .state import Refusal

REQUEST_ID = re.compile(r"_[0-9a-f]{40}")
"""The form of the IDs :func:`new_request_id` makes: the ACS looks up no other."""


@dataclass(frozen=True)
class PendingLogin:
    """An outstanding AuthnRequest of one browser, as the store keeps it until the ACS takes it."""

    request_id: str
    biller_id: str
    started_at: str
    """When the request was sent (ISO 8601 UTC)."""

    def json(self) -> bytes:
        return json.dumps({"request_id": self.request_id, "biller_id": self.biller_id,
                           "started_at": self.started_at}).encode()

    @classmethod
    def read(cls, stored: bytes) -> PendingLogin:
        """The entry as :meth:`json` stored it (the store is ours: a broken entry is a failure of the tool)."""
        value = json.loads(stored)
        return cls(str(value["request_id"]), str(value["biller_id"]), str(value["started_at"]))


def new_request_id() -> str:
    return "_" + secrets.token_hex(20)


def pending_login(biller_id: str, now: datetime) -> PendingLogin:
    return PendingLogin(new_request_id(), biller_id, iso_z(now))


def authn_request_xml(*, request_id: str, issuer: str, acs_url: str, destination: str, now: datetime) -> bytes:
    root = etree.Element(f"{{{SAMLP}}}AuthnRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    root.set("ID", request_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    root.set("Destination", destination)
    root.set("AssertionConsumerServiceURL", acs_url)
    root.set("ProtocolBinding", BINDING_POST)
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer
    return etree.tostring(root)


def sso_url(record: CRMRecord, metadata: bytes | None, *, allow_http: bool = False, problem: str = "") -> str:
    """The partner's SSO URL, from the record or else from its `metadata` (`problem` says why there
    is none); only https (or http on localhost, or any http with `allow_http`: local development
    mode) is ever used as a redirect target, whatever the partner's document says."""
    url = record.idp.sso_url or _sso_url_from_metadata(record, metadata, problem)
    parts = urlsplit(url)
    local = parts.scheme == "http" and (allow_http or parts.hostname in ("localhost", "127.0.0.1", "::1"))
    if not (parts.scheme in ("https", "http") and parts.hostname) or not (parts.scheme == "https" or local):
        raise Refusal(400, "The SSO URL is not an https URL",
                      f"The IdP's SSO URL {url!r} is not https; the test login will not send a browser there.")
    return url


def _sso_url_from_metadata(record: CRMRecord, metadata: bytes | None, problem: str) -> str:
    try:
        if metadata is None:
            raise MetadataError(problem or "there is no metadata")
        document = read_metadata(parse_untrusted(metadata, metadata_limits()))
    except MetadataError as exc:
        raise Refusal(502, "The IdP's metadata cannot be read", f"The record has no idp.sso_url, and its "
                      f"metadata could not be used: {exc}") from None
    wanted = record.idp.entity_id
    for entity in document.idp_entities:
        if entity.idp is None or (wanted and entity.entity_id != wanted):
            continue
        for endpoint in entity.idp.sso:
            if endpoint.binding == BINDING_REDIRECT:
                return endpoint.location
    raise Refusal(400, "No SSO URL", "The record has no idp.sso_url, and its metadata has no "
                  "HTTP-Redirect SingleSignOnService for the IdP.")


def sp_metadata_xml(entity_id: str, acs_url: str, signing_key: KeyPair | None) -> bytes:
    root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS})
    root.set("entityID", entity_id)
    sp = etree.SubElement(root, f"{{{MD}}}SPSSODescriptor")
    sp.set("AuthnRequestsSigned", "true" if signing_key else "false")
    sp.set("WantAssertionsSigned", "true")
    sp.set("protocolSupportEnumeration", SAMLP)
    if signing_key:
        descriptor = etree.SubElement(sp, f"{{{MD}}}KeyDescriptor", use="signing")
        data = etree.SubElement(etree.SubElement(descriptor, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
        etree.SubElement(data, f"{{{DS}}}X509Certificate").text = "".join(
            line for line in signing_key.cert_pem.decode().splitlines() if "-----" not in line)
    etree.SubElement(sp, f"{{{MD}}}AssertionConsumerService", Binding=BINDING_POST, Location=acs_url,
                     index="0", isDefault="true")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
