"""The ``/sps`` page: check, register, replace or cancel, delete; the token when the IdP has one; and
cross-site posts refused (a token bound to the page's own cookie, and the browser's Origin)."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp import registrations
from metadata.saml import BINDING_POST
from tests.idp_support import IDP_BASE, SP_ENTITY, make_idp
from tests.sp_support import NEW_ACS, NEW_SP, sp_metadata

TOKEN = "page-token"


def csrf(client: FlaskClient) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', client.get("/sps").get_data(as_text=True))
    assert found
    return found.group(1)


def send(client: FlaskClient, action: str, **fields: object) -> TestResponse:
    data = {"csrf": csrf(client), "action": action, **fields}
    return client.post("/sps", data=data, content_type="multipart/form-data")


def text(answer: TestResponse) -> str:
    return html.unescape(answer.get_data(as_text=True))


def registered(app: Flask) -> list[str]:
    return [sp.entity_id for sp in app.extensions["saml_idp"].registry]


def hidden_fields(page: str) -> dict[str, str]:
    section = page.split('id="confirm"', 1)[1].split("</form>", 1)[0]
    return {m.group(1): html.unescape(m.group(2))
            for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', section)}


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make_idp(tmp_path)


def test_the_page_has_a_form_a_list_and_a_cookie_bound_token(app: Flask) -> None:
    answer = app.test_client().get("/sps")
    page = text(answer)
    assert answer.status_code == 200 and 'enctype="multipart/form-data"' in page
    assert SP_ENTITY in page and "in idp.toml" in page and "<script" not in page
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("__Host-idp_sps_csrf=") and "Path=/;" in cookie and "Secure" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "form-action 'self'" in answer.headers["Content-Security-Policy"]
    assert "script-src" not in answer.headers["Content-Security-Policy"]
    assert 'name="api_token"' not in page  # no token configured, none asked for


def test_check_shows_the_findings_and_registers_nothing(app: Flask) -> None:
    client = app.test_client()
    bad = sp_metadata(acs=[(BINDING_POST, "http://new-sp.example.com/acs")])
    answer = send(client, "check", metadata=bad)
    page = text(answer)
    assert answer.status_code == 200 and "SPM005" in page and "cannot be registered" in page
    assert NEW_SP in page and "http://new-sp.example.com/acs" in page and "Fix:" in page
    good = text(send(client, "check", metadata=sp_metadata()))
    assert "No error: this SP can be registered." in good and NEW_ACS in good
    assert registered(app) == [SP_ENTITY]


def test_register_then_delete(app: Flask) -> None:
    client = app.test_client()
    answer = send(client, "register", metadata=sp_metadata(), by="Dana", sign="response")
    assert answer.status_code == 200 and f"Registered {NEW_SP}." in text(answer)
    assert registered(app) == [SP_ENTITY, NEW_SP]
    sp = app.extensions["saml_idp"].registry.get(NEW_SP)
    assert sp.source == "page" and sp.registered_by == "Dana" and sp.options.sign == "response"
    page = text(client.get("/sps"))
    assert "registered" in page.split("Last changes", 1)[1] and "via page, by Dana" in page
    deleted = send(client, "delete", entity_id=NEW_SP)
    assert deleted.status_code == 200 and f"Deleted {NEW_SP}." in text(deleted)
    assert registered(app) == [SP_ENTITY]
    assert "deleted" in text(client.get("/sps")).split("Last changes", 1)[1]


def test_an_uploaded_file_registers(app: Flask) -> None:
    client = app.test_client()
    upload = (io.BytesIO(sp_metadata().encode("utf-16")), "sp.xml")  # UTF-16 too: the parser reads it
    answer = send(client, "register", metadata_file=upload)
    assert answer.status_code == 200, text(answer)
    assert registered(app) == [SP_ENTITY, NEW_SP]


def test_an_existing_entity_id_asks_replace_or_cancel(app: Flask) -> None:
    client = app.test_client()
    send(client, "register", metadata=sp_metadata(), by="Dana")
    other = "https://new-sp.example.com/saml/acs2"
    asked = send(client, "register", metadata=sp_metadata(acs=[(BINDING_POST, other)]), by="Eve")
    page = text(asked)
    assert asked.status_code == 409 and "Replace it with this metadata?" in page and "by Dana" in page
    assert 'value="replace"' in page and 'value="cancel"' in page
    sp = app.extensions["saml_idp"].registry.get(NEW_SP)
    assert [a.location for a in sp.sp.acs] == [NEW_ACS]  # nothing replaced yet

    confirm = hidden_fields(asked.get_data(as_text=True))
    assert confirm["entity_id"] == NEW_SP and other in confirm["metadata"] and confirm["by"] == "Eve"
    cancelled = client.post("/sps", data={**confirm, "action": "cancel"})
    assert "nothing was changed" in text(cancelled)
    assert [a.location for a in app.extensions["saml_idp"].registry.get(NEW_SP).sp.acs] == [NEW_ACS]

    replaced = client.post("/sps", data={**confirm, "action": "replace"})
    assert replaced.status_code == 200 and f"Replaced {NEW_SP}." in text(replaced)
    sp = app.extensions["saml_idp"].registry.get(NEW_SP)
    assert [a.location for a in sp.sp.acs] == [other] and sp.registered_by == "Eve"


def test_a_file_sp_has_no_delete_button_and_is_refused(app: Flask) -> None:
    client = app.test_client()
    answer = send(client, "delete", entity_id=SP_ENTITY)
    assert answer.status_code == 403 and "idp.toml" in text(answer)
    replaced = send(client, "register", metadata=sp_metadata(SP_ENTITY, [(BINDING_POST, NEW_ACS)]))
    assert replaced.status_code == 409 and "idp.toml" in text(replaced) and 'value="replace"' not in text(replaced)


@pytest.mark.parametrize(("fields", "said"), [
    ({"metadata": sp_metadata(), "by": "Dana\x07"}, '"by" contains a control or unassigned character'),
    ({"metadata": sp_metadata(), "entity_id": "x\x00"}, '"entity_id" contains a control or unassigned character'),
    ({"metadata": sp_metadata(), "metadata_url": "https://sp.example.com/md"}, "one way"),
    ({}, "one way"),
    ({"metadata": sp_metadata(), "sign": "everything"}, '"sign"'),
])
def test_bad_fields_are_named(app: Flask, fields: dict[str, str], said: str) -> None:
    answer = send(app.test_client(), "register", **fields)
    assert answer.status_code == 400 and said in text(answer)
    assert registered(app) == [SP_ENTITY]


def test_metadata_over_the_body_cap_is_refused_with_what_to_do(app: Flask) -> None:
    big = sp_metadata().replace("<md:SPSSODescriptor", "<!--" + "x" * 300_000 + "--><md:SPSSODescriptor")
    answer = send(app.test_client(), "register", metadata=big)
    assert answer.status_code == 413 and "256 KiB" in text(answer) and "URL" in text(answer)


def test_an_error_refuses_the_registration(app: Flask) -> None:
    answer = send(app.test_client(), "register", metadata=sp_metadata(), encrypt="true")
    assert answer.status_code == 400 and "SPM006" in text(answer)
    assert registered(app) == [SP_ENTITY]


# -- the token, and cross-site posts ---------------------------------------------------------------

def test_with_an_api_token_changes_ask_for_it(tmp_path: Path) -> None:
    app = make_idp(tmp_path, api_token=TOKEN)
    client = app.test_client()
    assert 'name="api_token"' in text(client.get("/sps"))
    assert send(client, "check", metadata=sp_metadata()).status_code == 200  # a check changes nothing
    for token in ({}, {"api_token": "wrong"}):
        refused = send(client, "register", metadata=sp_metadata(), **token)
        assert refused.status_code == 403 and "API token" in text(refused)
    assert registered(app) == [SP_ENTITY]
    assert send(client, "register", metadata=sp_metadata(), api_token=TOKEN).status_code == 200
    assert send(client, "delete", entity_id=NEW_SP).status_code == 403
    assert send(client, "replace", metadata=sp_metadata()).status_code == 403
    assert registered(app) == [SP_ENTITY, NEW_SP]
    assert send(client, "delete", entity_id=NEW_SP, api_token=TOKEN).status_code == 200
    assert registered(app) == [SP_ENTITY]


def test_a_post_without_the_pages_token_is_refused(app: Flask) -> None:
    client = app.test_client()
    token = csrf(client)
    fields = {"action": "register", "metadata": sp_metadata()}
    assert client.post("/sps", data=fields).status_code == 403  # no token
    assert client.post("/sps", data={**fields, "csrf": "0" * 64}).status_code == 403  # a made-up one
    fresh = app.test_client()  # another browser: its own cookie, so this token is worth nothing there
    fresh.get("/sps")
    assert fresh.post("/sps", data={**fields, "csrf": token}).status_code == 403
    assert registered(app) == [SP_ENTITY]
    assert client.post("/sps", data={**fields, "csrf": token}).status_code == 200


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}])
def test_a_cross_site_post_is_refused_even_with_the_token(app: Flask, headers: dict[str, str]) -> None:
    client = app.test_client()
    fields = {"action": "register", "metadata": sp_metadata(), "csrf": csrf(client)}
    answer = client.post("/sps", data=fields, headers=headers)
    assert answer.status_code == 403 and "not posted from this page" in text(answer)
    assert client.post("/sps", data=fields, headers={"Origin": IDP_BASE}).status_code == 200
    assert registered(app) == [SP_ENTITY, NEW_SP]


def test_an_unknown_action_is_refused(app: Flask) -> None:
    assert send(app.test_client(), "launch").status_code == 400


def test_the_page_lists_the_last_changes_newest_first(app: Flask) -> None:
    client = app.test_client()
    send(client, "register", metadata=sp_metadata(), by="first")
    send(client, "delete", entity_id=NEW_SP, by="second")
    changes = text(client.get("/sps")).split("Last changes", 1)[1]
    assert changes.index("second") < changes.index("first")
    assert len(registrations.changes(app.extensions["saml_idp"])) == 2


def test_over_http_in_dev_mode_the_cookie_is_the_pages_own(tmp_path: Path) -> None:
    app = make_idp(tmp_path, base_url="http://127.0.0.1:8080", dev_mode=True)
    client = app.test_client()
    cookie = client.get("/sps").headers["Set-Cookie"]
    assert cookie.startswith("idp_sps_csrf=") and "Path=/sps" in cookie and "Secure" not in cookie
    assert send(client, "register", metadata=sp_metadata()).status_code == 200
