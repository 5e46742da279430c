"""Golden files: byte-exact expected outputs kept under ``tests/golden/``.

A test hands the ``golden`` fixture a file name (relative to ``tests/golden/``) and the bytes the
code produces now. Without ``--update-golden`` they are compared byte for byte with the file, and a
difference (or a missing file) fails the test with a short diff and the command that rewrites the
files. With ``--update-golden`` the file is rewritten instead, and the session's summary lists every
file that changed, to be reviewed in ``git diff`` before it is committed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

GOLDEN_ROOT = Path(__file__).resolve().parent / "golden"
UPDATE_COMMAND = "pytest tests/test_idp_golden.py --update-golden"
MAX_DIFF_LINES = 30

_UPDATED = pytest.StashKey[list[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", default=False,
        help="rewrite the golden files under tests/golden/ with what the code produces now, instead of "
             "comparing with them; review the changes with git diff before committing them",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_UPDATED] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    updated = config.stash.get(_UPDATED, [])
    if updated:
        terminalreporter.section("golden files rewritten (--update-golden)")
        for path in updated:
            terminalreporter.write_line(str(path))


def _view(data: bytes) -> list[str]:
    # Serialised XML is mostly one long line: one element tag per line makes a readable diff.
    return data.decode("utf-8", errors="replace").replace("><", ">\n<").splitlines()


def golden_diff(expected: bytes, actual: bytes, *, name: str = "golden") -> str:
    """A short unified diff of `expected` and `actual` (first differing lines only), with the offset
    of the first differing byte, which also locates a difference the line view cannot show."""
    offset = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
                  min(len(expected), len(actual)))
    lines = list(difflib.unified_diff(_view(expected), _view(actual), f"{name} (golden)", f"{name} (now)",
                                      n=2, lineterm=""))
    shown = lines[:MAX_DIFF_LINES]
    if len(lines) > MAX_DIFF_LINES:
        shown.append(f"… {len(lines) - MAX_DIFF_LINES} more diff lines")
    head = f"first difference at byte {offset} (golden {len(expected)} bytes, now {len(actual)} bytes)"
    return "\n".join([head, *shown])


def compare_golden(path: Path, actual: bytes, *, update: bool, label: str | None = None) -> str | None:
    """None when `path` holds exactly `actual`; otherwise why not, as a test failure message.

    With `update`, a missing or different file is (re)written with `actual` and None returned.
    Without it, nothing is ever written: a missing golden file is a failure, not a silent write.
    """
    label = label or path.name
    expected = path.read_bytes() if path.is_file() else None
    if expected == actual:
        return None
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
        return None
    hint = f"If the change is intended, rewrite the golden files with: {UPDATE_COMMAND}"
    if expected is None:
        return f"golden file {path} is missing.\n{hint}"
    return f"output differs from golden file {path}\n{golden_diff(expected, actual, name=label)}\n{hint}"


@dataclass
class Golden:
    """Compares (or, with ``--update-golden``, rewrites) named files under `root`."""

    root: Path
    update: bool = False
    updated: list[Path] = field(default_factory=list)

    def path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"golden file name {name!r} leaves {self.root}")
        return path

    def check(self, name: str, actual: bytes) -> None:
        """Fail the test unless golden file `name` holds exactly `actual` (or rewrite it when updating)."""
        path = self.path(name)
        before = path.read_bytes() if path.is_file() else None
        message = compare_golden(path, actual, update=self.update, label=name)
        if message is not None:
            pytest.fail(message, pytrace=False)
        if before != actual:
            self.updated.append(path)

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """The golden files under ``tests/golden/``; see the module docstring."""
    return Golden(GOLDEN_ROOT, bool(request.config.getoption("--update-golden")),
                  request.config.stash[_UPDATED])
