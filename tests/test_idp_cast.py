"""The cast of personas built from a CRM record (idp.cast): exact claim names, plausible values,
near misses that the validator catches, and settings for `saml-idp serve --crm`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from idp import create_app
from idp.cast import apply_crm, personas_from_crm, sp_from_crm
from idp.settings import DEMO_PERSONAS, Persona, ServiceProvider, Settings
from idp.vendors import idp_entity_id
from metadata.crm import Claim, CRMRecord, load_crm, parse_crm
from metadata.saml import EMAIL, PERSISTENT
from metadata.store import SQLiteStore
from tests.helpers import crm_toml
from tests.idp_support import ACS, IDP_BASE, SP_ENTITY, authn_request, login_as, redirect_path
from validator.checks.claims import check_claims
from validator.findings import Finding
from validator.response_facts import Attribute, ResponseFacts
from validator.response_inspection import ResponseOptions, inspect_response_bytes
from validator.trust import trust_from_metadata

DEMO = Path(__file__).resolve().parents[1] / "validator" / "demo" / "springfield-water.toml"


def record(
    claims: tuple[Claim, ...] | None = None,
    login_types: tuple[tuple[int, str], ...] = ((1, "Customer"), (2, "Property Manager")),
    *,
    idp: dict[str, str | None] | None = None,
    biller: tuple[str, str] = ("B-1", "Test Biller"),
) -> CRMRecord:
    """The tests' CRM record (tests.helpers.crm_toml); `claims` replaces its three claims."""
    built = parse_crm(crm_toml(login_types=login_types, idp=idp, biller=biller), "test.toml", "toml")
    return built if claims is None else built.model_copy(update={"claims": claims})


ODD = (
    Claim(name="accountnumber", required=True),
    Claim(name="Login-Type", required=True, login_type=True),
    Claim(name="e_mail", required=True),
    Claim(name="Given Name"),
    Claim(name="SURNAME"),
    Claim(name="http://schemas.microsoft.com/identity/claims/displayname"),
    Claim(name="mobilePhone"),
    Claim(name="InvoiceNo"),
    Claim(name="region"),
)


def by_id(personas: tuple[Persona, ...]) -> dict[str, Persona]:
    return {p.id: p for p in personas}


def regular(rec: CRMRecord) -> list[Persona]:
    return [p for p in personas_from_crm(rec) if not p.id.startswith("near-miss-")]


def claim_findings(persona: Persona, rec: CRMRecord) -> list[Finding]:
    """The validator's CLM rules on the persona's claims, as an assertion would carry them."""
    attributes = tuple(Attribute(name=name, values=tuple(value) if isinstance(value, list) else (value,))
                       for name, value in persona.claims.items())
    return check_claims(ResponseFacts(attributes=attributes), rec, None)


# --- claim names and values -------------------------------------------------------------------

@pytest.mark.parametrize("rec", [load_crm(DEMO), record(ODD)], ids=["demo", "odd-names"])
def test_every_login_type_persona_sends_exactly_the_record_claim_names(rec: CRMRecord) -> None:
    personas = regular(rec)
    assert [p.id for p in personas] == ["customer-1", "property-manager-2"]
    for persona in personas:
        assert list(persona.claims) == [claim.name for claim in rec.claims]
        assert claim_findings(persona, rec) == []


def test_the_login_type_claim_carries_each_persona_login_type_id() -> None:
    rec = record(ODD, login_types=((7, "Customer"), (12, "Agent"), (3, "Landlord")))
    personas = regular(rec)
    assert [(p.id, p.display_name, p.claims["Login-Type"]) for p in personas] == [
        ("customer-7", "Customer (login type 7)", "7"),
        ("agent-12", "Agent (login type 12)", "12"),
        ("landlord-3", "Landlord (login type 3)", "3"),
    ]


def test_values_follow_the_claim_name_case_insensitively() -> None:
    rec = record(ODD, biller=("B-7", "Müller & Söhne Wasser"))
    persona = by_id(personas_from_crm(rec))["customer-1"]
    values = persona.claims
    assert values["e_mail"] == "customer-1@muller-sohne-wasser.example" == persona.nameid
    assert re.fullmatch(r"[1-9][0-9]{8}", str(values["accountnumber"]))
    assert re.fullmatch(r"[1-9][0-9]{8}", str(values["InvoiceNo"]))
    assert values["accountnumber"] != values["InvoiceNo"]
    assert re.fullmatch(r"\+1-202-555-01[0-9]{2}", str(values["mobilePhone"]))
    first, last = str(values["Given Name"]), str(values["SURNAME"])
    assert first.isalpha() and last.isalpha()
    assert values["http://schemas.microsoft.com/identity/claims/displayname"] == f"{first} {last}"
    assert values["region"] == "region-1"
    assert persona.password == persona.id


def test_each_persona_has_its_own_account_and_address() -> None:
    one, two = regular(load_crm(DEMO))
    assert one.claims["AccountNumber"] != two.claims["AccountNumber"]
    assert (one.nameid, two.nameid) == ("customer-1@springfield-water.example",
                                        "property-manager-2@springfield-water.example")


def test_without_an_email_claim_the_nameid_is_still_an_address() -> None:
    rec = record((Claim(name="AccountNumber", required=True),), idp={"nameid_format": PERSISTENT})
    persona = personas_from_crm(rec)[0]
    assert persona.nameid == "customer-1@test-biller.example"
    assert persona.nameid_format == PERSISTENT
    assert personas_from_crm(record())[0].nameid_format is None  # the record names none: the vendor's


def test_values_are_deterministic() -> None:
    first = [p.model_dump_json() for p in personas_from_crm(load_crm(DEMO))]
    again = [p.model_dump_json() for p in personas_from_crm(load_crm(DEMO))]
    assert first == again
    # Pinned, so that hash() (salted per process) or randomness cannot creep in.
    assert personas_from_crm(load_crm(DEMO))[0].claims["AccountNumber"] == "640327295"


# --- near misses ------------------------------------------------------------------------------

def test_near_miss_claim_case_differs_only_in_one_claim_name_and_the_validator_names_it() -> None:
    rec = load_crm(DEMO)
    personas = by_id(personas_from_crm(rec))
    base, miss = personas["customer-1"], personas["near-miss-claim-case"]
    assert miss.display_name == "Near miss: 'accountNumber' instead of 'AccountNumber'"
    assert list(miss.claims) == ["accountNumber", "Email", "LoginTypeId"]
    assert list(miss.claims.values()) == list(base.claims.values())
    assert miss.nameid == base.nameid
    findings = claim_findings(miss, rec)
    assert [f.code for f in findings] == ["CLM001"]
    assert "'accountNumber'" in findings[0].message


def test_near_miss_login_type_carries_the_smallest_unlisted_id() -> None:
    rec = record(login_types=((1, "Customer"), (2, "Agent"), (4, "Landlord")))
    personas = by_id(personas_from_crm(rec))
    base, miss = personas["customer-1"], personas["near-miss-login-type"]
    assert miss.claims == {**base.claims, "LoginTypeId": "3"}
    assert "login type 3" in miss.display_name and "'LoginTypeId'" in miss.display_name
    assert [f.code for f in claim_findings(miss, rec)] == ["CLM006"]
    only_two = by_id(personas_from_crm(record(login_types=((2, "Agent"),))))
    assert only_two["near-miss-login-type"].claims["LoginTypeId"] == "1"


def test_a_caseless_first_letter_lowercases_the_whole_name() -> None:
    rec = record((Claim(name="顧客ID", required=True),), login_types=((1, "Customer"),))
    miss = by_id(personas_from_crm(rec))["near-miss-claim-case"]
    assert list(miss.claims) == ["顧客id"]
    assert [f.code for f in claim_findings(miss, rec)] == ["CLM001"]


def test_the_wrong_case_never_turns_into_another_claim_of_the_record() -> None:
    names = ("AccountNumber", "accountNumber", "accountnumber")
    rec = record(tuple(Claim(name=n, required=True) for n in names), login_types=((1, "Customer"),))
    miss = by_id(personas_from_crm(rec))["near-miss-claim-case"]
    # AccountNumber's wrong cases are both claims of the record, and so are accountNumber's.
    assert miss.display_name == "Near miss: 'Accountnumber' instead of 'accountnumber'"
    assert list(miss.claims) == ["AccountNumber", "accountNumber", "Accountnumber"]
    assert [f.code for f in claim_findings(miss, rec)] == ["CLM001"]


@pytest.mark.parametrize(("claims", "expected"), [
    ((Claim(name="AccountNumber"), Claim(name="LoginTypeId", login_type=True)), {"near-miss-login-type"}),
    ((Claim(name="1234", required=True), Claim(name="LoginTypeId", login_type=True)), {"near-miss-login-type"}),
    ((Claim(name="AccountNumber", required=True),), {"near-miss-claim-case"}),
    ((), set()),
], ids=["no-required-claim", "no-letters", "no-login-type-claim", "no-claims"])
def test_near_misses_the_record_cannot_express_are_left_out(
    claims: tuple[Claim, ...], expected: set[str]
) -> None:
    ids = {p.id for p in personas_from_crm(record(claims))}
    assert ids - {"customer-1", "property-manager-2"} == expected


def test_a_record_without_claims_gives_personas_without_claims() -> None:
    personas = personas_from_crm(record(()))
    assert [(p.id, p.claims) for p in personas] == [("customer-1", {}), ("property-manager-2", {})]


# --- records without login types, ids ---------------------------------------------------------

def test_without_login_types_one_user_persona_leaves_the_login_type_claim_out() -> None:
    personas = by_id(personas_from_crm(record(login_types=())))
    assert set(personas) == {"user", "near-miss-claim-case"}
    user = personas["user"]
    assert list(user.claims) == ["AccountNumber", "Email"]
    assert user.display_name == "User (the record lists no login types, so 'LoginTypeId' is not sent)"
    assert user.nameid == "user@test-biller.example"
    assert list(personas["near-miss-claim-case"].claims) == ["accountNumber", "Email"]


def test_ids_stay_unique_when_login_type_names_slug_alike() -> None:
    rec = record(login_types=((1, "Customer"), (1, "customer!"), (2, "Customer"), (3, "顧客")))
    personas = personas_from_crm(rec)
    ids = [p.id for p in personas]
    assert ids[:4] == ["customer-1", "customer-1-2", "customer-2", "login-type-3"]
    assert len(set(ids)) == len(ids)
    assert len({p.nameid for p in personas[:4]}) == 4


# --- settings ---------------------------------------------------------------------------------

def test_sp_from_crm_is_an_inline_sp() -> None:
    assert sp_from_crm(load_crm(DEMO)) == ServiceProvider(
        entity_id="https://sso.portal.example/saml", acs=["https://sso.portal.example/saml/acs"], nameid_format=EMAIL)
    assert sp_from_crm(record()).nameid_format is None


def test_apply_crm_replaces_the_personas_and_adds_the_sp_once() -> None:
    rec = load_crm(DEMO)
    other = ServiceProvider(entity_id="https://other.example/sp", acs=["https://other.example/acs"])
    settings = apply_crm(Settings(personas=DEMO_PERSONAS, sps=(other,)), rec)
    assert settings.personas == personas_from_crm(rec)
    assert settings.sps == (other, sp_from_crm(rec))
    assert apply_crm(settings, rec) == settings


def test_apply_crm_keeps_a_configured_sp_with_the_record_entity_id() -> None:
    rec = load_crm(DEMO)
    configured = ServiceProvider(entity_id=rec.sp.entity_id, acs=["https://sso.portal.example/other-acs"],
                                 sign="both")
    assert apply_crm(Settings(sps=(configured,)), rec).sps == (configured,)


def test_apply_crm_plays_the_records_idp_unless_the_settings_name_their_own() -> None:
    rec = load_crm(DEMO)  # vendor adfs, entity ID https://sts.springfieldwater.example/adfs/services/trust
    server = apply_crm(Settings(), rec).server
    assert (idp_entity_id(server), server.vendor) == (rec.idp.entity_id, "adfs")
    own = Settings.model_validate({"server": {"entity_id": "https://idp.test/own", "vendor": "okta"}})
    assert (idp_entity_id(apply_crm(own, rec).server), apply_crm(own, rec).server.vendor) == ("https://idp.test/own",
                                                                                              "okta")
    other = rec.model_copy(update={"idp": rec.idp.model_copy(update={"vendor": "simplesamlphp", "entity_id": None})})
    assert (apply_crm(Settings(), other).server.vendor, apply_crm(Settings(), other).server.entity_id) == (
        "generic", None)  # no profile for SimpleSAMLphp; the IdP's own entity ID


def test_saml_idp_lists_the_cast_of_a_record() -> None:
    from click.testing import CliRunner

    from idp.cli import cli

    listed = CliRunner().invoke(cli, ["users", "--crm", str(DEMO)])
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.output.splitlines()] == [
        "customer-1", "property-manager-2", "near-miss-claim-case", "near-miss-login-type"]


def test_every_persona_signs_in_at_the_idp_and_the_validator_judges_it(tmp_path: Path) -> None:
    """End to end: the IdP runs on apply_crm's settings; the regular personas pass the validator,
    each near miss gives exactly its finding."""
    rec = parse_crm(crm_toml(sp_entity_id=SP_ENTITY, acs_url=ACS, login_types=((1, "Customer"), (2, "Agent")),
                             idp={"entity_id": f"{IDP_BASE}/metadata", "nameid_format": EMAIL}), "t.toml", "toml")
    settings = Settings.model_validate({"server": {"base_url": IDP_BASE, "key_folder": str(tmp_path / "keys"),
                                                   "dev_mode": False}})
    app = create_app(apply_crm(settings, rec), base=tmp_path, store=SQLiteStore(tmp_path / "state.sqlite3"))
    app.testing = True
    expected = {"customer-1": [], "agent-2": [], "near-miss-claim-case": ["CLM001"],
                "near-miss-login-type": ["CLM006"]}
    found: dict[str, list[str]] = {}
    for n, persona in enumerate(personas_from_crm(rec)):
        client = app.test_client()
        request_id = f"_cast_request_{n:04d}"
        first = client.get(redirect_path(authn_request(request_id=request_id)))
        fields = login_as(client, first.headers["Location"], persona.id)
        trust = trust_from_metadata(client.get("/metadata").get_data(), rec)
        options = ResponseOptions(now=datetime.now(UTC), trusted=trust.certificates, idp_entity_id=trust.entity_id,
                                  request_id=request_id)
        inspection = inspect_response_bytes(fields["SAMLResponse"].encode(), "response", options, rec)
        found[persona.id] = [f.code for f in inspection.findings if f.severity != "info"]
    assert found == expected
