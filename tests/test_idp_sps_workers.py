"""An SP registered at runtime is answered by every worker and every host sharing the store.

- gunicorn with two workers and the SQLite store: the SP is registered through the API on one
  worker, and logins are repeated until one is served by the other worker (the access log names the
  pid of each request's worker); the same after a deletion, refused.
- Two IdP processes (two "hosts") sharing a Redis store: registered on one, logged in on the other;
  deleted on the other, refused on the first.

Logins are checked by the load benchmark's local SP (``bench.load.LocalSP``): signature, InResponseTo,
Destination, Recipient. Nothing here is timed.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from bench.load import Flow, LocalSP, login, new_pool
from bench.servers import IdPServer
from metadata.saml import BINDING_POST
from tests.sp_support import sp_metadata

GUNICORN = Path(sys.executable).with_name("gunicorn")
pytestmark = pytest.mark.skipif(not GUNICORN.exists(), reason=f"{GUNICORN} is missing: `make test` installs it "
                                "(pip install -e '.[test]')")

TOKEN = "workers-token"
SP = "https://sp.registered.example/saml/metadata"
SP_ACS = "http://127.0.0.1:8000/saml/registered-acs"
"""http on 127.0.0.1: IdPServer's IdP runs in dev mode."""
AT_ONCE = 4
BATCHES = 25
"""Logins tried before giving up on the other worker: batches of AT_ONCE at once."""
LOGGED_WITHIN = 30.0
"""Seconds a request's access log line may take to appear (a bound for a stuck worker, not a timing)."""


class LoggedIdPServer(IdPServer):
    """:class:`IdPServer` with an api_token, and an access log of ``<pid> METHOD PATH STATUS`` lines."""

    @property
    def access_log(self) -> Path:
        return self.folder / "access.log"

    def _environment(self, base_url: str) -> dict[str, str]:
        log_format = "%(p)s %(m)s %(U)s %(s)s"
        return {**super()._environment(base_url), "IDP_API_TOKEN": TOKEN,
                "GUNICORN_CMD_ARGS": f"--access-logfile {shlex.quote(str(self.access_log))} "
                                     f"--access-logformat {shlex.quote(log_format)}"}

    def served(self) -> list[tuple[int, str, str, str]]:
        """(worker pid, method, path, status) of every request so far, oldest first."""
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        found = []
        for line in lines:
            pid, method, path, status = line.split(" ", 3)
            found.append((int(pid.strip("<>")), method, path, status))
        return found

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.served() if r[1] == method and r[2] == path)

    def last(self, method: str, path: str, *, count: int) -> tuple[int, str]:
        """The worker pid and status of the `count`-th `method` `path` request, once it is logged (a
        worker writes the line after the client has its answer)."""
        deadline = time.monotonic() + LOGGED_WITHIN
        while True:
            found = [r for r in self.served() if r[1] == method and r[2] == path]
            if len(found) >= count:
                pid, _, _, status = found[count - 1]
                return pid, status
            if time.monotonic() > deadline:
                pytest.fail(f"request {count} of {method} {path} not in the access log: {found[-3:]}")
            time.sleep(0.02)


def register(base_url: str) -> None:
    body = json.dumps({"metadata": sp_metadata(SP, [(BINDING_POST, SP_ACS)]), "by": "test_idp_sps_workers"})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    answer = new_pool(base_url).request("POST", "/api/v1/sps", body=body.encode(), headers=headers)
    assert answer.status == 201, answer.data[:500]


def unregister(base_url: str) -> None:
    answer = new_pool(base_url).request("DELETE", f"/api/v1/sps?entity_id={quote(SP, safe='')}",
                                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status == 200, answer.data[:500]


def registered_sp(base_url: str) -> LocalSP:
    """The SP end of a login for the runtime SP, trusting what this IdP's /metadata publishes."""
    idp = LocalSP.for_idp(base_url)
    return LocalSP(idp.idp_entity_id, idp.certificates, entity_id=SP, acs=SP_ACS)


def until_other_worker(server: LoggedIdPServer, than: int, attempt: Callable[[], Flow]) -> tuple[list[Flow], list[str]]:
    """Logins (`attempt`, each on its own connection), a few at once so that a busy worker leaves the
    next to the other one (one worker alone, idle, may take every new connection), repeated until one
    was served by a worker other than `than`: every flow tried, and every status /sso logged meanwhile."""
    flows: list[Flow] = []
    statuses: list[str] = []
    for _ in range(BATCHES):
        before = server.count("GET", "/sso")
        with ThreadPoolExecutor(AT_ONCE) as pool:
            flows.extend(pool.map(lambda _: attempt(), range(AT_ONCE)))
        served = [server.last("GET", "/sso", count=before + i + 1) for i in range(AT_ONCE)]
        statuses.extend(status for _, status in served)
        if any(pid != than for pid, _ in served):
            return flows, statuses
    pytest.fail(f"{BATCHES * AT_ONCE} logins, all served by worker {than}: {server.served()[-5:]}")


def test_registered_on_one_worker_answered_by_the_other(tmp_path: Path) -> None:
    with LoggedIdPServer(tmp_path, workers=2) as server:
        base = server.base_url
        register(base)
        registrar, status = server.last("POST", "/api/v1/sps", count=1)
        assert status == "201" and registrar in server.worker_pids()
        sp = registered_sp(base)

        flows, statuses = until_other_worker(server, registrar, lambda: login(new_pool(base), base, sp))
        assert [f.outcome for f in flows] == ["ok"] * len(flows) and set(statuses) == {"200"}
        assert sp.ledger().problems(0) == []  # each answered once, to its own request

        unregister(base)
        remover, _ = server.last("DELETE", "/api/v1/sps", count=1)
        refused, statuses = until_other_worker(server, remover, lambda: login(new_pool(base), base, sp))
        assert [f.outcome for f in refused] == ["HTTP 400"] * len(refused) and set(statuses) == {"400"}
        assert sp.ledger().accepted == len(flows)


def test_registered_on_one_host_answered_by_another_through_redis(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with LoggedIdPServer(tmp_path / "a", workers=1, store=redis_url) as first, \
            LoggedIdPServer(tmp_path / "b", workers=1, store=redis_url) as second:
        register(first.base_url)
        sp = registered_sp(second.base_url)
        flow = login(new_pool(second.base_url), second.base_url, sp)
        assert flow.outcome == "ok" and flow.accepted is not None
        assert [r[1:] for r in second.served() if r[2] == "/api/v1/sps"] == []  # the second host was never told

        unregister(second.base_url)
        refused = login(new_pool(first.base_url), first.base_url, registered_sp(first.base_url))
        assert refused.outcome == "HTTP 400"
