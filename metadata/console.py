"""How both command lines (``saml-validate``, ``saml-idp``) run: one exit-code contract.

A usage error or a known failure of the tool is printed once as ``Name: message`` and exits 2;
so does a bug of ours, which must never read as "errors found" (exit 1).
"""

from __future__ import annotations

import sys

import click

from metadata.errors import MetadataError


def run(group: click.Group, *known: type[Exception]) -> None:
    """Run `group`; `known` are the calling package's own failures (besides the ground floor's
    :class:`MetadataError` and :class:`OSError`), each an exit 2 with its message."""
    failures: tuple[type[Exception], ...] = (MetadataError, OSError, *known)
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except failures as exc:
        click.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        click.echo(f"InternalError: {type(exc).__name__}: {exc} (please report this with the input that caused it)",
                   err=True)
        sys.exit(2)
