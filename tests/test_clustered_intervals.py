"""Hand cases of the clustered (Korn–Graubard design-effect Clopper–Pearson) interval."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lfr_eval.metrics import MetricInputError, clopper_pearson, korn_graubard
from lfr_eval.metrics._clustered import (
    KORN_GRAUBARD,
    KORN_GRAUBARD_MONOTONE,
    KORN_GRAUBARD_NO_ERRORS,
    KORN_GRAUBARD_ONE_PERSON,
    MARKOV_FLOOR_SUFFIX,
    ClusteredRate,
    cluster_robust_variance,
    design_effect_interval,
    fractional_clopper_pearson,
    summarise_clusters,
)


def test_same_rate_everyone_is_not_zero_width() -> None:
    # 30 people x 2 searches, one error each: a bootstrap over people gives [0.5, 0.5].
    r = korn_graubard([1] * 30, [2] * 30)
    assert r.rate[0] == 0.5 and r.method[0] == KORN_GRAUBARD
    # no spread between people: the design effect (0) is truncated at 1, so the interval is
    # Clopper-Pearson's on 60 searches, a little wider for the t adjustment (29 df)
    low, high = clopper_pearson(30, 60)
    assert r.ci_low[0] < float(low) < 0.5 < float(high) < r.ci_high[0]
    assert r.effective_trials[0] == pytest.approx(60 * (1.96 / stats.t.ppf(0.975, 29)) ** 2, 1e-3)


def test_no_errors_bound_counted_by_people() -> None:
    r = korn_graubard([0] * 20, [50] * 20, sided="upper")
    assert r.method[0] == KORN_GRAUBARD_NO_ERRORS
    assert r.ci_low[0] == 0.0
    assert r.ci_high[0] == pytest.approx(1 - 0.05 ** (1 / 20))  # rule of three over people
    # independence would claim 3/1000
    assert r.ci_high[0] > 40 * float(clopper_pearson(0, 1000, sided="upper")[1])


def test_no_errors_unequal_searches_uses_kish_people() -> None:
    trials = np.array([100, 1, 1, 1])
    r = korn_graubard(np.zeros(4), trials, sided="upper")
    kish = trials.sum() ** 2 / (trials**2).sum()
    assert r.effective_trials[0] == pytest.approx(kish)


def test_clustered_interval_wider_than_independence_when_people_differ() -> None:
    # 10 people x 100 searches; two people carry every error
    errors = np.array([30, 20] + [0] * 8)
    r = korn_graubard(errors, np.full(10, 100))
    low, high = clopper_pearson(50, 1000)
    assert r.design_effect[0] > 10
    assert r.ci_low[0] < float(low) and r.ci_high[0] > float(high)
    assert 0 < r.ci_low[0] < 0.05 < r.ci_high[0]


def test_variance_is_the_ratio_estimator_variance() -> None:
    e = np.array([[1.0], [3.0], [0.0]])
    n = np.array([10.0, 10.0, 20.0])
    rate, var = cluster_robust_variance(e, n)
    p = 4 / 40
    expected = 3 / 2 * ((1 - p * 10) ** 2 + (3 - p * 10) ** 2 + (0 - p * 20) ** 2) / 40**2
    assert rate[0] == pytest.approx(p) and var[0] == pytest.approx(expected)


def test_fractional_clopper_pearson_matches_integer_case() -> None:
    low, high = fractional_clopper_pearson(7, 100, 0.025, 0.025)
    cl, ch = clopper_pearson(7, 100)
    assert low == pytest.approx(float(cl)) and high == pytest.approx(float(ch))
    assert float(fractional_clopper_pearson(2.5, 50, 0.0, 0.05)[1]) == pytest.approx(
        stats.beta.ppf(0.95, 3.5, 47.5)
    )


def test_one_person_and_vectorised_thresholds() -> None:
    r = korn_graubard(np.array([[3, 0, 10]]), [10])
    assert r.method.tolist() == [
        # one person is one effective search: its lower end is the Markov floor 3 x 0.025 / 10
        KORN_GRAUBARD_ONE_PERSON + MARKOV_FLOOR_SUFFIX,
        KORN_GRAUBARD_NO_ERRORS,
        "korn-graubard (all errors: counted by people)",
    ]
    assert r.ci_low[0] == pytest.approx(0.0075)
    assert r.ci_low[0] < 0.3 < r.ci_high[0] and r.ci_high[0] - r.ci_low[0] > 0.5


def test_bad_counts_are_refused() -> None:
    with pytest.raises(MetricInputError):
        korn_graubard([3], [2])
    with pytest.raises(MetricInputError):
        korn_graubard(np.zeros((3, 2)), [1, 1])


def test_design_effect_jeffreys_hand_cases() -> None:
    """The default interval by hand: Jeffreys' beta quantiles; the upper end's effective sample
    size reduces only the excess of the design effect over 1 by (t / z)^2, the lower end's is
    n / deff; inside the exact interval; the exact bound counted by people at 0."""
    from lfr_eval.metrics import DESIGN_EFFECT_JEFFREYS, design_effect_jeffreys

    errors = np.array([0, 3, 0, 4, 0, 2, 1, 3, 0, 4, 0, 3, 0, 2, 0, 5, 0, 3, 1, 4])
    trials = np.full(20, 20)
    exact = korn_graubard(errors, trials)
    jeff = design_effect_jeffreys(errors, trials)
    assert jeff.method[0] == DESIGN_EFFECT_JEFFREYS
    n, p = trials.sum(), errors.sum() / trials.sum()
    _, variance = cluster_robust_variance(errors[:, None], trials)
    deff = float(variance[0]) / (p * (1 - p) / n)
    u2 = (errors - p * trials) ** 2
    df = u2.sum() ** 2 / (u2**2).sum() - 1  # people carrying the variance, minus one
    assert df + 1 >= 5 and deff > 1
    widen = (stats.t.ppf(0.975, df) / stats.norm.ppf(0.975)) ** 2
    n_high = n / (1 + (deff - 1) * widen)
    n_low = n / deff
    assert exact.effective_trials[0] == pytest.approx(n / (deff * widen))
    assert jeff.effective_trials[0] == pytest.approx(n_high)
    assert jeff.ci_low[0] == pytest.approx(
        stats.beta.ppf(0.025, p * n_low + 0.5, n_low * (1 - p) + 0.5)
    )
    assert jeff.ci_high[0] == pytest.approx(
        stats.beta.ppf(0.975, p * n_high + 0.5, n_high * (1 - p) + 0.5)
    )
    assert exact.ci_low[0] < jeff.ci_low[0] < jeff.rate[0] < jeff.ci_high[0] < exact.ci_high[0]
    none = design_effect_jeffreys(np.zeros(20), np.full(20, 50), sided="upper")
    assert none.method[0] == KORN_GRAUBARD_NO_ERRORS
    assert none.ci_high[0] == pytest.approx(
        korn_graubard(np.zeros(20), np.full(20, 50), sided="upper").ci_high[0]
    )


def _jeffreys(x: float, n: float) -> tuple[float, float]:
    """Jeffreys' two-sided 95% ends for ``x`` (fractional) errors in ``n`` trials."""
    return (
        float(stats.beta.ppf(0.025, x + 0.5, n - x + 0.5)),
        float(stats.beta.ppf(0.975, x + 0.5, n - x + 0.5)),
    )


def _plain_korn_graubard(errors: np.ndarray, trials: np.ndarray) -> ClusteredRate:
    """Korn–Graubard's own interval, with its whole t factor: the ends before the people's
    interval and the Markov floor (:func:`korn_graubard` since stop 31)."""
    return design_effect_interval(summarise_clusters(errors, trials))


def test_design_effect_jeffreys_few_people_t_factor_floored_at_the_people() -> None:
    """Errors in only two people: the between-person spread rests on them, so the ends keep
    Korn–Graubard's reduction of the whole variance, but never below Kish's effective number of
    people (no model of independent people has a variance above ``p (1 - p) / people`` with
    equal searches). Through stop 23 the reduction went on below it: 3.7 effective searches for
    40 people, an upper end of 0.49 for a rate of 0.0125."""
    from lfr_eval.metrics import design_effect_jeffreys
    from lfr_eval.metrics._clustered import (
        LOWER_FEW_ERRORS,
        PREVIOUS_SMALL_SAMPLE,
        design_effect_jeffreys_from_summary,
        summarise_clusters,
    )

    errors = np.zeros(40)
    errors[[3, 17]] = [6, 9]
    trials = np.full(40, 30)
    exact = _plain_korn_graubard(errors, trials)
    jeff = design_effect_jeffreys(errors, trials)
    p = errors.sum() / trials.sum()
    # Korn–Graubard's whole t factor (1 degree of freedom) would leave 3.7 of 40 people
    assert exact.effective_trials[0] < 4 < 40
    assert jeff.effective_trials[0] == pytest.approx(40.0)  # Kish = 40 with equal searches
    assert jeff.ci_high[0] == pytest.approx(_jeffreys(p * 40, 40)[1])
    # the lower end: at most 5 effective errors (15 errors, design effect 7.7), so n / deff
    # (156, above the floor) with no t factor, as before
    n_low = p * (1 - p) / float(exact.variance[0])
    assert n_low > 40 and 1 < p * n_low <= LOWER_FEW_ERRORS
    assert jeff.ci_low[0] == pytest.approx(_jeffreys(p * n_low, n_low)[0])
    assert 0.0015 < jeff.ci_low[0] < 0.004 < p < 0.05 < jeff.ci_high[0] < 0.1
    previous = design_effect_jeffreys_from_summary(
        summarise_clusters(errors, trials), small_sample=PREVIOUS_SMALL_SAMPLE
    )
    assert previous.effective_trials[0] == pytest.approx(exact.effective_trials[0])
    assert previous.ci_high[0] > 0.45 and previous.ci_low[0] == pytest.approx(jeff.ci_low[0])

    # many effective errors (about 12) but the variance on 2 people (three heavy searchers
    # among light ones): the lower end takes the whole t factor (fewer than 5 people carry
    # the variance), which would leave 0.88 effective searches for 20 people who all show
    # errors (lower end 0.0086 for a rate of 0.33); the floor is Kish's 6.97 people
    heavy_trials = np.array([100, 100, 100] + [10] * 17)
    heavy_errors = np.array([60, 10, 35] + [3] * 17)
    heavy = design_effect_jeffreys(heavy_errors, heavy_trials)
    kg = _plain_korn_graubard(heavy_errors, heavy_trials)
    kish = heavy_trials.sum() ** 2 / (heavy_trials**2).sum()
    q = kg.rate[0]
    assert q * q * (1 - q) / float(kg.variance[0]) > LOWER_FEW_ERRORS  # not the few-errors rule
    assert kg.effective_trials[0] < 1 < kish < 7
    assert heavy.ci_low[0] == pytest.approx(_jeffreys(q * kish, kish)[0])
    old = design_effect_jeffreys_from_summary(
        summarise_clusters(heavy_errors, heavy_trials), small_sample=PREVIOUS_SMALL_SAMPLE
    )
    n_kg = kg.effective_trials[0]
    assert old.ci_low[0] == pytest.approx(_jeffreys(q * n_kg, n_kg)[0])
    assert old.ci_low[0] < 0.01 < 0.08 < heavy.ci_low[0] < q


def test_design_effect_jeffreys_keeps_the_t_factor_above_the_floor() -> None:
    """Errors in two of 10 people with 1,000 searches each: the whole t factor leaves about
    430 effective searches, far above the 10 people, so the floor changes nothing."""
    from lfr_eval.metrics import design_effect_jeffreys

    errors = np.zeros(10)
    errors[[2, 5]] = [3, 2]
    trials = np.full(10, 1000)
    exact = korn_graubard(errors, trials)
    jeff = design_effect_jeffreys(errors, trials)
    assert 100 < exact.effective_trials[0] < trials.sum() / 2
    assert jeff.effective_trials[0] == pytest.approx(exact.effective_trials[0])


def test_design_effect_jeffreys_one_search_per_person_is_the_binomial_interval() -> None:
    """One search per person cannot cluster: the floor makes the effective number of searches
    the searches themselves (through stop 23 one error in 100 people got 2.4 of them, an upper
    end of 0.63). At one error the interval is the exact one (Jeffreys' lower end is too high
    there, its upper end too low for a rate just above it)."""
    from lfr_eval.metrics import design_effect_jeffreys

    errors = np.zeros(100)
    errors[40] = 1
    r = design_effect_jeffreys(errors, np.ones(100))
    assert r.effective_trials[0] == pytest.approx(100.0)
    low, high = clopper_pearson(1, 100)
    assert r.ci_low[0] == pytest.approx(float(low))
    assert r.ci_high[0] == pytest.approx(float(high))
    assert r.ci_high[0] < 0.06 and _jeffreys(1, 100)[1] < r.ci_high[0]
    # three errors: Jeffreys' ends of 3 in 100 at both ends
    errors[[3, 9]] = 1
    r3 = design_effect_jeffreys(errors, np.ones(100))
    assert (r3.ci_low[0], r3.ci_high[0]) == pytest.approx(_jeffreys(3, 100))


def test_design_effect_jeffreys_one_error_upper_end_is_exact() -> None:
    """One error in 500 single searches: Jeffreys' upper end (0.0093) is below a true rate of
    0.01 in every such data set, which put the binomial coverage at 0.929 exactly; the default's
    upper end at one error is the exact one (0.0111). Two errors: Jeffreys' again."""
    from lfr_eval.metrics import design_effect_jeffreys
    from lfr_eval.metrics._clustered import (
        SMALL_SAMPLE_RULES_COMPARED,
        design_effect_jeffreys_from_summary,
        summarise_clusters,
    )

    errors = np.zeros(500)
    errors[7] = 1
    r = design_effect_jeffreys(errors, np.ones(500))
    low, high = clopper_pearson(1, 500)
    assert (r.ci_low[0], r.ci_high[0]) == pytest.approx((float(low), float(high)))
    assert r.ci_high[0] > 0.011 > 0.01 > _jeffreys(1, 500)[1] > 0.009
    lower_only = design_effect_jeffreys_from_summary(
        summarise_clusters(errors, np.ones(500)),
        small_sample=SMALL_SAMPLE_RULES_COMPARED["exact lower end only at one error"],
    )
    assert lower_only.ci_high[0] == pytest.approx(_jeffreys(1, 500)[1])
    assert lower_only.ci_low[0] == pytest.approx(float(low))
    errors[9] = 1
    r2 = design_effect_jeffreys(errors, np.ones(500))
    assert (r2.ci_low[0], r2.ci_high[0]) == pytest.approx(_jeffreys(2, 500))


def test_design_effect_jeffreys_floor_is_kish_people_with_unequal_searches() -> None:
    """Unequal searches: the floor is Kish's ``(sum n)^2 / sum n^2``, not the head count."""
    from lfr_eval.metrics import design_effect_jeffreys

    trials = np.array([1] * 10 + [50] + [1] * 20)
    errors = np.zeros(31)
    errors[10] = 10  # every error in the heavy searcher
    r = design_effect_jeffreys(errors, trials)
    kish = trials.sum() ** 2 / (trials**2).sum()
    assert 2.5 < kish < 2.6  # of 31 people
    assert _plain_korn_graubard(errors, trials).effective_trials[0] < 1.5
    assert r.effective_trials[0] == pytest.approx(kish)


def test_design_effect_jeffreys_one_effective_error_has_the_exact_lower_end() -> None:
    """One error in 2,000 people × 10 searches: one effective error, where the Jeffreys lower end
    is too high (it missed a true rate of 1e-3 in 9.5% of data sets with 100 people × 1 search);
    the lower end is the exact Clopper–Pearson one of that count, the upper end unchanged."""
    from lfr_eval.metrics import design_effect_jeffreys

    errors = np.zeros(2000)
    errors[7] = 1
    trials = np.full(2000, 10)
    jeff = design_effect_jeffreys(errors, trials)
    p = 1 / 20000
    n_low = p * (1 - p) / float(jeff.variance[0])
    assert p * n_low <= 1.0
    assert jeff.ci_low[0] == pytest.approx(stats.beta.ppf(0.025, p * n_low, n_low - p * n_low + 1))
    assert jeff.ci_low[0] < stats.beta.ppf(0.025, p * n_low + 0.5, n_low - p * n_low + 0.5)


def test_design_effect_jeffreys_several_errors_in_one_person_take_jeffreys_lower_end() -> None:
    """Three errors, all in one of 2,000 people × 10 searches: about one *effective* error
    (design effect about 3). The exact end of that fractional count (the rule through stop 23)
    sat at a fortieth of the rate; there are three errors, and the lower end is Jeffreys'."""
    from lfr_eval.metrics import design_effect_jeffreys
    from lfr_eval.metrics._clustered import (
        PREVIOUS_SMALL_SAMPLE,
        design_effect_jeffreys_from_summary,
        summarise_clusters,
    )

    errors = np.zeros(2000)
    errors[7] = 3
    trials = np.full(2000, 10)
    jeff = design_effect_jeffreys(errors, trials)
    p = 3 / 20000
    n_low = p * (1 - p) / float(jeff.variance[0])
    x = p * n_low
    assert 0.9 < x <= 1.0
    assert jeff.ci_low[0] == pytest.approx(_jeffreys(x, n_low)[0])
    old = design_effect_jeffreys_from_summary(
        summarise_clusters(errors, trials), small_sample=PREVIOUS_SMALL_SAMPLE
    )
    assert old.ci_low[0] == pytest.approx(stats.beta.ppf(0.025, x, n_low - x + 1))
    assert old.ci_low[0] < p / 35 and jeff.ci_low[0] > p / 15


def test_design_effect_jeffreys_one_sided_is_exact() -> None:
    from lfr_eval.metrics import design_effect_jeffreys

    errors, trials = np.array([0, 1, 3, 0, 0, 2, 0, 1, 0, 0]), np.full(10, 20)
    for sided in ("upper", "lower"):
        one = design_effect_jeffreys(errors, trials, sided=sided)
        exact = korn_graubard(errors, trials, sided=sided)
        assert one.ci_low[0] == exact.ci_low[0] and one.ci_high[0] == exact.ci_high[0]
        # the upper bound is the one made monotone in the errors (here lowered to the bound
        # counted by people); the lower one is plain
        assert one.method[0] == exact.method[0]
        expected = KORN_GRAUBARD_MONOTONE if sided == "upper" else KORN_GRAUBARD
        assert one.method[0].startswith(expected)


def test_clustered_interval_by_name() -> None:
    from lfr_eval.metrics import clustered_interval, summarise_clusters

    summary = summarise_clusters([1, 0, 2, 0], [10, 10, 10, 10])
    assert clustered_interval(summary, method="korn-graubard").method[0].startswith(KORN_GRAUBARD)
    with pytest.raises(MetricInputError, match="design-effect-jeffreys"):
        clustered_interval(summary, method="bootstrap")
