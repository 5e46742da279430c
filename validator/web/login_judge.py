"""What the test SP judges and keeps: a response at its ACS (answering its request, or unsolicited),
and a login stopped before sending because the record's SSO URL is not the metadata's (CRM002).

A response is judged once, from the tree the ACS parsed, with the biller's trust as the command
line takes it (:mod:`validator.web.partner_trust`). Every result is kept 24 hours (report and view,
:mod:`validator.web.login_result`) and noted among the partner's attempts
(:mod:`validator.web.attempts`). Only a login judged without errors tells the sweep which
certificate signs (:func:`validator.sweep_history.record_signer`).

An unsolicited response (no InResponseTo: the login was started at the IdP) is judged as any
response is, RSP018 saying why the portal refuses it, and attributed to the one biller whose record
names its Issuer, or to no biller. Anyone may post one, so at most :data:`UNSOLICITED_PER_HOUR` are
kept an hour, all partners together.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from lxml import etree

from metadata.bindings import PostMessage
from metadata.certs import fingerprint
from metadata.crm import CRMRecord
from metadata.saml import SAML
from validator.checks.crm_match import SSO_URL
from validator.checks.response_rules import UNSOLICITED
from validator.findings import Finding, Severity, folded
from validator.inspection import MetadataOptions, inspect_metadata_bytes
from validator.json_value import iso_z
from validator.render.json import render_json
from validator.report import Report
from validator.response_inspection import ResponseInspection, ResponseOptions, inspect_response_tree
from validator.response_report import ResponseReportFacts
from validator.sweep_history import record_signer
from validator.trust import IdPTrust
from validator.vendor import VENDORS

from . import attempts
from .jobs import METADATA_LIMIT
from .login_request import PendingLogin
from .login_result import RESULTS_NS, RESULTS_TTL, VIEWS_NS, LoginView, TestLoginFacts, login_view
from .partner_trust import PartnerMetadata, partner_trust
from .partners import list_partners
from .state import Refusal, WebState, web

SEEN_NS, SEEN_TTL = "test-sp-seen-assertions", 24 * 3600
"""Assertion IDs already used in a test login: the replay cache."""


def sso_url_problems(record: CRMRecord, found: PartnerMetadata, now: datetime) -> tuple[Finding, ...]:
    """CRM002 when the record's SSO URL is not a browser SSO endpoint of the metadata: the same
    check as ``saml-validate metadata``, run on the document the test login trusts."""
    options = MetadataOptions(now=now, max_bytes=METADATA_LIMIT)
    inspection = inspect_metadata_bytes(found.data, found.source.location, options, record)
    return tuple(f for f in inspection.findings if f.code == SSO_URL.code)


def keep_stopped(state: WebState, record: CRMRecord, found: PartnerMetadata, findings: tuple[Finding, ...],
                  now: datetime) -> str:
    """A login stopped before sending, kept as a result: its CRM002, and a way to go on regardless."""
    report = Report(subject="test-login", inputs={"crm": f"{record.biller.id}.toml",
                                                  "metadata": found.source.location},
                    clock=now, findings=findings, facts=(found.source,))
    view = login_view(record, started_at=iso_z(now), received="", judged=iso_z(now), idp_entity_id=record.idp.entity_id,
                      idp_vendor=None, xml="", relay_state=None, outcome="stopped")
    login_id = _store_result(state, report, view)
    attempts.note_result(state.store, record.biller.id, "stopped", login_id, report.verdict, now)
    return login_id


# --- a response judged and kept ------------------------------------------------------


def judge(tree: etree._ElementTree, record: CRMRecord | None, pending: PendingLogin | None, state: WebState
           ) -> tuple[Report, IdPTrust | None, ResponseInspection]:
    """The response judged once, from the tree the ACS parsed: a replay (RSP023) is found by
    asking the store during the checks, which records the assertion as used. Without `pending`
    (unsolicited) there is no request to answer: RSP018 says so; without `record` (no biller's
    record names the Issuer) nothing is trusted and no claim is expected."""
    now = state.clock()
    checked = record.model_copy(update={"sp": record.sp.model_copy(update={"acs_url": state.acs_url})}) if record \
        else None
    source, trust, problems = partner_trust(record, state, checked) if record else (None, None, [])
    inputs = {"response": "test SP ACS (HTTP-POST)", **({"crm": f"{record.biller.id}.toml"} if record else {}),
              **({"metadata": source.location} if source else {})}
    options = ResponseOptions(
        now=now, trusted=trust.certificates if trust else (), idp_entity_id=trust.entity_id if trust else None,
        request_id=pending.request_id if pending else None, vendor_key=trust.vendor_key if trust else None,
        # A finding already says why nothing is trusted (NET, XML008, CRM001): then no SIG026.
        no_trust_reason=None if problems else NO_TRUST_REASON, no_trust_fix=NO_TRUST_FIX,
        is_replay=lambda assertion_id: not state.store.add(SEEN_NS, assertion_id, b"1", ttl=SEEN_TTL))
    inspection = inspect_response_tree(tree, "response", options, checked)
    login = _login_facts(state, record, pending, now)
    # CRM001 when the record's entity ID near-misses the metadata's: that entity still gave the trust.
    findings = (*folded([*problems, *(trust.findings if trust else ())]), *inspection.findings,
                *_unverified_unsolicited(pending, inspection))
    used = (source,) if source is not None and trust is not None else ()
    report = Report(subject="response", inputs=inputs, clock=now, findings=findings,
                    subjects_run=inspection.subjects_run, facts=(login, *used, ResponseReportFacts(inspection)))
    return report, trust, inspection


def _unverified_unsolicited(pending: PendingLogin | None, inspection: ResponseInspection) -> tuple[Finding, ...]:
    """RSP018 for an unsolicited response whose checks did not run (nothing trusted its IdP): the
    ACS saw that it answers no request, and that alone makes the portal refuse it."""
    if pending is not None or any(f.code == UNSOLICITED.code for f in inspection.findings):
        return ()
    return (UNSOLICITED.finding("no InResponseTo: the login was started at the IdP, not by the portal (read before "
                                "verification: the response's signature could not be checked)",
                                expected="the ID of the portal's AuthnRequest", actual="(absent)",
                                where="samlp:Response/@InResponseTo"),)


def _login_facts(state: WebState, record: CRMRecord | None, pending: PendingLogin | None, now: datetime
                 ) -> TestLoginFacts:
    portal_acs = record.sp.acs_url if record else ""
    if pending is None:  # unsolicited: no request, and it started when it arrived
        return TestLoginFacts(state.acs_url, portal_acs, "", iso_z(now))
    return TestLoginFacts(state.acs_url, portal_acs, pending.request_id, pending.started_at)


NO_TRUST_REASON = ("nothing on record gives the IdP's certificates: no metadata was uploaded for this biller, and "
                   "its CRM record has no [idp] metadata_url, metadata_file or signing_certificates")
NO_TRUST_FIX = ("Upload the IdP's metadata on the partner's page (Partners → the biller → \"IdP metadata\"), or "
                "ask the operator to set [idp] metadata_url, metadata_file or signing_certificates in its CRM "
                "record.")


UNSOLICITED_PER_HOUR = 100
"""Unsolicited responses kept per hour, all partners together: anyone may post to the ACS, and a
flood of posts must not fill the store."""


def keep_unsolicited(state: WebState, message: PostMessage, received: datetime) -> str:
    """An IdP-initiated response: judged as any response is (RSP018 says why the portal refuses
    it), attributed to the biller whose record names its Issuer, kept as a result."""
    if not _claim_unsolicited_slot(state, received):
        raise Refusal(429, "Too many unsolicited responses", "More than "
                      f"{UNSOLICITED_PER_HOUR} unsolicited responses arrived in the last hour; this one was not "
                      "kept. The portal accepts SP-initiated logins only: start at /test-login/<biller-id>.")
    record = _record_naming(message.tree)
    report, trust, _ = judge(message.tree, record, None, state)
    view = login_view(record, started_at=iso_z(received), received=iso_z(received), judged=iso_z(state.clock()),
                      idp_entity_id=(trust.entity_id if trust else None) or _issuer(message.tree),
                      idp_vendor=None, xml=message.xml.decode("utf-8", errors="replace"),
                      relay_state=message.relay_state, outcome="unsolicited")
    login_id = _store_result(state, report, view)
    if record is not None:
        attempts.note_result(state.store, record.biller.id, "unsolicited", login_id, report.verdict, received)
    return login_id


def _claim_unsolicited_slot(state: WebState, now: datetime) -> bool:
    hour = now.strftime("%Y%m%d%H")
    if state.store.get(UNSOLICITED_NS, f"{hour}.{UNSOLICITED_PER_HOUR - 1}") is not None:
        return False  # slots are taken in order: the last one taken means the hour's are all gone
    for slot in range(UNSOLICITED_PER_HOUR):
        if state.store.add(UNSOLICITED_NS, f"{hour}.{slot}", b"1", ttl=2 * 3600):
            return True
    return False


UNSOLICITED_NS = "test-sp-unsolicited"


def _issuer(tree: etree._ElementTree) -> str | None:
    """The response's Issuer, unverified: only to name the partner it claims to come from."""
    root = tree.getroot()
    found = root.find(f"{{{SAML}}}Issuer")
    if found is None:
        found = root.find(f"{{{SAML}}}Assertion/{{{SAML}}}Issuer")
    return (found.text or "").strip() if found is not None else None


def _record_naming(tree: etree._ElementTree) -> CRMRecord | None:
    """The record of the one biller whose ``idp.entity_id`` is the response's Issuer; None when no
    record (or more than one) names it: the result is then the unknown partner's."""
    issuer = _issuer(tree)
    if not issuer:
        return None
    named = [p.record for p in list_partners(web().crm_folder) if p.record and p.record.idp.entity_id == issuer]
    return named[0] if len(named) == 1 else None


def keep_answered(state: WebState, message: PostMessage, record: CRMRecord, pending: PendingLogin, report: Report,
          trust: IdPTrust | None, inspection: ResponseInspection, received: datetime) -> str:
    """Store the login's report and view (24 hours) under a new ID, note it as the answer to its
    request, and the signer when it may be trusted; the ID."""
    judged = state.clock()
    vendor = record.idp.vendor or (trust.vendor_key if trust else None)
    view = login_view(record, started_at=pending.started_at, received=iso_z(received),
                      judged=iso_z(judged), idp_entity_id=(trust.entity_id if trust else None) or record.idp.entity_id,
                      idp_vendor=VENDORS[vendor].name if vendor in VENDORS else vendor,
                      xml=message.xml.decode("utf-8", errors="replace"), relay_state=message.relay_state)
    login_id = _store_result(state, report, view)
    attempts.note_answer(state.store, pending.request_id, login_id, report.verdict)
    signer = _clean_signer(report, inspection, pending)
    if signer:  # the sweep says which certificate signs from this (validator.sweep_history)
        record_signer(state.store, record.biller.id, signer, judged, login_id)
    return login_id


def _store_result(state: WebState, report: Report, view: LoginView) -> str:
    login_id = secrets.token_urlsafe(24)
    state.store.put_many([(RESULTS_NS, login_id, render_json(report).encode(), RESULTS_TTL),
                          (VIEWS_NS, login_id, view.json(), RESULTS_TTL)])
    return login_id


def _clean_signer(report: Report, inspection: ResponseInspection, pending: PendingLogin) -> str | None:
    """The certificate that verified a login judged without any error and answering the request
    this browser started; None otherwise. A failed login proves nothing about which key the IdP
    uses now: an old response, signed with a retired key and its unsigned InResponseTo rewritten
    to a fresh request, would otherwise name the retired key as the current signer."""
    judged = inspection.responses[0] if inspection.responses else None
    if judged is None or judged.verified is None or judged.facts is None or not judged.verified.signatures:
        return None
    if report.count(Severity.ERROR) or judged.facts.in_response_to != pending.request_id:
        return None
    return fingerprint(judged.verified.signatures[-1].certificate)
