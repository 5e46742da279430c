"""A response inspection as a report shows it: what each response says (issuer, NameID, claims,
who signed it) and the :class:`~validator.report.Report` assembled where it is shown.
"""

from __future__ import annotations

from typing import Any

from metadata.certs import fingerprint
from validator.report import Report
from validator.response_inspection import JudgedResponse, ResponseInspection


def response_report(inspection: ResponseInspection, *, crm_source: str | None = None) -> Report:
    """The report of `inspection`, as ``saml-validate response`` shows it."""
    inputs = {"response": inspection.source, **({"crm": crm_source} if crm_source else {})}
    if inspection.trust_source is not None:
        inputs["metadata"] = inspection.trust_source
    report = Report(subject="response", inputs=inputs, clock=inspection.now, subjects_run=inspection.subjects_run,
                    findings=list(inspection.findings))
    report.facts.update(response_facts(inspection))
    return report


def response_facts(inspection: ResponseInspection) -> dict[str, Any]:
    if not inspection.found:
        return {}
    judged = [_judged(r) for r in inspection.responses]
    if inspection.found > 1:
        return {"responses": judged}
    return {"response": judged[0] if judged else {}}


def _judged(judged: JudgedResponse) -> dict[str, Any]:
    verified, facts = judged.verified, judged.facts
    if verified is None or facts is None:
        return {"verified": False}
    return {
        "verified": True,
        "signed": [s.element for s in verified.signatures],
        "signed_by": [fingerprint(s.certificate) for s in verified.signatures],
        "encrypted": verified.encrypted,
        "issuer": facts.issuer,
        "assertion_id": facts.assertion_id,
        "nameid": facts.nameid,
        "nameid_format": facts.nameid_format,
        "in_response_to": facts.in_response_to,
        "claims": {a.name: list(a.values) for a in facts.attributes},
    }
