"""A pass case and a fail case for every metadata rule (MD, KEY, SIG, CRM match, XML)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from metadata.crm import CRMRecord
from metadata.signing import RSA_SHA1, SHA1
from tests.factory import NOW, IdPSpec, KeyPair, idp_metadata, make_keypair, make_sha1_signed_keypair
from tests.helpers import codes, crm, only
from validator.inspection import MetadataOptions, inspect_metadata_bytes
from validator.metadata_facts import metadata_report
from validator.report import Report, facts_json

KEY = make_keypair("idp.example.com")
SIGNER = make_keypair("metadata signer")


def inspect(data: bytes, *, record: CRMRecord | None = None, **options: object) -> Report:
    """The report of `data` as ``saml-validate metadata`` shows it."""
    opts = MetadataOptions(now=options.pop("now", NOW), **options)  # type: ignore[arg-type]
    return metadata_report(inspect_metadata_bytes(data, "test.xml", opts, record))


def facts(report: Report) -> dict[str, Any]:
    """The report's facts as its JSON shows them."""
    return facts_json(report)


def spec(**changes: object) -> IdPSpec:
    base = IdPSpec(keys=[("signing", KEY.cert_b64)])
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def good() -> bytes:
    return idp_metadata(spec())


ERROR_FREE_NOTES = {"MD013", "SIG007"}


def test_clean_metadata_has_only_notes() -> None:
    report = inspect(good(), record=crm())
    assert codes(report) == ERROR_FREE_NOTES
    assert report.exit_code(strict=True) == 0
    assert facts(report)["entity_id"] == "https://idp.example.com/saml"


# --- XML ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "code"), [
    (b"", "XML001"),
    (b"<md:EntityDescriptor", "XML002"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "XML003"),
    (b'<?xml version="1.0" encoding="ISO-8859-1"?><x/>', "XML006"),
    (b"<!DOCTYPE html><html><body>Sign in to Okta</body></html>", "XML007"),
    (b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>', "XML008"),
])
def test_input_refusals(data: bytes, code: str) -> None:
    report = inspect(data)
    assert codes(report) == {code}
    assert report.exit_code() == 1


@pytest.mark.parametrize(("data", "named"), [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>", "a PDF document"),
    (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "a ZIP archive (an Office document is one)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "an old Office document (.doc, .xls, .msg)"),
    (b"\x1f\x8b\x08\x00" + bytes(20), "a gzip-compressed file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
])
def test_a_file_that_is_never_xml_is_named(data: bytes, named: str) -> None:
    # Not the parser's "Start tag expected, '<' not found": what was given instead of metadata.
    [finding] = inspect(data).findings
    assert (finding.code, finding.message, finding.where) == ("XML002", f"the input is {named}, not XML", "test.xml")
    assert "extract the .xml" in (finding.fix or "")


def test_other_input_that_is_not_xml_keeps_the_parsers_words() -> None:
    from metadata.sniff import not_xml_kind

    [finding] = inspect(b"Metadata: see attachment\n%PDF-1.7").findings  # the magic only counts first
    assert finding.code == "XML002" and "not well-formed XML" in finding.message
    assert not_xml_kind(good()) is None and not_xml_kind(b"PK") is None and not_xml_kind(b"") is None
    assert codes(inspect(b"%PDF-" + bytes(200), max_bytes=100)) == {"XML004"}  # too large is said first


def test_oversized_metadata() -> None:
    report = inspect(good(), max_bytes=100)
    assert codes(report) == {"XML004"}


def test_too_deep() -> None:
    report = inspect(b"<a>" * 80 + b"</a>" * 80)
    assert codes(report) == {"XML005"}


# --- MD ------------------------------------------------------------------------------------

def test_schema_errors_all_reported_with_lines() -> None:
    data = good().replace(b"<md:NameIDFormat>", b"<md:Bogus/><md:NameIDFormat>", 1)
    data = data.replace(b'protocolSupportEnumeration="urn', b'protocolSupportEnumeration="" x="urn', 1)
    report = inspect(data)
    schema = [f for f in report.findings if f.code == "MD001"]
    assert len(schema) >= 2
    assert all(f.where and ", line " in f.where for f in schema)
    assert "MD001" not in codes(inspect(good()))


def test_no_idp_role() -> None:
    data = good().replace(b"IDPSSODescriptor", b"SPSSODescriptor")
    assert "MD005" in codes(inspect(data))


def test_saml1_only() -> None:
    report = inspect(idp_metadata(spec(protocols="urn:oasis:names:tc:SAML:1.1:protocol")))
    assert only(report, "MD006").actual == "urn:oasis:names:tc:SAML:1.1:protocol"


@pytest.mark.parametrize("entity_id", ["IdP Entity ID", "exkkwurohcOew6P411d7", " https://idp.example.com/saml"])
def test_entity_id_not_absolute_uri(entity_id: str) -> None:
    assert "MD007" in codes(inspect(idp_metadata(spec(entity_id=entity_id))))


@pytest.mark.parametrize("entity_id", ["urn:example:idp", "https://idp.example.com/saml"])
def test_entity_id_uri_forms_pass(entity_id: str) -> None:
    assert "MD007" not in codes(inspect(idp_metadata(spec(entity_id=entity_id))))


def test_entity_id_too_long() -> None:
    assert "MD008" in codes(inspect(idp_metadata(spec(entity_id="https://idp.example.com/" + "a" * 1010))))
    assert "MD008" not in codes(inspect(idp_metadata(spec(entity_id="https://idp.example.com/" + "a" * 900))))


def test_no_browser_sso_binding() -> None:
    report = inspect(idp_metadata(spec(sso=[("SOAP", "https://idp.example.com/soap")])))
    assert only(report, "MD009").actual == "SOAP"


@pytest.mark.parametrize("location", ["http://idp.example.com/sso", "", "/relative/sso", "https:///nohost"])
def test_endpoint_not_https(location: str) -> None:
    assert "MD010" in codes(inspect(idp_metadata(spec(sso=[("HTTP-POST", location)]))))


@pytest.mark.parametrize("location", ["javascript:alert(document.domain)", "data:text/html,<script>x</script>",
                                      "JavaScript:alert(1)"])
def test_endpoint_script_scheme(location: str) -> None:
    report = inspect(idp_metadata(spec(slo=[("HTTP-Redirect", location)])))
    assert "MD011" in codes(report)
    assert "MD010" not in codes(report)


@pytest.mark.parametrize(("location", "shown"), [
    ("https://bob:s3cret@idp.example.com/sso", "https://***@idp.example.com/sso"),
    ("https://bob:20/s3cret@idp.example.com/sso", "https://***@idp.example.com/sso"),
    ("https://bob:20?s3cret@idp.example.com/sso", "https://***@idp.example.com/sso"),
    ("http://bob:s3cret@idp.example.com/sso", "http://***@idp.example.com/sso"),
])
def test_a_password_in_an_endpoint_is_reported_and_never_repeated(location: str, shown: str) -> None:
    from validator.render import render

    report = inspect(idp_metadata(spec(sso=[("HTTP-Redirect", location)])))
    assert only(report, "MD016").actual == shown
    assert ("MD010" in codes(report)) == location.startswith("http:")
    assert facts(report)["sso"] == [{"binding": "HTTP-Redirect", "location": shown}]
    assert "s3cret" not in render(report, "json") + render(report, "text")


@pytest.mark.parametrize("location", ["https://idp.example.com/sso?hint=a@b.example",
                                      "https://idp.example.com/@acme/sso"])
def test_an_at_sign_after_a_real_host_is_no_password(location: str) -> None:
    report = inspect(idp_metadata(spec(sso=[("HTTP-Redirect", location)])))
    assert "MD016" not in codes(report) and "MD010" not in codes(report)
    assert facts(report)["sso"] == [{"binding": "HTTP-Redirect", "location": location}]


def test_valid_until_past_and_future() -> None:
    past = (NOW - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (NOW + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "MD012" in codes(inspect(idp_metadata(spec(valid_until=past))))
    assert "MD012" not in codes(inspect(idp_metadata(spec(valid_until=future))))


def test_valid_until_unreadable() -> None:
    assert "MD015" in codes(inspect(idp_metadata(spec(valid_until="2030-01-01"))))  # no time zone


def test_nameid_formats_note_lists_formats() -> None:
    assert "emailAddress" in only(inspect(good()), "MD013").message
    assert "none declared" in only(inspect(idp_metadata(spec(nameid_formats=[]))), "MD013").message


def test_wants_signed_requests_noted() -> None:
    assert "MD014" in codes(inspect(idp_metadata(spec(want_signed_requests=True))))
    assert "MD014" not in codes(inspect(idp_metadata(spec(want_signed_requests=False))))


# --- entity choice in aggregates -----------------------------------------------------------

def aggregate(*entity_ids: str, sp_ids: tuple[str, ...] = ()) -> bytes:
    parts = [idp_metadata(spec(entity_id=e, entity_xml_id=f"_e{i}")).split(b"?>", 1)[1]
             for i, e in enumerate(entity_ids)]
    for j, sp in enumerate(sp_ids):
        parts.append(idp_metadata(spec(entity_id=sp, entity_xml_id=f"_s{j}")).split(b"?>", 1)[1]
                     .replace(b"IDPSSODescriptor", b"SPSSODescriptor"))
    return (b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
            + b"".join(parts) + b"</md:EntitiesDescriptor>")


def test_aggregate_needs_a_choice() -> None:
    report = inspect(aggregate("https://a.example/idp", "https://b.example/idp"))
    assert codes(report) == {"MD002", "SIG007"}


def test_aggregate_choice_by_entity_id() -> None:
    report = inspect(aggregate("https://a.example/idp", "https://b.example/idp"), entity_id="https://b.example/idp")
    assert "MD003" in codes(report)
    assert facts(report)["entity_id"] == "https://b.example/idp"


def test_aggregate_single_idp_chosen_automatically() -> None:
    report = inspect(aggregate("https://a.example/idp", sp_ids=("https://sp.example/sp",)))
    assert "MD003" in codes(report)
    assert "MD002" not in codes(report)


def test_aggregate_entity_not_found_names_near_miss() -> None:
    report = inspect(aggregate("https://a.example/idp", "https://b.example/idp"), entity_id="https://a.example/idp/")
    finding = only(report, "MD004")
    assert "trailing slash" in finding.message


def test_single_entity_with_other_entity_id() -> None:
    assert "MD004" in codes(inspect(good(), entity_id="https://other.example/idp"))
    assert "MD004" not in codes(inspect(good(), entity_id="https://idp.example.com/saml"))


def test_all_entities_mode_checks_each() -> None:
    data = aggregate("https://a.example/idp", "http://b.example/idp")
    report = inspect(data.replace(b"https://idp.example.com/sso/post", b"http://idp.example.com/sso/post"),
                     all_entities=True)
    md010 = [f for f in report.findings if f.code == "MD010"]
    assert len(md010) == 2
    assert {"[https://a.example/idp]" in (f.where or "") for f in md010} == {True, False}


def test_all_entities_mode_says_a_document_finding_once() -> None:
    # The root's expired validUntil is the document's: once, named by the source alone. The same
    # expiry on each entity's own md:EntityDescriptor is each entity's: once per entity.
    root = b'<md:EntitiesDescriptor validUntil="2001-01-01T00:00:00Z" '
    data = aggregate("https://a.example/idp", "https://b.example/idp", "https://c.example/idp")
    report = inspect(data.replace(b"<md:EntitiesDescriptor ", root, 1), all_entities=True)
    md012 = [f.where for f in report.findings if f.code == "MD012"]
    assert md012 == ["test.xml: md:EntitiesDescriptor/@validUntil"]
    owned = data.replace(b"<md:EntityDescriptor ", b'<md:EntityDescriptor validUntil="2001-01-01T00:00:00Z" ')
    per_entity = [f.where or "" for f in inspect(owned, all_entities=True).findings if f.code == "MD012"]
    assert len(per_entity) == 3 and all("[https://" in where for where in per_entity)


def test_all_entities_junit_lists_a_federations_expiry_once(corpus: Path) -> None:
    from lxml import etree

    from validator.render import render

    edugain = corpus / "idp-metadata/federation-edugain/wayf-edugain-aggregate.xml"
    report = inspect(edugain.read_bytes(), all_entities=True, max_bytes=50 * 2**20)
    assert sum(f.code == "MD012" for f in report.findings) == 1
    assert sum(f.code == "KEY005" for f in report.findings) > 1  # each entity's own certificate stays
    suite = etree.fromstring(render(report, "junit").encode())
    [expired] = suite.findall(".//failure[@type='MD012']")
    assert expired.get("message") == "the metadata expired on 2019-07-24 08:10 UTC (2504 days ago)"


# --- KEY -----------------------------------------------------------------------------------

def test_no_signing_key() -> None:
    assert "KEY001" in codes(inspect(idp_metadata(spec(keys=[("encryption", KEY.cert_b64)]))))


def test_key_without_use_counts_as_signing() -> None:
    report = inspect(idp_metadata(spec(keys=[(None, KEY.cert_b64)])))
    assert "KEY002" in codes(report)
    assert "KEY001" not in codes(report)
    assert "KEY002" not in codes(inspect(good()))


def test_keyinfo_in_wrong_namespace() -> None:
    data = good().replace(b'xmlns:ds="http://www.w3.org/2000/09/xmldsig#"',
                          b'xmlns:ds="https://www.w3.org/2000/09/xmldsig#"')
    report = inspect(data)
    assert {"KEY003", "KEY001"} <= codes(report)


def test_unparseable_certificate() -> None:
    report = inspect(idp_metadata(spec(keys=[("signing", "bm90IGEgY2VydGlmaWNhdGU="), ("signing", "%%%")])))
    assert len([f for f in report.findings if f.code == "KEY004"]) == 2


def test_expired_and_expiring_certificates() -> None:
    expired = make_keypair(not_before=NOW - timedelta(days=800), not_after=NOW - timedelta(days=1))
    soon = make_keypair(not_before=NOW - timedelta(days=800), not_after=NOW + timedelta(days=10))
    assert "KEY005" in codes(inspect(idp_metadata(spec(keys=[("signing", expired.cert_b64)]))))
    report = inspect(idp_metadata(spec(keys=[("signing", soon.cert_b64)])))
    assert "KEY006" in codes(report)
    assert "KEY006" not in codes(inspect(idp_metadata(spec(keys=[("signing", soon.cert_b64)])), warn_days=5))
    assert not {"KEY005", "KEY006"} & codes(inspect(good()))


def test_not_yet_valid_certificate() -> None:
    future = make_keypair(not_before=NOW + timedelta(days=2), not_after=NOW + timedelta(days=900))
    assert "KEY011" in codes(inspect(idp_metadata(spec(keys=[("signing", future.cert_b64)]))))


@pytest.mark.parametrize(("pair", "weak"), [
    (lambda: make_keypair(bits=1024), True),
    (lambda: make_keypair(curve=ec.SECP192R1()), True),
    (lambda: make_keypair(curve=ec.SECP256R1()), False),
    (lambda: make_keypair(bits=3072), False),
])
def test_weak_keys(pair: object, weak: bool) -> None:
    keypair: KeyPair = pair()  # type: ignore[operator]
    assert ("KEY007" in codes(inspect(idp_metadata(spec(keys=[("signing", keypair.cert_b64)]))))) is weak


def test_sha1_signed_certificate_is_a_note() -> None:
    sha1_cert = make_sha1_signed_keypair()
    finding = only(inspect(idp_metadata(spec(keys=[("signing", sha1_cert.cert_b64)]))), "KEY008")
    assert finding.severity == "info"
    assert "KEY008" not in codes(inspect(good()))


def test_duplicate_and_rollover() -> None:
    other = make_keypair("next key")
    duplicated = inspect(idp_metadata(spec(keys=[("signing", KEY.cert_b64), ("signing", KEY.cert_b64)])))
    assert "KEY009" in codes(duplicated)
    assert "KEY010" not in codes(duplicated)
    rollover = inspect(idp_metadata(spec(keys=[("signing", KEY.cert_b64), ("signing", other.cert_b64)])))
    assert "KEY010" in codes(rollover)
    assert len(facts(rollover)["certificates"]) == 2


# --- SIG -----------------------------------------------------------------------------------

def signed(spec: IdPSpec | None = None, **kwargs: str) -> bytes:
    return idp_metadata(spec or IdPSpec(keys=[("signing", KEY.cert_b64)]), signer=SIGNER, **kwargs)


def test_signed_and_verified() -> None:
    report = inspect(signed(), trusted=(SIGNER.cert_der,))
    assert "SIG001" in codes(report)
    assert facts(report)["signature"]["status"] == "verified"


def test_signed_but_no_trusted_key() -> None:
    report = inspect(signed())
    assert "SIG002" in codes(report)
    assert "SIG008" not in codes(report)
    assert "SIG001" not in codes(report)


def test_signature_invalid_after_change() -> None:
    tampered = signed().replace(b"https://idp.example.com/sso/post", b"https://evil.example.com/sso/post")
    assert "SIG003" in codes(inspect(tampered, trusted=(SIGNER.cert_der,)))
    assert "SIG008" in codes(inspect(tampered))


def test_signature_by_other_key_is_invalid() -> None:
    assert "SIG003" in codes(inspect(signed(), trusted=(make_keypair().cert_der,)))


def test_rollover_trust_accepts_either_key() -> None:
    report = inspect(signed(), trusted=(make_keypair().cert_der, SIGNER.cert_der))
    assert "SIG001" in codes(report)


def test_signature_profile_violation() -> None:
    data = signed()
    wrong_ref = data.replace(b'URI="#_m0a1', b'URI="#_x0a1', 1)
    assert "SIG004" in codes(inspect(wrong_ref, trusted=(SIGNER.cert_der,)))
    xslt = data.replace(b"http://www.w3.org/2000/09/xmldsig#enveloped-signature",
                        b"http://www.w3.org/TR/1999/REC-xslt-19991116", 1)
    assert "SIG004" in codes(inspect(xslt, trusted=(SIGNER.cert_der,)))


def test_sha1_signature_warned() -> None:
    report = inspect(signed(signature_method=RSA_SHA1, digest_method=SHA1), trusted=(SIGNER.cert_der,))
    assert {"SIG005", "SIG001"} <= codes(report)
    assert "SIG005" not in codes(inspect(signed(), trusted=(SIGNER.cert_der,)))


def test_unsigned_while_trust_given() -> None:
    assert "SIG006" in codes(inspect(good(), trusted=(SIGNER.cert_der,)))
    assert "SIG007" in codes(inspect(good()))


def test_values_read_from_signed_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A comment inside a signed value leaves the signature valid (c14n drops comments); the
    # model must hold the joined value, read from the re-parsed signed bytes.
    import validator.inspection as inspection

    data = signed().replace(b"nameid-format:emailAddress<", b"nameid-format:email<!-- x -->Address<", 1)
    seen: list[bool] = []
    real = inspection.read_metadata

    def spy(tree: object) -> object:
        root = tree.getroot() if hasattr(tree, "getroot") else tree  # type: ignore[union-attr]
        seen.append(root.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is None)
        return real(tree)  # type: ignore[arg-type]

    monkeypatch.setattr(inspection, "read_metadata", spy)
    report = inspect(data, trusted=(SIGNER.cert_der,))
    assert facts(report)["signature"]["status"] == "verified"
    assert seen == [True]  # read once, from the tree without the signature: the signed bytes
    assert facts(report)["nameid_formats"] == ["urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"]


def test_verified_report_keeps_the_partners_line_numbers() -> None:
    data = signed(spec=spec(sso=[("HTTP-POST", "http://idp.example.com/sso/post")]))
    untrusted = only(inspect(data), "MD010").where
    verified = inspect(data, trusted=(SIGNER.cert_der,))
    assert facts(verified)["signature"]["status"] == "verified"
    assert only(verified, "MD010").where == untrusted
    line = int((untrusted or "").split("line ")[1].split(":")[0])
    assert b"http://idp.example.com/sso/post" in data.splitlines()[line - 1]


@pytest.mark.parametrize("transform", [
    b"http://www.w3.org/TR/1999/REC-xpath-19991116",
    b"http://www.w3.org/2002/06/xmldsig-filter2",
])
def test_xpath_transforms_are_refused(transform: bytes) -> None:
    data = signed().replace(b"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\n</ds:Transforms>",
                            b"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:Transform Algorithm=\"" + transform
                            + b"\"/>\n</ds:Transforms>", 1)
    assert transform in data
    report = inspect(data, trusted=(SIGNER.cert_der,))
    assert "SIG004" in codes(report)
    assert facts(report)["signature"]["status"] == "profile"


def test_void_canonicalisation_relative_namespace_is_not_verified() -> None:
    # A relative namespace URI makes canonical XML undefined ("void"): never "verified".
    data = signed().replace(b"<md:IDPSSODescriptor", b'<md:IDPSSODescriptor xmlns:v="relative/ns"', 1)
    report = inspect(data, trusted=(SIGNER.cert_der,))
    assert facts(report)["signature"]["status"] != "verified"


# --- CRM match -----------------------------------------------------------------------------

@pytest.mark.parametrize(("actual", "reason"), [
    ("https://idp.example.com/saml/", "trailing slash"),
    ("http://idp.example.com/saml", "http instead of https"),
    ("https://IDP.example.com/saml", "letter case"),
])
def test_entity_id_near_misses(actual: str, reason: str) -> None:
    finding = only(inspect(idp_metadata(spec(entity_id=actual)), record=crm()), "CRM001")
    assert reason in finding.message
    assert finding.expected == "https://idp.example.com/saml"
    assert finding.actual == actual


def test_entity_id_match_passes() -> None:
    assert "CRM001" not in codes(inspect(good(), record=crm()))


def test_sso_url_not_offered() -> None:
    finding = only(inspect(good(), record=crm(sso_url="https://idp.example.com/sso/redirect/")), "CRM002")
    assert "trailing slash" in finding.message
    assert "CRM002" not in codes(inspect(good(), record=crm(sso_url="https://idp.example.com/sso/post")))


def test_sso_url_only_for_soap() -> None:
    data = idp_metadata(spec(sso=[("SOAP", "https://idp.example.com/soap"),
                                  ("HTTP-POST", "https://idp.example.com/sso/post")]))
    finding = only(inspect(data, record=crm(sso_url="https://idp.example.com/soap")), "CRM002")
    assert "SOAP" in finding.message


def test_nameid_format_not_offered() -> None:
    record = crm(nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
    assert "CRM003" in codes(inspect(good(), record=record))
    assert "CRM003" not in codes(inspect(good(), record=crm()))


def test_claim_near_misses_in_offered_attributes() -> None:
    data = idp_metadata(spec(attributes=[
        ("accountnumber", None),
        ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", None),
        ("urn:oid:1.3.6.1.4.1.99", "LoginTypeId"),
    ]))
    findings = [f for f in inspect(data, record=crm()).findings if f.code == "CRM004"]
    by_expected = {f.expected: f for f in findings}
    assert set(by_expected) == {"AccountNumber", "Email", "LoginTypeId"}
    assert "letter case" in by_expected["AccountNumber"].message
    assert "URI form" in by_expected["Email"].message
    assert "FriendlyName" in by_expected["LoginTypeId"].message


def test_exact_claims_pass_and_missing_one_warns() -> None:
    data = idp_metadata(spec(attributes=[("AccountNumber", None), ("Email", None), ("LoginTypeId", None)]))
    assert not {"CRM004", "CRM005"} & codes(inspect(data, record=crm()))
    data = idp_metadata(spec(attributes=[("AccountNumber", None), ("Email", None)]))
    assert only(inspect(data, record=crm()), "CRM005").expected == "LoginTypeId"


def test_vendor_words_in_fix() -> None:
    data = idp_metadata(spec(entity_id="http://adfs.example.com/adfs/services/trust",
                             attributes=[("accountnumber", None)]))
    record = crm(entity_id="https://adfs.example.com/adfs/services/trust")
    report = inspect(data, record=record)
    assert "Federation Service Identifier" in (only(report, "CRM001").fix or "")
    assert "Claim Issuance" in (only(report, "CRM004").fix or "")
    assert facts(report)["vendor"]["key"] == "adfs"


def test_forged_certificate_in_keyinfo_is_not_trusted() -> None:
    # Signed by an attacker whose own certificate rides in KeyInfo: only --trust counts.
    attacker = make_keypair("metadata signer")
    forged = idp_metadata(spec(), signer=attacker)
    report = inspect(forged, trusted=(SIGNER.cert_der,))
    assert "SIG003" in codes(report)
    assert facts(report)["signature"]["status"] == "invalid"


def test_duplicate_id_makes_the_signature_invalid() -> None:
    # A second element carrying the signed ID: which one did the signature cover?
    same_id = b'<md:IDPSSODescriptor ID="_m0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"'
    data = signed().replace(b"<md:IDPSSODescriptor", same_id, 1)
    report = inspect(data, trusted=(SIGNER.cert_der,))
    assert "SIG003" in codes(report)
    assert "occurs 2 times" in only(report, "SIG003").message


def test_unsigned_wrapper_around_signed_entity_is_unsigned() -> None:
    # A signed EntityDescriptor wrapped in an unsigned aggregate: the document is not signed.
    inner = signed().split(b"?>", 1)[1]
    wrapped = (b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">' + inner
               + b"</md:EntitiesDescriptor>")
    report = inspect(wrapped, trusted=(SIGNER.cert_der,))
    assert "SIG006" in codes(report)
    assert facts(report)["signature"]["status"] == "unsigned"


@pytest.mark.parametrize(("attribute", "value", "code"), [
    ("ResponseLocation", "javascript:alert(document.domain)", "MD011"),
    ("Location", "java&#9;script:alert(1)", "MD011"),
    ("Location", "https://evil.example/phish&#13;https://idp.example.com/slo", "MD010"),
    ("Location", " https://idp.example.com/slo", "MD010"),
])
def test_every_location_and_response_location_is_checked(attribute: str, value: str, code: str) -> None:
    data = idp_metadata(spec(slo=[("HTTP-Redirect", "https://idp.example.com/slo")]))
    data = data.replace(b'Location="https://idp.example.com/slo"',
                        f'{attribute}="{value}"'.encode() if attribute == "Location"
                        else f'Location="https://idp.example.com/slo" {attribute}="{value}"'.encode(), 1)
    assert code in codes(inspect(data))


def test_other_endpoint_types_are_checked_and_upper_case_https_passes() -> None:
    data = good().replace(b"<md:NameIDFormat>", b'<md:ArtifactResolutionService index="0" '
                          b'Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" '
                          b'Location="http://idp.example.com/ars"/><md:NameIDFormat>', 1)
    assert "ArtifactResolutionService" in only(inspect(data), "MD010").message
    upper = idp_metadata(spec(sso=[("HTTP-POST", "HTTPS://IDP.EXAMPLE.COM/sso")]))
    assert "MD010" not in codes(inspect(upper))


def test_vendor_disagreement_with_the_record() -> None:
    okta = idp_metadata(spec(entity_id="http://www.okta.com/exk1", sso=[("HTTP-POST", "https://x.okta.com/app/a/exk1/sso/saml")]))
    record = crm(entity_id="http://www.okta.com/exk1", sso_url=None, vendor="adfs")
    finding = only(inspect(okta, record=record), "CRM006")
    assert finding.expected == "adfs" and finding.actual == "okta"
    assert "CRM006" not in codes(inspect(okta, record=crm(entity_id="http://www.okta.com/exk1", sso_url=None,
                                                          vendor="okta")))


def test_claim_near_miss_is_a_warning() -> None:
    data = idp_metadata(spec(attributes=[("accountnumber", None)]))
    assert only(inspect(data, record=crm()), "CRM004").severity == "warning"


@pytest.mark.parametrize(("value", "ok"), [
    ("2030-01-01T00:00:00Z", True), ("2030-01-01T00:00:00.5+02:00", True), ("2029-12-31T24:00:00Z", True),
    ("20300101T000000Z", False), ("2030-W01-1T00:00:00Z", False), ("2030-01-01T00:00:00", False),
])
def test_valid_until_is_read_as_xs_datetime(value: str, ok: bool) -> None:
    from validator.checks.metadata import parse_datetime

    assert (parse_datetime(value) is not None) is ok


def test_certificate_with_unknown_key_algorithm_is_unreadable_not_a_crash() -> None:
    rsa_oid = bytes.fromhex("06092a864886f70d010101")
    broken = KEY.cert_der.replace(rsa_oid, bytes.fromhex("06092a864886f70d010163"), 1)
    import base64

    report = inspect(idp_metadata(spec(keys=[("signing", base64.b64encode(broken).decode())])))
    assert {"KEY004", "KEY001"} <= codes(report)


def test_certificates_fuzzed_never_crash_the_inspection() -> None:
    # Seeded byte mutations of a real certificate: every result is findings, never an exception.
    import base64
    import random

    rng = random.Random(20261127)
    for _ in range(300):
        der = bytearray(KEY.cert_der)
        for _ in range(rng.randint(1, 4)):
            der[rng.randrange(len(der))] = rng.randrange(256)
        report = inspect(idp_metadata(spec(keys=[("signing", base64.b64encode(bytes(der)).decode())])))
        assert facts(report).get("certificates") is not None


def test_verified_document_longer_than_65535_lines() -> None:
    from lxml import etree

    from metadata.signing import sign

    entity = idp_metadata(spec(sso=[("HTTP-POST", "http://idp.example.com/sso/post")])).split(b"?>", 1)[1]
    text = (b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="_agg">'
            + b"\n" * 70_000 + entity + b"</md:EntitiesDescriptor>")
    root = etree.fromstring(text)
    sign(root, SIGNER.key_pem, SIGNER.cert_pem)
    report = inspect(etree.tostring(root), trusted=(SIGNER.cert_der,))
    assert facts(report)["signature"]["status"] == "verified"
    assert "MD010" in codes(report)


def _many_endpoints(count: int, location: str = "https://idp.example.com/sso/{}") -> bytes:
    return idp_metadata(spec(sso=[("HTTP-Redirect", location.format(n)) for n in range(count)]))


def test_a_role_with_more_children_of_one_kind_than_the_cap_is_md022() -> None:
    from metadata.read import MAX_PER_KIND

    assert "MD022" not in codes(inspect(_many_endpoints(MAX_PER_KIND)))
    finding = only(inspect(_many_endpoints(MAX_PER_KIND + 3)), "MD022")
    assert finding.message == (f"the IDPSSODescriptor lists {MAX_PER_KIND + 3} md:SingleSignOnService elements; the "
                               f"first {MAX_PER_KIND} were read and checked, the other 3 were not")


def test_an_endpoint_flood_costs_one_capped_read_and_a_capped_report() -> None:
    # 43,000 endpoints in 5 MiB, each with a finding (MD010), cost five seconds to check and report.
    from metadata.read import MAX_PER_KIND
    from tests.helpers import run_with_cpu_limit
    from validator.findings import MAX_REPEATS
    from validator.render import render

    data = _many_endpoints(38_000, "http://idp.example.com/sso/{}")  # 5 MiB, the default limit
    report = run_with_cpu_limit(lambda: (r := inspect(data), render(r, "text"), render(r, "json"))[0]).value
    md010 = [f for f in report.findings if f.code == "MD010"]
    assert len(md010) == MAX_REPEATS + 1  # of the endpoints read: 50 listed, then one counts the rest
    assert md010[-1].message == (f"… and {MAX_PER_KIND - MAX_REPEATS} more MD010 findings like the ones above, from "
                                 "here on, not listed one by one")
    assert f"the other {38_000 - MAX_PER_KIND:,} were not" in only(report, "MD022").message
