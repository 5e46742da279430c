"""RSP rules about time: every time a response states, the validity windows of the assertion
and of its bearer confirmation, and how old or how long-lived they may be (SAML Core §1.3.3,
§2.5.1.2; Profiles §4.1.4.2). Each check compares with the context's clock and skew.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from metadata.saml import BEARER
from validator.checks.request import parse_instant
from validator.checks.response_rules import (
    BAD_TIME,
    CONFIRMATION_EXPIRY,
    EXPIRED,
    ISSUE_INSTANT,
    LIFETIME,
    NOT_YET_VALID,
)
from validator.checks.wording import actual as _actual
from validator.checks.wording import at as _where
from validator.checks.wording import duration as _duration
from validator.checks.wording import shown as _shown
from validator.findings import Finding
from validator.response_facts import ResponseFacts, SubjectConfirmation

if TYPE_CHECKING:
    from validator.checks.response import ResponseContext

__all__ = [
    "bearer_confirmation", "check_conditions_window", "check_confirmation_expiry", "check_issue_instants",
    "check_lifetime", "check_time_values",
]


def _iso(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def bearer_confirmation(ctx: ResponseContext) -> SubjectConfirmation | None:
    """The bearer confirmation to judge: the first addressed to the portal, else the first."""
    bearers = [c for c in ctx.facts.subject_confirmations if c.method == BEARER]
    acs = ctx.crm.sp.acs_url if ctx.crm is not None else None
    return next((c for c in bearers if c.recipient == acs), bearers[0] if bearers else None)


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
    bearer = bearer_confirmation(ctx)
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
    bearer = bearer_confirmation(ctx)
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
