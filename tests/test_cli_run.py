"""`logaudit run` and `logaudit report` from the command line: stage summaries, files, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generator = ROOT / "sample_logs" / "generate.py"
    if not generator.is_file():
        pytest.skip("sample_logs/generate.py is not present")
    out = tmp_path_factory.mktemp("small_logs")
    subprocess.run([sys.executable, str(generator), "--out", str(out), "--requests", "300", "--days", "14"],
                   check=True, capture_output=True)
    return out


def test_run_prints_every_stage_and_writes_the_report(small_logs: Path, tmp_path: Path) -> None:
    config = tmp_path / "audit.toml"
    config.write_text('[report]\ncurrency = "USD"\nusd_to_currency = 1.0\nlatency_requirement_ms = 150\n',
                      encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner(env={"COLUMNS": "80"}).invoke(
        cli, ["run", str(small_logs), "--out", str(out), "--config", str(config), "--no-progress"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    text = result.output
    positions = [text.index(f"== {stage} ==") for stage in ("ingest", "audit", "dataset", "report")]
    assert positions == sorted(positions)
    assert "Ingested" in text and "Dataset written" in text and "decision:" in text
    assert f"Report: {out / 'report' / 'report.md'}" in text
    for name in ("report.md", "report.html", "report.json"):
        assert (out / "report" / name).stat().st_size > 0
    report = json.loads((out / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["cost"]["currency"] == "USD"
    # The config reached the report: the stated need is printed beside the measured latency.
    assert report["thresholds"]["latency_requirement_ms"] == 150
    assert next(s for s in report["signs"] if s["id"] == 5)["measured_from"] == "config"


def test_report_alone_rerenders_from_disk(small_logs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(small_logs), "--out", str(out), "--no-progress"]).exit_code == 0
    before = json.loads((out / "report" / "report.json").read_text(encoding="utf-8"))
    result = runner.invoke(cli, ["report", str(out)], catch_exceptions=False)
    assert result.exit_code == 0 and "Report written to" in result.output
    assert json.loads((out / "report" / "report.json").read_text(encoding="utf-8")) == before  # deterministic


def test_report_on_an_empty_workdir_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Nothing to report in `{tmp_path}`")


def test_bad_report_config_key_is_a_clear_error(small_logs: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[report]\nsign_one = 3\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(small_logs), "--out", str(tmp_path / "o"), "--config", str(config)])
    assert result.exit_code == 1
    # Message reworded by issue 17 (config validated up front, with a "did you mean" when one is close).
    assert "unknown key `sign_one` in [report]" in result.output
