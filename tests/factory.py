"""Test material made on the fly: keys, certificates, IdP metadata documents.

No private key is ever committed; keys are made per test process: one shared pair per kind
(:func:`session_keypair`, behind the conftest's session fixtures), or a fresh one where a test
needs a key nobody else has (:func:`make_keypair`). `python -m tests.factory demo`
rebuilds the bundled demo partner (only its public certificate and signed metadata are
kept).
"""

from __future__ import annotations

import base64
import functools
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from metadata import keys
from metadata.saml import DS, MD, SAML
from metadata.signing import sign

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class KeyPair(keys.KeyPair):
    """:class:`metadata.keys.KeyPair`, with the certificate as metadata publishes it."""

    @property
    def cert_b64(self) -> str:
        return base64.b64encode(self.cert_der).decode()


def _ours(pair: keys.KeyPair) -> KeyPair:
    return KeyPair(pair.key_pem, pair.cert_pem, pair.cert_der)


KEY_KINDS = {
    "idp-signing": "idp.test",
    "sp-signing": "sp.example.com",
    "sp-encryption": "sp-encryption.example.com",
    "metadata-signing": "metadata signer",
}
"""The kinds of key pair the tests share, and the common name of each one's certificate."""


@functools.cache
def session_keypair(kind: str) -> KeyPair:
    """The one RSA-2048 pair of `kind` (see KEY_KINDS) for this test process: made once, then shared.

    A test that needs a key different from every other one (an attacker's, a rollover's next key)
    calls :func:`make_keypair` instead.
    """
    if kind not in KEY_KINDS:
        raise ValueError(f"unknown key kind {kind!r}; expected one of {', '.join(KEY_KINDS)}")
    return make_keypair(KEY_KINDS[kind])


def make_keypair(
    cn: str = "idp.test",
    *,
    not_before: datetime = NOW - timedelta(days=365),
    not_after: datetime = NOW + timedelta(days=3650),
    bits: int = 2048,
    curve: ec.EllipticCurve | None = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
) -> KeyPair:
    """A new key and its self-signed certificate, valid from `not_before` to `not_after`.

    Made by :func:`metadata.keys.generate_keypair`, as the IdP makes its own, unless the test asks for
    what that function refuses to make on purpose: RSA under 2048 bits, a curve other than P-256, a
    certificate hash other than SHA-256, or a validity that is not a whole number of days.
    """
    kind: keys.KeyKind | None = None
    if curve is None and bits in (2048, 3072, 4096):
        kind = {2048: "rsa-2048", 3072: "rsa-3072", 4096: "rsa-4096"}[bits]  # type: ignore[assignment]
    elif isinstance(curve, ec.SECP256R1):
        kind = "ec-p256"
    span = not_after - not_before
    whole_days = span.days >= 1 and span == timedelta(days=span.days)
    if kind is not None and whole_days and (hash_algorithm is None or isinstance(hash_algorithm, hashes.SHA256)):
        return _ours(keys.generate_keypair(cn, kind=kind, days=span.days, now=not_before))
    return _unusual_keypair(cn, not_before, not_after, bits, curve, hash_algorithm or hashes.SHA256())


def _unusual_keypair(cn: str, not_before: datetime, not_after: datetime, bits: int,
                     curve: ec.EllipticCurve | None, hash_algorithm: hashes.HashAlgorithm) -> KeyPair:
    """A pair metadata.keys will not make (a weak key, another curve or hash): defects under test."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        ec.generate_private_key(curve) if curve else rsa.generate_private_key(65537, bits)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hash_algorithm)
    )
    return KeyPair(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        cert.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.DER),
    )


def install_keypair(folder: Path, pair: keys.KeyPair, name: str = "signing") -> None:
    """Put `pair` in a key folder as :class:`metadata.keys.KeyFolder` keeps it, so that an IdP
    started on `folder` uses it instead of generating a key of its own."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path = folder / f"{name}.key"
    if key_path.exists():
        return  # as KeyFolder does: a key in place is never replaced
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pair.key_pem)
    (folder / f"{name}.crt").write_bytes(pair.cert_pem)


_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
_SHA1_RSA = bytes.fromhex("06092a864886f70d010105")


def make_sha1_signed_keypair(cn: str = "legacy.idp.test") -> KeyPair:
    """A 2048-bit RSA certificate signed with SHA-1, as legacy IdPs still publish.

    `cryptography` no longer issues SHA-1 certificates, so one is issued with SHA-256 and its
    algorithm identifiers (of equal length) and signature are rewritten.
    """
    from cryptography.hazmat.primitives.asymmetric import padding

    pair = make_keypair(cn)
    key = serialization.load_pem_private_key(pair.key_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    cert = x509.load_der_x509_certificate(pair.cert_der)
    tbs = cert.tbs_certificate_bytes
    new_tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA)
    signature = key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA1())
    head, tail = pair.cert_der.split(tbs)
    tail = tail.replace(_SHA256_RSA, _SHA1_RSA)
    der = head + new_tbs + tail[: -len(signature)] + signature
    reloaded = x509.load_der_x509_certificate(der)
    return KeyPair(pair.key_pem, reloaded.public_bytes(serialization.Encoding.PEM), der)


@dataclass
class IdPSpec:
    """A knob for every part of an IdP's metadata that a check looks at."""

    entity_id: str = "https://idp.example.com/saml"
    sso: list[tuple[str, str]] = field(default_factory=lambda: [
        ("HTTP-Redirect", "https://idp.example.com/sso/redirect"),
        ("HTTP-POST", "https://idp.example.com/sso/post"),
    ])
    slo: list[tuple[str, str]] = field(default_factory=list)
    keys: list[tuple[str | None, str]] = field(default_factory=list)
    """(use, base64 certificate) pairs."""
    nameid_formats: list[str] = field(default_factory=lambda: [
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"])
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    """(Name, FriendlyName) pairs offered as saml:Attribute."""
    protocols: str = "urn:oasis:names:tc:SAML:2.0:protocol"
    want_signed_requests: bool | None = None
    valid_until: str | None = None
    entity_xml_id: str = "_m0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"


def idp_element(spec: IdPSpec) -> etree._Element:
    nsmap = {"md": MD, "ds": DS, "saml": SAML}
    entity = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap=nsmap)
    entity.set("entityID", spec.entity_id)
    entity.set("ID", spec.entity_xml_id)
    if spec.valid_until:
        entity.set("validUntil", spec.valid_until)
    idp = etree.SubElement(entity, f"{{{MD}}}IDPSSODescriptor")
    idp.set("protocolSupportEnumeration", spec.protocols)
    if spec.want_signed_requests is not None:
        idp.set("WantAuthnRequestsSigned", "true" if spec.want_signed_requests else "false")
    for use, b64 in spec.keys:
        kd = etree.SubElement(idp, f"{{{MD}}}KeyDescriptor")
        if use:
            kd.set("use", use)
        ki = etree.SubElement(kd, f"{{{DS}}}KeyInfo")
        etree.SubElement(etree.SubElement(ki, f"{{{DS}}}X509Data"), f"{{{DS}}}X509Certificate").text = b64
    for binding, location in spec.slo:
        e = etree.SubElement(idp, f"{{{MD}}}SingleLogoutService")
        e.set("Binding", f"urn:oasis:names:tc:SAML:2.0:bindings:{binding}")
        e.set("Location", location)
    for fmt in spec.nameid_formats:
        etree.SubElement(idp, f"{{{MD}}}NameIDFormat").text = fmt
    for binding, location in spec.sso:
        e = etree.SubElement(idp, f"{{{MD}}}SingleSignOnService")
        e.set("Binding", f"urn:oasis:names:tc:SAML:2.0:bindings:{binding}" if ":" not in binding else binding)
        e.set("Location", location)
    for name, friendly in spec.attributes:
        a = etree.SubElement(idp, f"{{{SAML}}}Attribute")
        a.set("Name", name)
        a.set("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
        if friendly:
            a.set("FriendlyName", friendly)
    return entity


def idp_metadata(spec: IdPSpec | None = None, *, signer: KeyPair | None = None,
                 signature_method: str | None = None, digest_method: str | None = None) -> bytes:
    """Serialized IdP metadata; signed by `signer` when given."""
    element = idp_element(spec or IdPSpec(keys=[("signing", make_keypair().cert_b64)]))
    # Indent first, then sign: whitespace added after signing would break the signature.
    element = etree.fromstring(etree.tostring(element, pretty_print=True))
    if signer is not None:
        kwargs = {}
        if signature_method:
            kwargs["signature_method"] = signature_method
        if digest_method:
            kwargs["digest_method"] = digest_method
        sign(element, signer.key_pem, signer.cert_pem, **kwargs)
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def build_demo(folder: Path) -> None:
    """The demo partner: an AD FS farm whose setup has the usual go-live problems."""
    now = datetime.now(UTC)
    current = make_keypair("ADFS Signing - sts.springfieldwater.example", not_before=now - timedelta(days=30),
                           not_after=now + timedelta(days=3 * 365))
    old = make_keypair("ADFS Signing - sts.springfieldwater.example (2023)", not_before=datetime(2023, 10, 1,
                       tzinfo=UTC), not_after=datetime(2026, 10, 1, tzinfo=UTC))
    signer = make_keypair("Springfield Water metadata signer", not_before=now - timedelta(days=30),
                          not_after=now + timedelta(days=5 * 365))
    claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
    spec = IdPSpec(
        entity_id="http://sts.springfieldwater.example/adfs/services/trust",
        sso=[("HTTP-Redirect", "https://sts.springfieldwater.example/adfs/ls/"),
             ("HTTP-POST", "https://sts.springfieldwater.example/adfs/ls/")],
        slo=[("HTTP-Redirect", "http://sts.springfieldwater.example/adfs/ls/")],
        keys=[("signing", current.cert_b64), ("signing", old.cert_b64)],
        nameid_formats=["urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"],
        attributes=[(f"{claims}/emailaddress", "E-Mail Address"), ("accountnumber", None),
                    ("LoginTypeId", None), (f"{claims}/name", "Name")],
        entity_xml_id="_5f2c9a7e0b4d4c1e8f3a6b9d2e7c0a1f4b8d3e6c",
    )
    (folder / "springfield-water-idp-metadata.xml").write_bytes(idp_metadata(spec, signer=signer))
    (folder / "metadata-signer.pem").write_bytes(signer.cert_pem)


if __name__ == "__main__":
    if sys.argv[1:] == ["demo"]:
        build_demo(Path(__file__).parents[1] / "validator" / "demo")
    else:
        sys.exit("usage: python -m tests.factory demo")
