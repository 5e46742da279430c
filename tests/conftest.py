"""The session's fixtures and hooks.

- ``corpus``: the real third-party corpus in ``tests/corpus`` (tests/corpus/SOURCES.md). It is part
  of the repository, so a missing corpus is a failure, never a skip.
- One key pair per kind for the whole session (``idp_signing_key``, ``sp_signing_key``,
  ``sp_encryption_key``, ``metadata_signing_key``), from :func:`tests.factory.session_keypair`.
- Markers: ``slow`` and ``interop`` are given by the tables below, so `make test-fast` can leave
  those tests out (``-m "not slow and not interop"``) while `make test` runs everything.
- Every rule is exercised: each finding code produced during the session is recorded; when the
  whole suite ran, a non-retired rule that never fired fails the session (:class:`RuleCoverage`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factory import KeyPair, session_keypair

# --update-golden and the `golden` fixture (tests/golden/).
pytest_plugins = ["tests.golden_plugin"]

TESTS = Path(__file__).resolve().parent
CORPUS = TESTS / "corpus"


def corpus_missing() -> str | None:
    """Why the corpus cannot be used, or None when it is there."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return (f"the test corpus is missing: {CORPUS}/MANIFEST.tsv not found. It is part of the repository "
                "(tests/corpus/SOURCES.md); restore it with `git checkout -- tests/corpus`")
    return None


@pytest.fixture(scope="session")
def corpus() -> Path:
    problem = corpus_missing()
    if problem:
        pytest.fail(problem, pytrace=False)
    return CORPUS


# ---- one key pair per kind, made once per session ---------------------------------------------

@pytest.fixture(scope="session")
def idp_signing_key() -> KeyPair:
    """The test IdP's signing key (RSA-2048), shared by every test that needs "an IdP key"."""
    return session_keypair("idp-signing")


@pytest.fixture(scope="session")
def sp_signing_key() -> KeyPair:
    """An SP's AuthnRequest signing key (RSA-2048)."""
    return session_keypair("sp-signing")


@pytest.fixture(scope="session")
def sp_encryption_key() -> KeyPair:
    """An SP's encryption key (RSA-2048): assertions are encrypted to its certificate."""
    return session_keypair("sp-encryption")


@pytest.fixture(scope="session")
def metadata_signing_key() -> KeyPair:
    """The key that signs IdP metadata documents (a federation operator's, not the IdP's)."""
    return session_keypair("metadata-signing")


# ---- services from the system -----------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server for the whole session (skips with a reason when it is not installed)."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
INSTALL_HINT = "apt-get install chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: {INSTALL_HINT}")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install "
                                         "-e '.[test]'")
    with playwright_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        except playwright_api.Error as exc:
            pytest.skip(f"playwright cannot start {CHROMIUM} ({INSTALL_HINT}): {str(exc).splitlines()[0]}")
        try:
            yield chromium
        finally:
            chromium.close()


# ---- markers ----------------------------------------------------------------------------------

# Whole modules. slow: fuzzing, reliability (real gunicorn and redis), browsers, the cost corpus.
# interop: the test IdP against real SP libraries over HTTP, the validator against a real IdP.
MODULE_MARKERS: dict[str, tuple[str, ...]] = {
    "test_fuzz": ("slow",),
    "test_reliability": ("slow",),
    "test_idp_sps_workers": ("slow",),
    "test_cost": ("slow",),
    "test_idp_browser": ("slow", "interop"),
    "test_web_browser": ("slow",),
    "test_idp_interop": ("interop",),
    "test_simplesamlphp": ("interop",),
    "test_local_loop_browser": ("slow",),
    "test_compose_smoke": ("slow",),
    "test_interview_browser": ("slow",),
    "test_readme_commands": ("slow",),
    "test_access_browser": ("slow",),
}
# Single tests in other modules that drive a third-party peer, by the peer named in the test.
INTEROP_NAME = re.compile(r"(?:^|_)(?:python3_saml|pysaml2|xmlsec1|simplesamlphp|node_saml)(?:_|$|\[)")


def markers_for(module: str, test_name: str) -> tuple[str, ...]:
    """The markers the tables give a test of `module` (its file's stem) named `test_name`."""
    found = MODULE_MARKERS.get(module, ())
    if "interop" not in found and INTEROP_NAME.search(test_name):
        found = (*found, "interop")
    return found


def excluded_by_markexpr(markexpr: str, module_markers: tuple[str, ...]) -> bool:
    """True when no test of a module whose tests all carry `module_markers` can match `markexpr`,
    whatever other markers a test has: then `-m` would deselect the whole module."""
    from _pytest.mark.expression import Expression

    others = sorted(set(re.findall(r"[A-Za-z_]\w*", markexpr)) - {"and", "or", "not", *module_markers})
    if len(others) > 8:
        return False
    try:
        expression = Expression.compile(markexpr)
        for mask in range(2 ** len(others)):
            present = frozenset({*module_markers, *(name for i, name in enumerate(others) if mask >> i & 1)})
            if expression.evaluate(present.__contains__):
                return False
    except Exception:  # a malformed -m, or marker arguments: pytest itself judges those
        return False
    return True


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Not even importing a module that -m deselects whole: test_cost alone builds its corpus at import.
    markers = MODULE_MARKERS.get(collection_path.stem) if collection_path.suffix == ".py" else None
    if markers and config.option.markexpr and excluded_by_markexpr(config.option.markexpr, markers):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for name in markers_for(item.path.stem, item.name):
            item.add_marker(name)


# ---- every rule is exercised ------------------------------------------------------------------

def rules_never_emitted(registry: Iterable[Any], emitted: set[str]) -> list[str]:
    """The codes of the non-retired rules of `registry` that are not in `emitted`, in registry order."""
    return [r.code for r in registry if not r.retired and r.code not in emitted]


def partial_run(config: pytest.Config, *, deselected: int, stopped: str | None) -> str | None:
    """Why this session did not run the whole suite, or None when it did."""
    if config.option.collectonly:
        return "tests were only collected"
    if config.option.markexpr:
        return f"tests were selected by marker (-m {config.option.markexpr!r})"
    if config.option.keyword:
        return f"tests were selected by keyword (-k {config.option.keyword!r})"
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        chosen = {Path(config.invocation_params.dir, a.split("::", 1)[0]).resolve() for a in config.args}
        if chosen != {TESTS} or any("::" in a for a in config.args):
            return "only some test files or tests were named on the command line"
    if deselected:
        return f"{deselected} tests were deselected"
    if stopped:
        return f"the session stopped early ({stopped})"
    return None


class RuleCoverage:
    """Records the code of every finding a rule makes during the session (``Rule.finding`` is
    wrapped), and fails a session that ran the whole suite when a non-retired rule never fired.

    Findings made in child processes (forked CPU-limited runs, subprocess CLIs, fuzz workers)
    are not seen: each code must also fire once in the test process itself.
    """

    def __init__(self, registry: Callable[[], Iterable[Any]] | None = None) -> None:
        self.registry = registry
        self.emitted: set[str] = set()
        self.deselected = 0
        self.verdict: tuple[str, str] | None = None  # ("missing" | "partial" | "ok", text)
        self._restore: Callable[[], None] | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from validator.findings import Rule

        original = Rule.finding
        emitted = self.emitted

        def finding(rule: Any, *args: Any, **kwargs: Any) -> Any:
            emitted.add(rule.code)
            return original(rule, *args, **kwargs)

        Rule.finding = finding  # type: ignore[method-assign]

        def restore() -> None:
            Rule.finding = original  # type: ignore[method-assign]

        self._restore = restore

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        # pytest-xdist: the controller gathers what each worker saw.
        self.emitted.update(getattr(node, "workeroutput", {}).get("rule_codes", ()))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._restore:
            self._restore()
            self._restore = None
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: its controller judges the whole session
            workeroutput["rule_codes"] = sorted(self.emitted)
            return
        stopped = session.shouldstop or session.shouldfail or (
            f"it ended with exit status {int(exitstatus)}" if exitstatus not in (0, 1)  # OK, TESTS_FAILED
            else "no test was collected" if not session.testscollected else None)
        why = partial_run(session.config, deselected=self.deselected, stopped=str(stopped) if stopped else None)
        if why:
            self.verdict = ("partial", f"not checked, because only part of the suite ran: {why}")
            return
        if self.registry is None:
            from validator.findings import rules

            self.registry = rules
        missing = rules_never_emitted(self.registry(), self.emitted)
        if missing:
            self.verdict = ("missing", f"{len(missing)} rules never fired in this session: {', '.join(missing)}. "
                            "Add a test that makes each of them fire in the test process (codes made only in "
                            "a child process are not seen), or retire the rule.")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        else:
            self.verdict = ("ok", f"every non-retired rule fired ({len(self.emitted)} codes seen)")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.verdict is None:
            return
        kind, text = self.verdict
        terminalreporter.write_sep("-", "every rule is exercised", red=kind == "missing", yellow=kind == "partial",
                                   green=kind == "ok")
        terminalreporter.write_line(text)


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("rule-coverage"):
        config.pluginmanager.register(RuleCoverage(), "rule-coverage")
