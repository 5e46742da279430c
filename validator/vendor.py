"""Which IdP product published this metadata, told from the entity ID and endpoint URLs.

Detection is a fact with its evidence, never a finding: it picks the vendor's own words for
fixes ("Audience URI (SP Entity ID)" in Okta, "Identifier (Entity ID)" in Entra ID).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metadata.model import EntityDescriptor


@dataclass(frozen=True)
class Vendor:
    key: str
    """The CRM record's vendor key: okta, entra, adfs, google, ping, onelogin, keycloak, …"""
    name: str


VENDORS = {
    v.key: v
    for v in (
        Vendor("okta", "Okta"),
        Vendor("entra", "Microsoft Entra ID"),
        Vendor("adfs", "Microsoft AD FS"),
        Vendor("google", "Google Workspace"),
        Vendor("ping", "Ping Identity"),
        Vendor("onelogin", "OneLogin"),
        Vendor("keycloak", "Keycloak"),
        Vendor("shibboleth", "Shibboleth IdP"),
        Vendor("simplesamlphp", "SimpleSAMLphp"),
        Vendor("jumpcloud", "JumpCloud"),
        Vendor("auth0", "Auth0"),
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
    ("ping", "url", re.compile(r"/idp/SSO\.saml2$"), "PingFederate endpoint /idp/SSO.saml2"),
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


@dataclass(frozen=True)
class Detection:
    vendor: Vendor
    evidence: tuple[str, ...]


def detect_vendor(entity: EntityDescriptor) -> Detection | None:
    """The vendor with the most evidence, or None when nothing matches."""
    urls = [e.location for role in entity.idp_roles for e in (*role.sso, *role.slo)]
    evidence: dict[str, list[str]] = {}
    for key, target, pattern, text in _PATTERNS:
        values = [entity.entity_id] if target == "entity" else urls
        for value in values:
            if pattern.search(value):
                evidence.setdefault(key, []).append(f"{text}: {value}")
                break
    if not evidence:
        return None
    best = max(evidence, key=lambda k: len(evidence[k]))
    return Detection(VENDORS[best], tuple(evidence[best]))
