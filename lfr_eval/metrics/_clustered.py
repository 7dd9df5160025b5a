"""Intervals for error rates when searches cluster by person: the design-effect Clopper–Pearson.

Repeat passes of one person are not independent: a person who draws false matches tends to draw
them again. Treating n searches of s people as n independent trials makes intervals too short
(the NPL design has about 400 people × 10 passes). The exact interval of the workbench (its
one-sided bounds and claim verdicts; the two-sided default is below) is the
**Korn–Graubard design-effect Clopper–Pearson interval** (Korn & Graubard 1998, "Confidence
intervals for proportions with small expected number of positive counts estimated from survey
data", *Survey Methodology* 24; the ``method="beta"`` interval of R's ``survey::svyciprop``):

1. the rate is the ratio estimator ``p = sum(e_i) / sum(n_i)`` over people i with ``e_i``
   errors in ``n_i`` searches;
2. its variance is the cluster-robust (linearisation) variance
   ``V = s / (s - 1) * sum_i (e_i - p n_i)^2 / (sum n_i)^2`` — it needs no model of how one
   person's searches correlate;
3. the design effect ``deff = V / (p (1 - p) / n)`` (``1 + (m - 1) ICC`` for m searches per
   person) gives the effective number of independent searches ``n_eff = n / deff``, truncated
   at n (a design effect below 1 is treated as 1, as Korn and Graubard recommend) and reduced
   by ``(z / t_{s-1})^2`` so that few people widen the interval as a t-statistic would;
4. the exact Clopper–Pearson interval is computed for ``p n_eff`` "errors" in ``n_eff`` trials
   (beta quantiles accept fractional counts).

With **no errors** at all the variance is 0 and says nothing; the bound is then counted by
people, not searches: ``n_eff = (sum n_i)^2 / sum n_i^2`` (Kish's effective number of people,
= s when everyone has the same number of searches), the design effect at the largest possible
intra-person correlation. The 95% upper bound is about ``3 / s`` (rule of three over people).
It is valid whatever the correlation: a person with rate ``p_i`` shows no error in ``n_i``
searches with probability at most ``1 - p_i``. The same holds, mirrored, when every search is
an error. An interval never has zero width.

**One-sided upper bounds: the envelope over fewer errors** (:func:`monotone_upper_bound`, label
:data:`KORN_GRAUBARD_MONOTONE`). Where one or two people carry the errors the degrees of
freedom are about 1 and the t factor shrinks ``n_eff`` about 25×, so the plain bound can *fall*
as errors are added (2,000 people × 10 searches, each error in another person: 0.0015 with none,
0.0023 with one, 0.0024 with two, 0.00073 with three), and a claim would be supported with five
false positives but not with one. Every one-sided upper bound (claims, worst cases) is therefore
the largest plain bound over a family of data sets with fewer errors, built from the people
with the most errors and the highest rates (see :func:`monotone_upper_bound`). It is never below
the plain bound, so its coverage can only rise. It is *nearly* monotone, not exactly: the
maximum over every data set with fewer errors would be, but is exponential; falls left are
measured in ``benchmarks/results/monotone_envelope.md``. What it needs beyond the sums above
(those people's counts and ``sum n_i^4``) is kept by :class:`ClusterSummary` and by the rates
tables of frames and aggregates; a summary without them (an aggregate written before) gives the
plain bound, labelled :data:`KORN_GRAUBARD_NOT_MONOTONE`.

**The cap counted by people** (:func:`capped_by_people`, since stop 25): every one-sided bound
is at most the exact bound of the same rate in ``n / M`` trials, ``M`` the most searches one
person has: people are independent and each rate lies in [0, 1], so the rate cannot vary more
than that, whatever the rates and whoever is searched most (with equal searches it is the
bound of a count of people). Where one or two people carry the errors the envelope took the
bound of those people alone with about 1 degree of freedom (one person of 520 with 12 of 33
searches: 0.476, "1 in 2.1", against a two-sided upper end of 0.035 on the same data); the cap
puts it at 0.14. A tighter cap at Kish's effective number of people failed where the people
searched most have the highest rates (coverage 0.77). The cap grows with the errors, so the
bound stays nearly monotone; its label says so (:data:`PEOPLE_CAP_SUFFIX`). Measured in
``benchmarks/RESULTS.md``.

**Two-sided Korn–Graubard within the interval counted by people** (since stop 31): the
two-sided (and lower) ``korn-graubard`` interval, by name and in the Bonferroni intervals of
groups "all at once" (:func:`lfr_eval.metrics.simultaneous_rate_bounds`), keeps both ends
within the Clopper–Pearson interval of the rate in the same ``n / M`` trials, and its lower end
at least ``errors * a_low / n`` (:func:`markov_floor`: Markov's inequality, valid for any
dependence). With one false positive in a group's 754 searches of 412 people its 97.5% interval
was [2e-247, 0.53]; the t factor of one degree of freedom is what made it so. Labels
:data:`PEOPLE_INTERVAL_SUFFIX` and :data:`MARKOV_FLOOR_SUFFIX` say where an end moved;
coverage on the same data sets before and after: ``benchmarks/results/kg_two_sided.md``.

The workbench's **default** two-sided interval for rates is the design-effect Jeffreys interval
(:func:`design_effect_jeffreys`): the same effective sample size with Jeffreys ends, and the
``(z / t)^2`` reduction applied at the upper end only to the between-person excess of the design
effect over 1 (the binomial part of the variance follows from the rate and needs no t quantile)
and not at all at the lower end, each where enough people carry the variance (3 / 5; with
fewer, the whole variance is reduced as above, except at the lower end where the data hold at
most 5 effective errors: no reduction there), the exact (Clopper–Pearson) interval at exactly
one observed error, both ends, and at both ends an effective number of searches never below
Kish's effective number of people (independent people cannot make the rate vary more than
people who each answer all their searches alike). Its one-sided bounds are the exact
Korn–Graubard ones, raised to the envelope as above.

Coverage of these intervals has been measured by seeded simulation with known truth across
people 20–2,000, searches per person 1–100, intra-person correlation 0–0.5 and rates
1e-4–0.3: see ``benchmarks/bench_stats_grid.py`` and :mod:`lfr_eval.simulation`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from lfr_eval.metrics._validation import MetricInputError, check_confidence, check_sided

#: Form of one end of a design-effect interval (see :func:`_ends`).
IntervalEnd = Literal["exact", "mid-p", "jeffreys"]
#: Degrees-of-freedom rule of the small-sample reduction of the effective sample size.
DfRule = Literal["people", "satterthwaite"]
#: What the small-sample ``(t / z)^2`` factor applies to (see :func:`design_effect_interval`).
SmallSample = Literal["variance", "excess", "none"]
SMALL_SAMPLE_RULES: tuple[str, ...] = ("variance", "excess", "none")
#: Fewest people carrying the variance (``df + 1``) for the "excess" / "none" rules; with fewer,
#: the whole variance gets the small-sample factor (calibrated on the simulation grid).
MIN_PEOPLE_FOR_EXCESS = 3.0

#: Method label of the design-effect interval (Korn & Graubard 1998).
KORN_GRAUBARD = "korn-graubard"
#: One-sided bounds are never above the bound counted by people (:func:`capped_by_people`:
#: the searches over the most searches one person has, a number of people valid for any rates).
ONE_SIDED_PEOPLE_CAP = True
#: Two-sided (and lower) Korn–Graubard intervals keep both ends within the interval counted by
#: people (:func:`capped_by_people`, since stop 31): with one or two people carrying the
#: errors the t factor otherwise put a Bonferroni interval at [2e-247, 0.53].
TWO_SIDED_PEOPLE_BOUND = True
#: What a one-sided bound lowered to that cap appends to its label.
PEOPLE_CAP_SUFFIX = ", at most the bound counted by people"
#: What a two-sided (or lower) Korn–Graubard interval with an end moved within the interval
#: counted by people appends to its label (:func:`capped_by_people`, since stop 31).
PEOPLE_INTERVAL_SUFFIX = ", within the interval counted by people"
#: What such an interval appends where its lower end was raised to the Markov floor
#: ``errors * a_low / searches``, valid whatever the clustering (:func:`markov_floor`).
MARKOV_FLOOR_SUFFIX = ", lower end at least errors x alpha / searches (Markov)"
#: Label where no search (or every search) is an error: the bound is counted by people.
KORN_GRAUBARD_NO_ERRORS = "korn-graubard (no errors: counted by people)"
KORN_GRAUBARD_ALL_ERRORS = "korn-graubard (all errors: counted by people)"
#: Label where only one person was searched: nothing is known about between-person spread.
KORN_GRAUBARD_ONE_PERSON = "korn-graubard (one person: n_eff = 1)"
#: Label of the one-sided bound raised to its envelope over data sets with fewer errors
#: (:func:`monotone_upper_bound`; nearly, not exactly, monotone in the errors: measured there).
KORN_GRAUBARD_MONOTONE = "korn-graubard, envelope over fewer errors (top people)"
#: Label of a one-sided bound from a summary without the top people's counts (an aggregate
#: written before they were recorded): the plain bound, which can fall when an error is added.
KORN_GRAUBARD_NOT_MONOTONE = (
    "korn-graubard (NOT monotone in errors: this summary keeps no per-person top counts)"
)
#: What a monotone upper end appends to another interval's label (and its "not" twin).
MONOTONE_SUFFIX = ", envelope over fewer errors (top people)"
NOT_MONOTONE_SUFFIX = " (upper end NOT monotone in errors: no per-person top counts)"
#: How many people of each ranking (most errors; highest rate) the envelope's family draws on
#: (:func:`monotone_upper_bound`). On the simulation grid's data sets
#: (``benchmarks/results/monotone_envelope.md``) the largest member of the top-by-errors family
#: was the data, no error or the top 1–2 people; without a cap it was higher in one cell only
#: (100 people × 100 searches at rate 0.3, by at most 0.2%).
MONOTONE_TOP_PEOPLE = 8


@dataclass(frozen=True)
class ClusteredRate:
    """A rate from clustered counts with its design effect and interval, at m thresholds.

    Attributes
    ----------
    errors : ndarray of int, shape (m,)
        Errors summed over people.
    trials : int
        Searches summed over people.
    n_subjects : int
        People (clusters).
    rate : ndarray of float, shape (m,)
        ``errors / trials``; NaN when there are no searches.
    variance : ndarray of float, shape (m,)
        Cluster-robust variance of ``rate`` (0 with one person or no errors).
    design_effect : ndarray of float, shape (m,)
        ``variance / (rate (1 - rate) / trials)``; NaN where the rate is 0 or 1.
    effective_trials : ndarray of float, shape (m,)
        The n of the binomial interval actually computed (after truncation, the
        small-sample t adjustment, or the count of people with no errors). Where the two ends
        use different small-sample rules (the default two-sided interval), the upper end's
        (the lower end's for ``sided="lower"``).
    ci_low, ci_high : ndarray of float, shape (m,)
        Interval ends in [0, 1].
    method : ndarray of str, shape (m,)
        Which variant made each interval (:data:`KORN_GRAUBARD` or one of its edge cases).
    confidence : float
    sided : str
    """

    errors: np.ndarray
    trials: int
    n_subjects: int
    rate: np.ndarray
    variance: np.ndarray
    design_effect: np.ndarray
    effective_trials: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    method: np.ndarray
    confidence: float
    sided: str


def _tails(confidence: float, sided: str) -> tuple[float, float]:
    alpha = 1.0 - check_confidence(confidence)
    check_sided(sided)
    if sided == "two-sided":
        return alpha / 2, alpha / 2
    if sided == "upper":
        return 0.0, alpha
    return alpha, 0.0


def fractional_clopper_pearson(
    errors: ArrayLike, trials: ArrayLike, a_low: float, a_high: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clopper–Pearson ends for possibly fractional counts (beta quantiles).

    ``a_low`` / ``a_high`` are the probabilities left below / above (0 means that end is
    0 / 1). ``errors == 0`` gives a lower end of 0 and ``errors == trials`` an upper end of 1.
    """
    from scipy import stats  # imported here: ~1 s, and not every caller needs it

    x = np.asarray(errors, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    x, n = np.broadcast_arrays(x, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = stats.beta.ppf(a_low, np.maximum(x, 1e-300), np.maximum(n - x + 1, 1e-300))
        high = stats.beta.ppf(1 - a_high, x + 1, np.maximum(n - x, 1e-300))
    low = np.where((x <= 0) | (a_low == 0.0), 0.0, low)
    high = np.where((x >= n) | (a_high == 0.0), 1.0, high)
    empty = n <= 0
    return np.where(empty, 0.0, low), np.where(empty, 1.0, high)


def cluster_robust_variance(
    errors: np.ndarray, trials: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ratio estimate and its cluster-robust (CR1) variance.

    Parameters
    ----------
    errors : ndarray, shape (s, m)
        Errors of each of s people at m thresholds (or m independent data sets).
    trials : ndarray, shape (s,) or (s, m)
        Searches of each person.

    Returns
    -------
    rate, variance : ndarray of shape (m,)
        ``sum e / sum n`` and ``s/(s-1) sum (e_i - rate n_i)^2 / (sum n)^2`` (0 when s < 2).
    """
    e = np.asarray(errors, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if n.ndim == 1:
        n = n[:, None]
    s = e.shape[0]
    total = n.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = e.sum(axis=0) / total
        resid = e - rate[None, :] * n
        factor = s / (s - 1) if s > 1 else 0.0
        variance = factor * np.einsum("ij,ij->j", resid, resid) / total**2
    return rate, variance


def effective_degrees_of_freedom(
    errors: np.ndarray, trials: np.ndarray, rate: np.ndarray
) -> np.ndarray:
    """Degrees of freedom of the cluster-robust variance, shape (m,): between 1 and s - 1.

    The variance is a sum of squared person residuals ``u_i = e_i - rate * n_i``; when a few
    people carry most of it (rare errors, strong clustering) it rests on those few, not on all
    s, and a t quantile with s - 1 degrees of freedom is far too optimistic. The effective
    number of people carrying it is ``q = (sum u^2)^2 / sum u^4`` (Kish's formula applied to
    the squared residuals; q = s when all contribute equally), and the degrees of freedom are
    ``q - 1`` (as ``s - 1`` for s equal contributions), between 1 and ``s - 1``. This choice
    was calibrated by the simulation grid (``benchmarks/bench_stats_grid.py``): with ``s - 1``
    one-sided coverage fell to 0.77 where a few people carry all errors; with ``q - 1`` it
    stays at or above 0.94; the price is conservative intervals with fewer than about 50
    people.
    """
    s = errors.shape[0]
    u2 = (errors - rate[None, :] * trials[:, None]) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        df = u2.sum(axis=0) ** 2 / (u2**2).sum(axis=0) - 1.0
    df = np.where(np.isfinite(df), df, s - 1.0)
    clipped: np.ndarray = np.clip(df, 1.0, max(s - 1.0, 1.0))
    return clipped


def korn_graubard(
    errors: ArrayLike,
    trials: ArrayLike,
    confidence: float = 0.95,
    *,
    sided: str = "two-sided",
) -> ClusteredRate:
    """Design-effect (Korn–Graubard) Clopper–Pearson interval from per-person counts.

    Parameters
    ----------
    errors : array_like of int, shape (s,) or (s, m)
        Errors of each person (at each of m thresholds).
    trials : array_like of int, shape (s,)
        Searches of each person (the same at every threshold); people with no searches are
        ignored.
    confidence : float
        Coverage in (0, 1).
    sided : {"two-sided", "upper", "lower"}
        ``"upper"``: a one-sided upper confidence bound (lower end 0), as a claim needs.

    Returns
    -------
    ClusteredRate

    Examples
    --------
    Thirty people with two searches and one error each: the rate is 0.5 and, unlike a
    bootstrap over people, the interval is not [0.5, 0.5].

    >>> r = korn_graubard([1] * 30, [2] * 30)
    >>> float(r.rate[0]), bool(r.ci_low[0] < 0.5 < r.ci_high[0])
    (0.5, True)

    No errors in 20 people × 50 searches: the bound is counted by people (about 3/20).

    >>> round(float(korn_graubard([0] * 20, [50] * 20, sided="upper").ci_high[0]), 3)
    0.139
    """
    return korn_graubard_from_summary(
        summarise_clusters(errors, trials), confidence, sided=sided
    )


@dataclass(frozen=True)
class ClusterSummary:
    """The sufficient statistics of the Korn–Graubard interval, at m thresholds.

    They hold nothing per person, so an aggregate result can keep them (``variance``,
    ``ci_df``, ``effective_people`` columns) and any later interval or claim check made from
    the aggregate is the same as one made from the full data.

    Attributes
    ----------
    errors : ndarray of float, shape (m,)
    trials : float
        Searches in all.
    n_subjects : int
        People with at least one search.
    variance : ndarray of float, shape (m,)
        Cluster-robust variance of the rate (:func:`cluster_robust_variance`).
    df : ndarray of float, shape (m,)
        Degrees of freedom (:func:`effective_degrees_of_freedom`); NaN with one person.
    effective_people : float
        Kish's effective number of people ``(sum n_i)^2 / sum n_i^2``.
    top_errors, top_trials : ndarray of float, shape (k, m), or None
        At each threshold, the errors and searches of the ``k <= MONOTONE_TOP_PEOPLE`` people
        with the most errors (ties: the higher rate ``e_i / n_i`` first), most first; a slot
        with no such person holds 0 and 0. What the bound monotone in the errors needs
        (:func:`monotone_upper_bound`); None where the summary was made without it (an
        aggregate written before it was recorded), and the one-sided bound then says it is
        not monotone.
    trials_fourth_moment : float or None
        ``sum n_i^4`` over all people (with ``effective_people``, what the variance and degrees
        of freedom of the data with only the top people's errors follow from); None as above.
    lowest_rate : ndarray of float, shape (m,), or None
        At each threshold, the lowest per-person rate ``min_i e_i / n_i`` over people with a
        search, in [0, 1] (0 wherever someone has no error). The floor of the scaled FPIR's
        envelope (:func:`lfr_eval.protocols._scaling._floor_envelope`): every person at this
        rate is a data set with fewer false matches than the data. None where the summary was
        made without it (a rates row written before it was recorded, or a summary built by
        hand); the scaled bound then says it has no floor, never silently.
    largest_trials : float or None
        The most searches one person has (the ``M`` of the bound counted by people,
        :func:`largest_searches_bound`); None where the summary was made without it (a rates
        row with neither ``searches_max`` nor a searches-per-person histogram): the bound then
        follows from ``trials_fourth_moment``, 1.6–3× above the true largest where searches
        per person vary.
    """

    errors: np.ndarray
    trials: float
    n_subjects: int
    variance: np.ndarray
    df: np.ndarray
    effective_people: float
    top_errors: np.ndarray | None = None
    top_trials: np.ndarray | None = None
    trials_fourth_moment: float | None = None
    lowest_rate: np.ndarray | None = None
    largest_trials: float | None = None

    @property
    def keeps_top_people(self) -> bool:
        """Whether it holds what the monotone bound needs (:func:`monotone_upper_bound`)."""
        return (
            self.top_errors is not None
            and self.top_trials is not None
            and self.trials_fourth_moment is not None
        )

    def column(self, t: int) -> ClusterSummary:
        """The one-threshold summary at column ``t``."""
        return self.columns(slice(t, t + 1))

    def columns(self, index: slice | np.ndarray) -> ClusterSummary:
        """The summary at the thresholds ``index`` selects (a slice or integer indices)."""
        return ClusterSummary(
            errors=np.atleast_1d(self.errors)[index],
            trials=self.trials,
            n_subjects=self.n_subjects,
            variance=np.atleast_1d(self.variance)[index],
            df=np.atleast_1d(self.df)[index],
            effective_people=self.effective_people,
            top_errors=None if self.top_errors is None else self.top_errors[:, index],
            top_trials=None if self.top_trials is None else self.top_trials[:, index],
            trials_fourth_moment=self.trials_fourth_moment,
            lowest_rate=None if self.lowest_rate is None else self.lowest_rate[index],
            largest_trials=self.largest_trials,
        )


def distinct_columns(*arrays: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the distinct threshold columns of ``arrays`` and each column's distinct one.

    Every array is (m,) or (r, m) over the same m thresholds (None is skipped). Two columns
    are the same when every array holds the same bytes there (so NaNs match, and 0.0 and -0.0
    do not: never a false match). Returns ``(keep, inverse)``: ``keep`` (d,) the first column
    of each distinct one, ascending; ``inverse`` (m,) with ``keep[inverse[t]]`` equal to
    column t. A function computed column by column is then ``f(columns(keep))[inverse]``.
    """
    rows = [np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in arrays if a is not None]
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    key = np.ascontiguousarray(np.concatenate(rows, axis=0).T)  # (m, r)
    if key.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    packed = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
    # np.unique orders by bytes; renumber by first appearance so ``keep`` ascends
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)


def _ranked(e: np.ndarray, n: np.ndarray, k: int, by: str) -> np.ndarray:
    """Indices of the ``k`` people ranked first at each threshold, shape (k, m), first first.

    ``by="errors"``: most errors, ties by the higher rate ``e / n``; ``by="rate"``: the
    highest rate, ties by more errors. ``n`` broadcasts against ``e`` ((s, 1) or (s, m)).
    Which people the envelope's family draws on changes only how tight it is, never its
    validity (each member is a data set with fewer errors), so float keys are enough.
    """
    s = e.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = e / np.where(n > 0, n, np.inf)
    if by == "errors":
        key = rate * 0.5  # errors are whole numbers and e / n <= 1
        key += e
    else:
        key = rate + 1e-9 * e / max(1.0, float(np.max(e)) if e.size else 1.0)
    del rate
    take = min(k, s)
    part = (
        np.argpartition(key, s - take, axis=0)[s - take :]
        if s > take
        else np.broadcast_to(np.arange(s)[:, None], (s, e.shape[1]))
    )
    part_key = np.take_along_axis(key, part, axis=0)
    out: np.ndarray = np.take_along_axis(
        part, np.argsort(-part_key, axis=0, kind="stable"), axis=0
    )
    return out


def _union_of_tops(e: np.ndarray, n: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(errors, searches), shape (2k, m): the top ``k`` by errors and the top ``k`` by rate at
    each threshold (a person in both once; empty slots and people without errors 0 / 0)."""
    m = e.shape[1]
    out_e = np.zeros((2 * k, m))
    out_n = np.zeros((2 * k, m))
    if e.shape[0] == 0:
        return out_e, out_n
    rows = np.concatenate([_ranked(e, n, k, "errors"), _ranked(e, n, k, "rate")], axis=0)
    rows = np.sort(rows, axis=0)
    repeat = np.zeros(rows.shape, dtype=bool)
    repeat[1:] = rows[1:] == rows[:-1]
    chosen_e = np.take_along_axis(e, rows, axis=0).astype(np.float64)
    nn = np.broadcast_to(n, e.shape)
    chosen_n = np.take_along_axis(nn, rows, axis=0).astype(np.float64)
    keep = (chosen_e > 0) & ~repeat
    out_e[: rows.shape[0]] = np.where(keep, chosen_e, 0.0)
    out_n[: rows.shape[0]] = np.where(keep, chosen_n, 0.0)
    return out_e, out_n


def top_people(
    errors: np.ndarray, trials: np.ndarray, k: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The people the envelope draws on at each threshold: the ``k`` with the most errors
    (ties: the higher rate) and the ``k`` with the highest rate (ties: more errors).

    Parameters
    ----------
    errors : ndarray, shape (s, m)
        Errors of each person at each threshold.
    trials : ndarray, shape (s,)
        Searches of each person (all > 0).
    k : int
        How many by each ranking (0: :data:`MONOTONE_TOP_PEOPLE`).

    Returns
    -------
    top_errors, top_trials : ndarray of float, shape (2k, m)
        Their errors and searches, in no particular order (the envelope ranks them itself); a
        person in both rankings appears once, and empty slots (and people without errors)
        hold 0 errors in 0 searches.
    """
    k = k or MONOTONE_TOP_PEOPLE
    e = np.asarray(errors)  # no float copy: this runs on blocks of up to millions of cells
    n = np.asarray(trials, dtype=np.float64)[:, None]
    return _union_of_tops(e, n, k)


def format_top_people(top_errors: np.ndarray, top_trials: np.ndarray) -> np.ndarray:
    """The top people of each threshold as text for a table cell, shape (m,).

    ``"5/10 3/10 1/9"``: errors / searches of each person with errors, most first (no person
    and no name: counts only); ``""`` where no one has an error. :func:`parse_top_people`
    reads it back.
    """
    e = np.asarray(top_errors, dtype=np.float64)
    n = np.asarray(top_trials, dtype=np.float64)
    cells = []
    for t in range(e.shape[1]):
        keep = e[:, t] > 0
        cells.append(
            " ".join(f"{int(a)}/{int(b)}" for a, b in zip(e[keep, t], n[keep, t], strict=True))
        )
    return np.array(cells, dtype=object)


def parse_top_people(cell: object, k: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Read one :func:`format_top_people` cell: (errors, searches), each shape (k, 1).

    An empty cell (read back from CSV as NaN) means no one has an error.

    Raises
    ------
    MetricInputError
        The cell is not of the form ``"e/n e/n ..."``.
    """
    k = k or 2 * MONOTONE_TOP_PEOPLE
    text = "" if cell is None or (isinstance(cell, float) and np.isnan(cell)) else str(cell)
    e = np.zeros((k, 1))
    n = np.zeros((k, 1))
    try:
        pairs = [tuple(int(v) for v in part.split("/")) for part in text.split()]
        if any(len(pair) != 2 for pair in pairs) or len(pairs) > k:
            raise ValueError(text)
    except ValueError:
        raise MetricInputError(
            f"top_people cell {text!r} is not of the form 'errors/searches ...' "
            f"(at most {k} people)"
        ) from None
    for i, (a, b) in enumerate(pairs):
        e[i, 0], n[i, 0] = a, b
    return e, n


def summary_of_row(row: Mapping[str, Any]) -> ClusterSummary | None:
    """The :class:`ClusterSummary` of one rates row (a frame's or an aggregate's), or None.

    The row has ``errors``, ``n_searches``, ``n_subjects``, ``rate_variance``,
    ``variance_df``, ``effective_people`` and, since the bound monotone in the errors,
    ``top_people`` (:func:`format_top_people`) and ``searches_fourth_moment``. None where the
    clustered statistics are missing (an aggregate written before they were recorded); without
    the last two the summary has no top people, and a one-sided bound from it says it is not
    monotone (:data:`KORN_GRAUBARD_NOT_MONOTONE`). A ``lowest_rate`` column, where a table
    has one, becomes :attr:`ClusterSummary.lowest_rate`; without it that stays None (the count
    bound does not use it; a scaled bound from such a summary says it has no floor).
    """
    try:
        values = [float(row[c]) for c in ("rate_variance", "variance_df", "effective_people")]
    except (KeyError, TypeError, ValueError):
        return None
    if not np.isfinite(values[0]) or not np.isfinite(values[2]):
        return None
    top_e = top_n = None
    fourth: float | None = None
    try:
        fourth = float(row["searches_fourth_moment"])
    except (KeyError, TypeError, ValueError):
        fourth = None
    if fourth is not None and np.isfinite(fourth):
        top_e, top_n = parse_top_people(row.get("top_people"))
    else:
        fourth = None
    lowest: np.ndarray | None = None
    try:
        floor = float(row["lowest_rate"])
    except (KeyError, TypeError, ValueError):
        floor = float("nan")
    if np.isfinite(floor):
        lowest = np.array([floor])
    return ClusterSummary(
        errors=np.array([float(row["errors"])]),
        trials=float(row["n_searches"]),
        n_subjects=int(row["n_subjects"]),
        variance=np.array([values[0]]),
        df=np.array([values[1]]),
        effective_people=values[2],
        top_errors=top_e,
        top_trials=top_n,
        trials_fourth_moment=fourth,
        lowest_rate=lowest,
        largest_trials=_largest_of_row(row),
    )


def _largest_of_row(row: Mapping[str, Any]) -> float | None:
    """The most searches one person has, from a rates row: its ``searches_max`` column (since
    stop 31), else the largest value of its searches-per-person histogram (kept since stop 27
    for the group test); None where it has neither, or a histogram that does not parse (the
    group test refuses that row with its own error)."""
    from lfr_eval.metrics._people_sums import parse_searches_histogram

    try:
        largest = float(row["searches_max"])
    except (KeyError, TypeError, ValueError):
        largest = float("nan")
    if np.isfinite(largest):
        return largest
    try:
        histogram = parse_searches_histogram(row.get("searches_histogram"))
    except ValueError:
        return None
    return None if histogram is None else float(histogram[0].max())


def merge_top_people(
    parts: list[tuple[np.ndarray, np.ndarray]], k: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_people` of disjoint sets of people from each set's own :func:`top_people`
    (each ranking's top ``k`` of the whole is among the sets' own)."""
    e = np.concatenate([p[0] for p in parts], axis=0)
    n = np.concatenate([p[1] for p in parts], axis=0)
    return _union_of_tops(e, n, k or MONOTONE_TOP_PEOPLE)


def summarise_clusters(errors: ArrayLike, trials: ArrayLike) -> ClusterSummary:
    """:class:`ClusterSummary` of per-person counts (errors (s,) or (s, m), trials (s,))."""
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim == 1:
        e = e[:, None]
    n = np.asarray(trials, dtype=np.float64).ravel()
    if e.ndim != 2 or e.shape[0] != n.shape[0]:
        raise MetricInputError(
            f"per-person errors must have shape (people, thresholds) matching trials "
            f"{n.shape}; got {e.shape}"
        )
    if np.any(e < 0) or np.any(e > n[:, None]) or np.any(n < 0):
        raise MetricInputError("per-person counts must satisfy 0 <= errors <= trials")
    keep = n > 0
    e, n = e[keep], n[keep]
    s = int(n.shape[0])
    m = e.shape[1]
    if s == 0:
        k = 2 * MONOTONE_TOP_PEOPLE
        return ClusterSummary(
            np.zeros(m), 0.0, 0, np.zeros(m), np.full(m, np.nan), 0.0,
            np.zeros((k, m)), np.zeros((k, m)), 0.0, np.zeros(m), 0.0,
        )
    rate, variance = cluster_robust_variance(e, n)
    df = effective_degrees_of_freedom(e, n, rate) if s > 1 else np.full(m, np.nan)
    total = float(n.sum())
    top_e, top_n = top_people(e, n)
    return ClusterSummary(
        errors=e.sum(axis=0),
        trials=total,
        n_subjects=s,
        variance=np.where(np.isfinite(variance), variance, 0.0),
        df=df,
        effective_people=total**2 / float((n**2).sum()),
        top_errors=top_e,
        top_trials=top_n,
        trials_fourth_moment=float((n**4).sum()),
        lowest_rate=(e / n[:, None]).min(axis=0),
        largest_trials=float(n.max()),
    )


def _ends(
    x: np.ndarray, n: np.ndarray, a_low: float, a_high: float, form: IntervalEnd
) -> tuple[np.ndarray, np.ndarray]:
    """Interval ends for ``x`` (fractional) "errors" in ``n`` (fractional) trials.

    ``"exact"``: Clopper–Pearson (beta quantiles of ``(x, n - x + 1)`` and ``(x + 1, n - x)``);
    ``"mid-p"``: quantiles of the equal mixture of those two betas (the mid-p interval, Lancaster
    1961; Berry & Armitage 1995); ``"jeffreys"``: quantiles of ``Beta(x + 1/2, n - x + 1/2)``
    (Brown, Cai & DasGupta 2001). With ``x = 0`` the lower end is 0, with ``x = n`` the upper
    end is 1, for every form.
    """
    from scipy import stats  # imported here: ~1 s, and not every caller needs it

    if form == "exact":
        return fractional_clopper_pearson(x, n, a_low, a_high)
    tiny = 1e-300
    with np.errstate(invalid="ignore", divide="ignore"):
        if form == "jeffreys":
            a, b = np.maximum(x + 0.5, tiny), np.maximum(n - x + 0.5, tiny)
            low = stats.beta.ppf(a_low, a, b)
            high = stats.beta.ppf(1 - a_high, a, b)
        elif form == "mid-p":
            first = (np.maximum(x, tiny), np.maximum(n - x + 1, tiny))
            second = (x + 1, np.maximum(n - x, tiny))

            def mixture_quantile(q: float) -> np.ndarray:
                # the mixture's quantile lies between its components' quantiles: bisect there
                lo = np.minimum(stats.beta.ppf(q, *first), stats.beta.ppf(q, *second))
                hi = np.maximum(stats.beta.ppf(q, *first), stats.beta.ppf(q, *second))
                for _ in range(48):
                    mid = 0.5 * (lo + hi)
                    cdf = 0.5 * (stats.beta.cdf(mid, *first) + stats.beta.cdf(mid, *second))
                    below = cdf < q
                    lo = np.where(below, mid, lo)
                    hi = np.where(below, hi, mid)
                out: np.ndarray = 0.5 * (lo + hi)
                return out

            low = mixture_quantile(a_low) if a_low > 0 else np.zeros_like(x)
            high = mixture_quantile(1 - a_high) if a_high > 0 else np.ones_like(x)
        else:
            raise MetricInputError(f"unknown interval end {form!r}")
    low = np.where((x <= 0) | (a_low == 0.0), 0.0, low)
    high = np.where((x >= n) | (a_high == 0.0), 1.0, high)
    empty = n <= 0
    return np.where(empty, 0.0, low), np.where(empty, 1.0, high)


def korn_graubard_from_summary(
    summary: ClusterSummary, confidence: float = 0.95, *, sided: str = "two-sided"
) -> ClusteredRate:
    """The Korn–Graubard interval from its sufficient statistics (see :func:`korn_graubard`).

    ``sided="upper"``: the one-sided upper bound raised to its envelope over fewer errors,
    nearly monotone in the errors (:func:`monotone_upper_bound`), what every claim verdict and
    worst case rests on; the plain bound is ``design_effect_interval(summary, sided="upper")``.
    """
    if sided == "upper":
        return monotone_upper_bound(summary, confidence)
    plain = design_effect_interval(summary, confidence, sided=sided)
    if not TWO_SIDED_PEOPLE_BOUND:
        return plain
    # The envelope over fewer errors is not taken at the two-sided upper end: it would hold
    # the heavy-search designs (benchmarks/results/kg_two_sided.md) but lifts ordinary upper
    # ends to the people's cap (238 errors in 129 of 500 people: 0.070 against 0.058).
    return markov_floor(capped_by_people(summary, plain, confidence), confidence)


#: Errors the family tries for the last person kept in each top-m set (its 1-D scan): the 8
#: counts just below its own and 8 spread over 0 .. its own (see :func:`_top_family`).
SCAN_NEAR, SCAN_SPREAD = 8, 8


def _family_keeps(e: np.ndarray, n: np.ndarray, top: int) -> np.ndarray:
    """Errors each family member keeps of each stored person: shape (members, k, m).

    Members, in this order (``benchmarks/bench_monotone_envelope.py`` names them by index):

    1. no error (1);
    2. for j = 1..M the top j people by errors, then the top j by rate, with all their
       errors (2M);
    3. for j = 1..M the top j - 1 by errors with all theirs plus the j-th with fewer (the
       counts just below its own, and counts spread down to 0) (M (SCAN_NEAR + SCAN_SPREAD));
    4. each stored person alone ("singletons", k);
    5. every stored person with all their errors ("all", 1);
    6. every stored person, one of them with one error fewer ("one fewer", k);
    7. every stored person but one ("dropped", k).

    Groups 4–7 do not depend on how the stored people rank, so they hold the data sets that
    the rankings of the data *with one more error* lose when that error reorders people (the
    top-j sets of the data before are then no longer top-j sets): the person who got it with
    one fewer, or left out. The data themselves are evaluated apart.
    """
    k, m = e.shape
    pos = {}
    for by in ("errors", "rate"):
        order = _ranked(e, n, k, by)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(k)[:, None], (k, m)), axis=0)
        # people without errors rank after everyone with one (their slots keep nothing)
        pos[by] = np.where(e > 0, rank, k)
    j = np.arange(1, top + 1)[:, None, None]  # (M, 1, 1)
    members = [np.zeros((1, k, m))]
    for by in ("errors", "rate"):
        members.append(np.where(pos[by][None] < j, e[None], 0.0))
    # the j-th person by errors, and its count
    order = _ranked(e, n, k, "errors")
    last = np.take_along_axis(e, order[: min(top, k)], axis=0)  # (<=M, m)
    if last.shape[0] < top:
        last = np.concatenate([last, np.zeros((top - last.shape[0], m))], axis=0)
    near = last[:, None, :] - np.arange(1, SCAN_NEAR + 1)[None, :, None]
    spread = np.floor(
        (last[:, None, :] - 1) * np.linspace(0.0, 1.0, SCAN_SPREAD)[None, :, None]
    )
    tries = np.clip(np.concatenate([near, spread], axis=1), 0.0, None)  # (M, S, m)
    kept = np.where(pos["errors"][None, None] < (j - 1)[:, :, :, None], e[None, None], 0.0)
    scan = np.where(
        pos["errors"][None, None] == (j - 1)[:, :, :, None], tries[:, :, None, :], kept
    )  # (M, S, k, m)
    members.append(scan.reshape(-1, k, m))
    # rank-free members: member i of each block changes stored person i only
    alone = np.eye(k)[:, :, None]  # (k, k, 1)
    members.append(alone * e[None])  # singletons
    members.append(e[None])  # all
    # one fewer: a person's errors less 1 (a per-search P(alert) sum that is below 1 drops to
    # 0, the person left out)
    members.append(np.maximum(e[None] - alone, 0.0))
    members.append((1.0 - alone) * e[None])  # dropped
    out: np.ndarray = np.concatenate(members, axis=0)
    return out


def _top_family(summary: ClusterSummary, floor: np.ndarray | None = None) -> ClusterSummary:
    """Summaries of the family's data sets (:func:`_family_keeps`), columns ``j * m + t``.

    Each keeps some errors of the stored top people and none of anyone else. Their variance
    and degrees of freedom follow from the stored people's counts and the sums of ``n_i^2``
    and ``n_i^4`` over all people: with the rate ``p_j = E_j / N`` of member j,
    ``sum_i (y_i - p_j n_i)^2 = sum_kept y^2 - 2 p_j sum_kept y n + p_j^2 sum_all n^2`` and
    likewise for the fourth power, so the full data and an aggregate give the same bound.

    ``floor`` (shape (m,), rates in [0, 1], at most each person's own rate: the summary's
    :attr:`~ClusterSummary.lowest_rate`): everyone a member does not keep is at ``floor * n_i``
    instead of 0, and a kept person at no less (still a data set with no more errors than the
    data, person by person). The same expansion holds for ``z_i = y_i - floor n_i`` (0 for
    everyone not stored) at the rate ``p_j - floor``: the residuals are those of ``z``.
    """
    assert summary.top_errors is not None and summary.top_trials is not None
    e = np.asarray(summary.top_errors, dtype=np.float64)
    n = np.asarray(summary.top_trials, dtype=np.float64)
    # the stored people are the top M by each ranking (top_people), so M is half of them
    keep = _family_keeps(e, n, max(1, e.shape[0] // 2))  # (J, k, m)
    total = float(summary.trials)
    s = int(summary.n_subjects)
    s2 = total**2 / max(float(summary.effective_people), 1e-300)
    s4 = float(summary.trials_fourth_moment or 0.0)
    nn = n[None]
    base = np.zeros(e.shape[1]) if floor is None else np.asarray(floor, dtype=np.float64)
    if floor is not None:
        # slots without a person (n = 0) stay 0; a kept count below the floor is raised to it
        level = base[None, None, :] * nn
        keep = np.where(nn > 0, np.maximum(keep, level) - level, 0.0)

    def total_of(a: np.ndarray) -> np.ndarray:
        out: np.ndarray = a.sum(axis=1)  # (J, m)
        return out

    above = total_of(keep)
    errors = above + base[None, :] * total
    # the residuals' rate, ``p_j - floor``, from the stored part alone: exactly 0 for the
    # member with everyone at the floor (a difference of two rates would leave round-off,
    # and a variance of 1e-34 instead of 0 would not count people in the scaled bound)
    p = above / total
    a2, b = total_of(keep * keep), total_of(keep * nn)
    u2 = a2 - 2 * p * b + p * p * s2
    u4 = (
        total_of(keep**4)
        - 4 * p * total_of(keep**3 * nn)
        + 6 * p**2 * total_of(keep**2 * nn**2)
        - 4 * p**3 * total_of(keep * nn**3)
        + p**4 * s4
    )
    # rounding in the expansion can leave a hair below 0 where the residuals cancel
    scale_2 = a2 + p * p * s2
    u2 = np.where(u2 > 1e-12 * scale_2, u2, 0.0)
    u4 = np.maximum(u4, 0.0)
    if s > 1:
        variance = s / (s - 1) * u2 / total**2
        with np.errstate(invalid="ignore", divide="ignore"):
            df = u2 * u2 / u4 - 1.0
        df = np.clip(np.where(np.isfinite(df), df, s - 1.0), 1.0, max(s - 1.0, 1.0))
    else:
        variance = np.zeros_like(u2)
        df = np.full_like(u2, np.nan)
    return ClusterSummary(
        errors=errors.ravel(),
        trials=total,
        n_subjects=s,
        variance=variance.ravel(),
        df=df.ravel(),
        effective_people=float(summary.effective_people),
    )


def _equivalent_trials(
    rate: np.ndarray, bound: np.ndarray, a_high: float, start: np.ndarray
) -> np.ndarray:
    """The ``n`` whose one-sided Clopper–Pearson bound for ``rate * n`` errors is ``bound``.

    The bound falls as n grows at a fixed rate, and ``bound > rate``; bisection on log n
    below ``start`` (an n whose bound is at most ``bound``).
    """
    lo = np.full_like(rate, -30.0)
    hi = np.log(np.maximum(start, 1e-12))
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        nm = np.exp(mid)
        _, high = fractional_clopper_pearson(rate * nm, nm, 0.0, a_high)
        above = high > bound
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    out: np.ndarray = np.exp(hi)
    return out


def monotone_upper_bound(summary: ClusterSummary, confidence: float = 0.95) -> ClusteredRate:
    """One-sided Korn–Graubard upper bound made monotone in the errors.

    The plain bound ``U(x)`` (:func:`design_effect_interval`, ``sided="upper"``) is valid but
    can *fall* when an error is added: where one or two people carry the errors, its
    degrees of freedom are about 1 and ``(t / z)^2`` shrinks the effective sample about 25×;
    a third person with an error lifts them and the bound drops (2,000 people × 10 searches,
    each error in another person: 0.0015 with no error, 0.0023 with one, 0.0024 with two,
    0.00073 with three). So "≤ 1 in 1,000" would be supported with five false positives but
    not with one.

    This bound is the envelope ``E(x) = max U(y)`` over a family of data sets ``y <= x``
    (per person): no error at all; for j = 1..M (:data:`MONOTONE_TOP_PEOPLE`) the top j
    people by errors (ties: the higher rate) and the top j by rate (ties: more errors) keeping
    all their errors; the top j - 1 by errors with the j-th keeping fewer (16 counts from just
    below its own down to 0); and ``x`` itself. ``E(x) >= U(x)``, so its coverage is at least
    that of ``U`` (it can only rise). The maximum over *every* ``y <= x`` would be monotone by
    construction (and is the least monotone bound never below ``U``) but is exponential; this
    family gave the same maximum in every exhaustive check of ``tests/test_monotone_bound.py``
    and ``benchmarks/bench_monotone_envelope.py`` (1–7 people with 1–7 errors each), yet the
    review's randomized search (people 2–2,000, 1–100 searches each, errors added one at a
    time; 2,000 paths, seed 2) still finds falls on 1.6% of paths (4.4% with the top people
    by errors alone), the largest 13% relative (6% where the bound is below one half), none at
    rates of 1% or less in that search: it is *nearly* monotone, and its label says
    "envelope", not "monotone". The plain bound falls 3× in the example above.

    Returns
    -------
    ClusteredRate
        ``sided="upper"``; ``method`` :data:`KORN_GRAUBARD_MONOTONE` (or an edge-case label:
        no error, one person); ``effective_trials`` the n whose Clopper–Pearson bound at the
        observed rate equals the envelope. A summary without the top people's counts gives
        the plain bound labelled :data:`KORN_GRAUBARD_NOT_MONOTONE`, never silently.
    """
    raised = monotone_high(
        summary, lambda part: design_effect_interval(part, confidence, sided="upper"), confidence
    )
    return capped_by_people(summary, raised, confidence) if ONE_SIDED_PEOPLE_CAP else raised


def largest_searches_bound(summary: ClusterSummary) -> float:
    """An upper bound on the most searches one person has, from the summary's moments.

    With ``S2 = sum n_i^2`` (from Kish's number), ``S4 = sum n_i^4`` and ``s`` people, the
    largest ``M`` obeys ``M^4 + (S2 - M^2)^2 / (s - 1) <= S4`` (Cauchy–Schwarz over the
    others), so ``M^2 <= (S2 + sqrt((s - 1) (s S4 - S2^2))) / s``: exactly the common value
    when everyone has the same searches, close to the true largest when one person stands
    out. Without ``S4`` (a summary written before it was kept): ``sqrt(S2)``.

    Where the summary keeps the largest itself (:attr:`ClusterSummary.largest_trials`, since
    stop 31) that is the answer, kept within what the moments allow (at least the root mean
    square ``sqrt(S2 / s)``, at most the moment bound), so an edited value cannot narrow an
    interval below what any people with these moments give.
    """
    total = float(summary.trials)
    s = int(summary.n_subjects)
    s2 = total**2 / float(summary.effective_people)
    s4 = summary.trials_fourth_moment
    if s4 is None or s < 2:
        bound = float(np.sqrt(s2))
    else:
        spread = max((s - 1) * (s * float(s4) - s2 * s2), 0.0)
        bound = float(np.sqrt(min(s2, (s2 + np.sqrt(spread)) / s)))
    largest = summary.largest_trials
    if largest is None or not np.isfinite(largest) or s < 1:
        return bound
    return float(min(bound, max(float(largest), np.sqrt(s2 / s))))


def capped_by_people(
    summary: ClusterSummary, bound: ClusteredRate, confidence: float = 0.95
) -> ClusteredRate:
    """An interval's ends brought, where outside it, within the interval counted by people.

    The interval counted by people is the Clopper–Pearson interval (of ``bound.sided``) of
    ``p K`` errors in ``K`` trials with ``K = n / M``: the searches over the most searches one
    person has (:func:`largest_searches_bound`; ``K`` is the number of people when everyone
    has the same searches). People are independent and each person's rate ``p_i`` lies in
    [0, 1], so the rate's variance is at most ``sum_i n_i^2 p_i (1 - p_i) / n^2 <= M sum_i n_i
    p_i (1 - p_i) / n^2 <= M p (1 - p) / n = p (1 - p) / K`` (the last step: ``x (1 - x)`` is
    concave and ``p`` is the search-weighted mean of the ``p_i``), whatever the correlation
    within a person and whether or not the people searched most are the ones with the highest
    rates. With equal searches per person it is the exact interval of a binomial count of
    people. A design-effect end beyond it rests on a variance the data cannot have: one or two
    people carrying the errors leave it about 1 degree of freedom, and the ``(t / z)^2``
    factor then shrinks ``n_eff`` up to 25× at 95% and about 400× at the 99.4% of a
    Bonferroni family of 8 (one person of 520 with 12 of their 33 searches false matches:
    one-sided 0.476; the cap, with ``K = 811 / 33``, 0.14; with all 40 false positives of that
    data set 0.19 against 0.476. One error in 754 searches of 412 people at 97.5%, two-sided:
    [2e-247, 0.53] before, [7.6e-13, 0.032] within the people's interval, whose lower end
    :func:`markov_floor` then raises to 1.7e-05).

    A one-sided upper bound (``sided="upper"``) is lowered to the cap: every one-sided bound of
    the workbench since stop 25. A two-sided (or lower) interval (since stop 31) also has its
    lower end raised to the people's lower end, where that is higher.

    Kish's effective number of people ``n^2 / sum n_i^2`` (the two-sided default's floor) gave
    a tighter cap but holds only where the searches per person do not depend on the person's
    rate: 1% of people at a rate near one half searched 10× more put its coverage at 0.77
    (``benchmarks/results/people_cap_adversarial.md``); this one is proved for any rates.

    The cap grows with the errors at a fixed ``K``, so a nearly monotone bound stays nearly
    monotone; each end is moved only where it lies outside. Entries it changes get
    :data:`PEOPLE_CAP_SUFFIX` (one-sided upper) or :data:`PEOPLE_INTERVAL_SUFFIX` on their
    label, and ``effective_trials`` ``K`` where the end it reports (the upper end; the lower
    for ``sided="lower"``) moved. Measured: ``benchmarks/RESULTS.md`` ("One-sided bounds
    capped ..."; "Two-sided Korn–Graubard within the people's interval").
    """
    total = float(bound.trials)
    people = float(summary.effective_people)
    if total <= 0 or bound.n_subjects == 0 or not np.isfinite(people) or people <= 0:
        return bound
    a_low, a_high = _tails(confidence, bound.sided)
    k = min(total, total / max(largest_searches_bound(summary), 1.0))
    rate = np.asarray(bound.rate, dtype=np.float64)
    floor, cap = fractional_clopper_pearson(rate * k, np.full_like(rate, k), a_low, a_high)
    lowered = np.isfinite(cap) & (cap < bound.ci_high * (1 - 1e-12))
    raised = np.isfinite(floor) & (floor > bound.ci_low * (1 + 1e-12))
    moved = lowered | raised
    if not moved.any():
        return bound
    suffix = PEOPLE_CAP_SUFFIX if bound.sided == "upper" else PEOPLE_INTERVAL_SUFFIX
    method = bound.method.astype(object).copy()
    method[moved] = [str(name) + suffix for name in method[moved]]
    reported = raised if bound.sided == "lower" else lowered
    return replace(
        bound,
        ci_low=np.where(raised, floor, bound.ci_low),
        ci_high=np.where(lowered, cap, bound.ci_high),
        effective_trials=np.where(reported, k, bound.effective_trials),
        method=method,
    )


def markov_floor(bound: ClusteredRate, confidence: float = 0.95) -> ClusteredRate:
    """A lower end raised, where below it, to ``errors * a_low / searches`` (Markov).

    For any dependence between searches, ``P(X >= x) <= E[X] / x = n p / x`` (Markov's
    inequality), so the lower end ``L = X a_low / n`` misses (``p < L``) with probability at
    most ``a_low``: a floor that needs no model of the clustering at all. It binds only at a
    handful of errors, where a fractional effective count below one puts the design-effect
    lower end many orders of magnitude lower (one error in 754 searches of 412 people at
    97.5% two-sided: 7.6e-13 within the people's interval; the floor 1.7e-05, the exact
    independent lower end of one error, 1.7e-05). Entries it raises get
    :data:`MARKOV_FLOOR_SUFFIX`.
    """
    a_low, _ = _tails(confidence, bound.sided)
    if a_low == 0.0 or bound.trials <= 0:
        return bound
    # the rate, not the rounded errors: Markov's bound is for the error sum itself
    floor = np.asarray(bound.rate, np.float64) * a_low
    raised = floor > bound.ci_low * (1 + 1e-12)
    if not raised.any():
        return bound
    method = bound.method.astype(object).copy()
    method[raised] = [str(name) + MARKOV_FLOOR_SUFFIX for name in method[raised]]
    return replace(bound, ci_low=np.where(raised, floor, bound.ci_low), method=method)


def monotone_high(
    summary: ClusterSummary,
    interval: Callable[[ClusterSummary], ClusteredRate],
    confidence: float | None = None,
) -> ClusteredRate:
    """``interval(summary)`` with its upper end raised to the envelope over fewer errors.

    The family is that of :func:`monotone_upper_bound`; ``interval`` is any design-effect
    interval of a summary (vectorised over its columns). With ``confidence`` (one-sided
    bounds) ``effective_trials`` becomes the n whose one-sided Clopper–Pearson bound at the
    observed rate is the raised end. Plain labels become :data:`KORN_GRAUBARD_MONOTONE`
    (``korn-graubard``) or get ``", monotone in errors"`` appended; a summary without the top
    people's counts keeps the plain end, labelled "NOT monotone".
    """
    own = interval(summary)
    plain = (own.method == KORN_GRAUBARD) | (own.method == DESIGN_EFFECT_JEFFREYS)
    if not summary.keeps_top_people:
        label = np.where(
            own.method == KORN_GRAUBARD,
            KORN_GRAUBARD_NOT_MONOTONE,
            own.method.astype(str) + NOT_MONOTONE_SUFFIX,
        )
        return replace(own, method=np.where(plain, label, own.method).astype(object))
    if own.trials == 0:
        return own
    m = own.rate.shape[0]
    family = interval(_top_family(summary))
    highs = family.ci_high.reshape(-1, m)
    envelope = np.maximum(own.ci_high, highs.max(axis=0))
    raised = envelope > own.ci_high * (1 + 1e-12)
    n_eff = own.effective_trials.copy()
    if raised.any() and confidence is not None:
        _, a_high = _tails(confidence, "upper")
        n_eff[raised] = _equivalent_trials(
            own.rate[raised], envelope[raised], a_high, own.effective_trials[raised]
        )
    suffixed = own.method.astype(str) + MONOTONE_SUFFIX
    label = np.where(own.method == KORN_GRAUBARD, KORN_GRAUBARD_MONOTONE, suffixed)
    method = np.where(plain, label, own.method).astype(object)
    return replace(own, ci_high=envelope, effective_trials=n_eff, method=method)


def design_effect_interval(
    summary: ClusterSummary,
    confidence: float = 0.95,
    *,
    sided: str = "two-sided",
    lower_end: IntervalEnd = "exact",
    upper_end: IntervalEnd = "exact",
    df_rule: DfRule = "people",
    lower_small_sample: SmallSample = "variance",
    upper_small_sample: SmallSample = "variance",
    lower_min_people: float = MIN_PEOPLE_FOR_EXCESS,
    upper_min_people: float = MIN_PEOPLE_FOR_EXCESS,
    lower_few_errors: float = 0.0,
    exact_at_one_error: bool = False,
    exact_upper_at_one_error: bool = False,
    people_floor: bool = False,
    label: str = KORN_GRAUBARD,
) -> ClusteredRate:
    """A design-effect interval from clustered sufficient statistics.

    The effective number of searches ``n_eff`` and "errors" ``p n_eff`` are those of
    :func:`korn_graubard`; ``lower_end`` / ``upper_end`` choose the binomial interval form of
    each end (see :func:`_ends`); ``df_rule`` the degrees of freedom of the small-sample
    ``(z / t)^2`` reduction of ``n_eff``: ``"people"`` the effective number of people carrying
    the variance minus one (:func:`effective_degrees_of_freedom`), ``"satterthwaite"`` that
    number divided by the squared share of the variance beyond the binomial (only the excess
    over the binomial variance is estimated from so few people: Satterthwaite 1946).

    ``lower_small_sample`` / ``upper_small_sample`` say what that reduction applies to at each
    end (:data:`SmallSample`): ``"variance"`` (Korn–Graubard) the whole design effect,
    ``n_eff = n / (deff (t / z)^2)``; ``"excess"`` only the between-person excess over the
    binomial variance, ``n_eff = n / (1 + (deff - 1) (t / z)^2)``; ``"none"`` no reduction,
    ``n_eff = n / deff``. The last two apply only where at least ``lower_min_people`` /
    ``upper_min_people`` people carry the variance (``df + 1``); with fewer, the whole variance
    is reduced as Korn–Graubard do.

    ``lower_few_errors``: where the effective number of errors with no reduction,
    ``x = rate * n / deff``, is at most this (and the rate at most 1/2), the lower end takes no
    reduction whatever the
    people carrying the variance (``n_eff = n / deff``), and where ``x <= 1`` it is the exact
    (Clopper–Pearson) lower end of that count whatever ``lower_end`` says: one effective error is
    where the Jeffreys lower end is too high (a beta quantile of ``x + 1/2``). 0 (the default):
    no such rule.

    ``exact_at_one_error``: the exact lower end is taken where exactly **one error** is observed
    (``errors == 1``), and no longer where ``x <= 1`` with more errors (the few-errors rule's
    own exact end). One error is a count of one whatever the design effect, and there the
    Jeffreys lower end (a beta quantile of 1.5 errors) is too high; several errors in one
    person make ``x <= 1`` through a large design effect, and there the exact end of a
    fractional count below 1 put the lower end at about a fortieth of the rate, so it never
    missed.

    ``exact_upper_at_one_error``: the exact (Clopper–Pearson) upper end too at exactly one
    observed error. Jeffreys' upper end of one error is too low for a true rate just above it
    (0.0093 of 500 searches against a true 0.01: every data set with one error missed, the
    binomial coverage 0.929 exactly); the exact end, 0.0111, holds it.

    ``people_floor``: the effective number of searches at each end is never below Kish's
    effective number of people ``(sum n_i)^2 / sum n_i^2`` (at most ``n``). People are
    independent, so the variance of the rate is at most ``sum_i n_i^2 p_i (1 - p_i) / n^2``,
    the value when each person's searches all agree; with equal searches per person that is
    at most ``p (1 - p) / people`` (``p_i (1 - p_i)`` is concave), whatever the correlation
    or the spread of the person rates. A small-sample t factor that cuts ``n_eff`` below the
    people claims more uncertainty than any model of independent people allows (with one
    search per person, any reduction of ``n`` at all). With unequal searches Kish's number is
    the equal-rates value of that bound, not a bound for every spread of person rates.

    With the default ``"variance"`` at both ends (and no rule switched on) this is the
    Korn–Graubard interval.
    """
    from scipy import stats  # imported here: ~1 s, and not every caller needs it

    a_low, a_high = _tails(confidence, sided)
    k = np.atleast_1d(np.asarray(summary.errors, dtype=np.float64))
    m = k.shape[0]
    total = float(summary.trials)
    s = int(summary.n_subjects)
    if s == 0 or total <= 0:
        nan = np.full(m, np.nan)
        return ClusteredRate(
            np.zeros(m, np.int64),
            0,
            0,
            nan,
            nan,
            nan,
            np.zeros(m),
            np.zeros(m),
            np.ones(m),
            np.full(m, label, dtype=object),
            float(confidence),
            sided,
        )
    for rule in (lower_small_sample, upper_small_sample):
        if rule not in SMALL_SAMPLE_RULES:
            raise MetricInputError(f"small-sample rule must be one of {SMALL_SAMPLE_RULES}")
    variance = np.atleast_1d(np.asarray(summary.variance, dtype=np.float64))
    rate = k / total
    with np.errstate(invalid="ignore", divide="ignore"):
        binomial = rate * (1 - rate) / total
        deff = variance / binomial
        # truncated at 1 (Korn & Graubard): a design effect below 1 is noise, not information
        n_design = np.minimum(total, rate * (1 - rate) / variance)
    # Small-sample correction: the variance rests on few people, so scale by (t / z)^2.
    inflation = np.ones(m)
    carriers = np.full(m, float(s))
    if s > 1:
        df = np.atleast_1d(np.asarray(summary.df, dtype=np.float64))
        df = np.where(np.isfinite(df), df, s - 1.0)
        carriers = df + 1.0
        if df_rule == "satterthwaite":
            with np.errstate(invalid="ignore", divide="ignore"):
                excess = np.clip(1.0 - 1.0 / deff, 0.0, 1.0)
                df = np.where(excess > 0, df / excess**2, np.inf)
        elif df_rule != "people":
            raise MetricInputError(f"unknown df_rule {df_rule!r}")
        tail = max(a_low, a_high)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = stats.norm.ppf(1 - tail)
            t_quantile = np.where(np.isfinite(df), stats.t.ppf(1 - tail, np.minimum(df, 1e12)), z)
        inflation = (t_quantile / z) ** 2

    def effective(rule: SmallSample, min_people: float) -> np.ndarray:
        whole = n_design / inflation
        if rule == "variance" or s < 2:
            return whole
        with np.errstate(invalid="ignore", divide="ignore"):
            if rule == "excess":
                part = total / (1.0 + np.maximum(deff - 1.0, 0.0) * inflation)
            else:
                part = n_design
        return np.where(carriers >= min_people, part, whole)

    people = float(summary.effective_people)
    none = k == 0
    every = k == total
    one = (s == 1) & ~none & ~every

    def finish(n_eff: np.ndarray) -> np.ndarray:
        n_eff = np.where(none | every, min(total, people), n_eff)
        n_eff = np.where(one, 1.0, n_eff)
        return np.where(np.isfinite(n_eff) & (n_eff > 0), n_eff, min(total, people))

    # the floor at Kish's people (see the docstring): applied before the few-errors rule reads
    # n_low / n_plain, so that rule counts effective errors on the floored n as well
    floor = min(total, people) if people_floor else 0.0
    n_low = np.maximum(finish(effective(lower_small_sample, lower_min_people)), floor)
    n_high = np.maximum(finish(effective(upper_small_sample, upper_min_people)), floor)
    # Few effective errors: the lower end's width comes from the count's discreteness (the
    # beta quantile of a handful of errors), so no t factor; at one effective error the exact
    # end (see the docstring). Calibrated on the grid (benchmarks/results/stats_grid.md).
    few = np.zeros(m, dtype=bool)
    exact_low = np.zeros(m, dtype=bool)
    if lower_few_errors > 0:
        n_plain = np.maximum(finish(effective("none", 0.0)), floor)
        # only where errors are the rarer outcome (rate <= 1/2): there the lower end's
        # discreteness is the error count; near a rate of 1 it is the count of non-errors, and
        # the rule was never calibrated there (the grid's rates are 1e-4 to 0.3)
        few = (rate * n_plain <= lower_few_errors) & (rate <= 0.5)
        n_low = np.where(few, n_plain, n_low)
        if not exact_at_one_error:
            exact_low = few & (rate * n_plain <= 1.0)
    if exact_at_one_error:
        # one observed error, whatever the design effect (see the docstring); rate <= 1/2
        # holds there unless every search is an error, which is an edge case below
        exact_low = k == 1
    exact_high = (k == 1) if exact_upper_at_one_error else np.zeros(m, dtype=bool)
    # With no errors (or only errors) the bound is counted by people and stays exact whatever
    # the form: it is the one guarantee the data give there.
    edge = none | every
    low_exact, _ = fractional_clopper_pearson(rate * n_low, n_low, a_low, a_high)
    _, high_exact = fractional_clopper_pearson(rate * n_high, n_high, a_low, a_high)
    low = (
        _ends(rate * n_low, n_low, a_low, a_high, lower_end)[0]
        if lower_end != "exact"
        else low_exact
    )
    high = (
        _ends(rate * n_high, n_high, a_low, a_high, upper_end)[1]
        if upper_end != "exact"
        else high_exact
    )
    low = np.where(edge | exact_low, low_exact, low)
    high = np.where(edge | exact_high, high_exact, high)
    method = np.select(
        [none, every, one],
        [KORN_GRAUBARD_NO_ERRORS, KORN_GRAUBARD_ALL_ERRORS, KORN_GRAUBARD_ONE_PERSON],
        label,
    ).astype(object)
    # effective_trials reports the n_eff of the end that a one-sided bound would use (the
    # upper end; the lower end for sided="lower")
    return ClusteredRate(
        errors=np.round(k).astype(np.int64),
        trials=int(round(total)),
        n_subjects=s,
        rate=rate,
        variance=variance,
        design_effect=np.where(none | every, np.nan, deff),
        effective_trials=n_low if sided == "lower" else n_high,
        ci_low=np.asarray(low, dtype=np.float64),
        ci_high=np.asarray(high, dtype=np.float64),
        method=method,
        confidence=float(confidence),
        sided=sided,
    )


#: Method label of the design-effect Jeffreys interval, the workbench's default for rates.
DESIGN_EFFECT_JEFFREYS = "design-effect-jeffreys"
#: The clustered interval methods by name (:func:`clustered_interval`).
CLUSTERED_METHODS: tuple[str, ...] = (DESIGN_EFFECT_JEFFREYS, KORN_GRAUBARD)


@dataclass(frozen=True)
class SmallSampleRule:
    """Where a two-sided design-effect interval applies the small-sample ``(t / z)^2`` factor.

    Attributes
    ----------
    lower, upper : {"variance", "excess", "none"}
        The rule at each end (:func:`design_effect_interval`).
    lower_min_people, upper_min_people : float
        Fewest people carrying the variance for that rule; with fewer, the whole variance.
    lower_few_errors : float
        Effective number of errors (``rate * n / deff``) at or below which the lower end takes
        no t factor whatever the people carrying the variance, with the exact lower end at one
        effective error or less (:func:`design_effect_interval`); 0: no such rule.
    exact_at_one_error : bool
        The exact (Clopper–Pearson) lower end at exactly one observed error, instead of at one
        effective error or less (:func:`design_effect_interval`).
    people_floor : bool
        Neither end's effective number of searches falls below Kish's effective number of
        people (:func:`design_effect_interval`).
    exact_upper_at_one_error : bool
        The exact upper end too at exactly one observed error (:func:`design_effect_interval`).
    """

    lower: SmallSample
    upper: SmallSample
    lower_min_people: float = MIN_PEOPLE_FOR_EXCESS
    upper_min_people: float = MIN_PEOPLE_FOR_EXCESS
    lower_few_errors: float = 0.0
    exact_at_one_error: bool = False
    people_floor: bool = False
    exact_upper_at_one_error: bool = False


#: Effective errors at or below which the default's lower end takes no t factor (see
#: :class:`SmallSampleRule`). Chosen on a tuning run of the grid (seed 7, 1,000 data sets per
#: cell: 3, 5, 10 and 20 tried; 10 and 20 let a 20-person cell fall to 0.922-0.924) and
#: confirmed on the committed seed (``benchmarks/results/stats_grid.md``).
LOWER_FEW_ERRORS = 5.0
#: The default (stop 24): the previous default (:data:`PREVIOUS_SMALL_SAMPLE`) with the exact
#: (Clopper–Pearson) interval at exactly one observed error, both ends (the exact lower end no
#: longer at one *effective* error or less), and the effective number of searches floored at
#: Kish's effective number of people at both ends.
#: Chosen on the simulation grid (tuning seed 7) and confirmed on a fresh seed, the same data
#: sets for both rules (``benchmarks/results/stats_grid_s24.md``).
DEFAULT_SMALL_SAMPLE = SmallSampleRule(
    "none",
    "excess",
    5.0,
    3.0,
    LOWER_FEW_ERRORS,
    exact_at_one_error=True,
    people_floor=True,
    exact_upper_at_one_error=True,
)
#: The default through stop 23 (from 2026-12-02): the upper end reduces only the between-person
#: excess over the binomial variance (with at least 3 people carrying the variance); the lower
#: end gets no reduction where at least 5 people carry the variance or where the data hold at
#: most 5 effective errors (exact at 1 effective error or fewer); no floor at the people.
PREVIOUS_SMALL_SAMPLE = SmallSampleRule("none", "excess", 5.0, 3.0, LOWER_FEW_ERRORS)
#: The default before the few-errors rule at the lower end (until 2026-12-02): with 1-4 people
#: carrying the variance the lower end kept Korn–Graubard's whole t factor.
SMALL_SAMPLE_BEFORE_FEW_ERRORS = SmallSampleRule("none", "excess", 5.0, 3.0)
#: Grid name of :data:`PREVIOUS_SMALL_SAMPLE` (the simulation's method names add it in brackets).
PREVIOUS_RULE_NAME = "no Kish floor; exact at <= 1 effective error"
#: The rules compared on the grid, by name (the simulation's method names add them in brackets).
SMALL_SAMPLE_RULES_COMPARED: dict[str, SmallSampleRule] = {
    # the default through stop 23, and the two halves of the change on their own
    PREVIOUS_RULE_NAME: PREVIOUS_SMALL_SAMPLE,
    "Kish floor only": replace(PREVIOUS_SMALL_SAMPLE, people_floor=True),
    "exact at one error only": replace(PREVIOUS_SMALL_SAMPLE, exact_at_one_error=True),
    # the default with the exact end at one error at the lower end only (the stop-24 rule as
    # first rebuilt: Jeffreys' upper end of one error in 500 single searches, 0.0093, missed a
    # true 0.01 in every data set with one error, coverage 0.929 exactly)
    "exact lower end only at one error": replace(
        DEFAULT_SMALL_SAMPLE, exact_upper_at_one_error=False
    ),
    "t on the whole variance": SmallSampleRule("variance", "variance"),
    "t on the excess": SmallSampleRule("excess", "excess", 3.0, 3.0),
    # the default until 2026-12-02: t on the excess at the upper end, none at the lower end
    # (with 1-4 people carrying the variance the whole t factor at both ends)
    "without the few-errors rule": SMALL_SAMPLE_BEFORE_FEW_ERRORS,
    # the rule before the few-errors rule without its floor on the people carrying the
    # variance (no Kish floor either): it shows why that floor is there (coverage falls far
    # below 0.93 where 1-2 people carry every error)
    "no floor on people": SmallSampleRule("none", "excess", 0.0, 0.0),
}


def design_effect_jeffreys(
    errors: ArrayLike,
    trials: ArrayLike,
    confidence: float = 0.95,
    *,
    sided: str = "two-sided",
) -> ClusteredRate:
    """Design-effect Jeffreys interval from per-person counts: the default interval for rates.

    Two-sided: the Jeffreys interval, quantiles of ``Beta(x + 1/2, n_eff - x + 1/2)`` for
    ``x = rate * n_eff`` (the "modified Jeffreys" interval for survey proportions compared by
    Franco, Little, Louis & Slud 2019, *Journal of Survey Statistics and Methodology* 7;
    Brown, Cai & DasGupta 2001 for the binomial case), for the effective number of searches
    ``n_eff`` of :func:`korn_graubard` (cluster-robust design effect, truncated at 1) with a
    small-sample correction that differs by end (:data:`DEFAULT_SMALL_SAMPLE`):

    * **upper end**: ``n_eff = n / (1 + (deff - 1) (t / z)^2)``. Only the between-person part
      of the variance (the excess of the design effect over 1) is estimated from few people
      and needs the t quantile; the binomial part ``p (1 - p) / n`` follows from the rate.
      Where fewer than 3 people carry the variance, the whole variance gets the t factor, as
      in Korn & Graubard 1998.
    * **lower end**: ``n_eff = n / deff`` where at least 5 people carry the variance, else as
      Korn–Graubard. With skewed counts an overestimated rate comes with an overestimated
      spread, so the lower end needs no t factor; the t factor with 1–4 people is kept, except
      where the data hold at most 5 effective errors (``rate * n / deff <= 5``,
      :data:`LOWER_FEW_ERRORS`): there the lower end is ``n / deff`` too. With a handful of
      errors the beta quantile of the count already puts the lower end far below the rate (a
      third of it at 5 errors), and the t factor with 1 degree of freedom (a 42-fold cut of
      ``n_eff``) left that end at about 0: where one or two people carry every error the
      interval never missed below, and covered 0.98–1.00 (see
      ``benchmarks/results/stats_grid.md``).
    * **one error**: the exact Clopper–Pearson interval of the effective count, both ends.
      Jeffreys' lower end, a beta quantile of 1.5 errors, is too high at a count of one (it
      missed a true 1e-3 in 9.5% of data sets of 100 people × 1 search), and its upper end too
      low for a rate just above it (one error in 500 single searches: 0.0093 against a true
      0.01, coverage 0.929 exactly; the exact end is 0.0111). Only at one *observed* error:
      several errors in one person make about one *effective* error through their design
      effect, and the exact lower end of that fractional count (the rule through stop 23) sat
      at a fortieth of the rate.
    * **floor at the people** (both ends): ``n_eff`` is never below Kish's effective number of
      people ``(sum n_i)^2 / sum n_i^2`` (at most ``n``). People are independent, so the
      variance of the rate is at most its value when each person's searches all agree,
      ``p (1 - p) / people`` with equal searches, whatever the correlation or the spread of
      person rates (``p_i (1 - p_i)`` is concave); a t factor that cuts ``n_eff`` below that
      claims more uncertainty than any such model allows. It binds where one or two people
      carry the variance and searches per person are few: one error in 100 people × 1 search
      (no clustering possible) had an upper end of 0.63 before, 0.054 now (the exact binomial
      interval of 100 searches). It binds at the lower end too, where the whole t factor of
      1–4 people carrying the variance is kept: 20 people who all show errors (three heavy
      searchers, rate 0.33) had 0.88 effective searches and a lower end of 0.0086; the floor,
      Kish's 6.97 people, gives 0.086 (the worst case of independent people, each person's
      searches all alike, is what that end then claims, not less).

    With no errors (or errors only) the bound is the exact one counted by people, as in
    :func:`korn_graubard`. One-sided bounds (``sided="upper"`` / ``"lower"``) are the exact
    Korn–Graubard ones.

    Coverage by simulation (``benchmarks/results/stats_grid.md``; this rule against the one
    before it on a fresh seed: ``benchmarks/results/stats_grid_s24.md``): two-sided closer to 0.95
    than Korn–Graubard's exact ends, than the Jeffreys ends with the t factor on the whole
    variance and than the earlier rules (:data:`SMALL_SAMPLE_RULES_COMPARED`; the default
    through stop 23 is :data:`PREVIOUS_SMALL_SAMPLE`); one-sided upper bounds at or above
    0.94. Cells where no interval can reach 0.93–0.97 are identified
    exactly by :func:`lfr_eval.attainable_coverage.lowest_attainable_coverage`. Claim verdicts
    use the exact bound (:func:`korn_graubard`).

    Examples
    --------
    >>> r = design_effect_jeffreys([1] * 30, [2] * 30)
    >>> bool(r.ci_low[0] < 0.5 < r.ci_high[0]), r.method[0]
    (True, 'design-effect-jeffreys')
    """
    return design_effect_jeffreys_from_summary(
        summarise_clusters(errors, trials), confidence, sided=sided
    )


def design_effect_jeffreys_from_summary(
    summary: ClusterSummary,
    confidence: float = 0.95,
    *,
    sided: str = "two-sided",
    small_sample: SmallSampleRule = DEFAULT_SMALL_SAMPLE,
    monotone_upper: bool = False,
) -> ClusteredRate:
    """The design-effect Jeffreys interval from clustered sufficient statistics.

    ``monotone_upper``: raise the two-sided upper end to its envelope over data sets with
    fewer errors (:func:`monotone_high`), as the one-sided bound always is.

    Two-sided: Jeffreys ends with the small-sample rule ``small_sample`` (the default is
    described in :func:`design_effect_jeffreys`; the others are the variants compared on the
    grid, :data:`SMALL_SAMPLE_RULES_COMPARED`). One-sided (``sided="upper"`` or ``"lower"``):
    the exact Korn–Graubard bound, labelled so; a one-sided bound is what a claim or a worst
    case rests on, and Jeffreys' one-sided upper bound fell to 0.92–0.94 in a few skewed cells
    of the grid (100 searches per person, unequal, correlated), where the exact one stays
    >= 0.94.
    """
    if sided != "two-sided":
        return korn_graubard_from_summary(summary, confidence, sided=sided)

    def interval(part: ClusterSummary) -> ClusteredRate:
        return design_effect_interval(
            part,
            confidence,
            sided=sided,
            lower_end="jeffreys",
            upper_end="jeffreys",
            lower_small_sample=small_sample.lower,
            upper_small_sample=small_sample.upper,
            lower_min_people=small_sample.lower_min_people,
            upper_min_people=small_sample.upper_min_people,
            lower_few_errors=small_sample.lower_few_errors,
            exact_at_one_error=small_sample.exact_at_one_error,
            exact_upper_at_one_error=small_sample.exact_upper_at_one_error,
            people_floor=small_sample.people_floor,
            label=DESIGN_EFFECT_JEFFREYS,
        )

    return monotone_high(summary, interval) if monotone_upper else interval(summary)


def clustered_interval(
    summary: ClusterSummary,
    confidence: float = 0.95,
    *,
    method: str = DESIGN_EFFECT_JEFFREYS,
    sided: str = "two-sided",
) -> ClusteredRate:
    """A clustered interval by name: ``"design-effect-jeffreys"`` (default) or
    ``"korn-graubard"`` (exact ends, for verdicts that need the guarantee at every rate)."""
    if method == DESIGN_EFFECT_JEFFREYS:
        return design_effect_jeffreys_from_summary(summary, confidence, sided=sided)
    if method == KORN_GRAUBARD:
        return korn_graubard_from_summary(summary, confidence, sided=sided)
    raise MetricInputError(
        f"clustered interval method must be one of {CLUSTERED_METHODS}, got {method!r}"
    )
