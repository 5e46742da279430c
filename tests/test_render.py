"""The four renderers of one Report: text, JSON, JUnit XML and HTML.

Findings and rules are built here directly (rules are not registered), so these tests do not
depend on the check modules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from lxml import etree

from validator.findings import Finding, Rule, Severity
from validator.json_value import Plain, iso_z
from validator.render import FORMATS, render, shown
from validator.render.html import render_html
from validator.render.json import render_json
from validator.render.junit import render_junit
from validator.render.text import WIDTH, render_text
from validator.report import SCHEMA, Report

CLOCK = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LONG_URL = "https://springfield.okta.com/admin/app/springfield_portal/instance/exk1abcd/#tab-signon-and-more"
SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=1>'
RLO = "\u202e"


def _rule(code: str, title: str, severity: Severity, *, retired: bool = False) -> Rule:
    return Rule(
        code,
        title,
        severity,
        "metadata",
        what="What.",
        why=f"Why {code} matters.",
        fix="Fix.",
        retired=retired,
    )


ENTITY = _rule("CRM901", "IdP entity ID differs from the CRM record", Severity.ERROR)
EXPIRY = _rule("KEY901", "Signing certificate expires soon", Severity.WARNING)
BINDING = _rule("MD901", "No HTTP-Redirect binding", Severity.ERROR)
VENDOR = _rule("MD902", "Vendor detected", Severity.INFO)
QUIET = _rule("MD903", "A rule that found nothing", Severity.ERROR)
OLD = _rule("MD904", "A retired rule", Severity.ERROR, retired=True)
RULES = [ENTITY, EXPIRY, BINDING, VENDOR, QUIET, OLD]


def _findings() -> list[Finding]:
    return [
        VENDOR.finding("Okta: the entityID has Okta's shape.", where="EntityDescriptor"),
        EXPIRY.finding("The signing certificate expires in 20 days.", actual="2025-03-21T00:00:00Z"),
        ENTITY.finding(
            "The entityID is not the one given in discovery; logins would be rejected with an unknown "
            "issuer, and the partner would see a generic error page with no hint of the cause.",
            expected="http://www.okta.com/exk1abcd",
            actual="http://www.okta.com/exk1abce" + RLO,
            where="EntityDescriptor/@entityID (line 2)",
            fix=f"Ask the partner for the metadata of the application named in discovery: {LONG_URL}",
        ),
        BINDING.finding("Only HTTP-POST is offered.", severity=Severity.WARNING),
        BINDING.finding(
            "The SSO URL is not https.",
            expected="https://…",
            actual="http://idp.example/sso",
            fix="Use https.",
        ),
    ]


@dataclass(frozen=True)
class Given:
    """Facts given as JSON data, to show how the renderers lay facts out whatever they are about."""

    data: dict[str, Plain]

    def json(self) -> dict[str, Plain]:
        return self.data


def _report(findings: list[Finding] | None = None, **facts: Plain) -> Report:
    return Report(
        subject="metadata",
        inputs={"metadata": "partner.xml", "crm": "billers/B-10442.toml"},
        clock=CLOCK,
        subjects_run=("metadata",),
        findings=tuple(_findings() if findings is None else findings),
        facts=(Given(dict(facts)),) if facts else (),
    )


CERTIFICATES: list[Plain] = [
    {
        "use": "signing",
        "subject": "CN=springfield",
        "not_after": "2026-01-31T00:00:00Z",
        "sha256": "3F:A2:11:9C:0B:7E:55:61:AD:42:90:1C:FE:88:73:0D:12:34:56:78:9A:BC:DE:F0:11:22:33:44:55",
    },
    {"use": "encryption", "subject": "CN=springfield-enc", "not_after": "2027-01-01T00:00:00Z"},
]


# --- text -------------------------------------------------------------------------------------


def test_text_summary_line_counts_and_verdict() -> None:
    assert "✗ not ready — 2 errors, 2 warnings, 1 note" in render_text(_report()).splitlines()
    assert "✓ ready" in render_text(_report([])).splitlines()
    warning = [EXPIRY.finding("Soon.")]
    assert "✓ ready, with warnings — 1 warning" in render_text(_report(warning)).splitlines()


def test_text_header_shows_subject_inputs_and_clock() -> None:
    lines = render_text(_report()).splitlines()
    assert lines[0] == "saml-preflight · metadata report"
    assert "  metadata  partner.xml" in lines
    assert "  clock     2025-03-01T12:00:00Z" in lines


def test_text_groups_errors_then_warnings_then_notes() -> None:
    out = render_text(_report())
    positions = [out.index(heading) for heading in ("Errors (2)", "Warnings (2)", "Notes (1)")]
    assert positions == sorted(positions)
    codes = re.findall(r"^([A-Z]+9\d\d) ", out, flags=re.MULTILINE)
    assert codes == ["CRM901", "MD901", "KEY901", "MD901", "MD902"]


def test_text_finding_has_message_expected_actual_where_fix() -> None:
    lines = render_text(_report()).splitlines()
    start = lines.index("CRM901  IdP entity ID differs from the CRM record")
    block = lines[start : start + 9]
    assert block[1].startswith("    The entityID is not the one given in discovery;")
    assert "    expected: http://www.okta.com/exk1abcd" in block
    assert "    actual:   http://www.okta.com/exk1abce\\u202e" in block
    assert "    where:    EntityDescriptor/@entityID (line 2)" in block
    assert any(line.startswith("    fix:      Ask the partner") for line in block)


def test_text_wraps_at_width_but_never_breaks_a_url() -> None:
    out = render_text(_report())
    assert any(line.strip() == LONG_URL for line in out.splitlines())
    for line in out.splitlines():
        assert len(line) <= WIDTH or LONG_URL in line


def test_text_has_no_ansi_without_colour() -> None:
    assert "\x1b" not in render_text(_report(vendor="okta"))


def test_text_colour_marks_severities_and_codes() -> None:
    out = render_text(_report(), color=True)
    assert "\x1b[1m\x1b[31mCRM901\x1b[0m" in out  # bold red code of an error
    assert "\x1b[33m" in out and "\x1b[2m" in out  # yellow warnings, dim notes


def test_text_escapes_terminal_control_from_partner_values() -> None:
    hostile = [ENTITY.finding("clear \x1b[2J screen", actual="\x1b]0;owned\x07")]
    for color in (False, True):
        out = render_text(_report(hostile), color=color)
        assert "\x1b[2J" not in out and "\x1b]" not in out and "\x07" not in out
        assert "\\u001b[2J" in out


def test_text_wide_table_becomes_one_block_per_row() -> None:
    out = render_text(_report([], certificates=CERTIFICATES))
    lines = out.splitlines()
    assert "    - use:       signing" in lines
    assert "    - use:       encryption" in lines
    assert f"      sha256:    {CERTIFICATES[0]['sha256']}" in lines
    assert all(len(line) <= 120 for line in lines)


def test_text_facts_scalars_nested_and_certificate_rows() -> None:
    narrow = [{k: v for k, v in row.items() if k != "sha256"} for row in CERTIFICATES if isinstance(row, dict)]
    narrow[0]["sha256"] = "3F:A2:…"
    out = render_text(
        _report([], vendor="okta", signed=False, sso={"HTTP-POST": LONG_URL}, certificates=narrow)
    )
    lines = out.splitlines()
    facts = lines[lines.index("Facts") :]
    assert "  vendor: okta" in facts
    assert "  signed: no" in facts
    assert f"    HTTP-POST: {LONG_URL}" in facts
    header = next(line for line in facts if line.strip().startswith("use"))
    assert header.split() == ["use", "subject", "not", "after", "sha256"]
    signing = next(line for line in facts if "CN=springfield " in line)
    encryption = next(line for line in facts if "CN=springfield-enc" in line)
    assert "2026-01-31T00:00:00Z" in signing
    assert signing.index("2026") == encryption.index("2027") == header.index("not after")


def test_text_naive_clock_is_utc() -> None:
    report = replace(_report([]), clock=datetime(2025, 3, 1, 12, 0))
    assert "2025-03-01T12:00:00Z" in render_text(report)


# --- JSON -------------------------------------------------------------------------------------


def test_json_document_shape() -> None:
    document = json.loads(render_json(_report(vendor="okta")))
    assert document["schema"] == SCHEMA == "saml-preflight/report/v1"
    assert document["subject"] == "metadata"
    assert document["inputs"] == {"metadata": "partner.xml", "crm": "billers/B-10442.toml"}
    assert document["clock"] == "2025-03-01T12:00:00Z"
    assert document["verdict"] == "not ready"
    assert document["summary"] == {"errors": 2, "warnings": 2, "info": 1}
    assert document["exit_code"] == 1
    assert document["facts"] == {"vendor": "okta"}
    assert set(document["findings"][0]) == {
        "code",
        "severity",
        "title",
        "message",
        "expected",
        "actual",
        "where",
        "fix",
    }


def test_json_findings_in_severity_then_code_order() -> None:
    findings = json.loads(render_json(_report()))["findings"]
    order = [(f["severity"], f["code"]) for f in findings]
    assert order == [
        ("error", "CRM901"),
        ("error", "MD901"),
        ("warning", "KEY901"),
        ("warning", "MD901"),
        ("info", "MD902"),
    ]
    assert findings[2]["expected"] is None and findings[2]["actual"] == "2025-03-21T00:00:00Z"


def test_json_is_deterministic_and_sorted() -> None:
    first = render_json(_report(vendor="okta", certificates=CERTIFICATES))
    again = render_json(_report(certificates=CERTIFICATES, vendor="okta"))
    assert first == again
    assert first.endswith("}\n")
    assert '\n  "clock"' in first and first.index('"clock"') < first.index('"exit_code"') < first.index(
        '"facts"'
    )


def test_json_facts_of_a_metadata_report_are_plain_data() -> None:
    from metadata.certs import certificate_facts
    from tests.factory import NOW, IdPSpec, idp_metadata, make_keypair
    from validator.inspection import MetadataOptions, inspect_metadata_bytes
    from validator.metadata_facts import metadata_report

    key = make_keypair("idp.example.com")
    data = idp_metadata(IdPSpec(keys=[("signing", key.cert_b64)]))
    report = metadata_report(inspect_metadata_bytes(data, "idp.xml", MetadataOptions(now=NOW)))
    facts = json.loads(render_json(report))["facts"]
    [certificate] = facts["certificates"]
    assert certificate["not_after"] == iso_z(certificate_facts(key.cert_der).not_after)
    assert certificate["not_after"].endswith("Z") and certificate["signing"] is True
    assert facts["sso"][0]["binding"] == "HTTP-Redirect" and facts["warn_days"] == 30


def test_json_keeps_values_exact_but_escaped() -> None:
    out = render_json(_report())
    assert RLO not in out and "\\u202e" in out
    actual = json.loads(out)["findings"][0]["actual"]
    assert actual == "http://www.okta.com/exk1abce" + RLO


# --- JUnit ------------------------------------------------------------------------------------


def _junit(report: Report) -> etree._Element:
    return etree.fromstring(render_junit(report, RULES).encode())


def test_junit_one_testcase_per_live_rule() -> None:
    suite = _junit(_report())
    assert suite.tag == "testsuite"
    assert suite.get("name") == "saml-preflight.metadata"
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == [f"{r.code} {r.title}" for r in RULES if not r.retired]
    assert {case.get("classname") for case in suite.iter("testcase")} == {"metadata"}
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "2",
        "0",
        "0",
    )
    assert suite.get("timestamp") == "2025-03-01T12:00:00"


def test_junit_failure_only_for_rules_with_an_error() -> None:
    cases = {case.get("name", "").split()[0]: case for case in _junit(_report()).iter("testcase")}
    failing = {code for code, case in cases.items() if case.find("failure") is not None}
    assert failing == {"CRM901", "MD901"}
    failure = cases["MD901"].find("failure")
    assert failure is not None
    assert failure.get("type") == "MD901"
    assert failure.get("message") == "The SSO URL is not https."
    assert "Only HTTP-POST is offered." in (failure.text or "")  # the rule's warning rides along
    assert "The SSO URL is not https." in (failure.text or "")


def test_junit_warning_only_rule_passes_with_output() -> None:
    cases = {case.get("name", "").split()[0]: case for case in _junit(_report()).iter("testcase")}
    for code, shows in (("KEY901", "2025-03-21"), ("MD902", "Okta")):
        assert cases[code].find("failure") is None
        assert shows in (cases[code].findtext("system-out") or "")
    assert len(cases["MD903"]) == 0


def test_junit_finding_of_an_unlisted_rule_still_fails() -> None:
    stray = Finding("NET901", Severity.ERROR, "Metadata URL unreachable", "Connection refused.")
    suite = etree.fromstring(render_junit(_report([stray]), [QUIET]).encode())
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == ["MD903 A rule that found nothing", "NET901 Metadata URL unreachable"]
    assert suite.get("failures") == "1"


def test_junit_survives_characters_xml_cannot_hold() -> None:
    hostile = [ENTITY.finding("nul \x00 and \ufffe and \ud800", actual=SCRIPT + RLO)]
    suite = etree.fromstring(render_junit(_report(hostile), [ENTITY]).encode())
    text = suite.findtext("testcase/failure") or ""
    assert "\\u0000" in text and "\\ufffe" in text and "\\ud800" in text and "\\u202e" in text
    assert SCRIPT in text  # as text: the XML serialiser escaped it


# --- HTML -------------------------------------------------------------------------------------


def _hostile_report() -> Report:
    hostile = [
        Finding(
            "CRM901",
            Severity.ERROR,
            SCRIPT,
            BREAKOUT + RLO,
            expected=SCRIPT,
            actual=BREAKOUT,
            where=SCRIPT,
            fix=BREAKOUT,
        )
    ]
    return Report(
        subject="metadata" + SCRIPT,
        inputs={"metadata": BREAKOUT, SCRIPT: "x"},
        clock=CLOCK,
        findings=hostile,
        facts=(Given({SCRIPT: BREAKOUT + RLO, "nested": {"k": [SCRIPT]}, "certificates": [{"subject": SCRIPT}]}),),
    )


def test_html_escapes_hostile_values() -> None:
    out = render_html(_hostile_report(), rules=[])
    assert SCRIPT not in out and BREAKOUT not in out
    assert "<img" not in out and "<script" not in out.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert RLO not in out and "\\u202e" in out


def test_html_is_self_contained_with_csp() -> None:
    out = render_html(_report(certificates=CERTIFICATES), rules=RULES)
    assert (
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">" in out
    )
    assert "<script" not in out.lower()
    assert not re.search(r"<(link|img|iframe|object|embed)\b|\b(src|href)=|url\(|@import", out)
    assert "@media print" in out and "size: A4" in out
    assert "generated by saml-preflight at 2025-03-01T12:00:00Z" in out


def test_html_findings_grouped_with_details() -> None:
    out = render_html(_report(), rules=RULES)
    positions = [out.index(f"<h2>{name} ") for name in ("Errors", "Warnings", "Notes")]
    assert positions == sorted(positions)
    assert 'class="badge badge-fail">not ready<' in out
    assert "<pre>http://www.okta.com/exk1abcd</pre>" in out
    assert "<pre>http://www.okta.com/exk1abce\\u202e</pre>" in out
    assert "Why CRM901 matters." in out  # the rule's documentation, from the rules given


def test_html_certificate_table() -> None:
    out = render_html(_report([], vendor="okta", certificates=CERTIFICATES), rules=[])
    section = out[out.index("<h2>Certificates</h2>") : out.index("<h2>Facts</h2>")]
    assert "<table>" in section
    assert re.findall(r"<th scope=\"col\">([^<]*)</th>", section) == ["use", "subject", "not after", "sha256"]
    assert "<td>2026-01-31T00:00:00Z</td>" in section
    assert '<td class="long">3F:A2:11' in section
    assert section.count("<tr>") == 3
    assert '<p class="clean">No findings: every check passed.</p>' in out
    assert 'class="badge badge-pass">ready<' in out


def test_html_other_facts_as_definition_list() -> None:
    out = render_html(_report([], vendor="okta", sso={"HTTP-POST": LONG_URL}, hosts=["a", "b"]), rules=[])
    facts = out[out.index("<h2>Facts</h2>") :]
    assert "<dt>vendor</dt>" in facts and '<span class="value">okta</span>' in facts
    assert "<dt>HTTP-POST</dt>" in facts and LONG_URL in facts
    assert facts.count("<li>") == 2


# --- the dispatcher and shared helpers --------------------------------------------------------


def test_render_dispatches_by_format() -> None:
    report = _report(vendor="okta")
    assert render(report, "text") == render_text(report)
    assert render(report, "json") == render_json(report)
    assert render(report, "junit", rules=RULES) == render_junit(report, RULES)
    assert render(report, "html", rules=RULES) == render_html(report, rules=RULES)
    assert FORMATS == ("text", "json", "junit", "html")


def test_render_rejects_unknown_format_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="text, json, junit, html"):
        render(_report(), "md")


def test_helpers() -> None:
    assert iso_z(datetime(2025, 3, 1, 13, 0, tzinfo=datetime.now(UTC).astimezone().tzinfo)).endswith("Z")
    assert shown("a\u2028b\u00adc") == "a\\u2028b\\u00adc"


def test_html_draws_the_signing_certificates_on_a_timeline() -> None:
    from datetime import timedelta

    from tests.factory import IdPSpec, idp_metadata, make_keypair
    from validator.inspection import MetadataOptions, inspect_metadata_bytes
    from validator.metadata_facts import metadata_report

    now = datetime(2026, 6, 1, tzinfo=UTC)
    old = make_keypair("<old>", not_before=now - timedelta(days=700), not_after=now + timedelta(days=10))
    enc = make_keypair("enc", not_before=now, not_after=now + timedelta(days=900))
    data = idp_metadata(IdPSpec(keys=[("signing", old.cert_b64), ("encryption", enc.cert_b64)]))
    report = metadata_report(inspect_metadata_bytes(data, "idp.xml", MetadataOptions(now=now, warn_days=30)))
    out = render_html(report, rules=[])
    section = out[out.index("<h2>Certificates</h2>"):]
    svg = section[section.index("<svg"):section.index("</svg>")]
    assert 'role="img"' in svg and "&lt;old" in svg and "<old" not in svg  # escaped
    assert "CN=enc" not in svg  # signing certificates only
    assert "expiring" in svg  # inside the 30-day horizon
    assert "<svg" not in render_html(_report([], vendor="okta"), rules=[])  # no certificate, no picture


def test_one_call_lists_each_code_up_to_the_cap_then_counts_the_rest() -> None:
    from validator.findings import MAX_REPEATS, FindingLog

    def many(code: str, count: int) -> list[Finding]:
        return [Finding(code, Severity.ERROR, "t", f"m{n}", where=f"line {n}") for n in range(count)]

    log = FindingLog()
    log.extend(many("MD010", MAX_REPEATS))
    assert [f.message for f in log.frozen()] == [f"m{n}" for n in range(MAX_REPEATS)]
    log.extend([*many("MD010", MAX_REPEATS + 3), *many("KEY005", 2)])  # another call: another budget
    listed = log.frozen()[MAX_REPEATS:]
    assert [f.code for f in listed] == ["MD010"] * MAX_REPEATS + ["KEY005"] * 2 + ["MD010"]
    assert listed[-1].message == "… and 3 more MD010 findings like the ones above, from here on, not listed one by one"
    assert listed[-1].where == f"line {MAX_REPEATS}"  # where the first one not listed is


def test_folding_never_lowers_a_severity() -> None:
    # One code can be an error for a required claim and a warning for an optional one: a folded
    # warning must not hide the error that follows it.
    from validator.findings import MAX_REPEATS, FindingLog

    log = FindingLog()
    warnings = [Finding("CLM004", Severity.WARNING, "t", f"optional {n}") for n in range(MAX_REPEATS + 5)]
    log.extend([*warnings, Finding("CLM004", Severity.ERROR, "t", "required")])
    assert [f.message for f in log.frozen() if f.severity is Severity.ERROR] == ["required"]
