"""The session's fixtures and hooks.

- ``corpus``: the real third-party corpus in ``tests/corpus`` (tests/corpus/SOURCES.md). It is part
  of the repository, so a missing corpus is a failure, never a skip.
- One key pair per kind for the whole session (``idp_signing_key``, ``sp_signing_key``,
  ``sp_encryption_key``, ``metadata_signing_key``), from :func:`tests.factory.session_keypair`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factory import KeyPair, session_keypair

TESTS = Path(__file__).resolve().parent
CORPUS = TESTS / "corpus"


def corpus_missing() -> str | None:
    """Why the corpus cannot be used, or None when it is there."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return (f"the test corpus is missing: {CORPUS}/MANIFEST.tsv not found. It is part of the repository "
                "(tests/corpus/SOURCES.md); restore it with `git checkout -- tests/corpus`")
    return None


@pytest.fixture(scope="session")
def corpus() -> Path:
    problem = corpus_missing()
    if problem:
        pytest.fail(problem, pytrace=False)
    return CORPUS


# ---- one key pair per kind, made once per session ---------------------------------------------

@pytest.fixture(scope="session")
def idp_signing_key() -> KeyPair:
    """The test IdP's signing key (RSA-2048), shared by every test that needs "an IdP key"."""
    return session_keypair("idp-signing")


@pytest.fixture(scope="session")
def sp_signing_key() -> KeyPair:
    """An SP's AuthnRequest signing key (RSA-2048)."""
    return session_keypair("sp-signing")


@pytest.fixture(scope="session")
def sp_encryption_key() -> KeyPair:
    """An SP's encryption key (RSA-2048): assertions are encrypted to its certificate."""
    return session_keypair("sp-encryption")


@pytest.fixture(scope="session")
def metadata_signing_key() -> KeyPair:
    """The key that signs IdP metadata documents (a federation operator's, not the IdP's)."""
    return session_keypair("metadata-signing")


# ---- services from the system -----------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server for the whole session (skips with a reason when it is not installed)."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
INSTALL_HINT = "apt-get install chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: {INSTALL_HINT}")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install "
                                         "-e '.[test]'")
    with playwright_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        except playwright_api.Error as exc:
            pytest.skip(f"playwright cannot start {CHROMIUM} ({INSTALL_HINT}): {str(exc).splitlines()[0]}")
        try:
            yield chromium
        finally:
            chromium.close()
