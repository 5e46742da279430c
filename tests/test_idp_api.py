"""The IdP's automation API (``/api/v1``): the Bearer scheme, and RFC 9457 problem documents for
every error, whatever the route, method or body."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from metadata.json_body import MAX_DEPTH, JSONBodyError, read_json_object
from tests.idp_support import make_idp

TOKEN = "s3cret-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
JSON = "application/json"

# (what, body, content type): each a body that no /api/v1 call may accept.
BAD_BODIES = [
    ("deep JSON", b"[" * 50_000, JSON),
    ("deep JSON in an object", b'{"persona": ' + b"[" * 50_000, JSON),
    ("bad UTF-8", b'{"persona": "\xff\xfe"}', JSON),
    ("not JSON", b"persona=alice", JSON),
    ("wrong content type", b'{"persona": "alice"}', "text/plain"),
    ("form content type", b"persona=alice", "application/x-www-form-urlencoded"),
    ("over-size body", b'{"persona": "' + b"a" * (256 * 1024) + b'"}', JSON),
    ("a JSON array", b'["alice"]', JSON),
    ("a JSON string", b'"alice"', JSON),
    ("a wrong member type", b'{"persona": 7, "fault": 7, "faults": "expired"}', JSON),
    ("a number too long to convert", b'{"persona": ' + b"1" * 5000 + b"}", JSON),  # a ValueError, not JSON's
]


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return make_idp(tmp_path, api_token=TOKEN)


def assert_problem(response: TestResponse, status: int | None = None) -> dict[str, object]:
    """A 4xx RFC 9457 problem document: its media type and its four standard members (§3.1)."""
    assert response.mimetype == "application/problem+json", response.get_data(as_text=True)[:300]
    assert 400 <= response.status_code < 500 if status is None else response.status_code == status
    document = response.get_json()
    assert isinstance(document, dict)
    assert document["status"] == response.status_code
    assert isinstance(document["type"], str) and isinstance(document["title"], str)
    assert isinstance(document["detail"], str) and document["detail"]
    return document


def api_rules(app: Flask) -> list[tuple[str, str]]:
    """Every (path, method) under /api/v1, from the app's own URL map: a new route is walked too."""
    found = [(rule.rule, method) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
             for method in sorted(rule.methods or ()) if method not in ("HEAD", "OPTIONS")]
    assert {path for path, _ in found} >= {"/api/v1/next-login", "/api/v1/faults", "/api/v1/personas"}
    return found


@pytest.mark.parametrize(("what", "body", "content_type"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_every_api_route_answers_a_bad_body_with_a_problem(
    app: Flask, what: str, body: bytes, content_type: str
) -> None:
    client = app.test_client()
    for path, method in api_rules(app):
        answer = client.open(path, method=method, data=body, headers={**BEARER, "Content-Type": content_type})
        assert_problem(answer)


def test_every_api_route_answers_a_wrong_method_with_a_problem(app: Flask) -> None:
    client = app.test_client()
    allowed: dict[str, set[str]] = {}
    for path, method in api_rules(app):  # one path may take several methods (/api/v1/sps: GET, POST, DELETE)
        allowed.setdefault(path, set()).add(method)
    for path, methods in allowed.items():
        wrong = next(m for m in ("DELETE", "PUT", "PATCH") if m not in methods)
        answer = client.open(path, method=wrong, headers=BEARER)
        assert_problem(answer, 405)
        assert methods <= {m.strip() for m in answer.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/", "/api/v1", "/api/v1/faults/extra"])
def test_an_unknown_api_route_answers_a_problem(app: Flask, path: str) -> None:
    assert_problem(app.test_client().post(path, json={"persona": "alice"}, headers=BEARER), 404)


def test_the_problem_names_what_was_wrong(app: Flask) -> None:
    client = app.test_client()

    def detail(body: bytes, content_type: str = JSON, path: str = "/api/v1/next-login") -> str:
        answer = client.post(path, data=body, headers={**BEARER, "Content-Type": content_type})
        status = 413 if len(body) > 256 * 1024 else 415 if content_type != JSON else 400
        return str(assert_problem(answer, status)["detail"])

    assert f"more than {MAX_DEPTH} deep" in detail(b"[" * 50_000)
    assert "not UTF-8" in detail(b'{"persona": "\xff"}') and "byte 13" in detail(b'{"persona": "\xff"}')
    assert "not JSON" in detail(b"{persona}") and "line 1 column 2" in detail(b"{persona}")
    assert "not JSON" in detail(b"[" + b"9" * 5000 + b"]") and "4300 digits" in detail(b"[" + b"9" * 5000 + b"]")
    assert "Content-Type: application/json" in detail(b"{}", "text/plain")
    assert "256 KiB" in detail(b" " * (256 * 1024 + 1))
    assert "JSON object" in detail(b"[]")
    assert '"persona" must be a string' in detail(b'{"persona": 7}')
    assert '"sp" must be a string' in detail(b'{"persona": "alice", "sp": 7}')
    assert "takes no body" in str(assert_problem(client.get("/api/v1/personas", data=b"{}", content_type=JSON),
                                                 400)["detail"])


def test_problems_keep_their_helpful_members(app: Flask) -> None:
    client = app.test_client()
    unknown = assert_problem(client.post("/api/v1/next-login", json={"persona": "mallory"}, headers=BEARER), 400)
    assert unknown["personas"] == ["alice"] and "mallory" in str(unknown["detail"])
    no_sp = assert_problem(client.post("/api/v1/faults", json={"fault": "expired", "sp": "https://x"},
                                       headers=BEARER), 400)
    assert no_sp["sps"] == ["https://sp.example.com/saml/metadata"]
    assert "expired" in str(assert_problem(client.post("/api/v1/faults", json={"fault": "nope"}, headers=BEARER),
                                           400)["faults"])


def test_good_calls_still_answer_plain_json(app: Flask) -> None:
    client = app.test_client()
    armed = client.post("/api/v1/next-login", json={"persona": "alice"}, headers=BEARER)
    assert armed.status_code == 200 and armed.mimetype == "application/json"
    listed = client.get("/api/v1/personas")
    assert listed.status_code == 200 and listed.get_json()[0]["id"] == "alice"


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN}"])
def test_the_api_accepts_the_bearer_scheme_in_any_case(app: Flask, header: str) -> None:
    answer = app.test_client().post("/api/v1/next-login", json={"persona": "alice"}, headers={"Authorization": header})
    assert answer.status_code == 200


@pytest.mark.parametrize("header", [TOKEN, f"Basic {TOKEN}", f"Token {TOKEN}", f"Bearer{TOKEN}", "Bearer ",
                                    f"Bearer {TOKEN}x", f"Bearer  {TOKEN}", f"Bearer {TOKEN[:-1]}", ""])
def test_the_api_refuses_anything_but_the_bearer_token(app: Flask, header: str) -> None:
    client = app.test_client()
    for path, body in (("/api/v1/next-login", {"persona": "alice"}), ("/api/v1/faults", {"fault": "expired"})):
        answer = client.post(path, json=body, headers={"Authorization": header})
        document = assert_problem(answer, 401)
        assert "Authorization: Bearer" in str(document["detail"])
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_api_route_as_each_caller_a_change_needs_the_token_a_list_does_not(app: Flask) -> None:
    """Two callers: anyone, and the token's holder. Walked from the app's own URL map, so a new route
    is walked too: every POST and DELETE (arming, registering, deleting) is refused without the
    token before its body or parameters are read; every GET (a list) answers anyone."""
    client = app.test_client()
    for path, method in api_rules(app):
        anyone = client.open(path, method=method)
        holder = client.open(path, method=method, headers=BEARER)
        if method == "GET":
            assert anyone.status_code == holder.status_code == 200, (path, anyone.get_data(as_text=True)[:200])
        else:
            assert_problem(anyone, 401)
            assert holder.status_code != 401, (path, method)


def test_without_a_token_configured_the_api_is_open(tmp_path: Path) -> None:
    answer = make_idp(tmp_path).test_client().post("/api/v1/next-login", json={"persona": "alice"})
    assert answer.status_code == 200


def test_browser_pages_keep_their_html_errors(app: Flask) -> None:
    client = app.test_client()
    for answer in (client.get("/sso"), client.get("/slo"), client.get("/no-such-page"), client.delete("/sso")):
        assert 400 <= answer.status_code < 500 and answer.mimetype == "text/html"


@pytest.mark.parametrize(("text", "deep"), [
    (b"[]", False),
    (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, False),
    (b"[" * (MAX_DEPTH + 1), True),
    (b"{" * (MAX_DEPTH + 1), True),
    (b'{"a": ' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH, False),
    (b'["' + b"[" * 100 + b'"]', False),  # brackets inside a string do not nest
    (b'["\\"' + b"[" * 100 + b'"]', False),  # nor after an escaped quote
    (b'["\\\\"' + b"[" * (MAX_DEPTH + 1), True),  # an escaped backslash ends the escape: the string ends
    (b"[]" * 100_000, False),  # many, but never deep
])
def test_the_depth_scan_respects_strings(text: bytes, deep: bool) -> None:
    try:
        read_json_object(text)
    except JSONBodyError as refused:
        assert (f"more than {MAX_DEPTH} deep" in str(refused)) is deep
    else:
        assert not deep


def test_a_store_outage_is_a_problem_too(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from metadata.store import StoreUnavailable

    def unavailable(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("the test store is gone")

    monkeypatch.setattr(app.extensions["saml_idp"].store, "put", unavailable)
    answer = app.test_client().post("/api/v1/next-login", json={"persona": "alice"}, headers=BEARER)
    assert answer.status_code == 503 and answer.mimetype == "application/problem+json"
    document = answer.get_json()
    assert document["status"] == 503 and "the test store is gone" in document["detail"]
    assert int(answer.headers["Retry-After"]) == document["retry_after"] > 0
