"""URLs as they may be shown: with any user name and password hidden (SECURITY.md §4).

Apart from the fetcher so that reports can hide a password in a URL without importing urllib3.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)[^/?#]*@")
"""The user name and password of a well-formed URL (group 1: its scheme and slashes)."""
_LOOSE_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?[/\\]*)[\s\S]*@")


def redact_url(url: str) -> str:
    """`url` with any user name and password replaced by ``***``: safe to show and to store.

    Everything from the scheme up to the last ``@`` before the query is hidden, whether or not
    the URL parses: a password may hold a ``/`` (``https://admin:2024/Secret@host/``, which
    parses as host "admin", port 2024), or the URL may have no ``//`` at all
    (``https:/\\admin:secret@host/``). An ``@`` only in the query is hidden likewise when the URL
    has no valid host (``https://admin:pa?ss@host/``).
    """
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    if "@" in url[:cut]:
        return _LOOSE_USERINFO.sub(r"\1***@", url[:cut]) + url[cut:]
    if "@" in url and not _has_host(url):
        return _LOOSE_USERINFO.sub(r"\1***@", url)
    return url


def _has_host(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    return bool(parts.hostname)
