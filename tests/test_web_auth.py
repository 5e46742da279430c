"""Signing in, partner links, tokens, sessions and the audit trail of the web app (issue 13)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from metadata.store import SQLiteStore
from tests.helpers import crm_toml
from tests.test_web import good_metadata
from validator.auth import audit, invites, staff, tokens
from validator.cli import cli
from validator.web import create_app
from validator.web.partners import list_partners
from validator.web.state import LOCAL_BANNER

BASE = "https://preflight.example"
PASSWORD = "correct horse battery staple"
EMAIL = "ana@portal.example"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SQLiteStore:
    return SQLiteStore(tmp_path / "s.sqlite3")


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "crm"
    folder.mkdir()
    for biller, name in (("B-A", "Alpha Water"), ("B-B", "Beta Power")):
        (folder / f"{biller}.toml").write_text(crm_toml(biller=(biller, name), idp={
            "entity_id": "https://idp.example.com/saml", "sso_url": "https://idp.example.com/sso"}))
    return folder


@pytest.fixture
def app(tmp_path: Path, store: SQLiteStore, clock: Clock) -> Flask:
    staff.add_staff(store, EMAIL, PASSWORD, now=clock())
    flask_app = create_app(crm_folder=_folder(tmp_path), base_url=BASE, store=store, clock=clock)
    flask_app.testing = True
    return flask_app


def _client(app: Flask) -> FlaskClient:
    return app.test_client()


def _get(client: FlaskClient, path: str, **kwargs: Any) -> Any:
    return client.get(path, base_url=BASE, **kwargs)


def _csrf(client: FlaskClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', _get(client, "/sign-in").get_data(as_text=True))
    assert found
    return found.group(1)


def _sign_in(client: FlaskClient, email: str = EMAIL, password: str = PASSWORD) -> Any:
    return client.post("/sign-in", data={"csrf": _csrf(client), "email": email, "password": password}, base_url=BASE)


def _session_cookie(response: Any) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("__Host-saml_preflight_session=") and "Max-Age=0" not in header:
            return str(header)
    raise AssertionError(response.headers)


def _trail(store: SQLiteStore, clock: Clock) -> list[audit.AuditEvent]:
    return audit.events(store, now=clock())


# --- staff sign-in ---------------------------------------------------------------------------------


def test_staff_sign_in_sets_a_safe_cookie_rotates_the_session_and_is_audited(app: Flask, store: SQLiteStore,
                                                                              clock: Clock) -> None:
    client = _client(app)
    assert _get(client, "/staff").headers["Location"] == "/sign-in?next=%2Fstaff"
    first = _sign_in(client)
    assert first.status_code == 303 and first.headers["Location"] == "/"
    cookie = _session_cookie(first)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert _get(client, "/staff").status_code == 200
    old_id = cookie.split(";")[0].split("=", 1)[1]
    again = _sign_in(client)  # signing in again: a new session ID, and the old one is gone
    new_id = _session_cookie(again).split(";")[0].split("=", 1)[1]
    assert new_id != old_id
    stale = _client(app)
    stale.set_cookie("__Host-saml_preflight_session", old_id, domain="preflight.example")
    assert _get(stale, "/staff").status_code == 303  # the old ID is no session
    [event, *_] = _trail(store, clock)
    assert (event.action, event.who, event.address) == ("sign-in", f"staff:{EMAIL}", "127.0.0.1")


@pytest.mark.parametrize(("email", "password"), [(EMAIL, "wrong password!!"), ("nobody@portal.example", PASSWORD)])
def test_a_wrong_password_and_an_unknown_email_get_the_same_refusal(app: Flask, email: str, password: str) -> None:
    refused = _sign_in(_client(app), email, password)
    assert refused.status_code == 401
    text = refused.get_data(as_text=True)
    assert "The email or password is not right" in text and "Set-Cookie" not in str(
        [h for h in refused.headers if h[0] == "Set-Cookie" and "session" in h[1]])


def test_a_forged_session_cookie_is_no_session(app: Flask) -> None:
    client = _client(app)
    client.set_cookie("__Host-saml_preflight_session", "A" * 43, domain="preflight.example")
    assert _get(client, "/staff").status_code == 303
    assert _get(client, "/api/v1/partners").status_code == 401


def test_sign_in_comes_back_only_to_this_apps_own_pages(app: Flask) -> None:
    client = _client(app)
    for wanted, landing in (("/staff/audit", "/staff/audit"), ("https://evil.example/", "/"), ("//evil.example", "/"),
                            ("/\t/evil.example", "/"), ("%2F%09%2Fevil.example", "/"), ("/\\evil.example", "/"),
                            ("/x\n/y", "/")):
        signed = client.post("/sign-in", base_url=BASE, data={"csrf": _csrf(client), "email": EMAIL,
                                                              "password": PASSWORD, "next": wanted})
        assert signed.headers["Location"] == landing, wanted


# --- partner links ------------------------------------------------------------------------------------


def test_a_partner_link_shows_its_own_biller_only(app: Flask, store: SQLiteStore, clock: Clock) -> None:
    invite, token = invites.create_invite(store, "B-A", created_by="test", now=clock())
    client = _client(app)
    opened = _get(client, f"/invite/{token}")
    assert opened.status_code == 303 and opened.headers["Location"] == "/partners/B-A"
    assert _get(client, "/").headers["Location"] == "/partners/B-A"
    page = _get(client, "/partners/B-A").get_data(as_text=True)
    assert "Alpha Water" in page and "Set up your IdP" in page and "/test-sp/metadata?biller=B-A" in page
    for path in ("/partners/B-B", "/partners/B-B/report", "/test-login/B-B", "/api/v1/partners/B-B/report"):
        answer, unknown = _get(client, path), _get(client, path.replace("B-B", "B-Z"))
        assert answer.status_code == unknown.status_code == 404, path
        assert "Beta" not in answer.get_data(as_text=True), path  # nothing of B-B but the ID the URL holds
        # exactly what a biller that does not exist gets: nothing tells them apart
        assert answer.get_data(as_text=True).replace("B-B", "?") == unknown.get_data(as_text=True).replace("B-Z", "?")
    listed = _get(client, "/api/v1/partners").get_json()
    assert [p["biller_id"] for p in listed] == ["B-A"]
    assert [(e.action, e.who, e.biller_id) for e in _trail(store, clock)][-1] == (
        "invite-used", f"invite:{invite.id}", "B-A")


def test_a_partner_naming_another_biller_in_a_form_is_told_it_does_not_exist(app: Flask, store: SQLiteStore,
                                                                             clock: Clock) -> None:
    _, token = invites.create_invite(store, "B-A", created_by="test", now=clock())
    client = _client(app)
    _get(client, f"/invite/{token}")
    answer = client.post("/api/v1/responses", base_url=BASE, json={"response": "<x/>", "biller": "B-B"})
    assert answer.status_code == 400
    unknown = client.post("/api/v1/responses", base_url=BASE, json={"response": "<x/>", "biller": "B-Z"})
    assert answer.get_json()["detail"].replace("B-B", "?") == unknown.get_json()["detail"].replace("B-Z", "?")


def test_an_expired_or_revoked_link_is_refused_without_naming_the_biller(app: Flask, store: SQLiteStore,
                                                                         clock: Clock) -> None:
    invite, token = invites.create_invite(store, "B-A", days=1, created_by="test", now=clock())
    client = _client(app)
    assert _get(client, f"/invite/{token}").status_code == 303
    assert _get(client, "/partners/B-A").status_code == 200
    invites.revoke_invite(store, invite.id, by="test", now=clock())
    assert _get(client, "/partners/B-A").status_code == 303  # its session ended with it
    refused = _get(_client(app), f"/invite/{token}")
    assert refused.status_code == 404
    text = refused.get_data(as_text=True)
    assert "This link cannot be used" in text and "B-A" not in text and "Alpha" not in text
    _, later = invites.create_invite(store, "B-A", days=1, created_by="test", now=clock())
    clock.now += timedelta(days=1, seconds=1)
    expired = _get(_client(app), f"/invite/{later}")
    assert expired.status_code == 404 and "This link cannot be used" in expired.get_data(as_text=True)


def test_staff_create_and_revoke_an_invite_in_the_app(app: Flask, store: SQLiteStore, clock: Clock) -> None:
    client = _client(app)
    _sign_in(client)
    created = client.post("/staff/invites", base_url=BASE, data={"csrf": _csrf(client), "biller": "B-B",
                                                                 "days": "7"})
    assert created.status_code == 201
    url = re.search(r'id="invite-url">([^<]+)<', created.get_data(as_text=True))
    assert url and url.group(1).startswith(f"{BASE}/invite/")
    partner = _client(app)
    assert _get(partner, url.group(1).removeprefix(BASE)).headers["Location"] == "/partners/B-B"
    [invite] = invites.list_invites(store, "B-B")
    revoked = client.post(f"/staff/invites/{invite.id}/revoke", base_url=BASE, data={"csrf": _csrf(client)})
    assert revoked.status_code == 200
    assert _get(partner, "/partners/B-B").status_code == 303
    actions = [e.action for e in _trail(store, clock)]
    assert {"invite-created", "invite-used", "invite-revoked"} <= set(actions)


# --- tokens ---------------------------------------------------------------------------------------------


def test_a_token_reads_only_its_billers_and_never_a_page(app: Flask, store: SQLiteStore, clock: Clock) -> None:
    _, secret = tokens.create_token(store, "ci", billers=frozenset({"B-A"}), access="read", created_by="t",
                                    now=clock())
    client = _client(app)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert [p["biller_id"] for p in _get(client, "/api/v1/partners", headers=bearer).get_json()] == ["B-A"]
    assert _get(client, "/api/v1/partners/B-B/report", headers=bearer).status_code == 404
    assert _get(client, "/partners/B-A", headers=bearer).status_code == 303  # pages take sessions only
    for header in ("Bearer spf_" + "x" * 43, "Bearer nonsense", "Basic dXNlcjpwYXNz", f"Token {secret}"):
        refused = _get(client, "/api/v1/partners", headers={"Authorization": header})
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer"), header
    tokens.revoke_token(store, "ci", now=clock())
    assert _get(client, "/api/v1/partners", headers=bearer).status_code == 401


# --- the audit trail ----------------------------------------------------------------------------------


def test_uploads_test_logins_and_downloads_are_in_the_trail_and_staff_read_it(app: Flask, store: SQLiteStore,
                                                                              clock: Clock) -> None:
    invite, token = invites.create_invite(store, "B-A", created_by="test", now=clock())
    partner = _client(app)
    _get(partner, f"/invite/{token}")
    assert _get(partner, "/test-login/B-A").status_code == 302
    page = _get(partner, "/partners/B-A").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    uploaded = partner.post("/partners/B-A/metadata", base_url=BASE, data={
        "csrf": csrf.group(1), "metadata_text": good_metadata().decode(), "uploaded_by": "pat@alpha.example"})
    assert uploaded.status_code == 303, uploaded.get_data(as_text=True)
    assert _get(partner, "/partners/B-A/report").status_code == 200
    staff_client = _client(app)
    _sign_in(staff_client)
    lines = _get(staff_client, "/api/v1/audit?biller_id=B-A").get_data(as_text=True).splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["action"] for e in events] == ["report-download", "metadata-upload", "test-login", "invite-used"]
    from validator import uploaded_metadata

    (version,) = uploaded_metadata.versions(store, "B-A")
    assert version.uploaded_by == f"invite:{invite.id} (pat@alpha.example)"  # who signed in, then what they said
    assert {e["who"] for e in events} == {f"invite:{invite.id}"} and {e["address"] for e in events} == {"127.0.0.1"}
    page = _get(staff_client, "/staff/audit?action=test-login").get_data(as_text=True)
    assert "test-login" in page and "report-download" not in page.split("<table>", 1)[-1]
    assert _get(partner, "/api/v1/audit").status_code == 403
    assert _get(partner, "/staff/audit").status_code == 403


# --- local mode -----------------------------------------------------------------------------------------


def test_without_a_staff_account_the_app_is_local_and_says_so(tmp_path: Path, store: SQLiteStore) -> None:
    local = create_app(crm_folder=_folder(tmp_path), store=store)
    page = local.test_client().get("/").get_data(as_text=True)
    assert LOCAL_BANNER in page.replace("&#39;", "'")
    assert local.test_client().get("/", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 403


def test_serve_refuses_a_public_address_until_a_staff_account_exists(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    refused = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--store", url, "--crm-folder", str(tmp_path)])
    assert refused.exit_code == 2 and "staff add EMAIL" in refused.output


def test_the_first_staff_account_turns_sign_in_on_without_a_restart(tmp_path: Path, store: SQLiteStore,
                                                                     clock: Clock,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from validator.web import state

    monkeypatch.setattr(state, "SIGN_IN_RECHECK_SECONDS", 0.0)
    local = create_app(crm_folder=_folder(tmp_path), base_url=BASE, store=store, clock=clock)
    assert _get(local.test_client(), "/staff").status_code == 200  # local mode: its operator
    staff.add_staff(store, EMAIL, PASSWORD, now=clock())  # `saml-validate staff add` on the same store
    client = local.test_client()
    assert _get(client, "/staff").headers["Location"] == "/sign-in?next=%2Fstaff"
    assert LOCAL_BANNER not in _get(client, "/sign-in").get_data(as_text=True).replace("&#39;", "'")
    assert _sign_in(client).status_code == 303 and _get(client, "/staff").status_code == 200


# --- staff change records and run the sweep ------------------------------------------------------------


def _staff(app: Flask) -> FlaskClient:
    client = _client(app)
    assert _sign_in(client).status_code == 303
    return client


def test_staff_add_and_replace_a_record_and_the_replaced_one_is_kept(app: Flask, store: SQLiteStore,
                                                                     clock: Clock) -> None:
    client = _staff(app)
    folder = app.extensions["saml_validator_web"].crm_folder
    new = crm_toml(biller=("B-C", "Gamma Gas"), idp={"entity_id": "https://idp.gamma.example"})
    added = client.post("/staff/records", base_url=BASE, data={"csrf": _csrf(client), "record_text": new})
    assert added.status_code == 201 and "was added" in added.get_data(as_text=True)
    assert (folder / "B-C.toml").read_text() == new
    old = (folder / "B-A.toml").read_text()
    changed = old.replace("Alpha Water", "Alpha Water and Sewer")
    replaced = client.post("/staff/records", base_url=BASE, data={"csrf": _csrf(client), "record_text": changed})
    assert replaced.status_code == 201
    [kept] = folder.glob("B-A.toml.*.bak")
    assert kept.read_text() == old and (folder / "B-A.toml").read_text() == changed
    assert [p.biller_id for p in list_partners(folder)] == ["B-A", "B-B", "B-C"]  # the kept copy is no record
    events = [(e.action, e.biller_id) for e in _trail(store, clock)]
    assert ("record-change", "B-C") in events and ("record-change", "B-A") in events


def test_a_record_that_does_not_parse_is_not_saved_and_says_where(app: Flask) -> None:
    client = _staff(app)
    folder = app.extensions["saml_validator_web"].crm_folder
    before = sorted(p.name for p in folder.iterdir())
    bad = crm_toml(biller=("B-A", "Alpha")).replace("[idp]\n", "[idp]\nentity_idd = \"x\"\n")
    refused = client.post("/staff/records", base_url=BASE, data={"csrf": _csrf(client), "record_text": bad})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Not saved" in text and "entity_idd" in text
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_read_only_folder_is_said_so_and_nothing_changes(app: Flask) -> None:
    import os

    if os.geteuid() == 0:  # root writes through file modes: make the write fail another way
        folder = app.extensions["saml_validator_web"].crm_folder
        (folder / "B-C.json").write_text("{}")  # the biller already has a JSON record
        record = crm_toml(biller=("B-C", "Gamma Gas"), idp={"entity_id": "https://idp.gamma.example"})
        client = _staff(app)
        refused = client.post("/staff/records", base_url=BASE, data={"csrf": _csrf(client), "record_text": record})
        assert refused.status_code == 409 and "already holds B-C.json" in refused.get_data(as_text=True)
        assert not (folder / "B-C.toml").exists()
        return
    folder = app.extensions["saml_validator_web"].crm_folder
    folder.chmod(0o555)
    try:
        client = _staff(app)
        record = crm_toml(biller=("B-C", "Gamma Gas"), idp={"entity_id": "https://idp.gamma.example"})
        refused = client.post("/staff/records", base_url=BASE, data={"csrf": _csrf(client), "record_text": record})
        assert refused.status_code == 409 and "cannot be written here" in refused.get_data(as_text=True)
    finally:
        folder.chmod(0o755)


def test_a_partner_downloads_its_own_record_only_and_staff_run_the_sweep(app: Flask, store: SQLiteStore,
                                                                          clock: Clock) -> None:
    _, token = invites.create_invite(store, "B-A", created_by="test", now=clock())
    partner = _client(app)
    _get(partner, f"/invite/{token}")
    own = _get(partner, "/staff/records/B-A")
    assert own.status_code == 200 and b"Alpha Water" in own.data
    assert _get(partner, "/staff/records/B-B").status_code == 404
    assert partner.post("/staff/sweep", base_url=BASE, data={"csrf": _csrf(partner)}).status_code == 403
    client = _staff(app)
    swept = client.post("/staff/sweep", base_url=BASE, data={"csrf": _csrf(client)})
    assert swept.status_code == 200 and "B-A" in swept.get_data(as_text=True)
    assert ("sweep-run", None) in [(e.action, e.biller_id) for e in _trail(store, clock)]


def test_removing_a_staff_account_ends_its_open_sessions(app: Flask, store: SQLiteStore) -> None:
    client = _staff(app)
    assert _get(client, "/staff").status_code == 200
    assert staff.remove_staff(store, EMAIL)
    assert _get(client, "/staff").status_code == 303  # back to sign-in: the session is gone
