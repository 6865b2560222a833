"""Config validated up front (issue 17 rows: wrong types gave TypeError tracebacks, some only after
ingest, audit and dataset had run; misspelled or non-table sections were silently ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.config import SECTIONS, _resolve, validate_config
from pipeline.errors import ConfigError
from tests.test_workdir_lock import write_logs


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[report]\nusd_to_currency = "1.5"\n', "[report] usd_to_currency must be a number, got string '1.5'"),
        ('[dataset]\neval_fraction = "0.1"\n', "[dataset] eval_fraction must be a number, got string '0.1'"),
        ('[audit.cache]\nblock_tokens = "64"\n', "[audit.cache] block_tokens must be an integer, got string '64'"),
        ("[dataset]\nseed = 1.5\n", "[dataset] seed must be an integer, got number 1.5"),
        ('[weekly]\nmax_volume_drop = "a lot"\n', "[weekly] max_volume_drop must be a number, got string 'a lot'"),
        ("[dataset]\nper_task = 1\n", "[dataset] per_task must be true or false, got integer 1"),
        ('[dataset]\nfilters = "errors"\n', "[dataset] filters must be a list of strings, got string 'errors'"),
        ("[reprot]\ncurrency = 'EUR'\n", "unknown section [reprot] (did you mean [report]?)"),
        ("report = 5\n", "[report] must be a table of settings, not integer 5"),
        ("[audit.cahce]\n", "unknown section [audit.cahce] (did you mean [audit.cache]?)"),
        ("[report]\ndays_per_mnth = 30\n", "unknown key `days_per_mnth` in [report] (did you mean `days_per_month`?)"),
    ],
)
def test_bad_config_fails_before_any_stage_runs(tmp_path: Path, toml: str, message: str) -> None:
    logs = tmp_path / "logs"
    write_logs(logs, "a", 5)
    config = tmp_path / "audit.toml"
    config.write_text(toml, encoding="utf-8")
    work = tmp_path / "w"
    result = CliRunner().invoke(cli, ["run", str(logs), "--out", str(work), "--config", str(config)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert message in result.output, result.output
    assert result.output.startswith(f"Error: `{config}`: ")
    assert not (work / ".store").exists()  # nothing ran


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        validate_config({"dataset": {"seed": "x"}, "weekly": {"days": 7.5}, "repot": {}}, "c.toml")
    text = str(e.value)
    assert "[dataset] seed" in text and "[weekly] days" in text and "[repot]" in text


def test_the_defaults_of_every_section_pass() -> None:
    """The registry names real dataclasses, and each one's own defaults are valid values."""
    import dataclasses

    config: dict = {}
    for dotted, target in SECTIONS.items():
        cls = _resolve(target)
        node = config
        for part in dotted.split("."):
            node = node.setdefault(part, {})
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.type) or f.name in ("dedup", "money"):  # nested settings (money comes from [report])
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            if default is None:
                continue
            node[f.name] = [list(v) if isinstance(v, tuple) else v for v in default] if isinstance(default, tuple) else default
    validate_config(config, "defaults")
