"""CSRF tokens for the IdP's own forms that change state.

A token is an HMAC, under a key derived from the IdP's secret, of the IdP session it was shown
to and of what its form does: another site cannot compute it, and a token from the attacker's own
browser is worth nothing in the victim's (its session differs).
"""

from __future__ import annotations

import hashlib
import hmac

from .state import IdPState, shared_secret

FIELD = "csrf"


def csrf_token(idp: IdPState, sid: str, purpose: str) -> str:
    """The token for the form that does `purpose` in the IdP session `sid`."""
    key = hmac.new(shared_secret(idp.store), b"idp csrf", hashlib.sha256).digest()  # not the NameID key
    return hmac.new(key, f"{sid}\x00{purpose}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(idp: IdPState, sid: str, token: str, purpose: str) -> bool:
    return bool(sid) and hmac.compare_digest(token.encode(), csrf_token(idp, sid, purpose).encode())
