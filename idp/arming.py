"""What the automation API arms for the next login (:mod:`idp.api`), and how ``/sso`` takes it.

Two kinds, each kept in the store for :data:`ARMED_TTL` seconds and taken once:

- a *login*: the persona to sign in as at the next AuthnRequest, for one SP or for any (``*``),
  with the edits of that one response (:class:`idp.edits.Edits`: claims, NameID, faults);
- *faults*: the faults to send in the next response, for an SP and a persona, either or both any.

Every login asks whether anything is armed. So that the usual answer, nothing, costs one store
read instead of six, arming also refreshes a marker (:data:`MARKER`) that outlives every entry
armed with it: it is written after the entry, with the same TTL. A marker without entries only
sends the login through the full look-up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from metadata.store import Store

from .edits import Edits
from .faults import Fault, fault

ARMED_TTL = 300.0
"""Seconds an armed login or fault waits for its login."""

LOGINS = "armed"
FAULTS = "armed-fault"
MARKER = ("armed-any", "marker")
"""Present while anything may be armed (and a little longer)."""


def _mark(store: Store) -> None:
    store.put(*MARKER, b"1", ARMED_TTL)


def maybe_armed(store: Store) -> bool:
    """False when nothing is armed (one store read). A login asks once and hands the answer to
    :func:`take_login` and :func:`take_faults`: each read is a transaction of its own."""
    return store.get(*MARKER) is not None


def arm_login(store: Store, sp: str | None, persona: str, edits: Edits | None = None) -> None:
    """Sign in as `persona` at the next AuthnRequest from `sp` (None: from any SP), with `edits`
    in that one response."""
    value = {"persona": persona, "edits": edits.as_dict() if edits else None}
    store.put(LOGINS, sp or "*", json.dumps(value).encode(), ARMED_TTL)
    _mark(store)


def take_login(store: Store, sp: str, *, armed: bool | None = None) -> tuple[str, Edits | None] | None:
    """The persona armed for `sp`, else for any SP, with its edits; taken once. `armed`: what
    :func:`maybe_armed` said for this login, if it was asked already."""
    if not (maybe_armed(store) if armed is None else armed):
        return None
    for who in (sp, "*"):
        if store.get(LOGINS, who):
            taken = store.take(LOGINS, who)
            if taken and not taken.startswith(b"{"):  # armed by an IdP before edits (a rolling upgrade)
                return taken.decode(), None
            if taken:
                kept = json.loads(taken)
                return kept["persona"], Edits.from_dict(kept["edits"]) if kept["edits"] else None
    return None


def faults_key(sp: str | None, persona: str | None) -> str:
    return f"{sp or '*'}|{persona or '*'}"


def arm_faults(store: Store, sp: str | None, persona: str | None, faults: Sequence[Fault]) -> None:
    """Send `faults` in the next response to `sp` for `persona` (None: any)."""
    store.put(FAULTS, faults_key(sp, persona), json.dumps([f.id for f in faults]).encode(), ARMED_TTL)
    _mark(store)


def take_faults(store: Store, sp: str, persona: str, chosen: Sequence[Fault],
                fits: Callable[[tuple[Fault, ...]], bool], *, armed: bool | None = None) -> tuple[Fault, ...]:
    """The faults armed for this SP and persona, the most specific first, taken once — but only
    when `fits` (the faults `chosen` already, with them) says they can apply here; otherwise they
    stay armed for their own login. `armed` as for :func:`take_login`."""
    if not (maybe_armed(store) if armed is None else armed):
        return ()
    have = {c.id for c in chosen}
    for key in (faults_key(sp, persona), faults_key(sp, None), faults_key(None, persona), faults_key(None, None)):
        listed = store.get(FAULTS, key)
        if not listed:
            continue
        faults = tuple(fault(f) for f in json.loads(listed) if f not in have)
        if fits((*chosen, *faults)) and store.take(FAULTS, key):
            return faults
    return ()
