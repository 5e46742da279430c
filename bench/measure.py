"""Run one measurement in a fresh process and read its wall time and peak RSS.

The parent starts the child, waits for exactly that child with :func:`os.wait4` and reads the
child's own resource usage from it, so the peak RSS is that of the measured process alone
(``ru_maxrss``, kB on Linux), whatever ran before it in this process.
"""

from __future__ import annotations

import cProfile
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The project checkout; children run with it as the working directory."""
PYCACHE = Path(__file__).resolve().with_name(".data") / "pycache"


def child_env() -> dict[str, str]:
    """The environment of every measured process: ours, with a bytecode cache that works.

    An installed deployment runs from compiled bytecode. Where PYTHONDONTWRITEBYTECODE is set
    (as in some sandboxes), every process would recompile the project's sources instead, and
    the CLI benchmark would time the compiler; so children write and read bytecode under
    ``bench/.data/pycache`` (PYTHONPYCACHEPREFIX), outside the source tree. The warm-up run fills it.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    seconds: float
    """Wall time of the whole process, from start to exit."""
    cpu_seconds: float
    """User + system CPU time of the process."""
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run(argv: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> Run:
    """Run `argv` to completion in a fresh process; its output goes to files, never to a full pipe."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=child_env() if env is None else env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C or SIGTERM in the parent: the child must not outlive it
            proc.kill()
            proc.wait()
            raise
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        out.seek(0)
        err.seek(0)
        return Run(tuple(argv), seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


def child(kind: str, *args: str) -> tuple[Run, dict[str, Any]]:
    """One fresh `python -m bench.child KIND ARGS…`: the process and the JSON it printed."""
    proc = run([python(), "-m", "bench.child", kind, *args])
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}, no output"])[-1]
        result = {"error": tail[:300]}
    return proc, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def python() -> str:
    """The interpreter running the benchmarks (the project's venv when run as documented)."""
    return sys.executable


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    info = {
        "cpus": f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})",
        "cpu": _cpu_model(),
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_version()} ({sys.executable})",
    }
    try:
        from lxml import etree

        info["lxml"] = (f"{'.'.join(map(str, etree.LXML_VERSION[:3]))} "
                        f"(libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))})")
    except ImportError:
        info["lxml"] = "not installed"
    try:
        import xmlsec

        libxmlsec = ".".join(map(str, xmlsec.get_libxmlsec_version()))  # type: ignore[attr-defined]
        info["xmlsec"] = f"{_version('xmlsec')} (libxmlsec1 {libxmlsec})"
    except ImportError:
        info["xmlsec"] = "not installed"
    info["cryptography"] = _version("cryptography")
    info["pysaml2"] = _version("pysaml2")
    return info


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def profiled(one: Callable[[], object], count: int, *, warm_up: int = 5) -> tuple[float, float, cProfile.Profile]:
    """Seconds per call of `one` without and with cProfile, and the profile (after a warm-up)."""
    for _ in range(warm_up):
        one()
    start = time.perf_counter()
    for _ in range(count):
        one()
    plain = (time.perf_counter() - start) / count
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(count):
        one()
    profiler.disable()
    return plain, (time.perf_counter() - start) / count, profiler


def print_profile(profiler: cProfile.Profile, top: int) -> None:
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def run_children(kinds: Iterable[str], results: dict[str, list[dict[str, Any]]], errors: dict[str, str],
                 *args: str) -> None:
    """One measured child run of each kind (skipping kinds that already failed)."""
    for kind in kinds:
        if kind in errors:
            continue
        _, result = child(kind, *args)
        if "error" in result:
            errors[kind] = result["error"]
        else:
            results[kind].append(result)
