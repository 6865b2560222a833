"""Held-out eval split: deterministic, stratified by task type, group-aware.

Groups (dedup.md §2.6) are unions of examples that must land on the same side:
  - the same session / conversation id;
  - near-duplicates at a LOWER Jaccard than the dedup threshold (default 0.6 on the dialog text),
    so that paraphrased variants of one exchange cannot sit on both sides;
  - the same normalized last user prompt (one question answered twice, differently).
Each task type gets min(cap, round(fraction x examples)) eval examples, filled with whole groups
in a seeded hash order, so the split is reproducible and independent of input order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xxhash

from pipeline.dataset.dedup import DedupConfig, UnionFind, exact_key, near_duplicate_pairs


@dataclass(frozen=True)
class SplitStats:
    groups: int
    largest_group: int
    session_links: int
    near_links: int
    prompt_links: int


def split_groups(
    sessions: Sequence[str | None],
    last_prompts: Sequence[str],
    hash_sets: Sequence[np.ndarray],
    sigs: np.ndarray,
    cfg: DedupConfig,
    group_threshold: float,
) -> tuple[list[int], SplitStats]:
    """Group root per example and how the groups were formed."""
    n = len(sessions)
    uf = UnionFind(n)
    session_links = near_links = prompt_links = 0
    first_of: dict[object, int] = {}
    for i, s in enumerate(sessions):
        if s:
            j = first_of.setdefault(("s", s), i)
            if j != i:
                uf.union(i, j)
                session_links += 1
    for i, p in enumerate(last_prompts):
        if p.strip():
            j = first_of.setdefault(("p", exact_key(p)), i)
            if j != i:
                uf.union(i, j)
                prompt_links += 1
    if n > 1 and group_threshold <= 1:
        # The dedup banding (S-curve midpoint ~0.61 at 20 x 6): grouping at 0.6 is best effort (the
        # leakage check after writing is the guarantee), and 32 x 4 candidates cost 10x more to verify
        # on templated traffic, where most pairs of a task share its template's shingles.
        pairs = near_duplicate_pairs(hash_sets, sigs, cfg, threshold=group_threshold)
        for i, j, _ in pairs:
            uf.union(i, j)
        near_links = len(pairs)
    roots = [uf.find(i) for i in range(n)]
    sizes: dict[int, int] = defaultdict(int)
    for r in roots:
        sizes[r] += 1
    stats = SplitStats(len(sizes), max(sizes.values(), default=0), session_links, near_links, prompt_links)
    return roots, stats


def assign_split(
    roots: Sequence[int],
    task_types: Sequence[str],
    keys: Sequence[str],
    seed: int,
    fraction: float,
    cap: int,
) -> list[str]:
    """"train" / "eval" per example. `keys` are stable ids (request ids) that seed the group order."""
    members: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(roots):
        members[r].append(i)
    by_task: dict[str, list[int]] = defaultdict(list)
    task_size: dict[str, int] = defaultdict(int)
    for root, idx in members.items():
        # A group belongs to the task type most of its examples have (ties: alphabetical).
        counts: dict[str, int] = defaultdict(int)
        for i in idx:
            counts[task_types[i]] += 1
        task = min(counts, key=lambda t: (-counts[t], t))
        by_task[task].append(root)
        task_size[task] += len(idx)
    split = ["train"] * len(roots)
    for task in sorted(by_task):
        target = min(cap, round(fraction * task_size[task]))
        order = sorted(
            by_task[task],
            key=lambda r: (xxhash.xxh64_intdigest(min(keys[i] for i in members[r]).encode(), seed=seed), r),
        )
        taken = 0
        for root in order:
            if taken >= target:
                break
            size = len(members[root])
            if taken + size > target:
                continue  # a group that would overshoot the quota is skipped for smaller ones
            for i in members[root]:
                split[i] = "eval"
            taken += size
    return split
