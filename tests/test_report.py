"""Aggregates, figures and the self-contained HTML report."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from lfr_eval.metrics._intervals import rate_curve
from lfr_eval.report import (
    RATE_COLUMNS,
    AggregateResult,
    build_html_report,
    cmc_figure,
    det_figure,
    group_ratio_figure,
    rate_vs_threshold_figure,
    score_histogram_figure,
    watchlist_scaling_figure,
    write_report,
)
from lfr_eval.report._figures import empty_reason
from lfr_eval.results import ResultError
from tests.test_results import synthetic_result


@pytest.fixture(scope="module")
def aggregate() -> AggregateResult:
    return AggregateResult.from_result(synthetic_result(), n_boot=200)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict] = []
        self.links: list[dict] = []
        self.tags: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag in ("link", "img", "iframe"):
            self.links.append(dict(attrs))


def test_aggregate_matches_the_metrics(aggregate: AggregateResult) -> None:
    result = synthetic_result()
    assert list(aggregate.rates.columns) == list(RATE_COLUMNS)
    assert aggregate.attributes == ["sex", "ethnicity"]
    curve = aggregate.curve("fpir")
    from lfr_eval.metrics import fpir

    np.testing.assert_allclose(curve["rate"], fpir(result.searches, curve["threshold"]))
    b = aggregate.curve("fpir", "ethnicity", "b").set_index("threshold")["rate"]
    a = aggregate.curve("fpir", "ethnicity", "a").set_index("threshold")["rate"]
    assert b.loc[0.7] > a.loc[0.7]  # group b was built to draw more false matches
    ok = aggregate.rates[~aggregate.rates["insufficient_data"].astype(bool)]
    assert ((ok["ci_low"] <= ok["rate"] + 1e-12) & (ok["rate"] <= ok["ci_high"] + 1e-12)).all()


def test_aggregate_holds_no_per_person_data(aggregate: AggregateResult, tmp_path: Path) -> None:
    aggregate.save(tmp_path)
    text = " ".join(p.read_text() for p in tmp_path.iterdir())
    result = synthetic_result()
    for subject in list(result.searches.mated_subjects[:20]) + list(
        result.searches.non_mated_subjects[:20]
    ):
        assert f"{subject}," not in text and f'"{subject}"' not in text
    assert "m/0.jpg" not in text


def test_aggregate_round_trip_and_tamper(aggregate: AggregateResult, tmp_path: Path) -> None:
    aggregate.save(tmp_path)
    loaded = AggregateResult.load(tmp_path)
    pd.testing.assert_frame_equal(
        loaded.rates.reset_index(drop=True),
        aggregate.rates.reset_index(drop=True),
        check_dtype=False,
        atol=1e-7,
    )
    assert loaded.watchlist_size == 100
    assert loaded.provenance == aggregate.provenance
    assert loaded.withheld == aggregate.withheld
    pd.testing.assert_frame_equal(
        loaded.ranks.reset_index(drop=True), aggregate.ranks.reset_index(drop=True),
        check_dtype=False, atol=1e-7,
    )  # fmt: skip
    rates = tmp_path / "rates.csv"
    rates.write_text(rates.read_text().replace("fpir", "fnir", 1))
    with pytest.raises(ResultError, match="changed after it was written"):
        AggregateResult.load(tmp_path)
    with pytest.raises(ResultError, match="holds no aggregate"):
        AggregateResult.load(tmp_path / "nothing")


def test_small_groups_are_withheld_and_listed() -> None:
    agg = AggregateResult.from_result(
        synthetic_result(n_mated=30, n_non_mated=30), n_boot=50, min_subjects=8
    )
    withheld = {(w.attribute, w.group) for w in agg.withheld}
    assert ("ethnicity", "b") in withheld  # 4 subjects a side
    assert "b" not in set(agg.rates[agg.rates["attribute"] == "ethnicity"]["group"])
    assert "b" not in set(agg.histograms[agg.histograms["attribute"] == "ethnicity"]["group"])


def test_figures_draw_computed_objects(aggregate: AggregateResult) -> None:
    figures = [
        det_figure(aggregate, "sex"),
        rate_vs_threshold_figure(aggregate, "fpir", "ethnicity"),
        rate_vs_threshold_figure(aggregate, "fnir"),
        group_ratio_figure(aggregate, "fpir", "ethnicity"),
        watchlist_scaling_figure(aggregate, 0.7),
        score_histogram_figure(aggregate, "sex"),
        cmc_figure(aggregate, "sex"),
    ]
    assert all(isinstance(f, go.Figure) and len(f.data) > 0 for f in figures)
    # every chart names its population and N
    for f in figures[:4]:
        title = f.layout.title.text
        assert "watchlist N = 100" in title and ("by " in title or "all searches" in title)
    # thresholds stay in the cosine domain, watchlist sizes up to the largest asked
    x_range = figures[1].layout.xaxis.range
    assert -1.0 <= x_range[0] < x_range[1] <= 1.0
    n_range = figures[4].layout.xaxis.range
    assert 10 ** n_range[1] <= 1000 * 1.3
    # the ratio chart carries intervals (bands)
    assert any(t.fill == "toself" for t in figures[3].data)

    # a notebook's own computed objects plot themselves, without any aggregate
    result = synthetic_result()
    frame = result.identification_frame(np.linspace(0.5, 0.95, 19), ["ethnicity"], n_boot=50,
                                        ci_method="subject-bootstrap")  # fmt: skip
    assert len(rate_vs_threshold_figure(frame, "fpir", "ethnicity").data) > 0
    ratio = group_ratio_figure(frame, "fpir", "ethnicity")
    assert "simultaneous, clustered by person" in ratio.layout.title.text and len(ratio.data) > 0
    assert len(det_figure(frame).data) == 1
    curve = rate_curve("fpir", [0.6, 0.7, 0.8], np.array([30, 5, 0]), 900)
    drawn = rate_vs_threshold_figure(curve)
    assert len(drawn.data) == 2 and "900 searches" in drawn.data[1].name
    from lfr_eval.metrics import det_curve

    verification = det_curve(np.array([0.9, 0.8, 0.85, 0.4]), np.array([0.1, 0.5, 0.6, 0.3]))
    assert len(det_figure(verification).data) == 1
    assert len(watchlist_scaling_figure(result.scaling, 0.7, measured_size=100).data) > 0
    assert len(cmc_figure(aggregate.ranks).data) == 1

    # nothing to draw: no traces, and the reason
    empty = rate_vs_threshold_figure(replace_rates(aggregate, metric="fnir"), "fnir")
    assert not empty.data and empty_reason(empty) == "no mated searches"

    # a full result is refused: aggregating (intervals, bootstrap) is the caller's choice
    with pytest.raises(TypeError, match="AggregateResult.from_result"):
        det_figure(result)
    fpir_by_group = rate_vs_threshold_figure(aggregate, "fpir", "ethnicity")
    names = [t.name for t in fpir_by_group.data if t.name]
    assert any("ethnicity = a" in n for n in names) and any("ethnicity = b" in n for n in names)
    assert fpir_by_group.layout.yaxis.type == "log"


def replace_rates(agg: AggregateResult, metric: str) -> AggregateResult:
    """The aggregate without any row of ``metric``."""
    from dataclasses import replace

    return replace(agg, rates=agg.rates[agg.rates["metric"] != metric])


def test_html_report_is_self_contained_and_parseable(
    aggregate: AggregateResult, tmp_path: Path
) -> None:
    page = build_html_report(aggregate, thresholds=[0.7, 0.75], claim_summaries=["claim: ok"])
    parser = _Collector()
    parser.feed(page)
    parser.close()
    assert parser.tags[0] == "html"
    assert all("src" not in s for s in parser.scripts)  # nothing fetched from a CDN
    assert not parser.links
    assert page.count(get_plotlyjs()[:200]) == 1  # plotly.js inlined exactly once
    assert page.count('class="plotly-graph-div"') >= 10
    assert "FPIR" in page and "claim: ok" in page and "0.75" in page
    ours = page.replace(get_plotlyjs(), "")
    assert "https://cdn" not in ours and "src=" not in ours  # no remote resources
    path = write_report(aggregate, tmp_path, thresholds=[0.7])
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary["attribute"]) == {"all", "sex", "ethnicity"}
    assert {"rates.csv", "scaling.csv", "acquisition.csv", "histograms.csv"} <= {
        p.name for p in tmp_path.iterdir()
    }


def test_report_refuses_interval_options_an_aggregate_cannot_take(
    aggregate: AggregateResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An aggregate keeps the intervals it was made with: asking `lfr-eval report` for
    another method or confidence on one is a usage error naming why, never silently the
    aggregate's own intervals under a report the user thinks has the others."""
    from tests.cli_support import run

    folder = aggregate.save(tmp_path / "agg")
    assert aggregate.intervals.method == "design-effect-jeffreys"
    code, _, err = run(capsys, "report", folder, "--ci-method", "wilson", "--out", tmp_path / "w")
    assert code == 2 and "--ci-method wilson cannot apply to an aggregate folder" in err
    assert "design-effect-jeffreys" in err and not (tmp_path / "w").exists()
    code, _, err = run(capsys, "report", folder, "--confidence", "0.9", "--out", tmp_path / "c")
    assert code == 2 and "--confidence 0.9" in err
    # the aggregate's own settings, given or left out, are fine (replicates mean nothing here)
    for extra in ([], ["--ci-method", "design-effect-jeffreys"], ["--n-boot", "50"]):
        code, out, err = run(capsys, "report", folder, *extra, "--out", tmp_path / "ok")
        assert code == 0, err
        assert "report:" in out
