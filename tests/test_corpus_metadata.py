"""Every real IdP metadata file in tests/corpus/idp-metadata is judged right.

What "right" means comes from MANIFEST.tsv: which files verify upstream (xmlsec1 with the
certificate in their own signature), which were reformatted or edited after signing, and
the known defects (JumpCloud's literal entity ID, the https xmldsig namespace typo).
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from metadata.read import read_metadata
from metadata.saml import DS
from metadata.signing import read_profile, signature_of
from metadata.xml import MiB, metadata_limits, parse_untrusted
from tests.conftest import CORPUS
from validator.inspection import MetadataOptions, inspect_metadata
from validator.metadata_facts import metadata_report
from validator.report import Report, facts_json

NOW = datetime(2026, 11, 27, tzinfo=UTC)
FILES = sorted((CORPUS / "idp-metadata").rglob("*.xml"))
assert FILES, f"no IdP metadata in {CORPUS}/idp-metadata: the corpus is part of the repository"


def judge(path: Path, trusted: tuple[bytes, ...] = (), **options: object) -> Report:
    opts = MetadataOptions(now=NOW, trusted=trusted, max_bytes=8 * MiB, **options)  # type: ignore[arg-type]
    return metadata_report(inspect_metadata(str(path), opts))


def codes(report: Report) -> set[str]:
    return {f.code for f in report.findings}


def own_signature_certificate(path: Path) -> tuple[bytes, ...]:
    root = parse_untrusted(path.read_bytes(), metadata_limits(8 * MiB)).getroot()
    return read_profile(signature_of(root)).embedded_certificates[:1]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_file_is_judged_without_failure(path: Path, corpus: Path) -> None:
    report = judge(path)
    assert report.findings, "every real file yields at least one finding or note"
    assert "entity_id" in facts_json(report) or {f.code for f in report.findings} & {"MD002", "XML008", "MD005"}
    signed = parse_untrusted(path.read_bytes(), metadata_limits(8 * MiB)).getroot().find(f"{{{DS}}}Signature")
    if signed is not None:
        assert facts_json(report)["signature"]["status"] in ("untrusted", "profile")


# (file, status when trusting the certificate in the file's own signature)
SIGNED = [
    ("entra-id/entra-id-tenant-a9054a0f-federationmetadata-2023-signed.xml", "verified"),
    ("entra-id/azure-ad-2014-federationmetadata-two-signing-certs-signed.xml", "verified"),
    ("entra-id/azure-ad-2012-federationmetadata-signed.xml", "invalid"),
    ("adfs/adfs-bead-loc-2013-federationmetadata-signed.xml", "invalid"),
    ("adfs/adfs-unilever-2014-federationmetadata-signed.xml", "invalid"),
    ("adfs/adfs-owensborohealth-federationmetadata-MODIFIED.xml", "verified"),
    ("surfconext/surfconext-engineblock-idp-metadata-2016-signed.xml", "verified"),
    ("federation-edugain/wayf-edugain-aggregate.xml", "verified"),
    ("federation-rcts-fccn/fccn-rctsaai-slice-signed.xml", "verified"),
    ("federation-switchaai/switchaai-test-aggregate-signed.xml", "invalid"),
    # URI="" (whole document), inclusive c14n of SignedInfo, exc-c14n WithComments: xmlsec1
    # verifies it, but it is outside the SAML signature profile, so it is refused unverified.
    ("federation-swamid/swamid-1.0-aggregate-signed.xml", "profile"),
    ("federation-swamid/swamid-coip-test-slice-signed.xml", "profile"),
]


@pytest.mark.parametrize(("name", "status"), SIGNED)
def test_signed_files_with_their_signing_certificate(name: str, status: str, corpus: Path) -> None:
    path = corpus / "idp-metadata" / name
    report = judge(path, own_signature_certificate(path))
    assert facts_json(report)["signature"]["status"] == status
    expected_code = {"verified": "SIG001", "invalid": "SIG003", "profile": "SIG004"}[status]
    assert expected_code in codes(report)


@pytest.mark.parametrize(("name", "status"), SIGNED)
def test_signed_files_without_trust(name: str, status: str, corpus: Path) -> None:
    report = judge(corpus / "idp-metadata" / name)
    if status == "profile":
        assert "SIG004" in codes(report)
        return
    assert "SIG002" in codes(report)
    # A file changed after signing fails even with its own certificate: said as a hint.
    assert ("SIG008" in codes(report)) is (status == "invalid")


def test_edited_adfs_file_fails_with_the_adfs_signing_certificate(corpus: Path) -> None:
    # Upstream re-signed it with an example.com key: it does not chain to the ADFS signer.
    path = corpus / "idp-metadata" / "adfs" / "adfs-owensborohealth-federationmetadata-MODIFIED.xml"
    document = read_metadata(parse_untrusted(path.read_bytes()))
    idp = document.entities[0].idp
    assert idp is not None
    der = next(c.der for k in idp.keys if k.use == "signing" for c in k.certificates if c.der)
    report = judge(path, (der,))
    assert facts_json(report)["signature"]["status"] == "invalid"
    assert "SIG003" in codes(report)


@pytest.mark.parametrize("name", [
    "adfs/adfs-bead-loc-2013-federationmetadata-signed.xml",
    "entra-id/entra-id-tenant-a9054a0f-federationmetadata-2023-signed.xml",
    "entra-id/azure-ad-2012-federationmetadata-signed.xml",
])
def test_ws_federation_roles_are_not_schema_errors(name: str, corpus: Path) -> None:
    assert "MD001" not in codes(judge(corpus / "idp-metadata" / name))


def test_entra_rollover_certificates(corpus: Path) -> None:
    path = corpus / "idp-metadata" / "entra-id" / "azure-ad-2014-federationmetadata-two-signing-certs-signed.xml"
    report = judge(path)
    assert "KEY010" in codes(report)
    assert facts_json(report)["vendor"]["key"] == "entra"


@pytest.mark.parametrize("name", [
    "jumpcloud/jumpcloud-metadata-2023.xml",
    "okta/okta-classic-app-idp-metadata-custom-issuer-vcr.xml",
])
def test_entity_id_not_a_uri(name: str, corpus: Path) -> None:
    report = judge(corpus / "idp-metadata" / name)
    assert "MD007" in codes(report)


@pytest.mark.parametrize("name", ["okta/okta-pivotal-sample-BROKEN-ds-namespace.xml", "openam/openam-idp-metadata.xml"])
def test_https_xmldsig_namespace_means_no_usable_key(name: str, corpus: Path) -> None:
    found = codes(judge(corpus / "idp-metadata" / name))
    assert {"KEY003", "KEY001"} <= found


def test_eidas_service_list_is_not_saml_metadata(corpus: Path) -> None:
    report = judge(corpus / "idp-metadata" / "federation-eidas" / "eidas-fr-country-metadata.xml")
    assert codes(report) == {"XML008"}


@pytest.mark.parametrize(("name", "code"), [
    ("google-workspace/google-apps-C02dfl1r1-metadata-2016.xml", "MD012"),  # validUntil 2021
    ("shibboleth/testshib-providers-2016.xml", "KEY002"),  # KeyDescriptor without use
    ("shibboleth/shibboleth-sphericalcowgroup-idp-metadata.xml", "MD009"),  # no SSO endpoint
    ("keycloak/keycloak-24-realm-master-metadata-2024.xml", "MD010"),  # http://localhost
    ("simplesamlphp/feide-openidp-simplesamlphp-metadata.xml", "KEY007"),  # RSA 1024
    ("onelogin/onelogin-383123-metadata.xml", "KEY008"),  # SHA-1 signed certificate: a note
])
def test_known_defects(name: str, code: str, corpus: Path) -> None:
    assert code in codes(judge(corpus / "idp-metadata" / name))


def test_clean_okta_app_metadata_has_no_errors(corpus: Path) -> None:
    report = judge(corpus / "idp-metadata" / "okta" / "okta-trial-102286-app-metadata-2024.xml")
    assert report.exit_code() == 0
    assert "KEY008" not in codes(report)  # its certificate is signed with SHA-256
    assert facts_json(report)["vendor"]["key"] == "okta"


VENDOR_FOLDERS = {
    "okta": "okta", "entra-id": "entra", "adfs": "adfs", "google-workspace": "google", "pingone": "ping",
    "onelogin": "onelogin", "keycloak": "keycloak", "jumpcloud": "jumpcloud", "simplesamlphp": "simplesamlphp",
}


@pytest.mark.parametrize("path", [p for p in FILES if p.parent.name in VENDOR_FOLDERS],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_vendor_detected(path: Path, corpus: Path) -> None:
    vendor = facts_json(judge(path))["vendor"]
    assert vendor["key"] == VENDOR_FOLDERS[path.parent.name]
    assert vendor["evidence"]


def test_aggregate_lists_idps_and_entity_choice(corpus: Path) -> None:
    path = corpus / "idp-metadata" / "federation-swamid" / "swamid-test-1.0-aggregate-unsigned.xml"
    assert codes(judge(path)) >= {"MD002"}
    chosen = judge(path, entity_id="https://idp.it.su.se/idp/shibboleth")
    assert "MD002" not in codes(chosen)


# ---- the corpus itself: every file listed, every source credited --------------------------------

def _manifest_rows(corpus: Path) -> list[dict[str, str]]:
    with (corpus / "MANIFEST.tsv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_manifest_lists_exactly_the_third_party_files(corpus: Path) -> None:
    # cost/ is made here, not third-party data: its own README says how.
    present = {p.relative_to(corpus).as_posix() for kind in ("idp-metadata", "responses", "sp-metadata")
               for p in (corpus / kind).rglob("*") if p.is_file()}
    listed = [row["file"] for row in _manifest_rows(corpus)]
    assert len(listed) == len(set(listed))
    assert set(listed) == present


def test_sources_credit_every_repository_commit_and_licence(corpus: Path) -> None:
    sources = (corpus / "SOURCES.md").read_text(encoding="utf-8")
    for row in _manifest_rows(corpus):
        assert row["source_repo"] and row["commit"] and row["license"], row["file"]
        assert f"### {row['source_repo']}" in sources, row["source_repo"]
        assert f"`{row['commit']}`" in sources, row["source_repo"]
        assert f"| `{row['file']}` |" in sources, row["file"]
        assert row["license"] in sources, row["license"]
