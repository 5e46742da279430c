"""The SE's interview (issue 16): the partner's spoken answers to the five discovery questions,
taken on the call before any metadata exists, and later set against what the metadata says.

Answers are untrusted text (typed from a call, or read back from a JSON file anyone could edit):
each field is capped, a control character is refused with a message naming the field, and the
renderers escape every value as they do the metadata's. Nothing here fetches anything: a spoken
metadata URL is compared as text, and only ever fetched, if at all, by the SSRF-safe fetcher of
``saml-validate discover URL``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from metadata.config import refused_character
from metadata.crm import VENDORS as CRM_VENDORS
from metadata.crm import CRMRecord
from metadata.xml import visible
from validator.discovery import (
    Hint,
    IframeVerdict,
    ToldRow,
    Worksheet,
    draft_login_types,
    draft_portal,
    draft_sso_url,
    iframe_verdict,
    setup_hints,
    sign_in_location,
    toml_string,
)
from validator.errors import ValidatorError
from validator.framing import Origin
from validator.json_value import iso_z
from validator.nearmiss import claim_near_misses, uri_difference
from validator.vendor import VENDORS as PRODUCTS

__all__ = ["DONT_KNOW", "FIELDS", "PRODUCTS", "PRODUCT_CHOICES", "AnswerError", "CallAnswers", "CallSheet",
           "answers_from", "answers_from_json", "answers_from_object", "answers_json", "call_sheet", "checked",
           "draft_from_call", "scripted", "told_vs_metadata"]

SCHEMA = "saml-preflight/interview/v1"
FIELD_LIMIT = 2 * 1024
"""Bytes (UTF-8) of one answer: the longest real SAML URL is a few hundred."""
NOTES_LIMIT = 16 * 1024
FILE_LIMIT = 64 * 1024
"""An answers file: its fields at their caps, JSON-escaped, fit with room to spare."""
DONT_KNOW = "don't know"
PRODUCT_CHOICES: tuple[str, ...] = (*CRM_VENDORS, DONT_KNOW)
UNVERIFIED = "from the call, not yet verified"

# (key, what a message calls it, the question asked)
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("product", "IdP product", "Which identity provider product runs the IdP"),
    ("claims", "claim names", "Which claim names will it send (comma-separated)"),
    ("entity_id", "entity ID", "The IdP's entity ID"),
    ("metadata_url", "metadata URL", "The URL the IdP publishes its metadata at"),
    ("sso_url", "SSO URL", "The IdP's SSO (sign-in) URL"),
)
LABELS = {key: label for key, label, _ in FIELDS} | {"notes": "call notes"}


class AnswerError(ValidatorError, ValueError):
    """An answer that cannot be kept; `message` names the field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CallAnswers:
    """What the partner said; None (or no claims) is "not known yet"."""

    product: str | None = None
    """A CRM vendor key; None for "don't know"."""
    claims: tuple[str, ...] = ()
    entity_id: str | None = None
    metadata_url: str | None = None
    sso_url: str | None = None
    notes: str | None = None
    taken: datetime | None = None

    @property
    def product_name(self) -> str | None:
        if self.product is None:
            return None
        found = PRODUCTS.get(self.product)
        return found.name if found else self.product


def checked(key: str, value: str) -> str:
    """`value` as kept: stripped, within its cap, without a control character; AnswerError naming the field."""
    label = LABELS[key]
    text = value.replace("\r\n", "\n").strip()
    limit = NOTES_LIMIT if key == "notes" else FIELD_LIMIT
    if len(text.encode("utf-8", "surrogatepass")) > limit:
        raise AnswerError(f"the {label} answer is longer than {limit // 1024} KiB")
    bad = refused_character(text, allowed="\n\t" if key == "notes" else "", strict=True)
    if bad is not None:
        raise AnswerError(f"the {label} answer holds a control or invisible character (U+{ord(bad):04X}); "
                          "type it again without it")
    return text


def product_key(value: str) -> str | None:
    """The product answer as a CRM vendor key (None: not known); AnswerError when it is none of the list."""
    text = checked("product", value).lower()
    if text in ("", DONT_KNOW, "dont know", "unknown"):
        return None
    if text not in CRM_VENDORS:
        raise AnswerError(f"the IdP product answer {text!r} is not one of: {', '.join(PRODUCT_CHOICES)}")
    return text


def claim_names(value: str) -> tuple[str, ...]:
    """A comma-separated claims answer as names, each once, in the order said."""
    names = [name.strip() for name in checked("claims", value).split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


def answers_from(values: Mapping[str, str], taken: datetime | None = None) -> CallAnswers:
    """The answers of a form or a script, each checked; AnswerError naming the first field at fault."""
    def text(key: str) -> str | None:
        return checked(key, values.get(key) or "") or None

    return CallAnswers(product=product_key(values.get("product") or ""), claims=claim_names(values.get("claims") or ""),
                       entity_id=text("entity_id"), metadata_url=text("metadata_url"), sso_url=text("sso_url"),
                       notes=text("notes"), taken=taken)


SCRIPT_LIMIT = len(FIELDS) * (FIELD_LIMIT + 2) + NOTES_LIMIT
"""Characters of a script of answers: every answer and the notes at their caps, with line breaks."""


def scripted(text: str) -> dict[str, str]:
    """Answers read as lines (standard input that is not a terminal): one line per question in
    order, an empty line for "not known yet"; every line after the fifth is the call notes."""
    if len(text) > SCRIPT_LIMIT:
        raise AnswerError(f"the answers given on standard input are longer than {SCRIPT_LIMIT // 1024} KiB")
    read = [line.rstrip("\r") for line in text.split("\n")]
    if read and read[-1] == "":
        read.pop()  # the last line's own line break
    values = {key: (read[i] if i < len(read) else "") for i, (key, _, _) in enumerate(FIELDS)}
    values["notes"] = "\n".join(read[len(FIELDS):])
    return values


def answers_json(answers: CallAnswers) -> str:
    """The answers file (``saml-preflight/interview/v1``), values exactly as said."""
    return json.dumps({
        "schema": SCHEMA, "taken": iso_z(answers.taken) if answers.taken else None,
        "product": answers.product, "claims": list(answers.claims), "entity_id": answers.entity_id,
        "metadata_url": answers.metadata_url, "sso_url": answers.sso_url, "notes": answers.notes,
    }, indent=2, ensure_ascii=True) + "\n"


def answers_from_json(data: bytes, source: str) -> CallAnswers:
    """An answers file read back, every field checked again as if typed; AnswerError saying what is wrong."""
    if len(data) > FILE_LIMIT:
        raise AnswerError(f"{source} is larger than {FILE_LIMIT // 1024} KiB: it is not an answers file")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AnswerError(f"{source} is not JSON: {exc}") from None
    return answers_from_object(body, source)


def answers_from_object(body: object, source: str) -> CallAnswers:
    """An answers file's object (already JSON), every field checked again as if typed."""
    if not isinstance(body, dict) or body.get("schema") != SCHEMA:
        raise AnswerError(f"{source} is not an answers file (its schema is not {SCHEMA!r})")
    unknown = sorted(set(body) - {"schema", "taken", *LABELS})
    if unknown:
        raise AnswerError(f"{source}: unknown key {unknown[0]!r}")
    claims = body.get("claims") or []
    if not isinstance(claims, list) or not all(isinstance(c, str) for c in claims):
        raise AnswerError(f"{source}: 'claims' must be a list of names")
    values = {key: body.get(key) or "" for key in LABELS if key != "claims"}
    if not all(isinstance(v, str) for v in values.values()):
        raise AnswerError(f"{source}: every answer must be text")
    return answers_from({**values, "claims": ", ".join(claims)}, _taken(body.get("taken")))


def _taken(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def draft_from_call(answers: CallAnswers, crm: CRMRecord | None) -> str:
    """The draft CRM record from the call: the IdP's answers as said, each to be checked against the
    metadata once it arrives; what only the portal knows says TODO, as the metadata's draft does."""
    when = f" on {answers.taken:%Y-%m-%d}" if answers.taken else ""
    lines = [
        f"# Draft CRM record written by saml-validate discover --interview{when}: {UNVERIFIED}.",
        "# Check every value against the partner's metadata (discover METADATA --answers) and replace each TODO.",
        *draft_portal(crm),
        "[idp]",
        *([f"vendor = {toml_string(answers.product)}"] if answers.product else []),
        *([f"entity_id = {toml_string(answers.entity_id)}"] if answers.entity_id else []),
        *([f"metadata_url = {toml_string(answers.metadata_url)}"] if answers.metadata_url else []),
        *(draft_sso_url(answers.sso_url) if answers.sso_url else []),
        *_call_claims(answers, crm),
        *draft_login_types(crm),
    ]
    return "\n".join(lines) + "\n"


CALL_EVIDENCE = ("not checked: nothing is fetched from the call's answers; discover on the partner's metadata "
                 "asks the sign-in URL")


@dataclass(frozen=True)
class CallSheet:
    """The worksheet from the call: the answers, the draft record, and what the product named on
    the call implies for embedding and setup (the same rules and words as the metadata's worksheet)."""

    said: CallAnswers
    draft: str
    iframe: IframeVerdict
    hints: tuple[Hint, ...]


def call_sheet(said: CallAnswers, crm: CRMRecord | None) -> CallSheet:
    portal = str(Origin.of(crm.sp.acs_url)) if crm else None
    return CallSheet(said, draft_from_call(said, crm),
                     iframe_verdict(said.product, None, portal, said.sso_url, evidence=CALL_EVIDENCE),
                     setup_hints(said.product, crm))


def _call_claims(answers: CallAnswers, crm: CRMRecord | None) -> list[str]:
    said: list[str] = []
    if crm is not None and answers.claims:  # the record is the contract; what was said stays visible beside it
        said = ["", f"# Said on the call: {visible(', '.join(answers.claims), one_line=True)}"]
    if crm is not None:
        claims = [(c.name, c.required, c.login_type) for c in crm.claims]
    elif answers.claims:
        claims = [(name, False, False) for name in answers.claims]
    else:
        return ["", "# No claim names yet: agree them with the partner, one block each:",
                "# [[claims]]", '# name = "AccountNumber"', "# required = true"]
    lines = said if crm else ["", "# The claim names said on the call; mark those the portal needs as required."]
    for name, required, is_login_type in claims:
        lines += ["", "[[claims]]", f"name = {toml_string(name)}", f"required = {'true' if required else 'false'}"]
        if is_login_type:
            lines.append("login_type = true")
    return lines


# ---- told on the call vs in the metadata ------------------------------------------------------

def told_vs_metadata(answers: CallAnswers, ws: Worksheet) -> tuple[ToldRow, ...]:
    """Each spoken answer against what the metadata says, field by field."""
    entity = ws.entity
    sso = [e.location for e in ws.sso]
    rows = [
        _product_row(answers, ws),
        _uri_row("Entity ID", answers.entity_id, [entity.entity_id] if entity is not None else []),
        _uri_row("SSO URL", answers.sso_url, sso, shown=sign_in_location(entity)),
        _metadata_url_row(answers, ws),
    ]
    idp = entity.idp if entity is not None else None
    offered = [(a.name, a.friendly_name) for a in idp.attributes] if idp is not None else []
    rows += [_claim_row(name, offered) for name in answers.claims]
    return tuple(rows)


def _product_row(answers: CallAnswers, ws: Worksheet) -> ToldRow:
    detected = ws.detection.vendor if ws.detection else None
    metadata = detected.name if detected else None
    if answers.product is None:
        return ToldRow("IdP product", None, metadata, "not told")
    if detected is None:
        return ToldRow("IdP product", answers.product_name, None, "not in the metadata",
                       "the metadata does not show which product it is")
    if detected.key == answers.product:
        return ToldRow("IdP product", answers.product_name, metadata, "same")
    return ToldRow("IdP product", answers.product_name, metadata, "differs")


def _metadata_url_row(answers: CallAnswers, ws: Worksheet) -> ToldRow:
    """Against the URL the metadata was read from, else the one its product's pattern gives (inferred)."""
    if ws.metadata_url or ws.published is None or ws.published.url is None:
        row = _uri_row("Metadata URL", answers.metadata_url, [ws.metadata_url] if ws.metadata_url else [])
        return replace(row, detail="the metadata was given as a file, and its product publishes it at no fixed URL"
                       ) if row.verdict == "not in the metadata" else row
    row = _uri_row("Metadata URL", answers.metadata_url, [ws.published.url])
    inferred = "inferred from the product's pattern, not given"
    return replace(row, detail=f"{row.detail}; {inferred}" if row.detail else inferred)


def _uri_row(field: str, told: str | None, found: list[str], shown: str | None = None) -> ToldRow:
    metadata = shown or (found[0] if found else None)
    if told is None:
        return ToldRow(field, None, metadata, "not told")
    if told in found:
        return ToldRow(field, told, told, "same")
    if not found:
        return ToldRow(field, told, None, "not in the metadata")
    for location in found:
        reason = uri_difference(location, told)
        if reason is not None:
            return ToldRow(field, told, location, "differs", reason)
    return ToldRow(field, told, metadata, "differs")


def _claim_row(name: str, offered: list[tuple[str, str | None]]) -> ToldRow:
    field = f"Claim {name}"
    if any(offered_name == name for offered_name, _ in offered):
        return ToldRow(field, name, name, "same")
    misses = claim_near_misses(name, offered)
    if misses:
        return ToldRow(field, name, misses[0].actual, "differs", misses[0].reason)
    why = ("the metadata lists no attributes (most IdPs do not): a test login shows the names sent"
           if not offered else None)
    return ToldRow(field, name, None, "not in the metadata", why)
