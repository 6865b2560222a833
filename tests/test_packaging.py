"""A non-editable install runs the whole pipeline: the wheel carries every `.sql` file and template.

The wheel is built offline from this checkout (`--no-build-isolation`: the test venv's setuptools,
no download) and installed `--no-deps` into a fresh venv that sees the test venv's installed
dependencies through a path entry, but not this checkout or its editable install; then that
venv's `logaudit run sample_logs` must produce the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    # A copy of the tracked tree keeps build/ and egg-info out of the checkout.
    # Tracked files and new ones not yet added (ignored files such as .venv/ stay out).
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout
    src = build / "src"
    for rel in filter(None, files.decode().split("\0")):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes((ROOT / rel).read_bytes())
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                  "-w", str(out), str(src)], cwd=build)
    # The `sql/` folders are namespace packages to setuptools' finder: listed, not "absent from the
    # `packages` configuration" (a warning box per folder that every `make audit` install printed).
    assert "absent from the `packages` configuration" not in built.stdout + built.stderr
    (whl,) = out.glob("llm_log_audit-*.whl")
    return whl


def test_wheel_carries_every_sql_file_and_template(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "pipeline", "audit",
                              "schemas"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    data = [p for p in tracked if p.endswith((".sql", ".html", ".md", ".toml", ".json", ".py"))]
    assert len([p for p in data if p.endswith(".sql")]) >= 80
    assert [p for p in data if p not in names] == []


def test_installed_wheel_runs_the_sample(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path)
                .stdout.strip())
    # The dependencies: the test venv's site-packages as a plain path entry. A path entry's own .pth
    # files are not processed, so the editable install of this checkout stays invisible.
    (site / "test_venv_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
         cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = _run([str(py), "-c", "import audit, pipeline; print(pipeline.__file__); print(audit.__file__)"],
                 cwd=tmp_path, env=env).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where

    out = tmp_path / "out"
    _run([str(venv / "bin" / "logaudit"), "run", str(ROOT / "sample_logs"), "--out", str(out)], cwd=tmp_path, env=env)
    report = json.loads((out / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"]
    assert (out / "dataset" / "train.jsonl").stat().st_size > 0
    assert (out / "audit" / "summary.json").is_file()
