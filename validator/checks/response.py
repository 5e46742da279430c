"""RSP rules: a partner's SAML Response against the Web Browser SSO profile and the CRM record.

The checks are pure functions of a :class:`ResponseContext`: the facts read from the verified
response (:mod:`validator.response_facts`), the CRM record, the expected IdP entity ID, the
clock and the replay cache. Signatures are judged elsewhere (SIG rules); here every value is
taken as the verifier handed it over. The rules and their documentation are in
:mod:`validator.checks.response_rules`; the checks of times and validity windows are in
:mod:`validator.checks.response_times`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from metadata.crm import CRMRecord
from metadata.saml import BEARER, STATUS_PREFIX, SUCCESS, UNSPECIFIED
from metadata.xml import visible
from validator.checks.response_rules import (
    AUDIENCE,
    DESTINATION,
    IN_RESPONSE_TO,
    ISSUER,
    ISSUERS_DIFFER,
    NAMEID_FORMAT,
    NAMEID_SPACES,
    NO_ASSERTION,
    NO_AUDIENCE,
    NO_AUTHN_STATEMENT,
    NO_BEARER,
    NO_ENTITY_ID,
    NO_NAMEID,
    RECIPIENT,
    REPLAY,
    SPLIT_VALUE,
    STATUS,
    UNSIGNED_FIELDS,
    UNSOLICITED,
)
from validator.checks.response_times import bearer_confirmation as _bearer
from validator.checks.response_times import (
    check_conditions_window,
    check_confirmation_expiry,
    check_issue_instants,
    check_lifetime,
    check_time_values,
)
from validator.checks.wording import actual as _actual
from validator.checks.wording import at as _where
from validator.checks.wording import shown as _shown
from validator.findings import Finding
from validator.nearmiss import uri_difference
from validator.response_facts import ResponseFacts
from validator.vendor import setting

MAX_SKEW_SECONDS = 300


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


def never_seen(assertion_id: str) -> bool:
    """The replay predicate without a replay cache: no assertion was seen before."""
    return False


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
    is_replay: Callable[[str], bool] = field(default=never_seen)
    """Whether an assertion ID was used before (RSP023); asked once, for a present assertion's ID. A
    replay cache may record the ID as used when asked (the test SP's does)."""
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



def _differs(label: str, expected: str, actual: str) -> str:
    difference = uri_difference(expected, actual)
    return f"{label} {_shown(actual)} differs from the expected value by {difference}" if difference else (
        f"{label} is {_shown(actual)}")


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
    for audiences in f.audiences:  # Core §2.5.1.4: every restriction must be met
        if ctx.crm.sp.entity_id not in audiences:
            yield _audience_missed(audiences, ctx.crm.sp.entity_id, setting(ctx.vendor_key, "audience"), where)


def _audience_missed(audiences: tuple[str, ...], expected: str, place: str, where: str) -> Finding:
    """RSP013 for one AudienceRestriction without the portal's entity ID, naming a near miss."""
    listed = ", ".join(_shown(a) for a in audiences) or "no Audience at all"
    near = next((d for d in (uri_difference(expected, a) for a in audiences) if d), None)
    message = f"the AudienceRestriction names {listed}"
    if near:
        message += f", which differs from the portal's entity ID by {near}"
    return AUDIENCE.finding(message, expected=expected, actual=", ".join(_actual(a) for a in audiences) or "none",
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
    if f.assertion_present and f.assertion_id is not None and ctx.is_replay(f.assertion_id):
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
