"""Cross-site request forgery: a double-submit token on every form that changes or runs anything.

The token is a random value in a ``SameSite=Strict`` cookie, repeated in a hidden field; a POST
is accepted only when both agree and the browser does not call it cross-site. The JSON API
needs no token: it accepts only ``application/json``, which a cross-site form cannot send
without a CORS preflight this app never answers. The test SP's ACS is exempt by design:
IdPs post to it from their own origin.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Response, g, request

COOKIE = "saml_preflight_csrf"
FIELD = "csrf"


def csrf_token() -> str:
    """The token for this browser's forms (made, and set as a cookie, on first use)."""
    current = request.cookies.get(COOKIE, "")
    if len(current) < 32:
        current = getattr(g, "new_csrf", None) or secrets.token_urlsafe(32)
        g.new_csrf = current
    return current


def set_cookie(response: Response) -> Response:
    new = getattr(g, "new_csrf", None)
    if new:
        response.set_cookie(COOKIE, new, httponly=True, samesite="Strict", secure=request.is_secure, path="/")
    return response


def refusal() -> str | None:
    """Why this state-changing request is refused as possibly forged; None when it may go on."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "same-site", "none"):
        return "the form was posted from another site"
    if request.path.startswith("/api/"):
        return None if request.mimetype == "application/json" else "the API accepts only application/json"
    cookie, field = request.cookies.get(COOKIE, ""), request.form.get(FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), field.encode()):
        return "the form's security token is missing or stale: reload the page and send it again"
    return None
