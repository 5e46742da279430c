"""Sweep history in the :class:`~metadata.store.Store`: per biller, the last good copy of its
metadata and a capped log of sweep runs; and the certificate that verified its last test login.

Namespaces and values (all keyed by the CRM record's ``biller.id``):

``sweep-last-good``     one value: a JSON header line (``format``, ``fetched_at``, ``url``, ``source``,
                        ``sha256`` of the body, and the :class:`Snapshot` the next sweep compares
                        with), a line feed, then the metadata exactly as fetched, uploaded or read.
                        One ``put``, so header and body never disagree. Replaced only by a copy whose
                        checks found no error, whichever trust source gave it: ``source`` is its kind
                        (``uploaded``, ``metadata_file``, ``metadata_url``; copies kept before it was
                        written came from ``metadata_url``) and ``url`` where it came from (the URL
                        without its password, the file, the uploaded version).
                        Format 2 keeps the snapshot as the model has it (binding URIs, locations as
                        the metadata gives them); format 1, written before, kept what the report
                        showed (a binding's short name, a location with its password hidden) and
                        is read as the model would have it, so that a change of display never
                        reads as a change of the partner's metadata.
``sweep-runs``          a list, newest first, capped at :data:`RUNS_KEPT`: one JSON summary per run
                        (``source``: the kind of trust source, added after the first runs were kept).
``test-login-signers``  one value: ``{"sha256": …, "verified_at": …, "login_id": …}`` of the trusted
                        certificate that verified the partner's last clean test login, and that
                        login's ID (written by the test SP; entries written before ``login_id`` was
                        kept have none and still load).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from metadata.model import EntityDescriptor
from metadata.saml import BINDINGS_PREFIX
from metadata.store import Store
from validator.checks.sweep import Snapshot, SnapshotCertificate
from validator.json_value import Plain, iso_z
from validator.metadata_facts import certificate_rows

LAST_GOOD_NS = "sweep-last-good"
RUNS_NS = "sweep-runs"
RUNS_KEPT = 100
SIGNERS_NS = "test-login-signers"
_FORMAT = 2
_SHOWN_FORMAT = 1
_READABLE = (_SHOWN_FORMAT, _FORMAT)


@dataclass(frozen=True)
class LastGood:
    """A partner's last good metadata: exactly the bytes fetched (or uploaded, or read), when and from where."""

    fetched_at: datetime
    url: str
    """Where it came from: the URL, redacted (no password); the metadata file; the uploaded version."""
    snapshot: Snapshot
    body: bytes
    source: str = "metadata_url"
    """The kind of trust source that gave it (:class:`validator.trust.TrustSource`)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def read_last_good(store: Store, biller_id: str) -> LastGood | None:
    """The last good copy, or None; an entry this version cannot read counts as none (it is left in place)."""
    value = store.get(LAST_GOOD_NS, biller_id)
    if value is None:
        return None
    header, _, body = value.partition(b"\n")
    try:
        meta = json.loads(header)
        if meta.get("format") not in _READABLE:
            return None
        snapshot = _snapshot(meta["snapshot"], shown=meta["format"] == _SHOWN_FORMAT)
        return LastGood(_moment(meta["fetched_at"]), str(meta["url"]), snapshot, body,
                        str(meta.get("source", "metadata_url")))
    except (ValueError, KeyError, TypeError):
        return None


def save_last_good(store: Store, biller_id: str, copy: LastGood) -> None:
    header = {
        "format": _FORMAT, "fetched_at": iso_z(copy.fetched_at), "url": copy.url, "source": copy.source,
        "sha256": copy.sha256,
        "bytes": len(copy.body), "snapshot": snapshot_json(copy.snapshot),
    }
    store.put(LAST_GOOD_NS, biller_id, json.dumps(header, sort_keys=True).encode() + b"\n" + copy.body)


@dataclass(frozen=True)
class CopyRef:
    """Which copy: when it was fetched and the SHA-256 of its bytes."""

    fetched_at: datetime
    sha256: str

    def json(self) -> dict[str, Plain]:
        return {"fetched_at": iso_z(self.fetched_at), "sha256": self.sha256}


@dataclass(frozen=True)
class HistoryNote:
    """What the store holds for the partner after this sweep, and why."""

    replaced: bool
    """Whether this sweep's copy became the last good one."""
    kept: str | None = None
    """Why not, and what is kept instead."""
    compared_with: CopyRef | None = None
    """The last good copy this sweep compared with."""
    last_good: CopyRef | None = None
    """The last good copy now."""

    def json(self) -> dict[str, Plain]:
        found: dict[str, Plain] = {"replaced": self.replaced}
        if self.compared_with is not None:
            found["compared_with"] = self.compared_with.json()
        if self.last_good is not None:
            found["last_good"] = self.last_good.json()
        if self.kept is not None:
            found["kept"] = self.kept
        return found


def keep_last_good(
    store: Store, biller_id: str, previous: LastGood | None, candidate: LastGood | None, why_not: str
) -> HistoryNote:
    """Save `candidate` as the last good copy, if there is one (a fetch whose checks found no
    error); otherwise leave `previous` exactly as it is. What the store holds now, and why."""
    before = CopyRef(previous.fetched_at, previous.sha256) if previous is not None else None
    if candidate is not None:
        save_last_good(store, biller_id, candidate)
        return HistoryNote(True, compared_with=before, last_good=CopyRef(candidate.fetched_at, candidate.sha256))
    kept = (f"the last good copy of {previous.fetched_at:%Y-%m-%d %H:%M} UTC is kept: {why_not}"
            if previous else f"no good copy yet: {why_not}")
    return HistoryNote(False, kept, compared_with=before, last_good=before)


@dataclass(frozen=True)
class RunEntry:
    """One sweep of one partner, as its capped run log keeps it."""

    at: datetime
    record: str
    verdict: str
    errors: int
    warnings: int
    codes: tuple[str, ...]
    """The codes of its errors and warnings, sorted."""
    sha256: str | None
    """Of the body fetched (uploaded, read); None when the fetch failed or there was none."""
    changes: tuple[str, ...]
    last_good_replaced: bool
    signer: str | None
    source: str | None = None
    """The kind of trust source the copy came from; None when nothing on record gives one."""

    def json(self) -> dict[str, Plain]:
        return {
            "at": iso_z(self.at), "record": self.record, "verdict": self.verdict, "errors": self.errors,
            "warnings": self.warnings, "codes": list(self.codes), "fetched": self.sha256 is not None,
            "sha256": self.sha256, "changes": list(self.changes), "last_good_replaced": self.last_good_replaced,
            "signer": self.signer, "source": self.source,
        }


def append_run(store: Store, biller_id: str, entry: RunEntry) -> None:
    store.append(RUNS_NS, biller_id, json.dumps(entry.json(), sort_keys=True).encode(), RUNS_KEPT)


def recent_runs(store: Store, biller_id: str, n: int = RUNS_KEPT) -> list[dict[str, Plain]]:
    """Up to `n` run summaries as stored, newest first (entries that are not JSON objects are skipped)."""
    runs = []
    for item in store.recent(RUNS_NS, biller_id, n):
        try:
            entry = json.loads(item)
        except ValueError:
            continue
        if isinstance(entry, dict):
            runs.append(entry)
    return runs


@dataclass(frozen=True)
class SeenSigner:
    """The certificate that verified a partner's last clean test login."""

    sha256: str
    """SHA-256 of the certificate, colon hex, upper case."""
    verified_at: datetime
    login_id: str | None
    """The test login that showed it (``/test-logins/<id>``); None in entries written before it was kept."""


def record_signer(store: Store, biller_id: str, sha256: str, verified_at: datetime, login_id: str) -> None:
    """For the test SP: remember the certificate (SHA-256, colon hex) that verified test login
    `login_id`. Only a login judged without errors, answering this browser's request, may say so."""
    seen = {"sha256": sha256, "verified_at": iso_z(verified_at), "login_id": login_id}
    store.put(SIGNERS_NS, biller_id, json.dumps(seen).encode())


def last_signer(store: Store, biller_id: str) -> SeenSigner | None:
    value = store.get(SIGNERS_NS, biller_id)
    if value is None:
        return None
    try:
        seen = json.loads(value)
        login_id = seen.get("login_id")
        return SeenSigner(str(seen["sha256"]).upper(), _moment(seen["verified_at"]),
                          None if login_id is None else str(login_id))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def snapshot_of(entity: EntityDescriptor) -> Snapshot:
    """What the next sweep compares: the entity ID, the SSO endpoints and the distinct signing
    certificates of the entity's IdP role, read from the model (never from what a report shows)."""
    idp = entity.idp
    sso = tuple((e.binding, e.location) for e in idp.sso) if idp is not None else ()
    certificates: dict[str, SnapshotCertificate] = {}
    for row in certificate_rows(entity):
        if row.signing and row.facts.sha256 not in certificates:
            c = row.facts
            certificates[c.sha256] = SnapshotCertificate(c.sha256, c.subject, c.not_before, c.not_after)
    return Snapshot(entity.entity_id, sso, tuple(certificates.values()))


def snapshot_json(snapshot: Snapshot) -> dict[str, Plain]:
    return {
        "entity_id": snapshot.entity_id,
        "sso": [{"binding": b, "location": loc} for b, loc in snapshot.sso],
        "certificates": [
            {"sha256": c.sha256, "subject": c.subject, "not_before": iso_z(c.not_before),
             "not_after": iso_z(c.not_after)} for c in snapshot.certificates
        ],
    }


def _snapshot(data: Any, *, shown: bool) -> Snapshot:
    """The snapshot of a stored copy's header (JSON read back: checked by the caller's except);
    `shown`: format 1, whose bindings are short names."""
    binding = _binding_uri if shown else str
    return Snapshot(
        None if data["entity_id"] is None else str(data["entity_id"]),
        tuple((binding(e["binding"]), str(e["location"])) for e in data["sso"]),
        tuple(SnapshotCertificate(str(c["sha256"]), str(c["subject"]), _moment(c["not_before"]),
                                  _moment(c["not_after"])) for c in data["certificates"]),
    )


def _binding_uri(name: object) -> str:
    """A binding as format 1 kept it (:func:`metadata.saml.binding_name`: the URI's last part under
    the SAML 2.0 bindings prefix, else the URI itself) as its URI again."""
    text = str(name)
    return text if ":" in text else BINDINGS_PREFIX + text


def _moment(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
