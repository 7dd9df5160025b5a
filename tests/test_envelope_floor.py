"""The envelope's wider family and the scaled bound's floor (issue 9, items 1-3).

The one-sided bound is the largest plain bound over a family of data sets with no more errors
than the data, person by person. Two additions: members that do not depend on how the stored
people rank (each alone, all, all with one of them one fewer or left out), which the data with
one more error lose when that error reorders people; and, for the scaled FPIR, the **floor**:
everyone at the lowest per-person rate (:attr:`ClusterSummary.lowest_rate`), the equal-sums
data set whose variance of 0 counts people. Summaries carry the floor, or say they do not.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from lfr_eval.metrics import summarise_clusters
from lfr_eval.metrics._clustered import (
    MONOTONE_TOP_PEOPLE,
    _family_keeps,
    _top_family,
    summary_of_row,
    top_people,
)
from lfr_eval.protocols._scaled import one_sided_method
from lfr_eval.protocols._scaling import (
    SCALED_KORN_GRAUBARD,
    SCALED_KORN_GRAUBARD_NO_FLOOR,
    _floor_envelope,
    interval_from_summary,
    largest_person_sum,
)


def _p_alert(fillers: int, n: int, matches: int) -> float:
    return 1.0 - math.comb(fillers - matches, n) / math.comb(fillers, n)


def test_every_family_member_has_no_more_errors_than_the_data() -> None:
    """Each member keeps at most each stored person's own errors (whole counts and fractional
    P(alert) sums alike), and the rank-free members are there: each person alone, all, one
    fewer, one left out."""
    rng = np.random.default_rng(4)
    for fractional in (False, True):
        trials = rng.integers(1, 30, 200).astype(float)
        errors = np.minimum(trials[:, None], rng.poisson(0.8, (200, 3)).astype(float))
        if fractional:
            errors = errors * rng.uniform(0.05, 1.0, errors.shape)
        e, n = top_people(errors, trials)
        keeps = _family_keeps(e, n, MONOTONE_TOP_PEOPLE)
        assert np.all(keeps <= e[None] + 1e-15) and np.all(keeps >= 0)
        k = e.shape[0]
        assert keeps.shape[0] == 1 + 2 * MONOTONE_TOP_PEOPLE + 16 * MONOTONE_TOP_PEOPLE + 3 * k + 1
        rank_free = keeps[-(3 * k + 1) :]
        np.testing.assert_array_equal(rank_free[k], e)  # all
        for i in range(k):
            np.testing.assert_array_equal(rank_free[i][i], e[i])  # alone
            assert not np.delete(rank_free[i], i, axis=0).any()
            np.testing.assert_array_equal(rank_free[k + 1 + i][i], np.maximum(e[i] - 1, 0))
            assert not rank_free[2 * k + 1 + i][i].any()  # dropped


def test_floor_family_equals_the_same_data_sets_summarised_directly() -> None:
    """``_top_family`` with a floor (everyone not kept at ``floor * n_i``) gives, for its member
    with everyone at the floor and for one keeping all stored people, the same errors,
    variance and degrees of freedom as ``summarise_clusters`` of those data sets."""
    rng = np.random.default_rng(8)
    trials = rng.integers(2, 20, 60).astype(float)
    sums = trials * rng.uniform(0.02, 0.05, 60)  # everyone has a sum: the floor is above 0
    sums[:3] = trials[:3] * np.array([0.4, 0.3, 0.25])
    summary = summarise_clusters(sums[:, None], trials)
    assert summary.lowest_rate is not None
    floor = float(summary.lowest_rate[0])
    assert floor == pytest.approx(float((sums / trials).min()))
    family = _top_family(summary, floor=summary.lowest_rate)
    at_floor = summarise_clusters((floor * trials)[:, None], trials)
    assert family.errors[0] == pytest.approx(at_floor.errors[0], rel=1e-12)
    assert family.variance[0] == 0.0  # exactly: the scaled bound counts people there
    # the "all stored people" member: they keep theirs, everyone else at the floor
    e = np.asarray(summary.top_errors)[:, 0]
    n = np.asarray(summary.top_trials)[:, 0]
    stored = [int(np.flatnonzero((sums == a) & (trials == b))[0]) for a, b in zip(e, n) if a > 0]
    y = floor * trials
    y[stored] = sums[stored]
    direct = summarise_clusters(y[:, None], trials)
    k = e.shape[0]
    members = family.errors.shape[0]
    every = members - 2 * k - 1  # index of "all" (_family_keeps' order)
    assert family.errors[every] == pytest.approx(direct.errors[0], rel=1e-12)
    assert family.variance[every] == pytest.approx(direct.variance[0], rel=1e-9)
    assert family.df[every] == pytest.approx(direct.df[0], rel=1e-9)


@pytest.mark.parametrize(("people", "searches", "fillers", "n"), [(200, 10, 1000, 100),
                                                                  (34, 35, 5000, 50)])  # fmt: skip
def test_the_floor_is_what_keeps_the_equal_sums_bound(
    people: int, searches: int, fillers: int, n: int
) -> None:
    """The review's case (every person one false match, then one more for the first): the
    bound after holds the bound before through the floor alone; without it (a summary that
    keeps no lowest rate) it falls as before, and the label says there is no floor."""
    pa = _p_alert(fillers, n, 1)
    before, after = np.full(people, pa), np.full(people, pa)
    after[0] += pa
    trials = np.full(people, float(searches))

    def bound(sums: np.ndarray, keep_floor: bool = True):  # type: ignore[no-untyped-def]
        summary = summarise_clusters(sums[:, None], trials)
        if not keep_floor:
            summary = replace(summary, lowest_rate=None)
        return interval_from_summary(summary, n / fillers, 0.95, largest_person_sum(sums[:, None]))

    b0, b1 = bound(before), bound(after)
    assert float(b1.upper_bound[0]) >= float(b0.upper_bound[0]) * (1 - 1e-9)
    assert b1.method[0] == SCALED_KORN_GRAUBARD
    bare = bound(after, keep_floor=False)
    assert float(bare.upper_bound[0]) < 0.5 * float(b0.upper_bound[0])  # 0.0311 -> 0.0109
    assert bare.method[0] == SCALED_KORN_GRAUBARD_NO_FLOOR
    assert "NO equal-rate floor" in one_sided_method(bare.method[0])
    # the floor's own part is the equal-sums data set's bound
    summary = summarise_clusters(after[:, None], trials)
    floor_part = _floor_envelope(summary, n / fillers, 0.95, largest_person_sum(after[:, None]))
    assert float(floor_part[0]) == pytest.approx(float(b0.upper_bound[0]), rel=1e-6)


def test_the_floor_is_zero_where_someone_has_no_false_match() -> None:
    """Where a person has no false match the floor is 0 and adds nothing (nor costs anything);
    where everyone has one it can only raise the bound, never lower it."""
    rng = np.random.default_rng(12)
    trials = rng.integers(1, 15, 80).astype(float)
    sums = trials[:, None] * rng.uniform(0.0, 0.03, (80, 4))
    sums[5, 0] = 0.0  # someone without a false match at the first threshold
    summary = summarise_clusters(sums, trials)
    assert summary.lowest_rate is not None
    assert summary.lowest_rate[0] == 0.0 and np.all(summary.lowest_rate[1:] > 0)
    largest = largest_person_sum(sums)
    part = _floor_envelope(summary, 0.1, 0.95, largest)
    assert part[0] == 0.0
    with_floor = interval_from_summary(summary, 0.1, 0.95, largest)
    without = interval_from_summary(replace(summary, lowest_rate=None), 0.1, 0.95, largest)
    assert np.all(with_floor.upper_bound >= without.upper_bound)
    assert with_floor.upper_bound[0] == without.upper_bound[0]
    np.testing.assert_array_equal(with_floor.upper, without.upper)  # two-sided: unchanged


def test_summaries_carry_the_lowest_rate_or_say_they_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Made from data, every summary holds the lowest per-person rate (in blocks too); read
    from a rates row it is kept where the row has it, and None (never a made-up 0) where not."""
    import lfr_eval.metrics._intervals as intervals
    from lfr_eval.metrics import summarise_subjects
    from lfr_eval.protocols._scaling import search_value_histogram

    rng = np.random.default_rng(6)
    people, m = 300, 5
    clusters = np.sort(rng.integers(0, people, 3000))
    thresholds = np.linspace(0.1, 0.9, m)
    counts = rng.poisson(2.0, (3000, 1, m))
    counts = np.minimum.accumulate(counts, axis=2)
    hist = search_value_histogram(
        iter([(0, counts)]), clusters, np.arange(people),
        lambda c: 1 - (1 - c[:, 0, :] / 1000.0) ** 100, thresholds,
    )  # fmt: skip
    dense_sums, dense_n = next(hist.dense_chunks(people))
    keep = dense_n > 0
    expected = (dense_sums[keep] / dense_n[keep, None]).min(axis=0)
    whole = summarise_subjects(hist)
    assert whole.lowest_rate is not None
    np.testing.assert_allclose(whole.lowest_rate, expected, rtol=1e-12)
    monkeypatch.setattr(intervals, "SUMMARY_CHUNK_CELLS", 40 * m)  # blocks of 40 people
    blocks = summarise_subjects(hist)
    assert blocks.lowest_rate is not None
    np.testing.assert_allclose(blocks.lowest_rate, expected, rtol=1e-12)
    row = {"errors": 3.0, "n_searches": 20.0, "n_subjects": 10, "rate_variance": 1e-3,
           "variance_df": 2.0, "effective_people": 10.0}  # fmt: skip
    summary = summary_of_row(row)
    assert summary is not None and summary.lowest_rate is None
    again = summary_of_row({**row, "lowest_rate": 0.05})
    assert again is not None and again.lowest_rate is not None
    assert float(again.lowest_rate[0]) == 0.05
    unknown = summary_of_row({**row, "lowest_rate": float("nan")})
    assert unknown is not None and unknown.lowest_rate is None
