"""Defects found by the review in session 21 (issues 9 and 10).

Each test states the defect it pins down. A strict xfail names a defect in a file another
helper owns and says what was measured; it turns into a failure (and must then be made a plain
test) as soon as the defect is fixed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lfr_eval.metrics import IdentificationFrame, SearchSet, summarise_clusters


def _summary(errors: list[int], trials: list[int]):  # type: ignore[no-untyped-def]
    return summarise_clusters(np.asarray(errors, float)[:, None], np.asarray(trials, float))


# ---------------------------------------------------------------------------------------------
# Issue 9: simultaneous ratio intervals when two groups show nothing but errors (review, s. 21)


def test_ratio_intervals_of_other_groups_survive_two_groups_with_only_errors() -> None:
    from lfr_eval.metrics._group_tests import simultaneous_ratio_intervals

    summaries = {
        "a": _summary([2] * 10, [2] * 10),  # 20 of 20: all errors
        "b": _summary([3] * 8, [3] * 8),  # 24 of 24: all errors
        "c": _summary([1, 0, 2, 1, 0, 1, 1, 0, 2, 1] * 5, [2] * 50),  # 0.45
        "d": _summary([0, 1, 0, 0, 1, 0, 0, 0, 2, 0] * 5, [2] * 50),  # 0.2
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = simultaneous_ratio_intervals(summaries)
    c, d = r.index("c"), r.index("d")
    assert np.isfinite(r.low[c, d]) and np.isfinite(r.high[c, d]), (r.low[c, d], r.high[c, d])
    assert r.low[c, d] < r.ratio[c, d] < r.high[c, d]


# ---------------------------------------------------------------------------------------------
# Issue 9 item 4: small and unknown groups out of summary measures unless asked (review, s. 21)


def group_frame(
    cells: list[tuple[str, int, int, int]], unlabelled: tuple[float, ...] = ()
) -> IdentificationFrame:
    """A frame at T = 0.5 from ``(group, people, searches each, false positives)`` cells
    (the errors drawn at random, seed 0, cell by cell) and searches without a group label
    with the given best scores; the first two cells' groups hold the two mated searches."""
    rng = np.random.default_rng(0)
    subjects, groups, best = [], [], []
    for g, people, per, errors in cells:
        n = people * per
        hit = np.zeros(n, bool)
        hit[rng.choice(n, errors, replace=False)] = True
        subjects += [f"{g}{i // per}" for i in range(n)]
        groups += [g] * n
        best += list(np.where(hit, 0.8, 0.2))
    subjects += [f"u{i}" for i in range(len(unlabelled))]
    groups += [None] * len(unlabelled)
    best += list(unlabelled)
    searches = SearchSet(
        watchlist_size=1000,
        mate_scores=np.array([0.9, 0.9]),
        mate_ranks=np.array([1, 1]),
        mated_subjects=np.array(["m0", "m1"]),
        non_mated_topk=np.asarray(best)[:, None],
        non_mated_subjects=np.asarray(subjects),
        mated_groups=pd.DataFrame({"g": [cells[0][0], cells[1][0]]}),
        non_mated_groups=pd.DataFrame({"g": groups}),
    )
    return IdentificationFrame(searches, [0.5], ["g"])


def _frame_with_a_small_and_an_unknown_group(c_errors: int = 3) -> IdentificationFrame:
    """Groups A and B: 40 people x 5 searches each, FPIR 0.10 and 0.05 at T = 0.5; group C:
    2 people x 2 searches, ``c_errors`` false positives (small); 3 searches without a label,
    2 false positives."""
    return group_frame(
        [("A", 40, 5, 20), ("B", 40, 5, 10), ("C", 2, 2, c_errors)], unlabelled=(0.8, 0.8, 0.2)
    )


def test_frame_summary_measures_leave_out_small_and_unknown_groups_by_default() -> None:
    frame = _frame_with_a_small_and_an_unknown_group()
    by_group = frame.by_group.xs(("fpir", 0.5), level=["metric", "threshold"])
    assert bool(by_group.loc["C", "small_group"]) and bool(by_group.loc["unknown", "small_group"])
    compared = by_group.loc[["A", "B"], "rate"]
    assert frame.max_min_ratio("fpir")[0.5] == pytest.approx(compared.max() / compared.min())
    assert frame.difference("fpir")[0.5] == pytest.approx(compared.max() - compared.min())
    fdr = frame.fairness_discrepancy_rate(alpha=1.0)[0.5]
    assert fdr == pytest.approx(1 - (compared.max() - compared.min()))


def test_frame_ratio_to_lowest_leaves_out_small_and_unknown_groups_by_default() -> None:
    frame = _frame_with_a_small_and_an_unknown_group(c_errors=0)
    ratio = frame.ratio("fpir").xs(0.5, level="threshold")
    assert frame.max_min_ratio("fpir")[0.5] == pytest.approx(2.0)  # A 0.10 over B 0.05
    assert ratio.loc["A", "ratio"] == pytest.approx(2.0), ratio["ratio"].to_dict()
    assert ratio.loc["A", "reference_rate"] == pytest.approx(0.05)


# ---------------------------------------------------------------------------------------------
# Issue 9: the committed grid against the exact coverage of the default (review, session 21)


@pytest.mark.parametrize(("people", "searches"), [(20, 10), (100, 10)])
def test_committed_grid_agrees_with_the_exact_coverage_of_the_default(
    people: int, searches: int
) -> None:
    """With equal searches per person the default's two-sided coverage is an exact sum over
    error patterns (``lfr_eval.attainable_coverage``: pattern probabilities, the interval at
    each pattern). Where the patterns enumerated hold all but 1e-4 of the probability, the
    committed simulation of the current default (``benchmarks/results/stats_grid_s24.csv``
    since stop 24's rule, 2,000 data sets per cell; ``stats_grid.csv`` holds the stop-23 rule
    under the name ``design-effect-jeffreys``) must agree with it within 4 standard errors: a
    stale table (the default changed, the grid not re-run) or a wrong simulation or pattern
    count fails here. About 1 CPU s per design."""
    from pathlib import Path

    from lfr_eval.attainable_coverage import (
        GRID_ICC,
        GRID_RATES,
        design_cells,
        enumerate_patterns,
        interval_table,
    )

    grid = pd.read_csv(Path(__file__).parents[1] / "benchmarks/results/stats_grid_s24.csv")
    grid = grid[
        (grid["method"] == "design-effect-jeffreys")
        & ~grid["unequal"]
        & (grid["people"] == people)
        & (grid["searches_per_person"] == searches)
    ]
    patterns = enumerate_patterns(people, searches, design_cells(searches, GRID_RATES, GRID_ICC))
    table = interval_table(patterns, GRID_RATES, "design-effect-jeffreys")
    checked, far = 0, []
    for j, (rate, icc) in enumerate(patterns.cells):
        if patterns.free[j] >= 1e-4:
            continue
        exact = float(patterns.probabilities[j] @ table[:, GRID_RATES.index(rate)])
        row = grid[np.isclose(grid["rate"], rate) & np.isclose(grid["icc"], icc)]
        simulated, n = float(row["two_sided"].iloc[0]), int(row["n_datasets"].iloc[0])
        se = np.sqrt(max(exact * (1 - exact), 1e-4) / n)
        checked += 1
        if abs(simulated - exact) > 4 * se:
            far.append((rate, icc, exact, simulated))
    assert checked >= 8, checked
    assert not far, far


# ---------------------------------------------------------------------------------------------
# Issue 9: the full-data permutation group test's size in a lambs design (review, session 21)


def _permutation_size(n: int, seed: int, permutations: int = 99) -> float:
    """Share of data sets, with equal true rates (0.05) in two groups, where the page's default
    group test on full results (``permutation_compare_groups``: studentized, people relabelled
    within strata of searches) calls the pair different at 0.05. Group a: 30 people x ~30
    searches, group b: 300 x ~2 (1 + Poisson(Gamma(2, (m - 1) / 2))); in both, 5% of people
    draw false matches 20 times as often as the others (as ``_rao_scott_size`` in
    ``tests/test_review_findings.py``)."""
    from lfr_eval.metrics._group_tests import permutation_compare_groups

    rng = np.random.default_rng(seed)
    base = 0.05 / (0.95 + 0.05 * 20)
    called = 0
    for r in range(n):
        errors, trials = {}, {}
        for name, (people, m) in {"a": (30, 30), "b": (300, 2)}.items():
            t = 1 + rng.poisson(rng.gamma(2.0, (m - 1) / 2.0, people))
            rates = np.where(rng.random(people) < 0.05, 20 * base, base)
            errors[name], trials[name] = rng.binomial(t, rates), t
        pair = permutation_compare_groups(errors, trials, n_permutations=permutations, seed=r)
        called += pair.pairs[0].p_adjusted <= 0.05
    return called / n


@pytest.mark.xfail(
    strict=True,
    reason=(
        "the studentized permutation test over people (by name; since stop 24 the page's "
        "default is the null bootstrap, tests/test_group_bootstrap.py), relabelled within "
        "strata of searches per person, calls two groups with equal rates "
        "different in 0.010 / 0.0095 / 0.0125 of 2,000 data sets (seeds 12-14, 99 "
        "relabellings; 0.009 with 199 in groups' bench_rao_scott_candidates.py) with 30 "
        "people x ~30 searches against 300 x ~2, 5% of people at 20x: below the 0.03-0.07 "
        "band; without the strata it is 0.145 (1,000 sets), so neither relabelling holds"
    ),
)
def test_permutation_group_test_size_with_unequal_searches_and_a_few_heavy_people() -> None:
    size = _permutation_size(1200, seed=12)  # about 4 CPU s; 0.0092 here
    assert size >= 0.03 - 2 * np.sqrt(0.03 * 0.97 / 1200), size


# ---------------------------------------------------------------------------------------------
# Issue 9: the scaled FPIR's bound from the sparse histogram = from the dense sums (review, s. 21)


def test_scaled_bound_from_the_histogram_equals_the_dense_per_person_sums() -> None:
    """The scaled FPIR's one-sided bound (the claim checker's and the config evidence's) made
    from the sparse per-search value histogram equals the one made from the same per-person
    sums held densely (``summarise_clusters``), on random filler counts: every shortcut of
    ``summarise_subjects`` must keep it. 16bd732 fed these float sums to the whole-number
    top-people path, which truncated them: this check then failed in 75 of 100 random cases
    (fixed in a66e2f4)."""
    from lfr_eval.metrics import summarise_subjects
    from lfr_eval.protocols._scaling import (
        interval_from_summary,
        largest_person_sum,
        search_value_histogram,
    )

    rng = np.random.default_rng(3)

    def p_alert(c: np.ndarray) -> np.ndarray:  # N = 100 of F = 1,000 fillers, plug-in form
        return 1 - (1 - c[:, 0, :] / 1000.0) ** 100

    for _ in range(40):
        n, s, m = int(rng.integers(5, 400)), int(rng.integers(2, 60)), int(rng.integers(1, 15))
        clusters = np.sort(rng.integers(0, s, n))
        thresholds = np.sort(rng.uniform(0, 1, m))
        base = rng.poisson(rng.uniform(0, 3), n)
        shape = base[:, None, None] * (1 - thresholds)[None, None, :]
        counts = (shape * rng.uniform(0.5, 1.5, (n, 1, 1))).astype(np.int64)
        counts = np.minimum.accumulate(counts, axis=2)  # falls as the threshold rises
        hist = search_value_histogram(iter([(0, counts)]), clusters, np.arange(s), p_alert,
                                      thresholds)  # fmt: skip
        sums = np.concatenate([e for e, _ in hist.dense_chunks(10**6)], axis=0)
        largest = largest_person_sum(hist)
        fast = interval_from_summary(summarise_subjects(hist), 1.0, 0.95, largest)
        dense = interval_from_summary(summarise_clusters(sums, hist.trials), 1.0, 0.95, largest)
        np.testing.assert_allclose(fast.upper_bound, dense.upper_bound, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(fast.upper, dense.upper, rtol=1e-9, atol=1e-15)
