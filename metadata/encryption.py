"""Decrypting a saml:EncryptedAssertion with the SP's own key, and nothing else (SECURITY.md §2).

SAML Core §2.3.4 and §2.2.4 (EncryptedElementType) put one xenc:EncryptedData in an
EncryptedAssertion, then any number of xenc:EncryptedKey; the session key travels either inside
EncryptedData/ds:KeyInfo (our IdP, ADFS, PingFederate, Shibboleth) or as a sibling
EncryptedKey that EncryptedData/ds:KeyInfo points at with a ds:RetrievalMethod (Okta).

python-xmlsec does the cryptography in two explicit steps — the session key with the SP's
RSA key, then the data with that session key — on copies stripped down to EncryptionMethod
and CipherData, so libxmlsec never resolves a KeyInfo, follows a reference or picks a key of
its own. The plaintext comes back as bytes and is parsed by the one parser
(:func:`metadata.xml.parse_untrusted`), never by libxmlsec's.
"""

from __future__ import annotations

import xmlsec
from lxml import etree
from xmlsec import constants as xc

from metadata.errors import MetadataError, UnsafeXML
from metadata.saml import DS, SAML, XENC, XENC11
from metadata.xml import MESSAGE_LIMITS, copied_limits, parse_untrusted

RSA_OAEP_MGF1P = XENC + "rsa-oaep-mgf1p"
RSA_OAEP = XENC11 + "rsa-oaep"
KEY_TRANSPORT_ALGORITHMS = frozenset({RSA_OAEP_MGF1P, RSA_OAEP})
"""RSA-OAEP only: RSA 1.5 (PKCS#1 v1.5) is open to Bleichenbacher's padding oracle."""
DATA_ALGORITHMS = frozenset(
    {XENC11 + f"aes{n}-gcm" for n in (128, 192, 256)} | {XENC + f"aes{n}-cbc" for n in (128, 192, 256)}
)
"""AES-GCM and AES-CBC; 3DES and anything else is refused."""

ELEMENT_TYPE = XENC + "Element"
_ENCRYPTED_ASSERTION = f"{{{SAML}}}EncryptedAssertion"
_ENCRYPTED_DATA = f"{{{XENC}}}EncryptedData"
_ENCRYPTED_KEY = f"{{{XENC}}}EncryptedKey"
_ENCRYPTION_METHOD = f"{{{XENC}}}EncryptionMethod"
_CIPHER_DATA = f"{{{XENC}}}CipherData"
_KEY_INFO = f"{{{DS}}}KeyInfo"
_RETRIEVAL_METHOD = f"{{{DS}}}RetrievalMethod"


class DecryptionError(MetadataError, ValueError):
    """An encrypted assertion that is refused or cannot be decrypted.

    `kind` is one of: ``no-key``, ``algorithm``, ``retrieval``, ``layout``, ``failed``,
    ``too-large``.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def decrypt_assertion(encrypted_assertion: etree._Element, sp_key_pem: bytes) -> bytes:
    """The saml:Assertion inside `encrypted_assertion`, decrypted with `sp_key_pem` only.

    Returns the plaintext bytes, already checked to parse (with ``MESSAGE_LIMITS``) into a
    saml:Assertion; the caller parses them again and verifies the assertion's own signature.
    Raises :class:`DecryptionError`.
    """
    if not sp_key_pem:
        raise DecryptionError("no-key", "the assertion is encrypted and no SP private key was given to decrypt it")
    if encrypted_assertion.tag != _ENCRYPTED_ASSERTION:
        raise DecryptionError("layout", f"expected saml:EncryptedAssertion, got {etree.QName(encrypted_assertion)}")
    size = len(etree.tostring(encrypted_assertion))
    if size > MESSAGE_LIMITS.max_bytes:
        raise DecryptionError(
            "too-large", f"the encrypted assertion is {size:,} bytes; the limit is {MESSAGE_LIMITS.max_bytes:,}"
        )
    _refuse_remote_references(encrypted_assertion)
    data, key = _layout(encrypted_assertion)
    _require_algorithm(data, DATA_ALGORITHMS, "data encryption")
    _require_algorithm(key, KEY_TRANSPORT_ALGORITHMS, "key transport")

    try:
        rsa_key = xmlsec.Key.from_memory(sp_key_pem, xc.KeyDataFormatPem, None)
    except xmlsec.Error as exc:
        raise DecryptionError("no-key", f"the SP private key cannot be read: {exc}") from exc
    session_key = _decrypt(key, rsa_key)
    try:
        aes_key = xmlsec.Key.from_binary_data(xc.KeyDataAes, session_key)
    except xmlsec.Error as exc:
        raise DecryptionError("failed", f"the transported session key is not an AES key: {exc}") from exc
    plaintext = _decrypt(data, aes_key)
    if len(plaintext) > MESSAGE_LIMITS.max_bytes:
        raise DecryptionError(
            "too-large",
            f"the decrypted assertion is {len(plaintext):,} bytes; the limit is {MESSAGE_LIMITS.max_bytes:,}",
        )
    try:
        root = parse_untrusted(plaintext, copied_limits(MESSAGE_LIMITS)).getroot()
    except UnsafeXML as exc:
        raise DecryptionError("failed", f"the decrypted assertion is refused: {exc.message}") from exc
    if root.tag != f"{{{SAML}}}Assertion":
        raise DecryptionError("layout", f"the decrypted element is {etree.QName(root)}, not saml:Assertion")
    return plaintext


def _refuse_remote_references(encrypted_assertion: etree._Element) -> None:
    """No reference may leave the document: RetrievalMethod only to a local ``#id``, no
    CipherReference at all (both would make an XML-Encryption processor fetch a URI)."""
    for retrieval in encrypted_assertion.iter(_RETRIEVAL_METHOD):
        uri = retrieval.get("URI", "")
        has_transforms = next(retrieval.iterchildren(etree.Element), None) is not None
        if not uri.startswith("#") or len(uri) < 2 or has_transforms:
            raise DecryptionError(
                "retrieval",
                f"a ds:RetrievalMethod points at {uri!r}; only a same-document '#id' without transforms is followed",
            )
    if next(encrypted_assertion.iter(f"{{{XENC}}}CipherReference"), None) is not None:
        raise DecryptionError("retrieval", "an xenc:CipherReference is refused; the ciphertext must be inline")


def _layout(encrypted_assertion: etree._Element) -> tuple[etree._Element, etree._Element]:
    """The EncryptedData and the one EncryptedKey that carries its session key."""
    data, siblings = _data_and_sibling_keys(encrypted_assertion)
    _require_element_type(data)
    key = _session_key(data, siblings)
    _require_key_names_data(key, data)
    return data, key


def _data_and_sibling_keys(encrypted_assertion: etree._Element) -> tuple[etree._Element, list[etree._Element]]:
    """The one EncryptedData, and the EncryptedKey elements that follow it."""
    children = list(encrypted_assertion.iterchildren(etree.Element))
    datas = [c for c in children if c.tag == _ENCRYPTED_DATA]
    siblings = [c for c in children if c.tag == _ENCRYPTED_KEY]
    others = [etree.QName(c).localname for c in children if c.tag not in (_ENCRYPTED_DATA, _ENCRYPTED_KEY)]
    # SAML Core §2.2.4: EncryptedElementType is one EncryptedData, then EncryptedKey*.
    if len(datas) != 1 or others or children[0] is not datas[0]:
        raise DecryptionError(
            "layout",
            "saml:EncryptedAssertion must hold one xenc:EncryptedData followed only by xenc:EncryptedKey elements; "
            f"it holds {', '.join(etree.QName(c).localname for c in children) or 'nothing'}",
        )
    return datas[0], siblings


def _require_element_type(data: etree._Element) -> None:
    # SAML Core §6.1: Type, if present, is xenc#Element.
    if data.get("Type") not in (None, ELEMENT_TYPE):
        raise DecryptionError("layout", f"the EncryptedData Type is {data.get('Type')!r}; it must be {ELEMENT_TYPE!r}")


def _session_key(data: etree._Element, siblings: list[etree._Element]) -> etree._Element:
    """The EncryptedKey that EncryptedData/KeyInfo designates: inside it, by a RetrievalMethod to
    a sibling, or, when KeyInfo names none, the one sibling there is."""
    key_info = data.find(_KEY_INFO)
    inline = key_info.findall(_ENCRYPTED_KEY) if key_info is not None else []
    retrievals = key_info.findall(_RETRIEVAL_METHOD) if key_info is not None else []
    if inline:
        return _inline_key(inline, retrievals, siblings)
    if retrievals:
        return _retrieved_key(retrievals, siblings)
    if len(siblings) == 1:
        return siblings[0]  # no reference at all: the one EncryptedKey beside the data
    raise DecryptionError(
        "layout", f"no EncryptedKey is designated: KeyInfo names none and {len(siblings)} sit beside the data"
    )


def _inline_key(
    inline: list[etree._Element], retrievals: list[etree._Element], siblings: list[etree._Element]
) -> etree._Element:
    if len(inline) > 1 or retrievals or siblings:
        raise DecryptionError(
            "layout",
            f"the session key is ambiguous: {len(inline)} EncryptedKey in KeyInfo, {len(retrievals)} "
            f"RetrievalMethod, {len(siblings)} sibling EncryptedKey; exactly one is accepted",
        )
    return inline[0]


def _retrieved_key(retrievals: list[etree._Element], siblings: list[etree._Element]) -> etree._Element:
    if len(retrievals) > 1:
        raise DecryptionError("layout", f"EncryptedData/KeyInfo holds {len(retrievals)} RetrievalMethods; one "
                              "is accepted")
    target = retrievals[0].get("URI", "")[1:]
    matches = [k for k in siblings if k.get("Id") == target]
    if len(matches) != 1:
        raise DecryptionError(
            "retrieval",
            f"the RetrievalMethod points at '#{target}', which is not an xenc:EncryptedKey beside the "
            "EncryptedData in this EncryptedAssertion",
        )
    return matches[0]


def _require_key_names_data(key: etree._Element, data: etree._Element) -> None:
    """An EncryptedKey with a ReferenceList must list the EncryptedData (when it has an Id)."""
    data_id = data.get("Id")
    references = [r.get("URI", "") for r in key.iterfind(f"{{{XENC}}}ReferenceList/{{{XENC}}}DataReference")]
    if references and data_id and f"#{data_id}" not in references:
        raise DecryptionError("layout", f"the EncryptedKey's ReferenceList does not name EncryptedData '#{data_id}'")


def _require_algorithm(element: etree._Element, allowed: frozenset[str], what: str) -> None:
    method = element.find(_ENCRYPTION_METHOD)
    algorithm = method.get("Algorithm", "") if method is not None else ""
    if algorithm not in allowed:
        raise DecryptionError("algorithm", f"the {what} algorithm {algorithm or '(none)'!r} is not allowed")


def _decrypt(encrypted: etree._Element, key: xmlsec.Key) -> bytes:
    """Decrypt a copy of `encrypted` holding only its EncryptionMethod and CipherData, with `key`.

    Without KeyInfo libxmlsec cannot look for a key; without Type it hands back bytes instead of
    parsing the plaintext into the tree itself.
    """
    # Copied by the one parser from bytes, not element by element here: copying (and lxml's
    # c14n of a sub-element, which copies too) interns the partner's element names in this
    # thread's dictionary for good (metadata.xml._ParsingThread). Serialised whole, the element
    # is never longer than the encrypted assertion, whose size was checked.
    name = etree.QName(encrypted).localname
    try:
        bare = parse_untrusted(etree.tostring(encrypted, with_tail=False), copied_limits(MESSAGE_LIMITS)).getroot()
    except UnsafeXML as exc:  # cannot happen for what the size check let through; never escapes
        raise DecryptionError("too-large", f"the {name} cannot be copied for decryption: {exc}") from None
    bare.attrib.clear()  # Type too: without it xmlsec hands back bytes
    for child in list(bare):
        if child.tag not in (_ENCRYPTION_METHOD, _CIPHER_DATA):
            bare.remove(child)
    for tag in (_ENCRYPTION_METHOD, _CIPHER_DATA):
        if bare.find(tag) is None:
            raise DecryptionError("layout", f"{name} has no xenc:{tag.split('}')[1]}")
    ctx = xmlsec.EncryptionContext()
    ctx.key = key
    try:
        result = ctx.decrypt(bare)
    except xmlsec.Error as exc:
        what = "session key" if encrypted.tag == _ENCRYPTED_KEY else "assertion"
        raise DecryptionError("failed", f"the {what} cannot be decrypted with this SP key: {exc}") from exc
    if not isinstance(result, bytes) or not result:
        raise DecryptionError("failed", "decryption produced nothing")
    return result
