"""Staff pages: partner invites, API tokens and the audit trail (issue 13).

=======================================  ===============================================
``/staff``                               GET: what staff can do here
``/staff/invites``                       GET: the invites; POST: create one (its link shown once)
``/staff/invites/<id>/revoke``           POST: revoke one (its sessions end at once)
``/staff/tokens``                        GET: the API tokens; POST: create one (shown once)
``/staff/tokens/<name>/revoke``          POST: revoke one
``/staff/audit``                         GET: the audit trail, filtered
=======================================  ===============================================
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from validator.auth import audit, invites, tokens

from .access import STAFF, allow, current
from .csrf import csrf_token
from .partners import BILLER_ID, list_partners
from .state import web, with_dev_banner
from .trail import note

blueprint = Blueprint("staff_pages", __name__, template_folder="templates")


def _html(template: str, status: int = 200, **context: object) -> Response:
    return Response(with_dev_banner(render_template(template, csrf=csrf_token(), **context)), status=status,
                    mimetype="text/html")


@blueprint.get("/staff")
@allow(STAFF)
def home() -> Response:
    return _html("staff.html")


def _invites_page(status: int = 200, *, error: str | None = None, created: str | None = None) -> Response:
    state = web()
    now = state.clock()
    listed = [(i, invites.invite_state(i, now)) for i in invites.list_invites(state.store)]
    billers = [p.biller_id for p in list_partners(state.crm_folder) if p.record is not None]
    return _html("staff_invites.html", status, invites=listed, billers=billers, error=error, created=created)


@blueprint.get("/staff/invites")
@allow(STAFF)
def invites_page() -> Response:
    return _invites_page()


@blueprint.post("/staff/invites")
@allow(STAFF)
def create_invite() -> Response:
    state = web()
    biller = (request.form.get("biller") or "").strip()
    known = {p.biller_id for p in list_partners(state.crm_folder) if p.record is not None}
    if biller not in known:
        return _invites_page(400, error="Choose a biller of the CRM folder.")
    days = request.form.get("days", "14").strip()
    email = (request.form.get("email") or "").strip() or None
    try:
        invite, token = invites.create_invite(state.store, biller, days=int(days) if days.isdigit() else 0,
                                              email=email, created_by=current().who, now=state.clock())
    except invites.InviteError as exc:
        return _invites_page(400, error=str(exc))
    note("invite-created", biller_id=biller, detail=f"invite {invite.id}, {days} days")
    return _invites_page(201, created=invites.invite_url(state.base_url, token))


@blueprint.post("/staff/invites/<invite_id>/revoke")
@allow(STAFF)
def revoke_invite(invite_id: str) -> Response:
    state = web()
    invite = invites.get_invite(state.store, invite_id)
    if invite is None or not invites.revoke_invite(state.store, invite_id, by=current().who, now=state.clock()):
        return _invites_page(404, error="There is no active invite with this ID.")
    note("invite-revoked", biller_id=invite.biller_id, detail=f"invite {invite_id}")
    return _invites_page()


def _tokens_page(status: int = 200, *, error: str | None = None, created: str | None = None) -> Response:
    return _html("staff_tokens.html", status, tokens=tokens.list_tokens(web().store), error=error, created=created)


@blueprint.get("/staff/tokens")
@allow(STAFF)
def tokens_page() -> Response:
    return _tokens_page()


@blueprint.post("/staff/tokens")
@allow(STAFF)
def create_token() -> Response:
    state = web()
    name = (request.form.get("name") or "").strip()
    scope = (request.form.get("billers") or "").strip()
    access = request.form.get("access", "read")
    billers = None if scope == "all" else frozenset(b.strip() for b in scope.split(",") if b.strip())
    if billers is not None and (not billers or not all(BILLER_ID.fullmatch(b) for b in billers)):
        return _tokens_page(400, error="Billers: 'all', or biller IDs separated by commas.")
    if access not in ("read", "write"):
        return _tokens_page(400, error="Access: read or write.")
    try:
        token, secret = tokens.create_token(state.store, name, billers=billers, access=access,  # type: ignore[arg-type]
                                            created_by=current().who, now=state.clock())
    except tokens.TokenError as exc:
        return _tokens_page(400, error=str(exc))
    note("token-created", detail=f"token {token.name}: {scope}, {access}")
    return _tokens_page(201, created=secret)


@blueprint.post("/staff/tokens/<name>/revoke")
@allow(STAFF)
def revoke_token(name: str) -> Response:
    state = web()
    if not tokens.revoke_token(state.store, name, now=state.clock()):
        return _tokens_page(404, error="There is no token of this name.")
    note("token-revoked", detail=f"token {name}")
    return _tokens_page()


@blueprint.get("/staff/audit")
@allow(STAFF)
def audit_page() -> Response:
    filters = _audit_filters()
    found = audit.events(web().store, now=web().clock(), **filters)  # type: ignore[arg-type]
    return _html("staff_audit.html", events=found, filters=filters, actions=audit.ACTIONS)


def _audit_filters() -> dict[str, str | None]:
    """The trail's filters from the query: biller, action, who (each exact; empty means any)."""
    return {key: (request.args.get(key) or "").strip() or None for key in ("biller_id", "action", "who")}
