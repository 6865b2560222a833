"""AWS Bedrock bodies: the Converse API (also the shape of Amazon Nova InvokeModel bodies) and the
vendor-native InvokeModel bodies Bedrock passes through (Amazon Titan, Meta Llama, Mistral, AI21
Jurassic; Anthropic and Cohere shapes live in their own modules).

Traps: Converse `usage.inputTokens` EXCLUDES cache reads/writes (separate buckets); some
responses carry each cache count twice under two names (`cacheReadInputTokens` and
`cacheReadInputTokenCount`) — one value, never summed; vendor bodies often carry no usage at all
(the HTTP headers `x-amzn-bedrock-*-token-count` do, see `bedrock_header_usage`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline.ingest.bodies import (
    Body,
    body_format,
    body_parser,
    error_unless,
    finish,
    is_error_body,
    message,
    params,
    provider_from_model,
    tool_call,
    tools_json,
)
from pipeline.ingest.rows import Row, as_float, as_int, as_str, dumps, get_path, usage_buckets

_CONVERSE_BLOCKS = ("text", "toolUse", "toolResult", "image", "document", "cachePoint", "reasoningContent", "video", "guardContent")


def _first(d: Mapping[str, Any], *keys: str) -> int | None:
    """The first present alias of a count (Bedrock repeats some under two names: never add them)."""
    for k in keys:
        v = as_int(d.get(k))
        if v is not None:
            return v
    return None


def usage_converse(u: Any) -> Row:
    if not isinstance(u, dict):
        return usage_buckets()
    return usage_buckets(
        uncached=_first(u, "inputTokens", "inputTokenCount"),
        cache_read=_first(u, "cacheReadInputTokens", "cacheReadInputTokenCount"),
        write_unspecified=_first(u, "cacheWriteInputTokens", "cacheWriteInputTokenCount"),
        output=_first(u, "outputTokens", "outputTokenCount"),
        raw=u,
    )


def bedrock_header_usage(headers: Mapping[str, str]) -> Row:
    """Usage and latency from InvokeModel response headers (lower-cased names)."""
    inp = as_int(headers.get("x-amzn-bedrock-input-token-count"))
    out = as_int(headers.get("x-amzn-bedrock-output-token-count"))
    if inp is None and out is None:
        return {}
    raw = {k: v for k, v in headers.items() if k.startswith("x-amzn-bedrock-")}
    row = usage_buckets(
        uncached=inp,
        cache_read=as_int(headers.get("x-amzn-bedrock-cache-read-input-token-count")),
        write_unspecified=as_int(headers.get("x-amzn-bedrock-cache-write-input-token-count")),
        output=out,
        raw=raw,
    )
    latency = as_float(headers.get("x-amzn-bedrock-invocation-latency"))
    if latency is not None:
        row["latency_ms"] = latency
    return row


def invocation_metrics_usage(m: Any) -> Row:
    """`amazon-bedrock-invocationMetrics` (last event of an InvokeModel stream)."""
    if not isinstance(m, dict):
        return {}
    row = usage_buckets(
        uncached=as_int(m.get("inputTokenCount")),
        cache_read=as_int(m.get("cacheReadInputTokenCount")),
        write_unspecified=as_int(m.get("cacheWriteInputTokenCount")),
        output=as_int(m.get("outputTokenCount")),
        raw=m,
    )
    if as_float(m.get("invocationLatency")) is not None:
        row["latency_ms"] = as_float(m.get("invocationLatency"))
    if as_float(m.get("firstByteLatency")) is not None:
        row["ttft_ms"] = as_float(m.get("firstByteLatency"))
    return row


# --- Converse -----------------------------------------------------------------------------------


def _is_converse_content(messages: Any) -> bool:
    for m in messages if isinstance(messages, list) else []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and content:
            return all(isinstance(b, dict) and "type" not in b and any(k in b for k in _CONVERSE_BLOCKS) for b in content)
    return False


def _is_converse(req: Body, resp: Body) -> bool:
    if resp is not None:
        return isinstance(get_path(resp, "output", "message"), dict) and ("stopReason" in resp or "usage" in resp)
    if req is None:
        return False
    return "toolConfig" in req or "inferenceConfig" in req or _is_converse_content(req.get("messages"))


def _ttl(cp: Any) -> str:
    return as_str(cp.get("ttl")) if isinstance(cp, dict) and cp.get("ttl") else "5m"


def _converse_blocks(role: str, content: Any, index: int, breakpoints: list[dict]) -> list[dict]:
    if isinstance(content, str):
        return [message(role, content)]
    texts, calls, rest, results = [], [], [], []
    for j, b in enumerate(content or []):
        if not isinstance(b, dict):
            continue
        if "cachePoint" in b:
            breakpoints.append({"segment": "messages", "index": index, "block": j, "ttl": _ttl(b["cachePoint"])})
        elif isinstance(b.get("text"), str):
            texts.append(b["text"])
        elif isinstance(b.get("toolUse"), dict):
            tu = b["toolUse"]
            calls.append(tool_call(tu.get("toolUseId"), tu.get("name"), tu.get("input")))
        elif isinstance(b.get("toolResult"), dict):
            tr = b["toolResult"]
            parts = tr.get("content") or []
            text = "\n".join(p["text"] if isinstance(p.get("text"), str) else dumps(p.get("json")) or "" for p in parts if isinstance(p, dict)) or None
            results.append(message("tool", text, tool_call_id=as_str(tr.get("toolUseId"))))
        else:
            rest.append(b)
    msgs = []
    if texts or calls or rest or not results:
        msgs.append(message(role, "\n".join(texts) if texts else None, parts_json=dumps(rest), tool_calls=calls))
    return results + msgs if role == "user" else msgs + results


def converse_request(req: Mapping[str, Any]) -> Row:
    breakpoints: list[dict] = []
    system = []
    for i, b in enumerate(req.get("system") or []):
        if isinstance(b, dict):
            if "cachePoint" in b:
                breakpoints.append({"segment": "system", "index": i, "block": None, "ttl": _ttl(b["cachePoint"])})
            elif isinstance(b.get("text"), str):
                system.append(b["text"])
    tools = []
    for i, t in enumerate(get_path(req, "toolConfig", "tools") or []):
        if not isinstance(t, dict):
            continue
        if "cachePoint" in t:
            breakpoints.append({"segment": "tools", "index": i, "block": None, "ttl": _ttl(t["cachePoint"])})
        elif isinstance(t.get("toolSpec"), dict):
            spec = t["toolSpec"]
            tools.append({"name": spec.get("name"), "description": spec.get("description"),
                          "parameters": get_path(spec, "inputSchema", "json")})
    msgs: list[dict] = []
    for i, m in enumerate(req.get("messages") or []):
        if isinstance(m, dict):
            msgs += _converse_blocks(as_str(m.get("role")) or "user", m.get("content"), i, breakpoints)
    return {
        "model": as_str(req.get("modelId")),
        "system_text": "\n".join(system) if system else None,
        "messages": msgs,
        "tools_json": tools_json(tools),
        "cache_breakpoints": breakpoints or None,
        "request_params": params(req, {"messages", "system", "toolConfig", "modelId"}),
    }


def converse_response(resp: Mapping[str, Any]) -> Row:
    texts, calls, reasoning = [], [], []
    for b in get_path(resp, "output", "message", "content") or []:
        if not isinstance(b, dict):
            continue
        if isinstance(b.get("text"), str):
            texts.append(b["text"])
        elif isinstance(b.get("toolUse"), dict):
            tu = b["toolUse"]
            calls.append(tool_call(tu.get("toolUseId"), tu.get("name"), tu.get("input")))
        elif isinstance(b.get("reasoningContent"), dict):
            t = get_path(b, "reasoningContent", "reasoningText", "text")
            if isinstance(t, str):
                reasoning.append(t)
    raw = resp.get("stopReason")
    return {
        "response_text": "".join(texts) if texts else None,
        "response_tool_calls": calls or None,
        "response_reasoning": "\n".join(reasoning) if reasoning else None,
        "n_choices": 1,
        "finish_reason": finish(raw),
        "finish_reason_raw": as_str(raw),
        "latency_ms": as_float(get_path(resp, "metrics", "latencyMs")),
        "status_code": 200,
        **usage_converse(resp.get("usage")),
    }


parse_converse = body_format(
    "bedrock_converse",
    "AWS Bedrock Converse body (and Amazon Nova InvokeModel): request `messages[].content[]{text|toolUse|cachePoint}`, response `output.message` + `stopReason`",
    _is_converse,
    order=35,
)(body_parser("converse", "bedrock", request=converse_request, response=converse_response, is_error=error_unless("output")))


# --- vendor-native InvokeModel bodies ------------------------------------------------------------


def _prompt_request(prompt_key: str) -> Callable[[Mapping[str, Any]], Row]:
    """A vendor-native request: one user turn in `prompt_key`, the rest parameters."""

    def request(req: Mapping[str, Any]) -> Row:
        prompt = as_str(req.get(prompt_key))
        return {"messages": [message("user", prompt)] if prompt is not None else [],
                "request_params": params(req, {prompt_key})}

    return request


def _is_titan(req: Body, resp: Body) -> bool:
    if resp is not None:
        return "inputTextTokenCount" in resp or (isinstance(resp.get("results"), list) and "outputText" in str(resp["results"])[:500]) or "outputText" in resp
    return req is not None and "inputText" in req


def _titan_response(resp: Mapping[str, Any]) -> Row:
    results = resp.get("results") if isinstance(resp.get("results"), list) else [resp]
    first = results[0] if results and isinstance(results[0], dict) else {}
    raw = first.get("completionReason")
    out = as_int(first.get("tokenCount")) if "tokenCount" in first else as_int(first.get("totalOutputTextTokenCount"))
    inp = as_int(resp.get("inputTextTokenCount"))
    raw_usage = {k: v for k, v in (("inputTextTokenCount", inp), ("tokenCount", out)) if v is not None}
    return dict(response_text=as_str(first.get("outputText")), n_choices=len(results), finish_reason=finish(raw),
                finish_reason_raw=as_str(raw), status_code=200,
                **usage_buckets(uncached=inp, output=out, raw=raw_usage or None))


parse_titan = body_format("bedrock_titan", "Amazon Titan Text InvokeModel body: request `inputText`, response `results[].outputText`", _is_titan, order=36)(body_parser(
    "invoke", "bedrock", request=_prompt_request("inputText"), response=_titan_response,
    is_error=lambda resp: is_error_body(resp) or ("message" in resp and len(resp) == 1)))


def _is_llama(req: Body, resp: Body) -> bool:
    if resp is not None:
        return "generation" in resp and ("prompt_token_count" in resp or "generation_token_count" in resp or "stop_reason" in resp)
    return req is not None and "prompt" in req and "max_gen_len" in req


def _llama_response(resp: Mapping[str, Any]) -> Row:
    raw = resp.get("stop_reason")
    return dict(response_text=as_str(resp.get("generation")), n_choices=1, finish_reason=finish(raw),
                finish_reason_raw=as_str(raw), status_code=200,
                **usage_buckets(uncached=as_int(resp.get("prompt_token_count")), output=as_int(resp.get("generation_token_count")),
                                raw={k: resp[k] for k in ("prompt_token_count", "generation_token_count") if k in resp} or None))


parse_llama = body_format("bedrock_llama", "Meta Llama InvokeModel body: request `prompt` + `max_gen_len`, response `generation` + `*_token_count`", _is_llama, order=36)(
    body_parser("invoke", "bedrock", request=_prompt_request("prompt"), response=_llama_response))


def _is_mistral_invoke(req: Body, resp: Body) -> bool:
    if resp is not None:
        outs = resp.get("outputs")
        return isinstance(outs, list) and bool(outs) and isinstance(outs[0], dict) and "text" in outs[0] and "stop_reason" in outs[0]
    return False


def _mistral_response(resp: Mapping[str, Any]) -> Row:
    outs = [o for o in resp.get("outputs") or [] if isinstance(o, dict)]
    raw = outs[0].get("stop_reason") if outs else None
    return dict(response_text=as_str(outs[0].get("text")) if outs else None, n_choices=len(outs),
                finish_reason=finish(raw), finish_reason_raw=as_str(raw), status_code=200)


parse_mistral_invoke = body_format("bedrock_mistral", "Mistral InvokeModel body (Bedrock): response `outputs[].text` + `stop_reason`", _is_mistral_invoke, order=36)(
    body_parser("invoke", "bedrock", request=_prompt_request("prompt"), response=_mistral_response))


def _is_ai21(req: Body, resp: Body) -> bool:
    if resp is not None:
        return isinstance(resp.get("completions"), list) and isinstance(resp.get("prompt"), dict)
    return req is not None and "prompt" in req and "maxTokens" in req


def _ai21_response(resp: Mapping[str, Any]) -> Row:
    comps = [c for c in resp.get("completions") or [] if isinstance(c, dict)]
    first = comps[0] if comps else {}
    raw = get_path(first, "finishReason", "reason")
    prompt_tokens = get_path(resp, "prompt", "tokens")
    out_tokens = get_path(first, "data", "tokens")
    return dict(response_id=as_str(resp.get("id")), response_text=as_str(get_path(first, "data", "text")),
                n_choices=len(comps), finish_reason=finish(raw), finish_reason_raw=as_str(raw), status_code=200,
                # AI21 returns the tokens themselves; their counts are the usage.
                **usage_buckets(uncached=len(prompt_tokens) if isinstance(prompt_tokens, list) else None,
                                output=len(out_tokens) if isinstance(out_tokens, list) else None,
                                raw={"prompt_tokens": len(prompt_tokens) if isinstance(prompt_tokens, list) else None,
                                     "completion_tokens": len(out_tokens) if isinstance(out_tokens, list) else None}))


parse_ai21 = body_format("bedrock_ai21", "AI21 Jurassic InvokeModel body: response `completions[].data.text` (+ token lists)", _is_ai21, order=36)(
    body_parser("invoke", "bedrock", request=_prompt_request("prompt"), response=_ai21_response))


def vendor_hint(model_id: str | None) -> str | None:
    """The body format of an InvokeModel call to `model_id` (vendor-native bodies differ per vendor)."""
    m = (model_id or "").lower()
    for vendor, hint in (
        ("amazon.titan-text", "bedrock_titan"),
        ("amazon.nova", "bedrock_converse"),
        ("meta.", "bedrock_llama"),
        ("mistral.", "bedrock_mistral"),
        ("ai21.j2", "bedrock_ai21"),
        ("cohere.command-r", "cohere_chat_v1"),
        ("cohere.command", "cohere_generate"),
    ):
        if vendor in m:
            return hint
    return None


def model_provider(model_id: str | None) -> str | None:
    return provider_from_model(model_id)
