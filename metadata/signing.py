"""XML-Signature signing and verification with python-xmlsec, in process (SECURITY.md §2).

One signer, one verifier. The verifier checks the signature's *shape* before any crypto
(SAML Core §5.4: one Reference whose URI is ``#`` + the signed element's ID; only the
enveloped-signature and exclusive-c14n transforms), verifies with trusted certificates
only — never with a key found in KeyInfo — and hands back the exclusive canonical bytes of
the signed element without its signature: what was signed, and the only thing a caller may
read claims from (after re-parsing them with :func:`metadata.xml.parse_untrusted`).

Size: this is one thing, XML-Signature as SAML Core §5.4 profiles it: the signer makes exactly
the shape that the profile rules accept, both draw on the same algorithm tables, and the verifier
runs those rules and the cost caps (PrefixList, canonical size, trusted certificates) right before
its one xmlsec call, where a reader sees that nothing reaches xmlsec unchecked.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import xmlsec
from lxml import etree
from xmlsec import constants as xc

from metadata.errors import MetadataError
from metadata.saml import DS
from metadata.xml import METADATA_LIMITS, line_of, signed_bytes_limits, text_of

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
ECDSA_SHA1 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

STRONG_SIGNATURE_METHODS = {RSA_SHA256, RSA_SHA384, RSA_SHA512, ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512}
SHA1_SIGNATURE_METHODS = {RSA_SHA1, ECDSA_SHA1}
STRONG_DIGESTS = {SHA256, SHA384, SHA512}

_XMLSEC_SIGNATURE = {
    RSA_SHA1: xc.TransformRsaSha1,
    RSA_SHA256: xc.TransformRsaSha256,
    RSA_SHA384: xc.TransformRsaSha384,
    RSA_SHA512: xc.TransformRsaSha512,
    ECDSA_SHA1: xc.TransformEcdsaSha1,
    ECDSA_SHA256: xc.TransformEcdsaSha256,
    ECDSA_SHA384: xc.TransformEcdsaSha384,
    ECDSA_SHA512: xc.TransformEcdsaSha512,
}
_XMLSEC_DIGEST = {
    SHA1: xc.TransformSha1,
    SHA256: xc.TransformSha256,
    SHA384: xc.TransformSha384,
    SHA512: xc.TransformSha512,
}
MAX_SIGNED_BYTES = signed_bytes_limits(METADATA_LIMITS).max_bytes
"""Default cap on the canonical form of a signed element: four times the largest default document."""
MAX_INCLUSIVE_PREFIXES = 16
"""Most prefixes in an InclusiveNamespaces PrefixList. Real IdPs send 0 to 5 (the corpus: at most
1); each one is looked up at every element canonicalised, so 4,000 of them over 4,000 elements
cost 50 s before any key was tried."""
MAX_TRUSTED_CERTIFICATES = 10
"""Most distinct trusted certificates tried for one signature. Each try canonicalises and digests
the signed element again; the corpus's IdPs list at most 3 signing certificates."""
_TRANSFORMS = (ENVELOPED, EXC_C14N)
_SAME_ID = etree.XPath("count(//@ID[. = $v]) + count(//@Id[. = $v])")


def algorithm_name(uri: str) -> str:
    """``rsa-sha256`` for a signature or digest method URI; the URI itself when unknown."""
    return uri.rsplit("#", 1)[-1] if "#" in uri else uri


class SignatureError(MetadataError, ValueError):
    """A signature that is missing, malformed, of a forbidden shape, or that does not verify.

    `kind` is one of: ``missing``, ``several``, ``duplicate-id``, ``profile``, ``weak``,
    ``invalid``, ``no-trusted-key``.
    """

    def __init__(self, kind: str, message: str, *, profile: SignatureProfile | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.profile = profile


@dataclass(frozen=True)
class SignatureProfile:
    """What a ds:Signature says about itself, read by position (never with ``//``)."""

    signature_method: str
    c14n_method: str
    reference_uri: str
    transforms: tuple[str, ...]
    digest_method: str
    inclusive_prefixes: tuple[str, ...]
    certificate_texts: tuple[str, ...]
    """The base64 text of each KeyInfo/X509Data/X509Certificate, whitespace removed (never trusted)."""
    line: int | None

    @property
    def uses_sha1(self) -> bool:
        return self.signature_method in SHA1_SIGNATURE_METHODS or self.digest_method == SHA1

    @functools.cached_property
    def embedded_certificates(self) -> tuple[bytes, ...]:
        """The KeyInfo certificates that decode, as DER; decoded when first asked for (a verify
        with trusted certificates never asks)."""
        certificates = []
        for text in self.certificate_texts:
            try:
                certificates.append(base64.b64decode(text, validate=True))
            except (binascii.Error, ValueError):
                continue
        return tuple(certificates)


@dataclass(frozen=True)
class VerifiedSignature:
    profile: SignatureProfile
    certificate: bytes
    """DER of the trusted certificate whose key verified the signature."""
    signed_bytes: bytes
    """Exclusive c14n of the signed element without its signature: what was signed."""


def signature_of(element: etree._Element) -> etree._Element:
    """The one ds:Signature that is a direct child of `element`."""
    signatures = element.findall(f"{{{DS}}}Signature")
    if not signatures:
        raise SignatureError("missing", f"{etree.QName(element).localname} has no ds:Signature child")
    if len(signatures) > 1:
        raise SignatureError(
            "several", f"{etree.QName(element).localname} has {len(signatures)} ds:Signature children; one is allowed"
        )
    return signatures[0]


_SIGNED_INFO = f"{{{DS}}}SignedInfo"
_OBJECT = f"{{{DS}}}Object"
_C14N_METHOD = f"{{{DS}}}CanonicalizationMethod"
_SIGNATURE_METHOD = f"{{{DS}}}SignatureMethod"
_REFERENCE = f"{{{DS}}}Reference"
_TRANSFORMS_TAG = f"{{{DS}}}Transforms"
_TRANSFORM = f"{{{DS}}}Transform"
_DIGEST_METHOD = f"{{{DS}}}DigestMethod"
_KEY_INFO = f"{{{DS}}}KeyInfo"
_X509_DATA = f"{{{DS}}}X509Data"
_X509_CERTIFICATE = f"{{{DS}}}X509Certificate"
_SIGNED_INFO_SHAPE = [_C14N_METHOD, _SIGNATURE_METHOD, _REFERENCE]


def read_profile(signature: etree._Element) -> SignatureProfile:
    """Read a signature's algorithms and reference, or raise ``profile`` when its shape is wrong."""
    parts = _signed_info_parts(signature)
    reference = parts[2]
    transforms, prefixes = _transforms_and_prefixes(reference)
    digest = reference.find(_DIGEST_METHOD)
    texts = _certificate_texts(signature)
    return SignatureProfile(
        signature_method=parts[1].get("Algorithm", ""),
        c14n_method=parts[0].get("Algorithm", ""),
        reference_uri=reference.get("URI", ""),
        transforms=transforms,
        digest_method=digest.get("Algorithm", "") if digest is not None else "",
        inclusive_prefixes=prefixes,
        certificate_texts=texts,
        line=line_of(signature),
    )


def _signed_info_parts(signature: etree._Element) -> list[etree._Element]:
    """SignedInfo's CanonicalizationMethod, SignatureMethod and Reference, in that order, or
    ``profile``: SignedInfo not first, a ds:Object, or SignedInfo holding anything else."""
    signed_info = next(signature.iterchildren(etree.Element), None)
    if signed_info is None or signed_info.tag != _SIGNED_INFO:
        raise SignatureError("profile", "the first child of ds:Signature is not ds:SignedInfo")
    if signature.find(_OBJECT) is not None:
        raise SignatureError("profile", "ds:Signature carries a ds:Object, which SAML signatures never need")
    parts = list(signed_info.iterchildren(etree.Element))
    if [c.tag for c in parts] != _SIGNED_INFO_SHAPE:
        # Judged by local name, as ever (a foreign namespace here is left for xmlsec to refuse).
        tags = [etree.QName(c).localname for c in parts]
        if tags != ["CanonicalizationMethod", "SignatureMethod", "Reference"]:
            raise SignatureError(
                "profile",
                "ds:SignedInfo must hold CanonicalizationMethod, SignatureMethod and exactly one Reference; "
                f"it holds {', '.join(tags) or 'nothing'}",
            )
    return parts


def _transforms_and_prefixes(reference: etree._Element) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Reference's transform algorithms, and the PrefixList of the last InclusiveNamespaces
    under any of them."""
    transforms: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    transforms_el = reference.find(_TRANSFORMS_TAG)
    if transforms_el is not None:
        each = list(transforms_el.iterchildren(_TRANSFORM))
        transforms = tuple(t.get("Algorithm", "") for t in each)
        for transform in each:
            for inclusive in transform.iterchildren("{*}InclusiveNamespaces"):
                prefixes = tuple(inclusive.get("PrefixList", "").split())
    return transforms, prefixes


def _certificate_texts(signature: etree._Element) -> tuple[str, ...]:
    """Each KeyInfo/X509Data/X509Certificate's text, whitespace removed (reported, never trusted)."""
    return tuple("".join(text_of(cert).split()) for data in _children(signature, _KEY_INFO, _X509_DATA)
                 for cert in data.iterchildren(_X509_CERTIFICATE))


def _children(element: etree._Element, outer: str, inner: str) -> Iterator[etree._Element]:
    """Every `inner` child of every `outer` child of `element` (``outer/inner``, in document order)."""
    for middle in element.iterchildren(outer):
        yield from middle.iterchildren(inner)


def profile_problems(profile: SignatureProfile, element: etree._Element, *, id_attribute: str = "ID") -> list[str]:
    """Every way the signature departs from SAML Core §5.4 (SHA-1 is not one; see ``uses_sha1``)."""
    problems = []
    element_id = element.get(id_attribute)
    if not element_id:
        problems.append(f"the signed element has no {id_attribute} attribute for the Reference to point at")
    elif profile.reference_uri != f"#{element_id}":
        problems.append(
            f"the Reference URI is {profile.reference_uri!r}; it must be '#{element_id}', the ID of the signed element"
        )
    if profile.c14n_method != EXC_C14N:
        problems.append(f"SignedInfo is canonicalised with {profile.c14n_method!r}; exclusive c14n without "
                        "comments is required")
    problems.extend(_transform_problems(profile.transforms))
    problems.extend(_prefix_problems(profile.inclusive_prefixes))
    if profile.signature_method not in STRONG_SIGNATURE_METHODS | SHA1_SIGNATURE_METHODS:
        problems.append(f"the signature method {profile.signature_method!r} is not allowed")
    if profile.digest_method not in STRONG_DIGESTS | {SHA1}:
        problems.append(f"the digest method {profile.digest_method!r} is not allowed")
    return problems


def _transform_problems(transforms: tuple[str, ...]) -> list[str]:
    # SAML Core §5.4.4 allows the enveloped-signature transform alone, but then the digest is
    # over inclusive c14n of the element, which this verifier never computes: refused by shape,
    # not reported as a digest that does not match. No real IdP of the corpus does it.
    if transforms == _TRANSFORMS:
        return []
    problems = [f"the transform {t!r} is not allowed (only enveloped-signature and exclusive c14n)"
                for t in dict.fromkeys(transforms) if t not in _TRANSFORMS]
    if ENVELOPED not in transforms:
        problems.append("the Reference lacks the enveloped-signature transform")
    elif transforms == (ENVELOPED,):
        problems.append("the Reference has only the enveloped-signature transform; exclusive c14n must follow it "
                        "(without it the digest is over inclusive c14n, which is not accepted here)")
    elif not problems:
        shown = ", ".join(algorithm_name(t) for t in transforms)
        problems.append(f"the Reference's transforms must be enveloped-signature then exclusive c14n, once each; "
                        f"they are {shown}")
    return problems


def _prefix_problems(prefixes: tuple[str, ...]) -> list[str]:
    """Refuse a PrefixList that could make canonicalisation costly (checked before any key). A
    prefix that nothing declares is allowed: exclusive c14n ignores it, and Okta lists "xs" even in
    responses without an AttributeValue to declare it."""
    if not prefixes:
        return []
    if len(prefixes) > MAX_INCLUSIVE_PREFIXES:
        return [f"the InclusiveNamespaces PrefixList has {len(prefixes):,} prefixes; at most "
                f"{MAX_INCLUSIVE_PREFIXES} are accepted"]
    problems = []
    if len(set(prefixes)) != len(prefixes):
        problems.append("the InclusiveNamespaces PrefixList names a prefix twice")
    malformed = [p for p in prefixes if p != "#default" and not _is_ncname(p)]
    if malformed:
        problems.append(f"the InclusiveNamespaces PrefixList holds {malformed[0]!r}, which is not a prefix")
    return problems


def _is_ncname(value: str) -> bool:
    # A prefix has no colon and is an XML name; lxml's QName checks that without a regex.
    if ":" in value:
        return False
    try:
        etree.QName(None, value)
    except ValueError:
        return False
    return True


def _context(der: bytes, profile: SignatureProfile) -> xmlsec.SignatureContext:
    ctx = xmlsec.SignatureContext()
    ctx.key = verification_key(der)  # the context takes its own copy
    ctx.set_enabled_key_data([xc.KeyDataX509])
    for transform in (xc.TransformEnveloped, xc.TransformExclC14N, *_XMLSEC_DIGEST.values()):
        ctx.enable_reference_transform(transform)
    ctx.enable_signature_transform(xc.TransformExclC14N)
    ctx.enable_signature_transform(_XMLSEC_SIGNATURE[profile.signature_method])
    return ctx


def verify(
    element: etree._Element,
    trusted: Sequence[bytes],
    *,
    id_attribute: str = "ID",
    allow_sha1: bool = False,
    max_signed_bytes: int = MAX_SIGNED_BYTES,
    ids_unique: bool = False,
) -> VerifiedSignature:
    """Verify the enveloped signature of `element` with one of the `trusted` DER certificates.

    Raises :class:`SignatureError` unless a trusted key explicitly verifies the one expected
    signature. On success the signed bytes are returned; read nothing else. Signed content that
    canonicalises to more than `max_signed_bytes` is refused (``profile``) before any key is tried.
    `ids_unique` says that the caller has already refused any document in which an ``ID`` or
    ``Id`` value occurs twice (:func:`metadata.response.structure_problems` on the whole
    document), so the count of the element's ID is not made again.
    """
    signature = signature_of(element)
    profile = read_profile(signature)
    problems = profile_problems(profile, element, id_attribute=id_attribute)
    if problems:
        raise SignatureError("profile", "; ".join(problems), profile=profile)
    if profile.uses_sha1 and not allow_sha1:
        raise SignatureError("weak", "the signature uses SHA-1, which is refused here", profile=profile)
    element_id = element.get(id_attribute, "")
    same_id = 1.0 if ids_unique and id_attribute in ("ID", "Id") else cast(
        float, _SAME_ID(element.getroottree(), v=element_id))
    if same_id != 1:
        raise SignatureError(
            "duplicate-id", f"the ID {element_id!r} occurs {int(same_id)} times in the document", profile=profile
        )
    trusted = tuple(dict.fromkeys(trusted))  # a certificate listed 3,000 times is tried once
    if not trusted:
        raise SignatureError("no-trusted-key", "no trusted certificate was given", profile=profile)
    if len(trusted) > MAX_TRUSTED_CERTIFICATES:
        raise SignatureError("invalid", f"{len(trusted):,} distinct trusted certificates were given; at most "
                             f"{MAX_TRUSTED_CERTIFICATES} are tried, so none was (no IdP signs with that many)",
                             profile=profile)
    signed = _signed_bytes(element, signature, profile, max_signed_bytes)
    for der in trusted:
        # A fresh context per certificate (SECURITY.md §2: rollover).
        try:
            ctx = _context(der, profile)
            ctx.register_id(element, id_attribute)
            ctx.verify(signature)
        except (xmlsec.Error, xmlsec.VerificationError, xmlsec.InternalError):
            continue
        if not signed.strip():
            raise SignatureError("invalid", "the signed content canonicalises to nothing", profile=profile)
        return VerifiedSignature(profile=profile, certificate=der, signed_bytes=signed)
    keys = "the trusted certificate" if len(trusted) == 1 else f"any of the {len(trusted)} trusted certificates"
    raise SignatureError("invalid", f"the signature does not verify with {keys}", profile=profile)


class _OverLimit(Exception):
    pass


class _CappedSink:
    """A file for canonical bytes that stops the canonicalisation once they pass `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise _OverLimit
        self.parts.append(data)
        return len(data)


def _signed_bytes(element: etree._Element, signature: etree._Element, profile: SignatureProfile, limit: int) -> bytes:
    # The enveloped transform removes the signature; exclusive c14n then gives the digested
    # octets. Detach it for the canonicalisation, then put it back where it was.
    # Exclusive c14n declares a namespace again on every element that uses it: a 1 KiB URI used
    # by 20,000 siblings makes 20 MB of a 140 KB response (unbounded URIs made gigabytes), which
    # xmlsec would digest and a verified signature would hold. The capped sink stops it first.
    parent = signature.getparent()
    assert parent is not None
    index = parent.index(signature)
    tail = signature.tail
    parent.remove(signature)
    sink = _CappedSink(limit)
    try:
        tree: Any = etree.ElementTree(element)  # lxml-stubs know neither `exclusive` nor file-like sinks
        tree.write_c14n(
            sink, exclusive=True, with_comments=False, inclusive_ns_prefixes=list(profile.inclusive_prefixes) or None
        )
    except _OverLimit:
        raise SignatureError("profile", f"the signed content canonicalises to more than {limit:,} bytes (a namespace "
                             "declared once and used by many elements is repeated on each); refused before any key "
                             "is tried", profile=profile) from None
    except etree.C14NError as exc:  # "void" canonical XML: a relative namespace URI, say
        raise SignatureError("invalid", f"the signed content cannot be canonicalised: {exc}", profile=profile) from None
    finally:
        signature.tail = tail
        parent.insert(index, signature)
    return b"".join(sink.parts)


@functools.lru_cache(maxsize=16)
def signature_method_for(key_pem: bytes) -> str:
    """The SHA-256 signature method that fits the private key: ECDSA for EC keys, else RSA."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_pem, password=None)
    return ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else RSA_SHA256


def sign(
    element: etree._Element,
    key_pem: bytes,
    cert_pem: bytes,
    *,
    signature_method: str = RSA_SHA256,
    digest_method: str = SHA256,
    after: str | None = None,
    id_attribute: str = "ID",
    inclusive_prefixes: tuple[str, ...] = (),
) -> etree._Element:
    """Sign `element` in place with an enveloped, exclusive-c14n signature; return the signature.

    The signature goes right after the first child whose tag is `after` (SAML puts it after
    saml:Issuer), or first when `after` is None (metadata). `inclusive_prefixes`, when given, go
    in an ec:InclusiveNamespaces PrefixList on the Reference's exclusive c14n transform (Okta's).
    """
    element_id = element.get(id_attribute)
    if not element_id:
        raise SignatureError("profile", f"the element to sign has no {id_attribute} attribute")
    signature = xmlsec.template.create(element, xc.TransformExclC14N, _XMLSEC_SIGNATURE[signature_method])
    anchor = element.find(after) if after else None
    element.insert(element.index(anchor) + 1 if anchor is not None else 0, signature)
    reference = xmlsec.template.add_reference(signature, _XMLSEC_DIGEST[digest_method], uri=f"#{element_id}")
    xmlsec.template.add_transform(reference, xc.TransformEnveloped)
    exclusive = xmlsec.template.add_transform(reference, xc.TransformExclC14N)
    if inclusive_prefixes:
        # Written by hand for the ec: prefix the products use (xmlsec's helper declares a default namespace).
        etree.SubElement(exclusive, f"{{{EXC_C14N}}}InclusiveNamespaces", nsmap={"ec": EXC_C14N},
                         PrefixList=" ".join(inclusive_prefixes))
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.add_x509_data(key_info)
    ctx = xmlsec.SignatureContext()
    ctx.key = _signing_key(key_pem, cert_pem)  # the context takes its own copy
    ctx.register_id(element, id_attribute)
    ctx.sign(signature)
    return signature


@functools.lru_cache(maxsize=64)
def verification_key(der: bytes) -> xmlsec.Key:
    """The xmlsec key that verifies with the trusted DER certificate `der`: its public key alone.

    Only the public key of the configured certificate verifies (KeyInfo is never read: the
    context has no keys manager, so xmlsec uses this key as given). A key loaded from the whole
    certificate verifies exactly the same, but ``ctx.key = key`` then copies the certificate
    into every context, some 60 µs per signature; the SubjectPublicKeyInfo costs about 1 µs.
    A certificate that cryptography cannot read, or whose public key xmlsec cannot load alone, is
    loaded whole, as before, so that what verifies does not depend on which library reads it.
    """
    import warnings

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from cryptography.utils import CryptographyDeprecationWarning

    try:
        with warnings.catch_warnings():
            # AD FS 2.0 issued negative serial numbers (RFC 5280 forbids them): the key is usable.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
                Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return xmlsec.Key.from_memory(spki, xc.KeyDataFormatDer, None)
    except Exception:  # cryptography raises several kinds for what it cannot read; xmlsec.Error too
        return xmlsec.Key.from_memory(der, xc.KeyDataFormatCertDer, None)


@functools.lru_cache(maxsize=16)
def _signing_key(key_pem: bytes, cert_pem: bytes) -> xmlsec.Key:
    # Loading the PEM for every signature halves the signing rate; a loaded key is reused.
    key = xmlsec.Key.from_memory(key_pem, xc.KeyDataFormatPem, None)
    key.load_cert_from_memory(cert_pem, xc.KeyDataFormatCertPem)
    return key
