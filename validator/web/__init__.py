"""The validator's web app (``saml-validate serve``): pages, the JSON API and the live test SP.

==================================  =========================================================
``/``                               GET: the forms (metadata, response, discovery), the partners
``/check/metadata``                 POST: check metadata (upload, paste or URL) → HTML report
``/check/response``                 POST: check a SAML response → HTML report
``/discover``                       POST: the discovery worksheet → HTML
``/partners/<biller-id>``           GET: a partner's page: trust, recent test logins, IdP metadata
``/partners/<biller-id>/metadata``  POST: upload or paste its IdP metadata (``/choose``, ``/<n>``)
``/partners/<biller-id>/report``    GET: the printable go-live report of a partner
``/partners/<biller-id>/discover``  GET: a partner's discovery worksheet
``/test-login/<biller-id>``         GET: send an AuthnRequest for that CRM record to its IdP
``/test-sp/acs``                    POST: the test SP's AssertionConsumerService (HTTP-POST)
``/test-sp/metadata``               GET: the test SP's metadata (``?biller=<id>`` for its entity ID)
``/test-logins/<id>``               GET: the result page of one test login
``/sign-in``, ``/sign-out``         staff sign-in (local accounts, :mod:`validator.web.signin`)
``/sign-in/sso[/acs|/metadata]``    staff sign-in with the company IdP (:mod:`validator.web.staff_sso`)
``/invite/<token>``                 a partner's link: a session for its one biller
``/staff[/invites|/tokens|/audit]`` staff: invites, API tokens, the audit trail
``/staff/records``, ``/staff/sweep`` staff: add or replace CRM records, run the sweep
``/api/v1/...``                     JSON: see ``/api/v1/openapi.json`` (:mod:`validator.web.api`)
==================================  =========================================================

Who may use each route is declared on its view and decided in one place,
:mod:`validator.web.access` (docs/security.md); without a staff account or company IdP the app is
in local mode and serves this machine only.

Every page carries the headers of SECURITY.md §6 (strict CSP, ``X-Frame-Options: DENY``,
``nosniff``); forms carry a CSRF token (:mod:`validator.web.csrf`). Request bodies are capped
at 256 KiB (SECURITY.md §1), except where metadata may be uploaded (5 MiB and the form). An
HTTP error is an HTML page, except under ``/api/``, where it is an RFC 9457 problem document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from validator.store_location import STORE_FILE

if TYPE_CHECKING:
    from flask import Flask, Response
    from werkzeug.exceptions import HTTPException

    from metadata.crm import CRMRecord
    from metadata.fetch import FetchPolicy
    from metadata.keys import KeyPair
    from metadata.store import Store

    from .staff_sso import StaffSSO

MAX_CONTENT_LENGTH = 256 * 1024
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
DEFAULT_STORE = STORE_FILE
"""Without a `store` or ``VALIDATOR_STORE``: a SQLite file of this name in the user's data folder
(:func:`validator.store_location.default_store_path`, shared with the command line)."""


def create_app(
    *,
    crm_folder: Path | None = None,
    base_url: str | None = None,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    metadata_loader: Callable[[CRMRecord], bytes] | None = None,
    signing_key: KeyPair | None = None,
    fetch_policy: FetchPolicy | None = None,
    dev_mode: bool | None = None,
    sign_in: bool | None = None,
    staff_sso: StaffSSO | None = None,
) -> Flask:
    """The validator's web app.

    `crm_folder` holds one ``<biller-id>.toml`` CRM record per biller. `base_url` is where the
    app is reachable from a browser (the test SP's ACS is ``<base_url>/test-sp/acs``). For
    ``gunicorn 'validator.web:create_app()'``, unset arguments come from the environment:
    ``VALIDATOR_CRM_FOLDER`` (default: the working directory), ``VALIDATOR_BASE_URL`` (default
    ``http://127.0.0.1:8081``) and ``VALIDATOR_STORE`` (``sqlite:///PATH`` or ``redis://…``).
    `metadata_loader` returns a record's IdP metadata (default: the safe fetcher on
    ``idp.metadata_url``). With `signing_key`, AuthnRequests are signed (HTTP-Redirect
    signature, RSA-SHA256) and the test SP's metadata publishes the certificate. `fetch_policy`
    governs partner URLs (metadata, the discovery probe); the default is SECURITY.md §4's.

    `dev_mode` (default: ``VALIDATOR_DEV_MODE``) is local development mode: metadata and SSO URLs
    may be http and loopback (:func:`metadata.fetch.local_development`), every page carries a
    banner saying so, and only loopback clients are served. It refuses (:class:`DevModeError`) a
    base URL whose host is not loopback.

    `sign_in` (default: whether the store holds a staff account, or `staff_sso` is given) turns
    access control on (:mod:`validator.web.access`): every route then admits only the principals
    its rule names. Without it the app is in local mode: it serves loopback clients only, each as
    its operator, with a banner saying there is no sign-in. `staff_sso` is the company IdP staff
    may sign in with (default: the ``VALIDATOR_STAFF_*`` settings, :mod:`validator.web.staff_sso`;
    a bad one is a :class:`ValueError` naming it). The app does not start if a route declares no
    access rule.
    """
    import logging
    import os

    from flask import Flask
    from werkzeug.exceptions import HTTPException

    from metadata.fetch import local_development
    from validator.store_location import open_web_store

    from . import access, api, csrf, pages, partner_pages, signin, staff_pages, staff_records, state, testsp
    from . import staff_sso as staff_sso_module

    if staff_sso is None:
        staff_sso = staff_sso_module.staff_sso_from_environment()
    dev = state.dev_mode_from_environment(os.environ.get(DEV_MODE_VARIABLE)) if dev_mode is None else dev_mode
    url = (base_url or os.environ.get("VALIDATOR_BASE_URL", "http://127.0.0.1:8081")).rstrip("/")
    if dev:
        refuse_public_dev_mode(url)
        fetch_policy = local_development(fetch_policy)
    app = Flask(__name__, static_folder=None)  # no static files: every route declares its access
    app.config.update(MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH)
    app.extensions["saml_validator_web"] = state.WebState(
        crm_folder=Path(crm_folder or os.environ.get("VALIDATOR_CRM_FOLDER", ".")),
        base_url=url,
        store=store if store is not None else open_web_store(None, created=logging.getLogger(__name__).warning),
        clock=clock or state.utc_now,
        metadata_loader=metadata_loader or partial(state.fetch_idp_metadata, policy=fetch_policy),
        signing_key=signing_key,
        dev_mode=dev,
    )
    chosen = app.extensions["saml_validator_web"]
    required = sign_in if sign_in is not None else (staff_sso is not None or _has_staff(chosen.store))
    app.extensions["saml_validator_web"] = replace(chosen, sign_in_required=required, staff_sso=staff_sso)
    if fetch_policy is not None:
        app.extensions[pages.FETCH_POLICY] = fetch_policy
    app.context_processor(lambda: {"dev_banner": state.DEV_BANNER if dev else None,
                                   "local_banner": None if state.sign_in_required() else state.LOCAL_BANNER,
                                   "dev_banner_style": state.DEV_BANNER_STYLE, "principal": access.current(),
                                   "csrf_for_sign_out": csrf.csrf_token})
    for blueprint in (pages.blueprint, partner_pages.blueprint, api.blueprint, testsp.blueprint, signin.blueprint,
                      staff_pages.blueprint, staff_records.blueprint, staff_sso_module.blueprint):
        app.register_blueprint(blueprint)
    access.check_declared(app)
    _prepare_schemas()
    app.register_error_handler(HTTPException, http_error)
    app.before_request(guard)
    app.after_request(csrf.set_cookie)
    app.after_request(security_headers)
    return app


def _prepare_schemas() -> None:
    """Schemas compiled before any request thread parses (:func:`metadata.schema.prepare`)."""
    from metadata.schema import prepare

    for kind in ("metadata", "protocol"):
        prepare(kind, 4)


def _has_staff(store: Store) -> bool:
    """Whether any staff account exists; True when the store cannot say (fail closed: an app that
    cannot tell must not let every client in as its operator)."""
    from metadata.store import StoreUnavailable
    from validator.auth import staff

    try:
        return staff.has_staff(store)
    except StoreUnavailable:
        return True


DEV_MODE_VARIABLE = "VALIDATOR_DEV_MODE"


class DevModeError(ValueError):
    """Local development mode asked for where others could reach the app."""


def refuse_public_dev_mode(url_or_host: str) -> None:
    """:class:`DevModeError` unless `url_or_host` (a base URL or a bind address) is loopback:
    127.0.0.0/8, ``::1`` or ``localhost``. Dev mode fetches from this machine's own services."""
    from urllib.parse import urlsplit

    from .state import is_loopback_host

    host = urlsplit(url_or_host).hostname if "://" in url_or_host else url_or_host
    if not host or not is_loopback_host(host):
        raise DevModeError(
            f"development mode (--dev, {DEV_MODE_VARIABLE}) only runs on a loopback address (127.0.0.1, ::1, "
            f"localhost), not {url_or_host!r}: it fetches http and loopback URLs, so it must not be reachable "
            "from other machines")


# Where metadata may be uploaded: the document (5 MiB), a CRM record and the other fields.
UPLOAD_LIMIT = 6 * 1024 * 1024
_UPLOADS = {"pages.check_metadata", "pages.check_response", "pages.discover", "api.metadata", "api.responses",
            "api.discover", "partner_pages.upload_metadata"}
_NOT_GUARDED = {"testsp.acs", "staff_sso.acs"}  # IdPs post there from their own origin, by design


def guard() -> Response | None:
    """Before any view: the app's mode (local development, no sign-in: loopback clients only), who
    is asking and whether the route's rule admits them (:mod:`validator.web.access`), per-route
    body limits, then CSRF for every state-changing request (SECURITY.md §1, §6)."""
    from flask import request

    from .api import is_api, problem
    from .csrf import refusal
    from .state import error_page

    refused_mode = _mode_refusal()
    if refused_mode is not None:
        return refused_mode
    if request.endpoint in _UPLOADS:
        request.max_content_length = UPLOAD_LIMIT
        request.max_form_memory_size = UPLOAD_LIMIT  # pasted metadata arrives as a form field
    api = is_api(request.path)
    refused_access = _access_refusal(api)
    if refused_access is not None:
        return refused_access
    limit = request.max_content_length
    if request.content_length is not None and limit is not None and request.content_length > limit:
        # Refused on the declared length, before the form parser spools any of it to disk.
        from werkzeug.exceptions import RequestEntityTooLarge

        raise RequestEntityTooLarge()
    if (request.method in ("GET", "HEAD", "OPTIONS") or request.endpoint in _NOT_GUARDED
            or request.routing_exception is not None):  # no such route or method: nothing runs
        return None
    refused = refusal()
    if refused is None:
        return None
    if api:
        return problem(f"refused: {refused.reason}", refused.status)
    return error_page(refused.status, "Request refused", f"The request was refused: {refused.reason}.")


def _access_refusal(api: bool) -> Response | None:
    """Who is asking (kept for the views), and the refusal when the route's rule does not admit them."""
    from flask import current_app, g, request

    from . import access

    g.principal = access.resolve_principal(api)
    if request.routing_exception is not None:  # no such route or method: the error handler answers
        return None
    rule = access.rule_of(current_app, request.endpoint)
    assert rule is not None  # check_declared refused to build an app with an undeclared route
    decision = access.decide(rule, g.principal, request.view_args or {})
    return None if decision == "allow" else access.refusal(decision, api, rule, request.view_args or {})


def _mode_refusal() -> Response | None:
    """A 403 for a client not on this machine when the app serves only this machine: in local
    development mode, and while no sign-in is configured."""
    from flask import request

    from .state import error_page, is_loopback_host, sign_in_required, web

    state = web()
    if is_loopback_host(request.remote_addr or ""):
        return None
    if state.dev_mode:
        return error_page(403, "Local development mode", "This validator runs in local development mode and "
                          "serves only this machine.")
    if not sign_in_required():
        return error_page(403, "No sign-in configured", "This validator has no sign-in configured yet, so it "
                          "serves only this machine.")
    return None


def http_error(exc: HTTPException) -> Response:
    """Every HTTP error (no such page, wrong method, too large, a failure of the app): a problem
    document under ``/api/``, a page elsewhere; a 405 keeps its ``Allow`` header."""
    from flask import request

    from .api import http_problem, is_api
    from .state import error_page

    limit = request.max_content_length or MAX_CONTENT_LENGTH
    if is_api(request.path):
        return http_problem(exc, limit)
    status = exc.code or 500
    if status == 404:
        return error_page(404, "Not found", "There is no page at this address.")
    if status == 405:
        page = error_page(405, "Method not allowed", f"{request.method} is not accepted at this address.")
        page.headers.update({k: v for k, v in exc.get_headers() if k.lower() == "allow"})
        return page
    if status == 413:
        return error_page(413, "Request too large", f"The request body is larger than {limit // 1024:,} KiB.")
    return error_page(status, exc.name, exc.description or exc.name)


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
