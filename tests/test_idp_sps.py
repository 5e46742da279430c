"""Registering SPs at runtime through ``/api/v1/sps``: register, list, log in, replace, delete; every
refusal a problem document; the store-backed registry (one read per lookup, a broken value never a 500)."""

from __future__ import annotations

import http.server
import ipaddress
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp import registrations, registry
from idp.registry import STORED
from metadata.fetch import FetchPolicy
from metadata.saml import BINDING_ARTIFACT, BINDING_POST, DS
from metadata.xml import MESSAGE_LIMITS, parse_untrusted
from tests.factory import session_keypair
from tests.idp_support import ACS, SP_ENTITY, authn_request, decoded, login_as, make_idp, redirect_path
from tests.sp_support import NEW_ACS, NEW_SP, aggregate, sp_element, sp_metadata
from tests.test_idp_api import assert_problem

TOKEN = "sp-registry-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make_idp(tmp_path, api_token=TOKEN)


def post(client: FlaskClient, body: dict[str, object], headers: dict[str, str] | None = None) -> TestResponse:
    return client.post("/api/v1/sps", json=body, headers=BEARER if headers is None else headers)


def delete(client: FlaskClient, entity_id: str, headers: dict[str, str] | None = None) -> TestResponse:
    return client.delete(f"/api/v1/sps?entity_id={quote(entity_id, safe='')}",
                         headers=BEARER if headers is None else headers)


def start(client: FlaskClient, issuer: str = NEW_SP, acs: str = NEW_ACS, request_id: str = "_req_new_sp_0001"
          ) -> TestResponse:
    return client.get(redirect_path(authn_request(issuer=issuer, acs=acs, request_id=request_id)))


def finding_codes(answer: TestResponse) -> list[str]:
    document = assert_problem(answer, 400)
    findings = document["findings"]
    assert isinstance(findings, list) and all({"code", "title", "message"} <= set(f) for f in findings)
    return [f["code"] for f in findings]


def test_register_list_log_in_delete_refused(app: Flask) -> None:
    client = app.test_client()
    created = post(client, {"metadata": sp_metadata(), "by": "Dana (CI)"})
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert body["entity_id"] == NEW_SP and body["acs"] == [NEW_ACS] and body["source"] == "api"
    assert body["registered_by"] == "Dana (CI)" and body["registered_at"] and body["replaced"] is False

    listed = client.get("/api/v1/sps").get_json()
    assert [(s["entity_id"], s["source"]) for s in listed] == [(SP_ENTITY, "file"), (NEW_SP, "api")]
    assert listed[1]["options"] == {"sign": None, "encrypt": False, "name_format": None, "nameid_format": None}

    fields = login_as(client, start(client).headers["Location"])
    assert fields["_action"] == NEW_ACS
    assert b'InResponseTo="_req_new_sp_0001"' in decoded(fields) and NEW_SP.encode() in decoded(fields)

    gone = delete(client, NEW_SP)
    assert gone.status_code == 200 and gone.get_json() == {"deleted": NEW_SP}
    refused = start(client, request_id="_req_new_sp_0002")
    assert refused.status_code == 400 and "REQ011" in refused.get_data(as_text=True)
    assert [s["entity_id"] for s in client.get("/api/v1/sps").get_json()] == [SP_ENTITY]
    assert_problem(delete(client, NEW_SP), 404)


def test_every_change_is_recorded_with_who_and_where(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="idp"):
        assert post(client, {"metadata": sp_metadata(), "by": "Dana"}).status_code == 201
        assert post(client, {"metadata": sp_metadata(), "replace": True}).status_code == 201
        gone = client.delete(f"/api/v1/sps?entity_id={quote(NEW_SP, safe='')}&by=Eve", headers=BEARER)
        assert gone.status_code == 200
    with app.app_context():
        changes = registrations.changes(app.extensions["saml_idp"])
    assert [(c.action, c.via, c.by) for c in changes] == [("deleted", "api", "Eve"), ("replaced", "api", None),
                                                          ("registered", "api", "Dana")]
    assert all(c.entity_id == NEW_SP and c.address == "127.0.0.1" and c.at for c in changes)
    assert sum(NEW_SP in r.getMessage() for r in caplog.records) == 3


def test_a_duplicate_needs_replace_and_replace_works(app: Flask) -> None:
    client = app.test_client()
    assert post(client, {"metadata": sp_metadata()}).status_code == 201
    other_acs = "https://new-sp.example.com/saml/acs2"
    again = assert_problem(post(client, {"metadata": sp_metadata(acs=[(BINDING_POST, other_acs)])}), 409)
    assert "exists; to replace it, send \"replace\": true" in str(again["detail"])
    assert client.get("/api/v1/sps").get_json()[1]["acs"] == [NEW_ACS]  # unchanged

    replaced = post(client, {"metadata": sp_metadata(acs=[(BINDING_POST, other_acs)]), "replace": True,
                             "sign": "both"})
    assert replaced.status_code == 201 and replaced.get_json()["replaced"] is True
    listed = client.get("/api/v1/sps").get_json()[1]
    assert listed["acs"] == [other_acs] and listed["options"]["sign"] == "both"
    fields = login_as(client, start(client, acs=other_acs).headers["Location"])
    assert fields["_action"] == other_acs
    signatures = parse_untrusted(decoded(fields), MESSAGE_LIMITS).getroot().iter(f"{{{DS}}}Signature")
    assert len(list(signatures)) == 2  # sign = "both": the new options apply at once


def test_replace_true_registers_a_new_sp_too(app: Flask) -> None:
    answer = post(app.test_client(), {"metadata": sp_metadata(), "replace": True})
    assert answer.status_code == 201 and answer.get_json()["replaced"] is False


def test_a_file_sp_is_never_replaced_or_deleted(app: Flask) -> None:
    client = app.test_client()
    for replace in (False, True):
        refused = assert_problem(post(client, {"metadata": sp_metadata(SP_ENTITY, [(BINDING_POST, NEW_ACS)]),
                                               "replace": replace}), 409)
        assert "idp.toml" in str(refused["detail"])
    assert "idp.toml" in str(assert_problem(delete(client, SP_ENTITY), 403)["detail"])
    assert client.get("/api/v1/sps").get_json()[0]["acs"] == [ACS]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_changes_need_the_token_and_the_list_does_not(app: Flask, headers: dict[str, str]) -> None:
    client = app.test_client()
    for answer in (post(client, {"metadata": sp_metadata()}, headers), delete(client, NEW_SP, headers)):
        assert_problem(answer, 401)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/sps").status_code == 200
    assert len(client.get("/api/v1/sps").get_json()) == 1


def test_without_a_token_the_calls_are_open(tmp_path: Path) -> None:
    client = make_idp(tmp_path).test_client()
    assert post(client, {"metadata": sp_metadata()}, {}).status_code == 201
    assert delete(client, NEW_SP, {}).status_code == 200


def _signing() -> bytes:
    return session_keypair("sp-signing").cert_der


@pytest.mark.parametrize(("body", "code"), [
    ({"metadata": "<md:EntityDescriptor"}, "XML002"),
    ({"metadata": '<!DOCTYPE x [<!ENTITY a "b">]><x/>'}, "XML003"),
    ({"metadata": "<html><body>Sign in</body></html>"}, "XML007"),
    ({"metadata": "<x/>"}, "XML008"),
    ({"metadata": sp_metadata(idp=True)}, "SPM001"),
    ({"metadata": aggregate(sp_element("https://a.example.com/sp"), sp_element("https://b.example.com/sp"))},
     "SPM002"),
    ({"metadata": sp_metadata(), "entity_id": "https://other.example.com/sp"}, "SPM003"),
    ({"metadata": sp_metadata(acs=[(BINDING_ARTIFACT, NEW_ACS)])}, "SPM004"),
    ({"metadata": sp_metadata(acs=[(BINDING_POST, "http://new-sp.example.com/acs")])}, "SPM005"),
    ({"metadata": sp_metadata(acs=[(BINDING_POST, "http://localhost:8000/acs")])}, "SPM005"),  # not in dev mode
    ({"metadata": sp_metadata(keys=[("signing", b"")]), "encrypt": True}, "SPM006"),
    ({"metadata_url": "http://127.0.0.1:9/metadata"}, "NET001"),
    ({"metadata_url": "https://127.0.0.1:9/metadata"}, "NET004"),
])
def test_each_error_refuses_the_registration_with_its_code(app: Flask, body: dict[str, object], code: str) -> None:
    client = app.test_client()
    assert code in finding_codes(post(client, body))
    assert len(client.get("/api/v1/sps").get_json()) == 1


def test_a_warning_does_not_refuse_and_is_said(app: Flask) -> None:
    answer = post(app.test_client(), {"metadata": sp_metadata(authn_requests_signed=True)})
    assert answer.status_code == 201
    assert [f["code"] for f in answer.get_json()["findings"]] == ["SPM007"]


def test_one_sp_is_taken_from_an_aggregate(app: Flask) -> None:
    xml = aggregate(sp_element("https://idp.example.com", idp=True), sp_element("https://a.example.com/sp"),
                    sp_element(NEW_SP))
    client = app.test_client()
    assert post(client, {"metadata": xml, "entity_id": NEW_SP}).status_code == 201
    stored = json.loads(app.extensions["saml_idp"].store.get(STORED, NEW_SP))
    assert "https://a.example.com/sp" not in stored["metadata"]  # only the chosen entity is kept
    assert login_as(client, start(client).headers["Location"])["_action"] == NEW_ACS


def test_encryption_with_the_sps_key(app: Flask) -> None:
    client = app.test_client()
    encryption = session_keypair("sp-encryption").cert_der
    answer = post(client, {"metadata": sp_metadata(keys=[("encryption", encryption)]), "encrypt": True})
    assert answer.status_code == 201 and answer.get_json()["options"]["encrypt"] is True
    assert b"EncryptedAssertion" in decoded(login_as(client, start(client).headers["Location"]))


@pytest.mark.parametrize(("body", "named"), [
    ({"metadata": sp_metadata(), "sign": "everything"}, '"sign"'),
    ({"metadata": sp_metadata(), "encrypt": "yes"}, '"encrypt"'),
    ({"metadata": sp_metadata(), "name_format": "ldap"}, '"name_format"'),
    ({"metadata": sp_metadata(), "colour": "red"}, "unknown keys: colour"),
    ({"metadata": sp_metadata(), "replace": "yes"}, '"replace"'),
    ({"metadata": sp_metadata(), "by": "Dana\x00"}, '"by" contains a control or unassigned character'),
    ({"metadata": sp_metadata(), "by": "Dana\u0085"}, '"by" contains a control or unassigned character'),
    ({"metadata": sp_metadata(), "by": "D" * 201}, '"by" is 201 characters'),
    ({"metadata": sp_metadata(), "by": "\ud800"}, '"by" contains a control or unassigned character (U+D800)'),
    ({"metadata": sp_metadata(), "entity_id": f"{NEW_SP}\n"}, '"entity_id" contains a control or unassigned'),
    ({"metadata": sp_metadata(), "nameid_format": "urn:x\x1b"}, '"nameid_format" contains a control or unassigned'),
    ({"metadata_url": "https://sp.example.com/\r\nmd"}, '"metadata_url" contains a control or unassigned'),
    ({"metadata": "<md:EntityDescriptor \ud800/>"}, '"metadata" holds a lone surrogate (U+D800)'),
    ({"metadata": 7}, '"metadata" must be the XML as a string'),
    ({"metadata": sp_metadata(), "metadata_url": "https://sp.example.com/md"}, "not both"),
    ({}, "not neither"),
])
def test_bad_fields_are_refused_by_name(app: Flask, body: dict[str, object], named: str) -> None:
    document = assert_problem(post(app.test_client(), body), 400)
    assert named in str(document["detail"]), document


def test_metadata_over_the_body_cap_is_refused_with_what_to_do(app: Flask) -> None:
    big = sp_metadata().replace("<md:SPSSODescriptor", "<!--" + "x" * 300_000 + "--><md:SPSSODescriptor")
    document = assert_problem(post(app.test_client(), {"metadata": big}), 413)
    assert "256 KiB" in str(document["detail"]) and "metadata_url" in str(document["detail"])


def test_metadata_over_the_size_cap_is_refused_before_parsing(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(registrations, "parse_untrusted", never)
    application = registrations.Application(metadata=b"<x>" + b" " * registrations.PASTED_MAX + b"</x>",
                                            metadata_url=None, entity_id=None,
                                            options=registrations.options_from({}))
    [finding] = registrations.check(app.extensions["saml_idp"], application).findings
    assert finding.code == "XML004" and "give its https URL" in finding.message


def test_delete_needs_one_entity_id_and_no_body(app: Flask) -> None:
    client = app.test_client()
    assert "entity_id=" in str(assert_problem(client.delete("/api/v1/sps", headers=BEARER), 400)["detail"])
    assert "unknown parameters: x" in str(assert_problem(
        client.delete(f"/api/v1/sps?entity_id={quote(NEW_SP)}&x=1", headers=BEARER), 400)["detail"])
    twice = f"/api/v1/sps?entity_id={quote(NEW_SP)}&entity_id=x"
    assert_problem(client.delete(twice, headers=BEARER), 400)
    with_body = client.delete(f"/api/v1/sps?entity_id={quote(NEW_SP)}", data=b"{}", content_type="application/json",
                              headers=BEARER)
    assert "takes no body" in str(assert_problem(with_body, 400)["detail"])
    assert "takes no body" in str(assert_problem(client.get("/api/v1/sps", data=b"{}", content_type="application/json"),
                                                 400)["detail"])


# -- the store-backed registry ---------------------------------------------------------------------

def test_a_lookup_reads_the_store_once_and_parses_once(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app.test_client()
    assert post(client, {"metadata": sp_metadata()}).status_code == 201
    idp = app.extensions["saml_idp"]
    parses: list[bytes] = []
    reads: list[tuple[str, str]] = []
    real_parse, real_get = registry.from_stored, idp.store.get
    monkeypatch.setattr(registry, "from_stored", lambda raw: parses.append(raw) or real_parse(raw))
    monkeypatch.setattr(idp.store, "get", lambda ns, key: reads.append((ns, key)) or real_get(ns, key))
    for _ in range(3):
        assert idp.registry.get(NEW_SP) is not None
    assert parses == [] and reads == [(STORED, NEW_SP)] * 3  # parsed when registered, in this process
    assert idp.registry.get(SP_ENTITY) is not None and len(reads) == 3  # a file SP: no store read

    # another worker's replacement is a new value: parsed once, then cached again
    value = json.loads(real_get(STORED, NEW_SP))
    value["options"]["sign"] = "response"
    idp.store.put(STORED, NEW_SP, json.dumps(value).encode())
    assert idp.registry.get(NEW_SP).options.sign == "response"
    assert idp.registry.get(NEW_SP).options.sign == "response"
    assert len(parses) == 1


@pytest.mark.parametrize("value", [b"not json", b"[]", b'{"metadata": 7}', b'{"metadata": "<x/>"}',
                                   b'{"metadata": "<md:EntityDescriptor"}', json.dumps({
                                       "metadata": sp_metadata(), "options": {"sign": "everything"}}).encode(),
                                   json.dumps({"metadata": sp_metadata("https://someone-else.example.com")}).encode(),
                                   json.dumps({"metadata": sp_metadata(acs=[(BINDING_ARTIFACT, NEW_ACS)])}).encode()])
def test_a_stored_value_that_no_longer_reads_is_not_registered_and_never_a_500(
    app: Flask, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    app.extensions["saml_idp"].store.put(STORED, NEW_SP, value)
    with caplog.at_level(logging.ERROR, logger="idp"):
        refused = start(client)
        assert refused.status_code == 400 and "REQ011" in refused.get_data(as_text=True)
        assert start(client, request_id="_req_new_sp_0002").status_code == 400
    assert [r.getMessage() for r in caplog.records if NEW_SP in r.getMessage()][:1], "not logged"
    assert sum(NEW_SP in r.getMessage() for r in caplog.records) == 1  # logged once per value and process
    assert [s["entity_id"] for s in client.get("/api/v1/sps").get_json()] == [SP_ENTITY]
    assert client.get("/").status_code == 200 and client.get("/healthz").get_json()["sps"] == 1
    assert "no longer reads" in client.get("/sps").get_data(as_text=True)
    assert delete(client, NEW_SP).status_code == 200  # and it can be deleted


def test_a_file_sp_shadows_a_stored_one_of_the_same_entity_id(app: Flask) -> None:
    idp = app.extensions["saml_idp"]
    idp.store.put(STORED, SP_ENTITY, registry.stored_value(
        sp_metadata(SP_ENTITY, [(BINDING_POST, NEW_ACS)]), registrations.options_from({}),
        source="api", at="2026-01-01T00:00:00Z", by=None, metadata_url=None))
    assert [sp.source for sp in idp.registry] == ["file"] and idp.registry.entity_ids == (SP_ENTITY,)
    assert idp.registry.get(SP_ENTITY).sp.acs[0].location == ACS


# -- a metadata URL, fetched by the safe fetcher -----------------------------------------------------

class _Metadata(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/samlmetadata+xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metadata_server() -> Iterator[str]:
    _Metadata.body = sp_metadata().encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metadata"
    server.shutdown()
    server.server_close()


def test_metadata_from_a_url(app: Flask, metadata_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app.test_client()
    # The default policy refuses http and loopback (NET001 above); a test allows its own server only.
    monkeypatch.setattr(registrations, "FETCH_POLICY", FetchPolicy(
        allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),)))
    answer = post(client, {"metadata_url": metadata_server})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.get_json()["metadata_url"] == metadata_server
    assert login_as(client, start(client).headers["Location"])["_action"] == NEW_ACS


def test_the_list_shows_on_the_index(app: Flask) -> None:
    client = app.test_client()
    post(client, {"metadata": sp_metadata()})
    page = client.get("/").get_data(as_text=True)
    assert 'href="/sps"' in page and NEW_SP in page and "registered via api" in page and "idp.toml" in page


def test_an_idp_in_dev_mode_takes_a_local_http_acs(tmp_path: Path) -> None:
    client = make_idp(tmp_path, dev_mode=True).test_client()
    local = "http://localhost:8000/saml/acs"
    assert post(client, {"metadata": sp_metadata(acs=[(BINDING_POST, local)])}, {}).status_code == 201
    assert login_as(client, start(client, acs=local).headers["Location"])["_action"] == local


# ---- the metadata XML as the body ------------------------------------------------------------

XML = {**BEARER, "Content-Type": "application/samlmetadata+xml"}


def test_the_metadata_itself_can_be_the_body_with_options_as_parameters(app: Flask) -> None:
    client = app.test_client()
    created = client.post("/api/v1/sps?sign=both&by=Dana", data=sp_metadata(), headers=XML)
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert body["entity_id"] == NEW_SP and body["registered_by"] == "Dana" and body["options"]["sign"] == "both"
    again = client.post("/api/v1/sps", data=sp_metadata(), headers=XML)
    assert assert_problem(again, 409)["detail"] == (
        f'an SP {NEW_SP!r} exists; to replace it, send "replace": true (with an XML body: ?replace=true)')
    replaced = client.post("/api/v1/sps?replace=true", data=sp_metadata(), headers={**XML, "Content-Type": "text/xml"})
    assert replaced.status_code == 201 and replaced.get_json()["replaced"] is True
    fields = login_as(client, start(client).headers["Location"])
    assert fields["_action"] == NEW_ACS


@pytest.mark.parametrize(("query", "body", "said"), [
    ("?signed=both", None, "unknown parameters: signed"),
    ("?sign=both&sign=none", None, "given more than once: sign"),
    ("?encrypt=yes", None, 'the parameter "encrypt" must be true or false'),
    ("?replace=1", None, 'the parameter "replace" must be true or false'),
    ("?sign=everything", None, '"sign"'),
    ("", b"  \n", "the body is empty"),
    ("?by=a%07b", None, "by"),
])
def test_a_bad_parameter_of_an_xml_body_is_refused_naming_it(app: Flask, query: str, body: bytes | None,
                                                              said: str) -> None:
    answer = app.test_client().post(f"/api/v1/sps{query}", data=sp_metadata() if body is None else body, headers=XML)
    assert said in str(assert_problem(answer, 400)["detail"])
    assert [s["source"] for s in app.test_client().get("/api/v1/sps").get_json()] == ["file"]


# ---- a registration that changes while a login waits; the number of runtime SPs ------------------

@pytest.mark.parametrize("change", ["replace", "delete"])
def test_a_login_started_before_its_sp_changed_sends_nothing_to_the_old_acs(app: Flask, change: str) -> None:
    client = app.test_client()
    assert post(client, {"metadata": sp_metadata()}).status_code == 201
    location = start(client).headers["Location"]  # the pending request keeps NEW_ACS
    if change == "replace":
        moved = sp_metadata(acs=[(BINDING_POST, "https://other.example.com/saml/acs")])
        assert post(client, {"metadata": moved, "replace": True}).status_code == 201
    else:
        assert delete(client, NEW_SP).status_code == 200
    token = location.split("request=", 1)[1]
    answer = client.post("/login", data={"request": token, "persona": "alice"})
    text = answer.get_data(as_text=True)
    assert answer.status_code == 409 and "SAMLResponse" not in text and NEW_ACS in text
    assert ("no longer registered" if change == "delete" else "no longer has this ACS URL") in text


def test_the_number_of_runtime_sps_is_capped(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registrations, "MAX_RUNTIME_SPS", 2)
    client = app.test_client()
    for n in range(2):
        assert post(client, {"metadata": sp_metadata(f"https://sp{n}.example.com")}).status_code == 201
    third = post(client, {"metadata": sp_metadata("https://sp2.example.com")})
    assert "holds 2 SPs registered at runtime, its limit" in str(assert_problem(third, 409)["detail"])
    replaced = post(client, {"metadata": sp_metadata("https://sp1.example.com"), "replace": True})
    assert replaced.status_code == 201  # a replacement adds none


def test_a_login_from_a_known_sp_never_lists_the_store(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only an unknown issuer's REQ011 names the registered SPs, so only it lists the store's keys."""
    client = app.test_client()
    assert post(client, {"metadata": sp_metadata()}).status_code == 201
    store = app.extensions["saml_idp"].store
    listed: list[str] = []
    real_keys = store.keys
    monkeypatch.setattr(store, "keys", lambda ns: listed.append(ns) or real_keys(ns))
    assert start(client).status_code == 303 and listed == []
    unknown = start(client, issuer="https://unknown.example.com", request_id="_req_unknown")
    assert unknown.status_code == 400 and NEW_SP in unknown.get_data(as_text=True) and listed == [STORED]
