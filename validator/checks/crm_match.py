"""CRM rules (CRM001–): does the IdP's metadata match what the partner told us in discovery?

The CRM record is the contract. Values must match exactly; when they do not, the near miss
is named (trailing slash, http for https, letter case, spaces, a vendor's URI form of a
claim) so that the fix says precisely what to change and where.
"""

from __future__ import annotations

from collections.abc import Iterator

from metadata.model import Endpoint, IdPRole
from metadata.saml import BROWSER_BINDINGS, binding_name
from metadata.urls import redact_url
from validator.context import MetadataContext
from validator.findings import Finding, Severity, rule
from validator.nearmiss import claim_near_misses, uri_difference
from validator.vendor import detect_vendor, setting

ENTITY_ID = rule(
    "CRM001", "The IdP entity ID differs from the CRM record", Severity.ERROR, "crm-match",
    what="The metadata's entityID must equal the record's idp.entity_id exactly (character for "
         "character).",
    why="The portal accepts a response only when its Issuer equals the configured entity ID; a trailing "
        "slash or http for https is enough to make every login fail.",
    fix="Correct whichever side is wrong: the CRM record if the partner's metadata is right, or the IdP's "
        "entity ID (issuer) setting otherwise.",
)
SSO_URL = rule(
    "CRM002", "The CRM record's SSO URL is not offered by the metadata", Severity.ERROR, "crm-match",
    what="The record's idp.sso_url must be the Location of a SingleSignOnService with the HTTP-Redirect "
         "or HTTP-POST binding.",
    why="The portal sends users to the SSO URL from the record; if the IdP does not serve SAML there, "
        "users see an error page at their IdP.",
    fix="Set idp.sso_url in the CRM record to the SingleSignOnService Location from the metadata (or ask "
        "the partner which one is current).",
)
NAMEID_FORMAT = rule(
    "CRM003", "The CRM record's NameID format is not offered", Severity.ERROR, "crm-match",
    what="The record's idp.nameid_format must be one of the md:NameIDFormat values the IdP declares.",
    why="The portal asks for this format in its AuthnRequest; an IdP that does not support it answers "
        "with an InvalidNameIDPolicy error instead of signing the user in.",
    fix="Configure the IdP to release that NameID format (Okta: 'Name ID format'; Entra ID: 'Unique User "
        "Identifier' claim; ADFS: a 'Transform an Incoming Claim' rule to Name ID), or correct the record.",
)
CLAIM_NAME = rule(
    "CRM004", "A claim is offered under a different name than the CRM record's", Severity.WARNING,
    "crm-match",
    what="Where the metadata lists saml:Attribute elements (ADFS, PingOne and vCenter do), each claim of "
         "the record must be offered under exactly its configured name; near misses are reported: case, "
         "spaces, a vendor URI or OID form, a FriendlyName.",
    why="The portal matches claim names exactly: 'accountnumber' is not 'AccountNumber', and Entra's "
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress is not 'Email'. Metadata lists "
        "the claims an IdP knows (AD FS and PingOne list their whole catalogue), not what a claim rule will "
        "send to the portal, so this is a warning: the test login proves what is sent.",
    fix="Rename the claim in the IdP's attribute mapping to the exact name in the CRM record.",
)
VENDOR = rule(
    "CRM006", "The metadata comes from another IdP product than the CRM record says", Severity.WARNING,
    "crm-match",
    what="Compares the record's idp.vendor with the vendor detected from the metadata's entity ID and "
         "endpoints (reported with its evidence).",
    why="The setup advice (which screen, which setting) depends on the product; a record naming the wrong "
        "one sends the partner to settings that do not exist, and may mean the metadata of another system "
        "was sent.",
    fix="Correct idp.vendor in the CRM record, or ask the partner which system the metadata came from.",
)
CLAIM_NOT_OFFERED = rule(
    "CRM005", "A required claim is not among the attributes the metadata lists", Severity.WARNING,
    "crm-match",
    what="When the metadata lists attributes, each required claim of the record should be among them.",
    why="Attributes listed in metadata are those the IdP knows how to release; a missing one usually "
        "needs a custom attribute or claim rule. Metadata lists are not always complete, so this is a "
        "warning; the test login proves it.",
    fix="Add the claim to the IdP's attribute statements for the portal's application.",
)



def _vendor_key(ctx: MetadataContext) -> str | None:
    """The product whose words the fixes use: what the metadata shows, else what the record says."""
    detection = detect_vendor(ctx.entity)
    if detection is not None:
        return detection.vendor.key
    if ctx.crm is not None and ctx.crm.idp.vendor not in (None, "other"):
        return str(ctx.crm.idp.vendor)
    return None


def check_vendor(ctx: MetadataContext) -> Iterator[Finding]:
    if ctx.crm is None or ctx.crm.idp.vendor in (None, "other"):
        return
    detection = detect_vendor(ctx.entity)
    if detection is None or detection.vendor.key == ctx.crm.idp.vendor:
        return
    yield VENDOR.finding(
        f"the record says {ctx.crm.idp.vendor!r}, but the metadata looks like {detection.vendor.name} "
        f"({'; '.join(detection.evidence)})",
        expected=str(ctx.crm.idp.vendor), actual=detection.vendor.key,
        where=ctx.where(ctx.entity.line, "md:EntityDescriptor"),
    )


def check_entity_id(ctx: MetadataContext) -> Iterator[Finding]:
    if ctx.crm is None or ctx.crm.idp.entity_id is None:
        return
    expected, actual = ctx.crm.idp.entity_id, ctx.entity.entity_id
    if expected == actual:
        return
    yield entity_id_finding(expected, actual, _vendor_key(ctx),
                            ctx.where(ctx.entity.line, "md:EntityDescriptor/@entityID"))


def entity_id_finding(expected: str, actual: str, vendor_key: str | None, where: str) -> Finding:
    """CRM001 for a record naming `expected` where the metadata holds `actual`: the near miss named,
    worded the same wherever it is found (``metadata``, ``response``)."""
    difference = uri_difference(expected, actual)
    place = setting(vendor_key, "issuer")
    message = (f"the entity IDs differ by {difference}" if difference
               else "the metadata belongs to another entity than the record names")
    return ENTITY_ID.finding(
        message, expected=expected, actual=actual, where=where,
        fix=(f"Make both identical: correct idp.entity_id in the CRM record to {actual!r} if the metadata is "
             f"right, or change {place} to {expected!r}."),
    )


def check_sso_url(ctx: MetadataContext) -> Iterator[Finding]:
    idp = ctx.entity.idp
    if ctx.crm is None or ctx.crm.idp.sso_url is None or idp is None:
        return
    expected = ctx.crm.idp.sso_url
    browser = [e for e in idp.sso if e.binding in BROWSER_BINDINGS]
    if any(e.location == expected for e in browser):
        return
    offered = "; ".join(f"{binding_name(e.binding)} {redact_url(e.location)}" for e in browser) or "none"
    same = next((e for e in idp.sso if e.location == expected), None)
    if same is not None:
        yield _sso_url_not_for_browsers(ctx, same, offered)
    else:
        yield _sso_url_elsewhere(ctx, idp, expected, browser, offered)


def _sso_url_not_for_browsers(ctx: MetadataContext, endpoint: Endpoint, offered: str) -> Finding:
    shown = redact_url(endpoint.location)  # CRM117 reports a password in it
    return SSO_URL.finding(
        f"the URL is offered only for {binding_name(endpoint.binding)}, which a browser cannot use",
        expected=f"{shown} (HTTP-Redirect or HTTP-POST)", actual=offered,
        where=ctx.where(endpoint.line, "md:SingleSignOnService"),
    )


def _sso_url_elsewhere(
    ctx: MetadataContext, idp: IdPRole, expected: str, browser: list[Endpoint], offered: str
) -> Finding:
    close = next(((e, d) for e in browser if (d := uri_difference(expected, e.location))), None)
    message = (f"the record's SSO URL differs from the metadata's by {close[1]}" if close
               else "the record's SSO URL is not among the IdP's SingleSignOnService locations")
    return SSO_URL.finding(
        message, expected=redact_url(expected), actual=offered,
        where=ctx.where(idp.line, "md:IDPSSODescriptor/md:SingleSignOnService"),
        fix=(f"Set idp.sso_url in the CRM record to {redact_url(close[0].location)!r}." if close else None),
    )


def check_nameid_format(ctx: MetadataContext) -> Iterator[Finding]:
    idp = ctx.entity.idp
    if ctx.crm is None or ctx.crm.idp.nameid_format is None or idp is None:
        return
    expected = ctx.crm.idp.nameid_format
    if not idp.nameid_formats or expected in idp.nameid_formats:
        return
    yield NAMEID_FORMAT.finding(
        "the IdP does not declare the NameID format the record asks for",
        expected=expected, actual=", ".join(idp.nameid_formats),
        where=ctx.where(idp.line, "md:IDPSSODescriptor/md:NameIDFormat"),
    )


def check_offered_claims(ctx: MetadataContext) -> Iterator[Finding]:
    idp = ctx.entity.idp
    if ctx.crm is None or idp is None or not idp.attributes:
        return
    offered = [(a.name, a.friendly_name) for a in idp.attributes]
    names = {a.name for a in idp.attributes}
    place = setting(_vendor_key(ctx), "claim")
    for claim in ctx.crm.claims:
        if claim.name in names:
            continue
        misses = claim_near_misses(claim.name, offered)
        for miss in misses:
            line = next((a.line for a in idp.attributes if a.name == miss.actual), idp.line)
            yield CLAIM_NAME.finding(
                f"the claim {claim.name!r} is offered as {miss.actual!r}: {miss.reason}",
                expected=claim.name, actual=miss.actual, where=ctx.where(line, "saml:Attribute/@Name"),
                fix=f"Send the claim under exactly the name {claim.name!r}. Where: {place}.",
            )
        if not misses and claim.required:
            yield CLAIM_NOT_OFFERED.finding(
                f"the required claim {claim.name!r} is not among the {len(idp.attributes)} attributes the "
                "metadata lists",
                expected=claim.name, actual=f"{len(idp.attributes)} attributes, none named {claim.name!r}",
                where=ctx.where(idp.line, "md:IDPSSODescriptor/saml:Attribute"),
                fix=f"Add the claim {claim.name!r}. Where: {place}.",
            )


CHECKS = (check_entity_id, check_sso_url, check_nameid_format, check_offered_claims, check_vendor)
