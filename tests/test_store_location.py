"""The web app's default store is one file in the user's data folder, the same for `serve`, `sweep`,
`staff`, `token`, `invite` and the web app itself; `--store` and `$VALIDATOR_STORE` come first
(validator/store_location.py, issue 15)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from metadata.sqlite_store import SQLiteStore
from tests.helpers import crm_toml
from validator.cli import cli
from validator.store_location import STORE_FILE, created_message, default_store_path, open_web_store

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the XDG data folder is Linux's convention")


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """(working directory, the store the default names, a folder of one CRM record); no store set."""
    work, data, records = tmp_path / "work", tmp_path / "data", tmp_path / "records"
    for folder in (work, records):
        folder.mkdir()
    (records / "b1.toml").write_text(crm_toml(), encoding="utf-8")  # no metadata: swept without a fetch
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("VALIDATOR_STORE", raising=False)
    monkeypatch.chdir(work)
    return work, data / "saml-preflight" / STORE_FILE, records


def test_the_default_is_in_the_users_data_folder(places: tuple[Path, Path, Path]) -> None:
    _work, store, _records = places
    assert default_store_path() == store


def test_sweep_makes_the_default_store_in_the_data_folder_and_says_where(places: tuple[Path, Path, Path]) -> None:
    work, store, records = places
    first = CliRunner().invoke(cli, ["sweep", str(records), "--quiet"])
    assert first.exit_code == 1, first.output  # the record gives no metadata: CRM202
    assert store.is_file() and list(work.iterdir()) == []  # nothing left in the working directory
    assert f"created the web app's store (history, accounts, invites) at {store}" in first.stderr
    again = CliRunner().invoke(cli, ["sweep", str(records), "--quiet"])
    assert "created" not in again.stderr  # said once, when it was made


def test_store_and_the_variable_come_first(places: tuple[Path, Path, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _work, store, records = places
    monkeypatch.setenv("VALIDATOR_STORE", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    from_env = CliRunner().invoke(cli, ["sweep", str(records), "--quiet"])
    assert (tmp_path / "env.sqlite3").is_file() and "created" not in from_env.stderr
    given = CliRunner().invoke(cli, ["sweep", str(records), "--quiet",
                                     "--store", f"sqlite:///{tmp_path / 'o.sqlite3'}"])
    assert given.exit_code == 1 and (tmp_path / "o.sqlite3").is_file()
    assert not store.exists()


@pytest.mark.parametrize("args", [["staff", "list"], ["token", "list"], ["invite", "list"]])
def test_the_access_commands_open_the_same_default(places: tuple[Path, Path, Path], args: list[str]) -> None:
    work, store, _records = places
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1), result.output
    assert store.is_file() and not (work / STORE_FILE).exists()
    assert f"at {store}" in result.stderr


def test_the_web_app_opens_the_same_default(places: tuple[Path, Path, Path]) -> None:
    from validator.web import create_app

    _work, store, _records = places
    app = create_app(crm_folder=places[2], base_url="http://127.0.0.1:8081", sign_in=False)
    opened = app.extensions["saml_validator_web"].store
    try:
        assert isinstance(opened, SQLiteStore) and opened.path == store
    finally:
        opened.close()


def test_a_store_an_earlier_version_left_here_is_pointed_out(places: tuple[Path, Path, Path]) -> None:
    work, store, _records = places
    assert "earlier version" not in created_message(store, work)
    (work / STORE_FILE).write_bytes(b"")
    said = created_message(store, work)
    assert f"move {work / STORE_FILE} to {store}" in said
    assert f"--store sqlite:///{(work / STORE_FILE).as_posix().lstrip('/')}" in said
    opened = open_web_store(None)
    opened.close()
    assert isinstance(opened, SQLiteStore) and opened.path == store  # the old file is only pointed out
