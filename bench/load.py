"""Load on the test IdP, two ways.

1. The load generator of the HTTP-flow benchmark (``bench.idp_bench``, ``python -m bench.child
   load``): SP-initiated flows, one HTTP request each. Each flow is ``GET /sso?SAMLRequest=…``
   with a new unsigned AuthnRequest (HTTP-Redirect binding: raw DEFLATE, base64, URL-encoded; a
   fresh ID and IssueInstant every time), and it counts only when the answer is a 200 whose
   body holds the SAMLResponse field of the auto-POST form. `concurrency` threads each keep one
   ``http.client`` connection (reopened whenever the server closes it: gunicorn's default sync
   workers close after every response) and send the next flow as soon as the previous answer
   is read, until `seconds` have passed; requests in flight then finish. This part imports
   neither the project nor pysaml2: the same generator drives both IdPs.

2. Complete logins (issue 7, "Load"; ``python -m bench --only load``): :class:`bench.servers.IdPServer`
   runs ``gunicorn -w 2 'idp:create_app()'`` on 127.0.0.1, and :class:`LocalSP`, the SP end in this
   process, sends each AuthnRequest and accepts each answer at most once: signature with the
   certificate from the IdP's /metadata, InResponseTo, Destination, Recipient, Audience,
   validity, no replay. :func:`run_logins` drives concurrent logins; :func:`rows` is the
   benchmark. ``tests/test_reliability.py`` uses the same pieces to break things under load.
   The project is imported only inside these functions, so part 1 stays project-free.

Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import http.client
import math
import os
import re
import secrets
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from bench.servers import PERSONA, SP_ACS, SP_ENTITY_ID, WORKERS, IdPServer
from bench.table import Row
from metadata.saml import BEARER, EMAIL, SAML, SAMLP, SUCCESS

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
MARKER = b'name="SAMLResponse"'


def authn_request(destination: str, sp_entity_id: str, acs: str) -> tuple[str, bytes]:
    """A new AuthnRequest for `destination`: its ID and its XML."""
    request_id = "_" + secrets.token_hex(16)
    instant = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = (
        f'<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{request_id}" Version="2.0" '
        f'IssueInstant="{instant}" Destination="{destination}" AssertionConsumerServiceURL="{acs}" '
        f'ProtocolBinding="{POST}"><saml:Issuer>{sp_entity_id}</saml:Issuer>'
        f'<samlp:NameIDPolicy Format="{EMAIL}" AllowCreate="true"/></samlp:AuthnRequest>'
    )
    return request_id, xml.encode()


def redirect_path(sso_url: str, sp_entity_id: str, acs: str) -> tuple[str, str]:
    """The request ID and the path + query of one HTTP-Redirect flow to `sso_url`."""
    request_id, xml = authn_request(sso_url, sp_entity_id, acs)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(deflater.compress(xml) + deflater.flush()).decode("ascii")
    return request_id, f"{urlsplit(sso_url).path}?SAMLRequest={quote(encoded, safe='')}"


def fetch(base_url: str, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """One GET on a new connection: status and body."""
    parts = urlsplit(base_url)
    assert parts.hostname == "127.0.0.1", base_url
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def run_load(base_url: str, seconds: float, concurrency: int, sp_entity_id: str, acs: str) -> dict[str, Any]:
    parts = urlsplit(base_url)
    if parts.hostname != "127.0.0.1" or parts.port is None:
        raise ValueError(f"the load generator only talks to 127.0.0.1:PORT, not {base_url!r}")
    if not 0 < seconds <= 120 or not 1 <= concurrency <= 64:
        raise ValueError("seconds must be in (0, 120] and concurrency in [1, 64]")
    sso_url = base_url.rstrip("/") + "/sso"
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    samples: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter()
    stop_at = start + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=30)
        mine: list[float] = []
        try:
            while time.perf_counter() < stop_at:
                _, path = redirect_path(sso_url, sp_entity_id, acs)
                began = time.perf_counter()
                try:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    body = response.read()
                    if response.will_close:
                        conn.close()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    _error(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - began
                if response.status == 200 and MARKER in body:
                    mine.append(elapsed)
                else:
                    _error(f"HTTP {response.status}" + ("" if response.status != 200 else " without SAMLResponse"),
                           body[:300].decode("utf-8", "replace"))
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    def _error(kind: str, detail: str = "") -> None:
        with lock:
            errors[kind] += 1
            if len(samples) < 3:
                samples.append(f"{kind} {detail}".strip())
            overloaded = sum(errors.values()) > 1000
        if overloaded:
            time.sleep(0.01)  # do not spin on a dead server

    cpu = time.process_time()
    threads = [threading.Thread(target=client, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "flows": len(latencies),
        "seconds": wall,
        "flows_per_second": len(latencies) / wall,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "error_samples": samples,
        "concurrency": concurrency,
        "client_cpu_seconds": time.process_time() - cpu,
        "stuck_threads": sum(t.is_alive() for t in threads),
    }


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not ordered:
        return 0.0
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
    return ordered[rank - 1]


# -- complete logins (issue 7, "Load") ----------------------------------------------------------

WARM_UP_SECONDS = 2.0
SKEW = dt.timedelta(seconds=120)
_FORM = re.compile(rb'<form method="post" action="([^"]*)">')
_FIELD = re.compile(rb'<input type="hidden" name="([^"]+)" value="([^"]*)">')


class Rejected(Exception):
    """The local test SP refuses a response; the message says why."""


@dataclass(frozen=True)
class Accepted:
    """What the local test SP took from a response it accepted (read from what was signed)."""

    request_id: str
    assertion_id: str
    nameid: str
    session_index: str


@dataclass(frozen=True)
class Ledger:
    """The SP's books after a run: every AuthnRequest sent and what became of it."""

    issued: int
    accepted: int
    unanswered: int
    """Requests no accepted response answered (each should be a failed flow)."""
    replayed: int
    """Responses that answered a request already answered (never accepted)."""
    foreign: int
    """Responses that answered another flow's request, or one this SP never sent (never accepted)."""
    reused_assertions: int
    """Responses whose Assertion ID was seen before (never accepted)."""

    def problems(self, failed_flows: int) -> list[str]:
        """What is wrong with these books when `failed_flows` flows failed: [] when every request
        was answered exactly once, except those of the failed flows."""
        found = [f"{n} {what}" for n, what in ((self.replayed, "replayed responses"),
                                              (self.foreign, "responses to another request"),
                                              (self.reused_assertions, "reused assertion IDs")) if n]
        if self.accepted + self.unanswered != self.issued:
            found.append(f"{self.issued} requests issued but {self.accepted} accepted + {self.unanswered} unanswered")
        if self.unanswered != failed_flows:
            found.append(f"{self.unanswered} requests unanswered but {failed_flows} flows failed")
        return found


class LocalSP:
    """The SP end of SP-initiated logins, in the driver: sends AuthnRequests and accepts each
    answer at most once (SECURITY.md §3). Thread-safe: the client threads share one."""

    def __init__(self, idp_entity_id: str, certificates: Sequence[bytes], *, entity_id: str = SP_ENTITY_ID,
                 acs: str = SP_ACS, nameid_format: str = EMAIL) -> None:
        if not certificates:
            raise ValueError("the local test SP needs the IdP's signing certificate")
        self.idp_entity_id = idp_entity_id
        self.certificates = tuple(certificates)
        self.entity_id = entity_id
        self.acs = acs
        self.nameid_format = nameid_format
        self._lock = threading.Lock()
        self._outstanding: set[str] = set()
        self._answered: set[str] = set()
        self._assertion_ids: set[str] = set()
        self._issued = 0
        self._counts: Counter[str] = Counter()

    @classmethod
    def for_idp(cls, base_url: str) -> LocalSP:
        """Trusting what the IdP's /metadata publishes (its entity ID and signing certificates)."""
        from validator.trust import trust_from_metadata

        status, body = fetch(base_url, "/metadata")
        if status != 200:
            raise RuntimeError(f"GET {base_url}/metadata answered HTTP {status}")
        trust = trust_from_metadata(body, None)
        assert trust.entity_id is not None
        return cls(trust.entity_id, trust.certificates)

    def request(self, sso_url: str) -> tuple[str, str]:
        """A new AuthnRequest (a fresh ID from `secrets`), now outstanding: its ID and Redirect URL."""
        from lxml import etree

        from metadata.bindings import encode_redirect
        from metadata.write import new_id

        request_id = new_id()
        root = etree.Element(f"{{{SAMLP}}}AuthnRequest", nsmap={"samlp": SAMLP, "saml": SAML})
        for name, value in (("ID", request_id), ("Version", "2.0"),
                            ("IssueInstant", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
                            ("Destination", sso_url), ("AssertionConsumerServiceURL", self.acs),
                            ("ProtocolBinding", POST)):
            root.set(name, value)
        etree.SubElement(root, f"{{{SAML}}}Issuer").text = self.entity_id
        etree.SubElement(root, f"{{{SAMLP}}}NameIDPolicy", Format=self.nameid_format, AllowCreate="true")
        url = encode_redirect(etree.tostring(root), param="SAMLRequest", destination=sso_url)
        with self._lock:
            self._outstanding.add(request_id)
            self._issued += 1
        return request_id, url

    def accept(self, action: str, saml_response: str, sent_id: str) -> Accepted:
        """Accept the response that the form posts to `action` for the request `sent_id`, or raise
        :class:`Rejected`. A request is answered at most once; an assertion is used at most once."""
        from metadata.errors import MetadataError
        from metadata.response import verify_response
        from metadata.xml import MESSAGE_LIMITS, parse_untrusted

        if action != self.acs:
            raise Rejected(f"the form posts to {action!r}, not to this SP's ACS {self.acs!r}")
        try:
            xml = base64.b64decode(saml_response, validate=True)
            verified = verify_response(parse_untrusted(xml, MESSAGE_LIMITS), self.certificates)
        except (ValueError, MetadataError) as exc:  # bad base64, unsafe XML, structure, signature
            raise Rejected(f"{type(exc).__name__}: {exc}") from exc
        accepted = self._check(verified.response, verified.assertion, sent_id)
        with self._lock:
            if accepted.request_id not in self._outstanding:
                kind = "replayed" if accepted.request_id in self._answered else "foreign"
                self._counts[kind] += 1
                raise Rejected(f"InResponseTo {accepted.request_id} is not an outstanding request ({kind})")
            if accepted.assertion_id in self._assertion_ids:
                self._counts["reused"] += 1
                raise Rejected(f"assertion {accepted.assertion_id} was used before")
            self._outstanding.remove(accepted.request_id)
            self._answered.add(accepted.request_id)
            self._assertion_ids.add(accepted.assertion_id)
        return accepted

    def _check(self, response: Any, assertion: Any, sent_id: str) -> Accepted:
        """The protocol checks (SECURITY.md §3) on the signed trees; claims read only from them."""
        from metadata.xml import text_of

        def one(parent: Any, path: str) -> Any:
            found = parent.findall(path, {"samlp": SAMLP, "saml": SAML})
            if len(found) != 1:
                raise Rejected(f"{len(found)} {path} elements, expected 1")
            return found[0]

        now = dt.datetime.now(dt.UTC)

        def instant(value: str | None, what: str) -> dt.datetime:
            try:
                return dt.datetime.fromisoformat(value or "")
            except ValueError:
                raise Rejected(f"{what} {value!r} is not an xs:dateTime") from None

        status = one(response, "samlp:Status/samlp:StatusCode").get("Value")
        if status != SUCCESS:
            raise Rejected(f"status {status}")
        if response.get("Destination") != self.acs:
            raise Rejected(f"Destination {response.get('Destination')!r} is not the ACS")
        if assertion is None:
            raise Rejected("no assertion")
        if text_of(one(assertion, "saml:Issuer")) != self.idp_entity_id:
            raise Rejected("the Issuer is not the IdP")
        conditions = one(assertion, "saml:Conditions")
        if not (instant(conditions.get("NotBefore"), "NotBefore") - SKEW <= now
                < instant(conditions.get("NotOnOrAfter"), "NotOnOrAfter") + SKEW):
            raise Rejected("the assertion is not valid now")
        audiences = {text_of(a) for a in assertion.iterfind("saml:Conditions/saml:AudienceRestriction/saml:Audience",
                                                             {"saml": SAML})}
        if self.entity_id not in audiences:
            raise Rejected(f"audiences {sorted(audiences)} do not include this SP")
        confirmation = one(assertion, "saml:Subject/saml:SubjectConfirmation")
        data = one(confirmation, "saml:SubjectConfirmationData")
        if confirmation.get("Method") != BEARER or data.get("Recipient") != self.acs:
            raise Rejected("no bearer SubjectConfirmation for this ACS")
        if now >= instant(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter") + SKEW:
            raise Rejected("the SubjectConfirmationData has expired")
        signed_answer = data.get("InResponseTo")
        if signed_answer != sent_id or response.get("InResponseTo") != sent_id:
            with self._lock:
                self._counts["foreign"] += 1
            raise Rejected(f"answers request {signed_answer!r}, not this flow's {sent_id!r}")
        return Accepted(request_id=signed_answer, assertion_id=assertion.get("ID") or "",
                        nameid=text_of(one(assertion, "saml:Subject/saml:NameID")),
                        session_index=one(assertion, "saml:AuthnStatement").get("SessionIndex") or "")

    def ledger(self) -> Ledger:
        with self._lock:
            return Ledger(issued=self._issued, accepted=len(self._answered), unanswered=len(self._outstanding),
                          replayed=self._counts["replayed"], foreign=self._counts["foreign"],
                          reused_assertions=self._counts["reused"])


@dataclass(frozen=True)
class Flow:
    """One login as the client saw it."""

    request_id: str
    began: float
    """time.perf_counter() when the AuthnRequest was sent."""
    seconds: float
    """The whole flow: AuthnRequest built, HTTP exchanges, response validated."""
    http_seconds: float
    outcome: str
    """``ok``, or what went wrong."""
    clean: bool
    """True when ok, or when it failed the way a login may (no answer, an HTTP error status); False
    when an answer looked like a login but was not a good one (a 200 without the form, a response
    the SP refused)."""
    accepted: Accepted | None = None
    session: str | None = None
    """The ``idp_session`` cookie the IdP set (or the one sent, when it set none)."""

    @property
    def ok(self) -> bool:
        return self.accepted is not None


def new_pool(base_url: str) -> Any:
    """One client's connection to the IdP: no retries (a retried GET would be a second login)."""
    import urllib3

    parts = urlsplit(base_url)
    if parts.hostname != "127.0.0.1" or parts.port is None:
        raise ValueError(f"only 127.0.0.1:PORT is driven, not {base_url!r}")
    return urllib3.HTTPConnectionPool("127.0.0.1", parts.port, maxsize=1, retries=False,
                                      timeout=urllib3.Timeout(connect=5.0, read=30.0))


def login(pool: Any, base_url: str, sp: LocalSP, *, picker: bool = False, cookie: str | None = None) -> Flow:
    """One SP-initiated login: AuthnRequest (HTTP-Redirect) → the IdP's auto-POST form (through
    the persona picker at /login when `picker` and the IdP asks) → validated by `sp`."""
    import urllib3

    from idp.flow import SESSION_COOKIE

    start = time.perf_counter()
    request_id, url = sp.request(base_url.rstrip("/") + "/sso")
    parts = urlsplit(url)
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
    session = cookie
    began = time.perf_counter()

    def failed(outcome: str, clean: bool) -> Flow:
        now = time.perf_counter()
        return Flow(request_id, began, now - start, now - began, outcome, clean, session=session)

    try:
        answer = pool.request("GET", f"{parts.path}?{parts.query}", headers=headers, redirect=False)
        session = _session_cookie(answer, SESSION_COOKIE) or session
        location = answer.headers.get("Location", "")
        if picker and answer.status == 303 and location.startswith("/login?"):
            token = parse_qs(urlsplit(location).query).get("request", [""])[0]
            answer = pool.request("POST", "/login", fields={"request": token, "persona": PERSONA},
                                  encode_multipart=False, headers=headers, redirect=False)
            session = _session_cookie(answer, SESSION_COOKIE) or session
    except urllib3.exceptions.HTTPError as exc:  # refused, reset, closed early, a short body, a timeout
        return failed(f"no answer: {type(exc).__name__}", True)
    http_seconds = time.perf_counter() - began
    if answer.status != 200:
        return failed(f"HTTP {answer.status}" + (f" to {location}" if answer.status in (302, 303) else ""), True)
    form = _form(answer.data)
    if form is None:
        return failed("HTTP 200 without the auto-POST form", False)
    try:
        accepted = sp.accept(form[0], form[1], request_id)
    except Rejected as exc:
        return failed(f"refused by the SP: {exc}", False)
    return Flow(request_id, began, time.perf_counter() - start, http_seconds, "ok", True, accepted, session)


def _session_cookie(answer: Any, name: str) -> str | None:
    for header in answer.headers.getlist("Set-Cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie[name].value
    return None


def _form(body: bytes) -> tuple[str, str] | None:
    """The action and SAMLResponse of the IdP's auto-POST form, or None."""
    action = _FORM.search(body)
    fields = {name: value for name, value in _FIELD.findall(body)}
    if action is None or b"SAMLResponse" not in fields:
        return None
    return html.unescape(action.group(1).decode()), html.unescape(fields[b"SAMLResponse"].decode())


def run_logins(base_url: str, sp: LocalSP, seconds: float, concurrency: int, *, picker: bool = False) -> list[Flow]:
    """`concurrency` threads, each with its own connection, log in one after another for `seconds`."""
    if not 0 < seconds <= 600 or not 1 <= concurrency <= 64:
        raise ValueError("seconds must be in (0, 600] and concurrency in [1, 64]")
    stop_at = time.perf_counter() + seconds
    results: list[list[Flow]] = [[] for _ in range(concurrency)]

    def client(mine: list[Flow]) -> None:
        pool = new_pool(base_url)
        try:
            while time.perf_counter() < stop_at:
                flow = login(pool, base_url, sp, picker=picker)
                mine.append(flow)
                if not flow.ok:
                    time.sleep(0.01)  # do not spin on a server that is down
        finally:
            pool.close()

    threads = [threading.Thread(target=client, args=(mine,), name=f"login-{i}", daemon=True)
               for i, mine in enumerate(results)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    if any(thread.is_alive() for thread in threads):
        raise RuntimeError("a client thread is stuck past its last request's timeout")
    return sorted((flow for mine in results for flow in mine), key=lambda flow: flow.began)


def _machine_cpu() -> tuple[float, float]:
    """Busy and idle CPU seconds of the whole machine so far (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / ticks, idle / ticks


def _store_left(path: Path) -> tuple[int, int]:
    """Pending requests and IdP sessions left in the IdP's SQLite store."""
    from metadata.store import SQLiteStore

    store = SQLiteStore(path)
    try:
        return len(store.keys("pending")), len(store.keys("session"))
    finally:
        store.close()


def _timings(measured: list[Flow], wall: float) -> dict[str, float]:
    ok = sorted(flow.seconds for flow in measured if flow.ok)
    http = sorted(flow.http_seconds for flow in measured if flow.ok)
    return {
        "flows": len(ok), "seconds": wall, "flows_per_second": len(ok) / wall,
        "p50_ms": _percentile(ok, 0.50) * 1000, "p99_ms": _percentile(ok, 0.99) * 1000,
        "max_ms": (ok[-1] if ok else 0.0) * 1000,
        "http_p50_ms": _percentile(http, 0.50) * 1000, "http_p99_ms": _percentile(http, 0.99) * 1000,
    }


def measure(seconds: float, concurrency: int, *, picker: bool = False) -> dict[str, Any]:
    """A fresh IdP under gunicorn, a warm-up, then `seconds` of logins; the numbers and the checks."""
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, \
            IdPServer(Path(tmp), auto_login=not picker) as idp:
        sp = LocalSP.for_idp(idp.base_url)
        warm = run_logins(idp.base_url, sp, WARM_UP_SECONDS, concurrency, picker=picker)
        if not any(flow.ok for flow in warm):
            raise RuntimeError(f"no login succeeded in the warm-up: {warm[0].outcome if warm else 'none ran'}"
                               f" | gunicorn: {idp.log_tail()}")
        cpu, workers, machine = time.process_time(), idp.worker_cpu_seconds(), _machine_cpu()
        start = time.perf_counter()
        measured = run_logins(idp.base_url, sp, seconds, concurrency, picker=picker)
        wall = time.perf_counter() - start
        cpu, workers = time.process_time() - cpu, idp.worker_cpu_seconds() - workers
        busy, idle = (after - before for after, before in zip(_machine_cpu(), machine, strict=True))
        pending, sessions = _store_left(idp.store_path)
    flows = warm + measured
    ledger = sp.ledger()
    return {
        **_timings(measured, wall),
        "errors": sum(not flow.ok for flow in measured),
        "error_kinds": dict(Counter(flow.outcome for flow in measured if not flow.ok)),
        "unclean": sum(not flow.clean for flow in flows),
        "warm_up_flows": len(warm), "ledger": asdict(ledger),
        "ledger_problems": ledger.problems(sum(not flow.ok for flow in flows)),
        "pending_left": pending, "sessions": sessions,
        "cpu": {"driver": cpu, "workers": workers, "others": max(busy - cpu - workers, 0.0), "idle": idle,
                "cores": busy + idle and (busy + idle) / wall},
        "concurrency": concurrency, "picker": picker,
    }


def rows(seconds: float, concurrency: int, login_mode: str = "auto") -> list[Row]:
    picker = login_mode == "picker"
    how = "persona picker at /login" if picker else "auto_login persona"
    name = f"Complete logins, gunicorn -w {WORKERS}, {concurrency} clients, {seconds:g} s ({how})"
    once = "Every InResponseTo consumed exactly once"
    try:
        result = measure(seconds, concurrency, picker=picker)
    except RuntimeError as exc:
        return [Row(name, f"failed: {str(exc)[:300]}", "0 errors", "not measured"),
                Row(once, "not measured", "all, once", "not measured")]
    cpu, ledger = result["cpu"], result["ledger"]
    wall_cores = result["seconds"] * cpu["cores"]
    share = {k: cpu[k] / wall_cores if wall_cores else 0.0 for k in ("workers", "driver", "others", "idle")}
    ok = result["errors"] == 0 and not result["unclean"]
    details = [
        f"one run (not a median): {result['flows']:,} logins in {result['seconds']:.1f} s; HTTP part p50 "
        f"{result['http_p50_ms']:.1f} ms, p99 {result['http_p99_ms']:.1f} ms; slowest login {result['max_ms']:.0f} ms",
        f"CPU of the {cpu['cores']:.0f} cores: gunicorn workers {share['workers']:.0%}, this driver (requests, "
        f"validation at the local SP) {share['driver']:.0%}, other processes {share['others']:.0%}, idle "
        f"{share['idle']:.0%}; server CPU per login {cpu['workers'] / max(result['flows'], 1) * 1000:.1f} ms, "
        f"driver CPU per login {cpu['driver'] / max(result['flows'], 1) * 1000:.1f} ms",
    ]
    if result["errors"]:
        details.append(f"errors: {result['error_kinds']}")
    found = [Row(name, f"{result['flows_per_second']:,.1f} logins/s, p50 {result['p50_ms']:.1f} ms, "
                      f"p99 {result['p99_ms']:.1f} ms, {result['errors']} errors",
                "0 errors", "met" if ok else "NOT MET", details)]
    problems = list(result["ledger_problems"])
    if result["pending_left"]:
        problems.append(f"{result['pending_left']} pending requests left in the IdP's store")
    found.append(Row(once, f"{ledger['accepted']:,} of {ledger['issued']:,} requests answered once, "
                          f"{ledger['unanswered']} unanswered",
                    "all, once", "met" if not problems else "NOT MET (" + "; ".join(problems) + ")", [
                        f"warm-up included ({result['warm_up_flows']} logins); replayed {ledger['replayed']}, "
                        f"answers to another request {ledger['foreign']}, reused assertion IDs "
                        f"{ledger['reused_assertions']}; IdP pending-request store: {result['pending_left']} entries "
                        f"left ({'each taken once at /login' if picker else 'none stored: auto_login answers at once'}"
                        f"), {result['sessions']:,} IdP sessions kept",
                    ]))
    return found
