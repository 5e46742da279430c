"""The SP-initiated flow between the blueprints: pending requests, IdP sessions, responses.

A *pending request* is an accepted AuthnRequest waiting for a login; it is taken from the
store exactly once, so a login started in one gunicorn worker completes in another and can
never be completed twice. An *IdP session* (cookie ``idp_session``) gives SSO across SPs
until logout or ForceAuthn. Each IdP session keeps the last messages posted to its browser
(:class:`Sent`): ``/debug`` shows them, and the ``replay`` fault sends one again. It also keeps,
per SP, the last NameIDs and the SessionIndex it gave that SP (:class:`IssuedName`): a transient
NameID is random and a persistent one pairwise, so the SP's LogoutRequest is matched against those
records (``idp/slo.py``), never against the persona's own nameid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from flask import Response, has_request_context, render_template, request

from metadata.saml import BINDING_POST, EMAIL, NO_PASSIVE, PERSISTENT, RESPONDER, TRANSIENT, UNSPECIFIED
from metadata.service_provider import default_acs as metadata_default_acs
from metadata.signing import signature_method_for

from .assertion import ResponseSpec, build_response, serialize
from .edits import Edits
from .faults import Fault, Plan, Situation, build, claim_roles, conflict, why_not
from .registry import RegisteredSP
from .settings import Persona
from .state import IdPState, record_item, secret_token, shared_secret

log = logging.getLogger("idp")

SESSION_COOKIE = "idp_session"
PENDING_TTL = 600.0
SENT_KEPT = 10
"""Messages kept per IdP session (:class:`Sent`)."""


@dataclass(frozen=True)
class Pending:
    """An accepted AuthnRequest: where to answer, and what was asked."""

    sp: str
    acs: str
    request_id: str | None
    relay_state: str | None
    nameid_format: str | None
    force_authn: bool
    is_passive: bool


@dataclass(frozen=True)
class Session:
    """An IdP session: who signed in, when, and the SessionIndex of its assertions."""

    persona: str
    authn_instant: str
    """ISO 8601, as the store keeps it."""
    session_index: str

    @property
    def authn_datetime(self) -> datetime:
        return datetime.fromisoformat(self.authn_instant)


@dataclass(frozen=True)
class IssuedName:
    """The NameID an IdP session gave one SP (SAML Core §2.2.2), with the SessionIndex of that
    assertion: what the SP's LogoutRequest must name (Core §3.7.1). Qualifiers are None when the
    NameID was issued without them (their defaults: the IdP, and that SP)."""

    value: str
    format: str
    name_qualifier: str | None
    sp_name_qualifier: str | None
    session_index: str


ISSUED = "issued"
"""Store namespace of the :class:`IssuedName` lists, one per IdP session and SP."""
ISSUED_KEPT = 5
"""NameIDs kept per IdP session and SP: a transient one is new in every response, and an SP may
still hold an earlier one (a login it did not complete, a passive check in another tab)."""


def _issued_key(sid: str, sp: str) -> str:
    return f"{sid} {sp}"  # a session ID is URL-safe base64: never a space


def issued_to(idp: IdPState, sid: str, sp: str) -> list[IssuedName]:
    """The NameIDs the IdP session `sid` last gave the SP `sp` (at most ISSUED_KEPT), newest first."""
    raw = idp.store.get(ISSUED, _issued_key(sid, sp)) if sid else None
    return [IssuedName(**kept) for kept in json.loads(raw)["names"]] if raw else []


@dataclass(frozen=True)
class Sent:
    """One message posted to an SP through this browser in an IdP session."""

    at: str
    sp: str
    acs: str
    label: str
    xml: str
    persona: str | None = None
    """The persona whose response this is; None for a status (NoPassive)."""
    edits: list[str] | None = None
    """What was edited for this one response (:meth:`idp.edits.Edits.changes`); None or []: nothing."""
    test_case: str | None = None
    """The ``next-login`` JSON that gives this response again (:meth:`idp.edits.Edits.test_case`)."""


def save_pending(idp: IdPState, pending: Pending) -> str:
    token = secret_token()
    idp.put_record("pending", token, pending, PENDING_TTL)
    return token


def take_pending(idp: IdPState, token: str) -> Pending | None:
    return idp.get_record("pending", token, Pending, take=True) if token else None


def peek_pending(idp: IdPState, token: str) -> Pending | None:
    return idp.get_record("pending", token, Pending) if token else None


def current_session(idp: IdPState) -> tuple[str, Session] | None:
    """This browser's IdP session (its ID and record), when it has one."""
    sid = request.cookies.get(SESSION_COOKIE, "")
    session = idp.get_record("session", sid, Session) if sid else None
    return (sid, session) if session else None


def new_session(idp: IdPState, persona: Persona) -> Session:
    # The SessionIndex in the vendor's form, kept as sent so that a LogoutRequest naming it matches.
    return Session(persona=persona.id, authn_instant=idp.clock().isoformat(),
                   session_index=idp.vendor.shape.ids(idp.new_id(), "session"))


def start_session(idp: IdPState, persona: Persona) -> tuple[str, Session]:
    """A new IdP session for `persona`, not stored yet: :func:`post_form` stores it (`started`)
    together with the first response it carries, in one write, right before its cookie is set."""
    return secret_token(), new_session(idp, persona)


def end_session(idp: IdPState, sid: str) -> None:
    idp.store.delete("session", sid)
    for entity_id in idp.registry.entity_ids:  # what a session gave each SP goes with it (at most a few hundred)
        idp.store.delete(ISSUED, _issued_key(sid, entity_id))


def issued_name(idp: IdPState, sp: RegisteredSP, pending: Pending, persona: Persona, session: Session,
                edits: Edits | None = None) -> IssuedName:
    """The NameID the response to `pending` gives `persona` at `sp` (a transient one is drawn here).
    An edited NameID or format (`edits`) is sent as given: a test of what the SP does with it."""
    # Core §3.4.1.1: an explicit NameIDPolicy Format wins; then the SP's, the persona's, the vendor's.
    nameid_format = (edits.nameid_format if edits and edits.nameid_format else pending.nameid_format
                     if pending.nameid_format not in (None, UNSPECIFIED) else (
                         sp.options.nameid_format or persona.nameid_format or idp.vendor.nameid_format))
    # A product whose SessionIndex is the assertion's ID (Entra ID, AD FS, Google, PingFederate) gets
    # one per response, drawn here and kept with the NameID, so that a LogoutRequest naming it matches.
    shape = idp.vendor.shape
    index = shape.ids(idp.new_id(), "assertion") if shape.session_index_is_assertion_id else session.session_index
    value = edits.nameid if edits and edits.nameid is not None else nameid_value(idp, persona, sp.entity_id,
                                                                                 nameid_format)
    return IssuedName(value=value, format=nameid_format,
                      name_qualifier=None, sp_name_qualifier=None, session_index=index)


def persona_response(
    idp: IdPState, sp: RegisteredSP, pending: Pending, persona: Persona, session: Session,
    faults: Sequence[Fault] = (), name: IssuedName | None = None,
) -> bytes:
    """The signed (and, if the SP wants it, encrypted) response for a signed-in persona, shaped by
    the vendor profile and broken by `faults` (checked with :func:`fault_problem` beforehand).
    `name`: its NameID, from :func:`issued_name` (drawn here when not given)."""
    options, vendor = sp.options, idp.vendor
    key = idp.key  # read once: it is read from the key folder
    name = name or issued_name(idp, sp, pending, persona, session)
    claims = vendor.claims(persona, entity_id=idp.entity_id)
    if options.name_format is not None:
        claims = tuple(replace(claim, name_format=options.name_format) for claim in claims)
    spec = ResponseSpec(
        issuer=idp.entity_id,
        issuer_format=vendor.issuer_format,
        destination=pending.acs,
        audience=sp.entity_id,
        in_response_to=pending.request_id,
        nameid=name.value,
        nameid_format=name.format,
        session_index=name.session_index,
        assertion_id=name.session_index if vendor.shape.session_index_is_assertion_id else None,
        claims=claims,
        lifetime_seconds=idp.settings.server.assertion_lifetime or vendor.shape.lifetime,
        sign=options.sign or vendor.sign,
        signature_method=signature_method_for(key.key_pem),
        authn_instant=session.authn_datetime,
        shape=vendor.shape,
        address=request.remote_addr if has_request_context() else None,  # the browser's, for Shibboleth
    )
    plan = Plan(spec=spec, now=idp.clock(), key=key, new_id=idp.new_id, uri_form=vendor.uri_form,
                encrypt_for=sp.encryption_certificate if options.encrypt else None,
                roles=claim_roles(persona.claims, idp.crm))
    return serialize(build(plan, faults))


def fault_problem(idp: IdPState, sp: RegisteredSP, persona: Persona | None, faults: Sequence[Fault]) -> str | None:
    """Why `faults` cannot be sent together to this SP for this persona; None when they can. Without
    a persona, only what the SP decides is judged."""
    situation = Situation(
        signed=(sp.options.sign or idp.vendor.sign) != "none",
        encrypted=sp.options.encrypt and sp.encryption_certificate is not None,
        sp_has_encryption_key=sp.encryption_certificate is not None,
        roles=claim_roles(persona.claims, idp.crm) if persona is not None else None,
    )
    return conflict(faults) or next((problem for chosen in faults if (problem := why_not(chosen, situation))), None)


def sent(idp: IdPState, sid: str | None) -> list[Sent]:
    """The messages last posted through this browser in the IdP session `sid`, newest first."""
    raw = idp.store.get("debug", sid) if sid else None
    return [Sent(**kept) for kept in json.loads(raw)["records"]] if raw else []


def _keep_sent(idp: IdPState, sid: str, message: Sent, *, started: Session | None,
               issued: IssuedName | None) -> None:
    # The last SENT_KEPT, kept as long as the IdP session (a list in the store would never expire).
    # A session `started` for this message has kept nothing yet; it is stored in the same write,
    # and so is the NameID the message `issued` to its SP (one record per SP: two SPs signing in
    # at once in one session never overwrite each other's), with the last ones it gave that SP.
    lifetime = idp.settings.server.session_lifetime
    kept = [message, *([] if started else sent(idp, sid)[:SENT_KEPT - 1])]
    debug = json.dumps({"records": [vars(m) for m in kept]}).encode()
    items: list[tuple[str, str, bytes, float | None]] = [("debug", sid, debug, lifetime)]
    if started is not None:
        items.insert(0, record_item("session", sid, started, lifetime))
    if issued is not None:
        names = [issued, *([] if started else [n for n in issued_to(idp, sid, message.sp) if n != issued])]
        value = json.dumps({"names": [vars(n) for n in names[:ISSUED_KEPT]]}).encode()
        items.append((ISSUED, _issued_key(sid, message.sp), value, lifetime))
    if len(items) == 1:
        idp.store.put(*items[0])
    else:
        idp.store.put_many(items)


def previous_response(idp: IdPState, sid: str | None, sp: RegisteredSP, persona: Persona) -> bytes | None:
    """The last response of the IdP session `sid` to `sp` for `persona` (the ``replay`` fault)."""
    return next((m.xml.encode() for m in sent(idp, sid) if m.sp == sp.entity_id and m.persona == persona.id), None)


def nameid_value(idp: IdPState, persona: Persona, sp_entity_id: str, nameid_format: str) -> str:
    """The NameID for `persona` in `nameid_format` (SAML Core §8.3.7, §8.3.8): a transient one is
    random per response; a persistent one is opaque and pairwise (stable for this persona and
    this SP, different for every other SP); any other format carries the persona's nameid."""
    if nameid_format == TRANSIENT:
        return idp.new_id()
    if nameid_format == PERSISTENT:
        secret = shared_secret(idp.store)  # never b"": a store that lost it gets a new one
        digest = hmac.new(secret, f"{persona.id}\x00{sp_entity_id}".encode(), hashlib.sha256).hexdigest()
        return f"_{digest[:40]}"
    return persona.nameid


def status_response(idp: IdPState, sp: RegisteredSP, pending: Pending, status: str, message: str) -> bytes:
    """A signed response carrying only a status (NoPassive, AuthnFailed …), no assertion."""
    top = RESPONDER  # the IdP could not satisfy the request (Core §3.2.2.2)
    key = idp.key
    spec = ResponseSpec(
        issuer=idp.entity_id, issuer_format=idp.vendor.issuer_format, destination=pending.acs,
        audience=sp.entity_id, in_response_to=pending.request_id,
        nameid="-", nameid_format=EMAIL, session_index="-", sign=sp.options.sign or idp.vendor.sign,
        signature_method=signature_method_for(key.key_pem), status=(top, status), status_message=message,
        shape=idp.vendor.shape,
    )
    return serialize(build_response(spec, now=idp.clock(), new_id=idp.new_id, key=key))


def no_passive(idp: IdPState, sp: RegisteredSP, pending: Pending) -> bytes:
    return status_response(idp, sp, pending, NO_PASSIVE, "IsPassive was requested and nobody is signed in")


def post_form(idp: IdPState, sid: str | None, pending: Pending, sp: RegisteredSP, xml: bytes,
              *, label: str = "SAML response", param: str = "SAMLResponse", persona: Persona | None = None,
              started: Session | None = None, issued: IssuedName | None = None, edits: list[str] | None = None,
              test_case: str | None = None) -> Response:
    """The auto-POST form that carries the response to the registered ACS (SECURITY.md §5), kept
    in the IdP session `sid` (if any) as the response of `persona` (if any). `started` is the
    record of `sid` when :func:`start_session` made it for this response: it is stored here, and so
    is the NameID the response `issued` to `sp` (what its LogoutRequest must name)."""
    if sid:
        _keep_sent(idp, sid, Sent(at=idp.clock().isoformat(), sp=sp.entity_id, acs=pending.acs, label=label,
                                  xml=xml.decode(), persona=persona.id if persona else None,
                                  edits=edits or None, test_case=test_case),
                   started=started, issued=issued)
    log.info("response to %s at %s (InResponseTo %s)%s", sp.entity_id, pending.acs, pending.request_id,
             f", edited: {'; '.join(edits)}" if edits else "")
    parts = urlsplit(pending.acs)
    origin = f"{parts.scheme}://{parts.netloc}"
    html = render_template(
        "post.html", acs=pending.acs, param=param, saml_response=base64.b64encode(xml).decode("ascii"),
        relay_state=pending.relay_state, label=label, sp=sp.entity_id,
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src '{AUTO_SUBMIT_HASH}'; form-action {origin}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def answers_at(idp: IdPState, sp: RegisteredSP, acs: str) -> bool:
    """Whether `acs` is still one of `sp`'s HTTP-POST ACS URLs, and allowed: a pending request keeps
    the URL chosen at /sso, and the SP's registration may have changed since (SECURITY.md §5)."""
    return acs_allowed(idp, acs) and any(a.location == acs and a.binding == BINDING_POST for a in sp.sp.acs)


def acs_allowed(idp: IdPState, url: str) -> bool:
    """https, or http on localhost in dev mode (SECURITY.md §5)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    return (idp.settings.server.dev_mode and parts.scheme == "http"
            and parts.hostname in ("localhost", "127.0.0.1", "::1"))


def default_acs(sp: RegisteredSP) -> str:
    """The SP's default HTTP-POST ACS (SAML Metadata §2.2.3), as the request checks pick it."""
    chosen = metadata_default_acs(sp.sp)
    assert chosen is not None  # the registry refuses an SP without an HTTP-POST ACS
    return chosen.location


# The only script on any IdP page: submit the one form. Allowed by its hash in the CSP.
AUTO_SUBMIT_SCRIPT = "document.forms[0].submit();"


def script_hash(script: str) -> str:
    """The CSP source that allows one inline script of the IdP's own, by its hash."""
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


AUTO_SUBMIT_HASH = script_hash(AUTO_SUBMIT_SCRIPT)
