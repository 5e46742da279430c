"""metadata.response and metadata.encryption: responses verified so that wrapping cannot work.

SECURITY.md §2 and §7: responses our own IdP signs verify with the right flags and every claim
readable from the returned (signed) trees; one changed byte, a missing signature, a forged
KeyInfo certificate and every wrapping variant are refused; a comment cannot cut a NameID
short; ~500 seeded random structural mutations are each refused or yield exactly the signed
claims; every attack sample in tests/corpus is refused, and the corpus's encrypted
responses decrypt with the test keys its MANIFEST names.
"""

from __future__ import annotations

import base64
import copy
import random
import re
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import xmlsec
from lxml import etree
from xmlsec import constants as xc

from idp import assertion as idp_assertion
from idp.assertion import Claim, ResponseSpec, SignWhat, build_response, serialize
from metadata.certs import load_certificates
from metadata.encryption import RSA_OAEP, DecryptionError, decrypt_assertion
from metadata.errors import MetadataError, UnsafeXML
from metadata.keys import KeyPair, generate_keypair
from metadata.read import read_metadata
from metadata.response import (
    ResponseError,
    ResponseSignatureError,
    StructureProblem,
    VerifiedResponse,
    structure_problems,
    verify_response,
)
from metadata.saml import DS, RESPONDER, SAML, SAMLP, XENC
from metadata.signing import RSA_SHA1, RSA_SHA256, SHA1, SHA256, SignatureError
from metadata.xml import MESSAGE_LIMITS, PASTED_LIMITS, exc_c14n, parse_untrusted, text_of
from tests.conftest import CORPUS
from tests.factory import NOW

NS = {"samlp": SAMLP, "saml": SAML, "ds": DS, "xenc": XENC}
ACS = "https://sp.example.com/saml/acs"
CLAIMS = (
    Claim("AccountNumber", ("0012345",)),
    Claim("Email", ("alice.biller@example.com",), "basic"),
    Claim("LoginTypeId", ("1", "2")),
)


@pytest.fixture(scope="module")
def idp_key() -> KeyPair:
    return generate_keypair("idp.test", now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def attacker_key() -> KeyPair:
    return generate_keypair("idp.test", now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def sp_key() -> KeyPair:
    return generate_keypair("sp.test", now=NOW - timedelta(days=1))


def spec(**changes: Any) -> ResponseSpec:
    values: dict[str, Any] = dict(
        issuer="https://idp.example.com/saml", destination=ACS, audience="https://sp.example.com/saml",
        in_response_to="_3f1e0c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", nameid="alice@example.com",
        nameid_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", session_index="_s1", claims=CLAIMS,
    )
    values.update(changes)
    return ResponseSpec(**values)


def received(data: bytes) -> etree._Element:
    """What an SP holds: the bytes parsed with the one parser."""
    return parse_untrusted(data, MESSAGE_LIMITS).getroot()


def response_bytes(key: KeyPair, sign: SignWhat = "assertion", encrypt_for: bytes | None = None,
                   new_id: Callable[[], str] = idp_assertion.new_id, **changes: Any) -> bytes:
    return serialize(build_response(spec(sign=sign, **changes), now=NOW, key=key, encrypt_for=encrypt_for,
                                    new_id=new_id))


def signed(key: KeyPair, sign: SignWhat = "assertion", **changes: Any) -> etree._Element:
    return received(response_bytes(key, sign, **changes))


def nameid(assertion: etree._Element) -> str:
    element = assertion.find("saml:Subject/saml:NameID", NS)
    assert element is not None
    return text_of(element)


def claims(assertion: etree._Element) -> dict[str, list[str]]:
    return {a.get("Name", ""): [text_of(v) for v in a.findall("saml:AttributeValue", NS)]
            for a in assertion.findall("saml:AttributeStatement/saml:Attribute", NS)}


def child(parent: etree._Element, path: str) -> etree._Element:
    found = parent.find(path, NS)
    assert found is not None, path
    return found


# ---------------------------------------------------------------------------- what verifies


@pytest.mark.parametrize("sign", ["assertion", "response", "both"])
def test_signed_responses_verify_and_hand_back_what_was_signed(idp_key: KeyPair, sign: SignWhat) -> None:
    result = verify_response(signed(idp_key, sign), [idp_key.cert_der])
    assert result.response_signed == (sign in ("response", "both"))
    assert result.assertion_signed == (sign in ("assertion", "both"))
    assert not result.encrypted
    expected = [e for e, on in (("Response", result.response_signed), ("Assertion", result.assertion_signed)) if on]
    assert [f.element for f in result.signatures] == expected
    for facts in result.signatures:
        assert (facts.signature_method, facts.digest_method) == (RSA_SHA256, SHA256)
        assert facts.certificate == idp_key.cert_der and not facts.uses_sha1
    assert nameid(result.assertion) == "alice@example.com"
    assert claims(result.assertion) == {"AccountNumber": ["0012345"], "Email": ["alice.biller@example.com"],
                                        "LoginTypeId": ["1", "2"]}
    assert result.response.get("Destination") == ACS
    assert child(result.response, "samlp:Status/samlp:StatusCode").get("Value", "").endswith(":Success")
    # Claims come from a re-parse of the signed bytes: the signed element is a tree's root
    # (its own signature removed), or sits inside the re-parsed signed Response.
    if result.assertion_signed:
        assert result.assertion.getparent() is None
        assert result.assertion.find("ds:Signature", NS) is None
    else:
        assert result.assertion.getparent() is result.response
    if result.response_signed:
        assert result.response.find("ds:Signature", NS) is None


def test_unsigned_response_fields_are_flagged_when_only_the_assertion_is_signed(idp_key: KeyPair) -> None:
    data = response_bytes(idp_key, "assertion").replace(ACS.encode(), b"https://evil.example/acs", 1)
    result = verify_response(received(data), [idp_key.cert_der])
    assert not result.response_signed  # the caller reports Destination as unsigned
    assert result.response.get("Destination") == "https://evil.example/acs"
    recipient = child(result.assertion, "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData")
    assert recipient.get("Recipient") == ACS  # the signed value is untouched


def test_rollover_tries_every_trusted_certificate(idp_key: KeyPair, attacker_key: KeyPair) -> None:
    result = verify_response(signed(idp_key, "both"), [attacker_key.cert_der, idp_key.cert_der])
    assert {f.certificate for f in result.signatures} == {idp_key.cert_der}


def test_sha1_is_refused_unless_allowed(idp_key: KeyPair) -> None:
    response = signed(idp_key, "assertion", signature_method=RSA_SHA1, digest_method=SHA1)
    with pytest.raises(SignatureError) as refused:
        verify_response(response, [idp_key.cert_der])
    assert refused.value.kind == "weak"
    result = verify_response(response, [idp_key.cert_der], allow_sha1=True)
    assert result.signatures[0].uses_sha1


# ---------------------------------------------------------------------------- what is refused


@pytest.mark.parametrize("sign", ["assertion", "response", "both"])
def test_one_changed_byte_is_invalid(idp_key: KeyPair, sign: SignWhat) -> None:
    data = response_bytes(idp_key, sign)
    tampered = data.replace(b"alice@example.com", b"alice@example.con", 1)
    assert len(tampered) == len(data) and tampered != data
    with pytest.raises(SignatureError) as refused:
        verify_response(received(tampered), [idp_key.cert_der])
    assert refused.value.kind == "invalid"


def test_unsigned_response_is_missing(idp_key: KeyPair) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_response(signed(idp_key, "none"), [idp_key.cert_der])
    assert refused.value.kind == "missing"


def test_no_trusted_certificate(idp_key: KeyPair) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_response(signed(idp_key), [])
    assert refused.value.kind == "no-trusted-key"


@pytest.mark.parametrize("keyinfo", ["attacker-cert", "idp-cert"])
def test_forged_signature_with_a_certificate_in_keyinfo(idp_key: KeyPair, attacker_key: KeyPair, keyinfo: str) -> None:
    # Signed by another key; KeyInfo carries that key's certificate, or the IdP's real one.
    response = signed(attacker_key, "both")
    if keyinfo == "idp-cert":
        for certificate in response.iter(f"{{{DS}}}X509Certificate"):
            certificate.text = base64.b64encode(idp_key.cert_der).decode()
    with pytest.raises(SignatureError) as refused:
        verify_response(response, [idp_key.cert_der])
    assert refused.value.kind == "invalid"


def _evil(assertion: etree._Element, *, new_id: str | None = "_evil", keep_signature: bool = False) -> etree._Element:
    evil = copy.deepcopy(assertion)
    if not keep_signature:
        for signature in evil.findall("ds:Signature", NS):
            evil.remove(signature)
    for value in evil.iterfind("saml:Subject/saml:NameID", NS):
        value.text = "admin@example.com"
    if new_id is not None:
        evil.set("ID", new_id)
    return evil


def _extensions(response: etree._Element) -> etree._Element:
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    response.insert(1, extensions)  # after Issuer (SAML Core §3.2.2)
    return extensions


def xsw_wrap_in_extensions(response: etree._Element) -> None:
    """The signed Assertion moved into samlp:Extensions; an evil one with its ID in its place."""
    original = child(response, "saml:Assertion")
    response.replace(original, _evil(original, new_id=None))
    _extensions(response).append(original)


def xsw_wrap_in_object(response: etree._Element) -> None:
    """XSW 7/8: the signed Assertion inside a ds:Object of the evil one's signature."""
    original = child(response, "saml:Assertion")
    evil = _evil(original, new_id=None, keep_signature=True)
    response.replace(original, evil)
    etree.SubElement(child(evil, "ds:Signature"), f"{{{DS}}}Object").append(original)


def xsw_move_signature(response: etree._Element) -> None:
    assertion = child(response, "saml:Assertion")
    child(assertion, "saml:Subject").append(child(assertion, "ds:Signature"))


def xsw_clone_with_another_id(response: etree._Element) -> None:
    original = child(response, "saml:Assertion")
    original.addnext(_evil(original, keep_signature=True))


def xsw_duplicate_id(response: etree._Element) -> None:
    etree.SubElement(_extensions(response), "{urn:evil}Data", ID=child(response, "saml:Assertion").get("ID", ""))


def xsw_second_unsigned_assertion(response: etree._Element) -> None:
    response.append(_evil(child(response, "saml:Assertion")))


def xsw_response_in_response(response: etree._Element) -> None:
    inner = copy.deepcopy(response)
    response.remove(child(response, "ds:Signature"))
    original = child(response, "saml:Assertion")
    response.replace(original, _evil(original))
    _extensions(response).append(inner)


def xsw_extra_signature(response: etree._Element) -> None:
    assertion = child(response, "saml:Assertion")
    assertion.insert(2, copy.deepcopy(child(response, "ds:Signature")))


XSW: list[tuple[Callable[[etree._Element], None], SignWhat, set[str]]] = [
    (xsw_wrap_in_extensions, "assertion",
     {"assertion-count", "assertion-placement", "duplicate-id", "signature-placement"}),
    (xsw_wrap_in_object, "assertion",
     {"assertion-count", "assertion-placement", "duplicate-id", "signature-placement", "object"}),
    (xsw_move_signature, "assertion", {"signature-placement"}),
    (xsw_clone_with_another_id, "assertion", {"assertion-count"}),
    (xsw_duplicate_id, "assertion", {"duplicate-id"}),
    (xsw_second_unsigned_assertion, "both", {"assertion-count"}),
    (xsw_response_in_response, "both",
     {"assertion-count", "assertion-placement", "duplicate-id", "signature-placement"}),
    (xsw_extra_signature, "both", {"several-signatures", "too-many-signatures"}),
]


@pytest.mark.parametrize(("attack", "sign", "kinds"), XSW, ids=[a.__name__ for a, _, _ in XSW])
def test_wrapping_is_refused_for_its_structure(
    idp_key: KeyPair, attack: Callable[[etree._Element], None], sign: SignWhat, kinds: set[str]
) -> None:
    response = signed(idp_key, sign)
    attack(response)
    response = received(etree.tostring(response))
    with pytest.raises(ResponseError) as refused:
        verify_response(response, [idp_key.cert_der])
    found = {p.kind for p in refused.value.problems}
    assert found == kinds
    assert refused.value.kind == refused.value.problems[0].kind
    assert refused.value.problems == structure_problems(response)
    assert all(p.line for p in refused.value.problems)


def test_assertion_signature_moved_to_the_response_fails_its_profile(idp_key: KeyPair) -> None:
    response = signed(idp_key, "assertion")
    response.insert(1, child(response, "saml:Assertion/ds:Signature"))
    with pytest.raises(SignatureError) as refused:
        verify_response(response, [idp_key.cert_der])
    assert refused.value.kind == "profile"


@pytest.mark.parametrize("sign", ["assertion", "response"])
def test_a_comment_cannot_cut_the_nameid_short(idp_key: KeyPair, sign: SignWhat) -> None:
    data = response_bytes(idp_key, sign, nameid="admin@example.com.evil.com")
    injected = data.replace(b"admin@example.com.evil.com", b"admin@example.com<!---->.evil.com", 1)
    assert injected != data
    response = received(injected)
    assert child(response, "saml:Assertion/saml:Subject/saml:NameID").text == "admin@example.com"  # the trap
    result = verify_response(response, [idp_key.cert_der])
    assert nameid(result.assertion) == "admin@example.com.evil.com"


@pytest.mark.parametrize(("root", "named"), [
    (f"{{{SAMLP}}}LogoutResponse", "samlp:LogoutResponse"),
    (f"{{{SAMLP}}}AuthnRequest", "samlp:AuthnRequest"),
    (f"{{{SAML}}}Assertion", "saml:Assertion"),
])
def test_other_messages_are_not_responses(root: str, named: str) -> None:
    problems = structure_problems(etree.Element(root, ID="_x"))
    assert problems[0].kind == "not-a-response" and named in problems[0].message
    with pytest.raises(ResponseError) as refused:
        verify_response(etree.Element(root, ID="_x"), [b"unused"])
    assert refused.value.kind == "not-a-response"


def test_structure_problems_is_pure_and_complete(idp_key: KeyPair) -> None:
    response = signed(idp_key, "both")
    assert structure_problems(response) == []
    xsw_wrap_in_object(response)
    before = etree.tostring(response)
    problems = structure_problems(response.getroottree())
    assert etree.tostring(response) == before
    assert len(problems) >= 6 and all(isinstance(p, StructureProblem) for p in problems)


# ---------------------------------------------------------------------------- encryption


def encrypted_assertion(response: etree._Element) -> etree._Element:
    return child(response, "saml:EncryptedAssertion")


@pytest.mark.parametrize("sign", ["assertion", "both"])
def test_our_encrypted_responses_verify(idp_key: KeyPair, sp_key: KeyPair, sign: SignWhat) -> None:
    response = received(response_bytes(idp_key, sign, encrypt_for=sp_key.cert_der))
    result = verify_response(response, [idp_key.cert_der], sp_key_pem=sp_key.key_pem)
    assert result.encrypted and result.assertion_signed
    assert result.response_signed == (sign == "both")
    assert nameid(result.assertion) == "alice@example.com"
    assert claims(result.assertion)["LoginTypeId"] == ["1", "2"]
    assert result.response.find("saml:EncryptedAssertion", NS) is not None


def test_namespaces_declared_on_the_response_do_not_swell_the_copy_made_for_decryption(
    idp_key: KeyPair, sp_key: KeyPair
) -> None:
    # The decrypter re-parses EncryptionMethod and CipherData with the one parser. Serialised
    # plainly, each part carried every declaration of its ancestors: 110 unused 1 KB namespaces
    # on a 119 KB response made a 225 KB copy, refused as too large (an UnsafeXML, escaping).
    # The parser now caps declarations (40 per element, 64 in scope); as many as it allows here.
    data = response_bytes(idp_key, "assertion", encrypt_for=sp_key.cert_der)
    declarations = b"".join(b' xmlns:n%d="urn:%s"' % (i, b"x" * 1000) for i in range(36))
    at = data.index(b"<samlp:Response") + len(b"<samlp:Response")
    swollen = data[:at] + declarations + data[at:]
    declarations = b"".join(b' xmlns:m%d="urn:%s"' % (i, b"y" * 1000) for i in range(20))
    at = swollen.index(b"<saml:EncryptedAssertion") + len(b"<saml:EncryptedAssertion")
    swollen = swollen[:at] + declarations + swollen[at:]
    assert len(swollen) < MESSAGE_LIMITS.max_bytes
    result = verify_response(received(swollen), [idp_key.cert_der], sp_key_pem=sp_key.key_pem)
    assert result.encrypted and result.assertion_signed
    assert nameid(result.assertion) == "alice@example.com"


def test_encrypted_assertion_must_be_signed_inside(idp_key: KeyPair, sp_key: KeyPair) -> None:
    # The Response signature covers the ciphertext, but SECURITY.md §2 wants the Assertion signed.
    response = received(response_bytes(idp_key, "response", encrypt_for=sp_key.cert_der))
    with pytest.raises(SignatureError) as refused:
        verify_response(response, [idp_key.cert_der], sp_key_pem=sp_key.key_pem)
    assert refused.value.kind == "missing"


def test_encrypted_assertion_needs_the_right_key(idp_key: KeyPair, sp_key: KeyPair) -> None:
    response = received(response_bytes(idp_key, "assertion", encrypt_for=sp_key.cert_der))
    with pytest.raises(DecryptionError) as refused:
        verify_response(response, [idp_key.cert_der])
    assert refused.value.kind == "no-key"
    with pytest.raises(DecryptionError) as refused:
        verify_response(response, [idp_key.cert_der], sp_key_pem=idp_key.key_pem)
    assert refused.value.kind == "failed"


def test_idp_decrypt_assertion_delegates(idp_key: KeyPair, sp_key: KeyPair) -> None:
    wrapper = encrypted_assertion(received(response_bytes(idp_key, encrypt_for=sp_key.cert_der)))
    assert nameid(idp_assertion.decrypt_assertion(wrapper, sp_key.key_pem)) == "alice@example.com"
    with pytest.raises(idp_assertion.IdPResponseError) as refused:
        idp_assertion.decrypt_assertion(wrapper, idp_key.key_pem)
    assert isinstance(refused.value.__cause__, DecryptionError)


DATA = {f"aes{n}-{mode}": (getattr(xc, f"TransformAes{n}{mode.capitalize()}"), xc.KeyDataAes, n)
        for n in (128, 192, 256) for mode in ("cbc", "gcm")} | {"3des-cbc": (xc.TransformDes3Cbc, xc.KeyDataDes, 192)}
TRANSPORT = {"rsa-oaep-mgf1p": xc.TransformRsaOaep, "rsa-1_5": xc.TransformRsaPkcs1}


def encrypt(plaintext: bytes, certificate_der: bytes, data: str, transport: str = "rsa-oaep-mgf1p") -> etree._Element:
    """An EncryptedAssertion with the given algorithms (our IdP only writes AES-256-GCM)."""
    transform, key_data, bits = DATA[data]
    wrapper = etree.Element(f"{{{SAML}}}EncryptedAssertion", nsmap={"saml": SAML})
    template = xmlsec.template.encrypted_data_create(wrapper, transform, type=xc.TypeEncElement, ns="xenc")
    wrapper.append(template)
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    key = xmlsec.template.add_encrypted_key(key_info, TRANSPORT[transport])
    xmlsec.template.encrypted_data_ensure_cipher_value(key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(certificate_der, xc.KeyDataFormatCertDer, None))
    ctx = xmlsec.EncryptionContext(manager)
    ctx.key = xmlsec.Key.generate(key_data, bits, xc.KeyDataTypeSession)
    ctx.encrypt_binary(template, plaintext)
    return received(etree.tostring(wrapper))  # as an SP receives it (and lxml's find sees xmlsec's nodes)


def signed_assertion_bytes(key: KeyPair) -> bytes:
    return etree.tostring(child(signed(key, "assertion"), "saml:Assertion"))


@pytest.mark.parametrize("data", sorted(d for d in DATA if d.startswith("aes")))
def test_every_allowed_data_algorithm_decrypts(idp_key: KeyPair, sp_key: KeyPair, data: str) -> None:
    plaintext = signed_assertion_bytes(idp_key)
    assert decrypt_assertion(encrypt(plaintext, sp_key.cert_der, data), sp_key.key_pem) == plaintext


@pytest.mark.parametrize(("data", "transport"), [
    ("3des-cbc", "rsa-oaep-mgf1p"),
    ("aes256-cbc", "rsa-1_5"),  # PKCS#1 v1.5: Bleichenbacher's padding oracle
])
def test_weak_algorithms_are_refused(idp_key: KeyPair, sp_key: KeyPair, data: str, transport: str) -> None:
    wrapper = encrypt(signed_assertion_bytes(idp_key), sp_key.cert_der, data, transport)
    with pytest.raises(DecryptionError) as refused:
        decrypt_assertion(wrapper, sp_key.key_pem)
    assert refused.value.kind == "algorithm"


def _detach_key(wrapper: etree._Element, reference: str | None) -> None:
    """The Okta/ADFS layout: the EncryptedKey beside the EncryptedData, found by RetrievalMethod."""
    key_info = child(wrapper, "xenc:EncryptedData/ds:KeyInfo")
    key = child(key_info, "xenc:EncryptedKey")
    key.set("Id", "_key1")
    wrapper.append(key)
    if reference is not None:
        etree.SubElement(key_info, f"{{{DS}}}RetrievalMethod", URI=reference, Type=XENC + "EncryptedKey")


def _wrapper(idp_key: KeyPair, sp_key: KeyPair) -> etree._Element:
    return encrypted_assertion(received(response_bytes(idp_key, encrypt_for=sp_key.cert_der)))


@pytest.mark.parametrize("reference", ["#_key1", None])
def test_sibling_encrypted_key_layout(idp_key: KeyPair, sp_key: KeyPair, reference: str | None) -> None:
    wrapper = _wrapper(idp_key, sp_key)
    _detach_key(wrapper, reference)
    assert nameid(received(decrypt_assertion(wrapper, sp_key.key_pem))) == "alice@example.com"


def test_xmlenc11_rsa_oaep_uri(idp_key: KeyPair, sp_key: KeyPair) -> None:
    # xmlenc11#rsa-oaep with its defaults (MGF1-SHA1, SHA-1 digest) is the same scheme as rsa-oaep-mgf1p.
    wrapper = _wrapper(idp_key, sp_key)
    child(wrapper, "xenc:EncryptedData/ds:KeyInfo/xenc:EncryptedKey/xenc:EncryptionMethod").set("Algorithm", RSA_OAEP)
    assert decrypt_assertion(wrapper, sp_key.key_pem).startswith(b"<saml:Assertion")


def _remote_retrieval(wrapper: etree._Element) -> None:
    _detach_key(wrapper, "https://evil.example/key.xml")


def _dangling_retrieval(wrapper: etree._Element) -> None:
    _detach_key(wrapper, "#_nowhere")


def _retrieval_with_transforms(wrapper: etree._Element) -> None:
    _detach_key(wrapper, "#_key1")
    etree.SubElement(child(wrapper, "xenc:EncryptedData/ds:KeyInfo/ds:RetrievalMethod"), f"{{{DS}}}Transforms")


def _cipher_reference(wrapper: etree._Element) -> None:
    cipher_data = child(wrapper, "xenc:EncryptedData/xenc:CipherData")
    cipher_data.remove(child(cipher_data, "xenc:CipherValue"))
    etree.SubElement(cipher_data, f"{{{XENC}}}CipherReference", URI="https://evil.example/data")


def _two_data(wrapper: etree._Element) -> None:
    wrapper.append(copy.deepcopy(child(wrapper, "xenc:EncryptedData")))


def _inline_and_sibling(wrapper: etree._Element) -> None:
    wrapper.append(copy.deepcopy(child(wrapper, "xenc:EncryptedData/ds:KeyInfo/xenc:EncryptedKey")))


def _content_type(wrapper: etree._Element) -> None:
    child(wrapper, "xenc:EncryptedData").set("Type", XENC + "Content")


def _too_large(wrapper: etree._Element) -> None:
    etree.SubElement(wrapper, f"{{{XENC}}}EncryptedKey").text = "A" * MESSAGE_LIMITS.max_bytes


def _data_algorithm(wrapper: etree._Element) -> None:
    child(wrapper, "xenc:EncryptedData/xenc:EncryptionMethod").set("Algorithm", XENC + "tripledes-cbc")


def _key_algorithm(wrapper: etree._Element) -> None:
    child(wrapper, "xenc:EncryptedData/ds:KeyInfo/xenc:EncryptedKey/xenc:EncryptionMethod").set(
        "Algorithm", XENC + "rsa-1_5")


REFUSED_LAYOUTS = [
    (_remote_retrieval, "retrieval"), (_dangling_retrieval, "retrieval"), (_retrieval_with_transforms, "retrieval"),
    (_cipher_reference, "retrieval"), (_two_data, "layout"), (_inline_and_sibling, "layout"),
    (_content_type, "layout"), (_too_large, "too-large"), (_data_algorithm, "algorithm"), (_key_algorithm, "algorithm"),
]


@pytest.mark.parametrize(("defect", "kind"), REFUSED_LAYOUTS, ids=[d.__name__[1:] for d, _ in REFUSED_LAYOUTS])
def test_refused_encryption_layouts(
    idp_key: KeyPair, sp_key: KeyPair, defect: Callable[[etree._Element], None], kind: str
) -> None:
    wrapper = _wrapper(idp_key, sp_key)
    defect(wrapper)
    with pytest.raises(DecryptionError) as refused:
        decrypt_assertion(wrapper, sp_key.key_pem)
    assert refused.value.kind == kind


def test_decrypted_assertion_gets_the_structure_rules(idp_key: KeyPair, sp_key: KeyPair) -> None:
    # A signed assertion that itself hides a second assertion, then encrypted.
    original = child(signed(idp_key, "assertion"), "saml:Assertion")
    etree.SubElement(original, f"{{{SAML}}}Advice").append(_evil(original))
    response = signed(idp_key, "none", status=("urn:oasis:names:tc:SAML:2.0:status:Success", None))
    response.replace(child(response, "saml:Assertion"),
                     encrypt(etree.tostring(original), sp_key.cert_der, "aes128-gcm"))
    with pytest.raises(ResponseError) as refused:
        verify_response(received(etree.tostring(response)), [idp_key.cert_der], sp_key_pem=sp_key.key_pem)
    assert refused.value.kind == "assertion-count"


# ---------------------------------------------------------------------------- seeded mutations

MUTATION_SEED = 20260601
MUTATIONS = 500
_START_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def _elements(root: etree._Element) -> list[etree._Element]:
    return list(root.iter(etree.Element))


def _targets(root: etree._Element) -> list[etree._Element]:
    """What wrapping attacks move: assertions, signatures and elements carrying IDs."""
    return [e for e in _elements(root) if e is not root and (
        etree.QName(e).localname in ("Assertion", "Signature", "Subject", "NameID") or e.get("ID") is not None)]


def _outside(root: etree._Element, element: etree._Element) -> list[etree._Element]:
    inside = set(element.iter())
    return [e for e in _elements(root) if e not in inside]


def _mutate_tree(root: etree._Element, rng: random.Random) -> str:
    targets = _targets(root)
    operation = rng.choice(["wrap", "move", "clone", "remove", "id", "comment", "cdata", "whitespace", "evil"])
    if not targets:
        return "none"
    target = rng.choice(targets)
    parent = target.getparent()
    assert parent is not None
    if operation == "wrap":
        wrapper = etree.Element(rng.choice([f"{{{SAMLP}}}Extensions", f"{{{DS}}}Object", f"{{{SAML}}}Advice",
                                            "{urn:evil}Wrapper"]))
        index = parent.index(target)
        parent.replace(target, wrapper)
        wrapper.append(target)
        if rng.random() < 0.5 and etree.QName(target).localname == "Assertion":
            parent.insert(index, _evil(target, new_id=rng.choice([None, "_evil"])))
    elif operation == "move":
        destination = rng.choice(_outside(root, target))
        destination.insert(rng.randint(0, len(destination)), target)
    elif operation == "clone":
        clone = copy.deepcopy(target)
        if etree.QName(clone).localname == "Assertion" and rng.random() < 0.7:
            clone = _evil(target, new_id=rng.choice([None, "_evil"]), keep_signature=rng.random() < 0.5)
        destination = rng.choice(_elements(root))
        destination.insert(rng.randint(0, len(destination)), clone)
    elif operation == "remove":
        parent.remove(target)
    elif operation == "id":
        ids = [e.get("ID", "") for e in _elements(root) if e.get("ID")] + ["_fresh"]
        rng.choice(_elements(root)).set(rng.choice(["ID", "Id"]), rng.choice(ids))
    elif operation == "comment":
        element = rng.choice(_elements(root))
        text = element.text or ""
        split = rng.randint(0, len(text))
        comment = etree.Comment(" injected ")
        element.text, comment.tail = text[:split], text[split:] + (comment.tail or "")
        element.insert(0, comment)
    elif operation == "cdata":
        leaves = [e for e in _elements(root) if len(e) == 0 and e.text]
        if leaves:
            leaf = rng.choice(leaves)
            leaf.text = etree.CDATA(leaf.text or "")
    elif operation == "whitespace":
        element = rng.choice(_elements(root))
        if rng.random() < 0.5:
            element.text = (element.text or "") + rng.choice([" ", "\n", "\t", "\r\n  "])
        elif element is not root:
            element.tail = (element.tail or "") + rng.choice([" ", "\n", "\t"])
    else:  # evil: change a value inside whatever is signed
        leaves = [e for e in _elements(root) if len(e) == 0 and e.text and etree.QName(e).namespace == SAML]
        if leaves:
            rng.choice(leaves).text = "admin@example.com"
    return operation


def _mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Namespace declarations added to a start tag: unused, or rebinding a prefix in use."""
    tags = list(_START_TAG.finditer(data))
    tag = rng.choice(tags)
    declaration = rng.choice([b' xmlns:extra="urn:extra"', b' xmlns:saml="urn:evil"', b' xmlns="urn:evil"',
                              b' xmlns:ds="http://www.w3.org/2000/09/xmldsig#"', b' xmlns:samlp="urn:evil"',
                              f' xmlns:saml="{SAML}"'.encode(), b' xmlns:rel="relative/uri"'])
    return data[: tag.end()] + declaration + data[tag.end():], "namespace"


def _baseline(data: bytes, certificate: bytes) -> VerifiedResponse:
    return verify_response(received(data), [certificate])


def test_seeded_structural_mutations_never_yield_other_claims(idp_key: KeyPair) -> None:
    rng = random.Random(MUTATION_SEED)
    bases: dict[SignWhat, tuple[bytes, VerifiedResponse]] = {}
    for sign in ("assertion", "response", "both"):
        ids = (f"_{n:040x}" for n in range(1, 3))  # pinned: the same mutants on every run
        data = response_bytes(idp_key, sign, new_id=ids.__next__)
        bases[sign] = (data, _baseline(data, idp_key.cert_der))
    outcomes: Counter[str] = Counter()
    for n in range(MUTATIONS):
        sign = rng.choice(list(bases))
        data, original = bases[sign]
        root = received(data)
        operations = [_mutate_tree(root, rng) for _ in range(rng.randint(1, 3))]
        mutant = etree.tostring(root)
        if rng.random() < 0.3:
            mutant, operation = _mutate_bytes(mutant, rng)
            operations.append(operation)
        try:
            result = verify_response(parse_untrusted(mutant, MESSAGE_LIMITS), [idp_key.cert_der])
        except MetadataError as exc:
            outcomes[f"refused:{type(exc).__name__}:{getattr(exc, 'kind', '')}"] += 1
            continue
        context = f"mutation {n} ({sign}: {', '.join(operations)}) was accepted with other claims"
        assert exc_c14n(result.assertion) == exc_c14n(original.assertion), context
        if result.response_signed:
            assert exc_c14n(result.response) == exc_c14n(original.response), context
        outcomes["accepted-same-claims"] += 1
    assert sum(outcomes.values()) == MUTATIONS
    # Not vacuous: many mutants are harmless (comments, whitespace, spare namespaces), many are attacks.
    summary = dict(outcomes.most_common())
    assert outcomes["accepted-same-claims"] >= MUTATIONS // 20, summary
    assert sum(v for k, v in outcomes.items() if k.startswith("refused:ResponseError")) >= MUTATIONS // 10, summary


# ---------------------------------------------------------------------------- the test corpus


@cache
def manifest() -> dict[str, str]:
    """MANIFEST.tsv: path under the corpus -> notes."""
    lines = (CORPUS / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {cells[0]: cells[8] for cells in (line.split("\t") for line in lines) if len(cells) > 8}


def notes_of(path: Path) -> str:
    """A file's MANIFEST notes; a decoded copy takes those of the file it was decoded from."""
    relative = path.relative_to(CORPUS).as_posix()
    for notes in manifest().values():
        if f"decoded copy: {relative}" in notes:
            return notes
    return manifest().get(relative, "")


def named_certificates(notes: str) -> list[bytes]:
    """The certificates MANIFEST's xmlsec1 check used: a PEM file or a metadata document's keys."""
    certificates: list[bytes] = []
    for name in sorted(set(re.findall(r"(?:VERIFIES|FAILS) with ([\w.-]+\.(?:xml|pem))", notes))):
        path = next(CORPUS.rglob(name))
        certificates += load_certificates(path.read_bytes()) if name.endswith(".pem") else metadata_certificates(path)
    return certificates


def metadata_certificates(path: Path) -> list[bytes]:
    document = read_metadata(parse_untrusted(path.read_bytes()))
    return [c.der for entity in document.entities for role in entity.idp_roles for key in role.keys
            if key.use in (None, "signing") for c in key.certificates if c.der]


def embedded_certificates(root: etree._Element) -> list[bytes]:
    certificates = []
    for element in root.iter(f"{{{DS}}}X509Certificate"):
        try:
            certificates.append(base64.b64decode("".join(text_of(element).split()), validate=True))
        except ValueError:
            continue  # one sample's certificate was truncated upstream
    return certificates


ATTACKS_DIR = "responses/attacks-and-negative"
# file -> (what refuses it, kind). Checked with allow_sha1=True so that the kind is the defect
# itself, not the SHA-1 these old samples use. None: accepted, with the whole signed NameID.
ATTACKS: dict[str, tuple[type[MetadataError] | None, str]] = {
    "boxyhq-digestvalue-comment.xml": (SignatureError, "invalid"),
    "boxyhq-multiple-root-elements.xml": (UnsafeXML, "malformed"),
    "crewjam-google-2016-comment-injection.decoded.xml": (None, "ross@octolabs.io"),
    **{f"crewjam-onelogin-2016-xsw-permutation-{n}.decoded.xml": (ResponseError, "assertion-count")
       for n in ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")},
    "dex-tampered-response.xml": (SignatureError, "profile"),
    "feide-openidp-2012-signature-wrapping.xml": (ResponseError, "assertion-count"),
    "feide-openidp-2012-with-comments.xml": (SignatureError, "profile"),
    "nodesaml-resigned-by-attacker-cert-in-keyinfo.xml": (SignatureError, "invalid"),
    "onelogin-toolkit-concealed-signed-assertion.xml": (ResponseError, "assertion-count"),
    "onelogin-toolkit-doubled-signed-assertion.xml": (ResponseError, "assertion-count"),
    "onelogin-toolkit-multiple-signed.decoded.xml": (ResponseError, "several-signatures"),
    "onelogin-toolkit-nameid-comment-text-node-attack.decoded.xml": (SignatureError, "invalid"),
    "onelogin-toolkit-no-signature.decoded.xml": (SignatureError, "missing"),
    "onelogin-toolkit-signature-wrapping-attack.decoded.xml": (ResponseError, "assertion-count"),
    "onelogin-toolkit-signature-wrapping-attack2.decoded.xml": (ResponseError, "assertion-count"),
    "onelogin-toolkit-xxe-billion-laughs.xml": (UnsafeXML, "doctype"),
    "pysaml2-xsw-assertion-wrapper.xml": (ResponseError, "assertion-count"),
    "pysaml2-xsw-response-in-response.xml": (ResponseError, "assertion-count"),
    "xmlcrypto-multiple-signedinfo.xml": (ResponseError, "assertion-count"),
    "xmlcrypto-wrapped-signedinfo.xml": (ResponseError, "assertion-count"),
    "simplesamlphp-saml2-CVE-2025-66475.xml": (SignatureError, "invalid"),
    "simplesamlphp-saml2-signed-assertion-invalid-referenced-id.xml": (ResponseError, "not-a-response"),
    "simplesamlphp-saml2-signed-assertion-referenced-embedded.xml": (ResponseError, "not-a-response"),
    # ssoready's fixtures: their Response signatures fail upstream too (MANIFEST xmlsec1 check).
    **{f"ssoready-okta-{name}.xml": (SignatureError, "invalid") for name in (
        "bad-assertion-expired-early", "bad-assertion-expired-late", "bad-certificate", "bad-digest-algorithm",
        "bad-idp-entity-id", "bad-signature-algorithm", "bad-sp-entity-id", "no-certificate", "unsigned-assertion")},
}


def attack_trust(path: Path, root: etree._Element, stand_in: bytes) -> list[bytes]:
    """The certificate MANIFEST names for an attack sample (SECURITY.md §2: never KeyInfo's own
    when it is the attacker's); the certificate in the sample when MANIFEST names none."""
    if path.name.startswith("ssoready-"):
        return metadata_certificates(path.with_name(path.name.replace(".xml", ".metadata.xml")))
    if "resigned-by-attacker" in path.name:
        return [stand_in]  # KeyInfo holds the attacker's certificate; the SP trusts its own
    return named_certificates(notes_of(path)) or embedded_certificates(root) or [stand_in]


def test_every_attack_sample_has_an_expected_outcome(corpus: Path) -> None:
    present = {p.name for p in (corpus / ATTACKS_DIR).glob("*.xml") if not p.name.endswith(".metadata.xml")}
    assert present == set(ATTACKS)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_corpus_attack_is_refused(corpus: Path, idp_key: KeyPair, name: str) -> None:
    path = corpus / ATTACKS_DIR / name
    refused_by, kind = ATTACKS[name]
    try:
        root = parse_untrusted(path.read_bytes(), MESSAGE_LIMITS).getroot()
        result = verify_response(root, attack_trust(path, root, idp_key.cert_der), allow_sha1=True)
    except MetadataError as exc:
        # A refused signature says whose it was: a SignatureError that names the element.
        refused = SignatureError if isinstance(exc, ResponseSignatureError) else type(exc)
        assert (refused, getattr(exc, "kind", None)) == (refused_by, kind)
        if isinstance(exc, ResponseSignatureError):
            assert exc.element in ("Response", "Assertion")
        if isinstance(exc, ResponseError):
            assert structure_problems(root) == exc.problems
        return
    assert refused_by is None, f"{name} was accepted"
    assert nameid(result.assertion) == kind


def test_corpus_comment_injection_keeps_the_whole_signed_nameid(corpus: Path) -> None:
    # crewjam's test injects the comment at run time into the stored (clean) response.
    path = corpus / ATTACKS_DIR / "crewjam-google-2016-comment-injection.decoded.xml"
    data = path.read_bytes().replace(b">ross@octolabs.io<", b">ross@octolabs<!-- and a comment -->.io<", 1)
    root = parse_untrusted(data, MESSAGE_LIMITS).getroot()
    result = verify_response(root, named_certificates(notes_of(path)))
    assert child(root, "saml:Assertion/saml:Subject/saml:NameID").text == "ross@octolabs"
    assert nameid(result.assertion) == "ross@octolabs.io"


@pytest.mark.parametrize(("name", "kind"), [
    ("simplesamlphp-saml2-signed-assertion-invalid-referenced-id.xml", SignatureError),
    ("simplesamlphp-saml2-signed-assertion-referenced-embedded.xml", ResponseError),
])
def test_corpus_bare_assertions_wrapped_in_a_response_are_still_refused(
    corpus: Path, name: str, kind: type[MetadataError]
) -> None:
    assertion = parse_untrusted((corpus / ATTACKS_DIR / name).read_bytes(), MESSAGE_LIMITS).getroot()
    response = etree.Element(f"{{{SAMLP}}}Response", ID="_wrapper", Version="2.0")
    response.append(assertion)
    root = received(etree.tostring(response))
    with pytest.raises(kind):
        verify_response(root, embedded_certificates(root), allow_sha1=True)


@cache
def encrypted_samples() -> list[tuple[str, str, str]]:
    """(file, test key, Issuer) for every response MANIFEST says decrypts with a test key."""
    samples = []
    for relative, notes in manifest().items():
        found = re.search(r"decrypts with _test-keys/([\w.-]+\.pem): Issuer=(\S+)", notes)
        if found:
            decoded = re.search(r"decoded copy: (\S+)", notes)
            samples.append((decoded.group(1) if decoded else relative, found.group(1), found.group(2)))
    return sorted(samples)


ENCRYPTED = encrypted_samples() if (CORPUS / "MANIFEST.tsv").is_file() else []


@pytest.mark.parametrize(("relative", "key", "issuer"), ENCRYPTED, ids=[Path(r).name for r, _, _ in ENCRYPTED])
def test_corpus_encrypted_samples_decrypt(corpus: Path, relative: str, key: str, issuer: str) -> None:
    root = parse_untrusted((corpus / relative).read_bytes(), PASTED_LIMITS).getroot()
    wrapper = next(root.iter(f"{{{SAML}}}EncryptedAssertion"))
    assertion = received(decrypt_assertion(wrapper, (corpus / "responses/_test-keys" / key).read_bytes()))
    assert assertion.tag == f"{{{SAML}}}Assertion"
    assert text_of(child(assertion, "saml:Issuer")) == issuer


def test_corpus_encrypted_samples_are_all_found(corpus: Path) -> None:
    named = {Path(r).name for r, _, _ in encrypted_samples()}
    encrypted = {p.name for p in corpus.glob("responses/**/*encrypted*.xml")}
    without_key = {"okta-flant-2016-signed-response-encrypted-assertion-retrievalmethod.xml",
                   "shibboleth-idp-astuart-2016-encrypted.decoded.xml",
                   "shibboleth-sphericalcowgroup-2016-encrypted-signed-assertion.xml",
                   "testshib-2014-encrypted-response.xml"}
    assert encrypted - named == without_key
    # Their keys are not shipped; with the wrong key each fails cleanly, after its layout
    # (including Okta's RetrievalMethod) was accepted.
    keys = sorted((corpus / "responses/_test-keys").glob("*-TEST-key.pem"))
    for path in sorted(p for p in corpus.glob("responses/**/*encrypted*.xml") if p.name in without_key):
        wrapper = next(parse_untrusted(path.read_bytes(), PASTED_LIMITS).iter(f"{{{SAML}}}EncryptedAssertion"))
        for key in keys:
            with pytest.raises(DecryptionError) as refused:
                decrypt_assertion(wrapper, key.read_bytes())
            assert refused.value.kind == "failed", path.name




@pytest.mark.parametrize("sign", ["none", "response"])
def test_an_error_status_may_come_without_an_assertion(idp_key: KeyPair, sign: SignWhat) -> None:
    result = verify_response(signed(idp_key, sign, status=(RESPONDER, None)), [idp_key.cert_der])
    assert result.assertion is None and result.response_signed == (sign == "response")


def test_a_success_status_without_an_assertion_is_still_refused(idp_key: KeyPair) -> None:
    tree = signed(idp_key, "none", status=(RESPONDER, None))
    code = tree.find("samlp:Status/samlp:StatusCode", NS)
    assert code is not None
    code.set("Value", "urn:oasis:names:tc:SAML:2.0:status:Success")
    assert [p.kind for p in structure_problems(tree)] == ["assertion-count"]


def test_a_refused_signature_names_its_element(idp_key: KeyPair) -> None:
    """SIG022 says which signature failed: the Assertion's here, the Response's when the Response is signed."""
    for sign, element in (("assertion", "Assertion"), ("response", "Response")):  # type: SignWhat, str
        root = signed(idp_key, sign)
        root.find(f".//{{{SAML}}}NameID").text = "mallory@example.com"  # type: ignore[union-attr]
        with pytest.raises(ResponseSignatureError) as refused:
            verify_response(root, [idp_key.cert_der])
        assert (refused.value.element, refused.value.kind) == (element, "invalid")
    root = signed(idp_key, "assertion")
    assert verify_response(root, [idp_key.cert_der]).assertion_signed
