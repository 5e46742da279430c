"""Seed inputs per target: the real files of the test corpus (``tests/corpus``), plus inputs made here.

The generated seeds alone cover every target (``--no-corpus``); the corpus adds real vendors'
metadata and responses, and real attacks (tests/corpus/SOURCES.md says where they come from).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from fuzz.material import (
    CRM_TOML,
    SP_ENTITY,
    as_base64,
    as_form,
    as_saml_tracer,
    authn_request_xml,
    material,
    post_body,
    redirect_query,
)
from fuzz.targets import target
from metadata.signing import RSA_SHA1

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"
DEMO = Path(__file__).resolve().parents[1] / "validator" / "demo"

NASTY_XML = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>',
    b'<!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>',
    b'<?xml version="1.0" encoding="ISO-8859-1"?><r>\xe9</r>',
    "<?xml version='1.0' encoding='UTF-16'?><r a='b'>\u00e9</r>".encode("utf-16"),
    b"<html><body>Sign in</body></html>",
    b"<a>" * 70 + b"</a>" * 70,
    b"<r>" + b"<e/>" * 20_001 + b"</r>",
    b'<r xmlns:p="relative"><p:e p:a="1">x<!---->y<![CDATA[z]]><?pi d?></p:e></r>',
    b"\xef\xbb\xbf<r/>",
    b"<r>&#0;</r>",
    b" \n ",
)


def _corpus_files(*kinds: str) -> Iterator[Path]:
    for kind in kinds:
        folder = CORPUS / kind
        if folder.is_dir():
            yield from sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".xml", ".b64"))


def _generated(name: str) -> Iterator[tuple[str, bytes]]:
    m = material()
    if name == "xml":
        yield "metadata", m.metadata
        for shape, xml in m.responses.items():
            yield f"response-{shape}", xml
        for shape, xml in m.requests.items():
            yield f"request-{shape}", xml
        for i, xml in enumerate(NASTY_XML):
            yield f"nasty-{i}", xml
    elif name == "metadata":
        yield "metadata-signed", m.metadata
        yield "metadata-demo", (DEMO / "springfield-water-idp-metadata.xml").read_bytes()
        yield "aggregate", (b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Name="x">'
                            + m.metadata.split(b"?>", 1)[1] * 2 + b"</md:EntitiesDescriptor>")
    elif name == "response":
        for shape, xml in m.responses.items():
            yield f"response-{shape}", xml
        both = m.responses["both"]
        yield "base64", as_base64(both)
        yield "form", as_form(both)
        yield "saml-tracer", as_saml_tracer(both)
        yield "base64-encrypted", as_base64(m.responses["encrypted"])
    elif name == "request":
        plain, signed = m.requests["plain"], m.requests["signed"]
        yield "redirect", redirect_query(plain)
        yield "redirect-signed", redirect_query(plain, key_pem=m.sp_key.key_pem)
        yield "redirect-signed-no-relay", redirect_query(plain, key_pem=m.sp_key.key_pem, relay_state=None)
        yield "redirect-sha1", redirect_query(plain, key_pem=m.sp_key.key_pem).replace(
            b"rsa-sha256", RSA_SHA1.rsplit("#", 1)[1].encode())
        yield "post", post_body(plain)
        yield "post-signed", post_body(signed)
        yield "post-other-issuer", post_body(etree.tostring(authn_request_xml(acs="https://elsewhere.example/acs")))
    elif name == "crm":
        yield "fuzz.toml", CRM_TOML.encode()
        yield "fuzz.json", json.dumps(m.crm.model_dump(mode="json")).encode()
        yield "demo.toml", (DEMO / "springfield-water.toml").read_bytes()
        yield "minimal.toml", f'[biller]\nid = "B-1"\nname = "x"\n[sp]\nentity_id = "{SP_ENTITY}"\nacs_url = "x"\n'\
            .encode()


def seeds(name: str, *, corpus: bool = True) -> list[tuple[str, bytes]]:
    """(label, bytes) for every seed of target `name` that fits its `max_len`."""
    found = list(_generated(name))
    if corpus and name in ("xml", "metadata"):
        kinds = ("idp-metadata", "sp-metadata") if name == "metadata" else ("idp-metadata", "sp-metadata",
                                                                            "responses")
        found += [(str(p.relative_to(CORPUS)), p.read_bytes()) for p in _corpus_files(*kinds)]
    if corpus and name == "response":
        found += [(str(p.relative_to(CORPUS)), p.read_bytes()) for p in _corpus_files("responses")
                  if not p.name.endswith(".metadata.xml")]
    limit = target(name).max_len
    return [(label, data) for label, data in found if len(data) <= limit] or [("empty", b"")]
