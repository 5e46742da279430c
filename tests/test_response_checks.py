"""validator.response_facts, validator.checks.response (RSP) and validator.checks.claims (CLM):
a pass and a fail case for every rule, facts read from XML by fixed paths, and a response of
our own test IdP judged end to end."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from idp.assertion import Claim as IdPClaim
from idp.assertion import ResponseSpec, build_response, serialize
from metadata.crm import CRMRecord, parse_crm
from metadata.errors import UnsafeXML
from metadata.saml import BEARER, PERSISTENT, SAML, SAMLP, SUCCESS
from metadata.signing import verify
from metadata.xml import MESSAGE_LIMITS, parse_untrusted
from tests.factory import NOW, make_keypair
from tests.helpers import crm_toml
from validator.checks.claims import check_claims
from validator.checks.response import ResponseContext, check_response
from validator.findings import Finding, Severity
from validator.response_facts import Attribute, AuthnStatement, ResponseFacts, SubjectConfirmation, read_facts

IDP = "http://www.okta.com/exk1abcd"
SP = "https://sso.portal.example/saml"
ACS = "https://sso.portal.example/saml/acs"
REQ = "_req1"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
ENTRA_EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


def record(extra: str = "") -> CRMRecord:
    return parse_crm(crm_toml(sp_entity_id=SP, acs_url=ACS, idp={"entity_id": IDP, "nameid_format": EMAIL_FORMAT},
                              extra=extra, login_types=((1, "Customer"), (2, "Property Manager")),
                              biller=("B-10442", "Springfield Water")), "test.toml", "toml")


CRM = record()


def _time(delta_seconds: int) -> str:
    return f"{NOW + timedelta(seconds=delta_seconds):%Y-%m-%dT%H:%M:%SZ}"


CONFIRMATION = SubjectConfirmation(BEARER, recipient=ACS, not_on_or_after=_time(300), in_response_to=REQ, line=9)
GOOD = ResponseFacts(
    response_id="_r1", destination=ACS, in_response_to=REQ, issue_instant=_time(-5), issuer=IDP,
    status_code=SUCCESS, assertion_id="_a1", assertion_issue_instant=_time(-5), assertion_issuer=IDP,
    nameid="jo@example.com", nameid_format=EMAIL_FORMAT, subject_confirmations=(CONFIRMATION,),
    conditions_present=True, conditions_not_before=_time(-5), conditions_not_on_or_after=_time(300),
    audiences=((SP,),), authn_statements=(AuthnStatement(_time(-60), session_index="_s1"),),
    attributes=(Attribute("AccountNumber", values=("1234-5678",), line=20), Attribute("Email", values=(
        "jo@example.com",), line=21), Attribute("LoginTypeId", values=("1",), line=22)),
    response_signed=True, assertion_signed=True, response_line=2, assertion_line=6,
)


def run(facts: ResponseFacts = GOOD, **ctx: Any) -> list[Finding]:
    options: dict[str, Any] = {"crm": CRM, "idp_entity_id": IDP, "request_id": REQ, **ctx}
    return check_response(ResponseContext(facts=facts, now=options.pop("now", NOW), **options))


def one(findings: list[Finding], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, [(f.code, f.message) for f in findings]
    return matching[0]


def codes(findings: list[Finding]) -> list[str]:
    return sorted(f.code for f in findings)


def claims(*attributes: Attribute, crm: CRMRecord | None = CRM, vendor: str | None = None) -> list[Finding]:
    return check_claims(replace(GOOD, attributes=attributes), crm, vendor)


GOOD_ATTRS = GOOD.attributes


def with_attr(name: str, *values: str, friendly: str | None = None) -> tuple[Attribute, ...]:
    """The good attributes with `name` replaced (or added) by one carrying `values`."""
    kept = tuple(a for a in GOOD_ATTRS if a.name != name)
    return (*kept, Attribute(name, friendly_name=friendly, values=values, line=30))


# ---- RSP: the passing response, then one failure per rule -------------------------------------

def test_a_good_response_has_no_findings() -> None:
    assert run() == []
    assert check_claims(GOOD, CRM, "okta") == []


def _bearer(**changes: Any) -> tuple[SubjectConfirmation, ...]:
    return (replace(CONFIRMATION, **changes),)


FAILURES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    # code, facts changed, context changed, text the message holds
    ("RSP001", {"status_code": "urn:oasis:names:tc:SAML:2.0:status:Responder",
                "status_sub_code": "urn:oasis:names:tc:SAML:2.0:status:RequestDenied",
                "status_message": "User not assigned", "assertion_present": False},
     {}, "Responder / RequestDenied: 'User not assigned'"),
    ("RSP001", {"status_code": None}, {}, "no samlp:Status"),
    ("RSP002", {"assertion_present": False}, {}, "no assertion"),
    ("RSP003", {"assertion_issuer": IDP + "/", "issuer": None}, {}, "trailing slash"),
    ("RSP003", {"assertion_issuer": None, "issuer": None}, {}, "the assertion has no Issuer"),
    ("RSP004", {"issuer": "https://proxy.example.com"}, {"idp_entity_id": None}, "proxy.example.com"),
    ("RSP005", {}, {"idp_entity_id": None}, "not compared"),
    ("RSP006", {"response_signed": False}, {}, "Destination, InResponseTo, Status"),
    ("RSP007", {"conditions_not_on_or_after": "2026-06-01 12:05"}, {}, "not an xs:dateTime"),
    ("RSP007", {"assertion_issue_instant": None}, {}, "IssueInstant is missing"),
    ("RSP008", {"conditions_not_before": _time(600)}, {}, "becomes valid in 10 min"),
    ("RSP009", {"conditions_not_on_or_after": _time(-600)}, {}, "expired 10 min ago"),
    ("RSP010", {"subject_confirmations": _bearer(not_on_or_after=None)}, {}, "no NotOnOrAfter"),
    ("RSP010", {"subject_confirmations": _bearer(not_on_or_after=_time(-3600))}, {}, "expired 60 min ago"),
    ("RSP011", {"issue_instant": _time(3600)}, {}, "in the future"),
    ("RSP011", {"assertion_issue_instant": _time(-3 * 86400), "conditions_not_before": None,
                "conditions_not_on_or_after": None}, {}, "3 days ago"),
    ("RSP012", {"audiences": ()}, {}, "name no audience"),
    ("RSP013", {"audiences": ((SP + "/",),)}, {}, "trailing slash"),
    ("RSP013", {"audiences": ((SP,), ("https://other.example.com",))}, {}, "other.example.com"),
    ("RSP014", {"subject_confirmations": _bearer(method="urn:oasis:names:tc:SAML:2.0:cm:holder-of-key")}, {},
     "holder-of-key"),
    ("RSP014", {"subject_confirmations": ()}, {}, "no SubjectConfirmation"),
    ("RSP015", {"subject_confirmations": _bearer(recipient=ACS.replace("https", "http"))}, {},
     "http instead of https"),
    ("RSP015", {"subject_confirmations": _bearer(recipient=None, has_data=False)}, {}, "no SubjectConfirmationData"),
    ("RSP016", {"destination": ACS.upper()}, {}, "letter case"),
    ("RSP016", {"destination": None}, {}, "signed but has no Destination"),
    ("RSP017", {"in_response_to": "_other"}, {}, "the Response is '_other'"),
    ("RSP017", {"subject_confirmations": _bearer(in_response_to="_other")}, {}, "SubjectConfirmationData is"),
    ("RSP017", {"in_response_to": "_other"}, {"request_id": None}, "disagree"),
    ("RSP018", {"in_response_to": None, "subject_confirmations": _bearer(in_response_to=None)}, {},
     "started at the IdP"),
    ("RSP019", {"authn_statements": ()}, {}, "how the user signed in"),
    ("RSP020", {"nameid": None}, {}, "Subject has no NameID"),
    ("RSP020", {"nameid": "  "}, {}, "empty"),
    ("RSP021", {"nameid": "jo@example.com\n"}, {}, "surrounding whitespace"),
    ("RSP022", {"nameid_format": PERSISTENT}, {}, "persistent"),
    ("RSP022", {"nameid_format": None}, {}, "unspecified"),
    ("RSP023", {}, {"is_replay": frozenset({"_a1"}).__contains__}, "already used"),
    ("RSP024", {"conditions_not_on_or_after": _time(7 * 86400)}, {}, "the Conditions stay valid for 7 days"),
    ("RSP024", {"subject_confirmations": _bearer(not_on_or_after=_time(2 * 86400))}, {},
     "the bearer confirmation stay valid for 2 days"),
    ("RSP025", {"split_values": (("saml:NameID", 8),)}, {}, "saml:NameID is split"),
]


@pytest.mark.parametrize(("code", "facts", "context", "text"), FAILURES,
                         ids=[f"{c}-{i}" for i, (c, *_) in enumerate(FAILURES)])
def test_each_rsp_rule_fails_with_its_code(code: str, facts: dict[str, Any], context: dict[str, Any],
                                           text: str) -> None:
    found = one(run(replace(GOOD, **facts), **context), code)
    assert text in found.message
    assert found.title and found.fix


def test_every_rsp_rule_has_a_failure_case() -> None:
    assert {c for c, *_ in FAILURES} == {f"RSP{n:03d}" for n in range(1, 26)}


def test_lifetime_up_to_the_limit_passes() -> None:
    # Entra ID's 75-minute window is ordinary; a day plus the skew is the limit.
    facts = replace(GOOD, conditions_not_before=_time(-300), conditions_not_on_or_after=_time(86400 - 300 + 120))
    assert run(facts) == []
    assert codes(run(facts, max_lifetime_seconds=3600)) == ["RSP024"]


def test_a_comment_in_a_received_value_is_found_and_the_whole_value_read() -> None:
    root, assertion = parsed(RESPONSE_XML)
    facts = read_facts(root, assertion, response_signed=True, assertion_signed=True, received=[root])
    assert facts.split_values == (("saml:NameID", 8),) and facts.nameid == "jo@example.com.au"
    assert codes(run(facts)) == ["RSP025"]
    clean = parse_untrusted(RESPONSE_XML.replace("<!-- split -->", "").encode(), MESSAGE_LIMITS).getroot()
    assert read_facts(clean, None, response_signed=True, assertion_signed=True, received=[clean]).split_values == ()


def test_error_response_without_assertion_gives_only_its_status() -> None:
    facts = replace(GOOD, status_code="urn:oasis:names:tc:SAML:2.0:status:Requester",
                    status_sub_code="urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy", assertion_present=False)
    found = run(facts)
    assert codes(found) == ["RSP001"]
    assert "NameID format" in (found[0].fix or "")
    assert check_claims(facts, CRM, None) == []


def test_times_within_the_skew_pass_and_beyond_it_fail() -> None:
    facts = replace(GOOD, conditions_not_before=_time(100), conditions_not_on_or_after=_time(-100),
                    subject_confirmations=_bearer(not_on_or_after=_time(-100)), issue_instant=_time(100))
    assert run(facts) == []
    assert codes(run(facts, skew_seconds=60)) == ["RSP008", "RSP009", "RSP010", "RSP011"]
    # the boundary: NotOnOrAfter is exclusive
    assert "RSP009" in codes(run(replace(GOOD, conditions_not_on_or_after=_time(-120))))


def test_issue_instant_lifetime_is_configurable() -> None:
    facts = replace(GOOD, issue_instant=_time(-7200), assertion_issue_instant=_time(-7200))
    assert run(facts) == []
    # the bearer confirmation, counted from the old IssueInstant, also lives too long
    assert codes(run(facts, max_lifetime_seconds=3600)) == ["RSP011", "RSP011", "RSP024"]


def test_context_refuses_a_skew_beyond_five_minutes_and_a_naive_clock() -> None:
    with pytest.raises(ValueError, match="skew"):
        ResponseContext(facts=GOOD, now=NOW, skew_seconds=301)
    with pytest.raises(ValueError, match="time zone"):
        ResponseContext(facts=GOOD, now=datetime(2026, 6, 1, 12, 0))


def test_issuer_fix_names_the_vendor_setting() -> None:
    found = one(run(replace(GOOD, assertion_issuer="https://sts.windows.net/x/", issuer=None), vendor_key="entra"),
                "RSP003")
    assert "Microsoft Entra Identifier" in (found.fix or "")
    assert found.expected == IDP


def test_audience_and_acs_fixes_name_the_vendor_setting() -> None:
    facts = replace(GOOD, audiences=(("https://wrong.example",),), destination="https://wrong.example/acs")
    found = run(facts, vendor_key="okta")
    assert "Audience URI (SP Entity ID)" in (one(found, "RSP013").fix or "")
    assert "Single sign-on URL" in (one(found, "RSP016").fix or "")


def test_a_bearer_addressed_to_the_portal_is_preferred() -> None:
    other = replace(CONFIRMATION, recipient="https://elsewhere.example/acs")
    assert run(replace(GOOD, subject_confirmations=(other, CONFIRMATION))) == []


def test_unsigned_destination_may_be_absent() -> None:
    facts = replace(GOOD, destination=None, response_signed=False)
    assert codes(run(facts)) == ["RSP006"]


def test_without_crm_the_crm_comparisons_stay_quiet() -> None:
    facts = replace(GOOD, audiences=(("https://any.example",),), destination="https://any.example/acs",
                    nameid_format=PERSISTENT)
    assert run(facts, crm=None) == []


def test_unspecified_in_the_record_accepts_any_nameid_format() -> None:
    crm = CRM.model_copy(update={"idp": CRM.idp.model_copy(update={"nameid_format":
                                 "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"})})
    assert run(replace(GOOD, nameid_format=PERSISTENT), crm=crm) == []


def test_values_are_shown_with_invisible_characters_visible() -> None:
    found = one(run(replace(GOOD, nameid="jo@example.com\u200b ")), "RSP021")
    assert "\\u200b" in found.message


# ---- CLM: claims against the CRM record ------------------------------------------------------

def test_required_claim_in_another_case_names_the_case_difference() -> None:
    found = one(claims(*with_attr("AccountNumber")[:-1], Attribute("accountnumber", values=("1",), line=31),
                       vendor="okta"), "CLM001")
    assert "'accountnumber' (letter case)" in found.message
    assert found.severity is Severity.ERROR
    assert "Attribute Statements" in (found.fix or "") and "'AccountNumber'" in (found.fix or "")
    assert found.where is not None and "line 31" in found.where


def test_entra_email_uri_is_named_as_the_uri_form_of_email() -> None:
    attrs = (*(a for a in GOOD_ATTRS if a.name != "Email"), Attribute(ENTRA_EMAIL, values=("jo@example.com",)))
    found = one(claims(*attrs, vendor="entra"), "CLM001")
    assert ENTRA_EMAIL in found.message and "URI form" in found.message
    assert "Namespace left empty" in (found.fix or "")
    assert "CLM003" not in codes(claims(*attrs))  # a near miss is not listed again as an extra claim


def test_friendly_name_never_satisfies_a_claim() -> None:
    attrs = (*(a for a in GOOD_ATTRS if a.name != "AccountNumber"),
             Attribute("urn:oid:1.3.6.1.4.1.99.1", friendly_name="AccountNumber", values=("1",)))
    found = one(claims(*attrs), "CLM001")
    assert "FriendlyName" in found.message


def test_required_claim_absent_without_near_miss_lists_what_was_sent() -> None:
    attrs = tuple(a for a in GOOD_ATTRS if a.name != "AccountNumber")
    found = one(claims(*attrs), "CLM001")
    assert "'AccountNumber' is not sent" in found.message and "'Email'" in (found.actual or "")
    assert "the IdP's attribute mapping" in (found.fix or "")


def test_optional_claim_absent_is_info() -> None:
    crm = record('[[claims]]\nname = "Phone"\n')
    found = one(claims(*GOOD_ATTRS, crm=crm), "CLM002")
    assert found.severity is Severity.INFO
    assert claims(*GOOD_ATTRS, Attribute("Phone", values=("555",)), crm=crm) == []


def test_extra_claims_are_listed_in_one_finding() -> None:
    found = one(claims(*GOOD_ATTRS, Attribute("department", values=("x",)), Attribute("title", values=("y",))),
                "CLM003")
    assert "'department', 'title'" in found.message and found.severity is Severity.INFO


def test_several_values_where_one_is_expected() -> None:
    found = one(claims(*with_attr("Email", "a@example.com", "b@example.com")), "CLM004")
    assert found.severity is Severity.WARNING
    assert claims(*with_attr("LoginTypeId", "1", "2")) == []  # login types may be multi-valued


def test_empty_values() -> None:
    assert one(claims(*with_attr("AccountNumber", "")), "CLM005").severity is Severity.ERROR
    assert "no AttributeValue" in one(claims(*with_attr("AccountNumber")), "CLM005").message
    crm = record('[[claims]]\nname = "Phone"\n')
    assert one(claims(*GOOD_ATTRS, Attribute("Phone", values=(" ",)), crm=crm), "CLM005").severity is \
        Severity.WARNING


@pytest.mark.parametrize(("value", "reason"), [
    ("3", "not one of the biller's login type IDs"),
    (" 1", "surrounding whitespace"),
    ("01", "leading zeros"),
    ("Customer", "the name of login type 1"),
    ("admin", "not an integer"),
])
def test_login_type_not_configured_lists_the_allowed_ids(value: str, reason: str) -> None:
    found = one(claims(*with_attr("LoginTypeId", value)), "CLM006")
    assert reason in found.message
    assert "1 Customer, 2 Property Manager" in found.message
    assert found.expected == "1 Customer, 2 Property Manager"


@pytest.mark.parametrize("value", ["1,2", "1 2", "1, 2", "1;2"])
def test_joined_login_types_have_their_own_code(value: str) -> None:
    found = one(claims(*with_attr("LoginTypeId", value)), "CLM007")
    assert "CLM006" not in codes(claims(*with_attr("LoginTypeId", value)))
    assert "AttributeValue" in (found.fix or "")


def test_joined_login_types_name_unknown_ids() -> None:
    assert "3 is not configured" in one(claims(*with_attr("LoginTypeId", "1,3")), "CLM007").message


def test_a_claim_sent_twice() -> None:
    found = one(claims(*GOOD_ATTRS, Attribute("Email", values=("x@example.com",), line=40)), "CLM008")
    assert found.severity is Severity.WARNING and "2 times" in found.message
    assert codes(check_claims(replace(GOOD, attributes=(Attribute("a"), Attribute("a"))), None, None)) == ["CLM008"]


def test_without_a_record_or_an_assertion_nothing_is_judged() -> None:
    assert claims(Attribute("anything", values=("x",)), crm=None) == []
    assert check_claims(replace(GOOD, assertion_present=False, attributes=()), CRM, None) == []


# ---- read_facts: fixed paths from XML ----------------------------------------------------------

RESPONSE_XML = f"""<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_r1" Version="2.0"
    IssueInstant="{_time(-5)}" Destination="{ACS}" InResponseTo="{REQ}">
  <saml:Issuer>{IDP}</saml:Issuer>
  <samlp:Status><samlp:StatusCode Value="{SUCCESS}"/></samlp:Status>
  <saml:Assertion ID="_a1" Version="2.0" IssueInstant="{_time(-5)}">
    <saml:Issuer>{IDP}</saml:Issuer>
    <saml:Subject>
      <saml:NameID Format="{EMAIL_FORMAT}" SPNameQualifier="{SP}">jo@example.com<!-- split -->.au</saml:NameID>
      <saml:SubjectConfirmation Method="{BEARER}">
        <saml:SubjectConfirmationData Recipient="{ACS}" NotOnOrAfter="{_time(300)}" InResponseTo="{REQ}"
            Address="192.0.2.1"/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions NotBefore="{_time(-5)}" NotOnOrAfter="{_time(300)}">
      <saml:AudienceRestriction><saml:Audience>{SP}</saml:Audience></saml:AudienceRestriction>
      <saml:OneTimeUse/>
    </saml:Conditions>
    <saml:AuthnStatement AuthnInstant="{_time(-60)}" SessionIndex="_s1">
      <saml:AuthnContext><saml:AuthnContextClassRef>urn:x</saml:AuthnContextClassRef></saml:AuthnContext>
    </saml:AuthnStatement>
    <saml:AttributeStatement>
      <saml:Attribute Name="AccountNumber" FriendlyName="acct"><saml:AttributeValue>1234</saml:AttributeValue>
      </saml:Attribute>
      <saml:Attribute Name="Email"><saml:AttributeValue>jo@example.com</saml:AttributeValue></saml:Attribute>
      <saml:Attribute Name="LoginTypeId"><saml:AttributeValue>1</saml:AttributeValue>
        <saml:AttributeValue>2</saml:AttributeValue></saml:Attribute>
    </saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>"""


def parsed(xml: str) -> tuple[etree._Element, etree._Element | None]:
    root = parse_untrusted(xml.encode(), MESSAGE_LIMITS).getroot()
    return root, root.find(f"{{{SAML}}}Assertion")


def test_read_facts_reads_every_field_by_fixed_paths() -> None:
    facts = read_facts(*parsed(RESPONSE_XML), response_signed=True, assertion_signed=True)
    assert (facts.response_id, facts.destination, facts.in_response_to, facts.issuer) == ("_r1", ACS, REQ, IDP)
    assert facts.status_code == SUCCESS and facts.status_sub_code is None
    assert facts.nameid == "jo@example.com.au"  # a comment does not cut the value short
    assert (facts.nameid_format, facts.nameid_sp_name_qualifier) == (EMAIL_FORMAT, SP)
    assert facts.subject_confirmations == (SubjectConfirmation(
        BEARER, ACS, None, _time(300), REQ, "192.0.2.1", line=9),)
    assert facts.audiences == ((SP,),) and facts.one_time_use
    assert facts.authn_statements[0].class_ref == "urn:x"
    assert [(a.name, a.friendly_name, a.values) for a in facts.attributes] == [
        ("AccountNumber", "acct", ("1234",)), ("Email", None, ("jo@example.com",)), ("LoginTypeId", None, ("1", "2"))]
    assert (facts.response_line, facts.assertion_line, facts.nameid_line, facts.attributes[1].line) == (2, 5, 8, 24)
    assert run(facts) == []
    assert check_claims(facts, CRM, None) == []


def test_read_facts_ignores_elements_out_of_place() -> None:
    # A second NameID, Audience and Attribute nested where the fixed paths do not look.
    xml = RESPONSE_XML.replace("<saml:Conditions ", f"""<saml:Advice><saml:Assertion ID="_x" Version="2.0"
        IssueInstant="{_time(0)}"><saml:Issuer>evil</saml:Issuer><saml:Subject><saml:NameID>admin</saml:NameID>
        </saml:Subject></saml:Assertion></saml:Advice><saml:Conditions """)
    facts = read_facts(*parsed(xml), response_signed=True, assertion_signed=True)
    assert facts.nameid == "jo@example.com.au" and facts.assertion_issuer == IDP


def test_read_facts_second_level_status_and_message() -> None:
    xml = f"""<samlp:Response xmlns:samlp="{SAMLP}" ID="_r" Version="2.0" IssueInstant="{_time(0)}"
      Destination="{ACS}" InResponseTo="{REQ}">
      <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder">
        <samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"/></samlp:StatusCode>
        <samlp:StatusMessage>Bad <!-- x -->password</samlp:StatusMessage></samlp:Status></samlp:Response>"""
    root, assertion = parsed(xml)
    facts = read_facts(root, assertion, response_signed=True, assertion_signed=False)
    assert facts.status_sub_code == "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
    assert facts.status_message == "Bad password" and not facts.assertion_present
    found = run(facts)
    assert codes(found) == ["RSP001"] and "Responder / AuthnFailed: 'Bad password'" in found[0].message


@pytest.mark.parametrize("xml", [
    f'<samlp:Response xmlns:samlp="{SAMLP}"/>',
    f'<saml:Assertion xmlns:saml="{SAML}"><saml:Subject/><saml:Conditions><saml:AudienceRestriction/>'
    '</saml:Conditions><saml:AttributeStatement><saml:Attribute/></saml:AttributeStatement></saml:Assertion>',
    '<other xmlns="urn:x"><Issuer/></other>',
])
def test_read_facts_never_raises_on_odd_input(xml: str) -> None:
    root = parse_untrusted(xml.encode(), MESSAGE_LIMITS).getroot()
    for response, assertion in ((root, root), (None, root), (root, None), (None, None)):
        facts = read_facts(response, assertion, response_signed=False, assertion_signed=False)
        run(facts)
        check_claims(facts, CRM, None)


def test_read_facts_of_every_corpus_response_never_raises(corpus: Path) -> None:
    read = 0
    for path in sorted((corpus / "responses").rglob("*.xml")):
        try:
            root = parse_untrusted(path.read_bytes(), MESSAGE_LIMITS).getroot()
        except UnsafeXML:
            continue
        facts = read_facts(root, root.find(f"{{{SAML}}}Assertion"), response_signed=False, assertion_signed=False)
        run(facts, crm=None, idp_entity_id=None, request_id=None)
        read += facts.assertion_present
    assert read > 10


# ---- end to end: our test IdP's response, verified and re-parsed from its signed bytes -------

@pytest.mark.parametrize(("sign", "expected"), [("both", []), ("assertion", ["RSP006"])])
def test_a_response_of_our_idp_passes(sign: str, expected: list[str]) -> None:
    key = make_keypair("idp.test")
    spec = ResponseSpec(issuer=IDP, destination=ACS, audience=SP, in_response_to=REQ, nameid="jo@example.com",
                        nameid_format=EMAIL_FORMAT, session_index="_s1", sign=sign,  # type: ignore[arg-type]
                        claims=(IdPClaim("AccountNumber", ("1234",)), IdPClaim("Email", ("jo@example.com",)),
                                IdPClaim("LoginTypeId", ("1", "2"))))
    ids = iter(f"_id{n}" for n in range(10))
    sent = serialize(build_response(spec, now=NOW, new_id=lambda: next(ids), key=key))
    root = parse_untrusted(sent, MESSAGE_LIMITS).getroot()
    assertion = root.find(f"{{{SAML}}}Assertion")
    assert assertion is not None
    signed = verify(assertion, [key.cert_der]).signed_bytes
    facts = read_facts(root, parse_untrusted(signed, MESSAGE_LIMITS).getroot(),
                       response_signed=sign == "both", assertion_signed=True)
    assert codes(run(facts)) == expected
    assert check_claims(facts, CRM, "okta") == []
