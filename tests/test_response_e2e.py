"""End to end: our test IdP → saml-validate response → a report judged against the CRM record."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from idp.settings import Persona, ServiceProvider
from metadata.crm import parse_crm
from tests.helpers import crm_toml
from tests.idp_support import ACS, IDP_BASE, SP_ENTITY, authn_request, login_as, make_idp, redirect_path
from validator.render.json import report_document
from validator.report import Report
from validator.response_inspection import ResponseOptions, inspect_response_bytes
from validator.response_report import response_report
from validator.trust import trust_from_metadata

CRM = crm_toml(sp_entity_id=SP_ENTITY, acs_url=ACS, idp={
    "entity_id": f"{IDP_BASE}/metadata", "nameid_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"})

MATCHING = {"AccountNumber": "100200300", "Email": "alice@example.com", "LoginTypeId": "1"}


def issue_response(tmp_path: Path, claims: dict[str, str]) -> tuple[bytes, bytes, str]:
    """(SAMLResponse form value, IdP metadata, request ID) from a real login at our IdP."""
    app = make_idp(tmp_path, sps=(ServiceProvider(entity_id=SP_ENTITY, acs=[ACS], sign="both"),))
    idp = app.extensions["saml_idp"]
    idp.personas["alice"] = Persona(id="alice", nameid="alice@example.com", claims=claims)
    client = app.test_client()
    request_id = "_e2e_request_0001"
    first = client.get(redirect_path(authn_request(request_id=request_id)))
    fields = login_as(client, first.headers["Location"])
    return fields["SAMLResponse"].encode(), client.get("/metadata").get_data(), request_id


def judge(response: bytes, metadata: bytes, request_id: str) -> Report:
    crm = parse_crm(CRM, "crm.toml", "toml")
    trust = trust_from_metadata(metadata, crm)
    options = ResponseOptions(now=datetime.now(UTC), trusted=trust.certificates, idp_entity_id=trust.entity_id,
                              request_id=request_id)
    return response_report(inspect_response_bytes(response, "response", options, crm))


def facts(report: Report) -> dict[str, object]:
    """The report's facts as its JSON shows them."""
    found = report_document(report)["facts"]
    assert isinstance(found, dict)
    return found


def test_a_persona_matching_the_record_gives_no_problem(tmp_path: Path) -> None:
    report = judge(*issue_response(tmp_path, MATCHING))
    assert [(f.code, f.message) for f in report.findings if f.severity != "info"] == []
    assert {f.code for f in report.findings} == {"SIG025"}  # Response and Assertion signed and verified
    assert facts(report)["response"]["claims"] == {k: [v] for k, v in MATCHING.items()}  # type: ignore[index]


def test_renaming_one_claim_gives_exactly_that_finding(tmp_path: Path) -> None:
    renamed = {**MATCHING, "accountnumber": MATCHING["AccountNumber"]}
    del renamed["AccountNumber"]
    report = judge(*issue_response(tmp_path, renamed))
    problems = [f for f in report.findings if f.severity != "info"]
    assert [f.code for f in problems] == ["CLM001"]
    assert "accountnumber" in problems[0].message


def test_wrong_request_id_and_a_changed_byte(tmp_path: Path) -> None:
    import base64

    response, metadata, _ = issue_response(tmp_path, MATCHING)
    assert "RSP017" in {f.code for f in judge(response, metadata, "_another_request").findings}
    xml = base64.b64decode(response).replace(b"100200300", b"100200301", 1)
    tampered = judge(base64.b64encode(xml), metadata, "_e2e_request_0001")
    assert [f.code for f in tampered.findings] == ["SIG022"]
    assert facts(tampered)["response"] == {"verified": False}


def test_without_metadata_no_claim_is_read(tmp_path: Path) -> None:
    response, _, request_id = issue_response(tmp_path, MATCHING)
    options = ResponseOptions(now=datetime.now(UTC), request_id=request_id)
    inspection = inspect_response_bytes(response, "response", options, None)
    assert [f.code for f in inspection.findings] == ["SIG026"]
    assert [r.facts for r in inspection.responses] == [None]


@pytest.mark.parametrize(("content", "code"), [
    (b"garbage that is not base64 at all!", "XML010"),
    (b"PHNhbWxw", "XML002"),  # truncated: the base64 decodes, the XML stops after "<samlp"
    (b'<!DOCTYPE r [<!ENTITY a "b">]><r/>', "XML003"),
    (b'<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0"/>',
     "SIG020"),
    (b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0"/>', "SIG020"),
])
def test_cli_bad_input_is_a_finding(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "response.txt"
    path.write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "validator.cli", "response", str(path), "--format", "json"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert code in [f["code"] for f in json.loads(result.stdout)["findings"]]


def test_cli_end_to_end_with_files(tmp_path: Path) -> None:
    response, metadata, request_id = issue_response(tmp_path, MATCHING)
    (tmp_path / "r.b64").write_bytes(response)
    (tmp_path / "idp.xml").write_bytes(metadata)
    (tmp_path / "crm.toml").write_text(CRM)
    result = subprocess.run(
        [sys.executable, "-m", "validator.cli", "response", str(tmp_path / "r.b64"), "--metadata",
         str(tmp_path / "idp.xml"), "--crm", str(tmp_path / "crm.toml"), "--request-id", request_id],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ ready" in result.stdout


@pytest.mark.parametrize("sign", ["assertion", "response", "both"])
def test_every_signing_choice_of_the_idp_passes_the_validator(tmp_path: Path, sign: str) -> None:
    app = make_idp(tmp_path, sps=(ServiceProvider(entity_id=SP_ENTITY, acs=[ACS], sign=sign),))  # type: ignore[arg-type]
    app.extensions["saml_idp"].personas["alice"] = Persona(id="alice", nameid="alice@example.com", claims=MATCHING)
    client = app.test_client()
    fields = login_as(client, client.get(redirect_path(authn_request(request_id="_each_1"))).headers["Location"])
    report = judge(fields["SAMLResponse"].encode(), client.get("/metadata").get_data(), "_each_1")
    assert [f.code for f in report.findings if f.severity != "info"] == []
    expected_notes = {"SIG025"} | ({"RSP006"} if sign == "assertion" else set())
    assert {f.code for f in report.findings} == expected_notes


def _built(tmp_path: Path, **spec_changes: object) -> tuple[bytes, bytes]:
    """A response built directly with the IdP's builder: (base64 value, IdP metadata)."""
    import base64

    from idp.assertion import ResponseSpec, build_response, serialize

    app = make_idp(tmp_path)
    key = app.extensions["saml_idp"].key
    fields: dict[str, object] = dict(
        issuer=f"{IDP_BASE}/metadata", destination=ACS, audience=SP_ENTITY, in_response_to="_built_1",
        nameid="alice@example.com", nameid_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        session_index="_s1", sign="both")
    fields.update(spec_changes)
    encrypt_for = fields.pop("encrypt_for", None)
    from idp.assertion import Claim

    fields["claims"] = tuple(Claim(k, (v,)) for k, v in MATCHING.items())
    element = build_response(ResponseSpec(**fields), now=datetime.now(UTC), key=key,  # type: ignore[arg-type]
                             encrypt_for=encrypt_for)  # type: ignore[arg-type]
    return base64.b64encode(serialize(element)), app.test_client().get("/metadata").get_data()


def test_unsigned_sha1_profile_and_encrypted_responses(tmp_path: Path) -> None:
    from metadata.signing import RSA_SHA1, SHA1
    from tests.factory import make_keypair

    unsigned, metadata = _built(tmp_path / "a", sign="none")
    assert [f.code for f in judge(unsigned, metadata, "_built_1").findings] == ["SIG021"]
    sha1, metadata = _built(tmp_path / "b", signature_method=RSA_SHA1, digest_method=SHA1)
    assert "SIG024" in {f.code for f in judge(sha1, metadata, "_built_1").findings}
    import base64

    good, metadata = _built(tmp_path / "c", sign="assertion")
    xml = base64.b64decode(good)
    assertion_id = xml.split(b'<saml:Assertion', 1)[1].split(b'ID="', 1)[1].split(b'"', 1)[0]
    moved = xml.replace(b'URI="#' + assertion_id + b'"', b'URI=""', 1)
    assert [f.code for f in judge(base64.b64encode(moved), metadata, "_built_1").findings] == ["SIG023"]
    sp = make_keypair("sp.example.com")
    encrypted, metadata = _built(tmp_path / "d", sign="assertion", encrypt_for=sp.cert_der)
    assert [f.code for f in judge(encrypted, metadata, "_built_1").findings] == ["SIG027"]


def test_canonical_growth_and_far_future_dates_never_crash(tmp_path: Path) -> None:
    # c14n turns each ">" into "&gt;": a 60 KB value grows past the message limit when re-parsed.
    import base64

    from idp.assertion import Claim, ResponseSpec, build_response, serialize

    app = make_idp(tmp_path)
    spec = ResponseSpec(issuer=f"{IDP_BASE}/metadata", destination=ACS, audience=SP_ENTITY, in_response_to="_g1",
                        nameid="alice@example.com",
                        nameid_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                        session_index="_s", sign="assertion", claims=(Claim("Note", (">" * 55_000,)),))
    # Sent with literal ">" (as XML allows): 60 KB in, 220 KB once canonicalised; the signature holds.
    xml = serialize(build_response(spec, now=datetime.now(UTC), key=app.extensions["saml_idp"].key))
    xml = xml.replace(b"&gt;", b">")
    assert len(xml) < 196_608
    report = judge(base64.b64encode(xml), app.test_client().get("/metadata").get_data(), "_g1")
    assert facts(report)["response"]["verified"] is True  # type: ignore[index]

    from dataclasses import replace

    from validator.checks.response import ResponseContext, check_response
    from validator.response_facts import ResponseFacts, SubjectConfirmation

    far = ResponseFacts(conditions_not_on_or_after="9999-12-31T23:59:59Z", subject_confirmations=(
        SubjectConfirmation(method="urn:oasis:names:tc:SAML:2.0:cm:bearer", recipient=ACS, not_before=None,
                            not_on_or_after="9999-12-31T23:59:59Z", in_response_to=None, address=None, line=None,
                            has_data=True),))
    check_response(ResponseContext(facts=replace(far), now=datetime.now(UTC)))  # no OverflowError


def test_a_reference_with_only_the_enveloped_transform_is_sig023_not_sig022(tmp_path: Path) -> None:
    # The enveloped transform alone digests inclusive c14n: a profile refusal (what it is), not
    # "does not verify" (which sends a partner looking for a wrong certificate).
    import base64

    response, metadata, request_id = issue_response(tmp_path, MATCHING)
    xml = base64.b64decode(response)
    exclusive = b'\n<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    assert xml.count(exclusive) == 2
    report = judge(base64.b64encode(xml.replace(exclusive, b"")), metadata, request_id)
    assert [f.code for f in report.findings if f.severity == "error"] == ["SIG023"]
    assert "only the enveloped-signature transform" in report.findings[0].message


def test_the_library_uses_a_near_miss_entity_and_says_crm001(tmp_path: Path) -> None:
    """What the test SP calls: a record's entity ID off by a trailing slash still gives the
    metadata's certificates, with CRM001 worded as ``saml-validate metadata`` words it."""
    from validator.trust import EntityMismatch

    response, metadata, request_id = issue_response(tmp_path, MATCHING)
    exact = trust_from_metadata(metadata, parse_crm(CRM, "crm.toml", "toml"))
    assert exact.findings == ()
    slashed = parse_crm(CRM.replace(f'entity_id = "{IDP_BASE}/metadata"', f'entity_id = "{IDP_BASE}/metadata/"'),
                        "crm.toml", "toml")
    trust = trust_from_metadata(metadata, slashed)
    assert (trust.entity_id, [f.code for f in trust.findings]) == (f"{IDP_BASE}/metadata", ["CRM001"])
    assert "trailing slash" in trust.findings[0].message
    options = ResponseOptions(now=datetime.now(UTC), trusted=trust.certificates, idp_entity_id=trust.entity_id,
                              request_id=request_id)
    judged = inspect_response_bytes(response, "response", options, slashed)
    assert [f.code for f in judged.findings if f.severity != "info"] == []
    assert judged.responses[0].facts is not None
    other = parse_crm(CRM.replace(f'entity_id = "{IDP_BASE}/metadata"', 'entity_id = "urn:other:idp"'),
                      "crm.toml", "toml")
    with pytest.raises(EntityMismatch) as refused:
        trust_from_metadata(metadata, other)
    assert refused.value.finding.code == "CRM001"
