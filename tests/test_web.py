"""The validator's web app: its pages and forms, the JSON API and its OpenAPI document, CSRF,
upload limits and the headers of SECURITY.md §6. Partner URLs are served by a local server on
127.0.0.1, allowed by the app's fetch policy for these tests only."""

from __future__ import annotations

import base64
import html
import io
import ipaddress
import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.assertion import Claim, ResponseSpec, build_response, serialize
from metadata.fetch import FetchPolicy
from metadata.saml import EMAIL
from metadata.store import SQLiteStore
from metadata.write import idp_metadata_xml
from tests.factory import NOW, make_keypair
from tests.test_fetch import LocalServer, respond, serving
from validator.web import create_app

DEMO = Path(__file__).parent.parent / "validator" / "demo"
DEMO_XML = (DEMO / "springfield-water-idp-metadata.xml").read_bytes()
LOCAL = FetchPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
IDP = "https://idp.example.com/saml"
SP = "https://sso.portal.example/saml"
ACS = "https://sso.portal.example/saml/acs"
KEY = make_keypair("idp.example.com")
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"


def good_metadata() -> bytes:
    from lxml import etree

    element = idp_metadata_xml(IDP, sso_urls={REDIRECT: "https://idp.example.com/sso"}, slo_urls={},
                               certificates=[KEY.cert_der], nameid_formats=[EMAIL], want_authn_requests_signed=False,
                               document_id="_m1")
    return etree.tostring(element)


def record_toml(metadata_url: str | None = None) -> str:
    idp = f'entity_id = "{IDP}"\nnameid_format = "{EMAIL}"\n' + (f'metadata_url = "{metadata_url}"\n' if metadata_url
                                                                else "")
    return (f'[biller]\nid = "B-1"\nname = "Acme Water"\n[sp]\nentity_id = "{SP}"\nacs_url = "{ACS}"\n[idp]\n{idp}'
            '[[claims]]\nname = "AccountNumber"\nrequired = true\n[[claims]]\nname = "LoginTypeId"\nrequired = true\n'
            'login_type = true\n[[login_types]]\nid = 1\nname = "Customer"\n')


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serving() as local:
        local.routes["/metadata"] = respond(200, good_metadata())
        yield local


@pytest.fixture
def app(tmp_path: Path, server: LocalServer) -> Flask:
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "B-1.toml").write_text(record_toml(server.url("/metadata")))
    shutil.copy(DEMO / "springfield-water.toml", folder / "B-10442.toml")
    (folder / "broken.toml").write_text('[biller]\nid = 7\n')
    flask_app = create_app(crm_folder=folder, store=SQLiteStore(tmp_path / "s.sqlite3"), clock=lambda: NOW,
                           fetch_policy=LOCAL)
    flask_app.testing = True
    return flask_app


def token(client: FlaskClient) -> str:
    page = client.get("/").get_data(as_text=True)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def post_form(client: FlaskClient, path: str, fields: dict[str, Any]) -> Any:
    return client.post(path, data={"csrf": token(client), **fields}, content_type="multipart/form-data")


def title(response: Any) -> str:
    found = re.search(r"<title>(.*?)</title>", response.get_data(as_text=True), re.S)
    return found.group(1) if found else ""


def our_response(audience: str = SP, *, now: datetime = NOW) -> str:
    spec = ResponseSpec(issuer=IDP, destination=ACS, audience=audience, in_response_to="_req1",
                        nameid="jo@example.com", nameid_format=EMAIL, session_index="_s1",
                        claims=(Claim("AccountNumber", ("123",)), Claim("LoginTypeId", ("1",))), sign="both")
    return base64.b64encode(serialize(build_response(spec, now=now, key=KEY))).decode()


# ---- pages -------------------------------------------------------------------------------------

def test_home_lists_the_partners_and_says_what_is_wrong_with_a_broken_record(app: Flask) -> None:
    page = app.test_client().get("/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Acme Water" in text and "Springfield Water" in text
    assert "This record cannot be used:" in text and "biller.id" in text
    assert '<a href="/partners/B-1/report">Go-live report</a>' in text and 'href="/test-login/B-1"' in text


def test_headers_of_security_md_6_on_every_page(app: Flask) -> None:
    for path in ("/", "/api/v1/partners", "/no-such-page"):
        headers = app.test_client().get(path).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


def test_uploaded_metadata_is_checked_against_the_chosen_biller(app: Flask) -> None:
    client = app.test_client()
    page = post_form(client, "/check/metadata", {"metadata_file": (io.BytesIO(good_metadata()), "idp.xml"),
                                                 "biller": "B-1"})
    assert page.status_code == 200 and "ready" in title(page) and "not ready" not in title(page)
    demo = post_form(client, "/check/metadata", {"metadata_text": DEMO_XML.decode(), "biller": "B-10442"})
    assert "not ready" in title(demo) and "CRM001" in demo.get_data(as_text=True)


def test_metadata_by_url_and_an_uploaded_record(app: Flask, server: LocalServer) -> None:
    page = post_form(app.test_client(), "/check/metadata", {
        "metadata_url": server.url("/metadata"),
        "crm_file": (io.BytesIO(record_toml().encode()), "acme.toml")})
    assert "not ready" not in title(page) and "acme.toml" in page.get_data(as_text=True)


def test_an_unreachable_url_is_a_finding_not_an_error(app: Flask) -> None:
    page = post_form(app.test_client(), "/check/metadata", {"metadata_url": "https://10.0.0.1/metadata"})
    assert page.status_code == 200 and "NET" in page.get_data(as_text=True) and "not ready" in title(page)


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "no metadata was given"),
    ({"metadata_text": "<x/>", "metadata_url": "https://idp.example.com/m"}, "pasted text and a URL were both given"),
    ({"metadata_url": "ftp://idp.example.com/m"}, "must start with https://"),
    ({"metadata_text": "<x/>", "biller": "nobody"}, "There is no CRM record for biller"),
    ({"metadata_text": "<x/>", "biller": "broken"}, "is invalid"),
    ({"metadata_text": "<x/>", "crm_file": (io.BytesIO(b"[biller\n"), "bad.toml")}, "bad.toml"),
])
def test_form_mistakes_are_named_on_the_form_page(app: Flask, fields: dict[str, Any], message: str) -> None:
    page = post_form(app.test_client(), "/check/metadata", fields)
    text = page.get_data(as_text=True)
    assert page.status_code == 400 and message in text.replace("&#39;", "'") and 'role="alert"' in text


def test_a_pasted_response_is_verified_with_the_records_metadata(app: Flask) -> None:
    client = app.test_client()
    good = post_form(client, "/check/response", {"response_text": our_response(), "biller": "B-1",
                                                 "request_id": "_req1"})
    assert "not ready" not in title(good), good.get_data(as_text=True)[:2000]
    wrong = post_form(client, "/check/response", {"response_text": our_response(SP + "/"), "biller": "B-1",
                                                  "request_id": "_req1"})
    assert "RSP013" in wrong.get_data(as_text=True)
    hostile = post_form(client, "/check/response", {"response_text": "<script>alert(1)</script>"})
    assert "<script>alert" not in hostile.get_data(as_text=True)


def test_the_discovery_form_probes_the_sign_in_url(app: Flask, server: LocalServer) -> None:
    server.routes["/sso"] = respond(400, b"no request", "text/html", [("X-Frame-Options", "DENY")])
    metadata = good_metadata().replace(b"https://idp.example.com/sso", server.url("/sso").encode())
    server.routes["/m2"] = respond(200, metadata)
    page = post_form(app.test_client(), "/discover", {"metadata_url": server.url("/m2"), "biller": "B-1",
                                                      "probe": "on"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "SAML discovery worksheet" in text and "X-Frame-Options: DENY" in text


def test_discovery_of_metadata_that_cannot_be_read_shows_the_findings_not_a_worksheet(
    app: Flask, server: LocalServer
) -> None:
    server.routes["/login-page"] = respond(200, b"<html><body>Sign in</body></html>", "text/html")
    page = post_form(app.test_client(), "/discover", {"metadata_url": server.url("/login-page")})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "XML007" in text
    assert "SAML discovery worksheet" not in text and "The five questions" not in text


def test_the_go_live_report_of_a_partner(app: Flask) -> None:
    client = app.test_client()
    report = client.get("/partners/B-1/report")
    assert report.status_code == 200 and "not ready" not in title(report)
    worksheet = client.get("/partners/B-1/discover")
    assert worksheet.status_code == 200 and "Acme Water" in worksheet.get_data(as_text=True)
    assert client.get("/partners/B-10442/report").status_code == 200  # unreachable URL: findings, not a crash
    assert client.get("/partners/nobody/report").status_code == 404
    assert client.get("/partners/broken/report").status_code == 400


# ---- CSRF and limits ------------------------------------------------------------------------------

def test_forms_need_the_token_and_this_site(app: Flask) -> None:
    client = app.test_client()
    good = token(client)
    assert client.post("/check/metadata", data={"metadata_text": "<x/>"}).status_code == 403
    assert client.post("/check/metadata", data={"metadata_text": "<x/>", "csrf": "x" * 43}).status_code == 403
    forged = client.post("/check/metadata", data={"metadata_text": "<x/>", "csrf": good},
                         headers={"Sec-Fetch-Site": "cross-site"})
    assert forged.status_code == 403 and "another site" in forged.get_data(as_text=True)
    sibling = client.post("/check/metadata", data={"metadata_text": "<x/>", "csrf": good},
                          headers={"Sec-Fetch-Site": "same-site"})  # another host or port of the same site
    assert sibling.status_code == 403
    # A cookie planted by a sibling host, repeated in the field, is not signed by this app.
    planted = app.test_client()
    planted.set_cookie("saml_preflight_csrf", "x.y")
    assert planted.post("/check/metadata", data={"metadata_text": "<x/>", "csrf": "x.y"}).status_code == 403
    assert client.post("/check/metadata", data={"metadata_text": "<x/>", "csrf": good}).status_code == 200


def test_the_api_takes_only_json_from_this_site(app: Flask) -> None:
    client = app.test_client()
    plain = client.post("/api/v1/metadata", data="<x/>", content_type="text/plain")
    assert plain.status_code == 415 and "application/json" in plain.get_json()["detail"]
    cross = client.post("/api/v1/metadata", json={"xml": "<x/>"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403


def test_uploads_are_capped(app: Flask) -> None:
    client = app.test_client()
    # Encoded here, in memory: the test client would spool a body this large to a file it never closes.
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token(client)}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata_file"; filename="big.xml"\r\n'
            "Content-Type: text/xml\r\n\r\n").encode() + b"<" * (7 * 1024 * 1024) + f"\r\n--{boundary}--\r\n".encode()
    big = client.post("/check/metadata", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert big.status_code == 413 and "6,144 KiB" in big.get_data(as_text=True)
    api = client.post("/api/v1/metadata", data=json.dumps({"xml": "x" * (7 * 1024 * 1024)}),
                      content_type="application/json")
    assert api.status_code == 413 and api.get_json()["detail"].startswith("the request body is larger")
    acs = client.post("/test-sp/acs", data=b"SAMLResponse=" + b"x" * (300 * 1024),
                      content_type="application/x-www-form-urlencoded")
    assert acs.status_code == 413  # the ACS keeps SECURITY.md §1's 256 KiB


# ---- the JSON API -----------------------------------------------------------------------------------

def test_api_checks_metadata_and_responses(app: Flask, server: LocalServer) -> None:
    client = app.test_client()
    report = client.post("/api/v1/metadata", json={"url": server.url("/metadata"), "biller": "B-1"}).get_json()
    assert report["schema"] == "saml-preflight/report/v1" and report["exit_code"] == 0
    inline = json.loads(json.dumps({"biller": {"id": "X", "name": "X"}, "sp": {"entity_id": SP, "acs_url": ACS}}))
    assert client.post("/api/v1/metadata", json={"xml": DEMO_XML.decode(), "crm": inline}).status_code == 200
    checked = client.post("/api/v1/responses", json={"response": our_response(), "biller": "B-1",
                                                     "request_id": "_req1"}).get_json()
    assert checked["exit_code"] == 0, checked["findings"]
    worksheet = client.post("/api/v1/discover", json={"xml": good_metadata().decode(), "probe": False}).get_json()
    assert worksheet["schema"] == "saml-preflight/discovery/v1" and worksheet["answers"][2]["answer"] == [IDP]


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/api/v1/metadata", {"xml": "<x/>", "colour": "red"}, "unknown keys: colour"),
    ("/api/v1/metadata", {"xml": "<x/>", "url": "https://a.example"}, "not both"),
    ("/api/v1/metadata", {}, "send the metadata as 'xml'"),
    ("/api/v1/metadata", {"xml": "<x/>", "biller": "nobody"}, "There is no CRM record"),
    ("/api/v1/metadata", {"xml": "<x/>", "crm": {"biller": {}}}, "is not valid"),
    ("/api/v1/responses", {"response": 5}, "must be a non-empty string"),
    ("/api/v1/discover", {"xml": "<x/>", "probe": "yes"}, "'probe' must be true or false"),
])
def test_api_mistakes_are_named(app: Flask, path: str, body: dict[str, Any], message: str) -> None:
    answer = app.test_client().post(path, json=body)
    assert answer.status_code == 400 and message in answer.get_json()["detail"]


def test_a_response_is_asked_for_by_the_one_key_the_api_takes(app: Flask) -> None:
    # A response is never fetched from a URL: the error names only the key that is accepted.
    answer = app.test_client().post("/api/v1/responses", json={})
    assert answer.status_code == 400
    assert answer.get_json()["detail"] == "send the SAML response as 'response' (text)"


def test_api_discovery_of_what_is_not_metadata_answers_422_with_the_report(app: Flask) -> None:
    answer = app.test_client().post("/api/v1/discover", json={"xml": "<html><body>Sign in</body></html>",
                                                                "probe": False})
    assert answer.status_code == 422
    report = answer.get_json()
    assert report["schema"] == "saml-preflight/report/v1" and "XML007" in [f["code"] for f in report["findings"]]


def test_the_openapi_document_describes_every_api_route_and_no_other(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    routes = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == described


def test_gunicorn_builds_the_app_from_the_environment_and_healthz_reports_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from metadata.store import RedisStore

    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "B-1.toml").write_text(record_toml())
    monkeypatch.setenv("VALIDATOR_CRM_FOLDER", str(folder))
    monkeypatch.setenv("VALIDATOR_STORE", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    monkeypatch.setenv("VALIDATOR_BASE_URL", "https://preflight.example/")
    app = create_app()
    assert app.extensions["saml_validator_web"].acs_url == "https://preflight.example/test-sp/acs"
    assert app.test_client().get("/healthz").get_json() == {"status": "ok", "partners": 1}
    assert (tmp_path / "env.sqlite3").exists()
    down = create_app(crm_folder=folder, store=RedisStore("redis://127.0.0.1:9/0"))
    answer = down.test_client().get("/healthz")
    assert answer.status_code == 503 and answer.get_json()["status"] == "unavailable"


@pytest.mark.parametrize("path", ["/etc/passwd", "/no/such/file", "/dev/zero"])
def test_an_uploaded_record_never_opens_a_server_file(app: Flask, path: str) -> None:
    record = record_toml().replace('[idp]\n', f'[idp]\nmetadata_url = "{path}"\n')
    report = app.test_client().post("/api/v1/responses", json={"response": our_response(), "crm": _json(record)})
    assert report.status_code == 200
    codes = [f["code"] for f in report.get_json()["findings"]]
    assert any(c.startswith("NET") for c in codes) and "XML002" not in codes, codes


def _json(toml_text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(toml_text)


def test_json_records_are_partners_too(app: Flask) -> None:
    folder = app.extensions["saml_validator_web"].crm_folder
    (folder / "B-9.json").write_text(json.dumps(_json(record_toml().replace('"B-1"', '"B-9"'))))
    listed = {p["biller_id"]: p for p in app.test_client().get("/api/v1/partners").get_json()}
    assert listed["B-9"]["usable"] is True
    checked = app.test_client().post("/api/v1/metadata", json={"xml": good_metadata().decode(), "biller": "B-9"})
    assert checked.get_json()["inputs"]["crm"] == "CRM record B-9"


def test_a_record_entity_id_off_by_a_trailing_slash_is_crm001_in_the_form_and_the_api(app: Flask) -> None:
    """Issue 12: the same CRM001 as the CLI and the test login, never SIG026 or XML008, and the
    response is still verified with the near-missed entity's certificates."""
    record = record_toml().replace(f'entity_id = "{IDP}"', f'entity_id = "{IDP}/"')
    assert record != record_toml()
    api = app.test_client().post("/api/v1/responses", json={
        "response": our_response(), "crm": _json(record), "metadata_xml": good_metadata().decode(),
        "request_id": "_req1"})
    assert api.status_code == 200, api.get_data(as_text=True)
    report = api.get_json()
    codes = [f["code"] for f in report["findings"] if f["severity"] == "error"]
    assert codes == ["CRM001"], report["findings"]
    assert "trailing slash" in report["findings"][0]["message"] and report["facts"]["response"]["verified"] is True

    from io import BytesIO

    page = post_form(app.test_client(), "/check/response", {
        "response_text": our_response(), "request_id": "_req1",
        "metadata_file": (BytesIO(good_metadata()), "idp.xml"), "crm_file": (BytesIO(record.encode()), "b.toml")})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "CRM001" in text and "trailing slash" in text
    assert "SIG026" not in text and "XML008" not in text


def test_a_folder_billers_trust_on_record_verifies_a_pasted_response_and_an_uploaded_record_opens_no_file(
    tmp_path: Path
) -> None:
    """A biller chosen from the CRM folder brings its trust on record (here its metadata_file);
    the same record uploaded through the form opens no file of the server, and SIG026 then says
    how this surface takes metadata (a form field, a JSON key), not the CLI's --metadata."""
    from io import BytesIO

    folder = tmp_path / "crm"
    folder.mkdir()
    record = record_toml().replace("[idp]\n", '[idp]\nmetadata_file = "b1-idp.xml"\n', 1)
    (folder / "B-1.toml").write_text(record)
    (folder / "b1-idp.xml").write_bytes(good_metadata())
    app = create_app(crm_folder=folder, store=SQLiteStore(tmp_path / "s.sqlite3"), clock=lambda: NOW)
    client = app.test_client()
    chosen = client.post("/api/v1/responses", json={"response": our_response(), "biller": "B-1",
                                                    "request_id": "_req1"}).get_json()
    assert chosen["verdict"] == "ready", chosen["findings"]
    assert chosen["facts"]["trust_source"]["kind"] == "metadata_file"

    uploaded = client.post("/api/v1/responses", json={"response": our_response(), "crm": _json(record),
                                                      "request_id": "_req1"}).get_json()
    sig026 = next(f for f in uploaded["findings"] if f["code"] == "SIG026")
    assert "'metadata_xml' or 'metadata_url'" in sig026["message"] + sig026["fix"]
    assert "--metadata" not in sig026["message"] + sig026["fix"]
    page = post_form(client, "/check/response", {"response_text": our_response(), "request_id": "_req1",
                                                 "crm_file": (BytesIO(record.encode()), "b.toml")})
    text = html.unescape(page.get_data(as_text=True))
    assert "SIG026" in text and "--metadata" not in text and "Give the IdP's metadata in the form" in text
