"""pipeline.progress: bars only when asked (or on a terminal), with counts and an ETA."""

from __future__ import annotations

import pytest

from pipeline import progress
from pipeline.progress import configure, current_phase, enabled_for, is_enabled, phase, stage_progress


def test_disabled_bar_prints_nothing_but_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with stage_progress("quiet", total=3, unit="task", enabled=False) as bar:
        bar.advance()
        bar.advance(2)
        bar.note("ignored")
    assert bar.count == 3
    assert capsys.readouterr().err == ""


def test_enabled_bar_shows_counts_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    with stage_progress("dataset", total=4, unit="step", enabled=True, mininterval=0) as bar:
        bar.advance()
        bar.note("dedup")
        bar.advance(3)
    err = capsys.readouterr().err
    assert "dataset" in err and "4/4" in err and "step" in err and "dedup" in err
    assert "<" in err  # tqdm's elapsed<remaining (the ETA)


def test_default_follows_configure_env_and_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "_enabled", None)
    monkeypatch.setenv("LOGAUDIT_PROGRESS", "1")
    assert is_enabled() is True
    monkeypatch.setenv("LOGAUDIT_PROGRESS", "0")
    assert is_enabled() is False
    configure(True)
    assert is_enabled() is True and is_enabled(False) is False
    with enabled_for(False):
        assert is_enabled() is False
    assert is_enabled() is True
    configure(None)
    monkeypatch.delenv("LOGAUDIT_PROGRESS")
    assert is_enabled() is False  # pytest's stderr is not a terminal


def test_phases_nest_and_unwind_on_errors() -> None:
    assert current_phase() == ""
    with phase("audit.cache"):
        assert current_phase() == "audit.cache"
        with pytest.raises(RuntimeError), phase("prepare"):
            assert current_phase() == "audit.cache/prepare"
            raise RuntimeError("task failed")
        assert current_phase() == "audit.cache"
        with phase("simulate.ideal"):
            assert current_phase() == "audit.cache/simulate.ideal"
    assert current_phase() == ""
