"""The one report model, rendered as text, JSON, JUnit XML, HTML or Markdown.

A report holds what was checked (subject and inputs), the clock the checks ran with, the
rules that ran, every finding, and *facts*: things a reader wants to know that are not
problems (detected vendor and its evidence, certificates, endpoints, signature status).
Reports never contain private keys.

A report is assembled only where it is shown (the command line, the web pages, the API), from
the typed result of an inspection: :func:`validator.metadata_facts.metadata_report`,
:func:`validator.response_report.response_report`. Its facts stay typed, one :class:`Facts`
per thing described; :func:`facts_json` is the one place they become the JSON ``facts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from validator.findings import Finding, Severity
from validator.json_value import Plain

SCHEMA = "saml-preflight/report/v1"


class Facts(Protocol):
    """Facts about one thing a report describes (a metadata document, a response, a CRM record,
    a sweep's history): typed, and shown through its one JSON edge."""

    def json(self) -> dict[str, Plain]:
        """These facts as the JSON report's ``facts`` holds them, keys in the order a reader wants."""
        ...


@dataclass(frozen=True)
class Report:
    subject: str
    """What kind of thing was checked: ``metadata``, ``response``, ``crm-record``."""
    inputs: Mapping[str, str]
    """Where each input came from, e.g. ``{"metadata": "partner.xml", "crm": "b.toml"}``."""
    clock: datetime
    findings: tuple[Finding, ...] = ()
    subjects_run: tuple[str, ...] = ()
    """Rule subjects whose checks ran; their rules without findings passed."""
    facts: tuple[Facts, ...] = ()

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    @property
    def sorted_findings(self) -> list[Finding]:
        """Findings by severity (errors first), then code; order within a code is kept."""
        return sorted(self.findings, key=lambda f: (f.severity.rank, f.code))

    def exit_code(self, *, strict: bool = False) -> int:
        """0 when there is no error (and, with `strict`, no warning); 1 otherwise."""
        if self.count(Severity.ERROR):
            return 1
        if strict and self.count(Severity.WARNING):
            return 1
        return 0

    @property
    def verdict(self) -> str:
        errors, warnings = self.count(Severity.ERROR), self.count(Severity.WARNING)
        if errors:
            return "not ready"
        return "ready, with warnings" if warnings else "ready"


def facts_json(report: Report) -> dict[str, Plain]:
    """The report's ``facts`` as JSON data: each :class:`Facts` in turn, in the report's order."""
    merged: dict[str, Plain] = {}
    for facts in report.facts:
        merged.update(facts.json())
    return merged
