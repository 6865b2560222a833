"""Inline SVG charts, generated in Python so the HTML report needs no script, CDN or network.

Every text node and attribute value goes through `_esc`: labels such as task-type names come from
the logs and must render as text, never as markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#2f6fb0", "#e07b39", "#3a9d5d", "#c4473d", "#8a63b8", "#8c6d3f", "#d46aa8", "#6f7d8c", "#b5a22c",
           "#2aa3b5")
# Overlapping series stay distinguishable: each has its own dash pattern and width (the first drawn
# widest, so a line exactly on top of it still shows its edges) and its own marker shape.
DASHES = ("", "7 4", "2 3", "10 3 2 3")
WIDTHS = (4.0, 2.5, 1.6, 1.6)
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e3e8ee"


def _esc(text: object) -> str:
    return escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def compact(value: float) -> str:
    """1234 -> 1.2k; used for axis labels."""
    a = abs(value)
    if a >= 1e9:
        return f"{value / 1e9:.1f}B"
    if a >= 1e6:
        return f"{value / 1e6:.1f}M"
    if a >= 1e4:
        return f"{value / 1e3:.0f}k"
    if a >= 1e3:
        return f"{value / 1e3:.1f}k"
    if a >= 10 or value == 0:
        return f"{value:.0f}"
    return f"{value:.2g}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{_esc(title)}" font-family="system-ui, sans-serif" font-size="11">'
        f"<title>{_esc(title)}</title>" + "".join(body) + "</svg>"
    )


def _empty(title: str, reason: str, width: int = 560, height: int = 80) -> str:
    return _svg(width, height, title, [
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f6f8fa" rx="6"/>',
        f'<text x="{width / 2}" y="{height / 2 + 4}" text-anchor="middle" fill="{MUTED}">'
        f"{_esc('not measured: ' + reason)}</text>",
    ])


def bars_and_line(
    title: str,
    labels: Sequence[str],
    bars: Sequence[float | None],
    line: Sequence[float | None] | None,
    bar_name: str,
    line_name: str = "",
    line_format: str = "{:.2f}",
    width: int = 560,
    height: int = 230,
    bar_unit: str = "",
    line_unit: str = "",
) -> str:
    """Daily bars (left axis) with an optional line on its own right axis; each axis names its unit."""
    if not labels:
        return _empty(title, "no days in the window")
    left, right, top, bottom = 44, 52 if line else 12, 22, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    bar_max = _nice_max(max((b or 0) for b in bars))
    n = len(labels)
    slot = plot_w / n
    body = _grid(left, top, plot_w, plot_h, bar_max, compact)
    for i, b in enumerate(bars):
        if b is None:
            continue
        h = plot_h * b / bar_max
        body.append(
            f'<rect x="{_num(left + i * slot + slot * 0.12)}" y="{_num(top + plot_h - h)}" width="{_num(slot * 0.76)}" '
            f'height="{_num(h)}" fill="{PALETTE[0]}" opacity="0.85"><title>{_esc(labels[i])}: '
            f"{_esc(compact(b))} {_esc(bar_name)}</title></rect>"
        )
    if line:
        values = [v for v in line if v is not None]
        if values:
            line_max = _nice_max(max(values))
            points = [
                f"{_num(left + (i + 0.5) * slot)},{_num(top + plot_h - plot_h * v / line_max)}"
                for i, v in enumerate(line)
                if v is not None
            ]
            body.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{PALETTE[1]}" stroke-width="2"/>')
            for frac in (0, 0.5, 1):
                y = top + plot_h - plot_h * frac
                body.append(
                    f'<text x="{width - right + 4}" y="{_num(y + 4)}" fill="{PALETTE[1]}">'
                    f"{_esc(line_format.format(line_max * frac))}</text>"
                )
    body += _x_labels(labels, left, slot, top + plot_h)
    body.append(_legend([(bar_name, PALETTE[0])] + ([(line_name, PALETTE[1])] if line else []), left, 12))
    body.append(_axis_unit(bar_unit, left, top + plot_h + 28, "start"))
    if line and line_unit:
        body.append(_axis_unit(line_unit, width - 2, top + plot_h + 28, "end", PALETTE[1]))
    return _svg(width, height, title, body)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    y_max: float | None = None,
    y_format: str = "{:.0%}",
    width: int = 560,
    height: int = 230,
    unit: str = "",
    color_offset: int = 0,
) -> str:
    """One or more lines sharing one axis (e.g. cacheable share by rule set), each with its own dash
    pattern, width and markers so that lines lying on top of each other stay distinguishable."""
    values = [v for _, s in series for v in s if v is not None]
    if not labels or not values:
        return _empty(title, "no values")
    left, right, top, bottom = 52, 12, 22, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = y_max if y_max is not None else _nice_max(max(values))
    slot = plot_w / len(labels)
    body = _grid(left, top, plot_w, plot_h, top_value, lambda v: y_format.format(v))
    items = []
    for k, (name, points_in) in enumerate(series):
        color = PALETTE[(k + color_offset) % len(PALETTE)]
        xy = [(left + (i + 0.5) * slot, top + plot_h - plot_h * min(v, top_value) / top_value)
              for i, v in enumerate(points_in) if v is not None]
        dash = DASHES[k % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(f'<polyline points="{" ".join(f"{_num(x)},{_num(y)}" for x, y in xy)}" fill="none" '
                    f'stroke="{color}" stroke-width="{WIDTHS[k % len(WIDTHS)]}"{dash_attr} stroke-linejoin="round">'
                    f"<title>{_esc(name)}</title></polyline>")
        every = max(1, math.ceil(len(xy) / 12))
        body += [_marker(k, x, y, color) for x, y in xy[::every]]
        items.append((name, color, k))
    body += _x_labels(labels, left, slot, top + plot_h)
    body.append(_line_legend(items, left, 12))
    if unit:
        body.append(_axis_unit(unit, 4, top + plot_h + 28, "start"))
    return _svg(width, height, title, body)


def panels(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    y_format: str = "{:,.0f}",
    unit: str = "",
    dwarf_ratio: float = 5.0,
    width: int = 560,
) -> str:
    """Lines on one axis, or, when one series dwarfs another (their maxima differ more than
    `dwarf_ratio`-fold, which would flatten the small ones to zero), one panel per series, each
    with its own axis and unit, stacked and labelled."""
    maxima = [max((v for v in s if v is not None), default=0.0) for _, s in series]
    positive = [m for m in maxima if m > 0]
    if len(positive) < 2 or max(positive) / min(positive) <= dwarf_ratio:
        return line_chart(title, labels, series, y_format=y_format, unit=unit, width=width)
    parts = []
    for k, one in enumerate(series):
        top = max((v for v in one[1] if v is not None), default=0.0)
        fmt = y_format if top >= 100 else "{:,.2f}"  # each panel on its own scale, so its own precision
        svg = line_chart(f"{title}: {one[0]}", labels, [one], y_format=fmt, unit=unit, width=width, height=150,
                         color_offset=k)
        parts.append(svg)
    note = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 18" width="100%" font-family="system-ui, '
            f'sans-serif" font-size="11"><text x="0" y="13" fill="{MUTED}">{_esc("One panel per series, each on its own scale: the largest is more than " + format(dwarf_ratio, "g") + "x the smallest.")}</text></svg>')
    return note + "".join(parts)


def _marker(k: int, x: float, y: float, color: str) -> str:
    shape = k % 3
    if shape == 0:
        return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3.2" fill="{color}"/>'
    if shape == 1:
        return f'<rect x="{_num(x - 3)}" y="{_num(y - 3)}" width="6" height="6" fill="#fff" stroke="{color}" stroke-width="1.5"/>'
    return (f'<path d="M{_num(x)},{_num(y - 4)} L{_num(x + 4)},{_num(y + 3)} L{_num(x - 4)},{_num(y + 3)} Z" '
            f'fill="{color}"/>')


def _line_legend(items: Sequence[tuple[str, str, int]], x: float, y: float) -> str:
    out, cx = [], x
    for name, color, k in items:
        dash = DASHES[k % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{_num(cx)}" x2="{_num(cx + 22)}" y1="{y - 3}" y2="{y - 3}" stroke="{color}" '
                   f'stroke-width="{min(WIDTHS[k % len(WIDTHS)], 3)}"{dash_attr}/>')
        out.append(_marker(k, cx + 11, y - 3, color))
        out.append(f'<text x="{_num(cx + 26)}" y="{y + 1}" fill="{INK}">{_esc(name)}</text>')
        cx += 36 + 6.0 * len(name)
    return "".join(out)


def _axis_unit(text: str, x: float, y: float, anchor: str, color: str = MUTED) -> str:
    return f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" fill="{color}" font-style="italic">{_esc(text)}</text>'


def stacked_bar(title: str, parts: Sequence[tuple[str, float]], unit: str = "tokens", width: int = 560) -> str:
    """One horizontal 100% bar (e.g. token composition) with a legend giving shares and totals."""
    total = sum(v for _, v in parts if v)
    if total <= 0:
        return _empty(title, "no token counts")
    height, x, bar_h = 30 + 18 * math.ceil(len(parts) / 2) + 20, 0.0, 26
    body = []
    for k, (name, value) in enumerate(parts):
        w = (width - 2) * (value or 0) / total
        color = PALETTE[k % len(PALETTE)]
        body.append(
            f'<rect x="{_num(1 + x)}" y="2" width="{_num(w)}" height="{bar_h}" fill="{color}">'
            f"<title>{_esc(name)}: {_esc(compact(value or 0))} {_esc(unit)} ({(value or 0) / total:.1%})</title></rect>"
        )
        if w > 40:
            body.append(
                f'<text x="{_num(1 + x + w / 2)}" y="19" text-anchor="middle" fill="#fff">{(value or 0) / total:.0%}</text>'
            )
        x += w
    for k, (name, value) in enumerate(parts):
        col, row = k % 2, k // 2
        lx, ly = col * width / 2, bar_h + 20 + row * 18
        body.append(f'<rect x="{_num(lx)}" y="{ly - 9}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>')
        body.append(
            f'<text x="{_num(lx + 14)}" y="{ly}" fill="{INK}">{_esc(name)}: {_esc(compact(value or 0))} '
            f"({(value or 0) / total:.1%})</text>"
        )
    return _svg(width, height, title, body)


def hbars(
    title: str, rows: Sequence[tuple[str, str, float]], value_format: str = "{:.1%}", width: int = 560,
    label_w: int = 270,
) -> str:
    """Horizontal bars, one per row: (id, label, value). The id is always shown in full; the label is
    shortened to fit, with the whole label in the tooltip."""
    if not rows:
        return _empty(title, "no rows")
    row_h, top = 20, 4
    height = top + row_h * len(rows) + 6
    vmax = max(v for _, _, v in rows) or 1.0
    plot_w = width - label_w - 50
    body = []
    for i, (row_id, label, value) in enumerate(rows):
        y = top + i * row_h
        room = max(8, int((label_w - 14) / 6.1) - len(row_id) - 2)  # ~6 px per character at 11 px
        short = label if len(label) <= room else label[: room - 1].rstrip() + "…"
        w = plot_w * value / vmax
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" fill="{INK}">'
                    f'<tspan font-weight="600">{_esc(row_id)}</tspan> {_esc(short)}<title>{_esc(row_id)}: {_esc(label)}'
                    f"</title></text>")
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{_num(max(w, 1))}" height="{row_h - 6}" '
                    f'fill="{PALETTE[i % len(PALETTE)]}" rx="2"/>')
        body.append(f'<text x="{_num(label_w + w + 4)}" y="{y + 14}" fill="{MUTED}">{_esc(value_format.format(value))}</text>')
    return _svg(width, height, title, body)


def histogram(
    title: str, edges: Sequence[float], counts: Sequence[int], marks: Sequence[tuple[str, float]] = (),
    unit: str = "ms", width: int = 560, height: int = 200,
) -> str:
    """Bins on a log-ish axis given by their edges, with vertical marks (p50/p90/p99, thresholds)."""
    if not counts or sum(counts) == 0:
        return _empty(title, "no latencies in the logs")
    left, right, top, bottom = 44, 12, 26, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    cmax = _nice_max(max(counts))
    slot = plot_w / len(counts)
    body = _grid(left, top, plot_w, plot_h, cmax, compact)
    for i, c in enumerate(counts):
        h = plot_h * c / cmax
        body.append(
            f'<rect x="{_num(left + i * slot + 1)}" y="{_num(top + plot_h - h)}" width="{_num(slot - 2)}" height="{_num(h)}" '
            f'fill="{PALETTE[0]}" opacity="0.85"><title>{_esc(compact(edges[i]))}–{_esc(compact(edges[i + 1]))} {unit}: '
            f"{c}</title></rect>"
        )

    def x_of(value: float) -> float:
        # Position within the bin that holds the value, linear inside the bin.
        for i in range(len(counts)):
            if edges[i] <= value < edges[i + 1]:
                return left + slot * (i + (value - edges[i]) / (edges[i + 1] - edges[i]))
        return left + plot_w if value >= edges[-1] else left

    # Marks are named in a legend row above the plot, never beside their lines, so close
    # percentiles (p90 and p99 a few pixels apart) cannot overprint each other.
    legend_x = float(left)
    for k, (name, value) in enumerate(marks):
        x = x_of(value)
        color = PALETTE[(k + 1) % len(PALETTE)]
        body.append(f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{top}" y2="{top + plot_h}" stroke="{color}" '
                    f'stroke-dasharray="{DASHES[1 + k % 3]}" stroke-width="1.8"><title>{_esc(name)}</title></line>')
        body.append(f'<line x1="{_num(legend_x)}" x2="{_num(legend_x + 16)}" y1="9" y2="9" stroke="{color}" '
                    f'stroke-dasharray="{DASHES[1 + k % 3]}" stroke-width="1.8"/>')
        body.append(f'<text x="{_num(legend_x + 20)}" y="13" fill="{color}">{_esc(name)}</text>')
        legend_x += 34 + 6.0 * len(name)
    # Tick labels at bin edges, thinned so that neighbours are at least ~44 px apart.
    step = max(1, math.ceil(44 / slot))
    for i in range(0, len(edges), step):
        body.append(f'<text x="{_num(left + i * slot)}" y="{top + plot_h + 14}" text-anchor="middle" fill="{MUTED}">'
                    f"{_esc(compact(edges[i]))}</text>")
    body.append(_axis_unit(f"{unit}, log scale (bins of equal ratio)", left + plot_w, top + plot_h + 30, "end"))
    body.append(_axis_unit("requests", 4, top + plot_h + 30, "start"))
    return _svg(width, height, title, body)


def _grid(left: float, top: float, plot_w: float, plot_h: float, vmax: float, fmt) -> list[str]:  # noqa: ANN001
    out = []
    for frac in (0, 0.25, 0.5, 0.75, 1):
        y = top + plot_h - plot_h * frac
        out.append(f'<line x1="{left}" x2="{_num(left + plot_w)}" y1="{_num(y)}" y2="{_num(y)}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 4}" y="{_num(y + 4)}" text-anchor="end" fill="{MUTED}">{_esc(fmt(vmax * frac))}</text>')
    return out


def _x_labels(labels: Sequence[str], left: float, slot: float, y: float) -> list[str]:
    step = max(1, math.ceil(len(labels) / 8))
    return [
        f'<text x="{_num(left + (i + 0.5) * slot)}" y="{_num(y + 14)}" text-anchor="middle" fill="{MUTED}">'
        f"{_esc(labels[i])}</text>"
        for i in range(0, len(labels), step)
    ]


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> str:
    out, cx = [], x
    for name, color in items:
        if not name:
            continue
        out.append(f'<rect x="{_num(cx)}" y="{y - 8}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{_num(cx + 14)}" y="{y + 1}" fill="{INK}">{_esc(name)}</text>')
        cx += 24 + 6.2 * len(name)
    return "".join(out)
