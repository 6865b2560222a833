from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = ROOT / "sample_logs"
REAL_LOGS = ROOT.parent / "shared" / "real_logs"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tool must work air-gapped: any socket connection in a test is a failure."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network access attempted during a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def real_logs() -> Path:
    if not REAL_LOGS.is_dir():
        pytest.skip("../shared/real_logs is not present")
    return REAL_LOGS


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("LOGAUDIT_CACHE_DIR", str(ROOT / ".tiktoken-cache"))


@pytest.fixture(scope="session")
def sample_logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed sample (with truth.json); generated into a tmp dir when only generate.py is present."""
    if (SAMPLE_LOGS / "truth.json").is_file():
        return SAMPLE_LOGS
    if not (SAMPLE_LOGS / "generate.py").is_file():
        pytest.skip("sample_logs/ is not present")
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("sample_logs")
    subprocess.run([sys.executable, str(SAMPLE_LOGS / "generate.py"), "--out", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def sample_truth(sample_logs_dir: Path) -> dict:
    import json

    return json.loads((sample_logs_dir / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def sample_run(sample_logs_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The whole pipeline (ingest -> audit -> dataset -> report) over the sample, once per session.
    Read-only for tests: copy it before changing anything."""
    from pipeline.run import run_all

    return run_all([sample_logs_dir], tmp_path_factory.mktemp("sample_run"), progress=False)


@pytest.fixture(scope="session")
def sample_workdir(sample_logs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample ingested once per session (store only, no audit). Read-only for tests: the store
    is shared; write stage outputs under your own tmp dir (e.g. `audit.tasks.run(wd, tmp, {})`)."""
    from pipeline.ingest import ingest

    workdir = tmp_path_factory.mktemp("sample_workdir")
    ingest([str(sample_logs_dir)], workdir, progress=False)
    return workdir


@pytest.fixture(scope="session")
def sample_truth_requests(sample_logs_dir: Path) -> dict[str, dict]:
    """Per-request truth of the sample (truth_requests.jsonl.gz), keyed by request_id."""
    import gzip
    import json

    with gzip.open(sample_logs_dir / "truth_requests.jsonl.gz", "rt", encoding="utf-8") as fh:
        return {r["request_id"]: r for r in map(json.loads, fh)}


@pytest.fixture(scope="session")
def sample_cost_cache_traffic(
    sample_workdir: Path, sample_truth_requests: dict[str, dict], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    """audit.cost -> audit.cache -> audit.traffic over the sample store, once per session, into a
    tmp dir. The task labels they LEFT JOIN are the TRUTH task types (request_labels.parquet written
    from truth_requests), so these figures do not depend on how well audit.tasks clusters. Returns
    (out_dir, {section name: summary section}). Read-only for tests."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from audit import cache, cost, traffic

    out = tmp_path_factory.mktemp("sample_cost_cache_traffic")
    ids = sorted(sample_truth_requests)
    pq.write_table(pa.table({"request_id": ids, "task_type": [sample_truth_requests[i]["task_type"] for i in ids]}),
                   out / "request_labels.parquet")
    sections = {}
    for name, module in (("cost", cost), ("cache", cache), ("traffic", traffic)):
        sections[name] = module.run(sample_workdir, out, {})
    return out, sections


@pytest.fixture(scope="session")
def agents_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Planted agent traffic (tests/planted_agents.py) ingested once: (workdir, truth per request).
    Audits write under their own tmp dirs; test_dataset_agent_near_dups builds the dataset in it."""
    from planted_agents import write_agents

    from pipeline.ingest import ingest

    src = tmp_path_factory.mktemp("agents_src")
    truth = write_agents(src)
    wd = tmp_path_factory.mktemp("agents_wd")
    ingest([src], wd, progress=False)
    return wd, truth
