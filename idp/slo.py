"""``/slo``: SP-initiated single logout (SAML Core §3.7), HTTP-Redirect and HTTP-POST.

A LogoutRequest signed with a certificate of its SP ends the IdP session at once. One that is not
signed ends nothing by itself: the NameID is no secret and any site can send the request (logout
CSRF), so the person is asked on a same-origin page whose form posts a CSRF token to
``/slo/confirm``. An SP whose metadata says it signs its requests (``AuthnRequestsSigned``), or any
SP when the IdP requires signed requests, must sign: its unsigned LogoutRequest is refused, and so
is every signature that does not verify. An SP that publishes a signing key but does not sign
(Shibboleth with ``signing="false"``, samlify by default) is asked about like one without a key.

The request must name what this browser's IdP session gave that SP (:class:`flow.IssuedName`):
the NameID's value and Format, its qualifiers when the request carries them, and the SessionIndex
when it gives any; anything else is refused. Either way the SP then gets a signed LogoutResponse at
its registered SingleLogoutService.
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
from metadata.saml import BINDING_POST, BINDING_REDIRECT, SAML, SAMLP, SUCCESS, UNSPECIFIED
from metadata.signing import sign, signature_method_for
from metadata.write import xs_datetime
from metadata.xml import REQUEST_LIMITS, parse_untrusted, signed_bytes_limits, text_of
from validator.checks.request import (
    SignatureCheck,
    finding_for_binding_error,
    finding_for_unsafe_request,
    request_signature,
)

from . import flow
from .assertion import serialize, valid_in_response_to
from .csrf import FIELD, csrf_token, csrf_valid
from .pages import content_security_policy
from .registry import RegisteredSP
from .sso import render_page, request_error, same_site_post
from .state import IdPState, secret_token, state

blueprint = Blueprint("slo", __name__)
log = logging.getLogger("idp")

ANOTHER_USER = "the LogoutRequest names another user than the one signed in"
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
    try:
        return _logout(idp, message)
    except UnsafeXML as exc:  # the signed bytes, parsed again
        return request_error([finding_for_unsafe_request(exc)])


def _logout(idp: IdPState, message: RedirectMessage | PostMessage) -> Response:
    """Answer a decoded LogoutRequest: refuse it, ask the person, or end the session at once."""
    root = message.tree.getroot()
    if root.tag != f"{{{SAMLP}}}LogoutRequest":
        return render_page("expired.html", status=400)
    issuer_element = root.find(f"{{{SAML}}}Issuer")
    sp = idp.registry.get(text_of(issuer_element).strip() if issuer_element is not None else None)
    if sp is None:
        return _refused("the LogoutRequest's Issuer is not a registered service provider", status=400)
    checked = request_signature(message, sp.sp)
    refusal = _signature_refusal(idp, sp, checked)
    if refusal is not None:
        return _refused(refusal, status=400)
    if checked.signed_xml is not None:  # a verified POST signature: read what was signed (SECURITY.md §2)
        root = parse_untrusted(checked.signed_xml, signed_bytes_limits(REQUEST_LIMITS)).getroot()
    existing = flow.current_session(idp)
    refusal = _name_refusal(idp, root, sp, existing[0]) if existing is not None else None
    if refusal is not None:
        return _refused(refusal, status=400)
    request_id, relay_state = root.get("ID"), message.relay_state
    if existing is not None and checked.status != "verified":
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


def must_sign(idp: IdPState, sp: RegisteredSP) -> bool:
    """Whether this SP's requests must be signed: its metadata says it signs them
    (``AuthnRequestsSigned``), or the IdP requires signed requests from every SP."""
    return sp.sp.authn_requests_signed or idp.settings.server.require_signed_requests


def _signature_refusal(idp: IdPState, sp: RegisteredSP, checked: SignatureCheck) -> str | None:
    """Why this LogoutRequest's signature (or its lack) forbids answering it at all; None when it
    may be answered: verified, or unsigned (or signed for an SP without a key) from an SP that
    need not sign, which only asks the person (:func:`_confirmation`)."""
    if checked.status == "verified":
        return None
    if checked.status == "missing":
        if must_sign(idp, sp):
            return (f"the LogoutRequest is not signed, and {sp.entity_id} must sign its requests (its metadata says "
                    "AuthnRequestsSigned=\"true\", or this IdP requires signed requests)")
        return None
    if checked.status == "not-checked" and not sp.sp.signing_certificates and not must_sign(idp, sp):
        return None  # signed, but the SP has no key to check it with: as good as unsigned
    return f"the LogoutRequest's signature was not verified: {checked.message}"


def _name_refusal(idp: IdPState, root: etree._Element, sp: RegisteredSP, sid: str) -> str | None:
    """Why this LogoutRequest does not name what the IdP session `sid` gave `sp` (Core §3.7.1), or
    None when it does: one of the NameIDs the session gave that SP (:func:`_nameid_mismatch`; a
    transient one is new in every response), and its SessionIndex when the request gives any."""
    issued = flow.issued_to(idp, sid, sp.entity_id)
    if not issued:
        return f"{ANOTHER_USER}: this browser's IdP session gave {sp.entity_id} no NameID"
    nameid = root.find(f"{{{SAML}}}NameID")
    if nameid is None:
        return f"{ANOTHER_USER}: it carries no NameID"
    named = [name for name in issued if _nameid_mismatch(idp, nameid, sp, name) is None]
    if not named:
        return f"{ANOTHER_USER}: {_nameid_mismatch(idp, nameid, sp, issued[0])}"
    # One NameID may have gone out with several SessionIndexes (a product whose SessionIndex is the
    # assertion's ID gives a new one in every response): any of them names this session.
    indexes = [text_of(e).strip() for e in root.findall(f"{{{SAMLP}}}SessionIndex")]
    if indexes and not any(name.session_index in indexes for name in named):
        return (f"the LogoutRequest names another session than the one signed in: SessionIndex "
                f"{', '.join(repr(i) for i in indexes)}, while this browser's IdP session is "
                f"{named[0].session_index!r}")
    return None


def _nameid_mismatch(idp: IdPState, nameid: etree._Element, sp: RegisteredSP, issued: flow.IssuedName) -> str | None:
    """How `nameid` differs from the one `issued` to `sp`, or None. The value must be equal; the
    Format too, unless the request leaves it unspecified (Core §8.3.1: its interpretation is left to
    the implementation); a qualifier only when given, against the one issued or, when none was, its
    default (Core §8.3.7: the IdP, and that SP)."""
    value, given_format = text_of(nameid).strip(), nameid.get("Format") or UNSPECIFIED
    if value != issued.value or given_format not in (UNSPECIFIED, issued.format):
        return (f"NameID {value!r} (Format {given_format}), while this browser's IdP session last gave "
                f"{sp.entity_id} the NameID {issued.value!r} (Format {issued.format})")
    qualifiers = (("NameQualifier", issued.name_qualifier or idp.entity_id),
                  ("SPNameQualifier", issued.sp_name_qualifier or sp.entity_id))
    for attribute, expected in qualifiers:
        given = nameid.get(attribute)
        if given is not None and given != expected:
            return f"its NameID's {attribute} {given!r} is not {expected!r}, the one this NameID was issued with"
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
