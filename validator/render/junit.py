"""JUnit XML for CI: one testsuite, one testcase per rule that ran.

A rule with an error finding fails (``<failure type="CODE">`` holding all its findings); a
rule with only warnings or notes passes, its findings in ``<system-out>``; a rule without
findings passes. A finding whose code is not among the rules given still gets a testcase of
its own, so no error is ever dropped from CI. The timestamp is the report's clock in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC

from lxml import etree

from validator.findings import Finding, Rule, Severity
from validator.render import shown
from validator.render.text import finding_lines
from validator.report import Report

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(report: Report, rules: Iterable[Rule]) -> str:
    return serialize(junit_suite(report, rules))


def serialize(element: etree._Element) -> str:
    xml: bytes = etree.tostring(element, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    return xml.decode("utf-8")


def junit_suite(report: Report, rules: Iterable[Rule]) -> etree._Element:
    """The ``<testsuite>`` of `report`: one testcase per rule given (retired ones aside), then one per
    code found that no rule given has."""
    by_code: dict[str, list[Finding]] = {}
    for finding in report.sorted_findings:
        by_code.setdefault(finding.code, []).append(finding)
    cases = [(r.code, r.title, r.subject) for r in rules if not r.retired]
    covered = {code for code, _, _ in cases}
    cases += [(code, found[0].title, report.subject) for code, found in by_code.items() if code not in covered]

    suite = _suite(report, len(cases))
    failures = 0
    for code, title, subject in cases:
        case = etree.SubElement(suite, "testcase", classname=_text(subject), name=_text(f"{code} {title}"))
        case.set("time", "0")
        failures += _outcome(case, code, by_code.get(code, []))
    suite.set("failures", str(failures))
    return suite


def _suite(report: Report, tests: int) -> etree._Element:
    clock = report.clock if report.clock.tzinfo else report.clock.replace(tzinfo=UTC)
    suite = etree.Element(
        "testsuite",
        name=_text(f"saml-preflight.{report.subject}"),
        tests=str(tests),
        failures="0",
        errors="0",
        skipped="0",
        time="0",
        # JUnit's schema wants xs:dateTime without a zone; this one is UTC.
        timestamp=clock.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    properties = etree.SubElement(suite, "properties")
    for name, value in [*((f"input.{k}", v) for k, v in report.inputs.items()), ("verdict", report.verdict)]:
        etree.SubElement(properties, "property", name=_text(name), value=_text(value))
    return suite


def _outcome(case: etree._Element, code: str, found: list[Finding]) -> int:
    """Fill `case` with what was found for `code`; 1 when it fails (an error among them), else 0."""
    errors = [f for f in found if f.severity is Severity.ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        failure = etree.SubElement(case, "failure", message=_text(errors[0].message + more), type=code)
        failure.text = _text(_details(found))
        return 1
    if found:
        etree.SubElement(case, "system-out").text = _text(_details(found))
    return 0


def _details(found: list[Finding]) -> str:
    blocks = ["\n".join(finding_lines(f)) for f in found]
    return "\n\n".join(f"[{f.severity.value}] {block}" for f, block in zip(found, blocks, strict=True))


def _text(value: str) -> str:
    """`value` shown safely, with anything XML 1.0 cannot carry as ``\\uXXXX``."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", shown(value))
