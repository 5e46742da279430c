"""Every real response and attack sample in tests/corpus/responses goes through the
validator as a user would give it: findings, never a crash, and never a claim read from an
unverified or wrapped response."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from metadata.read import read_metadata
from metadata.xml import parse_untrusted
from tests.conftest import CORPUS
from validator.report import Report, facts_json
from validator.response_inspection import ResponseOptions, inspect_response_bytes
from validator.response_report import response_report

RESPONSES = CORPUS / "responses"
FILES = sorted(p for p in RESPONSES.rglob("*") if p.suffix in (".xml", ".b64") and "_test-keys" not in p.parts
               and not p.name.endswith(".metadata.xml"))
ATTACKS = [p for p in FILES if p.parent.name == "attacks-and-negative"]
assert FILES and ATTACKS, f"no responses or attack samples in {RESPONSES}: the corpus is part of the repository"


def judge(path: Path, trusted: tuple[bytes, ...] = ()) -> Report:
    options = ResponseOptions(now=datetime(2026, 11, 27, tzinfo=UTC), trusted=trusted)
    return response_report(inspect_response_bytes(path.read_bytes(), path.name, options))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_response_is_judged_without_failure(path: Path, corpus: Path) -> None:
    report = judge(path)
    assert report.findings
    assert report.exit_code() == 1  # without the IdP's metadata nothing is verified (SIG026) or it is refused


def _embedded_or_paired_certificates(path: Path) -> tuple[bytes, ...]:
    if path.suffix == ".b64":  # the same response as its .decoded.xml sibling
        path = path.with_name(path.name[: -len(".b64")] + ".decoded.xml")
    paired = path.with_name(path.name[: -len(".xml")] + ".metadata.xml")
    if paired.is_file():
        idp = read_metadata(parse_untrusted(paired.read_bytes())).entities[0].idp
        return tuple(c.der for k in (idp.keys if idp else ()) for c in k.certificates if c.der)
    import base64
    import re

    text = path.read_text(errors="replace")
    found = re.findall(r"<(?:ds:)?X509Certificate>([^<]+)</", text)
    certificates = []
    for body in found:
        try:
            certificates.append(base64.b64decode("".join(body.split()), validate=True))
        except ValueError:
            continue
    return tuple(certificates)


# Signed validly as stored: crewjam adds the comment at run time (tested in test_response_verify);
# re-signed by an attacker: trusting the certificate it carries is exactly the mistake it exploits.
NOT_REFUSED_WITH_EMBEDDED_TRUST = ("comment-injection", "resigned-by-attacker")


@pytest.mark.parametrize("path", [p for p in ATTACKS if not any(s in p.name for s in NOT_REFUSED_WITH_EMBEDDED_TRUST)],
                         ids=lambda p: p.name)
def test_attacks_are_refused_and_no_claim_is_read(path: Path, corpus: Path) -> None:
    # Even trusting the certificate in the document (or its paired metadata), no attack yields claims.
    report = judge(path, _embedded_or_paired_certificates(path))
    codes = {f.code for f in report.findings}
    assert codes & {"SIG020", "SIG021", "SIG022", "SIG023", "XML002", "XML003", "SIG026"}, codes
    facts = facts_json(report).get("response", {})
    assert "claims" not in facts, f"{path.name}: claims were read: {facts}"


def test_comment_injection_sample_yields_the_whole_signed_nameid(corpus: Path) -> None:
    path = RESPONSES / "attacks-and-negative" / "crewjam-google-2016-comment-injection.decoded.xml"
    report = judge(path, _embedded_or_paired_certificates(path))
    assert facts_json(report)["response"]["nameid"] == "ross@octolabs.io"
