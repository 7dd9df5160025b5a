"""The lowest two-sided coverage any interval can reach in the simulation grid's cells.

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
That step assumes the interval's answer at no error (does it hold this rate?) is the same
whatever the searches per person. The searches are drawn afresh with each data set, so an
interval whose no-error answer depends on them (the default's no-error bound does, through
Kish's effective number of people) can cover at some no-error data sets and not at others,
like a randomised interval, and reach coverages in between. So with unequal searches "proved
out of reach" holds for intervals whose no-error answer at the rate does not depend on the
searches per person, not for every interval.

**The joint bound** (:func:`joint_attainable`, equal searches per person). The knapsack above
treats each cell on its own and each rate on its own. The joint bound asks the question of the
acceptance directly: for one design (people × searches per person), what is the largest number
of its grid cells (rates × correlations) that *one* interval can put in 0.93–0.97 at once,
while keeping every cell of the design at or above 0.93? A non-randomised interval that is a
function of the pattern (and of the design) is a 0–1 table ``x[p, r]``: does the interval at
pattern ``p`` hold grid rate ``r``? Cell ``(r, rho)``'s coverage is ``sum_p P_rho,r(p) x[p,
r]``, exact. (A randomised interval, holding a rate at a pattern with some probability, can
reach any coverage in between; it is not bounded here.) A mixed-integer programme
(:func:`scipy.optimize.milp`, HiGHS) maximises the number of in-band indicators ``z_c``
(``coverage_c <= 0.97`` when ``z_c = 1``, a big-M of 0.03) under:

* every cell >= ``floor`` (0.93);
* **contiguity** across rates: an interval that holds ``r_a < r_c`` holds every grid rate between
  (``x[p, b] >= x[p, a] + x[p, c] - 1``). Every interval has this property, so it excludes no
  interval; it is what couples the rates.

By default no monotonicity in the errors is imposed: the workbench's own interval is not exactly
monotone (its t factor with 1–2 people carrying the errors), so a bound for monotone intervals
only would not bound it. ``monotone=True`` adds it (ends that never fall when an error is added:
for ``r_i < r_j``, if the pattern with one error more holds ``r_i`` and the pattern holds
``r_j``, both hold both) and then bounds monotone intervals only. Everything else left out only
*relaxes* the programme, so the optimum stays an upper bound:

* patterns not enumerated (more than ``max_total`` = 30 errors *and* more than
  ``max_carriers`` = 3 people with errors) and entries below ``min_probability`` (1e-5 in every
  cell of that rate) are **free in both directions**: each cell gets its own continuous share
  ``y_c`` in ``[0, free_c]``, where ``free_c`` is that cell's exact probability of what was
  left out (reported per cell). A cell with ``free_c >= 0.97`` is unconstrained and counts as
  in band: the bound says nothing there (cells with hundreds of expected errors);
* entries below ``integer_probability`` (1e-4) are fractions in [0, 1], not 0 or 1;
* the reported maximum is HiGHS's *dual* bound rounded down, not the incumbent's value, so it is
  an upper bound even if the search stopped early; a cell is proved out of reach when the dual
  bound on its lowest coverage (the same constraints, its coverage minimised) exceeds 0.97.
  Each cell's lowest coverage is computed first and a cell above 0.97 gets ``z_c = 0`` (implied
  by the constraints; the big-M relaxation alone is weak and slow).

K (``max_total``, ``max_carriers``) was chosen from the left-out mass (the per-cell ``free``
column of ``benchmarks/results/attainable_joint.csv``): with 30 errors or 3 people every
constrained grid cell with fewer than 5 expected errors leaves out less than 0.004, and with
fewer than 20 at most 0.06 (49 of those 70 cells less than 1e-3); cells with more expected errors
can leave out much more (up to 0.96), and the bound says little there. Raising K grows the
patterns (and the programme) fast: 30 errors with 10 searches per person is already 20,000.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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
        options={"mip_rel_gap": 1e-7},
    )
    if not result.success:  # pragma: no cover - covering every pattern is always feasible
        raise RuntimeError(f"knapsack for {design} failed: {result.message}")
    # the dual bound, not the incumbent: a proof needs a lower bound on the minimum
    dual = getattr(result, "mip_dual_bound", None)
    lowest = float(result.fun if dual is None or not np.isfinite(dual) else min(dual, result.fun))
    forced = tuple(p for j, p in enumerate(patterns) if a[:, j].max() > 1 - floor)
    return AttainableCoverage(
        design,
        lowest,
        probs[design.icc][()],
        forced,
        f"patterns up to {max_errors} errors",
        floor,
    )


#: The grid's rates (``benchmarks/bench_stats_grid.py``).
GRID_RATES: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 0.1, 0.3)
#: The acceptance band of two-sided 95% coverage (issue 9).
BAND: tuple[float, float] = (0.93, 0.97)
#: Enumerated patterns: every pattern with at most this many errors ...
MAX_TOTAL = 30
#: ... and every pattern with at most this many people with errors (any counts).
MAX_CARRIERS = 3
#: Patterns below this probability in every cell of the design are left free.
MIN_PROBABILITY = 1e-9
#: Cells whose left-out probability is at least ``BAND[1] - BAND[0]`` are never constrained.


@dataclass(frozen=True)
class PatternSet:
    """The enumerated patterns of one design with their exact probabilities in its cells.

    Attributes
    ----------
    people, searches : int
    cells : tuple of (rate, icc)
    patterns : numpy.ndarray
        (patterns, width) int: each row the sorted nonzero per-person counts, zero-padded.
    probabilities : numpy.ndarray
        (cells, patterns): exact probability of each pattern in each cell.
    free : numpy.ndarray
        (cells,): probability of the patterns left out (free in both directions).
    """

    people: int
    searches: int
    cells: tuple[tuple[float, float], ...]
    patterns: np.ndarray
    probabilities: np.ndarray
    free: np.ndarray

    def errors(self, columns: np.ndarray | None = None) -> np.ndarray:
        """Per-person errors (people, patterns) of a data set with each pattern."""
        a = self.patterns if columns is None else self.patterns[columns]
        out = np.zeros((self.people, a.shape[0]), np.int64)
        width = min(a.shape[1], self.people)
        out[:width] = a[:, :width].T
        return out


def _total_partitions(max_total: int, largest: int, max_parts: int) -> list[tuple[int, ...]]:
    """Every partition of 0..max_total with parts <= largest and at most max_parts parts."""
    out: list[tuple[int, ...]] = []
    current: list[int] = []

    def extend(total: int, top: int) -> None:
        out.append(tuple(current))
        if len(current) >= max_parts:
            return
        for k in range(min(max_total - total, top), 0, -1):
            current.append(k)
            extend(total + k, k)
            current.pop()

    extend(0, largest)
    return out


def enumerate_patterns(
    people: int,
    searches: int,
    cells: tuple[tuple[float, float], ...],
    *,
    max_total: int = MAX_TOTAL,
    max_carriers: int = MAX_CARRIERS,
    min_probability: float = MIN_PROBABILITY,
) -> PatternSet:
    """Patterns with at most ``max_total`` errors or at most ``max_carriers`` people with
    errors, kept where some cell gives them at least ``min_probability``; exact
    probabilities (beta-binomial per person, binomial at ICC 0) in each ``(rate, icc)`` cell."""
    from itertools import combinations_with_replacement

    from scipy.special import gammaln

    if people < 1 or searches < 1:
        raise ValueError("a design needs at least one person and one search per person")
    found = set(_total_partitions(max_total, searches, people))
    for c in range(1, min(max_carriers, people) + 1):
        found.update(combinations_with_replacement(range(searches, 0, -1), c))
    ordered = sorted(found, key=lambda p: (sum(p), p))
    width = max(1, max(len(p) for p in ordered))
    a = np.zeros((len(ordered), width), np.int64)
    for i, p in enumerate(ordered):
        a[i, : len(p)] = p
    carriers = np.count_nonzero(a, axis=1)
    # cell-independent part: people choose who carries which count
    log_fact = gammaln(np.arange(people + 2, dtype=np.float64) + 1)
    multiplicity = np.zeros(len(a))
    rows = np.arange(len(a))
    for start in range(0, len(a), 20_000):
        block = a[start : start + 20_000]
        n = np.zeros((len(block), searches + 1), np.int64)
        np.add.at(n, (np.repeat(rows[: len(block)], width), block.ravel()), 1)
        multiplicity[start : start + len(block)] = log_fact[n[:, 1:]].sum(axis=1)
    log_ways = log_fact[people] - log_fact[people - carriers] - multiplicity
    probs = np.empty((len(cells), len(a)))
    for j, (rate, icc) in enumerate(cells):
        q = person_error_pmf(searches, icc, rate, searches)
        log_q = np.log(np.maximum(q, 1e-300))
        log_q_nz = np.concatenate([[0.0], log_q[1:]])
        probs[j] = np.exp(log_ways + log_q_nz[a].sum(axis=1) + (people - carriers) * log_q[0])
    keep = probs.max(axis=0) >= min_probability
    probs = probs[:, keep]
    free = np.clip(1.0 - probs.sum(axis=1), 0.0, 1.0)
    a = a[keep]
    a = a[:, : max(1, int(np.count_nonzero(a, axis=1).max(initial=0)))]
    return PatternSet(people, searches, tuple(cells), a, probs, free)


def design_cells(
    searches: int, rates: tuple[float, ...] = GRID_RATES, iccs: tuple[float, ...] = GRID_ICC
) -> tuple[tuple[float, float], ...]:
    """The grid cells ``(rate, icc)`` of a design; with one search per person only ICC 0."""
    return tuple((r, i) for r in rates for i in ((0.0,) if searches == 1 else iccs))


def interval_table(
    ps: PatternSet, rates: tuple[float, ...], method: str = "design-effect-jeffreys"
) -> np.ndarray:
    """(patterns, rates) bool: does ``method``'s two-sided 95% interval (a key of
    :data:`lfr_eval.simulation.INTERVALS`) at each pattern hold each rate."""
    from lfr_eval.simulation import INTERVALS

    interval = INTERVALS[method]
    trials = np.full(ps.people, ps.searches, np.int64)
    out = np.zeros((len(ps.patterns), len(rates)), bool)
    step = max(1, 4_000_000 // ps.people)
    for start in range(0, len(ps.patterns), step):
        cols = np.arange(start, min(start + step, len(ps.patterns)))
        low, high = interval(ps.errors(cols), trials, 0.95, "two-sided")
        r = np.asarray(rates)[None, :]
        out[cols] = (low[:, None] <= r) & (r <= high[:, None])
    return out


@dataclass(frozen=True)
class JointBound:
    """How many of one design's grid cells any interval can put in the band at once.

    Attributes
    ----------
    patterns : PatternSet
    rates : tuple of float
    max_in_band : int
        Upper bound (HiGHS dual bound, rounded down) on the number of cells that any
        non-randomised interval, a function of the pattern, puts in the band while keeping
        every cell >= the floor (a randomised one, covering at a pattern with some
        probability, can reach any coverage in between and is not bounded here).
    covers : numpy.ndarray
        (patterns, rates) bool: the interval found (which grid rates it holds at each
        pattern): the programme's optimum, its fractional entries (``integer_probability``)
        rounded.
    coverage : numpy.ndarray
        (cells,) that table's exact coverage over the enumerated patterns; its true coverage
        lies in ``[coverage, coverage + free]``. NaN for unconstrained cells.
    in_band : numpy.ndarray
        (cells,) bool: cells that table can have in band (``[coverage, coverage + free]``
        meets the band; unconstrained cells count).
    attained : int
        ``in_band.sum()``: equal to ``max_in_band`` when the optimum is integral; rounding
        fractional entries can lose cells (the bound is unaffected).
    keeps_floor : bool
        Whether that table keeps every cell's ``coverage + free`` at or above the floor.
    lowest : numpy.ndarray
        (cells,) lower bound (dual bound) on each cell's coverage over every interval that
        keeps every cell >= the floor; > ``band[1]``: proved out of reach (0 for a cell
        left unconstrained).
    free : numpy.ndarray
        (cells,) probability left free in each cell (patterns not enumerated and entries
        below ``min_probability``): the most by which the bound can be loose there. Cells
        with ``free >= band[1]`` are unconstrained and count as in band.
    lp_max_in_band : float
        The LP relaxation's optimum (>= ``max_in_band``), for checking.
    band : tuple of float
    contiguous, monotone : bool
        The constraints used (see :func:`joint_attainable`).
    """

    patterns: PatternSet
    rates: tuple[float, ...]
    max_in_band: int
    attained: int
    in_band: np.ndarray
    coverage: np.ndarray
    covers: np.ndarray
    keeps_floor: bool
    lowest: np.ndarray
    free: np.ndarray
    lp_max_in_band: float
    band: tuple[float, float]
    contiguous: bool
    monotone: bool

    @property
    def out_of_reach(self) -> np.ndarray:
        """(cells,) bool: proved out of reach of the band for every such interval."""
        return np.asarray(self.lowest > self.band[1])


@dataclass(frozen=True)
class _Programme:
    """The mixed-integer programme of one design (see :func:`joint_attainable`)."""

    matrix: Any  # scipy.sparse matrix of every row
    lb: np.ndarray
    ub: np.ndarray
    pairs: np.ndarray  # (variables, 2): pattern, rate index of each x
    cells: np.ndarray  # indices of the constrained cells
    free: np.ndarray  # (constrained cells,) left-out probability
    cost: np.ndarray  # (constrained cells, x variables): each cell's coverage coefficients
    integer: np.ndarray  # (x variables,) bool: binary; the rest are relaxed to [0, 1]

    @property
    def n_x(self) -> int:
        return len(self.pairs)

    @property
    def n_var(self) -> int:
        return self.n_x + 2 * len(self.cells)


def _programme(
    ps: PatternSet,
    rates: tuple[float, ...],
    band: tuple[float, float],
    contiguous: bool,
    min_probability: float,
    integer_probability: float,
    monotone: bool = False,
) -> _Programme:
    """Variables ``x`` (one per pattern and rate that some constrained cell gives at least
    ``min_probability``), then ``z`` and ``y`` per constrained cell. A cell whose left-out
    probability is at least ``band[1]`` is always in band (its ``y`` fills any gap), so it is
    left out; every entry not a variable is left out of its cell (added to ``free``)."""
    from itertools import combinations

    from scipy import sparse

    rate_of = np.array([rates.index(r) for r, _ in ps.cells])
    probs = ps.probabilities
    wanted = np.zeros((len(rates), len(ps.patterns)), bool)
    for j in range(len(ps.cells)):
        wanted[rate_of[j]] |= probs[j] >= min_probability
    kept_cells = [
        j for j in range(len(ps.cells)) if 1.0 - probs[j, wanted[rate_of[j]]].sum() < band[1]
    ]
    cells = np.asarray(kept_cells, np.int64)
    pair_r, pair_p = np.nonzero(wanted)
    order = np.lexsort((pair_r, pair_p))  # by pattern, then rate
    pairs = np.stack([pair_p[order], pair_r[order]], axis=1)
    n_x, n_c = len(pairs), len(cells)
    n_var = n_x + 2 * n_c
    cost = np.zeros((n_c, n_x))
    for k, j in enumerate(cells):
        at = pairs[:, 1] == rate_of[j]
        cost[k, at] = probs[j, pairs[at, 0]]
    free = np.clip(1.0 - cost.sum(axis=1), 0.0, 1.0)
    integer = cost.max(axis=0, initial=0.0) >= integer_probability
    eye = sparse.identity(n_c, format="csr")
    none = sparse.csr_matrix((n_c, n_c))
    cover = sparse.csr_matrix(cost)
    blocks = [
        sparse.hstack([cover, none, eye]),  # coverage >= floor
        sparse.hstack([cover, (1.0 - band[1]) * eye, eye]),  # coverage + (1 - ceiling) z <= 1
    ]
    lb = [np.full(n_c, band[0]), np.full(n_c, -np.inf)]
    ub = [np.full(n_c, np.inf), np.full(n_c, 1.0 + 1e-9)]
    if contiguous:
        rows, cols, vals = [], [], []
        row = 0
        starts = np.searchsorted(pairs[:, 0], np.arange(len(ps.patterns) + 1))
        for p in range(len(ps.patterns)):
            idx = range(starts[p], starts[p + 1])  # this pattern's variables, by rate
            for a, b, c in combinations(idx, 3):
                rows += [row, row, row]
                cols += [a, b, c]
                vals += [1.0, -1.0, 1.0]
                row += 1
        if row:
            blocks.append(sparse.csr_matrix((vals, (rows, cols)), shape=(row, n_var)))
            lb.append(np.full(row, -np.inf))
            ub.append(np.ones(row))
    if monotone:
        rows, cols, vals = [], [], []
        row = 0
        starts = np.searchsorted(pairs[:, 0], np.arange(len(ps.patterns) + 1))
        var_at = [
            dict(
                zip(
                    pairs[starts[p] : starts[p + 1], 1].tolist(),
                    range(starts[p], starts[p + 1]),
                    strict=True,
                )
            )
            for p in range(len(ps.patterns))
        ]
        index = {tuple(int(v) for v in r if v): p for p, r in enumerate(ps.patterns)}
        for p, pattern in enumerate(index):
            if len(var_at[p]) < 2:
                continue
            for q in _one_more_error(pattern, ps.searches, ps.people):
                nxt = index.get(q)
                if nxt is None:
                    continue
                common = sorted(set(var_at[p]) & set(var_at[nxt]))
                # i < j, p holds j and q (one error more) holds i: both hold i and j
                for i, j in combinations(common, 2):
                    for held in (var_at[p][i], var_at[nxt][j]):
                        rows += [row, row, row]
                        cols += [var_at[nxt][i], var_at[p][j], held]
                        vals += [1.0, 1.0, -1.0]
                        row += 1
        if row:
            blocks.append(sparse.csr_matrix((vals, (rows, cols)), shape=(row, n_var)))
            lb.append(np.full(row, -np.inf))
            ub.append(np.ones(row))
    return _Programme(
        sparse.vstack(blocks, format="csr"),
        np.concatenate(lb),
        np.concatenate(ub),
        pairs,
        cells,
        free,
        cost,
        integer,
    )


def _one_more_error(pattern: tuple[int, ...], searches: int, people: int) -> list[tuple[int, ...]]:
    """The patterns with one error more: one person's count up by one, or one more person."""
    out = []
    for i, k in enumerate(pattern):
        if (i == 0 or pattern[i - 1] != k) and k < searches:  # first of its count: stays sorted
            out.append((*pattern[:i], k + 1, *pattern[i + 1 :]))
    if len(pattern) < people:
        out.append((*pattern, 1))
    return out


def _fill(pairs: np.ndarray, x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(patterns, rates) table from the variables; rates that are no variable of a pattern
    are held where they lie between rates it holds (what contiguity allows at no cost)."""
    table = np.zeros(shape, bool)
    table[pairs[:, 0], pairs[:, 1]] = np.round(x).astype(bool)
    held = np.nonzero(table.any(axis=1))[0]
    for p in held:
        on = np.nonzero(table[p])[0]
        gap = ~_is_variable(pairs, int(p), shape[1])
        table[p, on[0] : on[-1] + 1] |= gap[on[0] : on[-1] + 1]
    return table


def _is_variable(pairs: np.ndarray, p: int, n_rates: int) -> np.ndarray:
    out = np.zeros(n_rates, bool)
    out[pairs[pairs[:, 0] == p, 1]] = True
    return out


def joint_attainable(
    people: int,
    searches: int,
    *,
    rates: tuple[float, ...] = GRID_RATES,
    iccs: tuple[float, ...] = GRID_ICC,
    band: tuple[float, float] = BAND,
    contiguous: bool = True,
    monotone: bool = False,
    reference: str | np.ndarray | None = "design-effect-jeffreys",
    patterns: PatternSet | None = None,
    min_probability: float = 1e-5,
    integer_probability: float = 1e-4,
    time_limit: float = 120.0,
) -> JointBound:
    """The most cells of one design (``people`` × ``searches`` equal searches per person;
    cells ``rates`` × ``iccs``) that any interval can put in ``band`` at once, keeping every
    cell >= ``band[0]`` (see the module text).

    Parameters
    ----------
    monotone : bool
        Only intervals whose ends do not fall when an error is added (one person's count up
        by one, or one more person with an error): for grid rates ``r_i < r_j``, if the
        pattern with one error more holds ``r_i`` and the pattern holds ``r_j``, both hold
        both. This *restricts* the intervals (the default is not exactly monotone), so the
        result bounds monotone intervals only; off by default.
    reference : str, array or None
        Among the optimal intervals, the one closest to this interval (a method of
        :data:`lfr_eval.simulation.INTERVALS`, or a (patterns, rates) bool table) is reported,
        so ``covers`` shows what would have to change (fewest patterns × rates flipped).
    patterns : PatternSet, optional
        Enumerated patterns (default :func:`enumerate_patterns` of the design's cells).
    min_probability : float
        A pattern's entry at a rate is a variable where some cell at that rate gives the
        pattern at least this probability; smaller entries are left free (in ``free``).
    integer_probability : float
        Entries below this probability in every cell are relaxed to fractions in [0, 1]
        (an interval holds a rate at a pattern or not; a fraction only widens the choice,
        so the bound stays valid and the programme is much faster).

    Returns
    -------
    JointBound
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    floor, ceiling = band
    if not 0 < floor < ceiling < 1:
        raise ValueError(f"band must satisfy 0 < low < high < 1, got {band}")
    rates = tuple(sorted(rates))
    ps = patterns or enumerate_patterns(people, searches, design_cells(searches, rates, iccs))
    if any(r not in rates for r, _ in ps.cells):
        raise ValueError("every cell's rate must be one of rates")
    prog = _programme(ps, rates, band, contiguous, min_probability, integer_probability, monotone)
    n_x, n_c, n_var = prog.n_x, len(prog.cells), prog.n_var
    upper = np.ones(n_var)
    upper[n_x + n_c :] = prog.free
    integrality = np.ones(n_var)
    integrality[:n_x] = prog.integer
    integrality[n_x + n_c :] = 0
    bounds = Bounds(np.zeros(n_var), upper)

    def solve(
        cost: np.ndarray, extra: list[LinearConstraint], integer: bool = True, gap: float = 1e-6
    ) -> Any:
        res = milp(
            cost,
            constraints=[LinearConstraint(prog.matrix, prog.lb, prog.ub), *extra],
            integrality=integrality if integer else np.zeros(n_var),
            bounds=bounds,
            options={"time_limit": time_limit, "mip_rel_gap": gap},
        )
        if res.x is None:  # pragma: no cover - covering every pattern is always feasible
            raise RuntimeError(f"programme for {people} x {searches} failed: {res.message}")
        return res

    def dual(res: Any) -> float:
        bound = getattr(res, "mip_dual_bound", None)
        return float(res.fun if bound is None or not np.isfinite(bound) else bound)

    # each cell's lowest coverage first: a cell that cannot reach the band has z = 0, which
    # the count programme then need not find out (its big-M relaxation is weak)
    low = np.zeros(len(ps.cells))
    for k, j in enumerate(prog.cells):
        cost = np.zeros(n_var)
        cost[:n_x] = prog.cost[k]
        cost[n_x + n_c + k] = 1.0
        low[j] = dual(solve(cost, [], gap=1e-4))
    upper[n_x : n_x + n_c] = low[prog.cells] <= ceiling
    bounds = Bounds(np.zeros(n_var), upper)
    count = np.zeros(n_var)
    count[n_x : n_x + n_c] = -1.0
    first = solve(count, [], gap=0.5 / (n_c + 1))  # stop once less than one cell apart
    n_free = len(ps.cells) - n_c  # cells always in band
    best = n_free + int(math.floor(-dual(first) + 1e-6))
    lp = solve(count, [], integer=False)
    x = first.x
    if reference is not None and n_x:
        ref = interval_table(ps, rates, reference) if isinstance(reference, str) else reference
        ref_x = np.asarray(ref, bool)[prog.pairs[:, 0], prog.pairs[:, 1]]
        flips = np.zeros(n_var)
        flips[:n_x] = np.where(ref_x, -1.0, 1.0)
        keep_count = LinearConstraint(-count[None, :], lb=round(-first.fun) - 1e-6, ub=np.inf)
        second = solve(flips, [keep_count], gap=1e-3)
        if second.x is not None:
            x = second.x
    rounded = np.round(x[:n_x])
    table = _fill(prog.pairs, rounded, (len(ps.patterns), len(rates)))
    enumerated = prog.cost @ rounded
    reaches = enumerated + prog.free >= floor - 1e-9
    in_band = np.ones(len(ps.cells), bool)
    in_band[prog.cells] = (enumerated <= ceiling + 1e-9) & reaches
    coverage = np.full(len(ps.cells), np.nan)
    coverage[prog.cells] = enumerated
    free = np.ones(len(ps.cells))
    free[prog.cells] = prog.free
    return JointBound(
        ps,
        rates,
        best,
        int(in_band.sum()),
        in_band,
        coverage,
        table,
        bool(reaches.all()),
        low,
        free,
        n_free - float(lp.fun),
        band,
        contiguous,
        monotone,
    )
