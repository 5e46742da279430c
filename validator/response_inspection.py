"""Response inspection: a SAML response (in any accepted form) in, one frozen
:class:`ResponseInspection` out.

Order matters (SECURITY.md §2): structure first, then the signatures with the IdP's trusted
certificates only, then — from the trees re-parsed out of what was signed, and only from
them — every protocol check and every claim against the CRM record. A
:class:`~validator.report.Report` is assembled from the inspection only where it is shown
(:func:`validator.response_report.response_report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from metadata.crm import CRMRecord
from metadata.encryption import DecryptionError
from metadata.errors import UnsafeXML
from metadata.response import ResponseError, VerifiedResponse, structure_problems, verify_response
from metadata.signing import SignatureError
from metadata.sniff import not_xml_kind
from metadata.urls import redact_url
from metadata.xml import MESSAGE_LIMITS, in_parsing_thread, parse_untrusted
from validator.checks import claims, response, response_signature
from validator.checks.input import finding_for_unsafe_xml
from validator.checks.response import never_seen
from validator.findings import Finding, FindingLog, folded
from validator.response_facts import ResponseFacts, read_facts
from validator.response_input import InputRefusal, read_response_input
from validator.trust import IdPTrust, TrustSource, Uploaded, load_trust, record_trust

if TYPE_CHECKING:
    from metadata.fetch import FetchPolicy


@dataclass(frozen=True)
class ResponseOptions:
    now: datetime
    trusted: tuple[bytes, ...] = ()
    """The IdP's signing certificates (DER), from its metadata."""
    idp_entity_id: str | None = None
    sp_key_pem: bytes | None = None
    """The SP's private key, to decrypt an EncryptedAssertion."""
    request_id: str | None = None
    skew_seconds: int = 120
    is_replay: Callable[[str], bool] = never_seen
    """Asked once per verified assertion ID whether it was used before (RSP023); the test SP's
    answer also records it as used."""
    vendor_key: str | None = None
    no_trust_reason: str | None = response_signature.NO_TRUST_REASON
    """SIG026's message when nothing is trusted; None when a finding already says why (a refused
    metadata URL, an unreadable file): then there is no SIG026. Each surface may word its own."""
    no_trust_fix: str | None = None
    """SIG026's fix as this surface words it (an option, a field); None: the rule's generic fix."""


@dataclass(frozen=True)
class JudgedResponse:
    """One response of the input, parsed: verified (its trees and the facts read from them), or not."""

    label: str
    """How its findings name it: the input, or which of several responses."""
    verified: VerifiedResponse | None = None
    """The trees re-parsed from what was signed; None when nothing could be trusted (the findings say why)."""
    facts: ResponseFacts | None = None
    """Read from the verified trees only; None when not verified."""


@dataclass(frozen=True)
class ResponseInspection:
    """A SAML response input judged: every response found in it, the trust used, the findings."""

    source: str
    now: datetime
    found: int
    """Responses found in the input (a SAML-tracer export may hold several); 0 when none could be read."""
    responses: tuple[JudgedResponse, ...]
    """Those of them that parsed, in input order."""
    findings: tuple[Finding, ...]
    subjects_run: tuple[str, ...]
    trust: IdPTrust | None = None
    """The IdP's certificates, entity ID and product, when the inspection loaded them."""
    trust_source: str | None = None
    """Where the trust came from, as a report names it (a URL with any password hidden)."""
    trust_used: TrustSource | None = None
    """Which trust source was used (its kind and location); None when there was none."""


def _subjects(crm: CRMRecord | None) -> tuple[str, ...]:
    return ("input", "response-signature", "response") + (("claims",) if crm else ())


def inspect_response(
    data: bytes, source: str, *, now: datetime, crm: CRMRecord | None, metadata: bytes | str | None = None,
    metadata_source: str | None = None, sp_key_pem: bytes | None = None, request_id: str | None = None,
    skew_seconds: int = 120, policy: FetchPolicy | None = None, files: bool = True, record_dir: Path | None = None,
    no_trust_fix: str | None = None, metadata_given: str = response_signature.CLI_METADATA,
    uploaded: Uploaded | None = None,
) -> ResponseInspection:
    """The whole response check, as ``saml-validate response`` and the web app run it: the IdP's
    certificates from `metadata`, else from the trust on record (:func:`record_trust`: `uploaded`
    in the web app, then the record's own sources, its files relative to `record_dir` — None where
    no file of this machine may be opened), then every check. `metadata_given` and `no_trust_fix`
    word SIG026 for the surface: how it takes the IdP's metadata, and what to do there."""
    used: TrustSource | None = None
    if metadata is not None:
        shown = redact_url(metadata_source or (metadata if isinstance(metadata, str) else "uploaded"))
        used = TrustSource("metadata", shown)
        trust, problems = load_trust(metadata, crm, policy, files=files)
    else:
        used, trust, problems = record_trust(crm, record_dir, policy, uploaded=uploaded)
    found = [*problems, *(trust.findings if trust else ())]
    options = ResponseOptions(
        now=now, trusted=trust.certificates if trust else (), idp_entity_id=trust.entity_id if trust else None,
        sp_key_pem=sp_key_pem, request_id=request_id, skew_seconds=skew_seconds,
        vendor_key=trust.vendor_key if trust else None,
        no_trust_reason=None if problems else _no_trust_reason(crm, metadata_given),
        no_trust_fix=no_trust_fix,
    )
    judged = inspect_response_bytes(data, source, options, crm)
    return replace(judged, findings=tuple(folded(found)) + judged.findings, trust=trust,
                   trust_source=used.location if used else None, trust_used=used if trust else None)


def _no_trust_reason(crm: CRMRecord | None, given: str) -> str:
    """SIG026's words: which of the record's keys would have given trust, and why none did."""
    if crm is None:
        return response_signature.no_record_reason(given)
    if crm.idp.metadata_file or crm.idp.signing_certificates:
        # Only a record read from disk opens files beside it; an uploaded record names none here.
        return ("there is no trust source here: the CRM record's [idp] metadata_file and signing_certificates "
                "are read only beside a record file, and it sets no metadata_url; give the IdP's metadata "
                f"({given}) so that the signatures can be checked and the claims read")
    return response_signature.no_trust_reason(given)


def inspect_response_bytes(
    data: bytes, source: str, options: ResponseOptions, crm: CRMRecord | None = None
) -> ResponseInspection:
    """Judge every response in `data` (XML, base64, a form body or a SAML-tracer export)."""
    found = read_response_input(data)
    if isinstance(found, InputRefusal):
        return ResponseInspection(source, options.now, 0, (), (found.finding(source),), _subjects(crm))
    log = FindingLog()
    judged = []
    for number, item in enumerate(found, 1):
        label = source if len(found) == 1 else f"{source} (response {number} of {len(found)}: {item.where})"
        # Parsed and verified (which re-parses what was signed) in one hand-off to the parsing thread.
        parsed = in_parsing_thread(_parse_and_verify, item.xml, label, options, log)
        if parsed is not None:
            judged.append(_judged(*parsed, label, options, crm, log))
    return ResponseInspection(source, options.now, len(found), tuple(judged), log.frozen(), _subjects(crm))


def _parse_and_verify(xml: bytes, label: str, options: ResponseOptions, log: FindingLog
                      ) -> tuple[etree._ElementTree, VerifiedResponse | None] | None:
    """Runs on the parsing thread: the tree and, with trusted certificates, the verified response."""
    try:
        tree = parse_untrusted(xml, MESSAGE_LIMITS)
    except UnsafeXML as exc:  # a PDF or a ZIP is named as such, not by the parser's first complaint
        log.add(finding_for_unsafe_xml(exc, label, content=not_xml_kind(xml)))
        return None
    return tree, (_verify(tree, label, options, log) if options.trusted else None)


def inspect_response_tree(
    tree: etree._ElementTree, source: str, options: ResponseOptions, crm: CRMRecord | None = None
) -> ResponseInspection:
    """Judge one response already parsed with the one parser (the test SP's ACS: decoded and parsed once)."""
    log = FindingLog()
    judged = _judge(tree, source, options, crm, log)
    return ResponseInspection(source, options.now, 1, (judged,), log.frozen(), _subjects(crm))


def _judge(tree: etree._ElementTree, label: str, options: ResponseOptions, crm: CRMRecord | None,
           log: FindingLog) -> JudgedResponse:
    """Structure, then the signatures with the trusted certificates, then — from what was signed
    only — the protocol checks and the claims."""
    verified = _verify(tree, label, options, log) if options.trusted else None
    return _judged(tree, verified, label, options, crm, log)


def _judged(tree: etree._ElementTree, verified: VerifiedResponse | None, label: str, options: ResponseOptions,
            crm: CRMRecord | None, log: FindingLog) -> JudgedResponse:
    """The rest of :func:`_judge`, once the signatures were verified (`verified`: None when refused)."""
    if not options.trusted:
        problems = structure_problems(tree)
        log.extend(response_signature.structure_findings(problems, label))
        if not problems and options.no_trust_reason is not None:
            log.add(response_signature.no_trust_finding(label, options.no_trust_reason, options.no_trust_fix))
        return JudgedResponse(label)
    if verified is None:
        return JudgedResponse(label)
    log.extend(response_signature.verified_findings(verified, label))
    facts = read_facts(verified.response, verified.assertion, response_signed=verified.response_signed,
                       assertion_signed=verified.assertion_signed,
                       received=[t for t in (tree.getroot(), verified.decrypted) if t is not None])
    ctx = response.ResponseContext(
        facts=facts, now=options.now, crm=crm, idp_entity_id=options.idp_entity_id or (
            crm.idp.entity_id if crm else None),
        skew_seconds=options.skew_seconds, request_id=options.request_id,
        is_replay=options.is_replay, vendor_key=options.vendor_key,
    )
    log.extend(_located(response.check_response(ctx), label))
    if crm is not None:
        log.extend(_located(claims.check_claims(facts, crm, options.vendor_key), label))
    return JudgedResponse(label, verified, facts)


def _verify(tree: etree._ElementTree, label: str, options: ResponseOptions, log: FindingLog
            ) -> VerifiedResponse | None:
    """The verified response, or None with the findings that say why it was refused."""
    try:
        # The verifier checks the structure first and refuses with every problem it found.
        return verify_response(tree, options.trusted, sp_key_pem=options.sp_key_pem, allow_sha1=True)
    except ResponseError as exc:
        log.extend(response_signature.structure_findings(exc.problems, label) if exc.problems
                   else [response_signature.refusal_finding(exc, label)])
    except (SignatureError, DecryptionError) as exc:
        log.add(response_signature.refusal_finding(exc, label))
    except UnsafeXML as exc:  # the signed bytes, re-parsed, broke a limit
        log.add(finding_for_unsafe_xml(exc, label))
    return None


def _located(findings: list[Finding], source: str) -> list[Finding]:
    return [replace(f, where=f"{source}: {f.where}" if f.where else source) for f in findings]
