"""The measured work, one kind per fresh process; prints one JSON object on standard output.

    python -m bench.child preflight AGGREGATE.xml SIGNER.pem   # the project's full check
    python -m bench.child pysaml2 AGGREGATE.xml                # pysaml2 MetadataStore load
    python -m bench.child sign-project|sign-floor|sign-pysaml2 WORKDIR SECONDS   # bench.sign_rate
    python -m bench.child load BASE_URL SECONDS CONCURRENCY WORKDIR              # bench.load
    python -m bench.child response-KIND WORKDIR SECONDS   # bench.response_bench: KIND is preflight,
                                                          # xmlsec2, xmlsec, onelogin or pysaml2

``seconds`` is the wall time of the measured call alone (imports and setup excluded, the same
for both), ``cpu_seconds`` its CPU time; ``peak_rss_mb`` is this process's peak RSS at exit (``RUSAGE_SELF``), imports
included; ``rss_before_mb`` is the peak before the measured call started.
Each kind imports only what it needs: the pysaml2 and python3-saml children (``pysaml2``,
``sign-pysaml2``, ``response-pysaml2``, ``response-onelogin``)
and the load generator never import the project.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def preflight(xml: str, signer_pem: str) -> dict[str, Any]:
    import datetime as dt
    from collections import Counter
    from pathlib import Path

    from metadata.certs import load_certificates
    from metadata.xml import MiB
    from validator.findings import Severity
    from validator.inspection import MetadataOptions, inspect_metadata

    options = MetadataOptions(
        now=dt.datetime.now(dt.UTC).replace(microsecond=0),
        trusted=tuple(load_certificates(Path(signer_pem).read_bytes())),
        all_entities=True,
        max_bytes=64 * MiB,  # the CLI's --max-size 64
    )
    before = _peak_mb()
    start, cpu = time.perf_counter(), time.process_time()
    judged = inspect_metadata(xml, options)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    codes = Counter(f.code for f in judged.findings)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_mb(),
        "rss_before_mb": before,
        "signature": judged.signature.status if judged.signature else None,
        "entities": len(judged.document.entities) if judged.document else None,
        "findings": len(judged.findings),
        "codes": dict(sorted(codes.items())),
        "errors": sum(f.severity is Severity.ERROR for f in judged.findings),
    }


def pysaml2(xml: str) -> dict[str, Any]:
    from saml2.config import Config
    from saml2.mdstore import MetadataStore
    from saml2.sigver import SigverError

    config = Config().load({})  # a default configuration: its attribute converters
    note = "signature not verified (no cert given to load)"
    try:
        store = MetadataStore(config.attribute_converters, config, disable_ssl_certificate_validation=True)
    except SigverError as exc:
        # The security context wants the xmlsec1 binary even when no signature is checked;
        # without it, build the store without one (it is used only to verify signatures).
        store = MetadataStore(config.attribute_converters, None, disable_ssl_certificate_validation=True)
        note += f"; config=None because {exc}"
    before = _peak_mb()
    start, cpu = time.perf_counter(), time.process_time()
    store.load("local", xml)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_mb(),
        "rss_before_mb": before,
        "entities": len(list(store.keys())),
        "note": note,
    }


def sign(kind: str) -> Callable[[str, str], dict[str, Any]]:
    def run(folder: str, seconds: str) -> dict[str, Any]:
        from pathlib import Path

        from bench.sign_rate import KINDS

        return KINDS[kind](Path(folder), float(seconds))

    return run


def load(base_url: str, seconds: str, concurrency: str, folder: str) -> dict[str, Any]:
    from pathlib import Path

    from bench.load import run_load

    info = json.loads((Path(folder) / "bench.json").read_text())
    return run_load(base_url, float(seconds), int(concurrency), info["sp_entity_id"], info["acs"])


def response(kind: str) -> Callable[[str, str], dict[str, Any]]:
    def run(folder: str, seconds: str) -> dict[str, Any]:
        from bench.response_bench import main_json

        return main_json(kind, folder, seconds)

    return run


def main(argv: list[str]) -> int:
    kinds: dict[str, tuple[Callable[..., dict[str, Any]], int]] = {
        "preflight": (preflight, 2),
        "pysaml2": (pysaml2, 1),
        **{kind: (sign(kind), 2) for kind in ("sign-project", "sign-floor", "sign-pysaml2")},
        "load": (load, 4),
        **{kind: (response(kind), 2) for kind in
           ("response-preflight", "response-xmlsec2", "response-xmlsec", "response-onelogin", "response-pysaml2")},
    }
    if not argv or argv[0] not in kinds or len(argv) - 1 != kinds[argv[0]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    func, _ = kinds[argv[0]]
    try:
        result = func(*argv[1:])
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
