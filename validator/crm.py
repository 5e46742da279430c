"""The CRM record: what the portal expects of one biller's SSO, loaded strictly.

A record is TOML (read with :mod:`tomllib`) or JSON of the same shape; see "The CRM record"
in DESIGN.md. Loading is strict because the record is the contract: an unknown key is a
typo that would silently drop a setting, and a string where a number belongs (``"0123"``)
is a login type ID that would never match. Every fault found is reported at once, each
with its key path, in one :class:`~validator.errors.CRMRecordError`.

Loading checks the *shape* only. Whether the values make sense (URLs use https, claim
names are unique …) is judged by the rules in :mod:`validator.checks.crm_record`.
"""

from __future__ import annotations

import difflib
import inspect
import json
import re
import tomllib
import unicodedata
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from validator.errors import CRMRecordError

MAX_BYTES = 1024 * 1024
"""A CRM record is a few hundred bytes; anything over 1 MiB is not one."""

FORMATS = {".toml": "toml", ".json": "json"}

Vendor = Literal[
    "okta", "entra", "adfs", "google", "ping", "onelogin", "keycloak",
    "shibboleth", "simplesamlphp", "jumpcloud", "auth0", "other",
]  # fmt: skip
VENDORS: tuple[str, ...] = get_args(Vendor)

# The whole file is one "place" for faults that have no key path.
FILE = "(file)"


class _Strict(BaseModel):
    # strict: no coercion, so "1" and 1.0 are not IDs and true is not 1.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Biller(_Strict):
    id: str
    """The biller's ID in the CRM, e.g. ``B-10442``."""
    name: str


class SP(_Strict):
    """Our portal, as the partner must configure it in their IdP."""

    entity_id: str
    """Our entity ID (the audience the partner's assertions must name); a URL or a URN."""
    acs_url: str
    """Where the partner's IdP must POST its responses."""


class IdP(_Strict):
    """The partner's IdP as they described it in discovery; every key is optional."""

    vendor: Vendor | None = None
    """Absent when unknown: the validator detects the vendor from the metadata."""
    entity_id: str | None = None
    metadata_url: str | None = None
    sso_url: str | None = None
    nameid_format: str | None = None


class Claim(_Strict):
    name: str
    """Sent exactly as written: case, spelling, and no URI prefix unless it is part of the name."""
    required: bool = False
    login_type: bool = False
    """True for the one claim whose values must be configured login type IDs."""


class LoginType(_Strict):
    id: int
    """A numeric role ID the portal issued to the biller."""
    name: str


class CRMRecord(_Strict):
    biller: Biller
    sp: SP
    idp: IdP = IdP()
    # Tuples keep the record frozen all the way down. Lax here only lets a list fill the
    # tuple; every item is still checked by its own strict model.
    claims: tuple[Claim, ...] = Field(default=(), strict=False)
    login_types: tuple[LoginType, ...] = Field(default=(), strict=False)

    @property
    def login_type_claim(self) -> Claim | None:
        """The claim marked ``login_type = true`` (the first, if the record marks several)."""
        return next((claim for claim in self.claims if claim.login_type), None)

    @property
    def required_claims(self) -> tuple[Claim, ...]:
        return tuple(claim for claim in self.claims if claim.required)

    @property
    def login_type_ids(self) -> dict[int, str]:
        """Login type ID -> name; the first entry wins when an ID is listed twice."""
        ids: dict[int, str] = {}
        for login_type in self.login_types:
            ids.setdefault(login_type.id, login_type.name)
        return ids


def load_crm(path: Path) -> CRMRecord:
    """Read and validate the record at `path` (``.toml`` or ``.json``)."""
    source = str(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        accepted = " or ".join(FORMATS)
        raise _error(source, f"a CRM record is a {accepted} file, not {quoted(path.name)}")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _error(source, f"cannot be read: {exc.strerror or exc}") from exc
    return parse_crm(data, source, "toml" if fmt == "toml" else "json")


def parse_crm(data: bytes | str, source: str, fmt: Literal["toml", "json"]) -> CRMRecord:
    """Validate a record given as text; `source` names it in errors."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_BYTES:
        raise _error(source, f"is larger than {MAX_BYTES // 2**20} MiB; a CRM record is small")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")  # tolerate the BOM some Windows editors add
        except UnicodeDecodeError as exc:
            raise _error(source, f"is not UTF-8 text (bad byte at offset {exc.start})") from exc
    else:
        text = data
    try:
        raw = _parse_toml(text, source) if fmt == "toml" else _parse_json(text, source)
    except RecursionError:  # "[[[[…" thousands deep: both parsers recurse
        raise _error(source, "is nested too deeply to be a CRM record") from None
    try:
        return CRMRecord.model_validate(raw)
    except ValidationError as exc:
        problems = [(_path(err["loc"]), _explain(err)) for err in exc.errors(include_url=False)]
        raise CRMRecordError(source, problems) from None


def quoted(value: object) -> str:
    """A value as a person should see it in a message: JSON-quoted, invisible characters escaped."""
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except TypeError:  # a TOML date or time
        shown = str(value)
    # Format characters (bidi overrides, zero-width spaces) would hide what the text really is.
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) == "Cf" else ch for ch in shown)


def _parse_toml(text: str, source: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's error carries its position only in the text: "Invalid value (at line 3, column 5)".
        found = re.fullmatch(r"(.*?) \(at (line \d+, column \d+|end of document)\)", str(exc), re.DOTALL)
        where, reason = (found.group(2), found.group(1)) if found else (FILE, str(exc))
        raise _error(source, f"TOML syntax error: {_lower_first(reason)}", where) from None


def _parse_json(text: str, source: str) -> Any:
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
        raise _error(source, f"JSON syntax error: {_lower_first(exc.msg)}", where) from None
    if duplicates:
        problems = [(FILE, f"the key {quoted(key)} appears twice in one object") for key in duplicates]
        raise CRMRecordError(source, problems)
    return raw


def _error(source: str, message: str, where: str = FILE) -> CRMRecordError:
    return CRMRecordError(source, [(where, message)])


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


def _explain(err: Any) -> str:
    """One pydantic error, said the way a person editing the record needs to hear it."""
    kind, loc, value = err["type"], tuple(err["loc"]), err.get("input")
    got = _describe(value)
    if kind == "extra_forbidden":
        known = _keys_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(known)}"
        return f"unknown key ({hint})"
    if kind == "missing":
        return "required section is missing" if _keys_at(loc) else "required key is missing"
    if kind == "literal_error":
        close = difflib.get_close_matches(str(value), VENDORS, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return f"must be one of {', '.join(VENDORS)}; got {got}{hint}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list of tables (in TOML, repeat [[{loc[-1]}]]), got {got}"
    simple = {
        "int_type": "must be an integer",
        "string_type": "must be a string",
        "bool_type": "must be true or false",
        "model_type": "must be a table of keys",
        "dict_type": "must be a table of keys",
    }
    if kind in simple:
        return f"{simple[kind]}, got {got}"
    return f"{_lower_first(err['msg'])}, got {got}"


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return quoted(value)


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed in the table at `loc`; empty when `loc` is not a table."""
    model: type[BaseModel] = CRMRecord
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
