"""``/api/v1``: the validator for programs. Every answer is JSON; reports are exactly what
``--format json`` writes (``saml-preflight/report/v1``, docs/report-json.md). The whole API is
described by the OpenAPI document at ``/api/v1/openapi.json``, which a test keeps in step with
the routes.

Every error under ``/api/`` — a mistake in the body, no such route, a wrong method, a body too
large, a refused request, a failure of the app — is an RFC 9457 problem document
(``application/problem+json``: ``type``, ``title``, ``status``, ``detail``), never an HTML page.
POST bodies are read by :func:`metadata.json_body.read_json_object`, at a bounded cost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from http import HTTPStatus
from importlib import resources
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from metadata.json_body import JSONBodyError, read_json_object
from metadata.store import StoreUnavailable
from validator.discovery import describes_an_idp
from validator.interview import AnswerError, answers_from_object, told_vs_metadata
from validator.render.json import render_json
from validator.render.worksheet import worksheet_json
from validator.report import Report

from . import jobs
from .access import PUBLIC, STAFF, allow, biller_read, current, signed_in
from .inputs import InputError, document_from_json, record_from_json
from .login_result import RESULTS_NS, UNKNOWN_LOGIN_API, result_biller
from .pages import fetch_policy, on_record, partner_metadata
from .partners import PartnerError, list_partners
from .state import TOKEN, web
from .trail import note

PREFIX = "/api/"
PROBLEM_JSON = "application/problem+json"

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")


def is_api(path: str) -> bool:
    return path.startswith(PREFIX) or path == PREFIX.rstrip("/")


def answer(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, ensure_ascii=True, indent=2) + "\n", status=status,
                    mimetype="application/json")


def problem(detail: str, status: int = 400, *, headers: Mapping[str, str] | None = None) -> Response:
    """RFC 9457 §3.1. The type is ``about:blank``, so the title is the status phrase (§4.2.1);
    what went wrong, and where, is in `detail`."""
    document = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return Response(json.dumps(document, ensure_ascii=True, indent=2) + "\n", status=status,
                    headers=dict(headers or {}), mimetype=PROBLEM_JSON)


def http_problem(exc: HTTPException, body_limit: int) -> Response:
    """An HTTP error raised under ``/api/`` (no such route, wrong method, too large, a failure)."""
    status = exc.code or 500
    call = f"{request.method} {request.path}"
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    if status == 404:
        detail = f"there is no API call {call}; the calls are listed in /api/v1/openapi.json"
    elif status == 405:
        detail = f"{call} is not allowed; {request.path} takes {headers.get('Allow', 'another method')}"
    elif status == 413:
        detail = f"the request body is larger than {body_limit // 1024:,} KiB"
    elif status >= 500:
        detail = f"the validator failed on {call}; the failure is in its log"
    else:
        detail = exc.description or HTTPStatus(status).phrase
    return problem(detail, status, headers=headers)


def report_answer(report: Report) -> Response:
    return Response(render_json(report), mimetype="application/json")


def _body() -> dict[str, Any]:
    try:
        return read_json_object(request.get_data(cache=False))
    except JSONBodyError as exc:
        raise InputError(str(exc)) from None


def _known(body: dict[str, Any], *keys: str) -> None:
    unknown = sorted(set(body) - set(keys))
    if unknown:
        raise InputError(f"unknown keys: {', '.join(unknown)}; this call takes {', '.join(keys)}")


@blueprint.get("/openapi.json")
@allow(PUBLIC)
def openapi() -> Response:
    text = resources.files("validator.web").joinpath("openapi.json").read_text(encoding="utf-8")
    return Response(text, mimetype="application/json")


@blueprint.get("/partners")
@allow(signed_in(tokens=True))
def partners() -> Response:
    return answer([
        {"biller_id": p.biller_id, "name": p.record.biller.name, "vendor": p.record.idp.vendor,
         "metadata_url": p.record.idp.metadata_url, "usable": True} if p.record else
        {"biller_id": p.biller_id, "usable": False, "problem": p.problem}
        for p in list_partners(web().crm_folder) if current().may_read(p.biller_id)
    ])


@blueprint.get("/partners/<biller_id>/report")
@allow(biller_read(tokens=True))
def partner_report(biller_id: str) -> Response:
    try:
        record, document = partner_metadata(biller_id)
    except PartnerError as exc:
        return problem(exc.message, exc.status)
    note("report-download", biller_id=biller_id, detail="go-live report (API)")
    return report_answer(jobs.check_metadata(document, record, f"CRM record {biller_id}", now=web().clock(),
                                             policy=fetch_policy()))


@blueprint.post("/metadata")
@allow(signed_in(tokens=True))
def metadata() -> Response:
    try:
        body = _body()
        _known(body, "xml", "url", "biller", "crm")
        document = document_from_json(body, "xml", "url", what="metadata", limit=jobs.METADATA_LIMIT)
        crm, crm_source = record_from_json(body, web().crm_folder)
    except InputError as exc:
        return problem(exc.message)
    assert document is not None
    return report_answer(jobs.check_metadata(document, crm, crm_source, now=web().clock(), policy=fetch_policy()))


@blueprint.post("/responses")
@allow(signed_in(tokens=True))
def responses() -> Response:
    try:
        body = _body()
        _known(body, "response", "metadata_xml", "metadata_url", "request_id", "biller", "crm")
        response = document_from_json(body, "response", None, what="SAML response", limit=jobs.RESPONSE_LIMIT)
        trust = document_from_json(body, "metadata_xml", "metadata_url", what="IdP metadata",
                                   limit=jobs.METADATA_LIMIT, required=False)
        crm, crm_source = record_from_json(body, web().crm_folder)
        request_id = body.get("request_id")
        if request_id is not None and not isinstance(request_id, str):
            raise InputError("'request_id' must be a string")
    except InputError as exc:
        return problem(exc.message)
    assert response is not None
    return report_answer(jobs.check_response(response, crm, crm_source, metadata=trust, request_id=request_id,
                                             now=web().clock(), policy=fetch_policy(), surface=jobs.API,
                                             on_record=on_record(body.get("biller"), crm)))


@blueprint.post("/discover")
@allow(signed_in(tokens=True))
def discover() -> Response:
    try:
        body = _body()
        _known(body, "xml", "url", "biller", "crm", "probe", "interview")
        document = document_from_json(body, "xml", "url", what="metadata", limit=jobs.METADATA_LIMIT)
        crm, crm_source = record_from_json(body, web().crm_folder)
        probe = body.get("probe", True)
        if not isinstance(probe, bool):
            raise InputError("'probe' must be true or false")
        said = answers_from_object(body["interview"], "'interview'") if "interview" in body else None
    except (InputError, AnswerError) as exc:
        return problem(exc.message)
    assert document is not None
    worksheet = jobs.discover(document, crm, crm_source, now=web().clock(), policy=fetch_policy(), probe=probe)
    if not describes_an_idp(worksheet.inspection):  # nothing to describe: the report says why
        return Response(render_json(worksheet.report), status=422, mimetype="application/json")
    if said is not None:
        worksheet = replace(worksheet, told=told_vs_metadata(said, worksheet))
    return answer(worksheet_json(worksheet))


@blueprint.get("/test-logins/<login_id>")
@allow(biller_read(tokens=True, resolve=result_biller))
def test_login(login_id: str) -> Response:
    """The report of one live test login, exactly as stored (:mod:`validator.web.testsp`)."""
    try:
        report = web().store.get(RESULTS_NS, login_id) if TOKEN.fullmatch(login_id) else None
    except StoreUnavailable as exc:
        return problem(str(exc), 503)
    if report is None:
        return problem(UNKNOWN_LOGIN_API, 404)
    return Response(report, mimetype="application/json")


@blueprint.get("/audit")
@allow(STAFF)
def audit_trail() -> Response:
    """The audit trail as JSON lines, newest first; ``?biller_id=``, ``?action=``, ``?who=`` filter it."""
    from validator.auth import audit

    filters = {key: (request.args.get(key) or "").strip() or None for key in ("biller_id", "action", "who")}
    found = audit.events(web().store, now=web().clock(), **filters)  # type: ignore[arg-type]
    return Response(audit.as_json_lines(found), mimetype="application/jsonl")
