"""Failures of the validator itself (not findings about a partner's documents)."""

from __future__ import annotations


class ValidatorError(Exception):
    """Root of the validator's exceptions; the CLI prints it as ``Name: message`` and exits 2."""


class UsageError(ValidatorError, ValueError):
    """The tool was asked something it cannot do: a bad option, a missing file."""


class ConfigError(ValidatorError, ValueError):
    """A strict TOML/JSON document (a CRM record, the IdP's settings) could not be loaded:
    bad syntax, an unknown key, a wrong type.

    `problems` holds one ``(path, message)`` per fault, e.g. ``("idp.entity_idd", "unknown key")``.
    """

    what = "the document"

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {message}" for path, message in problems)
        super().__init__(f"{source}: {self.what} is not valid\n{lines}")


class CRMRecordError(ConfigError):
    """A CRM record could not be loaded."""

    what = "the CRM record"
