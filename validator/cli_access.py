"""``saml-validate staff …`` and ``saml-validate token …``: who may use the web app and its API,
managed from the shell of the host that runs it (registered on the main group by
:mod:`validator.cli`).

Each command opens the same store the web app uses (``--store``, else ``$VALIDATOR_STORE``, else
the web app's SQLite file in the user's data folder: :mod:`validator.store_location`), so an
account or token made here works
there at once. Secrets never appear in arguments (they would land in shell history and the
process list): a password is prompted for or read from standard input, and a token's secret is
printed once, alone on standard output, so that a script can capture it.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal, TypeVar, cast

import click

from metadata.store import Store, StoreUnavailable

__all__ = ["staff", "token"]

F = TypeVar("F", bound=Callable[..., object])


def store_option(func: F) -> F:
    return click.option(
        "--store", "store_url", metavar="URL",
        help="sqlite:///ABSOLUTE/PATH or redis://host:port/db (default: $VALIDATOR_STORE, else the web app's "
             "SQLite file in your data folder): the store the web app uses.",
    )(func)


@contextmanager
def _opened(store_url: str | None) -> Iterator[Store]:
    """The store, closed afterwards; a usage error naming where a bad URL came from, and one
    line (no traceback) when the store cannot be reached."""
    from validator.store_location import open_web_store

    try:
        store = open_web_store(store_url, created=lambda said: click.echo(said, err=True))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store" if store_url else "$VALIDATOR_STORE") from None
    except StoreUnavailable as exc:
        raise click.ClickException(f"the store cannot be opened: {exc}") from None
    try:
        yield store
    except StoreUnavailable as exc:
        raise click.ClickException(f"the store cannot be reached: {exc}") from None
    finally:
        store.close()


def _now() -> datetime:
    return datetime.now(UTC)


def _cli_user() -> str:
    """``cli:USER``: how the audit trail and lists name what was done from this shell."""
    try:
        return "cli:" + getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name in the environment nor the password database
        return "cli:unknown"


def _interactive() -> bool:
    return sys.stdin.isatty()


def _read_password() -> str:
    """A hidden prompt, asked twice, at a terminal; otherwise the first line of standard input
    without its line ending (for scripts: the password never appears in an argument)."""
    if _interactive():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise click.UsageError("no password on standard input: give it as its first line")
    return password


@click.group("staff")
def staff() -> None:
    """Local staff accounts: staff sign in to the web app with an email and a password, and may
    see and change every biller."""


@staff.command("add")
@click.argument("email")
@store_option
def staff_add(email: str, store_url: str | None) -> None:
    """Add a staff account for EMAIL (stored lower-case). The password (at least 12 characters)
    is asked at a hidden prompt, twice; when standard input is not a terminal, its first line is
    the password instead (newline stripped), e.g. printf '%s\\n' "$PASSWORD" | saml-validate staff add EMAIL."""
    from validator.auth.staff import StaffError, add_staff, check_email, get_staff

    with _opened(store_url) as store:
        try:
            email = check_email(email)
            if get_staff(store, email) is not None:  # before asking for a password that would go unused
                raise StaffError(f"a staff account for {email} exists already")
            account = add_staff(store, email, _read_password(), now=_now())
        except StaffError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"staff account {account.email} added", err=True)


@staff.command("list")
@store_option
def staff_list(store_url: str | None) -> None:
    """Every staff account, one per line: email, a tab, when it was added (UTC)."""
    from validator.auth.staff import list_staff

    with _opened(store_url) as store:
        accounts = list_staff(store)
    for account in accounts:
        click.echo(f"{account.email}\t{account.created_at}")
    if not accounts:
        click.echo("no staff accounts", err=True)


@staff.command("remove")
@click.argument("email")
@store_option
def staff_remove(email: str, store_url: str | None) -> None:
    """Remove the staff account for EMAIL; exit 1 if there is none."""
    from validator.auth.staff import remove_staff

    with _opened(store_url) as store:
        removed = remove_staff(store, email)
    if not removed:
        raise click.ClickException(f"no staff account for {email.strip().lower()}")
    click.echo(f"staff account {email.strip().lower()} removed", err=True)


def _billers(value: str) -> frozenset[str] | None:
    if value.strip().lower() == "all":
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


@click.group("token")
def token() -> None:
    """API tokens for onboarding pipelines: a bearer secret for the JSON API that reads (or also
    writes) some billers, or all of them."""


@token.command("create")
@click.option("--name", required=True, help="1–64 letters, digits, '.', '-' and '_'; unique for ever.")
@click.option("--billers", "billers_text", required=True, metavar="B-1,B-2|all",
              help="The biller IDs it may act on, comma-separated, or all.")
@click.option("--access", required=True, type=click.Choice(["read", "write"]),
              help="read: it may only read its billers; write: it may also change them.")
@store_option
def token_create(name: str, billers_text: str, access: str, store_url: str | None) -> None:
    """Create a token and print its secret to standard output: this once only (the store keeps
    just its digest). Send it as "Authorization: Bearer SECRET"."""
    from validator.auth.tokens import TokenError, create_token

    with _opened(store_url) as store:
        try:
            made, secret = create_token(store, name, billers=_billers(billers_text),
                                        access=cast(Literal["read", "write"], access),
                                        created_by=_cli_user(), now=_now())
        except TokenError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"token {made.name} created; its secret is shown only this once: keep it now", err=True)
    click.echo(secret)


@token.command("list")
@store_option
def token_list(store_url: str | None) -> None:
    """Every token, one per line, tab-separated: name, billers (or all), access, created (UTC),
    revoked (UTC, or -)."""
    from validator.auth.tokens import list_tokens

    with _opened(store_url) as store:
        tokens = list_tokens(store)
    for found in tokens:
        billers = "all" if found.billers is None else ",".join(sorted(found.billers))
        click.echo("\t".join((found.name, billers, found.access, found.created_at, found.revoked_at or "-")))
    if not tokens:
        click.echo("no API tokens", err=True)


@token.command("revoke")
@click.argument("name")
@store_option
def token_revoke(name: str, store_url: str | None) -> None:
    """Revoke the token NAME: it stops working at once; it stays listed (and its name taken).
    Exit 1 if there is no such token."""
    from validator.auth.tokens import get_token, revoke_token

    with _opened(store_url) as store:
        revoked = revoke_token(store, name, now=_now())
        found = get_token(store, name)
    if found is None:
        raise click.ClickException(f"no token named {name!r}")
    if not revoked:
        click.echo(f"token {name} was already revoked at {found.revoked_at}", err=True)
        return
    click.echo(f"token {name} revoked", err=True)
