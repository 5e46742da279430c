"""A real browser through a real SP-initiated login: headless Chromium (Debian's ``chromium``,
driven by Playwright) opens a python3-saml service provider's login link, lands on the test
IdP's persona picker, picks alice, follows the auto-POST form to the SP's ACS, and the SP
accepts the response. The SP's unsigned logout then asks the person before the IdP session
ends, and the SP accepts the IdP's LogoutResponse.

Both peers are served over real HTTP on 127.0.0.1 by werkzeug in threads; the IdP runs in
dev mode, which allows the SP's http ACS on 127.0.0.1. Playwright never downloads a browser
here: it starts ``/usr/bin/chromium`` (``apt-get install chromium``), or the tests skip.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, redirect, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from idp import create_app
from idp.settings import Persona, ServiceProvider, Settings
from metadata.saml import EMAIL
from metadata.store import SQLiteStore
from tests.idp_support import ALICE, idp_key, pem_body

TIMEOUT_MS = 10_000
RELAY_STATE = "/invoices/42"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BOB = Persona(id="bob", display_name="Bob Property Manager", password="bob-pw", nameid="bob@example.com",
              claims={"AccountNumber": "100200301", "Email": "bob@example.com", "LoginTypeId": "2"})
EXPECTED_CLAIMS = {k: v if isinstance(v, list) else [v] for k, v in ALICE.claims.items()}


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _not_ready(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"not ready"]


def _bind() -> BaseWSGIServer:
    # Bound first, so that each app can be built knowing both ports; its app is set afterwards.
    return make_server("127.0.0.1", 0, _not_ready, threaded=True, request_handler=_Quiet)


def _origin(server: BaseWSGIServer) -> str:
    return f"http://127.0.0.1:{server.server_port}"


@dataclass
class ServiceProviderApp:
    """A minimal python3-saml service provider: ``/login`` sends an AuthnRequest by
    HTTP-Redirect and remembers its ID; ``/acs`` validates the POSTed response against the
    IdP's certificate and that ID, and shows who signed in with which claims."""

    origin: str
    idp_origin: str
    idp_cert_pem: bytes
    outstanding: list[str] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    logouts: list[str] = field(default_factory=list)
    """IDs of the LogoutRequests sent, and (in `logged_out`) those whose LogoutResponse was accepted."""
    logged_out: list[str] = field(default_factory=list)

    @property
    def entity_id(self) -> str:
        return f"{self.origin}/metadata"

    @property
    def acs(self) -> str:
        return f"{self.origin}/acs"

    @property
    def sls(self) -> str:
        return f"{self.origin}/sls"

    def metadata(self) -> str:
        """Registered at the IdP: an ACS and a SingleLogoutService, no signing key (it cannot sign its logout)."""
        return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{self.entity_id}">'
                '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
                f'<md:SingleLogoutService Binding="{REDIRECT}" Location="{self.sls}"/>'
                f'<md:AssertionConsumerService index="0" Binding="{POST}" Location="{self.acs}"/>'
                "</md:SPSSODescriptor></md:EntityDescriptor>")

    def settings(self) -> Any:
        from onelogin.saml2.settings import OneLogin_Saml2_Settings

        return OneLogin_Saml2_Settings({
            "strict": True,
            "sp": {"entityId": self.entity_id, "assertionConsumerService": {"url": self.acs, "binding": POST},
                   "singleLogoutService": {"url": self.sls, "binding": REDIRECT}, "NameIDFormat": EMAIL},
            "idp": {"entityId": f"{self.idp_origin}/metadata",
                    "singleSignOnService": {"url": f"{self.idp_origin}/sso", "binding": REDIRECT},
                    "singleLogoutService": {"url": f"{self.idp_origin}/slo", "binding": REDIRECT},
                    "x509cert": pem_body(self.idp_cert_pem)},
            "security": {"wantAssertionsSigned": True, "rejectDeprecatedAlgorithm": True},
        }, sp_validation_only=True)

    def app(self) -> Flask:
        app = Flask("test_sp")

        @app.get("/login")
        def login() -> Any:
            from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
            from onelogin.saml2.utils import OneLogin_Saml2_Utils

            authn = OneLogin_Saml2_Authn_Request(self.settings())
            self.outstanding.append(authn.get_id())
            return redirect(OneLogin_Saml2_Utils.redirect(
                f"{self.idp_origin}/sso", {"SAMLRequest": authn.get_request(), "RelayState": RELAY_STATE}), 302)

        @app.post("/acs")
        def acs() -> Response:
            from onelogin.saml2.response import OneLogin_Saml2_Response

            # http_host carries the port: python3-saml's `server_port` key is deprecated.
            request_data = {"http_host": request.host, "script_name": request.path}
            expected_id = self.outstanding[-1] if self.outstanding else None
            try:
                response = OneLogin_Saml2_Response(self.settings(), request.form["SAMLResponse"])
                response.is_valid(request_data, expected_id, raise_exceptions=True)
            except Exception as exc:
                page = f"<h1>The SP rejected the response</h1><p id='error'>{html.escape(str(exc))}</p>"
                return Response(page, status=403, mimetype="text/html")
            nameid, claims = response.get_nameid(), response.get_attributes()
            self.accepted.append({"nameid": nameid, "claims": claims, "in_response_to": expected_id})
            rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(', '.join(v))}</td></tr>"
                           for k, v in sorted(claims.items()))
            page = (f"<!doctype html><title>Test SP</title><h1 id='who'>signed in as {html.escape(nameid)}</h1>"
                    f"<p>RelayState: <code id='relay'>{html.escape(request.form.get('RelayState', ''))}</code></p>"
                    f"<table id='claims'>{rows}</table>")
            return Response(page, mimetype="text/html")

        @app.get("/logout")
        def logout() -> Any:
            from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
            from onelogin.saml2.utils import OneLogin_Saml2_Utils

            sent = OneLogin_Saml2_Logout_Request(self.settings(), name_id=self.accepted[-1]["nameid"],
                                                 name_id_format=EMAIL)
            self.logouts.append(sent.id)
            return redirect(OneLogin_Saml2_Utils.redirect(
                f"{self.idp_origin}/slo", {"SAMLRequest": sent.get_request(), "RelayState": RELAY_STATE}), 302)

        @app.get("/sls")
        def sls() -> Response:
            from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response

            request_data = {"http_host": request.host, "script_name": request.path, "get_data": request.args,
                            "query_string": request.query_string.decode()}
            response = OneLogin_Saml2_Logout_Response(self.settings(), request.args["SAMLResponse"])
            try:
                if "Signature" not in request.args:
                    raise ValueError("the LogoutResponse is not signed")
                response.is_valid(request_data, self.logouts[-1], raise_exceptions=True)
            except Exception as exc:
                page = f"<h1>The SP rejected the LogoutResponse</h1><p id='error'>{html.escape(str(exc))}</p>"
                return Response(page, status=403, mimetype="text/html")
            self.logged_out.append(response.get_in_response_to())
            return Response("<!doctype html><title>Test SP</title><h1 id='signed-out'>signed out</h1>"
                            f"<p>RelayState: <code id='relay'>{html.escape(request.args.get('RelayState', ''))}</code>",
                            mimetype="text/html")

        return app


@dataclass
class Peers:
    idp_origin: str
    sp: ServiceProviderApp


def _serve(server: BaseWSGIServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    folder = tmp_path_factory.mktemp("idp-browser")
    idp_server, sp_server = _bind(), _bind()
    idp_origin, sp_origin = _origin(idp_server), _origin(sp_server)
    sp = ServiceProviderApp(origin=sp_origin, idp_origin=idp_origin, idp_cert_pem=b"")
    (folder / "sp.xml").write_text(sp.metadata())
    settings = Settings.model_validate({
        "server": {"base_url": idp_origin, "key_folder": str(folder / "keys"), "dev_mode": True},
        "personas": [ALICE.model_dump(), BOB.model_dump()],
        "sps": [ServiceProvider(metadata="sp.xml").model_dump()],
    })
    store = SQLiteStore(folder / "state.sqlite3")
    idp_app = create_app(settings, base=folder, store=store)
    sp.idp_cert_pem = idp_key(idp_app).cert_pem
    idp_server.app, sp_server.app = idp_app, sp.app()
    threads = [_serve(idp_server), _serve(sp_server)]
    try:
        yield Peers(idp_origin=idp_origin, sp=sp)
    finally:
        for server in (idp_server, sp_server):
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)
        store.close()


def _csp_problems(page: Any) -> list[str]:
    """Console messages of CSP violations (a blocked form submission or script shows here)."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    return problems


def test_chromium_signs_in_at_a_python3_saml_sp(browser: Any, peers: Peers, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        csp_problems = _csp_problems(page)
        auto_post: list[Any] = []
        page.on("response", lambda r: auto_post.append(r)
                if r.url == f"{peers.idp_origin}/login" and r.request.method == "POST" else None)

        page.goto(f"{peers.sp.origin}/login")
        assert page.url.startswith(f"{peers.idp_origin}/login?request="), page.url
        assert page.get_by_role("heading", name="Sign in", exact=True).is_visible()
        assert page.get_by_text(peers.sp.acs).is_visible()
        page.screenshot(path=tmp_path / "idp-login.png", full_page=True)

        page.get_by_role("button", name="Sign in as alice").click()
        page.wait_for_url(peers.sp.acs)  # through the auto-POST page, by its script
        page.screenshot(path=tmp_path / "sp-acs.png", full_page=True)

        assert page.locator("#who").inner_text() == "signed in as alice@example.com", page.content()
        assert page.locator("#relay").inner_text() == RELAY_STATE
        claims_text = page.locator("#claims").inner_text()
        for name, values in EXPECTED_CLAIMS.items():
            assert f"{name}\t{', '.join(values)}" in claims_text
        assert peers.sp.accepted[-1] == {"nameid": "alice@example.com", "claims": EXPECTED_CLAIMS,
                                         "in_response_to": peers.sp.outstanding[-1]}

        # The auto-POST page allowed exactly the ACS origin as a form target, and nothing was blocked.
        assert len(auto_post) == 1
        csp = auto_post[0].header_value("content-security-policy") or ""
        assert f"form-action {peers.sp.origin};" in csp, csp
        assert csp_problems == []

        # The IdP session: a second login at the SP goes straight back to the ACS, no picker.
        before = len(peers.sp.accepted)
        page.goto(f"{peers.sp.origin}/login", wait_until="commit")  # the auto-POST page replaces itself
        page.wait_for_url(peers.sp.acs)
        assert page.locator("#who").inner_text() == "signed in as alice@example.com"
        assert len(peers.sp.accepted) == before + 1
        assert peers.sp.accepted[-1]["in_response_to"] == peers.sp.outstanding[-1]
    finally:
        context.close()


def test_without_javascript_the_continue_button_posts_to_the_acs(browser: Any, peers: Peers) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{peers.sp.origin}/login")
        page.get_by_role("button", name="Sign in as alice").click()
        page.wait_for_url(f"{peers.idp_origin}/login")
        # Playwright's text and role engines skip <noscript>: find the button by CSS.
        assert "JavaScript is off" in page.inner_text("body")
        page.locator("form button[type=submit]").click()
        page.wait_for_url(peers.sp.acs)
        assert page.locator("#who").inner_text() == "signed in as alice@example.com", page.content()
    finally:
        context.close()


def test_a_fault_picked_in_the_browser_is_refused_by_the_sp(browser: Any, peers: Peers, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{peers.sp.origin}/login")
        picker = page.get_by_label("Fault to send")
        assert picker.is_visible()
        # The SP publishes no encryption key: that fault is offered but cannot be chosen.
        assert page.locator('option[value="encrypted-for-other-key"]').is_disabled()
        picker.select_option("wrong-audience")
        page.screenshot(path=tmp_path / "idp-fault-picker.png", full_page=True)
        before = len(peers.sp.accepted)
        page.get_by_role("button", name="Sign in as bob").click()
        page.wait_for_url(peers.sp.acs)
        assert "is not a valid audience" in page.locator("#error").inner_text(), page.content()
        assert len(peers.sp.accepted) == before
    finally:
        context.close()


def test_an_unsigned_logout_asks_first_and_works_without_javascript(browser: Any, peers: Peers, tmp_path: Path) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1000, "height": 700})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        csp_problems = _csp_problems(page)
        page.goto(f"{peers.sp.origin}/login")
        page.get_by_role("button", name="Sign in as alice").click()
        page.wait_for_url(f"{peers.idp_origin}/login")
        page.locator("form button[type=submit]").click()  # the auto-POST form's <noscript> button
        page.wait_for_url(peers.sp.acs)

        page.goto(f"{peers.sp.origin}/logout")  # python3-saml's LogoutRequest, unsigned
        assert page.url.startswith(f"{peers.idp_origin}/slo?"), page.url
        assert page.get_by_role("heading", name="Sign out of the test IdP?").is_visible()
        page.screenshot(path=tmp_path / "idp-logout-confirm.png", full_page=True)
        assert peers.sp.logged_out[-1:] != peers.sp.logouts[-1:]  # nothing answered yet

        page.get_by_role("button", name="Sign out").click()  # posts here, redirected to the SP's SLO URL
        page.wait_for_url(f"{peers.sp.sls}?*")
        assert page.locator("#signed-out").is_visible(), page.content()
        assert page.locator("#relay").inner_text() == RELAY_STATE
        assert peers.sp.logged_out[-1] == peers.sp.logouts[-1]
        assert csp_problems == []

        page.goto(f"{peers.sp.origin}/login")  # the IdP session ended: the persona picker again
        assert page.url.startswith(f"{peers.idp_origin}/login?request="), page.url
    finally:
        context.close()


# ---- issue 17: claims edited at login ----------------------------------------------------------

def _personas(peers: Peers) -> dict[str, Any]:
    import json
    from urllib.request import urlopen

    with urlopen(f"{peers.idp_origin}/api/v1/personas", timeout=5) as answer:
        return {p["id"]: p for p in json.load(answer)}


@pytest.mark.parametrize("javascript", [True, False], ids=["with-javascript", "without-javascript"])
def test_an_edited_claim_reaches_the_sp_and_the_persona_keeps_its_own(
    browser: Any, peers: Peers, tmp_path: Path, javascript: bool
) -> None:
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1000, "height": 900},
                                  permissions=["clipboard-read", "clipboard-write"] if javascript else [])
    edited = "999000111" if javascript else "999000222"
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        csp_problems = _csp_problems(page)
        page.goto(f"{peers.sp.origin}/login")
        page.get_by_role("link", name="Edit claims, then sign in as alice").click()
        assert page.get_by_role("heading", name="Sign in as Alice, with edits").is_visible()
        values = page.get_by_label("AccountNumber: values")
        assert values.input_value() == ALICE.claims["AccountNumber"]
        values.fill(edited)
        page.get_by_label("Groups: values").fill("billing\nadmin")
        page.screenshot(path=tmp_path / "idp-edit-claims.png", full_page=True)
        before = len(peers.sp.accepted)
        page.get_by_role("button", name="Sign in as alice with these claims").click()
        if not javascript:
            page.wait_for_url(f"{peers.idp_origin}/login")
            page.locator("form button[type=submit]").click()  # the auto-POST form's <noscript> button
        page.wait_for_url(peers.sp.acs)

        assert len(peers.sp.accepted) == before + 1, page.content()
        assert peers.sp.accepted[-1]["claims"] == {**EXPECTED_CLAIMS, "AccountNumber": [edited],
                                                   "Groups": ["billing", "admin"]}
        assert _personas(peers)["alice"]["claims"] == ALICE.claims  # the persona in the settings is unchanged

        page.goto(f"{peers.idp_origin}/debug")
        assert page.locator(".edited").first.inner_text().lower() == "edited"
        assert f"AccountNumber: '100200300' → '{edited}'" in page.inner_text("body")
        case = page.locator("#case-1")
        assert f'"AccountNumber": "{edited}"' in case.inner_text()
        copy = page.get_by_role("button", name="Copy as a test case")
        if javascript:
            copy.first.click()
            page.wait_for_function("document.querySelector('button[data-copy=\"case-1\"]').textContent == 'Copied'")
            assert f'"AccountNumber": "{edited}"' in page.evaluate("navigator.clipboard.readText()")
        else:
            assert copy.count() == 0  # hidden without a script: the JSON is there to select
        page.screenshot(path=tmp_path / "idp-debug-edited.png", full_page=True)
        assert csp_problems == []
    finally:
        context.close()


def test_an_sp_registered_on_the_page_signs_in_without_a_restart(browser: Any, peers: Peers, tmp_path: Path) -> None:
    """A second python3-saml SP, unknown to the IdP's settings: a person pastes its metadata at /sps
    (no JavaScript), checks it, registers it, and a login from it is accepted at once."""
    server = _bind()
    other = ServiceProviderApp(origin=_origin(server), idp_origin=peers.idp_origin, idp_cert_pem=peers.sp.idp_cert_pem)
    server.app = other.app()
    thread = _serve(server)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1000, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{other.origin}/login")
        assert "REQ011" in page.inner_text("body")  # not registered yet: the IdP says so
        page.goto(f"{peers.idp_origin}/sps")
        page.get_by_label("SP metadata (XML)").fill(other.metadata())
        page.get_by_label("Your name (kept with the change)").fill("Dana")
        page.get_by_role("button", name="Check").click()
        assert page.locator("#checked-entity").inner_text() == other.entity_id
        assert "No error: this SP can be registered." in page.inner_text("#message")
        page.get_by_role("button", name="Register").click()
        assert page.inner_text("#message") == f"Registered {other.entity_id}."
        assert "Dana" in page.inner_text("#changes")
        page.screenshot(path=tmp_path / "idp-sps-registered.png", full_page=True)

        page.goto(f"{other.origin}/login")
        page.get_by_role("button", name="Sign in as alice").click()
        page.wait_for_url(f"{peers.idp_origin}/login")
        page.locator("form button[type=submit]").click()  # the auto-POST form's <noscript> button
        page.wait_for_url(other.acs)
        assert page.locator("#who").inner_text() == "signed in as alice@example.com", page.content()
        assert other.accepted[-1]["claims"] == EXPECTED_CLAIMS
    finally:
        context.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
