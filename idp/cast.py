"""The cast of personas for one biller, built from the biller's CRM record (``saml-idp serve --crm``).

Every persona sends exactly the record's claim names, verbatim and in record order: the point of
the test IdP is to show a portal what a correct partner sends. Values are plausible and derived
from the record alone (hashes, never randomness), so the same record gives the same personas.

* One persona per entry of ``[[login_types]]``, id ``<slug of the name>-<ID>`` (``customer-1``),
  its login-type claim carrying that ID. A record without login types gets one persona, ``user``,
  which leaves the login-type claim out: there is no configured ID it could carry.
* ``near-miss-claim-case``: the first login type's persona with the first required claim whose
  name has letters sent in the wrong case. Skipped when no required claim can be so renamed
  without turning into another claim of the record.
* ``near-miss-login-type``: the same persona with a login type ID the record does not list.
  Skipped when the record has no login-type claim or no login types.

Each persona's NameID is its address, ``<id>@<slug of the biller name>.example``, which its
email claims carry too. When two login types give the same id (names that slug alike and one
ID), later ones get ``-2``, ``-3`` … in record order. A name listed twice in ``[[claims]]`` is
sent once (a persona maps each name to one value).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import get_args

from metadata.crm import CRMRecord

from .faults import wrong_cases
from .settings import Persona, ServiceProvider, Settings, Vendor

__all__ = ["apply_crm", "personas_from_crm", "sp_from_crm"]

Claims = dict[str, str | list[str]]

_FIRST = ("Alex", "Jordan", "Sam", "Taylor", "Morgan", "Casey", "Riley", "Jamie")
_LAST = ("Rivera", "Chen", "Okafor", "Novak", "Silva", "Larsen", "Haddad", "Kowalski")


def personas_from_crm(record: CRMRecord) -> tuple[Persona, ...]:
    """The record's personas: one per login type (or ``user``), then the near misses that the
    record can express. Ids are unique; the password of each is its id (test personas)."""
    taken: set[str] = set()
    domain = _domain(record)
    personas: list[Persona] = []
    for login_type in record.login_types:
        pid = _unique(f"{_slug(login_type.name) or 'login-type'}-{login_type.id}", taken)
        address = f"{pid}@{domain}"
        personas.append(_persona(record, pid, f"{login_type.name} (login type {login_type.id})",
                                 _claims(record, pid, login_type.id, address), address))
    if not personas:
        lt_claim = record.login_type_claim
        note = f", so {lt_claim.name!r} is not sent" if lt_claim else ""
        pid, address = _unique("user", taken), f"user@{domain}"
        personas.append(_persona(record, pid, f"User (the record lists no login types{note})",
                                 _claims(record, pid, None, address), address))
    base = personas[0]
    for near_miss in (_claim_case_miss(record, base), _login_type_miss(record, base)):
        if near_miss is not None:
            pid, display_name, claims = near_miss
            # The same user as a misconfigured IdP would send them: same subject, one fault.
            personas.append(_persona(record, _unique(pid, taken), display_name, claims, base.nameid))
    return tuple(personas)


def sp_from_crm(record: CRMRecord) -> ServiceProvider:
    """The portal as an inline SP: the record's entity ID and ACS URL, and the record's NameID
    format when it names one (otherwise the SP's request or the persona decides)."""
    return ServiceProvider(entity_id=record.sp.entity_id, acs=[record.sp.acs_url],
                           nameid_format=record.idp.nameid_format)


def apply_crm(settings: Settings, record: CRMRecord) -> Settings:
    """`settings` for the record's biller: the record's personas REPLACE the configured ones
    (demo personas included), and the record's SP is added to ``sps`` unless an SP configured
    with that ``entity_id`` is there, which is then kept as configured (signing, encryption …).
    The IdP takes the record's IdP entity ID and vendor profile unless the settings name their
    own, so that its responses answer the record as the partner's IdP should.

    An SP given by ``metadata`` without ``entity_id`` cannot be matched (its entity ID is in the
    metadata, and this function does no I/O); the registry then sees the SP twice."""
    sps = settings.sps
    if all(sp.entity_id != record.sp.entity_id for sp in sps):
        sps = (*sps, sp_from_crm(record))
    server = settings.server
    chosen = server.model_fields_set
    updates: dict[str, object] = {}
    if "entity_id" not in chosen and record.idp.entity_id:
        updates["entity_id"] = record.idp.entity_id
    if "vendor" not in chosen and record.idp.vendor in get_args(Vendor):
        updates["vendor"] = record.idp.vendor
    return settings.model_copy(update={"personas": personas_from_crm(record), "sps": sps,
                                       "server": server.model_copy(update=updates)})


def _persona(record: CRMRecord, pid: str, display_name: str, claims: Claims, nameid: str) -> Persona:
    return Persona(id=pid, display_name=display_name, password=pid, nameid=nameid,
                   nameid_format=record.idp.nameid_format, claims=claims)


def _claims(record: CRMRecord, pid: str, login_type_id: int | None, email: str) -> Claims:
    """Each claim name of the record with a value for the persona `pid` of that login type
    (None: the record has none, and the login-type claim is left out)."""
    lt_claim = record.login_type_claim
    seed = f"{record.biller.id}\x00{pid}"
    claims: Claims = {}
    for claim in record.claims:
        if claim.name in claims:
            continue
        if lt_claim is not None and claim.name == lt_claim.name:
            if login_type_id is not None:
                claims[claim.name] = str(login_type_id)
            continue
        claims[claim.name] = _value(claim.name, seed, email, 1 if login_type_id is None else login_type_id)
    return claims


# A claim's kind by its name (lower case, letters and digits only): the first row whose words
# the name contains, or one of whose names it is, decides.
_KINDS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("email", ("mail",), ("upn", "userprincipalname")),
    ("phone", ("phone", "mobile"), ()),
    ("first", ("first", "given"), ()),
    ("last", ("last", "surname", "family"), ("sn",)),
    ("full", ("display", "fullname"), ("name",)),
    ("number", ("account", "invoice", "policy", "customer", "number"), ()),
)


def _kind(name: str) -> str | None:
    key = re.sub(r"[^a-z0-9]", "", name.rsplit("/", 1)[-1].lower())
    return next((kind for kind, words, names in _KINDS if key in names or any(w in key for w in words)), None)


def _value(name: str, seed: str, email: str, n: int) -> str:
    first, last = _FIRST[_number(seed, "first") % len(_FIRST)], _LAST[_number(seed, "last") % len(_LAST)]
    values = {
        "email": email,
        "phone": f"+1-202-555-01{_number(seed, name) % 100:02d}",  # 555-0100..0199: reserved for fiction
        "first": first,
        "last": last,
        "full": f"{first} {last}",
        "number": str(100_000_000 + _number(seed, name) % 900_000_000),  # 9 digits, no leading zero
    }
    kind = _kind(name)
    return values[kind] if kind else f"{_slug(name) or 'value'}-{n}"


def _claim_case_miss(record: CRMRecord, base: Persona) -> tuple[str, str, Claims] | None:
    names = {claim.name for claim in record.claims}
    for claim in record.required_claims:
        if claim.name not in base.claims:
            continue  # the login-type claim of a record without login types
        for wrong in wrong_cases(claim.name):
            if wrong not in names:
                claims = {wrong if name == claim.name else name: value for name, value in base.claims.items()}
                return "near-miss-claim-case", f"Near miss: {wrong!r} instead of {claim.name!r}", claims
    return None


def _login_type_miss(record: CRMRecord, base: Persona) -> tuple[str, str, Claims] | None:
    lt_claim = record.login_type_claim
    if lt_claim is None or not record.login_types:
        return None
    unknown = record.unused_login_type_id
    held = ", ".join(str(n) for n in sorted(record.login_type_ids))
    return ("near-miss-login-type",
            f"Near miss: login type {unknown} in {lt_claim.name!r}, which the record does not list ({held})",
            {**base.claims, lt_claim.name: str(unknown)})


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _domain(record: CRMRecord) -> str:
    label = (_slug(record.biller.name) or _slug(record.biller.id) or "biller")[:63].strip("-")
    return f"{label}.example"


def _number(seed: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{salt}".encode()).digest()[:8], "big")


def _unique(pid: str, taken: set[str]) -> str:
    candidate, n = pid, 2
    while candidate in taken:
        candidate, n = f"{pid}-{n}", n + 1
    taken.add(candidate)
    return candidate
