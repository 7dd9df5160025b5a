"""The scaled FPIR's one-sided bound is an envelope over fewer false matches (issue 9).

A person's "errors" in the scaling's interval are the sum of their searches' P(alert) at N; one
more false match among the fillers can only raise it. The plain one-sided bound (exact beta
with one more largest person, Fay–Feuer) falls when that happens where one or two people carry
the false matches (their sums set about 1 degree of freedom and a third person lifts them);
the envelope must not fall on these hand cases, and must never be below the plain bound.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from lfr_eval.metrics import summarise_clusters
from lfr_eval.protocols._scaled import one_sided_method
from lfr_eval.protocols._scaling import (
    SCALED_KORN_GRAUBARD,
    SCALED_KORN_GRAUBARD_NOT_MONOTONE,
    SCALED_ZERO,
    clustered_scaled_interval,
    interval_from_summary,
    largest_person_sum,
)

FILLERS, N = 1000, 100  # N / F = 0.1: within the fillers, the hypergeometric P(alert)


#: P(alert) at N of a search that meets c of the F fillers (drawn without replacement).
P_ALERT = np.array([1.0 - math.comb(FILLERS - c, N) / math.comb(FILLERS, N) for c in range(64)])


def _bounds(counts: np.ndarray) -> tuple[float, float, str]:
    """(envelope, plain bound, label) of per-search filler matches, shape (people, searches)."""
    sums = P_ALERT[counts].sum(axis=1)[:, None]
    trials = np.full(counts.shape[0], float(counts.shape[1]))
    summary, largest = summarise_clusters(sums, trials), largest_person_sum(sums)
    env = interval_from_summary(summary, N / FILLERS, 0.95, largest)
    plain = interval_from_summary(summary, N / FILLERS, 0.95, largest, envelope=False)
    return float(env.upper_bound[0]), float(plain.upper_bound[0]), str(env.method[0])


@functools.lru_cache(maxsize=16)
def _path(people: int, searches: int, how: str, steps: int, seed: int) -> list[tuple[float, ...]]:
    """Bounds along one path: a false match added one at a time, spread over people, piled on
    one person, into a pool of 3 people, or to random people (seeded)."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((people, searches), int)
    out = []
    for step in range(steps):
        out.append(_bounds(counts))
        if how == "spread":
            i, j = step, 0
        elif how == "piled":
            i, j = 0, step % searches
        elif how == "pool":
            i, j = int(rng.integers(0, 3)), int(rng.integers(0, searches))
        else:
            i, j = int(rng.integers(0, people)), int(rng.integers(0, searches))
        counts[i, j] += 1
    return out


CASES = [
    (2000, 10, "spread", 1),
    (2000, 10, "piled", 2),
    (200, 3, "spread", 3),
    (50, 20, "random", 4),
    (500, 40, "pool", 5),
    (20, 50, "pool", 6),
]


@pytest.mark.parametrize(("people", "searches", "how", "seed"), CASES)
def test_scaled_bound_does_not_fall_when_a_false_match_is_added(
    people: int, searches: int, how: str, seed: int
) -> None:
    path = _path(people, searches, how, 25, seed)
    for (env_a, _, _), (env_b, plain_b, label) in zip(path, path[1:], strict=False):
        assert env_b >= env_a * (1 - 1e-9), (env_a, env_b)
        assert env_b >= plain_b * (1 - 1e-12)  # never below the plain bound: coverage only rises
        assert label == SCALED_KORN_GRAUBARD


def test_the_plain_scaled_bound_falls_on_the_hand_cases() -> None:
    """The check above can fail: without the envelope the same paths fall, by up to 2/3."""
    worst = 0.0
    for people, searches, how, seed in CASES:
        path = _path(people, searches, how, 25, seed)
        plain = np.array([p for _, p, _ in path])
        worst = max(worst, float(np.max(1 - plain[1:] / plain[:-1])))
    assert worst > 0.5
    # 2,000 x 10, false matches spread one per person: 0.00015 with none, 0.00023 with one,
    # then the plain bound drops to about a third while the envelope holds 0.000237
    spread = _path(2000, 10, "spread", 25, 1)
    assert spread[0][0] == pytest.approx(spread[0][1])  # no false match: the same zero bound
    assert spread[4][1] < 0.4 * spread[2][1] and spread[4][0] >= spread[2][0]


def test_envelope_needs_top_people_and_says_so_without_them() -> None:
    """A summary without per-person top sums gets the plain bound, labelled NOT monotone; the
    zero-false-match rows keep their own label; the label names the envelope's one-sided part."""
    sums = np.zeros((30, 2))
    sums[:2, 1] = [0.3, 0.2]
    summary = summarise_clusters(sums, np.full(30, 5.0))
    largest = largest_person_sum(sums)
    env = interval_from_summary(summary, 0.1, 0.95, largest)
    assert list(env.method) == [SCALED_ZERO, SCALED_KORN_GRAUBARD]
    from dataclasses import replace

    bare = replace(summary, top_errors=None, top_trials=None, trials_fourth_moment=None)
    plain = interval_from_summary(bare, 0.1, 0.95, largest)
    assert plain.method[1] == SCALED_KORN_GRAUBARD_NOT_MONOTONE
    assert plain.upper_bound[1] <= env.upper_bound[1]
    np.testing.assert_array_equal(plain.lower, env.lower)  # two-sided ends do not change
    np.testing.assert_array_equal(plain.upper, env.upper)
    assert "envelope over fewer false matches (top people)" in one_sided_method(env.method[1])
    assert "NOT monotone" in one_sided_method(plain.method[1])


def test_person_sums_and_values_give_the_same_envelope() -> None:
    """From per-search values (the simulation's path) and from per-person sums (the table's):
    one bound."""
    rng = np.random.default_rng(9)
    subjects = np.repeat(np.arange(40), 5)
    values = np.zeros((200, 3))
    values[rng.choice(200, 6, replace=False), :] = rng.uniform(0.05, 0.3, (6, 3))
    direct = clustered_scaled_interval(values, subjects, 0.1)
    sums = np.stack([values[subjects == i].sum(axis=0) for i in range(40)])
    summary = summarise_clusters(sums, np.full(40, 5.0))
    again = interval_from_summary(summary, 0.1, 0.95, largest_person_sum(sums))
    np.testing.assert_allclose(direct.upper_bound, again.upper_bound, rtol=1e-12)
