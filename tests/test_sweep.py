"""The onboarding sweep: every record in a folder, fetched from a local server, checked, compared
with its last good copy, and reported as text, JSON, JUnit and HTML.

Servers are threads on 127.0.0.1 (tests/test_fetch.py's fixtures, with its autouse guard that
fails a test on any connect outside loopback and on any DNS lookup of a name). The fetch
policy's allow-list is opened for 127.0.0.1 here only.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from metadata.certs import certificate_facts, fingerprint
from metadata.fetch import FetchPolicy
from metadata.saml import BINDING_POST, BINDING_REDIRECT
from metadata.store import SQLiteStore, Store
from metadata.write import idp_metadata_xml
from metadata.xml import parse_untrusted
from tests import test_fetch
from tests.factory import NOW, KeyPair, make_keypair
from tests.helpers import IDP_DEFAULTS, crm_toml
from tests.test_fetch import ALLOW_LOCAL, LOGIN_PAGE, PKI, LocalServer, redirect, respond
from validator import uploaded_metadata
from validator.checks.sweep import Snapshot, SnapshotCertificate, choose_signer, compare
from validator.cli import cli
from validator.findings import Severity
from validator.json_value import iso_z
from validator.render.sweep import SweepProgress, render_sweep
from validator.report import facts_json
from validator.sweep import PartnerResult, SweepOptions, SweepResult, run_sweep
from validator.sweep_history import (
    LAST_GOOD_NS,
    SIGNERS_NS,
    SeenSigner,
    last_signer,
    read_last_good,
    recent_runs,
    record_signer,
)
from validator.uploaded_metadata import MetadataVersion

ENTITY_ID = IDP_DEFAULTS["entity_id"]
SSO_URL = IDP_DEFAULTS["sso_url"]
EMAIL = IDP_DEFAULTS["nameid_format"]
LATER = NOW + timedelta(days=1)

# tests/test_fetch.py's fixtures, used by name: its test CA, its https server on 127.0.0.1, and
# its autouse guard that fails a test on any connect outside loopback.
pki = test_fetch.pki
https_server = test_fetch.https_server
network = test_fetch.network


# --- material ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_a() -> KeyPair:
    return make_keypair("idp signing A", not_before=NOW - timedelta(days=400), not_after=NOW + timedelta(days=700))


@pytest.fixture(scope="module")
def key_b() -> KeyPair:
    return make_keypair("idp signing B", not_before=NOW - timedelta(days=10), not_after=NOW + timedelta(days=1000))


def metadata(*certs: KeyPair, entity_id: str = ENTITY_ID, sso: str = SSO_URL, post: str | None = None) -> bytes:
    element = idp_metadata_xml(
        entity_id, sso_urls={BINDING_REDIRECT: sso, BINDING_POST: post or sso}, slo_urls={},
        certificates=[c.cert_der for c in certs], nameid_formats=[EMAIL], want_authn_requests_signed=False,
    )
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def write_record(folder: Path, name: str, url: str | None, *, biller: str = "B-1", title: str = "Test Biller",
                 entity_id: str = ENTITY_ID) -> Path:
    path = folder / name
    path.write_text(crm_toml(idp={**IDP_DEFAULTS, "entity_id": entity_id, "metadata_url": url},
                             biller=(biller, title)))
    return path


@pytest.fixture
def records(tmp_path: Path) -> Path:
    folder = tmp_path / "records"
    folder.mkdir()
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = SQLiteStore(tmp_path / "store.sqlite3")
    yield opened
    opened.close()


def options(pki: PKI, now: datetime = NOW, **changes: object) -> SweepOptions:
    policy = FetchPolicy(allowed_networks=ALLOW_LOCAL, ca_bundle=pki.ca_file)
    return SweepOptions(now=now, fetch_policy=policy, concurrency=4, **changes)  # type: ignore[arg-type]


def codes(partner: PartnerResult) -> list[str]:
    return [f.code for f in partner.report.sorted_findings]


def only(partner: PartnerResult, code: str) -> str:
    found = [f.message for f in partner.report.findings if f.code == code]
    assert len(found) == 1, (code, codes(partner))
    return found[0]


def sweep_one(records: Path, store: Store, pki: PKI, now: datetime = NOW, **changes: object) -> PartnerResult:
    result = run_sweep(records, options(pki, now, **changes), store)
    assert len(result.partners) == 1
    return result.partners[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- one partner ---------------------------------------------------------------------------------


def test_a_good_partner_is_ready_and_its_copy_is_kept(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    document = metadata(key_a)
    https_server.routes["/metadata"] = respond(body=document)
    write_record(records, "b1.toml", https_server.url())
    partner = sweep_one(records, store, pki)
    assert partner.report.verdict == "ready", codes(partner)
    assert partner.report.count(Severity.ERROR) == partner.report.count(Severity.WARNING) == 0
    assert "CRM201" not in codes(partner) and "CRM202" not in codes(partner) and "CRM203" not in codes(partner)
    assert list(partner.changes) == ["first copy kept"]
    assert partner.signer is not None and partner.signer.how == "only"
    assert "is the only signing certificate" in only(partner, "KEY022")
    kept = read_last_good(store, "B-1")
    assert kept is not None and kept.body == document and kept.fetched_at == NOW
    assert kept.snapshot.entity_id == ENTITY_ID
    assert [c.sha256 for c in kept.snapshot.certificates] == [fingerprint(key_a.cert_der)]
    runs = recent_runs(store, "B-1")
    assert len(runs) == 1 and runs[0]["fetched"] and runs[0]["last_good_replaced"]
    assert facts_json(partner.report)["sweep"]["history"]["replaced"] is True


def test_an_unreachable_url_is_a_finding(records: Path, store: Store, pki: PKI) -> None:
    write_record(records, "b1.toml", f"https://127.0.0.1:{closed_port()}/metadata")
    partner = sweep_one(records, store, pki)
    assert "NET005" in codes(partner)
    assert partner.report.exit_code() == 1
    assert read_last_good(store, "B-1") is None
    assert "no good copy yet: the fetch failed" in partner.history.kept


def test_a_tls_failure_is_a_finding(records: Path, store: Store, pki: PKI, https_server: LocalServer,
                                    key_a: KeyPair) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "b1.toml", https_server.url())
    untrusting = SweepOptions(now=NOW, fetch_policy=FetchPolicy(allowed_networks=ALLOW_LOCAL))  # no test CA
    partner = run_sweep(records, untrusting, store).partners[0]
    assert "NET007" in codes(partner)
    assert "certificate verification failed" in only(partner, "NET007")


def test_a_redirect_to_a_private_address_is_refused(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, network: object
) -> None:
    https_server.routes["/metadata"] = redirect("https://10.0.0.1/metadata")
    write_record(records, "b1.toml", https_server.url())
    partner = sweep_one(records, store, pki)
    assert "NET004" in codes(partner)
    assert [s.path for s in https_server.seen] == ["/metadata"]


def test_a_login_page_where_metadata_was_expected(
    records: Path, store: Store, pki: PKI, https_server: LocalServer
) -> None:
    https_server.routes["/metadata"] = respond(200, LOGIN_PAGE, "text/html; charset=utf-8")
    write_record(records, "b1.toml", https_server.url())
    partner = sweep_one(records, store, pki)
    assert {"XML007", "NET012"} <= set(codes(partner))
    assert partner.report.verdict == "not ready"
    assert read_last_good(store, "B-1") is None


def test_a_record_with_no_trust_source_at_all(records: Path, store: Store, pki: PKI) -> None:
    write_record(records, "b1.toml", None)
    partner = sweep_one(records, store, pki)
    assert codes(partner).count("CRM202") == 1
    message = only(partner, "CRM202")
    assert all(key in message for key in ("uploaded", "metadata_file", "signing_certificates", "metadata_url"))
    assert partner.report.exit_code() == 1
    assert partner.history.kept == "no good copy yet: nothing on record gives the IdP's metadata"
    assert partner.source is None and "trust_source" not in facts_json(partner.report)
    assert json.loads(render_sweep(run_sweep(records, options(pki), store), "json"))["partners"][0][
        "trust_source"] is None


# --- the trust sources, in the live test login's order -------------------------------------------


def upload(store: Store, document: bytes, *, biller: str = "B-1") -> MetadataVersion:
    return uploaded_metadata.keep(store, biller, document, entity_id=ENTITY_ID, uploaded_by="ana@example.com",
                                  at=NOW - timedelta(hours=1), origin="upload")


def with_idp_lines(record: Path, lines: str) -> None:
    """Add `lines` to the record's [idp] table (crm_toml writes string values only)."""
    record.write_text(record.read_text().replace("[idp]\n", f"[idp]\n{lines}", 1))


def trust_source(partner: PartnerResult) -> dict[str, str]:
    return facts_json(partner.report)["trust_source"]  # type: ignore[return-value]


def test_uploaded_metadata_comes_first_and_is_compared_with_the_last_good_copy_of_a_fetch(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair, key_b: KeyPair
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "b1.toml", https_server.url())
    fetched = sweep_one(records, store, pki)
    assert trust_source(fetched) == {"kind": "metadata_url", "location": https_server.url()}
    document = metadata(key_a, key_b)
    version = upload(store, document)
    partner = sweep_one(records, store, pki, LATER)
    assert [s.path for s in https_server.seen] == ["/metadata"]  # the upload is judged as it is: no fetch
    assert trust_source(partner) == {"kind": "uploaded", "location": version.label}
    assert partner.report.inputs["metadata"] == version.label == partner.report.inputs["metadata"]
    assert "CN=idp signing B" in only(partner, "KEY020")  # against the copy the URL gave
    assert partner.report.verdict == "ready, with warnings" and "CRM202" not in codes(partner)
    kept = read_last_good(store, "B-1")
    assert kept is not None and kept.body == document and kept.source == "uploaded" and kept.url == version.label
    assert recent_runs(store, "B-1")[0]["source"] == "uploaded"
    summary = json.loads(render_sweep(run_sweep(records, options(pki, LATER), store), "json"))["partners"][0]
    assert summary["trust_source"] == {"kind": "uploaded", "location": version.label}
    assert summary["report"]["facts"]["trust_source"]["kind"] == "uploaded"


def test_uploaded_metadata_with_errors_is_judged_and_never_kept(
    records: Path, store: Store, pki: PKI, key_a: KeyPair
) -> None:
    write_record(records, "b1.toml", f"https://127.0.0.1:{closed_port()}/metadata")
    version = upload(store, metadata(key_a, sso="http://idp.example.com/sso"))  # MD010: plain http
    partner = sweep_one(records, store, pki)
    assert "MD010" in codes(partner) and not any(code.startswith("NET") for code in codes(partner))
    assert all(f.where.startswith(version.label) for f in partner.report.findings if f.code == "MD010")
    assert partner.report.verdict == "not ready"
    assert read_last_good(store, "B-1") is None
    assert partner.history.kept == "no good copy yet: the checks of this copy found errors"


def test_a_metadata_file_beside_the_record_is_judged_and_kept(
    records: Path, store: Store, pki: PKI, key_a: KeyPair
) -> None:
    document = metadata(key_a)
    (records / "b1.idp.xml").write_bytes(document)
    record = write_record(records, "b1.toml", f"https://127.0.0.1:{closed_port()}/metadata")
    with_idp_lines(record, 'metadata_file = "b1.idp.xml"\n')
    partner = sweep_one(records, store, pki)
    assert partner.report.verdict == "ready", codes(partner)  # the file comes before the URL: no NET005
    location = str(records / "b1.idp.xml")
    assert trust_source(partner) == {"kind": "metadata_file", "location": location}
    assert partner.report.inputs["metadata"] == location and partner.changes == ("first copy kept",)
    kept = read_last_good(store, "B-1")
    assert kept is not None and kept.body == document and kept.source == "metadata_file"


def test_a_missing_metadata_file_is_xml008_naming_it(records: Path, store: Store, pki: PKI) -> None:
    record = write_record(records, "b1.toml", None)
    with_idp_lines(record, 'metadata_file = "gone.xml"\n')
    partner = sweep_one(records, store, pki)
    [finding] = [f for f in partner.report.findings if f.code == "XML008"]
    assert finding.where == str(records / "gone.xml") and "the metadata file cannot be read" in finding.message
    assert "CRM202" not in codes(partner) and partner.report.verdict == "not ready"
    assert partner.history.kept == "no good copy yet: the metadata file could not be read"
    assert read_last_good(store, "B-1") is None
    result = run_sweep(records, options(pki, LATER), store)
    suite = parse_untrusted(render_sweep(result, "junit").encode()).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [c.get("name", "") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [name.split()[0] for name in failed] == ["XML008"]
    report = json.loads(render_sweep(result, "json"))["partners"][0]["report"]
    assert report["inputs"]["metadata"] == str(records / "gone.xml")
    assert "Traceback" not in render_sweep(result, "html")


def test_signing_certificates_without_metadata(records: Path, store: Store, pki: PKI, key_a: KeyPair) -> None:
    (records / "signer.pem").write_bytes(key_a.cert_pem)
    record = write_record(records, "b1.toml", f"https://127.0.0.1:{closed_port()}/metadata")
    with_idp_lines(record, 'signing_certificates = ["signer.pem"]\n')
    result = run_sweep(records, options(pki), store)
    partner = result.partners[0]
    assert partner.report.verdict == "ready", codes(partner)  # before the URL: nothing is fetched
    location = str(records / "signer.pem")
    assert trust_source(partner) == {"kind": "signing_certificates", "location": location}
    assert partner.report.inputs == {"crm": "b1.toml", "signing_certificates": location}
    assert "no metadata to compare" in (partner.history.kept or "") and not partner.history.replaced
    assert read_last_good(store, "B-1") is None and recent_runs(store, "B-1") == []
    assert [c.sha256 for c in partner.certificates] == [fingerprint(key_a.cert_der)]
    assert partner.certificates_from == "signing_certificates"
    assert partner.signer is not None and partner.signer.how == "only"
    summary = json.loads(render_sweep(result, "json"))["partners"][0]
    assert summary["next_expiry"]["days_left"] == 700 and summary["next_expiry"]["from"] == "signing_certificates"
    suite = parse_untrusted(render_sweep(result, "junit").encode()).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"


def test_a_weak_signing_certificate_is_the_metadata_rule(records: Path, store: Store, pki: PKI) -> None:
    weak = make_keypair("weak signer", bits=1024)
    (records / "signer.pem").write_bytes(weak.cert_pem)
    record = write_record(records, "b1.toml", None)
    with_idp_lines(record, 'signing_certificates = ["signer.pem"]\n')
    partner = sweep_one(records, store, pki)
    [finding] = [f for f in partner.report.findings if f.code == "KEY007"]
    assert "1024-bit" in finding.message and finding.where == str(records / "signer.pem")


@pytest.mark.parametrize(("days", "code", "verdict"), [(-1, "KEY005", "not ready"),
                                                      (10, "KEY006", "ready, with warnings")])
def test_an_expired_or_expiring_signing_certificate_is_the_metadata_rule(
    days: int, code: str, verdict: str, records: Path, store: Store, pki: PKI
) -> None:
    old = make_keypair("pinned signer", not_before=NOW - timedelta(days=400), not_after=NOW + timedelta(days=days))
    (records / "signer.pem").write_bytes(old.cert_pem)
    record = write_record(records, "b1.toml", None)
    with_idp_lines(record, 'signing_certificates = ["signer.pem"]\n')
    partner = sweep_one(records, store, pki)
    [finding] = [f for f in partner.report.findings if f.code == code]
    assert "CN=pinned signer" in finding.message and finding.where == str(records / "signer.pem")
    assert partner.report.verdict == verdict and "CRM202" not in codes(partner)


def test_a_signing_certificate_file_that_is_not_one_is_the_partners_finding(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    (records / "good.pem").write_bytes(key_a.cert_pem)
    (records / "notes.pem").write_text("not a certificate")
    record = write_record(records, "a.toml", None)
    with_idp_lines(record, 'signing_certificates = ["notes.pem", "good.pem"]\n')
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "b.toml", https_server.url(), biller="B-2")
    result = run_sweep(records, options(pki), store)
    broken, other = result.partners
    [finding] = [f for f in broken.report.findings if f.code == "CRM201"]
    assert finding.where == "a.toml: idp.signing_certificates"
    assert str(records / "notes.pem") in finding.message and "not a readable certificate" in finding.message
    assert broken.report.verdict == "not ready"
    assert [c.sha256 for c in broken.certificates] == [fingerprint(key_a.cert_der)]  # the other file still counts
    assert other.report.verdict == "ready"  # never the sweep's end
    text = " ".join(render_sweep(result, "text").split())  # unwrapped
    assert f"trust source: signing_certificates {records / 'notes.pem'}, " in text
    assert "history: no metadata to compare" in text


# --- a folder ------------------------------------------------------------------------------------


def test_a_broken_record_is_its_partners_finding_and_the_others_are_swept(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "a-good.toml", https_server.url(), biller="B-1")
    (records / "b-broken.toml").write_text('[biller]\nid = "B-2"\nnmae = "typo"\n')
    (records / "c-broken.json").write_text("{not json")
    write_record(records, "d-good.toml", https_server.url(), biller="B-4")
    (records / "notes.txt").write_text("not a record")
    result = run_sweep(records, options(pki), store)
    assert [p.record for p in result.partners] == ["a-good.toml", "b-broken.toml", "c-broken.json", "d-good.toml"]
    good, broken, garbled, other = result.partners
    assert good.report.verdict == other.report.verdict == "ready"
    assert set(codes(broken)) == {"CRM201"}
    wheres = {f.where for f in broken.report.findings}
    assert "b-broken.toml: biller.nmae" in wheres and "b-broken.toml: sp" in wheres
    assert set(codes(garbled)) == {"CRM201"} and "JSON" in garbled.report.findings[0].message
    assert broken.biller_id is None and broken.name == "b-broken.toml"
    assert result.exit_code() == 1
    assert len(https_server.seen) == 2


def test_two_records_with_one_biller_id_keep_no_history(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "a.toml", https_server.url(), biller="B-1")
    write_record(records, "b.toml", https_server.url(), biller="B-1")
    result = run_sweep(records, options(pki), store)
    assert [codes(p).count("CRM203") for p in result.partners] == [1, 1]
    assert store.keys(LAST_GOOD_NS) == [] and recent_runs(store, "B-1") == []


# --- history -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "code"), [
    (respond(500, b"<html><body>Internal error</body></html>", "text/html"), "NET008"),
    (respond(404, b"not found", "text/plain"), "NET008"),
    (respond(200, LOGIN_PAGE, "text/html"), "XML007"),
    (respond(200, b"<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata'", "text/xml"), "XML002"),
    (respond(200, b"<feed xmlns='http://www.w3.org/2005/Atom'/>", "application/xml"), "XML008"),
], ids=["server-error", "not-found", "login-page", "malformed", "not-metadata"])
def test_a_failed_fetch_never_overwrites_the_last_good_copy(
    route: Callable[..., None], code: str, records: Path, store: Store, pki: PKI, https_server: LocalServer,
    key_a: KeyPair,
) -> None:
    good = metadata(key_a)
    https_server.routes["/metadata"] = respond(body=good)
    write_record(records, "b1.toml", https_server.url())
    sweep_one(records, store, pki)
    https_server.routes["/metadata"] = route
    partner = sweep_one(records, store, pki, LATER)
    assert code in codes(partner)
    kept = read_last_good(store, "B-1")
    assert kept is not None and kept.body == good and kept.fetched_at == NOW
    assert partner.history.replaced is False
    assert "the last good copy of 2026-06-01 12:00 UTC is kept" in partner.history.kept
    # The partner's certificates are still known, from the last good copy, for the expiry column.
    assert partner.certificates_from == "last good copy" and len(partner.certificates) == 1
    runs = recent_runs(store, "B-1")
    assert [r["last_good_replaced"] for r in runs] == [False, True]  # newest first


def test_errors_in_the_checks_keep_the_last_good_copy(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    good = metadata(key_a)
    https_server.routes["/metadata"] = respond(body=good)
    write_record(records, "b1.toml", https_server.url())
    sweep_one(records, store, pki)
    https_server.routes["/metadata"] = respond(body=metadata(key_a, sso="http://idp.example.com/sso"))  # MD010
    partner = sweep_one(records, store, pki, LATER)
    assert partner.report.count(Severity.ERROR)
    kept = read_last_good(store, "B-1")
    assert kept is not None and kept.body == good


def test_a_certificate_rollover_is_detected(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair, key_b: KeyPair
) -> None:
    write_record(records, "b1.toml", https_server.url())
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    sweep_one(records, store, pki)

    https_server.routes["/metadata"] = respond(body=metadata(key_a))  # unchanged: nothing to report
    unchanged = sweep_one(records, store, pki, LATER)
    assert not {"KEY020", "KEY021", "MD020", "MD021"} & set(codes(unchanged))
    assert list(unchanged.changes) == []

    https_server.routes["/metadata"] = respond(body=metadata(key_a, key_b))  # B announced
    added = sweep_one(records, store, pki, LATER + timedelta(days=1))
    assert "CN=idp signing B" in only(added, "KEY020")
    assert [f.actual for f in added.report.findings if f.code == "KEY020"] == [fingerprint(key_b.cert_der)]
    assert "KEY021" not in codes(added)
    assert list(added.changes) == ["certificate added"]
    assert added.report.verdict == "ready, with warnings"  # the new copy is good: it becomes the last good one

    https_server.routes["/metadata"] = respond(body=metadata(key_b))  # A retired
    removed = sweep_one(records, store, pki, LATER + timedelta(days=2))
    assert "CN=idp signing A" in only(removed, "KEY021")
    assert "KEY020" not in codes(removed)
    assert list(removed.changes) == ["certificate removed"]


def test_entity_id_and_sso_changes_are_reported(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    write_record(records, "b1.toml", https_server.url())
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    sweep_one(records, store, pki)
    moved = metadata(key_a, entity_id="https://idp.example.com/saml2", post="https://idp.example.com/sso/post")
    https_server.routes["/metadata"] = respond(body=moved)
    partner = sweep_one(records, store, pki, LATER)
    assert "from 'https://idp.example.com/saml' to 'https://idp.example.com/saml2'" in only(partner, "MD020")
    assert "HTTP-POST endpoint moved" in only(partner, "MD021")
    assert "CRM001" in codes(partner)  # the record still names the old entity ID: an error
    assert list(partner.changes) == ["entity ID", "SSO endpoint"]
    kept = read_last_good(store, "B-1")
    assert kept is not None and kept.snapshot.entity_id == ENTITY_ID  # errors: not the new good copy


def test_sso_changes_in_detail() -> None:
    cert = SnapshotCertificate("AA", "CN=a", NOW - timedelta(days=1), NOW + timedelta(days=100))
    before = Snapshot(ENTITY_ID, (("HTTP-Redirect", "https://a/sso"), ("HTTP-POST", "https://a/post")), (cert,))
    after = Snapshot(ENTITY_ID, (("HTTP-Redirect", "https://a/sso"), ("HTTP-Redirect", "https://b/sso"),
                                 ("SOAP", "https://a/soap")), (cert,))
    found = compare(before, after, since=NOW, where="url")
    assert [(f.code, f.severity, f.message.split(" since")[0]) for f in found] == [
        ("MD021", Severity.INFO, "a HTTP-Redirect endpoint was added at https://b/sso"),
        ("MD021", Severity.WARNING, "the HTTP-POST endpoint https://a/post was removed"),
        ("MD021", Severity.INFO, "a SOAP endpoint was added at https://a/soap"),
    ]
    assert compare(before, before, since=NOW, where="url") == []


def _format_1_copy(body: bytes, cert: KeyPair, *, url: str, sso: str = SSO_URL) -> bytes:
    """A last good copy exactly as the sweep stored it before issue 14: snapshot format 1, with the
    binding's short name and the location as the report showed it."""
    c = certificate_facts(cert.cert_der)
    header = {
        "format": 1, "fetched_at": "2026-06-01T12:00:00Z", "url": url, "sha256": hashlib.sha256(body).hexdigest(),
        "bytes": len(body), "snapshot": {
            "entity_id": ENTITY_ID,
            "sso": [{"binding": "HTTP-Redirect", "location": sso}, {"binding": "HTTP-POST", "location": sso}],
            "certificates": [{"sha256": c.sha256, "subject": c.subject, "not_before": iso_z(c.not_before),
                              "not_after": iso_z(c.not_after)}],
        },
    }
    return json.dumps(header, sort_keys=True).encode() + b"\n" + body


def test_a_copy_stored_in_the_format_before_issue_14_loads_and_compares(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    body = metadata(key_a)
    https_server.routes["/metadata"] = respond(body=body)
    write_record(records, "b1.toml", https_server.url())
    store.put(LAST_GOOD_NS, "B-1", _format_1_copy(body, key_a, url=https_server.url()))
    kept = read_last_good(store, "B-1")
    assert kept is not None and kept.body == body and kept.fetched_at == NOW
    assert kept.snapshot.sso == ((BINDING_REDIRECT, SSO_URL), (BINDING_POST, SSO_URL))  # read as the model has it
    assert [c.sha256 for c in kept.snapshot.certificates] == [fingerprint(key_a.cert_der)]
    unchanged = sweep_one(records, store, pki, LATER)
    assert not {"MD020", "MD021", "KEY020", "KEY021"} & set(codes(unchanged)) and unchanged.changes == ()
    assert unchanged.history.compared_with is not None and unchanged.history.replaced
    stored = json.loads((store.get(LAST_GOOD_NS, "B-1") or b"").partition(b"\n")[0])
    assert stored["format"] == 2 and stored["snapshot"]["sso"][0] == {"binding": BINDING_REDIRECT,
                                                                      "location": SSO_URL}


def test_a_moved_endpoint_against_a_copy_of_the_old_format_is_one_md021(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a, post="https://idp.example.com/sso/post"))
    write_record(records, "b1.toml", https_server.url())
    store.put(LAST_GOOD_NS, "B-1", _format_1_copy(metadata(key_a), key_a, url=https_server.url()))
    partner = sweep_one(records, store, pki, LATER)
    assert "HTTP-POST endpoint moved from https://idp.example.com/sso/redirect to https://idp.example.com/sso/post" \
        in only(partner, "MD021")


def test_a_change_of_how_endpoints_are_shown_is_no_change_of_the_metadata(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The snapshot holds the model's values; the report's display of bindings and locations may change.
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "b1.toml", https_server.url())
    sweep_one(records, store, pki)
    monkeypatch.setattr("validator.metadata_facts.binding_name", lambda uri: uri.rsplit(":", 1)[-1].lower())
    monkeypatch.setattr("validator.metadata_facts.redact_url", lambda url: url.upper())
    again = sweep_one(records, store, pki, LATER)
    assert facts_json(again.report)["sso"][0] == {"binding": "http-redirect", "location": SSO_URL.upper()}
    assert "MD021" not in codes(again) and again.changes == ()


def test_the_snapshot_keeps_the_location_the_metadata_gives() -> None:
    from metadata.read import read_metadata
    from validator.sweep_history import snapshot_of

    location = "https://bob:s3cret@idp.example.com/sso?tenant=a"
    entity = read_metadata(parse_untrusted(metadata(make_keypair("x"), sso=location))).entities[0]
    snapshot = snapshot_of(entity)
    assert snapshot.sso[0] == (BINDING_REDIRECT, location)
    moved = Snapshot(ENTITY_ID, ((BINDING_REDIRECT, "https://bob:other@idp.example.com/sso?tenant=b"),),
                     snapshot.certificates)
    found = compare(snapshot, moved, since=NOW, where="u")
    [finding] = [f for f in found if "HTTP-Redirect endpoint moved" in f.message]
    assert "s3cret" not in repr(found)
    assert "s3cret" not in repr(finding) and "https://***@idp.example.com/sso?tenant=b" in finding.message


def test_a_copy_kept_with_a_password_in_its_sso_url_is_compared_without_showing_it() -> None:
    # Copies kept before facts were redacted hold the URL as the metadata gave it.
    cert = SnapshotCertificate("AA", "CN=a", NOW - timedelta(days=1), NOW + timedelta(days=100))
    kept = Snapshot(ENTITY_ID, (("HTTP-Redirect", "https://bob:s3cret@a.example/sso"),), (cert,))
    same = Snapshot(ENTITY_ID, (("HTTP-Redirect", "https://***@a.example/sso"),), (cert,))
    assert compare(kept, same, since=NOW, where="url") == []
    moved = compare(kept, Snapshot(ENTITY_ID, (("HTTP-Redirect", "https://b.example/sso"),), (cert,)),
                    since=NOW, where="url")
    assert [f.code for f in moved] == ["MD021"] and "s3cret" not in repr(moved)


# --- expiry and the signer -----------------------------------------------------------------------


@pytest.mark.parametrize(("days_left", "warned"), [(29, True), (31, False)])
def test_expiry_is_warned_at_the_horizon(
    days_left: int, warned: bool, records: Path, store: Store, pki: PKI, https_server: LocalServer
) -> None:
    soon = make_keypair("expiring", not_before=NOW - timedelta(days=300), not_after=NOW + timedelta(days=days_left,
                                                                                                     hours=1))
    https_server.routes["/metadata"] = respond(body=metadata(soon))
    write_record(records, "b1.toml", https_server.url())
    partner = sweep_one(records, store, pki, warn_days=30)
    assert ("KEY006" in codes(partner)) is warned
    facts = facts_json(partner.report)["sweep"]["next_expiry"]
    assert facts["days_left"] == days_left and facts["signer"] is True
    text = render_sweep(run_sweep(records, options(pki, warn_days=30), store), "text")
    assert f"({days_left} d), signer" in text


def test_the_signer_is_a_guess_unless_a_test_login_saw_it(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair, key_b: KeyPair
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a, key_b))
    write_record(records, "b1.toml", https_server.url())
    guessed = sweep_one(records, store, pki)
    assert guessed.signer is not None and guessed.signer.how == "likely"
    assert guessed.signer.sha256 == fingerprint(key_b.cert_der)  # the newer of two valid ones
    assert "metadata alone cannot tell" in only(guessed, "KEY022")

    record_signer(store, "B-1", fingerprint(key_a.cert_der), NOW - timedelta(hours=2), "login-Xy7")
    seen = sweep_one(records, store, pki, LATER)
    assert seen.signer is not None and seen.signer.how == "test-login"
    assert seen.signer.sha256 == fingerprint(key_a.cert_der)
    assert "verified the test login of 2026-06-01 10:00 UTC" in only(seen, "KEY022")
    assert facts_json(seen.report)["sweep"]["signer"]["test_login"] == {"at": "2026-06-01T10:00:00Z"}
    assert "login-Xy7" not in repr(facts_json(seen.report))  # the ID opens the login's result page: never shown


def test_a_signer_recorded_before_login_ids_were_kept_still_counts(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair, key_b: KeyPair
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a, key_b))
    write_record(records, "b1.toml", https_server.url())
    at = NOW - timedelta(hours=2)
    old_entry = {"sha256": fingerprint(key_a.cert_der), "verified_at": "2026-06-01T10:00:00Z"}
    store.put(SIGNERS_NS, "B-1", json.dumps(old_entry).encode())
    assert last_signer(store, "B-1") == SeenSigner(fingerprint(key_a.cert_der), at, None)
    seen = sweep_one(records, store, pki, LATER)
    assert seen.signer is not None and seen.signer.how == "test-login"
    assert facts_json(seen.report)["sweep"]["signer"]["test_login"] == {"at": "2026-06-01T10:00:00Z"}
    assert seen.test_login is not None and seen.test_login.verified_at == at


def test_a_test_login_signer_that_left_the_metadata_is_said() -> None:
    a = SnapshotCertificate("AA", "CN=a", NOW - timedelta(days=10), NOW + timedelta(days=100))
    b = SnapshotCertificate("BB", "CN=b", NOW - timedelta(days=400), NOW - timedelta(days=1))
    signer = choose_signer([a, b], NOW, seen=("CC", NOW - timedelta(days=3)))
    assert signer is not None and signer.sha256 == "AA" and signer.how == "likely"
    assert "only one of 2 signing certificates valid now" in signer.note and "no longer in the metadata" in signer.note
    expired = choose_signer([b], NOW + timedelta(days=30))
    assert expired is not None and expired.how == "only"
    assert choose_signer([], NOW) is None


# --- outputs -------------------------------------------------------------------------------------


@pytest.fixture
def mixed(records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair) -> SweepResult:
    """One ready partner, one whose metadata URL fails, one broken record with a hostile name."""
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "a.toml", https_server.url(), title="Springfield <b>&amp; Water")
    write_record(records, "b.toml", f"https://127.0.0.1:{closed_port()}/metadata", biller="B-2")
    (records / "c.json").write_text("[]")
    return run_sweep(records, options(pki), store)


def test_json_holds_one_report_per_partner(mixed: SweepResult) -> None:
    document = json.loads(render_sweep(mixed, "json"))
    assert document["schema"] == "saml-preflight/sweep/v1"
    assert document["exit_code"] == 1 and document["verdict"] == "not ready"
    assert document["summary"] == {"partners": 3, "not_ready": 2, "ready_with_warnings": 0, "ready": 1,
                                   "changed": 0, "errors": document["summary"]["errors"], "warnings": 0}
    assert [p["record"] for p in document["partners"]] == ["a.toml", "b.toml", "c.json"]
    for partner in document["partners"]:
        assert partner["report"]["schema"] == "saml-preflight/report/v1"
        assert partner["report"]["facts"]["sweep"]["record"] == partner["record"]
    good = document["partners"][0]
    assert good["signer"]["how"] == "only" and good["next_expiry"]["days_left"] == 700
    assert good["report"]["inputs"]["metadata"].startswith("https://127.0.0.1:")
    assert render_sweep(mixed, "json") == render_sweep(mixed, "json")


def test_junit_has_one_testsuite_per_partner(mixed: SweepResult) -> None:
    root = parse_untrusted(render_sweep(mixed, "junit").encode()).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["saml-preflight.sweep.a.toml", "saml-preflight.sweep.b.toml",
                                               "saml-preflight.sweep.c.json"]
    assert [s.get("failures") for s in suites] == ["0", "1", "1"]
    failed = {c.get("name", "").split()[0] for s in suites for c in s.iter("testcase") if c.find("failure") is not None}
    assert failed == {"NET005", "CRM201"}
    assert int(root.get("tests", "0")) == sum(int(s.get("tests", "0")) for s in suites)
    # Checks that never ran are not listed as passed: no document was read for b, no record for c.
    names = {s.get("name"): {c.get("name", "").split()[0] for c in s.iter("testcase")} for s in suites}
    assert "KEY006" in names["saml-preflight.sweep.a.toml"]
    assert not {"KEY006", "MD001", "CRM001"} & names["saml-preflight.sweep.b.toml"]
    assert names["saml-preflight.sweep.c.json"] == {"CRM201"}


def test_html_is_self_contained_with_a_timeline_per_partner(mixed: SweepResult) -> None:
    page = render_sweep(mixed, "html")
    assert "<script" not in page.lower() and "http-equiv=\"Content-Security-Policy\"" in page
    assert page.count('role="img"') == 1  # only the partner whose certificates are known
    assert "Springfield &lt;b&gt;&amp;amp; Water" in page and "<b>&amp; Water" not in page
    assert 'class="certificate valid current"' in page
    assert "src=" not in page and "href=\"http" not in page


def test_text_summary_and_quiet(mixed: SweepResult, records: Path, store: Store, pki: PKI) -> None:
    text = render_sweep(mixed, "text")
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("Partner"))
    assert header.split() == ["Partner", "Verdict", "Errors", "Warnings", "Next", "expiry", "Changed"]
    assert any(line.startswith("B-1 Springfield <b>&amp; Water") and "✓ ready" in line for line in lines)
    assert "NET005" in text and "CRM201" in text
    quiet = render_sweep(mixed, "text", quiet=True)
    assert "B-1 Springfield" not in quiet and "B-2" in quiet
    (records / "b.toml").unlink()
    (records / "c.json").unlink()
    calm = run_sweep(records, options(pki, LATER), store)
    assert render_sweep(calm, "text", quiet=True) == ""  # cron mails nothing


# --- the command line ----------------------------------------------------------------------------


def cli_run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "validator.cli", *map(str, args)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    missing = cli_run("sweep", tmp_path / "nowhere")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    nothing = cli_run("sweep", empty, "--store", f"sqlite:///{tmp_path}/s.sqlite3")
    assert nothing.returncode == 2 and "holds no CRM record" in nothing.stderr
    both = cli_run("sweep", empty, "--quiet", "--verbose")
    assert both.returncode == 2


def test_errors_exit_one_and_nothing_is_printed_on_stderr(tmp_path: Path, records: Path) -> None:
    write_record(records, "b1.toml", "https://127.0.0.1/metadata")  # refused before connecting: NET004
    result = cli_run("sweep", records, "--store", f"sqlite:///{tmp_path}/s.sqlite3", "--now", "2026-06-01")
    assert result.returncode == 1
    assert "NET004" in result.stdout
    assert result.stderr == ""  # not a terminal: no progress


def test_a_clean_sweep_exits_zero_and_writes_every_format(
    tmp_path: Path, records: Path, pki: PKI, https_server: LocalServer, key_a: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "b1.toml", https_server.url())
    monkeypatch.setattr("validator.sweep.fetch_policy", lambda allow_http: options(pki).fetch_policy)
    store = f"sqlite:///{tmp_path}/s.sqlite3"
    runner = CliRunner()
    for fmt in ("text", "json", "junit", "html"):
        out = tmp_path / f"sweep.{fmt}"
        result = runner.invoke(cli, ["sweep", str(records), "--store", store, "--now", "2026-06-01T12:00:00Z",
                                     "--format", fmt, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert result.stdout == "" and result.stderr == ""
        assert out.read_text()
    assert json.loads((tmp_path / "sweep.json").read_text())["exit_code"] == 0
    verbose = runner.invoke(cli, ["sweep", str(records), "--store", store, "--verbose", "--now", "2026-06-01"])
    assert verbose.exit_code == 0
    assert "[1/1] B-1 Test Biller (b1.toml): ✓ ready" in verbose.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(mixed: SweepResult) -> None:
    partners = mixed.partners
    for tty, verbose, quiet, expect in [(False, False, False, ""), (True, False, True, ""),
                                        (True, False, False, "Sweeping"), (False, True, False, "[1/3]")]:
        stream = _Terminal() if tty else io.StringIO()
        with SweepProgress(len(partners), stream=stream, tty=tty, verbose=verbose, quiet=quiet) as progress:
            for partner in partners:
                progress(partner)
        output = stream.getvalue()
        assert (expect in output) if expect else output == "", (tty, verbose, quiet, output)
    bar = _Terminal()
    with SweepProgress(3, stream=bar, tty=True) as progress:
        for partner in partners:
            progress(partner)
    assert "3/3" in bar.getvalue()


def test_the_default_store_is_the_web_apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Shared with `saml-validate serve`, so the sweep can read which certificate verified a test login.
    from validator.store_location import default_store_path
    from validator.sweep import open_sweep_store

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VALIDATOR_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    opened = open_sweep_store(None)
    try:
        assert isinstance(opened, SQLiteStore) and opened.path == default_store_path()
        assert opened.path.is_relative_to(tmp_path / "data") and not list(tmp_path.glob("*.sqlite3"))
    finally:
        opened.close()


class _FailingFor:
    """A store that fails every operation for one biller, as a Redis shard or a locked file might;
    with `once`, only the first one, and then works: what is written after the failure shows."""

    def __init__(self, inner: Store, biller: str, *, once: bool = False) -> None:
        self.inner, self.biller, self.once, self.failed = inner, biller, once, False

    def __getattr__(self, name: str) -> object:
        method = getattr(self.inner, name)

        def call(ns: str, *args: object, **kwargs: object) -> object:
            key = str(args[0]) if args else ""  # keys(ns) names no biller: it is answered
            if self.biller in key and not (self.once and self.failed):
                from metadata.store import StoreUnavailable

                self.failed = True
                raise StoreUnavailable("the store did not answer (test)")
            return method(ns, *args, **kwargs)
        return call


def test_a_store_failing_for_one_partner_is_its_finding_and_the_others_are_swept(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "b1.toml", https_server.url(), biller="B-1")
    write_record(records, "b2.toml", https_server.url("/gone"), biller="B-2", title="Other")
    result = run_sweep(records, options(pki), _FailingFor(store, "B-2"))  # type: ignore[arg-type]
    by_record = {p.record: p for p in result.partners}
    # The store's failure stands beside the partner's own findings (here its URL's 404), never
    # instead of them; and nothing is written for that partner.
    failed = codes(by_record["b2.toml"])
    assert failed.count("CRM204") == 1 and any(code.startswith("NET") for code in failed), failed
    assert by_record["b2.toml"].history.json() == {"replaced": False, "kept": "the store did not answer: no history "
                                                                              "was written"}
    assert read_last_good(store, "B-2") is None and recent_runs(store, "B-2") == []
    assert result.exit_code() == 1
    assert by_record["b1.toml"].report.verdict == "ready" and read_last_good(store, "B-1") is not None
    assert by_record["b2.toml"].biller_id == "B-2"


def test_after_a_store_failure_nothing_is_written_for_that_partner(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "b2.toml", https_server.url(), biller="B-2")
    result = run_sweep(records, options(pki), _FailingFor(store, "B-2", once=True))  # type: ignore[arg-type]
    partner = result.partners[0]
    assert codes(partner).count("CRM204") == 1 and "first copy kept" not in partner.changes
    assert read_last_good(store, "B-2") is None and recent_runs(store, "B-2") == []  # the store worked again


def test_a_what_if_sweep_at_another_time_writes_no_history(
    records: Path, store: Store, pki: PKI, https_server: LocalServer, key_a: KeyPair
) -> None:
    https_server.routes["/metadata"] = respond(body=metadata(key_a))
    write_record(records, "b1.toml", https_server.url())
    partner = sweep_one(records, store, pki, record_history=False)
    assert partner.report.verdict == "ready" and "what-if" in partner.history.kept
    assert read_last_good(store, "B-1") is None and recent_runs(store, "B-1") == []
