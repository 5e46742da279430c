"""What the web app runs for a page or an API call: the same library calls as the command line,
fed with a :class:`~validator.web.inputs.Document` and a CRM record.

The metadata URL of a document, and the sign-in URL the discovery probe asks, are fetched with
the SSRF-safe fetcher and the app's :class:`FetchPolicy` (SECURITY.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from metadata.crm import CRMRecord
from metadata.fetch import FetchPolicy
from metadata.xml import MiB
from validator.discovery import Worksheet, probed_worksheet
from validator.inspection import MetadataInspection, MetadataOptions, inspect_metadata, inspect_metadata_bytes
from validator.metadata_facts import metadata_report
from validator.report import Report
from validator.response_inspection import inspect_response
from validator.response_report import response_report
from validator.trust import Uploaded

from .inputs import Document

METADATA_LIMIT = 5 * MiB
"""The largest metadata document the app takes (SECURITY.md §1)."""
RESPONSE_LIMIT = 1 * MiB
"""A pasted or uploaded SAML response (SECURITY.md §1: pasted XML)."""


def inspect_document(document: Document, crm: CRMRecord | None, *, now: datetime, policy: FetchPolicy | None
                     ) -> MetadataInspection:
    options = MetadataOptions(now=now, fetch_policy=policy, max_bytes=METADATA_LIMIT)
    if document.url is not None:
        return inspect_metadata(document.url, options, crm)
    return inspect_metadata_bytes(document.data or b"", document.source, options, crm)


def check_metadata(document: Document, crm: CRMRecord | None, crm_source: str | None, *, now: datetime,
                   policy: FetchPolicy | None) -> Report:
    """The report of a metadata document, as the pages and the API show it."""
    return metadata_report(inspect_document(document, crm, now=now, policy=policy), crm_source=crm_source)


@dataclass(frozen=True)
class Surface:
    """How a page or an API call takes the IdP's metadata, for SIG026's message and fix."""

    metadata_given: str
    no_trust_fix: str


@dataclass(frozen=True)
class OnRecord:
    """A biller of the CRM folder: its record's folder (the operator's files) and its newest upload."""

    folder: Path
    uploaded: Uploaded | None


FORM = Surface("the form's \"The IdP's metadata URL\" or \"its metadata file\" field",
               "Give the IdP's metadata in the form (its URL or its file), or choose a biller whose CRM record "
               "gives one; a partner's page (/partners/<biller-id>) also takes an upload of it.")
API = Surface("'metadata_xml' or 'metadata_url' in the request body",
              "Send the IdP's metadata as 'metadata_xml' or 'metadata_url', or name a 'biller' whose CRM record "
              "gives one.")


def check_response(response: Document, crm: CRMRecord | None, crm_source: str | None, *,
                   metadata: Document | None, request_id: str | None, now: datetime,
                   policy: FetchPolicy | None, surface: Surface = FORM, on_record: OnRecord | None = None
                   ) -> Report:
    """A response checked as the CLI checks it. With `on_record` (a biller of the CRM folder was
    chosen, not a record uploaded), the biller's trust is its test login's: metadata uploaded for
    it, then its record's files in the CRM folder, then its metadata URL."""
    trust: bytes | str | None = None
    if metadata is not None:
        trust = metadata.url if metadata.url is not None else metadata.data
    inspection = inspect_response(
        response.data or b"", response.source, now=now, crm=crm, metadata=trust,
        metadata_source=metadata.source if metadata else None, request_id=request_id or None, policy=policy,
        files=False,  # a metadata string is a URL, never a file of this server
        record_dir=on_record.folder if on_record else None, uploaded=on_record.uploaded if on_record else None,
        metadata_given=surface.metadata_given, no_trust_fix=surface.no_trust_fix,
    )
    return response_report(inspection, crm_source=crm_source)


def discover(document: Document, crm: CRMRecord | None, crm_source: str | None, *, now: datetime,
             policy: FetchPolicy | None, probe: bool) -> Worksheet:
    inspection = inspect_document(document, crm, now=now, policy=policy)
    return probed_worksheet(inspection, metadata_report(inspection, crm_source=crm_source), crm,
                            metadata_url=document.url, policy=(policy or FetchPolicy()) if probe else None)
