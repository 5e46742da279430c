"""The live test SP: /test-login → our test IdP → /test-sp/acs → a report judged against the CRM record."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from idp.settings import Persona, ServiceProvider, Signing
from metadata.bindings import decode_redirect
from metadata.certs import fingerprint
from metadata.crm import CRMRecord
from metadata.store import SQLiteStore
from tests.helpers import crm_toml
from tests.idp_support import IDP_BASE, login_as, make_idp, sso_path
from validator.sweep_history import SeenSigner, last_signer, record_signer
from validator.web import create_app
from validator.web.login_judge import UNSOLICITED_NS
from validator.web.login_result import RESULTS_NS, VIEWS_NS, LoginView, login_steps, read_report

BASE = "https://validator.test.example"
TEST_ACS = f"{BASE}/test-sp/acs"
PORTAL_ENTITY = "https://portal.example.com/saml/metadata"

CRM = crm_toml(sp_entity_id=PORTAL_ENTITY, acs_url="https://portal.example.com/saml/acs", idp={
    "entity_id": f"{IDP_BASE}/metadata", "sso_url": f"{IDP_BASE}/sso", "metadata_url": f"{IDP_BASE}/metadata",
    "nameid_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"})

MATCHING = {"AccountNumber": "100200300", "Email": "alice@example.com", "LoginTypeId": "1"}


class Clock:
    """The test SP's clock, moved by hand (the IdP keeps the real one, so start near now)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=250_000)

    def __call__(self) -> datetime:
        return self.now


class Pair:
    def __init__(self, tmp_path: Path, *, crm: str = CRM, sso_in_record: bool = True,
                 clock: Clock | None = None, sign: Signing = "both",
                 metadata: Callable[[CRMRecord], bytes] | None = None, fetched: bool = False) -> None:
        """`metadata` serves the record's IdP metadata (default: the IdP's own); `fetched`: the
        app's own loader, the SSRF-safe fetcher on the record's metadata URL."""
        folder = tmp_path / "crm"
        folder.mkdir()
        (folder / "B-1.toml").write_text(crm if sso_in_record else crm.replace(f'sso_url = "{IDP_BASE}/sso"\n', ""))
        self.idp_app = make_idp(tmp_path / "idp", sps=(ServiceProvider(entity_id=PORTAL_ENTITY, acs=[TEST_ACS],
                                                                       sign=sign),))
        self.idp_app.extensions["saml_idp"].personas["alice"] = Persona(
            id="alice", nameid="alice@example.com", claims=MATCHING)
        self.idp = self.idp_app.test_client()
        self.loads: list[str] = []
        self.clock = clock or Clock()
        self.app: Flask = create_app(crm_folder=folder, base_url=BASE,
                                     store=SQLiteStore(tmp_path / "validator.sqlite3"),
                                     metadata_loader=None if fetched else (metadata or self._metadata),
                                     clock=self.clock)
        self.app.testing = True
        self.sp: FlaskClient = self.app.test_client()

    def _metadata(self, record: CRMRecord) -> bytes:
        self.loads.append(record.biller.id)
        return self.idp.get("/metadata").get_data()

    def signer(self) -> SeenSigner | None:
        return last_signer(self.app.extensions["saml_validator_web"].store, "B-1")

    def start(self, biller: str = "B-1") -> str:
        """/test-login: the IdP redirect URL the test SP sent the browser to."""
        started = self.sp.get(f"/test-login/{biller}")
        assert started.status_code == 302, started.get_data(as_text=True)
        return started.headers["Location"]

    def login(self) -> dict[str, str]:
        """A whole SP-initiated login; the auto-POST form's fields."""
        at_idp = self.idp.get(sso_path(self.start()))
        assert at_idp.status_code in (302, 303), at_idp.get_data(as_text=True)
        fields = login_as(self.idp, at_idp.headers["Location"])
        assert fields.pop("_action") == TEST_ACS
        return fields


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return Pair(tmp_path)


def test_the_authn_request_and_cookie(pair: Pair) -> None:
    started = pair.sp.get("/test-login/B-1")
    assert started.status_code == 302
    location = started.headers["Location"]
    assert location.startswith(f"{IDP_BASE}/sso?SAMLRequest=")
    message = decode_redirect(urlsplit(location).query, "SAMLRequest")
    root = message.tree.getroot()
    assert root.get("AssertionConsumerServiceURL") == TEST_ACS
    assert root.get("Destination") == f"{IDP_BASE}/sso"
    request_id = root.get("ID")
    assert request_id and request_id[0] == "_" and len(request_id) == 41
    int(request_id[1:], 16)
    issuer = root.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer")
    assert issuer is not None and issuer.text == PORTAL_ENTITY
    cookie = started.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=None" in cookie


def test_end_to_end_ready_page_and_json(pair: Pair) -> None:
    fields = pair.login()
    posted = pair.sp.post("/test-sp/acs", data=fields)
    assert posted.status_code == 303, posted.get_data(as_text=True)
    location = posted.headers["Location"]
    assert location.startswith("/test-logins/")
    login_id = location.rsplit("/", 1)[1]

    page = pair.sp.get(location)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert ">ready</div>" in html
    assert claim_table(html) == [("AccountNumber", "100200300", "ok", ""), ("Email", "alice@example.com", "ok", ""),
                                 ("LoginTypeId", "1 (Customer)", "ok", "")]  # the role's name beside its ID
    assert "<saml:" not in html and "&lt;saml:Assertion" in html  # the XML is shown, escaped
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]

    api = pair.sp.get(f"/api/v1/test-logins/{login_id}")
    assert api.status_code == 200 and api.mimetype == "application/json"
    report = json.loads(api.get_data())
    assert report["schema"] == "saml-preflight/report/v1"
    assert report["verdict"] == "ready"
    assert [f["code"] for f in report["findings"] if f["severity"] != "info"] == []
    assert report["facts"]["response"]["claims"] == {k: [v] for k, v in MATCHING.items()}
    assert report["facts"]["test_sp"]["acs_url"] == TEST_ACS
    assert "ready" in html and report["summary"]["errors"] == 0

    # The certificate that verified it is remembered for the sweep's "current signer", with this login.
    idp_cert = pair.idp_app.extensions["saml_idp"].key.cert_der
    assert report["facts"]["response"]["signed_by"] == [fingerprint(idp_cert)] * 2
    assert pair.signer() == SeenSigner(fingerprint(idp_cert), pair.clock.now, login_id)

    again = pair.sp.post("/test-sp/acs", data=fields)  # consumed once
    assert again.status_code == 400
    assert "already answered" in again.get_data(as_text=True)


def test_a_failed_test_login_never_rewrites_the_signer(tmp_path: Path) -> None:
    # Finding 5 of issue 11: a verified but expired response, its unsigned InResponseTo rewritten to
    # a login the attacker started, was "not ready" yet stored its certificate as the current signer.
    pair = Pair(tmp_path, sign="assertion")
    store = pair.app.extensions["saml_validator_web"].store
    earlier = SeenSigner("AA:" * 31 + "AA", pair.clock.now - timedelta(days=3), "an-earlier-clean-login")
    record_signer(store, "B-1", earlier.sha256, earlier.verified_at, "an-earlier-clean-login")
    old = etree.fromstring(base64.b64decode(pair.login()["SAMLResponse"]))
    mine = decode_redirect(urlsplit(pair.start()).query, "SAMLRequest").tree.getroot().get("ID")
    old.set("InResponseTo", mine)  # outside the signed assertion
    pair.clock.now += timedelta(hours=2)  # and expired by now
    posted = pair.sp.post("/test-sp/acs", data={"SAMLResponse": base64.b64encode(etree.tostring(old)).decode()})
    assert posted.status_code == 303
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    assert report["verdict"] == "not ready" and report["facts"]["response"]["verified"] is True
    assert {"RSP017"} <= {f["code"] for f in report["findings"] if f["severity"] == "error"}
    assert pair.signer() == earlier


def test_a_login_with_any_error_records_no_signer(pair: Pair) -> None:
    pair.idp_app.extensions["saml_idp"].personas["alice"] = Persona(
        id="alice", nameid="alice@example.com", claims={**MATCHING, "LoginTypeId": "9"})
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    assert report["verdict"] == "not ready" and report["facts"]["response"]["signed_by"]
    assert pair.signer() is None


def claim_table(html: str) -> list[tuple[str, str, str, str]]:
    """The result page's claim table: (claim, actual, status, codes) per row."""
    return [(name.replace("<wbr>", ""), actual, status, codes) for name, actual, status, codes in re.findall(
        r'<tr><td class="mono claim-name"[^>]*>((?:[^<]|<wbr>)*)</td><td>[^<]*</td><td class="mono">([^<]*)</td>\s*'
        r'<td class="[^"]*">([^<]*?)(?: <span class="mono">\(([^)<]*)\)</span>)?</td></tr>', html)]


def test_a_renamed_claim_is_shown_missing(pair: Pair) -> None:
    renamed = {**MATCHING, "accountnumber": MATCHING["AccountNumber"]}
    del renamed["AccountNumber"]
    pair.idp_app.extensions["saml_idp"].personas["alice"] = Persona(id="alice", nameid="alice@example.com",
                                                                    claims=renamed)
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    html = pair.sp.get(posted.headers["Location"]).get_data(as_text=True)
    assert ">not ready</div>" in html
    rows = claim_table(html)
    assert ("AccountNumber", "— not sent", "missing", "CLM001") in rows  # a case mismatch is not the claim
    assert ("accountnumber", "100200300", "extra", "") in rows
    assert "CLM001" in html


def test_the_claims_table_says_what_the_claim_check_found(pair: Pair) -> None:
    # A login type with a stray space is CLM006 for the claim check; the table once judged it "ok"
    # on its own, after stripping the value. Now each row says what the check found about its claim.
    pair.idp_app.extensions["saml_idp"].personas["alice"] = Persona(
        id="alice", nameid="alice@example.com", claims={**MATCHING, "LoginTypeId": " 1"})
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    html = pair.sp.get(posted.headers["Location"]).get_data(as_text=True)
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    assert "CLM006" in {f["code"] for f in report["findings"] if f["severity"] == "error"}
    assert claim_table(html) == [("AccountNumber", "100200300", "ok", ""), ("Email", "alice@example.com", "ok", ""),
                                 ("LoginTypeId", " 1", "not an allowed ID", "CLM006")]
    assert '<td class="status-bad">not an allowed ID <span class="mono">(CLM006)</span></td>' in html


def test_a_result_stored_by_an_earlier_version_still_shows_its_claims(pair: Pair) -> None:
    from validator.web.login_result import RESULTS_NS

    store = pair.app.extensions["saml_validator_web"].store
    report = {"schema": "saml-preflight/report/v1", "clock": "2025-03-14T09:27:00Z", "verdict": "not ready",
              "summary": {"errors": 1, "warnings": 0, "info": 0},
              "findings": [{"code": "CLM001", "severity": "error", "title": "A required claim is missing",
                            "message": "the required claim 'Email' is not sent", "expected": "Email",
                            "actual": "AccountNumber", "where": "response: saml:AttributeStatement", "fix": "Add it."}],
              "facts": {"test_sp": {"acs_url": TEST_ACS}, "response": {
                  "verified": True, "signed": ["Assertion"], "nameid": "alice@example.com",
                  "claims": {"AccountNumber": ["100200300"], "Nickname": ["al"]}}}}
    view = {"biller_id": "B-1", "biller_name": "Test Biller", "started_at": "2025-03-14T09:26:53Z",
            "claims": [{"name": "AccountNumber", "required": True, "login_type": False},
                       {"name": "Email", "required": True, "login_type": False}], "login_types": {"1": "Customer"}}
    store.put(RESULTS_NS, "an-earlier-login-0001", json.dumps(report).encode(), ttl=60)
    store.put(VIEWS_NS, "an-earlier-login-0001", json.dumps(view).encode(), ttl=60)
    html = pair.sp.get("/test-logins/an-earlier-login-0001").get_data(as_text=True)
    assert claim_table(html) == [("AccountNumber", "100200300", "ok", ""), ("Email", "— not sent", "missing", "CLM001"),
                                 ("Nickname", "al", "extra", "")]
    assert '<td class="status-bad">missing' in html and '<td class="status-note">extra</td>' in html
    assert "CLM001" in html and "Test login for Test Biller (B-1)" in html


def test_two_tabs_each_find_their_own_request(pair: Pair) -> None:
    first = pair.login()
    pair.start()  # a second test login in another tab of the same browser
    posted = pair.sp.post("/test-sp/acs", data=first)
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    assert report["verdict"] == "ready", report["findings"]


def test_an_assertion_seen_in_an_earlier_test_login_is_a_replay(pair: Pair) -> None:
    import base64
    import re

    fields = pair.login()
    xml = base64.b64decode(fields["SAMLResponse"])
    assertion = re.search(rb'<saml:Assertion[^>]* ID="([^"]+)"', xml)
    assert assertion is not None
    store = pair.app.extensions["saml_validator_web"].store
    assert store.add("test-sp-seen-assertions", assertion.group(1).decode(), b"1", ttl=60)  # seen before
    posted = pair.sp.post("/test-sp/acs", data=fields)
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == ["RSP023"]


class _Counting:
    """Wraps a function and counts its calls (those whose arguments `counts` picks, when given)."""

    def __init__(self, wrapped: object, counts: object = None) -> None:
        self.wrapped, self.counts, self.calls = wrapped, counts, 0

    def __call__(self, *args: object, **kwargs: object) -> object:
        if self.counts is None or self.counts(*args):  # type: ignore[operator]
            self.calls += 1
        return self.wrapped(*args, **kwargs)  # type: ignore[operator]


@pytest.mark.parametrize("seen_before", [False, True], ids=["first-use", "replay"])
def test_the_acs_decodes_parses_and_verifies_each_response_once(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, seen_before: bool
) -> None:
    import re

    from metadata import bindings, xml
    from metadata.response import verify_response
    from validator import response_inspection

    fields = pair.login()
    if seen_before:  # the replay check is answered during the one run of the checks, not by a second run
        assertion = re.search(rb'<saml:Assertion[^>]* ID="([^"]+)"', base64.b64decode(fields["SAMLResponse"]))
        assert assertion is not None
        pair.app.extensions["saml_validator_web"].store.add("test-sp-seen-assertions", assertion.group(1).decode(),
                                                            b"1", ttl=60)
    verified = _Counting(verify_response)
    decoded = _Counting(bindings.decode_base64)
    # Parses of the message itself (the IdP's metadata is parsed too, for its certificates; what
    # was signed is parsed again inside the verifier, by design: SECURITY.md §2).
    parsed = _Counting(xml.parse_untrusted, lambda data, limits=None: limits is xml.MESSAGE_LIMITS)
    monkeypatch.setattr(response_inspection, "verify_response", verified)
    monkeypatch.setattr(bindings, "decode_base64", decoded)
    monkeypatch.setattr(bindings, "parse_untrusted", parsed)
    monkeypatch.setattr(response_inspection, "parse_untrusted", parsed)
    posted = pair.sp.post("/test-sp/acs", data=fields)
    assert posted.status_code == 303
    assert (verified.calls, decoded.calls, parsed.calls) == (1, 1, 1)
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    errors = [f["code"] for f in report["findings"] if f["severity"] == "error"]
    assert errors == (["RSP023"] if seen_before else [])


def test_sso_url_from_the_metadata(tmp_path: Path) -> None:
    pair = Pair(tmp_path, sso_in_record=False)
    assert pair.start().startswith(f"{IDP_BASE}/sso?SAMLRequest=")
    assert pair.loads == ["B-1"]


def test_another_browser_or_no_cookie(pair: Pair) -> None:
    fields = pair.login()
    other = pair.app.test_client()
    refused = other.post("/test-sp/acs", data=fields)
    assert refused.status_code == 400
    assert "No test login of this browser is waiting" in refused.get_data(as_text=True)
    assert pair.sp.post("/test-sp/acs", data=fields).status_code == 303  # the right browser still can


def test_a_response_claiming_to_answer_a_request_this_browser_has_not_pending_is_refused(pair: Pair) -> None:
    # A response with an InResponseTo answers a request: only the browser that sent it may post
    # it, once (SECURITY.md §3). Anonymous, with a forged token, or after the login expired: 400.
    fields = pair.login()
    anonymous = pair.app.test_client().post("/test-sp/acs", data=fields)
    forged = pair.app.test_client()
    forged.set_cookie("saml_preflight_test_login", "A" * 43)  # well-formed, but no login started with it
    for refused in (anonymous, forged.post("/test-sp/acs", data=fields)):
        assert refused.status_code == 400 and "No test login of this browser" in refused.get_data(as_text=True)
    assert pair.sp.post("/test-sp/acs", data=fields).status_code == 303  # the browser that started it
    store = pair.app.extensions["saml_validator_web"].store
    assert store.keys(UNSOLICITED_NS) == []  # nothing was kept for the refused posts


@pytest.mark.parametrize("body", [
    {"SAMLResponse": "garbage that is not base64 at all!"},
    {"SAMLResponse": base64.b64encode(b"<samlp:Response <script>alert(1)</script>").decode()},
    {"SAMLResponse": "PHNhbWxw"},
    {"RelayState": "x"},
    {},
])
def test_garbage_is_400(pair: Pair, body: dict[str, str]) -> None:
    pair.start()
    refused = pair.sp.post("/test-sp/acs", data=body)
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "not a SAML response" in text and "<script>" not in text


def test_duplicate_field_and_oversized_body(pair: Pair) -> None:
    pair.start()
    value = base64.b64encode(b"<x/>").decode()
    dup = pair.sp.post("/test-sp/acs", data=f"SAMLResponse={value}&SAMLResponse={value}",
                       content_type="application/x-www-form-urlencoded")
    assert dup.status_code == 400
    big = pair.sp.post("/test-sp/acs", data={"SAMLResponse": "A" * 300_000})
    assert big.status_code == 413
    assert big.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(("path", "status"), [
    ("/test-login/B-404", 404),
    ("/test-login/..%2fetc", 404),
    ("/test-login/B%201", 404),
    ("/test-logins/nonexistent-login-id-000", 404),
    ("/test-logins/%3Cscript%3E", 404),
    ("/api/v1/test-logins/nonexistent-login-id-000", 404),
    ("/test-sp/metadata?biller=B-404", 404),
    ("/nowhere", 404),
])
def test_unknown_things_are_404(pair: Pair, path: str, status: int) -> None:
    answer = pair.sp.get(path)
    assert answer.status_code == status
    assert "<script>" not in answer.get_data(as_text=True)


def test_unknown_biller_is_named(pair: Pair) -> None:
    answer = pair.sp.get("/test-login/B-404")
    assert answer.status_code == 404 and "B-404" in answer.get_data(as_text=True)


def test_an_invalid_record_is_400(tmp_path: Path) -> None:
    pair = Pair(tmp_path, crm=CRM.replace('name = "Test Biller"', 'name = "Test Biller"\ntypo = 1'))
    answer = pair.sp.get("/test-login/B-1")
    assert answer.status_code == 400 and "invalid" in answer.get_data(as_text=True)


def test_sp_metadata(pair: Pair) -> None:
    from lxml import etree

    md = "urn:oasis:names:tc:SAML:2.0:metadata"
    for query, entity in (("", f"{BASE}/test-sp/metadata"), ("?biller=B-1", PORTAL_ENTITY)):
        answer = pair.sp.get(f"/test-sp/metadata{query}")
        assert answer.status_code == 200 and answer.mimetype == "application/samlmetadata+xml"
        root = etree.fromstring(answer.get_data())
        assert root.get("entityID") == entity
        acs = root.find(f"{{{md}}}SPSSODescriptor/{{{md}}}AssertionConsumerService")
        assert acs is not None and acs.get("Location") == TEST_ACS
        assert acs.get("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


def test_signed_requests(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from metadata.bindings import verify_redirect_signature
    from metadata.keys import generate_keypair

    key = generate_keypair("validator.test.example", now=datetime.now(UTC))
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "B-1.toml").write_text(CRM)
    app = create_app(crm_folder=folder, base_url=BASE, store=SQLiteStore(tmp_path / "s.sqlite3"),
                     signing_key=key)
    location = app.test_client().get("/test-login/B-1").headers["Location"]
    query = urlsplit(location).query
    assert "Signature" in parse_qs(query)
    message = decode_redirect(query, "SAMLRequest")
    verify_redirect_signature(message, [key.cert_der])
    assert b"X509Certificate" in app.test_client().get("/test-sp/metadata").get_data()


def test_a_javascript_sso_location_is_never_followed(tmp_path: Path) -> None:
    (tmp_path / "B-9.toml").write_text(
        '[biller]\nid = "B-9"\nname = "x"\n[sp]\nentity_id = "urn:x"\nacs_url = "https://x/acs"\n'
        '[idp]\nsso_url = "javascript:alert(1)"\n')
    app = create_app(crm_folder=tmp_path, base_url="https://validator.test.example",
                     store=SQLiteStore(tmp_path / "s.sqlite3"))
    answer = app.test_client().get("/test-login/B-9")
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert "not an https URL" in answer.get_data(as_text=True)


# --- the sequence picture ------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def sequence_of(html: str) -> etree._Element:
    """The login's sequence picture on a result page, parsed."""
    start = html.index('<svg xmlns="http://www.w3.org/2000/svg" class="login-sequence"')
    return etree.fromstring(html[start:html.index("</svg>", start) + len("</svg>")].encode())


def step_states(svg: etree._Element) -> dict[str, str]:
    return {g.get("class", "").split()[1]: g.get("class", "").split()[2]
            for g in svg.iter(f"{SVG}g") if g.get("class", "").startswith("step ")}


def test_the_result_page_draws_the_login_with_its_times(tmp_path: Path) -> None:
    clock = Clock()
    started = clock.now
    pair = Pair(tmp_path, clock=clock)
    fields = pair.login()
    clock.now += timedelta(seconds=84.3)  # the user at the IdP
    posted = pair.sp.post("/test-sp/acs", data=fields)
    login_id = posted.headers["Location"].rsplit("/", 1)[1]
    view = json.loads(pair.app.extensions["saml_validator_web"].store.get(VIEWS_NS, login_id))
    assert view["times"] == {"requested": started.isoformat().replace("+00:00", "Z"),
                             "received": clock.now.isoformat().replace("+00:00", "Z"),
                             "judged": clock.now.isoformat().replace("+00:00", "Z")}
    assert view["idp"] == {"entity_id": f"{IDP_BASE}/metadata", "vendor": None}

    html = pair.sp.get(posted.headers["Location"]).get_data(as_text=True)
    assert html.index('class="login-sequence"') < html.index("<h2>Claims")  # near the top
    svg = sequence_of(html)
    assert svg.get("role") == "img"
    assert step_states(svg) == dict.fromkeys(
        ("login", "request", "idp", "response", "signature", "protocol", "claims", "result"), "done")
    assert len(svg.findall(f".//{SVG}circle[@class='passed-mark']")) == 3
    words = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert {f"{started:%H:%M:%S}", f"{clock.now:%H:%M:%S}", "+1 min 24 s", "1 min 24 s",
            f"{IDP_BASE}/metadata", PORTAL_ENTITY, "report: ready"} <= set(words)
    assert "Every step completed and every check passed." in (svg.get("aria-label") or "")


@pytest.mark.parametrize(("fault", "stage", "codes"), [
    ("wrong-audience", "protocol", "RSP013"),
    ("signed-by-unknown-key", "signature", "SIG022"),
    ("missing-required-claim", "claims", "CLM001"),
])
def test_the_picture_marks_where_a_faulty_response_failed(pair: Pair, fault: str, stage: str, codes: str) -> None:
    pair.idp_app.extensions["saml_idp"].personas["alice"] = Persona(
        id="alice", nameid="alice@example.com", claims=MATCHING, faults=(fault,))
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    svg = sequence_of(pair.sp.get(posted.headers["Location"]).get_data(as_text=True))
    states = step_states(svg)
    assert [k for k, v in states.items() if v == "failed"] == [stage]
    order = list(states)
    assert all(states[k] == "not-reached" for k in order[order.index(stage) + 1:-1])
    assert states["result"] == "done"
    failed = next(g for g in svg.iter(f"{SVG}g") if g.get("class") == f"step {stage} failed")
    assert codes in "".join(failed.itertext())
    assert f"({codes}: " in (svg.get("aria-label") or "")


def test_a_hostile_entity_id_is_drawn_escaped(tmp_path: Path) -> None:
    hostile = f'{IDP_BASE}/metadata?<script>alert("x")</script>&'
    pair = Pair(tmp_path, crm=CRM.replace(f'entity_id = "{IDP_BASE}/metadata"',
                                          f"entity_id = '{hostile}'"))
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    html = pair.sp.get(posted.headers["Location"]).get_data(as_text=True)
    assert "<script>" not in html
    svg = sequence_of(html)
    assert hostile in "".join(t.text or "" for t in svg.iter(f"{SVG}title"))
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    # No metadata entity has that ID, nor one near it: CRM001 says so, and nothing is trusted.
    assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == ["CRM001"]
    assert report["facts"]["response"]["verified"] is False


def test_a_login_whose_record_names_another_entity_fails_at_the_signature_in_the_picture(tmp_path: Path) -> None:
    pair = Pair(tmp_path, crm=CRM.replace(f'entity_id = "{IDP_BASE}/metadata"',
                                          'entity_id = "https://elsewhere.example.org/idp"'))
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    svg = sequence_of(pair.sp.get(posted.headers["Location"]).get_data(as_text=True))
    assert step_states(svg)["signature"] == "failed"  # nothing is trusted


def test_a_view_stored_before_step_times_still_draws() -> None:
    steps, failed = login_steps(LoginView.read({"biller_id": "B-1", "started_at": "2025-03-14T09:26:53Z"}),
                                read_report({"verdict": "not ready",
                                             "findings": [{"code": "RSP013", "severity": "error"},
                                                          {"code": "CLM003", "severity": "warning"}]}))
    assert failed == "protocol"
    assert [s.at is not None for s in steps] == [True, True, False, False, False, False, False, False]
    assert next(s for s in steps if s.key == "protocol").note == "RSP013"


def test_one_error_is_named_with_its_title_several_by_their_codes() -> None:
    def note(findings: list[dict[str, str]]) -> str:
        steps, failed = login_steps(LoginView.read({}), read_report({"findings": findings}))
        return next(s for s in steps if s.key == failed).note

    audience = {"code": "RSP013", "severity": "error", "title": "The audience is not the portal's entity ID"}
    assert note([audience]) == "RSP013: The audience is not the portal's entity ID"
    assert note([audience, {**audience, "code": "RSP015"}]) == "RSP013, RSP015"
    many = [{**audience, "code": f"RSP0{n}"} for n in range(10, 16)]
    assert note(many) == "RSP010, RSP011, RSP012, RSP013 and 2 more"


def test_a_store_failure_during_the_replay_check_is_a_503_not_a_crash(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    from metadata.store import StoreUnavailable

    fields = pair.login()
    store = pair.app.extensions["saml_validator_web"].store
    add = store.add

    def failing(ns: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        if ns == "test-sp-seen-assertions":
            raise StoreUnavailable("the store is down")
        return bool(add(ns, key, value, ttl=ttl))

    monkeypatch.setattr(store, "add", failing)
    posted = pair.sp.post("/test-sp/acs", data=fields)
    assert posted.status_code == 503
    assert "the store is down" in posted.get_data(as_text=True)


def test_an_entity_id_off_by_a_trailing_slash_is_crm001_and_the_claims_are_still_judged(tmp_path: Path) -> None:
    pair = Pair(tmp_path, crm=CRM.replace(f'"{IDP_BASE}/metadata"', f'"{IDP_BASE}/metadata/"', 1))
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert [f["code"] for f in errors] == ["CRM001"]
    assert "trailing slash" in errors[0]["message"]
    assert not any(f["code"] in ("SIG026", "XML008") for f in report["findings"])


def test_a_refused_metadata_url_is_its_net_finding_in_the_test_login(tmp_path: Path) -> None:
    """An http metadata URL (no local development mode): NET001 in the login's report, as in the
    CLI, not SIG026 saying no metadata was given."""
    record = CRM.replace(f'metadata_url = "{IDP_BASE}/metadata"', 'metadata_url = "http://idp.example.com/metadata"')
    assert record != CRM
    pair = Pair(tmp_path, crm=record, fetched=True)
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    assert posted.status_code == 303, posted.get_data(as_text=True)
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    codes = [f["code"] for f in report["findings"]]
    assert "NET001" in codes and "SIG026" not in codes, codes
    assert report["inputs"]["metadata"] == "http://idp.example.com/metadata"
    assert "idp_metadata_error" not in report["facts"] and "trust_source" not in report["facts"]
    page = pair.sp.get(posted.headers["Location"]).get_data(as_text=True)
    assert "NET001" in page and "could not be used" not in page


@pytest.mark.parametrize(("served", "code"), [
    (b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>', "XML008"),
    (b"<html><body>Sign in</body></html>", "XML007"),  # a sign-in page: named as the CLI names it
])
def test_a_document_that_is_not_metadata_is_its_xml_finding_in_the_test_login(
        tmp_path: Path, served: bytes, code: str) -> None:
    pair = Pair(tmp_path, metadata=lambda record: served)
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == [code]


def test_the_test_login_report_names_its_trust_source(pair: Pair) -> None:
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    report = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    assert report["verdict"] == "ready", report["findings"]
    assert report["facts"]["trust_source"] == {"kind": "metadata_url", "location": f"{IDP_BASE}/metadata"}
    page = pair.sp.get(posted.headers["Location"]).get_data(as_text=True)
    assert f"The IdP's certificates: the record's metadata_url: {IDP_BASE}/metadata." in html.unescape(page)


def test_a_result_stored_with_an_idp_metadata_error_still_shows_it(pair: Pair) -> None:
    """Logins judged by earlier versions kept the metadata's problem in a fact: still shown."""
    posted = pair.sp.post("/test-sp/acs", data=pair.login())
    login_id = posted.headers["Location"].rsplit("/", 1)[1]
    store = pair.app.extensions["saml_validator_web"].store
    stored = json.loads(store.get(RESULTS_NS, login_id))
    stored["facts"]["idp_metadata_error"] = "the metadata holds 0 IdP entities; one is needed"
    store.put(RESULTS_NS, login_id, json.dumps(stored).encode(), ttl=60)
    page = pair.sp.get(posted.headers["Location"]).get_data(as_text=True)
    assert "could not be used: the metadata holds 0 IdP entities" in page
