"""Task typing paths test_thresholds_tasks.py's store does not reach, each planted with its
expected types worked by hand: a family split by tool set (and one whose second tool set is too
small), content requests linked by their user skeleton alone, an unstable system prompt whose
requests join a content group, a template that recurs in exactly `template_min_messages` = 5
documents (and one in 4), and a second store run with `lsh_max_indexed = 1` and `tool_split = false`.

Prompts are letter-only words (nothing masked); see test_thresholds_tasks.py for the Jaccards of
two versions sharing their first m of 102 words (m = 69: 0.5038, one family).
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from planted_store import msg, row, write_store
from test_thresholds_tasks import T0, TEMPLATES, prompt, word

from audit import tasks
from audit.tables import query
from pipeline.similarity import TEMPLATE_SHINGLES, jaccard, mask_dynamic, words

VOCAB = [word("u", i) for i in range(3000)]
TOOLS = {"web": ["search", "fetch"], "office": ["calendar", "email"], "files": ["read_file"]}


class Planted:
    """Rows of a planted store, with the helpers that add requests."""

    def __init__(self, seed: int) -> None:
        self.rows: list[dict[str, Any]] = []
        self.rng = random.Random(seed)

    def free(self, n: int) -> str:
        return " ".join(self.rng.choice(VOCAB) for _ in range(n))

    def add(self, rid: str, system: str | None, user: str, tools: str | None = None) -> None:
        tools_json = json.dumps([{"name": t, "description": t, "parameters": {}} for t in TOOLS[tools]]) if tools else None
        self.rows.append(row(request_id=rid, ts=T0 + timedelta(minutes=len(self.rows)), provider="openai",
                             model="gpt-4o-mini", system_text=system, messages=[msg("user", user)], tools_json=tools_json,
                             status_code=200, finish_reason="stop", response_text="ok", in_uncached=200, out_total=5))

    def run(self, wd: Path, config: dict[str, Any]) -> tuple[dict[str, str], dict[str, dict]]:
        """(request id -> task type, task type -> its task_types row) after `tasks.run`."""
        write_store(wd, self.rows)
        tasks.run(wd, wd / "audit", config)
        labels = pq.read_table(wd / "audit" / "request_labels.parquet").to_pylist()
        types = {t["task_type"]: t for t in pq.read_table(wd / "audit" / "task_types.parquet").to_pylist()}
        return {r["request_id"]: r["task_type"] for r in labels}, types


def dated(prefix: str, shared_with: str | None = None, shared: int = 0, base: int = 1000) -> str:
    """prompt(...) with a number after every other word (base, base + 2, ...): masked to `#`."""
    ws = prompt(prefix, shared_with, shared).split()
    return " ".join(f"{w} {base + i}" if i % 2 == 0 else w for i, w in enumerate(ws))


DATED = {"dated_v1": dated("dv"), "dated_v2": dated("dw", "dv", 69, base=5000)}


def test_dated_versions_are_alike_only_masked() -> None:
    hasher = TEMPLATE_SHINGLES.hasher()

    def shingles(text: str):  # noqa: ANN202
        return hasher.shingles(words(text))

    v1, v2 = DATED.values()
    assert jaccard(shingles(mask_dynamic(v1)), shingles(mask_dynamic(v2))) == pytest.approx(0.51)
    assert jaccard(shingles(v1), shingles(v2)) == 0.0  # every raw shingle holds a number


def types_of(task_of: dict[str, str], name: str) -> set[str]:
    return {t for rid, t in task_of.items() if rid.rsplit("_", 1)[0] == name}


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, dict]]:
    """One store, default config:
    - agent (one system prompt): 12 requests with tools web (search, fetch), 12 with office
      (calendar, email): 24 >= 2 x 10 requests, two disjoint sets of 12 >= 10 and >= 0.1 x 24, no
      sessions to contradict it -> split in two types;
    - helper: 12 with web, 9 with files: the second set is under 10 requests -> one type of 21;
    - ruled, boxed: no system prompt; free text around a separator line of 20 `=` (or `*`): the
      line recurs in 10 messages (a template line, >= 12 characters) but has no word, so no
      shingle recurs and nothing but the skeleton links them -> one content type each;
    - rare: a system prompt sent 5 times (under 10: no stable family) with a two-line user
      template that 6 requests without a system prompt also use -> one content type of 11;
    - five: a one-line instruction (5 fixed words = 3 shingles) in exactly 5 distinct messages,
      each sent twice -> its shingles recur in 5 documents: linked, 10 requests, a type;
    - four: the same kind of instruction in 4 distinct messages sent 3 times each -> its shingles
      recur in 4 documents only: 4 groups of 3 identical prompts, `other`;
    - dated: two versions, 12 requests each, whose masked prompts are at J = 0.51 (their raw
      texts, numbers and all, at 0) -> one type of 24;
    - shared (40: 20 translate + 20 rephrase, templates sharing a line: no split) and pair (30:
      20 translate + 10 review: split), in that order of their families (most requests first):
      the family that does not split is passed over, the next one still splits."""
    p = Planted(11)
    for name, system in DATED.items():
        for k in range(12):
            p.add(f"{name}_{k}", system, p.free(12))
    slots = [word("s", i) for i in range(3000)]
    for family, counts in (("shared", {"translate": 20, "rephrase": 20}), ("pair", {"translate": 20, "review": 10})):
        system = prompt(family[:2])
        for name, count in counts.items():
            head, tail = TEMPLATES[name]
            for k in range(count):
                p.add(f"{family}_{name}_{k}", system, f"{head}\n{' '.join(p.rng.choice(slots) for _ in range(10))}\n{tail}")
    agent, helper, rare = prompt("ag"), prompt("hl"), prompt("ra")
    for k in range(12):
        p.add(f"agent_web_{k}", agent, p.free(12), tools="web")
        p.add(f"agent_office_{k}", agent, p.free(12), tools="office")
        p.add(f"helper_web_{k}", helper, p.free(12), tools="web")
    for k in range(9):
        p.add(f"helper_files_{k}", helper, p.free(12), tools="files")
    for k in range(10):
        p.add(f"ruled_{k}", None, f"{p.free(6)}\n{'=' * 20}\n{p.free(6)}")
        p.add(f"boxed_{k}", None, f"{p.free(6)}\n{'*' * 20}\n{p.free(6)}")
    template = "Extract every invoice number from the text below.\n{}\nReply with a comma separated list only."
    for k in range(5):
        p.add(f"rare_{k}", rare, template.format(p.free(8)))
    for k in range(6):
        p.add(f"rare_content_{k}", None, template.format(p.free(8)))
    for k in range(5):
        text = "kindly summarise the passage briefly " + p.free(5)
        p.add(f"five_{2 * k}", None, text)
        p.add(f"five_{2 * k + 1}", None, text)
    for k in range(4):
        text = "gently translate the paragraph carefully " + p.free(5)
        for r in range(3):
            p.add(f"four_{3 * k + r}", None, text)
    return p.run(tmp_path_factory.mktemp("tasks_links"), {})


def test_tool_sets_split_a_family(links: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = links
    (web,), (office,) = types_of(task_of, "agent_web"), types_of(task_of, "agent_office")
    assert tasks.OTHER not in (web, office) and web != office
    for t, names in ((web, "fetch, search"), (office, "calendar, email")):
        assert (types[t]["requests"], types[t]["basis"]) == (12, "system_prompt+tool_set")
        assert types[t]["label"].endswith(f" [tools: {names}]"), types[t]["label"]


def test_a_tool_set_under_ten_requests_splits_nothing(links: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = links
    (t,) = types_of(task_of, "helper_web") | types_of(task_of, "helper_files")
    assert (types[t]["requests"], types[t]["basis"]) == (21, "system_prompt")
    assert "[tools:" not in types[t]["label"]


def test_user_skeleton_alone_links_content(links: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = links
    (ruled,), (boxed,) = types_of(task_of, "ruled"), types_of(task_of, "boxed")
    assert tasks.OTHER not in (ruled, boxed) and ruled != boxed
    assert [(types[t]["requests"], types[t]["basis"]) for t in (ruled, boxed)] == [(10, "content")] * 2


def test_an_unstable_system_prompt_joins_content(links: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = links
    (t,) = types_of(task_of, "rare") | types_of(task_of, "rare_content")
    assert t != tasks.OTHER and (types[t]["requests"], types[t]["basis"]) == (11, "content")


def test_template_in_five_documents_links_four_do_not(links: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = links
    (five,) = types_of(task_of, "five")
    assert five != tasks.OTHER and (types[five]["requests"], types[five]["basis"]) == (10, "content")
    assert types_of(task_of, "four") == {tasks.OTHER}


def test_versions_alike_once_masked_are_one_type(links: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = links
    (t,) = types_of(task_of, "dated_v1") | types_of(task_of, "dated_v2")
    assert (types[t]["requests"], types[t]["basis"]) == (24, "system_prompt")


def test_a_family_after_one_that_does_not_split_still_splits(links: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = links
    (shared,) = types_of(task_of, "shared_translate") | types_of(task_of, "shared_rephrase")
    assert types[shared]["requests"] == 40
    (translate,), (review,) = types_of(task_of, "pair_translate"), types_of(task_of, "pair_review")
    assert translate != review and [types[translate]["requests"], types[review]["requests"]] == [20, 10]
    assert types[review]["basis"] == "system_prompt+user_template"


def test_no_other_types(links: tuple[dict[str, str], dict[str, dict]]) -> None:
    """shared, pair's 2, dated, agent's 2, helper, ruled, boxed, rare and five: 11 types; four's 12
    requests are `other`."""
    _, types = links
    assert sorted(t["requests"] for t in types.values()) == [10, 10, 10, 10, 11, 12, 12, 12, 20, 21, 24, 40]
    assert types[tasks.OTHER]["requests"] == 12


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, dict]]:
    """`lsh_max_indexed = 1` and `tool_split = false`. System prompts in the LSH order (most requests
    first): x_v1 (25), x_v2 (24, J = 0.5038 to x_v1), tooled (20), y_v1 (12), y_v2 (11, J = 0.5038
    to y_v1). Only x_v1 is indexed: x_v2 merges with it, y_v2 finds no indexed version -> y's
    versions are two types. tooled: 10 web + 10 office would split by tool set, but the split is
    off -> one type. Content: 10 `rewrite` and 10 `summarise` messages (LSH links only): only the
    first document is indexed, so only its template forms a type, the other is `other`."""
    p = Planted(12)
    x_v1, y_v1 = prompt("xv"), prompt("yv")
    versions = {"x_v1": (x_v1, 25), "x_v2": (prompt("xw", "xv", 69), 24), "y_v1": (y_v1, 12),
                "y_v2": (prompt("yw", "yv", 69), 11)}
    for name, (system, count) in versions.items():
        for k in range(count):
            p.add(f"{name}_{k}", system, p.free(12))
    tooled = prompt("tl")
    for k in range(10):
        p.add(f"tooled_{k}", tooled, p.free(12), tools="web")
        p.add(f"tooled_{10 + k}", tooled, p.free(12), tools="office")
        p.add(f"rewrite_{k}", None, "please rewrite this text formally " + p.free(5))
        p.add(f"summarise_{k}", None, "kindly summarise the passage briefly " + p.free(5))
    return p.run(tmp_path_factory.mktemp("tasks_capped"), {"audit": {"tasks": {"lsh_max_indexed": 1,
                                                                                "tool_split": False}}})


def test_index_cap_keeps_later_versions_apart(capped: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = capped
    (x1,), (x2,) = types_of(task_of, "x_v1"), types_of(task_of, "x_v2")
    (y1,), (y2,) = types_of(task_of, "y_v1"), types_of(task_of, "y_v2")
    assert x1 == x2 and types[x1]["requests"] == 49
    assert y1 != y2 and [types[y1]["requests"], types[y2]["requests"]] == [12, 11]


def test_tool_split_off_keeps_a_family_whole(capped: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = capped
    (t,) = types_of(task_of, "tooled")
    assert (types[t]["requests"], types[t]["basis"]) == (20, "system_prompt") and "[tools:" not in types[t]["label"]


def test_index_cap_links_only_the_first_template(capped: tuple[dict[str, str], dict[str, dict]]) -> None:
    task_of, types = capped
    rewrite, summarise = types_of(task_of, "rewrite"), types_of(task_of, "summarise")
    assert len(rewrite) == len(summarise) == 1 and {tasks.OTHER} in (rewrite, summarise) and rewrite != summarise
    (t,) = rewrite | summarise - {tasks.OTHER}
    assert (types[t]["requests"], types[t]["basis"]) == (10, "content")


# --- which groups the split by tool set reads (tasks_tool_sets.sql) -----------------------------------


def test_tool_set_input_is_the_groups_that_could_split() -> None:
    """Only groups with at least 2 x min_type_requests requests AND two tool sets reach Python (no
    tools counts as a set; NULL and '' are the same set); their rows come in request order."""
    groups = {  # group -> tool sets of its requests
        "two_sets_20": ["a"] * 10 + ["b"] * 10,  # 20 requests, two sets: read
        "two_sets_19": ["a"] * 10 + ["b"] * 9,  # one request short
        "one_set_40": ["a"] * 40,  # large, one set
        "none_and_a_20": [None] * 10 + ["a"] * 10,  # no tools is a set of its own
        "null_and_empty_20": [None] * 10 + [""] * 10,  # the same (empty) set twice
    }
    ids, grps, names = [], [], []
    for g, sets in groups.items():
        for i, s in enumerate(sets):
            ids.append(f"{g}-{i:02d}")
            grps.append(g)
            names.append(s)
    order = list(reversed(range(len(ids))))  # stored out of request order
    con = duckdb.connect()
    con.register("g_view", pa.table({"request_id": [ids[i] for i in order], "grp": [grps[i] for i in order]}))
    con.register("f_view", pa.table({"request_id": ids, "ts": pa.array([T0] * len(ids), pa.timestamp("us")),
                                     "session_id": [None] * len(ids), "tool_names_key": names}))
    con.execute("CREATE TEMP TABLE request_groups AS SELECT * FROM g_view")
    con.execute("CREATE TEMP TABLE features AS SELECT * FROM f_view")
    rows = query(con, "tasks_tool_sets", min_rows=20).fetchall()
    assert sorted({r[1] for r in rows}) == ["none_and_a_20", "two_sets_20"]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert len(rows) == 40
