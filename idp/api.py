"""``/api/v1``: drive the IdP without a person, for an SP's own CI.

- ``POST /api/v1/next-login`` with ``{"persona": "alice", "sp": "<SP entity ID>"}`` (``sp``
  optional: any SP) signs in as that persona at the next AuthnRequest, without any form. Optional
  overrides for that one response: ``claims`` (name → string or list of strings; all the persona
  claims it sends), ``nameid``, ``nameid_format`` and ``faults`` (a list of fault IDs); each
  checked as the login page checks them (:mod:`idp.edits`), a problem naming the key at fault.
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
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Blueprint, Response, g, jsonify, request

from metadata.json_body import json_type

from . import arming
from .edits import EditError, edits_from_json
from .errors import FaultError, Problem
from .faults import CATALOGUE, Fault, conflict, fault
from .flow import fault_problem
from .problem import answer, json_object
from .registry import RegisteredSP
from .settings import Persona
from .state import IdPState, state

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
blueprint.register_error_handler(Problem, answer)

OVERRIDES = ("claims", "nameid", "nameid_format", "faults")
"""The keys of ``next-login`` that change its one response."""

Members = Mapping[str, object]
"""Extension members of a problem document: the valid names where a name was wrong."""

NEXT_LOGIN_USAGE = ('send JSON {"persona": "<id>", "sp": "<entity ID, optional>"}, with optional "claims", "nameid", '
                    '"nameid_format" and "faults" for that one response')
FAULTS_USAGE = 'send JSON {"fault": "<id>"} or {"faults": ["<id>", …]}, with optional "sp" and "persona"'


@dataclass(frozen=True)
class Order:
    """A ``POST /api/v1/faults`` call, its names checked: the faults, and for whom (None: any)."""

    faults: tuple[Fault, ...]
    sp: RegisteredSP | None
    persona: Persona | None


@blueprint.before_request
def _admit() -> None:
    """Every call: a POST is authorised first, then its body read as a JSON object; a GET has none."""
    if request.method == "POST":
        authorise(state())
        g.api_body = json_object()
    elif request.get_data(cache=True):
        raise Problem(400, f"{request.method} {request.path} takes no body")


def token_matches(idp: IdPState, given: str) -> bool:
    """Whether `given` is the IdP's api_token (compared in constant time); True when it has none."""
    token = idp.settings.server.api_token
    return not token or hmac.compare_digest(given.encode(), token.encode())


def authorise(idp: IdPState) -> None:
    """Refuse (401) a call without the IdP's api_token, when it has one; every arming and registering call asks."""
    if not idp.settings.server.api_token:
        return
    # RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(idp, given):
        raise Problem(401, "this IdP requires Authorization: Bearer <api_token> for the automation API",
                      headers={"WWW-Authenticate": 'Bearer realm="saml-idp"'})


def _body(usage: str, members: Members, *keys: str) -> Mapping[str, object]:
    body: dict[str, object] = g.api_body
    unknown = sorted(set(body) - set(keys))
    if unknown:
        raise Problem(400, f"{usage}; unknown keys: {', '.join(unknown)}", members)
    return body


def _string(body: Mapping[str, object], key: str, members: Members) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise Problem(400, f'"{key}" must be a string, not {json_type(value)}', members)
    return value


def _names(idp: IdPState) -> tuple[Members, Members]:
    """The extension members that list the valid personas and SPs."""
    return {"personas": sorted(idp.personas)}, {"sps": list(idp.registry.entity_ids)}


def _sp(idp: IdPState, entity_id: str | None, sps: Members) -> RegisteredSP | None:
    """The SP named `entity_id` (None when not named); a Problem when no such SP is registered."""
    sp = idp.registry.get(entity_id) if entity_id is not None else None
    if entity_id is not None and sp is None:
        raise Problem(400, f"unknown SP {entity_id!r}", sps)
    return sp


def _persona(idp: IdPState, persona_id: str | None, personas: Members) -> Persona | None:
    """The persona named `persona_id` (None when not named); a Problem when there is none so named."""
    persona = idp.personas.get(persona_id) if persona_id is not None else None
    if persona_id is not None and persona is None:
        raise Problem(400, f"unknown persona {persona_id!r}", personas)
    return persona


@blueprint.post("/next-login")
def next_login() -> tuple[Response, int]:
    idp = state()
    personas, sps = _names(idp)
    body = _body(NEXT_LOGIN_USAGE, personas, "persona", "sp", *OVERRIDES)
    persona_id, sp_id = _string(body, "persona", personas), _string(body, "sp", sps)
    if persona_id is None:
        raise Problem(400, NEXT_LOGIN_USAGE, personas)
    persona = _persona(idp, persona_id, personas)
    sp = _sp(idp, sp_id, sps)
    try:
        edits = edits_from_json(body)
    except EditError as exc:
        raise Problem(400, f'"{exc.field}": {exc.message}', {"field": exc.field}) from None
    if sp is not None and persona is not None:  # judged now where the SP is known; else at the login
        problem = fault_problem(idp, sp, edits.apply(persona), edits.faults_with(persona))
        if problem:
            raise Problem(400, problem)
    overridden = [key for key in OVERRIDES if key in body]
    arming.arm_login(idp.store, sp_id, persona_id, edits if overridden else None)
    return jsonify(armed=persona_id, sp=sp_id or "any", overrides=overridden,
                   expires_in=int(arming.ARMED_TTL)), 200


def _fault_ids(body: Mapping[str, object], catalogue: Members) -> list[str]:
    """The fault IDs of a ``/faults`` body: ``"fault"`` (one) or ``"faults"`` (a list), never both."""
    if "fault" in body and "faults" in body:
        raise Problem(400, f"{FAULTS_USAGE}; not both", catalogue)
    ids = body["faults"] if "faults" in body else [_string(body, "fault", catalogue)] if "fault" in body else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise Problem(400, FAULTS_USAGE, catalogue)
    return [str(i) for i in ids]


def _order(idp: IdPState) -> Order:
    """The checked order of a ``/faults`` call; a Problem naming the valid choices otherwise."""
    personas, sps = _names(idp)
    catalogue: Members = {"faults": list(CATALOGUE)}
    body = _body(FAULTS_USAGE, catalogue, "fault", "faults", "sp", "persona")
    ids = _fault_ids(body, catalogue)
    try:
        chosen = tuple(fault(i) for i in ids)
    except FaultError as exc:
        raise Problem(400, str(exc), catalogue) from None
    sp_id, persona_id = _string(body, "sp", sps), _string(body, "persona", personas)
    return Order(chosen, _sp(idp, sp_id, sps), _persona(idp, persona_id, personas))


@blueprint.post("/faults")
def arm_faults() -> tuple[Response, int]:
    idp = state()
    order = _order(idp)
    # Judged now where the SP (and persona) are known; otherwise when the response is built.
    problem = (fault_problem(idp, order.sp, order.persona, order.faults) if order.sp is not None
               else conflict(order.faults))
    if problem:
        raise Problem(400, problem)
    sp_id = order.sp.entity_id if order.sp else None
    persona_id = order.persona.id if order.persona else None
    arming.arm_faults(idp.store, sp_id, persona_id, order.faults)
    return jsonify(armed=[f.id for f in order.faults], sp=sp_id or "any", persona=persona_id or "any",
                   expires_in=int(arming.ARMED_TTL)), 200


@blueprint.get("/faults")
def faults() -> Response:
    return jsonify([f.as_dict() for f in CATALOGUE.values()])


@blueprint.get("/personas")
def personas() -> Response:
    idp = state()
    return jsonify([{"id": p.id, "display_name": p.display_name, "nameid": p.nameid, "claims": p.claims,
                     "faults": list(p.faults), "auto_login": p.auto_login} for p in idp.personas.values()])
