"""``/api/v1``: drive the IdP without a person, for an SP's own CI.

``POST /api/v1/next-login`` with ``{"persona": "alice", "sp": "<SP entity ID>"}`` (``sp``
optional: any SP) signs in as that persona at the next AuthnRequest, without any form.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, jsonify, request

from .state import state

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

ARMED_TTL = 300.0


@blueprint.post("/next-login")
def next_login() -> tuple[Response, int]:
    idp = state()
    token = idp.settings.server.api_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if token and not hmac.compare_digest(given.encode(), token.encode()):
        return jsonify(error="this IdP requires Authorization: Bearer <api_token> for the automation API"), 401
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("persona"), str):
        return jsonify(error='send JSON {"persona": "<id>", "sp": "<entity ID, optional>"}',
                       personas=sorted(idp.personas)), 400
    persona, sp = body["persona"], body.get("sp")
    if persona not in idp.personas:
        return jsonify(error=f"unknown persona {persona!r}", personas=sorted(idp.personas)), 400
    if sp is not None and (not isinstance(sp, str) or idp.registry.get(sp) is None):
        return jsonify(error=f"unknown SP {sp!r}", sps=list(idp.registry.entity_ids)), 400
    idp.store.put("armed", sp or "*", persona.encode(), ARMED_TTL)
    return jsonify(armed=persona, sp=sp or "any", expires_in=int(ARMED_TTL)), 200


@blueprint.get("/personas")
def personas() -> Response:
    idp = state()
    return jsonify([{"id": p.id, "display_name": p.display_name, "nameid": p.nameid, "claims": p.claims,
                     "auto_login": p.auto_login} for p in idp.personas.values()])
