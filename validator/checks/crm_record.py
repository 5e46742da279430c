"""Rules for the CRM record itself (``saml-validate crm REC``): CRM101 upward.

The loader (:mod:`metadata.crm`) already guarantees the record's shape; these rules judge
its values, so that a wrong record is caught before it is compared with a partner's
metadata or responses. Every rule runs and reports every occurrence.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from metadata.crm import CRMRecord, quoted
from metadata.saml import NAMEID_SAML11, NAMEID_SAML20
from metadata.urls import redact_url
from validator.findings import Finding, Severity, rule

SUBJECT = "crm-record"

BILLER_ID_EMPTY = rule(
    "CRM101", "Biller ID is empty", Severity.ERROR, SUBJECT,
    what="biller.id has a value.",
    why="""The ID ties the record to the biller in the CRM: reports, sweep history and support
        tickets are filed under it. A report without it cannot be traced back to the partner.""",
    fix='Copy the biller\'s ID from the CRM into biller.id, for example id = "B-10442".',
)
CLAIM_NAME_PADDED = rule(
    "CRM102", "Claim name is empty or has surrounding whitespace", Severity.ERROR, SUBJECT,
    what="Each claim name has text, and no space, tab or line break at its start or end.",
    why="""The portal looks claims up by their exact name. "Email " is not "Email", so a stray
        space makes the claim go missing at login, and most admin consoles do not show it.""",
    fix="Remove the surrounding whitespace, or delete the empty [[claims]] entry.",
)
CLAIM_NAME_DUPLICATE = rule(
    "CRM103", "Claim name listed twice", Severity.ERROR, SUBJECT,
    what="No two [[claims]] entries have exactly the same name.",
    why="""The record is the contract the partner configures from. A name listed twice usually
        means one entry was meant to be another claim, or the two entries disagree on whether
        the claim is required.""",
    fix="Keep one entry per claim name and merge their settings.",
)
CLAIM_NAME_CASE = rule(
    "CRM104", "Claim names differ only by case", Severity.WARNING, SUBJECT,
    what='No two claim names are equal apart from upper and lower case, like "Email" and "email".',
    why="""Claim names are matched case-sensitively, but people read them case-insensitively.
        Two names that differ only by case are almost always a typo, and the partner will
        configure the wrong one.""",
    fix="Decide which spelling the portal expects; rename or remove the other.",
)
LOGIN_TYPE_CLAIM_MISSING = rule(
    "CRM105", "No login-type claim", Severity.ERROR, SUBJECT,
    what="When the record lists login types, one claim is marked login_type = true.",
    why="""Each user's login type ID reaches the portal in that claim. Without it the portal
        cannot tell which role a user has, and every login fails.""",
    fix="Add login_type = true to the claim that carries the login type ID (for example LoginTypeId).",
)
LOGIN_TYPE_CLAIM_SEVERAL = rule(
    "CRM106", "More than one login-type claim", Severity.ERROR, SUBJECT,
    what="At most one claim is marked login_type = true.",
    why="""A user has one login type. With two claims marked, it is unclear which one the portal
        reads, and the partner may send different IDs in each.""",
    fix="Keep login_type = true on one claim only.",
)
LOGIN_TYPES_MISSING = rule(
    "CRM107", "Login-type claim but no login types", Severity.ERROR, SUBJECT,
    what="When a claim is marked login_type = true, the record lists at least one [[login_types]] entry.",
    why="""The login-type claim must carry one of the configured login type IDs. With none
        configured, every value the partner sends is rejected.""",
    fix="""Add the login type IDs the portal issued to this biller as [[login_types]] entries,
        or remove login_type = true if the biller has no login types.""",
)
LOGIN_TYPE_ID_DUPLICATE = rule(
    "CRM108", "Login type ID listed twice", Severity.ERROR, SUBJECT,
    what="Every [[login_types]] entry has its own ID.",
    why="""An ID stands for exactly one role. Listed twice, perhaps under two names, nobody can
        tell which role users with that ID get.""",
    fix="Give each login type the ID the portal issued for it, and remove the duplicate.",
)
LOGIN_TYPE_ID_NEGATIVE = rule(
    "CRM109", "Login type ID is negative", Severity.ERROR, SUBJECT,
    what="Login type IDs are 0 or greater.",
    why="""The portal issues login type IDs as non-negative numbers, so a negative ID is a typo
        that no user will ever carry.""",
    fix="Use the ID exactly as the portal issued it.",
)
LOGIN_TYPE_NAME_EMPTY = rule(
    "CRM110", "Login type has no name", Severity.WARNING, SUBJECT,
    what='Each login type has a name, for example "Customer".',
    why="""The partner assigns users to roles by name; reports and worksheets show it next to
        the ID. Without a name nobody can tell what the ID stands for.""",
    fix="Fill in the role's name as the portal calls it.",
)
LOGIN_TYPE_NAME_DUPLICATE = rule(
    "CRM111", "Login type name used twice", Severity.WARNING, SUBJECT,
    what="No two login types share a name, ignoring case and surrounding spaces.",
    why="""The partner picks a login type by its name. Two IDs with the same name make them
        guess, and users end up with the wrong role.""",
    fix="Give each login type a distinct name, or remove the duplicate if both are the same role.",
)
VALUE_PADDED = rule(
    "CRM112", "Value has surrounding whitespace", Severity.ERROR, SUBJECT,
    what="""Entity IDs, URLs and the NameID format in [sp] and [idp] have no space, tab or line
        break at their start or end.""",
    why="""SAML compares these values character by character. An entity ID with a trailing
        space is a different entity ID, so the issuer or audience check fails, and the space
        is invisible in most consoles.""",
    fix="Remove the whitespace.",
)
ENTITY_ID_NOT_URI = rule(
    "CRM113", "Entity ID is not an absolute URI", Severity.ERROR, SUBJECT,
    what="""sp.entity_id, and idp.entity_id when given, are absolute URIs: a URL such as
        https://sso.portal.example/saml or a URN such as urn:example:portal.""",
    why="""SAML 2.0 requires entity IDs to be URIs (core, section 8.3.6). IdPs refuse other
        values, or accept them and send an issuer or audience nobody matches.""",
    fix="Use the full entity ID, scheme included (https:// or urn:), exactly as the metadata has it.",
)
URL_NOT_HTTPS = rule(
    "CRM114", "URL is not an absolute https URL", Severity.ERROR, SUBJECT,
    what="sp.acs_url, and idp.metadata_url and idp.sso_url when given, are full https:// URLs with a host.",
    why="""These URLs carry signed assertions with personal data, and the metadata that holds the
        IdP's signing certificate. Over plain http anyone on the way can read the data or swap the
        certificate. A relative URL or one without a host cannot be used by the other side at all.""",
    fix="Use the full https:// URL, for example https://sso.portal.example/saml/acs.",
)
URL_LOCAL_HTTP = rule(
    "CRM115", "URL uses http on the local machine", Severity.WARNING, SUBJECT,
    what="Flags http:// URLs whose host is localhost, 127.0.0.1 or ::1.",
    why="""Plain http is fine for a test set-up whose traffic never leaves the machine, but such
        a record cannot go live: partners cannot reach localhost.""",
    fix="Before go-live, replace it with the production https:// URL.",
)
NAMEID_FORMAT_UNKNOWN = rule(
    "CRM116", "NameID format is not one SAML defines", Severity.WARNING, SUBJECT,
    what="idp.nameid_format, when given, is one of the NameID formats defined by SAML (core, section 8.3).",
    why="""IdPs offer NameID formats by their exact URN. A misspelt or invented format is not
        recognised: the IdP ignores it, or refuses the login with InvalidNameIDPolicy.""",
    fix="""Use a standard URN, most often urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress
        or urn:oasis:names:tc:SAML:2.0:nameid-format:persistent.""",
)
URL_CREDENTIALS = rule(
    "CRM117", "URL carries a user name or password", Severity.ERROR, SUBJECT,
    what="No URL of the record has a user name or password before its host (https://user:secret@host/…).",
    why="""The record is shared with the partner and the portal; a password in a URL ends up in
        browsers, logs and reports. The metadata fetcher refuses such URLs (NET002). Reports show
        it as ***.""",
    fix="Remove the user name and password from the URL; change that password, since the record was shared.",
)

NAMEID_FORMATS: tuple[str, ...] = (
    *(NAMEID_SAML11 + name for name in ("unspecified", "emailAddress", "X509SubjectName")),
    NAMEID_SAML11 + "WindowsDomainQualifiedName",
    *(NAMEID_SAML20 + name for name in ("kerberos", "entity", "persistent", "transient", "encrypted")),
)
"""The NameID formats of SAML 2.0 core section 8.3, plus "encrypted" (section 3.4.1.1)."""

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def check_record(record: CRMRecord, source: str) -> list[Finding]:
    """Every finding about the record's own values.

    `source` names the record for the caller's report; findings locate themselves by key
    path (``claims[1].name``) alone, as the report already lists its inputs.
    """
    findings: list[Finding] = []
    for check in _CHECKS:
        findings.extend(check(record))
    return findings


def _biller(record: CRMRecord) -> Iterator[Finding]:
    if not record.biller.id.strip():
        yield BILLER_ID_EMPTY.finding(
            "The record has no biller ID.", where="biller.id", actual=quoted(record.biller.id)
        )


def _claim_names(record: CRMRecord) -> Iterator[Finding]:
    first_exact: dict[str, int] = {}
    first_folded: dict[str, int] = {}
    for i, claim in enumerate(record.claims):
        name, where = claim.name, f"claims[{i}].name"
        if not name.strip():
            yield CLAIM_NAME_PADDED.finding("A claim has an empty name.", where=where, actual=quoted(name))
        elif name != name.strip():
            yield CLAIM_NAME_PADDED.finding(
                f"The claim name {quoted(name)} has whitespace around it.",
                where=where, expected=quoted(name.strip()), actual=quoted(name),
            )
        if name in first_exact:
            yield CLAIM_NAME_DUPLICATE.finding(
                f"The claim {quoted(name)} is listed again; first at claims[{first_exact[name]}].",
                where=where, actual=quoted(name),
            )
            continue
        first_exact[name] = i
        folded = name.casefold()
        if folded in first_folded:
            j = first_folded[folded]
            other = record.claims[j].name
            yield CLAIM_NAME_CASE.finding(
                f"The claim {quoted(name)} differs from {quoted(other)} (claims[{j}]) only by case.",
                where=where, expected=quoted(other), actual=quoted(name),
            )
        else:
            first_folded[folded] = i


def _login_type_claim(record: CRMRecord) -> Iterator[Finding]:
    marked = [i for i, claim in enumerate(record.claims) if claim.login_type]
    if record.login_types and not marked:
        yield LOGIN_TYPE_CLAIM_MISSING.finding(
            f"The record lists {len(record.login_types)} login type(s) but no claim carries them.",
            where="claims", expected="one claim with login_type = true", actual="none",
        )
    for i in marked[1:]:
        first = record.claims[marked[0]].name
        yield LOGIN_TYPE_CLAIM_SEVERAL.finding(
            f"The claim {quoted(record.claims[i].name)} is marked as the login-type claim, "
            f"but {quoted(first)} already is.",
            where=f"claims[{i}].login_type", expected="one claim with login_type = true",
            actual=f"{len(marked)} claims",
        )
    if marked and not record.login_types:
        yield LOGIN_TYPES_MISSING.finding(
            f"The claim {quoted(record.claims[marked[0]].name)} must carry a login type ID, "
            "but the record lists no login types.",
            where="login_types", expected="at least one [[login_types]] entry", actual="none",
        )


def _login_types(record: CRMRecord) -> Iterator[Finding]:
    first_id: dict[int, int] = {}
    first_name: dict[str, int] = {}
    for i, login_type in enumerate(record.login_types):
        ident, name = login_type.id, login_type.name
        if ident in first_id:
            yield LOGIN_TYPE_ID_DUPLICATE.finding(
                f"The login type ID {ident} is listed again; first at login_types[{first_id[ident]}].",
                where=f"login_types[{i}].id", actual=str(ident),
            )
        else:
            first_id[ident] = i
        if ident < 0:
            yield LOGIN_TYPE_ID_NEGATIVE.finding(
                f"The login type ID {ident} is negative.",
                where=f"login_types[{i}].id", expected="0 or greater", actual=str(ident),
            )
        # Names are for people, so "Customer" and "customer " count as the same name.
        key = name.strip().casefold()
        if not key:
            yield LOGIN_TYPE_NAME_EMPTY.finding(
                f"The login type {ident} has no name.", where=f"login_types[{i}].name", actual=quoted(name)
            )
        elif key in first_name:
            yield LOGIN_TYPE_NAME_DUPLICATE.finding(
                f"The name {quoted(name)} is also used by login_types[{first_name[key]}].",
                where=f"login_types[{i}].name", actual=quoted(name),
            )
        else:
            first_name[key] = i


def _uris(record: CRMRecord) -> Iterator[Finding]:
    sp, idp = record.sp, record.idp
    values = {
        "sp.entity_id": sp.entity_id,
        "idp.entity_id": idp.entity_id,
        "sp.acs_url": sp.acs_url,
        "idp.metadata_url": idp.metadata_url,
        "idp.sso_url": idp.sso_url,
        "idp.nameid_format": idp.nameid_format,
    }
    for where, raw in values.items():
        if raw is None:
            continue
        value = raw.strip()
        if raw != value:
            yield VALUE_PADDED.finding(
                f"{where} has whitespace around it.", where=where, expected=quoted(value), actual=quoted(raw)
            )
        # The rules below judge the value without its whitespace, so one fault is reported once.
        if where.endswith("entity_id"):
            yield from _entity_id(where, value)
        elif where.endswith("_url"):
            yield from _https_url(where, value)
        else:
            yield from _nameid_format(where, value)


def _entity_id(where: str, value: str) -> Iterator[Finding]:
    if not _is_absolute_uri(value):
        yield ENTITY_ID_NOT_URI.finding(
            f"{where} is not an absolute URI.",
            where=where, expected="a URL (https://…) or a URN (urn:…)", actual=quoted(value),
        )


def _https_url(where: str, value: str) -> Iterator[Finding]:
    expected = "an absolute https:// URL"
    shown = redact_url(value)
    if shown != value:
        yield URL_CREDENTIALS.finding(f"{where} has a user name or password before its host (shown as ***).",
                                      where=where, expected="https://host/…", actual=quoted(shown))
    scheme, host = _scheme_and_host(value)
    if not host or not _is_absolute_uri(value):
        yield URL_NOT_HTTPS.finding(
            f"{where} is not a full URL with a host.", where=where, expected=expected, actual=quoted(shown)
        )
    elif scheme == "http" and host in LOCAL_HOSTS:
        yield URL_LOCAL_HTTP.finding(
            f"{where} uses plain http on the local machine: fine for testing, not for go-live.",
            where=where, expected=expected, actual=quoted(shown),
        )
    elif scheme != "https":
        yield URL_NOT_HTTPS.finding(
            f"{where} uses {scheme}://, not https://.", where=where, expected=expected, actual=quoted(shown)
        )


def _nameid_format(where: str, value: str) -> Iterator[Finding]:
    if value in NAMEID_FORMATS:
        return
    close = difflib.get_close_matches(value, NAMEID_FORMATS, n=1, cutoff=0.8)
    hint = f" Did you mean {close[0]}?" if close else ""
    yield NAMEID_FORMAT_UNKNOWN.finding(
        f"{quoted(value)} is not a NameID format defined by SAML.{hint}",
        where=where,
        expected=quoted(close[0]) if close else "a SAML-defined NameID format",
        actual=quoted(value),
    )


def _scheme_and_host(url: str) -> tuple[str, str | None]:
    """The lower-cased scheme and host of `url`; no host when it has none or cannot be parsed."""
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "", None


def _is_absolute_uri(value: str) -> bool:
    """RFC 3986 section 4.3: a scheme, a colon and something after it; no spaces or controls."""
    scheme, colon, rest = value.partition(":")
    return (
        bool(colon and rest and scheme[:1].isascii() and scheme[:1].isalpha())
        and all(ch.isascii() and (ch.isalnum() or ch in "+-.") for ch in scheme)
        and not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    )


_CHECKS: tuple[Callable[[CRMRecord], Iterator[Finding]], ...] = (
    _biller,
    _claim_names,
    _login_type_claim,
    _login_types,
    _uris,
)
