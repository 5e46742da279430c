"""Which IdP product published this metadata, told from the entity ID and endpoint URLs.

Detection is a fact with its evidence, never a finding: it picks the vendor's own words for
fixes ("Audience URI (SP Entity ID)" in Okta, "Identifier (Entity ID)" in Entra ID).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, quote, urlsplit

from metadata.certs import CertificateError, CertificateFacts
from metadata.model import EntityDescriptor
from metadata.urls import redact_url


@dataclass(frozen=True)
class Vendor:
    key: str
    """The CRM record's vendor key: okta, entra, adfs, google, ping (PingOne), pingfederate, onelogin, …;
    a product no record names yet (forgerock, vmware, openconext) has a key of its own all the same."""
    name: str


VENDORS = {
    v.key: v
    for v in (
        Vendor("okta", "Okta"),
        Vendor("entra", "Microsoft Entra ID"),
        Vendor("adfs", "Microsoft AD FS"),
        Vendor("google", "Google Workspace"),
        Vendor("ping", "PingOne"),
        Vendor("pingfederate", "PingFederate"),
        Vendor("onelogin", "OneLogin"),
        Vendor("keycloak", "Keycloak"),
        Vendor("shibboleth", "Shibboleth IdP"),
        Vendor("simplesamlphp", "SimpleSAMLphp"),
        Vendor("jumpcloud", "JumpCloud"),
        Vendor("auth0", "Auth0"),
        Vendor("forgerock", "ForgeRock AM / OpenAM"),
        Vendor("vmware", "VMware vCenter SSO"),
        Vendor("openconext", "OpenConext EngineBlock (SURFconext)"),
    )
}

# (vendor key, what the pattern is matched against, pattern, evidence text)
_PATTERNS: list[tuple[str, str, re.Pattern[str], str]] = [
    ("okta", "entity", re.compile(r"^https?://www\.okta\.com/"), "entity ID on www.okta.com"),
    ("okta", "url", re.compile(r"^https://[^/]+\.(okta|oktapreview|okta-emea)\.com/"), "endpoint on an Okta domain"),
    ("okta", "url", re.compile(r"/app/[^/]+/[^/]+/sso/saml$"), "Okta app SSO path /app/…/sso/saml"),
    ("entra", "entity", re.compile(r"^https://sts\.windows\.net/[0-9a-f-]{36}/$"), "entity ID https://sts.windows.net/<tenant>/"),
    ("entra", "url", re.compile(r"^https://login\.(microsoftonline|windows)\.(com|net)/"), "endpoint on login.microsoftonline.com"),
    ("adfs", "entity", re.compile(r"/adfs/services/trust/?$", re.I), "entity ID ending /adfs/services/trust"),
    ("adfs", "url", re.compile(r"/adfs/ls/?$", re.I), "endpoint /adfs/ls/"),
    ("google", "entity", re.compile(r"^https://accounts\.google\.com/o/saml2"), "entity ID on accounts.google.com"),
    ("google", "url", re.compile(r"^https://accounts\.google\.com/o/saml2/"), "endpoint on accounts.google.com"),
    ("ping", "entity", re.compile(r"^https://auth\.pingone\.(com|eu|asia|ca)/"), "entity ID on auth.pingone"),
    ("ping", "url", re.compile(r"^https://[^/]*(pingone|pingidentity)\.(com|eu|asia|ca)/"), "endpoint on a Ping domain"),
    ("onelogin", "entity", re.compile(r"^https://app\.onelogin\.com/saml/metadata/"), "entity ID on app.onelogin.com"),
    ("onelogin", "url", re.compile(r"^https://[^/]+\.onelogin\.com/trust/saml2/"), "endpoint /trust/saml2 on onelogin.com"),
    ("keycloak", "entity", re.compile(r"/realms/[^/]+/?$"), "entity ID ending /realms/<realm>"),
    ("keycloak", "url", re.compile(r"/realms/[^/]+/protocol/saml"), "endpoint /realms/<realm>/protocol/saml"),
    ("shibboleth", "entity", re.compile(r"/idp/shibboleth/?$"), "entity ID ending /idp/shibboleth"),
    ("shibboleth", "url", re.compile(r"/idp/profile/SAML2/"), "endpoint /idp/profile/SAML2/"),
    ("simplesamlphp", "url", re.compile(r"/saml2/idp/(SSOService|metadata)\.php"), "SimpleSAMLphp endpoint saml2/idp/*.php"),
    ("simplesamlphp", "entity", re.compile(r"/saml2/idp/metadata\.php$"), "entity ID …/saml2/idp/metadata.php"),
    ("jumpcloud", "url", re.compile(r"^https://sso\.jumpcloud\.com/"), "endpoint on sso.jumpcloud.com"),
    ("auth0", "entity", re.compile(r"^urn:[^:]+\.auth0\.com$"), "entity ID urn:<tenant>.auth0.com"),
    ("auth0", "url", re.compile(r"^https://[^/]+\.auth0\.com/samlp/"), "endpoint /samlp/ on auth0.com"),
]


def _split(value: str) -> SplitResult | None:
    """`value` as an http(s) URL with a host, or None (a URN, free text, a malformed URL)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # a malformed port raises here, not later
    except ValueError:
        return None
    return parts if parts.scheme in ("http", "https") and parts.hostname else None


def _path(value: str) -> str:
    parts = _split(value)
    return parts.path if parts is not None else ""


_PING_CLOUD = ("pingone.com", "pingone.eu", "pingone.asia", "pingone.ca", "pingidentity.com")
_OPENAM_SERVICES = {"SSORedirect", "SSOPOST", "SSOSoap", "IDPSloRedirect", "IDPSloPOST", "IDPSloSoap"}


def _pingfederate(path: str) -> Callable[[str], bool]:
    """PingFederate's fixed runtime path, on a host of the partner's own (PingOne's cloud hosts
    serve the same paths for PingOne classic)."""
    def test(value: str) -> bool:
        host = (_split(value) or urlsplit("")).hostname or ""
        return _path(value) == path and not any(host == d or host.endswith("." + d) for d in _PING_CLOUD)
    return test


def _openam_url(value: str) -> bool:
    """An OpenAM / ForgeRock AM endpoint: …/<service>/metaAlias/<realm…>/<alias>."""
    segments = _path(value).split("/")
    return any(s == "metaAlias" and i > 0 and segments[i - 1] in _OPENAM_SERVICES for i, s in enumerate(segments))


# Told by parsing the value (urllib.parse), never by a pattern over it: (vendor key, target, test, evidence).
_PARSED: list[tuple[str, str, Callable[[str], bool], str]] = [
    ("pingfederate", "url", _pingfederate("/idp/SSO.saml2"), "PingFederate endpoint /idp/SSO.saml2"),
    ("pingfederate", "url", _pingfederate("/idp/SLO.saml2"), "PingFederate endpoint /idp/SLO.saml2"),
    ("forgerock", "url", _openam_url, "OpenAM/ForgeRock endpoint …/<service>/metaAlias/<alias>"),
    ("vmware", "entity", lambda v: _path(v).startswith("/websso/SAML2/Metadata/"),
     "entity ID …/websso/SAML2/Metadata/<domain>"),
    ("vmware", "url", lambda v: _path(v).startswith(("/websso/SAML2/SSO/", "/websso/SAML2/SLO/")),
     "vCenter endpoint /websso/SAML2/SSO/<domain>"),
    ("openconext", "entity", lambda v: _path(v) == "/authentication/idp/metadata",
     "EngineBlock entity ID …/authentication/idp/metadata"),
    ("openconext", "url", lambda v: _path(v) == "/authentication/idp/single-sign-on",
     "EngineBlock endpoint /authentication/idp/single-sign-on"),
    ("jumpcloud", "cert", lambda v: "OU=JumpCloudSAMLIdP" in v.split(","),
     "signing certificate made by JumpCloud (OU=JumpCloudSAMLIdP)"),
]
_RULES = [(key, target, pattern.search, text) for key, target, pattern, text in _PATTERNS] + _PARSED


@dataclass(frozen=True)
class Detection:
    vendor: Vendor
    evidence: tuple[str, ...]


def endpoint_urls(entity: EntityDescriptor) -> list[str]:
    return [e.location for role in entity.idp_roles for e in (*role.sso, *role.slo)]


def _subjects(entity: EntityDescriptor) -> list[str]:
    subjects = []
    for cert in (c for role in entity.idp_roles for k in role.keys for c in k.certificates if c.der):
        try:
            subjects.append(CertificateFacts(cert.der or b"").subject)
        except CertificateError:
            continue
    return subjects


def detect_vendor(entity: EntityDescriptor) -> Detection | None:
    """The vendor with the most evidence, or None when nothing matches."""
    return detect(entity.entity_id, endpoint_urls(entity), _subjects(entity))


def detect(entity_id: str, urls: Sequence[str], subjects: Sequence[str] = ()) -> Detection | None:
    """The vendor with the most evidence among the entity ID, the endpoint URLs and the signing
    certificates' subjects; None when nothing matches (never a guess)."""
    targets = {"entity": [entity_id], "url": list(urls), "cert": list(subjects)}
    evidence: dict[str, list[str]] = {}
    for key, target, test, text in _RULES:
        found = next((value for value in targets[target] if test(value)), None)
        if found is not None:
            evidence.setdefault(key, []).append(f"{text}: {redact_url(found)}")
    if not evidence:
        return None
    best = max(evidence, key=lambda k: len(evidence[k]))
    return Detection(VENDORS[best], tuple(evidence[best]))


@dataclass(frozen=True)
class PublishedMetadata:
    """Where the product publishes this IdP's metadata, inferred from the URLs it fixes; or that it
    publishes none. Never fetched here: :func:`validator.framing.probe_metadata_url` asks."""

    url: str | None
    """The inferred URL (it may hold a placeholder in <…>), or None when the product publishes none."""
    how: str
    """How the URL follows from the metadata, or what to do instead of a URL."""
    probe_url: str | None = None
    """The URL a probe may fetch to confirm it: `url` itself, its part without a placeholder, or None."""


def _origin(parts: SplitResult) -> str:
    """scheme://host[:port], never a user name or password."""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _inferred(url: str, how: str, probe: bool = True) -> PublishedMetadata:
    return PublishedMetadata(url, how, url if probe else None)


def _okta(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    for parts in filter(None, map(_split, urls)):
        segments = parts.path.split("/")  # "", "app", <app name>, <app id>, "sso", "saml"
        if len(segments) == 6 and segments[1] == "app" and segments[4:] == ["sso", "saml"] and segments[3]:
            return _inferred(f"{_origin(parts)}/app/{segments[3]}/sso/saml/metadata",
                             "Okta's app metadata URL /app/<app id>/sso/saml/metadata, the app ID from the SSO URL")
    return None


def _entra(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    parts = _split(entity_id)
    tenant = parts.path.strip("/") if parts is not None and parts.hostname == "sts.windows.net" else ""
    if len(tenant) != 36 or tenant.strip("0123456789abcdefABCDEF-"):
        return None
    hosts = [h for h in (p.hostname or "" for p in filter(None, map(_split, urls))) if h.startswith("login.microsoftonline.")]
    base = f"https://{hosts[0] if hosts else 'login.microsoftonline.com'}/{tenant}/federationmetadata/2007-06/" \
           "federationmetadata.xml"
    return PublishedMetadata(f"{base}?appid=<the portal app's Application ID>",
                             "Entra ID's federationmetadata.xml for the tenant in the entity ID; the appid (Enterprise "
                             "applications › the portal app › Properties › Application ID) gives the app's own "
                             "certificate", base)


def _adfs(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    for parts in filter(None, map(_split, urls)):
        if parts.path.rstrip("/").lower().endswith("/adfs/ls"):
            return _inferred(f"{_origin(parts)}/FederationMetadata/2007-06/FederationMetadata.xml",
                             "AD FS's /FederationMetadata/2007-06/FederationMetadata.xml on the SSO URL's host")
    return None


def _onelogin(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    parts = _split(entity_id)
    if parts is not None and parts.scheme == "https" and parts.path.startswith("/saml/metadata/"):
        return _inferred(entity_id, "OneLogin's entity ID is its metadata URL")
    return None


def _keycloak(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    for parts in filter(None, map(_split, [entity_id, *urls])):
        segments = parts.path.rstrip("/").split("/")
        if "realms" in segments[:-1]:
            at = segments.index("realms")
            realm = "/".join(segments[:at + 2])
            return _inferred(f"{_origin(parts)}{realm}/protocol/saml/descriptor",
                             "Keycloak's /realms/<realm>/protocol/saml/descriptor")
    return None


def _shibboleth(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    if _path(entity_id).endswith("/idp/shibboleth"):
        return _inferred(entity_id, "the Shibboleth IdP serves its metadata at its entity ID, /idp/shibboleth")
    for parts in filter(None, map(_split, urls)):
        base, found, _ = parts.path.partition("/profile/")
        if found and base.endswith("/idp"):
            return _inferred(f"{_origin(parts)}{base}/shibboleth",
                             "the Shibboleth IdP's /idp/shibboleth beside the SSO URL's /idp/profile/")
    return None


def _simplesamlphp(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    if _path(entity_id).endswith("/saml2/idp/metadata.php"):
        return _inferred(entity_id, "SimpleSAMLphp's entity ID is its metadata.php")
    for parts in filter(None, map(_split, urls)):
        base, found, _ = parts.path.partition("/saml2/idp/")
        if found:
            return _inferred(f"{_origin(parts)}{base}/saml2/idp/metadata.php",
                             "SimpleSAMLphp's saml2/idp/metadata.php beside the SSO URL")
    return None


def _pingone(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    parts = _split(entity_id)
    env = parts.path.strip("/") if parts is not None and (parts.hostname or "").startswith("auth.pingone.") else ""
    return PublishedMetadata(f"{_origin(parts)}/{env}/saml20/metadata/<the portal app's ID>", "PingOne's "
                             "/<environment>/saml20/metadata/<app>; the app's 'IDP Metadata URL' on its Configuration "
                             "tab gives it whole") if parts is not None and env and "/" not in env else None


def _openam(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    for parts in filter(None, map(_split, urls)):
        base, found, alias = parts.path.partition("/metaAlias/")
        if found and _openam_url(parts.geturl()):
            realm = "/" + alias.rpartition("/")[0]
            return _inferred(f"{_origin(parts)}{base.rpartition('/')[0]}/saml2/jsp/exportmetadata.jsp?entityid="
                             f"{quote(entity_id, safe='')}&realm={quote(realm, safe='/')}",
                             "OpenAM's saml2/jsp/exportmetadata.jsp for the entity ID and the realm of its metaAlias")
    return None


def _entity_is_url(how: str) -> Callable[[str, Sequence[str]], PublishedMetadata | None]:
    def infer(entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
        return _inferred(entity_id, how) if _split(entity_id) is not None else None
    return infer


_NONE_PUBLISHED = {
    "google": "Google Workspace publishes no metadata URL: download the IdP metadata file from the Admin console "
              "(Apps › Web and mobile apps › the portal app › Download metadata), or copy the SSO URL and the "
              "certificate from there",
    "jumpcloud": "JumpCloud publishes no metadata URL: export the file from the portal app's SSO tab (Export "
                 "Metadata), or copy the IdP certificate from there",
}
_INFER: dict[str, Callable[[str, Sequence[str]], PublishedMetadata | None]] = {
    "okta": _okta, "entra": _entra, "adfs": _adfs, "onelogin": _onelogin, "keycloak": _keycloak,
    "shibboleth": _shibboleth, "simplesamlphp": _simplesamlphp, "ping": _pingone, "forgerock": _openam,
    "vmware": _entity_is_url("vCenter SSO's entity ID is its metadata URL (/websso/SAML2/Metadata/<domain>)"),
    "openconext": _entity_is_url("EngineBlock's entity ID is its metadata URL"),
}


def published_metadata(vendor_key: str | None, entity_id: str, urls: Sequence[str]) -> PublishedMetadata | None:
    """Where the recognised product publishes this IdP's metadata (inferred, to be confirmed), or
    that it publishes none; None when the product does not fix the URL or the metadata does not
    follow its pattern."""
    if vendor_key in _NONE_PUBLISHED:
        return PublishedMetadata(None, _NONE_PUBLISHED[vendor_key])
    infer = _INFER.get(vendor_key or "")
    return infer(entity_id, urls) if infer is not None else None


# Where each product lets an admin set what the checks compare, in the product's own words.
Setting = Literal["issuer", "audience", "acs", "claim", "nameid", "sign_on"]
_SETTINGS: dict[Setting, dict[str, str]] = {
    "issuer": {
    "okta": "the Okta app's 'Identity Provider Issuer' (Sign On tab › View SAML setup instructions)",
    "entra": "Entra ID's 'Microsoft Entra Identifier' (Enterprise app › Single sign-on › Set up)",
    "adfs": "AD FS 'Federation Service Identifier' (AD FS Management › Edit Federation Service Properties)",
    "google": "Google's 'Entity ID' (Admin console › Apps › Web and mobile apps › the app)",
    "pingfederate": "PingFederate › System › Protocol Settings › Federation Info › 'SAML 2.0 Entity ID'",
    },
    "claim": {
    "okta": "Okta admin console › Applications › the portal app › General › SAML Settings › Attribute "
            "Statements: the statement's Name",
    "entra": "Entra admin center › Enterprise applications › the portal app › Single sign-on › Attributes & "
             "Claims: the claim's Name, with its Namespace left empty",
    "adfs": "AD FS Management › Relying Party Trusts › the portal's trust › Edit Claim Issuance Policy: the "
            "rule's 'Outgoing claim type'",
    "google": "Google Admin console › Apps › Web and mobile apps › the portal app › SAML attribute mapping: "
              "the App attribute",
    "ping": "PingOne › Applications › the portal app › Attribute Mappings: the attribute name",
    "pingfederate": "PingFederate › Applications › SP Connections › the portal's connection › Browser SSO › "
                    "Assertion Creation › Attribute Contract: the attribute name",
    "onelogin": "OneLogin › Applications › the portal app › Parameters: the field name",
    "keycloak": "Keycloak › Clients › the portal client › Client scopes › Mappers: 'SAML Attribute Name'",
    "shibboleth": "attribute-resolver.xml: the SAML2 AttributeEncoder's name",
    },
    "audience": {
    "okta": "Okta › the portal app › General › SAML Settings › 'Audience URI (SP Entity ID)'",
    "entra": "Entra › Enterprise applications › the portal app › Single sign-on › Basic SAML Configuration › "
             "'Identifier (Entity ID)'",
    "adfs": "AD FS › Relying Party Trusts › the portal's trust › Properties › Identifiers",
    "google": "Google Admin console › the portal app › Service provider details › 'Entity ID'",
    "onelogin": "OneLogin › the portal app › Configuration › 'Audience (EntityID)'",
    "keycloak": "Keycloak › Clients › the portal client › 'Client ID'",
        "ping": "PingOne › Applications › the portal app › Configuration › 'Entity ID'",
        "pingfederate": "PingFederate › SP Connections › the portal's connection › 'Partner's Entity ID'",
    },
    "acs": {
    "okta": "Okta › the portal app › General › SAML Settings › 'Single sign-on URL' (and 'Recipient URL' / "
            "'Destination URL' when set apart)",
    "entra": "Entra › Enterprise applications › the portal app › Single sign-on › Basic SAML Configuration › "
             "'Reply URL (Assertion Consumer Service URL)'",
    "adfs": "AD FS › Relying Party Trusts › the portal's trust › Properties › Endpoints",
    "google": "Google Admin console › the portal app › Service provider details › 'ACS URL'",
    "onelogin": "OneLogin › the portal app › Configuration › 'ACS (Consumer) URL'",
    "keycloak": "Keycloak › Clients › the portal client › Advanced › 'Assertion Consumer Service POST Binding "
                "URL'",
        "ping": "PingOne › Applications › the portal app › Configuration › 'ACS URLs'",
        "pingfederate": "PingFederate › the portal's SP connection › Browser SSO › Protocol Settings › "
                        "'Assertion Consumer Service URL'",
    },
    "nameid": {
        "okta": "Okta › the portal app › General › SAML Settings › 'Name ID format' and 'Application username'",
        "entra": "Entra › Enterprise applications › the portal app › Single sign-on › Attributes & Claims › "
                 "'Unique User Identifier (Name ID)'",
        "adfs": "AD FS › the portal's trust › Edit Claim Issuance Policy: a rule sending 'Name ID' with the "
                "'Outgoing name ID format'",
        "google": "Google Admin console › the portal app › Service provider details › 'Name ID format'",
        "ping": "PingOne › the portal app › Attribute Mappings › 'saml_subject'",
        "pingfederate": "PingFederate › the portal's SP connection › Browser SSO › Assertion Creation › "
                        "Attribute Contract › SAML_SUBJECT and its 'Subject Name Format'",
        "onelogin": "OneLogin › the portal app › SSO › 'SAML nameID format'",
        "keycloak": "Keycloak › Clients › the portal client › 'Name ID format'",
    },
    "sign_on": {
        "okta": "Okta › the portal app › General › App Embed Link: leave the login to the portal (SP-initiated)",
        "entra": "Entra › Enterprise applications › the portal app › Basic SAML Configuration › 'Sign on URL'",
        "adfs": "AD FS: nothing to set; the portal starts the login (SP-initiated)",
        "google": "Google Admin console › the portal app › Service provider details › 'Start URL' (optional)",
        "onelogin": "OneLogin › the portal app › Configuration › 'Login URL'",
        "keycloak": "Keycloak › Clients › the portal client › 'Home URL'",
        "pingfederate": "PingFederate › the portal's SP connection › Browser SSO › 'SP-Initiated SSO'",
    },
}
_DEFAULT_SETTING: dict[Setting, str] = {
    "issuer": "the IdP's entity ID (issuer) setting",
    "claim": "the IdP's attribute mapping for the portal's application",
    "audience": "the audience (SP entity ID) of the portal's application",
    "acs": "the ACS (reply) URL of the portal's application",
    "nameid": "the NameID format of the portal's application",
    "sign_on": "the portal's login page, where every sign-in starts (SP-initiated)",
}


def setting(vendor_key: str | None, what: Setting) -> str:
    """Where, in the vendor's own words, an admin sets `what`; a neutral phrase for other vendors."""
    return _SETTINGS[what].get(vendor_key or "", _DEFAULT_SETTING[what])
