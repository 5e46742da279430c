"""How every check words its findings: one place for the rule factory of a subject, the
``where`` of an element, and values and durations as a reader sees them."""

from __future__ import annotations

from collections.abc import Callable

from metadata.xml import visible
from validator.findings import Rule, Severity, rule

RuleFactory = Callable[..., Rule]


def rules_for(subject: str) -> RuleFactory:
    """A registering function for the rules of `subject`: ``(code, title, what, why, fix,
    severity=ERROR)``, the documentation in the order a reader wants it."""

    def register(code: str, title: str, what: str, why: str, fix: str, severity: Severity = Severity.ERROR) -> Rule:
        return rule(code, title, severity, subject, what=what, why=why, fix=fix)

    return register


def at(path: str, line: int | None) -> str:
    """An element path with its source line, when known."""
    return f"{path}, line {line}" if line else path


def shown(value: str | None) -> str:
    """A value quoted on one line with control and bidi characters visible; ``(absent)`` for None."""
    return "(absent)" if value is None else f"'{visible(value, one_line=True)}'"


def actual(value: str | None) -> str:
    """A value for a finding's ``actual``: unquoted, on one line, characters visible."""
    return "(absent)" if value is None else visible(value, one_line=True)


def duration(seconds: float) -> str:
    """A span of time (its sign dropped) in the unit a person would say: 45 s, 12 min, 5 h, 3 days."""
    whole = abs(int(seconds))
    if whole < 120:
        return f"{whole} s"
    if whole < 2 * 3600:
        return f"{whole // 60} min"
    return f"{whole // 3600} h" if whole < 2 * 86400 else f"{whole // 86400} days"
