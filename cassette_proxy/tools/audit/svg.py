"""Charts as inline SVG, written by hand: columns over time, horizontal bars, a histogram.

Why not a plotting library: the report must be one file that opens offline, and its charts are
bars over aggregates the audit has already computed. matplotlib would add about 40 MB of
dependencies (numpy, pillow, fonttools) and half a second of import to draw four kinds of bars;
plotly and Bokeh embed megabytes of JavaScript in every report; Vega-Lite loads its runtime from
a CDN unless it is embedded too; pygal's tooltips also load scripts from a CDN. Hand-written SVG
needs no script at all, stays a few tens of kilobytes whatever the log's size, prints, and
every label is escaped in one place (:func:`esc`): log text is untrusted and must not become
markup. Each mark has a ``<title>``, which browsers show as a tooltip.
"""

from __future__ import annotations

import html
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cassette_proxy.tools.shown import TEXT, shown

FONT: Final = 12
BLUE: Final = "#4c78a8"
RED: Final = "#e45756"
ORANGE: Final = "#f58518"
GREY: Final = "#9d9d9d"
TEAL: Final = "#54a24b"
INK: Final = "#333"
RULE: Final = "#ddd"


def esc(text: object) -> str:
    """Text or an attribute value, safe to put in markup, with every control and
    bidirectional character shown as an escape (:func:`~cassette_proxy.tools.shown.shown`,
    not cut here: long log values are cut where they are placed)."""
    return html.escape(shown(text, sys.maxsize), quote=True)


def number(value: float) -> str:
    """``1,234`` or ``12.5`` or ``0.031``: few digits, no trailing zeros."""
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round axis values from 0 to at least ``top`` (steps of 1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(top / step) + 1)]


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{esc(label)}" '
        f'font-size="{FONT}">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = INK) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">{esc(text)}</text>'


def _line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    *,
    stroke: str,
    dashed: bool = False,
    title: str = "",
) -> str:
    dash = ' stroke-dasharray="3 2"' if dashed else ""
    tip = f"<title>{esc(title)}</title>" if title else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{dash}>'
        f"{tip}</line>"
    )


def _rect(x: float, y: float, w: float, h: float, *, fill: str, title: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{fill}"><title>{esc(title)}</title></rect>'
    )


@dataclass(frozen=True, slots=True)
class Column:
    label: str  # under the axis, for some columns
    parts: tuple[tuple[float, str], ...]  # stacked from the bottom: (value, colour)
    title: str


def columns(items: Sequence[Column], *, label: str, unit: str, width: int = 960) -> str:
    """Stacked columns side by side (requests over time), with a value axis on the left."""
    height, left, bottom, top_pad = 240, 56, 40, 12
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    ticks = nice_ticks(max((sum(v for v, _ in c.parts) for c in items), default=0))
    scale = plot_h / ticks[-1]
    body = []
    for tick in ticks:
        y = top_pad + plot_h - tick * scale
        body.append(_line(left, y, width - 8, y, stroke=RULE))
        body.append(_text(left - 6, y + 4, number(tick), anchor="end"))
    middle = top_pad + plot_h / 2
    body.append(
        f'<text x="12" y="{middle:.1f}" text-anchor="middle" fill="{INK}" '
        f'transform="rotate(-90 12 {middle:.1f})">{esc(unit)}</text>'
    )
    slot = plot_w / max(len(items), 1)
    gap = min(2.0, slot * 0.2)
    every = max(1, math.ceil(len(items) / 6))  # about six labels along the axis
    for i, column in enumerate(items):
        x = left + i * slot
        y = top_pad + plot_h
        for value, colour in column.parts:
            h = value * scale
            y -= h
            if value:
                body.append(_rect(x + gap / 2, y, slot - gap, h, fill=colour, title=column.title))
        if i % every == 0:
            body.append(_text(x + slot / 2, height - bottom + 16, column.label, anchor="middle"))
    body.append(_line(left, top_pad + plot_h, width - 8, top_pad + plot_h, stroke=INK))
    return _svg(width, height, body, label)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    colour: str
    title: str


def bars(items: Sequence[Bar], *, label: str, width: int = 960, label_chars: int = 56) -> str:
    """Horizontal bars, one per row, labelled on the left and valued on the right."""
    row, label_w, value_w = 22, 7 * label_chars + 12, 70
    plot_w = width - label_w - value_w
    top = max((b.value for b in items), default=0) or 1
    body = []
    for i, bar in enumerate(items):
        y = i * row
        label = bar.label if len(bar.label) <= label_chars else bar.label[: label_chars - 1] + "…"
        body.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="{INK}">'
            f"<title>{esc(shown(bar.label, TEXT))}</title>{esc(label)}</text>"
        )
        length = plot_w * bar.value / top
        body.append(_rect(label_w, y + 3, length, row - 6, fill=bar.colour, title=bar.title))
        body.append(_text(label_w + length + 6, y + 15, number(bar.value)))
    return _svg(width, max(len(items), 1) * row + 4, body, label)


@dataclass(frozen=True, slots=True)
class Marker:
    label: str  # "p99"
    value: float


def histogram(
    buckets: Sequence[tuple[float, float, int]],
    markers: Sequence[Marker],
    *,
    label: str,
    unit: str = "ms",
    width: int = 460,
    bins: int = 40,
) -> str:
    """A distribution on a logarithmic axis, from ``(low, high, count)`` buckets, with markers
    (percentiles) as vertical lines."""
    height, left, bottom, top_pad = 150, 44, 30, 16
    plot_w, plot_h = width - left - 34, height - bottom - top_pad
    positive = [(lo, hi, n) for lo, hi, n in buckets if hi > 0]
    zeros = sum(n for lo, hi, n in buckets if hi <= 0)
    if not positive:
        return _svg(
            width,
            height,
            [_text(width / 2, height / 2, f"all {zeros:,} at 0 {unit}", anchor="middle")],
            label,
        )
    low = math.log10(positive[0][0])
    high = math.log10(positive[-1][1])
    if high - low < 1:  # at least one decade across, so the axis has labels
        middle = (high + low) / 2
        low, high = middle - 0.5, middle + 0.5
    step = (high - low) / bins
    counts = [0] * bins
    for lo, hi, n in positive:
        centre = (math.log10(lo) + math.log10(hi)) / 2
        counts[min(bins - 1, max(0, int((centre - low) / step)))] += n
    counts[0] += zeros
    ticks = nice_ticks(max(counts), 3)
    scale = plot_h / ticks[-1]

    def x_of(log_value: float) -> float:
        return left + (log_value - low) / (high - low) * plot_w

    body = []
    for tick in ticks:
        y = top_pad + plot_h - tick * scale
        body.append(_line(left, y, left + plot_w, y, stroke=RULE))
        body.append(_text(left - 5, y + 4, number(tick), anchor="end"))
    for i, n in enumerate(counts):
        if n:
            lo, hi = 10 ** (low + i * step), 10 ** (low + (i + 1) * step)
            h = n * scale
            body.append(
                _rect(
                    x_of(low + i * step),
                    top_pad + plot_h - h,
                    plot_w / bins - 1,
                    h,
                    fill=BLUE,
                    title=f"{number(lo)} to {number(hi)} {unit}: {n:,}",
                )
            )
    for decade in range(math.ceil(low), math.floor(high) + 1):
        x = x_of(decade)
        body.append(_line(x, top_pad + plot_h, x, top_pad + plot_h + 4, stroke=INK))
        body.append(
            _text(x, height - bottom + 16, f"{number(10.0**decade)} {unit}", anchor="middle")
        )
    for i, marker in enumerate(markers):
        if marker.value <= 0:
            continue
        x = x_of(min(max(math.log10(marker.value), low), high))
        body.append(
            _line(
                x,
                top_pad - 2,
                x,
                top_pad + plot_h,
                stroke=RED,
                dashed=True,
                title=f"{marker.label} {number(marker.value)} {unit}",
            )
        )
        near_end = x > left + plot_w - 30
        body.append(
            _text(
                x - 3 if near_end else x + 3,
                top_pad + 10 + 13 * i,
                marker.label,
                anchor="end" if near_end else "start",
                fill=RED,
            )
        )
    body.append(_line(left, top_pad + plot_h, left + plot_w, top_pad + plot_h, stroke=INK))
    return _svg(width, height, body, label)


def split(
    parts: Sequence[tuple[str, float, str]], *, label: str, caption: str, width: int = 460
) -> str:
    """One bar cut into parts (the upstream's time and the proxy's own), with a caption under
    it that names every part, however thin."""
    total = sum(value for _, value, _ in parts) or 1
    body = []
    x = 0.0
    for name, value, colour in parts:
        w = width * value / total
        body.append(_rect(x, 0, w, 20, fill=colour, title=f"{name}: {number(value)} ms"))
        x += w
    body.append(_text(0, 36, caption))
    return _svg(width, 42, body, label)
