"""NET001's fix names the command line's way past it, and that way exists where it says."""

from __future__ import annotations

import re

import click
import pytest

from idp.cli import cli as idp_cli
from metadata.fetch import FetchError, FetchPolicy, fetch
from validator.checks.fetching import SCHEME, finding_for_fetch_error
from validator.cli import cli as validate_cli


def _has(command: click.Command, option: str) -> bool:
    return any(option in p.opts for p in command.params if isinstance(p, click.Option))


def test_net001_fix_names_allow_http_and_each_command_it_names_has_it() -> None:
    fix = " ".join(SCHEME.fix.split())
    assert "--allow-http" in fix
    named = re.search(r"\(saml-validate ([a-z, ]+?)\) accepts", fix)
    assert named is not None, fix
    commands = [c.strip() for c in re.split(r",| and ", named.group(1)) if c.strip()]
    assert commands == ["metadata", "response", "discover", "sweep"]
    assert isinstance(validate_cli, click.Group)
    for name in commands:
        assert _has(validate_cli.commands[name], "--allow-http"), name
    fetching = [name for name, command in validate_cli.commands.items() if _has(command, "--allow-http")]
    assert sorted(fetching) == sorted(commands)  # no command that has it is left unnamed
    # The ways it gives for an IdP on this machine exist too.
    assert "saml-idp metadata >" in fix and isinstance(idp_cli, click.Group) and "metadata" in idp_cli.commands
    assert "saml-validate serve --dev" in fix and _has(validate_cli.commands["serve"], "--dev")


def test_allow_http_still_refuses_an_idp_on_this_machine_as_the_fix_says() -> None:
    with pytest.raises(FetchError) as refused:
        fetch("http://127.0.0.1:9/metadata", FetchPolicy(allow_http=True))  # what --allow-http gives
    assert finding_for_fetch_error(refused.value).code == "NET004"
