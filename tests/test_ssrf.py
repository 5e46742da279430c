"""The SSRF matrix (SECURITY.md §4, issue 7): every way a metadata URL could lead somewhere it must not.

Each case of `MATRIX` runs twice: through :func:`metadata.fetch.fetch`, which must raise a
:class:`FetchError` of the case's kind, and through :func:`validator.inspection.inspect_metadata`,
what ``saml-validate metadata URL`` runs, whose report must hold exactly the case's NET finding
and exit 1. Both times the refusal must say what was wrong and name the URL it happened at, with
any user name and password hidden.

Nothing may reach a forbidden address. Loopback targets (the URL itself, the resolver's answer
or a redirect's target) point at a `Trap`: a plain TCP listener on 127.0.0.1, 127.0.0.2 or ::1
that records every connection it accepts; after every run each trap must have accepted none.
Addresses that cannot be listened on here (169.254.169.254, 100.64.0.1, fd00::1, 10/8) are
guarded by test_fetch's `network` fixture, which fails any connect outside loopback and any DNS
lookup of a name. The only server ever contacted is the local HTTPS test server on 127.0.0.1,
which the redirect cases allow with ``allowed_networks=(127.0.0.1/32,)``, so their forbidden
loopback targets live on 127.0.0.2 (Linux answers all of 127.0.0.0/8).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import select
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from metadata.fetch import FetchError, FetchPolicy, fetch
from tests import test_fetch
from tests.factory import NOW
from tests.test_fetch import (
    PKI,
    FakeDNS,
    Handler,
    LocalServer,
    Network,
    Route,
    drip,
    endless_body,
    local_policy,
    redirect,
    refused,
    respond,
)
from validator.checks.fetching import finding_for_fetch_error
from validator.cli import cli
from validator.inspection import MetadataOptions, inspect_metadata
from validator.metadata_facts import metadata_report
from validator.render import FORMATS, render
from validator.report import facts_json

KiB = 1024
CAP = 256 * KiB
"""The body limit of the size cases; small, so that an endless body is cut quickly."""

# test_fetch's fixtures: the test CA, the HTTPS test server, and the autouse network guard.
pki = test_fetch.pki
https_server = test_fetch.https_server
network = test_fetch.network

_GETADDRINFO = socket.getaddrinfo  # the real one: test_fetch's guard wraps it only during a test


# --- traps: listeners the fetcher must never reach ------------------------------------------------


class Trap:
    """A plain TCP listener on a loopback address that records, and at once closes, every
    connection it accepts. `accepted` also drains the kernel's backlog, so a connection that
    completed just before the check is counted even if the accept thread has not run yet."""

    def __init__(self, family: socket.AddressFamily, host: str, port: int = 0) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.bind((host, port))
            self.sock.listen(16)
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.peers: list[str] = []
        """The client address of each connection accepted."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                if select.select([self.sock], [], [], 0.02)[0]:
                    self._drain()

    def _drain(self) -> None:
        with self._lock:
            while True:
                try:
                    conn, peer = self.sock.accept()
                except OSError:  # BlockingIOError: nothing (more) waiting
                    return
                conn.close()
                self.peers.append(str(peer[0]))

    def accepted(self) -> list[str]:
        self._drain()
        return list(self.peers)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@dataclass
class Env:
    """What one case runs against: the allowed HTTPS test server, the traps and the test CA."""

    server: LocalServer
    pki: PKI
    traps: dict[str, Trap]
    outcome: list[str] = field(default_factory=list)
    """What an endless-body route saw: ``client stopped reading`` or ``sent everything``."""
    done: threading.Event = field(default_factory=threading.Event)

    def fill(self, template: str) -> str:
        """`template` with {server}, {trap4}, {trap2}, {trap6} and {rebound} replaced by ports."""
        ports = {name: trap.port for name, trap in self.traps.items()}
        ports.setdefault("trap6", 9)  # no IPv6 loopback here: the network guard still refuses [::1]:9
        return template.format(server=self.server.server_port, **ports)

    def assert_untouched(self, hops: int | None, network: Network) -> None:
        """No trap accepted a connection; only the test server was connected to (`hops` times)."""
        for name, trap in self.traps.items():
            assert trap.accepted() == [], f"the forbidden listener {name} ({trap.host}:{trap.port}) was reached"
        server = ("127.0.0.1", self.server.server_port)
        assert set(network.connects) <= {server}, network.connects
        if hops is not None:
            assert len(network.connects) == hops, network.connects
            assert len(self.server.seen) == hops, self.server.seen


@pytest.fixture
def env(https_server: LocalServer, pki: PKI) -> Iterator[Env]:
    with contextlib.ExitStack() as stack:
        traps = {
            "trap4": Trap(socket.AF_INET, "127.0.0.1"),
            "trap2": Trap(socket.AF_INET, "127.0.0.2"),
            # 127.0.0.2 on the test server's own port: where a rebound name would lead.
            "rebound": Trap(socket.AF_INET, "127.0.0.2", https_server.server_port),
        }
        with contextlib.suppress(OSError):  # a host without IPv6 loopback
            traps["trap6"] = Trap(socket.AF_INET6, "::1")
        for trap in traps.values():
            stack.callback(trap.close)
        yield Env(https_server, pki, traps)


# --- how a case fetches --------------------------------------------------------------------------

PolicyMaker = Callable[[Env], FetchPolicy]
RouteMaker = Callable[[Env], Route]


def numeric_resolver(host: str, port: int) -> Sequence[str]:
    """The system resolver restricted to numeric hosts: glibc reads 2130706433, 0x7f000001,
    017700000001 and 127.1 as 127.0.0.1 (inet_aton) without asking DNS, as the default
    resolver of FetchPolicy would."""
    infos = _GETADDRINFO(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Rebinding(FakeDNS):
    """DNS rebinding with a zero TTL: the first answer for `host` is `first`, every later one `then`."""

    def __init__(self, host: str, first: list[str], then: list[str]) -> None:
        super().__init__({host: first})
        self.then = then

    def __call__(self, host: str, port: int) -> Sequence[str]:
        answer = super().__call__(host, port)
        self.answers[host] = self.then
        return answer


def https_only(env: Env) -> FetchPolicy:
    return FetchPolicy()


def http_too(env: Env) -> FetchPolicy:
    """http:// allowed, so that the address (not the scheme) is what must refuse the URL."""
    return FetchPolicy(allow_http=True)


def numeric(env: Env) -> FetchPolicy:
    return FetchPolicy(allow_http=True, resolver=numeric_resolver)


def resolving(answers: dict[str, list[str]]) -> PolicyMaker:
    return lambda env: FetchPolicy(allow_http=True, resolver=FakeDNS(answers))


def from_server(resolver: Callable[[], FakeDNS] | None = None, **changes: float) -> PolicyMaker:
    """The test server allowed: 127.0.0.1/32 only, the test CA trusted."""
    def make(env: Env) -> FetchPolicy:
        if resolver is not None:
            return local_policy(env.pki, resolver=resolver(), **changes)
        return local_policy(env.pki, **changes)

    return make


def to(location: str) -> RouteMaker:
    """A 302 to `location` (a template)."""
    return lambda env: redirect(env.fill(location))


def slowly_to(location: str, seconds: float) -> RouteMaker:
    """A 302 to `location` after `seconds`: each hop well inside a socket timeout, the chain not."""
    def make(env: Env) -> Route:
        def route(handler: Handler) -> None:
            if not handler.server.stop.wait(seconds):
                redirect(env.fill(location))(handler)

        return route

    return make


def declared_huge(env: Env) -> Route:
    def route(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/samlmetadata+xml")
        handler.send_header("Content-Length", str(50 * 1024 * 1024))
        handler.end_headers()
        handler.server.stop.wait(5)

    return route


def endless(env: Env) -> Route:
    return endless_body(env.outcome, env.done)


def endless_chunked(env: Env) -> Route:
    """16 MiB in HTTP/1.1 chunks, never a Content-Length: the cap must hold while chunks stream."""

    def route(handler: Handler) -> None:
        chunk = b"<x/>" * 4096
        try:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/samlmetadata+xml\r\n"
                                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            for _ in range(1024):
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.write(b"0\r\n\r\n")
            env.outcome.append("sent everything")
        except OSError:
            env.outcome.append("client stopped reading")
        finally:
            env.done.set()

    return route


def trickle(env: Env) -> Route:
    return drip(b"HTTP/1.0 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 100000\r\n\r\n", b"x")


def metadata(env: Env) -> Route:
    return respond()


# --- the matrix ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    url: str
    """A template: {server} is the test server's port, {trap4} 127.0.0.1's trap, {trap2}
    127.0.0.2's, {trap6} ::1's, {rebound} 127.0.0.2 on the test server's port."""
    kind: str
    code: str
    says: tuple[str, ...]
    """What was wrong: fragments (templates) the message must contain."""
    where: str | None = None
    """The URL the refusal names (a template, userinfo hidden); `url` when None."""
    policy: PolicyMaker = http_too
    routes: tuple[tuple[str, RouteMaker], ...] = ()
    hops: int | None = 0
    """Requests the test server answers before the refusal; None: not fixed (a timeout)."""
    secrets: tuple[str, ...] = ()
    """Parts of a password in the URL that no message, finding or report may repeat."""
    streams: bool = False
    """The server streams an endless body and must see the client stop reading."""


SERVER = "https://127.0.0.1:{server}"
LOOPBACK = "a loopback address"
PUBLIC_ONLY = "only publicly routable addresses are fetched"

MATRIX = [
    # Schemes: refused before anything is resolved.
    Case("scheme-file", "file:///etc/passwd", "scheme", "NET001", ("uses the scheme 'file'", "only https is fetched")),
    Case("scheme-ftp", "ftp://127.0.0.1:{trap4}/metadata.xml", "scheme", "NET001", ("uses the scheme 'ftp'",)),
    Case("scheme-data", "data:text/xml,<md:EntityDescriptor/>", "scheme", "NET001", ("uses the scheme 'data'",)),
    Case("scheme-gopher", "gopher://127.0.0.1:{trap4}/_GET%20/", "scheme", "NET001", ("uses the scheme 'gopher'",)),
    Case("scheme-http-by-default", "http://127.0.0.1:{trap4}/metadata", "scheme", "NET001",
         ("uses the scheme 'http'", "plain http is refused"), policy=https_only),
    # Address literals (http allowed, so the address is what refuses them).
    Case("literal-127.0.0.1", "http://127.0.0.1:{trap4}/metadata", "forbidden-address", "NET004",
         ("points at 127.0.0.1", LOOPBACK, PUBLIC_ONLY)),
    Case("literal-127.0.0.2-https", "https://127.0.0.2:{trap2}/metadata", "forbidden-address", "NET004",
         ("points at 127.0.0.2", LOOPBACK), policy=https_only),
    Case("literal-[::1]", "http://[::1]:{trap6}/metadata", "forbidden-address", "NET004", ("points at ::1", LOOPBACK)),
    Case("literal-169.254.169.254", "http://169.254.169.254/latest/meta-data/", "forbidden-address", "NET004",
         ("points at 169.254.169.254", "a link-local address")),
    Case("literal-0.0.0.0", "http://0.0.0.0:{trap4}/metadata", "forbidden-address", "NET004",
         ("points at 0.0.0.0", "the unspecified address")),
    Case("literal-[::]", "http://[::]:{trap6}/metadata", "forbidden-address", "NET004",
         ("points at ::,", "the unspecified address")),
    Case("literal-[::ffff:127.0.0.1]", "http://[::ffff:127.0.0.1]:{trap4}/metadata", "forbidden-address", "NET004",
         ("points at ::ffff:", "the IPv4-mapped form of 127.0.0.1", LOOPBACK)),  # ::ffff:7f00:1 before 3.13
    Case("literal-100.64.0.1", "http://100.64.0.1/metadata", "forbidden-address", "NET004",
         ("points at 100.64.0.1", "carrier-grade NAT")),
    Case("literal-[fd00::1]", "http://[fd00::1]/metadata", "forbidden-address", "NET004",
         ("points at fd00::1", "unique local IPv6 address")),
    # Other spellings of 127.0.0.1: urlsplit takes them as host names, the resolver reads them as numbers.
    Case("decimal-2130706433", "http://2130706433:{trap4}/metadata", "forbidden-address", "NET004",
         ("2130706433 in http://2130706433:{trap4}/metadata resolves to 127.0.0.1", LOOPBACK), policy=numeric),
    Case("hex-0x7f000001", "http://0x7f000001:{trap4}/metadata", "forbidden-address", "NET004",
         ("0x7f000001 in", "resolves to 127.0.0.1", LOOPBACK), policy=numeric),
    Case("octal-017700000001", "http://017700000001:{trap4}/metadata", "forbidden-address", "NET004",
         ("017700000001 in", "resolves to 127.0.0.1", LOOPBACK), policy=numeric),
    Case("short-127.1", "http://127.1:{trap4}/metadata", "forbidden-address", "NET004",
         ("127.1 in", "resolves to 127.0.0.1", LOOPBACK), policy=numeric),
    # Names: the policy's resolver answers.
    Case("name-to-127.0.0.1", "http://internal.partner.test:{trap4}/metadata", "forbidden-address", "NET004",
         ("internal.partner.test in http://internal.partner.test:{trap4}/metadata resolves to 127.0.0.1", LOOPBACK),
         policy=resolving({"internal.partner.test": ["127.0.0.1"]})),
    Case("name-to-::1", "http://internal.partner.test:{trap6}/metadata", "forbidden-address", "NET004",
         ("resolves to ::1", LOOPBACK), policy=resolving({"internal.partner.test": ["::1"]})),
    Case("name-to-::ffff:127.0.0.1", "http://internal.partner.test:{trap4}/metadata", "forbidden-address", "NET004",
         ("resolves to ::ffff:", "the IPv4-mapped form of 127.0.0.1", LOOPBACK),
         policy=resolving({"internal.partner.test": ["::ffff:127.0.0.1"]})),
    Case("name-to-10.20.30.40", "http://internal.partner.test/metadata", "forbidden-address", "NET004",
         ("resolves to 10.20.30.40", "a private address (10.0.0.0/8, RFC 1918)"),
         policy=resolving({"internal.partner.test": ["10.20.30.40"]})),
    Case("name-to-public-and-private", "http://idp.partner.test:{trap4}/metadata", "forbidden-address", "NET004",
         ("idp.partner.test in", "resolves to 127.0.0.1", LOOPBACK),
         policy=resolving({"idp.partner.test": ["8.8.8.8", "127.0.0.1"]})),
    # User names and passwords: refused, never repeated.
    Case("userinfo-password", "https://admin:s3cret@127.0.0.1:{trap4}/metadata", "userinfo", "NET002",
         ("has a user name or password before the host",), where="https://***@127.0.0.1:{trap4}/metadata",
         secrets=("s3cret",)),
    Case("userinfo-disguised-host", "https://idp.partner.test@127.0.0.1:{trap4}/metadata", "userinfo", "NET002",
         ("has a user name or password before the host",), where="https://***@127.0.0.1:{trap4}/metadata",
         secrets=("idp.partner.test",)),
    Case("userinfo-password-with-slash", "https://admin:s3cret/k3y@127.0.0.1:{trap4}/metadata", "bad-url", "NET011",
         ("is not a valid URL", "hidden, as it may be a password"), where="https://***@127.0.0.1:{trap4}/metadata",
         secrets=("s3cret", "k3y")),
    Case("userinfo-password-with-hash", "https://admin:s3cret#k3y@127.0.0.1:{trap4}/metadata", "bad-url", "NET011",
         ("is not a valid URL", "hidden, as it may be a password"), where="https://***@127.0.0.1:{trap4}/metadata",
         secrets=("s3cret", "k3y")),
    # Redirects from the allowed test server: each target checked from scratch.
    Case("redirect-to-127.0.0.2", SERVER + "/start", "forbidden-address", "NET004",
         ("points at 127.0.0.2", LOOPBACK, "reached by redirect: https://127.0.0.1:{server}/start →"),
         where="https://127.0.0.2:{trap2}/metadata", policy=from_server(),
         routes=(("/start", to("https://127.0.0.2:{trap2}/metadata")),), hops=1),
    Case("redirect-to-[::1]", SERVER + "/start", "forbidden-address", "NET004",
         ("points at ::1", LOOPBACK, "reached by redirect"), where="https://[::1]:{trap6}/metadata",
         policy=from_server(), routes=(("/start", to("https://[::1]:{trap6}/metadata")),), hops=1),
    Case("redirect-to-name-of-127.0.0.2", SERVER + "/start", "forbidden-address", "NET004",
         ("internal.partner.test in", "resolves to 127.0.0.2", LOOPBACK, "reached by redirect"),
         where="https://internal.partner.test:{trap2}/metadata",
         policy=from_server(lambda: FakeDNS({"internal.partner.test": ["127.0.0.2"]})),
         routes=(("/start", to("https://internal.partner.test:{trap2}/metadata")),), hops=1),
    Case("redirect-to-file", SERVER + "/start", "scheme", "NET001",
         ("uses the scheme 'file'", "reached by redirect"), where="file:///etc/passwd",
         policy=from_server(), routes=(("/start", to("file:///etc/passwd")),), hops=1),
    Case("redirect-to-plain-http", SERVER + "/start", "scheme", "NET001",
         ("plain http is refused", "reached by redirect"), where="http://127.0.0.2:{trap2}/metadata",
         policy=from_server(), routes=(("/start", to("http://127.0.0.2:{trap2}/metadata")),), hops=1),
    Case("redirect-to-userinfo", SERVER + "/start", "userinfo", "NET002",
         ("has a user name or password before the host", "reached by redirect"),
         where="https://***@127.0.0.2:{trap2}/metadata", policy=from_server(),
         routes=(("/start", to("https://admin:s3cret@127.0.0.2:{trap2}/metadata")),), hops=1, secrets=("s3cret",)),
    Case("redirect-dns-rebinding", "https://idp.partner.test:{server}/start", "forbidden-address", "NET004",
         ("idp.partner.test in", "resolves to 127.0.0.2", LOOPBACK, "reached by redirect"),
         where="https://idp.partner.test:{server}/metadata",
         policy=from_server(lambda: Rebinding("idp.partner.test", ["127.0.0.1"], ["127.0.0.2"])),
         routes=(("/start", to("/metadata")), ("/metadata", metadata)), hops=1),
    Case("redirects-4-the-last-to-127.0.0.2", SERVER + "/r0", "redirects", "NET009",
         ("redirects more than 3 times", "yet another redirect, to https://127.0.0.2:{trap2}/metadata"),
         where=SERVER + "/r3", policy=from_server(),
         routes=(("/r0", to("/r1")), ("/r1", to("/r2")), ("/r2", to("/r3")),
                 ("/r3", to("https://127.0.0.2:{trap2}/metadata"))), hops=4),
    # Limits: size while streaming, time for the whole exchange.
    Case("body-declared-over-cap", SERVER + "/metadata", "too-large", "NET010",
         ("declares a 52,428,800-byte body", "over the limit of 262,144 bytes", "none of it was read"),
         policy=from_server(max_bytes=CAP), routes=(("/metadata", declared_huge),), hops=1),
    Case("body-undeclared-over-cap", SERVER + "/metadata", "too-large", "NET010",
         ("sent more than the limit of 262,144 bytes", "reading stopped there"),
         policy=from_server(max_bytes=CAP), routes=(("/metadata", endless),), hops=1, streams=True),
    Case("body-chunked-over-cap", SERVER + "/metadata", "too-large", "NET010",
         ("sent more than the limit of 262,144 bytes", "reading stopped there"),
         policy=from_server(max_bytes=CAP), routes=(("/metadata", endless_chunked),), hops=1, streams=True),
    Case("slow-trickle-past-total-timeout", SERVER + "/metadata", "timeout", "NET006",
         ("(127.0.0.1) did not deliver a whole response within the 0.5 s time limit",),
         policy=from_server(total_timeout=0.5), routes=(("/metadata", trickle),), hops=1),
    Case("slow-redirect-chain-past-total-timeout", SERVER + "/r0", "timeout", "NET006",
         ("within the 0.6 s time limit", "reached by redirect"), where=SERVER + "/r1",
         policy=from_server(total_timeout=0.6),
         routes=(("/r0", slowly_to("/r1", 0.4)), ("/r1", slowly_to("/r2", 0.4)), ("/r2", slowly_to("/metadata", 0.4)),
                 ("/metadata", metadata)), hops=None),
]


def prepared(case: Case, env: Env) -> tuple[str, FetchPolicy, str, list[str]]:
    """The case's URL, policy, expected `where` and message fragments, its routes installed."""
    for path, make in case.routes:
        env.server.routes[path] = make(env)
    where = env.fill(case.where or case.url)
    return env.fill(case.url), case.policy(env), where, [env.fill(s) for s in case.says]


def assert_says(message: str, where: str, says: list[str]) -> None:
    assert where in message, message
    for fragment in says:
        assert fragment in message, message


def assert_streaming_stopped(case: Case, env: Env) -> None:
    if case.streams:
        assert env.done.wait(5)
        assert env.outcome == ["client stopped reading"]


@pytest.mark.parametrize("case", MATRIX, ids=[case.id for case in MATRIX])
def test_fetch_refuses(case: Case, env: Env, network: Network) -> None:
    url, policy, where, says = prepared(case, env)
    err = refused(url, policy)
    finding = finding_for_fetch_error(err)
    assert (err.kind, finding.code) == (case.kind, case.code), err.message
    assert err.url == finding.where == where
    assert_says(err.message, where, says)
    shown = repr((err.message, err.url, err.diagnostics, finding))
    for secret in case.secrets:
        assert secret not in shown
    env.assert_untouched(case.hops, network)
    assert_streaming_stopped(case, env)


@pytest.mark.parametrize("case", MATRIX, ids=[case.id for case in MATRIX])
def test_report_refuses(case: Case, env: Env, network: Network) -> None:
    url, policy, where, says = prepared(case, env)
    options = MetadataOptions(now=NOW, max_bytes=policy.max_bytes, fetch_policy=policy)
    report = metadata_report(inspect_metadata(url, options))
    assert [f.code for f in report.findings] == [case.code]
    assert report.exit_code() == 1
    finding = report.findings[0]
    assert finding.where == where
    assert_says(finding.message, where, says)
    for secret in case.secrets:
        assert secret not in repr((report.inputs, facts_json(report), report.findings))
        for fmt in FORMATS:
            assert secret not in render(report, fmt), fmt
    env.assert_untouched(case.hops, network)
    assert_streaming_stopped(case, env)


# --- beside the matrix ---------------------------------------------------------------------------


def test_dns_rebinding_connects_to_the_address_that_was_checked(env: Env, network: Network) -> None:
    """The resolver answers the allowed 127.0.0.1 first and the forbidden 127.0.0.2 afterwards: the
    fetcher asks once and connects to what it checked, never resolving the name again."""
    env.server.routes["/metadata"] = respond()
    url = env.fill("https://idp.partner.test:{server}/metadata")
    port = env.server.server_port

    dns = Rebinding("idp.partner.test", ["127.0.0.1"], ["127.0.0.2"])
    assert fetch(url, local_policy(env.pki, resolver=dns)).final_url == url
    assert dns.calls == [("idp.partner.test", port)]

    dns = Rebinding("idp.partner.test", ["127.0.0.1"], ["127.0.0.2"])
    options = MetadataOptions(now=NOW, fetch_policy=local_policy(env.pki, resolver=dns))
    report = metadata_report(inspect_metadata(url, options))
    assert dns.calls == [("idp.partner.test", port)]
    assert facts_json(report)["fetch"]["final_url"] == url
    assert not [f.code for f in report.findings if f.code.startswith("NET")]

    assert network.connects == [("127.0.0.1", port)] * 2
    env.assert_untouched(2, network)


def test_a_javascript_url_is_refused_as_a_scheme_without_a_connection(network: Network) -> None:
    """Anything with a scheme goes to the fetcher (validator.inspection.is_url), which refuses every
    scheme but https: NET001, a finding (exit 1), and nothing connects."""
    result = CliRunner().invoke(cli, ["metadata", "javascript:alert(1)"])
    assert result.exit_code == 1
    assert "NET001" in result.output
    assert network.connects == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https:/\\admin:s3cret@127.0.0.1/metadata", "https:/\\***@127.0.0.1/metadata"),
        ("https:admin:s3cret@127.0.0.1/metadata", "https:***@127.0.0.1/metadata"),
        ("ftp://admin:s3cret/k3y@127.0.0.1/metadata.xml", "ftp://***@127.0.0.1/metadata.xml"),
        ("https://admin:2024/s3cret@127.0.0.1/metadata", "https://***@127.0.0.1/metadata"),
        ("https://admin:2024?s3cret@127.0.0.1/metadata", "https://***@127.0.0.1/metadata"),
        ("https://admin:2024#s3cret@127.0.0.1/metadata", "https://***@127.0.0.1/metadata"),
    ],
    ids=["backslash-authority", "no-slashes", "ftp-slash-in-password", "password-parsed-as-a-port",
         "question-mark-in-password", "hash-in-password"],
)
def test_a_password_in_a_url_without_a_host_is_never_repeated(url: str, shown: str, network: Network) -> None:
    """Browsers read the first two as https://admin:s3cret@127.0.0.1/, where urlsplit finds no host;
    urlsplit reads the last as host "admin", port 2024 (a DNS lookup, refused in this test)."""
    err = refused(url)
    finding = finding_for_fetch_error(err)
    assert err.url == finding.where == shown
    assert shown in err.message
    assert "s3cret" not in repr((err.message, err.diagnostics, finding))
    assert network.connects == []


def test_the_traps_see_a_fetcher_that_gets_through(env: Env, network: Network) -> None:
    """What every "untouched" assertion rests on: with loopback allowed, the same URLs reach the traps."""
    policy = FetchPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),
                                                           ipaddress.ip_network("::1/128")))
    targets = {"trap4": "127.0.0.1", "trap2": "127.0.0.2", "rebound": "127.0.0.2", "trap6": "[::1]"}
    for name, trap in env.traps.items():
        with pytest.raises(FetchError):  # the trap hangs up at once
            fetch(f"http://{targets[name]}:{trap.port}/metadata", policy)
        assert len(trap.accepted()) == 1, name


@pytest.mark.parametrize("url", ["https:/\\admin:s3cret@127.0.0.1/metadata", "https://admin:s3cret@127.0.0.1/metadata",
                                 "https://admin:2024/s3cret@127.0.0.1/metadata"])
def test_a_password_in_the_metadata_url_of_a_response_check_is_never_repeated(
    url: str, network: Network, tmp_path: Path
) -> None:
    """`saml-validate response --metadata URL` takes the same way as `metadata`: the fetcher, and
    the URL shown redacted in the report's inputs and in the finding."""
    response = tmp_path / "response.xml"
    response.write_text("<samlp:Response xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>")
    result = CliRunner().invoke(cli, ["response", str(response), "--metadata", url, "--format", "json"])
    assert result.exit_code == 1, result.output
    assert "s3cret" not in result.output
    report = json.loads(result.output)
    assert report["inputs"]["metadata"].endswith("***@127.0.0.1/metadata")
    assert {"NET001", "NET002", "NET003"} & {f["code"] for f in report["findings"]}
    assert network.connects == []


# --- the address policy: the IANA special-purpose registries ------------------------------------

SPECIAL_PURPOSE = [
    # (an address inside, the smallest refused block holding it): one row per block of metadata.addresses' table.
    ("0.1.2.3", "0.0.0.0/8"),
    ("0.0.0.0", "0.0.0.0/32"),
    ("10.1.2.3", "10.0.0.0/8"),
    ("100.100.1.1", "100.64.0.0/10"),
    ("127.8.9.10", "127.0.0.0/8"),
    ("169.254.169.254", "169.254.0.0/16"),
    ("172.31.255.254", "172.16.0.0/12"),
    ("192.0.0.100", "192.0.0.0/24"),
    ("192.0.0.9", "192.0.0.0/24"),  # PCP anycast: globally reachable, yet it is our own gateway that answers
    ("192.0.0.10", "192.0.0.0/24"),  # TURN anycast, likewise
    ("192.0.0.1", "192.0.0.0/29"),
    ("192.0.0.8", "192.0.0.8/32"),  # issue 11: Python's ipaddress calls it global
    ("192.0.0.170", "192.0.0.170/32"),
    ("192.0.0.171", "192.0.0.171/32"),
    ("192.0.2.10", "192.0.2.0/24"),
    ("192.88.99.1", "192.88.99.0/24"),
    ("192.168.1.1", "192.168.0.0/16"),
    ("198.19.0.1", "198.18.0.0/15"),
    ("198.51.100.7", "198.51.100.0/24"),
    ("203.0.113.7", "203.0.113.0/24"),
    ("239.255.255.250", "224.0.0.0/4"),
    ("240.0.0.1", "240.0.0.0/4"),
    ("255.255.255.255", "255.255.255.255/32"),
    ("::", "::/128"),
    ("::1", "::1/128"),
    ("::ffff:10.0.0.1", "::ffff:0:0/96"),
    ("64:ff9b::7f00:1", "64:ff9b::/96"),
    ("64:ff9b::808:808", "64:ff9b::/96"),  # the NAT64 form of a public address: the gateway is ours
    ("64:ff9b:1::1", "64:ff9b:1::/48"),
    ("100::1", "100::/64"),
    ("2001:1::1", "2001::/23"),  # PCP anycast
    ("2001:20::1", "2001::/23"),  # ORCHIDv2: an identifier, not a locator
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"),
    ("2001:2::1", "2001:2::/48"),
    ("2001:10::1", "2001:10::/28"),
    ("2001:db8::1", "2001:db8::/32"),
    ("2002:7f00:1::1", "2002::/16"),
    ("2002:808:808::1", "2002::/16"),  # 6to4 of a public address: refused whole, see metadata.addresses
    ("3fff::1", "3fff::/20"),
    ("5f00::1", "5f00::/16"),
    ("fd12:3456::1", "fc00::/7"),
    ("fe80::1", "fe80::/10"),
    ("fec0::1", "fec0::/10"),
    ("ff02::1", "ff00::/8"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "100.128.0.1",  # just past carrier-grade NAT
    "192.0.1.1",  # just past 192.0.0.0/24
    "198.20.0.1",  # just past benchmarking
    "192.31.196.1",  # AS112: a special-purpose block the registry calls globally reachable
    "192.175.48.1",  # AS112 direct delegation, likewise
    "223.255.255.254",  # just below multicast
    "2606:4700:4700::1111",
    "2620:4f:8000::1",  # AS112 for IPv6, globally reachable
    "2001:200::1",  # just past 2001::/23
]


@pytest.mark.parametrize(("address", "block"), SPECIAL_PURPOSE, ids=[a for a, _ in SPECIAL_PURPOSE])
def test_every_special_purpose_block_is_refused_by_name(address: str, block: str, network: Network) -> None:
    host = f"[{address}]" if ":" in address else address
    err = refused(f"https://{host}/metadata")
    finding = finding_for_fetch_error(err)
    assert (err.kind, finding.code) == ("forbidden-address", "NET004")
    assert f"points at {ipaddress.ip_address(address)}," in finding.message
    assert f"({block}, RFC " in finding.message, finding.message
    assert PUBLIC_ONLY in finding.message
    assert network.connects == []


@pytest.mark.parametrize(
    ("address", "carried"),
    [("2002:7f00:1::1", "wrapping 127.0.0.1"), ("64:ff9b::a00:1", "translated to 10.0.0.1"),
     ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "wrapping 192.0.2.45 behind the Teredo server 65.54.227.120"),
     ("::ffff:192.0.0.8", "the IPv4-mapped form of 192.0.0.8 (::ffff:0:0/96, RFC 4291 §2.5.5.2), the IPv4 dummy")],
)
def test_a_transition_address_is_refused_naming_the_ipv4_address_inside(
    address: str, carried: str, network: Network
) -> None:
    err = refused(f"https://[{address}]/metadata")
    assert err.kind == "forbidden-address"
    assert carried in err.message


@pytest.mark.parametrize("address", ["::7f00:1", "4000::1", "e000::1"])
def test_ipv6_outside_global_unicast_is_refused(address: str, network: Network) -> None:
    err = refused(f"https://[{address}]/metadata")
    assert err.kind == "forbidden-address"
    assert "outside 2000::/3" in err.message


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_is_connected_to(address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the address policy the fetcher connects to the address it checked: here a connect
    that is refused at once, so nothing leaves the machine."""
    tried: list[str] = []

    def connect(sock: socket.socket, where: tuple[str, int]) -> None:
        tried.append(where[0])
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket.socket, "connect", connect)
    err = refused("https://idp.partner.test/metadata", FetchPolicy(resolver=FakeDNS({"idp.partner.test": [address]})))
    assert err.kind == "connect", err.message
    assert tried == [address]
    assert err.diagnostics["address"] == address


def test_an_allowed_network_opens_only_itself(network: Network) -> None:
    """The test allow-list lets 127.0.0.1 through and nothing beside it, nor its IPv4-mapped form."""
    policy = FetchPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    for url in ("https://127.0.0.2/metadata", "https://[::ffff:127.0.0.1]/metadata", "https://[::1]/metadata"):
        assert refused(url, policy).kind == "forbidden-address", url
    assert network.connects == []


# --- local development mode (saml-validate serve --dev) ------------------------------------------


def test_the_default_policy_refuses_http_and_loopback() -> None:
    with pytest.raises(FetchError) as http:
        fetch("http://127.0.0.1:9/metadata", FetchPolicy(resolver=numeric_resolver))
    assert http.value.kind == "scheme"
    with pytest.raises(FetchError) as loopback:
        fetch("http://127.0.0.1:9/metadata", FetchPolicy(allow_http=True, resolver=numeric_resolver))
    assert loopback.value.kind == "forbidden-address"


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://169.254.169.254/latest/", "http://192.168.1.1/",
                                 "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/"])
def test_local_development_allows_loopback_only(url: str) -> None:
    from metadata.fetch import LOOPBACK, local_development

    policy = local_development(FetchPolicy(resolver=numeric_resolver, connect_timeout=0.5, total_timeout=1))
    assert policy.allow_http and set(LOOPBACK) <= set(policy.allowed_networks)
    assert not FetchPolicy().allow_http and not FetchPolicy().allowed_networks  # the default is unchanged
    with pytest.raises(FetchError) as refused:
        fetch(url, policy)
    assert refused.value.kind == "forbidden-address", refused.value.message
    with pytest.raises(FetchError) as nobody:  # allowed: it gets as far as connecting (port 9: discard, closed)
        fetch("http://127.0.0.1:9/metadata", policy)
    assert nobody.value.kind != "forbidden-address", nobody.value.message
