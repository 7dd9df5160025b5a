"""Threshold explanations for policy staff: expected false alerts, scaling, groups, evidence."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
from scipy import stats

from lfr_eval.deployment import evidence_from_results
from lfr_eval.errors import ConfigError
from lfr_eval.explain import (
    ExplainError,
    explain_by_group,
    explain_threshold,
    false_alert_rates_table,
    group_comparison,
    offered_watchlist_sizes,
)
from lfr_eval.faces import EngineId, ModelFile, RuntimeInfo
from lfr_eval.metrics import clopper_pearson
from lfr_eval.operational import FalseAlertRates
from lfr_eval.report import RATE_COLUMNS, AggregateResult
from lfr_eval.results import DatasetInfo, IntervalSettings, ProtocolInfo, Provenance

THRESHOLDS = (0.58, 0.6, 0.62)


def _row(metric, threshold, attribute, group, errors, searches, subjects, small=False):
    low, high = clopper_pearson(errors, searches)
    return {
        "metric": metric,
        "threshold": threshold,
        "attribute": attribute,
        "group": group,
        "n_searches": searches,
        "n_subjects": subjects,
        "errors": errors,
        "rate": errors / searches if searches else math.nan,
        "ci_low": low,
        "ci_high": high,
        "ci_method": "clopper-pearson",
        "small_group": small,
        "insufficient_data": searches == 0,
    }


@pytest.fixture(scope="module")
def agg() -> AggregateResult:
    """Counts shaped like the NPL figures: FPIR falls and FNIR rises with the threshold.

    At 0.60: 5 false positives in 30,000 non-mated searches (1 in 6,000) at N = 10,000 and 356 of
    4,000 mated searches missed (TPIR 91.1 %); by sex, women 4 of 15,000 and men 1 of 15,000;
    a tiny "other" group is flagged small.
    """
    rows = []
    for t, (fp_w, fp_m, miss) in zip(THRESHOLDS, [(20, 10, 200), (4, 1, 356), (1, 0, 600)]):
        rows += [
            _row("fpir", t, "all", "all", fp_w + fp_m, 30_000, 3_000),
            _row("fnir", t, "all", "all", miss, 4_000, 400),
            _row("fpir", t, "sex", "female", fp_w, 15_000, 1_500),
            _row("fpir", t, "sex", "male", fp_m, 15_000, 1_500),
            _row("fpir", t, "sex", "other", 0, 12, 3, small=True),
            _row("fnir", t, "sex", "female", miss // 2, 2_000, 200),
            _row("fnir", t, "sex", "male", miss - miss // 2, 2_000, 200),
            _row("fnir", t, "sex", "other", 0, 0, 0, small=True),
        ]
    rates = pd.DataFrame(rows, columns=list(RATE_COLUMNS))
    provenance = Provenance(
        engine=EngineId("dlib", (ModelFile("recognizer", "resnet.dat", "ef" * 32),), 128),
        engine_key="",
        runtime=RuntimeInfo("dlib", ("cpu",), False, False),
        scoring_runtime=None,
        dataset=DatasetInfo("npl-like", "cd" * 32, 40_000, 3_400, ("sex",)),
        protocol=ProtocolInfo("npl", {"seed": 0}, {}, 20),
        software={},
        result_sha256="ab" * 32,
        result_created="",
        intervals=IntervalSettings("clopper-pearson", 0.95, None),
    )
    empty = pd.DataFrame()
    return AggregateResult(
        provenance=provenance,
        rates=rates,
        histograms=empty,
        scaling=None,
        acquisition=empty,
        watchlist_size=10_000,
        n_mated=4_000,
        n_non_mated=30_000,
    )


def test_expected_false_alerts_at_the_measured_watchlist_size(agg) -> None:
    e = explain_threshold(agg, 0.6, watchlist_size=10_000, faces_scanned=30_000)
    assert not e.scaled
    assert e.fpir == pytest.approx(5 / 30_000)
    assert e.expected_false_alerts == pytest.approx(5.0)
    low, high = clopper_pearson(5, 30_000)
    assert (e.expected_ci_low, e.expected_ci_high) == pytest.approx((30_000 * low, 30_000 * high))
    assert e.tpir.rate == pytest.approx(1 - 356 / 4_000)
    assert e.sentence() == (
        "At 0.60 with a 10,000-person watchlist and 30,000 faces per deployment, expect 5.0 "
        f"false alerts (95% CI {30_000 * low:.1f}–{30_000 * high:.1f}) and catch 91% of listed "
        f"people who pass (95% CI {e.tpir.ci_low:.0%}–{e.tpir.ci_high:.0%})."
    )


def test_another_watchlist_size_needs_the_scaling_table(agg) -> None:
    """No figure from another formula: without a scaling table only the measured N is
    offered, and another N is a clear error naming what would give one."""
    assert offered_watchlist_sizes(agg) == (10_000,)
    with pytest.raises(ExplainError) as caught:
        explain_threshold(agg, 0.6, watchlist_size=1_000, faces_scanned=30_000)
    message = str(caught.value)
    assert "no scaled FPIR for a 1,000-person watchlist" in message
    assert "no watchlist-size scaling table" in message and "N = 10,000" in message
    assert "--watchlist-size 1000" in message


def test_listed_passers_by_give_the_three_false_alert_rates(agg) -> None:
    e = explain_threshold(
        agg, 0.6, watchlist_size=10_000, faces_scanned=30_000, listed_passers_by=6
    )
    assert e.expected_false_alerts == pytest.approx(29_994 * 5 / 30_000)
    assert e.expected_true_alerts == pytest.approx(6 * e.tpir.rate)
    table = false_alert_rates_table(e).set_index("rate")["value"]
    p = 6 / 30_000
    assert table["false alerts ÷ faces scanned"] == pytest.approx((1 - p) * e.fpir)
    assert table["FPIR at N = 10,000"] == pytest.approx(e.fpir)
    false, true = (1 - p) * e.fpir, p * e.tpir.rate
    assert table["false alerts ÷ all alerts"] == pytest.approx(false / (false + true))
    # with nobody listed walking past every alert is false; the share needs a TPIR only then
    none_listed = false_alert_rates_table(
        explain_threshold(agg, 0.6, watchlist_size=10_000, faces_scanned=30_000)
    ).set_index("rate")["value"]
    assert none_listed["false alerts ÷ all alerts"] == pytest.approx(1.0)


def test_rates_without_a_prevalence_show_no_per_face_figure(agg) -> None:
    # FalseAlertRates.from_fpir without a prevalence leaves the per-face rate None: the table
    # shows it as unknown (it raised TypeError in math.isfinite before)
    e = explain_threshold(agg, 0.6, watchlist_size=10_000, faces_scanned=30_000)
    assert e.rates is not None
    bare = dataclasses.replace(e, rates=FalseAlertRates.from_fpir(e.rates.fpir or 0.0))
    table = false_alert_rates_table(bare).set_index("rate")
    assert math.isnan(table.loc["false alerts ÷ faces scanned", "value"])
    assert table.loc["false alerts ÷ faces scanned", "as 1 in N"] == "—"
    assert table.loc["FPIR at N = 10,000", "value"] == pytest.approx(e.fpir)


def test_per_group_sentences_and_small_groups(agg) -> None:
    explanations = explain_by_group(agg, 0.6, "sex", watchlist_size=10_000, faces_scanned=30_000)
    assert [e.label for e in explanations] == [
        "everyone", "sex = female", "sex = male", "sex = other",
    ]  # fmt: skip
    women = explanations[1]
    assert women.expected_false_alerts == pytest.approx(30_000 * 4 / 15_000)
    assert women.sentence().startswith("If every face scanned were of sex = female: at 0.60")
    other = explanations[3]
    assert other.small_group and "treat the figure with caution" in other.sentence()
    assert "share caught is unknown" in other.sentence()  # no mated searches for the group


def test_off_grid_threshold_names_the_nearest(agg) -> None:
    with pytest.raises(ExplainError, match="nearest are 0.6 and 0.62"):
        explain_threshold(agg, 0.61, watchlist_size=10, faces_scanned=10)
    with pytest.raises(ExplainError, match="listed passers-by"):
        explain_threshold(agg, 0.6, watchlist_size=10, faces_scanned=10, listed_passers_by=11)


def test_group_comparison_ratio_and_test(agg) -> None:
    comparison = group_comparison(agg, 0.58, "sex", "fpir")
    table = comparison.table.set_index("group")
    assert (comparison.highest_group, comparison.lowest_group) == ("female", "male")
    assert comparison.max_min_ratio == pytest.approx(2.0)
    assert table.loc["female", "ratio_to_lowest"] == pytest.approx(2.0)
    assert not table.loc["other", "compared"] and math.isnan(table.loc["other", "ratio_to_lowest"])
    expected_p = stats.fisher_exact([[20, 14_980], [10, 14_990]]).pvalue
    assert comparison.test.p_value == pytest.approx(expected_p)
    # at 0.62 men have no false positives: the ratio is undefined, not infinite
    assert math.isnan(group_comparison(agg, 0.62, "sex", "fpir").max_min_ratio)


def test_evidence_from_aggregate(agg) -> None:
    evidence = evidence_from_results(agg, 0.6)
    assert evidence.results_sha256 == "ab" * 32
    assert evidence.watchlist_size == 10_000
    assert (evidence.fpir.count, evidence.fpir.trials) == (5, 30_000)
    assert (evidence.tpir.count, evidence.tpir.trials) == (4_000 - 356, 4_000)
    fnir_low, fnir_high = clopper_pearson(356, 4_000)
    assert (evidence.tpir.ci_low, evidence.tpir.ci_high) == pytest.approx(
        (1 - fnir_high, 1 - fnir_low)
    )
    assert evidence.n_boot is None
    with pytest.raises(ConfigError, match="not one of the thresholds"):
        evidence_from_results(agg, 0.59)
