"""SPM rules: whether an SP's metadata lets the test IdP answer it (registering an SP at runtime).

The IdP registers an SP through ``POST /api/v1/sps`` or its ``/sps`` page only when none of these is
an error. Input that cannot be read at all keeps the XML findings every inspection gives
(:func:`unreadable`); a metadata URL that cannot be fetched keeps its NET finding (:func:`unfetched`).
The checks are pure: a parsed document, the entity asked for, the options and the IdP's dev mode in,
findings out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from metadata.errors import UnsafeXML
from metadata.fetch_diagnostics import FetchError
from metadata.model import EntityDescriptor, MetadataDocument, SPRole
from metadata.read import NotMetadata
from metadata.saml import BINDING_POST
from metadata.urls import redact_url
from validator.checks.fetching import finding_for_fetch_error
from validator.checks.input import finding_for_not_metadata, finding_for_unsafe_xml
from validator.findings import Finding, Severity, rule

SUBJECT = "sp-metadata"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Where an http ACS is allowed, and only in the IdP's dev mode (SECURITY.md §5)."""

NO_SP = rule(
    "SPM001", "The metadata has no SAML 2.0 SPSSODescriptor", Severity.ERROR, SUBJECT,
    what="The entity (or, for an aggregate, every entity) has no md:SPSSODescriptor whose "
         "protocolSupportEnumeration lists SAML 2.0.",
    why="Only a service provider role says where the IdP may send its responses; an IdP's metadata or a "
        "SAML 1.1 SP role gives the test IdP nothing to answer.",
    fix="Give the SP's own SAML 2.0 metadata (what the SP publishes at its metadata URL), not the IdP's.",
)
AMBIGUOUS_SP = rule(
    "SPM002", "Several SP entities in the document and none was chosen", Severity.ERROR, SUBJECT,
    what="The document is an aggregate (md:EntitiesDescriptor) with more than one SP entity, and no entity "
         "ID picks one.",
    why="The IdP registers one SP per registration; which one must be explicit.",
    fix="Name the SP with entity_id (the API) or the Entity ID field (the page).",
)
SP_NOT_FOUND = rule(
    "SPM003", "The chosen SP entity is not in the document", Severity.ERROR, SUBJECT,
    what="The entity ID given names no entity with an SPSSODescriptor in the document.",
    why="The metadata belongs to another SP, or the entity ID was mistyped.",
    fix="Use the entity ID exactly as the metadata's entityID attribute spells it; the message lists the SP "
        "entities found.",
)
NO_POST_ACS = rule(
    "SPM004", "No AssertionConsumerService for HTTP-POST", Severity.ERROR, SUBJECT,
    what="The SPSSODescriptor has no md:AssertionConsumerService with the HTTP-POST binding.",
    why="The test IdP answers only with the HTTP-POST binding (a browser form posted to the ACS); with no "
        "such endpoint there is nowhere to send a response.",
    fix="Enable the HTTP-POST binding on the SP and export its metadata again.",
)
ACS_NOT_HTTPS = rule(
    "SPM005", "An HTTP-POST AssertionConsumerService Location is not an https URL", Severity.ERROR, SUBJECT,
    what="Every HTTP-POST ACS Location must be an absolute https URL without spaces or control characters. "
         "In the IdP's dev mode, http is accepted on localhost, 127.0.0.1 and ::1 only.",
    why="The response carries the user's identity; posted over http it can be read and replayed, and the IdP "
        "refuses to send it anywhere but https (SECURITY.md §5).",
    fix="Publish the ACS over https; for an SP on your own machine, use http://localhost with the IdP in dev "
        "mode.",
)
NO_ENCRYPTION_KEY = rule(
    "SPM006", "Encryption is asked for, but the SP has no encryption key", Severity.ERROR, SUBJECT,
    what="encrypt is true, and the SPSSODescriptor has no KeyDescriptor (use=\"encryption\" or without use) "
         "with an X.509 certificate.",
    why="The assertion is encrypted to the SP's certificate; without one the IdP cannot encrypt it.",
    fix="Set encrypt to false, or add a KeyDescriptor use=\"encryption\" with the SP's certificate to its "
        "metadata.",
)
NO_SIGNING_KEY = rule(
    "SPM007", "AuthnRequestsSigned is true, but the SP has no signing key", Severity.WARNING, SUBJECT,
    what="The SPSSODescriptor says AuthnRequestsSigned=\"true\" and has no KeyDescriptor (use=\"signing\" or "
         "without use) with an X.509 certificate.",
    why="The IdP then expects every AuthnRequest signed but has no certificate to verify it with: each login "
        "from this SP is refused.",
    fix="Add the SP's signing certificate as a KeyDescriptor use=\"signing\", or set AuthnRequestsSigned to "
        "false.",
)


@dataclass(frozen=True)
class SPChoice:
    """The SP entity of a document to register, or None when none could be chosen (see `findings`)."""

    entity: EntityDescriptor | None
    findings: tuple[Finding, ...]


def unreadable(error: UnsafeXML | NotMetadata, source: str) -> Finding:
    """The XML finding for metadata that could not be read: unsafe, malformed, over a limit, not metadata."""
    if isinstance(error, NotMetadata):
        return finding_for_not_metadata(error, source)
    return finding_for_unsafe_xml(error, source)


def unfetched(error: FetchError) -> Finding:
    """The NET finding for a metadata URL that was refused or could not be fetched."""
    return finding_for_fetch_error(error)


def choose_sp(document: MetadataDocument, wanted: str | None, source: str) -> SPChoice:
    """The SP entity `wanted` names, or the only SP entity of the document (SPM001–SPM003)."""
    sps = [e for e in document.entities if e.sp is not None]
    if wanted is not None:
        found = next((e for e in sps if e.entity_id == wanted), None)
        if found is not None:
            return SPChoice(found, ())
        listed = _listed(sps)
        return SPChoice(None, (SP_NOT_FOUND.finding(
            f"no SP entity {wanted!r} in the document; its SP entities: {listed}", expected=wanted, actual=listed,
            where=source),))
    if len(sps) == 1:
        return SPChoice(sps[0], ())
    if not sps:
        roles = {"IDPSSODescriptor" for e in document.entities if e.idp_roles}
        roles.update(role for e in document.entities for role in e.other_roles)  # a SAML 1.1 SPSSODescriptor too
        found_roles = ", ".join(sorted(roles)) or "no role at all"
        return SPChoice(None, (NO_SP.finding(
            f"none of the {len(document.entities)} entities has a SAML 2.0 SPSSODescriptor (found: {found_roles})",
            expected="md:SPSSODescriptor", actual=found_roles, where=source),))
    return SPChoice(None, (AMBIGUOUS_SP.finding(
        f"the aggregate holds {len(sps)} SP entities: {_listed(sps)}", expected="one entity chosen by its entity ID",
        where=source),))


def _listed(entities: list[EntityDescriptor]) -> str:
    shown = ", ".join(e.entity_id for e in entities[:8])
    return (shown + (f" and {len(entities) - 8} more" if len(entities) > 8 else "")) or "none"


def check_sp(entity: EntityDescriptor, *, encrypt: bool, dev_mode: bool, source: str) -> Iterator[Finding]:
    """SPM004–SPM007 for the chosen SP entity."""
    role = entity.sp
    if role is None:  # choose_sp never chooses one without
        return
    where = f"{source}, line {role.line}: md:SPSSODescriptor" if role.line else f"{source}: md:SPSSODescriptor"
    yield from _acs_findings(entity.entity_id, role, dev_mode=dev_mode, source=source, where=where)
    if encrypt and not _certificates(role, "encryption"):
        yield NO_ENCRYPTION_KEY.finding(f"encrypt is true, but {entity.entity_id!r} publishes no encryption "
                                        "certificate", expected="a KeyDescriptor use=\"encryption\"", where=where)
    if role.authn_requests_signed and not _certificates(role, "signing"):
        yield NO_SIGNING_KEY.finding(f"{entity.entity_id!r} says AuthnRequestsSigned=\"true\" but publishes no "
                                     "signing certificate", expected="a KeyDescriptor use=\"signing\"", where=where)


def _acs_findings(entity_id: str, role: SPRole, *, dev_mode: bool, source: str, where: str) -> Iterator[Finding]:
    """SPM004 and SPM005: an HTTP-POST ACS, each at an allowed URL (the IdP posts to no other binding)."""
    posts = [a for a in role.acs if a.binding == BINDING_POST]
    if not posts:
        offered = ", ".join(sorted({a.binding.rsplit(":", 1)[-1] for a in role.acs})) or "none"
        yield NO_POST_ACS.finding(f"{entity_id!r} has no HTTP-POST AssertionConsumerService",
                                  expected="HTTP-POST", actual=offered, where=where)
    for acs in posts:
        if acs_allowed(acs.location, dev_mode=dev_mode):
            continue
        shown = redact_url(acs.location)
        yield ACS_NOT_HTTPS.finding(
            f"the HTTP-POST AssertionConsumerService Location {shown!r} is not allowed"
            + ("" if dev_mode else "; the IdP is not in dev mode, so http is refused on every host"),
            expected="https://…" + (" (or http://localhost…)" if dev_mode else ""), actual=shown,
            where=f"{source}, line {acs.line}: md:AssertionConsumerService" if acs.line else where)


def _certificates(role: SPRole, use: str) -> list[bytes]:
    """DER certificates of the role's keys for `use` (a key without use serves both: Metadata §2.4.1.1)."""
    return [c.der for k in role.keys if k.use in (None, use) for c in k.certificates if c.der]


def acs_allowed(url: str, *, dev_mode: bool) -> bool:
    """https with a host, or (dev mode only) http on a local host; never with spaces or control characters."""
    if any(ch <= " " or ch == "\x7f" for ch in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # an unbalanced [ in the host
        return False
    if parts.scheme.lower() == "https":
        return bool(host)
    return dev_mode and parts.scheme.lower() == "http" and host in LOCAL_HOSTS
