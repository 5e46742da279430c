"""The README runs as written (issue 15): every shell command it shows, from a fresh clone.

The commands are taken from every ```` ```sh ```` block of the README. Each one runs with ``bash``
in a fresh copy of the repository — the files git tracks, as they are in the working tree (what a
clone of this commit holds, nothing untracked or ignored: no ``.venv``, no store, no reports left
by an earlier run) — with this venv's console scripts first on PATH, as after the set-up command
(``make demo``), and a home of its own (HOME and XDG_DATA_HOME: the web app's store, with its staff
accounts, invites and tokens, and the sweep's history live in the per-user data folder — never
the real user's). Its exit code must be the one its comment names (``# exit 1: …``), 0 when it
names none; where the README says what a command prints (an invite link, an API token, an armed
persona), OUTPUT holds the command to it. A command that reads stdin when it is not a terminal
gets the line STDIN gives it (``staff add``: a password); every other command gets none.

A block whose commands talk to the test IdP (``http://127.0.0.1:8080/…``, the curl examples) runs
with ``saml-idp serve`` started in the copied tree on that port for the block, then stopped; the
IdP is given the README's own settings example (its inline SP ``https://sp.example.com/…`` and
persona alice; the SP registered from a metadata file is left out: the reader's file). When the
port is taken, the block is skipped, naming the port.

A block preceded by ``<!-- not run: REASON -->`` is not run, and neither is a command of a run
block that starts a server or reaches the reader's own SP; NOT_RUN below lists each by its first
line (a block by its first command), with why and the test that runs it instead, and a test holds
the README to that list:

- ``make demo`` / ``make test``: the first ends by starting the test IdP (a server that runs until
  Ctrl-C), the second is the whole suite; the commands here run with the venv they would make.
- the partner's-own-IdP block (``saml-validate metadata https://acme.okta.com/…``): its commands
  need a partner's live metadata URL and files of the reader's own (``acme.toml``, ``trace.json``,
  the clipboard), and ``saml-validate serve`` starts a server (tests/test_web*.py test it).
- ``saml-validate discover https://acme.okta.com/…``: a partner's live metadata URL.
- ``saml-validate sweep … --store redis://…``: a Redis server (tests/test_sweep*.py use one).
- the API example (``curl … :8081/api/v1/metadata``), the local loop's two servers, ``saml-idp
  serve …`` and ``gunicorn …``, the fault suite against a background IdP, Docker, and the long
  fuzz and load runs: servers or long runs, each proved by the test NOT_RUN names.

Also: the README's sample CRM record is the ready example partner's, and the hint that
``saml-validate demo`` prints is a command that runs from where it was typed, with the exit code
the hint says.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # this venv's console scripts: saml-validate, saml-idp
IDP_TESTS = "tests/test_idp_cli_serve.py, tests/test_idp_app.py"
NOT_RUN = {  # a marked block by its first command, a command of a run block by its first line: why
    "make demo": "starts the test IdP, a server; `make test` is the whole suite",
    "saml-validate metadata https://acme.okta.com/app/exk1abcd/sso/saml/metadata --crm acme.toml":
        "a partner's live metadata URL, the reader's own files, and `serve` starts a server",
    "saml-validate discover https://acme.okta.com/app/exk1abcd/sso/saml/metadata --crm acme.toml":
        "a partner's live metadata URL",
    "saml-validate sweep examples/billers/ --store redis://cache:6379/1": "a Redis server",
    "curl -s -X POST http://127.0.0.1:8081/api/v1/metadata -H 'Content-Type: application/json'":
        "a partner's live metadata URL, posted to a running `saml-validate serve`; tests/test_web.py "
        "posts to /api/v1/metadata",
    "saml-idp serve --crm examples/billers/local-idp.toml":
        "starts the local loop's two servers; tests/test_local_loop_browser.py runs them and signs in",
    "saml-idp serve": f"starts the test IdP, a server; {IDP_TESTS} serve it",
    "saml-idp serve --config idp.toml": f"starts the test IdP, a server, with the reader's idp.toml; {IDP_TESTS}",
    "saml-idp serve --crm biller.toml":
        "starts the test IdP, a server, on the reader's biller.toml; tests/test_idp_cast.py plays a CRM record",
    "saml-idp serve --vendor entra":
        "starts the test IdP, a server; tests/test_idp_vendors.py shapes each vendor's responses",
    "gunicorn -w 2 'idp:create_app()'":
        "starts gunicorn, a server; tests/test_reliability.py runs the IdP under gunicorn -w 2",
    "curl -s \"$(curl -s -o /dev/null -w '%{redirect_url}' https://sp.example.com/login)\"":
        "the reader's own SP's login (sp.example.com stands for it); tests/test_idp_app.py arms a persona and "
        "signs in without a person",
    "curl -s https://sp.example.com/saml/acs --data-urlencode \"SAMLResponse@response.b64\"":
        "the reader's own SP's ACS (sp.example.com stands for it); tests/test_idp_interop.py hands the "
        "SAMLResponse to python3-saml as an ACS would",
    "saml-idp serve --crm validator/demo/springfield-water.toml &":
        "starts the test IdP in the background, a server; tests/test_idp_interop.py runs "
        "examples/sp_fault_suite.py against the IdP",
    "cp config/idp.example.toml config/idp.toml":
        "Docker: builds the image and starts the stack; tests/test_compose_smoke.py runs "
        "scripts/compose-smoke.sh when a Docker daemon answers",
    ".venv/bin/python -m fuzz all --seconds 600":
        "long runs (ten minutes per fuzz target, benchmarks against gunicorn); `make test` runs their "
        "bounded part: tests/test_fuzz.py, tests/test_cost.py, tests/test_reliability.py",
}
STDIN = {"saml-validate staff add ": "a password of the reader's own\n"}  # by the command's start
OUTPUT = {  # by the command's start: what it prints (stdout: what a script keeps), as the README's comment says
    "saml-validate staff add ana@portal.example": ("stderr", r"staff account ana@portal\.example added"),
    "saml-validate invite local-idp": ("stdout", r"(?m)^https?://\S+/invite/\S+$"),  # a partner's link
    "saml-validate token create": ("stdout", r"(?m)^spf_[\w-]{20,}$"),  # an API token
    "saml-idp keygen": ("stdout", r"signing key"),
    "saml-idp users": ("stdout", r"(?m)^alice\s.*AccountNumber="),  # the personas and their claims
    "saml-idp faults": ("stdout", r"(?m)^\s+expired\s+RSP009"),
    "curl -s -X POST http://127.0.0.1:8080/api/v1/next-login": ("stdout", r'"armed":\s*"alice"'),
    "curl -s http://127.0.0.1:8080/api/v1/next-login": ("stdout", r'"field":\s*"claims\.AccountNumber"'),
    "curl -s -X POST http://127.0.0.1:8080/api/v1/sps": ("stdout", r'"source":\s*"api"'),
    'curl -s -X POST "http://127.0.0.1:8080/api/v1/sps?replace=true': ("stdout", r'"replaced":\s*true'),
    "curl -s http://127.0.0.1:8080/api/v1/sps": ("stdout", r'"source":\s*"file"[\s\S]*"sign":\s*"both"'),
    "curl -s -G -X DELETE http://127.0.0.1:8080/api/v1/sps": ("stdout", r'"deleted":\s*"https://portal'),
}
FILES = {"saml-idp metadata > idp.xml": ("idp.xml", "<md:EntityDescriptor")}  # a command's file: what it holds
MARKER = re.compile(r"<!--\s*not run:\s*(?P<why>.*?)\s*-->\s*$", re.S)
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.S | re.M)
COMMENT = re.compile(r"\s#(?:\s|$)")
EXIT = re.compile(r"\bexit (\d+)\b")
TIMEOUT = 120  # seconds per command; each takes one or two
LOCAL = re.compile(r"http://127\.0\.0\.1:(\d+)")  # a server on this machine
FENCES = {"sh", "toml", "text", ""}  # "" is the layout tree; a shell command is in an sh block


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
    """Every ``sh`` block of the README, in order, each with its not-run reason if marked."""
    sections = _sections()
    assert sections, "the README has no ## sections"
    found = []
    for title, (first_line, text) in sections.items():
        previous_end = 0
        for fence in FENCE.finditer(text):
            before = text[previous_end: fence.start()]
            previous_end = fence.end()
            assert fence.group("lang") in FENCES, (
                f"README section {title!r}: a ```{fence.group('lang')} block; shell commands go in ```sh blocks")
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


def first_line(command: Command) -> str:
    """How NOT_RUN names a command: its first line, without its comment or continuation backslash."""
    line = command.text.splitlines()[0]
    comment = COMMENT.search(line)
    return (line[: comment.start()] if comment else line).rstrip().removesuffix("\\").strip()


def to_run(block: Block) -> list[Command]:
    """The commands of a block that run: none of a marked block, and none that NOT_RUN lists."""
    return [] if block.not_run is not None else [c for c in commands(block) if first_line(c) not in NOT_RUN]


def port(block: Block) -> int | None:
    """The port of the test IdP the block's commands talk to, if they talk to one."""
    ports = {int(m.group(1)) for c in to_run(block) for m in LOCAL.finditer(c.text)}
    assert len(ports) <= 1, f"README line {block.line}: one block talks to one server, not {sorted(ports)}"
    return ports.pop() if ports else None


BLOCKS = blocks()
RUN = [c for b in BLOCKS if port(b) is None for c in to_run(b)]
SERVED = [b for b in BLOCKS if port(b) is not None]


def test_the_readme_has_commands_to_run() -> None:
    ran = RUN + [c for b in SERVED for c in to_run(b)]
    assert len(ran) >= 27, [c.text for c in ran]
    assert any(c.exit_code == 0 for c in RUN) and any(c.exit_code == 1 for c in RUN)
    assert SERVED, "the curl examples of the test IdP run against one"


def test_each_command_not_run_is_one_listed_here_with_its_reason() -> None:
    skipped = {first_line(commands(b)[0]): b.not_run for b in BLOCKS if b.not_run is not None}
    assert all(skipped.values()), "a `not run` marker says why"
    in_run_blocks = {first_line(c) for b in BLOCKS if b.not_run is None for c in commands(b)} & set(NOT_RUN)
    assert not set(skipped) & in_run_blocks
    assert set(skipped) | in_run_blocks == set(NOT_RUN), (
        "a block marked `not run` in the README must be listed in NOT_RUN, and back; a command NOT_RUN "
        "lists in a block that runs must be one of the README's")
    assert all(NOT_RUN.values())


def test_what_a_command_is_held_to_names_a_command_that_runs() -> None:
    ran = [c.text for b in BLOCKS for c in to_run(b)]
    for start in [*STDIN, *OUTPUT, *FILES]:
        assert any(text.startswith(start) for text in ran), f"no README command that runs starts with {start!r}"


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


def environment(home: Path) -> dict[str, str]:
    """The README's reader's: the venv's scripts first on PATH, a home of its own (the web app's store
    and the sweep's history are kept in the user's data folder: never the real user's), and none of
    the VALIDATOR_ or IDP_ settings."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1",
           "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")}
    return {k: v for k, v in env.items() if not k.startswith(("VALIDATOR_", "IDP_"))}


def run(command: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`command` in bash from `cwd`, with a home of its own, and stdin the line STDIN gives it or none."""
    given = next((line for start, line in STDIN.items() if command.startswith(start)), None)
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=environment(home),
                          capture_output=True, text=True, timeout=TIMEOUT, input=given,
                          stdin=subprocess.DEVNULL if given is None else None)


def check(command: Command, cwd: Path, home: Path) -> None:
    """Run a README command: its exit code the README's, its output and file what the README says."""
    result = run(command.text, cwd, home)
    said = (f"README line {command.line}: {command.text}\nexit {result.returncode}, the README says "
            f"{command.exit_code}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
    assert result.returncode == command.exit_code, said
    assert "Traceback" not in result.stderr, said
    for start, (stream, pattern) in OUTPUT.items():
        if command.text.startswith(start):
            printed = result.stdout if stream == "stdout" else result.stderr
            assert re.search(pattern, printed), f"{said}\n--- the README says it prints on {stream}: {pattern}"
    for start, (name, holds) in FILES.items():
        if command.text.startswith(start):
            assert holds in (cwd / name).read_text(encoding="utf-8"), f"{said}\n--- {name} holds no {holds}"


@pytest.mark.parametrize("command", RUN, ids=[f"README:{c.line}" for c in RUN])
def test_the_readme_command_runs_from_a_fresh_clone_with_the_exit_code_it_says(command: Command,
                                                                               clone: Path) -> None:
    check(command, clone, clone.parent / "home")


def readme_idp_settings() -> dict[str, object]:
    """The test IdP's settings example of the README, as a reader would start from it: its inline SP
    and its persona; the SP registered from a metadata file (the reader's) and `[server]` (a store
    under /var) are left out."""
    _, text = _sections()["The test IdP"]
    example = tomllib.loads(next(m.group("body") for m in FENCE.finditer(text) if m.group("lang") == "toml"))
    return {"sps": [sp for sp in example["sps"] if "metadata" not in sp], "personas": example["personas"]}


@pytest.fixture
def idp(clone: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """`saml-idp serve` in the clone, on the port the block's commands use, until the block is done."""
    on = port(request.param)
    assert on is not None
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", on))
        except OSError:
            pytest.skip(f"port {on} is taken: the README's commands talk to the test IdP there")
    settings = tmp_path / "idp.json"
    settings.write_text(json.dumps(readme_idp_settings()), encoding="utf-8")
    log = tmp_path / "idp.log"
    with log.open("wb") as out:
        server = subprocess.Popen(["saml-idp", "serve", "--config", str(settings), "--port", str(on)], cwd=clone,
                                  env=environment(clone.parent / "home"), stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                said = log.read_text(errors="replace")
                if "in use" in said:  # taken between the probe and the start (another test's server)
                    pytest.skip(f"port {on} is taken: the README's commands talk to the test IdP there")
                pytest.fail(f"saml-idp serve ended ({server.returncode}):\n{said}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{on}/metadata", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"saml-idp serve did not answer in 30 s:\n{log.read_text()}"
                time.sleep(0.2)
        yield on
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.parametrize("idp", SERVED, ids=[f"README:{b.line}" for b in SERVED], indirect=True)
def test_the_readme_commands_that_talk_to_the_test_idp_run_against_one(idp: int, clone: Path,
                                                                       request: pytest.FixtureRequest) -> None:
    block: Block = request.node.callspec.params["idp"]
    for command in to_run(block):
        check(command, clone, clone.parent / "home")


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
