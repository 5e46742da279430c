"""Local development mode (``saml-validate serve --dev``, ``VALIDATOR_DEV_MODE=1``) and the local
loop of the README: ``saml-idp serve --crm examples/billers/local-idp.toml`` beside
``saml-validate serve --dev --crm-folder examples/billers``, completing a verified test login."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from flask import Flask
from werkzeug.serving import make_server

from idp import create_app as create_idp
from idp.cast import apply_crm
from idp.settings import DEMO_PERSONAS, Server, Settings
from metadata.crm import CRMRecord, load_crm
from metadata.store import SQLiteStore
from tests.idp_support import login_as
from validator.cli import cli
from validator.web import DevModeError, create_app

ROOT = Path(__file__).resolve().parent.parent
BILLERS = ROOT / "examples" / "billers"
LOCAL = BILLERS / "local-idp.toml"
VALIDATOR_BASE = "http://127.0.0.1:8081"  # saml-validate serve's default address


def validator(tmp_path: Path, folder: Path = BILLERS, **options: Any) -> Flask:
    app = create_app(crm_folder=folder, base_url=options.pop("base_url", VALIDATOR_BASE),
                     store=SQLiteStore(tmp_path / "validator.sqlite3"), **options)
    app.testing = True
    return app


def default_idp(tmp_path: Path, base_url: str | None = None, record: CRMRecord | None = None) -> Flask:
    """`saml-idp serve` with its defaults (or on `base_url`), playing `record` as ``--crm`` does."""
    server = Server(key_folder=str(tmp_path / "idp-keys"), **({"base_url": base_url} if base_url else {}))
    settings = Settings(server=server, personas=DEMO_PERSONAS)
    if record is not None:
        settings = apply_crm(settings, record)
    app = create_idp(settings, base=tmp_path, store=SQLiteStore(tmp_path / "idp.sqlite3"))
    app.testing = True
    return app


# --- the record matches the IdP's defaults -------------------------------------------------


def test_the_local_record_matches_saml_idp_serve_defaults(tmp_path: Path) -> None:
    record = load_crm(LOCAL)
    idp = default_idp(tmp_path).extensions["saml_idp"]
    assert record.idp.entity_id == idp.entity_id
    assert record.idp.sso_url == idp.sso_urls[0]
    assert record.idp.metadata_url == f"{Server().base_url}/metadata"
    published = default_idp(tmp_path).test_client().get("/metadata").get_data(as_text=True)
    assert f'entityID="{record.idp.entity_id}"' in published and f'Location="{record.idp.sso_url}"' in published
    lt_claim = record.login_type_claim
    assert lt_claim is not None
    for persona in DEMO_PERSONAS:  # alice and bob send exactly the record's claims, with its login types
        assert list(persona.claims) == [claim.name for claim in record.claims]
        assert int(str(persona.claims[lt_claim.name])) in record.login_type_ids
    assert {int(str(p.claims[lt_claim.name])) for p in DEMO_PERSONAS} == set(record.login_type_ids)


def test_the_local_record_names_the_test_sp_as_saml_validate_serve_presents_it(tmp_path: Path) -> None:
    record = load_crm(LOCAL)
    metadata = validator(tmp_path).test_client().get("/test-sp/metadata").get_data(as_text=True)
    assert f'entityID="{record.sp.entity_id}"' in metadata
    assert f'Location="{record.sp.acs_url}"' in metadata
    serve = next(c for c in cli.commands.values() if c.name == "serve")
    defaults = {p.name: p.default for p in serve.params}
    assert f"http://{defaults['host']}:{defaults['port']}" == VALIDATOR_BASE


# --- the local loop ----------------------------------------------------------------------


@pytest.fixture
def idp_server(tmp_path: Path) -> Iterator[tuple[Flask, str, CRMRecord]]:
    """`saml-idp serve --crm local-idp.toml` on a free loopback port, over real HTTP; the record
    as it would be with that port."""
    holder: dict[str, Flask] = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    text = LOCAL.read_text().replace("http://127.0.0.1:8080", base)
    (tmp_path / "billers").mkdir()
    (tmp_path / "billers" / "local-idp.toml").write_text(text)
    record = load_crm(tmp_path / "billers" / "local-idp.toml")
    holder["app"] = default_idp(tmp_path, base, record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["app"], base, record
    finally:
        server.shutdown()
        thread.join(5)


def test_the_local_loop_completes_a_verified_test_login(tmp_path: Path,
                                                        idp_server: tuple[Flask, str, CRMRecord]) -> None:
    idp_app, base, record = idp_server
    app = validator(tmp_path, tmp_path / "billers", dev_mode=True)  # the default loader: the real fetcher
    sp, browser_at_idp = app.test_client(), idp_app.test_client()
    started = sp.get("/test-login/local-idp")
    assert started.status_code == 302, started.get_data(as_text=True)
    location = started.headers["Location"]
    assert location.startswith(f"{base}/sso?SAMLRequest=")
    parts = urlsplit(location)
    at_idp = browser_at_idp.get(f"{parts.path}?{parts.query}")
    assert at_idp.status_code in (302, 303), at_idp.get_data(as_text=True)
    fields = login_as(browser_at_idp, at_idp.headers["Location"], persona="customer-1")
    assert fields.pop("_action") == record.sp.acs_url
    posted = sp.post("/test-sp/acs", data=fields)
    assert posted.status_code == 303, posted.get_data(as_text=True)
    login_id = posted.headers["Location"].rsplit("/", 1)[1]
    report = json.loads(sp.get(f"/api/v1/test-logins/{login_id}").get_data())
    assert report["verdict"] == "ready", report["findings"]
    assert report["summary"]["errors"] == 0
    trust_problems = [f for f in report["findings"] if f["code"][:3] in ("SIG", "NET") and f["severity"] != "info"]
    assert not trust_problems, report["findings"]
    page = sp.get(f"/test-logins/{login_id}").get_data(as_text=True)
    assert "dev-banner" in page and ">ready<" in page


def test_without_dev_mode_the_local_metadata_url_is_refused_as_today(
        tmp_path: Path, idp_server: tuple[Flask, str, CRMRecord]) -> None:
    _, _, record = idp_server
    strict = validator(tmp_path, tmp_path / "billers").test_client()
    refused = strict.get("/partners/local-idp/report").get_data(as_text=True)
    assert "NET001" in refused  # http: refused before anything is resolved
    dev = validator(tmp_path, tmp_path / "billers", dev_mode=True).test_client()
    allowed = dev.get("/partners/local-idp/report").get_data(as_text=True)
    assert not re.search(r"NET0\d\d", allowed), allowed[:2000]
    assert record.idp.entity_id in allowed


# --- refusing to run where others reach it ------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com"])
def test_dev_mode_refuses_a_non_loopback_bind(tmp_path: Path, host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[object] = []
    monkeypatch.setattr(Flask, "run", lambda *a, **k: ran.append(k))
    result = CliRunner().invoke(cli, ["serve", "--dev", "--host", host, "--store",
                                      f"sqlite:///{tmp_path / 's.sqlite3'}"])
    assert result.exit_code == 2 and not ran
    assert "loopback" in result.output and repr(host) in result.output
    by_env = CliRunner().invoke(cli, ["serve", "--host", host, "--store", f"sqlite:///{tmp_path / 's.sqlite3'}"],
                                env={"VALIDATOR_DEV_MODE": "1"})
    assert by_env.exit_code == 2 and not ran


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_dev_mode_runs_on_loopback(tmp_path: Path, host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[dict[str, object]] = []
    monkeypatch.setattr(Flask, "run", lambda self, **k: ran.append({**k, "dev": self.extensions[
        "saml_validator_web"].dev_mode}))
    result = CliRunner().invoke(cli, ["serve", "--dev", "--host", host, "--crm-folder", str(BILLERS),
                                      "--store", f"sqlite:///{tmp_path / 's.sqlite3'}"])
    assert result.exit_code == 0, result.output
    assert ran == [{"host": host, "port": 8081, "threaded": True, "dev": True}]
    assert "LOCAL DEVELOPMENT MODE" in result.output


def test_create_app_refuses_dev_mode_on_a_public_base_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DevModeError, match="loopback"):
        validator(tmp_path, base_url="https://preflight.example", dev_mode=True)
    monkeypatch.setenv("VALIDATOR_DEV_MODE", "1")
    with pytest.raises(DevModeError):
        validator(tmp_path, base_url="https://preflight.example")
    assert validator(tmp_path).extensions["saml_validator_web"].dev_mode
    monkeypatch.setenv("VALIDATOR_DEV_MODE", "0")
    assert not validator(tmp_path, base_url="https://preflight.example").extensions["saml_validator_web"].dev_mode


def test_dev_mode_serves_only_loopback_clients(tmp_path: Path) -> None:
    app = validator(tmp_path, dev_mode=True)
    assert app.test_client().get("/").status_code == 200
    assert app.test_client().get("/", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
    # Without --dev but also without sign-in (local mode), the same: only this machine.
    local = validator(tmp_path)
    assert local.test_client().get("/", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
    # With sign-in configured, another machine reaches it: the sign-in page.
    signed = validator(tmp_path, sign_in=True).test_client().get("/", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert signed.status_code == 303 and signed.headers["Location"].startswith("/sign-in?next=")


def test_the_container_never_turns_dev_mode_on() -> None:
    for name in ("Dockerfile", "docker-compose.yml"):
        text = (ROOT / name).read_text()
        assert "VALIDATOR_DEV_MODE" not in text and "--dev" not in text, name


# --- the banner ---------------------------------------------------------------------------

PAGES = ["/", "/no-such-page", "/test-logins/" + "x" * 32, "/partners/local-idp/discover", "/partners/nobody/report"]


@pytest.mark.parametrize("path", PAGES)
def test_the_banner_is_on_every_page_in_dev_mode_only(tmp_path: Path, path: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from metadata.fetch import FetchError

    def unreachable(url: str, policy: object = None) -> None:
        raise FetchError("connect", f"{url}: nothing listens (test)", url=url)

    monkeypatch.setattr("metadata.fetch.fetch", unreachable)
    dev = validator(tmp_path, dev_mode=True).test_client().get(path).get_data(as_text=True)
    assert dev.count('class="dev-banner"') == 1, dev[:1500]
    assert "Local development mode" in dev
    strict = validator(tmp_path).test_client().get(path).get_data(as_text=True)
    assert "dev-banner" not in strict and "Local development mode" not in strict


def test_the_banner_goes_just_after_the_first_body_start_tag() -> None:
    from validator.web.state import _after_body_tag

    page = '<html><head></head><BODY class="x">hi</BODY></html>'
    assert page[:_after_body_tag(page)] == '<html><head></head><BODY class="x">'
    assert _after_body_tag("<bodyx><body>x") == len("<bodyx><body>")
    assert _after_body_tag("no body here") == 0
    assert _after_body_tag("<body") == 0  # cut short: the banner goes first
