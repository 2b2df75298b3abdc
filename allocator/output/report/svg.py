"""Charts as inline SVG: shapes and text as text (so Chinese renders with the page's fonts,
and a reader can select and search it), sized for an A4 page, no script.

Each chart is a <figure class="chart" data-chart=NAME> holding one <svg>; every bar, point
or line carries class "mark" so a test can count what was drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from allocator.output.cjk import is_cjk

WIDTH = 700  # px; the A4 text width at 96 dpi is ~ 720
BAR = 16
GAP = 6
FONT = 11
COLORS = {"blue": "#2f6db5", "green": "#3a8f5c", "red": "#c0392b", "grey": "#8a8f98",
          "orange": "#e08a1e", "purple": "#7a4fa3", "light": "#d9e3f0", "ink": "#222"}


def text_width(text: str, size: float = FONT) -> float:
    """Rendered width estimate: a CJK character is one em, Latin about 0.58 em."""
    return sum(size if is_cjk(c) else 0.58 * size for c in text)


def clip(text: str, width: float, size: float = FONT) -> str:
    """text cut with an ellipsis to fit width (the full text goes into a <title>)."""
    if text_width(text, size) <= width:
        return text
    out = ""
    for c in text:
        if text_width(out + c + "…", size) > width:
            break
        out += c
    return out + "…"


def _t(x: float, y: float, text: str, anchor: str = "start", size: float = FONT,
       cls: str = "", fill: str = COLORS["ink"], weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}"' + (f' class="{cls}"' if cls else "")
            + f">{escape(text)}</text>")


def figure(name: str, title: str, body: str, width: float, height: float,
           note: str = "") -> str:
    return (f'<figure class="chart" data-chart="{escape(name)}"><figcaption>{escape(title)}'
            f"</figcaption><svg role=\"img\" "
            f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}">'
            f"<title>{escape(title)}</title>{body}</svg>"
            + (f'<p class="note">{escape(note)}</p>' if note else "") + "</figure>")


def nice_ticks(hi: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least hi."""
    if not (hi > 0) or not math.isfinite(hi):
        return [0.0, 1.0]
    raw = hi / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [step * k for k in range(int(math.ceil(hi / step - 1e-9)) + 1)]


def short_number(v: float) -> str:
    """Axis label: 1.2M, 800k, 35."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def hbars(name: str, title: str, labels: Sequence[str], values: Sequence[float | None],
          fmt: Callable[[float], str], *, scale_max: float | None = None,
          outline: Sequence[Any] | None = None,
          ticks: Sequence[Any] | None = None, color: str = "blue",
          empty_text: str = "", axis_fmt: Callable[[float], str] = short_number,
          note: str = "", value_text: Sequence[str] | None = None) -> str:
    """Horizontal bars, one row per label: the value as a filled bar with its figure, an
    optional outline (e.g. capacity) drawn as an empty bar, an optional tick (e.g. a cap).
    A missing value (None) is written as `empty_text` (e.g. "no plan"), never as a 0 bar."""
    n = len(labels)
    label_w = min(220.0, max([text_width(str(s)) for s in labels] + [40.0]) + 8)
    plot_x = label_w + 4
    shown = value_text if value_text is not None else [
        fmt(float(v)) for v in values if v is not None and not (
            isinstance(v, float) and math.isnan(v))]
    right = min(220.0, max([text_width(str(t), 10) for t in shown] + [60.0]) + 12)
    plot_w = WIDTH - plot_x - right
    top = 4
    height = top + n * (BAR + GAP) + 22
    vals = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            for v in values]
    cand = [v for v in vals if v is not None]
    cand += [float(o) for o in (outline or []) if o is not None and math.isfinite(o)]
    cand += [float(k) for k in (ticks or []) if k is not None and math.isfinite(k)]
    hi = scale_max if scale_max is not None else max(cand + [0.0])
    grid = nice_ticks(hi)
    hi = max(grid[-1], hi) or 1.0

    def x(v: float) -> float:
        return plot_x + plot_w * max(0.0, v) / hi

    parts = []
    for g in grid:
        parts.append(f'<line x1="{x(g):.1f}" y1="{top}" x2="{x(g):.1f}" '
                     f'y2="{height - 20}" stroke="#e3e6ea"/>')
        parts.append(_t(x(g), height - 6, axis_fmt(g), "middle", 9, fill="#555"))
    for i, (label, v) in enumerate(zip(labels, vals, strict=True)):
        y = top + i * (BAR + GAP)
        full = str(label)
        shown = clip(full, label_w - 8)
        parts.append(f"<g><title>{escape(full)}</title>"
                     + _t(label_w, y + BAR - 4, shown, "end", cls="label") + "</g>")
        if outline is not None and outline[i] is not None and math.isfinite(outline[i]):
            parts.append(f'<rect class="mark outline" x="{plot_x:.1f}" y="{y:.1f}" '
                         f'width="{max(x(outline[i]) - plot_x, 0.5):.1f}" height="{BAR}" '
                         f'fill="none" stroke="{COLORS["grey"]}" stroke-dasharray="3 2"/>')
        if v is None:
            parts.append(_t(plot_x + 4, y + BAR - 4, empty_text, cls="mark empty",
                            fill=COLORS["red"]))
        else:
            parts.append(f'<rect class="mark bar" x="{plot_x:.1f}" y="{y + 2:.1f}" '
                         f'width="{max(x(v) - plot_x, 0.8):.1f}" height="{BAR - 4}" '
                         f'fill="{COLORS.get(color, color)}"/>')
            end = max(x(v), x(outline[i]) if outline is not None and outline[i] is not None
                      and math.isfinite(outline[i]) else 0)
            text = value_text[i] if value_text is not None else fmt(v)
            parts.append(_t(end + 4, y + BAR - 4, text, size=10))
        if ticks is not None and ticks[i] is not None and math.isfinite(ticks[i]):
            tx = x(ticks[i])
            parts.append(f'<line class="mark tick" x1="{tx:.1f}" y1="{y - 1:.1f}" '
                         f'x2="{tx:.1f}" y2="{y + BAR + 1:.1f}" stroke="{COLORS["ink"]}" '
                         'stroke-width="2"/>')
    return figure(name, title, "".join(parts), WIDTH, height, note)


def frontier(name: str, title: str, budgets: Sequence[float], shares: Sequence[Any],
             proven: Sequence[bool], marks: Sequence[tuple[float, str, str]],
             no_plan_text: str, not_proven_text: str, x_label: str,
             money_fmt: Callable[[float], str]) -> str:
    """Served share (0-100 %) against budget: a line through the points with a plan, hollow
    points where a plan is not proven optimal, red crosses on a 'no plan' band below the axis
    for budgets without a plan, and labelled vertical marks (value, label, color)."""
    left, right, top, plot_h = 52, 20, 10, 230
    band = 26
    width = WIDTH
    plot_w = width - left - right
    height = top + plot_h + band + 54 + 14 * len(marks)
    xs = [float(b) for b in budgets] + [m[0] for m in marks]
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo * 0.9, hi * 1.1 + 1.0
    pad = 0.03 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return left + plot_w * (v - lo) / (hi - lo)

    def y(s: float) -> float:
        return top + plot_h * (1 - s)

    parts = []
    for k in range(0, 11, 2):
        s = k / 10
        parts.append(f'<line x1="{left}" y1="{y(s):.1f}" x2="{left + plot_w}" y2="{y(s):.1f}" '
                     'stroke="#e3e6ea"/>')
        parts.append(_t(left - 6, y(s) + 3, f"{k * 10}%", "end", 9, fill="#555"))
    base = top + plot_h + band
    parts.append(f'<rect x="{left}" y="{top + plot_h + 4}" width="{plot_w}" height="{band - 8}" '
                 'fill="#fbeaea"/>')
    parts.append(_t(left - 6, top + plot_h + band / 2 + 3, no_plan_text, "end", 9,
                    fill=COLORS["red"]))
    for g in nice_ticks(hi)[:]:
        if lo <= g <= hi:
            parts.append(f'<line x1="{x(g):.1f}" y1="{base}" x2="{x(g):.1f}" y2="{base + 4}" '
                         'stroke="#555"/>')
            parts.append(_t(x(g), base + 15, short_number(g), "middle", 9, fill="#555"))
    parts.append(_t(left + plot_w / 2, base + 30, x_label, "middle", 10))
    pts = [(float(b), float(s), p) for b, s, p in zip(budgets, shares, proven, strict=True)
           if s is not None and not (isinstance(s, float) and math.isnan(s))]
    if len(pts) > 1:
        d = " ".join(f"{'M' if i == 0 else 'L'}{x(b):.1f},{y(s):.1f}"
                     for i, (b, s, _p) in enumerate(pts))
        parts.append(f'<path class="mark line" d="{d}" fill="none" stroke="{COLORS["blue"]}" '
                     'stroke-width="2"/>')
    for b, s, p in pts:
        fill = COLORS["blue"] if p else "white"
        parts.append(f'<circle class="mark point" cx="{x(b):.1f}" cy="{y(s):.1f}" r="3.5" '
                     f'fill="{fill}" stroke="{COLORS["blue"]}" stroke-width="1.5">'
                     f"<title>{escape(money_fmt(b))}: {100 * s:.2f}%"
                     + ("" if p else f" ({escape(not_proven_text)})") + "</title></circle>")
    for b, s in zip(budgets, shares, strict=True):
        if s is None or (isinstance(s, float) and math.isnan(s)):
            cx, cy = x(float(b)), top + plot_h + band / 2
            parts.append(f'<path class="mark noplan" d="M{cx - 4:.1f},{cy - 4:.1f} '
                         f'L{cx + 4:.1f},{cy + 4:.1f} M{cx - 4:.1f},{cy + 4:.1f} '
                         f'L{cx + 4:.1f},{cy - 4:.1f}" stroke="{COLORS["red"]}" '
                         f'stroke-width="2"><title>{escape(money_fmt(float(b)))}: '
                         f"{escape(no_plan_text)}</title></path>")
    for k, (v, label, color) in enumerate(marks):
        mx = x(v)
        c = COLORS.get(color, color)
        parts.append(f'<line class="mark vmark" x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" '
                     f'y2="{base}" stroke="{c}" stroke-dasharray="5 3" stroke-width="1.5"/>')
        ly = base + 46 + 14 * k
        parts.append(f'<line x1="{left}" y1="{ly - 4}" x2="{left + 18}" y2="{ly - 4}" '
                     f'stroke="{c}" stroke-dasharray="5 3" stroke-width="1.5"/>')
        parts.append(_t(left + 24, ly, f"{label}: {money_fmt(v)}", size=10))
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#555"/>')
    return figure(name, title, "".join(parts), width, height)
