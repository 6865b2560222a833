"""Every threshold of the user signals pinned from both sides (audit/signals.py and its SQL).

Planted stores, written directly (no ingest): each case is its own conversation, so the expected
flags are known by construction. Moving a threshold either way fails a case below.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from planted_store import msg, row, write_store

from audit import tasks
from audit.signals import SignalsConfig, edit_similarity

T0 = datetime(2026, 9, 1, 9, tzinfo=UTC)
WINDOW_S = 300  # the documented default: "resent within 5 minutes"
EDIT_GAP_S = 3600  # a history-less client's reply counts for an hour


def answered(rid: str, session: str, seconds: float, messages: list[dict], reply: str = "An answer.",
             **kw: object) -> dict:
    base = {"request_id": rid, "ts": T0 + timedelta(seconds=seconds), "session_id": session, "provider": "openai",
            "model": "gpt-4o-mini", "messages": messages, "status_code": 200, "finish_reason": "stop",
            "response_text": reply, "in_uncached": 50, "out_total": 10}
    base.update(kw)
    return row(**base)


def failed(rid: str, session: str, seconds: float, messages: list[dict]) -> dict:
    return row(request_id=rid, ts=T0 + timedelta(seconds=seconds), session_id=session, provider="openai",
               model="gpt-4o-mini", messages=messages, status_code=429, error_type="rate_limit_exceeded",
               usage_missing=True)


REPLY = ("Your refund of forty dollars was approved today and will reach the card you paid with "
         "within five business days after the bank processes it.")
EDITED = REPLY.replace("five business days", "three business days")
_LETTERS = "абвгдежзиклмнопрстуфхцчшщ"
CYRILLIC = [a + b + "ка" for a in _LETTERS for b in _LETTERS]  # distinct words without an ASCII letter
# REPLY is 25 words; EDITED changes one of them: difflib's ratio 2 x 24 / 50 = 0.96.
EDITED_SIM = 0.96
# Two words changed (five -> three, forty -> fifty): 2 x 23 / 50 = 0.92.
EDITED_TWICE = EDITED.replace("forty", "fifty")
EDITED_TWICE_SIM = 0.92


def planted_rows() -> list[dict]:
    rows = []
    # Regenerations: the same conversation state resent at the window's edge and just past it.
    for name, gap in (("regen_299", WINDOW_S - 1), ("regen_300", WINDOW_S), ("regen_301", WINDOW_S + 1),
                      ("regen_3000", 3000)):
        q = [msg("user", f"Question for {name}?")]
        rows += [answered(f"{name}_a", name, 0, q), answered(f"{name}_b", name, gap, q)]
    # Retries after a failed call, same edges.
    for name, gap in (("retry_299", WINDOW_S - 1), ("retry_301", WINDOW_S + 1)):
        q = [msg("user", f"Question for {name}?")]
        rows += [failed(f"{name}_a", name, 0, q), answered(f"{name}_b", name, gap, q)]
    # Edits by a client that sends no history: the user pastes an edited reply as the next turn,
    # matched to the previous answer only within the gap.
    for name, gap in (("edit_3599", EDIT_GAP_S - 1), ("edit_3601", EDIT_GAP_S + 1)):
        rows += [answered(f"{name}_a", name, 0, [msg("user", "Write the refund note.")], reply=REPLY),
                 answered(f"{name}_b", name, gap, [msg("user", EDITED)])]
    # A client that sends history with the reply edited in place (no request answered EDITED, so the
    # history does not name its parent by content: the conversation's previous answer is the parent).
    ask = msg("user", "Write the refund note.")
    rows += [answered("inplace_a", "inplace", 0, [ask], reply=REPLY),
             answered("inplace_b", "inplace", 60, [ask, msg("assistant", EDITED),
                                                    msg("user", "Thanks, please send it to the customer now.")])]
    # Both at once: the history carries EDITED (0.96) in place and the user pastes EDITED_TWICE (0.92): the
    # closer copy (0.96, edited in history) is the one recorded.
    rows += [answered("both_a", "both", 0, [ask], reply=REPLY),
             answered("both_b", "both", 60, [ask, msg("assistant", EDITED), msg("user", EDITED_TWICE)])]
    # The reverse: the history is edited twice (0.92), the pasted copy once (0.96).
    rows += [answered("both2_a", "both2", 0, [ask], reply=REPLY),
             answered("both2_b", "both2", 60, [ask, msg("assistant", EDITED_TWICE), msg("user", EDITED)])]
    # Explicit corrections: a corrected text (compared with the response: 0.96), a bare flag (no
    # similarity), and a corrected text on a reply that was also pasted back edited (the field wins).
    rows += [answered("explicit_text", "explicit_text", 0, [msg("user", "Refund?")], reply=REPLY,
                      feedback_json=json.dumps({"rating": -1, "correction": REPLY.replace(" today", "")})),
             answered("explicit_flag", "explicit_flag", 0, [msg("user", "Refund?")], reply=REPLY,
                      metadata_json='{"edited": true}'),
             answered("explicit_over_a", "explicit_over", 0, [msg("user", "Refund?")], reply=REPLY,
                      feedback_json=json.dumps({"correction": EDITED_TWICE})),
             answered("explicit_over_b", "explicit_over", 60, [msg("user", EDITED)])]
    # A long correction whose common word ("the", 168 of 252 words) only matches where its neighbours
    # differ: compared word for word (no autojunk), 2 x 168 / 504 = 0.6667.
    rows += [answered("explicit_long", "explicit_long", 0, [msg("user", "Refund?")],
                      reply=" ".join(f"a{i} the the" for i in range(84)),
                      feedback_json=json.dumps({"correction": " ".join(f"b{i} the the" for i in range(84))}))]
    # A correction in Cyrillic: words are Unicode words (25, one changed: 0.96), not only ASCII ones.
    rows += [answered("explicit_cyrillic", "explicit_cyrillic", 0, [msg("user", "Refund?")], reply=" ".join(CYRILLIC[:25]),
                      feedback_json=json.dumps({"correction": " ".join([*CYRILLIC[:24], "иначе"])}))]
    # One reply, two follow-ups that paste it back edited (the user branched the conversation): the reply
    # keeps the closer copy (0.96) whichever child comes first.
    for name, first, second in (("branch_hi_lo", EDITED, EDITED_TWICE), ("branch_lo_hi", EDITED_TWICE, EDITED)):
        rows += [answered(f"{name}_a", name, 0, [ask], reply=REPLY),
                 answered(f"{name}_b", name, 30, [ask, msg("assistant", REPLY), msg("user", first)]),
                 answered(f"{name}_c", name, 60, [ask, msg("assistant", REPLY), msg("user", second)])]
    return rows


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    wd = tmp_path_factory.mktemp("signal_edges")
    write_store(wd, planted_rows())
    tasks.run(wd, wd / "audit", {})
    return {r["request_id"]: r for r in pq.read_table(wd / "audit" / "request_labels.parquet").to_pylist()}


def test_default_window_is_five_minutes() -> None:
    assert SignalsConfig().regeneration_window_s == WINDOW_S
    assert SignalsConfig().edit_max_gap_s == EDIT_GAP_S


@pytest.mark.parametrize(("name", "inside"), [("regen_299", True), ("regen_300", True), ("regen_301", False),
                                              ("regen_3000", False)])
def test_regeneration_window_both_sides(labels: dict[str, dict], name: str, inside: bool) -> None:
    first, resend = labels[f"{name}_a"], labels[f"{name}_b"]
    assert first["regenerated"] is inside
    assert resend["regeneration_of"] == (f"{name}_a" if inside else None)
    assert not resend["regenerated"] and not resend["is_retry"]
    assert first["clean_example"] is not inside  # a regenerated answer never trains


@pytest.mark.parametrize(("name", "inside"), [("retry_299", True), ("retry_301", False)])
def test_retry_window_both_sides(labels: dict[str, dict], name: str, inside: bool) -> None:
    resend = labels[f"{name}_b"]
    assert resend["is_retry"] is inside
    assert resend["retry_of"] == (f"{name}_a" if inside else None)
    assert resend["regeneration_of"] is None and not labels[f"{name}_a"]["regenerated"]


@pytest.mark.parametrize(("name", "inside"), [("edit_3599", True), ("edit_3601", False)])
def test_edit_gap_both_sides(labels: dict[str, dict], name: str, inside: bool) -> None:
    assert labels[f"{name}_a"]["edited"] is inside
    assert labels[f"{name}_a"]["edit_source"] == ("pasted_in_user_turn" if inside else None)
    assert labels[f"{name}_a"]["edit_similarity"] == (EDITED_SIM if inside else None)
    assert not labels[f"{name}_b"]["edited"]


@pytest.mark.parametrize(("name", "similarity", "source"), [
    ("inplace", EDITED_SIM, "edited_in_history"),
    ("both", EDITED_SIM, "edited_in_history"),
    ("both2", EDITED_SIM, "pasted_in_user_turn"),
    ("branch_hi_lo", EDITED_SIM, "pasted_in_user_turn"),
    ("branch_lo_hi", EDITED_SIM, "pasted_in_user_turn"),
])
def test_edit_in_history_and_the_closer_copy(labels: dict[str, dict], name: str, similarity: float,
                                             source: str) -> None:
    first = labels[f"{name}_a"]
    assert (first["edited"], first["edit_similarity"], first["edit_source"]) == (True, similarity, source)
    assert not labels[f"{name}_b"]["edited"]


@pytest.mark.parametrize(("rid", "similarity"), [
    ("explicit_text", round(48 / 49, 4)),  # one of 25 words dropped: 2 x 24 / 49 = 0.97959 -> 0.9796
    ("explicit_flag", None), ("explicit_over_a", EDITED_TWICE_SIM), ("explicit_long", round(336 / 504, 4)),
    ("explicit_cyrillic", EDITED_SIM)])
def test_explicit_corrections(labels: dict[str, dict], rid: str, similarity: float | None) -> None:
    """A correction field flags the response, with the corrected text's similarity to it when given;
    it replaces an implicit edit found for the same response (explicit_over_a was pasted back at 0.96)."""
    lab = labels[rid]
    assert (lab["edited"], lab["edit_similarity"], lab["edit_source"]) == (True, similarity, "explicit_field")


# --- edit similarity: every cut-off of edit_similarity -------------------------------------------------

WORDS = [f"w{i:03d}" for i in range(400)]  # distinct words: difflib's ratio is then 2 * kept / (n_a + n_b)


def text(words: list[str]) -> str:
    return " ".join(words) + "."


@pytest.mark.parametrize(("kept", "expected"), [(50, 0.5), (49, None), (51, 0.51)])
def test_min_similarity_both_sides(kept: int, expected: float | None) -> None:
    """100-word reply; the user keeps `kept` of its words and replaces the rest: ratio = kept / 100."""
    reply = WORDS[:100]
    edited = reply[:kept] + WORDS[200 : 300 - kept]
    assert edit_similarity(text(reply), text(edited)) == expected


def test_min_similarity_is_configurable() -> None:
    reply, edited = WORDS[:100], WORDS[:70] + WORDS[200:230]  # ratio 0.70
    assert edit_similarity(text(reply), text(edited), min_similarity=0.7) == 0.7
    assert edit_similarity(text(reply), text(edited), min_similarity=0.71) is None


@pytest.mark.parametrize(("n_words", "judged"), [(7, False), (8, True)])
def test_min_words_both_sides(n_words: int, judged: bool) -> None:
    reply = WORDS[:n_words]
    edited = [*reply[:-1], "changed"]
    expected = round(2 * (n_words - 1) / (2 * n_words), 4)
    assert edit_similarity(text(reply), text(edited)) == (expected if judged else None)


def test_identical_words_are_not_an_edit() -> None:
    """Only punctuation / spacing differs: ratio 1.0 is excluded (nothing was edited)."""
    reply = " ".join(WORDS[:20])
    assert edit_similarity(reply + ".", reply + "!") is None
    assert edit_similarity(reply + ".", " ".join([*WORDS[:19], "x"]) + "!") == 0.95


def test_verbatim_quote_with_more_text_is_not_an_edit() -> None:
    reply = text(WORDS[:20])
    assert edit_similarity(reply, "About this: " + reply + " why?") is None
    assert edit_similarity(reply, "About this: " + reply.replace("w005", "w999") + " why?") is not None


def test_max_words_bounds_the_comparison() -> None:
    """Only the first max_words words are compared: a change past them is invisible."""
    reply = WORDS[:40]
    edited = [*WORDS[:30], *WORDS[300:310]]  # the last 10 words differ
    assert edit_similarity(text(reply), text(edited), max_words=30) is None  # identical prefix: ratio 1.0
    assert edit_similarity(text(reply), text(edited), max_words=40) == 0.75


@pytest.mark.parametrize(("kept", "expected"), [(34, round(68 / 134, 4)), (33, None)])
def test_a_shortened_copy_near_the_length_bound(kept: int, expected: float | None) -> None:
    """The user keeps the first `kept` of 100 words: ratio 2k / (100 + k), 0.5075 at 34 and 0.4962 at
    33. The cheap length and vocabulary pre-checks must not reject the one that qualifies."""
    assert edit_similarity(text(WORDS[:100]), text(WORDS[:kept])) == expected


def test_vocabulary_gate_keeps_repeated_word_edits() -> None:
    """Word repeats make the sequence ratio and the word-set overlap differ: the reply repeats a
    phrase, the edit keeps it once and changes the rest a little."""
    reply = WORDS[:30] + WORDS[:30]
    edited = WORDS[:30] + WORDS[:20] + WORDS[300:310]
    expected = round(2 * 50 / 120, 4)
    assert edit_similarity(text(reply), text(edited)) == expected


def test_configured_edit_cut_offs_reach_the_comparison() -> None:
    from audit.signals import _similarity

    reply, edited = text(WORDS[:100]), text(WORDS[:70] + WORDS[200:230])  # ratio 0.70
    assert _similarity(reply, edited, SignalsConfig()) == 0.7
    assert _similarity(reply, edited, SignalsConfig(edit_min_similarity=0.71)) is None
    assert _similarity(text(WORDS[:9]), text([*WORDS[:8], "x"]), SignalsConfig(edit_min_words=10)) is None
    long_reply, long_edit = text(WORDS[:40]), text(WORDS[:30] + WORDS[300:310])
    assert _similarity(long_reply, long_edit, SignalsConfig(edit_max_words=30)) is None  # differs past 30
    assert _similarity(long_reply, long_edit, SignalsConfig()) == 0.75


@pytest.mark.parametrize(("feedback", "metadata", "expected"), [
    ("not json", '{"correction": "fixed"}', (True, "fixed")),  # a bad blob does not hide the next
    ("[1, 2]", None, (False, None)),
    ('{"a": {"b": {"correction": "deep"}}}', None, (True, "deep")),  # two levels down
    ('{"a": {"b": {"c": {"correction": "too deep"}}}}', None, (False, None)),  # three is too deep
    ('{"correction": {"value": "by value"}}', None, (True, "by value")),
    ('{"correction": {"text": "by text", "value": "v"}}', None, (True, "by text")),
    ('{"edited": {}}', None, (True, None)),
    ('{"edited": "  "}', None, (False, None)),
])
def test_explicit_edit_field_shapes(feedback: str | None, metadata: str | None,
                                    expected: tuple[bool, str | None]) -> None:
    from audit.signals import explicit_edit

    assert explicit_edit(feedback, metadata) == expected


def test_missing_texts_are_not_an_edit() -> None:
    assert edit_similarity(None, text(WORDS[:20])) is None
    assert edit_similarity(text(WORDS[:20]), None) is None


def test_default_max_words_is_3000() -> None:
    """Texts differing only in their 3,001st word compare equal on the first 3,000 (ratio 1: no edit)."""
    words = [f"d{i}" for i in range(3001)]
    assert edit_similarity(" ".join(words), " ".join([*words[:3000], "changed"])) is None
    assert edit_similarity(" ".join(words), " ".join([*words[:3000], "changed"]), max_words=3001) == round(
        3000 / 3001, 4)


# The length pre-filter counts WHITESPACE tokens (no regex yet): the shorter text must hold at least
# 0.5 / 1.5 x 0.8 = 0.2667 of the longer one's tokens, 8.0 of 30. Words joined by commas are one token
# there but several words for the comparison, so a copy can sit exactly on that cut: 8 tokens holding 21
# of the reply's 30 words (ratio 2 x 21 / 51 = 0.8235) is compared, 7 tokens holding the same 21 are not.
# Six of the tokens are single words, so the vocabulary pre-filter (2 x 6 >= 0.28 x 38) lets both pass.
REPLY30 = " ".join(WORDS[:30]) + "."
PACKED8 = " ".join(WORDS[:6]) + " " + ",".join(WORDS[6:16]) + " " + ",".join(WORDS[16:21]) + "."
PACKED7 = " ".join(WORDS[:6]) + " " + ",".join(WORDS[6:21]) + "."


@pytest.mark.parametrize(("packed", "expected"), [(PACKED8, round(42 / 51, 4)), (PACKED7, None)])
def test_length_prefilter_both_sides(packed: str, expected: float | None) -> None:
    assert packed.count(" ") + 1 in (7, 8)
    assert edit_similarity(REPLY30, packed) == expected  # the edited copy is the shorter text
    assert edit_similarity(packed, REPLY30) == expected  # the reply is


# The vocabulary pre-filter compares WHITESPACE tokens (punctuation attached): 2 x shared tokens must
# reach 0.7 x 0.4 = 0.28 of both token counts. Twenty-word reply; the copy changes its last word (ratio
# 2 x 19 / 40 = 0.95) and keeps `kept` tokens as they are, the other words followed by a comma (the
# same words, other tokens): 2 x 6 = 12 >= 0.28 x 40 = 11.2 is compared, 2 x 5 = 10 is not.
def _commas_after(kept: int, n: int) -> str:
    return " ".join([*WORDS[:kept], *(f"{w}," for w in WORDS[kept : n - 1]), "changed."])


@pytest.mark.parametrize(("kept", "expected"), [(6, 0.95), (5, None)])
def test_vocabulary_prefilter_both_sides(kept: int, expected: float | None) -> None:
    assert edit_similarity(" ".join(WORDS[:20]), _commas_after(kept, 20)) == expected


def test_vocabulary_prefilter_exactly_at_the_cut() -> None:
    """0.28 x 950 = 266 exactly in floating point: 475 tokens a side, 133 shared (2 x 133 = 266) is not
    below the cut, so the pair is compared (ratio 2 x 474 / 950 = 0.9979)."""
    words = [f"e{i}" for i in range(475)]
    edited = " ".join([*words[:133], *(f"{w}," for w in words[133:474]), "changed."])
    assert 0.7 * 0.4 * 950 == 266
    assert edit_similarity(" ".join(words), edited) == round(948 / 950, 4)


def test_word_set_overlap_gate() -> None:
    """A copy that repeats one word but shares little vocabulary is no edit, although difflib's ratio
    is high: reply = 'a' x 30 + p0..p9, copy = 'a' x 30 + p0..p2 + q0..q7; the sequences match on 33
    words (ratio 66 / 81 = 0.81) but the word sets share 4 of 11 + 12 (Dice 8 / 23 = 0.35 < 0.4).
    The same shape sharing 6 (p0..p4 kept, Dice 12 / 23 = 0.52) is an edit: ratio 70 / 81 = 0.8642."""
    reply = " ".join(["a"] * 30 + [f"p{i}" for i in range(10)])
    assert edit_similarity(reply, " ".join(["a"] * 30 + [f"p{i}" for i in range(3)] + [f"q{i}" for i in range(8)])) is None
    assert edit_similarity(reply, " ".join(["a"] * 30 + [f"p{i}" for i in range(5)] + [f"q{i}" for i in range(6)])) \
        == round(70 / 81, 4)


def test_word_set_overlap_gate_exactly_at_the_cut() -> None:
    """Dice exactly 0.4 (2 x 2 shared of 5 + 5 words) is not below the cut: 'a' x 30 + p0..p3 against
    'a' x 30 + p0 + q0..q2 is compared, ratio 2 x 31 / 68 = 0.9118."""
    reply = " ".join(["a"] * 30 + [f"p{i}" for i in range(4)])
    assert edit_similarity(reply, " ".join(["a"] * 30 + ["p0"] + [f"q{i}" for i in range(3)])) == round(62 / 68, 4)


def test_signal_table_schema_with_an_all_null_column(tmp_path: Path) -> None:
    """The sparse signal table keeps its declared types when a column has no value at all (one bare
    edit flag: no regeneration, no retry, no similarity)."""
    from audit.signals import SIGNALS_SCHEMA, detect_signals
    from pipeline.workdir.store import connect_store

    write_store(tmp_path, [answered("flag", "flag", 0, [msg("user", "Refund?")], metadata_json='{"edited": true}')])
    con = connect_store(tmp_path)
    tasks.build_features(con, tasks.TasksConfig())
    table = detect_signals(con, SignalsConfig())
    con.close()
    assert table.schema == SIGNALS_SCHEMA
    assert table.to_pylist() == [{"request_id": "flag", "regenerated": False, "regeneration_of": None, "is_retry": False,
                                  "retry_of": None, "edited": True, "edit_similarity": None,
                                  "edit_source": "explicit_field"}]


def test_long_texts_are_compared_word_for_word() -> None:
    """No autojunk: in texts of 200+ words difflib would otherwise skip a common word ("the", 84 of 252)
    that stands between changed words. Half of the 84 'a<i> the c<i>' groups change both outer words:
    matched 126 + 42 = 168 words, ratio 2 x 168 / 504 = 0.6667 (autojunk would give 0.5)."""
    reply = " ".join(f"a{i} the c{i}" for i in range(84))
    edited = " ".join(f"a{i} the c{i}" if i % 2 == 0 else f"b{i} the d{i}" for i in range(84))
    assert edit_similarity(reply, edited) == round(336 / 504, 4)


def test_words_are_unicode_words() -> None:
    """A reply in Cyrillic is compared on its words: 20 words, one changed: 2 x 19 / 40 = 0.95."""
    assert edit_similarity(" ".join(CYRILLIC[:20]), " ".join([*CYRILLIC[:19], "иначе"])) == 0.95
