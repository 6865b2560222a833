"""Documentation stays true: generated schema docs are current and every command is documented."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import cli
from schemas import logs

ROOT = Path(__file__).resolve().parent.parent


def test_schema_docs_are_generated_from_the_schema() -> None:
    assert (ROOT / "schemas" / "requests.md").read_text(encoding="utf-8") == logs.markdown_table()
    on_disk = json.loads((ROOT / "schemas" / "requests.schema.json").read_text(encoding="utf-8"))
    assert on_disk == logs.json_schema()


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    runner = CliRunner()
    for name, command in cli.commands.items():
        assert command.help and "Example" in command.help, name
        assert runner.invoke(cli, [name, "--help"]).exit_code == 0
        assert f"logaudit {name}" in readme, f"`logaudit {name}` is not documented in README.md"


def test_readme_first_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    assert "make audit" in first_block and "make test" in first_block
