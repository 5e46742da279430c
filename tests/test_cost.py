"""Issue 11's cost guarantee: any input within the size limits costs at most 1 s of CPU in each
entry point, and gets the right verdict (a finding and exit 1, a 4xx, a refusal; never exit 2 for a
partner's document, never a traceback, never a 500).

Each (family, entry point) runs in a child forked from this process (everything is imported and
every app is built already) under RLIMIT_CPU of 1 s: SIGXCPU kills a child that costs more, and
the test named after the family and the entry point fails. The corpus is tests/cost_corpus.py;
the bodies are encoded here, in the parent, so the child pays only for the entry point.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.settings import ServiceProvider
from metadata.crm import MAX_BYTES as CRM_MAX_BYTES
from metadata.fetch import FetchPolicy
from metadata.store import SQLiteStore
from tests import cost_corpus as corpus
from tests.factory import NOW, make_keypair
from tests.helpers import CPULimitExceeded, crm_toml, run_with_cpu_limit
from tests.idp_support import ACS as SP_ACS
from tests.idp_support import IDP_BASE, SP_ENTITY, make_idp
from tests.test_fetch import LocalServer, respond, serving
from tests.test_web import good_metadata, record_toml, token
from validator.cli import main as validate_main
from validator.inspection import MetadataOptions, inspect_metadata
from validator.metadata_facts import metadata_report
from validator.sweep import SweepOptions, run_sweep
from validator.web import create_app, testsp

KEY = make_keypair("idp.example.com")
PEER = corpus.Peer(KEY.cert_b64)
IDP_PEER = corpus.Peer(KEY.cert_b64, sp_entity_id=SP_ENTITY, sso_url=f"{IDP_BASE}/sso", sp_acs=SP_ACS)
LOCAL = FetchPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
NOW_ISO = "2026-05-01T12:00:00Z"

# Entry points that share one library path with another are given these families only: every
# raw-byte scan, and the worst of each stage after the parse. The first entry point of each kind
# takes the whole corpus.
SAMPLE = ("redos-40", "prolog-comments", "prolog-processing-instructions", "xmlns-prefix-run",
          "bare-namespace-declarations", "signed-namespace-declarations-at-cap",
          "signed-namespace-declarations-in-scope", "signed-attributes", "signed-deep-nesting",
          "signed-element-count", "signed-long-namespace-uri", "base64-padding", "prefix-list",
          "prefix-list-at-caps")


@cache
def metadata_documents() -> dict[str, bytes]:
    found = corpus.documents(corpus.METADATA, PEER)
    found["fixture-metadata-prefixlist"] = (corpus.FIXTURES / "metadata-prefixlist.xml").read_bytes()
    return found


@cache
def response_documents() -> dict[str, bytes]:
    found = corpus.documents(corpus.RESPONSE, PEER)
    found["fixture-prefixlist-60k"] = (corpus.FIXTURES / "prefixlist-60k.xml").read_bytes()
    return found


@cache
def request_documents() -> dict[str, bytes]:
    found = corpus.documents(corpus.REQUEST, IDP_PEER)
    found["fixture-authnrequest-prefixlist"] = (corpus.FIXTURES / "authnrequest-prefixlist.xml").read_bytes()
    return found


def names(documents: Callable[[], dict[str, bytes]], sample: bool = False) -> list[str]:
    every = list(documents())
    return [n for n in every if n in SAMPLE] if sample else every


@dataclass(frozen=True)
class Outcome:
    """What an entry point answered, reduced to what the verdict needs."""

    status: int
    """An exit code for the command line and the library, an HTTP status for the apps."""
    text: str
    """The end of standard error, or the start of the body."""


def judged(work: Callable[[], Outcome], entry: str, family: str) -> Outcome:
    try:
        outcome = run_with_cpu_limit(work).value
    except CPULimitExceeded as exc:
        killed = str(exc) + _remeasured(work)
    else:
        assert "Traceback" not in outcome.text and "InternalError" not in outcome.text, (entry, family, outcome)
        return outcome
    pytest.fail(f"{entry} on {family}: {killed}")


def _remeasured(work: Callable[[], Outcome]) -> str:
    """With COST_REMEASURE=N, what the work costs under an N s limit instead (for a report, not a verdict)."""
    seconds = int(os.environ.get("COST_REMEASURE", "0"))
    if seconds <= 1:
        return ""
    try:
        return f"; under a {seconds} s limit it took {run_with_cpu_limit(work, cpu_seconds=seconds).cpu_seconds:.2f} s"
    except CPULimitExceeded:
        return f"; more than {seconds} s too"


# ---- the command line ---------------------------------------------------------------------------

def cli(*args: str | Path, report: Path | None = None) -> Outcome:
    """`saml-validate ARGS` in this process: its exit code, the end of its standard error and,
    given the JSON `report` it writes, the codes of its findings."""
    sys.argv = ["saml-validate", *map(str, args)]
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        try:
            validate_main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    codes = " ".join(f["code"] for f in json.loads(report.read_text())["findings"]) if report and code < 2 else ""
    return Outcome(code, err.getvalue()[-2000:] + codes)


def refused(family: str, kind: str) -> bool:
    """Whether the family must be refused (exit 1, a 4xx, "not ready"), not merely judged.

    Responses and AuthnRequests always are: their signatures are junk. Metadata is, unless it is a
    well-formed document within the caps, whose junk self-signature is only a warning.
    """
    return kind != "metadata" or family.startswith(("redos", "prolog", "xmlns", "bare", "fixture")) or family in (
        "signed-namespace-declarations", "prefix-list")


def exit_verdict(outcome: Outcome, family: str, kind: str) -> None:
    assert outcome.status == 1 if refused(family, kind) else outcome.status in (0, 1) and outcome.text, outcome


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cost")
    (folder / "idp.xml").write_bytes(good_metadata())
    (folder / "repeated.xml").write_bytes(corpus.certificate_repeated(KEY.cert_b64))
    return folder


def written(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("family", names(metadata_documents))
def test_cli_metadata(family: str, files: Path) -> None:
    path = written(files, "metadata.xml", metadata_documents()[family])
    out = files / "out.json"
    outcome = judged(lambda: cli("metadata", path, "--now", NOW_ISO, "--format", "json", "--out", out, report=out),
                     "saml-validate metadata", family)
    exit_verdict(outcome, family, "metadata")


@pytest.mark.parametrize("family", names(metadata_documents, sample=True))
def test_cli_discover(family: str, files: Path) -> None:
    path = written(files, "metadata.xml", metadata_documents()[family])
    outcome = judged(lambda: cli("discover", path, "--no-probe", "--now", NOW_ISO, "--out", files / "out.md"),
                     "saml-validate discover", family)
    exit_verdict(outcome, family, "metadata")


def response_inputs() -> dict[str, bytes]:
    """The response corpus as XML, and base64 text padded to the pasted-input limit."""
    found = dict(response_documents())
    envelope = corpus.response_envelope()
    plain = base64.b64encode((envelope.head + "x" + envelope.tail).encode())
    found["base64-text-padding"] = plain + b"=" * (corpus.PASTED - len(plain))
    found["base64-text-line-breaks"] = plain + b"\n" * (corpus.PASTED - len(plain))
    return found


@pytest.mark.parametrize("family", [*names(response_documents), "base64-text-padding", "base64-text-line-breaks",
                                    "repeated-certificate"])
def test_cli_response(family: str, files: Path) -> None:
    data = tampered_response() if family == "repeated-certificate" else response_inputs()[family]
    trust = files / ("repeated.xml" if family == "repeated-certificate" else "idp.xml")
    path = written(files, "response.xml", data)
    out = files / "out.json"
    outcome = judged(lambda: cli("response", path, "--metadata", trust, "--now", NOW_ISO, "--format", "json",
                                 "--out", out, report=out), "saml-validate response", family)
    exit_verdict(outcome, family, "response")


@cache
def tampered_response() -> bytes:
    return corpus.tampered_response(KEY, NOW)


def _record_filled(unit: bytes, base: bytes | None = None) -> bytes:
    """A CRM record followed by as many `unit` as fit in the largest record accepted."""
    base = crm_toml().encode() if base is None else base
    return base + unit * ((CRM_MAX_BYTES - len(base)) // len(unit))


CRM_FAMILIES = {
    "crm-long-url": crm_toml(idp={"entity_id": "https://idp.example.com/" + "a" * (CRM_MAX_BYTES - 2_000)}).encode(),
    "crm-many-claims": _record_filled(b'[[claims]]\nname = "C"\nrequired = false\n'),
    "crm-deep-array": b"x = " + b"[" * (CRM_MAX_BYTES // 2 - 4) + b"]" * (CRM_MAX_BYTES // 2 - 4),
    "crm-comment-lines": _record_filled(b"#\n"),
    "crm-over-the-cap": crm_toml(extra='[[claims]]\nname = "C"\nrequired = false\n' * 24_000).encode(),
}


@pytest.mark.parametrize("family", [*CRM_FAMILIES, "crm-deep-json"])
def test_cli_crm(family: str, files: Path) -> None:
    data = CRM_FAMILIES.get(family, b"[" * (CRM_MAX_BYTES - 1))
    path = written(files, "record.json" if family.endswith("json") else "record.toml", data)
    outcome = judged(lambda: cli("crm", path, "--format", "json", "--out", files / "out.json"),
                     "saml-validate crm", family)
    # The record is ours, not a partner's: one that cannot be read is a usage error (exit 2) naming it.
    assert outcome.status in (0, 1) or "record.toml" in outcome.text or "record.json" in outcome.text, outcome


# ---- the fetcher and the sweep -------------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serving() as local:
        for name, data in metadata_documents().items():
            local.routes[f"/xml/{name}"] = respond(200, data, "application/samlmetadata+xml")
            local.routes[f"/error/{name}"] = respond(500, data, "text/html")
            local.routes[f"/type/{name}"] = respond(200, data, "text/html; charset=utf-8")
        yield local


@pytest.mark.parametrize("kind", ["xml", "error", "type"])
@pytest.mark.parametrize("family", names(metadata_documents, sample=True))
def test_fetcher(family: str, kind: str, server: LocalServer) -> None:
    url = server.url(f"/{kind}/{family}")

    def fetched() -> Outcome:
        report = metadata_report(inspect_metadata(url, MetadataOptions(now=NOW, fetch_policy=LOCAL)))
        return Outcome(report.exit_code(), " ".join(f.code for f in report.findings))

    outcome = judged(fetched, f"fetch ({kind} body)", family)
    exit_verdict(outcome, family, "refused" if kind == "error" else "metadata")


@pytest.mark.parametrize("family", names(metadata_documents, sample=True))
def test_sweep_of_one_record(family: str, server: LocalServer, tmp_path: Path) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "B-1.toml").write_text(record_toml(server.url(f"/xml/{family}")))
    store = SQLiteStore(tmp_path / "sweep.sqlite3")

    def swept() -> Outcome:
        result = run_sweep(folder, SweepOptions(now=NOW, fetch_policy=LOCAL, concurrency=1), store)
        return Outcome(result.exit_code(), " ".join(f.code for p in result.partners for f in p.report.findings))

    outcome = judged(swept, "saml-validate sweep", family)
    exit_verdict(outcome, family, "metadata")


# ---- the validator's web app ---------------------------------------------------------------------

@dataclass(frozen=True)
class Web:
    client: FlaskClient
    csrf: str


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Web:
    folder = tmp_path_factory.mktemp("crm")
    (folder / "B-1.toml").write_text(record_toml())
    app: Flask = create_app(crm_folder=folder, store=SQLiteStore(folder / "s.sqlite3"), clock=lambda: NOW,
                            fetch_policy=LOCAL)
    app.testing = True
    client = app.test_client()
    return Web(client, token(client))


def multipart(fields: dict[str, str | tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body, encoded here so that the child pays only for decoding it."""
    boundary = "c0st-b0undary"
    parts = []
    for name, value in fields.items():
        if isinstance(value, tuple):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{value[0]}"\r\n'
                         "Content-Type: application/xml\r\n\r\n".encode() + value[1] + b"\r\n")
        else:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                         + value.encode("utf-8", "surrogateescape") + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def posted(web: Web, path: str, body: bytes, content_type: str) -> Callable[[], Outcome]:
    def post() -> Outcome:
        answer = web.client.post(path, data=body, content_type=content_type)
        return Outcome(answer.status_code, answer.get_data(as_text=True)[:3000])
    return post


def page_verdict(outcome: Outcome, family: str, kind: str) -> None:
    """A page: a report that says "not ready" where the family must be refused (a worksheet or a
    report otherwise), or the form again with the mistake named."""
    assert outcome.status in (200, 400, 413), outcome
    assert outcome.status != 200 or "not ready" in outcome.text or not refused(family, kind), outcome


FORMS = {
    "upload": lambda data, csrf: multipart({"csrf": csrf, "metadata_file": ("idp.xml", data)}),
    "paste": lambda data, csrf: multipart({"csrf": csrf, "metadata_text": data.decode("utf-8", "surrogateescape")}),
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("family", names(metadata_documents, sample=True))
def test_web_metadata_forms(family: str, form: str, web: Web) -> None:
    body, content_type = FORMS[form](metadata_documents()[family], web.csrf)
    page_verdict(judged(posted(web, "/check/metadata", body, content_type), f"POST /check/metadata ({form})",
                        family), family, "metadata")


@pytest.mark.parametrize("family", list(CRM_FAMILIES))
def test_web_uploaded_record(family: str, web: Web) -> None:
    """A partner may upload the CRM record to check against: it is untrusted input too."""
    body, content_type = multipart({"csrf": web.csrf, "metadata_file": ("idp.xml", good_metadata()),
                                    "crm_file": ("record.toml", CRM_FAMILIES[family])})
    outcome = judged(posted(web, "/check/metadata", body, content_type), "POST /check/metadata (record)", family)
    assert outcome.status in (200, 400, 413), outcome


@pytest.mark.parametrize("family", names(metadata_documents, sample=True))
def test_web_discovery_form(family: str, web: Web) -> None:
    body, content_type = FORMS["upload"](metadata_documents()[family], web.csrf)
    page_verdict(judged(posted(web, "/discover", body, content_type), "POST /discover", family), family,
                 "metadata")


@pytest.mark.parametrize("family", [*names(response_documents, sample=True), "base64-text-padding"])
def test_web_response_form(family: str, web: Web, files: Path) -> None:
    body, content_type = multipart({"csrf": web.csrf, "response_file": ("response.xml", response_inputs()[family]),
                                    "metadata_file": ("idp.xml", good_metadata())})
    page_verdict(judged(posted(web, "/check/response", body, content_type), "POST /check/response", family),
                 family, "response")


def api_verdict(outcome: Outcome, family: str, kind: str) -> None:
    """A report (with errors where the family must be refused), or a JSON problem with a 4xx status."""
    assert outcome.status in (200, 400, 413, 422), outcome
    assert outcome.text.lstrip().startswith("{"), outcome
    if outcome.status == 200:
        assert '"exit_code": 1' in outcome.text or not refused(family, kind), outcome


API_METADATA = {"/api/v1/metadata": {}, "/api/v1/discover": {"probe": False}}


@pytest.mark.parametrize(("family", "path"), [(f, "/api/v1/metadata") for f in names(metadata_documents)]
                         + [(f, "/api/v1/discover") for f in names(metadata_documents, sample=True)])
def test_api_metadata(family: str, path: str, web: Web) -> None:
    if family.startswith("fixture-"):
        body = corpus.json_body(metadata_documents()[family], API_METADATA[path])
    else:
        body = corpus.api_metadata_body(family, PEER, API_METADATA[path])
    api_verdict(judged(posted(web, path, body, "application/json"), f"POST {path}", family), family, "metadata")


@pytest.mark.parametrize("family", [*names(response_documents), "base64-text-padding", "repeated-certificate"])
def test_api_responses(family: str, web: Web) -> None:
    repeated = family == "repeated-certificate"
    data = tampered_response() if repeated else response_inputs()[family]
    trust = corpus.certificate_repeated(KEY.cert_b64) if repeated else good_metadata()
    body = json.dumps({"response": data.decode("utf-8", "surrogateescape"), "metadata_xml": trust.decode()},
                      ensure_ascii=False).encode("utf-8", "surrogateescape")
    api_verdict(judged(posted(web, "/api/v1/responses", body, "application/json"), "POST /api/v1/responses",
                       family), family, "response")


JSON_FAMILIES = {"deep-json": corpus.deep_json(256 * corpus.KiB), "wide-json": corpus.wide_json(256 * corpus.KiB)}


@pytest.mark.parametrize("path", ["/api/v1/metadata", "/api/v1/responses", "/api/v1/discover"])
@pytest.mark.parametrize("family", list(JSON_FAMILIES))
def test_api_json(family: str, path: str, web: Web) -> None:
    api_verdict(judged(posted(web, path, JSON_FAMILIES[family], "application/json"), f"POST {path}", family),
                family, "json")


@cache
def acs_bodies() -> dict[str, bytes]:
    """The response corpus, each family as large as the ACS's 256 KiB form body allows."""
    found = {name: corpus.acs_body(name, PEER) for name in corpus.builders(corpus.RESPONSE, PEER)}
    found["fixture-acs-body"] = (corpus.FIXTURES / "acs-body.txt").read_bytes().strip()
    found["fixture-prefixlist-60k"] = corpus.form_body("SAMLResponse", response_documents()["fixture-prefixlist-60k"])
    found["base64-padding-in-field"] = b"SAMLResponse=" + b"%3D" * ((corpus.POST_BODY - 13) // 3)
    return found


@pytest.fixture(scope="module")
def acs_browser(web: Web) -> Web:
    """A browser that started a test login: only then does the ACS read a body at all. Its mark is
    put in the store as /test-login puts it (that route needs the partner's metadata first)."""
    token = "cost-test-browser-0001"
    with web.client.application.app_context():
        testsp.web().store.put(testsp.BROWSERS_NS, token, b"1", ttl=3600)
    web.client.set_cookie(testsp.COOKIE, token)
    read = web.client.post("/test-sp/acs", data=b"SAMLResponse=%%%", content_type="application/x-www-form-urlencoded")
    assert "This is not a SAML response" in read.get_data(as_text=True)  # the body is read: the gate is open
    return web


@pytest.mark.parametrize("family", list(acs_bodies()))
def test_test_sp_acs(family: str, acs_browser: Web) -> None:
    web = acs_browser
    outcome = judged(posted(web, "/test-sp/acs", acs_bodies()[family], "application/x-www-form-urlencoded"),
                     "POST /test-sp/acs", family)
    assert outcome.status in (400, 413), outcome


# ---- the test IdP -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    folder = tmp_path_factory.mktemp("idp")
    (folder / "sp.xml").write_text(
        f'<md:EntityDescriptor xmlns:md="{corpus.MD}" entityID="{SP_ENTITY}"><md:SPSSODescriptor '
        f'AuthnRequestsSigned="true" protocolSupportEnumeration="{corpus.SAMLP}"><md:KeyDescriptor use="signing">'
        f'<ds:KeyInfo xmlns:ds="{corpus.DS}"><ds:X509Data><ds:X509Certificate>{KEY.cert_b64}</ds:X509Certificate>'
        '</ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:AssertionConsumerService index="0" '
        f'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{SP_ACS}"/></md:SPSSODescriptor>'
        "</md:EntityDescriptor>")
    return make_idp(folder, sps=(ServiceProvider(metadata="sp.xml"),), api_token="t0ken").test_client()


def redirect_query(xml: bytes) -> str:
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    return "SAMLRequest=" + quote(base64.b64encode(deflater.compress(xml) + deflater.flush()).decode(), safe="")


def idp_called(client: FlaskClient, method: str, path: str, xml: bytes) -> Callable[[], Outcome]:
    query = redirect_query(xml) if method == "GET" else ""
    body = corpus.form_body("SAMLRequest", xml) if method == "POST" else b""

    def call() -> Outcome:
        if method == "GET":
            answer = client.get(f"{path}?{query}")
        else:
            answer = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
        return Outcome(answer.status_code, answer.get_data(as_text=True)[:3000])
    return call


@pytest.mark.parametrize("binding", ["GET", "POST"])
@pytest.mark.parametrize(("family", "path"), [(f, "/sso") for f in names(request_documents)]
                         + [(f, "/slo") for f in names(request_documents, sample=True)])  # /slo decodes as /sso
def test_idp_bindings(family: str, path: str, binding: str, idp: FlaskClient) -> None:
    outcome = judged(idp_called(idp, binding, path, request_documents()[family]), f"{binding} {path}", family)
    assert outcome.status == 400, outcome


def test_idp_reported_redirect_url(idp: FlaskClient) -> None:
    url = (corpus.FIXTURES / "idp-sso-url.txt").read_text().strip()

    def call() -> Outcome:
        answer = idp.get(url)
        return Outcome(answer.status_code, answer.get_data(as_text=True)[:3000])

    assert judged(call, "GET /sso", "fixture-idp-sso-url").status == 400


@pytest.mark.parametrize("path", ["/api/v1/next-login", "/api/v1/faults"])
@pytest.mark.parametrize("family", list(JSON_FAMILIES))
def test_idp_api(family: str, path: str, idp: FlaskClient) -> None:
    body = JSON_FAMILIES[family]

    def call() -> Outcome:
        answer = idp.post(path, data=body, content_type="application/json", headers={"Authorization": "Bearer t0ken"})
        return Outcome(answer.status_code, answer.get_data(as_text=True)[:3000])

    outcome = judged(call, f"POST {path}", family)
    assert outcome.status in (400, 413) and outcome.text.lstrip().startswith("{"), outcome
