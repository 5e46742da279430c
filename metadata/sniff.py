"""What the raw bytes of an untrusted document say before it is parsed (SECURITY.md §1, §7).

Each function here reads bytes a partner sent, so each is a linear scan: it steps forward with
``bytes.find`` and never looks at a byte twice for the same question. No regular expression with
nested or overlapping quantifiers may see these bytes: ``(<!--.*?-->\\s*)*`` took 37 s over 193
bytes of empty comments, and ``xmlns(?::[^\\s=]*)?`` was quadratic in a run of ``xmlns:``.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import AnyStr

SNIFF_BYTES = 4096
"""How far into a document the prolog scans look (an XML declaration, an HTML start)."""

_WHITESPACE = b" \t\n\r\f\v"
# Single character classes, one quantifier each: linear, and run in C rather than a Python loop
# over what may be megabytes of whitespace.
_SPACES = re.compile(rb"[ \t\n\r\f\v]*")
_PREFIX = re.compile(rb"[^ \t\n\r\f\v=]*")
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_HTML_TAGS = (b"html", b"head", b"body")


def _skip_whitespace(data: bytes, pos: int) -> int:
    match = _SPACES.match(data, pos)
    return match.end() if match else pos


def utf16_text(data: bytes) -> str:
    """A UTF-16 document's text, in the byte order libxml2 reads it in: the BOM's, else that of
    its first character ``<`` (XML 1.0 Appendix F). ``bytes.decode("utf-16")`` alone would take
    big-endian bytes without a BOM for little-endian, and every scan would see nonsense."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    return data.decode("utf-16-be" if data.startswith(b"\x00") else "utf-16-le", "replace")


def declared_encoding(data: bytes) -> str:
    """The document's encoding, from its BOM or XML declaration (UTF-8 when neither says)."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) or data[:4] in (b"<\x00\x00\x00", b"\x00\x00\x00<"):
        return "utf-32"
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or data[:4] in (b"<\x00?\x00", b"\x00<\x00?"):
        return "utf-16"
    if not data.startswith(b"<?xml") or len(data) < 6 or data[5] not in _WHITESPACE:
        return "utf-8"
    # The declaration may be padded with whitespace; it ends at the first "?>" (XML 1.0 §2.8).
    end = data.find(b"?>", 0, SNIFF_BYTES)
    declaration = data[: end if end >= 0 else SNIFF_BYTES]
    gt = declaration.find(b">")
    declaration = declaration[: gt if gt >= 0 else len(declaration)]
    at = declaration.find(b"encoding")
    while at >= 0:
        name = _quoted_value(declaration, at + len(b"encoding"))
        if name and all(c in _NAME_CHARS for c in name):
            return name.decode("ascii").lower()
        at = declaration.find(b"encoding", at + 1)
    return "utf-8"


def _quoted_value(data: bytes, pos: int) -> bytes | None:
    """The value of ``\\s* = \\s* "value"`` (or single quotes) starting at `pos`, or None."""
    pos = _skip_whitespace(data, pos)
    if data[pos : pos + 1] != b"=":
        return None
    pos = _skip_whitespace(data, pos + 1)
    quote = data[pos : pos + 1]
    close = data.find(quote, pos + 1) if quote in (b'"', b"'") else -1
    return data[pos + 1 : close] if close > pos else None


NOT_XML_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Office document is one)"),
    (b"PK\x05\x06", "a ZIP archive (an Office document is one)"),  # an empty one
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (.doc, .xls, .msg)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)
"""Files partners send instead of their metadata, by the bytes each kind starts with (its "magic
number"): a PDF of the setup guide, the export zipped or in a Word document, a screenshot."""


def not_xml_kind(data: bytes) -> str | None:
    """What the input is when its first bytes say it is a kind of file that is never XML
    ("a PDF document"), or None. A few prefix comparisons: constant time, whatever the input."""
    for magic, kind in NOT_XML_KINDS:
        if data.startswith(magic):
            return kind
    return None


def looks_like_html(data: bytes) -> bool:
    """True when the bytes start like an HTML page (a login or error page, typically).

    After an optional BOM, whitespace and comments: ``<!doctype html``, ``<html``, ``<head`` or
    ``<body``, in any case, within the first :data:`SNIFF_BYTES` bytes.
    """
    head = data[:SNIFF_BYTES].removeprefix(codecs.BOM_UTF8)
    pos = _skip_whitespace(head, 0)
    while head.startswith(b"<!--", pos):
        close = head.find(b"-->", pos + 4)
        if close < 0:
            return False
        pos = _skip_whitespace(head, close + 3)
    if head.startswith(b"<", pos) and head[pos + 1 : pos + 9].lower() == b"!doctype":
        after = pos + 9
        pos = _skip_whitespace(head, after)
        return pos > after and head[pos : pos + 4].lower() == b"html"
    tag = head[pos + 1 : pos + 6].lower()
    return head.startswith(b"<", pos) and any(
        tag.startswith(name) and len(tag) > len(name) and tag[len(name)] in b" \t\n\r\f\v>" for name in _HTML_TAGS
    )


def declaration_line(data: bytes, encoding: str) -> int | None:
    """The line of the first ``<!DOCTYPE`` or ``<!ENTITY`` anywhere in the document, or None.

    Anywhere, not only where a prolog scan would look: a comment or a processing instruction must
    not be able to hide one. SAML never needs either, even in CDATA.
    """
    if encoding.startswith("utf-16"):
        text = utf16_text(data).lower()  # lower() may change lengths, never lines
        at = _first_of(text, "<!doctype", "<!entity")
        return text.count("\n", 0, at) + 1 if at >= 0 else None
    found = _first_of(data.lower(), b"<!doctype", b"<!entity")
    return data.count(b"\n", 0, found) + 1 if found >= 0 else None


def _first_of(haystack: AnyStr, *needles: AnyStr) -> int:
    """The first index of any of `needles` in `haystack`, or -1 (a few C-speed finds)."""
    found = [at for at in (haystack.find(needle) for needle in needles) if at >= 0]
    return min(found, default=-1)


def namespace_declarations(data: bytes) -> int:
    """An upper bound of the namespace declarations in a UTF-8 document: the count of ``xmlns``.

    Every declaration spells ``xmlns`` literally (a character reference cannot stand in a name);
    the count also includes any ``xmlns`` in text, so it never undercounts.
    """
    return data.count(b"xmlns")


def comments_and_instructions(data: bytes, encoding: str) -> int:
    """An upper bound of the comments and processing instructions in a document (not its XML
    declaration): each starts with ``<!--`` or ``<?``, and any in CDATA count too."""
    if encoding.startswith("utf-16"):
        text = utf16_text(data)
        return text.count("<!--") + text.count("<?") - text.lstrip("\ufeff").startswith("<?xml")
    return data.count(b"<!--") + data.count(b"<?") - data.removeprefix(codecs.BOM_UTF8).startswith(b"<?xml")


@dataclass(frozen=True)
class Crowding:
    message: str
    line: int | None = None


def crowded_tag(data: bytes, encoding: str, per_tag: int, in_document: int) -> Crowding | None:
    """Too many namespace declarations in one start tag or in the document, judged on the bytes.

    Run before parsing: libxml2 accepts any number, and lxml's walk of a tree pays for each
    declaration of an element once per declaration before it (100,000 on one element: 2.3 s). A
    UTF-8 document is judged from its ``xmlns`` followed by ``:`` or ``=`` (an ``xmlns`` in text
    is counted too, which only errs towards refusing); a UTF-16 one by its decoded text. One pass
    with ``bytes.find``, stopped at the first tag over `per_tag`, after at most `in_document`.
    """
    if encoding.startswith("utf-16"):
        text = utf16_text(data)
        return _crowded(text, "xmlns", "<", (":", "="), "\n", per_tag, in_document)
    return _crowded(data, b"xmlns", b"<", (b":", b"="), b"\n", per_tag, in_document)


def _crowded(text: AnyStr, marker: AnyStr, opener: AnyStr, followers: tuple[AnyStr, AnyStr], newline: AnyStr,
             per_tag: int, in_document: int) -> Crowding | None:
    total = text.count(marker)
    if total <= per_tag:
        return None
    if total > in_document:
        return Crowding(f"the document has {total:,} namespace declarations; the limit is {in_document:,}")
    in_tag, previous = 0, 0
    at = text.find(marker)
    while at >= 0:
        if text[at + 5 : at + 6] in followers:
            # Another start tag since the previous declaration? Looking back only that far keeps it linear.
            in_tag = 1 if text.find(opener, previous, at) >= 0 else in_tag + 1
            previous = at
            if in_tag > per_tag:
                return Crowding(f"an element has more than {per_tag} namespace declarations; the limit is "
                                f"{per_tag}", text.count(newline, 0, at) + 1)
        at = text.find(marker, at + 5)
    return None


def long_namespace_line(data: bytes, limit: int) -> int | None:
    """The line of the first ``xmlns[:p] = "…"`` whose quoted value is longer than `limit`, or None.

    A raw scan of a UTF-8 document: one pass, plus a constant per ``xmlns`` that starts a
    declaration, so :mod:`metadata.xml` uses it only for documents with few of them (see
    :func:`namespace_declarations`) and walks the parsed tree otherwise. The raw value is never
    shorter than the URI it gives (a character reference only lengthens it).
    """
    pos = data.find(b"xmlns")
    while pos >= 0:
        end = pos + 5
        if data[end : end + 1] == b":":
            # The prefix runs to whitespace or "="; an "xmlns" inside it has the same tail, so the
            # next search starts after it (which keeps "xmlns:xmlns:…" linear).
            match = _PREFIX.match(data, end + 1)
            end = match.end() if match else end + 1
        after = _skip_whitespace(data, end)
        if data[after : after + 1] == b"=":
            start = _skip_whitespace(data, after + 1)
            quote = data[start : start + 1]
            if quote in (b'"', b"'"):
                close = data.find(quote, start + 1, start + limit + 2)
                if close < 0 and len(data) > start + limit + 1:
                    return data.count(b"\n", 0, pos) + 1
        pos = data.find(b"xmlns", max(end, pos + 5))
    return None
