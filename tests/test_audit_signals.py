"""User signals: regeneration, retry, edit and feedback flags against the generator's truth, and
the edge cases the definitions hinge on (n > 1, retries after errors, quotes vs edits)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from planted_tasks import write_planted

from audit import tasks
from audit.signals import SignalsConfig, detect_signals, edit_similarity, explicit_edit, keep_best_edits
from pipeline.ingest import ingest
from pipeline.workdir.store import connect_store


@pytest.fixture(scope="module")
def sample_labels(sample_workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("signals_audit")
    tasks.run(sample_workdir, out, {})
    return {r["request_id"]: r for r in pq.read_table(out / "request_labels.parquet").to_pylist()}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict], dict[str, dict]]:
    base = tmp_path_factory.mktemp("planted_signals")
    truth = write_planted(base / "logs", seed=23)
    ingest([str(base / "logs")], base / "work", progress=False)
    tasks.run(base / "work", base / "out", {})
    labels = {r["request_id"]: r for r in pq.read_table(base / "out" / "request_labels.parquet").to_pylist()}
    return base, truth, labels


def precision_recall(ids: list[str], predicted: Callable[[str], bool], actual: Callable[[str], bool]) -> tuple[float, float, int]:
    tp = sum(1 for i in ids if predicted(i) and actual(i))
    fp = sum(1 for i in ids if predicted(i) and not actual(i))
    fn = sum(1 for i in ids if not predicted(i) and actual(i))
    return tp / max(1, tp + fp), tp / max(1, tp + fn), tp + fn


SIGNALS: dict[str, tuple[Callable[[dict], bool], Callable[[dict, dict], bool]]] = {
    # name: (truth says it is planted, the label agrees — for pair signals, it names the right request)
    "regenerated": (lambda t: t["regenerated"], lambda lab, t: lab["regenerated"]),
    "regeneration_of": (lambda t: t["regeneration_of"] is not None,
                        lambda lab, t: lab["regeneration_of"] is not None
                        and lab["regeneration_of"] == t["regeneration_of"]),
    "retry_of": (lambda t: t["retry_of"] is not None,
                 lambda lab, t: lab["retry_of"] is not None and lab["retry_of"] == t["retry_of"]),
    "edited": (lambda t: t["edited"], lambda lab, t: lab["edited"]),
    "negative_feedback": (lambda t: t["feedback"] == -1, lambda lab, t: lab["negative_feedback"]),
    "feedback": (lambda t: t["feedback"] is not None, lambda lab, t: lab["feedback_rating"] is not None),
}


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_signal_precision_recall_on_sample(signal: str, sample_labels: dict[str, dict],
                                           sample_truth_requests: dict[str, dict]) -> None:
    planted, found = SIGNALS[signal]
    ids = [i for i in sample_truth_requests if i in sample_labels]
    truth, labels = sample_truth_requests, sample_labels
    precision, recall, n = precision_recall(
        ids,
        # a pair signal counts as found only when it names the right request
        lambda i: found(labels[i], truth[i]) if planted(truth[i]) else bool(_flag(signal, labels[i])),
        lambda i: planted(truth[i]),
    )
    assert n >= 10, f"the sample plants too few {signal} ({n}) to measure"
    assert precision >= 0.95 and recall >= 0.95, f"{signal}: precision {precision:.3f}, recall {recall:.3f}"


def _flag(signal: str, lab: dict) -> object:
    return {"negative_feedback": lab["negative_feedback"], "feedback": lab["feedback_rating"] is not None}.get(
        signal, lab.get(signal)
    )


def test_feedback_rating_is_the_normalized_score(sample_labels: dict[str, dict], sample_truth_requests: dict) -> None:
    rated = [(lab["feedback_rating"], sample_truth_requests[i]["feedback"]) for i, lab in sample_labels.items()
             if i in sample_truth_requests and sample_truth_requests[i]["feedback"] is not None]
    assert rated and all(got == float(want) for got, want in rated)


def test_clean_example_predicate(sample_labels: dict[str, dict], sample_workdir: Path) -> None:
    """clean_example = a non-empty answer with finish stop/tool_calls, not regenerated, edited or
    rated negatively (the empty `stop` answers the sample plants are not clean)."""
    con = connect_store(sample_workdir)
    rows = con.sql(
        """SELECT request_id, finish_reason,
                  nullif(trim(response_text), '') IS NOT NULL OR coalesce(len(response_tool_calls), 0) > 0
           FROM requests"""
    ).fetchall()
    con.close()
    empty_stops = 0
    for rid, finish, has_answer in rows:
        lab = sample_labels[rid]
        expected = (finish in ("stop", "tool_calls") and has_answer and not lab["failed"] and not lab["regenerated"]
                    and not lab["edited"] and not lab["negative_feedback"])
        assert lab["clean_example"] == expected, rid
        empty_stops += finish == "stop" and not has_answer
    assert empty_stops > 0, "the sample plants empty answers"
    assert sum(lab["clean_example"] for lab in sample_labels.values()) > 0.8 * len(sample_labels)


def test_signal_rates_per_type_model_and_week(sample_workdir: Path, tmp_path: Path) -> None:
    tasks.run(sample_workdir, tmp_path, {})
    rates = pq.read_table(tmp_path / "signal_rates.parquet").to_pylist()
    labels = pq.read_table(tmp_path / "request_labels.parquet").to_pylist()
    dims = {r["dimension"] for r in rates}
    assert dims == {"all", "task_type", "model", "week"}
    overall = next(r for r in rates if r["dimension"] == "all")
    assert overall["requests"] == len(labels)
    assert overall["regenerated"] == sum(lab["regenerated"] for lab in labels)
    for dim in ("task_type", "model", "week"):
        assert sum(r["requests"] for r in rates if r["dimension"] == dim) == len(labels)
        assert sum(r["edited"] for r in rates if r["dimension"] == dim) == overall["edited"]
    assert len([r for r in rates if r["dimension"] == "week"]) >= 6  # 45 days of traffic


# --- planted edge cases -------------------------------------------------------------------------------


def test_planted_signals(planted: tuple[Path, dict[str, dict], dict[str, dict]]) -> None:
    _, truth, labels = planted
    ids = sorted(truth)
    for signal in ("regenerated", "regeneration_of", "retry_of", "edited"):
        planted_fn, found = SIGNALS[signal]
        p, r, n = precision_recall(
            ids,
            lambda i, s=signal, f=found, pl=planted_fn: f(labels[i], truth[i]) if pl(truth[i]) else bool(
                _flag(s, labels[i])),
            lambda i, pl=planted_fn: pl(truth[i]),
        )
        assert n >= 10 and p >= 0.95 and r >= 0.95, (signal, p, r, n)


def test_n_greater_than_one_is_neither(planted: tuple[Path, dict[str, dict], dict[str, dict]]) -> None:
    base, _, labels = planted
    con = connect_store(base / "work")
    multi = [r for (r,) in con.sql("SELECT request_id FROM requests WHERE n_choices > 1").fetchall()]
    con.close()
    assert len(multi) >= 5
    for rid in multi:
        lab = labels[rid]
        assert lab["multi_choice"] and not lab["regenerated"] and lab["regeneration_of"] is None


def test_retry_after_error_is_not_a_regeneration(planted: tuple[Path, dict[str, dict], dict[str, dict]]) -> None:
    _, truth, labels = planted
    retries = [i for i, t in truth.items() if t["retry_of"]]
    assert len(retries) >= 10
    for rid in retries:
        assert labels[rid]["is_retry"] and labels[rid]["regeneration_of"] is None
        failed = labels[truth[rid]["retry_of"]]
        assert failed["failed"] and not failed["regenerated"] and not failed["clean_example"]


def test_window_bounds_regenerations(planted: tuple[Path, dict[str, dict], dict[str, dict]], tmp_path: Path) -> None:
    """Planted regenerations come 5-90 s apart: a 3-second window finds almost none of them."""
    base, truth, labels = planted
    tasks.run(base / "work", tmp_path, {"audit": {"signals": {"regeneration_window_s": 3}}})
    short = pq.read_table(tmp_path / "request_labels.parquet").to_pylist()
    assert sum(r["regenerated"] for r in short) < 0.2 * sum(lab["regenerated"] for lab in labels.values())


def test_detect_signals_is_sparse(planted: tuple[Path, dict[str, dict], dict[str, dict]]) -> None:
    base, _, labels = planted
    con = connect_store(base / "work")
    tasks.build_features(con, tasks.TasksConfig())
    table = detect_signals(con, SignalsConfig())
    con.close()
    flagged = {i for i, lab in labels.items() if lab["regenerated"] or lab["regeneration_of"] or lab["is_retry"]
               or lab["edited"]}
    assert set(table["request_id"].to_pylist()) == flagged


# --- edit similarity -------------------------------------------------------------------------------------

REPLY = ("Thanks for reaching out. Your refund of 40 dollars was approved today and will reach your card "
         "within five business days. Reply here if anything else comes up.")


def test_modified_copy_is_an_edit() -> None:
    edited = REPLY.replace("five business days", "three business days").replace("Thanks for", "Thank you for")
    sim = edit_similarity(REPLY, "I changed it to:\n" + edited + "\nIs that better?")
    assert sim is not None and 0.75 < sim < 1


@pytest.mark.parametrize(
    "user_turn",
    [
        REPLY,  # identical: nothing was edited
        f'You wrote "{REPLY}" - why five days?',  # a verbatim quote with a question is not an edit
        "Thanks, and how do I track the refund?",  # unrelated follow-up
        "",
    ],
)
def test_not_an_edit(user_turn: str) -> None:
    assert edit_similarity(REPLY, user_turn) is None


def test_short_replies_are_never_judged() -> None:
    assert edit_similarity("Yes, it ships.", "No, it ships.") is None


@pytest.mark.parametrize(
    ("feedback", "metadata", "expected"),
    [
        ('{"correction": "The refund takes 3 days."}', None, (True, "The refund takes 3 days.")),
        ('{"rating": -1, "edited": true}', None, (True, None)),
        (None, '{"annotation": {"corrected_output": "fixed"}}', (True, "fixed")),
        ('{"rating": 1, "comment": "great"}', '{"app": "x"}', (False, None)),
        ("not json", None, (False, None)),
    ],
)
def test_explicit_edit_fields(feedback: str | None, metadata: str | None, expected: tuple[bool, str | None]) -> None:
    assert explicit_edit(feedback, metadata) == expected


def test_best_edit_does_not_depend_on_the_pairs_order() -> None:
    """Two pairs of one parent with the same similarity: the recorded source is the same whichever
    came first (the pairs query has no ORDER BY; with two DuckDB threads its order can change)."""
    results = [("p1", 0.9, "pasted_in_user_turn"), ("p1", 0.9, "edited_in_history"), None,
               ("p2", 0.7, "edited_in_history"), ("p2", 0.8, "pasted_in_user_turn")]
    seen = []
    for order in (results, results[::-1], results[1:] + results[:1]):
        edits: dict[str, tuple[float | None, str]] = {}
        keep_best_edits(edits, order)
        seen.append(edits)
    assert seen[0] == seen[1] == seen[2] == {"p1": (0.9, "pasted_in_user_turn"), "p2": (0.8, "pasted_in_user_turn")}
