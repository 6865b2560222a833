"""The prefix-breaker flag's request-share cut-off pinned from both sides (audit/cache.py,
cache_prefix_breakers.sql): a task type is flagged when at least half of its requests carry the
breaker. 30 requests put a timestamp before 1,500 stable words; N more requests of the same task
type carry no dynamic span. N = 30 -> 30/60 = 0.5 (flagged); N = 31 -> 30/61 = 0.49 (not)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from planted_store import msg, row, write_store

from audit import cache, cost

T = datetime(2026, 9, 1, 9, tzinfo=UTC)
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo"]


def text(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def flagged(tmp_path: Path, plain: int) -> list[dict]:
    stable = text(1, 1500)
    rows, ids = [], []
    for i in range(30):
        ts = T + timedelta(minutes=i)
        rows.append(row(request_id=f"brk{i}", ts=ts, provider="openai", model="gpt-4o",
                        system_text=f"Current time: {ts.isoformat()}\n\n{stable}",
                        messages=[msg("user", f"question {i}: " + text(100 + i, 20))], status_code=200,
                        in_uncached=1600, in_cache_read=0, out_total=20))
        ids.append(f"brk{i}")
    for i in range(plain):
        rows.append(row(request_id=f"plain{i}", ts=T + timedelta(minutes=i, seconds=30), provider="openai",
                        model="gpt-4o", system_text="You answer briefly.",
                        messages=[msg("user", text(500 + i, 15))], status_code=200, in_uncached=40,
                        in_cache_read=0, out_total=5))
        ids.append(f"plain{i}")
    write_store(tmp_path, rows)
    out = tmp_path / "audit"
    out.mkdir()
    pq.write_table(pa.table({"request_id": ids, "task_type": ["qa"] * len(ids)}), out / "request_labels.parquet")
    cost.run(tmp_path, out, {})
    return cache.run(tmp_path, out, {})["prefix_breakers"]


@pytest.mark.parametrize(("plain", "is_flagged"), [(30, True), (31, False)])
def test_breaker_request_share_both_sides(tmp_path: Path, plain: int, is_flagged: bool) -> None:
    assert cache.CacheConfig().breaker_min_request_share == 0.5
    found = [(b["task_type"], b["breaker_kind"]) for b in flagged(tmp_path, plain)]
    assert found == ([("qa", "timestamp")] if is_flagged else [])
