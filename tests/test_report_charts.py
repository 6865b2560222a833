"""The report's inline SVG charts are readable: units on axes, a panel per series when one dwarfs the
others, overlapping series distinguishable, percentile labels that cannot collide, task ids on bars."""

from __future__ import annotations

import re

from test_report_rules import USD, busy_facts

from pipeline.report import charts
from pipeline.report.decide import build_report
from pipeline.report.render import build_charts

MONTHS = [f"m{i}" for i in range(1, 13)]


def axis_labels(svg: str) -> list[str]:
    """The y-axis tick texts (right-aligned at the plot's left edge)."""
    return re.findall(r'text-anchor="end" fill="#6b7785">([^<]+)</text>', svg)


def test_a_dwarfing_series_gets_its_own_panel() -> None:
    api = [15.0 + i for i in range(12)]
    hybrid = [3_000.0] * 12
    svg = charts.panels("Monthly cost projection", MONTHS, [("API only", api), ("fine-tuned hybrid", hybrid)],
                        unit="AUD per month")
    assert svg.count("<svg") == 3  # the note and one panel per series
    first, second = svg.split("<svg")[2], svg.split("<svg")[3]
    assert axis_labels(first)[-1] == "50.00"  # API only on its own scale (max 26 -> nice 50), not flattened
    assert axis_labels(second)[-1] == "5,000"
    assert svg.count("AUD per month") == 2 and "own scale" in svg


def test_comparable_series_share_one_axis_until_five_fold() -> None:
    at_limit = charts.panels("p", MONTHS, [("a", [100.0] * 12), ("b", [500.0] * 12)])
    beyond = charts.panels("p", MONTHS, [("a", [100.0] * 12), ("b", [501.0] * 12)])
    assert at_limit.count("<svg") == 1 and beyond.count("<svg") == 3


def test_overlapping_lines_differ_in_dash_width_and_marker() -> None:
    same = [0.5] * 10
    svg = charts.line_chart("c", [str(i) for i in range(10)], [("a", same), ("b", same), ("c", same)],
                            y_max=1.0, unit="share of input tokens")
    lines = re.findall(r"<polyline [^>]*>", svg)
    assert len(lines) == 3
    styles = {(re.search(r'stroke-width="([^"]+)"', x).group(1), (re.search(r'stroke-dasharray="([^"]+)"', x) or
              re.match("", "")).group(0)) for x in lines}
    assert len(styles) == 3  # no two series drawn alike
    assert "<circle" in svg and "<rect x=" in svg and "<path" in svg  # three marker shapes
    assert "share of input tokens" in svg


def test_histogram_announces_its_log_axis_and_keeps_marks_out_of_each_other() -> None:
    edges = [10 ** (k / 8) for k in range(16, 34)]
    counts = [1] * (len(edges) - 1)
    svg = charts.histogram("Latency", edges, counts, [("p50 1,163 ms", 1163.0), ("p90 2,237 ms", 2237.0),
                                                     ("p99 2,300 ms", 2300.0)])
    assert "log scale" in svg and "requests" in svg
    names = re.findall(r'<text x="([\d.]+)" y="13" fill="[^"]+">(p\d\d [^<]+)</text>', svg)
    assert [n for _, n in names] == ["p50 1,163 ms", "p90 2,237 ms", "p99 2,300 ms"]  # one legend row
    xs = [float(x) for x, _ in names]
    widths = [6.0 * len(n) for _, n in names]  # ~6 px per character at 11 px
    assert all(xs[i + 1] - xs[i] >= widths[i] for i in range(len(xs) - 1))  # no overlap


def test_task_bars_show_the_full_id_and_a_shortened_label() -> None:
    long = "You are the support assistant in our help widget. Be short and friendly, use the tools."
    svg = charts.hbars("Share", [("task_01", long, 0.5), ("task_12", "short", 0.25)])
    assert '<tspan font-weight="600">task_01</tspan>' in svg and '<tspan font-weight="600">task_12</tspan>' in svg
    assert "…" in svg and f"task_01: {long}" in svg  # the whole label in the tooltip


def test_report_charts_name_their_units() -> None:
    daily = [{"date": f"2026-09-{d:02d}", "requests": 100 + d, "spend_usd": 10.0, "cacheable_share_ideal": 0.5,
              "cacheable_share_as_logged": 0.3} for d in range(1, 31)]
    built = build_charts(build_report(busy_facts(daily=daily), USD))
    assert "USD per month" in built["projection"]
    assert "requests per day" in built["daily"] and "USD per day" in built["daily"]
    assert "share of the day" in built["cacheable"]
