"""The routing table: task fingerprint -> the candidate or the API, for a gateway to load.

Fingerprint rule (the audit's `system_fp`, `audit/sql/tasks_system_prompts.sql`): take the
request's system prompt (the top-level `system`, else a leading system/developer message), trim
it, lower-case it, replace every dynamic span (UUIDs, dates, times, e-mails, ids, numbers; the
patterns of `pipeline/similarity.py` `DYNAMIC_SPAN_PATTERNS`) by `#`, collapse whitespace runs to
one space, trim again; the fingerprint is the first 16 hex digits of the MD5 of that text.
`task_fingerprint()` below computes it. A task type lists every fingerprint its requests carried
(one per system-prompt version); a request whose fingerprint is in no routed task goes to the API.
Task types grouped without a stable system prompt have no fingerprint, and task types that share
a system prompt cannot be told apart by it: both stay on the API.

Written as `routing.json` (the table) and `litellm_router.yaml`: LiteLLM tag-based routing
(`router_settings.enable_tag_filtering`): each routed task type is a deployment of the
production model name tagged `logaudit-<task_type>`, served by the candidate, with the API
deployment tagged `default` as fallback; a gateway hook computes the fingerprint and sets the tag.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.evaluate.sqlfiles import fetch
from pipeline.workdir.paths import workdir_paths


def task_fingerprint(system_prompt: str) -> str:
    """The audit's system-prompt fingerprint of one prompt (see the module docstring)."""
    from pipeline.similarity import mask_dynamic

    return hashlib.md5(mask_dynamic(system_prompt.strip()).encode("utf-8")).hexdigest()[:16]


def task_fingerprints(workdir: Path) -> dict[str, dict[str, list[str]]]:
    """Per task type its system-prompt and tool-set fingerprints, from the audit's request labels."""
    path = workdir_paths(workdir).audit_table("request_labels")
    if not path.is_file():
        return {}
    out: dict[str, dict[str, list[str]]] = {}
    for r in fetch("task_fingerprints", labels=str(path)):
        entry = out.setdefault(r["task_type"], {"system": [], "tools": []})
        if r["system_fp"] not in entry["system"]:
            entry["system"].append(r["system_fp"])
        if r["tools_fp"] and r["tools_fp"] not in entry["tools"]:
            entry["tools"].append(r["tools_fp"])
    return out


def routing_table(candidate: str, model: str | None, tasks: list[dict[str, Any]],
                  fingerprints: dict[str, dict[str, list[str]]], models: dict[str, list[str]]) -> dict[str, Any]:
    routes = []
    owners: dict[str, set[str]] = {}
    for task, fps in fingerprints.items():
        for fp in fps["system"]:
            owners.setdefault(fp, set()).add(task)
    for t in tasks:
        fps = fingerprints.get(t["task_type"], {"system": [], "tools": []})
        target = t["decision"]
        reason = t["reason"]
        shared = sorted({o for fp in fps["system"] for o in owners[fp]} - {t["task_type"]})
        if target == "candidate" and not fps["system"]:
            target, reason = "api", "no system-prompt fingerprint to route on"
        elif target == "candidate" and shared:
            # One system prompt serving several task types (split by user template): a gateway
            # routing on the fingerprint cannot tell them apart, so the API keeps them all.
            target, reason = "api", f"its system prompt also serves {', '.join(shared)}: the fingerprint cannot tell them apart"
        routes.append({
            "task_type": t["task_type"], "label": t["label"], "target": target, "reason": reason,
            "tag": f"logaudit-{t['task_type']}", "system_fingerprints": fps["system"],
            "tool_set_fingerprints": fps["tools"], "production_models": models.get(t["task_type"], []),
            "score": t["score"], "delta": t["delta"], "n": t["n"],
        })
    return {
        "candidate": candidate, "candidate_model": model, "default": "api",
        "fingerprint_rule": __doc__.split("\n\n")[1].replace("\n", " "),
        "routes": routes,
    }


def litellm_router_yaml(table: dict[str, Any]) -> str:
    """A LiteLLM proxy config snippet (YAML; values JSON-quoted, which YAML reads as strings)."""
    q = json.dumps
    candidate_model = table["candidate_model"] or table["candidate"]
    lines = [
        "# LiteLLM router snippet written by `logaudit eval` (candidate " + q(table["candidate"]) + ").",
        "# Merge into your proxy config.yaml. A pre-call hook computes the task fingerprint of each request",
        "# (pipeline.evaluate.routing.task_fingerprint) and sends `tags: [<tag>]` for a routed fingerprint;",
        "# untagged requests go to the deployment tagged \"default\" (your API deployment).",
        "model_list:",
    ]
    routed = [r for r in table["routes"] if r["target"] == "candidate"]
    prod_models = sorted({m for r in routed for m in r["production_models"]})
    for r in routed:
        for prod in r["production_models"] or [candidate_model]:
            lines += [
                f"  - model_name: {q(prod)}   # {r['task_type']}: score {r['score']:.3f}, delta {r['delta']:+.3f}, n {r['n']}",
                "    litellm_params:",
                f"      model: {q('openai/' + candidate_model)}",
                "      api_base: os.environ/LOGAUDIT_CANDIDATE_API_BASE",
                f"      tags: [{q(r['tag'])}]",
                f"    model_info: {{fingerprints: [{', '.join(q(f) for f in r['system_fingerprints'])}]}}",
            ]
    for prod in prod_models:
        lines += [
            f"  - model_name: {q(prod)}   # the API, as today",
            "    litellm_params:",
            f"      model: {q(prod)}",
            "      tags: [\"default\"]",
        ]
    if not routed:
        lines.append("  []  # no task type passed: every request stays on the API")
    lines += ["router_settings:", "  enable_tag_filtering: true", ""]
    return "\n".join(lines)
