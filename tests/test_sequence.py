"""The test login's sequence picture: its structure for each outcome, its words, its escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

import validator.checks  # noqa: F401  (registers every rule)
from validator.findings import rules
from validator.render.sequence import (
    CHECK_STAGES,
    STAGE_OF_FAMILY,
    Lifeline,
    Lifelines,
    Step,
    failed_stage,
    login_sequence,
    stage_of,
)

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2025, 3, 14, 9, 26, 53, 100000, tzinfo=UTC)
RECEIVED = T0 + timedelta(seconds=84.3)
JUDGED = RECEIVED + timedelta(milliseconds=40)
IDP = Lifelines(idp=Lifeline("Partner IdP", "Okta · http://www.okta.com/exk1"))
KEYS = ("login", "request", "idp", "response", "signature", "protocol", "claims", "result")


def steps(*, label: str = "GET /test-login/B-1", note: str = "") -> list[Step]:
    return [
        Step("login", label, "browser", "sp", T0),
        Step("request", "AuthnRequest (HTTP-Redirect)", "sp", "idp", T0, note="302 via the browser"),
        Step("idp", "the user signs in at the IdP", "idp", "idp"),
        Step("response", "POST SAMLResponse to /test-sp/acs", "idp", "sp", RECEIVED, note=note),
        Step("signature", "signature", "sp", "sp", JUDGED, check=True),
        Step("protocol", "protocol checks", "sp", "sp", JUDGED, note="RSP013", check=True),
        Step("claims", "claims vs the CRM record", "sp", "sp", JUDGED, check=True),
        Step("result", "303 to this result page", "sp", "browser", JUDGED, after_failure=True),
    ]


def parse(svg: str) -> etree._Element:
    root = etree.fromstring(svg.encode())
    assert root.tag == f"{SVG}svg"
    return root


def classes(element: etree._Element) -> list[str]:
    return (element.get("class") or "").split()


def step_states(root: etree._Element) -> dict[str, str]:
    return {classes(g)[1]: classes(g)[2] for g in root.iter(f"{SVG}g") if "step" in classes(g)}


def texts(root: etree._Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_an_accepted_login() -> None:
    svg = login_sequence(steps(), failed_at=None, lifelines=IDP)
    root = parse(svg)
    assert root.get("role") == "img"
    assert [classes(g)[1] for g in root.iter(f"{SVG}g") if "lifeline" in classes(g)] == ["browser", "sp", "idp"]
    assert step_states(root) == dict.fromkeys(KEYS, "done")
    assert len(root.findall(f".//{SVG}circle[@class='passed-mark']")) == 3
    assert root.findall(f".//{SVG}circle[@class='failed-mark']") == []
    assert root.find(f".//{SVG}g[@class='outcome passed']") is not None
    shown = texts(root)
    assert {"Browser", "Test SP (validator)", "Partner IdP", "Okta · http://www.okta.com/exk1"} <= set(shown)
    assert "AuthnRequest (HTTP-Redirect)" in shown and "302 via the browser" in shown
    # The times the SP saw, in UTC, and the time since the start; the IdP leg as the gap between them.
    assert {"09:26:53", "+0.0 s", "09:28:17", "+1 min 24 s", "1 min 24 s"} <= set(shown)
    label = root.get("aria-label") or ""
    assert label.startswith("Sequence of the login between Browser, Test SP (validator) and Partner IdP "
                            "(Okta · http://www.okta.com/exk1).")
    assert "1. Browser to Test SP (validator): GET /test-login/B-1, at 09:26:53 UTC (+0.0 s)." in label
    assert "3. Partner IdP: the user signs in at the IdP, not seen by the test SP, 1 min 24 s." in label
    assert "5. Test SP (validator): signature, at 09:28:17 UTC (+1 min 24 s), passed." in label
    assert label.endswith("Every step completed and every check passed.")
    assert root.findtext(f"{SVG}title") == label
    assert all(g.find(f"{SVG}title") is not None for g in root.iter(f"{SVG}g") if "step" in classes(g))


@pytest.mark.parametrize("stage", ["idp", *CHECK_STAGES])
def test_the_failed_step_is_red_and_the_later_ones_grey(stage: str) -> None:
    root = parse(login_sequence(steps(), failed_at=stage, lifelines=IDP))
    states = step_states(root)
    at = KEYS.index(stage)
    assert states == {key: "failed" if i == at else "not-reached" if i > at and key != "result" else "done"
                      for i, key in enumerate(KEYS)}
    [cross] = root.findall(f".//{SVG}circle[@class='failed-mark']")
    failed = next(g for g in root.iter(f"{SVG}g") if classes(g)[1:] == [stage, "failed"])
    assert cross.getparent() is failed
    assert any(t.endswith(" — failed here") for t in texts(failed))
    checks_before = len(CHECK_STAGES[:max(at - KEYS.index("signature"), 0)])
    assert len(root.findall(f".//{SVG}circle[@class='passed-mark']")) == checks_before
    outcome = root.find(f".//{SVG}g[@class='outcome failed']")
    assert outcome is not None
    name = {"idp": "the user signs in at the IdP", "signature": "signature", "protocol": "protocol checks (RSP013)",
            "claims": "claims vs the CRM record"}[stage]
    assert f"Failed at: {name}" in "".join(outcome.itertext())
    assert f"Failed at: {name}" in (root.get("aria-label") or "")
    assert ", not reached." in (root.get("aria-label") or "") or stage == "claims"


def test_the_picture_is_self_contained_and_deterministic() -> None:
    svg = login_sequence(steps(), failed_at="protocol", lifelines=IDP)
    assert svg == login_sequence(steps(), failed_at="protocol", lifelines=IDP)
    root = parse(svg)
    names = {etree.QName(e).localname for e in root.iter() if isinstance(e.tag, str)}
    assert names <= {"svg", "title", "g", "rect", "line", "path", "polygon", "circle", "text"}
    for element in root.iter():
        assert not {"id", "href", "style", "{http://www.w3.org/1999/xlink}href"} & set(element.attrib)
        assert not any(a.startswith("on") for a in element.attrib)
    assert "url(" not in svg and "<script" not in svg


@pytest.mark.parametrize("hostile", ['<script>&"', "</svg><script>alert(1)</script>", "x' onload='alert(1)"])
def test_every_text_is_escaped(hostile: str) -> None:
    lifelines = Lifelines(idp=Lifeline(hostile, hostile))
    svg = login_sequence(steps(label=hostile, note=hostile), failed_at="response", lifelines=lifelines)
    assert "<script" not in svg
    root = parse(svg)
    assert all(not a.startswith("on") for e in root.iter() for a in e.attrib)
    assert hostile in texts(root)  # the lifeline's name, exactly as given
    assert hostile in (root.get("aria-label") or "")
    assert any(hostile in (t.text or "") for t in root.iter(f"{SVG}title"))


def test_invisible_characters_are_shown_not_obeyed() -> None:
    svg = login_sequence(steps(), failed_at=None, lifelines=Lifelines(idp=Lifeline("IdP", "evil\u202eexample")))
    assert "\u202e" not in svg and "evil\\u202eexample" in svg


def test_long_entity_ids_keep_both_ends() -> None:
    entity = "https://sts.windows.net/0123456789abcdef-0123-4567-89ab-cdef01234567/"
    root = parse(login_sequence(steps(), failed_at=None, lifelines=Lifelines(idp=Lifeline("Partner IdP", entity))))
    [detail] = [t for t in texts(root) if "…" in t]
    assert detail.startswith("https://sts.") and detail.endswith("4567/") and len(detail) == 40
    assert entity in "".join(t.text or "" for t in root.iter(f"{SVG}title"))  # the whole of it on hover


def test_times_unknown_and_long_gaps() -> None:
    untimed = [Step("login", "GET /test-login/B-1", "browser", "sp"), Step("idp", "sign in", "idp", "idp")]
    root = parse(login_sequence(untimed, failed_at=None))
    assert "time not known" in (root.get("aria-label") or "") and "—" in texts(root)
    slow = steps()
    slow[3] = Step("response", "POST", "idp", "sp", T0 + timedelta(seconds=3725))
    shown = texts(parse(login_sequence(slow, failed_at=None)))
    assert "1 h 02 min" in shown and "+1 h 02 min" in shown


def test_bad_arguments_are_errors_of_the_tool() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        login_sequence([], failed_at=None)
    with pytest.raises(ValueError, match="no step is called 'audience'"):
        login_sequence(steps(), failed_at="audience")


@pytest.mark.parametrize(("codes", "stage"), [
    ([], None),
    (["RSP013"], "protocol"),
    (["RSP013", "RSP015"], "protocol"),
    (["CLM001"], "claims"),
    (["CRM001"], "claims"),
    (["SIG022"], "signature"),
    (["XML002"], "signature"),
    (["CLM001", "RSP013", "SIG021"], "signature"),  # the earliest stage wins, whatever the order
    (["CLM006", "RSP009"], "protocol"),
    (["ZZZ001"], "signature"),  # an unknown family never looks accepted
])
def test_failed_stage(codes: list[str], stage: str | None) -> None:
    assert failed_stage(codes) == stage


def test_every_rule_a_response_can_raise_has_a_stage() -> None:
    response_subjects = {"input", "response-signature", "response", "claims"}
    families = {r.code.rstrip("0123456789") for r in rules() if r.subject in response_subjects}
    assert families and families <= set(STAGE_OF_FAMILY)
    assert {stage_of(f"{family}001") for family in families} == set(CHECK_STAGES)
