"""The key metadata.signing verifies with: the trusted certificate's public key alone.

SECURITY.md §2: ``ctx.key`` comes from the configured certificate, never from KeyInfo. Since the
key is built from the certificate's SubjectPublicKeyInfo (not the whole certificate, which
``ctx.key = key`` copied into every context), these tests pin that nothing else changed: what
verifies with the whole certificate verifies with its public key, whatever the certificate's
dates; a certificate in KeyInfo is still ignored; and a certificate cryptography cannot read is
still loaded whole.
"""

from __future__ import annotations

import datetime as dt

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from xmlsec import constants as xc

from metadata import signing
from metadata.signing import ECDSA_SHA256, RSA_SHA256, SignatureError, sign, verification_key, verify

NOW = dt.datetime.now(dt.UTC)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _certificate(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, not_before: dt.datetime,
                 not_after: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signing-key-test")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))


def _signed(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, certificate: x509.Certificate,
            method: str) -> etree._Element:
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    document = etree.fromstring(b'<r xmlns="urn:test" ID="_signed"><v>value</v></r>')
    sign(document, key_pem, certificate.public_bytes(serialization.Encoding.PEM), signature_method=method)
    return etree.fromstring(etree.tostring(document))


def _verifies_with_whole_certificate(document: etree._Element, der: bytes, method: str) -> bool:
    # The key form used before: the whole DER certificate.
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(der, xc.KeyDataFormatCertDer, None)
    ctx.set_enabled_key_data([xc.KeyDataX509])
    for transform in (xc.TransformEnveloped, xc.TransformExclC14N, xc.TransformSha256):
        ctx.enable_reference_transform(transform)
    ctx.enable_signature_transform(xc.TransformExclC14N)
    ctx.enable_signature_transform(xc.TransformRsaSha256 if method == RSA_SHA256 else xc.TransformEcdsaSha256)
    ctx.register_id(document, "ID")
    try:
        ctx.verify(signing.signature_of(document))
    except (xmlsec.Error, xmlsec.VerificationError):
        return False
    return True


DATES = {
    "valid": (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=30)),
    "expired": (NOW - dt.timedelta(days=900), NOW - dt.timedelta(days=800)),
    "not yet valid": (NOW + dt.timedelta(days=800), NOW + dt.timedelta(days=900)),
}


@pytest.mark.parametrize("dates", DATES, ids=list(DATES))
@pytest.mark.parametrize(("key", "method"), [(RSA_KEY, RSA_SHA256), (EC_KEY, ECDSA_SHA256)], ids=["rsa", "ec"])
def test_the_public_key_verifies_what_the_whole_certificate_verifies(
        dates: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, method: str) -> None:
    certificate = _certificate(key, *DATES[dates])
    der = certificate.public_bytes(serialization.Encoding.DER)
    document = _signed(key, certificate, method)
    assert _verifies_with_whole_certificate(document, der, method)
    assert verify(document, [der]).certificate == der
    other = _certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048), *DATES["valid"])
    other_der = other.public_bytes(serialization.Encoding.DER)
    assert not _verifies_with_whole_certificate(document, other_der, method)
    with pytest.raises(SignatureError) as refused:
        verify(document, [other_der])
    assert refused.value.kind == "invalid"


def test_keyinfo_is_still_ignored() -> None:
    # Signed by an attacker's key, whose certificate sits in KeyInfo: the trusted key alone decides.
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    document = _signed(attacker, _certificate(attacker, *DATES["valid"]), RSA_SHA256)
    trusted = _certificate(RSA_KEY, *DATES["valid"]).public_bytes(serialization.Encoding.DER)
    with pytest.raises(SignatureError) as refused:
        verify(document, [trusted])
    assert refused.value.kind == "invalid"


def test_the_key_is_built_once_per_certificate() -> None:
    der = _certificate(RSA_KEY, *DATES["valid"]).public_bytes(serialization.Encoding.DER)
    assert verification_key(der) is verification_key(der)


def test_a_certificate_cryptography_cannot_read_is_loaded_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    certificate = _certificate(RSA_KEY, *DATES["valid"])
    der = certificate.public_bytes(serialization.Encoding.DER)
    document = _signed(RSA_KEY, certificate, RSA_SHA256)

    def unreadable(data: bytes) -> x509.Certificate:
        raise ValueError("cannot read this certificate")

    verification_key.cache_clear()
    monkeypatch.setattr(x509, "load_der_x509_certificate", unreadable)
    try:
        assert verify(document, [der]).certificate == der
    finally:
        verification_key.cache_clear()
