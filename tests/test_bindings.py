"""metadata.bindings: HTTP-Redirect and HTTP-POST decoding, encoding and Redirect signatures."""

from __future__ import annotations

import base64
import zlib
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from metadata import bindings
from metadata.bindings import (
    MAX_POST_BODY,
    BindingError,
    Param,
    decode_post,
    decode_redirect,
    encode_post,
    encode_redirect,
    post_form_fields,
    sign_octets,
    verify_redirect_signature,
)
from metadata.errors import UnsafeXML
from metadata.signing import ECDSA_SHA256, RSA_SHA1, RSA_SHA256, RSA_SHA512, SignatureError
from metadata.xml import REQUEST_LIMITS
from tests.factory import KeyPair, make_keypair

SSO = "https://idp.example.com/sso"
XML = (
    b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" '
    b'IssueInstant="2026-06-01T12:00:00Z"><saml:Issuer>https://sp.example.com</saml:Issuer></samlp:AuthnRequest>'
)


@pytest.fixture(scope="module")
def rsa_key() -> KeyPair:
    return make_keypair("sp.example.com")


@pytest.fixture(scope="module")
def ec_key() -> KeyPair:
    return make_keypair("ec.sp.example.com", curve=ec.SECP256R1())


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def b64q(data: bytes) -> str:
    return quote(base64.b64encode(data).decode(), safe="")


def query_of(url: str) -> str:
    return url.split("?", 1)[1]


def binding_error(kind: str, call: Any, *args: Any) -> BindingError:
    with pytest.raises(BindingError) as caught:
        call(*args)
    assert caught.value.kind == kind, caught.value.message
    return caught.value


# --- HTTP-Redirect round trips and signatures ---------------------------------------------

def test_unsigned_round_trip() -> None:
    url = encode_redirect(XML, param="SAMLRequest", destination=SSO, relay_state="a b/é")
    assert url.startswith(SSO + "?SAMLRequest=")
    message = decode_redirect(query_of(url), "SAMLRequest")
    assert message.xml == XML
    assert message.tree.getroot().get("ID") == "_a1"
    assert message.relay_state == "a b/é"
    assert message.binding == "HTTP-Redirect"
    assert message.signature is None and message.sig_alg is None
    with pytest.raises(SignatureError) as caught:
        verify_redirect_signature(message, [])
    assert caught.value.kind == "missing"


def test_destination_with_a_query_gets_an_ampersand() -> None:
    url = encode_redirect(XML, param="SAMLRequest", destination=SSO + "?tenant=1")
    assert url.startswith(SSO + "?tenant=1&SAMLRequest=")
    assert decode_redirect(query_of(url), "SAMLRequest").xml == XML


def test_leading_question_mark_and_bytes_are_accepted() -> None:
    query = query_of(encode_redirect(XML, param="SAMLRequest", destination=SSO))
    assert decode_redirect("?" + query, "SAMLRequest").xml == XML
    assert decode_redirect(query.encode("ascii"), "SAMLRequest").xml == XML


@pytest.mark.parametrize("sig_alg", [RSA_SHA256, RSA_SHA512])
def test_signed_rsa_round_trip_verifies(rsa_key: KeyPair, sig_alg: str) -> None:
    url = encode_redirect(XML, param="SAMLRequest", destination=SSO, relay_state="r1",
                          key_pem=rsa_key.key_pem, sig_alg=sig_alg)
    message = decode_redirect(query_of(url), "SAMLRequest")
    assert message.sig_alg == sig_alg
    assert message.signed_octets.startswith(b"SAMLRequest=")
    assert b"&RelayState=r1&SigAlg=" in message.signed_octets
    assert b"Signature=" not in message.signed_octets
    assert verify_redirect_signature(message, [rsa_key.cert_der]) == rsa_key.cert_der


def test_signed_ecdsa_round_trip_verifies(ec_key: KeyPair) -> None:
    url = encode_redirect(XML, param="SAMLRequest", destination=SSO, key_pem=ec_key.key_pem, sig_alg=ECDSA_SHA256)
    message = decode_redirect(query_of(url), "SAMLRequest")
    assert message.signature is not None and len(message.signature) == 64  # r‖s, not DER
    assert verify_redirect_signature(message, [ec_key.cert_der]) == ec_key.cert_der


def test_rollover_returns_the_certificate_that_verified(rsa_key: KeyPair, ec_key: KeyPair) -> None:
    other = make_keypair("old.sp.example.com")
    url = encode_redirect(XML, param="SAMLRequest", destination=SSO, key_pem=rsa_key.key_pem)
    message = decode_redirect(query_of(url), "SAMLRequest")
    assert verify_redirect_signature(message, [ec_key.cert_der, other.cert_der, rsa_key.cert_der]) == rsa_key.cert_der


def signed_query(key: KeyPair, **kwargs: Any) -> str:
    return query_of(encode_redirect(XML, param="SAMLRequest", destination=SSO, key_pem=key.key_pem, **kwargs))


def verify_kind(query: str, certs: list[bytes], **kwargs: Any) -> str:
    message = decode_redirect(query, "SAMLRequest")
    with pytest.raises(SignatureError) as caught:
        verify_redirect_signature(message, certs, **kwargs)
    return caught.value.kind


def test_one_changed_byte_in_the_query_is_invalid(rsa_key: KeyPair) -> None:
    query = signed_query(rsa_key, relay_state="abc")
    assert verify_kind(query.replace("RelayState=abc", "RelayState=abd"), [rsa_key.cert_der]) == "invalid"


def test_signature_covers_the_octets_as_sent_not_the_decoded_values(rsa_key: KeyPair) -> None:
    query = signed_query(rsa_key)
    assert "%2F" in query.split("&")[0] or "%2B" in query.split("&")[0]
    # Lower-case hex decodes to the same value but changes the signed octets.
    changed = query.replace("%2F", "%2f", 1) if "%2F" in query.split("&")[0] else query.replace("%2B", "%2b", 1)
    assert decode_redirect(changed, "SAMLRequest").xml == XML
    assert verify_kind(changed, [rsa_key.cert_der]) == "invalid"


def test_parameter_order_in_the_url_does_not_matter(rsa_key: KeyPair) -> None:
    # §3.4.4.1 fixes the order of the signed string, not of the URL's parameters.
    parts = signed_query(rsa_key, relay_state="r").split("&")
    reordered = "&".join(reversed(parts))
    message = decode_redirect(reordered, "SAMLRequest")
    assert message.signed_octets.decode().split("&") == parts[:3]
    assert verify_redirect_signature(message, [rsa_key.cert_der]) == rsa_key.cert_der


def test_wrong_key_and_wrong_key_type_are_invalid(rsa_key: KeyPair, ec_key: KeyPair) -> None:
    query = signed_query(rsa_key)
    assert verify_kind(query, [make_keypair("other").cert_der]) == "invalid"
    assert verify_kind(query, [ec_key.cert_der]) == "invalid"
    assert verify_kind(query, [b"not a certificate"]) == "invalid"


def test_ecdsa_signature_of_the_wrong_length_is_invalid(ec_key: KeyPair) -> None:
    query = signed_query(ec_key, sig_alg=ECDSA_SHA256)
    head, _, _ = query.rpartition("&Signature=")
    assert verify_kind(f"{head}&Signature={b64q(b'x' * 63)}", [ec_key.cert_der]) == "invalid"


def test_sha1_is_weak_unless_allowed(rsa_key: KeyPair) -> None:
    query = signed_query(rsa_key, sig_alg=RSA_SHA1)
    assert verify_kind(query, [rsa_key.cert_der]) == "weak"
    message = decode_redirect(query, "SAMLRequest")
    assert verify_redirect_signature(message, [rsa_key.cert_der], allow_sha1=True) == rsa_key.cert_der


def test_unknown_or_absent_sig_alg_is_a_profile_error(rsa_key: KeyPair) -> None:
    query = signed_query(rsa_key)
    unknown = query.replace(quote(RSA_SHA256, safe=""), quote("http://example.com/rot13", safe=""))
    assert verify_kind(unknown, [rsa_key.cert_der]) == "profile"
    no_alg = "&".join(p for p in query.split("&") if not p.startswith("SigAlg="))
    assert verify_kind(no_alg, [rsa_key.cert_der]) == "profile"


def test_sig_alg_without_signature_is_missing_and_no_cert_is_no_trusted_key(rsa_key: KeyPair) -> None:
    query = signed_query(rsa_key)
    no_signature = "&".join(p for p in query.split("&") if not p.startswith("Signature="))
    assert verify_kind(no_signature, [rsa_key.cert_der]) == "missing"
    assert verify_kind(query, []) == "no-trusted-key"


def test_signing_with_a_mismatched_algorithm_is_refused(rsa_key: KeyPair, ec_key: KeyPair) -> None:
    with pytest.raises(SignatureError, match="cannot sign"):
        sign_octets(b"x", rsa_key.key_pem, ECDSA_SHA256)
    with pytest.raises(SignatureError, match="cannot sign"):
        sign_octets(b"x", ec_key.key_pem, RSA_SHA256)
    with pytest.raises(SignatureError, match="unknown SigAlg"):
        sign_octets(b"x", rsa_key.key_pem, "urn:nope")


# --- HTTP-Redirect refusals ----------------------------------------------------------------

def test_duplicate_saml_request_is_refused() -> None:
    query = query_of(encode_redirect(XML, param="SAMLRequest", destination=SSO))
    err = binding_error("duplicate-parameter", decode_redirect, f"{query}&{query}", "SAMLRequest")
    assert err.parameter == "SAMLRequest"
    binding_error("duplicate-parameter", decode_redirect, f"{query}&RelayState=a&RelayState=b", "SAMLRequest")


def test_percent_encoded_parameter_name_is_refused() -> None:
    query = query_of(encode_redirect(XML, param="SAMLRequest", destination=SSO, relay_state="r"))
    err = binding_error("encoded-parameter-name", decode_redirect, query.replace("SAMLRequest", "SAML%52equest"),
                        "SAMLRequest")
    assert err.actual == "SAML%52equest"
    binding_error("encoded-parameter-name", decode_redirect, query + "&Relay+State=x", "SAMLRequest")


def test_missing_or_empty_saml_request() -> None:
    binding_error("missing", decode_redirect, "RelayState=abc", "SAMLRequest")
    binding_error("missing", decode_redirect, "SAMLRequest=&RelayState=abc", "SAMLRequest")
    binding_error("missing", decode_redirect, "", "SAMLRequest")


def test_base64_with_junk_is_refused() -> None:
    good = base64.b64encode(deflate(XML)).decode()
    err = binding_error("base64", decode_redirect, "SAMLRequest=" + quote(good[:8] + "!" + good[8:], safe=""),
                        "SAMLRequest")
    assert "position 8" in err.message
    # A '+' sent without percent-encoding arrives as a space.
    err = binding_error("base64", decode_redirect, "SAMLRequest=abc+def", "SAMLRequest")
    assert "%2B" in err.message
    err = binding_error("base64", decode_redirect, "SAMLRequest=abc-def_", "SAMLRequest")
    assert "URL-safe" in err.message
    # Data after the padding (strict mode).
    binding_error("base64", decode_redirect, "SAMLRequest=" + quote("QQ==QQ==", safe=""), "SAMLRequest")
    binding_error("base64", decode_redirect, "SAMLRequest=" + quote(good, safe="") + "&Signature=%21", "SAMLRequest")


def test_missing_base64_padding_is_accepted() -> None:
    data = deflate(XML)
    if len(data) % 3 == 0:
        data = deflate(XML + b" ")
    unpadded = base64.b64encode(data).decode().rstrip("=")
    assert decode_redirect("SAMLRequest=" + quote(unpadded, safe=""), "SAMLRequest").xml.startswith(b"<samlp:")


def test_not_deflate_is_refused() -> None:
    binding_error("deflate", decode_redirect, "SAMLRequest=" + b64q(b"\xff" * 40), "SAMLRequest")
    err = binding_error("deflate", decode_redirect, "SAMLRequest=" + b64q(zlib.compress(XML)), "SAMLRequest")
    assert "zlib header" in err.message


def test_truncated_deflate_stream_is_refused() -> None:
    err = binding_error("deflate", decode_redirect, "SAMLRequest=" + b64q(deflate(XML)[:-6]), "SAMLRequest")
    assert "truncated" in err.message


def test_trailing_garbage_after_the_deflate_stream_is_refused() -> None:
    err = binding_error("deflate", decode_redirect, "SAMLRequest=" + b64q(deflate(XML) + b"GARBAGE"), "SAMLRequest")
    assert "7 bytes follow" in err.message


def test_unsupported_saml_encoding_is_refused() -> None:
    query = "SAMLRequest=" + b64q(deflate(XML))
    assert decode_redirect(query + "&SAMLEncoding=" + quote(bindings.DEFLATE_ENCODING, safe=""), "SAMLRequest")
    binding_error("deflate", decode_redirect, query + "&SAMLEncoding=urn%3Agzip", "SAMLRequest")


def test_deflate_bomb_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, **kwargs: Any) -> None:
            self.inner = real(**kwargs)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self.inner.decompress(data, max_length)
            seen.append((max_length, len(out)))
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Spy)
    bomb = deflate(b"\0" * (10 * 1024 * 1024))
    assert len(bomb) < 20_000
    err = binding_error("too-large", decode_redirect, "SAMLRequest=" + b64q(bomb), "SAMLRequest")
    assert "65,536" in err.message
    cap = REQUEST_LIMITS.max_bytes
    assert seen == [(cap + 1, cap + 1)]


def test_inflated_request_over_64_kib_is_too_large_but_a_response_may_be_larger() -> None:
    padding = b"<!--" + b"x" * (70 * 1024) + b"-->"
    big = XML.replace(b"</samlp:AuthnRequest>", padding + b"</samlp:AuthnRequest>")
    query = "SAMLRequest=" + b64q(deflate(big))
    binding_error("too-large", decode_redirect, query, "SAMLRequest")
    response = decode_redirect(query.replace("SAMLRequest", "SAMLResponse"), "SAMLResponse")
    assert response.param == "SAMLResponse" and len(response.xml) == len(big)


def test_oversized_encoded_value_or_query_is_refused_before_decoding() -> None:
    binding_error("too-large", decode_redirect, "SAMLRequest=" + "A" * (100 * 1024), "SAMLRequest")
    binding_error("too-large", decode_redirect, "x=" + "A" * MAX_POST_BODY, "SAMLRequest")


@pytest.mark.parametrize(("size", "ok"), [(80, True), (81, False)])
def test_relay_state_limit_is_80_bytes(size: int, ok: bool) -> None:
    query = "SAMLRequest=" + b64q(deflate(XML)) + "&RelayState=" + "r" * size
    if ok:
        assert decode_redirect(query, "SAMLRequest").relay_state == "r" * 80
    else:
        err = binding_error("relay-state", decode_redirect, query, "SAMLRequest")
        assert err.actual == "81 bytes"


def test_relay_state_limit_counts_bytes_not_characters() -> None:
    query = "SAMLRequest=" + b64q(deflate(XML)) + "&RelayState=" + quote("é" * 41)
    binding_error("relay-state", decode_redirect, query, "SAMLRequest")
    with pytest.raises(BindingError):
        encode_redirect(XML, param="SAMLRequest", destination=SSO, relay_state="r" * 81)


def test_doctype_inside_the_inflated_xml_is_unsafe() -> None:
    evil = b'<!DOCTYPE r [<!ENTITY x "y">]>' + XML
    with pytest.raises(UnsafeXML) as caught:
        decode_redirect("SAMLRequest=" + b64q(deflate(evil)), "SAMLRequest")
    assert caught.value.kind == "doctype"


@pytest.mark.parametrize("query", [
    "SAMLRequest=abc%zz",           # broken escape
    "SAMLRequest=abc%4",            # cut escape
    "SAMLRequest=abcé",             # not ASCII
    "=abc&SAMLRequest=abc",         # no name
    "SAMLRequest=%ff%fe",           # not UTF-8
])
def test_malformed_query_is_refused(query: str) -> None:
    binding_error("malformed-query", decode_redirect, query, "SAMLRequest")


def test_a_response_where_a_request_was_expected_is_refused() -> None:
    query = "SAMLRequest=" + b64q(deflate(XML))
    binding_error("malformed-query", decode_redirect, query + "&SAMLResponse=x", "SAMLRequest")
    binding_error("malformed-query", decode_redirect, b"SAMLRequest=\xff", "SAMLRequest")


def test_empty_segments_are_ignored() -> None:
    query = "&&SAMLRequest=" + b64q(deflate(XML)) + "&"
    assert decode_redirect(query, "SAMLRequest").xml == XML


# --- HTTP-POST -----------------------------------------------------------------------------

def test_post_round_trip_from_fields_and_raw_body() -> None:
    fields = post_form_fields(XML, param="SAMLRequest", relay_state="rs")
    assert list(fields) == ["SAMLRequest", "RelayState"]
    message = decode_post(fields, "SAMLRequest")
    assert (message.xml, message.relay_state, message.binding) == (XML, "rs", "HTTP-POST")
    body = "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items())
    assert decode_post(body, "SAMLRequest").xml == XML
    assert decode_post(body.encode(), "SAMLRequest").relay_state == "rs"
    assert post_form_fields(XML, param="SAMLResponse") == {"SAMLResponse": encode_post(XML)}


def test_post_accepts_line_wrapped_base64() -> None:
    text = encode_post(XML)
    wrapped = "\r\n".join(text[i:i + 76] for i in range(0, len(text), 76))
    assert decode_post({"SAMLRequest": wrapped}, "SAMLRequest").xml == XML


def test_post_refusals() -> None:
    value = encode_post(XML)
    binding_error("missing", decode_post, {"RelayState": "x"}, "SAMLRequest")
    binding_error("base64", decode_post, {"SAMLRequest": value[:10] + "*" + value[10:]}, "SAMLRequest")
    binding_error("relay-state", decode_post, {"SAMLRequest": value, "RelayState": "r" * 81}, "SAMLRequest")
    binding_error("duplicate-parameter", decode_post, f"SAMLRequest={quote(value)}&SAMLRequest=x", "SAMLRequest")
    binding_error("encoded-parameter-name", decode_post, f"SAML%52equest={quote(value)}", "SAMLRequest")
    binding_error("too-large", decode_post, b"x" * (MAX_POST_BODY + 1), "SAMLRequest")
    binding_error("malformed-query", decode_post, {"SAMLRequest": value, "SAMLResponse": value}, "SAMLRequest")


@pytest.mark.parametrize(("param", "ok"), [("SAMLRequest", False), ("SAMLResponse", True)])
def test_post_decoded_size_cap_depends_on_the_message(param: Param, ok: bool) -> None:
    big = XML.replace(b"</samlp:AuthnRequest>", b"<!--" + b"x" * (100 * 1024) + b"-->" + b"</samlp:AuthnRequest>")
    if ok:
        assert decode_post({param: encode_post(big)}, param).xml == big
    else:
        binding_error("too-large", decode_post, {param: encode_post(big)}, param)
    huge = big + b" " * (100 * 1024)
    binding_error("too-large", decode_post, {param: encode_post(huge)}, param)
    binding_error("too-large", decode_post, {param: "A" * (MAX_POST_BODY * 2)}, param)


def test_post_doctype_is_unsafe() -> None:
    with pytest.raises(UnsafeXML) as caught:
        decode_post({"SAMLRequest": encode_post(b"<!DOCTYPE x>" + XML)}, "SAMLRequest")
    assert caught.value.kind == "doctype"
