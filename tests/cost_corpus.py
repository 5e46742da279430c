"""The adversarial cost corpus of issue 11: inputs within the size limits, built to be slow.

Every family is generated at the largest size its entry point accepts, byte for byte the same on
every run (no randomness, no clock). A family is a run of some cheap-to-send construct — comments,
processing instructions, CDATA, whitespace, attributes, namespace declarations, entity and
character references, base64 padding, nesting at the depth limit, elements up to the element
limit, a long namespace URI, a huge InclusiveNamespaces PrefixList — placed where each stage of
the entry point has to look at it: before the root (the HTML sniff), bare (the parser and the raw
scanners), and inside a real envelope (schema, checks, canonicalisation and the signature).

The signatures here are never valid: the cost of canonicalisation and digest is paid before any
signature value is compared. The reproductions that were reported are kept as files in
``tests/corpus/cost/`` (their README says where they come from).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from idp.assertion import Claim, ResponseSpec, SigningKey, build_response, serialize
from metadata.saml import DS, MD, SAML, SAMLP
from metadata.signing import MAX_INCLUSIVE_PREFIXES
from metadata.xml import XMLLimits, metadata_limits

KiB = 1024
MiB = 1024 * KiB
FIXTURES = Path(__file__).parent / "corpus" / "cost"
PER_ELEMENT = XMLLimits(max_bytes=1).max_namespaces_per_element
IN_SCOPE = XMLLimits(max_bytes=1).max_namespaces_in_scope


@dataclass(frozen=True)
class Target:
    """What one kind of entry point accepts (metadata.xml's XMLLimits and the route body limits)."""

    kind: str
    """``metadata``, ``response`` or ``request``: which envelope the families are wrapped in."""
    max_bytes: int
    max_elements: int
    max_depth: int = 64


METADATA = Target("metadata", 5 * MiB, metadata_limits().max_elements)
RESPONSE = Target("response", 192 * KiB, 20_000)
REQUEST = Target("request", 64 * KiB, 20_000)
POST_BODY = 256 * KiB
UPLOAD_BODY = 6 * MiB
PASTED = 1 * MiB
MAX_NAMESPACE = 1024

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
IDP = "https://idp.example.com/saml"
SP = "https://sso.portal.example/saml"
ACS = "https://sso.portal.example/saml/acs"
INSTANT = "2026-05-01T12:00:00Z"
COST_NS = "urn:example:cost"


# ---- fragments: a run of one construct, at most `size` bytes and `elements` elements ------------

Fragment = Callable[[int, int, int], bytes]
"""(size in bytes, elements allowed, depth left) -> the content placed in an envelope."""


def _run(unit: bytes, head: bytes = b"", tail: bytes = b"") -> Fragment:
    def make(size: int, elements: int, depth: int) -> bytes:
        return head + unit * max(0, (size - len(head) - len(tail)) // len(unit)) + tail
    return make


def _numbered(open_: bytes, item: str, close: bytes) -> Fragment:
    """`open_`, then `item` formatted with 0, 1, 2 … while it fits, then `close`."""
    def make(size: int, elements: int, depth: int) -> bytes:
        parts, used, i = [open_], len(open_) + len(close), 0
        while True:
            piece = item.format(i).encode()
            if used + len(piece) > size:
                break
            parts.append(piece)
            used += len(piece)
            i += 1
        return b"".join(parts) + close
    return make


def _deep(size: int, elements: int, depth: int) -> bytes:
    """Chains nested to the depth limit, side by side until the element or byte limit."""
    chain = b"<c:d>" * (depth - 1) + b"</c:d>" * (depth - 1)
    head = b'<c:w xmlns:c="' + COST_NS.encode() + b'">'
    count = min((elements - 1) // (depth - 1), (size - len(head) - 6) // len(chain))
    return head + chain * max(0, count) + b"</c:w>"


def _elements(size: int, elements: int, depth: int) -> bytes:
    count = min(elements - 1, (size - 40 - len(COST_NS)) // 6)
    return b'<c:w xmlns:c="' + COST_NS.encode() + b'">' + b"<c:e/>" * count + b"</c:w>"


def _declarations_at_cap(size: int, elements: int, depth: int) -> bytes:
    """Siblings that each declare as many namespaces as one element may, until the byte limit."""
    decls = "".join(f' xmlns:p{i}="urn:p{i}"' for i in range(PER_ELEMENT - 1)).encode()
    head, tail, one = b'<c:w xmlns:c="' + COST_NS.encode() + b'">', b"</c:w>", b"<c:e" + decls + b"/>"
    return head + one * max(0, min(elements - 1, (size - len(head) - len(tail)) // len(one))) + tail


def _declarations_in_scope(size: int, elements: int, depth: int) -> bytes:
    """As many declarations in scope as the cap allows, one per level down the nesting, then as many
    elements as fit, each with all of them in scope."""
    levels = min(depth - 2, IN_SCOPE - 8)  # the envelope declares a few of its own
    per_level = max(1, (IN_SCOPE - 8) // levels)
    parts, n = [], 0
    for _ in range(levels):
        parts.append(("<c:s" + "".join(f' xmlns:p{n + i}="urn:p{n + i}"' for i in range(per_level)) + ">").encode())
        n += per_level
    head = b'<c:w xmlns:c="' + COST_NS.encode() + b'">' + b"".join(parts)
    tail = b"</c:s>" * levels + b"</c:w>"
    room = min(elements - levels - 1, (size - len(head) - len(tail)) // 6)
    return head + b"<c:e/>" * max(0, room) + tail


def _long_namespace(size: int, elements: int, depth: int) -> bytes:
    uri = b"urn:" + b"u" * (MAX_NAMESPACE - 4)
    head = b'<c:w xmlns:c="' + COST_NS.encode() + b'" xmlns:g="' + uri + b'">'
    tail = b"</c:w>"
    return head + b"<g:e/>" * min(elements - 1, (size - len(head) - len(tail)) // 6) + tail


FRAGMENTS: dict[str, Fragment] = {
    "comments": _run(b"<!---->"),
    "processing-instructions": _run(b"<?p?>"),
    "cdata": _run(b"<![CDATA[]]>"),
    "whitespace": _run(b" "),
    "newlines": _run(b"\n"),
    "entity-references": _run(b"&amp;"),
    "character-references": _run(b"&#x41;"),
    "attributes": _numbered(b'<c:a xmlns:c="' + COST_NS.encode() + b'"', ' a{}=""', b"/>"),
    "entity-references-in-attribute": _run(b"&lt;", b'<c:a xmlns:c="' + COST_NS.encode() + b'" v="', b'"/>'),
    "namespace-declarations": _numbered(b'<c:a xmlns:c="' + COST_NS.encode() + b'"', ' xmlns:p{}="u"', b"/>"),
    "namespace-declarations-at-cap": _declarations_at_cap,
    "namespace-declarations-in-scope": _declarations_in_scope,
    "deep-nesting": _deep,
    "element-count": _elements,
    "long-namespace-uri": _long_namespace,
}


# ---- envelopes --------------------------------------------------------------------------------

def _signature(reference: str, prefix_list: str | None = None, padding: int = 0, cert_b64: str = "") -> str:
    """A ds:Signature whose values are junk: the digest is computed and fails before any key matters."""
    transform = (f'<ds:Transform Algorithm="{EXC_C14N}"><ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" '
                 f'PrefixList="{prefix_list}"/></ds:Transform>' if prefix_list is not None
                 else f'<ds:Transform Algorithm="{EXC_C14N}"/>')
    key_info = (f"<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data>"
                "</ds:KeyInfo>" if cert_b64 else "")
    return (f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/>'
            f'<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
            f'<ds:Reference URI="#{reference}"><ds:Transforms>'
            f'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>{transform}'
            f'</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
            f'<ds:DigestValue>{"A" * 43}=</ds:DigestValue></ds:Reference></ds:SignedInfo>'
            f'<ds:SignatureValue>{"A" * 342}=={"=" * padding}</ds:SignatureValue>{key_info}</ds:Signature>')


@dataclass(frozen=True)
class Envelope:
    """A real message with a hole for a fragment; `depth` is how deep the hole is."""

    head: str
    tail: str
    depth: int
    elements: int


def metadata_envelope(cert_b64: str, *, prefix_list: str | None = None, padding: int = 0) -> Envelope:
    """IdP metadata signed (junk values) with its own certificate in KeyInfo, so that the
    embedded-certificate self-check verifies it; the hole is in md:Extensions."""
    head = (f'<md:EntityDescriptor xmlns:md="{MD}" entityID="{IDP}" ID="_m1">'
            + _signature("_m1", prefix_list, padding, cert_b64)
            + "<md:Extensions>")
    tail = (f'</md:Extensions><md:IDPSSODescriptor protocolSupportEnumeration="{SAMLP}">'
            f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{DS}"><ds:X509Data><ds:X509Certificate>'
            f"{cert_b64}{'=' * padding}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            'Location="https://idp.example.com/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>')
    return Envelope(head, tail, depth=2, elements=30)


def response_envelope(*, prefix_list: str | None = None, padding: int = 0, response_id: str = "_r1",
                      in_response_to: str = "_req1") -> Envelope:
    """A Response whose Assertion carries a signature (junk values); the hole is an AttributeValue."""
    head = (f'<samlp:Response xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{response_id}" Version="2.0" '
            f'IssueInstant="{INSTANT}" Destination="{ACS}" InResponseTo="{in_response_to}">'
            f"<saml:Issuer>{IDP}</saml:Issuer><samlp:Status><samlp:StatusCode "
            f'Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
            f'<saml:Assertion ID="_a1" Version="2.0" IssueInstant="{INSTANT}"><saml:Issuer>{IDP}</saml:Issuer>'
            + _signature("_a1", prefix_list, padding)
            + '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">'
            f'jo@example.com</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<saml:SubjectConfirmationData Recipient="{ACS}" NotOnOrAfter="2026-05-01T12:05:00Z" '
            f'InResponseTo="{in_response_to}"/></saml:SubjectConfirmation></saml:Subject>'
            '<saml:Conditions NotBefore="2026-05-01T11:59:00Z" NotOnOrAfter="2026-05-01T12:05:00Z">'
            f"<saml:AudienceRestriction><saml:Audience>{SP}</saml:Audience></saml:AudienceRestriction>"
            f'</saml:Conditions><saml:AuthnStatement AuthnInstant="{INSTANT}" SessionIndex="_s1"><saml:AuthnContext>'
            "<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>"
            '<saml:Attribute Name="AccountNumber"><saml:AttributeValue>')
    tail = ("</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"
            "</samlp:Response>")
    return Envelope(head, tail, depth=5, elements=40)


def request_envelope(issuer: str, destination: str, acs: str, *, prefix_list: str | None = None,
                     padding: int = 0) -> Envelope:
    """An AuthnRequest from a registered SP, signed (junk values); the hole is samlp:Extensions."""
    head = (f'<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_q1" Version="2.0" '
            f'IssueInstant="{INSTANT}" Destination="{destination}" AssertionConsumerServiceURL="{acs}" '
            f'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{issuer}</saml:Issuer>'
            + _signature("_q1", prefix_list, padding) + "<samlp:Extensions>")
    tail = "</samlp:Extensions></samlp:AuthnRequest>"
    return Envelope(head, tail, depth=2, elements=20)


def wrap(envelope: Envelope, fragment: Fragment, target: Target, size: int | None = None) -> bytes:
    head, tail = envelope.head.encode(), envelope.tail.encode()
    room = (size or target.max_bytes) - len(head) - len(tail)
    inner = fragment(room, target.max_elements - envelope.elements, target.max_depth - envelope.depth)
    return head + inner + tail


# ---- the corpus -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Peer:
    """What the envelopes need from the test: the IdP's certificate (public, base64 DER) and, for
    AuthnRequests, the SP that is registered at the IdP under test."""

    cert_b64: str
    sp_entity_id: str = SP
    sso_url: str = "https://idp.example.com/sso"
    sp_acs: str = ACS


def envelope_for(target: Target, peer: Peer, **signature: str | int | None) -> Envelope:
    if target.kind == "metadata":
        return metadata_envelope(peer.cert_b64, **signature)  # type: ignore[arg-type]
    if target.kind == "response":
        return response_envelope(**signature)  # type: ignore[arg-type]
    return request_envelope(peer.sp_entity_id, peer.sso_url, peer.sp_acs, **signature)  # type: ignore[arg-type]


def _prefix_list(target: Target, peer: Peer, size: int) -> bytes:
    """Issue 11 §3: a PrefixList of thousands of prefixes, hundreds of declarations in scope of
    thousands of elements, all under the signature's reference."""
    prefixes = max(1000, size // 40)
    declarations = 800
    plain = envelope_for(target, peer, prefix_list="")
    listed = " ".join(f"p{i}" for i in range(prefixes))
    envelope = envelope_for(target, peer, prefix_list=listed)
    decls = "".join(f' xmlns:p{i}="urn:p{i}"' for i in range(declarations))
    head = f'<c:w xmlns:c="{COST_NS}"{decls}>'.encode()
    tail = b"</c:w>"
    room = size - len(envelope.head) - len(envelope.tail) - len(head) - len(tail)
    count = min(target.max_elements - plain.elements - 2, max(0, room // 6))
    return envelope.head.encode() + head + b"<c:v/>" * count + tail + envelope.tail.encode()


def _prefix_list_at_caps(target: Target, peer: Peer, size: int) -> bytes:
    """The same within the caps: as many prefixes listed as accepted, declared on every element."""
    declared = PER_ELEMENT - 1
    listed = " ".join(f"p{i}" for i in range(MAX_INCLUSIVE_PREFIXES))
    envelope = envelope_for(target, peer, prefix_list=listed)
    decls = "".join(f' xmlns:p{i}="urn:p{i}"' for i in range(declared))
    head = f'<c:w xmlns:c="{COST_NS}">'.encode()
    one = f"<c:v{decls}/>".encode()
    room = size - len(envelope.head) - len(envelope.tail) - len(head) - 6
    count = min(target.max_elements - 60, max(0, room // len(one)))
    return envelope.head.encode() + head + one * count + b"</c:w>" + envelope.tail.encode()


def builders(target: Target, peer: Peer) -> dict[str, Callable[[int], bytes]]:
    """Every family for `target`, as a function of the size in bytes it may take at most."""
    def fixture(name: str) -> Callable[[int], bytes]:
        return lambda size: (FIXTURES / name).read_bytes()

    def prolog(unit: bytes, head: bytes = b"", tail: bytes = b"") -> Callable[[int], bytes]:
        return lambda size: _run(unit, head, tail)(size, 1, 1)

    def bare(fragment: Fragment) -> Callable[[int], bytes]:
        return lambda size: b"<x>" + fragment(size - 7, target.max_elements - 1, target.max_depth - 1) + b"</x>"

    def signed(fragment: Fragment) -> Callable[[int], bytes]:
        return lambda size: wrap(envelope_for(target, peer), fragment, target, size)

    def padded(size: int) -> bytes:
        plain = envelope_for(target, peer)
        room = size - len(plain.head) - len(plain.tail)
        envelope = envelope_for(target, peer, padding=room // (2 if target.kind == "metadata" else 1))
        return (envelope.head + envelope.tail).encode()

    found: dict[str, Callable[[int], bytes]] = {
        "redos-27": fixture("redos-27.xml"),
        "redos-40": fixture("redos-40.xml"),
        "prolog-comments": prolog(b"<!---->", tail=b"<x/>"),
        "prolog-processing-instructions": prolog(b"<?p?>", tail=b"<x/>"),
        "prolog-whitespace": prolog(b" ", tail=b"<x/>"),
        "xmlns-prefix-run": prolog(b"xmlns:", head=b"<a "),
        "xmlns-equals-run": prolog(b"xmlns:a=", head=b"<a "),
    }
    for name, fragment in FRAGMENTS.items():
        found[f"bare-{name}"] = bare(fragment)
        found[f"signed-{name}"] = signed(fragment)
    found["base64-padding"] = padded
    found["prefix-list"] = lambda size: _prefix_list(target, peer, size)
    found["prefix-list-at-caps"] = lambda size: _prefix_list_at_caps(target, peer, size)
    return found


def documents(target: Target, peer: Peer, size: int | None = None) -> dict[str, bytes]:
    """Every family for `target`, each at most `size` bytes (default: the target's limit)."""
    limit = size or target.max_bytes
    return {name: make(limit)[:limit] for name, make in builders(target, peer).items()}


def certificate_repeated(cert_b64: str, times: int = 3000) -> bytes:
    """Issue 11 §3, the amplifier: metadata that lists one signing certificate `times` times."""
    key = (f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{DS}"><ds:X509Data><ds:X509Certificate>'
           f"{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>")
    return (f'<md:EntityDescriptor xmlns:md="{MD}" entityID="{IDP}"><md:IDPSSODescriptor '
            f'protocolSupportEnumeration="{SAMLP}">{key * times}<md:SingleSignOnService '
            'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/sso"/>'
            "</md:IDPSSODescriptor></md:EntityDescriptor>").encode()


def tampered_response(key: SigningKey, now: datetime) -> bytes:
    """A response signed by `key`, as large as a message may be, with a claim changed after signing:
    checked against `certificate_repeated`, every listed certificate would pay its digest."""
    filler = "x" * (RESPONSE.max_bytes - 12 * KiB)
    spec = ResponseSpec(issuer=IDP, destination=ACS, audience=SP, in_response_to="_req1", nameid="jo@example.com",
                        nameid_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", session_index="_s1",
                        claims=(Claim("AccountNumber", ("123",)), Claim("Note", (filler,))), sign="both")
    return serialize(build_response(spec, now=now, key=key)).replace(b">123<", b">124<")


def deep_json(size: int) -> bytes:
    """Issue 11 §6: ``[`` repeated, which a recursive JSON decoder cannot survive."""
    return b"[" * size


def wide_json(size: int) -> bytes:
    """A JSON object of as many keys as fit."""
    return json.dumps({f"k{i}": 0 for i in range(size // 12)}).encode()[:size].rsplit(b",", 1)[0] + b"}"


# ---- wrapping for an entry point --------------------------------------------------------------

def form_body(param: str, xml: bytes) -> bytes:
    """An HTTP-POST form body (Bindings §3.5): the message base64-encoded, then URL-encoded."""
    from urllib.parse import quote

    return f"{param}=".encode() + quote(base64.b64encode(xml).decode(), safe="").encode()


def fitted(make: Callable[[int], bytes], wrap_: Callable[[bytes], bytes], limit: int, start: int) -> bytes:
    """The wrapped form of the largest `make(size)` whose wrapped length is within `limit`."""
    size = start
    while True:
        wrapped = wrap_(make(size))
        if len(wrapped) <= limit or size < 64:
            return wrapped
        size = min(size - 1, int(size * limit / len(wrapped)))


def json_body(document: bytes, members: Mapping[str, object] | None = None, key: str = "xml") -> bytes:
    """`document` as the string `key` of a JSON API body (the others: `members`)."""
    return json.dumps({key: document.decode("utf-8", "surrogateescape"), **(members or {})},
                      ensure_ascii=False).encode("utf-8", "surrogateescape")


def api_metadata_body(family: str, peer: Peer, members: Mapping[str, object] | None = None) -> bytes:
    """`family` as the largest metadata the API's 6 MiB body carries once JSON-escaped (a newline
    becomes two bytes) and within the 5 MiB metadata limit."""
    make = builders(METADATA, peer)[family]
    return fitted(lambda size: make(size)[:size], lambda xml: json_body(xml, members), UPLOAD_BODY,
                  METADATA.max_bytes)


def acs_body(family: str, peer: Peer) -> bytes:
    """`family` as the largest SAMLResponse form body the ACS takes (256 KiB, after base64 and URL-encoding)."""
    make = builders(RESPONSE, peer)[family]
    return fitted(lambda size: make(size)[:size], lambda xml: form_body("SAMLResponse", xml), POST_BODY,
                  RESPONSE.max_bytes)
