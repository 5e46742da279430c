"""API tokens: a secret shown once and stored only as its digest, found by that digest, refused
once revoked, read or write over some billers or all; and ``saml-validate token``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from metadata.store import SQLiteStore
from validator import cli_access
from validator.auth.tokens import (
    ApiToken,
    TokenError,
    bearer,
    create_token,
    get_token,
    list_tokens,
    principal_for,
    revoke_token,
    well_formed_secret,
)

NOW = datetime(2026, 12, 6, 9, 0, 0, 500_000, tzinfo=UTC)
URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class CountingStore(SQLiteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gets = 0

    def get(self, ns: str, key: str) -> bytes | None:
        self.gets += 1
        return super().get(ns, key)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    opened = CountingStore(tmp_path / "s.sqlite3")
    yield opened
    opened.close()


def make(store: SQLiteStore, name: str = "ci", billers: frozenset[str] | None = frozenset({"B-1"}),
         access: str = "read") -> tuple[ApiToken, str]:
    return create_token(store, name, billers=billers, access=access, created_by="staff:ana@example.com",  # type: ignore[arg-type]
                        now=NOW)


# ---- creating ----------------------------------------------------------------------------------

def test_a_token_is_a_prefixed_256_bit_secret_of_which_only_the_digest_is_kept(
        store: CountingStore, tmp_path: Path) -> None:
    token, secret = make(store, billers=frozenset({"B-1", "B_2"}), access="write")
    assert token == ApiToken("ci", frozenset({"B-1", "B_2"}), "write", "2026-12-06T09:00:00Z",
                             "staff:ana@example.com", None)
    assert secret.startswith("spf_") and len(secret) == 47 and set(secret[4:]) <= URLSAFE
    assert well_formed_secret(secret)
    store.close()
    kept = (tmp_path / "s.sqlite3").read_bytes()
    assert secret.encode() not in kept and secret[4:].encode() not in kept
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in kept


def test_every_token_gets_its_own_secret(store: CountingStore) -> None:
    secrets = {make(store, name=f"t{n}")[1] for n in range(20)}
    assert len(secrets) == 20


def test_a_taken_name_is_refused_and_the_first_token_untouched(store: CountingStore) -> None:
    first, secret = make(store, access="read")
    with pytest.raises(TokenError, match="'ci' exists already"):
        make(store, access="write", billers=None)
    assert list_tokens(store) == [first]
    assert bearer(store, secret, now=NOW) == first
    assert len(store.keys("auth.token-digests")) == 1


def test_a_creation_that_loses_the_race_for_its_name_leaves_no_working_secret(tmp_path: Path) -> None:
    class Blind(CountingStore):
        def get(self, ns: str, key: str) -> bytes | None:
            return None if ns == "auth.tokens" else super().get(ns, key)  # the rival landed just after

    store = CountingStore(tmp_path / "s.sqlite3")
    first, secret = make(store)
    blind = Blind(tmp_path / "s.sqlite3")
    with pytest.raises(TokenError, match="exists already"):
        make(blind, billers=None, access="write")
    blind.close()
    assert store.keys("auth.token-digests") == [hashlib.sha256(secret.encode()).hexdigest()]
    assert bearer(store, secret, now=NOW) == first
    store.close()


@pytest.mark.parametrize("name", ["", "x" * 65, "ci token", "ci/prod", "ci:prod", "é", "ci\n"])
def test_a_malformed_name_is_refused(store: CountingStore, name: str) -> None:
    with pytest.raises(TokenError, match="a token name is 1–64 letters"):
        make(store, name=name)
    assert list_tokens(store) == []


@pytest.mark.parametrize("name", ["x" * 64, "ci.prod-2_b", "A"])
def test_a_plain_name_is_accepted(store: CountingStore, name: str) -> None:
    assert make(store, name=name)[0].name == name


@pytest.mark.parametrize("billers", [frozenset({"B 1"}), frozenset({"B.1"}), frozenset({"x" * 129}), frozenset({""}),
                                     frozenset({"B-1", "b/2"})])
def test_a_malformed_biller_id_is_refused(store: CountingStore, billers: frozenset[str]) -> None:
    with pytest.raises(TokenError, match="a biller ID is 1–128"):
        make(store, billers=billers)


def test_a_token_for_no_biller_or_an_unknown_access_is_refused(store: CountingStore) -> None:
    with pytest.raises(TokenError, match="at least one biller"):
        make(store, billers=frozenset())
    with pytest.raises(TokenError, match="'read' or 'write'"):
        make(store, access="admin")
    assert list_tokens(store) == []


# ---- bearing -----------------------------------------------------------------------------------

def test_a_secret_opens_its_own_token(store: CountingStore) -> None:
    token, secret = make(store, billers=None, access="write")
    assert bearer(store, secret, now=NOW + timedelta(days=400)) == token


@pytest.mark.parametrize("secret", ["", "spf_", "Bearer spf_x", "xyz_" + "A" * 43, "spf_" + "A" * 42, "spf_" + "A" * 44,
                                    "spf_" + "A" * 42 + "=", "spf_" + "A" * 42 + "é", "spf_" + "A" * 42 + "\n"])
def test_a_malformed_secret_is_refused_without_asking_the_store(store: CountingStore, secret: str) -> None:
    make(store)
    store.gets = 0
    assert not well_formed_secret(secret)
    assert bearer(store, secret, now=NOW) is None
    assert store.gets == 0


def test_an_unknown_secret_is_refused_with_one_lookup(store: CountingStore) -> None:
    make(store)
    store.gets = 0
    assert bearer(store, "spf_" + "A" * 43, now=NOW) is None
    assert store.gets == 1


def test_another_token_s_digest_never_opens_this_one(store: CountingStore) -> None:
    ci, ci_secret = make(store, name="ci", access="read")
    deploy, deploy_secret = make(store, name="deploy", access="write")
    assert bearer(store, ci_secret, now=NOW) == ci
    assert bearer(store, deploy_secret, now=NOW) == deploy
    # An index that points ci's digest at deploy (a hand-edited or half-written store) opens nothing.
    store.put("auth.token-digests", hashlib.sha256(ci_secret.encode()).hexdigest(), b"deploy")
    assert bearer(store, ci_secret, now=NOW) is None
    assert bearer(store, deploy_secret, now=NOW) == deploy


def test_a_revoked_token_is_refused_and_kept(store: CountingStore) -> None:
    token, secret = make(store)
    assert revoke_token(store, "ci", now=NOW + timedelta(hours=1))
    assert bearer(store, secret, now=NOW + timedelta(hours=1)) is None
    assert list_tokens(store) == [ApiToken("ci", frozenset({"B-1"}), "read", token.created_at, token.created_by,
                                           "2026-12-06T10:00:00Z")]
    assert not revoke_token(store, "ci", now=NOW + timedelta(hours=2))
    assert get_token(store, "ci") == list_tokens(store)[0]  # the first revocation's time is kept
    assert not revoke_token(store, "nope", now=NOW)
    with pytest.raises(TokenError, match="exists already"):
        make(store)  # a revoked token keeps its name


def test_a_record_that_cannot_be_read_opens_nothing(store: CountingStore) -> None:
    _, secret = make(store)
    store.put("auth.tokens", "ci", b"{not json")
    assert bearer(store, secret, now=NOW) is None
    assert list_tokens(store) == []
    record = {"name": "ci", "billers": ["B-1"], "access": "admin", "created_at": "x", "created_by": "y",
              "sha256": hashlib.sha256(secret.encode()).hexdigest()}
    store.put("auth.tokens", "ci", json.dumps(record).encode())
    assert bearer(store, secret, now=NOW) is None


def test_read_and_write_tokens_become_principals_of_their_billers(store: CountingStore) -> None:
    read = principal_for(make(store, name="r", billers=frozenset({"B-1", "B-2"}), access="read")[0])
    write = principal_for(make(store, name="w", billers=frozenset({"B-1"}), access="write")[0])
    every = principal_for(make(store, name="all", billers=None, access="read")[0])
    assert (read.kind, read.name, read.billers, read.access) == ("token", "r", frozenset({"B-1", "B-2"}), "read")
    assert read.may_read("B-2") and not read.may_write("B-2") and not read.may_read("B-3")
    assert write.may_write("B-1") and not write.may_write("B-2")
    assert every.may_read("anything") and not every.may_write("anything")
    assert write.who == "token:w" and not write.is_staff


# ---- saml-validate token -----------------------------------------------------------------------

@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_access.token, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_creates_a_token_shown_once_lists_and_revokes_it(store_url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    code, out, err = run("create", "--name", "ci", "--billers", "B-1, B-2", "--access", "write", "--store", store_url)
    assert code == 0 and "shown only this once" in err
    secret = out.strip()
    assert out == secret + "\n" and well_formed_secret(secret)
    opened = SQLiteStore(tmp_path / "cli.sqlite3")
    found = bearer(opened, secret, now=datetime.now(UTC))
    assert found is not None
    assert (found.billers, found.access, found.created_by) == (frozenset({"B-1", "B-2"}), "write", "cli:ops")
    assert run("create", "--name", "all", "--billers", "all", "--access", "read", "--store", store_url)[0] == 0
    code, out, _ = run("list", "--store", store_url)
    rows = [line.split("\t") for line in out.splitlines()]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [("all", "all", "read", "-"), ("ci", "B-1,B-2", "write", "-")]
    assert rows[0][3].endswith("Z") and secret not in out
    assert run("revoke", "ci", "--store", store_url)[0] == 0
    assert bearer(opened, secret, now=datetime.now(UTC)) is None
    opened.close()
    code, out, _ = run("list", "--store", store_url)
    assert out.splitlines()[1].split("\t")[4].endswith("Z")
    code, _, err = run("revoke", "ci", "--store", store_url)
    assert code == 0 and "already revoked" in err


def test_cli_refuses_clearly(store_url: str) -> None:
    assert run("create", "--name", "ci", "--billers", "B-1", "--access", "read", "--store", store_url)[0] == 0
    code, out, err = run("create", "--name", "ci", "--billers", "B-1", "--access", "read", "--store", store_url)
    assert code == 1 and "exists already" in err and out == ""
    code, _, err = run("create", "--name", "bad name", "--billers", "B-1", "--access", "read", "--store", store_url)
    assert code == 1 and "a token name is" in err
    code, _, err = run("create", "--name", "x", "--billers", "B 1", "--access", "read", "--store", store_url)
    assert code == 1 and "a biller ID is" in err
    code, _, err = run("create", "--name", "x", "--billers", ",", "--access", "read", "--store", store_url)
    assert code == 1 and "at least one biller" in err
    code, _, err = run("create", "--name", "x", "--billers", "B-1", "--access", "admin", "--store", store_url)
    assert code == 2 and "'admin' is not one of" in err
    code, _, err = run("revoke", "nope", "--store", store_url)
    assert code == 1 and "no token named 'nope'" in err
    code, _, err = run("list", "--store", "sqlite://relative")
    assert code == 2 and "--store" in err
    assert "Traceback" not in err
