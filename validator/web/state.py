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
from typing import TYPE_CHECKING

from flask import Response, current_app, render_template

from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.fetch import FetchPolicy
from metadata.keys import KeyPair
from metadata.store import Store

if TYPE_CHECKING:
    from .staff_sso import StaffSSO

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
    dev_mode: bool = False
    """Local development mode (``saml-validate serve --dev``): http and loopback URLs are allowed
    for metadata and SSO URLs, every page says so, and only loopback clients are served."""
    sign_in_required: bool = False
    """A staff account or a company IdP is configured: every request has a principal of its own
    (:mod:`validator.web.access`). Without one the app is in local mode: it serves loopback
    clients only, each as its operator, and every page says so."""
    staff_sso: StaffSSO | None = None
    """The company IdP staff sign in with (:mod:`validator.web.staff_sso`), when configured."""

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/test-sp/acs"

    @property
    def secure_cookie(self) -> bool:
        return self.base_url.startswith("https://")


def utc_now() -> datetime:
    return datetime.now(UTC)


def fetch_idp_metadata(record: CRMRecord, policy: FetchPolicy | None = None) -> bytes:
    """The record's IdP metadata, from ``idp.metadata_url`` with the SSRF-safe fetcher under
    `policy` (default: SECURITY.md §4's)."""
    from metadata.fetch import fetch

    if not record.idp.metadata_url:
        raise MetadataUnavailable("the CRM record has no idp.metadata_url, so the IdP's certificates are unknown")
    return fetch(record.idp.metadata_url, policy or FetchPolicy()).body


DEV_BANNER = ("Local development mode: metadata and SSO URLs may be http and on this machine (loopback). "
              "Never use this mode for partners.")
"""What every page says in local development mode."""
DEV_BANNER_STYLE = ("margin:0;padding:8px 16px;background:#fff3cd;color:#6b4e00;border-bottom:2px solid #a05a00;"
                    "font:600 14px/1.4 system-ui,sans-serif;text-align:center")


def dev_banner_html() -> str:
    """The banner as HTML, for pages not drawn from the app's templates (reports, worksheets)."""
    return f'<p class="dev-banner" role="status" style="{DEV_BANNER_STYLE}">{DEV_BANNER}</p>'


LOOPBACK_NAMES = ("localhost",)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and any address of 127.0.0.0/8 or ``::1`` (brackets allowed)."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def dev_mode_from_environment(value: str | None) -> bool:
    """``VALIDATOR_DEV_MODE``: on for 1, true, yes or on (any case); off when unset or anything else."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def web() -> WebState:
    value: WebState = current_app.extensions["saml_validator_web"]
    return value


SIGN_IN_RECHECK_SECONDS = 1.0


def sign_in_required() -> bool:
    """Whether access control is on: configured so at start, or a staff account has been added
    since (``saml-validate staff add`` on the same store; looked for at most once a second, so
    the first account turns sign-in on without a restart). Once on, it stays on."""
    import time

    state = web()
    if state.sign_in_required:
        return True
    seen: dict[str, float] = current_app.extensions.setdefault("saml_validator_sign_in", {"at": -1e9, "on": 0.0})
    if not seen["on"] and time.monotonic() - seen["at"] >= SIGN_IN_RECHECK_SECONDS:
        from metadata.store import StoreUnavailable
        from validator.auth.staff import has_staff

        try:
            seen["on"] = float(has_staff(state.store))
        except StoreUnavailable:
            seen["on"] = 1.0  # fail closed: an app that cannot tell lets no one in as its operator
        seen["at"] = time.monotonic()
    return bool(seen["on"])


_BODY_TAG = re.compile(r"<body[>\s/]", re.IGNORECASE)


LOCAL_BANNER = ("No sign-in is configured: this app serves only this machine. To let staff and partners in, add a "
                "staff account (saml-validate staff add EMAIL) and restart it.")
"""What every page says in local mode (no staff account, no company IdP)."""


def local_banner_html() -> str:
    return f'<p class="local-banner" role="status" style="{DEV_BANNER_STYLE}">{LOCAL_BANNER}</p>'


def with_dev_banner(text: str) -> str:
    """`text`, a whole HTML page, with the banners of the app's mode just inside its ``<body>``:
    local development mode's, and local mode's (no sign-in); unchanged when neither applies or
    the page already draws them (the app's templates do)."""
    state = web()
    banners = "".join((dev_banner_html() if state.dev_mode and 'class="dev-banner"' not in text else "",
                       local_banner_html() if not sign_in_required() and 'class="local-banner"' not in text
                       else ""))
    if not banners:
        return text
    at = _after_body_tag(text)
    return text[:at] + banners + text[at:]


def _after_body_tag(text: str) -> int:
    """Where the page's first ``<body …>`` start tag ends (0 when it has none). The pattern has a
    fixed length, so the search is one pass over a page of any size; ``<bodyx`` is another tag."""
    found = _BODY_TAG.search(text)
    end = text.find(">", found.start()) if found else -1
    return end + 1 if end != -1 else 0


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
