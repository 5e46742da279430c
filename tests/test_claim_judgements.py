"""One judge of claims: :func:`validator.checks.claims.judge_claims` gives the CLM findings and,
from the same comparison, each claim's judgement; the test SP's claim table is drawn from those
judgements (never from the findings' wording)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from metadata.crm import CRMRecord, parse_crm
from tests.helpers import crm_toml
from validator.checks.claims import ClaimJudgement, check_claims, judge_claims
from validator.response_facts import Attribute, ResponseFacts
from validator.web.claim_table import ClaimRow, claim_rows
from validator.web.login_result import (
    ExpectedClaim,
    LoginView,
    StoredFinding,
    StoredReport,
    StoredResponse,
)

OPTIONAL = '\n[[claims]]\nname = "Nickname"\n'
CRM: CRMRecord = parse_crm(crm_toml(sp_entity_id="https://portal.example.com", acs_url="https://portal.example.com/acs",
                                    idp={"entity_id": "https://idp.example.com"}, extra=OPTIONAL,
                                    login_types=((1, "Customer"), (2, "Property Manager"))), "t.toml", "toml")
GOOD = {"AccountNumber": ("100200300",), "Email": ("alice@example.com",), "LoginTypeId": ("1",),
        "Nickname": ("al",)}


def facts(claims: dict[str, tuple[str, ...]], *extra: Attribute) -> ResponseFacts:
    return ResponseFacts(attributes=(*(Attribute(n, values=v) for n, v in claims.items()), *extra))


def judged(claims: dict[str, tuple[str, ...]], *extra: Attribute) -> dict[str, ClaimJudgement]:
    return {j.name: j for j in judge_claims(facts(claims, *extra), CRM, None).claims}


# Each CLM code about one claim: the claim, what is sent under its name, its code and its status.
CASES = [
    ("AccountNumber", None, "CLM001", "missing"),
    ("Nickname", None, "CLM002", "absent"),
    ("AccountNumber", ("1", "2"), "CLM004", "several values"),
    ("Email", ("  ",), "CLM005", "empty"),
    ("LoginTypeId", (" 1",), "CLM006", "not an allowed ID"),
    ("LoginTypeId", ("Customer",), "CLM006", "not an allowed ID"),
    ("LoginTypeId", ("9",), "CLM006", "not an allowed ID"),
    ("LoginTypeId", ("1,2",), "CLM007", "not an allowed ID"),
]


@pytest.mark.parametrize(("name", "sent", "code", "status"), CASES)
def test_each_code_about_one_claim_is_that_claims_judgement(
        name: str, sent: tuple[str, ...] | None, code: str, status: str) -> None:
    claims = {k: v for k, v in GOOD.items() if k != name} | ({name: sent} if sent is not None else {})
    result = judge_claims(facts(claims), CRM, None)
    assert code in {f.code for f in result.findings}
    by_name = {j.name: j for j in result.claims}
    assert by_name[name].codes == (code,) and by_name[name].status == status
    assert by_name[name].sent_values == sent
    assert all(j.codes == () and j.status == "ok" for n, j in by_name.items() if n != name)


def test_a_login_type_beyond_what_a_crm_holds_is_said_to_be_so() -> None:
    # 23 digits was "not one of the biller's login type IDs", as if it were merely another ID;
    # 5,000 digits was a crash (int() refuses past 4,300).
    for sent in ("12345678901234567890123", "2147483648", "9" * 5000):
        [finding] = check_claims(facts(GOOD | {"LoginTypeId": (sent,)}), CRM, None)
        assert finding.code == "CLM006"
        assert "is a number beyond 2147483647, the largest login type ID a CRM record holds (a signed 32-bit " \
               "integer), so not one of the biller's login type IDs" in finding.message
    largest = parse_crm(crm_toml(login_types=((2**31 - 1, "Largest"),)), "t.toml", "toml")
    assert [f for f in check_claims(facts(GOOD | {"LoginTypeId": ("2147483647",)}), largest, None)
            if f.code == "CLM006"] == []
    [other] = [f for f in check_claims(facts(GOOD | {"LoginTypeId": ("2147483646",)}), largest, None)
               if f.code == "CLM006"]
    assert "is not one of the biller's login type IDs" in other.message and "beyond" not in other.message


def test_a_good_login_is_ok_throughout() -> None:
    result = judge_claims(facts(GOOD), CRM, None)
    assert result.findings == []
    assert [(j.name, j.required, j.login_type, j.sent_values, j.status) for j in result.claims] == [
        ("AccountNumber", True, False, ("100200300",), "ok"), ("Email", True, False, ("alice@example.com",), "ok"),
        ("LoginTypeId", True, True, ("1",), "ok"), ("Nickname", False, False, ("al",), "ok")]


def test_a_case_mismatch_is_the_claim_missing_not_the_other_name() -> None:
    claims = {k: v for k, v in GOOD.items() if k != "AccountNumber"} | {"accountnumber": ("100200300",)}
    j = judged(claims)
    assert j["AccountNumber"].codes == ("CLM001",) and j["AccountNumber"].sent_values is None
    assert "accountnumber" not in j


def test_a_claim_sent_twice() -> None:
    j = judged(GOOD, Attribute("Email", values=("bob@example.com",)))
    assert j["Email"].codes == ("CLM008",) and j["Email"].status == "sent twice"
    assert j["Email"].sent_values == ("alice@example.com", "bob@example.com")


def test_the_judge_and_check_claims_give_the_same_findings() -> None:
    for name, sent, _, _ in CASES:
        f = facts({k: v for k, v in GOOD.items() if k != name} | ({name: sent} if sent is not None else {}))
        assert judge_claims(f, CRM, "okta").findings == check_claims(f, CRM, "okta")
    assert judge_claims(replace(facts(GOOD), assertion_present=False), CRM, None).claims == ()
    assert judge_claims(facts(GOOD), None, None).claims == ()


# --- the test SP's claim table ------------------------------------------------------------

VIEW = LoginView(claims=tuple(ExpectedClaim(c.name, c.required, c.login_type) for c in CRM.claims),
                 login_types={str(k): v for k, v in CRM.login_type_ids.items()})


def stored(claims: dict[str, tuple[str, ...]], *, verified: bool = True, wording: str = "") -> StoredReport:
    """The report as the test SP stores it; each CLM finding's wording replaced by `wording` when
    given (the table must not depend on it)."""
    findings = judge_claims(facts(claims), CRM, None).findings
    return StoredReport(findings=tuple(StoredFinding(f.code, f.severity.value, f.title, wording or f.message,
                                                     wording or f.expected, wording or f.actual, wording or f.where)
                                       for f in findings),
                        response=StoredResponse(verified=verified, claims=claims))


@pytest.mark.parametrize(("name", "sent", "code", "status"), CASES)
@pytest.mark.parametrize("wording", ["", "reworded"])
def test_the_row_of_the_claim_shows_its_code(name: str, sent: tuple[str, ...] | None, code: str, status: str,
                                            wording: str) -> None:
    claims = {k: v for k, v in GOOD.items() if k != name} | ({name: sent} if sent is not None else {})
    table = claim_rows(VIEW, stored(claims, wording=wording))
    assert table.agrees
    rows = {r.name: r for r in table}
    assert (rows[name].status, rows[name].codes) == (status, (code,))
    assert all((r.status, r.codes) == ("ok", ()) for n, r in rows.items() if n != name)


def test_a_good_login_row_by_row_with_the_role_name_beside_its_id() -> None:
    table = claim_rows(VIEW, stored(GOOD))
    assert list(table) == [
        ClaimRow("AccountNumber", "required", "100200300", "ok"),
        ClaimRow("Email", "required", "alice@example.com", "ok"),
        ClaimRow("LoginTypeId", "required; one of the login type IDs 1 (Customer), 2 (Property Manager)",
                 "1 (Customer)", "ok"),
        ClaimRow("Nickname", "optional", "al", "ok")]


def test_a_login_type_with_a_space_is_not_named_as_a_role() -> None:
    rows = {r.name: r for r in claim_rows(VIEW, stored({**GOOD, "LoginTypeId": (" 1", "2")}))}
    assert rows["LoginTypeId"].actual == " 1 | 2 (Property Manager)"
    assert rows["LoginTypeId"].codes == ("CLM006",)


def test_an_unverified_response_reads_no_claim() -> None:
    table = claim_rows(VIEW, stored(GOOD, verified=False))
    assert {(r.status, r.codes) for r in table} == {("not read", ())}


def test_a_table_that_cannot_show_every_finding_says_so() -> None:
    # The stored facts keep a claim sent twice once: the report's CLM008 is then beyond the table.
    report = stored(GOOD)
    report = replace(report, findings=(*report.findings, StoredFinding("CLM008", "warning")))
    assert not claim_rows(VIEW, report).agrees
