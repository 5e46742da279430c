"""Single logout for every NameID kind (issue 15), with real service providers: python3-saml
(OneLogin, HTTP-Redirect) and pysaml2's Saml2Client (HTTP-POST) sign in, then log out.

The IdP matches a LogoutRequest against what this browser's IdP session gave that SP: a transient
NameID is random, a persistent one pairwise, so neither equals the persona's own nameid. A signed
request ends the session at once; an unsigned one from an SP that need not sign asks the person
first; a request naming anything else is refused and ends nothing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp.settings import ServiceProvider
from metadata.saml import EMAIL, PERSISTENT, TRANSIENT
from tests.factory import KeyPair, make_keypair
from tests.idp_support import (
    ALICE,
    IDP_BASE,
    form_fields,
    idp_key,
    login_as,
    logout_confirmation,
    make_idp,
    pem_body,
    sso_path,
)

REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
KINDS = {"transient": TRANSIENT, "persistent": PERSISTENT, "email": EMAIL}
CROSS_SITE = {"Sec-Fetch-Site": "cross-site"}

P3_ENTITY = "https://p3.sp.example.com/saml/metadata"
P3_ACS = "https://p3.sp.example.com/saml/acs"
P3_SLS = "https://p3.sp.example.com/saml/sls"
PY2_ENTITY = "https://py2.sp.example.com/saml/metadata"
PY2_ACS = "https://py2.sp.example.com/saml/acs"
PY2_SLS = "https://py2.sp.example.com/saml/sls"

needs_xmlsec1 = pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="pysaml2 signs and verifies with the "
                                   "xmlsec1 program: apt-get install xmlsec1 (the test command installs it)")


@pytest.fixture(scope="module")
def sp_key() -> KeyPair:
    return make_keypair("sp.example.com")


def idp_with(tmp_path: Path, metadata: dict[str, str]) -> Flask:
    """The test IdP with these SPs registered from their own metadata (name → XML)."""
    for name, xml in metadata.items():
        (tmp_path / name).write_text(xml)
    return make_idp(tmp_path, sps=tuple(ServiceProvider(metadata=name) for name in metadata))


def signed_in_at_idp(browser: FlaskClient, authn_request_url: str) -> bool:
    """Whether the IdP answers this SP's AuthnRequest at once (single sign-on: its IdP session is
    alive) rather than asking the person to sign in (303 to /login)."""
    status = browser.get(sso_path(authn_request_url)).status_code
    assert status in (200, 303)
    return status == 200


def refused(answer: TestResponse, words: str) -> None:
    text = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "The logout request was refused" in text, text[:600]
    assert words in text, text[:1000]


# python3-saml (HTTP-Redirect) ----------------------------------------------------------------------

def onelogin_settings(app: Flask, key: KeyPair, nameid_format: str, *, signs_logout: bool,
                      says_it_signs: bool = False) -> Any:
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    return OneLogin_Saml2_Settings({
        "strict": True,
        "sp": {
            "entityId": P3_ENTITY,
            "assertionConsumerService": {"url": P3_ACS, "binding": POST},
            "singleLogoutService": {"url": P3_SLS, "binding": REDIRECT},
            "NameIDFormat": nameid_format,
            "x509cert": pem_body(key.cert_pem),
            "privateKey": key.key_pem.decode(),
        },
        "idp": {
            "entityId": f"{IDP_BASE}/metadata",
            "singleSignOnService": {"url": f"{IDP_BASE}/sso", "binding": REDIRECT},
            "singleLogoutService": {"url": f"{IDP_BASE}/slo", "binding": REDIRECT},
            "x509cert": pem_body(idp_key(app).cert_pem),
        },
        "security": {"wantAssertionsSigned": True, "rejectDeprecatedAlgorithm": True,
                     "logoutRequestSigned": signs_logout, "authnRequestsSigned": says_it_signs},
    })


def onelogin_metadata(key: KeyPair, *, says_it_signs: bool = False) -> str:
    """python3-saml's own SP metadata: it publishes its signing key whether or not it signs."""
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    settings = OneLogin_Saml2_Settings({
        "strict": True,
        "sp": {"entityId": P3_ENTITY, "assertionConsumerService": {"url": P3_ACS, "binding": POST},
               "singleLogoutService": {"url": P3_SLS, "binding": REDIRECT}, "x509cert": pem_body(key.cert_pem),
               "privateKey": key.key_pem.decode()},
        "security": {"authnRequestsSigned": says_it_signs},
    }, sp_validation_only=True)
    metadata = settings.get_sp_metadata()
    text = metadata.decode() if isinstance(metadata, bytes) else str(metadata)
    assert 'use="signing"' in text and f'AuthnRequestsSigned="{str(says_it_signs).lower()}"' in text
    return text


def request_data(path: str, **extra: Any) -> dict[str, Any]:
    return {"https": "on", "http_host": "p3.sp.example.com", "script_name": path, **extra}


@dataclass
class OneLoginSP:
    """python3-saml playing an SP in one browser: its Auth object holds the SP's session."""

    app: Flask
    settings: Any
    browser: FlaskClient
    auth: Any = None

    def login(self) -> None:
        from onelogin.saml2.auth import OneLogin_Saml2_Auth

        start = OneLogin_Saml2_Auth(request_data("/login"), self.settings)
        first = self.browser.get(sso_path(start.login(return_to="/invoices/42")))
        assert first.status_code == 303, first.get_data(as_text=True)[:500]
        fields = login_as(self.browser, first.headers["Location"])
        assert fields["_action"] == P3_ACS
        self.auth = OneLogin_Saml2_Auth(request_data("/saml/acs", post_data={"SAMLResponse": fields["SAMLResponse"]}),
                                        self.settings)
        self.auth.process_response(request_id=start.get_last_request_id())
        assert self.auth.get_errors() == [], self.auth.get_last_error_reason()
        assert self.auth.is_authenticated()

    def logout_url(self, **overrides: Any) -> str:
        """The LogoutRequest python3-saml sends, naming what it was given (as its demo apps do)."""
        named = {"name_id": self.auth.get_nameid(), "session_index": self.auth.get_session_index(),
                 "nq": self.auth.get_nameid_nq(), "name_id_format": self.auth.get_nameid_format(),
                 "spnq": self.auth.get_nameid_spnq()} | overrides
        url: str = self.auth.logout(return_to="/bye", **named)
        assert url.startswith(f"{IDP_BASE}/slo?")
        return url

    def accepts_logout_response(self, answer: TestResponse) -> None:
        from onelogin.saml2.auth import OneLogin_Saml2_Auth

        assert answer.status_code == 302, answer.get_data(as_text=True)[:600]
        location = urlsplit(answer.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == P3_SLS
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert query["RelayState"] == "/bye" and "Signature" in query  # verified below with the IdP's certificate
        sls = OneLogin_Saml2_Auth(request_data("/saml/sls", get_data=query), self.settings)
        sls.process_slo(keep_local_session=True, request_id=self.auth.get_last_request_id())
        assert sls.get_errors() == [], sls.get_last_error_reason()

    def authn_request_url(self) -> str:
        from onelogin.saml2.auth import OneLogin_Saml2_Auth

        return str(OneLogin_Saml2_Auth(request_data("/login"), self.settings).login())


def onelogin_sp(tmp_path: Path, key: KeyPair, nameid_format: str, *, signs_logout: bool,
                says_it_signs: bool = False) -> OneLoginSP:
    app = idp_with(tmp_path, {"p3.xml": onelogin_metadata(key, says_it_signs=says_it_signs)})
    settings = onelogin_settings(app, key, nameid_format, signs_logout=signs_logout, says_it_signs=says_it_signs)
    sp = OneLoginSP(app, settings, app.test_client())
    sp.login()
    return sp


@pytest.mark.parametrize("kind", KINDS)
def test_python3_saml_logs_out_with_a_signed_request(tmp_path: Path, sp_key: KeyPair, kind: str) -> None:
    sp = onelogin_sp(tmp_path, sp_key, KINDS[kind], signs_logout=True)
    assert sp.auth.get_nameid_format() == KINDS[kind]
    if kind != "email":  # the very case of issue 15: not the persona's own nameid
        assert sp.auth.get_nameid() != ALICE.nameid
    # Single sign-on again: a transient NameID is new in this response, which python3-saml never reads;
    # the logout below names the one it was given first, and still matches.
    assert signed_in_at_idp(sp.browser, sp.authn_request_url())
    answer = sp.browser.get(sso_path(sp.logout_url()), headers=CROSS_SITE)  # signed: no question asked
    sp.accepts_logout_response(answer)
    assert answer.headers.get("Set-Cookie", "").startswith("idp_session=;")
    store = sp.app.extensions["saml_idp"].store
    assert store.keys("session") == [] and store.keys("issued") == []  # what the session gave the SP went too
    assert not signed_in_at_idp(sp.browser, sp.authn_request_url())


@pytest.mark.parametrize("kind", KINDS)
def test_python3_saml_unsigned_logout_asks_then_logs_out(tmp_path: Path, sp_key: KeyPair, kind: str) -> None:
    # It publishes a signing key but does not sign its LogoutRequest, and its metadata does not say it signs.
    sp = onelogin_sp(tmp_path, sp_key, KINDS[kind], signs_logout=False)
    page = sp.browser.get(sso_path(sp.logout_url()), headers=CROSS_SITE)
    fields = logout_confirmation(page)
    assert signed_in_at_idp(sp.browser, sp.authn_request_url())  # asking ended nothing
    sp.accepts_logout_response(sp.browser.post("/slo/confirm", data=fields))
    assert not signed_in_at_idp(sp.browser, sp.authn_request_url())


@pytest.mark.parametrize(("kind", "overrides", "words"), [
    # The bug of issue 15 turned round: a transient or persistent login, logged out by the persona's nameid.
    ("transient", {"name_id": ALICE.nameid}, "names another user than the one signed in"),
    ("persistent", {"name_id": ALICE.nameid}, "names another user than the one signed in"),
    ("email", {"name_id": "bob@example.com"}, "names another user than the one signed in"),
    ("persistent", {"name_id_format": TRANSIENT}, "Format urn:oasis:names:tc:SAML:2.0:nameid-format:transient"),
    ("transient", {"session_index": "_another-session"}, "names another session than the one signed in"),
    ("persistent", {"spnq": "https://other-sp.example.com"}, "SPNameQualifier"),
    ("persistent", {"nq": "https://other-idp.example.com"}, "NameQualifier"),
])
def test_python3_saml_logout_naming_something_else_is_refused(
    tmp_path: Path, sp_key: KeyPair, kind: str, overrides: dict[str, str], words: str
) -> None:
    sp = onelogin_sp(tmp_path, sp_key, KINDS[kind], signs_logout=True)
    refused(sp.browser.get(sso_path(sp.logout_url(**overrides))), words)
    assert signed_in_at_idp(sp.browser, sp.authn_request_url())
    sp.accepts_logout_response(sp.browser.get(sso_path(sp.logout_url())))  # what it was given still works


def test_python3_saml_may_name_the_default_qualifiers(tmp_path: Path, sp_key: KeyPair) -> None:
    """Absent qualifiers mean the IdP and this SP (Core §8.3.7): an SP that spells them out matches."""
    sp = onelogin_sp(tmp_path, sp_key, PERSISTENT, signs_logout=True)
    url = sp.logout_url(nq=f"{IDP_BASE}/metadata", spnq=P3_ENTITY)
    sp.accepts_logout_response(sp.browser.get(sso_path(url)))
    assert not signed_in_at_idp(sp.browser, sp.authn_request_url())


def test_python3_saml_that_says_it_signs_must_sign_its_logout(tmp_path: Path, sp_key: KeyPair) -> None:
    sp = onelogin_sp(tmp_path, sp_key, TRANSIENT, signs_logout=False, says_it_signs=True)
    refused(sp.browser.get(sso_path(sp.logout_url())), "must sign its requests")
    assert signed_in_at_idp(sp.browser, sp.authn_request_url())


def test_python3_saml_logout_signed_by_another_key_is_refused_not_asked(tmp_path: Path, sp_key: KeyPair) -> None:
    sp = onelogin_sp(tmp_path, sp_key, TRANSIENT, signs_logout=True)
    sp.settings._sp["privateKey"] = make_keypair("attacker").key_pem.decode()
    refused(sp.browser.get(sso_path(sp.logout_url())), "signature was not verified")
    assert signed_in_at_idp(sp.browser, sp.authn_request_url())


# pysaml2 (HTTP-POST) -----------------------------------------------------------------------------

def pysaml2_config(tmp_path: Path, app: Flask | None, key: KeyPair, nameid_format: str, *, signs_logout: bool) -> Any:
    from saml2.config import SPConfig

    (tmp_path / "py2.key").write_bytes(key.key_pem)
    (tmp_path / "py2.crt").write_bytes(key.cert_pem)
    metadata = {}
    if app is not None:
        (tmp_path / "idp.xml").write_bytes(app.test_client().get("/metadata").get_data())
        metadata = {"local": [str(tmp_path / "idp.xml")]}
    config = SPConfig()
    config.load({
        "entityid": PY2_ENTITY,
        "metadata": metadata,
        "key_file": str(tmp_path / "py2.key"),
        "cert_file": str(tmp_path / "py2.crt"),
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(PY2_ACS, POST)],
                          "single_logout_service": [(PY2_SLS, REDIRECT)]},
            "want_assertions_signed": True,
            "want_response_signed": False,
            "allow_unsolicited": False,
            "authn_requests_signed": False,
            "logout_requests_signed": signs_logout,
            "name_id_format": nameid_format,
            "name_id_policy_format": nameid_format,  # what its AuthnRequest asks for
            "name_id_format_allow_create": True,
            # pysaml2 signs with RSA-SHA1 unless told otherwise, and the IdP refuses SHA-1 (SECURITY.md §2).
            "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
        }},
        "preferred_binding": {"single_logout_service": [POST]},
        "xmlsec_binary": shutil.which("xmlsec1"),
        "allow_unknown_attributes": True,
    })
    return config


def pysaml2_metadata(tmp_path: Path, key: KeyPair) -> str:
    from saml2.metadata import entity_descriptor

    return str(entity_descriptor(pysaml2_config(tmp_path, None, key, EMAIL, signs_logout=False)))


@dataclass
class Pysaml2SP:
    """pysaml2's Saml2Client playing an SP in one browser: its identity cache holds the SP's session."""

    client: Any
    browser: FlaskClient
    name_id: Any = None

    def authn_request_url(self) -> str:
        from saml2 import BINDING_HTTP_REDIRECT

        _, info = self.client.prepare_for_authenticate(entityid=f"{IDP_BASE}/metadata", binding=BINDING_HTTP_REDIRECT)
        return str(dict(info["headers"])["Location"])

    def login(self) -> None:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

        request_id, info = self.client.prepare_for_authenticate(entityid=f"{IDP_BASE}/metadata",
                                                                binding=BINDING_HTTP_REDIRECT, relay_state="/home")
        first = self.browser.get(sso_path(dict(info["headers"])["Location"]))
        assert first.status_code in (200, 303), first.get_data(as_text=True)[:500]
        # Signed in at the IdP already (single sign-on): the auto-POST form at once; else the login page.
        fields = (form_fields(first.get_data(as_text=True)) if first.status_code == 200
                  else login_as(self.browser, first.headers["Location"]))
        parsed = self.client.parse_authn_request_response(fields["SAMLResponse"], BINDING_HTTP_POST,
                                                          {request_id: "/home"})
        assert parsed is not None
        self.name_id = parsed.name_id

    def logout_form(self) -> tuple[str, dict[str, str]]:
        """pysaml2's own global logout, over HTTP-POST: the form its page would post to the IdP."""
        from saml2 import BINDING_HTTP_POST

        sent = self.client.global_logout(self.name_id)
        binding, info = sent[f"{IDP_BASE}/metadata"]
        assert binding == BINDING_HTTP_POST
        fields = form_fields(_pysaml2_form(info["data"]))
        return fields.pop("_action"), fields

    def accepts_logout_response(self, answer: TestResponse) -> None:
        from saml2 import BINDING_HTTP_REDIRECT

        assert answer.status_code == 302, answer.get_data(as_text=True)[:600]
        location = urlsplit(answer.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == PY2_SLS
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        response = self.client.parse_logout_request_response(query["SAMLResponse"], BINDING_HTTP_REDIRECT)
        assert response is not None and response.status_ok()
        assert self.client.handle_logout_response(response) == (0, "200 Ok", [("Content-type", "text/html")], [])


def _pysaml2_form(page: str) -> str:
    """pysaml2's auto-POST page in the shape tests.idp_support.form_fields reads."""
    import html
    import re

    action = re.search(r'<form[^>]* action="([^"]+)"', page)
    assert action is not None, page
    inputs = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    return (f'<form method="post" action="{action.group(1)}">' +
            "".join(f'<input type="hidden" name="{n}" value="{html.escape(html.unescape(v))}">' for n, v in inputs))


def pysaml2_sp(tmp_path: Path, key: KeyPair, nameid_format: str, *, signs_logout: bool) -> Pysaml2SP:
    from saml2.client import Saml2Client

    app = idp_with(tmp_path, {"py2.xml": pysaml2_metadata(tmp_path, key)})
    sp = Pysaml2SP(Saml2Client(pysaml2_config(tmp_path, app, key, nameid_format, signs_logout=signs_logout)),
                   app.test_client())
    sp.login()
    return sp


@needs_xmlsec1
@pytest.mark.parametrize("kind", KINDS)
def test_pysaml2_logs_out_with_a_signed_request(tmp_path: Path, sp_key: KeyPair, kind: str) -> None:
    sp = pysaml2_sp(tmp_path, sp_key, KINDS[kind], signs_logout=True)
    assert sp.name_id.format == KINDS[kind]
    if kind != "email":
        assert sp.name_id.text != ALICE.nameid
    assert signed_in_at_idp(sp.browser, sp.authn_request_url())
    action, fields = sp.logout_form()
    assert action == f"{IDP_BASE}/slo" and "Signature" in _decoded(fields)
    sp.accepts_logout_response(sp.browser.post("/slo", data=fields, headers=CROSS_SITE))
    assert not signed_in_at_idp(sp.browser, sp.authn_request_url())


@needs_xmlsec1
@pytest.mark.parametrize("kind", KINDS)
def test_pysaml2_unsigned_logout_asks_then_logs_out(tmp_path: Path, sp_key: KeyPair, kind: str) -> None:
    sp = pysaml2_sp(tmp_path, sp_key, KINDS[kind], signs_logout=False)
    _, fields = sp.logout_form()
    assert "Signature" not in _decoded(fields)
    asked = logout_confirmation(sp.browser.post("/slo", data=fields))
    assert signed_in_at_idp(sp.browser, sp.authn_request_url())
    sp.accepts_logout_response(sp.browser.post("/slo/confirm", data=asked))
    assert not signed_in_at_idp(sp.browser, sp.authn_request_url())


def _decoded(fields: dict[str, str]) -> str:
    import base64

    return base64.b64decode(fields["SAMLRequest"]).decode()


# Two SPs in one IdP session ----------------------------------------------------------------------

@needs_xmlsec1
def test_python3_saml_and_pysaml2_each_log_out_with_their_own_persistent_nameid(
    tmp_path: Path, sp_key: KeyPair
) -> None:
    """One IdP session, two SPs: each was given its own pairwise NameID, and each LogoutRequest is
    matched against the one its SP was given, never the other's."""
    from saml2.client import Saml2Client

    app = idp_with(tmp_path, {"p3.xml": onelogin_metadata(sp_key), "py2.xml": pysaml2_metadata(tmp_path, sp_key)})
    browser = app.test_client()
    p3 = OneLoginSP(app, onelogin_settings(app, sp_key, PERSISTENT, signs_logout=True), browser)
    p3.login()  # signs in at the IdP
    py2 = Pysaml2SP(Saml2Client(pysaml2_config(tmp_path, app, sp_key, PERSISTENT, signs_logout=True)), browser)
    py2.login()  # single sign-on in the same IdP session
    assert p3.auth.get_nameid() != py2.name_id.text  # pairwise
    refused(browser.get(sso_path(p3.logout_url(name_id=py2.name_id.text))), "names another user")
    _, fields = py2.logout_form()  # pysaml2's own request, naming its own NameID
    py2.accepts_logout_response(browser.post("/slo", data=fields))
    assert not signed_in_at_idp(browser, p3.authn_request_url())
