"""A response inspection as a report shows it: what each response says (issuer, NameID, claims,
who signed it) and the :class:`~validator.report.Report` assembled where it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from metadata.certs import fingerprint
from validator.json_value import Plain
from validator.report import Report
from validator.response_inspection import JudgedResponse, ResponseInspection


@dataclass(frozen=True)
class ResponseReportFacts:
    """The facts of a response inspection: for each response that could be read, whether it
    verified and, if so, who signed what and what it says."""

    inspection: ResponseInspection

    def json(self) -> dict[str, Plain]:
        if not self.inspection.found:
            return {}
        judged: list[Plain] = [_judged(r) for r in self.inspection.responses]
        if self.inspection.found > 1:
            return {"responses": judged}
        return {"response": judged[0] if judged else {}}


def response_report(inspection: ResponseInspection, *, crm_source: str | None = None) -> Report:
    """The report of `inspection`, as ``saml-validate response`` shows it."""
    inputs = {"response": inspection.source, **({"crm": crm_source} if crm_source else {})}
    if inspection.trust_source is not None:
        pinned = inspection.trust_used is not None and inspection.trust_used.kind == "signing_certificates"
        inputs["signing_certificates" if pinned else "metadata"] = inspection.trust_source
    # Which trust source verified the signatures: a typed fact, shown by every renderer.
    trust = (inspection.trust_used,) if inspection.trust_used is not None else ()
    return Report(subject="response", inputs=inputs, clock=inspection.now, findings=inspection.findings,
                  subjects_run=inspection.subjects_run, facts=(*trust, ResponseReportFacts(inspection)))


def _judged(judged: JudgedResponse) -> dict[str, Plain]:
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
