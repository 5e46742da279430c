"""Trust: where the IdP's signing certificates come from, for a response check.

The metadata given to the check (``--metadata``, a form), else what is on record for the biller
(:func:`record_trust`): the newest metadata uploaded in the web app
(:mod:`validator.uploaded_metadata`), then the CRM record's ``[idp]`` ``metadata_file``,
``signing_certificates`` or ``metadata_url``, in DESIGN.md's order. A URL goes through the
SSRF-safe fetcher; a refused one is its NET finding, a document that is not metadata XML008, a
near-missed entity ID CRM001.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from metadata.certs import CertificateError, load_certificates
from metadata.crm import CRMRecord
from metadata.errors import CRMRecordError, MetadataError, UnsafeXML
from metadata.model import EntityDescriptor
from metadata.read import read_metadata
from metadata.sniff import not_xml_kind
from metadata.urls import redact_url
from metadata.xml import metadata_limits, parse_untrusted
from validator.checks.crm_match import entity_id_finding
from validator.checks.input import NOT_METADATA, finding_for_unsafe_xml
from validator.checks.keys import signing_keys
from validator.findings import Finding
from validator.json_value import Plain
from validator.nearmiss import uri_difference
from validator.vendor import detect_vendor

if TYPE_CHECKING:
    from metadata.fetch import FetchPolicy

@dataclass(frozen=True)
class IdPTrust:
    certificates: tuple[bytes, ...]
    entity_id: str | None
    vendor_key: str | None
    findings: tuple[Finding, ...] = ()
    """What loading the trust found: CRM001 when the record's entity ID near-misses the metadata's
    (that entity is used all the same, so the signatures and claims are still judged)."""


TrustKind = Literal["metadata", "uploaded", "metadata_file", "signing_certificates", "metadata_url"]


@dataclass(frozen=True)
class TrustSource:
    """Where the IdP's signing certificates came from: ``metadata`` given to the check
    (--metadata, a form), else ``uploaded`` in the web app, else the CRM record's [idp]
    `metadata_file`, `signing_certificates` or `metadata_url`, taken in that order (DESIGN.md,
    "The CRM record")."""

    kind: TrustKind
    location: str
    """The file(s), the URL (any password hidden) or the uploaded version (who, when)."""

    def json(self) -> dict[str, Plain]:
        return {"trust_source": {"kind": self.kind, "location": self.location}}


class EntityMismatch(MetadataError):
    """The metadata holds no IdP entity the record names, nor one that near-misses it: `finding` is CRM001."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def trust_from_metadata(data: bytes, crm: CRMRecord | None, source: str = "the IdP metadata", *,
                        chosen: str | None = None) -> IdPTrust:
    """The IdP's signing certificates and entity ID from its metadata; MetadataError if unusable
    (:class:`EntityMismatch` when the record names another entity). `chosen` is the IdP entity to
    use when the document holds several (an uploader's choice); the record's entity ID is still
    compared with it (CRM001)."""
    document = read_metadata(parse_untrusted(data, metadata_limits()))
    wanted = crm.idp.entity_id if crm else None
    entity = _idp_entity(document.idp_entities, chosen or wanted, source)
    idp = entity.idp
    assert idp is not None
    certs = tuple(c.der for k in signing_keys(idp.keys) for c in k.certificates if c.der)
    detection = detect_vendor(entity)
    vendor_key = detection.vendor.key if detection else None
    mismatch = () if wanted is None or wanted == entity.entity_id else (
        _entity_mismatch(wanted, entity, vendor_key, source),)
    return IdPTrust(certs, entity.entity_id, vendor_key, mismatch)


def idp_entity_ids(data: bytes) -> list[str]:
    """The entity IDs of the IdPs a metadata document describes, in document order;
    MetadataError (UnsafeXML among them) when it is not safe, well-formed SAML metadata."""
    return [entity.entity_id for entity in read_metadata(parse_untrusted(data, metadata_limits())).idp_entities]


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
    files: bool = True, source: str | None = None, chosen: str | None = None,
) -> tuple[IdPTrust | None, list[Finding]]:
    """The IdP's certificates from its metadata — `metadata` is the document itself (bytes), a URL,
    or (only when `files`: the command line) a file path — or the findings that say why there
    are none. Without `files` every string goes to the SSRF-safe fetcher, which refuses
    anything but a URL: a CRM record uploaded to the web app never opens a server file. `source`
    names the document in the findings (default: the URL or path; "the IdP metadata" for bytes)."""
    if metadata is None:
        return None, []
    from validator.inspection import is_url

    where = source or (redact_url(metadata) if isinstance(metadata, str) else "the IdP metadata")
    data = b""
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
        return trust_from_metadata(data, crm, where, chosen=chosen), []
    except EntityMismatch as exc:
        return None, [exc.finding]
    except UnsafeXML as exc:  # a PDF or a ZIP is named as such, not by the parser's first complaint
        return None, [finding_for_unsafe_xml(exc, where, content=not_xml_kind(data))]
    except MetadataError as exc:
        return None, [NOT_METADATA.finding(str(exc), where=where)]


_MAX_PEM_BYTES = 64 * 1024


UrlLoader = Callable[[str], bytes]
"""Fetches a metadata URL (FetchError when refused or failed); the web app's tests serve their own."""


@dataclass(frozen=True)
class Uploaded:
    """The newest metadata uploaded for the biller in the web app: its document, the entity chosen
    in it, and how reports name it (who uploaded it, when)."""

    data: bytes
    entity_id: str
    label: str


def record_trust(crm: CRMRecord | None, record_dir: Path | None, policy: FetchPolicy | None = None, *,
                 uploaded: Uploaded | None = None, load_url: UrlLoader | None = None,
                 ) -> tuple[TrustSource | None, IdPTrust | None, list[Finding]]:
    """The trust on record for the biller, in DESIGN.md's order: metadata `uploaded` in the web
    app, then the record's ``[idp] metadata_file``, then ``signing_certificates`` (both relative
    to `record_dir`, the record's folder; skipped without one: a record uploaded to the web app
    never opens a server file), then ``metadata_url`` through `load_url` (default: the SSRF-safe
    fetcher under `policy`). The source, the trust (None when refused, with the findings that say
    why) — or three Nones when nothing gives trust. A certificate file that cannot be read as one
    is a :class:`CRMRecordError` naming the key and the file."""
    if uploaded is not None:
        trust, problems = load_trust(uploaded.data, crm, source=uploaded.label, chosen=uploaded.entity_id)
        return TrustSource("uploaded", uploaded.label), trust, problems
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
        source = TrustSource("metadata_url", redact_url(idp.metadata_url))
        if load_url is None:
            trust, problems = load_trust(idp.metadata_url, crm, policy, files=False)
        else:
            trust, problems = _loaded_trust(load_url, idp.metadata_url, crm, source.location)
        return source, trust, problems
    return None, None, []


def _loaded_trust(load_url: UrlLoader, url: str, crm: CRMRecord, where: str) -> tuple[IdPTrust | None, list[Finding]]:
    from metadata.fetch import FetchError
    from validator.checks.fetching import finding_for_fetch_error

    try:
        data = load_url(url)
    except FetchError as exc:
        return None, [finding_for_fetch_error(exc)]
    except MetadataError as exc:
        return None, [NOT_METADATA.finding(str(exc), where=where)]
    return load_trust(data, crm, source=where)


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
