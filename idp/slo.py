"""``/slo``: SP-initiated single logout (SAML Core §3.7), HTTP-Redirect and HTTP-POST.

A LogoutRequest signed with a certificate of its SP ends the IdP session at once. One that cannot
be authenticated (its SP has no signing certificate) ends nothing by itself: the NameID is no
secret and any site can send the request (logout CSRF), so the person is asked on a same-origin
page whose form posts a CSRF token to ``/slo/confirm``. Either way the SP then gets a signed
LogoutResponse at its registered SingleLogoutService.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, Response, request
from lxml import etree

from metadata.bindings import (
    BindingError,
    PostMessage,
    RedirectMessage,
    decode_post,
    decode_redirect,
    encode_redirect,
)
from metadata.errors import UnsafeXML
from metadata.saml import BINDING_POST, BINDING_REDIRECT, SAML, SAMLP, SUCCESS
from metadata.signing import sign, signature_method_for
from metadata.write import xs_datetime
from metadata.xml import text_of
from validator.checks.request import finding_for_binding_error, finding_for_unsafe_request, request_signature

from . import flow
from .assertion import serialize, valid_in_response_to
from .csrf import FIELD, csrf_token, csrf_valid
from .pages import content_security_policy
from .registry import RegisteredSP
from .sso import render_page, request_error, same_site_post
from .state import IdPState, secret_token, state

blueprint = Blueprint("slo", __name__)
log = logging.getLogger("idp")

WAITING = "logout"
"""Store namespace of the logouts waiting for the person's confirmation."""


@dataclass(frozen=True)
class WaitingLogout:
    """An unauthenticated LogoutRequest waiting for the person's confirmation."""

    sp: str
    request_id: str | None
    relay_state: str | None


@blueprint.route("/slo", methods=["GET", "POST"])
def slo() -> Response:
    idp = state()
    try:
        message = (decode_redirect(request.query_string, "SAMLRequest") if request.method == "GET"
                   else decode_post(request.get_data(cache=False), "SAMLRequest"))
    except BindingError as exc:
        return request_error([finding_for_binding_error(exc)])
    except UnsafeXML as exc:
        return request_error([finding_for_unsafe_request(exc)])
    root = message.tree.getroot()
    if root.tag != f"{{{SAMLP}}}LogoutRequest":
        return render_page("expired.html", status=400)
    issuer_element = root.find(f"{{{SAML}}}Issuer")
    sp = idp.registry.get(text_of(issuer_element).strip() if issuer_element is not None else None)
    if sp is None:
        return _refused("the LogoutRequest's Issuer is not a registered service provider", status=400)
    existing = flow.current_session(idp)
    refusal = _refusal(idp, message, root, sp, existing)
    if refusal is not None:
        return _refused(refusal, status=400)
    request_id, relay_state = root.get("ID"), message.relay_state
    if existing is not None and not sp.sp.signing_certificates:
        return _confirmation(idp, sp, existing, request_id, relay_state)
    if existing is not None:
        flow.end_session(idp, existing[0])
    return _answer(idp, sp, request_id, relay_state)


@blueprint.post("/slo/confirm")
def confirm() -> Response:
    """The person confirmed an unauthenticated LogoutRequest on the page of :func:`_confirmation`."""
    idp = state()
    existing = flow.current_session(idp)
    sid, waiting = existing[0] if existing else "", request.form.get("logout", "")
    if not same_site_post() or not csrf_valid(idp, sid, request.form.get(FIELD, ""), f"slo-confirm {waiting}"):
        return _refused("the confirmation did not come from this browser's sign-out page", status=403)
    record = idp.get_record(WAITING, waiting, WaitingLogout, take=True) if waiting else None
    sp = idp.registry.get(record.sp) if record else None
    if record is None or sp is None:
        return _refused("this sign-out request was already answered, or it expired", status=403)
    flow.end_session(idp, sid)
    return _answer(idp, sp, record.request_id, record.relay_state)


def _refused(reason: str, *, status: int) -> Response:
    # Profiles §4.4.3.1: a LogoutRequest must be authenticated; an unproven one ends nothing.
    log.warning("LogoutRequest refused: %s", reason)
    return render_page("logout_refused.html", status=status, reason=reason)


def _refusal(idp: IdPState, message: RedirectMessage | PostMessage, root: etree._Element,
             sp: RegisteredSP, existing: tuple[str, flow.Session] | None) -> str | None:
    """Why this LogoutRequest must not be answered at all, or None when it may."""
    if sp.sp.signing_certificates:
        checked = request_signature(message, sp.sp)
        if checked.status != "verified":
            return f"the LogoutRequest's signature was not verified: {checked.message}"
    if existing is not None:
        persona = idp.personas.get(existing[1].persona)
        nameid = root.find(f"{{{SAML}}}NameID")
        if persona is None or nameid is None or text_of(nameid).strip() != persona.nameid:
            return "the LogoutRequest names another user than the one signed in"
    return None


def _confirmation(idp: IdPState, sp: RegisteredSP, existing: tuple[str, flow.Session], request_id: str | None,
                  relay_state: str | None) -> Response:
    """The page that asks before an unauthenticated LogoutRequest ends the session: the request
    waits in the store, and only this browser's form (its CSRF token) can take it."""
    waiting = secret_token()
    idp.put_record(WAITING, waiting, WaitingLogout(sp.entity_id, request_id, relay_state), flow.PENDING_TTL)
    persona = idp.personas.get(existing[1].persona)
    response = render_page("logout_confirm.html", sp=sp.entity_id, persona=persona.nameid if persona else None,
                           logout=waiting, field=FIELD, csrf=csrf_token(idp, existing[0], f"slo-confirm {waiting}"))
    # The confirmation posts here and is answered by a redirect to the SP: a form target as well.
    origins = sorted({f"{p.scheme}://{p.netloc}" for _, url in _endpoints(idp, sp) for p in [urlsplit(url)]})
    response.headers["Content-Security-Policy"] = content_security_policy(" ".join(["'self'", *origins]))
    response.headers["Cache-Control"] = "no-store"
    return response


def _endpoints(idp: IdPState, sp: RegisteredSP) -> list[tuple[str, str]]:
    """The SP's SingleLogoutService endpoints a LogoutResponse may go to (SECURITY.md §5)."""
    return [(b, u) for b, u in sp.slo if flow.acs_allowed(idp, u)]


def _answer(idp: IdPState, sp: RegisteredSP, request_id: str | None, relay_state: str | None) -> Response:
    """The signed LogoutResponse to the SP's SingleLogoutService, Redirect preferred; the session cookie goes."""
    allowed = _endpoints(idp, sp)
    if not allowed:
        response = render_page("signed_out.html")
    else:
        binding, location = next(((b, u) for b, u in allowed if b == BINDING_REDIRECT), allowed[0])
        if binding == BINDING_REDIRECT:
            # Bindings §3.4.4.1: on HTTP-Redirect the query string is signed, never the XML.
            xml = _logout_response(idp, location, request_id, sign_xml=False)
            url = encode_redirect(xml, param="SAMLResponse", destination=location, relay_state=relay_state,
                                  key_pem=idp.key.key_pem, sig_alg=signature_method_for(idp.key.key_pem))
            response = Response(status=302, headers={"Location": url})
        elif binding == BINDING_POST:
            xml = _logout_response(idp, location, request_id, sign_xml=True)
            pending = flow.Pending(sp=sp.entity_id, acs=location, request_id=None, relay_state=relay_state,
                                   nameid_format=None, force_authn=False, is_passive=False)
            response = flow.post_form(idp, None, pending, sp, xml, label="LogoutResponse", param="SAMLResponse")
        else:
            response = render_page("signed_out.html")
    response.delete_cookie(flow.SESSION_COOKIE)
    return response


def _logout_response(idp: IdPState, destination: str, in_response_to: str | None, *, sign_xml: bool) -> bytes:
    response = etree.Element(f"{{{SAMLP}}}LogoutResponse", nsmap={"samlp": SAMLP, "saml": SAML})
    response.set("ID", idp.new_id())
    response.set("Version", "2.0")
    response.set("IssueInstant", xs_datetime(idp.clock()))
    response.set("Destination", destination)
    if valid_in_response_to(in_response_to):
        response.set("InResponseTo", in_response_to or "")
    etree.SubElement(response, f"{{{SAML}}}Issuer").text = idp.entity_id
    status = etree.SubElement(response, f"{{{SAMLP}}}Status")
    etree.SubElement(status, f"{{{SAMLP}}}StatusCode").set("Value", SUCCESS)
    if sign_xml:
        sign(response, idp.key.key_pem, idp.key.cert_pem, after=f"{{{SAML}}}Issuer",
             signature_method=signature_method_for(idp.key.key_pem))
    return serialize(response)
