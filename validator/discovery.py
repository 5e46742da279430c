"""The discovery worksheet: the five SAML questions a solutions engineer asks a partner, answered
from the partner's metadata, with the iframe verdict, setup hints in the product's own words and
a draft CRM record.

:func:`build_worksheet` is pure. The live questions are asked at the edge, by
:func:`probed_worksheet`, through the SSRF-safe fetcher: the framing probe of the sign-in URL
(:func:`validator.framing.probe_framing`) and, whether or not the metadata gives a sign-in URL,
the metadata URL inferred from the product's fixed pattern
(:func:`validator.framing.probe_metadata_url`).
The metadata checks themselves run as for ``saml-validate metadata``; the worksheet is built
from that inspection's model (the entity, its endpoints and certificates), and carries the
report assembled from it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from metadata.crm import VENDORS as CRM_VENDORS
from metadata.crm import CRMRecord
from metadata.fetch import FetchPolicy
from metadata.model import Endpoint, EntityDescriptor
from metadata.saml import BINDING_POST, BINDING_REDIRECT, EMAIL
from metadata.urls import redact_url
from metadata.xml import visible
from validator.findings import Severity
from validator.framing import FrameProbe, Origin, probe_framing, probe_metadata_url
from validator.inspection import MetadataInspection
from validator.metadata_facts import CertificateRow, MetadataFacts
from validator.report import Report
from validator.vendor import (
    Detection,
    PublishedMetadata,
    Setting,
    detect_vendor,
    endpoint_urls,
    published_metadata,
    setting,
)

Verdict = Literal["possible", "no"]


@dataclass(frozen=True)
class IframeVerdict:
    verdict: Verdict
    rule: str
    """What the product allows, whatever its headers say today."""
    evidence: str
    """What the live probe saw, or why there was none."""
    alternatives: str | None = None
    """When the login cannot sit in an iframe: what the portal can do instead."""


_OKTA_DOMAIN = re.compile(r"\.(okta|oktapreview|okta-emea)\.com$")
_OKTA_RULE = ("Okta allows its sign-in page in an iframe only on an Okta domain (or a custom domain of the org) "
              "with 'Allow iFrame embedding' turned on and the portal's origin added as a Trusted Origin with the "
              "'iFrame embed' scope (Security › API › Trusted Origins).")
_ENTRA_RULE = "Entra ID forbids framing its sign-in pages; the portal must send the user there in the full window."
_OTHER_RULE = "Only Okta supports the portal's iframe embedding; with any other IdP the login uses the full window."
_ALTERNATIVES = ("Instead of an iframe, the portal can open the IdP's sign-in in a new window (a pop-up opened on "
                 "the user's click) that closes once the login is done, or send the whole page to the IdP (a "
                 "top-level redirect) and take the user back to the portal after the login.")
_CUSTOM_DOMAIN = ("if it is the org's custom domain (confirm it with the partner), embedding works there as on the "
                  "Okta domain: turn on 'Allow iFrame embedding' and add the portal's origin as a Trusted Origin "
                  "with the 'iFrame embed' scope")


def probe_evidence(probe: FrameProbe | None, portal_origin: str | None) -> str:
    """What the live probe of the sign-in URL saw, or why there was none."""
    if probe is None:
        return "not probed (--no-probe, or no sign-in URL)"
    if probe.error is not None:
        return f"the probe of {probe.url} failed: {probe.error}"
    sent = [f"X-Frame-Options: {probe.x_frame_options}"] if probe.x_frame_options else []
    sent += [f"CSP frame-ancestors {sources}" for sources in probe.frame_ancestors]
    said = "; ".join(sent) or "no X-Frame-Options and no CSP frame-ancestors"
    who = portal_origin or "another site"
    return f"{probe.url} answered HTTP {probe.status} with {said}: " + (
        f"a page of {who} may not frame it" if probe.forbids(portal_origin) else f"a page of {who} may frame it")


def iframe_verdict(vendor_key: str | None, probe: FrameProbe | None, portal_origin: str | None,
                   sign_in: str | None = None, *, evidence: str | None = None) -> IframeVerdict:
    """Embedding the IdP's sign-in in the portal's iframe works only with Okta, on an Okta domain
    (DESIGN.md). `evidence` says why there is no probe when it is not the probe's absence."""
    evidence = evidence if evidence is not None else probe_evidence(probe, portal_origin)
    if vendor_key == "okta":
        return _okta_verdict(evidence, probe, portal_origin, sign_in)
    return IframeVerdict("no", _ENTRA_RULE if vendor_key == "entra" else _OTHER_RULE, evidence, _ALTERNATIVES)


def _okta_verdict(evidence: str, probe: FrameProbe | None, portal_origin: str | None,
                  sign_in: str | None) -> IframeVerdict:
    host = _host(sign_in) if sign_in else ""
    custom = f"the sign-in URL's host {host!r} is not an Okta domain: {_CUSTOM_DOMAIN}; " if sign_in and not (
        _OKTA_DOMAIN.search(host)) else ""
    blocked = probe is not None and probe.forbids(portal_origin) is True
    return IframeVerdict("no" if blocked else "possible", _OKTA_RULE, custom + evidence + (
        "; add the portal's origin as a Trusted Origin with 'iFrame embed'" if blocked else ""),
        _ALTERNATIVES if blocked else None)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


@dataclass(frozen=True)
class Hint:
    what: str
    where: str
    """The setting, in the IdP product's own words."""
    value: str


@dataclass(frozen=True)
class ToldRow:
    """One spoken answer against the metadata (validator.interview.told_vs_metadata)."""

    field: str
    told: str | None
    """As said on the call; None: not told."""
    metadata: str | None
    """What the metadata says; None: it does not say."""
    verdict: Literal["same", "differs", "not in the metadata", "not told"]
    detail: str | None = None
    """The near miss named, or why the metadata cannot say."""


@dataclass(frozen=True)
class Worksheet:
    inspection: MetadataInspection
    """The metadata checks, exactly as ``saml-validate metadata`` runs them."""
    report: Report
    """Their report, as ``saml-validate metadata`` shows it."""
    crm: CRMRecord | None
    metadata_url: str | None
    """The metadata URL given (the source, or the CRM record's); an inferred one is `published`."""
    iframe: IframeVerdict
    hints: tuple[Hint, ...]
    draft: str
    """A draft CRM record (TOML) pre-filled from the metadata."""
    published: PublishedMetadata | None = None
    """Without a given metadata URL: where the product publishes it (inferred), or that it publishes none."""
    published_probe: str | None = None
    """What the inferred URL answered when probing is on; None when it was not asked."""
    told: tuple[ToldRow, ...] = ()
    """With the interview's answers (--answers): each against the metadata."""

    @property
    def entity(self) -> EntityDescriptor | None:
        return self.inspection.entity

    @property
    def detection(self) -> Detection | None:
        """The IdP product recognised in the metadata, with its evidence."""
        return detect_vendor(self.entity) if self.entity is not None else None

    @property
    def vendor_name(self) -> str | None:
        """The product's name ("not recognised" when the entity matches none); None without an entity."""
        if self.entity is None:
            return None
        return self.detection.vendor.name if self.detection else "not recognised"

    @property
    def sso(self) -> tuple[Endpoint, ...]:
        idp = self.entity.idp if self.entity is not None else None
        return idp.sso if idp is not None else ()

    @property
    def signing_certificates(self) -> tuple[CertificateRow, ...]:
        return MetadataFacts(self.inspection).signing_certificates()

    @property
    def errors(self) -> list[str]:
        return self._listed(Severity.ERROR)

    @property
    def warnings(self) -> list[str]:
        return self._listed(Severity.WARNING)

    def _listed(self, severity: Severity) -> list[str]:
        # The finding's own message says which claim, URL or certificate: two CRM004 lines differ.
        return [f"{f.code} {f.title}: {f.message}" for f in self.report.sorted_findings if f.severity is severity]


def describes_an_idp(inspection: MetadataInspection) -> bool:
    """Whether the metadata check read one IdP entity to describe. Without one (a failed fetch, a
    page that is not metadata, an aggregate with no entity chosen, an SP's metadata) a worksheet would answer every
    question with "not found": the inspection's findings say what went wrong instead."""
    return inspection.entity is not None and inspection.entity.idp is not None


def sign_in_location(entity: EntityDescriptor | None) -> str | None:
    """The SSO location the portal sends users to, as the metadata gives it: HTTP-Redirect first,
    as the portal's requests use it, else HTTP-POST."""
    endpoints = entity.idp.sso if entity is not None and entity.idp is not None else ()
    by_binding = {e.binding: e.location for e in endpoints}  # the last of a binding, as listed
    return by_binding.get(BINDING_REDIRECT) or by_binding.get(BINDING_POST)


def sign_in_url(inspection: MetadataInspection) -> str | None:
    """The sign-in URL as it may be shown and probed: any password in it hidden."""
    location = sign_in_location(inspection.entity)
    return redact_url(location) if location is not None else None


def build_worksheet(inspection: MetadataInspection, report: Report, crm: CRMRecord | None, *,
                    metadata_url: str | None, probe: FrameProbe | None,
                    published_probe: Callable[[str, str], str] | None = None) -> Worksheet:
    """The worksheet from the inspection. `probe` is what the sign-in URL said about framing;
    `published_probe(url, entity_id)`, when given, asks an inferred metadata URL what it serves."""
    detection = detect_vendor(inspection.entity) if inspection.entity is not None else None
    vendor_key = detection.vendor.key if detection else (
        None if inspection.entity is not None else crm.idp.vendor if crm else None)
    portal = str(Origin.of(crm.sp.acs_url)) if crm else None
    url = metadata_url or (crm.idp.metadata_url if crm else None)
    entity = inspection.entity
    published = published_metadata(vendor_key, entity.entity_id, endpoint_urls(entity)) if (
        entity is not None and url is None) else None
    asked = None
    if published is not None and published.probe_url and entity is not None and published_probe is not None:
        asked = published_probe(published.probe_url, entity.entity_id)
    verdict = iframe_verdict(vendor_key, probe, portal, sign_in_url(inspection))
    return Worksheet(inspection, report, crm, url, verdict, setup_hints(vendor_key, crm),
                     draft_record(inspection, crm, url, published), published, asked)


def probed_worksheet(inspection: MetadataInspection, report: Report, crm: CRMRecord | None, *,
                     metadata_url: str | None, policy: FetchPolicy | None) -> Worksheet:
    """The worksheet with its live questions asked under `policy` (None: --no-probe, nothing asked):
    the sign-in URL's framing headers when the metadata gives one, and the inferred metadata URL
    when the product fixes one, each on its own."""
    if policy is None:
        return build_worksheet(inspection, report, crm, metadata_url=metadata_url, probe=None)
    sso = sign_in_url(inspection)
    return build_worksheet(inspection, report, crm, metadata_url=metadata_url,
                           probe=probe_framing(sso, policy) if sso else None,
                           published_probe=lambda url, entity_id: probe_metadata_url(url, entity_id, policy))


def setup_hints(vendor_key: str | None, crm: CRMRecord | None) -> tuple[Hint, ...]:
    """What the partner's admin enters where, in the product's words; values from the CRM record."""
    def hint(what: str, kind: Setting, value: str) -> Hint:
        return Hint(what, setting(vendor_key, kind), value)

    hints = [
        hint("The portal's entity ID (audience)", "audience", crm.sp.entity_id if crm else "the portal's entity ID"),
        hint("The portal's ACS URL", "acs", crm.sp.acs_url if crm else "the portal's ACS URL"),
        hint("NameID format", "nameid", (crm.idp.nameid_format if crm else None) or EMAIL),
    ]
    for claim in crm.claims if crm else ():
        ids = ", ".join(f"{i} ({name})" for i, name in crm.login_type_ids.items()) if crm and claim.login_type else ""
        value = f"{claim.name} (exactly; values: one of {ids})" if ids else f"{claim.name} (exactly, this case)"
        hints.append(hint("Claim" if claim.required else "Optional claim", "claim", value))
    hints += login_type_hints(crm)
    hints.append(hint("Where sign-in starts", "sign_on", "the portal's login page: SP-initiated only"))
    return tuple(hints)


def login_type_hints(crm: CRMRecord | None) -> list[Hint]:
    """The record's login types, ID → role name: the value the IdP sends for each role."""
    if crm is None or not crm.login_types:
        return []
    claim = next((c.name for c in crm.claims if c.login_type), None)
    where = (f"the value of the {claim!r} claim for the users of this role" if claim else
             "the login type ID the portal issued for this role")
    return [Hint("Login type ID → role", where, f"{t.id} → {t.name}") for t in crm.login_types]


def toml_string(value: str) -> str:
    """`value` as a TOML basic string that reads back exactly. JSON's escapes are TOML's; DEL (which
    TOML refuses) and invisible or bidi characters are written as \\uXXXX too, so that a person
    checking the draft sees them."""
    return "".join(f"\\u{ord(ch):04x}" if ch == "\x7f" or unicodedata.category(ch) in ("Cf", "Zl", "Zp") else ch
                   for ch in json.dumps(value, ensure_ascii=False))


def draft_record(inspection: MetadataInspection, crm: CRMRecord | None, metadata_url: str | None,
                 published: PublishedMetadata | None = None) -> str:
    """A CRM record pre-filled from the metadata's model; what only the portal knows says TODO."""
    entity = inspection.entity
    source = visible(inspection.shown, one_line=True)  # a comment line stays one line
    lines = [
        f"# Draft CRM record written by saml-validate discover from {source}",
        f"# on {inspection.now:%Y-%m-%d}. Check every value with the partner and replace each TODO.",
        *draft_portal(crm),
        "[idp]",
        *_draft_idp(entity, crm, metadata_url),
        *_draft_published(published),
        *_draft_claims(entity, crm),
        *draft_login_types(crm),
    ]
    return "\n".join(lines) + "\n"


def draft_portal(crm: CRMRecord | None) -> list[str]:
    """The draft's [biller] and [sp]: what only the portal knows, from the record or TODO."""
    return [
        "[biller]",
        f"id = {toml_string(crm.biller.id if crm else 'TODO')}",
        f"name = {toml_string(crm.biller.name if crm else 'TODO')}",
        "",
        "[sp]",
        f"entity_id = {toml_string(crm.sp.entity_id if crm else 'TODO: the portal entity ID')}",
        f"acs_url = {toml_string(crm.sp.acs_url if crm else 'TODO: the portal ACS URL')}",
        "",
    ]


def _draft_idp(entity: EntityDescriptor | None, crm: CRMRecord | None, metadata_url: str | None) -> list[str]:
    lines = []
    detection = detect_vendor(entity) if entity is not None else None
    if detection is not None and detection.vendor.key in CRM_VENDORS:
        lines.append(f"vendor = {toml_string(detection.vendor.key)}")
    if entity is not None:
        lines.append(f"entity_id = {toml_string(entity.entity_id)}")
    if metadata_url:
        lines.append(f"metadata_url = {toml_string(metadata_url)}")
    lines += draft_sso_url(sign_in_location(entity))
    formats = list(entity.idp.nameid_formats) if entity is not None and entity.idp is not None else []
    chosen = crm.idp.nameid_format if crm and crm.idp.nameid_format else (EMAIL if EMAIL in formats else (
        formats[0] if formats else None))
    if chosen:
        lines.append(f"nameid_format = {toml_string(chosen)}")
    return lines


def _draft_published(published: PublishedMetadata | None) -> list[str]:
    """An inferred metadata URL, commented out: trust is taken from it only once the partner confirms it."""
    if published is None or published.url is None:
        return []
    return [f"# metadata_url = {toml_string(published.url)}  # inferred, not given: confirm it with the partner"]


def draft_sso_url(location: str | None) -> list[str]:
    """The sign-in location as the metadata gives it; never a user name or password in it, which
    would then live on in the CRM record (MD016 reports them)."""
    if not location:
        return []
    shown = redact_url(location)
    if shown == location:
        return [f"sso_url = {toml_string(location)}"]
    return [f"# The metadata's SSO URL holds a user name or password (MD016), left out here: "
            f"{visible(shown, one_line=True)}",
            f"sso_url = {toml_string('TODO: the SSO URL without a user name or password')}"]


def _draft_claims(entity: EntityDescriptor | None, crm: CRMRecord | None) -> list[str]:
    offered = [a.name for a in entity.idp.attributes] if entity is not None and entity.idp is not None else []
    lines: list[str] = []
    if crm is not None:
        claims = [(c.name, c.required, c.login_type) for c in crm.claims]
    elif offered:
        lines += ["", "# The attributes the metadata offers; mark those the portal needs as required."]
        claims = [(name, False, False) for name in offered]
    else:
        lines += ["", "# The metadata lists no attributes: agree the claim names with the partner, one block each:",
                  "# [[claims]]", '# name = "AccountNumber"', "# required = true"]
        claims = []
    for name, required, is_login_type in claims:
        lines += ["", "[[claims]]", f"name = {toml_string(name)}", f"required = {'true' if required else 'false'}"]
        if is_login_type:
            lines.append("login_type = true")
    return lines


def draft_login_types(crm: CRMRecord | None) -> list[str]:
    if crm is not None and crm.login_types:
        lines = []
        for login_type in crm.login_types:
            lines += ["", "[[login_types]]", f"id = {login_type.id}", f"name = {toml_string(login_type.name)}"]
        return lines
    return ["", "# The login type IDs the portal issued to this biller, one block each:",
            "# [[login_types]]", "# id = 1", '# name = "Customer"']
