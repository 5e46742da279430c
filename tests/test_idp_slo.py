"""Single logout at the test IdP: a LogoutRequest that cannot be authenticated never ends the
session by itself (logout CSRF); the person confirms on a same-origin page, with a CSRF token."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp.settings import ServiceProvider
from metadata.bindings import decode_redirect, encode_redirect
from metadata.signing import verify
from metadata.xml import MESSAGE_LIMITS, parse_untrusted
from tests.factory import KeyPair, make_keypair
from tests.idp_support import (
    ACS,
    IDP_BASE,
    SLS,
    SP_ENTITY,
    authn_request,
    decoded,
    form_fields,
    idp_key,
    login_as,
    logout_confirmation,
    make_idp,
    redirect_path,
    sso_path,
)

REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
CROSS_SITE = {"Sec-Fetch-Site": "cross-site"}


def sp_metadata(*, binding: str = REDIRECT, signing: KeyPair | None = None) -> str:
    key = "" if signing is None else (
        '<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
        f"<ds:X509Certificate>{signing.cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>")
    return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP_ENTITY}">'
            '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f'{key}<md:SingleLogoutService Binding="{binding}" Location="{SLS}"/>'
            f'<md:AssertionConsumerService index="0" Binding="{POST}" Location="{ACS}"/>'
            "</md:SPSSODescriptor></md:EntityDescriptor>")


def idp_for(tmp_path: Path, *, binding: str = REDIRECT, signing: KeyPair | None = None) -> Flask:
    (tmp_path / "sp.xml").write_text(sp_metadata(binding=binding, signing=signing))
    return make_idp(tmp_path, sps=(ServiceProvider(metadata="sp.xml"),))


def logout_request(request_id: str = "_lr42", nameid: str = "alice@example.com") -> bytes:
    return (b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="' + request_id.encode() + b'" Version="2.0" '
            b'IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>' + SP_ENTITY.encode() + b"</saml:Issuer>"
            b"<saml:NameID>" + nameid.encode() + b"</saml:NameID></samlp:LogoutRequest>")


def logout_path(*, key: KeyPair | None = None, relay_state: str | None = "back-to-7") -> str:
    return sso_path(encode_redirect(logout_request(), param="SAMLRequest", destination=f"{IDP_BASE}/slo",
                                    relay_state=relay_state, key_pem=key.key_pem if key else None))


def signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    login_as(client, client.get(redirect_path(authn_request())).headers["Location"])
    return client


def still_signed_in(client: FlaskClient) -> bool:
    """Single sign-on answers at once (200, the auto-POST form); signed out, the login form (303)."""
    status = client.get(redirect_path(authn_request(request_id="_probe"))).status_code
    assert status in (200, 303)
    return status == 200


def assert_logout_response(answer: TestResponse) -> None:
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    location = answer.headers["Location"]
    assert location.startswith(f"{SLS}?")
    message = decode_redirect(urlsplit(location).query, "SAMLResponse")
    root = message.tree.getroot()
    assert root.tag == "{urn:oasis:names:tc:SAML:2.0:protocol}LogoutResponse"
    assert root.get("InResponseTo") == "_lr42" and root.get("Destination") == SLS
    assert parse_qs(urlsplit(location).query)["RelayState"] == ["back-to-7"]
    assert answer.headers.get("Set-Cookie", "").startswith("idp_session=;")


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return idp_for(tmp_path)  # an SP with an SLO endpoint and no signing certificate


def test_a_cross_site_unsigned_logout_request_only_asks(app: Flask) -> None:
    client = signed_in(app)
    page = client.get(logout_path(), headers=CROSS_SITE)
    fields = logout_confirmation(page)
    assert set(fields) == {"logout", "csrf"} and all(fields.values())
    assert SP_ENTITY in page.get_data(as_text=True)
    assert still_signed_in(client)


def test_the_confirmation_page_is_a_plain_form_with_the_pages_headers(app: Flask) -> None:
    page = signed_in(app).get(logout_path())
    text = page.get_data(as_text=True)
    logout_confirmation(page)
    assert "<script" not in text and '<button type="submit">' in text  # works without JavaScript
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    csp = page.headers["Content-Security-Policy"]
    # The confirmation is posted here, and answered by a redirect to the SP: both are form targets.
    assert "form-action 'self' https://sp.example.com;" in csp and "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "not-a-token"])
def test_confirming_without_the_right_csrf_token_ends_nothing(app: Flask, csrf: str | None) -> None:
    client = signed_in(app)
    fields = logout_confirmation(client.get(logout_path()))
    form = {"logout": fields["logout"]} | ({} if csrf is None else {"csrf": csrf})
    answer = client.post("/slo/confirm", data=form)
    assert answer.status_code == 403 and "You are still signed in" in answer.get_data(as_text=True)
    assert still_signed_in(client)
    assert_logout_response(client.post("/slo/confirm", data=fields))  # the real one still works


def test_a_token_shown_to_one_browser_is_worth_nothing_in_another(app: Flask) -> None:
    attacker, victim = signed_in(app), signed_in(app)
    fields = logout_confirmation(attacker.get(logout_path()))  # the attacker's own page and token
    assert victim.post("/slo/confirm", data=fields).status_code == 403
    assert still_signed_in(victim)


def test_confirming_from_another_site_ends_nothing(app: Flask) -> None:
    client = signed_in(app)
    fields = logout_confirmation(client.get(logout_path()))
    forged = client.post("/slo/confirm", data=fields, headers={"Origin": "https://evil.example", **CROSS_SITE})
    assert forged.status_code == 403
    assert still_signed_in(client)


def test_confirming_ends_the_session_and_answers_the_sp(app: Flask) -> None:
    client = signed_in(app)
    fields = logout_confirmation(client.get(logout_path(), headers=CROSS_SITE))
    assert_logout_response(client.post("/slo/confirm", data=fields))
    assert not still_signed_in(client)
    again = client.post("/slo/confirm", data=fields)  # once only
    assert again.status_code == 403


def test_confirming_answers_an_http_post_slo_endpoint_with_a_signed_form(tmp_path: Path) -> None:
    app = idp_for(tmp_path, binding=POST)
    client = signed_in(app)
    page = client.post("/slo", data={"SAMLRequest": base64.b64encode(logout_request()).decode(),
                                     "RelayState": "back-to-7"})
    form = form_fields(client.post("/slo/confirm", data=logout_confirmation(page)).get_data(as_text=True))
    assert form["_action"] == SLS
    response = parse_untrusted(decoded(form), MESSAGE_LIMITS).getroot()
    assert response.tag == "{urn:oasis:names:tc:SAML:2.0:protocol}LogoutResponse"
    assert response.get("InResponseTo") == "_lr42" and form["RelayState"] == "back-to-7"
    verify(response, [idp_key(app).cert_der])
    assert not still_signed_in(client)


def test_a_signed_logout_request_still_ends_the_session_at_once(tmp_path: Path) -> None:
    sp_key = make_keypair("sp.example.com")
    app = idp_for(tmp_path, signing=sp_key)
    client = signed_in(app)
    assert_logout_response(client.get(logout_path(key=sp_key), headers=CROSS_SITE))
    assert not still_signed_in(client)


def test_a_logout_request_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    app = idp_for(tmp_path, signing=make_keypair("sp.example.com"))
    client = signed_in(app)
    refused = client.get(logout_path(key=make_keypair("attacker")))
    assert refused.status_code == 400 and "signature was not verified" in refused.get_data(as_text=True)
    assert still_signed_in(client)


def test_without_a_session_an_unsigned_request_is_answered_at_once(app: Flask) -> None:
    assert_logout_response(app.test_client().get(logout_path()))  # nothing to end, nothing to ask


def test_an_unsigned_request_from_an_sp_with_a_key_that_need_not_sign_only_asks(tmp_path: Path) -> None:
    """Shibboleth with signing="false", samlify by default: a signing key in the metadata, no signature
    on the LogoutRequest, and no AuthnRequestsSigned="true". The person is asked, not turned away."""
    app = idp_for(tmp_path, signing=make_keypair("sp.example.com"))
    client = signed_in(app)
    fields = logout_confirmation(client.get(logout_path(), headers=CROSS_SITE))
    assert still_signed_in(client)
    assert_logout_response(client.post("/slo/confirm", data=fields))
    assert not still_signed_in(client)


def test_an_sp_whose_metadata_says_it_signs_must_sign_its_logout_request(tmp_path: Path) -> None:
    sp_key = make_keypair("sp.example.com")
    (tmp_path / "sp.xml").write_text(sp_metadata(signing=sp_key).replace(
        "<md:SPSSODescriptor ", '<md:SPSSODescriptor AuthnRequestsSigned="true" '))
    app = make_idp(tmp_path, sps=(ServiceProvider(metadata="sp.xml"),))
    client = app.test_client()  # its AuthnRequest must be signed too
    signed_request = authn_request(destination=f"{IDP_BASE}/sso")
    login_as(client, client.get(redirect_path(signed_request, key_pem=sp_key.key_pem)).headers["Location"])
    refused = client.get(logout_path())
    assert refused.status_code == 400 and "must sign its requests" in refused.get_data(as_text=True)
    probe = authn_request(request_id="_probe", destination=f"{IDP_BASE}/sso")
    assert client.get(redirect_path(probe, key_pem=sp_key.key_pem)).status_code == 200  # still signed in
    assert_logout_response(client.get(logout_path(key=sp_key)))


def test_a_logout_request_naming_another_nameid_is_refused(app: Flask) -> None:
    client = signed_in(app)
    path = sso_path(encode_redirect(logout_request(nameid="bob@example.com"), param="SAMLRequest",
                                    destination=f"{IDP_BASE}/slo"))
    refused = client.get(path)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "names another user than the one signed in" in text
    assert "bob@example.com" in text and "alice@example.com" in text  # what was named, and what was given
    assert still_signed_in(client)


def _nameid_and_index(fields: dict[str, str]) -> tuple[str, str, str]:
    """The NameID, its Format and the SessionIndex of the response in an auto-POST form."""
    root = parse_untrusted(base64.b64decode(fields["SAMLResponse"]), MESSAGE_LIMITS).getroot()
    saml = "{urn:oasis:names:tc:SAML:2.0:assertion}"
    nameid = root.find(f"{saml}Assertion/{saml}Subject/{saml}NameID")
    statement = root.find(f"{saml}Assertion/{saml}AuthnStatement")
    assertion = root.find(f"{saml}Assertion")
    assert nameid is not None and statement is not None and assertion is not None
    assert statement.get("SessionIndex") == assertion.get("ID")  # Entra ID's form: the assertion's own ID
    return nameid.text or "", nameid.get("Format") or "", statement.get("SessionIndex") or ""


@pytest.mark.parametrize(("which", "ends"), [("first", True), ("second", True), ("neither", False)])
def test_a_session_index_of_any_response_of_the_session_names_it(tmp_path: Path, which: str, ends: bool) -> None:
    """Entra ID, AD FS, Google and PingFederate send the assertion's ID as the SessionIndex, new in
    every response: an SP may log out with any of them, and with no other."""
    sp_key = make_keypair("sp.example.com")
    (tmp_path / "sp.xml").write_text(sp_metadata(signing=sp_key))
    app = make_idp(tmp_path, sps=(ServiceProvider(metadata="sp.xml"),), vendor="entra")
    client = app.test_client()
    first = _nameid_and_index(login_as(client, client.get(redirect_path(authn_request())).headers["Location"]))
    again = client.get(redirect_path(authn_request(request_id="_again")))
    second = _nameid_and_index(form_fields(again.get_data(as_text=True)))
    assert first[2] != second[2] and first[:2] == second[:2]
    index = {"first": first[2], "second": second[2], "neither": "_not-issued"}[which]
    request = (f'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
               f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr42" Version="2.0" '
               f'IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>{SP_ENTITY}</saml:Issuer>'
               f'<saml:NameID Format="{first[1]}">{first[0]}</saml:NameID>'
               f"<samlp:SessionIndex>{index}</samlp:SessionIndex></samlp:LogoutRequest>").encode()
    path = sso_path(encode_redirect(request, param="SAMLRequest", destination=f"{IDP_BASE}/slo",
                                    relay_state="back-to-7", key_pem=sp_key.key_pem))
    answer = client.get(path, headers=CROSS_SITE)
    if ends:
        assert_logout_response(answer)
    else:
        assert "names another session" in answer.get_data(as_text=True)
    assert still_signed_in(client) is not ends
