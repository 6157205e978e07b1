"""Stacked bar charts as inline SVG, drawn on the server: no JavaScript, nothing fetched, testable as HTML.

Heights are floats (drawing only); every figure a person reads (tooltips, axis maximum) is the exact
decimal string from money.format_money.
"""

from __future__ import annotations

from typing import List

from markupsafe import Markup, escape

from bearlumen.server.dashboard.data import Series
from bearlumen.server.money import format_money

__all__ = ["COLORS", "stacked_bars"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999")
_W, _H, _LEFT, _BOTTOM, _TOP = 960, 260, 8, 22, 8


def stacked_bars(series: Series) -> Markup:
    count = max(1, len(series.buckets))
    totals = [sum(s.get(b, 0) for _, s in series.stacks) for b in series.buckets]
    peak = max(totals, default=0)
    width = (_W - _LEFT) / count
    plot = _H - _BOTTOM - _TOP
    parts: List[str] = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" preserveAspectRatio="none" '
        f'aria-label="Cost per {series.bucket}, stacked">'
    ]
    for i, bucket in enumerate(series.buckets):
        y = float(_H - _BOTTOM)
        for index, (label, values) in enumerate(series.stacks):
            pico = values.get(bucket, 0)
            if not pico or not peak:
                continue
            height = plot * pico / peak  # float for drawing only
            y -= height
            title = f"{series.labels[i]} · {label}: ${format_money(pico)}"
            parts.append(
                f'<rect x="{_LEFT + i * width:.2f}" y="{y:.2f}" width="{max(width - 1, 0.5):.2f}" '
                f'height="{height:.2f}" fill="{COLORS[index % len(COLORS)]}">'
                f"<title>{escape(title)}</title></rect>"
            )
    step = max(1, count // 8)
    for i in range(0, count, step):
        parts.append(
            f'<text x="{_LEFT + i * width:.2f}" y="{_H - 6}" class="tick">{escape(series.labels[i])}</text>'
        )
    parts.append(f'<line x1="{_LEFT}" y1="{_H - _BOTTOM}" x2="{_W}" y2="{_H - _BOTTOM}" class="axis"/>')
    if peak:
        parts.append(f'<text x="{_LEFT + 4}" y="{_TOP + 12}" class="tick">peak ${format_money(peak)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
