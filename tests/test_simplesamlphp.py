"""The validator against a real third-party IdP: SimpleSAMLphp 1.19 from Debian bookworm.

Many higher-education partners run SimpleSAMLphp. Here the Debian package's web root
(/usr/share/simplesamlphp/www) is served by PHP's built-in server (``php -S 127.0.0.1:<free
port>``), configured by this module in a temporary directory that SIMPLESAMLPHP_CONFIG_DIR names,
so the package's own /etc/simplesamlphp is never read or changed:

- ``config/config.php``: ``baseurlpath`` is the server's full URL, the SAML 2.0 IdP and the
  ``exampleauth`` module are on, and every directory SimpleSAMLphp writes to (logs, data, temp,
  PHP sessions) is inside the temporary directory; ``metadatadir`` and ``certdir`` point there too.
- ``config/authsources.php``: an ``exampleauth:UserPass`` source with two users. ``alice`` sends
  the claims exactly as the CRM record names them; ``carol`` sends ``accountnumber`` where the
  record says ``AccountNumber`` (the everyday case-only mistake of a hand-written attribute map).
- ``metadata/saml20-idp-hosted.php``: the IdP, signing with a key pair made for this run with
  ``cryptography`` (:func:`tests.factory.make_keypair`), kept in ``cert/``.
- ``metadata/saml20-sp-remote.php``: the portal's SP, with two ACS URLs: the portal's own and
  the validator's test SP (``<base_url>/test-sp/acs``), as a partner sets it up for a test login.

Each login is SP-initiated over real HTTP with ``requests``: the AuthnRequest goes to
SimpleSAMLphp's SSO URL over HTTP-Redirect, the login form is filled in, and the SAMLResponse is
read from SimpleSAMLphp's auto-POST form. Two consumers of that response are tested:

1. the command line, ``saml-validate response`` run as a subprocess with SimpleSAMLphp's
   metadata (fetched from its ``/saml2/idp/metadata.php``) and the CRM record, JSON report;
2. the web app's live test login (``/test-login/<biller>`` → SimpleSAMLphp → ``/test-sp/acs``)
   in local development mode, the record's trust being its ``[idp] metadata_url`` on
   SimpleSAMLphp, fetched for real.

The module skips only when the Debian packages are missing (``make test`` installs them).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest
import requests
from flask import Flask

from metadata.bindings import decode_redirect, encode_redirect
from metadata.certs import fingerprint
from metadata.store import SQLiteStore
from tests.factory import make_keypair
from tests.helpers import crm_toml
from validator.web import create_app
from validator.web.login_request import authn_request_xml, new_request_id
from validator.web.testsp import COOKIE

SSP_ROOT = Path("/usr/share/simplesamlphp")
SSP_WWW = SSP_ROOT / "www"
METADATA_PATH, SSO_PATH = "/saml2/idp/metadata.php", "/saml2/idp/SSOService.php"
PACKAGES = "simplesamlphp php-cli php-xml"
INSTALL = f"apt-get install {PACKAGES} (`make test` installs them)"

PORTAL_ENTITY = "https://portal.example.com/saml/metadata"
PORTAL_ACS = "https://portal.example.com/saml/acs"
BILLER = "B-SSP"

# The claims of the two users; alice's names are the record's, carol's AccountNumber is lower case.
ALICE = {"AccountNumber": "100200300", "Email": "alice@example.edu", "LoginTypeId": "1"}
CAROL = {"accountnumber": "100200301", "Email": "carol@example.edu", "LoginTypeId": "1"}
PASSWORDS = {"alice": "alice-pass", "carol": "carol-pass"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def php_string(value: str) -> str:
    """A PHP single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def php_attributes(claims: dict[str, str]) -> str:
    return "[" + ", ".join(f"{php_string(k)} => [{php_string(v)}]" for k, v in claims.items()) + "]"


def missing_packages() -> str | None:
    """Why SimpleSAMLphp cannot be run here, or None when it can."""
    php = shutil.which("php")
    if php is None or not (SSP_WWW / SSO_PATH.lstrip("/")).is_file():
        return f"SimpleSAMLphp or PHP is not installed: {INSTALL}"
    modules = subprocess.run([php, "-m"], capture_output=True, text=True, check=True).stdout.split()
    if "dom" not in modules:  # Debian's simplesamlphp does not depend on php-xml, which it cannot run without
        return f"PHP has no DOM extension, which SimpleSAMLphp needs: {INSTALL}"
    return None


@dataclass(frozen=True)
class SimpleSAMLphp:
    """A running SimpleSAMLphp IdP and what it publishes."""

    base_url: str
    folder: Path
    test_sp_base: str
    """Where the validator's web app says it is (the test SP's ACS is below it)."""
    cert_der: bytes

    @property
    def entity_id(self) -> str:
        """SimpleSAMLphp's own convention (its __DYNAMIC:1__ entity): the IdP's metadata URL."""
        return self.base_url + METADATA_PATH

    @property
    def metadata_url(self) -> str:
        return self.base_url + METADATA_PATH

    @property
    def sso_url(self) -> str:
        return self.base_url + SSO_PATH

    @property
    def test_acs(self) -> str:
        return f"{self.test_sp_base}/test-sp/acs"

    def log(self) -> str:
        """SimpleSAMLphp's log and the PHP server's output, for failure messages."""
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in
                         (self.folder / "log" / "simplesamlphp.log", self.folder / "php-server.log") if p.exists())


def write_config(folder: Path, base_url: str, test_sp_base: str) -> bytes:
    """SimpleSAMLphp's configuration for `base_url` in `folder`; the IdP certificate (DER)."""
    for name in ("config", "metadata", "cert", "log", "data", "tmp", "sessions"):
        (folder / name).mkdir()
    pair = make_keypair("simplesamlphp.test")
    (folder / "cert" / "idp.key").write_bytes(pair.key_pem)
    (folder / "cert" / "idp.key").chmod(0o600)
    (folder / "cert" / "idp.crt").write_bytes(pair.cert_pem)
    salt = base64.b32encode(os.urandom(20)).decode()
    (folder / "config" / "config.php").write_text(f"""<?php
$config = [
    'baseurlpath' => {php_string(base_url + '/')},
    'certdir' => {php_string(str(folder / 'cert') + '/')},
    'metadatadir' => {php_string(str(folder / 'metadata') + '/')},
    'loggingdir' => {php_string(str(folder / 'log') + '/')},
    'datadir' => {php_string(str(folder / 'data') + '/')},
    'tempdir' => {php_string(str(folder / 'tmp'))},
    'secretsalt' => {php_string(salt)},
    'auth.adminpassword' => {php_string(salt[::-1])},
    'technicalcontact_name' => 'Preflight tests',
    'technicalcontact_email' => 'na@example.org',
    'timezone' => 'UTC',
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'logging.level' => SimpleSAML\\Logger::INFO,
    'enable.saml20-idp' => true,
    'module.enable' => ['core' => true, 'saml' => true, 'exampleauth' => true],
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => {php_string(str(folder / 'sessions'))},
    'session.cookie.secure' => false,
    'language.cookie.secure' => false,
    'production' => true,
];
""")
    (folder / "config" / "authsources.php").write_text(f"""<?php
$config = [
    'users' => [
        'exampleauth:UserPass',
        'alice:{PASSWORDS["alice"]}' => {php_attributes(ALICE)},
        'carol:{PASSWORDS["carol"]}' => {php_attributes(CAROL)},
    ],
];
""")
    (folder / "metadata" / "saml20-idp-hosted.php").write_text(f"""<?php
$metadata[{php_string(base_url + METADATA_PATH)}] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'users',
];
""")
    post = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    (folder / "metadata" / "saml20-sp-remote.php").write_text(f"""<?php
$metadata[{php_string(PORTAL_ENTITY)}] = [
    'AssertionConsumerService' => [
        ['Binding' => {php_string(post)}, 'Location' => {php_string(PORTAL_ACS)}, 'index' => 0],
        ['Binding' => {php_string(post)}, 'Location' => {php_string(test_sp_base + '/test-sp/acs')}, 'index' => 1],
    ],
];
""")
    return pair.cert_der


def wait_for_metadata(ssp: SimpleSAMLphp, server: subprocess.Popen[bytes]) -> None:
    """Until SimpleSAMLphp publishes its metadata; a failure with its logs when it does not."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.poll() is None:
        try:
            answer = requests.get(ssp.metadata_url, timeout=5)
        except requests.RequestException:
            time.sleep(0.1)
            continue
        if answer.status_code == 200 and b"EntityDescriptor" in answer.content:
            return
        # SimpleSAMLphp shows a configuration error as an HTML page, often with status 200.
        pytest.fail(f"SimpleSAMLphp does not publish its metadata at {ssp.metadata_url} "
                    f"({answer.status_code}):\n{answer.text[:2000]}\n{ssp.log()}", pytrace=False)
    pytest.fail(f"php -S did not answer at {ssp.base_url} (exit status {server.poll()}):\n{ssp.log()}",
                pytrace=False)


@pytest.fixture(scope="module")
def ssp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleSAMLphp]:
    """SimpleSAMLphp under `php -S` on a free loopback port, for the whole module."""
    problem = missing_packages()
    if problem:
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("simplesamlphp")
    base_url, test_sp_base = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    cert_der = write_config(folder, base_url, test_sp_base)
    env = {**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(folder / "config")}
    with (folder / "php-server.log").open("wb") as output:
        server = subprocess.Popen(
            ["php", "-d", "display_errors=stderr", "-S", urlsplit(base_url).netloc, "-t", str(SSP_WWW)],
            env=env, stdout=output, stderr=subprocess.STDOUT, cwd=folder)
    ssp = SimpleSAMLphp(base_url, folder, test_sp_base, cert_der)
    try:
        wait_for_metadata(ssp, server)
        yield ssp
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- a browser at SimpleSAMLphp -------------------------------------------------------------


def only_form(page: requests.Response) -> tuple[str, dict[str, str]]:
    """The action (absolute) and the fields a browser would submit of the one form of `page`
    (its text, password and hidden inputs)."""
    forms = list(lxml.html.fromstring(page.text).iter("form"))
    assert len(forms) == 1, f"{page.url} ({page.status_code}) has {len(forms)} forms:\n{page.text[:3000]}"
    fields = {str(field.get("name")): field.get("value") or "" for field in forms[0].iter("input")
              if field.get("name") and (field.get("type") or "text").lower() in ("text", "password", "hidden")}
    return urljoin(page.url, forms[0].get("action") or page.url), fields


def log_in(ssp: SimpleSAMLphp, sso_redirect: str, user: str) -> tuple[str, dict[str, str]]:
    """A browser following `sso_redirect` (an AuthnRequest over HTTP-Redirect) and logging in as
    `user`: the action and fields of the form that posts the SAMLResponse to the SP."""
    browser = requests.Session()
    login_page = browser.get(sso_redirect, timeout=30)
    assert login_page.status_code == 200, f"{login_page.text[:3000]}\n{ssp.log()}"
    action, fields = only_form(login_page)
    assert "AuthState" in fields, login_page.text[:3000]
    answer = browser.post(action, data={**fields, "username": user, "password": PASSWORDS[user]}, timeout=30)
    assert answer.status_code == 200, f"{answer.text[:3000]}\n{ssp.log()}"
    action, fields = only_form(answer)
    assert "SAMLResponse" in fields, f"{answer.text[:3000]}\n{ssp.log()}"
    return action, fields


# --- the records ----------------------------------------------------------------------------


def crm_record(*, idp: dict[str, str]) -> str:
    """The biller's record: the portal's SP, the given [idp] keys, three required claims."""
    return crm_toml(sp_entity_id=PORTAL_ENTITY, acs_url=PORTAL_ACS, idp=dict(idp),
                    biller=(BILLER, "A university on SimpleSAMLphp"))


# --- what the reports say -------------------------------------------------------------------


def codes(report: dict[str, Any], severity: str | None = None) -> list[str]:
    return [f["code"] for f in report["findings"] if severity in (None, f["severity"])]


def assert_verified_by_simplesamlphp(report: dict[str, Any], ssp: SimpleSAMLphp, request_id: str | None) -> None:
    """The response verified with the certificate SimpleSAMLphp signs with, and it answers our request."""
    response = report["facts"]["response"]
    assert response["verified"] is True, report["findings"]
    assert response["signed_by"] and set(response["signed_by"]) == {fingerprint(ssp.cert_der)}, response
    assert response["issuer"] == ssp.entity_id
    if request_id is not None:
        assert response["in_response_to"] == request_id
    assert not [code for code in codes(report) if code.startswith("SIG") and code != "SIG025"], report["findings"]


def assert_ready(report: dict[str, Any]) -> None:
    """No error or warning, and no claim finding at all: every claim judged ok."""
    assert codes(report, "error") == [] and codes(report, "warning") == [], report["findings"]
    assert not [code for code in codes(report) if code.startswith("CLM")], report["findings"]
    assert report["verdict"] == "ready"
    assert report["facts"]["response"]["claims"] == {name: [value] for name, value in ALICE.items()}


def assert_case_mismatch(report: dict[str, Any]) -> None:
    """The one error is the claim-name near miss: AccountNumber required, accountnumber sent."""
    assert codes(report, "error") == ["CLM001"], report["findings"]
    found = next(f for f in report["findings"] if f["code"] == "CLM001")
    assert found["expected"] == "AccountNumber"
    assert found["actual"] == "'accountnumber'"  # the near misses, each name quoted
    assert "near misses: 'accountnumber' (letter case)" in found["message"]
    assert "saml:Attribute[@Name='accountnumber']" in found["where"]
    assert report["verdict"] == "not ready"
    assert report["facts"]["response"]["claims"] == {name: [value] for name, value in CAROL.items()}


# --- 1. the command line --------------------------------------------------------------------


def saml_validate() -> str:
    """The console script installed in this environment (`pip install -e '.[test]'`)."""
    script = Path(sys.executable).with_name("saml-validate")
    assert script.is_file(), f"{script} is missing: pip install -e '.[test]'"
    return str(script)


@pytest.mark.parametrize("user", ["alice", "carol"])
def test_the_cli_judges_a_simplesamlphp_response(ssp: SimpleSAMLphp, tmp_path: Path, user: str) -> None:
    request_id = new_request_id()
    xml = authn_request_xml(request_id=request_id, issuer=PORTAL_ENTITY, acs_url=PORTAL_ACS,
                            destination=ssp.sso_url, now=datetime.now(UTC))
    action, fields = log_in(ssp, encode_redirect(xml, param="SAMLRequest", destination=ssp.sso_url), user)
    assert action == PORTAL_ACS
    (tmp_path / "response.xml").write_bytes(base64.b64decode(fields["SAMLResponse"]))
    metadata = requests.get(ssp.metadata_url, timeout=30)
    assert metadata.status_code == 200
    (tmp_path / "metadata.xml").write_bytes(metadata.content)
    (tmp_path / "record.toml").write_text(crm_record(idp={"entity_id": ssp.entity_id, "sso_url": ssp.sso_url}))

    run = subprocess.run(
        [saml_validate(), "response", "response.xml", "--metadata", "metadata.xml", "--crm", "record.toml",
         "--request-id", request_id, "--format", "json"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.stdout, run.stderr
    report = json.loads(run.stdout)
    assert report["facts"]["trust_source"] == {"kind": "metadata", "location": "metadata.xml"}
    assert_verified_by_simplesamlphp(report, ssp, request_id)
    if user == "alice":
        assert_ready(report)
        assert run.returncode == 0
    else:
        assert_case_mismatch(report)
        assert run.returncode == 1


# --- 2. the live test login -----------------------------------------------------------------


def validator_app(ssp: SimpleSAMLphp, tmp_path: Path) -> Flask:
    """The web app in local development mode, with the biller's record in its CRM folder."""
    folder = tmp_path / "crm"
    folder.mkdir()
    # Trust from the metadata URL, fetched for real; no sso_url: the test SP reads it from that metadata.
    (folder / f"{BILLER}.toml").write_text(crm_record(idp={"entity_id": ssp.entity_id,
                                                           "metadata_url": ssp.metadata_url}))
    app = create_app(crm_folder=folder, base_url=ssp.test_sp_base, store=SQLiteStore(tmp_path / "validator.sqlite3"),
                     dev_mode=True)
    app.testing = True
    return app


def text(element: Any) -> str:
    return "".join(element.itertext())


def claim_table(page: str) -> list[tuple[str, str, str]]:
    """The result page's claim table: (claim, actual, status with its codes) per row."""
    tables = [t for t in lxml.html.fromstring(page).iter("table") if "Expected (CRM record)" in text(t)]
    assert len(tables) == 1, page[:3000]
    rows = tables[0].findall("./tbody/tr")
    return [(text(cells[0]), text(cells[2]), " ".join(text(cells[3]).split()))
            for cells in (row.findall("td") for row in rows)]


@pytest.mark.parametrize("user", ["alice", "carol"])
def test_the_live_test_login_judges_simplesamlphp(ssp: SimpleSAMLphp, tmp_path: Path, user: str) -> None:
    sp = validator_app(ssp, tmp_path).test_client()
    started = sp.get(f"/test-login/{BILLER}")
    assert started.status_code == 302, started.get_data(as_text=True)
    location = started.headers["Location"]
    assert location.startswith(f"{ssp.sso_url}?SAMLRequest="), location  # from SimpleSAMLphp's metadata
    request_id = decode_redirect(urlsplit(location).query, "SAMLRequest").tree.getroot().get("ID")
    assert sp.get_cookie(COOKIE) is not None

    action, fields = log_in(ssp, location, user)
    assert action == ssp.test_acs
    posted = sp.post("/test-sp/acs", data=fields)  # the test client sends the cookie /test-login set
    assert posted.status_code == 303, posted.get_data(as_text=True)
    result = posted.headers["Location"]
    assert result.startswith("/test-logins/")
    page = sp.get(result)
    assert page.status_code == 200
    api = sp.get(f"/api/v1{result}")
    assert api.status_code == 200 and api.mimetype == "application/json"
    report = json.loads(api.get_data())

    assert report["facts"]["trust_source"] == {"kind": "metadata_url", "location": ssp.metadata_url}
    assert report["inputs"]["metadata"] == ssp.metadata_url
    assert_verified_by_simplesamlphp(report, ssp, request_id)
    rows = claim_table(page.get_data(as_text=True))
    if user == "alice":
        assert_ready(report)
        assert rows == [("AccountNumber", "100200300", "ok"), ("Email", "alice@example.edu", "ok"),
                        ("LoginTypeId", "1 (Customer)", "ok")]
    else:
        assert_case_mismatch(report)
        assert rows == [("AccountNumber", "— not sent", "missing (CLM001)"), ("Email", "carol@example.edu", "ok"),
                        ("LoginTypeId", "1 (Customer)", "ok"), ("accountnumber", "100200301", "extra")]
