"""``/api/v1``: drive the IdP without a person, for an SP's own CI.

- ``POST /api/v1/next-login`` with ``{"persona": "alice", "sp": "<SP entity ID>"}`` (``sp``
  optional: any SP) signs in as that persona at the next AuthnRequest, without any form.
- ``POST /api/v1/faults`` with ``{"fault": "expired", "sp": "…", "persona": "…"}`` (or
  ``"faults": [...]``; ``sp`` and ``persona`` optional) breaks the next response to that SP for
  that persona, once. ``GET /api/v1/faults`` lists the catalogue.
- ``GET /api/v1/personas`` lists the personas.

Both arming calls need ``Authorization: Bearer <api_token>`` when the IdP has an api_token. A POST
takes a JSON object (``Content-Type: application/json``); a GET takes no body. Every error is an
RFC 9457 problem document (:mod:`idp.problem`), with ``personas``, ``sps`` or ``faults`` listing
the valid names where a name was wrong.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from metadata.json_body import json_type

from .errors import FaultError, Problem
from .faults import CATALOGUE, conflict, fault
from .flow import fault_problem
from .problem import answer, json_object
from .sso import ARMED_FAULTS, armed_fault_key
from .state import IdPState, state

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
blueprint.register_error_handler(Problem, answer)

ARMED_TTL = 300.0


@blueprint.before_request
def _admit() -> None:
    """Every call: a POST is authorised first, then its body read as a JSON object; a GET has none."""
    if request.method == "POST":
        _authorise(state())
        g.api_body = json_object()
    elif request.get_data(cache=True):
        raise Problem(400, f"{request.method} {request.path} takes no body")


def _authorise(idp: IdPState) -> None:
    token = idp.settings.server.api_token
    if not token:
        return
    # RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise Problem(401, "this IdP requires Authorization: Bearer <api_token> for the automation API",
                      headers={"WWW-Authenticate": 'Bearer realm="saml-idp"'})


def _body(usage: str, members: dict[str, object], *keys: str) -> dict[str, Any]:
    body: dict[str, Any] = g.api_body
    unknown = sorted(set(body) - set(keys))
    if unknown:
        raise Problem(400, f"{usage}; unknown keys: {', '.join(unknown)}", members)
    return body


def _string(body: dict[str, Any], key: str, members: dict[str, object]) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise Problem(400, f'"{key}" must be a string, not {json_type(value)}', members)
    return value


def _names(idp: IdPState) -> tuple[dict[str, object], dict[str, object]]:
    """The extension members that list the valid personas and SPs."""
    return {"personas": sorted(idp.personas)}, {"sps": list(idp.registry.entity_ids)}


@blueprint.post("/next-login")
def next_login() -> tuple[Response, int]:
    idp = state()
    personas, sps = _names(idp)
    usage = 'send JSON {"persona": "<id>", "sp": "<entity ID, optional>"}'
    body = _body(usage, personas, "persona", "sp")
    persona, sp = _string(body, "persona", personas), _string(body, "sp", sps)
    if persona is None:
        raise Problem(400, usage, personas)
    if persona not in idp.personas:
        raise Problem(400, f"unknown persona {persona!r}", personas)
    if sp is not None and idp.registry.get(sp) is None:
        raise Problem(400, f"unknown SP {sp!r}", sps)
    idp.store.put("armed", sp or "*", persona.encode(), ARMED_TTL)
    return jsonify(armed=persona, sp=sp or "any", expires_in=int(ARMED_TTL)), 200


@blueprint.post("/faults")
def arm_faults() -> tuple[Response, int]:
    idp = state()
    personas, sps = _names(idp)
    catalogue: dict[str, object] = {"faults": list(CATALOGUE)}
    usage = 'send JSON {"fault": "<id>"} or {"faults": ["<id>", …]}, with optional "sp" and "persona"'
    body = _body(usage, catalogue, "fault", "faults", "sp", "persona")
    if "fault" in body and "faults" in body:
        raise Problem(400, f"{usage}; not both", catalogue)
    ids = body["faults"] if "faults" in body else [_string(body, "fault", catalogue)] if "fault" in body else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise Problem(400, usage, catalogue)
    try:
        chosen = tuple(fault(i) for i in ids)
    except FaultError as exc:
        raise Problem(400, str(exc), catalogue) from None
    sp_id, persona_id = _string(body, "sp", sps), _string(body, "persona", personas)
    sp = idp.registry.get(sp_id) if sp_id is not None else None
    if sp_id is not None and sp is None:
        raise Problem(400, f"unknown SP {sp_id!r}", sps)
    persona = idp.personas.get(persona_id) if persona_id is not None else None
    if persona_id is not None and persona is None:
        raise Problem(400, f"unknown persona {persona_id!r}", personas)
    # Judged now where the SP (and persona) are known; otherwise when the response is built.
    problem = fault_problem(idp, sp, persona, chosen) if sp is not None else conflict(chosen)
    if problem:
        raise Problem(400, problem)
    idp.store.put(ARMED_FAULTS, armed_fault_key(sp_id, persona_id), json.dumps([f.id for f in chosen]).encode(),
                  ARMED_TTL)
    return jsonify(armed=[f.id for f in chosen], sp=sp_id or "any", persona=persona_id or "any",
                   expires_in=int(ARMED_TTL)), 200


@blueprint.get("/faults")
def faults() -> Response:
    return jsonify([f.as_dict() for f in CATALOGUE.values()])


@blueprint.get("/personas")
def personas() -> Response:
    idp = state()
    return jsonify([{"id": p.id, "display_name": p.display_name, "nameid": p.nameid, "claims": p.claims,
                     "faults": list(p.faults), "auto_login": p.auto_login} for p in idp.personas.values()])
