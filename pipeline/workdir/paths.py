"""Where every handoff file of a working directory lives: one place, so no stage spells another's paths.

    WORKDIR/requests/date=YYYY-MM-DD/*.parquet   ingest -> everyone     (schemas/logs.py)
    WORKDIR/rejects/*.jsonl                      ingest -> report       (schemas/envelope.md)
    WORKDIR/ingest_manifest.json                 ingest -> report
    WORKDIR/audit/<table>.parquet                audit  -> dataset, report
    WORKDIR/audit/summary.json                   audit  -> report
    WORKDIR/dataset/{train,eval}.jsonl, lineage.parquet, manifest.json, dataset_card.md
                                                 dataset -> report, the user
    WORKDIR/report/report.{json,md,html}, weekly.{json,md}
                                                 report -> the user
    WORKDIR/eval/<candidate>/{scores.parquet, summary.json, eval.md, routing.json, litellm_router.yaml},
    WORKDIR/eval/prompts.jsonl                   eval   -> report, the user (schemas/eval.py)

`requests`, `rejects` and `ingest_manifest.json` are convenience links into the current store
version; these properties resolve the store's pointer file instead (`pipeline/workdir/store.py`),
so a WORKDIR copied without its links reads the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.workdir.store import store_path
from pipeline.workdir.versions import stage_dir, stage_root


@dataclass(frozen=True)
class WorkdirPaths:
    root: Path

    # --- ingest -> everyone --------------------------------------------------------------------
    # Resolved through the store's pointer file, not the convenience links (which a copy may lose).
    @property
    def requests(self) -> Path:
        return store_path(self.root, "requests")

    @property
    def rejects(self) -> Path:
        return store_path(self.root, "rejects")

    @property
    def ingest_manifest(self) -> Path:
        return store_path(self.root, "ingest_manifest.json")

    # --- audit -> dataset, report --------------------------------------------------------------
    # Stage outputs resolve their version pointer (`versions.stage_dir`), like the store.
    @property
    def audit_dir(self) -> Path:
        return stage_dir(self.root, "audit")

    @property
    def audit_summary(self) -> Path:
        return self.audit_dir / "summary.json"

    def audit_table(self, name: str) -> Path:
        """`WORKDIR/audit/<name>.parquet` (e.g. request_costs, request_labels, task_types, cache_by_day)."""
        return self.audit_dir / f"{name}.parquet"

    # --- dataset -> report ---------------------------------------------------------------------
    @property
    def dataset_dir(self) -> Path:
        return stage_dir(self.root, "dataset")

    @property
    def dataset_manifest(self) -> Path:
        return self.dataset_dir / "manifest.json"

    @property
    def lineage(self) -> Path:
        return self.dataset_dir / "lineage.parquet"

    # --- report -> the user --------------------------------------------------------------------
    @property
    def report_dir(self) -> Path:
        return stage_dir(self.root, "report")

    # --- eval -> report, the user --------------------------------------------------------------
    # One versioned unit holding every candidate (and prompts.jsonl); an eval rebuilds its
    # candidate's folder and carries the others (`pipeline/evaluate/stage.py`).
    @property
    def eval_dir(self) -> Path:
        return stage_dir(self.root, "eval")

    def eval_candidate(self, candidate: str) -> Path:
        """`WORKDIR/eval/<candidate>/`: one evaluated candidate's outputs."""
        return self.eval_dir / candidate

    def eval_answers(self, candidate: str) -> Path:
        """A candidate's endpoint answer cache: beside the versions, not in one, so a killed run
        (whose unfinished version is removed) resumes without asking again."""
        return stage_root(self.root, "eval") / "answers" / f"{candidate}.jsonl"


    # --- the user-facing folders (links to the current versions; printed, never read) ----------
    def view(self, stage: str) -> Path:
        """`WORKDIR/<stage>`: what a stage's summary points the user at (`versions.refresh_view`)."""
        return self.root / stage


def workdir_paths(workdir: Path | str) -> WorkdirPaths:
    return WorkdirPaths(Path(workdir))


def file_sha256(path: Path) -> str:
    """A handoff file's digest: a later stage records it and compares it to notice a rebuilt input."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def eval_split_identity(workdir: Path | str) -> str | None:
    """A digest of the dataset's eval split as written: lineage.parquet's bytes and the eval files'
    sha256 from manifest.json. `logaudit eval` records it; the report compares it with the current
    one to tell that a candidate was scored before the dataset was rebuilt. None without a dataset."""
    import hashlib
    import json

    paths = workdir_paths(workdir)
    if not paths.lineage.is_file():
        return None
    try:
        files = json.loads(paths.dataset_manifest.read_text(encoding="utf-8")).get("files") or {}
    except (OSError, ValueError):
        files = {}
    evals = sorted((name, str(f.get("sha256"))) for name, f in files.items() if isinstance(f, dict) and f.get("split") == "eval")
    return hashlib.sha256((file_sha256(paths.lineage) + json.dumps(evals)).encode("utf-8")).hexdigest()
