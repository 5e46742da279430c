"""Partner invite links (validator/auth/invites.py) and ``saml-validate invite`` (validator/cli_invites.py):
a link opens while it is active and for nothing else, its token is never stored, and the
command line makes, lists and revokes them, recording each change in the audit trail."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from metadata.store import SQLiteStore
from tests.helpers import crm_toml
from validator.auth import audit, invites
from validator.auth.invites import (
    InviteError,
    create_invite,
    get_invite,
    invite_state,
    invite_url,
    list_invites,
    open_invite,
    principal_for,
    revoke_invite,
)
from validator.cli_invites import invite as invite_group
from validator.json_value import iso_z
from validator.web.partners import BILLER_ID

NOW = datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "s.sqlite3")


def _everything_stored(path: Path) -> bytes:
    """Every key and value the store file holds, as one blob to search."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT ns, key, value FROM entries").fetchall()
        rows += conn.execute("SELECT ns, key, value FROM lists").fetchall()
    return b"\n".join(str(ns).encode() + str(key).encode() + bytes(value) for ns, key, value in rows)


# ---- making and opening -------------------------------------------------------------------------

def test_a_new_invite_opens_with_its_token(store: SQLiteStore) -> None:
    made, token = create_invite(store, "B-1", email="it@partner.example", created_by="staff:ana@x.example", now=NOW)
    assert made.id.startswith("inv_") and len(made.id) == 16 and int(made.id[4:], 16) >= 0
    assert (made.created_at, made.expires_at) == ("2026-12-06T09:30:15Z", "2026-12-20T09:30:15Z")
    assert len(token) >= 43  # 256 bits in base64url
    assert open_invite(store, token, now=NOW + timedelta(days=13)) == made
    assert invite_state(made, NOW) == "active"


def test_each_invite_has_its_own_token_and_id(store: SQLiteStore) -> None:
    (one, token_one), (two, token_two) = (create_invite(store, "B-1", created_by="cli:x", now=NOW) for _ in range(2))
    assert one.id != two.id and token_one != token_two
    assert open_invite(store, token_two, now=NOW) == two


def test_the_token_is_not_stored_in_clear(store: SQLiteStore, tmp_path: Path) -> None:
    _, token = create_invite(store, "B-1", created_by="cli:x", now=NOW)
    stored = _everything_stored(tmp_path / "s.sqlite3")
    assert stored  # the search below looks at something
    assert token.encode() not in stored
    assert invites._digest(token).encode() in stored  # what is kept instead


@pytest.mark.parametrize("token", ["", "short", "x" * 44, "a" * 42 + "!", "a" * 42 + "é", "../../etc/passwd" * 3])
def test_a_malformed_token_does_not_open_and_costs_no_lookup(store: SQLiteStore, token: str) -> None:
    create_invite(store, "B-1", created_by="cli:x", now=NOW)
    assert open_invite(store, token, now=NOW) is None
    assert not invites.well_formed_token(token)


def test_an_unknown_token_does_not_open(store: SQLiteStore) -> None:
    _, token = create_invite(store, "B-1", created_by="cli:x", now=NOW)
    other = ("A" if token[0] != "A" else "B") + token[1:]
    assert invites.well_formed_token(other)
    assert open_invite(store, other, now=NOW) is None


def test_an_expired_invite_does_not_open(store: SQLiteStore) -> None:
    made, token = create_invite(store, "B-1", days=1, created_by="cli:x", now=NOW)
    assert open_invite(store, token, now=NOW + timedelta(days=1) - timedelta(seconds=1)) == made
    assert open_invite(store, token, now=NOW + timedelta(days=1)) is None
    assert invite_state(made, NOW + timedelta(days=2)) == "expired"


def test_a_revoked_invite_does_not_open_and_keeps_its_record(store: SQLiteStore) -> None:
    made, token = create_invite(store, "B-1", created_by="cli:x", now=NOW)
    assert revoke_invite(store, made.id, by="staff:ana@x.example", now=NOW + timedelta(hours=1))
    assert open_invite(store, token, now=NOW + timedelta(hours=2)) is None
    kept = get_invite(store, made.id)
    assert kept is not None and kept.biller_id == "B-1"
    assert (kept.revoked_at, kept.revoked_by) == ("2026-12-06T10:30:15Z", "staff:ana@x.example")
    assert invite_state(kept, NOW) == "revoked"


def test_revoking_twice_changes_nothing_the_second_time(store: SQLiteStore) -> None:
    made, _ = create_invite(store, "B-1", created_by="cli:x", now=NOW)
    assert revoke_invite(store, made.id, by="cli:first", now=NOW)
    assert not revoke_invite(store, made.id, by="cli:second", now=NOW + timedelta(days=1))
    kept = get_invite(store, made.id)
    assert kept is not None and (kept.revoked_by, kept.revoked_at) == ("cli:first", "2026-12-06T09:30:15Z")


def test_revoking_an_unknown_invite_is_false(store: SQLiteStore) -> None:
    assert not revoke_invite(store, "inv_000000000000", by="cli:x", now=NOW)
    assert not revoke_invite(store, "not-an-id", by="cli:x", now=NOW)
    assert get_invite(store, "inv_000000000000") is None


@pytest.mark.parametrize("days", [0, -1, 91, 365])
def test_days_out_of_range_are_refused(store: SQLiteStore, days: int) -> None:
    with pytest.raises(InviteError, match="1–90 days"):
        create_invite(store, "B-1", days=days, created_by="cli:x", now=NOW)
    assert store.keys(invites.INVITES) == []


@pytest.mark.parametrize("days", [1, 90])
def test_days_at_the_bounds_are_accepted(store: SQLiteStore, days: int) -> None:
    made, _ = create_invite(store, "B-1", days=days, created_by="cli:x", now=NOW)
    assert made.expires_at == iso_z((NOW + timedelta(days=days)).replace(microsecond=0))


@pytest.mark.parametrize("biller_id", ["B-1", "b_2", "X" * 128, "", "B 1", "B/1", "X" * 129, "B\n1"])
def test_biller_ids_have_the_partner_pages_shape(store: SQLiteStore, biller_id: str) -> None:
    if BILLER_ID.fullmatch(biller_id):
        assert create_invite(store, biller_id, created_by="cli:x", now=NOW)[0].biller_id == biller_id
    else:
        with pytest.raises(InviteError, match="biller ID"):
            create_invite(store, biller_id, created_by="cli:x", now=NOW)


@pytest.mark.parametrize("email", ["no-at-sign", "two words@x.example", "a@b\nc", "x" * 250 + "@x.ex"])
def test_an_email_that_would_garble_a_list_is_refused(store: SQLiteStore, email: str) -> None:
    with pytest.raises(InviteError, match="email"):
        create_invite(store, "B-1", email=email, created_by="cli:x", now=NOW)


def test_a_corrupt_record_does_not_open(store: SQLiteStore) -> None:
    made, token = create_invite(store, "B-1", created_by="cli:x", now=NOW)
    store.put(invites.INVITES, made.id, b"{not json")
    assert open_invite(store, token, now=NOW) is None
    assert list_invites(store) == []


# ---- lists, links, principals -------------------------------------------------------------------

def test_lists_are_newest_first_and_filter_by_biller(store: SQLiteStore) -> None:
    old, _ = create_invite(store, "B-1", created_by="cli:x", now=NOW)
    other, _ = create_invite(store, "B-2", created_by="cli:x", now=NOW + timedelta(minutes=1))
    new, _ = create_invite(store, "B-1", created_by="cli:x", now=NOW + timedelta(minutes=2))
    assert list_invites(store) == [new, other, old]
    assert list_invites(store, "B-1") == [new, old]
    assert list_invites(store, "B-3") == []


def test_the_link_and_who_it_signs_in_as(store: SQLiteStore) -> None:
    made, token = create_invite(store, "B-1", created_by="cli:x", now=NOW)
    assert invite_url("https://preflight.example/", token) == f"https://preflight.example/invite/{token}"
    assert invite_url("https://preflight.example", token) == f"https://preflight.example/invite/{token}"
    who = principal_for(made)
    assert (who.kind, who.who, who.access) == ("partner", f"invite:{made.id}", "write")
    assert who.may_write("B-1") and not who.may_read("B-2") and not who.is_staff


# ---- the command line ---------------------------------------------------------------------------

@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path, Path]:
    """`--store` and `--crm-folder` arguments for a tmp store and a CRM folder holding B-1."""
    crm = tmp_path / "crm"
    crm.mkdir()
    (crm / "B-1.toml").write_text(crm_toml(), encoding="utf-8")
    monkeypatch.delenv("VALIDATOR_STORE", raising=False)
    monkeypatch.delenv("VALIDATOR_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "cli.sqlite3"
    return ["--store", f"sqlite:///{db}"], crm, db


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def _main() -> None:
    """Stands in for ``saml-validate`` (same help options), which registers ``invite`` itself."""


_main.add_command(invite_group)


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(_main, ["invite", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("form", [["create", "B-1"], ["B-1"]], ids=["create", "short"])
def test_cli_create_prints_a_working_link_once(cli_env: tuple[list[str], Path, Path], form: list[str]) -> None:
    store_args, crm, db = cli_env
    code, out, err = _run([*form, "--days", "7", "--email", "it@partner.example", "--crm-folder", str(crm),
                           *store_args, "--base-url", "https://preflight.example/"])
    assert code == 0, err
    assert out.startswith("https://preflight.example/invite/") and out.count("\n") == 1
    token = out.strip().rsplit("/", 1)[1]
    store = SQLiteStore(db)
    made = open_invite(store, token, now=datetime.now(UTC))
    assert made is not None and made.biller_id == "B-1" and made.email == "it@partner.example"
    assert made.id in err and token not in err
    assert token.encode() not in _everything_stored(db)
    (trail,) = audit.events(store, now=datetime.now(UTC))
    assert (trail.action, trail.biller_id, trail.address) == ("invite-created", "B-1", None)
    assert trail.who.startswith("cli:") and made.id in trail.detail


def test_cli_create_takes_the_base_url_from_the_environment(cli_env: tuple[list[str], Path, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store_args, crm, _ = cli_env
    assert _run(["B-1", "--crm-folder", str(crm), *store_args])[1].startswith("http://127.0.0.1:8081/invite/")
    monkeypatch.setenv("VALIDATOR_BASE_URL", "https://env.example")
    assert _run(["B-1", "--crm-folder", str(crm), *store_args])[1].startswith("https://env.example/invite/")


def test_cli_create_refuses_an_unknown_biller(cli_env: tuple[list[str], Path, Path]) -> None:
    store_args, crm, db = cli_env
    code, out, err = _run(["B-9", "--crm-folder", str(crm), *store_args])
    assert code == 2 and out == ""
    assert "BILLER" in err and "no CRM record for biller 'B-9'" in err
    assert list_invites(SQLiteStore(db)) == []


@pytest.mark.parametrize("days", ["0", "91"])
def test_cli_create_refuses_days_out_of_range(cli_env: tuple[list[str], Path, Path], days: str) -> None:
    store_args, crm, _ = cli_env
    code, out, err = _run(["B-1", "--days", days, "--crm-folder", str(crm), *store_args])
    assert code == 2 and out == "" and "--days" in err


def test_cli_refuses_a_bad_store_url_naming_where_it_came_from(cli_env: tuple[list[str], Path, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _, crm, _ = cli_env
    code, _, err = _run(["list", "--store", "ftp://nowhere"])
    assert code == 2 and "--store" in err and "not supported" in err
    monkeypatch.setenv("VALIDATOR_STORE", "ftp://nowhere")
    code, _, err = _run(["B-1", "--crm-folder", str(crm)])
    assert code == 2 and "$VALIDATOR_STORE" in err


def test_cli_uses_the_store_in_validator_store(cli_env: tuple[list[str], Path, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store_args, crm, db = cli_env
    monkeypatch.setenv("VALIDATOR_STORE", store_args[1])
    assert _run(["B-1", "--crm-folder", str(crm)])[0] == 0
    assert len(list_invites(SQLiteStore(db))) == 1


def test_cli_list_and_revoke(cli_env: tuple[list[str], Path, Path]) -> None:
    store_args, crm, db = cli_env
    assert _run(["list", *store_args])[1:] == ("", "No invites.\n")
    for _ in range(2):
        _run(["B-1", "--crm-folder", str(crm), *store_args])
    store = SQLiteStore(db)
    newest, oldest = list_invites(store)
    code, out, _ = _run(["revoke", oldest.id, *store_args])
    assert code == 0 and oldest.id in out
    code, out, _ = _run(["list", "--biller", "B-1", *store_args])
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "BILLER", "EMAIL", "STATE", "EXPIRES"]
    assert [row.split()[:4] for row in rows] == [[newest.id, "B-1", "-", "active"],
                                                [oldest.id, "B-1", "-", "revoked"]]
    assert _run(["list", "--biller", "B-2", *store_args])[1] == ""
    actions = [e.action for e in audit.events(store, now=datetime.now(UTC))]
    assert actions == ["invite-revoked", "invite-created", "invite-created"]


def test_cli_revoke_twice_and_unknown(cli_env: tuple[list[str], Path, Path]) -> None:
    store_args, crm, db = cli_env
    _run(["B-1", "--crm-folder", str(crm), *store_args])
    (made,) = list_invites(SQLiteStore(db))
    assert _run(["revoke", made.id, *store_args])[0] == 0
    code, out, err = _run(["revoke", made.id, *store_args])
    assert code == 0 and out == "" and "already revoked" in err
    code, _, err = _run(["revoke", "inv_ffffffffffff", *store_args])
    assert code == 2 and "INVITE_ID" in err and "no invite" in err
    assert [e.action for e in audit.events(SQLiteStore(db), now=datetime.now(UTC))].count("invite-revoked") == 1


def test_cli_short_form_takes_options_before_the_biller(cli_env: tuple[list[str], Path, Path]) -> None:
    store_args, crm, db = cli_env
    code, _, err = _run(["--days", "7", "B-1", "--crm-folder", str(crm), *store_args])
    assert code == 0, err
    (made,) = list_invites(SQLiteStore(db))
    assert made.biller_id == "B-1" and invite_state(made, datetime.now(UTC) + timedelta(days=8)) == "expired"


def test_cli_help_is_not_taken_for_a_biller() -> None:
    code, out, _ = _run(["-h"])
    assert code == 0 and "BILLER | COMMAND" in out and "revoke" in out
    assert _run([])[0] == 2  # no arguments: the help, not a biller named ""
