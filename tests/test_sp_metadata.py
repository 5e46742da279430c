"""The SPM rules (validator/checks/sp_metadata.py): a passing and a failing case for each check."""

from __future__ import annotations

import pytest

from metadata.errors import UnsafeXML
from metadata.fetch_diagnostics import FetchError
from metadata.model import EntityDescriptor, MetadataDocument
from metadata.read import NotMetadata, read_metadata
from metadata.saml import BINDING_ARTIFACT, BINDING_POST
from metadata.xml import parse_untrusted
from tests.factory import session_keypair
from tests.sp_support import NEW_ACS, NEW_SP, SAML1, aggregate, sp_element, sp_metadata
from validator.checks.sp_metadata import acs_allowed, check_sp, choose_sp, unfetched, unreadable
from validator.findings import Severity, get_rule

SOURCE = "the metadata"


def document(xml: str) -> MetadataDocument:
    return read_metadata(parse_untrusted(xml.encode()))


def chosen(xml: str, wanted: str | None = None) -> EntityDescriptor:
    choice = choose_sp(document(xml), wanted, SOURCE)
    assert choice.findings == () and choice.entity is not None
    return choice.entity


def codes(xml: str, *, encrypt: bool = False, dev_mode: bool = False) -> list[str]:
    return [f.code for f in check_sp(chosen(xml), encrypt=encrypt, dev_mode=dev_mode, source=SOURCE)]


def test_the_spm_rules_are_registered_and_documented() -> None:
    for code in ("SPM001", "SPM002", "SPM003", "SPM004", "SPM005", "SPM006", "SPM007"):
        found = get_rule(code)
        assert found is not None and found.subject == "sp-metadata" and found.what and found.why and found.fix
    assert get_rule("SPM007").severity is Severity.WARNING  # type: ignore[union-attr]


def test_one_sp_entity_is_chosen_without_a_name() -> None:
    assert chosen(sp_metadata()).entity_id == NEW_SP
    assert codes(sp_metadata()) == []


@pytest.mark.parametrize("xml", [sp_metadata(idp=True), sp_metadata(protocol=SAML1),
                                 aggregate(sp_element("https://idp.example.com", idp=True))])
def test_spm001_no_saml2_sp_role(xml: str) -> None:
    [finding] = choose_sp(document(xml), None, SOURCE).findings
    assert finding.code == "SPM001" and finding.severity is Severity.ERROR


def test_spm002_an_aggregate_of_several_sps_needs_a_choice() -> None:
    xml = aggregate(sp_element("https://a.example.com/sp"), sp_element("https://b.example.com/sp"))
    choice = choose_sp(document(xml), None, SOURCE)
    assert choice.entity is None and [f.code for f in choice.findings] == ["SPM002"]
    assert "https://a.example.com/sp" in choice.findings[0].message
    assert chosen(xml, "https://b.example.com/sp").entity_id == "https://b.example.com/sp"  # the pass case


def test_an_aggregate_with_one_sp_among_idps_needs_no_choice() -> None:
    xml = aggregate(sp_element("https://idp.example.com", idp=True), sp_element())
    assert chosen(xml).entity_id == NEW_SP


def test_spm003_the_chosen_entity_is_not_there() -> None:
    xml = aggregate(sp_element("https://a.example.com/sp"), sp_element("https://idp.example.com", idp=True))
    choice = choose_sp(document(xml), "https://idp.example.com", SOURCE)  # an IdP, not an SP
    assert choice.entity is None and [f.code for f in choice.findings] == ["SPM003"]
    assert "https://a.example.com/sp" in choice.findings[0].message
    assert [f.code for f in choose_sp(document(sp_metadata()), "https://other", SOURCE).findings] == ["SPM003"]


def test_spm004_no_http_post_acs() -> None:
    assert codes(sp_metadata(acs=[(BINDING_ARTIFACT, NEW_ACS)])) == ["SPM004"]
    assert codes(sp_metadata(acs=[])) == ["SPM004"]
    assert codes(sp_metadata(acs=[(BINDING_ARTIFACT, NEW_ACS), (BINDING_POST, NEW_ACS)])) == []


@pytest.mark.parametrize(("url", "dev_mode", "allowed"), [
    ("https://sp.example.com/acs", False, True),
    ("HTTPS://SP.EXAMPLE.COM/acs", False, True),
    ("http://sp.example.com/acs", False, False),
    ("http://localhost:8000/acs", False, False),
    ("http://localhost:8000/acs", True, True),
    ("http://127.0.0.1/acs", True, True),
    ("http://[::1]:8000/acs", True, True),
    ("http://sp.example.com/acs", True, False),
    ("http://127.0.0.2/acs", True, False),
    ("https:///acs", False, False),
    ("https://sp.example.com/a cs", False, False),
    ("https://sp.example.com/\tacs", False, False),
    ("javascript:alert(1)", True, False),
    ("https://[::1/acs", False, False),
    ("/relative/acs", True, False),
])
def test_acs_allowed_is_the_idps_rule(url: str, dev_mode: bool, allowed: bool) -> None:
    assert acs_allowed(url, dev_mode=dev_mode) is allowed


def test_spm005_an_acs_that_is_not_https() -> None:
    xml = sp_metadata(acs=[(BINDING_POST, "http://sp.example.com/acs"), (BINDING_POST, NEW_ACS)])
    assert codes(xml) == ["SPM005"]
    assert codes(xml, dev_mode=True) == ["SPM005"]  # dev mode allows only a local host
    local = sp_metadata(acs=[(BINDING_POST, "http://localhost:8000/acs")])
    assert codes(local) == ["SPM005"] and codes(local, dev_mode=True) == []
    # only the HTTP-POST ones count: the IdP never uses another binding's
    assert codes(sp_metadata(acs=[(BINDING_ARTIFACT, "http://sp.example.com/a"), (BINDING_POST, NEW_ACS)])) == []


def test_spm005_hides_a_password_in_the_location() -> None:
    xml = sp_metadata(acs=[(BINDING_POST, "http://user:secret@sp.example.com/acs")])
    [finding] = check_sp(chosen(xml), encrypt=False, dev_mode=False, source=SOURCE)
    assert "secret" not in f"{finding.message} {finding.actual}"


def test_spm006_encryption_without_an_encryption_key() -> None:
    signing = session_keypair("sp-signing").cert_der
    encryption = session_keypair("sp-encryption").cert_der
    assert codes(sp_metadata(), encrypt=True) == ["SPM006"]
    assert codes(sp_metadata(keys=[("signing", signing)]), encrypt=True) == ["SPM006"]
    assert codes(sp_metadata(keys=[("encryption", encryption)]), encrypt=True) == []
    assert codes(sp_metadata(keys=[(None, encryption)]), encrypt=True) == []  # no use: both
    assert codes(sp_metadata(), encrypt=False) == []


def test_spm007_signed_requests_without_a_signing_key_is_a_warning() -> None:
    signing = session_keypair("sp-signing").cert_der
    encryption = session_keypair("sp-encryption").cert_der
    [finding] = check_sp(chosen(sp_metadata(authn_requests_signed=True, keys=[("encryption", encryption)])),
                         encrypt=False, dev_mode=False, source=SOURCE)
    assert finding.code == "SPM007" and finding.severity is Severity.WARNING
    assert codes(sp_metadata(authn_requests_signed=True, keys=[("signing", signing)])) == []
    assert codes(sp_metadata(authn_requests_signed=False)) == []


@pytest.mark.parametrize(("data", "code"), [
    (b"", "XML001"),
    (b"<md:EntityDescriptor", "XML002"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', "XML003"),
    (b"<html><body>Sign in</body></html>", "XML007"),
])
def test_unreadable_metadata_keeps_the_xml_findings(data: bytes, code: str) -> None:
    with pytest.raises(UnsafeXML) as caught:
        parse_untrusted(data)
    assert unreadable(caught.value, SOURCE).code == code


def test_xml_that_is_not_metadata_is_xml008() -> None:
    with pytest.raises(NotMetadata) as caught:
        read_metadata(parse_untrusted(b"<samlp:Response xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>"))
    assert unreadable(caught.value, SOURCE).code == "XML008"


def test_a_failed_fetch_keeps_its_net_finding() -> None:
    finding = unfetched(FetchError("scheme", "only https URLs are fetched", url="http://sp.example.com/md"))
    assert finding.code.startswith("NET") and finding.severity is Severity.ERROR
