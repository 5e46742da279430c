"""The sweep's output: one summary of many partners, each with its own report.

    text    the summary table, then what needs attention per partner (cron: `quiet` prints
            nothing at all when every partner is ready and unchanged)
    json    ``saml-preflight/sweep/v1`` holding one ``saml-preflight/report/v1`` report per
            partner (docs/sweep-json.md)
    junit   ``<testsuites>`` with one testsuite per partner, one testcase per rule that ran
    html    a self-contained page: the summary table and, per partner, its certificate timeline

:class:`SweepProgress` is the progress shown on standard error while a sweep runs: a bar on
a terminal, a line per partner with `verbose`, nothing otherwise.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

import click
from lxml import etree
from markupsafe import Markup

from validator.errors import UsageError
from validator.findings import Rule, Severity
from validator.findings import rules as registered_rules
from validator.json_value import Plain, iso_z
from validator.render import shown
from validator.render.html import page_template
from validator.render.json import report_document
from validator.render.junit import junit_suite, serialize
from validator.render.timeline import TimelineCertificate, certificate_timeline
from validator.sweep import SCHEMA, PartnerResult, SweepResult
from validator.sweep_partner import next_expiry_json

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

WIDTH = 100
_NAME = 34
_MARK = {"not ready": "✗", "ready, with warnings": "!", "ready": "✓"}
_TONE = {"not ready": "\x1b[31m", "ready, with warnings": "\x1b[33m", "ready": "\x1b[32m"}


def render_sweep(result: SweepResult, fmt: str, *, quiet: bool = False, color: bool = False) -> str:
    if fmt == "text":
        return render_text(result, quiet=quiet, color=color)
    if fmt == "json":
        return json.dumps(sweep_document(result), indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    if fmt == "junit":
        return render_junit_suites(result)
    if fmt == "html":
        return render_html(result)
    raise UsageError(f"unknown sweep format {fmt!r}; choose one of text, json, junit, html")


# --- summary -------------------------------------------------------------------------------------

def verdict(result: SweepResult) -> str:
    if result.count(Severity.ERROR):
        return "not ready"
    return "ready, with warnings" if result.count(Severity.WARNING) else "ready"


def summary_counts(result: SweepResult) -> dict[str, int]:
    verdicts = [p.report.verdict for p in result.partners]
    return {
        "partners": len(result.partners),
        "not_ready": verdicts.count("not ready"),
        "ready_with_warnings": verdicts.count("ready, with warnings"),
        "ready": verdicts.count("ready"),
        "changed": sum(1 for p in result.partners if _changed(p)),
        "errors": result.count(Severity.ERROR),
        "warnings": result.count(Severity.WARNING),
    }


def summary_line(result: SweepResult) -> str:
    c = summary_counts(result)
    parts = [f"{c['not_ready']} not ready", f"{c['ready_with_warnings']} with warnings", f"{c['ready']} ready"]
    changed = f"; {c['changed']} changed since the last good copy" if c["changed"] else ""
    noun = "partner" if c["partners"] == 1 else "partners"
    return f"{_MARK[verdict(result)]} {c['partners']} {noun}: {', '.join(parts)}{changed}"


def expiry_cell(partner: PartnerResult, result: SweepResult) -> str:
    cert = partner.next_expiry(result.clock)
    if cert is None:
        return "—"
    days = (cert.not_after - result.clock).days
    when = f"expired {cert.not_after:%Y-%m-%d}" if days < 0 else f"{cert.not_after:%Y-%m-%d} ({days} d)"
    marks = ("signer" if partner.signer and partner.signer.sha256 == cert.sha256 else "",
             "last good copy" if partner.certificates_from == "last good copy" else "")
    return when + "".join(f", {m}" for m in marks if m)


def _changed(partner: PartnerResult) -> bool:
    return any(not c.startswith("first copy") for c in partner.changes)


def _attention(partner: PartnerResult) -> bool:
    return partner.report.verdict != "ready" or _changed(partner)


# --- text ----------------------------------------------------------------------------------------

def render_text(result: SweepResult, *, quiet: bool = False, color: bool = False) -> str:
    shown_partners = [p for p in result.partners if _attention(p)] if quiet else result.partners
    if quiet and not shown_partners:
        return ""

    lines = [f"saml-preflight · sweep of {shown(result.folder, one_line=True)}",
             f"  clock {iso_z(result.clock)} · warning window {result.warn_days} days", "",
             _paint(summary_line(result), _TONE[verdict(result)], color), "",
             *_table(result, shown_partners, color)]
    for partner in shown_partners:
        if _attention(partner):
            lines += ["", *_details(partner)]
    return "\n".join(lines) + "\n"


def _paint(text: str, tone: str, color: bool) -> str:
    return f"{tone}{text}\x1b[0m" if color else text


def _table(result: SweepResult, partners: Sequence[PartnerResult], color: bool) -> Iterator[str]:
    """The summary table: a row per partner, in the tone of its verdict when coloured."""
    head = ("Partner", "Verdict", "Errors", "Warnings", "Next expiry", "Changed")
    rows = [(_cut(shown(p.name, one_line=True), _NAME), f"{_MARK[p.report.verdict]} {p.report.verdict}",
             str(p.report.count(Severity.ERROR)), str(p.report.count(Severity.WARNING)), expiry_cell(p, result),
             ", ".join(p.changes) or "—") for p in partners]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for n, row in enumerate([head, *rows]):
        cells = [row[i].rjust(widths[i]) if i in (2, 3) else row[i].ljust(widths[i]) for i in range(len(row))]
        line = "  ".join(cells).rstrip()
        yield _paint(line, _TONE[partners[n - 1].report.verdict], color) if n else line


def _details(partner: PartnerResult) -> Iterator[str]:
    report = partner.report
    record = "" if partner.biller_id is None else f" ({shown(partner.record, one_line=True)})"
    yield f"{shown(partner.name, one_line=True)}{record}: {report.verdict}"
    if partner.source is not None:
        yield from textwrap.wrap(f"trust source: {partner.source.kind} {shown(partner.source.location, one_line=True)}",
                                 WIDTH, initial_indent="    ", subsequent_indent="    ", break_long_words=False,
                                 break_on_hyphens=False)
    for finding in report.sorted_findings:
        if finding.severity is Severity.INFO and finding.code not in ("KEY022", "MD021"):
            continue
        lead = f"    {finding.code:<7} "
        yield from textwrap.wrap(shown(finding.message, one_line=True), WIDTH, initial_indent=lead,
                                 subsequent_indent=" " * len(lead), break_long_words=False,
                                 break_on_hyphens=False)
    kept = partner.history.kept
    if kept:
        yield from textwrap.wrap(f"history: {kept}", WIDTH, initial_indent="    ", subsequent_indent="    ")


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# --- json ----------------------------------------------------------------------------------------

def sweep_document(result: SweepResult) -> dict[str, Plain]:
    """The sweep as JSON-compatible data: ``saml-preflight/sweep/v1`` (docs/sweep-json.md)."""
    return {
        "schema": SCHEMA,
        "folder": result.folder,
        "clock": iso_z(result.clock),
        "warn_days": result.warn_days,
        "verdict": verdict(result),
        "summary": dict(summary_counts(result)),
        "exit_code": result.exit_code(),
        "partners": [_partner(p, result.clock) for p in result.partners],
    }


def _partner(partner: PartnerResult, now: datetime) -> Plain:
    return {
        "record": partner.record,
        "biller_id": partner.biller_id,
        "biller_name": partner.biller_name,
        "verdict": partner.report.verdict,
        "errors": partner.report.count(Severity.ERROR),
        "warnings": partner.report.count(Severity.WARNING),
        "changes": list(partner.changes),
        "next_expiry": next_expiry_json(partner.certificates, partner.certificates_from, partner.signer, now),
        "signer": None if partner.signer is None else {
            "sha256": partner.signer.sha256, "how": partner.signer.how, "note": partner.signer.note},
        "trust_source": None if partner.source is None else partner.source.json()["trust_source"],
        "report": report_document(partner.report),
    }


# --- junit ---------------------------------------------------------------------------------------

def render_junit_suites(result: SweepResult) -> str:
    """``<testsuites>``: each partner's JUnit report (the same as ``saml-validate metadata``) as a
    testsuite named after its record."""
    by_subject: dict[str, list[Rule]] = {}
    for r in registered_rules():
        by_subject.setdefault(r.subject, []).append(r)
    root = etree.Element("testsuites", name="saml-preflight.sweep")
    tests = failures = 0
    for partner in result.partners:
        ran = [r for subject in dict.fromkeys(partner.report.subjects_run) for r in by_subject.get(subject, [])]
        suite = junit_suite(partner.report, sorted(ran, key=lambda r: r.code))
        etree.indent(suite)  # laid out as the partner's own JUnit report is, before the properties below
        suite.set("name", f"saml-preflight.sweep.{_xml_safe(partner.record)}")
        properties = suite.find("properties")
        if properties is not None:
            etree.SubElement(properties, "property", name="record", value=_xml_safe(partner.record))
            if partner.biller_id is not None:
                etree.SubElement(properties, "property", name="biller.id", value=_xml_safe(partner.biller_id))
        tests += int(suite.get("tests", "0"))
        failures += int(suite.get("failures", "0"))
        root.append(suite)
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", "0")
    return serialize(root)


def _xml_safe(value: str) -> str:
    # `shown` on one line leaves only characters XML 1.0 can carry (the rest become \\uXXXX).
    return shown(value, one_line=True)


# --- html ----------------------------------------------------------------------------------------

def timeline_certificates(partner: PartnerResult) -> list[TimelineCertificate]:
    signer = partner.signer.sha256 if partner.signer else None
    return [TimelineCertificate(c.subject, c.not_before, c.not_after, c.sha256, c.sha256 == signer)
            for c in partner.certificates]


def render_html(result: SweepResult) -> str:
    partners = []
    for n, partner in enumerate(result.partners, 1):
        report = partner.report
        partners.append({
            "anchor": f"p{n}",
            "name": shown(partner.name, one_line=True),
            "record": shown(partner.record, one_line=True),
            "verdict": report.verdict,
            "tone": _tone(report.verdict),
            "errors": report.count(Severity.ERROR),
            "warnings": report.count(Severity.WARNING),
            "expiry": shown(expiry_cell(partner, result), one_line=True),
            "changes": [shown(c, one_line=True) for c in partner.changes],
            "inputs": [(shown(k), shown(v, one_line=True)) for k, v in report.inputs.items()],
            "signer": shown(partner.signer.note) if partner.signer else None,
            "certificates_from": partner.certificates_from,
            # certificate_timeline escapes every text it draws; nothing from outside is marked safe here.
            "timeline": Markup(certificate_timeline(timeline_certificates(partner), now=result.clock,  # noqa: S704
                                                    warn_days=result.warn_days)) if partner.certificates else None,
            "findings": [{"code": shown(f.code), "severity": f.severity.value, "title": shown(f.title),
                          "message": shown(f.message), "fix": shown(f.fix) if f.fix else None,
                          "where": shown(f.where, one_line=True) if f.where else None}
                         for f in report.sorted_findings if f.severity is not Severity.INFO or f.code == "MD021"],
            "history": shown(partner.history.kept or "") or None,
        })
    counts = summary_counts(result)
    return page_template("sweep.html").render(
        folder=shown(result.folder, one_line=True), clock=iso_z(result.clock), warn_days=result.warn_days,
        verdict=verdict(result), tone=_tone(verdict(result)), summary=summary_line(result), counts=counts,
        partners=partners,
    )


def _tone(text: str) -> str:
    return {"not ready": "fail", "ready, with warnings": "warn"}.get(text, "pass")




# --- progress ------------------------------------------------------------------------------------

class SweepProgress:
    """Progress on `stream` (standard error): a bar when it is a terminal, one line per partner
    with `verbose`, nothing when `quiet` or when it is not a terminal (cron mails what it sees)."""

    def __init__(self, total: int, *, stream: TextIO, tty: bool, verbose: bool = False, quiet: bool = False) -> None:
        self.total, self.stream, self.done = total, stream, 0
        self.verbose = verbose and not quiet
        self._bar: ProgressBar[int] | None = None
        if tty and not quiet and not verbose:
            self._bar = click.progressbar(length=total, label="Sweeping", file=stream, show_pos=True,
                                          show_eta=True, width=30)

    def __enter__(self) -> SweepProgress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, value, traceback)

    def __call__(self, partner: PartnerResult) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self.verbose:
            width = len(str(self.total))
            click.echo(f"[{self.done:>{width}}/{self.total}] {shown(partner.name, one_line=True)} "
                       f"({shown(partner.record, one_line=True)}): {_MARK[partner.report.verdict]} "
                       f"{partner.report.verdict} ({partner.seconds:.2f} s)", file=self.stream)
