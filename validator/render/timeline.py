"""The certificate timeline: each signing certificate's validity as a bar on one date axis.

:func:`certificate_timeline` returns an inline ``<svg>`` to embed in an HTML page (the sweep
summary, the go-live report, the discovery worksheet). It is self-contained on purpose: no
script, no stylesheet, no link, no external reference, only presentation attributes, so a
page's strict CSP and its own CSS neither break it nor are broken by it. Every text from a
certificate (its label, its fingerprint) is made visible with `shown` and then escaped.

What it draws: a bar from notBefore to notAfter per certificate, sorted by notBefore; a
vertical line for *now*; the warning horizon (now + `warn_days`) shaded; expired, expiring,
not-yet-valid and valid bars in different colours (and patterns for print: expired bars are
hollow, not-yet-valid ones dashed); the current signer outlined and labelled. Each bar has
a ``<title>`` for hover text; the SVG has ``role="img"`` and an ``aria-label`` that says the
same in words.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from validator.render import shown

__all__ = ["EMPTY", "TimelineCertificate", "certificate_timeline"]

EMPTY = "No signing certificate to draw."
"""What :func:`certificate_timeline` returns for no certificates: a sentence, not an SVG."""

WIDTH = 760
_LEFT, _RIGHT = 12, 12
_TOP = 36  # room for the "now" and horizon labels, on two lines
_LINE1, _LINE2 = 11, _TOP - 9  # the baselines of those two lines
_ASCENT = 9  # of 11 px text above its baseline: a marker line that starts below a label's line
_ROW = 38  # a label line and a bar
_BAR = 14
_AXIS = 26
_LEGEND = 22
_LABEL_CHARS = 90
_FONT = "-apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
_MAX_PAST = timedelta(days=15 * 365)
_MAX_FUTURE = timedelta(days=30 * 365)

# Colour, then how the bar is filled: a hollow bar or a dashed outline still reads in black and white.
_STYLE = {
    "valid": ("#2f6fb0", "solid"),
    "expiring": ("#c77700", "solid"),
    "expired": ("#b42318", "hollow"),
    "not yet valid": ("#6b8fbf", "dashed"),
    "invalid dates": ("#5b6576", "hollow"),
}
_HORIZON_FILL = "#f5b942"
_INK, _MUTED, _RULE = "#1d2330", "#5b6576", "#c9d0db"
_HALO = 'stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"'


@dataclass(frozen=True)
class TimelineCertificate:
    """One signing certificate as the timeline draws it."""

    label: str
    """What the bar is called, e.g. the subject; shown escaped, cut at 90 characters (the full text on hover)."""
    not_before: datetime
    not_after: datetime
    sha256: str
    """The SHA-256 fingerprint, shown on hover."""
    current: bool = False
    """The certificate that signs now: outlined and labelled."""


def certificate_timeline(certs: Sequence[TimelineCertificate], *, now: datetime, warn_days: int) -> str:
    """An inline SVG of `certs` on one date axis with `now` and `now + warn_days` marked,
    or the sentence :data:`EMPTY` when there is no certificate."""
    if not certs:
        return EMPTY
    now = _utc(now)
    horizon = now + timedelta(days=max(warn_days, 0))
    rows = sorted(certs, key=lambda c: (_utc(c.not_before), _utc(c.not_after)))
    start, end = _domain(rows, now, horizon)
    axis = _Axis(start, end)
    height = _TOP + _ROW * len(rows) + _AXIS + _LEGEND
    plot_bottom = _TOP + _ROW * len(rows)
    label = _aria_label(rows, now, horizon, warn_days)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="certificate-timeline" role="img" '
        f'aria-label="{_esc(label)}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'font-family="{_esc(_FONT)}" font-size="12">',
        f"<title>{_esc(label)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    now_text, horizon_text = f"now {now:%Y-%m-%d}", f"warning horizon +{warn_days} d ({horizon:%Y-%m-%d})"
    now_label, horizon_label = _marker_labels(axis.x(now), axis.x(horizon), now_text, horizon_text)
    parts += _horizon(axis, now, horizon, horizon_text, horizon_label, plot_bottom)
    parts += _ticks(axis, plot_bottom)
    for index, cert in enumerate(rows):
        parts += _bar(cert, axis, _TOP + index * _ROW, now, horizon)
    parts += _now_marker(axis, now, now_text, now_label, plot_bottom)
    parts += _legend(plot_bottom + _AXIS)
    parts.append("</svg>")
    return "\n".join(parts)


def status(cert: TimelineCertificate, now: datetime, horizon: datetime) -> str:
    """``invalid dates``, ``expired``, ``not yet valid``, ``expiring`` (before the horizon) or ``valid``."""
    before, after = _utc(cert.not_before), _utc(cert.not_after)
    if before > after:
        return "invalid dates"
    if after < now:
        return "expired"
    if before > now:
        return "not yet valid"
    if after < horizon:
        return "expiring"
    return "valid"


class _Axis:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self._span = (end - start).total_seconds()

    def x(self, moment: datetime) -> float:
        moment = min(max(_utc(moment), self.start), self.end)
        return round(_LEFT + (moment - self.start).total_seconds() / self._span * (WIDTH - _LEFT - _RIGHT), 1)


def _domain(rows: Sequence[TimelineCertificate], now: datetime, horizon: datetime) -> tuple[datetime, datetime]:
    """The dates the axis spans: every certificate, now and the horizon, with a margin; a
    certificate valid for centuries is cut off rather than squeezing the others flat."""
    first = min([now, *(min(_utc(c.not_before), _utc(c.not_after)) for c in rows)])
    last = max([horizon, *(max(_utc(c.not_before), _utc(c.not_after)) for c in rows)])
    first, last = max(first, now - _MAX_PAST), min(last, now + _MAX_FUTURE)
    margin = max((last - first) * 0.04, timedelta(days=3))
    return first - margin, last + margin


def _bar(cert: TimelineCertificate, axis: _Axis, top: int, now: datetime, horizon: datetime) -> Iterator[str]:
    state = status(cert, now, horizon)
    colour, fill = _STYLE[state]
    before, after = _utc(cert.not_before), _utc(cert.not_after)
    x1, x2 = sorted((axis.x(before), axis.x(after)))
    width = max(round(x2 - x1, 1), 2.0)
    bar_y = top + 18
    days = (after - now).days
    when = (f"expired {-days} days ago" if state == "expired" else
            f"valid from {before:%Y-%m-%d}" if state == "not yet valid" else
            "notBefore is after notAfter" if state == "invalid dates" else f"{days} days left")
    title = (f"{shown(cert.label, one_line=True)}\n{state}"
             f"{' · current signer' if cert.current else ''}: {before:%Y-%m-%d} → {after:%Y-%m-%d} ({when})\n"
             f"SHA-256 {shown(cert.sha256, one_line=True)}")
    attributes = {
        "solid": f'fill="{colour}" stroke="{colour}"',
        "hollow": f'fill="#ffffff" stroke="{colour}" stroke-width="1.5"',
        "dashed": f'fill="#ffffff" stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"',
    }[fill]
    yield (f'<g class="certificate {state.replace(" ", "-")}{" current" if cert.current else ""}" '
           f'data-sha256="{_esc(cert.sha256)}">')
    yield f"<title>{_esc(title)}</title>"
    text = _cut(shown(cert.label, one_line=True))
    suffix = " — " + {
        "valid": f"valid until {after:%Y-%m-%d}",
        "expiring": f"expires {after:%Y-%m-%d}, in {days} days",
        "expired": f"expired {after:%Y-%m-%d}",
        "not yet valid": f"valid from {before:%Y-%m-%d} until {after:%Y-%m-%d}",
        "invalid dates": f"notBefore {before:%Y-%m-%d} is after notAfter {after:%Y-%m-%d}",
    }[state]
    weight = ' font-weight="700"' if cert.current else ""
    # A white halo (stroke painted under the fill) keeps the label readable over the grid and markers.
    yield (f'<text x="{_LEFT}" y="{top + 13}" fill="{_INK}"{weight} {_HALO}>'
           + (f'<tspan fill="{_INK}">★ current signer · </tspan>' if cert.current else "")
           + f'{_esc(text)}<tspan fill="{_MUTED}" font-weight="400">{_esc(suffix)}</tspan></text>')
    if cert.current:  # an outline around the bar, so the bar keeps the colour of its state
        yield (f'<rect class="current-outline" x="{round(x1 - 3, 1)}" y="{bar_y - 3}" width="{round(width + 6, 1)}" '
               f'height="{_BAR + 6}" rx="5" fill="none" stroke="{_INK}" stroke-width="2"/>')
    yield f'<rect class="bar" x="{x1}" y="{bar_y}" width="{width}" height="{_BAR}" rx="3" {attributes}/>'
    yield "</g>"


@dataclass(frozen=True)
class _Label:
    """Where a marker's label goes, and where the marker's line starts."""

    x: float
    y: int
    anchor: str
    line_top: int


def _text_width(text: str, *, bold: bool = False) -> float:
    """A generous estimate of `text`'s width at 11 px: a string renderer has no font metrics."""
    return len(text) * (6.6 if bold else 6.2)


def _marker_labels(x_now: float, x_horizon: float, now_text: str, horizon_text: str) -> tuple[_Label, _Label]:
    """The "now" label on the top line and the horizon's on the second, each beside its own line,
    so that neither label touches the other nor is crossed by the other's line. The horizon label
    goes right of its line if it fits, else left of it if it clears the "now" line; else (both
    near the right edge) the two swap lines, each label left of its line, and the "now" line
    starts below the top line, where the horizon label then is."""
    right = WIDTH - 2
    fits = x_now + 4 + _text_width(now_text, bold=True) <= right
    now_label = _Label(round(x_now + 4, 1) if fits else round(x_now - 4, 1), _LINE1, "start" if fits else "end", 2)
    width = _text_width(horizon_text)
    if x_horizon + 4 + width <= right:
        return now_label, _Label(round(x_horizon + 4, 1), _LINE2, "start", _TOP - 6)
    if x_horizon - 4 - width >= x_now + 4:
        return now_label, _Label(round(x_horizon - 4, 1), _LINE2, "end", _TOP - 6)
    return (_Label(round(x_now - 4, 1), _LINE2, "end", _LINE2 - _ASCENT - 2),
            _Label(round(x_horizon - 4, 1), _LINE1, "end", 2))


def _horizon(axis: _Axis, now: datetime, horizon: datetime, text: str, label: _Label, bottom: int) -> Iterator[str]:
    x1, x2 = axis.x(now), axis.x(horizon)
    yield (f'<rect class="warning-horizon" x="{x1}" y="{_TOP - 6}" width="{max(round(x2 - x1, 1), 1.0)}" '
           f'height="{bottom - _TOP + 6}" fill="{_HORIZON_FILL}" fill-opacity="0.18"/>')
    yield (f'<line class="horizon" x1="{x2}" y1="{label.line_top}" x2="{x2}" y2="{bottom}" stroke="#c77700" '
           f'stroke-width="1" stroke-dasharray="3 3"/>')
    yield (f'<text class="horizon-label" x="{label.x}" y="{label.y}" fill="#9a5b00" text-anchor="{label.anchor}" '
           f'font-size="11" {_HALO}>{_esc(text)}</text>')


def _now_marker(axis: _Axis, now: datetime, text: str, label: _Label, bottom: int) -> Iterator[str]:
    x = axis.x(now)
    yield (f'<line class="now" x1="{x}" y1="{label.line_top}" x2="{x}" y2="{bottom}" stroke="{_INK}" '
           f'stroke-width="1.5"/>')
    yield (f'<text class="now-label" x="{label.x}" y="{label.y}" fill="{_INK}" font-weight="700" font-size="11" '
           f'{_HALO} text-anchor="{label.anchor}">{_esc(text)}</text>')


def _ticks(axis: _Axis, bottom: int) -> Iterator[str]:
    yield (f'<line class="axis" x1="{_LEFT}" y1="{bottom + 2}" x2="{WIDTH - _RIGHT}" y2="{bottom + 2}" '
           f'stroke="{_MUTED}" stroke-width="1"/>')
    for moment, text in _tick_dates(axis.start, axis.end):
        x = axis.x(moment)
        yield f'<line x1="{x}" y1="{_TOP - 6}" x2="{x}" y2="{bottom + 6}" stroke="{_RULE}" stroke-width="0.5"/>'
        yield f'<text x="{x}" y="{bottom + 18}" fill="{_MUTED}" font-size="11" text-anchor="middle">{text}</text>'


def _tick_dates(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Year ticks (every 1, 2 or 5 years) for long spans, month ticks (every 1, 3 or 6) for short ones."""
    days = (end - start).days
    if days > 3 * 365:
        step = 1 if days <= 8 * 365 else 2 if days <= 16 * 365 else 5
        years = range(start.year + 1, end.year + 1)
        return [(datetime(y, 1, 1, tzinfo=UTC), str(y)) for y in years if y % step == 0]
    step = 1 if days <= 200 else 3 if days <= 730 else 6
    ticks: list[tuple[datetime, str]] = []
    year, month = start.year, start.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        moment = datetime(year, month, 1, tzinfo=UTC)
        if moment > end:
            return ticks
        if (month - 1) % step == 0:
            ticks.append((moment, f"{moment:%b %Y}" if month == 1 or not ticks else f"{moment:%b}"))


def _legend(top: int) -> Iterator[str]:
    x = _LEFT
    yield f'<g class="legend" font-size="11" fill="{_MUTED}">'
    for name in ("valid", "expiring", "expired", "not yet valid"):
        colour, fill = _STYLE[name]
        paint = {"solid": f'fill="{colour}"', "hollow": f'fill="#ffffff" stroke="{colour}" stroke-width="1.5"',
                 "dashed": f'fill="#ffffff" stroke="{colour}" stroke-width="1.5" stroke-dasharray="3 2"'}[fill]
        yield f'<rect x="{x}" y="{top + 6}" width="14" height="9" rx="2" {paint}/>'
        yield f'<text x="{x + 18}" y="{top + 14}">{name}</text>'
        x += 18 + 7 * len(name) + 16
    yield f'<rect x="{x}" y="{top + 5}" width="14" height="11" fill="{_HORIZON_FILL}" fill-opacity="0.35"/>'
    yield f'<text x="{x + 18}" y="{top + 14}">warning window</text>'
    x += 18 + 7 * len("warning window") + 16
    yield f'<rect x="{x}" y="{top + 5}" width="14" height="11" rx="3" fill="none" stroke="{_INK}" stroke-width="2"/>'
    yield f'<text x="{x + 18}" y="{top + 14}">current signer</text>'
    yield "</g>"


def _aria_label(rows: Sequence[TimelineCertificate], now: datetime, horizon: datetime, warn_days: int) -> str:
    counts: dict[str, int] = {}
    for cert in rows:
        state = status(cert, now, horizon)
        counts[state] = counts.get(state, 0) + 1
    noun = "certificate" if len(rows) == 1 else "certificates"
    parts = [f"Signing certificate timeline: {len(rows)} {noun} ("
             + ", ".join(f"{n} {state}" for state, n in counts.items()) + f") on {now:%Y-%m-%d}, "
             f"warning window {warn_days} days"]
    current = [c for c in rows if c.current]
    if current:
        cert = current[0]
        parts.append(f"current signer {shown(cert.label, one_line=True)}, valid until {_utc(cert.not_after):%Y-%m-%d}")
    else:
        parts.append("current signer not known")
    return "; ".join(parts)


def _cut(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
