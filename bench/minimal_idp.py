"""A minimal Flask IdP endpoint that signs with python-xmlsec in process: the ceiling reference.

    BENCH_MINIMAL_DIR=<workdir> gunicorn -w 2 -b 127.0.0.1:PORT 'bench.minimal_idp:app'

The issue quotes "a minimal Flask endpoint signing with python-xmlsec" beside the pysaml2
one; this is that endpoint, so that both references are measured on the same machine in the
same run. ``GET /sso?SAMLRequest=…``: inflate (capped), parse with lxml (no entities, no
network), take ID, Issuer and the ACS URL, check the issuer and ACS against the one SP, build
the response with lxml (the same elements and 8 claims as the project's), sign the assertion
(RSA-SHA256, exclusive c14n) with a key loaded once, and answer the auto-POST form. No
session, store, request findings or templates: the least a signing IdP does per flow, which
bounds what the project's IdP can reach here. It never imports the project.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os
import secrets
import zlib
from pathlib import Path

import xmlsec
from flask import Flask, Response, request
from lxml import etree
from xmlsec import constants as xc

from metadata.saml import BEARER, ENTITY, SAML, SAMLP, SUCCESS

UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
PPT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
MAX_XML = 64 * 1024
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{SAML}}}{tag}", attrs)
    element.text = text
    return element


def create_app(folder: Path) -> Flask:
    """The endpoint for the work folder `folder` (``bench.json``, ``key.pem``, ``cert.pem``, ``minimal.json``)."""
    info = json.loads((folder / "bench.json").read_text())
    base_url = json.loads((folder / "minimal.json").read_text())["base_url"]
    issuer, sso_url = base_url + "/metadata", base_url + "/sso"
    key = xmlsec.Key.from_memory((folder / "key.pem").read_bytes(), xc.KeyDataFormatPem, None)  # once
    key.load_cert_from_memory((folder / "cert.pem").read_bytes(), xc.KeyDataFormatCertPem)
    app = Flask(__name__)

    def response_for(request_id: str) -> bytes:
        now = dt.datetime.now(dt.UTC)
        instant = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        expires = (now + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        response = etree.Element(f"{{{SAMLP}}}Response", nsmap={"samlp": SAMLP, "saml": SAML}, ID="_" +
                                 secrets.token_hex(16), InResponseTo=request_id, Version="2.0", IssueInstant=instant,
                                 Destination=info["acs"])
        _sub(response, "Issuer", issuer, Format=ENTITY)
        status = etree.SubElement(response, f"{{{SAMLP}}}Status")
        etree.SubElement(status, f"{{{SAMLP}}}StatusCode", Value=SUCCESS)
        assertion = _sub(response, "Assertion", ID="_" + secrets.token_hex(16), Version="2.0", IssueInstant=instant)
        _sub(assertion, "Issuer", issuer, Format=ENTITY)
        subject = _sub(assertion, "Subject")
        _sub(subject, "NameID", info["nameid"], Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
        confirmation = _sub(subject, "SubjectConfirmation", Method=BEARER)
        _sub(confirmation, "SubjectConfirmationData", InResponseTo=request_id, NotOnOrAfter=expires,
             Recipient=info["acs"])
        conditions = _sub(assertion, "Conditions", NotBefore=instant, NotOnOrAfter=expires)
        _sub(_sub(conditions, "AudienceRestriction"), "Audience", info["sp_entity_id"])
        authn = _sub(assertion, "AuthnStatement", AuthnInstant=instant, SessionIndex="_" + secrets.token_hex(16))
        _sub(_sub(authn, "AuthnContext"), "AuthnContextClassRef", PPT)
        statement = _sub(assertion, "AttributeStatement")
        for name, value in info["claims"].items():
            _sub(_sub(statement, "Attribute", Name=name, NameFormat=UNSPECIFIED), "AttributeValue", value)
        signature = xmlsec.template.create(assertion, xc.TransformExclC14N, xc.TransformRsaSha256)
        assertion.insert(1, signature)
        reference = xmlsec.template.add_reference(signature, xc.TransformSha256, uri="#" + assertion.get("ID", ""))
        xmlsec.template.add_transform(reference, xc.TransformEnveloped)
        xmlsec.template.add_transform(reference, xc.TransformExclC14N)
        xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
        ctx = xmlsec.SignatureContext()
        ctx.key = key
        ctx.register_id(assertion, "ID")
        ctx.sign(signature)
        return etree.tostring(response)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/sso")
    def sso() -> Response:
        try:
            inflater = zlib.decompressobj(-15)
            xml = inflater.decompress(base64.b64decode(request.args["SAMLRequest"], validate=True), MAX_XML)
            if inflater.unconsumed_tail:
                raise ValueError("the AuthnRequest is too large")
            root = etree.fromstring(xml, _PARSER)
            request_id = root.get("ID", "")
            if (root.tag != f"{{{SAMLP}}}AuthnRequest" or root.findtext(f"{{{SAML}}}Issuer") != info["sp_entity_id"]
                    or root.get("Destination") != sso_url or root.get("AssertionConsumerServiceURL") != info["acs"]
                    or not request_id):
                raise ValueError("not an AuthnRequest of the registered SP for this endpoint")
        except (KeyError, ValueError, zlib.error, etree.XMLSyntaxError) as exc:
            return Response(f"bad AuthnRequest: {exc}\n", status=400, mimetype="text/plain")
        value = base64.b64encode(response_for(request_id)).decode("ascii")
        page = (f'<!doctype html><html><body><form method="post" action="{html.escape(info["acs"])}">'
                f'<input type="hidden" name="SAMLResponse" value="{value}"></form>'
                "<script>document.forms[0].submit();</script></body></html>")
        return Response(page, mimetype="text/html")

    return app


def __getattr__(name: str) -> Flask:
    # `bench.minimal_idp:app` for gunicorn, built on first access (PEP 562).
    if name != "app":
        raise AttributeError(name)
    folder = os.environ.get("BENCH_MINIMAL_DIR")
    if not folder:
        raise RuntimeError("set BENCH_MINIMAL_DIR to the benchmark's work folder")
    return create_app(Path(folder))
