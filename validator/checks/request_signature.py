"""Checking an AuthnRequest's signature with the SP's registered certificates.

The IdP calls :func:`request_signature` before it reads the request: for HTTP-POST a verified
signature hands back the signed bytes, and the request is read again from those
(SECURITY.md §2). The REQ rules then judge the :class:`SignatureCheck` it returns
(:func:`validator.checks.request.check_signature`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from metadata.bindings import PostMessage, RedirectMessage, verify_redirect_signature
from metadata.saml import DS
from metadata.service_provider import ServiceProvider
from metadata.signing import SHA1_SIGNATURE_METHODS, SignatureError, verify
from metadata.xml import REQUEST_LIMITS, signed_bytes_limits

__all__ = ["SignatureCheck", "SignatureStatus", "request_signature"]

SignatureStatus = Literal["verified", "missing", "invalid", "weak", "not-checked"]


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of checking a request's signature; :func:`request_signature` makes one."""

    status: SignatureStatus
    message: str = ""
    algorithm: str | None = None
    uses_sha1: bool = False
    certificate: bytes | None = None
    signed_xml: bytes | None = None
    """HTTP-POST: the verified request without its signature; read the request from these bytes."""


_STATUS_OF_KIND: dict[str, SignatureStatus] = {"missing": "missing", "weak": "weak", "no-trusted-key": "not-checked"}


def request_signature(
    message: RedirectMessage | PostMessage, sp: ServiceProvider | None, *, allow_sha1: bool = False
) -> SignatureCheck:
    """Verify the request's signature with the SP's certificates: the query string for HTTP-Redirect
    (Bindings §3.4.4.1), the enveloped XML signature for HTTP-POST (Core §5.4)."""
    root = message.tree.getroot()
    embedded = root.find(f"{{{DS}}}Signature") is not None
    algorithm: str | None = None
    if isinstance(message, RedirectMessage):
        if message.signature is None and message.sig_alg is None:
            note = (" (it carries an XML signature, but HTTP-Redirect signs the query string: Bindings §3.4.4.1)"
                    if embedded else "")
            return SignatureCheck("missing", "the request is not signed" + note)
        algorithm = message.sig_alg
    elif not embedded:
        return SignatureCheck("missing", "the request is not signed")
    sha1 = algorithm in SHA1_SIGNATURE_METHODS
    if sp is None:
        return SignatureCheck("not-checked", "the Issuer is not a registered SP", algorithm, sha1)
    if not sp.signing_certificates:
        return SignatureCheck("not-checked", "the SP's metadata has no signing certificate", algorithm, sha1)
    try:
        if isinstance(message, RedirectMessage):
            cert = verify_redirect_signature(message, sp.signing_certificates, allow_sha1=allow_sha1)
            return SignatureCheck("verified", "the query-string signature verifies", algorithm, sha1, cert)
        verified = verify(root, sp.signing_certificates, allow_sha1=allow_sha1,
                          max_signed_bytes=signed_bytes_limits(REQUEST_LIMITS).max_bytes)
    except SignatureError as exc:
        if exc.profile is not None:
            algorithm, sha1 = exc.profile.signature_method, exc.profile.uses_sha1
        status = _STATUS_OF_KIND.get(exc.kind, "invalid")
        return SignatureCheck(status, exc.message, algorithm, sha1 or exc.kind == "weak")
    profile = verified.profile
    return SignatureCheck("verified", "the XML signature verifies", profile.signature_method, profile.uses_sha1,
                          verified.certificate, verified.signed_bytes)
