"""The one report model, rendered as text, JSON, JUnit XML, HTML or Markdown.

A report holds what was checked (subject and inputs), the clock the checks ran with, the
rules that ran, every finding, and *facts*: things a reader wants to know that are not
problems (detected vendor and its evidence, certificates, endpoints, signature status).
Reports never contain private keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from validator.findings import Finding, Severity, folded

SCHEMA = "saml-preflight/report/v1"


@dataclass
class Report:
    subject: str
    """What kind of thing was checked: ``metadata``, ``crm-record``."""
    inputs: dict[str, str]
    """Where each input came from, e.g. ``{"metadata": "partner.xml", "crm": "b.toml"}``."""
    clock: datetime
    subjects_run: tuple[str, ...] = ()
    """Rule subjects whose checks ran; their rules without findings passed."""
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def extend(self, findings: Iterable[Finding]) -> None:
        """Add `findings` as one batch (:func:`validator.findings.folded`)."""
        self.findings.extend(folded(findings))

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
