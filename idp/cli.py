"""`saml-idp`: run the test IdP and manage its keys and personas.

    saml-idp serve [--config idp.toml] [--host 127.0.0.1] [--port 8080]
    saml-idp metadata [--config idp.toml]
    saml-idp keygen [--config idp.toml] [--rotate]
    saml-idp users [--config idp.toml]
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from . import IdPError
from .settings import Settings, load_settings

config_option = click.option(
    "--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Settings file (TOML or JSON); default: $IDP_CONFIG, else built-in defaults.",
)


def _settings(config: Path | None) -> Settings:
    import os

    path = config or (Path(os.environ["IDP_CONFIG"]) if os.environ.get("IDP_CONFIG") else None)
    return load_settings(path)


def _base(config: Path | None) -> Path | None:
    """Where relative paths in the settings are read from: the settings file's folder."""
    import os

    path = config or (Path(os.environ["IDP_CONFIG"]) if os.environ.get("IDP_CONFIG") else None)
    return path.resolve().parent if path else None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """A test identity provider for SP-initiated SAML logins."""


@cli.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
def serve(config: Path | None, host: str, port: int) -> None:
    """Run the IdP (development server; for production: gunicorn 'idp:create_app()')."""
    from . import create_app

    settings = _settings(config)
    if host not in ("127.0.0.1", "localhost", "::1") and settings.server.dev_mode:
        click.echo("note: dev_mode allows http ACS URLs on localhost only; set dev_mode = false for real use",
                   err=True)
    app = create_app(settings, base=_base(config))
    click.echo(f"test IdP {settings.server.idp_entity_id} on http://{host}:{port}/ (metadata at /metadata)",
               err=True)
    app.run(host=host, port=port, threaded=True)


@cli.command()
@config_option
def metadata(config: Path | None) -> None:
    """Print the IdP's metadata XML."""
    from . import create_app
    from .pages import metadata_document
    from .state import IdPState

    app = create_app(_settings(config), base=_base(config))
    state: IdPState = app.extensions["saml_idp"]
    sys.stdout.write(metadata_document(state).decode())


@cli.command()
@config_option
@click.option("--rotate", is_flag=True, help="Add a new signing key; metadata keeps the old certificate too.")
def keygen(config: Path | None, rotate: bool) -> None:
    """Create the signing key if there is none (never overwritten), or rotate it."""
    from metadata.certs import certificate_facts
    from metadata.keys import KeyFolder

    settings = _settings(config)
    folder = KeyFolder((_base(config) or Path.cwd()) / settings.server.key_folder)
    name = f"SAML Preflight test IdP ({settings.server.idp_entity_id})"[:64]
    now = datetime.now(UTC)
    pair = (folder.rotate(name, settings.server.key_kind, now=now) if rotate
            else folder.ensure(name, settings.server.key_kind, now=now))
    facts = certificate_facts(pair.cert_der)
    click.echo(f"current signing key: {facts.key_type} {facts.key_bits}, certificate SHA-256 {facts.sha256}, "
               f"valid until {facts.not_after:%Y-%m-%d}; {len(folder.all_certificates())} certificate(s) published")


@cli.command()
@config_option
def users(config: Path | None) -> None:
    """List the personas."""
    for persona in _settings(config).personas:
        auto = "  (auto login)" if persona.auto_login else ""
        claims = ", ".join(f"{k}={v}" for k, v in persona.claims.items())
        click.echo(f"{persona.id:<12} {persona.nameid:<28} {claims}{auto}")


def main() -> None:
    from validator.cli import run

    run(cli, IdPError)


if __name__ == "__main__":
    main()
