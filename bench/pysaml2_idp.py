"""A minimal pysaml2-based IdP endpoint, the reference of the HTTP-flow benchmark.

    BENCH_PYSAML2_DIR=<workdir>/pysaml2 gunicorn -w 2 -b 127.0.0.1:PORT 'bench.pysaml2_idp:app'

``GET /sso?SAMLRequest=…`` (HTTP-Redirect) is parsed with ``Server.parse_authn_request`` and
answered, for the one fixed user, with ``create_authn_response(..., sign_assertion=True)``
(signed through pysaml2's default crypto backend, the ``xmlsec1`` program) and
``apply_binding(HTTP-POST)``: the auto-POST form. No session, no login page, no store — the
least an IdP built on pysaml2 does per flow. It never imports the project.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from flask import Flask, Response, request

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pysaml2 imports a cipher mode that cryptography deprecates
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.authn_context import PASSWORDPROTECTEDTRANSPORT
    from saml2.config import IdPConfig
    from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
    from saml2.server import Server

AUTHN = {"class_ref": PASSWORDPROTECTEDTRANSPORT}


def create_app(folder: Path) -> Flask:
    """The endpoint for the configuration in `folder` (``config.json`` and ``../bench.json``)."""
    config = IdPConfig().load(json.loads((folder / "config.json").read_text()))
    server = Server(config=config)
    info = json.loads((folder.parent / "bench.json").read_text())
    identity = {name: [value] for name, value in info["claims"].items()}
    nameid = info["nameid"]
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/sso")
    def sso() -> Response:
        saml_request = request.args.get("SAMLRequest")
        if not saml_request:
            return Response("no SAMLRequest\n", status=400, mimetype="text/plain")
        try:
            parsed = server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)
            args = server.response_args(parsed.message, [BINDING_HTTP_POST])
        except Exception as exc:  # the reference endpoint answers 400 to any bad request
            return Response(f"bad AuthnRequest: {exc}\n", status=400, mimetype="text/plain")
        authn_response = server.create_authn_response(
            identity,
            userid=nameid,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=nameid),
            authn=AUTHN,
            sign_assertion=True,
            **args,
        )
        http = server.apply_binding(BINDING_HTTP_POST, str(authn_response), args["destination"],
                                    request.args.get("RelayState", ""), response=True)
        return Response(http["data"], mimetype="text/html")

    return app


def __getattr__(name: str) -> Flask:
    # `bench.pysaml2_idp:app` for gunicorn, built on first access (PEP 562), so that importing
    # the module without the environment variable stays harmless.
    if name != "app":
        raise AttributeError(name)
    folder = os.environ.get("BENCH_PYSAML2_DIR")
    if not folder:
        raise RuntimeError("set BENCH_PYSAML2_DIR to the folder holding config.json")
    return create_app(Path(folder))
