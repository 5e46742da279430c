"""No regular expression in product code can backtrack catastrophically (SECURITY.md §7).

Every pattern written in metadata/, idp/ and validator/ (``re.compile`` or a direct ``re.*`` call
with a literal pattern) is read from the source and parsed with Python's own regex parser: an
unbounded quantifier inside another one is refused. ``^\\s*(<!--.*?-->\\s*)*<`` (the HTML sniff)
took 37 s over 193 bytes; ``\\s*\\d+(?:\\s*[,;|]\\s*\\d+|\\s+\\d+)+\\s*`` had the same shape. The
patterns that see a partner's text are also run on 1 MiB of hostile input under a CPU limit.

What the detector cannot see: adjacent quantifiers that overlap, made quadratic by ``search``
restarting at each position (``xmlns(?::[^\\s=]*)?\\s*=`` over a run of ``xmlns:``). That is what
the hostile inputs below, and tests/test_sniff.py for the raw scans, are for.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_with_cpu_limit

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("metadata", "idp", "validator")
_RE_FUNCTIONS = {"compile", "search", "match", "fullmatch", "sub", "subn", "findall", "finditer", "split"}
MIB = 1024 * 1024


def written_patterns() -> Iterator[tuple[str, str, int]]:
    """(where, pattern, flags) of every literal pattern given to the re module in product code."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                        and node.func.attr in _RE_FUNCTIONS and node.args):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                literal = _literal(node.args[0])
                if literal is None:
                    continue  # built at run time (a name from trusted settings): see test_dynamic_patterns
                yield where, literal, _flags(node)


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        value = node.value
        return value.decode("latin-1") if isinstance(value, bytes) else value
    if isinstance(node, ast.JoinedStr):  # an f-string: its literal parts, each field as one character
        return "".join(_literal(v) or "x" if isinstance(v, ast.Constant) else "x" for v in node.values)
    return None


def _flags(call: ast.Call) -> int:
    flags = 0
    for node in ast.walk(call):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "re":
            flags |= {"I": re.I, "IGNORECASE": re.I, "S": re.S, "DOTALL": re.S, "M": re.M}.get(node.attr, 0)
    return flags


def nested_unbounded(pattern: str, flags: int = 0) -> bool:
    """True when an unbounded repeat holds another unbounded repeat (the catastrophic shape)."""
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    def unbounded(op: Any, av: Any) -> bool:
        return op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[1] == c.MAXREPEAT

    def walk(items: Any, inside: bool) -> bool:
        for op, av in items:
            if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                if unbounded(op, av) and inside and op != c.POSSESSIVE_REPEAT:
                    return True
                children = [av[2]]
                inside_next = inside or unbounded(op, av)
            else:
                children = _children(c, op, av)
                inside_next = inside
            if any(walk(child, inside_next) for child in children):
                return True
        return False

    return walk(_parser.parse(pattern, flags), False)


def _children(c: Any, op: Any, av: Any) -> list[Any]:
    """The sub-patterns of one parsed regex item that is not a repeat."""
    if op == c.BRANCH:
        return list(av[1])
    if op == c.SUBPATTERN:
        return [av[3]]
    if op in (c.ASSERT, c.ASSERT_NOT):
        return [av[1]]
    if op == c.ATOMIC_GROUP:
        return [av]
    return []


@pytest.mark.parametrize("pattern", [r"(a+)+b", r"^\s*(<!--.*?-->\s*)*<", r"\s*\d+(?:\s*[,;|]\s*\d+|\s+\d+)+\s*",
                                     r"(?:x|(?:y*))*"])
def test_the_detector_sees_nested_quantifiers(pattern: str) -> None:
    assert nested_unbounded(pattern)


@pytest.mark.parametrize("pattern", [r"[A-Za-z][A-Za-z0-9+.-]*:", r"(ab){2,5}", r"(?:a\d{1,5})*", r"<!(?i:doctype)"])
def test_the_detector_passes_flat_patterns(pattern: str) -> None:
    assert not nested_unbounded(pattern)


def test_no_pattern_in_product_code_nests_unbounded_quantifiers() -> None:
    found = list(written_patterns())
    assert len(found) > 40, "the source scan found too few patterns: has the layout changed?"
    nested = [f"{where}: {pattern}" for where, pattern, flags in found if nested_unbounded(pattern, flags)]
    assert nested == []


def test_dynamic_patterns_come_from_trusted_names_only() -> None:
    # Patterns built at run time: each is listed here with why its input is trusted.
    reviewed = {
        "metadata/keys.py": "a key file name chosen by the operator, escaped with re.escape",
    }
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                        and node.func.attr in _RE_FUNCTIONS and node.args and _literal(node.args[0]) is None):
                    assert str(path.relative_to(ROOT)) in reviewed, f"{path}:{node.lineno} builds a pattern"


def _hostile() -> dict[str, tuple[Callable[[str], object], list[str]]]:
    from metadata.urls import redact_url
    from tests.helpers import crm
    from validator.checks.claims import _joined_ids, _login_type_problem
    from validator.checks.metadata import parse_datetime
    from validator.framing import Origin, _matches
    from validator.nearmiss import claim_key, uri_difference
    from validator.vendor import _INFER, detect
    from validator.web.login_request import REQUEST_ID
    from validator.web.state import _after_body_tag
    from validator.web.testsp import TOKEN

    n = MIB
    record = crm()
    return {
        "redact_url": (redact_url, ["a:" + "/" * n + "@", "a:" + "/" * n + "x@", "https://" + "a@" * (n // 2),
                                    "https://h/" + "@" * n]),
        "login type IDs joined": (_joined_ids, ["1 " * (n // 2) + "x", "1," * (n // 2), " " * n + "1 1x"]),
        "xs:dateTime": (parse_datetime, ["-" + "1" * n + "-", "1" * n]),
        "frame-ancestors source": (lambda v: _matches(v, Origin("https", "a", 443), Origin("https", "b", 443)),
                                   ["a" * n + ":", "*." * (n // 2), "https://" + "a" * n + ":1x", "a" * n + "://",
                                    "a" * 5 * n, "a" * 5 * n + ":x"]),
        "near miss": (lambda v: (uri_difference("https://idp.example.com/", v), claim_key(v)),
                      ["https://" + "/" * n, "urn:" + ":" * n, "1." * (n // 2) + "x"]),
        "test-login cookie": (TOKEN.fullmatch, ["a" * 5 * n, "a" * 5 * n + "!"]),
        "test-login request ID": (REQUEST_ID.fullmatch, ["_" + "a" * 5 * n, "_" + "0" * 5 * n]),
        # the product told from the entity ID, endpoints and certificate subjects, and the metadata
        # URL inferred from them (issue 16): every vendor pattern and parse over one hostile value
        "vendor detection": (lambda v: detect(v, [v, v], [v]),
                             ["https://" + "a" * n, "https://h" + "/app/x" * (n // 6), "https://h/" + "/" * n,
                              "https://" + "a." * (n // 2) + "okta.com/", "urn:" + "a" * n + ".auth0.com!",
                              "https://h" + "/metaAlias/SSOPOST" * (n // 17), "OU=" * (n // 3)]),
        "metadata URL inference": (lambda v: [infer(v, [v, v]) for infer in _INFER.values()],
                                   ["https://h" + "/realms/r" * (n // 9), "https://h" + "/idp/profile/" * (n // 13),
                                    "https://h" + "/saml2/idp/" * (n // 11), "https://sts.windows.net/" + "a" * n,
                                    "https://h/" + "/adfs/ls" * (n // 8), "https://[" + ":" * n,
                                    "https://h" + "/SSOPOST/metaAlias" * (n // 17),
                                    "https://auth.pingone.com/" + "a" * n]),
        # dev mode's banner finds <body> in a page; scanned, not searched with [^>]*
        "dev banner's body tag": (_after_body_tag, ["<body" * (n // 5), "<BODY " * (5 * n // 6), "<bodyx" * n]),
        # a login type ID sent in a claim: a digit scan, then its length before int()
        "login type ID sent": (lambda v: _login_type_problem(v, record), ["1" * 5 * n, "1" * 5 * n + "x",
                                                                          " " + "1" * 5 * n, "0" * 5 * n]),
    }


@pytest.mark.parametrize("name", ["redact_url", "login type IDs joined", "xs:dateTime", "frame-ancestors source",
                                  "near miss", "test-login cookie", "test-login request ID", "dev banner's body tag",
                                  "vendor detection", "metadata URL inference"])
def test_patterns_over_a_partners_text_are_linear_on_mebibytes_of_it(name: str) -> None:
    function, inputs = _hostile()[name]

    def run() -> None:
        for value in inputs:
            function(value)

    # A linear pass over these ~15 MiB takes well under a second; a quadratic one would need some
    # 10^13 steps. The 5 s budget sits between the two, far from both, so a slow CI machine does
    # not fail a linear pattern and no machine passes a quadratic one.
    run_with_cpu_limit(run, cpu_seconds=5)
