"""Response inspection: a SAML response (in any accepted form) in, one frozen
:class:`ResponseInspection` out.

Order matters (SECURITY.md §2): structure first, then the signatures with the IdP's trusted
certificates only, then — from the trees re-parsed out of what was signed, and only from
them — every protocol check and every claim against the CRM record. A
:class:`~validator.report.Report` is assembled from the inspection only where it is shown
(:func:`validator.response_report.response_report`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lxml import etree

from metadata.certs import CertificateError, load_certificates
from metadata.crm import CRMRecord
from metadata.encryption import DecryptionError
from metadata.errors import CRMRecordError, MetadataError, UnsafeXML
from metadata.model import EntityDescriptor
from metadata.read import read_metadata
from metadata.response import ResponseError, VerifiedResponse, structure_problems, verify_response
from metadata.signing import SignatureError
from metadata.urls import redact_url
from metadata.xml import MESSAGE_LIMITS, in_parsing_thread, metadata_limits, parse_untrusted
from validator.checks import claims, response, response_signature
from validator.checks.crm_match import entity_id_finding
from validator.checks.input import NOT_METADATA, finding_for_unsafe_xml
from validator.checks.keys import signing_keys
from validator.checks.response import never_seen
from validator.findings import Finding, FindingLog, folded
from validator.json_value import Plain
from validator.nearmiss import uri_difference
from validator.response_facts import ResponseFacts, read_facts
from validator.response_input import InputRefusal, read_response_input
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
class IdPTrust:
    certificates: tuple[bytes, ...]
    entity_id: str | None
    vendor_key: str | None
    findings: tuple[Finding, ...] = ()
    """What loading the trust found: CRM001 when the record's entity ID near-misses the metadata's
    (that entity is used all the same, so the signatures and claims are still judged)."""


TrustKind = Literal["metadata", "metadata_file", "signing_certificates", "metadata_url"]


@dataclass(frozen=True)
class TrustSource:
    """Where the IdP's signing certificates came from: ``metadata`` given to the check
    (--metadata, a form), or the CRM record's [idp] `metadata_file`, `signing_certificates` or
    `metadata_url`, taken in that order (DESIGN.md, "The CRM record")."""

    kind: TrustKind
    location: str
    """The file(s) or the URL (any password hidden)."""

    def json(self) -> dict[str, Plain]:
        return {"trust_source": {"kind": self.kind, "location": self.location}}


class EntityMismatch(MetadataError):
    """The metadata holds no IdP entity the record names, nor one that near-misses it: `finding` is CRM001."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def trust_from_metadata(data: bytes, crm: CRMRecord | None, source: str = "the IdP metadata") -> IdPTrust:
    """The IdP's signing certificates and entity ID from its metadata; MetadataError if unusable
    (:class:`EntityMismatch` when the record names another entity)."""
    document = read_metadata(parse_untrusted(data, metadata_limits()))
    wanted = crm.idp.entity_id if crm else None
    entity = _idp_entity(document.idp_entities, wanted, source)
    idp = entity.idp
    assert idp is not None
    certs = tuple(c.der for k in signing_keys(idp.keys) for c in k.certificates if c.der)
    detection = detect_vendor(entity)
    vendor_key = detection.vendor.key if detection else None
    mismatch = () if wanted is None or wanted == entity.entity_id else (
        _entity_mismatch(wanted, entity, vendor_key, source),)
    return IdPTrust(certs, entity.entity_id, vendor_key, mismatch)


def _idp_entity(entities: Sequence[EntityDescriptor], wanted: str | None, source: str) -> EntityDescriptor:
    """The IdP entity the record names; else the one entity whose ID near-misses it (trailing slash,
    case, scheme). A sole entity that is another one altogether is CRM001 without trust."""
    exact = [e for e in entities if wanted is None or e.entity_id == wanted]
    if len(exact) == 1:
        return exact[0]
    if wanted is not None and not exact:
        near = [e for e in entities if uri_difference(wanted, e.entity_id)]
        if len(near) == 1:
            return near[0]
        if len(entities) == 1:
            raise EntityMismatch(_entity_mismatch(wanted, entities[0], None, source))
    raise MetadataError(f"the metadata holds {len(entities)} IdP entities"
                        f"{f', none named {wanted!r}' if wanted and not exact else ''}; one is needed")


def _entity_mismatch(wanted: str, entity: EntityDescriptor, vendor_key: str | None, source: str) -> Finding:
    element = "md:EntityDescriptor/@entityID"
    return entity_id_finding(wanted, entity.entity_id, vendor_key,
                             f"{source}, line {entity.line}: {element}" if entity.line else f"{source}: {element}")


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
        return trust_from_metadata(data, crm, where), []
    except EntityMismatch as exc:
        return None, [exc.finding]
    except UnsafeXML as exc:
        return None, [finding_for_unsafe_xml(exc, where)]
    except MetadataError as exc:
        return None, [NOT_METADATA.finding(str(exc), where=where)]


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
    no_trust_fix: str | None = None,
) -> ResponseInspection:
    """The whole response check, as ``saml-validate response`` and the web app run it: the IdP's
    certificates from `metadata`, else from the CRM record's trust sources (:func:`record_trust`;
    its files relative to `record_dir`), then every check."""
    used: TrustSource | None = None
    if metadata is not None:
        shown = redact_url(metadata_source or (metadata if isinstance(metadata, str) else "uploaded"))
        used = TrustSource("metadata", shown)
        trust, problems = load_trust(metadata, crm, policy, files=files)
    else:
        used, trust, problems = record_trust(crm, record_dir if files else None, policy)
    found = [*problems, *(trust.findings if trust else ())]
    options = ResponseOptions(
        now=now, trusted=trust.certificates if trust else (), idp_entity_id=trust.entity_id if trust else None,
        sp_key_pem=sp_key_pem, request_id=request_id, skew_seconds=skew_seconds,
        vendor_key=trust.vendor_key if trust else None,
        no_trust_reason=None if problems else _no_trust_reason(crm),
        no_trust_fix=no_trust_fix,
    )
    judged = inspect_response_bytes(data, source, options, crm)
    return replace(judged, findings=tuple(folded(found)) + judged.findings, trust=trust,
                   trust_source=used.location if used else None, trust_used=used if trust else None)


def _no_trust_reason(crm: CRMRecord | None) -> str:
    """SIG026's words: which of the record's keys would have given trust, and why none did."""
    if crm is None:
        return response_signature.NO_RECORD_REASON
    if crm.idp.metadata_file or crm.idp.signing_certificates:
        # Only a record read from disk opens files beside it; an uploaded record names none here.
        return ("there is no trust source here: the CRM record's [idp] metadata_file and signing_certificates "
                "are read only beside a record file, and it sets no metadata_url; give the IdP's metadata "
                "(--metadata FILE|URL) so that the signatures can be checked and the claims read")
    return response_signature.NO_TRUST_REASON


_MAX_PEM_BYTES = 64 * 1024


def record_trust(crm: CRMRecord | None, record_dir: Path | None, policy: FetchPolicy | None = None
                 ) -> tuple[TrustSource | None, IdPTrust | None, list[Finding]]:
    """The trust the CRM record gives, in DESIGN.md's order: ``[idp] metadata_file``, then
    ``signing_certificates`` (both relative to `record_dir`, the record's folder; skipped without
    one: a record uploaded to the web app never opens a server file), then ``metadata_url``
    through the SSRF-safe fetcher. The source, the trust (None when refused, with the findings
    that say why) — or three Nones when the record gives no trust at all. A certificate file
    that cannot be read as one is a :class:`CRMRecordError` naming the key and the file."""
    if crm is None:
        return None, None, []
    idp = crm.idp
    if idp.metadata_file and record_dir is not None:
        path = record_dir / idp.metadata_file
        trust, problems = load_trust(str(path), crm, policy, files=True)
        return TrustSource("metadata_file", str(path)), trust, problems
    if idp.signing_certificates and record_dir is not None:
        paths = [record_dir / name for name in idp.signing_certificates]
        return TrustSource("signing_certificates", ", ".join(map(str, paths))), pinned_trust(crm, paths), []
    if idp.metadata_url:
        trust, problems = load_trust(idp.metadata_url, crm, policy, files=False)
        return TrustSource("metadata_url", redact_url(idp.metadata_url)), trust, problems
    return None, None, []


def pinned_trust(crm: CRMRecord, paths: Sequence[Path]) -> IdPTrust:
    """The record's ``signing_certificates``: each PEM file read (capped) and parsed, duplicates
    dropped. The entity ID and vendor are the record's (nothing else names them)."""
    certificates: dict[bytes, None] = {}
    for path in paths:
        try:
            with path.open("rb") as handle:
                data = handle.read(_MAX_PEM_BYTES + 1)
            if len(data) > _MAX_PEM_BYTES:
                raise CertificateError(f"the file is over {_MAX_PEM_BYTES // 1024} KiB")
            certificates.update(dict.fromkeys(load_certificates(data)))
        except (OSError, CertificateError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CRMRecordError(f"{crm.biller.id} record", [
                ("idp.signing_certificates", f"{str(path)!r} is not a readable certificate: {reason}")]) from exc
    vendor = crm.idp.vendor if crm.idp.vendor not in (None, "other") else None
    return IdPTrust(tuple(certificates), crm.idp.entity_id, vendor)


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
    except UnsafeXML as exc:
        log.add(finding_for_unsafe_xml(exc, label))
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
