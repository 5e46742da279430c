"""Near misses: why a value that a partner sent is not the value the CRM record expects.

Go-live fails on small things — a trailing slash, ``http`` for ``https``, a claim called
``accountnumber`` where the record says ``AccountNumber``, or Entra's
``http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress`` where the record says
``Email``. These functions name the difference so that the fix can be precise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


def uri_difference(expected: str, actual: str) -> str | None:
    """A short description of how `actual` misses `expected`, or None when it is not a near miss."""
    if expected == actual:
        return None
    if expected.strip() == actual.strip():
        return "surrounding spaces"
    reasons = []
    e, a = expected.strip(), actual.strip()
    if e.rstrip("/") == a.rstrip("/") and e != a:
        return "a trailing slash" if a.endswith("/") else "a missing trailing slash"
    if e.lower() == a.lower():
        return "letter case"
    for scheme_e, scheme_a in (("https://", "http://"), ("http://", "https://")):
        if e.startswith(scheme_e) and a.startswith(scheme_a) and e[len(scheme_e):] == a[len(scheme_a):]:
            return f"{scheme_a[:-3]} instead of {scheme_e[:-3]}"
    ne, na = _loose(e), _loose(a)
    if ne == na:
        reasons.append("scheme, case or trailing slash")
    return reasons[0] if reasons else None


def _loose(value: str) -> str:
    return re.sub(r"^https?://", "", value.strip().lower()).rstrip("/")


# Claim names that identity providers use for the same thing. Each group maps to one key.
_SYNONYMS = [
    {"email", "emailaddress", "mail", "emailaddr", "useremail", "0.9.2342.19200300.100.1.3"},
    {"firstname", "givenname", "given_name", "2.5.4.42"},
    {"lastname", "surname", "sn", "familyname", "family_name", "2.5.4.4"},
    {"displayname", "fullname", "2.16.840.1.113730.3.1.241"},
    {"upn", "userprincipalname", "eduPersonPrincipalName".lower(), "1.3.6.1.4.1.5923.1.1.1.6"},
    {"uid", "userid", "0.9.2342.19200300.100.1.1"},
    {"username", "login"},
    {"role", "roles"},
    {"groups", "group", "memberof"},
]
_SYNONYM_KEY = {name: min(group) for group in _SYNONYMS for name in group}


def claim_key(name: str) -> str:
    """A loose key for a claim name: the last URI or OID segment, vendor prefixes dropped,
    case and punctuation ignored, common synonyms joined (``mail`` ≈ ``emailaddress`` ≈ ``Email``)."""
    text = name.strip()
    if text.lower().startswith("urn:oid:"):
        text = text[8:]
    elif "://" in text or text.startswith("urn:"):
        text = re.split(r"[/:#]", text.rstrip("/"))[-1]
    lowered = text.lower()
    for prefix in ("user.", "user:", "custom:", "claims."):
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix):]
    if re.fullmatch(r"[0-9.]+", lowered):
        return _SYNONYM_KEY.get(lowered, lowered)
    squashed = re.sub(r"[^a-z0-9]", "", lowered)
    return _SYNONYM_KEY.get(squashed, _SYNONYM_KEY.get(lowered, squashed))


@dataclass(frozen=True)
class ClaimNearMiss:
    expected: str
    actual: str
    reason: str
    via_friendly_name: bool = False


def claim_near_misses(
    expected: str, offered: Iterable[tuple[str, str | None]]
) -> list[ClaimNearMiss]:
    """Offered claims that are probably `expected` under another name.

    `offered` holds ``(Name, FriendlyName)`` pairs. An exact Name match is not a near miss.
    """
    misses = []
    key = claim_key(expected)
    for name, friendly in offered:
        if name == expected:
            continue
        if friendly is not None and friendly == expected:
            misses.append(ClaimNearMiss(expected, name, f"its FriendlyName is {expected!r}, but the portal "
                                                        "matches the Name attribute", via_friendly_name=True))
        elif name.strip() == expected:
            misses.append(ClaimNearMiss(expected, name, "surrounding spaces"))
        elif name.lower() == expected.lower():
            misses.append(ClaimNearMiss(expected, name, "letter case"))
        elif claim_key(name) == key:
            form = "a URI form" if ("://" in name or name.startswith("urn:")) else "another spelling"
            misses.append(ClaimNearMiss(expected, name, f"{form} of the same claim"))
    return misses
