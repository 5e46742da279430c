"""The onboarding sweep (issue 6, "Performance"): `python -m bench --only sweep`.

The parent writes a work folder (:func:`prepare`): a test CA and a server certificate for
127.0.0.1; a few distinct, real-looking IdP metadata documents written by the project's own
``metadata.write.idp_metadata_xml`` with keys from ``metadata.keys.generate_keypair`` (five
vendor styles; one announces a rollover with two signing certificates); and N CRM records
(``--sweep-partners``, default 1,000; every tenth one JSON), each matching the document it
points at, at a URL of its own. It serves the documents over https from a threaded server
on 127.0.0.1 in the parent process and runs, in a fresh process each time
(``python -m bench.sweep_bench child …``), the whole sweep as ``saml-validate sweep`` does it
(:func:`validator.sweep.run_sweep` with a SQLite store, then the JSON summary rendered), with
the fetch policy's allow-list opened for 127.0.0.1 only, here and nowhere else.

Two sweeps per run: *first* (empty store: every partner's first copy is kept) and *again*
(the store holds the last good copies: every partner is compared), the cron steady state.
The parent reads each child's wall time and peak RSS with ``os.wait4`` (bench.measure.run);
one warm-up sweep runs first and is not counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import resource
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.measure import Run, median, python, run
from bench.table import Row
from metadata.saml import EMAIL

PARTNERS = 1000
SECONDS = 60.0
"""Target: a full sweep of 1,000 partners in ≤ 60 s wall on this machine."""
CONCURRENCY = 8
"""The command line's default --concurrency."""
LOOPBACK = "127.0.0.1/32"
SP_ENTITY_ID = "https://sso.portal.example/saml"
ACS_URL = "https://sso.portal.example/saml/acs"
STYLES = (  # (vendor, entity ID, SSO URL, signing certificates)
    ("okta", "http://www.okta.com/exk1bench{n}", "https://bench{n}.okta.com/app/portal/exk1bench{n}/sso/saml", 1),
    ("entra", "https://sts.windows.net/8d2f1c0e-0000-4000-8000-00000000000{n}/",
     "https://login.microsoftonline.com/8d2f1c0e-0000-4000-8000-00000000000{n}/saml2", 1),
    ("adfs", "http://sts.bench{n}.example/adfs/services/trust", "https://sts.bench{n}.example/adfs/ls/", 2),
    ("keycloak", "https://keycloak.bench{n}.example/realms/portal",
     "https://keycloak.bench{n}.example/realms/portal/protocol/saml", 1),
    ("google", "https://accounts.google.com/o/saml2?idpid=C0bench{n}",
     "https://accounts.google.com/o/saml2/idp?idpid=C0bench{n}", 1),
)


# -- the work folder and the server (parent) ------------------------------------------------------

def prepare(folder: Path, partners: int, now: dt.datetime) -> dict[str, bytes]:
    """The CA and server key files, the records under ``folder/records``; the documents by URL path."""
    from lxml import etree

    from metadata.keys import generate_keypair
    from metadata.saml import BINDING_POST, BINDING_REDIRECT
    from metadata.write import Contact, Organization, idp_metadata_xml

    _pki(folder, now)
    documents: dict[str, bytes] = {}
    styles: list[tuple[str, str, str]] = []
    for n, (vendor, entity, sso, certs) in enumerate(STYLES):
        entity_id, sso_url = entity.format(n=n), sso.format(n=n)
        keys = [generate_keypair(f"{vendor} signing {k}", now=now - dt.timedelta(days=400 - 300 * k), days=1095)
                for k in range(certs)]
        element = idp_metadata_xml(
            entity_id, sso_urls={BINDING_REDIRECT: sso_url, BINDING_POST: sso_url},
            slo_urls={BINDING_REDIRECT: sso_url},
            certificates=[k.cert_der for k in keys], nameid_formats=[EMAIL], want_authn_requests_signed=False,
            organization=Organization(f"Bench {vendor}", f"Bench {vendor.title()}", "https://www.example.com/"),
            contacts=[Contact("technical", company=f"Bench {vendor}", email="it@example.com")],
        )
        path = f"/{vendor}/metadata.xml"
        documents[path] = etree.tostring(element, xml_declaration=True, encoding="UTF-8")
        styles.append((path, entity_id, sso_url))
    records = folder / "records"
    records.mkdir()
    for i in range(partners):
        path, entity_id, sso_url = styles[i % len(styles)]
        record = {
            "biller": {"id": f"B-{10000 + i}", "name": f"Bench Biller {i}"},
            "sp": {"entity_id": SP_ENTITY_ID, "acs_url": ACS_URL},
            "idp": {"entity_id": entity_id, "metadata_url": f"https://127.0.0.1:{{port}}{path}?tenant={i}",
                    "sso_url": sso_url, "nameid_format": EMAIL},
            "claims": [{"name": "AccountNumber", "required": True}, {"name": "Email", "required": True},
                       {"name": "LoginTypeId", "required": True, "login_type": True}],
            "login_types": [{"id": 1, "name": "Customer"}],
        }
        if i % 10 == 9:
            (records / f"b{10000 + i}.json").write_text(json.dumps(record, indent=2))
        else:
            (records / f"b{10000 + i}.toml").write_text(_toml(record))
    return documents


def _toml(record: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        return json.dumps(v) if not isinstance(v, bool) else ("true" if v else "false")

    lines: list[str] = []
    for section in ("biller", "sp", "idp"):
        lines += [f"[{section}]", *(f"{k} = {value(v)}" for k, v in record[section].items()), ""]
    for table in ("claims", "login_types"):
        for item in record[table]:
            lines += [f"[[{table}]]", *(f"{k} = {value(v)}" for k, v in item.items()), ""]
    return "\n".join(lines)


def _pki(folder: Path, now: dt.datetime) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=2)
    ca = (x509.CertificateBuilder().subject_name(name("Sweep Bench CA")).issuer_name(name("Sweep Bench CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    documents: dict[str, bytes]
    served: int = 0

    def server_bind(self) -> None:  # not HTTPServer's: its getfqdn() is a reverse DNS lookup
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = self.server.documents.get(self.path.partition("?")[0])
        self.send_response(200 if body is not None else 404)
        body = body if body is not None else b"not found"
        self.send_header("Content-Type", "application/samlmetadata+xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.server.served += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(folder: Path, documents: dict[str, bytes]) -> Iterator[_Server]:
    """An https server on 127.0.0.1 (a free port) in a thread of this process."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.documents = documents
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(folder / "server.pem", folder / "server.key")
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _point_records(folder: Path, port: int) -> None:
    for path in (folder / "records").iterdir():
        path.write_text(path.read_text().replace("{port}", str(port)))


# -- the measured sweep (child) -------------------------------------------------------------------

def child_main(folder: str, concurrency: str, now: str) -> dict[str, Any]:
    """One sweep of ``folder/records`` with the store ``folder/store.sqlite3``, as the command runs it."""
    from collections import Counter

    from metadata.fetch import FetchPolicy
    from metadata.store import SQLiteStore
    from validator.findings import Severity
    from validator.render.sweep import render_sweep
    from validator.sweep import SweepOptions, run_sweep

    work = Path(folder)
    before = _peak_mb()
    start, cpu = time.perf_counter(), time.process_time()
    store = SQLiteStore(work / "store.sqlite3")
    policy = FetchPolicy(allowed_networks=(ipaddress.ip_network(LOOPBACK),), ca_bundle=str(work / "ca.pem"))
    options = SweepOptions(now=dt.datetime.fromisoformat(now), concurrency=int(concurrency), fetch_policy=policy)
    result = run_sweep(work / "records", options, store)
    swept = time.perf_counter() - start
    text = render_sweep(result, "json")
    (work / "sweep.json").write_text(text)
    store.close()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    codes = Counter(f.code for p in result.partners for f in p.report.findings if f.severity is not Severity.INFO)
    return {
        "seconds": seconds, "sweep_seconds": swept, "render_seconds": seconds - swept, "cpu_seconds": cpu,
        "peak_rss_mb": _peak_mb(), "rss_before_mb": before, "partners": len(result.partners),
        "verdicts": dict(Counter(p.report.verdict for p in result.partners)),
        "errors": result.count(Severity.ERROR), "codes": dict(sorted(codes.items())),
        "replaced": sum(1 for p in result.partners if p.history.get("replaced")),
        "compared": sum(1 for p in result.partners if "compared_with" in p.history),
        "slowest_partner_seconds": max((p.seconds for p in result.partners), default=0.0),
        "json_bytes": len(text),
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the rows (parent) ----------------------------------------------------------------------------

def _sweep_child(folder: Path, concurrency: int, now: dt.datetime) -> tuple[Run, dict[str, Any]]:
    proc = run([python(), "-m", "bench.sweep_bench", "child", str(folder), str(concurrency), now.isoformat()])
    try:
        return proc, json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}, no output"])[-1]
        return proc, {"error": tail[:300]}


def _problem(result: dict[str, Any], partners: int, *, again: bool) -> str | None:
    if "error" in result:
        return str(result["error"])
    if result["partners"] != partners:
        return f"{result['partners']} partners swept, {partners} expected"
    if result["errors"]:
        return f"{result['errors']} error findings ({result['codes']})"
    if result["replaced"] != partners:
        return f"{result['replaced']} last good copies replaced, {partners} expected"
    if again and result["compared"] != partners:
        return f"{result['compared']} partners compared with a last good copy, {partners} expected"
    return None


def rows(runs: int, partners: int = PARTNERS, concurrency: int = CONCURRENCY) -> list[Row]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    measured: dict[str, list[tuple[Run, dict[str, Any]]]] = {"first": [], "again": []}
    problems: list[str] = []
    served = 0
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        base = Path(tmp)
        documents = prepare(base, partners, now)
        with serving(base, documents) as server:
            _point_records(base, server.server_port)
            _sweep_child(base, concurrency, now)  # warm-up, not counted: fills the bytecode and page caches
            for i in range(runs):
                for suffix in ("", "-wal", "-shm"):
                    (base / f"store.sqlite3{suffix}").unlink(missing_ok=True)
                for kind in ("first", "again"):
                    proc, result = _sweep_child(base, concurrency, now)
                    problem = _problem(result, partners, again=kind == "again")
                    if problem:
                        problems.append(f"{kind} sweep, run {i + 1}: {problem}")
                        break
                    measured[kind].append((proc, result))
            served = server.served
    out: list[Row] = []
    names = {"first": f"Sweep of {partners:,} partners, empty history (whole process)",
             "again": f"Sweep of {partners:,} partners, compared with history (whole process)"}
    for kind, found in measured.items():
        if not found:
            out.append(Row(names[kind], f"failed: {problems[0] if problems else 'no run'}", f"≤ {SECONDS:g} s",
                           "not measured"))
            continue
        wall = median([p.seconds for p, _ in found])
        peak = max(p.peak_rss_mb for p, _ in found)
        last = found[-1][1]
        out.append(Row(names[kind], f"{wall:.1f} s, {peak:.0f} MB peak RSS", f"≤ {SECONDS:g} s",
                       "met" if wall <= SECONDS and not problems else "NOT MET", [
            "runs: " + ", ".join(f"{p.seconds:.1f} s ({p.cpu_seconds:.1f} s CPU) / {p.peak_rss_mb:.0f} MB"
                                 for p, _ in found),
            f"in process: sweep {last['sweep_seconds']:.1f} s, JSON summary {last['render_seconds']:.1f} s "
            f"({last['json_bytes'] / 1e6:.1f} MB); slowest partner {last['slowest_partner_seconds']:.2f} s; "
            f"concurrency {concurrency}",
            f"verdicts {last['verdicts']}; warnings and errors by code {last['codes'] or 'none'}",
        ]))
    if problems:
        out[-1].details.append("problems: " + "; ".join(problems))
    if out:
        out[0].details.append(f"{served:,} metadata requests served over https by the local server")
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["child"] and len(argv) == 4:
        try:
            result = child_main(*argv[1:])
        except Exception as exc:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}))
            return 1
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=PARTNERS)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args(argv)
    from bench.table import table

    found = rows(args.runs, args.partners, args.concurrency)
    print(table(found))
    for row in found:
        for line in row.details:
            print(f"  {row.benchmark}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
