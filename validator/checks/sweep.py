"""Sweep rules: what only a sweep over many partners, with history, can tell.

A sweep (``saml-validate sweep DIR``) loads every CRM record of a folder, fetches and checks
each partner's metadata with the ordinary rules, and compares what it found with the
partner's *last good copy* (the last fetch whose checks had no error). These rules report
the records the sweep could not use (CRM201–), what changed since the last good copy (MD020–,
KEY020–), and which certificate signs (KEY022). They are pure: a :class:`Snapshot` of then
and of now in, findings out. A record that gives the IdP's signing certificates instead of its
metadata has each certificate judged by the metadata's own expiry rules
(:func:`validator.checks.keys.certificate_findings`: KEY005, KEY006, KEY011, KEY007 …).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from metadata.saml import binding_name
from metadata.urls import redact_url
from validator.findings import Finding, Severity, rule

SUBJECT = "sweep"

RECORD_UNREADABLE = rule(
    "CRM201", "The CRM record, or a file it names, cannot be loaded", Severity.ERROR, SUBJECT,
    what="Each *.toml or *.json file in the sweep's folder loads as a CRM record: valid TOML or JSON, every "
         "required key present, no unknown key, every value of the right type; and each file it names in "
         "idp.signing_certificates is there beside it and holds a certificate (PEM, DER or base64).",
    why="The record is the contract the partner's metadata is checked against. A record that does not load "
        "cannot be checked at all, so the partner goes unmonitored until it is fixed; the sweep reports it "
        "and carries on with the other records. A signing certificate file that cannot be read leaves the "
        "partner's responses without the trust they are verified with.",
    fix="Correct the record at the key path given (saml-validate crm RECORD shows every fault), or move files "
        "that are not CRM records out of the folder; put the IdP's signing certificate (PEM) at the path "
        "idp.signing_certificates names.",
    example='[idp]\nentity_idd = "http://www.okta.com/exk1abcd"   # unknown key: a typo of entity_id',
)
NO_METADATA_URL = rule(
    "CRM202", "Nothing on record gives the IdP's metadata or certificates", Severity.ERROR, SUBJECT,
    what="A swept partner has a trust source, taken in this order: IdP metadata uploaded for the biller in the "
         "web app, the record's idp.metadata_file, its idp.signing_certificates, or its idp.metadata_url "
         "(the https URL where the partner's IdP publishes its metadata).",
    why="Without one the sweep has nothing to check, so certificate expiry and rollovers go unnoticed "
        "until logins fail; the live test login has no certificate to verify the responses with either.",
    fix='Ask the partner for the metadata URL (Okta: the app\'s "Identity Provider metadata" link; Entra ID: '
        '"App Federation Metadata Url"; AD FS: /FederationMetadata/2007-06/FederationMetadata.xml) and set '
        "idp.metadata_url; or upload the metadata on the partner's page of the web app, or keep it beside the "
        "record (idp.metadata_file); for an IdP without metadata (Google Workspace, JumpCloud) keep its "
        "signing certificates beside the record (idp.signing_certificates).",
)
DUPLICATE_BILLER = rule(
    "CRM203", "Two records in the folder have the same biller ID", Severity.ERROR, SUBJECT,
    what="Every record in the sweep's folder has its own biller.id.",
    why="Sweep history (the last good copy of the metadata and the run log) is kept per biller ID. Two "
        "records with one ID would overwrite each other's history and hide each other's changes, so the "
        "history of neither is updated until the IDs differ.",
    fix="Give each record the biller's own ID from the CRM; delete the record that is a stale copy.",
)
HISTORY_UNAVAILABLE = rule(
    "CRM204", "The partner's sweep history could not be read or written", Severity.ERROR, SUBJECT,
    what="The sweep reads the partner's last good copy and run log from the store, and writes them back.",
    why="Without its history the sweep cannot tell what changed since the last good copy, and this run is not "
        "recorded; the other partners are swept all the same, and nothing already stored is changed.",
    fix="Check the store (--store, or $VALIDATOR_STORE): a Redis server down, a full disk, a SQLite file locked "
        "by another program. Run the sweep again once it answers.",
)
ENTITY_ID_CHANGED = rule(
    "MD020", "The entity ID changed since the last good copy", Severity.WARNING, SUBJECT,
    what="The entityID of the partner's metadata equals the one in the last good copy the sweep kept.",
    why="The portal accepts a response only when its Issuer is the configured entity ID. A changed entity ID "
        "usually means the IdP application was re-created or moved to another tenant; logins fail until the "
        "portal's configuration follows.",
    fix="Confirm the change with the partner; then update idp.entity_id in the CRM record and the portal's "
        "configuration (CRM001 reports the record's mismatch until then).",
)
SSO_CHANGED = rule(
    "MD021", "A single sign-on endpoint changed since the last good copy", Severity.WARNING, SUBJECT,
    what="The SingleSignOnService endpoints (binding and location) equal those of the last good copy. An "
         "endpoint that was added is a note; one removed, or moved to another location, a warning.",
    why="The portal sends users to the SSO URL it was configured with. If the partner moved or removed it, "
        "users land on an error page at their IdP.",
    fix="Check with the partner that the new location is intended; update idp.sso_url in the CRM record and "
        "the portal if the configured one is gone (CRM002 reports that case).",
)
CERTIFICATE_ADDED = rule(
    "KEY020", "A signing certificate was added since the last good copy", Severity.WARNING, SUBJECT,
    what="Every signing certificate of the partner's metadata (by SHA-256 fingerprint) was already in the last "
         "good copy.",
    why="A new signing certificate announces a key rollover: once the IdP switches to it, the portal accepts "
        "its responses only if it has loaded the new certificate by then.",
    fix="Make the portal load the metadata again (or add the new certificate to it) now, before the partner "
        "activates the new key; confirm with a test login after the switch.",
)
CERTIFICATE_REMOVED = rule(
    "KEY021", "A signing certificate was removed since the last good copy", Severity.WARNING, SUBJECT,
    what="Every signing certificate of the last good copy (by SHA-256 fingerprint) is still in the metadata.",
    why="A certificate disappears at the end of a rollover. If the portal still trusts only the removed "
        "certificate, the IdP's responses, signed with the remaining one, are refused.",
    fix="Make the portal load the current metadata so that it trusts the remaining certificate; confirm with "
        "a test login.",
)
SIGNER = rule(
    "KEY022", "Which certificate signs the responses", Severity.INFO, SUBJECT,
    what="Names the signing certificate the IdP uses now, and how sure that is: seen verifying the last test "
         "login of the test SP; the only signing certificate in the metadata; or, when the metadata lists "
         "several, the newest valid one as a likely guess, since metadata alone cannot tell.",
    why="Expiry matters most for the certificate that signs: when it expires, logins stop. During a rollover "
        "the metadata lists two certificates and only a login shows which one is in use.",
    fix="Nothing to fix. When the signer is only a guess, run a test login (/test-login/<biller-id> of "
        "saml-validate serve) to confirm it.",
)


@dataclass(frozen=True)
class SnapshotCertificate:
    sha256: str
    subject: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class Snapshot:
    """What a sweep compares between two fetches of one partner's metadata."""

    entity_id: str | None
    sso: tuple[tuple[str, str], ...]
    """(binding URI, location as the metadata gives it) of each SingleSignOnService, in document order."""
    certificates: tuple[SnapshotCertificate, ...]
    """The distinct signing certificates, in document order."""


@dataclass(frozen=True)
class Signer:
    """The certificate judged to sign now, and how that was decided."""

    sha256: str
    how: str
    """``test-login`` (seen verifying one), ``only`` (the only signing certificate) or ``likely`` (a guess)."""
    note: str
    """The sentence that says so, for people."""


def compare(previous: Snapshot, current: Snapshot, *, since: datetime, where: str) -> list[Finding]:
    """The changes from the last good copy (fetched at `since`) to `current`."""
    when = f"since the last good copy of {since:%Y-%m-%d %H:%M} UTC"
    findings: list[Finding] = []
    if previous.entity_id is not None and current.entity_id is not None and previous.entity_id != current.entity_id:
        findings.append(ENTITY_ID_CHANGED.finding(
            f"the entity ID changed from {previous.entity_id!r} to {current.entity_id!r} {when}",
            expected=previous.entity_id, actual=current.entity_id, where=where))
    findings += _sso_changes(previous.sso, current.sso, when, where)
    before = {c.sha256: c for c in previous.certificates}
    now = {c.sha256: c for c in current.certificates}
    for sha256, cert in now.items():
        if sha256 not in before:
            findings.append(CERTIFICATE_ADDED.finding(
                f"{_describe(cert)} is a new signing certificate {when}", actual=sha256, where=where))
    for sha256, cert in before.items():
        if sha256 not in now:
            findings.append(CERTIFICATE_REMOVED.finding(
                f"{_describe(cert)} is no longer in the metadata {when}", expected=sha256, where=where))
    return findings


def _sso_changes(
    previous: Sequence[tuple[str, str]], current: Sequence[tuple[str, str]], when: str, where: str
) -> Iterator[Finding]:
    def by_binding(endpoints: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
        # Compared as they may be shown: a password in a location is MD016's to report, never
        # this rule's to repeat (and copies kept before locations were stored whole lack it).
        table: dict[str, list[str]] = {}
        for binding, location in endpoints:
            table.setdefault(binding, []).append(redact_url(location))
        return table

    then, now = by_binding(previous), by_binding(current)
    for uri in dict.fromkeys([*then, *now]):
        old, new, binding = then.get(uri, []), now.get(uri, []), binding_name(uri)
        if sorted(old) == sorted(new):
            continue
        if len(old) == 1 and len(new) == 1:
            yield SSO_CHANGED.finding(f"the {binding} endpoint moved from {old[0]} to {new[0]} {when}",
                                      expected=old[0], actual=new[0], where=where)
            continue
        for location in new:
            if location not in old:
                yield SSO_CHANGED.finding(f"a {binding} endpoint was added at {location} {when}",
                                          actual=location, where=where, severity=Severity.INFO)
        for location in old:
            if location not in new:
                yield SSO_CHANGED.finding(f"the {binding} endpoint {location} was removed {when}",
                                          expected=location, where=where)


def choose_signer(
    certificates: Sequence[SnapshotCertificate], now: datetime, *, seen: tuple[str, datetime] | None = None
) -> Signer | None:
    """Which of the metadata's signing `certificates` signs now.

    `seen` is the fingerprint of the certificate that verified the partner's last test login,
    and when. Metadata alone never says which key is active: the SP must accept any listed
    signing certificate (SAML Metadata §2.4.1.1), and IdPs list the next one before using it.
    """
    if not certificates:
        return None
    listed = {c.sha256: c for c in certificates}
    lost = ""
    if seen is not None:
        sha256, at = seen
        if sha256 in listed:
            return Signer(sha256, "test-login", f"{_describe(listed[sha256])} verified the test login of "
                                                f"{at:%Y-%m-%d %H:%M} UTC")
        lost = (f"; the certificate that verified the test login of {at:%Y-%m-%d} (SHA-256 {sha256[:23]}…) is no "
                "longer in the metadata")
    if len(listed) == 1:
        only = next(iter(listed.values()))
        return Signer(only.sha256, "only", f"{_describe(only)} is the only signing certificate, so every response "
                                           f"must be signed with it{lost}")
    valid = [c for c in listed.values() if c.not_before <= now <= c.not_after]
    if len(valid) == 1:
        return Signer(valid[0].sha256, "likely", f"{_describe(valid[0])} is likely the signer: it is the only one "
                      f"of {len(listed)} signing certificates valid now (a test login confirms it){lost}")
    pool = valid or list(listed.values())
    newest = max(pool, key=lambda c: (c.not_before, c.not_after)) if valid else max(pool, key=lambda c: c.not_after)
    basis = (f"the newest of the {len(valid)} valid signing certificates" if valid
             else f"the last to expire; none of the {len(listed)} signing certificates is valid now")
    return Signer(newest.sha256, "likely", f"{_describe(newest)} is likely the signer ({basis}), but metadata "
                  f"alone cannot tell which one the IdP uses; a test login confirms it{lost}")


def signer_finding(signer: Signer, where: str) -> Finding:
    return SIGNER.finding(signer.note, actual=signer.sha256, where=where)


def _describe(cert: SnapshotCertificate) -> str:
    return (f"{cert.subject} (SHA-256 {cert.sha256[:23]}…, valid {cert.not_before:%Y-%m-%d} to "
            f"{cert.not_after:%Y-%m-%d})")
