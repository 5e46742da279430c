"""The SAML Response the test IdP sends: built with lxml elements, signed with the one signer.

:func:`build_response` follows the Web Browser SSO profile (SAML Profiles §4.1.4.2): an
Issuer, a Subject with a bearer SubjectConfirmation (Recipient, NotOnOrAfter, InResponseTo),
Conditions with an AudienceRestriction, an AuthnStatement and the claims, written in a
product's :class:`Shape`. The assertion is signed before the response, so that both signatures
verify; an encrypted assertion is signed inside and encrypted after (SAML Core §6.2). Time and
IDs are injected, so a test that pins both and signs nothing gets byte-stable output.

Size: one builder of one message, each element written next to the spec section and the product
habits (:class:`Shape`) that decide it, so that a vendor's whole response is read in one place.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from xmlsec import constants as xc

from metadata import encryption
from metadata.saml import (
    BEARER,
    ENTITY,
    NAME_FORMATS,
    PASSWORD_PROTECTED_TRANSPORT,
    REQUESTER,
    RESPONDER,
    SAML,
    SAMLP,
    STATUS_PREFIX,
    SUCCESS,
    XS,
)
from metadata.signing import RSA_SHA256, SHA256, sign
from metadata.write import new_id, xs_datetime
from metadata.xml import MESSAGE_LIMITS, parse_untrusted

from .errors import IdPResponseError

XSI = "http://www.w3.org/2001/XMLSchema-instance"

__all__ = [
    "Claim", "IdPResponseError", "ResponseSpec", "Shape", "SigningKey", "build_response", "decrypt_assertion",
    "new_id", "serialize", "to_post_value", "valid_in_response_to",
]


# SAML Core §3.2.2.2: a top-level StatusCode is one of these four.
_TOP_STATUS = {SUCCESS, REQUESTER, RESPONDER, STATUS_PREFIX + "VersionMismatch"}

# What decrypt_assertion accepts (SECURITY.md §2), kept by the one decryptor.
KEY_TRANSPORT_ALGORITHMS = encryption.KEY_TRANSPORT_ALGORITHMS
DATA_ALGORITHMS = encryption.DATA_ALGORITHMS

SignWhat = Literal["assertion", "response", "both", "none"]

# XML 1.0 (5th ed.) NameStartChar and NameChar without ":" — the NCName of Namespaces in XML.
_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NCNAME = re.compile(f"[{_START}][{_START}\\-.0-9\u00b7\u0300-\u036f\u203f-\u2040]*")
MAX_IN_RESPONSE_TO = 256


class SigningKey(Protocol):
    """Anything holding a PEM private key and its PEM certificate (``metadata.keys.KeyPair``)."""

    @property
    def key_pem(self) -> bytes: ...

    @property
    def cert_pem(self) -> bytes: ...


@dataclass(frozen=True)
class Claim:
    """One saml:Attribute (SAML Core §2.7.3.1)."""

    name: str
    values: tuple[str, ...]
    """Each value becomes one AttributeValue; several make the claim multi-valued."""
    name_format: str | None = "unspecified"
    """``unspecified``, ``basic``, ``uri``, a NameFormat URI, or None: left out (Core §2.7.3.1: unspecified)."""
    friendly_name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.values, tuple) or not all(isinstance(v, str) for v in self.values):
            raise IdPResponseError(f"the values of claim {self.name!r} must be a tuple of strings")

    @property
    def name_format_uri(self) -> str | None:
        return None if self.name_format is None else NAME_FORMATS.get(self.name_format, self.name_format)


IdKind = Literal["response", "assertion", "session"]
_same_id: Callable[[str, IdKind], str] = lambda value, kind: value  # noqa: E731


@dataclass(frozen=True, kw_only=True)
class Shape:
    """How an IdP product writes what a :class:`ResponseSpec` says; the default is the test IdP's own."""

    saml: str | None = "saml"
    """Prefix of the assertion namespace; None: the default namespace (Entra ID, AD FS)."""
    samlp: str = "samlp"
    saml_on_response: bool = True
    """The Response declares the assertion namespace too; otherwise the Issuer and Assertion do."""
    ids: Callable[[str, IdKind], str] = _same_id
    """The product's ID form, made from an injected ID (so pinned IDs still give pinned output)."""
    not_before_skew: int = 0
    """Seconds Conditions/@NotBefore lies before the issue instant."""
    lifetime: int = 300
    """The product's default assertion lifetime in seconds (a setting may override it)."""
    confirmation_seconds: int | None = None
    """The bearer SubjectConfirmationData's lifetime when it differs from the Conditions' (AD FS)."""
    confirmation_order: tuple[str, ...] = ("InResponseTo", "NotOnOrAfter", "Recipient")
    xsi_type: str | None = None
    """``xs:string`` or ``xs:anyType`` on each AttributeValue, with xs and xsi declared there; None: none."""
    authn_context: str = PASSWORD_PROTECTED_TRANSPORT
    attributes_first: bool = False
    """AttributeStatement before AuthnStatement (.NET products, Google, Auth0)."""
    inclusive_prefixes: tuple[str, ...] = ()
    """The PrefixList of an ec:InclusiveNamespaces on the exclusive c14n transform (Okta: ``xs``)."""
    address: bool = False
    """SubjectConfirmationData/@Address, the browser's IP, first (Shibboleth); only when the spec has one."""
    session_seconds: int | None = None
    """AuthnStatement/@SessionNotOnOrAfter this long after the issue instant (PingOne, OneLogin, Keycloak)."""
    authenticating_authority: bool = False
    """The IdP's entity ID as AuthnContext/AuthenticatingAuthority (PingOne)."""
    session_index_is_assertion_id: bool = False
    """The SessionIndex is the assertion's own ID, new in every response (Entra ID, AD FS, Google,
    PingFederate); otherwise one per IdP session."""

    def __post_init__(self) -> None:
        lifetimes = (self.lifetime, self.confirmation_seconds or 1, self.session_seconds or 1)
        if min(lifetimes) <= 0 or self.not_before_skew < 0:
            raise IdPResponseError("a shape's lifetimes must be positive and its skew not negative")
        if sorted(self.confirmation_order) != ["InResponseTo", "NotOnOrAfter", "Recipient"]:
            raise IdPResponseError(f"confirmation_order must hold the three attributes: {self.confirmation_order}")


@dataclass(frozen=True, kw_only=True)
class ResponseSpec:
    """Everything a response says, decided by the caller (SP registration, persona, request)."""

    issuer: str
    """The IdP's entity ID."""
    issuer_format: str | None = ENTITY
    """The Issuer's Format; None leaves it out, as most IdP products do (Core §2.2.5: entity)."""
    destination: str
    """The ACS URL the response is posted to: Response/@Destination and the bearer Recipient."""
    audience: str
    """The SP's entity ID."""
    in_response_to: str | None
    """The AuthnRequest's ID; left out unless it is an NCName of at most 256 characters."""
    nameid: str
    nameid_format: str
    session_index: str
    assertion_id: str | None = None
    """The assertion's ID when the caller drew it (a SessionIndex that must equal it); else drawn here."""
    authn_context: str | None = None
    """The AuthnContextClassRef; None: the shape's (PasswordProtectedTransport by default)."""
    claims: tuple[Claim, ...] = ()
    lifetime_seconds: int = 300
    """How long the assertion and the bearer confirmation stay valid after `now`."""
    sign: SignWhat = "assertion"
    """What to sign. An error response has no assertion; with ``assertion`` its Response is signed."""
    signature_method: str = RSA_SHA256
    digest_method: str = SHA256
    status: tuple[str, str | None] = (SUCCESS, None)
    """Top-level StatusCode and an optional second-level one. Only Success carries an assertion."""
    status_message: str | None = None
    authn_instant: datetime | None = None
    """When the user logged in (an SSO session may be older than the response); `now` if None."""
    shape: Shape = Shape()
    """How the IdP product writes the response (prefixes, ID form, time window, order …)."""
    address: str | None = None
    """The browser's IP address, for a shape that sends it (SAML Core §2.4.1.2)."""

    def __post_init__(self) -> None:
        if self.lifetime_seconds <= 0:
            raise IdPResponseError(f"lifetime_seconds must be positive, not {self.lifetime_seconds}")
        if self.sign not in ("assertion", "response", "both", "none"):
            raise IdPResponseError(f"sign must be assertion, response, both or none, not {self.sign!r}")
        if self.status[0] not in _TOP_STATUS:
            raise IdPResponseError(f"{self.status[0]!r} is not a top-level SAML status code (SAML Core §3.2.2.2)")


def valid_in_response_to(value: str | None) -> bool:
    """True when `value` may be copied into InResponseTo: an NCName of at most 256 characters.

    SAML Core §1.3.4 types IDs as xs:ID (an NCName); SECURITY.md §5 caps the length, so a
    request cannot make the IdP echo arbitrary text into a signed response.
    """
    return value is not None and len(value) <= MAX_IN_RESPONSE_TO and _NCNAME.fullmatch(value) is not None


def build_response(
    spec: ResponseSpec,
    *,
    now: datetime,
    new_id: Callable[[], str] = new_id,
    key: SigningKey,
    encrypt_for: bytes | None = None,
    edit: Callable[[etree._Element], None] | None = None,
) -> etree._Element:
    """A samlp:Response for `spec`, signed with `key` as ``spec.sign`` says.

    `encrypt_for` is the DER certificate of the SP's encryption key: the (signed) assertion
    is then sent as a saml:EncryptedAssertion. `edit` changes the whole response before
    anything is signed, so the signatures cover the change (the faults of :mod:`idp.faults`).
    """
    shape = spec.shape
    instant = xs_datetime(now)
    in_response_to = spec.in_response_to if valid_in_response_to(spec.in_response_to) else None

    nsmap: dict[Any, str] = {shape.samlp: SAMLP}  # a None key is the default namespace
    if shape.saml_on_response and shape.saml is not None:
        nsmap[shape.saml] = SAML
    response = etree.Element(f"{{{SAMLP}}}Response", nsmap=nsmap)
    response.set("ID", shape.ids(new_id(), "response"))
    if in_response_to is not None:
        response.set("InResponseTo", in_response_to)
    response.set("Version", "2.0")
    response.set("IssueInstant", instant)
    response.set("Destination", spec.destination)
    response.append(_issuer(spec))
    response.append(_status(spec))

    success = spec.status[0] == SUCCESS
    if success:
        assertion = _assertion(spec, in_response_to, spec.assertion_id or shape.ids(new_id(), "assertion"), now)
        response.append(assertion)
    if edit is not None:
        edit(response)
    if success:
        if spec.sign in ("assertion", "both"):
            _sign(assertion, spec, key)
        if encrypt_for is not None:
            _encrypt(assertion, encrypt_for)
    if spec.sign in ("response", "both") or (spec.sign == "assertion" and not success):
        # An error response has no assertion to sign; its status is signed instead.
        _sign(response, spec, key)
    return response


def _issuer(spec: ResponseSpec, *, declare: bool = True) -> etree._Element:
    # SAML Profiles §4.1.4.2: the Issuer's Format is omitted or entity. `declare`: the Issuer
    # declares the assertion namespace itself when its parent has not (the shape decides).
    shape = spec.shape
    own = declare and (shape.saml is None or not shape.saml_on_response)
    issuer = etree.Element(f"{{{SAML}}}Issuer", nsmap=_declaring(shape) if own else None)
    if spec.issuer_format is not None:
        issuer.set("Format", spec.issuer_format)
    issuer.text = spec.issuer
    return issuer


def _status(spec: ResponseSpec) -> etree._Element:
    status = etree.Element(f"{{{SAMLP}}}Status")
    code = etree.SubElement(status, f"{{{SAMLP}}}StatusCode", Value=spec.status[0])
    if spec.status[1] is not None:
        etree.SubElement(code, f"{{{SAMLP}}}StatusCode", Value=spec.status[1])
    if spec.status_message is not None:
        etree.SubElement(status, f"{{{SAMLP}}}StatusMessage").text = spec.status_message
    return status


def _assertion(spec: ResponseSpec, in_response_to: str | None, assertion_id: str, now: datetime) -> etree._Element:
    shape = spec.shape
    assertion = etree.Element(f"{{{SAML}}}Assertion", nsmap=_declaring(shape))
    assertion.set("ID", assertion_id)
    assertion.set("Version", "2.0")
    assertion.set("IssueInstant", xs_datetime(now))
    assertion.append(_issuer(spec, declare=False))
    assertion.append(_subject(spec, in_response_to, now))

    # NotBefore is back-dated by the product's own skew allowance (none by default, so that an
    # SP's clock skew shows up in tests); SAML Core §2.5.1.2.
    expires = xs_datetime(now + timedelta(seconds=spec.lifetime_seconds))
    not_before = xs_datetime(now - timedelta(seconds=shape.not_before_skew))
    conditions = etree.SubElement(assertion, f"{{{SAML}}}Conditions", NotBefore=not_before, NotOnOrAfter=expires)
    restriction = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
    etree.SubElement(restriction, f"{{{SAML}}}Audience").text = spec.audience

    statements = [_authn_statement(spec, now)]
    if spec.claims:  # the schema wants at least one Attribute in an AttributeStatement
        statements.insert(0 if shape.attributes_first else 1, _attribute_statement(spec))
    assertion.extend(statements)
    return assertion


def _declaring(shape: Shape) -> dict[Any, str]:
    return {shape.saml: SAML}  # a None key is the default namespace


def _subject(spec: ResponseSpec, in_response_to: str | None, now: datetime) -> etree._Element:
    subject = etree.Element(f"{{{SAML}}}Subject")
    etree.SubElement(subject, f"{{{SAML}}}NameID", Format=spec.nameid_format).text = spec.nameid
    confirmation = etree.SubElement(subject, f"{{{SAML}}}SubjectConfirmation", Method=BEARER)
    # Profiles §4.1.4.2: bearer data has Recipient and NotOnOrAfter, InResponseTo when solicited,
    # and no NotBefore. Its window is the Conditions' unless the product makes it shorter.
    seconds = min(spec.lifetime_seconds, spec.shape.confirmation_seconds or spec.lifetime_seconds)
    values = {"InResponseTo": in_response_to, "NotOnOrAfter": xs_datetime(now + timedelta(seconds=seconds)),
              "Recipient": spec.destination}
    data = etree.SubElement(confirmation, f"{{{SAML}}}SubjectConfirmationData")
    if spec.shape.address and spec.address:
        data.set("Address", spec.address)
    for name in spec.shape.confirmation_order:
        if values[name] is not None:
            data.set(name, str(values[name]))
    return subject


def _authn_statement(spec: ResponseSpec, now: datetime) -> etree._Element:
    authn = etree.Element(f"{{{SAML}}}AuthnStatement")
    authn.set("AuthnInstant", xs_datetime(spec.authn_instant or now))
    if spec.shape.session_seconds is not None:  # SAML Core §2.7.2: when the SP's session must end
        authn.set("SessionNotOnOrAfter", xs_datetime(now + timedelta(seconds=spec.shape.session_seconds)))
    authn.set("SessionIndex", spec.session_index)
    context = etree.SubElement(authn, f"{{{SAML}}}AuthnContext")
    etree.SubElement(context, f"{{{SAML}}}AuthnContextClassRef").text = spec.authn_context or spec.shape.authn_context
    if spec.shape.authenticating_authority:
        etree.SubElement(context, f"{{{SAML}}}AuthenticatingAuthority").text = spec.issuer
    return authn


def _attribute_statement(spec: ResponseSpec) -> etree._Element:
    xsi_type = spec.shape.xsi_type
    statement = etree.Element(f"{{{SAML}}}AttributeStatement")
    for claim in spec.claims:
        attribute = etree.SubElement(statement, f"{{{SAML}}}Attribute", Name=claim.name)
        if claim.name_format_uri is not None:
            attribute.set("NameFormat", claim.name_format_uri)
        if claim.friendly_name is not None:
            attribute.set("FriendlyName", claim.friendly_name)
        for value in claim.values:
            # AttributeValue is xs:anyType, so plain text is schema-valid; the products that type it
            # declare xs and xsi on the value itself. Exclusive c14n then leaves the xs declaration
            # (used only inside an attribute value) out of the signed bytes, as theirs does: an SP
            # that re-parses only the signed bytes as typed XML fails on the real product too.
            typed = {"nsmap": {"xs": XS, "xsi": XSI}, "attrib": {f"{{{XSI}}}type": xsi_type}} if xsi_type else {}
            etree.SubElement(attribute, f"{{{SAML}}}AttributeValue", **typed).text = value  # type: ignore[arg-type]
    return statement


def _sign(element: etree._Element, spec: ResponseSpec, key: SigningKey) -> None:
    # SAML Core §5.4: enveloped, exclusive c14n, one Reference to the element's ID; the
    # schemas of Core §2.3.3 and §3.2.1 put ds:Signature right after saml:Issuer.
    sign(element, key.key_pem, key.cert_pem, signature_method=spec.signature_method,
         digest_method=spec.digest_method, after=f"{{{SAML}}}Issuer", inclusive_prefixes=spec.shape.inclusive_prefixes)


def _encrypt(assertion: etree._Element, certificate_der: bytes) -> etree._Element:
    """Replace `assertion` with saml:EncryptedAssertion (SAML Core §2.3.4, §6.2).

    AES-256-GCM for the data; the session key transported with RSA-OAEP to the SP's
    certificate, as an EncryptedKey inside EncryptedData/KeyInfo (the layout python3-saml,
    pysaml2 and Shibboleth read without a RetrievalMethod).
    """
    try:
        public_key = x509.load_der_x509_certificate(certificate_der).public_key()
    except ValueError as exc:
        raise IdPResponseError(f"the SP encryption certificate cannot be read: {exc}") from exc
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise IdPResponseError("the SP encryption certificate must hold an RSA key (RSA-OAEP key transport)")
    parent = assertion.getparent()
    assert parent is not None
    wrapper = etree.Element(f"{{{SAML}}}EncryptedAssertion")
    parent.replace(assertion, wrapper)
    template = xmlsec.template.encrypted_data_create(wrapper, xc.TransformAes256Gcm, type=xc.TypeEncElement, ns="xenc")
    wrapper.append(template)
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, xc.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(certificate_der, xc.KeyDataFormatCertDer, None))
    ctx = xmlsec.EncryptionContext(manager)
    ctx.key = xmlsec.Key.generate(xc.KeyDataAes, 256, xc.KeyDataTypeSession)
    # The plaintext is the assertion serialised on its own, so it declares every prefix it
    # uses: SPs that parse the decrypted bytes standalone (pysaml2) need xmlns:saml there,
    # which encrypting the node in place would leave behind on the Response.
    ctx.encrypt_binary(template, etree.tostring(assertion))
    return wrapper


def decrypt_assertion(encrypted_assertion: etree._Element, sp_key_pem: bytes) -> etree._Element:
    """The saml:Assertion inside `encrypted_assertion`, decrypted with the SP key `sp_key_pem`.

    Delegates to the one decryptor, :func:`metadata.encryption.decrypt_assertion` (RSA-OAEP
    and AES-GCM/CBC only, SECURITY.md §2), and re-parses its plaintext with the one parser; the
    assertion's signature is the caller's to verify. Raises :class:`IdPResponseError`.
    """
    try:
        plaintext = encryption.decrypt_assertion(encrypted_assertion, sp_key_pem)
    except encryption.DecryptionError as exc:
        raise IdPResponseError(exc.message) from exc
    return parse_untrusted(plaintext, MESSAGE_LIMITS).getroot()


def serialize(element: etree._Element) -> bytes:
    """UTF-8 bytes of `element`, exactly as signed, without an XML declaration.

    UTF-8 is XML's default encoding (XML 1.0 §4.3.3), so a declaration would add nothing; the
    HTTP-POST binding (SAML Bindings §3.5.4) carries the bytes base64-encoded either way.
    """
    return etree.tostring(element, encoding="UTF-8", xml_declaration=False)


def to_post_value(element: etree._Element) -> str:
    """The SAMLResponse form value for the HTTP-POST binding: base64 of :func:`serialize`."""
    return base64.b64encode(serialize(element)).decode("ascii")
