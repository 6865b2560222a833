"""Cacheable-prefix share under each provider's real caching rules, token segments, prefix breakers.

Pipeline (memory stays bounded: the store is streamed in batches, the heavy work is per partition,
DuckDB does the sorting and the joins):

  1. variants  per date partition, over the distinct tools/system/early-history blocks that
               contain candidate dynamic spans (audit/dynamic_spans.py): a block is DYNAMIC when its
               masked text occurs with more than one raw value across requests (merged).
  2. prepare   per request (a map, parallelizable by batch): render and tokenize the prompt
               (audit/token_accounting.py, memoized by content hash), segment counts, rolling prefix hashes
               of B-token blocks and of content blocks, logged/ideal breakpoint positions, and the
               same hashes for the "ideal ordering" variant in which dynamic spans move to the end.
               Spooled to Parquet.
  3. simulate  per partition (audit/cache_sim.py) for three scenarios:
                 as_logged       provider rules, breakpoints as logged
                 ideal_bp        + an ideal breakpoint after the stable part (tools + system);
                                 identical to as_logged for automatic caching (OpenAI)
                 ideal           ideal_bp with dynamic spans moved after the stable part
  4. report    DuckDB SQL (audit/sql/cache_*.sql) joins the simulation with usage, prices and task
               labels: shares overall / per model / task type / day, simulated vs provider-reported
               cached share and the gap, prefix breakers with the tokens and USD moving them saves.

Token positions are simulated in estimated tokens and converted to provider tokens with the
request's calibration factor (reported input / estimate; the model's median when the request has
no usage), so minimums and rounding steps apply in the provider's own units.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from audit import dynamic_spans, tables
from audit.cache_sim import PartitionSim, SimResult, SimRow
from audit.prices import CacheRules, PriceTable, base_model_name
from audit.tables import (
    attach_labels,
    fetch_dicts,
    open_store,
    query,
    temp_table,
    write_batches,
    write_parallel,
    write_query,
)
from audit.token_accounting import (
    REPLY_OVERHEAD,
    Block,
    TokenMemo,
    block_array,
    encoding_note,
    prompt_rows,
    request_blocks,
)
from pipeline.config import from_section
from pipeline.errors import AuditError
from pipeline.executor import Executor, cycle_collector_paused, memory_share, processes_with_tasks
from pipeline.progress import phase
from pipeline.tokens import encoding_name_for, is_approximate, text_key
from pipeline.workdir import versions
from pipeline.workdir.store import (
    StorePartition,
    StorePartitions,
    connect_partition,
    list_values,
    outcome_connection,
    partition_batches,
    sql_literal,
    store_partitions,
)
from schemas.logs import OUTCOME_COLUMNS

SCENARIOS = ("as_logged", "ideal_bp", "ideal")
# Reported input / estimate within this range: the logged prompt accounts for what was billed.
COMPLETE_PROMPT = (0.9, 1.1)


@dataclass(frozen=True)
class CacheConfig:
    block_tokens: int = 64
    """B: tokens per hashed prefix block. 64 divides OpenAI's 128-token step and equals DeepSeek's
    unit, so both are exact; for step-1 rules (Gemini) hits are resolved to within B tokens."""
    buckets: int = 256
    """Partitions of the simulation: hash buckets of each prompt's first block."""
    ideal_breakpoints: tuple[str, ...] = ("stable",)
    """Where the what-if places breakpoints (besides the logged ones): `stable` = after tools +
    system, `history` = after the last assistant turn, `last` = end of the prompt."""
    mask_history_messages: int = 4
    """Dynamic spans are looked for in tools, system and the first N messages of the history."""
    breaker_min_request_share: float = 0.5
    """A task type has a prefix breaker when at least this share of its requests carries one ..."""
    breaker_min_saving_share: float = 0.02
    """... and moving it would make at least this share of the task's input tokens cacheable."""
    batch_rows: int = 2000
    """Rows per streamed batch (memory vs. per-batch overhead)."""
    memo_max_tokens: int = 40_000_000
    """Token arrays kept by a task's tokenization memo (~4 bytes each)."""
    rows_per_task: int = 4000
    """The least requests per simulation task (whole hash buckets). Outputs never depend on it. (The
    dynamic-span and prepare passes run a task per date partition, reading `batch_rows` at a time.)"""
    rows_per_sort: int = 250_000
    """The simulation's input is sorted by partition in slices of about this many requests (ranges
    of hash buckets, chained in order), so each sort fits DuckDB's memory limit (a 1 M-request
    sort did not fit 512 MB) and the driver's memory does not grow with the log. Outputs never
    depend on it."""
    calibrate: bool = True
    """Fit each model's effective minimum, TTL and refresh-on-hit to its reported cache reads
    (audit/cache_calibrate.py) before simulating; off = the documented rules as they are."""
    calibration_min_tokens: tuple[int, ...] = (256, 512, 1024, 2048, 4096)
    """Candidate minimum cacheable lengths (the documented one is always added)."""
    calibration_ttl_minutes: tuple[float, ...] = (5, 10, 30, 60, 1440)
    """Candidate TTLs in minutes of disuse (the documented one is always added)."""
    calibration_max_requests: int = 20_000
    """Requests per model the grid replays (the earliest ones, a contiguous window, so the cache
    dynamics are intact); the chosen rules then apply to all of them."""
    calibration_screen_requests: int = 5_000
    """Above this many requests per model, the whole grid is screened on the earliest ones and only
    the best few candidates (and the documented rules) are scored on all of them."""
    calibration_margin: float = 0.005
    """The documented rules stay unless a candidate's error is lower by more than this (a share of
    the model's input tokens plus a share of its requests)."""
    calibration_flag_gap: float = 0.03
    """A model whose simulated as-logged share still differs from its reported share by more than
    this is flagged in the report with the likely cause."""


def cache_config(config: dict[str, Any]) -> CacheConfig:
    cfg = from_section(CacheConfig, config, "audit.cache")
    cfg = dataclasses.replace(cfg, ideal_breakpoints=tuple(cfg.ideal_breakpoints),
                              calibration_min_tokens=tuple(int(x) for x in cfg.calibration_min_tokens),
                              calibration_ttl_minutes=tuple(float(x) for x in cfg.calibration_ttl_minutes))
    bad = set(cfg.ideal_breakpoints) - {"stable", "history", "last"}
    if bad:
        raise AuditError(f"[audit.cache] ideal_breakpoints: unknown position(s) {sorted(bad)}; use stable, history, last.")
    if (cfg.block_tokens < 1 or cfg.buckets < 1 or cfg.rows_per_task < 1 or cfg.batch_rows < 1
            or cfg.rows_per_sort < 1):
        raise AuditError("[audit.cache] block_tokens, buckets, rows_per_task, rows_per_sort and batch_rows must be"
                         " positive.")
    return cfg


# --- 1. dynamic blocks ---------------------------------------------------------------------------

_VARIES = -1


class SpanMemo:
    """Per block (segment and content hash): its candidate spans, and the masked text and its key
    when it has any. Bounded; a block repeats across the requests of a task (system prompts, tool
    schemas, early turns), so the regexes, the masking and its hash run once per distinct block.

    `known`: spans found before (`SpanTable.spans`), used instead of searching again."""

    def __init__(self, max_entries: int = 200_000,
                 known: dict[tuple[str, int], list[dynamic_spans.Span]] | None = None) -> None:
        self._masked: OrderedDict[tuple[str, int], tuple[list[dynamic_spans.Span], str, int] | None] = OrderedDict()
        self._max = max_entries
        self._known = known or {}

    def masked(self, b: Block) -> tuple[list[dynamic_spans.Span], str, int] | None:
        """(spans, masked text, masked key) of a block with candidate spans, else None."""
        k = (b.segment, b.key)
        try:
            return self._masked[k]
        except KeyError:
            pass
        sp = self._known.get(k)
        if sp is None:
            sp = dynamic_spans.find_spans(b.text)
        out = None
        if sp:
            text = dynamic_spans.mask(b.text, sp)
            out = (sp, text, _masked_key(b, text))
        self._masked[k] = out
        if len(self._masked) > self._max:
            self._masked.popitem(last=False)
        return out

    def found(self) -> Iterator[tuple[tuple[str, int], list[dynamic_spans.Span], int]]:
        """((segment, key), spans, masked key) of every block held that has spans."""
        for k, v in self._masked.items():
            if v is not None:
                yield k, v[0], v[2]


SPAN_TABLE_SCHEMA = pa.schema([
    ("segment", pa.string()), ("key", pa.uint64()), ("masked_key", pa.uint64()),
    ("starts", pa.list_(pa.int32())), ("ends", pa.list_(pa.int32())), ("kinds", pa.list_(pa.int8())),
])


@dataclass(frozen=True)
class SpanTable:
    """Blocks' candidate spans as found by a task, a row per block (SPAN_TABLE_SCHEMA): what the
    dynamic-span pass hands the prepare pass of the same partition, so no block is searched twice."""

    table: pa.Table

    @classmethod
    def of(cls, memo: SpanMemo) -> SpanTable:
        cols: dict[str, list[Any]] = {name: [] for name in SPAN_TABLE_SCHEMA.names}
        kind_index = {kind: i for i, kind in enumerate(dynamic_spans.KINDS)}
        for (segment, key), spans, masked_key in memo.found():
            cols["segment"].append(segment)
            cols["key"].append(key)
            cols["masked_key"].append(masked_key)
            cols["starts"].append([sp.start for sp in spans])
            cols["ends"].append([sp.end for sp in spans])
            cols["kinds"].append([kind_index[sp.kind] for sp in spans])
        return cls(pa.table(cols, schema=SPAN_TABLE_SCHEMA))

    def where_masked_in(self, masked_keys: pa.Array) -> SpanTable:
        return SpanTable(self.table.filter(pc.is_in(self.table.column("masked_key"), masked_keys)))

    def spans(self) -> dict[tuple[str, int], list[dynamic_spans.Span]]:
        kinds = dynamic_spans.KINDS
        t = self.table
        return {
            (segment, key): [dynamic_spans.Span(a, b, kinds[c]) for a, b, c in zip(starts, ends, codes, strict=True)]
            for segment, key, starts, ends, codes in zip(
                t.column("segment").to_pylist(), t.column("key").to_pylist(), t.column("starts").to_pylist(),
                t.column("ends").to_pylist(), t.column("kinds").to_pylist(), strict=True)
        }


def _candidates(blocks: list[Block], max_history: int) -> Iterator[tuple[int, Block]]:
    seen_msgs = 0
    for i, b in enumerate(blocks):
        if b.segment in ("tools", "system"):
            yield i, b
        elif b.segment == "history" and seen_msgs < max_history:
            seen_msgs += 1
            yield i, b


def _masked_key(b: Block, masked: str) -> int:
    return text_key(f"{b.segment}\x1f{b.role or ''}\x1f{masked}")


@dataclass(frozen=True)
class SpansContext:
    """What every dynamic-span task shares: the settings and its DuckDB's share of the run's budget."""

    cfg: CacheConfig
    memory_limit: str


@dataclass(frozen=True)
class PartitionSpans:
    """A dynamic-span task's output: {masked-text key: raw key, or _VARIES} and the spans it found."""

    name: str
    variants: dict[int, int]
    spans: SpanTable


@cycle_collector_paused
def dynamic_blocks_task(ctx: SpansContext, part: StorePartition) -> PartitionSpans:
    """Task: one date partition's candidate blocks -> their variants and spans.

    The task reads its partition's distinct candidate rows (`cache_mask_candidates`), not every
    request: a masked text's values are a set, which repeats do not change."""
    cfg = ctx.cfg
    spans = SpanMemo()
    variants: dict[int, int] = {}
    k = int(cfg.mask_history_messages)
    with tempfile.TemporaryDirectory(prefix="logaudit-spans-") as tmp:
        con = connect_partition(part, Path(tmp), ctx.memory_limit)
        try:
            for batch in query(con, "cache_mask_candidates", k=k).to_arrow_reader(cfg.batch_rows):
                requests, messages = prompt_rows(batch)
                for i, r in enumerate(requests):
                    # The first messages up to the last assistant turn; a trailing assistant stub
                    # keeps them in the history segment.
                    blocks = messages.blocks(i, r["system_text"], r["tools_json"], r["provider"],
                                             limit=min(k, r["last_assistant"] or 0), trailing_assistant=True)
                    for _, b in _candidates(blocks, k):
                        masked = spans.masked(b)
                        if masked is not None:
                            _note_variant(variants, masked[2], b.key)
        finally:
            con.close()
    return PartitionSpans(part.name, variants, SpanTable.of(spans))


def _note_variant(variants: dict[int, int], masked: int, raw: int) -> None:
    prev = variants.get(masked)
    if prev is None:
        variants[masked] = raw
    elif prev != raw:
        variants[masked] = _VARIES


def merge_variants(parts: Iterable[dict[int, int]]) -> dict[int, int]:
    """Merge per-partition variants: a masked text is dynamic when any partition saw it vary or two
    partitions saw different raw values (order-free, so the partitioning never changes it)."""
    out: dict[int, int] = {}
    for part in parts:
        for masked, raw in part.items():
            _note_variant(out, masked, raw)
    return out


def find_dynamic_blocks(partitions: StorePartitions, cfg: CacheConfig, memory_limit: str,
                        executor: Executor) -> tuple[dict[int, int], dict[str, SpanTable]]:
    """masked-text key -> raw key of its only value, or _VARIES when several raw values exist: a
    task per date partition of the store (`dynamic_blocks_task`), merged; and per partition the
    spans of its blocks whose masked text varies (the only ones the prepare pass moves)."""
    parts = list(executor.map(dynamic_blocks_task, partitions, shared=SpansContext(cfg, memory_limit),
                              label="audit.cache.dynamic_spans", total=len(partitions)))
    variants = merge_variants(p.variants for p in parts)
    varies = pa.array([m for m, raw in variants.items() if raw == _VARIES], pa.uint64())
    return variants, {p.name: p.spans.where_masked_in(varies) for p in parts}


# --- 2. prepare ----------------------------------------------------------------------------------

_U64 = pa.list_(pa.uint64())
_I32L = pa.list_(pa.int32())
PREPARED_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("ts_ms", pa.int64()),
    ("provider", pa.string()), ("model", pa.string()), ("scope", pa.string()),
    ("price_model_key", pa.string()), ("rules", pa.string()), ("min_tokens", pa.int32()),
    ("encoding", pa.string()), ("approximate", pa.bool_()),
    ("simulated", pa.bool_()), ("skip_reason", pa.string()),
    ("est_tools", pa.int32()), ("est_system", pa.int32()), ("est_history", pa.int32()),
    ("est_new_turn", pa.int32()), ("est_total", pa.int32()), ("n_blocks", pa.int32()),
    ("reported_input", pa.int64()), ("reported_read", pa.int64()), ("has_cache_fields", pa.bool_()),
    ("factor", pa.float64()),
    ("bucket", pa.int32()), ("ideal_bucket", pa.int32()),
    ("token_hashes", _U64), ("block_ends", _I32L), ("block_hashes", _U64),
    ("ideal_token_hashes", _U64), ("ideal_block_ends", _I32L), ("ideal_block_hashes", _U64),
    ("bp_blocks", _I32L), ("bp_1h", pa.list_(pa.bool_())), ("bp_source", pa.string()), ("stable_end", pa.int32()),
    ("history_end", pa.int32()),
    ("dynamic_spans", pa.int32()), ("breaker_segment", pa.string()), ("breaker_kind", pa.string()),
    ("breaker_offset", pa.int32()), ("breaker_stable_after", pa.int32()), ("breaker_example", pa.string()),
    ("turn_key", pa.uint64()), ("turn_tokens", pa.int32()),
])


def rolling_token_hashes(arrays: list[np.ndarray], seed: int, block_tokens: int) -> list[int]:
    """h_j = xxh3(tokens of block j, seed=h_{j-1}): one hash per complete B-token block, each
    identifying the whole prefix up to its end."""
    if not arrays:
        return []
    tokens = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    n = len(tokens) // block_tokens
    if not n:
        return []
    # the token bytes in place (no copy), hashed block by block (uint32 tokens: 4 bytes each)
    buf = np.ascontiguousarray(tokens[: n * block_tokens]).data.cast("B")
    step = block_tokens * 4
    digest = xxhash.xxh3_64_intdigest
    out = []
    h = seed
    for j in range(0, n * step, step):
        h = digest(buf[j : j + step], seed=h)
        out.append(h)
    return out


def first_token_hash(arrays: list[np.ndarray], seed: int, block_tokens: int) -> list[int]:
    """`rolling_token_hashes(arrays, seed, block_tokens)[:1]`, reading only the first block's tokens."""
    head, n = [], 0
    for a in arrays:
        head.append(a[: block_tokens - n])
        n += len(head[-1])
        if n == block_tokens:
            return rolling_token_hashes(head, seed, block_tokens)
    return []


class PrefixHashes:
    """`rolling_token_hashes` of a task's prompts, resumed from the longest block prefix hashed before.

    A conversation's next request repeats the previous prompt and appends to it, so hashing every
    prompt from its first token costs O(prompt tokens) per request, O(turns²) per conversation.
    The rolling hash state at the end of a content block depends only on the blocks up to it,
    which its chained block hash (`rolling_block_hashes`, seeded with the scope) identifies: the
    state there (the complete B-token hashes so far, the tokens after the last complete block) is
    kept under that hash, and a later prompt with the same leading blocks hashes only what
    follows them. Same values as `rolling_token_hashes` (tests/test_cache_prefix_hashes.py).
    """

    def __init__(self, block_tokens: int, max_entries: int = 500_000) -> None:
        self.block_tokens = block_tokens
        self._states: dict[tuple[str, int], tuple[list[int], int, np.ndarray]] = {}
        self._max = max_entries

    def hashes(self, encoding: str, arrays: list[np.ndarray], chain: list[int], ends: list[int],
               seed: int) -> list[int]:
        """The prompt's rolling token hashes; `chain`: its `rolling_block_hashes`, `ends`: the
        cumulative token count at the end of each block (both in block order)."""
        bt = self.block_tokens
        states = self._states
        start, prefix, carry, h = 0, [], _NO_TOKENS, seed
        for i in range(len(chain) - 1, -1, -1):
            state = states.get((encoding, chain[i]))
            if state is not None:
                src, c, carry = state
                prefix, h, start = src[:c], (src[c - 1] if c else seed), i + 1
                break
        done = len(prefix)  # complete blocks already hashed; `carry` starts at done * bt
        rest = [carry, *arrays[start:]] if len(carry) else arrays[start:]
        tokens = (np.concatenate(rest) if len(rest) > 1 else rest[0]) if rest else _NO_TOKENS
        n = len(tokens) // bt
        out = prefix
        if n:
            buf = np.ascontiguousarray(tokens[: n * bt], dtype=np.uint32).data.cast("B")
            step = bt * 4
            digest = xxhash.xxh3_64_intdigest
            for j in range(0, n * step, step):
                h = digest(buf[j : j + step], seed=h)
                out.append(h)
        if len(states) > self._max:
            states.clear()  # bounded; a cleared state only costs re-hashing
        base = done * bt
        for i in range(start, len(chain)):
            key = (encoding, chain[i])
            if key not in states:
                c = ends[i] // bt
                states[key] = (out, c, tokens[c * bt - base : ends[i] - base].copy())
        return out


_NO_TOKENS = np.zeros(0, dtype=np.uint32)


def rolling_block_hashes(blocks: list[Block], seed: int) -> list[int]:
    out = []
    h = seed
    for b in blocks:
        h = xxhash.xxh3_64_intdigest(b.key.to_bytes(8, "little"), seed=h)
        out.append(h)
    return out


def _bucket(hashes: list[int], buckets: int) -> int:
    return hashes[0] % buckets if hashes else -1


def map_breakpoints(logged: list[dict[str, Any]] | None, blocks: list[Block]) -> list[tuple[int, bool]]:
    """Logged cache_control markers -> (block index, 1-hour TTL).

    The system text is stored joined, so a marker on any system block is placed at the end of the
    system (exact when, as usual, the marker is on the last system block). A marker inside a
    message is placed at the end of that provider message.
    """
    if not logged:
        return []
    tools = [i for i, b in enumerate(blocks) if b.segment == "tools"]
    system = [i for i, b in enumerate(blocks) if b.segment == "system"]
    msg_end: dict[int, int] = {}
    for i, b in enumerate(blocks):
        if b.provider_message >= 0:
            msg_end[b.provider_message] = i
    out: dict[int, bool] = {}
    for bp in logged:
        seg, idx = bp.get("segment"), bp.get("index") or 0
        target = None
        if seg == "tools" and tools:
            target = tools[min(max(idx, 0), len(tools) - 1)]
        elif seg == "system" and system:
            target = system[-1]
        elif seg == "messages" and msg_end:
            target = msg_end.get(idx, msg_end[max(msg_end)])
        if target is not None:
            out[target] = out.get(target, False) or bp.get("ttl") == "1h"
    return sorted(out.items())


@dataclass(frozen=True)
class PrepareContext:
    """What every prepare task shares (read-only): the settings, prices, the dynamic blocks, its
    DuckDB's share of the run's budget, and the folder it writes to when it can reach the driver's
    disk (None: the rows come back by value)."""

    cfg: CacheConfig
    prices: PriceTable
    variants: dict[int, int]
    memory_limit: str
    out_dir: str | None


@dataclass(frozen=True)
class PreparedPart:
    """A prepare task's output: its partition's rows of PREPARED_SCHEMA (written to
    `out_dir/<partition>.parquet`, or as Parquet bytes) and what it cost."""

    name: str
    rows: int
    data: bytes | None
    memo: dict[str, int]
    models: frozenset[str]


@dataclass(frozen=True)
class PrepareInput:
    """A prepare task's input: a date partition and the spans its dynamic-span task found."""

    part: StorePartition
    spans: SpanTable


@cycle_collector_paused
def prepare_task(ctx: PrepareContext, job: PrepareInput) -> PreparedPart:
    """Task: tokenize, hash and place breakpoints for one date partition of the store, read by the
    task itself (`partition_batches`, a batch at a time, so memory follows `batch_rows`, not the
    day) with fresh memos: the rows, their order and the memo counts depend only on the partition."""
    part = job.part
    prep = Preparer(ctx.cfg, ctx.prices, ctx.variants, SpanMemo(known=job.spans.spans()))
    with tempfile.TemporaryDirectory(prefix="logaudit-prepare-") as tmp:
        con = outcome_connection(ctx.memory_limit)
        try:
            batches = (with_failed(con, b) for b in partition_batches(part, Path(tmp), PREPARE_INPUT_COLUMNS,
                                                                      ctx.cfg.batch_rows))
            target = Path(ctx.out_dir or tmp) / f"{part.name}.parquet"
            rows = write_batches(PREPARED_SCHEMA, (prepare_batch(prep, b) for b in batches), target)
        finally:
            con.close()
        data = None if ctx.out_dir else target.read_bytes()
    return PreparedPart(part.name, rows, data, prep.memo.stats(), frozenset(prep.models))


# What the preparation reads of each request (plus `failed`: `with_failed`). Straight from the
# partition's Parquet files, not through a DuckDB view: DuckDB's Arrow export copied each row's
# system prompt (~8 KB), the files keep one copy per row group (`partition_batches`).
PREPARE_INPUT_COLUMNS = ["request_id", "ts", "provider", "model", "model_resolved", "system_text", "messages",
                         "tools_json", "cache_breakpoints", "in_uncached", "in_cache_read", "in_cache_write_5m",
                         "in_cache_write_1h", "in_cache_write_unspecified", "usage_missing", *OUTCOME_COLUMNS]


def with_failed(con: Any, batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with `failed` (`cache_prepare_input.sql`, the store's outcome rule) appended."""
    con.register("batch", batch)  # DuckDB scans the columns the rule reads, in place
    try:
        failed = query(con, "cache_prepare_input").to_arrow_table().column("failed").combine_chunks()
    finally:
        con.unregister("batch")
    return batch.append_column("failed", failed)


def prepare_batch(prep: Preparer, batch: pa.RecordBatch) -> pa.RecordBatch:
    """One batch of the partition's rows (`PREPARE_INPUT_COLUMNS` and `failed`) as rows of
    PREPARED_SCHEMA, in its order."""
    requests, messages = prompt_rows(batch)
    # Cache misses are encoded one text at a time: the tasks already fill every core, and
    # tiktoken's `encode_ordinary_batch` (a thread pool per call, a future per text) cost more in
    # bookkeeping than it saved.
    rows = [prep.prepare(r, messages.blocks(i, r["system_text"], r["tools_json"], r["provider"]))
            for i, r in enumerate(requests)]
    return pa.RecordBatch.from_pylist(rows, schema=PREPARED_SCHEMA)


_EPOCH_DATE = date(1970, 1, 1)
_US_PER_DAY = 86_400_000_000


@functools.lru_cache(maxsize=4096)
def _utc_day(days: int) -> date:
    return _EPOCH_DATE + timedelta(days=days)


def _utc_date(ts_us: int) -> date:
    """The UTC date of a timestamp in microseconds (`datetime.date()` of the UTC datetime)."""
    return _utc_day(ts_us // _US_PER_DAY)


def _ts_ms(ts_us: int) -> int:
    """`int(datetime.timestamp() * 1000)` of the UTC datetime, from its microseconds: `timestamp()`
    is the exact microseconds divided by 10**6 (correctly rounded), then scaled and truncated."""
    return int(ts_us / 1_000_000 * 1000)


class Preparer:
    """Per-request preparation; holds the memos, so one instance serves a whole task."""

    def __init__(self, cfg: CacheConfig, prices: PriceTable, variants: dict[int, int], spans: SpanMemo) -> None:
        self.cfg = cfg
        self.prices = prices
        self.variants = variants
        self.spans = spans
        self.memo = TokenMemo(cfg.memo_max_tokens)
        self.prefix = PrefixHashes(cfg.block_tokens)
        # (model, logged model, provider, day) -> (price, rules, scope, its hash seed, encoding, approximate)
        self._models: dict[tuple[Any, ...], tuple[Any, CacheRules, str, int, str, bool]] = {}
        self.models: set[str] = set()

    def prepare(self, r: dict[str, Any], blocks: list[Block] | None = None) -> dict[str, Any]:
        """One request's row of PREPARED_SCHEMA (`blocks`: its `request_blocks`, when already built)."""
        cfg = self.cfg
        model = r["model_resolved"] or r["model"]
        self.models.add(r["model"] or model or "")
        ts = r["ts"]  # microseconds since the epoch (`prompt_rows`), or None
        pk = (model, r["model"], r["provider"], _utc_date(ts) if ts is not None else None)
        known = self._models.get(pk)
        if known is None:  # once per model, provider and day: a few hundred per task
            price = self.prices.lookup(model, pk[3]) or self.prices.lookup(r["model"], pk[3])
            # The cache is per model: an alias and its dated snapshot (logged either way round by
            # different sources) share it.
            scope = f"{(r['provider'] or '').lower()}|{base_model_name(model)}"
            known = self._models[pk] = (price, self.prices.rules_for(price), scope, text_key(scope),
                                        encoding_name_for(r["model"] or model), is_approximate(r["model"] or model))
        price, rules, scope, seed, encoding, approximate = known
        out: dict[str, Any] = {
            "request_id": r["request_id"], "ts": ts, "ts_ms": _ts_ms(ts) if ts is not None else None,
            "provider": r["provider"], "model": r["model"], "scope": scope,
            "price_model_key": price.key if price else None, "rules": rules.name, "min_tokens": rules.min_tokens,
            "encoding": encoding, "approximate": approximate,
        }
        buckets = [r[k] for k in ("in_uncached", "in_cache_read", "in_cache_write_5m", "in_cache_write_1h",
                                  "in_cache_write_unspecified")]
        reported = sum(b or 0 for b in buckets)
        out["reported_input"] = reported if not r["usage_missing"] and reported > 0 else None
        out["has_cache_fields"] = any(b is not None for b in buckets[1:])
        out["reported_read"] = (r["in_cache_read"] or 0) if out["has_cache_fields"] else None
        if blocks is None:
            blocks = request_blocks(r["system_text"], r["messages"], r["tools_json"], r["provider"])
        if not blocks:
            out.update(simulated=False, skip_reason="no_prompt_logged")
            return out
        arrays = [block_array(self.memo, encoding, b) for b in blocks]
        lengths = [len(a) for a in arrays]
        turn = blocks[-1]
        if turn.segment == "new_turn" and turn.text:
            # the new turn's text is tokenized here once: the dataset reads its count by content key
            # (cache_requests.new_turn_*) instead of tokenizing the same text again
            key = text_key(turn.text)
            out["turn_key"] = key
            out["turn_tokens"] = len(self.memo.tokens(encoding, turn.text, key))
        seg = {"tools": 0, "system": 0, "history": 0, "new_turn": REPLY_OVERHEAD}
        for b, n in zip(blocks, lengths, strict=True):
            seg[b.segment] += n
        total = sum(seg.values())
        out.update({f"est_{k}": v for k, v in seg.items()})
        out["est_total"] = total
        out["n_blocks"] = len(blocks)
        out["factor"] = out["reported_input"] / total if out["reported_input"] and total else None
        if r["failed"]:  # the store's outcome rule (request_failed), computed by `with_failed`
            # A failed call (rate limited, server error) processed no prompt: it neither reads nor
            # writes a cache entry.
            out.update(simulated=False, skip_reason="failed_call")
            return out
        if ts is None:
            out.update(simulated=False, skip_reason="no_timestamp")
            return out
        ends = list(itertools.accumulate(lengths))
        chain = rolling_block_hashes(blocks, seed)
        out.update(
            simulated=True, skip_reason=None,
            token_hashes=self._token_hashes(rules, encoding, arrays, chain, ends, seed),
            block_ends=ends, block_hashes=chain,
        )
        out["bucket"] = _bucket(out["token_hashes"], cfg.buckets)
        bps = map_breakpoints(r["cache_breakpoints"], blocks)
        out["bp_source"] = "logged" if bps else "none"
        if not bps and rules.kind == "breakpoints" and not rules.implicit_last and any(buckets[1:]):
            # The usage proves the request carried cache_control, but the log format does not
            # keep request bodies (Claude Code transcripts, gateway rows): assume the common agent
            # pattern, a breakpoint on the last message, and say so.
            bps = [(len(blocks) - 1, bool(r["in_cache_write_1h"]))]
            out["bp_source"] = "inferred"
        out["bp_blocks"] = [b for b, _ in bps]
        out["bp_1h"] = [h for _, h in bps]
        stable_end = history_end = -1
        for i, b in enumerate(blocks):
            if b.segment == "history":
                history_end = i
            elif b.segment != "new_turn":  # tools, system
                stable_end = i
        out["stable_end"] = stable_end
        out["history_end"] = history_end
        self._ideal_variant(out, blocks, arrays, encoding, seed, rules)
        return out

    def _token_hashes(self, rules: CacheRules, encoding: str, arrays: list[np.ndarray], chain: list[int],
                      ends: list[int], seed: int) -> list[int]:
        """The prompt's rolling token hashes, but under breakpoint caching only the first (the
        simulation's partition key): it reads the block hashes, and a calibration never gives a
        row another kind of rules (`RulesOf.of`). A fifth of the hashes at 1 M requests were
        Anthropic rows' that nothing read."""
        if rules.kind == "breakpoints":
            return first_token_hash(arrays, seed, self.cfg.block_tokens)
        return self.prefix.hashes(encoding, arrays, chain, ends, seed)

    def _ideal_variant(self, out: dict[str, Any], blocks: list[Block], arrays: list[np.ndarray], encoding: str,
                       seed: int, rules: CacheRules) -> None:
        """Blocks whose dynamic spans vary across requests lose them; the spans move to a tail block
        after the prompt, where they no longer break anyone's prefix."""
        cfg = self.cfg
        new_blocks = list(blocks)
        new_arrays = list(arrays)
        moved: list[str] = []
        n_spans = 0
        first: tuple[int, Block, dynamic_spans.Span, str, list[dynamic_spans.Span]] | None = None
        for i, b in _candidates(blocks, cfg.mask_history_messages):
            found = self.spans.masked(b)
            if found is None:
                continue
            sp, masked, masked_key = found
            if self.variants.get(masked_key) != _VARIES:
                continue
            n_spans += len(sp)
            moved.append(dynamic_spans.removed(b.text, sp))
            mb = Block(b.segment, masked, masked_key, b.role, b.provider_message)
            new_blocks[i] = mb
            new_arrays[i] = block_array(self.memo, encoding, mb)
            if first is None:
                first = (i, b, sp[0], masked, sp)
        out["dynamic_spans"] = n_spans
        if first is None:
            out["ideal_bucket"] = out["bucket"]
            return
        tail_text = " ".join(moved)
        tail = Block("new_turn", tail_text, text_key("\x1etail\x1f" + out["request_id"] + tail_text), None, -1)
        new_blocks.append(tail)
        new_arrays.append(block_array(self.memo, encoding, tail))
        ends = list(itertools.accumulate(len(a) for a in new_arrays))
        chain = rolling_block_hashes(new_blocks, seed)
        out["ideal_token_hashes"] = self._token_hashes(rules, encoding, new_arrays, chain, ends, seed)
        out["ideal_block_ends"] = ends
        out["ideal_block_hashes"] = chain
        out["ideal_bucket"] = _bucket(out["ideal_token_hashes"], cfg.buckets)
        i, b, span, _, sp = first
        start = out["block_ends"][i] - len(arrays[i])
        pseudo = len(arrays[i]) - len(self.memo.tokens(encoding, b.text))
        before = self.memo.tokens(encoding, b.text[: span.start]) if span.start else np.zeros(0)
        after = b.text[sp[-1].end :]
        out.update(
            breaker_segment=b.segment, breaker_kind=span.kind,
            breaker_offset=int(start + pseudo + len(before)),
            breaker_stable_after=len(self.memo.tokens(encoding, after)) if after else 0,
            breaker_example=b.text[span.start : span.end][:80],
        )


# --- 3. simulate ---------------------------------------------------------------------------------


@dataclass
class CacheSimRun:
    """Result of `simulate_cache`: where the work files are and what it cost."""

    work_dir: Path
    prepared: list[Path]  # the prepare tasks' Parquet files, in partition order
    results: dict[str, Path]
    requests: int
    simulated: int
    timings_s: dict[str, float]
    memo: dict[str, int]
    models: list[str]
    calibration: Any = None  # audit.cache_calibrate.Calibration when [audit.cache] calibrate is on


def simulate_cache(
    workdir: Path, *, config: dict[str, Any] | None = None, prices: PriceTable | None = None,
    work_dir: Path | None = None, executor: Executor | None = None,
) -> CacheSimRun:
    """Tokenize, hash and simulate every request of the store under each scenario.

    The dynamic-span and prepare passes run a task per date partition of the store, and each
    scenario's simulation as tasks over groups of whole hash-bucket partitions, on `executor`
    (default: the `[run]` section's, closed again at the end); results never depend on the
    executor or its number of workers.

    The entry point `make bench` times at 1x and 4x the requests: the work is linear in the input
    tokens (see audit/cache_sim.py). Work files (Parquet) go to `work_dir` (default
    a scratch folder under WORKDIR/.stages/audit/); `run` turns them into the audit tables.
    """
    from audit.cost import price_table

    config = config or {}
    if executor is None:
        from pipeline.executor import executor_config, make_executor

        with make_executor(executor_config(config)) as own:
            return simulate_cache(workdir, config=config, prices=prices, work_dir=work_dir, executor=own)
    cfg = cache_config(config)
    prices = prices or price_table(config)
    # Never inside the current audit version (it is immutable once committed): a scratch folder the
    # next audit removes if this process dies.
    work = Path(work_dir) if work_dir else versions.work_folder(workdir, "audit")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    timings: dict[str, float] = {}
    memo: dict[str, int] = dict.fromkeys(("hits", "misses", "distinct_held", "tokens_encoded"), 0)
    models: set[str] = set()
    t0 = time.perf_counter()
    task_memory = memory_share(executor.memory_mb, processes_with_tasks(executor))
    partitions = store_partitions(workdir, by_value=not executor.reads_driver_disk)
    with phase("dynamic_spans"):
        variants, spans = find_dynamic_blocks(partitions, cfg, task_memory, executor)
    timings["dynamic_spans"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    prepared_dir = work / "prepared"
    prepared_dir.mkdir()
    ctx = PrepareContext(cfg, prices, variants, task_memory,
                         None if not executor.reads_driver_disk else str(prepared_dir))
    requests = 0
    prepared: list[Path] = []
    with phase("prepare"):
        jobs = (PrepareInput(p, spans[p.name]) for p in partitions)
        for part in executor.map(prepare_task, jobs, shared=ctx, label="audit.cache.prepare", total=len(partitions)):
            path = prepared_dir / f"{part.name}.parquet"
            if part.data is not None:  # a scratch folder: a killed run's is removed by the next
                path.write_bytes(part.data)
            prepared.append(path)
            requests += part.rows
            for k, v in part.memo.items():
                memo[k] = memo.get(k, 0) + v
            models.update(part.models)
        prepared.sort()  # name (date) order: the partitions ran largest first
        # Each worker keeps what its prepare tasks' DuckDB and memos held (~0.4 GB at 1 M), which
        # sat beside the simulation's sorts in the driver (tree peak 2,065 MB): fresh ones follow.
        executor.release()
        if not prepared:  # an empty store: the simulation's views still need a file with the schema
            prepared.append(prepared_dir / "empty.parquet")
            write_batches(PREPARED_SCHEMA, [], prepared[0])
    timings["tokenize_and_hash"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    results = {}
    import duckdb

    scon = duckdb.connect()
    try:
        scon.execute("SET TimeZone = 'UTC'")
        scon.execute("SET enable_progress_bar = false")
        # the sort by partition spills beyond its share beside the workers (audit.tables.driver_memory_limit)
        scon.execute("SET memory_limit = $limit", {"limit": tables.driver_memory_limit(config, beside=executor)})
        scon.execute(f"SET temp_directory = {sql_literal(work / 'duckdb_tmp')}")
        scon.execute(f"CREATE VIEW prepared AS SELECT * FROM read_parquet({sql_literal([str(p) for p in prepared])})")
        factors = {s: f for s, f in query(scon, "cache_scope_factors").fetchall()}
        simulated = scon.sql("SELECT count(*) FROM prepared WHERE simulated").fetchall()[0][0]
        calibration = None
        if cfg.calibrate:
            # A separate step before the scenarios: it replays the as-logged simulation per model
            # under candidate rules and keeps the ones the provider's reported reads support.
            from audit.cache_calibrate import calibrate

            with phase("calibrate"):
                calibration = calibrate(scon, cfg, prices, factors, executor)
            timings["calibrate"] = time.perf_counter() - t0
            t0 = time.perf_counter()
        rules_of = RulesOf(prices, calibration.rules if calibration else None)
        results = {scenario: work / f"sim_{scenario}.parquet" for scenario in SCENARIOS}
        with phase("simulate.as_logged"):  # and ideal_bp, which differs in the breakpoints alone
            _simulate_scenario(scon, "as_logged", cfg, rules_of, factors,
                               {"as_logged": results["as_logged"], "ideal_bp": results["ideal_bp"]}, executor,
                               simulated)
        with phase("simulate.ideal"):
            keys = [k for (k,) in query(scon, "cache_ideal_rule_keys").fetchall()]
            _simulate_over(scon, "ideal", "ideal_bp", cfg, rules_of, factors, results, executor, simulated, keys)
    finally:
        scon.close()
    timings["simulate"] = time.perf_counter() - t0
    return CacheSimRun(work, prepared, results, requests, int(simulated),
                       {k: round(v, 3) for k, v in timings.items()}, memo, sorted(models - {""}), calibration)


SIM_SCHEMA = pa.schema([("request_id", pa.string()), ("read", pa.int64()), ("write_5m", pa.int64()),
                        ("write_1h", pa.int64())])


_SIM_SCALARS = ("request_id", "ts_ms", "scope", "rules", "min_tokens", "factor", "approximate", "reported_input",
                "est_total", "n_blocks", "stable_end", "history_end")
_SIM_LISTS = ("token_hashes", "block_ends", "block_hashes", "bp_blocks", "bp_1h")


def sim_rows(table: pa.Table, scenario: str, cfg: CacheConfig, rules: CacheRules | RulesOf,
             factors: dict[str, float]) -> list[SimRow]:
    """`cache_sim_input` rows as the simulation's input under `rules` (one rule set for every row,
    as the calibration replays them, or a rule set per row's scope). Read by columns: a dict per
    row and a Python list built element by element per hash list cost more than the simulation.
    With a rule set per row, a row gets only the lists its rules read (auto-prefix: the token
    hashes; breakpoints: the blocks and breakpoints); the calibration swaps the rules, so its rows
    get every list."""
    c = {name: table.column(name).to_pylist() for name in _SIM_SCALARS}
    token_hashes, block_ends, block_hashes, bp_blocks, bp_1h = (ListColumn(table.column(n)) for n in _SIM_LISTS)
    out = []
    for i, (rid, ts_ms, scope, rules_name, min_tokens, row_factor, approximate, reported, est_total, n_blocks,
            stable_end, history_end) in enumerate(zip(*(c[n] for n in _SIM_SCALARS), strict=True)):
        factor = row_factor or factors.get(scope) or 1.0
        inp = reported or int(round(est_total * factor))
        # With the model's own tokenizer and a prompt that accounts for the reported input, prefix
        # positions are exact and the whole-request ratio (which absorbs framing tokens) would only
        # blur them across a 128-token step. Approximated tokenizers, and logs whose prompt text is
        # redacted or partly missing (reported input far from the estimate), need the scaling.
        exact = not approximate and COMPLETE_PROMPT[0] <= factor <= COMPLETE_PROMPT[1]
        if isinstance(rules, RulesOf):
            row_rules = rules.of(scope, rules_name, min_tokens)
            kind = row_rules.kind
        else:
            row_rules, kind = rules, None  # the calibration swaps the rules: every list
        hashes = token_hashes[i] if kind in (None, "auto_prefix") else _NO_ITEMS
        if kind in (None, "breakpoints"):
            ends, chain = block_ends[i], block_hashes[i]
            bps = list(zip(bp_blocks[i], bp_1h[i], strict=True))
            if scenario != "as_logged":
                bps = _with_ideal(bps, n_blocks, stable_end, history_end, cfg.ideal_breakpoints)
        else:
            ends, chain, bps = _NO_ITEMS, _NO_ITEMS, []
        out.append(SimRow(rid, ts_ms, row_rules, 1.0 if exact else factor, inp, hashes, ends, chain, bps))
    return out


_NO_ITEMS: list[Any] = []  # shared and never mutated: the simulation only reads a row's lists


class ListColumn:
    """A list column's flat values converted to Python once; `[i]` slices row i's list on demand
    (empty where null): `to_pylist` builds every element through a scalar object, and slicing every
    row of every list column up front cost a sixth of the simulation tasks."""

    def __init__(self, column: pa.ChunkedArray | pa.Array) -> None:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        self._bounds, values = list_values(column) if len(column) else ([0], pa.array([]))
        self._flat = values.to_numpy(zero_copy_only=False).tolist()
        self._nulls = (set(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False)).tolist())
                       if column.null_count else None)

    def __getitem__(self, i: int) -> list[Any]:
        if self._nulls is not None and i in self._nulls:
            return []
        return self._flat[self._bounds[i] : self._bounds[i + 1]]


class RulesOf:
    """Rule set per simulated row: the calibrated one of its scope, else the documented one."""

    def __init__(self, prices: PriceTable, calibrated: dict[str, CacheRules] | None = None) -> None:
        self.prices = prices
        self.calibrated = calibrated or {}
        self._documented: dict[tuple[str, int], CacheRules] = {}
        self._of: dict[tuple[str, str, int], CacheRules] = {}  # per row of every scenario: one lookup

    def documented(self, name: str, min_tokens: int) -> CacheRules:
        k = (name, min_tokens)
        if k not in self._documented:
            self._documented[k] = dataclasses.replace(self.prices.rules[name], min_tokens=min_tokens)
        return self._documented[k]

    def __call__(self, r: dict[str, Any]) -> CacheRules:
        return self.of(r["scope"], r["rules"], r["min_tokens"])

    def of(self, scope: str, rules: str, min_tokens: int) -> CacheRules:
        k = (scope, rules, min_tokens)
        found = self._of.get(k)
        if found is None:
            documented = self.documented(rules, min_tokens)
            calibrated = self.calibrated.get(scope)
            # A calibration tunes its kind of rules (a scope whose rows mix kinds keeps each row's
            # own): the prepare pass keeps only the hashes the row's kind reads (`Preparer._token_hashes`).
            found = self._of[k] = (calibrated if calibrated is not None and calibrated.kind == documented.kind
                                   else documented)
        return found


@dataclass(frozen=True)
class SimulateContext:
    """What every simulation task of one pass shares (read-only). `with_ideal_bp`: the as-logged
    pass also yields the ideal-breakpoints scenario, which differs from it in the breakpoints alone."""

    scenario: str
    cfg: CacheConfig
    rules_of: RulesOf
    factors: dict[str, float]
    with_ideal_bp: bool = False


@cycle_collector_paused
def simulate_task(ctx: SimulateContext, table: pa.Table) -> list[pa.Table]:
    """Task: simulate whole partitions (hash buckets; rows in `cache_sim_input` order) -> SIM_SCHEMA.

    With `ctx.with_ideal_bp`, a second table: the ideal-breakpoints scenario. Only rows cached at
    breakpoints read breakpoints, so they alone are replayed with the ideal ones, in the same order
    (they share no entry with the other rows: `audit/cache_sim.py` keeps the two regimes apart), and
    every other row's result is its as-logged one."""
    out: list[SimResult] = []
    ideal_bp: list[SimResult] = []
    cfg = ctx.cfg

    def rows() -> Iterator[tuple[int, SimRow, SimRow | None]]:
        for batch in table.to_batches(max_chunksize=cfg.batch_rows):
            t = pa.Table.from_batches([batch])
            sims = sim_rows(t, ctx.scenario, cfg, ctx.rules_of, ctx.factors)
            moved = _ideal_bp_rows(t, sims, cfg) if ctx.with_ideal_bp else [None] * len(sims)
            yield from zip(t.column("part").to_pylist(), sims, moved, strict=True)

    for _, group in itertools.groupby(rows(), key=lambda x: x[0]):
        logged = PartitionSim(cfg.block_tokens)
        ideal = PartitionSim(cfg.block_tokens) if ctx.with_ideal_bp else None
        for _, row, moved in group:  # a row at a time: one hash bucket can hold a tenth of the log
            res = logged.step(row)
            out.append(res)
            if ideal is not None:
                ideal_bp.append(ideal.step(moved) if moved is not None else res)
    return [_sim_table(out), *([_sim_table(ideal_bp)] if ctx.with_ideal_bp else [])]


def _ideal_bp_rows(table: pa.Table, sims: list[SimRow], cfg: CacheConfig) -> list[SimRow | None]:
    """Each as-logged row cached at breakpoints with the ideal breakpoints added; None for the others."""
    n_blocks, stable_end, history_end = (table.column(n).to_pylist() for n in ("n_blocks", "stable_end", "history_end"))
    return [dataclasses.replace(r, breakpoints=_with_ideal(r.breakpoints, n_blocks[i], stable_end[i], history_end[i],
                                                           cfg.ideal_breakpoints))
            if r.rules.kind == "breakpoints" else None
            for i, r in enumerate(sims)]


def partition_chunks(reader: Any, rows: int, key: str = "part") -> Iterator[pa.Table]:
    """A stream sorted by `key` cut into tables of at least `rows` rows that never split a
    partition (all rows of one `key` value stay in one table)."""
    held: pa.Table | None = None
    for batch in reader:
        held = pa.Table.from_batches([batch]) if held is None else pa.concat_tables([held, pa.Table.from_batches([batch])])
        while held is not None and held.num_rows > rows:
            parts = held.column(key).to_numpy(zero_copy_only=False)
            after = np.flatnonzero(parts[rows - 1 :] != parts[rows - 1])
            if not len(after):
                break  # the partition at the cut runs on into the next batch
            cut = rows - 1 + int(after[0])
            yield held.slice(0, cut).combine_chunks()
            held = held.slice(cut)
    if held is not None and held.num_rows:
        yield held.combine_chunks()


def simulation_input(con: Any, scenario: str, cfg: CacheConfig, simulated: int,
                     rule_keys: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """`cache_sim_input` in partition order, sorted in slices of about `rows_per_sort` requests
    (equal ranges of hash buckets, which hold about equal shares of the requests) and chained.
    `rule_keys` (`cache_ideal_rule_keys.sql`), when given, keeps only the rows of those scopes and rules."""
    slices = max(1, -(-simulated // cfg.rows_per_sort))
    width = -(-(cfg.buckets + 1) // slices)  # parts run from -1 (no complete block) to buckets - 1
    for lo in range(-1, cfg.buckets, width):
        yield from query(con, "cache_sim_input", ideal=scenario == "ideal", lo=lo, hi=lo + width - 1,
                         rule_keys=rule_keys).to_arrow_reader(cfg.batch_rows)


def _simulate_over(con: Any, scenario: str, base: str, cfg: CacheConfig, rules_of: RulesOf,
                   factors: dict[str, float], results: dict[str, Path], executor: Executor, simulated: int,
                   rule_keys: list[str]) -> None:
    """A scenario that differs from the `base` scenario (already simulated) only in the rows of
    `rule_keys` (`scope || chr(31) || rules`): those rows re-simulated, every other row's `base`
    result (`cache_sim_merge.sql`). Exact when the other rows have the same input in both and share
    no cache entry with the re-simulated ones (entries are keyed by hashes seeded with the scope).

    ideal over ideal_bp: only the scopes in which some request has a dynamic span to move
    (`cache_ideal_rule_keys.sql`); the other scopes' rows have the same input in both."""
    path = results[scenario]
    resimulated = path.with_name(f"sim_{scenario}_resimulated.parquet")
    if rule_keys:
        _simulate_scenario(con, scenario, cfg, rules_of, factors, {scenario: resimulated}, executor, simulated,
                           rule_keys)
    else:
        write_batches(SIM_SCHEMA, [], resimulated)
    for view, file in (("sim_base", results[base]), ("sim_resimulated", resimulated)):
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({sql_literal(file)})")
    write_query(con, "cache_sim_merge", path)
    resimulated.unlink()


def _simulate_scenario(con: Any, scenario: str, cfg: CacheConfig, rules_of: RulesOf, factors: dict[str, float],
                       paths: dict[str, Path], executor: Executor, simulated: int,
                       rule_keys: list[str] | None = None) -> None:
    """One pass of simulation tasks over groups of whole hash-bucket partitions: `scenario` to
    `paths[scenario]`, and from the as-logged pass `paths["ideal_bp"]` when asked (results in
    input order)."""
    reader = simulation_input(con, scenario, cfg, simulated, rule_keys)
    names = [scenario, *(["ideal_bp"] if scenario == "as_logged" and "ideal_bp" in paths else [])]
    results = executor.map(simulate_task, partition_chunks(reader, cfg.rows_per_task),
                           shared=SimulateContext(scenario, cfg, rules_of, factors, with_ideal_bp=len(names) > 1),
                           label=f"audit.cache.simulate.{scenario}")
    write_parallel(SIM_SCHEMA, [paths[n] for n in names], results)


def _sim_table(results: list[SimResult]) -> pa.Table:
    return pa.table({"request_id": [r.request_id for r in results], "read": [r.read for r in results],
                     "write_5m": [r.write_5m for r in results], "write_1h": [r.write_1h for r in results]},
                    schema=SIM_SCHEMA)


def _with_ideal(bps: list[tuple[int, bool]], n_blocks: int | None, stable_end: int | None, history_end: int | None,
                where: tuple[str, ...]) -> list[tuple[int, bool]]:
    out = dict(bps)
    n = n_blocks or 0  # the ideal variant's extra tail block is not a breakpoint position
    positions = {"stable": stable_end, "history": history_end, "last": n - 1}
    for w in where:
        p = positions[w]
        if p is not None and p >= 0:
            out.setdefault(p, False)
    return sorted(out.items())


# --- 4. report -----------------------------------------------------------------------------------


def run(workdir: Path, out_dir: Path, config: dict[str, Any], executor: Executor | None = None) -> dict[str, Any]:
    from audit.cost import price_table

    cfg = cache_config(config)
    prices = price_table(config)
    if not (out_dir / "request_costs.parquet").is_file():
        from audit import cost

        cost.run(workdir, out_dir, config)
    sim = simulate_cache(workdir, config=config, prices=prices, work_dir=out_dir / ".cache_work", executor=executor)
    if executor is not None:
        executor.release()  # the tables are DuckDB's work in the driver
    with phase("tables"):
        return _write_tables(workdir, out_dir, cfg, prices, sim)


def _write_tables(workdir: Path, out_dir: Path, cfg: CacheConfig, prices: PriceTable, sim: CacheSimRun) -> dict[str, Any]:
    """The cache_* tables and the summary section from the simulation's work files."""
    from audit.cost import attach_request_costs, register_prices

    con = open_store(workdir)  # the workers were released: the driver's full limit
    try:
        register_prices(con, prices)
        attach_request_costs(con, out_dir, rollup=False)
        labeled = attach_labels(con, out_dir)
        con.execute(f"CREATE VIEW prepared AS SELECT * FROM read_parquet({sql_literal([str(p) for p in sim.prepared])})")
        for scenario, path in sim.results.items():
            con.execute(f"CREATE VIEW sim_{scenario} AS SELECT * FROM read_parquet({sql_literal(path)})")
        write_query(con, "cache_requests", out_dir / "cache_requests.parquet")
        con.execute(
            "CREATE VIEW cache_requests AS SELECT * FROM read_parquet("
            f"{sql_literal(out_dir / 'cache_requests.parquet')})"
        )
        # One GROUPING SETS pass defines every metric once; the cache_by_* files select a level.
        temp_table(con, "cache_rollup", "cache_rollup")
        for name in ("cache_by_model", "cache_by_task_type", "cache_by_day"):
            write_query(con, name, out_dir / f"{name}.parquet")
        write_query(con, "cache_tokens_by_model", out_dir / "cache_tokens_by_model.parquet")
        write_query(con, "cache_prefix_breakers", out_dir / "cache_prefix_breakers.parquet",
                    min_request_share=cfg.breaker_min_request_share,
                    min_saving_share=cfg.breaker_min_saving_share)
        overall = fetch_dicts(con, "cache_overall")[0]
        by_model = fetch_dicts(con, "cache_by_model")
        by_task = fetch_dicts(con, "cache_by_task_type")
        tokens_by_model = fetch_dicts(con, "cache_tokens_by_model")
        breakers = fetch_dicts(con, "cache_prefix_breakers", min_request_share=cfg.breaker_min_request_share,
                               min_saving_share=cfg.breaker_min_saving_share)
        window = fetch_dicts(con, "cost_window")[0]
    finally:
        con.close()
    shutil.rmtree(sim.work_dir, ignore_errors=True)
    return summarize(cfg, prices, sim, overall, by_model, by_task, tokens_by_model, breakers, window, labeled)


def calibration_section(sim: CacheSimRun, cfg: CacheConfig) -> dict[str, Any]:
    """Documented vs calibrated rules per model (audit/cache_calibrate.py), for the report."""
    if sim.calibration is None:
        return {"enabled": False, "note": "[audit.cache] calibrate = false: the documented rules as they are"}
    return {"enabled": True, "flag_gap": cfg.calibration_flag_gap, **sim.calibration.as_dict()}


def _r(x: Any, nd: int = 4) -> Any:
    return round(float(x), nd) if x is not None else None


def summarize(
    cfg: CacheConfig, prices: PriceTable, sim: CacheSimRun, overall: dict[str, Any], by_model: list[dict[str, Any]],
    by_task: list[dict[str, Any]], tokens_by_model: list[dict[str, Any]], breakers: list[dict[str, Any]],
    window: dict[str, Any], labeled: bool,
) -> dict[str, Any]:
    from audit.cost import monthly, window_days

    days = window_days(window["first_ts"], window["last_ts"])
    share_keys = ("as_logged_share", "ideal_bp_share", "ideal_share", "reported_cached_share",
                  "gap_simulated_minus_reported")

    def shares(row: dict[str, Any]) -> dict[str, Any]:
        return {k: _r(row.get(k)) for k in share_keys}

    flagged = [b for b in breakers if b["flagged"]]
    rules_used = sorted({r["rules"] for r in by_model if r.get("rules")})
    section: dict[str, Any] = {
        "scenarios": {
            "as_logged": "provider rules with the cache_control breakpoints as logged",
            "ideal_bp": "as_logged plus breakpoints at: " + ", ".join(
                {"stable": "the end of the stable part (tools + system)", "history": "the last assistant turn",
                 "last": "the end of the prompt"}[w] for w in cfg.ideal_breakpoints
            ) + "; same as as_logged for automatic caching",
            "ideal": "ideal_bp with dynamic spans (timestamps, ids, ...) moved after the stable part",
        },
        "requests": overall["requests"],
        "simulated_requests": overall["simulated_requests"],
        "not_simulated": {k: v for k, v in (overall.get("skip_reasons") or {}).items()},
        "input_tokens": overall["input_tokens"],
        "simulated_input_tokens": overall["simulated_input_tokens"],
        "caveats": {
            "prompt_incomplete_requests": overall["prompt_incomplete_requests"],
            "prompt_incomplete_note": "logged prompt text accounts for under 2/3 (or over 1.5x) of the reported "
                                      "input (redacted text, system prompt or tools not logged): prefix "
                                      "positions are scaled by the request's calibration factor",
            "breakpoints_inferred_requests": overall["breakpoints_inferred_requests"],
            "breakpoints_inferred_note": "usage shows cache reads/writes but the log keeps no cache_control "
                                         "markers: a breakpoint on the last message is assumed",
        },
        "overall": shares(overall),
        "cacheable_tokens": {
            "as_logged": overall["as_logged_read"], "ideal_bp": overall["ideal_bp_read"],
            "ideal": overall["ideal_read"],
            "reported_cache_read": overall["reported_read"], "reported_cache_write": overall["reported_write"],
            "simulated_cache_write_as_logged": overall["as_logged_write"],
        },
        "by_model": [{"model": r["model"], "rules": r["rules"], "requests": r["requests"], **shares(r)}
                     for r in by_model],
        "by_task_type": [{"task_type": r["task_type"], "requests": r["requests"], "input_tokens": r["input_tokens"],
                          **shares(r), "spend_usd": _r(r["cost_usd"], 6)} for r in by_task],
        "task_labels": "audit.tasks request_labels.parquet" if labeled else "none (task_type = unlabeled)",
        "prefix_breakers": [
            {k: (_r(v, 6) if isinstance(v, float) else v) for k, v in b.items()} for b in flagged
        ],
        "prefix_breaker_candidates": len(breakers),
        "projections_usd_per_month": {
            "api_without_caching": round(monthly(float(overall["cost_uncached_usd"] or 0), days), 2),
            "api_as_logged": round(monthly(float(overall["cost_usd"] or 0), days), 2),
            "api_simulated_as_logged": round(monthly(float(overall["cost_sim_as_logged_usd"] or 0), days), 2),
            "api_ideal_caching": round(monthly(float(overall["cost_sim_ideal_usd"] or 0), days), 2),
            "window_days": days,
            "note": "run-rate over the log window; simulated figures reprice each request's input with the "
                    "simulated cache reads/writes (requests that could not be simulated keep their actual cost)",
        },
        "tokens": {
            "segments": {k: overall[f"tok_{k}"] for k in ("tools", "system", "history", "new_turn")},
            "segment_shares": {k: _r(overall[f"tok_{k}"] / overall["tok_total"]) if overall["tok_total"] else None
                               for k in ("tools", "system", "history", "new_turn")},
            "estimate_vs_reported": [
                {k: (_r(v) if isinstance(v, float) else v) for k, v in t.items()} for t in tokens_by_model
            ],
            "encodings": encoding_note(sim.models),
            "memo": sim.memo,
        },
        "rules": {name: dataclasses.asdict(prices.rules[name]) for name in rules_used if name in prices.rules},
        "calibration": calibration_section(sim, cfg),
        "complexity": "O(input tokens / block_tokens + content blocks) per scenario; partitions = hash buckets "
                      f"of the first {cfg.block_tokens}-token block ({cfg.buckets} buckets)",
        "timings_s": sim.timings_s,
    }
    o = section["overall"]
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    brk = ", ".join(f"{b['task_type']} ({b['breaker_kind']})" for b in flagged) or "none"
    section["headline"] = (
        f"cacheable {pct(o['as_logged_share'])} as logged, {pct(o['ideal_bp_share'])} with ideal breakpoints, "
        f"{pct(o['ideal_share'])} with ideal ordering; provider-reported {pct(o['reported_cached_share'])}; "
        f"prefix breakers: {brk}"
    )
    return section
