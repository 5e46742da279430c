"""The HTML report: one self-contained, printable go-live page for the partner.

The page carries its own CSS and nothing else: no script, no font, no image, and a CSP
meta tag that forbids loading any. The template (report.html, package data) autoescapes;
every value from outside is also passed through `shown` first, and nothing is marked safe.
Facts are turned into a small tree of `Node`s here, so the template only lays them out.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources

import jinja2
from markupsafe import Markup

from validator.findings import Finding, Rule, Severity
from validator.findings import rules as registered_rules
from validator.json_value import Plain, iso_z
from validator.render import shown
from validator.render.text import fact_label, one_line, paragraphs, summary_line
from validator.report import Report, facts_json

_LONG_CELL = 32
_SECTION = {Severity.ERROR: "Errors", Severity.WARNING: "Warnings", Severity.INFO: "Notes"}


@dataclass(frozen=True)
class Node:
    """A fact laid out: ``text``, ``list`` (items), ``fields`` (label, node) or ``table``."""

    kind: str
    text: str = ""
    items: list[Node] = field(default_factory=list)
    fields: list[tuple[str, Node]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[tuple[str, bool]]] = field(default_factory=list)
    """Each cell: its text, and whether it is long enough to wrap anywhere (a fingerprint)."""


def render_html(report: Report, *, rules: Iterable[Rule] | None = None) -> str:
    """The page; each finding's *why* comes from `rules`, by default the registry."""
    why = {r.code: r.why for r in (registered_rules() if rules is None else rules)}
    facts = facts_json(report)
    certificates = facts.pop("certificates") if _is_table(facts.get("certificates")) else None

    found = report.sorted_findings
    errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
    return _template().render(
        subject=shown(report.subject),
        verdict=report.verdict,
        tone="fail" if errors else "warn" if warnings else "pass",
        summary=summary_line(report),
        any_findings=bool(report.findings),
        counts=[(_SECTION[s], report.count(s), s.value) for s in Severity],
        inputs=[(shown(k), shown(v)) for k, v in report.inputs.items()],
        clock=iso_z(report.clock),
        sections=[
            (_SECTION[s], s.value, [_finding(f, why.get(f.code)) for f in found if f.severity is s])
            for s in Severity
        ],
        certificates=_node(certificates) if certificates else None,
        timeline=_timeline(report),
        facts=_node(facts) if facts else None,
    )


def _timeline(report: Report) -> Markup | None:
    """The signing certificates of a metadata report on a timeline (None without any)."""
    from validator.metadata_facts import MetadataFacts
    from validator.render.timeline import TimelineCertificate, certificate_timeline

    metadata = next((f for f in report.facts if isinstance(f, MetadataFacts)), None)
    signing = metadata.signing_certificates() if metadata is not None else ()
    if metadata is None or not signing:
        return None
    svg = certificate_timeline(
        # With one signing certificate, that one signs: the only case metadata alone decides.
        [TimelineCertificate(r.facts.subject, r.facts.not_before, r.facts.not_after, r.facts.sha256,
                             len(signing) == 1) for r in signing],
        now=report.clock, warn_days=metadata.inspection.warn_days)
    return Markup(svg)  # noqa: S704 - drawn by our renderer, which escapes every text it places


def _package_file(name: str) -> str:
    return resources.files("validator.render").joinpath(name).read_text(encoding="utf-8")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FunctionLoader(_package_file), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def page_template(name: str) -> jinja2.Template:
    """A page template of the package: each extends ``page.html``, which holds the head, the CSP
    and the stylesheet (``page.css``) of every page the validator writes."""
    return _environment().get_template(name)


def _template() -> jinja2.Template:
    return page_template("report.html")


def _finding(finding: Finding, why: str | None) -> dict[str, object]:
    return {
        "code": shown(finding.code),
        "title": shown(finding.title),
        "message": list(paragraphs(shown(finding.message))),
        "expected": None if finding.expected is None else shown(finding.expected, one_line=True),
        "actual": None if finding.actual is None else shown(finding.actual, one_line=True),
        "where": None if finding.where is None else shown(finding.where, one_line=True),
        "fix": list(paragraphs(shown(finding.fix))) if finding.fix else [],
        "why": list(paragraphs(shown(why))) if why else [],
    }


def _node(value: Plain) -> Node:
    if isinstance(value, dict):
        return Node("fields", fields=[(fact_label(k), _node(v)) for k, v in value.items()])
    if _is_table(value):
        assert isinstance(value, list)
        rows = [row for row in value if isinstance(row, dict)]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        return Node(
            "table",
            columns=[fact_label(c) for c in columns],
            rows=[[_cell(one_line(row.get(c))) for c in columns] for row in rows],
        )
    if isinstance(value, list):
        return Node("list", items=[_node(v) for v in value]) if value else Node("text", text="none")
    return Node("text", text=one_line(value))


def _cell(text: str) -> tuple[str, bool]:
    return text, len(text) > _LONG_CELL


def _is_table(value: Plain) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
