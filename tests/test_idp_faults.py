"""The fault catalogue, end to end: every fault is sent by the running test IdP and judged by the
response validator with a matching CRM record, which must report the fault's declared code. A
fault the validator cannot see is a validator gap, never a skipped test.

Also: the three ways of choosing a fault (persona settings, login page, API), that a fault
reaches exactly one response, and the clear errors for unknown or inapplicable faults."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp import create_app
from idp.faults import CATALOGUE, FaultError, catalogue_markdown, fault
from idp.settings import Persona, Settings, SettingsError
from metadata.crm import CRMRecord, parse_crm
from metadata.saml import SAML
from metadata.xml import MESSAGE_LIMITS, parse_untrusted
from tests.factory import NOW, install_keypair, session_keypair
from tests.helpers import crm_toml
from tests.idp_support import ACS, IDP_BASE, SP_ENTITY, authn_request, form_fields, redirect_path
from validator.report import Report, facts_json
from validator.response_inspection import ResponseOptions, inspect_response_bytes
from validator.response_report import response_report

IDP_ENTITY = f"{IDP_BASE}/metadata"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
RECORD = parse_crm(crm_toml(sp_entity_id=SP_ENTITY, acs_url=ACS, login_types=((1, "Customer"), (2, "Manager")),
                            idp={"entity_id": IDP_ENTITY, "nameid_format": EMAIL_FORMAT}), "crm.toml", "toml")
ALICE = Persona(id="alice", display_name="Alice", nameid="alice@example.com",
                claims={"AccountNumber": "100200300", "Email": "alice@example.com", "LoginTypeId": "1"})
BOB = Persona(id="bob", nameid="bob@example.com",
              claims={"AccountNumber": "100200301", "Email": "bob@example.com", "LoginTypeId": "2"})
SP_KEY = session_keypair("sp-encryption")
OTHER_SP = "https://other.example.com/saml"
OTHER_ACS = "https://other.example.com/saml/acs"


def sp_metadata(entity_id: str, acs: str, *, encryption: bool) -> str:
    cert = base64.b64encode(SP_KEY.cert_der).decode()
    key = (f'<md:KeyDescriptor use="encryption"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
           f"<ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
           "</md:KeyDescriptor>") if encryption else ""
    return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}">'
            '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f'{key}<md:AssertionConsumerService index="0" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            f'Location="{acs}"/></md:SPSSODescriptor></md:EntityDescriptor>')


def make(tmp_path: Path, *, personas: tuple[Persona, ...] = (ALICE, BOB), encryption: bool = True,
         encrypt: bool = False, crm: CRMRecord | None = RECORD, **server: Any) -> Flask:
    (tmp_path / "sp.xml").write_text(sp_metadata(SP_ENTITY, ACS, encryption=encryption))
    (tmp_path / "other.xml").write_text(sp_metadata(OTHER_SP, OTHER_ACS, encryption=False))
    install_keypair(tmp_path / "keys", session_keypair("idp-signing"))  # not a new RSA key per test
    settings = Settings.model_validate({
        "server": {"base_url": IDP_BASE, "key_folder": str(tmp_path / "keys"), "dev_mode": False, **server},
        "personas": [p.model_dump() for p in personas],
        "sps": [{"metadata": "sp.xml", "encrypt": encrypt}, {"metadata": "other.xml"}],
    })
    app = create_app(settings, base=tmp_path, clock=lambda: NOW, crm=crm)
    app.testing = True
    return app


class Login:
    """One SP-initiated login: the request ID the SP sent and the form the IdP answered with."""

    def __init__(self, client: FlaskClient, *, persona: str = "alice", picked: str = "", sp: str = SP_ENTITY,
                 acs: str = ACS, number: int = 0, force_authn: bool = False) -> None:
        self.request_id = f"_req{number:04d}{'0' * 20}"
        stamp = f"{NOW:%Y-%m-%dT%H:%M:%SZ}"
        started = client.get(redirect_path(authn_request(request_id=self.request_id, issuer=sp, acs=acs,
                                                         issue_instant=stamp, force_authn=force_authn)))
        self.page = started
        if started.status_code == 303:
            token = parse_qs(urlsplit(started.headers["Location"]).query)["request"][0]
            self.page = client.post("/login", data={"request": token, "persona": persona, "fault": picked})

    @property
    def status(self) -> int:
        return self.page.status_code

    @property
    def xml(self) -> bytes:
        assert self.status == 200, self.page.get_data(as_text=True)[:500]
        return base64.b64decode(form_fields(self.page.get_data(as_text=True))["SAMLResponse"])


def judge(app: Flask, login: Login, seen: frozenset[str] = frozenset()) -> Report:
    idp = app.extensions["saml_idp"]
    options = ResponseOptions(now=NOW, trusted=tuple(idp.keys.all_certificates()), idp_entity_id=idp.entity_id,
                              sp_key_pem=SP_KEY.key_pem, request_id=login.request_id, is_replay=seen.__contains__)
    return response_report(inspect_response_bytes(login.xml, "test", options, RECORD))


def problems(report: Report) -> list[str]:
    return sorted(f.code for f in report.findings if f.severity.value != "info")


def assertion_id(xml: bytes) -> str:
    root = parse_untrusted(xml, MESSAGE_LIMITS).getroot()
    found = root.find(f"{{{SAML}}}Assertion")
    assert found is not None
    return str(found.get("ID"))


def test_a_response_without_faults_passes_the_validator(tmp_path: Path) -> None:
    app = make(tmp_path)
    assert problems(judge(app, Login(app.test_client()))) == []


@pytest.mark.parametrize("fault_id", list(CATALOGUE))
def test_the_validator_reports_each_faults_declared_code(tmp_path: Path, fault_id: str) -> None:
    app = make(tmp_path)
    client = app.test_client()
    seen: frozenset[str] = frozenset()
    if fault_id == "replay":  # the SP consumed a first response; the IdP sends it again
        seen = frozenset({assertion_id(Login(client, number=1).xml)})
    # ForceAuthn: the login page (and its fault picker) even where an IdP session exists
    login = Login(client, picked=fault_id, number=2, force_authn=True)
    found = problems(judge(app, login, seen))
    assert CATALOGUE[fault_id].code in found, found
    # A fault breaks what its title says and nothing else, except where one implies the other.
    assert set(found) <= {CATALOGUE[fault_id].code, *ALSO.get(fault_id, ())}, found


ALSO = {
    "expired": {"RSP010"},  # the bearer confirmation expires with the assertion
    "issuers-differ": {"RSP003"},  # one of the two Issuers is then not the IdP's
    "replay": {"RSP017"},  # the earlier response answers the earlier request
}


def test_the_catalogue_is_complete_and_every_code_is_a_validator_rule() -> None:
    from validator.findings import rules

    codes = {r.code for r in rules()}
    assert len(CATALOGUE) >= 30
    for chosen in CATALOGUE.values():
        assert chosen.code in codes, chosen.id
        assert chosen.title and chosen.sp_must and chosen.group
    required = {"expired", "not-yet-valid", "lifetime-too-long", "issue-instant-skewed", "wrong-audience",
                "no-audience-restriction", "wrong-recipient", "wrong-destination", "wrong-in-response-to",
                "missing-in-response-to", "unsigned", "signed-by-unknown-key", "tampered-after-signing", "rsa-sha1",
                "sha1-digest", "keyinfo-foreign-certificate", "comment-in-nameid", "replay", "two-assertions",
                "status-responder", "status-authn-failed", "wrong-issuer", "missing-required-claim",
                "claim-wrong-case", "claim-vendor-uri", "unknown-login-type", "login-types-joined",
                "empty-account-number", "nameid-format-mismatch", "encrypted-for-other-key"}
    assert required <= set(CATALOGUE)
    assert len([f for f in CATALOGUE if f.startswith("xsw-")]) >= 3


def test_the_readme_fault_table_is_the_catalogue() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("<!-- fault table: saml-idp faults --format markdown -->\n")
    end = readme.index("<!-- end of fault table -->")
    assert readme[start:end].split("\n", 1)[1] == catalogue_markdown()


# ---- choosing faults ------------------------------------------------------------------------

def test_a_persona_configured_with_faults_always_gets_them(tmp_path: Path) -> None:
    app = make(tmp_path, personas=(ALICE.model_copy(update={"faults": ("expired", "wrong-audience")}), BOB))
    client = app.test_client()
    for number in (1, 2):
        found = problems(judge(app, Login(client, number=number)))
        assert {"RSP009", "RSP013"} <= set(found)
    assert problems(judge(app, Login(app.test_client(), persona="bob", number=3))) == []


def test_persona_settings_refuse_an_unknown_fault_naming_the_valid_ones(tmp_path: Path) -> None:
    from idp.settings import load_settings

    path = tmp_path / "idp.toml"
    path.write_text('[[personas]]\nid = "a"\nnameid = "a@example.com"\nfaults = ["expired", "expird"]\n')
    with pytest.raises(SettingsError, match=r"personas\[0\]\.faults: unknown fault 'expird' \(did you mean "
                                            r"'expired'\?\).*not-yet-valid"):
        load_settings(path, environ={})


def test_the_login_page_offers_the_faults_and_disables_those_the_sp_cannot_take(tmp_path: Path) -> None:
    app = make(tmp_path, encryption=False)
    client = app.test_client()
    started = client.get(redirect_path(authn_request(issue_instant=f"{NOW:%Y-%m-%dT%H:%M:%SZ}")))
    page = client.get(started.headers["Location"]).get_data(as_text=True)
    assert '<select id="fault" name="fault">' in page
    assert '<option value="expired">expired: The assertion expired ten minutes ago (RSP009)</option>' in page
    assert ('<option value="encrypted-for-other-key" disabled title="fault &#39;encrypted-for-other-key&#39; does '
            "not apply: the SP publishes no encryption certificate in its metadata\"") in page


def test_an_unknown_fault_picked_on_the_login_page_is_refused(tmp_path: Path) -> None:
    app = make(tmp_path)
    login = Login(app.test_client(), picked="expird")
    assert login.status == 400 and "Unknown fault &#39;expird&#39;." in login.page.get_data(as_text=True)


def test_an_inapplicable_fault_gets_an_error_page_and_no_response(tmp_path: Path) -> None:
    app = make(tmp_path, encryption=False)
    login = Login(app.test_client(), picked="encrypted-for-other-key")
    body = login.page.get_data(as_text=True)
    assert login.status == 400 and "publishes no encryption certificate" in body and "SAMLResponse" not in body


def test_a_claim_fault_needs_the_claim(tmp_path: Path) -> None:
    plain = Persona(id="plain", nameid="p@example.com", claims={"Email": "p@example.com"})
    app = make(tmp_path, personas=(plain,), crm=None)
    login = Login(app.test_client(), persona="plain", picked="unknown-login-type")
    assert login.status == 400 and "has no login type claim" in login.page.get_data(as_text=True)


def test_replay_needs_an_earlier_response(tmp_path: Path) -> None:
    app = make(tmp_path)
    login = Login(app.test_client(), picked="replay")
    assert login.status == 400 and "there is none yet" in login.page.get_data(as_text=True)


def test_replay_sends_the_earlier_response_byte_for_byte(tmp_path: Path) -> None:
    app = make(tmp_path)
    client = app.test_client()
    first = Login(client, number=1).xml
    assert Login(client, picked="replay", number=2, force_authn=True).xml == first
    # Armed through the API, for a browser that signs in by single sign-on (no login page).
    assert arm(client, fault="replay", sp=SP_ENTITY)[0] == 200
    again = Login(client, number=3)
    assert again.xml == first and "RSP023" in problems(judge(app, again, frozenset({assertion_id(first)})))


def test_another_browser_never_gets_this_browsers_earlier_response(tmp_path: Path) -> None:
    app = make(tmp_path)
    Login(app.test_client(), number=1)
    assert "there is none yet" in Login(app.test_client(), picked="replay", number=2).page.get_data(as_text=True)


def test_an_unknown_login_type_is_one_the_record_lacks(tmp_path: Path) -> None:
    app = make(tmp_path)
    report = judge(app, Login(app.test_client(), picked="unknown-login-type"))
    assert facts_json(report)["response"]["claims"]["LoginTypeId"] == ["3"]  # type: ignore[index,call-overload]


# ---- the API, and no leaks ---------------------------------------------------------------------

def arm(client: FlaskClient, **body: Any) -> tuple[int, dict[str, Any]]:
    answer = client.post("/api/v1/faults", json=body)
    return answer.status_code, json.loads(answer.get_data())


def test_an_armed_fault_reaches_exactly_one_response_of_its_sp_and_persona(tmp_path: Path) -> None:
    app = make(tmp_path)
    client = app.test_client()
    assert arm(client, fault="wrong-audience", sp=SP_ENTITY, persona="alice")[0] == 200
    # Another persona at that SP, and that persona at another SP, get clean responses.
    assert problems(judge(app, Login(app.test_client(), persona="bob", number=1))) == []
    other = Login(app.test_client(), sp=OTHER_SP, acs=OTHER_ACS, number=2)
    assert other.status == 200 and b"other.example.com/saml/\"" not in other.xml
    assert "RSP013" in problems(judge(app, Login(app.test_client(), number=3)))
    assert problems(judge(app, Login(app.test_client(), number=4))) == []  # taken once


def test_a_fault_picked_in_one_browser_never_reaches_another(tmp_path: Path) -> None:
    app = make(tmp_path)
    first, second = app.test_client(), app.test_client()
    assert "RSP009" in problems(judge(app, Login(first, picked="expired", number=1)))
    assert problems(judge(app, Login(second, number=2))) == []
    # Nor the next response in the same browser (single sign-on, no new pick).
    assert problems(judge(app, Login(first, number=3))) == []


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"fault": "expird"}, 400, "did you mean 'expired'"),
    ({"faults": []}, 400, "send JSON"),
    ({"fault": "expired", "colour": "red"}, 400, "unknown keys: colour"),
    ({"fault": "expired", "sp": "https://nobody.example"}, 400, "unknown SP"),
    ({"fault": "expired", "persona": "mallory"}, 400, "unknown persona"),
    ({"fault": "encrypted-for-other-key", "sp": OTHER_SP}, 400, "no encryption certificate"),
    ({"faults": ["replay", "expired"], "sp": SP_ENTITY}, 400, "cannot be combined"),
    ({"fault": "expired"}, 200, '"sp":"any"'),
])
def test_the_api_names_what_is_wrong(tmp_path: Path, body: dict[str, Any], status: int, text: str) -> None:
    answer = make(tmp_path).test_client().post("/api/v1/faults", json=body)
    assert answer.status_code == status and text in answer.get_data(as_text=True).replace(", ", ",")


def test_the_api_needs_the_token_when_one_is_set(tmp_path: Path) -> None:
    client = make(tmp_path, api_token="s3cret").test_client()
    assert client.post("/api/v1/faults", json={"fault": "expired"}).status_code == 401
    armed = client.post("/api/v1/faults", json={"fault": "expired"}, headers={"Authorization": "Bearer s3cret"})
    assert armed.status_code == 200


def test_the_api_lists_the_catalogue(tmp_path: Path) -> None:
    listed = json.loads(make(tmp_path).test_client().get("/api/v1/faults").get_data())
    assert [f["id"] for f in listed] == list(CATALOGUE)
    assert listed[0] == {"id": "expired", "group": "time", "title": CATALOGUE["expired"].title,
                         "sp_must": CATALOGUE["expired"].sp_must, "code": "RSP009", "needs": ["assertion"]}


def test_fault_lookup_names_the_valid_choices() -> None:
    assert fault("expired").code == "RSP009"
    with pytest.raises(FaultError, match="the faults are: expired, not-yet-valid"):
        fault("nothing-like-it")


def test_saml_idp_faults_lists_the_catalogue() -> None:
    from click.testing import CliRunner

    from idp.cli import cli

    text = CliRunner().invoke(cli, ["faults"])
    assert text.exit_code == 0 and "two-assertions" in text.output and "SIG020" in text.output
    listed = json.loads(CliRunner().invoke(cli, ["faults", "--format", "json"]).output)
    assert len(listed) == len(CATALOGUE)
    assert CliRunner().invoke(cli, ["faults", "--format", "markdown"]).output == catalogue_markdown()


def test_the_index_names_the_vendor_the_biller_and_persona_faults(tmp_path: Path) -> None:
    app = make(tmp_path, personas=(ALICE.model_copy(update={"faults": ("expired",)}),), vendor="entra")
    page = app.test_client().get("/").get_data(as_text=True)
    assert "Microsoft Entra ID" in page and "playing the IdP of Test Biller (B-1)" in page
    assert "faults: expired" in page and "signs assertion" in page


# ---- combinations, and the review's cases ------------------------------------------------------

@pytest.mark.parametrize(("faults", "text"), [
    (["status-responder", "wrong-recipient"], "'status-responder' removes the assertion"),
    (["encrypted-for-other-key", "tampered-after-signing"], "removes the plaintext assertion"),
    (["unsigned", "signed-by-unknown-key"], "'unsigned' removes the signatures"),
    (["status-responder", "status-authn-failed"], "cannot be combined"),
])
def test_faults_that_cannot_go_together_are_refused_everywhere(tmp_path: Path, faults: list[str], text: str) -> None:
    app = make(tmp_path)
    status, body = arm(app.test_client(), faults=faults, sp=SP_ENTITY)
    assert status == 400 and text in body["detail"]
    status, body = arm(app.test_client(), faults=faults)  # no SP: judged without one
    assert status == 400 and text in body["detail"]
    with pytest.raises(ValueError, match=text.replace("'", ".")):
        Persona(id="x", nameid="x@example.com", faults=tuple(faults))


def test_a_picked_fault_that_clashes_with_the_personas_own_is_an_error_page_not_a_crash(tmp_path: Path) -> None:
    app = make(tmp_path, personas=(ALICE.model_copy(update={"faults": ("status-responder",)}),))
    login = Login(app.test_client(), picked="comment-in-nameid")
    assert login.status == 400 and "removes the assertion" in login.page.get_data(as_text=True)


def test_an_armed_fault_that_cannot_apply_here_stays_armed_for_its_own_login(tmp_path: Path) -> None:
    app = make(tmp_path)
    assert arm(app.test_client(), fault="encrypted-for-other-key")[0] == 200  # any SP, any persona
    other = Login(app.test_client(), sp=OTHER_SP, acs=OTHER_ACS, number=1)  # that SP has no key
    assert other.status == 200 and b"EncryptedAssertion" not in other.xml
    assert "SIG027" in problems(judge(app, Login(app.test_client(), number=2)))


def test_replay_sends_only_the_same_personas_earlier_response(tmp_path: Path) -> None:
    app = make(tmp_path)
    client = app.test_client()
    Login(client, persona="alice", number=1)
    assert arm(client, fault="replay", persona="bob")[0] == 200
    bob = Login(client, persona="bob", number=2, force_authn=True)
    assert bob.status == 400 and "previous response for bob" in bob.page.get_data(as_text=True)


def test_a_comment_in_an_encrypted_nameid_is_found_after_decryption(tmp_path: Path) -> None:
    app = make(tmp_path, encrypt=True)
    login = Login(app.test_client(), picked="comment-in-nameid")
    assert b"EncryptedAssertion" in login.xml
    report = judge(app, login)
    assert problems(report) == ["RSP025"]
    assert facts_json(report)["response"]["nameid"] == "alice@example.com.evil.test"  # type: ignore[index,call-overload]
