"""Display objects (scikit-learn style): every figure draws a plain computed object a notebook
made itself, without an aggregate, and computes nothing while drawing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lfr_eval.explain import group_comparison
from lfr_eval.metrics import (
    SIMULTANEOUS_RATIO,
    ClusterSummary,
    IdentificationFrame,
    det_curve,
    fnir_estimate,
    fpir_estimate,
    identification_det_curve,
    ratio_to_lowest,
)
from lfr_eval.metrics._intervals import rate_curve
from lfr_eval.protocols import FillerCounts, WatchlistScaling, scale_fpir
from lfr_eval.report import (
    AggregateResult,
    CmcDisplay,
    DetCurveDisplay,
    GroupRatioDisplay,
    RateCurveDisplay,
    ScoreHistogramDisplay,
    WatchlistScalingDisplay,
    cmc_table,
)
from lfr_eval.results import EvaluationResult
from tests.test_results import synthetic_result

THRESHOLDS = np.round(np.linspace(0.5, 0.95, 19), 4)


@pytest.fixture(scope="module")
def result() -> EvaluationResult:
    return synthetic_result()


@pytest.fixture(scope="module")
def frame(result: EvaluationResult) -> IdentificationFrame:
    return result.identification_frame(THRESHOLDS, ["ethnicity"], n_boot=50)


def _scaling() -> WatchlistScaling:
    """A notebook's own scaling: 60 strangers (3 images each) against 40 fillers."""
    rng = np.random.default_rng(1)
    scores = rng.normal(0.4, 0.1, (60, 40))
    subjects = np.repeat([f"s{i}" for i in range(20)], 3)
    counts = FillerCounts.from_scores(
        scores, [0.5, 0.6, 0.7], subjects, pd.DataFrame(index=range(60)),
        pd.DataFrame(index=range(40)),
    )  # fmt: skip
    return scale_fpir(counts, [10, 40, 1000], [0.5, 0.6, 0.7], n_boot=50)


# (name, how a notebook computes the object, how it is drawn)
CASES: list[tuple[str, Callable[..., object], Callable[[object], go.Figure]]] = [
    ("fpir RateCurve", lambda r, f: fpir_estimate(r.searches, THRESHOLDS),
     lambda c: c.plot()),
    ("fnir RateCurve", lambda r, f: fnir_estimate(r.searches, THRESHOLDS),
     lambda c: RateCurveDisplay.from_curve(c).figure_),
    ("verification DetCurve",
     lambda r, f: det_curve(r.searches.mate_scores, r.searches.non_mated_best),
     lambda c: c.plot()),
    ("IdentificationDet", lambda r, f: identification_det_curve(r.searches, THRESHOLDS),
     lambda c: DetCurveDisplay.from_curve(c).figure_),
    ("FPIR, FNIR pair", lambda r, f: [fpir_estimate(r.searches, THRESHOLDS),
                                      fnir_estimate(r.searches, THRESHOLDS)],
     lambda c: DetCurveDisplay.from_curve(c).figure_),
    ("IdentificationFrame rates", lambda r, f: f, lambda c: c.plot("rates", "fpir")),
    ("IdentificationFrame det", lambda r, f: f, lambda c: c.plot("det")),
    ("IdentificationFrame ratio", lambda r, f: f, lambda c: c.plot("ratio", "fpir")),
    ("rank table", lambda r, f: cmc_table(r.searches, ["sex"]),
     lambda c: CmcDisplay.from_table(c, "sex").figure_),
    ("WatchlistScaling", lambda r, f: _scaling(), lambda c: c.plot(0.6, measured_size=40)),
    ("scaling table", lambda r, f: r.scaling,
     lambda c: WatchlistScalingDisplay.from_scaling(c, 0.7).figure_),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_figure_draws_a_plain_computed_object(
    case: tuple, result: EvaluationResult, frame: IdentificationFrame
) -> None:
    _, compute, draw = case
    fig = draw(compute(result, frame))
    assert isinstance(fig, go.Figure) and len(fig.data) > 0
    title = fig.layout.title.text
    assert title and ("all searches" in title or " by " in title or "verification" in title
                      or "CMC" in title)  # fmt: skip
    x_range = fig.layout.xaxis.range
    if fig.layout.xaxis.title.text and "threshold" in fig.layout.xaxis.title.text:
        assert -1.0 <= x_range[0] < x_range[1] <= 1.0  # thresholds stay in the cosine domain


def test_displays_keep_their_figure_and_say_why_empty(result: EvaluationResult) -> None:
    agg = AggregateResult.from_result(result, n_boot=50)
    display = ScoreHistogramDisplay.from_table(agg.histograms, "sex")
    assert display.figure_ is not None and display.empty_reason is None
    nothing = rate_curve("fnir", THRESHOLDS, np.zeros(len(THRESHOLDS)), 0)  # no mated searches
    empty = RateCurveDisplay(nothing, "fnir")
    assert empty.empty_reason == "no mated searches"
    assert empty.figure_ is not None and not empty.figure_.data

def test_aggregate_ratio_bands_are_the_demographic_pages_numbers(
    result: EvaluationResult,
) -> None:
    """The ratio chart drawn from an aggregate carries the simultaneous clustered intervals the
    demographic page's table shows (one function, ratio_to_lowest, for both)."""
    agg = AggregateResult.from_result(result, n_boot=50)
    fig = GroupRatioDisplay.from_frame(agg, "fpir", "ethnicity").figure_
    assert "simultaneous, clustered by person" in fig.layout.title.text
    line = next(t for t in fig.data if t.name == "ethnicity = b")
    x = np.asarray(line.x, dtype=float)
    t = float(x[len(x) // 2])
    comparison = group_comparison(agg, t, "ethnicity", "fpir")
    row = comparison.table.set_index("group").loc["b"]
    at = int(np.flatnonzero(np.isclose(x, t))[0])
    np.testing.assert_allclose(line.y[at], row["ratio_to_lowest"], rtol=1e-9)
    np.testing.assert_allclose(line.customdata[at], [row["ratio_ci_low"], row["ratio_ci_high"]],
                               rtol=1e-9)  # fmt: skip
    assert row["ratio_ci_low"] <= row["ratio_to_lowest"] <= row["ratio_ci_high"]


def test_ratio_to_lowest_hand_case() -> None:
    def group(errors: list[float], trials: float, variance: list[float]) -> ClusterSummary:
        return ClusterSummary(np.array(errors), trials, int(trials), np.array(variance),
                              np.full(len(errors), trials - 1), trials)  # fmt: skip

    # independent searches (one per person): variance p (1 - p) / n
    a = group([10.0, 0.0], 1000.0, [0.01 * 0.99 / 1000, 0.0])
    b = group([30.0, 3.0], 1000.0, [0.03 * 0.97 / 1000, 0.003 * 0.997 / 1000])
    out = ratio_to_lowest({"a": a, "b": b}, 0.95)
    assert out.method == SIMULTANEOUS_RATIO and out.group_confidence == pytest.approx(0.975)
    assert list(out.lowest) == ["a", "a"]
    np.testing.assert_allclose(out.ratio[:, 0], [1.0, 3.0])
    assert np.isnan(out.ratio[1, 1])  # the lowest rate is 0: no ratio
    assert out.ratio_low[1, 0] < 3.0 < out.ratio_high[1, 0]
    assert out.ratio_high[1, 1] == np.inf  # lowest group's lower bound is 0
    # simultaneous bounds are wider than each group's own 95% interval
    from lfr_eval.metrics import korn_graubard_from_summary

    own = korn_graubard_from_summary(b, 0.95)
    assert out.rate_low[1, 0] < own.ci_low[0] and out.rate_high[1, 0] > own.ci_high[0]
