"""The one parser for untrusted XML (SECURITY.md §1).

Every byte that a partner sends — metadata, responses, AuthnRequests — enters through
:func:`parse_untrusted`. lxml is configured to never load a DTD, resolve an entity or touch
the network; a document with any DOCTYPE is refused outright, and size, depth and element
count are bounded. Values are read with :func:`text_of`, never with ``.text``: a comment
splits ``.text`` (``admin@example.com<!---->.evil.com``), and canonicalisation without
comments — what a signature covers — joins the pieces again.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from lxml import etree

from metadata.errors import UnsafeXML
from metadata.sniff import (
    comments_and_instructions,
    crowded_tag,
    declaration_line,
    declared_encoding,
    long_namespace_line,
    namespace_declarations,
)
from metadata.sniff import looks_like_html as looks_like_html

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class XMLLimits:
    """Bounds applied before and while parsing one document."""

    max_bytes: int
    """Largest input accepted, in bytes, checked before parsing starts."""
    max_depth: int = 64
    """Deepest element nesting accepted (the root is depth 1)."""
    max_elements: int = 20_000
    """Most elements accepted in one document; also the most comments and processing instructions."""
    max_namespace_length: int = 1024
    """Longest namespace URI accepted, in characters (SAML's are under 100)."""
    max_namespaces_per_element: int = 40
    """Most namespace declarations on one element (the corpus's most is 19, an AD FS document)."""
    max_attributes_per_element: int = 32
    """Most attributes on one element (the corpus's most is 6). Canonicalisation sorts them by list
    insertion, quadratic in their number (10,000 on one element: a second per canonicalisation),
    and schema validation reports each unknown one."""
    max_namespace_declarations: int = 1024
    """Most namespace declarations in a whole document, at least; larger documents may have one
    per 32 bytes (Okta declares xs and xsi on every AttributeValue: one per 85-95 bytes of a
    response). The per-element and in-scope caps bound canonicalisation; this one bounds the walk."""
    canonical: bool = False
    """The bytes are the exclusive c14n of an element of a tree this parser accepted (see
    :func:`signed_bytes_limits`): the scans for DOCTYPEs, comments and processing instructions,
    attributes, namespace declarations, element count and depth are skipped (none can grow in
    a subtree's canonical form); the size is still checked."""
    max_namespaces_in_scope: int = 64
    """Most namespace declarations in scope at any element (the corpus's most is 20). With the
    PrefixList cap of :mod:`metadata.signing`, this bounds what exclusive c14n pays per element."""


# A SAML protocol message (a decoded SAMLResponse): SECURITY.md §1.
MESSAGE_LIMITS = XMLLimits(max_bytes=192 * KiB)
# An inflated HTTP-Redirect SAMLRequest.
REQUEST_LIMITS = XMLLimits(max_bytes=64 * KiB)
# Pasted XML in the web app.
PASTED_LIMITS = XMLLimits(max_bytes=1 * MiB)


def signed_bytes_limits(limits: XMLLimits) -> XMLLimits:
    """Limits for re-parsing the canonical bytes of a document that passed `limits`.

    Canonicalisation lengthens a document (``<x/>`` becomes ``<x></x>``, ``>`` becomes
    ``&gt;``) by at most a few times; depth and element count cannot grow, so they are not counted
    again (a response's two re-parses, and 200,000 elements of an aggregate). It adds no DOCTYPE,
    comment, processing instruction or attribute, and renders a namespace only where it is used
    and in scope, so the scans that bound those (:attr:`XMLLimits.canonical`) are not repeated:
    they cost a 26 MB aggregate a third of a second, and exclusive c14n pushing an unused
    declaration down to each element that uses it could make the whole-document count refuse the
    canonical form of a document it accepted.
    """
    return replace(copied_limits(limits), max_bytes=4 * limits.max_bytes, canonical=True)


def copied_limits(limits: XMLLimits) -> XMLLimits:
    """Limits for re-parsing an element of a document that passed `limits`, serialised alone.

    Serialised alone (or canonicalised), an element carries on itself the declarations that were
    in scope above it, so the per-element cap rises to the in-scope cap.
    """
    return replace(limits, max_namespaces_per_element=limits.max_namespaces_in_scope)


def metadata_limits(max_bytes: int = 5 * MiB) -> XMLLimits:
    """Limits for a metadata document of at most `max_bytes`.

    Federation aggregates are large but regular: the element cap grows with the byte cap (one
    element per 96 bytes; the densest aggregate of the corpus has one per 142, the benchmark's
    synthetic one per 122) and never drops below the message cap. Verifying a signature costs
    xmlsec time per element and per level of depth above it, so the cap is also what bounds
    that: 163,000 elements at depth 30 took 0.8 s of xmlsec alone.
    """
    return XMLLimits(max_bytes=max_bytes, max_elements=max(20_000, max_bytes // 96))


METADATA_LIMITS = metadata_limits()

_ALLOWED_ENCODINGS = {"utf-8", "utf-16", "utf-16le", "utf-16be"}


class _NoExternalResources(etree.Resolver):
    """Refuses every external resource. lxml's load_dtd=False and no_network=True still let
    libxml2 open ``file:`` DTDs and parameter entities; this closes that door too."""

    def resolve(self, system_url: str, public_id: str, context: object = None) -> Any:
        raise UnsafeXML("doctype", f"the document refers to an external resource ({system_url!r}), which is refused")


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not thread-safe.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        collect_ids=False,
    )
    parser.resolvers.add(_NoExternalResources())
    return parser


def parse_untrusted(data: bytes, limits: XMLLimits = METADATA_LIMITS) -> etree._ElementTree:
    """Parse untrusted bytes into a tree, or raise :class:`UnsafeXML` saying why not.

    Refused: empty input; more than ``limits.max_bytes``; an encoding other than UTF-8 or
    UTF-16; an HTML page; anything not well-formed; any DOCTYPE (internal or external
    subset, so no entity can be declared); a namespace URI longer than
    ``limits.max_namespace_length``; nesting deeper than ``limits.max_depth``; more than
    ``limits.max_elements`` elements.
    """
    owner: _ParsingThread | None = getattr(_threads, "owner", None)
    if owner is not None:  # already on a parsing thread, inside in_parsing_thread: parse here
        owner.parsed += len(data)
        return _parse(data, limits)
    return _parsing_thread().run(_parse, data, limits, size=len(data))


_T = TypeVar("_T")


def in_parsing_thread(work: Callable[..., _T], *args: Any) -> _T:
    """``work(*args)`` run on the calling thread's parsing thread (see :class:`_ParsingThread`).

    Every :func:`parse_untrusted` inside it parses right there, without a hand-off of its own.
    Verifying a response parses its signed bytes twice, with xmlsec in between: run as one piece
    of work, that costs one hand-off instead of two (each some 130 µs on a 2-core machine, several
    times that when the machine is busy). The parsing is the same function with the same limits,
    and the names it interns go to the same recycled thread's dictionary.
    """
    if getattr(_threads, "owner", None) is not None:
        return work(*args)
    return _parsing_thread().run(work, *args, size=0)


class _ParsingThread:
    """The thread that parses for one calling thread, replaced once it has read `_RECYCLE_BYTES`.

    lxml interns every element and attribute name in a dictionary of the parsing thread and never
    frees one: a worker fed documents with ever-new names (any request to ``/sso``) grows without
    bound, some 80 MB per million names. The names a document brings are never more than its
    bytes, so a thread retired after parsing 1 MiB bounds that growth; its dictionary is freed
    with the last document parsed in it. A hand-off costs tens of microseconds, a new thread per
    document some 250.
    """

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse_untrusted")
        self.parsed = 0

    def run(self, work: Callable[..., _T], *args: Any, size: int) -> _T:
        """``work(*args)`` on this thread, which is first replaced if it has parsed enough; `size`
        is what `work` parses itself (nested :func:`parse_untrusted` calls count their own)."""
        if self.parsed > _RECYCLE_BYTES:
            # Waited for, so that the next thread takes over its malloc arena (glibc hands a
            # finished thread's arena to the next one): a new arena per large document raised
            # the peak memory of a 26 MB aggregate's check from 235 MB to 353 MB.
            self.executor.shutdown(wait=True)
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse_untrusted")
            self.parsed = 0
        self.parsed += size
        try:
            future = self.executor.submit(self._inside, work, args)
        except RuntimeError:  # the interpreter is shutting down (atexit, a late thread): no new threads
            return work(*args)
        return future.result()

    def _inside(self, work: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        # Marks the parsing thread as running work for this owner, so that a parse_untrusted
        # called from `work` parses in place (and is counted here) instead of handing off again.
        _threads.owner = self
        try:
            return work(*args)
        finally:
            _threads.owner = None


_RECYCLE_BYTES = 1 * MiB
_threads = threading.local()


def _forget_threads() -> None:
    # A forked child (gunicorn with --preload) has no helper threads, only their records.
    global _threads
    _threads = threading.local()


os.register_at_fork(after_in_child=_forget_threads)


def _parsing_thread() -> _ParsingThread:
    thread: _ParsingThread | None = getattr(_threads, "parser", None)
    if thread is None:
        thread = _threads.parser = _ParsingThread()
    return thread


def _parse(data: bytes, limits: XMLLimits) -> etree._ElementTree:
    if not data.strip():
        raise UnsafeXML("empty", "the input is empty")
    if len(data) > limits.max_bytes:
        raise UnsafeXML(
            "too-large", f"the input is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes"
        )
    encoding = declared_encoding(data)
    if encoding not in _ALLOWED_ENCODINGS:
        raise UnsafeXML("encoding", f"the document declares encoding {encoding!r}; only UTF-8 and UTF-16 are accepted")
    if looks_like_html(data):
        raise UnsafeXML("html", "an HTML page was given where XML was expected: " + _first_bytes(data))
    if not limits.canonical:
        _refuse_by_bytes(data, encoding, limits)
    try:
        tree = etree.ElementTree(etree.fromstring(data, _parser()))
    except UnsafeXML:
        raise
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else None
        raise UnsafeXML("malformed", f"the document is not well-formed XML: {exc.msg}", line=line) from exc
    _refuse_by_prolog(tree.docinfo)
    root = tree.getroot()
    if not limits.canonical:
        _refuse_by_count_and_depth(root, limits)
        _refuse_by_shape(root, data, encoding, limits)
    return tree


def _refuse_by_prolog(docinfo: etree.DocInfo) -> None:
    """What libxml2 read before the root: any DOCTYPE, the encoding it actually decoded."""
    if getattr(docinfo, "doctype", "") or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXML("doctype", "the document has a DOCTYPE; DTDs and entity declarations are refused", line=1)
    decoded = (docinfo.encoding or "utf-8").lower()
    if decoded not in _ALLOWED_ENCODINGS:
        raise UnsafeXML("encoding", f"the document is encoded as {decoded!r}; only UTF-8 and UTF-16 are accepted")


def _refuse_by_count_and_depth(root: etree._Element, limits: XMLLimits) -> None:
    count = int(cast(float, root.xpath("count(//*)")))
    if count > limits.max_elements:
        raise UnsafeXML(
            "too-many-elements", f"the document has {count:,} elements; the limit is {limits.max_elements:,}"
        )
    too_deep = cast("list[etree._Element]", root.xpath("/*" * (limits.max_depth + 1)))
    if too_deep:
        raise UnsafeXML(
            "too-deep",
            f"elements are nested more than {limits.max_depth} deep",
            line=line_of(too_deep[0]),
        )


def _refuse_by_bytes(data: bytes, encoding: str, limits: XMLLimits) -> None:
    """The caps judged from the bytes, before libxml2 sees them (metadata/sniff.py: one pass each)."""
    declaration = declaration_line(data, encoding)
    if declaration is not None:
        raise UnsafeXML("doctype", "the document has a DOCTYPE or an entity declaration; both are refused",
                        line=declaration)
    markup = comments_and_instructions(data, encoding)
    if markup > limits.max_elements:
        # Each is a node that schema validation, every XPath and xmlsec's node set visit: a million
        # processing instructions in 5 MiB cost more than the rest of a check together.
        raise UnsafeXML("too-many-elements", f"the document has {markup:,} comments and processing instructions; "
                        f"the limit is {limits.max_elements:,}")
    crowded = crowded_tag(data, encoding, limits.max_namespaces_per_element, _declarations_allowed(data, limits))
    if crowded is not None:
        raise UnsafeXML("too-many-namespaces", crowded.message, line=crowded.line)


def _refuse_by_shape(root: etree._Element, data: bytes, encoding: str, limits: XMLLimits) -> None:
    """The caps judged from the parsed tree: attributes per element, namespace declarations."""
    too_many = limits.max_attributes_per_element + 1
    # "//@*[N]" is each element's N-th attribute: one XPath in C that stops at N per element.
    if (data.count(b"=") >= too_many or encoding.startswith("utf-16")) and root.xpath(f"boolean(//@*[{too_many}])"):
        crowded = cast("list[etree._Element]", root.xpath(f"(//*[@*[{too_many}]])[1]"))
        raise UnsafeXML("too-many-attributes", f"an element has more than {limits.max_attributes_per_element} "
                        f"attributes; the limit is {limits.max_attributes_per_element}", line=line_of(crowded[0]))
    _check_namespaces(root, data, encoding, limits)


def _check_namespaces(root: etree._Element, data: bytes, encoding: str, limits: XMLLimits) -> None:
    """Refuse long namespace URIs and too many declarations, per element or in scope.

    Declared once, a namespace is used by every element in it: libxml2's schema validation
    compares the whole URI for each element, and exclusive c14n repeats it on each, so a 5 MiB
    document with one 2 MB URI costs hours. Many declarations in scope multiply what exclusive
    c14n pays per element (4,000 elements under 800 declarations: 50 s). A document that spells
    ``xmlns`` fewer times than the per-element cap is judged from its bytes; others by a walk.
    """
    if not encoding.startswith("utf-16") and namespace_declarations(data) <= limits.max_namespaces_per_element:
        line = long_namespace_line(data, limits.max_namespace_length)
        if line is not None:
            raise _long_namespace(limits, line)
        return
    in_scope = on_element = 0
    problem: str | None = None
    for event, value in etree.iterwalk(root, events=("start", "start-ns", "end-ns")):
        if event == "start-ns":
            in_scope += 1
            on_element += 1
            if len(cast("tuple[str, str]", value)[1]) > limits.max_namespace_length:
                problem = problem or "long"
            elif on_element > limits.max_namespaces_per_element:
                problem = problem or f"{on_element} namespace declarations on one element; the limit is " \
                                     f"{limits.max_namespaces_per_element}"
            elif in_scope > limits.max_namespaces_in_scope:
                problem = problem or f"{in_scope} namespace declarations in scope; the limit is " \
                                     f"{limits.max_namespaces_in_scope}"
        elif event == "end-ns":
            in_scope -= 1
        else:
            if problem == "long":
                raise _long_namespace(limits, line_of(cast(etree._Element, value)))
            if problem:
                raise UnsafeXML("too-many-namespaces", f"an element has {problem}",
                                line=line_of(cast(etree._Element, value)))
            on_element = 0


def _declarations_allowed(data: bytes, limits: XMLLimits) -> int:
    return max(limits.max_namespace_declarations, len(data) // 32)


def _long_namespace(limits: XMLLimits, line: int | None) -> UnsafeXML:
    return UnsafeXML("too-large", f"a namespace URI is longer than {limits.max_namespace_length:,} characters",
                     line=line)


def _first_bytes(data: bytes, n: int = 80) -> str:
    head = data[:n].decode("utf-8", "replace")
    return visible(head) + ("…" if len(data) > n else "")


def line_of(node: etree._Element) -> int | None:
    """The source line of `node` (where its start tag ends), or None when libxml2 kept none."""
    line = node.sourceline
    return line if isinstance(line, int) and line > 0 else None


def text_of(element: etree._Element) -> str:
    """All text of `element` and its descendants, comments and processing instructions left out."""
    return "".join(cast("Iterator[str]", element.itertext()))


def exc_c14n(element: etree._Element) -> bytes:
    """Exclusive canonical XML 1.0 of `element`, without comments."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_INVISIBLE_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def visible(value: str, *, one_line: bool = False) -> str:
    """`value` with control, zero-width and bidi characters shown as ``\\uXXXX``.

    Used wherever a value from a partner is shown to a person, so that ``admin\\u202e``
    cannot pass for ``admin`` and a carriage return cannot overwrite what a terminal shows.
    Line feeds are kept unless `one_line` (a value that must stay on one line: a URL, an ID).
    """
    pattern = _INVISIBLE_ONE_LINE if one_line else _INVISIBLE
    return pattern.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
