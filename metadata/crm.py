"""The CRM record: what the portal expects of one biller's SSO, loaded strictly.

A record is TOML (read with :mod:`tomllib`) or JSON of the same shape; see "The CRM record"
in DESIGN.md. Loading is strict because the record is the contract: an unknown key is a
typo that would silently drop a setting, and a string where a number belongs (``"0123"``)
is a login type ID that would never match. Every fault found is reported at once, each
with its key path, in one :class:`~metadata.errors.CRMRecordError`.

Loading checks the *shape* only. Whether the values make sense (URLs use https, claim
names are unique …) is judged by the rules in :mod:`validator.checks.crm_record`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field

from metadata.config import StrictModel, load_config, parse_config, quoted
from metadata.errors import CRMRecordError

__all__ = ["MAX_BYTES", "MAX_LOGIN_TYPE_ID", "MAX_SIGNING_CERTIFICATES", "CRMRecord", "load_crm", "parse_crm",
           "quoted"]

MAX_BYTES = 64 * 1024
"""A real record is under 5 KiB. tomllib is pure Python: a 1 MiB record of 24,000 claims cost 1.6 s
to read, and records may be uploaded to the web app."""

Vendor = Literal[
    "okta", "entra", "adfs", "google", "ping", "pingfederate", "onelogin", "keycloak",
    "shibboleth", "simplesamlphp", "jumpcloud", "auth0", "other",
]  # fmt: skip
VENDORS: tuple[str, ...] = get_args(Vendor)

_Strict = StrictModel

MAX_SIGNING_CERTIFICATES = 8
"""Pinned certificates a record may list: a rollover needs two; more is a mistake, and each costs a
verification (SECURITY.md §7)."""


def _beside_the_record(value: str) -> str:
    """A file named by the record: a relative path that stays in the record's folder."""
    if not value.strip():
        raise ValueError("must name a file")
    for pure in (PurePosixPath(value), PureWindowsPath(value)):
        if pure.is_absolute() or pure.anchor or ".." in pure.parts:
            raise ValueError(f"{value!r} must be a path relative to the record, inside its folder (no '..')")
    return value


RecordFile = Annotated[str, AfterValidator(_beside_the_record)]


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
    """Trust, in DESIGN.md's order (after metadata uploaded in the web app): `metadata_file`,
    `signing_certificates`, then this https URL."""
    metadata_file: RecordFile | None = None
    """The IdP's metadata kept beside the record (a path relative to the record file)."""
    signing_certificates: tuple[RecordFile, ...] | None = Field(
        default=None, strict=False, min_length=1, max_length=MAX_SIGNING_CERTIFICATES)
    """PEM files of the IdP's signing certificates, relative to the record: for IdPs without metadata."""
    sso_url: str | None = None
    nameid_format: str | None = None


class Claim(_Strict):
    name: str
    """Sent exactly as written: case, spelling, and no URI prefix unless it is part of the name."""
    required: bool = False
    login_type: bool = False
    """True for the one claim whose values must be configured login type IDs."""


MAX_LOGIN_TYPE_ID = 2**31 - 1
"""The largest login type ID: 2,147,483,647, a signed 32-bit integer.

A login type ID is a whole number the portal issued and keeps in a CRM integer field. The
narrowest such field in common use is a signed 32-bit one (SQL ``INT``, Dynamics 365's Whole
Number, a Java or C# ``int``), so every real ID fits it and so does the record; a 64-bit bound
would let through IDs that some of those fields cannot store. A longer number is a typo, or a
value pasted into the wrong field (an account number, a phone number), never an issued ID.
The record accepts -2,147,483,648 to 2,147,483,647, what the field holds; a negative ID is the
record's own finding (CRM109), and a number sent beyond the bound is CLM006's."""


def _fits_a_crm_integer(value: int) -> int:
    if not -MAX_LOGIN_TYPE_ID - 1 <= value <= MAX_LOGIN_TYPE_ID:
        raise ValueError(f"{value} does not fit a CRM integer field: a login type ID is a signed 32-bit integer, "
                         f"at most {MAX_LOGIN_TYPE_ID}")
    return value


class LoginType(_Strict):
    id: Annotated[int, AfterValidator(_fits_a_crm_integer)]
    """A numeric role ID the portal issued to the biller; a signed 32-bit integer (:data:`MAX_LOGIN_TYPE_ID`)."""
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
    def unused_login_type_id(self) -> int:
        """The smallest positive ID the record does not hold: a login type the portal never issued."""
        held = set(self.login_type_ids)
        return next(n for n in range(1, len(held) + 2) if n not in held)

    @property
    def login_type_ids(self) -> dict[int, str]:
        """Login type ID -> name; the first entry wins when an ID is listed twice."""
        ids: dict[int, str] = {}
        for login_type in self.login_types:
            ids.setdefault(login_type.id, login_type.name)
        return ids


def load_crm(path: Path) -> CRMRecord:
    """Read and validate the record at `path` (``.toml`` or ``.json``)."""
    return load_config(path, CRMRecord, CRMRecordError, max_bytes=MAX_BYTES)


def parse_crm(data: bytes | str, source: str, fmt: Literal["toml", "json"]) -> CRMRecord:
    """Validate a record given as text; `source` names it in errors."""
    return parse_config(data, source, fmt, CRMRecord, CRMRecordError, max_bytes=MAX_BYTES)
