"""Task types without labels, and the user signals that say which answers were rejected.

Answers two questions from the logs alone: "how many distinct task types do we really have, and
which are repetitive enough to fine-tune?" and "which responses did users reject?".

Task typing uses the structure of templated production traffic:

1. System-prompt families. Each distinct system prompt is masked (dates, times, UUIDs, ids,
   numbers -> `#`; pipeline/similarity.py) and fingerprinted: one fingerprint per prompt *version*.
   Near-identical masked prompts (word 3-shingle Jaccard >= `system_merge_jaccard`, found with
   MinHash LSH and verified exactly) merge into one family, so a reworded or extended prompt
   does not split its task; the versions are reported per type (task_type_versions).
2. A family with enough requests is a task type. It is split by user-message skeleton (the
   recurring lines of the first user message) only when it carries two or more large templates
   that share no line, i.e. one generic system prompt serving several tasks.
3. Requests without a stable system prompt are grouped by content: MinHash LSH over the
   *recurring* word 3-shingles of the masked system + first user message (shingles found in at
   least `template_min_messages` different messages: the template, not the slots), linked with
   the same user skeleton and, optionally, the same session. Groups smaller than
   `min_type_requests` become `other`.

Everything per request runs in DuckDB (masking, hashing, window joins) or in numpy; Python loops
run over distinct prompts / distinct documents only, and LSH replaces all-pairs comparison.

Entry points (also for `make bench`): `build_features(con, cfg)`, `assign_task_types(con, cfg)`,
`audit.signals.detect_signals(con, signals_cfg)`, `label_requests(con, ...)`, and `run(...)`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit.signals import SignalsConfig, detect_signals
from audit.tables import (
    SQL,
    attach_parquet_view,
    driver_memory_limit,
    open_store,
    query,
    temp_table,
    write_batches,
)
from pipeline.config import from_section
from pipeline.executor import Executor, LocalExecutor, memory_share, processes_with_tasks
from pipeline.progress import phase
from pipeline.similarity import (
    DYNAMIC_SPAN_PATTERN,
    TEMPLATE_SHINGLES,
    MinHasher,
    UnionFind,
    jaccard,
    lsh_link,
    mask_dynamic,
    words,
)
from pipeline.sql import arrow_tables
from pipeline.workdir.store import (
    StorePartition,
    connect_partition,
    connect_requests,
    date_partitions,
    sql_literal,
    store_partitions,
)
from schemas.labels import (
    REQUEST_LABELS_SCHEMA,
    SIGNAL_RATES_SCHEMA,
    TASK_TYPE_VERSIONS_SCHEMA,
    TASK_TYPES_SCHEMA,
)

OTHER = "other"
OTHER_LABEL = "Other: no recurring template"
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?:])\s+|\n+")


@dataclass(frozen=True)
class TasksConfig:
    min_type_requests: int = 10
    """A group needs at least this many requests to be a task type (smaller ones join `other`);
    also the minimum for a system-prompt variant to be reported as a version."""
    system_merge_jaccard: float = 0.5
    """Masked system prompts whose word 3-shingle Jaccard is at least this are one family (versions
    of one prompt). Distinct tasks sharing a preamble measure ~0.1-0.3; an edited version 0.6-0.95."""
    system_num_perm: int = 128
    """MinHash permutations for system prompts (few distinct texts: precision is cheap)."""
    system_max_words: int = 2000
    """System prompts are compared on their first this-many words (bounds the work per prompt)."""
    template_min_messages: int = 5
    """A line (or shingle) that recurs in at least this many DIFFERENT first user messages is
    template text rather than slot content."""
    template_min_line_chars: int = 12
    """Shorter lines ("Thanks!", "#") never count as template lines."""
    family_split_min_share: float = 0.2
    """A system-prompt family is split by user template only when at least two templates each
    hold this share of its requests and share no line. Set above 0.5 to never split."""
    tool_split: bool = True
    """Split a system-prompt group by tool set (agents sharing a base prompt with different tools)."""
    tool_split_min_share: float = 0.1
    """Each part of a tool-set split holds at least this share of the group's requests."""
    tool_split_min_stability: float = 0.9
    """A tool-set split needs at least this share of sessions to keep one tool set throughout."""
    tool_version_max_overlap: float = 0.1
    """Two nested tool sets are versions of one task (the tools grew) when at most this share of the
    older set's requests falls inside the newer set's active period."""
    content_threshold: float = 0.5
    """Estimated Jaccard of recurring shingles that links two prompts without a stable system prompt."""
    content_num_perm: int = 64
    """MinHash permutations for content documents (many texts: 64 keeps signatures cheap)."""
    content_max_words: int = 400
    """Content documents are compared on their first this-many words: templates show early, and
    it bounds the Python work per request when every prompt is different."""
    content_min_shingles: int = 3
    """Prompts with fewer recurring shingles than this are not linked by content."""
    link_sessions: bool = True
    """Requests of one session share a task type when typed by content (follow-up turns of a
    client that sends no history carry no template of their own)."""
    lsh_max_indexed: int = 250_000
    """Cap on LSH index size (bounded memory); see pipeline/similarity.lsh_link."""
    top_k: int = 3
    """The summary reports the share of requests covered by the top-k types."""
    coverage_target: float = 0.8
    """The "~80% of requests follow the same pattern" sign: the summary reports how many types it takes."""
    seed: int = 1
    """MinHash seed (datasketch permutations); results are deterministic for a given seed."""


@dataclass
class TaskAssignment:
    """Per-request task types (TEMP TABLE `task_assignment` in the connection) and versions."""

    types: int  # read by `make bench`
    requests_other: int
    basis_counts: dict[str, int] = field(default_factory=dict)
    versions: pa.Table | None = None


# --- features ----------------------------------------------------------------------------------


def temp_table_from_arrow(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    view = f"{table}_arrow"
    con.register(view, data)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {view}")
    con.unregister(view)


@dataclass(frozen=True)
class FeaturesContext:
    """What every `features_task` shares: the config and its DuckDB's share of the run's budget."""

    cfg: TasksConfig
    memory_limit: str


@dataclass(frozen=True)
class PartitionFeatures:
    """A task's output: the partition's per-request `features` and `user_lines` (Parquet bytes, in
    the partition's row order) and what the merge needs about its system prompts (no prompt text)."""

    name: str
    features: bytes
    user_lines: bytes
    forms: pa.Table  # tasks_system_forms.sql
    masks: pa.Table  # tasks_system_masks.sql


def partition_features(con: duckdb.DuckDBPyConnection, cfg: TasksConfig) -> tuple[pa.Table, pa.Table]:
    """Everything of task typing that is a function of each request alone, over the `requests` of
    `con` (a date partition, or the whole store): TEMP TABLEs `system_prompts` (each distinct prompt
    masked and fingerprinted once), `features` and `user_lines`. Returns the
    partition's prompt forms and masked texts for the merge."""
    SQL.execute(con, "tasks_macros")
    temp_table(con, "system_prompts", "tasks_system_prompts", mask_pattern=DYNAMIC_SPAN_PATTERN)
    temp_table(con, "features", "tasks_features", mask_pattern=DYNAMIC_SPAN_PATTERN)
    temp_table(con, "user_lines", "tasks_user_lines", min_line_chars=cfg.template_min_line_chars)
    return query(con, "tasks_system_forms").to_arrow_table(), query(con, "tasks_system_masks").to_arrow_table()


def features_task(ctx: FeaturesContext, part: StorePartition) -> PartitionFeatures:
    """Task: one date partition's features (`partition_features`). Files that come by value are
    written to a temporary folder of the worker's own; the outputs come back as Parquet bytes, which
    depend only on the partition (one DuckDB thread, insertion order kept), not on how it came.
    DuckDB spills beyond `ctx.memory_limit` to the task's temporary folder."""
    cfg = ctx.cfg
    with tempfile.TemporaryDirectory(prefix="logaudit-tasks-") as tmp:
        con = connect_partition(part, Path(tmp), ctx.memory_limit)
        try:
            forms, masks = partition_features(con, cfg)
            q, bound = SQL.bind("tasks_partition_features", {"min_type_requests": cfg.min_type_requests})
            out = {}
            for table, source in (("features", f"({q.body})"), ("user_lines", "user_lines")):
                path = Path(tmp) / f"{table}.parquet"
                # zstd level 1: a third less CPU than DuckDB's default level, nearly the same size
                con.execute(f"COPY {source} TO {sql_literal(path)} (FORMAT parquet, COMPRESSION zstd, "
                            "COMPRESSION_LEVEL 1)", bound if table == "features" else None)
                out[table] = path.read_bytes()
        finally:
            con.close()
    return PartitionFeatures(part.name, out["features"], out["user_lines"], forms, masks)


def build_features(con: duckdb.DuckDBPyConnection, cfg: TasksConfig, executor: Executor | None = None,
                   workdir: Path | None = None, work: Path | None = None) -> None:
    """`features`, `user_lines` and `user_skeletons` in `con`, and the merged prompt tables
    `prompt_forms` and `prompt_masks`.

    With an executor (and the store's `workdir`, a `work` folder for the outputs): one
    `features_task` per date partition, `features` and `user_lines` views over the files they
    return. Without: the same function over the whole store in `con` (TEMP TABLEs). Then the merge:
    the skeletons need the template lines of every partition.
    """
    if executor is None or workdir is None or work is None:
        forms, masks = partition_features(con, cfg)
        forms = forms.append_column("partition", pa.array([""] * forms.num_rows, pa.string()))
    else:
        ctx = FeaturesContext(cfg, memory_share(executor.memory_mb, processes_with_tasks(executor)))
        payloads = store_partitions(workdir, by_value=not executor.reads_driver_disk)
        for table in ("features", "user_lines"):
            (work / table).mkdir(parents=True, exist_ok=True)
        prompts: dict[str, tuple[pa.Table, pa.Table]] = {}  # partition -> its prompt forms and masks
        for part in executor.map(features_task, payloads, shared=ctx, label="audit.tasks.features",
                                 total=len(payloads)):
            for table, data in (("features", part.features), ("user_lines", part.user_lines)):
                (work / table / f"{part.name}.parquet").write_bytes(data)
            prompts[part.name] = (part.forms.append_column("partition", pa.array([part.name] * part.forms.num_rows,
                                                                                 pa.string())), part.masks)
        names = sorted(prompts)  # name (date) order: the partitions ran largest first
        for table in ("features", "user_lines"):
            files = [str(work / table / f"{name}.parquet") for name in names]
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet({sql_literal(files)})")
        forms = pa.concat_tables(prompts[n][0] for n in names)
        masks = pa.concat_tables(prompts[n][1] for n in names)
    temp_table_from_arrow(con, "prompt_forms", forms)
    temp_table_from_arrow(con, "prompt_masks", masks)
    temp_table(con, "user_skeletons", "tasks_user_skeletons", min_line_messages=cfg.template_min_messages)


# --- 1. system-prompt families -----------------------------------------------------------------


@dataclass
class SystemFamilies:
    fps: list[str]
    masked: list[str]
    examples: list[str]
    requests: np.ndarray
    family: np.ndarray  # family label per fingerprint (smallest member index)
    shingles: list[np.ndarray]

    def family_requests(self) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for fam, n in zip(self.family.tolist(), self.requests.tolist(), strict=True):
            out[fam] += n
        return out


def example_prompts(con: duckdb.DuckDBPyConnection, wanted: dict[str, set[int]],
                    workdir: Path | None = None, memory_limit: str | None = None) -> dict[int, str]:
    """The text of each wanted prompt (`raw_hash`), by date partition name: read back by
    tasks_system_prompts.sql over that partition alone (`workdir`'s store, a DuckDB of
    `memory_limit`, default the driver's share alone), or from the `system_prompts` of `con` when it
    ran over the whole store (partition "")."""
    files = dict(date_partitions(workdir)) if workdir is not None else {}
    texts: dict[int, str] = {}
    for name, hashes in sorted(wanted.items()):
        if name:
            part = connect_requests([str(f) for f in files[name]], memory_limit=memory_limit or driver_memory_limit(),
                                    threads=1,
                                    temp_directory=Path(workdir or ".") / ".duckdb_tmp")
            try:
                temp_table(part, "system_prompts", "tasks_system_prompts", mask_pattern=DYNAMIC_SPAN_PATTERN)
                rows = part.sql("SELECT raw_hash, system_text FROM system_prompts").fetchall()
            finally:
                part.close()
        else:
            rows = con.sql("SELECT raw_hash, system_text FROM system_prompts").fetchall()
        texts.update((h, t) for h, t in rows if h in hashes)
    return texts


def system_families(con: duckdb.DuckDBPyConnection, cfg: TasksConfig, workdir: Path | None = None,
                    memory_limit: str | None = None) -> SystemFamilies:
    """Group masked system prompts into families of near-identical versions (LSH + exact Jaccard)."""
    rows = query(con, "tasks_system_fingerprints").fetchall()
    wanted: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        wanted[r[3]].add(r[2])
    examples = example_prompts(con, wanted, workdir, memory_limit)
    fps = [r[0] for r in rows]
    masked = [r[1] for r in rows]
    hasher = TEMPLATE_SHINGLES.hasher()
    shingles = [hasher.shingles(words(m[: cfg.system_max_words * 12])[: cfg.system_max_words]) for m in masked]
    minhasher = MinHasher(cfg.system_num_perm, cfg.seed)
    sigs = minhasher.signatures(shingles)
    # The estimate only pre-filters (a margin below the threshold); exact Jaccard decides. Few
    # distinct prompts exist, so exact verification is affordable and removes estimator noise.
    uf = lsh_link(
        sigs,
        max(0.05, cfg.system_merge_jaccard - 0.15),
        max_indexed=cfg.lsh_max_indexed,
        verify=lambda i, j: jaccard(shingles[i], shingles[j]) >= cfg.system_merge_jaccard,
    )
    return SystemFamilies(
        fps=fps,
        masked=masked,
        examples=[examples[r[2]] for r in rows],
        requests=np.array([r[4] for r in rows]),
        family=uf.labels(),
        shingles=shingles,
    )


# --- 2 + 3. assignment -------------------------------------------------------------------------


def assign_task_types(con: duckdb.DuckDBPyConnection, cfg: TasksConfig, workdir: Path | None = None,
                      memory_limit: str | None = None) -> TaskAssignment:
    """Assign every request in `features` a task type; creates TEMP TABLE `task_assignment`
    (request_id, task_type, task_label, basis) and returns the versions table. `workdir`: the
    store the features came from partition by partition (`build_features` with an executor)."""
    fams = system_families(con, cfg, workdir, memory_limit)
    fam_requests = fams.family_requests()
    stable = {fam for fam, n in fam_requests.items() if n >= cfg.min_type_requests}
    fp_family = pa.table(
        {
            "system_fp": fams.fps,
            "family": [f"S{f}" if f in stable else None for f in fams.family.tolist()],
        },
        schema=pa.schema([("system_fp", pa.string()), ("family", pa.string())]),
    )
    temp_table_from_arrow(con, "fp_family", fp_family)

    # Family -> split by user template where one system prompt serves several templates. The
    # groups are a TEMP TABLE (`request_groups`): a million requests never pass through Python.
    temp_table_from_arrow(con, "family_splits", _family_splits(con, cfg))
    temp_table(con, "request_groups", "tasks_request_groups")
    basis_of_group = {g: "system_prompt+user_template" if split else "system_prompt"
                      for g, split in con.sql("SELECT DISTINCT grp, split FROM request_groups").fetchall()}
    tool_names: dict[str, str] = {}
    if cfg.tool_split:
        split_of, tool_names, parent_of = _tool_splits(con, cfg)
        for group, parent in parent_of.items():
            basis_of_group[group] = basis_of_group[parent] + "+tool_set"
        moved = pa.table({"request_id": list(split_of), "grp": list(split_of.values())},
                         schema=pa.schema([("request_id", pa.string()), ("grp", pa.string())]))
        with arrow_tables(con, moved_view=moved):
            con.execute("UPDATE request_groups SET grp = m.grp FROM moved_view m "
                        "WHERE request_groups.request_id = m.request_id")

    content = _content_groups(con, cfg)  # requests without a stable family: never in request_groups
    with arrow_tables(con, content_view=content):
        con.execute("INSERT INTO request_groups SELECT request_id, grp, false FROM content_view")
    basis_of_group.update(dict.fromkeys(pc.unique(content["grp"]).to_pylist(), "content"))

    sizes = dict(con.sql("SELECT grp, count(*) FROM request_groups GROUP BY grp").fetchall())
    ordered = sorted((g for g, n in sizes.items() if n >= cfg.min_type_requests), key=lambda g: (-sizes[g], g))
    width = max(2, len(str(len(ordered))))
    type_of_group = {g: f"task_{i + 1:0{width}d}" for i, g in enumerate(ordered)}
    labels = _labels(con, fams, ordered, basis_of_group)
    for g, names in tool_names.items():
        if g in labels:
            labels[g] = f"{labels[g]} [tools: {names}]"

    # (task type, label, basis) per typed group; every other group, and every request in none, is `other`.
    typed = pa.table(
        {
            "grp": ordered,
            "task_type": [type_of_group[g] for g in ordered],
            "task_label": [labels[g] for g in ordered],
            "basis": [basis_of_group[g] for g in ordered],
        },
        schema=pa.schema([("grp", pa.string()), ("task_type", pa.string()), ("task_label", pa.string()),
                          ("basis", pa.string())]),
    )
    temp_table_from_arrow(con, "task_groups", typed)
    temp_table(con, "task_assignment", "tasks_assignment", other_label=OTHER_LABEL)
    counted = con.sql(f"SELECT coalesce(t.basis, '{OTHER}'), count(*) FROM request_groups g "
                      "LEFT JOIN task_groups t USING (grp) GROUP BY 1").fetchall()
    basis_counts = {basis: int(n) for basis, n in sorted(counted, key=lambda r: (-r[1], r[0]))}
    n_other = query(con, "tasks_other_requests").fetchall()[0][0]
    versions = _versions(con, cfg, fams)
    return TaskAssignment(types=len(ordered), requests_other=int(n_other), basis_counts=basis_counts,
                          versions=versions)


def _family_splits(con: duckdb.DuckDBPyConnection, cfg: TasksConfig) -> pa.Table:
    """The sub-groups of families carrying several disjoint large templates: (family, skeleton,
    grp) per large template, and (family, NULL, grp of the largest) for the family's other requests."""
    rows = query(con, "tasks_family_templates").fetchall()
    by_family: dict[str, list[tuple[str | None, int, set[int]]]] = defaultdict(list)
    for fam, skel, n, lines in rows:
        by_family[fam].append((skel, int(n), set(lines or [])))
    out: dict[str, list[Any]] = {"family": [], "skeleton": [], "grp": []}
    for fam, skels in by_family.items():
        total = sum(n for _, n, _ in skels)
        big = sorted(
            (s for s in skels if s[0] is not None and s[1] >= cfg.min_type_requests
             and s[1] >= cfg.family_split_min_share * total),
            key=lambda s: (-s[1], s[0]),
        )
        if len(big) < 2:
            continue
        if any(a[2] & b[2] for i, a in enumerate(big) for b in big[i + 1 :]):
            continue  # templates sharing a line are variants of one template (e.g. a repeated slot value)
        # every other request of the family (minor templates, free text) joins the largest template
        for skel in [*(s[0] for s in big), None]:
            out["family"].append(fam)
            out["skeleton"].append(skel)
            out["grp"].append(f"{fam}/{skel if skel is not None else big[0][0]}")
    return pa.table(out, schema=pa.schema([("family", pa.string()), ("skeleton", pa.string()), ("grp", pa.string())]))


@dataclass
class _ToolSet:
    names: frozenset[str]
    ts: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


def _tool_splits(con: duckdb.DuckDBPyConnection,
                 cfg: TasksConfig) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(request id -> sub-group, sub-group -> its tool names, sub-group -> the group it split) for
    the groups of TEMP TABLE `request_groups` that serve several tasks by tool set.

    Agent frameworks share a base system prompt and vary the tools. Within one group, requests are
    keyed by their tool set (the names, order-insensitive: a schema edited under the same names is a
    version of the same tools); sets are then merged back where they are versions of one task: a set
    that REPLACED a subset of itself over time (tools that grew; at most `tool_version_max_overlap` of the older
    set's requests fall inside the newer one's active period). The group is split only when at
    least two merged sets are large (`min_type_requests` and `tool_split_min_share`) and the split
    is stable: sessions keep one tool set (`tool_split_min_stability`)."""
    rows = query(con, "tasks_tool_sets", min_rows=2 * cfg.min_type_requests).fetchall()
    by_group: dict[str, list[tuple[str, int, str | None, str | None]]] = defaultdict(list)
    for rid, group, ts_ms, session, names in rows:
        by_group[group].append((rid, int(ts_ms or 0), session, names))
    out: dict[str, str] = {}
    names_of: dict[str, str] = {}
    parent_of: dict[str, str] = {}
    for group, reqs in by_group.items():
        # Same names = one set (a schema edit is a new version of the same tools).
        sets: dict[str, _ToolSet] = {}
        for rid, ts_ms, _, names in reqs:
            key = names or ""
            ts_set = sets.setdefault(key, _ToolSet(frozenset(key.split("\x1f")) if key else frozenset()))
            ts_set.ts.append(ts_ms)
            ts_set.ids.append(rid)
        if len(sets) < 2:
            continue
        keys = sorted(sets, key=lambda k: (-len(sets[k].ids), k))
        uf = UnionFind(len(keys))
        for i, a in enumerate(keys):
            for j in range(i + 1, len(keys)):
                if _grown_version(sets[a], sets[keys[j]], cfg.tool_version_max_overlap):
                    uf.union(i, j)
        parts: dict[int, list[str]] = defaultdict(list)
        part_names: dict[int, frozenset[str]] = {}
        for i, lab in enumerate(uf.labels().tolist()):
            parts[lab].extend(sets[keys[i]].ids)
            part_names[lab] = part_names.get(lab, frozenset()) | sets[keys[i]].names
        total = len(reqs)
        big_labels = sorted((lab for lab, ids in parts.items()
                             if len(ids) >= cfg.min_type_requests and len(ids) >= cfg.tool_split_min_share * total),
                            key=lambda lab: (-len(parts[lab]), min(parts[lab])))
        if len(big_labels) < 2:
            continue
        part_of = {rid: n for n, lab in enumerate(big_labels) for rid in parts[lab]}
        sessions: dict[str, set[int]] = defaultdict(set)
        for rid, _, session, _ in reqs:
            if session:
                sessions[session].add(part_of.get(rid, -1))
        multi = [p for p in sessions.values() if len(p) > 1 or -1 in p]
        if sessions and 1 - len(multi) / len(sessions) < cfg.tool_split_min_stability:
            continue  # tools vary within sessions: the set follows the turn, not the task
        for rid, *_ in reqs:
            out[rid] = f"{group}/tools{part_of.get(rid, 0)}"
        for n, lab in enumerate(big_labels):
            names_of[f"{group}/tools{n}"] = ", ".join(sorted(part_names[lab])) or "none"
            parent_of[f"{group}/tools{n}"] = group
    return out, names_of, parent_of


def _grown_version(a: _ToolSet, b: _ToolSet, max_overlap: float) -> bool:
    """One tool set replaced the other over time and one contains the other: versions of one task."""
    if not (a.names <= b.names or b.names <= a.names):
        return False
    older, newer = (a, b) if np.median(a.ts) <= np.median(b.ts) else (b, a)
    lo, hi = np.percentile(newer.ts, [5, 95])
    inside = sum(1 for t in older.ts if lo <= t <= hi)
    return inside <= max_overlap * len(older.ts)


def _content_groups(con: duckdb.DuckDBPyConnection, cfg: TasksConfig) -> pa.Table:
    """Group requests without a stable system prompt by recurring prompt content: (request_id, grp)."""
    temp_table(con, "content_requests", "tasks_content_requests")
    docs = query(con, "tasks_content_documents").to_arrow_table()
    doc_hashes = docs["doc_hash"].to_numpy()
    hasher = TEMPLATE_SHINGLES.hasher()
    shingles = [hasher.shingles(words(d[: cfg.content_max_words * 12])[: cfg.content_max_words])
                for d in docs["doc"].to_pylist()]
    del docs
    hasher.cache_clear()
    # Recurring shingles = template text: present in >= template_min_messages distinct documents.
    if shingles:
        flat = np.concatenate(shingles)
        values, counts = np.unique(flat, return_counts=True)
        recurring = values[counts >= cfg.template_min_messages]
        del flat, values, counts
        shingles = [s[np.isin(s, recurring, assume_unique=True)] for s in shingles]
    idx = np.flatnonzero([len(s) >= cfg.content_min_shingles for s in shingles])  # the linkable documents
    sigs = MinHasher(cfg.content_num_perm, cfg.seed).signatures([shingles[i] for i in idx])
    comp = lsh_link(sigs, cfg.content_threshold, max_indexed=cfg.lsh_max_indexed).labels()
    doc_component = {int(doc_hashes[i]): int(c) for i, c in zip(idx.tolist(), comp.tolist(), strict=True)}
    del shingles

    rows = query(con, "tasks_content_links").to_arrow_table()
    uf_req = UnionFind(rows.num_rows)
    first_with_key: dict[tuple[str, Any], int] = {}

    def link(i: int, key: tuple[str, Any]) -> None:
        j = first_with_key.setdefault(key, i)
        if j != i:
            uf_req.union(i, j)

    for i, (session, skel, doc_hash) in enumerate(
        zip(rows.column(1).to_pylist(), rows.column(2).to_pylist(), rows.column(3).to_pylist(), strict=True)
    ):
        if doc_hash is not None:
            link(i, ("doc", doc_hash))  # identical masked prompts are one group even when unlinkable
            component = doc_component.get(doc_hash)
            if component is not None:
                link(i, ("lsh", component))
        if skel is not None:
            link(i, ("skeleton", skel))
        if cfg.link_sessions and session:
            link(i, ("session", session))
    return pa.table({"request_id": rows.column(0), "grp": [f"C{lab}" for lab in uf_req.labels().tolist()]},
                    schema=pa.schema([("request_id", pa.string()), ("grp", pa.string())]))


# --- labels and versions -------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(text or "") if s and s.strip()]


def _first_distinctive(text: str, others: set[str], limit: int = 90) -> str:
    """The first sentence of `text` whose masked form appears in no other type's prompt
    (shared preambles say nothing about the task), preferring sentences without dynamic spans."""
    sentences = _sentences(text)
    masked = [mask_dynamic(s) for s in sentences]
    for allow_dynamic in (False, True):
        for raw, m in zip(sentences, masked, strict=True):
            if len(m.split()) >= 3 and m not in others and (allow_dynamic or "#" not in m):
                return _clip(raw, limit)
    return _clip(sentences[0], limit) if sentences else ""


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _labels(
    con: duckdb.DuckDBPyConnection,
    fams: SystemFamilies,
    groups: list[str],
    basis_of_group: dict[str, str],
) -> dict[str, str]:
    """A human-readable label per group: the first distinctive instruction line of its prompt."""
    family_text: dict[str, str] = {}
    for i, fam in enumerate(fams.family.tolist()):  # fingerprints are sorted by requests: first = top version
        family_text.setdefault(f"S{fam}", fams.examples[i])
    # User-template / content groups: the most common first line of the first user message.
    wanted = {g for g in groups if basis_of_group[g] != "system_prompt"}
    first_lines: dict[str, str] = {}
    if wanted:  # the groups of TEMP TABLE request_groups
        first_lines = dict(query(con, "tasks_group_first_lines", groups=sorted(wanted)).fetchall())
    sentence_owner: dict[str, set[str]] = defaultdict(set)
    texts: dict[str, str] = {}
    for g in groups:
        fam = g.split("/")[0]
        texts[g] = family_text.get(fam, "") if fam.startswith("S") else first_lines.get(g, "")
        for s in _sentences(texts[g]):
            sentence_owner[mask_dynamic(s)].add(fam if fam.startswith("S") else g)
    labels: dict[str, str] = {}
    for g in groups:
        fam = g.split("/")[0]
        owner = fam if fam.startswith("S") else g
        others = {s for s, owners in sentence_owner.items() if owners - {owner}}
        label = _first_distinctive(texts[g], others)
        if basis_of_group[g] == "system_prompt+user_template" and first_lines.get(g):
            label = f"{label} / {_clip(first_lines[g], 60)}"
        labels[g] = label or _clip(first_lines.get(g, "") or "(no user text)", 90)
    return labels


def _versions(con: duckdb.DuckDBPyConnection, cfg: TasksConfig, fams: SystemFamilies) -> pa.Table:
    rows = query(con, "tasks_versions", min_requests=cfg.min_type_requests).fetchall()
    pos = {fp: i for i, fp in enumerate(fams.fps)}
    out: dict[str, list[Any]] = {f.name: [] for f in TASK_TYPE_VERSIONS_SCHEMA}
    previous: dict[str, str] = {}
    version: Counter[str] = Counter()
    for task, fp, n, first, last in rows:
        version[task] += 1
        prev = previous.get(task)
        sim = added = removed = None
        if prev is not None:
            a, b = pos[prev], pos[fp]
            sim = round(jaccard(fams.shingles[a], fams.shingles[b]), 4)
            old, new = _sentences(fams.masked[a]), _sentences(fams.masked[b])
            added = _clip(" | ".join(s for s in new if s not in set(old)), 300) or None
            removed = _clip(" | ".join(s for s in old if s not in set(new)), 300) or None
        previous[task] = fp
        for k, v in zip(
            out,
            (task, version[task], fp, n, first, last, sim, added, removed),
            strict=True,
        ):
            out[k].append(v)
    return pa.table(out, schema=TASK_TYPE_VERSIONS_SCHEMA)


# --- per-request labels, tables, summary ---------------------------------------------------------


def label_requests(con: duckdb.DuckDBPyConnection, signals: pa.Table) -> None:
    """TEMP TABLE `labels` (REQUEST_LABELS_SCHEMA) from features + task_assignment + signals."""
    temp_table_from_arrow(con, "signals", signals)
    temp_table(con, "labels", "tasks_request_labels")


def _write(table: pa.Table, schema: pa.Schema, path: Path) -> None:
    """Write atomically (tmp name, then rename), in the documented schema (schemas/labels.py)."""
    table = table.select(schema.names).cast(schema)
    write_batches(schema, table.to_batches(), path)


def run(workdir: Path, out_dir: Path, config: dict[str, Any], executor: Executor | None = None) -> dict[str, Any]:
    """Write request_labels, task_types, task_type_versions and signal_rates; return the summary section.

    The per-request features run as one task per date partition, the edit signal's diffs as tasks
    over its candidate pairs, on `executor` (default: one after the other in this process); the
    rest is the merge in this process. Outputs never depend on the executor or its workers.
    """
    cfg = from_section(TasksConfig, config, "audit.tasks")
    signals_cfg = from_section(SignalsConfig, config, "audit.signals")
    out_dir.mkdir(parents=True, exist_ok=True)
    executor = executor or LocalExecutor(workers=1)
    work = out_dir / ".tasks_work"  # the partition tasks' outputs, removed before the audit commits
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:  # per-stage wall time in the summary, for `make bench`
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    con = open_store(workdir, config=config)
    try:
        with phase("features"):
            build_features(con, cfg, executor, workdir, work)
        lap("features")
        with phase("task_types"):
            # the example prompts' partitions are read beside the pool's idle workers
            assignment = assign_task_types(con, cfg, workdir, driver_memory_limit(config, beside=executor))
        lap("task_types")
        with phase("signals"):
            signals = detect_signals(con, signals_cfg, executor=executor)
        lap("signals")
        executor.release()  # the tables are DuckDB's work in the driver: no idle workers beside it
        label_requests(con, signals)
        has_costs = attach_parquet_view(
            con, "costs", out_dir / "request_costs.parquet",
            "SELECT NULL::VARCHAR AS request_id, NULL::DOUBLE AS cost_usd WHERE false",
        )
        versions = assignment.versions if assignment.versions is not None else TASK_TYPE_VERSIONS_SCHEMA.empty_table()
        temp_table_from_arrow(con, "task_versions", versions)
        types = query(con, "tasks_summary").to_arrow_table()
        no_prompt = con.sql("SELECT count(*) FROM features WHERE n_messages = 0 AND system_fp IS NULL").fetchall()[0][0]
        rates = query(con, "signals_rates").to_arrow_table()
        # request_labels streams from DuckDB in batches: one row per request, the largest table.
        reader = con.sql("SELECT * FROM labels ORDER BY ts, request_id").to_arrow_reader(50_000)
        write_batches(
            REQUEST_LABELS_SCHEMA,
            (b.select(REQUEST_LABELS_SCHEMA.names).cast(REQUEST_LABELS_SCHEMA) for b in reader),
            out_dir / "request_labels.parquet",
        )
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    lap("tables")
    _write(types, TASK_TYPES_SCHEMA, out_dir / "task_types.parquet")
    _write(versions, TASK_TYPE_VERSIONS_SCHEMA, out_dir / "task_type_versions.parquet")
    _write(rates, SIGNAL_RATES_SCHEMA, out_dir / "signal_rates.parquet")
    types = types.select(TASK_TYPES_SCHEMA.names).cast(TASK_TYPES_SCHEMA)
    rates = rates.select(SIGNAL_RATES_SCHEMA.names).cast(SIGNAL_RATES_SCHEMA)
    summary = summarize(types, rates, assignment, cfg, has_costs)
    summary["requests_without_prompt"] = int(no_prompt)  # response-only records: counted in `other`
    summary["timings_s"] = timings
    return summary


def summarize(types: pa.Table, rates: pa.Table, assignment: TaskAssignment, cfg: TasksConfig,
              has_costs: bool) -> dict[str, Any]:
    rows = types.to_pylist()
    named = [r for r in rows if r["task_type"] != OTHER]
    total = sum(r["requests"] for r in rows)
    top_k_share = sum(r["share_requests"] for r in named[: cfg.top_k]) if named else 0.0
    needed = next((i + 1 for i, r in enumerate(named) if r["cumulative_share_requests"] >= cfg.coverage_target), None)
    overall: dict[str, Any] = next((r for r in rates.to_pylist() if r["dimension"] == "all"), {})
    clean = sum(r["clean_examples"] for r in rows)
    headline = (
        f"{len(named)} task types; top {min(cfg.top_k, len(named))} cover {top_k_share:.0%} of {total} requests"
        + (f", {needed} reach {cfg.coverage_target:.0%}" if needed else "")
        + f"; regenerated {overall.get('regeneration_rate') or 0:.1%} and edited {overall.get('edit_rate') or 0:.1%} "
        f"of {overall.get('answered') or 0:,} answered ({overall.get('regenerated') or 0:,}, {overall.get('edited') or 0:,}); "
        f"negative feedback {overall.get('negative_feedback_rate') or 0:.1%} of {overall.get('feedback_count') or 0:,} rated "
        f"({overall.get('negative_feedback') or 0:,}); {clean:,} clean requests (dataset examples are counted by the dataset)"
    )
    return {
        "headline": headline,
        "task_types": len(named),
        "requests": total,
        "requests_other": assignment.requests_other,
        "requests_by_basis": assignment.basis_counts,
        "top_k": cfg.top_k,
        "top_k_share": round(top_k_share, 4),
        "types_to_coverage_target": needed,
        "coverage_target": cfg.coverage_target,
        "clean_examples": clean,
        "spend_joined": has_costs,
        "signals": {k: overall.get(k) for k in ("regeneration_rate", "retry_rate", "edit_rate",
                                                 "negative_feedback_rate", "clean_rate")},
        "types": [
            {k: r[k] for k in ("task_type", "label", "requests", "share_requests", "clean_examples",
                               "repetitiveness", "system_versions")}
            for r in rows
        ],
        "tables": ["request_labels.parquet", "task_types.parquet", "task_type_versions.parquet",
                   "signal_rates.parquet"],
    }


def adjusted_rand_index(truth: list[Any], predicted: list[Any]) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie), from the contingency table."""
    if len(truth) != len(predicted):
        raise ValueError("labelings differ in length")
    n = len(truth)
    if n < 2:
        return 1.0
    _, t = np.unique(np.asarray(truth, dtype=object).astype(str), return_inverse=True)
    _, p = np.unique(np.asarray(predicted, dtype=object).astype(str), return_inverse=True)
    pairs = np.unique(t.astype(np.int64) * (p.max() + 1) + p, return_counts=True)[1]

    def comb2(x: np.ndarray) -> float:
        return float((x * (x - 1) // 2).sum())

    sum_cells = comb2(pairs)
    sum_t = comb2(np.bincount(t))
    sum_p = comb2(np.bincount(p))
    expected = sum_t * sum_p / (n * (n - 1) / 2)
    max_index = (sum_t + sum_p) / 2
    if max_index == expected:
        return 1.0
    return (sum_cells - expected) / (max_index - expected)
