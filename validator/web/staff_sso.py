"""Staff single sign-on with the company's own IdP over SAML (issue 13): the product signs its own
staff in with what it tests.

The staff SP is this app: its entity ID is ``<base_url>/sign-in/sso/metadata`` (where its metadata
is published, to register at the company IdP) and its ACS ``<base_url>/sign-in/sso/acs``.

``GET /sign-in/sso`` sends an AuthnRequest (HTTP-Redirect, signed with the app's signing key when
it has one) to the company IdP's SSO URL, from its metadata. The request ID and where to go
afterwards are kept in the store under a random token, also set as a cookie: the ACS takes that
entry once, so a response is accepted only from the browser that started the sign-in, only once.

``POST /sign-in/sso/acs`` judges the response as the validator judges a partner's
(:func:`validator.response_inspection.inspect_response_tree`): the signatures with the company
IdP's certificates only, then, from what was signed only, Issuer, Audience (the staff SP's entity
ID), Destination and Recipient (its ACS), the times, InResponseTo (the pending request) and the
replay cache. Any error refuses the sign-in (401, naming the finding codes). Only then is a claim
read: the email (the NameID, or `email_claim`) must be an allowed one, or the `group` claim must
carry its value (else 403). Every sign-in and refusal is written to the audit trail.

Configured with :class:`StaffSSO`: ``create_app(staff_sso=...)``, the ``VALIDATOR_STAFF_*``
variables (:func:`staff_sso_from_environment`), or ``saml-validate serve --staff-…``.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

from flask import Blueprint, Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from metadata.bindings import BindingError, decode_post, encode_redirect
from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.store import StoreUnavailable
from validator.auth.principal import Principal
from validator.auth.staff import StaffError, check_email
from validator.findings import Severity
from validator.response_facts import ResponseFacts
from validator.response_inspection import ResponseOptions, inspect_response_tree
from validator.trust import IdPTrust, trust_from_metadata

from .access import PUBLIC, allow
from .login_request import authn_request_xml, new_request_id, sp_metadata_xml, sso_url
from .sessions import start_session
from .state import TOKEN, Refusal, WebState, error_page, web
from .trail import note

METADATA_VARIABLE = "VALIDATOR_STAFF_IDP_METADATA"
EMAILS_VARIABLE = "VALIDATOR_STAFF_EMAILS"
GROUP_VARIABLE = "VALIDATOR_STAFF_GROUP"
EMAIL_CLAIM_VARIABLE = "VALIDATOR_STAFF_EMAIL_CLAIM"
VARIABLES = (METADATA_VARIABLE, EMAILS_VARIABLE, GROUP_VARIABLE, EMAIL_CLAIM_VARIABLE)
METADATA_MAX = 5 * 1024 * 1024
NEXT_MAX = 2048
"""The longest path kept to go back to after signing in (a longer one goes to ``/``)."""


@dataclass(frozen=True)
class StaffSSO:
    """The company IdP staff sign in with, and who of its users are staff here."""

    metadata: bytes
    """The company IdP's SAML metadata (its SSO URL and signing certificates), read once at start."""
    emails: frozenset[str] = frozenset()
    """Allowed staff emails, lower-case."""
    group: tuple[str, str] | None = None
    """(claim name, value): a user whose claim carries the value is staff here."""
    email_claim: str | None = None
    """The claim that holds the email; None: the NameID is the email."""


# --- configuration -------------------------------------------------------------------------------


def staff_sso_from_environment(environ: Mapping[str, str] | None = None) -> StaffSSO | None:
    """The ``VALIDATOR_STAFF_*`` settings; None when none is set. :class:`ValueError` naming the
    variable for a bad one."""
    values = os.environ if environ is None else environ
    return staff_sso_from_settings({name: values.get(name) for name in VARIABLES})


def staff_sso_from_settings(settings: Mapping[str, str | None],
                            label: Callable[[str], str] = str) -> StaffSSO | None:
    """A :class:`StaffSSO` from values keyed by the variables' names (unset: None or blank); None
    when none is set. :class:`ValueError` names the setting at fault as ``label(variable)``."""
    given = {name: (settings.get(name) or "").strip() for name in VARIABLES}
    if not any(given.values()):
        return None
    if not given[METADATA_VARIABLE]:
        raise ValueError(f"{label(METADATA_VARIABLE)}: staff single sign-on needs the company IdP's metadata file")
    emails = _emails(given[EMAILS_VARIABLE], label(EMAILS_VARIABLE))
    group = _group(given[GROUP_VARIABLE], label(GROUP_VARIABLE))
    if not emails and group is None:
        raise ValueError(f"{label(EMAILS_VARIABLE)} or {label(GROUP_VARIABLE)}: say who is staff (allowed emails, "
                         "or a group claim such as groups=preflight-staff); without either nobody could sign in")
    metadata = _metadata(given[METADATA_VARIABLE], label(METADATA_VARIABLE))
    return StaffSSO(metadata, emails, group, given[EMAIL_CLAIM_VARIABLE] or None)


def _emails(text: str, name: str) -> frozenset[str]:
    found = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            found.add(check_email(item))
        except StaffError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return frozenset(found)


def _group(text: str, name: str) -> tuple[str, str] | None:
    if not text:
        return None
    claim, equals, value = text.partition("=")
    if not equals or not claim.strip() or not value.strip():
        raise ValueError(f"{name}: {text[:80]!r} is not CLAIM=VALUE (e.g. groups=preflight-staff)")
    return claim.strip(), value.strip()


def _metadata(path_text: str, name: str) -> bytes:
    """The file's bytes, once checked to be usable: one IdP, its signing certificates, an HTTP-Redirect SSO URL."""
    path = Path(path_text)
    try:
        if path.stat().st_size > METADATA_MAX:
            raise ValueError(f"{name}: {path} is over {METADATA_MAX // (1024 * 1024)} MiB; it is no IdP's metadata")
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{name}: the company IdP's metadata file cannot be read: {exc}") from None
    try:
        trust = company_trust(data)
        sso_url(staff_record("https://staff-sso.invalid", trust.entity_id), data, allow_http=True)
    except MetadataError as exc:
        raise ValueError(f"{name}: {path} is not usable IdP metadata: {exc}") from None
    except Refusal as exc:
        raise ValueError(f"{name}: {path}: {exc.message}") from None
    if not trust.certificates:
        raise ValueError(f"{name}: {path} names no signing certificate of the IdP: no response could be verified")
    return data


@functools.lru_cache(maxsize=4)
def company_trust(metadata: bytes) -> IdPTrust:
    """The company IdP's entity ID and signing certificates; MetadataError when unusable. Kept:
    the metadata is read once at start, and is parsed once, not on every sign-in."""
    return trust_from_metadata(metadata, None, "the company IdP's metadata")


def sp_entity_id(base_url: str) -> str:
    return f"{base_url}/sign-in/sso/metadata"


def acs_url(base_url: str) -> str:
    return f"{base_url}/sign-in/sso/acs"


def staff_record(base_url: str, idp_entity_id: str | None) -> CRMRecord:
    """The staff SP as the checks see a partner's portal: the audience and ACS every response must
    name, the company IdP's entity ID, and no claims (the allowed staff are decided after)."""
    return CRMRecord.model_validate({
        "biller": {"id": "staff-sso", "name": "Staff single sign-on"},
        "sp": {"entity_id": sp_entity_id(base_url), "acs_url": acs_url(base_url)},
        "idp": {"entity_id": idp_entity_id},
    })


# --- the routes ----------------------------------------------------------------------------------

blueprint = Blueprint("staff_sso", __name__)

COOKIE = "saml_preflight_staff_sso"
PENDING_NS, PENDING_TTL = "staff-sso-requests", 10 * 60
"""A browser token → its outstanding AuthnRequest's ID and where to go after; taken once by the ACS."""
SEEN_NS, SEEN_TTL = "staff-sso-seen-assertions", 24 * 3600
"""Assertion IDs already used to sign staff in: the replay cache."""

NOT_CONFIGURED = "There is no page at this address."
NO_PENDING = ("no single sign-on was started in this browser, it was already answered, or it expired after "
              "10 minutes")
NOT_STAFF = ("You signed in at the company's IdP, but {who} is not a staff member here. Ask an administrator to "
             "add you to the allowed staff.")


def _configured() -> tuple[WebState, StaffSSO] | None:
    state = web()
    return (state, state.staff_sso) if state.staff_sso is not None else None


@blueprint.get("/sign-in/sso")
@allow(PUBLIC)  # the sign-in itself
def start() -> Response:
    found = _configured()
    if found is None:
        return error_page(404, "Not found", NOT_CONFIGURED)
    state, config = found
    now = state.clock()
    try:
        trust = company_trust(config.metadata)
        destination = sso_url(staff_record(state.base_url, trust.entity_id), config.metadata,
                              allow_http=state.dev_mode)
    except MetadataError as exc:
        return error_page(500, "Single sign-on is not usable", f"The company IdP's metadata is not usable: {exc}")
    except Refusal as refusal:
        return refusal.page()
    request_id = new_request_id()
    xml = authn_request_xml(request_id=request_id, issuer=sp_entity_id(state.base_url),
                            acs_url=acs_url(state.base_url), destination=destination, now=now)
    key = state.signing_key.key_pem if state.signing_key else None
    try:
        location = encode_redirect(xml, param="SAMLRequest", destination=destination, key_pem=key)
        token = secrets.token_urlsafe(32)
        next_path = _local_path(unquote(request.args.get("next", "/")))
        pending = json.dumps({"request_id": request_id, "next": next_path})
        state.store.put(PENDING_NS, token, pending.encode(), ttl=PENDING_TTL)
    except (BindingError, ValueError) as exc:
        return error_page(400, "The AuthnRequest cannot be sent", str(exc))
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    response = redirect(location, code=302)
    # The IdP POSTs back from its own site: SameSite=None (with Secure) over https; over plain
    # http (local use) browsers refuse None without Secure, and Lax works for a same-site IdP.
    response.set_cookie(COOKIE, token, max_age=PENDING_TTL, httponly=True, secure=state.secure_cookie,
                        samesite=_same_site(state), path="/")
    return response  # type: ignore[return-value]


def _same_site(state: WebState) -> str:
    return "None" if state.secure_cookie else "Lax"


def _local_path(value: str) -> str:
    """Where to go after signing in: a path of this app only (never another site). No blank or
    control character either: browsers drop tabs and newlines from a URL, so ``/<TAB>/evil`` is
    ``//evil``, another site."""
    local = value.startswith("/") and not value.startswith(("//", "/\\")) and len(value) <= NEXT_MAX
    return value if local and all(c.isprintable() and not c.isspace() for c in value) else "/"


@blueprint.get("/sign-in/sso/metadata")
@allow(PUBLIC)  # to register at the company IdP
def metadata() -> Response:
    found = _configured()
    if found is None:
        return error_page(404, "Not found", NOT_CONFIGURED)
    state = found[0]
    body = sp_metadata_xml(sp_entity_id(state.base_url), acs_url(state.base_url), state.signing_key)
    response = Response(body, mimetype="application/samlmetadata+xml")
    response.headers["Content-Disposition"] = "attachment; filename=staff-sso-sp-metadata.xml"
    return response


class SignInRefused(Exception):
    """The company IdP's response does not sign anyone in: why, as a page says it and the trail notes it."""

    def __init__(self, status: int, reason: str, page_message: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason
        self.page_message = page_message or (f"The sign-in was refused: {reason}. Start again from the sign-in "
                                             "page; if it keeps failing, tell an administrator what this page says.")


@blueprint.post("/sign-in/sso/acs")
@allow(PUBLIC)  # the company IdP posts here from its own origin; what arrives is verified, not trusted
def acs() -> Response:
    found = _configured()
    if found is None:
        return error_page(404, "Not found", NOT_CONFIGURED)
    state, config = found
    try:
        request_id, next_path = _take_pending(state)
        facts = _verified_facts(state, config, request_id)
        email = _allowed_email(config, facts)
    except SignInRefused as refused:
        note("sign-in-refused", who="anonymous", detail=f"staff single sign-on refused: {refused.reason}")
        title = "Sign-in refused" if refused.status == 401 else "Not a staff member here"
        return _without_pending(error_page(refused.status, title, refused.page_message), state)
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    principal = Principal("staff", email, None, "write")
    note("sign-in", who=principal, detail="staff, company IdP")
    response = redirect(next_path, code=303)
    start_session(response, principal)  # a new session ID: none chosen before sign-in survives it
    return _without_pending(response, state)  # type: ignore[return-value]


R = TypeVar("R", bound=BaseResponse)


def _without_pending(response: R, state: WebState) -> R:
    response.delete_cookie(COOKIE, path="/", secure=state.secure_cookie, httponly=True, samesite=_same_site(state))
    return response


def _take_pending(state: WebState) -> tuple[str, str]:
    """This browser's pending request ID and next path, taken (once); nothing is parsed without one."""
    token = request.cookies.get(COOKIE, "")
    taken = state.store.take(PENDING_NS, token) if TOKEN.fullmatch(token) else None
    if taken is None:
        raise SignInRefused(401, NO_PENDING)
    value = json.loads(taken)
    return str(value["request_id"]), _local_path(str(value["next"]))


def _verified_facts(state: WebState, config: StaffSSO, request_id: str) -> ResponseFacts:
    """The facts of the response, read from what the company IdP signed; :class:`SignInRefused`
    with the codes of every error the validator finds in it."""
    body = request.get_data(cache=False)  # at most MAX_CONTENT_LENGTH (256 KiB): the app's guard
    try:
        message = decode_post(body, "SAMLResponse")
        trust = company_trust(config.metadata)
    except (BindingError, MetadataError) as exc:
        raise SignInRefused(401, f"the POST is no SAML response ({exc})") from None
    options = ResponseOptions(
        now=state.clock(), trusted=trust.certificates, idp_entity_id=trust.entity_id, request_id=request_id,
        vendor_key=trust.vendor_key,
        is_replay=lambda assertion_id: not state.store.add(SEEN_NS, assertion_id, b"1", ttl=SEEN_TTL))
    inspection = inspect_response_tree(message.tree, "staff sign-in response", options,
                                       staff_record(state.base_url, trust.entity_id))
    errors = sorted({f.code for f in inspection.findings if f.severity is Severity.ERROR})
    judged = inspection.responses[0] if inspection.responses else None
    if errors or judged is None or judged.verified is None or judged.facts is None:
        codes = ", ".join(errors) or "not verified"
        raise SignInRefused(401, f"the company IdP's response did not pass the checks ({codes})")
    return judged.facts


def _allowed_email(config: StaffSSO, facts: ResponseFacts) -> str:
    """The verified email, if its user is staff here; :class:`SignInRefused` (403) otherwise."""
    email = _email(config, facts)
    in_group = config.group is not None and any(
        config.group[1] in attribute.values for attribute in facts.attributes if attribute.name == config.group[0])
    if email not in config.emails and not in_group:
        raise SignInRefused(403, f"{email} is not an allowed staff member", NOT_STAFF.format(who=email))
    return email


def _email(config: StaffSSO, facts: ResponseFacts) -> str:
    if config.email_claim is None:
        values = [facts.nameid or ""]
    else:
        values = sorted({v for a in facts.attributes if a.name == config.email_claim for v in a.values})
    shown = "the NameID" if config.email_claim is None else f"the claim {config.email_claim!r}"
    try:
        if len(values) != 1:
            raise StaffError(f"{shown} holds {len(values)} values")
        return check_email(values[0])
    except StaffError as exc:
        raise SignInRefused(403, f"{shown} gives no one email address ({exc})",
                            f"The company IdP did not say who you are: {shown} holds no one email address. Ask "
                            "an administrator to check the single sign-on settings.") from None
