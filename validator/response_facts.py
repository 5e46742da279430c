"""What a SAML Response says, read once into a frozen model that the RSP and CLM checks judge.

The verifier hands over two elements: the ``samlp:Response`` as parsed, and the
``saml:Assertion`` re-parsed from the bytes its signature covers (SECURITY.md §2, "see what
is signed"). Everything below is read from those two trees by fixed child paths — never
``//``, which would find a second, unsigned Assertion or NameID planted elsewhere — and every
value with :func:`metadata.xml.text_of`, so a comment cannot cut a value short.

Reading never raises: an absent element is None or an empty tuple, and the checks say what
is missing. Values are kept exactly as sent (no stripping); the checks report stray spaces.
Line numbers are those of the trees handed in (for the assertion, of its re-parsed bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from metadata.saml import SAML, SAMLP
from metadata.xml import line_of, text_of

_P = f"{{{SAMLP}}}"
_A = f"{{{SAML}}}"


@dataclass(frozen=True)
class SubjectConfirmation:
    """A saml:SubjectConfirmation and the attributes of its SubjectConfirmationData."""

    method: str | None
    recipient: str | None = None
    not_before: str | None = None
    not_on_or_after: str | None = None
    in_response_to: str | None = None
    address: str | None = None
    line: int | None = None
    has_data: bool = True
    """False when the confirmation has no SubjectConfirmationData at all."""


@dataclass(frozen=True)
class AuthnStatement:
    authn_instant: str | None
    session_index: str | None = None
    session_not_on_or_after: str | None = None
    class_ref: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Attribute:
    """One saml:Attribute: its Name is what the portal matches; FriendlyName is never trusted."""

    name: str
    name_format: str | None = None
    friendly_name: str | None = None
    values: tuple[str, ...] = ()
    line: int | None = None


@dataclass(frozen=True)
class ResponseFacts:
    """Everything the checks judge. Built by :func:`read_facts`, or directly in tests."""

    response_present: bool = True
    """False when no samlp:Response was handed in (the Response-level checks then stay quiet)."""
    response_id: str | None = None
    destination: str | None = None
    in_response_to: str | None = None
    issue_instant: str | None = None
    issuer: str | None = None
    """The Response-level Issuer (optional in the Web SSO profile)."""
    status_code: str | None = None
    status_sub_code: str | None = None
    status_message: str | None = None

    assertion_present: bool = True
    assertion_id: str | None = None
    assertion_issue_instant: str | None = None
    assertion_issuer: str | None = None
    nameid: str | None = None
    nameid_format: str | None = None
    nameid_sp_name_qualifier: str | None = None
    subject_confirmations: tuple[SubjectConfirmation, ...] = ()
    conditions_present: bool = False
    conditions_not_before: str | None = None
    conditions_not_on_or_after: str | None = None
    audiences: tuple[tuple[str, ...], ...] = ()
    """One tuple of Audience values per AudienceRestriction."""
    one_time_use: bool = False
    authn_statements: tuple[AuthnStatement, ...] = ()
    attributes: tuple[Attribute, ...] = ()

    response_signed: bool = False
    assertion_signed: bool = False
    split_values: tuple[tuple[str, int | None], ...] = ()
    """Values split by a comment or processing instruction in the response *as received*
    (path, line): canonicalisation drops them, so the signed trees cannot show them."""

    response_line: int | None = None
    issuer_line: int | None = None
    status_line: int | None = None
    assertion_line: int | None = None
    assertion_issuer_line: int | None = None
    subject_line: int | None = None
    nameid_line: int | None = None
    conditions_line: int | None = None


def _text(element: etree._Element | None) -> str | None:
    return text_of(element) if element is not None else None


def _line(element: etree._Element | None) -> int | None:
    return line_of(element) if element is not None else None


def _get(element: etree._Element | None, name: str) -> str | None:
    return element.get(name) if element is not None else None


def _find(element: etree._Element | None, path: str) -> etree._Element | None:
    return element.find(path) if element is not None else None


def _findall(element: etree._Element | None, path: str) -> list[etree._Element]:
    return element.findall(path) if element is not None else []


def _confirmation(element: etree._Element) -> SubjectConfirmation:
    data = element.find(f"{_A}SubjectConfirmationData")
    return SubjectConfirmation(
        method=element.get("Method"),
        recipient=_get(data, "Recipient"),
        not_before=_get(data, "NotBefore"),
        not_on_or_after=_get(data, "NotOnOrAfter"),
        in_response_to=_get(data, "InResponseTo"),
        address=_get(data, "Address"),
        line=line_of(element),
        has_data=data is not None,
    )


def _authn(element: etree._Element) -> AuthnStatement:
    class_ref = element.find(f"{_A}AuthnContext/{_A}AuthnContextClassRef")
    return AuthnStatement(
        authn_instant=element.get("AuthnInstant"),
        session_index=element.get("SessionIndex"),
        session_not_on_or_after=element.get("SessionNotOnOrAfter"),
        class_ref=_text(class_ref),
        line=line_of(element),
    )


def _attribute(element: etree._Element) -> Attribute:
    return Attribute(
        name=element.get("Name") or "",
        name_format=element.get("NameFormat"),
        friendly_name=element.get("FriendlyName"),
        values=tuple(text_of(value) for value in element.findall(f"{_A}AttributeValue")),
        line=line_of(element),
    )


# The elements whose text is a value an SP reads (SAML Core §2.2, §2.5.1, §2.7.3.1).
_VALUES = {f"{_A}NameID": "saml:NameID", f"{_A}Issuer": "saml:Issuer", f"{_A}Audience": "saml:Audience",
           f"{_A}AttributeValue": "saml:AttributeValue"}


def split_values(received: etree._Element) -> tuple[tuple[str, int | None], ...]:
    """Every value element of `received` whose text a comment or processing instruction splits."""
    found = []
    for node in received.iter(etree.Comment, etree.ProcessingInstruction):
        parent = node.getparent()
        if parent is not None and parent.tag in _VALUES:
            found.append((_VALUES[str(parent.tag)], line_of(parent)))
    return tuple(dict.fromkeys(found))


def read_facts(
    response: etree._Element | None,
    assertion: etree._Element | None,
    *,
    response_signed: bool,
    assertion_signed: bool,
    received: Sequence[etree._Element] = (),
) -> ResponseFacts:
    """The facts of `response` (a samlp:Response) and `assertion` (the signed saml:Assertion);
    `received` is the document as it arrived (and a decrypted assertion as decrypted), searched
    only for :func:`split_values`.

    Either may be None, or an element of another type, which then counts as absent. The
    assertion is read only from `assertion`, never from inside `response`.
    """
    rsp = response if response is not None and response.tag == f"{_P}Response" else None
    asr = assertion if assertion is not None and assertion.tag == f"{_A}Assertion" else None
    issuer = _find(rsp, f"{_A}Issuer")
    status = _find(rsp, f"{_P}Status")
    code = _find(status, f"{_P}StatusCode")
    a_issuer = _find(asr, f"{_A}Issuer")
    subject = _find(asr, f"{_A}Subject")
    nameid = _find(subject, f"{_A}NameID")
    conditions = _find(asr, f"{_A}Conditions")
    return ResponseFacts(
        response_present=rsp is not None,
        response_id=_get(rsp, "ID"),
        destination=_get(rsp, "Destination"),
        in_response_to=_get(rsp, "InResponseTo"),
        issue_instant=_get(rsp, "IssueInstant"),
        issuer=_text(issuer),
        status_code=_get(code, "Value"),
        status_sub_code=_get(_find(code, f"{_P}StatusCode"), "Value"),
        status_message=_text(_find(status, f"{_P}StatusMessage")),
        assertion_present=asr is not None,
        assertion_id=_get(asr, "ID"),
        assertion_issue_instant=_get(asr, "IssueInstant"),
        assertion_issuer=_text(a_issuer),
        nameid=_text(nameid),
        nameid_format=_get(nameid, "Format"),
        nameid_sp_name_qualifier=_get(nameid, "SPNameQualifier"),
        subject_confirmations=tuple(_confirmation(c) for c in _findall(subject, f"{_A}SubjectConfirmation")),
        conditions_present=conditions is not None,
        conditions_not_before=_get(conditions, "NotBefore"),
        conditions_not_on_or_after=_get(conditions, "NotOnOrAfter"),
        audiences=tuple(
            tuple(text_of(a) for a in r.findall(f"{_A}Audience"))
            for r in _findall(conditions, f"{_A}AudienceRestriction")
        ),
        one_time_use=_find(conditions, f"{_A}OneTimeUse") is not None,
        authn_statements=tuple(_authn(s) for s in _findall(asr, f"{_A}AuthnStatement")),
        attributes=tuple(
            _attribute(a)
            for statement in _findall(asr, f"{_A}AttributeStatement")
            for a in statement.findall(f"{_A}Attribute")
        ),
        response_signed=response_signed,
        assertion_signed=assertion_signed,
        split_values=tuple(dict.fromkeys(found for tree in received for found in split_values(tree))),
        response_line=_line(rsp),
        issuer_line=_line(issuer),
        status_line=_line(status),
        assertion_line=_line(asr),
        assertion_issuer_line=_line(a_issuer),
        subject_line=_line(subject),
        nameid_line=_line(nameid),
        conditions_line=_line(conditions),
    )
