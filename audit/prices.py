"""Loader for `audit/prices.toml`: per-model prices (dated, with sources) and caching rule sets.

Prices and caching rules are data; this module only validates them and answers two questions:
which price entry bills a model on a given day (`PriceTable.lookup`) and which caching rules
apply to it (`PriceTable.rules_for`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

DEFAULT_PRICES = Path(__file__).with_name("prices.toml")

CACHE_KINDS = ("auto_prefix", "breakpoints", "none")


@dataclass(frozen=True)
class CacheRules:
    """One provider caching regime (formats.md §k); see the comments in prices.toml."""

    name: str
    kind: str
    min_tokens: int = 1024
    step_tokens: int = 1
    ttl_minutes: float = 5.0
    ttl_1h_minutes: float = 60.0
    refresh_on_hit: bool = True
    implicit_last: bool = False
    max_breakpoints: int = 4
    lookback_blocks: int = 20
    write_multiplier_5m: float = 1.0
    write_multiplier_1h: float = 2.0
    read_multiplier: float | None = None
    source: str = ""
    as_of: str = ""
    confidence: str = "documented"


@dataclass(frozen=True)
class ModelPrice:
    """Prices of one model family from `effective_from` on, in USD per `per_tokens` tokens."""

    key: str
    provider: str
    match: tuple[str, ...]
    input: float
    cached_input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    batch_discount: float
    cache_rules: str
    cache_min_tokens: int | None
    effective_from: date
    source: str
    confidence: str = "documented"


@dataclass(frozen=True)
class PriceTable:
    version: str
    currency: str
    per_tokens: int
    models: tuple[ModelPrice, ...]
    rules: dict[str, CacheRules]
    path: Path
    sha256: str = ""
    """Of the file's bytes: which prices a report used, whatever the checkout or machine."""

    @property
    def shown_path(self) -> str:
        """The path a summary records: the shipped table by its place in the package (the same in
        every checkout, so summaries compare byte for byte), a user's table as they gave it."""
        return "audit/prices.toml" if self.path == DEFAULT_PRICES else str(self.path)

    def lookup(self, model: str | None, when: date | datetime | None = None) -> ModelPrice | None:
        """The entry billing `model` on `when`: longest matching name prefix, then the latest
        `effective_from` not after `when` (the earliest entry when the log predates them all)."""
        name = normalize_model_name(model)
        if not name:
            return None
        best_len = -1
        candidates: list[ModelPrice] = []
        for m in self.models:
            for prefix in m.match:
                if _prefix_matches(name, prefix):
                    if len(prefix) > best_len:
                        best_len, candidates = len(prefix), [m]
                    elif len(prefix) == best_len and m not in candidates:
                        candidates.append(m)
        if not candidates:
            return None
        day = when.date() if isinstance(when, datetime) else when
        candidates.sort(key=lambda m: m.effective_from)
        if day is None:
            return candidates[-1]
        eligible = [m for m in candidates if m.effective_from <= day]
        return eligible[-1] if eligible else candidates[0]

    def rules_for(self, price: ModelPrice | None) -> CacheRules:
        """Caching rules of a priced model, with its per-model minimum; `none` when unpriced."""
        if price is None:
            return self.rules["none"]
        rules = self.rules[price.cache_rules]
        if price.cache_min_tokens is not None:
            rules = dataclasses.replace(rules, min_tokens=price.cache_min_tokens)
        return rules

    def versions(self) -> list[tuple[ModelPrice, datetime, datetime | None]]:
        """Each entry with the half-open UTC interval it bills (for a SQL range join). The first
        version of a key extends back to the beginning of time, so older logs are still priced."""
        out: list[tuple[ModelPrice, datetime, datetime | None]] = []
        by_key: dict[str, list[ModelPrice]] = {}
        for m in self.models:
            by_key.setdefault(m.key, []).append(m)
        for entries in by_key.values():
            entries.sort(key=lambda m: m.effective_from)
            for i, m in enumerate(entries):
                start = datetime(1970, 1, 1, tzinfo=UTC) if i == 0 else _midnight(m.effective_from)
                end = _midnight(entries[i + 1].effective_from) if i + 1 < len(entries) else None
                out.append((m, start, end))
        return out


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _prefix_matches(name: str, prefix: str) -> bool:
    # "gpt-4o" matches "gpt-4o-2024-08-06" but "o3" must not match "o3x": the prefix has to end at
    # a separator or at the end of the name.
    return name == prefix or (name.startswith(prefix) and not name[len(prefix)].isalnum())


_REGION = re.compile(r"^(?:us|eu|apac|global|au|jp|ca)\.")


def normalize_model_name(model: str | None) -> str:
    """Lower case, without gateway/provider prefixes ("openai/", "us.anthropic.", "models/") or
    Bedrock version suffixes ("-v1:0"), so one price entry matches every spelling."""
    if not model:
        return ""
    m = model.strip().lower()
    m = m.rsplit("/", 1)[-1]
    m = _REGION.sub("", m)
    for vendor in ("anthropic.", "openai.", "google.", "deepseek."):
        if m.startswith(vendor):
            m = m[len(vendor) :]
    m = re.sub(r"-v\d+(?::\d+)?$", "", m)
    m = m.replace("@", "-")  # Vertex spells snapshots claude-sonnet-4@20250514
    return m


_SNAPSHOT_DATE = re.compile(r"-(?:20\d{2}-\d{2}-\d{2}|20\d{6}|\d{4})$")


@functools.lru_cache(maxsize=4096)  # called per request by the cache audit; few distinct names
def base_model_name(model: str | None) -> str:
    """`normalize_model_name` without a dated snapshot suffix ("-2024-08-06", "-20250929", "-0613"):
    an alias and its snapshot are the same model to a prompt cache."""
    return _SNAPSHOT_DATE.sub("", normalize_model_name(model))


_RULE_FIELDS = {f.name for f in dataclasses.fields(CacheRules)} - {"name"}
_MODEL_FIELDS = {
    "key", "provider", "match", "input", "cached_input", "output", "cache_write_5m", "cache_write_1h",
    "batch_discount", "cache_rules", "cache_min_tokens", "effective_from", "source", "confidence",
}


def load_prices(path: Path | None = None) -> PriceTable:
    """Parse and validate a prices file (default: the shipped `audit/prices.toml`)."""
    path = Path(path) if path else DEFAULT_PRICES
    try:
        raw = path.read_bytes()
        doc = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"Prices file `{path}` does not exist.") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"Prices file `{path}` is not valid TOML: {e}") from e
    if doc.get("currency", "USD") != "USD":
        raise ConfigError(f"`{path}`: currency {doc.get('currency')!r} is not supported; the audit reports USD.")
    rules = {name: _parse_rules(path, name, spec) for name, spec in (doc.get("cache_rules") or {}).items()}
    rules.setdefault("none", CacheRules(name="none", kind="none"))
    models = tuple(_parse_model(path, i, spec, rules) for i, spec in enumerate(doc.get("models") or []))
    return PriceTable(
        version=str(doc.get("version", "")),
        currency="USD",
        per_tokens=int(doc.get("per_tokens", 1_000_000)),
        models=models,
        rules=rules,
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _parse_rules(path: Path, name: str, spec: dict[str, Any]) -> CacheRules:
    unknown = sorted(set(spec) - _RULE_FIELDS)
    if unknown:
        raise ConfigError(f"`{path}` [cache_rules.{name}]: unknown key(s) {', '.join(unknown)}.")
    if spec.get("kind") not in CACHE_KINDS:
        raise ConfigError(f"`{path}` [cache_rules.{name}]: `kind` must be one of {', '.join(CACHE_KINDS)}.")
    return CacheRules(name=name, **spec)


def _parse_model(path: Path, i: int, spec: dict[str, Any], rules: dict[str, CacheRules]) -> ModelPrice:
    where = f"`{path}` [[models]] #{i + 1} ({spec.get('key', '?')})"
    unknown = sorted(set(spec) - _MODEL_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}.")
    for required in ("key", "match", "input", "output", "cache_rules", "effective_from"):
        if required not in spec:
            raise ConfigError(f"{where}: `{required}` is required.")
    rule_name = spec["cache_rules"]
    if rule_name not in rules:
        raise ConfigError(f"{where}: cache_rules {rule_name!r} is not defined under [cache_rules].")
    rule = rules[rule_name]
    eff = spec["effective_from"]
    if isinstance(eff, str):
        try:
            eff = date.fromisoformat(eff)
        except ValueError as e:
            raise ConfigError(f"{where}: effective_from {eff!r} is not YYYY-MM-DD.") from e
    inp = float(spec["input"])
    write_5m = float(spec.get("cache_write_5m", inp * rule.write_multiplier_5m))
    return ModelPrice(
        key=str(spec["key"]),
        provider=str(spec.get("provider", "")),
        match=tuple(normalize_model_name(m) for m in spec["match"]),
        input=inp,
        cached_input=float(spec.get("cached_input", inp)),
        output=float(spec["output"]),
        cache_write_5m=write_5m,
        cache_write_1h=float(spec.get("cache_write_1h", inp * rule.write_multiplier_1h)),
        batch_discount=float(spec.get("batch_discount", 0.0)),
        cache_rules=rule_name,
        cache_min_tokens=int(spec["cache_min_tokens"]) if spec.get("cache_min_tokens") is not None else None,
        effective_from=eff,
        source=str(spec.get("source", "")),
        confidence=str(spec.get("confidence", "documented")),
    )
