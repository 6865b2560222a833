"""Print the surviving mutants of `make mutate` runs, one line each: `python -m mutation.survivors [module ...]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / ".mutate" / "results"


def changed_lines(diff: str) -> str:
    lines = [line for line in diff.splitlines()
             if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return " | ".join(" ".join(line.split()) for line in lines)


def main() -> None:
    names = sys.argv[1:] or sorted(p.stem for p in RESULTS.glob("*.json"))
    for name in names:
        result = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        print(f"# {name}: {result['killed']}/{result['mutants']} killed, score {result['score']}")
        for key, diff in result["survivors"].items():
            print(f"{key.rsplit('.', 1)[-1]}: {changed_lines(diff)[:240]}")


if __name__ == "__main__":
    main()
