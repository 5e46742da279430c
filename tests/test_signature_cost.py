"""metadata.signing: what a signature may make the verifier pay is capped before any key is tried.

SECURITY.md §7. An InclusiveNamespaces PrefixList of 4,000 prefixes took a 58 KB response to 50 s
of canonicalisation; one certificate listed 3,000 times in metadata was tried 3,000 times. Both are
now refused by shape (or de-duplicated) before xmlsec runs; real signatures still verify.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import xmlsec
from lxml import etree
from xmlsec import constants as xc

from metadata import signing
from metadata.keys import KeyPair, generate_keypair
from metadata.saml import DS
from metadata.signing import (
    ENVELOPED,
    EXC_C14N,
    MAX_INCLUSIVE_PREFIXES,
    MAX_TRUSTED_CERTIFICATES,
    SignatureError,
    sign,
    verify,
)
from metadata.xml import MESSAGE_LIMITS, parse_untrusted
from tests.factory import NOW

EC = "http://www.w3.org/2001/10/xml-exc-c14n#"


@pytest.fixture(scope="module")
def key() -> KeyPair:
    return generate_keypair("signer.test", kind="ec-p256", now=NOW - timedelta(days=1))


def document(declarations: str = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"') -> etree._Element:
    data = f'<doc xmlns="urn:test" ID="_d1" {declarations}><item>1</item><item>2</item></doc>'
    return parse_untrusted(data.encode(), MESSAGE_LIMITS).getroot()


def signed_with_prefixes(key: KeyPair, prefixes: str | None, declarations: str | None = None) -> etree._Element:
    """A document signed by xmlsec with an InclusiveNamespaces PrefixList, re-read by the one parser."""
    root = document() if declarations is None else document(declarations)
    signature = xmlsec.template.create(root, xc.TransformExclC14N, xc.TransformEcdsaSha256)
    root.insert(0, signature)
    reference = xmlsec.template.add_reference(signature, xc.TransformSha256, uri="#_d1")
    xmlsec.template.add_transform(reference, xc.TransformEnveloped)
    c14n = xmlsec.template.add_transform(reference, xc.TransformExclC14N)
    if prefixes is not None:
        xmlsec.template.transform_add_c14n_inclusive_namespaces(c14n, prefixes)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(key.key_pem, xc.KeyDataFormatPem, None)
    ctx.register_id(root, "ID")
    ctx.sign(signature)
    return parse_untrusted(etree.tostring(root), MESSAGE_LIMITS).getroot()


def signed(key: KeyPair) -> etree._Element:
    """A document signed by the project's signer, re-read by the one parser (as a partner's would be)."""
    root = document()
    sign(root, key.key_pem, key.cert_pem, signature_method=signing.ECDSA_SHA256)
    return parse_untrusted(etree.tostring(root), MESSAGE_LIMITS).getroot()


def profile_refusal(root: etree._Element, trusted: list[bytes]) -> str:
    with pytest.raises(SignatureError) as refused:
        verify(root, trusted)
    assert refused.value.kind == "profile"
    return refused.value.message


def test_a_short_prefix_list_of_declared_prefixes_verifies(key: KeyPair) -> None:
    verified = verify(signed_with_prefixes(key, "xs #default"), [key.cert_der])
    assert b"<item>1</item>" in verified.signed_bytes


def test_a_prefix_that_nothing_declares_is_ignored_as_exclusive_c14n_says(key: KeyPair) -> None:
    # Okta lists "xs" in its Response's PrefixList even when no AttributeValue declares it.
    verified = verify(signed_with_prefixes(key, "xs nowhere"), [key.cert_der])
    assert b"<item>1</item>" in verified.signed_bytes


def test_a_prefix_declared_inside_the_signed_element_counts(key: KeyPair) -> None:
    root = signed_with_prefixes(key, "q", declarations="")
    root = parse_untrusted(etree.tostring(root).replace(b"<item>1", b'<item xmlns:q="urn:q">1'), MESSAGE_LIMITS)
    with pytest.raises(SignatureError) as refused:  # the edit breaks the digest, not the profile
        verify(root.getroot(), [key.cert_der])
    assert refused.value.kind == "invalid"


def test_too_many_prefixes_are_refused_before_any_key_is_tried(key: KeyPair, monkeypatch: pytest.MonkeyPatch) -> None:
    declared = " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(MAX_INCLUSIVE_PREFIXES + 1))
    prefixes = " ".join(f"p{i}" for i in range(MAX_INCLUSIVE_PREFIXES + 1))
    root = signed_with_prefixes(key, prefixes, declarations=declared)
    tried: list[bytes] = []
    monkeypatch.setattr(signing, "_context", lambda der, profile: tried.append(der))
    message = profile_refusal(root, [key.cert_der])
    assert f"has {MAX_INCLUSIVE_PREFIXES + 1} prefixes; at most {MAX_INCLUSIVE_PREFIXES} are accepted" in message
    assert tried == []


@pytest.mark.parametrize(("prefixes", "said"), [
    ("xs xs", "names a prefix twice"),
    ("xs 1bad", "holds '1bad', which is not a prefix"),
])
def test_a_prefix_list_of_the_wrong_shape_is_refused(key: KeyPair, prefixes: str, said: str) -> None:
    assert said in profile_refusal(signed_with_prefixes(key, prefixes), [key.cert_der])


def _with_transforms(root: etree._Element, *algorithms: str) -> etree._Element:
    transforms = root.find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}Transforms")
    assert transforms is not None
    for transform in list(transforms):
        transforms.remove(transform)
    for algorithm in algorithms:
        etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=algorithm)
    return root


def test_a_reference_with_only_the_enveloped_transform_is_a_profile_refusal(key: KeyPair) -> None:
    # SAML Core §5.4.4 allows it, but its digest is over inclusive c14n: reported as the shape it
    # has (SIG023), not as a signature that does not verify (SIG022).
    root = signed(key)
    message = profile_refusal(_with_transforms(root, ENVELOPED), [key.cert_der])
    assert "only the enveloped-signature transform; exclusive c14n must follow it" in message


@pytest.mark.parametrize("transforms", [
    (ENVELOPED, EXC_C14N, EXC_C14N),
    (EXC_C14N, ENVELOPED),
    (ENVELOPED,) * 1000 + (EXC_C14N,),
])
def test_transforms_must_be_enveloped_then_exclusive_c14n_once_each(key: KeyPair, transforms: tuple[str, ...]) -> None:
    root = signed(key)
    assert "must be enveloped-signature then exclusive c14n, once each" in profile_refusal(
        _with_transforms(root, *transforms), [key.cert_der])


def test_a_certificate_listed_many_times_is_tried_once(key: KeyPair, monkeypatch: pytest.MonkeyPatch) -> None:
    root = signed(key)
    root.find("{urn:test}item").text = "tampered"  # type: ignore[union-attr]
    contexts: list[bytes] = []
    real = signing._context
    monkeypatch.setattr(signing, "_context", lambda der, profile: contexts.append(der) or real(der, profile))
    with pytest.raises(SignatureError) as refused:
        verify(root, [key.cert_der] * 3000)
    assert refused.value.kind == "invalid"
    assert "does not verify with the trusted certificate" in refused.value.message
    assert contexts == [key.cert_der]


def test_more_distinct_trusted_certificates_than_the_cap_are_refused_untried(
    key: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    others = [generate_keypair(f"k{i}.test", kind="ec-p256", now=NOW).cert_der for i in range(MAX_TRUSTED_CERTIFICATES)]
    root = signed(key)
    assert verify(root, [*others[1:], key.cert_der]).certificate == key.cert_der  # at the cap: verifies
    tried: list[bytes] = []
    monkeypatch.setattr(signing, "_context", lambda der, profile: tried.append(der))
    with pytest.raises(SignatureError) as refused:
        verify(root, [*others, key.cert_der])
    assert f"{MAX_TRUSTED_CERTIFICATES + 1} distinct trusted certificates" in refused.value.message
    assert f"at most {MAX_TRUSTED_CERTIFICATES} are tried" in refused.value.message
    assert tried == []
