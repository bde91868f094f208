"""Small server-side SVG plots for the console: bar charts (stacked when there are several
series) and line charts, with axes, tick labels, axis titles, a legend, a ``<title>`` and a
text alternative (``<desc>``, which the page also shows next to the plot as a table).

The SVG uses presentation attributes only (no ``style`` attributes or elements, no scripts),
so a page can inline it under the console's strict Content-Security-Policy, and it reads the
same when opened on its own. Every bar or point carries its own ``<title>`` (a tooltip) and
``data-label``/``data-value`` attributes."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape as _escape_html

# What XML 1.0 cannot hold (most control characters, U+FFFE, U+FFFF): data such as a metadata
# tag may contain them, and one would make the whole drawing unreadable.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape(text: str) -> str:
    """Text for SVG: characters XML cannot hold replaced by U+FFFD, then escaped."""
    return _escape_html(_NOT_XML.sub("\ufffd", text))


PALETTE = (
    "#4f46e5",
    "#0f7b45",
    "#b45309",
    "#be185d",
    "#0e7490",
    "#7c3aed",
    "#4d7c0f",
    "#9f1239",
    "#475569",
)
INK = "#14161f"
MUTED = "#5b6275"
GRID = "#e2e5ee"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
FONT_SIZE = 12
# Roughly how wide one character of FONT_SIZE text is, for laying out labels.
CHAR_WIDTH = 7.0
MIN_WIDTH, MAX_WIDTH = 300, 1600
MIN_HEIGHT, MAX_HEIGHT = 160, 800


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label of the chart."""

    name: str
    values: Sequence[float]


@dataclass(frozen=True)
class Chart:
    """What to draw: ``labels`` along the x axis, ``series`` of values over them (stacked
    in a bar chart), ``title`` and ``summary`` (the text alternative)."""

    title: str
    summary: str
    labels: Sequence[str]
    series: Sequence[Series]
    unit: str = "credits"
    x_title: str = ""
    y_title: str = ""
    empty_message: str = "Nothing to show in this range."


def number(value: float) -> str:
    """1234 → '1,234'; 2.5 → '2.5'."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def nice_ticks(highest: float, count: int = 4) -> list[float]:
    """0, then about ``count`` round steps (1, 2 or 5 times a power of ten) up to at least
    ``highest``."""
    if highest <= 0:
        return [0.0, 1.0]
    rough = highest / count
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    if highest >= 1 and step < 1:
        step = 1.0
    top = math.ceil(highest / step - 1e-9) * step
    ticks, tick = [], 0.0
    while tick <= top + step / 2:
        ticks.append(round(tick, 10))
        tick += step
    return ticks


def _shown_labels(count: int, room: float, widest: float) -> set[int]:
    """Which x labels fit without overlapping: every k-th, the first and the last."""
    if count == 0:
        return set()
    fit = max(1, int(room // (widest + 12)))
    every = max(1, math.ceil(count / fit))
    shown = set(range(0, count, every))
    last = count - 1
    if last not in shown:
        # The last label (today, on a daily chart) always shows, instead of its neighbour.
        shown.discard(max(shown))
        shown.add(last)
    return shown


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Frame:
    """The plot area and the chart's surroundings, shared by both kinds of chart."""

    def __init__(self, chart: Chart, ident: str, width: int, height: int, stacked: bool) -> None:
        self.chart, self.ident = chart, ident
        self.width = max(MIN_WIDTH, min(MAX_WIDTH, width))
        self.height = max(MIN_HEIGHT, min(MAX_HEIGHT, height))
        count = len(chart.labels)
        if stacked:
            highest = max(
                (sum(s.values[i] for s in chart.series) for i in range(count)), default=0.0
            )
        else:
            highest = max((max(s.values, default=0.0) for s in chart.series), default=0.0)
        self.highest = highest
        self.ticks = nice_ticks(highest)
        widest_tick = max(len(number(t)) for t in self.ticks) * CHAR_WIDTH
        self.legend = self._legend_rows() if len(chart.series) > 1 else []
        self.left = 14 + widest_tick + (22 if chart.y_title else 0)
        self.right = 16
        self.top = 14 + 22 * len(self.legend)
        self.bottom = 30 + (20 if chart.x_title else 0)
        self.plot_width = self.width - self.left - self.right
        self.plot_height = max(40, self.height - self.top - self.bottom)
        self.band = self.plot_width / max(1, count)

    def _legend_rows(self) -> list[list[tuple[int, str, float]]]:
        rows: list[list[tuple[int, str, float]]] = [[]]
        x = 0.0
        room = self.width - 28
        for index, series in enumerate(self.chart.series):
            name = _clip(series.name, 28)
            item = 18 + len(name) * CHAR_WIDTH + 16
            if x and x + item > room:
                rows.append([])
                x = 0.0
            rows[-1].append((index, name, x))
            x += item
        return rows

    def y(self, value: float) -> float:
        top = self.ticks[-1] or 1.0
        return self.top + self.plot_height * (1 - value / top)

    def x_center(self, index: int) -> float:
        return self.left + self.band * (index + 0.5)

    def open(self) -> list[str]:
        chart, ident = self.chart, self.ident
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" '
            f'aria-labelledby="{ident}-title" aria-describedby="{ident}-desc" '
            f'font-family="{escape(FONT)}" font-size="{FONT_SIZE}" '
            f'data-total="{number(self.total())}">',
            f'<title id="{ident}-title">{escape(chart.title)}</title>',
            f'<desc id="{ident}-desc">{escape(chart.summary)}</desc>',
        ]
        parts += self._legend()
        parts += self._y_axis()
        return parts

    def total(self) -> float:
        return sum(sum(s.values) for s in self.chart.series)

    def _legend(self) -> list[str]:
        parts: list[str] = []
        for row_number, row in enumerate(self.legend):
            y = 10 + 22 * row_number
            for index, name, x in row:
                color = PALETTE[index % len(PALETTE)]
                parts.append(
                    f'<g class="legend-item"><rect x="{14 + x:.1f}" y="{y}" width="12" '
                    f'height="12" rx="2" fill="{color}"/>'
                    f'<text x="{14 + x + 18:.1f}" y="{y + 10}" fill="{INK}">{escape(name)}</text>'
                    "</g>"
                )
        return parts

    def _y_axis(self) -> list[str]:
        parts = ['<g class="axis y-axis">']
        for tick in self.ticks:
            y = self.y(tick)
            parts.append(
                f'<line x1="{self.left:.1f}" x2="{self.width - self.right:.1f}" '
                f'y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>'
                f'<text x="{self.left - 8:.1f}" y="{y + 4:.1f}" text-anchor="end" '
                f'fill="{MUTED}">{number(tick)}</text>'
            )
        if self.chart.y_title:
            middle = self.top + self.plot_height / 2
            parts.append(
                f'<text x="14" y="{middle:.1f}" text-anchor="middle" fill="{MUTED}" '
                f'transform="rotate(-90 14 {middle:.1f})">{escape(self.chart.y_title)}</text>'
            )
        parts.append("</g>")
        return parts

    def x_axis(self) -> list[str]:
        chart = self.chart
        base = self.top + self.plot_height
        parts = [
            '<g class="axis x-axis">',
            f'<line x1="{self.left:.1f}" x2="{self.width - self.right:.1f}" y1="{base:.1f}" '
            f'y2="{base:.1f}" stroke="{MUTED}" stroke-width="1"/>',
        ]
        clipped = [_clip(label, 16) for label in chart.labels]
        widest = max((len(label) for label in clipped), default=0) * CHAR_WIDTH
        for index in sorted(_shown_labels(len(clipped), self.plot_width, widest)):
            x = self.x_center(index)
            anchor = "middle"
            if x - widest / 2 < 0:
                anchor = "start"
            elif x + widest / 2 > self.width:
                anchor = "end"
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base:.1f}" y2="{base + 4:.1f}" '
                f'stroke="{MUTED}"/><text class="x-label" x="{x:.1f}" y="{base + 18:.1f}" '
                f'text-anchor="{anchor}" fill="{MUTED}">{escape(clipped[index])}</text>'
            )
        if chart.x_title:
            parts.append(
                f'<text x="{self.left + self.plot_width / 2:.1f}" y="{self.height - 6}" '
                f'text-anchor="middle" fill="{MUTED}">{escape(chart.x_title)}</text>'
            )
        parts.append("</g>")
        if self.highest <= 0:
            parts.append(
                f'<text class="empty" x="{self.left + self.plot_width / 2:.1f}" '
                f'y="{self.top + self.plot_height / 2:.1f}" text-anchor="middle" '
                f'fill="{MUTED}">{escape(chart.empty_message)}</text>'
            )
        return parts

    def point_title(self, index: int) -> str:
        """``2026-01-05: 40 credits (preview 30, preview-image 10)``."""
        chart = self.chart
        value = sum(s.values[index] for s in chart.series)
        text = f"{chart.labels[index]}: {number(value)} {chart.unit}"
        if len(chart.series) > 1:
            parts = [f"{s.name} {number(s.values[index])}" for s in chart.series if s.values[index]]
            if parts:
                text += f" ({', '.join(parts)})"
        return text


def _check(chart: Chart) -> None:
    for series in chart.series:
        if len(series.values) != len(chart.labels):
            raise ValueError(f"series {series.name!r} has {len(series.values)} values")


def bar_chart(chart: Chart, *, ident: str = "chart", width: int = 960, height: int = 300) -> str:
    """Bars over the labels; several series stack, in the palette's order."""
    _check(chart)
    frame = _Frame(chart, ident, width, height, stacked=True)
    parts = frame.open()
    bar_width = max(1.0, frame.band * 0.72)
    parts.append('<g class="bars">')
    for index, label in enumerate(chart.labels):
        value = sum(s.values[index] for s in chart.series)
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{number(value)}">'
            f"<title>{escape(frame.point_title(index))}</title>"
        )
        x = frame.x_center(index) - bar_width / 2
        level = 0.0
        for number_, series in enumerate(chart.series):
            amount = series.values[index]
            if amount <= 0:
                continue
            y_top, y_bottom = frame.y(level + amount), frame.y(level)
            level += amount
            parts.append(
                f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{bar_width:.1f}" '
                f'height="{max(1.0, y_bottom - y_top):.1f}" '
                f'fill="{PALETTE[number_ % len(PALETTE)]}"/>'
            )
        parts.append("</g>")
    parts.append("</g>")
    parts += frame.x_axis()
    parts.append("</svg>")
    return "".join(parts)


def line_chart(chart: Chart, *, ident: str = "chart", width: int = 960, height: int = 300) -> str:
    """One line per series, with a marker (and its tooltip) at each label."""
    _check(chart)
    frame = _Frame(chart, ident, width, height, stacked=False)
    parts = frame.open()
    parts.append('<g class="lines">')
    for number_, series in enumerate(chart.series):
        color = PALETTE[number_ % len(PALETTE)]
        points = [
            (frame.x_center(index), frame.y(value)) for index, value in enumerate(series.values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<g class="line" data-series="{escape(series.name)}">'
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2" '
            'stroke-linejoin="round" stroke-linecap="round"/>'
        )
        radius = 3 if frame.band >= 8 else 1.5
        for index, (x, y) in enumerate(points):
            label = chart.labels[index]
            value = series.values[index]
            name = f"{series.name}, " if len(chart.series) > 1 else ""
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{color}" '
                f'data-label="{escape(label)}" data-value="{number(value)}">'
                f"<title>{escape(f'{name}{label}: {number(value)} {chart.unit}')}</title>"
                "</circle>"
            )
        parts.append("</g>")
    parts.append("</g>")
    parts += frame.x_axis()
    parts.append("</svg>")
    return "".join(parts)
