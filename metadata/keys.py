"""Signing keys of the test IdP (and of the test SP): generated here, kept in a key folder.

A key is generated on first use, written with mode 0600 and never overwritten (DESIGN.md,
"State"; SECURITY.md §5). A folder holds one key *name* (``signing`` by default) as
``<name>.key`` (PKCS#8 PEM, unencrypted) beside ``<name>.crt`` (PEM); each rotation adds
``<name>-2``, ``<name>-3`` …, and the highest number is the current key. Old keys stay
listed so that metadata keeps publishing their certificates during a rollover.

Files are created by writing a temporary file in the same folder (``O_CREAT | O_EXCL``,
fsync) and hard-linking it into place, which fails rather than replaces when the name
exists. The key is linked before its certificate, so a pair is complete — and read — only
once its certificate is there. Writers serialise on an ``flock`` of ``<folder>/.lock``
(gunicorn workers all start at once); readers need no lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from metadata.errors import MetadataError

KeyKind = Literal["rsa-2048", "rsa-3072", "rsa-4096", "ec-p256"]
_RSA_BITS = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}

# SHA-256 of the SubjectPublicKeyInfo DER of private keys that anyone holds: those published with
# open-source SAML test suites (tests/corpus/responses/_test-keys/), and one this project's own
# history published (commit 7c73c27, tests/golden/TEST-ONLY-idp-signing.key, removed since).
KNOWN_TEST_KEYS = {
    # crewjam-localhost-sp-TEST-key.pem (crewjam/saml testdata/sp_key.pem, RSA-1024)
    "785f5f125919364b7473b742260b28f6b120e1f73faa84e914b2a2445c0d348c",
    # gosaml2-saml-test-nope-sp-encryption-TEST-key.pem
    # (russellhaering/gosaml2 providertests/testdata/onelogin/sp.encryption.key, RSA-2048)
    "9e919bfc5e45e83b3b766ea9739a44e4919b3b7b696bb9c6d0f300620ff35075",
    # tests/golden/TEST-ONLY-idp-signing.key of commit 7c73c27 (RSA-2048)
    "b43d7f2e34e62bb4f6a2c25ee10e663f6c8e7594cfaa37154094d9172ebfed17",
}
MIN_RSA_BITS = 2048


class KeyStoreError(MetadataError, OSError):
    """A key that cannot be generated, stored, read or used.

    `folder` is the key folder (None for a key refused outside one); `reason` says why.
    """

    def __init__(self, message: str, *, folder: Path | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.folder = folder
        self.reason = reason or message


@dataclass(frozen=True)
class KeyPair:
    key_pem: bytes
    """The private key, PKCS#8 PEM, unencrypted."""
    cert_pem: bytes
    """The self-signed certificate, PEM."""
    cert_der: bytes
    """The same certificate, DER (what metadata publishes, base64-encoded)."""


def generate_keypair(common_name: str, *, kind: KeyKind = "rsa-2048", days: int = 3650, now: datetime) -> KeyPair:
    """A new key of `kind` and a self-signed certificate for it, signed with SHA-256.

    The certificate is valid from `now` for `days` days. In SAML it only carries the public
    key: trust comes from metadata, not from a CA (SAML Metadata §2.4.1.1).
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "ec-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind in _RSA_BITS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[kind])
    else:
        raise ValueError(f"unknown key kind {kind!r}; expected one of rsa-2048, rsa-3072, rsa-4096, ec-p256")
    cert = _self_signed(key, common_name, days, now)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyPair(key_pem, cert.public_bytes(serialization.Encoding.PEM),
                   cert.public_bytes(serialization.Encoding.DER))


def _self_signed(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, common_name: str, days: int, now: datetime
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def public_key_sha256(key_pem: bytes) -> str:
    """Hex SHA-256 of the SubjectPublicKeyInfo DER of the private key in `key_pem`."""
    return _spki_sha256(serialization.load_pem_private_key(key_pem, password=None))


def _stamp(status: os.stat_result) -> tuple[int, ...]:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def _spki_sha256(key: PrivateKeyTypes) -> str:
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def refuse_known(keypair: KeyPair, key: PrivateKeyTypes | None = None) -> None:
    """Raise :class:`KeyStoreError` for a publicly known test key or an RSA key under 2048 bits.

    A key published with a test suite signs for anyone (SECURITY.md §5: "a known or test
    key is refused"). `key` is the already parsed private key, when the caller has it.
    """
    if key is None:
        try:
            key = serialization.load_pem_private_key(keypair.key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(f"the private key cannot be read: {exc}", reason="unreadable") from exc
    if _spki_sha256(key) in KNOWN_TEST_KEYS:
        raise KeyStoreError(
            "this key is a publicly known test key (published with an open-source SAML test suite); "
            "anyone can sign with it — generate a new one", reason="known test key")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise KeyStoreError(
            f"this RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are required", reason="weak key")


def _load(key_pem: bytes, cert_pem: bytes, where: Path) -> KeyPair:
    try:
        return _checked_pair(key_pem, cert_pem)
    except KeyStoreError as exc:
        raise KeyStoreError(f"{where}: {exc}", folder=where.parent, reason=exc.reason) from exc


@functools.lru_cache(maxsize=16)
def _checked_pair(key_pem: bytes, cert_pem: bytes) -> KeyPair:
    # Parsing an RSA private key costs ~50 ms (cryptography checks its consistency every
    # time); the IdP reads its key for every response, so a pair is checked once per content.
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert = x509.load_pem_x509_certificate(cert_pem)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(f"cannot be read: {exc}", reason="unreadable") from exc
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != cert.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise KeyStoreError("the certificate is not for this key", reason="mismatch")
    pair = KeyPair(key_pem, cert_pem, cert.public_bytes(serialization.Encoding.DER))
    refuse_known(pair, key)
    return pair


class KeyFolder:
    """The keys of one `name` in `path`; see the module docstring for the layout."""

    def __init__(self, path: str | os.PathLike[str], name: str = "signing") -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError(f"invalid key name {name!r}")
        self.path = Path(path)
        self.name = name
        self._stem = re.compile(rf"{re.escape(name)}(?:-([2-9]|[1-9][0-9]+))?")
        self._loaded: dict[str, tuple[tuple[int, ...], KeyPair]] = {}
        """stem → (the files' stat stamp, the pair read from them): the IdP asks for its key on every
        response, and reading and checking the PEM files cost it 0.2 ms each time."""

    def ensure(self, common_name: str, kind: KeyKind = "rsa-2048", *, now: datetime) -> KeyPair:
        """The current key, generated (as `kind`, for `common_name`) only when there is none.

        An existing key is never replaced, whatever its kind.
        """
        if self._complete():
            return self.current()
        with self._locked():
            # Re-check under the lock: another worker may have created it, or a crash may
            # have left a key whose certificate was never linked (it is re-issued).
            if not self._complete():
                base = self.path / f"{self.name}.key"
                if base.exists():
                    self._repair(self.name, common_name, now)
                else:
                    self._create(self.name, generate_keypair(common_name, kind=kind, now=now))
        return self.current()

    def rotate(self, common_name: str, kind: KeyKind = "rsa-2048", *, now: datetime) -> KeyPair:
        """Add a new key ``<name>-<n>`` and make it current; the old keys stay listed."""
        with self._locked():
            taken = [n for n, _ in self._stems(with_cert=False)]
            stem = f"{self.name}-{max(taken) + 1}" if taken else self.name
            self._create(stem, generate_keypair(common_name, kind=kind, now=now))
        return self.current()

    def current(self) -> KeyPair:
        """The key with the highest number; :class:`KeyStoreError` when there is none."""
        stems = self._stems(with_cert=True)
        if not stems:
            raise self._error(f"there is no {self.name} key", "no key")
        return self._read(stems[0][1])

    def all_certificates(self) -> list[bytes]:
        """DER of every complete key's certificate, the current one first, then newest to oldest."""
        return [self._read(stem).cert_der for _, stem in self._stems(with_cert=True)]

    # -- internals ---------------------------------------------------------------------------

    def _error(self, reason: str, short: str) -> KeyStoreError:
        return KeyStoreError(f"key folder {self.path}: {reason}", folder=self.path, reason=short)

    def _stems(self, *, with_cert: bool) -> list[tuple[int, str]]:
        """(number, stem) of the keys present, highest number first."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error(f"cannot be listed: {exc.strerror or exc}", "unreadable") from exc
        present = set(names)
        found = []
        for file in names:
            stem, dot, ext = file.rpartition(".")
            match = self._stem.fullmatch(stem) if dot and ext == "key" else None
            if match and (not with_cert or f"{stem}.crt" in present):
                found.append((int(match.group(1) or 1), stem))
        return sorted(found, reverse=True)

    def _complete(self) -> bool:
        return bool(self._stems(with_cert=True))

    def _read(self, stem: str) -> KeyPair:
        """The pair `stem` names, read again only when either file changed (a new inode, size, mtime
        or ctime: a rotation, a rewrite or a chmod); the permission check runs on every call."""
        key_path, cert_path = self.path / f"{stem}.key", self.path / f"{stem}.crt"
        try:
            key_stat, cert_stat = os.stat(key_path), os.stat(cert_path)
        except OSError as exc:
            raise self._error(f"cannot read {stem}: {exc.strerror or exc}", "unreadable") from exc
        mode = key_stat.st_mode
        if mode & 0o077:
            raise self._error(f"{key_path.name} is open to group or others (mode {mode & 0o777:04o}); "
                              f"run chmod 600 {key_path}", "permissions")
        stamp = (*_stamp(key_stat), *_stamp(cert_stat))
        cached = self._loaded.get(stem)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            key_pem, cert_pem = key_path.read_bytes(), cert_path.read_bytes()
        except OSError as exc:
            raise self._error(f"cannot read {stem}: {exc.strerror or exc}", "unreadable") from exc
        pair = _load(key_pem, cert_pem, key_path)
        self._loaded[stem] = (stamp, pair)
        return pair

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise self._write_error(exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write_error(self, exc: OSError) -> KeyStoreError:
        reason = {
            errno.EACCES: "the folder is not writable",
            errno.EPERM: "the folder is not writable",
            errno.EROFS: "the folder is on a read-only file system",
            errno.ENOSPC: "the disk is full",
            errno.EDQUOT: "the disk quota is exhausted",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        return self._error(f"cannot store a key: {reason}", reason)

    def _create(self, stem: str, pair: KeyPair) -> None:
        refuse_known(pair)
        self._place(stem, pair.key_pem, pair.cert_pem)

    def _repair(self, stem: str, common_name: str, now: datetime) -> None:
        """Issue a certificate for a key left without one (a crash between the two links)."""
        key_path = self.path / f"{stem}.key"
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise self._error(f"{key_path.name} has no certificate and cannot be read: {exc}", "unreadable") from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise self._error(f"{key_path.name} is neither an RSA nor an EC key", "unsupported key")
        cert = _self_signed(key, common_name, 3650, now)
        self._place(stem, None, cert.public_bytes(serialization.Encoding.PEM))

    def _place(self, stem: str, key_pem: bytes | None, cert_pem: bytes) -> None:
        key_path, cert_path = self.path / f"{stem}.key", self.path / f"{stem}.crt"
        if key_pem is not None and cert_path.exists():
            raise self._error(f"{cert_path.name} exists without its key; move it away first", "orphan certificate")
        temporaries: list[Path] = []
        linked_key = False
        try:
            if key_pem is not None:
                temporaries.append(self._write_temporary(key_path.name, key_pem, 0o600))
            temporaries.append(self._write_temporary(cert_path.name, cert_pem, 0o644))
            if key_pem is not None:
                os.link(temporaries[0], key_path)  # fails, never replaces, when the key exists
                linked_key = True
            os.link(temporaries[-1], cert_path)
            _fsync_folder(self.path)
        except OSError as exc:
            if linked_key and not cert_path.exists():
                # Readers skip a key without its certificate and we hold the lock: no one has
                # seen this key, so it goes rather than linger half-stored.
                with contextlib.suppress(OSError):
                    key_path.unlink()
            if isinstance(exc, FileExistsError):
                raise self._error(f"{Path(exc.filename2 or stem).name} appeared meanwhile; nothing was replaced",
                                  "exists") from exc
            raise self._write_error(exc) from exc
        finally:
            for temporary in temporaries:
                with contextlib.suppress(OSError):
                    temporary.unlink()

    def _write_temporary(self, final_name: str, data: bytes, mode: int) -> Path:
        temporary = self.path / f".{final_name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)  # exactly this mode, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        os.close(fd)
        return temporary


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
