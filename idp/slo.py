"""``/slo``: SP-initiated single logout (SAML Core §3.7), HTTP-Redirect and HTTP-POST.

The IdP session ends; a signed LogoutResponse goes back to the SP's SingleLogoutService.
"""

from __future__ import annotations

import logging
from typing import Any

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
from metadata.model import BINDING_POST, BINDING_REDIRECT
from metadata.read import SAML
from metadata.signing import sign, signature_method_for
from metadata.write import xs_datetime
from metadata.xml import text_of
from validator.checks.request import finding_for_binding_error, finding_for_unsafe_request, request_signature

from . import flow
from .assertion import SAMLP, SUCCESS, serialize, valid_in_response_to
from .registry import RegisteredSP
from .sso import render_page, request_error
from .state import IdPState, state

blueprint = Blueprint("slo", __name__)
log = logging.getLogger("idp")


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
    existing = flow.current_session(idp)
    refusal = _refusal(idp, message, root, sp, existing)
    if refusal is not None:
        # Profiles §4.4.3.1: a LogoutRequest must be authenticated; an unproven one ends nothing.
        log.warning("LogoutRequest refused: %s", refusal)
        return render_page("logout_refused.html", status=400, reason=refusal)
    if existing:
        flow.end_session(idp, existing[0])
    allowed = [(b, u) for b, u in (sp.slo if sp else ()) if flow.acs_allowed(idp, u)]
    if sp is None or not allowed:
        response = render_page("signed_out.html")
    else:
        binding, location = next(((b, u) for b, u in allowed if b == BINDING_REDIRECT), allowed[0])
        if binding == BINDING_REDIRECT:
            # Bindings §3.4.4.1: on HTTP-Redirect the query string is signed, never the XML.
            xml = _logout_response(idp, location, root.get("ID"), sign_xml=False)
            url = encode_redirect(xml, param="SAMLResponse", destination=location, relay_state=message.relay_state,
                                  key_pem=idp.key.key_pem, sig_alg=signature_method_for(idp.key.key_pem))
            response = Response(status=302, headers={"Location": url})
        elif binding == BINDING_POST:
            xml = _logout_response(idp, location, root.get("ID"), sign_xml=True)
            pending = flow.Pending(sp=sp.entity_id, acs=location, request_id=None, relay_state=message.relay_state,
                                   nameid_format=None, force_authn=False, is_passive=False)
            response = flow.post_form(idp, None, pending, sp, xml, label="LogoutResponse", param="SAMLResponse")
        else:
            response = render_page("signed_out.html")
    response.delete_cookie(flow.SESSION_COOKIE)
    return response


def _refusal(idp: IdPState, message: RedirectMessage | PostMessage, root: etree._Element,
             sp: RegisteredSP | None, existing: tuple[str, dict[str, Any]] | None) -> str | None:
    """Why this LogoutRequest must not end the session, or None when it may."""
    if sp is None:
        return "the LogoutRequest's Issuer is not a registered service provider"
    if sp.sp.signing_certificates:
        checked = request_signature(message, sp.sp)
        if checked.status != "verified":
            return f"the LogoutRequest's signature was not verified: {checked.message}"
    if existing is not None:
        persona = idp.personas.get(existing[1]["persona"])
        nameid = root.find(f"{{{SAML}}}NameID")
        if persona is None or nameid is None or text_of(nameid).strip() != persona.nameid:
            return "the LogoutRequest names another user than the one signed in"
    return None


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
