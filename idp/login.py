"""``/login``: sign in for a pending AuthnRequest, by persona picker or password form.

The pending request's token (unguessable, single-use) travels in the form; it is taken from
the store when the login succeeds, so one request yields at most one response.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from . import flow
from .faults import CATALOGUE, Fault, fault
from .registry import RegisteredSP
from .settings import Persona
from .sso import render_page, same_site_post, signed_in
from .state import IdPState, state

blueprint = Blueprint("login", __name__)


@blueprint.get("/login")
def login_form() -> Response:
    idp = state()
    token = request.args.get("request", "")
    pending = flow.peek_pending(idp, token)
    if pending is None:
        return render_page("expired.html", status=400)
    return _page(idp, token, pending)


def _page(idp: IdPState, token: str, pending: flow.Pending, *, status: int = 200, error: str | None = None) -> Response:
    sp = idp.registry.get(pending.sp)
    return render_page("login.html", status=status, token=token, pending=pending, personas=list(idp.personas.values()),
                       error=error, faults=fault_choices(idp, sp))


def fault_choices(idp: IdPState, sp: RegisteredSP | None) -> list[tuple[str, list[tuple[Fault, str | None]]]]:
    """The catalogue by group, each fault with the reason it cannot apply to this SP (or None)."""
    groups: dict[str, list[tuple[Fault, str | None]]] = {}
    for chosen in CATALOGUE.values():
        # Claims depend on the persona and are judged when one is picked.
        reason = flow.fault_problem(idp, sp, None, (chosen,)) if sp is not None else None
        groups.setdefault(chosen.group, []).append((chosen, reason))
    return list(groups.items())


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
        return _page(idp, token, pending, status=401, error="Unknown user or wrong password.")
    picked = request.form.get("fault", "")
    if picked and picked not in CATALOGUE:
        return _page(idp, token, pending, status=400, error=f"Unknown fault {picked!r}.")
    taken = flow.take_pending(idp, token)
    sp = idp.registry.get(pending.sp)
    if taken is None or sp is None:  # a second submit of the same form
        return render_page("expired.html", status=400)
    sid, session = flow.start_session(idp, persona)
    return signed_in(idp, sid, session, sp, taken, persona, picked=(fault(picked),) if picked else ())


def _authenticate(personas: dict[str, Persona]) -> Persona | None:
    chosen = request.form.get("persona")
    if chosen is not None:
        return personas.get(chosen)
    persona = personas.get(request.form.get("username", ""))
    password = request.form.get("password", "")
    if persona is None or persona.password is None:
        return None
    return persona if hmac.compare_digest(persona.password.encode(), password.encode()) else None
