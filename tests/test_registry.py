"""The rule registry: stable codes, documentation for every rule, and the check that every rule fires."""

from __future__ import annotations

import re

import pytest

from tests.conftest import rules_never_emitted
from validator.findings import FAMILIES, Rule, Severity, get_rule, rule, rules


def test_codes_are_unique_well_formed_and_documented() -> None:
    listed = list(rules())
    assert len({r.code for r in listed}) == len(listed)
    for r in listed:
        assert re.fullmatch(r"[A-Z]{2,3}\d{3}", r.code), r.code
        assert r.code.rstrip("0123456789") in FAMILIES
        assert r.title and r.what and r.why and r.fix, r.code
        assert isinstance(r.severity, Severity)


def test_a_rules_texts_are_prose_without_the_sources_line_breaks() -> None:
    """Wrapped in the source for reading there, a text is one line of prose in a report (JSON, HTML):
    never a line break and an indent in mid-sentence."""
    for r in rules():
        for text in (r.what, r.why, r.fix):
            assert "\n" not in text and "  " not in text, (r.code, text)
    assert get_rule("NET003").fix.startswith("Check the spelling of the host name with the partner, and that the name")


def test_registering_a_code_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        rule("MD001", "again", Severity.ERROR, "metadata", what="x", why="y", fix="z")
    with pytest.raises(ValueError, match="three digits"):
        rule("MD01", "short", Severity.ERROR, "metadata", what="x", why="y", fix="z")


# "Every rule is exercised" is judged from the codes the session actually emits (tests/conftest.py,
# RuleCoverage), not from text in the test files, where a code in a comment would count.

def _rule(code: str, *, retired: bool = False) -> Rule:
    return Rule(code, f"made-up {code}", Severity.ERROR, "metadata", "x", "y", "z", retired=retired)


def test_rules_never_emitted_lists_the_quiet_rules_in_registry_order() -> None:
    registry = [_rule("ZZ003"), _rule("ZZ001"), _rule("ZZ002", retired=True), _rule("ZZ004")]
    assert rules_never_emitted(registry, {"ZZ001"}) == ["ZZ003", "ZZ004"]  # a retired rule never counts
    assert rules_never_emitted(registry, {"ZZ001", "ZZ003", "ZZ004", "MD001"}) == []


CONFTEST = """
from tests.conftest import RuleCoverage
from validator.findings import Rule, Severity

def _rule(code, retired=False):
    return Rule(code, code, Severity.ERROR, "metadata", "x", "y", "z", retired=retired)

FIRED, QUIET, RETIRED = _rule("ZZ001"), _rule("ZZ002"), _rule("ZZ003", retired=True)

def pytest_configure(config):
    config.pluginmanager.register(RuleCoverage(lambda: [FIRED, QUIET, RETIRED]), "rule-coverage")
"""
TESTS_FILE = """
import conftest

def test_fires():
    conftest.FIRED.finding("it fired")

def test_other():
    pass
"""


# The inner sessions leave hypothesis's plugin out: pytester forgets the modules an inner session
# imported, so its plugin would import hypothesis afresh each time (over a second).
NO_HYPOTHESIS = ("-p", "no:hypothesispytest")


def test_a_rule_that_never_fires_fails_a_whole_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_made_up=TESTS_FILE)
    result = pytester.runpytest(*NO_HYPOTHESIS)
    result.assert_outcomes(passed=2)  # every test passed, and yet:
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*every rule is exercised*", "1 rules never fired in this session: ZZ002.*"])


def test_a_run_where_every_rule_fires_passes(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.replace('QUIET, RETIRED]', 'RETIRED]'))
    pytester.makepyfile(test_made_up=TESTS_FILE)
    result = pytester.runpytest(*NO_HYPOTHESIS)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["every non-retired rule fired (1 codes seen)"])


@pytest.mark.parametrize(("args", "why"), [
    (["-k", "other"], "*selected by keyword (-k 'other')"),
    (["-m", "not slow"], "*selected by marker (-m 'not slow')"),
    (["test_made_up.py::test_other"], "*only some test files or tests were named*"),
    (["--deselect", "test_made_up.py::test_fires"], "*1 tests were deselected"),
])
def test_a_partial_run_says_the_check_was_not_made_and_why(pytester: pytest.Pytester, args: list[str],
                                                            why: str) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_made_up=TESTS_FILE)
    result = pytester.runpytest(*NO_HYPOTHESIS, *args)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"not checked, because only part of the suite ran: {why}"])


def test_a_session_that_could_not_collect_makes_no_claim(pytester: pytest.Pytester) -> None:
    # A collection error (e.g. a test file edited while xdist's workers collected) ran nothing:
    # listing every rule as never fired would bury the real error.
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_made_up=TESTS_FILE, test_broken="import no_such_module\n")
    result = pytester.runpytest(*NO_HYPOTHESIS)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["not checked, because only part of the suite ran: *exit status 2*"])
    result.stdout.no_fnmatch_line("*rules never fired*")


def test_lookup_is_case_insensitive() -> None:
    found = get_rule(" md007 ")
    assert found is not None and found.code == "MD007"
    assert get_rule("ZZ999") is None


def test_families_listed_in_reading_order() -> None:
    families = [r.code.rstrip("0123456789") for r in rules()]
    assert families == sorted(families, key=list(FAMILIES).index)
