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

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum

MAX_REPEATS = 50
"""Findings of one code that one batch lists (one check on one entity or message); past them, one
more finding of that code counts the rest. 43,000 endpoints each with a finding, in 5 MiB of
metadata, took five seconds to report."""


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


def folded(batch: Iterable[Finding]) -> list[Finding]:
    """`batch` with at most :data:`MAX_REPEATS` findings of each code and severity (one code may be
    an error for one claim and a warning for another), then one that counts the rest."""
    found = list(batch)
    if len(found) <= MAX_REPEATS:  # nearly every batch: an aggregate's entities make 70,000 of them
        return found
    kept: list[Finding] = []
    listed: Counter[tuple[str, Severity]] = Counter()
    rest: dict[tuple[str, Severity], tuple[Finding, int]] = {}
    for finding in found:
        kind = (finding.code, finding.severity)
        listed[kind] += 1
        if listed[kind] <= MAX_REPEATS:
            kept.append(finding)
        else:
            first, count = rest.get(kind, (finding, 0))
            rest[kind] = (first, count + 1)
    for (code, _severity), (first, count) in rest.items():
        kept.append(replace(
            first, message=f"… and {count:,} more {code} finding{'s' if count > 1 else ''} like the ones above, "
                           f"from here on, not listed one by one", expected=None, actual=None))
    return kept


class FindingLog:
    """The findings of one inspection while it runs, in the order they were made; what it returns
    is :meth:`frozen`. Each :meth:`extend` is one batch for :func:`folded`."""

    __slots__ = ("_found",)

    def __init__(self) -> None:
        self._found: list[Finding] = []

    def add(self, finding: Finding) -> None:
        self._found.append(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        self._found.extend(folded(findings))

    def add_all(self, findings: Iterable[Finding]) -> None:
        """Add findings as they are: another inspection's, folded batch by batch already."""
        self._found.extend(findings)

    def __len__(self) -> int:
        return len(self._found)

    def frozen(self) -> tuple[Finding, ...]:
        return tuple(self._found)


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
    "SPM": "SP metadata registered at the test IdP",
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
    # The texts are prose, wrapped in the source for reading there: one space between words, so that
    # JSON, HTML and a terminal each wrap them their own way (never a line break and indent mid-sentence).
    registered = Rule(code, title, severity, subject, _prose(what), _prose(why), _prose(fix), example=example)
    _REGISTRY[code] = registered
    return registered


def _prose(text: str) -> str:
    return " ".join(text.split())


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
