"""``saml-validate invite``: make, list and revoke partner invite links from the command line.

Registered on the main ``saml-validate`` group by :mod:`validator.cli`; kept apart so that the
one-table module of every report command does not grow an account-management section.
``invite BILLER …`` is short for ``invite create BILLER …`` (the form the onboarding team types
most); a biller literally named ``create``, ``list`` or ``revoke`` needs the long form.

Each change is recorded in the audit trail as ``cli:USER`` (the operating-system user): the
command line has no sign-in, and whoever can run it can already read the store.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from validator.auth.audit import event, record
from validator.auth.invites import (
    DAYS_MAX,
    DAYS_MIN,
    InviteError,
    create_invite,
    get_invite,
    invite_state,
    invite_url,
    list_invites,
    revoke_invite,
)

if TYPE_CHECKING:
    from metadata.store import Store

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_BASE_URL = "http://127.0.0.1:8081"


class DefaultCreateGroup(click.Group):
    """A group whose ``create`` runs when the first argument names no subcommand, so that
    ``invite B-1 --days 7`` (the issue's form) and ``invite create B-1`` both work."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["create", *args]
        return super().parse_args(ctx, args)


def store_option(func: F) -> F:
    return click.option(
        "--store", "store_url", metavar="URL",
        help="sqlite:///ABSOLUTE/PATH or redis://host:port/db (default: $VALIDATOR_STORE, else "
             "saml-validate-web.sqlite3 in your data folder): the web app's store, where its invites are kept.",
    )(func)


@contextmanager
def opened_store(store_url: str | None) -> Iterator[Store]:
    """``--store``, else ``$VALIDATOR_STORE``, else the web app's SQLite file in the user's data
    folder (:mod:`validator.store_location`); closed after. A URL we cannot use is a usage error
    naming where it came from."""
    from validator.store_location import open_web_store

    try:
        store = open_web_store(store_url, created=lambda said: click.echo(said, err=True))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store" if store_url else "$VALIDATOR_STORE") from None
    try:
        yield store
    finally:
        store.close()


def cli_who() -> str:
    """``cli:USER``; ``cli:unknown`` where the system cannot name the user (a bare container)."""
    try:
        return "cli:" + getpass.getuser()
    except (OSError, KeyError):
        return "cli:unknown"


def _base_url(option: str | None) -> str:
    url = option or os.environ.get("VALIDATOR_BASE_URL") or DEFAULT_BASE_URL
    if not url.startswith(("https://", "http://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL",
                                 param_hint="--base-url" if option else "$VALIDATOR_BASE_URL")
    return url


@click.group("invite", cls=DefaultCreateGroup, subcommand_metavar="BILLER | COMMAND [ARGS]...")
def invite() -> None:
    """Partner invite links: `invite BILLER` (short for `invite create BILLER`), `invite list`,
    `invite revoke INVITE_ID`."""


@invite.command("create")
@click.argument("biller_id", metavar="BILLER")
@click.option("--days", type=click.IntRange(DAYS_MIN, DAYS_MAX), default=14, show_default=True,
              help="How many days the link works.")
@click.option("--email", metavar="ADDR", help="Whom it is for, shown in `invite list` (nothing is mailed).")
@click.option("--base-url", metavar="URL", help="Where partners reach the web app (default: "
                                                 f"$VALIDATOR_BASE_URL, else {DEFAULT_BASE_URL}).")
@click.option("--crm-folder", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder of CRM records, one <biller-id>.toml each; BILLER must be in it.")
@store_option
def create_command(biller_id: str, days: int, email: str | None, base_url: str | None, crm_folder: Path,
                   store_url: str | None) -> None:
    """Make an invite link for BILLER and print it, this once: only its hash is kept."""
    from validator.web.partners import PartnerError, load_partner

    try:
        load_partner(crm_folder, biller_id)
    except PartnerError as exc:
        raise click.BadParameter(exc.message, param_hint="BILLER") from None
    url, who, now = _base_url(base_url), cli_who(), datetime.now(UTC)
    with opened_store(store_url) as store:
        try:
            made, token = create_invite(store, biller_id, days=days, email=email, created_by=who, now=now)
        except InviteError as exc:
            raise click.UsageError(str(exc)) from None
        record(store, event("invite-created", who, biller_id=biller_id, address=None, now=now,
                            detail=f"{made.id} until {made.expires_at}" + (f" for {made.email}" if made.email else "")))
    click.echo(f"Invite {made.id} for {biller_id}, valid until {made.expires_at}. "
               "Send this link to the partner; it is not shown again:", err=True)
    click.echo(invite_url(url, token))


@invite.command("list")
@click.option("--biller", "biller_id", metavar="BILLER", help="Only this biller's invites.")
@store_option
def list_command(biller_id: str | None, store_url: str | None) -> None:
    """Every invite, newest first: ID, biller, email, state (active, expired, revoked), expiry."""
    now = datetime.now(UTC)
    with opened_store(store_url) as store:
        found = list_invites(store, biller_id)
    if not found:
        click.echo("No invites.", err=True)
        return
    rows = [("ID", "BILLER", "EMAIL", "STATE", "EXPIRES")]
    rows += [(i.id, i.biller_id, i.email or "-", invite_state(i, now), i.expires_at) for i in found]
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@invite.command("revoke")
@click.argument("invite_id", metavar="INVITE_ID")
@store_option
def revoke_command(invite_id: str, store_url: str | None) -> None:
    """Revoke an invite (see `invite list`): its link stops working at once; the record stays."""
    who, now = cli_who(), datetime.now(UTC)
    with opened_store(store_url) as store:
        found = get_invite(store, invite_id)
        if found is None:
            raise click.BadParameter(f"there is no invite {invite_id!r} (see `invite list`)", param_hint="INVITE_ID")
        if not revoke_invite(store, invite_id, by=who, now=now):
            current = get_invite(store, invite_id) or found
            click.echo(f"{invite_id} was already revoked at {current.revoked_at} by {current.revoked_by}; "
                       "nothing changed.", err=True)
            return
        record(store, event("invite-revoked", who, biller_id=found.biller_id, address=None, detail=invite_id,
                            now=now))
    click.echo(f"Revoked {invite_id} (biller {found.biller_id}): its link no longer works.")
