"""Fetch a partner's metadata URL without letting the URL reach our own network (SECURITY.md §4).

A metadata URL is typed in by a partner, so it is untrusted: pointed at ``127.0.0.1``, at a
cloud metadata service on ``169.254.169.254`` or at an internal host, a naive fetch would
read our own services and show the answer in a report (server-side request forgery).

:func:`fetch` therefore accepts only ``https://`` (``http://`` only when the policy says so)
and URLs without a user name or password; resolves the host once and refuses every address in
a block that the IANA special-purpose registries call not globally reachable (`_SPECIAL_PURPOSE`)
unless the policy's allow-list holds it; connects to exactly
the address it checked, sending the host name for SNI, certificate verification and the
``Host`` header; follows at most three redirects, checking each from scratch; bounds the
connect and the whole exchange in time and the body in size while it streams. Proxy
environment variables are never read, cookies never kept, ``urllib.request`` never used
(it opens ``file:``). Every refusal or failure is a :class:`FetchError` whose ``kind`` the
validator turns into a NET finding.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import string
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

import urllib3.exceptions
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.response import HTTPResponse

from metadata.errors import MetadataError
from metadata.urls import USERINFO as _USERINFO
from metadata.urls import redact_url
from metadata.xml import MiB, looks_like_html, visible

__all__ = ["FetchError", "FetchPolicy", "FetchResult", "fetch", "redact_url"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Diagnostics = dict[str, str | int | list[str]]

_DEFAULT_PORTS = {"https": 443, "http": 80}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
_CHUNK = 64 * 1024
_PREVIEW_BYTES = 512


@dataclass(frozen=True)
class _Block:
    """A row of the address policy: a block never fetched from, and why."""

    network: _Network
    what: str
    """What an address in it is, as a message says it: "a loopback address"."""
    rfc: str
    """Where the block is defined."""

    def describe(self) -> str:
        return f"{self.what} ({self.network}, {self.rfc})"


def _block(network: str, what: str, rfc: str) -> _Block:
    return _Block(ipaddress.ip_network(network), what, rfc)


# Every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890, RFC 8190) whose
# "Globally Reachable" is False or N/A, checked against the registries as updated in 2025, plus multicast
# and site-local. An address in several blocks is refused in the name of the smallest. Rows the
# registries call globally reachable are fetched from, except where a refused block holds them: the PCP,
# TURN and DNS-SD anycast addresses in 192.0.0.0/24 and 2001::/23 answer from a box near the caller
# (our own NAT gateway), and 2001::/23's AMT, AS112, ORCHIDv2 and DET rows host no metadata.
# 64:ff9b::/96 is globally reachable there, yet refused: a NAT64 gateway of ours would translate
# 64:ff9b::7f00:1 to its own 127.0.0.1 (RFC 6052 §3.1 forbids non-global IPv4 in it; not every
# gateway enforces that). 6to4 (2002::/16) is refused whole rather than judged by the IPv4 address
# in it: RFC 7526 deprecated the relays, and the packet goes to whichever relay is nearest, perhaps
# one inside our network, so the embedded address says nothing about where it ends up.
_SPECIAL_PURPOSE: tuple[_Block, ...] = (
    _block("0.0.0.0/8", "an address of \"this network\", never a destination", "RFC 791 §3.2"),
    _block("0.0.0.0/32", "the unspecified address", "RFC 1122 §3.2.1.3"),
    _block("10.0.0.0/8", "a private address", "RFC 1918"),
    _block("100.64.0.0/10", "a carrier-grade NAT address (shared address space)", "RFC 6598"),
    _block("127.0.0.0/8", "a loopback address", "RFC 1122 §3.2.1.3"),
    _block("169.254.0.0/16", "a link-local address (where cloud metadata services live)", "RFC 3927"),
    _block("172.16.0.0/12", "a private address", "RFC 1918"),
    _block("192.0.0.0/24", "an IETF protocol assignment", "RFC 6890 §2.1"),
    _block("192.0.0.0/29", "an IPv4 service continuity address (DS-Lite)", "RFC 7335"),
    _block("192.0.0.8/32", "the IPv4 dummy address", "RFC 7600"),
    _block("192.0.0.170/32", "a NAT64/DNS64 discovery address", "RFC 8880, RFC 7050 §2.2"),
    _block("192.0.0.171/32", "a NAT64/DNS64 discovery address", "RFC 8880, RFC 7050 §2.2"),
    _block("192.0.2.0/24", "a documentation address (TEST-NET-1)", "RFC 5737"),
    _block("192.88.99.0/24", "a 6to4 relay anycast address (deprecated)", "RFC 7526"),
    _block("192.168.0.0/16", "a private address", "RFC 1918"),
    _block("198.18.0.0/15", "a benchmarking address", "RFC 2544"),
    _block("198.51.100.0/24", "a documentation address (TEST-NET-2)", "RFC 5737"),
    _block("203.0.113.0/24", "a documentation address (TEST-NET-3)", "RFC 5737"),
    _block("224.0.0.0/4", "a multicast address", "RFC 5771"),
    _block("240.0.0.0/4", "a reserved address", "RFC 1112 §4"),
    _block("255.255.255.255/32", "the limited broadcast address", "RFC 8190, RFC 919 §7"),
    _block("::/128", "the unspecified address", "RFC 4291"),
    _block("::1/128", "a loopback address", "RFC 4291"),
    _block("::ffff:0:0/96", "an IPv4-mapped address", "RFC 4291 §2.5.5.2"),
    _block("64:ff9b::/96", "a NAT64 address (well-known prefix)", "RFC 6052"),
    _block("64:ff9b:1::/48", "a NAT64 address (local-use prefix)", "RFC 8215"),
    _block("100::/64", "a discard-only address", "RFC 6666"),
    _block("2001::/23", "an IETF protocol assignment", "RFC 2928"),
    _block("2001::/32", "a Teredo address", "RFC 4380, RFC 8190"),
    _block("2001:2::/48", "a benchmarking address", "RFC 5180"),
    _block("2001:10::/28", "a deprecated ORCHID address", "RFC 4843"),
    _block("2001:db8::/32", "a documentation address", "RFC 3849"),
    _block("2002::/16", "a 6to4 address", "RFC 3056"),
    _block("3fff::/20", "a documentation address", "RFC 9637"),
    _block("5f00::/16", "a segment routing (SRv6) SID", "RFC 9602"),
    _block("fc00::/7", "a unique local IPv6 address", "RFC 4193"),
    _block("fe80::/10", "a link-local address", "RFC 4291"),
    _block("fec0::/10", "a site-local IPv6 address (deprecated but still routed inside some networks)", "RFC 3879"),
    _block("ff00::/8", "a multicast address", "RFC 4291 §2.7"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
"""The only IPv6 space allocated for global unicast (RFC 4291 §2.4; IANA IPv6 Address Space)."""


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class FetchPolicy:
    """How a metadata URL may be fetched. The defaults are SECURITY.md §4."""

    allow_http: bool = False
    """Accept ``http://`` URLs and redirects. Off by default: metadata carries the keys that decide
    who may log in, so it must come over TLS."""
    allowed_networks: tuple[_Network, ...] = ()
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


class FetchError(MetadataError, OSError):
    """A metadata URL was refused, or fetching it failed.

    `kind` is one of ``scheme``, ``userinfo``, ``bad-url``, ``dns``, ``forbidden-address``,
    ``connect``, ``timeout``, ``tls``, ``status``, ``redirects``, ``too-large``. `message` says
    what was wrong and where; `url` is the URL being fetched when it happened (a redirect target,
    perhaps). `diagnostics` holds what was seen: ``requested_url``, ``redirects``, ``resolved``,
    ``address``, ``status``, ``content_type``, ``body_start`` (shown safely).
    """

    def __init__(self, kind: str, message: str, *, url: str, diagnostics: _Diagnostics | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.url = url
        self.diagnostics: _Diagnostics = dict(diagnostics or {})


@dataclass
class _Run:
    """One call of :func:`fetch`: its policy, its deadline and what it has seen so far."""

    policy: FetchPolicy
    deadline: float
    """``time.monotonic()`` value after which the fetch has failed."""
    tls: ssl.SSLContext
    requested_url: str
    url: str
    """The URL being fetched now (a redirect target, perhaps)."""
    redirects: list[str] = field(default_factory=list)
    diagnostics: _Diagnostics = field(default_factory=dict)

    def error(self, kind: str, message: str) -> FetchError:
        diagnostics: _Diagnostics = {"requested_url": self.requested_url, **self.diagnostics}
        if self.redirects:
            diagnostics["redirects"] = list(self.redirects)
            message += f" (reached by redirect: {' → '.join([self.requested_url, *self.redirects])})"
        return FetchError(kind, message, url=self.url, diagnostics=diagnostics)

    def past_deadline(self) -> bool:
        return time.monotonic() >= self.deadline


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    """ASCII host name (IDNA) or IP literal without brackets: for DNS, SNI and the certificate check."""
    port: int
    path: str
    """The request target: path and query, percent-encoded."""
    host_header: str


@dataclass(frozen=True)
class _Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    """The body of a 2xx response; the first bytes of any other."""


def fetch(url: str, policy: FetchPolicy = FetchPolicy()) -> FetchResult:
    """GET `url` under `policy` and return the 2xx response, or raise :class:`FetchError`."""
    started = time.monotonic()
    tls = ssl.create_default_context(cafile=policy.ca_bundle)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    run = _Run(policy, started + policy.total_timeout, tls, requested_url=redact_url(url), url=url)
    while True:
        run.diagnostics = {}
        target = _target(run)
        reply = _exchange(target, _resolve(target, run), run)
        if reply.status in _REDIRECT_STATUSES:
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


def _target(run: _Run) -> _Target:
    """Check the shape, userinfo and scheme of the URL being fetched, before anything is resolved."""
    url = run.url
    run.url = redact_url(url)  # never repeat a password in a message
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
    scheme = parts.scheme.lower()
    if scheme not in (("https", "http") if run.policy.allow_http else ("https",)):
        what = f"uses the scheme {scheme!r}" if scheme else "has no scheme"
        why = "plain http is refused: metadata must come over TLS" if scheme == "http" else "only https is fetched"
        raise run.error("scheme", f"{shown} {what}; {why}")
    if not parts.hostname:
        raise run.error("bad-url", f"{shown} has no host name")
    host = parts.hostname
    if _literal(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise run.error("bad-url", f"the host name of {shown} is not valid: {exc}") from exc
    port = explicit_port or _DEFAULT_PORTS[scheme]
    host_header = f"[{host}]" if ":" in host else host
    if explicit_port is not None and explicit_port != _DEFAULT_PORTS[scheme]:
        host_header += f":{port}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(scheme, host, port, quote(path, safe=string.punctuation), host_header)


def _literal(host: str) -> _Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolve(target: _Target, run: _Run) -> list[str]:
    """The host's addresses, every one of them publicly routable or allow-listed."""
    literal = _literal(target.host)
    addresses = [literal] if literal is not None else _lookup(target, run)
    subject = f"{run.url} points at" if literal is not None else f"{target.host} in {run.url} resolves to"
    run.diagnostics["resolved"] = [str(a) for a in addresses]
    # One forbidden answer refuses them all: a mixed answer is how DNS rebinding starts.
    for address in addresses:
        reason = _forbidden(address, run.policy.allowed_networks)
        if reason:
            run.diagnostics["address"] = str(address)
            raise run.error(
                "forbidden-address",
                f"{subject} {address}, {reason}; only publicly routable addresses are fetched",
            )
    return [str(a) for a in addresses]


def _lookup(target: _Target, run: _Run) -> list[_Address]:
    try:
        addresses = [ipaddress.ip_address(a) for a in run.policy.resolver(target.host, target.port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise run.error("dns", f"the host name {target.host} in {run.url} does not resolve: {exc}") from exc
    if not addresses:
        raise run.error("dns", f"the host name {target.host} in {run.url} resolves to no address")
    return addresses


def _forbidden(address: _Address, allowed: tuple[_Network, ...]) -> str | None:
    """Why `address` must not be fetched from, or None when it may be."""
    if any(address in network for network in allowed):
        return None
    blocks = [block for block in _SPECIAL_PURPOSE if address in block.network]
    if not blocks:
        if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
            return f"an address outside {_GLOBAL_UNICAST}, the only IPv6 space for global unicast (RFC 4291 §2.4)"
        return None
    block = max(blocks, key=lambda b: b.network.prefixlen)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # SECURITY.md §4 refuses every IPv4-mapped address, not only those of private IPv4
        # addresses: no public service is reached through one, and stacks treat them unevenly.
        why = _forbidden(address.ipv4_mapped, allowed) or "which is never fetched from"
        return f"the IPv4-mapped form of {address.ipv4_mapped} ({block.network}, {block.rfc}), {why}"
    return block.describe() + _embedded(address)


def _embedded(address: _Address) -> str:
    """The IPv4 address a transition address carries, for the message: where it would lead."""
    if not isinstance(address, ipaddress.IPv6Address):
        return ""
    if address.sixtofour is not None:
        return f", wrapping {address.sixtofour}"
    if address.teredo is not None:
        return f", wrapping {address.teredo[1]} behind the Teredo server {address.teredo[0]}"
    if address in _NAT64:
        return f", translated to {ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)}"
    return ""


def _exchange(target: _Target, addresses: list[str], run: _Run) -> _Reply:
    """One GET to one of `addresses`; the connection is closed before this returns."""
    connection, address = _connect(target, addresses, run)
    cut = threading.Event()
    watchdog = threading.Timer(max(run.deadline - time.monotonic(), 0.0), _cut, args=(connection, cut))
    watchdog.daemon = True
    watchdog.start()
    policy = run.policy
    response: HTTPResponse | None = None
    try:
        headers = {
            "Host": target.host_header,
            "User-Agent": policy.user_agent,
            "Accept": _ACCEPT,
            "Accept-Encoding": "identity",
            "Connection": "close",
        }
        connection.request("GET", target.path, headers=headers, preload_content=False)
        response = connection.getresponse()
        reply_headers = {name.lower(): response.headers[name] for name in response.headers}
        run.diagnostics["status"] = response.status
        # Kept for an error status too: the discovery worksheet reads framing headers from a
        # sign-in URL that answers 400 without a SAMLRequest.
        run.diagnostics["framing_headers"] = [
            f"{name}: {reply_headers[name]}" for name in ("x-frame-options", "content-security-policy")
            if name in reply_headers
        ]
        if "content-type" in reply_headers:
            run.diagnostics["content_type"] = reply_headers["content-type"]
        ok = 200 <= response.status < 300
        declared = reply_headers.get("content-length", "")
        if ok and declared.isdigit() and int(declared) > policy.max_bytes:
            raise run.error(
                "too-large",
                f"{run.url} declares a {int(declared):,}-byte body, over the limit of {policy.max_bytes:,} "
                "bytes; none of it was read",
            )
        body = b""
        if response.status not in _REDIRECT_STATUSES:
            body = _read_at_most(response, policy.max_bytes if ok else _PREVIEW_BYTES, run)
        if ok and len(body) > policy.max_bytes:
            raise run.error(
                "too-large", f"{run.url} sent more than the limit of {policy.max_bytes:,} bytes; reading stopped there"
            )
        if body and not ok:
            run.diagnostics["body_start"] = _preview(body)
        if cut.is_set():  # a read cut short can look like a complete, shorter response
            raise TimeoutError("the total time limit passed")
        return _Reply(response.status, response.reason or "", reply_headers, body)
    except FetchError:
        raise
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        raise _failure(exc, f"{run.url} ({address})", run, cut=cut.is_set()) from exc
    finally:
        watchdog.cancel()
        if response is not None:
            response.close()  # the response holds the socket open even after the connection closes
        connection.close()


def _connect(target: _Target, addresses: list[str], run: _Run) -> tuple[HTTPConnection, str]:
    """A connection to the first of the checked `addresses` that answers; never a fresh DNS lookup."""
    failure = run.error("timeout", f"no time was left to connect to {target.host} for {run.url}")
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
            failure = _failure(exc, f"{run.url} ({address})", run)
            if failure.kind == "tls":
                raise failure from exc
            failure.__cause__ = exc
            continue
        connection.timeout = max(run.deadline - time.monotonic(), 0.001)
        return connection, address
    raise failure


def _cut(connection: HTTPConnection, cut: threading.Event) -> None:
    # The total deadline passed while a read was blocked: a server dripping one byte at a time
    # keeps every read inside its socket timeout. socket.socket.shutdown, not SSLSocket.shutdown,
    # which would tear the TLS state away from the reading thread.
    cut.set()
    sock = connection.sock
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _read_at_most(response: HTTPResponse, limit: int, run: _Run) -> bytes:
    """Up to `limit` + 1 bytes of the body: one more than `limit` means the body is too large."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit and (chunk := response.read1(_CHUNK)):
        chunks.append(chunk)
        size += len(chunk)
        if run.past_deadline():
            raise TimeoutError("the total time limit passed while reading the body")
    return b"".join(chunks)[: limit + 1]


def _failure(exc: BaseException, where: str, run: _Run, *, cut: bool = False) -> FetchError:
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


def _status_message(reply: _Reply, run: _Run) -> str:
    address = run.diagnostics.get("address")
    message = f"{run.url} ({address}) answered HTTP {reply.status} {visible(reply.reason)}".rstrip()
    if looks_like_html(reply.body):
        message += f"; an HTML page came back where metadata was expected: {_preview(reply.body, 120)}"
    elif reply.body:
        message += f"; the body starts: {_preview(reply.body, 120)}"
    return message


def _preview(data: bytes, n: int = 200) -> str:
    """The first bytes of a body on one line, quoted, decoded leniently, invisible characters shown."""
    text = " ".join(data[:n].decode("utf-8", "replace").split())
    return f'"{visible(text)}{"…" if len(data) > n else ""}"'
