"""RSP rules: a partner's SAML Response against the Web Browser SSO profile and the CRM record.

The checks are pure functions of a :class:`ResponseContext`: the facts read from the verified
response (:mod:`validator.response_facts`), the CRM record, the expected IdP entity ID, the
clock and the replay cache. Signatures are judged elsewhere (SIG rules); here every value is
taken as the verifier handed it over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from metadata.crm import CRMRecord
from metadata.saml import BEARER, STATUS_PREFIX, SUCCESS, UNSPECIFIED
from metadata.xml import visible
from validator.checks.request import parse_instant
from validator.checks.wording import actual as _actual
from validator.checks.wording import at as _where
from validator.checks.wording import duration as _duration
from validator.checks.wording import rules_for
from validator.checks.wording import shown as _shown
from validator.findings import Finding, Severity
from validator.nearmiss import uri_difference
from validator.response_facts import ResponseFacts, SubjectConfirmation
from validator.vendor import setting

MAX_SKEW_SECONDS = 300


_rule = rules_for("response")


STATUS = _rule(
    "RSP001", "The IdP answered with an error status",
    "The top-level StatusCode must be urn:oasis:names:tc:SAML:2.0:status:Success; otherwise the second-level "
    "code and the StatusMessage are shown.",
    "An error status means the IdP did not sign the user in; the portal shows an error page.",
    "Read the second-level code and the message: they usually name the cause (user not assigned to the app, "
    "NameID format not available, the portal's request refused). Correct it at the IdP and sign in again.",
)
NO_ASSERTION = _rule(
    "RSP002", "A successful response carries no assertion",
    "A response with status Success must contain an assertion (SAML Profiles §4.1.4.2).",
    "Without an assertion there is no user to sign in.",
    "Configure the portal's application at the IdP to issue a SAML 2.0 assertion.",
)
ISSUER = _rule(
    "RSP003", "The Issuer is not the IdP's entity ID",
    "The assertion's Issuer (required) and the Response's Issuer (when present) must equal the IdP entity ID "
    "from --metadata or the CRM record's idp.entity_id, character for character.",
    "The portal trusts a response only from the issuer configured for the biller; a trailing slash or http "
    "for https is enough to reject every login.",
    "Make the IdP's issuer (entity ID) and the CRM record's idp.entity_id identical.",
)
ISSUERS_DIFFER = _rule(
    "RSP004", "The assertion's Issuer differs from the Response's",
    "When the Response names an Issuer, it must be the assertion's Issuer too.",
    "Two issuers in one response mean the assertion was made by another IdP than the one answering: a proxy "
    "misconfiguration, or an assertion copied into someone else's response.",
    "Configure the IdP to use one entity ID for the response and the assertion.",
)
NO_ENTITY_ID = _rule(
    "RSP005", "The Issuer was not compared: no IdP entity ID is known",
    "Neither --metadata nor the CRM record's idp.entity_id gives the entity ID the Issuer must equal.",
    "Unchecked, a response from any IdP would pass this check.",
    "Run with --metadata, or set idp.entity_id in the CRM record.",
    Severity.INFO,
)
UNSIGNED_FIELDS = _rule(
    "RSP006", "Only the assertion is signed: Response-level fields are unsigned",
    "When the assertion is signed and the Response is not, the Response's Destination, InResponseTo and "
    "Status are covered by no signature.",
    "Those values could be changed in transit without breaking a signature; the portal relies on the signed "
    "copies inside the assertion (Recipient, InResponseTo of the bearer confirmation).",
    "Nothing is required. To have every field signed, sign the response too (Okta: 'Response' signature; "
    "Entra ID: Signing option 'Sign SAML response and assertion'; AD FS: Set-AdfsRelyingPartyTrust "
    "-SamlResponseSignature MessageAndAssertion).",
    Severity.INFO,
)
BAD_TIME = _rule(
    "RSP007", "A time is missing or not a valid xs:dateTime",
    "IssueInstant, NotBefore, NotOnOrAfter, AuthnInstant and SessionNotOnOrAfter must be xs:dateTime values "
    "in UTC, e.g. 2026-06-01T12:00:00Z (SAML Core §1.3.3); IssueInstant and AuthnInstant are required.",
    "A time the portal cannot read makes the assertion's validity unknown, and it is rejected.",
    "Correct the IdP's clock and time format; times must end with Z (or an offset).",
)
NOT_YET_VALID = _rule(
    "RSP008", "The assertion is not yet valid",
    "Conditions/@NotBefore must not be later than now plus the allowed clock skew.",
    "The portal rejects an assertion before its validity starts; this usually means the IdP's clock runs "
    "ahead.",
    "Synchronise the IdP server's clock with NTP.",
)
EXPIRED = _rule(
    "RSP009", "The assertion has expired",
    "Conditions/@NotOnOrAfter must be later than now minus the allowed clock skew.",
    "An expired assertion is refused; a response replayed later, or a clock running behind, ends up here.",
    "Synchronise the IdP server's clock with NTP, and sign in again rather than re-posting an old response.",
)
CONFIRMATION_EXPIRY = _rule(
    "RSP010", "The bearer confirmation has no NotOnOrAfter, or it has passed",
    "The bearer SubjectConfirmationData must have a NotOnOrAfter that is later than now minus the allowed "
    "clock skew (SAML Profiles §4.1.4.2).",
    "It limits how long the response may be delivered; without it a stolen response stays usable.",
    "Have the IdP set NotOnOrAfter on the bearer SubjectConfirmationData (all mainstream IdPs do by default), "
    "and synchronise its clock.",
)
ISSUE_INSTANT = _rule(
    "RSP011", "IssueInstant is implausible",
    "The IssueInstant of the Response and of the assertion must not lie in the future beyond the clock skew, "
    "nor be older than the longest assertion lifetime allowed (24 hours by default).",
    "A future instant means a wrong clock; a very old one means the response was stored and replayed.",
    "Synchronise the IdP server's clock with NTP, and test with a fresh login.",
)
NO_AUDIENCE = _rule(
    "RSP012", "The assertion has no AudienceRestriction",
    "The assertion's Conditions must contain an AudienceRestriction naming the portal (SAML Profiles "
    "§4.1.4.2).",
    "Without an audience, the assertion could be sent to any other service provider that trusts the same IdP.",
    "Set the audience (the portal's entity ID) in the IdP's application settings.",
)
AUDIENCE = _rule(
    "RSP013", "The audience is not the portal's entity ID",
    "Every AudienceRestriction must contain an Audience equal to the CRM record's sp.entity_id.",
    "An assertion for another audience was made for another application; the portal refuses it.",
    "Set the audience of the portal's application at the IdP to exactly the portal's entity ID.",
)
NO_BEARER = _rule(
    "RSP014", "No bearer SubjectConfirmation",
    "The Subject must have a SubjectConfirmation with Method urn:oasis:names:tc:SAML:2.0:cm:bearer (SAML "
    "Profiles §4.1.4.2).",
    "Browser SSO works only with bearer confirmation; other methods (holder-of-key, sender-vouches) need "
    "proof the browser cannot give.",
    "Configure the application at the IdP for SAML 2.0 Web Browser SSO (the default bearer confirmation).",
)
RECIPIENT = _rule(
    "RSP015", "The Recipient is not the portal's ACS URL",
    "The bearer SubjectConfirmationData must have a Recipient equal to the CRM record's sp.acs_url.",
    "The signed Recipient binds the assertion to the portal's endpoint; a response addressed elsewhere is "
    "refused.",
    "Set the ACS (reply) URL of the portal's application at the IdP to exactly the portal's ACS URL.",
)
DESTINATION = _rule(
    "RSP016", "The Destination is missing or not the portal's ACS URL",
    "The Response's Destination must equal the CRM record's sp.acs_url when present, and is required on a "
    "signed Response (SAML Bindings §3.5.5.2).",
    "The portal refuses a response addressed to another endpoint; it may have been meant for another "
    "application.",
    "Set the ACS (reply) URL of the portal's application at the IdP to exactly the portal's ACS URL.",
)
IN_RESPONSE_TO = _rule(
    "RSP017", "InResponseTo does not match the portal's request",
    "InResponseTo on the Response and on the bearer SubjectConfirmationData must both equal the ID of the "
    "portal's AuthnRequest (--request-id).",
    "The portal accepts a response only for a request it sent in the same browser session, once; this stops "
    "a response from being injected into another user's login.",
    "Start the login from the portal (not from the IdP's dashboard) and post the response it produces; an "
    "IdP must copy the request's ID unchanged.",
)
UNSOLICITED = _rule(
    "RSP018", "Unsolicited response (IdP-initiated)",
    "The Response and its bearer confirmation carry no InResponseTo: the login was started at the IdP.",
    "The portal accepts SP-initiated logins only: it must know the account before the user signs in.",
    "Start the login from the portal's sign-in link, and hide the portal's tile in the IdP's app dashboard "
    "(or point it to the portal's sign-in URL).",
)
NO_AUTHN_STATEMENT = _rule(
    "RSP019", "The assertion has no AuthnStatement",
    "The assertion must contain an AuthnStatement saying how and when the user signed in (SAML Profiles "
    "§4.1.4.2).",
    "Without it the assertion does not log anyone in.",
    "Configure the application at the IdP for SAML 2.0 Web Browser SSO.",
)
NO_NAMEID = _rule(
    "RSP020", "The NameID is missing or empty",
    "The assertion's Subject must carry a NameID with a value.",
    "The portal identifies the user by the NameID.",
    "Set the NameID (Okta: 'Application username'; Entra ID: 'Unique User Identifier'; AD FS: a rule issuing "
    "Name ID) to an attribute every user has.",
)
NAMEID_SPACES = _rule(
    "RSP021", "The NameID has surrounding whitespace",
    "The NameID value starts or ends with spaces, tabs or line breaks.",
    "The portal compares the NameID exactly: ' jo@example.com' is another user than 'jo@example.com'.",
    "Remove the whitespace from the source attribute at the IdP, or apply a Trim transformation.",
    Severity.WARNING,
)
NAMEID_FORMAT = _rule(
    "RSP022", "The NameID format differs from the CRM record's",
    "The NameID's Format (unspecified when absent) must equal the CRM record's idp.nameid_format.",
    "The portal reads the NameID as that format; an opaque persistent ID where an email address is "
    "expected matches no user.",
    "Set the NameID format at the IdP (Okta: 'Name ID format'; Entra ID: 'Unique User Identifier' claim's "
    "name identifier format; AD FS: the Name ID rule's format), or correct the CRM record.",
)
REPLAY = _rule(
    "RSP023", "The assertion was seen before (replay)",
    "The assertion's ID is already in the replay cache.",
    "An assertion must be used once; a second use is a replayed (possibly stolen) response.",
    "Sign in again to get a fresh response; never re-post a saved one.",
)
LIFETIME = _rule(
    "RSP024", "The assertion is valid for far too long",
    "The validity window of the Conditions and of the bearer confirmation (NotOnOrAfter minus NotBefore, or "
    "minus the IssueInstant) must not exceed the longest assertion lifetime allowed (24 hours by default).",
    "An assertion is a bearer token: whoever holds it signs in until it expires. IdPs issue assertions valid "
    "for minutes (Okta 5, Entra ID 70, AD FS 60); one valid for days keeps a stolen response usable for days.",
    "Set the IdP's assertion lifetime to minutes (AD FS: the relying party's NotBeforeSkew and token lifetime; "
    "Shibboleth: assertionLifetime), and keep long sessions in the portal, not in the assertion.",
)
SPLIT_VALUE = _rule(
    "RSP025", "A comment or processing instruction splits a value",
    "NameID, Issuer, Audience and AttributeValue text must not contain an XML comment or processing "
    "instruction in the response as received.",
    "Canonicalisation drops comments, so the signature still verifies; an SP that reads only the first text "
    "node sees 'admin@example.com' in 'admin@example.com<!---->.evil.test' (the 2018 comment-injection "
    "attacks on OneLogin, Duo and Shibboleth). No IdP product writes comments into values.",
    "Treat the response as an attack or a broken proxy in front of the IdP. The validator reads the whole "
    "value, as the SP must.",
)

_STATUS_HINTS = {
    "Requester": "The IdP refused the portal's request: check that the portal's entity ID and ACS URL are "
                 "registered at the IdP exactly as in the CRM record.",
    "Responder": "The IdP failed while answering; its sign-in logs say why.",
    "AuthnFailed": "The user could not be authenticated: check the credentials, and that the user is assigned "
                   "to the portal's application.",
    "RequestDenied": "The IdP denied the sign-in: usually the user is not assigned to the portal's application, "
                     "or an access policy blocked it.",
    "InvalidNameIDPolicy": "The IdP cannot send the NameID format the portal asks for: configure it (the CRM "
                           "record's idp.nameid_format) or correct the record.",
    "NoPassive": "The portal asked for a passive sign-in and the user has no session at the IdP.",
    "NoAuthnContext": "The IdP cannot satisfy the authentication context the portal asked for.",
}


@dataclass(frozen=True, kw_only=True)
class ResponseContext:
    facts: ResponseFacts
    now: datetime
    crm: CRMRecord | None = None
    idp_entity_id: str | None = None
    """From --metadata, else the CRM record's idp.entity_id."""
    skew_seconds: int = 120
    request_id: str | None = None
    """The ID of the AuthnRequest this response must answer (--request-id, or the test SP's session)."""
    seen_assertion_ids: frozenset[str] = frozenset()
    max_lifetime_seconds: int = 24 * 3600
    """The oldest IssueInstant accepted, before the skew is added."""
    vendor_key: str | None = None
    """The IdP product (okta, entra, …) whose words the fixes use."""

    def __post_init__(self) -> None:
        if not 0 <= self.skew_seconds <= MAX_SKEW_SECONDS:
            raise ValueError(f"skew_seconds must be between 0 and {MAX_SKEW_SECONDS}")
        if self.max_lifetime_seconds <= 0:
            raise ValueError("max_lifetime_seconds must be positive")
        if self.now.tzinfo is None:
            raise ValueError("now must carry a time zone")

    @property
    def skew(self) -> timedelta:
        return timedelta(seconds=self.skew_seconds)








def _iso(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"




def _differs(label: str, expected: str, actual: str) -> str:
    difference = uri_difference(expected, actual)
    return f"{label} {_shown(actual)} differs from the expected value by {difference}" if difference else (
        f"{label} is {_shown(actual)}")


def _bearer(ctx: ResponseContext) -> SubjectConfirmation | None:
    """The bearer confirmation to judge: the first addressed to the portal, else the first."""
    bearers = [c for c in ctx.facts.subject_confirmations if c.method == BEARER]
    acs = ctx.crm.sp.acs_url if ctx.crm is not None else None
    return next((c for c in bearers if c.recipient == acs), bearers[0] if bearers else None)


def _short_status(code: str) -> str:
    return code[len(STATUS_PREFIX):] if code.startswith(STATUS_PREFIX) else visible(code, one_line=True)


def check_status(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if not f.response_present or f.status_code == SUCCESS:
        return
    if f.status_code is None:
        message, actual = "the response has no samlp:Status/samlp:StatusCode", "(absent)"
    else:
        actual = _short_status(f.status_code) + (f" / {_short_status(f.status_sub_code)}" if f.status_sub_code else "")
        message = f"the IdP answered {actual}"
        if f.status_message:
            message += f": {_shown(f.status_message)}"
    hint = _STATUS_HINTS.get(_short_status(f.status_sub_code or "")) or _STATUS_HINTS.get(
        _short_status(f.status_code or ""))
    yield STATUS.finding(message, expected="Success", actual=actual,
                         where=_where("samlp:Response/samlp:Status", f.status_line or f.response_line), fix=hint)


def check_assertion_present(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if f.assertion_present or (f.response_present and f.status_code not in (SUCCESS, None)):
        return
    yield NO_ASSERTION.finding("the response carries no assertion to judge", expected="one saml:Assertion",
                               actual="none", where=_where("samlp:Response", f.response_line))


def check_issuer(ctx: ResponseContext) -> Iterator[Finding]:
    f, expected = ctx.facts, ctx.idp_entity_id
    levels: list[tuple[str, str | None, str, int | None]] = []
    if f.response_present and f.issuer is not None:
        levels.append(("the Response's Issuer", f.issuer, "samlp:Response/saml:Issuer", f.issuer_line))
    if f.assertion_present:
        levels.append(("the assertion's Issuer", f.assertion_issuer, "saml:Assertion/saml:Issuer",
                       f.assertion_issuer_line or f.assertion_line))
    place = setting(ctx.vendor_key, "issuer")
    for label, value, path, line in levels:
        if value is None:
            yield ISSUER.finding("the assertion has no Issuer", expected=expected or "the IdP's entity ID",
                                 actual="(absent)", where=_where(path, line))
        elif expected is not None and value != expected:
            yield ISSUER.finding(
                _differs(label, expected, value), expected=expected, actual=_actual(value), where=_where(path, line),
                fix=(f"Make both identical: change {place} to {expected!r}, or correct idp.entity_id in the CRM "
                     f"record (or --metadata) if the partner's IdP really is {value!r}."))
    if expected is None and any(value is not None for _, value, _, _ in levels):
        yield NO_ENTITY_ID.finding("no IdP entity ID was given, so the Issuer was not compared",
                                   actual=_actual(f.assertion_issuer or f.issuer))


def check_issuers_agree(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if f.issuer is None or f.assertion_issuer is None or f.issuer == f.assertion_issuer:
        return
    yield ISSUERS_DIFFER.finding(
        f"the Response is issued by {_shown(f.issuer)}, the assertion by {_shown(f.assertion_issuer)}",
        expected=_actual(f.issuer), actual=_actual(f.assertion_issuer),
        where=_where("saml:Assertion/saml:Issuer", f.assertion_issuer_line))


def check_unsigned_fields(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if not (f.response_present and f.assertion_signed and not f.response_signed):
        return
    fields = [name for name, value in (("Destination", f.destination), ("InResponseTo", f.in_response_to),
                                       ("Status", f.status_code)) if value is not None]
    if fields:
        yield UNSIGNED_FIELDS.finding(
            f"only the assertion is signed: the Response's {', '.join(fields)} could be changed in transit "
            "without breaking a signature", expected="a signed Response, or reliance on the assertion only",
            actual="assertion signed, Response unsigned", where=_where("samlp:Response", f.response_line))


def _time_values(f: ResponseFacts) -> Iterator[tuple[str, str | None, int | None, bool]]:
    """(path, raw value, line, required) for every time the response states."""
    if f.response_present:
        yield "samlp:Response/@IssueInstant", f.issue_instant, f.response_line, True
    if not f.assertion_present:
        return
    yield "saml:Assertion/@IssueInstant", f.assertion_issue_instant, f.assertion_line, True
    yield "saml:Conditions/@NotBefore", f.conditions_not_before, f.conditions_line, False
    yield "saml:Conditions/@NotOnOrAfter", f.conditions_not_on_or_after, f.conditions_line, False
    for c in f.subject_confirmations:
        yield "saml:SubjectConfirmationData/@NotBefore", c.not_before, c.line, False
        yield "saml:SubjectConfirmationData/@NotOnOrAfter", c.not_on_or_after, c.line, False
    for s in f.authn_statements:
        yield "saml:AuthnStatement/@AuthnInstant", s.authn_instant, s.line, True
        yield "saml:AuthnStatement/@SessionNotOnOrAfter", s.session_not_on_or_after, s.line, False


def check_time_values(ctx: ResponseContext) -> Iterator[Finding]:
    for path, raw, line, required in _time_values(ctx.facts):
        if raw is None and required:
            yield BAD_TIME.finding(f"{path.rsplit('/@', 1)[1]} is missing", expected="YYYY-MM-DDThh:mm:ssZ",
                                   actual="(absent)", where=_where(path, line))
        elif raw is not None and parse_instant(raw) is None:
            yield BAD_TIME.finding(f"{_shown(raw)} is not an xs:dateTime with a time zone",
                                   expected="YYYY-MM-DDThh:mm:ssZ", actual=_actual(raw), where=_where(path, line))


def _when(raw: str | None) -> datetime | None:
    return parse_instant(raw) if raw is not None else None


def check_conditions_window(ctx: ResponseContext) -> Iterator[Finding]:
    f, now = ctx.facts, ctx.now
    if not f.assertion_present:
        return
    where = _where("saml:Conditions", f.conditions_line)
    not_before, not_after = _when(f.conditions_not_before), _when(f.conditions_not_on_or_after)
    if not_before is not None and not_before > now + ctx.skew:
        yield NOT_YET_VALID.finding(
            f"the assertion becomes valid in {_duration((not_before - now).total_seconds())}; the allowed skew is "
            f"{ctx.skew_seconds} s", expected=f"NotBefore ≤ {_iso(now + ctx.skew)}",
            actual=_actual(f.conditions_not_before), where=where)
    if not_after is not None and now - ctx.skew >= not_after:
        yield EXPIRED.finding(
            f"the assertion expired {_duration((now - not_after).total_seconds())} ago; the allowed skew is "
            f"{ctx.skew_seconds} s", expected=f"NotOnOrAfter > {_iso(now - ctx.skew)}",
            actual=_actual(f.conditions_not_on_or_after), where=where)


def check_confirmation_expiry(ctx: ResponseContext) -> Iterator[Finding]:
    bearer = _bearer(ctx)
    if bearer is None:
        return
    where = _where("saml:SubjectConfirmation/saml:SubjectConfirmationData/@NotOnOrAfter", bearer.line)
    expiry = _when(bearer.not_on_or_after)
    if bearer.not_on_or_after is None:
        yield CONFIRMATION_EXPIRY.finding("the bearer SubjectConfirmationData has no NotOnOrAfter",
                                          expected="a NotOnOrAfter a few minutes ahead", actual="(absent)",
                                          where=where)
    elif expiry is not None and ctx.now - ctx.skew >= expiry:
        yield CONFIRMATION_EXPIRY.finding(
            f"the bearer confirmation expired {_duration((ctx.now - expiry).total_seconds())} ago",
            expected=f"NotOnOrAfter > {_iso(ctx.now - ctx.skew)}",
            actual=_actual(bearer.not_on_or_after), where=where)


def check_issue_instants(ctx: ResponseContext) -> Iterator[Finding]:
    f, now = ctx.facts, ctx.now
    oldest = timedelta(seconds=ctx.max_lifetime_seconds) + ctx.skew
    for present, raw, path, line in (
        (f.response_present, f.issue_instant, "samlp:Response/@IssueInstant", f.response_line),
        (f.assertion_present, f.assertion_issue_instant, "saml:Assertion/@IssueInstant", f.assertion_line),
    ):
        instant = _when(raw) if present else None
        if instant is None:
            continue
        if instant > now + ctx.skew:
            problem = (f"issued {_duration((instant - now).total_seconds())} in the future; the allowed skew is "
                       f"{ctx.skew_seconds} s")
        elif now - instant > oldest:
            problem = (f"issued {_duration((now - instant).total_seconds())} ago; no response older than "
                       f"{_duration(ctx.max_lifetime_seconds)} is accepted")
        else:
            continue
        yield ISSUE_INSTANT.finding(f"{path.split('/')[0]} was {problem}",
                                    expected=f"close to now ({_iso(now)})", actual=_actual(raw),
                                    where=_where(path, line))


def check_lifetime(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if not f.assertion_present:
        return
    issued = _when(f.assertion_issue_instant)
    bearer = _bearer(ctx)
    longest = timedelta(seconds=ctx.max_lifetime_seconds) + ctx.skew
    for label, start_raw, end_raw, line in (
        ("the Conditions", f.conditions_not_before, f.conditions_not_on_or_after, f.conditions_line),
        ("the bearer confirmation", None, bearer.not_on_or_after if bearer else None, bearer.line if bearer else None),
    ):
        start, end = _when(start_raw) or issued, _when(end_raw)
        if start is None or end is None or end - start <= longest:
            continue
        yield LIFETIME.finding(
            f"{label} stay valid for {_duration((end - start).total_seconds())}",
            expected=f"at most {_duration(ctx.max_lifetime_seconds)}", actual=_actual(end_raw),
            where=_where("saml:Conditions" if label == "the Conditions" else
                         "saml:SubjectConfirmationData/@NotOnOrAfter", line))


def check_split_values(ctx: ResponseContext) -> Iterator[Finding]:
    for path, line in ctx.facts.split_values:
        yield SPLIT_VALUE.finding(f"the text of {path} is split by a comment or processing instruction",
                                  expected="one text value", actual="text interrupted by <!--…--> or <?…?>",
                                  where=_where(path, line))


def check_audience(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if not f.assertion_present:
        return
    where = _where("saml:Conditions/saml:AudienceRestriction", f.conditions_line or f.assertion_line)
    if not f.audiences:
        yield NO_AUDIENCE.finding("the assertion's Conditions name no audience",
                                  expected=ctx.crm.sp.entity_id if ctx.crm else "the portal's entity ID",
                                  actual="no AudienceRestriction", where=where)
        return
    if ctx.crm is None:
        return
    expected = ctx.crm.sp.entity_id
    place = setting(ctx.vendor_key, "audience")
    for audiences in f.audiences:  # Core §2.5.1.4: every restriction must be met
        if expected in audiences:
            continue
        listed = ", ".join(_shown(a) for a in audiences) or "no Audience at all"
        near = next((d for d in (uri_difference(expected, a) for a in audiences) if d), None)
        message = f"the AudienceRestriction names {listed}"
        if near:
            message += f", which differs from the portal's entity ID by {near}"
        yield AUDIENCE.finding(message, expected=expected, actual=", ".join(_actual(a) for a in audiences) or "none",
                               where=where, fix=f"Set {place} to exactly {expected!r}.")


def check_bearer(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if not f.assertion_present or _bearer(ctx) is not None:
        return
    methods = ", ".join(_actual(c.method) for c in f.subject_confirmations) or "no SubjectConfirmation"
    yield NO_BEARER.finding(f"the Subject has {methods}", expected=BEARER, actual=methods,
                            where=_where("saml:Subject/saml:SubjectConfirmation", f.subject_line or f.assertion_line))


def _acs_fix(ctx: ResponseContext, expected: str) -> str:
    place = setting(ctx.vendor_key, "acs")
    return f"Set {place} to exactly {expected!r}."


def check_recipient(ctx: ResponseContext) -> Iterator[Finding]:
    bearer = _bearer(ctx)
    if bearer is None:
        return
    expected = ctx.crm.sp.acs_url if ctx.crm is not None else None
    where = _where("saml:SubjectConfirmationData/@Recipient", bearer.line)
    if bearer.recipient is None:
        what = "SubjectConfirmationData" if not bearer.has_data else "Recipient"
        yield RECIPIENT.finding(f"the bearer confirmation has no {what}", expected=expected or "the portal's ACS URL",
                                actual="(absent)", where=where)
    elif expected is not None and bearer.recipient != expected:
        yield RECIPIENT.finding(_differs("the Recipient", expected, bearer.recipient), expected=expected,
                                actual=_actual(bearer.recipient), where=where, fix=_acs_fix(ctx, expected))


def check_destination(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if not f.response_present:
        return
    expected = ctx.crm.sp.acs_url if ctx.crm is not None else None
    where = _where("samlp:Response/@Destination", f.response_line)
    if f.destination is None:
        if f.response_signed:  # Bindings §3.5.5.2: a signed message posted must name its Destination
            yield DESTINATION.finding("the Response is signed but has no Destination",
                                      expected=expected or "the portal's ACS URL", actual="(absent)", where=where)
    elif expected is not None and f.destination != expected:
        yield DESTINATION.finding(_differs("the Destination", expected, f.destination), expected=expected,
                                  actual=_actual(f.destination), where=where, fix=_acs_fix(ctx, expected))


def _in_response_to(ctx: ResponseContext) -> list[tuple[str, str | None, str]]:
    """(where, value) of InResponseTo on the Response and on the bearer confirmation judged."""
    f, values = ctx.facts, []
    if f.response_present:
        values.append(("the Response", f.in_response_to, _where("samlp:Response/@InResponseTo", f.response_line)))
    bearer = _bearer(ctx)
    if bearer is not None:
        values.append(("the bearer SubjectConfirmationData", bearer.in_response_to,
                       _where("saml:SubjectConfirmationData/@InResponseTo", bearer.line)))
    return values


def check_unsolicited(ctx: ResponseContext) -> Iterator[Finding]:
    values = _in_response_to(ctx)
    if values and all(value is None for _, value, _ in values):
        yield UNSOLICITED.finding(
            "no InResponseTo: the login was started at the IdP, not by the portal",
            expected=ctx.request_id or "the ID of the portal's AuthnRequest", actual="(absent)", where=values[0][2])


def check_in_response_to(ctx: ResponseContext) -> Iterator[Finding]:
    values = _in_response_to(ctx)
    if all(value is None for _, value, _ in values):
        return  # unsolicited: RSP018
    if ctx.request_id is not None:
        for label, value, where in values:
            if value != ctx.request_id:
                yield IN_RESPONSE_TO.finding(f"InResponseTo on {label} is {_shown(value)}, not the request's ID",
                                             expected=ctx.request_id, actual=_actual(value), where=where)
    elif len({value for _, value, _ in values}) > 1:
        shown = "; ".join(f"{label}: {_shown(value)}" for label, value, _ in values)
        yield IN_RESPONSE_TO.finding(f"the InResponseTo values disagree ({shown})",
                                     expected="the same request ID in both places", actual=shown, where=values[-1][2])


def check_authn_statement(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if f.assertion_present and not f.authn_statements:
        yield NO_AUTHN_STATEMENT.finding("the assertion says nothing about how the user signed in",
                                         expected="a saml:AuthnStatement", actual="none",
                                         where=_where("saml:Assertion", f.assertion_line))


def check_nameid(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if not f.assertion_present:
        return
    where = _where("saml:Subject/saml:NameID", f.nameid_line or f.subject_line or f.assertion_line)
    if f.nameid is None:
        yield NO_NAMEID.finding("the assertion's Subject has no NameID", expected="a NameID", actual="(absent)",
                                where=where)
        return
    if not f.nameid.strip():
        yield NO_NAMEID.finding("the NameID is empty", expected="a NameID value", actual=_shown(f.nameid), where=where)
    elif f.nameid != f.nameid.strip():
        yield NAMEID_SPACES.finding(f"the NameID {_shown(f.nameid)} has surrounding whitespace",
                                    expected=_actual(f.nameid.strip()), actual=_shown(f.nameid), where=where)
    expected = ctx.crm.idp.nameid_format if ctx.crm is not None else None
    actual = f.nameid_format or UNSPECIFIED  # Core §8.3: no Format means unspecified
    if expected is not None and expected != UNSPECIFIED and actual != expected:
        yield NAMEID_FORMAT.finding(f"the NameID's Format is {_shown(actual)}", expected=expected,
                                    actual=_actual(f.nameid_format), where=where)


def check_replay(ctx: ResponseContext) -> Iterator[Finding]:
    f = ctx.facts
    if f.assertion_present and f.assertion_id is not None and f.assertion_id in ctx.seen_assertion_ids:
        yield REPLAY.finding(f"the assertion {_shown(f.assertion_id)} was already used", expected="a new assertion ID",
                             actual=_actual(f.assertion_id), where=_where("saml:Assertion/@ID", f.assertion_line))


CHECKS: tuple[Callable[[ResponseContext], Iterator[Finding]], ...] = (
    check_status, check_assertion_present, check_issuer, check_issuers_agree, check_unsigned_fields,
    check_time_values, check_conditions_window, check_confirmation_expiry, check_issue_instants, check_lifetime,
    check_audience, check_bearer, check_recipient, check_destination, check_unsolicited, check_in_response_to,
    check_authn_statement, check_nameid, check_replay, check_split_values,
)


def check_response(ctx: ResponseContext) -> list[Finding]:
    """Every RSP finding for one response; none of them hides another."""
    return [found for check in CHECKS for found in check(ctx)]
