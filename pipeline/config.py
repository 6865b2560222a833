"""Configuration: frozen dataclasses with documented defaults, optionally overridden from TOML.

Each stage declares its own `*Config` dataclass next to its code; a user's `--config file.toml`
overrides fields per section (e.g. `[audit.cache]`, `[dataset]`, `[report]`). Unknown keys are
an error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import ConfigError

T = TypeVar("T")


def load_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"Config file `{path}` does not exist.") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Config file `{path}` is not valid TOML: {e}") from e


def section(config: dict[str, Any], dotted: str) -> dict[str, Any]:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def from_section(cls: type[T], config: dict[str, Any], dotted: str) -> T:
    """Build `cls` (a dataclass) from its defaults overridden by `config[dotted]`."""
    values = section(config, dotted)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"Unknown key(s) in [{dotted}]: {', '.join(unknown)}. Known: {', '.join(sorted(names))}.")
    return cls(**values)
