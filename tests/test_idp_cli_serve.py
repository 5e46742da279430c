"""`saml-idp serve --port/--host`: the IdP publishes the address it listens on.

Without a base URL of its own (``base_url`` in the settings file, or ``IDP_BASE_URL``), the IdP
served on another port must publish that port: its metadata's SSO URL is where SPs send
AuthnRequests, and the IdP refuses a request whose Destination is not its own SSO URL. The
first test starts the real console script on a free port and completes an SP-initiated login
over HTTP, as an SP on the same machine would; the others check the precedence without a server.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from lxml import etree

from idp.cli import cli
from metadata.bindings import encode_redirect
from metadata.saml import MD, SAMLP
from tests.idp_support import authn_request, form_fields

ROOT = Path(__file__).resolve().parent.parent
SAML_IDP = ROOT / ".venv" / "bin" / "saml-idp"
SP = "http://localhost:3000/saml/metadata"
ACS = "http://localhost:3000/saml/acs"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
START_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(tmp_path: Path) -> dict[str, str]:
    """This process's environment without any IDP_* setting, plus a temporary key folder and store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["IDP_KEY_FOLDER"] = str(tmp_path / "keys")
    env["IDP_STORE"] = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    return env


def _settings_file(tmp_path: Path, server: str = "") -> Path:
    """A settings file that registers one inline SP on localhost (dev_mode allows its http ACS)."""
    path = tmp_path / "idp.toml"
    path.write_text(f'[server]\n{server}\n[[sps]]\nentity_id = "{SP}"\nacs = ["{ACS}"]\n')
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`saml-idp serve --config idp.toml --port <free port>` as a subprocess; its URL."""
    if not os.access(SAML_IDP, os.X_OK):
        pytest.fail(f"{SAML_IDP} is missing: pip install -e . in the venv", pytrace=False)
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SAML_IDP), "serve", "--config", str(_settings_file(tmp_path)), "--port", str(port)],
            cwd=tmp_path, env=_environment(tmp_path), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(process, url, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_answering(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"saml-idp serve exited with {process.returncode}:\n{log.read_text(errors='replace')}",
                        pytrace=False)
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"saml-idp serve did not answer {url}/healthz:\n{log.read_text(errors='replace')}", pytrace=False)


def test_serve_on_another_port_publishes_it_and_accepts_its_own_requests(served: str) -> None:
    metadata = requests.get(f"{served}/metadata", timeout=10)
    assert metadata.status_code == 200, metadata.text
    root = etree.fromstring(metadata.content)
    sso = root.find(f".//{{{MD}}}SingleSignOnService[@Binding='{REDIRECT}']")
    assert sso is not None
    assert sso.get("Location") == f"{served}/sso"  # the random port, not 8080
    assert root.get("entityID") == f"{served}/metadata"

    browser = requests.Session()
    xml = authn_request(issuer=SP, acs=ACS, destination=f"{served}/sso")
    redirect = browser.get(encode_redirect(xml, param="SAMLRequest", destination=f"{served}/sso"),
                           allow_redirects=False, timeout=10)
    assert redirect.status_code == 303, redirect.text  # to the persona picker, not REQ018
    login = redirect.headers["Location"]
    assert login.startswith("/login?request=")
    assert browser.get(f"{served}{login}", timeout=10).status_code == 200
    token = login.split("=", 1)[1]
    page = browser.post(f"{served}/login", data={"request": token, "persona": "alice"}, timeout=10)
    assert page.status_code == 200, page.text

    fields = form_fields(page.text)  # the auto-POST form
    assert fields["_action"] == ACS
    response = etree.fromstring(base64.b64decode(fields["SAMLResponse"]))
    assert response.tag == f"{{{SAMLP}}}Response" and response.get("Destination") == ACS
    status = response.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    assert status is not None and status.get("Value") == "urn:oasis:names:tc:SAML:2.0:status:Success"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Flask]:
    """The apps `saml-idp serve` would run; none is run."""
    apps: list[Flask] = []
    monkeypatch.setattr(Flask, "run", lambda self, **_: apps.append(self))
    for name in [k for k in os.environ if k.startswith("IDP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("IDP_KEY_FOLDER", str(tmp_path / "keys"))
    monkeypatch.setenv("IDP_STORE", f"sqlite:///{tmp_path / 'state.sqlite3'}")
    return apps


def _base_url(apps: list[Flask]) -> Any:
    assert len(apps) == 1
    return apps[0].extensions["saml_idp"].settings.server.base_url


@pytest.mark.parametrize(("options", "published"), [
    ([], "http://127.0.0.1:8080"),
    (["--port", "9401"], "http://127.0.0.1:9401"),
    (["--host", "localhost", "--port", "9401"], "http://localhost:9401"),
    (["--host", "0.0.0.0", "--port", "9401"], "http://127.0.0.1:9401"),
    (["--host", "::1", "--port", "9401"], "http://[::1]:9401"),
])
def test_host_and_port_set_the_base_url(started: list[Flask], options: list[str], published: str) -> None:
    result = CliRunner().invoke(cli, ["serve", *options])
    assert result.exit_code == 0, result.output
    assert _base_url(started) == published
    assert f"published as {published}" in result.output


def test_idp_base_url_wins_over_the_port(started: list[Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_BASE_URL", "https://idp.proxy.example")
    result = CliRunner().invoke(cli, ["serve", "--port", "9401"])
    assert result.exit_code == 0, result.output
    assert _base_url(started) == "https://idp.proxy.example"


def test_base_url_of_the_settings_file_wins_over_the_port(started: list[Flask], tmp_path: Path) -> None:
    config = _settings_file(tmp_path, 'base_url = "https://idp.partner-test.example"')
    result = CliRunner().invoke(cli, ["serve", "--config", str(config), "--port", "9401"])
    assert result.exit_code == 0, result.output
    assert _base_url(started) == "https://idp.partner-test.example"


def test_one_persona_is_singular(started: list[Flask], tmp_path: Path) -> None:
    config = tmp_path / "one.toml"
    config.write_text('[[personas]]\nid = "solo"\nnameid = "solo@example.com"\n')
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "(generic profile, 1 persona)" in result.output
    assert "(generic profile, 2 personas)" in CliRunner().invoke(cli, ["serve"]).output


def test_relative_paths_follow_the_settings_files_folder_as_the_example_says(
    started: list[Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = " ".join(line.lstrip("# ") for line in (ROOT / "config" / "idp.example.toml").read_text().splitlines())
    assert "are read from the folder of this settings file, not the working directory" in example
    monkeypatch.delenv("IDP_KEY_FOLDER")
    monkeypatch.delenv("IDP_STORE")
    folder, elsewhere = tmp_path / "conf", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    config = folder / "idp.toml"
    config.write_text('[server]\nkey_folder = "keys"\n')
    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["serve", "--config", "../conf/idp.toml"])
    assert result.exit_code == 0, result.output
    assert any((folder / "keys").iterdir())
    assert (folder / "var" / "idp" / "state.sqlite3").exists()  # the default store too
    assert not any(elsewhere.iterdir())
