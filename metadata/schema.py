"""XML Schema validation against the OASIS SAML 2.0 schemas shipped in ``schemas/``.

:func:`validate` checks a tree from :func:`metadata.xml.parse_untrusted` and returns every
schema error (not just the first) as a :class:`SchemaIssue` with its line number. Two kinds:

``"metadata"``
    SAML 2.0 metadata, with the metadata UI (mdui), algorithm support (alg), entity attribute
    (mdattr) and attribute extension schemas loaded too, so that wherever the metadata schema
    allows foreign elements with ``processContents="lax"`` (``md:Extensions``), the known ones
    are checked and unknown ones (``shibmd:Scope``, ``mdrpi:…``) pass.
``"protocol"``
    SAML 2.0 protocol messages (``samlp:Response``, ``samlp:AuthnRequest`` …), which brings in
    the assertion, xmldsig and xenc schemas.

Neither kind pins the root element: any global element of the loaded schemas validates (an
``md:EntityDescriptor`` is no valid ``"protocol"`` document, but a bare ``saml:Assertion`` is).
Callers check the root themselves.

Line numbers are libxml2's, the same as ``element.sourceline``: the line on which the
element's start tag ends. Past line 65,535 libxml2 keeps no line on elements and borrows one
from the element's first text node, so there a line may be a few lines late. Columns are 0:
libxml2 keeps none for nodes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from lxml import etree

from metadata.errors import MetadataError, SchemaUnavailable
from metadata.saml import DS, MD, SAML, SAMLP, XENC, XS

SchemaKind = Literal["metadata", "protocol"]

_DIR = Path(__file__).with_name("schemas")

# Extension namespaces only the schema set names; the SAML ones are metadata.saml's.
_MDUI = "urn:oasis:names:tc:SAML:metadata:ui"
_ALG = "urn:oasis:names:tc:SAML:metadata:algsupport"
_MDATTR = "urn:oasis:names:tc:SAML:metadata:attribute"
_ATTR_EXT = "urn:oasis:names:tc:SAML:attribute:ext"
_FED = "http://docs.oasis-open.org/wsfed/federation/200706"

# The top-level schemas of each kind: (namespace, shipped file). Their own imports follow.
_ENTRY_POINTS: dict[SchemaKind, tuple[tuple[str, str], ...]] = {
    "metadata": (
        (MD, "saml-schema-metadata-2.0.xsd"),
        (_MDUI, "sstc-saml-metadata-ui-v1.0.xsd"),
        (_ALG, "sstc-saml-metadata-algsupport-v1.0.xsd"),
        (_MDATTR, "sstc-metadata-attr.xsd"),
        (_ATTR_EXT, "sstc-saml-attribute-ext.xsd"),
        # Our own stand-in for the WS-Federation role types (see the file's comment).
        (_FED, "ws-federation-roles.xsd"),
    ),
    "protocol": ((SAMLP, "saml-schema-protocol-2.0.xsd"),),
}

# The OASIS schemas import xmldsig, xenc and xml.xsd by their W3C addresses; these are the
# shipped copies of exactly those documents (see schemas/README.md).
_REMOTE_LOCATIONS = {
    "http://www.w3.org/TR/2002/REC-xmldsig-core-20020212/xmldsig-core-schema.xsd": "xmldsig-core-schema.xsd",
    "http://www.w3.org/TR/2002/REC-xmlenc-core-20021210/xenc-schema.xsd": "xenc-schema.xsd",
    "http://www.w3.org/2001/xml.xsd": "xml.xsd",
}

SHIPPED_FILES = frozenset(
    {name for entries in _ENTRY_POINTS.values() for _, name in entries}
    | set(_REMOTE_LOCATIONS.values())
    | {"saml-schema-assertion-2.0.xsd"}
)
"""Every XSD file in ``schemas/`` that validation loads."""

_PREFIXES = {
    MD: "md",
    SAML: "saml",
    SAMLP: "samlp",
    DS: "ds",
    XENC: "xenc",
    _MDUI: "mdui",
    _ALG: "alg",
    _MDATTR: "mdattr",
    "http://www.w3.org/XML/1998/namespace": "xml",
    XS: "xs",
    "http://www.w3.org/2001/XMLSchema-instance": "xsi",
    # WS-Federation: ADFS and Entra ID metadata carry fed:SecurityTokenServiceType roles.
    "http://docs.oasis-open.org/wsfed/federation/200706": "fed",
}
_CLARK_NAME = re.compile(r"\{([^{}]*)\}([A-Za-z_][\w.\-]*)")


@dataclass(frozen=True)
class SchemaIssue:
    """One schema error in a validated document."""

    line: int
    """Line where the offending element's start tag ends (see the module docstring); 0 if unknown."""
    column: int
    """Always 0 for schema errors: libxml2 records no column for an element."""
    message: str
    """libxml2's message, with ``{namespace}name`` shortened to ``prefix:name`` where the
    namespace is a known one (an unknown or misspelt namespace stays in full: it is the point).
    It quotes the partner's values verbatim; renderers escape them, as for every finding."""
    path: str | None
    """libxml2's XPath of the element, e.g. ``/md:EntityDescriptor/md:IDPSSODescriptor``;
    ``*`` steps stand for elements in a default namespace."""


class _LogEntry(Protocol):
    """The part of lxml's ``_LogEntry`` used here (lxml-stubs leaves it untyped)."""

    line: int
    column: int
    message: str
    path: str | None


def _readable(message: str) -> str:
    """`message` with ``{urn:…:metadata}IDPSSODescriptor`` written ``md:IDPSSODescriptor``."""

    def shorten(match: re.Match[str]) -> str:
        prefix = _PREFIXES.get(match.group(1))
        return f"{prefix}:{match.group(2)}" if prefix else match.group(0)

    return _CLARK_NAME.sub(shorten, message).strip()


class _ShippedSchemas(etree.Resolver):
    """Resolves each schemaLocation the shipped schemas use to a shipped file; nothing else.

    While a schema compiles, libxml2 loads each import through this resolver: the W3C
    addresses by :data:`_REMOTE_LOCATIONS`, relative locations by file name. Any other
    address is refused (recorded in `refused` and failed), so no byte ever comes from the
    network or from outside ``schemas/``.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__()
        self.files = files
        self.refused: list[str] = []

    def resolve(self, system_url: str, public_id: str, context: Any = None) -> Any:
        name = _REMOTE_LOCATIONS.get(system_url)
        if name is None and "://" not in system_url.removeprefix("file://"):
            name = system_url.rsplit("/", 1)[-1]
        if name not in self.files:
            self.refused.append(system_url)
            raise SchemaUnavailable(f"the shipped schemas import {system_url!r}, which is not shipped")
        return self.resolve_string(self.files[name], context, base_url=str(_DIR / name))


def _compile(kind: SchemaKind) -> etree.XMLSchema:
    """Compile the schemas of `kind` from ``schemas/``, or raise :class:`SchemaUnavailable`."""
    try:
        files = {name: (_DIR / name).read_bytes() for name in SHIPPED_FILES}
    except OSError as exc:
        raise SchemaUnavailable(f"cannot read the shipped XML schemas: {exc}") from exc
    resolver = _ShippedSchemas(files)
    # This parser reads only the driver below, which we write ourselves; the shipped files it
    # imports are parsed by libxml2's schema loader, which reaches bytes only through the
    # resolver. xmldsig and xenc carry an internal DTD subset (entity and #FIXED xmlns
    # declarations): harmless in our own files, never acceptable from a partner — partner XML
    # goes through metadata.xml.parse_untrusted and nothing else.
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    parser.resolvers.add(resolver)
    driver = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS})
    for namespace, name in _ENTRY_POINTS[kind]:
        etree.SubElement(driver, f"{{{XS}}}import", namespace=namespace, schemaLocation=name)
    document = etree.fromstring(etree.tostring(driver), parser, base_url=str(_DIR / f"{kind}.xsd"))
    try:
        schema = etree.XMLSchema(document)
    except etree.XMLSchemaParseError as exc:
        raise SchemaUnavailable(f"the shipped {kind} schemas do not compile: {exc}") from exc
    # libxml2 only warns when an import fails to load and compiles the rest: a schema with a
    # hole would pass documents it should not, so any refusal or log entry is fatal here.
    problems = resolver.refused or [str(entry) for entry in cast(Iterable[_LogEntry], schema.error_log)]
    if problems:
        raise SchemaUnavailable(f"the shipped {kind} schemas did not load cleanly: {'; '.join(problems)}")
    return schema


# Compiled schemas not in use, per kind. An lxml XMLSchema keeps one error log, cleared and
# refilled by every validation, and validates without the GIL: two threads sharing one would
# mix their errors. So each validation checks one out; a second concurrent validation
# compiles another (a few milliseconds), and all are kept for reuse.
_idle: dict[SchemaKind, list[etree.XMLSchema]] = {"metadata": [], "protocol": []}
# Also serialises compiling: lxml swaps libxml2's process-wide entity loader meanwhile.
_lock = threading.Lock()


def prepare(kind: SchemaKind, count: int) -> None:
    """Compile schemas of `kind` until `count` are ready, before threads start. Compiling swaps
    libxml2's process-wide entity loader, so a compile while another thread parses can make an
    import of the shipped schemas "not resolve" (a sweep's threads did, about one run in six):
    a caller that runs up to `count` validations at once calls this first, and no thread then
    compiles while others parse."""
    with _lock:
        while len(_idle[kind]) < count:
            _idle[kind].append(_compile(kind))


@contextmanager
def _checked_out(kind: SchemaKind) -> Iterator[etree.XMLSchema]:
    with _lock:
        schema = _idle[kind].pop() if _idle[kind] else _compile(kind)
    try:
        yield schema
    finally:
        with _lock:
            _idle[kind].append(schema)


MAX_ISSUES = 50
"""Schema errors listed one by one; past them one more issue counts the rest. A partner's document
that breaks the schema in thousands of places (an attribute flood: one error per attribute) made
as many findings, each rendered: 10,000 attributes cost two seconds in the report alone."""


def validate(tree_or_root: etree._ElementTree | etree._Element, kind: SchemaKind) -> list[SchemaIssue]:
    """The schema errors of `tree_or_root` against the SAML 2.0 schemas of `kind`, in the order found.

    An empty list means valid. The first :data:`MAX_ISSUES` are listed; when there are more, one
    last issue, at the line of the first one not listed, says how many more there are. Raises
    :class:`SchemaUnavailable` if the shipped schemas cannot be loaded. `tree_or_root` must come
    from :func:`metadata.xml.parse_untrusted`; validation never loads anything the document names
    (``xsi:schemaLocation`` is ignored).
    """
    if kind not in _ENTRY_POINTS:
        raise ValueError(f"unknown schema kind {kind!r}; expected one of {sorted(_ENTRY_POINTS)}")
    with _checked_out(kind) as schema:
        try:
            if schema.validate(tree_or_root):
                return []
        except etree.XMLSchemaValidateError as exc:
            raise MetadataError(f"XML Schema validation failed internally: {exc}") from exc
        entries = list(cast(Iterable[_LogEntry], schema.error_log))
    issues = [SchemaIssue(e.line, e.column, _readable(e.message), e.path) for e in entries[:MAX_ISSUES]]
    if len(entries) > MAX_ISSUES:
        rest, first = len(entries) - MAX_ISSUES, entries[MAX_ISSUES]
        issues.append(SchemaIssue(first.line, 0, f"… and {rest:,} more schema error{'s' if rest > 1 else ''} from "
                                                 f"this line on, not listed one by one (the first {MAX_ISSUES} are)",
                                  first.path))
    return issues
