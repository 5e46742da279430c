"""Partner invite links: a secret URL that lets one partner act on its own biller, for a while.

An invite is made by staff (``saml-validate invite``, or the staff pages) and sent to the
partner; whoever opens its link within its lifetime signs in as that partner. The link is the
only credential, so:

* its token is ``secrets.token_urlsafe(32)`` (256 random bits), shown once and never stored;
* the store keeps only the token's SHA-256 (hex), as the key the invite is found by. A fast
  hash is right here: a slow password hash (Argon2) exists to make guessing a *low-entropy*
  secret expensive, and nobody enumerates 2**256 tokens. A lookup by digest also compares
  nothing secret byte by byte, so it leaks no timing;
* the invite's ID (``inv_`` + 12 hex) is not a secret: lists, the audit trail and revocation
  name an invite by it.

Store namespaces: ``auth.invites`` (ID → the invite as JSON, kept after it expires or is
revoked, so lists and the audit trail can still name it), ``auth.invite-tokens`` (token digest
→ ID) and ``auth.invite-revoked`` (ID → who revoked it, when; written once with the store's
atomic ``add`` so two racing revocations cannot both claim it, and the invite's own record is
never rewritten).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from metadata.store import Store
from validator.auth.principal import Principal
from validator.errors import ValidatorError
from validator.json_value import iso_z

__all__ = [
    "DAYS_MAX", "DAYS_MIN", "Invite", "InviteError", "InviteState", "create_invite", "get_invite", "invite_state",
    "invite_url", "list_invites", "open_invite", "principal_for", "revoke_invite", "well_formed_token",
]

INVITES = "auth.invites"
TOKENS = "auth.invite-tokens"
REVOKED = "auth.invite-revoked"
DAYS_MIN, DAYS_MAX = 1, 90
TOKEN_BYTES = 32
TOKEN_LENGTH = 43
"""``token_urlsafe(32)``: 32 bytes in unpadded base64url."""
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_ID_ALPHABET = frozenset("0123456789abcdef")
_BILLER_ALPHABET = _TOKEN_ALPHABET
"""``validator.web.partners.BILLER_ID``, as a set: this module is imported by the web app, so it
must not import it back."""
BILLER_ID_MAX = 128
EMAIL_MAX = 254

InviteState = Literal["active", "expired", "revoked"]


class InviteError(ValidatorError, ValueError):
    """An invite cannot be made as asked (days out of range, a malformed biller ID or email)."""


@dataclass(frozen=True)
class Invite:
    id: str
    """``inv_`` + 12 hex characters; not a secret (lists and the audit trail show it)."""
    biller_id: str
    email: str | None
    """Whom it was sent to, for staff's own bookkeeping; the link works for whoever holds it."""
    created_at: str
    expires_at: str
    created_by: str
    """``Principal.who`` of its maker, or ``cli:USER``."""
    revoked_at: str | None = None
    revoked_by: str | None = None

    def json(self) -> dict[str, str | None]:
        """The stored record: everything but the revocation, which lives apart (see the module)."""
        return {"id": self.id, "biller_id": self.biller_id, "email": self.email, "created_at": self.created_at,
                "expires_at": self.expires_at, "created_by": self.created_by}


def _seconds(moment: datetime) -> str:
    return iso_z(moment.replace(microsecond=0))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _check_email(email: str | None) -> str | None:
    """An address on one line, with an ``@``: it is shown in lists, never mailed by us, so only
    what would garble a list or a log is refused."""
    if email is None:
        return None
    email = email.strip()
    if not email:
        return None
    if (len(email) > EMAIL_MAX or "@" not in email or any(c.isspace() or not c.isprintable() for c in email)):
        raise InviteError(f"{email[:80]!r} is not an email address")
    return email


def create_invite(
    store: Store, biller_id: str, *, days: int = 14, email: str | None = None, created_by: str, now: datetime
) -> tuple[Invite, str]:
    """A new invite for `biller_id`, valid `days` (1–90) days from `now`, and its secret token.

    The token is returned here once and never again: only its digest is stored. Whether the
    biller exists is the caller's check (it knows the CRM folder); its ID's shape is checked here.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not DAYS_MIN <= days <= DAYS_MAX:
        raise InviteError(f"an invite lasts {DAYS_MIN}–{DAYS_MAX} days, not {days!r}")
    if not 1 <= len(biller_id) <= BILLER_ID_MAX or not set(biller_id) <= _BILLER_ALPHABET:
        raise InviteError("a biller ID is 1–128 letters, digits, '-' and '_'")
    email = _check_email(email)
    start = now.replace(microsecond=0)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    while True:  # 48-bit IDs: a collision is a one-in-billions event, but add() makes it harmless
        invite = Invite(id="inv_" + secrets.token_hex(6), biller_id=biller_id, email=email,
                        created_at=_seconds(start), expires_at=_seconds(start + timedelta(days=days)),
                        created_by=created_by)
        if store.add(INVITES, invite.id, json.dumps(invite.json()).encode()):
            break
    store.put(TOKENS, _digest(token), invite.id.encode())
    return invite, token


def well_formed_token(token: str) -> bool:
    """The shape of a token we issue: checked before hashing or asking the store, so garbage
    from a URL costs nothing."""
    return len(token) == TOKEN_LENGTH and set(token) <= _TOKEN_ALPHABET


def _well_formed_id(invite_id: str) -> bool:
    return len(invite_id) == 16 and invite_id.startswith("inv_") and set(invite_id[4:]) <= _ID_ALPHABET


def _decode(raw: bytes) -> Invite | None:
    """A stored record; None if it does not parse (a store edited by hand): an invite that
    cannot be read is one that does not open."""
    try:
        data = json.loads(raw)
        email = data["email"]
        return Invite(id=str(data["id"]), biller_id=str(data["biller_id"]),
                      email=None if email is None else str(email), created_at=str(data["created_at"]),
                      expires_at=str(data["expires_at"]), created_by=str(data["created_by"]))
    except (ValueError, KeyError, TypeError):
        return None


def _with_revocation(store: Store, invite: Invite) -> Invite:
    raw = store.get(REVOKED, invite.id)
    if raw is None:
        return invite
    try:
        data = json.loads(raw)
        at, by = str(data["at"]), str(data["by"])
    except (ValueError, KeyError, TypeError):
        at, by = invite.created_at, "unknown"  # a revocation that cannot be read still revokes
    return Invite(**{**invite.__dict__, "revoked_at": at, "revoked_by": by})


def get_invite(store: Store, invite_id: str) -> Invite | None:
    """The invite with this ID (active, expired or revoked), or None."""
    if not _well_formed_id(invite_id):
        return None
    raw = store.get(INVITES, invite_id)
    invite = _decode(raw) if raw is not None else None
    return _with_revocation(store, invite) if invite is not None else None


def invite_state(invite: Invite, now: datetime) -> InviteState:
    """Revoked wins over expired: it says someone acted on it."""
    if invite.revoked_at is not None:
        return "revoked"
    return "active" if now < _parse(invite.expires_at) else "expired"


def open_invite(store: Store, token: str, *, now: datetime) -> Invite | None:
    """The active invite whose link carries `token`; None if the token is malformed, unknown,
    expired or revoked (the caller says the same thing in each case, so a guesser learns nothing)."""
    if not well_formed_token(token):
        return None
    invite_id = store.get(TOKENS, _digest(token))
    if invite_id is None:
        return None
    invite = get_invite(store, invite_id.decode("ascii", "replace"))
    if invite is None or invite_state(invite, now) != "active":
        return None
    return invite


def list_invites(store: Store, biller_id: str | None = None) -> list[Invite]:
    """Every invite (of `biller_id`, if given), newest first; expired and revoked ones too."""
    found = []
    for invite_id in store.keys(INVITES):
        invite = get_invite(store, invite_id)
        if invite is not None and (biller_id is None or invite.biller_id == biller_id):
            found.append(invite)
    return sorted(found, key=lambda i: (i.created_at, i.id), reverse=True)


def revoke_invite(store: Store, invite_id: str, *, by: str, now: datetime) -> bool:
    """Revoke the invite: its link stops working at once. The record is kept (lists and the
    audit trail still name it). False if there is no such invite or it was already revoked
    (then it stays as it was: the first revocation's time and author are the ones kept)."""
    if get_invite(store, invite_id) is None:
        return False
    value = json.dumps({"at": _seconds(now), "by": by}).encode()
    return store.add(REVOKED, invite_id, value)


def invite_url(base_url: str, token: str) -> str:
    """The link sent to the partner."""
    return f"{base_url.rstrip('/')}/invite/{token}"


def principal_for(invite: Invite) -> Principal:
    """Who an opened invite signs in as: a partner that may upload metadata and run test logins
    (``write``) for its own biller, and nothing else."""
    return Principal("partner", name=invite.id, billers=frozenset({invite.biller_id}), access="write")
