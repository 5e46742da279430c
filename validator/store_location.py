"""Where the web app's store is when nothing names one, and the one way to open it.

``--store URL`` comes first, then ``$VALIDATOR_STORE``, then one SQLite file per user in the
user's data folder (:func:`default_store_path`: ``~/.local/share/saml-preflight/`` on Linux,
``~/Library/Application Support/saml-preflight/`` on macOS, ``%LOCALAPPDATA%\\saml-preflight\\``
on Windows). The web app (``serve``, or gunicorn), ``sweep``, and the ``staff``, ``token`` and
``invite`` groups all open it here, so they agree on one history wherever they are run from:
the working directory used to be the default, and a ``sweep`` run from another folder silently
began a new history there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from metadata.store import Store, open_store

STORE_FILE = "saml-validate-web.sqlite3"
"""The default store's file name (in the user's data folder; in the working directory before)."""
APP_FOLDER = "saml-preflight"
STORE_VARIABLE = "VALIDATOR_STORE"


def default_store_path() -> Path:
    """The default store: :data:`STORE_FILE` in the user's data folder (not made here)."""
    from platformdirs import user_data_path

    return user_data_path(APP_FOLDER, appauthor=False) / STORE_FILE


def open_web_store(store_url: str | None, *, created: Callable[[str], None] | None = None) -> Store:
    """The web app's store: `store_url` (``--store``), else ``$VALIDATOR_STORE``, else the default
    file, made with its folder when missing; `created` is then told where, in a sentence for a
    person. A URL that names no store we can open is a :class:`ValueError` (as :func:`open_store`)."""
    url = store_url or os.environ.get(STORE_VARIABLE)
    path = default_store_path()
    if url is not None:
        return open_store(url, path)
    new = not path.exists()
    store = open_store(None, path)
    if new and created is not None:
        created(created_message(path))
    return store


def created_message(path: Path, cwd: Path | None = None) -> str:
    """What to say when the default store was just made at `path`: where it is, how to choose
    another, and the store an earlier version left in the working directory, if there is one."""
    said = (f"created the web app's store (history, accounts, invites) at {path}; choose another with --store "
            f"or ${STORE_VARIABLE}")
    earlier = (cwd or Path.cwd()) / STORE_FILE
    if earlier.is_file() and earlier.resolve() != path.resolve():
        said += (f". An earlier version kept it in the working directory: to go on with that one, move "
                 f"{earlier} to {path}, or use --store sqlite:///{earlier.resolve().as_posix().lstrip('/')}")
    return said
