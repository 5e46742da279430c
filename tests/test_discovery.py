"""saml-validate discover: the five questions, the iframe verdict with its live probe, setup hints
in the vendor's words, the draft CRM record, and the Markdown and HTML worksheets."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from metadata.crm import parse_crm
from metadata.fetch import FetchPolicy
from metadata.saml import MD
from tests.factory import IdPSpec, idp_metadata
from tests.helpers import crm_toml
from tests.test_fetch import respond, serving
from validator.cli import cli
from validator.discovery import build_worksheet, iframe_verdict, setup_hints
from validator.framing import FrameProbe, probe_framing, read_headers
from validator.inspection import MetadataOptions, inspect_metadata
from validator.metadata_facts import metadata_report
from validator.render.worksheet import render_markdown, render_worksheet_html, worksheet_json

CORPUS_OKTA = "idp-metadata/okta/okta-trial-102286-app-metadata-2024.xml"
DEMO = Path(__file__).parent.parent / "validator" / "demo"
LOCAL = FetchPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
PORTAL = "https://sso.portal.example"
RECORD = parse_crm(crm_toml(login_types=((1, "Customer"), (2, "Manager"))), "crm.toml", "toml")


# ---- the framing rules ----------------------------------------------------------------------

@pytest.mark.parametrize(("probe", "origin", "forbids"), [
    (FrameProbe("https://idp.example/sso", 200), PORTAL, False),
    (FrameProbe("https://idp.example/sso", 200, x_frame_options="DENY"), PORTAL, True),
    (FrameProbe("https://idp.example/sso", 200, x_frame_options="sameorigin"), PORTAL, True),
    (FrameProbe("https://idp.example/sso", 200, x_frame_options="SAMEORIGIN"), "https://idp.example", False),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("'none'",)), PORTAL, True),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("'self'",)), PORTAL, True),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=(f"'self' {PORTAL}",)), PORTAL, False),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("https://*.portal.example",)), PORTAL, False),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("sso.portal.example",)), PORTAL, False),
    # CSP Level 3: an http source also allows the https page (an upgrade), never the reverse
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("http://sso.portal.example",)), PORTAL, False),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("https://sso.portal.example",)),
     "http://sso.portal.example", True),
    # CSP frame-ancestors wins over X-Frame-Options (CSP Level 2 §7.7.1)
    (FrameProbe("https://idp.example/sso", 200, x_frame_options="DENY", frame_ancestors=(PORTAL,)), PORTAL, False),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("https://*.portal.example",)), None, True),
    (FrameProbe("https://idp.example/sso", error="timed out"), PORTAL, None),
    # CSP Level 3 source matching: a scheme source, a path, the default port written out
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("https:",)), PORTAL, False),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=(f"{PORTAL}/",)), PORTAL, False),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=(f"{PORTAL}:443",)), PORTAL, False),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=(f"{PORTAL}:8443",)), PORTAL, True),
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("https://*.example",)), "https://example", True),
    # several policies: each must allow the frame
    (FrameProbe("https://idp.example/sso", 200, frame_ancestors=("'none'", "*")), PORTAL, True),
])
def test_framing_headers_are_judged_for_the_portals_origin(probe: FrameProbe, origin: str | None,
                                                           forbids: bool | None) -> None:
    assert probe.forbids(origin) is forbids


@pytest.mark.parametrize(("csp", "expected"), [
    ("frame-ancestors 'none'; frame-ancestors *", ("'none'",)),  # only a policy's first directive counts
    ("default-src 'self', frame-ancestors *", ("*",)),  # two headers, joined by a comma: two policies
    ("frame-ancestors 'none', frame-ancestors *", ("'none'", "*")),
    ("FRAME-ANCESTORS https://a.example", ("https://a.example",)),
    ("default-src 'none'", ()),
])
def test_csp_policies_and_directives_are_read_as_browsers_read_them(csp: str, expected: tuple[str, ...]) -> None:
    assert read_headers("https://idp.example/sso", 200, {"content-security-policy": csp}).frame_ancestors == expected


def test_okta_on_a_custom_domain_is_possible_with_the_trusted_origin_step() -> None:
    # The rule allows the org's custom domain (issue 16): possible, once confirmed and configured.
    open_probe = FrameProbe("https://login.acme.example/app/a/b/sso/saml", 200)
    elsewhere = iframe_verdict("okta", open_probe, PORTAL, "https://login.acme.example/app/a/b/sso/saml")
    assert elsewhere.verdict == "possible" and "is not an Okta domain" in elsewhere.evidence
    assert "custom domain" in elsewhere.evidence
    assert "Trusted Origin with the 'iFrame embed' scope" in elsewhere.evidence
    blocked = FrameProbe("https://login.acme.example/sso", 200, x_frame_options="DENY")
    assert iframe_verdict("okta", blocked, PORTAL, "https://login.acme.example/sso").verdict == "no"
    okta = iframe_verdict("okta", open_probe, PORTAL, "https://acme.okta.com/app/a/b/sso/saml")
    assert okta.verdict == "possible"


def test_only_okta_may_be_embedded_and_only_where_its_headers_allow_the_portal() -> None:
    open_probe = FrameProbe("https://acme.okta.com/app/x/sso/saml", 200)
    okta = iframe_verdict("okta", open_probe, PORTAL)
    assert okta.verdict == "possible" and "Trusted Origin" in okta.rule and "may frame it" in okta.evidence
    blocked = iframe_verdict("okta", FrameProbe("https://acme.okta.com/sso", 403, x_frame_options="DENY"), PORTAL)
    assert blocked.verdict == "no" and "add the portal's origin as a Trusted Origin" in blocked.evidence
    entra = iframe_verdict("entra", open_probe, PORTAL)
    assert entra.verdict == "no" and "Entra ID forbids framing" in entra.rule
    for other in ("adfs", "google", None):
        assert iframe_verdict(other, open_probe, PORTAL).verdict == "no"
    assert "not probed" in iframe_verdict("okta", None, PORTAL).evidence


def test_the_probe_reads_the_headers_of_an_error_page_too() -> None:
    with serving() as server:
        server.routes["/sso"] = respond(400, b"<html>no SAMLRequest</html>", "text/html",
                                        [("X-Frame-Options", "DENY"),
                                         ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")])
        server.routes["/open"] = respond(200, b"<html>sign in</html>", "text/html")
        denied = probe_framing(server.url("/sso"), LOCAL)
        opened = probe_framing(server.url("/open"), LOCAL)
    assert (denied.status, denied.x_frame_options, denied.frame_ancestors) == (400, "DENY", ("'none'",))
    assert denied.forbids(PORTAL) is True
    assert (opened.status, opened.x_frame_options, opened.frame_ancestors, opened.error) == (200, None, (), None)
    refused = probe_framing("http://10.0.0.1/sso", LOCAL)  # SECURITY.md §4: never a private address
    assert refused.error is not None and "10.0.0.1" in refused.error and refused.forbids(PORTAL) is None


# ---- the worksheet -------------------------------------------------------------------------------

def worksheet_of(path: Path, crm: object = RECORD, probe: FrameProbe | None = None) -> object:
    from datetime import UTC, datetime

    inspection = inspect_metadata(str(path), MetadataOptions(now=datetime(2026, 11, 27, tzinfo=UTC)), crm)  # type: ignore[arg-type]
    return build_worksheet(inspection, metadata_report(inspection), crm, metadata_url=None, probe=probe)  # type: ignore[arg-type]


def test_a_real_okta_file_answers_the_five_questions(corpus: Path) -> None:
    ws = worksheet_of(corpus / CORPUS_OKTA, crm=None)
    text = render_markdown(ws)  # type: ignore[arg-type]
    assert "| Which identity provider? | Okta<br>evidence: " in text
    assert "| The IdP entity ID | http://www.okta.com/" in text
    # inferred from the SSO URL's app ID (issue 16), labelled so, and not fetched without a probe policy
    assert "| The metadata XML URL | https://trial-1022863.okta.com/app/exkdoocxa1VmjpXmX697/sso/saml/metadata" \
           "<br>inferred, not given: " in text
    assert "HTTP-Redirect: https://trial-102286.okta.com/app/" in text or "HTTP-POST: https://" in text
    assert "**Possible, when configured.**" in text and "Audience URI (SP Entity ID)" in text
    draft = ws.draft  # type: ignore[attr-defined]
    record = parse_crm(draft, "draft.toml", "toml")  # the draft is a valid record, TODOs and all
    assert record.idp.vendor == "okta" and record.biller.id == "TODO" and record.idp.entity_id
    assert record.idp.sso_url and record.idp.sso_url.startswith("https://")


def test_with_a_record_the_worksheet_compares_and_the_draft_keeps_the_record(tmp_path: Path) -> None:
    record = parse_crm((DEMO / "springfield-water.toml").read_text(), "demo.toml", "toml")
    ws = worksheet_of(DEMO / "springfield-water-idp-metadata.xml", crm=record)
    text = render_markdown(ws)  # type: ignore[arg-type]
    assert "not among those offered (exact names): AccountNumber, Email" in text
    assert "the CRM record says 'https://sts.springfieldwater.example/adfs/services/trust'" in text
    # each login type ID with its role name from the record ([[login_types]] name)
    assert "LoginTypeId (exactly; values: one of 1 (Customer), 2 (Property Manager))" in text
    assert "Edit Claim Issuance Policy" in text
    drafted = parse_crm(ws.draft, "draft.toml", "toml")  # type: ignore[attr-defined]
    assert [c.name for c in drafted.claims] == ["AccountNumber", "Email", "LoginTypeId"]
    assert drafted.login_type_ids == {1: "Customer", 2: "Property Manager"}
    # the metadata's entity ID, not the record's: the draft says what the IdP publishes
    assert drafted.idp.entity_id == "http://sts.springfieldwater.example/adfs/services/trust"


@pytest.mark.parametrize(("vendor", "words"), [
    ("okta", ("Audience URI (SP Entity ID)", "Single sign-on URL", "Attribute Statements")),
    ("entra", ("Identifier (Entity ID)", "Reply URL", "Attributes & Claims")),
    ("adfs", ("Relying Party Trusts", "Outgoing claim type")),
    (None, ("the audience (SP entity ID)",)),
])
def test_setup_hints_use_the_vendors_own_words(vendor: str | None, words: tuple[str, ...]) -> None:
    where = " ".join(h.where for h in setup_hints(vendor, RECORD))
    assert all(w in where for w in words), where


def _metadata(tmp_path: Path, entity_id: str, attribute: str | None = None) -> Path:
    path = tmp_path / f"evil-{abs(hash(entity_id))}.xml"
    escaped = entity_id.replace("<", "&lt;").replace('"', "&quot;")  # character references stay
    offered = (f'<saml:Attribute xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Name="{attribute}"/>'
               if attribute else "")
    path.write_text(
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{escaped}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        f'Location="https://idp.example/sso"/>{offered}</md:IDPSSODescriptor></md:EntityDescriptor>')
    return path


@pytest.mark.parametrize("attribute", ["a&#x7f;b", "quote&quot;d", "line&#10;break", "tab&#9;é\u2028"])
def test_the_draft_always_parses_whatever_the_metadata_says(tmp_path: Path, attribute: str) -> None:
    ws = worksheet_of(_metadata(tmp_path, 'https://idp.example/"&#10;[x]', attribute), crm=None)
    drafted = parse_crm(ws.draft, "draft.toml", "toml")  # type: ignore[attr-defined]
    assert [c.name for c in drafted.claims] == [a.name for a in ws.entity.idp.attributes]  # type: ignore[attr-defined]
    assert drafted.idp.entity_id == 'https://idp.example/"\n[x]'


def _with_sso(tmp_path: Path, location: str) -> Path:
    path = tmp_path / "sso.xml"
    path.write_text(
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/x">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        f'Location="{location}"/></md:IDPSSODescriptor></md:EntityDescriptor>')
    return path


def test_the_draft_takes_the_sso_url_from_the_model(tmp_path: Path) -> None:
    location = "https://idp.example.com/@acme/sso?app=portal&amp;x=1"  # an @ in the path is no password
    drafted = parse_crm(worksheet_of(_with_sso(tmp_path, location), crm=None).draft, "d", "toml")  # type: ignore[attr-defined]
    assert drafted.idp.sso_url == "https://idp.example.com/@acme/sso?app=portal&x=1"


def test_the_draft_never_copies_a_password_from_the_sso_url(tmp_path: Path) -> None:
    ws = worksheet_of(_with_sso(tmp_path, "https://bob:s3cret@idp.example.com/sso"), crm=None)
    draft = ws.draft  # type: ignore[attr-defined]
    assert "s3cret" not in draft and "bob" not in draft
    assert "# The metadata's SSO URL holds a user name or password (MD016), left out here: " \
           "https://***@idp.example.com/sso" in draft
    assert parse_crm(draft, "d", "toml").idp.sso_url == "TODO: the SSO URL without a user name or password"
    assert "s3cret" not in render_markdown(ws) + render_worksheet_html(ws)  # type: ignore[arg-type]


def test_a_source_with_line_breaks_cannot_add_lines_to_the_draft(tmp_path: Path) -> None:
    ws = worksheet_of(_metadata(tmp_path, "https://idp.example/x"), crm=None)
    inspection = replace(ws.inspection, shown="https://nowhere.invalid/x\n[extra]\nkey = 1")  # type: ignore[attr-defined]
    drafted = build_worksheet(inspection, metadata_report(inspection), None, metadata_url=None, probe=None).draft
    assert "\n[extra]" not in drafted and parse_crm(drafted, "d", "toml").biller.id == "TODO"


def test_each_check_in_the_worksheet_says_what_it_found() -> None:
    from metadata.crm import load_crm

    ws = worksheet_of(DEMO / "springfield-water-idp-metadata.xml", crm=load_crm(DEMO / "springfield-water.toml"))
    text = render_markdown(ws)  # type: ignore[arg-type]
    assert "the claim 'AccountNumber' is offered as 'accountnumber': letter case" in text
    assert "the claim 'Email' is offered as 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress'" \
        in text


def test_an_expired_certificate_says_so_instead_of_a_negative_count(corpus: Path) -> None:
    from datetime import UTC, datetime

    options = MetadataOptions(now=datetime(2036, 11, 27, tzinfo=UTC))
    inspection = inspect_metadata(str(corpus / CORPUS_OKTA), options)
    ws = build_worksheet(inspection, metadata_report(inspection), None, metadata_url=None, probe=None)
    assert "| 2034-04-25 | expired 947 days ago |" in render_markdown(ws)
    assert "<td>expired 947 days ago</td>" in render_worksheet_html(ws)
    assert "| 2034-04-25 | 2706 |" in render_markdown(worksheet_of(corpus / CORPUS_OKTA, crm=None))  # type: ignore[arg-type]


def test_partner_values_cannot_break_the_markdown_or_the_html(tmp_path: Path) -> None:
    evil = "https://idp.example/x|<script>alert(1)</script>`\u202e"
    ws = worksheet_of(_metadata(tmp_path, evil), crm=None)
    text = render_markdown(ws)  # type: ignore[arg-type]
    table = text[:text.index("## Draft CRM record")]  # the draft below is a code block: literal by nature
    # CommonMark backslash escapes: inert when rendered, readable in the raw file.
    assert "x\\|\\<script\\>" in table and "<script>" not in table and "\\`" in table and "\\u202e" in table
    assert "&lt;" not in table
    assert "\u202e" not in text  # in the draft too, the bidi override is written as an escape
    links = render_markdown(worksheet_of(_metadata(tmp_path, "https://idp.example/[x](javascript:alert(1))"),
                                         crm=None))  # type: ignore[arg-type]
    table = links[:links.index("## Draft CRM record")]
    assert "\\[x\\](javascript:" in table and "[x](javascript:" not in table
    page = render_worksheet_html(ws)  # type: ignore[arg-type]
    assert "<script>" not in page and "&lt;script&gt;" in page and "\u202e" not in page
    assert parse_crm(ws.draft, "d.toml", "toml").idp.entity_id == evil  # type: ignore[attr-defined]


# ---- the command ---------------------------------------------------------------------------------

def test_the_command_writes_the_worksheet_and_a_new_draft_only(tmp_path: Path) -> None:
    draft = tmp_path / "draft.toml"
    args = ["discover", str(DEMO / "springfield-water-idp-metadata.xml"), "--crm", str(DEMO / "springfield-water.toml"),
            "--no-probe", "--now", "2026-11-27", "--format", "html", "--out", str(tmp_path / "w.html"),
            "--draft-crm", str(draft)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output  # the demo metadata has errors: exit 1, as `metadata`
    assert "<h1>Springfield Water</h1>" in (tmp_path / "w.html").read_text()
    assert parse_crm(draft.read_text(), "d", "toml").biller.id == "B-10442"
    draft.write_text("# the partner's edits\n")
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "exists; a draft is never written over a file" in again.output
    assert draft.read_text() == "# the partner's edits\n"


def test_the_command_names_a_missing_source() -> None:
    result = CliRunner().invoke(cli, ["discover", "no-such-file.xml"])
    assert result.exit_code == 2 and "'no-such-file.xml' is neither a file nor a URL (no such file)" in result.output
    folder = CliRunner().invoke(cli, ["discover", str(DEMO)])
    assert folder.exit_code == 2 and "is a folder, not a file" in folder.output


def test_an_unreachable_metadata_url_gives_its_finding_and_no_worksheet_or_draft(tmp_path: Path) -> None:
    # A worksheet of a document never read would answer every question with "not found".
    draft = tmp_path / "draft.toml"
    result = CliRunner().invoke(cli, ["discover", "https://10.0.0.1/metadata", "--no-probe", "--draft-crm", str(draft)])
    assert result.exit_code == 1
    assert "NET004" in result.output and "no worksheet: no IdP entity could be read" in result.output
    assert "The five questions" not in result.output and not draft.exists()


def test_the_metadata_of_an_sp_gives_no_worksheet(tmp_path: Path) -> None:
    sp = tmp_path / "sp.xml"
    sp.write_text('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example/saml">'
                  '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
                  '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
                  'Location="https://sp.example/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>')
    result = CliRunner().invoke(cli, ["discover", str(sp), "--no-probe"])
    assert result.exit_code == 1 and "MD005" in result.output and "no worksheet" in result.output
    assert "The five questions" not in result.output


def test_one_entity_of_an_aggregate_is_chosen_with_entity_id(tmp_path: Path) -> None:
    first, second = (idp_metadata(IdPSpec(entity_id=f"https://idp{n}.example/saml")) for n in (1, 2))
    inner = [etree.fromstring(x) for x in (first, second)]
    aggregate = etree.Element(f"{{{MD}}}EntitiesDescriptor", nsmap={"md": MD})
    aggregate.extend(inner)
    path = tmp_path / "aggregate.xml"
    path.write_bytes(etree.tostring(aggregate))
    unchosen = CliRunner().invoke(cli, ["discover", str(path), "--no-probe"])
    assert unchosen.exit_code == 1 and "several entities; choose one with --entity-id" in unchosen.output
    chosen = CliRunner().invoke(cli, ["discover", str(path), "--no-probe", "--entity-id", "https://idp2.example/saml"])
    assert "| The IdP entity ID | https://idp2.example/saml |" in chosen.output, chosen.output


def test_the_setup_table_names_each_login_types_role_in_every_format() -> None:
    record = parse_crm(crm_toml(sp_entity_id="https://portal.example.com", acs_url="https://portal.example.com/acs",
                                idp={"entity_id": "https://idp.example.com"},
                                login_types=((1, "Customer"), (7, "Owner | <Admin>"))), "t.toml", "toml")
    ws = worksheet_of(DEMO / "springfield-water-idp-metadata.xml", crm=record)
    value = "LoginTypeId (exactly; values: one of 1 (Customer), 7 (Owner | <Admin>))"
    assert value in [h.value for h in setup_hints("adfs", record)]
    assert value in [row["value"] for row in worksheet_json(ws)["setup"]]  # type: ignore[arg-type, index, union-attr]
    assert r"7 (Owner \| \<Admin\>)" in render_markdown(ws)  # type: ignore[arg-type]
    assert "7 (Owner | &lt;Admin&gt;)" in render_worksheet_html(ws)  # type: ignore[arg-type]


# ---- plain text for the terminal (issue 15) --------------------------------------------------------

def test_the_terminal_worksheet_is_plain_text_without_markdown_escapes(corpus: Path) -> None:
    from validator.render.worksheet import render_worksheet_text

    entra = corpus / "idp-metadata/entra-id/entra-id-tenant-a9054a0f-federationmetadata-2023-signed.xml"
    failed = FrameProbe("https://idp.example/sso", error="[Errno -2] Name or service not known")
    ws = worksheet_of(entra, crm=None, probe=failed)
    text = render_worksheet_text(ws)  # type: ignore[arg-type]
    assert "evidence: entity ID https://sts.windows.net/<tenant>/" in text
    assert "  Live check: the probe of https://idp.example/sso failed: [Errno -2] Name or service" in text
    assert "\\<" not in text and "\\[" not in text and "|" not in text and "**" not in text and "#" not in text[:40]
    markdown = render_markdown(ws)  # type: ignore[arg-type]  # Markdown keeps its escapes
    assert "https://sts.windows.net/\\<tenant\\>/" in markdown and "\\[Errno -2\\]" in markdown


def test_the_terminal_worksheet_shows_partner_values_safely(tmp_path: Path) -> None:
    from validator.render.worksheet import render_worksheet_text

    text = render_worksheet_text(worksheet_of(_metadata(tmp_path, "https://idp.example/x\u202e<b>[y]"),
                                              crm=None))  # type: ignore[arg-type]
    assert "  The IdP entity ID\n    https://idp.example/x\\u202e<b>[y]\n" in text  # visible, not acting
    assert "\u202e" not in text


def test_discover_prints_text_on_a_terminal_and_markdown_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    args = ["discover", str(DEMO / "springfield-water-idp-metadata.xml"), "--no-probe", "--now", "2026-11-27"]
    piped = CliRunner().invoke(cli, args)
    assert piped.stdout.startswith("# SAML discovery worksheet")  # a file or a pipe: Markdown, as before
    text = CliRunner().invoke(cli, [*args, "--format", "text"])
    assert text.stdout.startswith("SAML discovery worksheet: ") and "| Question | Answer |" not in text.stdout
    runner = CliRunner()
    with runner.isolation() as (out, _err, _in):
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
        with pytest.raises(SystemExit):
            cli.main(args, standalone_mode=False)
        shown = out.getvalue().decode()
    assert shown.startswith("SAML discovery worksheet: "), shown[:200]
