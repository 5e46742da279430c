"""Signing in and out: staff with a local account, partners through an invite link.

``GET|POST /sign-in``: a staff member's email and password (:func:`validator.auth.staff.sign_in`,
rate-limited per account and per address). Every refusal reads the same, whether the account
exists or not. ``GET /invite/<token>``: a partner's link; it starts a session for that one biller
until the invite expires or is revoked, and an unusable link says so without naming any biller.
Each is written to the audit trail.
"""

from __future__ import annotations

from urllib.parse import unquote

from flask import Blueprint, Response, redirect, render_template, request

from validator.auth import invites, staff

from .access import PUBLIC, allow, current, signed_in
from .csrf import csrf_token
from .sessions import end_session, start_session
from .state import error_page, web, with_dev_banner
from .trail import note

blueprint = Blueprint("signin", __name__, template_folder="templates")

REFUSED = ("The email or password is not right, or there were too many attempts. Try again, or wait 15 minutes "
           "if you tried many times.")
UNUSABLE_INVITE = ("This link cannot be used: it has expired, it was revoked, or it is not complete. Ask your "
                   "contact at the portal for a new one.")


def _page(status: int = 200, error: str | None = None) -> Response:
    return Response(with_dev_banner(render_template(
        "sign_in.html", csrf=csrf_token(), error=error, next=_next(), sso=web().staff_sso is not None)),
        status=status, mimetype="text/html")


def _next() -> str:
    """Where to go after signing in: a path of this app only (never another site)."""
    wanted = unquote(request.values.get("next", "/"))
    # Browsers drop tabs and newlines from a URL and read "\\" as "/": "/\t/evil.example" would
    # land on //evil.example. A path with any of them, or that starts "//", is not this app's.
    if any(ch < " " or ch in "\\\x7f" for ch in wanted) or not wanted.startswith("/") or wanted.startswith("//"):
        return "/"
    return wanted


@blueprint.get("/sign-in")
@allow(PUBLIC)
def sign_in_page() -> Response:
    return _page()


@blueprint.post("/sign-in")
@allow(PUBLIC)
def sign_in() -> Response:
    state = web()
    email = (request.form.get("email") or "").strip()[:320]
    account = staff.sign_in(state.store, email, request.form.get("password") or "",
                            address=request.remote_addr or "", now=state.clock())
    if account is None:
        note("sign-in-refused", who="anonymous", detail=f"staff sign-in refused for {email!r}")
        return _page(401, REFUSED)
    principal = staff.principal_for(account)
    note("sign-in", who=principal, detail="staff, local account")
    response = redirect(_next(), code=303)
    start_session(response, principal)  # a new session ID: none chosen before sign-in survives it
    return response  # type: ignore[return-value]


@blueprint.post("/sign-out")
@allow(signed_in())
def sign_out() -> Response:
    response = redirect("/sign-in", code=303)
    end_session(response)
    return response  # type: ignore[return-value]


@blueprint.get("/invite/<token>")
@allow(PUBLIC)
def open_invite(token: str) -> Response:
    state = web()
    invite = invites.open_invite(state.store, token, now=state.clock())
    if invite is None:
        return error_page(404, "This link cannot be used", UNUSABLE_INVITE)
    principal = invites.principal_for(invite)
    note("invite-used", who=principal, biller_id=invite.biller_id, detail=f"invite {invite.id} opened")
    response = redirect(f"/partners/{invite.biller_id}", code=303)
    from datetime import datetime

    start_session(response, principal, ends=datetime.fromisoformat(invite.expires_at))
    return response  # type: ignore[return-value]


__all__ = ["blueprint", "current"]
