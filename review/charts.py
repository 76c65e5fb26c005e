"""Server-rendered SVG plots: the geometry of line and bar charts, drawn by
``templates/review/_chart.html`` (no JavaScript, nothing from a CDN; labels are escaped by the
template). Inputs are already aggregated (a point per day, a bar per route), so a chart costs the
same for ten verdicts as for a million. Empty input draws an empty frame with a message; a single
point is drawn as a dot on a padded axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils.html import format_html
from django.utils.safestring import SafeString

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

WIDTH, HEIGHT = 600, 250
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 14, 34


@dataclass
class Tick:
    pos: float
    label: str
    anchor: str = "middle"  # x ticks near an edge are anchored there, so no label is cut off

    @property
    def px(self) -> str:
        return _px(self.pos)


@dataclass
class Mark:
    """A point or a bar, with the value a reader hovers over (SVG <title>)."""

    x: float
    y: float
    title: str
    w: float = 0.0
    h: float = 0.0
    low: float | None = None  # interval whisker, in pixels
    high: float | None = None

    @property
    def centre(self) -> float:
        return self.x + self.w / 2

    # The SVG elements are formatted here rather than with template filters: a dashboard draws
    # about a thousand marks (a point per reviewer and day), and ``floatformat`` on each
    # coordinate was most of the page's rendering time. The title is escaped by format_html.

    @property
    def circle(self) -> SafeString:
        return format_html(
            '<circle class="mark" cx="{}" cy="{}" r="3" fill="currentColor"><title>{}</title>'
            "</circle>",
            _px(self.x),
            _px(self.y),
            self.title,
        )

    @property
    def bar(self) -> SafeString:
        svg = format_html(
            '<rect class="mark" x="{}" y="{}" width="{}" height="{}" fill="currentColor"'
            ' opacity=".85"><title>{}</title></rect>',
            _px(self.x),
            _px(self.y),
            _px(self.w),
            _px(self.h),
            self.title,
        )
        if self.low is not None and self.high is not None:
            centre = _px(self.centre)
            svg += format_html(
                '<line class="whisker" x1="{}" x2="{}" y1="{}" y2="{}"/>',
                centre,
                centre,
                _px(self.low),
                _px(self.high),
            )
        return svg


def _px(value: float) -> str:
    """A pixel coordinate with one decimal, as SVG reads it (never localised)."""
    return f"{value:.1f}"


@dataclass
class DrawnSeries:
    name: str
    color: str
    path: str
    marks: list[Mark]


@dataclass
class Chart:
    title: str
    kind: str  # "line" | "bar"
    width: int = WIDTH
    height: int = HEIGHT
    series: list[DrawnSeries] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    reference: tuple[float, str] | None = None  # a horizontal line (y pixel, label), e.g. budget
    empty: bool = False
    y_label: str = ""

    @property
    def plot_left(self) -> int:
        return LEFT

    @property
    def plot_right(self) -> int:
        return self.width - RIGHT

    @property
    def plot_top(self) -> int:
        return TOP

    @property
    def plot_bottom(self) -> int:
        return self.height - BOTTOM

    @property
    def centre_x(self) -> int:
        return (LEFT + self.width - RIGHT) // 2

    @property
    def centre_y(self) -> int:
        return (TOP + self.height - BOTTOM) // 2


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (at least two distinct ticks)."""
    if not math.isfinite(low) or not math.isfinite(high):
        low, high = 0.0, 1.0
    if high <= low:
        pad = abs(high) * 0.5 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _x_tick(chart: Chart, pos: float, label: str) -> Tick:
    if pos > chart.plot_right - 40:
        return Tick(pos, label, "end")
    if pos < chart.plot_left + 40:
        return Tick(pos, label, "start")
    return Tick(pos, label)


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    span = hi - lo or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


XValue = float | date | datetime


def _as_number(x: XValue) -> float:
    if isinstance(x, datetime):
        return x.timestamp()
    if isinstance(x, date):
        return datetime(x.year, x.month, x.day).timestamp()
    return float(x)


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[XValue, float]]]],
    *,
    y_format: Callable[[float], str],
    x_format: Callable[[XValue], str],
    y_min: float | None = 0.0,
    y_max: float | None = None,
    x_ticks: Sequence[tuple[XValue, str]] | None = None,
    reference: tuple[float, str] | None = None,
    y_label: str = "",
) -> Chart:
    """Lines (one per named series) through (x, y) points; x may be dates."""
    chart = Chart(title=title, kind="line", y_label=y_label)
    xs = [_as_number(x) for _, points in series for x, _ in points]
    ys = [y for _, points in series for _, y in points]
    if reference is not None:
        ys.append(reference[0])
    if not xs:
        chart.empty = True
        return chart
    y_ticks = nice_ticks(min(ys) if y_min is None else y_min, max(ys) if y_max is None else y_max)
    lo_y, hi_y = y_ticks[0], y_ticks[-1]
    lo_x, hi_x = min(xs), max(xs)
    if lo_x == hi_x:  # a single point sits in the middle
        lo_x, hi_x = lo_x - 1, hi_x + 1
    sx = _scale(lo_x, hi_x, chart.plot_left + 6, chart.plot_right - 6)
    sy = _scale(lo_y, hi_y, chart.plot_bottom, chart.plot_top)
    chart.y_ticks = [Tick(sy(v), y_format(v)) for v in y_ticks]
    if x_ticks is None:
        distinct = sorted({_as_number(x): x for _, points in series for x, _ in points}.items())
        step = max(1, math.ceil(len(distinct) / 6))
        x_ticks = [(x, x_format(x)) for _, x in distinct[::step]]
    chart.x_ticks = [_x_tick(chart, sx(_as_number(x)), label) for x, label in x_ticks]
    for index, (name, points) in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        marks = [
            Mark(sx(_as_number(x)), sy(y), f"{name}: {x_format(x)}: {y_format(y)}")
            for x, y in points
        ]
        path = " ".join(f"{'M' if i == 0 else 'L'}{m.x:.1f},{m.y:.1f}" for i, m in enumerate(marks))
        chart.series.append(DrawnSeries(name, color, path, marks))
    if reference is not None:
        chart.reference = (sy(reference[0]), reference[1])
    return chart


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float | None, tuple[float, float] | None]],
    *,
    y_format: Callable[[float], str],
    y_label: str = "",
) -> Chart:
    """One bar per label, each with an optional (low, high) interval whisker."""
    chart = Chart(title=title, kind="bar", y_label=y_label)
    shown = [(label, value, ci) for label, value, ci in bars if value is not None]
    if not shown:
        chart.empty = True
        return chart
    top = max(max(v, ci[1] if ci else v) for _, v, ci in shown)
    y_ticks = nice_ticks(0.0, top if top > 0 else 1.0)
    sy = _scale(y_ticks[0], y_ticks[-1], chart.plot_bottom, chart.plot_top)
    chart.y_ticks = [Tick(sy(v), y_format(v)) for v in y_ticks]
    slot = (chart.plot_right - chart.plot_left) / len(shown)
    width = min(80.0, slot * 0.6)
    for index, (label, value, ci) in enumerate(shown):
        x = chart.plot_left + slot * index + (slot - width) / 2
        y = sy(value)
        detail = f" (95% CI {y_format(ci[0])} – {y_format(ci[1])})" if ci else ""
        mark = Mark(x, y, f"{label}: {y_format(value)}{detail}", w=width, h=chart.plot_bottom - y)
        if ci:
            mark.low, mark.high = sy(ci[0]), sy(ci[1])
        color = PALETTE[index % len(PALETTE)]
        chart.series.append(DrawnSeries(label, color, "", [mark]))
        chart.x_ticks.append(Tick(x + width / 2, label))
    return chart
