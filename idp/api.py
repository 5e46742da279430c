"""``/api/v1``: drive the IdP without a person, for an SP's own CI.

- ``POST /api/v1/next-login`` with ``{"persona": "alice", "sp": "<SP entity ID>"}`` (``sp``
  optional: any SP) signs in as that persona at the next AuthnRequest, without any form.
- ``POST /api/v1/faults`` with ``{"fault": "expired", "sp": "…", "persona": "…"}`` (or
  ``"faults": [...]``; ``sp`` and ``persona`` optional) breaks the next response to that SP for
  that persona, once. ``GET /api/v1/faults`` lists the catalogue.
- ``GET /api/v1/personas`` lists the personas.

Both arming calls need ``Authorization: Bearer <api_token>`` when the IdP has an api_token.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .faults import CATALOGUE, FaultError, conflict, fault
from .flow import fault_problem
from .sso import ARMED_FAULTS, armed_fault_key
from .state import IdPState, state

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

ARMED_TTL = 300.0


def _refused(idp: IdPState) -> tuple[Response, int] | None:
    token = idp.settings.server.api_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if token and not hmac.compare_digest(given.encode(), token.encode()):
        return jsonify(error="this IdP requires Authorization: Bearer <api_token> for the automation API"), 401
    return None


def _body() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


@blueprint.post("/next-login")
def next_login() -> tuple[Response, int]:
    idp = state()
    if refused := _refused(idp):
        return refused
    body = _body()
    if body is None or not isinstance(body.get("persona"), str):
        return jsonify(error='send JSON {"persona": "<id>", "sp": "<entity ID, optional>"}',
                       personas=sorted(idp.personas)), 400
    persona, sp = body["persona"], body.get("sp")
    if persona not in idp.personas:
        return jsonify(error=f"unknown persona {persona!r}", personas=sorted(idp.personas)), 400
    if sp is not None and (not isinstance(sp, str) or idp.registry.get(sp) is None):
        return jsonify(error=f"unknown SP {sp!r}", sps=list(idp.registry.entity_ids)), 400
    idp.store.put("armed", sp or "*", persona.encode(), ARMED_TTL)
    return jsonify(armed=persona, sp=sp or "any", expires_in=int(ARMED_TTL)), 200


@blueprint.post("/faults")
def arm_faults() -> tuple[Response, int]:
    idp = state()
    if refused := _refused(idp):
        return refused
    body = _body()
    usage = 'send JSON {"fault": "<id>"} or {"faults": ["<id>", …]}, with optional "sp" and "persona"'
    if body is None:
        return jsonify(error=usage, faults=list(CATALOGUE)), 400
    unknown = sorted(set(body) - {"fault", "faults", "sp", "persona"})
    ids = body.get("faults", [body["fault"]] if "fault" in body else None)
    both = "fault" in body and "faults" in body
    if unknown or both or not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        extra = f"; unknown keys: {', '.join(unknown)}" if unknown else "; not both" if both else ""
        return jsonify(error=usage + extra, faults=list(CATALOGUE)), 400
    try:
        chosen = tuple(fault(i) for i in ids)
    except FaultError as exc:
        return jsonify(error=str(exc), faults=list(CATALOGUE)), 400
    sp_id, persona_id = body.get("sp"), body.get("persona")
    sp = idp.registry.get(sp_id) if isinstance(sp_id, str) else None
    if sp_id is not None and sp is None:
        return jsonify(error=f"unknown SP {sp_id!r}", sps=list(idp.registry.entity_ids)), 400
    persona = idp.personas.get(persona_id) if isinstance(persona_id, str) else None
    if persona_id is not None and persona is None:
        return jsonify(error=f"unknown persona {persona_id!r}", personas=sorted(idp.personas)), 400
    # Judged now where the SP (and persona) are known; otherwise when the response is built.
    problem = fault_problem(idp, sp, persona, chosen) if sp is not None else conflict(chosen)
    if problem:
        return jsonify(error=problem), 400
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
