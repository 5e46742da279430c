"""Every accepted input form yields the response's XML; anything else is a finding code."""

from __future__ import annotations

import base64
import json
import zlib
from urllib.parse import quote

import pytest

from validator.response_input import InputRefusal, ResponseInput, read_response_input

XML = b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0"/>'
B64 = base64.b64encode(XML).decode()


def read(data: bytes) -> tuple[ResponseInput, ...]:
    found = read_response_input(data)
    assert not isinstance(found, InputRefusal), found
    return found


def test_raw_xml() -> None:
    [found] = read(b"\n  " + XML)
    assert found.form == "xml"


def test_base64_wrapped_and_unpadded() -> None:
    wrapped = "\n".join(B64[i:i + 20] for i in range(0, len(B64), 20)).rstrip("=")
    [found] = read(wrapped.encode())
    assert (found.xml, found.form) == (XML, "base64")


def test_deflated_base64() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    value = base64.b64encode(compressor.compress(XML) + compressor.flush())
    assert read(value)[0].xml == XML


def test_form_body_with_relay_state() -> None:
    [found] = read(f"SAMLResponse={quote(B64, safe='')}&RelayState=%2Finvoices%2F42".encode())
    assert (found.xml, found.relay_state, found.form) == (XML, "/invoices/42", "form")


@pytest.mark.parametrize("post", [{"SAMLResponse": [B64], "RelayState": ["r"]}, [["SAMLResponse", B64]]])
def test_saml_tracer_export_current_and_legacy(post: object) -> None:
    export = {"requests": [
        {"method": "GET", "url": "https://idp.example.com/sso?SAMLRequest=x", "post": None},
        {"method": "POST", "url": "https://sso.portal.example/saml/acs", "post": post},
    ], "timestamp": "2026-11-27T00:00:00Z"}
    [found] = read(json.dumps(export).encode())
    assert found.xml == XML and found.form == "saml-tracer"
    assert found.where == "POST https://sso.portal.example/saml/acs"


@pytest.mark.parametrize(("data", "code"), [
    (b"", "XML001"),
    (b"   ", "XML001"),
    (B64[:-7].encode() + b"!", "XML010"),  # truncated and damaged
    (b"PHNh=bWxwOlJlc3BvbnNl", "XML010"),  # padding in the middle: two values pasted together
    (base64.b64encode(b"plain text, not XML"), "XML010"),
    (b'{"requests": [{"method": "GET", "url": "https://x"}]}', "XML009"),
    (b'{"not": "a trace"}', "XML009"),
    (b"{not json", "XML009"),
    (b"SAMLResponse=a&SAMLResponse=b", "XML009"),
    (b"x" * (1024 * 1024 + 1), "XML004"),
])
def test_unreadable_inputs_name_their_code(data: bytes, code: str) -> None:
    refused = read_response_input(data)
    assert isinstance(refused, InputRefusal)
    assert refused.rule.code == code
    assert refused.message
    finding = refused.finding("pasted")
    assert (finding.code, finding.message, finding.where) == (code, refused.message, "pasted")


def _deflated(xml: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(xml) + compressor.flush()


@pytest.mark.parametrize(("raw", "said"), [
    (_deflated(XML) + b"junk", "4 bytes follow the end of the DEFLATE stream"),
    (_deflated(XML)[:-4], "truncated"),
    (zlib.compress(XML), "zlib header"),
])
def test_a_deflated_value_is_refused_unless_it_is_one_whole_raw_stream(raw: bytes, said: str) -> None:
    # Accepting a cut-short stream would judge garbled XML; trailing bytes are not part of the message.
    refused = read_response_input(base64.b64encode(raw))
    assert isinstance(refused, InputRefusal) and refused.rule.code == "XML010"
    assert said in refused.message, refused.message
    [found] = read_response_input(base64.b64encode(_deflated(XML)))
    assert found.xml == XML


def test_a_character_outside_base64_is_shown_as_pasted() -> None:
    refused = read_response_input("PHNhbWxwOlJlc3BvbnNl\u00e9".encode())
    assert isinstance(refused, InputRefusal) and refused.rule.code == "XML010"
    assert "'é'" in refused.message, refused.message

