"""Golden files of the test IdP's SAML Response, one per vendor profile, compared byte for byte.

Each response is what the running IdP posts to the SP, taken the way an SP gets it: an
SP-initiated login through the Flask app (``/sso`` with HTTP-Redirect, ``/login`` picking the
persona, the auto-POST form's SAMLResponse). Everything that would vary is pinned: the clock, the
ID generator, the request ID, the persona and the SP. Encryption is left out: its session key and
OAEP padding are random, so an encrypted response is never byte-stable.

No private key is committed (DESIGN.md, "State"): the IdP signs with a key made once per test
session (:func:`signing_pair`). What that key decides is masked before the comparison
(:func:`key_independent`): the text of every ds:SignatureValue and ds:X509Certificate, and the
ds:DigestValue of a Reference whose content holds another ds:Signature (the Response's, when the
assertion is signed too: its digest covers the assertion's SignatureValue). Every other byte is
compared, the assertion's and the unsigned parts' DigestValues included, so a change of signed
content still shows. The real, unmasked response is verified with the session key's certificate.

Rewrite the files with ``pytest tests/test_idp_golden.py --update-golden`` (the plugin is
``tests/golden_plugin.py``).
"""

from __future__ import annotations

import base64
import html
import itertools
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree

from idp import create_app
from idp.settings import Persona, Settings
from idp.vendors import PROFILES
from metadata.bindings import encode_redirect
from metadata.keys import KeyPair, generate_keypair
from metadata.response import verify_response
from metadata.saml import DS, SAML, SAMLP
from metadata.store import SQLiteStore
from metadata.xml import MESSAGE_LIMITS, parse_untrusted
from tests.golden_plugin import GOLDEN_ROOT, UPDATE_COMMAND, Golden, compare_golden, golden_diff

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE_URL = "https://idp.golden.example"
SP_ENTITY = "https://sp.golden.example/saml/metadata"
ACS = "https://sp.golden.example/saml/acs"
REQUEST_ID = "_golden-request-0001"
RESPONSES = "idp-responses"

SIGNATURE_VALUE = b"SIGNATURE-VALUE"
CERTIFICATE = b"CERTIFICATE"
DIGEST_OVER_SIGNATURE = b"DIGEST-VALUE-OVER-A-SIGNATURE"
_SIGNATURE, _SIGNATURE_VALUE = f"{{{DS}}}Signature", f"{{{DS}}}SignatureValue"
_CERTIFICATE, _DIGEST_VALUE = f"{{{DS}}}X509Certificate", f"{{{DS}}}DigestValue"

# Non-ASCII text, characters XML escapes and a multi-valued claim, so serialisation is pinned too.
PERSONA = Persona(
    id="zoe", display_name="Zoë Golden", nameid="zoe@golden.example",
    claims={"AccountNumber": "100200300", "Email": "zoe@golden.example", "LoginTypeId": "1",
            "Groups": ["billing", "support & accounts"], "Company": "Müller <Billing> & Sons"},
)

AUTHN_REQUEST = (
    f'<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="{REQUEST_ID}" Version="2.0" '
    f'IssueInstant="{NOW:%Y-%m-%dT%H:%M:%SZ}" Destination="{BASE_URL}/sso" AssertionConsumerServiceURL="{ACS}" '
    f'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{SP_ENTITY}</saml:Issuer>'
    "</samlp:AuthnRequest>"
).encode()


def new_signing_pair() -> KeyPair:
    """A fresh IdP signing key, made the way the IdP makes its own; it lives in memory and tmp_path only."""
    return generate_keypair("SAML Preflight golden-file IdP (per test session)", now=NOW - timedelta(days=1))


@pytest.fixture(scope="session")
def signing_pair() -> KeyPair:
    """The IdP's signing key for this test session: made once, never written to the repository."""
    return new_signing_pair()


def pinned_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"_golden{next(counter):04d}"


def install_key(folder: Path, pair: KeyPair) -> None:
    """Put `pair` where the IdP's key folder looks, so the IdP signs with it instead of making its own."""
    folder.mkdir(mode=0o700, parents=True)
    for name, data in (("signing.key", pair.key_pem), ("signing.crt", pair.cert_pem)):
        (folder / name).touch(mode=0o600)
        (folder / name).write_bytes(data)


def idp_response(vendor: str, tmp_path: Path, pair: KeyPair) -> bytes:
    """The SAMLResponse the IdP, playing `vendor` and signing with `pair`, posts to the SP after an
    SP-initiated login."""
    install_key(tmp_path / "keys", pair)
    settings = Settings.model_validate({
        "server": {"base_url": BASE_URL, "vendor": vendor, "key_folder": str(tmp_path / "keys"), "dev_mode": False},
        "personas": [PERSONA.model_dump()],
        "sps": [{"entity_id": SP_ENTITY, "acs": [ACS]}],
    })
    app = create_app(settings, base=tmp_path, store=SQLiteStore(tmp_path / "state.sqlite3"), clock=lambda: NOW,
                     new_id=pinned_ids())
    app.testing = True
    client = app.test_client()

    url = urlsplit(encode_redirect(AUTHN_REQUEST, param="SAMLRequest", destination=f"{BASE_URL}/sso"))
    started = client.get(f"{url.path}?{url.query}")
    assert started.status_code == 303, started.get_data(as_text=True)[:500]
    token = parse_qs(urlsplit(started.headers["Location"]).query)["request"][0]
    page = client.post("/login", data={"request": token, "persona": PERSONA.id})
    text = page.get_data(as_text=True)
    assert page.status_code == 200, text[:500]
    found = re.search(r'<input type="hidden" name="SAMLResponse" value="([^"]*)">', text)
    assert found is not None, text[:500]
    return base64.b64decode(html.unescape(found.group(1)), validate=True)


def _key_decided(root: etree._Element) -> list[tuple[bytes, bytes | None]]:
    """Every ds:SignatureValue, ds:X509Certificate and ds:DigestValue of `root` in document order, each
    as its tag as written (``SignatureValue`` or ``ds:SignatureValue``…) and its placeholder, or None
    for a DigestValue the key does not decide."""
    by_id = {element.get("ID"): element for element in root.iter() if isinstance(element.tag, str)}
    found: list[tuple[bytes, bytes | None]] = []
    for element in root.iter(_SIGNATURE_VALUE, _CERTIFICATE, _DIGEST_VALUE):
        assert len(element) == 0, f"{element.tag} has child elements"
        qname = (f"{element.prefix}:" if element.prefix else "") + etree.QName(element).localname
        placeholder: bytes | None
        if element.tag == _SIGNATURE_VALUE:
            placeholder = SIGNATURE_VALUE
        elif element.tag == _CERTIFICATE:
            placeholder = CERTIFICATE
        else:
            # DigestValue < Reference < SignedInfo < Signature. The digest covers the key's output only
            # when the referenced content holds a signature other than this (enveloped) one.
            reference = element.getparent()
            uri = reference.get("URI", "") if reference is not None else ""
            target = root if uri == "" else by_id.get(uri[1:]) if uri.startswith("#") else None
            signed_info = reference.getparent() if reference is not None else None
            signature = signed_info.getparent() if signed_info is not None else None
            assert target is not None and signature is not None, f"cannot resolve Reference URI {uri!r}"
            over_signature = any(inner is not signature for inner in target.iter(_SIGNATURE))
            placeholder = DIGEST_OVER_SIGNATURE if over_signature else None
        found.append((qname.encode(), placeholder))
    return found


def key_independent(response: bytes) -> bytes:
    """`response` with the text its signing key decides (see the module docstring) replaced by fixed
    placeholders, and every other byte as the IdP serialised it.

    lxml (on the IdP's own output, via parse_untrusted) says which elements those are; the bytes are
    then cut in one forward pass of ``bytes.find``, so nothing is re-serialised. Each tag must occur in
    the bytes exactly as often as lxml found the element, so that no other element is touched.
    """
    targets = _key_decided(parse_untrusted(response, MESSAGE_LIMITS).getroot())
    for qname in {qname for qname, _ in targets}:
        expected = sum(1 for other, _ in targets if other == qname)
        found = response.count(b"<" + qname + b">")
        assert found == expected, f"<{qname.decode()}> occurs {found} times in the bytes, lxml found {expected}"
    parts: list[bytes] = []
    position = 0
    for qname, placeholder in targets:
        opening, closing = b"<" + qname + b">", b"</" + qname + b">"
        start = response.find(opening, position)
        end = response.find(closing, start)
        assert start != -1 and end != -1, f"<{qname.decode()}> not found in order"
        body = start + len(opening)
        parts += [response[position:body], response[body:end] if placeholder is None else placeholder]
        position = end
    parts.append(response[position:])
    return b"".join(parts)


@pytest.mark.parametrize("vendor", list(PROFILES))
def test_idp_response_matches_its_golden_file(vendor: str, tmp_path: Path, golden: Golden,
                                              signing_pair: KeyPair) -> None:
    name = f"{RESPONSES}/{vendor}.xml"
    response = idp_response(vendor, tmp_path, signing_pair)
    golden.check(name, key_independent(response))

    # The real response (not its masked golden form) must be one the validator's verifier accepts.
    verified = verify_response(parse_untrusted(response, MESSAGE_LIMITS), (signing_pair.cert_der,))
    sign = PROFILES[vendor].sign
    assert verified.response_signed == (sign in ("response", "both"))
    assert verified.assertion_signed == (sign in ("assertion", "both"))
    assert verified.response.get("InResponseTo") == REQUEST_ID
    assert verified.response.get("Destination") == ACS
    assert verified.assertion is not None
    audience = verified.assertion.findtext(f"{{{SAML}}}Conditions/{{{SAML}}}AudienceRestriction/{{{SAML}}}Audience")
    assert audience == SP_ENTITY


def test_every_golden_response_belongs_to_a_vendor_profile() -> None:
    # A profile without a golden file fails above; a golden file without a profile is stale.
    assert sorted(p.stem for p in (GOLDEN_ROOT / RESPONSES).glob("*.xml")) == sorted(PROFILES)


def test_no_key_or_certificate_is_kept_with_the_golden_files() -> None:
    for path in GOLDEN_ROOT.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"PRIVATE KEY" not in data and b"BEGIN CERTIFICATE" not in data, path
            assert path.suffix not in (".key", ".pem", ".crt", ".der", ".p12", ".pfx"), path
    for path in (GOLDEN_ROOT / RESPONSES).glob("*.xml"):
        data = path.read_bytes()
        assert data.count(b">" + SIGNATURE_VALUE + b"<") == data.count(b"SignatureValue>") // 2, path
        assert data.count(b">" + CERTIFICATE + b"<") == data.count(b"X509Certificate>") // 2, path


def test_the_same_login_gives_the_same_bytes(tmp_path: Path, signing_pair: KeyPair) -> None:
    # Otherwise --update-golden would write a file that the next run no longer matches.
    one = idp_response("shibboleth", tmp_path / "one", signing_pair)
    assert one == idp_response("shibboleth", tmp_path / "two", signing_pair)


@pytest.mark.parametrize("vendor", ["shibboleth", "generic"])
def test_the_golden_bytes_do_not_depend_on_the_signing_key(vendor: str, tmp_path: Path,
                                                           signing_pair: KeyPair) -> None:
    other = new_signing_pair()
    ours = idp_response(vendor, tmp_path / "ours", signing_pair)
    theirs = idp_response(vendor, tmp_path / "theirs", other)
    assert ours != theirs
    assert key_independent(ours) == key_independent(theirs)
    verify_response(parse_untrusted(theirs, MESSAGE_LIMITS), (other.cert_der,))


def test_the_mask_replaces_only_what_the_key_decides(tmp_path: Path, signing_pair: KeyPair) -> None:
    assert PROFILES["shibboleth"].sign == "both"  # the Response's digest covers the assertion's signature
    response = idp_response("shibboleth", tmp_path, signing_pair)
    masked = key_independent(response)
    real_root = parse_untrusted(response, MESSAGE_LIMITS).getroot()
    masked_root = parse_untrusted(masked, MESSAGE_LIMITS).getroot()
    real, kept = list(real_root.iter()), list(masked_root.iter())
    assert [(e.tag, dict(e.attrib), e.tail) for e in real] == [(e.tag, dict(e.attrib), e.tail) for e in kept]
    changed = [(a.tag, b.text) for a, b in zip(real, kept, strict=True) if a.text != b.text]
    assert changed == [
        (_DIGEST_VALUE, DIGEST_OVER_SIGNATURE.decode()),  # the Response's Reference: its content holds a signature
        (_SIGNATURE_VALUE, SIGNATURE_VALUE.decode()), (_CERTIFICATE, CERTIFICATE.decode()),
        (_SIGNATURE_VALUE, SIGNATURE_VALUE.decode()), (_CERTIFICATE, CERTIFICATE.decode()),
    ]
    # The assertion's DigestValue depends on the signed content only, and stays.
    assertion_digest = masked_root.find(f"{{{SAML}}}Assertion/{_SIGNATURE}//{_DIGEST_VALUE}")
    assert assertion_digest is not None and len(assertion_digest.text or "") == 44


def test_the_mask_touches_ds_elements_only_and_refuses_what_it_cannot_cut() -> None:
    document = (f'<r xmlns:ds="{DS}"><SignatureValue>kept</SignatureValue>'
                "<ds:SignatureValue>c2lnbmVk</ds:SignatureValue></r>").encode()
    assert key_independent(document) == (f'<r xmlns:ds="{DS}"><SignatureValue>kept</SignatureValue>'
                                         "<ds:SignatureValue>SIGNATURE-VALUE</ds:SignatureValue></r>").encode()
    with pytest.raises(AssertionError, match="occurs 0 times"):
        key_independent(f'<r xmlns:ds="{DS}"><ds:SignatureValue Id="s">c2ln</ds:SignatureValue></r>'.encode())


# The golden check itself can fail ------------------------------------------------------------------

def test_a_different_byte_string_is_a_mismatch_with_a_diff_and_the_update_command(tmp_path: Path) -> None:
    path = tmp_path / "response.xml"
    path.write_bytes(b"<a><b>1</b><c>same</c></a>")
    message = compare_golden(path, b"<a><b>2</b><c>same</c></a>", update=False)
    assert message is not None
    assert f"differs from golden file {path}" in message
    assert "first difference at byte 6" in message
    assert "\n-<b>1</b>\n+<b>2</b>\n" in message
    assert UPDATE_COMMAND in message and "--update-golden" in message
    assert path.read_bytes() == b"<a><b>1</b><c>same</c></a>"  # nothing written


def test_a_difference_the_line_view_hides_is_still_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "response.xml"
    path.write_bytes(b"<a/>")
    message = compare_golden(path, b"<a/>\n", update=False)
    assert message is not None and "first difference at byte 4 (golden 4 bytes, now 5 bytes)" in message


def test_a_missing_golden_file_fails_and_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "missing.xml"
    message = compare_golden(path, b"<a/>", update=False)
    assert message is not None and "is missing" in message and UPDATE_COMMAND in message
    assert not path.exists()


def test_update_writes_and_then_matches(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.xml"
    assert compare_golden(path, b"<a/>", update=True) is None
    assert path.read_bytes() == b"<a/>"
    assert compare_golden(path, b"<a/>", update=False) is None


def test_the_fixture_fails_a_test_on_a_real_golden_file_changed_by_one_byte(tmp_path: Path) -> None:
    shutil.copytree(GOLDEN_ROOT / RESPONSES, tmp_path / RESPONSES)
    checker = Golden(tmp_path)
    real = checker.read(f"{RESPONSES}/generic.xml")
    checker.check(f"{RESPONSES}/generic.xml", real)
    changed = real.replace(b"zoe@golden.example", b"zoe@golden.exampl3", 1)
    with pytest.raises(pytest.fail.Exception) as failed:
        checker.check(f"{RESPONSES}/generic.xml", changed)
    assert "golden.exampl3" in str(failed.value) and UPDATE_COMMAND in str(failed.value)
    with pytest.raises(ValueError, match="leaves"):
        checker.path("../outside.xml")


def test_the_diff_is_short() -> None:
    expected = b"".join(b"<v>%d</v>" % i for i in range(500))
    actual = b"".join(b"<w>%d</w>" % i for i in range(500))
    diff = golden_diff(expected, actual).splitlines()
    assert len(diff) <= 32 and diff[-1].startswith("… ")
