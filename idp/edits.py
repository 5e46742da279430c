"""Edits for one response: the claims, NameID and NameID format a person typed on the login page,
or an SP's test suite sent with ``POST /api/v1/next-login``, and the faults chosen with them.

An edit never changes the persona in the settings: :meth:`Edits.apply` gives a copy for the one
response it was made for. Every name and value is untrusted text and is held to what a form and
an XML attribute can carry (:data:`TEXT_LIMIT`, :data:`VALUES_LIMIT`, no control character);
:class:`EditError` names the field at fault.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metadata.config import refused_character
from metadata.saml import EMAIL, PERSISTENT, TRANSIENT, UNSPECIFIED

from .errors import IdPError
from .faults import Fault, conflict, fault
from .settings import Persona

TEXT_LIMIT = 4 * 1024
"""Bytes (UTF-8) of one claim name or value, or of the NameID."""
VALUES_LIMIT = 100
"""Values of one claim, and claims of one response."""
NAMEID_FORMATS = (EMAIL, PERSISTENT, TRANSIENT, UNSPECIFIED)
"""The formats the IdP can send (its metadata lists the same)."""

Claims = dict[str, str | list[str]]


class EditError(IdPError, ValueError):
    """An edit that cannot be sent; `field` names where it was (a form field, or a JSON path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class Edits:
    """What changes in one response; None (and no faults) is "as the persona has it"."""

    claims: Claims | None = None
    """All the response's persona claims (replacing the persona's), or None: the persona's."""
    nameid: str | None = None
    """The NameID value sent as given, whatever the format; None: as the IdP derives it."""
    nameid_format: str | None = None
    """Wins even over the AuthnRequest's NameIDPolicy (a test of what the SP does with another)."""
    faults: tuple[str, ...] = ()

    def apply(self, persona: Persona) -> Persona:
        """A copy of `persona` with the edited claims, for this one response."""
        return persona if self.claims is None else persona.model_copy(update={"claims": self.claims})

    def changes(self, persona: Persona) -> list[str]:
        """What differs from `persona`, said for a person (empty: nothing was edited)."""
        said = []
        if self.claims is not None:
            for name in sorted(set(persona.claims) | set(self.claims)):
                before, after = persona.claims.get(name), self.claims.get(name)
                if before is None:
                    said.append(f"added {name} = {_shown(after)}")
                elif after is None:
                    said.append(f"removed {name}")
                elif _values(before) != _values(after):
                    said.append(f"{name}: {_shown(before)} → {_shown(after)}")
        if self.nameid is not None and self.nameid != persona.nameid:
            said.append(f"NameID: {persona.nameid} → {self.nameid}")
        if self.nameid_format is not None:
            said.append(f"NameID format: {self.nameid_format}")
        return said

    def test_case(self, persona: Persona, sp: str) -> str:
        """The ``POST /api/v1/next-login`` body that gives the same response again."""
        case: dict[str, object] = {"persona": persona.id, "sp": sp}
        if self.claims is not None and self.changes(persona):
            case["claims"] = self.claims
        if self.nameid is not None and self.nameid != persona.nameid:
            case["nameid"] = self.nameid
        if self.nameid_format is not None:
            case["nameid_format"] = self.nameid_format
        if self.faults:
            case["faults"] = list(self.faults)
        return json.dumps(case, indent=2, ensure_ascii=False)

    def chosen_faults(self) -> tuple[Fault, ...]:
        return tuple(fault(f) for f in self.faults)

    def faults_with(self, persona: Persona, picked: tuple[Fault, ...] = ()) -> tuple[Fault, ...]:
        """Every fault of the response: the persona's own (settings), those `picked` on the login
        page, then these edits' own, each once."""
        return tuple(dict.fromkeys((*(fault(f) for f in persona.faults), *picked, *self.chosen_faults())))

    def as_dict(self) -> dict[str, object]:
        """As the store keeps it, inside an armed login (:mod:`idp.arming`)."""
        return {"claims": self.claims, "nameid": self.nameid, "nameid_format": self.nameid_format,
                "faults": list(self.faults)}

    @classmethod
    def from_dict(cls, kept: Mapping[str, Any]) -> Edits:
        """Read back what :meth:`as_dict` gave (the store's copy, checked when it was made)."""
        return cls(kept["claims"], kept["nameid"], kept["nameid_format"], tuple(kept["faults"]))


def _values(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _shown(value: str | list[str] | None) -> str:
    return ", ".join(repr(v) for v in _values(value or []))


def checked_text(field: str, value: str) -> str:
    """`value` when a form and an XML attribute can carry it; EditError naming `field` otherwise."""
    if len(value.encode("utf-8", "surrogatepass")) > TEXT_LIMIT:
        raise EditError(field, f"longer than {TEXT_LIMIT // 1024} KiB")
    bad = refused_character(value)
    if bad is not None:
        raise EditError(field, f"holds a control or unassigned character (U+{ord(bad):04X}); remove it")
    return value


def checked_format(field: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value not in NAMEID_FORMATS:
        raise EditError(field, f"{value!r} is not one of {', '.join(NAMEID_FORMATS)}")
    return value


def checked_faults(field: str, ids: Sequence[str]) -> tuple[str, ...]:
    """Known fault IDs that can go together (whether they fit this SP is judged at the login)."""
    try:
        chosen = [fault(i) for i in ids]
    except IdPError as exc:
        raise EditError(field, str(exc)) from None
    problem = conflict(chosen)
    if problem:
        raise EditError(field, problem)
    return tuple(dict.fromkeys(ids))


def checked_claims(rows: Sequence[tuple[str, str, Sequence[str]]]) -> Claims:
    """(field of the name, name, values) rows as claims; EditError naming the field at fault."""
    if len(rows) > VALUES_LIMIT:
        raise EditError("claims", f"more than {VALUES_LIMIT} claims")
    claims: Claims = {}
    for field, name, values in rows:
        if not name.strip():
            raise EditError(field, "a claim needs a name")
        checked_text(field, name)
        if name in claims:
            raise EditError(field, f"{name!r} is given twice; put all its values in one place")
        if len(values) > VALUES_LIMIT:
            raise EditError(field, f"more than {VALUES_LIMIT} values")
        kept = [checked_text(f"{field} value {n}", value) for n, value in enumerate(values, 1)]
        claims[name] = kept[0] if len(kept) == 1 else kept
    return claims


def form_claims(rows: Sequence[tuple[str, str]]) -> Claims:
    """The login page's claim rows, (name, values one per line), as claims; an empty value box is
    one empty value. EditError names the row at fault."""
    if len(rows) > VALUES_LIMIT:
        raise EditError("claims", f"more than {VALUES_LIMIT} claims")
    checked = []
    for n, (name, values) in enumerate(rows, 1):
        lines = values.replace("\r\n", "\n").split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()  # the line break after the last value
        checked.append((f"claim {n} ({name.strip() or 'no name'})", name.strip(), lines))
    return checked_claims(checked)


def edits_from_form(persona: Persona, rows: Sequence[tuple[str, str]], *, nameid: str, nameid_format: str,
                    picked: str) -> Edits:
    """The login page's edit form for `persona`: its claim rows, NameID and format, and the fault
    picked; EditError naming the field at fault."""
    claims = form_claims(rows)
    nameid = checked_nameid("NameID", nameid)
    edits = Edits(claims=claims, nameid=nameid if nameid != persona.nameid else None,
                  nameid_format=checked_format("NameID format", nameid_format),
                  faults=checked_faults("fault", [picked] if picked else []))
    return not_replayed("fault", edits, bool(edits.changes(persona)))


def checked_nameid(field: str, value: str) -> str:
    if not value.strip():
        raise EditError(field, "empty; to send an empty NameID, pick the fault empty-nameid")
    return checked_text(field, value)


def not_replayed(field: str, edits: Edits, edited: bool) -> Edits:
    """`edits`, unless they are edits that the ``replay`` fault would drop: it sends the previous
    response again as it was, so it carries no edit."""
    if edited and "replay" in edits.faults:
        raise EditError(field, "replay sends the previous response again as it was: it cannot carry edits; "
                               "send the edits or the replay, one at a time")
    return edits


def edits_from_json(body: Mapping[str, object]) -> Edits:
    """The overrides of a ``next-login`` call (keys claims, nameid, nameid_format, faults); EditError
    naming the JSON path at fault."""
    nameid, nameid_format = _json_text(body, "nameid"), _json_text(body, "nameid_format")
    faults = body.get("faults", [])
    if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
        raise EditError("faults", "must be a list of fault IDs")
    edits = Edits(claims=_json_claims(body.get("claims")),
                  nameid=checked_nameid("nameid", nameid) if nameid is not None else None,
                  nameid_format=checked_format("nameid_format", nameid_format),
                  faults=checked_faults("faults", faults))
    return not_replayed("faults", edits, any(key in body for key in ("claims", "nameid", "nameid_format")))


def _json_text(body: Mapping[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise EditError(key, "must be a string")
    return value


def _json_claims(claims: object) -> Claims | None:
    if claims is None:
        return None
    if not isinstance(claims, dict):
        raise EditError("claims", "must be an object of claim name → string or list of strings")
    rows = []
    for name, value in claims.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise EditError(f"claims.{name}", "must be a string or a list of strings")
        rows.append((f"claims.{name}", name, values))
    return checked_claims(rows)
