"""The temporary folder of one run of the IdP benchmarks, and what every side of them shares.

The parent writes it once (:func:`prepare`); the children and both gunicorn apps only read it:

    bench.json          the names below and the ports, for the children
    key.pem, cert.pem   an RSA-2048 key generated for this run (the signing-rate children and
                        the pysaml2 IdP sign with it)
    sp-metadata.xml     the benchmark SP, for pysaml2's metadata store
    idp/idp.toml        the project IdP's settings (store and key folder inside ``idp/``)
    pysaml2/config.json the minimal pysaml2 IdP's configuration
    minimal.json        the base URL of the minimal python-xmlsec endpoint (bench.minimal_idp)

This module imports neither the project nor pysaml2, so that the pysaml2 side of the
comparison never loads the project.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

SP_ENTITY_ID = "https://sp.bench.example/saml/metadata"
ACS_URL = "https://sp.bench.example/saml/acs"  # never contacted: the load generator only reads the form
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID = "alice@example.com"
# One persona with 8 claims (the "one persona with 8 claims").
CLAIMS: dict[str, str] = {
    "AccountNumber": "100200300",
    "Email": "alice@example.com",
    "LoginTypeId": "1",
    "FirstName": "Alice",
    "LastName": "Customer",
    "BillerId": "B-10442",
    "PolicyNumber": "POL-2024-000123",
    "Phone": "+1-555-0100",
}
IDP_PATH = "/metadata"  # entity ID = base URL + this, for both IdPs
SSO_PATH = "/sso"


def prepare(folder: Path) -> None:
    """Write the key pair, the SP metadata and `bench.json` into `folder` (which exists)."""
    key_pem, cert_pem = _keypair()
    (folder / "key.pem").write_bytes(key_pem)
    (folder / "key.pem").chmod(0o600)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "sp-metadata.xml").write_text(_sp_metadata())
    info = {"sp_entity_id": SP_ENTITY_ID, "acs": ACS_URL, "nameid": NAMEID, "claims": CLAIMS}
    (folder / "bench.json").write_text(json.dumps(info, indent=2))


def write_idp_settings(folder: Path, base_url: str) -> Path:
    """The project IdP's settings for a server at `base_url`: an inline SP and an auto_login persona.

    The store is a SQLite file and the key folder a directory, both in ``folder/idp``, so that
    the two gunicorn workers share them (the first worker to start creates the key).
    """
    idp = folder / "idp"
    idp.mkdir(exist_ok=True)
    claims = "\n".join(f"{name} = {json.dumps(value)}" for name, value in CLAIMS.items())
    (idp / "idp.toml").write_text(f"""\
[server]
base_url = {json.dumps(base_url)}
key_folder = {json.dumps(str(idp / "keys"))}
store = {json.dumps("sqlite:///" + str(idp / "state.sqlite3"))}

[[personas]]
id = "alice"
display_name = "Alice Customer"
nameid = {json.dumps(NAMEID)}
nameid_format = {json.dumps(EMAIL_FORMAT)}
auto_login = true

[personas.claims]
{claims}

[[sps]]
entity_id = {json.dumps(SP_ENTITY_ID)}
acs = [{json.dumps(ACS_URL)}]
sign = "assertion"
""")
    return idp


def write_pysaml2_config(folder: Path, base_url: str) -> Path:
    """A minimal pysaml2 IdP configuration for a server at `base_url`, signing with key.pem."""
    side = folder / "pysaml2"
    side.mkdir(exist_ok=True)
    (side / "config.json").write_text(json.dumps(pysaml2_config(folder, base_url), indent=2))
    return side


def write_minimal_config(folder: Path, base_url: str) -> Path:
    """The minimal python-xmlsec endpoint reads the work folder itself, and its base URL from here."""
    (folder / "minimal.json").write_text(json.dumps({"base_url": base_url}))
    return folder


def pysaml2_config(folder: Path, base_url: str) -> dict[str, Any]:
    """The dict given to ``saml2.config.IdPConfig().load``: pysaml2's defaults, xmlsec1 as crypto backend."""
    redirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
    return {
        "entityid": base_url + IDP_PATH,
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [[base_url + SSO_PATH, redirect]]},
            "name_id_format": [EMAIL_FORMAT],
            # pysaml2's default attribute name format (uri): it has no converter for unspecified.
            "policy": {"default": {"lifetime": {"minutes": 5}}},
            # RSA-SHA256 like the project (pysaml2's own default is still RSA-SHA1).
            "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
        }},
        "key_file": str(folder / "key.pem"),
        "cert_file": str(folder / "cert.pem"),
        "metadata": {"local": [str(folder / "sp-metadata.xml")]},
        "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
    }


def _keypair() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SAML Preflight benchmark IdP")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _sp_metadata() -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP_ENTITY_ID}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:NameIDFormat>{EMAIL_FORMAT}</md:NameIDFormat>
    <md:AssertionConsumerService index="0" isDefault="true"
        Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS_URL}"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"""
