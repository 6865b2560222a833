"""Per-task figures: mean score, 95% percentile-bootstrap intervals, the delta to production and
the decision (the guides' rule: within the margin of production's quality -> the candidate can
take the task; otherwise keep the API)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def bootstrap_means(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """`samples` means of resamples (with replacement) of `values`; one seeded generator."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(samples, len(values)))
    return values[idx].mean(axis=1)


def interval(values: np.ndarray, samples: int, seed: int) -> tuple[float | None, float | None]:
    """95% percentile bootstrap interval of the mean of `values` (None, None when empty)."""
    if len(values) == 0:
        return None, None
    means = bootstrap_means(values.astype(float), samples, seed)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class Decision:
    decision: str
    """candidate | api"""
    reason: str
    uncertain: bool
    """The delta's 95% interval contains the margin: more eval examples would settle it."""


def decide(n: int, delta: float | None, delta_low: float | None, delta_high: float | None, margin: float,
           min_examples: int, kind: str) -> Decision:
    if n < min_examples:
        return Decision("api", f"only {n} scored eval examples (fewer than {min_examples})", False)
    if delta is None:
        return Decision("api", f"no production baseline for {kind}: evaluate the production model as a candidate "
                               f"and pass --baseline, or set [eval.baselines] {kind}", False)
    uncertain = delta_low is not None and delta_high is not None and delta_low < -margin <= delta_high
    if delta >= 0:
        return Decision("candidate", f"delta {delta:+.1%}: no worse than the baseline", uncertain)
    if delta >= -margin:
        return Decision("candidate", f"delta {delta:+.1%} within the {margin:.0%} margin", uncertain)
    return Decision("api", f"delta {delta:+.1%} beyond the {margin:.0%} margin", uncertain)
