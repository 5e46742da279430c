"""The discovery worksheet: the five SAML questions a solutions engineer asks a partner, answered
from the partner's metadata, with the iframe verdict, setup hints in the product's own words and
a draft CRM record.

Everything here is pure; the one live request, the framing probe of the sign-in URL, is
:func:`validator.framing.probe_framing`.
The metadata checks themselves run as for ``saml-validate metadata``; the worksheet is built
from that :class:`~validator.report.Report` and its facts.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from metadata.crm import VENDORS as CRM_VENDORS
from metadata.crm import CRMRecord
from metadata.saml import EMAIL
from metadata.xml import visible
from validator.findings import Severity
from validator.framing import FrameProbe, Origin
from validator.report import Report
from validator.vendor import Setting, setting

REDIRECT, POST = "HTTP-Redirect", "HTTP-POST"


Verdict = Literal["possible", "no"]


@dataclass(frozen=True)
class IframeVerdict:
    verdict: Verdict
    rule: str
    """What the product allows, whatever its headers say today."""
    evidence: str
    """What the live probe saw, or why there was none."""


_OKTA_DOMAIN = re.compile(r"\.(okta|oktapreview|okta-emea)\.com$")


def iframe_verdict(vendor_key: str | None, probe: FrameProbe | None, portal_origin: str | None,
                   sign_in: str | None = None) -> IframeVerdict:
    """Embedding the IdP's sign-in in the portal's iframe works only with Okta, on an Okta domain
    (DESIGN.md)."""
    if probe is None:
        evidence = "not probed (--no-probe, or no sign-in URL)"
    elif probe.error is not None:
        evidence = f"the probe of {probe.url} failed: {probe.error}"
    else:
        sent = [f"X-Frame-Options: {probe.x_frame_options}"] if probe.x_frame_options else []
        sent += [f"CSP frame-ancestors {sources}" for sources in probe.frame_ancestors]
        said = "; ".join(sent) or "no X-Frame-Options and no CSP frame-ancestors"
        forbids = probe.forbids(portal_origin)
        who = portal_origin or "another site"
        evidence = f"{probe.url} answered HTTP {probe.status} with {said}: " + (
            f"a page of {who} may not frame it" if forbids else f"a page of {who} may frame it")
    if vendor_key == "okta":
        rule = ("Okta allows its sign-in page in an iframe only on an Okta domain (or a custom domain of the org) "
                "with 'Allow iFrame embedding' turned on and the portal's origin added as a Trusted Origin with the "
                "'iFrame embed' scope (Security › API › Trusted Origins).")
        host = urlsplit(sign_in).hostname or "" if sign_in else ""
        if sign_in and not _OKTA_DOMAIN.search(host):
            return IframeVerdict("no", rule, f"the sign-in URL's host {host!r} is not an Okta domain; if it is the "
                                 f"org's custom domain, confirm it with the partner; {evidence}")
        blocked = probe is not None and probe.forbids(portal_origin) is True
        return IframeVerdict("no" if blocked else "possible", rule, evidence + (
            "; add the portal's origin as a Trusted Origin with 'iFrame embed'" if blocked else ""))
    if vendor_key == "entra":
        rule = "Entra ID forbids framing its sign-in pages; the portal must send the user there in the full window."
    else:
        rule = "Only Okta supports the portal's iframe embedding; with any other IdP the login uses the full window."
    return IframeVerdict("no", rule, evidence)


@dataclass(frozen=True)
class Hint:
    what: str
    where: str
    """The setting, in the IdP product's own words."""
    value: str


@dataclass(frozen=True)
class Worksheet:
    report: Report
    """The metadata checks, exactly as ``saml-validate metadata`` reports them."""
    crm: CRMRecord | None
    metadata_url: str | None
    iframe: IframeVerdict
    hints: tuple[Hint, ...]
    draft: str
    """A draft CRM record (TOML) pre-filled from the metadata."""

    @property
    def facts(self) -> dict[str, Any]:
        return self.report.facts

    @property
    def vendor(self) -> dict[str, Any] | None:
        found = self.facts.get("vendor")
        return found if isinstance(found, dict) else None

    @property
    def vendor_key(self) -> str | None:
        return self.vendor["key"] if self.vendor else (self.crm.idp.vendor if self.crm else None)

    @property
    def sso(self) -> list[dict[str, str]]:
        return list(self.facts.get("sso", []))

    @property
    def signing_certificates(self) -> list[dict[str, Any]]:
        return [c for c in self.facts.get("certificates", []) if c.get("signing")]

    @property
    def errors(self) -> list[str]:
        return self._listed(Severity.ERROR)

    @property
    def warnings(self) -> list[str]:
        return self._listed(Severity.WARNING)

    def _listed(self, severity: Severity) -> list[str]:
        # The finding's own message says which claim, URL or certificate: two CRM004 lines differ.
        return [f"{f.code} {f.title}: {f.message}" for f in self.report.sorted_findings if f.severity is severity]


def describes_an_idp(report: Report) -> bool:
    """Whether the metadata check read one IdP entity to describe. Without one (a failed fetch, a
    page that is not metadata, an aggregate with no entity chosen, an SP's metadata) a worksheet would answer every
    question with "not found": the report's findings say what went wrong instead."""
    return "entity_id" in report.facts and "sso" in report.facts  # "sso": the entity has an IdP role


def sign_in_url(facts: dict[str, Any]) -> str | None:
    """The SSO URL the portal sends users to: HTTP-Redirect first, as the portal's requests use it."""
    by_binding = {e.get("binding"): e.get("location") for e in facts.get("sso", [])}
    return by_binding.get(REDIRECT) or by_binding.get(POST)


def build_worksheet(report: Report, crm: CRMRecord | None, *, metadata_url: str | None,
                    probe: FrameProbe | None) -> Worksheet:
    vendor = report.facts.get("vendor")
    vendor_key = vendor.get("key") if isinstance(vendor, dict) else (crm.idp.vendor if crm else None)
    portal = str(Origin.of(crm.sp.acs_url)) if crm else None
    url = metadata_url or (crm.idp.metadata_url if crm else None)
    verdict = iframe_verdict(vendor_key, probe, portal, sign_in_url(report.facts))
    return Worksheet(report, crm, url, verdict, setup_hints(vendor_key, crm), draft_record(report, crm, url))


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
        ids = ", ".join(str(i) for i in crm.login_type_ids) if crm and claim.login_type else ""
        value = f"{claim.name} (exactly; values: one of {ids})" if ids else f"{claim.name} (exactly, this case)"
        hints.append(hint("Claim" if claim.required else "Optional claim", "claim", value))
    hints.append(hint("Where sign-in starts", "sign_on", "the portal's login page: SP-initiated only"))
    return tuple(hints)


def _toml(value: str) -> str:
    """`value` as a TOML basic string that reads back exactly. JSON's escapes are TOML's; DEL (which
    TOML refuses) and invisible or bidi characters are written as \\uXXXX too, so that a person
    checking the draft sees them."""
    return "".join(f"\\u{ord(ch):04x}" if ch == "\x7f" or unicodedata.category(ch) in ("Cf", "Zl", "Zp") else ch
                   for ch in json.dumps(value, ensure_ascii=False))


def draft_record(report: Report, crm: CRMRecord | None, metadata_url: str | None) -> str:
    """A CRM record pre-filled from the metadata; what only the portal knows says TODO."""
    facts = report.facts
    vendor = facts.get("vendor")
    key = vendor.get("key") if isinstance(vendor, dict) else None
    formats = facts.get("nameid_formats") or []
    source = visible(report.inputs.get("metadata", "?"), one_line=True)  # a comment line stays one line
    lines = [
        f"# Draft CRM record written by saml-validate discover from {source}",
        f"# on {report.clock:%Y-%m-%d}. Check every value with the partner and replace each TODO.",
        "[biller]",
        f"id = {_toml(crm.biller.id if crm else 'TODO')}",
        f"name = {_toml(crm.biller.name if crm else 'TODO')}",
        "",
        "[sp]",
        f"entity_id = {_toml(crm.sp.entity_id if crm else 'TODO: the portal entity ID')}",
        f"acs_url = {_toml(crm.sp.acs_url if crm else 'TODO: the portal ACS URL')}",
        "",
        "[idp]",
    ]
    if key in CRM_VENDORS:
        lines.append(f"vendor = {_toml(key)}")
    if isinstance(facts.get("entity_id"), str):
        lines.append(f"entity_id = {_toml(facts['entity_id'])}")
    if metadata_url:
        lines.append(f"metadata_url = {_toml(metadata_url)}")
    if sso := sign_in_url(facts):
        lines.append(f"sso_url = {_toml(sso)}")
    chosen = crm.idp.nameid_format if crm and crm.idp.nameid_format else (EMAIL if EMAIL in formats else (
        formats[0] if formats else None))
    if chosen:
        lines.append(f"nameid_format = {_toml(chosen)}")
    if crm is not None:
        claims = [(c.name, c.required, c.login_type) for c in crm.claims]
    elif facts.get("offered_attributes"):
        lines += ["", "# The attributes the metadata offers; mark those the portal needs as required."]
        claims = [(name, False, False) for name in facts["offered_attributes"]]
    else:
        lines += ["", "# The metadata lists no attributes: agree the claim names with the partner, one block each:",
                  "# [[claims]]", '# name = "AccountNumber"', "# required = true"]
        claims = []
    for name, required, is_login_type in claims:
        lines += ["", "[[claims]]", f"name = {_toml(name)}", f"required = {'true' if required else 'false'}"]
        if is_login_type:
            lines.append("login_type = true")
    if crm is not None and crm.login_types:
        for login_type in crm.login_types:
            lines += ["", "[[login_types]]", f"id = {login_type.id}", f"name = {_toml(login_type.name)}"]
    else:
        lines += ["", "# The login type IDs the portal issued to this biller, one block each:",
                  "# [[login_types]]", "# id = 1", '# name = "Customer"']
    return "\n".join(lines) + "\n"
