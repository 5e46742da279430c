"""Issue 17: claims edited at login, and next-login's per-request overrides.

Each response is read back as an SP reads it (the Attribute elements of the assertion); the
persona in the settings is checked unchanged after every edit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from idp.edits import TEXT_LIMIT, VALUES_LIMIT, EditError, Edits, edits_from_form, edits_from_json
from metadata.saml import SAML, TRANSIENT
from tests.idp_support import ALICE, SP_ENTITY, authn_request, decoded, form_fields, make_idp, redirect_path

TOKEN = "s3cret-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make_idp(tmp_path, api_token=TOKEN)


def claims_of(fields: dict[str, str]) -> dict[str, list[str]]:
    """The assertion's attributes: Name → values, as an SP reads them."""
    tree = etree.fromstring(decoded(fields))
    return {a.get("Name"): [v.text or "" for v in a.iter(f"{{{SAML}}}AttributeValue")]
            for a in tree.iter(f"{{{SAML}}}Attribute")}


def nameid_of(fields: dict[str, str]) -> tuple[str | None, str | None]:
    found = next(etree.fromstring(decoded(fields)).iter(f"{{{SAML}}}NameID"))
    return found.text, found.get("Format")


def pending_token(client: FlaskClient, request_id: str = "_req0123456789abcdef") -> str:
    started = client.get(redirect_path(authn_request(request_id=request_id)))
    assert started.status_code == 303, started.get_data(as_text=True)
    return parse_qs(urlsplit(started.headers["Location"]).query)["request"][0]


def edit_form(client: FlaskClient, token: str, persona: str = "alice") -> dict[str, str]:
    """The edit page's fields as the browser would post them unchanged."""
    page = client.get(f"/login?request={token}&edit={persona}")
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    fields = {m.group(1): m.group(2) for m in re.finditer(r'<input (?:type="(?:hidden|text)" )?(?:id="\w+" )?'
                                                           r'(?:type="text" )?name="([^"]+)" value="([^"]*)"', text)}
    for name, values in re.findall(r'<textarea name="([^"]+)"[^>]*>\n(.*?)</textarea>', text, re.S):
        fields[name] = values.replace("&#39;", "'")
    return fields


def send(client: FlaskClient, fields: dict[str, str]) -> tuple[int, str]:
    answer = client.post("/login", data={**fields, "action": "send"})
    return answer.status_code, answer.get_data(as_text=True)


# ---- the edit form ---------------------------------------------------------------------------

def test_the_persona_picker_links_each_persona_to_its_edit_form(app: Flask) -> None:
    client = app.test_client()
    token = pending_token(client)
    page = client.get(f"/login?request={token}").get_data(as_text=True)
    assert f'href="/login?request={token}&amp;edit=alice"' in page
    fields = edit_form(client, token)
    assert fields["claim-name-0"] == "AccountNumber" and fields["claim-values-0"] == "100200300"
    assert fields["claim-values-3"] == "billing\nsupport"  # several values: one per line
    assert fields["nameid"] == "alice@example.com" and fields["edit"] == "alice"
    assert fields["claim-name-4"] == "" and fields["claim-name-6"] == ""  # room to add claims


def test_an_edited_value_reaches_the_sp_once_and_the_persona_keeps_its_own(app: Flask) -> None:
    client = app.test_client()
    fields = edit_form(client, pending_token(client))
    status, page = send(client, {**fields, "claim-values-0": "999888777", "claim-values-3": "billing\r\nadmin\r\n",
                                 "claim-name-4": "Extra", "claim-values-4": "", "claim-remove-2": "1"})
    assert status == 200, page
    sent = claims_of(form_fields(page))
    assert sent == {"AccountNumber": ["999888777"], "Email": ["alice@example.com"], "Groups": ["billing", "admin"],
                    "Extra": [""]}  # LoginTypeId removed, Extra added with one empty value
    assert app.extensions["saml_idp"].personas["alice"].claims == ALICE.claims
    # The next login, in a fresh browser, sends the persona as it is.
    other = app.test_client()
    plain = other.post("/login", data={"request": pending_token(other, "_req2"), "persona": "alice"})
    assert claims_of(form_fields(plain.get_data(as_text=True)))["AccountNumber"] == ["100200300"]


def test_an_unchanged_edit_form_is_no_edit(app: Flask) -> None:
    client = app.test_client()
    status, page = send(client, edit_form(client, pending_token(client)))
    assert status == 200 and claims_of(form_fields(page))["Groups"] == ["billing", "support"]
    debug = client.get("/debug").get_data(as_text=True)
    assert "signed in as alice" in debug and 'class="edited"' not in debug


def test_the_nameid_and_its_format_are_sent_as_typed(app: Flask) -> None:
    client = app.test_client()
    fields = edit_form(client, pending_token(client))
    status, page = send(client, {**fields, "nameid": "someone-else", "nameid_format": TRANSIENT})
    assert status == 200 and nameid_of(form_fields(page)) == ("someone-else", TRANSIENT)


def test_more_rows_keeps_what_was_typed_and_sends_nothing(app: Flask) -> None:
    client = app.test_client()
    token = pending_token(client)
    fields = edit_form(client, token)
    more = client.post("/login", data={**fields, "claim-values-0": "typed", "action": "more-rows"})
    text = more.get_data(as_text=True)
    assert more.status_code == 200 and ">\ntyped</textarea>" in text and 'name="claim-name-9"' in text
    assert "SAMLResponse" not in text
    status, _ = send(client, fields)  # the request is still pending
    assert status == 200


@pytest.mark.parametrize(("change", "said"), [
    ({"claim-values-0": "bad\x01value"}, "claim 1 (AccountNumber) value 1: holds a control or unassigned character"),
    ({"claim-values-0": "x" * (TEXT_LIMIT + 1)}, "claim 1 (AccountNumber) value 1: longer than 4 KiB"),
    ({"claim-values-0": "\n".join(["v"] * (VALUES_LIMIT + 1))}, "claim 1 (AccountNumber): more than 100 values"),
    ({"claim-name-1": "AccountNumber"}, "claim 2 (AccountNumber): 'AccountNumber' is given twice"),
    ({"claim-name-0": ""}, "claim 1 (no name): a claim needs a name"),
    ({"claim-name-0": "Acc\u200bount\x7f"}, "claim 1 (Acc\u200bount\x7f): holds a control"),
    ({"nameid": "a\x00b"}, "NameID: holds a control"),
    ({"nameid_format": "urn:nope"}, "NameID format: 'urn:nope' is not one of"),
    ({"fault": "no-such-fault"}, "fault: "),
])
def test_a_value_the_form_cannot_carry_is_refused_with_its_field_and_nothing_typed_is_lost(
    app: Flask, change: dict[str, str], said: str
) -> None:
    client = app.test_client()
    token = pending_token(client)
    fields = {**edit_form(client, token), **change}
    status, page = send(client, fields)
    assert status == 400 and "SAMLResponse" not in page
    assert "Nothing was sent. " + said.replace("'", "&#39;") in page, page[:2000]
    if "claim-values-0" in change and len(change["claim-values-0"]) < 1000:
        assert ">\n" + change["claim-values-0"].replace("\x01", "\x01") in page  # shown again as typed
    status, _ = send(client, edit_form(client, token))  # the request is still pending, and can be sent
    assert status == 200


def test_more_than_a_hundred_claims_are_refused() -> None:
    rows = [(f"C{n}", "v") for n in range(VALUES_LIMIT + 1)]
    with pytest.raises(EditError, match="more than 100 claims"):
        edits_from_form(ALICE, rows, nameid=ALICE.nameid, nameid_format="", picked="")
    assert len(edits_from_form(ALICE, rows[:VALUES_LIMIT], nameid=ALICE.nameid, nameid_format="",
                               picked="").claims or {}) == VALUES_LIMIT


def test_the_debug_page_marks_the_edit_and_gives_the_test_case(app: Flask) -> None:
    client = app.test_client()
    fields = edit_form(client, pending_token(client))
    status, page = send(client, {**fields, "claim-values-0": "999888777", "fault": "wrong-audience"})
    assert status == 200
    sent_xml = form_fields(page)["SAMLResponse"]
    debug = client.get("/debug")
    text = debug.get_data(as_text=True)
    assert 'class="edited">edited</span>' in text and "AccountNumber: &#39;100200300&#39; → &#39;999888777&#39;" in text
    assert "persona <span class=\"mono\">alice</span>" in text and SP_ENTITY in text
    case = json.loads(re.search(r'<pre id="case-1">(.*?)</pre>', text, re.S).group(1).replace("&#34;", '"'))  # type: ignore[union-attr]
    assert case == {"persona": "alice", "sp": SP_ENTITY, "claims": {**ALICE.claims, "AccountNumber": "999888777"},
                    "faults": ["wrong-audience"]}
    # The exact XML sent, escaped: the same bytes as the form carried.
    exact = re.search(r'<pre class="exact">(.*?)</pre>', text, re.S).group(1)  # type: ignore[union-attr]
    import base64
    import html
    assert html.unescape(exact).encode() == base64.b64decode(sent_xml)
    csp = debug.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in csp and "unsafe-inline'" not in csp.split("script-src")[1]


def test_the_test_case_gives_the_same_claims_through_the_api(app: Flask) -> None:
    client = app.test_client()
    fields = edit_form(client, pending_token(client))
    _, page = send(client, {**fields, "claim-values-0": "424242", "nameid": "n-1"})
    first = form_fields(page)
    text = client.get("/debug").get_data(as_text=True)
    case = json.loads(re.search(r'<pre id="case-1">(.*?)</pre>', text, re.S).group(1).replace("&#34;", '"'))  # type: ignore[union-attr]
    assert client.post("/api/v1/next-login", json=case, headers=BEARER).status_code == 200
    again = app.test_client().get(redirect_path(authn_request(request_id="_again")))
    second = form_fields(again.get_data(as_text=True))
    assert claims_of(second) == claims_of(first) and nameid_of(second) == nameid_of(first)


# ---- next-login's overrides ------------------------------------------------------------------

def armed_login(app: Flask, body: dict[str, object], request_id: str) -> dict[str, str]:
    client = app.test_client()
    armed = client.post("/api/v1/next-login", json=body, headers=BEARER)
    assert armed.status_code == 200, armed.get_json()
    answer = client.get(redirect_path(authn_request(request_id=request_id)))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return form_fields(answer.get_data(as_text=True))


def test_two_next_login_calls_give_two_responses_with_exactly_those_claims(app: Flask) -> None:
    first = armed_login(app, {"persona": "alice", "sp": SP_ENTITY, "claims": {"AccountNumber": "1"}}, "_one")
    second = armed_login(app, {"persona": "alice", "claims": {"AccountNumber": "2", "Role": ["a", "b"]}}, "_two")
    assert claims_of(first) == {"AccountNumber": ["1"]}
    assert claims_of(second) == {"AccountNumber": ["2"], "Role": ["a", "b"]}
    third = armed_login(app, {"persona": "alice"}, "_three")  # no override: the persona as it is
    assert claims_of(third)["AccountNumber"] == ["100200300"] and "Groups" in claims_of(third)
    assert app.extensions["saml_idp"].personas["alice"].claims == ALICE.claims


def test_next_login_sets_the_nameid_its_format_and_faults(app: Flask) -> None:
    fields = armed_login(app, {"persona": "alice", "nameid": "x-1", "nameid_format": TRANSIENT,
                               "faults": ["wrong-audience"]}, "_n")
    assert nameid_of(fields) == ("x-1", TRANSIENT)
    audience = next(etree.fromstring(decoded(fields)).iter(f"{{{SAML}}}Audience")).text
    assert audience != SP_ENTITY


@pytest.mark.parametrize(("body", "field"), [
    ({"persona": "alice", "claim": {}}, None),  # unknown key
    ({"persona": "alice", "claims": ["AccountNumber"]}, "claims"),
    ({"persona": "alice", "claims": {"AccountNumber": 7}}, "claims.AccountNumber"),
    ({"persona": "alice", "claims": {"AccountNumber": ["ok", "bad\x1b"]}}, "claims.AccountNumber value 2"),
    ({"persona": "alice", "claims": {"A": "x" * (TEXT_LIMIT + 1)}}, "claims.A value 1"),
    ({"persona": "alice", "claims": {"A": ["v"] * (VALUES_LIMIT + 1)}}, "claims.A"),
    ({"persona": "alice", "nameid": 7}, "nameid"),
    ({"persona": "alice", "nameid_format": "email"}, "nameid_format"),
    ({"persona": "alice", "faults": "expired"}, "faults"),
    ({"persona": "alice", "faults": ["nope"]}, "faults"),
])
def test_next_login_refuses_a_bad_override_naming_it(app: Flask, body: dict[str, object], field: str | None) -> None:
    answer = app.test_client().post("/api/v1/next-login", json=body, headers=BEARER)
    document = answer.get_json()
    assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
    if field is None:
        assert "unknown keys: claim" in document["detail"]
    else:
        assert document["field"] == field and document["detail"].startswith(f'"{field}": ')
    # Nothing was armed: the next request asks for a login.
    assert app.test_client().get(redirect_path(authn_request(request_id="_after"))).status_code == 303


def test_edits_survive_the_store_round_trip() -> None:
    edits = edits_from_json({"claims": {"A": ["1", "2"], "B": "3"}, "nameid": "n", "nameid_format": TRANSIENT,
                             "faults": ["expired"]})
    assert Edits.from_dict(json.loads(json.dumps(edits.as_dict()))) == edits
    assert edits.apply(ALICE).claims == {"A": ["1", "2"], "B": "3"} and ALICE.claims["AccountNumber"] == "100200300"


# ---- what would stop the response is said before the request is taken (review of issue 17) ----

def test_a_fault_the_edited_claims_cannot_carry_shows_the_form_again_and_keeps_the_request(app: Flask) -> None:
    client = app.test_client()
    token = pending_token(client)
    fields = edit_form(client, token)
    only_email = {k: v for k, v in fields.items() if not k.startswith("claim-") or k.endswith("-1")}
    status, page = send(client, {**only_email, "fault": "missing-required-claim"})
    assert status == 400 and "Nothing was sent: " in page and "SAMLResponse" not in page
    assert 'value="alice@example.com"' in page  # the form again, as typed
    status, _ = send(client, edit_form(client, token))  # the request is still pending
    assert status == 200


@pytest.mark.parametrize(("change", "said"), [
    ({"nameid": "  "}, "NameID: empty; to send an empty NameID, pick the fault empty-nameid"),
    ({"claim-values-0": "1", "fault": "replay"}, "fault: replay sends the previous response again as it was"),
])
def test_an_edit_that_would_not_be_sent_as_shown_is_refused(app: Flask, change: dict[str, str], said: str) -> None:
    client = app.test_client()
    status, page = send(client, {**edit_form(client, pending_token(client)), **change})
    assert status == 400 and "Nothing was sent. " + said in page


@pytest.mark.parametrize(("body", "field"), [
    ({"persona": "alice", "nameid": ""}, "nameid"),
    ({"persona": "alice", "claims": {"A": "1"}, "faults": ["replay"]}, "faults"),
])
def test_next_login_refuses_overrides_that_would_not_be_sent(app: Flask, body: dict[str, object], field: str) -> None:
    answer = app.test_client().post("/api/v1/next-login", json=body, headers=BEARER)
    assert answer.status_code == 400 and answer.get_json()["field"] == field


def test_next_login_judges_the_overrides_with_the_personas_own_faults(tmp_path: Path) -> None:
    app = make_idp(tmp_path, api_token=TOKEN)
    idp = app.extensions["saml_idp"]
    idp.personas["alice"] = idp.personas["alice"].model_copy(update={"faults": ("missing-required-claim",)})
    answer = app.test_client().post("/api/v1/next-login", headers=BEARER, json={
        "persona": "alice", "sp": SP_ENTITY, "claims": {"Email": "a@example.com"}})
    assert answer.status_code == 400 and "missing-required-claim" in answer.get_json()["detail"]
