"""An ID used twice is refused, whether verify counts it or structure_problems found it first.

verify_response tells verify that IDs are unique (so verify does not count the element's ID
again) only when structure_problems has judged the whole document: when the Response it was
given is the document's root. A Response inside some other document still has its ID counted
in the whole document by verify.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from metadata.response import ResponseError, verify_response
from metadata.signing import SignatureError, sign, verify

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = dt.datetime.now(dt.UTC)
NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ids-test")])
CERT = (x509.CertificateBuilder().subject_name(NAME).issuer_name(NAME).public_key(KEY.public_key())
        .serial_number(1).not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=9))
        .sign(KEY, hashes.SHA256()))
DER = CERT.public_bytes(serialization.Encoding.DER)
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def _signed_response() -> bytes:
    response = etree.fromstring(
        f'<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_r" Version="2.0">'
        '<saml:Issuer>https://idp.example</saml:Issuer>'
        '<saml:Assertion ID="_a" Version="2.0"><saml:Issuer>https://idp.example</saml:Issuer>'
        '<saml:Subject><saml:NameID>alice@example.com</saml:NameID></saml:Subject></saml:Assertion>'
        '</samlp:Response>'.encode())
    key_pem = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    sign(response, key_pem, CERT.public_bytes(serialization.Encoding.PEM), after=f"{{{SAML}}}Issuer")
    return etree.tostring(response)


def test_a_signed_response_verifies() -> None:
    verified = verify_response(etree.fromstring(_signed_response()), [DER])
    assert verified.response_signed and verified.assertion is not None


@pytest.mark.parametrize("attribute", ["ID", "Id"])
def test_verify_counts_the_id_in_the_whole_document(attribute: str) -> None:
    response = etree.fromstring(_signed_response())
    assertion = response.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    etree.SubElement(assertion, "{urn:x}Extra").set(attribute, "_r")
    with pytest.raises(SignatureError) as refused:
        verify(response, [DER])
    assert refused.value.kind == "duplicate-id"
    with pytest.raises(ResponseError) as structure:
        verify_response(response, [DER])
    assert structure.value.kind == "duplicate-id"


def test_a_response_inside_another_document_has_its_id_counted_outside_it_too() -> None:
    outer = etree.fromstring(b'<wrapper><decoy ID="_r"/></wrapper>')
    outer.append(etree.fromstring(_signed_response()))
    with pytest.raises(SignatureError) as refused:
        verify_response(outer[1], [DER])
    assert refused.value.kind == "duplicate-id"
