"""The certificate timeline SVG: structure, escaping and the degenerate cases.

The SVG is read back with the one parser (`metadata.xml.parse_untrusted`), so these tests also
prove it is well-formed XML, embeddable as is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from metadata.xml import parse_untrusted
from validator.render.timeline import EMPTY, WIDTH, TimelineCertificate, certificate_timeline

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def cert(
    label: str, start_days: int, end_days: int, *, current: bool = False, sha: str = "AA:BB"
) -> TimelineCertificate:
    return TimelineCertificate(label, NOW + timedelta(days=start_days), NOW + timedelta(days=end_days), sha, current)


def draw(*certs: TimelineCertificate, warn_days: int = 30, now: datetime = NOW) -> etree._Element:
    svg = certificate_timeline(certs, now=now, warn_days=warn_days)
    return parse_untrusted(svg.encode()).getroot()


def groups(root: etree._Element) -> list[etree._Element]:
    return root.findall(f"{SVG}g[@data-sha256]")


def bar_x(group: etree._Element) -> tuple[float, float]:
    rect = group.find(f"{SVG}rect[@class='bar']")
    assert rect is not None
    x, width = float(rect.get("x", "0")), float(rect.get("width", "0"))
    return x, x + width


def line_x(root: etree._Element, cls: str) -> float:
    line = root.find(f"{SVG}line[@class='{cls}']")
    assert line is not None
    return float(line.get("x1", "0"))


ROLLOVER = (
    cert("CN=next", 5, 1100, sha="CC:CC"),
    cert("CN=old", -800, -10, sha="AA:AA"),
    cert("CN=current", -300, 20, current=True, sha="BB:BB"),
)


def test_output_is_deterministic() -> None:
    assert certificate_timeline(ROLLOVER, now=NOW, warn_days=30) == certificate_timeline(
        ROLLOVER, now=NOW, warn_days=30)


def test_one_bar_per_certificate_in_order_of_validity() -> None:
    root = draw(*ROLLOVER)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    bars = groups(root)
    assert [g.get("data-sha256") for g in bars] == ["AA:AA", "BB:BB", "CC:CC"]  # sorted by notBefore
    starts = [bar_x(g)[0] for g in bars]
    assert starts == sorted(starts)
    rows = [float(g.find(f"{SVG}rect[@class='bar']").get("y", "0")) for g in bars]  # type: ignore[union-attr]
    assert rows == sorted(rows) and len(set(rows)) == 3
    assert [g.get("class") for g in bars] == ["certificate expired", "certificate expiring current",
                                             "certificate not-yet-valid"]
    for group in bars:
        title = group.find(f"{SVG}title")
        assert title is not None and "SHA-256 " + str(group.get("data-sha256")) in "".join(title.itertext())


def test_now_and_the_warning_horizon_are_marked() -> None:
    root = draw(*ROLLOVER)
    now_x, horizon_x = line_x(root, "now"), line_x(root, "horizon")
    assert 0 < now_x < horizon_x < WIDTH
    expired, current, upcoming = (bar_x(g) for g in groups(root))
    assert expired[1] < now_x  # expired before now
    assert current[0] < now_x < current[1] < horizon_x  # expires inside the warning window
    assert now_x < upcoming[0]
    shade = root.find(f"{SVG}rect[@class='warning-horizon']")
    assert shade is not None and float(shade.get("x", "0")) == now_x
    assert abs(float(shade.get("x", "0")) + float(shade.get("width", "0")) - horizon_x) < 0.2
    text = "".join(root.itertext())
    assert "now 2026-06-01" in text and "warning horizon +30 d (2026-07-01)" in text


def test_the_current_signer_is_outlined_and_labelled() -> None:
    root = draw(*ROLLOVER)
    current = [g for g in groups(root) if "current" in (g.get("class") or "")]
    assert len(current) == 1
    assert current[0].find(f"{SVG}rect[@class='current-outline']") is not None
    assert "★ current signer · CN=current" in "".join(current[0].find(f"{SVG}text").itertext())  # type: ignore[union-attr]
    assert "current signer CN=current, valid until 2026-06-21" in (root.get("aria-label") or "")
    assert "current signer not known" in (draw(cert("CN=a", -1, 100)).get("aria-label") or "")


def test_labels_are_escaped() -> None:
    hostile = cert('<b>&"x"</b>\u202e<script>alert(1)</script>', -10, 100, sha="<img src=x>")
    svg = certificate_timeline([hostile], now=NOW, warn_days=30)
    assert "<b>" not in svg and "<script" not in svg and "<img" not in svg
    assert "&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;" in svg
    root = parse_untrusted(svg.encode()).getroot()
    label = "".join(groups(root)[0].find(f"{SVG}text").itertext())  # type: ignore[union-attr]
    assert label.startswith('<b>&"x"</b>\\u202e<script>')  # the bidi override is shown, not obeyed
    assert groups(root)[0].get("data-sha256") == "<img src=x>"


def test_self_contained() -> None:
    svg = certificate_timeline(ROLLOVER, now=NOW, warn_days=30)
    assert re.findall(r"https?://[^\"]+", svg) == ["http://www.w3.org/2000/svg"]
    for forbidden in ("<script", "href", "<style", "<image", "<foreignObject", "url(", "on"):
        if forbidden == "on":
            assert not re.search(r"\son[a-z]+=", svg)
        else:
            assert forbidden not in svg


def test_one_certificate() -> None:
    root = draw(cert("CN=only", -100, 400, current=True))
    assert len(groups(root)) == 1
    start, end = bar_x(groups(root)[0])
    assert start < line_x(root, "now") < end
    assert "1 certificate (1 valid)" in (root.get("aria-label") or "")


def test_all_expired() -> None:
    root = draw(cert("CN=a", -900, -400), cert("CN=b", -500, -5))
    now_x = line_x(root, "now")
    assert all(bar_x(g)[1] < now_x for g in groups(root))
    assert [g.get("class") for g in groups(root)] == ["certificate expired"] * 2
    assert "2 certificates (2 expired)" in (root.get("aria-label") or "")


def test_not_before_after_not_after() -> None:
    root = draw(cert("CN=backwards", 50, -100))
    group = groups(root)[0]
    assert group.get("class") == "certificate invalid-dates"
    start, end = bar_x(group)
    assert end - start > 0
    assert "is after notAfter" in "".join(group.itertext())


def test_no_certificate_is_a_sentence() -> None:
    assert certificate_timeline([], now=NOW, warn_days=30) == EMPTY
    assert "<svg" not in EMPTY


def test_centuries_of_validity_do_not_flatten_the_others() -> None:
    forever = TimelineCertificate("CN=forever", datetime(2000, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC),
                                  "FF", False)
    root = draw(forever, cert("CN=short", -30, 60))
    start, end = bar_x(groups(root)[1])
    assert end - start > 3  # a 90-day certificate is still visible on the axis
    assert bar_x(groups(root)[0])[1] <= WIDTH


def test_naive_datetimes_are_utc_and_warn_days_zero() -> None:
    naive = TimelineCertificate("CN=n", datetime(2026, 1, 1), datetime(2027, 1, 1), "AB", True)
    root = draw(naive, warn_days=0, now=datetime(2026, 6, 1, 12))
    assert "warning horizon +0 d (2026-06-01)" in "".join(root.itertext())
    assert groups(root)[0].get("class") == "certificate valid current"


Box = tuple[float, float, float, float]  # left, top, right, bottom


def label_box(root: etree._Element, cls: str) -> Box:
    """Where a marker label is drawn: 11 px text, at most 6.2 px a character (6.6 bold)."""
    text = root.find(f"{SVG}text[@class='{cls}']")
    assert text is not None
    x, y, content = float(text.get("x", "0")), float(text.get("y", "0")), "".join(text.itertext())
    width = len(content) * (6.6 if text.get("font-weight") == "700" else 6.2)
    left = x - width if text.get("text-anchor") == "end" else x
    return left, y - 9, left + width, y + 3


def crosses(root: etree._Element, line_class: str, box: Box) -> bool:
    line = root.find(f"{SVG}line[@class='{line_class}']")
    assert line is not None
    x, top, bottom = float(line.get("x1", "0")), float(line.get("y1", "0")), float(line.get("y2", "0"))
    return box[0] - 1 <= x <= box[2] + 1 and top <= box[3] and bottom >= box[1]


@pytest.mark.parametrize(("start_days", "end_days", "warn_days"), [
    (-300, 20, 30), (5, 1100, 30),  # now at the left, the horizon label right of its line
    (-3650, 3650, 30), (-300, 300, 0), (-20, 20, 30),  # now in the middle or the horizon wide
    (-3650, 500, 200), (-3650, 400, 90), (-2000, 60, 365), (-400, 40, 30),  # horizon label left of its line
    (-800, 20, 30), (-3650, 10, 5), (-3650, 1, 0), (-30, 0, 3650),  # both near the right edge
])
def test_the_now_and_horizon_labels_never_overlap(start_days: int, end_days: int, warn_days: int) -> None:
    root = draw(cert("CN=a", start_days, end_days, current=True), warn_days=warn_days)
    now, horizon = label_box(root, "now-label"), label_box(root, "horizon-label")
    apart = now[2] <= horizon[0] or horizon[2] <= now[0] or now[3] <= horizon[1] or horizon[3] <= now[1]
    assert apart, (now, horizon)
    assert not crosses(root, "now", horizon), "the now line runs through the horizon label"
    assert not crosses(root, "horizon", now), "the horizon line runs through the now label"
    for box in (now, horizon):
        assert box[0] >= 0 and box[2] <= WIDTH and box[1] >= 0, box
