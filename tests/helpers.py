"""Running the metadata inspection in tests, without the CLI."""

from __future__ import annotations

from tests.factory import NOW
from validator.crm import CRMRecord, parse_crm
from validator.findings import Finding
from validator.inspection import MetadataOptions, inspect_metadata_bytes
from validator.report import Report

CLAIMS_TOML = """
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
"""


def crm_toml(
    *,
    sp_entity_id: str = "https://sso.portal.example/saml",
    acs_url: str = "https://sso.portal.example/saml/acs",
    idp: dict[str, str | None] | None = None,
    extra: str = "",
    login_types: tuple[tuple[int, str], ...] = ((1, "Customer"),),
    biller: tuple[str, str] = ("B-1", "Test Biller"),
) -> str:
    """The one CRM record of the tests, as TOML: the three claims of DESIGN.md, the given SP
    and IdP values (None drops a key), `extra` TOML after the claims, and the login types."""
    idp_lines = "".join(f'{k} = "{v}"\n' for k, v in (idp or {}).items() if v is not None)
    types = "".join(f'[[login_types]]\nid = {i}\nname = "{n}"\n' for i, n in login_types)
    return (f'[biller]\nid = "{biller[0]}"\nname = "{biller[1]}"\n[sp]\nentity_id = "{sp_entity_id}"\n'
            f'acs_url = "{acs_url}"\n[idp]\n{idp_lines}{CLAIMS_TOML}{extra}\n{types}')


IDP_DEFAULTS = {
    "entity_id": "https://idp.example.com/saml",
    "sso_url": "https://idp.example.com/sso/redirect",
    "nameid_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
}


def crm(**idp: str | None) -> CRMRecord:
    """The test CRM record, with `idp` values replaced (None drops the key)."""
    return parse_crm(crm_toml(idp={**IDP_DEFAULTS, **idp}), "test.toml", "toml")


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
