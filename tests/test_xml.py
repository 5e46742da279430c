"""The one parser refuses what SECURITY.md §1 says, and reads values the safe way."""

from __future__ import annotations

import codecs
from dataclasses import replace
from typing import Any

import pytest

from metadata.errors import UnsafeXML
from metadata.xml import (
    MESSAGE_LIMITS,
    XMLLimits,
    exc_c14n,
    metadata_limits,
    parse_untrusted,
    signed_bytes_limits,
    text_of,
    visible,
)


def refused(data: bytes, limits: XMLLimits = MESSAGE_LIMITS) -> UnsafeXML:
    with pytest.raises(UnsafeXML) as caught:
        parse_untrusted(data, limits)
    return caught.value


def test_parses_plain_document() -> None:
    tree = parse_untrusted(b"<a><b>x</b></a>", MESSAGE_LIMITS)
    assert tree.getroot().tag == "a"


@pytest.mark.parametrize("data", [b"", b"   \n\t"])
def test_empty_input(data: bytes) -> None:
    assert refused(data).kind == "empty"


def test_size_limit_checked_before_parsing() -> None:
    error = refused(b"<a>" + b"x" * 200 + b"</a>", XMLLimits(max_bytes=100))
    assert error.kind == "too-large"
    assert "100" in error.message


def test_malformed_reports_line() -> None:
    error = refused(b"<a>\n<b>\n</a>")
    assert error.kind == "malformed"
    assert error.line == 3


def test_xxe_external_entity_refused() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    error = refused(data)
    assert error.kind == "doctype"


def test_billion_laughs_refused_quickly() -> None:
    entities = "".join(f'<!ENTITY l{i} "&l{i - 1};&l{i - 1};&l{i - 1};&l{i - 1};">' for i in range(1, 10))
    data = f'<!DOCTYPE a [<!ENTITY l0 "lol">{entities}]><a>&l9;</a>'.encode()
    assert refused(data).kind == "doctype"


def test_quadratic_blowup_refused() -> None:
    data = b'<!DOCTYPE a [<!ENTITY big "' + b"A" * 50_000 + b'">]><a>' + b"&big;" * 2000 + b"</a>"
    assert refused(data, metadata_limits()).kind == "doctype"


def test_doctype_without_entities_refused() -> None:
    assert refused(b'<!DOCTYPE a SYSTEM "http://evil.example/a.dtd"><a/>').kind == "doctype"


def test_external_parameter_entity_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the parser touched the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    data = b'<!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><a/>'
    assert refused(data).kind == "doctype"


def test_depth_limit() -> None:
    deep = b"<a>" * 70 + b"</a>" * 70
    error = refused(deep, XMLLimits(max_bytes=10_000, max_depth=64))
    assert error.kind == "too-deep"
    shallow = b"<a>" * 64 + b"</a>" * 64
    assert parse_untrusted(shallow, XMLLimits(max_bytes=10_000, max_depth=64)) is not None


def test_element_limit() -> None:
    data = b"<a>" + b"<b/>" * 30 + b"</a>"
    assert refused(data, XMLLimits(max_bytes=10_000, max_elements=20)).kind == "too-many-elements"
    assert parse_untrusted(data, XMLLimits(max_bytes=10_000, max_elements=31)) is not None


def test_the_canonical_form_of_a_subtree_neither_deepens_nor_grows() -> None:
    # signed_bytes_limits re-parses without counting elements or depth: exclusive c14n of an element
    # of an accepted tree has at most its elements and its depth, so the caps still hold.
    limits = XMLLimits(max_bytes=20_000, max_depth=64, max_elements=200)
    document = b"<r>" + b"<a>" * 63 + b"</a>" * 63 + b"<b/>" * 135 + b"</r>"
    root = parse_untrusted(document, limits).getroot()
    for element in (root, root[0], root[-1]):
        canonical = exc_c14n(element)
        again = parse_untrusted(canonical, signed_bytes_limits(limits)).getroot()
        assert sum(1 for _ in again.iter()) == sum(1 for _ in element.iter()) <= limits.max_elements
        assert parse_untrusted(canonical, replace(limits, max_bytes=4 * limits.max_bytes)) is not None


def test_other_encodings_refused() -> None:
    data = '<?xml version="1.0" encoding="ISO-8859-1"?><a>é</a>'.encode("latin-1")
    assert refused(data).kind == "encoding"


def test_utf16_and_bom_accepted() -> None:
    assert parse_untrusted(codecs.BOM_UTF8 + b"<a/>", MESSAGE_LIMITS).getroot().tag == "a"
    data = '<?xml version="1.0" encoding="UTF-16"?><a>x</a>'.encode("utf-16")
    assert parse_untrusted(data, MESSAGE_LIMITS).getroot().tag == "a"


@pytest.mark.parametrize("page", [
    b"<!DOCTYPE html><html><body>Sign in</body></html>",
    b"\n  <html lang='en'><head><title>Okta</title></head></html>",
    b"<!-- login --><HTML><BODY>x</BODY></HTML>",
])
def test_html_page_named_as_such(page: bytes) -> None:
    error = refused(page)
    assert error.kind == "html"
    assert "HTML" in error.message


def test_text_of_joins_around_comments() -> None:
    # .text would stop at the comment and give "admin@example.com"; the signed c14n joins it.
    root = parse_untrusted(b"<n>admin@example.com<!---->.evil.com</n>", MESSAGE_LIMITS).getroot()
    assert root.text == "admin@example.com"
    assert text_of(root) == "admin@example.com.evil.com"
    assert exc_c14n(root) == b"<n>admin@example.com.evil.com</n>"


def test_visible_shows_bidi_and_controls() -> None:
    assert visible("admin\u202eexe.pdf") == "admin\\u202eexe.pdf"
    assert visible("a\x00b") == "a\\u0000b"
    assert visible("plain ü") == "plain ü"


def test_metadata_limits_scale_elements_with_size() -> None:
    assert metadata_limits(64 * 1024 * 1024).max_elements > metadata_limits().max_elements
    assert metadata_limits(1024).max_elements == 20_000


@pytest.mark.parametrize("data", [
    b'<!-- <x --><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///dev/zero"> %p;]><r/>',
    b'<?pi <x?><!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>',
    b"<!--" + b" " * 70_000 + b'--><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>',
    b'<r><![CDATA[ <!ENTITY a "b"> ]]></r>',
])
def test_declarations_cannot_hide_behind_comments_or_distance(data: bytes) -> None:
    # A prolog scan stopped at the first "<x", even inside a comment: libxml2 then read the DTD.
    assert refused(data, metadata_limits()).kind == "doctype"


def test_parser_itself_opens_no_external_resource(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    # Even if the text scan missed a DOCTYPE, the parser's resolver refuses every file.
    import metadata.xml as xml

    monkeypatch.setattr(xml, "declaration_line", lambda data, encoding: None)
    for data in (b'<!DOCTYPE r SYSTEM "file:///etc/hostname"><r/>',
                 b'<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/hostname"> %p;]><r/>'):
        error = refused(data)
        assert error.kind == "doctype"
        assert "external resource" in error.message


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"\n' + b" " * 300 + b'encoding="ISO-8859-1"?><r>\xe9</r>',
    '<?xml version="1.0" encoding="UTF-32"?><r>x</r>'.encode("utf-32"),
])
def test_encoding_cannot_be_hidden(data: bytes) -> None:
    assert refused(data).kind == "encoding"


def test_visible_one_line_escapes_line_breaks() -> None:
    assert visible("https://evil\rhttps://good") == "https://evil\\u000dhttps://good"
    assert visible("a\nb") == "a\nb"
    assert visible("a\nb\tc", one_line=True) == "a\\u000ab\\u0009c"


def test_a_namespace_uri_over_the_limit_is_refused_with_its_line() -> None:
    limit = MESSAGE_LIMITS.max_namespace_length
    accepted = f'<r xmlns:p="urn:{"n" * (limit - 4)}"><p:e/></r>'.encode()
    assert parse_untrusted(accepted, MESSAGE_LIMITS).getroot().tag == "r"
    error = refused(f'<r>\n<x xmlns="urn:{"n" * (limit - 3)}"/></r>'.encode())
    assert error.kind == "too-large"
    assert error.line == 2
    assert f"longer than {limit:,} characters" in error.message


def test_a_forked_child_parses_with_threads_of_its_own() -> None:
    # Parsing runs in a helper thread per calling thread. A child forked after a parse (gunicorn
    # with --preload) inherits the record of that helper but not the thread: it must start its own.
    import os
    import time

    parse_untrusted(b"<before-fork/>")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's own exit status is the assertion
        try:
            os._exit(0 if parse_untrusted(b"<in-child/>").getroot().tag == "in-child" else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 10
    while (status := os.waitpid(child, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    if status == (0, 0):
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the child's parse did not return within 10 s")
    assert os.waitstatus_to_exitcode(status[1]) == 0


def test_parsing_still_works_while_the_interpreter_shuts_down() -> None:
    # Parsing runs in a helper thread, and no thread can start once shutdown has begun: an atexit
    # handler (or a late thread) that parses must still get its tree, not a RuntimeError.
    import subprocess
    import sys

    program = ("import atexit\nfrom metadata.xml import parse_untrusted\n"
               "atexit.register(lambda: print(parse_untrusted(b'<late/>').getroot().tag))\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "late", "")


def test_work_on_the_parsing_thread_parses_there_without_another_hand_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # in_parsing_thread runs a piece of work (verify_response: two re-parses with xmlsec between)
    # on the caller's parsing thread; the parses inside it happen right there and are counted there.
    import threading

    from metadata import xml

    caller = threading.current_thread()
    parse_untrusted(b"<warm/>")
    helper = xml._parsing_thread()
    submitted: list[object] = []
    original = helper.executor.submit

    def counting_submit(*args: Any, **kwargs: Any) -> Any:
        submitted.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(helper.executor, "submit", counting_submit)
    before = helper.parsed

    def work(data: bytes) -> tuple[str, str, threading.Thread]:
        first = parse_untrusted(data).getroot().tag
        second = xml.in_parsing_thread(lambda: parse_untrusted(b"<nested/>").getroot().tag)
        return first, second, threading.current_thread()

    first, second, ran_on = xml.in_parsing_thread(work, b"<inside/>")
    monkeypatch.undo()
    assert (first, second) == ("inside", "nested")
    assert ran_on is not caller and ran_on.name.startswith("parse_untrusted")
    assert len(submitted) == 1
    assert helper.parsed - before == len(b"<inside/>") + len(b"<nested/>")


def test_a_refusal_inside_work_on_the_parsing_thread_reaches_the_caller() -> None:
    from metadata import xml

    def work() -> None:
        parse_untrusted(b"<!DOCTYPE x><x/>", MESSAGE_LIMITS)

    with pytest.raises(UnsafeXML) as refused:
        xml.in_parsing_thread(work)
    assert refused.value.kind == "doctype"
    assert parse_untrusted(b"<after/>").getroot().tag == "after"  # the helper still works


def test_the_parsing_thread_is_replaced_after_work_that_parsed_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    from metadata import xml

    monkeypatch.setattr(xml, "_RECYCLE_BYTES", 100)
    parse_untrusted(b"<warm/>")
    helper = xml._parsing_thread()
    first = helper.executor
    xml.in_parsing_thread(lambda: [parse_untrusted(b"<a>" + b"x" * 200 + b"</a>") for _ in range(2)])
    assert helper.executor is first  # never replaced from inside its own work
    parse_untrusted(b"<next/>")
    assert helper.executor is not first and helper.parsed == len(b"<next/>")


def test_every_refusal_kind_the_code_raises_is_documented() -> None:
    # The fuzz targets accept exactly these as clean refusals; a new kind must be added there too.
    import ast
    from pathlib import Path

    from metadata.errors import UNSAFE_XML_KINDS

    root = Path(__file__).resolve().parent.parent
    raised = {node.args[0].value for path in (root / "metadata").rglob("*.py")
              for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
              if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "UnsafeXML" and node.args
              and isinstance(node.args[0], ast.Constant)}
    assert raised <= UNSAFE_XML_KINDS, raised - UNSAFE_XML_KINDS
