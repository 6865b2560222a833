"""`logaudit weekly`: this week against the week before, with regressions a cron job can act on.

Run after a weekly incremental ingest (and the audit and dataset stages). The two windows are the
last `days` days ending at the newest request in the store and the `days` before them, so the
result depends on the data, not on when the job runs. Each metric is compared against a
`WeeklyConfig` limit; any breach is a regression and `WeeklyResult.exit_code` is 3 (0 when clean).

Reads the store and the tables earlier stages wrote (`audit/request_costs.parquet`,
`audit/request_labels.parquet`, `audit/cache_requests.parquet`, `dataset/lineage.parquet`); a table
that is absent makes its metrics "not measured", never a failure.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipeline.report.sqlfiles import fetch
from pipeline.report.thresholds import WeeklyConfig, weekly_config

EXIT_OK = 0
EXIT_REGRESSIONS = 3

# Optional tables and the typed empty SELECT standing in when a stage has not written them.
_OPTIONAL = {
    "request_costs": ("audit/request_costs.parquet",
                      "SELECT NULL::VARCHAR AS request_id, NULL::DOUBLE AS cost_usd, NULL::BIGINT AS in_cache_read, "
                      "NULL::BIGINT AS input_tokens WHERE false"),
    "request_labels": ("audit/request_labels.parquet",
                       "SELECT NULL::VARCHAR AS request_id, NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS task_type, "
                       "NULL::VARCHAR AS task_label, NULL::BOOLEAN AS failed, NULL::BOOLEAN AS regenerated, "
                       "NULL::BOOLEAN AS edited, NULL::DOUBLE AS feedback_rating, NULL::BOOLEAN AS negative_feedback, "
                       "NULL::BOOLEAN AS clean_example WHERE false"),
    "cache_requests": ("audit/cache_requests.parquet",
                       "SELECT NULL::VARCHAR AS request_id, NULL::BOOLEAN AS simulated, NULL::BIGINT AS input_tokens, "
                       "NULL::BIGINT AS ideal_read WHERE false"),
    "lineage": ("dataset/lineage.parquet",
                "SELECT NULL::VARCHAR AS kind, NULL::VARCHAR AS reason, NULL::VARCHAR AS request_id WHERE false"),
}


@dataclass(frozen=True)
class WeeklyResult:
    out_dir: Path
    weekly: dict[str, Any]

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return [m for m in self.weekly["metrics"] if m["regression"]]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSIONS if self.regressions else EXIT_OK

    def summary(self) -> str:
        w = self.weekly
        lines = [f"Weekly report written to {self.out_dir}/ (weekly.md, weekly.json)",
                 f"  this week {w['this_week']['start']} → {w['this_week']['end']} vs "
                 f"{w['previous_week']['start']} → {w['previous_week']['end']}"]
        for m in w["metrics"]:
            flag = "REGRESSION" if m["regression"] else ("ok" if m["measured"] else "not measured")
            lines.append(f"  {flag:<12} {m['name']}: {m['display']}")
        lines.append(f"  {len(self.regressions)} regression(s); exit code {self.exit_code}")
        return "\n".join(lines)


def weekly_report(workdir: Path, config: dict[str, Any] | WeeklyConfig | None = None) -> WeeklyResult:
    """Compare the last `days` with the `days` before and write `WORKDIR/report/weekly.{md,json}`."""
    from pipeline.workdir.store import connect_store, sql_literal

    workdir = Path(workdir)
    cfg = weekly_config(config)
    con = connect_store(workdir)
    try:
        present = {}
        for view, (rel, empty) in _OPTIONAL.items():
            path = workdir / rel
            present[view] = path.is_file()
            source = f"SELECT * FROM read_parquet({sql_literal(path)})" if path.is_file() else empty
            con.execute(f"CREATE OR REPLACE VIEW {view} AS {source}")
        end = fetch(con, "store_end")[0]["end_ts"]
        this_start = end - timedelta(days=cfg.days)
        prev_start = end - timedelta(days=2 * cfg.days)
        span = {"this_start": this_start, "prev_start": prev_start, "end_ts": end}
        traffic = {r["week"]: r for r in fetch(con, "weekly_traffic", **span)}
        labels = {r["week"]: r for r in fetch(con, "weekly_labels", **span)} if present["request_labels"] else {}
        mix = fetch(con, "weekly_task_mix", **span) if present["request_labels"] else []
        dataset = {r["week"]: r for r in fetch(con, "weekly_dataset", **span)} if present["lineage"] else {}
    finally:
        con.close()

    metrics = compare(traffic, labels, mix, dataset, present, cfg)
    weekly = {
        "schema_version": 1,
        "this_week": {"start": this_start.isoformat(), "end": end.isoformat()},
        "previous_week": {"start": prev_start.isoformat(), "end": this_start.isoformat()},
        "limits": dict(cfg.__dict__),
        "sources": present,
        "metrics": metrics,
        "new_task_types": [
            {"task_type": m["task_type"], "label": m["task_label"], "requests": m["this_requests"]}
            for m in mix if m["new_this_week"]
        ],
        "task_mix": [
            {"task_type": m["task_type"], "label": m["task_label"], "this_requests": m["this_requests"],
             "prev_requests": m["prev_requests"]}
            for m in mix
        ],
    }
    weekly["regressions"] = [m["id"] for m in metrics if m["regression"]]
    weekly["exit_code"] = EXIT_REGRESSIONS if weekly["regressions"] else EXIT_OK
    out_dir = workdir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / "weekly.json", json.dumps(weekly, indent=2, ensure_ascii=False, default=str) + "\n")
    _write(out_dir / "weekly.md", render_weekly_markdown(weekly))
    return WeeklyResult(out_dir, weekly)


def _ratio(num: Any, den: Any) -> float | None:
    return None if num is None or not den else float(num) / float(den)


def _metric(
    mid: str, name: str, this: float | None, prev: float | None, regression: bool | None, limit: str, fmt: str,
    reason: str | None = None, single: bool = False,
) -> dict[str, Any]:
    """One compared figure; `single` marks figures that already describe both weeks (a distance, a count)."""
    measured = this is not None and (prev is not None or regression is not None)
    if this is None:
        display = f"not measured ({reason or 'no data'})"
    elif single:
        display = fmt.format(this)
    elif prev is None:
        display = fmt.format(this) + " (no previous week)"
    else:
        display = f"{fmt.format(this)} (previous {fmt.format(prev)})"
    return {
        "id": mid, "name": name, "this_week": this, "previous_week": prev,
        "change": None if this is None or prev is None else this - prev,
        "limit": limit, "regression": bool(regression) and measured, "measured": measured, "display": display,
    }


def compare(
    traffic: dict[str, dict[str, Any]], labels: dict[str, dict[str, Any]], mix: list[dict[str, Any]],
    dataset: dict[str, dict[str, Any]], present: dict[str, bool], cfg: WeeklyConfig,
) -> list[dict[str, Any]]:
    """Every weekly metric with its limit and whether it regressed (pure; testable without files)."""
    t, p = traffic.get("this", {}), traffic.get("prev", {})
    out = []

    vt, vp = t.get("requests"), p.get("requests")
    rel = None if vt is None or not vp else vt / vp - 1
    out.append(_metric("volume", "Requests", vt, vp,
                       rel is not None and (rel < -cfg.max_volume_drop or rel > cfg.max_volume_rise),
                       f"change within -{cfg.max_volume_drop:.0%} / +{cfg.max_volume_rise:.0%}", "{:,.0f}"))

    no_costs = None if present.get("request_costs") else "audit/request_costs.parquet not found"
    st, sp = (t.get("spend_usd"), p.get("spend_usd")) if not no_costs else (None, None)
    out.append(_metric("spend", "Spend (USD)", st, sp, None, "reported", "{:,.2f}", no_costs))
    spr_t, spr_p = _ratio(st, t.get("priced_requests")), _ratio(sp, p.get("priced_requests"))
    rise = None if spr_t is None or not spr_p else spr_t / spr_p - 1
    out.append(_metric("spend_per_request", "Spend per request (USD)", spr_t, spr_p,
                       rise is not None and rise > cfg.max_spend_rise, f"rise <= {cfg.max_spend_rise:.0%}", "{:.5f}",
                       no_costs))
    if present.get("cache_requests"):
        ct, cp = _ratio(t.get("cacheable_tokens"), t.get("simulated_input_tokens")), _ratio(
            p.get("cacheable_tokens"), p.get("simulated_input_tokens"))
        name, reason = "Cacheable share of input tokens (simulated, ideal ordering)", None
    else:
        ct = _ratio(t.get("cache_read_tokens"), t.get("input_tokens")) if not no_costs else None
        cp = _ratio(p.get("cache_read_tokens"), p.get("input_tokens")) if not no_costs else None
        name, reason = "Cached share of input tokens (reported)", no_costs
    out.append(_metric("cacheable_share", name, ct, cp,
                       ct is not None and cp is not None and cp - ct > cfg.max_cacheable_share_drop,
                       f"drop <= {cfg.max_cacheable_share_drop:.0%} points", "{:.1%}", reason))

    no_labels = None if present.get("request_labels") else "audit/request_labels.parquet not found"
    total_t = sum(m["this_requests"] for m in mix) or 0
    total_p = sum(m["prev_requests"] for m in mix) or 0
    tv = None
    if total_t and total_p:
        tv = 0.5 * sum(abs(m["this_requests"] / total_t - m["prev_requests"] / total_p) for m in mix)
    out.append(_metric("task_mix", "Task-type mix shift (total variation)", tv, None,
                       tv is not None and tv > cfg.max_task_mix_distance, f"<= {cfg.max_task_mix_distance:.2f}",
                       "{:.3f}", no_labels, single=True))
    new = [m for m in mix if m["new_this_week"] and total_t and m["this_requests"] / total_t >= cfg.new_task_type_min_share]
    out.append(_metric("new_task_types", "New task types (>= "
                       f"{cfg.new_task_type_min_share:.0%} of the week)", float(len(new)) if not no_labels else None,
                       None, bool(new), "none", "{:.0f}", no_labels, single=True))

    lt, lp = labels.get("this", {}), labels.get("prev", {})
    for mid, name, key, den, limit in (
        ("regeneration_rate", "Regeneration rate", "regenerated", "answered", cfg.max_regeneration_rate_rise),
        ("edit_rate", "Edit rate", "edited", "answered", cfg.max_edit_rate_rise),
        ("negative_feedback_rate", "Negative feedback rate", "negative_feedback", "feedback",
         cfg.max_negative_feedback_rate_rise),
    ):
        a, b = _ratio(lt.get(key), lt.get(den)), _ratio(lp.get(key), lp.get(den))
        out.append(_metric(mid, name, a, b, a is not None and b is not None and a - b > limit,
                           f"rise <= {limit:.0%} points", "{:.1%}", no_labels))

    if present.get("lineage"):
        dt, dp = dataset.get("this", {}), dataset.get("prev", {})
        pass_t, pass_p = _ratio(dt.get("examples"), dt.get("requests")), _ratio(dp.get("examples"), dp.get("requests"))
        source = "dataset lineage: examples / requests"
        dup_t = _ratio(dt.get("duplicates"), (dt.get("examples") or 0) + (dt.get("duplicates") or 0))
        dup_p = _ratio(dp.get("duplicates"), (dp.get("examples") or 0) + (dp.get("duplicates") or 0))
        eligible = float(dt.get("examples") or 0)
        dup_reason = None
    else:
        pass_t, pass_p = _ratio(lt.get("clean_examples"), lt.get("requests")), _ratio(lp.get("clean_examples"), lp.get("requests"))
        source = "audit clean_example flag"
        dup_t = dup_p = None
        eligible = float(lt["clean_examples"]) if lt.get("clean_examples") is not None else None
        dup_reason = "dataset/lineage.parquet not found"
    out.append(_metric("filter_pass_rate", f"Filter pass rate ({source})", pass_t, pass_p,
                       pass_t is not None and pass_p is not None and pass_p - pass_t > cfg.max_filter_pass_rate_drop,
                       f"drop <= {cfg.max_filter_pass_rate_drop:.0%} points", "{:.1%}", no_labels or dup_reason))
    out.append(_metric("duplicate_rate", "Duplicate rate among dataset candidates", dup_t, dup_p,
                       dup_t is not None and (dup_t > cfg.max_duplicate_rate
                                              or (dup_p is not None and dup_t - dup_p > cfg.max_duplicate_rate_rise)),
                       f"<= {cfg.max_duplicate_rate:.0%} and rise <= {cfg.max_duplicate_rate_rise:.0%} points", "{:.1%}",
                       dup_reason))
    out.append(_metric("newly_eligible", "Newly eligible examples", eligible, None,
                       eligible is not None and cfg.min_newly_eligible > 0 and eligible < cfg.min_newly_eligible,
                       f">= {cfg.min_newly_eligible}" if cfg.min_newly_eligible else "reported", "{:,.0f}",
                       no_labels or dup_reason, single=True))
    return out


def render_weekly_markdown(weekly: dict[str, Any]) -> str:
    from pipeline.report.render import md_escape

    lines = [
        "# Weekly data-quality report",
        "",
        f"This week {weekly['this_week']['start']} → {weekly['this_week']['end']}, compared with "
        f"{weekly['previous_week']['start']} → {weekly['previous_week']['end']}.",
        "",
        f"**{len(weekly['regressions'])} regression(s)** (exit code {weekly['exit_code']}).",
        "",
        "| Metric | This week | Previous week | Limit | Result |",
        "|---|---:|---:|---|---|",
    ]
    for m in weekly["metrics"]:
        result = "**regression**" if m["regression"] else ("ok" if m["measured"] else "not measured")
        lines.append(f"| {m['name']} | {_fmt(m['this_week'])} | {_fmt(m['previous_week'])} | {m['limit']} | {result} |")
    if weekly["new_task_types"]:
        lines += ["", "New task types this week:", ""]
        lines += [f"- {md_escape(str(t['label']))} (`{md_escape(str(t['task_type']))}`): {t['requests']} requests"
                  for t in weekly["new_task_types"]]
    if weekly["task_mix"]:
        lines += ["", "| Task type | This week | Previous week |", "|---|---:|---:|"]
        lines += [f"| {md_escape(str(t['label']))} | {t['this_requests']} | {t['prev_requests']} |" for t in weekly["task_mix"]]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, float) and abs(value) < 1:
        return f"{value:.4f}"
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
