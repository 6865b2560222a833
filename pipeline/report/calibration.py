"""The report's "cache rules: documented vs calibrated" table (issue #13), from the cache audit's
`calibration` section (audit/cache_calibrate.py). Kept apart from the verdict and the charts: it
only explains which rules the simulated shares rest on and where they still disagree with the logs."""

from __future__ import annotations

from typing import Any

STATUS_TEXT = {
    "calibrated": "calibrated from the provider's reported cache reads",
    "documented_kept": "documented rules kept: the reported reads do not contradict them",
    "no_cache_fields": "documented rules: the logs carry no reported cache fields for this model",
    "not_applicable": "no prompt caching simulated for this model",
}


def rules_text(rules: dict[str, Any] | None) -> str | None:
    if not rules:
        return None
    ttl = rules.get("ttl_minutes")
    ttl_text = "—" if ttl is None else (f"{ttl / 60:g} h" if ttl >= 60 else f"{ttl:g} min")
    refresh = "refreshed on hit" if rules.get("refresh_on_hit") else "not refreshed on hit"
    return f"min {int(rules.get('min_tokens') or 0):,} tokens, TTL {ttl_text}, {refresh}"


def calibration_table(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """report.json `cache.calibration`: one row per model, plus the flagged ones with their cause."""
    if not section:
        return None
    if not section.get("enabled"):
        return {"enabled": False, "note": section.get("note"), "models": [], "flagged": []}
    rows = []
    for m in section.get("models") or []:
        rows.append({
            "model": m.get("model"),
            "provider": m.get("provider"),
            "status": m.get("status"),
            "status_text": STATUS_TEXT.get(str(m.get("status")), str(m.get("status"))),
            "documented": rules_text(m.get("documented")),
            "calibrated": rules_text(m.get("calibrated")),
            "changed": m.get("status") == "calibrated",
            "requests_with_cache_fields": m.get("requests_with_cache_fields"),
            "reported_share": m.get("reported_share"),
            "as_logged_share_documented": m.get("as_logged_share_documented"),
            "as_logged_share_calibrated": m.get("as_logged_share_calibrated"),
            "flag": m.get("flag"),
        })
    return {
        "enabled": True,
        "flag_gap": section.get("flag_gap"),
        "models": rows,
        "flagged": [{"model": r["model"], "cause": r["flag"]} for r in rows if r["flag"]],
    }
