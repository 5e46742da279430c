"""The metadata fetcher (SECURITY.md §4) and the NET rules that report its failures.

Every server here is a thread on 127.0.0.1. The autouse `network` guard records every
connect and fails the test on any connect outside loopback and on any DNS lookup of a name,
so an address the fetcher should have refused fails loudly instead of touching a network.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from metadata.fetch import FetchError, FetchPolicy, FetchResult, fetch
from validator.checks.fetching import content_type_findings, finding_for_fetch_error
from validator.findings import Severity, rules

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
ALLOW_LOCAL = (ipaddress.ip_network("127.0.0.1/32"),)
DEFAULT_POLICY = FetchPolicy()
METADATA = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.partner.test"/>'
)
LOGIN_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Sign in to continue</body></html>"


# --- the network guard ---------------------------------------------------------------------


@dataclass
class Network:
    connects: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> Network:
    seen = Network()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def checked(address: Any) -> None:
        seen.connects.append((address[0], address[1]))
        if not any(ipaddress.ip_address(address[0]) in net for net in LOOPBACK):
            raise AssertionError(f"a test tried to connect to {address}")

    def connect(sock: socket.socket, address: Any) -> None:
        checked(address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        checked(address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str):
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise AssertionError(f"a test tried to resolve {host!r}") from None
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


class FakeDNS:
    """A resolver for the policy: fixed answers, every question recorded."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        return self.answers[host]


# --- a test PKI ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PKI:
    ca_file: str
    cert_file: str
    key_file: str


def _certificate(
    subject: str, issuer: str, public_key: Any, signing_key: ec.EllipticCurvePrivateKey, extensions: list[Any]
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """A self-signed test CA and a server certificate for idp.partner.test, localhost and 127.0.0.1."""
    directory: Path = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Preflight Test CA", "Preflight Test CA", ca_key.public_key(), ca_key, [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                       encipher_only=False, decipher_only=False), True),
    ])
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("idp.partner.test"), x509.DNSName("localhost"),
             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = _certificate("idp.partner.test", "Preflight Test CA", key.public_key(), ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.SubjectAlternativeName(names), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
    ])
    files = PKI(str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key"))
    Path(files.ca_file).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    Path(files.cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(files.key_file).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return files


# --- local servers ---------------------------------------------------------------------------

Route = Callable[["Handler"], None]


@dataclass(frozen=True)
class Seen:
    path: str
    host: str | None
    cookie: str | None


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.sni: list[str | None] = []
        self.stop = threading.Event()
        self.scheme = "https" if tls else "http"
        super().__init__(("127.0.0.1", 0), Handler)
        if tls:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    def server_bind(self) -> None:
        # Not HTTPServer.server_bind: its getfqdn() is a reverse DNS lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that the tests make hang up (refused TLS, too large, too slow) are expected."""

    def url(self, path: str = "/metadata", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.server_port}{path}"


class Handler(BaseHTTPRequestHandler):
    server: LocalServer

    def do_GET(self) -> None:
        self.server.seen.append(Seen(self.path, self.headers.get("Host"), self.headers.get("Cookie")))
        self.server.routes.get(self.path, respond(404, b"no route", "text/plain"))(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    server = LocalServer(tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def https_server(pki: PKI) -> Iterator[LocalServer]:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki.cert_file, pki.key_file)
    with serving(tls) as server:
        yield server


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    with serving() as server:
        yield server


def respond(
    status: int = 200,
    body: bytes = METADATA,
    content_type: str = "application/samlmetadata+xml",
    headers: Sequence[tuple[str, str]] = (),
) -> Route:
    def route(handler: Handler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return route


def redirect(location: str, *, cookie: str | None = None) -> Route:
    headers = [("Location", location)] + ([("Set-Cookie", cookie)] if cookie else [])
    return respond(302, b"", "text/plain", headers)


def local_policy(pki: PKI, **changes: Any) -> FetchPolicy:
    return FetchPolicy(allowed_networks=ALLOW_LOCAL, ca_bundle=pki.ca_file, **changes)


def refused(url: str, policy: FetchPolicy = DEFAULT_POLICY) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, policy)
    return caught.value


# --- success ---------------------------------------------------------------------------------


def test_fetches_metadata_over_https(https_server: LocalServer, pki: PKI) -> None:
    https_server.routes["/metadata"] = respond(headers=[("X-Served-By", "edge-1")])
    result = fetch(https_server.url(), local_policy(pki))
    assert result.status == 200
    assert result.body == METADATA
    assert result.content_type == "application/samlmetadata+xml"
    assert result.headers["x-served-by"] == "edge-1"
    assert result.url == result.final_url == https_server.url()
    assert result.redirects == ()
    assert 0 < result.elapsed_seconds < 3
    assert content_type_findings(result) == []


def test_connects_to_the_checked_address_with_the_name_for_sni_and_host(
    https_server: LocalServer, pki: PKI, network: Network
) -> None:
    https_server.routes["/metadata"] = respond()
    dns = FakeDNS({"idp.partner.test": ["127.0.0.1"]})
    result = fetch(https_server.url(host="idp.partner.test"), local_policy(pki, resolver=dns))
    assert result.body == METADATA
    port = https_server.server_port
    assert dns.calls == [("idp.partner.test", port)]  # resolved once; the guard refuses any other lookup
    assert network.connects == [("127.0.0.1", port)]
    assert https_server.sni == ["idp.partner.test"]
    assert https_server.seen[0].host == f"idp.partner.test:{port}"


def test_plain_http_is_fetched_only_when_allowed(http_server: LocalServer, network: Network) -> None:
    http_server.routes["/metadata"] = respond()
    err = refused(http_server.url(), FetchPolicy(allowed_networks=ALLOW_LOCAL))
    assert err.kind == "scheme"
    assert finding_for_fetch_error(err).code == "NET001"
    assert network.connects == []
    assert http_server.seen == []

    result = fetch(http_server.url(), FetchPolicy(allow_http=True, allowed_networks=ALLOW_LOCAL))
    assert result.body == METADATA


def test_proxy_environment_is_ignored(
    https_server: LocalServer, pki: PKI, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    https_server.routes["/metadata"] = respond()
    assert fetch(https_server.url(), local_policy(pki)).body == METADATA
    assert network.connects == [("127.0.0.1", https_server.server_port)]


def test_follows_a_relative_redirect_without_keeping_cookies(https_server: LocalServer, pki: PKI) -> None:
    https_server.routes["/start"] = redirect("/metadata", cookie="session=abc123; Path=/")
    https_server.routes["/metadata"] = respond()
    result = fetch(https_server.url("/start"), local_policy(pki))
    assert result.final_url == https_server.url()
    assert result.redirects == (https_server.url(),)
    assert [(s.path, s.cookie) for s in https_server.seen] == [("/start", None), ("/metadata", None)]


# --- refusals before any connection ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://ftp.partner.test/metadata.xml",
        "data:text/xml,<md:EntityDescriptor/>",
        "gopher://127.0.0.1:70/",
        "javascript:alert(1)",
        "//idp.partner.test/metadata",
    ],
)
def test_schemes_other_than_https_are_refused(url: str, network: Network) -> None:
    err = refused(url)
    assert err.kind == "scheme"
    assert finding_for_fetch_error(err).code == "NET001"
    assert network.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:s3cret@idp.partner.test/metadata",
        "http://admin:s3cret@idp.partner.test/metadata",
        "https://idp.partner.test@169.254.169.254/",
    ],
)
def test_userinfo_is_refused_without_echoing_it(url: str, network: Network) -> None:
    err = refused(url)
    assert err.kind == "userinfo"
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET002"
    assert "s3cret" not in finding.message and "s3cret" not in (finding.where or "")
    assert network.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "https://exa mple.com/metadata",
        "https://[zzz]/metadata",
        "https:///metadata",
        "https://idp.partner.test:99999/metadata",
        "https://idp.partner.test\n.evil.test/",
    ],
)
def test_malformed_urls_are_refused(url: str, network: Network) -> None:
    err = refused(url)
    assert err.kind == "bad-url"
    assert finding_for_fetch_error(err).code == "NET011"
    assert network.connects == []


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "169.254.169.254",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "[fc00::1]",
        "[fe80::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[2002:7f00:1::1]",
    ],
)
def test_non_public_address_literals_are_refused(host: str, network: Network) -> None:
    err = refused(f"https://{host}/metadata")
    assert err.kind == "forbidden-address"
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET004"
    assert host.strip("[]") in finding.message
    assert network.connects == []


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "169.254.169.254", "10.0.0.1"])
def test_a_name_resolving_to_a_non_public_address_is_refused(
    address: str, https_server: LocalServer, pki: PKI, network: Network
) -> None:
    https_server.routes["/metadata"] = respond()
    dns = FakeDNS({"idp.partner.test": [address]})
    err = refused(https_server.url(host="idp.partner.test"), FetchPolicy(ca_bundle=pki.ca_file, resolver=dns))
    assert err.kind == "forbidden-address"
    assert err.diagnostics["address"] == address
    assert address in finding_for_fetch_error(err).message
    assert network.connects == []
    assert https_server.seen == []


def test_one_non_public_answer_refuses_the_whole_name(network: Network) -> None:
    dns = FakeDNS({"idp.partner.test": ["8.8.8.8", "10.1.2.3"]})
    err = refused("https://idp.partner.test/metadata", FetchPolicy(resolver=dns))
    assert err.kind == "forbidden-address"
    assert err.diagnostics["resolved"] == ["8.8.8.8", "10.1.2.3"]
    assert network.connects == []


def test_a_name_that_does_not_resolve(network: Network) -> None:
    def nxdomain(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    err = refused("https://idp.partner.test/metadata", FetchPolicy(resolver=nxdomain))
    assert err.kind == "dns"
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET003"
    assert "idp.partner.test" in finding.message
    assert network.connects == []


# --- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "answers"),
    [
        ("https://10.0.0.1/metadata", {}),
        ("https://[::1]/metadata", {}),
        ("https://internal.partner.test/latest/meta-data/", {"internal.partner.test": ["169.254.169.254"]}),
    ],
)
def test_a_redirect_to_a_non_public_address_is_refused(
    location: str, answers: dict[str, list[str]], https_server: LocalServer, pki: PKI, network: Network
) -> None:
    https_server.routes["/start"] = redirect(location)
    err = refused(https_server.url("/start"), local_policy(pki, resolver=FakeDNS(answers)))
    assert err.kind == "forbidden-address"
    assert err.url == location
    assert err.diagnostics["redirects"] == [location]
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET004"
    assert finding.where == location
    assert https_server.url("/start") in finding.message
    assert network.connects == [("127.0.0.1", https_server.server_port)]
    assert [s.path for s in https_server.seen] == ["/start"]


def test_a_redirect_to_plain_http_is_refused(https_server: LocalServer, pki: PKI, network: Network) -> None:
    https_server.routes["/start"] = redirect(f"http://127.0.0.1:{https_server.server_port}/metadata")
    err = refused(https_server.url("/start"), local_policy(pki))
    assert err.kind == "scheme"
    assert len(network.connects) == 1


def test_three_redirects_are_followed_and_a_fourth_is_refused(https_server: LocalServer, pki: PKI) -> None:
    for hop in range(4):
        https_server.routes[f"/r{hop}"] = redirect(f"/r{hop + 1}")
    https_server.routes["/r4"] = respond()
    assert len(fetch(https_server.url("/r1"), local_policy(pki)).redirects) == 3

    https_server.seen.clear()
    err = refused(https_server.url("/r0"), local_policy(pki))
    assert err.kind == "redirects"
    assert [s.path for s in https_server.seen] == ["/r0", "/r1", "/r2", "/r3"]
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET009"
    assert finding.actual == " → ".join(https_server.url(f"/r{hop}") for hop in range(4))


def test_a_redirect_loop_is_refused(https_server: LocalServer, pki: PKI) -> None:
    https_server.routes["/loop"] = redirect("/loop")
    assert refused(https_server.url("/loop"), local_policy(pki)).kind == "redirects"


def test_a_redirect_without_a_location_is_a_status_error(https_server: LocalServer, pki: PKI) -> None:
    https_server.routes["/metadata"] = respond(302, b"", "text/plain")
    err = refused(https_server.url(), local_policy(pki))
    assert err.kind == "status"
    assert "302" in err.message


# --- responses and limits ----------------------------------------------------------------------


def test_an_error_status_reports_the_status_and_the_start_of_an_html_page(
    https_server: LocalServer, pki: PKI
) -> None:
    https_server.routes["/metadata"] = respond(404, LOGIN_PAGE, "text/html; charset=utf-8")
    err = refused(https_server.url(), local_policy(pki))
    assert err.kind == "status"
    assert err.diagnostics["status"] == 404
    assert err.diagnostics["content_type"] == "text/html; charset=utf-8"
    assert "<title>Sign in</title>" in str(err.diagnostics["body_start"])
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET008"
    assert finding.severity is Severity.ERROR
    assert "HTTP 404" in finding.message and "HTML page" in finding.message and "<html>" in finding.message
    assert "127.0.0.1" in finding.message
    assert finding.where == https_server.url()
    assert finding.actual == "HTTP 404, text/html; charset=utf-8"


def test_a_server_error_shows_the_first_bytes_of_the_body(https_server: LocalServer, pki: PKI) -> None:
    https_server.routes["/metadata"] = respond(503, b"upstream\x1b[31m down\n" * 100, "text/plain")
    err = refused(https_server.url(), local_policy(pki))
    assert err.kind == "status"
    assert "HTTP 503" in err.message
    assert "upstream\\u001b[31m down upstream" in err.message  # one line, escape characters visible
    assert len(str(err.diagnostics["body_start"])) < 300


def endless_body(outcome: list[str], done: threading.Event) -> Route:
    """64 MiB with no Content-Length: only a client that stops reading makes this route fail to finish."""

    def route(handler: Handler) -> None:
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/xml")
            handler.end_headers()
            for _ in range(1024):
                handler.wfile.write(b"<x/>" * 16384)
            outcome.append("sent everything")
        except OSError:
            outcome.append("client stopped reading")
        finally:
            done.set()

    return route


def test_an_oversized_body_is_refused_while_streaming(https_server: LocalServer, pki: PKI) -> None:
    outcome: list[str] = []
    done = threading.Event()
    https_server.routes["/metadata"] = endless_body(outcome, done)
    err = refused(https_server.url(), local_policy(pki, max_bytes=256 * 1024))
    assert err.kind == "too-large"
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET010"
    assert "262,144" in finding.message
    assert done.wait(5)
    assert outcome == ["client stopped reading"]


def test_a_declared_oversized_body_is_refused_before_reading(https_server: LocalServer, pki: PKI) -> None:
    def huge(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(50 * 1024 * 1024))
        handler.end_headers()
        handler.server.stop.wait(5)

    https_server.routes["/metadata"] = huge
    started = time.monotonic()
    err = refused(https_server.url(), local_policy(pki, max_bytes=1024 * 1024))
    assert err.kind == "too-large"
    assert "52,428,800" in err.message
    assert time.monotonic() - started < 2


def drip(prefix: bytes, byte: bytes) -> Route:
    """Send `prefix`, then one byte every 50 ms: each read succeeds, the whole never ends."""

    def route(handler: Handler) -> None:
        handler.wfile.write(prefix)
        while not handler.server.stop.wait(0.05):
            handler.wfile.write(byte)

    return route


@pytest.mark.parametrize(
    "route",
    [
        drip(b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x"),
        drip(b"HTTP/1.0 200 OK\r\nX-Slow: ", b"a"),
        drip(b"", b""),
    ],
    ids=["body", "headers", "silence"],
)
def test_a_slow_server_is_cut_off_at_the_total_timeout(
    route: Route, https_server: LocalServer, pki: PKI
) -> None:
    https_server.routes["/metadata"] = route
    started = time.monotonic()
    err = refused(https_server.url(), local_policy(pki, total_timeout=0.5))
    assert time.monotonic() - started < 2
    assert err.kind == "timeout"
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET006"
    assert https_server.url() in finding.message


def test_an_untrusted_certificate_is_a_tls_failure(https_server: LocalServer) -> None:
    https_server.routes["/metadata"] = respond()
    err = refused(https_server.url(), FetchPolicy(allowed_networks=ALLOW_LOCAL))
    assert err.kind == "tls"
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET007"
    assert "certificate verification failed" in finding.message
    assert https_server.seen == []


def test_a_certificate_for_another_name_is_a_tls_failure(https_server: LocalServer, pki: PKI) -> None:
    dns = FakeDNS({"other.partner.test": ["127.0.0.1"]})
    err = refused(https_server.url(host="other.partner.test"), local_policy(pki, resolver=dns))
    assert err.kind == "tls"
    assert "other.partner.test" in err.message
    assert https_server.seen == []


def test_plain_http_on_an_https_url_is_a_tls_failure(http_server: LocalServer, pki: PKI) -> None:
    url = f"https://127.0.0.1:{http_server.server_port}/metadata"
    assert refused(url, local_policy(pki)).kind == "tls"


def test_a_closed_port_is_a_connect_failure(pki: PKI) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = refused(f"https://127.0.0.1:{port}/metadata", local_policy(pki))
    assert err.kind == "connect"
    finding = finding_for_fetch_error(err)
    assert finding.code == "NET005"
    assert f"127.0.0.1:{port}" in finding.message


# --- content type ------------------------------------------------------------------------------


def test_a_login_page_served_with_200_is_flagged(https_server: LocalServer, pki: PKI) -> None:
    https_server.routes["/metadata"] = respond(200, LOGIN_PAGE, "text/html; charset=utf-8")
    findings = content_type_findings(fetch(https_server.url(), local_policy(pki)))
    assert [(f.code, f.severity) for f in findings] == [("NET012", Severity.WARNING)]
    assert "HTML page" in findings[0].message and "<title>Sign in</title>" in findings[0].message
    assert findings[0].where == https_server.url()


@pytest.mark.parametrize(
    ("content_type", "flagged"),
    [
        ("application/samlmetadata+xml", False),
        ("application/xml", False),
        ("text/xml; charset=UTF-8", False),
        ("text/plain", False),
        ("application/octet-stream", False),
        (None, False),
        ("application/json", True),
        ("text/html", True),
    ],
)
def test_content_types(content_type: str | None, flagged: bool) -> None:
    result = FetchResult(
        url="https://idp.partner.test/metadata",
        final_url="https://idp.partner.test/metadata",
        status=200,
        content_type=content_type,
        headers={},
        body=METADATA,
        redirects=(),
        elapsed_seconds=0.1,
    )
    assert bool(content_type_findings(result)) is flagged


def test_every_net_rule_is_documented() -> None:
    net = [r for r in rules() if r.code.startswith("NET")]
    assert [r.code for r in net] == [f"NET{n:03d}" for n in range(1, 13)]
    for registered in net:
        assert registered.subject == "fetch"
        assert registered.title and registered.what and registered.why and registered.fix
        assert registered.severity is (Severity.WARNING if registered.code == "NET012" else Severity.ERROR)


def test_an_ipv4_mapped_address_is_refused_even_of_a_public_ipv4_address(network: Network) -> None:
    # SECURITY.md §4 lists IPv4-mapped addresses among those never fetched from.
    err = refused("https://mapped.partner.test/metadata", FetchPolicy(resolver=FakeDNS(
        {"mapped.partner.test": ["::ffff:8.8.8.8"]})))
    assert err.kind == "forbidden-address" and "IPv4-mapped form of 8.8.8.8" in err.message
    assert network.connects == []
