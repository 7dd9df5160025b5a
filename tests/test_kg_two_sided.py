"""Two-sided Korn–Graubard intervals within the interval counted by people (stop 31).

Where one or two people carry the errors the Korn–Graubard interval has about 1 degree of
freedom, and its ``(t / z)^2`` factor put the demographic page's "all groups at once" interval
of the shipped example (one false positive among a group's 754 searches of 412 people) at
[1e-248, 0.53]. Both ends now stay within the Clopper–Pearson interval of the rate in
``n / M`` trials (``capped_by_people``) and the lower end at least ``errors * a_low / n``
(``markov_floor``); the coverage of that, with known truth across clustering levels, is below
(the full grid and adversarial designs: ``benchmarks/results/kg_two_sided.md``).
"""

from __future__ import annotations

import numpy as np
import pytest

import lfr_eval.metrics._clustered as clustered
from lfr_eval.metrics import (
    korn_graubard,
    korn_graubard_from_summary,
    ratio_to_lowest,
    simultaneous_rate_bounds,
    summarise_clusters,
)
from lfr_eval.metrics._clustered import (
    KORN_GRAUBARD,
    MARKOV_FLOOR_SUFFIX,
    PEOPLE_INTERVAL_SUFFIX,
    design_effect_interval,
    largest_searches_bound,
)
from lfr_eval.metrics._intervals import clopper_pearson
from lfr_eval.simulation import ClusterDesign, draw_batches

# 412 people, 342 of them searched twice: 754 searches, one false positive
TRIALS = np.array([2] * 342 + [1] * 70)


def _one_error(count: int = 1) -> np.ndarray:
    errors = np.zeros(TRIALS.size)
    errors[0] = count
    return errors


def test_one_error_no_longer_explodes_at_a_bonferroni_level() -> None:
    plain = design_effect_interval(summarise_clusters(_one_error(), TRIALS), 0.975)
    assert plain.ci_low[0] < 1e-200 and plain.ci_high[0] > 0.5  # what the page showed
    r = korn_graubard(_one_error(), TRIALS, 0.975)
    # the lower end is the Markov floor errors * a_low / n, valid for any dependence; for one
    # error it is (almost exactly) the exact lower end of one error in 754 independent searches
    assert r.ci_low[0] == pytest.approx(0.0125 / 754)
    independent_low, _ = clopper_pearson(np.array([1]), 754, 0.975)
    assert r.ci_low[0] == pytest.approx(independent_low[0], rel=0.01)
    # the upper end is the people's: Clopper–Pearson of the rate in n / M trials
    summary = summarise_clusters(_one_error(), TRIALS)
    k = 754 / largest_searches_bound(summary)
    _, people_high = clustered.fractional_clopper_pearson(k / 754, k, 0.0125, 0.0125)
    assert r.ci_high[0] == pytest.approx(people_high)
    assert r.ci_high[0] < 0.04 and r.effective_trials[0] == pytest.approx(k)
    assert r.method[0] == KORN_GRAUBARD + PEOPLE_INTERVAL_SUFFIX + MARKOV_FLOOR_SUFFIX


def test_ends_only_move_inwards_and_hold_the_rate() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        people = int(rng.integers(2, 300))
        trials = 1 + rng.poisson(rng.uniform(0, 12), people)
        p = rng.beta(0.05, 5.0, people) if rng.random() < 0.5 else np.full(people, 0.01)
        errors = rng.binomial(trials, p)
        summary = summarise_clusters(errors, trials)
        for level in (0.95, 0.99):
            plain = design_effect_interval(summary, level)
            r = korn_graubard_from_summary(summary, level)
            assert r.ci_low[0] >= plain.ci_low[0] and r.ci_high[0] <= plain.ci_high[0]
            assert r.ci_low[0] <= r.rate[0] <= r.ci_high[0]
            assert r.ci_low[0] < r.ci_high[0]


def test_many_people_with_errors_leave_the_interval_alone() -> None:
    """With errors spread over many people the degrees of freedom are large, the design-effect
    interval is inside the people's, and nothing is moved or relabelled."""
    rng = np.random.default_rng(1)
    trials = np.full(500, 10)
    errors = rng.binomial(trials, rng.beta(0.3, 5.7, 500))  # ICC 1/7, rate 0.05
    r = korn_graubard(errors, trials)
    plain = design_effect_interval(summarise_clusters(errors, trials))
    assert r.method[0] == KORN_GRAUBARD
    np.testing.assert_array_equal([r.ci_low, r.ci_high], [plain.ci_low, plain.ci_high])


def test_lower_sided_bound_is_raised_and_upper_sided_unchanged() -> None:
    low = korn_graubard(_one_error(2), TRIALS, 0.95, sided="lower")
    # the people's one-sided lower end in K = 754 / 2 trials, above the Markov floor 2 x 0.05 / 754
    people_low, _ = clustered.fractional_clopper_pearson(2 / 2, 377.0, 0.05, 0.0)
    assert low.ci_low[0] == pytest.approx(people_low) and low.ci_low[0] > 2 * 0.05 / 754
    assert low.ci_high[0] == 1.0 and low.effective_trials[0] == pytest.approx(377.0)
    up = korn_graubard(_one_error(2), TRIALS, 0.95, sided="upper")
    assert up.ci_low[0] == 0.0 and MARKOV_FLOOR_SUFFIX not in up.method[0]


@pytest.mark.parametrize("icc", [0.0, 0.3, 0.6])
def test_coverage_with_few_errors_across_clustering(icc: float) -> None:
    """Known truth: 400 people x 5 searches at rate 1e-3 (2 expected errors, often in one
    person at ICC 0.6), 1,200 seeded data sets. The interval within the people's keeps 95%
    coverage at least 0.93 and, at the 99.375% of a Bonferroni family of 8, misses at most
    2.5 x its nominal 0.625%; it is never wider than the plain interval, and it is narrower
    where one or two people carry the errors."""
    design = ClusterDesign(400, 5, icc, 1e-3)
    rng = np.random.default_rng(int(icc * 10) + 31)
    narrower = 0
    misses = {0.95: 0, 0.99375: 0}
    n = 0
    for trials, errors in draw_batches(design, 1200, 6, rng):
        summary = summarise_clusters(errors, trials)
        for level in misses:
            r = korn_graubard_from_summary(summary, level)
            misses[level] += int(np.count_nonzero((r.ci_low > 1e-3) | (r.ci_high < 1e-3)))
            if level == 0.99375:
                plain = design_effect_interval(summary, level)
                narrower += int(np.count_nonzero(r.ci_high < plain.ci_high * (1 - 1e-9)))
        n += errors.shape[1]
    assert 1 - misses[0.95] / n >= 0.93
    assert misses[0.99375] / n <= 2.5 * 0.00625
    assert narrower > 0.1 * n


def test_simultaneous_coverage_of_groups_with_few_errors() -> None:
    """Six equal groups of 150 people x 4 searches at rate 2e-3 and ICC 0.4 (1.2 expected
    errors a group), 600 seeded data sets: the Bonferroni intervals of
    :func:`simultaneous_rate_bounds` hold every group's true rate at once in at least 95% of
    data sets, and their upper ends stay below 0.2 (they reached 0.5-0.9 before)."""
    rng = np.random.default_rng(8)
    design = ClusterDesign(150, 4, 0.4, 2e-3)
    scale = (1 - design.icc) / design.icc
    trials = np.full(150, 4)
    all_hold = 0
    highest = 0.0
    for _ in range(600):
        summaries = {}
        for g in range(6):
            p = rng.beta(design.rate * scale, (1 - design.rate) * scale, 150)
            summaries[str(g)] = summarise_clusters(rng.binomial(trials, p), trials)
        bounds = simultaneous_rate_bounds(summaries)
        holds = [(b.ci_low[0] <= design.rate <= b.ci_high[0]) for b in bounds.values()]
        all_hold += all(holds)
        highest = max(highest, *(float(b.ci_high[0]) for b in bounds.values()))
    assert all_hold / 600 >= 0.95
    assert highest < 0.2


def test_lower_end_raised_to_the_people_interval() -> None:
    """400 people with one search each, 3 errors: the t factor (the variance on 3 people) puts
    the plain lower end far down; the people's interval is then the exact binomial one
    (K = 400), above the Markov floor, and the lower end is raised to it."""
    errors = np.zeros(400)
    errors[:3] = 1
    summary = summarise_clusters(errors, np.ones(400))
    plain = design_effect_interval(summary)
    r = korn_graubard_from_summary(summary)
    exact_low, exact_high = clopper_pearson(np.array([3]), 400, 0.95)
    assert plain.ci_low[0] < 0.5 * exact_low[0]
    assert r.ci_low[0] == pytest.approx(exact_low[0]) and r.ci_low[0] > 3 * 0.025 / 400
    assert r.ci_high[0] == pytest.approx(exact_high[0])
    assert r.method[0] == KORN_GRAUBARD + PEOPLE_INTERVAL_SUFFIX


def test_ratio_to_lowest_names_each_rate_bound() -> None:
    errors = np.zeros(412)
    errors[0] = 1
    summaries = {"a": summarise_clusters(errors, TRIALS), "b": summarise_clusters(errors, TRIALS)}
    out = ratio_to_lowest(summaries)
    bounds = simultaneous_rate_bounds(summaries)
    assert out.rate_method is not None and out.rate_method.shape == (2, 1)
    assert out.rate_method[0, 0] == bounds["a"].method[0]
    assert out.rate_method[0, 0].endswith(MARKOV_FLOOR_SUFFIX)
    np.testing.assert_array_equal(out.rate_low[:, 0], [bounds[g].ci_low[0] for g in "ab"])


def test_the_largest_searches_are_kept_and_used() -> None:
    """K = n / M takes the most searches one person has (kept since stop 31), not only the
    moment bound, which is 1.6-3x above it where searches vary (here 2.6x: 5.13 for 2)."""
    summary = summarise_clusters(_one_error(), TRIALS)
    assert summary.largest_trials == 2.0
    assert largest_searches_bound(summary) == 2.0
    from dataclasses import replace

    old = replace(summary, largest_trials=None)  # a rates row written before stop 31
    assert 5.0 < largest_searches_bound(old) < 5.2
    assert korn_graubard_from_summary(old, 0.975).ci_high[0] > (
        korn_graubard_from_summary(summary, 0.975).ci_high[0]
    )
    # an edited value cannot go below what the moments allow (the root mean square, 1.9)
    edited = replace(summary, largest_trials=0.5)
    assert largest_searches_bound(edited) == pytest.approx(np.sqrt((TRIALS**2).mean()))
    # nor above the moment bound
    assert largest_searches_bound(replace(summary, largest_trials=50.0)) == pytest.approx(
        largest_searches_bound(old)
    )


def test_rates_rows_carry_the_largest_searches() -> None:
    """A rates row gives M from ``searches_max``, else from its searches-per-person histogram
    (aggregates since stop 27, the shipped example among them), else not at all."""
    from lfr_eval.metrics._clustered import summary_of_row

    row = {
        "rate_variance": 1e-6, "variance_df": 3.0, "effective_people": 190.9,
        "errors": 1, "n_searches": 754, "n_subjects": 412, "searches_fourth_moment": 182402.0,
    }  # fmt: skip
    assert summary_of_row(row).largest_trials is None
    assert summary_of_row({**row, "searches_histogram": "1x300 2x100 10x12"}).largest_trials == 10
    assert summary_of_row({**row, "searches_max": 7.0}).largest_trials == 7.0
    # a garbled histogram gives no M here (the group test refuses the row with its own error)
    assert summary_of_row({**row, "searches_histogram": "1x3 zz"}).largest_trials is None


def test_frame_rates_table_keeps_searches_max() -> None:
    import pandas as pd

    from lfr_eval.metrics import IdentificationFrame, SearchSet

    people = np.repeat(np.arange(30), np.arange(1, 31)).astype(str)  # person i searched i+1 times
    group = np.where(people.astype(int) < 15, "a", "b")
    searches = SearchSet(
        watchlist_size=10,
        mate_scores=np.array([0.9]),
        mate_ranks=np.array([1]),
        mated_subjects=np.array(["m"]),
        non_mated_topk=np.full((people.size, 1), 0.1),
        non_mated_subjects=people,
        mated_groups=pd.DataFrame({"g": ["a"]}),
        non_mated_groups=pd.DataFrame({"g": group}),
    )
    rows = IdentificationFrame(searches, [0.5], ["g"]).by_group.xs("fpir", level="metric")
    assert rows.loc[(0.5, "a"), "searches_max"] == 15
    assert rows.loc[(0.5, "b"), "searches_max"] == 30
