"""The shape of the product code stays readable: small functions, small modules.

Every function in metadata/, idp/ and validator/ has a cyclomatic complexity of at most 15 (as
radon counts it), and a module over 400 lines says why in its docstring, in a sentence that
begins "Size:". The limits are the ones docs/architecture.md states.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("metadata", "idp", "validator")
MAX_COMPLEXITY = 15
MAX_LINES = 400

MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
assert MODULES, f"no product modules found under {ROOT}"


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def too_complex(source: str, limit: int = MAX_COMPLEXITY) -> list[str]:
    """Each function or method of `source` whose complexity exceeds `limit`, as ``name (n)``."""
    found = []
    for block in cc_visit(source):
        for item in [block, *getattr(block, "methods", [])]:
            if item.complexity > limit and getattr(item, "letter", "F") in ("F", "M"):
                found.append(f"{item.fullname} ({item.complexity})")
    return sorted(set(found))


def size_unexplained(source: str, limit: int = MAX_LINES) -> bool:
    """A module over `limit` lines whose docstring does not say why."""
    if source.count("\n") <= limit:
        return False
    docstring = ast.get_docstring(ast.parse(source)) or ""
    return "Size:" not in docstring


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_is_too_complex(path: Path) -> None:
    assert too_complex(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_a_long_module_says_why(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert not size_unexplained(source), (
        f"{_name(path)} has {source.count(chr(10))} lines; split it along a seam, or say why it is one "
        f"thing in a docstring sentence beginning 'Size:'")


def test_the_checks_can_fail() -> None:
    branches = "\n".join(f"    if x == {n}:\n        return {n}" for n in range(16))
    assert too_complex(f"def tangled(x):\n{branches}\n    return -1\n") == ["tangled (17)"]
    assert too_complex("def plain(x):\n    return x\n") == []
    long = '"""One thing."""\n' + "x = 1\n" * 401
    assert size_unexplained(long)
    assert not size_unexplained('"""One thing. Size: one table per spec section."""\n' + "x = 1\n" * 401)
    assert not size_unexplained("x = 1\n" * 10)
