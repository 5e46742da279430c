"""`saml-idp`: run the test IdP and manage its keys and personas.

    saml-idp serve [--config idp.toml] [--crm biller.toml] [--vendor okta] [--host 127.0.0.1] [--port 8080]
    saml-idp metadata [--config idp.toml] [--crm biller.toml] [--vendor okta]
    saml-idp keygen [--config idp.toml] [--rotate]
    saml-idp users [--config idp.toml] [--crm biller.toml]
    saml-idp faults [--format text|json|markdown]
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import click

from metadata.certs import certificate_facts
from metadata.console import run
from metadata.crm import CRMRecord, load_crm
from metadata.keys import KeyFolder

from . import create_app
from .cast import apply_crm
from .errors import IdPError
from .faults import CATALOGUE, catalogue_markdown
from .pages import metadata_document
from .settings import Settings, Vendor, load_settings
from .state import IdPState
from .vendors import idp_entity_id

config_option = click.option(
    "--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Settings file (TOML or JSON); default: $IDP_CONFIG, else built-in defaults.",
)


crm_option = click.option(
    "--crm", "crm", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Play this biller's IdP: one persona per login type of the CRM record (plus near-miss personas), "
         "its SP registered, its IdP entity ID and vendor. Default: $IDP_CRM.",
)
vendor_option = click.option(
    "--vendor", type=click.Choice(get_args(Vendor)), default=None,
    help="Shape responses like this IdP product (overrides the settings and the CRM record).",
)


def _settings(config: Path | None, crm: Path | None = None, vendor: str | None = None) -> Settings:
    path = config or (Path(os.environ["IDP_CONFIG"]) if os.environ.get("IDP_CONFIG") else None)
    settings = load_settings(path)
    record = _record(crm)
    if record is not None:
        settings = apply_crm(settings, record)
    if vendor is not None:
        settings = settings.model_copy(update={"server": settings.server.model_copy(update={"vendor": vendor})})
    return settings


def _record(crm: Path | None) -> CRMRecord | None:
    path = crm or (Path(os.environ["IDP_CRM"]) if os.environ.get("IDP_CRM") else None)
    return load_crm(path) if path else None


def _base(config: Path | None) -> Path | None:
    """Where relative paths in the settings are read from: the settings file's folder."""
    path = config or (Path(os.environ["IDP_CONFIG"]) if os.environ.get("IDP_CONFIG") else None)
    return path.resolve().parent if path else None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """A test identity provider for SP-initiated SAML logins."""


@cli.command()
@config_option
@crm_option
@vendor_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; also the published base URL's host (0.0.0.0: 127.0.0.1).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on; also the published base URL's port.")
def serve(config: Path | None, crm: Path | None, vendor: str | None, host: str, port: int) -> None:
    """Run the IdP (development server; for production: gunicorn 'idp:create_app()').

    The IdP publishes http://HOST:PORT as its base URL (its SSO URL, and the Destination it
    accepts), unless base_url is in the settings file or IDP_BASE_URL is set: those win."""
    settings = _published(_settings(config, crm, vendor), host, port)
    if host not in ("127.0.0.1", "localhost", "::1") and settings.server.dev_mode:
        click.echo("note: dev_mode allows http ACS URLs on localhost only; set dev_mode = false for real use",
                   err=True)
    app = create_app(settings, base=_base(config), crm=_record(crm))
    count = len(settings.personas)
    click.echo(f"test IdP {idp_entity_id(settings.server)} ({settings.server.vendor} profile, "
               f"{count} persona{'' if count == 1 else 's'}) on http://{_url_host(host)}:{port}/, "
               f"published as {settings.server.base_url} (metadata at /metadata)", err=True)
    app.run(host=host, port=port, threaded=True)


def _published(settings: Settings, host: str, port: int) -> Settings:
    """`settings` whose base URL is where `serve` listens, ``http://<host>:<port>``, unless a
    base URL was given (``base_url`` in the settings file, or ``IDP_BASE_URL``): the SSO URL in
    the metadata, and the Destination the IdP accepts, then name the port it really serves on.
    A wildcard host (0.0.0.0, ::) is published as the loopback address of its family."""
    server = settings.server
    if "base_url" in server.model_fields_set:
        return settings
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    base_url = f"http://{_url_host(shown)}:{port}"
    return settings.model_copy(update={"server": server.model_copy(update={"base_url": base_url})})


def _url_host(host: str) -> str:
    """`host` as written in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@cli.command()
@config_option
@crm_option
@vendor_option
def metadata(config: Path | None, crm: Path | None, vendor: str | None) -> None:
    """Print the IdP's metadata XML."""
    app = create_app(_settings(config, crm, vendor), base=_base(config), crm=_record(crm))
    state: IdPState = app.extensions["saml_idp"]
    sys.stdout.write(metadata_document(state).decode())


@cli.command()
@config_option
@click.option("--rotate", is_flag=True, help="Add a new signing key; metadata keeps the old certificate too.")
def keygen(config: Path | None, rotate: bool) -> None:
    """Create the signing key if there is none (never overwritten), or rotate it."""
    settings = _settings(config)
    folder = KeyFolder((_base(config) or Path.cwd()) / settings.server.key_folder)
    name = f"SAML Preflight test IdP ({idp_entity_id(settings.server)})"[:64]
    now = datetime.now(UTC)
    pair = (folder.rotate(name, settings.server.key_kind, now=now) if rotate
            else folder.ensure(name, settings.server.key_kind, now=now))
    facts = certificate_facts(pair.cert_der)
    click.echo(f"current signing key: {facts.key_type} {facts.key_bits}, certificate SHA-256 {facts.sha256}, "
               f"valid until {facts.not_after:%Y-%m-%d}; {len(folder.all_certificates())} certificate(s) published")


@cli.command()
@config_option
@crm_option
def users(config: Path | None, crm: Path | None) -> None:
    """List the personas."""
    for persona in _settings(config, crm).personas:
        notes = ("  (auto login)" if persona.auto_login else "") + (
            f"  (faults: {', '.join(persona.faults)})" if persona.faults else "")
        claims = ", ".join(f"{k}={v}" for k, v in persona.claims.items())
        click.echo(f"{persona.id:<22} {persona.nameid:<34} {claims}{notes}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def faults(fmt: str) -> None:
    """List the fault catalogue: what each fault breaks, what a correct SP must do, and the
    validator code that reports it. Choose faults per persona (faults = [...]), on the login page,
    or with POST /api/v1/faults."""
    if fmt == "json":
        click.echo(json.dumps([f.as_dict() for f in CATALOGUE.values()], indent=2))
    elif fmt == "markdown":
        click.echo(catalogue_markdown(), nl=False)
    else:
        group = None
        for f in CATALOGUE.values():
            if f.group != group:
                group = f.group
                click.echo(f"\n{group}")
            click.echo(f"  {f.id:<36} {f.code}  {f.title}")
            click.echo(f"  {'':<36}         SP must: {f.sp_must}")


def main() -> None:
    run(cli, IdPError)


if __name__ == "__main__":
    main()
