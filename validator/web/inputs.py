"""What a person or a program gives the web app: a document (uploaded, pasted or a URL) and a CRM
record (a biller of the folder, or uploaded), read with limits and named errors.

Nothing here judges a document; an unreadable one is handed on, and the checks report it as a
finding exactly as the command line does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.datastructures import FileStorage

from metadata.crm import CRMRecord, parse_crm
from metadata.errors import CRMRecordError
from validator.errors import ValidatorError

from .partners import PartnerError, load_partner


class InputError(ValidatorError, ValueError):
    """The request does not say what to check; `message` says what is missing or wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputTooLarge(InputError):
    """A document over its limit: a web layer answers 413."""


@dataclass(frozen=True)
class Document:
    """One input: its bytes, or the URL to fetch it from; `source` names it in reports."""

    source: str
    data: bytes | None = None
    url: str | None = None


def _read(upload: FileStorage, limit: int, what: str) -> bytes:
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise InputTooLarge(f"the {what} file is larger than {limit // 1024:,} KiB")
    return data


def document_from_form(form: Mapping[str, str], files: Mapping[str, FileStorage], prefix: str, *, what: str,
                       limit: int, required: bool = True) -> Document | None:
    """``<prefix>_file`` (upload), ``<prefix>_text`` (pasted) or ``<prefix>_url``: exactly one."""
    upload: FileStorage | None = files.get(f"{prefix}_file")
    text = (form.get(f"{prefix}_text") or "").strip()
    url = (form.get(f"{prefix}_url") or "").strip()
    given = [name for name, present in (("a file", upload and upload.filename), ("pasted text", text),
                                        ("a URL", url)) if present]
    if len(given) > 1:
        raise InputError(f"give the {what} once: {' and '.join(given)} were both given")
    if upload and upload.filename:
        return Document(source=Path(upload.filename).name or "upload", data=_read(upload, limit, what))
    if text:
        data = text.encode("utf-8")
        if len(data) > limit:
            raise InputTooLarge(f"the pasted {what} is larger than {limit // 1024:,} KiB")
        return Document(source=f"pasted {what}", data=data)
    if url:
        if not url.lower().startswith(("https://", "http://")):
            raise InputError(f"the {what} URL must start with https://")
        return Document(source=url, url=url)
    if required:
        raise InputError(f"no {what} was given: upload a file, paste it, or give its URL")
    return None


def document_from_json(body: dict[str, Any], text_key: str, url_key: str | None, *, what: str, limit: int,
                       required: bool = True) -> Document | None:
    """The document sent as text under `text_key` or, where `url_key` is given, as a URL to fetch."""
    text, url = body.get(text_key), body.get(url_key) if url_key else None
    if text is not None and url is not None:
        raise InputError(f"give {text_key!r} or {url_key!r}, not both")
    if text is not None:
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{text_key!r} must be a non-empty string holding the {what}")
        data = text.encode("utf-8")
        if len(data) > limit:
            raise InputError(f"{text_key!r} is larger than {limit // 1024:,} KiB")
        return Document(source=f"request body ({text_key})", data=data)
    if url is not None:
        if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")):
            raise InputError(f"{url_key!r} must be an https URL")
        return Document(source=url, url=url)
    if required:
        raise InputError(f"send the {what} as {text_key!r} (text)" + (f" or {url_key!r}" if url_key else ""))
    return None


def record_from_form(form: Mapping[str, str], files: Mapping[str, FileStorage], folder: Path
                     ) -> tuple[CRMRecord | None, str | None]:
    """The chosen biller's record, or an uploaded one (not both); (None, None) when neither."""
    biller = (form.get("biller") or "").strip()
    upload: FileStorage | None = files.get("crm_file")
    if biller and upload and upload.filename:
        raise InputError("choose a biller or upload a CRM record, not both")
    if upload and upload.filename:
        name = Path(upload.filename).name or "upload.toml"
        data = _read(upload, 256 * 1024, "CRM record")
        try:
            if name.lower().endswith(".json"):
                return parse_crm(data, name, "json"), name
            return parse_crm(data, name, "toml"), name
        except CRMRecordError as exc:
            raise InputError(str(exc)) from None
    return _biller(folder, biller) if biller else (None, None)


def record_from_json(body: dict[str, Any], folder: Path) -> tuple[CRMRecord | None, str | None]:
    biller, inline = body.get("biller"), body.get("crm")
    if biller is not None and inline is not None:
        raise InputError("send 'biller' or 'crm', not both")
    if inline is not None:
        if not isinstance(inline, dict):
            raise InputError("'crm' must be a CRM record as a JSON object")
        try:
            return parse_crm(json.dumps(inline), "request body (crm)", "json"), "request body (crm)"
        except CRMRecordError as exc:
            raise InputError(str(exc)) from None
    if biller is not None:
        if not isinstance(biller, str):
            raise InputError("'biller' must be a biller ID (a string)")
        return _biller(folder, biller)
    return None, None


def _biller(folder: Path, biller: str) -> tuple[CRMRecord, str]:
    from .access import current

    if not current().may_read(biller):  # worded as an unknown biller: nothing about what exists
        raise InputError(f"There is no CRM record for biller {biller!r}.")
    try:
        return load_partner(folder, biller), f"CRM record {biller}"
    except PartnerError as exc:
        raise InputError(exc.message) from None
