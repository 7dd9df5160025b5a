"""Plain-language figures (lfr_eval.plain): nothing meaningless reaches a policy user."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from lfr_eval.explain import explain_threshold
from lfr_eval.operational import expected_false_alerts, one_in_n
from lfr_eval.plain import data_needed_for_fpir, format_number, plain_count, plain_rate
from lfr_eval.report import RATE_COLUMNS, AggregateResult
from tests.test_explain import _row


def _aggregate(watchlist_size: int, fp: int, non_mated: int, people: int) -> AggregateResult:
    """One threshold (0.6): ``fp`` false positives in ``non_mated`` searches of ``people``
    people at N = ``watchlist_size``; 900 of 1,000 mated searches found."""
    from tests.test_explain import agg as fixture

    base = fixture.__wrapped__()  # type: ignore[attr-defined]  # the module's own aggregate
    rows = [
        _row("fpir", 0.6, "all", "all", fp, non_mated, people),
        _row("fnir", 0.6, "all", "all", 100, 1_000, 100),
    ]
    return AggregateResult(
        provenance=base.provenance,
        rates=pd.DataFrame(rows, columns=list(RATE_COLUMNS)),
        histograms=pd.DataFrame(),
        scaling=None,
        acquisition=pd.DataFrame(),
        watchlist_size=watchlist_size,
        n_mated=1_000,
        n_non_mated=non_mated,
    )


def _scaling_without_false_matches(n_fillers: int, searches: int, people: int) -> pd.DataFrame:
    """The scaling table (scale_fpir) of ``searches`` non-mated searches of ``people`` people
    that meet none of ``n_fillers`` fillers at or above 0.6, scaled to 10,000."""
    import numpy as np

    from lfr_eval.protocols import FillerCounts, scale_fpir

    scores = np.random.default_rng(0).uniform(-0.2, 0.5, (searches, n_fillers))
    counts = FillerCounts.from_scores(
        scores.astype(np.float32),
        [0.55, 0.6, 0.65],
        np.arange(searches) % people,
        pd.DataFrame(index=range(searches)),
        pd.DataFrame(index=range(n_fillers)),
    )
    return scale_fpir(counts, [10_000], counts.thresholds).table


def test_a_figure_the_data_cannot_bound_is_not_printed() -> None:
    """The issue's case: a 30-person watchlist, no false positive, scaled to 10,000 with
    30,000 faces: "0.0 expected, 95% CI 0–29,965" must not reach a policy user."""
    agg = dataclasses.replace(
        _aggregate(30, 0, 300, 30), scaling=_scaling_without_false_matches(30, 300, 30)
    )
    e = explain_threshold(agg, 0.6, watchlist_size=10_000, faces_scanned=30_000)
    assert e.scaled_fpir is not None and e.scaled_fpir.extrapolated  # the scaling table's
    assert e.expected_ci_high > 15_000  # what the old sentence printed
    figure = e.false_alerts_figure()
    assert not figure.bounded and figure.value_text == "not bounded"
    sentence = e.sentence()
    assert "not bounded by these data" in sentence
    assert "CI 0" not in sentence and f"–{format_number(e.expected_ci_high)}" not in sentence
    # what would bound it: searches, people and a filler gallery of the deployed size
    assert figure.needs is not None
    assert figure.needs.filler_gallery == 10_000 and figure.needs.evaluated_gallery == 30
    assert figure.needs.searches == figure.needs.people > 300
    assert "filler gallery of at least 10,000 people (this one had 30)" in sentence
    assert not e.fpir_figure().bounded
    # the explorer's table shows no number for it either, only why
    row = e.to_row()
    assert math.isnan(row["expected false alerts"]) and math.isnan(row["FPIR at N"])
    assert row["expected 95% CI"] == row["FPIR 95% CI"] == "these data cannot bound it"


def test_bounded_figures_keep_their_numbers_and_zero_errors_give_an_upper_bound() -> None:
    e = explain_threshold(
        _aggregate(10_000, 5, 30_000, 3_000), 0.6, watchlist_size=10_000, faces_scanned=30_000
    )
    figure = e.false_alerts_figure()
    assert figure.bounded and figure.value_text == "5.0"
    assert figure.interval_text.startswith("95% CI 1.6–")
    none_seen = explain_threshold(
        _aggregate(10_000, 0, 30_000, 3_000), 0.6, watchlist_size=10_000, faces_scanned=30_000
    )
    text = none_seen.sentence()
    # no false positive: the upper end of the two-sided interval, said as such
    assert "expect at most 3.7 false alerts (upper end of the 95% CI; none seen" in text
    assert "CI 0" not in text


def test_no_lower_bound_of_zero_when_errors_were_seen() -> None:
    # 1 false positive in 30,000 searches, 3,000 faces: expected 0.1, lower bound 0.0025
    e = explain_threshold(
        _aggregate(10_000, 1, 30_000, 3_000), 0.6, watchlist_size=10_000, faces_scanned=3_000
    )
    assert 0 < e.expected_ci_low < 0.05
    text = e.sentence()
    assert "CI 0–" not in text and "CI 0.0–" not in text
    assert f"CI {format_number(e.expected_ci_low)}–" in text
    assert format_number(0.0423) == "0.042" and format_number(0.004) == "0.004"
    assert plain_count(0.3, 0.04, 1.2, total=3_000, errors=1).text == "0.3 (95% CI 0.04–1.2)"
    # the method's own 0 stays 0 (it is exact), and is only possible with no error seen
    assert plain_count(0.0, 0.0, 1.2, total=3_000, errors=0).text.startswith("at most 1.2")


def test_never_100_in_100() -> None:
    assert one_in_n(0.998) == "more than 99 in 100"
    assert one_in_n(1.0) == "every one"
    assert one_in_n(0.62) == "62 in 100"
    caught = plain_rate(0.998, 0.99, 0.9995, errors=998, style="percent")
    assert "100%" not in caught.text and caught.value_text == "more than 99.5%"
    assert plain_rate(1.0, 0.9, 1.0, errors=30, style="percent").value_text == "100%"


def test_deployment_expectation_and_evidence_use_the_same_rules() -> None:
    # 0 false positives in 3 searches: the upper bound is most of the faces
    e = expected_false_alerts((0, 3), 30_000, watchlist_size=1_000)
    assert "not bounded by these data" in e.summary()
    assert "non-mated searches from about" in e.summary()
    ok = expected_false_alerts((5, 30_000), 30_000, watchlist_size=10_000, threshold=0.6)
    assert "expect 5.0 false alerts (95% CI 1.6–11.7;" in ok.summary()
    from lfr_eval.deployment import evidence_from_results

    evidence = evidence_from_results(_aggregate(10_000, 0, 30_000, 3_000), 0.6)
    text = evidence.describe()
    assert "FPIR at most 1 in" in text and "0 of 30,000 non-mated searches" in text
    assert "TPIR 90% (95% CI" in text


def test_data_needed_counts_searches_at_the_evaluated_size() -> None:
    # FPIR 1e-3 at N = 1,000 measured at N = 1,000: rule of three, 3,000 searches
    same = data_needed_for_fpir(1e-3, evaluated_watchlist_size=1_000, watchlist_size=1_000)
    assert same.searches == pytest.approx(3_000, rel=1e-6) and same.filler_gallery is None
    # measured at N = 100 for a 1,000 deployment: ten times the searches, and a bigger gallery
    small = data_needed_for_fpir(1e-3, evaluated_watchlist_size=100, watchlist_size=1_000)
    assert small.searches == pytest.approx(30_000, rel=0.01) and small.filler_gallery == 1_000
