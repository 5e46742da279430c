"""What a metadata fetch saw, and how its failures are told (SECURITY.md §4: "diagnostics say what
came back").

:class:`FetchRun` is one call of :func:`metadata.fetch.fetch`: its deadline, the redirects it
followed and what it has seen so far. Every refusal or failure becomes a :class:`FetchError`
made by :meth:`FetchRun.error`, carrying those diagnostics; :func:`failure` names a connection
failure by its innermost cause, and :func:`preview` shows the first bytes of a body safely.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import urllib3.exceptions

from metadata.errors import MetadataError
from metadata.xml import visible

if TYPE_CHECKING:
    from metadata.fetch import FetchPolicy

__all__ = ["Diagnostics", "FetchError", "FetchRun", "failure", "preview"]

Diagnostics = dict[str, str | int | list[str]]


class FetchError(MetadataError, OSError):
    """A metadata URL was refused, or fetching it failed.

    `kind` is one of ``scheme``, ``userinfo``, ``bad-url``, ``dns``, ``forbidden-address``,
    ``connect``, ``timeout``, ``tls``, ``status``, ``redirects``, ``too-large``. `message` says
    what was wrong and where; `url` is the URL being fetched when it happened (a redirect target,
    perhaps). `diagnostics` holds what was seen: ``requested_url``, ``redirects``, ``resolved``,
    ``address``, ``status``, ``content_type``, ``body_start`` (shown safely).
    """

    def __init__(self, kind: str, message: str, *, url: str, diagnostics: Diagnostics | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.url = url
        self.diagnostics: Diagnostics = dict(diagnostics or {})


@dataclass
class FetchRun:
    """One call of :func:`metadata.fetch.fetch`: its policy, its deadline and what it has seen so far."""

    policy: FetchPolicy
    deadline: float
    """``time.monotonic()`` value after which the fetch has failed."""
    tls: ssl.SSLContext
    requested_url: str
    url: str
    """The URL being fetched now (a redirect target, perhaps)."""
    redirects: list[str] = field(default_factory=list)
    diagnostics: Diagnostics = field(default_factory=dict)

    def error(self, kind: str, message: str) -> FetchError:
        diagnostics: Diagnostics = {"requested_url": self.requested_url, **self.diagnostics}
        if self.redirects:
            diagnostics["redirects"] = list(self.redirects)
            message += f" (reached by redirect: {' → '.join([self.requested_url, *self.redirects])})"
        return FetchError(kind, message, url=self.url, diagnostics=diagnostics)

    def past_deadline(self) -> bool:
        return time.monotonic() >= self.deadline


def failure(exc: BaseException, where: str, run: FetchRun, *, cut: bool = False) -> FetchError:
    """The FetchError for a connection that failed at `where`: connect, timeout, tls, by its cause."""
    policy = run.policy
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return run.error("connect", f"could not connect to {where}: {_reason(exc)}")
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return run.error("timeout", f"connecting to {where} took longer than {policy.connect_timeout:g} s")
    if cut or run.past_deadline() or isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError):
        return run.error(
            "timeout", f"{where} did not deliver a whole response within the {policy.total_timeout:g} s time limit"
        )
    if isinstance(exc, ssl.SSLError | urllib3.exceptions.SSLError):
        return run.error("tls", f"the TLS connection to {where} failed: {_reason(exc)}")
    return run.error("connect", f"the connection to {where} failed: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    """The innermost explanation of a connection failure, without urllib3's object reprs."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verification failed: {exc.verify_message}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def preview(data: bytes, n: int = 200) -> str:
    """The first bytes of a body on one line, quoted, decoded leniently, invisible characters shown."""
    text = " ".join(data[:n].decode("utf-8", "replace").split())
    return f'"{visible(text)}{"…" if len(data) > n else ""}"'
