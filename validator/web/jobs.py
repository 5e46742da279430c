"""What the web app runs for a page or an API call: the same library calls as the command line,
fed with a :class:`~validator.web.inputs.Document` and a CRM record.

The metadata URL of a document, and the sign-in URL the discovery probe asks, are fetched with
the SSRF-safe fetcher and the app's :class:`FetchPolicy` (SECURITY.md §4).
"""

from __future__ import annotations

from datetime import datetime

from metadata.crm import CRMRecord
from metadata.fetch import FetchPolicy
from metadata.xml import MiB
from validator.discovery import Worksheet, build_worksheet, sign_in_url
from validator.framing import probe_framing
from validator.inspection import MetadataInspection, MetadataOptions, inspect_metadata, inspect_metadata_bytes
from validator.metadata_facts import metadata_report
from validator.report import Report
from validator.response_inspection import inspect_response
from validator.response_report import response_report

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


def check_response(response: Document, crm: CRMRecord | None, crm_source: str | None, *,
                   metadata: Document | None, request_id: str | None, now: datetime,
                   policy: FetchPolicy | None) -> Report:
    trust: bytes | str | None = None
    if metadata is not None:
        trust = metadata.url if metadata.url is not None else metadata.data
    inspection = inspect_response(
        response.data or b"", response.source, now=now, crm=crm, metadata=trust,
        metadata_source=metadata.source if metadata else None, request_id=request_id or None, policy=policy,
        files=False,  # a record uploaded here names URLs, never a file of this server
    )
    return response_report(inspection, crm_source=crm_source)


def discover(document: Document, crm: CRMRecord | None, crm_source: str | None, *, now: datetime,
             policy: FetchPolicy | None, probe: bool) -> Worksheet:
    inspection = inspect_document(document, crm, now=now, policy=policy)
    sso = sign_in_url(inspection)
    found = probe_framing(sso, policy) if probe and sso else None
    return build_worksheet(inspection, metadata_report(inspection, crm_source=crm_source), crm,
                           metadata_url=document.url, probe=found)
