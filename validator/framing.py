"""May the IdP's sign-in page be framed by the portal? ``X-Frame-Options`` (RFC 7034) and CSP
``frame-ancestors`` (CSP Level 3 §6.4.2), read from one live response through the SSRF-safe fetcher.

Where both are sent, browsers obey ``frame-ancestors`` and ignore ``X-Frame-Options``. Several
CSP headers (joined with commas) are several policies, and each must allow the frame; within a
policy only the first ``frame-ancestors`` directive counts (CSP Level 3 §2.2.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from metadata.fetch import FetchError, FetchPolicy, fetch

_DEFAULT_PORT = {"https": 443, "http": 80}
# Possessive quantifiers: each class stops at the character that must follow it, so giving back
# never helps a match, and not trying costs a 5 MiB source one pass instead of several.
_SOURCE = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*+)://)?(?P<host>\*|(?:\*\.)?[^:/*]++)"
                     r"(?::(?P<port>\d++|\*))?(?P<path>/.*)?$")


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return cls(scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORT.get(scheme, 0))

    def __str__(self) -> str:
        default = _DEFAULT_PORT.get(self.scheme) == self.port
        return f"{self.scheme}://{self.host}" + ("" if default else f":{self.port}")


@dataclass(frozen=True)
class FrameProbe:
    """What the sign-in URL said about being framed."""

    url: str
    status: int | None = None
    x_frame_options: str | None = None
    frame_ancestors: tuple[str, ...] = ()
    """The sources of each CSP policy's first ``frame-ancestors`` directive, as sent."""
    error: str | None = None
    """Why the URL could not be asked (the headers are then unknown)."""

    def forbids(self, origin: str | None) -> bool | None:
        """Whether a page of `origin` is refused as the frame's parent; None when unknown."""
        if self.error is not None:
            return None
        own = Origin.of(self.url)
        parent = Origin.of(origin) if origin else None
        if self.frame_ancestors:
            return any(not any(_matches(s, parent, own) for s in policy.split()) for policy in self.frame_ancestors)
        xfo = (self.x_frame_options or "").strip().upper()
        if xfo == "DENY":
            return True
        if xfo == "SAMEORIGIN":
            return parent != own
        return False


def _matches(source: str, parent: Origin | None, own: Origin) -> bool:
    """CSP Level 3 §6.7.2.8, for an ancestor's origin (its path is "/")."""
    source = source.lower()
    if source == "'self'":
        return parent == own
    if parent is None or source == "'none'":
        return False
    if source == "*":
        return parent.scheme in ("http", "https")
    if re.fullmatch(r"[a-z][a-z0-9+.-]*:", source):  # a scheme source
        return _scheme_allows(source[:-1], parent.scheme)
    found = _SOURCE.match(source)
    return found is not None and _host_source_matches(found, parent, own)


def _scheme_allows(scheme: str, actual: str) -> bool:
    """A source's scheme matches its own, and http also allows https."""
    return actual == scheme or (scheme == "http" and actual == "https")


def _host_source_matches(found: re.Match[str], parent: Origin, own: Origin) -> bool:
    scheme = found["scheme"] or own.scheme
    if not _scheme_allows(scheme, parent.scheme):
        return False
    host = found["host"]
    if not (parent.host.endswith(host[1:]) if host.startswith("*.") else host == parent.host):
        return False
    port = found["port"]
    wanted = _DEFAULT_PORT.get(scheme, 0) if port is None else None if port == "*" else int(port)
    return wanted is None or wanted == parent.port or (port is None and parent.port == _DEFAULT_PORT.get(
        parent.scheme, 0))


def read_headers(url: str, status: int | None, headers: dict[str, str]) -> FrameProbe:
    policies = []
    for policy in headers.get("content-security-policy", "").split(","):
        for directive in policy.split(";"):
            name, _, value = directive.strip().partition(" ")
            if name.lower() == "frame-ancestors":
                policies.append(value.strip())
                break  # only the first one of a policy counts
    return FrameProbe(url, status, headers.get("x-frame-options"), tuple(policies))


def probe_framing(url: str, policy: FetchPolicy | None = None) -> FrameProbe:
    """Ask `url` (the IdP's sign-in URL, without a SAMLRequest) for its framing headers.

    An error status still carries its headers: an IdP answers such a bare request with a 400
    page, framed or not exactly as its real sign-in page is.
    """
    policy = policy or FetchPolicy()
    try:
        result = fetch(url, policy)
    except FetchError as exc:
        if exc.kind != "status":
            return FrameProbe(url, error=exc.message)
        status = exc.diagnostics.get("status")
        found = exc.diagnostics.get("framing_headers", [])
        headers = dict(h.split(": ", 1) for h in (found if isinstance(found, list) else []))
        return read_headers(url, status if isinstance(status, int) else None, headers)
    return read_headers(url, result.status, result.headers)


def probe_metadata_url(url: str, entity_id: str, policy: FetchPolicy) -> str:
    """What an inferred metadata URL answered, through the SSRF-safe fetcher: whether it serves
    metadata naming `entity_id`. Said in a sentence; never raises."""
    try:
        result = fetch(url, policy)
    except FetchError as exc:
        return f"not confirmed: {exc.message}"
    body = result.body
    if b"EntityDescriptor" not in body:
        return f"not confirmed: {url} answered HTTP {result.status} with no SAML metadata"
    named = escape(entity_id).encode("utf-8", "replace") in body
    return (f"confirmed: {url} answered HTTP {result.status} with SAML metadata "
            + ("naming this entity ID" if named else "for another entity ID: ask the partner which is theirs"))
