"""LangSmith `runs/batch` ingest payloads (`{post: [...], patch: [...]}`), as the SDK sends them
and as proxies or debugging hooks save them.

A run is created by a `post` item (`id`, `run_type`, `trace_id`, `dotted_order`, `inputs`) and
finished by a `patch` item with the same `id` (`outputs` with `usage_metadata`, `end_time`,
`error`). Post and patch usually travel in different payloads, even different files, so items are
merged by run id: a run whose post and patch are in the same payload becomes a row at once; the
others wait until the end of the run (a post never patched still becomes a row, its usage
missing; a lone patch becomes one when it holds a model call's output). The merged run is read by
`langsmith.parse_run`, like a run export: only `llm` runs are model calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.formats.langsmith import parse_run
from pipeline.ingest.rows import RecordError, Row, Skip

NAME = "langsmith_batch"
_KEYS = frozenset({"post", "patch", "create", "update"})


def _items(rec: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = rec.get(key)
    return [i for i in value if isinstance(i, dict) and i.get("id")] if isinstance(value, list) else []


def _is_batch(rec: Mapping[str, Any]) -> bool:
    if not rec or not set(rec) <= _KEYS or not any(isinstance(rec.get(k), list) for k in ("post", "patch")):
        return False
    items = _items(rec, "post") + _items(rec, "patch")
    return bool(items) and all("trace_id" in i or "dotted_order" in i or "run_type" in i for i in items[:5])


def _merge(post: Mapping[str, Any] | None, patch: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(post or {})
    for k, v in (patch or {}).items():
        if v is None or v == {} or v == []:
            continue
        if k == "extra" and isinstance(merged.get("extra"), dict) and isinstance(v, dict):
            merged["extra"] = {**merged["extra"], **v,
                               "metadata": {**(merged["extra"].get("metadata") or {}), **(v.get("metadata") or {})}}
        else:
            merged[k] = v
    return merged


def _looks_like_call(run: Mapping[str, Any]) -> bool:
    if run.get("run_type"):
        return run["run_type"] == "llm"
    out = run.get("outputs")
    return isinstance(out, dict) and any(k in out for k in ("choices", "generations", "usage_metadata", "llm_output"))


def _row(ctx: Context, run: Mapping[str, Any], src: tuple[str, int]) -> list[Row]:
    rows = list(parse_run({**run, "run_type": run.get("run_type") or "llm"}, ctx))
    for row in rows:
        row.update(source_format=NAME, source_file=src[0], source_line=src[1])
    return rows


@record_format(
    NAME,
    "LangSmith `runs/batch` payload (`{post: [...], patch: [...]}` run items with `trace_id`/`dotted_order`): "
    "post and patch merged by run id (across payloads and files); `llm` runs only",
    _is_batch,
    finish=lambda ctx: _finish(ctx),
    order=30,
)
def parse_batch(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    posts = {str(i["id"]): i for i in _items(rec, "post")}
    patches = {str(i["id"]): i for i in _items(rec, "patch")}
    pending = ctx.format_state(NAME)
    rows: list[Row] = []
    for run_id in [*posts, *(k for k in patches if k not in posts)]:
        post, patch = posts.get(run_id), patches.get(run_id)
        run_type = (post or {}).get("run_type")
        if run_type and run_type != "llm":
            ctx.skip_item("not_an_llm_call", f"LangSmith `{run_type}` run {run_id}")
            continue
        if post is not None and (patch is not None or post.get("end_time")):
            try:
                rows += _row(ctx, _merge(post, patch), (ctx.source_file, ctx.source_line))
            except (RecordError, Skip) as e:
                ctx.skip_item(e.reason, f"run {run_id}: {e.detail}")
            continue
        side = "posts" if post is not None else "patches"
        pending.setdefault(side, {})[run_id] = {"item": post or patch, "src": [ctx.source_file, ctx.source_line]}
    return rows


def _finish(ctx: Context) -> Iterator[Row]:
    state = ctx.format_state(NAME)
    posts, patches = state.get("posts", {}), state.get("patches", {})
    for run_id in sorted({*posts, *patches}):
        post, patch = posts.get(run_id), patches.get(run_id)
        run = _merge(post and post["item"], patch and patch["item"])
        if not _looks_like_call(run):
            continue
        src = (post or patch)["src"]
        try:
            yield from _row(ctx, run, (src[0], src[1]))
        except Skip:
            continue
        except RecordError as e:
            ctx.reject(src[0], src[1], e.reason, f"run {run_id}: {e.detail}")
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
            ctx.reject(src[0], src[1], "malformed_record", f"run {run_id}: {type(e).__name__}: {e}")
