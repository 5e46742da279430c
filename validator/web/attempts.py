"""A partner's recent test-login attempts, as its page lists them: every attempt leaves a line.

An AuthnRequest sent adds a line at once; the response that answers it (the ACS) is noted against
its request ID. A line whose request got no answer within :data:`NO_RESPONSE_AFTER` reads "sent,
no response": the partner's IdP showed an error, the user gave up, or the response went
elsewhere. A login stopped before sending (CRM002) and an unsolicited response (RSP018) add a
line with their result directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from metadata.store import Store
from validator.json_value import iso_z

ATTEMPTS_NS, MAX_ATTEMPTS = "test-login-attempts", 20
"""Per biller: its newest attempts, newest first."""
ANSWERS_NS, ANSWERS_TTL = "test-login-answers", 24 * 3600
"""Per request ID: the result of the login that answered it."""
NO_RESPONSE_AFTER = timedelta(minutes=10)

Kind = Literal["sent", "stopped", "unsolicited"]


@dataclass(frozen=True)
class Attempt:
    """One line of a partner's attempts, as it is shown."""

    at: str
    """When it started (ISO 8601 UTC)."""
    kind: Kind
    status: str
    """``ready``, ``not ready`` …, ``sent, waiting for the IdP`` or ``sent, no response``."""
    login_id: str | None = None
    """The result page's ID, when there is a result."""

    @property
    def what(self) -> str:
        return {"sent": "AuthnRequest sent", "stopped": "stopped before sending (CRM002)",
                "unsolicited": "unsolicited response (IdP-initiated)"}[self.kind]


def note_sent(store: Store, biller_id: str, request_id: str, at: datetime) -> None:
    _append(store, biller_id, {"at": _second(at), "kind": "sent", "request_id": request_id})


def note_result(store: Store, biller_id: str, kind: Kind, login_id: str, verdict: str, at: datetime) -> None:
    """A result without a request sent before it: a login stopped before sending, or an unsolicited response."""
    _append(store, biller_id, {"at": _second(at), "kind": kind, "login_id": login_id, "verdict": verdict})


def note_answer(store: Store, request_id: str, login_id: str, verdict: str) -> None:
    """The response that answered `request_id` was judged: its result's ID and verdict."""
    store.put(ANSWERS_NS, request_id, json.dumps({"login_id": login_id, "verdict": verdict}).encode(),
              ttl=ANSWERS_TTL)


def _second(at: datetime) -> str:
    return iso_z(at.replace(microsecond=0))


def _append(store: Store, biller_id: str, entry: dict[str, str]) -> None:
    store.append(ATTEMPTS_NS, biller_id, json.dumps(entry).encode(), max_items=MAX_ATTEMPTS)


def recent(store: Store, biller_id: str, now: datetime) -> list[Attempt]:
    """The biller's attempts, newest first, each with its status at `now`."""
    attempts = []
    for stored in store.recent(ATTEMPTS_NS, biller_id, MAX_ATTEMPTS):
        entry = json.loads(stored)
        kind: Kind = entry["kind"] if entry["kind"] in ("stopped", "unsolicited") else "sent"
        if kind != "sent":
            attempts.append(Attempt(entry["at"], kind, entry["verdict"], entry["login_id"]))
            continue
        answer = store.get(ANSWERS_NS, entry["request_id"])
        if answer is not None:
            answered = json.loads(answer)
            attempts.append(Attempt(entry["at"], kind, answered["verdict"], answered["login_id"]))
        else:
            late = now - datetime.fromisoformat(entry["at"]) >= NO_RESPONSE_AFTER
            attempts.append(Attempt(entry["at"], kind, "sent, no response" if late else "sent, waiting for the IdP"))
    return attempts
