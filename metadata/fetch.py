"""Fetch a partner's metadata URL without letting the URL reach our own network (SECURITY.md §4).

A metadata URL is typed in by a partner, so it is untrusted: pointed at ``127.0.0.1``, at a
cloud metadata service on ``169.254.169.254`` or at an internal host, a naive fetch would
read our own services and show the answer in a report (server-side request forgery).

:func:`fetch` therefore accepts only ``https://`` (``http://`` only when the policy says so)
and URLs without a user name or password; resolves the host once and refuses every address in
a block that the IANA special-purpose registries call not globally reachable
(:mod:`metadata.addresses`) unless the policy's allow-list holds it; connects to exactly
the address it checked, sending the host name for SNI, certificate verification and the
``Host`` header; follows at most three redirects, checking each from scratch; bounds the
connect and the whole exchange in time and the body in size while it streams. Proxy
environment variables are never read, cookies never kept, ``urllib.request`` never used
(it opens ``file:``). Every refusal or failure is a :class:`FetchError` whose ``kind`` the
validator turns into a NET finding.

This module decides what may be fetched (the URL, its addresses, the redirects) and follows the
redirects; :mod:`metadata.addresses` holds the address policy, :mod:`metadata.http_exchange` one
bounded GET, and :mod:`metadata.fetch_diagnostics` the error and what a fetch saw.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import SplitResult, quote, urljoin, urlsplit

from metadata.addresses import Address, Network, forbidden, literal
from metadata.fetch_diagnostics import FetchError, FetchRun, preview
from metadata.http_exchange import REDIRECT_STATUSES, Reply, Target, exchange
from metadata.urls import USERINFO as _USERINFO
from metadata.urls import redact_url
from metadata.xml import MiB, looks_like_html, visible

__all__ = ["LOOPBACK", "FetchError", "FetchPolicy", "FetchResult", "fetch", "local_development", "redact_url"]

_DEFAULT_PORTS = {"https": 443, "http": 80}


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class FetchPolicy:
    """How a metadata URL may be fetched. The defaults are SECURITY.md §4."""

    allow_http: bool = False
    """Accept ``http://`` URLs and redirects. Off by default: metadata carries the keys that decide
    who may log in, so it must come over TLS."""
    allowed_networks: tuple[Network, ...] = ()
    """Networks fetched from although they are not globally routable (tests allow ``127.0.0.1/32``)."""
    max_redirects: int = 3
    """Most redirects followed; each target is checked like the first URL."""
    connect_timeout: float = 5.0
    """Seconds to open a connection and finish the TLS handshake."""
    total_timeout: float = 15.0
    """Seconds for the whole fetch: every redirect, the headers and the body."""
    max_bytes: int = 5 * MiB
    """Largest body accepted; reading stops as soon as it is exceeded (SECURITY.md §1)."""
    ca_bundle: str | None = None
    """A PEM file of CA certificates to trust instead of the system store (a test CA)."""
    user_agent: str = "saml-preflight/0.1 (metadata fetch)"
    """The ``User-Agent`` header sent."""
    resolver: Callable[[str, int], Sequence[str]] = _system_resolve
    """Host name and port to IP address strings; ``socket.getaddrinfo`` unless a test replaces it."""


LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
"""The loopback networks, which only local development mode fetches from."""


def local_development(policy: FetchPolicy | None = None) -> FetchPolicy:
    """`policy` (default: SECURITY.md §4's) that also accepts ``http://`` and loopback addresses:
    for an IdP on this machine (``saml-validate serve --dev``), never for a server others reach.
    Private, link-local and every other refused block stay refused."""
    base = policy or FetchPolicy()
    return replace(base, allow_http=True, allowed_networks=(*base.allowed_networks, *LOOPBACK))


@dataclass(frozen=True)
class FetchResult:
    """A successful (2xx) fetch."""

    url: str
    """The URL asked for."""
    final_url: str
    """The URL that answered, after redirects."""
    status: int
    """The HTTP status of the final response."""
    content_type: str | None
    """The ``Content-Type`` header as sent, or None when there was none."""
    headers: dict[str, str]
    """Response headers, names lower-cased; a repeated header's values joined with ``", "``."""
    body: bytes
    """The body, at most ``policy.max_bytes`` long."""
    redirects: tuple[str, ...]
    """Every URL a redirect led to, in order; the last one is `final_url`."""
    elapsed_seconds: float
    """Wall time of the whole fetch."""


def fetch(url: str, policy: FetchPolicy = FetchPolicy()) -> FetchResult:
    """GET `url` under `policy` and return the 2xx response, or raise :class:`FetchError`."""
    started = time.monotonic()
    tls = ssl.create_default_context(cafile=policy.ca_bundle)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    run = FetchRun(policy, started + policy.total_timeout, tls, requested_url=redact_url(url), url=url)
    while True:
        run.diagnostics = {}
        target = _target(run)
        reply = exchange(target, _resolve(target, run), run)
        if reply.status in REDIRECT_STATUSES:
            location = reply.headers.get("location", "").strip()
            if not location:
                raise run.error("status", f"{run.url} answered HTTP {reply.status} without a Location header")
            following = redact_url(urljoin(run.url, location))  # a password in a Location is refused, never shown
            if len(run.redirects) >= policy.max_redirects:
                raise run.error(
                    "redirects",
                    f"{run.requested_url} redirects more than {policy.max_redirects} times; {run.url} answered "
                    f"HTTP {reply.status} with yet another redirect, to {visible(following)}",
                )
            run.redirects.append(following)
            run.url = following
            continue
        if not 200 <= reply.status < 300:
            raise run.error("status", _status_message(reply, run))
        return FetchResult(
            url=url,
            final_url=run.url,
            status=reply.status,
            content_type=reply.headers.get("content-type"),
            headers=reply.headers,
            body=reply.body,
            redirects=tuple(run.redirects),
            elapsed_seconds=time.monotonic() - started,
        )


def _target(run: FetchRun) -> Target:
    """Check the shape, userinfo and scheme of the URL being fetched, before anything is resolved."""
    url = run.url
    run.url = redact_url(url)  # never repeat a password in a message
    parts, explicit_port = _split(url, run)
    scheme = _scheme(parts, run)
    host = _ascii_host(parts, run)
    port = explicit_port or _DEFAULT_PORTS[scheme]
    host_header = f"[{host}]" if ":" in host else host
    if explicit_port is not None and explicit_port != _DEFAULT_PORTS[scheme]:
        host_header += f":{port}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, quote(path, safe=string.punctuation), host_header)


def _split(url: str, run: FetchRun) -> tuple[SplitResult, int | None]:
    """The parts and explicit port of `url`, which has no control character and no userinfo."""
    shown = visible(run.url)
    # A URL that does not parse had what may be a password hidden: so must the parser's reason be.
    hidden = run.url != _USERINFO.sub(r"\1***@", url)
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise run.error("bad-url", f"the URL {shown!r} contains a space or a control character")
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as exc:
        reason = "what came before its '@' is hidden, as it may be a password" if hidden else str(exc)
        raise run.error("bad-url", f"{shown} is not a valid URL: {reason}") from exc
    if "@" in parts.netloc or run.url != url:
        # What redact_url hides is refused: userinfo, and an '@' after a host that is no real one
        # (https://admin:2024/Secret@host/ parses as host "admin": a password holding a '/').
        raise run.error("userinfo", f"{shown} has a user name or password before the host (shown as ***)")
    return parts, explicit_port


def _scheme(parts: SplitResult, run: FetchRun) -> str:
    scheme = parts.scheme.lower()
    if scheme not in (("https", "http") if run.policy.allow_http else ("https",)):
        what = f"uses the scheme {scheme!r}" if scheme else "has no scheme"
        why = "plain http is refused: metadata must come over TLS" if scheme == "http" else "only https is fetched"
        raise run.error("scheme", f"{visible(run.url)} {what}; {why}")
    return scheme


def _ascii_host(parts: SplitResult, run: FetchRun) -> str:
    """The host for DNS, SNI and the certificate check: an IP literal, or a name in IDNA form."""
    if not parts.hostname:
        raise run.error("bad-url", f"{visible(run.url)} has no host name")
    host = parts.hostname
    if literal(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise run.error("bad-url", f"the host name of {visible(run.url)} is not valid: {exc}") from exc
    return host


def _resolve(target: Target, run: FetchRun) -> list[str]:
    """The host's addresses, every one of them publicly routable or allow-listed."""
    ip = literal(target.host)
    addresses = [ip] if ip is not None else _lookup(target, run)
    subject = f"{run.url} points at" if ip is not None else f"{target.host} in {run.url} resolves to"
    run.diagnostics["resolved"] = [str(a) for a in addresses]
    # One forbidden answer refuses them all: a mixed answer is how DNS rebinding starts.
    for address in addresses:
        reason = forbidden(address, run.policy.allowed_networks)
        if reason:
            run.diagnostics["address"] = str(address)
            raise run.error(
                "forbidden-address",
                f"{subject} {address}, {reason}; only publicly routable addresses are fetched",
            )
    return [str(a) for a in addresses]


def _lookup(target: Target, run: FetchRun) -> list[Address]:
    try:
        addresses = [ipaddress.ip_address(a) for a in run.policy.resolver(target.host, target.port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise run.error("dns", f"the host name {target.host} in {run.url} does not resolve: {exc}") from exc
    if not addresses:
        raise run.error("dns", f"the host name {target.host} in {run.url} resolves to no address")
    return addresses


def _status_message(reply: Reply, run: FetchRun) -> str:
    address = run.diagnostics.get("address")
    message = f"{run.url} ({address}) answered HTTP {reply.status} {visible(reply.reason)}".rstrip()
    if looks_like_html(reply.body):
        message += f"; an HTML page came back where metadata was expected: {preview(reply.body, 120)}"
    elif reply.body:
        message += f"; the body starts: {preview(reply.body, 120)}"
    return message
