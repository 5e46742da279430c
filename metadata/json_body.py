"""A JSON request body read at a bounded cost: UTF-8, then its shape, then ``json.loads``.

``json.loads`` recurses once per nested array or object (``[`` × 50,000 was an unhandled
RecursionError) and builds a Python object per value (6 MiB of ``[],`` took 1.5 s). So before it
runs, one scan over the raw bytes refuses a body nested more than :data:`MAX_DEPTH` deep or
holding more than :data:`MAX_ITEMS` strings, arrays, objects and commas. The scan does its work
in ``bytes`` methods (C, linear) and walks in Python at most 2 × MAX_ITEMS brackets. No regular
expression is used.

The one reader of JSON bodies for both web apps' APIs (the validator's and the IdP's).
"""

from __future__ import annotations

import json
from typing import Any

from metadata.errors import MetadataError

MAX_DEPTH = 32
"""Arrays and objects nested in a body. The API's bodies are an object holding at most a CRM
record (four levels); real clients never come near."""

MAX_ITEMS = 10_000
"""Strings, arrays, objects and commas (one between each two values) in a body. A CRM record with
a hundred claims stays under 1,000; long strings (metadata XML, a response) count once."""

_KEPT = b'"[]{},'
_DROPPED = bytes(b for b in range(256) if b not in _KEPT)
_OPEN, _CLOSE = ord("["), ord("]")
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")


class JSONBodyError(MetadataError, ValueError):
    """The body is not a JSON object this API reads; the message says what is wrong, and where."""


def read_json_object(data: bytes) -> dict[str, Any]:
    """`data` as a JSON object (RFC 8259, UTF-8 §8.1), or JSONBodyError naming the defect."""
    if not data.strip():
        raise JSONBodyError("the body is empty: send a JSON object")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONBodyError(f"the body is not UTF-8: byte {exc.start} is {data[exc.start]:#04x}") from None
    shape_problem = _shape_problem(data)
    if shape_problem:
        raise JSONBodyError(f"the JSON body {shape_problem}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONBodyError(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise JSONBodyError(f"the body is not JSON this API reads: {exc}") from None
    if not isinstance(value, dict):
        raise JSONBodyError(f"send a JSON object, not {json_type(value)}")
    return value


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages ("an array", "null" …)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    names = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _shape_problem(data: bytes) -> str | None:
    """Too deep or too many items, judged on the bytes outside strings; None when neither.
    A malformed body that passes is left to ``json.loads``, which names the defect."""
    # Escaped backslashes first, then escaped quotes: what is left of `"` are string delimiters.
    # (RFC 8259 §7: inside a string a backslash always escapes the next character.)
    structure = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(_ONE_BRACKET, _DROPPED)
    too_many = f"holds more than {MAX_ITEMS:,} strings, arrays, objects and commas"
    strings = structure.count(b'"') // 2
    if strings > MAX_ITEMS:  # before the split below makes an object of each
        return too_many
    outside = b"".join(structure.split(b'"')[::2])
    # Within a first value of at most MAX_ITEMS openers and commas, and its closers; past it, too many.
    if _too_deep(outside[:2 * MAX_ITEMS + 2]):
        return f"nests arrays and objects more than {MAX_DEPTH} deep"
    if strings + outside.count(b"[") + outside.count(b",") > MAX_ITEMS:
        return too_many
    return None


def _too_deep(brackets: bytes) -> bool:
    depth = 0
    for byte in brackets:
        if byte == _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif byte == _CLOSE:
            depth -= 1
            if depth <= 0:  # the first value ends (or a closer has no opener): json.loads stops there
                return False
    return False
