"""Token accounting: render a request's prompt as content blocks, tokenize each distinct text
once, attribute input tokens to segments and calibrate the estimate to the reported usage.

A prompt is rendered in provider cache order (formats.md §k: tools -> system -> messages) as a
list of `Block`s: one per tool definition, one for the system text, one per message. Each block is
tokenized separately, so a block's tokens depend only on its own text and a text that repeats
across thousands of requests (system prompt, tool schema, a conversation's earlier turns) is
tokenized once: `TokenMemo` keys token arrays by a 64-bit content hash.

Segments (what the input is made of):
  tools     tool definitions
  system    system / developer instructions
  history   earlier conversation: every message up to and including the last assistant turn
  new_turn  what was added since the model last spoke (the user message, tool results) plus the
            reply priming
Chat formats wrap each message in a few role/separator tokens that no public text shows; like
OpenAI's cookbook counter (and the sample generator), we add MESSAGE_OVERHEAD per message and
REPLY_OVERHEAD per request, then calibrate the total against the provider's reported input.

Encodings: o200k_base (or cl100k_base for gpt-4/3.5-era models) via `pipeline.tokens`, loaded
offline. Claude, Gemini and other models without a public tokenizer are approximated with
o200k_base and calibrated per model; `encoding_note` says which encoding approximated which model.
"""

from __future__ import annotations

import functools
import json
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa

from pipeline.tokens import (
    SPLIT_MIN_CHARS,
    encoding_name_for,
    get_encoding,
    is_approximate,
    long_text_paragraphs,
    text_key,
)
from pipeline.workdir.store import list_values, present_values, string_values, table_rows

MESSAGE_OVERHEAD = 3
REPLY_OVERHEAD = 3
SEGMENTS = ("tools", "system", "history", "new_turn")

# Role/separator pseudo-tokens: ids far above any real vocabulary (< 2^18), so they never equal a
# real token, yet they make the role part of the token sequence the cache simulation hashes.
_PSEUDO_BASE = 1 << 30
_ROLE_IDS = {"system": 1, "developer": 1, "user": 2, "assistant": 3, "tool": 4, "function": 4}


class Block(NamedTuple):
    """One content block of a rendered prompt (a named tuple: a frozen dataclass cost more to build
    than the rest of a block, several per request)."""

    segment: str  # tools | system | history | new_turn
    text: str  # the text that is tokenized
    key: int  # content hash of everything that makes the block what it is (role, ids, text)
    role: str | None  # message role; None for tool definitions
    provider_message: int  # index of the provider message this block came from (-1: not a message)


@functools.cache
def _pseudo(role: str | None) -> np.ndarray:
    """A role's pseudo-tokens (one read-only array per role, shared)."""
    if role is None:
        out = np.zeros(0, dtype=np.uint32)
    else:
        r = _ROLE_IDS.get(role, 5)
        out = np.array([_PSEUDO_BASE + r, _PSEUDO_BASE + 16, _PSEUDO_BASE + 17], dtype=np.uint32)[:MESSAGE_OVERHEAD]
    out.flags.writeable = False
    return out


def _message_text(m: dict[str, Any]) -> str:
    return _text_of(m.get("content"), m.get("parts_json"), m.get("tool_calls"))


def _text_of(content: str | None, parts_json: str | None, tool_calls: list[dict[str, Any]] | None) -> str:
    parts = [content or ""]
    if parts_json:
        parts.append(parts_json)
    for tc in tool_calls or []:
        parts.append(f"{tc.get('name') or ''} {tc.get('arguments') or ''}")
    return "\n".join(p for p in parts if p) if len(parts) > 1 else parts[0]


def _key(*parts: str | None) -> int:
    return text_key("\x1f".join([p or "" for p in parts]))


_TOOLS_CACHE: OrderedDict[tuple[str, str], list[str]] = OrderedDict()


def _wire_tool(tool: Any, provider: str) -> Any:
    """A normalized tool definition back in its provider's wire shape, which is closer to what the
    provider tokenizes than our normalized form."""
    if not isinstance(tool, dict):
        return tool
    if provider in ("anthropic", "bedrock"):
        out = {"name": tool.get("name"), "description": tool.get("description"),
               "input_schema": tool.get("parameters")}
        if tool.get("type"):
            out["type"] = tool["type"]
        return {k: v for k, v in out.items() if v is not None}
    fn = {k: tool.get(k) for k in ("name", "description", "parameters") if tool.get(k) is not None}
    return {"type": "function", "function": fn}


def _tool_texts(tools_json: str, provider: str) -> list[str]:
    """One text per tool definition; concatenated they are the compact JSON list the request sent
    (memoized: the same schemas repeat across requests)."""
    key = (provider, tools_json)
    cached = _TOOLS_CACHE.get(key)
    if cached is None:
        try:
            tools = orjson.loads(tools_json)
        except orjson.JSONDecodeError:
            tools = [tools_json]
        if not isinstance(tools, list):
            tools = [tools]
        texts = [t if isinstance(t, str) else json.dumps(_wire_tool(t, provider), ensure_ascii=False,
                                                         separators=(",", ":")) for t in tools]
        cached = [("[" if i == 0 else ",") + t + ("]" if i == len(texts) - 1 else "") for i, t in enumerate(texts)]
        _TOOLS_CACHE[key] = cached
        if len(_TOOLS_CACHE) > 10_000:
            _TOOLS_CACHE.popitem(last=False)
    return cached


def request_blocks(
    system_text: str | None, messages: list[dict[str, Any]] | None, tools_json: str | None, provider: str | None = None,
) -> list[Block]:
    """The prompt as content blocks in provider cache order (tools, system, messages)."""
    msgs = messages or []
    return _blocks(system_text, tools_json, provider, [m.get("role") for m in msgs], [_message_text(m) for m in msgs],
                   [m.get("name") for m in msgs], [m.get("tool_call_id") for m in msgs])


@dataclass(frozen=True)
class MessageColumns:
    """A batch's `messages` column flattened: one list per message field over every message of the
    batch, and each request's range of them (no dict per message: what `request_blocks` reads of a
    message, straight from Arrow)."""

    offsets: list[int]
    roles: list[str | None]
    texts: list[str]
    names: list[str | None]
    tool_call_ids: list[str | None]

    @classmethod
    def of(cls, column: pa.Array | pa.ChunkedArray) -> MessageColumns:
        offsets, values = list_values(column)

        def strings(name: str) -> list[Any]:
            return string_values(values.field(name))

        content, parts_json = strings("content"), strings("parts_json")
        calls = present_values(values.field("tool_calls"))
        texts = [_text_of(c, pj, calls.get(i)) for i, (c, pj) in enumerate(zip(content, parts_json, strict=True))]
        return cls(offsets, strings("role"), texts, strings("name"), strings("tool_call_id"))

    def blocks(self, i: int, system_text: str | None, tools_json: str | None, provider: str | None,
               limit: int | None = None, trailing_assistant: bool = False) -> list[Block]:
        """Request i's `request_blocks`; `limit`: only its first messages; `trailing_assistant`: an
        empty assistant message after them (when any)."""
        lo, hi = self.offsets[i], self.offsets[i + 1]
        if limit is not None:
            hi = min(hi, lo + max(limit, 0))
        roles, texts = self.roles[lo:hi], self.texts[lo:hi]
        names, ids = self.names[lo:hi], self.tool_call_ids[lo:hi]
        if trailing_assistant and hi > lo:
            roles, texts, names, ids = [*roles, "assistant"], [*texts, ""], [*names, None], [*ids, None]
        return _blocks(system_text, tools_json, provider, roles, texts, names, ids)


def prompt_rows(batch: pa.RecordBatch) -> tuple[list[dict[str, Any]], MessageColumns]:
    """A batch's rows: the scalar columns as dicts, the messages as columns (a dict per message
    would cost several times the Arrow, and more than the rest of the row). Timestamps come as
    integer microseconds since the epoch (a time-zone-aware `datetime` costs ~25 µs a row to
    build, more than the rest of the row)."""
    scalars = batch.drop_columns(["messages"])
    for i, column in enumerate(scalars.schema):
        if pa.types.is_timestamp(column.type):
            micros = scalars.column(i).cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64())
            scalars = scalars.set_column(i, column.name, micros)
    return table_rows(scalars), MessageColumns.of(batch.column("messages"))


def _blocks(system_text: str | None, tools_json: str | None, provider: str | None, roles: list[str | None],
            texts: list[str], names: list[str | None], tool_call_ids: list[str | None]) -> list[Block]:
    blocks: list[Block] = []
    if tools_json:
        for t in _tool_texts(tools_json, (provider or "").lower()):
            blocks.append(Block("tools", t, _key("tool", t), None, -1))
    if system_text:
        blocks.append(Block("system", system_text, _key("system", system_text), "system", -1))
    last_assistant = len(roles) - 1 - roles[::-1].index("assistant") if "assistant" in roles else -1
    provider_message = -1
    prev_side = None
    leading_system = True
    for i, (role_or_none, text) in enumerate(zip(roles, texts, strict=True)):
        role = role_or_none or "user"
        if leading_system and role in ("system", "developer"):
            # Some sources keep the system prompt as the first message: it is still the system
            # segment, and the same text as a `system_text` elsewhere (same key, same cache entry).
            blocks.append(Block("system", text, _key("system", text), "system", -1))
            continue
        leading_system = False
        # Anthropic sends tool results inside a user message; ingest splits them out as role=tool.
        # Consecutive user/tool messages therefore map back to one provider message (used to place
        # logged breakpoints, whose index counts provider messages).
        side = "assistant" if role == "assistant" else "user"
        if side != prev_side:
            provider_message += 1
            prev_side = side
        key = _key(role, names[i], tool_call_ids[i], text)
        blocks.append(Block("history" if i <= last_assistant else "new_turn", text, key, role, provider_message))
    return blocks


class TokenMemo:
    """Token arrays keyed by (encoding, content hash), bounded by the number of tokens held.

    One plain dict per encoding keyed by the 64-bit hash: a block seen before costs one dictionary
    lookup (no key tuple, no recency bookkeeping). When the budget is exceeded the oldest texts of
    the encoding are dropped; a dropped entry only costs a re-tokenization, never a wrong count.
    """

    def __init__(self, max_tokens: int = 40_000_000) -> None:
        self._arrays: dict[str, dict[int, np.ndarray]] = {}
        self._held = 0
        self._max = max_tokens
        self.hits = 0
        self.misses = 0
        self.tokens_encoded = 0

    def _table(self, encoding: str) -> dict[int, np.ndarray]:
        table = self._arrays.get(encoding)
        if table is None:
            table = self._arrays[encoding] = {}
        return table

    def tokens(self, encoding: str, text: str, key: int | None = None) -> np.ndarray:
        table = self._table(encoding)
        k = text_key(text) if key is None else key
        arr = table.get(k)
        if arr is not None:
            self.hits += 1
            return arr
        self.misses += 1
        if parts := long_text_paragraphs(text, SPLIT_MIN_CHARS):
            # the tokens of a long text are its paragraphs' in order (`pipeline.tokens.paragraphs`),
            # each memoized: a template that differs by one line per request is encoded once
            arr = np.concatenate([self.tokens(encoding, part) for part in parts])
        else:
            arr = _encode(encoding, text) if text else _EMPTY
            self.tokens_encoded += len(arr)
        self._put(table, k, arr)
        return arr

    def block(self, encoding: str, block: Block) -> np.ndarray:
        table = self._table(encoding)
        arr = table.get(block.key)
        if arr is not None:
            self.hits += 1
            return arr
        content = self.tokens(encoding, block.text)
        arr = content if block.role is None else np.concatenate([_pseudo(block.role), content])
        self._put(table, block.key, arr)
        return arr

    def _put(self, table: dict[int, np.ndarray], k: int, arr: np.ndarray) -> None:
        table[k] = arr
        self._held += len(arr)
        while self._held > self._max and len(table) > 1:
            self._held -= len(table.pop(next(iter(table))))

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "distinct_held": sum(len(t) for t in self._arrays.values()),
                "tokens_encoded": self.tokens_encoded}


_EMPTY = np.zeros(0, dtype=np.uint32)


def _encode(encoding: str, text: str) -> np.ndarray:
    """`encode_ordinary(text)` as a uint32 array straight from tiktoken's buffer (no list of ints)."""
    enc = get_encoding(encoding)
    try:
        return enc.encode_to_numpy(text, disallowed_special=())
    except UnicodeEncodeError:  # lone surrogates: replaced, as encode_ordinary does
        return enc.encode_to_numpy(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"),
                                   disallowed_special=())


@dataclass
class Tokenized:
    """A request's prompt as tokens: per-block arrays (role pseudo-tokens included)."""

    blocks: list[Block]
    arrays: list[np.ndarray]
    encoding: str

    @property
    def block_tokens(self) -> list[int]:
        return [len(a) for a in self.arrays]

    def segment_tokens(self) -> dict[str, int]:
        out = dict.fromkeys(SEGMENTS, 0)
        for b, a in zip(self.blocks, self.arrays, strict=True):
            out[b.segment] += len(a)
        if self.blocks:
            out["new_turn"] += REPLY_OVERHEAD
        return out

    @property
    def total(self) -> int:
        return sum(len(a) for a in self.arrays) + (REPLY_OVERHEAD if self.blocks else 0)


def block_array(memo: TokenMemo, encoding: str, block: Block) -> np.ndarray:
    """The block's tokens, role pseudo-tokens included, memoized under the block's content key
    (one dictionary lookup for a block seen before: no re-hashing, no re-concatenation)."""
    return memo.block(encoding, block)


def tokenize_request(
    memo: TokenMemo, model: str | None, system_text: str | None, messages: list[dict[str, Any]] | None,
    tools_json: str | None, provider: str | None = None,
) -> Tokenized:
    encoding = encoding_name_for(model)
    blocks = request_blocks(system_text, messages, tools_json, provider)
    return Tokenized(blocks, [block_array(memo, encoding, b) for b in blocks], encoding)


def count_blocks(memo: TokenMemo, encoding: str, blocks: list[Block]) -> int:
    """`Tokenized.total` of a request's blocks, memoized."""
    return sum([len(memo.block(encoding, b)) for b in blocks]) + (REPLY_OVERHEAD if blocks else 0)


def count_blocks_naive(encoding: str, blocks: list[Block]) -> int:
    """The same count, tokenizing every block afresh (the baseline `make bench` compares against)."""
    enc = get_encoding(encoding)
    n = sum(len(enc.encode_ordinary(b.text)) + (MESSAGE_OVERHEAD if b.role else 0) for b in blocks)
    return n + (REPLY_OVERHEAD if blocks else 0)


def count_request_naive(model: str | None, system_text: str | None, messages: list[dict[str, Any]] | None,
                        tools_json: str | None, provider: str | None = None) -> int:
    """The same count as `tokenize_request(...).total`, tokenizing every block afresh."""
    return count_blocks_naive(encoding_name_for(model), request_blocks(system_text, messages, tools_json, provider))


def encoding_note(models: Iterable[str | None]) -> list[dict[str, Any]]:
    """Which encoding counted which model, and whether it is exact or an approximation."""
    out = []
    for m in sorted({m for m in models if m}):
        approx = is_approximate(m)
        out.append({
            "model": m,
            "encoding": encoding_name_for(m),
            "exact": not approx,
            "note": (
                f"no public tokenizer for {m}: approximated with {encoding_name_for(m)} and calibrated "
                "to the reported input tokens"
            ) if approx else "the model's own encoding",
        })
    return out


# --- benchmark entry point ---------------------------------------------------------------------

def iter_prompt_batches(workdir: Path, *, limit: int | None = None, batch_rows: int = 2000,
                        ) -> Iterator[tuple[list[dict[str, Any]], MessageColumns]]:
    """Stream the prompt columns of the store (store order: by date) in batches: the scalar columns as
    dicts, the messages as columns."""
    from audit.tables import open_store, query

    con = open_store(workdir)
    try:
        reader = query(con, "tokens_prompts", limit=limit if limit is not None else -1).to_arrow_reader(batch_rows)
        for batch in reader:
            yield prompt_rows(batch)
    finally:
        con.close()


@dataclass
class TokenizeStats:
    requests: int
    tokens: int
    seconds: float
    memoized: bool
    memo: dict[str, int] = field(default_factory=dict)


def tokenize_store(workdir: Path, *, memoize: bool = True, limit: int | None = None) -> TokenizeStats:
    """Count every request's input tokens, memoized by content hash or naively per request.

    For `make bench`: both modes must return the same `tokens`; the ratio of `seconds` is the
    speed-up of keying tokenization by content hash. The store is streamed in batches and only
    the tokenization is timed (reading the store is the same in both modes), so memory stays
    bounded at any scale.
    """
    seconds = 0.0
    total = 0
    n = 0
    memo = TokenMemo()
    for batch, messages in iter_prompt_batches(workdir, limit=limit):
        t0 = time.perf_counter()
        for i, r in enumerate(batch):
            blocks = messages.blocks(i, r["system_text"], r["tools_json"], r["provider"])
            encoding = encoding_name_for(r["model"])
            total += count_blocks(memo, encoding, blocks) if memoize else count_blocks_naive(encoding, blocks)
        seconds += time.perf_counter() - t0
        n += len(batch)
    return TokenizeStats(n, total, seconds, memoize, memo.stats() if memoize else {})
