"""Certificate facts, read with `cryptography`.

In SAML a certificate is only a container for a public key: trust comes from metadata,
not from a CA, so self-signed certificates are normal and chains are not built. What
matters is the key (type and size), the validity window and the fingerprint that a
partner's admin can compare with what their IdP shows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import warnings
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

from metadata.errors import MetadataError


class CertificateError(MetadataError, ValueError):
    """Bytes that are not a parseable X.509 certificate."""


@dataclass(frozen=True)
class CertificateFacts:
    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    key_type: str
    """``RSA``, ``EC``, ``Ed25519``, ``Ed448``, ``DSA`` or ``unknown``."""
    key_bits: int
    curve: str | None
    signature_hash: str | None
    """The hash of the certificate's own signature (``sha256``, ``sha1``, ``md5``), None for EdDSA."""
    sha1: str
    sha256: str
    self_signed: bool

    def days_left(self, now: datetime) -> int:
        """Whole days until `not_after` (negative once expired)."""
        return (self.not_after - now).days


def fingerprint(der: bytes, algorithm: str = "sha256") -> str:
    """The fingerprint as upper-case hex pairs joined by ``:``, as IdP admin consoles show it."""
    digest = hashlib.new(algorithm, der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def certificate_facts(der: bytes) -> CertificateFacts:
    with warnings.catch_warnings():
        # Old IdP certificates carry negative serial numbers (RFC 5280 forbids them; ADFS 2.0
        # issued them); they still hold a usable key, so the facts are read all the same.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _facts(der)


def _facts(der: bytes) -> CertificateFacts:
    try:
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"not a parseable X.509 certificate: {exc}") from exc
    curve = None
    if isinstance(key, rsa.RSAPublicKey):
        key_type, bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, bits, curve = "EC", key.curve.key_size, key.curve.name
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, bits = "Ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, bits = "DSA", key.key_size
    else:
        key_type, bits = "unknown", 0
    try:
        hash_algorithm = cert.signature_hash_algorithm
        signature_hash = hash_algorithm.name if hash_algorithm is not None else None
    except Exception:
        signature_hash = None
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type,
        key_bits=bits,
        curve=curve,
        signature_hash=signature_hash,
        sha1=fingerprint(der, "sha1"),
        sha256=fingerprint(der, "sha256"),
        self_signed=cert.issuer == cert.subject,
    )


def load_certificates(data: bytes) -> list[bytes]:
    """DER certificates from a PEM file (one or more blocks), a DER file or bare base64."""
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            return [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(data)]
        except ValueError as exc:
            raise CertificateError(f"the PEM certificate could not be read: {exc}") from exc
    try:
        x509.load_der_x509_certificate(data)
        return [data]
    except ValueError:
        pass
    try:
        der = base64.b64decode(b"".join(data.split()), validate=True)
        x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise CertificateError("not a certificate in PEM, DER or base64 form") from exc
    return [der]

