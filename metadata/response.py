"""Verifying a samlp:Response so that wrapping cannot work (SECURITY.md §2).

Three steps, in this order, each refusing rather than guessing:

1. :func:`structure_problems` — the shape every XSW variant breaks: the root is a
   samlp:Response; the document holds exactly one saml:Assertion or saml:EncryptedAssertion,
   a direct child of the Response; no ID is used twice; ds:Signature only as a direct child of
   the Response or of that Assertion, at most one per element and two in all; no ds:Object.
2. :func:`metadata.signing.verify` on the Response and on the Assertion, whichever carry a
   signature, with the trusted certificates only. An EncryptedAssertion is decrypted with the
   SP key alone and its Assertion must itself be signed, whatever the Response says.
3. "See what is signed": every verified element is re-parsed from its signed bytes with the
   one parser, and only those trees are handed back. A caller reads every claim from
   :attr:`VerifiedResponse.assertion`, and reports Response-level Destination, InResponseTo
   and Status as unsigned unless :attr:`VerifiedResponse.response_signed`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from lxml import etree

from metadata.encryption import DecryptionError, decrypt_assertion
from metadata.errors import MetadataError
from metadata.saml import DS, SAML, SAMLP, SUCCESS
from metadata.signing import SignatureError, VerifiedSignature, verify
from metadata.xml import (
    MESSAGE_LIMITS,
    copied_limits,
    in_parsing_thread,
    line_of,
    parse_untrusted,
    signed_bytes_limits,
)

MAX_SIGNATURES = 2
"""SECURITY.md §1: two signatures per message (the Response's and the Assertion's)."""

_RESPONSE = f"{{{SAMLP}}}Response"
_ASSERTION = f"{{{SAML}}}Assertion"
_ENCRYPTED_ASSERTION = f"{{{SAML}}}EncryptedAssertion"
_SIGNATURE = f"{{{DS}}}Signature"
_OBJECT = f"{{{DS}}}Object"
_XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
_ID_ATTRIBUTES = ("ID", "Id", _XML_ID)
_ID_VALUES = etree.XPath("descendant-or-self::*/@ID | descendant-or-self::*/@Id | descendant-or-self::*/@xml:id")
"""Every ID, Id and xml:id value of an element and its descendants: one walk in C."""
_PREFIXES = {SAMLP: "samlp", SAML: "saml", DS: "ds"}
_SIGNED_LIMITS = signed_bytes_limits(MESSAGE_LIMITS)
_MAX_SIGNED = _SIGNED_LIMITS.max_bytes  # what _reparse accepts

__all__ = [
    "DecryptionError", "ResponseError", "ResponseSignatureError", "SignatureError", "SignatureFacts",
    "StructureProblem", "VerifiedResponse", "structure_problems", "verify_response",
]


@dataclass(frozen=True)
class StructureProblem:
    """One way a response departs from the only shape accepted.

    `kind` is one of: ``not-a-response``, ``assertion-count``, ``assertion-placement``,
    ``duplicate-id``, ``signature-placement``, ``several-signatures``,
    ``too-many-signatures``, ``object``.
    """

    kind: str
    message: str
    line: int | None


class ResponseSignatureError(SignatureError):
    """A signature of the response refused: which one (`element`: ``Response`` or ``Assertion``)
    and why (the :class:`SignatureError` it was, by `kind` and `message`)."""

    def __init__(self, element: Literal["Response", "Assertion"], error: SignatureError) -> None:
        super().__init__(error.kind, error.message, profile=error.profile)
        self.element = element


class ResponseError(MetadataError, ValueError):
    """A response refused for its structure; `problems` lists every reason, `kind` the first."""

    def __init__(self, kind: str, message: str, problems: Sequence[StructureProblem] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.problems = list(problems)


@dataclass(frozen=True)
class SignatureFacts:
    """What verified one signature: for the report's "which element is signed, how, by whom"."""

    element: Literal["Response", "Assertion"]
    signature_method: str
    digest_method: str
    certificate: bytes
    """DER of the trusted certificate that verified it (never one from KeyInfo)."""
    uses_sha1: bool


@dataclass(frozen=True)
class VerifiedResponse:
    """A response whose signatures verified, as trees re-parsed from what was signed."""

    response: etree._Element
    """The Response re-parsed from its signed bytes when `response_signed`; otherwise the
    original, unsigned element, whose Destination, InResponseTo and Status are unsigned."""
    response_signed: bool
    assertion: etree._Element | None
    """The Assertion re-parsed from its own signed bytes when `assertion_signed`; otherwise
    the Assertion inside the re-parsed signed Response. Read every claim from here. None only
    for an error status that carries no assertion."""
    assertion_signed: bool
    encrypted: bool
    signatures: tuple[SignatureFacts, ...]
    decrypted: etree._Element | None = None
    """The decrypted Assertion as parsed, comments kept: only for looking at what canonicalisation
    drops (a comment splitting a value); never read claims from it."""


def _name(element: etree._Element) -> str:
    qname = etree.QName(element)
    if qname.namespace in _PREFIXES:
        return f"{_PREFIXES[qname.namespace]}:{qname.localname}"
    return qname.text


def _where(element: etree._Element) -> str:
    line = line_of(element)
    return f" (line {line})" if line else ""


def _root(tree: etree._ElementTree | etree._Element) -> etree._Element:
    return tree.getroot() if isinstance(tree, etree._ElementTree) else tree


def structure_problems(tree: etree._ElementTree | etree._Element) -> list[StructureProblem]:
    """Every structural reason to refuse `tree` as a samlp:Response (SECURITY.md §2); [] when none.

    Advice may legally nest assertions (SAML Core §2.6.1); SECURITY.md §2 wants exactly one
    Assertion in the whole document, so such a response is refused.
    """
    root = _root(tree)
    problems: list[StructureProblem] = []
    if root.tag != _RESPONSE:
        problems.append(StructureProblem(
            "not-a-response", f"the document is a {_name(root)}, not a samlp:Response", line_of(root)))
    assertions = [e for e in root.iter(_ASSERTION, _ENCRYPTED_ASSERTION)]
    if len(assertions) != 1 and not (not assertions and is_error_status(root)):
        found = ", ".join(f"{_name(a)}{_where(a)}" for a in assertions) or "none"
        problems.append(StructureProblem(
            "assertion-count",
            f"a response carries exactly one saml:Assertion or saml:EncryptedAssertion; this one has "
            f"{len(assertions)}: {found}",
            line_of(assertions[1]) if len(assertions) > 1 else line_of(root),
        ))
    for assertion in assertions:
        if assertion is not root and assertion.getparent() is not root:  # a bare root: not-a-response
            problems.append(StructureProblem(
                "assertion-placement",
                f"the {_name(assertion)}{_where(assertion)} is inside {_name(_parent(assertion))}; it must be a "
                "direct child of the samlp:Response",
                line_of(assertion),
            ))
    direct = [a for a in root.iterchildren(_ASSERTION)]
    problems += _common_problems(root, signature_parents=[root, *direct])
    return problems


def is_error_status(response: etree._Element) -> bool:
    """True when the Response's top-level StatusCode is present and not Success: such a response
    may carry no assertion (SAML Profiles §4.1.4.2)."""
    code = response.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    return code is not None and code.get("Value") != SUCCESS


def _parent(element: etree._Element) -> etree._Element:
    parent = element.getparent()
    assert parent is not None
    return parent


def _common_problems(root: etree._Element, *, signature_parents: list[etree._Element]) -> list[StructureProblem]:
    """IDs, signature placement and count, ds:Object: the checks shared by a Response and a
    decrypted Assertion."""
    return [*_duplicate_ids(root), *_signature_problems(root, signature_parents), *_objects(root)]


def _duplicate_ids(root: etree._Element) -> list[StructureProblem]:
    """Each ID, Id or xml:id value used more than once, with the elements that use it."""
    problems: list[StructureProblem] = []
    ids = cast("list[str]", _ID_VALUES(root))
    if len(set(ids)) != len(ids):  # only then: which elements, in document order
        seen: defaultdict[str, list[etree._Element]] = defaultdict(list)
        for element in root.iter(etree.Element):
            for attribute in _ID_ATTRIBUTES:
                value = element.get(attribute)
                if value is not None:
                    seen[value].append(element)
        for value, elements in seen.items():
            if len(elements) > 1:
                places = ", ".join(f"{_name(e)}{_where(e)}" for e in elements)
                problems.append(StructureProblem(
                    "duplicate-id", f"the ID {value!r} is used {len(elements)} times: {places}",
                    line_of(elements[1])))
    return problems


def _signature_problems(root: etree._Element, signature_parents: list[etree._Element]) -> list[StructureProblem]:
    """A ds:Signature anywhere but under one of `signature_parents`, two under one element, or
    more than MAX_SIGNATURES in all."""
    problems: list[StructureProblem] = []
    signatures = [s for s in root.iter(_SIGNATURE) if s is not root]
    # Keyed by the parent element itself: the key keeps lxml's proxy alive, so identity holds.
    by_parent: defaultdict[etree._Element, list[etree._Element]] = defaultdict(list)
    for signature in signatures:
        parent = _parent(signature)
        by_parent[parent].append(signature)
        if not any(parent is allowed for allowed in signature_parents):
            problems.append(StructureProblem(
                "signature-placement",
                f"a ds:Signature{_where(signature)} sits inside {_name(parent)}; signatures are accepted only as "
                "a direct child of the Response or of its Assertion",
                line_of(signature),
            ))
    for parent, group in by_parent.items():
        if len(group) > 1:
            problems.append(StructureProblem(
                "several-signatures",
                f"{_name(parent)}{_where(parent)} has {len(group)} ds:Signature children; one is allowed",
                line_of(group[1]),
            ))
    if len(signatures) > MAX_SIGNATURES:
        problems.append(StructureProblem(
            "too-many-signatures",
            f"the message has {len(signatures)} ds:Signature elements; at most {MAX_SIGNATURES} are accepted",
            line_of(signatures[MAX_SIGNATURES]),
        ))
    return problems


def _objects(root: etree._Element) -> list[StructureProblem]:
    """Every ds:Object: XSW hides assertions there."""
    return [StructureProblem(
        "object", f"a ds:Object{_where(obj)} is present; SAML signatures never need one (XSW hides "
        "assertions there)", line_of(obj)) for obj in root.iter(_OBJECT)]


def _decrypted_problems(root: etree._Element, outer: etree._Element) -> list[StructureProblem]:
    """The structure rules applied to a decrypted Assertion, which is its own document."""
    problems: list[StructureProblem] = []
    nested = [e for e in root.iter(_ASSERTION, _ENCRYPTED_ASSERTION) if e is not root]
    if nested:
        problems.append(StructureProblem(
            "assertion-count",
            f"the decrypted assertion contains {len(nested)} further assertion(s): "
            + ", ".join(f"{_name(e)}{_where(e)}" for e in nested),
            line_of(nested[0]),
        ))
    problems += _common_problems(root, signature_parents=[root])
    outer_ids = {e.get(a) for e in outer.iter(etree.Element) for a in _ID_ATTRIBUTES} - {None}
    clash = root.get("ID")
    if clash in outer_ids:
        problems.append(StructureProblem(
            "duplicate-id", f"the decrypted assertion's ID {clash!r} is also used in the response", line_of(root)))
    return problems


def _refuse(problems: list[StructureProblem]) -> ResponseError:
    return ResponseError(problems[0].kind, "; ".join(p.message for p in problems), problems)


def _facts(element: Literal["Response", "Assertion"], verified: VerifiedSignature) -> SignatureFacts:
    return SignatureFacts(
        element=element,
        signature_method=verified.profile.signature_method,
        digest_method=verified.profile.digest_method,
        certificate=verified.certificate,
        uses_sha1=verified.profile.uses_sha1,
    )


def _reparse(verified: VerifiedSignature) -> etree._Element:
    # Canonical bytes may be a few times longer than what was received (">" becomes "&gt;").
    return parse_untrusted(verified.signed_bytes, _SIGNED_LIMITS).getroot()


def _only_child(parent: etree._Element, *tags: str) -> etree._Element:
    children = [c for c in parent.iterchildren(*tags)]
    if len(children) != 1:  # cannot happen after structure_problems; refuse rather than guess
        raise ResponseError("assertion-count", f"expected one assertion in the signed response, found {len(children)}")
    return children[0]


def _verify_signed(element: Literal["Response", "Assertion"], target: etree._Element, trusted: tuple[bytes, ...],
                   *, allow_sha1: bool, ids_unique: bool) -> VerifiedSignature:
    """`target`'s signature verified; a refusal says which element's signature it was."""
    try:
        return verify(target, trusted, id_attribute="ID", allow_sha1=allow_sha1, max_signed_bytes=_MAX_SIGNED,
                      ids_unique=ids_unique)
    except SignatureError as exc:
        raise ResponseSignatureError(element, exc) from exc


def verify_response(
    tree: etree._ElementTree | etree._Element,
    trusted: Sequence[bytes],
    *,
    sp_key_pem: bytes | None = None,
    allow_sha1: bool = False,
) -> VerifiedResponse:
    """Verify a samlp:Response with the `trusted` DER certificates; return what was signed.

    Raises :class:`ResponseError` for a bad structure, :class:`SignatureError` when a present
    signature does not verify or nothing is signed (``missing``), :class:`DecryptionError`
    when an EncryptedAssertion cannot be decrypted with `sp_key_pem`.
    """
    # On the parsing thread as one piece of work: the signed bytes are re-parsed there, twice,
    # with one hand-off in all (metadata.xml.in_parsing_thread).
    return in_parsing_thread(_verify_response, _root(tree), tuple(trusted), sp_key_pem, allow_sha1)


def _verify_response(
    root: etree._Element, trusted: tuple[bytes, ...], sp_key_pem: bytes | None, allow_sha1: bool
) -> VerifiedResponse:
    problems = structure_problems(root)
    if problems:
        raise _refuse(problems)
    # structure_problems refused every ID used twice in the whole document when `root` is its root
    # (and _decrypted_problems did so in a decrypted assertion, a document of its own).
    whole = root.getparent() is None

    facts: list[SignatureFacts] = []
    response = root
    response_signed = root.find(_SIGNATURE) is not None
    if response_signed:
        verified = _verify_signed("Response", root, trusted, allow_sha1=allow_sha1, ids_unique=whole)
        facts.append(_facts("Response", verified))
        response = _reparse(verified)

    if root.find(_ASSERTION) is None and root.find(_ENCRYPTED_ASSERTION) is None:
        # An error status without an assertion (structure_problems allows only that): nobody is
        # signed in, so an unsigned one is accepted and its status reported.
        return VerifiedResponse(response=response, response_signed=response_signed, assertion=None,
                                assertion_signed=False, encrypted=False, signatures=tuple(facts))
    decrypted = None
    # Taken from the signed Response when there is one, so nothing unsigned is ever read.
    carried = _only_child(response, _ASSERTION, _ENCRYPTED_ASSERTION)
    encrypted = carried.tag == _ENCRYPTED_ASSERTION
    if encrypted:
        if sp_key_pem is None:
            raise DecryptionError("no-key", "the assertion is encrypted and no SP private key was given to decrypt it")
        plaintext = decrypt_assertion(carried, sp_key_pem)
        carried = decrypted = parse_untrusted(plaintext, copied_limits(MESSAGE_LIMITS)).getroot()
        problems = _decrypted_problems(carried, root)
        if problems:
            raise _refuse(problems)
        if carried.find(_SIGNATURE) is None:
            # SECURITY.md §2: the decrypted Assertion must be signed, even inside a signed Response.
            raise SignatureError("missing", "the decrypted assertion is not signed; an encrypted assertion must be "
                                 "signed inside the encryption")

    assertion_signed = carried.find(_SIGNATURE) is not None
    if assertion_signed:
        # The Assertion as it sits in the original document (or the decrypted one), so that
        # verify's ID count sees every element an attacker may have added.
        target = carried if encrypted or not response_signed else _only_child(root, _ASSERTION)
        verified = _verify_signed("Assertion", target, trusted, allow_sha1=allow_sha1,
                                  ids_unique=encrypted or whole)
        facts.append(_facts("Assertion", verified))
        assertion = _reparse(verified)
    elif response_signed:
        assertion = carried
    else:
        raise SignatureError("missing", "neither the Response nor its Assertion is signed")

    return VerifiedResponse(
        response=response,
        response_signed=response_signed,
        assertion=assertion,
        assertion_signed=assertion_signed,
        encrypted=encrypted,
        signatures=tuple(facts),
        decrypted=decrypted,
    )
