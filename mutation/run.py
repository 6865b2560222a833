"""`make mutate`: mutation testing (mutmut 3) of the modules that compute figures, one module at a time.

Each module in mutation/modules.toml is mutated in its own scratch copy of the project
(`.mutate/<name>/`, git-ignored) against only its targeted tests, so a mutant costs a few seconds
and a whole module fits in minutes on 2 cores. mutmut runs each mutant only against the tests that
reach the mutated function (it records them in one stats pass first).

    python -m mutation.run                 # every module, in the file's order
    python -m mutation.run cache_sim cost  # some of them
    python -m mutation.run --list          # the modules and their tests
    python -m mutation.run --resume signals  # after adding tests: test the last run's survivors again

Results: `.mutate/results/<name>.json` (counts, score, every surviving mutant with its diff) and a
summary table on stdout; docs/testing.md records the scores and why each survivor is acceptable.
Score = killed / (killed + survived + no tests + suspicious); timeouts count as killed (the mutant
made the tests hang), as mutmut's own badge does.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".mutate"
MODULES = ROOT / "mutation" / "modules.toml"
KILLED = {"killed", "timeout", "caught by type check"}


def load_modules() -> dict[str, dict]:
    return tomllib.loads(MODULES.read_text(encoding="utf-8"))["module"]


def project_files() -> list[str]:
    """Tracked files plus untracked, not ignored ones (a fresh clone has exactly the tracked ones)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [f for f in out.splitlines() if f and (ROOT / f).is_file()]


def make_scratch(name: str, spec: dict, resume: bool = False) -> Path:
    """A fresh copy of the project for the module; with `resume`, the files are copied over the
    existing copy and mutmut keeps its mutants, stats and verdicts (it regenerates the mutants of a
    function whose source changed and records new tests)."""
    scratch = SCRATCH / name
    if not resume:
        shutil.rmtree(scratch, ignore_errors=True)
    for rel in project_files():
        dest = scratch / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
        if resume and not rel.endswith(".py") and (scratch / "mutants").is_dir():
            # mutmut regenerates changed .py files in mutants/ but keeps its first copy of the rest
            # (SQL, TOML): a changed .sql file would meet new code stale.
            (scratch / "mutants" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, scratch / "mutants" / rel)
    sources = sorted({p.split("/")[0] for p in spec["paths"]})
    # Everything the tests read besides the code (README.md: the config example a report test parses).
    copy = [d for d in ("audit", "pipeline", "schemas", "sample_logs", "bench", "README.md", "docs") if d not in sources]
    config = {
        "source_paths": sources,
        "only_mutate": spec["paths"],
        "also_copy": copy,
        "pytest_add_cli_args_test_selection": spec["tests"],
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-x", "-q"],
        # Per-mutant CPU limit = multiplier x the covering tests' clean duration + constant. The
        # constant must cover module fixtures (a planted store, a dataset build) that the stats
        # pass charged to the first test only but every mutant run sets up again: at 10 s,
        # detect_signals' mutants hit the limit without hanging.
        # mutmut's CPU limit is 2 x multiplier x (duration + constant): 10 minutes a hung mutant at
        # these defaults, so a module whose mutants can loop forever (components' fixpoint loop) and
        # whose tests need no fixture sets a smaller constant in modules.toml.
        "timeout_multiplier": spec.get("timeout_multiplier", 5.0),
        "timeout_constant": spec.get("timeout_constant", 60.0),
        "use_git_change_detection": False,
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in config.items()]
    with (scratch / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return scratch


def mutmut(scratch: Path, *args: str) -> str:
    # mutmut's CLI with each function's tests widened to whole test files (mutation/mutmut_cli.py says why).
    env = {**os.environ, "LOGAUDIT_CACHE_DIR": str(ROOT / ".tiktoken-cache")}
    proc = subprocess.run([sys.executable, "-m", "mutation.mutmut_cli", *args], cwd=scratch, env=env, text=True,
                          capture_output=True)
    if args[0] == "run":
        # mutmut redraws a progress line per mutant: keep it out of the terminal, in a log.
        (scratch / "mutmut-run.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
        if proc.returncode != 0:
            raise SystemExit(f"mutmut run failed in {scratch} (exit {proc.returncode}); see "
                             f"{scratch / 'mutmut-run.log'}\n{proc.stderr[-3000:]}")
    return proc.stdout


def statuses_of(scratch: Path, patterns: list[str]) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for line in mutmut(scratch, "results", "--all", "true").splitlines():
        key, sep, status = line.strip().rpartition(": ")
        if sep and (not patterns or any(fnmatch.fnmatch(key, p) for p in patterns)):
            statuses[key] = status
    return statuses


def _excluded(key: str, spec: dict) -> bool:
    return any(fnmatch.fnmatch(key, f"*{fn}__mutmut_*") for fn in spec.get("exclude", []))


def run_module(name: str, spec: dict, max_children: int, resume: bool = False) -> dict:
    t0 = time.monotonic()
    resume = resume and (SCRATCH / name / "mutants").is_dir()
    scratch = make_scratch(name, spec, resume)
    # `functions` narrows a shared file to the functions that compute the figure (mutmut names a
    # mutant <module>.x_<function>__mutmut_<n>, or xǁ<Class>ǁ<method>__mutmut_<n> for a method).
    patterns = [f"*{fn}__mutmut_*" for fn in spec.get("functions", [])]
    print(f"{name}: mutating {', '.join(spec['paths'])} {' '.join(spec.get('functions', []))}...", flush=True)
    if resume:
        # Tests added since the last run: run the mutants that were not killed again (mutmut keeps a
        # verdict unless the mutant is named), and the ones not run yet; never the excluded ones.
        again = [k for k, s in statuses_of(scratch, patterns).items()
                 if s not in KILLED | {"skipped"} and not _excluded(k, spec)]
        patterns = again or patterns
    mutmut(scratch, "run", "--max-children", str(max_children), *patterns)
    statuses = statuses_of(scratch, [f"*{fn}__mutmut_*" for fn in spec.get("functions", [])])
    unchecked = [k for k, s in statuses.items() if s == "not checked" and not _excluded(k, spec)]
    if resume and unchecked:
        # A function whose source changed since the last run has new mutants, not named above.
        mutmut(scratch, "run", "--max-children", str(max_children), *unchecked)
        statuses = statuses_of(scratch, [f"*{fn}__mutmut_*" for fn in spec.get("functions", [])])
    # `exclude`: functions mutmut cannot test by construction (they run at import time, before a
    # forked worker activates its mutant); modules.toml says why for each.
    excluded = {k for k in statuses if _excluded(k, spec)}
    for key in excluded:
        del statuses[key]
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    killed = sum(n for s, n in counts.items() if s in KILLED)
    scored = sum(n for s, n in counts.items() if s != "skipped")
    survivors = {k: mutmut(scratch, "show", k) for k, s in sorted(statuses.items()) if s not in KILLED | {"skipped"}}
    result = {
        "module": name, "paths": spec["paths"], "tests": spec["tests"], "mutants": len(statuses),
        "counts": counts, "killed": killed, "score": round(killed / scored, 4) if scored else None,
        "excluded": len(excluded), "minutes": round((time.monotonic() - t0) / 60, 1), "resumed": resume,
        "survivors": survivors,
    }
    (SCRATCH / "results").mkdir(parents=True, exist_ok=True)
    (SCRATCH / "results" / f"{name}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    shutil.rmtree(scratch / "mutants" / "sample_logs", ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="module names from mutation/modules.toml (default: all)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument("--max-children", type=int, default=int(os.environ.get("MUTATE_JOBS", "2")))
    parser.add_argument("--resume", action="store_true",
                        help="keep the module's last run and test its surviving mutants again (after adding tests)")
    args = parser.parse_args()
    modules = load_modules()
    if args.list:
        for name, spec in modules.items():
            print(f"{name}: {', '.join(spec['paths'])}\n    tests: {' '.join(spec['tests'])}")
        return
    unknown = [m for m in args.modules if m not in modules]
    if unknown:
        raise SystemExit(f"unknown module(s) {unknown}; known: {', '.join(modules)}")
    results = [run_module(m, modules[m], args.max_children, args.resume) for m in (args.modules or modules)]
    print(f"\n{'module':<14} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'no tests':>8} "
          f"{'score':>6} {'min':>5}")
    for r in results:
        c = r["counts"]
        score = f"{100 * r['score']:.1f}%" if r["score"] is not None else "-"
        print(f"{r['module']:<14} {r['mutants']:>7} {r['killed']:>6} {c.get('timeout', 0):>7} "
              f"{c.get('survived', 0):>8} {c.get('no tests', 0):>8} {score:>6} {r['minutes']:>5}")
    print(f"\nSurvivors and diffs: {SCRATCH / 'results'}/<module>.json")


if __name__ == "__main__":
    main()
