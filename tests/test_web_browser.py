"""The validator's web app in a real browser (headless Chromium through Playwright, as in
test_idp_browser): upload a corpus metadata file and read its findings, paste a response, fill
the discovery worksheet, and complete a live test login against the project's own test IdP.

Everything is served over real HTTP on 127.0.0.1: the validator and the test IdP by werkzeug,
partner metadata by a local server; the validator's fetch policy opens loopback for these
tests only.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from idp import create_app as create_idp
from idp.settings import Persona, Settings
from metadata.crm import CRMRecord
from metadata.fetch import FetchPolicy, fetch
from metadata.store import SQLiteStore
from tests.test_fetch import respond, serving
from tests.test_web import IDP, SP, good_metadata, our_response
from validator.web import create_app as create_validator

TIMEOUT_MS = 10_000
LOCAL = FetchPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
OKTA = "idp-metadata/okta/okta-trial-102286-app-metadata-2024.xml"


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _bound() -> BaseWSGIServer:
    return make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True, request_handler=_Quiet)


@dataclass
class Site:
    validator: str
    idp: str
    metadata_url: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("web-browser")
    crm = folder / "crm"
    crm.mkdir()
    validator_server, idp_server = _bound(), _bound()
    validator = f"http://127.0.0.1:{validator_server.server_port}"
    idp = f"http://127.0.0.1:{idp_server.server_port}"
    with serving() as metadata_server:
        metadata_server.routes["/metadata"] = respond(200, good_metadata())
        metadata_url = metadata_server.url("/metadata")
        # B-1: the partner of test_web (metadata served locally); B-2: the project's own test IdP,
        # which answers the validator's test SP.
        (crm / "B-1.toml").write_text(_record("B-1", "Acme Water", IDP, metadata_url))
        (crm / "B-2.toml").write_text(_record("B-2", "Own IdP", f"{idp}/metadata", f"{idp}/metadata"))
        idp_app = create_idp(Settings.model_validate({
            "server": {"base_url": idp, "key_folder": str(folder / "keys"), "dev_mode": True},
            "personas": [Persona(id="jo", nameid="jo@example.com", display_name="Jo",
                                 claims={"AccountNumber": "123", "LoginTypeId": "1"}).model_dump()],
            "sps": [{"entity_id": SP, "acs": [f"{validator}/test-sp/acs"]}],
        }), base=folder, store=SQLiteStore(folder / "idp.sqlite3"))

        def metadata_loader(record: CRMRecord) -> bytes:
            assert record.idp.metadata_url
            return fetch(record.idp.metadata_url, LOCAL).body

        validator_app = create_validator(crm_folder=crm, base_url=validator, store=SQLiteStore(folder / "v.sqlite3"),
                                         fetch_policy=LOCAL, metadata_loader=metadata_loader)
        validator_server.app, idp_server.app = validator_app, idp_app
        threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                   for s in (validator_server, idp_server)]
        for thread in threads:
            thread.start()
        try:
            yield Site(validator, idp, metadata_url)
        finally:
            for server in (validator_server, idp_server):
                server.shutdown()
                server.server_close()


def _record(biller: str, name: str, entity_id: str, metadata_url: str) -> str:
    return (f'[biller]\nid = "{biller}"\nname = "{name}"\n[sp]\nentity_id = "{SP}"\n'
            f'acs_url = "https://sso.portal.example/saml/acs"\n[idp]\nentity_id = "{entity_id}"\n'
            f'metadata_url = "{metadata_url}"\n'
            '[[claims]]\nname = "AccountNumber"\nrequired = true\n[[claims]]\nname = "LoginTypeId"\nrequired = true\n'
            'login_type = true\n[[login_types]]\nid = 1\nname = "Customer"\n')


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        opened = context.new_page()
        opened.set_default_timeout(TIMEOUT_MS)
        yield opened
    finally:
        context.close()


def test_upload_a_corpus_metadata_file_and_read_its_findings(page: Any, site: Site, corpus: Path,
                                                              tmp_path: Path) -> None:
    page.goto(site.validator)
    page.locator("#m-file").set_input_files(str(corpus / OKTA))
    page.locator("#m-biller").select_option("B-1")
    page.get_by_role("button", name="Check the metadata").click()
    page.wait_for_url(f"{site.validator}/check/metadata")
    assert page.get_by_role("heading", name="SAML go-live report").is_visible()
    # The Okta file is not Acme Water's IdP: the entity ID differs from the record.
    assert page.get_by_text("CRM001").first.is_visible()
    assert "not ready" in page.title()
    page.screenshot(path=tmp_path / "metadata-report.png", full_page=True)


def test_paste_a_response(page: Any, site: Site) -> None:
    page.goto(site.validator)
    page.locator("#r-text").fill(our_response(now=datetime.now(UTC).replace(microsecond=0)))
    page.locator("#r-biller").select_option("B-1")
    page.locator("#r-request").fill("_req1")
    page.get_by_role("button", name="Check the response").click()
    page.wait_for_url(f"{site.validator}/check/response")
    assert "not ready" not in page.title() and "ready" in page.title()


def test_fill_the_discovery_worksheet(page: Any, site: Site) -> None:
    page.goto(site.validator)
    page.locator("#d-url").fill(site.metadata_url)
    page.locator("#d-biller").select_option("B-1")
    page.get_by_role("button", name="Fill the worksheet").click()
    page.wait_for_url(f"{site.validator}/discover")
    assert page.get_by_role("heading", name="The five questions").is_visible()
    assert page.get_by_role("row", name="The IdP entity ID").inner_text().endswith(IDP)
    assert page.locator("svg[role=img]").count() == 1  # the certificate timeline


def test_a_live_test_login_against_our_own_idp(page: Any, site: Site, tmp_path: Path) -> None:
    page.goto(site.validator)
    page.locator('a[href="/test-login/B-2"]').click()
    page.wait_for_url(f"{site.idp}/login?request=*")
    page.get_by_role("button", name="Sign in as jo").click()
    page.wait_for_url(f"{site.validator}/test-logins/*")
    assert page.get_by_role("heading", name="Test login for Own IdP (B-2)").is_visible()
    verdict = page.locator(".verdict").inner_text()
    assert "ready" in verdict and "not ready" not in verdict, page.content()
    claims = page.locator("table").first.inner_text()
    assert "AccountNumber" in claims and "123" in claims
    # On a phone's width a claim name stays whole: the cells around it wrap instead.
    page.set_viewport_size({"width": 360, "height": 800})
    lines = page.evaluate("""() => [...document.querySelectorAll('td.claim-name')].map(cell => {
        const range = document.createRange();
        range.selectNodeContents(cell);
        return [cell.textContent, new Set([...range.getClientRects()].map(r => Math.round(r.top))).size];
    })""")
    assert [name for name, _ in lines] == ["AccountNumber", "LoginTypeId"], lines
    assert all(count == 1 for _, count in lines), lines
    page.set_viewport_size({"width": 1100, "height": 900})
    page.screenshot(path=tmp_path / "test-login.png", full_page=True)
