"""CLM rules: the claims of a response against the CRM record.

The record is the contract: every configured claim is looked up by its exact Name (case,
spelling, no URI prefix unless configured). When a required one is absent, the near misses
among the attributes sent (:func:`validator.nearmiss.claim_near_misses`) are named, with the
place in the partner's IdP where the claim's name is set. FriendlyName never satisfies a
claim; it is only used to explain a miss.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from metadata.crm import MAX_LOGIN_TYPE_ID, Claim
from metadata.xml import visible
from validator.checks.wording import at, rules_for
from validator.checks.wording import shown as _shown
from validator.findings import Finding, Severity
from validator.nearmiss import claim_near_misses
from validator.response_facts import Attribute, ResponseFacts
from validator.vendor import setting

_rule = rules_for("claims")


MISSING = _rule(
    "CLM001", "A required claim is missing",
    "Each claim the CRM record marks as required must be sent as a saml:Attribute whose Name is exactly the "
    "configured name. When it is absent, attributes that look like it are named: another letter case, "
    "spaces, a vendor's URI or an OID form, or a FriendlyName equal to the claim's name.",
    "The portal looks claims up by their exact Name: 'accountnumber' is not 'AccountNumber', and Entra's "
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress is not 'Email'. Without the claim the "
    "portal cannot find the user's account and the login fails.",
    "Add the claim, or rename it, in the IdP's attribute mapping for the portal's application, using exactly "
    "the name in the CRM record.",
)
OPTIONAL_MISSING = _rule(
    "CLM002", "An optional claim is not sent",
    "A claim the CRM record lists but does not require is absent from the response.",
    "The login works without it, but the portal cannot use what it would carry (for example to pre-fill a "
    "profile).",
    "Add the claim in the IdP's attribute mapping if the biller wants the portal to use it.",
    Severity.INFO,
)
EXTRA = _rule(
    "CLM003", "Claims the CRM record does not list",
    "Attributes whose Names are not among the record's claims (and are not near misses of one) are listed.",
    "The portal ignores them; they may carry personal data the portal does not need.",
    "Remove them from the portal's application at the IdP, or add them to the CRM record if they are needed.",
    Severity.INFO,
)
MULTI_VALUED = _rule(
    "CLM004", "Several values where one is expected",
    "A claim of the record other than the login-type claim carries more than one AttributeValue.",
    "The portal reads one value; which of several it would pick is not defined, so a user could land in the "
    "wrong account.",
    "Map the claim to a single-valued attribute at the IdP (not a group list or a multi-valued directory "
    "attribute).",
    Severity.WARNING,
)
EMPTY = _rule(
    "CLM005", "A claim is sent with an empty value",
    "A configured claim has no AttributeValue, or a value that is empty or only whitespace. An error for a "
    "required claim, a warning otherwise.",
    "An empty account number or email is as good as none: the portal cannot match the user.",
    "Fill the source attribute for every user who may sign in (or make the IdP's mapping fall back to "
    "another attribute).",
)
LOGIN_TYPE = _rule(
    "CLM006", "A login type is not one of the biller's login type IDs",
    "Each value of the login-type claim must be the decimal number of a login type ID in the CRM record, "
    "exactly: no spaces, no leading zeros, not the login type's name.",
    "Login type IDs are the role numbers the portal issued to this biller; any other value gives the user "
    "no role and the login fails.",
    "Send the numeric ID (e.g. 1), not the role's name, from the IdP's mapping of the login-type claim; the "
    "IDs the portal issued are listed in the finding.",
)
JOINED = _rule(
    "CLM007", "Several login types joined in one value",
    "A value of the login-type claim holds several IDs joined with commas, semicolons or spaces, such as "
    "'1,2' or '1 2'.",
    "The portal reads each AttributeValue as one ID; '1,2' is not a number, so the user gets no role.",
    "Send a multi-valued attribute: one AttributeValue per login type ID (Okta: a multi-valued profile "
    "attribute or a group attribute; Entra ID: a claim from a multi-valued source; AD FS: one claim per "
    "value).",
)
DUPLICATE = _rule(
    "CLM008", "A claim is sent twice",
    "Two or more saml:Attribute elements have the same Name.",
    "Service providers differ in which copy they read; the portal may read the other one than the partner "
    "expects.",
    "Keep one attribute statement for the claim in the IdP's mapping; put several values in one attribute.",
    Severity.WARNING,
)

_SEPARATORS = (",", ";", "|")


class ClaimTerms(Protocol):
    """What the claims are judged against: a :class:`metadata.crm.CRMRecord`, or a snapshot of its
    claims and login types (the test SP's stored view)."""

    @property
    def claims(self) -> Sequence[Claim]: ...

    @property
    def login_types(self) -> Sequence[object]: ...

    @property
    def login_type_ids(self) -> Mapping[int, str]: ...


# What the judge found about one claim, the most severe first; a claim with none of them is "ok".
STATUSES = (("CLM001", "missing"), ("CLM002", "absent"), ("CLM005", "empty"), ("CLM006", "not an allowed ID"),
            ("CLM007", "not an allowed ID"), ("CLM004", "several values"), ("CLM008", "sent twice"))


@dataclass(frozen=True)
class ClaimJudgement:
    """One claim of the record as the judge found it: from the same comparison as the findings."""

    name: str
    required: bool
    login_type: bool
    sent_values: tuple[str, ...] | None
    """Every value sent under exactly this Name, in order; None when no attribute has the Name."""
    codes: tuple[str, ...]
    """The codes of the findings about this claim, in the findings' order."""

    @property
    def status(self) -> str:
        return next((status for code, status in STATUSES if code in self.codes), "ok")


@dataclass(frozen=True)
class ClaimsJudged:
    """The CLM findings of one assertion and, for each claim of the record, its judgement."""

    findings: list[Finding]
    claims: tuple[ClaimJudgement, ...] = ()


def _joined_ids(value: str) -> list[str] | None:
    """The IDs of a value that joins two or more (``1,2``, ``1; 2``, ``1 | 2``, ``1 2``), or None.

    One separator or only whitespace between numbers. A linear scan of the partner's value, where
    a pattern would need a quantified group of quantifiers.
    """
    for separator in _SEPARATORS:
        value = value.replace(separator, f" {separator} ")
    ids: list[str] = []
    after_separator = True  # a number must come first
    for token in value.split():
        if token in _SEPARATORS:
            if after_separator:
                return None
            after_separator = True
        elif token.isascii() and token.isdigit():
            ids.append(token)
            after_separator = False
        else:
            return None
    return ids if len(ids) > 1 and not after_separator else None




def _where(name: str, line: int | None) -> str:
    return at(f"saml:Attribute[@Name={_shown(name)}]", line)


def _setting(vendor_key: str | None) -> str:
    return setting(vendor_key, "claim")


def _missing(claim: Claim, facts: ResponseFacts, vendor_key: str | None) -> tuple[Finding, set[str]]:
    offered = list(dict.fromkeys((a.name, a.friendly_name) for a in facts.attributes))
    misses = claim_near_misses(claim.name, offered)
    sent = ", ".join(dict.fromkeys(_shown(a.name) for a in facts.attributes)) or "no attributes"
    kind = "required claim" if claim.required else "claim"
    rule_ = MISSING if claim.required else OPTIONAL_MISSING
    if misses:
        near = "; ".join(f"{_shown(m.actual)} ({m.reason})" for m in misses)
        message = f"the {kind} {_shown(claim.name)} is not sent under that name; near misses: {near}"
        fix = (f"Send the claim under exactly the name {claim.name!r} (not "
               f"{' or '.join(repr(m.actual) for m in misses)}). Where: {_setting(vendor_key)}.")
        actual = ", ".join(_shown(m.actual) for m in misses)
    else:
        message = f"the {kind} {_shown(claim.name)} is not sent"
        fix = f"Add the claim {claim.name!r}. Where: {_setting(vendor_key)}."
        actual = sent
    line = next((a.line for a in facts.attributes if misses and a.name == misses[0].actual), None)
    finding = rule_.finding(message, expected=claim.name, actual=actual,
                            where=_where(misses[0].actual, line) if misses else "saml:AttributeStatement", fix=fix)
    return finding, {m.actual for m in misses}


def _allowed(crm: ClaimTerms) -> str:
    return ", ".join(f"{number} {name}" for number, name in sorted(crm.login_type_ids.items()))


_ID_DIGITS = len(str(MAX_LOGIN_TYPE_ID))


def _digits(text: str) -> bool:
    """ASCII digits only, at least one: a scan, no pattern (a claim's value is the partner's text)."""
    return text.isascii() and text.isdigit()


def _login_type_problem(value: str, crm: ClaimTerms) -> str | None:
    """Why `value` is not a login type ID of the record, or None when it is one."""
    ids = crm.login_type_ids
    if _digits(value) and (value == "0" or not value.startswith("0")):
        # Its length first: int() of thousands of digits is slow, and past 4,300 refused.
        if len(value) > _ID_DIGITS or int(value) > MAX_LOGIN_TYPE_ID:
            return (f"a number beyond {MAX_LOGIN_TYPE_ID}, the largest login type ID a CRM record holds "
                    "(a signed 32-bit integer), so not one of the biller's login type IDs")
        return None if int(value) in ids else "not one of the biller's login type IDs"
    stripped = value.strip()
    if stripped != value and _digits(stripped):
        return "a number with surrounding whitespace"
    if _digits(value):
        return "a number with leading zeros"
    named = [number for number, name in ids.items() if name.strip().lower() == stripped.lower()]
    if named:
        return f"the name of login type {named[0]}, not its ID"
    return "not an integer"


def _login_types(claim: Claim, attributes: list[Attribute], crm: ClaimTerms) -> Iterator[Finding]:
    allowed = _allowed(crm)
    for attribute in attributes:
        where = _where(claim.name, attribute.line)
        for value in attribute.values:
            if not value.strip():
                continue  # CLM005
            parts = _joined_ids(value)
            if parts is not None:
                unknown = [p for p in parts if _login_type_problem(p, crm) is not None]
                message = f"the login-type claim holds {len(parts)} IDs in one value: {_shown(value)}"
                if unknown:
                    message += f"; {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not configured"
                yield JOINED.finding(message, expected=f"one AttributeValue per ID, each one of: {allowed}",
                                     actual=visible(value, one_line=True), where=where)
                continue
            problem = _login_type_problem(value, crm)
            if problem is not None:
                yield LOGIN_TYPE.finding(f"the login type {_shown(value)} is {problem}; allowed: {allowed}",
                                         expected=allowed, actual=visible(value, one_line=True), where=where)


def _values(claim: Claim, attributes: list[Attribute]) -> Iterator[Finding]:
    for attribute in attributes:
        where = _where(claim.name, attribute.line)
        if len(attribute.values) > 1 and not claim.login_type:
            shown = ", ".join(_shown(v) for v in attribute.values)
            yield MULTI_VALUED.finding(f"the claim {_shown(claim.name)} carries {len(attribute.values)} values: "
                                       f"{shown}", expected="one value", actual=shown, where=where)
        empty = [v for v in attribute.values if not v.strip()]
        if not attribute.values or empty:
            problem = "has no AttributeValue" if not attribute.values else (
                f"has an empty value ({_shown(empty[0])})" if empty[0] else "has an empty value")
            yield EMPTY.finding(f"the {'required ' if claim.required else ''}claim {_shown(claim.name)} {problem}",
                                expected="a non-empty value", actual=", ".join(_shown(v) for v in attribute.values)
                                or "no value", where=where,
                                severity=Severity.ERROR if claim.required else Severity.WARNING)


def _duplicates(facts: ResponseFacts) -> Iterator[tuple[str, Finding]]:
    lines: dict[str, list[int | None]] = {}
    for attribute in facts.attributes:
        lines.setdefault(attribute.name, []).append(attribute.line)
    for name, found in lines.items():
        if len(found) > 1:
            at = ", ".join(f"line {n}" for n in found if n) or "several places"
            yield name, DUPLICATE.finding(f"the claim {_shown(name)} is sent {len(found)} times ({at})",
                                    expected="one saml:Attribute per Name", actual=f"{len(found)} attributes",
                                    where=_where(name, found[0]))


def _claim(claim: Claim, sent: list[Attribute] | None, found: Sequence[Finding], twice: Sequence[Finding]
           ) -> ClaimJudgement:
    values = None if not sent else tuple(v for attribute in sent for v in attribute.values)
    return ClaimJudgement(claim.name, claim.required, claim.login_type, values,
                          tuple(dict.fromkeys(f.code for f in (*twice, *found))))


def _configured(crm: ClaimTerms, by_name: dict[str, list[Attribute]], facts: ResponseFacts,
                vendor_key: str | None, twice: Mapping[str, Finding]
                ) -> tuple[list[Finding], set[str], tuple[ClaimJudgement, ...]]:
    """The findings of every claim the record configures, the near misses named for absent ones,
    and each claim's judgement: the codes of exactly the findings made about it here (and of its
    duplicate, `twice`)."""
    findings: list[Finding] = []
    near: set[str] = set()
    judged: list[ClaimJudgement] = []
    for claim in crm.claims:
        sent = by_name.get(claim.name)
        found: list[Finding]
        if not sent:
            finding, misses = _missing(claim, facts, vendor_key)
            found = [finding]
            near |= misses
        else:
            found = list(_values(claim, sent))
            if claim.login_type and crm.login_types:
                found.extend(_login_types(claim, sent, crm))
        findings.extend(found)
        judged.append(_claim(claim, sent, found, [twice[claim.name]] if claim.name in twice else []))
    return findings, near, tuple(judged)


def _extra(crm: ClaimTerms, by_name: dict[str, list[Attribute]], near: set[str]) -> Iterator[Finding]:
    configured = {claim.name for claim in crm.claims}
    extra = [name for name in by_name if name not in configured and name not in near]
    if extra:
        listed = ", ".join(_shown(name) for name in extra)
        yield EXTRA.finding(f"{len(extra)} claim{'s' if len(extra) > 1 else ''} not in the CRM record: {listed}",
                            expected=", ".join(sorted(configured)) or "none", actual=listed,
                            where="saml:AttributeStatement")


def check_claims(facts: ResponseFacts, crm: ClaimTerms | None, vendor_key: str | None) -> list[Finding]:
    """Every CLM finding for the attributes of one assertion; none of them hides another."""
    return judge_claims(facts, crm, vendor_key).findings


def judge_claims(facts: ResponseFacts, crm: ClaimTerms | None, vendor_key: str | None) -> ClaimsJudged:
    """The one judge of claims: every CLM finding (:func:`check_claims`) and, from the same
    comparison, each claim of the record with the codes found about it."""
    if not facts.assertion_present:
        return ClaimsJudged([])
    twice = dict(_duplicates(facts))
    findings = list(twice.values())
    if crm is None:
        return ClaimsJudged(findings)
    by_name: dict[str, list[Attribute]] = {}
    for attribute in facts.attributes:
        by_name.setdefault(attribute.name, []).append(attribute)
    configured, near, judged = _configured(crm, by_name, facts, vendor_key, twice)
    return ClaimsJudged([*findings, *configured, *_extra(crm, by_name, near)], judged)
