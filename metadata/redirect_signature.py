"""The HTTP-Redirect binding's signature (saml-bindings-2.0-os §3.4.4.1): a signature over the
query octets ``SAMLRequest=…&RelayState=…&SigAlg=…`` exactly as sent, not over the XML.

RSA (PKCS#1 v1.5) and ECDSA with SHA-1/256/384/512; ECDSA values are r‖s (XML-DSig 1.1
§6.4.3). SHA-1 is refused unless a caller allows it. :mod:`metadata.bindings` decodes the
message and keeps the octets; this module signs and verifies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from metadata.signing import (
    ECDSA_SHA1,
    ECDSA_SHA256,
    ECDSA_SHA384,
    ECDSA_SHA512,
    RSA_SHA1,
    RSA_SHA256,
    RSA_SHA384,
    RSA_SHA512,
    SHA1_SIGNATURE_METHODS,
    SignatureError,
    algorithm_name,
)
from metadata.xml import visible

if TYPE_CHECKING:
    from metadata.bindings import RedirectMessage

__all__ = ["sign_octets", "verify_redirect_signature"]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    RSA_SHA1: hashes.SHA1,
    RSA_SHA256: hashes.SHA256,
    RSA_SHA384: hashes.SHA384,
    RSA_SHA512: hashes.SHA512,
    ECDSA_SHA1: hashes.SHA1,
    ECDSA_SHA256: hashes.SHA256,
    ECDSA_SHA384: hashes.SHA384,
    ECDSA_SHA512: hashes.SHA512,
}
_ECDSA = {ECDSA_SHA1, ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512}


def _curve_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> int:
    return (key.curve.key_size + 7) // 8


def sign_octets(octets: bytes, key_pem: bytes, sig_alg: str) -> bytes:
    """Sign `octets` as the Redirect binding does; ECDSA values are r‖s (XML-DSig 1.1 §6.4.3)."""
    hash_type = _HASHES.get(sig_alg)
    if hash_type is None:
        raise SignatureError("profile", f"unknown SigAlg {sig_alg!r}")
    key = serialization.load_pem_private_key(key_pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey) and sig_alg not in _ECDSA:
        return key.sign(octets, padding.PKCS1v15(), hash_type())
    if isinstance(key, ec.EllipticCurvePrivateKey) and sig_alg in _ECDSA:
        r, s = decode_dss_signature(key.sign(octets, ec.ECDSA(hash_type())))
        size = _curve_bytes(key)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise SignatureError("profile", f"a {type(key).__name__} cannot sign with {algorithm_name(sig_alg)}")


def _verifies(der: bytes, message: RedirectMessage, signature: bytes, sig_alg: str) -> bool:
    try:
        key = x509.load_der_x509_certificate(der).public_key()
    except ValueError:
        return False
    hash_alg = _HASHES[sig_alg]()
    try:
        if isinstance(key, rsa.RSAPublicKey) and sig_alg not in _ECDSA:
            key.verify(signature, message.signed_octets, padding.PKCS1v15(), hash_alg)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey) and sig_alg in _ECDSA:
            size = _curve_bytes(key)
            if len(signature) != 2 * size:
                return False
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), message.signed_octets, ec.ECDSA(hash_alg))
            return True
    except InvalidSignature:
        return False
    return False


def verify_redirect_signature(
    message: RedirectMessage, trusted_der_certs: Sequence[bytes], *, allow_sha1: bool = False
) -> bytes:
    """Verify the query-string signature (§3.4.4.1); return the DER of the certificate that verified it.

    Raises :class:`SignatureError` of kind ``missing``, ``profile`` (unknown or absent SigAlg),
    ``weak`` (SHA-1 without `allow_sha1`), ``no-trusted-key`` or ``invalid``.
    """
    if message.signature is None:
        raise SignatureError("missing", "the query string has no Signature parameter")
    if message.sig_alg is None:
        raise SignatureError("profile", "the query string has a Signature but no SigAlg parameter")
    if message.sig_alg not in _HASHES:
        raise SignatureError("profile", f"the SigAlg '{visible(message.sig_alg)}' is not a supported "
                             "RSA or ECDSA signature algorithm")
    if message.sig_alg in SHA1_SIGNATURE_METHODS and not allow_sha1:
        raise SignatureError("weak", f"the request is signed with {algorithm_name(message.sig_alg)}; SHA-1 "
                             "is refused here")
    if not trusted_der_certs:
        raise SignatureError("no-trusted-key", "no trusted certificate was given")
    for der in trusted_der_certs:
        if _verifies(der, message, message.signature, message.sig_alg):
            return der
    keys = "the trusted certificate" if len(trusted_der_certs) == 1 else (
        f"any of the {len(trusted_der_certs)} trusted certificates")
    raise SignatureError("invalid", f"the {algorithm_name(message.sig_alg)} signature over the query string "
                         f"does not verify with {keys}")
