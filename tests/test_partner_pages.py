"""A partner's page and the IdP metadata uploaded for it (issue 12): each trust source on record
completes a verified test login, and a document is kept only once it has been checked."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from metadata.saml import MD
from metadata.store import SQLiteStore
from tests.idp_support import IDP_BASE, login_as, sso_path
from tests.test_testsp import CRM, Pair
from validator import uploaded_metadata
from validator.json_value import iso_z

NO_URL = CRM.replace(f'metadata_url = "{IDP_BASE}/metadata"\n', "")


def _token(client: FlaskClient, biller: str = "B-1") -> str:
    page = client.get(f"/partners/{biller}").get_data(as_text=True)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _post(client: FlaskClient, path: str, fields: dict[str, Any]) -> Any:
    """A multipart form post, encoded here: the test client would spool a body over 500 KiB to a
    temporary file it never closes (and the warning of an unclosed file fails some other test)."""
    stream, length, boundary = stream_encode_multipart({"csrf": _token(client), **fields})
    with stream:
        body = stream.read(length)
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def _upload(pair: Pair, data: bytes, by: str = "ana@biller.example", **extra: Any) -> Any:
    return _post(pair.sp, "/partners/B-1/metadata",
                 {"metadata_file": FileStorage(BytesIO(data), "idp-metadata.xml"), "uploaded_by": by, **extra})


def _text(response: Any) -> str:
    """The page's text as a reader sees it: tags dropped, entities unescaped, spaces joined."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", response.get_data(as_text=True))).split())


def _verified_login(pair: Pair) -> dict[str, Any]:
    """A whole test login; its JSON report."""
    at_idp = pair.idp.get(sso_path(pair.start()))
    posted = pair.sp.post("/test-sp/acs", data=login_as(pair.idp, at_idp.headers["Location"]))
    assert posted.status_code == 303, posted.get_data(as_text=True)
    report: dict[str, Any] = json.loads(pair.sp.get("/api/v1" + posted.headers["Location"]).get_data())
    return report


def _idp_metadata(pair: Pair) -> bytes:
    data: bytes = pair.idp.get("/metadata").get_data()
    return data


def _store(pair: Pair) -> Any:
    return pair.app.extensions["saml_validator_web"].store


# --- the page -------------------------------------------------------------------------------------


def test_the_partner_page_shows_the_record_its_trust_source_and_the_upload_form(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    page = _text(pair.sp.get("/partners/B-1"))
    assert f"The IdP's certificates the record's metadata_url: {IDP_BASE}/metadata" in page
    assert "AccountNumber, Email, LoginTypeId (login type)" in page and "1 (Customer)" in page
    assert "No test login yet." in page and "Nothing uploaded" in page
    assert 'action="/partners/B-1/metadata"' in pair.sp.get("/partners/B-1").get_data(as_text=True)
    assert 'href="/partners/B-1"' in pair.sp.get("/").get_data(as_text=True)  # the home page links it
    assert pair.sp.get("/partners/nobody").status_code == 404


def test_a_record_with_no_source_says_so_on_its_page(tmp_path: Path) -> None:
    pair = Pair(tmp_path, crm=NO_URL)
    page = _text(pair.sp.get("/partners/B-1"))
    assert "The IdP's certificates nothing on record" in page and "upload the IdP's metadata below" in page


# --- each trust source completes a verified test login --------------------------------------------


def test_uploaded_metadata_is_kept_versioned_with_who_and_when_and_trusted_by_the_next_login(tmp_path: Path) -> None:
    pair = Pair(tmp_path, crm=NO_URL)  # nothing else on record: only the upload can give trust
    kept = _upload(pair, _idp_metadata(pair))
    assert kept.status_code == 303 and kept.headers["Location"] == "/partners/B-1?kept=1"
    page = _text(pair.sp.get(kept.headers["Location"]))
    assert "Version 1 of the IdP metadata was checked and kept" in page
    assert "ana@biller.example" in page and f"{IDP_BASE}/metadata" in page
    (version,) = uploaded_metadata.versions(_store(pair), "B-1")
    assert (version.number, version.uploaded_by, version.origin, version.filename) == (
        1, "ana@biller.example", "upload", "idp-metadata.xml")
    assert version.uploaded_at == iso_z(pair.clock().replace(microsecond=0))

    report = _verified_login(pair)
    assert report["verdict"] == "ready", report["findings"]
    assert report["facts"]["response"]["verified"] is True
    assert report["facts"]["trust_source"] == {"kind": "uploaded", "location": version.label}


def test_pasted_metadata_is_kept_as_the_next_version_and_none_is_replaced(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    uploaded = _idp_metadata(pair)
    assert _upload(pair, uploaded).status_code == 303
    pasted = _post(pair.sp, "/partners/B-1/metadata", {"metadata_text": _idp_metadata(pair).decode(),
                                                      "uploaded_by": "Sam Engineer"})
    assert pasted.status_code == 303 and pasted.headers["Location"].endswith("kept=2")
    second, first = uploaded_metadata.versions(_store(pair), "B-1")
    assert (second.number, second.origin, second.uploaded_by) == (2, "paste", "Sam Engineer")
    assert first.number == 1 and uploaded_metadata.document(_store(pair), first) == uploaded


def test_the_records_metadata_file_completes_a_verified_login(tmp_path: Path) -> None:
    record = NO_URL.replace("[idp]\n", '[idp]\nmetadata_file = "b1-idp.xml"\n', 1)
    pair = Pair(tmp_path, crm=record, metadata=lambda _record: pytest.fail("no URL is fetched"))
    (tmp_path / "crm" / "b1-idp.xml").write_bytes(pair.idp.get("/metadata").get_data())
    report = _verified_login(pair)
    assert report["verdict"] == "ready", report["findings"]
    assert report["facts"]["trust_source"] == {"kind": "metadata_file",
                                               "location": str(tmp_path / "crm" / "b1-idp.xml")}


def _idp_certificate_pem(pair: Pair) -> bytes:
    tree = etree.fromstring(pair.idp.get("/metadata").get_data())
    text = tree.findtext(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert text
    body = "".join(text.split())
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n").encode()


def test_the_records_signing_certificates_complete_a_verified_login(tmp_path: Path) -> None:
    record = NO_URL.replace("[idp]\n", '[idp]\nsigning_certificates = ["b1-signing.pem"]\n', 1)
    pair = Pair(tmp_path, crm=record, metadata=lambda _record: pytest.fail("no URL is fetched"))
    (tmp_path / "crm" / "b1-signing.pem").write_bytes(_idp_certificate_pem(pair))
    report = _verified_login(pair)
    assert report["verdict"] == "ready", report["findings"]
    assert report["facts"]["trust_source"]["kind"] == "signing_certificates"


def test_a_signing_certificate_file_that_is_no_certificate_is_refused_naming_the_key(tmp_path: Path) -> None:
    record = NO_URL.replace("[idp]\n", '[idp]\nsigning_certificates = ["b1-signing.pem"]\n', 1)
    pair = Pair(tmp_path, crm=record)
    (tmp_path / "crm" / "b1-signing.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n")
    refused = pair.sp.get("/test-login/B-1")
    assert refused.status_code == 400
    text = _text(refused)
    assert "idp.signing_certificates" in text and "b1-signing.pem" in text and "is not a readable certificate" in text


# --- checked before it is kept --------------------------------------------------------------------


@pytest.mark.parametrize(("document", "reason"), [
    (b"<html><body>Sign in to continue</body></html>", "cannot be used as IdP metadata"),
    (b"<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata' entityID='https://sp.example'>"
     b"<md:SPSSODescriptor protocolSupportEnumeration='urn:oasis:names:tc:SAML:2.0:protocol'>"
     b"<md:AssertionConsumerService Binding='urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST' "
     b"Location='https://sp.example/acs' index='0'/></md:SPSSODescriptor></md:EntityDescriptor>",
     "describes no identity provider"),
    (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "cannot be used as IdP metadata"),
])
def test_a_document_that_is_not_usable_metadata_is_not_kept_and_the_last_good_stays(
    tmp_path: Path, document: bytes, reason: str
) -> None:
    pair = Pair(tmp_path)
    assert _upload(pair, _idp_metadata(pair)).status_code == 303
    refused = _upload(pair, document)
    assert refused.status_code == 400
    text = _text(refused)
    assert "Not kept:" in text and reason in text and "The metadata in use is unchanged." in text
    assert [v.number for v in uploaded_metadata.versions(_store(pair), "B-1")] == [1]


def test_metadata_without_a_signing_certificate_is_not_kept(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    tree = etree.fromstring(_idp_metadata(pair))
    for descriptor in tree.iter(f"{{{MD}}}KeyDescriptor"):
        descriptor.getparent().remove(descriptor)
    refused = _upload(pair, etree.tostring(tree))
    assert refused.status_code == 400 and "publishes no signing certificate" in _text(refused)
    assert uploaded_metadata.versions(_store(pair), "B-1") == []


def test_metadata_of_another_entity_altogether_is_not_kept(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    other = _idp_metadata(pair).replace(f'entityID="{IDP_BASE}/metadata"'.encode(),
                                        b'entityID="https://someone-else.example/idp"')
    refused = _upload(pair, other)
    assert refused.status_code == 400 and "CRM001" in _text(refused)
    assert uploaded_metadata.versions(_store(pair), "B-1") == []


def test_an_upload_without_who_is_not_kept(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    refused = _upload(pair, _idp_metadata(pair), by="  ")
    assert refused.status_code == 400 and "say who you are" in _text(refused)
    assert uploaded_metadata.versions(_store(pair), "B-1") == []


def test_an_over_size_upload_is_a_413_and_nothing_is_kept(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    big = b"<x>" + b" " * (5 * 1024 * 1024) + b"</x>"
    refused = _upload(pair, big)
    assert refused.status_code == 413 and "larger than" in _text(refused)
    assert uploaded_metadata.versions(_store(pair), "B-1") == []


def test_an_upload_without_the_forms_token_is_refused(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    refused = pair.sp.post("/partners/B-1/metadata", data={"metadata_text": _idp_metadata(pair).decode(),
                                                           "uploaded_by": "x"})
    assert refused.status_code == 403
    assert uploaded_metadata.versions(_store(pair), "B-1") == []


def _two_idps(pair: Pair) -> bytes:
    ours = etree.fromstring(_idp_metadata(pair))
    other = etree.fromstring(_idp_metadata(pair))
    other.set("entityID", "https://another-idp.example/metadata")
    group = etree.Element(f"{{{MD}}}EntitiesDescriptor", nsmap={"md": MD})
    group.extend([other, ours])
    return etree.tostring(group)


def test_a_document_with_several_idps_asks_which_and_keeps_nothing_until_answered(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    asked = _upload(pair, _two_idps(pair))
    assert asked.status_code == 200
    page = asked.get_data(as_text=True)
    assert "describes 2 identity providers" in page
    assert uploaded_metadata.versions(_store(pair), "B-1") == []  # nothing kept yet
    choice = re.search(r'name="choice" value="([0-9a-f]+)"', page)
    assert choice and f'value="{IDP_BASE}/metadata" required checked' in page  # the record's is suggested
    fields = {"choice": choice.group(1), "uploaded_by": "ana@biller.example", "origin": "upload",
              "filename": "idp-metadata.xml"}
    wrong = _post(pair.sp, "/partners/B-1/metadata/choose", {**fields, "entity_id": "https://not-in-it.example"})
    assert wrong.status_code == 400 and "choose one of the IdP entities" in _text(wrong)
    chosen = _post(pair.sp, "/partners/B-1/metadata/choose", {**fields, "entity_id": f"{IDP_BASE}/metadata"})
    assert chosen.status_code == 303, chosen.get_data(as_text=True)
    (version,) = uploaded_metadata.versions(_store(pair), "B-1")
    assert version.entity_id == f"{IDP_BASE}/metadata"
    again = _post(pair.sp, "/partners/B-1/metadata/choose", {**fields, "entity_id": f"{IDP_BASE}/metadata"})
    assert again.status_code == 400 and "is gone" in _text(again)  # a choice is taken once
    report = _verified_login(pair)
    assert report["verdict"] == "ready", report["findings"]


def test_a_kept_version_is_shown_checked_against_the_record(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    assert _upload(pair, _idp_metadata(pair)).status_code == 303
    shown = pair.sp.get("/partners/B-1/metadata/1")
    assert shown.status_code == 200 and "uploaded version 1 (by ana@biller.example" in _text(shown)
    assert pair.sp.get("/partners/B-1/metadata/2").status_code == 404


def test_the_go_live_report_uses_the_uploaded_metadata(tmp_path: Path) -> None:
    pair = Pair(tmp_path, crm=NO_URL)
    assert pair.sp.get("/partners/B-1/report").status_code == 400  # nothing on record yet
    assert _upload(pair, _idp_metadata(pair)).status_code == 303
    report = pair.sp.get("/partners/B-1/report")
    assert report.status_code == 200 and "uploaded version 1" in _text(report)


def test_the_partner_page_lists_its_recent_attempts(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    report = _verified_login(pair)
    pair.start()  # and one left at the IdP
    page = _text(pair.sp.get("/partners/B-1"))
    assert report["verdict"] == "ready"
    rows = re.findall(r"<tr><td class=\"mono\">[^<]*</td><td>([^<]*)</td>\s*<td[^>]*>(.*?)</td></tr>",
                      pair.sp.get("/partners/B-1").get_data(as_text=True))
    assert [(what, re.sub(r"<[^>]*>", "", status)) for what, status in rows] == [
        ("AuthnRequest sent", "sent, waiting for the IdP"), ("AuthnRequest sent", "ready")]
    assert "AuthnRequest sent" in page


def test_a_version_number_another_upload_claimed_first_is_skipped_never_overwritten(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    # Another worker claimed number 1 and has not yet written its description.
    assert store.add(uploaded_metadata.DOCUMENTS_NS, "B-1.000001", b"<theirs/>")
    mine = uploaded_metadata.keep(store, "B-1", b"<mine/>", entity_id="https://idp", uploaded_by="me",
                                  at=datetime(2026, 12, 6, tzinfo=UTC), origin="paste")
    assert mine.number == 2 and uploaded_metadata.document(store, mine) == b"<mine/>"
    assert store.get(uploaded_metadata.DOCUMENTS_NS, "B-1.000001") == b"<theirs/>"
    assert [v.number for v in uploaded_metadata.versions(store, "B-1")] == [2]  # theirs is listed once written
    assert uploaded_metadata.version(store, "B-1", 2) == mine and uploaded_metadata.version(store, "B-1", 1) is None
    store.close()


def test_a_choice_submitted_twice_keeps_one_version(tmp_path: Path) -> None:
    """The waiting document is claimed by the one delete that finds it: a double submit (two tabs,
    a double click) keeps one version, and the second is told the document is gone."""
    pair = Pair(tmp_path)
    page = _upload(pair, _two_idps(pair)).get_data(as_text=True)
    choice = re.search(r'name="choice" value="([0-9a-f]+)"', page)
    assert choice
    store = _store(pair)
    real_delete = store.delete
    calls: list[bool] = []

    def delete_raced(ns: str, key: str) -> bool:  # another request took it between our read and delete
        found = real_delete(ns, key)
        calls.append(found)
        return False

    store.delete = delete_raced
    fields = {"choice": choice.group(1), "uploaded_by": "ana", "entity_id": f"{IDP_BASE}/metadata"}
    late = _post(pair.sp, "/partners/B-1/metadata/choose", fields)
    assert late.status_code == 400 and "is gone" in _text(late) and calls == [True]
    assert uploaded_metadata.versions(store, "B-1") == []
