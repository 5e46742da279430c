"""The live test SP: an SP-initiated login against a partner's IdP, judged against its CRM record.

``GET /test-login/<biller-id>`` sends an AuthnRequest (HTTP-Redirect) whose Issuer is the
record's ``sp.entity_id`` and whose ACS is ``<base_url>/test-sp/acs``. The request ID is kept
in the store under a random token that is also set as a cookie: the response is accepted
only from the browser that started the login, and only once (SECURITY.md §3).
``POST /test-sp/acs`` parses nothing for a browser that started no test login; otherwise it
decodes and parses the response once, verifies it once with the IdP's metadata and runs every
response check once with the remembered request ID, the replay cache answering RSP023 during
that run. The IdP's trust is taken as the command line takes it (:mod:`validator.trust`), the
metadata loaded by ``state.metadata_loader``: a refused metadata URL is its NET finding, a
document that is not metadata its XML finding, a near-missed entity ID CRM001, and the report
names the trust source. The report is kept 24 hours as ``/test-logins/<id>`` (page) and
``/api/v1/test-logins/<id>`` (JSON, :mod:`validator.web.api`). Only a login judged without
errors tells the sweep which certificate signs (:func:`validator.sweep_history.record_signer`).

The result page draws the login as a sequence (:mod:`validator.render.sequence`) with the
times the test SP saw: the AuthnRequest sent (the pending entry's ``started_at``), the
response received at the ACS, and the response judged. The user's time at the IdP is the
gap between the first two. A login whose IdP never answers leaves only a pending entry that
expires unseen, so it has no result page and no picture.

The test SP's ACS differs from the portal's (``sp.acs_url``), so the record is checked with
its ACS URL replaced by the test SP's: Destination and Recipient must name the ACS this SP
asked for. Both URLs are listed in the report's ``test_sp`` facts.

This module is the blueprint; what is sent is built by :mod:`validator.web.login_request`, what
is shown afterwards by :mod:`validator.web.login_result`.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from flask import Blueprint, Response, redirect, request
from lxml import etree
from markupsafe import Markup

from metadata.bindings import BindingError, PostMessage, decode_post, encode_redirect
from metadata.certs import fingerprint
from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.fetch import FetchError
from metadata.store import StoreUnavailable
from metadata.urls import redact_url
from validator.checks import response_signature
from validator.checks.fetching import finding_for_fetch_error
from validator.checks.input import NOT_METADATA
from validator.findings import Finding, Severity, folded
from validator.json_value import iso_z
from validator.render.json import render_json
from validator.render.sequence import login_sequence
from validator.report import Report
from validator.response_inspection import ResponseInspection, ResponseOptions, inspect_response_tree
from validator.response_report import ResponseReportFacts
from validator.sweep_history import record_signer
from validator.trust import IdPTrust, TrustSource, load_trust
from validator.vendor import VENDORS

from .login_request import REQUEST_ID, PendingLogin, authn_request_xml, pending_login, sp_metadata_xml, sso_url
from .login_result import (
    RESULTS_NS,
    RESULTS_TTL,
    VIEWS_NS,
    LoginView,
    TestLoginFacts,
    claim_rows,
    lifelines,
    login_steps,
    login_view,
    pretty_xml,
    read_report,
)
from .state import TOKEN, MetadataUnavailable, Refusal, WebState, error_page, page, partner_record, web

blueprint = Blueprint("testsp", __name__, template_folder="templates")

COOKIE = "saml_preflight_test_login"
PENDING_NS, PENDING_TTL = "test-sp-requests", 15 * 60
"""An outstanding AuthnRequest (:class:`~validator.web.login_request.PendingLogin`); taken once by the ACS."""
BROWSERS_NS = "test-sp-browsers"
"""A browser token that started a test login in the last PENDING_TTL: the ACS parses no POST
from any other browser."""
SEEN_NS, SEEN_TTL = "test-sp-seen-assertions", 24 * 3600
"""Assertion IDs already used in a test login: the replay cache."""

NO_LOGIN = ("No test login of this browser is waiting for this response: none was started here, it was already "
            "used, or the response answers no request (an unsolicited response). Start again at "
            "/test-login/<biller-id>.")

__all__ = ["BROWSERS_NS", "COOKIE", "PENDING_NS", "SEEN_NS", "TOKEN", "blueprint", "web"]


# --- sending the AuthnRequest -------------------------------------------------------------


@blueprint.get("/test-login/<biller_id>")
def test_login(biller_id: str) -> Response:
    state = web()
    try:
        record = partner_record(biller_id)
        destination = sso_url(record, state.metadata_loader, allow_http=state.dev_mode)
    except Refusal as refusal:
        return refusal.page()
    now = state.clock()
    pending = pending_login(biller_id, now)
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


# --- receiving the response ---------------------------------------------------------------


@blueprint.post("/test-sp/acs")
def acs() -> Response:
    state = web()
    received = state.clock()
    try:
        message, pending = _answered_login(state)
        record = partner_record(pending.biller_id)
        report, trust, inspection = _judge(message.tree, record, pending, state)
        login_id = _keep(state, message, record, pending, report, trust, inspection, received)
    except Refusal as refusal:
        return refusal.page()
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    response = redirect(f"/test-logins/{login_id}", code=303)
    response.delete_cookie(COOKIE, path="/", secure=state.secure_cookie, httponly=True,
                           samesite="None" if state.secure_cookie else "Lax")
    return response  # type: ignore[return-value]


def _answered_login(state: WebState) -> tuple[PostMessage, PendingLogin]:
    """The posted response and the pending login of this browser it answers; :class:`Refusal` when
    the browser started none, the body is no SAML response, or it answers no request of its own."""
    token = request.cookies.get(COOKIE, "")
    # Nothing is parsed for a browser that started no test login: the cheap checks come first.
    if TOKEN.fullmatch(token) is None or state.store.get(BROWSERS_NS, token) is None:
        raise Refusal(400, "No test login pending", NO_LOGIN)
    body = request.get_data(cache=False)  # at most MAX_CONTENT_LENGTH (256 KiB): the app's guard
    try:  # the form's fields and sizes, then the base64, then the one parser (metadata.bindings)
        message = decode_post(body, "SAMLResponse")
    except (BindingError, MetadataError) as exc:
        raise Refusal(400, "This is not a SAML response", f"The POST could not be read as an HTTP-POST "
                      f"SAMLResponse: {exc}") from None
    # InResponseTo is read here, unverified, only to find which of this browser's requests it
    # claims to answer; the checks then compare it, from the signed bytes, with that request.
    answers = message.tree.getroot().get("InResponseTo") or ""
    taken = state.store.take(PENDING_NS, f"{token}.{answers}") if REQUEST_ID.fullmatch(answers) else None
    if taken is None:
        raise Refusal(400, "No test login pending", NO_LOGIN)
    return message, PendingLogin.read(taken)


def _judge(tree: etree._ElementTree, record: CRMRecord, pending: PendingLogin, state: WebState
           ) -> tuple[Report, IdPTrust | None, ResponseInspection]:
    """The response judged once, from the tree the ACS parsed: a replay (RSP023) is found by
    asking the store during the checks, which records the assertion as used."""
    now = state.clock()
    checked = record.model_copy(update={"sp": record.sp.model_copy(update={"acs_url": state.acs_url})})
    inputs = {"response": "test SP ACS (HTTP-POST)", "crm": f"{record.biller.id}.toml"}
    source, trust, problems = _record_trust(record, checked, state)
    if source is not None:
        inputs["metadata"] = source.location
    options = ResponseOptions(
        now=now, trusted=trust.certificates if trust else (), idp_entity_id=trust.entity_id if trust else None,
        request_id=pending.request_id, vendor_key=trust.vendor_key if trust else None,
        # A finding already says why nothing is trusted (NET, XML008, CRM001): then no SIG026.
        no_trust_reason=None if problems else response_signature.NO_TRUST_REASON,
        is_replay=lambda assertion_id: not state.store.add(SEEN_NS, assertion_id, b"1", ttl=SEEN_TTL))
    inspection = inspect_response_tree(tree, "response", options, checked)
    login = TestLoginFacts(state.acs_url, record.sp.acs_url, pending.request_id, pending.started_at)
    # CRM001 when the record's entity ID near-misses the metadata's: that entity still gave the trust.
    findings = (*folded([*problems, *(trust.findings if trust else ())]), *inspection.findings)
    used = (source,) if source is not None and trust is not None else ()
    report = Report(subject="response", inputs=inputs, clock=now, findings=findings,
                    subjects_run=inspection.subjects_run, facts=(login, *used, ResponseReportFacts(inspection)))
    return report, trust, inspection


def _record_trust(record: CRMRecord, checked: CRMRecord, state: WebState
                  ) -> tuple[TrustSource | None, IdPTrust | None, list[Finding]]:
    """The record's trust, taken as the command line takes it (:func:`validator.trust.load_trust`:
    XML008 for a document that is not metadata, CRM001 for a near miss), the document loaded by
    ``state.metadata_loader`` (the SSRF-safe fetcher on ``idp.metadata_url``; tests serve their
    own): a refused or failed URL is its NET finding. Three Nones when the record gives no trust."""
    url = record.idp.metadata_url
    source = TrustSource("metadata_url", redact_url(url)) if url else TrustSource("metadata", "the IdP metadata")
    try:
        data = state.metadata_loader(record)
    except MetadataUnavailable:
        return None, None, []
    except FetchError as exc:
        return source, None, [finding_for_fetch_error(exc)]
    except (MetadataError, ValueError) as exc:
        return source, None, [NOT_METADATA.finding(str(exc), where=source.location)]
    trust, problems = load_trust(data, checked, source=source.location)
    return source, trust, problems


def _keep(state: WebState, message: PostMessage, record: CRMRecord, pending: PendingLogin, report: Report,
          trust: IdPTrust | None, inspection: ResponseInspection, received: datetime) -> str:
    """Store the login's report and view (24 hours) under a new ID, and the signer when it may be
    trusted; the ID."""
    judged = state.clock()
    login_id = secrets.token_urlsafe(24)
    vendor = record.idp.vendor or (trust.vendor_key if trust else None)
    view = login_view(record, started_at=pending.started_at, received=iso_z(received),
                      judged=iso_z(judged), idp_entity_id=(trust.entity_id if trust else None) or record.idp.entity_id,
                      idp_vendor=VENDORS[vendor].name if vendor in VENDORS else vendor,
                      xml=message.xml.decode("utf-8", errors="replace"), relay_state=message.relay_state)
    state.store.put(RESULTS_NS, login_id, render_json(report).encode(), ttl=RESULTS_TTL)
    state.store.put(VIEWS_NS, login_id, view.json(), ttl=RESULTS_TTL)
    signer = _clean_signer(report, inspection, pending)
    if signer:  # the sweep says which certificate signs from this (validator.sweep_history)
        record_signer(state.store, record.biller.id, signer, judged, login_id)
    return login_id


def _clean_signer(report: Report, inspection: ResponseInspection, pending: PendingLogin) -> str | None:
    """The certificate that verified a login judged without any error and answering the request
    this browser started; None otherwise. A failed login proves nothing about which key the IdP
    uses now: an old response, signed with a retired key and its unsigned InResponseTo rewritten
    to a fresh request, would otherwise name the retired key as the current signer."""
    judged = inspection.responses[0] if inspection.responses else None
    if judged is None or judged.verified is None or judged.facts is None or not judged.verified.signatures:
        return None
    if report.count(Severity.ERROR) or judged.facts.in_response_to != pending.request_id:
        return None
    return fingerprint(judged.verified.signatures[-1].certificate)


# --- results ------------------------------------------------------------------------------


@blueprint.get("/test-logins/<login_id>")
def result(login_id: str) -> Response:
    if not TOKEN.fullmatch(login_id):
        return error_page(404, "Unknown test login", "There is no test login with this ID.")
    try:
        stored, stored_view = web().store.get(RESULTS_NS, login_id), web().store.get(VIEWS_NS, login_id)
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    if stored is None:
        return error_page(404, "Unknown test login", "There is no test login with this ID; results are kept "
                          "24 hours.")
    report, view = read_report(json.loads(stored)), LoginView.read(json.loads(stored_view) if stored_view else None)
    steps, failed_at = login_steps(view, report)
    # Markup only for what login_sequence built: it escapes every text it draws.
    sequence = Markup(login_sequence(steps, failed_at=failed_at, lifelines=lifelines(view)))  # noqa: S704
    return page("result.html", login_id=login_id, report=report, view=view, claims=claim_rows(view, report),
                xml=pretty_xml(view.xml), sequence=sequence)


# --- the test SP's metadata ---------------------------------------------------------------


@blueprint.get("/test-sp/metadata")
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
