"""The README's local loop ("One machine: the test IdP and the validator"), exactly as written:
the two real servers started by their console scripts from the repository's root,

    saml-idp serve --crm examples/billers/local-idp.toml          # http://127.0.0.1:8080/
    saml-validate serve --dev --crm-folder examples/billers       # http://127.0.0.1:8081/

then a headless Chromium (Debian's ``chromium``, through Playwright; the ``browser`` fixture of
tests/conftest.py) doing what the README tells a person to do: open the validator's home page,
click **Test login** on the ``local-idp`` row, pick a persona on the test IdP's page, and read
the validator's result page, which must say "ready" with each claim of the record.

With ``--crm`` the IdP plays the record's cast (idp/cast.py), not its demo personas alice and
bob: ``customer-1`` (login type 1, what alice is to the demo IdP) and ``property-manager-2``
(login type 2, bob's). The claim values are read from the persona's card on the IdP's page, as a
person would see them, and must come back unchanged in the validator's claim table. The result
page must also say where the IdP's certificates came from (the record's metadata_url), show the
dev-mode banner, and its JSON link must give a report naming that trust source.

The ports are the README's (examples/billers/local-idp.toml is written for them): when one is
taken the tests skip, naming it, rather than prove some other setup. Each server gets its own
store (and the IdP its key folder) in a temporary folder, so the repository is left as it was.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from validator.web.state import DEV_BANNER

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
IDP_PORT, VALIDATOR_PORT = 8080, 8081
IDP, VALIDATOR = f"http://127.0.0.1:{IDP_PORT}", f"http://127.0.0.1:{VALIDATOR_PORT}"
# The README's two commands, word for word (the console scripts of this checkout's venv).
IDP_COMMAND = ["saml-idp", "serve", "--crm", "examples/billers/local-idp.toml"]
VALIDATOR_COMMAND = ["saml-validate", "serve", "--dev", "--crm-folder", "examples/billers"]
START_SECONDS = 30.0
TIMEOUT_MS = 15_000
LOGIN_TYPES = "required; one of the login type IDs 1 (Customer), 2 (Property Manager)"


def _port_taken(port: int) -> bool:
    """Whether a server could not bind 127.0.0.1:`port` (as werkzeug binds: SO_REUSEADDR, so a
    connection of an earlier run in TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@dataclass
class Server:
    name: str
    command: list[str]
    url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def output(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-3000:] or "(nothing)"

    def start(self, env: dict[str, str]) -> None:
        executable = BIN / self.command[0]
        if not os.access(executable, os.X_OK):
            pytest.fail(f"{executable} is missing: pip install -e . in the venv", pytrace=False)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([str(executable), *self.command[1:]], cwd=ROOT, env=env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def wait_until_answering(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_SECONDS
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"`{' '.join(self.command)}` exited with status {self.process.returncode} before it "
                            f"answered on {self.url}; its output:\n{self.output()}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
                    last = f"HTTP {answer.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        pytest.fail(f"`{' '.join(self.command)}` did not answer {self.url}/healthz within {START_SECONDS:.0f} s "
                    f"({last}); its output:\n{self.output()}", pytrace=False)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture(scope="module")
def local_loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Both servers of the README, on its ports, from the repository's root; stopped at the end."""
    for port, who in ((IDP_PORT, "the test IdP"), (VALIDATOR_PORT, "the validator")):
        if _port_taken(port):
            pytest.skip(f"port {port} on 127.0.0.1 is taken: the README's local loop runs {who} there "
                        f"(examples/billers/local-idp.toml is written for ports {IDP_PORT} and {VALIDATOR_PORT}); "
                        "free it to run this test")
    folder = tmp_path_factory.mktemp("local-loop")
    # No setting of the environment reaches the servers but these: their state goes to `folder`.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "VALIDATOR_"))}
    env.update(IDP_STORE=f"sqlite:///{folder / 'idp.sqlite3'}", IDP_KEY_FOLDER=str(folder / "idp-keys"),
               VALIDATOR_STORE=f"sqlite:///{folder / 'validator.sqlite3'}", PYTHONUNBUFFERED="1")
    servers = [Server("test IdP", IDP_COMMAND, IDP, folder / "idp.log"),
               Server("validator", VALIDATOR_COMMAND, VALIDATOR, folder / "validator.log")]
    try:
        for server in servers:
            server.start(env)
        for server in servers:
            server.wait_until_answering()
        yield
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def page(browser: Any, local_loop: None) -> Iterator[Any]:
    """A fresh browser profile per test: no cookie of an earlier login (IdP session, test SP)."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def _texts(locator: Any) -> list[str]:
    return [text.strip() for text in locator.all_inner_texts()]


def _login(page: Any, persona: str) -> dict[str, Any]:
    """The README's steps, as a person does them: the home page, **Test login** on the local-idp
    row, `persona` on the IdP's picker. What the persona's card showed on the IdP's page."""
    from playwright.sync_api import expect

    page.goto(f"{VALIDATOR}/")
    row = page.locator("tr", has=page.locator("td .mono", has_text="local-idp"))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Local test IdP (saml-idp serve)")
    row.get_by_role("link", name="Test login").click()

    # The browser is at the test IdP, asked by the validator's test SP.
    page.wait_for_url(f"{IDP}/login?**")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    expect(page.locator("p.muted").first).to_have_text(
        "For http://127.0.0.1:8081/test-sp/metadata · the response goes to http://127.0.0.1:8081/test-sp/acs")
    card = page.locator(".persona", has=page.get_by_role("button", name=f"Sign in as {persona}", exact=True))
    expect(card).to_have_count(1)
    shown = {
        "display_name": card.locator("strong").inner_text().strip(),
        "nameid": card.locator("div.mono").inner_text().strip(),
        "claims": dict(_texts(tr.locator("td")) for tr in card.locator("tr").all()),
    }
    expect(page.locator("#fault")).to_have_value("")  # a correct response: no fault chosen
    card.get_by_role("button", name=f"Sign in as {persona}", exact=True).click()

    # The IdP's form posts the response to the test SP's ACS, which answers 303 to the result.
    page.wait_for_url(f"{VALIDATOR}/test-logins/**")
    return shown


def _claim_table(page: Any) -> list[list[str]]:
    """The claim table's rows, each its cells' texts, in the page's order."""
    from playwright.sync_api import expect

    table = page.locator("table", has=page.locator("th", has_text="Actual (response)"))
    expect(table).to_have_count(1)
    assert _texts(table.locator("thead th")) == ["Claim", "Expected (CRM record)", "Actual (response)", "Status"]
    return [_texts(row.locator("td")) for row in table.locator("tbody tr").all()]


def _assert_ready(page: Any, persona: str, shown: dict[str, Any], login_type: str) -> None:
    """What the result page says of a login judged without errors, for the persona the IdP showed."""
    from playwright.sync_api import expect

    expect(page.locator(".dev-banner")).to_have_text(DEV_BANNER)
    assert DEV_BANNER.startswith("Local development mode:")
    expect(page.locator("h1")).to_have_text("Test login for Local test IdP (saml-idp serve) (local-idp)")

    # The verdict: exactly "ready" (not "not ready", not "ready, with warnings"), drawn as a pass.
    verdict = page.locator("div.verdict")
    expect(verdict).to_have_text("ready")
    expect(verdict).to_have_class("verdict pass")
    summary = page.locator("p", has_text="error(s),")
    expect(summary).to_contain_text("0 error(s), 0 warning(s)")

    # Trust: the line naming where the certificates came from (the record's metadata URL, which
    # the IdP serves), and the signature verified with them.
    expect(summary).to_contain_text("The IdP's certificates: the record's metadata_url: http://127.0.0.1:8080/metadata.")
    sequence = page.locator("figure.login-sequence")
    expect(sequence).to_contain_text("signature verified")
    expect(sequence).to_contain_text("with the IdP's certificates from its metadata")
    expect(sequence).to_contain_text("claims match the CRM record")
    expect(page.locator("body")).to_contain_text("Every step completed and every check passed.")
    expect(page.locator(".finding", has=page.locator(".code", has_text="SIG025"))).to_contain_text(
        "verifies with the trusted certificate CN=SAML Preflight test IdP (http://127.0.0.1:8080/metadata)")

    # Each claim of the record, as the IdP's card showed it, judged "ok"; nothing else arrived.
    claims = shown["claims"]
    assert list(claims) == ["AccountNumber", "Email", "LoginTypeId"], claims
    assert claims["LoginTypeId"] == login_type.split(" ", 1)[0]
    assert claims["Email"].startswith(f"{persona}@"), claims
    assert _claim_table(page) == [
        ["AccountNumber", "required", claims["AccountNumber"], "ok"],
        ["Email", "required", claims["Email"], "ok"],
        ["LoginTypeId", LOGIN_TYPES, login_type, "ok"],
    ]
    expect(page.locator("p.muted", has_text="NameID:")).to_contain_text(
        f"NameID: {shown['nameid']} (urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress) · "
        "Issuer: http://127.0.0.1:8080/metadata · signed: Assertion")

    # The trust source, by name: the page's JSON link gives the report, which names it.
    link = page.get_by_role("link", name="/api/v1/test-logins/")
    with page.expect_navigation() as navigation:
        link.click()
    report = navigation.value.json()
    assert report["verdict"] == "ready"
    assert report["facts"]["trust_source"] == {"kind": "metadata_url", "location": "http://127.0.0.1:8080/metadata"}
    assert report["inputs"]["metadata"] == "http://127.0.0.1:8080/metadata"


def test_customer_login_type_1_is_ready(page: Any) -> None:
    shown = _login(page, "customer-1")
    assert shown["display_name"] == "Customer (login type 1)"
    _assert_ready(page, "customer-1", shown, "1 (Customer)")


def test_property_manager_login_type_2_is_ready(page: Any) -> None:
    shown = _login(page, "property-manager-2")
    assert shown["display_name"] == "Property Manager (login type 2)"
    _assert_ready(page, "property-manager-2", shown, "2 (Property Manager)")
