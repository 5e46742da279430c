"""Access control (issue 13) in a real browser, against the real servers: what staff and a
partner see, and that a partner's browser never receives a word about another biller.

The console-script servers run as subprocesses on free ports, their stores and keys in a
temporary folder: the test IdP as partner A's IdP (``saml-idp serve --crm`` with A's record, so
it plays A's cast), the test IdP again as the company IdP staff sign in with (``saml-idp serve
--config``, the validator's staff SP its one SP), and the validator (``saml-validate serve --dev
--crm-folder … --port … --store sqlite:///… --staff-idp-metadata … --staff-emails …``; ``--dev``
because the records name the IdP on http://127.0.0.1, as examples/billers/local-idp.toml does).
Before the validator starts, a staff account is made with the real command line
(``saml-validate staff add EMAIL --store …``, the password on standard input), which turns
sign-in on. A headless Chromium (the ``browser`` fixture of tests/conftest.py) then plays staff
and, in a browser context of its own, the partner:

- staff sign in on /sign-in, open Staff › Partner invites, create A's link and read it from the
  page; the partner opens it, lands on A's page, runs a test login through the IdP's persona
  picker and reads the verdict;
- the same partner is refused on B's pages, B's test login (and its result) and B's API calls,
  each refusal byte for byte what a biller that does not exist gets (the ID asked for aside);
  the API's partner list names A only; staff pages are 403;
- a link that expired, and one staff revoked on the page (which also ends the session it had
  opened), each get the page that says the link cannot be used, naming no biller;
- staff sign in through the company IdP (``/sign-in/sso``); a user of that IdP who is not an
  allowed staff email is refused, with no session.

The leak check: every response body the partner's browser context receives (pages, redirects'
``Location``, JSON, the SAML messages inside the IdP's forms, and what ``context.request``
fetches) is kept, and none may contain the other biller's name; its ID only where the partner's
own URL named it, echoed in a 404 that reads exactly as for an ID that exists nowhere. The
billers' IDs and names are distinctive words found nowhere else, so a miss means something.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.helpers import crm_toml
from tests.test_local_loop_browser import BIN, Server

TIMEOUT_MS = 15_000
STAFF_EMAIL, STAFF_PASSWORD = "ops.lead@portal.example", "correct horse battery staple"
SSO_STAFF_EMAIL = "ops.sso@portal.example"
"""Staff through the company IdP only: no local account."""
# Distinctive on purpose: neither ID nor any word of either name occurs anywhere else in the app.
A_ID, A_NAME = "ZEPHYR-WATER-7Q", "Zephyrine Aqueduct Cooperative"
B_ID, B_NAME = "QUOKKA-GAS-3X", "Quokkaville Gasworks Holdings"
NOBODY_ID = "NOSUCH-BILLER-9Z"
"""An ID with no record anywhere: a refusal of B must read exactly as one of it."""
UNUSABLE = ("This link cannot be used: it has expired, it was revoked, or it is not complete. Ask your contact at "
            "the portal for a new one.")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _record(biller_id: str, name: str, validator: str, idp: str) -> str:
    """A CRM record for the test IdP as `saml-idp serve` starts (its defaults, as
    examples/billers/local-idp.toml), with the validator's test SP as the portal SP, on our ports."""
    return crm_toml(sp_entity_id=f"{validator}/test-sp/metadata", acs_url=f"{validator}/test-sp/acs",
                    idp={"entity_id": f"{idp}/metadata", "metadata_url": f"{idp}/metadata", "sso_url": f"{idp}/sso"},
                    login_types=((1, "Customer"), (2, "Property Manager")), biller=(biller_id, name))


def _company_idp_config(folder: Path, company: str, validator: str) -> str:
    """The company IdP staff sign in with: the project's test IdP, its own store and key, the
    validator's staff SP (``/sign-in/sso/metadata``, ACS ``/sign-in/sso/acs``) its one SP, a
    staff member and someone who is not staff."""
    return f"""[server]
base_url = "{company}"
key_folder = "{folder / 'company-keys'}"
store = "sqlite:///{folder / 'company.sqlite3'}"

[[personas]]
id = "ops-sso"
display_name = "Ops lead (staff)"
nameid = "{SSO_STAFF_EMAIL}"
claims = {{ Department = "Onboarding" }}

[[personas]]
id = "sales-rep"
display_name = "Sales rep (not staff here)"
nameid = "sales.rep@portal.example"
claims = {{ Department = "Sales" }}

[[sps]]
entity_id = "{validator}/sign-in/sso/metadata"
acs = ["{validator}/sign-in/sso/acs"]
"""


@dataclass
class Site:
    validator: str
    idp: str
    company_idp: str
    store_path: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("access-browser")
    crm = folder / "crm"
    crm.mkdir()
    idp_port, validator_port, company_port = _free_port(), _free_port(), _free_port()
    idp, validator = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{validator_port}"
    company = f"http://127.0.0.1:{company_port}"
    for biller_id, name in ((A_ID, A_NAME), (B_ID, B_NAME)):
        (crm / f"{biller_id}.toml").write_text(_record(biller_id, name, validator, idp))
    store_path = folder / "validator.sqlite3"
    store_url = f"sqlite:///{store_path}"
    # No setting of the environment reaches the servers but these: their state goes to `folder`.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "VALIDATOR_"))}
    clean.update(PYTHONUNBUFFERED="1")
    env = {**clean, "IDP_STORE": f"sqlite:///{folder / 'idp.sqlite3'}", "IDP_KEY_FOLDER": str(folder / "idp-keys"),
           "IDP_BASE_URL": idp}
    added = subprocess.run([str(BIN / "saml-validate"), "staff", "add", STAFF_EMAIL, "--store", store_url],
                           input=f"{STAFF_PASSWORD}\n", capture_output=True, text=True, env=clean, cwd=folder,
                           timeout=60, check=False)
    assert added.returncode == 0, added.stderr
    assert f"staff account {STAFF_EMAIL} added" in added.stderr
    # The company IdP's metadata, as its operator would hand it over (`saml-idp metadata`).
    company_config = folder / "company-idp.toml"
    company_config.write_text(_company_idp_config(folder, company, validator))
    metadata = subprocess.run([str(BIN / "saml-idp"), "metadata", "--config", str(company_config)],
                              capture_output=True, text=True, env=clean, cwd=folder, timeout=60, check=False)
    assert metadata.returncode == 0, metadata.stderr
    (folder / "company-idp-metadata.xml").write_text(metadata.stdout)
    servers = [
        (Server("test IdP", ["saml-idp", "serve", "--crm", str(crm / f"{A_ID}.toml"), "--port", str(idp_port)],
                idp, folder / "idp.log"), env),
        (Server("company IdP", ["saml-idp", "serve", "--config", str(company_config), "--port", str(company_port)],
                company, folder / "company-idp.log"), clean),
        (Server("validator", ["saml-validate", "serve", "--dev", "--crm-folder", str(crm), "--port",
                              str(validator_port), "--store", store_url,
                              "--staff-idp-metadata", str(folder / "company-idp-metadata.xml"),
                              "--staff-emails", SSO_STAFF_EMAIL], validator, folder / "validator.log"), clean),
    ]
    try:
        for server, server_env in servers:
            server.start(server_env)
        for server, _ in servers:
            server.wait_until_answering()
        yield Site(validator, idp, company, store_path)
    finally:
        for server, _ in servers:
            server.stop()


# ---- what the partner's browser receives -------------------------------------------------------

_CSRF = re.compile(r'name="csrf" value="[^"]*"')
_SAML_FIELD = re.compile(r'name="(?:SAMLResponse|SAMLRequest)" value="([A-Za-z0-9+/=\s]+)"')


def _readable(body: str) -> str:
    """`body` and, after it, the XML of any SAML message its form carries (base64 hides words)."""
    decoded = [base64.b64decode(value).decode("utf-8", "replace") for value in _SAML_FIELD.findall(body)]
    return "\n".join([body, *decoded])


@dataclass
class Received:
    """Every response the partner's browser context got: (URL, status, body and Location).

    Two recorders, because neither alone sees everything. The ``response`` event sees every
    response, but its body is gone once the browser has navigated away from it (the IdP's
    auto-posting form). A route sees each request the page makes itself (fetched by Playwright,
    kept whole, handed to the browser unchanged), but not one a redirect leads to. A response
    whose body the event could not read must be a redirect (its ``Location`` is kept) or one a
    route kept: :func:`_assert_nothing_of` fails on any other."""

    context: Any
    bodies: list[tuple[str, int, str]] = field(default_factory=list)
    routed: set[str] = field(default_factory=set)
    unread: list[tuple[str, int]] = field(default_factory=list)

    def on_route(self, route: Any) -> None:
        answer = route.fetch(max_redirects=0)
        self.routed.add(answer.url)
        self._keep(answer.url, answer.status, answer.body(), answer.headers.get("location", ""))
        route.fulfill(response=answer)

    def on_response(self, response: Any) -> None:
        from playwright.sync_api import Error

        try:
            body = response.body()
        except Error:  # a redirect (Chromium keeps no body), or a page already left
            self.unread.append((response.url, response.status))
            body = b""
        self._keep(response.url, response.status, body, response.headers.get("location", ""))

    def _keep(self, url: str, status: int, body: bytes, location: str) -> None:
        self.bodies.append((url, status, _readable(body.decode("utf-8", "replace")) + "\n" + location))

    def get(self, url: str) -> tuple[int, str]:
        """An API call with the context's own cookies, its answer kept like the pages'."""
        answer = self.context.request.get(url)
        text = answer.text()
        self.bodies.append((answer.url, answer.status, text))
        return answer.status, text


def _browser_context(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def partner(browser: Any, site: Site) -> Iterator[Received]:
    """The partner's own browser (no cookie of staff's), every response it receives recorded;
    after the test, the leak check over all of them."""
    context = _browser_context(browser)
    received = Received(context)
    context.route("**/*", received.on_route)
    context.on("response", received.on_response)
    try:
        yield received
        for page in context.pages:  # every response event handled (its body read) before the check;
            page.wait_for_load_state()  # closing first would cut short a body still being read
            page.evaluate("0")
        _assert_nothing_of(received, B_ID, B_NAME)
    finally:
        context.close()


@pytest.fixture
def staff(browser: Any, site: Site) -> Iterator[Any]:
    """Staff's browser, signed in on /sign-in with the account the CLI made."""
    from playwright.sync_api import expect

    context = _browser_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{site.validator}/staff/invites")
        page.wait_for_url(f"{site.validator}/sign-in?next=**")  # anonymous: the sign-in page, coming back after
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Email").fill(STAFF_EMAIL)
        page.get_by_label("Password").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{site.validator}/staff/invites")
        expect(page.get_by_text(f"{STAFF_EMAIL} ·")).to_be_visible()
        yield page
    finally:
        context.close()


def _words(name: str) -> list[str]:
    return [word.lower() for word in name.split() if len(word) > 4]


def _assert_nothing_of(received: Received, biller_id: str, name: str) -> None:
    """No body names `name` (nor any distinctive word of it, as in a persona's address), and
    `biller_id` appears only in the answer to a URL that itself named it."""
    assert received.bodies, "the partner's browser received nothing: the recording is broken"
    for url, status in received.unread:
        assert 300 <= status < 400 or url in received.routed, f"the body of {url} (HTTP {status}) was not read"
    for url, status, text in received.bodies:
        lowered = text.lower()
        for word in [name.lower(), *_words(name)]:
            assert word not in lowered, f"{url} (HTTP {status}) names the other biller ({word!r}):\n{text[:2000]}"
        if biller_id.lower() in lowered:
            assert biller_id.lower() in unquote(url).lower(), (
                f"{url} (HTTP {status}) names the other biller's ID {biller_id}, which the URL did not:\n{text[:2000]}")
            assert status == 404, f"{url} answered {status} and names {biller_id}:\n{text[:2000]}"


# ---- the flows ---------------------------------------------------------------------------------

def _create_invite(staff: Any, site: Site, biller_id: str, email: str) -> str:
    """Staff › Partner invites › a new link for `biller_id`, read from the page."""
    from playwright.sync_api import expect

    page = staff
    page.goto(f"{site.validator}/")
    page.get_by_role("link", name="Staff", exact=True).click()
    page.wait_for_url(f"{site.validator}/staff")
    page.get_by_role("link", name="Partner invites").click()
    page.wait_for_url(f"{site.validator}/staff/invites")
    expect(page.get_by_role("heading", name="Partner invites")).to_be_visible()
    page.get_by_label("Biller").select_option(biller_id)
    page.get_by_label("For (email, optional)").fill(email)
    page.get_by_role("button", name="Create the invite link").click()
    expect(page.get_by_text("Send this link to the partner.")).to_be_visible()
    link: str = page.locator("#invite-url").inner_text().strip()
    assert re.fullmatch(rf"{re.escape(site.validator)}/invite/[A-Za-z0-9_-]{{43}}", link), link
    row = page.locator("tbody tr", has=page.get_by_text(email, exact=True))
    expect(row).to_have_count(1)
    expect(row).to_contain_text(biller_id)
    expect(row.locator("td").nth(3)).to_have_text("active")
    return link


def _open_link(received: Received, site: Site, link: str) -> Any:
    """The partner opens the link: A's page, with the partner's banner."""
    from playwright.sync_api import expect

    page = received.context.new_page()
    page.goto(link)
    page.wait_for_url(f"{site.validator}/partners/{A_ID}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{A_NAME} {A_ID}")
    expect(page.get_by_text("Partner access ·")).to_be_visible()
    return page


def test_staff_invite_a_partner_who_runs_a_test_login_to_its_verdict(staff: Any, partner: Received,
                                                                      site: Site) -> None:
    from playwright.sync_api import expect

    link = _create_invite(staff, site, A_ID, "it@zephyrine.example")
    page = _open_link(partner, site, link)
    expect(page.get_by_text("No test login yet.")).to_be_visible()

    # "All partners" is the partner's own page again: one biller, nothing to choose from.
    page.get_by_role("link", name="All partners").click()
    page.wait_for_url(f"{site.validator}/partners/{A_ID}")

    page.get_by_role("link", name="Start a test login").click()
    page.wait_for_url(f"{site.idp}/login?**")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    card = page.locator(".persona", has=page.get_by_role("button", name="Sign in as customer-1", exact=True))
    expect(card).to_have_count(1)
    card.get_by_role("button", name="Sign in as customer-1", exact=True).click()

    page.wait_for_url(f"{site.validator}/test-logins/**")
    verdict = page.locator("div.verdict")
    expect(verdict).to_have_text("ready")
    expect(verdict).to_have_class("verdict pass")
    expect(page.locator("body")).to_contain_text("Every step completed and every check passed.")
    login_id = page.url.rsplit("/", 1)[1]
    # The IdP's auto-post form was read as XML too, so the leak check covers the response itself.
    posted = [text for url, _, text in partner.bodies if url == f"{site.idp}/login"]
    assert any("urn:oasis:names:tc:SAML:2.0:assertion" in text for text in posted), posted

    # The same result through the API, with the partner's session; and on A's page, as a recent login.
    status, text = partner.get(f"{site.validator}/api/v1/test-logins/{login_id}")
    assert status == 200 and json.loads(text)["verdict"] == "ready"
    page.goto(f"{site.validator}/partners/{A_ID}")
    expect(page.locator("td a", has_text="ready")).to_have_attribute("href", f"/test-logins/{login_id}")

    # The trail names the invite, as staff read it.
    staff.goto(f"{site.validator}/staff/audit?biller_id={A_ID}&action=test-login")
    expect(staff.locator("body")).to_contain_text("invite:inv_")


def _refusal(received: Received, site: Site, path: str, *, api: bool) -> tuple[int, str]:
    """What the partner gets at `path` (a page in the browser, or an API call)."""
    url = f"{site.validator}{path}"
    if api:
        return received.get(url)
    page = received.context.pages[0]
    answer = page.goto(url)
    assert answer is not None
    return answer.status, _CSRF.sub('name="csrf" value=""', answer.text())


def test_the_partner_is_refused_everything_of_another_biller(staff: Any, partner: Received, site: Site) -> None:
    from playwright.sync_api import expect

    # Staff run a test login of B first, so that there is a result of B to be refused.
    staff.goto(f"{site.validator}/test-login/{B_ID}")
    staff.wait_for_url(f"{site.idp}/login?**")
    staff.get_by_role("button", name="Sign in as customer-1", exact=True).click()
    staff.wait_for_url(f"{site.validator}/test-logins/**")
    expect(staff.locator("div.verdict")).to_be_visible()
    b_login = staff.url.rsplit("/", 1)[1]

    page = _open_link(partner, site, _create_invite(staff, site, A_ID, "it-2@zephyrine.example"))

    # Each of B's pages and API calls reads exactly as for a biller that exists nowhere.
    for path, api, status in ((f"/partners/{B_ID}", False, 404), (f"/partners/{B_ID}/report", False, 404),
                              (f"/partners/{B_ID}/discover", False, 404), (f"/partners/{B_ID}/metadata/1", False, 404),
                              (f"/test-login/{B_ID}", False, 404), (f"/test-sp/metadata?biller={B_ID}", False, 404),
                              (f"/staff/records/{B_ID}", False, 404),
                              (f"/api/v1/partners/{B_ID}/report", True, 404)):
        got = _refusal(partner, site, path, api=api)
        control = _refusal(partner, site, path.replace(B_ID, NOBODY_ID), api=api)
        assert got[0] == status, (path, got)
        assert got == (control[0], control[1].replace(NOBODY_ID, B_ID)), (path, got, control)
        if not api:
            expect(page.get_by_role("heading", level=1)).to_have_text("Unknown biller")
            expect(page.locator("main")).to_contain_text(f"There is no CRM record for biller '{NOBODY_ID}'.")

    # B's test login result: the same as a login that never was.
    for path, api in ((f"/test-logins/{b_login}", False), (f"/api/v1/test-logins/{b_login}", True)):
        got = _refusal(partner, site, path, api=api)
        control = _refusal(partner, site, path.replace(b_login, "x" * len(b_login)), api=api)
        assert got[0] == 404 and got == control, (path, got, control)
    expect(page.get_by_role("heading", level=1)).to_have_text("Unknown test login")

    # Staff's own pages: not for a partner (and they would list B).
    for path in ("/staff", "/staff/invites", "/staff/audit", "/staff/records"):
        status, _ = _refusal(partner, site, path, api=False)
        assert status == 403, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not for you")
    assert _refusal(partner, site, "/api/v1/audit", api=True)[0] == 403

    # A's own CRM record (a download) is the partner's to read; B's was the 404 above.
    status, text = partner.get(f"{site.validator}/staff/records/{A_ID}")
    assert status == 200 and f'id = "{A_ID}"' in text, text

    # The API's partner list: A only.
    status, text = partner.get(f"{site.validator}/api/v1/partners")
    assert status == 200
    assert [p["biller_id"] for p in json.loads(text)] == [A_ID], text


def _assert_unusable(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
    expect(page.locator("main")).to_contain_text(UNUSABLE)
    body = page.content()
    for biller_id, name in ((A_ID, A_NAME), (B_ID, B_NAME)):  # the refusal names no biller at all
        assert biller_id not in body and name not in body, body


def test_an_expired_link_is_refused_with_the_clear_page(partner: Received, site: Site) -> None:
    from metadata.store import SQLiteStore
    from validator.auth.invites import create_invite

    store = SQLiteStore(site.store_path)
    try:
        _, token = create_invite(store, A_ID, days=1, email="late@zephyrine.example", created_by="test",
                                 now=datetime.now(UTC) - timedelta(days=2))
    finally:
        store.close()
    page = partner.context.new_page()
    answer = page.goto(f"{site.validator}/invite/{token}")
    assert answer is not None and answer.status == 404
    _assert_unusable(page)
    # No session came of it: A's page asks for a sign-in.
    page.goto(f"{site.validator}/partners/{A_ID}")
    page.wait_for_url(f"{site.validator}/sign-in?next=**")


def test_a_link_staff_revoke_ends_its_session_and_is_refused_with_the_clear_page(staff: Any, partner: Received,
                                                                                site: Site) -> None:
    from playwright.sync_api import expect

    email = "revoke-me@zephyrine.example"
    link = _create_invite(staff, site, A_ID, email)
    page = _open_link(partner, site, link)

    row = staff.locator("tbody tr", has=staff.get_by_text(email, exact=True))
    row.get_by_role("button", name="Revoke").click()
    row = staff.locator("tbody tr", has=staff.get_by_text(email, exact=True))
    expect(row.locator("td").nth(3)).to_have_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)

    # The session the link opened ends at once: A's page asks for a sign-in.
    page.reload()
    page.wait_for_url(f"{site.validator}/sign-in?next=**")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    answer = page.goto(link)
    assert answer is not None and answer.status == 404
    _assert_unusable(page)


def test_the_leak_check_sees_what_it_looks_for() -> None:
    """The check itself: the other biller's name, or its ID where the URL did not name it, is caught."""
    hidden = base64.b64encode(B_NAME.encode()).decode()
    received = Received(context=None, bodies=[(f"http://127.0.0.1/partners/{A_ID}", 200, "<p>fine</p>")])
    _assert_nothing_of(received, B_ID, B_NAME)
    for body, complaint in ((f"<p>{B_NAME}</p>", "names the other biller"),
                            ("<p>quokkaville</p>", "names the other biller"),
                            (f"<p>{B_ID.lower()}</p>", "which the URL did not"),
                            (_readable(f'<input name="SAMLResponse" value="{hidden}">'),
                             "names the other biller")):
        with pytest.raises(AssertionError, match=complaint):
            _assert_nothing_of(Received(None, [*received.bodies, ("http://127.0.0.1/", 200, body)]), B_ID, B_NAME)


def test_staff_sign_in_through_the_company_idp_and_someone_not_staff_is_refused(browser: Any, site: Site) -> None:
    """Staff single sign-on, the project's own test IdP as the company IdP: the sign-in page's
    button, the persona picker, back on the staff page signed in; a user the IdP knows but who is
    not an allowed staff email gets the clear refusal and no session."""
    from playwright.sync_api import expect

    context = _browser_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{site.validator}/staff/audit")
        page.wait_for_url(f"{site.validator}/sign-in?next=**")
        page.get_by_role("link", name="Sign in with the company's single sign-on").click()
        page.wait_for_url(f"{site.company_idp}/login?**")
        expect(page.locator("p.muted").first).to_contain_text(f"For {site.validator}/sign-in/sso/metadata")
        page.get_by_role("button", name="Sign in as sales-rep", exact=True).click()
        page.wait_for_url(f"{site.validator}/sign-in/sso/acs")
        expect(page.get_by_role("heading", level=1)).to_have_text("Not a staff member here")
        expect(page.locator("main")).to_contain_text(
            "You signed in at the company's IdP, but sales.rep@portal.example is not a staff member here.")
        page.goto(f"{site.validator}/staff")
        page.wait_for_url(f"{site.validator}/sign-in?next=**")  # no session came of it
    finally:
        context.close()

    context = _browser_context(browser)  # a fresh browser: no IdP session of the refused user
    try:
        page = context.new_page()
        page.goto(f"{site.validator}/staff/audit")
        page.wait_for_url(f"{site.validator}/sign-in?next=**")
        page.get_by_role("link", name="Sign in with the company's single sign-on").click()
        page.wait_for_url(f"{site.company_idp}/login?**")
        page.get_by_role("button", name="Sign in as ops-sso", exact=True).click()
        page.wait_for_url(f"{site.validator}/staff/audit")  # back where the sign-in began
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.get_by_text(f"{SSO_STAFF_EMAIL} ·")).to_be_visible()
        # Staff indeed: the invites page, and the trail's record of both attempts.
        page.goto(f"{site.validator}/staff/audit?who=staff:{SSO_STAFF_EMAIL}&action=sign-in")
        expect(page.locator("main")).to_contain_text("staff, company IdP")
        page.goto(f"{site.validator}/staff/audit?action=sign-in-refused")
        expect(page.locator("main")).to_contain_text("sales.rep@portal.example is not an allowed staff member")
        page.goto(f"{site.validator}/staff/invites")
        expect(page.get_by_role("heading", name="Partner invites")).to_be_visible()
    finally:
        context.close()
