"""The lowest two-sided coverage any interval can reach in a cell of the simulation grid.

Where errors are rare, a data set holds 0, 1 or 2 errors most of the time, and an interval's
coverage is a sum of a few large probabilities: the share of data sets with no error, with one,
and so on. Some coverages cannot be reached at all. Example: 100 people × 10 independent
searches at a true rate of 1e-4 show no error in 90.5% of data sets and exactly one in 9.0%. An
interval either holds the truth at one error (coverage at least 99.5%) or does not (at most
90.5% + 0.5%); 0.93–0.97 lies between. This module computes that bound exactly, so the grid's
summary (``benchmarks/bench_stats_grid.py``) can say which cells *no* interval can bring into
0.93–0.97, and which it could, by proof rather than by the failure of the methods tried.

The argument, for a cell of the grid with equal searches per person:

* the data sets are the per-person error counts; an interval worth the name does not depend on
  which person is which, so it is a function of the *pattern*, the sorted nonzero counts
  (``()`` for no error, ``(1,)`` for one error, ``(2,)`` or ``(1, 1)`` for two, ...). Each
  person's count is beta-binomial (binomial at ICC 0) and people are independent, so every
  pattern's probability is exact;
* a pattern whose probability exceeds ``1 - floor`` (0.07) in *some* cell of the grid with the
  same design and rate must be covered, or that cell falls below ``floor`` (0.93). More
  generally, the interval must keep every such cell at or above ``floor``; the lowest coverage
  of the target cell under those constraints is a 0–1 knapsack problem over the patterns
  (solved exactly with :func:`scipy.optimize.milp`);
* patterns with more than ``max_errors`` errors are counted as covered in the constraints and
  as not covered in the objective, and each rate is treated on its own (an interval need not
  hold the same pattern's rates as a contiguous range here). Both only *lower* the bound, so a
  bound above 0.97 is a proof that no such interval gets the cell into 0.93–0.97 while keeping
  every cell of that design and rate at or above 0.93.

With unequal searches per person the interval may depend on which person (with how many
searches) carries an error, so only the no-error pattern is used: when more than ``1 - floor``
of data sets show no error, the interval must cover there, and coverage is at least that share.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lfr_eval.simulation import ClusterDesign

#: The grid's intra-person correlations (``benchmarks/bench_stats_grid.py``): the cells an
#: interval must keep at or above the floor, for the same design and rate.
GRID_ICC: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5)
#: Patterns with up to this many errors are enumerated (the rest count as free).
MAX_ERRORS = 10


@dataclass(frozen=True)
class AttainableCoverage:
    """The lowest two-sided coverage any interval can have in one cell (see the module text).

    Attributes
    ----------
    design : ClusterDesign
    lowest : float
        Lowest coverage in [0, 1] of any interval that keeps every grid cell with the same
        design and rate at or above ``floor``. Above 0.97: the 0.93–0.97 band is out of reach
        for every such interval.
    no_errors : float
        Exact probability that a data set shows no error.
    forced : tuple of tuple of int
        Patterns (sorted nonzero per-person counts) that some cell of the same design and rate
        puts above ``1 - floor`` on its own, so every such interval covers the truth there.
    basis : str
        ``"patterns up to K errors"`` (equal searches per person) or ``"no errors only"``.
    floor : float
    """

    design: ClusterDesign
    lowest: float
    no_errors: float
    forced: tuple[tuple[int, ...], ...]
    basis: str
    floor: float


def person_error_pmf(searches: int, icc: float, rate: float, max_errors: int) -> np.ndarray:
    """P(a person has k errors), k = 0..max_errors: beta-binomial, binomial at ICC 0."""
    from scipy import stats  # imported here: ~1 s, and not every caller needs it

    k = np.arange(max_errors + 1)
    if icc == 0:
        return np.asarray(stats.binom.pmf(k, searches, rate))
    scale = (1 - icc) / icc
    return np.asarray(stats.betabinom.pmf(k, searches, rate * scale, (1 - rate) * scale))


def _partitions(n: int, largest: int) -> Iterator[tuple[int, ...]]:
    if n == 0:
        yield ()
        return
    for k in range(min(n, largest), 0, -1):
        for rest in _partitions(n - k, k):
            yield (k, *rest)


def pattern_probabilities(
    people: int, searches: int, icc: float, rate: float, max_errors: int = MAX_ERRORS
) -> dict[tuple[int, ...], float]:
    """Exact probability of every pattern with at most ``max_errors`` errors, equal searches."""
    q = person_error_pmf(searches, icc, rate, max_errors)
    log_q = np.log(np.maximum(q, 1e-300))
    out: dict[tuple[int, ...], float] = {}
    for total in range(max_errors + 1):
        for pattern in _partitions(total, min(total, searches)):
            carriers = len(pattern)
            if carriers > people:
                continue
            counts: np.ndarray = np.bincount(np.asarray(pattern, dtype=np.int64), minlength=1)
            # people choose which carries which count: s! / ((s - c)! prod(multiplicity!))
            log_ways = (
                math.lgamma(people + 1)
                - math.lgamma(people - carriers + 1)
                - sum(math.lgamma(int(c) + 1) for c in counts[1:])
            )
            log_p = log_ways + sum(log_q[k] for k in pattern) + (people - carriers) * log_q[0]
            out[pattern] = math.exp(log_p)
    return out


def _no_error_probability_unequal(design: ClusterDesign) -> float:
    """P(no error) when searches per person are ``1 + Poisson(Gamma(2, (m - 1) / 2))``
    (:func:`lfr_eval.simulation.draw_trials`): ``(E_n[P(0 errors | n)])^people``."""
    from scipy import stats

    m = design.searches_per_person
    # 1 + negative binomial: Poisson with a Gamma(shape 2, scale (m - 1) / 2) mean
    shape, scale = 2.0, (m - 1) / 2.0
    extra = np.arange(int(stats.nbinom.ppf(1 - 1e-12, shape, 1 / (1 + scale))) + 1)
    weight = stats.nbinom.pmf(extra, shape, 1 / (1 + scale))
    n = 1 + extra
    if design.icc == 0:
        zero = (1 - design.rate) ** n
    else:
        s = (1 - design.icc) / design.icc
        zero = stats.betabinom.pmf(0, n, design.rate * s, (1 - design.rate) * s)
    return float(np.sum(weight * zero) / np.sum(weight)) ** design.n_people


def lowest_attainable_coverage(
    design: ClusterDesign,
    *,
    floor: float = 0.93,
    iccs: tuple[float, ...] = GRID_ICC,
    max_errors: int = MAX_ERRORS,
) -> AttainableCoverage:
    """The lowest two-sided coverage of any interval in ``design``'s cell that keeps every
    cell with the same people, searches and rate (correlations ``iccs``) at >= ``floor``.

    Parameters
    ----------
    design : ClusterDesign
        The target cell.
    floor : float
        Coverage every constraining cell keeps, in (0, 1).
    iccs : tuple of float
        Correlations of the constraining cells (the target's own is added). With one search
        per person the correlation cannot be seen, so only ICC 0 constrains.
    max_errors : int
        Patterns with more errors are free (see the module text: this only lowers the bound).

    Returns
    -------
    AttainableCoverage

    Examples
    --------
    >>> r = lowest_attainable_coverage(ClusterDesign(100, 10, 0.0, 1e-4))
    >>> round(r.no_errors, 3), round(r.lowest, 3)
    (0.905, 0.995)
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    if not 0 < floor < 1:
        raise ValueError(f"floor must be in (0, 1), got {floor}")
    if design.unequal and design.searches_per_person > 1:
        p0 = _no_error_probability_unequal(design)
        forced: tuple[tuple[int, ...], ...] = ((),) if p0 > 1 - floor else ()
        return AttainableCoverage(
            design, p0 if forced else 0.0, p0, forced, "no errors only", floor
        )
    m = int(round(design.searches_per_person))
    constraining = (0.0,) if m == 1 else tuple(sorted({*iccs, design.icc}))
    probs = {
        icc: pattern_probabilities(design.n_people, m, icc, design.rate, max_errors)
        for icc in constraining
    }
    patterns = sorted(set().union(*probs.values()), key=lambda p: (sum(p), p))
    a = np.array([[probs[icc].get(p, 0.0) for p in patterns] for icc in constraining])
    free = 1.0 - a.sum(axis=1)  # beyond max_errors: counted as covered in the constraints
    target = a[constraining.index(design.icc)]
    result = milp(
        c=target,
        constraints=LinearConstraint(a, lb=floor - free, ub=np.inf),
        integrality=np.ones(len(patterns)),
        bounds=Bounds(0, 1),
    )
    if not result.success:  # pragma: no cover - covering every pattern is always feasible
        raise RuntimeError(f"knapsack for {design} failed: {result.message}")
    forced = tuple(p for j, p in enumerate(patterns) if a[:, j].max() > 1 - floor)
    return AttainableCoverage(
        design,
        float(result.fun),
        probs[design.icc][()],
        forced,
        f"patterns up to {max_errors} errors",
        floor,
    )
