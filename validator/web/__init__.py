"""The validator's web app (``saml-validate serve``): for now, only the live test SP.

Endpoints (see :mod:`validator.web.testsp`):

==============================  ===========================================================
``/test-login/<biller-id>``     GET: send an AuthnRequest for that CRM record to its IdP
``/test-sp/acs``                POST: the test SP's AssertionConsumerService (HTTP-POST)
``/test-sp/metadata``           GET: the test SP's metadata (``?biller=<id>`` for its entity ID)
``/test-logins/<id>``           GET: the result page of one test login
``/api/v1/test-logins/<id>``    GET: the same report as JSON (``saml-preflight/report/v1``)
==============================  ===========================================================

Every page carries the headers of SECURITY.md §6 (strict CSP, ``X-Frame-Options: DENY``,
``nosniff``); request bodies are capped at 256 KiB (SECURITY.md §1).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask, Response

    from metadata.keys import KeyPair
    from metadata.store import Store
    from validator.crm import CRMRecord

MAX_CONTENT_LENGTH = 256 * 1024
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
DEFAULT_STORE = "saml-validate-web.sqlite3"
"""Without a `store`: a SQLite file of this name in the working directory."""


def create_app(
    *,
    crm_folder: Path,
    base_url: str = "http://127.0.0.1:8081",
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    metadata_loader: Callable[[CRMRecord], bytes] | None = None,
    signing_key: KeyPair | None = None,
) -> Flask:
    """The validator's web app.

    `crm_folder` holds one ``<biller-id>.toml`` CRM record per biller. `base_url` is where the
    app is reachable from a browser (the test SP's ACS is ``<base_url>/test-sp/acs``).
    `metadata_loader` returns a record's IdP metadata (default: the safe fetcher on
    ``idp.metadata_url``). With `signing_key`, AuthnRequests are signed (HTTP-Redirect
    signature, RSA-SHA256) and the test SP's metadata publishes the certificate.
    """
    from flask import Flask

    from metadata.store import open_store

    from . import testsp

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH)
    app.extensions["saml_validator_web"] = testsp.WebState(
        crm_folder=Path(crm_folder),
        base_url=base_url.rstrip("/"),
        store=store if store is not None else open_store(None, Path.cwd() / DEFAULT_STORE),
        clock=clock or testsp.utc_now,
        metadata_loader=metadata_loader or testsp.fetch_idp_metadata,
        signing_key=signing_key,
    )
    app.register_blueprint(testsp.blueprint)
    app.register_error_handler(404, testsp.not_found)
    app.register_error_handler(405, testsp.method_not_allowed)
    app.register_error_handler(413, testsp.too_large)
    app.after_request(security_headers)
    return app


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
