"""Running the metadata inspection in tests, without the CLI."""

from __future__ import annotations

from tests.factory import NOW
from validator.crm import CRMRecord, parse_crm
from validator.findings import Finding
from validator.inspection import MetadataOptions, inspect_metadata_bytes
from validator.report import Report

CRM_TOML = """
[biller]
id = "B-1"
name = "Test Biller"
[sp]
entity_id = "https://sso.portal.example/saml"
acs_url = "https://sso.portal.example/saml/acs"
[idp]
{idp}
[[claims]]
name = "AccountNumber"
required = true
[[claims]]
name = "Email"
required = true
[[claims]]
name = "LoginTypeId"
required = true
login_type = true
[[login_types]]
id = 1
name = "Customer"
"""


IDP_DEFAULTS = {
    "entity_id": "https://idp.example.com/saml",
    "sso_url": "https://idp.example.com/sso/redirect",
    "nameid_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
}


def crm(**idp: str | None) -> CRMRecord:
    """The test CRM record, with `idp` values replaced (None drops the key)."""
    values = {**IDP_DEFAULTS, **idp}
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in values.items() if v is not None)
    return parse_crm(CRM_TOML.replace("{idp}", lines), "test.toml", "toml")


def inspect(data: bytes, *, record: CRMRecord | None = None, **options: object) -> Report:
    opts = MetadataOptions(now=options.pop("now", NOW), **options)  # type: ignore[arg-type]
    report = Report(subject="metadata", inputs={"metadata": "test.xml"}, clock=opts.now)
    inspect_metadata_bytes(data, "test.xml", opts, record, report)
    return report


def codes(report: Report) -> set[str]:
    return {f.code for f in report.findings}


def only(report: Report, code: str) -> Finding:
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, f"expected one {code}, got {found}"
    return found[0]
