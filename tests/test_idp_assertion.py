"""idp.assertion: the SAML Response the test IdP builds, signs and encrypts.

Proven three ways: with our own verifier (metadata.signing.verify, reading claims only from
the signed bytes), against the protocol schema, and by two real service-provider libraries —
python3-saml (OneLogin) and pysaml2 — which must accept the response and read exactly the
NameID and claims that were put in.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from idp.assertion import (
    Claim,
    ResponseSpec,
    SignWhat,
    build_response,
    decrypt_assertion,
    new_id,
    serialize,
    to_post_value,
    valid_in_response_to,
)
from idp.errors import IdPResponseError
from metadata.keys import KeyPair, generate_keypair
from metadata.saml import AUTHN_FAILED, BINDING_POST, BINDING_REDIRECT, DS, RESPONDER, SAML, SAMLP, XENC
from metadata.schema import validate
from metadata.signing import SignatureError, verify
from metadata.write import idp_metadata_xml
from metadata.xml import MESSAGE_LIMITS, parse_untrusted, text_of
from tests.factory import NOW

NS = {"samlp": SAMLP, "saml": SAML, "ds": DS, "xenc": XENC}
IDP_ENTITY = "https://idp.example.com/saml"
SP_ENTITY = "https://sp.example.com/saml"
ACS = "https://sp.example.com/saml/acs"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
REQUEST_ID = "_3f1e0c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"
CLAIMS = (
    Claim("AccountNumber", ("0012345",)),
    Claim("Email", ("alice.biller@example.com",), "basic"),
    Claim("LoginTypeId", ("1", "2")),
    Claim("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", ("Alice Example",), "uri", "Name"),
    Claim("Note", ('<b>&"quoted"</b> a<!---->b',)),
)


@pytest.fixture(scope="module")
def idp_key() -> KeyPair:
    return generate_keypair("idp.test", now=NOW - timedelta(days=400))


@pytest.fixture(scope="module")
def sp_key() -> KeyPair:
    return generate_keypair("sp.test", now=NOW - timedelta(days=400))


def spec(**changes: Any) -> ResponseSpec:
    values: dict[str, Any] = dict(
        issuer=IDP_ENTITY, destination=ACS, audience=SP_ENTITY, in_response_to=REQUEST_ID,
        nameid="alice@example.com", nameid_format=EMAIL_FORMAT, session_index="_session1", claims=CLAIMS,
    )
    values.update(changes)
    return ResponseSpec(**values)


def pinned_ids() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"_id{n}"


def reparse(element: etree._Element) -> etree._Element:
    """What an SP receives: the serialised bytes, parsed with the one parser."""
    return parse_untrusted(serialize(element), MESSAGE_LIMITS).getroot()


def nameid_of(assertion: etree._Element) -> tuple[str, str | None]:
    nameid = assertion.find("saml:Subject/saml:NameID", NS)
    assert nameid is not None
    return text_of(nameid), nameid.get("Format")


def claims_of(assertion: etree._Element) -> tuple[Claim, ...]:
    formats = {"urn:oasis:names:tc:SAML:2.0:attrname-format:" + f: f for f in ("unspecified", "basic", "uri")}
    return tuple(
        Claim(a.get("Name", ""), tuple(text_of(v) for v in a.findall("saml:AttributeValue", NS)),
              formats[a.get("NameFormat", "")], a.get("FriendlyName"))
        for a in assertion.findall("saml:AttributeStatement/saml:Attribute", NS)
    )


def signed_tree(element: etree._Element, certificate: bytes) -> etree._Element:
    """Verify `element`'s signature and return the re-parsed signed bytes (SECURITY.md §2)."""
    signed = verify(element, [certificate]).signed_bytes
    return parse_untrusted(signed, MESSAGE_LIMITS).getroot()


# ---------------------------------------------------------------------------- structure

GOLDEN = (
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_id1" InResponseTo="_req1" Version="2.0" '
    'IssueInstant="2026-06-01T12:00:00Z" Destination="https://sp.example.com/saml/acs">'
    '<saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">https://idp.example.com/saml</saml:Issuer>'
    '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
    '<saml:Assertion ID="_id2" Version="2.0" IssueInstant="2026-06-01T12:00:00Z">'
    '<saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">https://idp.example.com/saml</saml:Issuer>'
    '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@example.com'
    '</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
    '<saml:SubjectConfirmationData InResponseTo="_req1" NotOnOrAfter="2026-06-01T12:05:00Z" '
    'Recipient="https://sp.example.com/saml/acs"/></saml:SubjectConfirmation></saml:Subject>'
    '<saml:Conditions NotBefore="2026-06-01T12:00:00Z" NotOnOrAfter="2026-06-01T12:05:00Z">'
    '<saml:AudienceRestriction><saml:Audience>https://sp.example.com/saml</saml:Audience>'
    '</saml:AudienceRestriction></saml:Conditions>'
    '<saml:AuthnStatement AuthnInstant="2026-06-01T11:58:30Z" SessionIndex="_session1"><saml:AuthnContext>'
    '<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport'
    '</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>'
    '<saml:AttributeStatement>'
    '<saml:Attribute Name="Email" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">'
    '<saml:AttributeValue>alice@example.com</saml:AttributeValue></saml:Attribute>'
    '<saml:Attribute Name="Groups" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" '
    'FriendlyName="groups"><saml:AttributeValue>a</saml:AttributeValue><saml:AttributeValue>b</saml:AttributeValue>'
    '</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>'
)


def test_unsigned_response_matches_the_golden_bytes(idp_key: KeyPair) -> None:
    response = build_response(
        spec(in_response_to="_req1", sign="none", authn_instant=NOW - timedelta(seconds=90),
             claims=(Claim("Email", ("alice@example.com",)), Claim("Groups", ("a", "b"), "uri", "groups")),
             status=("urn:oasis:names:tc:SAML:2.0:status:Success", None)),
        now=NOW, new_id=pinned_ids().__next__, key=idp_key,
    )
    assert serialize(response).decode() == GOLDEN


def test_signed_output_is_byte_stable(idp_key: KeyPair) -> None:
    # Time and IDs injected; RSA PKCS#1 v1.5 signatures are deterministic.
    first = build_response(spec(sign="both"), now=NOW, new_id=pinned_ids().__next__, key=idp_key)
    second = build_response(spec(sign="both"), now=NOW, new_id=pinned_ids().__next__, key=idp_key)
    assert serialize(first) == serialize(second)


def test_serialize_and_post_value(idp_key: KeyPair) -> None:
    response = build_response(spec(), now=NOW, key=idp_key)
    data = serialize(response)
    assert data.startswith(b"<samlp:Response ")  # no XML declaration
    assert base64.b64decode(to_post_value(response), validate=True) == data


def test_times_and_ids(idp_key: KeyPair) -> None:
    response = reparse(build_response(spec(lifetime_seconds=120), now=NOW + timedelta(microseconds=5), key=idp_key))
    assertion = response.find("saml:Assertion", NS)
    assert assertion is not None
    assert response.get("IssueInstant") == assertion.get("IssueInstant") == "2026-06-01T12:00:00Z"
    data = assertion.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
    conditions = assertion.find("saml:Conditions", NS)
    assert data is not None and conditions is not None
    assert data.get("NotOnOrAfter") == conditions.get("NotOnOrAfter") == "2026-06-01T12:02:00Z"
    assert conditions.get("NotBefore") == "2026-06-01T12:00:00Z"
    assert data.get("NotBefore") is None  # SAML Profiles §4.1.4.2
    ids = [response.get("ID"), assertion.get("ID")]
    assert ids[0] != ids[1]
    for value in ids:
        assert value is not None and len(value) == 41 and value[0] == "_"
        int(value[1:], 16)


def test_new_id_is_secret_hex() -> None:
    assert len({new_id() for _ in range(50)}) == 50


@pytest.mark.parametrize("sign", ["assertion", "response", "both", "none"])
def test_response_is_schema_valid(idp_key: KeyPair, sign: SignWhat) -> None:
    assert validate(reparse(build_response(spec(sign=sign), now=NOW, key=idp_key)), "protocol") == []


def test_naive_clock_is_refused(idp_key: KeyPair) -> None:
    with pytest.raises(ValueError, match="naive"):
        build_response(spec(), now=datetime(2026, 6, 1), key=idp_key)


@pytest.mark.parametrize(("changes", "message"), [
    ({"lifetime_seconds": 0}, "lifetime_seconds"),
    ({"sign": "everything"}, "sign must be"),
    ({"status": ("urn:oasis:names:tc:SAML:2.0:status:AuthnFailed", None)}, "top-level"),
])
def test_spec_refuses_bad_values(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(IdPResponseError, match=message):
        spec(**changes)


def test_claim_values_must_be_a_tuple() -> None:
    with pytest.raises(IdPResponseError, match="tuple of strings"):
        Claim("Email", "alice@example.com")  # type: ignore[arg-type]


def test_claims_name_formats_and_no_statement_without_claims(idp_key: KeyPair) -> None:
    custom = "urn:example:attrname-format:custom"
    response = reparse(build_response(spec(sign="none", claims=(Claim("x", ("1",), custom),)), now=NOW, key=idp_key))
    attribute = response.find("saml:Assertion/saml:AttributeStatement/saml:Attribute", NS)
    assert attribute is not None and attribute.get("NameFormat") == custom
    empty = reparse(build_response(spec(claims=()), now=NOW, key=idp_key))
    assert empty.find("saml:Assertion/saml:AttributeStatement", NS) is None
    assert validate(empty, "protocol") == []


# ---------------------------------------------------------------------------- InResponseTo

@pytest.mark.parametrize(("value", "kept"), [
    ("_abc", True),
    ("id-1.2_x", True),
    ("é" + "a" * 255, True),  # 256 characters, a non-ASCII NameStartChar
    ("_" + "a" * 299, False),  # 300 characters
    ("1abc", False),  # an NCName cannot start with a digit
    ("a:b", False),  # nor contain a colon
    ("a b", False),
    ('"><x/>', False),
    ("", False),
    (None, False),
])
def test_in_response_to_only_when_a_short_ncname(idp_key: KeyPair, value: str | None, kept: bool) -> None:
    assert valid_in_response_to(value) is kept
    response = reparse(build_response(spec(in_response_to=value), now=NOW, key=idp_key))
    data = response.find("saml:Assertion/saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
    assert data is not None
    expected = value if kept else None
    assert response.get("InResponseTo") == expected
    assert data.get("InResponseTo") == expected
    assert validate(response, "protocol") == []


# ---------------------------------------------------------------------------- signatures

@pytest.mark.parametrize("sign", ["assertion", "response", "both"])
def test_signatures_verify_and_sign_exactly_the_claims(idp_key: KeyPair, sign: SignWhat) -> None:
    response = reparse(build_response(spec(sign=sign), now=NOW, key=idp_key))
    assertion = response.find("saml:Assertion", NS)
    assert assertion is not None
    signed_assertions = []
    if sign in ("assertion", "both"):
        signature = assertion[1]
        assert signature.tag == f"{{{DS}}}Signature"  # right after saml:Issuer
        signed_assertions.append(signed_tree(assertion, idp_key.cert_der))
    else:
        assert assertion.find("ds:Signature", NS) is None
    if sign in ("response", "both"):
        assert response[1].tag == f"{{{DS}}}Signature"
        signed_response = signed_tree(response, idp_key.cert_der)
        assert signed_response.get("Destination") == ACS
        assert signed_response.get("InResponseTo") == REQUEST_ID
        inner = signed_response.find("saml:Assertion", NS)
        assert inner is not None
        signed_assertions.append(inner)
    else:
        assert response.find("ds:Signature", NS) is None
    for signed in signed_assertions:
        assert signed.tag == f"{{{SAML}}}Assertion"
        assert nameid_of(signed) == ("alice@example.com", EMAIL_FORMAT)
        assert claims_of(signed) == CLAIMS
        audience = signed.find("saml:Conditions/saml:AudienceRestriction/saml:Audience", NS)
        assert audience is not None and text_of(audience) == SP_ENTITY


def test_ecdsa_key_signs_too() -> None:
    from metadata.signing import ECDSA_SHA256

    key = generate_keypair("idp.ec", kind="ec-p256", now=NOW)
    response = reparse(build_response(spec(sign="both", signature_method=ECDSA_SHA256), now=NOW, key=key))
    assertion = response.find("saml:Assertion", NS)
    assert assertion is not None
    assert claims_of(signed_tree(assertion, key.cert_der)) == CLAIMS
    signed_tree(response, key.cert_der)


@pytest.mark.parametrize(("sign", "target"), [
    ("assertion", b">alice@example.com"),
    ("assertion", b"Alice Example"),
    ("response", b">alice@example.com"),
    ("response", b'Destination="https://sp.example.com/saml/ac'),
    ("both", b"0012345"),
])
def test_one_changed_byte_breaks_the_signature(idp_key: KeyPair, sign: SignWhat, target: bytes) -> None:
    data = serialize(build_response(spec(sign=sign), now=NOW, key=idp_key))
    assert data.count(target) == 1
    tampered = data.replace(target, target[:-1] + bytes([target[-1] ^ 0x01]))  # the value's last byte
    root = parse_untrusted(tampered, MESSAGE_LIMITS).getroot()
    signed = root if sign == "response" else root.find("saml:Assertion", NS)
    assert signed is not None
    with pytest.raises(SignatureError) as info:
        verify(signed, [idp_key.cert_der])
    assert info.value.kind == "invalid"


def test_another_certificate_does_not_verify(idp_key: KeyPair, sp_key: KeyPair) -> None:
    response = reparse(build_response(spec(sign="response"), now=NOW, key=idp_key))
    with pytest.raises(SignatureError):
        verify(response, [sp_key.cert_der])


def test_error_status_carries_no_assertion(idp_key: KeyPair) -> None:
    response = reparse(build_response(
        spec(status=(RESPONDER, AUTHN_FAILED), status_message="wrong password"), now=NOW, key=idp_key))
    assert response.find("saml:Assertion", NS) is None
    code = response.find("samlp:Status/samlp:StatusCode", NS)
    assert code is not None and code.get("Value") == RESPONDER
    inner = code.find("samlp:StatusCode", NS)
    assert inner is not None and inner.get("Value") == AUTHN_FAILED
    message = response.find("samlp:Status/samlp:StatusMessage", NS)
    assert message is not None and text_of(message) == "wrong password"
    assert validate(response, "protocol") == []
    signed_tree(response, idp_key.cert_der)  # with no assertion to sign, the status is signed


# ---------------------------------------------------------------------------- encryption

def encrypted(idp_key: KeyPair, sp_key: KeyPair, **changes: Any) -> etree._Element:
    return reparse(build_response(spec(**changes), now=NOW, key=idp_key, encrypt_for=sp_key.cert_der))


def test_encrypted_assertion_layout(idp_key: KeyPair, sp_key: KeyPair) -> None:
    response = encrypted(idp_key, sp_key, sign="both")
    assert b"alice@example.com" not in serialize(response)
    assert response.find(".//saml:Assertion", NS) is None
    data = response.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
    assert data is not None
    method = data.find("xenc:EncryptionMethod", NS)
    assert method is not None and method.get("Algorithm") == "http://www.w3.org/2009/xmlenc11#aes256-gcm"
    key_method = data.find("ds:KeyInfo/xenc:EncryptedKey/xenc:EncryptionMethod", NS)
    assert key_method is not None and key_method.get("Algorithm") == XENC + "rsa-oaep-mgf1p"
    assert validate(response, "protocol") == []
    signed_tree(response, idp_key.cert_der)  # the response signature covers the ciphertext


def test_encrypted_assertion_decrypts_to_the_signed_assertion(idp_key: KeyPair, sp_key: KeyPair) -> None:
    response = encrypted(idp_key, sp_key)
    wrapper = response.find("saml:EncryptedAssertion", NS)
    assert wrapper is not None
    assertion = decrypt_assertion(wrapper, sp_key.key_pem)
    assert validate(assertion, "protocol") == []
    signed = signed_tree(assertion, idp_key.cert_der)
    assert nameid_of(signed) == ("alice@example.com", EMAIL_FORMAT)
    assert claims_of(signed) == CLAIMS


def test_python3_saml_decrypts_our_encrypted_assertion(idp_key: KeyPair, sp_key: KeyPair) -> None:
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    response = encrypted(idp_key, sp_key)
    data = response.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
    assertion = OneLogin_Saml2_Utils.decrypt_element(data, sp_key.key_pem.decode())
    assert assertion.tag == f"{{{SAML}}}Assertion"
    assert claims_of(signed_tree(assertion, idp_key.cert_der)) == CLAIMS


def test_decrypt_refuses_the_wrong_key(idp_key: KeyPair, sp_key: KeyPair) -> None:
    wrapper = encrypted(idp_key, sp_key).find("saml:EncryptedAssertion", NS)
    assert wrapper is not None
    with pytest.raises(IdPResponseError, match="cannot be decrypted"):
        decrypt_assertion(wrapper, idp_key.key_pem)


@pytest.mark.parametrize("defect", ["data-algorithm", "key-algorithm", "retrieval-method", "two-keys", "extra-data"])
def test_decrypt_refuses_what_is_not_allowed(idp_key: KeyPair, sp_key: KeyPair, defect: str) -> None:
    wrapper = encrypted(idp_key, sp_key).find("saml:EncryptedAssertion", NS)
    assert wrapper is not None
    data = wrapper[0]
    key_info = data.find("ds:KeyInfo", NS)
    assert key_info is not None
    if defect == "data-algorithm":
        data[0].set("Algorithm", "http://www.w3.org/2001/04/xmlenc#tripledes-cbc")
    elif defect == "key-algorithm":
        key_info[0][0].set("Algorithm", "http://www.w3.org/2001/04/xmlenc#rsa-1_5")
    elif defect == "retrieval-method":
        etree.SubElement(key_info, f"{{{DS}}}RetrievalMethod", URI="https://evil.example/key",
                         Type=XENC + "EncryptedKey")
    elif defect == "two-keys":
        key_info.append(copy.deepcopy(key_info[0]))
    else:
        wrapper.append(copy.deepcopy(data))
    with pytest.raises(IdPResponseError):
        decrypt_assertion(wrapper, sp_key.key_pem)


def test_encryption_needs_an_rsa_certificate(idp_key: KeyPair) -> None:
    ec_sp = generate_keypair("sp.ec", kind="ec-p256", now=NOW)
    with pytest.raises(IdPResponseError, match="RSA"):
        build_response(spec(), now=NOW, key=idp_key, encrypt_for=ec_sp.cert_der)


# ---------------------------------------------------------------------------- python3-saml

REQUEST_DATA = {"https": "on", "http_host": "sp.example.com", "script_name": "/saml/acs"}


def _b64(pem: bytes) -> str:
    return "".join(line for line in pem.decode().splitlines() if "-----" not in line)


def onelogin_response(
    post_value: str, idp_key: KeyPair, sp_key: KeyPair, **security: bool
) -> Any:
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    settings = OneLogin_Saml2_Settings({
        "strict": True,
        "sp": {
            "entityId": SP_ENTITY,
            "assertionConsumerService": {"url": ACS, "binding": BINDING_POST},
            "x509cert": _b64(sp_key.cert_pem),
            "privateKey": sp_key.key_pem.decode(),
        },
        "idp": {
            "entityId": IDP_ENTITY,
            "singleSignOnService": {"url": "https://idp.example.com/sso", "binding": BINDING_REDIRECT},
            "x509cert": _b64(idp_key.cert_pem),
        },
        "security": {"rejectDeprecatedAlgorithm": True, **security},
    })
    return OneLogin_Saml2_Response(settings, post_value)


def _real_now() -> datetime:
    # python3-saml judges NotBefore/NotOnOrAfter with the real clock.
    return datetime.now(UTC)


@pytest.mark.parametrize(("sign", "encrypt"), [
    ("assertion", False), ("response", False), ("both", False), ("assertion", True), ("both", True),
])
def test_python3_saml_accepts_the_response(idp_key: KeyPair, sp_key: KeyPair, sign: SignWhat, encrypt: bool) -> None:
    response = build_response(spec(sign=sign), now=_real_now(), key=idp_key,
                              encrypt_for=sp_key.cert_der if encrypt else None)
    sp = onelogin_response(
        to_post_value(response), idp_key, sp_key,
        wantAssertionsSigned=sign in ("assertion", "both"),
        wantMessagesSigned=sign in ("response", "both"),
        wantAssertionsEncrypted=encrypt,
    )
    assert sp.is_valid(REQUEST_DATA, REQUEST_ID, raise_exceptions=True) is True
    assert sp.get_nameid() == "alice@example.com"
    assert sp.get_nameid_format() == EMAIL_FORMAT
    assert sp.get_session_index() == "_session1"
    assert sp.get_attributes() == {c.name: list(c.values) for c in CLAIMS}
    assert sp.get_friendlyname_attributes() == {"Name": ["Alice Example"]}


@pytest.mark.parametrize("sign", ["assertion", "response"])
def test_python3_saml_rejects_a_changed_byte(idp_key: KeyPair, sp_key: KeyPair, sign: SignWhat) -> None:
    data = serialize(build_response(spec(sign=sign), now=_real_now(), key=idp_key))
    tampered = data.replace(b"0012345", b"0012346")
    sp = onelogin_response(base64.b64encode(tampered).decode(), idp_key, sp_key)
    assert sp.is_valid(REQUEST_DATA, REQUEST_ID) is False
    assert "Signature validation failed" in sp.get_error()


def test_python3_saml_rejects_another_request_id(idp_key: KeyPair, sp_key: KeyPair) -> None:
    response = build_response(spec(), now=_real_now(), key=idp_key)
    sp = onelogin_response(to_post_value(response), idp_key, sp_key)
    assert sp.is_valid(REQUEST_DATA, "_another_request") is False
    assert "InResponseTo" in sp.get_error()


def test_python3_saml_reads_an_error_status(idp_key: KeyPair, sp_key: KeyPair) -> None:
    response = build_response(spec(status=(RESPONDER, AUTHN_FAILED), status_message="wrong password"),
                              now=_real_now(), key=idp_key)
    sp = onelogin_response(to_post_value(response), idp_key, sp_key)
    assert sp.is_valid(REQUEST_DATA, REQUEST_ID) is False
    assert sp.get_error() == "The status code of the Response was not Success, was Responder -> wrong password"


# ---------------------------------------------------------------------------- pysaml2

@pytest.mark.parametrize("encrypt", [False, True])
def test_pysaml2_accepts_the_response(idp_key: KeyPair, sp_key: KeyPair, tmp_path: Path, encrypt: bool) -> None:
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

    metadata = idp_metadata_xml(IDP_ENTITY, {BINDING_REDIRECT: "https://idp.example.com/sso"}, {},
                                [idp_key.cert_der], [EMAIL_FORMAT], False)
    (tmp_path / "idp.xml").write_bytes(etree.tostring(metadata))
    (tmp_path / "sp.key").write_bytes(sp_key.key_pem)
    (tmp_path / "sp.crt").write_bytes(sp_key.cert_pem)
    config = SPConfig()
    config.load({
        "entityid": SP_ENTITY,
        "metadata": {"local": [str(tmp_path / "idp.xml")]},
        "key_file": str(tmp_path / "sp.key"),
        "cert_file": str(tmp_path / "sp.crt"),
        "encryption_keypairs": [{"key_file": str(tmp_path / "sp.key"), "cert_file": str(tmp_path / "sp.crt")}],
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(ACS, BINDING_HTTP_POST)]},
            "want_assertions_signed": True,
            "want_response_signed": encrypt,
            "allow_unsolicited": False,
        }},
    })
    response = build_response(spec(sign="both" if encrypt else "assertion"), now=_real_now(), key=idp_key,
                              encrypt_for=sp_key.cert_der if encrypt else None)
    result = Saml2Client(config).parse_authn_request_response(
        to_post_value(response), BINDING_HTTP_POST, outstanding={REQUEST_ID: "/"})
    assert result.name_id.text == "alice@example.com"
    assert result.name_id.format == EMAIL_FORMAT
    assert result.ava == {c.name: list(c.values) for c in CLAIMS}
