"""Failures of the validator itself (not findings about a partner's documents)."""

from __future__ import annotations


class ValidatorError(Exception):
    """Root of the validator's exceptions; the CLI prints it as ``Name: message`` and exits 2."""


class UsageError(ValidatorError, ValueError):
    """The tool was asked something it cannot do: a bad option, a missing file."""


class CRMRecordError(ValidatorError, ValueError):
    """A CRM record could not be loaded: bad syntax, an unknown key, a wrong type.

    `problems` holds one ``(path, message)`` per fault, e.g. ``("idp.entity_idd", "unknown key")``.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {message}" for path, message in problems)
        super().__init__(f"{source}: the CRM record is not valid\n{lines}")
