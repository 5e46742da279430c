"""Failures of the validator itself (not findings about a partner's documents)."""

from __future__ import annotations


class ValidatorError(Exception):
    """Root of the validator's exceptions; the CLI prints it as ``Name: message`` and exits 2."""


class UsageError(ValidatorError, ValueError):
    """The tool was asked something it cannot do: a bad option, a missing file."""
