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
