"""A metadata inspection as a report shows it: the facts (document, signature, fetch, the judged
entity's vendor, endpoints and certificates) and the :class:`~validator.report.Report` assembled
from them where a report is shown (command line, web pages, API).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from metadata.certs import CertificateError, certificate_facts
from metadata.model import EntityDescriptor
from metadata.saml import binding_name
from metadata.signing import algorithm_name
from metadata.urls import redact_url
from validator.checks.keys import signing_keys
from validator.context import SignatureOutcome
from validator.inspection import MetadataInspection
from validator.metadata_fetch import FetchFailure, FetchOutcome
from validator.report import Report
from validator.vendor import detect_vendor


def metadata_report(inspection: MetadataInspection, *, crm_source: str | None = None) -> Report:
    """The report of `inspection`, as ``saml-validate metadata`` shows it."""
    inputs = {"metadata": inspection.shown, **({"crm": crm_source} if crm_source else {})}
    report = Report(subject="metadata", inputs=inputs, clock=inspection.now, subjects_run=inspection.subjects_run,
                    findings=list(inspection.findings))
    report.facts.update(metadata_facts(inspection))
    return report


def metadata_facts(inspection: MetadataInspection, *, warn_days: bool = True) -> dict[str, Any]:
    facts: dict[str, Any] = {"warn_days": inspection.warn_days} if warn_days else {}
    if inspection.fetch is not None:
        facts["fetch"] = _fetch_facts(inspection.fetch)
    document = inspection.document
    if document is not None and inspection.signature is not None:
        facts["document"] = {
            "root": document.root, "entities": len(document.entities), "idp_entities": len(document.idp_entities),
            **({"name": document.name} if document.name else {}),
        }
        facts["signature"] = _signature_facts(inspection.signature)
    if inspection.entity is not None:
        facts.update(entity_facts(inspection.entity, inspection.now))
    return facts


def _fetch_facts(outcome: FetchOutcome) -> dict[str, Any]:
    if isinstance(outcome, FetchFailure):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in outcome.diagnostics}
    return {
        "url": outcome.url,
        "final_url": outcome.final_url,
        "status": outcome.status,
        "content_type": outcome.content_type,
        "redirects": list(outcome.redirects),
        "bytes": outcome.size,
        "seconds": round(outcome.seconds, 3),
    }


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
