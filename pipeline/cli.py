"""`logaudit`: a thin click layer over the Python API. No data logic lives here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.errors import PipelineError, disk_error

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The one place errors become messages: a PipelineError, an OS-level failure (disk full,
    read-only, permission) or any unexpected exception prints one `Error: …` line and exits 1;
    `logaudit --debug …` re-raises with the traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as e:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            raise click.ClickException(user_message(e, kwargs.get("workdir"))) from e
        except KeyboardInterrupt:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            raise click.ClickException("Interrupted; earlier results are unchanged.") from None

    return wrapper


def user_message(e: BaseException, workdir: Path | None = None) -> str:
    if isinstance(e, PipelineError):
        return str(e)
    as_disk = disk_error(e, workdir)
    if as_disk is not None:
        return str(as_disk)
    if type(e).__name__ in ("OutOfMemoryException", "MemoryError"):
        return (f"Out of memory ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}). Free memory, "
                "or lower `ingest --max-record-mb` when single records are huge. Earlier results are unchanged.")
    return f"Unexpected {type(e).__name__}: {e}. Rerun with `logaudit --debug …` for the traceback, and report it."


def writes_workdir(create: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A command that writes into WORKDIR: `--wait` option, and the writer lock held for the whole
    command (the stage functions re-enter it), so a second writer queues or is refused by name."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, wait: bool, **kwargs: Any) -> Any:
            from pipeline.workdir.lock import stale_note, writer_lock

            say = functools.partial(click.echo, err=True)
            with writer_lock(kwargs["workdir"], wait=wait, create=create, on_wait=say) as stale:
                if stale:
                    say(stale_note(stale, kwargs["workdir"]))
                return fn(*args, **kwargs)

        return click.option(
            "--wait", is_flag=True, help="When another logaudit is writing WORKDIR, wait for it instead of exiting."
        )(wrapper)

    return decorate


def out_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--out", "workdir", type=click.Path(path_type=Path), default=Path("out"), show_default=True,
        help="Working directory holding the store and every stage's output.",
    )(fn)


def executor_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--executor/--workers/--ray-address/--memory-mb`: override `[run]` of the config (pipeline/executor.py)."""
    fn = click.option("--memory-mb", type=click.IntRange(min=512), default=None,
                      help="Memory budget of the run's processes together (default 2048); each DuckDB "
                           "connection gets a share and spills beyond it.")(fn)
    fn = click.option("--ray-address", default=None,
                      help="Ray cluster to run on (`auto`, `host:6379`); default RAY_ADDRESS, else a local Ray.")(fn)
    fn = click.option("--workers", type=click.IntRange(min=0), default=None,
                      help="Local worker processes (0 = CPU count), or Ray tasks in flight.")(fn)
    return click.option("--executor", "executor_name", type=click.Choice(["local", "ray"]), default=None,
                        help="Where heavy tasks run: a local process pool (default) or a Ray cluster.")(fn)


def _executor_overrides(executor_name: str | None, workers: int | None, ray_address: str | None,
                        memory_mb: int | None = None) -> dict[str, Any]:
    return {"executor": executor_name, "workers": workers, "ray_address": ray_address, "memory_mb": memory_mb}
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
@click.option("--strict", is_flag=True, help="Exit non-zero when any record is rejected or any file is unreadable.")
@click.option("--max-record-mb", type=click.FloatRange(min=0.001), default=64, show_default=True,
              help="Quarantine (reject as record_too_large) any single record longer than this.")
@progress_option
@executor_options
@handle_errors
@writes_workdir(create=True)
def ingest(paths: tuple[str, ...], workdir: Path, strict: bool, max_record_mb: float, executor_name: str | None,
           workers: int | None, ray_address: str | None, memory_mb: int | None) -> None:
    """Ingest log files, folders or globs into the normalized Parquet store.

    \b
    Example:
      logaudit ingest exports/2026-10/ 'gateway/*.jsonl.gz' --out out
      logaudit ingest 'postgresql://reader@db:5432/litellm' --out out
    Re-running is idempotent; new files are added incrementally, and a LiteLLM
    database (PATHS may be postgresql:// URLs; PG* environment variables work)
    is read from where the last run stopped.
    """
    from pipeline.executor import executor_config, make_executor
    from pipeline.ingest import ingest as run_ingest

    cfg = executor_config({}, **_executor_overrides(executor_name, workers, ray_address, memory_mb))
    with make_executor(cfg) as pool:
        result = run_ingest(paths, workdir, strict=strict, max_record_bytes=int(max_record_mb * (1 << 20)),
                            executor=pool)
    click.echo(result.summary())


@cli.command()
@workdir_argument
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True), help="TOML overrides.")
@progress_option
@executor_options
@handle_errors
@writes_workdir()
def audit(workdir: Path, config_path: Path | None, executor_name: str | None, workers: int | None,
          ray_address: str | None, memory_mb: int | None) -> None:
    """Measure cacheable share, tokens, spend, task types and signals over the store.

    \b
    Example:
      logaudit audit out
      logaudit audit out --executor ray --ray-address auto
    """
    from audit import audit as run_audit
    from pipeline.config import load_toml
    from pipeline.executor import executor_config, make_executor

    cfg = executor_config(load_toml(config_path), **_executor_overrides(executor_name, workers, ray_address, memory_mb))
    with make_executor(cfg) as pool:
        click.echo(run_audit(workdir, config_path, executor=pool).summary())


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
@executor_options
@handle_errors
@writes_workdir()
def dataset(workdir: Path, target_format: str | None, pii: str | None, per_task: bool | None, seed: int | None,
            eval_fraction: float | None, config_path: Path | None, executor_name: str | None, workers: int | None,
            ray_address: str | None, memory_mb: int | None) -> None:
    """Build fine-tuning JSONL from the store: filter, redact, deduplicate, split.

    \b
    Example:
      logaudit dataset out --format openai --pii redact
    Writes out/dataset/{train,eval}.jsonl, lineage.parquet, manifest.json, dataset_card.md.
    """
    from pipeline.config import load_toml
    from pipeline.dataset import DatasetConfig, build_dataset
    from pipeline.executor import executor_config, make_executor

    settings = load_toml(config_path)
    config = DatasetConfig.from_toml(
        settings, format=target_format, pii=pii, per_task=per_task, seed=seed, eval_fraction=eval_fraction,
    )
    overrides = _executor_overrides(executor_name, workers, ray_address, memory_mb)
    if all(v is None for v in overrides.values()) and "run" not in settings:
        click.echo(build_dataset(workdir, config).summary())  # [dataset] workers, as before
        return
    with make_executor(executor_config(settings, **overrides)) as pool:
        click.echo(build_dataset(workdir, config, executor=pool).summary())


@cli.command()
@workdir_argument
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True),
              help="TOML overrides ([report] thresholds, prices, currency, your latency/privacy needs).")
@click.option("--allow-mixed-versions", is_flag=True,
              help="Read the audit, dataset and evaluations even when they were computed from different versions.")
@handle_errors
@writes_workdir()
def report(workdir: Path, config_path: Path | None, allow_mixed_versions: bool) -> None:
    """Write the verdict, five signs, decision framework, costs and data quality.

    \b
    Example:
      logaudit report out --config audit.toml
    Writes out/report/report.md, report.html (self-contained) and report.json.
    """
    from pipeline.config import load_toml
    from pipeline.report import render_report

    click.echo(render_report(workdir, load_toml(config_path), allow_mixed_versions=allow_mixed_versions).summary())


@cli.command()
@workdir_argument
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True),
              help="TOML overrides ([weekly] regression limits).")
@click.option("--allow-mixed-versions", is_flag=True,
              help="Read the audit and dataset even when they were computed from different store versions.")
@handle_errors
@writes_workdir()
def weekly(workdir: Path, config_path: Path | None, allow_mixed_versions: bool) -> None:
    """Compare the last 7 days with the 7 before and flag regressions.

    \b
    Example:
      logaudit weekly out || alert "LLM traffic regressed"
    Writes out/report/weekly.md and weekly.json. Exit code 0 = no regression, 3 = regressions
    (1 = an error), so a cron job can act on it.
    """
    from pipeline.config import load_toml
    from pipeline.report import weekly_report

    result = weekly_report(workdir, load_toml(config_path), allow_mixed_versions=allow_mixed_versions)
    click.echo(result.summary())
    raise SystemExit(result.exit_code)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@out_option
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True),
              help="One TOML for every stage ([audit.*], [dataset], [report]).")
@progress_option
@executor_options
@handle_errors
@writes_workdir(create=True)
def run(paths: tuple[str, ...], workdir: Path, config_path: Path | None, executor_name: str | None,
        workers: int | None, ray_address: str | None, memory_mb: int | None) -> None:
    """Run the whole pipeline: ingest -> audit -> dataset -> report.

    \b
    Example:
      logaudit run sample_logs --out out
      logaudit run logs/ --out /shared/out --executor ray --ray-address auto
    Prints each stage's summary as it finishes, then where the report is.
    Outputs never depend on the executor or the number of workers.
    """
    from pipeline.run import run_all

    result = run_all(paths, workdir, config_path, echo=click.echo,
                     executor=_executor_overrides(executor_name, workers, ray_address, memory_mb))
    click.echo(result.summary())


@cli.command(name="eval")
@workdir_argument
@click.option("--candidate", help="Name of the candidate model (names WORKDIR/eval/<candidate>/).")
@click.option("--predictions", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="JSONL of {id, answer | messages} per eval example.")
@click.option("--endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (the only network use).")
@click.option("--model", help="Model name the endpoint serves (with --endpoint).")
@click.option("--baseline", help="An evaluated candidate whose scores are production's level (e.g. the API model re-asked).")
@click.option("--prompts", "prompts_only", is_flag=True,
              help="Only write WORKDIR/eval/prompts.jsonl (the eval prompts with their ids) and stop.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True),
              help="TOML overrides ([eval] margin, baselines, endpoint settings, [eval.tasks.<type>] kind ...).")
@click.option("--progress/--no-progress", default=None, help="Endpoint progress bar (default: when stderr is a terminal).")
@handle_errors
@writes_workdir()
def eval_(workdir: Path, candidate: str | None, predictions: Path | None, endpoint: str | None, model: str | None,
          baseline: str | None, prompts_only: bool, config_path: Path | None, progress: bool | None) -> None:
    """Score a candidate model against production on the eval split, task by task.

    \b
    Example:
      logaudit eval out --prompts                       # out/eval/prompts.jsonl to answer
      logaudit eval out --candidate ft-v1 --predictions answers.jsonl
      OPENAI_API_KEY=... logaudit eval out --candidate ft-v1 --endpoint http://127.0.0.1:8000/v1 --model ft-v1
    Writes out/eval/<candidate>/{scores.parquet, summary.json, eval.md, routing.json, litellm_router.yaml}.
    """
    import sys

    from pipeline.config import load_toml
    from pipeline.errors import EvalError
    from pipeline.evaluate import EvalConfig, evaluate, export_prompts

    if prompts_only:
        click.echo(f"Eval prompts written to {export_prompts(workdir)}")
        return
    if not candidate:
        raise EvalError("--candidate NAME is required (or --prompts to export the eval prompts).")
    config = EvalConfig.from_toml(load_toml(config_path))
    bar = None
    if endpoint and (progress if progress is not None else sys.stderr.isatty()):
        from tqdm import tqdm

        bar = tqdm(desc="asking", unit="example", file=sys.stderr)

    def on_answer(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        result = evaluate(workdir, candidate, predictions=predictions, endpoint=endpoint, model=model,
                          baseline=baseline, config=config, on_answer=on_answer)
    finally:
        if bar is not None:
            bar.close()
    click.echo(result.summary_text())


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
