"""REQ rules: an SP's AuthnRequest as the test IdP receives it (SAML Core §3.4, Profiles §4.1.4.1).

The IdP decodes the binding (:mod:`metadata.bindings`), checks the signature with
:func:`request_signature`, reads the request with :func:`read_authn_request` (from the signed
bytes when an XML signature verified), and shows every finding of :func:`check_authn_request`
to the SP developer. A response goes only to the ACS that :func:`resolve_acs` returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from metadata.authn_request import AuthnRequest, NotAnAuthnRequest
from metadata.bindings import BindingError, PostMessage, RedirectMessage, verify_redirect_signature
from metadata.errors import UnsafeXML
from metadata.saml import BINDING_POST, DS, ENTITY, UNSPECIFIED, binding_name
from metadata.service_provider import ServiceProvider, resolve_acs
from metadata.signing import SHA1_SIGNATURE_METHODS, SignatureError, algorithm_name, verify
from metadata.xml import REQUEST_LIMITS, signed_bytes_limits, visible
from validator.checks.wording import actual as _actual
from validator.checks.wording import at, rules_for
from validator.checks.wording import duration as _duration
from validator.checks.wording import shown as _shown
from validator.findings import Finding, Severity

MAX_AGE_SECONDS = 300
"""How old an IssueInstant may be before the clock skew is added."""
MAX_SKEW_SECONDS = 300

SignatureStatus = Literal["verified", "missing", "invalid", "weak", "not-checked"]


_rule = rules_for("request")


# Binding and parsing: the request could not be read at all.
MISSING = _rule(
    "REQ001", "No SAMLRequest parameter",
    "The HTTP-Redirect query string or HTTP-POST form has no SAMLRequest parameter, or it is empty.",
    "Without it there is no request to answer; usually the SP sent the browser to the SSO URL without "
    "starting a login, or named the parameter differently.",
    "Send the AuthnRequest as the SAMLRequest parameter (Bindings §3.4.4 for Redirect, §3.5.4 for POST).",
)
BASE64 = _rule(
    "REQ002", "SAMLRequest is not valid base64",
    "The SAMLRequest (or Signature) value must be standard base64 (RFC 2045 alphabet, + and /), URL-encoded "
    "in a query string.",
    "A value that is not base64 cannot be decoded; the usual cause is a '+' that was not percent-encoded "
    "and arrives as a space, or URL-safe base64.",
    "Base64-encode with the standard alphabet, then percent-encode the value (+ → %2B, / → %2F, = → %3D).",
)
DEFLATE = _rule(
    "REQ003", "SAMLRequest is not a raw DEFLATE stream",
    "With HTTP-Redirect the request must be compressed with raw DEFLATE (RFC 1951): no zlib or gzip header, "
    "one complete stream, nothing after it.",
    "Bindings §3.4.4.1 fixes the encoding; a zlib-wrapped, truncated or padded stream cannot be read.",
    "Compress with raw DEFLATE (zlib with wbits=-15, or zlib.compress(xml)[2:-4]) before base64; do not "
    "deflate for HTTP-POST.",
)
TOO_LARGE = _rule(
    "REQ004", "The request is too large",
    "The decoded (or inflated) AuthnRequest is larger than 64 KiB, or the POST body larger than 256 KiB.",
    "Real AuthnRequests are a few kilobytes; the cap stops compressed-bomb and memory-exhaustion attacks.",
    "Send only the AuthnRequest: no embedded documents, no huge extensions.",
)
DUPLICATE = _rule(
    "REQ005", "A parameter appears twice",
    "A parameter name (SAMLRequest, RelayState, SigAlg, Signature, …) appears more than once.",
    "Different software picks a different copy, so the signed value and the value used could differ.",
    "Send each parameter once.",
)
ENCODED_NAME = _rule(
    "REQ006", "A parameter name is percent-encoded",
    "A parameter name contains '%' or '+' (for example SAML%52equest).",
    "Frameworks decode the name and see a second SAMLRequest that the signature check does not; names must "
    "appear literally (SECURITY.md §5).",
    "Percent-encode only parameter values, never names.",
)
MALFORMED_QUERY = _rule(
    "REQ007", "The query string or form is malformed",
    "The query string or form body has a broken percent-escape, characters outside ASCII, a parameter "
    "without a name, a value that is not UTF-8, or a SAMLResponse where a SAMLRequest was expected.",
    "The request cannot be decoded unambiguously.",
    "Build the URL with a URL-encoding library rather than by string concatenation.",
)
RELAY_STATE = _rule(
    "REQ008", "RelayState is longer than 80 bytes",
    "The RelayState value exceeds 80 bytes once decoded (Bindings §3.4.3, §3.5.3).",
    "The IdP must echo RelayState back unchanged; the bindings limit it so that it cannot carry a payload.",
    "Keep RelayState a short opaque key and store the return URL on the SP side.",
)
UNSAFE_XML = _rule(
    "REQ009", "The request XML is malformed or unsafe",
    "The decoded SAMLRequest is not well-formed UTF-8/UTF-16 XML, carries a DOCTYPE, or is too deep or "
    "too big.",
    "SAML forbids DTDs (Core §1.3); they enable entity-expansion and XXE attacks. Malformed XML cannot be read.",
    "Serialise the AuthnRequest with an XML library, without a DOCTYPE.",
)
NOT_AUTHN_REQUEST = _rule(
    "REQ010", "The message is not an AuthnRequest",
    "The root element of the SAMLRequest is not samlp:AuthnRequest in the SAML 2.0 protocol namespace.",
    "The SSO endpoint answers AuthnRequests only; logout requests go to the SingleLogoutService.",
    "Send a samlp:AuthnRequest (namespace urn:oasis:names:tc:SAML:2.0:protocol) to the SSO URL.",
)
# The request's content.
UNKNOWN_SP = _rule(
    "REQ011", "The service provider is not registered",
    "The request's Issuer names no service provider registered at this IdP.",
    "The IdP sends responses only to ACS URLs from the metadata of a known SP; without it there is nowhere "
    "safe to send one.",
    "Register the SP's metadata at the IdP, or make the SP send exactly its registered entity ID as Issuer.",
)
NO_ISSUER = _rule(
    "REQ012", "The request has no Issuer",
    "The AuthnRequest has no saml:Issuer child, or it is empty (Profiles §4.1.4.1: it MUST be present).",
    "The Issuer says which SP is asking; without it the IdP cannot find the SP's ACS URLs or keys.",
    "Add <saml:Issuer> with the SP's entity ID as the first child of the AuthnRequest.",
)
ISSUER_FORMAT = _rule(
    "REQ013", "The Issuer has a Format other than entity",
    "Profiles §4.1.4.1: the Issuer's Format must be omitted or be "
    "urn:oasis:names:tc:SAML:2.0:nameid-format:entity.",
    "An Issuer in another format is not an entity ID, so no metadata can be found for it.",
    "Drop the Format attribute from saml:Issuer (or set it to …:nameid-format:entity).",
)
VERSION = _rule(
    "REQ014", "The request is not SAML 2.0",
    "The Version attribute of the AuthnRequest must be exactly 2.0.",
    "This IdP speaks SAML 2.0 only; another version means another protocol.",
    "Set Version=\"2.0\".",
)
BAD_ID = _rule(
    "REQ015", "The request ID is missing or not a valid xs:ID",
    "ID must be present, an XML NCName (starts with a letter or '_', no ':' or spaces) and at most 256 "
    "characters.",
    "The IdP copies the ID into InResponseTo; SP libraries reject responses whose InResponseTo does not match, "
    "and an ID starting with a digit breaks schema validation.",
    "Generate IDs as '_' followed by random hex (at least 128 bits, Core §1.3.4).",
)
BAD_INSTANT = _rule(
    "REQ016", "IssueInstant is missing or not a UTC date-time",
    "IssueInstant must be an xs:dateTime in UTC, such as 2026-06-01T12:00:00Z (Core §1.3.3).",
    "Without a readable time the IdP cannot tell a fresh request from a replayed one.",
    "Set IssueInstant to the current UTC time in the form YYYY-MM-DDThh:mm:ssZ.",
)
STALE_INSTANT = _rule(
    "REQ017", "IssueInstant is too old or in the future",
    "IssueInstant must be at most 5 minutes old and not in the future, both within the allowed clock skew.",
    "An old request is a replay or a cached login link; a future one means the SP's clock is wrong.",
    "Create a fresh AuthnRequest for every login (never cache the login URL) and keep the SP's clock in sync "
    "with NTP.",
)
WRONG_DESTINATION = _rule(
    "REQ018", "Destination is not this IdP's SSO URL",
    "When present, Destination must equal one of this IdP's SingleSignOnService URLs exactly.",
    "Destination binds the request to its recipient, so that a request meant for another IdP cannot be "
    "replayed here (Bindings §3.4.5.2, §3.5.5.2).",
    "Set Destination to the SSO URL from this IdP's metadata (not its entity ID).",
)
NO_DESTINATION = _rule(
    "REQ019", "A signed request has no Destination",
    "Bindings §3.4.5.2 and §3.5.5.2: a signed request MUST carry Destination.",
    "Without it the signature does not say for which IdP the request was made.",
    "Add Destination with this IdP's SSO URL to the AuthnRequest before signing it.",
)
ACS_URL = _rule(
    "REQ020", "AssertionConsumerServiceURL is not registered",
    "AssertionConsumerServiceURL must equal, character for character, the Location of an HTTP-POST "
    "AssertionConsumerService in the SP's registered metadata.",
    "The IdP posts the user's identity to this URL; an unregistered URL could belong to an attacker.",
    "Send an ACS URL from the SP metadata (mind http/https, host case, port and trailing slash) or add the "
    "URL to the SP metadata and register it again.",
)
ACS_INDEX = _rule(
    "REQ021", "AssertionConsumerServiceIndex names no HTTP-POST ACS",
    "AssertionConsumerServiceIndex must be the index of an HTTP-POST AssertionConsumerService in the SP's "
    "metadata.",
    "The IdP has nowhere registered to send the response.",
    "Use an index from the SP metadata, or leave it out to use the default ACS.",
)
ACS_CONFLICT = _rule(
    "REQ022", "ACS index given together with ACS URL or ProtocolBinding",
    "Core §3.4.1: AssertionConsumerServiceIndex is mutually exclusive with AssertionConsumerServiceURL and "
    "ProtocolBinding.",
    "With both, it is undefined which ACS the SP wants; the IdP refuses to guess.",
    "Send either AssertionConsumerServiceIndex, or AssertionConsumerServiceURL (with ProtocolBinding), "
    "not both.",
)
PROTOCOL_BINDING = _rule(
    "REQ023", "ProtocolBinding is not HTTP-POST",
    "ProtocolBinding, when present, must be urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST.",
    "This IdP returns responses with HTTP-POST only; it cannot answer with Artifact, Redirect or PAOS.",
    "Set ProtocolBinding to HTTP-POST or leave it out.",
)
NO_POST_ACS = _rule(
    "REQ024", "The SP has no HTTP-POST AssertionConsumerService",
    "The request names no ACS, and the SP's metadata registers no AssertionConsumerService with the "
    "HTTP-POST binding to use as the default (Metadata §2.2.3).",
    "The IdP has nowhere to post the response.",
    "Add an HTTP-POST AssertionConsumerService to the SP metadata and register it again.",
)
ACS_NOT_HTTPS = _rule(
    "REQ025", "The ACS URL is not https",
    "The AssertionConsumerService chosen for the response must be an https URL (http only for localhost when "
    "the IdP runs in development mode).",
    "The response carries the user's identity; over http it can be read and replayed (SECURITY.md §5).",
    "Serve the SP's ACS over https and register the https URL.",
)
NAMEID_FORMAT = _rule(
    "REQ026", "The requested NameID format is not supported",
    "NameIDPolicy/@Format must be one of the formats this IdP offers (unspecified is always accepted).",
    "Core §3.4.1.1: an IdP that cannot issue the format must fail the request (InvalidNameIDPolicy).",
    "Request a format listed in this IdP's metadata, or leave Format out (or use unspecified).",
)
UNSIGNED = _rule(
    "REQ027", "The request must be signed but is not",
    "The SP's metadata sets AuthnRequestsSigned=\"true\", or this IdP requires signed requests, and the "
    "request carries no signature.",
    "An unsigned request can be forged by anyone; the promise in the metadata must be kept.",
    "Sign the request: HTTP-Redirect signs the query string (SigAlg, Signature); HTTP-POST embeds an "
    "enveloped ds:Signature after saml:Issuer.",
)
BAD_SIGNATURE = _rule(
    "REQ028", "The request signature is invalid",
    "The request is signed, and the signature does not verify with any signing certificate in the SP's "
    "metadata, or its shape breaks the SAML signature profile.",
    "A request whose signature fails was changed on the way, signed with another key, or signed over "
    "different bytes (for Redirect: the exact query octets SAMLRequest=…&RelayState=…&SigAlg=…).",
    "Sign with the key whose certificate is in the registered SP metadata; for Redirect sign the URL-encoded "
    "parameters exactly as sent, in that order.",
)
SHA1 = _rule(
    "REQ029", "The request is signed with SHA-1",
    "The signature (or its digest) uses SHA-1. A warning when this IdP accepts it, an error when it refuses it.",
    "SHA-1 collisions are practical; SAML deployments moved to SHA-256 years ago.",
    "Sign with RSA-SHA256 (SigAlg http://www.w3.org/2001/04/xmldsig-more#rsa-sha256).",
    Severity.WARNING,
)
UNVERIFIABLE = _rule(
    "REQ030", "The request signature cannot be checked",
    "A signature is required, but it could not be checked: typically the SP's registered metadata has no "
    "signing certificate to check it with.",
    "Without the SP's certificate the IdP cannot tell the SP from anyone else.",
    "Add a KeyDescriptor use=\"signing\" with the SP's certificate to its metadata and register it again.",
)


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of checking a request's signature; :func:`request_signature` makes one."""

    status: SignatureStatus
    message: str = ""
    algorithm: str | None = None
    uses_sha1: bool = False
    certificate: bytes | None = None
    signed_xml: bytes | None = None
    """HTTP-POST: the verified request without its signature; read the request from these bytes."""


@dataclass(frozen=True)
class RequestContext:
    request: AuthnRequest
    sp: ServiceProvider | None
    """None when no registered SP has the request's Issuer as entity ID."""
    idp_entity_id: str
    sso_urls: tuple[str, ...]
    """This IdP's own SingleSignOnService URLs (what Destination must be)."""
    now: datetime
    signature: SignatureCheck
    """From :func:`request_signature`; required, so that a forgotten check cannot pass as unsigned."""
    skew_seconds: int = 120
    supported_nameid_formats: tuple[str, ...] = ()
    idp_requires_signed: bool = False
    allow_http_localhost: bool = False
    """Development mode: an http://localhost ACS is accepted."""
    registered_entity_ids: tuple[str, ...] = ()
    """Shown to the SP developer when the Issuer is unknown; leave empty to list none."""

    def __post_init__(self) -> None:
        if not 0 <= self.skew_seconds <= MAX_SKEW_SECONDS:
            raise ValueError(f"skew_seconds must be between 0 and {MAX_SKEW_SECONDS}")
        if self.now.tzinfo is None:
            raise ValueError("now must carry a time zone")


_STATUS_OF_KIND: dict[str, SignatureStatus] = {"missing": "missing", "weak": "weak", "no-trusted-key": "not-checked"}


def request_signature(
    message: RedirectMessage | PostMessage, sp: ServiceProvider | None, *, allow_sha1: bool = False
) -> SignatureCheck:
    """Verify the request's signature with the SP's certificates: the query string for HTTP-Redirect
    (Bindings §3.4.4.1), the enveloped XML signature for HTTP-POST (Core §5.4)."""
    root = message.tree.getroot()
    embedded = root.find(f"{{{DS}}}Signature") is not None
    algorithm: str | None = None
    if isinstance(message, RedirectMessage):
        if message.signature is None and message.sig_alg is None:
            note = (" (it carries an XML signature, but HTTP-Redirect signs the query string: Bindings §3.4.4.1)"
                    if embedded else "")
            return SignatureCheck("missing", "the request is not signed" + note)
        algorithm = message.sig_alg
    elif not embedded:
        return SignatureCheck("missing", "the request is not signed")
    sha1 = algorithm in SHA1_SIGNATURE_METHODS
    if sp is None:
        return SignatureCheck("not-checked", "the Issuer is not a registered SP", algorithm, sha1)
    if not sp.signing_certificates:
        return SignatureCheck("not-checked", "the SP's metadata has no signing certificate", algorithm, sha1)
    try:
        if isinstance(message, RedirectMessage):
            cert = verify_redirect_signature(message, sp.signing_certificates, allow_sha1=allow_sha1)
            return SignatureCheck("verified", "the query-string signature verifies", algorithm, sha1, cert)
        verified = verify(root, sp.signing_certificates, allow_sha1=allow_sha1,
                          max_signed_bytes=signed_bytes_limits(REQUEST_LIMITS).max_bytes)
    except SignatureError as exc:
        if exc.profile is not None:
            algorithm, sha1 = exc.profile.signature_method, exc.profile.uses_sha1
        status = _STATUS_OF_KIND.get(exc.kind, "invalid")
        return SignatureCheck(status, exc.message, algorithm, sha1 or exc.kind == "weak")
    profile = verified.profile
    return SignatureCheck("verified", "the XML signature verifies", profile.signature_method, profile.uses_sha1,
                          verified.certificate, verified.signed_bytes)


_BINDING_RULES = {
    "missing": MISSING, "base64": BASE64, "deflate": DEFLATE, "too-large": TOO_LARGE,
    "duplicate-parameter": DUPLICATE, "encoded-parameter-name": ENCODED_NAME, "relay-state": RELAY_STATE,
    "malformed-query": MALFORMED_QUERY,
}


def finding_for_binding_error(err: BindingError) -> Finding:
    where = f"{err.parameter} parameter" if err.parameter else "request"
    return _BINDING_RULES.get(err.kind, MALFORMED_QUERY).finding(
        err.message, expected=err.expected, actual=err.actual, where=where)


def finding_for_unsafe_request(err: UnsafeXML) -> Finding:
    where = at("SAMLRequest", err.line)
    return UNSAFE_XML.finding(err.message, expected="well-formed XML without a DOCTYPE, within the limits",
                              actual=err.kind, where=where)


def finding_for_not_authn_request(err: NotAnAuthnRequest) -> Finding:
    where = at("SAMLRequest", err.line)
    return NOT_AUTHN_REQUEST.finding(str(err), expected="samlp:AuthnRequest", actual=err.root_tag, where=where)


def _where(ctx: RequestContext, path: str) -> str:
    return at(f"samlp:AuthnRequest{path}", ctx.request.line)








def check_issuer(ctx: RequestContext) -> Iterator[Finding]:
    req = ctx.request
    if not req.issuer:
        yield NO_ISSUER.finding("the AuthnRequest does not say which SP sent it", expected="the SP's entity ID",
                                actual=_actual(req.issuer), where=_where(ctx, "/saml:Issuer"))
        return
    if req.issuer_format not in (None, ENTITY):
        yield ISSUER_FORMAT.finding(f"the Issuer's Format is {_shown(req.issuer_format)}", expected=ENTITY,
                                    actual=_actual(req.issuer_format), where=_where(ctx, "/saml:Issuer/@Format"))
    if ctx.sp is None:
        message = f"no service provider with the entity ID {_shown(req.issuer)} is registered at this IdP"
        if req.issuer == ctx.idp_entity_id:
            message += "; that is this IdP's own entity ID — the SP must send its own"
        near = [e for e in ctx.registered_entity_ids if e.lower().rstrip("/") == req.issuer.lower().rstrip("/")]
        if near:
            message += f"; did you mean '{visible(near[0])}'?"
        yield UNKNOWN_SP.finding(
            message, expected=", ".join(ctx.registered_entity_ids) or "a registered SP entity ID",
            actual=visible(req.issuer), where=_where(ctx, "/saml:Issuer"))


def check_version(ctx: RequestContext) -> Iterator[Finding]:
    if ctx.request.version != "2.0":
        yield VERSION.finding(f"Version is {_shown(ctx.request.version)}", expected="2.0",
                              actual=_actual(ctx.request.version), where=_where(ctx, "/@Version"))


_NAME_START = ("A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
               "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff")
# XML 1.0 (5th ed.) §2.3 NameStartChar / NameChar without ':' — an NCName, the lexical space of xs:ID.
_NCNAME = re.compile(f"[{_NAME_START}][{_NAME_START}\\-.0-9\u00b7\u0300-\u036f\u203f-\u2040]*")


def is_valid_request_id(value: str | None) -> bool:
    """An NCName of at most 256 characters: safe to copy into InResponseTo (SECURITY.md §5)."""
    return value is not None and len(value) <= 256 and _NCNAME.fullmatch(value) is not None


def check_id(ctx: RequestContext) -> Iterator[Finding]:
    value = ctx.request.id
    if is_valid_request_id(value):
        return
    if not value:
        problem = "the AuthnRequest has no ID" if value is None else "the ID is empty"
    elif len(value) > 256:
        problem = f"the ID is {len(value)} characters long"
    else:
        problem = f"the ID {_shown(value)} is not an NCName"
    yield BAD_ID.finding(problem, expected="an NCName of at most 256 characters, e.g. _3f1c…",
                         actual=_actual(value if value is None or len(value) <= 80 else value[:80] + "…"),
                         where=_where(ctx, "/@ID"))


_DATETIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def parse_instant(value: str) -> datetime | None:
    """An xs:dateTime with a time zone (Z or ±hh:mm), fractions cut to microseconds; else None."""
    match = _DATETIME.fullmatch(value)
    if match is None or match.group(3) is None:
        return None
    base, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]
    try:
        return datetime.fromisoformat(base + fraction + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None


def check_issue_instant(ctx: RequestContext) -> Iterator[Finding]:
    raw = ctx.request.issue_instant
    where = _where(ctx, "/@IssueInstant")
    instant = parse_instant(raw) if raw is not None else None
    if instant is None:
        problem = "the AuthnRequest has no IssueInstant" if raw is None else (
            f"IssueInstant {_shown(raw)} is not an xs:dateTime in UTC")
        yield BAD_INSTANT.finding(problem, expected="YYYY-MM-DDThh:mm:ssZ", actual=_actual(raw), where=where)
        return
    skew = timedelta(seconds=ctx.skew_seconds)
    oldest = ctx.now - timedelta(seconds=MAX_AGE_SECONDS) - skew
    now = f"{ctx.now:%Y-%m-%dT%H:%M:%SZ}"
    if instant < oldest:
        yield STALE_INSTANT.finding(
            f"the request was issued {_duration((ctx.now - instant).total_seconds())} ago; at most "
            f"{MAX_AGE_SECONDS + ctx.skew_seconds} s "
            f"({MAX_AGE_SECONDS} s + {ctx.skew_seconds} s skew) is accepted",
            expected=f"between {oldest:%Y-%m-%dT%H:%M:%SZ} and {ctx.now + skew:%Y-%m-%dT%H:%M:%SZ} (now {now})",
            actual=raw, where=where)
    elif instant > ctx.now + skew:
        yield STALE_INSTANT.finding(
            f"the request was issued {_duration((instant - ctx.now).total_seconds())} in the future; the "
            f"allowed skew is {ctx.skew_seconds} s",
            expected=f"not after {ctx.now + skew:%Y-%m-%dT%H:%M:%SZ} (now {now})", actual=raw, where=where)


def _signed(ctx: RequestContext) -> bool:
    return ctx.signature.status in ("verified", "invalid", "weak") or ctx.request.has_signature


def check_destination(ctx: RequestContext) -> Iterator[Finding]:
    destination = ctx.request.destination
    expected = " or ".join(ctx.sso_urls) or "this IdP's SSO URL"
    where = _where(ctx, "/@Destination")
    if destination is None:
        if _signed(ctx):
            yield NO_DESTINATION.finding("the request is signed but has no Destination", expected=expected,
                                         actual="(absent)", where=where)
    elif destination not in ctx.sso_urls:
        message = f"Destination {_shown(destination)} is not one of this IdP's SSO URLs"
        if destination == ctx.idp_entity_id:
            message += "; it is the IdP's entity ID, not its SSO URL"
        yield WRONG_DESTINATION.finding(message, expected=expected, actual=visible(destination), where=where)


def _https_ok(url: str, allow_localhost: bool) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "https" and parts.hostname:
        return True
    return allow_localhost and parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")


def check_acs(ctx: RequestContext) -> Iterator[Finding]:
    req, sp = ctx.request, ctx.sp
    if req.acs_index_raw is not None and (req.acs_url is not None or req.protocol_binding is not None):
        others = " and ".join(n for n, v in (("AssertionConsumerServiceURL", req.acs_url),
                                             ("ProtocolBinding", req.protocol_binding)) if v is not None)
        yield ACS_CONFLICT.finding(f"AssertionConsumerServiceIndex is sent together with {others}",
                                   expected="AssertionConsumerServiceIndex alone, or a URL (with ProtocolBinding)",
                                   actual=f"index {_shown(req.acs_index_raw)} with {others}", where=_where(ctx, ""))
        return
    wrong_binding = req.protocol_binding is not None and req.protocol_binding != BINDING_POST
    if wrong_binding:
        yield PROTOCOL_BINDING.finding(
            f"the SP asks for the response with {binding_name(req.protocol_binding or '')}",
            expected=BINDING_POST, actual=visible(req.protocol_binding or ""), where=_where(ctx, "/@ProtocolBinding"))
    if sp is None:
        return
    posts = [a for a in sp.acs if a.binding == BINDING_POST]
    registered = ", ".join(a.location for a in posts) or "none"
    if req.acs_url is not None:
        same_url = [a for a in sp.acs if a.location == req.acs_url]
        if not any(a.binding == BINDING_POST for a in same_url) and not (same_url and wrong_binding):
            message = f"the ACS URL {_shown(req.acs_url)} is not registered for {sp.entity_id}"
            if same_url:
                message += f" with HTTP-POST (only with {binding_name(same_url[0].binding)})"
            yield ACS_URL.finding(message, expected=registered, actual=visible(req.acs_url),
                                  where=_where(ctx, "/@AssertionConsumerServiceURL"))
    elif req.acs_index_raw is not None:
        indexes = ", ".join(str(a.index) for a in posts if a.index is not None) or "none"
        named = [a for a in sp.acs if a.index is not None and a.index == req.acs_index]
        if req.acs_index is None:
            message = (f"AssertionConsumerServiceIndex {_shown(req.acs_index_raw)} is not a number from 0 to 65535 "
                       "written in the ASCII digits 0-9 alone, without spaces or sign (xs:unsignedShort)")
        elif not named:
            message = f"no ACS with index {req.acs_index} is registered for {sp.entity_id}"
        elif named[0].binding != BINDING_POST:
            message = f"ACS index {req.acs_index} uses {binding_name(named[0].binding)}; this IdP only posts"
        else:
            message = ""
        if message:
            yield ACS_INDEX.finding(message, expected=f"one of: {indexes}", actual=_actual(req.acs_index_raw),
                                    where=_where(ctx, "/@AssertionConsumerServiceIndex"))
    elif not posts:
        bindings = ", ".join(binding_name(a.binding) for a in sp.acs) or "no ACS at all"
        yield NO_POST_ACS.finding(f"{sp.entity_id} registers {bindings}", expected=BINDING_POST, actual=bindings,
                                  where="SP metadata")
    acs = resolve_acs(req, sp)
    if acs is not None and not _https_ok(acs.location, ctx.allow_http_localhost):
        yield ACS_NOT_HTTPS.finding(f"the response would go to {_shown(acs.location)}, which is not https",
                                    expected="https://…", actual=visible(acs.location), where="SP metadata")


def check_nameid_format(ctx: RequestContext) -> Iterator[Finding]:
    requested = ctx.request.nameid_format
    if requested is None or requested in (UNSPECIFIED, *ctx.supported_nameid_formats):
        return
    supported = ", ".join(dict.fromkeys((*ctx.supported_nameid_formats, UNSPECIFIED)))
    yield NAMEID_FORMAT.finding(f"NameIDPolicy asks for {_shown(requested)}, which this IdP does not issue",
                                expected=supported, actual=visible(requested),
                                where=_where(ctx, "/samlp:NameIDPolicy/@Format"))


def check_signature(ctx: RequestContext) -> Iterator[Finding]:
    sig, sp = ctx.signature, ctx.sp
    required_by = "this IdP requires signed requests" if ctx.idp_requires_signed else (
        "the SP's metadata sets AuthnRequestsSigned=\"true\"" if sp is not None and sp.authn_requests_signed else "")
    where = "Signature / SigAlg parameters or ds:Signature"
    algorithm = algorithm_name(sig.algorithm) if sig.algorithm else "unknown"
    if sig.status == "missing" and required_by:
        yield UNSIGNED.finding(f"the request is not signed, and {required_by}", expected="a signed request",
                               actual=sig.message or "unsigned", where=where)
    elif sig.status == "invalid":
        yield BAD_SIGNATURE.finding(sig.message or "the signature does not verify", expected="a valid signature",
                                    actual=f"{algorithm}: does not verify", where=where)
    elif sig.status == "weak":
        yield SHA1.finding(f"{sig.message or 'the signature uses SHA-1'}; this IdP refuses SHA-1",
                           expected="rsa-sha256 or stronger", actual=algorithm, where=where, severity=Severity.ERROR)
    elif sig.status == "verified" and sig.uses_sha1:
        yield SHA1.finding("the signature verifies, but uses SHA-1", expected="rsa-sha256 or stronger",
                           actual=algorithm, where=where)
    elif sig.status == "not-checked" and required_by and sp is not None:
        yield UNVERIFIABLE.finding(f"{required_by}, but {sig.message or 'the signature was not checked'}",
                                   expected="a signing certificate in the SP metadata",
                                   actual=f"{len(sp.signing_certificates)} certificates", where="SP metadata")


CHECKS: tuple[Callable[[RequestContext], Iterator[Finding]], ...] = (
    check_issuer, check_version, check_id, check_issue_instant, check_destination, check_acs,
    check_nameid_format, check_signature,
)


def check_authn_request(ctx: RequestContext) -> list[Finding]:
    """Every REQ finding for one AuthnRequest; none of them hides another."""
    return [found for check in CHECKS for found in check(ctx)]
