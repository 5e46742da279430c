"""Cross-site request forgery: a signed double-submit token on every form that runs anything.

The token is a random nonce and its HMAC under a secret kept in the store, set in a
``SameSite=Strict`` cookie (``__Host-`` prefixed over https, so no sibling host can plant it)
and repeated in a hidden field. A POST is accepted only when both agree, the HMAC verifies (a
cookie planted by another site cannot be forged) and the browser, where it says, calls the
request same-origin. The JSON API needs no token: it accepts only ``application/json``, which a
cross-site form cannot send without a CORS preflight this app never answers. The test SP's ACS
is exempt by design: IdPs post to it from their own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from flask import Response, g, request

from .state import web

FIELD = "csrf"
_SECRET = ("web-config", "csrf-secret")


def cookie_name() -> str:
    return "__Host-saml_preflight_csrf" if request.is_secure else "saml_preflight_csrf"


def _secret() -> bytes:
    store = web().store
    store.add(*_SECRET, secrets.token_bytes(32))  # one secret for every worker, made once
    value = store.get(*_SECRET)
    assert value is not None
    return value


def _sign(nonce: str) -> str:
    return hmac.new(_secret(), nonce.encode(), hashlib.sha256).hexdigest()


def _valid(token: str) -> bool:
    nonce, _, mac = token.partition(".")
    return bool(nonce) and hmac.compare_digest(mac.encode(), _sign(nonce).encode())


def csrf_token() -> str:
    """The token for this browser's forms (made, and set as a cookie, when it has no valid one)."""
    current = request.cookies.get(cookie_name(), "")
    if not _valid(current):
        current = getattr(g, "new_csrf", None) or (nonce := secrets.token_urlsafe(18)) + "." + _sign(nonce)
        g.new_csrf = current
    return current


def set_cookie(response: Response) -> Response:
    new = getattr(g, "new_csrf", None)
    if new:
        response.set_cookie(cookie_name(), new, httponly=True, samesite="Strict", secure=request.is_secure, path="/")
    return response


@dataclass(frozen=True)
class Refusal:
    status: int
    """403, or 415 for an API call that is not ``application/json``."""
    reason: str


def refusal() -> Refusal | None:
    """Why this state-changing request is refused as possibly forged; None when it may go on."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return Refusal(403, "the form was posted from another site")
    if request.path.startswith("/api/"):
        if request.mimetype == "application/json":
            return None
        return Refusal(415, f"the API accepts only Content-Type: application/json, not {request.mimetype or 'none'}")
    cookie, field = request.cookies.get(cookie_name(), ""), request.form.get(FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), field.encode()) or not _valid(cookie):
        return Refusal(403, "the form's security token is missing or stale: reload the page and send it again")
    return None
