"""Issue 4, real input: every vendor response in tests/corpus/responses/<vendor>/ is judged with the
clock and IdP certificate that MANIFEST.tsv names for it, and reported the way xmlsec1 judged it --
verified where xmlsec1 verifies (SIG025, claims read), refused where it fails (SIG022/SIG023) -- except
where our SAML-profile rules are stricter (SIG023) or the digest is SHA-1 (verified, with SIG024)."""

from __future__ import annotations

import base64
import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from metadata.certs import load_certificates
from metadata.read import read_metadata
from metadata.xml import parse_untrusted
from tests.conftest import CORPUS
from validator.report import Report, facts_json
from validator.response_inspection import ResponseOptions, inspect_response_bytes
from validator.response_report import response_report

MANIFEST = CORPUS / "MANIFEST.tsv"
SKIPPED_FOLDERS = ("attacks-and-negative", "_test-keys")

# Unsigned responses: MANIFEST names no certificate, but their notes name the IdP that the others use.
CERTIFICATE_FOR = {
    "onelogin-olgn09-scenario-99": "responses/pingfederate/pingfederate-saml-test-nope.idp-cert.pem",
    "saml-oktadev-com-case-1": "responses/okta-saml-tester/saml-oktadev-com.idp-cert.pem",
}
# Encrypted, signed with SHA-1 inside; MANIFEST lists the algorithms of the outer signatures only.
INNER_SHA1 = {"onelogin-olgn09-scenario-05"}
# xmlsec1 verifies these, but our stricter SAML profile refuses them (Reference URI="" or inclusive c14n).
PROFILE_REFUSED = {f"saml-oktadev-com-case-{n}" for n in (3, 5, 7, 8, 10, 11, 14, 15)}
# xmlsec1 verifies these, but they are not something this check can judge as a verified Response.
NOT_JUDGED = {
    "shibboleth-idp-astuart-2016-signed": "a bare saml:Assertion (the decrypted form), not a samlp:Response: SIG020",
    "shibboleth-idp-astuart-2016-encrypted": "the SP decryption key is not in the corpus: SIG027",
    "okta-flant-2016-signed-response-encrypted-assertion-retrievalmethod": "no SP decryption key shipped: SIG027",
    "samltest-id-artifact-response-soap": "a SOAP-wrapped ArtifactResponse, not a Response as a user pastes it: SIG020",
}
# Verified by xmlsec1 (Response signature) and decrypted with the shipped TEST key, yet reported SIG021.
# xmlsec1 verifies the Response signature; SECURITY.md §2 also requires the decrypted
# Assertion to carry its own signature, and this one does not: refused on purpose (SIG021).
UNSIGNED_INSIDE_BY_POLICY = {"okta-dev-513394-2020-signed-response-encrypted-assertion"}


@dataclass(frozen=True)
class Case:
    path: Path
    stem: str
    notes: str

    @property
    def check(self) -> str:
        """xmlsec1's verdicts: on the stored document, and on the decrypted assertion ("inner sigN")."""
        outer = self.notes.split("xmlsec1 check:", 1)[1] if "xmlsec1 check:" in self.notes else ""
        inner = re.findall(r"inner sig\d+\(\w+\): (?:VERIFIES|FAILS) with [^ |;]+", self.notes)
        return "; ".join([outer.strip(), *inner]).strip("; ")


def _stem(name: str) -> str:
    for suffix in (".decoded.xml", ".b64", ".xml", ".post", ".txt"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _cases() -> list[Case]:
    with MANIFEST.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    notes_by_file = {r["file"]: r["notes"] for r in rows}
    cases = []
    for row in rows:
        file = row["file"]
        parts = file.split("/")
        if row["kind"] != "responses" or len(parts) != 3 or parts[1] in SKIPPED_FOLDERS or file.endswith(".pem"):
            continue
        notes = row["notes"]
        copy_of = re.match(r"decoded copy of (\S+)", notes)
        if copy_of:  # the decoded sibling of a .b64/.txt row: judged like the stored original
            notes = notes_by_file.get(copy_of.group(1), notes)
        cases.append(Case(CORPUS / file, _stem(parts[2]), notes))
    return cases


CASES = _cases()
assert CASES, f"no vendor responses listed in {MANIFEST}: the corpus is part of the repository"


def _clock(case: Case) -> datetime:
    found = (re.search(r"suggested test clock=(\S+)", case.notes)
             or re.search(r"\b[Cc]lock (?:now=)?(\d{4}-\d\d-\d\dT[\d:.]+Z)", case.notes)
             or re.search(r"IssueInstant=(\d{4}-\d\d-\d\dT[\d:.]+Z)", case.notes))
    if not found:
        return datetime(2026, 1, 1, tzinfo=UTC)
    text = found.group(1).rstrip(".,;")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _find(name: str, near: Path) -> Path | None:
    if (near / name).is_file():
        return near / name
    return next(iter(sorted(CORPUS.rglob(name))), None)


def _certificates_from(path: Path) -> tuple[bytes, ...]:
    if path.suffix == ".pem":
        return tuple(load_certificates(path.read_bytes()))
    document = read_metadata(parse_untrusted(path.read_bytes()))
    return tuple(c.der for e in document.entities if e.idp for k in e.idp.keys for c in k.certificates if c.der)


def _embedded_certificates(path: Path) -> tuple[bytes, ...]:
    found = []
    for body in re.findall(r"<(?:\w+:)?X509Certificate>([^<]+)</", path.read_text(errors="replace")):
        try:
            found.append(base64.b64decode("".join(body.split()), validate=True))
        except ValueError:
            continue
    return tuple(found)


def _trusted(case: Case) -> tuple[bytes, ...]:
    """The IdP certificates MANIFEST pairs with the response ((), when it pairs none)."""
    named = re.findall(r"(?:VERIFIES|FAILS) with (\S+?)(?:#cert\d+)?(?:;|$|\s)", case.check)
    if case.stem in CERTIFICATE_FOR:
        named = [CERTIFICATE_FOR[case.stem]]
    if named and named[0] == "embedded":  # "embedded KeyInfo cert": self-consistency only
        decoded = case.path.with_name(case.stem + ".decoded.xml")
        return _embedded_certificates(decoded if decoded.is_file() else case.path)
    for name in named:
        found = _find(Path(name).name, case.path.parent)
        if found:
            return _certificates_from(found)
    return ()


def _sp_key(case: Case) -> bytes | None:
    key = re.search(r"_test-keys/(\S+?TEST-key\.pem)", case.notes)
    return (CORPUS / "responses" / "_test-keys" / key.group(1)).read_bytes() if key else None


def _expected(case: Case) -> str | None:
    """verified, verified-sha1, profile, invalid; None where MANIFEST gives no usable expectation."""
    if case.stem in NOT_JUDGED:
        return None
    if case.stem in PROFILE_REFUSED:
        return "profile"
    if "FAILS" in case.check:
        return "invalid"
    if "VERIFIES" in case.check:
        sha1 = case.stem in INNER_SHA1 or re.search(r"rsa-sha1/|/sha1\)", case.notes)
        return "verified-sha1" if sha1 else "verified"
    return None


def judge(case: Case) -> Report:
    now = _clock(case)
    options = ResponseOptions(now=now, trusted=_trusted(case), sp_key_pem=_sp_key(case))
    return response_report(inspect_response_bytes(case.path.read_bytes(), case.path.name, options))


def _param(case: Case) -> object:
    return pytest.param(case, id=f"{case.path.parent.name}/{case.path.name}")


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_vendor_response_is_judged_as_manifest_says(case: Case, corpus: Path) -> None:
    report = judge(case)
    codes = {f.code for f in report.findings}
    facts = facts_json(report).get("response", {})
    expected = _expected(case) if _trusted(case) else None
    assert report.findings, f"{case.path.name}: no finding"
    if case.stem in UNSIGNED_INSIDE_BY_POLICY:
        [finding] = [f for f in report.findings if f.code == "SIG021"]
        assert "decrypted assertion is not signed" in finding.message
        assert "claims" not in facts
        return
    if expected is None:
        return
    if expected in ("verified", "verified-sha1"):
        assert facts.get("verified") is True, f"{case.path.name}: not verified: {sorted(codes)}"
        assert "SIG025" in codes, sorted(codes)
        assert "claims" in facts
        assert ("SIG024" in codes) == (expected == "verified-sha1"), sorted(codes)
    elif expected == "profile":
        assert "SIG023" in codes, sorted(codes)
        assert facts.get("verified") is not True
    else:
        assert codes & {"SIG022", "SIG023"}, sorted(codes)
        assert facts.get("verified") is not True
        assert "claims" not in facts


def test_the_corpus_holds_vendor_responses(corpus: Path) -> None:
    assert len(CASES) > 50
    assert sum(_expected(c) in ("verified", "verified-sha1") for c in CASES) > 20
