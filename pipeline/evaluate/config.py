"""`[eval]` settings: decision rule, task-kind inference, endpoint client. Every field is a default
the user can override in the `--config` TOML; per task type under `[eval.tasks.<task_type>]`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import from_section
from pipeline.errors import ConfigError

TASK_OPTIONS = ("kind", "margin", "baseline", "min_examples", "label_field", "sql_dialect")


@dataclass(frozen=True)
class EvalConfig:
    margin: float = 0.05
    """A candidate takes a task when its score is at most this far below the baseline (the guides:
    "target 90-95%+ quality parity with the API responses"; 0.05 = 95% parity)."""
    min_examples: int = 20
    """Fewer scored eval examples of a task type than this: keep the API (too little evidence)."""
    baselines: dict[str, float] = field(default_factory=lambda: {
        "classification": 1.0, "json": 1.0, "sql": 1.0, "tool_call": 1.0})
    """Production's own score per kind when no `--baseline` candidate is given. The reference IS the
    production answer, so exact-match kinds score 1.0; free text has none by default (a different
    but good answer scores well below 1 in chrF): evaluate the production model itself as a
    candidate and pass `--baseline NAME`, or set `[eval.baselines] text = ...`."""
    bootstrap_samples: int = 2000
    """Resamples of the 95% percentile bootstrap intervals."""
    seed: int = 13
    """Seed of the bootstrap (intervals are reproducible)."""
    json_min_share: float = 0.8
    """A task type is scored as JSON when at least this share of its answers are JSON (the audit's
    `json_output_rate`, else the eval references)."""
    tool_call_min_share: float = 0.8
    """... as tool_call when at least this share of its answers are tool calls."""
    sql_min_share: float = 0.8
    """... as SQL when at least this share of its text references hold a parseable SQL statement."""
    classification_max_words: int = 4
    """... as classification when its references are labels of at most this many words ..."""
    classification_min_share: float = 0.9
    """... for at least this share of them ..."""
    classification_max_labels: int = 30
    """... with at most this many distinct labels, and at most half as many labels as references."""
    sql_dialect: str = ""
    """sqlglot dialect of the SQL answers ("" = sqlglot's generic dialect)."""
    concurrency: int = 4
    """Endpoint: requests in flight at once."""
    timeout_s: float = 60.0
    """Endpoint: per-request timeout (connect and read)."""
    max_attempts: int = 6
    """Endpoint: attempts per example (429, 5xx, timeouts and connection errors are retried)."""
    backoff_initial_s: float = 1.0
    """Endpoint: first retry delay; doubles per attempt with jitter; a Retry-After header wins."""
    backoff_max_s: float = 30.0
    """Endpoint: longest wait between attempts."""
    temperature: float = 0.0
    """Endpoint: sampling temperature sent with every request."""
    max_tokens: int = 0
    """Endpoint: `max_tokens` sent with every request (0 = not sent)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Endpoint: environment variable holding the API key (sent as a Bearer token; never written)."""
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per task type overrides: kind, margin, baseline, min_examples, label_field, sql_dialect."""

    @classmethod
    def from_toml(cls, config: dict[str, Any] | None) -> EvalConfig:
        cfg = from_section(cls, config or {}, "eval")
        baselines = {**cls().baselines, **cfg.baselines}
        for name, options in cfg.tasks.items():
            unknown = sorted(set(options) - set(TASK_OPTIONS)) if isinstance(options, dict) else ["(not a table)"]
            if unknown:
                raise ConfigError(f"Unknown key(s) in [eval.tasks.{name}]: {', '.join(unknown)}. "
                                  f"Known: {', '.join(TASK_OPTIONS)}.")
        from pipeline.evaluate.scoring import KINDS

        unknown_kinds = sorted(set(baselines) - set(KINDS))
        if unknown_kinds:
            raise ConfigError(f"Unknown kind(s) in [eval.baselines]: {', '.join(unknown_kinds)}. Known: {', '.join(KINDS)}.")
        checks = [("margin", 0 <= cfg.margin < 1, "between 0 and 1"), ("min_examples", cfg.min_examples >= 1, ">= 1"),
                  ("concurrency", cfg.concurrency >= 1, ">= 1"), ("max_attempts", cfg.max_attempts >= 1, ">= 1"),
                  ("timeout_s", cfg.timeout_s > 0, "> 0"), ("bootstrap_samples", cfg.bootstrap_samples >= 100, ">= 100")]
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"[eval] {name} = {getattr(cfg, name)!r} must be {rule}.")
        return dataclasses.replace(cfg, baselines=baselines)

    def task(self, task_type: str) -> dict[str, Any]:
        return dict(self.tasks.get(task_type, {}))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
