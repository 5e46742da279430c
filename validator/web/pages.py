"""The pages of the validator's web app, for a partner or an engineer who would rather click.

``GET /`` offers three forms (check metadata, check a response, discovery worksheet) and the
partners of the CRM folder with their go-live report, worksheet and live test login. Results
are the same self-contained pages the command line writes (``--format html``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request

from metadata.crm import CRMRecord
from metadata.errors import MetadataError
from metadata.fetch import FetchPolicy
from validator.discovery import Worksheet, describes_an_idp
from validator.render import render
from validator.render.worksheet import render_worksheet_html
from validator.report import Report

from . import jobs
from .access import PUBLIC, allow, biller_read, current, signed_in
from .csrf import csrf_token
from .inputs import Document, InputError, document_from_form, record_from_form
from .partners import PartnerError, list_partners, load_partner
from .state import web, with_dev_banner
from .trail import note

if TYPE_CHECKING:
    from validator.interview import CallAnswers

blueprint = Blueprint("pages", __name__, template_folder="templates")

FETCH_POLICY = "saml_validator_fetch_policy"
"""app.extensions key: the FetchPolicy for partner URLs (default: SECURITY.md §4's)."""


def fetch_policy() -> FetchPolicy | None:
    found: FetchPolicy | None = current_app.extensions.get(FETCH_POLICY)
    return found


def html(text: str, status: int = 200) -> Response:
    return Response(with_dev_banner(text), status=status, mimetype="text/html")


def home_page(error: str | None = None, status: int = 200) -> Response:
    principal = current()
    partners = [p for p in list_partners(web().crm_folder) if principal.may_read(p.biller_id)]
    return html(render_template("home.html", partners=partners, csrf=csrf_token(), error=error,
                                usable=[p for p in partners if p.record is not None]), status)


@blueprint.get("/")
@allow(signed_in())
def home() -> Response:
    principal = current()
    if principal.kind == "partner" and principal.billers:  # one biller: its page is the partner's home
        return redirect(f"/partners/{min(principal.billers)}", code=303)  # type: ignore[return-value]
    return home_page()


@blueprint.get("/healthz")
@allow(PUBLIC)
def healthz() -> tuple[Response, int]:
    """Liveness for the container's health check: the app answers and its store works."""
    from metadata.store import StoreUnavailable

    try:
        web().store.get("health", "probe")
    except StoreUnavailable as exc:
        return jsonify(status="unavailable", store=str(exc)), 503
    return jsonify(status="ok", partners=len(list_partners(web().crm_folder))), 200


def _report_page(report: Report) -> Response:
    return html(render(report, "html"))


def _worksheet_page(worksheet: Worksheet) -> Response:
    if not describes_an_idp(worksheet.inspection):  # nothing to describe: the findings say why
        return _report_page(worksheet.report)
    return html(render_worksheet_html(worksheet))


def _record() -> tuple[CRMRecord | None, str | None]:
    return record_from_form(request.form, request.files, web().crm_folder)


def _metadata_and_record() -> tuple[Document, CRMRecord | None, str | None]:
    """The metadata and the CRM record of a form; InputError saying what is missing or wrong."""
    document = document_from_form(request.form, request.files, "metadata", what="metadata",
                                  limit=jobs.METADATA_LIMIT)
    assert document is not None  # required
    return (document, *_record())


@blueprint.post("/check/metadata")
@allow(signed_in())
def check_metadata() -> Response:
    try:
        document, crm, crm_source = _metadata_and_record()
    except InputError as exc:
        return home_page(exc.message, 400)
    return _report_page(jobs.check_metadata(document, crm, crm_source, now=web().clock(), policy=fetch_policy()))


@blueprint.post("/check/response")
@allow(signed_in())
def check_response() -> Response:
    try:
        response = document_from_form(request.form, request.files, "response", what="SAML response",
                                      limit=jobs.RESPONSE_LIMIT)
        metadata = document_from_form(request.form, request.files, "metadata", what="IdP metadata",
                                      limit=jobs.METADATA_LIMIT, required=False)
        crm, crm_source = _record()
    except InputError as exc:
        return home_page(exc.message, 400)
    assert response is not None
    report = jobs.check_response(response, crm, crm_source, metadata=metadata, now=web().clock(),
                                 request_id=(request.form.get("request_id") or "").strip() or None,
                                 policy=fetch_policy(), on_record=on_record(request.form.get("biller"), crm))
    return _report_page(report)


@blueprint.post("/discover")
@allow(signed_in())
def discover() -> Response:
    from validator.interview import AnswerError, told_vs_metadata

    try:
        document, crm, crm_source = _metadata_and_record()
        said = _answers_file()
    except (InputError, AnswerError) as exc:
        return home_page(exc.message, 400)
    worksheet = jobs.discover(document, crm, crm_source, now=web().clock(), policy=fetch_policy(),
                              probe=request.form.get("probe") == "on")
    if said is not None:
        worksheet = replace(worksheet, told=told_vs_metadata(said, worksheet))
    return _worksheet_page(worksheet)


def _answers_file() -> CallAnswers | None:
    """The discovery form's optional answers from the call (JSON), every field checked again."""
    from validator.interview import FILE_LIMIT, answers_from_json

    upload = request.files.get("answers_file")
    if upload is None or not upload.filename:
        return None
    return answers_from_json(upload.stream.read(FILE_LIMIT + 1), "the answers file")


def interview_page(values: Mapping[str, str] | None = None, error: str | None = None, status: int = 200) -> Response:
    from validator.interview import FIELDS, PRODUCT_CHOICES, PRODUCTS

    principal = current()
    usable = [p for p in list_partners(web().crm_folder) if principal.may_read(p.biller_id) and p.record is not None]
    products = [(key, PRODUCTS[key].name if key in PRODUCTS else key) for key in PRODUCT_CHOICES]
    return html(render_template("interview.html", csrf=csrf_token(), error=error, values=values or {},
                                questions={key: question for key, _, question in FIELDS}, products=products,
                                usable=usable), status)


@blueprint.get("/discover/interview")
@allow(signed_in())
def interview_form() -> Response:
    """The SE's interview: the partner's spoken answers to the five questions, before any metadata exists."""
    return interview_page()


@blueprint.post("/discover/interview")
@allow(signed_in())
def interview() -> Response:
    """The worksheet from the call, with the draft record and the answers file to download."""
    from validator.interview import AnswerError, answers_from, answers_json, call_sheet
    from validator.render.worksheet import render_call_html

    try:
        said = answers_from(request.form, taken=web().clock())
        crm, _ = _record()
    except (InputError, AnswerError) as exc:
        return interview_page(request.form, exc.message, 400)
    sheet = call_sheet(said, crm)
    return html(render_call_html(sheet, crm.biller.name if crm else None, downloads=(
        ("Download the draft CRM record (TOML)", "draft-crm.toml", "application/toml", sheet.draft),
        ("Download the answers (JSON), to compare with the metadata later", "interview-answers.json",
         "application/json", answers_json(said)))))


def on_record(biller: object, crm: CRMRecord | None) -> jobs.OnRecord | None:
    """The chosen biller's trust on record, when the record is one of the CRM folder's."""
    from validator.uploaded_metadata import latest_upload

    if not isinstance(biller, str) or not biller.strip() or crm is None:
        return None
    return jobs.OnRecord(web().crm_folder, latest_upload(web().store, crm.biller.id))


def partner_metadata(biller_id: str) -> tuple[CRMRecord, Document]:
    """A partner's record and its metadata on record (:func:`validator.web.partner_trust.partner_metadata`:
    uploaded, the record's metadata_file, or its metadata_url, fetched by the checks as the CLI
    fetches it); PartnerError when there is none."""
    from .partner_trust import NoMetadata
    from .partner_trust import partner_metadata as on_record
    from .state import Refusal

    record = load_partner(web().crm_folder, biller_id)
    if record.idp.metadata_url and not record.idp.metadata_file and not _uploaded(biller_id):
        return record, Document(source=record.idp.metadata_url, url=record.idp.metadata_url)
    try:
        found = on_record(record, web())
    except NoMetadata as exc:
        raise PartnerError(400, "No IdP metadata", f"{biller_id!r}: {exc.reason}. Upload the partner's metadata on "
                           f"its page (/partners/{biller_id}).") from None
    except (MetadataError, Refusal) as exc:
        raise PartnerError(400, "The IdP metadata cannot be read", f"{biller_id!r}: {exc}") from None
    return record, Document(source=found.source.location, data=found.data)


def _uploaded(biller_id: str) -> bool:
    from validator import uploaded_metadata

    return uploaded_metadata.latest(web().store, biller_id) is not None


@blueprint.get("/partners/<biller_id>/report")
@allow(biller_read())
def partner_report(biller_id: str) -> Response:
    """The printable go-live report: the partner's metadata URL checked against its record."""
    try:
        record, document = partner_metadata(biller_id)
    except PartnerError as exc:
        return refused(exc)
    note("report-download", biller_id=biller_id, detail="go-live report (page)")
    return _report_page(jobs.check_metadata(document, record, f"CRM record {biller_id}", now=web().clock(),
                                            policy=fetch_policy()))


@blueprint.get("/partners/<biller_id>/discover")
@allow(biller_read())
def partner_worksheet(biller_id: str) -> Response:
    try:
        record, document = partner_metadata(biller_id)
    except PartnerError as exc:
        return refused(exc)
    note("report-download", biller_id=biller_id, detail="discovery worksheet (page)")
    return _worksheet_page(jobs.discover(document, record, f"CRM record {biller_id}", now=web().clock(),
                                         policy=fetch_policy(), probe=True))


def refused(exc: PartnerError) -> Response:
    from .state import error_page

    return error_page(exc.status, exc.title, exc.message)
