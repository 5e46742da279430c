"""The project's test IdP for gunicorn, configured for the HTTP-flow benchmark.

    BENCH_IDP_DIR=<workdir>/idp gunicorn -w 2 -b 127.0.0.1:PORT 'bench.idp_app:app'

``app = create_app(settings, base=<folder>)`` with the settings in ``<folder>/idp.toml``
(written by :func:`bench.workdir.write_idp_settings`): an inline SP, one ``auto_login``
persona with 8 claims, a SQLite store and a key folder in the same folder, so that both
workers share them. Each worker builds its own app; the first one creates the key.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask


def create(folder: Path) -> Flask:
    from idp import create_app
    from idp.settings import load_settings

    return create_app(load_settings(folder / "idp.toml", environ={}), base=folder)


def __getattr__(name: str) -> Flask:
    # `bench.idp_app:app` for gunicorn, built on first access (PEP 562), so that importing
    # the module without the environment variable stays harmless.
    if name != "app":
        raise AttributeError(name)
    folder = os.environ.get("BENCH_IDP_DIR")
    if not folder:
        raise RuntimeError("set BENCH_IDP_DIR to the folder holding idp.toml")
    return create(Path(folder))
