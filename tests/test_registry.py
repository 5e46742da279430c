"""The rule registry: stable codes, documentation for every rule, a test for every rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from validator.findings import FAMILIES, Severity, get_rule, rule, rules

TESTS = Path(__file__).parent


def test_codes_are_unique_well_formed_and_documented() -> None:
    listed = list(rules())
    assert len({r.code for r in listed}) == len(listed)
    for r in listed:
        assert re.fullmatch(r"[A-Z]{2,3}\d{3}", r.code), r.code
        assert r.code.rstrip("0123456789") in FAMILIES
        assert r.title and r.what and r.why and r.fix, r.code
        assert isinstance(r.severity, Severity)


def test_registering_a_code_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        rule("MD001", "again", Severity.ERROR, "metadata", what="x", why="y", fix="z")
    with pytest.raises(ValueError, match="three digits"):
        rule("MD01", "short", Severity.ERROR, "metadata", what="x", why="y", fix="z")


def test_every_rule_is_exercised_by_a_test() -> None:
    # A rule no test names is a rule nobody has seen fire (or seen stay quiet).
    text = "\n".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != "test_registry.py")
    missing = [r.code for r in rules() if not r.retired and r.code not in text]
    assert missing == []


def test_lookup_is_case_insensitive() -> None:
    found = get_rule(" md007 ")
    assert found is not None and found.code == "MD007"
    assert get_rule("ZZ999") is None


def test_families_listed_in_reading_order() -> None:
    families = [r.code.rstrip("0123456789") for r in rules()]
    assert families == sorted(families, key=list(FAMILIES).index)
