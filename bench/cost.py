"""`python -m bench --only cost`: the adversarial corpus against the servers (issue 11, "Cost bounds").

The validator's web app and the test IdP each run under ``gunicorn -w 2`` on 127.0.0.1. For every
family of ``tests/cost_corpus.py`` this sends the worst form of it to an entry point, two attack
requests in flight at a time, while a third connection polls ``/healthz``. Per family it reports
the worst wall time of an attack request, the worst CPU a worker spent on one round of attacks
(a round is two concurrent requests; a worker that took both counts both), and the longest wait
for ``/healthz``. The target: at most 1 s of CPU per request, and ``/healthz`` answered throughout.
"""

from __future__ import annotations

import contextlib
import http.client
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.servers import SP_ACS, SP_ENTITY_ID, IdPServer, Server, cpu_seconds, serve
from bench.table import Row

CPU_TARGET = 1.0
ROUNDS = 2
"""Rounds per family; each round sends two attack requests at once."""
HEALTH_EVERY = 0.05
REQUEST_TIMEOUT = 120.0


_ACS_TOKEN = "cost-bench-browser-0001"
ACS_COOKIE = f"saml_preflight_test_login={_ACS_TOKEN}"


@dataclass(frozen=True)
class Attack:
    server: str
    """``validator`` or ``idp``."""
    entry: str
    family: str
    method: str
    path: str
    body: bytes = b""
    content_type: str = ""
    cookie: str = ""


@dataclass
class Measured:
    attack: Attack
    walls: list[float]
    cpu_rounds: list[float]
    statuses: list[int]
    health_wait: float
    health_failures: int


def attacks() -> list[Attack]:
    """The worst inputs, wrapped as each entry point takes them (the families of tests/test_cost.py)."""
    import json

    from tests import cost_corpus as corpus
    from tests.factory import make_keypair

    key = make_keypair("idp.example.com")
    cert = key.cert_b64
    peer = corpus.Peer(cert)
    found: list[Attack] = []
    responses = corpus.documents(corpus.RESPONSE, peer)
    trusted = corpus.certificate_repeated(cert, times=1).decode()

    def checked(response: bytes, metadata: str) -> bytes:
        return json.dumps({"response": response.decode("utf-8", "surrogateescape"), "metadata_xml": metadata},
                          ensure_ascii=False).encode("utf-8", "surrogateescape")

    for family in responses:
        found.append(Attack("validator", "POST /test-sp/acs", family, "POST", "/test-sp/acs",
                            corpus.acs_body(family, peer),
                            "application/x-www-form-urlencoded", cookie=ACS_COOKIE))
        found.append(Attack("validator", "POST /api/v1/responses", family, "POST", "/api/v1/responses",
                            checked(responses[family], trusted), "application/json"))
    from datetime import UTC, datetime

    tampered = corpus.tampered_response(key, datetime.now(UTC).replace(microsecond=0))
    found.append(Attack("validator", "POST /api/v1/responses", "repeated-certificate", "POST", "/api/v1/responses",
                        checked(tampered, corpus.certificate_repeated(cert).decode()), "application/json"))
    for family in corpus.builders(corpus.METADATA, peer):
        found.append(Attack("validator", "POST /api/v1/metadata", family, "POST", "/api/v1/metadata",
                            corpus.api_metadata_body(family, peer), "application/json"))
    found.append(Attack("validator", "POST /api/v1/metadata", "deep-json", "POST", "/api/v1/metadata",
                        corpus.deep_json(256 * corpus.KiB), "application/json"))
    request_peer = corpus.Peer(cert, sp_entity_id=SP_ENTITY_ID, sso_url="{base}/sso", sp_acs=SP_ACS)
    for family, document in corpus.documents(corpus.REQUEST, request_peer).items():
        found.append(Attack("idp", "GET /sso", family, "GET", "/sso?" + _redirect_query(document)))
        found.append(Attack("idp", "POST /sso", family, "POST", "/sso", corpus.form_body("SAMLRequest", document),
                            "application/x-www-form-urlencoded"))
    found.append(Attack("idp", "POST /api/v1/next-login", "deep-json", "POST", "/api/v1/next-login",
                        corpus.deep_json(256 * corpus.KiB), "application/json"))
    return found


def _redirect_query(xml: bytes) -> str:
    import base64
    import zlib
    from urllib.parse import quote

    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    return "SAMLRequest=" + quote(base64.b64encode(deflater.compress(xml) + deflater.flush()).decode(), safe="")


def _request(base_url: str, attack: Attack) -> tuple[int, float]:
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT)
    started = time.monotonic()
    try:
        headers = {"Content-Type": attack.content_type} if attack.body else {}
        if attack.cookie:
            headers["Cookie"] = attack.cookie
        connection.request(attack.method, attack.path.replace("{base}", base_url), body=attack.body or None,
                           headers=headers)
        answer = connection.getresponse()
        answer.read()
        return answer.status, time.monotonic() - started
    except OSError:
        return 0, time.monotonic() - started
    finally:
        connection.close()


class HealthPoller:
    """Polls ``/healthz`` on its own connection; keeps the longest wait and the failures."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.longest = 0.0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        probe = Attack("", "", "", "GET", "/healthz")
        while not self._stop.is_set():
            status, wall = _request(self.base_url, probe)
            self.longest = max(self.longest, wall)
            self.failures += status != 200
            self._stop.wait(HEALTH_EVERY)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(server: Server, attack: Attack) -> Measured:
    base_url = server.base_url
    result = Measured(attack, [], [], [], 0.0, 0)
    with HealthPoller(base_url) as health, ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(ROUNDS):
            before = cpu_seconds(server.worker_pids())
            done = list(pool.map(lambda _: _request(base_url, attack), range(2)))
            after = cpu_seconds(before)
            result.cpu_rounds.append(max((after.get(pid, 0.0) - cpu for pid, cpu in before.items()), default=0.0))
            for status, wall in done:
                result.statuses.append(status)
                result.walls.append(wall)
    result.health_wait, result.health_failures = health.longest, health.failures
    return result


@contextlib.contextmanager
def validator_server(folder: Path) -> Iterator[Server]:
    """``gunicorn -w 2 'validator.web:create_app()'`` on 127.0.0.1 with one CRM record; stopped on exit."""
    crm = folder / "crm"
    crm.mkdir()
    (crm / "B-1.toml").write_text(_record())

    def environment(base_url: str) -> dict[str, str]:
        return {"VALIDATOR_CRM_FOLDER": str(crm), "VALIDATOR_STORE": f"sqlite:///{folder / 'web.sqlite3'}",
                "VALIDATOR_BASE_URL": base_url}

    with serve("validator.web:create_app()", folder / "gunicorn-validator.log", environment, timeout=120,
               drop="VALIDATOR_") as server:
        _start_test_login(folder / "web.sqlite3")
        yield server


def _start_test_login(store_path: Path) -> None:
    """Mark the bench's browser as one that started a test login, as /test-login does (that route
    needs the partner's metadata first): the ACS reads no body for any other browser."""
    from metadata.store import SQLiteStore
    from validator.web.testsp import BROWSERS_NS

    SQLiteStore(store_path).put(BROWSERS_NS, _ACS_TOKEN, b"1", ttl=3600)


def _record() -> str:
    from tests.helpers import crm_toml

    return crm_toml(idp={"entity_id": "https://idp.example.com/saml"}, biller=("B-1", "Cost Biller"))


@contextlib.contextmanager
def idp_server(folder: Path) -> Iterator[Server]:
    with IdPServer(folder) as idp:
        assert idp.server is not None
        yield idp.server


def run(only: str | None = None) -> list[Measured]:
    chosen = [a for a in attacks() if only is None or only in a.family or only in a.entry]
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        for name, start in (("validator", validator_server), ("idp", idp_server)):
            mine = [a for a in chosen if a.server == name]
            if not mine:
                continue
            folder = Path(tmp) / name
            folder.mkdir()
            with start(folder) as server:
                for attack in mine:
                    results.append(measure(server, attack))
                    print(_line(results[-1]), flush=True)
    return results


def _line(m: Measured) -> str:
    statuses = ",".join(sorted({str(s) for s in m.statuses}))
    return (f"{m.attack.entry:26} {m.attack.family:40} wall {max(m.walls):6.2f} s  CPU/round "
            f"{max(m.cpu_rounds):6.2f} s  /healthz wait {m.health_wait:6.2f} s"
            f"{f' ({m.health_failures} failed)' if m.health_failures else ''}  HTTP {statuses}")


def rows(only: str | None = None) -> list[Row]:
    results = run(only)
    over = [m for m in results if max(m.cpu_rounds) > CPU_TARGET or m.health_failures or 0 in m.statuses
            or any(s >= 500 for s in m.statuses)]
    worst_cpu = max(results, key=lambda m: max(m.cpu_rounds))
    worst_health = max(results, key=lambda m: m.health_wait)
    return [Row(
        f"Adversarial corpus, gunicorn -w 2, two attacks in flight ({len(results)} family × entry point)",
        f"worst {max(worst_cpu.cpu_rounds):.2f} s CPU ({worst_cpu.attack.entry}, {worst_cpu.attack.family}); "
        f"/healthz waited ≤ {worst_health.health_wait:.2f} s",
        f"≤ {CPU_TARGET:g} s CPU per request, /healthz answered",
        "met" if not over else f"NOT MET ({len(over)} over)",
        [_line(m) for m in over] or ["every family within the target"],
    )]


if __name__ == "__main__":
    import sys

    for _ in rows(sys.argv[1] if len(sys.argv) > 1 else None):
        pass
