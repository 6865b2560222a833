"""The cache passes' faster helpers against their plain references: `audit.cache.PrefixHashes`
(rolling token hashes resumed from the longest block prefix hashed before) against
`rolling_token_hashes` from the first token, on planted prompts whose block ends fall just before,
on and just after the 64-token block boundaries; timestamps read as integers against `datetime`;
`ListColumn` against `to_pylist`; `first_token_hash` against the first rolling hash."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from audit.cache import PrefixHashes, first_token_hash, rolling_token_hashes
from pipeline.tokens import text_key

B = 64


def chain_of(keys: list[int], seed: int) -> list[int]:
    """`rolling_block_hashes` over block keys (the chain the preparer passes)."""
    import xxhash

    out, h = [], seed
    for k in keys:
        h = xxhash.xxh3_64_intdigest(k.to_bytes(8, "little"), seed=h)
        out.append(h)
    return out


def prompt(blocks: dict[int, np.ndarray], keys: list[int]) -> tuple[list[np.ndarray], list[int]]:
    arrays = [blocks[k] for k in keys]
    return arrays, np.cumsum([len(a) for a in arrays]).tolist()


def check(ph: PrefixHashes, blocks: dict[int, np.ndarray], keys: list[int], seed: int, encoding: str = "o200k_base",
          ) -> list[int]:
    arrays, ends = prompt(blocks, keys)
    got = ph.hashes(encoding, arrays, chain_of(keys, seed), ends, seed)
    assert got == rolling_token_hashes(arrays, seed, B)
    return got


@pytest.mark.parametrize("sizes", [
    [63, 1, 64],  # the first block ends one short of a boundary, the second exactly on it
    [64, 64, 0, 65],  # ends on boundaries, an empty block, one past
    [1023, 1, 128, 127],  # around the 1,024-token minimum and a 128-token step
    [10, 20, 30],  # no complete block until the third
])
def test_growing_conversation_equals_hashing_from_the_start(sizes: list[int]) -> None:
    rng = np.random.default_rng(len(sizes) * 7 + sizes[0])
    blocks = {k: rng.integers(0, 200_000, size=n, dtype=np.uint32) for k, n in enumerate(sizes, start=1)}
    blocks[99] = rng.integers(0, 200_000, size=70, dtype=np.uint32)
    seed = text_key("openai|gpt-4o")
    ph = PrefixHashes(B)
    keys = list(blocks)[: len(sizes)]
    for n in range(1, len(keys) + 1):  # every turn repeats the previous prompt and appends a block
        check(ph, blocks, keys[:n], seed)
    check(ph, blocks, [*keys, 99], seed)  # resumed after the last block
    check(ph, blocks, [keys[0], 99], seed)  # diverges after the first block
    check(ph, blocks, keys[:1], seed)  # a prompt seen before


def test_scope_and_encoding_never_share_a_state() -> None:
    rng = np.random.default_rng(3)
    blocks = {1: rng.integers(0, 9, size=100, dtype=np.uint32), 2: rng.integers(0, 9, size=100, dtype=np.uint32)}
    ph = PrefixHashes(B)
    a, b = text_key("openai|gpt-4o"), text_key("anthropic|claude")
    ha = check(ph, blocks, [1, 2], a)
    hb = check(ph, blocks, [1, 2], b)  # same blocks, another scope: its own seed, its own hashes
    assert ha != hb
    # The same chain under another encoding (other tokens for the same text) is hashed afresh.
    other = {1: blocks[1][:90], 2: blocks[2]}
    arrays, ends = prompt(other, [1, 2])
    assert ph.hashes("cl100k_base", arrays, chain_of([1, 2], a), ends, a) == rolling_token_hashes(arrays, a, B)


def test_random_prompts_with_shared_prefixes_and_a_cleared_memo() -> None:
    rnd = random.Random(11)
    rng = np.random.default_rng(11)
    blocks = {k: rng.integers(0, 200_000, size=rnd.choice([0, 1, 63, 64, 65, 127, 128, 129, 300]), dtype=np.uint32)
              for k in range(1, 40)}
    seed = text_key("deepseek|deepseek-chat")
    ph = PrefixHashes(B, max_entries=25)  # small: the memo is cleared several times on the way
    prompts: list[list[int]] = [[]]
    for _ in range(300):
        base = rnd.choice(prompts)
        keys = base[: rnd.randint(0, len(base))] + rnd.sample(range(1, 40), rnd.randint(0, 4))
        if keys:
            check(ph, blocks, keys, seed)
            prompts.append(keys)


# --- the columnar readers of the prepare and simulation passes ------------------------------------


@pytest.mark.parametrize("ts", [
    datetime(2026, 3, 1, 0, 0, 0, 0, tzinfo=UTC),  # midnight: the new day
    datetime(2026, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC),  # the last microsecond of the day before
    datetime(2026, 6, 1, 12, 0, 0, 123_000, tzinfo=UTC),  # .123 s: 0.123 * 1000 is not exact in binary
    datetime(2026, 6, 1, 12, 0, 0, 1_001, tzinfo=UTC),
    datetime(2026, 6, 1, 12, 0, 0, 999, tzinfo=UTC),  # under a millisecond: truncated
    datetime(1970, 1, 1, tzinfo=UTC),
])
def test_timestamps_from_integer_microseconds_equal_the_datetime_ones(ts: datetime) -> None:
    from audit.cache import _ts_ms, _utc_date
    from audit.token_accounting import prompt_rows

    us = pa.array([ts], type=pa.timestamp("us", tz="UTC"))
    batch = pa.RecordBatch.from_arrays([us, pa.array([[]], type=pa.list_(pa.struct([
        ("role", pa.string()), ("content", pa.string()), ("parts_json", pa.string()),
        ("tool_calls", pa.list_(pa.struct([("name", pa.string()), ("arguments", pa.string())]))),
        ("tool_call_id", pa.string()), ("name", pa.string())])))], names=["ts", "messages"])
    rows, _ = prompt_rows(batch)
    value = rows[0]["ts"]
    assert isinstance(value, int)
    assert _ts_ms(value) == int(ts.timestamp() * 1000)
    assert _utc_date(value) == ts.date()
    # Written back through the prepared schema's timestamp column, the integer is the same instant.
    assert pa.array([value], type=pa.timestamp("us", tz="UTC")).to_pylist() == [ts]


def test_random_microseconds_give_the_datetime_milliseconds() -> None:
    from audit.cache import _ts_ms, _utc_date

    rnd = random.Random(5)
    for _ in range(20_000):
        us = rnd.randrange(0, 4_000_000_000_000_000)
        ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
        assert _ts_ms(us) == int(ts.timestamp() * 1000)
        assert _utc_date(us) == ts.date()


@pytest.mark.parametrize("values", [
    [[1, 2, 3], None, [], [2**64 - 1, 0]],  # nulls, empty lists, the largest uint64
    [None, None],
    [[7]],
    [],
])
def test_list_column_equals_to_pylist(values: list[list[int] | None]) -> None:
    from audit.cache import ListColumn

    def rows(column: pa.Array | pa.ChunkedArray) -> list[list[int]]:
        lists = ListColumn(column)
        return [lists[i] for i in range(len(column))]

    def expected(column: pa.Array | pa.ChunkedArray) -> list[list[int]]:
        return [v if v is not None else [] for v in column.to_pylist()]  # a null list reads as empty

    arr = pa.array(values, type=pa.list_(pa.uint64()))
    assert rows(arr) == expected(arr)
    if len(arr) > 1:
        sliced = arr.slice(1)  # its offsets point into the parent's values
        assert rows(sliced) == expected(sliced)
    chunked = pa.chunked_array([arr, arr], type=arr.type)
    assert rows(chunked) == expected(chunked)
    bools = pa.array([[True, False], None, [False]], type=pa.list_(pa.bool_()))
    assert rows(bools) == expected(bools)


@pytest.mark.parametrize("sizes", [[63], [64], [65], [30, 33], [30, 34], [30, 35], [0, 64], [10, 0, 54, 7], [200]])
def test_first_token_hash_is_the_first_rolling_hash(sizes: list[int]) -> None:
    """Breakpoint rows keep only the first token hash (their partition key): blocks that end just
    before, on and after the first 64-token boundary, empty blocks, one long block."""
    rng = np.random.default_rng(len(sizes) * 100 + sum(sizes))
    arrays = [rng.integers(0, 200_000, n).astype(np.uint32) for n in sizes]
    assert first_token_hash(arrays, 7, B) == rolling_token_hashes(arrays, 7, B)[:1]
    assert first_token_hash(arrays, 7, B) == ([] if sum(sizes) < B else [rolling_token_hashes(arrays, 7, B)[0]])
