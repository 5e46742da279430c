"""``/login``: sign in for a pending AuthnRequest, by persona picker or password form.

The pending request's token (unguessable, single-use) travels in the form; it is taken from
the store when the login succeeds, so one request yields at most one response.

``/login?request=…&edit=<persona>`` shows that persona's claims, NameID and NameID format as a
plain form (no script): what is changed there goes into that one response only
(:mod:`idp.edits`), and the persona in the settings stays as it is. A value the form refuses is
shown again with the field named, everything typed kept.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from flask import Blueprint, Response, request

from . import flow
from .edits import NAMEID_FORMATS, VALUES_LIMIT, EditError, Edits, edits_from_form
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
    editing = idp.personas.get(request.args.get("edit", ""))
    if editing is not None:
        return _edit_page(idp, token, pending, editing, _persona_rows(editing), editing.nameid)
    return _page(idp, token, pending)


BLANK_ROWS = 3
"""Empty claim rows under the persona's, to add claims without a script ("More rows" adds more)."""


def _persona_rows(persona: Persona) -> list[tuple[str, str]]:
    return [(name, value if isinstance(value, str) else "\n".join(value)) for name, value in persona.claims.items()]


def _edit_page(idp: IdPState, token: str, pending: flow.Pending, persona: Persona, rows: list[tuple[str, str]],
               nameid: str, *, nameid_format: str = "", picked: str = "", status: int = 200,
               error: str | None = None, blank: int = BLANK_ROWS) -> Response:
    sp = idp.registry.get(pending.sp)
    return render_page("login_edit.html", status=status, token=token, pending=pending, persona=persona,
                       rows=[*rows, *([("", "")] * blank)], nameid=nameid, nameid_format=nameid_format,
                       formats=NAMEID_FORMATS, picked=picked, error=error, faults=fault_choices(idp, sp))


def _typed_rows() -> list[tuple[str, str]]:
    """The edit form's claim rows as typed (kept whole when the form is shown again), minus those
    marked for removal and the empty ones."""
    rows = []
    for key in request.form:
        if key.startswith("claim-name-"):
            n = key.removeprefix("claim-name-")
            name, values = request.form.get(key, ""), request.form.get(f"claim-values-{n}", "")
            if (name or values) and not request.form.get(f"claim-remove-{n}"):
                rows.append((name, values.replace("\r\n", "\n")))
    return rows


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
    if request.form.get("edit") == persona.id:
        return _edited_login(idp, token, pending, persona)
    picked = request.form.get("fault", "")
    if picked and picked not in CATALOGUE:
        return _page(idp, token, pending, status=400, error=f"Unknown fault {picked!r}.")
    return _complete(idp, token, pending, persona, picked=(fault(picked),) if picked else (), refused=lambda problem:
                     _page(idp, token, pending, status=400, error=f"Nothing was sent: {problem}."))


def _complete(idp: IdPState, token: str, pending: flow.Pending, persona: Persona, refused: Callable[[str], Response],
              *, picked: tuple[Fault, ...] = (), edits: Edits | None = None) -> Response:
    """Answer the pending request. What would stop the response is said before the request is taken
    (`refused(problem)` shows the form again with it): faults that cannot go with these claims, or an
    SP whose registration no longer has the ACS chosen at /sso. Then the request is taken (once: a
    second submit of the same form finds it gone)."""
    sp = idp.registry.get(pending.sp)
    if sp is None or not flow.answers_at(idp, sp, pending.acs):
        return render_page("sp_changed.html", status=409, pending=pending, gone=sp is None)
    edits = edits or Edits()
    problem = flow.fault_problem(idp, sp, edits.apply(persona), edits.faults_with(persona, picked))
    if problem is not None:
        return refused(problem)
    taken = flow.take_pending(idp, token)
    if taken is None:
        return render_page("expired.html", status=400)
    sid, session = flow.start_session(idp, persona)
    return signed_in(idp, sid, session, sp, taken, persona, picked=picked, edits=edits)


def _edited_login(idp: IdPState, token: str, pending: flow.Pending, persona: Persona) -> Response:
    """The edit form's submit: "More rows" shows it again with room for more claims; otherwise the
    edits are checked (a refused one is shown with its field, nothing typed lost) and sent."""
    form = request.form
    rows, nameid = _typed_rows(), form.get("nameid", persona.nameid)
    nameid_format, picked = form.get("nameid_format", ""), form.get("fault", "")
    if form.get("action") == "more-rows":  # the empty rows shown, and as many again
        shown = sum(1 for key in form if key.startswith("claim-name-"))
        return _edit_page(idp, token, pending, persona, rows, nameid, nameid_format=nameid_format, picked=picked,
                          blank=min(max(shown - len(rows), 0) + BLANK_ROWS, VALUES_LIMIT - len(rows)))
    try:
        edits = edits_from_form(persona, rows, nameid=nameid, nameid_format=nameid_format, picked=picked)
    except EditError as exc:
        return _edit_page(idp, token, pending, persona, rows, nameid, nameid_format=nameid_format, picked=picked,
                          status=400, error=f"Nothing was sent. {exc.field}: {exc.message}.")
    return _complete(idp, token, pending, persona, edits=edits, refused=lambda problem: _edit_page(
        idp, token, pending, persona, rows, nameid, nameid_format=nameid_format, picked=picked, status=400,
        error=f"Nothing was sent: {problem}."))


def _authenticate(personas: dict[str, Persona]) -> Persona | None:
    chosen = request.form.get("persona")
    if chosen is not None:
        return personas.get(chosen)
    persona = personas.get(request.form.get("username", ""))
    password = request.form.get("password", "")
    if persona is None or persona.password is None:
        return None
    return persona if hmac.compare_digest(persona.password.encode(), password.encode()) else None
