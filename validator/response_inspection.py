"""Response inspection: a SAML response (in any accepted form) in, one :class:`Report` out.

Order matters (SECURITY.md §2): structure first, then the signatures with the IdP's trusted
certificates only, then — from the trees re-parsed out of what was signed, and only from
them — every protocol check and every claim against the CRM record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from metadata.encryption import DecryptionError
from metadata.errors import MetadataError, UnsafeXML
from metadata.read import read_metadata
from metadata.response import ResponseError, structure_problems, verify_response
from metadata.signing import SignatureError
from metadata.xml import MESSAGE_LIMITS, metadata_limits, parse_untrusted
from validator.checks import claims, response, response_signature
from validator.checks.input import BAD_BASE64, NOT_A_RESPONSE_INPUT, finding_for_unsafe_xml
from validator.checks.keys import signing_keys
from validator.crm import CRMRecord
from validator.findings import Finding
from validator.report import Report
from validator.response_facts import read_facts
from validator.response_input import ResponseInputError, read_response_input
from validator.vendor import detect_vendor


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
                       assertion_signed=verified.assertion_signed, received=tree.getroot())
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
