"""Findings and the registry of rules that produce them.

A *rule* is registered once, with a stable code, a title, a default severity and its
documentation (what it checks, why it matters, the fix). `saml-validate checks`,
`saml-validate explain CODE`, the JUnit testcases and the HTML report all read this one
registry. Check functions yield findings made by ``RULE.finding(...)``; they never print
and never raise for a problem in a partner's document.

Codes are stable forever: a retired rule stays in the registry with ``retired=True`` and its
code is never reused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True)
class Finding:
    """One problem or notable fact about an input. Data, not an exception."""

    code: str
    severity: Severity
    title: str
    message: str
    expected: str | None = None
    actual: str | None = None
    where: str | None = None
    """Where in the input: an element path with its line, a URL, a CRM key path."""
    fix: str | None = None


@dataclass(frozen=True)
class Rule:
    """A registered rule: one stable code, documented once."""

    code: str
    title: str
    severity: Severity
    subject: str
    """What the rule judges: ``input``, ``metadata``, ``crm-record``, ``crm-match``, ``fetch``."""
    what: str
    why: str
    fix: str
    retired: bool = False
    example: str | None = field(default=None)

    def finding(
        self,
        message: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
        where: str | None = None,
        fix: str | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        """A finding of this rule; `fix` defaults to the rule's documented fix."""
        return Finding(
            code=self.code,
            severity=severity or self.severity,
            title=self.title,
            message=message,
            expected=expected,
            actual=actual,
            where=where,
            fix=fix if fix is not None else self.fix,
        )


_REGISTRY: dict[str, Rule] = {}

FAMILIES = {
    "XML": "XML parsing and input safety",
    "MD": "metadata structure",
    "KEY": "certificates and keys",
    "SIG": "signatures",
    "RSP": "response protocol",
    "CLM": "claims and login types",
    "CRM": "match against the CRM record, and the record itself",
    "NET": "fetching",
    "REQ": "AuthnRequests",
}


def rule(
    code: str,
    title: str,
    severity: Severity,
    subject: str,
    *,
    what: str,
    why: str,
    fix: str,
    example: str | None = None,
) -> Rule:
    """Register a rule. A code may be registered only once."""
    family = code.rstrip("0123456789")
    if family not in FAMILIES or not code[len(family):].isdigit() or len(code[len(family):]) != 3:
        raise ValueError(f"rule code {code!r} is not FAMILY + three digits ({', '.join(FAMILIES)})")
    if code in _REGISTRY:
        raise ValueError(f"rule code {code} is registered twice")
    registered = Rule(code, title, severity, subject, what.strip(), why.strip(), fix.strip(), example=example)
    _REGISTRY[code] = registered
    return registered


def rules() -> Iterator[Rule]:
    """Every registered rule, in code order."""
    _load_all()
    order = list(FAMILIES)
    yield from sorted(_REGISTRY.values(), key=lambda r: (order.index(r.code.rstrip("0123456789")), r.code))


def get_rule(code: str) -> Rule | None:
    _load_all()
    return _REGISTRY.get(code.strip().upper())


def _load_all() -> None:
    # Importing the check modules registers their rules.
    import validator.checks  # noqa: F401
