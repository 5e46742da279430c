"""The result table of `python -m bench`: one row per benchmark, measured against its target."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Row:
    benchmark: str
    measured: str
    target: str
    result: str
    """``met``, ``NOT MET …``, ``not measured`` or ``-`` (a reference row)."""
    details: list[str] = field(default_factory=list)


def table(rows: list[Row]) -> str:
    head = ("Benchmark", "Measured (median)", "Target", "Result")
    cells = [head, *[(r.benchmark, r.measured, r.target, r.result) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["| " + " | ".join(c[i].ljust(widths[i]) for i in range(4)) + " |" for c in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
