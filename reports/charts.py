"""Charts as inline SVG: no scripts, no fonts or images to fetch, readable in an email.

Every chart has a `<title>` and an `aria-label`, and the report prints the
same figures in a table beside it, so a mail client that drops SVG (some do)
loses nothing but the picture.  Text is escaped here; the result is marked
safe for the (autoescaping) templates.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

FONT = "font-family='Helvetica, Arial, sans-serif'"
INK = "#1f2933"
MUTED = "#616e7c"
BAR = "#2f5d8a"
ALERT = "#b3261e"
GRID = "#d9e2ec"


def _fmt(n: int) -> str:
    return f"{n:,}"


def hbars(items: Sequence[tuple[str, int]], *, title: str, width: int = 640, colour: str = BAR,
          label_width: int = 250, highlight: Sequence[str] = ()) -> Markup:
    """Horizontal bars, one per (label, value), in the order given."""
    row_h, top = 24, 8
    height = top * 2 + row_h * max(1, len(items))
    peak = max([v for _, v in items] + [1])
    bar_space = width - label_width - 70
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'>",
             f"<title>{escape(title)}</title>"]
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        w = 0 if value <= 0 else max(2, round(bar_space * value / peak))
        fill = ALERT if label in highlight and value else colour
        text = label if len(label) <= 38 else label[:36] + "…"
        parts.append(f"<text x='{label_width - 8}' y='{y + 16}' text-anchor='end' font-size='12' {FONT} "
                     f"fill='{INK}'>{escape(text)}</text>")
        parts.append(f"<rect x='{label_width}' y='{y + 4}' width='{bar_space}' height='16' fill='#f0f4f8'/>")
        if w:
            parts.append(f"<rect x='{label_width}' y='{y + 4}' width='{w}' height='16' fill='{fill}'/>")
        parts.append(f"<text x='{label_width + w + 6}' y='{y + 16}' font-size='12' {FONT} fill='{MUTED}'>"
                     f"{_fmt(value)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(items: Sequence[tuple[dt.date, int]], *, title: str, width: int = 640, height: int = 180) -> Markup:
    """One column per day."""
    n = max(1, len(items))
    peak = max([v for _, v in items] + [1])
    base, top = height - 34, 18
    slot = (width - 20) / n
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'>",
             f"<title>{escape(title)}</title>",
             f"<line x1='10' y1='{base}' x2='{width - 10}' y2='{base}' stroke='{GRID}'/>"]
    for i, (day, value) in enumerate(items):
        x = 10 + i * slot
        h = 0 if value <= 0 else max(2, round((base - top) * value / peak))
        bw = min(56.0, slot * 0.6)
        cx = x + slot / 2
        if h:
            parts.append(f"<rect x='{cx - bw / 2:.1f}' y='{base - h}' width='{bw:.1f}' height='{h}' fill='{BAR}'/>")
        parts.append(f"<text x='{cx:.1f}' y='{base - h - 5}' text-anchor='middle' font-size='11' {FONT} "
                     f"fill='{MUTED}'>{_fmt(value)}</text>")
        label = f"{day:%a} {day.day}" if n <= 14 else f"{day.day}/{day.month}"
        parts.append(f"<text x='{cx:.1f}' y='{base + 16}' text-anchor='middle' font-size='11' {FONT} "
                     f"fill='{INK}'>{escape(label)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _shade(value: int, peak: int) -> str:
    if value <= 0:
        return "#f0f4f8"
    # from a pale blue to the bar colour, by the square root so small counts still show
    t = (value / peak) ** 0.5
    lo, hi = (0xd6, 0xe4, 0xf0), (0x1c, 0x3f, 0x66)
    r, g, b = (round(a + (c - a) * t) for a, c in zip(lo, hi, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(grid: Sequence[Sequence[int]], *, title: str, row_labels: Sequence[str],
            first_hour: int = 0, last_hour: int = 23, width: int = 640) -> Markup:
    """Rows (days) by local hours; darker is more."""
    hours = list(range(first_hour, last_hour + 1))
    left, top, cell_h = 44, 22, 22
    cell_w = (width - left - 8) / len(hours)
    height = top + cell_h * len(grid) + 8
    peak = max([max(row[first_hour:last_hour + 1] or [0]) for row in grid] + [1])
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title)}'>",
             f"<title>{escape(title)}</title>"]
    for j, hour in enumerate(hours):
        if hour % 2 == 0:
            parts.append(f"<text x='{left + j * cell_w + cell_w / 2:.1f}' y='14' text-anchor='middle' "
                         f"font-size='10' {FONT} fill='{MUTED}'>{hour:02d}</text>")
    for i, row in enumerate(grid):
        y = top + i * cell_h
        parts.append(f"<text x='{left - 6}' y='{y + 15}' text-anchor='end' font-size='11' {FONT} "
                     f"fill='{INK}'>{escape(row_labels[i])}</text>")
        for j, hour in enumerate(hours):
            value = row[hour]
            parts.append(f"<rect x='{left + j * cell_w:.1f}' y='{y}' width='{cell_w - 2:.1f}' height='{cell_h - 2}' "
                         f"fill='{_shade(value, peak)}'><title>{escape(row_labels[i])} {hour:02d}:00 – "
                         f"{_fmt(value)}</title></rect>")
    parts.append("</svg>")
    return Markup("".join(parts))
