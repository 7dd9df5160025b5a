"""Review of stop 31 (commit c3aab5f: two-sided Korn–Graubard within the interval counted by
people, Markov floor, ``ratio_to_lowest`` on ``simultaneous_rate_bounds``); both defects below
were fixed in the commit after it.

1. ``ratio_to_lowest`` (the demographic page, the ratio chart) and
   :meth:`IdentificationFrame.ratio` no longer give the same ratio interval from the same
   summaries where the lowest group has no error. The ratio's bounds there come from
   ``simultaneous_rate_bounds`` of ``_group_tests._summary_column``, which drops
   ``trials_fourth_moment`` (and the top people). Since stop 31 the two-sided interval depends
   on it: ``capped_by_people`` takes ``K = n / largest_searches_bound``, and without the fourth
   moment that bound is ``sqrt(sum n_i^2)`` (20 for 400 people with one search each, not 1). So
   the page's ratio interval uses people's intervals 20 times wider than its own rate columns,
   and than the frame's.
2. ``markov_floor`` takes ``bound.errors``, the errors rounded to integers, not the summary's
   error sum: with fractional counts (``ClusterSummary.errors`` is float, e.g. sums of
   per-search probabilities) the floor is ``round(X) * a_low / n``, not the ``X * a_low / n``
   that Markov's inequality supports, and it can go above the rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lfr_eval.metrics import (
    IdentificationFrame,
    SearchSet,
    korn_graubard_from_summary,
    ratio_to_lowest,
    summarise_clusters,
)
from lfr_eval.metrics._clustered import capped_by_people, design_effect_interval


def _frame() -> IdentificationFrame:
    """Group A: 400 people, one search each, no false positive; B: the same with 3."""
    n = 400
    best = np.full(2 * n, 0.1)
    best[n : n + 3] = 0.9
    searches = SearchSet(
        watchlist_size=100,
        mate_scores=np.array([0.9]),
        mate_ranks=np.array([1]),
        mated_subjects=np.array(["m"]),
        non_mated_topk=best[:, None],
        non_mated_subjects=np.array([f"p{i}" for i in range(2 * n)]),
        mated_groups=pd.DataFrame({"g": ["A"]}),
        non_mated_groups=pd.DataFrame({"g": ["A"] * n + ["B"] * n}),
    )
    return IdentificationFrame(searches, [0.5], ["g"])


def test_page_and_frame_give_one_ratio_interval_when_the_lowest_group_has_no_error() -> None:
    frame = _frame()
    table = frame.ratio("fpir").xs(0.5, level="threshold")
    summaries = {g: frame._summary_at("fpir", frame._code(g), 0) for g in ("A", "B")}
    page = ratio_to_lowest(summaries, 0.95)
    # the frame: B's lower end over A's upper end, both the rate columns' own bounds (0.109)
    assert table.loc["B", "ratio_ci_low"] == pytest.approx(
        page.rate_low[1, 0] / page.rate_high[0, 0], rel=1e-9
    )
    # the page (ratio_to_lowest) gives 0.0086: its ratio bounds lost the fourth moment
    assert page.ratio_low[1, 0] == pytest.approx(table.loc["B", "ratio_ci_low"], rel=1e-9)


def test_markov_floor_uses_the_error_sum_not_its_rounding() -> None:
    # 0.6 "errors" (a fractional count) in 100 people with one search each
    errors = np.zeros(100)
    errors[0] = 0.6
    summary = summarise_clusters(errors, np.ones(100))
    r = korn_graubard_from_summary(summary, 0.95)
    people = capped_by_people(summary, design_effect_interval(summary, 0.95), 0.95)
    markov = 0.6 * 0.025 / 100  # Markov's inequality: X * a_low / n
    assert r.ci_low[0] == pytest.approx(max(float(people.ci_low[0]), markov), rel=1e-9)
    # and a lower bound is never above the rate (0.51 errors, a_low 0.7: 0.007 > 0.0051)
    few = np.zeros(10)
    few[0] = 0.51
    low = korn_graubard_from_summary(summarise_clusters(few, np.full(10, 10)), 0.3, sided="lower")
    assert low.ci_low[0] <= low.rate[0]
