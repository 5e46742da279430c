"""Issue 12: trust from the CRM record ([idp] metadata_file, signing_certificates, metadata_url, in
DESIGN.md's order), and findings that name the real cause (CRM001 for a near-miss entity ID, the NET
finding for a refused URL, SIG026 only without any trust source, SIG022 naming the signature)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from idp.settings import Persona, ServiceProvider
from tests.helpers import crm_toml
from tests.idp_support import ACS, IDP_BASE, SP_ENTITY, authn_request, login_as, make_idp, redirect_path
from validator.cli import cli

CORPUS = Path(__file__).resolve().parent / "corpus" / "responses"
OKTA = CORPUS / "okta" / "okta-dev-116807-2016-signed-response-and-assertion.xml"
OKTA_CERT = CORPUS / "okta" / "okta-dev-116807.idp-cert.pem"
OTHER_CERT = CORPUS / "okta" / "okta-dev-969244.idp-cert.pem"
OKTA_NOW = "2016-07-25T23:21:00Z"
OKTA_ENTITY = "http://www.okta.com/exk659aytfMeNI49v0h7"
ENTITY = f"{IDP_BASE}/metadata"
MATCHING = {"AccountNumber": "100200300", "Email": "alice@example.com", "LoginTypeId": "1"}
REQUEST_ID = "_trust_request_0001"


def issue(tmp_path: Path, sign: str = "both") -> tuple[bytes, bytes]:
    """(SAMLResponse form value, IdP metadata) from a real login at our test IdP."""
    app = make_idp(tmp_path / "idp", sps=(ServiceProvider(entity_id=SP_ENTITY, acs=[ACS], sign=sign),))  # type: ignore[arg-type]
    app.extensions["saml_idp"].personas["alice"] = Persona(id="alice", nameid="alice@example.com", claims=MATCHING)
    client = app.test_client()
    first = client.get(redirect_path(authn_request(request_id=REQUEST_ID)))
    return login_as(client, first.headers["Location"])["SAMLResponse"].encode(), client.get("/metadata").get_data()


def record(folder: Path, extra_idp: str = "", entity_id: str = ENTITY, **idp: str | None) -> Path:
    """A CRM record file in `folder` for the test IdP, with `idp` keys and raw `extra_idp` TOML lines."""
    text = crm_toml(sp_entity_id=SP_ENTITY, acs_url=ACS, idp={"entity_id": entity_id, **idp})
    text = text.replace("[idp]\n", f"[idp]\n{extra_idp}", 1)
    path = folder / "record.toml"
    path.write_text(text)
    return path


def run(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    outcome = CliRunner().invoke(cli, ["response", *args, "--format", "json"], catch_exceptions=False)
    return outcome.exit_code, json.loads(outcome.stdout) if outcome.stdout.startswith("{") else {
        "output": outcome.stdout + outcome.stderr}


def codes(report: dict) -> list[str]:  # type: ignore[type-arg]
    return [f["code"] for f in report["findings"] if f["severity"] != "info"]


def login(tmp_path: Path, sign: str = "both") -> tuple[Path, bytes]:
    response, metadata = issue(tmp_path, sign)
    (tmp_path / "r.b64").write_bytes(response)
    return tmp_path / "r.b64", metadata


# --- [idp] metadata_file -----------------------------------------------------------------------


def test_metadata_file_beside_the_record_verifies_and_is_named(tmp_path: Path) -> None:
    response, metadata = login(tmp_path)
    (tmp_path / "partner").mkdir()
    (tmp_path / "partner" / "idp.xml").write_bytes(metadata)
    crm = record(tmp_path / "partner", metadata_file="idp.xml")
    code, report = run(str(response), "--crm", str(crm), "--request-id", REQUEST_ID)
    assert code == 0, report
    assert codes(report) == []
    assert report["facts"]["trust_source"] == {"kind": "metadata_file",
                                               "location": str(tmp_path / "partner" / "idp.xml")}
    assert report["facts"]["response"]["claims"] == {k: [v] for k, v in MATCHING.items()}


def test_a_missing_metadata_file_is_named_and_is_not_sig026(tmp_path: Path) -> None:
    response, _ = login(tmp_path)
    code, report = run(str(response), "--crm", str(record(tmp_path, metadata_file="gone.xml")))
    assert code == 1
    assert codes(report) == ["XML008"]
    assert "cannot be read" in report["findings"][0]["message"]
    assert "trust_source" not in report["facts"]


def test_metadata_file_comes_before_metadata_url(tmp_path: Path) -> None:
    response, metadata = login(tmp_path)
    (tmp_path / "idp.xml").write_bytes(metadata)
    # The URL would be refused (http, loopback): it is never fetched, the file comes first.
    crm = record(tmp_path, metadata_file="idp.xml", metadata_url="http://127.0.0.1:9/metadata")
    code, report = run(str(response), "--crm", str(crm), "--request-id", REQUEST_ID)
    assert code == 0, report
    assert report["facts"]["trust_source"]["kind"] == "metadata_file"


# --- [idp] signing_certificates ----------------------------------------------------------------


def test_pinned_certificates_verify_a_real_okta_response(tmp_path: Path) -> None:
    (tmp_path / "signer.pem").write_bytes(OKTA_CERT.read_bytes())
    crm = record(tmp_path, entity_id=OKTA_ENTITY, extra_idp='signing_certificates = ["signer.pem"]\n')
    _, report = run(str(OKTA), "--crm", str(crm), "--now", OKTA_NOW)
    assert "SIG025" in [f["code"] for f in report["findings"]]
    assert not {"SIG022", "SIG026", "XML008"} & set(codes(report))
    assert report["facts"]["trust_source"] == {"kind": "signing_certificates",
                                               "location": str(tmp_path / "signer.pem")}
    assert report["facts"]["response"]["verified"] is True


def test_pinned_certificate_of_another_idp_is_sig022(tmp_path: Path) -> None:
    (tmp_path / "signer.pem").write_bytes(OTHER_CERT.read_bytes())
    crm = record(tmp_path, entity_id=OKTA_ENTITY, extra_idp='signing_certificates = ["signer.pem"]\n')
    _, report = run(str(OKTA), "--crm", str(crm), "--now", OKTA_NOW)
    assert "SIG022" in codes(report)


@pytest.mark.parametrize("content", [b"not a certificate\n", b"-----BEGIN CERTIFICATE-----\nAAAA\n"
                                     b"-----END CERTIFICATE-----\n", None])
def test_a_file_that_is_not_a_certificate_names_the_key_and_the_file(tmp_path: Path, content: bytes | None) -> None:
    if content is not None:
        (tmp_path / "signer.pem").write_bytes(content)
    crm = record(tmp_path, entity_id=OKTA_ENTITY, extra_idp='signing_certificates = ["signer.pem"]\n')
    outcome = CliRunner().invoke(cli, ["response", str(OKTA), "--crm", str(crm), "--now", OKTA_NOW])
    assert outcome.exit_code != 0
    assert isinstance(outcome.exception, Exception)
    text = str(outcome.exception)
    assert "idp.signing_certificates" in text
    assert "signer.pem" in text


# --- the record's entity ID near-misses the metadata's: CRM001, still verified -----------------


def test_a_trailing_slash_is_crm001_as_metadata_says_it_and_claims_are_judged(tmp_path: Path) -> None:
    response, metadata = login(tmp_path)
    (tmp_path / "idp.xml").write_bytes(metadata)
    crm = record(tmp_path, entity_id=ENTITY + "/", metadata_file="idp.xml")
    code, report = run(str(response), "--crm", str(crm), "--request-id", REQUEST_ID)
    assert code == 1
    assert codes(report) == ["CRM001"]  # not SIG026, not XML008
    crm001 = report["findings"][0]
    assert report["facts"]["response"]["verified"] is True
    assert report["facts"]["response"]["claims"] == {k: [v] for k, v in MATCHING.items()}
    # Worded as `saml-validate metadata` words the same pair.
    outcome = CliRunner().invoke(cli, ["metadata", str(tmp_path / "idp.xml"), "--crm", str(crm), "--format", "json"])
    said = next(f for f in json.loads(outcome.stdout)["findings"] if f["code"] == "CRM001")
    assert (crm001["message"], crm001["expected"], crm001["actual"], crm001["fix"]) == (
        said["message"], said["expected"], said["actual"], said["fix"])
    assert "trailing slash" in crm001["message"]


def test_an_exact_entity_id_is_no_crm001(tmp_path: Path) -> None:
    response, metadata = login(tmp_path)
    (tmp_path / "idp.xml").write_bytes(metadata)
    _, report = run(str(response), "--crm", str(record(tmp_path, metadata_file="idp.xml")), "--request-id", REQUEST_ID)
    assert "CRM001" not in codes(report)


def test_another_entity_altogether_is_crm001_without_trust(tmp_path: Path) -> None:
    response, metadata = login(tmp_path)
    (tmp_path / "idp.xml").write_bytes(metadata)
    crm = record(tmp_path, entity_id="https://elsewhere.example/idp", metadata_file="idp.xml")
    _, report = run(str(response), "--crm", str(crm), "--request-id", REQUEST_ID)
    assert codes(report) == ["CRM001"]
    assert report["facts"]["response"] == {"verified": False}


# --- a refused metadata URL: its NET finding, not SIG026 ---------------------------------------


@pytest.mark.parametrize(("url", "code"), [
    ("http://idp.example.com/metadata", "NET001"),
    ("https://127.0.0.1:9/metadata", "NET004"),
])
def test_a_refused_metadata_url_is_its_net_finding(tmp_path: Path, url: str, code: str) -> None:
    response, _ = login(tmp_path)
    _, report = run(str(response), "--crm", str(record(tmp_path, metadata_url=url)))
    assert codes(report) == [code]
    assert "trust_source" not in report["facts"]
    assert report["inputs"]["metadata"] == url


# --- SIG026 only without any trust source ------------------------------------------------------


def test_sig026_without_a_trust_source_names_the_record_keys_and_the_option(tmp_path: Path) -> None:
    response, _ = login(tmp_path)
    _, report = run(str(response), "--crm", str(record(tmp_path)))
    assert codes(report) == ["SIG026"]
    finding = report["findings"][0]
    for words in ("metadata_url", "metadata_file", "signing_certificates", "--metadata"):
        assert words in finding["message"]
        assert words in finding["fix"]


def test_no_sig026_when_the_record_gives_trust(tmp_path: Path) -> None:
    response, metadata = login(tmp_path)
    (tmp_path / "idp.xml").write_bytes(metadata)
    _, report = run(str(response), "--crm", str(record(tmp_path, metadata_file="idp.xml")), "--request-id", REQUEST_ID)
    assert "SIG026" not in codes(report)


# --- SIG022 says which signature failed --------------------------------------------------------


@pytest.mark.parametrize(("sign", "which"), [("assertion", "Assertion"), ("response", "Response")])
def test_sig022_names_the_signature_that_failed(tmp_path: Path, sign: str, which: str) -> None:
    response, metadata = login(tmp_path, sign)
    (tmp_path / "idp.xml").write_bytes(metadata)
    xml = base64.b64decode(response.read_bytes()).replace(b"100200300", b"100200301", 1)
    response.write_bytes(base64.b64encode(xml))
    _, report = run(str(response), "--metadata", str(tmp_path / "idp.xml"))
    assert codes(report) == ["SIG022"]
    finding = report["findings"][0]
    assert finding["message"].startswith(f"the {which}'s signature does not verify")
    assert finding["where"].endswith(f"{which}/ds:Signature")


def test_an_untouched_response_has_no_sig022(tmp_path: Path) -> None:
    response, metadata = login(tmp_path, "assertion")
    (tmp_path / "idp.xml").write_bytes(metadata)
    _, report = run(str(response), "--metadata", str(tmp_path / "idp.xml"))
    assert "SIG022" not in codes(report)
    assert report["facts"]["trust_source"]["kind"] == "metadata"


# --- the trust source is a fact in text and HTML too -------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "html"])
def test_the_trust_source_is_shown_in_text_and_html(tmp_path: Path, fmt: str) -> None:
    response, metadata = login(tmp_path)
    (tmp_path / "idp.xml").write_bytes(metadata)
    crm = record(tmp_path, metadata_file="idp.xml")
    outcome = CliRunner().invoke(cli, ["response", str(response), "--crm", str(crm), "--request-id", REQUEST_ID,
                                       "--format", fmt])
    assert "trust" in outcome.stdout and "metadata_file" in outcome.stdout


# --- [idp] metadata_url, and the library without a record folder --------------------------------


def test_metadata_url_of_the_record_is_fetched_and_named(tmp_path: Path) -> None:
    """A local server, allowed explicitly (SECURITY.md §4: tests never reach a real outside address)."""
    import http.server
    import ipaddress
    import threading
    from datetime import UTC, datetime

    from metadata.crm import load_crm
    from metadata.fetch import FetchPolicy
    from validator.response_inspection import inspect_response

    response, metadata = login(tmp_path)

    class Metadata(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(metadata)))
            self.end_headers()
            self.wfile.write(metadata)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metadata"
        crm = load_crm(record(tmp_path, metadata_url=url))
        policy = FetchPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
        inspection = inspect_response(response.read_bytes(), "r.b64", now=datetime.now(UTC), crm=crm,
                                      request_id=REQUEST_ID, policy=policy, record_dir=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert [f.code for f in inspection.findings if f.severity != "info"] == []
    assert inspection.trust_used is not None
    assert (inspection.trust_used.kind, inspection.trust_used.location) == ("metadata_url", url)


def test_record_files_are_never_opened_without_a_record_folder(tmp_path: Path) -> None:
    """The web app's path for an uploaded record (no record folder): a record naming files opens
    none, and SIG026 says why. Only a biller of the CRM folder gets its folder (jobs.OnRecord)."""
    from datetime import UTC, datetime

    from metadata.crm import load_crm
    from validator.response_inspection import inspect_response

    response, metadata = login(tmp_path)
    (tmp_path / "idp.xml").write_bytes(metadata)
    crm = load_crm(record(tmp_path, metadata_file="idp.xml"))
    inspection = inspect_response(response.read_bytes(), "r.b64", now=datetime.now(UTC), crm=crm,
                                  request_id=REQUEST_ID, files=False, record_dir=None)
    assert [f.code for f in inspection.findings] == ["SIG026"]
    assert "metadata_file" in inspection.findings[0].message
    assert inspection.trust_used is None


@pytest.mark.parametrize(("data", "named"), [(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj", "a PDF document"),
                                             (b"PK\x03\x04\x14\x00\x06\x00", "a ZIP archive")])
def test_a_file_that_is_never_xml_is_named_as_a_response_and_as_trust(data: bytes, named: str) -> None:
    from datetime import UTC, datetime

    from validator.response_inspection import inspect_response
    from validator.trust import load_trust

    inspection = inspect_response(data, "upload", now=datetime.now(UTC), crm=None)
    [finding] = inspection.findings
    assert finding.code == "XML009" and finding.message.startswith(f"the input is {named}")
    _, problems = load_trust(data, None)
    assert [f.code for f in problems] == ["XML002"] and named in problems[0].message
