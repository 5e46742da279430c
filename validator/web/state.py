"""What every blueprint of the web app shares: the app's state (CRM folder, base URL, store, clock,
how a record's IdP metadata is loaded, the test SP's signing key), the partner a request names,
and the HTML pages it answers with, errors included.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flask import Response, current_app, render_template

from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.keys import KeyPair
from metadata.store import Store

MetadataLoader = Callable[[CRMRecord], bytes]

TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
"""The form of a browser token and of a test login's ID."""


class MetadataUnavailable(MetadataError):
    """The record names no metadata URL."""


@dataclass(frozen=True)
class WebState:
    crm_folder: Path
    base_url: str
    store: Store
    clock: Callable[[], datetime]
    metadata_loader: MetadataLoader
    signing_key: KeyPair | None = None

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/test-sp/acs"

    @property
    def secure_cookie(self) -> bool:
        return self.base_url.startswith("https://")


def utc_now() -> datetime:
    return datetime.now(UTC)


def fetch_idp_metadata(record: CRMRecord) -> bytes:
    """The record's IdP metadata, from ``idp.metadata_url`` with the SSRF-safe fetcher."""
    from metadata.fetch import fetch

    if not record.idp.metadata_url:
        raise MetadataUnavailable("the CRM record has no idp.metadata_url, so the IdP's certificates are unknown")
    return fetch(record.idp.metadata_url).body


def web() -> WebState:
    value: WebState = current_app.extensions["saml_validator_web"]
    return value


def page(template: str, status: int = 200, **context: object) -> Response:
    return Response(render_template(template, **context), status=status, mimetype="text/html")


def error_page(status: int, title: str, message: str) -> Response:
    return page("error.html", status, title=title, message=message, http_status=status)


class Refusal(Exception):
    """A request that cannot go on; the blueprint answers with its error page."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message

    def page(self) -> Response:
        return error_page(self.status, self.title, self.message)


def partner_record(biller_id: str) -> CRMRecord:
    """The CRM record of `biller_id`; :class:`Refusal` (404 or 400) saying why there is none."""
    from .partners import PartnerError, load_partner

    try:
        return load_partner(web().crm_folder, biller_id)
    except PartnerError as exc:
        raise Refusal(exc.status, exc.title, exc.message) from None
