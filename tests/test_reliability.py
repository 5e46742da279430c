"""Faults the IdP survives without losing a login (issue 7, "Faults survived").

Each test starts what it breaks: gunicorn from the venv (``bench.servers.IdPServer``, two
workers), a redis-server of its own (``tests.redis_server``), a tiny tmpfs where this machine
lets root mount one. Logins are checked by the local test SP of the load benchmark
(``bench.load.LocalSP``): signature with the IdP's certificate, InResponseTo, Destination,
Recipient, each request answered at most once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from flask import Flask
from flask.testing import FlaskClient

from bench.load import LocalSP, login, new_pool, run_logins
from bench.servers import IdPServer, write_settings
from metadata.keys import KeyFolder, KeyStoreError
from metadata.saml import PERSISTENT
from metadata.store import SQLiteStore, open_store
from tests.idp_support import (
    ACS,
    IDP_BASE,
    SP_ENTITY,
    form_fields,
    idp_key,
    make_idp,
    make_idp_with_store,
    pem_body,
    sso_path,
)
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")
needs_gunicorn = pytest.mark.skipif(not GUNICORN.exists(),
                                    reason=f"{GUNICORN} is missing: `make test` installs it (pip install -e '.[test]')")


def _get(base_url: str, path: str) -> urllib3.BaseHTTPResponse:
    answer: urllib3.BaseHTTPResponse = new_pool(base_url).request("GET", path, redirect=False)
    return answer


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {seconds:g} s")
        time.sleep(0.05)


# -- kill -9 of a gunicorn worker during load ------------------------------------------------------

BURST = 5.0


@needs_gunicorn
def test_kill_9_of_a_worker_mid_burst_loses_no_completed_login(tmp_path: Path) -> None:
    with IdPServer(tmp_path) as idp:
        sp = LocalSP.for_idp(idp.base_url)
        victims: list[tuple[int, float]] = []

        def kill_one() -> None:
            time.sleep(BURST / 2)
            pid = idp.worker_pids()[0]
            victims.append((pid, time.perf_counter()))
            os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_one)
        killer.start()
        flows = run_logins(idp.base_url, sp, BURST, 6)
        killer.join()
        [(victim, killed_at)] = victims

        # In-flight logins failed the way a login may: no answer or an HTTP error. None got a
        # half page, a response the SP refused, or an answer to another flow's request.
        assert [f.outcome for f in flows if not f.clean] == []
        failed = [f for f in flows if not f.ok]
        assert all(f.outcome.startswith(("no answer", "HTTP 5")) for f in failed), [f.outcome for f in failed]
        completed = [f for f in flows if f.ok]
        assert any(f.began + f.http_seconds < killed_at for f in completed), "no login completed before the kill"
        assert any(f.began > killed_at for f in completed), "no login completed after the kill"
        # Every completed login's request was consumed exactly once; only the failed ones are unanswered.
        ledger = sp.ledger()
        assert ledger.problems(len(failed)) == []
        assert ledger.accepted == len(completed) and ledger.issued == len(flows)

        # gunicorn replaced the worker; the IdP keeps serving, with both workers.
        _wait_for(lambda: len(idp.worker_pids()) == 2 and victim not in idp.worker_pids(), 30,
                  f"a new worker in place of {victim}")
        pool = new_pool(idp.base_url)
        after = [login(pool, idp.base_url, sp) for _ in range(6)]
        assert [f.outcome for f in after] == ["ok"] * 6
        assert _get(idp.base_url, "/healthz").status == 200

        # The SQLite store is intact, still works, and kept every completed login's IdP session.
        with contextlib.closing(sqlite3.connect(idp.store_path)) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        store = SQLiteStore(idp.store_path)
        try:
            assert all(store.get("session", f.session or "") is not None for f in completed + after)
            assert store.keys("pending") == []
            store.put("reliability", "probe", b"1", ttl=60)
            assert store.take("reliability", "probe") == b"1"
        finally:
            store.close()


# -- a restart keeps the keys and the open sessions -----------------------------------------------

@needs_gunicorn
@pytest.mark.parametrize("how", ["stop", "crash"])
def test_restart_keeps_keys_and_open_sessions(tmp_path: Path, how: str) -> None:
    idp = IdPServer(tmp_path, auto_login=False)  # so that SSO can only come from the session cookie
    with idp:
        sp = LocalSP.for_idp(idp.base_url)
        keys = {path.name: path.read_bytes() for path in (tmp_path / "keys").glob("signing.*")}
        assert set(keys) == {"signing.key", "signing.crt"}
        pool = new_pool(idp.base_url)
        first = login(pool, idp.base_url, sp, picker=True)
        assert first.ok and first.session, first.outcome
        if how == "crash":  # SIGKILL to the master and its workers at once
            idp.crash()
        else:
            idp.stop()
        with pytest.raises(urllib3.exceptions.HTTPError):
            _get(idp.base_url, "/healthz")
        idp.start()  # the same port, settings, key folder and store

        assert LocalSP.for_idp(idp.base_url).certificates == sp.certificates
        assert {path.name: path.read_bytes() for path in (tmp_path / "keys").glob("signing.*")} == keys
        again = login(new_pool(idp.base_url), idp.base_url, sp, cookie=first.session)
        assert again.outcome == "ok"  # the auto-POST form at once: no login page
        assert again.accepted is not None and first.accepted is not None
        assert again.accepted.session_index == first.accepted.session_index
        stranger = login(new_pool(idp.base_url), idp.base_url, sp)
        assert stranger.outcome.startswith("HTTP 303 to /login?request=")


# -- Redis going away --------------------------------------------------------------------------

def _sp_for(app: Flask) -> LocalSP:
    return LocalSP(f"{IDP_BASE}/metadata", [idp_key(app).cert_der], entity_id=SP_ENTITY, acs=ACS)


def _sign_in(client: FlaskClient, sp: LocalSP) -> str:
    """A whole login on the in-process IdP (SSO, or the persona picker); the NameID the SP accepted."""
    request_id, url = sp.request(f"{IDP_BASE}/sso")
    page = client.get(sso_path(url))
    if page.status_code == 303:
        token = page.headers["Location"].split("request=", 1)[1]
        page = client.post("/login", data={"request": token, "persona": "alice"})
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    fields = form_fields(page.get_data(as_text=True))
    return sp.accept(fields["_action"], fields["SAMLResponse"], request_id).nameid


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (the session's one is shared): stopped, killed, restarted here."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


def _unavailable(answer: Any, url: str) -> None:
    """A clear 503: the store is unavailable, which one, and when to try again."""
    text = answer.get_data(as_text=True)
    assert answer.status_code == 503, text[:300]
    assert "store is unavailable" in text or "cannot reach its store" in text, text
    assert f"Redis store {url} is unreachable" in text, text
    assert int(answer.headers["Retry-After"]) > 0


@pytest.mark.parametrize("outage", ["killed", "frozen"])
def test_redis_going_away_gives_a_clear_503_and_service_returns(
    tmp_path: Path, redis_server: RedisServer, outage: str
) -> None:
    app = make_idp_with_store(tmp_path, open_store(redis_server.url, tmp_path / "unused.sqlite3"))
    client = app.test_client()
    sp = _sp_for(app)
    assert _sign_in(client, sp) == "alice@example.com"
    pending = app.test_client().get(sso_path(sp.request(f"{IDP_BASE}/sso")[1])).headers["Location"]
    assert redis_server.process is not None

    if outage == "killed":
        redis_server.stop(kill=True)
    else:  # a Redis that hangs: the store's timeouts must turn it into a 503, not a stuck worker
        os.kill(redis_server.process.pid, signal.SIGSTOP)
    checks: list[tuple[str, Callable[[], Any]]] = [
        ("/healthz", lambda: client.get("/healthz")),
        ("/sso", lambda: client.get(sso_path(sp.request(f"{IDP_BASE}/sso")[1]))),
    ]
    if outage == "killed":  # each check of a frozen Redis waits out the timeouts; two are enough
        checks += [
            ("/login", lambda: client.get(pending)),
            ("next-login", lambda: client.post("/api/v1/next-login", json={"persona": "alice"})),
        ]
    for what, check in checks:
        began = time.monotonic()
        answer = check()
        assert time.monotonic() - began < 10, f"{what} took {time.monotonic() - began:.1f} s"
        if what == "/healthz":
            assert answer.status_code == 503 and answer.get_json()["status"] == "unavailable"
        else:
            _unavailable(answer, redis_server.url)

    if outage == "killed":
        redis_server.start()  # the same port; empty (no persistence)
    else:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    assert client.get("/healthz").status_code == 200
    assert _sign_in(client, sp) == "alice@example.com"


@needs_gunicorn
def test_a_worker_that_starts_while_redis_is_down_boots_and_serves_once_it_is_back(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """gunicorn stops every worker when one fails to boot: a worker replaced during an outage
    (a crash, a timeout, max_requests) must boot, answer 503, and serve once Redis is back."""
    with IdPServer(tmp_path, store=redis_server.url) as idp:
        sp = LocalSP.for_idp(idp.base_url)
        assert login(new_pool(idp.base_url), idp.base_url, sp).ok
        redis_server.stop(kill=True)
        victim = idp.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        log = tmp_path / "gunicorn.log"
        # Booted (it logs that it starts without its store), or gunicorn gave up on it and stopped.
        _wait_for(lambda: "starting while the store is unavailable" in log.read_text() or idp.master.poll() is not None,
                  30, f"a new worker in place of {victim}")
        assert idp.master.poll() is None, idp.log_tail()
        _wait_for(lambda: len(idp.worker_pids()) == 2, 10, "two workers")
        for _ in range(4):  # both workers, whichever takes the connection
            flow = login(new_pool(idp.base_url), idp.base_url, sp)
            assert flow.outcome == "HTTP 503", flow.outcome
        assert idp.master.poll() is None, idp.log_tail()
        redis_server.start()
        assert _get(idp.base_url, "/healthz").status == 200
        assert [login(new_pool(idp.base_url), idp.base_url, sp).outcome for _ in range(4)] == ["ok"] * 4


def test_a_store_that_lost_the_secret_never_keys_nameids_with_an_empty_one(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A Redis without persistence comes back empty: the key of pairwise persistent NameIDs must
    not become the empty key (with which anyone computes every persona's NameID); a new secret
    is made, and the NameIDs are stable again from then on."""
    from idp.settings import ServiceProvider

    app = make_idp_with_store(tmp_path, open_store(redis_server.url, tmp_path / "unused.sqlite3"),
                              sps=(ServiceProvider(entity_id=SP_ENTITY, acs=[ACS]),))
    sp = LocalSP(f"{IDP_BASE}/metadata", [idp_key(app).cert_der], entity_id=SP_ENTITY, acs=ACS,
                 nameid_format=PERSISTENT)
    before = _sign_in(app.test_client(), sp)
    redis_server.stop(kill=True)
    redis_server.start()
    after = _sign_in(app.test_client(), sp)
    empty_key = "_" + hmac.new(b"", f"alice\x00{SP_ENTITY}".encode(), hashlib.sha256).hexdigest()[:40]
    assert empty_key not in (before, after)
    assert after.startswith("_") and len(after) == 41
    assert _sign_in(app.test_client(), sp) == after


# -- a read-only or full key folder at first start -------------------------------------------------

def _left_in(folder: Path) -> list[str]:
    """What a failed first start left in the key folder, but for the writers' lock file."""
    return sorted(p.name for p in folder.iterdir() if p.name != ".lock") if folder.exists() else []


def _first_start_works(tmp_path: Path, keys: Path) -> None:
    app = make_idp(tmp_path)
    assert stat.S_IMODE((keys / "signing.key").stat().st_mode) == 0o600
    assert _left_in(keys) == ["signing.crt", "signing.key"]
    assert KeyFolder(keys).current().cert_der == idp_key(app).cert_der
    assert app.test_client().get("/healthz").status_code == 200


def _failing(real: Callable[..., Any], only: Callable[[tuple[Any, ...]], bool]) -> Callable[..., Any]:
    """`real`, raising ENOSPC (disk full) for the calls `only` picks."""
    def call(*args: Any) -> Any:
        if only(args):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args)
    return call


def _fd_in(folder: Path, fd: int) -> bool:
    """`fd` is a file (not the folder itself) inside `folder`."""
    return os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder) + "/") and stat.S_ISREG(os.fstat(fd).st_mode)


@pytest.mark.parametrize("step", ["write", "fsync", "link key", "link certificate"])
def test_full_key_folder_at_first_start_leaves_no_half_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    keys = tmp_path / "keys"
    if step == "write":
        monkeypatch.setattr(os, "write", _failing(os.write, lambda a: _fd_in(keys, a[0])))
    elif step == "fsync":  # of a file's data (a failed fsync of the folder comes after both links)
        monkeypatch.setattr(os, "fsync", _failing(os.fsync, lambda a: _fd_in(keys, a[0])))
    else:
        suffix = ".key" if step == "link key" else ".crt"
        monkeypatch.setattr(os, "link", _failing(os.link, lambda a: str(a[1]).endswith(suffix)))
    with pytest.raises(KeyStoreError) as failure:
        make_idp(tmp_path)
    assert str(failure.value) == f"key folder {keys}: cannot store a key: the disk is full"
    assert failure.value.folder == keys and failure.value.reason == "the disk is full"
    assert _left_in(keys) == []
    monkeypatch.undo()
    _first_start_works(tmp_path, keys)


def test_key_folder_not_writable_by_the_idp_at_first_start(tmp_path: Path) -> None:
    """Mode 0555 for a user other than root (root ignores modes: the child becomes nobody)."""
    make_idp(tmp_path / "warm")  # every module the child needs is imported before it drops privileges
    base = Path(tempfile.mkdtemp(prefix="reliability-"))  # pytest's tmp_path is closed to other users
    keys = base / "keys"
    try:
        for folder in (base, base / "state"):
            folder.mkdir(exist_ok=True)
            folder.chmod(0o777)
        keys.mkdir(mode=0o555)
        keys.chmod(0o555)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child reports through the pipe and never returns into pytest
            try:
                os.close(read)
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                try:
                    make_idp_with_store(base, SQLiteStore(base / "state" / "s.sqlite3"))
                    message = "started"
                except KeyStoreError as exc:
                    message = f"{exc.reason}|{exc}"
                except BaseException as exc:
                    message = f"{type(exc).__name__}|{exc}"
                os.write(write, message.encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            outcome = pipe.read().decode()
        os.waitpid(pid, 0)
        reason = "the folder is not writable"
        assert outcome == f"{reason}|key folder {keys}: cannot store a key: {reason}"
        assert _left_in(keys) == []
        keys.chmod(0o700)
        _first_start_works(base, keys)
    finally:
        keys.chmod(0o700)
        shutil.rmtree(base)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a tmpfs at ``tmp_path/keys`` with the given options (a real full or read-only file system)."""
    target = tmp_path / "keys"
    target.mkdir()
    mounted = False

    def mount(options: str) -> Path:
        nonlocal mounted
        command = ["mount", "-o", f"remount,{options}", str(target)] if mounted else [
            "mount", "-t", "tmpfs", "-o", f"{options},mode=0700", "tmpfs", str(target)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            if not mounted:
                pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): needs root "
                            "with CAP_SYS_ADMIN; the in-process ENOSPC tests cover the same code")
            pytest.fail(f"{' '.join(command)}: {done.stderr.strip()}")
        mounted = True
        return target

    try:
        yield mount
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(target)], check=False)


def _first_start(config: Path) -> subprocess.CompletedProcess[str]:
    """``saml-idp metadata``: a whole first start (settings, key folder, store) in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    return subprocess.run([sys.executable, "-m", "idp.cli", "metadata", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def _config(tmp_path: Path) -> Path:
    """The load benchmark's settings, in ``tmp_path/conf``, with the key folder ``tmp_path/keys``."""
    (tmp_path / "conf").mkdir(exist_ok=True)
    return write_settings(tmp_path / "conf", "http://127.0.0.1:8080", keys=tmp_path / "keys")


def test_full_disk_at_first_start_on_a_real_tmpfs(tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    keys = tmpfs("size=4k")  # one page: the key's temporary file fits, the certificate's does not
    failed = _first_start(_config(tmp_path))
    assert failed.returncode == 2, failed.stderr
    assert failed.stderr.strip() == f"KeyStoreError: key folder {keys}: cannot store a key: the disk is full"
    assert _left_in(keys) == []
    tmpfs("size=1m")
    started = _first_start(_config(tmp_path))
    assert started.returncode == 0, started.stderr
    pair = KeyFolder(keys).current()
    assert pem_body(pair.cert_pem) in started.stdout
    assert stat.S_IMODE((keys / "signing.key").stat().st_mode) == 0o600


@needs_gunicorn
def test_read_only_key_folder_at_first_start_under_gunicorn(tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    keys = tmpfs("ro,size=1m")
    expected = f"key folder {keys}: cannot store a key: the folder is on a read-only file system"
    failed = _first_start(_config(tmp_path))
    assert failed.returncode == 2 and failed.stderr.strip() == f"KeyStoreError: {expected}", failed.stderr
    server = IdPServer(tmp_path / "conf", keys=keys)
    # gunicorn stops at once: its first worker cannot boot, and its log says why.
    with pytest.raises(RuntimeError, match="did not start"):
        server.start()
    assert expected in (tmp_path / "conf" / "gunicorn.log").read_text()
    assert _left_in(keys) == []
    tmpfs("rw")
    with server:
        assert _get(server.base_url, "/metadata").status == 200
        assert _left_in(keys) == ["signing.crt", "signing.key"]
