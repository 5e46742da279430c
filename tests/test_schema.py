"""metadata.schema: validation against the shipped SAML 2.0 XSDs."""

from __future__ import annotations

import filecmp
import hashlib
import re
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from metadata import schema, xml
from metadata.errors import SchemaUnavailable
from metadata.schema import SchemaIssue, validate

SCHEMAS = Path(schema.__file__).with_name("schemas")
CORPUS = Path(__file__).parent / "corpus"

VALID_IDP = b"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.org/saml">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"
      WantAuthnRequestsSigned="false">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>MIIB</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://idp.example.org/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""

# Three defects, each on its own line: 3 (bad boolean), 3 (protocolSupportEnumeration
# missing) and 4 (an element the schema does not allow there).
BROKEN_IDP = b"""<?xml version="1.0" encoding="UTF-8"?>
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.org/saml">
  <IDPSSODescriptor WantAuthnRequestsSigned="maybe">
    <Bogus/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="https://idp.example.org/sso"/>
  </IDPSSODescriptor>
</EntityDescriptor>
"""

WITH_EXTENSIONS = b"""<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" xmlns:shibmd="urn:mace:shibboleth:metadata:1.0"
    entityID="https://idp.example.org/saml">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:Extensions>
      <shibmd:Scope regexp="false">example.org</shibmd:Scope>
      <mdui:UIInfo><mdui:Logo height="tall" width="16">https://idp.example.org/logo.png</mdui:Logo></mdui:UIInfo>
    </md:Extensions>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="https://idp.example.org/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""

VALID_RESPONSE = b"""<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
    xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" InResponseTo="_q1" Version="2.0"
    IssueInstant="2024-05-01T10:00:00Z" Destination="https://sso.portal.example/saml/acs">
  <saml:Issuer>https://idp.example.org/saml</saml:Issuer>
  <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
  <saml:Assertion ID="_a1" Version="2.0" IssueInstant="2024-05-01T10:00:00Z">
    <saml:Issuer>https://idp.example.org/saml</saml:Issuer>
    <saml:Subject>
      <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">a@example.com</saml:NameID>
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData InResponseTo="_q1" NotOnOrAfter="2024-05-01T10:05:00Z"
            Recipient="https://sso.portal.example/saml/acs"/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions NotBefore="2024-05-01T09:59:00Z" NotOnOrAfter="2024-05-01T10:05:00Z">
      <saml:AudienceRestriction><saml:Audience>https://sso.portal.example/saml</saml:Audience></saml:AudienceRestriction>
    </saml:Conditions>
    <saml:AuthnStatement AuthnInstant="2024-05-01T10:00:00Z">
      <saml:AuthnContext>
        <saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>
      </saml:AuthnContext>
    </saml:AuthnStatement>
    <saml:AttributeStatement>
      <saml:Attribute Name="AccountNumber"><saml:AttributeValue>0123</saml:AttributeValue></saml:Attribute>
    </saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>
"""

VALID_AUTHN_REQUEST = b"""<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
    xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_q1" Version="2.0"
    IssueInstant="2024-05-01T10:00:00Z" AssertionConsumerServiceURL="https://sso.portal.example/saml/acs"
    ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">
  <saml:Issuer>https://sso.portal.example/saml</saml:Issuer>
  <samlp:NameIDPolicy AllowCreate="true"/>
</samlp:AuthnRequest>
"""


def parse(data: bytes) -> Any:
    return xml.parse_untrusted(data, xml.metadata_limits(8 * 1024 * 1024))


@pytest.fixture
def fresh_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty the compiled-schema pool, so the test sees the schemas being loaded."""
    monkeypatch.setattr(schema, "_idle", {"metadata": [], "protocol": []})


def test_minimal_idp_metadata_is_valid() -> None:
    assert validate(parse(VALID_IDP), "metadata") == []


def test_root_element_is_accepted_as_well_as_the_tree() -> None:
    assert validate(parse(VALID_IDP).getroot(), "metadata") == []


def test_every_error_is_reported_with_its_line() -> None:
    issues = validate(parse(BROKEN_IDP), "metadata")

    assert len(issues) == 3, issues
    assert all(isinstance(issue, SchemaIssue) for issue in issues)
    by_text = {
        "'maybe' is not a valid value of the atomic type 'xs:boolean'": 3,
        "The attribute 'protocolSupportEnumeration' is required but missing": 3,
        "Element 'md:Bogus': This element is not expected": 4,
    }
    for text, line in by_text.items():
        matching = [issue for issue in issues if text in issue.message]
        assert [issue.line for issue in matching] == [line], (text, issues)
    assert all(issue.path for issue in issues)


def test_a_flood_of_schema_errors_is_listed_up_to_the_cap_then_counted() -> None:
    # One error per unknown attribute: 10,000 of them made as many findings, two seconds of report.
    def flooded(count: int) -> bytes:
        endpoints = "".join(f'<md:SingleSignOnService Binding="urn:x" Location="https://idp/{i}" a{i}="x"/>\n'
                            for i in range(count))
        return VALID_IDP.replace(b"<md:SingleSignOnService", endpoints.encode() + b"<md:SingleSignOnService", 1)

    issues = validate(parse(flooded(schema.MAX_ISSUES + 25)), "metadata")
    assert len(issues) == schema.MAX_ISSUES + 1
    assert "attribute 'a0'" in issues[0].message
    assert issues[-1].message == (f"… and 25 more schema errors from this line on, not listed one by one "
                                  f"(the first {schema.MAX_ISSUES} are)")
    assert len(validate(parse(flooded(schema.MAX_ISSUES)), "metadata")) == schema.MAX_ISSUES


def test_messages_use_prefixes_not_namespace_uris() -> None:
    issues = validate(parse(BROKEN_IDP), "metadata")

    assert not any("{urn:" in issue.message or "{http" in issue.message for issue in issues), issues
    assert "Element 'md:IDPSSODescriptor'" in issues[0].message
    assert "md:SingleSignOnService" in issues[2].message  # the "Expected is one of" list


def test_unknown_namespaces_stay_in_full() -> None:
    # A misspelt namespace (https instead of http) is the whole point of the message.
    wrong_ds = VALID_IDP.replace(b'xmlns:ds="http://', b'xmlns:ds="https://')
    [issue] = validate(parse(wrong_ds), "metadata")
    assert "'{https://www.w3.org/2000/09/xmldsig#}KeyInfo'" in issue.message
    assert "Expected is ( ds:KeyInfo )" in issue.message


def test_extensions_are_checked_where_the_schema_is_lax() -> None:
    # mdui:Logo's height must be an integer (mdui schema); shibmd:Scope has no schema
    # shipped, and md:Extensions is lax, so it passes.
    issues = validate(parse(WITH_EXTENSIONS), "metadata")

    assert len(issues) == 1, issues
    assert "mdui:Logo" in issues[0].message and "'tall'" in issues[0].message
    assert issues[0].line == 7


def test_protocol_messages_are_valid() -> None:
    assert validate(parse(VALID_RESPONSE), "protocol") == []
    assert validate(parse(VALID_AUTHN_REQUEST), "protocol") == []


def test_broken_response_fails() -> None:
    # No Version on the Response, and no samlp:Status (both required by the protocol schema).
    without_version = VALID_RESPONSE.replace(b' Version="2.0"\n', b"\n", 1)
    broken = re.sub(rb"<samlp:Status>.*?</samlp:Status>", b"", without_version)
    issues = validate(parse(broken), "protocol")

    messages = " | ".join(issue.message for issue in issues)
    assert "'Version' is required" in messages
    assert "samlp:Status" in messages
    assert all(issue.line >= 1 for issue in issues)


def test_metadata_is_not_a_protocol_message() -> None:
    issues = validate(parse(VALID_IDP), "protocol")

    assert len(issues) == 1
    assert "No matching global declaration" in issues[0].message


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schema kind"):
        validate(parse(VALID_IDP), "assertion")  # type: ignore[arg-type]


def test_line_numbers_past_65535_are_not_capped() -> None:
    # libxml2 keeps element lines in 16 bits; past that it borrows the line of the element's
    # first text node, which may end a line later. Close is good enough; stuck is not.
    padding = b"\n" * 70_000
    document = BROKEN_IDP.replace(b"    <Bogus/>", padding + b"    <Bogus/>")
    issues = validate(parse(document), "metadata")

    bogus = [issue for issue in issues if "md:Bogus" in issue.message]
    assert len(bogus) == 1
    assert 70_004 <= bogus[0].line <= 70_005


def test_schemas_never_touch_the_network(monkeypatch: pytest.MonkeyPatch, fresh_schemas: None) -> None:
    # Python's socket module sees only Python-level connections; libxml2 would open its own.
    # So also check what libxml2 asked the resolver for: shipped files and nothing else.
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    asked: list[str] = []
    resolve = schema._ShippedSchemas.resolve

    def spy(self: schema._ShippedSchemas, system_url: str, public_id: str, context: Any = None) -> Any:
        asked.append(system_url)
        return resolve(self, system_url, public_id, context)

    monkeypatch.setattr(schema._ShippedSchemas, "resolve", spy)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # A partner document that names a remote schema must not make us load it either.
    xsi = b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    location = b'xsi:schemaLocation="urn:oasis:names:tc:SAML:2.0:metadata http://attacker.example/md.xsd" '
    pointing_away = VALID_IDP.replace(b'entityID="', xsi + location + b'entityID="')

    assert validate(parse(pointing_away), "metadata") == []
    assert validate(parse(VALID_RESPONSE), "protocol") == []
    assert asked, "the schemas were not loaded in this test"
    assert {url.rsplit("/", 1)[-1] for url in asked} <= schema.SHIPPED_FILES, asked
    assert not any("attacker" in url for url in asked)


def test_missing_schema_files_raise_schema_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_schemas: None
) -> None:
    monkeypatch.setattr(schema, "_DIR", tmp_path)

    with pytest.raises(SchemaUnavailable, match="cannot read the shipped XML schemas"):
        validate(parse(VALID_IDP), "metadata")


def test_an_import_outside_the_shipped_files_is_refused(
    monkeypatch: pytest.MonkeyPatch, fresh_schemas: None
) -> None:
    # As if a shipped schema imported a location we do not map: it must fail, not be fetched
    # or silently skipped (libxml2 would otherwise compile the schema with a hole).
    monkeypatch.delitem(schema._REMOTE_LOCATIONS, "http://www.w3.org/2001/xml.xsd")

    with pytest.raises(SchemaUnavailable):
        validate(parse(VALID_IDP), "metadata")


def test_concurrent_validations_keep_their_own_errors() -> None:
    valid, broken = parse(VALID_IDP), parse(BROKEN_IDP)
    failures: list[str] = []

    def work(tree: Any, expected: int) -> None:
        for _ in range(200):
            found = len(validate(tree, "metadata"))
            if found != expected:
                failures.append(f"expected {expected} issues, got {found}")

    threads = [threading.Thread(target=work, args=args) for args in [(valid, 0), (broken, 3)] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []


def test_shipped_files_match_the_readme_checksums() -> None:
    readme = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([\w.-]+\.xsd)` \|.*\| `([0-9a-f]{64})` \|$", readme, re.MULTILINE))

    assert set(listed) == {path.name for path in SCHEMAS.glob("*.xsd")} == schema.SHIPPED_FILES
    for name, digest in listed.items():
        assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == digest, name


def test_shipped_files_are_pysaml2s_unmodified_copies() -> None:
    saml2 = pytest.importorskip("saml2")
    upstream = Path(saml2.__file__).parent / "data" / "schemas"

    for name in sorted(schema.SHIPPED_FILES - {"ws-federation-roles.xsd"}):  # ours, see README
        assert filecmp.cmp(SCHEMAS / name, upstream / name, shallow=False), name


def test_corpus_idp_metadata_validates_without_exception() -> None:
    root = CORPUS / "idp-metadata"
    with_issues: dict[str, list[SchemaIssue]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix == ".xml"):
        tree = xml.parse_untrusted(path.read_bytes(), xml.metadata_limits(8 * 1024 * 1024))
        issues = validate(tree, "metadata")
        if issues:
            with_issues[str(path.relative_to(root))] = issues

    print(f"\n{len(with_issues)} corpus files with schema issues:")
    for name, issues in with_issues.items():
        first = issues[0]
        print(f"  {name}: {len(issues)} issue(s); first, line {first.line}: {first.message}")
    # The corpus marks deliberately broken files; they must not pass.
    broken = [p.relative_to(root) for p in root.rglob("*BROKEN*.xml")]
    assert all(str(name) in with_issues for name in broken), broken


def test_prepared_schemas_are_used_without_compiling_while_threads_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep's threads validate at once; compiling meanwhile raced with their parsing (an import
    of the shipped schemas "did not resolve", about one run in six). prepare() compiles first."""
    from concurrent.futures import ThreadPoolExecutor

    from metadata import schema
    from metadata.xml import metadata_limits, parse_untrusted

    schema.prepare("metadata", 4)
    monkeypatch.setattr(schema, "_compile", lambda kind: pytest.fail("compiled while threads ran"))
    document = parse_untrusted(b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
                               b'entityID="https://idp.example"/>', metadata_limits())
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: schema.validate(document, "metadata"), range(40)))
    assert all(results)  # an EntityDescriptor without a role breaks the schema: each run found it
