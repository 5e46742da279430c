"""Registering an SP at runtime, for ``/api/v1/sps`` (:mod:`idp.sps`) and the ``/sps`` page
(:mod:`idp.sps_page`): check its metadata, store it, replace or delete it, and record who did.

An SP is registered only when its metadata has no error among the SPM findings
(:mod:`validator.checks.sp_metadata`) and the XML findings for input that does not read. What is
stored is the chosen EntityDescriptor alone, serialised, with its options (:func:`idp.registry.stored_value`);
an SP of idp.toml is never replaced or deleted here. Every change is appended to :data:`CHANGES` in
the store (who, through what, from where, when) and logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from metadata.config import refused_character, validate_config
from metadata.errors import UnsafeXML
from metadata.fetch import FetchPolicy
from metadata.fetch_diagnostics import FetchError
from metadata.model import EntityDescriptor
from metadata.read import NotMetadata, read_metadata
from metadata.saml import MD
from metadata.xml import PASTED_LIMITS, metadata_limits, parse_untrusted
from validator.checks.sp_metadata import check_sp, choose_sp, unfetched, unreadable
from validator.findings import Finding, Severity

from .errors import IdPError, SettingsError
from .registry import STORED, STORED_LIMITS, STORED_OPTIONS, RegisteredSP, StoredSPError, stored_value
from .settings import ServiceProvider as SPSettings
from .state import IdPState

log = logging.getLogger("idp")

CHANGES = ("idp-sp-changes", "all")
"""The store list of changes to the runtime SPs, newest first (:func:`changes`)."""
MAX_CHANGES = 100
MAX_RUNTIME_SPS = 200
"""SPs registered at runtime, at most: each list of SPs reads them all, and they stay within the
registry's cache of parsed SPs (:data:`idp.registry.CACHED`)."""
MAX_BY = 200
"""Characters of the free text saying who registered or deleted an SP."""
MAX_FIELD = 2048
"""Characters of an entity ID, URL or NameID format given with a registration (an entity ID has at most 1024)."""
PASTED_MAX = PASTED_LIMITS.max_bytes
"""Largest metadata pasted or uploaded (the request body cap, 256 KiB, is met first); a URL may bring the
fetcher's 5 MiB (an aggregate, of which one SP entity is kept)."""
FETCH_POLICY = FetchPolicy()
"""How a metadata URL is fetched: SECURITY.md §4's defaults (tests replace it to reach a local server)."""
PASTED = "the metadata"
"""How findings name metadata that was pasted or uploaded."""


class Refused(IdPError, ValueError):
    """A registration or deletion that is not done: `status` for the API, `detail` for both,
    `findings` when the metadata has errors."""

    def __init__(self, status: int, detail: str, findings: tuple[Finding, ...] = (), *, exists: str | None = None
                 ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.findings = status, detail, findings
        self.exists = exists
        """The entity ID of the runtime SP that a registration without `replace` would have replaced."""


@dataclass(frozen=True)
class Application:
    """What a person or a call asks to register: metadata (bytes, or a URL to fetch), the entity to
    take from it, the options, who asks, and whether an SP of that entity ID may be replaced."""

    metadata: bytes | None
    metadata_url: str | None
    entity_id: str | None
    options: SPSettings
    by: str | None = None
    replace: bool = False


@dataclass(frozen=True)
class Checked:
    """An application's metadata judged: the findings, and the SP entity chosen with its XML as it
    would be stored (None when none could be chosen)."""

    findings: tuple[Finding, ...]
    entity: EntityDescriptor | None = None
    entity_xml: str | None = None

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def acs_urls(self) -> tuple[str, ...]:
        role = self.entity.sp if self.entity is not None else None
        return tuple(a.location for a in role.acs) if role is not None else ()


@dataclass(frozen=True)
class Change:
    """One change to the runtime SPs, as :data:`CHANGES` keeps it."""

    action: str
    """``registered``, ``replaced`` or ``deleted``."""
    entity_id: str
    via: str
    """``api`` or ``page``."""
    by: str | None
    address: str | None
    at: str


def text_field(name: str, value: object, limit: int = MAX_FIELD) -> str | None:
    """A text field of a registration: None when absent or empty; refused (naming the field) when it is
    not a string, is longer than `limit` or holds a control character."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Refused(400, f'"{name}" must be a string')
    if len(value) > limit:
        raise Refused(400, f'"{name}" is {len(value):,} characters long; at most {limit:,} are accepted')
    bad = refused_character(value)
    if bad is not None:
        raise Refused(400, f'"{name}" contains a control or unassigned character (U+{ord(bad):04X}); '
                           "send it without one")
    return value


def options_from(raw: Mapping[str, object]) -> SPSettings:
    """The per-SP options (:data:`idp.registry.STORED_OPTIONS`), validated as ``[[sps]]`` in idp.toml is."""
    unknown = sorted(set(raw) - set(STORED_OPTIONS))
    if unknown:
        raise Refused(400, f"unknown options: {', '.join(unknown)}; the options are {', '.join(STORED_OPTIONS)}")
    text_field("nameid_format", raw.get("nameid_format"))
    try:
        return validate_config(dict(raw), "the SP options", SPSettings, SettingsError)
    except SettingsError as exc:
        raise Refused(400, "; ".join(f'"{path}": {message}' for path, message in exc.problems)) from None


def check(idp: IdPState, application: Application) -> Checked:
    """Fetch (for a URL), parse and judge the application's metadata; never raises for the metadata."""
    source = application.metadata_url or PASTED
    if application.metadata_url is not None:
        try:
            data = _fetch(application.metadata_url)
        except FetchError as exc:
            return Checked((unfetched(exc),))
        limits = metadata_limits(FETCH_POLICY.max_bytes)
    else:
        data = application.metadata or b""
        limits = metadata_limits(PASTED_MAX)
        if len(data) > PASTED_MAX:  # said before a byte is parsed, with what to do instead
            return Checked((unreadable(UnsafeXML("too-large", f"the metadata is {len(data):,} bytes; at most "
                                                 f"{PASTED_MAX:,} are accepted pasted or uploaded: give its https "
                                                 "URL instead"), source),))
    try:
        tree = parse_untrusted(data, limits)
        document = read_metadata(tree)
    except (UnsafeXML, NotMetadata) as exc:
        return Checked((unreadable(exc, source),))
    choice = choose_sp(document, application.entity_id, source)
    if choice.entity is None:
        return Checked(choice.findings)
    findings = (*choice.findings, *check_sp(choice.entity, encrypt=application.options.encrypt,
                                            dev_mode=idp.settings.server.dev_mode, source=source))
    entity_xml = _entity_xml(tree, choice.entity.entity_id)
    size = len(entity_xml.encode())
    if size > STORED_LIMITS.max_bytes:
        findings = (*findings, unreadable(UnsafeXML("too-large", f"the SP entity is {size:,} bytes; at most "
                                                    f"{STORED_LIMITS.max_bytes:,} are kept"), source))
    return Checked(tuple(findings), choice.entity, entity_xml)


def _fetch(url: str) -> bytes:
    # Imported here: urllib3 is loaded only by an IdP that is asked to fetch.
    from metadata.fetch import fetch

    return fetch(url, FETCH_POLICY).body


def _entity_xml(tree: etree._ElementTree, entity_id: str) -> str:
    """The EntityDescriptor of `entity_id`, serialised alone (with the namespaces it uses)."""
    for element in tree.getroot().iter(f"{{{MD}}}EntityDescriptor"):
        if element.get("entityID", "") == entity_id:
            return etree.tostring(element, encoding="unicode", with_tail=False)
    raise AssertionError(f"{entity_id!r} was read from this tree")  # read_metadata found it there


def store(idp: IdPState, application: Application, checked: Checked, *, via: str, address: str | None
          ) -> tuple[RegisteredSP, bool]:
    """Store the SP `checked` found; the SP and whether it replaced one. :class:`Refused` with the
    findings when they hold an error (400), when the entity ID is registered already and `replace` is
    not set (409, `exists`), or belongs to idp.toml (409)."""
    if checked.errors or checked.entity is None or checked.entity_xml is None:
        count = len(checked.errors)
        raise Refused(400, f"the SP is not registered: {count} error{'s' if count != 1 else ''}, listed in findings",
                      checked.findings)
    entity_id = checked.entity.entity_id
    if idp.registry.file_sp(entity_id) is not None:
        raise Refused(409, f"{entity_id!r} is registered in idp.toml: it is never replaced or deleted at runtime; "
                           "change it in idp.toml")
    if not application.replace and len(idp.registry.stored_ids()) >= MAX_RUNTIME_SPS:
        raise Refused(409, f"the IdP holds {MAX_RUNTIME_SPS} SPs registered at runtime, its limit: delete one "
                           "it no longer needs first")
    at = _now(idp.clock())
    value = stored_value(checked.entity_xml, application.options, source=via, at=at, by=application.by,
                         metadata_url=application.metadata_url)
    try:
        registered = idp.registry.remember(value)  # what every worker will read back
    except StoredSPError as exc:
        raise Refused(400, f"the SP is not registered: {exc}", checked.findings) from None
    if application.replace:
        replaced = idp.store.get(STORED, entity_id) is not None
        idp.store.put(STORED, entity_id, value)
    elif idp.store.add(STORED, entity_id, value):  # of two registering at once, one wins
        replaced = False
    else:
        raise Refused(409, f"an SP {entity_id!r} exists; to replace it, send \"replace\": true "
                           "(with an XML body: ?replace=true)",
                      exists=entity_id)
    _record(idp, Change("replaced" if replaced else "registered", entity_id, via, application.by, address, at))
    return registered, replaced


def delete(idp: IdPState, entity_id: str, *, via: str, by: str | None, address: str | None) -> None:
    """Remove a runtime SP: :class:`Refused` for an SP of idp.toml (403) or one not registered (404)."""
    if idp.registry.file_sp(entity_id) is not None:
        raise Refused(403, f"{entity_id!r} is registered in idp.toml: it is never deleted at runtime; remove it "
                           "from idp.toml")
    if not idp.store.delete(STORED, entity_id):
        raise Refused(404, f"no SP {entity_id!r} is registered at runtime")
    _record(idp, Change("deleted", entity_id, via, by, address, _now(idp.clock())))


def _now(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(idp: IdPState, change: Change) -> None:
    idp.store.append(*CHANGES, json.dumps(vars(change)).encode(), MAX_CHANGES)
    log.info("SP %s %s via %s by %r from %s", change.entity_id, change.action, change.via, change.by or "",
             change.address or "unknown address")


def changes(idp: IdPState, n: int = 20) -> list[Change]:
    """The last `n` changes to the runtime SPs, newest first."""
    found = []
    for raw in idp.store.recent(*CHANGES, n):
        try:
            found.append(Change(**json.loads(raw)))
        except (ValueError, TypeError):  # a record of another shape: skipped, never a 500
            continue
    return found


def finding_json(finding: Finding) -> dict[str, str | None]:
    """A finding as the API shows it."""
    return {"code": finding.code, "severity": finding.severity.value, "title": finding.title,
            "message": finding.message, "expected": finding.expected, "actual": finding.actual,
            "where": finding.where, "fix": finding.fix}


def sp_json(sp: RegisteredSP) -> dict[str, object]:
    """A registered SP as ``GET /api/v1/sps`` lists it."""
    options = sp.options.model_dump(include=set(STORED_OPTIONS))
    return {"entity_id": sp.entity_id, "acs": [a.location for a in sp.sp.acs], "options": options,
            "source": sp.source, "registered_at": sp.registered_at, "registered_by": sp.registered_by,
            "metadata_url": sp.metadata_url}
