"""The app's pages as a reader sees them: served by Streamlit, opened in a real Chromium, each
screenshotted (test-artifacts/app_<page>.png) and checked for errors and empty charts.

The Live page has its own browser test (tests/test_live_browser.py, camera and WebRTC); here every
other page is read on a fresh workspace, which shows the shipped example evaluation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_live_browser import CHROMIUM, CHROMIUM_ARGS, _free_port, _start_server, _stop_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs /usr/bin/chromium"),
]

#: (URL path, a heading the page shows, whether it draws charts)
PAGES = [
    ("", "LFR Workbench", False),
    ("Watchlist", "Watchlist", False),
    ("Evaluate", "Evaluate", False),
    ("Threshold_explorer", "Threshold explorer", True),
    ("Demographic_report", "Demographic report", True),
    ("Export", "Export a deployment configuration", False),
]


def _settled(page, timeout_s: float = 120) -> None:
    """Wait until the script run has finished (no "Running" status for a moment)."""
    quiet = 0
    for _ in range(int(timeout_s * 2)):
        page.wait_for_timeout(500)
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        quiet = 0 if running else quiet + 1
        if quiet >= 4:
            return
    raise AssertionError("the page kept running")


def test_app_pages_read_in_a_real_browser(tmp_path: Path, artifacts_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = _start_server(tmp_path, port, {})
    problems: list[str] = []
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
            )
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            for path, heading, charts in PAGES:
                page.goto(f"http://127.0.0.1:{port}/{path}")
                page.get_by_role("heading", name=heading).first.wait_for()
                _settled(page)
                name = path or "Home"
                # Streamlit scrolls inside its main block: make the window as tall as the page
                # so that one screenshot holds all of it
                height = page.evaluate(
                    "document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
                )
                page.set_viewport_size({"width": 1400, "height": min(int(height) + 50, 16_000)})
                page.wait_for_timeout(1500)
                page.screenshot(path=str(artifacts_dir / f"app_{name}.png"))
                page.set_viewport_size({"width": 1400, "height": 1000})
                errors = page.locator('[data-testid="stException"]').all_inner_texts()
                problems += [f"{name}: {text[:300]}" for text in errors]
                if charts:
                    drawn = page.locator(".js-plotly-plot").count()
                    if drawn == 0:
                        problems.append(f"{name}: no chart drawn")
                    # a chart with no trace is an empty chart: the page should say why instead
                    empty = page.evaluate(
                        "[...document.querySelectorAll('.js-plotly-plot')]"
                        ".filter(d => !d.data || d.data.length === 0).length"
                    )
                    if empty:
                        problems.append(f"{name}: {empty} empty chart(s)")
            context.close()
    finally:
        _stop_server(server)
    assert not problems, "\n".join(problems)
