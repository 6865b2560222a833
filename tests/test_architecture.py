"""The house rules that keep the data flow readable from the folder names (docs/architecture.md).

A stage package never imports another stage package: stages meet only through the working
directory (the store and the handoff files, `pipeline/workdir/`) and the shared kits
(`pipeline/sql.py`, `pipeline/similarity.py`, `pipeline/tokens.py`, `pipeline/config.py`,
`pipeline/errors.py`, `schemas/`). Only the orchestrators (`pipeline/__init__.py`, `cli.py`,
`run.py`) call several stages.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("pipeline.ingest", "audit", "pipeline.dataset", "pipeline.report", "pipeline.evaluate")
ORCHESTRATORS = {"pipeline", "pipeline.__main__", "pipeline.cli", "pipeline.run"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str | None = None) -> set[str]:
    """Every module `path` imports, at any depth (function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _stage_of(module: str) -> str | None:
    return next((s for s in STAGES if module == s or module.startswith(s + ".")), None)


def _project_modules() -> list[Path]:
    return sorted(p for d in ("pipeline", "audit", "schemas") for p in (ROOT / d).rglob("*.py"))


def test_walk_sees_every_stage_and_its_imports() -> None:
    """Guard the walk itself: it finds modules of each stage and the imports we know are there."""
    stages_seen = {_stage_of(_module_name(p)) for p in _project_modules()}
    assert set(STAGES) <= stages_seen
    assert "pipeline.workdir.store" in _imports(ROOT / "audit" / "tables.py")
    assert "pipeline.ingest" in _imports(ROOT / "pipeline" / "run.py")  # a function-level import


def _crossings(path: Path, module: str) -> list[str]:
    """The other stages' modules that `path` (module `module`) imports."""
    if module in ORCHESTRATORS:
        return []
    own = _stage_of(module)
    return sorted(m for m in _imports(path, module) if _stage_of(m) not in (None, own))


@pytest.mark.parametrize("path", [str(p.relative_to(ROOT)) for p in _project_modules()])
def test_no_stage_imports_another_stage(path: str) -> None:
    module = _module_name(ROOT / path)
    crossing = _crossings(ROOT / path, module)
    assert crossing == [], f"{path} ({_stage_of(module) or 'shared'}) imports another stage: {crossing}"


def test_the_rule_catches_a_crossing(tmp_path: Path) -> None:
    """The check finds the imports it forbids, relative and function-level ones included."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from pipeline.report.render import md_escape\n"
        "from ..ingest import writer\n"
        "def f():\n    import audit.cache\n",
        encoding="utf-8",
    )
    assert _crossings(probe, "pipeline.report.probe") == ["audit.cache", "pipeline.ingest", "pipeline.ingest.writer"]
    assert _crossings(probe, "pipeline.run") == []  # the orchestrator may


def test_architecture_doc_names_only_what_exists() -> None:
    """docs/architecture.md and the README's Stages section match the code: every module or folder
    they name exists, every stage's body is a `stage.py`, and every shared kit is in the doc."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stages_section = readme[readme.index("## Stages"):readme.index("## CLI")]
    named = set()
    for text in (doc, stages_section):
        named |= set(re.findall(r"`((?:pipeline|audit|schemas|bench|tests)/[a-z_/]*(?:\.py|\.toml|/))`", text))
    assert len(named) >= 15
    assert sorted(p for p in named if not (ROOT / p).exists()) == []
    for stage in STAGES:
        assert (ROOT / stage.replace(".", "/") / "stage.py").is_file(), stage
    for kit in ("pipeline/sql.py", "pipeline/similarity.py", "pipeline/workdir/", "pipeline/tokens.py"):
        assert f"`{kit}`" in doc, kit


def test_handoff_paths_are_spelled_in_one_place() -> None:
    """Stages reach each other's files through pipeline/workdir/paths.py, never `workdir / "audit"`."""
    pattern = re.compile(r"""workdir\)? / ["'](audit|dataset|report|requests|rejects|ingest_manifest\.json)["']""")
    offenders = [str(p.relative_to(ROOT)) for p in _project_modules()
                 if "workdir" not in p.parts and pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
    assert pattern.search('x = Path(workdir) / "audit" / "summary.json"')  # the check can fail


# What only the similarity kit (pipeline/similarity.py) may do; anything else uses it with its parameters.
_KIT_CALLS = {"MinHashLSH", "LeanMinHash", "xxh32_intdigest", "xxh32", "reduceat"}
_KIT_CLASSES = {"UnionFind", "MinHasher", "ShingleHasher", "Masking"}
_KIT_CONSTANTS = {0x85EBCA6B, 0xC2B2AE35, 0x100000001B3, r"\w+", r"[a-z0-9#]+(?:'[a-z]+)?"}


def _similarity_code(source: str) -> list[str]:
    """The kit's own operations in `source`: building LSH indexes or lean sketches, hashing
    shingles with xxh32, the per-document MinHash minimum, union-find / hasher / masking classes,
    MurmurHash and rolling-hash constants, word patterns, NFKC. Passing `xxh32_intdigest` as a
    value (datasketch's own reference, `hashfunc=`) is not hashing."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _KIT_CALLS:
                found.append(f"{name}()")
            if name == "normalize" and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == "NFKC":
                found.append("NFKC")
        elif isinstance(node, ast.ClassDef) and node.name in _KIT_CLASSES:
            found.append(f"class {node.name}")
        elif (isinstance(node, ast.Constant) and not isinstance(node.value, bool)
              and isinstance(node.value, (int, str)) and node.value in _KIT_CONSTANTS):
            found.append(repr(node.value))
    return found


def test_the_similarity_kit_exists_once() -> None:
    """Task clustering, dedup and edit detection share pipeline/similarity.py: no other module masks,
    tokenizes, shingle-hashes, signs, indexes or links on its own (a second copy drifts)."""
    kit = ROOT / "pipeline" / "similarity.py"
    offenders = {str(p.relative_to(ROOT)): found for p in _project_modules()
                 if p != kit and (found := _similarity_code(p.read_text(encoding="utf-8")))}
    assert offenders == {}
    # The check sees the kit's own code, and the copies dedup.py and tasks.py used to hold.
    assert {"MinHashLSH()", "LeanMinHash()", "class UnionFind", "xxh32_intdigest()", "reduceat()", "NFKC", "'\\\\w+'",
            "2246822507", "1099511628211"} <= set(_similarity_code(kit.read_text(encoding="utf-8")))
    copy = ('import re, unicodedata, xxhash\n_WORD = re.compile(r"\\w+")\n'
            'def norm(t):\n    return unicodedata.normalize("NFKC", t)\n'
            'def h(gs):\n    return [xxhash.xxh32_intdigest(g) for g in gs]\n'
            'def ref(MinHash):\n    return MinHash(hashfunc=xxhash.xxh32_intdigest)\n')
    assert _similarity_code(copy) == ["'\\\\w+'", "NFKC", "xxh32_intdigest()"]


_OUTCOME_MACRO = re.compile(r"\brequest_(?:failed|succeeded|rate_limited|server_error)\s*\([^()]*\)", re.IGNORECASE)
_OUTCOME_COLUMNS = re.compile(r"\b(?:status_code|error_type)\b", re.IGNORECASE)
_OUTCOME_RULE = ROOT / "pipeline" / "workdir" / "sql" / "request_outcome.sql"


def _outcome_rules_in_sql(sql: str) -> list[str]:
    """The lines of `sql` (comments aside) that read a request's status or error type other than as an
    argument of the outcome macros: each one is a second definition of failed / rate limited."""
    lines = []
    for line in sql.splitlines():
        code = _OUTCOME_MACRO.sub("", line.split("--", 1)[0])
        if _OUTCOME_COLUMNS.search(code):
            lines.append(line.strip())
    return lines


def _outcome_rules_in_python(source: str) -> list[str]:
    """Row keys `status_code` / `error_type` read in Python: a request's outcome computed by hand."""
    return [node.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and node.value in ("status_code", "error_type")]


def test_the_request_outcome_rule_exists_once() -> None:
    """failed / succeeded / rate limited / server error are the macros of request_outcome.sql: after
    ingest (which writes the status and error columns) no stage reads those columns except through
    them, in SQL or in Python. Ingest's parsers and the store schema are where the columns are made."""
    made_there = (ROOT / "pipeline" / "ingest", ROOT / "schemas")
    offenders: dict[str, list[str]] = {}
    for path in sorted(p for d in ("pipeline", "audit") for p in (ROOT / d).rglob("*")):
        if path == _OUTCOME_RULE or any(path.is_relative_to(d) for d in made_there):
            continue
        if path.suffix == ".sql":
            found = _outcome_rules_in_sql(path.read_text(encoding="utf-8"))
        elif path.suffix == ".py":
            found = _outcome_rules_in_python(path.read_text(encoding="utf-8"))
        else:
            continue
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}
    # The checks see what the macro file itself does, and the copies the dataset and cache audit held.
    assert len(_outcome_rules_in_sql(_OUTCOME_RULE.read_text(encoding="utf-8"))) >= 4
    assert _outcome_rules_in_sql("SELECT request_failed(finish_reason, error_type, status_code) AS failed -- status_code\n"
                                 "WHERE request_rate_limited(status_code, error_type, error_message)") == []
    assert _outcome_rules_in_sql("count(*) FILTER (WHERE status_code = 429 OR error_type ILIKE '%rate%')") != []
    assert _outcome_rules_in_python('status = row.get("status_code")\nfailed = r["error_type"] is not None') == [
        "status_code", "error_type"]


def test_every_provider_body_is_parsed_by_the_one_skeleton() -> None:
    """pipeline/ingest/bodies/: every registered body format's parse function is made by
    `body_parser` (start the row, request, error_body or the response parser), and no provider
    module handles error bodies itself: a module holds only what differs."""
    from pipeline.ingest import bodies

    assert len(bodies.BODY_FORMATS) >= 14
    made_elsewhere = [f.name for f in bodies.BODY_FORMATS if f.parse.__qualname__ != bodies.body_parser.__qualname__ + ".<locals>.parse"]
    assert made_elsewhere == []
    providers = [p for p in (ROOT / "pipeline" / "ingest" / "bodies").glob("*.py") if p.name != "__init__.py"]
    calls = {str(p.relative_to(ROOT)): sorted({n.func.id for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                                               if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                                               and n.func.id == "error_body"}) for p in providers}
    assert {k: v for k, v in calls.items() if v} == {}

    def handwritten(req: object, resp: object) -> dict:
        return {}

    assert handwritten.__qualname__ != bodies.body_parser.__qualname__ + ".<locals>.parse"  # the check can fail
