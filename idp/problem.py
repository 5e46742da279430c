"""Errors of the automation API as RFC 9457 problem documents; JSON bodies read by metadata.json_body.

Everything under ``/api/`` answers a failure with ``application/problem+json`` (members ``type``,
``title``, ``status``, ``detail``, plus extension members such as ``personas``), never with an
HTML page: an SP's CI reads these answers with a JSON parser. Browser pages keep their HTML errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from flask import Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from metadata.json_body import JSONBodyError, read_json_object

from .errors import Problem

PROBLEM_JSON = "application/problem+json"


def problem(status: int, detail: str, *, headers: Mapping[str, str] | None = None, **members: object) -> Response:
    """RFC 9457 §3.1: ``about:blank`` as the type, so the title is the status phrase (§4.2.1);
    what went wrong is in `detail`, and `members` are extension members (§3.2)."""
    document = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error"), "status": status,
                "detail": detail, **members}
    return Response(json.dumps(document), status=status, headers=dict(headers or {}), mimetype=PROBLEM_JSON)


def answer(exc: Problem) -> Response:
    return problem(exc.status, exc.detail, headers=exc.headers, **exc.members)


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def http_error(exc: HTTPException) -> Response | HTTPException:
    """Any HTTP error (no such route, wrong method, body too large …): a problem document under
    ``/api/``; elsewhere the page it always was."""
    if not is_api_request():
        return exc
    status = exc.code or 500
    kept = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "www-authenticate")}
    return problem(status, _detail(exc, status, kept.get("Allow")), headers=kept)


def _detail(exc: HTTPException, status: int, allowed: str | None) -> str:
    call = f"{request.method} {request.path}"
    if status == 404:
        calls = sorted({rule.rule for rule in current_app.url_map.iter_rules() if rule.rule.startswith("/api/")})
        return f"there is no API call {call}; the calls are {', '.join(calls)}"
    if status == 405:
        return f"{call} is not allowed; this call takes {allowed or 'another method'}"
    if status == 413:
        return f"the body of {call} is larger than the IdP accepts ({_limit()})"
    return exc.description or HTTP_STATUS_CODES.get(status, "Error")


def _limit() -> str:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return f"{limit // 1024} KiB" if isinstance(limit, int) else "a limit"


def json_object() -> dict[str, object]:
    """The request's body as a JSON object (RFC 8259: UTF-8), each defect a 400 (415 for another
    media type) that names it. The API's one reader of a JSON body: its values are checked, each
    for its type, by the call that reads them."""
    call = f"{request.method} {request.path}"
    if not request.is_json:
        raise Problem(415, f"{call} takes a JSON object: send Content-Type: application/json, not "
                           f"{request.mimetype or 'none'}")
    data = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: a 413, answered by http_error
    try:
        return read_json_object(data)
    except JSONBodyError as exc:
        raise Problem(400, f"{call}: {exc}") from None
