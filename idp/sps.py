"""``/api/v1/sps``: register, list and delete the SPs the IdP answers, at runtime, without a restart.

- ``POST /api/v1/sps`` with the metadata XML itself as the body (``Content-Type:
  application/samlmetadata+xml``, ``application/xml`` or ``text/xml``; the other fields below as
  query parameters, ``encrypt`` and ``replace`` as ``true``/``false``), or JSON
  ``{"metadata": "<XML>"}`` or ``{"metadata_url": "https://…"}`` (fetched
  with the SSRF-safe fetcher), plus optional ``entity_id`` (one SP of an aggregate), the options
  ``sign``, ``encrypt``, ``name_format`` and ``nameid_format`` (as ``[[sps]]`` in idp.toml takes them),
  ``replace`` (true to replace an SP of that entity ID) and ``by`` (who, free text): 201 with the SP
  and its warnings (``findings``).
  400 with ``findings`` when its metadata has an error (SPM rules, XML and NET findings); 409 when the
  entity ID is registered and ``replace`` is not true, or belongs to idp.toml.
- ``GET /api/v1/sps`` lists every SP: those of idp.toml (``source`` ``file``), then the runtime ones
  (``api`` or ``page``), each with its ACS URLs, options, and who registered it when.
- ``DELETE /api/v1/sps?entity_id=<URL-encoded entity ID>`` removes a runtime SP (404 when there is
  none, 403 for an SP of idp.toml).

POST and DELETE need ``Authorization: Bearer <api_token>`` when the IdP has an api_token; GET is open
like the other lists. Every error is an RFC 9457 problem document (:mod:`idp.problem`).
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from metadata.json_body import json_type

from . import registrations
from .api import authorise
from .errors import Problem
from .problem import answer, json_object, problem
from .registrations import Application, Refused, finding_json, sp_json, text_field
from .registry import STORED_OPTIONS
from .state import state

blueprint = Blueprint("sps", __name__, url_prefix="/api/v1")
blueprint.register_error_handler(Problem, answer)

KEYS = ("metadata", "metadata_url", "entity_id", "replace", "by", *STORED_OPTIONS)
XML_TYPES = ("application/samlmetadata+xml", "application/xml", "text/xml")
"""Media types of a POST whose body is the metadata itself."""
QUERY_KEYS = ("entity_id", "replace", "by", *STORED_OPTIONS)
XML_USAGE = ("send the SP metadata XML as the body (Content-Type: application/samlmetadata+xml), with optional "
             "query parameters entity_id, sign, encrypt, name_format, nameid_format, replace and by")
USAGE = ('send JSON {"metadata": "<SP metadata XML>"} or {"metadata_url": "https://…"}, with optional "entity_id", '
         '"sign", "encrypt", "name_format", "nameid_format", "replace" and "by"')


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> Response:
    return problem(413, f"the body of {request.method} {request.path} is larger than the IdP accepts (256 KiB): "
                        'give the metadata\'s https URL as "metadata_url" instead of the XML')


@blueprint.get("/sps")
def listed() -> Response:
    _no_body()
    return jsonify([sp_json(sp) for sp in state().registry])


@blueprint.post("/sps")
def create() -> tuple[Response, int]:
    idp = state()
    authorise(idp)
    xml = request.mimetype in XML_TYPES
    body = {} if xml else json_object()
    try:
        application = _application_from_xml() if xml else _application(body)
        checked = registrations.check(idp, application)
        sp, replaced = registrations.store(idp, application, checked, via="api", address=request.remote_addr)
    except Refused as exc:
        raise _problem(exc) from None
    # Warnings do not stop a registration; they are said with it.
    return jsonify({**sp_json(sp), "replaced": replaced, "findings": [finding_json(f) for f in checked.findings]}), 201


@blueprint.delete("/sps")
def remove() -> tuple[Response, int]:
    idp = state()
    authorise(idp)
    _no_body()
    unknown = sorted(set(request.args) - {"entity_id", "by"})
    entity_ids = request.args.getlist("entity_id")
    if unknown or len(entity_ids) != 1:
        raise Problem(400, "send DELETE /api/v1/sps?entity_id=<the URL-encoded entity ID>, with optional by=<who>"
                      + (f"; unknown parameters: {', '.join(unknown)}" if unknown else ""))
    try:
        entity_id = text_field("entity_id", entity_ids[0]) or ""
        by = text_field("by", request.args.get("by"), registrations.MAX_BY)
        registrations.delete(idp, entity_id, via="api", by=by, address=request.remote_addr)
    except Refused as exc:
        raise _problem(exc) from None
    return jsonify(deleted=entity_id), 200


def _no_body() -> None:
    if request.get_data(cache=True):
        raise Problem(400, f"{request.method} {request.path} takes no body")


def _application(body: Mapping[str, object]) -> Application:
    unknown = sorted(set(body) - set(KEYS))
    if unknown:
        raise Refused(400, f"{USAGE}; unknown keys: {', '.join(unknown)}")
    metadata = body.get("metadata") or None  # XML: its line breaks and tabs are text; the parser judges the rest
    if metadata is not None and not isinstance(metadata, str):
        raise Refused(400, f'"metadata" must be the XML as a string, not {json_type(metadata)}')
    url = text_field("metadata_url", body.get("metadata_url"))
    if (metadata is None) == (url is None):
        raise Refused(400, f"{USAGE}; one of the two, not {'both' if metadata else 'neither'}")
    replace = body.get("replace", False)
    if not isinstance(replace, bool):
        raise Refused(400, f'"replace" must be true or false, not {json_type(replace)}')
    try:
        data = metadata.encode() if metadata is not None else None
    except UnicodeEncodeError as exc:  # JSON's \ud800 escape: a character no XML can hold
        raise Refused(400, f'"metadata" holds a lone surrogate (U+{ord(exc.object[exc.start]):04X}): '
                           "send the XML as UTF-8 text") from None
    return Application(
        metadata=data, metadata_url=url,
        entity_id=text_field("entity_id", body.get("entity_id")),
        options=registrations.options_from({k: v for k, v in body.items() if k in STORED_OPTIONS}),
        by=text_field("by", body.get("by"), registrations.MAX_BY), replace=replace)


def _application_from_xml() -> Application:
    """A registration whose body is the metadata XML, its other fields query parameters."""
    params = request.args
    unknown = sorted(set(params) - set(QUERY_KEYS))
    repeated = sorted(k for k in params if len(params.getlist(k)) > 1)
    if unknown or repeated:
        raise Refused(400, f"{XML_USAGE}; " + (f"unknown parameters: {', '.join(unknown)}" if unknown else
                                               f"given more than once: {', '.join(repeated)}"))
    data = request.get_data(cache=False)
    if not data.strip():
        raise Refused(400, f"{XML_USAGE}; the body is empty")
    raw: dict[str, object] = {k: params[k] for k in STORED_OPTIONS if k in params}
    if "encrypt" in raw:
        raw["encrypt"] = _flag("encrypt", params["encrypt"])
    return Application(metadata=data, metadata_url=None, entity_id=text_field("entity_id", params.get("entity_id")),
                       options=registrations.options_from(raw),
                       by=text_field("by", params.get("by"), registrations.MAX_BY),
                       replace=_flag("replace", params.get("replace", "false")))


def _flag(name: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise Refused(400, f'the parameter "{name}" must be true or false, not {value[:40]!r}')
    return value == "true"


def _problem(exc: Refused) -> Problem:
    members = {"findings": [finding_json(f) for f in exc.findings]} if exc.findings else {}
    return Problem(exc.status, exc.detail, members)
