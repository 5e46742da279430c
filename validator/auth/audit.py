"""The audit trail: who signed in, invited, uploaded, logged in as a test, changed or downloaded what.

Append-only from the app's side: there is :func:`record` and there are readers, and nothing
that edits or removes an event. Events are kept in one store list per UTC day (namespace
``audit``, key ``YYYY-MM-DD``), so recording is a single ``append`` with no read-modify-write
that two workers could race on, and reading the last N days touches N lists.

Bound: a day keeps its newest :data:`DAY_CAP` (200 000) events; beyond that the oldest of that
day are dropped by the store. That is far above what people and partners do in a day, and it
keeps a runaway loop from filling the disk. Lists do not expire, so old days stay until an
operator removes them from the store.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from metadata.store import Store
from validator.auth.principal import Principal
from validator.json_value import iso_z

__all__ = ["ACTIONS", "DAY_CAP", "NAMESPACE", "Action", "AuditEvent", "as_json_lines", "event", "events", "record"]

Action = Literal[
    "sign-in", "sign-in-refused", "invite-created", "invite-used", "invite-revoked", "metadata-upload",
    "test-login", "record-change", "report-download", "token-created", "token-revoked", "staff-added",
    "staff-removed", "sweep-run",
]
ACTIONS: tuple[Action, ...] = get_args(Action)
NAMESPACE = "audit"
DAY_CAP = 200_000
DETAIL_MAX = 300
"""Characters of `detail`: a line in a list, not a document."""
FIELD_MAX = 256
"""Characters of `who`, `biller_id` and `address`."""
DAYS_MAX = 400
LIMIT_MAX = 100_000


def _one_line(text: str, limit: int) -> str:
    """`text` with every control character (newlines included) made a space and cut to `limit`:
    an event is one line in a log, and what a partner typed must not forge a second one."""
    flat = "".join(c if c.isprintable() else " " for c in text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class AuditEvent:
    at: str
    """ISO 8601 UTC, to the second (``2026-12-06T09:00:00Z``)."""
    action: Action
    who: str
    """``Principal.who`` (``staff:EMAIL``, ``invite:ID``, ``token:NAME``, ``local``, ``anonymous``) or ``cli:USER``."""
    biller_id: str | None
    address: str | None
    """The client's IP address; None from the command line."""
    detail: str
    """Short and on one line."""

    def __post_init__(self) -> None:
        """Refuse what would make the trail lie or break: an unknown action, a time that is not
        ours, text over two lines."""
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        _day(self.at)
        for name in ("who", "biller_id", "address", "detail"):
            value = getattr(self, name)
            if value is not None and _one_line(value, DETAIL_MAX if name == "detail" else FIELD_MAX) != value:
                raise ValueError(f"audit {name} must be one line of printable text, not {value[:80]!r}")

    def json(self) -> bytes:
        """One compact JSON object, as stored and as ``GET /api/v1/audit`` gives it."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> AuditEvent:
        data = json.loads(raw)
        return cls(at=data["at"], action=data["action"], who=data["who"], biller_id=data["biller_id"],
                   address=data["address"], detail=data["detail"])


def _day(at: str) -> str:
    """The UTC day of an event's time, which names its list; ValueError if `at` is not ``…Z``."""
    if not at.endswith("Z"):
        raise ValueError(f"audit time {at!r} must be ISO 8601 UTC ending in Z")
    return datetime.fromisoformat(at).date().isoformat()


def event(
    action: Action, principal_or_who: Principal | str, *, biller_id: str | None, address: str | None, detail: str,
    now: datetime,
) -> AuditEvent:
    """An event at `now` (to the second), with free text made safe to record (one line, short)."""
    who = principal_or_who.who if isinstance(principal_or_who, Principal) else principal_or_who
    return AuditEvent(
        at=iso_z(now.replace(microsecond=0)), action=action, who=_one_line(who, FIELD_MAX),
        biller_id=None if biller_id is None else _one_line(biller_id, FIELD_MAX),
        address=None if address is None else _one_line(address, FIELD_MAX), detail=_one_line(detail, DETAIL_MAX),
    )


def record(store: Store, audit_event: AuditEvent) -> None:
    """Append the event to its day's list; never rewritten (bound: :data:`DAY_CAP` a day)."""
    store.append(NAMESPACE, _day(audit_event.at), audit_event.json(), max_items=DAY_CAP)


def _matches(found: AuditEvent, biller_id: str | None, action: str | None, who: str | None) -> bool:
    return ((biller_id is None or found.biller_id == biller_id) and (action is None or found.action == action)
            and (who is None or found.who == who))


def _read(raw: bytes) -> AuditEvent | None:
    """A stored event; None for one that does not parse (a store edited by hand), which is left
    out rather than making the whole trail unreadable."""
    try:
        return AuditEvent.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return None


def events(
    store: Store, *, now: datetime, days: int = 30, biller_id: str | None = None, action: str | None = None,
    who: str | None = None, limit: int = 1000,
) -> list[AuditEvent]:
    """Up to `limit` events of the last `days` days before `now`, newest first (within a day,
    in the order they were recorded), keeping those that match every filter given (exactly).

    ValueError for `days` outside 1–400, `limit` outside 1–100 000, or an unknown `action`
    (a filter that can match nothing is a mistake to report, not an empty answer).
    """
    _check_query(days, limit, action)
    now = now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)
    since = iso_z((now - timedelta(days=days)).replace(microsecond=0))
    filtered = not (biller_id is None and action is None and who is None)
    found: list[AuditEvent] = []
    day = now.date()
    while len(found) < limit and day.isoformat() >= since[:10]:
        # Unfiltered, only what is still wanted is read; filtered, the whole day must be looked at.
        for raw in store.recent(NAMESPACE, day.isoformat(), DAY_CAP if filtered else limit - len(found)):
            item = _read(raw)
            if item is not None and item.at >= since and _matches(item, biller_id, action, who):
                found.append(item)
                if len(found) == limit:
                    break
        day -= timedelta(days=1)
    return found


def _check_query(days: int, limit: int, action: str | None) -> None:
    if not 1 <= days <= DAYS_MAX or not 1 <= limit <= LIMIT_MAX:
        raise ValueError(f"days must be 1–{DAYS_MAX} and limit 1–{LIMIT_MAX}")
    if action is not None and action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; one of: {', '.join(ACTIONS)}")


def as_json_lines(found: list[AuditEvent]) -> str:
    """One JSON object per line (``application/x-ndjson``), each line ending in a newline."""
    return "".join(item.json().decode() + "\n" for item in found)
