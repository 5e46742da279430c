"""Staff accounts: Argon2id passwords, sign-in that tells nobody which emails exist, a rate limit
per account and per address that holds under racing workers, and ``saml-validate staff``.

Argon2 is slow on purpose, so most tests swap in a hasher with the cheapest parameters that
also counts its verifications: a refused attempt is one that verified nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from metadata.store import SQLiteStore
from validator import cli_access
from validator.auth import staff
from validator.auth.staff import (
    ACCOUNT_FAILURES_MAX,
    ADDRESS_FAILURES_MAX,
    FAILURE_WINDOW_SECONDS,
    StaffAccount,
    StaffError,
    add_staff,
    has_staff,
    list_staff,
    principal_for,
    remove_staff,
    sign_in,
)

PASSWORD = "correct horse battery"
WRONG = "not the password"


class Clock:
    """One clock for the store's expiry and the `now` the functions are given."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

    def __call__(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class CountingHasher(PasswordHasher):
    def __init__(self, time_cost: int = 1, memory_cost: int = 8, parallelism: int = 1) -> None:
        super().__init__(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        self.verified = 0
        self.during_verify: list[Callable[[], object]] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # type: ignore[override]
        self.verified += 1
        for hook in self.during_verify:
            hook()
        return super().verify(hash, password)


@pytest.fixture(autouse=True)
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    cheap = CountingHasher()
    monkeypatch.setattr(staff, "_hasher", cheap)
    return cheap


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "s.sqlite3", clock=clock)
    yield opened
    opened.close()


def attempt(store: SQLiteStore, clock: Clock, email: str, password: str, address: str = "192.0.2.1") -> (
        StaffAccount | None):
    return sign_in(store, email, password, address=address, now=clock.now)


# ---- accounts ----------------------------------------------------------------------------------

def test_an_account_is_stored_normalised_with_an_argon2id_hash_of_the_library_defaults(
        store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff, "_hasher", PasswordHasher())
    account = add_staff(store, "  Ana@Example.COM ", PASSWORD, now=clock.now.replace(microsecond=123))
    assert account == StaffAccount("ana@example.com", "2026-12-06T09:00:00Z")
    record = json.loads(store.get("auth.staff", "ana@example.com") or b"")
    assert record["hash"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in json.dumps(record)
    assert attempt(store, clock, "ana@example.com", PASSWORD) == account


def test_an_existing_account_is_never_overwritten(store: SQLiteStore, clock: Clock) -> None:
    first = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    clock.advance(60)
    with pytest.raises(StaffError, match=r"ana@example\.com exists already"):
        add_staff(store, "ANA@example.com", "another long password", now=clock.now)
    assert list_staff(store) == [first]
    assert attempt(store, clock, "ana@example.com", "another long password") is None
    assert attempt(store, clock, "ana@example.com", PASSWORD) == first


def test_the_atomic_add_decides_when_a_racing_add_got_there_first(store: SQLiteStore, clock: Clock,
                                                                   hasher: CountingHasher) -> None:
    first = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)

    class Blind(SQLiteStore):
        def get(self, ns: str, key: str) -> bytes | None:
            return None  # as if the other worker's add landed just after this one looked

    blind = Blind(store.path, clock=clock)
    with pytest.raises(StaffError, match="exists already"):
        add_staff(blind, "ana@example.com", "another long password", now=clock.now)
    blind.close()
    assert attempt(store, clock, "ana@example.com", PASSWORD) == first


@pytest.mark.parametrize("email", ["", "ana", "ana@", "@example.com", "ana@example", "ana@@example.com",
                                   "a@b@example.com", "ana smith@example.com", "ana@example..com", "ana@.example.com",
                                   "ana@example.com.", "ana\x00@example.com", "a" * 250 + "@example.com"])
def test_a_bad_email_is_refused(store: SQLiteStore, clock: Clock, email: str) -> None:
    with pytest.raises(StaffError, match="is not an email address"):
        add_staff(store, email, PASSWORD, now=clock.now)
    assert not has_staff(store)


@pytest.mark.parametrize("email", ["ana@example.com", "ana.smith+preflight@mail.example.co.uk", "x@y.z"])
def test_a_plain_email_is_accepted(store: SQLiteStore, clock: Clock, email: str) -> None:
    assert add_staff(store, email, PASSWORD, now=clock.now).email == email


def test_a_short_password_is_refused_and_twelve_characters_are_enough(store: SQLiteStore, clock: Clock) -> None:
    with pytest.raises(StaffError, match="at least 12 characters"):
        add_staff(store, "ana@example.com", "x" * 11, now=clock.now)
    assert not has_staff(store)
    assert add_staff(store, "ana@example.com", "x" * 12, now=clock.now).email == "ana@example.com"


def test_list_remove_and_has(store: SQLiteStore, clock: Clock) -> None:
    assert not has_staff(store) and list_staff(store) == []
    add_staff(store, "zoe@example.com", PASSWORD, now=clock.now)
    add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    assert has_staff(store)
    assert [a.email for a in list_staff(store)] == ["ana@example.com", "zoe@example.com"]
    assert remove_staff(store, " Zoe@Example.com")
    assert not remove_staff(store, "zoe@example.com")
    assert [a.email for a in list_staff(store)] == ["ana@example.com"]
    assert attempt(store, clock, "zoe@example.com", PASSWORD) is None


def test_a_staff_principal_writes_every_biller() -> None:
    principal = principal_for(StaffAccount("ana@example.com", "2026-12-06T09:00:00Z"))
    assert (principal.kind, principal.name, principal.billers, principal.access) == (
        "staff", "ana@example.com", None, "write")
    assert principal.may_write("any-biller") and principal.is_staff
    assert principal.who == "staff:ana@example.com"


# ---- signing in --------------------------------------------------------------------------------

def test_the_right_password_signs_in_whatever_the_email_s_case(store: SQLiteStore, clock: Clock) -> None:
    account = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    assert attempt(store, clock, " ANA@example.com ", PASSWORD) == account


def test_a_wrong_password_and_an_unknown_email_look_and_cost_the_same(
        store: SQLiteStore, clock: Clock, hasher: CountingHasher) -> None:
    add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    assert attempt(store, clock, "ana@example.com", WRONG) is None
    assert hasher.verified == 1
    assert attempt(store, clock, "bob@example.com", PASSWORD) is None
    assert hasher.verified == 2
    assert attempt(store, clock, "not an email", PASSWORD) is None
    assert hasher.verified == 3
    assert staff._dummy_hash(hasher).startswith("$argon2id$v=19$m=8,t=1,p=1$")  # the hasher's own cost


def test_a_removed_account_no_longer_signs_in(store: SQLiteStore, clock: Clock) -> None:
    add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    remove_staff(store, "ana@example.com")
    assert attempt(store, clock, "ana@example.com", PASSWORD) is None


def test_a_hash_made_with_weaker_parameters_is_replaced_on_sign_in(
        store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    account = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    stronger = CountingHasher(time_cost=2, memory_cost=16, parallelism=1)
    monkeypatch.setattr(staff, "_hasher", stronger)
    assert attempt(store, clock, "ana@example.com", WRONG) is None
    assert json.loads(store.get("auth.staff", account.email) or b"")["hash"].startswith("$argon2id$v=19$m=8,")
    assert attempt(store, clock, "ana@example.com", PASSWORD) == account
    assert json.loads(store.get("auth.staff", account.email) or b"")["hash"].startswith("$argon2id$v=19$m=16,t=2,")
    assert attempt(store, clock, "ana@example.com", PASSWORD) == account
    assert list_staff(store) == [account]


def test_a_rehash_never_brings_back_an_account_removed_meanwhile(
        store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    stronger = CountingHasher(time_cost=2, memory_cost=16, parallelism=1)
    stronger.during_verify.append(lambda: remove_staff(store, "ana@example.com"))
    monkeypatch.setattr(staff, "_hasher", stronger)
    assert attempt(store, clock, "ana@example.com", PASSWORD) is not None  # checked before the removal
    assert not has_staff(store)


# ---- the rate limit ----------------------------------------------------------------------------

def test_more_than_five_failures_for_an_account_refuse_it_for_the_window(
        store: SQLiteStore, clock: Clock, hasher: CountingHasher) -> None:
    account = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    for n in range(ACCOUNT_FAILURES_MAX + 1):  # from ever-new addresses: the account's own limit
        assert attempt(store, clock, "ana@example.com", WRONG, address=f"198.51.100.{n}") is None
        clock.advance(10)
    assert hasher.verified == ACCOUNT_FAILURES_MAX + 1
    assert attempt(store, clock, "ana@example.com", PASSWORD, address="203.0.113.9") is None
    assert hasher.verified == ACCOUNT_FAILURES_MAX + 1  # refused without checking the password
    assert attempt(store, clock, "bob@example.com", PASSWORD, address="203.0.113.9") is None
    assert hasher.verified == ACCOUNT_FAILURES_MAX + 2  # another email is not held back
    clock.advance(FAILURE_WINDOW_SECONDS - 60 + 1)  # the first failure is now over a window old
    assert attempt(store, clock, "ana@example.com", PASSWORD, address="203.0.113.9") == account


def test_five_failures_still_leave_the_account_open(store: SQLiteStore, clock: Clock) -> None:
    account = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    for _ in range(ACCOUNT_FAILURES_MAX):
        assert attempt(store, clock, "ana@example.com", WRONG) is None
    assert attempt(store, clock, "ana@example.com", PASSWORD) == account


def test_an_unknown_email_is_held_back_like_a_real_one(store: SQLiteStore, clock: Clock,
                                                        hasher: CountingHasher) -> None:
    for _ in range(ACCOUNT_FAILURES_MAX + 2):
        attempt(store, clock, "nobody@example.com", WRONG)
    assert hasher.verified == ACCOUNT_FAILURES_MAX + 1


def test_a_refused_attempt_does_not_extend_the_window(store: SQLiteStore, clock: Clock,
                                                      hasher: CountingHasher) -> None:
    account = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    for _ in range(ACCOUNT_FAILURES_MAX + 1):
        attempt(store, clock, "ana@example.com", WRONG)
    clock.advance(FAILURE_WINDOW_SECONDS - 1)
    assert attempt(store, clock, "ana@example.com", PASSWORD) is None
    clock.advance(2)
    assert attempt(store, clock, "ana@example.com", PASSWORD) == account


def test_a_success_clears_the_account_s_count(store: SQLiteStore, clock: Clock, hasher: CountingHasher) -> None:
    account = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    for _ in range(ACCOUNT_FAILURES_MAX):
        attempt(store, clock, "ana@example.com", WRONG)
    assert attempt(store, clock, "ana@example.com", PASSWORD) == account
    before = hasher.verified
    for _ in range(ACCOUNT_FAILURES_MAX + 1):  # a full allowance again
        assert attempt(store, clock, "ana@example.com", WRONG) is None
    assert hasher.verified == before + ACCOUNT_FAILURES_MAX + 1
    assert attempt(store, clock, "ana@example.com", PASSWORD) is None
    assert hasher.verified == before + ACCOUNT_FAILURES_MAX + 1


def test_more_than_twenty_failures_from_an_address_refuse_it_for_the_window(
        store: SQLiteStore, clock: Clock, hasher: CountingHasher) -> None:
    account = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    for n in range(ADDRESS_FAILURES_MAX + 1):  # a different email each time: the address's own limit
        assert attempt(store, clock, f"guess{n}@example.com", WRONG, address="198.51.100.7") is None
    assert hasher.verified == ADDRESS_FAILURES_MAX + 1
    assert attempt(store, clock, "ana@example.com", PASSWORD, address="198.51.100.7") is None
    assert hasher.verified == ADDRESS_FAILURES_MAX + 1
    assert attempt(store, clock, "ana@example.com", PASSWORD, address="198.51.100.8") == account
    clock.advance(FAILURE_WINDOW_SECONDS + 1)
    assert attempt(store, clock, "ana@example.com", PASSWORD, address="198.51.100.7") == account


def test_an_address_refusal_does_not_count_against_the_account(store: SQLiteStore, clock: Clock) -> None:
    account = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    for n in range(ADDRESS_FAILURES_MAX + 1):
        attempt(store, clock, f"guess{n}@example.com", WRONG, address="198.51.100.7")
    for _ in range(ACCOUNT_FAILURES_MAX + 3):
        assert attempt(store, clock, "ana@example.com", WRONG, address="198.51.100.7") is None
    assert attempt(store, clock, "ana@example.com", PASSWORD, address="198.51.100.8") == account


def test_racing_guesses_cannot_exceed_the_limit(store: SQLiteStore, clock: Clock, hasher: CountingHasher) -> None:
    add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    start = threading.Barrier(20)

    def guess(n: int) -> None:
        start.wait()
        attempt(store, clock, "ana@example.com", WRONG, address=f"198.51.100.{n}")

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hasher.verified == ACCOUNT_FAILURES_MAX + 1


# ---- saml-validate staff -----------------------------------------------------------------------

@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_access.staff, list(args), input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_adds_with_the_password_on_stdin_lists_and_removes(store_url: str, tmp_path: Path) -> None:
    assert run("add", "Ana@Example.com", "--store", store_url, stdin=PASSWORD + "\n")[0] == 0
    assert run("add", "zoe@example.com", "--store", store_url, stdin=PASSWORD + "\r\n")[0] == 0
    code, out, _ = run("list", "--store", store_url)
    assert code == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == ["ana@example.com", "zoe@example.com"]
    assert out.splitlines()[0].split("\t")[1].endswith("Z")
    opened = SQLiteStore(tmp_path / "cli.sqlite3")
    assert sign_in(opened, "zoe@example.com", PASSWORD, address="::1", now=datetime.now(UTC)) is not None
    opened.close()
    assert run("remove", "zoe@example.com", "--store", store_url)[0] == 0
    code, out, _ = run("list", "--store", store_url)
    assert out == "ana@example.com\t" + out.split("\t")[1]


def test_cli_prompts_twice_for_a_hidden_password_at_a_terminal(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_access, "_interactive", lambda: True)
    code, out, _ = run("add", "ana@example.com", "--store", store_url, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0
    assert PASSWORD not in out
    assert "Repeat for confirmation" in out


def test_cli_refuses_clearly(store_url: str) -> None:
    code, _, err = run("add", "ana@example.com", "--store", store_url, stdin="short\n")
    assert code == 1 and "at least 12 characters" in err
    code, _, err = run("add", "ana@example.com", "--store", store_url, stdin="")
    assert code == 2 and "no password on standard input" in err
    code, _, err = run("add", "not-an-email", "--store", store_url, stdin=PASSWORD + "\n")
    assert code == 1 and "is not an email address" in err
    assert run("add", "ana@example.com", "--store", store_url, stdin=PASSWORD + "\n")[0] == 0
    code, _, err = run("add", "ana@example.com", "--store", store_url, stdin="another long password\n")
    assert code == 1 and "exists already" in err
    code, _, err = run("remove", "bob@example.com", "--store", store_url)
    assert code == 1 and "no staff account for bob@example.com" in err
    assert "Traceback" not in err


def test_cli_names_where_a_bad_store_url_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run("list", "--store", "ftp://example.com/x")
    assert code == 2 and "--store" in err and "not supported" in err
    monkeypatch.setenv("VALIDATOR_STORE", "ftp://example.com/x")
    code, _, err = run("list")
    assert code == 2 and "$VALIDATOR_STORE" in err


def test_cli_uses_validator_store_when_no_store_is_given(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALIDATOR_STORE", store_url)
    assert run("add", "ana@example.com", stdin=PASSWORD + "\n")[0] == 0
    assert run("list", "--store", store_url)[1].startswith("ana@example.com\t")


def test_attempts_refused_for_the_account_do_not_use_up_the_address(store: SQLiteStore, clock: Clock) -> None:
    add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    bob = add_staff(store, "bob@example.com", PASSWORD, now=clock.now)
    for _ in range(ACCOUNT_FAILURES_MAX + 1 + ADDRESS_FAILURES_MAX):
        attempt(store, clock, "ana@example.com", WRONG, address="198.51.100.7")
    assert attempt(store, clock, "bob@example.com", PASSWORD, address="198.51.100.7") == bob


def test_a_success_is_no_failure_of_its_address(store: SQLiteStore, clock: Clock, hasher: CountingHasher) -> None:
    account = add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    for n in range(ADDRESS_FAILURES_MAX):
        attempt(store, clock, f"guess{n}@example.com", WRONG, address="198.51.100.7")
    assert attempt(store, clock, "ana@example.com", PASSWORD, address="198.51.100.7") == account
    before = hasher.verified
    assert attempt(store, clock, "guess@example.com", WRONG, address="198.51.100.7") is None
    assert hasher.verified == before + 1  # the twenty-first failure is still checked


def test_a_rehash_never_overwrites_an_account_replaced_meanwhile(
        store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    add_staff(store, "ana@example.com", PASSWORD, now=clock.now)
    stronger = CountingHasher(time_cost=2, memory_cost=16, parallelism=1)

    def replace() -> None:
        remove_staff(store, "ana@example.com")
        add_staff(store, "ana@example.com", "the new long password", now=clock.now)

    stronger.during_verify.append(replace)
    monkeypatch.setattr(staff, "_hasher", stronger)
    assert attempt(store, clock, "ana@example.com", PASSWORD) is not None  # checked before the replacement
    stronger.during_verify.clear()
    assert attempt(store, clock, "ana@example.com", "the new long password") is not None
    assert attempt(store, clock, "ana@example.com", PASSWORD) is None
