"""Where the test IdP spends a flow or a signed response: cProfile, in process.

    .venv/bin/python -m bench.profile_idp flow [--count 200]   # GET /sso → auto-POST form, Flask test client
    .venv/bin/python -m bench.profile_idp sign [--count 500]   # build_response + serialize

``flow`` builds the same app as the gunicorn benchmark (``bench.idp_app``: inline SP, an
``auto_login`` persona with 8 claims, SQLite store and key folder in a temporary folder) and
drives it with the Flask test client, so no HTTP server or worker is involved; ``sign`` is
the loop of ``python -m bench.child sign-project``. Both print the functions with the most
cumulative and own time, and the time per flow or response with and without the profiler.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import workdir
from bench.load import redirect_path
from bench.measure import print_profile, profiled

BASE_URL = "http://127.0.0.1:8080"


def flow_step(folder: Path) -> Callable[[], None]:
    from bench.idp_app import create

    idp_dir = workdir.write_idp_settings(folder, BASE_URL)
    client = create(idp_dir).test_client(use_cookies=False)  # each flow a new login, as in the load test

    def one() -> None:
        _, path = redirect_path(BASE_URL + workdir.SSO_PATH, workdir.SP_ENTITY_ID, workdir.ACS_URL)
        response = client.get(path)
        assert response.status_code == 200 and b'name="SAMLResponse"' in response.data, response.data[:300]

    return one


def sign_step(folder: Path) -> Callable[[], None]:
    from bench.sign_rate import IDP_ENTITY_ID, PemKey
    from idp.assertion import Claim, ResponseSpec, build_response, serialize

    key = PemKey((folder / "key.pem").read_bytes(), (folder / "cert.pem").read_bytes())
    claims = tuple(Claim(name, (value,)) for name, value in workdir.CLAIMS.items())

    def one() -> None:
        spec = ResponseSpec(issuer=IDP_ENTITY_ID, destination=workdir.ACS_URL, audience=workdir.SP_ENTITY_ID,
                            nameid=workdir.NAMEID, nameid_format=workdir.EMAIL_FORMAT,
                            in_response_to="_" + secrets.token_hex(16), session_index="_" + secrets.token_hex(16),
                            claims=claims)
        serialize(build_response(spec, now=dt.datetime.now(dt.UTC).replace(microsecond=0), key=key))

    return one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_idp", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("flow", "sign"))
    parser.add_argument("--count", type=int, help="flows or responses to profile (default 200 / 500)")
    parser.add_argument("--top", type=int, default=25, help="rows per listing (default 25)")
    args = parser.parse_args(argv)
    count = args.count or (200 if args.what == "flow" else 500)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        folder = Path(tmp)
        workdir.prepare(folder)
        one = (flow_step if args.what == "flow" else sign_step)(folder)
        plain, with_profiler, profiler = profiled(one, count)  # warm-up: lazy imports, templates
    print(f"{args.what}: {plain * 1000:.2f} ms each without the profiler, {with_profiler * 1000:.2f} ms with it "
          f"({count} runs)\n")
    print_profile(profiler, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
