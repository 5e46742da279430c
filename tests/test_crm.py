"""The CRM record: strict loading (metadata.crm) and the rules on the record itself (CRM1xx)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pydantic
import pytest

from metadata.crm import MAX_BYTES, CRMRecord, load_crm, parse_crm
from metadata.errors import CRMRecordError
from validator.checks import crm_record
from validator.checks.crm_record import check_record
from validator.findings import Finding, Rule, Severity, get_rule

BILLER = """
[biller]
id = "B-10442"
name = "Springfield Water"
"""
SP = """
[sp]
entity_id = "https://sso.portal.example/saml"
acs_url = "https://sso.portal.example/saml/acs"
"""
IDP = """
[idp]
vendor = "okta"
entity_id = "http://www.okta.com/exk1abcd"
metadata_url = "https://springfield.okta.com/app/exk1abcd/sso/saml/metadata"
sso_url = "https://springfield.okta.com/app/springfield_portal/exk1abcd/sso/saml"
nameid_format = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
"""


def claims(*names: str, login_type: tuple[str, ...] = ("LoginTypeId",)) -> str:
    """[[claims]] entries, all required; names in `login_type` are marked login_type = true."""
    return "".join(
        f"\n[[claims]]\nname = {json.dumps(name)}\nrequired = true\n"
        + ("login_type = true\n" if name in login_type else "")
        for name in names
    )


def login_types(*entries: tuple[int, str]) -> str:
    return "".join(f"\n[[login_types]]\nid = {ident}\nname = {json.dumps(name)}\n" for ident, name in entries)


CLAIMS = claims("AccountNumber", "Email", "LoginTypeId")
BASE = BILLER + SP
LOGIN_TYPES = login_types((1, "Customer"), (2, "Property Manager"))
GOOD = BILLER + SP + IDP + CLAIMS + LOGIN_TYPES


def write(tmp_path: Path, text: str, name: str = "biller.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def findings(tmp_path: Path, text: str) -> list[Finding]:
    path = write(tmp_path, text)
    return check_record(load_crm(path), str(path))


def problems(tmp_path: Path, text: str, name: str = "biller.toml") -> list[tuple[str, str]]:
    with pytest.raises(CRMRecordError) as caught:
        load_crm(write(tmp_path, text, name))
    return caught.value.problems


# --- loading -----------------------------------------------------------------------------------


def test_good_record_loads_with_its_properties(tmp_path: Path) -> None:
    record = load_crm(write(tmp_path, GOOD))
    assert record.biller.id == "B-10442"
    assert record.idp.vendor == "okta"
    assert record.login_type_claim is not None and record.login_type_claim.name == "LoginTypeId"
    assert [claim.name for claim in record.required_claims] == ["AccountNumber", "Email", "LoginTypeId"]
    assert record.login_type_ids == {1: "Customer", 2: "Property Manager"}


def test_optional_sections_and_defaults(tmp_path: Path) -> None:
    record = load_crm(write(tmp_path, BILLER + SP + '\n[[claims]]\nname = "Email"\n'))
    assert record.idp.vendor is None and record.idp.entity_id is None
    assert record.claims[0].required is False and record.claims[0].login_type is False
    assert record.login_type_claim is None and record.login_types == () and record.login_type_ids == {}


def test_toml_and_json_load_equal(tmp_path: Path) -> None:
    from_toml = load_crm(write(tmp_path, GOOD))
    as_json = json.dumps(from_toml.model_dump())
    assert load_crm(write(tmp_path, as_json, "biller.json")) == from_toml
    assert parse_crm(as_json.encode(), "pasted", "json") == from_toml


def test_record_is_frozen(tmp_path: Path) -> None:
    record = load_crm(write(tmp_path, GOOD))
    with pytest.raises(pydantic.ValidationError):
        record.biller.id = "B-1"
    assert isinstance(record.claims, tuple)


def test_mistyped_keys_give_path_and_suggestion(tmp_path: Path) -> None:
    text = GOOD.replace("login_type = true", "login_typ = true")
    text = text.replace('entity_id = "http://www', 'entity_idd = "http://www')
    assert problems(tmp_path, text) == [
        ("idp.entity_idd", 'unknown key (did you mean "entity_id"?)'),
        ("claims[2].login_typ", 'unknown key (did you mean "login_type"?)'),
    ]


def test_unknown_key_without_a_close_match_lists_the_known_keys(tmp_path: Path) -> None:
    assert problems(tmp_path, GOOD + '\n[extras]\nx = 1\n') == [
        ("extras", "unknown key (known keys: biller, sp, idp, claims, login_types)")
    ]


@pytest.mark.parametrize(("value", "shown"), [('"1"', '"1"'), ("1.0", "1.0"), ("true", "true")])
def test_login_type_id_must_be_an_integer(tmp_path: Path, value: str, shown: str) -> None:
    text = BILLER + SP + CLAIMS + f'\n[[login_types]]\nid = {value}\nname = "Customer"\n'
    assert problems(tmp_path, text) == [("login_types[0].id", f"must be an integer, got {shown}")]


def test_leading_zero_id_stays_a_string_error(tmp_path: Path) -> None:
    # YAML would read 0123 as 83; the record must never turn it into any number.
    text = BILLER + SP + CLAIMS + '\n[[login_types]]\nid = "0123"\nname = "Customer"\n'
    assert problems(tmp_path, text) == [("login_types[0].id", 'must be an integer, got "0123"')]


def test_wrong_types_for_strings_booleans_and_sections(tmp_path: Path) -> None:
    biller = BILLER.replace('name = "Springfield Water"', "name = 7")
    text = "sp = 3\n" + biller + '\n[claims]\nname = "Email"\n'
    assert problems(tmp_path, text) == [
        ("biller.name", "must be a string, got 7"),
        ("sp", "must be a table of keys, got 3"),
        ("claims", "must be a list of tables (in TOML, repeat [[claims]]), got a table"),
    ]
    text = BILLER + SP + '\n[[claims]]\nname = "Email"\nrequired = "yes"\n'
    assert problems(tmp_path, text) == [("claims[0].required", 'must be true or false, got "yes"')]


def test_unknown_vendor_suggests_the_closest(tmp_path: Path) -> None:
    [(path, message)] = problems(tmp_path, GOOD.replace('vendor = "okta"', 'vendor = "Okta"'))
    assert path == "idp.vendor"
    assert message.startswith("must be one of okta, entra, adfs,")
    assert message.endswith('got "Okta" (did you mean "okta"?)')


def test_missing_acs_url(tmp_path: Path) -> None:
    text = GOOD.replace('acs_url = "https://sso.portal.example/saml/acs"\n', "")
    assert problems(tmp_path, text) == [("sp.acs_url", "required key is missing")]


def test_missing_section(tmp_path: Path) -> None:
    assert problems(tmp_path, BILLER) == [("sp", "required section is missing")]


def test_every_fault_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace('id = "B-10442"', "id = 10442").replace("id = 2", 'id = "2"') + "colour = 1\n"
    found = [path for path, _ in problems(tmp_path, text)]
    assert found == ["biller.id", "login_types[1].id", "login_types[1].colour"]


def test_messages_do_not_leak_pydantic_wording(tmp_path: Path) -> None:
    text = GOOD.replace('id = "B-10442"', "id = 10442").replace("login_type = true", "login_typ = 1")
    for _, message in problems(tmp_path, text):
        assert "Input should" not in message and "Extra inputs" not in message


def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    text = '[biller]\nid = "B-1"\nname = "S"\n[sp]\nentity_id = https://sso.portal.example/saml\n'
    [(where, message)] = problems(tmp_path, text)
    assert where == "line 5, column 13"
    assert message.startswith("TOML syntax error: ")


def test_toml_rejects_a_leading_zero_number(tmp_path: Path) -> None:
    [(where, message)] = problems(tmp_path, '[[login_types]]\nid = 0123\nname = "C"\n')
    assert where == "line 2, column 7" and message.startswith("TOML syntax error")


def test_json_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    assert problems(tmp_path, '{\n  "biller": {"id": }\n}', "biller.json") == [
        ("line 2, column 20", "JSON syntax error: expecting value")
    ]


def test_json_duplicate_key_is_an_error(tmp_path: Path) -> None:
    text = '{"biller": {"id": "B-1", "id": "B-2", "name": "S"}}'
    assert problems(tmp_path, text, "biller.json") == [("(file)", 'the key "id" appears twice in one object')]


def test_json_top_level_must_be_an_object(tmp_path: Path) -> None:
    assert problems(tmp_path, "[]", "biller.json") == [("(top level)", "must be a table of keys, got a list")]


def test_unknown_extension_names_the_accepted_ones(tmp_path: Path) -> None:
    [(where, message)] = problems(tmp_path, GOOD, "biller.yaml")
    assert where == "(file)"
    assert ".toml" in message and ".json" in message and "biller.yaml" in message


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    assert load_crm(write(tmp_path, GOOD, "BILLER.TOML")).biller.id == "B-10442"


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    # 64 KiB: a real record is under 5 KiB, and tomllib spent 1.6 s on a 1 MiB one.
    text = GOOD + "#" * MAX_BYTES + "\n"
    [(where, message)] = problems(tmp_path, text)
    assert where == "(file)" and "larger than 64 KiB" in message
    with pytest.raises(CRMRecordError):
        parse_crm(text, "pasted", "toml")
    padded = GOOD + "#" * (MAX_BYTES - len(GOOD.encode()) - 1) + "\n"
    assert parse_crm(padded, "pasted", "toml").biller.id == "B-10442"


@pytest.mark.parametrize(("fmt", "text"), [("json", "[" * 60_000), ("toml", "a = " + "[" * 60_000)])
def test_deep_nesting_is_an_error_not_a_crash(fmt: Literal["toml", "json"], text: str) -> None:
    with pytest.raises(CRMRecordError) as caught:
        parse_crm(text, "pasted", fmt)
    assert caught.value.problems == [("(file)", "is nested too deeply")]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CRMRecordError) as caught:
        load_crm(tmp_path / "missing.toml")
    assert caught.value.source.endswith("missing.toml")
    [(where, message)] = caught.value.problems
    assert where == "(file)" and message.startswith("cannot be read")


def test_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(CRMRecordError) as caught:
        parse_crm(b"\xff\xfe[biller]", "pasted", "toml")
    assert caught.value.problems == [("(file)", "is not UTF-8 text (bad byte at offset 0)")]


def test_error_text_names_source_and_every_problem(tmp_path: Path) -> None:
    with pytest.raises(CRMRecordError) as caught:
        parse_crm(BILLER, "springfield.toml", "toml")
    expected = "springfield.toml: the CRM record is not valid\n  sp: required section is missing"
    assert str(caught.value) == expected


@pytest.mark.parametrize("ident", [1, 0, -5, 2**31 - 1, -(2**31)])
def test_a_login_type_id_that_a_crm_integer_field_holds_loads(tmp_path: Path, ident: int) -> None:
    record = load_crm(write(tmp_path, BASE + CLAIMS + login_types((ident, "Customer"))))
    assert record.login_type_ids == {ident: "Customer"}


@pytest.mark.parametrize("ident", [2**31, 12345678901234567890123, -(2**31) - 1])
def test_a_login_type_id_beyond_a_signed_32_bit_integer_is_refused(tmp_path: Path, ident: int) -> None:
    [(where, message)] = problems(tmp_path, BASE + CLAIMS + login_types((ident, "Customer")))
    assert where == "login_types[0].id"
    assert message == (f"{ident} does not fit a CRM integer field: a login type ID is a signed 32-bit integer, "
                       "at most 2147483647")


# --- rules on the record -----------------------------------------------------------------------

_NO_LOGIN_TYPES = BASE + claims("Email", login_type=())
_URL = "https://sso.portal.example/saml/acs"


def _acs(url: str) -> str:
    return GOOD.replace(f'acs_url = "{_URL}"', f"acs_url = {json.dumps(url)}")


def _idp(key: str, value: str) -> str:
    start = GOOD.index(f"\n{key} = ", GOOD.index("[idp]"))
    end = GOOD.index("\n", start + 1)
    return GOOD[:start] + f"\n{key} = {json.dumps(value)}" + GOOD[end:]


# (code, a record that passes the rule, a record that breaks it, where the finding points)
CASES = [
    ("CRM101", GOOD, GOOD.replace('id = "B-10442"', 'id = "  "'), "biller.id"),
    ("CRM102", GOOD, BASE + claims("Email "), "claims[0].name"),
    ("CRM102", GOOD, BASE + claims(""), "claims[0].name"),
    ("CRM103", BASE + claims("Email", "Phone"), BASE + claims("Email", "Email"), "claims[1].name"),
    ("CRM104", BASE + claims("Email", "EmailAddress"), BASE + claims("Email", "email"), "claims[1].name"),
    ("CRM105", GOOD, BASE + claims("Email") + LOGIN_TYPES, "claims"),
    (
        "CRM106",
        GOOD,
        BASE + claims("Role", "LoginTypeId", login_type=("Role", "LoginTypeId")) + LOGIN_TYPES,
        "claims[1].login_type",
    ),
    ("CRM107", _NO_LOGIN_TYPES, BASE + CLAIMS, "login_types"),
    ("CRM108", GOOD, BASE + CLAIMS + login_types((1, "Customer"), (1, "Manager")), "login_types[1].id"),
    ("CRM109", BASE + CLAIMS + login_types((0, "Customer")), BASE + CLAIMS + login_types((-1, "C")),
     "login_types[0].id"),
    ("CRM110", GOOD, BASE + CLAIMS + login_types((1, " ")), "login_types[0].name"),
    ("CRM111", GOOD, BASE + CLAIMS + login_types((1, "Customer"), (2, "customer ")), "login_types[1].name"),
    ("CRM112", GOOD, _idp("entity_id", " http://www.okta.com/exk1abcd "), "idp.entity_id"),
    ("CRM112", GOOD, _acs(_URL + "\n"), "sp.acs_url"),
    ("CRM113", GOOD.replace("https://sso.portal.example/saml\"", 'urn:example:portal"'),
     GOOD.replace("https://sso.portal.example/saml\"", 'sso.portal.example/saml"'), "sp.entity_id"),
    ("CRM113", GOOD, _idp("entity_id", "exk1abcd"), "idp.entity_id"),
    ("CRM113", GOOD, _idp("entity_id", "http://www.okta.com/exk1 abcd"), "idp.entity_id"),
    ("CRM114", GOOD, _acs("http://sso.portal.example/saml/acs"), "sp.acs_url"),
    ("CRM114", GOOD, _acs("/saml/acs"), "sp.acs_url"),
    ("CRM114", GOOD, _acs("https:///saml/acs"), "sp.acs_url"),
    ("CRM114", GOOD, _idp("sso_url", "ftp://springfield.okta.com/sso"), "idp.sso_url"),
    ("CRM114", GOOD, _idp("metadata_url", "http://springfield.okta.com/metadata"), "idp.metadata_url"),
    ("CRM115", _acs("https://localhost:8443/acs"), _acs("http://localhost:8080/acs"), "sp.acs_url"),
    ("CRM115", _acs("https://127.0.0.1/acs"), _acs("http://127.0.0.1/acs"), "sp.acs_url"),
    ("CRM116", _idp("nameid_format", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"),
     _idp("nameid_format", "emailAddress"), "idp.nameid_format"),
    ("CRM116", GOOD, _idp("nameid_format", "urn:oasis:names:tc:SAML:2.0:nameid-format:emailAddress"),
     "idp.nameid_format"),
    ("CRM117", _acs("https://sso.portal.example/@tenant/saml/acs"),
     _acs("https://bob:20?s3cret@sso.portal.example/saml/acs"), "sp.acs_url"),
    ("CRM117", _acs("https://sso.portal.example/saml/acs?hint=a@b.example"),
     _acs("https://bob:s3cret@sso.portal.example/saml/acs"), "sp.acs_url"),
    ("CRM117", GOOD, _idp("sso_url", "https://bob:20/s3cret@springfield.okta.com/sso"), "idp.sso_url"),
]


def test_a_password_in_a_record_url_is_shown_as_stars(tmp_path: Path) -> None:
    found = findings(tmp_path, _idp("metadata_url", "https://bob:s3cret@springfield.okta.com/metadata"))
    assert [f.code for f in found] == ["CRM117"]
    assert found[0].actual == '"https://***@springfield.okta.com/metadata"'
    assert "s3cret" not in repr(found)


def test_good_record_has_no_findings(tmp_path: Path) -> None:
    assert findings(tmp_path, GOOD) == []


@pytest.mark.parametrize(("code", "passing", "failing", "where"), CASES, ids=[case[0] for case in CASES])
def test_rule_passes(tmp_path: Path, code: str, passing: str, failing: str, where: str) -> None:
    assert code not in [finding.code for finding in findings(tmp_path, passing)]


@pytest.mark.parametrize(("code", "passing", "failing", "where"), CASES, ids=[case[0] for case in CASES])
def test_rule_fails(tmp_path: Path, code: str, passing: str, failing: str, where: str) -> None:
    found = [(f.code, f.where) for f in findings(tmp_path, failing)]
    assert (code, where) in found
    rule = get_rule(code)
    assert rule is not None
    assert all(f.severity is rule.severity for f in findings(tmp_path, failing) if f.code == code)


def test_one_fault_is_reported_once(tmp_path: Path) -> None:
    # A padded https URL is only padded, a local http URL only a warning, and exact twins are not case twins.
    assert [f.code for f in findings(tmp_path, _acs(" " + _URL))] == ["CRM112"]
    assert [f.code for f in findings(tmp_path, _acs("http://localhost/acs"))] == ["CRM115"]
    assert [f.code for f in findings(tmp_path, BILLER + SP + claims("Email", "Email"))] == ["CRM103"]


def test_every_occurrence_is_reported(tmp_path: Path) -> None:
    text = BILLER + SP + claims("Email", "Email", "Email")
    assert [(f.code, f.where) for f in findings(tmp_path, text)] == [
        ("CRM103", "claims[1].name"),
        ("CRM103", "claims[2].name"),
    ]


def test_findings_show_expected_and_actual(tmp_path: Path) -> None:
    [padded] = findings(tmp_path, BILLER + SP + claims("Email "))
    assert (padded.expected, padded.actual) == ('"Email"', '"Email "')
    [case] = findings(tmp_path, BILLER + SP + claims("Email", "email"))
    assert (case.expected, case.actual, case.severity) == ('"Email"', '"email"', Severity.WARNING)
    [http] = findings(tmp_path, _acs("http://sso.portal.example/acs"))
    assert http.expected == "an absolute https:// URL" and http.actual == '"http://sso.portal.example/acs"'
    assert http.fix == crm_record.URL_NOT_HTTPS.fix
    [negative] = findings(tmp_path, BILLER + SP + CLAIMS + login_types((-5, "Customer")))
    assert (negative.expected, negative.actual) == ("0 or greater", "-5")


def test_nameid_format_suggestion(tmp_path: Path) -> None:
    text = _idp("nameid_format", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailaddress")
    [finding] = findings(tmp_path, text)
    assert finding.expected == '"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"'


def test_check_record_is_pure(tmp_path: Path) -> None:
    record = load_crm(write(tmp_path, BILLER + SP + claims("Email", "Email")))
    assert check_record(record, "a.toml") == check_record(record, "a.toml")
    assert isinstance(record, CRMRecord)


def _module_rules() -> list[Rule]:
    return [value for value in vars(crm_record).values() if isinstance(value, Rule)]


def test_every_rule_is_documented_and_registered() -> None:
    module_rules = _module_rules()
    assert len(module_rules) == len({r.code for r in module_rules}) == 17
    for rule in module_rules:
        assert rule.code.startswith("CRM1") and rule.subject == "crm-record"
        assert rule.title and rule.what and rule.why and rule.fix, rule.code
        assert get_rule(rule.code) is rule


def test_every_rule_has_a_failing_case() -> None:
    assert {r.code for r in _module_rules()} == {case[0] for case in CASES}


TRUST_BASE = '[biller]\nid = "B-1"\nname = "n"\n[sp]\nentity_id = "e"\nacs_url = "a"\n[idp]\n'


def test_the_record_names_its_trust_files_relative_to_itself() -> None:
    loaded = parse_crm(TRUST_BASE + 'metadata_file = "B-1.idp.xml"\nsigning_certificates = ["a.pem", "sub/b.pem"]\n',
                       "r.toml", "toml")
    assert loaded.idp.metadata_file == "B-1.idp.xml"
    assert loaded.idp.signing_certificates == ("a.pem", "sub/b.pem")
    assert parse_crm(TRUST_BASE, "r.toml", "toml").idp.signing_certificates is None


@pytest.mark.parametrize(("line", "key"), [
    ('metadata_file = "/etc/passwd"', "idp.metadata_file"),
    ('metadata_file = "../other/idp.xml"', "idp.metadata_file"),
    ('metadata_file = ""', "idp.metadata_file"),
    ("metadata_file = 1", "idp.metadata_file"),
    ('signing_certificates = "a.pem"', "idp.signing_certificates"),
    ("signing_certificates = []", "idp.signing_certificates"),
    ('signing_certificates = ["C:\\\\keys\\\\a.pem"]', "idp.signing_certificates[0]"),
    ('signing_certificate = ["a.pem"]', "idp.signing_certificate"),
    ("signing_certificates = [" + ", ".join(f'"{n}.pem"' for n in range(9)) + "]", "idp.signing_certificates"),
])
def test_trust_files_are_checked_strictly(line: str, key: str) -> None:
    with pytest.raises(CRMRecordError) as refused:
        parse_crm(TRUST_BASE + line + "\n", "r.toml", "toml")
    assert key in [path for path, _ in refused.value.problems]
