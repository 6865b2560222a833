"""The per-partition half of the dataset stage: one bucket of the store in, derived Parquet out.

`dataset_partition.sql` splits the store into buckets by a hash of how a conversation starts (the
stripped system prompt and first message). Every state of one conversation starts the same way,
so a final conversation state and every request it extends share a bucket, and `build_bucket`
needs nothing from outside its bucket: it filters the requests, collapses conversations into one
example per final state, counts tokens, redacts, renders each example's JSONL record and computes
what the global steps need (exact-duplicate key, shingle hashes, MinHash LSH band keys, ranking
and ordering keys). It is a pure function of (bucket files, `BucketParams`) -> files, so the same
code runs in the local process pool and could run as a Ray Data or Spark task; memory follows the
size of one bucket, not of the store.

Its outputs, one file of each per bucket:
  - `examples/bucket-NNNNN.parquet` (`EXAMPLE_SCHEMA`): one row per example;
  - `requests/bucket-NNNNN.parquet` (`BUCKET_REQUEST_SCHEMA`): one row per request, with the filter that
    dropped it or the examples it is part of.
"""

from __future__ import annotations

import functools
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from pipeline.dataset import dedup as dd
from pipeline.dataset.examples import (
    Example,
    Message,
    conversation_texts,
    count_tokens,
    dialog_text_segments,
    messages_of,
    prefix_keys,
    request_messages,
    tools_of,
)
from pipeline.dataset.filters import (
    BAD_ANSWER_REASONS,
    REJECTED_TURN,
    Candidate,
    FilterContext,
    first_reason,
    is_json,
    pii_texts,
    requests_json,
)
from pipeline.dataset.redact import CachedRedactor
from pipeline.dataset.targets import FORMATS, dumps, loads, record_dialog_text
from pipeline.tokens import TokenCounter
from pipeline.workdir.store import dictionary_encoded, table_rows

UNLABELED = "unlabeled"
# Columns `dataset_partition_labeled.sql` joins from audit/request_labels.parquet (those it has).
LABEL_FIELDS = ("task_type", "regenerated", "edited", "feedback_rating")
# Columns partition.sql joins from audit/cache_requests.parquet: the new turn's token count by content key.
TURN_COUNT_FIELDS = ("turn_encoding", "turn_key", "turn_tokens")

EXAMPLE_SCHEMA = pa.schema([
    ("uid", pa.int64()),  # bucket << 32 | position in the bucket: unique, and needs no global pass
    ("example_id", pa.string()),
    ("final_request_id", pa.string()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("rank_positive", pa.int8()),  # representative order: positively rated first (0) ...
    ("rank_ts", pa.float64()),  # ... then the most recent (-timestamp) ...
    ("sort_ts", pa.float64()),  # order inside a JSONL file: task type, timestamp, request id
    ("task_type", pa.string()),
    ("slug", pa.string()),  # the task type as a folder name (--per-task)
    ("session_id", pa.string()),
    ("tokens", pa.int64()),
    ("assistant_tokens", pa.int64()),
    ("redactions", pa.int64()),
    ("exact_key", pa.binary()),  # normalized-text hash of the dialog text
    ("prompt_key", pa.binary()),  # normalized hash of the last user prompt; null when blank
    ("split_key", pa.uint64()),  # xxh64(final request id, seed): seeds the split order
    ("n_hashes", pa.int32()),
    ("hashes", pa.list_(pa.uint32())),  # sorted unique shingle hashes of the dialog text
    ("bands", pa.list_(pa.uint64())),  # dedup banding (bands x rows) keys
    ("leak_n", pa.int32()),
    ("leak_hashes", pa.list_(pa.uint32())),  # of the written record's text; null = same as `hashes`
    ("leak_bands", pa.list_(pa.uint64())),  # leakage-check banding (check_bands x check_rows) keys
    ("request_ids", pa.list_(pa.string())),
    ("record", pa.string()),  # the JSONL line, exactly as it will be written
    ("record_bytes", pa.int64()),  # its UTF-8 length with the newline: file offsets need no sort
])

# The records the target format's validator rejects (parsed back from the line as written), one row
# each; a bucket of valid records writes an empty file.
VALIDATION_SCHEMA = pa.schema([
    ("uid", pa.int64()),
    ("errors", pa.list_(pa.string())),  # as the validator names them, repeats included
])

# Per-request outcome rows of one bucket (an intermediate of this stage, not the store's REQUEST_SCHEMA).
BUCKET_REQUEST_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("task_type", pa.string()),
    ("reason", pa.string()),  # the filter that dropped it; null for survivors
    ("detail", pa.string()),
    ("tokens", pa.int64()),  # null when no filter counted them (dropped before over_token_limit)
    ("assistant_tokens", pa.int64()),
    ("example_uids", pa.list_(pa.int64())),  # survivors: the examples it is part of, in example order
])


@dataclass(frozen=True)
class BucketParams:
    """Everything `build_bucket` needs besides its files (picklable, for worker processes)."""

    format: str
    pii: str
    active_filters: tuple[str, ...]
    max_example_tokens: int
    refusal_prefix_chars: int
    json_task_types: frozenset[str]
    encoding: str
    dedup: dd.DedupConfig
    seed: int


@dataclass(frozen=True)
class BucketSummary:
    bucket: int
    requests: int
    examples: int
    pii_found: dict[str, int] = field(default_factory=dict)
    signature_seconds: float = 0.0  # shingling + hashing + signatures (what bench compares)
    rejected_turn_examples: int = 0  # examples holding a weight-0 turn: dropped, or kept with the weight
    audit_token_counts: int = 0  # texts whose token count came from the audit (not tokenized again)


# Per-process memos: repeated system prompts and tool results are tokenized and scanned once per
# worker, not once per bucket. Both are bounded (see TokenCounter and CachedRedactor).
_COUNTERS: dict[str, TokenCounter] = {}
_REDACTOR: list[CachedRedactor] = []


def _counter(encoding: str) -> TokenCounter:
    if encoding not in _COUNTERS:
        _COUNTERS[encoding] = TokenCounter(encoding, max_entries=500_000)
    return _COUNTERS[encoding]


def _redactor() -> CachedRedactor:
    if not _REDACTOR:
        _REDACTOR.append(CachedRedactor())
    return _REDACTOR[0]


def write_buckets(batches: Iterable[pa.RecordBatch], folder: Path, max_open: int = 1024, chunk_bytes: int = 96 << 20,
                  compression: str | None = "lz4", prefix: str = "part") -> list[int]:
    """Split a stream of rows with a `bucket` column into `folder/bucket=K/<prefix>-NNNNN.arrow` files
    (writers of different `prefix` can fill the same buckets side by side).

    Arrow IPC streams. The batches (a DuckDB reader's) are gathered into chunks of about `chunk_bytes`; each
    chunk is sorted by bucket, cut once, and every bucket's slice written as one batch, its repeated
    texts dictionary-encoded (`dictionary_encoded`: a bucket's conversations start alike, 111 distinct
    system prompts in 999 rows at 1 M, 80% of the bytes written before). Memory is one chunk and its sorted copy,
    whatever the number of rows per bucket (DuckDB's own partitioned Parquet writer buffers a row
    group per partition and ran out of memory at ~10 KB per request). Why chunks: the reader's
    batches are small (2,048 rows), and cutting each of them into a slice per bucket made the cost
    grow with rows x buckets (at 1 M requests, 500 buckets, slices of 4 rows: 47 s per task, 8x the
    200k figure for 5x the rows); a write costs about the same small or large (lz4 and the IPC
    framing work per buffer), so larger chunks mean fewer writes. lz4, not zstd: zstd's per-buffer
    set-up made the step 1.6x slower. At most `max_open` files are open; a bucket whose file was
    closed continues in a new part file.
    """
    writers: OrderedDict[int, tuple[pa.ipc.RecordBatchStreamWriter, pa.NativeFile]] = OrderedDict()
    parts: Counter[int] = Counter()
    # One thread: the buffers of a slice are small, and a pool's hand-off cost more than it saved.
    options = pa.ipc.IpcWriteOptions(compression=compression, use_threads=False)

    def write(bucket: int, batch: pa.RecordBatch) -> None:
        entry = writers.pop(bucket, None)
        if entry is None:
            if len(writers) >= max_open:
                _, (old, sink) = writers.popitem(last=False)
                old.close()
                sink.close()
            path = folder / f"bucket={bucket}" / f"{prefix}-{parts[bucket]:05d}.arrow"
            parts[bucket] += 1
            path.parent.mkdir(parents=True, exist_ok=True)
            sink = pa.OSFile(str(path), "wb")
            entry = (pa.ipc.new_stream(sink, batch.schema, options=options), sink)
        entry[0].write_batch(batch)
        writers[bucket] = entry  # most recently used last

    def cut(batches: list[pa.RecordBatch]) -> None:
        chunk = pa.Table.from_batches(batches)
        col = chunk.schema.get_field_index("bucket")
        chunk = chunk.take(pc.sort_indices(chunk.column(col))).combine_chunks()
        keys = chunk.column(col).to_numpy()
        rows = chunk.remove_column(col).to_batches()[0]
        bounds = [0, *(np.flatnonzero(np.diff(keys)) + 1).tolist(), len(keys)]
        for start, end in zip(bounds[:-1], bounds[1:], strict=False):
            write(int(keys[start]), dictionary_encoded(rows.slice(start, end - start)))

    try:
        gathered: list[pa.RecordBatch] = []
        gathered_bytes = 0
        for batch in batches:
            if not batch.num_rows:
                continue
            if gathered and gathered_bytes + batch.nbytes > chunk_bytes:
                cut(gathered)  # a chunk is at most `chunk_bytes`, or one batch of the reader
                gathered, gathered_bytes = [], 0
            gathered.append(batch)
            gathered_bytes += batch.nbytes
        if gathered:
            cut(gathered)
    finally:
        for writer, sink in writers.values():
            writer.close()
            sink.close()
    return sorted(parts)


def bucket_file_name(bucket: int) -> str:
    """The name of each of a bucket's output files (examples, requests, validation)."""
    return f"bucket-{bucket:05d}.parquet"


def bucket_files(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("*.arrow"))


def _read_stream(path: Path) -> pa.Table:
    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_stream(source).read_all()


def _read_rows(files: Sequence[Path]) -> pa.Table:
    """A bucket's rows, oldest first (ties by request id), as the whole stage orders requests."""
    tables = [_read_stream(f) for f in files]
    if not tables:
        return pa.table({})
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if table.num_rows:
        table = table.sort_by([("ts", "ascending", "at_start"), ("request_id", "ascending", "at_end")])
    return table  # repeated texts stay dictionary-encoded: `table_rows` converts each value once


JsonStats = dict[str, tuple[int, int]]  # {task type: (answered requests, answered as JSON)}


def json_stats(rows: pa.Table | pa.RecordBatch) -> JsonStats:
    """{task type: (answered requests, answered as JSON)} of some rows of `partition.sql`: counted
    on the partition step's batches (`counting_json_stats`) and summed (`add_json_stats`) to find the
    task types whose answers are JSON (the `invalid_format` filter needs them).

    Answered = labelled, finish `stop`, text left after `str.strip()`. Arrow does the counting and
    the stripping (with exactly the characters `str.strip` removes); Python parses only the answers
    that start like JSON or whose request mentions json.
    """
    task = pc.fill_null(rows.column("task_type"), "")
    keep = pc.and_(pc.equal(pc.fill_null(rows.column("finish_reason"), ""), "stop"),
                   pc.invert(pc.is_in(task, pa.array(["", UNLABELED]))))
    rows = rows.select(["task_type", "response_text", "request_params"]).filter(keep)
    stripped = pc.utf8_trim(pc.fill_null(rows.column("response_text"), ""), characters=whitespace())
    answered = pc.greater(pc.utf8_length(stripped), 0)
    rows, stripped = rows.filter(answered), stripped.filter(answered)
    seen = {str(v["values"]): int(v["counts"]) for v in pc.value_counts(rows.column("task_type")).to_pylist()}
    maybe = pc.or_(pc.or_(pc.starts_with(stripped, "{"), pc.starts_with(stripped, "[")),
                   pc.match_substring(pc.fill_null(rows.column("request_params"), ""), "json"))
    as_json: Counter[str] = Counter()
    for row in rows.filter(maybe).to_pylist():
        as_json[row["task_type"]] += is_json(row["response_text"]) or requests_json(row)
    return {t: (n, as_json[t]) for t, n in seen.items()}


def add_json_stats(into: JsonStats, part: JsonStats) -> None:
    for task, (n, j) in part.items():
        seen, as_json = into.get(task, (0, 0))
        into[task] = (seen + n, as_json + j)


def counting_json_stats(batches: Iterable[pa.RecordBatch], into: JsonStats) -> Iterator[pa.RecordBatch]:
    """`batches` as they are, their `json_stats` added to `into` on the way (no second pass over
    the rows to count them)."""
    for batch in batches:
        if batch.num_rows:
            add_json_stats(into, json_stats(batch))
        yield batch


@functools.cache
def whitespace() -> str:
    """Every character `str.strip()` removes."""
    return "".join(ch for ch in map(chr, range(0x110000)) if ch.isspace())


def prime_audit_counts(counter: TokenCounter, rows: pa.Table, encoding: str) -> int:
    """Give `counter` the token counts the audit found for these rows' new turns under `encoding`
    (TURN_COUNT_FIELDS; a count under another encoding is not this one's). The same texts are then
    not tokenized a second time; the counts are the same either way. Returns how many were given."""
    if "turn_key" not in rows.column_names or not rows.num_rows:
        return 0
    same = pc.fill_null(pc.equal(rows.column("turn_encoding").cast(pa.string()), encoding), False)
    given = rows.select(["turn_key", "turn_tokens"]).filter(pc.and_(same, pc.is_valid(rows.column("turn_key"))))
    counter.prime(given.column("turn_key").to_pylist(), given.column("turn_tokens").to_pylist())
    return given.num_rows


def json_task_types(stats: JsonStats, min_share: float) -> frozenset[str]:
    """Task types whose successful answers are JSON at least `min_share` of the time."""
    return frozenset(t for t, (n, j) in stats.items() if n >= 5 and j / n >= min_share)


def build_bucket(files: Sequence[Path], bucket: int, out_dir: Path, params: BucketParams) -> BucketSummary:
    """Filter, collapse, redact and featurize one bucket; write its example and request files."""
    fmt = FORMATS[params.format]
    counter = _counter(params.encoding)
    table = _read_rows(files)
    audit_counts = prime_audit_counts(counter, table, params.encoding)
    table = table.drop_columns([c for c in TURN_COUNT_FIELDS if c in table.column_names])
    ts_type = table.schema.field("ts").type
    rows = table_rows(table.drop_columns(["messages"]))
    messages = request_messages(table.column("messages"))
    del table
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
    cands = [_candidate(row, request) for row, request in zip(rows, messages, strict=True)]
    del rows, messages

    redactor = _redactor()
    ctx = FilterContext(
        max_example_tokens=params.max_example_tokens,
        supports_tools=fmt.supports_tools,
        pii_drop=params.pii == "drop",
        refusal_prefix_chars=params.refusal_prefix_chars,
        json_task_types=params.json_task_types,
        counter=counter,
        redactor=redactor,
    )
    if ctx.pii_drop and "pii" in params.active_filters:
        # the pii filter's texts as one batch (screened together); each candidate's check is then lookups
        redactor.redact_all([t for c in cands for t in pii_texts(c)])
    reasons: dict[str, str] = {}
    for c in cands:
        reason = first_reason(c, params.active_filters, ctx)
        if reason:
            reasons[c.request_id] = reason

    examples = collapse_sessions(cands, reasons)
    examples, rejected_turn_examples = _rejected_turns(examples, fmt.supports_weight, params.format, reasons, ctx.details)
    request_rows = {
        "request_id": [c.request_id for c in cands],
        "ts": [c.row.get("ts") for c in cands],
        "task_type": [c.task_type for c in cands],
        "reason": [reasons.get(c.request_id) for c in cands],
        "detail": [ctx.details.get(c.request_id) for c in cands],
        "tokens": [c.tokens or None for c in cands],
        "assistant_tokens": [c.assistant_tokens or None for c in cands],
    }
    for c in cands:
        c.release()  # examples keep what they need
    for ex in examples:
        if not ex.tokens:
            ex.tokens, ex.assistant_tokens = count_tokens(ex.system, ex.messages, ex.tools, counter)
    pii_found = apply_pii(examples, params.pii, redactor)

    uids = [(bucket << 32) | i for i in range(len(examples))]
    example_uids: dict[str, list[int]] = defaultdict(list)
    for uid, ex in zip(uids, examples, strict=True):
        for rid in ex.request_ids:
            example_uids[rid].append(uid)
    request_rows["example_uids"] = [example_uids.get(rid) for rid in request_rows["request_id"]]

    t = time.perf_counter()
    dialogs = [dialog_text_segments(ex.messages) for ex in examples]
    texts = [text for text, _ in dialogs]
    exact_keys, hash_sets, last_user_keys = dd.segments_features([s for _, s in dialogs], 1, params.dedup.ngram)
    # the prompt key: the last user turn's exact key, when it has text
    prompt_keys = [key if segments[1].strip() else None
                   for key, (_, segments) in zip(last_user_keys, dialogs, strict=True)]
    del dialogs
    sigs = _signatures(hash_sets, params.dedup)
    sig_seconds = time.perf_counter() - t

    records = [fmt.render(ex) for ex in examples]
    # The written record's text differs where the format merges turns or renders tool calls.
    written = [record_dialog_text(record) for record in records]
    differ = [i for i, (w, text) in enumerate(zip(written, texts, strict=True)) if w != text]
    leak_sets: list[np.ndarray | None] = [None] * len(records)
    for i, h in zip(differ, dd.texts_features([written[i] for i in differ], params.dedup.ngram)[1], strict=True):
        leak_sets[i] = h
    del texts, written
    leak_sigs = sigs.copy()
    if differ:
        leak_sigs[differ] = _signatures([leak_sets[i] for i in differ], params.dedup)  # type: ignore[misc]

    lines = [dumps(r) for r in records]
    del records
    # The target's validator on each record as a reader will parse it (here, in parallel, rather than
    # on the files re-read in the driver); the driver counts the errors of the records it writes.
    validated = [(uid, fmt.validate(loads(line), params.max_example_tokens, ex.tokens))
                 for uid, line, ex in zip(uids, lines, examples, strict=True)]
    invalid = [(uid, errs) for uid, errs in validated if errs]
    cfg = params.dedup
    example_rows: dict[str, Any] = {
        "uid": uids,
        "example_id": [ex.example_id for ex in examples],
        "final_request_id": [ex.final_request_id for ex in examples],
        "ts": [ex.ts for ex in examples],
        "rank_positive": [0 if (ex.feedback or 0) > 0 else 1 for ex in examples],
        "rank_ts": [-ex.ts.timestamp() if ex.ts is not None else 0.0 for ex in examples],
        "sort_ts": [ex.ts.timestamp() if ex.ts else 0.0 for ex in examples],
        "task_type": [ex.task_type for ex in examples],
        "slug": [slug(ex.task_type) for ex in examples],
        "session_id": [ex.session_id for ex in examples],
        "tokens": [ex.tokens for ex in examples],
        "assistant_tokens": [ex.assistant_tokens for ex in examples],
        "redactions": [sum(ex.findings.values()) for ex in examples],
        "exact_key": exact_keys,
        "prompt_key": prompt_keys,
        "split_key": [xxhash.xxh64_intdigest(ex.final_request_id.encode(), seed=params.seed) for ex in examples],
        "n_hashes": [h.size for h in hash_sets],
        "hashes": _list_array(hash_sets, pa.uint32()),
        "bands": _list_array(list(dd.band_keys(sigs, cfg.bands, cfg.rows)), pa.uint64()),
        "leak_n": [(h if h is not None else hs).size for h, hs in zip(leak_sets, hash_sets, strict=True)],
        "leak_hashes": pa.array([h.tolist() if h is not None else None for h in leak_sets], pa.list_(pa.uint32())),
        "leak_bands": _list_array(list(dd.band_keys(leak_sigs, cfg.check_bands, cfg.check_rows)), pa.uint64()),
        "request_ids": [ex.request_ids for ex in examples],
        "record": lines,
        "record_bytes": [len(line.encode("utf-8")) + 1 for line in lines],
    }
    schema = EXAMPLE_SCHEMA.set(EXAMPLE_SCHEMA.get_field_index("ts"), pa.field("ts", ts_type))
    name = bucket_file_name(bucket)
    (out_dir / "examples").mkdir(parents=True, exist_ok=True)
    (out_dir / "requests").mkdir(parents=True, exist_ok=True)
    (out_dir / "validation").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"uid": [u for u, _ in invalid], "errors": [e for _, e in invalid]}, schema=VALIDATION_SCHEMA),
                   out_dir / "validation" / name)
    # Dictionary encoding only where values repeat: tried on the records and hash lists, it was half
    # of these writes' CPU (2.3x faster without it, and smaller).
    pq.write_table(pa.table(example_rows, schema=schema), out_dir / "examples" / name, compression="zstd",
                   use_dictionary=["task_type", "slug", "session_id"])
    req_schema = BUCKET_REQUEST_SCHEMA.set(BUCKET_REQUEST_SCHEMA.get_field_index("ts"), pa.field("ts", ts_type))
    pq.write_table(pa.table(request_rows, schema=req_schema), out_dir / "requests" / name, compression="zstd",
                   use_dictionary=["task_type", "reason", "detail"])
    del example_rows, request_rows
    pa.default_memory_pool().release_unused()
    return BucketSummary(bucket, len(cands), len(examples), dict(pii_found), sig_seconds, rejected_turn_examples,
                         audit_counts)


def _rejected_turns(examples: list[Example], supports_weight: bool, format_name: str, reasons: dict[str, str],
                    details: dict[str, str]) -> tuple[list[Example], int]:
    """Never train on a rejected turn: a format with per-turn weights keeps such an example (the turn
    carries weight 0); any other format drops it, and its requests that are in no kept example get
    the reason `rejected_turn`. Returns the examples to keep and how many held a rejected turn."""
    holding = [ex for ex in examples if any(m.role == "assistant" and m.weight == 0 for m in ex.messages)]
    if supports_weight or not holding:
        return examples, len(holding)
    dropped = {id(ex) for ex in holding}
    kept = [ex for ex in examples if id(ex) not in dropped]
    in_kept = {rid for ex in kept for rid in ex.request_ids}
    for ex in holding:
        for rid in ex.request_ids:
            if rid not in in_kept and rid not in reasons:
                reasons[rid] = REJECTED_TURN
                details[rid] = (f"part of a conversation with a rejected earlier answer; the {format_name} format has "
                                "no per-turn weight, so the example is dropped rather than trained on that answer")
    return kept, len(holding)


def _signatures(hash_sets: list[np.ndarray], cfg: dd.DedupConfig) -> np.ndarray:
    if not hash_sets:
        return np.zeros((0, cfg.num_perm), np.uint32)
    return dd.signatures_from_hashes(hash_sets, cfg)


def _list_array(rows: list[np.ndarray], value_type: pa.DataType) -> pa.ListArray:
    """A list column from equal-typed numpy rows without a Python loop over their values."""
    sizes = np.fromiter((r.size for r in rows), dtype=np.int32, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    flat = np.concatenate(rows) if rows else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=value_type))


# --- requests to examples --------------------------------------------------------------------------


def _candidate(row: dict[str, Any], request: list[Message]) -> Candidate:
    label = {k: row.pop(k) for k in LABEL_FIELDS if k in row}
    return Candidate(
        row=row,
        label=label,
        messages=messages_of(row, request),
        tools=tools_of(row),
        task_type=str(label.get("task_type") or UNLABELED),
    )


def collapse_sessions(cands: list[Candidate], reasons: dict[str, str]) -> list[Example]:
    """One example per surviving request whose conversation no other survivor extends."""
    survivors = [c for c in cands if c.request_id not in reasons]
    by_full_key: dict[bytes, list[Candidate]] = defaultdict(list)
    keys: dict[str, list[bytes]] = {}
    for c in cands:
        keys[c.request_id] = prefix_keys(c.row.get("system_text"), c.messages)
        by_full_key[keys[c.request_id][-1]].append(c)
    extended: set[bytes] = set()
    for c in survivors:
        k = keys[c.request_id]
        extended.update(k[i] for i, m in enumerate(c.messages[:-1]) if m.role == "assistant")
    examples = []
    for c in survivors:
        k = keys[c.request_id]
        if k[-1] in extended:
            continue  # an earlier state of a conversation that continues in a later example
        sources: list[str] = []
        for i, m in enumerate(c.messages[:-1]):
            if m.role != "assistant":
                continue
            logged = by_full_key.get(k[i], [])
            alive = [a.request_id for a in logged if a.request_id not in reasons]
            sources.extend(r for r in alive if r not in sources)
            if not alive and any(reasons.get(a.request_id) in BAD_ANSWER_REASONS for a in logged):
                m.weight = 0  # history turn whose own answer was rejected: context only, not a target
        sources.append(c.request_id)
        examples.append(
            Example(
                final_request_id=c.request_id,
                request_ids=sources,
                task_type=c.task_type,
                session_id=c.row.get("session_id"),
                ts=c.row.get("ts"),
                feedback=c.feedback,
                system=c.row.get("system_text"),
                messages=c.messages,
                tools=c.tools,
                tokens=c.tokens,
                assistant_tokens=c.assistant_tokens,
                example_id=f"ex_{xxhash.xxh3_64_hexdigest(c.request_id.encode())}",
            )
        )
    return examples


def apply_pii(examples: list[Example], mode: str, redactor: CachedRedactor) -> Counter[str]:
    """Redact (or, in keep/drop mode, only count) secrets and PII in every text of every example."""
    # the bucket's texts as one batch: the redactor screens the new ones together
    results = iter(redactor.redact_all([t for ex in examples for t in conversation_texts(ex.system, ex.messages)]))
    total: Counter[str] = Counter()
    for ex in examples:
        counts: Counter[str] = Counter()
        system = _next_redacted(results, counts)
        contents = [_next_redacted(results, counts) for _ in ex.messages]
        calls = [[{**c, "arguments": _next_redacted(results, counts)} for c in m.tool_calls or []] for m in ex.messages]
        if mode == "redact":
            ex.system = system
            for m, content, redacted_calls in zip(ex.messages, contents, calls, strict=True):
                m.content = content
                m.tool_calls = redacted_calls or m.tool_calls
        ex.findings = dict(counts)
        total.update(counts)
    return total


def _next_redacted(results: Iterator[tuple[str | None, tuple[tuple[str, int], ...]]], counts: Counter[str]) -> str | None:
    redacted, found = next(results)
    for kind, n in found:
        counts[kind] += n
    return redacted


def slug(task: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in task).strip("._") or "task"
    return safe[:80]
