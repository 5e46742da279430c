"""``/api/v1``: the validator for programs. Every answer is JSON; reports are exactly what
``--format json`` writes (``saml-preflight/report/v1``, docs/report-json.md). The whole API is
described by the OpenAPI document at ``/api/v1/openapi.json``, which a test keeps in step with
the routes.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from flask import Blueprint, Response, request

from validator.discovery import describes_an_idp
from validator.render.json import render_json
from validator.render.worksheet import worksheet_json
from validator.report import Report

from . import jobs
from .inputs import InputError, document_from_json, record_from_json
from .pages import fetch_policy, partner_metadata
from .partners import PartnerError, list_partners
from .testsp import web

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")


def answer(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value, ensure_ascii=True, indent=2) + "\n", status=status,
                    mimetype="application/json")


def problem(message: str, status: int = 400) -> Response:
    return answer({"error": message}, status)


def report_answer(report: Report) -> Response:
    return Response(render_json(report), mimetype="application/json")


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InputError("send a JSON object (Content-Type: application/json)")
    return body


def _known(body: dict[str, Any], *keys: str) -> None:
    unknown = sorted(set(body) - set(keys))
    if unknown:
        raise InputError(f"unknown keys: {', '.join(unknown)}; this call takes {', '.join(keys)}")


@blueprint.get("/openapi.json")
def openapi() -> Response:
    text = resources.files("validator.web").joinpath("openapi.json").read_text(encoding="utf-8")
    return Response(text, mimetype="application/json")


@blueprint.get("/partners")
def partners() -> Response:
    return answer([
        {"biller_id": p.biller_id, "name": p.record.biller.name, "vendor": p.record.idp.vendor,
         "metadata_url": p.record.idp.metadata_url, "usable": True} if p.record else
        {"biller_id": p.biller_id, "usable": False, "problem": p.problem}
        for p in list_partners(web().crm_folder)
    ])


@blueprint.get("/partners/<biller_id>/report")
def partner_report(biller_id: str) -> Response:
    try:
        record, document = partner_metadata(biller_id)
    except PartnerError as exc:
        return problem(exc.message, exc.status)
    return report_answer(jobs.check_metadata(document, record, f"CRM record {biller_id}", now=web().clock(),
                                             policy=fetch_policy()))


@blueprint.post("/metadata")
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
                                             now=web().clock(), policy=fetch_policy()))


@blueprint.post("/discover")
def discover() -> Response:
    try:
        body = _body()
        _known(body, "xml", "url", "biller", "crm", "probe")
        document = document_from_json(body, "xml", "url", what="metadata", limit=jobs.METADATA_LIMIT)
        crm, crm_source = record_from_json(body, web().crm_folder)
        probe = body.get("probe", True)
        if not isinstance(probe, bool):
            raise InputError("'probe' must be true or false")
    except InputError as exc:
        return problem(exc.message)
    assert document is not None
    worksheet = jobs.discover(document, crm, crm_source, now=web().clock(), policy=fetch_policy(), probe=probe)
    if not describes_an_idp(worksheet.report):  # nothing to describe: the report says why
        return Response(render_json(worksheet.report), status=422, mimetype="application/json")
    return answer(worksheet_json(worksheet))
