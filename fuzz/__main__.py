"""``python -m fuzz TARGET|all --seconds N``: fuzz targets one after another, each in a child process."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from fuzz.runner import CRASH_DIR, SLOW_MS, default_engine, run
from fuzz.targets import TARGETS


def _positive(unit: str) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = float(value)
        if not (number > 0 and math.isfinite(number)):
            raise argparse.ArgumentTypeError(f"{value} is not a positive number of {unit}")
        return number

    return parse


_SECONDS, _MILLISECONDS = _positive("seconds"), _positive("milliseconds")


def _megabytes(value: str) -> int:
    number = int(value)
    if number < 256:
        raise argparse.ArgumentTypeError(f"{value} MiB is below what the fuzzer itself holds; give at least 256")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument("target", choices=[*TARGETS, "all"])
    parser.add_argument("--seconds", type=_SECONDS, default=60, help="how long each target runs (default 60)")
    parser.add_argument("--engine", choices=["atheris", "hypothesis"], default=None,
                        help=f"default: atheris when it is installed (here: {default_engine()})")
    parser.add_argument("--budget", type=_SECONDS, default=2.0, help="most seconds one input may take (default 2)")
    parser.add_argument("--rss-mb", type=_megabytes, default=1024, help="most memory a target may hold (default 1024)")
    parser.add_argument("--slow-ms", type=_MILLISECONDS, default=SLOW_MS,
                        help=f"CPU milliseconds past which one input is a finding (default {SLOW_MS:g})")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis: the first batch's random seed")
    parser.add_argument("--crash-dir", type=Path, default=CRASH_DIR, help=f"where failures go (default {CRASH_DIR})")
    parser.add_argument("--no-corpus", action="store_true", help="generated seeds only, not tests/corpus")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the fuzzer's own output")
    args = parser.parse_args(argv)

    names = list(TARGETS) if args.target == "all" else [args.target]
    failed = 0
    for name in names:
        outcome = run(name, engine=args.engine, seconds=args.seconds, seed=args.seed, budget=args.budget,
                      rss_mb=args.rss_mb, slow_ms=args.slow_ms, crash_dir=args.crash_dir, corpus=not args.no_corpus,
                      echo=args.verbose)
        print(outcome.summary(), flush=True)
        if not outcome.ok:
            failed += 1
            print(f"  {outcome.verdict}: {outcome.detail.strip()}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
