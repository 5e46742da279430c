"""``/login``: sign in for a pending AuthnRequest, by persona picker or password form.

The pending request's token (unguessable, single-use) travels in the form; it is taken from
the store when the login succeeds, so one request yields at most one response.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from . import flow
from .settings import Persona
from .sso import _signed_in, render_page, same_site_post
from .state import state

blueprint = Blueprint("login", __name__)


@blueprint.get("/login")
def login_form() -> Response:
    idp = state()
    token = request.args.get("request", "")
    pending = flow.peek_pending(idp, token)
    if pending is None:
        return render_page("expired.html", status=400)
    return render_page("login.html", token=token, pending=pending, personas=list(idp.personas.values()), error=None)


@blueprint.post("/login")
def login_submit() -> Response:
    idp = state()
    if not same_site_post():
        return render_page("expired.html", status=403)  # login CSRF: a form posted from another site
    token = request.form.get("request", "")
    pending = flow.peek_pending(idp, token)
    if pending is None:
        return render_page("expired.html", status=400)
    persona = _authenticate(idp.personas)
    if persona is None:
        return render_page("login.html", status=401, token=token, pending=pending,
                           personas=list(idp.personas.values()), error="Unknown user or wrong password.")
    taken = flow.take_pending(idp, token)
    sp = idp.registry.get(pending.sp)
    if taken is None or sp is None:  # a second submit of the same form
        return render_page("expired.html", status=400)
    sid, session = flow.start_session(idp, persona)
    return _signed_in(idp, sid, session, sp, taken, persona)


def _authenticate(personas: dict[str, Persona]) -> Persona | None:
    chosen = request.form.get("persona")
    if chosen is not None:
        return personas.get(chosen)
    persona = personas.get(request.form.get("username", ""))
    password = request.form.get("password", "")
    if persona is None or persona.password is None:
        return None
    return persona if hmac.compare_digest(persona.password.encode(), password.encode()) else None
