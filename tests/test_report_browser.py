"""The report as a reader sees it: opened in a real Chromium, screenshotted and printed to PDF
(test-artifacts/report_first_page.png, report.pdf); small enough to send."""

from __future__ import annotations

from pathlib import Path

import pytest

from lfr_eval.report import PLOTLY_FILE, AggregateResult, write_report

CHROMIUM = Path("/usr/bin/chromium")
EXAMPLE = Path(__file__).parents[1] / "datasets" / "examples" / "lfw_dlib_example"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs /usr/bin/chromium"),
]


def test_lfw_sized_report_reads_and_prints(tmp_path: Path, artifacts_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    agg = AggregateResult.load(EXAMPLE)  # 5,000 LFW images, dlib: an LFW-sized evaluation
    page_path = write_report(agg, tmp_path)
    assert page_path.stat().st_size < 2_000_000
    assert (tmp_path / PLOTLY_FILE).is_file()  # plotly.js once, beside the page, no CDN
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.set_default_timeout(180_000)  # a loaded 2-core CI box takes its time
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_path.as_uri())
        page.wait_for_selector(".plotly-graph-div .main-svg")
        # the first page: verdicts, headline table, methods
        headings = page.locator("section.first-page h2").all_inner_texts()
        assert [h.split(":")[0] for h in headings] == ["Verdicts", "Headline", "Methods"]
        assert agg.result_sha256 in page.locator("section.first-page").inner_text()
        # the headline table fits the page width
        table_width = page.locator("section.first-page table").first.bounding_box()["width"]
        assert table_width <= 1200
        # every chart drew, none empty; empty ones are one line saying why
        drawn = page.locator(".plotly-graph-div").count()
        assert drawn >= 10 and page.locator(".plotly-graph-div .main-svg").count() >= drawn
        page.screenshot(path=str(artifacts_dir / "report_first_page.png"))
        page.pdf(path=str(artifacts_dir / "report.pdf"), format="A4", print_background=True)
        browser.close()
    assert not errors, errors
    assert (artifacts_dir / "report.pdf").stat().st_size > 50_000
