"""The IdP's modules are layered: none imports a module that imports it, directly or through others.

The graph is grimp's (the engine of import-linter), which reads every import statement of a
module, those inside functions too: an import moved into a function still closes a cycle here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import pytest

# The core of the IdP, lowest first: each may import only those before it (and metadata/).
CORE = ("idp.errors", "idp.assertion", "idp.faults", "idp.settings", "idp.vendors", "idp.cast")


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every set of modules that import each other in a loop (Tarjan's strongly connected
    components of more than one module, or a module that imports itself), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1 or module in graph.find_modules_directly_imported_by(module):
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(found)


def test_no_idp_module_imports_a_module_that_imports_it() -> None:
    graph = grimp.build_graph("idp", cache_dir=None)
    assert len(graph.modules) > 15  # the whole package was read
    assert cycles(graph) == []


def test_the_core_modules_import_only_those_below_them() -> None:
    graph = grimp.build_graph("idp", cache_dir=None)
    for position, module in enumerate(CORE):
        above = set(graph.modules) - set(CORE[:position]) - {"idp"}
        assert graph.find_modules_directly_imported_by(module) & above == set(), module


def test_an_import_hidden_in_a_function_still_closes_a_cycle(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "loop_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "first.py").write_text("from . import second\n")
    (package / "second.py").write_text("def late():\n    from . import third\n")
    (package / "third.py").write_text("from .first import second\n")
    (package / "alone.py").write_text("from . import first\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        graph = grimp.build_graph("loop_pkg", cache_dir=None)
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "loop_pkg"]:
            del sys.modules[name]
    assert cycles(graph) == [["loop_pkg.first", "loop_pkg.second", "loop_pkg.third"]]
