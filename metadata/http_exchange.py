"""One HTTP GET of a metadata fetch, to an address the address policy has already judged.

:func:`exchange` connects to the first checked address that answers (never a fresh DNS lookup),
sends the host name only for SNI, the certificate check and the ``Host`` header, and bounds the
whole exchange in time with a watchdog and the body in size while it streams. Proxy variables and
cookies play no part: urllib3's connection classes are used directly.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass

import urllib3.exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.response import HTTPResponse

from metadata.fetch_diagnostics import FetchError, FetchRun, failure, preview

__all__ = ["REDIRECT_STATUSES", "Reply", "Target", "exchange"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
_CHUNK = 64 * 1024
_PREVIEW_BYTES = 512


@dataclass(frozen=True)
class Target:
    """Where one GET goes, from a URL that passed the fetcher's checks."""

    scheme: str
    host: str
    """ASCII host name (IDNA) or IP literal without brackets: for DNS, SNI and the certificate check."""
    port: int
    path: str
    """The request target: path and query, percent-encoded."""
    host_header: str


@dataclass(frozen=True)
class Reply:
    """What one GET brought back."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    """The body of a 2xx response; the first bytes of any other."""


def exchange(target: Target, addresses: list[str], run: FetchRun) -> Reply:
    """One GET to one of `addresses`; the connection is closed before this returns."""
    connection, address = _connect(target, addresses, run)
    cut = threading.Event()
    watchdog = threading.Timer(max(run.deadline - time.monotonic(), 0.0), _cut, args=(connection, cut))
    watchdog.daemon = True
    watchdog.start()
    response: HTTPResponse | None = None
    try:
        connection.request("GET", target.path, headers=_request_headers(target, run), preload_content=False)
        response = connection.getresponse()
        reply_headers = {name.lower(): response.headers[name] for name in response.headers}
        _note(run, response.status, reply_headers)
        body = _body(response, reply_headers, run)
        if cut.is_set():  # a read cut short can look like a complete, shorter response
            raise TimeoutError("the total time limit passed")
        return Reply(response.status, response.reason or "", reply_headers, body)
    except FetchError:
        raise
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        raise failure(exc, f"{run.url} ({address})", run, cut=cut.is_set()) from exc
    finally:
        watchdog.cancel()
        if response is not None:
            response.close()  # the response holds the socket open even after the connection closes
        connection.close()


def _request_headers(target: Target, run: FetchRun) -> dict[str, str]:
    return {
        "Host": target.host_header,
        "User-Agent": run.policy.user_agent,
        "Accept": _ACCEPT,
        "Accept-Encoding": "identity",
        "Connection": "close",
    }


def _note(run: FetchRun, status: int, headers: dict[str, str]) -> None:
    """Keep what the reply said in the diagnostics."""
    run.diagnostics["status"] = status
    # Kept for an error status too: the discovery worksheet reads framing headers from a
    # sign-in URL that answers 400 without a SAMLRequest.
    run.diagnostics["framing_headers"] = [
        f"{name}: {headers[name]}" for name in ("x-frame-options", "content-security-policy") if name in headers
    ]
    if "content-type" in headers:
        run.diagnostics["content_type"] = headers["content-type"]


def _body(response: HTTPResponse, headers: dict[str, str], run: FetchRun) -> bytes:
    """The body of a 2xx reply within the size limit; the first bytes of any other but a redirect."""
    limit = run.policy.max_bytes
    ok = 200 <= response.status < 300
    declared = headers.get("content-length", "")
    if ok and declared.isdigit() and int(declared) > limit:
        raise run.error(
            "too-large",
            f"{run.url} declares a {int(declared):,}-byte body, over the limit of {limit:,} bytes; none of it was read",
        )
    body = b""
    if response.status not in REDIRECT_STATUSES:
        body = _read_at_most(response, limit if ok else _PREVIEW_BYTES, run)
    if ok and len(body) > limit:
        raise run.error("too-large", f"{run.url} sent more than the limit of {limit:,} bytes; reading stopped there")
    if body and not ok:
        run.diagnostics["body_start"] = preview(body)
    return body


def _connect(target: Target, addresses: list[str], run: FetchRun) -> tuple[HTTPConnection, str]:
    """A connection to the first of the checked `addresses` that answers; never a fresh DNS lookup."""
    last = run.error("timeout", f"no time was left to connect to {target.host} for {run.url}")
    for address in addresses:
        remaining = run.deadline - time.monotonic()
        if remaining <= 0:
            break
        run.diagnostics["address"] = address
        timeout = min(run.policy.connect_timeout, remaining)
        connection: HTTPConnection
        if target.scheme == "https":
            # The socket goes to the checked IP; the name is used only for SNI and the certificate.
            connection = HTTPSConnection(
                address, target.port, timeout=timeout, server_hostname=target.host, ssl_context=run.tls
            )
        else:
            connection = HTTPConnection(address, target.port, timeout=timeout)
        try:
            connection.connect()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            connection.close()
            last = failure(exc, f"{run.url} ({address})", run)
            if last.kind == "tls":
                raise last from exc
            last.__cause__ = exc
            continue
        connection.timeout = max(run.deadline - time.monotonic(), 0.001)
        return connection, address
    raise last


def _cut(connection: HTTPConnection, cut: threading.Event) -> None:
    # The total deadline passed while a read was blocked: a server dripping one byte at a time
    # keeps every read inside its socket timeout. socket.socket.shutdown, not SSLSocket.shutdown,
    # which would tear the TLS state away from the reading thread.
    cut.set()
    sock = connection.sock
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _read_at_most(response: HTTPResponse, limit: int, run: FetchRun) -> bytes:
    """Up to `limit` + 1 bytes of the body: one more than `limit` means the body is too large."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit and (chunk := response.read1(_CHUNK)):
        chunks.append(chunk)
        size += len(chunk)
        if run.past_deadline():
            raise TimeoutError("the total time limit passed while reading the body")
    return b"".join(chunks)[: limit + 1]
