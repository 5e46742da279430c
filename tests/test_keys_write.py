"""metadata.keys (key generation and the key folder) and metadata.write (IdP metadata)."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree

from metadata.errors import MetadataError
from metadata.keys import (
    KNOWN_TEST_KEYS,
    KeyFolder,
    KeyPair,
    KeyStoreError,
    generate_keypair,
    public_key_sha256,
    refuse_known,
)
from metadata.read import read_metadata
from metadata.saml import BINDING_POST, BINDING_REDIRECT, DS, EMAIL, MD, PERSISTENT
from metadata.schema import validate
from metadata.signing import verify
from metadata.write import Contact, MetadataWriteError, Organization, idp_metadata_xml, new_id, xs_datetime
from metadata.xml import parse_untrusted
from tests.factory import NOW
from tests.helpers import codes, inspect

# ---------------------------------------------------------------------------- generation


@pytest.mark.parametrize(("kind", "key_type", "size"), [
    ("rsa-2048", rsa.RSAPrivateKey, 2048),
    ("rsa-3072", rsa.RSAPrivateKey, 3072),
    ("rsa-4096", rsa.RSAPrivateKey, 4096),
    ("ec-p256", ec.EllipticCurvePrivateKey, 256),
])
def test_generate_keypair_kinds(kind: str, key_type: type, size: int) -> None:
    pair = generate_keypair("idp.test", kind=kind, days=30, now=NOW)  # type: ignore[arg-type]
    assert pair.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    key = serialization.load_pem_private_key(pair.key_pem, None)
    assert isinstance(key, key_type)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    assert key.key_size == size
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert cert.public_bytes(serialization.Encoding.DER) == pair.cert_der
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == "CN=idp.test"
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == NOW + timedelta(days=30)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(serialization.Encoding.DER, spki) == key.public_key().public_bytes(
        serialization.Encoding.DER, spki)


def test_generate_keypair_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="aware"):
        generate_keypair("x", now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown key kind"):
        generate_keypair("x", kind="rsa-1024", now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="days"):
        generate_keypair("x", days=0, now=NOW)


# ---------------------------------------------------------------------------- known keys

def _corpus_keys(corpus: Path) -> list[Path]:
    keys = sorted((corpus / "responses" / "_test-keys").glob("*TEST-key.pem"))
    assert len(keys) == 2
    return keys


def test_known_test_keys_are_exactly_the_published_ones(corpus: Path) -> None:
    # The corpus's test keys, and the key commit 7c73c27 published under tests/golden/ (git history
    # keeps it; its certificate, which is public, is kept here to check the list against).
    certificate = x509.load_pem_x509_certificate(
        (Path(__file__).parent / "fixtures" / "published-keys" / "golden-7c73c27.crt").read_bytes())
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    published = {public_key_sha256(p.read_bytes()) for p in _corpus_keys(corpus)} | {hashlib.sha256(spki).hexdigest()}
    assert published == KNOWN_TEST_KEYS


def test_known_test_keys_are_refused(corpus: Path) -> None:
    for path in _corpus_keys(corpus):
        with pytest.raises(KeyStoreError, match="publicly known test key"):
            refuse_known(KeyPair(path.read_bytes(), b"", b""))


def test_short_rsa_key_is_refused() -> None:
    key = rsa.generate_private_key(65537, 1024)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with pytest.raises(KeyStoreError, match="1024 bits"):
        refuse_known(KeyPair(pem, b"", b""))
    refuse_known(generate_keypair("fine", now=NOW))
    refuse_known(generate_keypair("fine", kind="ec-p256", now=NOW))


def test_known_key_in_a_folder_is_refused(tmp_path: Path, corpus: Path) -> None:
    key_pem = (corpus / "responses" / "_test-keys" / "gosaml2-saml-test-nope-sp-encryption-TEST-key.pem").read_bytes()
    cert_pem = (corpus / "responses" / "_test-keys" / "gosaml2-saml-test-nope-sp-encryption-cert.pem").read_bytes()
    _put(tmp_path, "signing", key_pem, cert_pem)
    with pytest.raises(KeyStoreError, match="publicly known test key") as info:
        KeyFolder(tmp_path).ensure("idp.test", now=NOW)
    assert str(tmp_path) in str(info.value)
    assert (tmp_path / "signing.key").read_bytes() == key_pem


# ---------------------------------------------------------------------------- key folder

def _put(folder: Path, stem: str, key_pem: bytes, cert_pem: bytes, mode: int = 0o600) -> None:
    (folder / f"{stem}.key").write_bytes(key_pem)
    (folder / f"{stem}.key").chmod(mode)
    (folder / f"{stem}.crt").write_bytes(cert_pem)


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} - {".lock"}


def test_keystore_error_is_metadata_and_os_error() -> None:
    assert issubclass(KeyStoreError, MetadataError)
    assert issubclass(KeyStoreError, OSError)


def test_ensure_generates_once_with_mode_0600(tmp_path: Path) -> None:
    folder = KeyFolder(tmp_path / "keys")
    first = folder.ensure("idp.test", now=NOW)
    key_file = tmp_path / "keys" / "signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes() == first.key_pem
    assert (tmp_path / "keys" / "signing.crt").read_bytes() == first.cert_pem
    assert _files(tmp_path / "keys") == {"signing.key", "signing.crt"}  # no temporary left behind
    second = KeyFolder(tmp_path / "keys").ensure("other.cn", "ec-p256", now=NOW + timedelta(days=1))
    assert second == first  # never regenerated, whatever is asked


def test_ensure_keeps_a_preexisting_key_byte_for_byte(tmp_path: Path) -> None:
    pair = generate_keypair("mine", now=NOW)
    _put(tmp_path, "signing", pair.key_pem, pair.cert_pem)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert KeyFolder(tmp_path).ensure("idp.test", now=NOW) == pair
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != ".lock"} == before


def test_key_left_without_certificate_gets_one(tmp_path: Path) -> None:
    pair = generate_keypair("mine", now=NOW)
    (tmp_path / "signing.key").write_bytes(pair.key_pem)
    (tmp_path / "signing.key").chmod(0o600)
    repaired = KeyFolder(tmp_path).ensure("idp.test", now=NOW)
    assert repaired.key_pem == pair.key_pem
    assert (tmp_path / "signing.key").read_bytes() == pair.key_pem
    assert x509.load_der_x509_certificate(repaired.cert_der).subject.rfc4514_string() == "CN=idp.test"


def test_certificate_without_key_is_not_replaced(tmp_path: Path) -> None:
    cert_pem = generate_keypair("orphan", now=NOW).cert_pem
    (tmp_path / "signing.crt").write_bytes(cert_pem)
    with pytest.raises(KeyStoreError, match="exists without its key"):
        KeyFolder(tmp_path).ensure("idp.test", now=NOW)
    assert _files(tmp_path) == {"signing.crt"}
    assert (tmp_path / "signing.crt").read_bytes() == cert_pem


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    pair = generate_keypair("mine", now=NOW)
    _put(tmp_path, "signing", pair.key_pem, pair.cert_pem, mode=0o644)
    with pytest.raises(KeyStoreError, match="open to group or others"):
        KeyFolder(tmp_path).current()


def test_certificate_of_another_key_is_refused(tmp_path: Path) -> None:
    _put(tmp_path, "signing", generate_keypair("a", now=NOW).key_pem, generate_keypair("b", now=NOW).cert_pem)
    with pytest.raises(KeyStoreError, match="not for this key"):
        KeyFolder(tmp_path).ensure("idp.test", now=NOW)


def test_empty_folder_has_no_current_key(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="there is no signing key"):
        KeyFolder(tmp_path).current()
    assert KeyFolder(tmp_path / "absent").all_certificates() == []


def test_invalid_key_name() -> None:
    with pytest.raises(ValueError, match="invalid key name"):
        KeyFolder("/tmp", name="../escape")


def test_concurrent_ensure_makes_one_key(tmp_path: Path) -> None:
    # Gunicorn workers start together; the flock makes one of them generate the key.
    with ThreadPoolExecutor(max_workers=6) as pool:
        pairs = list(pool.map(lambda _: KeyFolder(tmp_path).ensure("idp.test", now=NOW), range(6)))
    assert len({p.key_pem for p in pairs}) == 1
    assert _files(tmp_path) == {"signing.key", "signing.crt"}


def test_rotate_keeps_old_certificates_current_first(tmp_path: Path) -> None:
    folder = KeyFolder(tmp_path)
    first = folder.ensure("idp.test", now=NOW)
    second = folder.rotate("idp.test", now=NOW + timedelta(days=1))
    assert folder.current() == second != first
    assert folder.all_certificates() == [second.cert_der, first.cert_der]
    third = folder.rotate("idp.test", "ec-p256", now=NOW + timedelta(days=2))
    assert folder.all_certificates() == [third.cert_der, second.cert_der, first.cert_der]
    assert folder.ensure("idp.test", now=NOW) == third
    assert _files(tmp_path) == {"signing.key", "signing.crt", "signing-2.key", "signing-2.crt",
                                "signing-3.key", "signing-3.crt"}
    assert (tmp_path / "signing.key").read_bytes() == first.key_pem
    assert stat.S_IMODE((tmp_path / "signing-3.key").stat().st_mode) == 0o600


def test_rotate_on_an_empty_folder_creates_the_first_key(tmp_path: Path) -> None:
    pair = KeyFolder(tmp_path, name="sp").rotate("sp.test", now=NOW)
    assert _files(tmp_path) == {"sp.key", "sp.crt"}
    assert KeyFolder(tmp_path, name="sp").current() == pair


# -- failures while writing: nothing half-written is left ---------------------------------------


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder under /tmp that an unprivileged user can reach (pytest's tmp_path is 0700 to root)."""
    base = Path(tempfile.mkdtemp(prefix="keys-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for path in (base, *base.rglob("*")):
            path.chmod(0o700 if path.is_dir() else 0o600)
        shutil.rmtree(base)


def _unprivileged(action: Callable[[], KeyPair]) -> str:
    """Run `action` in a child process, as `nobody` when we are root (root ignores file modes).

    Returns ``ok <sha256 of the key>`` or ``<exception name>|<reason>|<message>``.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        os.close(read_end)
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            try:
                message = "ok " + hashlib.sha256(action().key_pem).hexdigest()
            except KeyStoreError as exc:
                message = f"KeyStoreError|{exc.reason}|{exc}"
            except BaseException as exc:
                message = f"{type(exc).__name__}||{exc}"
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_read_only_folder_gives_a_clear_error_and_no_files(open_folder: Path) -> None:
    keys = open_folder / "keys"
    keys.mkdir(mode=0o555)
    keys.chmod(0o555)
    outcome = _unprivileged(lambda: KeyFolder(keys).ensure("idp.test", now=NOW))
    kind, reason, message = outcome.split("|", 2)
    assert kind == "KeyStoreError"
    assert reason == "the folder is not writable"
    assert str(keys) in message
    assert list(keys.iterdir()) == []


def test_read_only_folder_with_a_key_still_serves_it(open_folder: Path) -> None:
    keys = open_folder / "keys"
    keys.mkdir()
    pair = KeyFolder(keys).ensure("idp.test", now=NOW)
    if os.geteuid() == 0:  # the child runs as nobody and must be able to read the files
        for path in keys.iterdir():
            os.chown(path, 65534, 65534)
    keys.chmod(0o555)
    outcome = _unprivileged(lambda: KeyFolder(keys).ensure("idp.test", now=NOW))
    assert outcome == "ok " + hashlib.sha256(pair.key_pem).hexdigest()


def _fail_in(folder: Path, real: Callable[..., object], error: int) -> Callable[..., object]:
    def write(fd: int, data: bytes) -> object:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
            raise OSError(error, os.strerror(error))
        return real(fd, data)
    return write


def test_full_disk_leaves_no_partial_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "write", _fail_in(tmp_path, os.write, errno.ENOSPC))
    with pytest.raises(KeyStoreError, match="the disk is full") as info:
        KeyFolder(tmp_path).ensure("idp.test", now=NOW)
    assert info.value.folder == tmp_path
    assert _files(tmp_path) == set()


def test_failure_before_the_certificate_is_placed_removes_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_link = os.link

    def link(src: str, dst: str) -> None:
        if str(dst).endswith(".crt"):
            raise OSError(errno.EIO, "Input/output error")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    with pytest.raises(KeyStoreError, match="Input/output error"):
        KeyFolder(tmp_path).ensure("idp.test", now=NOW)
    assert _files(tmp_path) == set()


# ---------------------------------------------------------------------------- metadata.write

ENTITY_ID = "https://idp.example.com/saml"
SSO = {BINDING_REDIRECT: "https://idp.example.com/sso/redirect", BINDING_POST: "https://idp.example.com/sso/post"}
SLO = {BINDING_REDIRECT: "https://idp.example.com/slo/redirect", BINDING_POST: "https://idp.example.com/slo/post"}


@pytest.fixture(scope="module")
def idp_key() -> KeyPair:
    return generate_keypair("idp.test", now=NOW - timedelta(days=30))


def _metadata(certificates: list[bytes], **options: object) -> etree._Element:
    return idp_metadata_xml(ENTITY_ID, SSO, SLO, certificates, [EMAIL, PERSISTENT],
                            options.pop("want", False), **options)  # type: ignore[arg-type]


def _reparsed(element: etree._Element) -> etree._ElementTree:
    return parse_untrusted(etree.tostring(element))


def test_metadata_layout(idp_key: KeyPair) -> None:
    old = generate_keypair("idp.test (old)", now=NOW - timedelta(days=400))
    root = _reparsed(_metadata([idp_key.cert_der, old.cert_der], valid_until=NOW + timedelta(days=7),
                               document_id="_m1")).getroot()
    assert root.tag == f"{{{MD}}}EntityDescriptor"
    assert root.get("entityID") == ENTITY_ID
    assert root.get("ID") == "_m1"
    assert root.get("validUntil") == "2026-06-08T12:00:00Z"
    idp = root.find(f"{{{MD}}}IDPSSODescriptor")
    assert idp is not None
    assert idp.get("protocolSupportEnumeration") == "urn:oasis:names:tc:SAML:2.0:protocol"
    assert idp.get("WantAuthnRequestsSigned") == "false"
    assert [etree.QName(c).localname for c in idp] == [
        "KeyDescriptor", "KeyDescriptor", "SingleLogoutService", "SingleLogoutService",
        "NameIDFormat", "NameIDFormat", "SingleSignOnService", "SingleSignOnService"]
    document = read_metadata(root)
    role = document.entities[0].idp
    assert role is not None
    assert [(k.use, [c.der for c in k.certificates]) for k in role.keys] == [
        ("signing", [idp_key.cert_der]), ("signing", [old.cert_der])]
    assert [(e.binding, e.location) for e in role.sso] == list(SSO.items())
    assert [(e.binding, e.location) for e in role.slo] == list(SLO.items())
    assert role.nameid_formats == (EMAIL, PERSISTENT)
    assert role.want_authn_requests_signed is False


@pytest.mark.parametrize("signed", [False, True])
def test_metadata_is_schema_valid_and_passes_the_validator(idp_key: KeyPair, signed: bool) -> None:
    from metadata.signing import sign

    element = _metadata([idp_key.cert_der])
    if signed:
        sign(element, idp_key.key_pem, idp_key.cert_pem, after=None)
        assert element[0].tag == f"{{{DS}}}Signature"
        verify(_reparsed(element).getroot(), [idp_key.cert_der])
    data = etree.tostring(element, xml_declaration=True, encoding="UTF-8")
    assert validate(parse_untrusted(data), "metadata") == []
    report = inspect(data, trusted=(idp_key.cert_der,) if signed else ())
    assert codes(report) == ({"MD013", "SIG001"} if signed else {"MD013", "SIG007"})


def test_metadata_during_a_rollover_has_no_errors_or_warnings(idp_key: KeyPair) -> None:
    new = generate_keypair("idp.test (next)", kind="ec-p256", now=NOW - timedelta(days=1))
    data = etree.tostring(_metadata([new.cert_der, idp_key.cert_der], want=True))
    assert validate(parse_untrusted(data), "metadata") == []
    assert [f for f in inspect(data).findings if f.severity.value != "info"] == []


def test_metadata_with_organization_and_contacts(idp_key: KeyPair) -> None:
    element = _metadata(
        [idp_key.cert_der],
        organization=Organization("Preflight", "SAML Preflight test IdP", "https://idp.example.com/"),
        contacts=[Contact("technical", given_name="Ops", email="ops@example.com"),
                  Contact("support", company="Example", email="mailto:help@example.com", telephone="+1 555 0100")],
    )
    tree = _reparsed(element)
    assert validate(tree, "metadata") == []
    emails = [e.text for e in tree.getroot().iter(f"{{{MD}}}EmailAddress")]
    assert emails == ["mailto:ops@example.com", "mailto:help@example.com"]
    assert [etree.QName(c).localname for c in tree.getroot()] == [
        "IDPSSODescriptor", "Organization", "ContactPerson", "ContactPerson"]
    assert codes(inspect(etree.tostring(element))) == {"MD013", "SIG007"}


def test_metadata_refuses_what_the_schema_cannot_hold(idp_key: KeyPair) -> None:
    with pytest.raises(MetadataWriteError, match="SingleSignOnService"):
        idp_metadata_xml(ENTITY_ID, {}, {}, [idp_key.cert_der], [], False)
    with pytest.raises(MetadataWriteError, match="certificate"):
        idp_metadata_xml(ENTITY_ID, SSO, {}, [], [], False)


def test_new_id_and_xs_datetime() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"_[0-9a-f]{40}", i) for i in ids)
    assert xs_datetime(datetime(2026, 6, 1, 14, 0, 5, 999, tzinfo=UTC)) == "2026-06-01T14:00:05Z"
    assert xs_datetime(datetime.fromisoformat("2026-06-01T16:00:05+02:00")) == "2026-06-01T14:00:05Z"
    with pytest.raises(ValueError, match="naive"):
        xs_datetime(datetime(2026, 6, 1))


def test_the_current_key_is_read_again_only_when_its_files_change(tmp_path: Path) -> None:
    folder = KeyFolder(tmp_path / "keys")
    first = folder.ensure("idp.test", now=NOW)
    assert folder.current() is folder.current()  # unchanged files: the pair read before
    other = generate_keypair("other.test", now=NOW)
    (folder.path / "signing.key").write_bytes(other.key_pem)  # rewritten in place, mode kept
    (folder.path / "signing.crt").write_bytes(other.cert_pem)
    assert folder.current().cert_der == other.cert_der != first.cert_der
    (folder.path / "signing.key").chmod(0o644)  # the permission check runs on every call
    with pytest.raises(KeyStoreError, match="open to group or others"):
        folder.current()
