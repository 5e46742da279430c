"""`python -m bench [--entities N] [--runs 3] [--only aggregate|cli|cost|idp|load|response|sweep]`: run, print a table.

Every measurement runs in a fresh process (bench.measure), one warm-up run first (not
counted: it fills the page cache and the bytecode cache). Times are medians over the runs.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import aggregate, cost, idp_bench, response_bench, sweep_bench
from bench import load as login_load
from bench.measure import ROOT, Run, child, machine, median, python, run
from bench.table import Row, table

AGGREGATE_SECONDS = 1.5
AGGREGATE_MB = 250.0
SPEEDUP = 3.0
"""Issue 14: the full check ≥ 3× pysaml2's load of the same aggregate (issue 2 asked 2×)."""
CLI_SECONDS = 0.5

DEMO = ROOT / "validator" / "demo"
CLI_ARGS = ["metadata", str(DEMO / "springfield-water-idp-metadata.xml"),
            "--crm", str(DEMO / "springfield-water.toml"),
            "--trust", str(DEMO / "metadata-signer.pem"), "--format", "json"]


def repeat(kind: str, args: list[str], runs: int) -> tuple[list[tuple[Run, dict[str, Any]]], str | None]:
    """A warm-up, then `runs` measured runs; stops at the first error and returns it."""
    results: list[tuple[Run, dict[str, Any]]] = []
    for i in range(runs + 1):
        proc, result = child(kind, *args)
        if "error" in result:
            return results, result["error"]
        if i:
            results.append((proc, result))
    return results, None


def ensure_aggregate(entities: int) -> aggregate.Aggregate:
    """The cached aggregate, or a new one checked with the project's own full check."""
    found = aggregate.cached(entities)
    if found is not None:
        return found
    print(f"generating a signed {entities:,}-entity aggregate under {aggregate.DATA_DIR} …", file=sys.stderr)
    made = aggregate.generate(entities)
    _, result = child("preflight", str(made.path), str(made.signer_pem))
    problems = _validity_problems(result)
    if problems:
        made.path.unlink()  # never cache a file that does not validate
        raise SystemExit(f"the generated aggregate does not validate: {problems}")
    return made


def _validity_problems(result: dict[str, Any]) -> str | None:
    if "error" in result:
        return str(result["error"])
    if result["codes"].get("MD001"):
        return f"{result['codes']['MD001']} schema findings (MD001)"
    if result["signature"] != "verified":
        return f"signature status {result['signature']!r}, not 'verified'"
    return None


def aggregate_rows(entities: int, runs: int) -> list[Row]:
    made = ensure_aggregate(entities)
    size = f"{made.size / 1e6:.1f} MB"
    ours, error = repeat("preflight", [str(made.path), str(made.signer_pem)], runs)
    rows = []
    ours_seconds = None
    name = f"Full check, signed {entities:,}-entity aggregate ({size})"
    if error:
        rows.append(Row(name, f"failed: {error}", _aggregate_target(), "not met"))
    else:
        ours_seconds = median([r["seconds"] for _, r in ours])
        peak = max(r["peak_rss_mb"] for _, r in ours)
        problems = [p for p in (_validity_problems(r) for _, r in ours) if p]
        met_time, met_mb = ours_seconds <= AGGREGATE_SECONDS, peak <= AGGREGATE_MB
        verdict = "met" if met_time and met_mb and not problems else "NOT MET (" + ", ".join(
            [*([] if met_time else ["time"]), *([] if met_mb else ["memory"]), *problems]) + ")"
        last = ours[-1][1]
        rows.append(Row(name, f"{ours_seconds:.2f} s, {peak:.0f} MB peak RSS", _aggregate_target(), verdict, [
            _runs(ours),
            f"whole process: {median([p.seconds for p, _ in ours]):.2f} s; RSS after imports "
            f"{last['rss_before_mb']:.0f} MB",
            f"signature {last['signature']}, {last['entities']:,} entities, {last['findings']:,} findings "
            f"({', '.join(f'{k} ×{v}' for k, v in last['codes'].items())})",
        ]))
    theirs, error = repeat("pysaml2", [str(made.path)], runs)
    pname = "pysaml2 MetadataStore.load, same file"
    if error:
        rows.append(Row(pname, f"could not load: {error}", "reference", "-"))
        rows.append(Row("Speed-up over pysaml2", "n/a", f"≥ {SPEEDUP:g}×", "not measured"))
        return rows
    their_seconds = median([r["seconds"] for _, r in theirs])
    their_peak = max(r["peak_rss_mb"] for _, r in theirs)
    rows.append(Row(pname, f"{their_seconds:.2f} s, {their_peak:.0f} MB peak RSS", "reference", "-", [
        _runs(theirs),
        f"{theirs[-1][1]['entities']:,} entities loaded; {theirs[-1][1]['note']}",
    ]))
    if ours_seconds is None:
        rows.append(Row("Speed-up over pysaml2", "n/a", f"≥ {SPEEDUP:g}×", "not measured"))
    else:
        speedup = their_seconds / ours_seconds
        rows.append(Row("Speed-up over pysaml2", f"{speedup:.2f}×", f"≥ {SPEEDUP:g}×",
                        "met" if speedup >= SPEEDUP else "NOT MET"))
    return rows


def _runs(results: list[tuple[Run, dict[str, Any]]]) -> str:
    """Each run's wall and CPU seconds and peak RSS, and the fastest: a shared machine is noisy."""
    each = ", ".join(f"{r['seconds']:.2f} s ({r['cpu_seconds']:.2f} s CPU) / {r['peak_rss_mb']:.0f} MB"
                     for _, r in results)
    return f"runs: {each}; fastest {min(r['seconds'] for _, r in results):.2f} s"


def _aggregate_target() -> str:
    return f"≤ {AGGREGATE_SECONDS:g} s, ≤ {AGGREGATE_MB:.0f} MB"


def cli_rows(runs: int) -> list[Row]:
    script = Path(python()).with_name("saml-validate")
    name = "saml-validate metadata, one partner file (whole process)"
    if not script.exists():
        return [Row(name, f"{script} not found (pip install -e .)", f"≤ {CLI_SECONDS:g} s", "not measured")]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        argv = [str(script), *CLI_ARGS, "--out", str(out)]
        procs = []
        for i in range(runs + 1):
            out.unlink(missing_ok=True)
            proc = run(argv)
            problem = _cli_problem(proc, out)
            if problem:
                return [Row(name, f"failed: {problem}", f"≤ {CLI_SECONDS:g} s", "not met")]
            if i:
                procs.append(proc)
    seconds = median([p.seconds for p in procs])
    peak = max(p.peak_rss_mb for p in procs)
    return [Row(name, f"{seconds:.2f} s, {peak:.0f} MB peak RSS", f"≤ {CLI_SECONDS:g} s",
                "met" if seconds <= CLI_SECONDS else "NOT MET", [
                    "runs: " + ", ".join(f"{p.seconds:.2f} s ({p.cpu_seconds:.2f} s CPU)" for p in procs)
                    + f"; fastest {min(p.seconds for p in procs):.2f} s",
                    f"exit {procs[-1].returncode} (1 expected: the demo has findings)",
                ])]


def _cli_problem(proc: Run, out: Path) -> str | None:
    if proc.returncode != 1:
        return f"exit {proc.returncode}, expected 1: {proc.stderr.strip()[-300:]}"
    try:
        report = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        return f"no JSON report written: {exc}"
    if report.get("schema") != "saml-preflight/report/v1":
        return f"unexpected report schema {report.get('schema')!r}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000, help="entities in the aggregate (default 10000)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per benchmark (default 3)")
    parser.add_argument("--only", choices=("aggregate", "cli", "cost", "idp", "load", "response", "sweep"),
                        help="run one benchmark only")
    parser.add_argument("--sign-seconds", type=int, default=3,
                        help="idp: seconds of each signing-rate loop and of openssl speed (default 3)")
    parser.add_argument("--http-seconds", type=float, default=10.0,
                        help="idp: seconds of load per HTTP-flow measurement (default 10)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="idp, load: concurrent client connections in the HTTP-flow load and the login "
                             "load (default 8)")
    parser.add_argument("--load-seconds", type=float, default=60.0,
                        help="load: seconds of complete logins, after a 2 s warm-up (default 60)")
    parser.add_argument("--load-login", choices=("auto", "picker"), default="auto",
                        help="load: sign in by an auto_login persona (one request per login, default) or "
                             "through the persona picker at /login (two requests, a pending request each)")
    parser.add_argument("--response-seconds", type=float, default=3.0,
                        help="response: seconds of each validation-rate loop (default 3)")
    parser.add_argument("--sweep-partners", type=int, default=sweep_bench.PARTNERS,
                        help="sweep: CRM records swept (default 1000)")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so that every child and gunicorn started here is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.entities < 1 or args.runs < 1:
        parser.error("--entities and --runs must be at least 1")
    if not 1 <= args.sign_seconds <= 60 or not 1 <= args.http_seconds <= 120 or not 1 <= args.concurrency <= 64:
        parser.error("--sign-seconds must be 1-60, --http-seconds 1-120 and --concurrency 1-64")
    if not 0.5 <= args.response_seconds <= 60:
        parser.error("--response-seconds must be 0.5-60")
    if not 1 <= args.load_seconds <= 600:
        parser.error("--load-seconds must be 1-600")
    if not 1 <= args.sweep_partners <= 100_000:
        parser.error("--sweep-partners must be 1-100000")
    info = machine()
    print("Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    print(f"Runs: {args.runs} measured (median) after 1 warm-up, each in a fresh process\n", flush=True)
    rows: list[Row] = []
    if args.only in (None, "aggregate"):
        rows += aggregate_rows(args.entities, args.runs)
    if args.only in (None, "cli"):
        rows += cli_rows(args.runs)
    if args.only in (None, "cost"):
        rows += cost.rows()
    if args.only in (None, "idp"):
        rows += idp_bench.rows(args.runs, args.sign_seconds, args.http_seconds, args.concurrency)
    if args.only in (None, "load"):
        rows += login_load.rows(args.load_seconds, args.concurrency, args.load_login)
    if args.only in (None, "response"):
        rows += response_bench.rows(args.runs, args.response_seconds)
    if args.only in (None, "sweep"):
        rows += sweep_bench.rows(args.runs, args.sweep_partners)
    print(table(rows))
    print()
    for row in rows:
        for line in row.details:
            print(f"  {row.benchmark}: {line}")
    if args.only in (None, "aggregate"):
        print("\nNote: pysaml2 only loads the file; it does not verify the signature (no cert is given to load),"
              "\nwhile the full check verifies it, validates the schema and runs every per-entity check.")
    return 0 if all(r.result in ("met", "-") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
