"""Staff change partners' CRM records and run the sweep from the app (issue 13, the staff role).

=======================================  ===============================================
``/staff/records``                       GET: the records; POST: add or replace one (checked first)
``/staff/records/<biller-id>``           GET: a record as it is on disk (a download)
``/staff/sweep``                         POST: sweep every partner now, as ``saml-validate sweep``
=======================================  ===============================================

A record is written only after it parses as a CRM record (the same strict reader as everywhere),
and nothing is lost: a record it replaces is kept beside it as ``<biller-id>.toml.<UTC time>.bak``
(which no reader of the folder takes for a record). The file is written to a temporary name and
renamed into place, so a reader sees the old record or the new one, never half of one. A folder
the app may not write (a read-only mount) is said so plainly. Each change is in the audit trail.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from flask import Blueprint, Response, render_template, request

from metadata.crm import CRMRecord, parse_crm
from metadata.errors import CRMRecordError

from .access import STAFF, allow, biller_read
from .csrf import csrf_token
from .inputs import InputError, document_from_form
from .partners import BILLER_ID, list_partners
from .state import error_page, web, with_dev_banner
from .trail import note

blueprint = Blueprint("staff_records", __name__, template_folder="templates")

MAX_RECORD = 256 * 1024


def _html(template: str, status: int = 200, **context: object) -> Response:
    return Response(with_dev_banner(render_template(template, csrf=csrf_token(), **context)), status=status,
                    mimetype="text/html")


def _records_page(status: int = 200, *, error: str | None = None, saved: str | None = None) -> Response:
    return _html("staff_records.html", status, partners=list_partners(web().crm_folder), error=error, saved=saved)


@blueprint.get("/staff/records")
@allow(STAFF)
def records() -> Response:
    return _records_page()


@blueprint.get("/staff/records/<biller_id>")
@allow(biller_read())  # staff see all; a partner only its own record
def record_file(biller_id: str) -> Response:
    path = _existing(biller_id)
    if path is None:
        return error_page(404, "Unknown biller", f"There is no CRM record for biller {biller_id!r}.")
    note("report-download", biller_id=biller_id, detail=f"CRM record {path.name}")
    kind = "application/toml" if path.suffix == ".toml" else "application/json"
    response = Response(path.read_bytes(), mimetype=kind)
    response.headers["Content-Disposition"] = f"attachment; filename={path.name}"
    return response


@blueprint.post("/staff/records")
@allow(STAFF)
def save_record() -> Response:
    try:
        document = document_from_form(request.form, request.files, "record", what="CRM record", limit=MAX_RECORD)
        assert document is not None and document.data is not None  # required; the form has no URL field
        kind: Literal["toml", "json"] = "json" if document.source.lower().endswith(".json") else "toml"
        record = parse_crm(document.data, document.source, kind)
    except InputError as exc:
        return _records_page(400, error=f"Not saved: {exc.message}.")
    except CRMRecordError as exc:
        return _records_page(400, error=f"Not saved: {exc}")
    try:
        kept = _write(record, document.data, kind)
    except _NotWritten as exc:
        return _records_page(409, error=f"Not saved: {exc}")
    detail = f"replaced; the previous record is kept as {kept}" if kept else "added"
    note("record-change", biller_id=record.biller.id, detail=f"CRM record {record.biller.id}.{kind} {detail}")
    return _records_page(201, saved=f"The record of {record.biller.id} was {detail}.")


class _NotWritten(Exception):
    pass


def _existing(biller_id: str) -> Path | None:
    if not BILLER_ID.fullmatch(biller_id):
        return None
    folder = web().crm_folder
    return next((p for p in (folder / f"{biller_id}.toml", folder / f"{biller_id}.json") if p.is_file()), None)


def _write(record: CRMRecord, data: bytes, kind: str) -> str | None:
    """Write the record as ``<biller-id>.<kind>``; the name the replaced one is kept under, if any."""
    state = web()
    folder = state.crm_folder
    target = folder / f"{record.biller.id}.{kind}"
    other = folder / f"{record.biller.id}.{'json' if kind == 'toml' else 'toml'}"
    if other.is_file():
        raise _NotWritten(f"the folder already holds {other.name} for this biller; give the record as "
                          f"{other.suffix[1:].upper()}, or remove {other.name} from the folder first")
    kept, temporary = None, None
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{record.biller.id}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data if data.endswith(b"\n") else data + b"\n")  # pasted text comes trimmed
        if target.exists():
            kept = f"{target.name}.{state.clock():%Y%m%dT%H%M%SZ}.bak"
            os.link(target, folder / kept)  # the previous record stays, under its own name
        os.replace(temporary, target)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise _NotWritten(f"the CRM folder cannot be written here ({exc.strerror or exc}): change the record in "
                          "the folder itself, where it is kept") from None
    return kept


@blueprint.post("/staff/sweep")
@allow(STAFF)
def sweep_now() -> Response:
    """Every partner of the folder swept now, with the app's store as its history (the same as
    ``saml-validate sweep --store`` on this app's store)."""
    from validator.render.sweep import render_sweep
    from validator.sweep import SweepOptions, run_sweep

    from .pages import fetch_policy

    state = web()
    options = SweepOptions(now=state.clock(), fetch_policy=fetch_policy())
    result = run_sweep(state.crm_folder, options, state.store)
    note("sweep-run", detail=f"sweep of {len(result.partners)} partners run from the app")
    return Response(with_dev_banner(render_sweep(result, "html")), mimetype="text/html")
