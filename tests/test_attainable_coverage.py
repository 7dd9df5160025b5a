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


# --- the joint bound: one interval, every cell of a design at once ---------------------------


def _brute_force(
    probs: np.ndarray,
    rate_of: list[int],
    n_rates: int,
    band: tuple[float, float],
    contiguous: bool,
    steps: list[tuple[int, int]] | None = None,
) -> int:
    """Most cells in band over every 0-1 table (patterns x rates), all cells >= band[0];
    with ``steps`` (pattern, pattern with one error more) only monotone tables: where the
    second holds r_i and the first r_j > r_i, both hold both."""
    import itertools

    triples = list(itertools.combinations(range(n_rates), 3))
    subsets = [
        s
        for s in itertools.product((0, 1), repeat=n_rates)
        if not contiguous or not any(s[a] and not s[b] and s[c] for a, b, c in triples)
    ]
    table = np.array(subsets)
    # every choice of one subset per pattern, at once: (choices, patterns)
    choice = np.indices((len(table),) * probs.shape[1]).reshape(probs.shape[1], -1).T
    cov = np.stack(
        [(probs[j] * table[choice, rate_of[j]]).sum(axis=1) for j in range(len(rate_of))], 1
    )
    ok = (cov >= band[0] - 1e-12).all(axis=1)
    for p, q in steps or []:
        for i, j in itertools.combinations(range(n_rates), 2):
            xp, xq = table[choice[:, p]], table[choice[:, q]]
            both = xq[:, i] & xp[:, j]
            ok &= ~both.astype(bool) | ((xp[:, i] & xq[:, j]) > 0)
    return int(((cov <= band[1] + 1e-12) & ok[:, None]).sum(axis=1)[ok].max(initial=-1))


def _joint(people: int, searches: int, rates: tuple[float, ...], iccs: tuple[float, ...], **kw):
    from lfr_eval.attainable_coverage import design_cells, enumerate_patterns, joint_attainable

    cells = design_cells(searches, rates, iccs)
    ps = enumerate_patterns(people, searches, cells, max_total=people * searches, min_probability=0)
    return ps, joint_attainable(
        people,
        searches,
        rates=rates,
        iccs=iccs,
        patterns=ps,
        min_probability=0,
        integer_probability=0,
        reference=None,
        **kw,
    )


def test_joint_bound_by_hand() -> None:
    """3 people x 1 search, rates 0.3 / 0.5 / 0.7, band 0.80-0.90. The error count is
    binomial: P(0..3 errors) = .343 .441 .189 .027 at 0.3; .125 .375 .375 .125 at 0.5; .027
    .189 .441 .343 at 0.7. The only sets of counts in band are {0, 1, 3} (.811) at 0.3,
    {0, 2, 3} (.811) at 0.7, and {0, 1, 2} or {1, 2, 3} (.875) at 0.5. All three at once:
    0 and 3 errors would hold 0.3 and 0.7, so (an interval) 0.5 too, and no set in band at
    0.5 holds both. Two at once is easy (0.3 and 0.7 in band, 0.5 covered always). So 2;
    without contiguity 3."""
    rates = (0.3, 0.5, 0.7)
    band = (0.80, 0.90)
    _, with_gaps = _joint(3, 1, rates, (0.0,), band=band, contiguous=False)
    _, joint = _joint(3, 1, rates, (0.0,), band=band)
    assert with_gaps.max_in_band == with_gaps.attained == 3
    assert joint.max_in_band == joint.attained == 2
    # the found interval is one: every count holds a contiguous run of rates
    for row in joint.covers:
        on = np.nonzero(row)[0]
        assert on.size == 0 or row[on[0] : on[-1] + 1].all()


def test_monotone_bound_equals_brute_force() -> None:
    """The monotone restriction on tiny designs: the brute force over monotone tables only,
    and never above the unrestricted optimum."""
    from lfr_eval.attainable_coverage import _one_more_error

    found_lower = False
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        people, searches = (2, 2) if seed % 2 else (3, 1)
        rates = tuple(sorted(rng.choice([0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7], 3, replace=False)))
        iccs = (0.0, 0.4) if searches > 1 else (0.0,)
        band = (0.80, 0.90)
        ps, mono = _joint(people, searches, rates, iccs, band=band, monotone=True)
        _, free = _joint(people, searches, rates, iccs, band=band)
        names = {tuple(int(v) for v in r if v): k for k, r in enumerate(ps.patterns)}
        steps = [
            (names[a], names[b])
            for a in names
            for b in _one_more_error(a, searches, people)
            if b in names
        ]
        rate_of = [rates.index(r) for r, _ in ps.cells]
        expected = _brute_force(ps.probabilities, rate_of, len(rates), band, True, steps)
        assert mono.max_in_band == mono.attained == expected, seed
        assert mono.max_in_band <= free.max_in_band
        found_lower |= mono.max_in_band < free.max_in_band
    assert found_lower  # the restriction bites somewhere, so the test can tell


@pytest.mark.parametrize("seed", range(4))
def test_joint_bound_equals_brute_force(seed: int) -> None:
    """Tiny designs (every pattern, every 0-1 table tried): the programme's optimum is the
    brute-force optimum, with and without contiguity."""
    rng = np.random.default_rng(seed)
    people, searches = (2, 2) if seed % 2 else (3, 1)
    rates = tuple(sorted(rng.choice([0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7], 3, replace=False)))
    iccs = (0.0, 0.4) if searches > 1 else (0.0,)
    band = (0.80, 0.90)
    for contiguous in (True, False):
        ps, joint = _joint(people, searches, rates, iccs, band=band, contiguous=contiguous)
        rate_of = [rates.index(r) for r, _ in ps.cells]
        expected = _brute_force(ps.probabilities, rate_of, len(rates), band, contiguous)
        assert joint.max_in_band == joint.attained == expected, (seed, contiguous)
        assert joint.lp_max_in_band >= joint.max_in_band - 1e-9


@pytest.mark.parametrize(("people", "most"), [(20, 2), (100, 3)])
def test_joint_bound_is_above_the_default_and_consistent(people: int, most: int) -> None:
    """People x 1 search (patterns up to 30 errors, nothing else left out): the default
    interval's exact coverage keeps every fully enumerated cell >= 0.93, so it is a candidate,
    and the bound is at least its number of cells in band. The LP relaxation is above the
    bound, each cell's lowest coverage below the coverage of the interval found, and at least
    the single-rate knapsack's bound (contiguity and the other cells only add constraints)."""
    from lfr_eval.attainable_coverage import GRID_RATES, interval_table, joint_attainable

    joint = joint_attainable(people, 1, min_probability=0)
    ps = joint.patterns
    table = interval_table(ps, joint.rates)
    rate_of = [joint.rates.index(r) for r, _ in ps.cells]
    default = np.array([ps.probabilities[j] @ table[:, rate_of[j]] for j in range(len(ps.cells))])
    exact = joint.free < 1e-9
    assert exact[:3].all()
    assert default[exact].min() >= 0.93
    in_band = int(((default >= 0.93) & (default + joint.free <= 0.97)).sum())
    assert joint.max_in_band >= in_band
    assert joint.lp_max_in_band >= joint.max_in_band >= joint.attained
    constrained = joint.free < 0.97
    reach = joint.coverage + joint.free  # the found table's coverage is in [coverage, reach]
    assert np.all(joint.lowest[constrained] <= reach[constrained] + 1e-7)
    assert joint.keeps_floor and np.all(reach[constrained] >= 0.93 - 1e-7)
    for j, rate in enumerate(GRID_RATES):
        single = lowest_attainable_coverage(ClusterDesign(people, 1, 0.0, rate)).lowest
        assert joint.lowest[j] >= single - 1e-6
    assert joint.max_in_band == most
