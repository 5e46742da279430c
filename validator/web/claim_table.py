"""The result page's claim table: expected (the CRM record) beside actual (the response).

The table judges nothing itself: a claim's row is what the one claim judge
(:func:`validator.checks.claims.judge_claims`, the one that made the CLM findings) found about it,
run on the verified facts the report kept and the record's claims the view kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from metadata.crm import Claim, LoginType
from validator.checks.claims import ClaimJudgement, judge_claims
from validator.response_facts import Attribute, ResponseFacts

from .login_result import ExpectedClaim, LoginView, StoredReport


@dataclass(frozen=True)
class ClaimRow:
    name: str
    expected: str
    """What the record expects."""
    actual: str
    """What the response sent (a login type ID with its role name from the record)."""
    status: str
    codes: tuple[str, ...] = ()
    """The CLM codes the claim judge found about this claim."""


@dataclass(frozen=True)
class ClaimTable:
    rows: tuple[ClaimRow, ...]
    agrees: bool = True
    """Whether the judge, run on the stored facts, found exactly the report's CLM findings; when it
    did not (a claim sent twice, whose copies the stored facts merge), the table says so rather than
    show "ok" beside an error."""

    def __iter__(self) -> Iterator[ClaimRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class _Terms:
    """The record's claims and login types as the view kept them (:class:`ClaimTerms`)."""

    claims: tuple[Claim, ...]
    login_types: tuple[LoginType, ...]

    @property
    def login_type_ids(self) -> dict[int, str]:
        return {t.id: t.name for t in self.login_types}


NOT_READ = "— (the response was not verified, so no claim is read)"


def claim_rows(view: LoginView, report: StoredReport) -> ClaimTable:
    """The expected/actual table: each claim of the record as the claim judge
    (:func:`validator.checks.claims.judge_claims`, the one that made the CLM findings) found it in
    the verified facts, then every other claim that arrived."""
    if not report.response.verified:
        return ClaimTable(tuple(ClaimRow(c.name, _expected(c, view.login_types), NOT_READ, "not read")
                                for c in view.claims))
    sent = report.response.claims
    facts = ResponseFacts(assertion_present=report.response.assertion_present,
                          attributes=tuple(Attribute(name, values=values) for name, values in sent.items()))
    judged = judge_claims(facts, _terms(view), None)
    rows = [ClaimRow(j.name, _expected(j, view.login_types), _actual(j, view.login_types), j.status, j.codes)
            for j in judged.claims]
    known = {c.name for c in view.claims}
    rows += [ClaimRow(name, "not in the CRM record", " | ".join(values), "extra")
             for name, values in sent.items() if name not in known]
    stored = sorted(f.code for f in report.findings if f.code.startswith("CLM"))
    return ClaimTable(tuple(rows), stored == sorted(f.code for f in judged.findings))


def _terms(view: LoginView) -> _Terms:
    claims = tuple(Claim(name=c.name, required=c.required, login_type=c.login_type) for c in view.claims)
    types = tuple(LoginType(id=int(k), name=v) for k, v in view.login_types.items() if k.isascii() and k.isdigit())
    return _Terms(claims, types)


def _expected(claim: ExpectedClaim | ClaimJudgement, login_types: Mapping[str, str]) -> str:
    expected = "required" if claim.required else "optional"
    if claim.login_type:
        allowed = ", ".join(f"{k} ({v})" for k, v in login_types.items()) or "none configured"
        expected += f"; one of the login type IDs {allowed}"
    return expected


def _actual(judged: ClaimJudgement, login_types: Mapping[str, str]) -> str:
    if judged.sent_values is None:
        return "— not sent"
    if judged.login_type:
        return " | ".join(f"{v} ({login_types[v]})" if v in login_types else v for v in judged.sent_values)
    return " | ".join(judged.sent_values) or ("(no value)" if judged.status == "empty" else "")
