"""The SE's interview (issue 16): `saml-validate discover --interview` asks the five questions on a
terminal (driven here through a real pseudo-terminal, as a person would answer) or reads them as
lines from a script; it writes the answers, a draft record never over a file, and a worksheet
"from the call, not yet verified". `discover METADATA --answers` then sets each answer against
the metadata. Every validation rule of the answers has a case that passes and one that fails.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from metadata.crm import parse_crm
from validator.cli import cli
from validator.interview import (
    CALL_EVIDENCE,
    FIELD_LIMIT,
    FIELDS,
    NOTES_LIMIT,
    SCHEMA,
    SCRIPT_LIMIT,
    AnswerError,
    CallAnswers,
    answers_from,
    answers_from_json,
    answers_json,
    call_sheet,
    checked,
    claim_names,
    draft_from_call,
    product_key,
    scripted,
)
from validator.render.worksheet import render_call_html, render_call_markdown, render_call_text

ADFS = "idp-metadata/adfs/adfs-unilever-2014-federationmetadata-signed.xml"
ADFS_ENTITY = "http://adfs.server.url/adfs/services/trust"
ADFS_SSO = "https://adfs.server.url/adfs/ls/"
SAML_VALIDATE = Path(sys.executable).with_name("saml-validate")
NOW = "2026-12-06T10:00:00Z"


# ---- the terminal, through a real pseudo-terminal ---------------------------------------------

class Terminal:
    """A child process on a pty: read until a text shows, type a line."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.fd, child = pty.openpty()
        env = {**os.environ, "COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1"}
        self.process = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, cwd=cwd, env=env,
                                        close_fds=True)
        os.close(child)
        self.seen = ""
        self.at = 0
        """Where the next expect looks from: each text is awaited after the one before it."""

    def expect(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen[self.at:]:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r}; the terminal shows:\n{self.seen[self.at:][-3000:]}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child ended
                    chunk = b""
                assert chunk, f"the command ended before {text!r}:\n{self.seen[self.at:][-3000:]}"
                self.seen += chunk.decode("utf-8", "replace")
        self.at = self.seen.index(text, self.at) + len(text)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def finish(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.seen += os.read(self.fd, 4096).decode("utf-8", "replace")
                except OSError:
                    break
        code = self.process.wait(timeout=5)
        os.close(self.fd)
        return code


def test_a_person_answers_the_questions_on_a_terminal(tmp_path: Path) -> None:
    term = Terminal([str(SAML_VALIDATE), "discover", "--interview", "--draft-crm", "acme.toml", "--now", NOW,
                     "--format", "md", "--out", "sheet.md"], tmp_path)
    term.expect("Which identity provider product runs the IdP")
    term.expect("don't know")  # the choices, and the default
    term.type("Okta")  # a choice, in any case
    term.expect("Which claim names")
    term.type("AccountNumber, LoginTypeId, AccountNumber")
    term.expect("The IdP's entity ID")
    term.type("http://www.okta.com/exk1\x07")  # a stray control character is refused, and asked again
    term.expect("the entity ID answer holds a control or invisible character (U+0007)")
    term.type("http://www.okta.com/exk1")
    term.expect("The URL the IdP publishes its metadata at")
    term.type("")  # not known yet
    term.expect("SSO (sign-in) URL")
    term.type("https://acme.okta.com/app/acme/exk1/sso/saml")
    term.expect("Call notes")
    term.type("Jo runs Okta; go-live in March")
    term.expect("more notes")
    term.type("")
    assert term.finish() == 0, term.seen

    said = json.loads((tmp_path / "acme.answers.json").read_text())
    assert said == {"schema": SCHEMA, "taken": NOW, "product": "okta", "claims": ["AccountNumber", "LoginTypeId"],
                    "entity_id": "http://www.okta.com/exk1", "metadata_url": None,
                    "sso_url": "https://acme.okta.com/app/acme/exk1/sso/saml",
                    "notes": "Jo runs Okta; go-live in March"}
    draft = (tmp_path / "acme.toml").read_text()
    record = parse_crm(draft, "acme.toml", "toml")
    assert record.idp.vendor == "okta" and record.idp.entity_id == "http://www.okta.com/exk1"
    assert record.idp.metadata_url is None and [c.name for c in record.claims] == ["AccountNumber", "LoginTypeId"]
    assert "from the call, not yet verified" in draft
    sheet = (tmp_path / "sheet.md").read_text()
    assert "**From the call, not yet verified.**" in sheet
    assert "| The metadata XML URL | not known yet |" in sheet and "| Which identity provider? | Okta |" in sheet
    assert "> Jo runs Okta; go-live in March" in sheet


def test_notes_past_their_cap_are_refused_line_by_line_and_the_call_is_kept(tmp_path: Path) -> None:
    term = Terminal([str(SAML_VALIDATE), "discover", "--interview", "--interview-out", "said.json", "--now", NOW,
                     "--format", "text"], tmp_path)
    term.expect("Which identity provider product")
    term.type("")  # don't know
    for _, _, question in FIELDS[1:]:
        term.expect(question)
        term.type("")
    line = "n" * 4000  # a terminal's line holds at most 4095 characters
    term.expect("Call notes (an empty line ends them):")
    term.type(line)
    for _ in range(3):
        term.expect("more notes:")
        term.type(line)
    term.expect("more notes:")
    term.type(line)  # 5 × 4,000 is past 16 KiB: this line is refused, those before it kept
    term.expect("the call notes answer is longer than 16 KiB")
    term.expect("more notes:")
    term.type("")
    assert term.finish() == 0, term.seen[-2000:]
    said = json.loads((tmp_path / "said.json").read_text())
    assert said["product"] is None and said["notes"] == "\n".join([line] * 4)


# ---- a script ---------------------------------------------------------------------------------

def _scripted(tmp_path: Path, lines: str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["discover", "--interview", "--now", NOW, *args], input=lines)


def test_answers_read_as_lines_from_a_script(tmp_path: Path) -> None:
    out = tmp_path / "said.json"
    result = _scripted(tmp_path, "entra\nemail,\n\n\nhttps://login.microsoftonline.com/t/saml2\nline one\n\nline 3\n",
                       "--interview-out", str(out), "--format", "text")
    assert result.exit_code == 0, result.output
    said = answers_from_json(out.read_bytes(), str(out))
    assert said == CallAnswers(product="entra", claims=("email",), sso_url="https://login.microsoftonline.com/t/saml2",
                               notes="line one\n\nline 3", taken=said.taken)
    assert "from the call, not yet verified" in result.output and "not known yet" in result.output


def test_a_short_script_leaves_the_rest_not_known_yet() -> None:
    assert scripted("okta\n") == {"product": "okta", "claims": "", "entity_id": "", "metadata_url": "",
                                  "sso_url": "", "notes": ""}


def test_a_script_longer_than_every_answer_at_its_cap_is_refused() -> None:
    assert scripted("\n" * 5 + "n" * NOTES_LIMIT)["notes"] == "n" * NOTES_LIMIT
    with pytest.raises(AnswerError, match="the answers given on standard input are longer than"):
        scripted("n" * (SCRIPT_LIMIT + 1))


def test_a_script_with_a_bad_answer_names_the_field_and_writes_nothing(tmp_path: Path) -> None:
    result = _scripted(tmp_path, "okta\n\nhttp://x\x1b[2J\n", "--draft-crm", str(tmp_path / "d.toml"))
    assert result.exit_code == 2
    assert "the entity ID answer holds a control or invisible character (U+001B)" in result.output
    assert list(tmp_path.iterdir()) == []


def test_files_are_judged_before_the_first_question(tmp_path: Path) -> None:
    (tmp_path / "d.answers.json").write_text("kept")
    result = _scripted(tmp_path, "okta\n", "--draft-crm", str(tmp_path / "d.toml"))
    assert result.exit_code == 2 and "answers are never written over a file" in result.output
    assert (tmp_path / "d.answers.json").read_text() == "kept" and not (tmp_path / "d.toml").exists()
    (tmp_path / "d.toml").write_text("kept")
    result = _scripted(tmp_path, "okta\n", "--draft-crm", str(tmp_path / "d.toml"), "--interview-out",
                       str(tmp_path / "new.json"))
    assert result.exit_code == 2 and "a draft is never written over a file" in result.output
    assert not (tmp_path / "new.json").exists()
    result = _scripted(tmp_path, "okta\n")
    assert result.exit_code == 2 and "--interview-out FILE or --draft-crm FILE" in result.output
    result = CliRunner().invoke(cli, ["discover", "x.xml", "--interview", "--interview-out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "runs before any metadata exists" in result.output
    assert "give the metadata" in CliRunner().invoke(cli, ["discover"]).output


def test_the_interview_and_the_comparison_fetch_nothing(tmp_path: Path, corpus: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    out = tmp_path / "said.json"
    result = _scripted(tmp_path, "adfs\n\n\nhttp://127.0.0.1:9/metadata\n\n", "--interview-out", str(out))
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["discover", str(corpus / ADFS), "--answers", str(out), "--no-probe",
                                      "--now", NOW, "--format", "md"])
    assert "| Metadata URL | http://127.0.0.1:9/metadata |" in result.output, result.output


# ---- told on the call vs in the metadata -------------------------------------------------------

def _answers_file(tmp_path: Path, **values: object) -> Path:
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"schema": SCHEMA, **values}))
    return path


def test_the_comparison_names_each_near_miss(tmp_path: Path, corpus: Path) -> None:
    path = _answers_file(tmp_path, product="adfs", entity_id=ADFS_ENTITY + "/", sso_url=ADFS_SSO,
                         claims=["http://schemas.xmlsoap.org/claims/commonname", "AccountNumber",
                                 "http://schemas.xmlsoap.org/claims/UPN"])
    result = CliRunner().invoke(cli, ["discover", str(corpus / ADFS), "--answers", str(path), "--no-probe",
                                      "--now", NOW, "--format", "md"])
    assert result.exit_code == 1, result.output  # the corpus file's certificate expired long ago
    table = result.output.split("## Told on the call vs in the metadata")[1].split("## Signing")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == [
        "| IdP product | Microsoft AD FS | Microsoft AD FS | same |",
        f"| Entity ID | {ADFS_ENTITY}/ | {ADFS_ENTITY} | differs: a trailing slash |",
        f"| SSO URL | {ADFS_SSO} | {ADFS_SSO} | same |",
        "| Metadata URL | not told | https://adfs.server.url/FederationMetadata/2007-06/FederationMetadata.xml "
        "| not told: inferred from the product's pattern, not given |",
        "| Claim http://schemas.xmlsoap.org/claims/commonname | http://schemas.xmlsoap.org/claims/commonname "
        "| http://schemas.xmlsoap.org/claims/CommonName | differs: letter case |",
        "| Claim AccountNumber | AccountNumber | does not say | not in the metadata |",
        "| Claim http://schemas.xmlsoap.org/claims/UPN | http://schemas.xmlsoap.org/claims/UPN "
        "| http://schemas.xmlsoap.org/claims/UPN | same |",
    ]
    text = CliRunner().invoke(cli, ["discover", str(corpus / ADFS), "--answers", str(path), "--no-probe",
                                    "--now", NOW, "--format", "text"]).output
    assert "  SSO URL: same" in text and "  Entity ID: differs: a trailing slash" in text


def test_the_comparison_in_html_escapes_what_was_said(tmp_path: Path, corpus: Path) -> None:
    path = _answers_file(tmp_path, product="okta", entity_id="<img src=x onerror=alert(1)>",
                         sso_url="https://adfs.server.url/adfs/ls", claims=["<b>x</b>"])
    out = tmp_path / "sheet.html"
    result = CliRunner().invoke(cli, ["discover", str(corpus / ADFS), "--answers", str(path), "--no-probe",
                                      "--now", NOW, "--format", "html", "--out", str(out)])
    assert result.exit_code == 1, result.output
    page = out.read_text()
    assert "<img" not in page and "<b>x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Told on the call vs in the metadata" in page and "differs: a missing trailing slash" in page
    assert "<td>IdP product</td><td class=\"mono\">Okta</td><td class=\"mono\">Microsoft AD FS</td><td>differs</td>" \
        in page


def test_a_bad_answers_file_is_a_usage_error_naming_it(tmp_path: Path, corpus: Path) -> None:
    path = _answers_file(tmp_path, product="okta", sso_url="https://x\u202e/")
    result = CliRunner().invoke(cli, ["discover", str(corpus / ADFS), "--answers", str(path), "--no-probe"])
    assert result.exit_code == 2 and "the SSO URL answer holds a control or invisible character (U+202E)" in (
        result.output)


# ---- each rule of the answers: a pass and a fail -----------------------------------------------

def test_each_field_is_capped() -> None:
    assert checked("entity_id", "a" * FIELD_LIMIT) == "a" * FIELD_LIMIT
    with pytest.raises(AnswerError, match="the entity ID answer is longer than 2 KiB"):
        checked("entity_id", "a" * (FIELD_LIMIT + 1))
    assert len(checked("claims", "é" * (FIELD_LIMIT // 2))) == FIELD_LIMIT // 2  # bytes, not characters
    with pytest.raises(AnswerError, match="claim names answer is longer"):
        checked("claims", "é" * (FIELD_LIMIT // 2 + 1))


def test_the_notes_are_capped_at_16_kib() -> None:
    assert len(checked("notes", "n" * NOTES_LIMIT)) == NOTES_LIMIT
    with pytest.raises(AnswerError, match="the call notes answer is longer than 16 KiB"):
        checked("notes", "n" * (NOTES_LIMIT + 1))


@pytest.mark.parametrize(("key", "bad", "label"), [
    ("sso_url", "https://idp\x00.example/", "SSO URL"),
    ("metadata_url", "https://idp.example/\u202emetadata", "metadata URL"),  # a bidi override
    ("claims", "Account\u200bNumber", "claim names"),  # a zero-width space
    ("entity_id", "urn:x\ny", "entity ID"),  # one line only
    ("notes", "ok\x1b[31mred", "call notes"),
])
def test_a_control_character_is_refused_naming_the_field(key: str, bad: str, label: str) -> None:
    with pytest.raises(AnswerError, match=f"the {label} answer holds a control or invisible character"):
        checked(key, bad)


def test_plain_answers_and_notes_with_line_breaks_pass() -> None:
    assert checked("sso_url", "  https://idp.example/sso  ") == "https://idp.example/sso"
    assert checked("notes", "first\r\n\tsecond\n") == "first\n\tsecond"
    assert checked("entity_id", "urn:ÿ:ünïcode") == "urn:ÿ:ünïcode"


def test_the_product_is_one_of_the_vendor_list_or_not_known() -> None:
    assert product_key("Okta") == "okta" and product_key("pingfederate") == "pingfederate"
    assert product_key("") is None and product_key("don't know") is None
    with pytest.raises(AnswerError, match="the IdP product answer 'oktaa' is not one of: okta, entra"):
        product_key("oktaa")


def test_claims_are_a_comma_separated_list() -> None:
    assert claim_names(" AccountNumber ,, LoginTypeId,AccountNumber ") == ("AccountNumber", "LoginTypeId")
    assert claim_names("") == ()


def test_an_answers_file_round_trips_and_is_checked_again(tmp_path: Path) -> None:
    said = answers_from({"product": "keycloak", "claims": "a, b", "entity_id": "https://kc/realms/x",
                         "notes": "two\nlines"})
    assert answers_from_json(answers_json(said).encode(), "f") == said
    for body, message in [
        (b"{not json", "f is not JSON"),
        (json.dumps({"schema": "other"}).encode(), "is not an answers file"),
        (json.dumps({"schema": SCHEMA, "colour": "red"}).encode(), "unknown key 'colour'"),
        (json.dumps({"schema": SCHEMA, "claims": "a, b"}).encode(), "'claims' must be a list"),
        (json.dumps({"schema": SCHEMA, "entity_id": 7}).encode(), "every answer must be text"),
        (json.dumps({"schema": SCHEMA, "notes": "x" * 70_000}).encode(), "larger than 64 KiB"),
        (json.dumps({"schema": SCHEMA, "product": "nope"}).encode(), "IdP product answer 'nope'"),
    ]:
        with pytest.raises(AnswerError, match=message):
            answers_from_json(body, "f")


# ---- what is written ---------------------------------------------------------------------------

def test_the_draft_from_the_call_always_parses(tmp_path: Path) -> None:
    said = answers_from({"product": "okta", "claims": 'Acc"ount\\, <x>', "entity_id": 'urn:"q"',
                         "sso_url": "https://user:secret@idp.example/sso"})
    record = tomllib.loads(draft_from_call(said, None))
    assert record["idp"]["entity_id"] == 'urn:"q"' and [c["name"] for c in record["claims"]] == ['Acc"ount\\', "<x>"]
    assert "secret" not in draft_from_call(said, None)  # a password in the SSO URL is never copied
    assert tomllib.loads(draft_from_call(CallAnswers(), None))["idp"] == {}


def test_the_call_worksheet_escapes_what_was_said() -> None:
    said = answers_from({"entity_id": "<script>alert(1)</script>", "notes": "<img src=x>\n| cell |"})
    sheet = call_sheet(said, None)
    page = render_call_html(sheet, downloads=(("Download", "a.json", "application/json", answers_json(said)),))
    assert "<script>alert" not in page and "<img src" not in page and "&lt;script&gt;" in page
    assert "From the call, not yet verified" in page
    assert "\\<script\\>" in render_call_markdown(sheet) and "\\| cell \\|" in render_call_markdown(sheet)
    assert "not known yet" in render_call_text(sheet)


def test_the_call_worksheet_gives_the_named_products_iframe_verdict_and_setup() -> None:
    from tests.helpers import crm_toml

    record = parse_crm(crm_toml(), "crm.toml", "toml")
    okta = call_sheet(answers_from({"product": "okta", "sso_url": "https://acme.okta.com/app/x/sso/saml"}), record)
    assert okta.iframe.verdict == "possible" and okta.iframe.evidence == CALL_EVIDENCE
    assert ("The portal's entity ID (audience)", record.sp.entity_id) in [(h.what, h.value) for h in okta.hints]
    custom = call_sheet(answers_from({"product": "okta", "sso_url": "https://login.acme.example/app/x/sso/saml"}),
                        record)
    assert custom.iframe.verdict == "possible" and "is not an Okta domain" in custom.iframe.evidence
    entra = call_sheet(answers_from({"product": "entra"}), record)
    assert entra.iframe.verdict == "no" and entra.iframe.alternatives and "new window" in entra.iframe.alternatives
    assert entra.hints != okta.hints  # each product's own words
    text, markdown, page = render_call_text(entra), render_call_markdown(entra), render_call_html(entra)
    for shown in (text, markdown, page):
        assert "Can the portal embed the login in an iframe?" in shown and "Entra ID forbids framing" in shown
        assert "Setup, in Microsoft Entra ID's words" in shown
        assert record.sp.entity_id in shown
    unknown = call_sheet(CallAnswers(), None)
    assert unknown.iframe.verdict == "no" and "Setup, in the IdP's words" in render_call_text(unknown)


# ---- the web app's interview page and the discovery form's answers file -------------------------

@pytest.fixture
def web_client(tmp_path: Path) -> Any:
    from datetime import UTC, datetime

    from metadata.store import SQLiteStore
    from tests.helpers import crm_toml
    from validator.web import create_app

    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "B-1.toml").write_text(crm_toml(biller=("B-1", "Acme <Water>")))
    app = create_app(crm_folder=folder, store=SQLiteStore(tmp_path / "s.sqlite3"),
                     clock=lambda: datetime(2026, 12, 6, 10, tzinfo=UTC))
    app.testing = True
    return app.test_client()


def _post(client: Any, path: str, fields: dict[str, Any]) -> Any:
    page = client.get("/discover/interview").get_data(as_text=True)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return client.post(path, data={"csrf": found.group(1), **fields}, content_type="multipart/form-data")


def test_the_interview_page_writes_the_worksheet_and_its_downloads(web_client: Any) -> None:
    from urllib.parse import unquote

    form = web_client.get("/discover/interview").get_data(as_text=True)
    assert 'name="product"' in form and "don&#39;t know" in form and 'name="notes"' in form
    assert '<a href="/discover/interview">' in web_client.get("/").get_data(as_text=True)
    response = _post(web_client, "/discover/interview", {
        "product": "okta", "claims": "AccountNumber, <i>x</i>", "entity_id": "http://www.okta.com/exk1",
        "metadata_url": "http://127.0.0.1:9/never-fetched", "sso_url": "", "notes": "<script>alert(1)</script>",
        "biller": "B-1"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "From the call, not yet verified" in page
    assert "<script>alert" not in page and "<i>x" not in page and "Acme &lt;Water&gt;" in page
    links = dict(re.findall(r'download="([^"]+)"\s+href="data:[^,]+,([^"]+)"', page))
    said = answers_from_json(unquote(links["interview-answers.json"]).encode(), "download")
    assert said.product == "okta" and said.claims == ("AccountNumber", "<i>x</i>") and said.sso_url is None
    draft = tomllib.loads(unquote(links["draft-crm.toml"]))
    assert draft["biller"]["id"] == "B-1" and draft["idp"]["metadata_url"] == "http://127.0.0.1:9/never-fetched"


def test_the_interview_page_refuses_a_bad_answer_naming_it_and_keeps_the_others(web_client: Any) -> None:
    response = _post(web_client, "/discover/interview", {"product": "okta", "entity_id": "urn:keep-me",
                                                         "sso_url": "https://x/\x1b[2J"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "the SSO URL answer holds a control or invisible character" in page
    assert 'value="urn:keep-me"' in page
    response = _post(web_client, "/discover/interview", {"notes": "n" * (NOTES_LIMIT + 1)})
    assert response.status_code == 400 and "the call notes answer is longer than 16 KiB" in response.get_data(
        as_text=True)


def test_the_discovery_form_compares_an_answers_file(web_client: Any, corpus: Path) -> None:
    from io import BytesIO

    said = answers_json(CallAnswers(product="adfs", entity_id=ADFS_ENTITY + "/"))
    response = _post(web_client, "/discover", {
        "metadata_file": (BytesIO((corpus / ADFS).read_bytes()), "adfs.xml"),
        "answers_file": (BytesIO(said.encode()), "answers.json")})
    page = response.get_data(as_text=True)
    assert "Told on the call vs in the metadata" in page and "differs: a trailing slash" in page
    bad = _post(web_client, "/discover", {"metadata_file": (BytesIO((corpus / ADFS).read_bytes()), "adfs.xml"),
                                          "answers_file": (BytesIO(b"{}"), "answers.json")})
    assert bad.status_code == 400 and "is not an answers file" in bad.get_data(as_text=True)


def test_with_a_record_the_draft_keeps_its_claims_and_says_what_was_said() -> None:
    from tests.helpers import crm_toml

    record = parse_crm(crm_toml(), "crm.toml", "toml")
    said = answers_from({"claims": "accountnumber, Extra\u00a0Claim"})
    draft = draft_from_call(said, record)
    assert [c["name"] for c in tomllib.loads(draft)["claims"]] == [c.name for c in record.claims]
    assert "# Said on the call: accountnumber, Extra" in draft


@pytest.mark.parametrize("option", [["--entity-id", "https://idp.example"], ["--no-probe"], ["--allow-http"],
                                    ["--warn-days", "10"]])
def test_an_option_about_metadata_with_interview_is_a_usage_error(tmp_path: Path, option: list[str]) -> None:
    from click.testing import CliRunner

    from validator.cli import cli

    outcome = CliRunner().invoke(cli, ["discover", "--interview", "--interview-out", str(tmp_path / "a.json"),
                                       *option], input="\n" * 6)
    assert outcome.exit_code == 2 and "about the metadata" in outcome.output, outcome.output
    assert not (tmp_path / "a.json").exists()


def test_the_api_sets_the_calls_answers_against_the_metadata(web_client: Any, corpus: Path) -> None:
    said = json.loads(answers_json(CallAnswers(product="adfs", entity_id=ADFS_ENTITY + "/", sso_url=ADFS_SSO)))
    xml = (corpus / ADFS).read_text()
    worksheet = web_client.post("/api/v1/discover", json={"xml": xml, "probe": False, "interview": said}).get_json()
    rows = {row["field"]: row for row in worksheet["told"]}
    assert rows["Entity ID"]["verdict"] == "differs" and "trailing slash" in rows["Entity ID"]["detail"]
    assert rows["SSO URL"]["verdict"] == "same" and rows["IdP product"]["told"] == "Microsoft AD FS"
    assert web_client.post("/api/v1/discover", json={"xml": xml, "probe": False}).get_json()["told"] == []
    bad = web_client.post("/api/v1/discover", json={"xml": xml, "probe": False, "interview": {"schema": "x"}})
    assert bad.status_code == 400 and "'interview' is not an answers file" in bad.get_json()["detail"]
    typed = web_client.post("/api/v1/discover", json={"xml": xml, "probe": False,
                                                        "interview": {**said, "entity_id": "a\u0007b"}})
    assert typed.status_code == 400 and "control" in typed.get_json()["detail"]

