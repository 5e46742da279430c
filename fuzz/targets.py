"""The fuzz targets: each takes one input's bytes, exactly as the project would receive them.

The property every target checks (:func:`exercise`): the input ends in findings — a Report that
renders — or in one of the errors the code documents for untrusted input, with one of its
documented ``kind`` values. Any other exception is a bug, and so is a hang or a memory blow-up
past the limits, which the runner (:mod:`fuzz.runner`) watches from outside the process.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from fuzz.material import NOW, REQUEST_ID, SSO_URL, material
from metadata.authn_request import NotAnAuthnRequest, read_authn_request
from metadata.bindings import BindingError, decode_post, decode_redirect
from metadata.crm import parse_crm
from metadata.errors import UNSAFE_XML_KINDS, CRMRecordError, UnsafeXML
from metadata.xml import (
    MESSAGE_LIMITS,
    PASTED_LIMITS,
    REQUEST_LIMITS,
    XMLLimits,
    metadata_limits,
    parse_untrusted,
    signed_bytes_limits,
)
from validator.checks.crm_record import check_record
from validator.checks.request import RequestContext, check_authn_request, request_signature
from validator.inspection import MetadataOptions, inspect_metadata_bytes
from validator.metadata_facts import metadata_report
from validator.render import render
from validator.report import Report
from validator.response_inspection import ResponseOptions, inspect_response_bytes
from validator.response_report import response_report

KiB = 1024

# The `kind` values each error family documents (its docstring); any other is not a clean error.
DOCUMENTED_KINDS: dict[type[Exception], frozenset[str]] = {
    UnsafeXML: UNSAFE_XML_KINDS,
    BindingError: frozenset({"missing", "base64", "deflate", "too-large", "duplicate-parameter",
                             "encoded-parameter-name", "relay-state", "malformed-query"}),
}


class UncleanError(AssertionError):
    """An allowed exception family, raised with a `kind` its docstring does not list."""


@dataclass(frozen=True)
class Target:
    name: str
    summary: str
    run: Callable[[bytes], object]
    allowed: tuple[type[Exception], ...]
    """The documented errors an input may end in; anything else breaks the property."""
    max_len: int
    """Longest input the fuzzers make (seeds longer than this are left out)."""


def exercise(target: Target, data: bytes) -> str:
    """Run one input; return how it ended (``ok`` or the error's class and kind). Raises on a bug."""
    try:
        target.run(data)
    except target.allowed as exc:
        kind = getattr(exc, "kind", None)
        for family, kinds in DOCUMENTED_KINDS.items():
            if isinstance(exc, family) and kind not in kinds:
                raise UncleanError(f"{type(exc).__name__} with undocumented kind {kind!r}: {exc}") from exc
        if not str(exc):
            raise UncleanError(f"{type(exc).__name__} without a message") from exc
        return f"{type(exc).__name__}" + (f":{kind}" if kind else "")
    return "ok"


def _rendered(report: Report) -> None:
    # A report is only findings if it can be shown: the JSON contract and the terminal text.
    render(report, "json")
    render(report, "text")


# ------------------------------------------------------------------------------------ targets

LIMITS: tuple[XMLLimits, ...] = (REQUEST_LIMITS, MESSAGE_LIMITS, PASTED_LIMITS, metadata_limits())


def parse_xml(data: bytes) -> None:
    """`metadata.xml.parse_untrusted` under each limits object; an accepted tree must respect them."""
    refusal: UnsafeXML | None = None  # raised when the largest limits refuse the input too
    for limits in LIMITS:
        try:
            tree = parse_untrusted(data, limits)
        except UnsafeXML as exc:
            refusal = exc
            continue
        root = tree.getroot()
        assert tree.docinfo.internalDTD is None and tree.docinfo.externalDTD is None, "a DTD was accepted"
        assert len(data) <= limits.max_bytes, "an input over max_bytes was accepted"
        assert int(root.xpath("count(//*)")) <= limits.max_elements, "too many elements were accepted"
        assert not root.xpath("/*" * (limits.max_depth + 1)), "too deep a document was accepted"
    if refusal is not None:
        raise refusal


def inspect_metadata(data: bytes) -> None:
    """The full metadata pipeline, twice: trusting the IdP key without a CRM record, and with the
    CRM record, nothing trusted and every IdP entity of an aggregate judged."""
    m = material()
    for crm, options in (
        (None, MetadataOptions(now=NOW, trusted=(m.idp_key.cert_der,))),
        (m.crm, MetadataOptions(now=NOW, all_entities=True, warn_days=60)),
    ):
        inspection = inspect_metadata_bytes(data, "fuzz input", options, crm)
        _rendered(metadata_report(inspection, crm_source="fuzz CRM record" if crm else None))


def inspect_response(data: bytes) -> None:
    """The response pipeline as ``saml-validate response`` runs it, with the IdP's certificate,
    the SP key, the request ID and the CRM record; and once more with no trust at all."""
    m = material()
    trusted = ResponseOptions(now=NOW, trusted=(m.idp_key.cert_der,), idp_entity_id=m.crm.idp.entity_id,
                              sp_key_pem=m.sp_key.key_pem, request_id=REQUEST_ID,
                              is_replay=frozenset({"_seen"}).__contains__)
    for options, crm in ((trusted, m.crm), (ResponseOptions(now=NOW), None)):
        _rendered(response_report(inspect_response_bytes(data, "fuzz input", options, crm)))


def authn_request(data: bytes) -> None:
    """The IdP's /sso chain (idp/sso.py): a raw query string (starting with ``?``) through the
    HTTP-Redirect decoder, anything else as an HTTP-POST form body; then read, signature, checks."""
    m = material()
    message = decode_redirect(data, "SAMLRequest") if data.startswith(b"?") else decode_post(data, "SAMLRequest")
    authn = read_authn_request(message.tree)
    sp = m.sp if authn.issuer == m.sp.entity_id else None
    signature = request_signature(message, sp, allow_sha1=len(data) % 2 == 0)
    if signature.signed_xml is not None:
        authn = read_authn_request(parse_untrusted(signature.signed_xml, signed_bytes_limits(REQUEST_LIMITS)))
    ctx = RequestContext(
        request=authn, sp=sp, idp_entity_id="https://idp.fuzz.example/saml", sso_urls=(SSO_URL,), now=NOW,
        signature=signature, supported_nameid_formats=("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",),
        idp_requires_signed=True, registered_entity_ids=(m.sp.entity_id,),
    )
    check_authn_request(ctx)


def crm_record(data: bytes) -> None:
    """`metadata.crm.parse_crm` as TOML and as JSON; a record that loads is then judged."""
    refusals: list[CRMRecordError] = []
    for fmt in ("toml", "json"):
        try:
            record = parse_crm(data, "fuzz input", fmt)
        except CRMRecordError as exc:
            refusals.append(exc)
            continue
        check_record(record, "fuzz input")
    if len(refusals) == 2:  # neither TOML nor JSON
        raise refusals[0]


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("xml", "metadata.xml.parse_untrusted with each limits object", parse_xml, (UnsafeXML,), 128 * KiB),
        Target("metadata", "validator.inspection.inspect_metadata_bytes, with and without a CRM record",
               inspect_metadata, (), 192 * KiB),
        Target("response", "validator.response_inspection.inspect_response_bytes (XML, base64, form, "
               "SAML-tracer)", inspect_response, (), 256 * KiB),
        Target("request", "metadata.bindings.decode_redirect/decode_post, then read_authn_request, "
               "request_signature, check_authn_request", authn_request,
               (BindingError, UnsafeXML, NotAnAuthnRequest), 96 * KiB),
        Target("crm", "metadata.crm.parse_crm (TOML and JSON), then check_record", crm_record,
               (CRMRecordError,), 16 * KiB),
    )
}


def target(name: str) -> Target:
    """A target by name, or ``package.module:ATTRIBUTE`` for one defined elsewhere (the runner's tests)."""
    if ":" not in name:
        return TARGETS[name]
    module, _, attribute = name.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if not isinstance(found, Target):
        raise TypeError(f"{name} is not a fuzz target")
    return found
