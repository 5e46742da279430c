"""URLs as they may be shown: with any user name and password hidden (SECURITY.md §4).

Apart from the fetcher so that reports can hide a password in a URL without importing urllib3.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)[^/?#]*@")
"""The user name and password of a well-formed URL (group 1: its scheme and slashes)."""
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
"""A URL's scheme; one letter is not one but a Windows drive (``C:\\x``)."""
_LOOSE_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?[/\\]*)[\s\S]*@")


def redact_url(url: str) -> str:
    """`url` with any user name and password replaced by ``***``: safe to show and to store.

    A well-formed URL loses its userinfo (``https://***@host/``). A URL whose host is not
    plausible as a real one (no dot, not an IP address, not localhost) or does not parse, and
    that has an ``@``, has everything from its scheme up to its last ``@`` hidden: such a URL is a
    password holding a ``/``, ``?`` or ``#`` far more often than anything else
    (``https://admin:2024/Secret@host/`` parses as host "admin", port 2024;
    ``https:/\\admin:secret@host/`` has no host at all). An ``@`` in the path or query of a URL
    with a plausible host (``https://idp.example.com/@acme/sso``) is left alone, as is anything
    without a scheme (a file path).
    """
    if "@" not in url:  # the common case, once per endpoint of a 10,000-entity aggregate
        return url
    redacted = USERINFO.sub(r"\1***@", url)
    further = "@" in redacted.replace("***@", "", 1)
    if not further or not SCHEME.match(url) or _plausible_host(USERINFO.sub(r"\1", url)):
        return redacted
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    if "@" in url[:cut]:
        return _LOOSE_USERINFO.sub(r"\1***@", url[:cut]) + url[cut:]
    return _LOOSE_USERINFO.sub(r"\1***@", url)


def _plausible_host(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    host = parts.hostname or ""
    if "@" in parts.netloc or not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "." in host or host == "localhost"
    return True
