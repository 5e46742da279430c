"""Staff single sign-on (issue 13): the project's own test IdP plays the company IdP, and the
validator signs its staff in with its own SP, verifier and checks."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.settings import Persona, ServiceProvider
from metadata.bindings import decode_redirect
from metadata.store import SQLiteStore
from tests.idp_support import IDP_BASE, login_as, make_idp, sso_path
from validator.auth import audit
from validator.web import create_app
from validator.web.staff_sso import (
    COOKIE,
    VARIABLES,
    StaffSSO,
    staff_sso_from_environment,
)

BASE = "https://validator.test.example"
SP_ENTITY = f"{BASE}/sign-in/sso/metadata"
STAFF_ACS = f"{BASE}/sign-in/sso/acs"
SESSION = "__Host-saml_preflight_session"


class Company:
    """The company IdP (the test IdP) and the validator whose staff sign in with it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.idp_app = make_idp(tmp_path / "idp", sps=(ServiceProvider(entity_id=SP_ENTITY, acs=[STAFF_ACS]),))
        personas = self.idp_app.extensions["saml_idp"].personas
        personas["eve"] = Persona(id="eve", nameid="eve@example.com", claims={"Groups": ["sales"]})
        personas["opaque"] = Persona(id="opaque", nameid="u-4711", claims={"Mail": "Alice@Example.com"})
        self.metadata = self.idp_app.test_client().get("/metadata").get_data()
        self.store = SQLiteStore(tmp_path / "validator.sqlite3")

    def app(self, *, emails: tuple[str, ...] = ("alice@example.com",), group: tuple[str, str] | None = None,
            email_claim: str | None = None) -> Flask:
        sso = StaffSSO(self.metadata, frozenset(emails), group, email_claim)
        app = create_app(crm_folder=self.tmp_path, base_url=BASE, store=self.store, staff_sso=sso)
        app.testing = True
        return app

    def start(self, browser: FlaskClient, next_path: str = "/staff") -> str:
        """/sign-in/sso: the company IdP URL the browser is sent to."""
        started = browser.get(f"/sign-in/sso?next={next_path}", base_url=BASE)
        assert started.status_code == 302, started.get_data(as_text=True)
        location = started.headers["Location"]
        assert location.startswith(f"{IDP_BASE}/sso?SAMLRequest=")
        return str(location)

    def at_idp(self, location: str, persona: str = "alice") -> dict[str, str]:
        """The company IdP signs `persona` in (a fresh IdP session); the auto-POST form's fields."""
        idp = self.idp_app.test_client()
        at_idp = idp.get(sso_path(location))
        assert at_idp.status_code in (302, 303), at_idp.get_data(as_text=True)
        fields = login_as(idp, at_idp.headers["Location"], persona)
        assert fields.pop("_action") == STAFF_ACS
        return fields

    def sign_in(self, browser: FlaskClient, persona: str = "alice") -> Any:
        return post(browser, self.at_idp(self.start(browser), persona))

    def events(self, action: str) -> list[audit.AuditEvent]:
        return audit.events(self.store, now=datetime.now(UTC), action=action)


def post(browser: FlaskClient, fields: dict[str, str]) -> Any:
    return browser.post("/sign-in/sso/acs", data=fields, base_url=BASE)


def signed_in(browser: FlaskClient) -> bool:
    staff = browser.get("/staff", base_url=BASE)
    return bool(staff.status_code == 200)


def codes(response: Any) -> set[str]:
    return set(re.findall(r"\b(?:SIG|RSP|XML|CLM)\d{3}\b", response.get_data(as_text=True)))


@pytest.fixture
def company(tmp_path: Path) -> Company:
    return Company(tmp_path)


def test_an_allowed_email_signs_in_through_the_company_idp(company: Company) -> None:
    browser = company.app().test_client()
    location = company.start(browser)
    request = decode_redirect(urlsplit(location).query, "SAMLRequest").tree.getroot()
    assert request.get("AssertionConsumerServiceURL") == STAFF_ACS
    assert request.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer") == SP_ENTITY
    cookie = browser.get_cookie(COOKIE, domain="validator.test.example")
    assert cookie is not None and cookie.secure and cookie.http_only and cookie.same_site == "None"
    assert not signed_in(browser)

    done = post(browser, company.at_idp(location))
    assert done.status_code == 303, done.get_data(as_text=True)
    assert done.headers["Location"] == "/staff"  # the saved `next`
    assert SESSION in done.headers.get("Set-Cookie", "")
    assert signed_in(browser)
    (event,) = company.events("sign-in")
    assert event.who == "staff:alice@example.com" and "company IdP" in event.detail
    assert browser.get_cookie(COOKIE, domain="validator.test.example") is None  # the pending sign-in is gone


@pytest.mark.parametrize("wanted", ["%2F%2Fevil.example", "%2F%09%2Fevil.example", "https://evil.example/",
                                    "%2F%5Cevil.example"])
def test_after_sign_in_only_a_path_of_this_app(company: Company, wanted: str) -> None:
    browser = company.app().test_client()
    done = post(browser, company.at_idp(company.start(browser, wanted)))
    assert done.status_code == 303 and done.headers["Location"] == "/"


def test_the_sp_metadata_names_the_staff_sp(company: Company) -> None:
    published = company.app().test_client().get("/sign-in/sso/metadata", base_url=BASE)
    assert published.status_code == 200 and published.mimetype == "application/samlmetadata+xml"
    text = published.get_data(as_text=True)
    assert f'entityID="{SP_ENTITY}"' in text and f'Location="{STAFF_ACS}"' in text


def test_the_sign_in_page_offers_the_company_sso(company: Company) -> None:
    page = company.app().test_client().get("/sign-in?next=/staff", base_url=BASE).get_data(as_text=True)
    assert "/sign-in/sso?next=" in page


def test_an_email_not_allowed_is_refused_without_a_session(company: Company) -> None:
    browser = company.app(emails=("bob@example.com",)).test_client()
    refused = company.sign_in(browser)
    assert refused.status_code == 403
    assert "not a staff member here" in refused.get_data(as_text=True)
    assert SESSION not in refused.headers.get("Set-Cookie", "")
    assert not signed_in(browser)
    assert not company.events("sign-in")
    (event,) = company.events("sign-in-refused")
    assert "alice@example.com" in event.detail


def test_a_group_claim_allows(company: Company) -> None:
    browser = company.app(emails=(), group=("Groups", "support")).test_client()
    done = company.sign_in(browser)
    assert done.status_code == 303 and signed_in(browser)
    other = company.app(emails=(), group=("Groups", "support")).test_client()
    assert company.sign_in(other, "eve").status_code == 403  # Groups: sales
    assert not signed_in(other)


def test_the_email_from_a_claim(company: Company) -> None:
    browser = company.app(email_claim="Mail").test_client()
    assert company.sign_in(browser, "opaque").status_code == 303  # NameID u-4711, Mail Alice@Example.com
    (event,) = company.events("sign-in")
    assert event.who == "staff:alice@example.com"
    without = company.app().test_client()  # the NameID is no email
    assert company.sign_in(without, "opaque").status_code == 403


def test_a_replayed_response_is_refused(company: Company) -> None:
    browser = company.app().test_client()
    fields = company.at_idp(company.start(browser))
    assert post(browser, fields).status_code == 303
    again = post(browser, fields)  # the pending sign-in was taken
    assert again.status_code == 401 and "The sign-in was refused" in again.get_data(as_text=True)
    company.start(browser)  # a new sign-in pending: the old response answers another request, and was used
    replayed = post(browser, fields)
    assert replayed.status_code == 401 and {"RSP017", "RSP023"} <= codes(replayed)
    assert len(company.events("sign-in")) == 1 and len(company.events("sign-in-refused")) == 2


def test_a_response_to_another_request_or_none_pending_is_refused(company: Company) -> None:
    app = company.app()
    browser = app.test_client()
    first = company.at_idp(company.start(browser))
    company.start(browser)  # the browser started again: the first request is no longer its pending one
    other = post(browser, first)
    assert other.status_code == 401 and "RSP017" in codes(other)
    assert not signed_in(browser)

    stranger = app.test_client()  # never started a sign-in: nothing is parsed
    fields = company.at_idp(company.start(app.test_client()))
    none = post(stranger, fields)
    assert none.status_code == 401 and "no single sign-on was started in this browser" in none.get_data(as_text=True)
    assert not signed_in(stranger)
    assert "Traceback" not in none.get_data(as_text=True)


def test_a_tampered_response_is_refused_with_a_signature_code(company: Company) -> None:
    browser = company.app().test_client()
    fields = company.at_idp(company.start(browser), "eve")  # eve is not staff; the NameID is rewritten to alice
    xml = base64.b64decode(fields["SAMLResponse"])
    assert xml.count(b">eve@example.com<") == 1
    fields["SAMLResponse"] = base64.b64encode(xml.replace(b">eve@example.com<", b">alice@example.com<")).decode()
    refused = post(browser, fields)
    assert refused.status_code == 401, refused.get_data(as_text=True)
    assert any(code.startswith("SIG") for code in codes(refused))
    assert "Traceback" not in refused.get_data(as_text=True)
    assert not signed_in(browser)
    (event,) = company.events("sign-in-refused")
    assert "SIG" in event.detail


def test_over_plain_http_the_pending_cookie_is_lax(company: Company) -> None:
    sso = StaffSSO(company.metadata, frozenset({"alice@example.com"}))
    app = create_app(crm_folder=company.tmp_path, base_url="http://127.0.0.1:8081", store=company.store,
                     staff_sso=sso)
    started = app.test_client().get("/sign-in/sso")
    assert started.status_code == 302
    cookie = started.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_without_staff_sso_the_routes_are_not_there(tmp_path: Path) -> None:
    app = create_app(crm_folder=tmp_path, base_url=BASE, store=SQLiteStore(tmp_path / "s.sqlite3"))
    client = app.test_client()
    assert client.get("/sign-in/sso").status_code == 404
    assert client.get("/sign-in/sso/metadata").status_code == 404


# --- configuration ---------------------------------------------------------------------------


@pytest.fixture
def metadata_file(company: Company) -> Path:
    path = company.tmp_path / "company-idp.xml"
    path.write_bytes(company.metadata)
    return path


def test_the_environment_loader(metadata_file: Path) -> None:
    assert staff_sso_from_environment({}) is None
    sso = staff_sso_from_environment({"VALIDATOR_STAFF_IDP_METADATA": str(metadata_file),
                                      "VALIDATOR_STAFF_EMAILS": " Ana@Example.com, bo@example.org ,",
                                      "VALIDATOR_STAFF_GROUP": "groups = preflight-staff",
                                      "VALIDATOR_STAFF_EMAIL_CLAIM": "mail"})
    assert sso is not None and sso.metadata == metadata_file.read_bytes()
    assert sso.emails == {"ana@example.com", "bo@example.org"}
    assert sso.group == ("groups", "preflight-staff") and sso.email_claim == "mail"


@pytest.mark.parametrize(("settings", "named"), [
    ({"VALIDATOR_STAFF_EMAILS": "ana@example.com"}, "VALIDATOR_STAFF_IDP_METADATA"),
    ({"VALIDATOR_STAFF_IDP_METADATA": "/nonexistent/idp.xml", "VALIDATOR_STAFF_EMAILS": "ana@example.com"},
     "VALIDATOR_STAFF_IDP_METADATA"),
    ({"VALIDATOR_STAFF_IDP_METADATA": "METADATA"}, "VALIDATOR_STAFF_EMAILS"),
    ({"VALIDATOR_STAFF_IDP_METADATA": "METADATA", "VALIDATOR_STAFF_EMAILS": "not-an-email"},
     "VALIDATOR_STAFF_EMAILS"),
    ({"VALIDATOR_STAFF_IDP_METADATA": "METADATA", "VALIDATOR_STAFF_GROUP": "groups"}, "VALIDATOR_STAFF_GROUP"),
    ({"VALIDATOR_STAFF_IDP_METADATA": "NOT_METADATA", "VALIDATOR_STAFF_EMAILS": "ana@example.com"},
     "VALIDATOR_STAFF_IDP_METADATA"),
])
def test_a_bad_setting_names_its_variable(metadata_file: Path, settings: dict[str, str], named: str) -> None:
    junk = metadata_file.with_name("junk.xml")
    junk.write_text("<html>a login page</html>")
    paths = {"METADATA": str(metadata_file), "NOT_METADATA": str(junk)}
    with pytest.raises(ValueError, match=named):
        staff_sso_from_environment({k: paths.get(v, v) for k, v in settings.items()})


def test_create_app_reads_the_environment(metadata_file: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALIDATOR_STAFF_IDP_METADATA", str(metadata_file))
    monkeypatch.setenv("VALIDATOR_STAFF_EMAILS", "ana@example.com")
    app = create_app(crm_folder=tmp_path, base_url=BASE, store=SQLiteStore(tmp_path / "s.sqlite3"))
    state = app.extensions["saml_validator_web"]
    assert state.staff_sso is not None and state.staff_sso.emails == {"ana@example.com"}
    assert state.sign_in_required
    monkeypatch.setenv("VALIDATOR_STAFF_GROUP", "nothing")
    with pytest.raises(ValueError, match="VALIDATOR_STAFF_GROUP"):
        create_app(crm_folder=tmp_path, base_url=BASE, store=SQLiteStore(tmp_path / "s.sqlite3"))


def test_serve_wires_the_staff_sso_options(metadata_file: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from validator.cli import cli

    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    started: list[Flask] = []
    monkeypatch.setattr(Flask, "run", lambda self, **kwargs: started.append(self))
    store = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    # No staff account: only the company IdP lets anyone in, so a public address is allowed.
    given = CliRunner().invoke(cli, ["serve", "--crm-folder", str(tmp_path), "--store", store, "--host", "0.0.0.0",
                                     "--staff-idp-metadata", str(metadata_file), "--staff-emails", "Ana@Example.com"],
                               env={"VALIDATOR_STAFF_GROUP": "groups=preflight-staff"})
    assert given.exit_code == 0, given.output
    (app,) = started
    state = app.extensions["saml_validator_web"]
    assert state.sign_in_required and state.staff_sso.emails == {"ana@example.com"}
    assert state.staff_sso.group == ("groups", "preflight-staff")
    assert state.staff_sso.metadata == metadata_file.read_bytes()

    bad = CliRunner().invoke(cli, ["serve", "--crm-folder", str(tmp_path), "--store", store,
                                   "--staff-emails", "ana@example.com"])
    assert bad.exit_code == 2 and "--staff-idp-metadata (VALIDATOR_STAFF_IDP_METADATA)" in bad.output
    assert "Traceback" not in bad.output and len(started) == 1
