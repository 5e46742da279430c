"""The SE's interview in a real browser (headless Chromium through Playwright, as in
test_web_browser): fill the interview form, read the worksheet "from the call, not yet verified",
download the draft record and the answers; then give the metadata with the answers file and read
the table of what was told against what the metadata says.
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from metadata.store import SQLiteStore
from tests.helpers import crm_toml
from tests.test_web_browser import TIMEOUT_MS, _Quiet
from validator.web import create_app

ADFS = "idp-metadata/adfs/adfs-unilever-2014-federationmetadata-signed.xml"
ADFS_ENTITY = "http://adfs.server.url/adfs/services/trust"


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("interview-browser")
    crm = folder / "crm"
    crm.mkdir()
    (crm / "B-1.toml").write_text(crm_toml(biller=("B-1", "Acme Water")))
    server = make_server("127.0.0.1", 0, create_app(crm_folder=crm, store=SQLiteStore(folder / "v.sqlite3")),
                         threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    try:
        opened = context.new_page()
        opened.set_default_timeout(TIMEOUT_MS)
        yield opened
    finally:
        context.close()


def _download(page: Any, link: str, to: Path) -> Path:
    with page.expect_download() as started:
        page.get_by_role("link", name=link).click()
    started.value.save_as(to)
    return to


def test_the_call_then_the_metadata(page: Any, validator: str, corpus: Path, tmp_path: Path) -> None:
    page.goto(validator)
    page.get_by_role("link", name="Record the partner's answers on the call").click()
    page.wait_for_url(f"{validator}/discover/interview")
    page.get_by_label("Which identity provider product").select_option("adfs")
    page.get_by_label("Which claim names").fill("http://schemas.xmlsoap.org/claims/commonname, AccountNumber")
    page.get_by_label("The IdP's entity ID").fill(ADFS_ENTITY + "/")
    page.get_by_label("The IdP's SSO (sign-in) URL").fill("https://adfs.server.url/adfs/ls/")
    page.get_by_label("Call notes").fill("Certificates roll in March.\n<b>not bold</b>")
    page.locator("#i-biller").select_option("B-1")
    page.get_by_role("button", name="Write the worksheet from the call").click()
    page.wait_for_url(f"{validator}/discover/interview")

    assert page.get_by_text("From the call, not yet verified").first.is_visible()
    assert page.get_by_role("heading", name="Acme Water").is_visible()
    assert page.get_by_role("row", name="The metadata XML URL").inner_text().endswith("not known yet")
    assert "<b>not bold</b>" in page.locator("pre.notes").inner_text()  # shown as text, not markup
    page.screenshot(path=tmp_path / "call-worksheet.png", full_page=True)

    draft = tomllib.loads(_download(page, "Download the draft CRM record (TOML)", tmp_path / "draft.toml")
                          .read_text())
    assert draft["biller"]["id"] == "B-1" and draft["idp"]["vendor"] == "adfs"
    assert draft["idp"]["entity_id"] == ADFS_ENTITY + "/"
    answers = _download(page, "Download the answers (JSON), to compare with the metadata later",
                        tmp_path / "answers.json")
    assert json.loads(answers.read_text())["notes"] == "Certificates roll in March.\n<b>not bold</b>"

    page.goto(validator)
    page.locator("#d-file").set_input_files(str(corpus / ADFS))
    page.locator("#d-answers").set_input_files(str(answers))
    page.get_by_label("Ask the IdP's sign-in URL whether it may be framed").uncheck()
    page.get_by_role("button", name="Fill the worksheet").click()
    page.wait_for_url(f"{validator}/discover")
    assert page.get_by_role("heading", name="Told on the call vs in the metadata").is_visible()
    told = page.locator("table.told")
    assert "differs: a trailing slash" in told.get_by_role("row", name="Entity ID").inner_text()
    assert told.get_by_role("row", name="SSO URL").inner_text().endswith("same")
    claim = told.get_by_role("row", name="Claim http://schemas.xmlsoap.org/claims/commonname").inner_text()
    assert "http://schemas.xmlsoap.org/claims/CommonName" in claim and "differs: letter case" in claim
    assert told.get_by_role("row", name="Claim AccountNumber").inner_text().endswith("not in the metadata")
    page.screenshot(path=tmp_path / "told-vs-metadata.png", full_page=True)
