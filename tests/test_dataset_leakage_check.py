"""The leakage check (`assemble.leakage`) on planted placements: an eval record and a train record
that share a check band and have Jaccard >= the threshold are one leak, reported with each one's
position in its split's file order; a pair sharing a band below the threshold, a pair whose set
sizes cannot reach it, a pair with no shared band, and eval-eval or train-train twins are not."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dataset import assemble
from pipeline.dataset import dedup as dd

# uid: (split, line in its file, leak bands, leak hashes)
BASE = list(range(100, 110))  # ten shingle hashes
PLANTED: dict[int, tuple[str, int, list[int], list[int]]] = {
    1: ("eval", 2, [11, 12], BASE),
    2: ("train", 3, [12, 13], BASE[:9] + [999]),  # with 1: a shared band, Jaccard 9/11 = 0.818 (leak)
    3: ("eval", 1, [21], BASE),
    4: ("train", 1, [21], BASE[:8] + [997, 998]),  # with 3: a shared band, Jaccard 8/12 = 0.667
    5: ("eval", 3, [31], BASE),
    6: ("train", 2, [31], BASE[:7]),  # with 5: sizes 7 and 10 cannot reach 0.8
    7: ("train", 4, [41], BASE),  # equal to 1, 3 and 5 but shares no band with them
    8: ("train", 5, [51], BASE),
    9: ("train", 6, [51], BASE),  # train-train twins: not a leak
    10: ("eval", 4, [61], BASE),
    11: ("eval", 5, [61], BASE),  # eval-eval twins: not a leak
}


def test_the_leakage_check_reports_eval_train_pairs_at_the_threshold(tmp_path: Path) -> None:
    (tmp_path / "examples").mkdir()
    uids = sorted(PLANTED)
    pq.write_table(pa.table({
        "uid": pa.array(uids, pa.int64()),
        "hashes": pa.array([PLANTED[u][3] for u in uids], pa.list_(pa.uint32())),
        "leak_hashes": pa.array([None] * len(uids), pa.list_(pa.uint32())),
        "leak_bands": pa.array([PLANTED[u][2] for u in uids], pa.list_(pa.uint64())),
    }), tmp_path / "examples" / "bucket-00000.parquet")
    con = duckdb.connect()
    con.register("placed_rows", pa.table({
        "uid": pa.array(uids, pa.int64()),
        "split": [PLANTED[u][0] for u in uids],
        "rel": [f"{PLANTED[u][0]}.jsonl" for u in uids],
        "line": [PLANTED[u][1] for u in uids],
        "leak_n": [len(PLANTED[u][3]) for u in uids],
    }))
    con.execute("CREATE TABLE placed AS SELECT * FROM placed_rows")
    result = assemble.leakage(con, assemble.Inputs(tmp_path), dd.DedupConfig())
    assert (result["eval_checked"], result["train_indexed"]) == (5, 6)
    # uid 1 is the 2nd eval line (index 1), uid 2 the 3rd train line (index 2)
    assert result["pairs"] == 1
    assert result["examples"] == [{"eval_index": 1, "train_index": 2, "jaccard": round(9 / 11, 4)}]
