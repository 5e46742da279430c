"""The discovery worksheet as plain text (for the terminal), as Markdown (for a ticket or a wiki)
and as a self-contained HTML page.

Every value from the partner's metadata goes through `shown` first; Markdown table cells also
have their pipes and backticks escaped, HTML is autoescaped by its template. Plain text needs no
escape beyond `shown`: a terminal shows ``<tenant>`` and ``[Errno -2]`` as they are.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace
from datetime import UTC

from markupsafe import Markup

from metadata.saml import binding_name
from metadata.urls import redact_url
from validator.discovery import Hint, IframeVerdict, ToldRow, Worksheet
from validator.interview import UNVERIFIED, CallAnswers, CallSheet
from validator.json_value import Plain, iso_z
from validator.metadata_facts import certificate_json
from validator.render import shown
from validator.render.html import page_template
from validator.render.text import WIDTH, plural

QUESTIONS = ("Which identity provider?", "Which claim attributes?", "The IdP entity ID",
             "The metadata XML URL", "The SSO URL")


def answers(ws: Worksheet) -> list[tuple[str, list[str]]]:
    """The five discovery questions and their answers, each a list of lines, as a person may see them."""
    return [(q, [shown(line, one_line=True) for line in lines]) for q, lines in raw_answers(ws)]


def raw_answers(ws: Worksheet) -> list[tuple[str, list[str]]]:
    """The five discovery questions and their answers, values exactly as found."""
    sso = [f"{binding_name(e.binding)}: {redact_url(e.location)}" for e in ws.sso] or [
        "no SingleSignOnService in the metadata"]
    return list(zip(QUESTIONS, (_who(ws), _claims(ws), _entity(ws), _metadata_url(ws), sso), strict=True))


def metadata_url_source(ws: Worksheet) -> str:
    """Where the metadata URL answer comes from: given, inferred, none published, or unknown."""
    if ws.metadata_url:
        return "given"
    if ws.published is None:
        return "unknown"
    return "inferred" if ws.published.url else "none published"


def _metadata_url(ws: Worksheet) -> list[str]:
    source = metadata_url_source(ws)
    if source == "given":
        return [str(ws.metadata_url)]
    if ws.published is None:
        return ["not known: ask the partner for the URL their IdP publishes its metadata at"]
    if ws.published.url is None:
        return [ws.published.how]
    probed = ws.published_probe or ("not probed (--no-probe)"
                                    if ws.published.probe_url else
                                    "not probed: the URL needs a value only the partner has")
    return [ws.published.url, f"inferred, not given: {ws.published.how}; confirm it with the partner",
            f"probe: {probed}"]


def _who(ws: Worksheet) -> list[str]:
    if ws.vendor_name is None:
        return ["not recognised from the metadata: ask the partner which product runs their IdP"]
    evidence = ws.detection.evidence if ws.detection else ()
    who = [ws.vendor_name, *(f"evidence: {e}" for e in evidence)]
    detected = ws.detection.vendor.key if ws.detection else None
    if ws.crm and ws.crm.idp.vendor and ws.crm.idp.vendor != detected:
        who.append(f"the CRM record says {ws.crm.idp.vendor!r}")
    return who


def _claims(ws: Worksheet) -> list[str]:
    idp = ws.entity.idp if ws.entity is not None else None
    offered = [a.name for a in idp.attributes] if idp is not None else []
    claims = [f"offered in the metadata: {', '.join(offered)}" if offered else
              "the metadata lists no attributes (most IdPs do not): agree the names with the partner"]
    if ws.crm:
        required = [c.name for c in ws.crm.claims if c.required]
        claims.append(f"the CRM record requires: {', '.join(required) or 'none'}")
        missing = [name for name in required if offered and name not in offered]
        if missing:
            claims.append(f"not among those offered (exact names): {', '.join(missing)}")
    return claims


def _entity(ws: Worksheet) -> list[str]:
    if ws.entity is None:
        return ["not found in the metadata"]
    entity = [ws.entity.entity_id]
    if ws.crm and ws.crm.idp.entity_id and ws.crm.idp.entity_id != ws.entity.entity_id:
        entity.append(f"the CRM record says {ws.crm.idp.entity_id!r}")
    return entity


def _certificates(ws: Worksheet) -> list[Plain]:
    """The signing certificates as the JSON report lists them (dates as ISO 8601 text)."""
    return [certificate_json(row, ws.inspection.now) for row in ws.signing_certificates]


@dataclass(frozen=True)
class _CertificateCells:
    subject: str
    sha256: str
    not_after: str
    """The date only (UTC)."""
    left: str


def _certificate_cells(ws: Worksheet) -> list[_CertificateCells]:
    """A row of the signing-certificate table for each signing certificate."""
    return [_CertificateCells(r.facts.subject, r.facts.sha256, f"{r.facts.not_after.astimezone(UTC):%Y-%m-%d}",
                              days_left(r.facts.days_left(ws.inspection.now))) for r in ws.signing_certificates]


def days_left(days: int) -> str:
    """The "Days left" cell: a negative count reads as what it is."""
    if days < 0:
        return f"expired {plural(-days, 'day')} ago"
    return "expires today" if days == 0 else str(days)


# What lets a value become markup: a cell break, code, a link or an image. Emphasis is cosmetic
# and claim names are full of underscores, so * and _ stay as they are.
# CommonMark's backslash escapes: '\<' cannot open a tag, '\&' a character reference, '\[' a
# link; a reader of the raw file still sees <tenant> and "Attributes & Claims".
_MARKDOWN = str.maketrans({c: f"\\{c}" for c in "\\`|[]<>&"})


def _cell(text: str) -> str:
    """`text` inert in Markdown: no HTML, no link or image markup, no code, no table cell break. (A
    renderer that autolinks bare URLs still makes one a link to itself.)"""
    return shown(text, one_line=True).translate(_MARKDOWN)


def _title(ws: Worksheet) -> str:
    if ws.crm:
        return ws.crm.biller.name
    return ws.entity.entity_id if ws.entity is not None else "unknown IdP"


def render_markdown(ws: Worksheet) -> str:
    title = _title(ws)
    lines = [
        f"# SAML discovery worksheet: {_cell(title)}", "",
        f"Metadata: {_cell(ws.report.inputs.get('metadata', '?'))} · checked {iso_z(ws.report.clock)} · "
        f"{ws.report.verdict}", "",
        "## The five questions", "", "| Question | Answer |", "|---|---|",
    ]
    lines += [f"| {q} | {'<br>'.join(_cell(a) for a in answer)} |" for q, answer in answers(ws)]
    if ws.told:
        lines += ["", f"## {TOLD_TITLE}", "", "| Answer | Told on the call | In the metadata | Verdict |",
                  "|---|---|---|---|"]
        lines += [f"| {' | '.join(_cell(c) for c in row)} |" for row in told_cells(ws.told)]
    lines += ["", "## Signing certificates", ""]
    certs = _certificate_cells(ws)
    if certs:
        lines += ["| Subject | SHA-256 fingerprint | Valid until | Days left |", "|---|---|---|---|"]
        lines += [f"| {_cell(c.subject)} | `{c.sha256}` | {c.not_after} | {c.left} |" for c in certs]
    else:
        lines.append("None: the metadata has no signing certificate.")
    lines += _setup_markdown(ws.iframe, ws.hints, ws.vendor_name)
    lines += ["", "## Checks", "", f"{plural(len(ws.errors), 'error')}, {plural(len(ws.warnings), 'warning')}"
              " (`saml-validate metadata` shows each with its fix)."]
    lines += [f"- error {_cell(e)}" for e in ws.errors] + [f"- warning {_cell(w)}" for w in ws.warnings]
    lines += ["", "## Draft CRM record", "", "```toml", ws.draft.rstrip("\n").replace("```", "'''"), "```", ""]
    return "\n".join(lines)


def render_worksheet_text(ws: Worksheet) -> str:
    """The worksheet for a terminal: the Markdown's sections as headings and indented lines, no
    markup and so no escapes."""
    title = shown(_title(ws), one_line=True)
    lines = [f"SAML discovery worksheet: {title}",
             f"  metadata  {shown(ws.report.inputs.get('metadata', '?'), one_line=True)}",
             f"  checked   {iso_z(ws.report.clock)} · {ws.report.verdict}", "", "The five questions"]
    for question, answer in answers(ws):
        lines += ["", f"  {question}", *(f"    {line}" for line in answer)]
    lines += _told_text(ws.told)
    lines += ["", "Signing certificates", ""]
    certs = _certificate_cells(ws)
    lines += [line for c in certs for line in (
        f"  {shown(c.subject, one_line=True)}", f"    SHA-256      {c.sha256}",
        f"    valid until  {c.not_after} ({c.left if not c.left.isdigit() else c.left + ' days left'})")]
    if not certs:
        lines.append("  None: the metadata has no signing certificate.")
    lines += _setup_text(ws.iframe, ws.hints, ws.vendor_name)
    lines += ["", "Checks", "", f"  {plural(len(ws.errors), 'error')}, {plural(len(ws.warnings), 'warning')} "
              "(saml-validate metadata shows each with its fix)"]
    lines += [f"  error    {shown(e, one_line=True)}" for e in ws.errors]
    lines += [f"  warning  {shown(w, one_line=True)}" for w in ws.warnings]
    lines += ["", "Draft CRM record (TOML; --draft-crm FILE writes it)", "", shown(ws.draft).rstrip("\n"), ""]
    return "\n".join(lines)


VERDICTS = {"possible": "Possible, when configured", "no": "No"}


def _setup_markdown(iframe: IframeVerdict, hints: tuple[Hint, ...], vendor: str | None) -> list[str]:
    """The iframe verdict and the setup table, as both worksheets (metadata, call) show them."""
    return ["", "## Can the portal embed the login in an iframe?", "",
            f"**{VERDICTS[iframe.verdict]}.** {iframe.rule}", "", f"Live check: {_cell(iframe.evidence)}", "",
            *([iframe.alternatives, ""] if iframe.alternatives else []),
            f"## Setup, in {_cell(vendor) if vendor else 'the IdP'}'s words", "", "| Set | Where | Value |",
            "|---|---|---|", *(f"| {_cell(h.what)} | {_cell(h.where)} | {_cell(h.value)} |" for h in hints)]


def _setup_text(iframe: IframeVerdict, hints: tuple[Hint, ...], vendor: str | None) -> list[str]:
    lines = ["", "Can the portal embed the login in an iframe?", "",
             *_wrapped(f"{VERDICTS[iframe.verdict]}. {iframe.rule}"),
             *_wrapped(f"Live check: {shown(iframe.evidence, one_line=True)}"),
             *(_wrapped(iframe.alternatives) if iframe.alternatives else []),
             "", f"Setup, in {shown(vendor) if vendor else 'the IdP'}'s words"]
    for h in hints:
        lines += ["", f"  {shown(h.what, one_line=True)}", *_wrapped(f"where: {shown(h.where, one_line=True)}", "    "),
                  f"    value: {shown(h.value, one_line=True)}"]
    return lines


def _setup_context(iframe: IframeVerdict, hints: tuple[Hint, ...], vendor: str | None) -> dict[str, object]:
    """The template values of ``worksheet_setup.html``."""
    return {
        # The page shows the alternatives after the rule (the template knows one rule line).
        "iframe": replace(iframe, rule=" ".join(filter(None, (iframe.rule, iframe.alternatives)))),
        "iframe_evidence": shown(iframe.evidence, one_line=True),
        "vendor": shown(vendor) if vendor else "the IdP",
        "hints": [(shown(h.what), shown(h.where), shown(h.value, one_line=True)) for h in hints],
    }


def _wrapped(text: str, indent: str = "  ") -> list[str]:
    """Prose wrapped at whitespace, a URL or other long word kept whole."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]


def render_worksheet_html(ws: Worksheet, *, warn_days: int = 30) -> str:
    """The page, with the signing certificates drawn on a timeline."""
    from validator.render.timeline import TimelineCertificate, certificate_timeline

    signing = ws.signing_certificates
    timeline = certificate_timeline(
        [TimelineCertificate(r.facts.subject, r.facts.not_before, r.facts.not_after, r.facts.sha256,
                             len(signing) == 1)  # one signing certificate: it signs
         for r in signing], now=ws.report.clock, warn_days=warn_days,
    ) if signing else None
    certs = [replace(c, subject=shown(c.subject, one_line=True)) for c in _certificate_cells(ws)]
    context: dict[str, object] = {
        "title": shown(_title(ws), one_line=True),
        "source": shown(ws.report.inputs.get("metadata", "?"), one_line=True),
        "clock": iso_z(ws.report.clock),
        "verdict": ws.report.verdict,
        "answers": answers(ws),
        "told": [tuple(shown(c, one_line=True) for c in row) for row in told_cells(ws.told)],
        "told_title": TOLD_TITLE,
        "certificates": certs,
        # Drawn by our own renderer, which escapes every text it places.
        "timeline": Markup(timeline) if timeline else None,  # noqa: S704
        **_setup_context(ws.iframe, ws.hints, ws.vendor_name),
        "errors": [shown(e, one_line=True) for e in ws.errors],
        "warnings": [shown(w, one_line=True) for w in ws.warnings],
        "draft": shown(ws.draft),
    }
    return page_template("worksheet.html").render(**context)


TOLD_TITLE = "Told on the call vs in the metadata"


def told_cells(rows: tuple[ToldRow, ...]) -> list[tuple[str, str, str, str]]:
    """(answer, told, in the metadata, verdict with its near miss) for each row, values exactly as found."""
    return [(r.field, r.told if r.told is not None else "not told",
             r.metadata if r.metadata is not None else "does not say",
             f"{r.verdict}: {r.detail}" if r.detail else r.verdict) for r in rows]


def _told_text(rows: tuple[ToldRow, ...]) -> list[str]:
    if not rows:
        return []
    lines = ["", TOLD_TITLE]
    for field, told, metadata, verdict in told_cells(rows):
        lines += ["", f"  {shown(field, one_line=True)}: {shown(verdict, one_line=True)}",
                  f"    told      {shown(told, one_line=True)}", f"    metadata  {shown(metadata, one_line=True)}"]
    return lines


def worksheet_json(ws: Worksheet) -> dict[str, Plain]:
    """The worksheet for programs (``saml-preflight/discovery/v1``): values exactly as found, the
    metadata report in full as ``saml-preflight/report/v1``."""
    import json

    from validator.render.json import render_json

    report: Plain = json.loads(render_json(ws.report))  # exactly as --format json writes it, keys sorted
    return {
        "schema": "saml-preflight/discovery/v1",
        "answers": [{"question": q, "answer": list[Plain](lines)} for q, lines in raw_answers(ws)],
        "iframe": {"verdict": ws.iframe.verdict, "rule": ws.iframe.rule, "evidence": ws.iframe.evidence,
                   "alternatives": ws.iframe.alternatives},
        "metadata_url": {"source": metadata_url_source(ws),
                         "url": ws.metadata_url or (ws.published.url if ws.published else None),
                         "how": ws.published.how if ws.published and not ws.metadata_url else None,
                         "probe": ws.published_probe},
        "setup": [{"what": h.what, "where": h.where, "value": h.value} for h in ws.hints],
        # With the call's answers (--answers, or the API's "interview"): each against the metadata.
        "told": [{"field": r.field, "told": r.told, "metadata": r.metadata, "verdict": r.verdict, "detail": r.detail}
                 for r in ws.told],
        "signing_certificates": _certificates(ws),
        "draft_crm": ws.draft,
        "report": report,
    }


# ---- the worksheet from the call (saml-validate discover --interview) --------------------------

def call_answers(said: CallAnswers) -> list[tuple[str, list[str]]]:
    """The five questions with the partner's spoken answers, as a person may see them."""
    product = [said.product_name] if said.product_name else []
    told = (product, [", ".join(said.claims)] if said.claims else [], [said.entity_id or ""],
            [said.metadata_url or ""], [said.sso_url or ""])
    return [(q, [shown(line, one_line=True) for line in lines if line] or [NOT_KNOWN])
            for q, lines in zip(QUESTIONS, told, strict=True)]


NOT_KNOWN = "not known yet"


def _call_title(said: CallAnswers, title: str | None) -> str:
    when = f" · {said.taken:%Y-%m-%d}" if said.taken else ""
    return shown(title or "the partner's IdP", one_line=True) + when


def render_call_markdown(sheet: CallSheet, title: str | None = None) -> str:
    said, draft = sheet.said, sheet.draft
    lines = [f"# SAML discovery worksheet: {_cell(_call_title(said, title))}", "",
             f"**{UNVERIFIED.capitalize()}.** Check each answer against the partner's metadata: "
             "`saml-validate discover METADATA --answers ANSWERS.json`.", "",
             "## The five questions, as told on the call", "", "| Question | Answer |", "|---|---|"]
    lines += [f"| {q} | {'<br>'.join(_cell(a) for a in answer)} |" for q, answer in call_answers(said)]
    if said.notes:
        lines += ["", "## Call notes", "", *(f"> {_cell(line)}" for line in said.notes.splitlines())]
    lines += _setup_markdown(sheet.iframe, sheet.hints, said.product_name)
    lines += ["", "## Draft CRM record", "", "```toml", draft.rstrip("\n").replace("```", "'''"), "```", ""]
    return "\n".join(lines)


def render_call_text(sheet: CallSheet, title: str | None = None) -> str:
    said, draft = sheet.said, sheet.draft
    lines = [f"SAML discovery worksheet: {_call_title(said, title)}", f"  {UNVERIFIED}", "",
             "The five questions, as told on the call"]
    for question, answer in call_answers(said):
        lines += ["", f"  {question}", *(f"    {line}" for line in answer)]
    if said.notes:
        lines += ["", "Call notes", "", *(f"  {shown(line, one_line=True)}" for line in said.notes.splitlines())]
    lines += _setup_text(sheet.iframe, sheet.hints, said.product_name)
    lines += ["", "Draft CRM record (TOML; --draft-crm FILE writes it)", "", shown(draft).rstrip("\n"), ""]
    return "\n".join(lines)




def render_call_html(sheet: CallSheet, title: str | None = None,
                     downloads: tuple[tuple[str, str, str, str], ...] = ()) -> str:
    """The page from the call; `downloads` are (label, file name, media type, text) links, the web app's."""
    said = sheet.said
    return page_template("worksheet_call.html").render(
        title=_call_title(said, title), unverified=UNVERIFIED, answers=call_answers(said),
        notes=shown(said.notes) if said.notes else None, draft=shown(sheet.draft), downloads=downloads,
        **_setup_context(sheet.iframe, sheet.hints, said.product_name))
