"""report.html in a real browser: headless Chromium renders it with no console message at all (the
page carries no script, and its Content-Security-Policy turns any script or remote load into a
console violation), planted markup stays text, and a screenshot is kept as a test artifact."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report_rules import USD, XSS, busy_facts

from pipeline.report.decide import build_report
from pipeline.report.render import render_html

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("headless chromium is not installed and this user cannot `apt-get install -y chromium`")
    # Debian's own package, through the ordinary client: a registry install, not a browser download.
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=600)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, timeout=900)
    found = shutil.which("chromium")
    if done.returncode != 0 or not found:
        pytest.skip(f"`apt-get install -y chromium` failed: {done.stderr.decode(errors='replace')[-300:]}")
    return found


def run_chromium(binary: str, page: Path, tmp_path: Path, *extra: str) -> tuple[str, list[str]]:
    """Open `page`; return the DOM after load and every console line the browser logged."""
    cmd = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", *extra, page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, timeout=120, text=True, errors="replace")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def test_the_console_check_can_fail(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "control.html"
    page.write_text('<html><body><script>console.error("planted-error")</script></body></html>', encoding="utf-8")
    _, console = run_chromium(chromium, page, tmp_path, "--dump-dom")
    assert any("planted-error" in line for line in console)


def test_planted_markup_renders_inert(chromium: str, tmp_path: Path) -> None:
    from pipeline.report.facts import TaskFacts

    facts = busy_facts(
        task_types=[TaskFacts("task_01", XSS, 10, share=1.0, repetitiveness=0.9, clean_examples=5000)],
        prefix_breakers=[{"kind": "timestamp", "task_label": XSS, "example": XSS, "requests": 3}],
    )
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(facts, USD)), encoding="utf-8")
    dom, console = run_chromium(chromium, page, tmp_path, "--dump-dom")
    assert console == []
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text
    assert "Decision — " in dom  # the one decision banner (was "Verdict" before issue 12)


def test_sample_report_renders_without_console_errors(chromium: str, sample_run, tmp_path: Path) -> None:
    page = sample_run.report_paths["html"]
    dom, console = run_chromium(chromium, page, tmp_path, "--dump-dom")
    assert console == [], console
    assert "The five signs" in dom and "<svg" in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    run_chromium(chromium, page, tmp_path, "--hide-scrollbars", "--window-size=1280,5200", f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 50_000
