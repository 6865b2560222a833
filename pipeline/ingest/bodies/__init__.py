"""Provider request/response BODIES -> the content and usage columns of a row.

Many log formats wrap the same provider bodies (the envelope, batch files, gateway exports, HTTP
captures, traces), so body parsing lives here, once, and wrappers call
`parse_bodies(request, response)`. A body format is registered with `@body_format`; the first whose
`detect` accepts the pair wins, so the modules are imported below in detection order (specific
shapes before the generic OpenAI-compatible chat shape).

Every provider body is parsed by one skeleton (`body_parser`): start a row (endpoint, provider),
fill it from the request, then from the response: `error_body` when the response is an error,
else the provider's response parser. A provider module holds only what differs: its request and
response parsers, what marks its error bodies, and a hook for what it decides last (the provider
behind an OpenAI-compatible host, request fields a response echoes). Records that carry a call in
pieces go through `bodies.partial` first.

Streamed responses are reduced to the equivalent non-streamed body first (`bodies.streams`), so
one parser serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.ingest.rows import RecordError, Row, as_str, bounded, dumps, normalize_finish

Body = Mapping[str, Any] | None


@dataclass(frozen=True)
class BodyFormat:
    name: str
    detect: Callable[[Body, Body], bool]
    parse: Callable[[Body, Body], Row]
    description: str
    order: int = 50


BODY_FORMATS: list[BodyFormat] = []


def body_format(name: str, description: str, detect: Callable[[Body, Body], bool], order: int = 50):  # noqa: ANN201
    """Register a body parser. Detection runs in ascending `order` (distinctive shapes first, the
    generic OpenAI-compatible chat shape last); equal orders keep registration order."""

    def wrap(parse: Callable[[Body, Body], Row]) -> Callable[[Body, Body], Row]:
        BODY_FORMATS.append(BodyFormat(name, detect, parse, description, order))
        BODY_FORMATS.sort(key=lambda f: f.order)
        return parse

    return wrap


def detect_body(request: Body, response: Body) -> BodyFormat | None:
    for fmt in BODY_FORMATS:
        try:
            if fmt.detect(request, response):
                return fmt
        except (AttributeError, TypeError, KeyError):
            continue
    return None


def body_format_named(name: str | None) -> BodyFormat | None:
    return next((f for f in BODY_FORMATS if f.name == name), None) if name else None


def parse_bodies(request: Any, response: Any, *, hint: str | None = None) -> Row:
    """Parse a provider request/response pair (either may be None) into row columns.

    `hint` names a body format to use when shape detection is ambiguous (e.g. an endpoint path).
    Raises RecordError when neither body is a recognized provider format.
    """
    req = request if isinstance(request, dict) else None
    resp = response if isinstance(response, dict) else None
    if request is not None and req is None:
        raise RecordError("wrong_type", f"request body is {type(request).__name__}, expected an object")
    if response is not None and resp is None:
        raise RecordError("wrong_type", f"response body is {type(response).__name__}, expected an object")
    fmt = body_format_named(hint) or detect_body(req, resp)
    if fmt is None:
        if resp is not None and is_error_body(resp):
            return {**(parse_bodies(req, None) if req is not None and detect_body(req, None) else {}), **error_body(resp)}
        keys = sorted({*(req or {}).keys(), *(resp or {}).keys()})[:12]
        raise RecordError("unknown_body_format", f"request/response bodies not recognized (keys: {', '.join(keys)})")
    return fmt.parse(req, resp)


# --- the one parse skeleton -----------------------------------------------------------------------

Parser = Callable[[Mapping[str, Any]], Row]
Hook = Callable[[Row, Body, Body], None]
AnsweredHook = Callable[[Row, Body, Mapping[str, Any]], None]


def body_parser(
    endpoint: str,
    provider: str | None = None,
    *,
    request: Parser | None = None,
    response: Parser,
    is_error: Callable[[Mapping[str, Any]], bool] | None = None,
    model_from_response: bool = False,
    answered: AnsweredHook | None = None,
    then: Hook | None = None,
) -> Callable[[Body, Body], Row]:
    """A body format's parse function, `(request, response) -> row`, built on the one skeleton.

    The row starts as `{endpoint, provider}`; `request(req)` fills it when a request was logged; a
    logged response fills it through `error_body` when `is_error(resp)` (None: the format has no
    error shape), else through `response(resp)`, after which `answered(row, req, resp)` may add what
    needs both sides. With `model_from_response` the model the response names stands in for a
    request that named none. `then(row, req, resp)` runs last either way.
    """

    def parse(req: Body, resp: Body) -> Row:
        row: Row = {"endpoint": endpoint, "provider": provider} if provider else {"endpoint": endpoint}
        if req is not None and request is not None:
            row.update(request(req))
        if resp is not None:
            if is_error is not None and is_error(resp):
                row.update(error_body(resp))
            else:
                row.update(response(resp))
                if answered is not None:
                    answered(row, req, resp)
        if model_from_response:
            row["model"] = row.get("model") or row.get("model_resolved")
        if then is not None:
            then(row, req, resp)
        return row

    return parse


def error_unless(key: str) -> Callable[[Mapping[str, Any]], bool]:
    """An error body that does not also carry the format's answer field `key`."""
    return lambda resp: is_error_body(resp) and key not in resp


# --- shared helpers for the body modules ------------------------------------------------------

TEXT_TYPES = ("text", "input_text", "output_text")


def text_of(content: Any, text_types: Iterable[str] = TEXT_TYPES) -> str | None:
    """Text of string-or-parts content; non-text parts are left to `other_parts`."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            p.get("text")
            for p in content
            if isinstance(p, dict) and p.get("type", "text") in text_types and isinstance(p.get("text"), str)
        ]
        texts += [p for p in content if isinstance(p, str)]
        return "\n".join(texts) if texts else None
    return as_str(content)


def other_parts(content: Any, text_types: Iterable[str] = TEXT_TYPES) -> str | None:
    if not isinstance(content, list):
        return None
    rest = [p for p in content if isinstance(p, dict) and p.get("type", "text") not in text_types]
    return dumps(rest)


def message(
    role: str,
    content: str | None = None,
    *,
    parts_json: str | None = None,
    tool_calls: list[dict] | None = None,
    tool_call_id: str | None = None,
    name: str | None = None,
) -> dict:
    return {
        "role": role,
        "content": content,
        "parts_json": parts_json,
        "tool_calls": tool_calls or None,
        "tool_call_id": tool_call_id,
        "name": name,
    }


def tool_call(id_: Any, name: Any, arguments: Any, type_: str = "function") -> dict:
    args = arguments if isinstance(arguments, str) or arguments is None else dumps(arguments) or "{}"
    return {"id": as_str(id_), "type": type_, "name": as_str(name), "arguments": args}


def tools_json(tools: list[dict]) -> str | None:
    return dumps(tools) if tools else None


def params(req: Mapping[str, Any], exclude: set[str]) -> str | None:
    return dumps({k: v for k, v in req.items() if k not in exclude})


# Spellings `rows.normalize_finish` does not know, mapped to one it does.
_FINISH_ALIASES = {
    "FINISH": "stop",  # Amazon Titan
    "LENGTH": "length",
    "CONTENT_FILTERED": "content_filter",
    "requires_action": "tool_calls",  # Gemini Interactions waiting for a tool result
    "tool_call": "tool_calls",  # OTel GenAI finish reason
    "max_length": "length",
    "eos_token": "stop",
    "eos": "stop",
    "end": "stop",
    "ERROR_TOXIC": "content_filter",
    "USER_CANCEL": "error",
}


def finish(raw: Any) -> str | None:
    """Normalized finish reason (see `rows.normalize_finish`) with a few more provider spellings."""
    if raw is None:
        return None
    alias = _FINISH_ALIASES.get(str(raw))
    return normalize_finish(alias if alias else raw)


# Model-name prefixes -> provider. Checked on the model id with any "vendor/" routing prefix
# and Bedrock region/vendor prefix removed, so "groq/llama-3" is decided by `groq/` first.
_MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("claude", "anthropic"),
    ("gpt-", "openai"),
    ("gpt4", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt", "openai"),
    ("text-davinci", "openai"),
    ("davinci", "openai"),
    ("babbage", "openai"),
    ("computer-use", "openai"),
    ("codex", "openai"),
    ("deepseek", "deepseek"),
    ("grok", "xai"),
    ("gemini", "google"),
    ("gemma", "google"),
    ("mistral", "mistral"),
    ("magistral", "mistral"),
    ("ministral", "mistral"),
    ("codestral", "mistral"),
    ("pixtral", "mistral"),
    ("devstral", "mistral"),
    ("open-mistral", "mistral"),
    ("open-mixtral", "mistral"),
    ("mixtral", "mistral"),
    ("command", "cohere"),
    ("c4ai", "cohere"),
    ("sonar", "perplexity"),
    ("qwen", "alibaba"),
    ("qwq", "alibaba"),
    ("llama", "meta"),
    ("titan", "amazon"),
    ("nova", "amazon"),
    ("j2-", "ai21"),
    ("jamba", "ai21"),
    ("kimi", "moonshot"),
    ("moonshot", "moonshot"),
    ("glm", "zhipu"),
)
# Routing prefixes that name the serving provider ("groq/llama-3.3", "anthropic/claude-…").
_ROUTE_PREFIXES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "groq": "groq",
    "xai": "xai",
    "x-ai": "xai",
    "deepseek": "deepseek",
    "mistral": "mistral",
    "mistralai": "mistral",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "bedrock": "bedrock",
    "azure": "azure",
    "together_ai": "together",
    "togethercomputer": "together",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
}
# Bedrock model ids: "<geo>.<vendor>.<model>-v1:0"; the call is served (and billed) by Bedrock.
_BEDROCK_VENDORS = ("anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "deepseek.", "writer.", "qwen.", "openai.")


def provider_from_model(model: str | None, default: str | None = None) -> str | None:
    """Infer the provider from a model id; `default` when the name says nothing.

    Names are only a hint: an OpenAI-compatible host serving someone else's model (Groq serving
    Llama, Azure serving DeepSeek) is identified by its usage keys or URL, which callers check first.
    """
    m = (model or "").strip().lower()
    if not m:
        return default
    if m.startswith("arn:aws:bedrock") or _is_bedrock_model_id(m):
        return "bedrock"
    if "/" in m:
        route, rest = m.split("/", 1)
        if route in _ROUTE_PREFIXES and route not in ("mistralai", "google", "togethercomputer"):
            return _ROUTE_PREFIXES[route]
        m = rest
    for prefix, provider in _MODEL_PREFIXES:
        if m.startswith(prefix):
            return provider
    return default


def _is_bedrock_model_id(m: str) -> bool:
    parts = m.split(".")
    if len(parts) >= 3 and len(parts[0]) <= 4 and (parts[1] + ".") in _BEDROCK_VENDORS:
        return True  # cross-region inference profile, e.g. "us.anthropic.claude-…"
    return m.startswith(_BEDROCK_VENDORS) and (":" in m or "-v" in m)


def is_error_body(resp: Mapping[str, Any]) -> bool:
    err = resp.get("error")
    if isinstance(err, dict) and ("message" in err or "type" in err or "code" in err):
        return True
    return resp.get("type") == "error" or (isinstance(err, str) and len(resp) <= 4)


def error_body(resp: Mapping[str, Any]) -> Row:
    """`{error: {type, code, message}}` (OpenAI, Gemini) / `{type: "error", error: {...}}` (Anthropic)
    / `{message}` (AWS)."""
    err = resp.get("error")
    status = None
    if isinstance(err, dict):
        etype = err.get("type") or err.get("status") or err.get("code")
        msg = err.get("message")
        code = err.get("code")
        status = code if isinstance(code, int) and 100 <= code < 600 else None
    elif err is not None:
        etype, msg = resp.get("type"), err
    else:
        etype, msg = resp.get("__type") or resp.get("type"), resp.get("message") or resp.get("Message")
    return {
        "finish_reason": "error",
        "error_type": as_str(etype) or "error",
        "error_message": bounded(as_str(msg)),
        "response_id": as_str(resp.get("request_id")),
        "response_text": None,
        **({"status_code": status} if status else {}),
    }


# Importing the modules registers their body formats (detection order comes from each `order`).
from pipeline.ingest.bodies import (  # noqa: E402,F401
    anthropic,
    bedrock,
    cohere,
    gemini,
    openai_chat,
    responses,
)
