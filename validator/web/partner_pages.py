"""A partner's page: its record, where the IdP's trust comes from, its recent test logins, and the
IdP metadata uploaded for it.

==========================================  ===============================================
``/partners/<biller-id>``                   GET: the page
``/partners/<biller-id>/metadata``          POST: upload or paste the IdP's metadata
``/partners/<biller-id>/metadata/choose``   POST: which IdP of a document with several
``/partners/<biller-id>/metadata/<n>``      GET: version n checked against the record (a report)
==========================================  ===============================================

An uploaded document is kept only once it has been checked: safe XML, SAML metadata, one IdP
entity chosen (the uploader is asked when there are several), and signing certificates the test
login can trust. Until then the last good version stays in use and nothing is written; a
document refused says why, and one over 5 MiB is a 413. A kept document is the next version
(:mod:`validator.uploaded_metadata`): none is ever replaced.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import Blueprint, Response, redirect, render_template, request

from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.store import StoreUnavailable
from validator import uploaded_metadata
from validator.discovery import setup_hints
from validator.nearmiss import uri_difference
from validator.trust import idp_entity_ids, load_trust
from validator.uploaded_metadata import MetadataVersion, Origin

from . import attempts, jobs
from .access import allow, biller_read, biller_write, current
from .csrf import csrf_token
from .inputs import Document, InputError, InputTooLarge, document_from_form
from .state import Refusal, error_page, partner_record, web, with_dev_banner
from .trail import note

blueprint = Blueprint("partner_pages", __name__, template_folder="templates")

CHOICES_NS, CHOICES_TTL = "idp-metadata-choices", 3600
"""A checked document with several IdPs, waiting for the uploader to say which (not yet kept)."""
MAX_UPLOADER = 200


def _html(template: str, status: int = 200, **context: object) -> Response:
    return Response(with_dev_banner(render_template(template, **context)), status=status, mimetype="text/html")


@dataclass(frozen=True)
class TrustPlan:
    """Which source the next test login takes its trust from, as the page says it (nothing fetched)."""

    kind: str
    detail: str


def trust_plan(record: CRMRecord, latest: MetadataVersion | None) -> TrustPlan | None:
    """The source :func:`validator.trust.record_trust` will take, in its order; None: no source."""
    idp = record.idp
    if latest is not None:
        return TrustPlan("metadata uploaded here", f"version {latest.number}, by {latest.uploaded_by}, "
                         f"{latest.uploaded_at}")
    if idp.metadata_file:
        return TrustPlan("the record's metadata_file", idp.metadata_file)
    if idp.signing_certificates:
        return TrustPlan("the record's signing_certificates", ", ".join(idp.signing_certificates))
    if idp.metadata_url:
        return TrustPlan("the record's metadata_url", idp.metadata_url)
    return None


def partner_page(biller_id: str, *, status: int = 200, error: str | None = None, kept: int | None = None
                 ) -> Response:
    record = partner_record(biller_id)
    state = web()
    versions = uploaded_metadata.versions(state.store, biller_id)
    return _html("partner.html", status, record=record, biller_id=biller_id, versions=versions,
                 plan=trust_plan(record, versions[0] if versions else None),
                 attempts=attempts.recent(state.store, biller_id, state.clock()),
                 no_response_minutes=int(attempts.NO_RESPONSE_AFTER.total_seconds() // 60),
                 csrf=csrf_token(), error=error, kept=kept, max_mib=jobs.METADATA_LIMIT // (1024 * 1024),
                 hints=setup_hints(record.idp.vendor, record), test_sp_acs=state.acs_url)


def _answered(view: Callable[[str], Response]) -> Callable[[str], Response]:
    """The one way these views answer what stops them: a document not kept (400, or 413 when too
    large) on the partner's page, a refusal on its page, the store down as a 503."""
    @wraps(view)
    def answered(biller_id: str, **args: object) -> Response:
        try:
            return view(biller_id, **args)
        except (InputTooLarge, _TooLarge) as exc:
            return _refused(biller_id, str(exc), status=413)
        except (InputError, _NotKept) as exc:
            return _refused(biller_id, str(exc))
        except Refusal as refusal:
            return refusal.page()
        except StoreUnavailable as exc:
            return error_page(503, "Storage unavailable", str(exc))
    return answered


@blueprint.get("/partners/<biller_id>")
@allow(biller_read())
@_answered
def partner(biller_id: str) -> Response:
    kept = request.args.get("kept", "")
    return partner_page(biller_id, kept=int(kept) if kept.isdigit() else None)


@blueprint.post("/partners/<biller_id>/metadata")
@allow(biller_write())
@_answered
def upload_metadata(biller_id: str) -> Response:
    record = partner_record(biller_id)
    uploader = _uploader()
    document = document_from_form(request.form, request.files, "metadata", what="IdP metadata",
                                  limit=jobs.METADATA_LIMIT)
    assert document is not None and document.data is not None  # required; no URL field on this form
    entities = _idp_entities(document.data)
    if len(entities) > 1:
        return _ask_which(record, document, entities, uploader)
    return _keep(record, document.data, entities[0], uploader, _origin(document), _filename(document))


@blueprint.post("/partners/<biller_id>/metadata/choose")
@allow(biller_write())
@_answered
def choose_entity(biller_id: str) -> Response:
    record = partner_record(biller_id)
    token = request.form.get("choice", "")
    key = f"{biller_id}.{token}"
    waiting = web().store.get(CHOICES_NS, key) if token.isalnum() else None
    gone = _NotKept("the document waiting for your choice is gone (kept for an hour): upload it again")
    if waiting is None:
        raise gone
    chosen = request.form.get("entity_id", "")
    if chosen not in _idp_entities(waiting):
        raise _NotKept("choose one of the IdP entities the document holds")
    if not web().store.delete(CHOICES_NS, key):  # the one delete that finds it: two submits keep one version
        raise gone
    origin: Origin = "paste" if request.form.get("origin") == "paste" else "upload"
    return _keep(record, waiting, chosen, _uploader(), origin, request.form.get("filename") or None)


@blueprint.get("/partners/<biller_id>/metadata/<int:number>")
@allow(biller_read())
def metadata_version(biller_id: str, number: int) -> Response:
    """A kept version, checked now against the record: the same report as ``saml-validate metadata``."""
    try:
        record = partner_record(biller_id)
        version = uploaded_metadata.version(web().store, biller_id, number)
        if version is None:
            return error_page(404, "No such version", f"No metadata version {number} was uploaded for {biller_id!r}.")
        data = uploaded_metadata.document(web().store, version)
    except Refusal as refusal:
        return refusal.page()
    except StoreUnavailable as exc:
        return error_page(503, "Storage unavailable", str(exc))
    from validator.render import render

    report = jobs.check_metadata(Document(source=version.label, data=data), record, f"CRM record {biller_id}",
                                 now=web().clock(), policy=None)
    return Response(with_dev_banner(render(report, "html")), mimetype="text/html")


# --- checking before keeping ------------------------------------------------------------------


class _NotKept(Exception):
    """The document cannot be kept; the message says why (the last good version stays in use)."""


class _TooLarge(_NotKept):
    pass


def _uploader() -> str:
    """Who gives the document: the signed-in principal (``staff:EMAIL``, ``invite:ID``), with the name
    the form adds; in local mode (no sign-in) only the form's name, which is then required."""
    said = " ".join((request.form.get("uploaded_by") or "").split())
    if len(said) > MAX_UPLOADER:
        raise _NotKept(f"'Uploaded by' is longer than {MAX_UPLOADER} characters")
    principal = current()
    if principal.kind != "local":
        return f"{principal.who} ({said})" if said else principal.who
    if not said:
        raise _NotKept("say who you are (your name or email) in 'Uploaded by': each version records who gave it")
    return said


def _idp_entities(data: bytes) -> list[str]:
    """The IdP entity IDs of a document; _NotKept saying why a document gives none."""
    if len(data) > jobs.METADATA_LIMIT:
        raise _TooLarge(f"the document is larger than {jobs.METADATA_LIMIT // (1024 * 1024)} MiB")
    try:
        entities = idp_entity_ids(data)
    except MetadataError as exc:
        raise _NotKept(f"the document cannot be used as IdP metadata: {exc}") from None
    if not entities:
        raise _NotKept("the document describes no identity provider (no md:IDPSSODescriptor): is it the SP's "
                       "metadata, or another system's?")
    return entities


def _keep(record: CRMRecord, data: bytes, entity_id: str, uploader: str, origin: Origin, filename: str | None
          ) -> Response:
    """Keep the document as the next version when the test login could trust it; else _NotKept."""
    trust, problems = load_trust(data, record, source="the uploaded metadata", chosen=entity_id)
    if trust is None:
        raise _NotKept("; ".join(f"{f.code}: {f.message}" for f in problems) or "the metadata gives no trust")
    wanted = record.idp.entity_id
    if wanted and entity_id != wanted and not uri_difference(wanted, entity_id):
        raise _NotKept(f"CRM001: the record names the IdP {wanted!r}, and this metadata is of {entity_id!r}, another "
                       "IdP altogether; if it is the partner's IdP, correct idp.entity_id in the CRM record first")
    if not trust.certificates:
        raise _NotKept(f"the IdP {entity_id!r} publishes no signing certificate, so no response could be verified "
                       "with this metadata")
    state = web()
    version = uploaded_metadata.keep(state.store, record.biller.id, data, entity_id=entity_id, uploaded_by=uploader,
                                     at=state.clock(), origin=origin, filename=filename)
    note("metadata-upload", biller_id=record.biller.id,
         detail=f"version {version.number} ({origin}, {version.size:,} bytes, entity {entity_id}, said by {uploader})")
    return redirect(f"/partners/{record.biller.id}?kept={version.number}", code=303)  # type: ignore[return-value]


def _ask_which(record: CRMRecord, document: Document, entities: list[str], uploader: str) -> Response:
    assert document.data is not None
    token = secrets.token_hex(16)
    web().store.put(CHOICES_NS, f"{record.biller.id}.{token}", document.data, ttl=CHOICES_TTL)
    return _html("choose_entity.html", record=record, entities=entities, token=token, uploader=uploader,
                 origin=_origin(document), filename=_filename(document) or "", csrf=csrf_token(),
                 suggested=record.idp.entity_id if record.idp.entity_id in entities else None)


def _origin(document: Document) -> Origin:
    return "paste" if document.source.startswith("pasted ") else "upload"


def _filename(document: Document) -> str | None:
    return None if _origin(document) == "paste" else document.source


def _refused(biller_id: str, reason: str, status: int = 400) -> Response:
    return partner_page(biller_id, status=status, error=f"Not kept: {reason}. The metadata in use is unchanged.")
