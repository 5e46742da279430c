"""IdP metadata uploaded or pasted for a biller in the web app: kept in the store, versioned, with
who gave it and when.

A version is kept only after it has been checked (the web app's upload page checks it with
:func:`validator.trust.trust_from_metadata` first), and a version is never replaced: each upload
is the next number, claimed with the store's atomic ``add`` so that two uploads at once get two
numbers. The newest version is the biller's ``uploaded`` trust source (:mod:`validator.trust`),
for the live test login and the sweep alike.

Two namespaces: the document itself, and a small description of it (who, when, which entity, its
SHA-256) that lists the history without reading every document. The document is written first,
its description last: a reader lists descriptions only, so it never sees half a version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from metadata.store import Store
from validator.json_value import iso_z
from validator.trust import Uploaded

DOCUMENTS_NS = "idp-metadata-documents"
VERSIONS_NS = "idp-metadata-versions"
MAX_VERSIONS_LISTED = 50
"""A partner's page lists at most this many versions, newest first (all are kept)."""

Origin = Literal["upload", "paste"]


@dataclass(frozen=True)
class MetadataVersion:
    """One kept version of a biller's uploaded IdP metadata (its description; the document is
    read with :func:`document`)."""

    biller_id: str
    number: int
    uploaded_by: str
    uploaded_at: str
    """ISO 8601 UTC."""
    origin: Origin
    filename: str | None
    entity_id: str
    """The IdP entity of the document to use (chosen by the uploader when it holds several)."""
    sha256: str
    size: int

    @property
    def label(self) -> str:
        """How pages and reports name it: ``uploaded version 3 (by ana@example.com, 2026-12-06T08:00:00Z)``."""
        return f"uploaded version {self.number} (by {self.uploaded_by}, {self.uploaded_at})"

    def json(self) -> bytes:
        return json.dumps({"biller_id": self.biller_id, "number": self.number, "uploaded_by": self.uploaded_by,
                           "uploaded_at": self.uploaded_at, "origin": self.origin, "filename": self.filename,
                           "entity_id": self.entity_id, "sha256": self.sha256, "size": self.size}).encode()

    @classmethod
    def read(cls, stored: bytes) -> MetadataVersion:
        """A description as :meth:`json` wrote it (the store is ours: a broken one is a failure of the tool)."""
        value = json.loads(stored)
        origin: Origin = "paste" if value["origin"] == "paste" else "upload"
        return cls(str(value["biller_id"]), int(value["number"]), str(value["uploaded_by"]),
                   str(value["uploaded_at"]), origin, value["filename"], str(value["entity_id"]),
                   str(value["sha256"]), int(value["size"]))


def _key(biller_id: str, number: int) -> str:
    return f"{biller_id}.{number:06d}"


def _numbers(store: Store, biller_id: str) -> list[int]:
    """The biller's version numbers, ascending (keys are ``<biller-id>.<number>``; a biller ID has no dot)."""
    prefix = f"{biller_id}."
    return sorted(int(key[len(prefix):]) for key in store.keys(VERSIONS_NS)
                  if key.startswith(prefix) and key[len(prefix):].isdigit())


def versions(store: Store, biller_id: str, limit: int = MAX_VERSIONS_LISTED) -> list[MetadataVersion]:
    """The biller's kept versions, newest first (at most `limit`)."""
    found = []
    for number in reversed(_numbers(store, biller_id)[-limit:]):
        stored = store.get(VERSIONS_NS, _key(biller_id, number))
        if stored is not None:
            found.append(MetadataVersion.read(stored))
    return found


def version(store: Store, biller_id: str, number: int) -> MetadataVersion | None:
    """Version `number` of the biller's uploads, or None when there is no such version."""
    stored = store.get(VERSIONS_NS, _key(biller_id, number)) if number > 0 else None
    return MetadataVersion.read(stored) if stored is not None else None


def latest(store: Store, biller_id: str) -> MetadataVersion | None:
    """The newest kept version, or None when nothing was ever uploaded for the biller."""
    newest = versions(store, biller_id, limit=1)
    return newest[0] if newest else None


def latest_upload(store: Store, biller_id: str) -> Uploaded | None:
    """The newest upload as a trust input (:func:`validator.trust.record_trust`), or None when
    nothing was uploaded for the biller: what the live test login and the sweep both take."""
    version = latest(store, biller_id)
    if version is None:
        return None
    return Uploaded(document(store, version), version.entity_id, version.label)


def document(store: Store, version: MetadataVersion) -> bytes:
    """The metadata document of a kept version."""
    data = store.get(DOCUMENTS_NS, _key(version.biller_id, version.number))
    if data is None:  # a description is written only after its document, and neither expires
        raise LookupError(f"the document of {version.label} is missing from the store")
    return data


def keep(store: Store, biller_id: str, data: bytes, *, entity_id: str, uploaded_by: str, at: datetime,
         origin: Origin, filename: str | None = None) -> MetadataVersion:
    """Keep a checked document as the biller's next version; the version. Nothing is replaced: the
    number is claimed with ``add``, and a number another upload took first is skipped."""
    number = (_numbers(store, biller_id) or [0])[-1] + 1
    while not store.add(DOCUMENTS_NS, _key(biller_id, number), data):
        number += 1
    version = MetadataVersion(biller_id, number, uploaded_by, iso_z(at.replace(microsecond=0)), origin, filename,
                              entity_id, hashlib.sha256(data).hexdigest(), len(data))
    store.put(VERSIONS_NS, _key(biller_id, number), version.json())
    return version
