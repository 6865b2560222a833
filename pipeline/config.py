"""Configuration: frozen dataclasses with documented defaults, optionally overridden from TOML.

Each stage declares its own `*Config` dataclass next to its code; a user's `--config file.toml`
overrides fields per section (e.g. `[audit.cache]`, `[dataset]`, `[report]`). The whole file is
checked when it is loaded, before any stage runs: unknown sections and keys are errors with a
"did you mean", and every value must have its field's type, so a typo or a quoted number never
silently falls back to a default or fails half way through a run. A new section is registered
in `SECTIONS`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import ConfigError

T = TypeVar("T")


# Every section a config file may hold -> the dataclass its keys override ("module:Class").
SECTIONS = {
    "audit.cost": "audit.cost:CostConfig",
    "audit.cache": "audit.cache:CacheConfig",
    "audit.tasks": "audit.tasks:TasksConfig",
    "audit.signals": "audit.signals:SignalsConfig",
    "audit.traffic": "audit.traffic:TrafficConfig",
    "dataset": "pipeline.dataset.stage:DatasetConfig",
    "dataset.dedup": "pipeline.dataset.dedup:DedupConfig",
    "report": "pipeline.report.thresholds:ReportConfig",
    "weekly": "pipeline.report.thresholds:WeeklyConfig",
    "run": "pipeline.executor:ExecutorConfig",
}


def load_toml(path: Path | None) -> dict[str, Any]:
    """Parse and validate a config file (see `validate_config`)."""
    if path is None:
        return {}
    try:
        config = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"Config file `{path}` does not exist.") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"Config file `{path}` is not UTF-8 text: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Config file `{path}` is not valid TOML: {e}") from e
    validate_config(config, source=str(path))
    return config


def validate_config(config: dict[str, Any], source: str = "the config") -> None:
    """Check every section, key and value type of a parsed config; one ConfigError lists every problem."""
    problems: list[str] = []
    _check_tables(config, "", problems)
    for dotted, target in SECTIONS.items():
        values = _lookup(config, dotted)
        if values is not None:
            problems += _field_problems(_resolve(target), values, dotted)
    if problems:
        raise ConfigError(f"`{source}`: " + "; ".join(problems) + ".")


def _check_fields(cls: type, values: dict[str, Any], dotted: str, where: str) -> None:
    problems = _field_problems(cls, values, dotted)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems) + ".")


def _check_tables(node: dict[str, Any], prefix: str, problems: list[str]) -> None:
    """Unknown sections, and sections that are not tables (`report = 5`)."""
    children = {d[len(prefix):].split(".")[0] for d in SECTIONS if d.startswith(prefix)}
    own = f"{prefix[:-1]}" if prefix else ""
    for key, value in node.items():
        dotted = prefix + key
        if key in children:
            if not isinstance(value, dict):
                problems.append(f"[{dotted}] must be a table of settings, not {_describe(value)}")
            else:
                _check_tables(value, dotted + ".", problems)
        elif own not in SECTIONS:  # keys of a known section are checked against its dataclass
            known = sorted(prefix + k for k in children)
            problems.append(f"unknown section [{dotted}]{_did_you_mean(dotted, known, brackets=True)} "
                            f"(known: {', '.join(f'[{k}]' for k in known)})")


def _lookup(config: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


def _resolve(target: str) -> type:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _field_problems(cls: type, values: dict[str, Any], dotted: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    subsections = {d[len(dotted) + 1:] for d in SECTIONS if d.startswith(dotted + ".")}
    problems = []
    for key, value in values.items():
        if key in subsections:
            continue
        if key not in fields:
            hint = _did_you_mean(key, sorted(fields))
            problems.append(f"unknown key `{key}` in [{dotted}]{hint}"
                            + ("" if hint else f" (known: {', '.join(sorted(fields - subsections))})"))
        elif not _has_type(value, hints[key]):
            problems.append(f"[{dotted}] {key} must be {_type_name(hints[key])}, got {_describe(value)}")
    return problems


def _has_type(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is Any:
        return True
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        args = [a for a in typing.get_args(expected) if a is not Ellipsis]
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and len(args) > 1 and Ellipsis not in typing.get_args(expected):
            return len(value) == len(args) and all(_has_type(v, a) for v, a in zip(value, args, strict=True))
        return not args or all(_has_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if dataclasses.is_dataclass(expected):
        return isinstance(value, dict)
    return True  # a type this checker does not know: the stage's own checks apply


def _type_name(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(expected))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "absent"}
    if expected in names:
        return names[expected]
    if origin in (tuple, list):
        args = [a for a in typing.get_args(expected) if a is not Ellipsis]
        return f"a list of {_type_name(args[0]).removeprefix('an ').removeprefix('a ')}s" if len(args) == 1 else "a list"
    return getattr(expected, "__name__", str(expected))


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}.get(
        type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, dict) else "{…}"
    return f"{kind} {shown[:60]}"


def _did_you_mean(name: str, known: list[str], brackets: bool = False) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean [{close[0]}]?)" if brackets else f" (did you mean `{close[0]}`?)"


def section(config: dict[str, Any], dotted: str) -> dict[str, Any]:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def from_section(cls: type[T], config: dict[str, Any], dotted: str) -> T:
    """Build `cls` (a dataclass) from its defaults overridden by `config[dotted]`."""
    values = section(config, dotted)
    _check_fields(cls, values, dotted, "config")
    return cls(**{k: v for k, v in values.items() if k in {f.name for f in dataclasses.fields(cls)}})  # type: ignore[arg-type]
