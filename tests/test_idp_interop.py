"""Complete SP-initiated logins against the test IdP, with real service providers:
python3-saml (OneLogin) and pysaml2's Saml2Client. Each must accept our response and read
exactly the configured NameID and claims, and reject it after one byte is changed."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.idp_support import (
    ACS,
    ALICE,
    IDP_BASE,
    SP_ENTITY,
    decoded,
    idp_key,
    login_as,
    make_idp,
    pem_body,
    sso_path,
)

REQUEST_DATA = {"https": "on", "http_host": "sp.example.com", "script_name": "/saml/acs"}
EXPECTED_CLAIMS = {k: v if isinstance(v, list) else [v] for k, v in ALICE.claims.items()}


def onelogin_settings(app: Any, **security: Any) -> Any:
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    return OneLogin_Saml2_Settings({
        "strict": True,
        "sp": {
            "entityId": SP_ENTITY,
            "assertionConsumerService": {"url": ACS, "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"},
            "NameIDFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        },
        "idp": {
            "entityId": f"{IDP_BASE}/metadata",
            "singleSignOnService": {"url": f"{IDP_BASE}/sso",
                                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
            "x509cert": pem_body(idp_key(app).cert_pem),
        },
        "security": {"wantAssertionsSigned": True, "rejectDeprecatedAlgorithm": True, **security},
    }, sp_validation_only=True)


def python3_saml_login(app: Any) -> tuple[Any, str, dict[str, str]]:
    """python3-saml starts the login; the test IdP answers; python3-saml's response object."""
    from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    settings = onelogin_settings(app)
    authn = OneLogin_Saml2_Authn_Request(settings)
    query = OneLogin_Saml2_Utils.redirect(
        f"{IDP_BASE}/sso", {"SAMLRequest": authn.get_request(), "RelayState": "/invoices/42"}
    )
    client = app.test_client()
    first = client.get(sso_path(query))
    assert first.status_code == 303, first.get_data(as_text=True)
    fields = login_as(client, first.headers["Location"])
    return settings, authn.get_id(), fields


def test_python3_saml_completes_a_login(tmp_path: Path) -> None:
    from onelogin.saml2.response import OneLogin_Saml2_Response

    app = make_idp(tmp_path)
    settings, request_id, fields = python3_saml_login(app)
    assert fields["_action"] == ACS
    assert fields["RelayState"] == "/invoices/42"
    response = OneLogin_Saml2_Response(settings, fields["SAMLResponse"])
    assert response.is_valid(REQUEST_DATA, request_id, raise_exceptions=True)
    assert response.get_nameid() == "alice@example.com"
    assert response.get_attributes() == EXPECTED_CLAIMS


def test_python3_saml_rejects_one_changed_byte(tmp_path: Path) -> None:
    from onelogin.saml2.response import OneLogin_Saml2_Response

    app = make_idp(tmp_path)
    settings, request_id, fields = python3_saml_login(app)
    xml = decoded(fields)
    assert b"100200300" in xml
    tampered = base64.b64encode(xml.replace(b"100200300", b"100200301", 1)).decode()
    response = OneLogin_Saml2_Response(settings, tampered)
    assert response.is_valid(REQUEST_DATA, request_id) is False
    assert "Signature" in (response.get_error() or "") or "signature" in (response.get_error() or "").lower()


@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="pysaml2 verifies with the xmlsec1 program: "
                    "apt-get install xmlsec1 (the test command installs it)")
def test_pysaml2_completes_a_login_and_rejects_a_changed_byte(tmp_path: Path) -> None:
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

    app = make_idp(tmp_path)
    idp_metadata = app.test_client().get("/metadata").get_data()
    (tmp_path / "idp.xml").write_bytes(idp_metadata)
    config = SPConfig()
    config.load({
        "entityid": SP_ENTITY,
        "metadata": {"local": [str(tmp_path / "idp.xml")]},
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(ACS, BINDING_HTTP_POST)]},
            "want_assertions_signed": True,
            "want_response_signed": False,
            "allow_unsolicited": False,
            "authn_requests_signed": False,
            "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        }},
        "xmlsec_binary": shutil.which("xmlsec1"),
        "allow_unknown_attributes": True,
    })
    client = Saml2Client(config)
    request_id, info = client.prepare_for_authenticate(entityid=f"{IDP_BASE}/metadata",
                                                       binding=BINDING_HTTP_REDIRECT, relay_state="/home")
    location = dict(info["headers"])["Location"]
    browser = app.test_client()
    first = browser.get(sso_path(location))
    assert first.status_code == 303, first.get_data(as_text=True)
    fields = login_as(browser, first.headers["Location"])
    outstanding = {request_id: "/home"}
    parsed = client.parse_authn_request_response(fields["SAMLResponse"], BINDING_HTTP_POST, outstanding)
    assert parsed is not None
    assert parsed.name_id.text == "alice@example.com"
    assert parsed.get_identity() == EXPECTED_CLAIMS

    tampered = base64.b64encode(decoded(fields).replace(b"alice@example.com", b"alicf@example.com", 1)).decode()
    with pytest.raises(Exception, match=r"(?i)signature|verif"):
        client.parse_authn_request_response(tampered, BINDING_HTTP_POST, {request_id: "/home"})


def test_python3_saml_refuses_the_protocol_and_signature_faults_over_http(tmp_path: Path) -> None:
    """The README's example, end to end over real HTTP: the IdP plays the demo biller, and
    python3-saml (strict, signed assertions wanted, SHA-1 refused) judges every fault."""
    import importlib.util
    import socket
    import sys
    import threading

    from werkzeug.serving import make_server

    from idp import create_app
    from idp.cast import apply_crm
    from idp.settings import Settings
    from metadata.crm import load_crm

    root = Path(__file__).parent.parent
    spec = importlib.util.spec_from_file_location("sp_fault_suite", root / "examples" / "sp_fault_suite.py")
    assert spec is not None and spec.loader is not None
    suite = importlib.util.module_from_spec(spec)
    sys.modules["sp_fault_suite"] = suite  # dataclasses look their module up there
    spec.loader.exec_module(suite)

    record = load_crm(root / "validator" / "demo" / "springfield-water.toml")
    with socket.socket() as probe:  # a free port, so that the IdP's base URL is known before it starts
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    settings = apply_crm(Settings.model_validate({"server": {"base_url": base, "key_folder": "keys"}}), record)
    app = create_app(settings, base=tmp_path, crm=record)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        outcomes = {o.fault: o for o in suite.run(base, record)}
    finally:
        server.shutdown()
    assert outcomes["(none)"].refused is False, outcomes["(none)"].reason
    must_refuse = {"expired", "not-yet-valid", "wrong-audience", "wrong-recipient", "wrong-destination",
                   "wrong-in-response-to", "wrong-issuer", "status-responder", "status-authn-failed", "unsigned",
                   "signed-by-unknown-key", "keyinfo-foreign-certificate", "tampered-after-signing", "rsa-sha1",
                   "sha1-digest", "xsw-forged-assertion-first", "xsw-signed-assertion-in-extensions",
                   "xsw-signed-assertion-in-advice", "two-assertions", "replay", "no-bearer-confirmation"}
    assert {f for f in must_refuse if outcomes[f].refused is not True} == set()
    # python3-saml accepts the split NameID, and reads it whole, as it must.
    assert "customer-1@springfield-water.example.evil.test" in outcomes["comment-in-nameid"].reason
    assert outcomes["encrypted-for-other-key"].refused is None  # the record's SP publishes no key
