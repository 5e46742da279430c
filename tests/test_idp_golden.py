"""Golden files of the test IdP's SAML Response, one per vendor profile, compared byte for byte.

Each response is what the running IdP posts to the SP, taken the way an SP gets it: an
SP-initiated login through the Flask app (``/sso`` with HTTP-Redirect, ``/login`` picking the
persona, the auto-POST form's SAMLResponse). Everything that would vary is pinned: the clock, the
ID generator, the request ID, the persona, the SP, and the signing key (a TEST-ONLY pair kept in
``tests/golden/``; RSA PKCS#1 v1.5 signatures are deterministic). Encryption is left out: its
session key and OAEP padding are random, so an encrypted response is never byte-stable.

A golden file is also checked to be a response the validator's verifier accepts, so one rewritten
with ``--update-golden`` into something broken is caught. Rewrite them with
``pytest tests/test_idp_golden.py --update-golden`` (the plugin is ``tests/golden_plugin.py``).
"""

from __future__ import annotations

import base64
import html
import itertools
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from idp import create_app
from idp.settings import Persona, Settings
from idp.vendors import PROFILES
from metadata.bindings import encode_redirect
from metadata.response import verify_response
from metadata.saml import SAML, SAMLP
from metadata.store import SQLiteStore
from metadata.xml import MESSAGE_LIMITS, parse_untrusted
from tests.golden_plugin import GOLDEN_ROOT, UPDATE_COMMAND, Golden, compare_golden, golden_diff

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE_URL = "https://idp.golden.example"
SP_ENTITY = "https://sp.golden.example/saml/metadata"
ACS = "https://sp.golden.example/saml/acs"
REQUEST_ID = "_golden-request-0001"
RESPONSES = "idp-responses"

# TEST-ONLY: this key is public (it is in the repository); it signs golden files and nothing else.
TEST_KEY = GOLDEN_ROOT / "TEST-ONLY-idp-signing.key"
TEST_CERT = GOLDEN_ROOT / "TEST-ONLY-idp-signing.crt"

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


def pinned_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"_golden{next(counter):04d}"


def idp_response(vendor: str, tmp_path: Path) -> bytes:
    """The SAMLResponse the IdP, playing `vendor`, posts to the SP after an SP-initiated login."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700, parents=True)
    for source, name in ((TEST_KEY, "signing.key"), (TEST_CERT, "signing.crt")):
        shutil.copyfile(source, keys / name)
        (keys / name).chmod(0o600)
    settings = Settings.model_validate({
        "server": {"base_url": BASE_URL, "vendor": vendor, "key_folder": str(keys), "dev_mode": False},
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


@pytest.mark.parametrize("vendor", list(PROFILES))
def test_idp_response_matches_its_golden_file(vendor: str, tmp_path: Path, golden: Golden) -> None:
    name = f"{RESPONSES}/{vendor}.xml"
    golden.check(name, idp_response(vendor, tmp_path))

    # The golden file itself (just rewritten, with --update-golden) must still be a valid response.
    certificate = x509.load_pem_x509_certificate(TEST_CERT.read_bytes()).public_bytes(Encoding.DER)
    verified = verify_response(parse_untrusted(golden.read(name), MESSAGE_LIMITS), (certificate,))
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


def test_the_same_login_gives_the_same_bytes(tmp_path: Path) -> None:
    # Otherwise --update-golden would write a file that the next run no longer matches.
    assert idp_response("shibboleth", tmp_path / "one") == idp_response("shibboleth", tmp_path / "two")


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
