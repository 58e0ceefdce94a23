"""A browser visit drawn as a timeline: one row per place, a dot per navigation, an arrow to the next one.

`timeline_svg` returns a self-contained SVG document (no fonts, scripts or images from elsewhere). Time runs
along the x axis; each distinct place (host and path, first-seen order) has a row; dots are coloured by who
started the navigation; an arrow joins each navigation to the next, solid for a server redirect and dashed for
one the page started, so a ping-pong loop shows as a zigzag. The rows of a detected loop's cycle are shaded.
Every piece of text comes from the target and is XML-escaped.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape, quoteattr

from harness.browser.model import Initiator, Navigation, Visit

__all__ = ["timeline_svg"]

WIDTH = 960
LABEL_W = 230  # the row labels' column
RIGHT = 40
TOP = 78  # the header's three lines
ROW_H = 24
AXIS_H = 34
MAX_ROWS = 20
LABEL_CHARS = 34
DOT_R = 4.5
COLOURS = {
    Initiator.HARNESS: "#6b6b6b",
    Initiator.SERVER: "#1f6fb4",
    Initiator.SCRIPT: "#e07b00",
    Initiator.PAGE: "#2a9d3a",
}
STEPS = (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000)


def _text(x: float, y: float, content: str, *, size: int = 11, title: str | None = None, **attrs: str) -> str:
    extra = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
    tip = f"<title>{escape(title)}</title>" if title is not None else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}"{extra}>{tip}{escape(content)}</text>'


def _clip(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _ms(t: float) -> str:
    if t == 0:
        return "0"
    return f"{t:g} ms" if t < 1000 else f"{t / 1000:g} s"


def _ticks(span: float) -> list[float]:
    step = next((s for s in STEPS if span / s <= 8), STEPS[-1] * math.ceil(span / (8 * STEPS[-1])))
    return [i * step for i in range(int(span // step) + 1)]


def _header(visit: Visit) -> list[str]:
    lines = [
        _text(12, 20, f"verdict: {visit.verdict}", size=13, font_weight="bold"),
        _text(160, 20, _clip(f"start: {visit.start_url}", 120), title=visit.start_url),
    ]
    if visit.loop is not None:
        lines.append(_text(12, 40, _clip(str(visit.loop), 150), title=str(visit.loop), fill="#b00020"))
    x = 12.0
    for who, colour in COLOURS.items():
        lines.append(f'<circle class="legend" cx="{x + 4:.1f}" cy="58" r="{DOT_R}" fill="{colour}"/>')
        lines.append(_text(x + 12, 62, str(who)))
        x += 80
    lines.append(f'<line x1="{x:.1f}" y1="58" x2="{x + 30:.1f}" y2="58" stroke="#333"/>')
    lines.append(_text(x + 36, 62, "redirect"))
    lines.append(f'<line x1="{x + 100:.1f}" y1="58" x2="{x + 130:.1f}" y2="58" stroke="#333" stroke-dasharray="4 3"/>')
    lines.append(_text(x + 136, 62, "page or script"))
    return lines


def _arrow(a: tuple[float, float], b: tuple[float, float], nxt: Navigation) -> str:
    (x1, y1), (x2, y2) = a, b
    length = math.hypot(x2 - x1, y2 - y1)
    if length > 2 * DOT_R:  # start and end at the dots' edges, not their centres
        dx, dy = (x2 - x1) / length * DOT_R, (y2 - y1) / length * DOT_R
        x1, y1, x2, y2 = x1 + dx, y1 + dy, x2 - dx, y2 - dy
    redirect = nxt.initiator is Initiator.SERVER
    kind, dash = ("redirect", "") if redirect else ("client", ' stroke-dasharray="4 3"')
    return (
        f'<line class="arrow {kind}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#333" '
        f'stroke-width="1.2"{dash} marker-end="url(#head)"/>'
    )


def timeline_svg(visit: Visit) -> str:
    """The visit as an SVG document: its navigations over time, one row per place, the loop's rows shaded."""
    navs = visit.navigations
    places = list(dict.fromkeys(n.place for n in navs))
    shown, hidden = places[:MAX_ROWS], places[MAX_ROWS:]
    row = {p: i for i, p in enumerate(shown)}
    rows = len(shown) + (1 if hidden else 0)  # places past the cap share one last row
    height = TOP + max(rows, 1) * ROW_H + AXIS_H
    plot_w = WIDTH - LABEL_W - RIGHT
    span = max(visit.elapsed_ms, navs[-1].at_ms if navs else 0.0, 1.0)
    cycle = set(visit.loop.cycle) if visit.loop is not None else set()

    def xy(n: Navigation) -> tuple[float, float]:
        return LABEL_W + n.at_ms / span * plot_w, TOP + row.get(n.place, len(shown)) * ROW_H + ROW_H / 2

    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>',
        f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>',
        *_header(visit),
    ]
    if not navs:
        out.append(_text(LABEL_W, TOP + ROW_H / 2 + 4, "no navigation", size=13, fill="#666"))
    for i, p in enumerate(shown):
        y = TOP + i * ROW_H
        band = "#fde2e2" if p in cycle else ("#f6f6f6" if i % 2 else "#fff")
        out.append(
            f'<g class="{"row loop" if p in cycle else "row"}"><rect x="0" y="{y}" width="{WIDTH}" height="{ROW_H}" '
            f'fill="{band}"/>{_text(8, y + ROW_H / 2 + 4, _clip(p, LABEL_CHARS), title=p)}</g>'
        )
    if hidden:
        y = TOP + len(shown) * ROW_H
        label = _text(8, y + ROW_H / 2 + 4, f"+{len(hidden)} more", title="\n".join(hidden), font_style="italic")
        out.append(f'<g class="row more"><rect x="0" y="{y}" width="{WIDTH}" height="{ROW_H}" fill="#eee"/>{label}</g>')
    axis_y = TOP + max(rows, 1) * ROW_H
    out.append(f'<line x1="{LABEL_W}" y1="{axis_y}" x2="{LABEL_W + plot_w}" y2="{axis_y}" stroke="#999"/>')
    for t in _ticks(span):
        x = LABEL_W + t / span * plot_w
        out.append(f'<line class="tick" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{axis_y + 4}" stroke="#ddd"/>')
        out.append(_text(x, axis_y + 18, _ms(t), size=10, text_anchor="middle", fill="#555"))
    points = [xy(n) for n in navs]
    out.extend(_arrow(points[i], points[i + 1], navs[i + 1]) for i in range(len(navs) - 1))
    for n, (cx, cy) in zip(navs, points, strict=True):
        status = str(n.status) if n.status is not None else "-"
        tip = f"{n.url}\n+{n.at_ms:.0f} ms, status {status}, {n.initiator}"
        out.append(
            f'<circle class="dot {n.initiator}" cx="{cx:.1f}" cy="{cy:.1f}" r="{DOT_R}" fill="{COLOURS[n.initiator]}">'
            f"<title>{escape(tip)}</title></circle>"
        )
        out.append(_text(cx + 6, cy - 6, status, size=8, fill="#444"))
    out.append("</svg>")
    return "\n".join(out) + "\n"
