"""Exceptions of the `metadata` package: one root, subclassing the natural built-in.

These are failures to *process* an input. The validator turns each into a finding with
a stable code; the `kind` attribute is what it keys on, so messages may change freely.
"""

from __future__ import annotations


class MetadataError(Exception):
    """Root of every error raised by the `metadata` package."""


UNSAFE_XML_KINDS = frozenset({
    "empty", "too-large", "encoding", "html", "malformed", "doctype", "too-deep", "too-many-elements",
    "too-many-namespaces", "too-many-attributes",
})


class UnsafeXML(MetadataError, ValueError):
    """Untrusted XML was refused: malformed, unsafe or over a limit.

    `kind` is one of :data:`UNSAFE_XML_KINDS`: ``empty``, ``too-large``, ``encoding``, ``html``,
    ``malformed``, ``doctype``, ``too-deep``, ``too-many-elements``, ``too-many-namespaces``,
    ``too-many-attributes``.
    """

    def __init__(self, kind: str, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.line = line


class SchemaUnavailable(MetadataError, OSError):
    """The XML schemas shipped with the package could not be loaded."""


class ConfigError(MetadataError, ValueError):
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
