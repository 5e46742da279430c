"""The test IdP's settings: ``idp.toml`` (or JSON), strict, with ``IDP_*`` environment
overrides for containers, and defaults that start a working IdP with two demo personas.

Every key is documented where it is declared. An unknown key is an error naming its path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from metadata.config import StrictModel, load_config, validate_config

from .assertion import SignWhat
from .errors import FaultError, SettingsError
from .faults import conflict, fault

Signing = SignWhat
Vendor = Literal["generic", "okta", "entra", "adfs", "google", "pingone", "pingfederate", "ping", "onelogin",
                 "keycloak", "shibboleth", "jumpcloud", "auth0"]
"""``ping`` is an alias of ``pingone`` (what it imitated before PingFederate had a profile)."""
NameFormat = Literal["unspecified", "basic", "uri"]


class Server(StrictModel):
    base_url: str = "http://127.0.0.1:8080"
    """Where SPs reach the IdP; endpoints and the default entity ID derive from it."""
    entity_id: str | None = None
    """The IdP's entity ID; default: the vendor profile's form, ``<base_url>/metadata`` for generic
    (:func:`idp.vendors.idp_entity_id`)."""
    vendor: Vendor = "generic"
    """Whose responses to imitate (:mod:`idp.vendors`): issuer form, claim names, what is signed,
    NameID format and attribute NameFormat, each shaped after that product's real responses."""
    key_folder: str = "var/idp/keys"
    """Where the signing key is generated on first start (mode 0600, never overwritten)."""
    key_kind: Literal["rsa-2048", "rsa-3072", "rsa-4096", "ec-p256"] = "rsa-2048"
    store: str | None = None
    """``sqlite:///path`` (default: ``var/idp/state.sqlite3``) or ``redis://host:port/db``."""
    dev_mode: bool = True
    """Allow http ACS URLs on localhost / 127.0.0.1 (never elsewhere)."""
    require_signed_requests: bool = False
    """Refuse unsigned AuthnRequests from every SP, not only those whose metadata asks for it."""
    sign_metadata: bool = False
    clock_skew: int = Field(default=120, ge=0, le=300)
    """Seconds of clock difference tolerated in IssueInstant checks (SECURITY.md §3: at most 300)."""
    session_lifetime: int = Field(default=8 * 3600, gt=0)
    assertion_lifetime: int | None = Field(default=None, gt=0, le=3600)
    """Seconds an assertion stays valid; default: the vendor profile's (5 min; Entra ID, AD FS and
    Auth0 1 h; OneLogin 3 min; Keycloak 1 min)."""
    secret_key: str | None = None
    """Flask's session key; default: generated and kept in the store."""
    api_token: str | None = None
    """When set, the arming calls (``POST /api/v1/next-login`` and ``/api/v1/faults``) require
    ``Authorization: Bearer <api_token>`` (scheme in any case, the token exactly): on an IdP shared
    by several people, arming a persona signs in whoever's browser asks next."""


class Persona(StrictModel):
    id: str
    """Chosen in the persona picker, or named by the automation API."""
    display_name: str = ""
    password: str | None = None
    """Allows the password form for this persona (test passwords only)."""
    nameid: str
    nameid_format: str | None = None
    """Default: what the SP asks for, else the SP's setting, else the vendor profile's."""
    auto_login: bool = False
    """Signs in as this persona without any form (for an SP's CI)."""
    claims: dict[str, str | list[str]] = Field(default_factory=dict, strict=False)
    """Claim name → value (a list for several values). Names are sent exactly as written."""
    faults: tuple[str, ...] = Field(default=(), strict=False)
    """Faults (``saml-idp faults``) applied to every response for this persona."""

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problem = conflict([fault(fault_id) for fault_id in value])  # FaultError names the valid ones
        if problem:
            raise FaultError(problem)
        return value


class ServiceProvider(StrictModel):
    metadata: str | None = None
    """SP metadata: a file path or an https URL (fetched with the safe fetcher)."""
    entity_id: str | None = None
    """For an inline SP (no metadata): its entity ID."""
    acs: list[str] = Field(default_factory=list, strict=False)
    """For an inline SP: its HTTP-POST ACS URLs, the first being the default."""
    sign: Signing | None = None
    """What to sign; default: what the vendor profile signs."""
    nameid_format: str | None = None
    name_format: NameFormat | None = None
    """The attributes' NameFormat; default: the vendor profile's."""
    encrypt: bool = False
    """Encrypt the assertion (AES-256-GCM, RSA-OAEP) with the SP's encryption certificate."""


class Settings(StrictModel):
    server: Server = Server()
    personas: tuple[Persona, ...] = Field(default=(), strict=False)
    sps: tuple[ServiceProvider, ...] = Field(default=(), strict=False)


# Demo personas of a test IdP: their passwords are meant to be known.
DEMO_PERSONAS = (
    Persona(id="alice", display_name="Alice Customer", password="alice", nameid="alice@example.com",  # noqa: S106
            claims={"AccountNumber": "100200300", "Email": "alice@example.com", "LoginTypeId": "1"}),
    Persona(id="bob", display_name="Bob Property Manager", password="bob", nameid="bob@example.com",  # noqa: S106
            claims={"AccountNumber": "100200301", "Email": "bob@example.com", "LoginTypeId": "2"}),
)

# IDP_<NAME> overrides [server].<name>; values are parsed by the field's type.
_ENV_PREFIX = "IDP_"


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `path` (none: defaults), then ``IDP_*`` environment overrides."""
    settings = load_config(path, Settings, SettingsError) if path else Settings()
    overrides = _environment(environ if environ is not None else os.environ)
    if overrides:
        server = {**settings.server.model_dump(exclude_unset=True), **overrides}
        data = {**settings.model_dump(exclude_unset=True, exclude={"server"}), "server": server}
        settings = validate_config(data, "environment (IDP_*)", Settings, SettingsError)
    if not settings.personas:
        settings = settings.model_copy(update={"personas": DEMO_PERSONAS})
    return settings


def _environment(environ: Mapping[str, str]) -> dict[str, object]:
    fields = Server.model_fields
    found: dict[str, object] = {}
    for name, raw in environ.items():
        if not name.startswith(_ENV_PREFIX):
            continue
        key = name[len(_ENV_PREFIX):].lower()
        if key in ("config", "crm"):  # IDP_CONFIG and IDP_CRM name files, read by create_app
            continue
        if key not in fields:
            known = ", ".join(f"{_ENV_PREFIX}{k.upper()}" for k in fields)
            raise SettingsError("environment", [(name, f"unknown setting; known: {known}")])
        annotation = str(fields[key].annotation)
        if "bool" in annotation:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise SettingsError("environment", [(name, f"must be true or false, got {raw!r}")])
            found[key] = raw.lower() in ("1", "true", "yes")
        elif "int" in annotation:
            if not raw.strip().isdigit():
                raise SettingsError("environment", [(name, f"must be a whole number, got {raw!r}")])
            found[key] = int(raw)
        else:
            found[key] = raw
    return found
