"""The Flask test IdP: plays a partner's identity provider for SP-initiated SAML logins.

Endpoints (one blueprint per module):

=====================  =======================================================================
``/``                  index: the IdP's entity ID, metadata link, registered SPs, personas
``/metadata``          IdP metadata (IDPSSODescriptor, signing certificates, SSO, SLO)
``/sso``               SingleSignOnService, HTTP-Redirect (GET) and HTTP-POST (POST)
``/login``             persona picker and password form for a pending AuthnRequest; ``?edit=<persona>``:
                       its claims, NameID and format as a form, for that one response (:mod:`idp.edits`)
``/slo``               SingleLogoutService, HTTP-Redirect and HTTP-POST; unsigned requests ask first
``/slo/confirm``       POST: the person confirms an unsigned LogoutRequest (CSRF token)
``/unsolicited``       an IdP-initiated response, only so an SP can prove it rejects them
``/debug``             the last responses issued to this browser: the XML sent, the edits, a test case
``/api/v1/next-login`` POST: sign in as a persona at the next AuthnRequest (no form; for CI), with
                       claims, nameid, nameid_format and faults for that one response
``/api/v1/faults``     POST: break the next response with named faults; GET: the fault catalogue
``/api/v1/personas``   GET: the personas
``/api/v1/sps``        POST: register an SP from its metadata (or replace one); GET: every SP;
                       DELETE ``?entity_id=``: remove one registered at runtime (:mod:`idp.sps`)
``/sps``               page: check, register, replace and delete SPs, the last changes
``/api/v1/*`` errors   RFC 9457 problem documents (``application/problem+json``), never HTML
``/healthz``           liveness and store check
=====================  =======================================================================

The one root exception is :class:`idp.errors.IdPError`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from flask import Flask, Request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from metadata.crm import CRMRecord, load_crm
from metadata.store import Store, StoreUnavailable

from . import api, login, pages, slo, sps, sps_page, sso
from .cast import apply_crm
from .pages import security_headers, store_unavailable
from .problem import http_error
from .settings import Settings, load_settings
from .state import build_state, shared_secret

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    *,
    base: Path | None = None,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    new_id: Callable[[], str] | None = None,
    crm: CRMRecord | None = None,
) -> Flask:
    """The test IdP as a Flask app. Without `settings`: ``$IDP_CONFIG`` (a TOML file) or the
    defaults, with ``IDP_*`` overrides — a working IdP with two demo personas; ``$IDP_CRM``
    names a CRM record whose biller the IdP then plays (:func:`idp.cast.apply_crm`)."""
    config = os.environ.get("IDP_CONFIG")
    if settings is None:
        settings = load_settings(Path(config) if config else None)
        if crm is None and os.environ.get("IDP_CRM"):
            crm = load_crm(Path(os.environ["IDP_CRM"]))
            settings = apply_crm(settings, crm)
    # Relative paths in the settings (key folder, SP metadata files) are read from the
    # settings file's folder.
    root = base or (Path(config).resolve().parent if config else Path.cwd())
    idp_state = build_state(settings, base=root, store=store, clock=clock, new_id=new_id, crm=crm)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.server.secret_key or _session_secret(idp_state.store),
        MAX_CONTENT_LENGTH=256 * 1024,  # SECURITY.md §1: POST body
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.server.base_url.startswith("https://"),
    )
    app.extensions["saml_idp"] = idp_state
    app.session_interface = _NoFlaskSession()
    for module in (pages, sso, login, slo, api, sps, sps_page):
        app.register_blueprint(module.blueprint)
    app.register_error_handler(StoreUnavailable, store_unavailable)
    app.register_error_handler(HTTPException, http_error)
    app.after_request(security_headers)
    return app


class _NoFlaskSession(SecureCookieSessionInterface):
    """No IdP page uses Flask's signed cookie session (the IdP session is the ``idp_session``
    cookie, looked up in the store): none is opened, so no request pays for its serializer, and
    writing to ``flask.session`` fails loudly instead of setting a cookie nobody reads."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None


def _session_secret(store: Store) -> str:
    # One secret for every worker and restart: created once, kept in the store. No page uses
    # Flask's signed session (the IdP session is the idp_session cookie, looked up in the store),
    # so a worker that starts while the store is down boots with a key of its own and answers 503
    # until the store is back: failing to boot would make gunicorn stop every worker for good.
    try:
        return shared_secret(store).decode()
    except StoreUnavailable as exc:
        logging.getLogger("idp").warning("starting while the store is unavailable (%s); requests get 503 until "
                                         "it is back", exc)
        return secrets.token_hex(32)
