"""Small server-rendered SVG charts: the no-JavaScript fallback of the uPlot charts.

With JavaScript, static/dashboard-charts.js draws the same figures with the vendored uPlot and
hides these; without it (or if the script fails) these stay.

Each chart is an ``<svg role="img">`` with a title and a description, and the page shows the same
numbers in a table beside it (``<details>``), so nobody has to read a chart to get a figure.
Colours are chosen for contrast on white and are never the only cue (the legend names each one).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

# Status colours (WCAG AA against white for the text ones; bars have a legend with the names).
STATUS_COLOURS: dict[str, str] = {
    "queued": "#6b7280",
    "deposited": "#2563eb",
    "accepted": "#15803d",
    "refused": "#b45309",
    "neglected": "#7c3aed",
    "bounced": "#be185d",
    "failed": "#b91c1c",
}
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 60, 12, 12, 40


@dataclass(frozen=True)
class Series:
    """One coloured series of a chart: its name (shown in the legend) and values per category."""

    name: str
    colour: str
    values: list[float]


def _svg(title: str, description: str, body: str, chart_id: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet">'
        f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(description)}</desc>'
        f"{body}</svg>"
    )


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000):
        if value <= step * 4:
            return float(step * 4)
    return float(value)


def _axis(maximum: float, fmt: Any) -> str:
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = maximum * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{escape(fmt(value))}</text>')
    return "".join(parts)


def _labels(categories: list[str], step_x: float) -> str:
    every = max(1, len(categories) // 10)
    parts = []
    for i, label in enumerate(categories):
        if i % every == 0:
            x = LEFT + step_x * (i + 0.5)
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 22}" class="tick" '
                         f'text-anchor="middle">{escape(label)}</text>')
    return "".join(parts)


def stacked_bars(chart_id: str, title: str, description: str, categories: list[str],
                 series: list[Series]) -> Markup:
    """Bars per category, each split by series (daily volume by status)."""
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    maximum = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step_x = plot_w / max(1, len(categories))
    bar_w = max(2.0, step_x * 0.7)
    body = [_axis(maximum, lambda v: f"{v:.0f}")]
    for i in range(len(categories)):
        y = TOP + plot_h
        for s in series:
            h = plot_h * s.values[i] / maximum
            if h <= 0:
                continue
            y -= h
            x = LEFT + step_x * i + (step_x - bar_w) / 2
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{s.colour}">'
                        f"<title>{escape(categories[i])} · {escape(s.name)} : {s.values[i]:.0f}</title></rect>")
    body.append(_labels(categories, step_x))
    return _svg(title, description, "".join(body), chart_id)


def bars(chart_id: str, title: str, description: str, categories: list[str], values: list[float],
         colour: str = "#2563eb") -> Markup:
    """One bar per category (the acceptance-delay distribution)."""
    return stacked_bars(chart_id, title, description, categories, [Series(title, colour, values)])


def rate_line(chart_id: str, title: str, description: str, categories: list[str], values: list[float | None],
              threshold: float) -> Markup:
    """A rate per category as a line, against a dashed threshold line (failure rate vs 1 %)."""
    known = [v for v in values if v is not None]
    maximum = max(_nice_max(max(known, default=0) * 100) / 100, threshold * 2)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step_x = plot_w / max(1, len(categories))
    body = [_axis(maximum, lambda v: f"{v * 100:.1f} %")]
    y_threshold = TOP + plot_h - plot_h * threshold / maximum
    body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y_threshold:.1f}" y2="{y_threshold:.1f}" '
                f'class="threshold"><title>{threshold * 100:.1f} %</title></line>')
    points = []
    for i, value in enumerate(values):
        if value is None:
            continue
        x = LEFT + step_x * (i + 0.5)
        y = TOP + plot_h - plot_h * min(value, maximum) / maximum
        points.append(f"{x:.1f},{y:.1f}")
        over = " over" if value > threshold else ""
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" class="point{over}">'
                    f"<title>{escape(categories[i])} : {value * 100:.2f} %</title></circle>")
    if points:
        body.insert(2, f'<polyline points="{" ".join(points)}" class="rate"/>')
    body.append(_labels(categories, step_x))
    return _svg(title, description, "".join(body), chart_id)
