"""Task typing cut-offs pinned from both sides (audit/tasks.py): the system-prompt family merge at a
word 3-shingle Jaccard of 0.5, and the `min_type_requests` = 10 requests a type needs.

System prompts are 102 letter-only words (no digits or hex runs, so masking leaves them as they are)
= 100 distinct 3-shingles. Two versions sharing their first m words and differing after share the
m - 2 shingles inside that prefix: J = (m - 2) / (200 - (m - 2)).
  m = 69 -> 67/133 = 0.5038 (one family)     m = 68 -> 66/134 = 0.4925 (two families)
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from planted_store import msg, row, write_store

from audit import tasks
from pipeline.similarity import ShingleHasher, jaccard, mask_dynamic, words

LETTERS = "ghijklmnopqrstuvwxyz"  # no a-f: a run of those could read as a hex id and be masked
T0 = datetime(2026, 9, 1, 8, tzinfo=UTC)


def word(prefix: str, i: int) -> str:
    return prefix + LETTERS[i // 400 % 20] + LETTERS[i // 20 % 20] + LETTERS[i % 20]


def prompt(prefix: str, shared_with: str | None = None, shared: int = 0) -> str:
    head = [word(shared_with, i) for i in range(shared)] if shared_with else []
    return " ".join(head + [word(prefix, i) for i in range(len(head), 102)])


def by_hand(m: int) -> float:
    return (m - 2) / (200 - (m - 2))


PROMPTS = {
    "merge_v1": prompt("mv"), "merge_v2": prompt("mw", "mv", 69),  # J = 0.5038: one family
    "apart_v1": prompt("pv"), "apart_v2": prompt("pw", "pv", 68),  # J = 0.4925: two families
    # 102 and 103 words sharing the first 69: 67 of 100 and 101 shingles, J = 67 / 134 = 0.5 exactly
    "exact_v1": prompt("ev"), "exact_v2": prompt("ew", "ev", 69) + " " + word("ew", 102),
    "ten": prompt("tn"),  # 10 requests: a task type
    "nine": prompt("nn"),  # 9 requests: too few, `other`
}
COUNTS = {"merge_v1": 12, "merge_v2": 12, "apart_v1": 12, "apart_v2": 12, "exact_v1": 11, "exact_v2": 11, "ten": 10,
          "nine": 9}


def test_planted_jaccards_by_hand() -> None:
    hasher = ShingleHasher(3)

    def shingles(text: str):  # noqa: ANN202
        return hasher.shingles(words(mask_dynamic(text)))

    assert mask_dynamic(PROMPTS["ten"]) == PROMPTS["ten"]  # nothing masked
    assert shingles(PROMPTS["merge_v1"]).size == 100
    assert jaccard(shingles(PROMPTS["merge_v1"]), shingles(PROMPTS["merge_v2"])) == pytest.approx(by_hand(69))
    assert jaccard(shingles(PROMPTS["apart_v1"]), shingles(PROMPTS["apart_v2"])) == pytest.approx(by_hand(68))
    assert by_hand(69) > 0.5 > by_hand(68)
    ev1, ev2 = shingles(PROMPTS["exact_v1"]), shingles(PROMPTS["exact_v2"])
    assert (ev1.size, ev2.size, jaccard(ev1, ev2)) == (100, 101, 0.5)


# --- a system prompt serving two user templates: split at a 0.2 share ---------------------------------

TEMPLATES = {
    "translate": ("Please translate the following text into French.", "Keep the original formatting exactly."),
    "review": ("Summarize this customer review in one sentence.", "Mention the product name first."),
    # shares translate's last line: a variant of one template, never a split
    "rephrase": ("Please rephrase the following text in plain English.", "Keep the original formatting exactly."),
}
# One generic system prompt per family (distinct words: no two families merge), each serving two
# user templates: (translate, review) requests.
FAMILIES = {"fa": ("gq", 40, 10), "fb": ("gr", 40, 9), "fc": ("gs", 50, 12), "fd": ("gt", 48, 12), "fe": ("gu", 40, 20),
            "ff": ("gv", 20, 40), "fg": ("gw", 20, 0, 20)}  # (translate, review, rephrase) requests
# Requests of the family without a template join its largest template: translate in fe, review in ff
# (both ways, so the size decides, not the templates' order).
# fe's 15 are a fifth of its 75 requests, but free text is no template: they still join.
FREE_TEXT = {"fe": 15, "ff": 3}


@pytest.fixture(scope="module")
def task_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, dict], dict]:
    """One store, one `tasks.run` (a mutant of make mutate runs it once): the versions, the 10 / 9
    requests and the four template families, none sharing a word with another."""
    wd = tmp_path_factory.mktemp("tasks_edges")
    rng = random.Random(5)
    vocab = [word("u", i) for i in range(3000)]
    rows: list[dict] = []

    def add(rid: str, system: str | None, user: str, session: str | None = None) -> None:
        rows.append(row(request_id=rid, ts=T0 + timedelta(minutes=len(rows)), provider="openai", session_id=session,
                        model="gpt-4o-mini", system_text=system, messages=[msg("user", user)],
                        status_code=200, finish_reason="stop", response_text="ok", in_uncached=200, out_total=5))

    for name, count in COUNTS.items():
        for k in range(count):
            add(f"{name}_{k}", PROMPTS[name], " ".join(rng.choice(vocab) for _ in range(12)))  # free text
    slots = [word("s", i) for i in range(3000)]
    for fam, (prefix, *counts) in FAMILIES.items():
        for (name, (head, tail)), count in zip(TEMPLATES.items(), counts, strict=False):
            for k in range(count):
                add(f"{fam}_{name}_{k}", prompt(prefix), f"{head}\n{' '.join(rng.choice(slots) for _ in range(10))}\n{tail}")
        for k in range(FREE_TEXT.get(fam, 0)):
            add(f"{fam}_free_{k}", prompt(prefix), " ".join(rng.choice(vocab) for _ in range(12)))
    # Without a system prompt, grouped by content, each by one kind of link alone: one session of free
    # text; one prompt asked verbatim; a one-line instruction whose 5 fixed words (exactly 3 recurring
    # 3-shingles, the minimum to be linkable) precede 5 varying ones.
    for k in range(10):
        add(f"sess_{k}", None, " ".join(rng.choice(vocab) for _ in range(12)), session="conversation-1")
        add(f"ping_{k}", None, "ping")
        add(f"rewrite_{k}", None, "please rewrite this text formally " + " ".join(rng.choice(vocab) for _ in range(5)))
    write_store(wd, rows)
    summary = tasks.run(wd, wd / "audit", {})
    labels = pq.read_table(wd / "audit" / "request_labels.parquet").to_pylist()
    types = {t["task_type"]: t for t in pq.read_table(wd / "audit" / "task_types.parquet").to_pylist()}
    summary["versions_table"] = pq.read_table(wd / "audit" / "task_type_versions.parquet").to_pylist()
    return {r["request_id"]: r["task_type"] for r in labels}, types, summary


@pytest.fixture(scope="module")
def task_of(task_run: tuple[dict[str, str], dict[str, dict], dict]) -> dict[str, str]:
    return task_run[0]


def types_of(task_of: dict[str, str], name: str) -> set[str]:
    return {t for rid, t in task_of.items() if rid.rsplit("_", 1)[0] == name}


def test_versions_at_0_5038_are_one_task_type(task_of: dict[str, str]) -> None:
    (v1,), (v2,) = types_of(task_of, "merge_v1"), types_of(task_of, "merge_v2")
    assert v1 == v2 != tasks.OTHER


def test_versions_at_0_4925_are_two_task_types(task_of: dict[str, str]) -> None:
    (v1,), (v2,) = types_of(task_of, "apart_v1"), types_of(task_of, "apart_v2")
    assert tasks.OTHER not in (v1, v2) and v1 != v2


def test_ten_requests_make_a_type_nine_do_not(task_of: dict[str, str]) -> None:
    assert types_of(task_of, "ten") != {tasks.OTHER} and len(types_of(task_of, "ten")) == 1
    assert types_of(task_of, "nine") == {tasks.OTHER}


def test_all_types_distinct(task_of: dict[str, str]) -> None:
    named = [next(iter(types_of(task_of, n))) for n in ("merge_v1", "apart_v1", "apart_v2", "ten")]
    assert len(set(named)) == 4


@pytest.mark.parametrize(("family", "split"), [("fa", True), ("fb", False)])
def test_family_split_needs_two_templates_of_a_fifth(task_of: dict[str, str], family: str, split: bool) -> None:
    """fa, 40 + 10 requests: the minor template holds 10/50 = 0.2 of the family -> two types.
    fb, 40 + 9: 9/49 = 0.18 (and 9 < 10 requests) -> one type."""
    translate, review = types_of(task_of, f"{family}_translate"), types_of(task_of, f"{family}_review")
    assert (len(translate | review) == 2) is split
    assert tasks.OTHER not in translate


def test_templates_sharing_a_line_are_one_template(task_of: dict[str, str]) -> None:
    """fg: 20 + 20 requests whose templates share their last line: one type, not a split."""
    assert len(types_of(task_of, "fg_translate") | types_of(task_of, "fg_rephrase")) == 1


def test_family_split_share_without_the_count_limit(task_of: dict[str, str]) -> None:
    """fc, 50 + 12: 12/62 = 0.194 < 0.2 although 12 >= 10 requests -> one type; fd, 48 + 12 = 0.2 -> two."""
    assert len(types_of(task_of, "fc_translate") | types_of(task_of, "fc_review")) == 1
    assert len(types_of(task_of, "fd_translate") | types_of(task_of, "fd_review")) == 2


def test_versions_at_exactly_0_5_are_one_task_type(task_of: dict[str, str]) -> None:
    (v1,), (v2,) = types_of(task_of, "exact_v1"), types_of(task_of, "exact_v2")
    assert v1 == v2 != tasks.OTHER


def test_free_text_joins_the_largest_template_of_a_split_family(task_of: dict[str, str]) -> None:
    """fe: 40 + 20 templated requests (20/75 >= 0.2: split) and 15 without a template -> with the 40;
    ff: the same with the templates' sizes swapped."""
    assert types_of(task_of, "fe_free") == types_of(task_of, "fe_translate") != types_of(task_of, "fe_review")
    assert types_of(task_of, "ff_free") == types_of(task_of, "ff_review") != types_of(task_of, "ff_translate")


def test_types_numbered_by_size_with_their_basis(task_run: tuple[dict[str, str], dict[str, dict], dict]) -> None:
    """Worked by hand from the planted counts: fc 62, fe's 40 + 15, fb 49 (its 9 reviews are below
    10), fd's 48 translations, ff's 40 + 3, fa's 40, merge 24, exact 22, then 20 x 2 (fe, ff), 12 x 3
    (apart v1, v2 and fd's reviews) and 10 x 5 (ten, fa's reviews and the three content groups), with
    fg's 20 + 20 (one type: its templates share a line) after fa's: 19 types, task_01 .. task_19,
    largest first. A split
    family's types are based on system_prompt+user_template, every other type on system_prompt
    (even ten, whose 10 requests alone make the family stable); nine's 9 are `other`."""
    task_of, types, summary = task_run
    assert list(types) == [f"task_{i:02d}" for i in range(1, 20)] + [tasks.OTHER]
    assert [types[t]["requests"] for t in types] == [62, 55, 49, 48, 43, 40, 40, 24, 22, 20, 20, 12, 12, 12, 10, 10, 10,
                                                     10, 10, 9]
    assert (summary["task_types"], summary["requests_other"]) == (19, 9)
    (ten,) = types_of(task_of, "ten")
    assert types[ten]["basis"] == "system_prompt"
    split = {"fa_translate", "fa_review", "fd_translate", "fd_review", "fe_translate", "fe_review", "fe_free"}
    for name in split | {"fb_translate", "fc_review", "merge_v1", "exact_v2", "apart_v1", "fg_rephrase"}:
        (t,) = types_of(task_of, name)
        assert types[t]["basis"] == ("system_prompt+user_template" if name in split else "system_prompt"), name
    # requests by basis: the split families fa 50 + fd 60 + fe 75 + ff 63; fc 62 + fb 49 + merge 24
    # + exact 22 + apart 24 + ten 10 + fg 40 on their system prompt; 3 x 10 by content; nine's 9 `other`,
    # labelled as such
    assert summary["requests_by_basis"] == {"system_prompt+user_template": 248, "system_prompt": 231, "content": 30,
                                            "other": 9}
    assert (types["other"]["basis"], types["other"]["label"]) == ("other", "Other: no recurring template")


@pytest.mark.parametrize("name", ["sess", "ping", "rewrite"])
def test_content_groups_by_each_link(task_run: tuple[dict[str, str], dict[str, dict], dict], name: str) -> None:
    """Ten requests without a system prompt make one content type through one kind of link alone: a
    session (free text), the same prompt verbatim, or LSH on the 3 recurring shingles of a fixed
    instruction (exactly `content_min_shingles`)."""
    task_of, types, _ = task_run
    (t,) = types_of(task_of, name)
    assert t != tasks.OTHER and (types[t]["basis"], types[t]["requests"]) == ("content", 10)


def test_versions_of_a_merged_family(task_run: tuple[dict[str, str], dict[str, dict], dict]) -> None:
    """merge: v1 then v2, 12 requests each, v2 at 67 / 133 of v1; exact: 11 + 11, v2 at exactly 0.5."""
    task_of, _, summary = task_run
    for name, n, similarity in (("merge", 12, by_hand(69)), ("exact", 11, 0.5)):
        (t,) = types_of(task_of, f"{name}_v1")
        rows = sorted((r for r in summary["versions_table"] if r["task_type"] == t), key=lambda r: r["version"])
        assert [(r["version"], r["requests"]) for r in rows] == [(1, n), (2, n)]
        assert rows[0]["similarity_to_previous"] is None and abs(rows[1]["similarity_to_previous"] - similarity) < 1e-3
