"""Structure-aware mutations: what an attacker does to a signed SAML message, chosen at random.

Byte flips rarely get past the XML parser; these mutations work on the element tree instead
(SECURITY.md §7): move, clone, wrap and rename the Assertion, the Signature and their
neighbours, copy IDs, add namespaces, comments, CDATA and processing instructions, and
replace values with awkward ones. The message is first taken out of its envelope (base64,
a form body, a DEFLATE'd query string, a SAML-tracer export) and put back in the same one,
so a crash input is exactly what the CLI or the IdP would receive.

Slowness is looked for too (issue 11): runs of one token (comments, processing instructions,
CDATA, whitespace, namespace declarations, character references, base64 padding) before the
root or anywhere, a long InclusiveNamespaces PrefixList with its prefixes declared, many
namespace declarations or attributes on one element, nesting to the depth limit.

Everything is driven by one :class:`random.Random`, so a mutation is reproducible from its
seed: atheris passes one to its custom mutator, hypothesis draws it.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from lxml import etree

from metadata.errors import UnsafeXML
from metadata.saml import DS, MD, SAML, SAMLP, XENC
from metadata.xml import PASTED_LIMITS, parse_untrusted

# Elements an attacker moves around first: a mutation picks one of these half of the time.
INTERESTING = {
    "Response", "Assertion", "EncryptedAssertion", "Signature", "SignedInfo", "Reference", "Transforms",
    "Transform", "DigestValue", "SignatureValue", "KeyInfo", "X509Certificate", "Issuer", "NameID", "Subject",
    "SubjectConfirmationData", "Conditions", "Audience", "AttributeStatement", "Attribute", "AttributeValue",
    "Status", "StatusCode", "EntityDescriptor", "EntitiesDescriptor", "IDPSSODescriptor", "KeyDescriptor",
    "SingleSignOnService", "NameIDFormat", "AuthnRequest", "NameIDPolicy", "Extensions", "CipherValue",
}
TAGS = (
    f"{{{SAML}}}Assertion", f"{{{SAMLP}}}Response", f"{{{DS}}}Object", f"{{{DS}}}Signature", f"{{{SAML}}}Advice",
    f"{{{SAMLP}}}Extensions", f"{{{SAML}}}EncryptedAssertion", f"{{{MD}}}EntityDescriptor",
    f"{{{MD}}}EntitiesDescriptor", f"{{{MD}}}Extensions", f"{{{SAML}}}Issuer", f"{{{DS}}}SignedInfo",
    f"{{{DS}}}Reference", "{urn:fuzz}Wrapper", "Wrapper", f"{{{SAMLP}}}AuthnRequest", f"{{{XENC}}}EncryptedData",
)
ATTRIBUTES = (
    "ID", "Id", "{http://www.w3.org/XML/1998/namespace}id", "URI", "Algorithm", "Version", "IssueInstant",
    "Destination", "InResponseTo", "NotBefore", "NotOnOrAfter", "Recipient", "Method", "Value", "Format",
    "Name", "NameFormat", "entityID", "validUntil", "cacheDuration", "use", "Binding", "Location", "index",
    "isDefault", "protocolSupportEnumeration", "AssertionConsumerServiceURL", "AssertionConsumerServiceIndex",
    "ProtocolBinding", "PrefixList", "WantAuthnRequestsSigned", "AllowCreate", "ForceAuthn", "IsPassive",
)
VALUES = (
    "", " ", "#", "#_x", "_x", "0", "-1", "65536", "99999999999999999999", "2.0", "1.0", "true", "1", "yes",
    "2026-06-01T12:00:00Z", "2026-06-01T12:00:00.1234567891+14:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "2026-02-30T25:61:61Z", "P1D", "PT-5S", "https://sp.fuzz.example/saml/acs", "javascript:alert(1)",
    "http://127.0.0.1/", "file:///etc/passwd", "urn:oasis:names:tc:SAML:2.0:status:Success",
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", "urn:oasis:names:tc:SAML:2.0:nameid-format:entity",
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature", "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments", "http://www.w3.org/TR/1999/REC-xslt-19991116",
    "http://www.w3.org/TR/1999/REC-xpath-19991116", "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512", "http://www.w3.org/2000/09/xmldsig#sha1",
    "ds saml #default", "admin@example.com", "a\u202eb", "\u200b", "\ufeff", "\U0001f600", "é" * 3,
    "A" * 300, "MIIB", "AAAA", "====", "signing", "encryption",
)
# Namespace URIs that canonicalisation or a reader may choke on (a relative URI voids c14n).
NAMESPACES = ("relative", "urn:fuzz", "", SAML, SAMLP, DS, MD, "http://www.w3.org/XML/1998/namespace")
TOKENS = (
    *(t.encode() for t in VALUES[:40]),
    b"<!DOCTYPE x [<!ENTITY e 'x'>]>", b"&e;", b"&amp;", b"&#0;", b"&#x10FFFF;", b"<![CDATA[", b"]]>", b"<!--",
    b"-->", b"<?pi x?>", b"<?xml version='1.0' encoding='UTF-16'?>", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00",
    b"\xc3\x28", b"xmlns:a='relative'", b"xmlns=''", b"</", b"/>", b"=", b"%", b"%2B", b"%00", b"+", b"&", b"\r\n",
    b"SAMLRequest=", b"SAMLResponse=", b"RelayState=", b"SigAlg=", b"Signature=", b"SAMLEncoding=", b"\"requests\"",
    b"[[", b"]]", b"{", b"}", b"\"", b"'''", b"\\u0000", b"1e999", b"9" * 30, b"inf", b"nan",
    b"<!---->", b"<?x?>", b"<![CDATA[]]>", b"<!doctype html>", b"<html>", b"xmlns:", b"xmlns:a='urn:a' ",
    b"xmlns='urn:a' ", b"PrefixList='", b"InclusiveNamespaces", b"&#", b"&#60;", b"&#x3C;", b"====", b"=\n",
)
RUNS = (
    b"<!---->", b"<!-- x -->", b"<?x?>", b"<?x y?>", b"<![CDATA[]]>", b" ", b"\t\r\n", b"\n", b"xmlns:",
    b"xmlns:a='urn:a' ", b"xmlns='urn:a' ", b" a=''", b"&#60;", b"&#x41;", b"&amp;", b"=", b"A", b"<a>", b"</a>",
    b"<a/>", b"<", b"-", b"--", b"<!--",
)
"""Tokens repeated many times over: a scanner or a pattern that backtracks pays for each one."""
RUN_LENGTHS = (10, 30, 100, 1000, 10_000, 50_000)
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


def _parse(xml: bytes) -> etree._Element | None:
    try:
        return parse_untrusted(xml, PASTED_LIMITS).getroot()
    except UnsafeXML:
        return None


# -------------------------------------------------------------------------------- envelopes


@dataclass(frozen=True)
class Envelope:
    """A message taken out of its transport form, and how to put a changed one back."""

    xml: bytes
    wrap: Callable[[bytes], bytes]


def _b64(xml: bytes) -> str:
    return base64.b64encode(xml).decode("ascii")


def _deflate(xml: bytes) -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    return deflater.compress(xml) + deflater.flush()


def _inflate(data: bytes) -> bytes | None:
    try:
        return zlib.decompressobj(-15).decompress(data, 1 << 20)
    except zlib.error:
        return None


def _unbase64(text: bytes | str) -> bytes | None:
    try:
        return base64.b64decode(re.sub(rb"\s", b"", text if isinstance(text, bytes) else text.encode("latin-1")),
                                validate=True)
    except (binascii.Error, ValueError):
        return None


def _form_envelope(data: bytes) -> Envelope | None:
    """``SAMLRequest=…`` or ``SAMLResponse=…`` among other fields; DEFLATE'd when it is a query."""
    text = data.decode("latin-1")  # byte for byte, whatever the fuzzer put there
    query = text.startswith("?")
    parts = text.removeprefix("?").split("&")
    for i, part in enumerate(parts):
        name, _, value = part.partition("=")
        if name not in ("SAMLRequest", "SAMLResponse"):
            continue
        raw = _unbase64(unquote_to_bytes(value).decode("latin-1"))
        if raw is None:
            return None
        inflated = _inflate(raw) if query else None
        xml = inflated if inflated else raw

        def wrap(new: bytes, i: int = i, name: str = name, deflated: bool = inflated is not None) -> bytes:
            value = quote(_b64(_deflate(new) if deflated else new), safe="")
            rebuilt = [*parts[:i], f"{name}={value}", *parts[i + 1:]]
            return (("?" if query else "") + "&".join(rebuilt)).encode("latin-1")

        return Envelope(xml, wrap)
    return None


def _tracer_envelope(data: bytes) -> Envelope | None:
    try:
        export = json.loads(data)
        requests = export["requests"]
        for request in requests:
            post = request.get("post") if isinstance(request, dict) else None
            if isinstance(post, dict) and isinstance(post.get("SAMLResponse"), list) and post["SAMLResponse"]:
                xml = _unbase64(post["SAMLResponse"][0])
                if xml is None:
                    return None

                def wrap(new: bytes, post: dict[str, list[str]] = post) -> bytes:
                    post["SAMLResponse"] = [_b64(new)]
                    return json.dumps(export).encode("utf-8")

                return Envelope(xml, wrap)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    return None


def unwrap(data: bytes) -> Envelope | None:
    """The XML inside `data` and how to re-wrap it, or None when `data` holds no XML message."""
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] == b"<" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return Envelope(data, lambda new: new)
    if text[:1] == b"{":
        return _tracer_envelope(text)
    if b"SAMLRequest=" in text or b"SAMLResponse=" in text:
        return _form_envelope(text)
    raw = _unbase64(text)
    if raw is None:
        return None
    if raw.lstrip()[:1] == b"<":
        return Envelope(raw, lambda new: base64.b64encode(new))
    inflated = _inflate(raw)
    if inflated and inflated.lstrip()[:1] == b"<":
        return Envelope(inflated, lambda new: base64.b64encode(_deflate(new)))
    return None


# ----------------------------------------------------------------------------- tree mutations


def _pick(rng: random.Random, elements: Sequence[etree._Element]) -> etree._Element:
    interesting = [e for e in elements if etree.QName(e).localname in INTERESTING]
    return rng.choice(interesting if interesting and rng.random() < 0.6 else elements)


def _insert_somewhere(rng: random.Random, root: etree._Element, node: etree._Element, avoid: etree._Element) -> None:
    """Insert `node` at a random place inside `root`, never inside `avoid` (no cycles)."""
    inside = set(avoid.iter())
    parents = [e for e in root.iter(etree.Element) if e not in inside]
    if not parents:
        return
    parent = _pick(rng, parents)
    parent.insert(rng.randint(0, len(parent)), node)


def _clone(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    from copy import deepcopy

    element = _pick(rng, elements)
    copy = deepcopy(element)
    if rng.random() < 0.5 and copy.get("ID") is not None:
        copy.set("ID", copy.get("ID", "") + rng.choice(("", "x", "_evil")))
    _insert_somewhere(rng, root, copy, avoid=copy)


def _move(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(rng, elements[1:] or elements)
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    parent.remove(element)
    element.tail = tail
    _insert_somewhere(rng, root, element, avoid=element)


def _delete(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(rng, elements[1:] or elements)
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def _wrap(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(rng, elements[1:] or elements)
    parent = element.getparent()
    if parent is None:
        return
    wrapper = etree.Element(rng.choice(TAGS))
    if rng.random() < 0.5:
        wrapper.set("ID", element.get("ID") or "_wrapper")
    parent.replace(element, wrapper)
    wrapper.append(element)


def _rename(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(rng, elements)
    element.tag = rng.choice(TAGS) if rng.random() < 0.5 else f"{{{rng.choice(NAMESPACES) or 'urn:x'}}}" + (
        etree.QName(element).localname)


def _swap(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    a, b = _pick(rng, elements[1:] or elements), _pick(rng, elements[1:] or elements)
    if a is b or a in b.iterancestors() or b in a.iterancestors():
        return
    pa, pb = a.getparent(), b.getparent()
    if pa is None or pb is None:
        return
    marker = etree.Element("marker")
    pa.replace(a, marker)
    pb.replace(b, a)
    pa.replace(marker, b)


def _attribute(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(rng, elements)
    name = rng.choice(list(element.attrib) or list(ATTRIBUTES)) if rng.random() < 0.7 else rng.choice(ATTRIBUTES)
    if rng.random() < 0.15:
        if name in element.attrib:
            del element.attrib[name]
        return
    ids = [e.get("ID") for e in elements if e.get("ID")]
    if ids and rng.random() < 0.25:  # an ID borrowed from elsewhere: duplicate IDs, dangling references
        value = rng.choice(ids) or ""
        element.set(name, ("#" if name == "URI" else "") + value)
    else:
        element.set(name, rng.choice(VALUES))


def _text(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(rng, elements)
    choice = rng.random()
    if choice < 0.3 and element.text:  # a comment splitting a value: admin@example.com<!---->.evil.com
        cut = rng.randint(0, len(element.text))
        text = element.text
        element.text = text[:cut]
        comment = etree.Comment(rng.choice(("", "x", "-")).replace("-", ""))
        comment.tail = text[cut:] + rng.choice(("", ".evil.com"))
        element.insert(0, comment)
    elif choice < 0.5:
        element.text = etree.CDATA(element.text or rng.choice(VALUES).replace("]]>", ""))
    elif choice < 0.65:
        pi = etree.ProcessingInstruction("fuzz", "x")
        pi.tail = element.text
        element.text = None
        element.insert(0, pi)
    else:
        element.text = rng.choice(VALUES) if rng.random() < 0.8 else (element.text or "") * rng.randint(2, 50)


def _namespace(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    prefix = rng.choice(("a", "saml", "ds", "samlp", "md", "xenc"))
    _declare(_pick(rng, elements), {prefix: rng.choice(NAMESPACES) or "urn:empty"})


def _declare(element: etree._Element, declarations: dict[str, str]) -> None:
    """`element` replaced by a copy that also declares `declarations` (lxml declares only on creation)."""
    parent = element.getparent()
    if parent is None:
        return
    nsmap: dict[Any, str] = {**element.nsmap, **declarations}  # the default namespace has the key None
    clone = etree.Element(element.tag, nsmap=nsmap)
    for key, value in element.attrib.items():
        clone.set(key, value)
    clone.text, clone.tail = element.text, element.tail
    for child in list(element):
        clone.append(child)
    parent.replace(element, clone)


def _flood(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    """Many copies of one element beside it: what a quadratic loop over siblings or IDs notices."""
    from copy import deepcopy

    element = _pick(rng, elements[1:] or elements)
    parent = element.getparent()
    if parent is None:
        return
    at = parent.index(element)
    size = sum(1 for _ in element.iter())
    for _ in range(min(rng.choice((10, 100, 1000)), 20_000 // size)):  # the mutator's own memory stays small
        parent.insert(at, deepcopy(element))


def _namespace_bomb(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    """A long namespace URI declared once and used by many siblings: exclusive c14n declares it
    again on each of them, so the canonical form can be far larger than the document."""
    uri = "urn:" + "n" * rng.choice((100, 1000, 10_000, 50_000))
    children = "<p:e/>" * rng.choice((10, 1000, 10_000))
    holder = etree.fromstring(
        f'<saml:AttributeValue xmlns:saml="{SAML}" xmlns:p="{uri}">{children}</saml:AttributeValue>')
    _pick(rng, elements).append(holder)


def _prefix_list(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    """An InclusiveNamespaces with a long PrefixList, its prefixes declared on an element near it:
    what exclusive c14n must look up for every element of the signed content."""
    transforms = [e for e in elements if etree.QName(e).localname == "Transform"]
    holder = rng.choice(transforms) if transforms and rng.random() < 0.8 else _pick(rng, elements)
    count = rng.choice((5, 50, 500, 4000))
    prefixes = [f"p{i}" for i in range(count)]
    listed = etree.SubElement(holder, f"{{{EXC_C14N}}}InclusiveNamespaces", nsmap={"ec": EXC_C14N})
    listed.set("PrefixList", " ".join(prefixes + (["#default"] if rng.random() < 0.5 else [])))
    if rng.random() < 0.7:
        declared = prefixes[: rng.choice((10, 800, count))]
        _declare(rng.choice(elements[1:] or elements), {p: f"urn:{p}" for p in declared})


def _declarations(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    """Many namespace declarations on one element, or a few on each of many."""
    def names(count: int) -> dict[str, str]:
        return {f"n{i}": f"urn:n{i}" for i in range(count)}

    if rng.random() < 0.5:
        _declare(_pick(rng, elements), names(rng.choice((100, 1000, 5000))))
    else:
        for element in rng.sample(elements, min(len(elements), rng.choice((10, 100)))):
            _declare(element, names(rng.choice((2, 20))))


def _attributes(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    element = _pick(rng, elements)
    for i in range(rng.choice((10, 100, 1000, 3000))):  # lxml's set() is linear: 10,000 would cost the mutator 0.6 s
        element.set(f"a{i}", "")


def _padding(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    """Base64 values with long '=' padding or whitespace: what a decoder or a pattern may loop on."""
    values = [e for e in elements if etree.QName(e).localname in (
        "DigestValue", "SignatureValue", "X509Certificate", "CipherValue", "Modulus")]
    element = rng.choice(values) if values else _pick(rng, elements)
    run = rng.choice(("=", "==", "=\n", " =", "\n", "A")) * rng.choice((4, 100, 10_000))
    element.text = (element.text or "") + run if rng.random() < 0.7 else run + (element.text or "")


def _nest(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    """An element wrapped in wrappers to around the depth limit (64)."""
    element = _pick(rng, elements[1:] or elements)
    for _ in range(rng.choice((8, 60, 63, 64, 70))):
        parent = element.getparent()
        if parent is None:
            return
        wrapper = etree.Element(rng.choice(TAGS))
        parent.replace(element, wrapper)
        wrapper.append(element)


def _children_run(rng: random.Random, root: etree._Element, elements: list[etree._Element]) -> None:
    """Many comments, processing instructions or empty children inside one element."""
    element = _pick(rng, elements)
    kind = rng.choice(("comment", "pi", "element"))
    at = rng.randint(0, len(element))
    element[at:at] = [etree.Comment("") if kind == "comment" else
                      etree.ProcessingInstruction("x") if kind == "pi" else etree.Element("e")
                      for _ in range(rng.choice((10, 100, 1000, 10_000)))]


TREE_MUTATIONS = (_clone, _move, _delete, _wrap, _rename, _swap, _attribute, _text, _namespace, _clone, _move,
                  _wrap, _attribute, _text, _flood, _namespace_bomb, _prefix_list, _declarations, _attributes,
                  _padding, _nest, _children_run)


def mutate_tree(xml: bytes, rng: random.Random) -> bytes | None:
    """`xml` with one to three tree mutations, serialised; None when it does not parse."""
    root = _parse(xml)
    if root is None:
        return None
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        elements = list(root.iter(etree.Element))
        try:
            rng.choice(TREE_MUTATIONS)(rng, root, elements)
        except ValueError:  # lxml refuses some combinations (an invalid tag name, a cycle): skip them
            continue
    return etree.tostring(root)


# ----------------------------------------------------------------------------- byte mutations


def mutate_bytes(data: bytes, rng: random.Random, others: Sequence[bytes] = ()) -> bytes:
    """`data` with one byte-level change: a token inserted, a range dropped, doubled or spliced."""
    if not data:
        return rng.choice(TOKENS)
    at = rng.randint(0, len(data))
    choice = rng.randrange(7)
    if choice == 0:
        return data[:at] + rng.choice(TOKENS) + data[at:]
    if choice == 1:
        return data[:at] + data[at + rng.randint(1, 64):]
    if choice == 2:
        end = min(len(data), at + rng.randint(1, 256))
        return data[:end] + data[at:end] * rng.randint(1, 4) + data[end:]
    if choice == 3 and others:
        other = rng.choice(others)
        start = rng.randint(0, len(other))
        return data[:at] + other[start:start + rng.randint(1, 512)] + data[at:]
    if choice == 4 and at < len(data):
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]
    if choice == 5:
        return data[:at]
    return run_of_tokens(data, rng)


def run_of_tokens(data: bytes, rng: random.Random) -> bytes:
    """`data` with one token repeated many times: before it a third of the time (where sniffers of
    the first bytes look), else anywhere."""
    at = 0 if rng.random() < 0.34 else rng.randint(0, len(data))
    return data[:at] + rng.choice(RUNS) * rng.choice(RUN_LENGTHS) + data[at:]


def mutate(data: bytes, rng: random.Random, *, others: Sequence[bytes] = (), max_size: int = 1 << 20) -> bytes:
    """One mutation of `data`: mostly on the message's tree, inside its envelope; else on its bytes."""
    if rng.random() < 0.75:
        envelope = unwrap(data)
        if envelope is not None:
            changed = mutate_tree(envelope.xml, rng)
            if changed is not None:
                if rng.random() < 0.1:  # the tree serialised loses what came before the root
                    changed = run_of_tokens(changed, rng)
                elif rng.random() < 0.2:
                    changed = mutate_bytes(changed, rng, others)
                wrapped = envelope.wrap(changed)
                if len(wrapped) <= max_size:
                    return wrapped
    return mutate_bytes(data, rng, others)[:max_size]
