"""report.json -> report.md and report.html (Jinja2 templates shipped next to this file).

Escaping is not left to template discipline: the HTML environment autoescapes every value, and
the Markdown renderer escapes every string of the report before the template sees it (Markdown
viewers render inline HTML, so a prompt holding `<script>` must arrive as `&lt;script&gt;`). Charts
are SVG built by `charts.py`, which escapes its own text, and are the only values marked safe.
"""

from __future__ import annotations

import builtins
import math
import re
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from pipeline.report import charts
from pipeline.report.evaluations import section_html, section_markdown

# Display names of the cache audit's scenarios (audit/cache.py `scenarios`).
RULE_NAMES = {
    "as_logged": "as logged (provider rules, breakpoints as sent)",
    "ideal_bp": "ideal breakpoints (one after the stable prefix)",
    "ideal": "ideal ordering (breakpoints + dynamic spans moved last)",
}


class Formats:
    """Number formatting shared by both templates (None renders as an em dash)."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    @staticmethod
    def _none(value: Any) -> bool:
        return value is None or (isinstance(value, float) and math.isnan(value))

    def int(self, value: Any) -> str:
        return "—" if self._none(value) else f"{int(value):,}"

    def num(self, value: Any) -> str:
        if self._none(value):
            return "—"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")

    def pct(self, value: Any) -> str:
        return "—" if self._none(value) else f"{value:.1%}"

    def ms(self, value: Any) -> str:
        return "—" if self._none(value) else f"{value:,.0f} ms"

    def compact(self, value: Any) -> str:
        return "—" if self._none(value) else charts.compact(float(value))

    def money(self, value: Any) -> str:
        if self._none(value):
            return "—"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"

    def months(self, value: Any) -> str:
        return "never (no monthly saving)" if self._none(value) else f"{value:,.1f} months"

    def month_no(self, value: Any, horizon: builtins.int) -> str:  # `int` here is the method above
        return f"not within {horizon} months" if self._none(value) else f"month {value}"

    def _by_unit(self, value: Any, unit: str) -> str:
        if self._none(value):
            return "—"
        if unit == "share":
            return self.pct(value)
        if unit == "ms":
            return self.ms(value)
        if unit == "count":
            return self.int(value)
        return f"{self.money(value)} {unit}"

    def sign_value(self, sign: dict[str, Any]) -> str:
        return self._by_unit(sign["value"], sign["unit"])

    def sign_threshold(self, sign: dict[str, Any]) -> str:
        return self._by_unit(sign["threshold"], sign["unit"])

    def dq_value(self, criterion: dict[str, Any]) -> str:
        value = criterion["value"]
        if criterion["id"] == "no_leakage":
            return self.int(value)
        if criterion["id"] == "distribution_match":
            return "—" if self._none(value) else f"{value:.3f}"
        return self.pct(value)


def _template(name: str) -> str:
    return resources.files("pipeline.report").joinpath(name).read_text(encoding="utf-8")


def _env(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        autoescape=autoescape, undefined=jinja2.StrictUndefined, trim_blocks=False, keep_trailing_newline=True
    )


# In HTML a tag, comment or processing instruction can only start with `<` followed by a letter,
# `/`, `!` or `?`; escaping exactly those keeps "< 3,000" readable while `<script>` becomes text.
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


def md_escape(text: str) -> str:
    """Make a string inert and single-line inside Markdown (which renders inline HTML) and a table cell."""
    out = _TAG_OPEN.sub("&lt;", text.replace("\\", "\\\\")).replace("|", "\\|")
    return " ".join(out.split())


def _deep(value: Any, fn: Any) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _deep(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v, fn) for v in value]
    return value


def render_markdown(report: dict[str, Any], max_tasks: int = 30) -> str:
    safe = _deep(report, md_escape)
    fmt = Formats(report["cost"]["currency"])
    text = _env(False).from_string(_template("template.md")).render(
        r=safe, f=fmt, max_tasks=max_tasks, rule_names=RULE_NAMES,
        eval_section=section_markdown(report.get("evaluations") or [], fmt.money, md_escape),
    )
    # Collapse the blank-line runs that template control blocks leave behind.
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip() or (lines and lines[-1].strip()):
            lines.append(line.rstrip())
    return "\n".join(lines).strip() + "\n"


def render_html(report: dict[str, Any], max_tasks: int = 30) -> str:
    fmt = Formats(report["cost"]["currency"])
    sources = [name.replace("_", " ") for name, found in report["sources"].items() if found]
    return _env(True).from_string(_template("template.html")).render(
        r=report,
        f=fmt,
        charts=build_charts(report),
        ideal_share=_ideal(report),
        max_tasks=max_tasks,
        rule_names=RULE_NAMES,
        sources_text=", ".join(sources) or "no upstream outputs",
        eval_section=Markup(section_html(report.get("evaluations") or [], fmt.money)),  # autoescaped by its template
    )


def _ideal(report: dict[str, Any]) -> float | None:
    shares = report["cache"]["simulated_share"] or {}
    name = report["cache"]["ideal_rule_set"]
    if name in shares:
        return shares[name]
    return max(shares.values()) if shares else None


def build_charts(report: dict[str, Any]) -> dict[str, Markup]:
    """Every chart as inline SVG markup (already escaped by `charts.py`)."""
    daily = report["series"]["daily"]
    labels = [str(d["date"])[5:] for d in daily]  # MM-DD: the window is at most a few months
    currency = report["cost"]["currency"]
    out: dict[str, str] = {}
    out["daily"] = charts.bars_and_line(
        "Daily requests and spend", labels, [d.get("requests") for d in daily],
        [d.get("spend") for d in daily] if any(d.get("spend") is not None for d in daily) else None,
        "requests", f"spend ({currency})", bar_unit="requests per day", line_unit=f"{currency} per day",
    )
    series = []
    for key, name in (("cacheable_share_ideal", "simulated, ideal ordering"),
                      ("cacheable_share_as_logged", "simulated, as logged"),
                      ("reported_cached_share", "reported cache reads")):
        values = [d.get(key) for d in daily]
        if any(v is not None for v in values):
            series.append((name, values))
    out["cacheable"] = charts.line_chart("Cacheable share of input tokens by day", labels, series, y_max=1.0,
                                         unit="share of the day's input tokens")
    comp = report["tokens"]["composition"] or {}
    out["tokens"] = charts.stacked_bar(
        "Token composition", [(k.replace("_", " "), float(v or 0)) for k, v in comp.items()]
    )
    tasks = sorted(report["task_types"], key=lambda t: -(t["share"] or 0))[:12]
    out["tasks"] = charts.hbars(
        "Share of requests by task type", [(t["id"], t["label"] or "", t["share"] or 0.0) for t in tasks]
    )
    hist = report["series"]["latency_histogram"] or {}
    lat = report["latency"]
    marks = [(f"p{q} {lat[f'p{q}_ms']:,.0f} ms", lat[f"p{q}_ms"]) for q in (50, 90, 99) if lat[f"p{q}_ms"] is not None]
    out["latency"] = charts.histogram(
        "Latency distribution", hist.get("edges", []), [int(c) for c in hist.get("counts", [])], marks
    )
    proj = report["cost"]["projection"]
    out["projection"] = charts.panels(
        "Monthly cost projection", [f"m{p['month']}" for p in proj],
        [(name, [p[key] for p in proj]) for key, name in (
            ("api_only", "API only"), ("with_ideal_caching", "API + ideal caching"),
            ("fine_tuned_hybrid", "fine-tuned hybrid"))
         if any(p[key] is not None for p in proj)],
        y_format="{:,.0f}",
        unit=f"{currency} per month",
    )
    return {k: Markup(v) for k, v in out.items()}
