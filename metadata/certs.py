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
from datetime import datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

from metadata.errors import MetadataError


class CertificateError(MetadataError, ValueError):
    """Bytes that are not a parseable X.509 certificate."""


class CertificateFacts:
    """Facts of one DER certificate, each read from it when first asked for.

    Checking a federation aggregate reads tens of thousands of certificates and needs only
    dates, key and fingerprint of most; the subject is formatted only for those that are
    reported.
    """

    def __init__(self, der: bytes) -> None:
        with warnings.catch_warnings():
            # Old IdP certificates carry negative serial numbers (RFC 5280 forbids them; AD FS
            # 2.0 issued them); they still hold a usable key, so the facts are read all the same.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            try:
                self._cert = x509.load_der_x509_certificate(der)
                self.not_before: datetime = self._cert.not_valid_before_utc
                self.not_after: datetime = self._cert.not_valid_after_utc
                key = self._cert.public_key()
            except Exception as exc:  # cryptography raises several kinds for bad input
                raise CertificateError(f"not a usable X.509 certificate: {exc}") from exc
        self.der = der
        self.key_type, self.key_bits, self.curve = _key_facts(key)

    @cached_property
    def subject(self) -> str:
        # Read lazily for speed, so a malformed Name must not escape as an exception here.
        try:
            return self._cert.subject.rfc4514_string()
        except Exception:
            return "(unreadable subject)"

    @cached_property
    def signature_hash(self) -> str | None:
        """The hash of the certificate's own signature (``sha256``, ``sha1``, ``md5``), None for EdDSA."""
        try:
            algorithm = self._cert.signature_hash_algorithm
        except Exception:
            return None
        return algorithm.name if algorithm is not None else None

    @cached_property
    def sha256(self) -> str:
        return fingerprint(self.der, "sha256")

    @cached_property
    def sha1(self) -> str:
        return fingerprint(self.der, "sha1")

    @cached_property
    def self_signed(self) -> bool:
        try:
            return bool(self._cert.issuer == self._cert.subject)
        except Exception:
            return False

    def days_left(self, now: datetime) -> int:
        """Whole days until `not_after` (negative once expired)."""
        return (self.not_after - now).days


def _key_facts(key: object) -> tuple[str, int, str | None]:
    """``(type, bits, curve)``: type is RSA, EC, Ed25519, Ed448, DSA or unknown."""
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return "unknown", 0, None


def fingerprint(der: bytes, algorithm: str = "sha256") -> str:
    """The fingerprint as upper-case hex pairs joined by ``:``, as IdP admin consoles show it."""
    return hashlib.new(algorithm, der).digest().hex(":").upper()


def certificate_facts(der: bytes) -> CertificateFacts:
    """The facts of a DER certificate; :class:`CertificateError` when it cannot be read."""
    return CertificateFacts(der)


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

