"""Where a swept partner's IdP metadata comes from: the trust sources of the live test login, in
its order (:func:`validator.trust.record_trust`, DESIGN.md's "uploaded, metadata_file,
signing_certificates, metadata_url").

* **uploaded**: the newest metadata uploaded for the biller in the web app
  (:mod:`validator.uploaded_metadata`, read from the sweep's store), judged as it is, no fetch;
* the record's ``[idp] metadata_file``, beside the record, read (capped as
  :func:`validator.trust.load_trust` reads it) and judged the same way; one that cannot be read
  is XML008 naming the file, as the command line says it;
* its ``signing_certificates``: no metadata at all, so nothing to judge, compare or keep; each
  certificate is checked for expiry with the metadata's KEY rules
  (:func:`validator.checks.keys.certificate_findings`), and a file that is not a certificate is
  the partner's CRM201 naming ``idp.signing_certificates`` and the file;
* its ``metadata_url``, fetched with the SSRF-safe fetcher.

A document is judged exactly as ``saml-validate metadata SOURCE --crm RECORD`` judges it, and is
then compared, kept and read for its signer as a fetched one is (:class:`Fetched`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from metadata.certs import CertificateError, CertificateFacts, certificate_facts
from metadata.crm import CRMRecord
from metadata.errors import CRMRecordError
from metadata.urls import redact_url
from validator.checks.input import NOT_METADATA
from validator.checks.keys import certificate_findings
from validator.checks.sweep import (
    NO_METADATA_URL,
    RECORD_UNREADABLE,
    Snapshot,
    SnapshotCertificate,
)
from validator.findings import Finding, Severity
from validator.inspection import MetadataInspection, MetadataOptions, inspect_fetched, inspect_metadata_bytes
from validator.metadata_fetch import fetch_metadata
from validator.sweep_history import snapshot_of
from validator.trust import TrustSource, Uploaded, pinned_trust

PINNED_KEY = "idp.signing_certificates"


@dataclass(frozen=True)
class Fetched:
    """The partner's metadata as this sweep found it: fetched, uploaded, or read from its file."""

    inspection: MetadataInspection
    body: bytes | None
    """None when the fetch failed or the file could not be read."""
    snapshot: Snapshot | None
    """None when no single entity could be read."""

    @property
    def errors(self) -> int:
        return sum(1 for f in self.inspection.findings if f.severity is Severity.ERROR)


@dataclass(frozen=True)
class Pinned:
    """The record's signing certificates: no metadata, only the certificates and their findings."""

    snapshot: Snapshot
    """The record's entity ID and the distinct certificates that could be read; no SSO endpoint."""
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Found:
    """What is on record for the partner: the source (None when nothing is) and what it gave."""

    source: TrustSource | None
    fetched: Fetched | None = None
    pinned: Pinned | None = None

    @property
    def where(self) -> str:
        """How findings about it name it: the uploaded version, the file, the URL (no password)."""
        return self.source.location if self.source is not None else "metadata"

    @property
    def snapshot(self) -> Snapshot | None:
        """What is known now of the partner's entity and certificates."""
        if self.pinned is not None:
            return self.pinned.snapshot
        return self.fetched.snapshot if self.fetched is not None else None


def source_findings(found: Found) -> list[Finding]:
    """What the source itself says: CRM202 when there is none; the signing certificates' findings."""
    if found.source is None:
        return [NO_METADATA_URL.finding(
            "nothing on record gives the IdP's metadata or certificates: no metadata was uploaded for the biller, "
            "and the record has no idp.metadata_file, idp.signing_certificates or idp.metadata_url", where="idp")]
    return list(found.pinned.findings) if found.pinned is not None else []


def find_metadata(record: CRMRecord, record_dir: Path, options: MetadataOptions, name: str,
                  uploaded: Callable[[], Uploaded | None]) -> Found:
    """The first source on record, in the live test login's order, and what it gave. `name` is the
    record's file (the findings about it name it); `uploaded` asks the store for an upload."""
    latest = uploaded()
    if latest is not None:
        judged = judge_document(latest.data, latest.label, replace(options, entity_id=latest.entity_id), record)
        return Found(TrustSource("uploaded", latest.label), judged)
    idp = record.idp
    if idp.metadata_file:
        path = record_dir / idp.metadata_file
        return Found(TrustSource("metadata_file", str(path)), read_and_judge(path, options, record))
    if idp.signing_certificates:
        paths = [record_dir / file for file in idp.signing_certificates]
        pinned = pinned_certificates(record, paths, options, name)
        return Found(TrustSource("signing_certificates", ", ".join(map(str, paths))), pinned=pinned)
    if idp.metadata_url:
        return Found(TrustSource("metadata_url", redact_url(idp.metadata_url)),
                     fetch_and_inspect(idp.metadata_url, options, record))
    return Found(None)


def _fetched(inspection: MetadataInspection, body: bytes | None) -> Fetched:
    entity = inspection.entity if body is not None else None
    return Fetched(inspection, body, snapshot_of(entity) if entity is not None else None)


def judge_document(data: bytes, label: str, options: MetadataOptions, record: CRMRecord) -> Fetched:
    """A document at hand (uploaded, read from a file) judged as ``saml-validate metadata`` judges it."""
    return _fetched(inspect_metadata_bytes(data, label, options, record), data)


def read_and_judge(path: Path, options: MetadataOptions, record: CRMRecord) -> Fetched:
    """The record's metadata_file read (one byte past the cap: the parser says it is too large) and
    judged; one that cannot be read is XML008 naming it, as the command line says it."""
    where = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(options.max_bytes + 1)
    except OSError as exc:
        unread = NOT_METADATA.finding(f"the metadata file cannot be read: {exc.strerror or exc}", where=where)
        return Fetched(MetadataInspection(where, where, options.now, options.warn_days, (unread,), ("input",)),
                       None, None)
    return judge_document(data, where, options, record)


def fetch_and_inspect(url: str, options: MetadataOptions, record: CRMRecord) -> Fetched:
    """Fetch `url` and judge it exactly as ``saml-validate metadata URL --crm RECORD`` does."""
    fetched = fetch_metadata(url, options.fetch_policy, options.max_bytes)
    return _fetched(inspect_fetched(url, fetched, options, record), fetched.body)


def pinned_certificates(record: CRMRecord, paths: Sequence[Path], options: MetadataOptions, name: str) -> Pinned:
    """Each file of the record's signing_certificates read as the test login reads it
    (:func:`validator.trust.pinned_trust`) and each distinct certificate judged for its dates; a
    file that is not a certificate is CRM201 naming the key and the file, and the others are judged."""
    findings: list[Finding] = []
    certificates: dict[str, CertificateFacts] = {}
    for path in paths:
        read, problems = _read_pinned(record, path)
        findings += [RECORD_UNREADABLE.finding(f"{key}: {why}", where=f"{name}: {key}") for key, why in problems]
        for facts in read:
            if facts.sha256 not in certificates:
                certificates[facts.sha256] = facts
                findings += certificate_findings(facts, options.now, options.warn_days, str(path))
    snapshot = Snapshot(record.idp.entity_id, (), tuple(
        SnapshotCertificate(c.sha256, c.subject, c.not_before, c.not_after) for c in certificates.values()))
    return Pinned(snapshot, tuple(findings))


def _read_pinned(record: CRMRecord, path: Path) -> tuple[list[CertificateFacts], list[tuple[str, str]]]:
    """The certificates of one file, or the problems (key path, message) that say why there are none."""
    try:
        return [certificate_facts(der) for der in pinned_trust(record, [path]).certificates], []
    except CRMRecordError as exc:
        return [], exc.problems
    except CertificateError as exc:  # read as a certificate, but its key or dates cannot be
        return [], [(PINNED_KEY, f"{str(path)!r} is not a readable certificate: {exc}")]
