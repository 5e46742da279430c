"""The partners the web app knows: one CRM record per biller, ``<crm_folder>/<biller-id>.toml``
(or ``.json``, as the sweep reads them).

A broken record is listed with what is wrong with it, never dropped: the folder is the
onboarding team's, and a typo in one record must not hide the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from metadata.crm import CRMRecord, load_crm
from metadata.errors import CRMRecordError
from validator.errors import ValidatorError

BILLER_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class PartnerError(ValidatorError, LookupError):
    """No usable record for a biller; `status` is the HTTP status a web layer answers with."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


@dataclass(frozen=True)
class Partner:
    biller_id: str
    record: CRMRecord | None
    problem: str | None = None
    """Why the record cannot be used (then `record` is None)."""


def load_partner(folder: Path, biller_id: str) -> CRMRecord:
    """The record of `biller_id`; PartnerError (404 or 400) saying why there is none."""
    if not BILLER_ID.fullmatch(biller_id):
        raise PartnerError(404, "Unknown biller", "A biller ID has only letters, digits, '-' and '_'; "
                           "this one has something else.")
    path = next((p for p in (folder / f"{biller_id}.toml", folder / f"{biller_id}.json") if p.is_file()), None)
    if path is None:
        raise PartnerError(404, "Unknown biller", f"There is no CRM record for biller {biller_id!r}.")
    try:
        return load_crm(path)
    except CRMRecordError as exc:
        raise PartnerError(400, "The CRM record cannot be used", f"The record of biller {biller_id!r} is invalid: "
                           f"{str(exc).replace(str(path), path.name)}") from None


def list_partners(folder: Path) -> list[Partner]:
    """Every ``*.toml`` and ``*.json`` record in `folder`, by biller ID; broken ones with their problem."""
    partners = []
    for path in sorted({*folder.glob("*.toml"), *folder.glob("*.json")}):
        biller_id = path.stem
        try:
            partners.append(Partner(biller_id, load_partner(folder, biller_id)))
        except PartnerError as exc:
            partners.append(Partner(biller_id, None, exc.message))
    return partners
