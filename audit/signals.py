"""User signals mined from the logs: regeneration, retry, edit and explicit feedback.

The seed guides' rule for a fine-tuning set is "train only on responses users did not regenerate
or edit"; these are the per-request flags behind it.

- Regeneration / retry (`signals_regeneration.sql`): the same conversation state (identity,
  parent call, masked system prompt, tools, every message) sent again within a window. The later
  request names the earlier one (`regeneration_of` / `retry_of`); the earlier, answered one is
  flagged `regenerated`. After a failed attempt (error, 429, 5xx) a resend is a retry, not a
  rejection of an answer. n > 1 requests are neither. One sort + window pass: O(n log n).
- Edit (`signals_edit_pairs.sql` + `edit_similarity`): the user's next turn pastes a modified copy
  of the previous reply (high word overlap, not identical, not a verbatim quote); or the client
  resends the conversation with that reply edited in place; or the record carries an explicit
  edit/correction field. Each continuing state yields at most one candidate pair, so the cost is
  linear; a cheap word-set overlap gate keeps difflib off unrelated pairs.
- Feedback: the store's `feedback_score` ([-1, 1]) as is.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from audit.tables import query
from pipeline.executor import Executor, cycle_collector_paused
from pipeline.similarity import UNICODE_WORDS, words

_SPACES = re.compile(r"\s+")
# Feedback / metadata keys that carry a human correction of the response (LangSmith `correction`,
# annotation tools' edited outputs). A string value is the corrected text; `true` is a bare flag.
EXPLICIT_EDIT_KEYS = (
    "correction",
    "corrected",
    "corrected_text",
    "corrected_output",
    "corrected_response",
    "edited",
    "edit",
    "edited_text",
    "edited_output",
    "edited_response",
    "ideal_output",
    "ideal_response",
)


@dataclass(frozen=True)
class SignalsConfig:
    regeneration_window_s: int = 300
    """Resending the same conversation state within this many seconds is a regeneration (or a
    retry after a failure). The guides say "within N seconds/minutes"; 5 minutes by default."""
    edit_min_similarity: float = 0.5
    """A user turn is an edited copy of the reply when their word-level similarity (difflib ratio)
    is at least this and below 1. Set above 1 to disable implicit edit detection."""
    edit_min_words: int = 8
    """Replies shorter than this many words are never judged edited: too little text to tell an
    edit from a coincidence (e.g. two redaction placeholders share 3 of 5 words)."""
    edit_max_gap_s: int = 3600
    """For clients that send no history, the reply a user turn follows is the conversation's
    previous answer, if it came at most this many seconds earlier."""
    edit_max_words: int = 3000
    """Texts are compared on their first this-many words (bounds difflib's cost)."""


SIGNALS_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("regenerated", pa.bool_()),
        pa.field("regeneration_of", pa.string()),
        pa.field("is_retry", pa.bool_()),
        pa.field("retry_of", pa.string()),
        pa.field("edited", pa.bool_()),
        pa.field("edit_similarity", pa.float64()),
        pa.field("edit_source", pa.string()),
    ]
)


def normalize_space(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _overlap_gate(min_similarity: float) -> float:
    """Word-set Dice a pair must reach before the word-level diff runs. Below the similarity
    threshold on purpose: word repeats make the sequence ratio and the set overlap differ."""
    return min_similarity * 0.8


def edit_similarity(reply: str | None, edited: str | None, *, min_similarity: float = 0.5,
                    min_words: int = 8, max_words: int = 3000) -> float | None:
    """Similarity of `reply` and a user's `edited` text when the latter is a MODIFIED copy of it.

    Returns the word-level difflib ratio (0-1) when it is at least `min_similarity`, the texts
    are not identical and `edited` does not contain the reply verbatim (a quote followed by a
    question is not an edit); None otherwise.
    """
    if not reply or not edited:
        return None
    # Cheapest rejections first, on raw lengths: a ratio >= m needs the shorter text to hold at
    # least m / (2 - m) of the longer one's words (roughly; whitespace split).
    la, lb = reply.count(" ") + 1, edited.count(" ") + 1
    if min(la, lb) < min_similarity / (2 - min_similarity) * max(la, lb) * 0.8:
        return None
    # Then a loose vocabulary check on whitespace tokens (no regex): most follow-up turns share
    # little of the reply's vocabulary and stop here.
    ta, tb = set(reply.lower().split()), set(edited.lower().split())
    if 2 * len(ta & tb) < 0.7 * _overlap_gate(min_similarity) * (len(ta) + len(tb)):
        return None
    a = normalize_space(reply)
    b = normalize_space(edited)
    if a == b or a in b:
        return None
    wa = words(a.lower(), UNICODE_WORDS)[:max_words]
    wb = words(b.lower(), UNICODE_WORDS)[:max_words]
    if len(wa) < min_words or not wb:
        return None
    # Gate: the edited copy must share most of the reply's vocabulary (Dice on word sets, a cheap
    # proxy for the sequence ratio), so difflib only runs on plausible pairs.
    sa, sb = set(wa), set(wb)
    if 2 * len(sa & sb) / (len(sa) + len(sb)) < _overlap_gate(min_similarity):
        return None
    ratio = difflib.SequenceMatcher(None, wa, wb, autojunk=False).ratio()
    if ratio < min_similarity or ratio >= 1.0:
        return None
    return round(ratio, 4)


def _similarity(reply: str | None, edited: str | None, cfg: SignalsConfig) -> float | None:
    return edit_similarity(reply, edited, min_similarity=cfg.edit_min_similarity, min_words=cfg.edit_min_words,
                           max_words=cfg.edit_max_words)


def explicit_edit(feedback_json: str | None, metadata_json: str | None) -> tuple[bool, str | None]:
    """(has an explicit edit/correction field, the corrected text when given)."""
    for blob in (feedback_json, metadata_json):
        if not blob:
            continue
        try:
            obj = json.loads(blob)
        except ValueError:
            continue
        for found in _edit_fields(obj):
            return True, found if isinstance(found, str) else None
    return False, None


def _edit_fields(obj: Any, depth: int = 0) -> Iterable[Any]:
    if depth > 2 or not isinstance(obj, dict):
        return
    for key in EXPLICIT_EDIT_KEYS:
        value = obj.get(key)
        if isinstance(value, dict):
            yield value.get("text") or value.get("value") or True
        elif value is True or (isinstance(value, str) and value.strip()):
            yield value
    for value in obj.values():
        if isinstance(value, dict):
            yield from _edit_fields(value, depth + 1)


@cycle_collector_paused
def edit_pairs_task(cfg: SignalsConfig, pairs: pa.Table) -> list[tuple[str, float, str] | None]:
    """Task: the best edit found in each candidate pair (`signals_edit_pairs.sql` rows), in order:
    (parent request, similarity, source), or None. A pure function of the pairs: the word-level
    diffs are the signals' Python work, so they run on the executor's workers."""
    cols = pairs.to_pydict()
    out: list[tuple[str, float, str] | None] = []
    for parent, matched_by, reply, user_text, history_reply in zip(
        cols["parent_id"], cols["matched_by"], cols["reply"], cols["user_text"], cols["history_reply"], strict=True,
    ):
        found: list[tuple[float, str]] = []
        sim = _similarity(reply, user_text, cfg)
        if sim is not None:
            found.append((sim, "pasted_in_user_turn"))
        if matched_by == "order" and history_reply:
            sim = _similarity(reply, history_reply, cfg)
            if sim is not None:
                found.append((sim, "edited_in_history"))
        out.append((parent, *max(found)) if found else None)
    return out


def keep_best_edits(edits: dict[str, tuple[float | None, str]],
                    results: Iterable[tuple[str, float, str] | None]) -> None:
    """Record in `edits` each parent's best (similarity, source) among `edit_pairs_task` results.
    Ties go to the larger source name, not to the first pair: the pairs query has no ORDER BY, so
    its order may differ between runs and must not decide."""
    for found in results:
        if found is not None:
            parent, sim, source = found
            if parent not in edits or edits[parent] < (sim, source):
                edits[parent] = (sim, source)


def detect_signals(con: duckdb.DuckDBPyConnection, cfg: SignalsConfig, *, batch_rows: int = 50_000,
                   executor: Executor | None = None, rows_per_task: int = 10_000) -> pa.Table:
    """Regeneration / retry / edit flags (SIGNALS_SCHEMA), one row per request that has ANY signal.

    Sparse on purpose (memory): every other request has no signal, and `request_labels` is built
    by a left join in DuckDB. Needs `features` (tasks_features.sql) and the `requests` view. The
    edit candidates are judged `rows_per_task` pairs per task on `executor` (default: here, in order).
    """
    regen = query(con, "signals_regeneration", window_s=cfg.regeneration_window_s).fetchall()
    regeneration_of: dict[str, str] = {}
    retry_of: dict[str, str] = {}
    regenerated: set[str] = set()
    for rid, regen_of, retry in regen:
        if regen_of is not None:
            regeneration_of[rid] = regen_of
            regenerated.add(regen_of)
        if retry is not None:
            retry_of[rid] = retry

    edits: dict[str, tuple[float | None, str]] = {}
    reader = query(con, "signals_edit_pairs", max_gap_s=cfg.edit_max_gap_s).to_arrow_reader(rows_per_task)
    chunks = (pa.Table.from_batches([b]) for b in reader)
    judged = (executor.map(edit_pairs_task, chunks, shared=cfg, label="audit.signals.edits") if executor is not None
              else (edit_pairs_task(cfg, c) for c in chunks))
    for results in judged:
        keep_best_edits(edits, results)

    rows = query(con, "signals_explicit_edits").to_arrow_reader(batch_rows)
    for batch in rows:
        cols = batch.to_pydict()
        for rid, text, fb, meta in zip(cols["request_id"], cols["response_text"], cols["feedback_json"],
                                       cols["metadata_json"], strict=True):
            flagged, corrected = explicit_edit(fb, meta)
            if flagged:
                sim = None
                if corrected and text:
                    sim = round(difflib.SequenceMatcher(None, words(text.lower(), UNICODE_WORDS),
                                                        words(corrected.lower(), UNICODE_WORDS), autojunk=False).ratio(), 4)
                edits[rid] = (sim, "explicit_field")

    ids = sorted({*regenerated, *regeneration_of, *retry_of, *edits})
    return pa.table(
        {
            "request_id": ids,
            "regenerated": [r in regenerated for r in ids],
            "regeneration_of": [regeneration_of.get(r) for r in ids],
            "is_retry": [r in retry_of for r in ids],
            "retry_of": [retry_of.get(r) for r in ids],
            "edited": [r in edits for r in ids],
            "edit_similarity": [edits[r][0] if r in edits else None for r in ids],
            "edit_source": [edits[r][1] if r in edits else None for r in ids],
        },
        schema=SIGNALS_SCHEMA,
    )
