"""The measured figures the report needs, in one flat record, each either a value or a reason.

`Facts` is the seam between what earlier stages wrote (read by `inputs.py`) and what the report
decides (`decide.py`): the decision logic never reads a file, and a figure nobody measured is
`None` with its reason in `missing`, so it renders as "not measured: <reason>" instead of crashing.
Money here is in USD, as the audit wrote it; the report converts to the display currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TaskFacts:
    id: str
    label: str
    requests: int
    share: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    spend_usd: float | None = None
    cacheable_share: float | None = None
    consistency: float | None = None
    repetitiveness: float | None = None
    clean_examples: int | None = None
    """Requests the audit flagged clean (answered, not regenerated/edited/rated down): requests, not examples."""
    train_examples: int | None = None
    dataset_examples: int | None = None
    """Examples the dataset stage kept for this task type (train + eval; a multi-turn session is one)."""
    eval_examples: int | None = None
    regeneration_rate: float | None = None
    edit_rate: float | None = None
    negative_feedback_rate: float | None = None
    reasoning_share: float | None = None
    output_format: str | None = None


@dataclass
class Facts:
    missing: dict[str, str] = field(default_factory=dict)
    """Figure name -> why it was not measured (which file or section was absent)."""
    sources: dict[str, bool] = field(default_factory=dict)
    """Which upstream outputs were found (ingest_manifest, audit_summary, dataset_manifest, …)."""

    window_start: str | None = None
    window_end: str | None = None
    window_days: float | None = None

    requests_total: int | None = None
    requests_succeeded: int | None = None
    rejected_at_ingest: int | None = None
    rate_limited_share: float | None = None
    error_share: float | None = None
    provider_shares: dict[str, float] | None = None

    tokens_input: int | None = None
    tokens_output: int | None = None
    tokens_cached_reported: int | None = None
    token_composition: dict[str, int] | None = None
    """tools / system / history / user / output tokens."""

    reported_hit_share: float | None = None
    simulated_share: dict[str, float] | None = None
    """Rule set name -> share of input tokens cacheable (e.g. as_logged, ideal)."""
    ideal_rule_set: str | None = None
    prefix_breakers: list[dict[str, Any]] = field(default_factory=list)
    cache_calibration: dict[str, Any] | None = None
    """The cache audit's `calibration` section: documented vs calibrated rules per model."""

    spend_window_usd: float | None = None
    monthly_run_rate_usd: float | None = None
    monthly_api_only_usd: float | None = None
    monthly_ideal_caching_usd: float | None = None

    task_types: list[TaskFacts] = field(default_factory=list)
    task_type_count: int | None = None

    regeneration_rate: float | None = None
    edit_rate: float | None = None
    negative_feedback_rate: float | None = None
    signal_counts: dict[str, int] | None = None
    """The rates' numerators and bases: answered, regenerated, edited, feedback_count, negative_feedback."""

    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_histogram: dict[str, list[float]] | None = None

    weekly_growth_rate: float | None = None
    projected_6_month_factor: float | None = None

    sensitive_share: float | None = None
    """Share of requests carrying PII or secrets."""
    reasoning_share: float | None = None
    """Share of requests using reasoning tokens or producing long outputs."""

    daily: list[dict[str, Any]] = field(default_factory=list)
    """Per day: date, requests, spend_usd, cacheable_share_as_logged, cacheable_share_ideal."""

    dataset_train: int | None = None
    dataset_eval: int | None = None
    dataset_filtered_by: dict[str, int] | None = None
    dataset_candidates: int | None = None
    duplicate_share: float | None = None
    leakage_pairs: int | None = None
    training_cost_usd: float | None = None
    """The dataset stage's estimate of the training compute bill (its tokens x epochs x price)."""
    training_cost_basis: str | None = None
    label_accuracy_proxy: float | None = None
    distribution_distance: float | None = None
    edge_case_share: float | None = None
    format_consistency: float | None = None
    train_mix: dict[str, float] | None = None
    recent_mix: dict[str, float] | None = None

    def miss(self, name: str, reason: str) -> None:
        self.missing.setdefault(name, reason)
