"""The live test SP: an SP-initiated login against a partner's IdP, judged against its CRM record.

``GET /test-login/<biller-id>`` sends an AuthnRequest (HTTP-Redirect) whose Issuer is the
record's ``sp.entity_id`` and whose ACS is ``<base_url>/test-sp/acs``. Before sending, the
record's SSO URL is compared with the metadata on record: a mismatch is kept as a result with
CRM002 and sends nothing, unless the user chose to go on (``?despite=CRM002``). The request ID
is kept in the store under a random token that is also set as a cookie: a response answering
it is accepted only from the browser that started the login, and only once (SECURITY.md §3).

``POST /test-sp/acs`` decodes and parses the response once (256 KiB at most, the parser's
limits), verifies it once with the biller's trust (:mod:`validator.web.partner_trust`) and runs
every response check once, the replay cache answering RSP023 during that run. A response with
an InResponseTo must answer a request this browser has pending; one without is unsolicited
(IdP-initiated) and is judged and kept all the same, with RSP018 (:mod:`validator.web.login_judge`).
The report is kept 24 hours as ``/test-logins/<id>`` (page) and ``/api/v1/test-logins/<id>``
(JSON, :mod:`validator.web.api`); every attempt is noted on the partner's page
(:mod:`validator.web.attempts`), a request unanswered after 10 minutes as "sent, no response".

The result page draws the login as a sequence (:mod:`validator.render.sequence`) with the
times the test SP saw: the AuthnRequest sent (the pending entry's ``started_at``), the
response received at the ACS, and the response judged. The user's time at the IdP is the
gap between the first two.

The test SP's ACS differs from the portal's (``sp.acs_url``), so the record is checked with
its ACS URL replaced by the test SP's: Destination and Recipient must name the ACS this SP
asked for. Both URLs are listed in the report's ``test_sp`` facts.

This module is the blueprint; what is sent is built by :mod:`validator.web.login_request`, what
is judged and kept by :mod:`validator.web.login_judge`, what is shown by
:mod:`validator.web.login_result` and :mod:`validator.web.claim_table`.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from flask import Blueprint, Response, redirect, request
from markupsafe import Markup

from metadata.bindings import BindingError, PostMessage, decode_post, encode_redirect
from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.fetch import FetchError
from metadata.saml import SAMLP
from metadata.store import StoreUnavailable
from metadata.urls import redact_url
from validator.checks.crm_match import SSO_URL
from validator.render.sequence import login_sequence

from . import attempts
from .access import PUBLIC, allow, biller_read, biller_write
from .claim_table import claim_rows
from .login_judge import SEEN_NS, judge, keep_answered, keep_stopped, keep_unsolicited, sso_url_problems
from .login_request import REQUEST_ID, PendingLogin, authn_request_xml, pending_login, sp_metadata_xml, sso_url
from .login_result import (
    RESULTS_NS,
    UNKNOWN_LOGIN,
    VIEWS_NS,
    LoginView,
    lifelines,
    login_steps,
    pretty_xml,
    read_report,
    result_biller,
)
from .partner_trust import NoMetadata, PartnerMetadata, partner_metadata, partner_trust
from .state import TOKEN, Refusal, WebState, error_page, page, partner_record, web
from .trail import note

blueprint = Blueprint("testsp", __name__, template_folder="templates")

COOKIE = "saml_preflight_test_login"
PENDING_NS, PENDING_TTL = "test-sp-requests", 15 * 60
"""An outstanding AuthnRequest (:class:`~validator.web.login_request.PendingLogin`); taken once by the ACS."""
BROWSERS_NS = "test-sp-browsers"
"""A browser token that started a test login in the last PENDING_TTL: the ACS parses no POST
from any other browser."""

NO_LOGIN = ("No test login of this browser is waiting for the request this response answers (its InResponseTo): "
            "none was started in this browser, it was already answered, or it expired after 15 minutes. Start "
            "again at /test-login/<biller-id>.")

__all__ = ["BROWSERS_NS", "COOKIE", "PENDING_NS", "SEEN_NS", "TOKEN", "blueprint", "web"]


# --- sending the AuthnRequest -------------------------------------------------------------


@blueprint.get("/test-login/<biller_id>")
@allow(biller_write())
def test_login(biller_id: str) -> Response:
    state = web()
    now = state.clock()
    try:
        record = partner_record(biller_id)
        found, problem = _metadata_on_record(record, state)
        destination = sso_url(record, found.data if found else None, allow_http=state.dev_mode, problem=problem)
        if found is None:
            partner_trust(record, state)  # a signing certificate that is no certificate: refused now, named
        if found is not None and record.idp.sso_url and request.args.get("despite") != SSO_URL.code:
            stopped = sso_url_problems(record, found, now)
            if stopped:
                return redirect(f"/test-logins/{keep_stopped(state, record, found, stopped, now)}",
                                code=303)  # type: ignore[return-value]
    except Refusal as refusal:
        return refusal.page()
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    return _send(state, record, destination, now)


def _send(state: WebState, record: CRMRecord, destination: str, now: datetime) -> Response:
    pending = pending_login(record.biller.id, now)
    xml = authn_request_xml(request_id=pending.request_id, issuer=record.sp.entity_id, acs_url=state.acs_url,
                            destination=destination, now=now)
    key = state.signing_key.key_pem if state.signing_key else None
    try:
        location = encode_redirect(xml, param="SAMLRequest", destination=destination, key_pem=key)
    except (BindingError, ValueError) as exc:
        return error_page(400, "The AuthnRequest cannot be sent", str(exc))
    # One browser token, one pending entry per request: logins started in two tabs each find
    # their own request again by the response's InResponseTo.
    existing = request.cookies.get(COOKIE, "")
    token = existing if TOKEN.fullmatch(existing) else secrets.token_urlsafe(32)
    try:
        state.store.put(PENDING_NS, f"{token}.{pending.request_id}", pending.json(), ttl=PENDING_TTL)
        state.store.put(BROWSERS_NS, token, b"1", ttl=PENDING_TTL)
        attempts.note_sent(state.store, record.biller.id, pending.request_id, now)
        note("test-login", biller_id=record.biller.id,
             detail=f"AuthnRequest {pending.request_id} sent to {redact_url(destination)}")
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    response = redirect(location, code=302)
    # The IdP POSTs the response back from another site: a SameSite=Lax cookie would not come
    # with that POST, so over https the cookie is SameSite=None (which needs Secure). Over
    # plain http (local use) browsers refuse None without Secure; Lax works when the IdP is
    # on the same site (e.g. 127.0.0.1 on another port).
    response.set_cookie(COOKIE, token, max_age=PENDING_TTL, httponly=True, secure=state.secure_cookie,
                        samesite="None" if state.secure_cookie else "Lax", path="/")
    return response  # type: ignore[return-value]


def _metadata_on_record(record: CRMRecord, state: WebState) -> tuple[PartnerMetadata | None, str]:
    """The biller's metadata document, or None and why there is none (the SSO URL may still be
    the record's; the trust's findings say the rest after the login)."""
    try:
        return partner_metadata(record, state), ""
    except NoMetadata as exc:
        return None, exc.reason
    except (FetchError, MetadataError, ValueError) as exc:
        return None, str(exc)


# --- receiving the response ---------------------------------------------------------------


@blueprint.post("/test-sp/acs")
@allow(PUBLIC)  # IdPs post here from their own origin; what arrives is judged, not trusted
def acs() -> Response:
    state = web()
    received = state.clock()
    try:
        message, pending = _answered_login(state)
        if pending is None:
            login_id = keep_unsolicited(state, message, received)
        else:
            record = partner_record(pending.biller_id)
            report, trust, inspection = judge(message.tree, record, pending, state)
            login_id = keep_answered(state, message, record, pending, report, trust, inspection, received)
    except Refusal as refusal:
        return refusal.page()
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    response = redirect(f"/test-logins/{login_id}", code=303)
    if pending is not None:
        response.delete_cookie(COOKIE, path="/", secure=state.secure_cookie, httponly=True,
                               samesite="None" if state.secure_cookie else "Lax")
    return response  # type: ignore[return-value]


def _answered_login(state: WebState) -> tuple[PostMessage, PendingLogin | None]:
    """The posted response and the pending login of this browser it answers, or None for an
    unsolicited response (no InResponseTo: IdP-initiated); :class:`Refusal` when the body is no
    SAML response, or it claims to answer a request this browser has not pending."""
    body = request.get_data(cache=False)  # at most MAX_CONTENT_LENGTH (256 KiB): the app's guard
    try:  # the form's fields and sizes, then the base64, then the one parser (metadata.bindings)
        message = decode_post(body, "SAMLResponse")
    except (BindingError, MetadataError) as exc:
        raise Refusal(400, "This is not a SAML response", f"The POST could not be read as an HTTP-POST "
                      f"SAMLResponse: {exc}") from None
    # InResponseTo is read here, unverified, only to find which of this browser's requests it
    # claims to answer; the checks then compare it, from the signed bytes, with that request.
    root = message.tree.getroot()
    if root.tag != f"{{{SAMLP}}}Response":
        raise Refusal(400, "This is not a SAML response", f"The POST holds {_tag(root.tag)}, not a samlp:Response "
                      f"(namespace {SAMLP}).")
    answers = root.get("InResponseTo")
    if answers is None:
        return message, None
    token = request.cookies.get(COOKIE, "")
    taken = None
    if TOKEN.fullmatch(token) and REQUEST_ID.fullmatch(answers) and state.store.get(BROWSERS_NS, token):
        taken = state.store.take(PENDING_NS, f"{token}.{answers}")
    if taken is None:
        raise Refusal(400, "No test login pending", NO_LOGIN)
    return message, PendingLogin.read(taken)



def _tag(tag: object) -> str:
    """An element's name as a message shows it: ``{ns}local`` as ``local (namespace ns)``, shortened."""
    text = str(tag)
    namespace, _, local = text[1:].partition("}") if text.startswith("{") else ("", "", text)
    shown = f"<{local[:80]}>" + (f" (namespace {namespace[:120]})" if namespace else " (no namespace)")
    return shown


# --- results ------------------------------------------------------------------------------


@blueprint.get("/test-logins/<login_id>")
@allow(biller_read(resolve=result_biller))
def result(login_id: str) -> Response:
    if not TOKEN.fullmatch(login_id):
        return error_page(404, "Unknown test login", UNKNOWN_LOGIN)
    try:
        stored, stored_view = web().store.get(RESULTS_NS, login_id), web().store.get(VIEWS_NS, login_id)
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    if stored is None:
        return error_page(404, "Unknown test login", UNKNOWN_LOGIN)
    report, view = read_report(json.loads(stored)), LoginView.read(json.loads(stored_view) if stored_view else None)
    steps, failed_at = login_steps(view, report)
    # Markup only for what login_sequence built: it escapes every text it draws.
    sequence = Markup(login_sequence(steps, failed_at=failed_at, lifelines=lifelines(view)))  # noqa: S704
    return page("result.html", login_id=login_id, report=report, view=view, claims=claim_rows(view, report),
                xml=pretty_xml(view.xml), sequence=sequence)


# --- the test SP's metadata ---------------------------------------------------------------


@blueprint.get("/test-sp/metadata")
@allow(biller_read("biller", optional=True))
def sp_metadata() -> Response:
    state = web()
    entity_id = f"{state.base_url}/test-sp/metadata"
    biller = request.args.get("biller")
    if biller is not None:
        try:
            entity_id = partner_record(biller).sp.entity_id
        except Refusal as refusal:
            return refusal.page()
    body = sp_metadata_xml(entity_id, state.acs_url, state.signing_key)
    response = Response(body, mimetype="application/samlmetadata+xml")
    response.headers["Content-Disposition"] = "attachment; filename=test-sp-metadata.xml"
    return response
