"""Report renderers: one `Report`, four formats.

    text    terminal report, colour on request        `render.text.render_text`
    json    the contract for automation               `render.json.render_json` (docs/report-json.md)
    junit   one testcase per rule, for CI             `render.junit.render_junit`
    html    self-contained, printable go-live report  `render.html.render_html`

Renderers for people show every value from a partner through `shown`, so control, zero-width
and bidi characters appear as ``\\uXXXX`` instead of acting on the terminal or the page. The
JSON report carries values exactly (ASCII-escaped); its consumers must do the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from metadata.xml import visible
from validator.errors import UsageError
from validator.findings import Rule
from validator.findings import rules as registered_rules
from validator.report import Report

FORMATS = ("text", "json", "junit", "html")

# Beyond what `visible` covers: soft hyphen, invisible operators, line/paragraph separators,
# lone surrogates and the two non-characters XML refuses.
_ALSO_INVISIBLE = re.compile("[\u00ad\u2028\u2029\u2060-\u2064\ud800-\udfff\ufffe\uffff]")


def render(report: Report, fmt: str, *, rules: Iterable[Rule] | None = None, color: bool = False) -> str:
    """`report` in format `fmt`.

    `rules`: for JUnit, one testcase each (by default the registered rules of the subjects
    that ran); for HTML, where each finding's *why* comes from (by default the registry).
    `color` matters to text only.
    """
    # Each renderer is imported when asked for: a CLI run pays only for the one it uses.
    if fmt == "text":
        from validator.render.text import render_text

        return render_text(report, color=color)
    if fmt == "json":
        from validator.render.json import render_json

        return render_json(report)
    if fmt == "junit":
        from validator.render.junit import render_junit

        if rules is None:
            rules = [r for r in registered_rules() if r.subject in report.subjects_run]
        return render_junit(report, rules)
    if fmt == "html":
        from validator.render.html import render_html

        return render_html(report, rules=rules)
    raise UsageError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def shown(value: str, *, one_line: bool = False) -> str:
    """`value` as a person may safely see it: invisible and controlling characters as ``\\uXXXX``
    (line feeds and tabs too when `one_line`: expected and actual values, where, table cells)."""
    return _ALSO_INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", visible(value, one_line=one_line))
