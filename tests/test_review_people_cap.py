"""Review of the one-sided cap counted by people (commit 8e68ea8, ``capped_by_people``).

The cap rests on ``Var(p_hat) <= p (1 - p) / K`` (K Kish's effective number of people), which
needs the searches per person not to depend on the person's rate. Where people with high,
strongly clustered rates are also searched more ("doppelgangers" of watchlist faces who are
regulars at the camera) the rate varies more than that, and the capped bound undercovers while
the uncapped one does not (``benchmarks/results/people_cap_adversarial.md``).

The data sets: 400 people; per data set each person is a doppelganger with probability 0.01;
searches 1 + Poisson(Gamma(2, 2)) (mean 5), times 10 for doppelgangers; doppelganger rates
Beta with mean 0.491 and intra-person correlation 0.5, the others' rate 0.0055, so the
search-weighted truth is 0.05 and doppelgangers carry 90% of the false matches.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

import lfr_eval.metrics._clustered as clustered
from lfr_eval.metrics import korn_graubard

PEOPLE, SHARE, TIMES, ICC = 400, 0.01, 10, 0.5
TRUTH, LAMB_RATE = 0.05, 0.491
OTHER_RATE = (TRUTH * (SHARE * TIMES + 1 - SHARE) - SHARE * TIMES * LAMB_RATE) / (1 - SHARE)


def _data_sets(n: int, seed: int):
    rng = np.random.default_rng(seed)
    scale = (1 - ICC) / ICC
    for _ in range(n):
        lamb = rng.random(PEOPLE) < SHARE
        trials = 1 + rng.poisson(rng.gamma(2.0, 2.0, PEOPLE))
        trials = np.where(lamb, TIMES * trials, trials)
        p = np.where(lamb, rng.beta(LAMB_RATE * scale, (1 - LAMB_RATE) * scale, PEOPLE), OTHER_RATE)
        yield rng.binomial(trials, p), trials


@lru_cache(maxsize=1)
def _bounds(n: int = 300, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """(capped, uncapped) one-sided 95% bounds on the same seeded data sets."""
    capped, uncapped = [], []
    for errors, trials in _data_sets(n, seed):
        capped.append(korn_graubard(errors, trials, sided="upper").ci_high[0])
        clustered.ONE_SIDED_PEOPLE_CAP = False
        try:
            uncapped.append(korn_graubard(errors, trials, sided="upper").ci_high[0])
        finally:
            clustered.ONE_SIDED_PEOPLE_CAP = True
    return np.array(capped), np.array(uncapped)


def test_truth_of_the_design_is_the_search_weighted_rate() -> None:
    mean_searches = 5.0
    lamb = SHARE * TIMES * mean_searches
    other = (1 - SHARE) * mean_searches
    assert (lamb * LAMB_RATE + other * OTHER_RATE) / (lamb + other) == pytest.approx(TRUTH)


def test_uncapped_bound_covers_when_doppelgangers_are_searched_more() -> None:
    _, uncapped = _bounds()
    assert np.mean(uncapped >= TRUTH) >= 0.93


@pytest.mark.xfail(
    strict=True,
    reason=(
        "capped_by_people assumes searches per person independent of the person's rate: with "
        "1% of 400 people doppelgangers (rate Beta mean 0.49, ICC 0.5) searched 10x more "
        "(truth 0.05, search-weighted), the capped one-sided 95% bound covers 0.727 here "
        "(300 data sets, seed 11; uncapped 0.957) and 0.765 / 0.794 over 1,000 data sets at "
        "seeds 101 / 202 (uncapped 0.961 / 0.960); 2,000 people at truth 0.01 (doppelgangers "
        "at 0.098): capped 0.872 / 0.844, uncapped 0.992 / 0.991; the rate's variance is "
        "about 3-4x the cap's p(1-p)/K there; claim 'FPIR <= 0.999 x truth' supported 0.247 "
        "capped, 0.040 uncapped"
    ),
)
def test_capped_bound_covers_when_doppelgangers_are_searched_more() -> None:
    capped, _ = _bounds()
    assert np.mean(capped >= TRUTH) >= 0.93
