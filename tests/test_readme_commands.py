"""The README runs as written (issue 15): every shell command of its tour, from a fresh clone.

The commands are taken from the ```` ```sh ```` blocks of the README's sections on setting up, the
five-minute tour, the CRM record, the discovery worksheet and the onboarding sweep. Each one runs
with ``bash`` in a fresh copy of the repository — the files git tracks, as they are in the working
tree (what a clone of this commit holds, nothing untracked or ignored: no ``.venv``, no store, no
reports left by an earlier run) — with this venv's console scripts first on PATH, as after the
set-up command (``make demo``). Its exit code must be the one its comment names (``# exit 1: …``),
0 when it names none.

A block preceded by ``<!-- not run: REASON -->`` is not run; NOT_RUN below lists each such block
by its first command, with why, and a test holds the README to that list:

- ``make demo`` / ``make test``: the first ends by starting the test IdP (a server that runs until
  Ctrl-C), the second is the whole suite; the commands here run with the venv they would make.
- the partner's-own-IdP block (``saml-validate metadata https://acme.okta.com/…``): its commands
  need a partner's live metadata URL and files of the reader's own (``acme.toml``, ``trace.json``,
  the clipboard), and ``saml-validate serve`` starts a server (tests/test_web*.py test it).
- ``saml-validate discover https://acme.okta.com/…``: a partner's live metadata URL.
- ``saml-validate sweep … --store redis://…``: a Redis server (tests/test_sweep*.py use one).

Also: the README's sample CRM record is the ready example partner's, and the hint that
``saml-validate demo`` prints is a command that runs from where it was typed, with the exit code
the hint says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # this venv's console scripts: saml-validate, saml-idp
SECTIONS = ("Set up", "A five-minute tour", "The CRM record", "The discovery worksheet", "The onboarding sweep")
NOT_RUN = {
    "make demo": "starts the test IdP, a server; `make test` is the whole suite",
    "saml-validate metadata https://acme.okta.com/app/exk1abcd/sso/saml/metadata --crm acme.toml":
        "a partner's live metadata URL, the reader's own files, and `serve` starts a server",
    "saml-validate discover https://acme.okta.com/app/exk1abcd/sso/saml/metadata --crm acme.toml":
        "a partner's live metadata URL",
    "saml-validate sweep examples/billers/ --store redis://cache:6379/1": "a Redis server",
}
MARKER = re.compile(r"<!--\s*not run:\s*(?P<why>.*?)\s*-->\s*$", re.S)
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.S | re.M)
COMMENT = re.compile(r"\s#(?:\s|$)")
EXIT = re.compile(r"\bexit (\d+)\b")
TIMEOUT = 120  # seconds per command; each takes one or two


@dataclass(frozen=True)
class Block:
    section: str
    line: int  # of the README, where the block's first line is
    body: str
    not_run: str | None  # the marker's reason


@dataclass(frozen=True)
class Command:
    text: str  # as bash gets it, continuation lines joined, comments kept
    line: int
    exit_code: int


def _sections() -> dict[str, tuple[int, str]]:
    """The README's ``##`` sections by title: (line of the title, text up to the next ``##``)."""
    text = README.read_text(encoding="utf-8")
    starts = [m for m in re.finditer(r"^## (.+)$", text, re.M)]
    found = {}
    for m, nxt in zip(starts, [*starts[1:], None], strict=True):
        found[m.group(1).strip()] = (text.count("\n", 0, m.start()) + 1, text[m.start(): nxt.start() if nxt else None])
    return found


def blocks() -> list[Block]:
    """The ``sh`` blocks of the tour's sections, in order, each with its not-run reason if marked."""
    sections = _sections()
    missing = [s for s in SECTIONS if s not in sections]
    assert not missing, f"README sections gone (tests/test_readme_commands.py SECTIONS): {missing}"
    found = []
    for title in SECTIONS:
        first_line, text = sections[title]
        previous_end = 0
        for fence in FENCE.finditer(text):
            before = text[previous_end: fence.start()]
            previous_end = fence.end()
            if fence.group("lang") != "sh":
                continue
            marker = MARKER.search(before)
            found.append(Block(title, first_line + text.count("\n", 0, fence.start()) + 1, fence.group("body"),
                               marker.group("why") if marker else None))
    return found


def commands(block: Block) -> list[Command]:
    """A block's commands: continuation lines joined; the exit code from the last line's comment."""
    found: list[Command] = []
    pending: list[str] = []
    for offset, line in enumerate(block.body.splitlines()):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending.append(line)
        if line.rstrip().endswith("\\"):
            continue
        comment = COMMENT.search(line)
        code = EXIT.search(line[comment.start():]) if comment else None
        found.append(Command("\n".join(pending), block.line + offset - len(pending) + 1,
                             int(code.group(1)) if code else 0))
        pending = []
    assert not pending, f"README line {block.line}: a command ends with a backslash"
    return found


RUN = [c for b in blocks() if b.not_run is None for c in commands(b)]


def test_the_tour_has_commands_to_run() -> None:
    assert len(RUN) >= 15, [c.text for c in RUN]
    assert any(c.exit_code == 0 for c in RUN) and any(c.exit_code == 1 for c in RUN)


def test_each_block_not_run_is_one_listed_here_with_its_reason() -> None:
    skipped = {commands(b)[0].text.split("  #")[0].strip(): b.not_run for b in blocks() if b.not_run is not None}
    assert set(skipped) == set(NOT_RUN), "a block marked `not run` in the README must be listed in NOT_RUN, and back"
    assert all(skipped.values()), "a `not run` marker says why"


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as a fresh clone has it: the files git tracks, copied from the working tree."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: which files a clone holds is unknown")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    target = tmp_path_factory.mktemp("clone")
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is gone from the clone too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run(command: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`command` in bash from `cwd`, with a home of its own (the sweep keeps its history in the user's
    data folder: never the real user's)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1",
           "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")}
    env = {k: v for k, v in env.items() if not k.startswith("VALIDATOR_")}  # the README's reader sets none
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", RUN, ids=[f"README:{c.line}" for c in RUN])
def test_the_readme_command_runs_from_a_fresh_clone_with_the_exit_code_it_says(command: Command,
                                                                               clone: Path) -> None:
    result = run(command.text, clone, clone.parent / "home")
    assert result.returncode == command.exit_code, (
        f"README line {command.line}: {command.text}\nexit {result.returncode}, the README says {command.exit_code}"
        f"\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
    assert "Traceback" not in result.stderr


def test_the_sample_crm_record_is_the_ready_example_partner() -> None:
    _, text = _sections()["The CRM record"]
    sample = next(m.group("body") for m in FENCE.finditer(text) if m.group("lang") == "toml")
    named = re.search(r"\[`(examples/billers/[^`]+\.toml)`\]", text)
    assert named is not None
    assert tomllib.loads(sample) == tomllib.loads((ROOT / named.group(1)).read_text(encoding="utf-8"))


@pytest.mark.parametrize("where", ["root", "elsewhere"])
def test_the_demo_hint_runs_where_it_was_printed(where: str, clone: Path, tmp_path: Path) -> None:
    """`make demo` runs `saml-validate demo` at the repository's root; a user may run it anywhere."""
    cwd = ROOT if where == "root" else tmp_path
    demo = run("saml-validate demo", cwd, tmp_path)
    assert demo.returncode == 0, demo.stderr
    hint = re.search(r"`([^`]+)` would exit (\d+)", demo.stderr)
    assert hint is not None, demo.stderr
    result = run(hint.group(1), cwd, tmp_path)
    assert result.returncode == int(hint.group(2)), f"{hint.group(1)}\n{result.stdout[-2000:]}{result.stderr}"
