"""The validator's JSON API never answers HTML: every error under /api/v1 is an RFC 9457 problem
document, and a JSON body is read at a bounded cost (issue 11, finding 6)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from metadata.json_body import MAX_DEPTH, MAX_ITEMS, JSONBodyError, read_json_object
from tests import test_web
from tests.helpers import run_with_cpu_limit

app = test_web.app
server = test_web.server

PROBLEM = "application/problem+json"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# (name, body, content type): each is wrong in one way.
BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("deep JSON", b"[" * 50_000, "application/json"),
    ("deep JSON, closed", b'{"xml": ' + b"[" * 40 + b"]" * 40 + b"}", "application/json"),
    ("bad UTF-8", b'{"xml": "\xff\xfe<x/>"}', "application/json"),
    ("not JSON", b"<EntityDescriptor/>", "application/json"),
    ("empty", b"", "application/json"),
    ("a JSON array", b"[]", "application/json"),
    ("a JSON string", b'"<x/>"', "application/json"),
    ("null", b"null", "application/json"),
    ("a number where text belongs", b'{"xml": 5, "response": 5}', "application/json"),
    ("an array where an object belongs", b'{"crm": [], "xml": "<x/>", "response": "x"}', "application/json"),
    ("too many values", b'{"xml": [' + b"0," * MAX_ITEMS + b"0]}", "application/json"),
    ("text/plain", b'{"xml": "<x/>"}', "text/plain"),
    ("a form", b"xml=%3Cx%2F%3E", "application/x-www-form-urlencoded"),
    ("no content type", b'{"xml": "<x/>"}', ""),
    ("over-size", b'{"xml": "' + b"x" * (7 * 1024 * 1024) + b'"}', "application/json"),
]


def api_paths(flask_app: Flask) -> Iterator[tuple[str, frozenset[str]]]:
    """Every route under /api/v1, its parameters filled in, with the methods it takes."""
    for rule in flask_app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            yield re.sub(r"<(?:\w+:)?\w+>", "B-1", rule.rule), frozenset(rule.methods or ())


def assert_problem(answer: TestResponse, status: int | None = None) -> dict[str, Any]:
    """RFC 9457 §3: a JSON object with type, title, status and detail; the status is the answer's."""
    assert answer.mimetype == PROBLEM, (answer.status, answer.get_data()[:200])
    document = json.loads(answer.get_data())
    assert {"type", "title", "status", "detail"} <= set(document), document
    assert document["status"] == answer.status_code and isinstance(document["detail"], str) and document["detail"]
    assert document["type"] == "about:blank" and document["title"]
    if status is not None:
        assert answer.status_code == status, document
    return document


JSON_LINES = "application/jsonl"
"""GET /api/v1/audit: the audit trail, one JSON object a line."""


def test_the_walk_covers_every_api_route(app: Flask) -> None:
    paths = {path for path, _ in api_paths(app)}
    assert {"/api/v1/metadata", "/api/v1/responses", "/api/v1/discover", "/api/v1/test-logins/B-1"} <= paths


@pytest.mark.parametrize(("name", "body", "content_type"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_every_api_route_answers_every_bad_body_with_a_problem(
    app: Flask, name: str, body: bytes, content_type: str
) -> None:
    client = app.test_client()
    for path, allowed in api_paths(app):
        for method in METHODS:
            answer = client.open(path, method=method, data=body, content_type=content_type or None)
            where = f"{method} {path} with {name}: {answer.status} {answer.get_data()[:200]!r}"
            assert answer.mimetype in ("application/json", PROBLEM, JSON_LINES), where
            if method not in allowed:
                assert answer.status_code in (405, 413), where
            elif method != "GET":  # a GET reads no body: it may answer as usual
                assert 400 <= answer.status_code < 500, where
            if answer.status_code >= 400:
                assert 400 <= answer.status_code < 500, where
                assert_problem(answer)


def test_a_cross_site_post_is_a_problem(app: Flask) -> None:
    for path, allowed in api_paths(app):
        if "POST" in allowed:
            answer = app.test_client().post(path, json={"xml": "<x/>"}, headers={"Sec-Fetch-Site": "cross-site"})
            assert "another site" in assert_problem(answer, 403)["detail"]


def test_deep_json_is_refused_before_parsing_and_says_so(app: Flask) -> None:
    answer = app.test_client().post("/api/v1/metadata", data=b"[" * 50_000, content_type="application/json")
    assert f"more than {MAX_DEPTH} deep" in assert_problem(answer, 400)["detail"]


def test_a_wrong_content_type_is_415_and_names_the_type(app: Flask) -> None:
    answer = app.test_client().post("/api/v1/metadata", data=b"<x/>", content_type="text/plain")
    detail = assert_problem(answer, 415)["detail"]
    assert "application/json" in detail and "text/plain" in detail


def test_bad_utf8_and_bad_json_say_where(app: Flask) -> None:
    client = app.test_client()
    utf8 = client.post("/api/v1/metadata", data=b'{"xml": "\xff"}', content_type="application/json")
    assert "byte 9" in assert_problem(utf8, 400)["detail"]
    broken = client.post("/api/v1/metadata", data=b'{"xml":\n "<x/>",}', content_type="application/json")
    assert "line 2" in assert_problem(broken, 400)["detail"]


def test_a_wrong_type_is_named(app: Flask) -> None:
    answer = app.test_client().post("/api/v1/metadata", json=["<x/>"])
    assert "a JSON object" in assert_problem(answer, 400)["detail"]


@pytest.mark.parametrize("path", ["/api/v1/nowhere", "/api/v1", "/api/v1/partners/B-1/report/more",
                                  "/api/v1/test-logins/nonexistent-login-id-000", "/api/v1/test-logins/%3Cx%3E"])
def test_unknown_api_addresses_are_404_problems(app: Flask, path: str) -> None:
    detail = assert_problem(app.test_client().get(path), 404)["detail"]
    assert "<x>" not in detail


def test_a_wrong_method_is_405_with_allow(app: Flask) -> None:
    answer = app.test_client().delete("/api/v1/metadata")
    assert "POST" in assert_problem(answer, 405)["detail"]
    assert "POST" in answer.headers["Allow"]


def test_an_over_size_body_is_413_and_says_the_limit(app: Flask) -> None:
    answer = app.test_client().post("/api/v1/metadata", data=b"x" * (7 * 1024 * 1024), content_type="application/json")
    assert "6,144 KiB" in assert_problem(answer, 413)["detail"]


def test_a_failure_of_the_app_is_a_500_problem_that_keeps_its_cause_in_the_log(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from validator.web import jobs

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(jobs, "check_metadata", broken)
    app.testing = False  # answered as in production, not raised into the test
    answer = app.test_client().post("/api/v1/metadata", json={"xml": "<x/>"})
    assert "secret" not in assert_problem(answer, 500)["detail"]


def test_the_openapi_document_declares_the_problem_answers(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    declared = document["components"]["responses"]["Problem"]["content"]
    assert list(declared) == [PROBLEM]
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    problem = {"$ref": "#/components/responses/Problem"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            assert answers["default"] == problem, (path, method)
            if method == "post":
                assert all(answers[code] == problem for code in ("400", "403", "413", "415")), (path, method)


def test_pages_keep_their_html_errors(app: Flask) -> None:
    client = app.test_client()
    for answer in (client.get("/no-such-page"), client.delete("/"), client.post("/check/metadata")):
        assert answer.mimetype == "text/html" and 400 <= answer.status_code < 500


# --- reading a JSON body ----------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b'{"a": ' * (depth - 1) + b"[]" + b"}" * (depth - 1)


def test_nesting_up_to_the_cap_is_read_and_one_more_is_refused() -> None:
    assert read_json_object(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    with pytest.raises(JSONBodyError, match=f"more than {MAX_DEPTH} deep"):
        read_json_object(nested(MAX_DEPTH + 1))


def test_brackets_inside_strings_do_not_count() -> None:
    text = "[[[[" * 100 + '\\"' + "{{" * 100 + "\\\\"
    assert read_json_object(json.dumps({"xml": text}).encode()) == {"xml": text}
    # An escaped backslash before a quote ends the string: the brackets after it count.
    with pytest.raises(JSONBodyError, match="deep"):
        read_json_object(b'{"a": "\\\\", "b": ' + b"[" * 40 + b"]" * 40 + b"}")


def test_items_up_to_the_cap_are_read_and_more_are_refused() -> None:
    # {"a": [0, …]}: two openers, one string and a comma between each two of the k numbers.
    k = MAX_ITEMS - 2
    assert len(read_json_object(b'{"a": [' + b"0," * (k - 1) + b"0]}")["a"]) == k
    with pytest.raises(JSONBodyError, match=f"more than {MAX_ITEMS:,} strings, arrays, objects and commas"):
        read_json_object(b'{"a": [' + b"0," * k + b"0]}")


@pytest.mark.parametrize(("body", "message"), [
    (b'{"a": "\xc3"}', "not UTF-8: byte 7"),
    (b"", "empty"),
    (b"[{}]", "a JSON object, not an array"),
    (b'"{}"', "a JSON object, not a string"),
    (b'{"a": 1,}', "not JSON: .* line 1 column 9"),
    (b'{"a": ' + b"1" * 5000 + b"}", "not JSON"),
    (b"\xef\xbb\xbf{}", "not JSON"),
])
def test_each_defect_is_named(body: bytes, message: str) -> None:
    with pytest.raises(JSONBodyError, match=message):
        read_json_object(body)


ADVERSARIAL = {  # 5 MiB each: the scanner's worst cases
    "openers": b"[" * (5 * 1024 * 1024),
    "pairs": b"[]" * (5 * 512 * 1024),
    "closers": b"]" * (5 * 1024 * 1024),
    "empty strings": b'"",' * (5 * 1024 * 1024 // 3),
    "strings of brackets": b'"[",' * (5 * 256 * 1024),
    "escapes": b'"' + b'\\"' * (5 * 512 * 1024) + b'"',
    "backslashes": b'"' + b"\\" * (5 * 1024 * 1024) + b'"',
    "commas": b"[" + b"," * (5 * 1024 * 1024) + b"]",
    "nested at the cap": (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) * (5 * 1024 * 1024 // (2 * MAX_DEPTH)),
}


def test_adversarial_bodies_are_refused_within_a_second_of_cpu() -> None:
    def read_all() -> list[str]:
        outcomes = []
        for body in ADVERSARIAL.values():
            try:
                read_json_object(body)
                outcomes.append("read")
            except JSONBodyError as exc:
                outcomes.append(str(exc))
        return outcomes

    outcomes = run_with_cpu_limit(read_all, cpu_seconds=1).value
    assert "read" not in outcomes, dict(zip(ADVERSARIAL, outcomes, strict=True))
