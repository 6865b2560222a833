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

`requests`, `rejects` and `ingest_manifest.json` are convenience links into the current store
version; these properties resolve the store's pointer file instead (`pipeline/workdir/store.py`),
so a WORKDIR copied without its links reads the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.workdir.store import store_path
from pipeline.workdir.versions import stage_dir


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


    # --- the user-facing folders (links to the current versions; printed, never read) ----------
    def view(self, stage: str) -> Path:
        """`WORKDIR/<stage>`: what a stage's summary points the user at (`versions.refresh_view`)."""
        return self.root / stage


def workdir_paths(workdir: Path | str) -> WorkdirPaths:
    return WorkdirPaths(Path(workdir))
