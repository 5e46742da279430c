"""Signed responses per second, in process, three ways (each run in its own fresh process).

``project``  the project: ``idp.assertion.build_response`` (one persona, 8 claims, the
             assertion signed with RSA-SHA256 / exclusive c14n by ``metadata.signing.sign``)
             then ``serialize`` — build, sign and serialize, as ``idp.flow`` does per login.
``floor``    raw python-xmlsec on a prepared template: the same response built once, unsigned,
             with its ds:Signature template; per response only a copy of the tree, a signature
             context holding a key loaded once, ``ctx.sign`` and ``tostring``. The floor of
             what signing in process can cost here.
``pysaml2``  ``saml2.server.Server.create_authn_response(..., sign_assertion=True)`` with a
             minimal IdP configuration, through pysaml2's default crypto backend: the
             ``xmlsec1`` program, one subprocess (plus temporary files) per signature.

All three sign with the same RSA-2048 key (``key.pem`` of the work folder) and carry the same
8 claims. Each loop runs for `seconds` of wall time after a short warm-up; the result has one
signed sample for the parent to verify. The pysaml2 kind never imports the project.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import resource
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import workdir

IDP_ENTITY_ID = "https://idp.bench.example/metadata"
WARM_UP = 10


@dataclass(frozen=True)
class PemKey:
    key_pem: bytes
    cert_pem: bytes


def _loop(one: Callable[[], bytes], seconds: float) -> dict[str, Any]:
    for _ in range(WARM_UP):
        sample = one()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    count, cpu, start = 0, time.process_time(), time.perf_counter()
    stop_at = start + seconds
    while time.perf_counter() < stop_at:
        sample = one()
        count += 1
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return {
        "responses": count,
        "seconds": wall,
        "per_second": count / wall,
        "ms_each": wall / count * 1000,
        "cpu_seconds": cpu,
        "subprocess_cpu_seconds": subprocess_cpu,
        "bytes": len(sample),
        "sample": base64.b64encode(sample).decode("ascii"),
    }


def _spec_args() -> dict[str, Any]:
    return {
        "issuer": IDP_ENTITY_ID,
        "destination": workdir.ACS_URL,
        "audience": workdir.SP_ENTITY_ID,
        "nameid": workdir.NAMEID,
        "nameid_format": workdir.EMAIL_FORMAT,
    }


def project(folder: Path, seconds: float) -> dict[str, Any]:
    from idp.assertion import Claim, ResponseSpec, build_response, serialize

    key = PemKey((folder / "key.pem").read_bytes(), (folder / "cert.pem").read_bytes())
    claims = tuple(Claim(name, (value,)) for name, value in workdir.CLAIMS.items())

    def one() -> bytes:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        spec = ResponseSpec(**_spec_args(), in_response_to="_" + secrets.token_hex(16),
                            session_index="_" + secrets.token_hex(16), claims=claims, sign="assertion")
        return serialize(build_response(spec, now=now, key=key))

    return _loop(one, seconds)


def floor(folder: Path, seconds: float) -> dict[str, Any]:
    import copy

    import xmlsec
    from lxml import etree
    from xmlsec import constants as xc

    from idp.assertion import Claim, ResponseSpec, build_response

    claims = tuple(Claim(name, (value,)) for name, value in workdir.CLAIMS.items())
    spec = ResponseSpec(**_spec_args(), in_response_to="_" + secrets.token_hex(16),
                        session_index="_" + secrets.token_hex(16), claims=claims, sign="none")
    key_pem, cert_pem = (folder / "key.pem").read_bytes(), (folder / "cert.pem").read_bytes()
    template = build_response(spec, now=dt.datetime.now(dt.UTC).replace(microsecond=0), key=PemKey(key_pem, cert_pem))
    assertion = template[2]
    signature = xmlsec.template.create(assertion, xc.TransformExclC14N, xc.TransformRsaSha256)
    assertion.insert(1, signature)  # right after saml:Issuer
    reference = xmlsec.template.add_reference(signature, xc.TransformSha256, uri="#" + assertion.get("ID"))
    xmlsec.template.add_transform(reference, xc.TransformEnveloped)
    xmlsec.template.add_transform(reference, xc.TransformExclC14N)
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    key = xmlsec.Key.from_memory(key_pem, xc.KeyDataFormatPem, None)  # once
    key.load_cert_from_memory(cert_pem, xc.KeyDataFormatCertPem)

    def one() -> bytes:
        response = copy.deepcopy(template)
        ctx = xmlsec.SignatureContext()
        ctx.key = key
        ctx.register_id(response[2], "ID")
        ctx.sign(response[2][1])
        return etree.tostring(response)

    return _loop(one, seconds)


def pysaml2(folder: Path, seconds: float) -> dict[str, Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pysaml2 imports a cipher mode that cryptography deprecates
        from saml2.authn_context import PASSWORDPROTECTEDTRANSPORT
        from saml2.config import IdPConfig
        from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
        from saml2.server import Server

    config = workdir.pysaml2_config(folder, "https://idp.bench.example")
    server = Server(config=IdPConfig().load(json.loads(json.dumps(config))))
    identity = {name: [value] for name, value in workdir.CLAIMS.items()}

    def one() -> bytes:
        response = server.create_authn_response(
            identity, in_response_to="_" + secrets.token_hex(16), destination=workdir.ACS_URL,
            sp_entity_id=workdir.SP_ENTITY_ID, userid=workdir.NAMEID,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=workdir.NAMEID),
            authn={"class_ref": PASSWORDPROTECTEDTRANSPORT}, sign_assertion=True,
        )
        return str(response).encode()

    return _loop(one, seconds)


KINDS: dict[str, Callable[[Path, float], dict[str, Any]]] = {
    "sign-project": project, "sign-floor": floor, "sign-pysaml2": pysaml2,
}
