"""The servers the benchmarks (and ``tests/test_reliability.py``) run: gunicorn on 127.0.0.1, started,
waited for until ``/healthz`` answers, measured and always stopped, one way for all of them.

- :func:`gunicorn` runs any WSGI app (``idp:create_app()``, ``bench.minimal_idp:app``,
  ``validator.web:create_app()`` …) in its own process group, on a free port or a given one;
  :func:`serve` is the same as a context manager.
- :class:`IdPServer` is the project IdP configured by :func:`write_settings`, restartable on the
  same port (so the same entity ID), with what the load and reliability runs need of it.

Only processes of the gunicorn started here are ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.measure import ROOT, child_env
from bench.workdir import CLAIMS, EMAIL_FORMAT, NAMEID

WORKERS = 2
HEALTH_TIMEOUT = 90.0
STARTS = 3
"""Attempts on a free port: another program may take it before gunicorn binds it."""


@dataclass(frozen=True)
class Server:
    """One running gunicorn: its master process, its base URL and its log."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def worker_pids(self) -> list[int]:
        return children(self.process.pid)

    def worker_cpu_seconds(self) -> float:
        """User + system CPU of the workers, and of the subprocesses they ran and waited for
        (pysaml2's xmlsec1), so far."""
        return sum(cpu_seconds(self.worker_pids(), waited_for=True).values())


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                    found.append(int(entry))
    return found


def cpu_seconds(pids: Iterable[int], *, waited_for: bool = False) -> dict[int, float]:
    """User + system CPU seconds of each live process of `pids` (with `waited_for`, plus those of
    the children it waited for); a process gone is left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime; then cutime, cstime: the CPU of the children it waited for
            found[pid] = sum(int(v) for v in fields[11:15 if waited_for else 13]) / ticks
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn_program() -> Path:
    script = Path(sys.executable).with_name("gunicorn")
    if not script.exists():
        raise RuntimeError(f"{script} not found (pip install gunicorn into the venv)")
    return script


def gunicorn(app: str, log: Path, environment: Callable[[str], Mapping[str, str]], *, workers: int = WORKERS,
             port: int | None = None, timeout: int = 60, drop: str = "") -> Server:
    """``gunicorn -w N APP`` on 127.0.0.1, healthy; RuntimeError (with the end of its log) if it
    does not start. `environment` gives the app's variables for its base URL (they are added to
    the benchmark children's environment, from which every variable starting with `drop` is
    removed first). Without `port`, a free one, tried again if another program takes it first."""
    problem = ""
    for _ in range(STARTS):
        chosen = port or free_port()
        base_url = f"http://127.0.0.1:{chosen}"
        env = {k: v for k, v in child_env().items() if not (drop and k.startswith(drop))}
        env.update(environment(base_url))
        argv = [str(gunicorn_program()), "-w", str(workers), "-b", f"127.0.0.1:{chosen}", "--chdir", str(ROOT),
                "--timeout", str(timeout), "--graceful-timeout", "10", "--no-control-socket", app]
        with log.open("ab") as out:
            process = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        server = Server(base_url, process, log)
        try:
            problem = wait_healthy(server)
        except BaseException:
            stop(server)
            raise
        if not problem:
            return server
        stop(server)
        if port is not None or "in use" not in problem:
            break
    raise RuntimeError(f"gunicorn {app!r} did not start: {problem}")


@contextlib.contextmanager
def serve(app: str, log: Path, environment: Callable[[str], Mapping[str, str]], **options: int) -> Iterator[Server]:
    """:func:`gunicorn` as a context manager: always stopped on exit."""
    server = gunicorn(app, log, environment, **options)
    try:
        yield server
    finally:
        stop(server)


def wait_healthy(server: Server) -> str:
    """'' once /healthz answers 200; otherwise why not (the end of gunicorn's log)."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return f"exited with {server.process.returncode}: {log_tail(server.log)}"
        try:
            with urllib.request.urlopen(server.base_url + "/healthz", timeout=5) as answer:  # 127.0.0.1 only
                if answer.status == 200:
                    return ""
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    return f"no healthy /healthz within {HEALTH_TIMEOUT:.0f} s: {log_tail(server.log)}"


def stop(server: Server) -> None:
    """SIGTERM to the master (it stops its workers and waits for them); SIGKILL to what is left.

    Only processes of this gunicorn are signalled: its master, and the workers it had, each
    checked by pid to still be in the master's process group (created by start_new_session).
    """
    process = server.process
    workers = children(process.pid) if process.poll() is None else []
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    if process.poll() is None:  # not reaped yet, so the group id is still this master's
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    for pid in workers:
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2]) == process.pid:
                os.kill(pid, signal.SIGKILL)


def log_tail(log: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the project IdP, as the load and reliability runs start it ------------------------------------

SP_ENTITY_ID = "https://sp.load.example/saml/metadata"
SP_ACS = "http://127.0.0.1:8000/saml/acs"
"""The local test SP's ACS (http on 127.0.0.1: the IdP runs in dev mode). Never contacted: the
driver reads the auto-POST form and validates the response in its own process."""
PERSONA = "alice"


def write_settings(folder: Path, base_url: str, *, auto_login: bool = True, store: str | None = None,
                   keys: Path | None = None) -> Path:
    """``folder/idp.toml``: one inline SP (http ACS on 127.0.0.1, dev mode), one persona with the
    8 claims of :data:`bench.workdir.CLAIMS` (signed in without a form when `auto_login`), the key
    folder `keys` (default: ``folder/keys``) and the store `store` (default: ``folder/state.sqlite3``)."""
    claims = "\n".join(f"{name} = {json.dumps(value)}" for name, value in CLAIMS.items())
    store = store or "sqlite:///" + str(folder / "state.sqlite3")
    path = folder / "idp.toml"
    path.write_text(f"""\
[server]
base_url = {json.dumps(base_url)}
key_folder = {json.dumps(str(keys or folder / "keys"))}
store = {json.dumps(store)}
dev_mode = true

[[personas]]
id = {json.dumps(PERSONA)}
display_name = "Alice Customer"
nameid = {json.dumps(NAMEID)}
nameid_format = {json.dumps(EMAIL_FORMAT)}
auto_login = {json.dumps(auto_login)}

[personas.claims]
{claims}

[[sps]]
entity_id = {json.dumps(SP_ENTITY_ID)}
acs = [{json.dumps(SP_ACS)}]
sign = "assertion"
""")
    return path


class IdPServer:
    """``gunicorn -w N 'idp:create_app()'`` on 127.0.0.1, configured through ``IDP_CONFIG`` with
    :func:`write_settings` in `folder` (its log: ``folder/gunicorn.log``); healthy once started,
    and always stopped on exit. A restart keeps the port, and so the base URL and entity ID."""

    def __init__(self, folder: Path, *, workers: int = WORKERS, auto_login: bool = True,
                 store: str | None = None, keys: Path | None = None) -> None:
        self.folder = folder
        self.workers = workers
        self.auto_login = auto_login
        self.store = store
        self.keys = keys
        self.port: int | None = None
        self.server: Server | None = None
        """The running gunicorn, None while stopped."""

    @property
    def base_url(self) -> str:
        assert self.port is not None, "not started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_path(self) -> Path:
        return self.folder / "state.sqlite3"

    @property
    def log(self) -> Path:
        return self.folder / "gunicorn.log"

    @property
    def master(self) -> subprocess.Popen[bytes]:
        assert self.server is not None, "not running"
        return self.server.process

    def _environment(self, base_url: str) -> dict[str, str]:
        config = write_settings(self.folder, base_url, auto_login=self.auto_login, store=self.store, keys=self.keys)
        return {"IDP_CONFIG": str(config)}

    def start(self) -> IdPServer:
        self.server = gunicorn("idp:create_app()", self.log, self._environment, workers=self.workers,
                               port=self.port, drop="IDP_")
        self.port = int(self.server.base_url.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """SIGTERM to the master, which stops its workers (SIGKILL to what is left after 20 s)."""
        if self.server is not None:
            server, self.server = self.server, None
            stop(server)

    def crash(self) -> None:
        """SIGKILL to the master and its workers at once (its own process group), as in a power cut
        of the service — but the file system keeps what was written."""
        process = self.master
        self.server = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        return sorted(children(self.master.pid))

    def worker_cpu_seconds(self) -> float:
        return self.server.worker_cpu_seconds() if self.server is not None else 0.0

    def log_tail(self, lines: int = 8) -> str:
        return log_tail(self.log, lines)

    def __enter__(self) -> IdPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
