"""A test login's result, as the store keeps it and the result page shows it.

The ACS stores two values per login (24 hours): the report, exactly as ``--format json`` writes
it, and the *view*: what the page shows beside the report (the XML as received, the claims and
login types the record expects, the IdP's names, the step times). Both are read back here,
once, into typed values (:func:`read_report`, :meth:`LoginView.read`), tolerant of entries
written by earlier versions (a view without step times, a missing view).

The page judges nothing itself: the failed step of the sequence picture is the stage of its
errors, and the claim table (:mod:`validator.web.claim_table`) is what the one claim judge found.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from lxml import etree

from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.xml import MESSAGE_LIMITS, parse_untrusted
from validator.json_value import Plain
from validator.render.sequence import CHECK_STAGES, Lifeline, Lifelines, Step, failed_stage, stage_of

UNKNOWN_LOGIN = "There is no test login with this ID; results are kept 24 hours."
"""What a page says of a test login that does not exist (or that the asker may not see)."""
UNKNOWN_LOGIN_API = "there is no test login with this ID; results are kept 24 hours"
RESULTS_NS, RESULTS_TTL = "test-logins", 24 * 3600
"""The report, exactly as :func:`validator.render.json.render_json` wrote it."""
VIEWS_NS = "test-login-views"
"""What the result page shows beside the report (:class:`LoginView`)."""


@dataclass(frozen=True)
class TestLoginFacts:
    """What a test login's report says about the login itself, beside the response's facts."""

    __test__ = False  # not a test case, whatever pytest thinks of the name

    acs_url: str
    portal_acs_url: str
    request_id: str
    started_at: str
    idp_metadata_error: str | None = None
    """Why the IdP's metadata could not be used, when it could not."""

    def json(self) -> dict[str, Plain]:
        facts: dict[str, Plain] = {"test_sp": {"acs_url": self.acs_url, "portal_acs_url": self.portal_acs_url,
                                               "request_id": self.request_id, "started_at": self.started_at}}
        if self.idp_metadata_error is not None:
            facts["idp_metadata_error"] = self.idp_metadata_error
        return facts


def result_biller(view_args: Mapping[str, object]) -> str | None:
    """The biller a stored test login belongs to (its view's), for the access rule of its pages;
    None for no such login, or an unsolicited response no biller's record named (staff only)."""
    from .state import TOKEN, web

    login_id = str(view_args.get("login_id", ""))
    stored = web().store.get(VIEWS_NS, login_id) if TOKEN.fullmatch(login_id) else None
    return LoginView.read(json.loads(stored)).biller_id if stored else None


# --- the view ------------------------------------------------------------------------------


Outcome = Literal["judged", "stopped", "unsolicited"]


@dataclass(frozen=True)
class ExpectedClaim:
    name: str
    required: bool = False
    login_type: bool = False


@dataclass(frozen=True)
class LoginView:
    """What the result page shows beside the report."""

    biller_id: str | None = None
    biller_name: str | None = None
    started_at: str | None = None
    requested: str | None = None
    """When the AuthnRequest was sent, ISO 8601 UTC (so were the two below)."""
    received: str | None = None
    judged: str | None = None
    sp_entity_id: str | None = None
    idp_entity_id: str | None = None
    idp_vendor: str | None = None
    xml: str = ""
    relay_state: str | None = None
    claims: tuple[ExpectedClaim, ...] = ()
    login_types: Mapping[str, str] = field(default_factory=dict)
    """Login type ID (as text) to its name."""
    outcome: Outcome = "judged"
    """``judged``: a response to the test SP's request; ``stopped``: no request was sent (CRM002);
    ``unsolicited``: a response nobody asked for (IdP-initiated)."""

    def json(self) -> bytes:
        """As the store keeps it (the shape written since step times were added)."""
        return json.dumps({
            "biller_id": self.biller_id, "biller_name": self.biller_name, "started_at": self.started_at,
            "times": {"requested": self.requested, "received": self.received, "judged": self.judged},
            "sp_entity_id": self.sp_entity_id, "idp": {"entity_id": self.idp_entity_id, "vendor": self.idp_vendor},
            "xml": self.xml, "relay_state": self.relay_state,
            "claims": [{"name": c.name, "required": c.required, "login_type": c.login_type} for c in self.claims],
            "login_types": dict(self.login_types), "outcome": self.outcome,
        }).encode()

    @classmethod
    def read(cls, value: Mapping[str, object] | None) -> LoginView:
        """The view as stored, by this version or an earlier one (one without ``times`` has only
        ``started_at``); None, a login stored without one, is an empty view."""
        if not value:
            return cls()
        times = value.get("times") if isinstance(value.get("times"), dict) else {}
        idp = value.get("idp") if isinstance(value.get("idp"), dict) else {}
        claims = value.get("claims") if isinstance(value.get("claims"), list) else []
        login_types = value.get("login_types") if isinstance(value.get("login_types"), dict) else {}
        assert isinstance(times, dict) and isinstance(idp, dict) and isinstance(claims, list)
        assert isinstance(login_types, dict)
        return cls(
            _text(value.get("biller_id")), _text(value.get("biller_name")), _text(value.get("started_at")),
            _text(times.get("requested", value.get("started_at"))), _text(times.get("received")),
            _text(times.get("judged")), _text(value.get("sp_entity_id")), _text(idp.get("entity_id")),
            _text(idp.get("vendor")), str(value.get("xml") or ""), _text(value.get("relay_state")),
            tuple(ExpectedClaim(str(c["name"]), bool(c.get("required")), bool(c.get("login_type")))
                  for c in claims if isinstance(c, dict)),
            {str(k): str(v) for k, v in login_types.items()},
            _outcome(value.get("outcome")),
        )


def login_view(record: CRMRecord | None, *, started_at: str, received: str, judged: str,
               idp_entity_id: str | None, idp_vendor: str | None, xml: str, relay_state: str | None,
               outcome: Outcome = "judged") -> LoginView:
    """The view of a login; without `record`, an unsolicited response no biller's record names."""
    if record is None:
        return LoginView(None, None, started_at, None, received, judged, None, idp_entity_id, idp_vendor, xml,
                         relay_state, outcome=outcome)
    return LoginView(
        record.biller.id, record.biller.name, started_at, started_at, received or None, judged, record.sp.entity_id,
        idp_entity_id, idp_vendor, xml, relay_state,
        tuple(ExpectedClaim(c.name, c.required, c.login_type) for c in record.claims),
        {str(k): v for k, v in record.login_type_ids.items()}, outcome,
    )


def _outcome(value: object) -> Outcome:
    return "stopped" if value == "stopped" else "unsolicited" if value == "unsolicited" else "judged"


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# --- the report, read back -----------------------------------------------------------------


@dataclass(frozen=True)
class StoredFinding:
    code: str
    severity: str
    title: str = ""
    message: str = ""
    expected: str | None = None
    actual: str | None = None
    where: str | None = None
    fix: str | None = None


@dataclass(frozen=True)
class StoredSummary:
    errors: int = 0
    warnings: int = 0
    info: int = 0


@dataclass(frozen=True)
class StoredResponse:
    """What the report says of the response: read only from what verified (SECURITY.md §2)."""

    verified: bool = False
    nameid: str | None = None
    nameid_format: str | None = None
    issuer: str | None = None
    signed: tuple[str, ...] = ()
    claims: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    assertion_present: bool = True
    """Whether the verified response held an assertion (whose claims were judged)."""
    said_unverified: bool = False
    """The report says in so many words that the response was not verified (a report stored before
    the response facts existed says nothing either way)."""


@dataclass(frozen=True)
class StoredReport:
    clock: str = ""
    verdict: str = ""
    summary: StoredSummary = field(default_factory=StoredSummary)
    findings: tuple[StoredFinding, ...] = ()
    response: StoredResponse = field(default_factory=StoredResponse)
    idp_metadata_error: str | None = None
    trust_source: str | None = None
    """Where the IdP's certificates came from, as a sentence (:data:`TRUST_KINDS`)."""

    @property
    def errors(self) -> tuple[StoredFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")


def read_report(document: Mapping[str, object]) -> StoredReport:
    """A stored report (``saml-preflight/report/v1``), as far as the result page shows it."""
    facts = document.get("facts") if isinstance(document.get("facts"), dict) else {}
    summary = document.get("summary") if isinstance(document.get("summary"), dict) else {}
    found = document.get("findings") if isinstance(document.get("findings"), list) else []
    assert isinstance(facts, dict) and isinstance(summary, dict) and isinstance(found, list)
    response = facts.get("response") if isinstance(facts.get("response"), dict) else {}
    assert isinstance(response, dict)
    return StoredReport(
        str(document.get("clock", "")), str(document.get("verdict", "")),
        StoredSummary(int(summary.get("errors", 0)), int(summary.get("warnings", 0)), int(summary.get("info", 0))),
        tuple(_finding(f) for f in found if isinstance(f, dict)), _response(response),
        _text(facts.get("idp_metadata_error")), _trust_source(facts.get("trust_source")),
    )


TRUST_KINDS = {"metadata": "the metadata given", "uploaded": "metadata uploaded in this app",
               "metadata_file": "the record's metadata_file", "signing_certificates": "the record's "
               "signing_certificates", "metadata_url": "the record's metadata_url"}


def _trust_source(value: object) -> str | None:
    if not isinstance(value, dict) or not value.get("location"):
        return None
    kind = str(value.get("kind"))
    return f"{TRUST_KINDS.get(kind, kind)}: {value['location']}"


def _finding(value: Mapping[str, object]) -> StoredFinding:
    return StoredFinding(str(value.get("code", "")), str(value.get("severity", "")), str(value.get("title") or ""),
                         str(value.get("message") or ""), _text(value.get("expected")), _text(value.get("actual")),
                         _text(value.get("where")), _text(value.get("fix")))


def _response(value: Mapping[str, object]) -> StoredResponse:
    claims = value.get("claims") if isinstance(value.get("claims"), dict) else {}
    signed = value.get("signed") if isinstance(value.get("signed"), list) else []
    assert isinstance(claims, dict) and isinstance(signed, list)
    return StoredResponse(
        value.get("verified") is True, _text(value.get("nameid")), _text(value.get("nameid_format")),
        _text(value.get("issuer")), tuple(str(s) for s in signed),
        {str(k): tuple(str(v) for v in vs) for k, vs in claims.items() if isinstance(vs, list)},
        value.get("assertion_id") is not None or bool(claims), value.get("verified") is False,
    )


# --- what the page shows -------------------------------------------------------------------


def login_steps(view: LoginView, report: StoredReport) -> tuple[list[Step], str | None]:
    """The test login as the sequence picture draws it, and the check it failed at (None: accepted)."""
    requested, received, judged = (_moment(t) for t in (view.requested, view.received, view.judged))
    errors = sorted({f.code for f in report.errors})
    titles = {f.code: f.title for f in report.errors}
    failed = failed_stage(errors)
    if errors and report.response.said_unverified:  # e.g. CRM001 left nothing trusted: no check after it ran
        failed = CHECK_STAGES[0]

    def check(stage: str, name: str, passed: str, about: str) -> Step:
        if stage != failed and (failed is None or CHECK_STAGES.index(stage) < CHECK_STAGES.index(failed)):
            return Step(stage, passed, "sp", "sp", judged, note=about, check=True)
        note = _failed_note(stage, errors, titles, about) if stage == failed else about
        return Step(stage, name, "sp", "sp", judged, note=note, check=True)

    return [
        Step("login", f"GET /test-login/{view.biller_id or '…'}", "browser", "sp", requested),
        Step("request", "AuthnRequest (HTTP-Redirect)", "sp", "idp", requested,
             note="302 to the IdP's SSO URL, via the browser"),
        Step("idp", "the user signs in at the IdP", "idp", "idp"),
        Step("response", "POST SAMLResponse to /test-sp/acs", "idp", "sp", received,
             note="HTTP-POST, via the browser"),
        check("signature", "signature", "signature verified", "with the IdP's certificates from its metadata"),
        check("protocol", "protocol checks", "protocol checks passed",
              "issuer, audience, destination, times, InResponseTo"),
        check("claims", "claims vs the CRM record", "claims match the CRM record",
              f"{len(view.claims)} claims in the record"),
        Step("result", "303 to this result page", "sp", "browser", judged,
             note=f"report: {report.verdict}", after_failure=True),
    ], failed


def _failed_note(stage: str, errors: Sequence[str], titles: Mapping[str, str], about: str) -> str:
    """A failed stage's note: its one error with its title, or its codes."""
    codes = [c for c in errors if stage_of(c) == stage]
    if len(codes) == 1 and titles.get(codes[0]):
        return f"{codes[0]}: {titles[codes[0]]}"
    if not codes:  # the response was not verified for a reason another stage's finding gives
        return "not verified: " + ", ".join(errors[:4]) if errors else about
    return ", ".join(codes[:4]) + (f" and {len(codes) - 4} more" if len(codes) > 4 else "")


def lifelines(view: LoginView) -> Lifelines:
    detail = " · ".join(v for v in (view.idp_vendor, view.idp_entity_id) if v)
    return Lifelines(sp=Lifeline("Test SP (validator)", view.sp_entity_id or ""),
                     idp=Lifeline("Partner IdP", detail))


def _moment(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def pretty_xml(text: str) -> str:
    """The XML indented for reading (shown escaped; never parsed for anything else)."""
    if not text:
        return ""
    try:
        tree = parse_untrusted(text.encode(), MESSAGE_LIMITS)
        etree.indent(tree, space="  ")
        return etree.tostring(tree, encoding="unicode")
    except (MetadataError, ValueError, TypeError):
        return text
