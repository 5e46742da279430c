"""The terminal report: a header, a one-line verdict, findings by severity, then the facts.

Lines are wrapped at whitespace to `WIDTH` columns; a URL or other long word is never
broken, and expected/actual values are never wrapped at all (their spacing is the point).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

from validator.findings import Finding, Severity
from validator.json_value import Plain, iso_z
from validator.render import shown
from validator.report import Report, facts_json

WIDTH = 100
INDENT = "    "

_SECTION = {Severity.ERROR: "Errors", Severity.WARNING: "Warnings", Severity.INFO: "Notes"}
_NOUN = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}

_RESET, _BOLD, _DIM = "\x1b[0m", "\x1b[1m", "\x1b[2m"
_RED, _YELLOW, _GREEN = "\x1b[31m", "\x1b[33m", "\x1b[32m"
_TONE = {Severity.ERROR: _RED, Severity.WARNING: _YELLOW, Severity.INFO: _DIM}


class _Paint:
    """ANSI styling that is a no-op unless colour was asked for."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles or not text:
            return text
        return "".join(styles) + text + _RESET


def render_text(report: Report, *, color: bool = False) -> str:
    paint = _Paint(color)
    lines = [*_header(report, paint), "", _summary(report, paint)]
    for severity in Severity:
        found = [f for f in report.sorted_findings if f.severity is severity]
        if found:
            lines += ["", *_section(severity, found, paint)]
    facts = facts_json(report)
    if facts:
        lines += ["", paint("Facts", _BOLD), *_facts(facts, INDENT[:2])]
    return "\n".join(lines) + "\n"


def summary_line(report: Report) -> str:
    """``✗ not ready — 3 errors, 2 warnings, 4 notes``; zero counts are left out."""
    counts = [plural(report.count(s), _NOUN[s]) for s in Severity if report.count(s)]
    mark = "✗" if report.count(Severity.ERROR) else "✓"
    return f"{mark} {report.verdict}" + (f" — {', '.join(counts)}" if counts else "")


def finding_lines(finding: Finding, *, code_width: int = 0, paint: _Paint | None = None) -> list[str]:
    """One finding: ``CODE  title``, then its message and labelled details, indented."""
    paint = paint or _Paint(False)
    tone = _TONE[finding.severity]
    code = paint(finding.code.ljust(code_width), _BOLD, tone)
    title = paint(shown(finding.title), _DIM) if finding.severity is Severity.INFO else shown(finding.title)
    lines = [f"{code}  {title}"]
    lines += _wrap(shown(finding.message), INDENT, INDENT)
    labelled = [("expected", finding.expected), ("actual", finding.actual), ("where", finding.where)]
    for label, value in labelled:
        if value is not None:
            lines += _value_lines(f"{INDENT}{label + ':':<10}", shown(value, one_line=True))
    if finding.fix:
        lead = f"{INDENT}{'fix:':<10}"
        lines += _wrap(shown(finding.fix), lead, " " * len(lead))
    return lines


def _header(report: Report, paint: _Paint) -> Iterator[str]:
    yield paint(f"saml-preflight · {shown(report.subject)} report", _BOLD)
    rows = [*((shown(k), shown(v)) for k, v in report.inputs.items()), ("clock", iso_z(report.clock))]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        yield f"  {key:<{width}}  {value}"


def _summary(report: Report, paint: _Paint) -> str:
    if report.count(Severity.ERROR):
        tone = _RED
    elif report.count(Severity.WARNING):
        tone = _YELLOW
    else:
        tone = _GREEN
    return paint(summary_line(report), _BOLD, tone)


def _section(severity: Severity, found: list[Finding], paint: _Paint) -> Iterator[str]:
    heading = f"{_SECTION[severity]} ({len(found)})"
    yield paint(heading, _BOLD, _TONE[severity])
    yield ""
    code_width = max(len(f.code) for f in found)
    for i, finding in enumerate(found):
        if i:
            yield ""
        yield from finding_lines(finding, code_width=code_width, paint=paint)


def _facts(data: Plain, indent: str) -> Iterator[str]:
    if not isinstance(data, dict):
        yield from _wrap(one_line(data), indent, indent)
        return
    width = max((len(fact_label(k)) for k, v in data.items() if _is_scalar(v)), default=0) + 1
    for key, value in data.items():
        label = fact_label(key) + ":"
        if _is_scalar(value):
            lead = f"{indent}{label:<{width}} "
            yield from _wrap(one_line(value), lead, " " * len(lead))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            yield f"{indent}{label}"
            yield from _table([v for v in value if isinstance(v, dict)], indent + "  ")
        elif isinstance(value, list):
            yield f"{indent}{label}" + ("" if value else " (none)")
            for item in value:
                yield from _wrap(one_line(item), f"{indent}  - ", f"{indent}    ")
        else:
            yield f"{indent}{label}"
            yield from _facts(value, indent + "  ")


def _table(rows: list[dict[str, Plain]], indent: str) -> Iterator[str]:
    """Rows as aligned columns, one per key (in first-seen order). Cells are never wrapped."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[fact_label(c) for c in columns]] + [[one_line(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    if len(indent) + sum(widths) + 2 * (len(widths) - 1) > WIDTH:
        yield from _blocks(cells[0], cells[1:], indent)
        return
    for line in cells:
        yield (indent + "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))).rstrip()


def _blocks(labels: list[str], rows: list[list[str]], indent: str) -> Iterator[str]:
    """Rows too wide for a terminal: one block per row, a field per line, rows apart."""
    label_width = max(len(c) for c in labels) + 1
    for n, row in enumerate(rows):
        if n:
            yield ""
        for i, (label, cell) in enumerate(zip(labels, row, strict=True)):
            yield f"{indent}{'- ' if i == 0 else '  '}{label + ':':<{label_width}} {cell}".rstrip()


def fact_label(key: str) -> str:
    """A fact's key as a label: ``not_after`` reads ``not after``."""
    return shown(key).replace("_", " ")


def _is_scalar(value: Plain) -> bool:
    return not isinstance(value, dict | list)


def one_line(value: Plain) -> str:
    """A value on one line: lists joined by commas, mappings as ``key=value``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(one_line(v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{shown(k)}={one_line(v)}" for k, v in value.items()) or "—"
    return shown(str(value), one_line=True)


def _value_lines(lead: str, value: str) -> list[str]:
    """A value as is; a multi-line value continues under its first line."""
    first, *rest = value.split("\n")
    return [lead + first, *(" " * len(lead) + line for line in rest)]


def _wrap(text: str, first: str, rest: str) -> list[str]:
    """`text` wrapped at whitespace; paragraphs and list items kept apart; long words whole."""
    lines: list[str] = []
    for block in paragraphs(text):
        lead = first if not lines else rest
        lines += textwrap.wrap(
            block,
            WIDTH,
            initial_indent=lead,
            subsequent_indent=rest,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [lead.rstrip()]
    return lines or [first.rstrip()]


def paragraphs(text: str) -> Iterator[str]:
    """Paragraphs (split at blank lines) and list items (lines starting ``-``, ``*`` or ``1.``)."""
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        starts_item = line[:2] in ("- ", "* ") or (line.split(".", 1)[0].isdigit() and ". " in line[:5])
        if (not line or starts_item) and current:
            yield " ".join(current)
            current = []
        if line:
            current.append(line)
    if current:
        yield " ".join(current)


def plural(n: int, noun: str) -> str:
    """"1 error", "2 errors"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
