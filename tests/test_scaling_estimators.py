"""Watchlist-size scaling estimators: the hypergeometric form is unbiased up to N = F."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest

from lfr_eval.protocols import ProtocolError
from lfr_eval.protocols._scaling import (
    draws_per_group,
    hypergeometric_fpir,
    per_search_fpir,
    plug_in_fpir,
    pooled_fpir,
)


def test_hypergeometric_is_the_expectation_of_gallery_resampling() -> None:
    # F = 8 fillers, a search matching 3 of them, every gallery of N = 4: brute force
    matched = {0, 1, 2}
    galleries = list(itertools.combinations(range(8), 4))
    expected = np.mean([bool(matched & set(g)) for g in galleries])
    value = hypergeometric_fpir(np.array([[[3]]]), np.array([8]), np.array([1.0]), 4)
    assert value[0, 0] == pytest.approx(expected)
    assert value[0, 0] == pytest.approx(1 - comb(5, 4) / comb(8, 4))
    # the watchlist holds every filler: an alert iff any filler matches
    full = hypergeometric_fpir(np.array([[[0], [1]]]).reshape(2, 1, 1), np.array([8]),
                               np.array([1.0]), 8)  # fmt: skip
    assert full.ravel().tolist() == [0.0, 1.0]


@pytest.mark.parametrize("n_over_f", [0.1, 0.5, 1.0])
def test_hypergeometric_unbiased_plug_in_biased_low(n_over_f: float) -> None:
    """Searches with heterogeneous false-match rates against F = 1,000 fillers: the truth is
    mean_i [1 - (1 - f_i)^N]; the hypergeometric estimate is within 5% of it for N <= F."""
    rng = np.random.default_rng(0)
    f_fillers = 1000
    n = int(n_over_f * f_fillers)
    f = rng.beta(0.05, 50.0, size=200_000)  # mean FMR ~1e-3, very unequal between people
    counts = rng.binomial(f_fillers, f)[:, None, None]
    truth = float(np.mean(-np.expm1(n * np.log1p(-f))))
    sizes, shares = np.array([f_fillers]), np.array([1.0])
    estimate = float(hypergeometric_fpir(counts, sizes, shares, n).mean())
    plug_in = float(plug_in_fpir(counts, sizes, shares, n).mean())
    assert estimate == pytest.approx(truth, rel=0.05)
    assert plug_in < estimate  # Jensen: the plug-in is biased low
    values, model = per_search_fpir(counts, sizes, shares, n)
    assert model.startswith("hypergeometric")
    _, beyond = per_search_fpir(counts, sizes, shares, 10 * f_fillers)
    assert beyond.startswith("extrapolation x10")


def test_pooled_is_the_high_end_beyond_f() -> None:
    rng = np.random.default_rng(1)
    counts = rng.binomial(1000, rng.beta(0.05, 50.0, size=5000))[:, None, None]
    sizes, shares = np.array([1000]), np.array([1.0])
    low = plug_in_fpir(counts, sizes, shares, 10_000).mean()
    high = pooled_fpir(counts, sizes, shares, 10_000)[0]
    assert low < high


def test_scaled_fpir_is_read_from_the_scaling_table() -> None:
    """The explorer's scaled FPIR is the report's scaling-table figure, not a second formula;
    an old table (no one-sided bound, no extrapolation column) still reads."""
    import pandas as pd

    from lfr_eval.protocols import scaled_fpir

    table = pd.DataFrame(
        [
            ("analytic", 1000, 0.6, 0.02, 0.015, 0.025, "subject-bootstrap", "all", "all", 300),
            ("analytic", 10_000, 0.6, 0.15, 0.12, 0.18, "subject-bootstrap", "all", "all", 300),
            ("analytic-pooled", 10_000, 0.6, 0.19, np.nan, np.nan, "none", "all", "all", 300),
        ],
        columns=["method", "watchlist_size", "threshold", "fpir", "lower", "upper", "interval",
                 "group_attribute", "group", "n_searches"],
    )  # fmt: skip
    got = scaled_fpir(table, 1000, 0.6)
    assert (got.fpir, got.lower, got.upper) == (0.02, 0.015, 0.025) and not got.extrapolated
    got = scaled_fpir(table, 10_000, 0.6025)  # off the grid: read at 0.6, and says so
    assert got.fpir == 0.15 and got.upper == 0.19 and got.extrapolated  # range up to pooled
    assert got.grid_threshold == 0.6 and "at or below" in got.describe()
    assert scaled_fpir(table, 5000, 0.6) is None
    assert scaled_fpir(None, 5000, 0.6) is None
    with pytest.raises(ProtocolError, match="below the lowest"):
        scaled_fpir(table, 1000, 0.5)


@pytest.mark.parametrize(
    ("n", "shares", "expected"),
    [
        (100, [1 / 3, 1 / 3, 1 / 3], [34, 33, 33]),  # rounding each: 33 + 33 + 33 = 99
        (101, [0.5, 0.5], [51, 50]),  # rounding each (half to even): 50 + 50 = 100
        (1000, [0.2, 0.3, 0.5], [200, 300, 500]),
        (7, [0.0, 1.0], [0, 7]),
        (10, [0.25, 0.25, 0.5], [3, 2, 5]),  # a tie of remainders goes to the earlier group
    ],
)
def test_draws_per_group_adds_up_to_the_watchlist_size(
    n: int, shares: list[float], expected: list[int]
) -> None:
    draws = draws_per_group(n, np.array(shares))
    assert draws.tolist() == expected
    assert draws.sum() == n


def test_draws_per_group_adds_up_for_random_compositions() -> None:
    rng = np.random.default_rng(3)
    for _ in range(500):
        shares = rng.dirichlet(np.ones(rng.integers(1, 8)))
        n = int(rng.integers(1, 100_000))
        draws = draws_per_group(n, shares)
        assert draws.sum() == n and np.all(np.abs(draws - n * shares) < 1.0)
