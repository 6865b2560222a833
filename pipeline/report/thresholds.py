"""Report thresholds, prices and projection assumptions: every number the verdict rests on.

The defaults are the practitioner guides' figures (`../shared/reference/checklist.md`). Every money
figure of the report is in ONE currency, `currency`, at ONE rate, `usd_to_currency`: the audit's
spend (USD) is multiplied by it, and each money default is declared in the currency its source
used (`GUIDE_MONEY`: the five signs and the framework quote AU$, the break-even and spend-per-task
rules US$) and converted, never relabelled. A money threshold you set in `[report]` is taken as
already in `currency`. Each threshold is printed in the report next to the value it was compared
with, so a reader can see which default decided the decision and override it in the `[report]`
section of a `--config` TOML file:

    [report]
    currency = "USD"
    usd_to_currency = 1.0
    latency_requirement_ms = 150        # your product's need; unknown unless you say
    on_premise_required = true
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import from_section
from pipeline.errors import ConfigError
from pipeline.money import DEFAULT_CURRENCY, DEFAULT_USD_TO_CURRENCY

# Money defaults in the currency their source quotes them in (checklist.md): converted to the
# report currency when the config leaves them unset.
GUIDE_MONEY: dict[str, tuple[float, str]] = {
    "sign1_min_monthly_cost_after_caching": (5000.0, "AUD"),
    "factor_cost_stay_below": (3000.0, "AUD"),
    "factor_cost_switch_above": (5000.0, "AUD"),
    "task_spend_stay_below": (1000.0, "USD"),
    "task_spend_finetune_above": (10000.0, "USD"),
    "fine_tune_one_time_cost": (80000.0, "USD"),
    "local_infra_monthly_cost": (2000.0, "USD"),
}


@dataclass(frozen=True)
class ReportConfig:
    # --- money ---------------------------------------------------------------------------------
    currency: str = DEFAULT_CURRENCY
    """Currency of every money figure and money threshold in the report, the weekly report, the
    dataset card and the CLI lines (the guides' thresholds quote AU$)."""
    usd_to_currency: float = DEFAULT_USD_TO_CURRENCY
    """The one exchange rate: units of `currency` per US dollar (the audit prices in USD). An
    assumption: set today's rate."""
    aud_per_usd: float = 1.5
    """Used only to convert the guides' AU$ defaults when `currency` is not AUD."""
    days_per_month: float = 30.44
    """Average month length used to turn the window's spend into a monthly run-rate."""

    # --- sign 1 / factor 1: the bill after caching -----------------------------------------------
    sign1_min_monthly_cost_after_caching: float | None = None  # default: 5,000 AUD (guide), converted
    """Sign 1 fires above this monthly cost with ideal caching, if usage is also growing."""
    sign1_min_weekly_growth: float = 0.0
    """'Growing with usage' means a fitted weekly growth rate above this."""
    factor_cost_stay_below: float | None = None  # default: 3,000 AUD (guide), converted
    """Framework: monthly cost after caching below this favours staying with caching."""
    factor_cost_switch_above: float | None = None  # default: 5,000 AUD (guide), converted
    """Framework: above this (and growing) favours fine-tuning; in between is 'unknown'."""

    # --- sign 2 / factor 2: cacheable share ------------------------------------------------------
    sign2_max_cacheable_share: float = 0.30
    """Sign 2 fires when less than this share of input tokens is cacheable even with ideal
    ordering (the guide: 12.5% cacheable saves 5-15%; the framework's switch column says < 30%)."""
    factor_cacheable_stay_above: float = 0.60
    factor_cacheable_switch_below: float = 0.30

    # --- sign 3 / factor 3: repetitive, well-defined tasks ---------------------------------------
    sign3_min_pattern_share: float = 0.80
    """Sign 3 fires when at least this share of requests belongs to repetitive, consistent task
    types ('~80% of requests follow the same pattern')."""
    repetitive_min_score: float = 0.70
    """A task type counts as a repetitive pattern when its repetitiveness score is at least this."""
    factor_variety_stay_below: float = 0.50
    """Framework: pattern share below this means high task variety (favours caching)."""

    # --- factor 4: training data available ------------------------------------------------------
    factor_examples_stay_below: int = 500
    factor_examples_switch_above: int = 1000
    min_examples_per_task: int = 1000
    """A task type is a migration candidate only with at least this many clean examples."""

    # --- sign 4 / factor 7: owning the model and data -------------------------------------------
    on_premise_required: bool | None = None
    """Your requirement (data must stay on premise / air-gapped). None = not stated: inferred."""
    sign4_min_sensitive_share: float = 0.05
    """Share of requests carrying PII or secrets above which data sensitivity is inferred."""
    sign4_min_rate_limited_share: float = 0.02
    """Share of calls rejected with HTTP 429 at or above which provider rate limits are a risk
    (1 call in 50: occasional 429s are normal back-pressure, a steady share is a capacity limit)."""
    sign4_min_single_provider_share: float = 0.95
    """One provider carrying at least this share of traffic counts as a dependence (evidence)."""

    # --- sign 5 / factor 6: latency -------------------------------------------------------------
    latency_requirement_ms: float | None = None
    """Your product's latency need (p90). None = not stated: the sign cannot fire from logs alone."""
    sign5_local_latency_ms: float = 200.0
    """Sub-200 ms needs local inference (cached cloud calls typically take 500-2,000 ms)."""
    factor_latency_stay_above_ms: float = 500.0
    """Framework: a requirement above this is met by cached cloud calls."""

    # --- factor 5: frontier reasoning -----------------------------------------------------------
    needs_frontier_reasoning: bool | None = None
    """Your judgement. None = inferred from reasoning-token use and long outputs."""
    reasoning_share_stay_above: float = 0.20
    """Inferred: at least this share of requests using reasoning tokens or long outputs means
    frontier reasoning is genuinely needed."""
    long_output_tokens: int = 2000
    """An output this long counts as complex generation for the reasoning inference."""

    # --- factor 8: usage trajectory -------------------------------------------------------------
    factor_growth_switch_factor: float = 2.0
    """Framework: projected volume at least this many times today's in 6 months favours fine-tuning."""
    factor_growth_stay_below_factor: float = 1.25
    """Framework: below this the trajectory is stable or slow growth."""

    # --- decision rule --------------------------------------------------------------------------
    framework_switch_min: int = 3
    """'Count the switch column; 3 or more -> plan the migration.' Evidence for the decision, which
    also needs the migration to pay back and task types with enough dataset examples."""
    fix_caching_min_gain: float = 0.05
    """Caching counts as fixable when ideal ordering caches at least this much more of the input
    tokens than the traffic as logged (share points), or a prefix breaker saves money."""
    migrate_min_ready_spend_share: float = 0.50
    """Migrate (rather than pilot on one task type) when the task types ready to fine-tune carry at
    least this share of spend."""
    task_fit_short_output_tokens: int = 64
    """Mean answer length at or below which a text task counts as classification (guides: classification
    and extraction gain most from fine-tuning, then fixed-format generation, open-ended text least)."""
    task_fit_fixed_format_repetitiveness: float = 0.85
    """A free-text task this repetitive counts as fixed-format generation."""

    # --- volume and spend rules -----------------------------------------------------------------
    volume_bands: tuple[tuple[float, str], ...] = (
        (100, "prompting"),
        (1000, "usually prompting"),
        (10000, "evaluate both"),
        (100000, "fine-tune usually"),
        (float("inf"), "fine-tune + prompt optimization"),
    )
    """Requests/day upper bounds and the published rule for each band."""
    task_spend_stay_below: float | None = None  # default: 1,000 USD (guide), converted
    """Spend per task type per month below which the task stays prompted."""
    task_spend_finetune_above: float | None = None  # default: 10,000 USD (guide), converted
    """Above this per month on one repetitive task, fine-tuning is on the table."""

    # --- projections and break-even -------------------------------------------------------------
    projection_months: int = 12
    fine_tune_one_time_cost: float | None = None  # default: 80,000 USD (guide), converted
    """One-time cost to fine-tune and evaluate (the guide's example: 80,000 upfront)."""
    local_infra_monthly_cost: float | None = None  # default: 2,000 USD (guide), converted
    """Fixed monthly cost of serving the fine-tuned model (the guide's example: 2,000/month)."""
    hybrid_max_local_share: float = 0.90
    """At most this share of migratable traffic moves local (the hybrid end state keeps 10-30%
    on cached cloud calls as fallback)."""
    break_even_horizon_months: int = 24
    """How far along the growth trend break-even is searched: compounding a short window's trend
    for years says more about the fit than about the business."""
    max_monthly_growth_factor: float = 2.0
    """Cap on the month-over-month growth used in projections (a short window can fit wild trends)."""

    # --- data-quality checklist -----------------------------------------------------------------
    dq_min_label_accuracy: float = 0.95
    dq_max_distribution_distance: float = 0.10
    """Total-variation distance between the train task-type mix and recent traffic."""
    dq_edge_case_min: float = 0.10
    dq_edge_case_max: float = 0.20
    dq_rare_task_share: float = 0.02
    """A task type below this share of traffic is a rare cluster (edge case)."""
    dq_min_format_consistency: float = 0.95
    dq_max_duplicate_share: float = 0.05
    dq_max_leakage_pairs: int = 0
    recent_days: int = 7
    """'Recent traffic' for the distribution-match check: the last N days of the window."""

    # --- presentation ---------------------------------------------------------------------------
    max_prefix_breakers: int = 10
    max_task_types: int = 30

    # --- sanity bounds (pipeline/report/sanity.py): figures no real API call can have -----------
    sanity_max_request_tokens: int = 2_000_000
    """A request reporting more tokens than this (beyond any model's context window) is an outlier."""
    sanity_earliest: str = "2020-01-01"
    """Timestamps before this date (ISO) are implausible for LLM API logs; the window is trimmed."""
    sanity_future_days: int = 1
    """Timestamps more than this many days after the report is made are implausible."""
    sanity_max_request_cost_usd: float = 1000.0
    """A single request costing more than this (USD) is listed as an outlier."""

    def __post_init__(self) -> None:
        if self.usd_to_currency <= 0 or self.aud_per_usd <= 0:
            raise ConfigError("[report] `usd_to_currency` and `aud_per_usd` must be positive exchange rates.")
        for name, (amount, source) in GUIDE_MONEY.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, round(self.convert(amount, source), 2))

    def money(self, usd: float | None) -> float | None:
        return None if usd is None else usd * self.usd_to_currency

    def convert(self, amount: float, source: str) -> float:
        """`amount` in `source` (USD, AUD or the report currency) -> the report currency."""
        if source == self.currency:
            return amount
        if source == "USD":
            return amount * self.usd_to_currency
        if source == "AUD":
            return amount / self.aud_per_usd * self.usd_to_currency
        raise ConfigError(f"No rate from {source} to {self.currency}.")

    def money_sources(self) -> dict[str, str]:
        """Where each money threshold came from: the guide's figure and its conversion, or the config."""
        out = {}
        for name, (amount, source) in GUIDE_MONEY.items():
            value = getattr(self, name)
            if abs(value - round(self.convert(amount, source), 2)) > 0.005:
                out[name] = f"{value:,.2f} {self.currency} (your config)"
            elif source == self.currency:
                out[name] = f"{amount:,.0f} {source} (guide)"
            else:
                out[name] = f"{amount:,.0f} {source} (guide) = {value:,.2f} {self.currency}"
        return out


@dataclass(frozen=True)
class WeeklyConfig:
    """Limits for `logaudit weekly`.

    A REGRESSION (exit code 3) is a change for the worse beyond a RELATIVE limit: this week's value
    against last week's (a rate rising from 2% to 3% is +50%). An absolute ceiling (the checklist's
    5% duplicates) is shown separately as "above limit" and a task-mix or per-task volume SHIFT as
    "shift"; neither sets the exit code, since neither is by itself a change for the worse. Rates
    whose base is smaller than `min_base` in either week are "too few to judge"."""

    days: int = 7
    """Compare the last `days` with the `days` before (anchored at the newest request)."""
    min_base: int = 30
    """A rate judged on fewer events than this (answered requests, rated responses, candidates) in
    either week is not compared: 1 of 3 vs 1 of 9 is noise, not a regression."""
    max_volume_drop: float = 0.30
    """Relative drop in requests that counts as a regression (traffic lost somewhere)."""
    max_volume_rise: float = 1.00
    """Relative rise in requests shown as "above limit" (doubling in a week): not worse by itself."""
    max_spend_rise: float = 0.25
    """Relative rise in spend per request that is a regression."""
    max_cacheable_share_drop: float = 0.10
    """Relative drop in the cacheable share that is a regression (e.g. a new prefix breaker)."""
    max_task_mix_distance: float = 0.15
    """Total-variation distance between the two weeks' task-type mix shown as a shift."""
    new_task_type_min_share: float = 0.02
    """A task type absent last week is shown as a shift when it carries at least this share of this week."""
    max_task_volume_change: float = 0.30
    """A task type whose requests change by more than this (relative, either way) is shown as a shift."""
    max_regeneration_rate_rise: float = 0.25
    """Relative rise of the regeneration rate that is a regression (2.0% -> 2.5% is +25%)."""
    max_edit_rate_rise: float = 0.25
    max_negative_feedback_rate_rise: float = 0.25
    max_filter_pass_rate_drop: float = 0.05
    """Relative drop of the share of requests that became dataset examples."""
    max_duplicate_rate_rise: float = 0.25
    """Relative rise of the duplicate rate that is a regression."""
    max_duplicate_rate: float = 0.05
    """The checklist's diversity target (absolute), shown as "above limit", never as a regression."""
    min_newly_eligible: int = 0
    """Show "above limit" when fewer new clean examples than this arrived (0 disables)."""


def report_config(config: dict[str, Any] | ReportConfig | None) -> ReportConfig:
    if isinstance(config, ReportConfig):
        return config
    return _with_tuples(from_section(ReportConfig, config or {}, "report"))


def weekly_config(config: dict[str, Any] | WeeklyConfig | None) -> WeeklyConfig:
    if isinstance(config, WeeklyConfig):
        return config
    return from_section(WeeklyConfig, config or {}, "weekly")


def _with_tuples(cfg: ReportConfig) -> ReportConfig:
    # TOML gives lists; the frozen config keeps tuples so it stays hashable.
    bands = tuple((float(b[0]), str(b[1])) for b in cfg.volume_bands)
    return cfg if bands == cfg.volume_bands else ReportConfig(**{**cfg.__dict__, "volume_bands": bands})
