"""Where a SAML response comes from: raw XML, base64, a URL-encoded form body, or a
SAML-tracer JSON export. Each is turned into the response's XML bytes; anything else is an
:class:`InputRefusal` naming the rule it breaks (XML001, XML004, XML009, XML010), never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

from metadata.bindings import BindingError, decode_base64, inflate
from metadata.sniff import not_xml_kind
from metadata.xml import MESSAGE_LIMITS, PASTED_LIMITS
from validator.checks.input import BAD_BASE64, EMPTY, NOT_A_RESPONSE_INPUT, TOO_LARGE
from validator.findings import Finding, Rule

MAX_INPUT = PASTED_LIMITS.max_bytes
"""Pasted or uploaded input: 1 MiB (SECURITY.md §1); a SAML-tracer export may hold several responses."""


@dataclass(frozen=True)
class InputRefusal:
    """Why the input holds no readable response: the rule it breaks, and what was wrong."""

    rule: Rule
    message: str

    def finding(self, where: str) -> Finding:
        return self.rule.finding(self.message, where=where)


class _Refused(Exception):
    """Carries an :class:`InputRefusal` out of the readers below to :func:`read_response_input`."""

    def __init__(self, rule: Rule, message: str) -> None:
        super().__init__(message)
        self.refusal = InputRefusal(rule, message)


@dataclass(frozen=True)
class ResponseInput:
    xml: bytes
    form: str
    """``xml``, ``base64``, ``form`` or ``saml-tracer``."""
    relay_state: str | None = None
    where: str = ""
    """For a SAML-tracer export: which request it came from (method and URL)."""


def read_response_input(data: bytes) -> tuple[ResponseInput, ...] | InputRefusal:
    """Every SAML response in `data` (a SAML-tracer export may hold several; the others hold one),
    or why there is none."""
    if len(data) > MAX_INPUT:
        return InputRefusal(TOO_LARGE, f"the input is {len(data):,} bytes; the limit is {MAX_INPUT:,} bytes")
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return InputRefusal(EMPTY, "the input is empty")
    kind = not_xml_kind(text)
    if kind is not None:  # named, rather than "not valid base64: character '%' at position 0"
        return InputRefusal(NOT_A_RESPONSE_INPUT, f"the input is {kind}, not a SAML response")
    try:
        if text.startswith(b"<"):
            return (ResponseInput(data, "xml"),)
        if text.startswith(b"{"):
            return _saml_tracer(text)
        if b"SAMLResponse=" in text[:64] or b"&SAMLResponse=" in text:
            return (_form(text),)
        return (ResponseInput(_base64(text.strip()), "base64"),)
    except _Refused as refused:
        return refused.refusal


def _base64(value: bytes | str) -> bytes:
    """The XML of a SAMLResponse value: base64 (wrapped or not), rarely DEFLATE-compressed as an
    HTTP-Redirect message would be; decoded and inflated by the bindings' one decoder."""
    # A character outside base64 is refused either way; UTF-8 lets the message show the one pasted.
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    try:
        decoded = decode_base64(text, "SAMLResponse", line_breaks=True)
        if decoded.lstrip()[:1] == b"<":
            return decoded
        inflated = inflate(decoded, MESSAGE_LIMITS.max_bytes, "SAMLResponse")
    except BindingError as exc:
        if exc.kind == "too-large":
            raise _Refused(TOO_LARGE, exc.message) from None
        if exc.kind == "deflate":  # bindings' message says which: not DEFLATE, a zlib header, cut short, trailing
            raise _Refused(BAD_BASE64, f"the base64 value decodes to something other than XML: {exc.message}") from None
        raise _Refused(BAD_BASE64, exc.message) from None
    if inflated.lstrip()[:1] != b"<":
        raise _Refused(BAD_BASE64, "the decoded value is not XML")
    return inflated


def _form(text: bytes) -> ResponseInput:
    try:
        fields = parse_qsl(text.decode("ascii").strip(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refused(NOT_A_RESPONSE_INPUT, f"the form body cannot be read: {exc}") from None
    values = [v for k, v in fields if k == "SAMLResponse"]
    if len(values) != 1:
        raise _Refused(NOT_A_RESPONSE_INPUT, f"the form body has {len(values)} SAMLResponse fields; one is expected")
    relay = [v for k, v in fields if k == "RelayState"]
    return ResponseInput(_base64(values[0]), "form", relay_state=relay[0] if relay else None)


def _saml_tracer(text: bytes) -> tuple[ResponseInput, ...]:
    try:
        export = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise _Refused(NOT_A_RESPONSE_INPUT, f"the input starts like JSON but is not: {exc}") from None
    requests = export.get("requests") if isinstance(export, dict) else None
    if not isinstance(requests, list):
        raise _Refused(NOT_A_RESPONSE_INPUT, "this JSON is not a SAML-tracer export (no \"requests\" list)")
    found = []
    for request in requests:
        if not isinstance(request, dict):
            continue
        where = f"{request.get('method', '?')} {request.get('url', '?')}"
        posted = _posted(request.get("post"))
        if "SAMLResponse" in posted:
            found.append(ResponseInput(_base64(posted["SAMLResponse"]), "saml-tracer",
                                       relay_state=posted.get("RelayState"), where=where))
    if not found:
        raise _Refused(NOT_A_RESPONSE_INPUT, f"the SAML-tracer export holds {len(requests)} requests and no "
                       "SAMLResponse was posted in any of them")
    return tuple(found)


def _posted(post: object) -> dict[str, str]:
    """SAML-tracer keeps POST fields as {name: [values]} (current) or [[name, value], …] (older)."""
    fields: dict[str, str] = {}
    if isinstance(post, dict):
        for name, values in post.items():
            value = values[0] if isinstance(values, list) and values else values
            if isinstance(name, str) and isinstance(value, str):
                fields.setdefault(name, value)
    elif isinstance(post, list):
        for pair in post:
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair):
                fields.setdefault(pair[0], pair[1])
    return fields
