"""REQ checks: an SP's AuthnRequest as the test IdP receives it (SAML Core §3.4, Profiles §4.1.4.1).

The IdP decodes the binding (:mod:`metadata.bindings`), checks the signature with
:func:`request_signature`, reads the request with :func:`metadata.authn_request.read_authn_request`
(from the signed bytes when an XML signature verified), and shows every finding of
:func:`check_authn_request` to the SP developer. A response goes only to the ACS that :func:`resolve_acs` returns, and
:func:`check_acs` judges that same decision (:func:`metadata.service_provider.acs_resolution`).

The rules themselves, with their documentation, are in :mod:`validator.checks.request_rules`;
signature verification is in :mod:`validator.checks.request_signature`. This module re-exports
what the IdP uses, since the IdP may import only this module of the validator's checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from metadata.authn_request import AuthnRequest, NotAnAuthnRequest
from metadata.bindings import BindingError
from metadata.errors import UnsafeXML
from metadata.saml import BINDING_POST, ENTITY, UNSPECIFIED, binding_name
from metadata.service_provider import AcsResolution, ServiceProvider, acs_resolution, resolve_acs
from metadata.signing import algorithm_name
from metadata.xml import visible
from validator.checks.request_rules import (
    ACS_CONFLICT,
    ACS_INDEX,
    ACS_NOT_HTTPS,
    ACS_URL,
    BAD_ID,
    BAD_INSTANT,
    BAD_SIGNATURE,
    BASE64,
    DEFLATE,
    DUPLICATE,
    ENCODED_NAME,
    ISSUER_FORMAT,
    MALFORMED_QUERY,
    MISSING,
    NAMEID_FORMAT,
    NO_DESTINATION,
    NO_ISSUER,
    NO_POST_ACS,
    NOT_AUTHN_REQUEST,
    PROTOCOL_BINDING,
    RELAY_STATE,
    SHA1,
    STALE_INSTANT,
    TOO_LARGE,
    UNKNOWN_SP,
    UNSAFE_XML,
    UNSIGNED,
    UNVERIFIABLE,
    VERSION,
    WRONG_DESTINATION,
)
from validator.checks.request_signature import SignatureCheck, SignatureStatus, request_signature
from validator.checks.wording import actual as _actual
from validator.checks.wording import at
from validator.checks.wording import duration as _duration
from validator.checks.wording import shown as _shown
from validator.findings import Finding, Severity

__all__ = [
    "ACS_CONFLICT", "ACS_INDEX", "ACS_NOT_HTTPS", "ACS_URL", "BAD_ID", "BAD_INSTANT", "BAD_SIGNATURE", "BASE64",
    "CHECKS", "DEFLATE", "DUPLICATE", "ENCODED_NAME", "ISSUER_FORMAT", "MALFORMED_QUERY", "MAX_AGE_SECONDS",
    "MAX_SKEW_SECONDS", "MISSING", "NAMEID_FORMAT", "NOT_AUTHN_REQUEST", "NO_DESTINATION", "NO_ISSUER",
    "NO_POST_ACS", "PROTOCOL_BINDING", "RELAY_STATE", "SHA1", "STALE_INSTANT", "TOO_LARGE", "UNKNOWN_SP",
    "UNSAFE_XML", "UNSIGNED", "UNVERIFIABLE", "VERSION", "WRONG_DESTINATION", "RequestContext", "SignatureCheck",
    "SignatureStatus", "check_acs", "check_authn_request", "check_destination", "check_id", "check_issue_instant",
    "check_issuer", "check_nameid_format", "check_signature", "check_version", "finding_for_binding_error",
    "finding_for_not_authn_request", "finding_for_unsafe_request", "is_valid_request_id", "parse_instant",
    "request_signature", "resolve_acs",
]

MAX_AGE_SECONDS = 300
"""How old an IssueInstant may be before the clock skew is added."""
MAX_SKEW_SECONDS = 300
LISTED_SPS = 20
"""Registered SP entity IDs named in REQ011's expected value; more are counted."""


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
        listed = ", ".join(ctx.registered_entity_ids[:LISTED_SPS]) + (
            f" and {len(ctx.registered_entity_ids) - LISTED_SPS} more" if len(ctx.registered_entity_ids) > LISTED_SPS
            else "")
        yield UNKNOWN_SP.finding(
            message, expected=listed or "a registered SP entity ID",
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


def _registered_posts(sp: ServiceProvider) -> list[str]:
    return [a.location for a in sp.acs if a.binding == BINDING_POST]


def _acs_conflict(ctx: RequestContext, resolution: AcsResolution) -> Finding:
    others = " and ".join(resolution.conflicting)
    return ACS_CONFLICT.finding(f"AssertionConsumerServiceIndex is sent together with {others}",
                                expected="AssertionConsumerServiceIndex alone, or a URL (with ProtocolBinding)",
                                actual=f"index {_shown(ctx.request.acs_index_raw)} with {others}",
                                where=_where(ctx, ""))


def _acs_by_url(ctx: RequestContext, sp: ServiceProvider, resolution: AcsResolution) -> Iterator[Finding]:
    # With another ProtocolBinding, REQ023 has said all there is when the URL is registered at all.
    registered = bool(resolution.named) if resolution.other_binding else resolution.candidate is not None
    if registered:
        return
    url = ctx.request.acs_url or ""
    message = f"the ACS URL {_shown(url)} is not registered for {sp.entity_id}"
    if resolution.named:
        message += f" with HTTP-POST (only with {binding_name(resolution.named[0].binding)})"
    yield ACS_URL.finding(message, expected=", ".join(_registered_posts(sp)) or "none", actual=visible(url),
                          where=_where(ctx, "/@AssertionConsumerServiceURL"))


def _acs_by_index(ctx: RequestContext, sp: ServiceProvider, resolution: AcsResolution) -> Iterator[Finding]:
    req = ctx.request
    if req.acs_index is None:
        message = (f"AssertionConsumerServiceIndex {_shown(req.acs_index_raw)} is not a number from 0 to 65535 "
                   "written in the ASCII digits 0-9 alone, without spaces or sign (xs:unsignedShort)")
    elif not resolution.named:
        message = f"no ACS with index {req.acs_index} is registered for {sp.entity_id}"
    elif resolution.named[0].binding != BINDING_POST:
        message = f"ACS index {req.acs_index} uses {binding_name(resolution.named[0].binding)}; this IdP only posts"
    else:
        return
    indexes = ", ".join(str(a.index) for a in sp.acs if a.binding == BINDING_POST and a.index is not None) or "none"
    yield ACS_INDEX.finding(message, expected=f"one of: {indexes}", actual=_actual(req.acs_index_raw),
                            where=_where(ctx, "/@AssertionConsumerServiceIndex"))


def _acs_by_default(ctx: RequestContext, sp: ServiceProvider, resolution: AcsResolution) -> Iterator[Finding]:
    if resolution.candidate is not None:
        return
    bindings = ", ".join(binding_name(a.binding) for a in sp.acs) or "no ACS at all"
    yield NO_POST_ACS.finding(f"{sp.entity_id} registers {bindings}", expected=BINDING_POST, actual=bindings,
                              where="SP metadata")


_ACS_BY: dict[str, Callable[[RequestContext, ServiceProvider, AcsResolution], Iterator[Finding]]] = {
    "url": _acs_by_url, "index": _acs_by_index, "default": _acs_by_default,
}


def check_acs(ctx: RequestContext) -> Iterator[Finding]:
    """REQ020–REQ025, judging the decision :func:`resolve_acs` makes for this request."""
    resolution = acs_resolution(ctx.request, ctx.sp)
    if resolution.asked_by == "conflict":
        yield _acs_conflict(ctx, resolution)
        return
    if resolution.other_binding is not None:
        yield PROTOCOL_BINDING.finding(
            f"the SP asks for the response with {binding_name(resolution.other_binding)}",
            expected=BINDING_POST, actual=visible(resolution.other_binding), where=_where(ctx, "/@ProtocolBinding"))
    if ctx.sp is None:
        return
    yield from _ACS_BY[resolution.asked_by](ctx, ctx.sp, resolution)
    acs = resolution.endpoint
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


_SIGNATURE_WHERE = "Signature / SigAlg parameters or ds:Signature"


def _signature_required_by(ctx: RequestContext) -> str:
    if ctx.idp_requires_signed:
        return "this IdP requires signed requests"
    if ctx.sp is not None and ctx.sp.authn_requests_signed:
        return "the SP's metadata sets AuthnRequestsSigned=\"true\""
    return ""


def _signature_problem(sig: SignatureCheck) -> Iterator[Finding]:
    """A signature that is there but fails, is refused, or uses SHA-1."""
    algorithm = algorithm_name(sig.algorithm) if sig.algorithm else "unknown"
    if sig.status == "invalid":
        yield BAD_SIGNATURE.finding(sig.message or "the signature does not verify", expected="a valid signature",
                                    actual=f"{algorithm}: does not verify", where=_SIGNATURE_WHERE)
    elif sig.status == "weak":
        yield SHA1.finding(f"{sig.message or 'the signature uses SHA-1'}; this IdP refuses SHA-1",
                           expected="rsa-sha256 or stronger", actual=algorithm, where=_SIGNATURE_WHERE,
                           severity=Severity.ERROR)
    elif sig.status == "verified" and sig.uses_sha1:
        yield SHA1.finding("the signature verifies, but uses SHA-1", expected="rsa-sha256 or stronger",
                           actual=algorithm, where=_SIGNATURE_WHERE)


def check_signature(ctx: RequestContext) -> Iterator[Finding]:
    sig, sp = ctx.signature, ctx.sp
    required_by = _signature_required_by(ctx)
    if sig.status == "missing" and required_by:
        yield UNSIGNED.finding(f"the request is not signed, and {required_by}", expected="a signed request",
                               actual=sig.message or "unsigned", where=_SIGNATURE_WHERE)
    elif sig.status == "not-checked" and required_by and sp is not None:
        yield UNVERIFIABLE.finding(f"{required_by}, but {sig.message or 'the signature was not checked'}",
                                   expected="a signing certificate in the SP metadata",
                                   actual=f"{len(sp.signing_certificates)} certificates", where="SP metadata")
    else:
        yield from _signature_problem(sig)


CHECKS: tuple[Callable[[RequestContext], Iterator[Finding]], ...] = (
    check_issuer, check_version, check_id, check_issue_instant, check_destination, check_acs,
    check_nameid_format, check_signature,
)


def check_authn_request(ctx: RequestContext) -> list[Finding]:
    """Every REQ finding for one AuthnRequest; none of them hides another."""
    return [found for check in CHECKS for found in check(ctx)]
