"""docs/architecture.md is the map a newcomer reads: its table "From a code to its check" must
name the module where each rule is registered, or the map sends them to the wrong room."""

from __future__ import annotations

import ast
from pathlib import Path

from validator.findings import rules

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
CHECKS = ROOT / "validator" / "checks"


def registrations(folder: Path = CHECKS) -> dict[str, str]:
    """Rule code → the module (``checks/name.py``) whose code registers it: a call whose first
    argument is the code, to ``rule`` or to a factory made by ``rules_for``."""
    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("rule", "_rule")
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found[node.args[0].value] = f"checks/{path.name}"
    return found


def mapped_modules(text: str) -> dict[str, set[str]]:
    """Family → the modules the doc's table lists in its "Registered in" column."""
    section = text.split("## From a code to its check", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and not cells[0].startswith("`-"):
            family = cells[0].split("`")[1]
            table[family] = {piece for piece in cells[1].split("`")[1::2] if piece.endswith(".py")}
    return table


def misplaced(registered: dict[str, str], table: dict[str, set[str]]) -> list[str]:
    """Codes registered in a module the table does not list for their family."""
    wrong = []
    for code, module in sorted(registered.items()):
        family = code.rstrip("0123456789")
        if module not in table.get(family, set()):
            wrong.append(f"{code} is registered in {module}; the table lists {sorted(table.get(family, ()))}")
    return wrong


def test_every_rule_is_registered_where_the_map_says() -> None:
    registered = registrations()
    codes = {r.code for r in rules()}
    assert set(registered) == codes, "a rule is registered outside validator/checks, or by another call"
    assert misplaced(registered, mapped_modules(DOC.read_text(encoding="utf-8"))) == []


def test_the_map_check_can_fail() -> None:
    table = mapped_modules(DOC.read_text(encoding="utf-8"))
    assert table["RSP"] == {"checks/response_rules.py"}
    assert misplaced({"RSP001": "checks/claims.py"}, table)
    assert misplaced({"ZZZ001": "checks/claims.py"}, table)
    assert not misplaced({"CLM001": "checks/claims.py"}, table)
