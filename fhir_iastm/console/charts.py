"""The course-of-care charts as SVG text (docs/console.md#charts): pure functions of a
:class:`~fhir_iastm.console.course.CourseView`.

Every chart is ``role="img"`` with a ``<title>`` and a ``<desc>`` that states the trend in words;
labels are ``<text>``. Points carry classes the browser tests count: ``dumbbell`` (a session's
pre->post pain), ``cancelled`` (hollow tick), ``effect`` (adverse-effect marker, shaped by kind),
``pt`` (a point of a small multiple).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fhir_iastm.console.course import CourseView, Series, SessionPoint
from fhir_iastm.console.svg import el, fmt, svg, text
from fhir_iastm.console.thresholds import PAIN_PERCENT, PAIN_POINTS, PAIN_SOURCE

#: the shape of each adverse effect kind (not colour alone)
EFFECT_SHAPES = {"bruising": "triangle", "petechiae": "square", "soreness": "diamond"}


@dataclass(frozen=True, slots=True)
class Frame:
    """Plot area and scales: x = session number, y = value."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_max: int
    y_min: float
    y_max: float

    def x(self, number: float) -> float:
        span = max(self.x_max, 1)
        return self.left + (number - 0.5) * (self.width - self.left - self.right) / span

    def y(self, value: float) -> float:
        span = (self.y_max - self.y_min) or 1.0
        inner = self.height - self.top - self.bottom
        return self.top + (self.y_max - value) * inner / span

    @property
    def axis_y(self) -> float:
        return self.y(self.y_min)


def _axes(f: Frame, ticks: list[float], y_label: str) -> list[str]:
    out = [el("line", x1=float(f.left), y1=f.axis_y, x2=float(f.width - f.right), y2=f.axis_y,
              class_="axis")]
    for value in ticks:
        y = f.y(value)
        out.append(el("line", x1=float(f.left), y1=y, x2=float(f.width - f.right), y2=y,
                      class_="grid"))
        out.append(text(f.left - 6, y + 4, fmt(value), text_anchor="end", class_="tick"))
    for n in range(1, f.x_max + 1):
        out.append(text(f.x(n), f.axis_y + 16, str(n), text_anchor="middle", class_="tick"))
    out.append(text(f.left, f.top - (24 if f.top > 40 else 8), y_label, class_="label"))
    return out


def _pain_band(f: Frame, baseline: int) -> list[str]:
    drop = min(PAIN_POINTS, baseline * PAIN_PERCENT / 100.0)
    top, low = f.y(baseline), f.y(max(baseline - drop, 0))
    right = float(f.width - f.right)
    return [
        el("rect", x=float(f.left), y=top, width=right - f.left, height=low - top,
           class_="mcid-band"),
        el("line", x1=float(f.left), y1=top, x2=right, y2=top, class_="baseline",
           stroke_dasharray="6 4"),
        text(right - 4, top - 4, f"baseline {baseline}", text_anchor="end", class_="note"),
        text(right, f.top - 8, f"band: clinically important change, {fmt(PAIN_POINTS)} points "
             f"or {fmt(PAIN_PERCENT)} % ({PAIN_SOURCE})", text_anchor="end", class_="note"),
    ]


def _dumbbell(f: Frame, p: SessionPoint) -> str:
    x = f.x(p.number)
    pre = f.y(p.pain_pre or 0)
    parts = [el("title", f"session {p.number}: pain {p.pain_pre} before"
                + (f", {p.pain_post} after" if p.pain_post is not None else ""))]
    if p.pain_post is not None:
        post = f.y(p.pain_post)
        parts.append(el("line", x1=x, y1=pre, x2=x, y2=post, class_="bar"))
        parts.append(el("circle", cx=x, cy=post, r=5.0, class_="post"))
    parts.append(el("circle", cx=x, cy=pre, r=5.0, class_="pre"))
    return el("g", "".join(parts), class_="dumbbell", data_session=p.number)


def _cancelled(f: Frame, p: SessionPoint) -> str:
    x, y = f.x(p.number), f.axis_y
    return el("g", el("title", f"session {p.number}: cancelled")
              + el("rect", x=x - 4, y=y - 14, width=8.0, height=14.0, class_="hollow"),
              class_="cancelled", data_session=p.number)


def _marker(shape: str, x: float, y: float) -> str:
    if shape == "triangle":
        return el("polygon", points=f"{fmt(x)},{fmt(y - 5)} {fmt(x - 5)},{fmt(y + 4)} "
                  f"{fmt(x + 5)},{fmt(y + 4)}")
    if shape == "square":
        return el("rect", x=x - 4, y=y - 4, width=8.0, height=8.0)
    return el("polygon", points=f"{fmt(x)},{fmt(y - 5)} {fmt(x + 5)},{fmt(y)} {fmt(x)},"
              f"{fmt(y + 5)} {fmt(x - 5)},{fmt(y)}")


def _effects(f: Frame, points: tuple[SessionPoint, ...]) -> list[str]:
    out = []
    kinds = list(EFFECT_SHAPES)
    for p in points:
        for kind, severity in p.effects:
            shape = EFFECT_SHAPES.get(kind, "diamond")
            y = f.axis_y + 30 + 12 * (kinds.index(kind) if kind in kinds else 0)
            out.append(el("g", el("title", f"session {p.number}: {kind}, {severity}")
                          + _marker(shape, f.x(p.number), y),
                          class_=f"effect effect-{kind} {severity}", data_shape=shape))
    return out


def pain_desc(view: CourseView) -> str:
    """The pain chart's trend in words."""
    pain = view.pain
    if pain.baseline is None:
        return "No pain scores were recorded in this course of care."
    if pain.change is None:
        return f"Pain before treatment was {pain.baseline} at the first session; one session only."
    direction = "fell" if pain.change < 0 else "rose" if pain.change > 0 else "stayed"
    words = (f"Pain before treatment {direction} from {pain.baseline} at the first session to "
             f"{pain.latest} at the latest ({pain.change:+d} points")
    words += f", {pain.percent:+.0f} %)" if pain.percent is not None else ")"
    reached = "reached" if pain.important else "not reached"
    words += f"; clinically important change {reached} ({PAIN_SOURCE})."
    drops = [p.pain_pre - p.pain_post for p in view.counted
             if p.pain_pre is not None and p.pain_post is not None]
    if drops:
        words += f" Within sessions pain fell by {sum(drops) / len(drops):.1f} points on average."
    if view.cancelled:
        words += f" {len(view.cancelled)} cancelled session(s) shown as hollow ticks."
    return words


def x_max(view: CourseView) -> int:
    numbers = [p.number for p in view.sessions]
    return max([*numbers, view.planned or 0, 1])


def pain_chart(view: CourseView) -> str:
    """Pain (NRS 0-10) per session: dumbbells pre->post, dashed baseline, important-change band,
    hollow ticks for cancelled sessions, adverse-effect markers under the axis."""
    f = Frame(680, 316, 44, 16, 44, 76, x_max(view), 0.0, 10.0)
    body = _axes(f, [0, 2, 4, 6, 8, 10], "pain (NRS 0-10), ● before, ○ after")
    if view.pain.baseline is not None:
        body += _pain_band(f, view.pain.baseline)
    for p in view.sessions:
        if p.counted and p.pain_pre is not None:
            body.append(_dumbbell(f, p))
        elif p.status == "cancelled":
            body.append(_cancelled(f, p))
    body += _effects(f, view.sessions)
    body.append(text(f.left, f.height - 6, "session number; markers: ▲ bruising, ■ petechiae, "
                     "◆ soreness", class_="label"))
    return svg("Pain before and after each session", pain_desc(view), f.width, f.height, body,
               id="pain-chart", class_="chart")


def series_desc(series: Series, unit: str) -> str:
    """A small multiple's trend in words."""
    first, last = series.points[0], series.points[-1]
    if len(series.points) == 1:
        return f"{series.key}: {fmt(first[1])}{unit} at session {first[0]}; one measurement."
    change = last[1] - first[1]
    words = (f"{series.key} went from {fmt(first[1])}{unit} at session {first[0]} to "
             f"{fmt(last[1])}{unit} at session {last[0]} ({'+' if change >= 0 else ''}"
             f"{fmt(change)}).")
    t = series.threshold
    if t is not None and t.points is not None:
        better = "improved" if (series.improvement or 0) > 0 else "did not improve"
        reached = "reached" if series.important else "not reached"
        words += (f" It {better}; clinically important change of {fmt(t.points)} {reached} "
                  f"({t.source}).")
    return words


def _line(f: Frame, series: Series, point_title: Callable[[int, float], str]) -> list[str]:
    coords = " ".join(f"{fmt(f.x(n))},{fmt(f.y(v))}" for n, v in series.points)
    out = [el("polyline", points=coords, class_="trend")]
    for n, v in series.points:
        out.append(el("circle", el("title", point_title(n, v)), cx=f.x(n), cy=f.y(v), r=4.0,
                      class_="pt", data_session=n))
    return out


def series_chart(series: Series, sessions: int, ident: str, unit: str = "") -> str:
    """One small multiple on its own scale: the instrument's range (a measure) or the data's
    range ± 5 (ROM), with the better direction marked."""
    t = series.threshold
    values = [v for _, v in series.points]
    lo, hi = t.scale if t is not None else (min(values) - 5, max(values) + 5)
    f = Frame(320, 170, 40, 10, 30, 26, sessions, float(lo), float(hi))
    ticks = [lo + (hi - lo) * i / 4 for i in range(5)]
    label = series.key + (f" ({'↑' if t.higher_is_better else '↓'} better)" if t else
                          f" ({unit})" if unit else "")
    body = _axes(f, ticks, label)
    body += _line(f, series, lambda n, v: f"session {n}: {fmt(v)}{unit}")
    return svg(series.key, series_desc(series, unit), f.width, f.height, body, id=ident,
               class_="chart small")


__all__ = ["EFFECT_SHAPES", "pain_chart", "pain_desc", "series_chart", "series_desc", "x_max"]
