"""AWS Bedrock model-invocation logging records (`schemaType: ModelInvocationLog`, formats.md §e),
as delivered to CloudWatch Logs or S3 (`…/BedrockModelInvocationLogs/…`, gzipped JSON lines).

Traps: token counts at `input.inputTokenCount` / `output.outputTokenCount` EXCLUDE the cache
counts beside them (`cacheReadInputTokenCount`, `cacheWriteInputTokenCount`); the body schema
depends on `operation` (Converse* use Bedrock's Converse shape, Invoke* the model vendor's own);
streaming operations log `outputBodyJson` as an ARRAY of stream events; bodies over 100 KB are
offloaded to S3 (`inputBodyS3Path` / `outputBodyS3Path`, the inline body is null) — such a record
still yields its row (counts, model, timing) with the missing body noted in `metadata_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.ingest.bodies import parse_bodies
from pipeline.ingest.bodies.bedrock import vendor_hint
from pipeline.ingest.bodies.streams import reduce_events
from pipeline.ingest.formats import Context, record_format
from pipeline.ingest.rows import (
    RecordError,
    Row,
    as_int,
    as_str,
    bounded,
    dumps,
    get_path,
    make_row,
    parse_ts,
    usage_buckets,
)

NAME = "bedrock_invocation_log"


def _is_invocation_log(rec: Mapping[str, Any]) -> bool:
    return rec.get("schemaType") == "ModelInvocationLog"


def _usage(inp: Mapping[str, Any], out: Mapping[str, Any], rec: Mapping[str, Any]) -> Row:
    def count(side: Mapping[str, Any], key: str) -> int | None:
        v = as_int(side.get(key))
        return v if v is not None else as_int(rec.get(key))  # older records carry counts at top level

    raw = {k: v for k, v in {**inp, **out}.items() if k.endswith("TokenCount")}
    return usage_buckets(
        uncached=count(inp, "inputTokenCount"),
        cache_read=count(inp, "cacheReadInputTokenCount"),
        write_unspecified=count(inp, "cacheWriteInputTokenCount"),
        output=count(out, "outputTokenCount"),
        raw=raw or None,
    )


@record_format(
    NAME,
    "AWS Bedrock model-invocation log record: `schemaType: ModelInvocationLog` (+ `operation`, `modelId`, `input`/`output` "
    "with token counts and inline or S3-offloaded bodies)",
    _is_invocation_log,
    order=10,
)
def parse_invocation(rec: Mapping[str, Any], ctx: Context) -> list[Row]:
    operation = as_str(rec.get("operation")) or ""
    model_id = as_str(rec.get("modelId"))
    inp = rec.get("input") if isinstance(rec.get("input"), dict) else {}
    out = rec.get("output") if isinstance(rec.get("output"), dict) else {}
    req_body, resp_body = inp.get("inputBodyJson"), out.get("outputBodyJson")
    notes: dict[str, Any] = {}
    if req_body is None and inp.get("inputBodyS3Path"):
        notes["request_body_unavailable"] = f"offloaded to {inp['inputBodyS3Path']}"
    if resp_body is None and out.get("outputBodyS3Path"):
        notes["response_body_unavailable"] = f"offloaded to {out['outputBodyS3Path']}"
    streamed = operation.endswith("Stream") or isinstance(resp_body, list)
    extras: Row = {}
    if isinstance(resp_body, list):
        resp_body, extras = reduce_events(resp_body)
    converse = operation.startswith("Converse")
    hint = "bedrock_converse" if converse else vendor_hint(model_id)
    fields: Row = {}
    if isinstance(req_body, dict) or isinstance(resp_body, dict):
        try:
            fields = parse_bodies(req_body if isinstance(req_body, dict) else None,
                                  resp_body if isinstance(resp_body, dict) else None, hint=hint)
        except RecordError as e:
            notes["body_not_parsed"] = e.detail  # counts and timing below still make a useful row
    usage = _usage(inp, out, rec)
    if usage["usage_missing"] and extras.get("usage_missing") is False:
        usage = {k: v for k, v in extras.items() if k.startswith(("in_", "out_", "usage_"))}
    if usage["usage_missing"]:
        usage = {}  # fall back to whatever the body reported
    error = as_str(rec.get("errorCode"))
    meta = {
        "operation": operation,
        "region": rec.get("region"),
        "inference_region": rec.get("inferenceRegion"),
        "account_id": rec.get("accountId"),
        "request_metadata": rec.get("requestMetadata"),
        **notes,
    }
    return [
        make_row(
            fields,
            record=rec,
            request_id=as_str(rec.get("requestId")),
            ts=parse_ts(rec.get("timestamp")),
            provider="bedrock",
            endpoint="converse" if converse else "invoke",
            model=model_id,
            user_id=as_str(get_path(rec, "identity", "arn")),
            is_stream=streamed,
            latency_ms=extras.get("latency_ms"),
            ttft_ms=extras.get("ttft_ms"),
            finish_reason="error" if error else None,
            error_type=error,
            error_message=bounded(as_str(rec.get("errorMessage") or rec.get("status"))) if error else None,
            metadata_json=dumps({k: v for k, v in meta.items() if v not in (None, "", {})}),
            **usage,
        )
    ]
