"""Strict loading of small TOML or JSON documents into frozen pydantic models.

The CRM record and the test IdP's settings are contracts: an unknown key is a typo that
would silently drop a setting, and a string where a number belongs (``"0123"``) is an ID
that would never match. Loading is therefore strict (no coercion, no extra keys), and every
fault is reported at once, each with its key path and, for a mistyped key, the key meant.
"""

from __future__ import annotations

import difflib
import inspect
import json
import re
import tomllib
import unicodedata
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from metadata.errors import ConfigError

MAX_BYTES = 1024 * 1024
"""These documents are a few hundred bytes; anything over 1 MiB is not one."""

FORMATS = {".toml": "toml", ".json": "json"}

# The whole file is one "place" for faults that have no key path.
FILE = "(file)"

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    # strict: no coercion, so "1" and 1.0 are not IDs and true is not 1.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def load_config(path: Path, model: type[M], error: type[ConfigError] = ConfigError, *,
                max_bytes: int = MAX_BYTES) -> M:
    """Read and validate the ``.toml`` or ``.json`` file at `path` (at most `max_bytes`) as a `model`."""
    source = str(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        accepted = " or ".join(FORMATS)
        raise error(source, [(FILE, f"must be a {accepted} file, not {quoted(path.name)}")])
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise error(source, [(FILE, f"cannot be read: {exc.strerror or exc}")]) from exc
    return parse_config(data, source, "toml" if fmt == "toml" else "json", model, error, max_bytes=max_bytes)


def parse_config(
    data: bytes | str, source: str, fmt: Literal["toml", "json"], model: type[M],
    error: type[ConfigError] = ConfigError, *, max_bytes: int = MAX_BYTES,
) -> M:
    """Validate a document given as text; `source` names it in errors."""
    return validate_config(parse_document(data, source, fmt, error, max_bytes=max_bytes), source, model, error)


def parse_document(
    data: bytes | str, source: str, fmt: Literal["toml", "json"], error: type[ConfigError] = ConfigError, *,
    max_bytes: int = MAX_BYTES,
) -> Any:
    """The document as plain data (dicts, lists, scalars), before validation."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_bytes:
        shown = f"{max_bytes // 2**20} MiB" if max_bytes % 2**20 == 0 else f"{max_bytes // 1024} KiB"
        raise error(source, [(FILE, f"is larger than {shown}, far more than such a document needs")])
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")  # tolerate the BOM some Windows editors add
        except UnicodeDecodeError as exc:
            raise error(source, [(FILE, f"is not UTF-8 text (bad byte at offset {exc.start})")]) from exc
    else:
        text = data
    try:
        return _parse_toml(text, source, error) if fmt == "toml" else _parse_json(text, source, error)
    except RecursionError:  # "[[[[…" thousands deep: both parsers recurse
        raise error(source, [(FILE, "is nested too deeply")]) from None


def validate_config(raw: Any, source: str, model: type[M], error: type[ConfigError] = ConfigError) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [(_path(err["loc"]), _explain(err, model)) for err in exc.errors(include_url=False)]
        raise error(source, problems) from None


def quoted(value: object) -> str:
    """A value as a person should see it in a message: JSON-quoted, invisible characters escaped."""
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except TypeError:  # a TOML date or time
        shown = str(value)
    # Format characters (bidi overrides, zero-width spaces) would hide what the text really is.
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) == "Cf" else ch for ch in shown)


_UNCARRIED = frozenset({"Cc", "Cs", "Co", "Cn"})
"""Control characters, lone surrogates, private-use and unassigned code points: XML 1.0 cannot carry
most of them, UTF-8 cannot encode a lone surrogate, and none belongs in a value a person typed."""
_UNSEEN = frozenset({"Cf", "Zl", "Zp"})
"""Format and separator characters: invisible where a person reads the value back."""


def refused_character(text: str, *, allowed: str = "", strict: bool = False) -> str | None:
    """The first character of `text` that a typed value may not hold (besides those `allowed`):
    one XML and a form cannot carry, and with `strict` one a reader would not see; None when there
    is none. Every text field a person fills in is held to it (IdP edits and SP registrations,
    the SE's interview answers)."""
    refused = _UNCARRIED | _UNSEEN if strict else _UNCARRIED
    return next((ch for ch in text if ch not in allowed and (
        unicodedata.category(ch) in refused or ch in "\ufffe\uffff")), None)


def _parse_toml(text: str, source: str, error: type[ConfigError]) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's error carries its position only in the text: "Invalid value (at line 3, column 5)".
        found = re.fullmatch(r"(.*?) \(at (line \d+, column \d+|end of document)\)", str(exc), re.DOTALL)
        where, reason = (found.group(2), found.group(1)) if found else (FILE, str(exc))
        raise error(source, [(where, f"TOML syntax error: {_lower_first(reason)}")]) from None


def _parse_json(text: str, source: str, error: type[ConfigError]) -> Any:
    duplicates: list[str] = []

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # JSON would keep the last of two equal keys silently; TOML refuses them, and so do we.
        table: dict[str, Any] = {}
        for key, value in pairs:
            if key in table:
                duplicates.append(key)
            table[key] = value
        return table

    try:
        raw = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise error(source, [(where, f"JSON syntax error: {_lower_first(exc.msg)}")]) from None
    if duplicates:
        raise error(source, [(FILE, f"the key {quoted(key)} appears twice in one object") for key in duplicates])
    return raw


def _path(loc: tuple[int | str, ...]) -> str:
    """``("claims", 2, "name")`` -> ``claims[2].name``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            key = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else quoted(part)
            path += f".{key}" if path else key
    return path or "(top level)"


def _explain(err: Any, model: type[BaseModel]) -> str:
    """One pydantic error, said the way a person editing the document needs to hear it."""
    kind, loc, value = err["type"], tuple(err["loc"]), err.get("input")
    got = _describe(value)
    if kind == "extra_forbidden":
        known = _keys_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(known)}"
        return f"unknown key ({hint})"
    if kind == "missing":
        return "required section is missing" if _keys_at(model, loc) else "required key is missing"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return f"must be one of {', '.join(choices)}; got {got}{hint}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list of tables (in TOML, repeat [[{loc[-1]}]]), got {got}"
    simple = {
        "int_type": "must be an integer",
        "string_type": "must be a string",
        "bool_type": "must be true or false",
        "model_type": "must be a table of keys",
        "dict_type": "must be a table of keys",
        "float_type": "must be a number",
    }
    if kind in simple:
        return f"{simple[kind]}, got {got}"
    if kind == "value_error":  # a validator of ours: its message already says what was wrong
        return str(err["msg"]).removeprefix("Value error, ")
    return f"{_lower_first(err['msg'])}, got {got}"


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return quoted(value)


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed in the table at `loc`; empty when `loc` is not a table."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation if field else None)
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside an annotation such as ``tuple[Claim, ...]``, if any."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
