"""The raw-byte scanners of metadata/sniff.py: right answers, and a linear cost on hostile input."""

from __future__ import annotations

import codecs
from collections.abc import Callable

import pytest

from metadata.errors import UnsafeXML
from metadata.sniff import (
    Crowding,
    comments_and_instructions,
    crowded_tag,
    declaration_line,
    declared_encoding,
    long_namespace_line,
    looks_like_html,
)
from metadata.xml import MESSAGE_LIMITS, MiB, XMLLimits, metadata_limits, parse_untrusted
from tests.helpers import run_with_cpu_limit

FIVE_MIB = 5 * MiB


def _repeat(times: int, scan: Callable[[], object]) -> Callable[[], None]:
    # Five runs inside one second of CPU: each run well under 200 ms (measured: under 70).
    def run() -> None:
        for _ in range(times):
            scan()
    return run


HOSTILE: dict[str, tuple[Callable[[bytes], object], bytes]] = {
    "html sniff, a run of empty comments": (looks_like_html, b"<!---->" * (FIVE_MIB // 7) + b"<x/>"),
    "html sniff, an unterminated comment": (looks_like_html, b"<!--" + b"-" * FIVE_MIB),
    "html sniff, whitespace": (looks_like_html, b" " * FIVE_MIB + b"<html>"),
    "encoding, a padded declaration": (declared_encoding, b"<?xml " + b"encoding " * (FIVE_MIB // 9)),
    "declarations, a run of '<!'": (lambda d: declaration_line(d, "utf-8"), b"<!" * (FIVE_MIB // 2)),
    "declarations, UTF-16": (lambda d: declaration_line(d, "utf-16"), "<!-".encode("utf-16") * (FIVE_MIB // 8)),
    "namespaces, a run of 'xmlns:'": (lambda d: long_namespace_line(d, 1024), b"<a " + b"xmlns:" * (FIVE_MIB // 6)),
    # The two patterns of metadata/sniff.py (_SPACES, _PREFIX) each on 5 MiB of what they match:
    "namespaces, spaces after '='": (lambda d: long_namespace_line(d, 1024), b"<a xmlns=" + b" " * FIVE_MIB),
    "namespaces, a long prefix": (lambda d: long_namespace_line(d, 1024), b"<a xmlns:" + b"p" * FIVE_MIB + b'="u"/>'),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_each_scanner_is_linear_on_5_mib_of_hostile_bytes(name: str) -> None:
    scan, data = HOSTILE[name]
    run_with_cpu_limit(_repeat(5, lambda: scan(data)))  # raises past 1 s of CPU


def test_declarations_are_capped_in_the_whole_document_before_parsing() -> None:
    # 5 MiB of elements at the per-element cap: 370,000 declarations, refused from the bytes.
    element = b"<e" + b"".join(b' xmlns:p%d="u"' % i for i in range(40)) + b"/>"
    data = b"<r>" + element * ((FIVE_MIB - 7) // len(element)) + b"</r>"
    with pytest.raises(UnsafeXML, match=f"namespace declarations; the limit is {len(data) // 32:,}") as refused:
        parse_untrusted(data, metadata_limits())
    assert refused.value.kind == "too-many-namespaces"
    run_with_cpu_limit(_repeat(5, lambda: crowded_tag(data, "utf-8", 40, 163_840)))


def test_one_crowded_tag_is_found_from_the_bytes_in_a_single_pass() -> None:
    # lxml's walk pays per declaration for each one before it on the same element (100,000: 2.3 s).
    many = b"<r>" + b'<e xmlns:a="u"/>' * 1000 + b"\n<c " + b'xmlns:p="u" ' * 41 + b"/></r>"
    assert crowded_tag(many, "utf-8", 40, 10_000) == Crowding(
        "an element has more than 40 namespace declarations; the limit is 40", 2)
    assert crowded_tag(many.replace(b" " * 1 + b'xmlns:p="u" ' * 41, b'xmlns:p="u" ' * 40), "utf-8", 40, 10_000) \
        is None
    hostile = b"<a " + b"xmlns=" * (FIVE_MIB // 6)
    run_with_cpu_limit(_repeat(5, lambda: crowded_tag(hostile, "utf-8", 40, 10**9)))
    text = "<c " + 'xmlns:p="u" ' * 41 + "/>"
    assert crowded_tag(text.encode("utf-16"), "utf-16", 40, 10_000) is not None


def test_the_comment_run_that_froze_every_entry_point_is_parsed_at_once() -> None:
    data = b"<!---->" * 40 + b"<x/>"  # 284 bytes: the regex sniff never finished
    run_with_cpu_limit(_repeat(1000, lambda: parse_untrusted(data, MESSAGE_LIMITS)))


@pytest.mark.parametrize("data", [
    b"<html><body>login</body></html>",
    b"\xef\xbb\xbf  <!DOCTYPE html><p>",
    b"<!doctype\n  HTML>",
    b"<!-- a --> <!----><HEAD>",
    b"\n<body\t>",
])
def test_html_pages_are_recognised(data: bytes) -> None:
    assert looks_like_html(data)


@pytest.mark.parametrize("data", [
    b"<htmlx/>",
    b"<!DOCTYPEhtml>",
    b"<!-- never closed <html>",
    b"<md:EntityDescriptor/>",
    b"<!---->" * 30 + b"<x/>",
    b"<x/><html>",
    b"",
])
def test_xml_is_not_taken_for_html(data: bytes) -> None:
    assert not looks_like_html(data)


@pytest.mark.parametrize(("data", "encoding"), [
    (b'<?xml version="1.0" encoding="ISO-8859-1"?><r/>', "iso-8859-1"),
    (b"<?xml version='1.0'\n encoding = 'Latin1' ?><r/>", "latin1"),
    (b'<?xml version="1.0" standalone="yes"?><r/>', "utf-8"),
    (b'<?xml version="1.0" encoding="bad name"?><r/>', "utf-8"),
    (b'<?xml version="1.0"?><r encoding="latin1"/>', "utf-8"),
    (b'<?xmlfoo encoding="latin1"?><r/>', "utf-8"),
    (b"<r/>", "utf-8"),
    (codecs.BOM_UTF16_LE + "<r/>".encode("utf-16-le"), "utf-16"),
])
def test_the_declared_encoding_is_read_from_the_declaration_only(data: bytes, encoding: str) -> None:
    assert declared_encoding(data) == encoding


def test_a_long_namespace_value_is_found_on_its_line() -> None:
    assert long_namespace_line(b'<a\nxmlns:p="' + b"u" * 11 + b'"/>', 10) == 2
    assert long_namespace_line(b'<a\nxmlns:p="' + b"u" * 10 + b'"/>', 10) is None
    assert long_namespace_line(b"<a xmlns = '" + b"u" * 11 + b"'/>", 10) == 1


def _nested(declarations: int) -> bytes:
    opening = "".join(f'<e{i} xmlns:p{i}="urn:{i}">' for i in range(declarations))
    return (opening + "".join(f"</e{i}>" for i in reversed(range(declarations)))).encode()


def _wide(declarations: int) -> bytes:
    return ("<r\n" + " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(declarations)) + "/>").encode()


def test_namespace_declarations_are_capped_per_element() -> None:
    limit = MESSAGE_LIMITS.max_namespaces_per_element
    assert parse_untrusted(_wide(limit), MESSAGE_LIMITS).getroot().tag == "r"
    with pytest.raises(UnsafeXML) as refused:
        parse_untrusted(_wide(limit + 1), MESSAGE_LIMITS)
    assert refused.value.kind == "too-many-namespaces"
    assert f"an element has more than {limit} namespace declarations; the limit is {limit}" in refused.value.message
    assert refused.value.line == 2


def test_namespace_declarations_are_capped_in_scope() -> None:
    limits = XMLLimits(max_bytes=MiB, max_depth=200)
    in_scope = limits.max_namespaces_in_scope
    assert parse_untrusted(_nested(in_scope), limits) is not None
    with pytest.raises(UnsafeXML) as refused:
        parse_untrusted(_nested(in_scope + 1), limits)
    assert refused.value.kind == "too-many-namespaces"
    assert f"{in_scope + 1} namespace declarations in scope; the limit is {in_scope}" in refused.value.message


def test_aggregates_redeclaring_per_entity_stay_within_the_caps() -> None:
    # 2,000 entities each declaring 10 namespaces, one per 250 bytes (the corpus's densest AD FS
    # file has one per 230): 20,000 declarations, never more than 10 in scope.
    entity = "".join(f' xmlns:n{i}="urn:n{i}"' for i in range(10))
    data = ("<agg>" + f"<e{entity}><c>{'x' * 2300}</c></e>" * 2000 + "</agg>").encode()
    assert parse_untrusted(data, metadata_limits()).getroot().tag == "agg"


def test_a_long_namespace_uri_is_refused_in_a_walked_document_too() -> None:
    # More "xmlns" than the per-element cap: judged by walking the tree, with the same refusal.
    many = "".join(f'<e xmlns:p{i}="urn:{i}"/>' for i in range(50))
    data = f'<r>{many}\n<x xmlns:q="urn:{"n" * 2000}"/></r>'.encode()
    with pytest.raises(UnsafeXML) as refused:
        parse_untrusted(data, MESSAGE_LIMITS)
    assert refused.value.kind == "too-large"
    assert refused.value.line == 2


@pytest.mark.parametrize("run", [b"<?p?>", b"<!---->"])
def test_comments_and_instructions_are_capped_like_elements(run: bytes) -> None:
    # Nodes that schema validation, XPath and xmlsec's node set all visit: 5 MiB of "<?p?>" (a
    # million of them) cost more than the rest of a metadata check together.
    limits = XMLLimits(max_bytes=MiB, max_elements=100)
    assert parse_untrusted(b"<r>" + run * 99 + b"</r>", limits).getroot().tag == "r"
    with pytest.raises(UnsafeXML) as refused:
        parse_untrusted(b"<r>" + run * 101 + b"</r>", limits)
    assert refused.value.kind == "too-many-elements"
    assert "101 comments and processing instructions; the limit is 100" in refused.value.message
    hostile = b"<r>" + run * (FIVE_MIB // len(run)) + b"</r>"
    run_with_cpu_limit(_repeat(5, lambda: comments_and_instructions(hostile, "utf-8")))


def test_attributes_are_capped_per_element() -> None:
    # Canonicalisation sorts attributes by list insertion (10,000 on one element: a second each
    # time), and schema validation reports each unknown one: refused at the parser.
    cap = MESSAGE_LIMITS.max_attributes_per_element
    at_cap = ("<r><e " + " ".join(f'a{i}="x"' for i in range(cap)) + "/></r>").encode()
    assert parse_untrusted(at_cap, MESSAGE_LIMITS).getroot().tag == "r"
    with pytest.raises(UnsafeXML) as refused:
        parse_untrusted(("<r>\n<e " + " ".join(f'a{i}="x"' for i in range(cap + 1)) + "/></r>").encode(),
                        MESSAGE_LIMITS)
    assert refused.value.kind == "too-many-attributes"
    assert refused.value.message == f"an element has more than {cap} attributes; the limit is {cap}"
    assert refused.value.line == 2
    flood = b"<r " + b" ".join(b'a%d=""' % i for i in range(480_000)) + b"/>"  # 5.2 MB

    def refuse_flood() -> None:
        with pytest.raises(UnsafeXML, match="attributes"):
            parse_untrusted(flood, metadata_limits())

    run_with_cpu_limit(refuse_flood)


@pytest.mark.parametrize("codec", ["utf-16-be", "utf-16-le"])
def test_utf16_without_a_bom_is_scanned_in_the_byte_order_libxml2_reads(codec: str) -> None:
    # "\x00<\x00?" is big-endian; decoded as little-endian it was nonsense, and every raw scan
    # saw nothing while libxml2 parsed the document normally.
    def refused(text: str) -> UnsafeXML:
        with pytest.raises(UnsafeXML) as caught:
            parse_untrusted(('<?xml version="1.0" encoding="UTF-16"?>' + text).encode(codec), metadata_limits())
        return caught.value

    limit = metadata_limits().max_elements
    assert refused("<a>" + "<?p?>" * (limit + 1) + "</a>").kind == "too-many-elements"
    assert refused("<a " + " ".join(f'xmlns:p{i}="u"' for i in range(41)) + "/>").kind == "too-many-namespaces"
    assert refused("\n<!DOCTYPE a><a/>").line == 2
    assert parse_untrusted(('<?xml version="1.0" encoding="UTF-16"?><a>' + "<?p?>" * 10 + "</a>").encode(codec),
                           metadata_limits()).getroot().tag == "a"


def test_a_response_with_okta_density_of_declarations_is_accepted() -> None:
    # Okta declares xs and xsi on every AttributeValue: 1,400 declarations in 120 KB for a user
    # in 700 groups, well within a response's 192 KiB.
    value = ('<saml2:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/'
             'XMLSchema-instance" xsi:type="xs:string">group-{}</saml2:AttributeValue>')
    data = ('<saml2:Attribute xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" Name="groups">'
            + "".join(value.format(i) for i in range(700)) + "</saml2:Attribute>").encode()
    assert len(data) < MESSAGE_LIMITS.max_bytes
    assert len(parse_untrusted(data, MESSAGE_LIMITS).getroot()) == 700


def test_the_canonical_form_of_an_accepted_document_is_not_scanned_again() -> None:
    # Exclusive c14n pushes a declaration unused where it is declared down to each element that
    # uses it: 2,000 of them in 40 KB, over the whole-document cap, though the original passed.
    from dataclasses import replace

    from metadata.xml import exc_c14n, signed_bytes_limits

    original = ('<r xmlns:p="urn:p">' + '<e p:a=""/>' * 2000 + "</r>").encode()
    limits = XMLLimits(max_bytes=64 * 1024)
    canonical = exc_c14n(parse_untrusted(original, limits).getroot())
    assert canonical.count(b'xmlns:p="urn:p"') == 2000
    with pytest.raises(UnsafeXML, match="namespace declarations; the limit is"):
        parse_untrusted(canonical, replace(limits, max_bytes=4 * limits.max_bytes))
    assert parse_untrusted(canonical, signed_bytes_limits(limits)).getroot().tag == "r"
