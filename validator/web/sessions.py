"""Sessions: a random ID in a cookie, the principal it stands for in the store.

The cookie holds only a random ID (256 bits); a forged or tampered one finds nothing and means no
session. It is ``HttpOnly`` and ``SameSite=Lax`` always, ``Secure`` (and ``__Host-`` prefixed)
when the app's base URL is https. Signing in makes a new ID and forgets the old one (no
session fixation). A partner's session ends when its invite expires or is revoked, and a staff
session when its account is removed (or its email leaves the company IdP's allow-list): both are
read again on every request.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta

from flask import request
from werkzeug.wrappers import Response

from validator.auth.principal import Principal

from .state import TOKEN, web

SESSIONS_NS = "web-sessions"
STAFF_HOURS, PARTNER_HOURS = 12, 8


def cookie_name() -> str:
    return "__Host-saml_preflight_session" if web().secure_cookie else "saml_preflight_session"


def start_session(response: Response, principal: Principal, *, ends: datetime | None = None) -> None:
    """Sign `principal` in on `response`: a new session ID (the request's old one, if any, is
    forgotten), kept until `ends` or the kind's hours, whichever comes first."""
    state = web()
    now = state.clock()
    hours = STAFF_HOURS if principal.kind == "staff" else PARTNER_HOURS
    until = min(ends, now + timedelta(hours=hours)) if ends else now + timedelta(hours=hours)
    ttl = max(1, int((until - now).total_seconds()))
    old = request.cookies.get(cookie_name(), "")
    if TOKEN.fullmatch(old):
        state.store.delete(SESSIONS_NS, old)
    session_id = secrets.token_urlsafe(32)
    value = {"kind": principal.kind, "name": principal.name, "access": principal.access,
             "billers": None if principal.billers is None else sorted(principal.billers)}
    state.store.put(SESSIONS_NS, session_id, json.dumps(value).encode(), ttl=ttl)
    response.set_cookie(cookie_name(), session_id, max_age=ttl, httponly=True, secure=state.secure_cookie,
                        samesite="Lax", path="/")


def end_session(response: Response) -> None:
    session_id = request.cookies.get(cookie_name(), "")
    if TOKEN.fullmatch(session_id):
        web().store.delete(SESSIONS_NS, session_id)
    response.delete_cookie(cookie_name(), path="/", secure=web().secure_cookie, httponly=True, samesite="Lax")


def read_session() -> Principal | None:
    """The principal of the request's session cookie; None for no cookie, a forged or expired one,
    or a partner whose invite is no longer active."""
    session_id = request.cookies.get(cookie_name(), "")
    if not TOKEN.fullmatch(session_id):
        return None
    stored = web().store.get(SESSIONS_NS, session_id)
    if stored is None:
        return None
    value = json.loads(stored)
    billers = value["billers"]
    principal = Principal(value["kind"], value["name"], None if billers is None else frozenset(billers),
                          "write" if value["access"] == "write" else "read")
    still = _invite_active(principal.name) if principal.kind == "partner" else (
        _still_staff(principal.name) if principal.kind == "staff" else True)
    if not still:
        web().store.delete(SESSIONS_NS, session_id)
        return None
    return principal


def _still_staff(email: str) -> bool:
    """A staff session lasts only while its email is staff: a local account that still exists, or
    an email the company IdP's allow-list still names (a group claim is read at sign-in only: a
    session from it lasts until it ends, at most STAFF_HOURS)."""
    from validator.auth.staff import get_staff

    sso = web().staff_sso
    if get_staff(web().store, email) is not None:
        return True
    return sso is not None and (email.lower() in sso.emails or sso.group is not None)


def _invite_active(invite_id: str) -> bool:
    from validator.auth import invites

    invite = invites.get_invite(web().store, invite_id)
    return invite is not None and invites.invite_state(invite, web().clock()) == "active"
