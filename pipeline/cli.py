"""`logaudit`: a thin click layer over the Python API. No data logic lives here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.errors import PipelineError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn PipelineError into `Error: …` and exit code 1; `--debug` re-raises with the traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PipelineError as e:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            raise click.ClickException(str(e)) from e

    return wrapper


def out_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--out", "workdir", type=click.Path(path_type=Path), default=Path("out"), show_default=True,
        help="Working directory holding the store and every stage's output.",
    )(fn)


def progress_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--progress/--no-progress`: bars with counts and ETA on stderr (default: when stderr is a terminal)."""

    def apply(ctx: click.Context, param: click.Parameter, value: bool | None) -> bool | None:
        from pipeline.progress import configure

        configure(value)
        return value

    return click.option("--progress/--no-progress", default=None, callback=apply, expose_value=False,
                        help="Progress bars with counts and ETA (default: when stderr is a terminal).")(fn)


def workdir_argument(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("workdir", type=click.Path(path_type=Path), default=Path("out"))(fn)


@click.group(context_settings=CONTEXT)
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Audit LLM API logs: is prompt caching still enough, or is it time to fine-tune?

    \b
    Quick start:
      logaudit run sample_logs --out out      # ingest -> audit -> dataset -> report
      logaudit ingest logs/ --out out         # stage 1 only
      logaudit formats                        # the log formats recognized
    """


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@out_option
@click.option("--strict", is_flag=True, help="Exit non-zero when any record is rejected.")
@progress_option
@handle_errors
def ingest(paths: tuple[str, ...], workdir: Path, strict: bool) -> None:
    """Ingest log files, folders or globs into the normalized Parquet store.

    \b
    Example:
      logaudit ingest exports/2026-10/ 'gateway/*.jsonl.gz' --out out
      logaudit ingest 'postgresql://reader@db:5432/litellm' --out out
    Re-running is idempotent; new files are added incrementally, and a LiteLLM
    database (PATHS may be postgresql:// URLs; PG* environment variables work)
    is read from where the last run stopped.
    """
    from pipeline.ingest import ingest as run_ingest

    result = run_ingest(paths, workdir, strict=strict)
    click.echo(result.summary())


@cli.command()
@workdir_argument
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True), help="TOML overrides.")
@progress_option
@handle_errors
def audit(workdir: Path, config_path: Path | None) -> None:
    """Measure cacheable share, tokens, spend, task types and signals over the store.

    \b
    Example:
      logaudit audit out
    """
    from audit import audit as run_audit

    click.echo(run_audit(workdir, config_path).summary())


@cli.command()
@workdir_argument
@click.option("--format", "target_format", type=click.Choice(["openai", "anthropic", "trl", "sharegpt"]),
              default=None, help="Output record format (default openai).")
@click.option("--pii", type=click.Choice(["redact", "drop", "keep"]), default=None,
              help="Secrets/PII: redact with typed placeholders (default), drop the request, or keep.")
@click.option("--per-task", is_flag=True, default=None, help="One train/eval pair per task type.")
@click.option("--seed", type=int, default=None, help="Seed of the eval split (default 13).")
@click.option("--eval-fraction", type=float, default=None,
              help="Minimum share held out per task type (default 0.2; see [dataset] eval_min_per_task, eval_cap_per_task).")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True), help="TOML overrides.")
@progress_option
@handle_errors
def dataset(workdir: Path, target_format: str | None, pii: str | None, per_task: bool | None, seed: int | None,
            eval_fraction: float | None, config_path: Path | None) -> None:
    """Build fine-tuning JSONL from the store: filter, redact, deduplicate, split.

    \b
    Example:
      logaudit dataset out --format openai --pii redact
    Writes out/dataset/{train,eval}.jsonl, lineage.parquet, manifest.json, dataset_card.md.
    """
    from pipeline.config import load_toml
    from pipeline.dataset import DatasetConfig, build_dataset

    config = DatasetConfig.from_toml(
        load_toml(config_path), format=target_format, pii=pii, per_task=per_task, seed=seed,
        eval_fraction=eval_fraction,
    )
    click.echo(build_dataset(workdir, config).summary())


@cli.command()
@workdir_argument
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True),
              help="TOML overrides ([report] thresholds, prices, currency, your latency/privacy needs).")
@handle_errors
def report(workdir: Path, config_path: Path | None) -> None:
    """Write the verdict, five signs, decision framework, costs and data quality.

    \b
    Example:
      logaudit report out --config audit.toml
    Writes out/report/report.md, report.html (self-contained) and report.json.
    """
    from pipeline.config import load_toml
    from pipeline.report import render_report

    click.echo(render_report(workdir, load_toml(config_path)).summary())


@cli.command()
@workdir_argument
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True),
              help="TOML overrides ([weekly] regression limits).")
@handle_errors
def weekly(workdir: Path, config_path: Path | None) -> None:
    """Compare the last 7 days with the 7 before and flag regressions.

    \b
    Example:
      logaudit weekly out || alert "LLM traffic regressed"
    Writes out/report/weekly.md and weekly.json. Exit code 0 = no regression, 3 = regressions
    (1 = an error), so a cron job can act on it.
    """
    from pipeline.config import load_toml
    from pipeline.report import weekly_report

    result = weekly_report(workdir, load_toml(config_path))
    click.echo(result.summary())
    raise SystemExit(result.exit_code)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@out_option
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True),
              help="One TOML for every stage ([audit.*], [dataset], [report]).")
@progress_option
@handle_errors
def run(paths: tuple[str, ...], workdir: Path, config_path: Path | None) -> None:
    """Run the whole pipeline: ingest -> audit -> dataset -> report.

    \b
    Example:
      logaudit run sample_logs --out out
    Prints each stage's summary as it finishes, then where the report is.
    """
    from pipeline.run import run_all

    result = run_all(paths, workdir, config_path, echo=click.echo)
    click.echo(result.summary())


@cli.command()
def formats() -> None:
    """List the log formats recognized, in detection order, with how each is detected.

    \b
    Example:
      logaudit formats
    """
    from pipeline.ingest.bodies import BODY_FORMATS
    from pipeline.ingest.file_kinds import FILE_KINDS
    from pipeline.ingest.formats import FORMATS
    from pipeline.ingest.postgres import SOURCE_DESCRIPTION

    click.echo("Files (how each file is cut into records):")
    for name, description in FILE_KINDS:
        click.echo(f"  {name:<24} {description}")
    click.echo("\nDatabases (`logaudit ingest postgresql://…`):")
    click.echo(f"  {'litellm_postgres':<24} {SOURCE_DESCRIPTION}")
    click.echo("\nRecord formats (auto-detected per record, first match wins):")
    for f in FORMATS:
        click.echo(f"  {f.name:<24} {f.description}")
    click.echo("\nProvider body formats (inside any wrapper above):")
    for b in BODY_FORMATS:
        click.echo(f"  {b.name:<24} {b.description}")


if __name__ == "__main__":
    cli()
