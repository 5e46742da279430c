"""Which IdP product published this metadata, told from the entity ID and endpoint URLs.

Detection is a fact with its evidence, never a finding: it picks the vendor's own words for
fixes ("Audience URI (SP Entity ID)" in Okta, "Identifier (Entity ID)" in Entra ID).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from metadata.model import EntityDescriptor
from metadata.urls import redact_url


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
                evidence.setdefault(key, []).append(f"{text}: {redact_url(value)}")
                break
    if not evidence:
        return None
    best = max(evidence, key=lambda k: len(evidence[k]))
    return Detection(VENDORS[best], tuple(evidence[best]))


# Where each product lets an admin set what the checks compare, in the product's own words.
Setting = Literal["issuer", "audience", "acs", "claim", "nameid", "sign_on"]
_SETTINGS: dict[Setting, dict[str, str]] = {
    "issuer": {
    "okta": "the Okta app's 'Identity Provider Issuer' (Sign On tab › View SAML setup instructions)",
    "entra": "Entra ID's 'Microsoft Entra Identifier' (Enterprise app › Single sign-on › Set up)",
    "adfs": "AD FS 'Federation Service Identifier' (AD FS Management › Edit Federation Service Properties)",
    "google": "Google's 'Entity ID' (Admin console › Apps › Web and mobile apps › the app)",
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
    },
    "nameid": {
        "okta": "Okta › the portal app › General › SAML Settings › 'Name ID format' and 'Application username'",
        "entra": "Entra › Enterprise applications › the portal app › Single sign-on › Attributes & Claims › "
                 "'Unique User Identifier (Name ID)'",
        "adfs": "AD FS › the portal's trust › Edit Claim Issuance Policy: a rule sending 'Name ID' with the "
                "'Outgoing name ID format'",
        "google": "Google Admin console › the portal app › Service provider details › 'Name ID format'",
        "ping": "PingOne › the portal app › Attribute Mappings › 'saml_subject'",
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
