"""Vendor profiles: responses shaped the way a given IdP product sends them.

Each profile is shaped after real responses in the corpus
(``tests/corpus/responses/<vendor>/``), named in its docstring: the Issuer form, what is
signed, the NameID format, the attributes' NameFormat and FriendlyName, and the claims the
product adds on its own. A persona's claims are always sent with their names exactly as
written — the CRM record is the contract — in the vendor's NameFormat; a persona claim
replaces a vendor claim of the same name.

Size: one table of every product's profile, each value next to the sample or public source it
comes from, so that a profile is read (and checked against tests/test_vendor_realism.py) in one place.
"""

from __future__ import annotations

import hashlib
import re
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from metadata.saml import EMAIL, ENTITY, PASSWORD_PROTECTED_TRANSPORT, TRANSIENT, UNSPECIFIED

from .assertion import Claim, IdKind, Shape, SignWhat
from .errors import UnknownVendor
from .settings import Persona, Server

WS_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
MS_CLAIMS = "http://schemas.microsoft.com/identity/claims/"
MS_PASSWORD = "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"  # noqa: S105

_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class VendorProfile:
    """How one IdP product shapes its responses."""

    key: str
    """The CRM record's vendor key: ``okta``, ``entra``, …"""
    name: str
    sign: SignWhat
    """What the product signs by default."""
    nameid_format: str
    """Its default NameID format URI."""
    name_format: str | None
    """NameFormat of the attributes it sends (``unspecified``, ``basic``, ``uri``); None: left out."""
    issuer_form: Callable[[str], str] = field(repr=False)
    """The product's entity ID, built from the IdP's base URL (no trailing slash)."""
    standard_claims: Callable[[Persona, str], tuple[Claim, ...]] = field(repr=False, default=lambda p, e: ())
    """The claims the product adds by itself, for a persona and the IdP's entity ID."""
    friendly_names: bool = False
    """Persona claims carry a FriendlyName (their own name), as the product's attributes do."""
    issuer_format: str | None = None
    """The Format the product writes on saml:Issuer; None: left out (SAML Core §2.2.5 reads it as entity)."""
    shape: Shape = field(default_factory=Shape)
    """How the product writes a response: prefixes, ID form, time window, element order, xsi:type …"""

    def entity_id(self, base_url: str) -> str:
        """The IdP's entity ID in this vendor's form; the same `base_url` always gives the same ID."""
        return self.issuer_form(base_url.rstrip("/"))

    def claims(self, persona: Persona, *, entity_id: str) -> tuple[Claim, ...]:
        """The vendor's own claims, then the persona's; a persona claim replaces vendor claims of its Name."""
        own = tuple(
            Claim(name, (value,) if isinstance(value, str) else tuple(value), self.name_format,
                  name if self.friendly_names else None)
            for name, value in persona.claims.items()
        )
        vendor = tuple(c for c in self.standard_claims(persona, entity_id) if c.name not in persona.claims)
        return vendor + own

    def uri_form(self, name: str) -> str:
        """`name` as a claim URI the way Entra ID and AD FS name custom claims.

        The other products have no URI style for a custom claim (Shibboleth's ``urn:oid:`` names
        are registered, not derivable), so the same namespace stands in for them. A name that is
        already a URI is returned as it is.
        """
        if name.startswith(("http://", "https://", "urn:")):
            return name
        return WS_CLAIMS + name


def _number(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")


def _token(text: str, alphabet: str, length: int) -> str:
    n, out = _number(text), []
    for _ in range(length):
        n, i = divmod(n, len(alphabet))
        out.append(alphabet[i])
    return "".join(out)


def _guid(*parts: str) -> str:
    # Random-looking (version 4) like the tenant and object IDs Entra ID and PingOne hand out.
    return str(uuid.UUID(bytes=hashlib.sha256("\n".join(parts).encode()).digest()[:16], version=4))


def _email(persona: Persona) -> str | None:
    return persona.nameid if _ADDRESS.fullmatch(persona.nameid) else None


def _names(persona: Persona) -> tuple[str, str | None, str | None]:
    """Display name, given name and surname (the last two only when the display name has both)."""
    display = persona.display_name.strip() or persona.id
    given, _, surname = display.partition(" ")
    return (display, given, surname.strip()) if surname.strip() else (display, None, None)


def _made(name_format: str | None, rows: list[tuple[str, str | None]]) -> tuple[Claim, ...]:
    # Products leave out a claim whose source attribute is empty rather than send it blank.
    return tuple(Claim(name, (value,), name_format) for name, value in rows if value)


def _entra(persona: Persona, entity_id: str) -> tuple[Claim, ...]:
    found = _GUID.search(entity_id)
    tenant = found.group(0) if found else _guid("entra", entity_id)
    display, given, surname = _names(persona)
    fixed = _made(None, [
        (MS_CLAIMS + "tenantid", tenant),
        (MS_CLAIMS + "objectidentifier", _guid(tenant, persona.id)),
        (MS_CLAIMS + "displayname", display),
        # A member of the tenant (not a guest) is vouched for by the tenant itself.
        (MS_CLAIMS + "identityprovider", entity_id),
    ])
    methods = Claim("http://schemas.microsoft.com/claims/authnmethodsreferences", (MS_PASSWORD,), None)
    return (*fixed, methods, *_made(None, [
        (WS_CLAIMS + "givenname", given),
        (WS_CLAIMS + "surname", surname),
        (WS_CLAIMS + "emailaddress", _email(persona)),
        (WS_CLAIMS + "name", persona.nameid),  # the user principal name
    ]))


def _adfs(persona: Persona, entity_id: str) -> tuple[Claim, ...]:
    # What the "Send LDAP Attributes as Claims" rule template sends (AD FS has no fixed claims).
    _, given, surname = _names(persona)
    return _made(None, [
        (WS_CLAIMS + "emailaddress", _email(persona)),
        (WS_CLAIMS + "givenname", given),
        (WS_CLAIMS + "surname", surname),
        (WS_CLAIMS + "upn", persona.nameid),
    ])


def _pingone(persona: Persona, entity_id: str) -> tuple[Claim, ...]:
    # PingOne's required mapping: the subject, also sent as an attribute (equal to the NameID).
    return _made("basic", [("saml_subject", persona.nameid)])


def _onelogin(persona: Persona, entity_id: str) -> tuple[Claim, ...]:
    _, given, surname = _names(persona)
    return _made("basic", [
        ("User.email", _email(persona)),
        ("User.FirstName", given),
        ("User.LastName", surname),
        ("User.Username", persona.id),
    ])


def _keycloak(persona: Persona, entity_id: str) -> tuple[Claim, ...]:
    # The "role list" mapper of the default role_list scope: the realm's default roles, one Role
    # attribute per role as Keycloak sends them (keycloak-ssoready-2024), so that an SP meets a
    # repeated attribute Name the way it will in production.
    realm = entity_id.rstrip("/").rsplit("/", 1)[-1]
    roles = ("view-profile", "manage-account-links", f"default-roles-{realm}", "manage-account",
             "uma_authorization", "offline_access")
    return tuple(Claim("Role", (role,), "basic") for role in roles)


# eduPerson / inetOrgPerson attributes by their registered OIDs (MACE-Dir SAML Attribute Profiles).
_OIDS = {
    "uid": "urn:oid:0.9.2342.19200300.100.1.1",
    "mail": "urn:oid:0.9.2342.19200300.100.1.3",
    "eduPersonPrincipalName": "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
    "displayName": "urn:oid:2.16.840.1.113730.3.1.241",
    "givenName": "urn:oid:2.5.4.42",
    "sn": "urn:oid:2.5.4.4",
}


def _shibboleth(persona: Persona, entity_id: str) -> tuple[Claim, ...]:
    display, given, surname = _names(persona)
    email = _email(persona)
    # eduPersonPrincipalName is scoped by the organisation's domain: the address's when there is one.
    scope = email.rpartition("@")[2] if email else urlsplit(entity_id).hostname or "localhost"
    values = {"uid": persona.id, "mail": email, "eduPersonPrincipalName": f"{persona.id}@{scope}",
              "displayName": display, "givenName": given, "sn": surname}
    return tuple(Claim(_OIDS[friendly], (value,), "uri", friendly) for friendly, value in values.items() if value)


# ID forms, each made from the injected ID (random in production, pinned in tests) ---------------

AC = "urn:oasis:names:tc:SAML:2.0:ac:classes:"
_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"


def _okta_id(value: str, kind: IdKind) -> str:
    # "id" and 26 digits; a SessionIndex is "id", 13 digits (epoch ms), "." and 9 digits.
    if kind == "session":
        return f"id{_token(value, string.digits, 13)}.{_token(value + '.', string.digits, 9)}"
    return "id" + _token(value, string.digits, 26)


def _dotnet_id(value: str, kind: IdKind) -> str:
    return "_" + _guid("id", value)  # "_" and a GUID, the SessionIndex too (it is the assertion's ID there)


def _hex32_id(value: str, kind: IdKind) -> str:
    return "_" + _token(value, _HEX, 32)


def _pingone_id(value: str, kind: IdKind) -> str:
    return _guid("id", value) if kind == "session" else "id-" + _guid("id", value)


def _pingfederate_id(value: str, kind: IdKind) -> str:
    # 27 characters of [A-Za-z0-9._-], starting with a letter (an NCName); the SessionIndex alike.
    return _token(value, string.ascii_letters, 1) + _token(value + "+", _ALNUM + "._-", 26)


def _onelogin_id(value: str, kind: IdKind) -> str:
    return {"response": "R" + _token(value, _HEX, 40), "assertion": "pfx" + _guid("id", value)}.get(
        kind, "_" + _guid("id", value))


def _keycloak_id(value: str, kind: IdKind) -> str:
    # SessionIndex: the user session's ID, "::", the client's ID (keycloak/keycloak,
    # services/src/main/java/org/keycloak/protocol/saml/SamlSessionUtils.java, getSessionIndex).
    return f"{_guid('user', value)}::{_guid('client', value)}" if kind == "session" else "ID_" + _guid("id", value)


def _jumpcloud_id(value: str, kind: IdKind) -> str:
    if kind == "session":
        return _guid("id", value)
    return _token(value, string.ascii_uppercase, 1) + _token(value + "+", string.ascii_uppercase + string.digits, 39)


def _auth0_id(value: str, kind: IdKind) -> str:
    return "_" + (_token(value, _HEX, 20) if kind == "response" else _token(value, _ALNUM, 32))


def _auth0(persona: Persona, entity_id: str) -> tuple[Claim, ...]:
    # The WIF claim URIs Auth0's SAML2 add-on maps by default (auth0-scaleft-test-2016).
    display, given, surname = _names(persona)
    return _made(None, [
        (WS_CLAIMS + "nameidentifier", persona.nameid), (WS_CLAIMS + "emailaddress", _email(persona)),
        (WS_CLAIMS + "name", display), (WS_CLAIMS + "givenname", given), (WS_CLAIMS + "surname", surname),
        (WS_CLAIMS + "upn", _email(persona)),
    ])


# Profiles -------------------------------------------------------------------------------------------
# Each shape value is measured on the corpus samples named in the profile's docstring, unless a
# comment names the public source it comes from instead. tests/test_vendor_realism.py holds each
# profile to its samples point by point.

_JAVA = Shape(saml="saml2", samlp="saml2p", saml_on_response=False)  # OpenSAML's prefixes and layout

OKTA = VendorProfile(
    "okta", "Okta", "both", EMAIL, "unspecified", issuer_format=ENTITY,
    issuer_form=lambda base: "http://www.okta.com/exk" + _token(base, _ALNUM, 17),
    shape=replace(_JAVA, ids=_okta_id, not_before_skew=300, xsi_type="xs:string", inclusive_prefixes=("xs",)),
)
"""okta/okta-ssoready-2024-signed-response-and-assertion.xml (also okta-dev-969244-2017 and -116807-2016
for the attributes): Response and Assertion signed, Issuer with Format entity, bare attribute names with
NameFormat unspecified typed xs:string, and nothing the admin did not map; saml2:/saml2p:, ``id`` + digits,
NotBefore 5 min before the issue instant, 5 min lifetime, PasswordProtectedTransport; both signatures'
exclusive c14n transform with an InclusiveNamespaces PrefixList="xs" (969244, 116807; the 2024 capture has none)."""

ENTRA = VendorProfile(
    "entra", "Microsoft Entra ID", "assertion", EMAIL, None, standard_claims=_entra,
    issuer_form=lambda base: f"https://sts.windows.net/{_guid('entra', base)}/",
    # InResponseTo's place: the ssoready sample is unsolicited; it is put first, as AD FS does.
    shape=Shape(saml=None, saml_on_response=False, ids=_dotnet_id, session_index_is_assertion_id=True,
                not_before_skew=300, lifetime=3600,
                authn_context=AC + "Password", attributes_first=True),
)
"""entra-id/entra-id-ssoready-2023-signed-assertion.xml: only the Assertion signed, no NameFormat,
and the claims Entra always adds (tenantid, objectidentifier, displayname, identityprovider,
authnmethodsreferences, givenname, surname, emailaddress, name); the assertion namespace as default
namespace, ``_`` + GUID, NotBefore 5 min back, valid 1 h, AttributeStatement before AuthnStatement,
AuthnContextClassRef Password, SessionIndex in the assertion ID's form."""

ADFS = VendorProfile(
    "adfs", "Microsoft AD FS", "assertion", EMAIL, None, standard_claims=_adfs,
    # AD FS's default federation service identifier uses http:// whatever the service's scheme.
    issuer_form=lambda base: f"http://{urlsplit(base).netloc}/adfs/services/trust",
    shape=Shape(saml=None, saml_on_response=False, ids=_dotnet_id, session_index_is_assertion_id=True,
                lifetime=3600, confirmation_seconds=300,
                attributes_first=True),
)
"""adfs/adfs-spstest2-2017-signed-assertion.decoded.xml (and adfs-2021-redacted, bead-loc-2013/2014,
dresources-2011): Assertion signed, ws/2005 claim URIs without NameFormat; default namespace, ``_`` +
GUID, NotBefore at the issue instant, Conditions 1 h but the bearer confirmation 5 min,
AttributeStatement first, PasswordProtectedTransport for forms login (bead-loc's
``urn:federation:authentication:windows`` is Windows integrated login)."""

GOOGLE = VendorProfile(
    "google", "Google Workspace", "assertion", UNSPECIFIED, None,
    issuer_form=lambda base: "https://accounts.google.com/o/saml2?idpid=C0" + _token(base, string.ascii_lowercase
                                                                                     + string.digits, 7),
    shape=replace(_JAVA, ids=_hex32_id, session_index_is_assertion_id=True,
                  not_before_skew=300, xsi_type="xs:anyType", authn_context=AC + "unspecified",
                  attributes_first=True),
)
"""google-workspace/google-workspace-ssoready-2023-signed-assertion.xml: Assertion signed (the
"Signed response" box unticked), unspecified NameID; google-apps-2016 for the attributes: bare
names, no NameFormat, xs:anyType, AttributeStatement before AuthnStatement. saml2:/saml2p:, ``_`` +
32 hex, NotBefore 5 min back, 5 min lifetime, AuthnContextClassRef unspecified."""

PINGONE = VendorProfile(
    "pingone", "Ping Identity (PingOne)", "assertion", UNSPECIFIED, "basic", standard_claims=_pingone,
    issuer_form=lambda base: f"https://auth.pingone.com/{_guid('ping', base)}",
    shape=Shape(saml_on_response=False, ids=_pingone_id, not_before_skew=60, xsi_type="xs:string",
                authn_context=AC + "unspecified", session_seconds=300, authenticating_authority=True),
)
"""pingone/pingone-ssoready-2023-signed-assertion.xml: Assertion signed, NameFormat basic typed
xs:string, the saml_subject attribute; saml:/samlp: each declared where used, ``id-`` + GUID, a GUID
SessionIndex, NotBefore 1 min back, 5 min lifetime, AuthnContextClassRef unspecified. The sample's
NameID has no Format, which SAML Core §2.2.2 reads as unspecified. SessionNotOnOrAfter 5 min after the
issue instant, and the IdP's entity ID as AuthenticatingAuthority after the AuthnContextClassRef."""

PINGFEDERATE = VendorProfile(
    "pingfederate", "Ping Identity (PingFederate)", "response", EMAIL, "unspecified",
    # The entity ID is whatever the PingFederate admin types; the pfed11 samples are anonymised.
    issuer_form=lambda base: base,
    shape=Shape(saml_on_response=False, ids=_pingfederate_id, session_index_is_assertion_id=True,
                not_before_skew=300, xsi_type="xs:string",
                authn_context=AC + "Password", confirmation_order=("Recipient", "NotOnOrAfter", "InResponseTo")),
)
"""pingfederate/pingfederate-pfed11-response-01 and -05: the Response signed (02 and 03 sign the
Assertion: a per-connection choice), emailAddress NameID, NameFormat unspecified typed xs:string;
saml:/samlp:, 27-character IDs with the SessionIndex equal in form, NotBefore 5 min back, 5 min
lifetime, Recipient/NotOnOrAfter/InResponseTo in that order, AuthnContextClassRef Password."""

ONELOGIN = VendorProfile(
    "onelogin", "OneLogin", "assertion", EMAIL, "basic", standard_claims=_onelogin,
    issuer_form=lambda base: f"https://app.onelogin.com/saml/metadata/{100000 + _number(base) % 900000}",
    shape=Shape(ids=_onelogin_id, not_before_skew=180, lifetime=180, xsi_type="xs:string",
                confirmation_order=("NotOnOrAfter", "Recipient", "InResponseTo"), session_seconds=86400),
)
"""onelogin/onelogin-164679-2013-signed-assertion-external-ns.xml and onelogin-634027-2017-signed.xml:
Assertion signed, emailAddress NameID, User.* attributes with NameFormat basic typed xs:string;
``R`` + 40 hex and ``pfx`` + GUID IDs, ``_`` + GUID SessionIndex, NotBefore 3 min back, 3 min lifetime,
InResponseTo last (onelogin-503983-2016), SessionNotOnOrAfter 24 h after the issue instant (all three).
Those samples sign with SHA-1; this profile keeps SHA-256 (SHA-1 only as a deliberate fault)."""

KEYCLOAK = VendorProfile(
    "keycloak", "Keycloak", "assertion", EMAIL, "basic", standard_claims=_keycloak,
    issuer_form=lambda base: f"{base}/realms/preflight",
    # The sample has no AuthnStatement (a per-client switch); the profile keeps one (Profiles §4.1.4.2)
    # as Keycloak writes it: AuthnContextClassRef unspecified, and the assertion valid for the realm's
    # access code lifespan (1 min by default) unless the client sets one, and SessionNotOnOrAfter the
    # realm's SSO Session Max later (10 h by default) (keycloak/keycloak,
    # services/src/main/java/org/keycloak/protocol/saml/SamlProtocol.java, authenticated()).
    shape=Shape(ids=_keycloak_id, lifetime=60, xsi_type="xs:string", authn_context=AC + "unspecified",
                session_seconds=36000),
)
"""keycloak/keycloak-ssoready-2024-signed-assertion.xml: Assertion signed, emailAddress NameID,
Role attributes with NameFormat basic typed xs:string; ``ID_`` + GUID, NotBefore at the issue
instant, 1 min lifetime. SessionNotOnOrAfter comes from Keycloak's source (the sample has no AuthnStatement,
so the realism test cannot hold it to a sample)."""

SHIBBOLETH = VendorProfile(
    "shibboleth", "Shibboleth IdP", "both", TRANSIENT, "uri", standard_claims=_shibboleth,
    friendly_names=True, issuer_form=lambda base: f"{base}/idp/shibboleth",
    shape=replace(_JAVA, ids=_hex32_id, address=True),
)
"""shibboleth/ukfederation-test-idp-2022-redacted.xml (and samltest-id-artifact-response-soap.xml,
decrypted): Response and Assertion signed, transient NameID, urn:oid names with NameFormat uri
and a FriendlyName, untyped values; saml2:/saml2p:, ``_`` + 32 hex, NotBefore at the issue instant,
5 min lifetime, the browser's IP as SubjectConfirmationData/@Address (put first, as the sample orders it)."""

JUMPCLOUD = VendorProfile(
    # The sample's NameID Format is the SAML 1.0 spelling of unspecified, as JumpCloud writes it.
    "jumpcloud", "JumpCloud", "assertion", "urn:oasis:names:tc:SAML:1.0:nameid-format:unspecified", "unspecified",
    issuer_format=ENTITY,
    # The IdP entity ID is free text typed by the admin (the sample's is "IdP Entity ID").
    issuer_form=lambda base: base,
    # No attribute in the sample: NameFormat and untyped values are the IdP's defaults, unmeasured.
    shape=replace(_JAVA, ids=_jumpcloud_id, not_before_skew=300),
)
"""jumpcloud/jumpcloud-ssoready-2023-signed-assertion.xml: Assertion signed, Issuer with Format
entity, a SAML 1.0 unspecified NameID Format; saml2:/saml2p:, 40 upper-case letters and digits, a GUID SessionIndex,
NotBefore 5 min back, 5 min lifetime, PasswordProtectedTransport."""

AUTH0 = VendorProfile(
    "auth0", "Auth0", "response", UNSPECIFIED, None, standard_claims=_auth0,
    issuer_form=lambda base: f"urn:preflight-{_token(base, string.ascii_lowercase, 8)}.eu.auth0.com",
    shape=Shape(saml_on_response=False, ids=_auth0_id, lifetime=3600, xsi_type="xs:anyType",
                authn_context=AC + "unspecified", attributes_first=True,
                confirmation_order=("NotOnOrAfter", "Recipient", "InResponseTo")),
)
"""auth0/auth0-scaleft-test-2016-signed-assertion.xml: the Response signed, Issuer ``urn:`` + tenant
domain, unspecified NameID, WIF claim URIs without NameFormat typed xs:anyType, AttributeStatement
first; saml:/samlp:, ``_`` + 20 hex (Response) and ``_`` + 32 letters and digits (Assertion, SessionIndex),
NotBefore at the issue instant, 1 h lifetime, AuthnContextClassRef unspecified."""

GENERIC = VendorProfile(
    "generic", "Generic SAML IdP", "assertion", EMAIL, "unspecified",
    issuer_form=lambda base: f"{base}/metadata", issuer_format=ENTITY,
)
"""The test IdP's own behaviour: no vendor's habits, persona claims only, :class:`Shape`'s defaults
(PasswordProtectedTransport, NotBefore at the issue instant so an SP's clock skew shows)."""

PROFILES: dict[str, VendorProfile] = {
    p.key: p for p in (OKTA, ENTRA, ADFS, GOOGLE, PINGONE, PINGFEDERATE, ONELOGIN, KEYCLOAK, SHIBBOLETH,
                       JUMPCLOUD, AUTH0, GENERIC)
}
ALIASES = {"ping": "pingone"}
"""Older keys: ``ping`` imitated PingOne before PingFederate had a profile (CRM records say ``ping``)."""
assert PASSWORD_PROTECTED_TRANSPORT == AC + "PasswordProtectedTransport"


def profile(key: str) -> VendorProfile:
    """The profile for `key`; raises :class:`UnknownVendor` naming every valid choice."""
    try:
        return PROFILES[ALIASES.get(key, key)]
    except KeyError:
        choices = ", ".join([*PROFILES, *ALIASES])
        raise UnknownVendor(f"unknown vendor profile {key!r}; choose one of: {choices}") from None


def idp_entity_id(server: Server) -> str:
    """The IdP's entity ID: the one configured, else its vendor profile's form of the base URL."""
    return server.entity_id or profile(server.vendor).entity_id(server.base_url)
