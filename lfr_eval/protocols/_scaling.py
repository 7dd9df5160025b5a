"""Watchlist-size scaling estimators: FPIR(N) from each search's false matches among F fillers.

A non-mated search that meets ``c`` of the F fillers at threshold T raises an alert on a watchlist
of N of those fillers (drawn without replacement) with probability
``1 - C(F - c, N) / C(F, N)`` (hypergeometric: no matching filler among the N drawn). Averaged
over searches this is the **exact expectation of gallery resampling** and an unbiased estimate of
FPIR(N) for N <= F, whatever the spread of false-match rates between people. The older plug-in
``1 - (1 - c / F)^N`` is biased low (Jensen) even when comparisons are independent.

Beyond F the data cannot tell how false-match rates differ between people (a person's rate is
seen only through F comparisons). Two models bracket FPIR(N): the per-person plug-in (each search
keeps its own rate ``c / F``: the low end) and one pooled rate for everyone (the high end, by
Jensen). Both are extrapolations by a factor N / F and are labelled so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from lfr_eval.metrics._intervals import SubjectHistogram

if TYPE_CHECKING:
    from lfr_eval.metrics import ClusterSummary
    from lfr_eval.metrics._clustered import IntervalEnd

#: Degrees of freedom of the two-sided ends' t widening (:func:`interval_from_summary`):
#: ``"people"`` those of the people carrying the variance, ``"satterthwaite"`` those divided by
#: the squared share of the variance beyond the binomial, ``"satterthwaite-lower"`` that for
#: the lower end only.
ScaledDfRule = Literal["people", "satterthwaite", "satterthwaite-lower"]

#: ``method`` of the per-search (hypergeometric, N <= F; plug-in beyond) rows
ANALYTIC = "analytic"
#: ``method`` of the pooled-rate rows beyond F (the high end of the extrapolation range)
POOLED = "analytic-pooled"


def draws_per_group(n: int, shares: np.ndarray) -> np.ndarray:
    """Fillers of each group in a watchlist of ``n``: ``n * w_g`` apportioned to whole fillers
    by largest remainder (Hamilton), so they add up to ``round(n * sum(w))`` (= n for shares
    summing to 1).

    Rounding each group on its own can lose or add fillers (three equal groups of a watchlist
    of 100 gave 99; two halves of 101 gave 100), and the figure is then FPIR at that other
    size, biased against the N it is labelled with. Ties go to the earlier group.
    """
    quota = int(n) * np.asarray(shares, dtype=np.float64)
    base = np.floor(quota + 1e-9).astype(np.int64)
    left = int(round(float(quota.sum()))) - int(base.sum())
    if left > 0:
        order = np.argsort(-(quota - base), kind="stable")
        base[order[:left]] += 1
    return base


def within_fillers(n: int, sizes: np.ndarray, shares: np.ndarray) -> bool:
    """Whether a watchlist of ``n`` can be drawn from the fillers (every group's share fits)."""
    return bool(np.all(draws_per_group(n, shares) <= np.asarray(sizes)))


def _log_choose_ratio(total: np.ndarray, matched: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """log(C(total - matched, draws) / C(total, draws)); -inf where total - matched < draws."""
    from scipy.special import gammaln  # imported here: scipy is slow to import

    free = total - matched
    ok = free >= draws
    safe_free = np.where(ok, free, draws)
    out = (
        gammaln(safe_free + 1.0)
        - gammaln(safe_free - draws + 1.0)
        - gammaln(total + 1.0)
        + gammaln(total - draws + 1.0)
    )
    return np.where(ok, out, -np.inf)


def hypergeometric_fpir(
    counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int
) -> np.ndarray:
    """Per-search P(alert) on a watchlist of ``n`` fillers drawn without replacement.

    Parameters
    ----------
    counts : ndarray of shape (n_searches, n_groups, n_thresholds)
        Fillers of each group at or above each threshold, per search.
    sizes : ndarray of shape (n_groups,)
        Fillers in each group, F_g.
    shares : ndarray of shape (n_groups,)
        Each group's share of the watchlist (sum 1); group g contributes ``round(n w_g)``.
    n : int
        Watchlist size, with every ``round(n w_g) <= F_g``.

    Returns
    -------
    ndarray of shape (n_searches, n_thresholds)
        ``1 - prod_g C(F_g - c_g, d_g) / C(F_g, d_g)``.
    """
    draws = draws_per_group(n, shares).astype(np.float64)
    total = np.asarray(sizes, dtype=np.float64)
    logs = _log_choose_ratio(
        total[None, :, None], np.asarray(counts, dtype=np.float64), draws[None, :, None]
    )
    out: np.ndarray = 0.0 - np.expm1(logs.sum(axis=1))
    return out


def plug_in_fpir(counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int) -> np.ndarray:
    """Per-search ``1 - prod_g (1 - c_g / F_g)^(n w_g)`` (each search keeps its own rate)."""
    fmr = np.asarray(counts, dtype=np.float64) / np.asarray(sizes, dtype=np.float64)[None, :, None]
    with np.errstate(divide="ignore"):
        log_no_match = np.log1p(-np.minimum(fmr, 1.0))
    exponent = (int(n) * np.asarray(shares, dtype=np.float64))[None, :, None]
    total = np.where(exponent > 0, exponent * log_no_match, 0.0).sum(axis=1)
    out: np.ndarray = 0.0 - np.expm1(total)
    return out


def pooled_fpir(counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int) -> np.ndarray:
    """``1 - prod_g (1 - FMR_g)^(n w_g)`` with one pooled FMR per filler group, shape (n_thr,)."""
    c = np.asarray(counts, dtype=np.float64)
    fmr = c.sum(axis=0) / (c.shape[0] * np.asarray(sizes, dtype=np.float64)[:, None])
    with np.errstate(divide="ignore"):
        log_no_match = np.log1p(-np.minimum(fmr, 1.0))
    exponent = (int(n) * np.asarray(shares, dtype=np.float64))[:, None]
    total = np.where(exponent > 0, exponent * log_no_match, 0.0).sum(axis=0)
    out: np.ndarray = 0.0 - np.expm1(total)
    return out


def per_search_fpir(
    counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int
) -> tuple[np.ndarray, str]:
    """Per-search P(alert) at watchlist size ``n`` and how it was made.

    Hypergeometric (unbiased) where the watchlist fits in the fillers; the per-person plug-in
    beyond, labelled ``"extrapolation x{n/F}"``.
    """
    model = per_search_fpir_model(n, sizes, shares)
    if within_fillers(n, sizes, shares):
        return hypergeometric_fpir(counts, sizes, shares, n), model
    return plug_in_fpir(counts, sizes, shares, n), model


def per_search_fpir_model(n: int, sizes: np.ndarray, shares: np.ndarray) -> str:
    """How :func:`per_search_fpir` makes its values at watchlist size ``n`` (the label)."""
    if within_fillers(n, sizes, shares):
        return "hypergeometric (exact for N <= F)"
    factor = int(n) / float(np.sum(sizes))
    return f"extrapolation x{factor:.3g} (per-person model)"



# --------------------------------------------------------------------------------------------
# Intervals clustered by person
# --------------------------------------------------------------------------------------------

#: Interval of a scaled FPIR: the design-effect (Korn–Graubard) beta interval of the mean of
#: per-search alert probabilities, with the cluster-robust variance over people; two-sided with
#: Jeffreys ends, the one-sided bound exact and allowing one more person as large as the
#: largest seen (Fay & Feuer 1997). See :func:`interval_from_person_sums`.
SCALED_KORN_GRAUBARD = (
    "korn-graubard (per-search P(alert), clustered by person; two-sided: Jeffreys ends, "
    "Satterthwaite df at the lower end; one-sided bound: exact, with one more largest person, "
    "Fay-Feuer, envelope over fewer false matches (top people))"
)
#: The same where the summary keeps no per-person top sums, or the envelope was turned off:
#: the one-sided bound can then fall when a false match is added.
SCALED_KORN_GRAUBARD_NOT_MONOTONE = (
    "korn-graubard (per-search P(alert), clustered by person; two-sided: Jeffreys ends, "
    "Satterthwaite df at the lower end; one-sided bound: exact, with one more largest person, "
    "Fay-Feuer; NOT monotone in the false matches: no per-person top sums)"
)
#: The envelope without its floor (every person at the lowest per-person rate): the summary
#: keeps no :attr:`~lfr_eval.metrics.ClusterSummary.lowest_rate` (one made by hand, or read
#: from a table written before it was recorded). The bound can then fall a lot right after
#: every person had the same sum (see :func:`interval_from_summary`).
SCALED_KORN_GRAUBARD_NO_FLOOR = (
    "korn-graubard (per-search P(alert), clustered by person; two-sided: Jeffreys ends, "
    "Satterthwaite df at the lower end; one-sided bound: exact, with one more largest person, "
    "Fay-Feuer, envelope over fewer false matches (top people; NO equal-rate floor: no "
    "lowest per-person rate kept))"
)
#: Interval where no search met any filler: the exact bound counted by people.
SCALED_ZERO = "exact one-sided, counted by people (no false matches)"
#: Interval beyond F: from the per-person model's lower end to the pooled model's upper end.
SCALED_RANGE = "korn-graubard range: per-person model (low) to pooled model (high)"


def zero_exponent(n: int, sizes: np.ndarray, shares: np.ndarray) -> float:
    """``N * max_g(w_g / F_g)``: how the zero-false-match bound on one comparison grows to N.

    See :func:`lfr_eval.protocols.zero_false_match_upper`; groups with no share or no fillers
    are left out.
    """
    w = np.asarray(shares, dtype=np.float64)
    f = np.asarray(sizes, dtype=np.float64)
    use = (w > 0) & (f > 0)
    if not use.any():
        return float("inf")
    return float(int(n) * np.max(w[use] / f[use]))


@dataclass(frozen=True)
class ScaledInterval:
    """A scaled FPIR's point and clustered interval at m thresholds (one N, one search set).

    Attributes
    ----------
    fpir : ndarray of shape (m,)
        Mean over searches of the per-search alert probability, in [0, 1].
    lower, upper : ndarray of shape (m,)
        Two-sided interval at ``confidence``.
    upper_bound : ndarray of shape (m,)
        One-sided upper confidence bound at ``confidence`` (what a claim needs).
    method : ndarray of str, shape (m,)
        :data:`SCALED_KORN_GRAUBARD` or, where no search met a filler, :data:`SCALED_ZERO`.
    n_searches, n_subjects : int
        Searches and people (clusters) behind the figure.
    effective_people : float
        Kish's effective number of people ``(sum n_i)^2 / sum n_i^2``.
    design_effect : ndarray of shape (m,)
        Cluster-robust variance over the binomial ``p (1 - p) / n`` (NaN at 0).
    confidence : float
    """

    fpir: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    upper_bound: np.ndarray
    method: np.ndarray
    n_searches: int
    n_subjects: int
    effective_people: float
    design_effect: np.ndarray
    confidence: float


def interval_from_person_sums(
    person_sums: np.ndarray,
    person_searches: np.ndarray,
    exponent: float,
    confidence: float = 0.95,
) -> ScaledInterval:
    """Clustered interval of a mean of per-search probabilities from per-person sums.

    Parameters
    ----------
    person_sums : ndarray of shape (s, m)
        Sum over each person's searches of the per-search value (in [0, 1] each), at m
        thresholds (or m independent data sets, as the simulations use it).
    person_searches : ndarray of shape (s,)
        Searches of each person.
    exponent : float
        :func:`zero_exponent` of the watchlist size and fillers, for the rows where every
        value is 0.
    confidence : float
        In (0, 1).

    Notes
    -----
    The estimate is the ratio ``sum_i V_i / sum_i n_i`` over people; the interval is a
    Korn–Graubard-style design-effect beta interval (:func:`lfr_eval.metrics.korn_graubard`)
    with ``V_i`` in place of error counts: the cluster-robust (linearisation) variance over
    people gives an effective number of searches ``n_eff = p (1 - p) / V``, reduced by
    ``(z / t_df)^2`` with ``df`` from the people who carry the variance, and beta quantiles of
    ``p n_eff`` "errors" in ``n_eff`` give the ends. A per-search value in [0, 1] with mean p
    has variance at most ``p (1 - p)``, so the binomial form is the right scale; unlike 0/1
    errors, a design effect below 1 is real here (a probability carries more than one
    Bernoulli draw), so ``n_eff`` is not truncated at n. The beta form keeps the interval
    inside [0, 1] and skewed away from 0 when the rate is small.

    **One-sided upper bound** (what a claim is checked against): the larger of the exact
    (Clopper–Pearson) beta bound and Fay & Feuer's (1997): the same beta with one more person
    as large as the largest seen (``largest``), see :func:`_one_more_person_upper`. A sample
    that missed the few people who carry most false matches has a low mean *and* a low
    variance, and the beta bound alone then covered only 93% in simulation (20–100 people
    whose searches share one rate, N = F / 10); with the extra person it covers at least 96%
    there (``benchmarks/results/scaling_grid_worst.md``).

    **Two-sided interval**: Jeffreys ends (quantiles of ``Beta(x + 1/2, n - x + 1/2)``, the
    design-effect Jeffreys form of the plain rates' default,
    :func:`lfr_eval.metrics.design_effect_jeffreys`), the upper end with the t widening above,
    the lower end with Satterthwaite's degrees of freedom for the part of the variance beyond
    the binomial (``df / (1 - 1/deff)^2``): only that excess is estimated from the few people
    who carry it. A mean of skewed per-person sums errs on the upper side when people are
    few (the misses were almost all there), so the upper end keeps the full widening, while
    the full widening on the lower end made it needlessly low. Measured on the grid's 150
    N <= F cells with the same data sets (``benchmarks/bench_scaling_two_sided.py``,
    ``benchmarks/results/scaling_two_sided.md``): 91% of cells inside 0.93–0.97 and none
    below (min 0.938), where the exact ends with the upper end raised to the one-sided bound
    (the rule before) had 53%, 70 cells above 0.97. The cells still above 0.97 have under
    about 10 false-matching people per data set, where a discrete count cannot be tight. The
    two-sided upper end is *not* raised to the one-sided bound: the one-sided bound carries the
    extra person's guard and is often (about half the data sets) the higher of the two, by
    design; a claim uses the one-sided bound, a "95% CI" the two-sided interval.

    Where every value is 0 (no search met any filler) the variance says nothing: the bound is
    ``1 - alpha ** (exponent / s_eff)`` with ``s_eff`` the effective number of people, the
    zero-false-match bound of :func:`lfr_eval.protocols.zero_false_match_upper` counted by
    people (each person's searches treated as one) rather than by searches.
    """
    from lfr_eval.metrics._clustered import summarise_clusters

    sums = np.asarray(person_sums, dtype=np.float64)
    trials = np.asarray(person_searches, dtype=np.float64)
    # values may exceed their searches by rounding only
    sums = np.clip(sums, 0.0, trials[:, None])
    return interval_from_summary(
        summarise_clusters(sums, trials), exponent, confidence, largest_person_sum(sums)
    )


def interval_from_summary(
    summary: ClusterSummary,
    exponent: float,
    confidence: float = 0.95,
    largest: np.ndarray | None = None,
    *,
    two_sided_ends: IntervalEnd = "jeffreys",
    two_sided_df: ScaledDfRule = "satterthwaite-lower",
    raise_two_sided: bool = False,
    envelope: bool = True,
) -> ScaledInterval:
    """:func:`interval_from_person_sums` from the sums' :class:`~lfr_eval.metrics.ClusterSummary`
    (made in bounded memory from a :class:`SearchValueHistogram` by
    :func:`~lfr_eval.metrics.summarise_subjects`) and the largest person's sum at each
    threshold (``largest``, shape (m,); see :func:`largest_person_sum`).

    ``two_sided_ends``, ``two_sided_df`` and ``raise_two_sided`` choose the two-sided rule
    (the ends' form, see :func:`lfr_eval.metrics._clustered._ends`; the degrees of freedom
    of the t widening, ``"satterthwaite"``: only the variance beyond the binomial counts;
    whether the upper end is raised to the one-sided bound). The defaults are the scaling
    table's; the others are there for ``benchmarks/bench_scaling_two_sided.py``, which
    compares the rules by simulation. The one-sided bound does not depend on them.

    **The one-sided bound is an envelope over fewer false matches** (``envelope=True``, the
    default; the claim checker's construction, :func:`lfr_eval.metrics.monotone_upper_bound`):
    the largest of this bound over the data and a family of data sets with smaller per-person
    sums (none; the top people by sum and by rate, with all of theirs; the last of them with
    less; each stored person alone, all of them, all with one of them one fewer or left out),
    each with its own largest person for the Fay–Feuer term, and the same family with everyone
    else at the **floor**, the lowest per-person rate (:func:`_floor_envelope`). Here a
    person's "errors" are the sum of their searches' P(alert), which a further false match
    among the fillers can only raise; the plain bound can fall when it does (the few people
    carrying the sums set about 1 degree of freedom, a third lifts them). The floor is for the
    state where every person has the same sum: the variance is then 0, nothing is known about
    the spread between people and the bound counts people, while one more false match gives a
    variance again and the plain bound falls a lot (0.0311 -> 0.0109 with 200 people x 10
    searches, F = 1,000, N = 100; 0.0849 -> 0.00088 with 34 x 35, F = 5,000, N = 50); every
    person at the lowest rate of the data after is that equal-sums data set, so the envelope
    keeps its bound. It is never below the plain bound, so its coverage can only rise. It is
    **nearly**, not exactly, monotone (the family is not every data set with smaller sums):
    the falls left are measured by ``benchmarks/bench_monotone_falls.py --scaled``: 1 fall in
    1,000 seeded random paths (21,680 false matches added one at a time), 0.27% of the bound,
    with 200-2,000 people at a rate under 1% (``benchmarks/results/monotone_falls_scaled.md``).
    The top-people part needs the
    summary's top people (:attr:`ClusterSummary.keeps_top_people`); without them, or with
    ``envelope=False`` (comparisons only), the bound is the plain one and the label says
    :data:`SCALED_KORN_GRAUBARD_NOT_MONOTONE`. The floor needs the summary's
    :attr:`~lfr_eval.metrics.ClusterSummary.lowest_rate`; without it the label says
    :data:`SCALED_KORN_GRAUBARD_NO_FLOOR`.
    """
    from lfr_eval.metrics._clustered import distinct_columns

    # Identical threshold columns give identical figures; on a fine grid most are (every
    # threshold above the highest impostor score, and between two scores the data hold), and
    # the envelope's beta quantiles cost ~0.5 us each: 63 M of them, 2.4 M distinct, for a
    # 400-image LFW run. Compute each distinct column once, exactly as it would be alone.
    keep, inverse = distinct_columns(
        summary.errors,
        summary.variance,
        summary.df,
        summary.top_errors,
        summary.top_trials,
        summary.lowest_rate,
        largest,
    )
    part = _interval_at_columns(
        summary.columns(keep),
        exponent,
        confidence,
        None if largest is None else np.asarray(largest)[keep],
        two_sided_ends=two_sided_ends,
        two_sided_df=two_sided_df,
        raise_two_sided=raise_two_sided,
        envelope=envelope,
    )
    return replace(
        part,
        fpir=part.fpir[inverse],
        lower=part.lower[inverse],
        upper=part.upper[inverse],
        upper_bound=part.upper_bound[inverse],
        method=part.method[inverse],
        design_effect=part.design_effect[inverse],
    )


def _interval_at_columns(
    summary: ClusterSummary,
    exponent: float,
    confidence: float,
    largest: np.ndarray | None,
    *,
    two_sided_ends: IntervalEnd,
    two_sided_df: ScaledDfRule,
    raise_two_sided: bool,
    envelope: bool,
) -> ScaledInterval:
    """:func:`interval_from_summary` column by column (each column's figures depend on that
    column alone)."""
    total = max(float(summary.trials), 1.0)
    rate = summary.errors / total
    alpha = 1.0 - float(confidence)
    people = max(float(summary.effective_people), 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        zero_two = float(-np.expm1(exponent / people * np.log(alpha / 2)))
    low, high, one_sided = _scaled_ends(
        summary, exponent, confidence, largest, two_sided_ends, two_sided_df, raise_two_sided
    )
    enveloped = envelope and summary.keeps_top_people
    if enveloped and summary.trials > 0:
        from lfr_eval.metrics._clustered import _family_keeps, _top_family

        family = _top_family(summary)
        m = rate.shape[0]
        family_largest = None
        if largest is not None:
            # each member's largest person is the largest sum it keeps (the same family as
            # _top_family's: the stored people are the top M by each ranking)
            e = np.asarray(summary.top_errors, dtype=np.float64)
            n = np.asarray(summary.top_trials, dtype=np.float64)
            family_largest = _family_keeps(e, n, max(1, e.shape[0] // 2)).max(axis=1).ravel()
        members = _scaled_ends(
            family, exponent, confidence, family_largest, one_sided_only=True
        )[2]
        one_sided = np.maximum(one_sided, members.reshape(-1, m).max(axis=0))
        if summary.lowest_rate is not None:
            one_sided = np.maximum(
                one_sided, _floor_envelope(summary, exponent, confidence, largest)
            )
    zero = summary.errors <= 0
    label = (
        SCALED_KORN_GRAUBARD_NOT_MONOTONE
        if not enveloped
        else SCALED_KORN_GRAUBARD if summary.lowest_rate is not None
        else SCALED_KORN_GRAUBARD_NO_FLOOR
    )
    method = np.where(zero, SCALED_ZERO, label).astype(object)
    with np.errstate(invalid="ignore", divide="ignore"):
        binomial = rate * (1 - rate) / total
        deff = np.where(summary.variance > 1e-12 * binomial, summary.variance, 0.0) / binomial
    return ScaledInterval(
        fpir=rate,
        lower=np.where(zero, 0.0, np.minimum(low, rate)),
        upper=np.where(zero, min(zero_two, 1.0), np.maximum(high, rate)),
        upper_bound=one_sided,
        method=method,
        n_searches=int(round(summary.trials)),
        n_subjects=summary.n_subjects,
        effective_people=float(summary.effective_people),
        design_effect=np.where(zero, np.nan, deff),
        confidence=float(confidence),
    )


def _floor_envelope(
    summary: ClusterSummary, exponent: float, confidence: float, largest: np.ndarray | None
) -> np.ndarray:
    """The largest plain one-sided bound over the envelope's family with everyone at the floor,
    shape (m,); 0 where the floor is 0 (someone has no false match: the family is then the
    one without a floor, already in the envelope).

    The floor is the summary's lowest per-person rate r (``lowest_rate``, needed, as are the
    top people): every person at ``r n_i`` is a data set with smaller (or equal) sums than
    the data, person by person, and so is each member of :func:`_family_keeps` with everyone
    it does not keep at the floor rather than 0 (:func:`~lfr_eval.metrics._clustered._top_family`
    with ``floor``). With all at the floor the variance is 0 and the bound counts people, as
    it did for the equal-sums data set that one more false match leaves behind. Each member's
    largest person for the Fay–Feuer term is taken as the data's (``largest``): a member's own
    is at most that (no person's sum is above the data's), and a larger one only raises the
    bound, never below the plain one.
    """
    from lfr_eval.metrics._clustered import _top_family

    assert summary.lowest_rate is not None
    floor = np.asarray(summary.lowest_rate, dtype=np.float64)
    out = np.zeros(floor.shape[0])
    # only where everyone has a false match: elsewhere the floor is 0 and costs nothing
    use = np.flatnonzero((floor > 0) & (np.asarray(summary.errors) > 0))
    if use.size == 0:
        return out
    part = summary.columns(use)
    family = _top_family(part, floor=floor[use])
    members = family.errors.shape[0] // use.size
    member_largest = None if largest is None else np.tile(np.asarray(largest)[use], members)
    bounds = _scaled_ends(family, exponent, confidence, member_largest, one_sided_only=True)[2]
    out[use] = bounds.reshape(members, use.size).max(axis=0)
    return out


def _scaled_ends(
    summary: ClusterSummary,
    exponent: float,
    confidence: float,
    largest: np.ndarray | None,
    two_sided_ends: IntervalEnd = "jeffreys",
    two_sided_df: ScaledDfRule = "satterthwaite-lower",
    raise_two_sided: bool = False,
    *,
    one_sided_only: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(two-sided low, two-sided high, plain one-sided bound) of :func:`interval_from_summary`
    at each column of ``summary``; the one-sided bound is already the zero-false-match bound
    where a column has no false match, and never below the rate. ``one_sided_only``: the
    two-sided ends are left out (NaN; the envelope's family needs only the bound)."""
    from scipy import stats

    from lfr_eval.metrics._clustered import _ends, fractional_clopper_pearson

    total = max(float(summary.trials), 1.0)
    rate = summary.errors / total
    alpha = 1.0 - float(confidence)
    people = max(float(summary.effective_people), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        binomial = rate * (1 - rate) / total
        # a variance at round-off level (every person with the same sum: 6.6e-36 where 0 is
        # exact) is 0, so both count people below, not n_eff ~ 1e15 (a zero-width interval)
        variance = np.where(summary.variance > 1e-12 * binomial, summary.variance, 0.0)
        deff = variance / binomial
        # Unlike 0/1 errors, a mean of probabilities can carry more information than its
        # searches (deff < 1 is real, not noise), so n_eff is not truncated at n.
        n_eff = rate * (1 - rate) / variance
    df_people = np.where(np.isfinite(summary.df), summary.df, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # only the variance beyond the binomial rests on few people (Satterthwaite 1946)
        excess = np.clip(1.0 - 1.0 / deff, 0.0, 1.0)
        df_excess = np.where(excess > 0, df_people / excess**2, 1e12)
    df_excess = np.minimum(np.where(np.isfinite(df_excess), df_excess, df_people), 1e12)

    def effective(tail: float, df: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # few people carry the variance: widen as a t statistic would
        widen = (stats.norm.ppf(1 - tail) / stats.t.ppf(1 - tail, df)) ** 2
        n_t = n_eff * widen
        # one person, or a variance of 0 with values inside (0, 1): nothing is known about
        # the spread between people; count people
        n_t = np.where(np.isfinite(n_t) & (n_t > 0) & (summary.n_subjects > 1), n_t, people)
        return np.minimum(n_t, 1e15), widen

    ends = {"two-sided": (np.full_like(rate, np.nan), np.full_like(rate, np.nan))}
    for sided, tail in (("two-sided", alpha / 2), ("upper", alpha)):
        if sided == "two-sided" and one_sided_only:
            continue
        if sided == "two-sided":
            df_low = df_people if two_sided_df == "people" else df_excess
            df_high = df_excess if two_sided_df == "satterthwaite" else df_people
            n_low, _ = effective(tail, df_low)
            n_t, widen = effective(tail, df_high)
            low_end, _ = _ends(rate * n_low, n_low, tail, tail, two_sided_ends)
            _, high_end = _ends(rate * n_t, n_t, tail, tail, two_sided_ends)
        else:
            n_t, widen = effective(tail, df_people)
            low_end, high_end = fractional_clopper_pearson(rate * n_t, n_t, 0.0, tail)
        if largest is not None and sided == "upper":
            # the bound a claim is checked against: one more person as large as the largest
            high_end = np.maximum(high_end, _one_more_person_upper(
                rate, variance, np.asarray(largest) / total, widen, tail
            ))  # fmt: skip
        ends[sided] = (low_end, high_end)
    zero = summary.errors <= 0
    with np.errstate(over="ignore", invalid="ignore"):
        zero_one = float(-np.expm1(exponent / people * np.log(alpha)))
    low, high = ends["two-sided"]
    if raise_two_sided:
        # the two-sided upper end is never below the one-sided bound at the same confidence
        high = np.maximum(high, ends["upper"][1])
    one_sided = np.where(zero, min(zero_one, 1.0), np.maximum(ends["upper"][1], rate))
    return low, high, one_sided


def _one_more_person_upper(
    rate: np.ndarray, variance: np.ndarray, weight: np.ndarray, widen: np.ndarray, tail: float
) -> np.ndarray:
    """Upper end with one more person as large as the largest seen (Fay & Feuer 1997).

    Clopper–Pearson's upper end adds one event of weight ``1 / n_eff`` to the x observed
    (``Beta(x + 1, n - x)``). When a few people carry the false matches, their per-person
    sums are skewed and a sample that missed the heaviest people has both a low mean and a low
    variance: the upper end is then too low (one-sided coverage 0.93 measured with 20–100
    people whose searches share one rate, ``benchmarks/results/scaling_grid_worst.md``). Fay
    and Feuer's gamma interval for weighted sums of counts (directly standardised rates) adds
    instead the largest weight: mean ``p + w`` and variance ``V + w^2`` with ``w`` the largest
    person's share of the total, here carried by the same beta (``Beta(x_u, n_u - x_u + 1)``,
    ``n_u`` the effective searches of that mean and variance, ``x_u = (p + w) n_u``). With one
    error per person and independent searches it is Clopper–Pearson's upper end again; with
    many people the added weight is negligible.
    """
    from scipy import stats

    p_u = np.minimum(rate + weight, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_u = p_u * (1 - p_u) / (variance + weight**2) * widen
        x_u = p_u * n_u
        high = stats.beta.ppf(1 - tail, np.maximum(x_u, 1e-300), np.maximum(n_u - x_u + 1, 1e-300))
    ok = np.isfinite(high) & (weight > 0) & (p_u < 1)
    return np.where(ok, high, np.where(p_u >= 1, 1.0, 0.0))


def largest_person_sum(counts: SubjectHistogram | np.ndarray) -> np.ndarray:
    """The largest per-person sum at each threshold, shape (m,): from per-person sums (s, m) or
    a (sparse) histogram, a block of people at a time."""
    if isinstance(counts, np.ndarray):
        return counts.max(axis=0) if counts.shape[0] else np.zeros(counts.shape[1])
    from lfr_eval.metrics._intervals import summary_block_rows

    m = counts.thresholds.shape[0]
    out = np.zeros(m)
    for sums, _ in counts.dense_chunks(summary_block_rows(m)):
        if len(sums):
            out = np.maximum(out, sums.max(axis=0))
    return out


def person_sums(values: np.ndarray, subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-person sums of per-search values (n, m) and each person's searches."""
    _, inverse = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    inverse = inverse.reshape(-1)
    s = int(inverse.max()) + 1 if len(inverse) else 0
    sums = np.zeros((s, values.shape[1]))
    np.add.at(sums, inverse, values)
    return sums, np.bincount(inverse, minlength=s).astype(np.float64)


def effective_people(subjects: np.ndarray) -> float:
    """Kish's effective number of people ``(sum n_i)^2 / sum n_i^2`` of the searches' subjects."""
    _, searches = person_sums(np.zeros((len(subjects), 0)), subjects)
    return float(searches.sum() ** 2 / max(float((searches**2).sum()), 1.0))


def clustered_scaled_interval(
    values: np.ndarray, subjects: np.ndarray, exponent: float, confidence: float = 0.95
) -> ScaledInterval:
    """:func:`interval_from_person_sums` of per-search values (n, m) and their subjects (n,)."""
    sums, searches = person_sums(np.asarray(values, dtype=np.float64), subjects)
    return interval_from_person_sums(sums, searches, exponent, confidence)


def composite_fmr(counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Per-search ``sum_g w_g c_g / F_g`` (n, m): its mean is the watchlist-weighted pooled FMR."""
    fmr = np.asarray(counts, dtype=np.float64) / np.asarray(sizes, dtype=np.float64)[None, :, None]
    out: np.ndarray = np.einsum("igt,g->it", fmr, np.asarray(shares, dtype=np.float64))
    return out


def group_fmr(counts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Each filler group's pooled false-match rate, shape (G, m), from counts (n, G, m)."""
    c = np.asarray(counts, dtype=np.float64)
    fmr_g: np.ndarray = c.sum(axis=0) / (c.shape[0] * np.asarray(sizes, dtype=np.float64)[:, None])
    return fmr_g


def pooled_map(
    counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int, rates: np.ndarray
) -> np.ndarray:
    """The pooled model's FPIR(N) at composite FMR values ``rates`` (k, m).

    Each filler group's pooled FMR is scaled by ``rates / r`` (r: the observed composite rate),
    so the map is monotone and equals :func:`pooled_fpir` at ``rates = r``.
    """
    return pooled_map_from_rates(group_fmr(counts, sizes), shares, n, rates)


def pooled_map_from_rates(
    fmr_g: np.ndarray, shares: np.ndarray, n: int, rates: np.ndarray
) -> np.ndarray:
    """:func:`pooled_map` from the groups' pooled FMR (G, m) (:func:`group_fmr`)."""
    w = np.asarray(shares, dtype=np.float64)
    r = np.einsum("gt,g->t", fmr_g, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(r > 0, np.asarray(rates, dtype=np.float64) / r, 0.0)  # (k, m)
    scaled = np.minimum(fmr_g[None, :, :] * ratio[:, None, :], 1.0)  # (k, G, m)
    with np.errstate(divide="ignore"):
        log_none = np.log1p(-scaled)
    exponent = (int(n) * w)[None, :, None]
    # 0.0 - expm1: no FMR at all gives +0.0, not -0.0 (printed "-0" in scaling.csv and claims)
    out: np.ndarray = 0.0 - np.expm1(np.where(exponent > 0, exponent * log_none, 0.0).sum(axis=1))
    return out


def pooled_interval(
    counts: np.ndarray,
    sizes: np.ndarray,
    shares: np.ndarray,
    n: int,
    subjects: np.ndarray,
    exponent: float,
    confidence: float = 0.95,
) -> ScaledInterval:
    """The pooled model's FPIR(N) with the clustered interval of its pooled FMR mapped to N.

    The watchlist-weighted pooled FMR is the mean of each search's ``sum_g w_g c_g / F_g``; its
    Korn–Graubard interval (clustered by person) is carried to FPIR(N) by the pooled model's
    monotone map (:func:`pooled_map`), so the coverage carries over. ``counts`` has shape
    (n_searches, n_groups, m).
    """
    rate = clustered_scaled_interval(
        composite_fmr(counts, sizes, shares), subjects, 1.0, confidence
    )
    return pooled_interval_from_rate(rate, group_fmr(counts, sizes), shares, n, exponent)


def pooled_interval_from_rate(
    rate: ScaledInterval, fmr_g: np.ndarray, shares: np.ndarray, n: int, exponent: float
) -> ScaledInterval:
    """:func:`pooled_interval` from the composite FMR's clustered interval and the groups'
    pooled FMR (G, m)."""
    confidence = rate.confidence
    zero = rate.method == SCALED_ZERO
    ends = pooled_map_from_rates(
        fmr_g, shares, n, np.stack([rate.fpir, rate.lower, rate.upper, rate.upper_bound])
    )
    alpha = 1.0 - float(confidence)
    people = max(rate.effective_people, 1.0)
    zero_two = float(-np.expm1(exponent / people * np.log(alpha / 2)))
    zero_one = float(-np.expm1(exponent / people * np.log(alpha)))
    return replace(
        rate,
        fpir=ends[0],
        lower=np.where(zero, 0.0, ends[1]),
        upper=np.where(zero, zero_two, ends[2]),
        upper_bound=np.where(zero, zero_one, ends[3]),
    )


def reorder_interval(interval: ScaledInterval, index: np.ndarray) -> ScaledInterval:
    """The interval's per-threshold arrays taken at ``index`` (e.g. back to the caller's
    threshold order)."""
    return replace(
        interval,
        fpir=interval.fpir[index],
        lower=interval.lower[index],
        upper=interval.upper[index],
        upper_bound=interval.upper_bound[index],
        method=interval.method[index],
        design_effect=interval.design_effect[index],
    )


def extrapolation_range(per_person: ScaledInterval, pooled: ScaledInterval) -> ScaledInterval:
    """Beyond F: the per-person model's point, from its lower end to the pooled model's upper.

    The per-person plug-in is biased low (Jensen, per search) and the pooled rate high (Jensen,
    across people); the truth lies between their expectations, so the interval runs from the
    lower end of one to the upper end of the other (:data:`SCALED_RANGE`).
    """
    zero = per_person.method == SCALED_ZERO
    return replace(
        per_person,
        upper=np.maximum(per_person.upper, pooled.upper),
        upper_bound=np.maximum(per_person.upper_bound, pooled.upper_bound),
        method=np.where(zero, SCALED_ZERO, SCALED_RANGE).astype(object),
    )


# --------------------------------------------------------------------------------------------
# Per-person sums without the (searches x thresholds) table
# --------------------------------------------------------------------------------------------

#: Searches read from the filler counts at a time when building histograms.
HISTOGRAM_ROWS = 4096


@dataclass(frozen=True)
class SearchValueHistogram(SubjectHistogram):
    """Per-person sums of a per-search value that falls as the threshold rises, kept sparse.

    The value is a search's P(alert) at a watchlist size (:func:`per_search_fpir`) or its
    composite false-match rate (:func:`composite_fmr`); both are non-increasing in the
    threshold because a search's filler counts are. So, as :class:`SubjectHistogram` does for
    0/1 errors, row ``i`` of ``bins`` holds person i's **increments**: ``bins[i, j]`` (j >= 1)
    is the sum over their searches of ``value(t_{j-1}) - value(t_j)`` (sorted thresholds, with
    ``value(t_m) = 0``), and the person's sum at sorted threshold t is the reverse cumulative
    sum ``sum_{j > t} bins[i, j]``. A search adds entries only where its value changes: where
    its counts change and the value is neither 0 (no filler at or above T) nor saturated at 1
    (every watchlist of N must hold a match), so memory is far below people x thresholds, and
    the bootstrap and the clustered summary
    (:func:`~lfr_eval.metrics.bootstrap_replicates`, :func:`~lfr_eval.metrics.summarise_subjects`)
    run on it unchanged. Column 0 is unused (0).

    Attributes are those of :class:`SubjectHistogram`, with ``bins`` float64 and ``trials`` the
    searches of each person; "errors" are the per-person sums of the value.
    """

    def subset(self, mask: np.ndarray) -> SearchValueHistogram:
        rows = np.flatnonzero(mask)
        return SearchValueHistogram(
            self.subjects[rows], self.trials[rows], self.bins[rows], self.thresholds, True
        )

    def error_totals(self) -> np.ndarray:
        """The value summed over every search at each threshold, float64 shape (m,)."""
        binned = np.asarray(self.bins.sum(axis=0), dtype=np.float64).ravel()
        total = np.asarray(self.trials.sum(), dtype=np.float64)
        return self._errors_from_hits_sorted(self._hits_sorted(binned), total)

    def errors_at(self, index: int) -> np.ndarray:
        """Each person's sum of the value at threshold ``thresholds[index]``, shape (s,)."""
        position = int(np.flatnonzero(self._order == index)[0])
        return np.asarray(self.bins[:, position + 1 :].sum(axis=1), dtype=np.float64).ravel()

    def dense_chunks(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(per-person sums (k, m), searches (k,)) of consecutive blocks of people."""
        for start in range(0, self.n_subjects, max(1, rows)):
            stop = min(start + max(1, rows), self.n_subjects)
            trials = self.trials[start:stop]
            sums = self._errors_from_hits_sorted(
                self._hits_sorted(self.bins[start:stop].toarray()), trials
            )
            # a telescoped sum may pass its bounds by rounding only
            yield np.clip(sums, 0.0, trials[:, None].astype(np.float64)), trials

    def replicate_errors(self, weights: np.ndarray) -> np.ndarray:
        """Sums of bootstrap replicates ``weights`` (B, s) at each threshold, shape (B, m)."""
        binned = np.asarray(self.bins.T @ weights.T.astype(np.float64), dtype=np.float64).T
        trials = weights.astype(np.float64) @ self.trials.astype(np.float64)
        return self._errors_from_hits_sorted(self._hits_sorted(binned), trials)


#: A per-search value of a chunk of filler counts (rows, G, m) -> (rows, m), non-increasing in
#: the threshold.
SearchValue = Callable[[np.ndarray], np.ndarray]


def search_value_histogram(
    chunks: Iterator[tuple[int, np.ndarray]],
    clusters: np.ndarray,
    cluster_ids: np.ndarray,
    value: SearchValue,
    thresholds: np.ndarray,
) -> SearchValueHistogram:
    """The sparse per-cluster histogram of one per-search value, in one pass over the counts.

    Parameters
    ----------
    chunks : iterator of (first row, counts (rows, G, m))
        The searches' filler counts per group at the sorted thresholds, a block at a time.
    clusters : ndarray of int, shape (n,)
        Row (cluster: a person, or a person within a group) of each search, in
        ``[0, len(cluster_ids))``.
    cluster_ids : ndarray of shape (s,)
        The id of each row (sorted, as :class:`SubjectHistogram` keeps them).
    value : callable
        Per-search value of a chunk, e.g. P(alert) at one N (:func:`per_search_fpir`).
    thresholds : ndarray of shape (m,)
        Sorted ascending, the thresholds of the counts' last axis.

    Returns
    -------
    SearchValueHistogram
        Memory: the entries where values change (int32 coordinates, float64 values), never
        searches x thresholds; a block of searches is dense at a time.
    """
    from scipy.sparse import coo_array

    m = len(thresholds)
    rows, cols, data = [], [], []
    for start, chunk in chunks:
        values = np.asarray(value(chunk), dtype=np.float64)  # (k, m), sorted thresholds
        steps = np.empty((values.shape[0], m + 1))
        steps[:, 0] = 0.0
        steps[:, 1:-1] = values[:, :-1] - values[:, 1:]
        steps[:, -1] = values[:, -1]
        r, j = np.nonzero(steps)
        rows.append(clusters[start + r].astype(np.int32))
        cols.append(j.astype(np.int32))
        data.append(steps[r, j])
        del steps, values
    s = len(cluster_ids)
    if rows:
        coords = (np.concatenate(rows), np.concatenate(cols))
        entries = np.concatenate(data)
    else:
        coords, entries = (np.zeros(0, np.int32), np.zeros(0, np.int32)), np.zeros(0)
    del rows, cols, data
    bins = coo_array((entries, coords), shape=(s, m + 1)).tocsr()  # sums duplicates
    bins.sum_duplicates()
    trials = np.bincount(clusters, minlength=s).astype(np.int64)
    return SearchValueHistogram(np.asarray(cluster_ids), trials, bins, thresholds, True)


def merge_rows(
    histogram: SearchValueHistogram, owner: np.ndarray, owner_ids: np.ndarray
) -> SearchValueHistogram:
    """The histogram with its rows summed by ``owner`` (row -> index into ``owner_ids``): e.g.
    clusters of a person within a group merged into the person."""
    from scipy.sparse import csr_array

    s = len(histogram.subjects)
    merge = csr_array(
        (np.ones(s), (np.asarray(owner), np.arange(s))), shape=(len(owner_ids), s)
    )
    bins = (merge @ histogram.bins).tocsr()
    trials = np.bincount(owner, weights=histogram.trials, minlength=len(owner_ids))
    return SearchValueHistogram(
        np.asarray(owner_ids), trials.astype(np.int64), bins, histogram.thresholds, True
    )


def search_value_histograms(
    chunks: Iterator[tuple[int, np.ndarray]],
    subjects: np.ndarray,
    search_sets: list[np.ndarray],
    values: dict[str, SearchValue],
    thresholds: np.ndarray,
) -> dict[tuple[str, int], SearchValueHistogram]:
    """:func:`search_value_histogram` of each value over each search set (small data: the
    chunks are read once and kept), keyed by (value name, search-set index)."""
    kept = list(chunks)
    people, codes = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    codes = codes.ravel()
    out = {}
    for k, mask in enumerate(search_sets):
        present, rows = np.unique(codes[mask], return_inverse=True)
        rows_of_search = np.full(len(codes), -1, np.int64)
        rows_of_search[np.flatnonzero(mask)] = rows.ravel()
        for name, fn in values.items():
            parts = [
                (a, chunk[mask[a : a + len(chunk)]], rows_of_search[a : a + len(chunk)])
                for a, chunk in kept
            ]
            local = np.concatenate([r[r >= 0] for _, _, r in parts]) if parts else rows
            offsets = np.cumsum([0] + [len(c) for _, c, _ in parts])
            out[(name, k)] = search_value_histogram(
                ((int(o), c) for o, (_, c, _) in zip(offsets, parts)),
                local.astype(np.int64),
                people[present],
                fn,
                thresholds,
            )
    return out


@dataclass(frozen=True)
class SearchClusters:
    """The rows of the scaling histograms: each person, or each person within a search group.

    One histogram over these rows serves every search set: the groups are row subsets, and
    everyone is the rows merged by person (:func:`merge_rows`), so the counts are read and the
    entries held once, not once per set.

    Attributes
    ----------
    clusters : ndarray of int64, shape (n,)
        Row of each search.
    ids : ndarray, shape (c,)
        Person id of each row.
    person : ndarray of int64, shape (c,)
        Index of each row's person in :attr:`people`.
    people : ndarray, shape (p,)
        Sorted person ids.
    label : ndarray of int64, shape (c,)
        Search-group index of each row (0 when there are no groups).
    n_labels : int
        Search groups (0: none).
    """

    clusters: np.ndarray
    ids: np.ndarray
    person: np.ndarray
    people: np.ndarray
    label: np.ndarray
    n_labels: int

    @classmethod
    def of(cls, subjects: np.ndarray, groups: np.ndarray | None = None) -> SearchClusters:
        """Clusters of searches by person (``groups``: each search's group index, or None)."""
        people, person = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
        person = person.ravel().astype(np.int64)
        if groups is None:
            rows = np.arange(len(people), dtype=np.int64)
            return cls(person, people, rows, people, np.zeros(len(people), np.int64), 0)
        n_labels = int(np.max(groups)) + 1 if len(groups) else 0
        keys, clusters = np.unique(person * max(n_labels, 1) + groups, return_inverse=True)
        owner = keys // max(n_labels, 1)
        return cls(
            clusters.ravel().astype(np.int64), people[owner], owner, people,
            keys % max(n_labels, 1), n_labels,
        )  # fmt: skip

    def per_set(self, histogram: SearchValueHistogram) -> list[SearchValueHistogram]:
        """Everyone's histogram, then each group's (in group-index order)."""
        if self.n_labels == 0:
            return [histogram]
        everyone = merge_rows(histogram, self.person, self.people)
        return [everyone] + [histogram.subset(self.label == g) for g in range(self.n_labels)]
