"""The test IdP's behaviour over HTTP: request checks, login, SSO session, automation, SLO,
metadata, debug view and unsolicited responses."""

from __future__ import annotations

import base64
import html
import json
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from werkzeug.test import TestResponse

from idp.errors import RegistryError, SettingsError
from idp.settings import ServiceProvider, load_settings
from metadata.signing import verify
from metadata.store import SQLiteStore
from metadata.xml import MESSAGE_LIMITS, parse_untrusted
from tests.factory import make_keypair
from tests.helpers import inspect
from tests.idp_support import (
    ACS,
    IDP_BASE,
    SP_ENTITY,
    authn_request,
    decoded,
    form_fields,
    idp_key,
    login_as,
    logout_confirmation,
    make_idp,
    redirect_path,
)

SAMLP = "{urn:oasis:names:tc:SAML:2.0:protocol}"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"


def start(client: FlaskClient, xml: bytes | None = None, **kwargs: Any) -> TestResponse:
    return client.get(redirect_path(xml or authn_request(**kwargs)))


def error_codes(response: TestResponse) -> list[str]:
    import re

    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    return re.findall(r'<span class="code">(REQ\d{3})</span>', response.get_data(as_text=True))


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make_idp(tmp_path)


def test_login_then_single_sign_on_without_a_form(app: Flask) -> None:
    client = app.test_client()
    fields = login_as(client, start(client).headers["Location"])
    assert fields["_action"] == ACS
    again = start(client, request_id="_second_request_1")
    assert again.status_code == 200  # the IdP session signs the user in again, no form
    second = form_fields(again.get_data(as_text=True))
    assert b'InResponseTo="_second_request_1"' in decoded(second)


def test_force_authn_asks_again(app: Flask) -> None:
    client = app.test_client()
    login_as(client, start(client).headers["Location"])
    assert start(client, force_authn=True).status_code == 303


def test_is_passive_without_session_answers_no_passive(app: Flask) -> None:
    response = start(app.test_client(), is_passive=True)
    assert response.status_code == 200
    xml = decoded(form_fields(response.get_data(as_text=True)))
    assert b"urn:oasis:names:tc:SAML:2.0:status:NoPassive" in xml
    assert b"Assertion" not in xml


def test_password_form(app: Flask) -> None:
    client = app.test_client()
    location = start(client).headers["Location"]
    token = location.split("request=")[1]
    assert client.post("/login", data={"request": token, "username": "alice", "password": "wrong"}).status_code == 401
    ok = client.post("/login", data={"request": token, "username": "alice", "password": "alice-pw"})
    assert ok.status_code == 200
    assert b"SAMLResponse" in ok.get_data()


def test_a_pending_request_is_answered_once(app: Flask) -> None:
    client = app.test_client()
    location = start(client).headers["Location"]
    token = location.split("request=")[1]
    assert client.post("/login", data={"request": token, "persona": "alice"}).status_code == 200
    assert client.post("/login", data={"request": token, "persona": "alice"}).status_code == 400


@pytest.mark.parametrize(("make", "code"), [
    (lambda: authn_request(issuer="https://unknown.example/sp"), "REQ011"),
    (lambda: authn_request(acs="https://evil.example/acs"), "REQ020"),
    (lambda: authn_request(request_id="1-not-an-ncname"), "REQ015"),
    (lambda: authn_request(issue_instant="2001-01-01T00:00:00Z"), "REQ017"),
    (lambda: authn_request(destination="https://other-idp.example/sso"), "REQ018"),
    (lambda: authn_request(nameid_format="urn:example:custom-format"), "REQ026"),
])
def test_bad_requests_get_an_error_page_with_their_code(app: Flask, make: Callable[[], bytes], code: str) -> None:
    assert code in error_codes(start(app.test_client(), make()))


def test_unknown_sp_page_names_the_entity_id(app: Flask) -> None:
    page = start(app.test_client(), authn_request(issuer="https://unknown.example/sp"))
    assert "https://unknown.example/sp" in page.get_data(as_text=True)


@pytest.mark.parametrize(("query", "code"), [
    ("SAMLRequest=%%%broken-escape", "REQ007"),
    ("SAMLRequest=not*base64!", "REQ002"),
    ("SAMLRequest=" + base64.b64encode(b"not deflated at all").decode(), "REQ003"),
    ("SAMLRequest=a&SAMLRequest=b", "REQ005"),
    ("SAML%52equest=abc", "REQ006"),
    ("", "REQ001"),
])
def test_malformed_messages(app: Flask, query: str, code: str) -> None:
    assert code in error_codes(app.test_client().get(f"/sso?{query}"))


def _deflated(xml: bytes) -> str:
    from urllib.parse import quote

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return quote(base64.b64encode(compressor.compress(xml) + compressor.flush()).decode(), safe="")


def test_doctype_and_oversize_requests(app: Flask) -> None:
    client = app.test_client()
    doctype = b'<!DOCTYPE r [<!ENTITY a "b">]>' + authn_request()
    assert "REQ009" in error_codes(client.get(f"/sso?SAMLRequest={_deflated(doctype)}"))
    huge = authn_request().replace(b"</saml:Issuer>", b"</saml:Issuer><!--" + b"x" * 70_000 + b"-->")
    assert "REQ004" in error_codes(client.get(f"/sso?SAMLRequest={_deflated(huge)}"))


def test_relay_state_over_80_bytes(app: Flask) -> None:
    path = redirect_path(authn_request()) + "&RelayState=" + "r" * 81
    assert "REQ008" in error_codes(app.test_client().get(path))


def test_post_binding_and_relay_state_passed_through(app: Flask) -> None:
    client = app.test_client()
    body = {"SAMLRequest": base64.b64encode(authn_request()).decode(), "RelayState": "state-7"}
    first = client.post("/sso", data=body)
    assert first.status_code == 303
    fields = login_as(client, first.headers["Location"])
    assert fields["RelayState"] == "state-7"


def test_signed_requests_required_by_sp_metadata(tmp_path: Path) -> None:
    sp_key = make_keypair("sp.example.com")
    metadata = f'''<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP_ENTITY}">
  <md:SPSSODescriptor AuthnRequestsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>
      <ds:X509Certificate>{sp_key.cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:AssertionConsumerService index="0" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS}"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>'''
    (tmp_path / "sp.xml").write_text(metadata)
    app = make_idp(tmp_path, sps=(ServiceProvider(metadata="sp.xml"),))
    client = app.test_client()
    assert "REQ027" in error_codes(start(client))
    other = make_keypair("attacker")
    assert "REQ028" in error_codes(client.get(redirect_path(authn_request(), key_pem=other.key_pem)))
    unaddressed = client.get(redirect_path(authn_request(), key_pem=sp_key.key_pem))
    assert "REQ019" in error_codes(unaddressed)  # Bindings §3.4.5.2: a signed request names its Destination
    signed = authn_request(destination=f"{IDP_BASE}/sso")
    assert client.get(redirect_path(signed, key_pem=sp_key.key_pem)).status_code == 303


def test_every_response_is_signed_by_the_idp_key_and_schema_valid(app: Flask) -> None:
    from metadata.schema import validate

    client = app.test_client()
    xml = decoded(login_as(client, start(client).headers["Location"]))
    tree = parse_untrusted(xml, MESSAGE_LIMITS)
    assert validate(tree, "protocol") == []
    assertion = tree.getroot().find(f"{SAML}Assertion")
    assert assertion is not None
    verified = verify(assertion, [idp_key(app).cert_der])
    signed = etree.fromstring(verified.signed_bytes)
    assert signed.findtext(f"{SAML}Subject/{SAML}NameID") == "alice@example.com"
    audience = signed.findtext(f"{SAML}Conditions/{SAML}AudienceRestriction/{SAML}Audience")
    assert audience == SP_ENTITY


def test_automation_api_signs_in_without_a_form(app: Flask) -> None:
    client = app.test_client()
    armed = client.post("/api/v1/next-login", json={"persona": "alice", "sp": SP_ENTITY})
    assert armed.status_code == 200
    response = start(client)
    assert response.status_code == 200
    assert b"SAMLResponse" in response.get_data()
    assert start(app.test_client()).status_code == 303  # armed once, consumed once


@pytest.mark.parametrize("body", [{"persona": "mallory"}, {"persona": "alice", "sp": "https://x"}, {"nope": 1}])
def test_automation_api_refuses_unknown_names(app: Flask, body: dict[str, object]) -> None:
    response = app.test_client().post("/api/v1/next-login", json=body)
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert response.get_json()["detail"]


def test_auto_login_persona(tmp_path: Path) -> None:
    app = make_idp(tmp_path)
    idp = app.extensions["saml_idp"]
    idp.personas["alice"] = idp.personas["alice"].model_copy(update={"auto_login": True})
    assert start(app.test_client()).status_code == 200


def test_single_logout_ends_the_session(app: Flask) -> None:
    client = app.test_client()
    login_as(client, start(client).headers["Location"])
    logout = (b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
              b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr1" Version="2.0" '
              b'IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>' + SP_ENTITY.encode() + b"</saml:Issuer>"
              b"<saml:NameID>alice@example.com</saml:NameID></samlp:LogoutRequest>")
    from metadata.bindings import encode_redirect
    from tests.idp_support import sso_path

    path = sso_path(encode_redirect(logout, param="SAMLRequest", destination=f"{IDP_BASE}/slo"))
    asked = logout_confirmation(client.get(path))  # unsigned: the person confirms (tests/test_idp_slo.py)
    assert start(client, request_id="_still_in").status_code == 200
    assert client.post("/slo/confirm", data=asked).status_code == 200
    assert start(client).status_code == 303  # signed out: the login form again


def test_metadata_passes_the_validator(app: Flask) -> None:
    from datetime import UTC, datetime

    report = inspect(app.test_client().get("/metadata").get_data(), now=datetime.now(UTC))
    assert [f.code for f in report.findings if f.severity != "info"] == []


def test_debug_view_shows_the_last_response_escaped(app: Flask) -> None:
    client = app.test_client()
    login_as(client, start(client).headers["Location"])
    page = client.get("/debug").get_data(as_text=True)
    assert "&lt;saml:NameID" in page and "<saml:NameID" not in page


def test_debug_view_keeps_the_last_ten_responses_of_the_session_newest_first(app: Flask) -> None:
    client = app.test_client()
    login_as(client, start(client, request_id="_debug_00").headers["Location"])
    for n in range(1, 12):  # single sign-on: the same IdP session
        assert start(client, request_id=f"_debug_{n:02d}").status_code == 200
    page = html.unescape(client.get("/debug").get_data(as_text=True))
    shown = re.findall(r'InResponseTo="(_debug_\d\d)"', page)
    assert list(dict.fromkeys(shown)) == [f"_debug_{n:02d}" for n in range(11, 1, -1)]


def test_no_page_sets_a_flask_session_cookie(app: Flask) -> None:
    client = app.test_client()
    answers = [start(client), client.get("/"), client.get("/metadata"), client.get("/debug")]
    answers.append(client.post("/login", data={"request": "x", "persona": "alice"}))
    assert [a.headers.getlist("Set-Cookie") for a in answers if a.headers.getlist("Set-Cookie")] == []
    with app.test_request_context("/"), pytest.raises(RuntimeError):
        flask.session["written"] = "by mistake"


def test_unsolicited_response_is_labelled_and_has_no_in_response_to(app: Flask) -> None:
    client = app.test_client()
    assert "rejects it" in client.get("/unsolicited").get_data(as_text=True)
    fields = form_fields(client.post("/unsolicited", data={"sp": SP_ENTITY, "persona": "alice"})
                         .get_data(as_text=True))
    assert b"InResponseTo" not in decoded(fields)


def test_healthz_and_security_headers(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.get_json()["status"] == "ok"
    assert response.headers["X-Frame-Options"] == "DENY"
    post = start(app.test_client(), xml=None)
    login = app.test_client().get(post.headers["Location"])
    assert "frame-ancestors 'none'" in login.headers["Content-Security-Policy"]


def test_auto_post_form_csp_allows_only_the_acs_origin(app: Flask) -> None:
    client = app.test_client()
    location = start(client).headers["Location"]
    page = client.post("/login", data={"request": location.split("request=")[1], "persona": "alice"})
    csp = page.headers["Content-Security-Policy"]
    assert "form-action https://sp.example.com;" in csp
    assert "<noscript>" in page.get_data(as_text=True)


def test_keys_survive_a_restart_and_sessions_are_shared(tmp_path: Path) -> None:
    first = make_idp(tmp_path)
    client = first.test_client()
    login_as(client, start(client).headers["Location"])
    second = make_idp(tmp_path)  # same key folder and store: a restart, or another worker
    assert idp_key(second).cert_der == idp_key(first).cert_der
    cookie = client.get_cookie("idp_session")
    assert cookie is not None
    other = second.test_client()
    other.set_cookie("idp_session", cookie.value, domain="localhost")
    assert start(other).status_code == 200


def test_settings_are_strict_and_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "idp.toml"
    path.write_text('[server]\nbase_urll = "https://x"\n')
    with pytest.raises(SettingsError, match=r'server\.base_urll: unknown key \(did you mean "base_url"\?\)'):
        load_settings(path, environ={})
    path.write_text('[server]\nbase_url = "https://idp.example.org"\n')
    settings = load_settings(path, environ={"IDP_CLOCK_SKEW": "60", "IDP_DEV_MODE": "false"})
    assert settings.server.base_url == "https://idp.example.org"
    assert (settings.server.clock_skew, settings.server.dev_mode) == (60, False)
    with pytest.raises(SettingsError, match="IDP_CLOCK_SKEW"):
        load_settings(path, environ={"IDP_CLOCK_SKEW": "ten"})
    assert [p.id for p in settings.personas] == ["alice", "bob"]


def test_encrypt_without_sp_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sp.xml").write_text(
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP_ENTITY}">'
        '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'<md:AssertionConsumerService index="0" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{ACS}"/></md:SPSSODescriptor></md:EntityDescriptor>')
    with pytest.raises(RegistryError, match="no encryption key"):
        make_idp(tmp_path, sps=(ServiceProvider(metadata="sp.xml", encrypt=True),))


def test_store_records_stay_json(tmp_path: Path) -> None:
    app = make_idp(tmp_path)
    client = app.test_client()
    start(client)
    store = SQLiteStore(tmp_path / "state.sqlite3")
    pending = store.keys("pending")
    assert len(pending) == 1
    record = json.loads(store.get("pending", pending[0]) or b"{}")
    assert record["sp"] == SP_ENTITY and record["acs"] == ACS


def test_login_started_on_one_host_completes_on_another_through_redis(tmp_path: Path, redis_url: str) -> None:
    from metadata.store import RedisStore
    from tests.idp_support import make_idp_with_store

    first = make_idp_with_store(tmp_path, RedisStore(redis_url))
    second = make_idp_with_store(tmp_path, RedisStore(redis_url))
    location = start(first.test_client()).headers["Location"]
    token = location.split("request=")[1]
    page = second.test_client().post("/login", data={"request": token, "persona": "alice"})
    assert page.status_code == 200
    assert b"SAMLResponse" in page.get_data()
    assert second.test_client().post("/login", data={"request": token, "persona": "alice"}).status_code == 400


def test_idp_config_names_the_file_and_relative_paths_follow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp import create_app

    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "idp.toml").write_text(
        '[server]\nbase_url = "https://idp.test.example"\nkey_folder = "keys"\nstore = "sqlite:///'
        + str(tmp_path / "s.sqlite3") + f'"\n[[sps]]\nentity_id = "{SP_ENTITY}"\nacs = ["{ACS}"]\n')
    monkeypatch.setenv("IDP_CONFIG", str(folder / "idp.toml"))
    monkeypatch.setenv("IDP_CLOCK_SKEW", "30")
    app = create_app()
    assert (folder / "keys" / "signing.key").is_file()
    assert app.extensions["saml_idp"].settings.server.clock_skew == 30
    assert app.test_client().get("/healthz").get_json()["sps"] == 1


def test_single_logout_over_post_answers_the_sp_with_a_signed_logout_response(tmp_path: Path) -> None:
    sp_key = make_keypair("sp.example.com")
    (tmp_path / "sp.xml").write_text(
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP_ENTITY}">'
        '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        'Location="https://sp.example.com/saml/sls"/>'
        f'<md:AssertionConsumerService index="0" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{ACS}"/></md:SPSSODescriptor></md:EntityDescriptor>')
    del sp_key
    app = make_idp(tmp_path, sps=(ServiceProvider(metadata="sp.xml"),))
    client = app.test_client()
    login_as(client, start(client).headers["Location"])
    logout = (b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
              b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr2" Version="2.0" '
              b'IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>' + SP_ENTITY.encode() + b"</saml:Issuer>"
              b"<saml:NameID>alice@example.com</saml:NameID></samlp:LogoutRequest>")
    asked = client.post("/slo", data={"SAMLRequest": base64.b64encode(logout).decode()})
    page = client.post("/slo/confirm", data=logout_confirmation(asked))
    fields = form_fields(page.get_data(as_text=True))
    assert fields["_action"] == "https://sp.example.com/saml/sls"
    response = parse_untrusted(decoded(fields), MESSAGE_LIMITS).getroot()
    assert response.tag == f"{SAMLP}LogoutResponse" and response.get("InResponseTo") == "_lr2"
    verify(response, [idp_key(app).cert_der])
    assert start(client).status_code == 303


def test_key_rotation_keeps_the_old_certificate_in_metadata(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from metadata.read import read_metadata

    app = make_idp(tmp_path)
    old = idp_key(app).cert_der
    app.extensions["saml_idp"].keys.rotate("rotated", "ec-p256", now=datetime.now(UTC))
    assert idp_key(app).cert_der != old
    document = read_metadata(parse_untrusted(app.test_client().get("/metadata").get_data()))
    idp = document.entities[0].idp
    assert idp is not None
    published = [c.der for k in idp.keys for c in k.certificates]
    assert published == [idp_key(app).cert_der, old]  # the new one first, the old one kept for the rollover
    client = app.test_client()
    xml = decoded(login_as(client, start(client).headers["Location"]))
    assertion = parse_untrusted(xml, MESSAGE_LIMITS).getroot().find(f"{SAML}Assertion")
    assert assertion is not None
    verify(assertion, [idp_key(app).cert_der])  # signed with the new (EC P-256) key


def _logout_request(nameid: str, issuer: str = SP_ENTITY) -> bytes:
    return (b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr9" Version="2.0" '
            b'IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>' + issuer.encode() + b"</saml:Issuer>"
            b"<saml:NameID>" + nameid.encode() + b"</saml:NameID></samlp:LogoutRequest>")


@pytest.mark.parametrize(("nameid", "issuer"), [("bob@evil.example", SP_ENTITY),
                                                ("alice@example.com", "https://unknown.example/sp")])
def test_an_unproven_logout_request_ends_nothing(app: Flask, nameid: str, issuer: str) -> None:
    from metadata.bindings import encode_redirect
    from tests.idp_support import sso_path

    client = app.test_client()
    login_as(client, start(client).headers["Location"])
    path = sso_path(encode_redirect(_logout_request(nameid, issuer), param="SAMLRequest",
                                    destination=f"{IDP_BASE}/slo"))
    assert client.get(path).status_code == 400
    assert start(client, request_id="_still_signed_in").status_code == 200  # the session lives on


def test_redirect_logout_response_signs_the_query_not_the_xml(tmp_path: Path) -> None:
    from urllib.parse import parse_qs, urlsplit

    from metadata.bindings import decode_redirect, encode_redirect
    from tests.idp_support import sso_path

    (tmp_path / "sp.xml").write_text(
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP_ENTITY}">'
        '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://sp.example.com/saml/sls"/>'
        f'<md:AssertionConsumerService index="0" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{ACS}"/></md:SPSSODescriptor></md:EntityDescriptor>')
    app = make_idp(tmp_path, sps=(ServiceProvider(metadata="sp.xml"),))
    client = app.test_client()
    login_as(client, start(client).headers["Location"])
    asked = client.get(sso_path(encode_redirect(_logout_request("alice@example.com"), param="SAMLRequest",
                                                destination=f"{IDP_BASE}/slo")))
    answer = client.post("/slo/confirm", data=logout_confirmation(asked))
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert "Signature=" in location and "SigAlg=" in location
    message = decode_redirect(urlsplit(location).query, "SAMLResponse")
    assert message.tree.getroot().find("{http://www.w3.org/2000/09/xmldsig#}Signature") is None
    assert parse_qs(urlsplit(location).query)["SAMLResponse"]


def test_login_and_unsolicited_refuse_cross_site_posts(app: Flask) -> None:
    client = app.test_client()
    token = start(client).headers["Location"].split("request=")[1]
    forged = client.post("/login", data={"request": token, "persona": "alice"},
                         headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert client.post("/unsolicited", data={"sp": SP_ENTITY, "persona": "alice"},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    sent = client.post("/unsolicited", data={"sp": SP_ENTITY, "persona": "alice"})
    assert sent.status_code == 200
    assert client.get_cookie("idp_session") is None  # an unsolicited response signs nobody in


def test_an_armed_persona_is_not_spent_on_a_passive_request(app: Flask) -> None:
    client = app.test_client()
    client.post("/api/v1/next-login", json={"persona": "alice"})
    assert b"NoPassive" in decoded(form_fields(start(client, is_passive=True).get_data(as_text=True)))
    assert start(client).status_code == 200  # still armed for the next real login


def test_automation_api_token(tmp_path: Path) -> None:
    app = make_idp(tmp_path, api_token="s3cret-token")
    client = app.test_client()
    assert client.post("/api/v1/next-login", json={"persona": "alice"}).status_code == 401
    ok = client.post("/api/v1/next-login", json={"persona": "alice"}, headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200


def test_transient_and_persistent_nameids_are_opaque(app: Flask) -> None:
    import re

    def nameid(fmt: str, request_id: str) -> str:
        client = app.test_client()
        fields = login_as(client, start(client, nameid_format=fmt, request_id=request_id).headers["Location"])
        found = re.search(rb"<saml:NameID[^>]*>([^<]+)</saml:NameID>", decoded(fields))
        assert found is not None
        return found.group(1).decode()

    transient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
    persistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    first, second = nameid(transient, "_t1"), nameid(transient, "_t2")
    assert first != second and "alice" not in first
    stable = nameid(persistent, "_p1")
    assert stable == nameid(persistent, "_p2") and "alice" not in stable
    assert nameid("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", "_e1") == "alice@example.com"


def test_the_auto_post_page_title_reads_as_a_sentence(app: Flask) -> None:
    import re

    client = app.test_client()
    location = start(client).headers["Location"]
    token = location.split("request=", 1)[1]
    client.get(location)
    page = client.post("/login", data={"request": token, "persona": "alice"}).get_data(as_text=True)
    title = re.search(r"<title>([^<]*)</title>", page)
    assert title is not None
    assert title.group(1) == "Sending the SAML response to the service provider (signed in as alice)"
