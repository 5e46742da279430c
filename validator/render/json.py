"""The JSON report, ``saml-preflight/report/v1``: the contract for automation.

The shape is documented field by field in docs/report-json.md; change it only by adding
fields, or under a new schema string. Output is deterministic (sorted keys, findings in
report order, ASCII-escaped), so it can be compared with golden files byte for byte.
"""

from __future__ import annotations

import json

from validator.findings import Finding, Severity
from validator.json_value import Plain, iso_z
from validator.report import SCHEMA, Report, facts_json


def render_json(report: Report) -> str:
    return json.dumps(report_document(report), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def report_document(report: Report) -> dict[str, Plain]:
    """The report as JSON-compatible data (what `render_json` serialises)."""
    return {
        "schema": SCHEMA,
        "subject": report.subject,
        "inputs": dict(report.inputs),
        "clock": iso_z(report.clock),
        "verdict": report.verdict,
        "summary": {
            "errors": report.count(Severity.ERROR),
            "warnings": report.count(Severity.WARNING),
            "info": report.count(Severity.INFO),
        },
        "exit_code": report.exit_code(),
        "findings": [_finding(f) for f in report.sorted_findings],
        "facts": facts_json(report),
    }


def _finding(finding: Finding) -> Plain:
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "title": finding.title,
        "message": finding.message,
        "expected": finding.expected,
        "actual": finding.actual,
        "where": finding.where,
        "fix": finding.fix,
    }
