"""saml-validate as a user runs it: real processes, real exit codes, no tracebacks."""

from __future__ import annotations

import http.server
import ipaddress
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from metadata.fetch import FetchPolicy
from tests.factory import NOW, IdPSpec, idp_metadata, make_keypair
from tests.helpers import IDP_DEFAULTS, crm_toml
from validator.inspection import MetadataOptions, inspect_metadata
from validator.metadata_facts import metadata_report
from validator.report import facts_json

DEMO = Path(__file__).resolve().parents[1] / "validator" / "demo"


def run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "validator.cli", *map(str, args)],
        capture_output=True, text=True, timeout=60, input=stdin.decode() if stdin else None, check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def record(tmp_path: Path) -> Path:
    path = tmp_path / "biller.toml"
    path.write_text(crm_toml(idp=dict(IDP_DEFAULTS)))
    return path


@pytest.fixture
def good_metadata(tmp_path: Path) -> Path:
    path = tmp_path / "idp.xml"
    path.write_bytes(idp_metadata(IdPSpec(keys=[("signing", make_keypair().cert_b64)])))
    return path


def test_clean_metadata_exits_zero(good_metadata: Path, record: Path) -> None:
    result = run("metadata", good_metadata, "--crm", record, "--now", "2026-06-01T12:00:00Z")
    assert result.returncode == 0, result.stdout
    assert "✓ ready" in result.stdout


def test_findings_exit_one_and_strict_counts_warnings(tmp_path: Path, record: Path) -> None:
    soon = make_keypair(not_after=NOW + timedelta(days=20))  # KEY006, a warning
    path = tmp_path / "idp.xml"
    path.write_bytes(idp_metadata(IdPSpec(keys=[("signing", soon.cert_b64)])))
    assert run("metadata", path, "--now", "2026-06-01T12:00:00Z").returncode == 0
    assert run("metadata", path, "--now", "2026-06-01T12:00:00Z", "--strict").returncode == 1
    expired = run("metadata", path, "--now", "2026-07-01T12:00:00Z")  # KEY005, an error
    assert expired.returncode == 1


@pytest.mark.parametrize(("content", "code"), [
    (b"this is not xml at all", "XML002"),
    (b"", "XML001"),
    (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Okta</body></html>", "XML007"),
    (b'<!DOCTYPE a [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><a>&b;</a>', "XML003"),
    (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>', "XML003"),
])
def test_bad_files_are_findings(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "partner.xml"
    path.write_bytes(content)
    result = run("metadata", path, "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [f["code"] for f in report["findings"]] == [code]
    assert report["findings"][0]["message"]


def test_fifty_megabyte_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.xml"
    with path.open("wb") as handle:
        handle.write(b"<md:EntitiesDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata'>")
        handle.write(b"<!-- padding -->" * (50 * 1024 * 1024 // 16))
        handle.write(b"</md:EntitiesDescriptor>")
    result = run("metadata", path, "--format", "json")
    assert result.returncode == 1
    finding = json.loads(result.stdout)["findings"][0]
    assert finding["code"] == "XML004"
    assert "5,242,880" in finding["message"]


@pytest.mark.parametrize(("url", "code"), [
    ("https://127.0.0.1/metadata", "NET004"), ("https://[::1]/md", "NET004"),
    ("https://169.254.169.254/latest", "NET004"), ("https://10.0.0.8/md", "NET004"),
    ("https://[::ffff:127.0.0.1]/md", "NET004"), ("http://10.0.0.8/md", "NET001"), ("file:///etc/passwd", "NET001"),
])
def test_forbidden_urls_are_net_findings(url: str, code: str) -> None:
    result = run("metadata", url, "--format", "json")
    assert result.returncode == 1
    assert [f["code"] for f in json.loads(result.stdout)["findings"]] == [code]


def test_passwords_in_urls_never_reach_the_report() -> None:
    result = run("metadata", "https://user:s3cret@example.com/md.xml", "--format", "json")
    assert result.returncode == 1
    assert "s3cret" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["findings"][0]["code"] == "NET002"


class _HTMLHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!DOCTYPE html><html><body><form>Sign in with your organisational account</form></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HTMLHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/FederationMetadata.xml"
    server.shutdown()
    server.server_close()


def test_html_login_page_served_as_metadata(html_server: str) -> None:
    from datetime import UTC, datetime

    policy = FetchPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    report = metadata_report(inspect_metadata(html_server, MetadataOptions(now=datetime.now(UTC), fetch_policy=policy)))
    found = {f.code for f in report.findings}
    assert "XML007" in found
    assert facts_json(report)["fetch"]["content_type"].startswith("text/html")


def test_crm_with_mistyped_key_is_a_usage_error(tmp_path: Path, good_metadata: Path) -> None:
    path = tmp_path / "biller.toml"
    path.write_text('[biller]\nid = "B-1"\nname = "x"\n[sp]\nentity_id = "urn:x"\nacs_url = "https://x/acs"\n'
                    '[idp]\nentity_idd = "https://idp.example.com/saml"\n')
    for args in (("crm", path), ("metadata", good_metadata, "--crm", path)):
        result = run(*args)
        assert result.returncode == 2
        assert "idp.entity_idd" in result.stderr
        assert 'did you mean "entity_id"' in result.stderr


def test_crm_command_reports_record_findings(tmp_path: Path, record: Path) -> None:
    assert run("crm", record).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(record.read_text().replace("login_type = true", "login_type = false"))
    result = run("crm", bad, "--format", "json")
    assert result.returncode == 1
    assert "CRM105" in {f["code"] for f in json.loads(result.stdout)["findings"]}


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "html"])
def test_every_format_and_out_file(fmt: str, tmp_path: Path, good_metadata: Path, record: Path) -> None:
    out = tmp_path / "reports" / f"report.{fmt}"
    out.parent.mkdir()  # --out never makes a folder (test_out_refuses_a_missing_folder)
    result = run("metadata", good_metadata, "--crm", record, "--format", fmt, "--out", out,
                 "--now", "2026-06-01T12:00:00Z")
    assert result.returncode == 0
    text = out.read_text()
    if fmt == "json":
        assert json.loads(text)["schema"] == "saml-preflight/report/v1"
    elif fmt == "junit":
        suite = etree.fromstring(text.encode())
        assert int(suite.xpath("count(//testcase)")) > 20
    elif fmt == "html":
        assert "<script" not in text
    assert "report written to" in result.stderr


def test_out_refuses_a_missing_folder(tmp_path: Path, good_metadata: Path, record: Path) -> None:
    # A typo in the folder used to become a new folder tree nobody looked in.
    missing = tmp_path / "reprots" / "r.json"
    result = run("metadata", good_metadata, "--format", "json", "--out", missing)
    assert result.returncode == 2 and result.stdout == ""
    assert "Invalid value for '--out'" in result.stderr and f"the folder {str(missing.parent)!r} does not exist" \
        in result.stderr
    assert not missing.parent.exists()
    assert run("crm", record, "--out", good_metadata / "r.txt").returncode == 2  # a file is no folder
    assert "is a file, not a folder" in run("crm", record, "--out", good_metadata / "r.txt").stderr
    sheet = run("discover", good_metadata, "--no-probe", "--out", tmp_path / "no" / "w.md")
    assert sheet.returncode == 2 and "'--out'" in sheet.stderr and not (tmp_path / "no").exists()
    draft = run("discover", good_metadata, "--no-probe", "--draft-crm", tmp_path / "no" / "d.toml")
    assert draft.returncode == 2 and "'--draft-crm'" in draft.stderr
    here = tmp_path / "r.json"  # a folder that exists: written as before
    assert run("metadata", good_metadata, "--format", "json", "--out", here).returncode in (0, 1) and here.is_file()


def test_bad_now_and_missing_file_are_usage_errors(good_metadata: Path) -> None:
    assert run("metadata", good_metadata, "--now", "yesterday").returncode == 2
    assert run("metadata", "no-such-file.xml").returncode == 2


def test_checks_and_explain() -> None:
    listing = run("checks").stdout
    assert "MD007" in listing and "KEY005" in listing and "NET" in listing and "CRM101" in listing
    explained = run("explain", "md007")
    assert explained.returncode == 0
    assert "What it checks" in explained.stdout and "Fix" in explained.stdout
    unknown = run("explain", "MD999")
    assert unknown.returncode == 2
    assert "MD999" in unknown.stderr


def test_demo_shows_a_real_report() -> None:
    result = run("demo")
    assert result.returncode == 0
    assert "CRM001" in result.stdout  # the demo partner's http/https entity ID mix-up
    assert "SIG001" in result.stdout
    assert "would exit 1" in result.stderr


def test_trust_certificate_must_be_readable(tmp_path: Path, good_metadata: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    result = run("metadata", good_metadata, "--trust", cert)
    assert result.returncode == 2
    assert "--trust" in result.stderr


def test_demo_trust_verifies_demo_metadata() -> None:
    result = run("metadata", DEMO / "springfield-water-idp-metadata.xml", "--trust", DEMO / "metadata-signer.pem",
                 "--format", "json")
    assert json.loads(result.stdout)["facts"]["signature"]["status"] == "verified"


def test_junit_of_an_unfetchable_url_lists_only_the_fetch() -> None:
    from click.testing import CliRunner

    from metadata.xml import parse_untrusted
    from validator.cli import cli

    result = CliRunner().invoke(cli, ["metadata", "https://10.0.0.1/metadata", "--format", "junit"])
    assert result.exit_code == 1
    suite = parse_untrusted(result.output.encode()).getroot()
    listed = {c.get("name", "").split()[0] for c in suite.iter("testcase")}
    assert "NET002" in listed and not any(code.startswith(("MD", "KEY", "XML", "CRM0")) for code in listed), listed


def test_a_file_whose_name_has_a_colon_is_read_as_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 'okta:prod.xml' looks like a URL with the scheme 'okta'; a file of that name is a file.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "okta:prod.xml").write_bytes(idp_metadata(IdPSpec()))
    result = run("metadata", "okta:prod.xml", "--format", "json")
    report = json.loads(result.stdout)
    assert not [f["code"] for f in report["findings"] if f["code"].startswith("NET")]
    assert report["facts"]["document"]["entities"] == 1
    missing = run("metadata", "okta:missing.xml", "--format", "json")  # no such file: a URL with the scheme 'okta'
    assert missing.returncode == 1 and [f["code"] for f in json.loads(missing.stdout)["findings"]] == ["NET001"]


@pytest.mark.parametrize("command", ["sweep", "serve"])
def test_an_unsupported_store_url_is_a_usage_error_naming_where_it_came_from(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from validator.cli import cli

    (tmp_path / "b.toml").write_text(crm_toml())
    folder = [str(tmp_path)] if command == "sweep" else ["--crm-folder", str(tmp_path)]
    given = CliRunner().invoke(cli, [command, *folder, "--store", "mysql://x"])
    assert given.exit_code == 2 and "Invalid value for --store: store URL 'mysql://x' is not supported" in given.output
    monkeypatch.setenv("VALIDATOR_STORE", "mysql://user:2024?pw@x")
    from_env = CliRunner().invoke(cli, [command, *folder])
    assert from_env.exit_code == 2 and "Invalid value for $VALIDATOR_STORE" in from_env.output
    assert "pw" not in from_env.output and "InternalError" not in from_env.output
    redis = CliRunner().invoke(cli, [command, *folder, "--store", "redis://u:p#secret@host:x/0"])
    assert redis.exit_code == 2 and "'redis://***@host:x/0' is not a valid Redis URL" in redis.output
    assert "secret" not in redis.output


CORPUS_OKTA = Path(__file__).resolve().parent / "corpus" / "responses" / "okta"


@pytest.mark.parametrize("pem", ["okta-dev-116807.idp-cert.pem", None])
def test_response_pinned_certificates_from_the_record(tmp_path: Path, pem: str | None) -> None:
    """[idp] signing_certificates: a real certificate verifies a real Okta response; a file that is
    not a certificate is a usage error naming the record key and the file, never a traceback."""
    (tmp_path / "signer.pem").write_bytes((CORPUS_OKTA / pem).read_bytes() if pem else b"hello\n")
    record = tmp_path / "biller.toml"
    record.write_text(crm_toml(idp={"entity_id": "http://www.okta.com/exk659aytfMeNI49v0h7"}).replace(
        "[idp]\n", '[idp]\nsigning_certificates = ["signer.pem"]\n', 1))
    result = run("response", CORPUS_OKTA / "okta-dev-116807-2016-signed-response-and-assertion.xml",
                 "--crm", record, "--now", "2016-07-25T23:21:00Z", "--format", "json")
    if pem is None:
        assert result.returncode == 2
        assert "idp.signing_certificates" in result.stderr and "signer.pem" in result.stderr
        return
    report = json.loads(result.stdout)
    assert report["facts"]["trust_source"]["kind"] == "signing_certificates"
    assert "SIG025" in [f["code"] for f in report["findings"]]
