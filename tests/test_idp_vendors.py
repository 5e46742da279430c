"""idp.vendors: each profile's response has the shape of a real response from that product.

The shape of a real corpus sample and of a response built with the profile are read the same
way (with the one parser) and compared point by point: Issuer form, what is signed, NameID
format, Conditions, the vendor's own claim names, NameFormat and FriendlyName. Every response
a profile produces verifies with our own verifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from idp.assertion import ResponseSpec, build_response
from idp.errors import IdPError, SettingsError, UnknownVendor
from idp.settings import Persona
from idp.vendors import MS_CLAIMS, PROFILES, WS_CLAIMS, VendorProfile, profile
from metadata.keys import KeyPair, generate_keypair
from metadata.response import verify_response
from metadata.saml import DS, SAML, SAMLP, UNSPECIFIED
from metadata.signing import RSA_SHA1, RSA_SHA256
from metadata.xml import PASTED_LIMITS, parse_untrusted
from tests.factory import NOW

NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}
BASE_URL = "http://127.0.0.1:8080"
SP_ENTITY = "https://sso.portal.example/saml"
ACS = "https://sso.portal.example/saml/acs"
ALICE = Persona(id="alice", display_name="Alice Customer", nameid="alice@example.com",
                claims={"AccountNumber": "100200300", "Email": "alice@example.com", "LoginTypeId": ["1", "2"]})
AUDIENCE = "saml:AudienceRestriction/saml:Audience"
VENDORS = [key for key in PROFILES if key != "generic"]


@dataclass(frozen=True)
class Real:
    """Where a vendor's real shape is read, and what ours must match."""

    sample: str
    """Read for the Issuer, signatures, NameID and Conditions."""
    issuer: str
    """A pattern the real Issuer matches, and ours must too."""
    standard: tuple[str, ...] = ()
    """The vendor's own claim names in the sample, which our profile must send too."""
    claims_sample: str | None = None
    """Read for the attributes, when `sample` has none."""


REAL = {
    # okta-ssoready-2024 signs Response and Assertion, as do okta-dev-969244-2017 and -116807-2016;
    # the encrypted 2020 samples vary (per-app settings), so the plain, newest one is followed, also
    # for its emailAddress NameID (969244 sends persistent, 116807 unspecified: both per-app choices).
    # It has no attributes: 969244 gives them (the admin's own names; Okta adds none).
    "okta": Real("okta/okta-ssoready-2024-signed-response-and-assertion.xml", r"^http://www\.okta\.com/exk\w{17}$",
                 claims_sample="okta/okta-dev-969244-2017-signed-response-and-assertion.xml"),
    "entra": Real(
        "entra-id/entra-id-ssoready-2023-signed-assertion.xml",
        r"^https://sts\.windows\.net/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/$",
        (*(MS_CLAIMS + n for n in ("tenantid", "objectidentifier", "displayname", "identityprovider")),
         "http://schemas.microsoft.com/claims/authnmethodsreferences",
         *(WS_CLAIMS + n for n in ("givenname", "surname", "emailaddress", "name"))),
    ),
    # AD FS sends the NameID its rules make: spstest2-2017 and 2021 emailAddress (followed), bead-loc-2013
    # transient, bead-loc-2014 and samlwin-2015 none at all.
    "adfs": Real("adfs/adfs-spstest2-2017-signed-assertion.decoded.xml", r"^https?://[^/]+/adfs/services/trust$",
                 (WS_CLAIMS + "givenname", WS_CLAIMS + "surname")),
    # google-workspace-2023 signs the Assertion (Google's default); google-apps-2016 signs the
    # Response (its "Signed response" box ticked) and is read only for its attributes, which the
    # 2023 sample does not have.
    "google": Real("google-workspace/google-workspace-ssoready-2023-signed-assertion.xml",
                   r"^https://accounts\.google\.com/o/saml2\?idpid=C0[a-z0-9]{7}$",
                   claims_sample="google-workspace/google-apps-2016-signed-response.decoded.xml"),
    # PingOne's Issuer form is Ping's own, and the validator detects it ("ping" is its alias).
    "pingone": Real("pingone/pingone-ssoready-2023-signed-assertion.xml",
                 r"^https://auth\.pingone\.com/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                 ("saml_subject",)),
    # onelogin-164679-2013 and -634027-2017 sign the Assertion; -503983-2016 signs the Response.
    # The two that agree are followed (OneLogin's default signature element is the Assertion).
    "onelogin": Real("onelogin/onelogin-164679-2013-signed-assertion-external-ns.xml",
                     r"^https://app\.onelogin\.com/saml/metadata/\d{6}$",
                     ("User.email", "User.FirstName", "User.LastName", "User.Username")),
    "keycloak": Real("keycloak/keycloak-ssoready-2024-signed-assertion.xml", r"^https?://[^/]+(/auth)?/realms/[^/]+$",
                     ("Role",)),
    # PingFederate's entity ID is whatever the admin typed (the pfed11 samples are anonymised); 01 and
    # 05 sign the Response (followed), 02 and 03 the Assertion (a per-connection choice).
    "pingfederate": Real("pingfederate/pingfederate-pfed11-response-01.decoded.xml", r"^https?://[^/]+(:\d+)?(/.*)?$"),
    # JumpCloud's entity ID is free text (the sample's is "IdP Entity ID"); the sample has no attributes.
    "jumpcloud": Real("jumpcloud/jumpcloud-ssoready-2023-signed-assertion.xml", r"^\S"),
    "auth0": Real("auth0/auth0-scaleft-test-2016-signed-assertion.xml", r"^urn:[\w.-]+\.auth0\.com$",
                  tuple(WS_CLAIMS + n for n in ("nameidentifier", "emailaddress", "name", "givenname", "surname",
                                                "upn"))),
    # Both Shibboleth samples (this one and samltest.id's, once decrypted) sign Response and Assertion.
    "shibboleth": Real("shibboleth/ukfederation-test-idp-2022-redacted.xml", r"^https?://[^/]+/idp/shibboleth$",
                       ("urn:oid:1.3.6.1.4.1.5923.1.1.1.6",)),
}


@dataclass(frozen=True)
class Shape:
    issuer: str
    issuer_format: str | None
    signed: frozenset[str]
    signature_methods: frozenset[str]
    nameid_format: str
    conditions: tuple[tuple[str, tuple[str, ...]], ...]
    audiences: tuple[str, ...]
    names: tuple[str, ...]
    name_formats: frozenset[str | None]
    friendly_names: frozenset[bool]


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def shape_of(root: etree._Element) -> Shape:
    assertion = root.find("saml:Assertion", NS)
    assert root.tag == f"{{{SAMLP}}}Response" and assertion is not None
    issuer = root.find("saml:Issuer", NS)
    assert issuer is not None and issuer.text is not None
    nameid = assertion.find("saml:Subject/saml:NameID", NS)
    assert nameid is not None
    conditions = assertion.find("saml:Conditions", NS)
    assert conditions is not None
    attributes = assertion.findall("saml:AttributeStatement/saml:Attribute", NS)
    return Shape(
        issuer=issuer.text.strip(),
        issuer_format=issuer.get("Format"),
        signed=frozenset(local(e) for e in (root, assertion) if e.find("ds:Signature", NS) is not None),
        signature_methods=frozenset(str(m.get("Algorithm")) for m in root.iterfind(".//ds:SignatureMethod", NS)),
        # SAML Core §2.2.2: a NameID without Format is unspecified.
        nameid_format=nameid.get("Format", UNSPECIFIED),
        conditions=tuple((local(c), tuple(local(g) for g in c)) for c in conditions),
        audiences=tuple((a.text or "").strip() for a in conditions.iterfind(AUDIENCE, NS)),
        names=tuple(str(a.get("Name")) for a in attributes),
        name_formats=frozenset(a.get("NameFormat") for a in attributes),
        friendly_names=frozenset(a.get("FriendlyName") is not None for a in attributes),
    )


def real_shape(corpus: Path, real: Real) -> Shape:
    def read(name: str) -> Shape:
        return shape_of(parse_untrusted((corpus / "responses" / name).read_bytes(), PASTED_LIMITS).getroot())

    shape = read(real.sample)
    if real.claims_sample is None:
        return shape
    claims = read(real.claims_sample)
    return replace(shape, names=claims.names, name_formats=claims.name_formats, friendly_names=claims.friendly_names)


@pytest.fixture(scope="module")
def idp_key() -> KeyPair:
    return generate_keypair("idp.test", now=NOW - timedelta(days=1))


def respond(vendor: VendorProfile, idp_key: KeyPair, persona: Persona = ALICE) -> etree._Element:
    entity_id = vendor.entity_id(BASE_URL)
    spec = ResponseSpec(
        issuer=entity_id, destination=ACS, audience=SP_ENTITY, in_response_to="_request1",
        nameid=persona.nameid, nameid_format=vendor.nameid_format, session_index="_session1",
        claims=vendor.claims(persona, entity_id=entity_id), sign=vendor.sign,
    )
    # Serialised and parsed again with the one parser, as an SP receives it.
    response = build_response(spec, now=NOW, key=idp_key)
    return parse_untrusted(etree.tostring(response), PASTED_LIMITS).getroot()


@pytest.mark.parametrize("vendor_key", VENDORS)
def test_shape_matches_the_real_sample(vendor_key: str, idp_key: KeyPair, corpus: Path) -> None:
    vendor, real = PROFILES[vendor_key], REAL[vendor_key]
    theirs, ours = real_shape(corpus, real), shape_of(respond(vendor, idp_key))

    assert re.search(real.issuer, theirs.issuer), theirs.issuer
    assert re.search(real.issuer, ours.issuer), ours.issuer
    assert vendor.issuer_format == theirs.issuer_format
    if vendor.issuer_format is not None:
        assert ours.issuer_format == vendor.issuer_format
    # Otherwise ours still says Format="…entity": build_response always writes it (same meaning).

    assert ours.signed == theirs.signed == {"both": {"Response", "Assertion"}, "response": {"Response"},
                                            "assertion": {"Assertion"}}[vendor.sign]
    # SHA-1 is only ever a deliberate fault (STYLE.md §3): a SHA-1 sample is matched with SHA-256.
    assert ours.signature_methods == {RSA_SHA256 if m == RSA_SHA1 else m for m in theirs.signature_methods}
    assert ours.nameid_format == theirs.nameid_format == vendor.nameid_format

    assert ours.conditions == theirs.conditions == (("AudienceRestriction", ("Audience",)),)
    assert ours.audiences == (SP_ENTITY,)

    assert set(real.standard) <= set(theirs.names)
    assert set(real.standard) <= set(ours.names)
    if theirs.names:  # jumpcloud's only sample has no attributes: nothing to compare them with
        assert ours.name_formats == theirs.name_formats
        assert ours.friendly_names == theirs.friendly_names


@pytest.mark.parametrize("vendor_key", list(PROFILES))
def test_response_verifies(vendor_key: str, idp_key: KeyPair) -> None:
    vendor = PROFILES[vendor_key]
    verified = verify_response(respond(vendor, idp_key), (idp_key.cert_der,), allow_sha1=True)
    assert verified.response_signed == (vendor.sign in ("response", "both"))
    assert verified.assertion_signed == (vendor.sign in ("assertion", "both"))
    sent = verified.assertion.findall("saml:AttributeStatement/saml:Attribute", NS)
    assert [a.get("Name") for a in sent] == [c.name for c in vendor.claims(ALICE, entity_id=vendor.entity_id(BASE_URL))]


@pytest.mark.parametrize("vendor_key", list(PROFILES))
def test_persona_claims_are_sent_exactly_as_written(vendor_key: str) -> None:
    vendor = PROFILES[vendor_key]
    persona = ALICE.model_copy(update={"claims": {"accountNumber ": "7", "Login-Type.ID": ["1", "2"]}})
    sent = vendor.claims(persona, entity_id=vendor.entity_id(BASE_URL))
    claims = {c.name: c for c in sent}
    # Each persona claim is sent once (a vendor may repeat its own, as Keycloak repeats Role).
    assert [c.name for c in sent].count("accountNumber ") == [c.name for c in sent].count("Login-Type.ID") == 1
    assert claims["accountNumber "].values == ("7",)
    assert claims["Login-Type.ID"].values == ("1", "2")
    assert claims["Login-Type.ID"].name_format == vendor.name_format


@pytest.mark.parametrize(("vendor_key", "name"), [
    ("entra", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"),
    ("adfs", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"),
    ("pingone", "saml_subject"),
    ("ping", "saml_subject"),  # the alias
    ("auth0", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"),
    ("onelogin", "User.email"),
    ("keycloak", "Role"),
    ("shibboleth", "urn:oid:0.9.2342.19200300.100.1.3"),
])
def test_a_persona_claim_wins_over_the_vendor_claim_of_the_same_name(vendor_key: str, name: str) -> None:
    vendor = profile(vendor_key)
    entity_id = vendor.entity_id(BASE_URL)
    assert name in [c.name for c in vendor.claims(ALICE, entity_id=entity_id)]
    persona = ALICE.model_copy(update={"claims": {**ALICE.claims, name: "from-the-persona"}})
    sent = [c for c in vendor.claims(persona, entity_id=entity_id) if c.name == name]
    assert [c.values for c in sent] == [("from-the-persona",)]


def test_generic_is_the_idps_own_behaviour() -> None:
    generic = profile("generic")
    assert generic.entity_id(BASE_URL + "/") == f"{BASE_URL}/metadata"
    assert (generic.sign, generic.name_format) == ("assertion", "unspecified")
    assert [c.name for c in generic.claims(ALICE, entity_id="x")] == list(ALICE.claims)


# Golden: an SP registers the IdP's entity ID once, so it must not change across restarts or releases.
ENTITY_IDS = {
    "okta": "http://www.okta.com/exkmb3HNAxKYHyrPUBpF",
    "entra": "https://sts.windows.net/ef164e60-c60a-4454-a751-64722bdba866/",
    "adfs": "http://127.0.0.1:8080/adfs/services/trust",
    "google": "https://accounts.google.com/o/saml2?idpid=C0clyy48r",
    "pingone": "https://auth.pingone.com/215eceeb-2090-4f7b-8217-987610284301",
    "pingfederate": "http://127.0.0.1:8080",
    "jumpcloud": "http://127.0.0.1:8080",
    "auth0": "urn:preflight-irbtnrnr.eu.auth0.com",
    "onelogin": "https://app.onelogin.com/saml/metadata/929262",
    "keycloak": "http://127.0.0.1:8080/realms/preflight",
    "shibboleth": "http://127.0.0.1:8080/idp/shibboleth",
    "generic": "http://127.0.0.1:8080/metadata",
}


@pytest.mark.parametrize("vendor_key", list(PROFILES))
def test_entity_id_is_deterministic(vendor_key: str) -> None:
    vendor = PROFILES[vendor_key]
    assert vendor.entity_id(BASE_URL) == vendor.entity_id(BASE_URL + "/") == ENTITY_IDS[vendor_key]
    assert vendor.entity_id("https://idp.other.example") != ENTITY_IDS[vendor_key]
    entity_id = vendor.entity_id(BASE_URL)
    assert vendor.claims(ALICE, entity_id=entity_id) == vendor.claims(ALICE, entity_id=entity_id)


def test_vendor_claims_are_derived_from_the_persona() -> None:
    entra = profile("entra")
    entity_id = entra.entity_id(BASE_URL)
    claims = {c.name: c.values for c in entra.claims(ALICE, entity_id=entity_id)}
    tenant = claims[MS_CLAIMS + "tenantid"]
    assert entity_id == f"https://sts.windows.net/{tenant[0]}/"
    assert claims[WS_CLAIMS + "emailaddress"] == ("alice@example.com",)
    assert claims[WS_CLAIMS + "givenname"] == ("Alice",)
    bob = ALICE.model_copy(update={"id": "bob", "nameid": "bob", "display_name": ""})
    others = {c.name: c.values for c in entra.claims(bob, entity_id=entity_id)}
    oid = MS_CLAIMS + "objectidentifier"
    assert others[oid] != claims[oid]
    assert WS_CLAIMS + "emailaddress" not in others  # a NameID that is not an address gives no email


def test_uri_form() -> None:
    for vendor in PROFILES.values():
        assert vendor.uri_form("AccountNumber") == WS_CLAIMS + "AccountNumber"
        assert vendor.uri_form(WS_CLAIMS + "upn") == WS_CLAIMS + "upn"


def test_unknown_vendor_names_every_choice() -> None:
    with pytest.raises(UnknownVendor) as raised:
        profile("nope")
    assert isinstance(raised.value, IdPError) and isinstance(raised.value, ValueError)
    assert str(raised.value) == ("unknown vendor profile 'nope'; choose one of: "
                                 "okta, entra, adfs, google, pingone, pingfederate, onelogin, keycloak, shibboleth, "
                                 "jumpcloud, auth0, generic, ping")


def test_ping_is_an_alias_of_pingone() -> None:
    assert profile("ping") is profile("pingone") and "ping" not in PROFILES



def test_the_settings_and_the_cli_refuse_an_unknown_vendor_naming_the_choices(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from idp.cli import cli
    from idp.settings import load_settings

    path = tmp_path / "idp.toml"
    path.write_text('[server]\nvendor = "okat"\n')
    with pytest.raises(SettingsError, match=r'server\.vendor: must be one of generic, okta, entra, adfs, google, '
                                            r'pingone, pingfederate, ping, onelogin, keycloak, shibboleth, jumpcloud, '
                                            r'auth0; got "okat" \(did you mean "okta"'):
        load_settings(path, environ={})
    refused = CliRunner().invoke(cli, ["serve", "--vendor", "okat"])
    assert refused.exit_code == 2 and "'okat' is not one of 'generic', 'okta'" in refused.output


def test_the_idp_publishes_the_vendors_entity_id(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from idp.cli import cli

    (tmp_path / "idp.toml").write_text(f'[server]\nkey_folder = "{tmp_path / "keys"}"\n')
    shown = CliRunner().invoke(cli, ["metadata", "--config", str(tmp_path / "idp.toml"), "--vendor", "entra"])
    assert shown.exit_code == 0, shown.output
    assert re.search(r'entityID="https://sts\.windows\.net/[0-9a-f-]{36}/"', shown.output)


def test_keycloak_repeats_role_as_its_real_responses_do(corpus: Path) -> None:
    from metadata.xml import MESSAGE_LIMITS, parse_untrusted

    path = corpus / "responses" / "keycloak" / "keycloak-ssoready-2024-signed-assertion.xml"
    sample = parse_untrusted(path.read_bytes(), MESSAGE_LIMITS).getroot()
    real = [a.get("Name") for a in sample.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Attribute")]
    ours = [c.name for c in PROFILES["keycloak"].claims(ALICE, entity_id=PROFILES["keycloak"].entity_id(BASE_URL))]
    assert real.count("Role") > 1 and ours.count("Role") > 1
