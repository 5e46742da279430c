"""MD rules: the structure of an IdP's metadata (SAML Metadata 2.0)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

from metadata.model import Endpoint
from metadata.read import MAX_PER_KIND
from metadata.saml import BROWSER_BINDINGS, SAMLP, binding_name
from metadata.schema import SchemaIssue
from metadata.urls import redact_url
from validator.context import MetadataContext
from validator.findings import Finding, Severity, rule

SCHEMA = rule(
    "MD001", "The metadata is not valid against the SAML 2.0 metadata schema", Severity.ERROR, "metadata",
    what="Validates the document against the OASIS SAML 2.0 metadata schema and the XML-DSig and XML-Enc "
         "schemas it imports; every schema error is reported with its line.",
    why="Service provider libraries (Shibboleth SP, python3-saml, Spring Security) reject or misread "
        "metadata that breaks the schema: a misplaced element, a missing required attribute, a typo in a "
        "namespace.",
    fix="Export the metadata from the IdP again rather than editing it by hand; if it was edited, correct "
        "the element named at the line given.",
)
AMBIGUOUS = rule(
    "MD002", "Several entities in the document and none was chosen", Severity.ERROR, "metadata",
    what="The document is an aggregate (md:EntitiesDescriptor) holding more than one IdP entity, and "
         "neither --entity-id nor the CRM record's idp.entity_id picks one.",
    why="The portal trusts one IdP per biller; which one must be explicit.",
    fix="Name the partner's IdP with --entity-id (or set idp.entity_id in the CRM record).",
)
CHOSEN = rule(
    "MD003", "Entity chosen from an aggregate", Severity.INFO, "metadata",
    what="Reports which entity of an md:EntitiesDescriptor was checked, and how it was chosen.",
    why="Federation feeds hold hundreds of entities; the report must say which one it judged.",
    fix="Nothing to fix.",
)
NOT_FOUND = rule(
    "MD004", "The requested entity is not in the document", Severity.ERROR, "metadata",
    what="The entity ID given with --entity-id (or the CRM record's idp.entity_id) names no entity in the "
         "document; near matches are listed.",
    why="The metadata belongs to another IdP, or the entity ID was mistyped in the record.",
    fix="Use the entity ID exactly as the metadata's entityID attribute spells it, or get the right "
        "metadata from the partner.",
)
NO_IDP = rule(
    "MD005", "The entity has no IDPSSODescriptor", Severity.ERROR, "metadata",
    what="The entity has no md:IDPSSODescriptor role.",
    why="Only an identity provider role says where to send users to sign in; SP metadata or "
        "WS-Federation-only metadata was probably given.",
    fix="Give the IdP's metadata (not the SP's, and not a WS-Federation-only document).",
)
NO_SAML2 = rule(
    "MD006", "The IdP role does not support the SAML 2.0 protocol", Severity.ERROR, "metadata",
    what="protocolSupportEnumeration of the IDPSSODescriptor lacks urn:oasis:names:tc:SAML:2.0:protocol.",
    why="The portal speaks SAML 2.0 only; a SAML 1.1 or Shibboleth 1.3 IdP role cannot serve it.",
    fix="Enable SAML 2.0 on the IdP and export its SAML 2.0 metadata.",
)
ENTITY_ID_URI = rule(
    "MD007", "The entityID is not an absolute URI", Severity.ERROR, "metadata",
    what="The entityID must be an absolute URI (SAML Core §8.3.6): a scheme such as https: or urn:, no "
         "spaces, no surrounding whitespace.",
    why="SPs compare the Issuer of every response with this value; a free-text value such as 'IdP Entity "
        "ID' is rejected by strict SP libraries and breaks as soon as it is retyped.",
    fix="Set the IdP's entity ID (issuer) to a URI, e.g. https://idp.example.com/saml, and update the CRM "
        "record to the same value.",
)
ENTITY_ID_LONG = rule(
    "MD008", "The entityID is longer than 1024 characters", Severity.ERROR, "metadata",
    what="SAML Core §8.3.6 limits entity identifiers to 1024 characters.",
    why="SPs may truncate or refuse longer identifiers.",
    fix="Use a shorter entity ID.",
)
NO_BROWSER_SSO = rule(
    "MD009", "No SingleSignOnService for HTTP-Redirect or HTTP-POST", Severity.ERROR, "metadata",
    what="The IDPSSODescriptor must offer a SingleSignOnService with the HTTP-Redirect or HTTP-POST "
         "binding.",
    why="The portal starts every login itself (SP-initiated) by sending the browser to this endpoint with "
        "an AuthnRequest; without it the portal has nowhere to send users.",
    fix="Enable SP-initiated SSO on the IdP and publish its SSO URL for HTTP-Redirect or HTTP-POST.",
)
NOT_HTTPS = rule(
    "MD010", "An endpoint Location is not an https URL", Severity.ERROR, "metadata",
    what="Every endpoint (SingleSignOnService, SingleLogoutService, …) must have an absolute https URL as "
         "its Location.",
    why="SAML messages carry credentials and personal data; over http they can be read and changed in "
        "transit, and browsers block the form posts from an https page.",
    fix="Publish the endpoint over https with a valid TLS certificate and export the metadata again.",
)
DANGEROUS_SCHEME = rule(
    "MD011", "An endpoint Location uses a script or data scheme", Severity.ERROR, "metadata",
    what="An endpoint Location uses javascript:, data:, vbscript: or file:.",
    why="An SP that redirects a browser to such a Location runs the attacker's script in its own origin; "
        "this is an attack, not a misconfiguration.",
    fix="Do not use this metadata; ask the partner where it came from.",
)
CREDENTIALS_IN_URL = rule(
    "MD016", "An endpoint Location carries a user name or password", Severity.ERROR, "metadata",
    what="No endpoint Location has a user name or password before its host (https://user:secret@host/…).",
    why="The portal sends every user's browser to the SSO URL: a password in it reaches every browser, proxy "
        "and log on the way, and browsers refuse or warn about such URLs. Reports show it as ***.",
    fix="Remove the user name and password from the Location in the IdP's configuration and export the "
        "metadata again; change that password, since the metadata has been shared.",
)
EXPIRED_METADATA = rule(
    "MD012", "The metadata's validUntil is in the past", Severity.ERROR, "metadata",
    what="validUntil on the EntitiesDescriptor, EntityDescriptor or IDPSSODescriptor is earlier than now.",
    why="SPs must discard expired metadata (SAML Metadata §2.2.1); the login would stop working.",
    fix="Download fresh metadata from the IdP; if the IdP sets validUntil, fetch it from the metadata URL "
        "regularly instead of uploading a copy.",
)
NAMEID_FORMATS = rule(
    "MD013", "NameID formats offered", Severity.INFO, "metadata",
    what="Lists the md:NameIDFormat values the IdP declares.",
    why="The NameID format the portal asks for must be one the IdP can send.",
    fix="Nothing to fix; compare with the CRM record's idp.nameid_format.",
)
WANTS_SIGNED_REQUESTS = rule(
    "MD014", "The IdP wants signed AuthnRequests", Severity.INFO, "metadata",
    what="WantAuthnRequestsSigned is true on the IDPSSODescriptor.",
    why="The portal must sign its AuthnRequests for this partner, and the partner must hold the portal's "
        "signing certificate.",
    fix="Enable request signing for this biller and send the partner the portal's SP metadata.",
)
BAD_VALID_UNTIL = rule(
    "MD015", "validUntil is not a valid date-time", Severity.ERROR, "metadata",
    what="validUntil must be an xs:dateTime, e.g. 2030-01-01T00:00:00Z.",
    why="An SP that cannot read the expiry of metadata must treat it as expired.",
    fix="Correct or remove the validUntil attribute.",
)

_DANGEROUS = ("javascript", "data", "vbscript", "file")


def schema_findings(issues: list[SchemaIssue], source: str) -> Iterator[Finding]:
    for issue in issues:
        yield SCHEMA.finding(issue.message, where=f"{source}, line {issue.line}")


def check_protocol(ctx: MetadataContext) -> Iterator[Finding]:
    idp = ctx.entity.idp
    if idp is None:
        others = ", ".join(ctx.entity.other_roles) or "no role at all"
        yield NO_IDP.finding(
            f"entity {ctx.entity.entity_id!r} has {others}", expected="md:IDPSSODescriptor",
            actual=others, where=ctx.where(ctx.entity.line, "md:EntityDescriptor"),
        )
    elif not idp.supports_saml2:
        yield NO_SAML2.finding(
            "the IDPSSODescriptor does not list SAML 2.0 in protocolSupportEnumeration",
            expected=SAMLP, actual=" ".join(idp.protocols) or "(empty)",
            where=ctx.where(idp.line, "md:IDPSSODescriptor"),
        )


_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


def is_absolute_uri(value: str) -> bool:
    """A scheme, a colon and something after it, with no whitespace anywhere (RFC 3986 §4.3)."""
    return _ABSOLUTE_URI.fullmatch(value) is not None


def check_entity_id(ctx: MetadataContext) -> Iterator[Finding]:
    entity_id = ctx.entity.entity_id
    where = ctx.where(ctx.entity.line, "md:EntityDescriptor/@entityID")
    if not is_absolute_uri(entity_id):
        yield ENTITY_ID_URI.finding(
            f"the entityID {entity_id!r} is not an absolute URI", expected="an absolute URI such as "
            "https://idp.example.com/saml", actual=entity_id, where=where,
        )
    if len(entity_id) > 1024:
        yield ENTITY_ID_LONG.finding(
            f"the entityID is {len(entity_id)} characters long", expected="at most 1024",
            actual=str(len(entity_id)), where=where,
        )


def check_endpoints(ctx: MetadataContext) -> Iterator[Finding]:
    idp = ctx.entity.idp
    if idp is None:
        return
    browser = [e for e in idp.sso if e.binding in BROWSER_BINDINGS]
    if not browser:
        offered = ", ".join(binding_name(e.binding) for e in idp.sso) or "none"
        yield NO_BROWSER_SSO.finding(
            "the IdP offers no SingleSignOnService that a browser can be sent to",
            expected="HTTP-Redirect or HTTP-POST", actual=offered,
            where=ctx.where(idp.line, "md:IDPSSODescriptor"),
        )
    for endpoint in (*idp.sso, *idp.slo, *idp.other_endpoints):
        yield from _location_findings(ctx, endpoint, "Location", endpoint.location)
        if endpoint.response_location is not None:
            yield from _location_findings(ctx, endpoint, "ResponseLocation", endpoint.response_location)


# Browsers drop tabs and line feeds anywhere in a URL and C0 controls and spaces around it
# (WHATWG URL): "java\tscript:" runs as "javascript:".
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f]")


def _location_findings(ctx: MetadataContext, endpoint: Endpoint, attribute: str, value: str) -> Iterator[Finding]:
    clean = _URL_IGNORED.search(value) is None
    where = ctx.where(endpoint.line, f"md:{endpoint.kind}/@{attribute} ({binding_name(endpoint.binding)})")
    shown = redact_url(value)
    if shown != value and value[:8].lower().startswith(("https://", "http://")):
        yield CREDENTIALS_IN_URL.finding(f"the {endpoint.kind} {attribute} has a user name or password before "
                                         "its host (shown as ***)", expected="https://host/…", actual=shown,
                                         where=where)
    # The scheme is case-insensitive (RFC 3986 §3.1): HTTPS://IDP.EXAMPLE.COM/ is fine.
    if clean and value[:8].lower() == "https://" and _has_host(value):
        return
    squashed = _URL_IGNORED.sub("", value)
    scheme = squashed.split(":", 1)[0].lower() if ":" in squashed else ""
    if scheme in _DANGEROUS:
        yield DANGEROUS_SCHEME.finding(f"the {endpoint.kind} {attribute} uses the {scheme}: scheme",
                                       actual=shown, where=where)
    elif not clean:
        yield NOT_HTTPS.finding(f"the {endpoint.kind} {attribute} contains whitespace or control characters",
                                expected="an https URL without spaces or control characters", actual=shown,
                                where=where)
    else:
        yield NOT_HTTPS.finding(f"the {endpoint.kind} {attribute} is not an absolute https URL",
                                expected="https://…", actual=shown, where=where)


def _has_host(url: str) -> bool:
    # What follows "https://" up to the path, query or fragment; cheaper than urlsplit, which
    # counts when every endpoint of a 10,000-entity aggregate is checked.
    authority = re.split(r"[/?#]", url[8:], maxsplit=1)[0]
    host = authority.rsplit("@", 1)[-1].split(":", 1)[0] if not authority.startswith("[") else authority
    return bool(host)


_XS_DATETIME = re.compile(
    r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"
)


def parse_datetime(value: str) -> datetime | None:
    """An xs:dateTime with a time zone (``Z`` or ``±hh:mm``), or None when it is not one.

    Only the lexical form of XML Schema §3.2.7 is accepted (not ISO 8601's other forms, such
    as ``20300101T000000Z``); ``24:00:00`` is the first instant of the next day.
    """
    text = value.strip()
    if not _XS_DATETIME.fullmatch(text):
        return None
    next_day = text[11:19] == "24:00:00"
    if next_day:
        text = text[:11] + "00:00:00" + text[19:]
    text = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed + timedelta(days=1) if next_day else parsed


def check_valid_until(ctx: MetadataContext) -> Iterator[Finding]:
    candidates = [
        ("md:EntitiesDescriptor" if ctx.document.root == "EntitiesDescriptor" else "md:EntityDescriptor",
         ctx.document.valid_until, None),
        ("md:EntityDescriptor", ctx.entity.valid_until, ctx.entity.line),
    ]
    if ctx.entity.idp is not None:
        candidates.append(("md:IDPSSODescriptor", ctx.entity.idp.valid_until, ctx.entity.idp.line))
    seen = set()
    for element, value, line in candidates:
        if value is None or (element, value) in seen:
            continue
        seen.add((element, value))
        when = parse_datetime(value)
        where = ctx.where(line, f"{element}/@validUntil")
        if when is None:
            yield BAD_VALID_UNTIL.finding(f"validUntil {value!r} is not an xs:dateTime with a time zone",
                                          actual=value, where=where)
        elif when < ctx.now:
            yield EXPIRED_METADATA.finding(
                f"the metadata expired on {when:%Y-%m-%d %H:%M} UTC ({(ctx.now - when).days} days ago)",
                expected=f"later than {ctx.now:%Y-%m-%dT%H:%M:%SZ}", actual=value, where=where,
            )


UNREAD = rule(
    "MD022", "A role lists more elements of one kind than any IdP or SP does", Severity.ERROR, "metadata",
    what=f"An IDPSSODescriptor (or SPSSODescriptor) has more than {MAX_PER_KIND} children of one kind: "
         "SingleSignOnService, SingleLogoutService, KeyDescriptor, NameIDFormat, saml:Attribute or another "
         "endpoint. Only the first ones are read and checked.",
    why="Real IdPs list a handful of each. Thousands are generated or hostile, and each one read costs time "
        "in every check and in the report: 43,000 endpoints in 5 MiB of metadata took five seconds.",
    fix="Export the metadata from the IdP again; it never writes that many.",
)


def check_unread(ctx: MetadataContext) -> Iterator[Finding]:
    for role in ctx.entity.idp_roles:
        for element, count in role.unread:
            yield UNREAD.finding(
                f"the IDPSSODescriptor lists {MAX_PER_KIND + count:,} {element} elements; the first {MAX_PER_KIND} "
                f"were read and checked, the other {count:,} were not",
                expected=f"at most {MAX_PER_KIND}", actual=f"{MAX_PER_KIND + count:,}",
                where=ctx.where(role.line, f"md:IDPSSODescriptor/{element}"))


def check_facts(ctx: MetadataContext) -> Iterator[Finding]:
    idp = ctx.entity.idp
    if idp is None:
        return
    formats = ", ".join(idp.nameid_formats) or "none declared"
    yield NAMEID_FORMATS.finding(f"NameID formats offered: {formats}",
                                 where=ctx.where(idp.line, "md:IDPSSODescriptor/md:NameIDFormat"))
    if idp.want_authn_requests_signed:
        yield WANTS_SIGNED_REQUESTS.finding(
            "WantAuthnRequestsSigned=\"true\": the portal must sign its AuthnRequests to this IdP",
            where=ctx.where(idp.line, "md:IDPSSODescriptor/@WantAuthnRequestsSigned"),
        )


CHECKS = (check_protocol, check_entity_id, check_endpoints, check_valid_until, check_unread, check_facts)
