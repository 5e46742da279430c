"""Discovery that knows each product (issue 16): every single-IdP file of the corpus named rightly
or not at all, the metadata URL inferred where the product fixes it (or said to be published
nowhere), PingFederate told from PingOne, Okta on a custom domain, and the login types in the
setup section. Each behaviour has a case that passes and one that must not."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path

import pytest

from metadata.crm import VENDORS as CRM_VENDORS
from metadata.crm import CRMRecord, parse_crm
from metadata.fetch import FetchPolicy
from tests.factory import IdPSpec, idp_metadata
from tests.helpers import crm_toml
from tests.test_fetch import respond, serving
from validator.discovery import Worksheet, build_worksheet, iframe_verdict, probed_worksheet, setup_hints
from validator.framing import FrameProbe
from validator.inspection import MetadataOptions, inspect_metadata
from validator.metadata_facts import metadata_report
from validator.render.worksheet import (
    raw_answers,
    render_markdown,
    render_worksheet_html,
    render_worksheet_text,
    worksheet_json,
)
from validator.vendor import detect, published_metadata

NONE = "none published"
LOCAL = FetchPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
PORTAL = "https://sso.portal.example"

# Every single-IdP file of the corpus (one IDPSSODescriptor): the product expected (None: not
# recognised, and never a wrong name) and the metadata URL answer (a URL, NONE, or None for no answer).
TABLE: dict[str, tuple[str | None, str | None]] = {
    "adfs/adfs-bead-loc-2013-federationmetadata-signed.xml":
        ("adfs", "https://b1.bead.loc/FederationMetadata/2007-06/FederationMetadata.xml"),
    "adfs/adfs-owensborohealth-federationmetadata-MODIFIED.xml":
        ("adfs", "https://idp.adfs.example.com/FederationMetadata/2007-06/FederationMetadata.xml"),
    "adfs/adfs-unilever-2014-federationmetadata-signed.xml":
        ("adfs", "https://adfs.server.url/FederationMetadata/2007-06/FederationMetadata.xml"),
    "entra-id/azure-ad-2012-federationmetadata-signed.xml":
        ("entra", "https://login.microsoftonline.com/554fadfe-f04f-4975-90cb-ddc8b147aaa2/federationmetadata/"
                  "2007-06/federationmetadata.xml?appid=<the portal app's Application ID>"),
    "entra-id/azure-ad-2014-federationmetadata-two-signing-certs-signed.xml":
        ("entra", "https://login.microsoftonline.com/8bd6e98d-e212-4022-b13f-a244fab4c253/federationmetadata/"
                  "2007-06/federationmetadata.xml?appid=<the portal app's Application ID>"),
    "entra-id/entra-id-tenant-a9054a0f-federationmetadata-2023-signed.xml":
        ("entra", "https://login.microsoftonline.com/a9054a0f-2011-4e31-b3ac-fd8c354146ec/federationmetadata/"
                  "2007-06/federationmetadata.xml?appid=<the portal app's Application ID>"),
    "google-workspace/google-apps-C02dfl1r1-metadata-2016.xml": ("google", NONE),
    "google-workspace/google-workspace-C029op2ga-metadata-2023.xml": ("google", NONE),
    "jumpcloud/jumpcloud-metadata-2023.xml": ("jumpcloud", NONE),
    "keycloak/keycloak-24-realm-master-metadata-2024.xml":
        ("keycloak", "http://localhost:8085/realms/master/protocol/saml/descriptor"),
    "okta/okta-classic-app-idp-metadata-custom-issuer-vcr.xml":
        ("okta", "https://classic-00.dne-okta.com/app/exkkwurohcOew6P411d7/sso/saml/metadata"),
    "okta/okta-classic-app-idp-metadata-vcr.xml":
        ("okta", "https://classic-00.dne-okta.com/app/exksdrrxd78KqS2xX697/sso/saml/metadata"),
    "okta/okta-classic-app-idp-metadata-with-slo-vcr.xml":
        ("okta", "https://classic-00.dne-okta.com/app/exkkwuvdo2obI6Dkf1d7/sso/saml/metadata"),
    "okta/okta-dev-513394-app-metadata-2020.xml":
        ("okta", "https://dev-513394.oktapreview.com/app/exkppsa1qwuFV4D7z0h7/sso/saml/metadata"),
    "okta/okta-oie-app-idp-metadata-vcr.xml":
        ("okta", "https://oie-00.dne-okta.com/app/exksdrqbmo7fCjHC4697/sso/saml/metadata"),
    "okta/okta-pivotal-sample-BROKEN-ds-namespace.xml":
        ("okta", "https://pivotal.oktapreview.com/app/k2lvtem0VAJDMINKEYJW/sso/saml/metadata"),
    "okta/okta-trial-102286-app-metadata-2024.xml":
        ("okta", "https://trial-1022863.okta.com/app/exkdoocxa1VmjpXmX697/sso/saml/metadata"),
    "onelogin/onelogin-383123-metadata.xml": ("onelogin", "https://app.onelogin.com/saml/metadata/383123"),
    "onelogin/onelogin-503983-metadata-2016.xml": ("onelogin", "https://app.onelogin.com/saml/metadata/503983"),
    "onelogin/onelogin-645460-metadata.xml": ("onelogin", "https://app.onelogin.com/saml/metadata/645460"),
    "openam/openam-idp-metadata.xml":
        ("forgerock", "http://openam.example.com:8181/openam/saml2/jsp/exportmetadata.jsp"
                      "?entityid=http%3A%2F%2Fopenam.example.com%3A8181%2Fopenam&realm=/"),
    "pingone/pingone-3030059e-metadata-2023.xml":
        ("ping", "https://auth.pingone.com/3030059e-440b-4ad0-9217-44326f1757f6/saml20/metadata/<the portal app's ID>"),
    "secureworks/secureworks-idp-metadata.xml": (None, None),
    "shibboleth/abes-sharav-shibboleth-idp-metadata.xml": ("shibboleth", "https://sharav.abes.fr/idp/shibboleth"),
    "shibboleth/aconet-idp-metadata.xml": ("shibboleth", "https://idp.aco.net/idp/shibboleth"),
    "shibboleth/funet-testidp-and-sps-entities.xml": ("shibboleth", "https://testidp.funet.fi/idp/shibboleth"),
    "shibboleth/samltest-id-idp-metadata.xml": ("shibboleth", "https://samltest.id/idp/shibboleth"),
    "shibboleth/shibboleth-idp3-unicon-metadata.xml":
        ("shibboleth", "https://mmoayyed.example.net:8443/cas/idp/shibboleth"),
    "shibboleth/shibboleth-sphericalcowgroup-idp-metadata.xml":
        ("shibboleth", "https://login.sphericalcowgroup.com/idp/shibboleth"),
    "shibboleth/testshib-providers-2006-cert.xml": ("shibboleth", "https://idp.testshib.org/idp/shibboleth"),
    "shibboleth/testshib-providers-2016.xml": ("shibboleth", "https://idp.testshib.org/idp/shibboleth"),
    "simplesamlphp/feide-openidp-simplesamlphp-metadata.xml":
        ("simplesamlphp", "https://openidp.feide.no/simplesaml/saml2/idp/metadata.php"),
    "simplesamlphp/simplesamlphp-docker-idp-metadata.xml":
        ("simplesamlphp", "http://192.168.99.100:8080/simplesaml/saml2/idp/metadata.php"),
    "simplesamlphp/simplesamlphp-umu-xenosmilus-entities.xml":
        ("simplesamlphp", "http://xenosmilus.umdc.umu.se/simplesaml/saml2/idp/metadata.php"),
    "surfconext/surfconext-engineblock-idp-metadata-2016-signed.xml":
        ("openconext", "https://engine.surfconext.nl/authentication/idp/metadata"),
    "vmware-vcenter-sso/vmware-vsphere-sso-metadata-2014.xml":
        ("vmware", "https://win2012-sso2.localdomain:7444/websso/SAML2/Metadata/vsphere.local"),
}


def worksheet(path: Path, crm: CRMRecord | None = None, policy: FetchPolicy | None = None) -> Worksheet:
    """The worksheet as `discover` builds it; with `policy`, its live questions are asked under it."""
    inspection = inspect_metadata(str(path), MetadataOptions(now=datetime(2026, 12, 6, tzinfo=UTC)), crm)
    return probed_worksheet(inspection, metadata_report(inspection), crm, metadata_url=None, policy=policy)


def metadata_answer(ws: Worksheet) -> str | None:
    """The table's form of the metadata URL answer: the URL, NONE, or None when not answered."""
    lines = dict(raw_answers(ws))["The metadata XML URL"]
    if ws.published is None:
        assert lines[0].startswith("not known: ask the partner")
        return None
    if ws.published.url is None:
        assert lines == [ws.published.how] and "publishes no metadata URL" in lines[0]
        return NONE
    assert lines[1].startswith("inferred, not given: ")  # always labelled
    return lines[0]


# ---- the corpus table -------------------------------------------------------------------------

def single_idp_files(corpus: Path) -> list[str]:
    """The corpus's IdP metadata files that describe exactly one IdP (an aggregate describes many)."""
    from metadata.read import NotMetadata, read_metadata
    from metadata.xml import metadata_limits, parse_untrusted

    found = []
    for path in sorted((corpus / "idp-metadata").rglob("*.xml")):
        try:
            document = read_metadata(parse_untrusted(path.read_bytes(), metadata_limits()))
        except NotMetadata:  # the eIDAS country list is not SAML metadata
            continue
        if len(document.idp_entities) == 1:
            found.append(path.relative_to(corpus / "idp-metadata").as_posix())
    return found


def test_the_table_covers_every_single_idp_file_of_the_corpus(corpus: Path) -> None:
    assert sorted(single_idp_files(corpus)) == sorted(TABLE)
    assert len(TABLE) == 36


@pytest.mark.parametrize("name", sorted(TABLE))
def test_each_corpus_file_names_its_product_and_its_metadata_url(name: str, corpus: Path) -> None:
    product, url = TABLE[name]
    ws = worksheet(corpus / "idp-metadata" / name)
    detected = ws.detection.vendor.key if ws.detection else None
    assert detected == product  # never a wrong name; None stays "not recognised"
    assert (ws.vendor_name == "not recognised") is (product is None)
    assert metadata_answer(ws) == url


def test_at_least_34_of_36_are_recognised_and_none_wrongly(corpus: Path) -> None:
    named = {name: worksheet(corpus / "idp-metadata" / name).detection for name in TABLE}
    recognised = [name for name, d in named.items() if d is not None]
    assert len(recognised) >= 34, sorted(set(TABLE) - set(recognised))
    assert all(named[n].vendor.key == TABLE[n][0] for n in recognised)  # type: ignore[union-attr]
    answered = [n for n in TABLE if TABLE[n][1] is not None]
    assert len(answered) == 35  # all but SecureWorks, whose product is not known


def test_an_unknown_product_is_not_named_nor_given_a_url(corpus: Path) -> None:
    # the fail case: SecureWorks runs its own IdP; its URLs fit no product's pattern
    ws = worksheet(corpus / "idp-metadata/secureworks/secureworks-idp-metadata.xml")
    assert ws.detection is None and ws.vendor_name == "not recognised" and ws.published is None
    assert detect("https://idp.example/SAML2", ["https://idp.example/SAML2/SSO/POST"]) is None
    # a look-alike of a product's path that breaks its pattern is not inferred
    assert published_metadata("okta", "http://www.okta.com/x", ["https://acme.okta.com/app/x/sso/saml"]) is None
    assert published_metadata("entra", "https://sts.windows.net/not-a-tenant/", []) is None
    assert published_metadata("adfs", "urn:adfs", ["not a url", "https://[::1/adfs/ls/"]) is None


def test_a_url_that_needs_the_partners_value_is_shown_but_never_probed(corpus: Path) -> None:
    path = corpus / "idp-metadata/pingone/pingone-3030059e-metadata-2023.xml"
    inspection = inspect_metadata(str(path), MetadataOptions(now=datetime(2026, 12, 6, tzinfo=UTC)), None)
    asked: list[str] = []
    ws = build_worksheet(inspection, metadata_report(inspection), None, metadata_url=None, probe=None,
                         published_probe=lambda url, entity_id: asked.append(url) or "asked")
    assert asked == []
    assert ws.published is not None and ws.published.probe_url is None and ws.published_probe is None
    assert "probe: not probed: the URL needs a value only the partner has" in dict(raw_answers(ws))[
        "The metadata XML URL"]


def test_the_draft_offers_the_inferred_url_commented_out_and_the_json_labels_it(corpus: Path) -> None:
    ws = worksheet(corpus / "idp-metadata" / "onelogin/onelogin-383123-metadata.xml")
    assert '# metadata_url = "https://app.onelogin.com/saml/metadata/383123"  # inferred' in ws.draft
    assert parse_crm(ws.draft, "d.toml", "toml").idp.metadata_url is None  # trust is never taken from a guess
    shown = worksheet_json(ws)["metadata_url"]
    assert shown == {"source": "inferred", "url": "https://app.onelogin.com/saml/metadata/383123",
                     "how": "OneLogin's entity ID is its metadata URL", "probe": None}
    google = worksheet_json(worksheet(corpus / "idp-metadata" / "google-workspace/"
                                      "google-workspace-C029op2ga-metadata-2023.xml"))["metadata_url"]
    assert google["source"] == NONE and google["url"] is None  # type: ignore[index, call-overload]
    assert "download the IdP metadata file" in google["how"]  # type: ignore[index, call-overload, operator]
    unknown = worksheet_json(worksheet(corpus / "idp-metadata/secureworks/secureworks-idp-metadata.xml"))
    assert unknown["metadata_url"] == {"source": "unknown", "url": None, "how": None, "probe": None}


# ---- probing the inferred URL -----------------------------------------------------------------

def _local_idp(tmp_path: Path, base: str) -> Path:
    entity_id = f"{base}/simplesaml/saml2/idp/metadata.php"
    path = tmp_path / "idp.xml"
    path.write_bytes(idp_metadata(IdPSpec(entity_id=entity_id, sso=[
        ("HTTP-Redirect", f"{base}/simplesaml/saml2/idp/SSOService.php")])))
    return path


def test_the_inferred_url_is_probed_with_the_framing_probes_policy(tmp_path: Path) -> None:
    with serving() as server:
        base = server.url("")
        path = _local_idp(tmp_path, base)
        server.routes["/simplesaml/saml2/idp/metadata.php"] = respond(200, path.read_bytes(), "application/xml")
        server.routes["/simplesaml/saml2/idp/SSOService.php"] = respond(400, b"no request", "text/html")
        ws = worksheet(path, policy=LOCAL)
        server.routes["/simplesaml/saml2/idp/metadata.php"] = respond(404, b"gone", "text/plain")
        gone = worksheet(path, policy=LOCAL)
    assert ws.published_probe is not None and ws.published_probe.startswith("confirmed: ")
    assert "naming this entity ID" in ws.published_probe
    assert "probe: confirmed: " in render_markdown(ws)
    assert gone.published_probe is not None and gone.published_probe.startswith("not confirmed: ")


def test_the_inferred_url_is_probed_when_the_metadata_gives_no_sign_in_url(tmp_path: Path) -> None:
    with serving() as server:
        base = server.url("")
        path = tmp_path / "idp.xml"
        path.write_bytes(idp_metadata(IdPSpec(entity_id=f"{base}/simplesaml/saml2/idp/metadata.php", sso=[])))
        server.routes["/simplesaml/saml2/idp/metadata.php"] = respond(200, path.read_bytes(), "application/xml")
        ws = worksheet(path, policy=LOCAL)
    assert ws.sso == () and ws.iframe is not None
    assert ws.published_probe is not None and ws.published_probe.startswith("confirmed: ")


def test_without_a_probe_or_with_the_default_policy_nothing_private_is_fetched(tmp_path: Path) -> None:
    path = _local_idp(tmp_path, "http://10.0.0.1")
    assert worksheet(path).published_probe is None  # --no-probe: nothing asked
    refused = worksheet(path, policy=FetchPolicy(allow_http=True))
    assert refused.published_probe is not None and refused.published_probe.startswith("not confirmed: ")
    assert "10.0.0.1" in refused.published_probe


# ---- PingFederate and PingOne -----------------------------------------------------------------

def _ping(tmp_path: Path, entity_id: str, sso: str) -> Worksheet:
    path = tmp_path / "ping.xml"
    path.write_bytes(idp_metadata(IdPSpec(entity_id=entity_id, sso=[("HTTP-Redirect", sso)])))
    return worksheet(path)


def test_pingfederate_is_told_from_pingone(tmp_path: Path, corpus: Path) -> None:
    federate = _ping(tmp_path, "https://sso.acme.example", "https://sso.acme.example/idp/SSO.saml2")
    assert federate.detection is not None and federate.detection.vendor.key == "pingfederate"
    assert federate.vendor_name == "PingFederate"
    where = " ".join(h.where for h in federate.hints)
    assert "SP Connections" in where and "PingOne" not in where
    one = worksheet(corpus / "idp-metadata/pingone/pingone-3030059e-metadata-2023.xml")
    assert one.detection is not None and one.detection.vendor.key == "ping" and one.vendor_name == "PingOne"
    assert "PingOne › Applications" in " ".join(h.where for h in one.hints)


def test_pingones_own_hosts_are_never_called_pingfederate(tmp_path: Path) -> None:
    # the fail case: PingOne classic serves the same path name on Ping's cloud
    classic = _ping(tmp_path, "https://pingone.com/idp/acme", "https://sso.connect.pingidentity.com/sso/idp/SSO.saml2")
    assert classic.detection is not None and classic.detection.vendor.key == "ping"
    on_cloud = detect("https://x.example", ["https://auth.pingone.eu/idp/SSO.saml2"])
    assert on_cloud is not None and on_cloud.vendor.key == "ping"


def test_records_may_say_pingfederate_and_ping_still_means_pingone() -> None:
    assert {"ping", "pingfederate"} <= set(CRM_VENDORS)
    record = parse_crm(crm_toml(idp={"vendor": "pingfederate"}), "r.toml", "toml")
    assert record.idp.vendor == "pingfederate"
    assert "PingOne" in " ".join(h.where for h in setup_hints("ping", record))
    assert "PingFederate" in " ".join(h.where for h in setup_hints("pingfederate", record))


# ---- the iframe verdict -----------------------------------------------------------------------

def test_okta_on_its_custom_domain_is_possible_with_the_trusted_origin_step() -> None:
    sign_in = "https://login.acme.example/app/acme_portal_1/exk1/sso/saml"
    verdict = iframe_verdict("okta", FrameProbe(sign_in, 200), PORTAL, sign_in)
    assert verdict.verdict == "possible" and verdict.alternatives is None
    assert "custom domain" in verdict.evidence and "'iFrame embed' scope" in verdict.evidence


def test_okta_on_a_custom_domain_whose_headers_refuse_the_portal_is_no() -> None:
    sign_in = "https://login.acme.example/app/acme_portal_1/exk1/sso/saml"
    verdict = iframe_verdict("okta", FrameProbe(sign_in, 200, frame_ancestors=("'self'",)), PORTAL, sign_in)
    assert verdict.verdict == "no" and verdict.alternatives and "new window" in verdict.alternatives


def test_every_other_product_gets_the_alternatives_in_every_format(corpus: Path) -> None:
    ws = worksheet(corpus / "idp-metadata/adfs/adfs-bead-loc-2013-federationmetadata-signed.xml")
    assert ws.iframe.verdict == "no" and ws.iframe.alternatives is not None
    for words in ("new window", "top-level redirect"):
        assert words in ws.iframe.alternatives
        assert words in render_markdown(ws) and words in render_worksheet_html(ws)
        assert words in render_worksheet_text(ws).replace("\n    ", " ").replace("\n  ", " ")
    assert worksheet_json(ws)["iframe"]["alternatives"] == ws.iframe.alternatives  # type: ignore[index, call-overload]
    okta = worksheet(corpus / "idp-metadata/okta/okta-trial-102286-app-metadata-2024.xml")
    assert okta.iframe.verdict == "possible" and okta.iframe.alternatives is None


# ---- login types in the setup section ---------------------------------------------------------

def test_the_setup_section_lists_each_login_type_id_with_its_role(corpus: Path) -> None:
    record = parse_crm(crm_toml(login_types=((1, "Customer"), (7, "Property Manager"))), "r.toml", "toml")
    ws = worksheet(corpus / "idp-metadata/okta/okta-trial-102286-app-metadata-2024.xml", crm=record)
    rows = [(h.what, h.value) for h in ws.hints if h.what == "Login type ID → role"]
    assert rows == [("Login type ID → role", "1 → Customer"), ("Login type ID → role", "7 → Property Manager")]
    markdown = render_markdown(ws)
    setup = markdown[markdown.index("## Setup"):markdown.index("## Checks")]
    assert "| Login type ID → role | the value of the 'LoginTypeId' claim for the users of this role | 7 → " \
           "Property Manager |" in setup
    text = render_worksheet_text(ws)
    assert "value: 7 → Property Manager" in text[text.index("Setup, in"):text.index("Checks")]
    assert {"what": "Login type ID → role", "where": "the value of the 'LoginTypeId' claim for the users of this "
            "role", "value": "1 → Customer"} in worksheet_json(ws)["setup"]  # type: ignore[operator]


def test_without_login_types_the_setup_section_lists_none(corpus: Path) -> None:
    record = parse_crm(crm_toml(login_types=()), "r.toml", "toml")
    ws = worksheet(corpus / "idp-metadata/okta/okta-trial-102286-app-metadata-2024.xml", crm=record)
    assert not [h for h in ws.hints if h.what == "Login type ID → role"]
    assert not [h for h in worksheet(corpus / "idp-metadata/okta/okta-trial-102286-app-metadata-2024.xml").hints
                if h.what == "Login type ID → role"]
