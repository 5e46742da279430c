"""The child process that fuzzes one target: ``python -m fuzz.worker CONFIG_JSON``.

Started only by :mod:`fuzz.runner`, which watches it from outside. Two engines:

* ``atheris``: coverage-guided (libFuzzer), the project's packages instrumented on import; half
  of the mutations are libFuzzer's, half the structure-aware ones of :mod:`fuzz.mutations`.
* ``hypothesis``: the same structure-aware mutations drawn by hypothesis, which shrinks a
  failing input before it is reported; deterministic with ``derandomize``.

An input that breaks the property ends the child with :data:`VIOLATION` after writing the
traceback and the input next to the heartbeat file. Hangs and memory are the runner's to see.
An input whose run costs more CPU than ``slow_ms`` (twice in a row) is slow: the child keeps the
slowest few in ``slow/`` beside the heartbeat file, logs every one in ``slow.log``, and goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from fuzz.heartbeat import Heartbeat

VIOLATION = 3
INSTRUMENTED = ["metadata", "validator"]
SLOW_KEPT = 5
"""Slow inputs kept per child: the slowest ones; every slow input is still counted in slow.log."""


def _limit_memory(megabytes: int) -> None:
    """Cap the address space at what is mapped now plus `megabytes`: past it, allocation fails
    (a MemoryError, reported as a violation) instead of the machine swapping."""
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    limit = mapped + megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux


class Checker:
    """Runs one input under the property and records a failure next to the heartbeat file."""

    def __init__(self, config: dict[str, Any], heartbeat: Heartbeat) -> None:
        from fuzz.targets import target

        self.target = target(config["target"])
        self.rss_mb = config["rss_mb"]
        self.out = Path(config["heartbeat"]).parent
        self.heartbeat = heartbeat
        self.failed = False
        self.slow_seconds = config["slow_ms"] / 1000
        self.kept: dict[str, float] = {}
        """The slow inputs kept in slow/, by SHA-1: their CPU seconds."""

    def __call__(self, data: bytes) -> None:
        before = _peak_mb()
        try:
            cost = self._run(data)
            if cost > self.slow_seconds:
                # Once more: a one-time cost (a schema compiled, a cache filled, a collection) is
                # no finding; only an input slow twice is.
                cost = min(cost, self._run(data))
                if cost > self.slow_seconds:
                    self._keep_slow(data, cost)
            # The runner sees memory held while an input runs; this sees a peak it missed.
            peak = _peak_mb()
            if peak > self.rss_mb >= before:
                raise MemoryError(f"the input raised the peak memory from {before} MiB to {peak} MiB, past the "
                                  f"{self.rss_mb} MiB limit")
        except Exception:
            self.failed = True
            (self.out / "failure.bin").write_bytes(data)
            (self.out / "failure.txt").write_text(traceback.format_exc())
            raise

    def _run(self, data: bytes) -> float:
        """Run `data` once; the CPU seconds it cost the whole process (the parser has a thread of its own)."""
        from fuzz.targets import exercise

        self.heartbeat.record(data)
        try:
            started = time.process_time()
            exercise(self.target, data)
            return time.process_time() - started
        finally:
            self.heartbeat.finish()

    def _keep_slow(self, data: bytes, cost: float) -> None:
        name = hashlib.sha1(data).hexdigest()  # noqa: S324 - a name, as the runner's
        with (self.out / "slow.log").open("a") as log:
            log.write(f"{name} {cost * 1000:.0f}\n")
        if name in self.kept:
            self.kept[name] = max(self.kept[name], cost)
            return
        folder = self.out / "slow"
        folder.mkdir(exist_ok=True)
        if len(self.kept) >= SLOW_KEPT:
            fastest = min(self.kept, key=self.kept.__getitem__)
            if self.kept[fastest] >= cost:
                return
            del self.kept[fastest]
            (folder / fastest).unlink(missing_ok=True)
        (folder / name).write_bytes(data)
        self.kept[name] = cost


def _seeds(config: dict[str, Any]) -> list[bytes]:
    from fuzz.seeds import seeds

    return [data for _, data in seeds(config["target"], corpus=config["corpus"])]


def run_atheris(config: dict[str, Any], heartbeat: Heartbeat) -> None:
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # no stubs; optional

    with atheris.instrument_imports(include=INSTRUMENTED):
        import fuzz.targets  # noqa: F401 - first import of metadata and validator: instrumented
    from fuzz.material import material
    from fuzz.mutations import mutate
    from fuzz.targets import target

    material()  # keys are made before the first input, not counted against its time budget
    check = Checker(config, heartbeat)
    seeds = _seeds(config)
    work = Path(config["heartbeat"]).parent / "corpus"
    work.mkdir(exist_ok=True)
    for i, data in enumerate(seeds):
        (work / f"seed-{i:04d}").write_bytes(data)

    def one_input(data: bytes) -> None:
        try:
            check(data)
        except Exception:
            os._exit(VIOLATION)

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)  # noqa: S311 - reproducible mutations, not secrets
        if rng.random() < 0.5:
            return bytes(atheris.Mutate(data, max_size))
        try:
            return mutate(data, rng, others=seeds, max_size=max_size)
        except Exception:  # a gap in the mutator is no finding about the target
            traceback.print_exc()
            return bytes(atheris.Mutate(data, max_size))

    max_len = target(config["target"]).max_len
    args = [
        sys.argv[0], f"-max_total_time={config['seconds']}", f"-timeout={config['budget'] * 2 + 1}",
        f"-rss_limit_mb={config['rss_mb'] + 256}", f"-max_len={max_len}",
        f"-artifact_prefix={Path(config['heartbeat']).parent}/", f"-dict={Path(__file__).with_name('saml.dict')}",
        "-print_final_stats=1", str(work),
    ]  # libFuzzer's own limits stand behind the runner's, which name the guilty input more exactly
    atheris.Setup(args, one_input, custom_mutator=mutator)
    atheris.Fuzz()


def run_hypothesis(config: dict[str, Any], heartbeat: Heartbeat) -> None:
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings

    from fuzz.material import material
    from fuzz.strategies import inputs

    material()
    check = Checker(config, heartbeat)
    strategy = inputs(config["target"], corpus=config["corpus"])
    deadline = time.monotonic() + config["seconds"]
    remaining = config["examples"]
    batch = 0
    while remaining > 0 and time.monotonic() < deadline:
        size = remaining if config["derandomize"] else min(remaining, 500)

        @settings(max_examples=size, derandomize=config["derandomize"], database=None, deadline=None,
                  suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink),
                  verbosity=Verbosity.quiet, print_blob=False)
        @given(strategy)
        def prop(data: bytes) -> None:
            if time.monotonic() < deadline:  # out of time: the rest of the batch passes at once
                check(data)

        if not config["derandomize"]:
            prop = seed(config["seed"] + batch)(prop)
        try:
            prop()
        except Exception:
            if not check.failed:
                raise  # the harness's own failure, not the target's
            sys.exit(VIOLATION)  # failure.bin holds the shrunk input: hypothesis ran it last
        remaining -= size
        batch += 1


def main() -> None:
    config = json.loads(sys.argv[1])
    heartbeat = Heartbeat(Path(config["heartbeat"]))
    if config["engine"] == "hypothesis":
        _limit_memory(config["rss_mb"])
        run_hypothesis(config, heartbeat)
    else:
        run_atheris(config, heartbeat)


if __name__ == "__main__":
    main()
