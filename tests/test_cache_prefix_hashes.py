"""`audit.cache.PrefixHashes` (rolling token hashes resumed from the longest block prefix hashed
before) against the plain `rolling_token_hashes` from the first token, on planted prompts whose
block ends fall just before, on and just after the 64-token block boundaries."""

from __future__ import annotations

import random

import numpy as np
import pytest

from audit.cache import PrefixHashes, rolling_token_hashes
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
