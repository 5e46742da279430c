"""Where the full validation of one signed response spends its time: cProfile, in process.

    .venv/bin/python -m bench.profile_response [--count 1000] [--top 30]

Prepares the same work folder as ``python -m bench --only response`` (``bench.response_bench``)
and profiles the loop of ``python -m bench.child response-preflight``: ``inspect_response_bytes``
with the IdP's trust and the CRM record. Prints the functions with the most cumulative and own
time, and the time per validation with and without the profiler.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.measure import print_profile, profiled
from bench.response_bench import preflight_setup, prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_response", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="validations to profile (default 1000)")
    parser.add_argument("--top", type=int, default=30, help="functions to list (default 30)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-response-profile-") as tmp:
        folder = Path(tmp)
        prepare(folder)
        one = preflight_setup(folder)
        plain, with_profiler, profiler = profiled(one, args.count, warm_up=20)
    print(f"{plain * 1000:.3f} ms per validation without the profiler ({1 / plain:,.0f}/s), "
          f"{with_profiler * 1000:.3f} ms with it\n")
    print_profile(profiler, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
