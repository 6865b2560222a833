"""Stage 2: metrics over the normalized Parquet store, written to `WORKDIR/audit/`.

`audit(workdir, config)` runs the audit modules in dependency order; each module has a
`run(workdir, out_dir, config) -> dict` that writes its Parquet tables and returns its section
of `summary.json`:

  1. audit.cost     -> request_costs.parquet (spend per request; everything else joins it)
  2. audit.tasks    -> request_labels.parquet, task_types.parquet (task types + regeneration/edit/feedback)
  3. audit.cache    -> cache_*.parquet (tokens by segment, cacheable-prefix simulation, prefix breakers)
  4. audit.traffic  -> latency, errors, growth

A module that is not installed yet is skipped (and listed under `skipped` in the summary).
"""

from __future__ import annotations

import importlib
import inspect
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import load_toml
from pipeline.errors import AuditError, MissingInputError
from pipeline.executor import Executor, executor_config, make_executor
from pipeline.money import Money
from pipeline.progress import phase, stage_progress
from pipeline.workdir import versions
from pipeline.workdir.lock import holds_writer_lock
from pipeline.workdir.paths import workdir_paths
from pipeline.workdir.store import has_requests, missing_store_message, store_identity

AUDIT_MODULES = ("audit.cost", "audit.tasks", "audit.cache", "audit.traffic")


@dataclass(frozen=True)
class AuditResult:
    out_dir: Path
    summary_json: dict[str, Any]  # what `WORKDIR/audit/summary.json` holds
    money: Money = field(default_factory=Money)
    """The reporting currency the CLI line uses (summary.json itself keeps the audit's USD)."""

    def summary(self) -> str:
        lines = [f"Audit written to {self.out_dir}/ (summary.json)"]
        for name, section in self.summary_json.get("sections", {}).items():
            headline = section.get("headline") if isinstance(section, dict) else None
            if name == "cost" and isinstance(section, dict) and section.get("total_usd") is not None:
                headline = cost_line(section, self.money)
            if headline:
                lines.append(f"  {name}: {headline}")
        return "\n".join(lines)


def cost_line(cost: dict[str, Any], money: Money) -> str:
    """The cost audit in the reporting currency, each figure with its period."""
    days = (cost.get("window") or {}).get("days")
    period = f"{days:.0f}-day window" if isinstance(days, int | float) else "window"
    top = (cost.get("by_model") or [{}])[0].get("model") or "-"
    return (f"{money.text(cost['total_usd'])} in the {period} ({money.text(cost.get('total_without_caching_usd'))} "
            f"without caching); run-rate {money.text(cost.get('monthly_run_rate_usd'))}/month as logged, "
            f"{money.text(cost.get('monthly_run_rate_without_caching_usd'))}/month without caching; top model {top}")


@holds_writer_lock
def audit(workdir: Path, config: dict[str, Any] | Path | str | None = None,
          executor: Executor | None = None) -> AuditResult:
    """Run every audit module over `workdir/requests` and write `workdir/audit/summary.json`.

    `config` is the parsed TOML settings (each module reads its `[audit.*]` section) or the path of
    a TOML file. Modules whose `run` takes an `executor` run their heavy passes as tasks on it
    (default: the `[run]` section's executor, closed at the end).
    """
    workdir = Path(workdir)
    if not has_requests(workdir):
        raise MissingInputError(missing_store_message(workdir))
    config = config if isinstance(config, dict) else load_toml(Path(config) if config is not None else None)
    if executor is None:
        with make_executor(executor_config(config)) as own:
            return _audit(workdir, config, own)
    return _audit(workdir, config, executor)


def _audit(workdir: Path, config: dict[str, Any], executor: Executor) -> AuditResult:
    summary: dict[str, Any] = {"sections": {}, "skipped": [], "timings_s": {}}
    # the executor's memory budget (`[run] memory_mb` or `--memory-mb`) is the one each module's DuckDB shares
    config = {**config, "run": {**(config.get("run") or {}), "memory_mb": executor.memory_mb}}
    # Built into a new version and switched in whole: a run killed (or a disk filling up) half way
    # leaves the previous audit as it was, never a mix of new and old tables.
    with versions.building(workdir, "audit", store=store_identity(workdir)) as build, \
            stage_progress("audit", total=len(AUDIT_MODULES), unit="module") as bar:
        for name in AUDIT_MODULES:
            bar.note(name)
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as e:
                if e.name == name:
                    summary["skipped"].append(name)
                    bar.advance()
                    continue
                raise
            t0 = time.perf_counter()
            kwargs = {"executor": executor} if "executor" in inspect.signature(module.run).parameters else {}
            if not kwargs:
                executor.release()  # a driver-only module: idle workers (ingest's, in `run`) must not sit beside it
            with phase(name), exact_sum_errors(name):
                summary["sections"][name.split(".")[-1]] = module.run(workdir, build, config, **kwargs)
            summary["timings_s"][name] = round(time.perf_counter() - t0, 3)
            bar.advance()
        (build / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    out_dir = workdir_paths(workdir).view("audit")  # the link to the version just committed
    return AuditResult(out_dir, summary, Money.from_config(config))


@contextmanager
def exact_sum_errors(module: str) -> Iterator[None]:
    """Money is summed exactly as DECIMAL(38, 18) (docs/architecture.md "Deterministic figures"),
    which holds amounts below 1e20 USD. Beyond that the store or the prices are wrong (a token count
    or a price off by many orders of magnitude): say so instead of DuckDB's cast error."""
    try:
        yield
    except (duckdb.ConversionException, duckdb.OutOfRangeException) as e:
        # a cast of one amount, or the exact sum's 128-bit integer overflowing
        if "DECIMAL(38,18)" not in str(e).replace(" ", "") and "Overflow in" not in str(e):
            raise
        detail = str(e).splitlines()[0]
        raise AuditError(
            f"Audit module {module}: a money amount or sum is beyond 1e20 USD, the range the audit adds "
            f"exactly. A request's token counts or the price table (`[audit.cost] prices`) are off by many "
            f"orders of magnitude; find the request with the largest cost_usd / token counts in the store. "
            f"DuckDB: {detail}") from e


# The stage's earlier name (its second argument was the TOML path, which `audit` still accepts).
run_audits = audit
