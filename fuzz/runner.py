"""Runs one target in a child process and watches it: crashes, hangs and memory are caught here.

The child (:mod:`fuzz.worker`) records each input in a shared heartbeat file before running it.
From outside, the runner kills the child when one input runs longer than the per-input budget
or its resident memory passes the limit, and reads the guilty input from the heartbeat; a
property violation the child reports itself, with its traceback. Whatever the failure, the
input is saved as ``<crash_dir>/<target>/crash-<sha1>``. Memory that grows past the limit
*between* inputs is no input's fault: the child is started afresh and the run goes on.

Slowness is a finding too (SECURITY.md §7): an input whose run costs more than ``slow_ms`` of
CPU, measured by the child around the target call alone, does not stop the run; the slowest few
are saved as ``<crash_dir>/<target>/slow-<sha1>`` and the run ends with the verdict ``slow``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fuzz.heartbeat import Heartbeat
from fuzz.worker import SLOW_KEPT, VIOLATION

ROOT = Path(__file__).resolve().parents[1]
CRASH_DIR = ROOT / "tests" / "fixtures" / "fuzz"
Engine = Literal["atheris", "hypothesis"]
Verdict = Literal["ok", "slow", "violation", "hang", "memory", "crash", "setup", "harness"]

SETUP_SECONDS = 120
"""Imports, two RSA keys and the seeds, before the first input; longer is a failure of its own."""
SLOW_MS = 100.0
"""CPU milliseconds past which one input is a finding: a tenth of the 1 s each entry point promises."""


@dataclass(frozen=True)
class Slow:
    """An input whose run cost more CPU than the threshold, as saved."""

    path: Path
    cpu_seconds: float
    """The lesser of two runs of it."""


def default_engine() -> Engine:
    return "atheris" if importlib.util.find_spec("atheris") is not None else "hypothesis"


@dataclass(frozen=True)
class Outcome:
    target: str
    engine: Engine
    verdict: Verdict
    executions: int
    seconds: float
    """From the first input to the end."""
    detail: str = ""
    """The traceback, or what the runner saw."""
    saved: Path | None = None
    log: str = ""
    restarts: int = 0
    """Children started afresh because memory grew between inputs (see run)."""
    slow: tuple[Slow, ...] = ()
    """The slowest inputs over the threshold, saved, slowest first."""
    slow_count: int = 0
    """Every input over the threshold, saved or not."""

    @property
    def per_second(self) -> float:
        return self.executions / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def summary(self) -> str:
        line = f"{self.target:9} {self.engine:10} {self.verdict:9} {self.executions:8} inputs  " \
               f"{self.per_second:8.1f}/s"
        if self.restarts:
            line += f"  ({self.restarts} restarts)"
        if self.saved:
            line += f"  saved {self.saved}"
        if self.slow_count:
            line += f"  {self.slow_count} slow, the slowest {self.slow[0].cpu_seconds * 1000:,.0f} ms of CPU"
        return line


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, IndexError, ValueError):
        return 0


def _save(data: bytes, crash_dir: Path, target: str, kind: str = "crash") -> Path:
    folder = crash_dir / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{hashlib.sha1(data).hexdigest()}"  # noqa: S324 - a name, as libFuzzer's
    path.write_bytes(data)
    return path


def _slow(work: Path, crash_dir: Path, target: str) -> tuple[tuple[Slow, ...], int]:
    """The slow inputs the children kept, saved (slowest first), and how many were slow in all."""
    log = work / "slow.log"
    lines = log.read_text().split() if log.exists() else []
    costs: dict[str, float] = {}
    for name, ms in zip(lines[::2], lines[1::2], strict=True):
        costs[name] = max(costs.get(name, 0.0), float(ms) / 1000)
    kept = sorted((p for p in (work / "slow").glob("*") if p.name in costs), key=lambda p: -costs[p.name])
    saved = tuple(Slow(_save(p.read_bytes(), crash_dir, target, "slow"), costs[p.name]) for p in kept[:SLOW_KEPT])
    return saved, len(lines) // 2


def run(
    target: str,
    *,
    engine: Engine | None = None,
    seconds: float = 60,
    examples: int = 10**9,
    derandomize: bool = False,
    seed: int = 0,
    budget: float = 2.0,
    rss_mb: int = 1024,
    slow_ms: float = SLOW_MS,
    crash_dir: Path = CRASH_DIR,
    corpus: bool = True,
    echo: bool = False,
) -> Outcome:
    """Fuzz `target` for `seconds` (and, with hypothesis, at most `examples` inputs) in a child.

    `budget` is the most one input may take, in seconds; `rss_mb` the most memory the child may
    hold; `slow_ms` the most CPU one input may cost before it is a finding. A failure's input goes
    to `crash_dir`; `echo` streams the child's output.
    """
    engine = engine or default_engine()
    deadline = time.monotonic() + seconds
    executions, elapsed, restarts = 0, 0.0, 0
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as tmp:
        work = Path(tmp)
        while True:
            config = {
                "target": target, "engine": engine, "seconds": max(1, int(deadline - time.monotonic())),
                "examples": examples - executions, "derandomize": derandomize, "seed": seed + 1000 * restarts,
                "budget": budget, "rss_mb": rss_mb, "slow_ms": slow_ms, "heartbeat": str(work / "heartbeat"),
                "corpus": corpus,
            }
            verdict, detail, count, took, guilty, log_text = _child(work, config, echo)
            executions, elapsed = executions + count, elapsed + took
            # The fuzzer's own memory (libFuzzer's corpus and coverage tables) grows over a long run
            # without any one input to blame: start afresh and go on, and say so (Outcome.restarts).
            # A child that held too much before its first input has a limit below its own baseline.
            if verdict == "harness" and count and deadline - time.monotonic() > 5 and executions < examples:
                restarts += 1
                continue
            break
        slow, slow_count = _slow(work, crash_dir, target)
    saved = _save(guilty, crash_dir, target) if guilty is not None else None
    if restarts:
        detail = f"restarted {restarts} times: memory grew past {rss_mb} MiB between inputs\n" + detail
    if slow_count:
        detail += f"\n{slow_count} inputs cost more than {slow_ms:g} ms of CPU; the slowest:\n" + "".join(
            f"  {s.cpu_seconds * 1000:,.0f} ms  {s.path}\n" for s in slow)
    verdict = "slow" if verdict == "ok" and slow_count else verdict
    return Outcome(target, engine, verdict, executions, elapsed, detail.strip("\n"), saved, log_text, restarts,
                   slow, slow_count)


def _child(work: Path, config: dict[str, Any], echo: bool
           ) -> tuple[Verdict, str, int, float, bytes | None, str]:
    """One child: its verdict and detail, inputs run, seconds from its first input, the guilty input."""
    beat_path = Path(config["heartbeat"])
    heartbeat = Heartbeat(beat_path, create=True)
    for stale in ("failure.bin", "failure.txt"):
        (work / stale).unlink(missing_ok=True)
    log_path = work / "log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "fuzz.worker", json.dumps(config)], cwd=ROOT,
            stdout=None if echo else log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(work / "hypothesis")},  # not ./.hypothesis
        )
        verdict, detail = _watch(child, heartbeat, seconds=config["seconds"], budget=config["budget"],
                                 rss_mb=config["rss_mb"])
    count, _, started = heartbeat.read()
    took = time.time() - started if started else 0.0
    failure = work / "failure.bin"
    guilty = None
    if verdict == "violation" and failure.exists():
        guilty = failure.read_bytes()
        detail = (work / "failure.txt").read_text()
    elif verdict in ("hang", "memory", "crash") and count:
        guilty = heartbeat.current()
    heartbeat.close()
    log_text = log_path.read_text(errors="replace")
    if verdict in ("crash", "hang", "memory", "setup", "harness"):
        detail += "\n--- the child's last output:\n" + log_text[-3000:]
    return verdict, detail, count, took, guilty, log_text


def _kill(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)  # the child's own session: it and nothing else
    child.wait()


def _watch(
    child: subprocess.Popen[bytes], heartbeat: Heartbeat, *, seconds: float, budget: float, rss_mb: int
) -> tuple[Verdict, str]:
    begun = time.monotonic()
    last_count, last_change = 0, begun
    # Hypothesis shrinks a failure after the time is up; give it a while, then stop it.
    hard_stop = begun + SETUP_SECONDS + seconds + 120
    while True:
        code = child.poll()
        if code is not None:
            if code == 0:
                return "ok", ""
            if code == VIOLATION:
                return "violation", ""
            return "crash", f"the child died with {'signal ' + str(-code) if code < 0 else 'exit code ' + str(code)}"
        now = time.monotonic()
        count, running, first = heartbeat.read()
        if count != last_count or not running:
            last_count, last_change = count, now
        if running and now - last_change > budget:
            _kill(child)
            return "hang", f"one input ran for more than {budget:g} s"
        if not count and not first and now - begun > SETUP_SECONDS:
            _kill(child)
            return "setup", f"no input ran within {SETUP_SECONDS} s of the start"
        if _rss_bytes(child.pid) > rss_mb * 1024 * 1024:
            _kill(child)
            if not running:
                return "harness", f"the fuzzer itself held more than {rss_mb} MiB between inputs"
            return "memory", f"the child held more than {rss_mb} MiB"
        if now > hard_stop:
            _kill(child)
            return "hang", "the child did not stop at the end of its time"
        time.sleep(0.05)
