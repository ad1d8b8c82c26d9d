"""The bar charts of ``report.html``, written as inline SVG text.

Three shapes: horizontal bars (change signatures), stacked horizontal bars
(partitions per class) and stacked columns over time (the timeline). Each is
a few dozen SVG elements built from the aggregates DuckDB already computed: no
plotting library is imported and nothing is computed per item, so a chart
costs well under a millisecond (matplotlib's import and ``savefig`` were
about 0.8 s of a 1M-item diff: ``bench/bench_report_html.py``).

Every label is XML-escaped text (``markupsafe.escape``): a hostile attribute
name or key is shown as the characters it is, never markup. The page stays
self-contained: no script, no font, no external reference.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import escape

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif"
_CHAR_PX = 6.6  # the average advance of an 11 px sans-serif character
_BAR_PX = 22
_WIDTH = 720
_AXIS = "#555"


@dataclass(frozen=True)
class Series:
    """One class's values of a stacked chart, in the chart's order of categories."""

    name: str
    color: str
    values: tuple[int, ...]


def nice_ticks(top: int, most: int = 6) -> list[int]:
    """Whole-number ticks 0, s, 2s, ... covering ``top`` (s is 1, 2 or 5 times a power of 10).

    >>> nice_ticks(37)
    [0, 10, 20, 30, 40]
    """
    top = max(int(top), 1)
    raw = top / max(1, most - 1)
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), 10 * power)
    step = max(1, int(step))
    return list(range(0, (top + step - 1) // step * step + 1, step))


# Control characters drawn as escapes (\t, \x00, \x1b): visible, never raw in the page.
_CONTROL = {c: ("\\t" if c == 9 else f"\\x{c:02x}") for c in (*range(0x20), *range(0x7F, 0xA0))}


def visible(text: str) -> str:
    r"""``text`` with control characters as escapes: ``"a\x00b"`` becomes ``a\x00b``."""
    return text.translate(_CONTROL)


def _clip(label: str, most: int) -> str:
    return label if len(label) <= most else label[: most - 3] + "..."


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11,
          extra: str = "") -> str:  # fmt: skip
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
        f"{extra}>{escape(visible(text))}</text>"
    )


def _svg(width: float, height: float, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(visible(label))}" '
        f'style="{FONT}" fill="#222">' + "".join(body) + "</svg>"
    )


def _x_axis(left: float, plot: float, y: float, ticks: list[int], label: str) -> list[str]:
    """A value axis under horizontal bars: ticks with whole item counts, then its label."""
    out = [f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot:.1f}" y2="{y:.1f}" '
           f'stroke="{_AXIS}"/>']  # fmt: skip
    for tick in ticks:
        x = left + plot * tick / ticks[-1]
        out.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}" '
                   f'stroke="{_AXIS}"/>')  # fmt: skip
        out.append(_text(x, y + 16, f"{tick:,}", anchor="middle", size=10))
    out.append(_text(left + plot / 2, y + 32, label, anchor="middle"))
    return out


def stacked_bars(labels: Sequence[str], series: Sequence[Series], *, title: str,
                 clip: int = 60, totals: bool = False) -> str:  # fmt: skip
    """Horizontal bars, one per label, top to bottom, stacked by series.

    Parameters
    ----------
    labels
        The categories (clipped to ``clip`` characters on the chart).
    series
        Values per category; series with no value are left out of the legend.
    title
        The chart's accessible name (``aria-label``).
    totals
        Write each bar's total at its end.
    """
    shown = [s for s in series if any(s.values)]
    names = [_clip(label, clip) for label in labels]
    left = 12 + _CHAR_PX * max((len(n) for n in names), default=1)
    legend = 22 if len(shown) > 1 else 0
    plot = max(160.0, _WIDTH - left - 60)
    sums = [sum(s.values[i] for s in shown) for i in range(len(labels))]
    ticks = nice_ticks(max(sums, default=1))
    height = legend + _BAR_PX * len(labels) + 48
    body: list[str] = []
    for row, name in enumerate(names):
        y = legend + row * _BAR_PX
        body.append(_text(left - 6, y + _BAR_PX / 2 + 4, name, anchor="end"))
        x = left
        for s in shown:
            width = plot * s.values[row] / ticks[-1]
            if width > 0:
                body.append(f'<rect x="{x:.1f}" y="{y + 3:.1f}" width="{width:.1f}" '
                            f'height="{_BAR_PX - 6}" fill="{s.color}"/>')  # fmt: skip
            x += width
        if totals:
            body.append(_text(x + 4, y + _BAR_PX / 2 + 4, f"{sums[row]:,}", size=10))
    body += _x_axis(left, plot, legend + _BAR_PX * len(labels), ticks, "items")
    body += _legend(left, shown) if legend else []
    return _svg(_WIDTH, height, title, body)


def _legend(x: float, series: Sequence[Series]) -> list[str]:
    out = []
    for s in series:
        out.append(f'<rect x="{x:.1f}" y="4" width="10" height="10" fill="{s.color}"/>')
        out.append(_text(x + 14, 13, s.name, size=10))
        x += 24 + _CHAR_PX * len(s.name)
    return out


def _time_label(moment: dt.datetime, span_s: float) -> str:
    if span_s >= 3 * 86400:
        return moment.strftime("%Y-%m-%d")
    if span_s >= 600:
        return moment.strftime("%m-%d %H:%M")
    return moment.strftime("%H:%M:%S")


def time_columns(low_s: float, width_s: float, series: Sequence[Series], *, title: str,
                 axis_label: str) -> str:  # fmt: skip
    """Stacked columns over time: bucket ``i`` covers ``low_s + i * width_s`` seconds (UTC).

    Parameters
    ----------
    low_s, width_s
        The first bucket's start and every bucket's width, in epoch seconds.
    series
        Items per bucket of each class (all of the same length).
    title, axis_label
        The accessible name and the time axis's label.
    """
    shown = [s for s in series if any(s.values)]
    buckets = len(series[0].values) if series else 0
    left, top, plot_w, plot_h = 56.0, 22.0, _WIDTH - 100.0, 170.0
    sums = [sum(s.values[i] for s in shown) for i in range(buckets)]
    ticks = nice_ticks(max(sums, default=1), most=5)
    base = top + plot_h
    body = [f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="{_AXIS}"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="{_AXIS}"/>']  # fmt: skip
    for tick in ticks:
        y = base - plot_h * tick / ticks[-1]
        body.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" '
                    f'stroke="{_AXIS}"/>')  # fmt: skip
        body.append(_text(left - 7, y + 4, f"{tick:,}", anchor="end", size=10))
    column = plot_w / max(1, buckets)
    for i in range(buckets):
        y = base
        for s in shown:
            h = plot_h * s.values[i] / ticks[-1]
            if h > 0:
                y -= h
                body.append(f'<rect x="{left + i * column:.1f}" y="{y:.1f}" '
                            f'width="{max(0.5, column - 1):.1f}" height="{h:.1f}" '
                            f'fill="{s.color}"/>')  # fmt: skip
    span = width_s * max(1, buckets)
    for i in range(0, buckets + 1, max(1, buckets // 5)):
        x = left + i * column
        moment = dt.datetime.fromtimestamp(low_s + i * width_s, dt.timezone.utc)
        body.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" '
                    f'stroke="{_AXIS}"/>')  # fmt: skip
        body.append(_text(x, base + 16, _time_label(moment, span), anchor="middle", size=10))
    body.append(_text(left + plot_w / 2, base + 34, axis_label, anchor="middle"))
    body.append(_text(14, top + plot_h / 2, "items", anchor="middle",
                      extra=f' transform="rotate(-90 14 {top + plot_h / 2:.1f})"'))  # fmt: skip
    body += _legend(left, shown)
    return _svg(_WIDTH, base + 44, title, body)
