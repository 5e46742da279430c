"""API tokens for onboarding pipelines: a named bearer secret that reads (or also writes) some
billers, or all of them, through the JSON API.

A token's secret is the only credential, so:

* it is ``spf_`` + ``secrets.token_urlsafe(32)`` (256 random bits; the prefix lets secret
  scanners and people recognise one), shown once by :func:`create_token` and never stored;
* the store keeps only its SHA-256 (hex), as the key the token is found by. A fast hash is right
  here: a slow password hash (Argon2) exists to make guessing a *low-entropy* secret expensive,
  and nobody enumerates 2**256 secrets. Finding a token by its digest compares nothing secret
  byte by byte, so it leaks no timing, and costs one lookup however many tokens there are;
* its name is not a secret: lists, the audit trail and revocation name a token by it.

Store namespaces: ``auth.tokens`` (name → the token as JSON, with its digest; kept for ever, so a
name is never reused and the audit trail can always name it), ``auth.token-digests`` (digest →
name) and ``auth.token-revoked`` (name → ``{"at": …}``; written once with the store's atomic
``add``, so the first revocation's time is the one kept and the record itself is never rewritten).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from metadata.store import Store
from validator.auth.principal import Access, Principal
from validator.errors import ValidatorError
from validator.json_value import iso_z

__all__ = [
    "NAME_MAX", "PREFIX", "ApiToken", "TokenError", "bearer", "create_token", "get_token", "list_tokens",
    "principal_for", "revoke_token", "well_formed_secret",
]

TOKENS = "auth.tokens"
DIGESTS = "auth.token-digests"
REVOKED = "auth.token-revoked"
PREFIX = "spf_"
SECRET_BYTES = 32
SECRET_LENGTH = len(PREFIX) + 43
"""``spf_`` and ``token_urlsafe(32)``: 32 bytes in unpadded base64url are 43 characters."""
NAME_MAX = 64
BILLER_ID_MAX = 128
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_NAME_ALPHABET = _URLSAFE | {"."}
_BILLER_ALPHABET = _URLSAFE
"""``validator.web.partners.BILLER_ID``, as a set: this module is imported by the web app, so it
must not import it back."""
_ACCESS: tuple[Access, ...] = ("read", "write")


class TokenError(ValidatorError, ValueError):
    """A token cannot be made as asked: its name is taken or malformed, a biller ID malformed,
    the access neither ``read`` nor ``write``."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    billers: frozenset[str] | None
    """The billers it may act on; None: every biller (the CLI's ``--billers all``)."""
    access: Literal["read", "write"]
    created_at: str
    created_by: str
    """``Principal.who`` of its maker, or ``cli:USER``."""
    revoked_at: str | None = None


def _seconds(moment: datetime) -> str:
    return iso_z(moment.replace(microsecond=0))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _check_name(name: str) -> None:
    if not 1 <= len(name) <= NAME_MAX or not set(name) <= _NAME_ALPHABET:
        raise TokenError(f"a token name is 1–{NAME_MAX} letters, digits, '.', '-' and '_', not {name[:80]!r}")


def _check_billers(billers: Iterable[str] | None) -> frozenset[str] | None:
    if billers is None:
        return None
    found = frozenset(billers)
    if not found:
        raise TokenError("a token needs at least one biller, or all of them")
    for biller_id in sorted(found):
        if not 1 <= len(biller_id) <= BILLER_ID_MAX or not set(biller_id) <= _BILLER_ALPHABET:
            raise TokenError(f"a biller ID is 1–{BILLER_ID_MAX} letters, digits, '-' and '_', not {biller_id[:80]!r}")
    return found


def create_token(
    store: Store, name: str, *, billers: frozenset[str] | None, access: Literal["read", "write"], created_by: str,
    now: datetime,
) -> tuple[ApiToken, str]:
    """A new token and its secret, which is returned here once and never again.

    The name is unique for ever (the store's atomic ``add`` decides between two racing
    creations; a revoked token keeps its name). The digest is stored first: should the name
    turn out to be taken, it is removed again, and until then it points at a record whose own
    digest differs, which :func:`bearer` refuses."""
    _check_name(name)
    biller_set = _check_billers(billers)
    if access not in _ACCESS:
        raise TokenError(f"a token's access is 'read' or 'write', not {access!r}")
    if store.get(TOKENS, name) is not None:
        raise TokenError(f"a token named {name!r} exists already (a revoked token keeps its name)")
    secret = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    token = ApiToken(name=name, billers=biller_set, access=access, created_at=_seconds(now), created_by=created_by)
    digest = _digest(secret)
    store.put(DIGESTS, digest, name.encode("ascii"))
    record = {"name": name, "billers": None if biller_set is None else sorted(biller_set), "access": access,
              "created_at": token.created_at, "created_by": created_by, "sha256": digest}
    if not store.add(TOKENS, name, json.dumps(record).encode()):
        store.delete(DIGESTS, digest)
        raise TokenError(f"a token named {name!r} exists already (a revoked token keeps its name)")
    return token, secret


def well_formed_secret(secret: str) -> bool:
    """The shape of a secret we issue: checked before hashing or asking the store, so garbage in
    an Authorization header costs nothing."""
    return len(secret) == SECRET_LENGTH and secret.startswith(PREFIX) and set(secret[len(PREFIX):]) <= _URLSAFE


def _decode(raw: bytes) -> tuple[ApiToken, str] | None:
    """A stored token and its digest; None if it does not parse (a store edited by hand): a
    token that cannot be read is one that does not open."""
    try:
        data = json.loads(raw)
        billers, access = data["billers"], data["access"]
        if access not in _ACCESS or not (billers is None or isinstance(billers, list)):
            return None
        token = ApiToken(name=str(data["name"]), billers=None if billers is None else frozenset(map(str, billers)),
                         access=access, created_at=str(data["created_at"]), created_by=str(data["created_by"]))
        return token, str(data["sha256"])
    except (ValueError, KeyError, TypeError):
        return None


def _revoked_at(store: Store, name: str) -> str | None:
    raw = store.get(REVOKED, name)
    if raw is None:
        return None
    try:
        return str(json.loads(raw)["at"])
    except (ValueError, KeyError, TypeError):
        return "unknown"  # a revocation that cannot be read still revokes


def _load(store: Store, name: str) -> tuple[ApiToken, str] | None:
    raw = store.get(TOKENS, name)
    found = _decode(raw) if raw is not None else None
    if found is None:
        return None
    token, digest = found
    return replace(token, revoked_at=_revoked_at(store, name)), digest


def get_token(store: Store, name: str) -> ApiToken | None:
    """The token with this name (revoked or not), or None."""
    found = _load(store, name)
    return found[0] if found is not None else None


def bearer(store: Store, secret: str, *, now: datetime) -> ApiToken | None:
    """The live token whose secret this is; None if it is malformed, unknown or revoked (the
    caller answers the same in each case, so a guesser learns nothing). Tokens do not expire:
    revocation ends them; `now` is taken so the web layer calls every credential alike."""
    del now
    if not well_formed_secret(secret):
        return None
    digest = _digest(secret)
    name = store.get(DIGESTS, digest)
    if name is None:
        return None
    found = _load(store, name.decode("ascii", "replace"))
    if found is None:
        return None
    token, stored_digest = found
    # The record must name this very digest: a digest left behind by a creation that lost its name
    # race, or a hand-edited index, never opens another token.
    if not hmac.compare_digest(stored_digest, digest) or token.revoked_at is not None:
        return None
    return token


def list_tokens(store: Store) -> list[ApiToken]:
    """Every token, revoked ones too, sorted by name."""
    found = (get_token(store, name) for name in store.keys(TOKENS))
    return sorted((t for t in found if t is not None), key=lambda t: t.name)


def revoke_token(store: Store, name: str, *, now: datetime) -> bool:
    """Revoke the token: it stops working at once. The record is kept (lists and the audit trail
    still name it). False if there is no such token or it was already revoked (then the first
    revocation's time is the one kept)."""
    if get_token(store, name) is None:
        return False
    return store.add(REVOKED, name, json.dumps({"at": _seconds(now)}).encode())


def principal_for(token: ApiToken) -> Principal:
    """Who a request bearing this token is: its billers, with its access."""
    return Principal("token", name=token.name, billers=token.billers, access=token.access)
