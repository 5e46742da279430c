"""``/sps``: the page where a person registers, replaces and deletes the SPs the IdP answers.

Paste or upload an SP's metadata (or give its https URL), choose the options, *Check* (the findings,
the SP's entity ID and ACS URLs) and *Register*. An entity ID registered already asks *Replace* or
*Cancel*: nothing is replaced silently. Below: every SP (a runtime one with its *Delete* button), and
the last changes. A plain HTML form, no script.

Cross-site posts are refused twice over. :func:`idp.sso.same_site_post` refuses what the browser says
comes from another site (``Sec-Fetch-Site``, ``Origin``). And every form carries a token bound to a
random cookie of this page (``SameSite=Strict``, ``HttpOnly``; named ``__Host-…`` on an https IdP, so
that a sibling host cannot plant one it knows): the token is an HMAC of that cookie under the IdP's
secret (:func:`idp.csrf.csrf_token`), which another site can neither read nor compute, and which needs
no IdP session (a person may never have signed in at the IdP). When the
IdP has an api_token, registering, replacing and deleting also ask for it, as the API does: otherwise
this page would be the way round it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from . import registrations
from .api import token_matches
from .csrf import FIELD, csrf_token, csrf_valid
from .registrations import Application, Checked, Refused, text_field
from .registry import RegisteredSP
from .sso import render_page, same_site_post
from .state import IdPState, secret_token, state

blueprint = Blueprint("sps_page", __name__)

COOKIE = "idp_sps_csrf"
SECURE_COOKIE = "__Host-idp_sps_csrf"
"""Its name on an https IdP: the prefix makes browsers refuse it from a sibling host (cookie tossing)."""
PURPOSE = "sps"
SIGN = ("assertion", "response", "both", "none")
NAME_FORMATS = ("unspecified", "basic", "uri")


@dataclass
class View:
    """What one answer of the page shows besides the lists."""

    form: dict[str, str] = field(default_factory=dict)
    """The registration form's values, shown again."""
    message: str | None = None
    failed: bool = False
    checked: Checked | None = None
    confirm: str | None = None
    """The entity ID of the SP an unconfirmed registration would replace: the page asks Replace or Cancel."""
    current: RegisteredSP | None = None
    """That SP, when its stored value still reads."""
    status: int = 200


@blueprint.get("/sps")
def page() -> Response:
    return _render(state(), View())


@blueprint.post("/sps")
def post() -> Response:
    idp = state()
    try:
        form = request.form
        action = form.get("action", "")
    except RequestEntityTooLarge:
        return _render(idp, View(message="The form is larger than the IdP accepts (256 KiB): give the metadata's "
                                         "https URL instead of pasting or uploading it.", failed=True, status=413))
    if not same_site_post() or not csrf_valid(idp, request.cookies.get(_cookie(idp), ""), form.get(FIELD, ""), PURPOSE):
        return _render(idp, View(message="Refused: this form was not posted from this page. Reload the page and try "
                                         "again.", failed=True, status=403))
    if action == "cancel":
        return _render(idp, View(message="Cancelled: nothing was changed."))
    if action in ("register", "replace", "delete") and not _token_ok(idp):
        return _render(idp, View(form=_shown(), message="The API token is missing or wrong: this IdP asks for it "
                                 "to change its SPs.", failed=True, status=403))
    try:
        if action == "delete":
            return _delete(idp)
        if action in ("check", "register", "replace"):
            return _check_or_register(idp, action)
    except Refused as exc:
        return _render(idp, View(form=_shown(), message=exc.detail, failed=True, status=exc.status))
    return _render(idp, View(form=_shown(), message=f"Unknown action {action!r}.", failed=True, status=400))


def _token_ok(idp: IdPState) -> bool:
    return token_matches(idp, request.form.get("api_token", ""))


def _delete(idp: IdPState) -> Response:
    entity_id = text_field("entity_id", request.form.get("entity_id")) or ""
    by = text_field("by", request.form.get("by"), registrations.MAX_BY)
    registrations.delete(idp, entity_id, via="page", by=by, address=request.remote_addr)
    return _render(idp, View(message=f"Deleted {entity_id}."))


def _check_or_register(idp: IdPState, action: str) -> Response:
    application = _application(action == "replace")
    checked = registrations.check(idp, application)
    view = View(form=_shown(checked), checked=checked)
    if action == "check":
        view.message = ("No error: this SP can be registered." if not checked.errors else
                        "This SP cannot be registered until the errors below are fixed.")
        view.failed = bool(checked.errors)
        return _render(idp, view)
    try:
        sp, replaced = registrations.store(idp, application, checked, via="page", address=request.remote_addr)
    except Refused as exc:
        view.message, view.failed, view.status = exc.detail, True, exc.status
        if exc.exists is not None:  # asked, not refused: Replace or Cancel
            view.confirm, view.current, view.failed = exc.exists, idp.registry.get(exc.exists), False
            view.message = f"An SP {exc.exists} is registered already. Replace it with this metadata?"
        return _render(idp, view)
    view.message = f"{'Replaced' if replaced else 'Registered'} {sp.entity_id}."
    return _render(idp, view)


def _application(replace: bool) -> Application:
    """The registration the form asks for; :class:`Refused` naming the field at fault."""
    form = request.form
    upload = request.files.get("metadata_file")
    data = upload.read(registrations.PASTED_MAX + 1) if upload is not None and upload.filename else b""
    pasted = form.get("metadata", "")
    url = text_field("metadata_url", form.get("metadata_url"))
    given = [what for what, present in (("pasted", pasted.strip()), ("uploaded", data), ("URL", url)) if present]
    if len(given) != 1:
        raise Refused(400, "Give the SP's metadata one way: paste it, upload it, or give its https URL"
                      + (f" (not {' and '.join(given)})" if given else "."))
    raw: dict[str, object] = {k: form[k] for k in ("sign", "name_format", "nameid_format") if form.get(k)}
    if form.get("encrypt"):
        raw["encrypt"] = True
    return Application(metadata=data or (pasted.encode() if pasted.strip() else None), metadata_url=url,
                       entity_id=text_field("entity_id", form.get("entity_id")),
                       options=registrations.options_from(raw),
                       by=text_field("by", form.get("by"), registrations.MAX_BY), replace=replace)


def _shown(checked: Checked | None = None) -> dict[str, str]:
    """The form's values to show again. After a check, the metadata is the SP entity as it would be
    stored, so a Replace posts exactly what was checked (an upload is not posted again by a browser)."""
    form = request.form
    shown = {k: form.get(k, "") for k in ("metadata", "metadata_url", "entity_id", "sign", "name_format",
                                           "nameid_format", "by", "encrypt")}
    if checked is not None and checked.entity_xml is not None and not shown["metadata_url"]:
        shown["metadata"], shown["entity_id"] = checked.entity_xml, checked.entity.entity_id if checked.entity else ""
    return shown


def _cookie(idp: IdPState) -> str:
    return SECURE_COOKIE if idp.settings.server.base_url.startswith("https://") else COOKIE


def _render(idp: IdPState, view: View) -> Response:
    name = _cookie(idp)
    cookie = request.cookies.get(name) or secret_token()
    stored = [sp for sp in idp.registry if sp.stored]
    unreadable = sorted(set(idp.registry.stored_ids()) - {sp.entity_id for sp in stored})
    response = render_page(
        "sps.html", status=view.status, idp=idp, view=view, csrf=csrf_token(idp, cookie, PURPOSE), csrf_field=FIELD,
        token_required=bool(idp.settings.server.api_token), sps=list(idp.registry), unreadable=unreadable,
        changes=registrations.changes(idp), sign_choices=SIGN, name_formats=NAME_FORMATS)
    response.headers["Cache-Control"] = "no-store"
    if request.cookies.get(name) != cookie:
        # __Host- asks for path "/" (RFC 6265bis §4.1.3.2); over http (dev) the page's own path is enough.
        secure = name == SECURE_COOKIE
        response.set_cookie(name, cookie, httponly=True, samesite="Strict", path="/" if secure else "/sps",
                            secure=secure)
    return response
