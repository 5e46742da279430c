"""Every route of the web app, as every role (issue 13): the exact set of roles each admits.

The table below is the contract: a route missing from it fails, and so does a route that admits
one role more or less than it says. Each request is made from a fresh browser holding only the
role's credential (a session cookie, or an API token), so no request changes another's.
A refusal is recognised by its exact form (a sign-in redirect, the access rule's 401/403, or the
404 that a biller one may not see shares with a page that does not exist); anything else (a 400
about the body, a redirect to an IdP) means the route let the request through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from metadata.store import SQLiteStore
from tests.helpers import crm_toml
from validator.auth import invites, staff, tokens
from validator.web import create_app
from validator.web.access import routes
from validator.web.login_result import RESULTS_NS, VIEWS_NS, LoginView

NOW = datetime.now(UTC).replace(microsecond=0)
PASSWORD = "correct horse battery staple"
STAFF_EMAIL = "ana@portal.example"
A, B = "B-A", "B-B"

ROLES = ("anonymous", "partner A", "partner B", "staff", "token read all", "token write all", "token read A",
         "token write A")
EVERYONE = frozenset(ROLES)
PARTNER_A = frozenset({"partner A", "staff"})
SIGNED_IN = frozenset({"partner A", "partner B", "staff"})
TOKENS = frozenset({"token read all", "token write all", "token read A", "token write A"})
STAFF_ONLY = frozenset({"staff"})

# (method, path as the url_map spells it) -> the roles it admits, with A's IDs in its variables.
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/api/v1/openapi.json"): EVERYONE,
    ("POST", "/test-sp/acs"): EVERYONE,
    ("GET", "/test-sp/metadata"): EVERYONE,  # without ?biller=: the test SP's own metadata
    ("GET", "/sign-in"): EVERYONE,
    ("POST", "/sign-in"): EVERYONE,
    ("GET", "/invite/<token>"): EVERYONE,
    ("GET", "/sign-in/sso"): EVERYONE,
    ("GET", "/sign-in/sso/metadata"): EVERYONE,
    ("POST", "/sign-in/sso/acs"): EVERYONE,
    ("POST", "/sign-out"): SIGNED_IN,
    ("GET", "/"): SIGNED_IN,
    ("POST", "/check/metadata"): SIGNED_IN,
    ("POST", "/check/response"): SIGNED_IN,
    ("POST", "/discover"): SIGNED_IN,
    ("GET", "/discover/interview"): SIGNED_IN,
    ("POST", "/discover/interview"): SIGNED_IN,
    ("GET", "/partners/<biller_id>"): PARTNER_A,
    ("GET", "/partners/<biller_id>/report"): PARTNER_A,
    ("GET", "/partners/<biller_id>/discover"): PARTNER_A,
    ("POST", "/partners/<biller_id>/metadata"): PARTNER_A,
    ("POST", "/partners/<biller_id>/metadata/choose"): PARTNER_A,
    ("GET", "/partners/<biller_id>/metadata/<int:number>"): PARTNER_A,
    ("GET", "/test-login/<biller_id>"): PARTNER_A,
    ("GET", "/test-logins/<login_id>"): PARTNER_A,
    ("GET", "/api/v1/partners"): SIGNED_IN | TOKENS,
    ("POST", "/api/v1/metadata"): SIGNED_IN | TOKENS,
    ("POST", "/api/v1/responses"): SIGNED_IN | TOKENS,
    ("POST", "/api/v1/discover"): SIGNED_IN | TOKENS,
    ("GET", "/api/v1/partners/<biller_id>/report"): PARTNER_A | TOKENS,
    ("GET", "/api/v1/test-logins/<login_id>"): PARTNER_A | TOKENS,
    ("GET", "/api/v1/audit"): STAFF_ONLY,
    ("GET", "/staff"): STAFF_ONLY,
    ("GET", "/staff/invites"): STAFF_ONLY,
    ("POST", "/staff/invites"): STAFF_ONLY,
    ("POST", "/staff/invites/<invite_id>/revoke"): STAFF_ONLY,
    ("GET", "/staff/tokens"): STAFF_ONLY,
    ("POST", "/staff/tokens"): STAFF_ONLY,
    ("POST", "/staff/tokens/<name>/revoke"): STAFF_ONLY,
    ("GET", "/staff/audit"): STAFF_ONLY,
    ("GET", "/staff/records"): STAFF_ONLY,
    ("POST", "/staff/records"): STAFF_ONLY,
    ("GET", "/staff/records/<biller_id>"): PARTNER_A,
    ("POST", "/staff/sweep"): STAFF_ONLY,
}


@dataclass
class World:
    app: Flask
    invite_tokens: dict[str, str]
    """Partner role → its invite link's token (each call opens it afresh: a new session)."""
    bearers: dict[str, str]
    values: dict[str, str]

    def session(self, role: str) -> str | None:
        """A new session for `role` (signing out in one call must not sign out the next)."""
        if role == "staff":
            return _staff_session(self.app)
        token = self.invite_tokens.get(role)
        return _invite_session(self.app, token) if token else None


def _record(biller: str, name: str) -> str:
    # No metadata URL: the go-live report answers "no IdP metadata" without fetching anything.
    return crm_toml(biller=(biller, name), idp={"entity_id": f"https://idp.{biller.lower()}.example",
                                                              "sso_url": f"https://idp.{biller.lower()}.example/sso"})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    folder = tmp_path_factory.mktemp("access")
    crm = folder / "crm"
    crm.mkdir()
    (crm / f"{A}.toml").write_text(_record(A, "Alpha Water"))
    (crm / f"{B}.toml").write_text(_record(B, "Beta Power"))
    store = SQLiteStore(folder / "s.sqlite3")
    staff.add_staff(store, STAFF_EMAIL, PASSWORD, now=NOW)
    app = create_app(crm_folder=crm, base_url="https://preflight.example", store=store, clock=lambda: NOW)
    app.testing = True
    invite_tokens = {}
    for role, biller in (("partner A", A), ("partner B", B)):
        _, invite_tokens[role] = invites.create_invite(store, biller, created_by="test", now=NOW)
    bearers = {}
    for role, scope, access in (("token read all", None, "read"), ("token write all", None, "write"),
                                ("token read A", frozenset({A}), "read"), ("token write A", frozenset({A}), "write")):
        _, secret = tokens.create_token(store, role.replace(" ", "-"), billers=scope, access=access,  # type: ignore[arg-type]
                                        created_by="test", now=NOW)
        bearers[role] = secret
    revocable, _ = invites.create_invite(store, A, created_by="test", now=NOW)
    tokens.create_token(store, "victim", billers=None, access="read", created_by="test", now=NOW)
    view = LoginView(biller_id=A, biller_name="Alpha Water")
    store.put(VIEWS_NS, "a" * 32, view.json())
    store.put(RESULTS_NS, "a" * 32, json.dumps({"verdict": "ready", "findings": []}).encode())
    values = {"biller_id": A, "login_id": "a" * 32, "number": "1", "invite_id": revocable.id, "name": "victim",
              "token": "x" * 43}
    return World(app, invite_tokens, bearers, values)


def _cookie(response: Any) -> str:
    found = re.search(r"__Host-saml_preflight_session=([^;]+)", response.headers.get("Set-Cookie", ""))
    assert found, response.headers
    return found.group(1)


def _csrf(client: FlaskClient) -> str:
    page = client.get("/sign-in", base_url="https://preflight.example")
    found = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True))
    assert found
    return found.group(1)


def _staff_session(app: Flask) -> str:
    client = app.test_client()
    signed = client.post("/sign-in", data={"csrf": _csrf(client), "email": STAFF_EMAIL, "password": PASSWORD},
                         base_url="https://preflight.example")
    assert signed.status_code == 303, signed.get_data(as_text=True)
    return _cookie(signed)


def _invite_session(app: Flask, token: str) -> str:
    opened = app.test_client().get(f"/invite/{token}", base_url="https://preflight.example")
    assert opened.status_code == 303, opened.get_data(as_text=True)
    return _cookie(opened)


REFUSALS = {
    401: ("Sign in first", "sign in, or send an API token"),
    403: ("This page is not open to you.", "this call is not open to you"),
    # A biller (or a test login) one may not see is answered exactly as one that does not exist.
    404: ("There is no CRM record for biller", "There is no test login with this ID",
          "there is no test login with this ID"),
}


def refused(response: Any) -> bool:
    if response.status_code in (302, 303):
        return str(response.headers.get("Location", "")).startswith("/sign-in?next=")
    marks = REFUSALS.get(response.status_code)
    return marks is not None and any(mark in response.get_data(as_text=True) for mark in marks)


def _path(rule: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: values[m.group(1)], rule)


def call(world: World, role: str, method: str, rule: str) -> Any:
    client = world.app.test_client()
    headers = {}
    session = world.session(role)
    if session:
        client.set_cookie("__Host-saml_preflight_session", session, domain="preflight.example")
    if role in world.bearers:
        headers["Authorization"] = f"Bearer {world.bearers[role]}"
    path = _path(rule, world.values)
    kwargs: dict[str, Any] = {"base_url": "https://preflight.example", "headers": headers}
    if method == "POST" and path.startswith("/api/"):
        kwargs["json"] = {}
    elif method == "POST":
        kwargs["data"] = {"csrf": _csrf(client)}
    return client.open(path, method=method, **kwargs)


def walked(app: Flask) -> Iterator[tuple[str, str]]:
    for url_rule, _ in routes(app):
        for method in sorted((url_rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, url_rule.rule


def test_every_route_is_in_the_table_and_the_table_has_no_stale_route(world: World) -> None:
    assert sorted(walked(world.app)) == sorted(EXPECTED)


@pytest.mark.parametrize(("method", "rule"), sorted(EXPECTED))
def test_each_route_admits_exactly_its_roles(world: World, method: str, rule: str) -> None:
    admitted = {role for role in ROLES if not refused(call(world, role, method, rule))}
    assert admitted == set(EXPECTED[(method, rule)]), f"{method} {rule}"


def test_a_route_that_declares_no_rule_stops_the_app_from_starting(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from validator.web import access

    bare = Flask("bare", static_folder=None)
    bare.add_url_rule("/declared", "declared", access.allow(access.PUBLIC)(lambda: "ok"))
    access.check_declared(bare)  # every route declares: it starts
    bare.add_url_rule("/undeclared", "undeclared", lambda: "no rule")
    with pytest.raises(access.UndeclaredRoute, match="/undeclared"):
        access.check_declared(bare)
    checked: list[Flask] = []
    monkeypatch.setattr(access, "check_declared", checked.append)
    built = create_app(crm_folder=tmp_path, store=SQLiteStore(tmp_path / "s.sqlite3"))
    assert checked == [built]  # create_app asks, every time
