"""Running the test IdP in tests: an app with a registered SP, and real SP libraries."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient

from idp import create_app
from idp.settings import Persona, ServiceProvider, Settings
from metadata.keys import KeyPair
from metadata.saml import SAML, SAMLP
from metadata.store import SQLiteStore, Store

IDP_BASE = "https://idp.test.example"
SP_ENTITY = "https://sp.example.com/saml/metadata"
ACS = "https://sp.example.com/saml/acs"
SLS = "https://sp.example.com/saml/sls"

ALICE = Persona(id="alice", display_name="Alice", password="alice-pw", nameid="alice@example.com",
                claims={"AccountNumber": "100200300", "Email": "alice@example.com", "LoginTypeId": "1",
                        "Groups": ["billing", "support"]})


def make_idp(tmp_path: Path, *, sps: tuple[ServiceProvider, ...] | None = None, **server: Any) -> Flask:
    return make_idp_with_store(tmp_path, SQLiteStore(tmp_path / "state.sqlite3"), sps=sps, **server)


def make_idp_with_store(
    tmp_path: Path, store: Store, *, sps: tuple[ServiceProvider, ...] | None = None, **server: Any
) -> Flask:
    settings = Settings.model_validate({
        "server": {"base_url": IDP_BASE, "key_folder": str(tmp_path / "keys"), "dev_mode": False, **server},
        "personas": [ALICE.model_dump()],
        "sps": [s.model_dump() for s in (sps or (ServiceProvider(entity_id=SP_ENTITY, acs=[ACS]),))],
    })
    app = create_app(settings, base=tmp_path, store=store)
    app.testing = True
    return app


def idp_key(app: Flask) -> KeyPair:
    return app.extensions["saml_idp"].key  # type: ignore[no-any-return]


def pem_body(pem: bytes) -> str:
    return "".join(line for line in pem.decode().splitlines() if "-----" not in line)


def sso_path(url: str) -> str:
    """The path and raw query of an SSO URL, for the Flask test client."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == IDP_BASE, url
    return f"{parts.path}?{parts.query}"


def form_fields(page: str) -> dict[str, str]:
    """The hidden fields and action of the auto-POST form."""
    fields = {m.group(1): html.unescape(m.group(2))
              for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}
    action = re.search(r'<form method="post" action="([^"]+)">', page)
    assert action, page
    fields["_action"] = html.unescape(action.group(1))
    return fields


def logout_confirmation(page: Any) -> dict[str, str]:
    """The hidden fields of the "Sign out of the test IdP?" page, posted to /slo/confirm to confirm."""
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Sign out of the test IdP?" in text, text[:500]
    action = re.search(r'<form method="post" action="([^"]+)">', text)
    assert action is not None and action.group(1) == "/slo/confirm"
    return {m.group(1): html.unescape(m.group(2))
            for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', text)}


def login_as(client: FlaskClient, redirect_location: str, persona: str = "alice") -> dict[str, str]:
    """Follow the IdP's redirect to /login, pick `persona`, and return the auto-POST form fields."""
    assert redirect_location.startswith("/login?request=")
    token = parse_qs(urlsplit(redirect_location).query)["request"][0]
    assert client.get(redirect_location).status_code == 200
    page = client.post("/login", data={"request": token, "persona": persona})
    assert page.status_code == 200, page.get_data(as_text=True)
    return form_fields(page.get_data(as_text=True))


def decoded(fields: dict[str, str]) -> bytes:
    return base64.b64decode(fields["SAMLResponse"])




def authn_request(
    *,
    request_id: str = "_req0123456789abcdef",
    issuer: str = SP_ENTITY,
    acs: str | None = ACS,
    issue_instant: str | None = None,
    destination: str | None = None,
    nameid_format: str | None = None,
    force_authn: bool = False,
    is_passive: bool = False,
) -> bytes:
    """A minimal AuthnRequest as an SP sends it (SAML Core §3.4.1)."""
    from datetime import UTC, datetime

    from lxml import etree

    root = etree.Element(f"{{{SAMLP}}}AuthnRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    root.set("ID", request_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", issue_instant or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if destination:
        root.set("Destination", destination)
    if acs:
        root.set("AssertionConsumerServiceURL", acs)
        root.set("ProtocolBinding", "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    if force_authn:
        root.set("ForceAuthn", "true")
    if is_passive:
        root.set("IsPassive", "true")
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer
    if nameid_format:
        etree.SubElement(root, f"{{{SAMLP}}}NameIDPolicy", Format=nameid_format, AllowCreate="true")
    return etree.tostring(root)


def redirect_path(xml: bytes, *, relay_state: str | None = None, key_pem: bytes | None = None) -> str:
    from metadata.bindings import encode_redirect

    return sso_path(encode_redirect(xml, param="SAMLRequest", destination=f"{IDP_BASE}/sso",
                                    relay_state=relay_state, key_pem=key_pem))
