"""Metadata inspection: bytes (or a file, or a URL) in, one frozen :class:`MetadataInspection` out.

This is where inputs are read and fetched; everything it calls to judge them is pure. A partner
document that is unreachable, malformed or hostile becomes findings; only failures of the tool
itself raise. The inspection holds the model (document and chosen entities), the signature and
fetch outcomes and the findings; a :class:`~validator.report.Report` is assembled from it only
where it is shown (:func:`validator.metadata_facts.metadata_report`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from metadata.crm import CRMRecord
from metadata.errors import UnsafeXML
from metadata.model import EntityDescriptor, MetadataDocument
from metadata.read import LINED_TAGS, NotMetadata, check_root, collector_paused, read_metadata
from metadata.saml import DS
from metadata.schema import validate as validate_schema
from metadata.signing import (
    SignatureError,
    SignatureProfile,
    profile_problems,
    read_profile,
    signature_of,
    verify,
)
from metadata.sniff import not_xml_kind
from metadata.urls import SCHEME, redact_url
from metadata.xml import MiB, line_of, metadata_limits, parse_untrusted, signed_bytes_limits
from validator.checks import CRM_MATCH_CHECKS, METADATA_CHECKS, signature
from validator.checks.input import finding_for_not_metadata, finding_for_unsafe_xml
from validator.checks.metadata import AMBIGUOUS, CHOSEN, NO_IDP, NOT_FOUND, schema_findings
from validator.context import MetadataContext, SignatureOutcome
from validator.findings import Finding, FindingLog
from validator.metadata_fetch import FetchedMetadata, FetchOutcome, fetch_metadata
from validator.nearmiss import uri_difference

if TYPE_CHECKING:  # urllib3 is imported only when a URL is actually fetched
    from metadata.fetch import FetchPolicy

Check = Callable[[MetadataContext], Iterable[Finding]]


@dataclass(frozen=True)
class MetadataOptions:
    now: datetime
    """The clock every date is judged against (UTC, aware)."""
    entity_id: str | None = None
    """The entity to judge in an aggregate; defaults to the CRM record's idp.entity_id."""
    trusted: tuple[bytes, ...] = ()
    """DER certificates trusted to sign the metadata (--trust)."""
    warn_days: int = 30
    """Warn when a signing certificate expires within this many days."""
    max_bytes: int = 5 * MiB
    """Largest metadata document accepted."""
    all_entities: bool = False
    """Judge every IdP entity of an aggregate (federation sweeps) instead of one."""
    fetch_policy: FetchPolicy | None = None
    """How a metadata URL is fetched; None means FetchPolicy's secure defaults."""


@dataclass(frozen=True)
class MetadataInspection:
    """One metadata document judged: what was fetched and read, the entities chosen, the findings.

    Each part is None (or empty) when the inspection stopped before it: no `fetch` for a file,
    no `document` when it could not be read, no `entities` when none could be chosen.
    """

    source: str
    """The input as the findings name it: a file, a label, or the URL."""
    shown: str
    """The input as a report names it: the URL with any password hidden."""
    now: datetime
    warn_days: int
    findings: tuple[Finding, ...]
    subjects_run: tuple[str, ...]
    """Rule subjects whose checks ran; their rules without findings passed."""
    fetch: FetchOutcome | None = None
    document: MetadataDocument | None = None
    signature: SignatureOutcome | None = None
    entities: tuple[EntityDescriptor, ...] = ()
    """The entities judged: one, or every IdP of an aggregate (``all_entities``)."""

    @property
    def entity(self) -> EntityDescriptor | None:
        """The one entity judged, when there is exactly one."""
        return self.entities[0] if len(self.entities) == 1 else None


def _subjects(crm: CRMRecord | None) -> tuple[str, ...]:
    return ("input", "metadata") + (("crm-match",) if crm else ())


def inspect_metadata(source: str, options: MetadataOptions, crm: CRMRecord | None = None) -> MetadataInspection:
    """Judge the metadata at `source`: an https URL or a file path (``-`` is not supported here)."""
    if is_url(source):
        return inspect_metadata_url(source, options, crm)
    path = Path(source)
    size = path.stat().st_size
    if size > options.max_bytes:  # refused before a byte of it is read into memory
        too_large = UnsafeXML("too-large", f"the file is {size:,} bytes; the limit is {options.max_bytes:,} "
                              "bytes (raise it with --max-size for a federation aggregate)")
        return MetadataInspection(source, source, options.now, options.warn_days,
                                  (finding_for_unsafe_xml(too_large, source),), _subjects(crm))
    with path.open("rb") as handle:  # a pipe or device has no size: read one byte past the limit
        return inspect_metadata_bytes(handle.read(options.max_bytes + 1), source, options, crm)


def is_url(source: str) -> bool:
    """Whether `source` names a URL (for the SSRF-safe fetcher, which refuses every scheme but
    https, and http when allowed) rather than a file. A one-letter scheme is a Windows drive, and
    a file that exists is a file (``okta:prod.xml``) unless the source has a ``//``."""
    if SCHEME.match(source) is None:
        return False
    return "//" in source or not Path(source).is_file()


def inspect_metadata_url(url: str, options: MetadataOptions, crm: CRMRecord | None = None) -> MetadataInspection:
    """Fetch `url` with the SSRF-safe fetcher and judge what came back; a failed fetch is a NET finding."""
    return inspect_fetched(url, fetch_metadata(url, options.fetch_policy, options.max_bytes), options, crm)


def inspect_fetched(url: str, fetched: FetchedMetadata, options: MetadataOptions, crm: CRMRecord | None = None
                    ) -> MetadataInspection:
    """Judge what fetching `url` brought back (:func:`validator.metadata_fetch.fetch_metadata`)."""
    if fetched.body is None:
        # Nothing was read, so no check of the document ran: JUnit must not list them as passed.
        return MetadataInspection(url, redact_url(url), options.now, options.warn_days, fetched.findings,
                                  ("fetch",), fetch=fetched.outcome)
    judged = inspect_metadata_bytes(fetched.body, url, options, crm)
    return replace(judged, shown=redact_url(url), findings=fetched.findings + judged.findings,
                   subjects_run=(*judged.subjects_run, "fetch"), fetch=fetched.outcome)


def inspect_metadata_bytes(
    data: bytes, source: str, options: MetadataOptions, crm: CRMRecord | None = None
) -> MetadataInspection:
    """Parse, schema-check, verify and judge `data` (already at hand: a file, an upload).

    Memory matters for federation aggregates: the input bytes are dropped once parsed, and
    when the signature verifies the first tree is dropped before the signed bytes are
    re-parsed; the model is read from one tree only.
    """
    log = FindingLog()
    stopped = partial(MetadataInspection, source, source, options.now, options.warn_days,
                      subjects_run=_subjects(crm))
    content = not_xml_kind(data)  # a PDF or a ZIP is named as such, not by the parser's first complaint
    try:
        tree = parse_untrusted(data, metadata_limits(options.max_bytes))
        del data
        check_root(tree.getroot())
    except UnsafeXML as exc:
        return stopped((finding_for_unsafe_xml(exc, source, content=content),))
    except NotMetadata as exc:
        return stopped((finding_for_not_metadata(exc, source),))
    log.extend(schema_findings(validate_schema(tree, "metadata"), source))
    max_signed = signed_bytes_limits(metadata_limits(options.max_bytes)).max_bytes
    outcome, signed_bytes = _signature(tree.getroot(), options.trusted, max_signed)
    if signed_bytes is not None:
        # Read every value from what was signed (SECURITY.md §2), re-parsed with the one parser;
        # the partner's line numbers are carried over, since the canonical bytes have others.
        lines = _element_lines(tree.getroot())
        del tree
        tree = parse_untrusted(signed_bytes, signed_bytes_limits(metadata_limits(options.max_bytes)))
        del signed_bytes
        _restore_lines(tree.getroot(), lines)
    document = read_metadata(tree)
    del tree
    log.extend(signature.check_signature(document, outcome, source))
    wanted = options.entity_id or (crm.idp.entity_id if crm else None)
    entities, choice = _choose(document, wanted, explicit=options.entity_id is not None, source=source,
                               all_entities=options.all_entities)
    log.extend(choice)
    checks: tuple[Check, ...] = METADATA_CHECKS + (CRM_MATCH_CHECKS if crm else ())
    document_once = _DocumentFindings(source) if len(entities) > 1 else None
    with collector_paused():  # findings are acyclic too; see collector_paused
        for entity in entities:
            label = source if document_once is None else f"{source} [{entity.entity_id}]"
            ctx = MetadataContext(document=document, entity=entity, now=options.now, signature=outcome, crm=crm,
                                  warn_days=options.warn_days, source=label)
            for check in checks:
                found = check(ctx)
                log.extend(found if document_once is None else document_once.first_only(found, label))
    return stopped(log.frozen(), document=document, signature=outcome, entities=tuple(entities))


class _DocumentFindings:
    """Findings about an aggregate's document itself, said once when every entity is judged.

    The checks of an entity also judge what the entity inherits from the document (its root's
    validUntil), and say where each finding is as ``LABEL[, line N]: ELEMENT``, LABEL being the
    source and the entity. A finding whose ELEMENT is the root md:EntitiesDescriptor (or one of
    its attributes) is about the document, not the entity: it is kept the first time, named by
    the source alone, and dropped for every other entity (61 copies of one expired validUntil
    would bury the findings that differ).
    """

    ROOT = "md:EntitiesDescriptor"

    def __init__(self, source: str) -> None:
        self._source = source
        self._seen: set[tuple[str, str, str, str]] = set()

    def first_only(self, findings: Iterable[Finding], label: str) -> Iterator[Finding]:
        for finding in findings:
            where = finding.where or ""
            rest = where[len(label):] if where.startswith(label) else None
            if rest is None or not self._names_the_root(rest):
                yield finding
                continue
            key = (finding.code, finding.severity.value, finding.message, rest)
            if key not in self._seen:
                self._seen.add(key)
                yield replace(finding, where=self._source + rest)

    def _names_the_root(self, rest: str) -> bool:
        """Whether ``[, line N]: ELEMENT`` names the root element or one of its attributes."""
        element = rest.partition(": ")[2]
        return element == self.ROOT or element.startswith((self.ROOT + "/", self.ROOT + "@"))


def _choose(
    document: MetadataDocument, wanted: str | None, *, explicit: bool, source: str, all_entities: bool
) -> tuple[list[EntityDescriptor], list[Finding]]:
    """Which entities to judge, and the MD002–MD005 findings about that choice."""
    if document.root == "EntityDescriptor":
        entity = document.entities[0]
        if explicit and wanted is not None and wanted != entity.entity_id:
            return [entity], [_not_found(document, wanted, source)]
        return [entity], []
    idps = list(document.idp_entities)
    if all_entities:
        return idps, [CHOSEN.finding(f"all {len(idps)} IdP entities of the aggregate are checked",
                                     where=source)]
    if wanted is not None:
        found = document.find(wanted)
        if found is None:
            return [], [_not_found(document, wanted, source)]
        return [found], [CHOSEN.finding(f"checked {wanted!r}, one of {len(document.entities)} entities",
                                        actual=wanted, where=f"{source}, line {found.line}")]
    if len(idps) == 1:
        return idps, [CHOSEN.finding(
            f"checked {idps[0].entity_id!r}, the only IdP among {len(document.entities)} entities",
            actual=idps[0].entity_id, where=f"{source}, line {idps[0].line}")]
    if not idps:
        return [], [NO_IDP.finding(f"none of the {len(document.entities)} entities is an IdP",
                                   expected="an md:EntityDescriptor with an md:IDPSSODescriptor", where=source)]
    listed = ", ".join(e.entity_id for e in idps[:8]) + (f" and {len(idps) - 8} more" if len(idps) > 8 else "")
    return [], [AMBIGUOUS.finding(f"the aggregate holds {len(idps)} IdP entities: {listed}",
                                  expected="one entity chosen with --entity-id", where=source)]


def _not_found(document: MetadataDocument, wanted: str, source: str) -> Finding:
    near = [(e.entity_id, uri_difference(wanted, e.entity_id)) for e in document.entities]
    close = [f"{eid!r} (differs by {why})" for eid, why in near if why]
    present = ", ".join(repr(e.entity_id) for e in document.entities[:5])
    return NOT_FOUND.finding(
        f"no entity {wanted!r} in the document" + (f"; near match: {'; '.join(close)}" if close else ""),
        expected=wanted, actual=present + (" …" if len(document.entities) > 5 else ""), where=source,
    )


def _element_lines(root: etree._Element) -> array[int]:
    """The source line of every element the model keeps a line for (metadata.read.LINED_TAGS)
    outside the root's signature, in document order: exactly those elements of the signed bytes
    (the enveloped transform removes the signature)."""
    signature = root.find(f"{{{DS}}}Signature")
    if signature is not None:
        root.remove(signature)  # the tree is about to be dropped
    return array("i", (line_of(e) or 0 for e in root.iter(*LINED_TAGS)))


def _restore_lines(root: etree._Element, lines: array[int]) -> None:
    elements = list(root.iter(*LINED_TAGS))
    if len(elements) != len(lines):  # cannot happen for a verified signature; keep c14n lines then
        return
    for element, line in zip(elements, lines, strict=True):
        if 0 < line <= 65535:  # libxml2 keeps lines as unsigned short; beyond, keep what it has
            setattr(element, "sourceline", line)  # noqa: B010 - lxml-stubs type it read-only; it is not


def _signature(root: etree._Element, trusted: tuple[bytes, ...], max_signed: int
               ) -> tuple[SignatureOutcome, bytes | None]:
    """How the root's signature fares, and the signed bytes when a trusted key verified it."""
    if root.find(f"{{{DS}}}Signature") is None:
        return SignatureOutcome("unsigned", trusted_given=len(trusted)), None
    try:
        profile = read_profile(signature_of(root))
    except SignatureError as exc:
        return SignatureOutcome("profile", exc.message, trusted_given=len(trusted)), None
    problems = profile_problems(profile, root)
    if problems:
        # Outside the SAML profile: refused before any key is tried, trusted or not.
        return SignatureOutcome("profile", "; ".join(problems), profile=profile, trusted_given=len(trusted)), None
    if not trusted:
        return SignatureOutcome("untrusted", profile=profile,
                                self_consistent=_self_consistent(root, profile, max_signed), trusted_given=0), None
    try:
        verified = verify(root, trusted, allow_sha1=True, max_signed_bytes=max_signed)
    except SignatureError as exc:
        status = "invalid" if exc.kind in ("invalid", "duplicate-id") else "profile"
        return SignatureOutcome(status, exc.message, profile=exc.profile or profile,
                                trusted_given=len(trusted)), None
    outcome = SignatureOutcome("verified", profile=verified.profile, certificate=verified.certificate,
                               trusted_given=len(trusted))
    return outcome, verified.signed_bytes


def _self_consistent(root: etree._Element, profile: SignatureProfile, max_signed: int) -> bool | None:
    if not profile.embedded_certificates:
        return None
    try:
        verify(root, profile.embedded_certificates[:1], allow_sha1=True, max_signed_bytes=max_signed)
    except SignatureError as exc:
        return False if exc.kind == "invalid" else None
    return True
