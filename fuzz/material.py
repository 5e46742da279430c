"""What the targets need besides their input: keys, a signed response, metadata, a CRM record.

Everything is made on the fly, once per process (:func:`material`); no key is ever written
to disk. The response and the AuthnRequests are real ones, made by the project's own IdP code
and signed with a fresh key whose certificate the targets trust, so that a mutation of a
validly signed message reaches the signature code instead of stopping at "untrusted".
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from lxml import etree

from idp.assertion import Claim, ResponseSpec, build_response, serialize
from metadata.bindings import Param, encode_redirect, post_form_fields
from metadata.crm import CRMRecord, parse_crm
from metadata.keys import KeyPair, generate_keypair
from metadata.saml import BINDING_POST, BINDING_REDIRECT, EMAIL, SAML, SAMLP
from metadata.service_provider import ServiceProvider, acs_endpoint
from metadata.signing import RSA_SHA1, SHA1, sign
from metadata.write import idp_metadata_xml

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
"""The clock every target judges with: the instant the generated messages were issued."""
IDP_ENTITY = "https://idp.fuzz.example/saml"
SSO_URL = "https://idp.fuzz.example/sso"
SP_ENTITY = "https://sp.fuzz.example/saml"
ACS_URL = "https://sp.fuzz.example/saml/acs"
REQUEST_ID = "_0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"

CRM_TOML = f"""\
# The fuzz targets' partner: what the generated response and metadata should match.
[biller]
id = "B-00001"
name = "Fuzz Water"

[sp]
entity_id = "{SP_ENTITY}"
acs_url = "{ACS_URL}"

[idp]
vendor = "other"
entity_id = "{IDP_ENTITY}"
sso_url = "{SSO_URL}"
nameid_format = "{EMAIL}"

[[claims]]
name = "AccountNumber"
required = true

[[claims]]
name = "LoginTypeId"
required = true
login_type = true

[[login_types]]
id = 1
name = "Customer"

[[login_types]]
id = 2
name = "Property Manager"
"""


@dataclass(frozen=True)
class Material:
    idp_key: KeyPair
    sp_key: KeyPair
    crm: CRMRecord
    metadata: bytes
    """The IdP's metadata, signed with the IdP key."""
    responses: dict[str, bytes]
    """Signed responses by shape: assertion, response, both, sha1, encrypted, error."""
    requests: dict[str, bytes]
    """AuthnRequest XML: plain, and enveloped-signed (for HTTP-POST)."""
    sp: ServiceProvider
    """The registered SP the AuthnRequest target checks against (it wants signed requests)."""

    @property
    def response(self) -> bytes:
        return self.responses["both"]


def _claims() -> tuple[Claim, ...]:
    return (
        Claim("AccountNumber", ("0012345",)),
        Claim("LoginTypeId", ("1", "2")),
        Claim("Email", ("alice@example.com",), "basic"),
        Claim("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", ("Alice Example",), "uri", "Name"),
    )


def _spec(**changes: object) -> ResponseSpec:
    values: dict[str, object] = dict(
        issuer=IDP_ENTITY, destination=ACS_URL, audience=SP_ENTITY, in_response_to=REQUEST_ID,
        nameid="alice@example.com", nameid_format=EMAIL, session_index="_session1", claims=_claims(),
        authn_instant=NOW - timedelta(seconds=30),
    )
    values.update(changes)
    return ResponseSpec(**values)  # type: ignore[arg-type]


def _responses(idp: KeyPair, sp: KeyPair) -> dict[str, bytes]:
    made = {
        shape: build_response(_spec(sign=shape), now=NOW, key=idp)
        for shape in ("assertion", "response", "both")
    }
    made["sha1"] = build_response(_spec(sign="assertion", signature_method=RSA_SHA1, digest_method=SHA1),
                                  now=NOW, key=idp)
    made["encrypted"] = build_response(_spec(sign="both"), now=NOW, key=idp, encrypt_for=sp.cert_der)
    made["error"] = build_response(_spec(status=("urn:oasis:names:tc:SAML:2.0:status:Responder", None)),
                                   now=NOW, key=idp)
    return {shape: serialize(element) for shape, element in made.items()}


def _metadata(idp: KeyPair) -> bytes:
    entity = idp_metadata_xml(
        IDP_ENTITY, {BINDING_REDIRECT: SSO_URL, BINDING_POST: SSO_URL}, {BINDING_REDIRECT: SSO_URL + "/logout"},
        [idp.cert_der], [EMAIL], False, NOW + timedelta(days=30),
    )
    sign(entity, idp.key_pem, idp.cert_pem)
    return etree.tostring(entity, encoding="UTF-8", xml_declaration=True)


def authn_request_xml(*, request_id: str = REQUEST_ID, acs: str = ACS_URL) -> etree._Element:
    root = etree.Element(f"{{{SAMLP}}}AuthnRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    root.set("ID", request_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", NOW.strftime("%Y-%m-%dT%H:%M:%SZ"))
    root.set("Destination", SSO_URL)
    root.set("AssertionConsumerServiceURL", acs)
    root.set("ProtocolBinding", BINDING_POST)
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = SP_ENTITY
    etree.SubElement(root, f"{{{SAMLP}}}NameIDPolicy", Format=EMAIL, AllowCreate="true")
    return root


def _requests(sp: KeyPair) -> dict[str, bytes]:
    plain = authn_request_xml()
    signed = authn_request_xml()
    sign(signed, sp.key_pem, sp.cert_pem, after=f"{{{SAML}}}Issuer")
    return {"plain": etree.tostring(plain), "signed": etree.tostring(signed)}


@functools.cache
def material() -> Material:
    """The shared material, made on first use (two RSA keys: about a second)."""
    idp_key = generate_keypair("idp.fuzz.example", now=NOW - timedelta(days=1))
    sp_key = generate_keypair("sp.fuzz.example", now=NOW - timedelta(days=1))
    sp = ServiceProvider(
        entity_id=SP_ENTITY,
        acs=(acs_endpoint(ACS_URL, binding=BINDING_POST, index=0, is_default=True),
             acs_endpoint(ACS_URL + "/redirect", binding=BINDING_REDIRECT, index=1)),
        authn_requests_signed=True,
        signing_certificates=(sp_key.cert_der,),
    )
    return Material(
        idp_key=idp_key, sp_key=sp_key, crm=parse_crm(CRM_TOML, "fuzz CRM record", "toml"),
        metadata=_metadata(idp_key), responses=_responses(idp_key, sp_key), requests=_requests(sp_key), sp=sp,
    )


# ------------------------------------------------------------------ the input forms of a response


def as_base64(xml: bytes) -> bytes:
    return base64.b64encode(xml)


def as_form(xml: bytes, relay_state: str = "/portal/home") -> bytes:
    return form_body(xml, param="SAMLResponse", relay_state=relay_state)


def as_saml_tracer(xml: bytes) -> bytes:
    export = {"requests": [
        {"method": "GET", "url": SSO_URL + "?SAMLRequest=x", "post": None},
        {"method": "POST", "url": ACS_URL, "post": {"SAMLResponse": [base64.b64encode(xml).decode("ascii")],
                                                     "RelayState": ["/portal/home"]}},
    ]}
    return json.dumps(export).encode("utf-8")


def redirect_query(xml: bytes, *, key_pem: bytes | None = None, relay_state: str | None = "/portal") -> bytes:
    """The raw query string of an HTTP-Redirect AuthnRequest, with its leading ``?``."""
    url = encode_redirect(xml, param="SAMLRequest", destination=SSO_URL, relay_state=relay_state, key_pem=key_pem)
    return ("?" + url.split("?", 1)[1]).encode("ascii")


def post_body(xml: bytes, *, relay_state: str | None = "/portal") -> bytes:
    """The raw ``application/x-www-form-urlencoded`` body of an HTTP-POST AuthnRequest."""
    return form_body(xml, param="SAMLRequest", relay_state=relay_state)


def form_body(xml: bytes, *, param: Param, relay_state: str | None) -> bytes:
    """The raw ``application/x-www-form-urlencoded`` body of an HTTP-POST message."""
    fields = post_form_fields(xml, param=param, relay_state=relay_state)
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in fields.items()).encode("ascii")
