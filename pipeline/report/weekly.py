"""`logaudit weekly`: this week against the week before, with regressions a cron job can act on.

Run after a weekly incremental ingest (and the audit and dataset stages). The two windows are the
last `days` days ending at the newest request in the store and the `days` before them, so the
result depends on the data, not on when the job runs. A regression is a change for the WORSE beyond
a relative `WeeklyConfig` limit (`WeeklyResult.exit_code` 3, else 0); an absolute ceiling breached
is shown as "above limit" and a task-mix or per-task volume shift as "shift", neither of which is a
regression. Every rate is shown with its count and base; money in the report currency; the current
decision is the one `report.json` holds (rendered, never recomputed).

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

from pipeline.report.inputs import fetch
from pipeline.report.thresholds import WeeklyConfig, report_config, weekly_config
from pipeline.workdir import versions
from pipeline.workdir.lock import holds_writer_lock
from pipeline.workdir.paths import workdir_paths
from pipeline.workdir.versions import stage_dir

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
                 f"  this week {_span(w['this_week'])} vs previous {_span(w['previous_week'])}",
                 f"  {decision_line(w['decision'])}"]
        if w.get("no_previous_week"):
            lines.append("  no previous week: the store holds no requests before "
                         f"{w['this_week']['start']}, so nothing is compared (exit code 0)")
        for m in w["metrics"]:
            lines.append(f"  {m['status'].upper() if m['status'] == 'regression' else m['status']:<17} {m['name']}: {m['display']}")
        for t in w["task_shifts"]:
            lines.append(f"  {'shift':<17} {t['task_type']} ({t['label'][:40]}): {t['display']}")
        lines.append(f"  {len(self.regressions)} regression(s); exit code {self.exit_code}")
        return "\n".join(lines)


def decision_line(decision: dict[str, Any] | None) -> str:
    """The current decision as the report stated it (rendered from report.json, never recomputed)."""
    if not decision:
        return "decision: not available (run `logaudit report` first)"
    return f"decision: {decision['title'].upper()} ({decision['decision']}): {decision['headline']}"


def _span(week: dict[str, Any]) -> str:
    return f"{week['start']} → {week['end']}"


@holds_writer_lock
def weekly_report(
    workdir: Path, config: dict[str, Any] | WeeklyConfig | None = None, *, allow_mixed_versions: bool = False
) -> WeeklyResult:
    """Compare the last `days` with the `days` before and write `WORKDIR/report/weekly.{md,json}`."""
    from pipeline.report.stage import REPORT_FILES, check_versions
    from pipeline.workdir.store import connect_store, sql_literal, store_identity

    workdir = Path(workdir)
    cfg = weekly_config(config)
    money = report_config(config if isinstance(config, dict) else None)
    store = store_identity(workdir)
    check_versions(workdir, store, ("audit", "dataset"), allow_mixed_versions)
    con = connect_store(workdir)
    try:
        present = {}
        for view, (rel, empty) in _OPTIONAL.items():
            stage, name = rel.split("/", 1)
            path = stage_dir(workdir, stage) / name
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

    metrics = compare(traffic, labels, mix, dataset, present, cfg, money.currency, money.usd_to_currency)
    no_previous_week = not (traffic.get("prev") or {}).get("requests")
    if no_previous_week:  # nothing to compare with: no figure can have regressed
        for m in metrics:
            if m["regression"]:
                m["regression"], m["status"] = False, "no previous week"
    report = _json(stage_dir(workdir, "report") / "report.json")
    weekly = {
        "schema_version": 2,
        "this_week": _week(this_start, end),
        "previous_week": _week(prev_start, this_start),
        "currency": money.currency,
        "usd_to_currency": money.usd_to_currency,
        "decision": None if report is None else {k: report["verdict"][k] for k in ("decision", "title", "headline")},
        "limits": dict(cfg.__dict__),
        "sources": present,
        "metrics": metrics,
        "no_previous_week": no_previous_week,
        "task_shifts": [] if no_previous_week else task_shifts(mix, cfg),
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
    with versions.building(workdir, "report", store=store, carry=REPORT_FILES) as build:
        _write(build / "weekly.json", json.dumps(weekly, indent=2, ensure_ascii=False, default=str) + "\n")
        _write(build / "weekly.md", render_weekly_markdown(weekly))
    return WeeklyResult(workdir_paths(workdir).view("report"), weekly)


def _week(start: Any, end: Any) -> dict[str, Any]:
    """Dates for people (the window is (start, end]), timestamps for scripts."""
    return {"start": start.date().isoformat(), "end": end.date().isoformat(),
            "start_ts": start.isoformat(), "end_ts": end.isoformat()}


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("verdict"), dict) else None


def _ratio(num: Any, den: Any) -> float | None:
    return None if num is None or not den else float(num) / float(den)


def _metric(
    mid: str, name: str, this: float | None, prev: float | None, *, kind: str, limit: float | None = None,
    worse: str | None = None, ceiling: float | None = None, floor: float | None = None, fmt: str = "{:,.0f}",
    counts: tuple[Any, Any] | None = None, bases: tuple[Any, Any] | None = None, base_label: str = "",
    min_base: int = 0, reason: str | None = None, shift_limit: float | None = None,
) -> dict[str, Any]:
    """One compared figure.

    kind: "rate" (count of base), "value" or "single" (one figure for both weeks: a distance, a count).
    worse: "up" or "down", the direction that is worse; a relative change that way beyond `limit` is a
    regression. `ceiling`/`floor`: absolute limits shown as "above limit". `shift_limit`: a single
    figure beyond it is a "shift"."""
    few = bases is not None and any(b is not None and b < min_base for b in bases)
    measured = this is not None
    # Rounded so that a change of exactly the limit (70 of 100 at -30%) is at it, not beyond it.
    rel = None if this is None or prev is None or not prev else round(this / prev - 1, 9)
    regression = bool(measured and not few and rel is not None and worse is not None and limit is not None
                      and (rel > limit if worse == "up" else rel < -limit))
    above = bool(measured and ((ceiling is not None and this > ceiling) or (floor is not None and this < floor)))
    shift = bool(measured and shift_limit is not None and this > shift_limit)
    if not measured:
        status, display = "not measured", f"not measured ({reason or 'no data'})"
    else:
        display = _show(this, counts[0] if counts else None, bases[0] if bases else None, base_label, fmt)
        if kind != "single":
            if prev is None:
                display += " (no previous week)"
            else:
                display += f" vs {_show(prev, counts[1] if counts else None, bases[1] if bases else None, base_label, fmt)}"
                if rel is not None:
                    display += f", {rel:+.0%}"
        if few:
            status = "too few to judge"
            display += f" (fewer than {min_base} {base_label} in a week)"
        elif regression:
            status = "regression"
        elif above:
            status = "above limit"
        elif shift:
            status = "shift"
        elif rel is not None and worse is not None and (rel < 0 if worse == "up" else rel > 0):
            status = "improved"
        else:
            status = "ok"
    limits = []
    if limit is not None and worse is not None:
        limits.append(f"worse by > {limit:.0%} ({'rise' if worse == 'up' else 'drop'}) is a regression")
    if ceiling is not None:
        limits.append(f"above {fmt.format(ceiling)}: above limit")
    if floor is not None:
        limits.append(f"below {fmt.format(floor)}: above limit")
    if shift_limit is not None:
        limits.append(f"> {fmt.format(shift_limit)}: shift")
    return {
        "id": mid, "name": name, "this_week": this, "previous_week": prev,
        "this_count": counts[0] if counts else None, "previous_count": counts[1] if counts else None,
        "this_base": bases[0] if bases else None, "previous_base": bases[1] if bases else None,
        "base": base_label or None,
        "change": None if this is None or prev is None else this - prev,
        "relative_change": rel,
        "limit": "; ".join(limits) or "reported",
        "regression": regression and not few, "above_limit": above, "shift": shift,
        "status": status, "measured": measured, "display": display,
    }


def _show(value: float, count: Any, base: Any, base_label: str, fmt: str) -> str:
    text = fmt.format(value)
    if base is not None:
        text += f" of {int(base):,} {base_label}" + (f" ({int(count):,})" if count is not None else "")
    return text


def compare(
    traffic: dict[str, dict[str, Any]], labels: dict[str, dict[str, Any]], mix: list[dict[str, Any]],
    dataset: dict[str, dict[str, Any]], present: dict[str, bool], cfg: WeeklyConfig,
    currency: str = "USD", usd_to_currency: float = 1.0,
) -> list[dict[str, Any]]:
    """Every weekly metric with its limit and status (pure; testable without files)."""
    t, p = traffic.get("this", {}), traffic.get("prev", {})
    out = []

    vt, vp = t.get("requests"), p.get("requests")
    rel = None if vt is None or not vp else round(vt / vp - 1, 9)
    volume = _metric("volume", "Requests", vt, vp, kind="value", limit=cfg.max_volume_drop, worse="down")
    if rel is not None and rel > cfg.max_volume_rise and not volume["regression"]:
        volume["above_limit"], volume["status"] = True, "above limit"
    volume["limit"] += f"; rise > {cfg.max_volume_rise:.0%}: above limit"
    out.append(volume)

    no_costs = None if present.get("request_costs") else "audit/request_costs.parquet not found"

    def money(usd: Any) -> float | None:
        return None if usd is None or no_costs else float(usd) * usd_to_currency

    st, sp = money(t.get("spend_usd")), money(p.get("spend_usd"))
    out.append(_metric("spend", f"Spend ({currency}, the week's total)", st, sp, kind="value", fmt="{:,.2f}",
                       reason=no_costs))
    spr_t, spr_p = _ratio(st, t.get("priced_requests")), _ratio(sp, p.get("priced_requests"))
    out.append(_metric("spend_per_request", f"Spend per request ({currency})", spr_t, spr_p, kind="value",
                       limit=cfg.max_spend_rise, worse="up", fmt="{:.5f}", reason=no_costs))
    if present.get("cache_requests"):
        num_t, den_t = t.get("cacheable_tokens"), t.get("simulated_input_tokens")
        num_p, den_p = p.get("cacheable_tokens"), p.get("simulated_input_tokens")
        name, reason = "Cacheable share of input tokens (simulated, ideal ordering)", None
    else:
        num_t, den_t = (t.get("cache_read_tokens"), t.get("input_tokens")) if not no_costs else (None, None)
        num_p, den_p = (p.get("cache_read_tokens"), p.get("input_tokens")) if not no_costs else (None, None)
        name, reason = "Cached share of input tokens (reported)", no_costs
    out.append(_metric("cacheable_share", name, _ratio(num_t, den_t), _ratio(num_p, den_p), kind="rate",
                       limit=cfg.max_cacheable_share_drop, worse="down", fmt="{:.1%}", counts=(num_t, num_p),
                       bases=(den_t, den_p), base_label="input tokens", reason=reason))

    no_labels = None if present.get("request_labels") else "audit/request_labels.parquet not found"
    total_t = sum(m["this_requests"] for m in mix) or 0
    total_p = sum(m["prev_requests"] for m in mix) or 0
    tv = None
    if total_t and total_p:
        tv = 0.5 * sum(abs(m["this_requests"] / total_t - m["prev_requests"] / total_p) for m in mix)
    out.append(_metric("task_mix", "Task-type mix shift (total variation)", tv, None, kind="single", fmt="{:.3f}",
                       shift_limit=cfg.max_task_mix_distance, reason=no_labels))
    new = [m for m in mix if m["new_this_week"] and total_t and m["this_requests"] / total_t >= cfg.new_task_type_min_share]
    out.append(_metric("new_task_types", f"New task types (>= {cfg.new_task_type_min_share:.0%} of the week)",
                       float(len(new)) if not no_labels else None, None, kind="single", shift_limit=0,
                       reason=no_labels))

    lt, lp = labels.get("this", {}), labels.get("prev", {})
    for mid, name, key, den, label, limit in (
        ("regeneration_rate", "Regeneration rate", "regenerated", "answered", "answered", cfg.max_regeneration_rate_rise),
        ("edit_rate", "Edit rate", "edited", "answered", "answered", cfg.max_edit_rate_rise),
        ("negative_feedback_rate", "Negative feedback rate", "negative_feedback", "feedback", "rated",
         cfg.max_negative_feedback_rate_rise),
    ):
        out.append(_metric(mid, name, _ratio(lt.get(key), lt.get(den)), _ratio(lp.get(key), lp.get(den)), kind="rate",
                           limit=limit, worse="up", fmt="{:.1%}", counts=(lt.get(key), lp.get(key)),
                           bases=(lt.get(den), lp.get(den)), base_label=label, min_base=cfg.min_base,
                           reason=no_labels))

    if present.get("lineage"):
        dt, dp = dataset.get("this", {}), dataset.get("prev", {})
        pass_counts = (dt.get("examples"), dp.get("examples"))
        pass_bases = (dt.get("requests"), dp.get("requests"))
        source = "dataset lineage: examples / requests"
        dup_counts = (dt.get("duplicates"), dp.get("duplicates"))
        dup_bases = ((dt.get("examples") or 0) + (dt.get("duplicates") or 0) if dt else None,
                     (dp.get("examples") or 0) + (dp.get("duplicates") or 0) if dp else None)
        eligible = float(dt.get("examples") or 0)
        dup_reason = None
    else:
        pass_counts = (lt.get("clean_examples"), lp.get("clean_examples"))
        pass_bases = (lt.get("requests"), lp.get("requests"))
        source = "audit clean_example flag"
        dup_counts, dup_bases = (None, None), (None, None)
        eligible = float(lt["clean_examples"]) if lt.get("clean_examples") is not None else None
        dup_reason = "dataset/lineage.parquet not found"
    out.append(_metric("filter_pass_rate", f"Filter pass rate ({source})", _ratio(*_pair(pass_counts, pass_bases, 0)),
                       _ratio(*_pair(pass_counts, pass_bases, 1)), kind="rate", limit=cfg.max_filter_pass_rate_drop,
                       worse="down", fmt="{:.1%}", counts=pass_counts, bases=pass_bases, base_label="requests",
                       min_base=cfg.min_base, reason=no_labels or dup_reason))
    out.append(_metric("duplicate_rate", "Duplicate rate among dataset candidates", _ratio(*_pair(dup_counts, dup_bases, 0)),
                       _ratio(*_pair(dup_counts, dup_bases, 1)), kind="rate", limit=cfg.max_duplicate_rate_rise,
                       worse="up", ceiling=cfg.max_duplicate_rate, fmt="{:.1%}", counts=dup_counts, bases=dup_bases,
                       base_label="candidates", min_base=cfg.min_base, reason=dup_reason))
    out.append(_metric("newly_eligible", "Newly eligible examples", eligible, None, kind="single",
                       floor=cfg.min_newly_eligible if cfg.min_newly_eligible > 0 else None,
                       reason=no_labels or dup_reason))
    return out


def _pair(counts: tuple[Any, Any], bases: tuple[Any, Any], i: int) -> tuple[Any, Any]:
    return counts[i], bases[i]


def task_shifts(mix: list[dict[str, Any]], cfg: WeeklyConfig) -> list[dict[str, Any]]:
    """Task types whose volume moved by more than `max_task_volume_change` (either way), with counts."""
    out = []
    for m in mix:
        this, prev = m["this_requests"], m["prev_requests"]
        if not prev or max(this, prev) < cfg.min_base:
            continue
        rel = round(this / prev - 1, 9)
        if abs(rel) > cfg.max_task_volume_change:
            out.append({"task_type": m["task_type"], "label": str(m["task_label"] or m["task_type"]),
                        "this_requests": this, "prev_requests": prev, "relative_change": rel,
                        "display": f"{prev:,} → {this:,} requests ({rel:+.0%}; shift beyond ±{cfg.max_task_volume_change:.0%})"})
    return out


def render_weekly_markdown(weekly: dict[str, Any]) -> str:
    from pipeline.report.render import md_escape

    lines = [
        "# Weekly data-quality report",
        "",
        f"This week {_span(weekly['this_week'])}, compared with {_span(weekly['previous_week'])} (seven-day windows "
        f"ending at the newest request, {weekly['this_week']['end_ts'][:16].replace('T', ' ')} UTC). Money in "
        f"{weekly['currency']} (USD × {weekly['usd_to_currency']}).",
        "",
        "Current " + md_escape(decision_line(weekly["decision"])).replace("decision:", "**decision**:", 1),
        "",
        f"**{len(weekly['regressions'])} regression(s)** (exit code {weekly['exit_code']}): a regression is a change "
        "for the worse beyond a relative limit; \"above limit\" (an absolute target missed) and \"shift\" (the mix "
        "moved) are shown, not counted.",
        "",
        *(["No previous week: the store holds no requests before this week, so nothing is compared.", ""]
          if weekly.get("no_previous_week") else []),
        "| Metric | This week vs previous | Limit | Result |",
        "|---|---|---|---|",
    ]
    for m in weekly["metrics"]:
        result = "**regression**" if m["regression"] else m["status"]
        lines.append(f"| {m['name']} | {md_escape(m['display'])} | {m['limit']} | {result} |")
    if weekly["task_shifts"]:
        lines += ["", "Task types whose volume shifted:", ""]
        lines += [f"- {md_escape(t['label'])} (`{md_escape(str(t['task_type']))}`): {t['display']}"
                  for t in weekly["task_shifts"]]
    if weekly["new_task_types"]:
        lines += ["", "New task types this week:", ""]
        lines += [f"- {md_escape(str(t['label']))} (`{md_escape(str(t['task_type']))}`): {t['requests']} requests"
                  for t in weekly["new_task_types"]]
    if weekly["task_mix"]:
        lines += ["", "| Task type | This week | Previous week | Change |", "|---|---:|---:|---:|"]
        lines += [f"| {md_escape(str(t['label']))} (`{md_escape(str(t['task_type']))}`) | {t['this_requests']:,} | "
                  f"{t['prev_requests']:,} | {_change(t['this_requests'], t['prev_requests'])} |" for t in weekly["task_mix"]]
    return "\n".join(lines) + "\n"


def _change(this: int, prev: int) -> str:
    return "new" if not prev else f"{this / prev - 1:+.0%}"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
