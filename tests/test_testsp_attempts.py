"""Every attempt at the test SP leaves a result (issue 12): an unsolicited response is judged and
kept with RSP018, a record whose SSO URL the metadata does not offer stops with CRM002 before
anything is sent (and the user may go on), and a request nobody answers reads "sent, no response"."""

from __future__ import annotations

import html
import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.idp_support import IDP_BASE, form_fields, sso_path
from tests.test_testsp import CRM, PORTAL_ENTITY, TEST_ACS, Pair
from validator.web import attempts, login_judge


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return Pair(tmp_path)


def _unsolicited(pair: Pair, persona: str = "alice") -> dict[str, str]:
    """The test IdP's IdP-initiated response for the portal SP (its /unsolicited page)."""
    page = pair.idp.post("/unsolicited", data={"sp": PORTAL_ENTITY, "persona": persona})
    assert page.status_code == 200, page.get_data(as_text=True)
    fields = form_fields(page.get_data(as_text=True))
    assert fields.pop("_action") == TEST_ACS
    return fields


def _report(pair: Pair, location: str) -> dict[str, object]:
    report: dict[str, object] = json.loads(pair.sp.get("/api/v1" + location).get_data())
    return report


def _errors(report: dict[str, object]) -> list[str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [f["code"] for f in findings if f["severity"] == "error"]


def _codes(report: dict[str, object]) -> list[str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [f["code"] for f in findings]


def test_an_unsolicited_response_is_judged_kept_with_rsp018_and_listed_for_its_partner(pair: Pair) -> None:
    # A browser that started nothing here posts what the IdP's app tile produced.
    posted = pair.app.test_client().post("/test-sp/acs", data=_unsolicited(pair))
    assert posted.status_code == 303, posted.get_data(as_text=True)
    report = _report(pair, posted.headers["Location"])
    assert report["verdict"] == "not ready"
    assert _errors(report) == ["RSP018"], report["findings"]  # everything else about it is right
    facts = report["facts"]
    assert isinstance(facts, dict) and facts["response"]["verified"] is True  # judged with B-1's trust
    assert report["inputs"] == {"response": "test SP ACS (HTTP-POST)", "crm": "B-1.toml",
                                "metadata": f"{IDP_BASE}/metadata"}
    page = html.unescape(pair.sp.get(posted.headers["Location"]).get_data(as_text=True))
    assert "Unsolicited response for" in page and "This response was not asked for" in page
    assert "100200300" in page  # its claims are still shown against the record
    store = pair.app.extensions["saml_validator_web"].store
    listed = attempts.recent(store, "B-1", pair.clock())
    assert [(a.kind, a.status, a.login_id) for a in listed] == [
        ("unsolicited", "not ready", posted.headers["Location"].rsplit("/", 1)[1])]


def test_an_unsolicited_response_no_record_names_is_the_unknown_partners(tmp_path: Path) -> None:
    other = CRM.replace(f'entity_id = "{IDP_BASE}/metadata"', 'entity_id = "https://other-idp.example/metadata"')
    assert other != CRM
    pair = Pair(tmp_path, crm=other)
    posted = pair.app.test_client().post("/test-sp/acs", data=_unsolicited(pair))
    assert posted.status_code == 303, posted.get_data(as_text=True)
    report = _report(pair, posted.headers["Location"])
    codes = _codes(report)
    assert "RSP018" in codes and "SIG026" in codes, codes  # nothing trusts an unknown IdP
    assert "crm" not in report["inputs"]  # type: ignore[operator]
    page = html.unescape(pair.sp.get(posted.headers["Location"]).get_data(as_text=True))
    assert "Unsolicited response from an unknown partner" in page
    assert "No partner's CRM record names its Issuer" in page
    assert f'(<span class="mono">{IDP_BASE}/metadata</span>)' in page
    store = pair.app.extensions["saml_validator_web"].store
    assert attempts.recent(store, "B-1", pair.clock()) == []  # not B-1's


def test_unsolicited_responses_kept_per_hour_are_capped(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(login_judge, "UNSOLICITED_PER_HOUR", 2)
    client = pair.app.test_client()
    statuses = [client.post("/test-sp/acs", data=_unsolicited(pair)).status_code for _ in range(3)]
    assert statuses == [303, 303, 429]
    pair.clock.now += timedelta(hours=1)  # a new hour, new room
    assert client.post("/test-sp/acs", data=_unsolicited(pair)).status_code == 303


def test_a_record_sso_url_the_metadata_does_not_offer_stops_with_crm002_and_may_go_on(tmp_path: Path) -> None:
    slash = CRM.replace(f'sso_url = "{IDP_BASE}/sso"', f'sso_url = "{IDP_BASE}/sso/"')
    assert slash != CRM
    pair = Pair(tmp_path, crm=slash)
    stopped = pair.sp.get("/test-login/B-1")
    assert stopped.status_code == 303 and stopped.headers["Location"].startswith("/test-logins/")
    assert "Set-Cookie" not in stopped.headers  # nothing was sent, nothing is pending
    report = _report(pair, stopped.headers["Location"])
    assert _codes(report) == ["CRM002"]
    finding = report["findings"][0]  # type: ignore[index]
    assert "trailing slash" in finding["message"] and finding["expected"] == f"{IDP_BASE}/sso/"
    page = html.unescape(pair.sp.get(stopped.headers["Location"]).get_data(as_text=True))
    assert "No AuthnRequest was sent." in page
    assert 'href="/test-login/B-1?despite=CRM002"' in page
    store = pair.app.extensions["saml_validator_web"].store
    assert [a.kind for a in attempts.recent(store, "B-1", pair.clock())] == ["stopped"]

    went_on = pair.sp.get("/test-login/B-1?despite=CRM002")
    assert went_on.status_code == 302 and went_on.headers["Location"].startswith(f"{IDP_BASE}/sso/?SAMLRequest=")
    assert [a.kind for a in attempts.recent(store, "B-1", pair.clock())] == ["sent", "stopped"]


def test_a_record_sso_url_the_metadata_offers_is_sent_at_once(pair: Pair) -> None:
    started = pair.sp.get("/test-login/B-1")
    assert started.status_code == 302 and started.headers["Location"].startswith(f"{IDP_BASE}/sso?SAMLRequest=")


def test_a_request_unanswered_for_ten_minutes_reads_sent_no_response(pair: Pair) -> None:
    store = pair.app.extensions["saml_validator_web"].store
    pair.start()  # the user never comes back from the IdP
    assert [a.status for a in attempts.recent(store, "B-1", pair.clock())] == ["sent, waiting for the IdP"]
    pair.clock.now += timedelta(minutes=9, seconds=59)
    assert [a.status for a in attempts.recent(store, "B-1", pair.clock())] == ["sent, waiting for the IdP"]
    pair.clock.now += timedelta(seconds=1)
    assert [a.status for a in attempts.recent(store, "B-1", pair.clock())] == ["sent, no response"]


def test_an_answered_request_reads_its_verdict_and_links_its_result(pair: Pair) -> None:
    store = pair.app.extensions["saml_validator_web"].store
    at_idp = pair.idp.get(sso_path(pair.start()))
    from tests.idp_support import login_as

    posted = pair.sp.post("/test-sp/acs", data=login_as(pair.idp, at_idp.headers["Location"]))
    assert posted.status_code == 303
    pair.clock.now += timedelta(hours=1)
    listed = attempts.recent(store, "B-1", pair.clock())
    assert [(a.kind, a.status, a.login_id) for a in listed] == [
        ("sent", "ready", posted.headers["Location"].rsplit("/", 1)[1])]


def test_a_post_that_is_no_saml_response_is_refused_and_nothing_is_kept(pair: Pair) -> None:
    import base64

    body = {"SAMLResponse": base64.b64encode(b"<feed xmlns='http://www.w3.org/2005/Atom'/>").decode()}
    refused = pair.app.test_client().post("/test-sp/acs", data=body)
    assert refused.status_code == 400
    assert "holds <feed> (namespace http://www.w3.org/2005/Atom), not a samlp:Response" in html.unescape(
        refused.get_data(as_text=True))
    assert _store(pair).keys(login_judge.UNSOLICITED_NS) == []


def _store(pair: Pair):  # type: ignore[no-untyped-def]
    return pair.app.extensions["saml_validator_web"].store
