"""The load generator of the HTTP-flow benchmark: SP-initiated flows, one HTTP request each.

Each flow is ``GET /sso?SAMLRequest=…`` with a new unsigned AuthnRequest (HTTP-Redirect
binding: raw DEFLATE, base64, URL-encoded; a fresh ID and IssueInstant every time), and it
counts only when the answer is a 200 whose body holds the SAMLResponse field of the auto-POST
form. `concurrency` threads each keep one ``http.client`` connection (reopened whenever the
server closes it: gunicorn's default sync workers close after every response) and send the
next flow as soon as the previous answer is read, until `seconds` have passed; requests in
flight then finish. Only 127.0.0.1 is contacted.

It imports neither the project nor pysaml2: the same generator drives both IdPs.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import math
import secrets
import threading
import time
import zlib
from collections import Counter
from typing import Any
from urllib.parse import quote, urlsplit

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
MARKER = b'name="SAMLResponse"'


def authn_request(destination: str, sp_entity_id: str, acs: str) -> tuple[str, bytes]:
    """A new AuthnRequest for `destination`: its ID and its XML."""
    request_id = "_" + secrets.token_hex(16)
    instant = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = (
        f'<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{request_id}" Version="2.0" '
        f'IssueInstant="{instant}" Destination="{destination}" AssertionConsumerServiceURL="{acs}" '
        f'ProtocolBinding="{POST}"><saml:Issuer>{sp_entity_id}</saml:Issuer>'
        f'<samlp:NameIDPolicy Format="{EMAIL}" AllowCreate="true"/></samlp:AuthnRequest>'
    )
    return request_id, xml.encode()


def redirect_path(sso_url: str, sp_entity_id: str, acs: str) -> tuple[str, str]:
    """The request ID and the path + query of one HTTP-Redirect flow to `sso_url`."""
    request_id, xml = authn_request(sso_url, sp_entity_id, acs)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(deflater.compress(xml) + deflater.flush()).decode("ascii")
    return request_id, f"{urlsplit(sso_url).path}?SAMLRequest={quote(encoded, safe='')}"


def fetch(base_url: str, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """One GET on a new connection: status and body."""
    parts = urlsplit(base_url)
    assert parts.hostname == "127.0.0.1", base_url
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def run_load(base_url: str, seconds: float, concurrency: int, sp_entity_id: str, acs: str) -> dict[str, Any]:
    parts = urlsplit(base_url)
    if parts.hostname != "127.0.0.1" or parts.port is None:
        raise ValueError(f"the load generator only talks to 127.0.0.1:PORT, not {base_url!r}")
    if not 0 < seconds <= 120 or not 1 <= concurrency <= 64:
        raise ValueError("seconds must be in (0, 120] and concurrency in [1, 64]")
    sso_url = base_url.rstrip("/") + "/sso"
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    samples: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter()
    stop_at = start + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine: list[float] = []
        try:
            while time.perf_counter() < stop_at:
                _, path = redirect_path(sso_url, sp_entity_id, acs)
                began = time.perf_counter()
                try:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    body = response.read()
                    if response.will_close:
                        conn.close()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    _error(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - began
                if response.status == 200 and MARKER in body:
                    mine.append(elapsed)
                else:
                    _error(f"HTTP {response.status}" + ("" if response.status != 200 else " without SAMLResponse"),
                           body[:300].decode("utf-8", "replace"))
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    def _error(kind: str, detail: str = "") -> None:
        with lock:
            errors[kind] += 1
            if len(samples) < 3:
                samples.append(f"{kind} {detail}".strip())
            overloaded = sum(errors.values()) > 1000
        if overloaded:
            time.sleep(0.01)  # do not spin on a dead server

    cpu = time.process_time()
    threads = [threading.Thread(target=client, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "flows": len(latencies),
        "seconds": wall,
        "flows_per_second": len(latencies) / wall,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "error_samples": samples,
        "concurrency": concurrency,
        "client_cpu_seconds": time.process_time() - cpu,
        "stuck_threads": sum(t.is_alive() for t in threads),
    }


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not ordered:
        return 0.0
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
    return ordered[rank - 1]
