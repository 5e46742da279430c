"""A metadata inspection as a report shows it: the :class:`MetadataFacts` (document, signature,
fetch, and the judged entity's vendor, endpoints and certificates) and the
:class:`~validator.report.Report` assembled from them where a report is shown (command line,
web pages, API).

The facts are read from the model when they are shown; :meth:`MetadataFacts.json` is their one
JSON edge. Locations are shown with any password hidden (MD016 reports it; the facts never
repeat it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from metadata.certs import CertificateError, CertificateFacts, certificate_facts
from metadata.model import Endpoint, EntityDescriptor
from metadata.saml import binding_name
from metadata.signing import algorithm_name
from metadata.urls import redact_url
from validator.checks.keys import signing_keys
from validator.context import SignatureOutcome
from validator.inspection import MetadataInspection
from validator.json_value import Plain, iso_z
from validator.metadata_fetch import FetchFailure, FetchOutcome
from validator.report import Report
from validator.vendor import detect_vendor


@dataclass(frozen=True)
class CertificateRow:
    """One distinct certificate of an IdP role, in document order, with how its key is used."""

    use: str
    """The KeyDescriptor's use, or ``signing and encryption`` when it has none."""
    signing: bool
    """Whether its key may sign (use ``signing`` or none)."""
    facts: CertificateFacts


def certificate_rows(entity: EntityDescriptor) -> tuple[CertificateRow, ...]:
    """Each certificate of the entity's IdP role once (the first KeyDescriptor that holds it
    decides its use); certificates that cannot be read are left out (KEY004 reports them)."""
    idp = entity.idp
    if idp is None:
        return ()
    signing = {id(k) for k in signing_keys(idp.keys)}
    seen: set[bytes] = set()
    rows = []
    for key in idp.keys:
        for cert in key.certificates:
            if cert.der is None or cert.der in seen:
                continue
            seen.add(cert.der)
            try:
                facts = certificate_facts(cert.der)
            except CertificateError:
                continue
            rows.append(CertificateRow(key.use or "signing and encryption", id(key) in signing, facts))
    return tuple(rows)


@dataclass(frozen=True)
class MetadataFacts:
    """The facts of one metadata inspection."""

    inspection: MetadataInspection
    show_warn_days: bool = True
    """Whether ``warn_days`` is among the facts (a sweep says it once for every partner instead)."""

    def signing_certificates(self) -> tuple[CertificateRow, ...]:
        """The signing certificates of the one entity judged (none without one)."""
        entity = self.inspection.entity
        return tuple(r for r in certificate_rows(entity) if r.signing) if entity is not None else ()

    def json(self) -> dict[str, Plain]:
        inspection = self.inspection
        facts: dict[str, Plain] = {"warn_days": inspection.warn_days} if self.show_warn_days else {}
        if inspection.fetch is not None:
            facts["fetch"] = fetch_json(inspection.fetch)
        document = inspection.document
        if document is not None and inspection.signature is not None:
            facts["document"] = {
                "root": document.root, "entities": len(document.entities), "idp_entities": len(document.idp_entities),
                **({"name": document.name} if document.name else {}),
            }
            facts["signature"] = signature_json(inspection.signature)
        if inspection.entity is not None:
            facts.update(entity_json(inspection.entity, inspection.now))
        return facts


def metadata_report(inspection: MetadataInspection, *, crm_source: str | None = None) -> Report:
    """The report of `inspection`, as ``saml-validate metadata`` shows it."""
    inputs = {"metadata": inspection.shown, **({"crm": crm_source} if crm_source else {})}
    return Report(subject="metadata", inputs=inputs, clock=inspection.now, findings=inspection.findings,
                  subjects_run=inspection.subjects_run, facts=(MetadataFacts(inspection),))


def fetch_json(outcome: FetchOutcome) -> dict[str, Plain]:
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


def signature_json(outcome: SignatureOutcome) -> dict[str, Plain]:
    facts: dict[str, Plain] = {"status": outcome.status}
    if outcome.profile:
        facts["algorithm"] = algorithm_name(outcome.profile.signature_method)
        facts["digest"] = algorithm_name(outcome.profile.digest_method)
        signer = outcome.certificate or (outcome.profile.embedded_certificates[:1] or [None])[0]
        if signer:
            facts["signer"] = _certificate_summary(signer)
    return facts


def _certificate_summary(der: bytes) -> dict[str, Plain]:
    try:
        c = certificate_facts(der)
    except CertificateError as exc:
        return {"error": str(exc)}
    return {"subject": c.subject, "not_after": iso_z(c.not_after), "sha256": c.sha256}


def entity_json(entity: EntityDescriptor, now: datetime) -> dict[str, Plain]:
    """What a reader wants to know about the judged entity, problems aside."""
    detection = detect_vendor(entity)
    facts: dict[str, Plain] = {
        "entity_id": entity.entity_id,
        "vendor": {"key": detection.vendor.key, "name": detection.vendor.name, "evidence": list(detection.evidence)}
        if detection else {"key": None, "name": "not recognised", "evidence": []},
    }
    idp = entity.idp
    if idp is None:
        return facts
    facts["sso"] = endpoints_json(idp.sso)
    if idp.slo:
        facts["slo"] = endpoints_json(idp.slo)
    facts["nameid_formats"] = list(idp.nameid_formats)
    facts["want_authn_requests_signed"] = bool(idp.want_authn_requests_signed)
    if idp.attributes:
        facts["offered_attributes"] = [a.name for a in idp.attributes]
    facts["certificates"] = [certificate_json(row, now) for row in certificate_rows(entity)]
    return facts


def endpoints_json(endpoints: tuple[Endpoint, ...]) -> list[Plain]:
    """Endpoints by binding's short name, each location with any password hidden."""
    return [{"binding": binding_name(e.binding), "location": redact_url(e.location)} for e in endpoints]


def certificate_json(row: CertificateRow, now: datetime) -> dict[str, Plain]:
    c = row.facts
    return {
        "use": row.use,
        "signing": row.signing,
        "subject": c.subject,
        "not_before": iso_z(c.not_before),
        "not_after": iso_z(c.not_after),
        "days_left": c.days_left(now),
        "key": f"{c.key_type} {c.key_bits}",
        "signature_hash": c.signature_hash,
        "sha256": c.sha256,
        "sha1": c.sha1,
    }
