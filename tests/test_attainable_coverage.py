"""The exact bound on the two-sided coverage any interval can reach in a grid cell."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lfr_eval.attainable_coverage import (
    lowest_attainable_coverage,
    pattern_probabilities,
)
from lfr_eval.simulation import ClusterDesign, draw_batches, interval_coverage


def test_patterns_are_exact_for_independent_searches() -> None:
    """ICC 0, equal searches: the total is binomial, and one error has one pattern."""
    probs = pattern_probabilities(100, 10, 0.0, 1e-4)
    total = stats.binom(1000, 1e-4)
    assert probs[()] == pytest.approx(total.pmf(0), rel=1e-12)
    assert probs[(1,)] == pytest.approx(total.pmf(1), rel=1e-12)
    assert probs[(2,)] + probs[(1, 1)] == pytest.approx(total.pmf(2), rel=1e-9)


def test_patterns_match_the_simulation_with_clustering() -> None:
    """ICC 0.5: the pattern probabilities are those of the simulation's beta-binomial draws."""
    design = ClusterDesign(100, 10, 0.5, 1e-3)
    probs = pattern_probabilities(100, 10, 0.5, 1e-3)
    rng = np.random.default_rng(5)
    counts = {(): 0, (1,): 0}
    n = 0
    for _, errors in draw_batches(design, 20_000, 4, rng):
        for column in errors.T:
            key = tuple(sorted(column[column > 0].tolist(), reverse=True))
            if key in counts:
                counts[key] += 1
        n += errors.shape[1]
    for key, count in counts.items():
        se = np.sqrt(probs[key] * (1 - probs[key]) / n)
        assert abs(count / n - probs[key]) < 4 * se, (key, count / n, probs[key])


def test_discreteness_puts_a_cell_out_of_reach() -> None:
    """100 people x 10 searches at 1e-4: 90.5% no error, 9.0% exactly one. Any interval
    that covers at one error covers >= 99.5%; one that does not, <= 91%."""
    r = lowest_attainable_coverage(ClusterDesign(100, 10, 0.0, 1e-4))
    assert r.no_errors == pytest.approx(0.9048, abs=1e-4)
    assert (1,) in r.forced
    assert r.lowest == pytest.approx(0.9953, abs=1e-4)
    # and the workbench's interval indeed covers there at least that much (no contradiction)
    cov = interval_coverage(r.design, n_datasets=1000, seed=1)
    assert cov.two_sided >= r.lowest - 3 * np.sqrt(0.005 / 1000)


def test_informative_cells_are_not_declared_out_of_reach() -> None:
    """With many expected errors the bound is far below the band: nothing is proved there."""
    for cell in [(500, 10, 0.0, 0.01), (2000, 100, 0.3, 0.001), (100, 100, 0.1, 0.1)]:
        assert lowest_attainable_coverage(ClusterDesign(*cell)).lowest < 0.9


def test_unequal_searches_use_the_no_error_share_only() -> None:
    design = ClusterDesign(20, 10, 0.5, 1e-4, unequal=True)
    r = lowest_attainable_coverage(design)
    assert r.basis == "no errors only"
    cov = interval_coverage(design, n_datasets=2000, seed=2)
    assert r.no_errors == pytest.approx(cov.no_errors, abs=4 * np.sqrt(0.005 / 2000) + 1e-3)
    assert r.lowest == r.no_errors > 0.97
    # below 1 - floor no pattern is forced, and nothing is proved
    low = lowest_attainable_coverage(ClusterDesign(500, 100, 0.1, 1e-3, unequal=True))
    assert low.forced == () and low.lowest == 0.0


def test_floor_is_checked() -> None:
    with pytest.raises(ValueError, match="floor"):
        lowest_attainable_coverage(ClusterDesign(20, 10, 0.0, 1e-3), floor=1.5)
