"""The live test login as a sequence diagram: who sent what to whom, when, and where it failed.

:func:`login_sequence` returns an inline ``<svg>`` for the test-login result page. Like the
certificate timeline it is self-contained on purpose: no script, no stylesheet, no link, no
``id`` (so two pictures on one page cannot collide), only presentation attributes, so the
page's strict CSP allows it. Every text (a lifeline's name may hold the partner's entity ID)
is made visible with `shown` and then escaped.

What it draws: three lifelines (browser, test SP, partner IdP), one row per :class:`Step`
with its time in UTC and the time elapsed since the first step in a left column; a step the
SP cannot see (the user at the IdP) shows the gap between its neighbours instead. Checks
that passed get a tick; the failed step is red with a cross and its name; the steps after
it are greyed (not reached), except those marked as happening anyway. Each step has a
``<title>`` for hover text; the SVG has ``role="img"`` and an ``aria-label`` telling the
whole story in words.

:func:`failed_stage` says at which check a response was refused, from the codes of its errors.

Size: one self-contained picture is drawn here, from its model to its last attribute, so that
what it escapes and what it leaves out can be read in one place; each piece is a small function.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from validator.render import shown

__all__ = ["CHECK_STAGES", "STAGE_OF_FAMILY", "Lifeline", "Lifelines", "Step", "failed_stage", "login_sequence",
           "stage_of"]

Party = Literal["browser", "sp", "idp"]

CHECK_STAGES = ("signature", "protocol", "claims")
"""The test SP's checks in the order a service provider runs them: it trusts nothing it has
not verified, and it reads claims only from a response that passed the protocol checks."""

STAGE_OF_FAMILY = {"XML": "signature", "SIG": "signature", "RSP": "protocol", "CLM": "claims", "CRM": "claims"}
"""Which check stage a rule family belongs to: XML (the response could not be read at all)
and SIG fail before anything is trusted; RSP is the protocol (audience, destination,
times, InResponseTo); CLM and CRM compare the claims with the CRM record."""

WIDTH = 880
_GUTTER = 104  # the time column
_X: dict[Party, int] = {"browser": 210, "sp": 480, "idp": 752}
_HEAD_TOP, _HEAD_HEIGHT, _HEAD_WIDTH = 10, 46, 236
_FIRST_ROW = _HEAD_TOP + _HEAD_HEIGHT + 14
_ROW, _SELF_ROW = 52, 42
_LOOP = 34  # how far a self-message loops out from its lifeline
_OUTCOME = 54
_FONT = "-apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
_INK, _MUTED, _RULE, _GUTTER_FILL = "#1d2330", "#5b6576", "#c9d0db", "#f3f5f8"
_BAD, _BAD_FILL, _GOOD, _GOOD_FILL = "#b42318", "#fdecea", "#1e7a3a", "#e7f5ec"
_GREY, _GREY_TEXT = "#c3c9d2", "#98a1ad"
_HALO = 'stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"'
_CODE_FAMILY = re.compile(r"[A-Z]+")


@dataclass(frozen=True)
class Lifeline:
    """A participant: its name, and a second line such as the IdP's entity ID and product."""

    name: str
    detail: str = ""
    """Shown under the name, cut to the box (the full text on hover)."""


@dataclass(frozen=True)
class Lifelines:
    browser: Lifeline = Lifeline("Browser")
    sp: Lifeline = Lifeline("Test SP (validator)")
    idp: Lifeline = Lifeline("Partner IdP")

    def of(self, party: Party) -> Lifeline:
        return {"browser": self.browser, "sp": self.sp, "idp": self.idp}[party]


@dataclass(frozen=True)
class Step:
    """One message (or, when `source` is `target`, one thing a participant does)."""

    key: str
    """A stable name; `failed_at` names the failed step by it (e.g. ``protocol``)."""
    label: str
    """What is drawn on the arrow; for the failed step, the failing stage's name."""
    source: Party
    target: Party
    at: datetime | None = None
    """When the test SP saw it happen; None when it cannot see it (the user at the IdP)."""
    note: str = ""
    """A second, smaller line: the binding, or the codes of the errors that failed this step."""
    check: bool = False
    """A check: it gets a tick when it passed."""
    after_failure: bool = False
    """It happens even after a failure (the test SP always shows its result): never greyed."""


def stage_of(code: str) -> str:
    """The check stage a finding's code belongs to. A family :data:`STAGE_OF_FAMILY` does not
    know belongs to the first stage, so that a refused response never looks accepted."""
    family = _CODE_FAMILY.match(code)
    return STAGE_OF_FAMILY.get(family.group() if family else "", CHECK_STAGES[0])


def failed_stage(error_codes: Iterable[str]) -> str | None:
    """The first of :data:`CHECK_STAGES` that one of `error_codes` (the codes of a report's
    *errors*) belongs to, or None when there is no error."""
    stages = {stage_of(code) for code in error_codes}
    return next((stage for stage in CHECK_STAGES if stage in stages), None)


def login_sequence(steps: Sequence[Step], *, failed_at: str | None, lifelines: Lifelines = Lifelines()) -> str:
    """An inline SVG of `steps` between `lifelines`, with the step whose key is `failed_at`
    marked as failed and the ones after it greyed; ValueError when no step has that key."""
    failed_index = _failed_index(steps, failed_at)
    origin = next((_utc(s.at) for s in steps if s.at is not None), None)
    rows = _rows(steps)
    bottom = rows[-1][0] + rows[-1][1] + 6
    height = bottom + _OUTCOME + 10
    label = _aria_label(steps, failed_index, lifelines, origin)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="login-sequence" role="img" aria-label="{_esc(label)}" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{_esc(_FONT)}" '
        f'font-size="12">',
        f"<title>{_esc(label)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<rect x="0" y="{_FIRST_ROW - 8}" width="{_GUTTER}" height="{bottom - _FIRST_ROW + 8}" rx="4" '
        f'fill="{_GUTTER_FILL}"/>',
        f'<text x="{_GUTTER // 2}" y="{_HEAD_TOP + 28}" fill="{_MUTED}" font-size="10.5" font-weight="600" '
        f'letter-spacing="0.06em" text-anchor="middle">TIME (UTC)</text>',
    ]
    for party in _X:
        parts += _lifeline(party, lifelines.of(party), bottom)
    parts += _steps(steps, rows, failed_index, origin)
    parts += _outcome(steps, failed_index, bottom + 6)
    parts.append("</svg>")
    return "\n".join(parts)


def _failed_index(steps: Sequence[Step], failed_at: str | None) -> int:
    """The index of the failed step (the number of steps when none failed)."""
    if not steps:
        raise ValueError("a sequence needs at least one step")
    keys = [s.key for s in steps]
    if failed_at is not None and failed_at not in keys:
        raise ValueError(f"no step is called {failed_at!r}; the steps are {', '.join(keys)}")
    return keys.index(failed_at) if failed_at is not None else len(steps)


def _rows(steps: Sequence[Step]) -> list[tuple[int, int]]:
    """(top, height) of each step's row: a step the SP times by itself is a shorter row."""
    rows: list[tuple[int, int]] = []
    y = _FIRST_ROW
    for step in steps:
        height = _SELF_ROW if step.source == step.target and step.at is not None else _ROW
        rows.append((y, height))
        y += height
    return rows


def _steps(steps: Sequence[Step], rows: list[tuple[int, int]], failed_index: int, origin: datetime | None
           ) -> Iterator[str]:
    shown_time = ""
    for index, (step, (top, row_height)) in enumerate(zip(steps, rows, strict=True)):
        state = ("failed" if index == failed_index else
                 "not-reached" if index > failed_index and not step.after_failure else "done")
        when = f"{_utc(step.at):%H:%M:%S}" if step.at is not None else ""
        gap = _gap(steps, index)
        yield from _step(step, top, row_height, state, _timing(step, origin, gap))
        yield from _time(step, top, row_height, state, origin, gap, repeated=bool(when) and when == shown_time)
        shown_time = when or shown_time


# --- drawing ------------------------------------------------------------------------------


def _lifeline(party: Party, line: Lifeline, bottom: int) -> Iterator[str]:
    x = _X[party]
    left = x - _HEAD_WIDTH // 2
    hover = line.name + (f"\n{line.detail}" if line.detail else "")
    yield f'<g class="lifeline {party}">'
    yield f"<title>{_esc(shown(hover))}</title>"
    yield (f'<line x1="{x}" y1="{_HEAD_TOP + _HEAD_HEIGHT}" x2="{x}" y2="{bottom}" stroke="{_RULE}" '
           f'stroke-width="1.5" stroke-dasharray="5 4"/>')
    yield (f'<rect x="{left}" y="{_HEAD_TOP}" width="{_HEAD_WIDTH}" height="{_HEAD_HEIGHT}" rx="6" '
           f'fill="#eef3fb" stroke="#2f6fb0" stroke-width="1.2"/>')
    name_y = _HEAD_TOP + (20 if line.detail else 28)
    yield (f'<text x="{x}" y="{name_y}" fill="{_INK}" font-weight="700" font-size="13" text-anchor="middle">'
           f"{_esc(_cut(shown(line.name, one_line=True), 32))}</text>")
    if line.detail:
        yield (f'<text x="{x}" y="{_HEAD_TOP + 36}" fill="{_MUTED}" font-size="11" text-anchor="middle">'
               f"{_esc(_cut_middle(shown(line.detail, one_line=True), 40))}</text>")
    yield "</g>"


_COLOURS = {"failed": (_BAD, _BAD, _BAD), "not-reached": (_GREY, _GREY_TEXT, _GREY_TEXT), "done": (_INK, _INK, _MUTED)}
"""Per state: the line, the label and the note."""


@dataclass(frozen=True)
class _Look:
    """How one step is drawn: its colours, words and weight, from its state."""

    colour: str
    text_colour: str
    note_colour: str
    label: str
    note: str
    weight: str


def _look(step: Step, state: str) -> _Look:
    colour, text_colour, note_colour = _COLOURS[state]
    label = shown(step.label, one_line=True) + (" — failed here" if state == "failed" else "")
    note = shown(step.note, one_line=True)
    if state == "not-reached":  # in words too, for a print in black and white
        note = f"not reached · {note}" if note else "not reached"
    return _Look(colour, text_colour, note_colour, label, note, ' font-weight="700"' if state == "failed" else "")


def _step(step: Step, top: int, height: int, state: str, when: str) -> Iterator[str]:
    look = _look(step, state)
    yield f'<g class="step {_esc(step.key)} {state}">'
    yield f"<title>{_esc(_hover(step, state, when))}</title>"
    if step.source == step.target and step.at is None:
        drawn, mark = _unseen(step, top, height, look)
    elif step.source == step.target:
        drawn, mark = _own(step, top, look)
    else:
        drawn, mark = _message(step, top, look)
    yield from drawn
    if state == "failed":
        yield from _cross(*mark)
    elif state == "done" and step.check:
        yield from _tick(*mark)
    yield "</g>"


_Drawn = tuple[list[str], tuple[float, float]]
"""A step's SVG elements, and where its tick or cross goes."""


def _unseen(step: Step, top: int, height: int, look: _Look) -> _Drawn:
    """Time the SP cannot see (the user at the IdP): a dashed activation bar on the lifeline. It
    reaches up and down to the arrows of the rows around it: the request in, the response out."""
    x = _X[step.source]
    side = -1 if step.source == "idp" else 1
    anchor, tx = ("end", x - 16) if side < 0 else ("start", x + 16)
    parts = [f'<rect x="{x - 6}" y="{top - 23}" width="12" height="{height + 48}" rx="3" fill="none" '
             f'stroke="{look.colour}" stroke-width="1.2" stroke-dasharray="4 3"/>',
             f'<text x="{tx}" y="{top + height // 2 - 2}" fill="{look.text_colour}" text-anchor="{anchor}"'
             f'{look.weight} {_HALO}>{_esc(_cut(look.label, 44))}</text>']
    if look.note:
        parts.append(f'<text x="{tx}" y="{top + height // 2 + 13}" fill="{look.note_colour}" font-size="11" '
                     f'text-anchor="{anchor}" {_HALO}>{_esc(_cut(look.note, 52))}</text>')
    return parts, (x, top + height // 2)


def _own(step: Step, top: int, look: _Look) -> _Drawn:
    """Something a participant does itself (a check): a small loop, then a mark and the words."""
    x = _X[step.source]
    side = -1 if step.source == "idp" else 1  # the rightmost lifeline loops to the left
    y1, y2 = top + 9, top + 23
    out = x + side * _LOOP
    anchor, tx = ("start", out + 28) if side > 0 else ("end", out - 28)
    parts = [f'<path d="M {x} {y1} H {out} V {y2} H {x + side * 9}" fill="none" stroke="{look.colour}" '
             f'stroke-width="1.5"/>', _arrowhead(x, y2, -side, look.colour),
             f'<text x="{tx}" y="{y1 + 5}" fill="{look.text_colour}" text-anchor="{anchor}"{look.weight} {_HALO}>'
             f"{_esc(_cut(look.label, 44))}</text>"]
    if look.note:
        parts.append(f'<text x="{tx}" y="{y1 + 19}" fill="{look.note_colour}" font-size="11" '
                     f'text-anchor="{anchor}" {_HALO}>{_esc(_cut(look.note, 56))}</text>')
    return parts, (out + side * 14, (y1 + y2) // 2)


def _message(step: Step, top: int, look: _Look) -> _Drawn:
    """A message from one lifeline to another: an arrow, its label above and its note below."""
    x, x2 = _X[step.source], _X[step.target]
    direction = 1 if x2 > x else -1
    line_y = top + 27
    mid = (x + x2) / 2
    dash = ' stroke-dasharray="5 4"' if step.at is None else ""
    room = abs(x2 - x) - 16
    parts = [f'<line x1="{x}" y1="{line_y}" x2="{x2 - direction * 8}" y2="{line_y}" stroke="{look.colour}" '
             f'stroke-width="1.5"{dash}/>', _arrowhead(x2, line_y, direction, look.colour),
             f'<text x="{mid:g}" y="{line_y - 7}" fill="{look.text_colour}" text-anchor="middle"{look.weight} '
             f"{_HALO}>{_esc(_cut(look.label, room // 7))}</text>"]
    if look.note:
        parts.append(f'<text x="{mid:g}" y="{line_y + 15}" fill="{look.note_colour}" font-size="11" '
                     f'text-anchor="middle" {_HALO}>{_esc(_cut(look.note, room // 6))}</text>')
    return parts, (x2 - direction * 22, line_y)


def _time(step: Step, top: int, height: int, state: str, origin: datetime | None, gap: float | None, *,
          repeated: bool) -> Iterator[str]:
    """The step's time and the time since the first step; a rule down from the time above when it
    is the same second (the checks take milliseconds); the gap for a step the SP cannot see."""
    grey = state == "not-reached"
    if step.at is not None and repeated:
        yield (f'<line x1="16" y1="{top - 9}" x2="16" y2="{top + height - 9}" stroke="{_RULE}" stroke-width="2"/>')
    elif step.at is not None:
        at = _utc(step.at)
        yield (f'<text x="12" y="{top + 22}" fill="{_GREY_TEXT if grey else _INK}" font-size="13" font-weight="700">'
               f"{at:%H:%M:%S}</text>")
        if origin is not None:
            yield (f'<text x="12" y="{top + 37}" fill="{_GREY_TEXT if grey else _MUTED}" font-size="11">'
                   f"{_elapsed((at - origin).total_seconds())}</text>")
    elif gap is not None:
        yield (f'<text x="12" y="{top + height // 2 - 2}" fill="{_MUTED}" font-size="12" font-weight="700" '
               f'font-style="italic">{_stopwatch(gap)}</text>')
        yield (f'<text x="12" y="{top + height // 2 + 13}" fill="{_MUTED}" font-size="10.5">'
               f"not seen by the SP</text>")
    else:
        yield f'<text x="12" y="{top + 22}" fill="{_MUTED}" font-size="12">—</text>'


def _arrowhead(x: float, y: float, direction: int, colour: str) -> str:
    back = x - direction * 9
    return f'<polygon points="{x:g},{y} {back:g},{y - 4.5} {back:g},{y + 4.5}" fill="{colour}"/>'


def _cross(x: float, y: float) -> Iterator[str]:
    yield f'<circle class="failed-mark" cx="{x:g}" cy="{y}" r="9" fill="{_BAD}" stroke="#ffffff" stroke-width="2"/>'
    yield (f'<path d="M {x - 3.5:g} {y - 3.5} L {x + 3.5:g} {y + 3.5} M {x - 3.5:g} {y + 3.5} L {x + 3.5:g} '
           f'{y - 3.5}" stroke="#ffffff" stroke-width="2.2" stroke-linecap="round"/>')


def _tick(x: float, y: float) -> Iterator[str]:
    yield f'<circle class="passed-mark" cx="{x:g}" cy="{y}" r="8" fill="{_GOOD}" stroke="#ffffff" stroke-width="2"/>'
    yield (f'<path d="M {x - 3.5:g} {y} L {x - 1:g} {y + 2.8} L {x + 3.8:g} {y - 3}" fill="none" stroke="#ffffff" '
           f'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>')


def _outcome(steps: Sequence[Step], failed_index: int, top: int) -> Iterator[str]:
    failed = failed_index < len(steps)
    fill, ink = (_BAD_FILL, _BAD) if failed else (_GOOD_FILL, _GOOD)
    yield f'<g class="outcome {"failed" if failed else "passed"}">'
    headline, more = _verdict(steps, failed_index)
    yield f'<rect x="0" y="{top}" width="{WIDTH}" height="{_OUTCOME - 8}" rx="6" fill="{fill}"/>'
    yield (f'<text x="14" y="{top + (20 if more else 24)}" fill="{ink}" font-size="13.5" font-weight="700">'
           f"{_esc(_cut(headline, 108))}</text>")
    if more:
        yield f'<text x="14" y="{top + 37}" fill="{ink}" font-size="11.5">{_esc(more)}</text>'
    yield "</g>"


# --- words --------------------------------------------------------------------------------


def _verdict(steps: Sequence[Step], failed_index: int) -> tuple[str, str]:
    """The outcome in a headline and, when steps were skipped, a second sentence."""
    if failed_index >= len(steps):
        return "✓ Every step completed and every check passed.", ""
    step = steps[failed_index]
    note = f" ({shown(step.note, one_line=True)})" if step.note else ""
    skipped = [s for s in steps[failed_index + 1:] if not s.after_failure]
    return (f"✕ Failed at: {shown(step.label, one_line=True)}{note}.",
            "The greyed steps after it were not reached." if skipped else "")


def _timing(step: Step, origin: datetime | None, gap: float | None) -> str:
    if step.at is not None:
        moment = _utc(step.at)
        since = f" ({_elapsed((moment - origin).total_seconds())})" if origin is not None else ""
        return f"at {moment:%H:%M:%S} UTC{since}"
    return f"not seen by the test SP, {_stopwatch(gap)}" if gap is not None else "time not known"


def _hover(step: Step, state: str, when: str) -> str:
    status = {"failed": "failed here", "not-reached": "not reached", "done": "passed" if step.check else ""}[state]
    return "\n".join(p for p in (shown(step.label), shown(step.note), when, status) if p)


def _aria_label(steps: Sequence[Step], failed_index: int, lifelines: Lifelines, origin: datetime | None) -> str:
    def who(party: Party) -> str:
        line = lifelines.of(party)
        return shown(line.name, one_line=True) + (f" ({shown(line.detail, one_line=True)})" if line.detail else "")

    sentences = [f"Sequence of the login between {who('browser')}, {who('sp')} and {who('idp')}."]
    for number, step in enumerate(steps, 1):
        actors = (f"{shown(lifelines.of(step.source).name, one_line=True)}" if step.source == step.target else
                  f"{shown(lifelines.of(step.source).name, one_line=True)} to "
                  f"{shown(lifelines.of(step.target).name, one_line=True)}")
        text = f"{number}. {actors}: {shown(step.label, one_line=True)}"
        if step.note:
            text += f", {shown(step.note, one_line=True)}"
        text += f", {_timing(step, origin, _gap(steps, number - 1))}"
        if number - 1 == failed_index:
            text += ", failed here"
        elif number - 1 > failed_index and not step.after_failure:
            text += ", not reached"
        elif step.check:
            text += ", passed"
        sentences.append(text + ".")
    sentences += [sentence.lstrip("✓✕ ") for sentence in _verdict(steps, failed_index) if sentence]
    return " ".join(sentences)


def _gap(steps: Sequence[Step], index: int) -> float | None:
    """For a step without a time: the seconds between the timed steps around it."""
    if steps[index].at is not None:
        return None
    before = next((s.at for s in reversed(steps[:index]) if s.at is not None), None)
    after = next((s.at for s in steps[index + 1:] if s.at is not None), None)
    if before is None or after is None:
        return None
    return (_utc(after) - _utc(before)).total_seconds()


def _elapsed(seconds: float) -> str:
    return ("−" if seconds < 0 else "+") + _stopwatch(abs(seconds))


def _stopwatch(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def _cut_middle(text: str, limit: int) -> str:
    """Long URLs keep both ends: the host and the distinctive last path segment."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
