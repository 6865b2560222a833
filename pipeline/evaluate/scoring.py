"""Score one candidate answer against the production answer, per task kind.

Every scorer returns a `Score` in [0, 1] (None when the REFERENCE cannot be scored, e.g. a
production SQL answer no parser reads: such examples are counted, not averaged):

- classification: normalized label match (case, surrounding quotes/punctuation and whitespace
  ignored); with `label_field`, the label is that field of a JSON answer.
- json: the answer must parse as JSON (code fences stripped); score = top-level fields equal to the
  reference / fields in either (so a dropped field and an extra one both cost), with key-set match
  and validity recorded beside it.
- sql: the first SQL statement (a ```sql fence, else the answer) parsed by sqlglot and normalized
  (identifier case, INNER JOIN = JOIN, operand order and boolean simplification by sqlglot's
  `simplify`, one canonical rendering): 1 when the normalized statements are equal, else 0.
- tool_call: per reference call, the call of the same name in the answer and the share of its
  arguments equal to the reference; averaged over max(reference calls, answer calls).
- text: chrF (sacrebleu's sentence chrF, character 6-grams, beta 2) / 100: a reference-based,
  offline, language-independent metric.

An example whose production answer is a tool call is scored by tool_call whatever its task kind.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pipeline.evaluate.examples import Answer

KINDS = ("classification", "json", "sql", "tool_call", "text")

_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*\s*\n(.*?)```", re.DOTALL)
_SQL_FENCE = re.compile(r"```sql\s*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_SQL_START = re.compile(r"^\s*(select|with|insert|update|delete|create|alter|drop)\b", re.IGNORECASE)
_LABEL_STRIP = " \t\r\n\"'`.,;:!?"


@dataclass(frozen=True)
class Score:
    score: float | None
    detail: str | None = None
    json_valid: bool | None = None
    keys_match: bool | None = None
    fields_matched: int | None = None
    fields_total: int | None = None
    name_match: bool | None = None


def score_answer(kind: str, reference: Answer, answer: Answer, options: dict[str, Any] | None = None) -> tuple[str, Score]:
    """(scorer used, score) of `answer` against `reference` for a task of `kind`."""
    options = options or {}
    if reference.tool_calls:
        return "tool_call", score_tool_calls(reference, answer)
    ref, got = reference.content or "", answer.content or ""
    if kind == "classification":
        return kind, score_label(ref, got, options.get("label_field"))
    if kind == "json":
        return kind, score_json(ref, got)
    if kind == "sql":
        return kind, score_sql(ref, got, options.get("sql_dialect"))
    # text, and a tool task's text answers
    return "text", score_text(ref, got)


# --- classification -----------------------------------------------------------------------------


def normalize_label(text: str) -> str:
    return " ".join(text.strip(_LABEL_STRIP).casefold().split())


def score_label(reference: str, answer: str, label_field: str | None = None) -> Score:
    if label_field:
        ref_obj, got_obj = parse_json(reference), parse_json(answer)
        if not isinstance(ref_obj, dict) or label_field not in ref_obj:
            return Score(None, "reference_has_no_label")
        if not isinstance(got_obj, dict) or label_field not in got_obj:
            return Score(0.0, "no_label")
        reference, answer = str(ref_obj[label_field]), str(got_obj[label_field])
    if not normalize_label(reference):
        return Score(None, "empty_reference")
    ok = normalize_label(reference) == normalize_label(answer)
    return Score(1.0 if ok else 0.0, None if ok else "label_mismatch")


# --- JSON ----------------------------------------------------------------------------------------


def parse_json(text: str) -> Any:
    """The JSON value of an answer (a fenced block's content when fenced), or None."""
    text = (text or "").strip()
    m = _FENCE.search(text)
    if m:
        text = m.group(1).strip()
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None


def values_equal(a: Any, b: Any) -> bool:
    """Field equality: numbers by value (1 == 1.0), strings ignoring case and outer whitespace."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def score_json(reference: str, answer: str) -> Score:
    ref = parse_json(reference)
    if ref is None:
        return Score(None, "reference_not_json")
    got = parse_json(answer)
    if got is None:
        return Score(0.0, "invalid_json", json_valid=False, keys_match=False, fields_matched=0,
                     fields_total=len(ref) if isinstance(ref, dict) else 1)
    if not (isinstance(ref, dict) and isinstance(got, dict)):
        ok = values_equal(ref, got)
        return Score(1.0 if ok else 0.0, None if ok else "value_mismatch", json_valid=True, keys_match=ok,
                     fields_matched=int(ok), fields_total=1)
    keys = ref.keys() | got.keys()
    matched = sum(1 for k in keys if k in ref and k in got and values_equal(ref[k], got[k]))
    total = len(keys)
    score = matched / total if total else 1.0
    keys_match = ref.keys() == got.keys()
    detail = None if score == 1.0 else ("missing_or_extra_fields" if not keys_match else "field_mismatch")
    return Score(score, detail, json_valid=True, keys_match=keys_match, fields_matched=matched, fields_total=total)


# --- SQL -----------------------------------------------------------------------------------------


def extract_sql(text: str) -> str | None:
    m = _SQL_FENCE.search(text or "")
    if m:
        return m.group(1).strip()
    m = _FENCE.search(text or "")
    if m and _SQL_START.match(m.group(1)):
        return m.group(1).strip()
    return text.strip() if _SQL_START.match(text or "") else None


def normalize_sql(sql: str, dialect: str | None = None) -> str | None:
    """One canonical rendering of the first statement of `sql`, or None when it does not parse."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
    from sqlglot.optimizer.simplify import simplify

    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
        if not statements:
            return None
        tree = normalize_identifiers(statements[0], dialect=dialect)
        for join in tree.find_all(exp.Join):
            if str(join.args.get("kind") or "").upper() == "INNER":
                join.set("kind", None)
        return simplify(tree, dialect=dialect).sql(dialect=dialect, normalize=True, comments=False)
    except SqlglotError:
        return None
    except (RecursionError, ValueError, TypeError):  # pathological input must not stop the run
        return None


def score_sql(reference: str, answer: str, dialect: str | None = None) -> Score:
    ref_sql = extract_sql(reference)
    ref = normalize_sql(ref_sql, dialect) if ref_sql else None
    if ref is None:
        return Score(None, "reference_sql_unparseable")
    got_sql = extract_sql(answer)
    if got_sql is None:
        return Score(0.0, "no_sql")
    got = normalize_sql(got_sql, dialect)
    if got is None:
        return Score(0.0, "sql_unparseable")
    return Score(1.0, None) if got == ref else Score(0.0, "sql_not_equivalent")


# --- tool calls ----------------------------------------------------------------------------------


def _args(call: dict[str, str]) -> Any:
    try:
        return json.loads(call.get("arguments") or "{}")
    except (json.JSONDecodeError, ValueError):
        return None


def score_tool_calls(reference: Answer, answer: Answer) -> Score:
    if not answer.tool_calls:
        return Score(0.0, "no_tool_call", name_match=False)
    remaining = list(answer.tool_calls)
    total = 0.0
    names_ok = True
    for ref_call in reference.tool_calls:
        match = next((c for c in remaining if c["name"] == ref_call["name"]), None)
        if match is None:
            names_ok = False
            continue
        remaining.remove(match)
        ref_args, got_args = _args(ref_call), _args(match)
        if isinstance(ref_args, dict) and isinstance(got_args, dict):
            keys = ref_args.keys() | got_args.keys()
            total += (sum(1 for k in keys if k in ref_args and k in got_args and values_equal(ref_args[k], got_args[k]))
                      / len(keys)) if keys else 1.0
        else:
            total += 1.0 if values_equal(ref_args, got_args) else 0.0
    score = total / max(len(reference.tool_calls), len(answer.tool_calls))
    detail = None if score == 1.0 else ("wrong_tool" if not names_ok else "argument_mismatch")
    return Score(score, detail, name_match=names_ok and len(answer.tool_calls) == len(reference.tool_calls))


# --- free text -----------------------------------------------------------------------------------


def score_text(reference: str, answer: str) -> Score:
    if not reference.strip():
        return Score(None, "empty_reference")
    if not answer.strip():
        return Score(0.0, "empty_answer")
    value = _chrf().sentence_score(answer, [reference]).score / 100.0
    return Score(value, None if value >= 1.0 else "text_differs")


@functools.cache
def _chrf() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()  # sacrebleu's defaults: character 6-grams, beta 2, no word n-grams
