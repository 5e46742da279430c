"""``/sso``: the SingleSignOnService, HTTP-Redirect (GET) and HTTP-POST (POST).

The AuthnRequest is decoded with the size caps, parsed with the one parser and judged by the
validator's REQ rules; any error is shown to the SP developer (HTTP 400) with its code.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from flask import Blueprint, Response, render_template, request

from metadata.authn_request import AuthnRequest, NotAnAuthnRequest, read_authn_request
from metadata.bindings import BindingError, PostMessage, RedirectMessage, decode_post, decode_redirect
from metadata.errors import UnsafeXML
from metadata.saml import EMAIL, PERSISTENT, TRANSIENT, UNSPECIFIED
from metadata.service_provider import ServiceProvider, resolve_acs
from metadata.xml import REQUEST_LIMITS, parse_untrusted, signed_bytes_limits
from validator.checks.request import (
    RequestContext,
    SignatureCheck,
    check_authn_request,
    finding_for_binding_error,
    finding_for_not_authn_request,
    finding_for_unsafe_request,
    request_signature,
)
from validator.findings import Finding, Severity

from . import arming, flow
from .edits import Edits
from .faults import Fault
from .registry import RegisteredSP
from .settings import Persona
from .state import IdPState, state

blueprint = Blueprint("sso", __name__)
log = logging.getLogger("idp")

SUPPORTED_NAMEID_FORMATS = (EMAIL, PERSISTENT, TRANSIENT, UNSPECIFIED)


def request_error(findings: list[Finding], status: int = 400) -> Response:
    """The page an SP developer sees: every finding with its code, expected, actual and fix."""
    for finding in findings:
        log.warning("AuthnRequest refused: %s %s", finding.code, finding.message)
    ordered = sorted(findings, key=lambda f: (f.severity.rank, f.code))
    html = render_template("request_error.html", findings=ordered)
    return Response(html, status=status, mimetype="text/html")


def finding_for(exc: BindingError | UnsafeXML | NotAnAuthnRequest) -> Finding:
    """The REQ finding for a request that could not be read at all."""
    if isinstance(exc, BindingError):
        return finding_for_binding_error(exc)
    if isinstance(exc, UnsafeXML):
        return finding_for_unsafe_request(exc)
    return finding_for_not_authn_request(exc)


@blueprint.route("/sso", methods=["GET", "POST"])
def sso() -> Response:
    idp = state()
    try:
        message: RedirectMessage | PostMessage = (
            decode_redirect(request.query_string, "SAMLRequest") if request.method == "GET"
            else decode_post(request.get_data(cache=False), "SAMLRequest")
        )
        authn = read_authn_request(message.tree)
        registered = idp.registry.get(authn.issuer)
        signature = request_signature(message, registered.sp if registered else None)
        if signature.signed_xml is not None:
            # A verified POST signature: judge what was signed (SECURITY.md §2).
            authn = read_authn_request(parse_untrusted(signature.signed_xml, signed_bytes_limits(REQUEST_LIMITS)))
    except (BindingError, UnsafeXML, NotAnAuthnRequest) as exc:
        return request_error([finding_for(exc)])
    findings = check_authn_request(_context(idp, authn, registered.sp if registered else None, signature))
    acs = resolve_acs(authn, registered.sp) if registered else None
    if registered is None or acs is None or any(f.severity is Severity.ERROR for f in findings):
        return request_error(findings)
    if not flow.acs_allowed(idp, acs.location):
        return request_error(findings)  # the REQ rules already name the non-https ACS
    pending = flow.Pending(
        sp=registered.entity_id, acs=acs.location, request_id=authn.id, relay_state=message.relay_state,
        nameid_format=authn.nameid_format, force_authn=authn.force_authn, is_passive=authn.is_passive,
    )
    return _continue(idp, registered, pending)


def _context(
    idp: IdPState, authn: AuthnRequest, sp: ServiceProvider | None, signature: SignatureCheck
) -> RequestContext:
    server = idp.settings.server
    return RequestContext(
        request=authn,
        sp=sp,
        idp_entity_id=idp.entity_id,
        sso_urls=idp.sso_urls,
        now=idp.clock(),
        signature=signature,
        skew_seconds=server.clock_skew,
        supported_nameid_formats=SUPPORTED_NAMEID_FORMATS,
        idp_requires_signed=server.require_signed_requests,
        allow_http_localhost=server.dev_mode,
        registered_entity_ids=idp.registry.entity_ids if sp is None else (),  # named only for an unknown issuer
    )


def _continue(idp: IdPState, sp: RegisteredSP, pending: flow.Pending) -> Response:
    # Automation first: a persona armed through the API for this SP, or an auto_login persona.
    maybe_armed = None if pending.is_passive else arming.maybe_armed(idp.store)  # one read for both takes
    armed = arming.take_login(idp.store, sp.entity_id, armed=True) if maybe_armed else None
    auto = next((p for p in idp.personas.values() if p.auto_login), None)
    chosen = idp.personas.get(armed[0]) if armed else auto
    existing = flow.current_session(idp)
    if chosen is not None and not pending.is_passive:
        sid, session = flow.start_session(idp, chosen)
        return signed_in(idp, sid, session, sp, pending, chosen, maybe_armed=maybe_armed,
                         edits=armed[1] if armed else None)
    if existing and not pending.force_authn:
        sid, session = existing
        persona = idp.personas.get(session.persona)
        if persona is not None:
            return signed_in(idp, sid, session, sp, pending, persona, new_cookie=False, maybe_armed=maybe_armed)
    if pending.is_passive:
        return flow.post_form(idp, existing[0] if existing else None, pending, sp, flow.no_passive(idp, sp, pending),
                              label="NoPassive status")
    token = flow.save_pending(idp, pending)
    return Response(status=303, headers={"Location": f"/login?request={token}"})


def same_site_post() -> bool:
    """False for a form posted from another site (login CSRF): browsers send Sec-Fetch-Site and
    Origin; a request without either (a script, curl) is let through."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "same-site", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == "null" or origin == request.host_url.rstrip("/") or (
        origin == state().settings.server.base_url.rstrip("/"))


def signed_in(idp: IdPState, sid: str, session: flow.Session, sp: RegisteredSP, pending: flow.Pending,
              persona: Persona, *, new_cookie: bool = True, picked: tuple[Fault, ...] = (),
              maybe_armed: bool | None = None, edits: Edits | None = None) -> Response:
    """The response for `persona`, with the faults that apply to this one response: the persona's own
    (settings), `picked` on the login page, and one armed through the API for this SP and persona
    (taken once, and only when it can apply here: one meant for another SP stays armed).
    `edits` (the login page's edit form, or next-login's overrides) change this one response only.
    `new_cookie`: the session `sid` was started for this response, and is stored with it.
    `maybe_armed`: :func:`arming.maybe_armed`'s answer for this request, if it was asked already."""
    edits = edits or Edits()
    edited = edits.apply(persona)
    chosen = edits.faults_with(persona, picked)
    problem = flow.fault_problem(idp, sp, edited, chosen)
    if problem is not None:
        log.warning("fault refused for %s: %s", sp.entity_id, problem)
        return render_page("fault_refused.html", status=400, problem=problem, sp=sp.entity_id)
    chosen += arming.take_faults(idp.store, sp.entity_id, persona.id, chosen,
                                 lambda faults: flow.fault_problem(idp, sp, edited, faults) is None,
                                 armed=maybe_armed)
    changes = edits.changes(persona)
    label = f"signed in as {persona.id}" + (f" · faults: {', '.join(f.id for f in chosen)}" if chosen else "")
    name = None  # a replay issues no new NameID: the one it repeats was recorded when first sent
    if chosen and chosen[0].id == "replay":
        earlier = request.cookies.get(flow.SESSION_COOKIE)
        xml = flow.previous_response(idp, sid, sp, persona) or flow.previous_response(idp, earlier, sp, persona)
        if xml is None:
            return render_page("fault_refused.html", status=400, sp=sp.entity_id, problem=(
                f"fault 'replay' sends this browser's previous response for {persona.id} to this SP again, and there "
                "is none yet: sign in once without it first"))
    else:
        name = flow.issued_name(idp, sp, pending, edited, session, edits)
        xml = flow.persona_response(idp, sp, pending, edited, session, chosen, name=name)
    case = replace(edits, faults=tuple(f.id for f in chosen if f.id not in persona.faults))
    response = flow.post_form(idp, sid, pending, sp, xml, label=label, persona=persona,
                              started=session if new_cookie else None, issued=name, edits=changes,
                              test_case=case.test_case(persona, sp.entity_id))
    if new_cookie:
        set_session_cookie(idp, response, sid)
    return response


def set_session_cookie(idp: IdPState, response: Response, sid: str) -> None:
    response.set_cookie(
        flow.SESSION_COOKIE, sid, max_age=idp.settings.server.session_lifetime, httponly=True, samesite="Lax",
        secure=idp.settings.server.base_url.startswith("https://"),
    )


def render_page(template: str, status: int = 200, **context: object) -> Response:
    return Response(render_template(template, **context), status=status, mimetype="text/html")
