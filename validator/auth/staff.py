"""Local staff accounts: an email and an Argon2id password hash, and signing in with them.

Staff see and change every biller, so a staff password is the most valuable secret the app
holds. Hence:

* passwords are hashed with Argon2id through ``argon2.PasswordHasher()`` with its defaults (a
  slow, memory-hard hash: a stolen store does not give the passwords away cheaply), and
  rehashed on the next sign-in when those defaults grow;
* :func:`sign_in` answers None for a wrong password and for an unknown email alike, and both
  cost one Argon2 verification (an unknown email is checked against a dummy hash made with the
  same parameters), so neither the answer nor its timing says which emails have accounts;
* guessing is rate limited per account and per client address (see :func:`sign_in`).

Store namespaces:

``auth.staff``                   email (normalised) → ``{"email", "created_at", "hash"}`` as JSON.
``auth.staff-account-failures``  ``<sha256 of the email>.<slot>`` → when the attempt began; ttl 15 min.
``auth.staff-address-failures``  ``<sha256 of the address>.<slot>`` → the same, per client address.

The failure keys are digests so that whatever a client types as an email, however long, makes
a key of fixed size, and so that the counts do not list who was tried.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from metadata.store import Store
from validator.auth.principal import Principal
from validator.errors import ValidatorError
from validator.json_value import iso_z

__all__ = [
    "ACCOUNT_FAILURES_MAX", "ADDRESS_FAILURES_MAX", "EMAIL_MAX", "FAILURE_WINDOW_SECONDS", "PASSWORD_MIN",
    "StaffAccount", "StaffError", "add_staff", "check_email", "get_staff", "has_staff", "list_staff",
    "principal_for", "remove_staff", "sign_in",
]

ACCOUNTS = "auth.staff"
ACCOUNT_FAILURES = "auth.staff-account-failures"
ADDRESS_FAILURES = "auth.staff-address-failures"
PASSWORD_MIN = 12
EMAIL_MAX = 254
FAILURE_WINDOW_SECONDS = 15 * 60
ACCOUNT_FAILURES_MAX = 5
"""More failures than this for one email within the window, and further attempts are refused."""
ADDRESS_FAILURES_MAX = 20
"""More failures than this from one client address within the window, and further attempts are refused."""

_hasher = PasswordHasher()
"""Module-level so that tests can swap in a cheaper (or counting) hasher."""


class StaffError(ValidatorError, ValueError):
    """A staff account cannot be added as asked: it exists, the email is malformed, the password short."""


@dataclass(frozen=True)
class StaffAccount:
    email: str
    """Normalised: stripped and lower-case; the account's one name."""
    created_at: str
    """ISO 8601 UTC with a ``Z``, to the second."""


def check_email(email: str) -> str:
    """`email` stripped and lower-cased, if it looks like an address (one ``@``, a dotted domain,
    nothing blank or unprintable); otherwise :class:`StaffError`. Deliberately no regular
    expression: this runs on whatever a sign-in form is sent."""
    email = email.strip().lower()
    parts = email.split("@")
    domain = parts[-1]
    dotted = "." in domain and ".." not in domain and not domain.startswith(".") and not domain.endswith(".")
    if (len(email) > EMAIL_MAX or len(parts) != 2 or not parts[0] or not dotted
            or any(c.isspace() or not c.isprintable() for c in email)):
        raise StaffError(f"{email[:80]!r} is not an email address")
    return email


def _check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise StaffError(f"a staff password needs at least {PASSWORD_MIN} characters")


def _seconds(moment: datetime) -> str:
    return iso_z(moment.replace(microsecond=0))


def _decode(raw: bytes) -> tuple[StaffAccount, str] | None:
    """A stored account and its hash; None if the record does not parse (a store edited by hand):
    an account that cannot be read is one nobody signs in to."""
    try:
        data = json.loads(raw)
        return StaffAccount(email=str(data["email"]), created_at=str(data["created_at"])), str(data["hash"])
    except (ValueError, KeyError, TypeError):
        return None


def _encode(account: StaffAccount, password_hash: str) -> bytes:
    return json.dumps({"email": account.email, "created_at": account.created_at, "hash": password_hash}).encode()


def add_staff(store: Store, email: str, password: str, *, now: datetime) -> StaffAccount:
    """A new staff account. An existing one is never overwritten (the store's atomic ``add``
    decides between two racing adds); changing a password is removing and adding again."""
    email = check_email(email)
    _check_password(password)
    if store.get(ACCOUNTS, email) is not None:  # say so before spending a hash; add() still decides
        raise StaffError(f"a staff account for {email} exists already")
    account = StaffAccount(email=email, created_at=_seconds(now))
    if not store.add(ACCOUNTS, email, _encode(account, _hasher.hash(password))):
        raise StaffError(f"a staff account for {email} exists already")
    return account


def _load(store: Store, email: str) -> tuple[StaffAccount, str, bytes] | None:
    """The account for `email` (normalised here), its hash, and the record as stored."""
    raw = store.get(ACCOUNTS, email.strip().lower())
    found = _decode(raw) if raw is not None else None
    return (*found, raw) if found is not None and raw is not None else None


def get_staff(store: Store, email: str) -> StaffAccount | None:
    """The account for `email` (normalised here), or None, also for something that is no email."""
    found = _load(store, email)
    return found[0] if found is not None else None


def remove_staff(store: Store, email: str) -> bool:
    """Remove the account; False if there was none. Its sessions are the web layer's to end."""
    return store.delete(ACCOUNTS, email.strip().lower())


def list_staff(store: Store) -> list[StaffAccount]:
    """Every staff account, sorted by email."""
    found = (get_staff(store, email) for email in store.keys(ACCOUNTS))
    return sorted((a for a in found if a is not None), key=lambda a: a.email)


def has_staff(store: Store) -> bool:
    """Whether any staff account exists: whether anyone can sign in as staff at all."""
    return bool(store.keys(ACCOUNTS))


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of a random password nobody knows, made with `hasher`'s own parameters, so that
    checking an unknown email against it costs what checking a real account costs. Made once
    per process (the first unknown email pays one extra hash; a hard-coded hash would instead
    go stale, and cost less than real ones, once the library's defaults grow)."""
    return hasher.hash(secrets.token_urlsafe(32))


def _verified(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _claim(store: Store, ns: str, subject: str, limit: int, stamp: bytes) -> str | None:
    """Claim one of `subject`'s ``limit + 1`` attempt slots; the slot's key, or None if all are taken."""
    for slot in range(limit + 1):
        key = f"{subject}.{slot}"
        if store.add(ns, key, stamp, ttl=FAILURE_WINDOW_SECONDS):
            return key
    return None


def _clear(store: Store, ns: str, subject: str, limit: int) -> None:
    for slot in range(limit + 1):
        store.delete(ns, f"{subject}.{slot}")


def sign_in(store: Store, email: str, password: str, *, address: str, now: datetime) -> StaffAccount | None:
    """The account whose password this is; None for a wrong password, an unknown or malformed
    email, and a refused attempt, alike.

    Rate limit: once more than :data:`ACCOUNT_FAILURES_MAX` attempts on one email, or more than
    :data:`ADDRESS_FAILURES_MAX` from one `address`, have failed within
    :data:`FAILURE_WINDOW_SECONDS`, further attempts are refused without checking the password,
    and are not counted, until the oldest failure is a window old (a sliding window).

    How it is counted, correctly under any number of workers: each email and each address has
    ``MAX + 1`` slots, store keys with the window as ttl. An attempt first claims a free slot of
    each with the store's atomic ``add`` (two racing workers can never claim the same one), and
    only then checks the password; when no slot is free it is refused. A failed attempt keeps
    its slots, so they expire a window after it; a success frees its address slot and every
    slot of the account (it clears the account's count). Claiming *before* checking is what
    makes the limit exact: a burst of parallel guesses cannot all pass a "count, then check"
    before any of them records its failure. The window is the store's ttl, so the store's clock
    decides it (one clock for every worker); `now` is only written into the slots, for
    whoever reads the store.
    """
    stamp = _seconds(now).encode()
    who, where = _digest(email.strip().lower()), _digest(address)
    address_slot = _claim(store, ADDRESS_FAILURES, where, ADDRESS_FAILURES_MAX, stamp)
    if address_slot is None:
        return None
    if _claim(store, ACCOUNT_FAILURES, who, ACCOUNT_FAILURES_MAX, stamp) is None:
        store.delete(ADDRESS_FAILURES, address_slot)  # a refused attempt is no failure: it tried nothing
        return None
    found = _load(store, email)
    if found is None:
        _verified(_dummy_hash(_hasher), password)  # the same cost as a real account; the answer is None anyway
        return None
    account, password_hash, raw = found
    if not _verified(password_hash, password):
        return None
    _clear(store, ACCOUNT_FAILURES, who, ACCOUNT_FAILURES_MAX)
    store.delete(ADDRESS_FAILURES, address_slot)
    if _hasher.check_needs_rehash(password_hash):
        _rehash(store, raw, account, password)
    return account


def _rehash(store: Store, raw: bytes, account: StaffAccount, password: str) -> None:
    """Store the password hashed with the hasher's current parameters, without ever bringing
    back an account removed (or replaced) since it was read: the record is taken atomically and
    the new one added only if what was taken is what was read; anything else is put back as it
    was, with ``add`` so that an account added meanwhile is not overwritten either."""
    fresh = _encode(account, _hasher.hash(password))
    taken = store.take(ACCOUNTS, account.email)
    if taken is None:
        return
    store.add(ACCOUNTS, account.email, fresh if taken == raw else taken)


def principal_for(account: StaffAccount) -> Principal:
    """Who a signed-in staff member is: every biller, read and write."""
    return Principal("staff", name=account.email, billers=None, access="write")
