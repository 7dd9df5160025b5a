"""Operational translation: the three false alert rates, deployment expectations, scaling."""

from __future__ import annotations

import numpy as np
import pytest

from lfr_eval.metrics import MetricInputError, RateEstimate, clopper_pearson, estimate_rate
from lfr_eval.operational import (
    FalseAlertRates,
    expected_false_alerts,
    fmr_from_fpir,
    fpir_at_watchlist_size,
    one_in_n,
    scale_fpir,
)


def test_three_rates_are_kept_apart_and_converted() -> None:
    rates = FalseAlertRates.from_fpir(1 / 6000, prevalence=0.001, tpir=0.89, watchlist_size=10_000)
    assert rates.fpir == pytest.approx(1 / 6000)
    assert rates.per_face_scanned == pytest.approx(0.999 / 6000)
    false, true = 0.999 / 6000, 0.001 * 0.89
    assert rates.false_discovery == pytest.approx(false / (false + true))
    # each conversion inverts the others
    back = FalseAlertRates.from_per_face_scanned(
        rates.per_face_scanned, prevalence=0.001, tpir=0.89
    )
    assert back.fpir == pytest.approx(1 / 6000)
    back = FalseAlertRates.from_false_discovery(rates.false_discovery, prevalence=0.001, tpir=0.89)
    assert back.fpir == pytest.approx(1 / 6000)
    text = rates.describe()
    assert "per face scanned" in text and "non-mated search" in text and "1 - precision" in text


def test_unknown_inputs_stay_unknown() -> None:
    rates = FalseAlertRates.from_fpir(0.001)
    assert rates.per_face_scanned is None and rates.false_discovery is None
    assert "unknown" in rates.describe()
    # nobody listed passes: every alert is false
    assert FalseAlertRates.from_fpir(0.001, prevalence=0.0).false_discovery == 1.0
    with pytest.raises(MetricInputError, match="prevalence"):
        FalseAlertRates.from_false_discovery(0.5, prevalence=0.0, tpir=0.9)


def test_published_deployment_counts() -> None:
    # domain brief: Met Sep 2024 - Sep 2025, and South Wales Police 2017
    met = FalseAlertRates.from_deployment_counts(3_147_436, 2_077, 10)
    assert met.per_face_scanned == pytest.approx(3.18e-6, rel=1e-2)
    assert met.false_discovery == pytest.approx(10 / 2077)
    assert met.fpir is None  # listed passers-by are not published
    swp = FalseAlertRates.from_deployment_counts(170_000, 2_470, 2_297)
    assert swp.false_discovery == pytest.approx(0.93, abs=0.01)
    with pytest.raises(MetricInputError):
        FalseAlertRates.from_deployment_counts(100, 10, 11)


def test_expected_false_alerts_with_intervals() -> None:
    e = expected_false_alerts(
        (5, 30_000), 30_000, tpir=0.89, prevalence=0.0, watchlist_size=10_000, threshold=0.6
    )
    low, high = clopper_pearson(5, 30_000)
    assert e.expected_false_alerts == pytest.approx(5.0)
    assert (e.expected_ci_low, e.expected_ci_high) == pytest.approx((30_000 * low, 30_000 * high))
    # a single deployment varies more than its expectation
    assert e.predicted_low <= e.expected_ci_low and e.predicted_high >= e.expected_ci_high
    assert "expect 5.0 false alerts" in e.summary() and "10,000" in e.summary()
    # prevalence removes listed people from the non-mated faces
    e2 = expected_false_alerts(estimate_rate(5, 30_000), 30_000, prevalence=0.01, tpir=0.9)
    assert e2.non_mated_faces == pytest.approx(29_700)
    assert e2.expected_true_alerts == pytest.approx(270)
    with pytest.raises(MetricInputError, match="at least one"):
        expected_false_alerts((0, 0), 100)


def test_expected_false_alerts_keep_an_interval_clustered_by_person() -> None:
    """An estimate clustered by person (here: 40 false positives among 2,000 searches, all
    from two of 100 people) keeps its own, wider interval; the counts' search-level
    Clopper-Pearson interval is not silently put in its place."""
    from lfr_eval.metrics import IdentificationFrame, RateEstimate, SearchSet

    people = np.repeat(np.arange(100), 20).astype(str)
    best = np.where(np.isin(people, ["3", "7"]), 0.9, 0.1)  # two people, all 20 searches each
    searches = SearchSet(
        watchlist_size=1_000,
        mate_scores=np.array([0.9]),
        mate_ranks=np.array([1]),
        mated_subjects=np.array(["m"]),
        non_mated_topk=best[:, None],
        non_mated_subjects=people,
    )
    row = IdentificationFrame(searches, [0.5]).overall.loc[("fpir", 0.5)]
    clustered = RateEstimate(
        errors=40, trials=2_000, rate=0.02, ci_low=float(row["ci_low"]),
        ci_high=float(row["ci_high"]), method=str(row["ci_method"]), confidence=0.95,
    )  # fmt: skip
    e = expected_false_alerts(clustered, 30_000)
    assert e.interval_method == str(row["ci_method"]) != "clopper-pearson"
    assert (e.expected_ci_low, e.expected_ci_high) == pytest.approx(
        (30_000 * row["ci_low"], 30_000 * row["ci_high"])
    )
    independent = expected_false_alerts((40, 2_000), 30_000)
    assert independent.interval_method == "clopper-pearson"
    assert e.expected_ci_high > 1.5 * independent.expected_ci_high
    # one deployment's count varies at least as much as the clustered expectation
    assert e.predicted_high >= e.expected_ci_high > independent.predicted_high
    with pytest.raises(MetricInputError, match="at 95% but 90% was asked"):
        expected_false_alerts(clustered, 30_000, confidence=0.9)


def test_prediction_interval_covers_simulated_deployments() -> None:
    # FPIR measured as 30 / 100,000; deployments of 50,000 faces at the true rate 3e-4
    rng = np.random.default_rng(4)
    e = expected_false_alerts((30, 100_000), 50_000)
    true_rates = rng.beta(30.5, 100_000 - 29.5, 20_000)  # plausible true rates given the data
    counts = rng.binomial(50_000, true_rates)
    inside = np.mean((counts >= e.predicted_low) & (counts <= e.predicted_high))
    assert inside >= 0.94
    big = expected_false_alerts((30, 100_000), 3_000_000)  # negative-binomial branch
    assert big.predicted_low < big.expected_false_alerts < big.predicted_high


@pytest.mark.parametrize(
    ("icc", "eval_people", "deploy_people", "seed"),
    [(0.0, 1000, 100, 1), (0.3, 1000, 100, 2), (0.3, 200, 200, 3)],
)
def test_false_alert_intervals_cover_what_they_claim_with_clustered_people(
    icc: float, eval_people: int, deploy_people: int, seed: int
) -> None:
    """Known truth: people with ICC 0 / 0.3 and 10 searches each, rate 0.01; the evaluation
    and a fresh deployment drawn from the same model. The interval for the expected count
    holds F * rate, the prediction interval the deployment's realized count, each in about
    95% of data sets. Before the deployment's own clustering was added, the prediction
    interval held the realized count in 0.76 of deployments at ICC 0.3 with the evaluation ten
    times the deployment (1,000 vs 100 people)."""
    from lfr_eval.simulation import ClusterDesign, false_alert_coverage

    c = false_alert_coverage(
        ClusterDesign(eval_people, 10, icc, 0.01),
        ClusterDesign(deploy_people, 10, icc, 0.01),
        n_datasets=300,
        seed=seed,
    )
    # 300 data sets: Monte-Carlo s.e. ~0.013 at 0.95
    assert 0.92 <= c.expected <= 0.99
    assert 0.92 <= c.predicted <= 0.99


def test_deployment_design_effect_widens_the_prediction_interval_and_is_named() -> None:
    clustered = RateEstimate(
        errors=40, trials=2_000, rate=0.02, ci_low=0.0105, ci_high=0.036,
        method="design-effect-jeffreys", confidence=0.95,
    )  # fmt: skip
    default = expected_false_alerts(clustered, 2_000)
    assert default.deployment_design_effect > 1.5  # the evaluation's, from its interval
    assert "the evaluation's design effect" in default.prediction_method
    independent_faces = expected_false_alerts(clustered, 2_000, deployment_design_effect=1)
    assert independent_faces.deployment_design_effect == 1.0
    width = default.predicted_high - default.predicted_low
    assert width > independent_faces.predicted_high - independent_faces.predicted_low
    # the expected count's interval does not depend on the deployment's clustering
    assert default.expected_ci_high == independent_faces.expected_ci_high
    assert "probability" in default.summary()
    bare = expected_false_alerts((40, 2_000), 2_000)
    assert bare.deployment_design_effect == 1.0 and "independent" in bare.prediction_method
    with pytest.raises(MetricInputError, match="deployment_design_effect"):
        expected_false_alerts(clustered, 2_000, deployment_design_effect=0.5)


def test_one_in_n() -> None:
    assert one_in_n(1 / 6000) == "1 in 6,000"
    assert one_in_n(1 / 60_000) == "1 in 60,000"
    assert one_in_n(10 / 3_147_436) == "1 in 310,000"
    assert one_in_n(1 / 6000, sig_figs=3) == "1 in 6,000"
    assert one_in_n(0.4) == "1 in 2.5"
    assert one_in_n(0.7) == "70 in 100"  # above one half, "1 in 1.4" reads poorly
    assert one_in_n(0.993) == "99 in 100"
    assert one_in_n(1.0) == "every one"  # never "100 in 100"
    assert one_in_n(0.997) == "more than 99 in 100"
    assert one_in_n(0.0) == "0 (none)"
    assert one_in_n(float("nan")) == "n/a"
    with pytest.raises(MetricInputError):
        one_in_n(2.0)


def test_watchlist_scaling() -> None:
    # 1 in 6,000 at 10,000 images scales to about 1 in 60,000 at 1,000 (domain brief)
    assert one_in_n(float(scale_fpir(1 / 6000, 10_000, 1_000))) == "1 in 60,000"
    fmr = float(fmr_from_fpir(1 / 6000, 10_000))
    assert fmr * 10_000 == pytest.approx(1 / 6000, rel=1e-3)
    assert float(fpir_at_watchlist_size(fmr, 10_000)) == pytest.approx(1 / 6000)
    np.testing.assert_allclose(fpir_at_watchlist_size(0.1, [0, 1, 2]), [0, 0.1, 0.19])
    # per-probe: one look-alike probe (fmr 0.5) and one ordinary (0): mean of 1-(1-f)^N
    np.testing.assert_allclose(fpir_at_watchlist_size([0.5, 0.0], [1, 2]), [0.25, 0.375])
    # heterogeneous probes grow more slowly with N than their average FMR suggests
    per_probe = fpir_at_watchlist_size([0.02, 0.0, 0.0, 0.0], 1000)
    assert float(per_probe) < float(fpir_at_watchlist_size(0.005, 1000))
    with pytest.raises(MetricInputError):
        fpir_at_watchlist_size(1.5, 10)


def test_expected_false_alerts_with_no_false_positives_is_not_zero_width() -> None:
    # 0 false positives in 20,000 searches: the expectation is 0 but its interval must reach
    # the exact bound (two-sided 95% Clopper-Pearson: 1 - 0.025^(1/n), about 3.7/n)
    e = expected_false_alerts((0, 20_000), 1_000_000)
    assert e.expected_false_alerts == 0 and e.expected_ci_low == 0
    assert e.expected_ci_high == pytest.approx(1_000_000 * (1 - 0.025 ** (1 / 20_000)))
    assert e.expected_ci_high > 150
    assert e.predicted_high > 0  # one deployment may well see some
