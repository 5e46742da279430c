"""validator.checks.request: reading AuthnRequests, resolving the ACS, the REQ rules, and interop
with AuthnRequests made by real SP libraries (python3-saml, pysaml2)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from lxml import etree

from metadata.authn_request import AuthnRequest, NotAnAuthnRequest, read_authn_request
from metadata.bindings import (
    BindingError,
    decode_post,
    decode_redirect,
    encode_post,
    encode_redirect,
)
from metadata.errors import UnsafeXML
from metadata.model import Endpoint
from metadata.saml import (
    BINDING_ARTIFACT,
    BINDING_POST,
    BINDING_REDIRECT,
    EMAIL,
    PERSISTENT,
    SAML,
    SAMLP,
    TRANSIENT,
    UNSPECIFIED,
)
from metadata.service_provider import ServiceProvider, acs_endpoint, acs_resolution, default_acs, resolve_acs
from metadata.signing import RSA_SHA1, sign
from metadata.xml import REQUEST_LIMITS, parse_untrusted
from tests.factory import NOW, KeyPair, make_keypair
from validator.checks.request import (
    RequestContext,
    SignatureCheck,
    check_authn_request,
    finding_for_binding_error,
    finding_for_not_authn_request,
    finding_for_unsafe_request,
    is_valid_request_id,
    parse_instant,
    request_signature,
)
from validator.findings import Finding, Severity

SP_ID = "https://sp.example.com/metadata"
ACS = "https://sp.example.com/acs"
ACS2 = "https://sp.example.com/acs2"
ACS_ART = "https://sp.example.com/artifact"
IDP_ID = "https://idp.example.com/saml"
SSO = "https://idp.example.com/sso"

SP = ServiceProvider(
    SP_ID,
    (
        acs_endpoint(ACS, binding=BINDING_POST, index=0, is_default=True),
        acs_endpoint(ACS2, binding=BINDING_POST, index=1),
        acs_endpoint(ACS_ART, binding=BINDING_ARTIFACT, index=2),
    ),
)


def request_xml(
    *, issuer: str | None = SP_ID, issuer_format: str | None = None, nameid_format: str | None = None,
    **attrs: str | None,
) -> bytes:
    values: dict[str, str | None] = {
        "ID": "_" + "a1" * 20, "Version": "2.0", "IssueInstant": "2026-06-01T11:59:30Z", "Destination": SSO,
        "AssertionConsumerServiceURL": ACS, "ProtocolBinding": BINDING_POST, **attrs,
    }
    root = etree.Element(f"{{{SAMLP}}}AuthnRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    for name, value in values.items():
        if value is not None:
            root.set(name, value)
    if issuer is not None:
        element = etree.SubElement(root, f"{{{SAML}}}Issuer")
        element.text = issuer
        if issuer_format:
            element.set("Format", issuer_format)
    if nameid_format:
        etree.SubElement(root, f"{{{SAMLP}}}NameIDPolicy", Format=nameid_format, AllowCreate="true")
    return etree.tostring(root)


def read(xml: bytes) -> AuthnRequest:
    return read_authn_request(parse_untrusted(xml, REQUEST_LIMITS))


def context(request: AuthnRequest | None = None, **overrides: Any) -> RequestContext:
    values: dict[str, Any] = {
        "sp": SP, "idp_entity_id": IDP_ID, "sso_urls": (SSO, SSO + "/post"), "now": NOW,
        "supported_nameid_formats": (EMAIL, PERSISTENT), "signature": SignatureCheck("missing"),
    }
    values.update(overrides)
    return RequestContext(request=request or read(request_xml()), **values)


def findings(ctx: RequestContext | None = None, **attrs: Any) -> list[Finding]:
    return check_authn_request(ctx or context(read(request_xml(**attrs))))


def codes(found: list[Finding]) -> list[str]:
    return sorted(f.code for f in found)


def test_a_good_request_has_no_findings() -> None:
    assert findings() == []
    assert findings(nameid_format=EMAIL) == []


# --- reading ---------------------------------------------------------------------------------

def test_read_authn_request_reads_every_field() -> None:
    xml = request_xml(ForceAuthn="true", IsPassive="1", AssertionConsumerServiceURL=None, ProtocolBinding=None,
                      AssertionConsumerServiceIndex="3", nameid_format=EMAIL, issuer_format=None)
    req = read(xml.replace(b">https://sp.example.com/metadata<", b">https://sp.example.com<!---->/metadata<"))
    assert req.issuer == SP_ID  # a comment does not split the value
    assert (req.id, req.version, req.destination) == ("_" + "a1" * 20, "2.0", SSO)
    assert (req.acs_url, req.acs_index, req.acs_index_raw, req.protocol_binding) == (None, 3, "3", None)
    assert (req.nameid_format, req.allow_create, req.force_authn, req.is_passive) == (EMAIL, True, True, True)
    assert not req.has_signature and req.line == 1
    plain = read(request_xml(ForceAuthn="false"))
    assert (plain.force_authn, plain.is_passive, plain.allow_create, plain.nameid_format) == (False, False, None, None)
    assert read(request_xml(AssertionConsumerServiceIndex="70000")).acs_index is None


def test_not_an_authn_request() -> None:
    xml = request_xml().replace(b"AuthnRequest", b"LogoutRequest")
    with pytest.raises(NotAnAuthnRequest) as caught:
        read(xml)
    finding = finding_for_not_authn_request(caught.value)
    assert finding.code == "REQ010" and "samlp:LogoutRequest" in finding.message
    with pytest.raises(NotAnAuthnRequest, match="namespace none"):
        read(b"<AuthnRequest/>")


def test_unsafe_request_xml_maps_to_req009() -> None:
    with pytest.raises(UnsafeXML) as caught:
        parse_untrusted(b'<!DOCTYPE x [<!ENTITY a "b">]>' + request_xml(), REQUEST_LIMITS)
    finding = finding_for_unsafe_request(caught.value)
    assert (finding.code, finding.actual, finding.where) == ("REQ009", "doctype", "SAMLRequest, line 1")


# --- binding errors → REQ001–REQ008 -----------------------------------------------------------

GOOD = "SAMLRequest=" + quote(encode_post(b"x"), safe="")


@pytest.mark.parametrize(("query", "code"), [
    ("RelayState=x", "REQ001"),
    ("SAMLRequest=%21%21", "REQ002"),
    (GOOD, "REQ003"),
    ("SAMLRequest=" + "A" * 100_000, "REQ004"),
    (GOOD + "&" + GOOD, "REQ005"),
    ("SAML%52equest=x", "REQ006"),
    ("SAMLRequest=%zz", "REQ007"),
    ("SAMLRequest=x&RelayState=" + "r" * 81, "REQ008"),
])
def test_each_binding_error_kind_has_its_rule(query: str, code: str) -> None:
    with pytest.raises(BindingError) as caught:
        decode_redirect(query, "SAMLRequest")
    finding = finding_for_binding_error(caught.value)
    assert finding.code == code
    assert finding.severity == Severity.ERROR and finding.message and finding.expected and finding.actual


def test_binding_error_where_names_the_parameter() -> None:
    assert finding_for_binding_error(BindingError("relay-state", "m", parameter="RelayState")).where == (
        "RelayState parameter")
    assert finding_for_binding_error(BindingError("odd", "m")).code == "REQ007"


# --- the request's content: one pass and one fail case per rule --------------------------------

def test_req011_unknown_sp_names_the_entity_id() -> None:
    [found] = findings(context(sp=None))
    assert found.code == "REQ011" and SP_ID in found.message and found.actual == SP_ID
    [found] = findings(context(read(request_xml(issuer=IDP_ID)), sp=None))
    assert "IdP's own entity ID" in found.message
    [found] = findings(context(read(request_xml(issuer=SP_ID + "/")), sp=None, registered_entity_ids=(SP_ID,)))
    assert f"did you mean '{SP_ID}'" in found.message and found.expected == SP_ID
    [found] = findings(context(read(request_xml(issuer="https://sp.example.com\u202e")), sp=None))
    assert "\\u202e" in found.message and "\u202e" not in found.message
    many = tuple(f"https://sp{n}.example.com" for n in range(25))
    [found] = findings(context(sp=None, registered_entity_ids=many))
    assert found.expected == ", ".join(many[:20]) + " and 5 more"  # a registry of hundreds stays readable


def test_req012_issuer_missing() -> None:
    assert codes(findings(context(read(request_xml(issuer=None)), sp=None))) == ["REQ012"]
    assert codes(findings(context(read(request_xml(issuer="  ")), sp=None))) == ["REQ012"]


def test_req013_issuer_format() -> None:
    assert codes(findings(issuer_format=TRANSIENT)) == ["REQ013"]
    assert findings(issuer_format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity") == []


@pytest.mark.parametrize("version", ["1.1", "2", None])
def test_req014_version(version: str | None) -> None:
    [found] = findings(Version=version)
    assert found.code == "REQ014" and found.expected == "2.0"


@pytest.mark.parametrize("value", [None, "", "123abc", "a:b", "has space", "_" + "x" * 256, "-a"])
def test_req015_bad_id(value: str | None) -> None:
    assert codes(findings(ID=value)) == ["REQ015"]


@pytest.mark.parametrize("value", ["_" + "x" * 255, "id-QLCOeVjg", "ONELOGIN_ec1a", "é.x-1"])
def test_req015_good_id(value: str) -> None:
    assert findings(ID=value) == []
    assert is_valid_request_id(value)


@pytest.mark.parametrize("value", [None, "yesterday", "2026-06-01T12:00:00", "2026-13-01T00:00:00Z", "2026-06-01"])
def test_req016_bad_issue_instant(value: str | None) -> None:
    [found] = findings(IssueInstant=value)
    assert found.code == "REQ016" and found.expected == "YYYY-MM-DDThh:mm:ssZ"


@pytest.mark.parametrize("value", ["2026-06-01T13:59:00+02:00", "2026-06-01T11:59:59.123456789Z"])
def test_req016_time_zones_and_long_fractions_are_read(value: str) -> None:
    assert findings(IssueInstant=value) == []
    assert parse_instant(value) is not None


@pytest.mark.parametrize(("offset", "skew", "fresh"), [
    (-360, 120, True),    # 6 min old: within 5 min + 2 min skew
    (-480, 120, False),   # 8 min old
    (-360, 0, False),     # 6 min old without skew
    (60, 120, True),      # 1 min ahead: within the skew
    (180, 120, False),    # 3 min ahead
])
def test_req017_issue_instant_freshness(offset: int, skew: int, fresh: bool) -> None:
    instant = f"{NOW + timedelta(seconds=offset):%Y-%m-%dT%H:%M:%SZ}"
    found = findings(context(read(request_xml(IssueInstant=instant)), skew_seconds=skew))
    assert codes(found) == ([] if fresh else ["REQ017"])
    if not fresh:
        assert found[0].actual == instant and found[0].expected


def test_req018_destination() -> None:
    [found] = findings(Destination="https://evil.example.com/sso")
    assert found.code == "REQ018" and found.expected == f"{SSO} or {SSO}/post"
    [found] = findings(Destination=IDP_ID)
    assert "entity ID, not its SSO URL" in found.message
    assert findings(Destination=SSO + "/post") == []
    assert findings(Destination=None) == []  # unsigned: Destination is optional


def test_req019_signed_request_without_destination() -> None:
    request = read(request_xml(Destination=None))
    assert codes(findings(context(request, signature=SignatureCheck("verified")))) == ["REQ019"]
    assert codes(findings(context(replace(request, has_signature=True), signature=SignatureCheck("not-checked")))) == [
        "REQ019"]
    assert findings(context(read(request_xml()), signature=SignatureCheck("verified"))) == []


def test_req020_acs_url_not_registered() -> None:
    [found] = findings(AssertionConsumerServiceURL=ACS + "/")
    assert found.code == "REQ020" and found.expected == f"{ACS}, {ACS2}" and found.actual == ACS + "/"
    [found] = findings(AssertionConsumerServiceURL=ACS_ART)
    assert "only with HTTP-Artifact" in found.message
    assert findings(AssertionConsumerServiceURL=ACS2) == []


@pytest.mark.parametrize(("index", "fragment"), [("7", "no ACS with index 7"), ("abc", "not a number"),
                                                  ("2", "only posts")])
def test_req021_acs_index(index: str, fragment: str) -> None:
    [found] = findings(AssertionConsumerServiceURL=None, ProtocolBinding=None, AssertionConsumerServiceIndex=index)
    assert found.code == "REQ021" and fragment in found.message and found.expected == "one of: 0, 1"


def test_req021_pass_with_a_registered_index() -> None:
    assert findings(AssertionConsumerServiceURL=None, ProtocolBinding=None, AssertionConsumerServiceIndex="1") == []


# xs:unsignedShort (XML Schema Part 2 §3.3.23): "a finite-length sequence of decimal digits (#x30-#x39)";
# only its canonical form prohibits leading zeros, so "00000" is 0 and "0001" is 1.
@pytest.mark.parametrize(("index", "value"), [("0", 0), ("00000", 0), ("0001", 1), ("0" * 40 + "1", 1),
                                              ("65535", 65535), ("065535", 65535)])
def test_acs_index_leading_zeros_are_in_the_lexical_space(index: str, value: int) -> None:
    req = read(request_xml(AssertionConsumerServiceURL=None, ProtocolBinding=None,
                           AssertionConsumerServiceIndex=index))
    assert (req.acs_index, req.acs_index_raw) == (value, index)


def test_acs_index_with_leading_zeros_names_its_acs() -> None:
    assert findings(AssertionConsumerServiceURL=None, ProtocolBinding=None, AssertionConsumerServiceIndex="0001") == []


@pytest.mark.parametrize(
    "index",
    [" 0", "0 ", " 1 ", "\t1", "\n1", "\u0660", "\u0661", "\uff11", "\u00b9", "1\u0660", "+1", "-0", "1e0",
     "0x1", "1.0", "", "65536", "0065536", "99999", "9" * 5000],
    ids=["space-before", "space-after", "spaces", "tab", "newline", "arabic-indic-zero", "arabic-indic-one",
         "fullwidth-one", "superscript-one", "ascii-then-arabic-indic", "plus", "minus-zero", "exponent", "hex",
         "decimal", "empty", "65536", "65536-leading-zeros", "99999", "5000-digits"],
)
def test_req021_acs_index_outside_the_unsigned_short_lexical_space(index: str) -> None:
    """ASCII digits only, nothing around them: what \\d{1,5} after strip() let through (" 0", "٠")
    is refused as a malformed index is, and never read as the ACS it resembles."""
    assert read(request_xml(AssertionConsumerServiceURL=None, ProtocolBinding=None,
                            AssertionConsumerServiceIndex=index)).acs_index is None
    [found] = findings(AssertionConsumerServiceURL=None, ProtocolBinding=None, AssertionConsumerServiceIndex=index)
    assert found.code == "REQ021" and "is not a number from 0 to 65535 written in the ASCII digits" in found.message
    assert found.where == "samlp:AuthnRequest/@AssertionConsumerServiceIndex, line 1"
    assert found.expected == "one of: 0, 1"


def test_req022_index_with_url_or_protocol_binding() -> None:
    assert codes(findings(AssertionConsumerServiceIndex="1")) == ["REQ022"]
    assert codes(findings(AssertionConsumerServiceURL=None, AssertionConsumerServiceIndex="1")) == ["REQ022"]


def test_req023_protocol_binding_not_post() -> None:
    # Registered for Artifact, asked for with Artifact: the binding is the one problem.
    assert codes(findings(AssertionConsumerServiceURL=ACS_ART, ProtocolBinding=BINDING_ARTIFACT)) == ["REQ023"]
    assert codes(findings(ProtocolBinding=BINDING_REDIRECT)) == ["REQ023"]
    assert findings(ProtocolBinding=None) == []


def test_req024_no_post_acs_for_the_default() -> None:
    artifact_only = ServiceProvider(SP_ID, (acs_endpoint(ACS_ART, binding=BINDING_ARTIFACT, index=0),))
    request = read(request_xml(AssertionConsumerServiceURL=None, ProtocolBinding=None))
    assert codes(findings(context(request, sp=artifact_only))) == ["REQ024"]
    assert findings(context(request)) == []


def test_req025_acs_must_be_https() -> None:
    http_sp = ServiceProvider(SP_ID, (acs_endpoint("http://sp.example.com/acs", binding=BINDING_POST, index=0),))
    request = read(request_xml(AssertionConsumerServiceURL=None))
    assert codes(findings(context(request, sp=http_sp))) == ["REQ025"]
    local = ServiceProvider(SP_ID, (acs_endpoint("http://localhost:8000/acs", binding=BINDING_POST, index=0),))
    assert codes(findings(context(request, sp=local))) == ["REQ025"]
    assert findings(context(request, sp=local, allow_http_localhost=True)) == []
    assert codes(findings(context(request, sp=http_sp, allow_http_localhost=True))) == ["REQ025"]


def test_req026_nameid_format() -> None:
    [found] = findings(nameid_format=TRANSIENT)
    assert found.code == "REQ026" and found.expected == f"{EMAIL}, {PERSISTENT}, {UNSPECIFIED}"
    assert findings(nameid_format=UNSPECIFIED) == []
    assert findings(nameid_format=PERSISTENT) == []


def test_req027_signature_required_but_missing() -> None:
    signed_sp = replace(SP, authn_requests_signed=True)
    [found] = findings(context(sp=signed_sp))
    assert found.code == "REQ027" and "AuthnRequestsSigned" in found.message
    [found] = findings(context(idp_requires_signed=True))
    assert found.code == "REQ027" and "this IdP requires" in found.message
    assert findings(context(sp=signed_sp, signature=SignatureCheck("verified"))) == []


def test_req028_invalid_signature_even_when_not_required() -> None:
    [found] = findings(context(signature=SignatureCheck("invalid", "does not verify", "urn:x")))
    assert found.code == "REQ028" and found.actual == "urn:x: does not verify"


def test_req029_sha1_is_a_warning_when_accepted_and_an_error_when_refused() -> None:
    [found] = findings(context(signature=SignatureCheck("verified", algorithm=RSA_SHA1, uses_sha1=True)))
    assert (found.code, found.severity, found.actual) == ("REQ029", Severity.WARNING, "rsa-sha1")
    [found] = findings(context(signature=SignatureCheck("weak", "SHA-1", RSA_SHA1, True)))
    assert (found.code, found.severity) == ("REQ029", Severity.ERROR)


def test_req030_required_signature_cannot_be_checked() -> None:
    signed_sp = replace(SP, authn_requests_signed=True)
    not_checked = SignatureCheck("not-checked", "the SP's metadata has no signing certificate")
    [found] = findings(context(sp=signed_sp, signature=not_checked))
    assert found.code == "REQ030" and "no signing certificate" in found.message
    assert findings(context(signature=not_checked)) == []


def test_every_fault_at_once_is_reported_with_expected_and_actual() -> None:
    xml = request_xml(ID="1", Version="1.0", IssueInstant="2020-01-01T00:00:00Z", Destination="https://x/",
                      AssertionConsumerServiceURL="https://evil.example.com/acs", ProtocolBinding=BINDING_ARTIFACT,
                      issuer_format=TRANSIENT, nameid_format=TRANSIENT)
    ctx = context(read(xml), sp=replace(SP, authn_requests_signed=True))
    found = findings(ctx)
    assert codes(found) == ["REQ013", "REQ014", "REQ015", "REQ017", "REQ018", "REQ020",
                            "REQ023", "REQ026", "REQ027"]
    for finding in found:
        assert finding.expected and finding.actual and finding.where and finding.fix, finding


# --- resolve_acs -------------------------------------------------------------------------------

def acs(index: int | None, location: str, default: bool | None = None, binding: str = BINDING_POST) -> Endpoint:
    return acs_endpoint(location, binding=binding, index=index, is_default=default)


def test_resolve_acs_by_url_index_and_default() -> None:
    assert resolve_acs(read(request_xml(AssertionConsumerServiceURL=ACS2)), SP) == SP.acs[1]
    assert resolve_acs(read(request_xml(AssertionConsumerServiceURL="https://evil/")), SP) is None
    by_index = read(request_xml(AssertionConsumerServiceURL=None, ProtocolBinding=None,
                                AssertionConsumerServiceIndex="1"))
    assert resolve_acs(by_index, SP) == SP.acs[1]
    assert resolve_acs(replace(by_index, acs_index=2, acs_index_raw="2"), SP) is None  # Artifact
    neither = read(request_xml(AssertionConsumerServiceURL=None, ProtocolBinding=None))
    assert resolve_acs(neither, SP) == SP.acs[0]


def test_resolve_acs_refuses_conflicts_and_other_bindings() -> None:
    assert resolve_acs(read(request_xml(AssertionConsumerServiceIndex="0")), SP) is None
    assert resolve_acs(read(request_xml(ProtocolBinding=BINDING_ARTIFACT, AssertionConsumerServiceURL=ACS_ART)),
                       SP) is None


def test_acs_resolution_says_what_the_request_named_and_why_nothing_was_chosen() -> None:
    """check_acs words its findings from this decision; resolve_acs is its endpoint."""
    conflict = acs_resolution(read(request_xml(AssertionConsumerServiceIndex="0")), SP)
    assert (conflict.asked_by, conflict.conflicting) == ("conflict", ("AssertionConsumerServiceURL", "ProtocolBinding"))
    assert conflict.endpoint is None
    artifact = acs_resolution(read(request_xml(ProtocolBinding=BINDING_ARTIFACT, AssertionConsumerServiceURL=ACS)), SP)
    assert (artifact.asked_by, artifact.other_binding, artifact.candidate) == ("url", BINDING_ARTIFACT, SP.acs[0])
    assert artifact.endpoint is None  # registered, but the SP wants another binding
    by_index = acs_resolution(read(request_xml(AssertionConsumerServiceURL=None, ProtocolBinding=None,
                                               AssertionConsumerServiceIndex="2")), SP)
    assert (by_index.asked_by, by_index.named, by_index.endpoint) == ("index", (SP.acs[2],), None)
    unregistered = acs_resolution(read(request_xml(ProtocolBinding=None)), None)
    assert (unregistered.asked_by, unregistered.named, unregistered.endpoint) == ("url", (), None)
    for request in (read(request_xml()), read(request_xml(AssertionConsumerServiceURL=None, ProtocolBinding=None))):
        assert acs_resolution(request, SP).endpoint == resolve_acs(request, SP)


def test_the_request_module_exports_what_the_idp_imports() -> None:
    """The import contract lets idp import validator.checks.request alone: its re-exports are its API."""
    import validator.checks.request as module

    assert {"RequestContext", "SignatureCheck", "check_authn_request", "request_signature",
            "finding_for_binding_error", "finding_for_unsafe_request", "finding_for_not_authn_request",
            "UNKNOWN_SP", "ACS_URL"} <= set(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)


@pytest.mark.parametrize(("endpoints", "chosen"), [
    ((acs(0, "a"), acs(1, "b", True)), "b"),                         # isDefault="true" wins
    ((acs(0, "a", False), acs(1, "b"), acs(2, "c", None)), "b"),     # first not marked false
    ((acs(0, "a", False), acs(1, "b", False)), "a"),                 # else the first
    ((acs(0, "art", True, BINDING_ARTIFACT), acs(1, "b", False)), "b"),  # only HTTP-POST counts
])
def test_default_acs_follows_metadata_2_2_3(endpoints: tuple[Endpoint, ...], chosen: str) -> None:
    found = default_acs(ServiceProvider(SP_ID, endpoints))
    assert found is not None and found.location == chosen


def test_request_context_validates_its_configuration() -> None:
    with pytest.raises(ValueError, match="skew"):
        context(skew_seconds=301)
    with pytest.raises(ValueError, match="time zone"):
        context(now=datetime(2026, 6, 1, 12, 0))


# --- request_signature ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def sp_key() -> KeyPair:
    return make_keypair("sp.example.com")


def redirect(xml: bytes, key: KeyPair | None = None, **kwargs: Any) -> Any:
    url = encode_redirect(xml, param="SAMLRequest", destination=SSO, key_pem=key.key_pem if key else None, **kwargs)
    return decode_redirect(url.split("?", 1)[1], "SAMLRequest")


def test_redirect_signature_statuses(sp_key: KeyPair) -> None:
    sp = replace(SP, authn_requests_signed=True, signing_certificates=(sp_key.cert_der,))
    verified = request_signature(redirect(request_xml(), sp_key), sp)
    assert (verified.status, verified.certificate, verified.uses_sha1) == ("verified", sp_key.cert_der, False)
    other = make_keypair("intruder")
    assert request_signature(redirect(request_xml(), other), sp).status == "invalid"
    assert request_signature(redirect(request_xml()), sp).status == "missing"
    assert request_signature(redirect(request_xml(), sp_key), None).status == "not-checked"
    assert request_signature(redirect(request_xml(), sp_key), replace(sp, signing_certificates=())).status == (
        "not-checked")
    weak = request_signature(redirect(request_xml(), sp_key, sig_alg=RSA_SHA1), sp)
    assert (weak.status, weak.uses_sha1) == ("weak", True)
    allowed = request_signature(redirect(request_xml(), sp_key, sig_alg=RSA_SHA1), sp, allow_sha1=True)
    assert (allowed.status, allowed.uses_sha1) == ("verified", True)
    ctx = context(read(request_xml()), sp=sp, signature=weak)
    assert codes(findings(ctx)) == ["REQ029"]


def signed_xml(key: KeyPair, **attrs: str | None) -> bytes:
    root = etree.fromstring(request_xml(**attrs))
    sign(root, key.key_pem, key.cert_pem, after=f"{{{SAML}}}Issuer")
    return etree.tostring(root)


def test_post_xml_signature_verifies_and_hands_back_the_signed_bytes(sp_key: KeyPair) -> None:
    sp = replace(SP, authn_requests_signed=True, signing_certificates=(sp_key.cert_der,))
    message = decode_post({"SAMLRequest": encode_post(signed_xml(sp_key))}, "SAMLRequest")
    check = request_signature(message, sp)
    assert check.status == "verified" and check.signed_xml is not None
    request = read(check.signed_xml)
    assert request.issuer == SP_ID and not request.has_signature
    assert read(message.xml).has_signature
    assert findings(context(read(message.xml), sp=sp, signature=check)) == []


def test_post_tampered_or_unsigned(sp_key: KeyPair) -> None:
    sp = replace(SP, signing_certificates=(sp_key.cert_der,))
    tampered = signed_xml(sp_key).replace(ACS.encode(), ACS2.encode())
    check = request_signature(decode_post({"SAMLRequest": encode_post(tampered)}, "SAMLRequest"), sp)
    assert check.status == "invalid"
    assert codes(findings(context(read(tampered), sp=sp, signature=check))) == ["REQ028"]
    unsigned = request_signature(decode_post({"SAMLRequest": encode_post(request_xml())}, "SAMLRequest"), sp)
    assert unsigned.status == "missing"


def test_redirect_carrying_only_an_xml_signature_is_unsigned(sp_key: KeyPair) -> None:
    check = request_signature(redirect(signed_xml(sp_key)), replace(SP, signing_certificates=(sp_key.cert_der,)))
    assert check.status == "missing" and "§3.4.4.1" in check.message


# --- interop: AuthnRequests from real SP libraries ---------------------------------------------

def interop_context(request: AuthnRequest, sp: ServiceProvider, signature: SignatureCheck) -> RequestContext:
    return RequestContext(
        request=request, sp=sp, idp_entity_id=IDP_ID, sso_urls=(SSO,), now=datetime.now(UTC),
        supported_nameid_formats=(EMAIL, PERSISTENT, TRANSIENT), signature=signature,
    )


def errors(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.severity == Severity.ERROR]


@pytest.mark.parametrize("signed", [True, False])
def test_python3_saml_redirect_request_is_accepted(sp_key: KeyPair, signed: bool) -> None:
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    idp_key = make_keypair("idp.example.com")
    settings = {
        "strict": True,
        "sp": {"entityId": SP_ID, "assertionConsumerService": {"url": ACS, "binding": BINDING_POST},
               "x509cert": sp_key.cert_b64, "privateKey": sp_key.key_pem.decode()},
        "idp": {"entityId": IDP_ID, "singleSignOnService": {"url": SSO, "binding": BINDING_REDIRECT},
                "x509cert": idp_key.cert_b64},
        "security": {"authnRequestsSigned": signed},
    }
    http = {"https": "on", "http_host": "sp.example.com", "script_name": "/login", "get_data": {}, "post_data": {}}
    url = OneLogin_Saml2_Auth(http, settings).login(return_to="https://sp.example.com/after")
    assert url.startswith(SSO + "?")
    message = decode_redirect(url.split("?", 1)[1], "SAMLRequest")
    assert message.relay_state == "https://sp.example.com/after"
    sp = replace(SP, authn_requests_signed=signed, signing_certificates=(sp_key.cert_der,))
    check = request_signature(message, sp)
    assert check.status == ("verified" if signed else "missing")
    found = check_authn_request(interop_context(read_authn_request(message.tree), sp, check))
    assert errors(found) == []
    assert found == []


@pytest.fixture
def pysaml2_client(sp_key: KeyPair, tmp_path: Path) -> Iterator[Any]:
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

    (tmp_path / "sp.key").write_bytes(sp_key.key_pem)
    (tmp_path / "sp.crt").write_bytes(sp_key.cert_pem)
    idp_cert = make_keypair("idp.example.com").cert_b64
    metadata = f"""<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
        xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP_ID}">
      <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
        <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
          <ds:X509Certificate>{idp_cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
        <md:SingleSignOnService Binding="{BINDING_REDIRECT}" Location="{SSO}"/>
        <md:SingleSignOnService Binding="{BINDING_POST}" Location="{SSO}"/>
      </md:IDPSSODescriptor></md:EntityDescriptor>"""
    config = SPConfig()
    config.load({
        "entityid": SP_ID,
        "service": {"sp": {"endpoints": {"assertion_consumer_service": [(ACS, BINDING_POST)]}}},
        "metadata": {"inline": [metadata]},
        "key_file": str(tmp_path / "sp.key"),
        "cert_file": str(tmp_path / "sp.crt"),
        "xmlsec_binary": shutil.which("xmlsec1"),
    })
    yield Saml2Client(config=config)


def test_pysaml2_unsigned_redirect_request_is_accepted(pysaml2_client: Any) -> None:
    _, info = pysaml2_client.prepare_for_authenticate(entityid=IDP_ID, relay_state="rs-1",
                                                      binding=BINDING_REDIRECT, sign=False)
    location = dict(info["headers"])["Location"]
    message = decode_redirect(location.split("?", 1)[1], "SAMLRequest")
    assert message.relay_state == "rs-1" and message.signature is None
    request = read_authn_request(message.tree)
    assert request.issuer == SP_ID and request.acs_url == ACS
    check = request_signature(message, SP)
    assert check.status == "missing"
    assert check_authn_request(interop_context(request, SP, check)) == []


def test_pysaml2_signed_redirect_request_verifies(pysaml2_client: Any, sp_key: KeyPair) -> None:
    from saml2.xmldsig import SIG_RSA_SHA256

    _, info = pysaml2_client.prepare_for_authenticate(entityid=IDP_ID, relay_state="rs-2", binding=BINDING_REDIRECT,
                                                      sign=True, sigalg=SIG_RSA_SHA256)
    message = decode_redirect(dict(info["headers"])["Location"].split("?", 1)[1], "SAMLRequest")
    sp = replace(SP, authn_requests_signed=True, signing_certificates=(sp_key.cert_der,))
    check = request_signature(message, sp)
    assert check.status == "verified"
    assert check_authn_request(interop_context(read_authn_request(message.tree), sp, check)) == []


@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="pysaml2 signs XML with the xmlsec1 program")
@pytest.mark.parametrize("sha1", [False, True])
def test_pysaml2_signed_post_request(pysaml2_client: Any, sp_key: KeyPair, sha1: bool) -> None:
    from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

    algorithms = (SIG_RSA_SHA1, DIGEST_SHA1) if sha1 else (SIG_RSA_SHA256, DIGEST_SHA256)
    _, info = pysaml2_client.prepare_for_authenticate(entityid=IDP_ID, relay_state="rs-3", binding=BINDING_POST,
                                                      sign=True, sigalg=algorithms[0], digest_alg=algorithms[1])
    value = re.search(r'name="SAMLRequest" value="([^"]+)"', info["data"])
    assert value is not None
    message = decode_post({"SAMLRequest": value.group(1), "RelayState": "rs-3"}, "SAMLRequest")
    sp = replace(SP, authn_requests_signed=True, signing_certificates=(sp_key.cert_der,))
    check = request_signature(message, sp)
    if sha1:
        # pysaml2's default for POST is RSA-SHA1: refused, and said so.
        assert check.status == "weak"
        found = check_authn_request(interop_context(read(message.xml), sp, check))
        assert [(f.code, f.severity) for f in found] == [("REQ029", Severity.ERROR)]
        return
    assert check.status == "verified" and check.signed_xml is not None
    assert check_authn_request(interop_context(read(check.signed_xml), sp, check)) == []
