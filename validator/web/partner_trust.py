"""A partner's IdP trust and metadata in the web app: what the test login, the go-live report and
the partner's page use, taken from the same sources as the command line and the sweep.

In order (:func:`validator.trust.record_trust`): the newest metadata uploaded for the biller in
the app (:mod:`validator.uploaded_metadata`), then the record's ``[idp] metadata_file`` and
``signing_certificates`` (relative to the CRM folder: the operator's files), then
``metadata_url`` through ``state.metadata_loader`` (the SSRF-safe fetcher; tests serve their own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from metadata.crm import CRMRecord
from metadata.errors import CRMRecordError, MetadataError
from metadata.urls import redact_url
from metadata.xml import metadata_limits
from validator import uploaded_metadata
from validator.findings import Finding
from validator.trust import IdPTrust, TrustSource, Uploaded, record_trust

from .state import Refusal, WebState


def uploaded(state: WebState, biller_id: str) -> Uploaded | None:
    """The newest uploaded metadata of the biller as a trust input, or None when none was uploaded."""
    return uploaded_metadata.latest_upload(state.store, biller_id)


def partner_trust(record: CRMRecord, state: WebState, checked: CRMRecord | None = None
                  ) -> tuple[TrustSource | None, IdPTrust | None, list[Finding]]:
    """The biller's trust: the source, the certificates (None when refused) and the findings that
    say why (NET, XML008, CRM001); three Nones when nothing gives trust. `checked` is the record
    the response is judged against (the test SP's ACS in place of the portal's). :class:`Refusal`
    when a ``signing_certificates`` file is not a certificate (the message names the key)."""
    try:
        return record_trust(checked or record, state.crm_folder, uploaded=uploaded(state, record.biller.id),
                            load_url=lambda _url: state.metadata_loader(record))
    except CRMRecordError as exc:
        raise Refusal(400, "The CRM record cannot be used", f"The record of {record.biller.id!r}: {exc}") from None


@dataclass(frozen=True)
class PartnerMetadata:
    """The metadata document on record for a biller, and where it came from."""

    source: TrustSource
    data: bytes


class NoMetadata(Exception):
    """Nothing on record gives a metadata document; `reason` says what there is instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def partner_metadata(record: CRMRecord, state: WebState) -> PartnerMetadata:
    """The biller's metadata document, from the first source that has one (signing certificates
    alone are no document); :class:`NoMetadata` when none does; FetchError or MetadataError when
    the source fails."""
    latest = uploaded(state, record.biller.id)
    if latest is not None:
        return PartnerMetadata(TrustSource("uploaded", latest.label), latest.data)
    idp = record.idp
    if idp.metadata_file:
        path = state.crm_folder / idp.metadata_file
        return PartnerMetadata(TrustSource("metadata_file", str(path)), _read_file(path))
    if idp.signing_certificates:
        raise NoMetadata("the record gives the IdP's signing certificates ([idp] signing_certificates), not its "
                         "metadata")
    if idp.metadata_url:
        return PartnerMetadata(TrustSource("metadata_url", redact_url(idp.metadata_url)), state.metadata_loader(record))
    raise NoMetadata("the record names no metadata ([idp] metadata_url or metadata_file), and none was uploaded")


def _read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:  # one byte past the cap: the parser says it is too large
            return handle.read(metadata_limits().max_bytes + 1)
    except OSError as exc:
        raise MetadataError(f"the record's metadata_file {path.name!r} cannot be read: {exc.strerror or exc}") from None

