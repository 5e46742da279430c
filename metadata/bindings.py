"""SAML 2.0 HTTP bindings (saml-bindings-2.0-os): HTTP-Redirect (§3.4) and HTTP-POST (§3.5).

Decoding is strict and bounded. The query string or form body is split here, from its raw
text, so that what is decoded is exactly what is verified: a parameter name that appears
twice, or whose name is percent-encoded (``SAML%52equest``, which a framework would decode to
a second ``SAMLRequest``), is refused (SECURITY.md §5). Base64 is decoded strictly; missing
``=`` padding is accepted, because it is unambiguous and some encoders drop it, but any other
character outside the alphabet is an error (line breaks only in HTTP-POST, where RFC 2045
encoders insert them). DEFLATE output is capped while inflating, so a compressed bomb costs at
most the cap. The XML then goes through the one parser, :func:`metadata.xml.parse_untrusted`;
its :class:`~metadata.errors.UnsafeXML` propagates unchanged. The query-string signature of
HTTP-Redirect is made and checked in :mod:`metadata.redirect_signature`, re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote_to_bytes

from lxml import etree

from metadata.errors import MetadataError
from metadata.redirect_signature import sign_octets, verify_redirect_signature
from metadata.saml import DEFLATE_ENCODING
from metadata.signing import RSA_SHA256
from metadata.xml import MESSAGE_LIMITS, REQUEST_LIMITS, KiB, XMLLimits, parse_untrusted, visible

__all__ = [
    "MAX_POST_BODY", "MAX_RELAY_STATE", "BindingError", "Param", "PostMessage", "RedirectMessage", "decode_base64",
    "decode_post", "decode_redirect", "encode_post", "encode_redirect", "inflate", "limits_for", "post_form_fields",
    "sign_octets", "verify_redirect_signature",
]

Param = Literal["SAMLRequest", "SAMLResponse"]

MAX_POST_BODY = 256 * KiB
"""Largest HTTP-POST body the web layer should read (SECURITY.md §1); enforced here for raw bodies."""
MAX_RELAY_STATE = 80
"""Bindings §3.4.3 and §3.5.3: RelayState MUST NOT exceed 80 bytes."""

class BindingError(MetadataError, ValueError):
    """A SAML message could not be taken out of its HTTP binding.

    `kind` is one of: ``missing``, ``base64``, ``deflate``, ``too-large``,
    ``duplicate-parameter``, ``encoded-parameter-name``, ``relay-state``, ``malformed-query``.
    `parameter` names the offending parameter when there is one; `expected` and `actual`
    describe the value, for a finding.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        parameter: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.parameter = parameter
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class RedirectMessage:
    """A message received with HTTP-Redirect; its signature (if any) is not yet verified."""

    param: Param
    xml: bytes
    tree: etree._ElementTree
    relay_state: str | None
    sig_alg: str | None
    signature: bytes | None
    signed_octets: bytes
    """``SAMLRequest=…&RelayState=…&SigAlg=…`` exactly as received (§3.4.4.1)."""
    binding: Literal["HTTP-Redirect"] = "HTTP-Redirect"


@dataclass(frozen=True)
class PostMessage:
    """A message received with HTTP-POST; an XML signature inside it is not yet verified."""

    param: Param
    xml: bytes
    tree: etree._ElementTree
    relay_state: str | None
    binding: Literal["HTTP-POST"] = "HTTP-POST"


@dataclass(frozen=True)
class _Field:
    name: str
    raw: str
    value: str


def limits_for(param: Param) -> XMLLimits:
    """Requests are capped at 64 KiB, responses at 192 KiB (SECURITY.md §1)."""
    return REQUEST_LIMITS if param == "SAMLRequest" else MESSAGE_LIMITS


_B64_EXPECTED = "standard base64: A-Z a-z 0-9 + / and = padding"
_DEFLATE_EXPECTED = "one complete raw DEFLATE stream (RFC 1951)"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _ascii(raw: str | bytes, what: str) -> str:
    if not raw.isascii():
        raise BindingError("malformed-query", f"the {what} holds characters outside ASCII; they must be "
                           "percent-encoded", expected="ASCII only", actual="non-ASCII characters")
    return raw.decode("ascii") if isinstance(raw, bytes) else raw


def _unescape(value: str, name: str) -> str:
    bad = _BAD_ESCAPE.search(value)
    if bad:
        raise BindingError("malformed-query", f"the {name} parameter has a broken percent-escape at "
                           f"character {bad.start()}", parameter=name, expected="%XX with two hex digits",
                           actual=visible(value[bad.start():bad.start() + 3]))
    try:
        return unquote_to_bytes(value.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BindingError("malformed-query", f"the {name} parameter does not decode to UTF-8 text",
                           parameter=name, expected="UTF-8 text", actual="invalid UTF-8") from None


def _fields(raw: str, what: str) -> dict[str, _Field]:
    fields: dict[str, _Field] = {}
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if not name:
            raise BindingError("malformed-query", f"the {what} has a parameter without a name: "
                               f"'{visible(part[:40])}'", expected="name=value", actual=visible(part[:40]))
        if "%" in name or "+" in name:
            # A decoder elsewhere would turn SAML%52equest into a second SAMLRequest.
            raise BindingError("encoded-parameter-name", f"the parameter name '{visible(name[:40])}' is "
                               "percent-encoded; parameter names must appear literally", parameter=name,
                               expected="a literal parameter name", actual=visible(name[:40]))
        if name in fields:
            raise BindingError("duplicate-parameter", f"the {what} has the parameter {name} more than once",
                               parameter=name, expected=f"{name} once", actual=f"{name} at least twice")
        fields[name] = _Field(name, value, _unescape(value, name))
    return fields


def _message_field(fields: Mapping[str, str], param: Param, what: str) -> str:
    other = "SAMLResponse" if param == "SAMLRequest" else "SAMLRequest"
    if other in fields:
        raise BindingError("malformed-query", f"the {what} carries {other} where {param} was expected",
                           parameter=other, expected=param, actual=other)
    value = fields.get(param)
    if not value:
        state = "is empty" if value is not None else "is missing"
        raise BindingError("missing", f"the {param} parameter {state} in the {what}", parameter=param,
                           expected=f"a {param} parameter", actual=state.removeprefix("is "))
    return value


def _relay_state(value: str | None) -> str | None:
    if value is not None and len(value.encode("utf-8")) > MAX_RELAY_STATE:
        raise BindingError("relay-state", f"RelayState is {len(value.encode('utf-8'))} bytes; the SAML "
                           f"bindings allow at most {MAX_RELAY_STATE} (§3.4.3, §3.5.3)", parameter="RelayState",
                           expected=f"at most {MAX_RELAY_STATE} bytes", actual=f"{len(value.encode('utf-8'))} bytes")
    return value


def decode_base64(text: str, name: str, *, line_breaks: bool) -> bytes:
    """The standard-alphabet base64 value of parameter `name` (missing padding allowed); with
    `line_breaks`, whitespace is dropped first (HTTP-POST values are often wrapped)."""
    if line_breaks:
        text = text.replace("\r", "").replace("\n", "").replace("\t", "").replace(" ", "")
    try:  # strict decoding accepts only the alphabet and final padding: then nothing below could object
        return binascii.a2b_base64(text + "=" * (-len(text) % 4), strict_mode=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        pass
    junk = re.search(r"[^A-Za-z0-9+/=]", text)
    if junk:
        char = junk.group()
        hint = ""
        if char == " ":
            hint = " (a '+' that was not percent-encoded as %2B turns into a space)"
        elif char in "-_":
            hint = " (URL-safe base64 is not allowed; use the standard alphabet with + and /)"
        raise BindingError("base64", f"the {name} parameter is not valid base64: character "
                           f"'{visible(char)}' at position {junk.start()}{hint}", parameter=name,
                           expected=_B64_EXPECTED, actual=f"'{visible(char)}' at position {junk.start()}")
    try:
        return binascii.a2b_base64(text + "=" * (-len(text) % 4), strict_mode=True)
    except binascii.Error as exc:
        raise BindingError("base64", f"the {name} parameter is not valid base64: {exc}", parameter=name,
                           expected=_B64_EXPECTED, actual=str(exc)) from None


def _check_encoded_size(text: str, cap: int, name: str) -> None:
    # Refuse before decoding: base64 takes 4 characters per 3 bytes, and a raw DEFLATE stream is at
    # most a few bytes per 64 KiB block larger than its output (1 KiB of slack covers it).
    if len(text) > 4 * ((cap + KiB) // 3 + 2):
        raise BindingError("too-large", f"the {name} parameter is {len(text):,} characters of base64; "
                           f"the limit is {cap:,} bytes once decoded", parameter=name,
                           expected=f"at most {cap:,} bytes", actual=f"{len(text):,} base64 characters")


def inflate(data: bytes, cap: int, name: str) -> bytes:
    """Raw DEFLATE (RFC 1951) of parameter `name`, inflated to at most `cap` bytes: never more is
    produced, and a truncated stream or bytes after its end are refused."""
    inflater = zlib.decompressobj(wbits=-15)
    try:
        xml = inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        hint = ""
        if len(data) > 1 and data[0] == 0x78 and int.from_bytes(data[:2], "big") % 31 == 0:
            hint = "; it starts with a zlib header, but the binding wants raw DEFLATE without one"
        raise BindingError("deflate", f"the {name} parameter is not a raw DEFLATE stream (RFC 1951): "
                           f"{exc}{hint}", parameter=name, expected=_DEFLATE_EXPECTED, actual=str(exc)) from None
    if len(xml) > cap:
        raise BindingError("too-large", f"the {name} message inflates to more than {cap:,} bytes; "
                           "inflating stopped at the limit", parameter=name,
                           expected=f"at most {cap:,} bytes", actual=f"more than {cap:,} bytes")
    if not inflater.eof:
        raise BindingError("deflate", f"the DEFLATE stream of the {name} parameter is truncated", parameter=name,
                           expected=_DEFLATE_EXPECTED, actual="a truncated stream")
    if inflater.unused_data:
        raise BindingError("deflate", f"{len(inflater.unused_data)} bytes follow the end of the DEFLATE "
                           f"stream of the {name} parameter", parameter=name,
                           expected=_DEFLATE_EXPECTED, actual=f"{len(inflater.unused_data)} trailing bytes")
    return xml


def decode_redirect(raw_query: str | bytes, param: Param) -> RedirectMessage:
    """Decode an HTTP-Redirect message from the raw query string (with or without its ``?``).

    Raises :class:`BindingError`, or :class:`~metadata.errors.UnsafeXML` for the XML itself.
    """
    if len(raw_query) > MAX_POST_BODY:
        raise BindingError("too-large", f"the query string is {len(raw_query):,} characters; the limit is "
                           f"{MAX_POST_BODY:,}", expected=f"at most {MAX_POST_BODY:,} characters",
                           actual=f"{len(raw_query):,} characters")
    query = _ascii(raw_query, "query string").removeprefix("?")
    fields = _fields(query, "query string")
    value = _message_field({n: f.value for n, f in fields.items()}, param, "query string")
    encoding = fields.get("SAMLEncoding")
    if encoding is not None and encoding.value != DEFLATE_ENCODING:
        raise BindingError("deflate", f"SAMLEncoding '{visible(encoding.value)}' is not supported; only "
                           f"{DEFLATE_ENCODING} (§3.4.4.1)", parameter="SAMLEncoding",
                           expected=DEFLATE_ENCODING, actual=visible(encoding.value))
    relay_field = fields.get("RelayState")
    relay_state = _relay_state(relay_field.value if relay_field else None)
    sig_alg = fields.get("SigAlg")
    signature = fields.get("Signature")
    limits = limits_for(param)
    _check_encoded_size(value, limits.max_bytes, param)
    xml = inflate(decode_base64(value, param, line_breaks=False), limits.max_bytes, param)
    signature_bytes = decode_base64(signature.value, "Signature", line_breaks=False) if signature else None
    octets = "&".join(f"{f.name}={f.raw}" for f in (fields[param], relay_field, sig_alg) if f is not None)
    return RedirectMessage(
        param=param,
        xml=xml,
        tree=parse_untrusted(xml, limits),
        relay_state=relay_state,
        sig_alg=sig_alg.value if sig_alg else None,
        signature=signature_bytes,
        signed_octets=octets.encode("ascii"),
    )


def decode_post(form: Mapping[str, str] | str | bytes, param: Param) -> PostMessage:
    """Decode an HTTP-POST message from a raw ``application/x-www-form-urlencoded`` body or parsed fields.

    Give the raw body where possible: only there can duplicate and encoded names be seen.
    """
    if isinstance(form, (str, bytes)):
        if len(form) > MAX_POST_BODY:
            raise BindingError("too-large", f"the form body is {len(form):,} bytes; the limit is "
                               f"{MAX_POST_BODY:,}", expected=f"at most {MAX_POST_BODY:,} bytes",
                               actual=f"{len(form):,} bytes")
        fields = {n: f.value for n, f in _fields(_ascii(form, "form body"), "form body").items()}
    else:
        fields = dict(form)
    value = _message_field(fields, param, "form")
    limits = limits_for(param)
    if len(value) > MAX_POST_BODY:
        raise BindingError("too-large", f"the {param} value is {len(value):,} characters; the POST body limit "
                           f"is {MAX_POST_BODY:,}", parameter=param, expected=f"at most {MAX_POST_BODY:,} characters",
                           actual=f"{len(value):,} characters")
    xml = decode_base64(value, param, line_breaks=True)
    if len(xml) > limits.max_bytes:
        raise BindingError("too-large", f"the {param} message is {len(xml):,} bytes; the limit is "
                           f"{limits.max_bytes:,}", parameter=param,
                           expected=f"at most {limits.max_bytes:,} bytes", actual=f"{len(xml):,} bytes")
    relay_state = _relay_state(fields.get("RelayState"))
    return PostMessage(param=param, xml=xml, tree=parse_untrusted(xml, limits), relay_state=relay_state)


def _quote(value: str) -> str:
    return quote(value, safe="")


def encode_redirect(
    xml: bytes,
    *,
    param: Param,
    destination: str,
    relay_state: str | None = None,
    key_pem: bytes | None = None,
    sig_alg: str = RSA_SHA256,
) -> str:
    """The URL that carries `xml` to `destination` with HTTP-Redirect, signed when `key_pem` is given."""
    _relay_state(relay_state)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressed = deflater.compress(xml) + deflater.flush()
    parts = [f"{param}={_quote(base64.b64encode(compressed).decode('ascii'))}"]
    if relay_state is not None:
        parts.append(f"RelayState={_quote(relay_state)}")
    if key_pem is not None:
        parts.append(f"SigAlg={_quote(sig_alg)}")
        signature = sign_octets("&".join(parts).encode("ascii"), key_pem, sig_alg)
        parts.append(f"Signature={_quote(base64.b64encode(signature).decode('ascii'))}")
    return destination + ("&" if "?" in destination else "?") + "&".join(parts)


def encode_post(xml: bytes) -> str:
    """The SAMLRequest/SAMLResponse form value for `xml` (§3.5.4: base64, no DEFLATE)."""
    return base64.b64encode(xml).decode("ascii")


def post_form_fields(xml: bytes, *, param: Param, relay_state: str | None = None) -> dict[str, str]:
    """The hidden fields of an auto-POST form, in order."""
    _relay_state(relay_state)
    fields: dict[str, str] = {param: encode_post(xml)}
    if relay_state is not None:
        fields["RelayState"] = relay_state
    return fields
