"""The IdP's own pages: index, ``/metadata``, ``/healthz``, ``/debug``, ``/unsolicited``."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from lxml import etree

from metadata.saml import BINDING_POST, BINDING_REDIRECT, EMAIL, PERSISTENT, TRANSIENT, UNSPECIFIED
from metadata.signing import sign, signature_method_for
from metadata.store import StoreUnavailable
from metadata.write import idp_metadata_xml
from metadata.xml import MESSAGE_LIMITS, parse_untrusted

from . import flow
from .problem import is_api_request, problem
from .sso import render_page, request_error, same_site_post
from .state import SECRET, IdPState, state

blueprint = Blueprint("pages", __name__)
log = logging.getLogger("idp")

RETRY_AFTER = 5
"""Seconds a client is told to wait when the store is unavailable."""


def content_security_policy(form_action: str = "'self'") -> str:
    """The CSP of every IdP page; `form_action` widens where its forms may go (and redirect)."""
    return (f"default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; "
            "base-uri 'none'")


def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", content_security_policy())
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


@blueprint.get("/")
def index() -> Response:
    idp = state()
    return render_page("index.html", idp=idp, sps=list(idp.registry), personas=list(idp.personas.values()))


def metadata_document(idp: IdPState) -> bytes:
    server = idp.settings.server
    element = idp_metadata_xml(
        idp.entity_id,
        sso_urls={BINDING_REDIRECT: idp.url("/sso"), BINDING_POST: idp.url("/sso")},
        slo_urls={BINDING_REDIRECT: idp.url("/slo"), BINDING_POST: idp.url("/slo")},
        certificates=idp.keys.all_certificates(),
        nameid_formats=[EMAIL, PERSISTENT, TRANSIENT, UNSPECIFIED],
        want_authn_requests_signed=server.require_signed_requests,
        document_id=idp.new_id(),
    )
    if server.sign_metadata:
        sign(element, idp.key.key_pem, idp.key.cert_pem, signature_method=signature_method_for(idp.key.key_pem))
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


@blueprint.get("/metadata")
def metadata() -> Response:
    return Response(metadata_document(state()), mimetype="application/samlmetadata+xml")


@blueprint.get("/healthz")
def healthz() -> tuple[Response, int]:
    idp = state()
    try:
        idp.store.get(*SECRET)
    except StoreUnavailable as exc:
        return jsonify(status="unavailable", store=str(exc)), 503
    return jsonify(status="ok", entity_id=idp.entity_id, sps=len(idp.registry)), 200


def store_unavailable(exc: StoreUnavailable) -> Response:
    """Any request while the store is down (Redis gone, SQLite file unusable): a 503 that says
    so, never a 500: no response was sent, and the login works once the store is back."""
    log.error("store unavailable on %s %s: %s", request.method, request.path, exc)
    if is_api_request():
        response = problem(503, f"the IdP's store is unavailable: {exc}", retry_after=RETRY_AFTER)
    else:
        response = render_page("unavailable.html", status=503, reason=str(exc))
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


# The debug page's one script: show the "Copy as a test case" buttons and copy on a click. Without
# a script (or a clipboard) the buttons stay hidden and the JSON is there to select.
COPY_SCRIPT = ('if(navigator.clipboard){for(const b of document.querySelectorAll("button[data-copy]")){b.hidden=false;'
               'b.addEventListener("click",()=>navigator.clipboard.writeText(document.getElementById(b.dataset.copy)'
               '.textContent).then(()=>{b.textContent="Copied";}));}}')


@blueprint.get("/debug")
def debug() -> Response:
    """The last responses posted through this browser: the exact XML sent, the SP, the persona, the
    edits, and the ``next-login`` JSON that gives the same response again."""
    idp = state()
    existing = flow.current_session(idp)
    sent = flow.sent(idp, existing[0]) if existing else []
    response = render_page("debug.html", records=[(message, _pretty(message.xml)) for message in sent],
                           copy_script=COPY_SCRIPT)
    response.headers["Content-Security-Policy"] = (
        f"{content_security_policy()}; script-src '{flow.script_hash(COPY_SCRIPT)}'")
    return response


def _pretty(xml: str) -> str:
    # Our own response, but shown back: parsed the one way, re-indented, escaped by the template.
    tree = parse_untrusted(xml.encode(), MESSAGE_LIMITS)
    etree.indent(tree)
    return etree.tostring(tree, encoding="unicode")


@blueprint.route("/unsolicited", methods=["GET", "POST"])
def unsolicited() -> Response:
    """An IdP-initiated response (no InResponseTo). The portal accepts only SP-initiated logins:
    this exists so that an SP can prove it rejects such a response."""
    idp = state()
    if request.method == "GET":
        return render_page("unsolicited.html", sps=list(idp.registry), personas=list(idp.personas.values()))
    if not same_site_post():
        return request_error([], status=403)
    sp = idp.registry.get(request.form.get("sp"))
    persona = idp.personas.get(request.form.get("persona", ""))
    if sp is None or persona is None:
        return request_error([], status=400)
    pending = flow.Pending(sp=sp.entity_id, acs=flow.default_acs(sp), request_id=None, relay_state=None,
                           nameid_format=None, force_authn=False, is_passive=False)
    if not flow.acs_allowed(idp, pending.acs):
        return request_error([], status=400)
    # A one-off session: an unsolicited response never signs this browser in at the IdP.
    xml = flow.persona_response(idp, sp, pending, persona, flow.new_session(idp, persona))
    return flow.post_form(idp, None, pending, sp, xml, label=f"unsolicited, as {persona.id}")
