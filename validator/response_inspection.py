"""Response inspection: a SAML response (in any accepted form) in, one :class:`Report` out.

Order matters (SECURITY.md §2): structure first, then the signatures with the IdP's trusted
certificates only, then — from the trees re-parsed out of what was signed, and only from
them — every protocol check and every claim against the CRM record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metadata.certs import fingerprint
from metadata.crm import CRMRecord
from metadata.encryption import DecryptionError
from metadata.errors import MetadataError, UnsafeXML
from metadata.read import read_metadata
from metadata.response import ResponseError, structure_problems, verify_response
from metadata.signing import SignatureError
from metadata.urls import redact_url
from metadata.xml import MESSAGE_LIMITS, metadata_limits, parse_untrusted
from validator.checks import claims, response, response_signature
from validator.checks.input import BAD_BASE64, NOT_A_RESPONSE_INPUT, NOT_METADATA, finding_for_unsafe_xml
from validator.checks.keys import signing_keys
from validator.findings import Finding
from validator.report import Report
from validator.response_facts import read_facts
from validator.response_input import ResponseInputError, read_response_input
from validator.vendor import detect_vendor

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
    seen_assertion_ids: frozenset[str] = frozenset()
    vendor_key: str | None = None


@dataclass(frozen=True)
class IdPTrust:
    certificates: tuple[bytes, ...]
    entity_id: str | None
    vendor_key: str | None


def trust_from_metadata(data: bytes, crm: CRMRecord | None) -> IdPTrust:
    """The IdP's signing certificates and entity ID from its metadata; MetadataError if unusable."""
    document = read_metadata(parse_untrusted(data, metadata_limits()))
    wanted = crm.idp.entity_id if crm else None
    candidates = [e for e in document.idp_entities if wanted is None or e.entity_id == wanted]
    if len(candidates) != 1:
        raise MetadataError(f"the metadata holds {len(document.idp_entities)} IdP entities"
                            f"{f', none named {wanted!r}' if wanted and not candidates else ''}; one is needed")
    entity = candidates[0]
    idp = entity.idp
    assert idp is not None
    certs = tuple(c.der for k in signing_keys(idp.keys) for c in k.certificates if c.der)
    detection = detect_vendor(entity)
    return IdPTrust(certs, entity.entity_id, detection.vendor.key if detection else None)


def load_trust(
    metadata: bytes | str | None, crm: CRMRecord | None, policy: FetchPolicy | None = None, *,
    files: bool = True,
) -> tuple[IdPTrust | None, list[Finding]]:
    """The IdP's certificates from its metadata — `metadata` is the document itself (bytes), a URL,
    or (only when `files`: the command line) a file path — or the findings that say why there
    are none. Without `files` every string goes to the SSRF-safe fetcher, which refuses
    anything but a URL: a CRM record uploaded to the web app never opens a server file."""
    if metadata is None:
        return None, []
    from validator.inspection import is_url

    where = redact_url(metadata) if isinstance(metadata, str) else "the IdP metadata"
    try:
        if isinstance(metadata, bytes):
            data = metadata
        elif not files or is_url(metadata):
            from metadata.fetch import FetchError, FetchPolicy, fetch
            from validator.checks.fetching import finding_for_fetch_error

            try:
                data = fetch(metadata, policy or FetchPolicy()).body
            except FetchError as exc:
                return None, [finding_for_fetch_error(exc)]
        else:
            try:
                with Path(metadata).open("rb") as handle:  # one byte past the cap: the parser says it is too large
                    data = handle.read(metadata_limits().max_bytes + 1)
            except OSError as exc:
                return None, [NOT_METADATA.finding(f"the metadata file cannot be read: {exc.strerror or exc}",
                                                   where=where)]
        return trust_from_metadata(data, crm), []
    except UnsafeXML as exc:
        return None, [finding_for_unsafe_xml(exc, where)]
    except MetadataError as exc:
        return None, [NOT_METADATA.finding(str(exc), where=where)]


def response_report(
    data: bytes, source: str, *, now: datetime, crm: CRMRecord | None, crm_source: str | None = None,
    metadata: bytes | str | None = None, metadata_source: str | None = None, sp_key_pem: bytes | None = None,
    request_id: str | None = None, skew_seconds: int = 120, policy: FetchPolicy | None = None,
    files: bool = True,
) -> Report:
    """The whole response check, as ``saml-validate response`` and the web app run it: the IdP's
    certificates from `metadata` (default: the CRM record's metadata URL), then every check."""
    inputs = {"response": source, **({"crm": crm_source} if crm_source else {})}
    report = Report(subject="response", inputs=inputs, clock=now,
                    subjects_run=("input", "response-signature", "response") + (("claims",) if crm else ()))
    if metadata is None and crm is not None and crm.idp.metadata_url:
        metadata = crm.idp.metadata_url
    if metadata is not None:
        shown = metadata_source or (metadata if isinstance(metadata, str) else "uploaded")
        report.inputs["metadata"] = redact_url(shown)
    trust, problems = load_trust(metadata, crm, policy, files=files)
    report.extend(problems)
    options = ResponseOptions(
        now=now, trusted=trust.certificates if trust else (), idp_entity_id=trust.entity_id if trust else None,
        sp_key_pem=sp_key_pem, request_id=request_id, skew_seconds=skew_seconds,
        vendor_key=trust.vendor_key if trust else None,
    )
    inspect_response_bytes(data, source, options, crm, report)
    return report


def inspect_response_bytes(
    data: bytes, source: str, options: ResponseOptions, crm: CRMRecord | None, report: Report
) -> None:
    try:
        found = read_response_input(data)
    except ResponseInputError as exc:
        rule = {"XML010": BAD_BASE64, "XML009": NOT_A_RESPONSE_INPUT}.get(exc.code)
        report.findings.append(rule.finding(exc.message, where=source) if rule else finding_for_unsafe_xml(
            UnsafeXML({"XML001": "empty", "XML004": "too-large"}.get(exc.code, "malformed"), exc.message), source))
        return
    responses: list[dict[str, Any]] = []
    for number, item in enumerate(found, 1):
        label = source if len(found) == 1 else f"{source} (response {number} of {len(found)}: {item.where})"
        facts = _inspect_one(item.xml, label, options, crm, report)
        if facts is not None:
            responses.append(facts)
    report.facts["responses" if len(found) > 1 else "response"] = responses if len(found) > 1 else (
        responses[0] if responses else {})


def _inspect_one(
    xml: bytes, source: str, options: ResponseOptions, crm: CRMRecord | None, report: Report
) -> dict[str, Any] | None:
    try:
        tree = parse_untrusted(xml, MESSAGE_LIMITS)
    except UnsafeXML as exc:
        report.findings.append(finding_for_unsafe_xml(exc, source))
        return None
    if not options.trusted:
        problems = structure_problems(tree)
        report.extend(response_signature.structure_findings(problems, source))
        if not problems:
            report.findings.append(response_signature.no_trust_finding(
                source, "no IdP metadata was given, so the signatures cannot be checked and no claim is read"))
        return {"verified": False}
    try:
        # The verifier checks the structure first and refuses with every problem it found.
        verified = verify_response(tree, options.trusted, sp_key_pem=options.sp_key_pem, allow_sha1=True)
    except ResponseError as exc:
        report.extend(response_signature.structure_findings(exc.problems, source) if exc.problems
                      else [response_signature.refusal_finding(exc, source)])
        return {"verified": False}
    except (SignatureError, DecryptionError) as exc:
        report.findings.append(response_signature.refusal_finding(exc, source))
        return {"verified": False}
    except UnsafeXML as exc:  # the signed bytes, re-parsed, broke a limit
        report.findings.append(finding_for_unsafe_xml(exc, source))
        return {"verified": False}
    report.extend(response_signature.verified_findings(verified, source))
    facts = read_facts(verified.response, verified.assertion, response_signed=verified.response_signed,
                       assertion_signed=verified.assertion_signed,
                       received=[t for t in (tree.getroot(), verified.decrypted) if t is not None])
    ctx = response.ResponseContext(
        facts=facts, now=options.now, crm=crm, idp_entity_id=options.idp_entity_id or (
            crm.idp.entity_id if crm else None),
        skew_seconds=options.skew_seconds, request_id=options.request_id,
        seen_assertion_ids=options.seen_assertion_ids, vendor_key=options.vendor_key,
    )
    report.extend(_located(response.check_response(ctx), source))
    if crm is not None:
        report.extend(_located(claims.check_claims(facts, crm, options.vendor_key), source))
    return {
        "verified": True,
        "signed": [s.element for s in verified.signatures],
        "signed_by": [fingerprint(s.certificate) for s in verified.signatures],
        "encrypted": verified.encrypted,
        "issuer": facts.issuer,
        "assertion_id": facts.assertion_id,
        "nameid": facts.nameid,
        "nameid_format": facts.nameid_format,
        "in_response_to": facts.in_response_to,
        "claims": {a.name: list(a.values) for a in facts.attributes},
    }


def _located(findings: list[Finding], source: str) -> list[Finding]:
    return [replace(f, where=f"{source}: {f.where}" if f.where else source) for f in findings]
