"""Metadata inspection: bytes (or a URL) in, one :class:`Report` out.

This is the edge where inputs are read and fetched; everything it calls to judge them is
pure. A partner document that is unreachable, malformed or hostile becomes findings; only
failures of the tool itself raise.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from metadata.certs import CertificateError, certificate_facts
from metadata.crm import CRMRecord
from metadata.errors import UnsafeXML
from metadata.model import EntityDescriptor, MetadataDocument
from metadata.read import NotMetadata, check_root, collector_paused, read_metadata
from metadata.saml import DS, binding_name
from metadata.schema import validate as validate_schema
from metadata.signing import (
    SignatureError,
    algorithm_name,
    profile_problems,
    read_profile,
    signature_of,
    verify,
)
from metadata.urls import SCHEME, redact_url
from metadata.xml import MiB, line_of, metadata_limits, parse_untrusted, signed_bytes_limits
from validator.checks import CRM_MATCH_CHECKS, METADATA_CHECKS, fetching, signature
from validator.checks.input import finding_for_not_metadata, finding_for_unsafe_xml
from validator.checks.keys import signing_keys
from validator.checks.metadata import AMBIGUOUS, CHOSEN, NO_IDP, NOT_FOUND, schema_findings
from validator.context import MetadataContext, SignatureOutcome
from validator.findings import Finding
from validator.nearmiss import uri_difference
from validator.report import Report
from validator.vendor import detect_vendor

if TYPE_CHECKING:  # urllib3 is imported only when a URL is actually fetched
    from metadata.fetch import FetchPolicy, FetchResult

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


def inspect_metadata(
    source: str, options: MetadataOptions, crm: CRMRecord | None = None, *, crm_source: str | None = None
) -> Report:
    """Judge the metadata at `source`: an https URL or a file path (``-`` is not supported here)."""
    report = metadata_report(source, options, crm, crm_source)
    if is_url(source):
        inspect_metadata_url(source, options, crm, report)
    else:
        path = Path(source)
        size = path.stat().st_size
        if size > options.max_bytes:  # refused before a byte of it is read into memory
            too_large = UnsafeXML("too-large", f"the file is {size:,} bytes; the limit is {options.max_bytes:,} "
                                  "bytes (raise it with --max-size for a federation aggregate)")
            report.findings.append(finding_for_unsafe_xml(too_large, source))
            return report
        with path.open("rb") as handle:  # a pipe or device has no size: read one byte past the limit
            inspect_metadata_bytes(handle.read(options.max_bytes + 1), source, options, crm, report)
    return report


def is_url(source: str) -> bool:
    """Whether `source` names a URL (for the SSRF-safe fetcher, which refuses every scheme but
    https, and http when allowed) rather than a file. A one-letter scheme is a Windows drive, and
    a file that exists is a file (``okta:prod.xml``) unless the source has a ``//``."""
    if SCHEME.match(source) is None:
        return False
    return "//" in source or not Path(source).is_file()


def inspect_metadata_url(url: str, options: MetadataOptions, crm: CRMRecord | None, report: Report) -> bytes | None:
    """Fetch `url` with the SSRF-safe fetcher and judge it into `report`; the body fetched (whatever
    the checks then found), or None when the fetch failed, which is a NET finding."""
    from metadata.fetch import FetchError, FetchPolicy, fetch

    report.inputs["metadata"] = redact_url(url)
    report.subjects_run += ("fetch",)
    policy = replace(options.fetch_policy or FetchPolicy(), max_bytes=options.max_bytes)
    try:
        result = fetch(url, policy)
    except FetchError as exc:
        report.findings.append(fetching.finding_for_fetch_error(exc))
        report.facts["fetch"] = dict(exc.diagnostics)
        # Nothing was read, so no check of the document ran: JUnit must not list them as passed.
        report.subjects_run = tuple(s for s in report.subjects_run if s not in ("input", "metadata", "crm-match"))
        return None
    report.facts["fetch"] = _fetch_facts(result)
    report.extend(fetching.content_type_findings(result))
    inspect_metadata_bytes(result.body, url, options, crm, report)
    return result.body


def metadata_report(source: str, options: MetadataOptions, crm: CRMRecord | None, crm_source: str | None = None
                    ) -> Report:
    """An empty metadata report; :func:`inspect_metadata_bytes` fills it from bytes already at hand
    (an upload), after refusing more than ``options.max_bytes``."""
    inputs = {"metadata": source}
    if crm_source:
        inputs["crm"] = crm_source
    report = Report(subject="metadata", inputs=inputs, clock=options.now,
                    subjects_run=("input", "metadata") + (("crm-match",) if crm else ()))
    report.facts["warn_days"] = options.warn_days
    return report


def _fetch_facts(result: FetchResult) -> dict[str, Any]:
    return {
        "url": result.url,
        "final_url": result.final_url,
        "status": result.status,
        "content_type": result.content_type,
        "redirects": list(result.redirects),
        "bytes": len(result.body),
        "seconds": round(result.elapsed_seconds, 3),
    }


def inspect_metadata_bytes(
    data: bytes, source: str, options: MetadataOptions, crm: CRMRecord | None, report: Report
) -> None:
    """Parse, schema-check, verify and judge `data`, adding findings and facts to `report`.

    Memory matters for federation aggregates: the input bytes are dropped once parsed, and
    when the signature verifies the first tree is dropped before the signed bytes are
    re-parsed; the model is read from one tree only.
    """
    try:
        tree = parse_untrusted(data, metadata_limits(options.max_bytes))
        del data
        check_root(tree.getroot())
    except UnsafeXML as exc:
        report.findings.append(finding_for_unsafe_xml(exc, source))
        return
    except NotMetadata as exc:
        report.findings.append(finding_for_not_metadata(exc, source))
        return
    report.extend(schema_findings(validate_schema(tree, "metadata"), source))
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
    report.facts["document"] = {
        "root": document.root, "entities": len(document.entities), "idp_entities": len(document.idp_entities),
        **({"name": document.name} if document.name else {}),
    }
    report.facts["signature"] = _signature_facts(outcome)
    report.extend(signature.check_signature(document, outcome, source))
    wanted = options.entity_id or (crm.idp.entity_id if crm else None)
    entities, choice = _choose(document, wanted, explicit=options.entity_id is not None, source=source,
                               all_entities=options.all_entities)
    report.extend(choice)
    checks: tuple[Check, ...] = METADATA_CHECKS + (CRM_MATCH_CHECKS if crm else ())
    with collector_paused():  # findings and facts are acyclic too; see collector_paused
        for entity in entities:
            label = source if len(entities) == 1 else f"{source} [{entity.entity_id}]"
            ctx = MetadataContext(document=document, entity=entity, now=options.now, signature=outcome, crm=crm,
                                  warn_days=options.warn_days, source=label)
            for check in checks:
                report.extend(check(ctx))
            if len(entities) == 1:
                report.facts.update(entity_facts(entity, options.now))


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
    """The source line of every element outside the root's signature, in document order:
    exactly the elements of the signed bytes (the enveloped transform removes the signature)."""
    signature = root.find(f"{{{DS}}}Signature")
    if signature is not None:
        root.remove(signature)  # the tree is about to be dropped
    return array("i", (line_of(e) or 0 for e in root.iter(etree.Element)))


def _restore_lines(root: etree._Element, lines: array[int]) -> None:
    elements = list(root.iter(etree.Element))
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


def _self_consistent(root: etree._Element, profile: Any, max_signed: int) -> bool | None:
    if not profile.embedded_certificates:
        return None
    try:
        verify(root, profile.embedded_certificates[:1], allow_sha1=True, max_signed_bytes=max_signed)
    except SignatureError as exc:
        return False if exc.kind == "invalid" else None
    return True


def _signature_facts(outcome: SignatureOutcome) -> dict[str, Any]:
    facts: dict[str, Any] = {"status": outcome.status}
    if outcome.profile:
        facts["algorithm"] = algorithm_name(outcome.profile.signature_method)
        facts["digest"] = algorithm_name(outcome.profile.digest_method)
        signer = outcome.certificate or (outcome.profile.embedded_certificates[:1] or [None])[0]
        if signer:
            facts["signer"] = _certificate_summary(signer)
    return facts


def _certificate_summary(der: bytes) -> dict[str, Any]:
    try:
        c = certificate_facts(der)
    except CertificateError as exc:
        return {"error": str(exc)}
    return {"subject": c.subject, "not_after": c.not_after, "sha256": c.sha256}


def entity_facts(entity: EntityDescriptor, now: datetime) -> dict[str, Any]:
    """What a reader wants to know about the judged entity, problems aside."""
    facts: dict[str, Any] = {"entity_id": entity.entity_id}
    detection = detect_vendor(entity)
    facts["vendor"] = (
        {"key": detection.vendor.key, "name": detection.vendor.name, "evidence": list(detection.evidence)}
        if detection else {"key": None, "name": "not recognised", "evidence": []}
    )
    idp = entity.idp
    if idp is None:
        return facts
    # A password in a Location is MD016's to report, never the facts' to repeat.
    facts["sso"] = [{"binding": binding_name(e.binding), "location": redact_url(e.location)} for e in idp.sso]
    if idp.slo:
        facts["slo"] = [{"binding": binding_name(e.binding), "location": redact_url(e.location)} for e in idp.slo]
    facts["nameid_formats"] = list(idp.nameid_formats)
    facts["want_authn_requests_signed"] = bool(idp.want_authn_requests_signed)
    if idp.attributes:
        facts["offered_attributes"] = [a.name for a in idp.attributes]
    facts["certificates"] = list(_certificates(entity, now))
    return facts


def _certificates(entity: EntityDescriptor, now: datetime) -> Iterator[dict[str, Any]]:
    idp = entity.idp
    if idp is None:
        return
    signing = {id(k) for k in signing_keys(idp.keys)}
    seen: set[bytes] = set()
    for key in idp.keys:
        for cert in key.certificates:
            if cert.der is None or cert.der in seen:
                continue
            seen.add(cert.der)
            try:
                c = certificate_facts(cert.der)
            except CertificateError:
                continue
            yield {
                "use": key.use or "signing and encryption",
                "signing": id(key) in signing,
                "subject": c.subject,
                "not_before": c.not_before,
                "not_after": c.not_after,
                "days_left": c.days_left(now),
                "key": f"{c.key_type} {c.key_bits}",
                "signature_hash": c.signature_hash,
                "sha256": c.sha256,
                "sha1": c.sha1,
            }
