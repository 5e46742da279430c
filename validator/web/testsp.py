"""The live test SP: an SP-initiated login against a partner's IdP, judged against its CRM record.

``GET /test-login/<biller-id>`` sends an AuthnRequest (HTTP-Redirect) whose Issuer is the
record's ``sp.entity_id`` and whose ACS is ``<base_url>/test-sp/acs``. The request ID is kept
in the store under a random token that is also set as a cookie: the response is accepted
only from the browser that started the login, and only once (SECURITY.md §3).
``POST /test-sp/acs`` parses nothing for a browser that started no test login; otherwise it
decodes and parses the response once, verifies it once with the IdP's metadata and runs every
response check once with the remembered request ID, the replay cache answering RSP023 during
that run; the report is kept 24 hours as ``/test-logins/<id>`` (page) and
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
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request
from lxml import etree
from markupsafe import Markup

from metadata.bindings import BindingError, decode_post, encode_redirect
from metadata.certs import fingerprint
from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.fetch import fetch
from metadata.keys import KeyPair
from metadata.read import read_metadata
from metadata.saml import BINDING_POST, BINDING_REDIRECT, DS, MD, SAML, SAMLP
from metadata.store import Store, StoreUnavailable
from metadata.urls import redact_url
from metadata.xml import MESSAGE_LIMITS, metadata_limits, parse_untrusted
from validator.findings import Severity
from validator.json_value import Plain, iso_z
from validator.render.json import render_json
from validator.render.sequence import CHECK_STAGES, Lifeline, Lifelines, Step, failed_stage, login_sequence, stage_of
from validator.report import Report
from validator.response_inspection import (
    IdPTrust,
    ResponseInspection,
    ResponseOptions,
    inspect_response_tree,
    trust_from_metadata,
)
from validator.response_report import ResponseReportFacts
from validator.sweep_history import record_signer
from validator.vendor import VENDORS

blueprint = Blueprint("testsp", __name__, template_folder="templates")


COOKIE = "saml_preflight_test_login"
PENDING_NS, PENDING_TTL = "test-sp-requests", 15 * 60
BROWSERS_NS = "test-sp-browsers"
"""A browser token that started a test login in the last PENDING_TTL: the ACS parses no POST
from any other browser."""
SEEN_NS, SEEN_TTL = "test-sp-seen-assertions", 24 * 3600
"""An outstanding AuthnRequest: {request ID, biller ID, started at}; taken once by the ACS."""
RESULTS_NS, RESULTS_TTL = "test-logins", 24 * 3600
"""The report, exactly as :func:`render_json` wrote it."""
VIEWS_NS = "test-login-views"
"""What the result page shows beside the report: the decoded XML, the expected claims, the
IdP's names and the step times (``times``: requested, received, judged; ISO 8601 UTC)."""

TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
"""The form of a browser token and of a test login's ID."""

MetadataLoader = Callable[[CRMRecord], bytes]


class MetadataUnavailable(MetadataError):
    """The record names no metadata URL."""


@dataclass(frozen=True)
class WebState:
    crm_folder: Path
    base_url: str
    store: Store
    clock: Callable[[], datetime]
    metadata_loader: MetadataLoader
    signing_key: KeyPair | None = None

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/test-sp/acs"

    @property
    def secure_cookie(self) -> bool:
        return self.base_url.startswith("https://")


def utc_now() -> datetime:
    return datetime.now(UTC)


def fetch_idp_metadata(record: CRMRecord) -> bytes:
    """The record's IdP metadata, from ``idp.metadata_url`` with the SSRF-safe fetcher."""
    if not record.idp.metadata_url:
        raise MetadataUnavailable("the CRM record has no idp.metadata_url, so the IdP's certificates are unknown")
    return fetch(record.idp.metadata_url).body


def web() -> WebState:
    value: WebState = current_app.extensions["saml_validator_web"]
    return value


def page(template: str, status: int = 200, **context: object) -> Response:
    return Response(render_template(template, **context), status=status, mimetype="text/html")


def error_page(status: int, title: str, message: str) -> Response:
    return page("error.html", status, title=title, message=message, http_status=status)


# --- the record ---------------------------------------------------------------------------


class _Refusal(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.response = error_page(status, title, message)


def _record(biller_id: str) -> CRMRecord:
    from .partners import PartnerError, load_partner

    try:
        return load_partner(web().crm_folder, biller_id)
    except PartnerError as exc:
        raise _Refusal(exc.status, exc.title, exc.message) from None


def _sso_url(record: CRMRecord) -> str:
    """The partner's SSO URL, from the record or its metadata; only https (or http on localhost)
    is ever used as a redirect target, whatever the partner's document says."""
    url = _sso_url_unchecked(record)
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not (parts.scheme == "https" and parts.hostname) and not local:
        raise _Refusal(400, "The SSO URL is not an https URL",
                       f"The IdP's SSO URL {url!r} is not https; the test login will not send a browser there.")
    return url


def _sso_url_unchecked(record: CRMRecord) -> str:
    if record.idp.sso_url:
        return record.idp.sso_url
    try:
        document = read_metadata(parse_untrusted(web().metadata_loader(record), metadata_limits()))
    except MetadataError as exc:
        raise _Refusal(502, "The IdP's metadata cannot be read", f"The record has no idp.sso_url, and its "
                       f"metadata could not be used: {exc}") from None
    wanted = record.idp.entity_id
    for entity in document.idp_entities:
        if entity.idp is None or (wanted and entity.entity_id != wanted):
            continue
        for endpoint in entity.idp.sso:
            if endpoint.binding == BINDING_REDIRECT:
                return endpoint.location
    raise _Refusal(400, "No SSO URL", "The record has no idp.sso_url, and its metadata has no "
                   "HTTP-Redirect SingleSignOnService for the IdP.")


# --- sending the AuthnRequest -------------------------------------------------------------


def new_request_id() -> str:
    return "_" + secrets.token_hex(20)


def authn_request_xml(*, request_id: str, issuer: str, acs_url: str, destination: str, now: datetime) -> bytes:
    root = etree.Element(f"{{{SAMLP}}}AuthnRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    root.set("ID", request_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    root.set("Destination", destination)
    root.set("AssertionConsumerServiceURL", acs_url)
    root.set("ProtocolBinding", BINDING_POST)
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer
    return etree.tostring(root)


@blueprint.get("/test-login/<biller_id>")
def test_login(biller_id: str) -> Response:
    state = web()
    try:
        record = _record(biller_id)
        destination = _sso_url(record)
    except _Refusal as refusal:
        return refusal.response
    now = state.clock()
    request_id = new_request_id()
    xml = authn_request_xml(request_id=request_id, issuer=record.sp.entity_id, acs_url=state.acs_url,
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
    pending = {"request_id": request_id, "biller_id": biller_id, "started_at": iso_z(now)}
    try:
        state.store.put(PENDING_NS, f"{token}.{request_id}", json.dumps(pending).encode(), ttl=PENDING_TTL)
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

NO_LOGIN = ("No test login of this browser is waiting for this response: none was started here, it was already "
            "used, or the response answers no request (an unsolicited response). Start again at "
            "/test-login/<biller-id>.")
_REQUEST_ID = re.compile(r"_[0-9a-f]{40}")


@blueprint.post("/test-sp/acs")
def acs() -> Response:
    state = web()
    received = state.clock()
    body = request.get_data(cache=False)  # at most MAX_CONTENT_LENGTH (256 KiB): the app's guard
    token = request.cookies.get(COOKIE, "")
    # Nothing is parsed for a browser that started no test login: the cheap checks come first.
    try:
        started = TOKEN.fullmatch(token) is not None and state.store.get(BROWSERS_NS, token) is not None
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    if not started:
        return error_page(400, "No test login pending", NO_LOGIN)
    try:  # the form's fields and sizes, then the base64, then the one parser (metadata.bindings)
        message = decode_post(body, "SAMLResponse")
    except (BindingError, MetadataError) as exc:
        return error_page(400, "This is not a SAML response", f"The POST could not be read as an HTTP-POST "
                          f"SAMLResponse: {exc}")
    # InResponseTo is read here, unverified, only to find which of this browser's requests it
    # claims to answer; the checks then compare it, from the signed bytes, with that request.
    answers = message.tree.getroot().get("InResponseTo") or ""
    try:
        taken = state.store.take(PENDING_NS, f"{token}.{answers}") if _REQUEST_ID.fullmatch(answers) else None
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    if taken is None:
        return error_page(400, "No test login pending", NO_LOGIN)
    pending: dict[str, str] = json.loads(taken)
    try:
        record = _record(pending["biller_id"])
    except _Refusal as refusal:
        return refusal.response
    try:
        report, trust, inspection = _judge(message.tree, record, pending, state)
    except StoreUnavailable as exc:  # the replay cache, asked during the checks
        return error_page(503, "Storage unavailable", str(exc))
    judged = state.clock()
    login_id = secrets.token_urlsafe(24)
    vendor = record.idp.vendor or (trust.vendor_key if trust else None)
    view = {
        "biller_id": record.biller.id,
        "biller_name": record.biller.name,
        "started_at": pending["started_at"],
        "times": {"requested": pending["started_at"], "received": iso_z(received), "judged": iso_z(judged)},
        "sp_entity_id": record.sp.entity_id,
        "idp": {"entity_id": (trust.entity_id if trust else None) or record.idp.entity_id,
                "vendor": VENDORS[vendor].name if vendor in VENDORS else vendor},
        "xml": message.xml.decode("utf-8", errors="replace"),
        "relay_state": message.relay_state,
        "claims": [c.model_dump() for c in record.claims],
        "login_types": {str(k): v for k, v in record.login_type_ids.items()},
    }
    try:
        state.store.put(RESULTS_NS, login_id, render_json(report).encode(), ttl=RESULTS_TTL)
        state.store.put(VIEWS_NS, login_id, json.dumps(view).encode(), ttl=RESULTS_TTL)
        signer = _clean_signer(report, inspection, pending)
        if signer:  # the sweep says which certificate signs from this (validator.sweep_history)
            record_signer(state.store, record.biller.id, signer, judged, login_id)
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    response = redirect(f"/test-logins/{login_id}", code=303)
    response.delete_cookie(COOKIE, path="/", secure=state.secure_cookie, httponly=True,
                           samesite="None" if state.secure_cookie else "Lax")
    return response  # type: ignore[return-value]


def _clean_signer(report: Report, inspection: ResponseInspection, pending: dict[str, str]) -> str | None:
    """The certificate that verified a login judged without any error and answering the request
    this browser started; None otherwise. A failed login proves nothing about which key the IdP
    uses now: an old response, signed with a retired key and its unsigned InResponseTo rewritten
    to a fresh request, would otherwise name the retired key as the current signer."""
    judged = inspection.responses[0] if inspection.responses else None
    if judged is None or judged.verified is None or judged.facts is None or not judged.verified.signatures:
        return None
    if report.count(Severity.ERROR) or judged.facts.in_response_to != pending["request_id"]:
        return None
    return fingerprint(judged.verified.signatures[-1].certificate)


@dataclass(frozen=True)
class TestLoginFacts:
    """What a test login's report says about the login itself, beside the response's facts."""

    acs_url: str
    portal_acs_url: str
    request_id: str
    started_at: str
    idp_metadata_error: str | None = None
    """Why the IdP's metadata could not be used, when it could not."""

    def json(self) -> dict[str, Plain]:
        facts: dict[str, Plain] = {"test_sp": {"acs_url": self.acs_url, "portal_acs_url": self.portal_acs_url,
                                               "request_id": self.request_id, "started_at": self.started_at}}
        if self.idp_metadata_error is not None:
            facts["idp_metadata_error"] = self.idp_metadata_error
        return facts


def _judge(tree: etree._ElementTree, record: CRMRecord, pending: dict[str, str], state: WebState
           ) -> tuple[Report, IdPTrust | None, ResponseInspection]:
    """The response judged once, from the tree the ACS parsed: a replay (RSP023) is found by
    asking the store during the checks, which records the assertion as used."""
    now = state.clock()
    checked = record.model_copy(update={"sp": record.sp.model_copy(update={"acs_url": state.acs_url})})
    inputs = {"response": "test SP ACS (HTTP-POST)", "crm": f"{record.biller.id}.toml"}
    error: str | None = None
    trusted: tuple[bytes, ...] = ()
    idp_entity_id: str | None = None
    vendor_key: str | None = None
    trust: IdPTrust | None = None
    try:
        trust = trust_from_metadata(state.metadata_loader(record), checked)
        trusted, idp_entity_id, vendor_key = trust.certificates, trust.entity_id, trust.vendor_key
        if record.idp.metadata_url:
            inputs["metadata"] = redact_url(record.idp.metadata_url)
    except (MetadataError, ValueError) as exc:
        error = str(exc)
    options = ResponseOptions(now=now, trusted=trusted, idp_entity_id=idp_entity_id,
                              request_id=pending["request_id"], vendor_key=vendor_key,
                              is_replay=lambda assertion_id: not state.store.add(SEEN_NS, assertion_id, b"1",
                                                                                 ttl=SEEN_TTL))
    inspection = inspect_response_tree(tree, "response", options, checked)
    login = TestLoginFacts(state.acs_url, record.sp.acs_url, pending["request_id"], pending["started_at"], error)
    report = Report(subject="response", inputs=inputs, clock=now, findings=inspection.findings,
                    subjects_run=inspection.subjects_run, facts=(login, ResponseReportFacts(inspection)))
    return report, trust, inspection


# --- results ------------------------------------------------------------------------------


def _stored(login_id: str) -> tuple[dict[str, Any], dict[str, Any] | None] | Response:
    if not TOKEN.fullmatch(login_id):
        return error_page(404, "Unknown test login", "There is no test login with this ID.")
    try:
        report, view = web().store.get(RESULTS_NS, login_id), web().store.get(VIEWS_NS, login_id)
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    if report is None:
        return error_page(404, "Unknown test login", "There is no test login with this ID; results are kept "
                          "24 hours.")
    return json.loads(report), json.loads(view) if view else None


@blueprint.get("/test-logins/<login_id>")
def result(login_id: str) -> Response:
    found = _stored(login_id)
    if isinstance(found, Response):
        return found
    report, view = found
    response_facts = report.get("facts", {}).get("response", {})
    steps, failed_at = login_steps(view or {}, report)
    # Markup only for what login_sequence built: it escapes every text it draws.
    sequence = Markup(login_sequence(steps, failed_at=failed_at, lifelines=lifelines(view or {})))  # noqa: S704
    return page("result.html", login_id=login_id, report=report, view=view or {},
                claims=claim_rows(view or {}, response_facts), xml=pretty_xml((view or {}).get("xml", "")),
                verified=bool(response_facts.get("verified")), response_facts=response_facts, sequence=sequence)


def login_steps(view: dict[str, Any], report: dict[str, Any]) -> tuple[list[Step], str | None]:
    """The test login as the sequence picture draws it, and the check it failed at (None: accepted)."""
    times: dict[str, str] = view.get("times") or {"requested": view.get("started_at", "")}
    requested, received, judged = (_moment(times.get(k)) for k in ("requested", "received", "judged"))
    findings = [f for f in report.get("findings", []) if f.get("severity") == "error"]
    errors = sorted({f["code"] for f in findings})
    titles: dict[str, str] = {f["code"]: f.get("title", "") for f in findings}
    failed = failed_stage(errors)

    def check(stage: str, name: str, passed: str, about: str) -> Step:
        if stage != failed and (failed is None or CHECK_STAGES.index(stage) < CHECK_STAGES.index(failed)):
            return Step(stage, passed, "sp", "sp", judged, note=about, check=True)
        codes = [c for c in errors if stage_of(c) == stage] if stage == failed else []
        note = ", ".join(codes[:4]) + (f" and {len(codes) - 4} more" if len(codes) > 4 else "") if codes else about
        if len(codes) == 1 and titles.get(codes[0]):
            note = f"{codes[0]}: {titles[codes[0]]}"
        return Step(stage, name, "sp", "sp", judged, note=note, check=True)

    return [
        Step("login", f"GET /test-login/{view.get('biller_id', '…')}", "browser", "sp", requested),
        Step("request", "AuthnRequest (HTTP-Redirect)", "sp", "idp", requested,
             note="302 to the IdP's SSO URL, via the browser"),
        Step("idp", "the user signs in at the IdP", "idp", "idp"),
        Step("response", "POST SAMLResponse to /test-sp/acs", "idp", "sp", received,
             note="HTTP-POST, via the browser"),
        check("signature", "signature", "signature verified", "with the IdP's certificates from its metadata"),
        check("protocol", "protocol checks", "protocol checks passed",
              "issuer, audience, destination, times, InResponseTo"),
        check("claims", "claims vs the CRM record", "claims match the CRM record",
              f"{len(view.get('claims', []))} claims in the record"),
        Step("result", "303 to this result page", "sp", "browser", judged,
             note=f"report: {report.get('verdict', '')}", after_failure=True),
    ], failed


def lifelines(view: dict[str, Any]) -> Lifelines:
    idp: dict[str, str | None] = view.get("idp") or {}
    detail = " · ".join(v for v in (idp.get("vendor"), idp.get("entity_id")) if v)
    return Lifelines(sp=Lifeline("Test SP (validator)", view.get("sp_entity_id") or ""),
                     idp=Lifeline("Partner IdP", detail))


def _moment(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def claim_rows(view: dict[str, Any], response_facts: dict[str, Any]) -> list[dict[str, str]]:
    """The expected/actual table: each claim of the record, then every other claim that arrived."""
    actual: dict[str, list[str]] = response_facts.get("claims") or {}
    verified = bool(response_facts.get("verified"))
    login_types: dict[str, str] = view.get("login_types", {})
    rows: list[dict[str, str]] = []
    for claim in view.get("claims", []):
        name = claim["name"]
        expected = "required" if claim["required"] else "optional"
        if claim["login_type"]:
            allowed = ", ".join(f"{k} ({v})" for k, v in login_types.items()) or "none configured"
            expected += f"; one of the login type IDs {allowed}"
        values = actual.get(name)
        if not verified:
            status, shown = "not read", "— (the response was not verified, so no claim is read)"
        elif values is None:
            status, shown = ("missing" if claim["required"] else "absent"), "— not sent"
        elif not values or any(not v.strip() for v in values):
            status, shown = "empty", " | ".join(values) or "(no value)"
        elif claim["login_type"] and any(v.strip() not in login_types for v in values):
            status, shown = "not an allowed ID", " | ".join(values)
        else:
            status, shown = "ok", " | ".join(values)
        rows.append({"name": name, "expected": expected, "actual": shown, "status": status})
    known = {c["name"] for c in view.get("claims", [])}
    for name, values in actual.items():
        if name not in known:
            rows.append({"name": name, "expected": "not in the CRM record", "actual": " | ".join(values),
                         "status": "extra"})
    return rows


def pretty_xml(text: str) -> str:
    """The XML indented for reading (shown escaped; never parsed for anything else)."""
    if not text:
        return ""
    try:
        tree = parse_untrusted(text.encode(), MESSAGE_LIMITS)
        etree.indent(tree, space="  ")
        return etree.tostring(tree, encoding="unicode")
    except (MetadataError, ValueError, TypeError):
        return text


# --- the test SP's metadata ---------------------------------------------------------------


@blueprint.get("/test-sp/metadata")
def sp_metadata() -> Response:
    state = web()
    entity_id = f"{state.base_url}/test-sp/metadata"
    biller = request.args.get("biller")
    if biller is not None:
        try:
            entity_id = _record(biller).sp.entity_id
        except _Refusal as refusal:
            return refusal.response
    body = sp_metadata_xml(entity_id, state.acs_url, state.signing_key)
    response = Response(body, mimetype="application/samlmetadata+xml")
    response.headers["Content-Disposition"] = "attachment; filename=test-sp-metadata.xml"
    return response


def sp_metadata_xml(entity_id: str, acs_url: str, signing_key: KeyPair | None) -> bytes:
    root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS})
    root.set("entityID", entity_id)
    sp = etree.SubElement(root, f"{{{MD}}}SPSSODescriptor")
    sp.set("AuthnRequestsSigned", "true" if signing_key else "false")
    sp.set("WantAssertionsSigned", "true")
    sp.set("protocolSupportEnumeration", SAMLP)
    if signing_key:
        descriptor = etree.SubElement(sp, f"{{{MD}}}KeyDescriptor", use="signing")
        data = etree.SubElement(etree.SubElement(descriptor, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
        etree.SubElement(data, f"{{{DS}}}X509Certificate").text = "".join(
            line for line in signing_key.cert_pem.decode().splitlines() if "-----" not in line)
    etree.SubElement(sp, f"{{{MD}}}AssertionConsumerService", Binding=BINDING_POST, Location=acs_url,
                     index="0", isDefault="true")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
