"""The discovery worksheet: the five SAML questions a solutions engineer asks a partner, answered
from the partner's metadata, with the iframe verdict, setup hints in the product's own words and
a draft CRM record.

Everything here is pure except :func:`probe_framing`, the one live request (through the
SSRF-safe fetcher): it reads the sign-in URL's ``X-Frame-Options`` and CSP ``frame-ancestors``.
The metadata checks themselves run as for ``saml-validate metadata``; the worksheet is built
from that :class:`~validator.report.Report` and its facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from metadata.fetch import FetchError, FetchPolicy, fetch
from validator.crm import VENDORS as CRM_VENDORS
from validator.crm import CRMRecord
from validator.findings import Severity
from validator.report import Report
from validator.vendor import Setting, setting

REDIRECT, POST = "HTTP-Redirect", "HTTP-POST"
EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


@dataclass(frozen=True)
class FrameProbe:
    """What the sign-in URL said about being framed."""

    url: str
    status: int | None = None
    x_frame_options: str | None = None
    frame_ancestors: str | None = None
    """The CSP ``frame-ancestors`` sources, as sent; None when the CSP has no such directive."""
    error: str | None = None
    """Why the URL could not be asked (the headers are then unknown)."""

    def forbids(self, origin: str | None) -> bool | None:
        """Whether a page of `origin` is refused as the frame's parent; None when unknown.

        CSP ``frame-ancestors`` wins over ``X-Frame-Options`` where both are sent (CSP Level 2 §7.7.1).
        """
        if self.error is not None:
            return None
        own = _origin(self.url)
        if self.frame_ancestors is not None:
            sources = self.frame_ancestors.split()
            if "'none'" in sources:
                return True
            return not any(_matches(s, origin, own) for s in sources)
        xfo = (self.x_frame_options or "").strip().upper()
        if xfo == "DENY":
            return True
        if xfo == "SAMEORIGIN":
            return origin != own
        return False


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _matches(source: str, origin: str | None, own: str) -> bool:
    if source == "*":
        return True
    if source == "'self'":
        return origin == own
    if origin is None:
        return False
    if "://" not in source:  # a bare host source: the scheme of the protected page (https)
        source = f"https://{source}"
    scheme, _, host = source.lower().partition("://")
    want_scheme, _, want_host = origin.partition("://")
    if scheme != want_scheme:
        return False
    return want_host == host or (host.startswith("*.") and want_host.endswith(host[1:]))


def probe_framing(url: str, policy: FetchPolicy | None = None) -> FrameProbe:
    """Ask `url` (the IdP's sign-in URL, without a SAMLRequest) for its framing headers.

    An error status still carries its headers: an IdP answers such a bare request with a 400
    page, framed or not exactly as its real sign-in page is.
    """
    try:
        result = fetch(url, policy or FetchPolicy())
    except FetchError as exc:
        if exc.kind != "status":
            return FrameProbe(url, error=exc.message)
        status = exc.diagnostics.get("status")
        found = exc.diagnostics.get("framing_headers", [])
        headers = dict(h.split(": ", 1) for h in (found if isinstance(found, list) else []))
        return _probe(url, status if isinstance(status, int) else None, headers)
    return _probe(url, result.status, result.headers)


def _probe(url: str, status: int | None, headers: dict[str, str]) -> FrameProbe:
    ancestors = None
    for directive in headers.get("content-security-policy", "").replace(",", ";").split(";"):
        name, _, value = directive.strip().partition(" ")
        if name.lower() == "frame-ancestors":
            ancestors = value.strip()
    return FrameProbe(url, status, headers.get("x-frame-options"), ancestors)


Verdict = Literal["possible", "no"]


@dataclass(frozen=True)
class IframeVerdict:
    verdict: Verdict
    rule: str
    """What the product allows, whatever its headers say today."""
    evidence: str
    """What the live probe saw, or why there was none."""


def iframe_verdict(vendor_key: str | None, probe: FrameProbe | None, portal_origin: str | None) -> IframeVerdict:
    """Embedding the IdP's sign-in in the portal's iframe works only with Okta (DESIGN.md)."""
    if probe is None:
        evidence = "not probed (--no-probe, or no sign-in URL)"
    elif probe.error is not None:
        evidence = f"the probe of {probe.url} failed: {probe.error}"
    else:
        sent = [f"X-Frame-Options: {probe.x_frame_options}"] if probe.x_frame_options else []
        sent += [f"CSP frame-ancestors {probe.frame_ancestors}"] if probe.frame_ancestors is not None else []
        said = "; ".join(sent) or "no X-Frame-Options and no CSP frame-ancestors"
        forbids = probe.forbids(portal_origin)
        who = portal_origin or "another site"
        evidence = f"{probe.url} answered HTTP {probe.status} with {said}: " + (
            f"a page of {who} may not frame it" if forbids else f"a page of {who} may frame it")
    if vendor_key == "okta":
        rule = ("Okta allows its sign-in page in an iframe only on an Okta domain (or a custom domain of the org) "
                "with 'Allow iFrame embedding' turned on and the portal's origin added as a Trusted Origin with the "
                "'iFrame embed' scope (Security › API › Trusted Origins).")
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
        return [f"{f.code} {f.title}" for f in self.report.sorted_findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[str]:
        return [f"{f.code} {f.title}" for f in self.report.sorted_findings if f.severity is Severity.WARNING]


def sign_in_url(facts: dict[str, Any]) -> str | None:
    """The SSO URL the portal sends users to: HTTP-Redirect first, as the portal's requests use it."""
    by_binding = {e.get("binding"): e.get("location") for e in facts.get("sso", [])}
    return by_binding.get(REDIRECT) or by_binding.get(POST)


def build_worksheet(report: Report, crm: CRMRecord | None, *, metadata_url: str | None,
                    probe: FrameProbe | None) -> Worksheet:
    vendor = report.facts.get("vendor")
    vendor_key = vendor.get("key") if isinstance(vendor, dict) else (crm.idp.vendor if crm else None)
    portal = _origin(crm.sp.acs_url) if crm else None
    url = metadata_url or (crm.idp.metadata_url if crm else None)
    return Worksheet(report, crm, url, iframe_verdict(vendor_key, probe, portal), setup_hints(vendor_key, crm),
                     draft_record(report, crm, url))


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
    # A JSON string is a valid TOML basic string: the same escapes, control characters as \\uXXXX.
    return json.dumps(value, ensure_ascii=False)


def draft_record(report: Report, crm: CRMRecord | None, metadata_url: str | None) -> str:
    """A CRM record pre-filled from the metadata; what only the portal knows says TODO."""
    facts = report.facts
    vendor = facts.get("vendor")
    key = vendor.get("key") if isinstance(vendor, dict) else None
    formats = facts.get("nameid_formats") or []
    lines = [
        f"# Draft CRM record written by saml-validate discover from {report.inputs.get('metadata', '?')}",
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
