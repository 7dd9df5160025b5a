"""Tests of whether groups' error rates differ: Fisher's exact test, subject permutation tests,
design-effect (Rao-Scott) tests from clustered totals and a parametric null bootstrap-t over
people (the default on per-person counts, :func:`bootstrap_compare_groups`).

Fisher's exact test treats every search as an independent trial. When people appear in several
searches (repeat passes, several images) their searches are correlated and Fisher's test is too
eager to call a difference; the other tests allow for it: the permutation tests by permuting
group labels between **subjects**, carrying each subject's searches along, the bootstrap by
drawing whole people's errors from a model fitted under equal rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from lfr_eval.metrics._clustered import (
    ClusteredRate,
    ClusterSummary,
    korn_graubard_from_summary,
)
from lfr_eval.metrics._people_sums import PeopleSums, people_sums
from lfr_eval.metrics._validation import MetricInputError, check_counts

Alternative = Literal["two-sided", "greater", "less"]

MSG_NO_TRIALS = "group {name!r} has no searches; a rate cannot be compared without trials"
MSG_ALTERNATIVE = "alternative must be 'two-sided', 'greater' or 'less', got {value!r}"


@dataclass(frozen=True)
class GroupTestResult:
    """Result of a test of equal error rates in two groups.

    Attributes
    ----------
    test : str
        ``"fisher-exact"`` or ``"subject-permutation"``.
    group_a, group_b : str
        Labels of the two groups compared.
    errors_a, trials_a, errors_b, trials_b : int
        Counts in each group (searches, not subjects).
    rate_a, rate_b : float
        Observed rates in [0, 1].
    statistic : float
        Fisher: the sample odds ratio (may be 0 or inf). Permutation: ``rate_a - rate_b``.
    p_value : float
        In (0, 1]. The permutation p-value is ``(1 + #as extreme) / (1 + n_permutations)``.
    alternative : str
        ``"greater"`` tests rate_a > rate_b.
    n_subjects_a, n_subjects_b : int or None
        Subjects in each group (permutation and clustered tests).
    n_permutations : int or None
    independence_assumed : bool
        True when the test treats searches as independent (Fisher).
    p_unadjusted : float or None
        Clustered test only: this pair's own p-value; ``p_value`` is then adjusted for every
        pair of the groups in ``family`` (the multiplicity-controlled one to read).
    family : tuple of str or None
        Clustered test only: the groups whose pairs the adjustment covers.
    """

    test: str
    group_a: str
    group_b: str
    errors_a: int
    trials_a: int
    errors_b: int
    trials_b: int
    rate_a: float
    rate_b: float
    statistic: float
    p_value: float
    alternative: str
    n_subjects_a: int | None = None
    n_subjects_b: int | None = None
    n_permutations: int | None = None
    independence_assumed: bool = True
    p_unadjusted: float | None = None
    family: tuple[str, ...] | None = None

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the difference is significant at level ``alpha``."""
        return self.p_value <= alpha


def _check_alternative(alternative: str) -> None:
    if alternative not in ("two-sided", "greater", "less"):
        raise MetricInputError(MSG_ALTERNATIVE.format(value=alternative))


def fisher_exact_test(
    errors_a: int,
    trials_a: int,
    errors_b: int,
    trials_b: int,
    *,
    alternative: Alternative = "two-sided",
    group_a: str = "a",
    group_b: str = "b",
) -> GroupTestResult:
    """Fisher's exact test of equal error rates from counts (searches assumed independent).

    Examples
    --------
    >>> r = fisher_exact_test(7, 1000, 0, 1000)
    >>> round(r.p_value, 4)
    0.0155
    """
    _check_alternative(alternative)
    check_counts([errors_a, errors_b], [trials_a, trials_b])
    for name, n in ((group_a, trials_a), (group_b, trials_b)):
        if n == 0:
            raise MetricInputError(MSG_NO_TRIALS.format(name=name))
    # scipy.stats is imported where it is used: it costs ~1 s at import and the app's pages and
    # the CLI import the metrics without always computing an interval (tests/test_imports.py)
    from scipy import stats

    table = [[errors_a, trials_a - errors_a], [errors_b, trials_b - errors_b]]
    res = stats.fisher_exact(table, alternative=alternative)
    return GroupTestResult(
        test="fisher-exact",
        group_a=str(group_a),
        group_b=str(group_b),
        errors_a=int(errors_a),
        trials_a=int(trials_a),
        errors_b=int(errors_b),
        trials_b=int(trials_b),
        rate_a=errors_a / trials_a,
        rate_b=errors_b / trials_b,
        statistic=float(res.statistic),
        p_value=float(res.pvalue),
        alternative=alternative,
    )


def permutation_test_subjects(
    subject_errors_a: ArrayLike,
    subject_trials_a: ArrayLike,
    subject_errors_b: ArrayLike,
    subject_trials_b: ArrayLike,
    *,
    n_permutations: int = 9999,
    alternative: Alternative = "two-sided",
    seed: int | np.random.Generator | None = 0,
    group_a: str = "a",
    group_b: str = "b",
) -> GroupTestResult:
    """Permutation test of equal error rates that permutes group labels between subjects.

    Parameters
    ----------
    subject_errors_a, subject_trials_a : array_like of int, shape (s_a,)
        For each subject of group A: errors and searches at one threshold.
    subject_errors_b, subject_trials_b : array_like of int, shape (s_b,)
        The same for group B.
    n_permutations : int
        Random relabellings; all are drawn at once (vectorised), in chunks to bound memory.
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: rate A > rate B.
    seed : int or Generator
        Randomness, for reproducible p-values.

    Notes
    -----
    The statistic is the difference of pooled rates, ``sum(errors) / sum(trials)`` per group.
    Under the null hypothesis that subjects of both groups have the same distribution of errors,
    subjects are exchangeable between the groups, whatever the correlation between one
    subject's searches.
    """
    _check_alternative(alternative)
    ea, na = (np.asarray(x, dtype=np.float64).ravel() for x in (subject_errors_a, subject_trials_a))
    eb, nb = (np.asarray(x, dtype=np.float64).ravel() for x in (subject_errors_b, subject_trials_b))
    check_counts(np.concatenate([ea, eb]), np.concatenate([na, nb]))
    if ea.shape != na.shape or eb.shape != nb.shape:
        raise MetricInputError("per-subject errors and trials must have the same length")
    for name, n in ((group_a, na.sum()), (group_b, nb.sum())):
        if n == 0:
            raise MetricInputError(MSG_NO_TRIALS.format(name=name))
    if n_permutations < 1:
        raise MetricInputError(f"n_permutations must be positive, got {n_permutations}")
    rng = np.random.default_rng(seed)
    errors = np.concatenate([ea, eb])
    trials = np.concatenate([na, nb])
    s_a = ea.shape[0]
    s = errors.shape[0]
    tot_e, tot_n = errors.sum(), trials.sum()
    observed = ea.sum() / na.sum() - eb.sum() / nb.sum()

    labels = np.zeros(s, dtype=np.float64)
    labels[:s_a] = 1.0
    chunk = max(1, min(n_permutations, 20_000_000 // max(s, 1)))
    diffs = []
    done = 0
    while done < n_permutations:
        size = min(chunk, n_permutations - done)
        perm = rng.permuted(np.broadcast_to(labels, (size, s)), axis=1)
        e_a, n_a = perm @ errors, perm @ trials
        n_b = tot_n - n_a
        with np.errstate(invalid="ignore", divide="ignore"):
            diffs.append(e_a / n_a - (tot_e - e_a) / n_b)
        done += size
    null = np.concatenate(diffs)
    # A relabelling that leaves one group without searches has no rate: it counts as not
    # extreme (conservative); it is only possible when some subjects have zero searches.
    null = np.nan_to_num(null, nan=0.0)
    tol = 1e-12  # floating-point ties of the statistic count as "as extreme"
    if alternative == "two-sided":
        extreme = np.abs(null) >= abs(observed) - tol
    elif alternative == "greater":
        extreme = null >= observed - tol
    else:
        extreme = null <= observed + tol
    p = (1 + int(extreme.sum())) / (1 + n_permutations)
    return GroupTestResult(
        test="subject-permutation",
        group_a=str(group_a),
        group_b=str(group_b),
        errors_a=int(ea.sum()),
        trials_a=int(na.sum()),
        errors_b=int(eb.sum()),
        trials_b=int(nb.sum()),
        rate_a=float(ea.sum() / na.sum()),
        rate_b=float(eb.sum() / nb.sum()),
        statistic=float(observed),
        p_value=float(p),
        alternative=alternative,
        n_subjects_a=int(s_a),
        n_subjects_b=int(s - s_a),
        n_permutations=int(n_permutations),
        independence_assumed=False,
    )


# --------------------------------------------------------------------------------------------
# Design-effect-adjusted comparisons of many groups, with multiplicity control
# --------------------------------------------------------------------------------------------

#: Name of the two-group test of :func:`design_effect_pair_test`.
DESIGN_EFFECT_TEST = "design-effect-adjusted two-sample test (Rao-Scott)"
#: The multiplicity adjustments of the many-group comparisons, by name.
Adjustment = Literal["step-down", "single-step"]
#: What each adjustment is, as the outputs say it.
ADJUSTMENTS: dict[str, str] = {
    "step-down": "step-down max-statistic adjustment over all pairs (Westfall & Young 1993)",
    "single-step": "single-step max-statistic adjustment over all pairs (Westfall & Young 1993)",
}
#: The default adjustment: at least as powerful as the single step, same family-wise control.
DEFAULT_ADJUSTMENT: Adjustment = "step-down"

#: The test of :func:`compare_group_rates`, without its adjustment.
RAO_SCOTT_PAIRS = "design-effect-adjusted pairwise z tests (Rao-Scott)"
#: Appended to it with ``pooled_rate="pair"``.
PAIR_RATE_SUFFIX = ", each pair at its own pooled rate"


def _check_adjustment(adjustment: str) -> None:
    if adjustment not in ADJUSTMENTS:
        raise MetricInputError(
            f"adjustment must be one of {sorted(ADJUSTMENTS)}, got {adjustment!r}"
        )


def comparison_method(test: str, adjustment: str) -> str:
    """The method label of a many-group comparison: its test and its adjustment."""
    _check_adjustment(adjustment)
    return f"{test}; {ADJUSTMENTS[adjustment]}"


def max_t_exceedances(
    observed: np.ndarray, null: np.ndarray, tol: float = 1e-12
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of null draws at least as extreme as each observed statistic, by max-statistic.

    Parameters
    ----------
    observed : ndarray, shape (m,)
        The m hypotheses' statistics (larger is more extreme).
    null : ndarray, shape (B, m)
        B draws of the statistics under the complete null (relabellings or normal draws).
    tol : float
        Floating-point ties count as "as extreme".

    Returns
    -------
    single, step_down : ndarray of int, shape (m,)
        ``single[i]``: draws whose largest statistic over all m is ``>= observed[i]``.
        ``step_down[i]``: draws whose largest statistic over the hypotheses ranked at or below
        ``i`` (by observed statistic, most extreme first) is ``>= observed[i]`` (Westfall &
        Young 1993, algorithm 2.8). Counts of several chunks of draws add up.
    """
    observed = np.asarray(observed, np.float64)
    null = np.asarray(null, np.float64)
    order = np.argsort(-observed, kind="stable")
    # successive maxima from the least extreme hypothesis up: column j of ``successive`` is
    # the largest null statistic among the hypotheses ranked j, j+1, ..., m
    successive = np.maximum.accumulate(null[:, order[::-1]], axis=1)[:, ::-1]
    step_down = np.empty(observed.shape[0], np.int64)
    step_down[order] = np.count_nonzero(successive >= observed[order] - tol, axis=0)
    single = np.count_nonzero(null.max(axis=1)[:, None] >= observed[None, :] - tol, axis=0)
    return single.astype(np.int64), step_down


def max_t_adjusted(
    observed: np.ndarray, exceed: np.ndarray, n_draws: int, adjustment: Adjustment
) -> np.ndarray:
    """Adjusted p-values ``(1 + exceed) / (1 + n_draws)`` of :func:`max_t_exceedances`.

    For the step-down they are made monotone in the ranking (a hypothesis is never adjusted
    below one with a more extreme statistic: the step-down stops at the first it keeps), so
    ties share one value; every step-down value is at most the single-step one.
    """
    _check_adjustment(adjustment)
    p = (1.0 + np.asarray(exceed, np.float64)) / (1.0 + n_draws)
    if adjustment == "step-down":
        order = np.argsort(-np.asarray(observed, np.float64), kind="stable")
        p[order] = np.maximum.accumulate(p[order])
    out: np.ndarray = np.minimum(p, 1.0)
    return out


#: Name of the many-group comparison of :func:`compare_group_rates` (default adjustment).
MAX_Z_TEST = comparison_method(RAO_SCOTT_PAIRS, DEFAULT_ADJUSTMENT)


@dataclass(frozen=True)
class PairComparison:
    """One pair of groups compared by :func:`compare_group_rates`.

    Attributes
    ----------
    group_a, group_b : str
        ``rate_a >= rate_b``.
    rate_a, rate_b : float
    statistic : float
        ``(rate_a - rate_b) / se`` with the design-effect-adjusted standard error under equal
        rates.
    p_value : float
        Two-sided, for this pair alone (not for a pair picked after seeing the data).
    p_adjusted : float
        Adjusted for all pairs of compared groups by the comparison's ``adjustment`` (step-down
        max-statistic by default, single-step by name): the family-wise error rate is at most
        ``alpha`` when a pair is called different at ``p_adjusted <= alpha``, including the
        highest-vs-lowest pair chosen after seeing the data.
    """

    group_a: str
    group_b: str
    rate_a: float
    rate_b: float
    statistic: float
    p_value: float
    p_adjusted: float

    def significant(self, alpha: float = 0.05) -> bool:
        """Different at family-wise level ``alpha`` (uses the adjusted p-value)."""
        return self.p_adjusted <= alpha


@dataclass(frozen=True)
class GroupRatesComparison:
    """All pairs of groups compared, with a multiplicity adjustment.

    Attributes
    ----------
    pairs : tuple of PairComparison
        Sorted by adjusted p-value.
    method : str
        The test and its adjustment (:func:`comparison_method`), e.g. :data:`MAX_Z_TEST`.
    groups : tuple of str
        The groups compared (small and ``unknown`` groups are left out by the caller).
    adjustment : str
        ``"step-down"`` or ``"single-step"`` (a key of :data:`ADJUSTMENTS`): which multiplicity
        adjustment produced ``p_adjusted``.
    null_model : NullBootstrapModel or None
        :func:`bootstrap_compare_groups` only: the fitted model under equal rates its
        replicates were drawn from (pooled rate, each group's intra-person correlation).
    """

    pairs: tuple[PairComparison, ...]
    method: str
    groups: tuple[str, ...]
    adjustment: str = DEFAULT_ADJUSTMENT
    null_model: NullBootstrapModel | None = None

    @property
    def adjustment_text(self) -> str:
        """The adjustment in words, for an output to say which produced the adjusted p."""
        return ADJUSTMENTS[self.adjustment]

    def pair(self, group_a: str, group_b: str) -> PairComparison:
        for p in self.pairs:
            if {p.group_a, p.group_b} == {group_a, group_b}:
                return p
        raise MetricInputError(f"no comparison of {group_a!r} with {group_b!r}")

    @property
    def any_significant(self) -> bool:
        return any(p.significant() for p in self.pairs)


def _design_effect(summary: ClusterSummary) -> float:
    """Design effect of one group's rate, >= 1; 1 where no error shows the clustering."""
    k, n = float(summary.errors[0]), float(summary.trials)
    if n <= 0 or k <= 0 or k >= n:
        return 1.0
    p = k / n
    return max(1.0, float(summary.variance[0]) / (p * (1 - p) / n))


def design_effect_pair_test(a: ClusterSummary, b: ClusterSummary) -> tuple[float, float]:
    """(statistic, two-sided p) for equal rates in two groups of people.

    The two-proportion z statistic with its binomial variance at the pooled rate multiplied
    by the design effect of the difference (Rao & Scott 1981, 1984: design-effect
    corrections of tests for survey proportions), estimated from both groups' cluster-robust
    variances and never below 1. A group without errors cannot show its own clustering and
    its variance must not be taken as zero: it contributes its binomial variance.
    """
    ka, na = float(a.errors[0]), float(a.trials)
    kb, nb = float(b.errors[0]), float(b.trials)
    if na <= 0 or nb <= 0:
        raise MetricInputError("each group needs searches to compare rates")
    pooled = (ka + kb) / (na + nb)
    if pooled in (0.0, 1.0):
        return 0.0, 1.0
    # The design effect of the difference: both groups' cluster-robust variances over their
    # binomial variances at the pooled rate (a group without errors adds its binomial
    # variance: its own variance would be 0), at least 1.
    binomial = pooled * (1 - pooled) * (1 / na + 1 / nb)
    va = float(a.variance[0]) if 0 < ka < na else pooled * (1 - pooled) / na
    vb = float(b.variance[0]) if 0 < kb < nb else pooled * (1 - pooled) / nb
    deff = max(1.0, (va + vb) / binomial)
    statistic = (ka / na - kb / nb) / np.sqrt(deff * binomial)
    from scipy import stats  # imported here: ~1 s, and not every caller needs it

    return float(statistic), float(2 * stats.norm.sf(abs(statistic)))


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), same order as given."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = p.shape[0]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _design_effects(summaries: list[ClusterSummary]) -> np.ndarray:
    """Each group's design effect, at least 1.

    A group whose errors show its clustering uses its own (its cluster-robust variance over
    its binomial variance); a group with no errors (or errors only) cannot, and takes the
    searches-weighted mean design effect of the others (1 when none shows it).
    """
    n = np.array([float(s.trials) for s in summaries])
    k = np.array([float(s.errors[0]) for s in summaries])
    shows = (k > 0) & (k < n)
    deff = np.ones(len(summaries))
    for g, summary in enumerate(summaries):
        if shows[g]:
            p = k[g] / n[g]
            deff[g] = max(1.0, float(summary.variance[0]) / (p * (1 - p) / n[g]))
    if shows.any():
        deff[~shows] = max(1.0, float(np.average(deff[shows], weights=n[shows])))
    return deff


def _degrees_of_freedom(summaries: list[ClusterSummary]) -> np.ndarray:
    """Each group's degrees of freedom (people carrying its variance, minus one), >= 1."""
    out = []
    for s in summaries:
        k, n = float(s.errors[0]), float(s.trials)
        df = float(s.df[0]) if 0 < k < n and np.isfinite(s.df[0]) else np.nan
        out.append(df)
    dfs = np.array(out)
    fill = np.nanmin(dfs) if np.isfinite(dfs).any() else 1.0
    return np.maximum(np.where(np.isfinite(dfs), dfs, fill), 1.0)


def compare_group_rates(
    summaries: dict[str, ClusterSummary],
    *,
    n_draws: int = 20_000,
    seed: int = 0,
    adjustment: Adjustment = DEFAULT_ADJUSTMENT,
    pooled_rate: Literal["all", "pair"] = "all",
) -> GroupRatesComparison:
    """Compare every pair of groups, each given by its clustered sufficient statistics.

    Parameters
    ----------
    summaries : dict of str to ClusterSummary
        One entry per group to compare (at one threshold), e.g. from
        :meth:`lfr_eval.report.AggregateResult.cluster_summary`. Leave small and ``unknown``
        groups out unless they are wanted in the family.
    n_draws : int
        Monte-Carlo draws of the joint null distribution (for the adjusted p-values).
    seed : int
    adjustment : {"step-down", "single-step"}
        The max-statistic adjustment over all pairs (see Notes). Default step-down.
    pooled_rate : {"all", "pair"}
        The rate of each pair's binomial variance: all groups' (default) or the pair's own
        (as the permutation path studentizes; measured, not the default: see Notes). The
        method label says which.

    Returns
    -------
    GroupRatesComparison
        Every pair with its own p-value and its multiplicity-adjusted one; ``method`` and
        ``adjustment`` name the adjustment.

    Notes
    -----
    Each pair's statistic is the difference of rates over its standard error under equal rates:
    ``p0 (1 - p0) (deff_i / n_i + deff_j / n_j)``, the binomial variance at the pooled rate
    ``p0`` of all groups times each group's design effect (Rao & Scott's correction of tests
    for clustered proportions; see :func:`_design_effects`); a group without errors never gets
    a variance of 0. Each statistic is referred to Student's t with ``2 (df_i + df_j)`` degrees
    of freedom, ``df_g`` the people carrying group g's variance minus one, as in the clustered
    intervals.

    Measured (``benchmarks/results/stats_groups_claims.md``, 18 cells of 2–10 groups): the size
    is 0.009–0.041, below 0.05 where clustering is strong. Why, and what was tried on the same
    data sets: with **two groups** (one pair, so no pooling question) it is 0.017–0.019 at
    ICC 0.2–0.5: the t reference on the few people carrying the errors is cautious, but the
    normal reference made ten clustered groups 0.19–0.47 and a Welch–Satterthwaite df for the
    variance beyond the binomial 0.08–0.18 (a group whose few errors happen to look
    unclustered is then trusted). **Each pair at its own pooled rate** (``pooled_rate="pair"``,
    as the permutation path does) raised the size of four and ten groups into 0.026–0.054 and
    their power, but gave 0.089 with ten groups at ICC 0.5, rate 0.01: a pair of two small
    groups has a noisy rate of its own, which a t reference does not carry (the permutation
    path may use it because relabelling calibrates it), so it stays available by name only.
    From clustered totals alone the size cannot be brought into 0.03–0.07 this way; full
    results use the null bootstrap test over people (:func:`bootstrap_compare_groups`: size
    0.031–0.058 on the same grid, ``benchmarks/results/null_bootstrap_groups.md``; the
    permutation test by name: 0.042–0.065). Neither could a between-person variance common
    to the groups (Donner-type), pooled or from the other groups only, with or
    without a Satterthwaite t (``benchmarks/results/rao_scott_candidates.md``: 0.009–0.155 on
    the grid, 0.002–0.174 where 5% of people draw 20x the errors): with each group's *true*
    rate variance a normal max-|z| test is still 0.077–0.094 in 5 of the 18 grid cells (ten or
    four strongly clustered groups, whose skewed rates put the largest pair statistic in the
    tail), so a fix needs a reference distribution that carries the skew, not a better
    variance. Where a few heavy people fall only in some groups (30 people x ~30 searches
    against 300 x ~2) this test calls equal groups different in 0.15 of data sets: a group
    whose sample holds none of them looks unclustered. The adjusted p-value of a pair is the
    chance, under equal rates in every group, that the largest of **all** pairwise statistics is
    at least as large as this pair's (the single-step max-|z| adjustment of Westfall & Young
    1993 and Hothorn, Bretz & Westfall 2008), computed from the joint normal distribution of
    the group rates. It controls the family-wise error rate and accounts for the correlation
    between pairs sharing a group, so it is less conservative than Holm's or Bonferroni's; the
    highest-vs-lowest pair picked after seeing the data is covered. The step-down (default)
    takes, for the pair ranked j-th by its statistic, the largest statistic over the pairs
    ranked j-th or lower only (Westfall & Young 1993, algorithm 2.8, on the same draws), so
    every adjusted p-value is at most the single step's and the most extreme pair's is equal.
    """
    names = sorted(summaries)
    if len(names) < 2:
        raise MetricInputError("at least two groups are needed for a comparison")
    groups = [summaries[name] for name in names]
    k = np.array([float(g.errors[0]) for g in groups])
    n = np.array([float(g.trials) for g in groups])
    if np.any(n <= 0):
        raise MetricInputError("each group needs searches to compare rates")
    rates = k / n
    pooled = float(k.sum() / n.sum())
    i_idx, j_idx = np.triu_indices(len(names), 1)
    _check_adjustment(adjustment)
    if pooled_rate not in ("all", "pair"):
        raise MetricInputError(f"pooled_rate must be 'all' or 'pair', got {pooled_rate!r}")
    method = comparison_method(
        RAO_SCOTT_PAIRS if pooled_rate == "all" else RAO_SCOTT_PAIRS + PAIR_RATE_SUFFIX,
        adjustment,
    )
    if pooled in (0.0, 1.0):
        statistic = np.zeros(i_idx.shape[0])
        raw = adjusted = np.ones(i_idx.shape[0])
    else:
        from scipy import stats  # imported here: ~1 s, and not every caller needs it

        deff = _design_effects(groups)
        spread = deff / n
        # all groups' rate (default), or each pair's own (by name: see the Notes)
        pair_rate = (
            np.full(i_idx.shape[0], pooled)
            if pooled_rate == "all"
            else (k[i_idx] + k[j_idx]) / (n[i_idx] + n[j_idx])
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.sqrt(pair_rate * (1 - pair_rate) * (spread[i_idx] + spread[j_idx]))
            statistic = np.where(se > 0, (rates[i_idx] - rates[j_idx]) / se, 0.0)
        # Each pair's statistic is referred to Student's t with 2 (df_i + df_j) degrees of
        # freedom (a difference resting on a few people with errors is heavy-tailed); the max
        # adjustment then works on the equivalent normal scores. Measured against the
        # Welch–Satterthwaite df of the variance beyond the binomial (which trusts a group
        # whose few errors happen to look unclustered): that made the size 0.08–0.18 with ten
        # clustered groups.
        df = _degrees_of_freedom(groups)
        pair_df = 2.0 * (df[i_idx] + df[j_idx])
        raw = np.minimum(2 * stats.t.sf(np.abs(statistic), pair_df), 1.0)
        z_equivalent = stats.norm.isf(raw / 2)
        rng = np.random.default_rng(seed)
        # under equal rates the groups' rates are independent with variances proportional
        # to deff_g / n_g (the common rate's factor cancels in every pair's score)
        draws = rng.standard_normal((n_draws, len(names))) * np.sqrt(spread)
        null = np.abs(draws[:, i_idx] - draws[:, j_idx]) / np.sqrt(
            spread[i_idx] + spread[j_idx]
        )
        single, step_down = max_t_exceedances(z_equivalent, null)
        exceed = step_down if adjustment == "step-down" else single
        adjusted = np.maximum(max_t_adjusted(z_equivalent, exceed, n_draws, adjustment), raw)
    return _comparison(names, rates, statistic, raw, adjusted, method, adjustment)


def _comparison(
    names: list[str],
    rates: np.ndarray,
    statistic: np.ndarray,
    raw: np.ndarray,
    adjusted: np.ndarray,
    method: str,
    adjustment: str,
    null_model: NullBootstrapModel | None = None,
) -> GroupRatesComparison:
    """Every pair (in ``np.triu_indices`` order) as a :class:`PairComparison`, sorted by
    adjusted p-value; the higher-rate group first in each pair."""
    i_idx, j_idx = np.triu_indices(len(names), 1)
    pairs = []
    for t, (i, j) in enumerate(zip(i_idx, j_idx, strict=True)):
        a, b = (i, j) if rates[i] >= rates[j] else (j, i)
        pairs.append(
            PairComparison(
                names[a], names[b], float(rates[a]), float(rates[b]),
                float(abs(statistic[t])), float(raw[t]), float(min(1.0, adjusted[t])),
            )
        )  # fmt: skip
    pairs.sort(key=lambda p: (p.p_adjusted, p.p_value))
    return GroupRatesComparison(tuple(pairs), method, tuple(names), adjustment, null_model)


#: Method label of :func:`ratio_to_lowest` and :func:`simultaneous_ratio_intervals`.
SIMULTANEOUS_RATIO = (
    "log-ratio, cluster-robust (Rao-Scott) variances, simultaneous over all pairs "
    "(max-|t|, Tukey-type); bounds of simultaneous Korn-Graubard intervals where a rate is 0"
)


@dataclass(frozen=True)
class RatioToLowest:
    """Each group's rate over the lowest group's, with intervals that hold for all groups at once.

    Attributes
    ----------
    groups : tuple of str
        The compared groups, in the order given.
    ratio : ndarray of shape (G, m)
        ``rate_g / rate_lowest`` at each of the m thresholds; NaN where the lowest rate is 0.
    ratio_low, ratio_high : ndarray of shape (G, m)
        The group's row against the lowest in :func:`simultaneous_ratio_intervals` at each
        threshold (``inf`` where unbounded).
    rate_low, rate_high : ndarray of shape (G, m)
        Simultaneous Korn–Graubard bounds of each group's rate at ``group_confidence``.
    lowest : ndarray of shape (m,), object
        The lowest group at each threshold (picked after seeing the data; the simultaneous
        bounds cover that choice).
    confidence : float
        Family coverage of the bounds (all groups at once).
    group_confidence : float
        Each group's own coverage, ``1 - (1 - confidence) / G``.
    method : str
        :data:`SIMULTANEOUS_RATIO`.
    rate_method : ndarray of shape (G, m), object, or None
        The label of each group's rate bounds (:func:`simultaneous_rate_bounds`: Korn–Graubard
        or one of its edge cases, with the suffixes of the ends it moved within the interval
        counted by people).
    """

    groups: tuple[str, ...]
    ratio: np.ndarray
    ratio_low: np.ndarray
    ratio_high: np.ndarray
    rate_low: np.ndarray
    rate_high: np.ndarray
    lowest: np.ndarray
    confidence: float
    group_confidence: float
    method: str = SIMULTANEOUS_RATIO
    rate_method: np.ndarray | None = None


def ratio_to_lowest(
    summaries: dict[str, ClusterSummary], confidence: float = 0.95
) -> RatioToLowest:
    """Ratios to the lowest group with simultaneous intervals clustered by person.

    Parameters
    ----------
    summaries : dict of str to ClusterSummary
        One entry per compared group (all at the same m thresholds), e.g. from
        :meth:`lfr_eval.report.AggregateResult.cluster_summary`; leave small and ``unknown``
        groups out unless they are wanted in the family.
    confidence : float
        Coverage of all the groups' bounds together, in (0, 1).

    Returns
    -------
    RatioToLowest

    Notes
    -----
    At each threshold the ratio's interval is the one :func:`simultaneous_ratio_intervals`
    gives for that group against the lowest (so the aggregate's charts and tables, and
    :meth:`IdentificationFrame.ratio` on the raw data, show the same interval): all pairs'
    ratios hold together, so the choice of the lowest group after seeing the data is covered.
    ``rate_low`` / ``rate_high`` are each group's simultaneous Korn–Graubard bounds
    (Bonferroni over the G groups). Ties for the lowest go to the first group given.
    """
    names = list(summaries)
    if not names:
        raise MetricInputError("at least one group is needed for ratios to the lowest")
    group_confidence = 1.0 - (1.0 - float(confidence)) / len(names)
    bounds = list(simultaneous_rate_bounds(summaries, confidence).values())
    rate = np.stack([b.rate for b in bounds])  # (G, m)
    low = np.stack([b.ci_low for b in bounds])
    high = np.stack([b.ci_high for b in bounds])
    ref = np.argmin(np.where(np.isnan(rate), np.inf, rate), axis=0)  # (m,)
    cols = np.arange(rate.shape[1])
    ref_rate = rate[ref, cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref_rate > 0, rate / ref_rate, np.nan)
    ratio_low = np.full_like(rate, np.nan)
    ratio_high = np.full_like(rate, np.nan)
    for t in cols:
        # the whole column (with the fourth moment the people's interval reads), as the frame
        at_t = {g: summaries[g].column(int(t)) for g in names}
        pairs = simultaneous_ratio_intervals(at_t, confidence)
        j = pairs.index(names[ref[t]])
        for i, g in enumerate(names):
            ratio_low[i, t] = pairs.low[pairs.index(g), j]
            ratio_high[i, t] = pairs.high[pairs.index(g), j]
    return RatioToLowest(
        groups=tuple(names),
        ratio=ratio,
        ratio_low=ratio_low,
        ratio_high=ratio_high,
        rate_low=low,
        rate_high=high,
        lowest=np.array([names[i] for i in ref], dtype=object),
        confidence=float(confidence),
        group_confidence=group_confidence,
        rate_method=np.stack([b.method for b in bounds]).astype(object),
    )


#: Method label of :func:`simultaneous_rate_bounds` and :func:`ratio_bounds`.
SIMULTANEOUS_KG = "korn-graubard, simultaneous over groups (Bonferroni)"


def simultaneous_rate_bounds(
    summaries: dict[str, ClusterSummary], confidence: float = 0.95, *, extra: int = 0
) -> dict[str, ClusteredRate]:
    """Korn–Graubard intervals that hold for every group at once.

    Each group's interval is the two-sided Korn–Graubard interval
    (:func:`lfr_eval.metrics.korn_graubard_from_summary`: exact ends, both within the
    interval counted by people and the lower end at least the Markov floor ``errors * a_low /
    searches``, so that one or two people carrying a group's errors cannot put it at
    [1e-248, 0.53] as Korn–Graubard's t factor alone did before stop 31) made at
    ``1 - (1 - confidence) / (G + extra)`` (Bonferroni over
    the G groups, plus ``extra`` further intervals of the same family, e.g. the overall rate
    as a reference), so all hold together with probability at least ``confidence`` whatever
    the correlation between groups. Any ratio of two groups' rates then lies within
    :func:`ratio_bounds` of their intervals, also for a pair chosen after seeing the data
    (the lowest group as reference).

    Parameters
    ----------
    summaries : dict of str to ClusterSummary
        Per-group clustered sufficient statistics, at m thresholds each.
    confidence : float
        Simultaneous coverage in (0, 1).
    extra : int
        Intervals outside ``summaries`` that share the error budget.
    """
    family = len(summaries) + int(extra)
    level = 1.0 - (1.0 - confidence) / max(family, 1)
    return {g: korn_graubard_from_summary(v, level) for g, v in summaries.items()}


def ratio_bounds(group: ClusteredRate, reference: ClusteredRate) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``rate_group / rate_reference`` from simultaneous intervals of both.

    ``[low_g / high_ref, high_g / low_ref]``: covers the true ratio whenever both intervals
    cover their rates (so with the family's simultaneous confidence); the upper end is ``inf``
    when the reference's lower bound is 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.asarray(group.ci_low, np.float64) / np.asarray(reference.ci_high, np.float64)
        ref_low = np.asarray(reference.ci_low, np.float64)
        high = np.where(ref_low > 0, np.asarray(group.ci_high, np.float64) / ref_low, np.inf)
    return low, high



SIMULTANEOUS_LOG_RATIO = SIMULTANEOUS_RATIO


@dataclass(frozen=True)
class RatioIntervals:
    """Intervals of every ratio ``rate_i / rate_j`` of a family of groups, all at once.

    Attributes
    ----------
    groups : tuple of str
    ratio, low, high : ndarray, shape (G, G)
        ``ratio[i, j] = rate_i / rate_j`` and its interval (``inf`` where unbounded, NaN
        where both rates are 0); the diagonal is exactly 1.
    confidence : float
        Simultaneous coverage of all the intervals together.
    method : str
    """

    groups: tuple[str, ...]
    ratio: np.ndarray
    low: np.ndarray
    high: np.ndarray
    confidence: float
    method: str = SIMULTANEOUS_LOG_RATIO

    def index(self, group: str) -> int:
        return self.groups.index(group)


def simultaneous_ratio_intervals(
    summaries: dict[str, ClusterSummary],
    confidence: float = 0.95,
    *,
    n_draws: int = 20_000,
    seed: int = 0,
) -> RatioIntervals:
    """Simultaneous intervals of every pair's rate ratio, clustered by person.

    Each log rate has the delta-method variance ``V_g / p_g^2`` of its cluster-robust
    variance ``V_g`` (never below the binomial variance: design effect at least 1). The
    interval of ``log(p_i / p_j)`` is ``± c * se_ij`` with ``c`` the ``confidence`` quantile of
    ``max_{i<j} |L_i - L_j| / se_ij`` for independent ``L_g ~ N(0, v_g)`` (a Tukey-type
    max-statistic critical value), carried to Student's t with ``2 (df_i + df_j)`` degrees of
    freedom as :func:`compare_group_rates` does; so all G(G-1)/2 ratios are covered together,
    including the ratio to the lowest group picked after seeing the data. A pair in which a
    rate is 0 (its log is undefined) or 1 (every search an error: its cluster-robust and
    binomial variances are both 0, and a variance of 0 would make the pair's statistic 0 / 0
    and, through the maximum, every pair's critical value NaN) gets the ratio of simultaneous
    Korn–Graubard bounds instead (:func:`ratio_bounds`), which is valid but wider.
    """
    names = sorted(summaries)
    groups = [summaries[g] for g in names]
    n_groups = len(names)
    k = np.array([float(g.errors[0]) for g in groups])
    n = np.array([float(g.trials) for g in groups])
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = k / n
        ratio = rates[:, None] / rates[None, :]
    low = np.full((n_groups, n_groups), np.nan)
    high = np.full((n_groups, n_groups), np.nan)
    # groups whose log rate has a cluster-robust variance > 0: some errors, not all
    positive = (k > 0) & (n > 0) & (k < n)
    if n_groups >= 2 and positive.sum() >= 2:
        binomial = rates * (1 - rates) / n
        variance = np.array([float(g.variance[0]) for g in groups])
        v = np.maximum(variance, binomial) / np.where(positive, rates, 1.0) ** 2
        rng = np.random.default_rng(seed)
        draws = rng.standard_normal((n_draws, n_groups)) * np.sqrt(v)
        idx = np.flatnonzero(positive)
        i_idx, j_idx = np.triu_indices(len(idx), 1)
        a, b = idx[i_idx], idx[j_idx]
        se_pairs = np.sqrt(v[a] + v[b])
        null_max = np.max(np.abs(draws[:, a] - draws[:, b]) / se_pairs, axis=1)
        z_crit = float(np.quantile(null_max, confidence))
        from scipy import stats  # imported here: ~1 s, and not every caller needs it

        # As in compare_group_rates: each pair's normal critical value is carried to Student's
        # t with 2 (df_i + df_j) degrees of freedom (a ratio resting on few people is wider).
        df = _degrees_of_freedom(groups)
        tail = float(stats.norm.sf(z_crit))
        c = stats.t.isf(tail, 2.0 * (df[:, None] + df[None, :]))
        log_ratio = np.log(np.where(positive, rates, 1.0))
        se = np.sqrt(v[:, None] + v[None, :])
        centre = log_ratio[:, None] - log_ratio[None, :]
        both = positive[:, None] & positive[None, :]
        low = np.where(both, np.exp(centre - c * se), low)
        high = np.where(both, np.exp(centre + c * se), high)
    if not positive.all():
        bounds = simultaneous_rate_bounds(dict(zip(names, groups, strict=True)), confidence)
        for i in range(n_groups):
            for j in range(n_groups):
                if positive[i] and positive[j]:
                    continue
                lo, hi = ratio_bounds(bounds[names[i]], bounds[names[j]])
                low[i, j], high[i, j] = float(lo[0]), float(hi[0])
    np.fill_diagonal(low, 1.0)
    np.fill_diagonal(high, 1.0)
    np.fill_diagonal(ratio, 1.0)
    return RatioIntervals(tuple(names), ratio, low, high, float(confidence))


#: Method label of :func:`simultaneous_ratio_to_overall`.
SIMULTANEOUS_RATIO_TO_OVERALL = (
    "ratio to the overall rate through the log-ratio of the group to the rest of the people, "
    "cluster-robust (Rao-Scott) variances with the other groups as strata of the rest, "
    "simultaneous over the groups (max-|t|); bounds of simultaneous "
    "Korn-Graubard intervals where the group or the rest has no error"
)


@dataclass(frozen=True)
class RatioToOverall:
    """Each group's rate over the overall rate, with intervals that hold for all groups at once.

    Attributes
    ----------
    groups : tuple of str
        The groups whose ratios were asked for (the ``family``).
    ratio, low, high : ndarray, shape (G,)
        ``rate_g / overall_rate`` and its interval (at most ``1 / w_g``, the group's share
        ``w_g`` of the searches being the largest the ratio can be; NaN where the overall
        rate is 0).
    overall_rate : float
        Errors over searches of every group in ``summaries`` (the family and the rest).
    confidence : float
        Simultaneous coverage of all G intervals together.
    method : str
    """

    groups: tuple[str, ...]
    ratio: np.ndarray
    low: np.ndarray
    high: np.ndarray
    overall_rate: float
    confidence: float
    method: str = SIMULTANEOUS_RATIO_TO_OVERALL

    def index(self, group: str) -> int:
        return self.groups.index(group)


def combine_strata(summaries: list[ClusterSummary]) -> ClusterSummary:
    """The overall rate's :class:`ClusterSummary` from disjoint groups of people (strata).

    Errors and searches add up; the variance of ``sum k / sum n`` is ``sum_h w_h^2 V_h`` with
    ``w_h = n_h / n`` (groups as strata); its degrees of freedom are Satterthwaite's
    ``(sum a_h)^2 / sum a_h^2 / df_h`` for ``a_h = w_h^2 V_h``; Kish's effective number of
    people is ``n^2 / sum_h n_h^2 / eff_h``. One threshold (column 0) per summary.
    """
    n = np.array([float(s.trials) for s in summaries])
    total = float(n.sum())
    k = np.array([float(s.errors[0]) for s in summaries])
    v = np.array([float(s.variance[0]) for s in summaries])
    df = np.array([float(s.df[0]) for s in summaries])
    w = n / total if total > 0 else np.zeros_like(n)
    a = w**2 * v
    finite = np.isfinite(df) & (a > 0)
    df_total = (
        float(a[finite].sum() ** 2 / np.sum(a[finite] ** 2 / df[finite]))
        if finite.any()
        else float("nan")
    )
    eff = np.array([max(float(s.effective_people), 1e-300) for s in summaries])
    searched = n > 0
    people = total**2 / float(np.sum(n[searched] ** 2 / eff[searched])) if searched.any() else 0.0
    # the strata hold different people: fourth moments add, the largest is the largest's
    fourths = [s.trials_fourth_moment for s in summaries]
    largest = [s.largest_trials for s in summaries]
    return ClusterSummary(
        errors=np.array([k.sum()]),
        trials=total,
        n_subjects=int(sum(s.n_subjects for s in summaries)),
        variance=np.array([float(a.sum())]),
        df=np.array([df_total]),
        effective_people=people,
        trials_fourth_moment=(
            None if any(v is None for v in fourths) else float(sum(v or 0.0 for v in fourths))
        ),
        largest_trials=(
            None if any(v is None for v in largest) else float(max(v or 0.0 for v in largest))
        ),
    )


def _rest_to_overall(ratio_to_rest: np.ndarray, share: np.ndarray) -> np.ndarray:
    """``p_g / p_0`` from ``r = p_g / p_rest`` for a group holding ``share`` = n_g / n of the
    searches: ``r / (share r + 1 - share)``, increasing in r, ``1 / share`` at ``r = inf``."""
    r = np.asarray(ratio_to_rest, np.float64)
    w = np.broadcast_to(np.asarray(share, np.float64), r.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(np.isinf(r), 1.0 / w, r / (w * r + 1.0 - w))
    return out


def simultaneous_ratio_to_overall(
    summaries: dict[str, ClusterSummary],
    confidence: float = 0.95,
    *,
    family: list[str] | None = None,
    n_draws: int = 20_000,
    seed: int = 0,
) -> RatioToOverall:
    """Simultaneous intervals of each group's rate over the overall rate, clustered by person.

    Parameters
    ----------
    summaries : dict of str to ClusterSummary
        Every group that makes up the overall rate (disjoint people), one threshold each.
    confidence : float
        Coverage of all the family's intervals together, in (0, 1).
    family : list of str, optional
        The groups whose ratios are wanted (default: all); the others still count in the
        overall rate.

    Notes
    -----
    The overall rate contains the group itself, ``p_0 = w p_g + (1 - w) p_rest`` with ``w`` the
    group's share of the searches and ``p_rest`` the rate of everyone else, so the ratio is a
    fixed increasing function of the ratio to the rest of the people,
    ``p_g / p_0 = r / (w r + 1 - w)`` with ``r = p_g / p_rest`` (at most ``1 / w``). The
    interval is made for ``r``, a ratio of two rates over **disjoint** people, and carried
    through that function. (A delta-method interval on ``log(p_g / p_0)`` directly excluded 1
    in 7.5–10% of data sets with two groups, equal rates and errors clustered in few people:
    that log ratio is bounded above by ``log(1 / w)``, its sampling distribution is skewed and
    the linearised variance mixes the group's own clustering into the reference; see
    ``benchmarks/results/stats_groups_claims.md``.)

    ``log r`` has the delta-method variance ``V_g / p_g^2 + sum_h u_h^2 V_h / p_rest^2``
    (``u_h = n_h / n_rest``, the other groups as strata of the rest) with each group's
    cluster-robust variance ``V_h`` (never below its binomial variance; a group without
    errors takes the others' mean design effect at the overall rate, as in
    :func:`compare_group_rates`). The critical value is the ``confidence`` quantile of
    ``max_g |log r_g| / se_g`` under the joint normal of the group rates (a max-statistic over
    the family: the rests overlap), carried to Student's t with twice the contrast's
    Satterthwaite degrees of freedom (each group's own df as in the clustered intervals; the
    factor 2 as in the pair rule of :func:`simultaneous_ratio_intervals`, calibrated by the
    simulation in ``benchmarks/bench_stats_groups_claims.py``). Where the group or the rest
    has no error (``log r`` undefined) the interval comes from Korn–Graubard bounds of both,
    Bonferroni over the 2 G intervals such members could use (:func:`ratio_bounds`).
    """
    from scipy import stats  # imported here: ~1 s, and not every caller needs it

    names = sorted(summaries)
    wanted = list(names if family is None else family)
    unknown = [g for g in wanted if g not in summaries]
    if not names or unknown:
        raise MetricInputError(f"no group summaries for the ratio to the overall rate: {unknown}")
    groups = [summaries[g] for g in names]
    k = np.array([float(g.errors[0]) for g in groups])
    n = np.array([float(g.trials) for g in groups])
    total = float(n.sum())
    p0 = float(k.sum() / total) if total > 0 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = k / n
    fam = np.array([names.index(g) for g in wanted], dtype=np.int64)
    ratio = np.full(fam.shape[0], np.nan)
    low = np.full(fam.shape[0], np.nan)
    high = np.full(fam.shape[0], np.nan)
    if not (total > 0 and p0 > 0):
        return RatioToOverall(tuple(wanted), ratio, low, high, p0, float(confidence))
    ratio = rates[fam] / p0
    share = n[fam] / total
    n_rest = total - n[fam]
    k_rest = float(k.sum()) - k[fam]
    with np.errstate(divide="ignore", invalid="ignore"):
        p_rest = np.where(n_rest > 0, k_rest / np.where(n_rest > 0, n_rest, 1.0), np.nan)
    shows = (k > 0) & (k < n)
    binomial = np.where(n > 0, rates * (1 - rates) / np.where(n > 0, n, 1.0), 0.0)
    own = np.array([float(g.variance[0]) for g in groups])
    v = np.where(shows, np.maximum(own, binomial), 0.0)
    if shows.any():
        deff = np.maximum(1.0, own[shows] / binomial[shows])
        mean_deff = max(1.0, float(np.average(deff, weights=n[shows])))
    else:
        mean_deff = 1.0
    v = np.where(shows | (n <= 0), v, mean_deff * p0 * (1 - p0) / np.where(n > 0, n, 1.0))
    df_groups = _degrees_of_freedom(groups)
    both = (k[fam] > 0) & (k_rest > 0)
    where = np.flatnonzero(both)  # positions in the family with a finite log ratio to the rest
    if where.size:
        members = fam[where]
        # coefficients of each log r_g on the G group rates: (members, G)
        coef = -(n[None, :] / n_rest[where, None]) / p_rest[where, None]
        coef[np.arange(where.size), members] = 1.0 / rates[members]
        parts = coef**2 * v[None, :]
        var_contrast = parts.sum(axis=1)
        se = np.sqrt(var_contrast)
        rng = np.random.default_rng(seed)
        draws = rng.standard_normal((n_draws, len(names))) * np.sqrt(v)
        null_max = np.max(np.abs(draws @ coef.T) / se, axis=1)
        z_crit = float(np.quantile(null_max, confidence))
        # Each contrast's critical value is carried to Student's t with twice its
        # Satterthwaite degrees of freedom. Measured (group_test_rejection, 800-1,000 data sets):
        # Satterthwaite's own df was far too cautious (size 0.002-0.011 with two groups); the
        # pair rule of simultaneous_ratio_intervals, 2 (df_g + df_rest), gave size 0.07 with
        # ten groups at ICC 0.5, where one person carries a low group's few errors.
        with np.errstate(divide="ignore", invalid="ignore"):
            df = 2.0 * var_contrast**2 / np.sum(parts**2 / df_groups[None, :], axis=1)
        df = np.where(np.isfinite(df), np.maximum(df, 1.0), 1e12)
        c = stats.t.isf(float(stats.norm.sf(z_crit)), df)
        centre = np.log(rates[members] / p_rest[where])
        low[where] = _rest_to_overall(np.exp(centre - c * se), share[where])
        high[where] = _rest_to_overall(np.exp(centre + c * se), share[where])
    if not both.all():
        level = 1.0 - (1.0 - float(confidence)) / (2 * fam.shape[0])
        for i in np.flatnonzero(~both):
            g = int(fam[i])
            rest = [groups[h] for h in range(len(names)) if h != g]
            if not rest:  # one group: it is the overall
                low[i] = high[i] = 1.0
                continue
            bound = korn_graubard_from_summary(groups[g], level)
            ref = korn_graubard_from_summary(combine_strata(rest), level)
            lo, hi = ratio_bounds(bound, ref)
            low[i] = float(_rest_to_overall(lo, share[i])[0])
            high[i] = float(_rest_to_overall(hi, share[i])[0])
    return RatioToOverall(tuple(wanted), ratio, low, high, p0, float(confidence))


#: Name of the many-group comparison of :func:`permutation_compare_groups`.
#: The test of :func:`permutation_compare_groups`, without its adjustment.
STUDENTIZED_PERMUTATION = (
    "studentized max-|t| permutation test over people (design-effect variances at each "
    "pair's pooled rate, Rao-Scott, Chung & Romano 2013; group labels permuted between people "
    "with about as many searches)"
)
#: Name of the many-group comparison of :func:`permutation_compare_groups` (default adjustment).
STUDENTIZED_PERMUTATION_TEST = comparison_method(STUDENTIZED_PERMUTATION, DEFAULT_ADJUSTMENT)

#: Permutation weights (people x permutations) handled at a time.
PERMUTATION_CHUNK = 4_000_000


def _studentized_pairs(
    sums: np.ndarray, people: np.ndarray, pooled: float, i_idx: np.ndarray, j_idx: np.ndarray
) -> np.ndarray:
    """|p_i - p_j| / sqrt(V_i + V_j) for every pair, from per-group sums.

    ``sums`` has shape (..., 5, G): sums of e, n, e^2, e n, n^2 over each group's people;
    ``people`` (G,) the people per group. The pair's variance under equal rates is
    ``p_ij (1 - p_ij) (deff_i / n_i + deff_j / n_j)``: the binomial variance at the **pair's**
    pooled rate ``p_ij`` (the two groups' errors over their searches) times each group's
    design effect ``deff_g`` (its cluster-robust CR1 variance over its own binomial variance,
    at least 1; 1 for a group without errors, which cannot show its clustering), as in Rao &
    Scott's correction. Measured: studentizing by each group's own CR1 variance (floored at
    the pooled binomial) lost power where the higher-rate group had the fewest searches (0.31
    against 0.395 with four groups, 2x, ICC 0), as the unpooled two-sample z test does. The
    rate of all groups (used before) kept the size under equal rates but not the family-wise
    error when some groups differ (0.078 with ten groups, half at 3x, ICC 0.2, 1e-3; 0.032
    at the pair's rate, same data sets), at some cost in power where one group is high
    (``benchmarks/results/stats_groups_claims.md``). ``pooled`` is unused (kept for callers).
    """
    e, n, ee, en, nn = (sums[..., c, :] for c in range(5))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = e / n
        factor = people / np.maximum(people - 1, 1)
        cr1 = factor * (ee - 2 * p * en + p**2 * nn) / n**2
        deff = np.where((e > 0) & (e < n), np.maximum(cr1 / (p * (1 - p) / n), 1.0), 1.0)
        # each pair at its own pooled rate, not all groups': a truly equal pair's statistic
        # then does not depend on the other groups' rates (subset pivotality, which strong
        # family-wise control needs); at the rate of all groups, two equal groups at 3x the
        # others got too small a variance and were called different in 0.078 of data sets
        rate = (e[..., i_idx] + e[..., j_idx]) / (n[..., i_idx] + n[..., j_idx])
        spread = deff / n
        var = rate * (1 - rate) * (spread[..., i_idx] + spread[..., j_idx])
        out: np.ndarray = np.abs(p[..., i_idx] - p[..., j_idx]) / np.sqrt(var)
    finite: np.ndarray = np.nan_to_num(out, nan=0.0, posinf=0.0)
    return finite


def searches_stratum(trials: np.ndarray) -> np.ndarray:
    """Stratum of each person by searches: exact up to 10, then bins 10 % wide on a log scale."""
    n = np.asarray(trials, np.float64)
    return np.where(n <= 10, n, 10 + np.ceil(np.log(np.maximum(n, 1) / 10) / np.log(1.1))).astype(
        np.int64
    )


@dataclass(frozen=True)
class _Stratum:
    """People who may swap group labels (about as many searches), reduced to their types.

    Attributes
    ----------
    slots : ndarray of int, shape (G,)
        People of each group in the stratum (kept by every relabelling).
    weights : ndarray, shape (T, 5)
        ``e, n, e^2, e n, n^2`` of each distinct (errors, searches) type.
    counts : ndarray of int, shape (T,)
        People of each type, ascending (the commonest type is placed last, by subtraction).
    """

    slots: np.ndarray
    weights: np.ndarray
    counts: np.ndarray


def _stratum_types(
    errors: np.ndarray, trials: np.ndarray, labels: np.ndarray, strata: np.ndarray, n_groups: int
) -> tuple[list[_Stratum], np.ndarray]:
    """The strata that relabelling can change, and the (5, G) group sums of the others (one
    group only, or one type only: every relabelling leaves their sums as they are)."""
    order = np.lexsort((labels, trials, errors, strata))
    e, n, g, h = errors[order], trials[order], labels[order], strata[order]
    cuts = np.flatnonzero(np.diff(h)) + 1
    still = np.zeros(h.shape[0], bool)
    out = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, h.shape[0]], strict=True):
        slots = np.bincount(g[a:b], minlength=n_groups)
        types, counts = np.unique(np.stack([e[a:b], n[a:b]], axis=1), axis=0, return_counts=True)
        te, tn = types[:, 0], types[:, 1]
        weights = np.stack([te, tn, te * te, te * tn, tn * tn], axis=1)
        if np.count_nonzero(slots) == 1 or counts.shape[0] == 1:
            still[a:b] = True
            continue
        by_count = np.argsort(counts, kind="stable")
        out.append(_Stratum(slots, weights[by_count], counts[by_count]))
    e, n, g = e[still], n[still], g[still]
    fixed: np.ndarray = np.stack(
        [np.bincount(g, weights=w, minlength=n_groups) for w in (e, n, e * e, e * n, n * n)]
    ).astype(np.float64)
    return out, fixed


def _allocation_sums(
    strata: list[_Stratum], fixed: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """(size, 5, G) group sums of ``size`` random relabellings within strata.

    A uniform relabelling of a stratum's people, keeping each group's number of people, puts
    a multivariate hypergeometric number of each type's people in each group; drawing those
    numbers type by type (sequential hypergeometric draws) gives exactly the distribution of
    the group sums that permuting every person's label gives, at a cost that grows with the
    number of distinct (errors, searches) types, not with the number of people.
    """
    n_groups = fixed.shape[1]
    sums: np.ndarray = np.broadcast_to(fixed, (size, 5, n_groups)).copy()
    rows = np.arange(size)
    for stratum in strata:
        remaining = np.broadcast_to(stratum.slots, (size, n_groups)).copy()
        total = np.full(size, int(stratum.slots.sum()), np.int64)
        for weight, count in zip(stratum.weights[:-1], stratum.counts[:-1], strict=True):
            alloc = np.zeros((size, n_groups), np.int64)
            if count == 1:  # one person: a slot drawn uniformly
                u = rng.integers(0, total)
                alloc[rows, np.argmax(np.cumsum(remaining, axis=1) > u[:, None], axis=1)] = 1
            else:
                left = np.full(size, int(count), np.int64)
                pool = total.copy()
                for g in range(n_groups - 1):
                    good = remaining[:, g]
                    pool = pool - good
                    x = rng.hypergeometric(good, pool, left) if good.any() else 0 * left
                    alloc[:, g] = x
                    left = left - x
                alloc[:, n_groups - 1] = left
            remaining -= alloc
            total -= int(count)
            sums += alloc[:, None, :] * weight[None, :, None]
        sums += remaining[:, None, :] * stratum.weights[-1][None, :, None]
    return sums


#: Relabellings drawn at a time by the typed path.
TYPED_CHUNK = 1000


def permutation_compare_groups(
    subject_errors: dict[str, ArrayLike],
    subject_trials: dict[str, ArrayLike],
    *,
    n_permutations: int = 4999,
    seed: int | np.random.Generator | None = 0,
    stratify: bool = True,
    engine: Literal["auto", "types", "people"] = "auto",
    adjustment: Adjustment = DEFAULT_ADJUSTMENT,
) -> GroupRatesComparison:
    """Every pair of groups compared by a studentized max-|t| permutation test over people.

    Parameters
    ----------
    subject_errors, subject_trials : dict of str to array_like of int, shape (s_g,)
        For each group: each person's errors and searches at one threshold (same keys).
    n_permutations : int
        Random relabellings of people between groups (p-values are
        ``(1 + #as extreme) / (1 + n_permutations)``).
    seed : int or Generator
    stratify : bool
        Relabel people only among people with about as many searches (:func:`searches_stratum`:
        the same number up to 10, bins 10 % wide above). Default True; without it the test's
        size reached 0.15 with ten groups of 2–50 searches per person and strong clustering.
        Where the groups' searches per person barely overlap the strata leave little to
        relabel and the test rarely rejects: size 0.009 and little power with 30 people x ~30
        searches against 300 x ~2, where 10% of the first group's people share a stratum
        with the second (``benchmarks/results/rao_scott_candidates.md``).
    engine : {"auto", "types", "people"}
        How relabellings are drawn; both give the same permutation distribution.
        ``"people"`` permutes every person's label (cost people x permutations);
        ``"types"`` draws, stratum by stratum, how many people of each distinct (errors,
        searches) type land in each group (sequential hypergeometric draws: cost by types x
        groups x permutations, whatever the number of people; most people of a crowd share a
        few types, e.g. no error in 10 searches). ``"auto"`` takes the cheaper by that count.
    adjustment : {"step-down", "single-step"}
        The max-|t| adjustment over all pairs, from the same relabellings (see Notes). Default
        step-down; ``"single-step"`` by name.

    Returns
    -------
    GroupRatesComparison
        ``method`` names the test and its adjustment (:data:`STUDENTIZED_PERMUTATION_TEST` by
        default); each pair's ``p_value`` is its own permutation p-value, ``p_adjusted`` the
        max-|t| one over all pairs by ``adjustment``.

    Notes
    -----
    Each pair's statistic is the difference of the two groups' rates (errors over searches)
    over the square root of the sum of their variances under equal rates (each group's design
    effect times the binomial variance at the pair's pooled rate, :func:`_studentized_pairs`).
    People keep all their searches when relabelled, so the correlation between one person's
    searches is carried along. The null hypothesis is that
    a person's errors, given their number of searches, have the same distribution in every
    group; relabelling within strata of searches per person makes the test exact under it,
    whatever the groups' mix of searches per person. Studentizing keeps it robust where the
    strata are coarse or the groups differ in spread (Chung & Romano 2013, "Exact and
    asymptotically robust permutation tests", *Annals of Statistics* 41); the raw difference
    of pooled rates, permuted freely, had size 0 and almost no power when groups differed in
    searches per person. The adjusted p-value of a pair is the share of relabellings whose
    largest pair statistic is at least this pair's (Westfall & Young 1993), so the family-wise
    error rate is controlled, also for the highest-vs-lowest pair chosen after seeing the data.
    The step-down (default; Westfall & Young 1993, algorithm 2.8) ranks the pairs by their
    statistic and takes, for the j-th, the share of relabellings whose largest statistic over
    the pairs ranked j-th or lower is at least its own, made monotone in the ranking: every
    adjusted p-value is at most the single step's, the most extreme pair's is equal, so
    "some pair differs" is decided alike and the step-down finds more of the other pairs.
    Both control the family-wise error in the strong sense under subset pivotality (the
    joint null distribution of the statistics of the truly equal pairs does not depend on
    the other groups' rates); with one group's rate 3x the others' the false calls among
    the equal pairs were measured in ``benchmarks/results/stats_groups_claims.md``.
    """
    _check_adjustment(adjustment)
    p = _permutation_p_values(
        subject_errors, subject_trials, n_permutations=n_permutations, seed=seed,
        stratify=stratify, engine=engine,
    )  # fmt: skip
    adjusted = p.step_down if adjustment == "step-down" else p.single
    return _comparison(
        p.names, p.rates, p.observed, p.raw, adjusted,
        comparison_method(STUDENTIZED_PERMUTATION, adjustment), adjustment,
    )  # fmt: skip


@dataclass(frozen=True)
class PermutationPValues:
    """Both adjustments of one run of :func:`permutation_compare_groups` (same relabellings).

    Arrays of shape (m,), the pairs in ``np.triu_indices(len(names), 1)`` order.

    Attributes
    ----------
    names : list of str
        The groups, sorted.
    rates : ndarray, shape (G,)
    observed : ndarray
        Each pair's studentized statistic.
    raw, single, step_down : ndarray
        The pair's own permutation p-value, the single-step and the step-down max-|t| ones.
    """

    names: list[str]
    rates: np.ndarray
    observed: np.ndarray
    raw: np.ndarray
    single: np.ndarray
    step_down: np.ndarray


def _permutation_p_values(
    subject_errors: dict[str, ArrayLike],
    subject_trials: dict[str, ArrayLike],
    *,
    n_permutations: int,
    seed: int | np.random.Generator | None,
    stratify: bool,
    engine: str,
) -> PermutationPValues:
    """The relabellings of :func:`permutation_compare_groups` and every p-value they give."""
    names = sorted(subject_errors)
    if len(names) < 2 or set(names) != set(subject_trials):
        raise MetricInputError("at least two groups, with errors and trials for each, are needed")
    if n_permutations < 1:
        raise MetricInputError(f"n_permutations must be positive, got {n_permutations}")
    e_parts = [np.asarray(subject_errors[g], np.float64).ravel() for g in names]
    n_parts = [np.asarray(subject_trials[g], np.float64).ravel() for g in names]
    for g, e_g, n_g in zip(names, e_parts, n_parts, strict=True):
        if e_g.shape != n_g.shape:
            raise MetricInputError(f"group {g!r}: per-person errors and trials differ in length")
        if n_g.sum() <= 0:
            raise MetricInputError(MSG_NO_TRIALS.format(name=g))
    e = np.concatenate(e_parts)
    n = np.concatenate(n_parts)
    check_counts(e, n)
    labels = np.concatenate([np.full(x.shape[0], g) for g, x in enumerate(e_parts)])
    people = np.array([x.shape[0] for x in e_parts], np.float64)
    n_groups, s = len(names), e.shape[0]
    if engine not in ("auto", "types", "people"):
        raise MetricInputError(f"engine must be 'auto', 'types' or 'people', got {engine!r}")
    # people are relabelled only among people with (about) as many searches: under equal rates
    # a person's errors depend on the group only through the searches
    strata = searches_stratum(n) if stratify else np.zeros(s, np.int64)
    order = np.argsort(strata, kind="stable")
    e, n, labels, strata = e[order], n[order], labels[order], strata[order]
    bounds = np.flatnonzero(np.diff(strata)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, s]
    blocks = [(a, b) for a, b in zip(starts, ends, strict=True) if b - a > 1]
    weights = np.stack([e, n, e * e, e * n, n * n])  # (5, s)
    pooled = float(e.sum() / n.sum())
    i_idx, j_idx = np.triu_indices(n_groups, 1)
    rates = np.array([x.sum() / t.sum() for x, t in zip(e_parts, n_parts, strict=True)])

    def group_sums(codes: np.ndarray) -> np.ndarray:
        """(B, 5, G) sums for B labellings (B, s)."""
        b = codes.shape[0]
        flat = (codes + n_groups * np.arange(b)[:, None]).ravel()
        stacked: np.ndarray = np.stack(
            [
                np.bincount(flat, np.broadcast_to(w, (b, s)).ravel(), b * n_groups).reshape(
                    b, n_groups
                )
                for w in weights
            ],
            axis=1,
        )
        return stacked

    observed = _studentized_pairs(group_sums(labels[None, :])[0], people, pooled, i_idx, j_idx)
    if pooled in (0.0, 1.0):
        raw = single = step_down = np.ones(i_idx.shape[0])
    else:
        typed: list[_Stratum] = []
        fixed = np.zeros((5, n_groups))
        if engine != "people":
            typed, fixed = _stratum_types(e, n, labels, strata, n_groups)
        # draws per relabelling: about one per (type, group) against one per person
        typed_cost = sum(int(t.counts.shape[0]) * n_groups for t in typed)
        use_types = engine == "types" or (engine == "auto" and 4 * typed_cost < s)
        rng = np.random.default_rng(seed)
        per_person = max(1, min(n_permutations, PERMUTATION_CHUNK // max(s, 1)))
        chunk = min(n_permutations, TYPED_CHUNK) if use_types else per_person

        def null_chunks() -> Iterator[np.ndarray]:
            done = 0
            while done < n_permutations:
                size = min(chunk, n_permutations - done)
                if use_types:
                    sums = _allocation_sums(typed, fixed, size, rng)
                else:
                    codes = np.broadcast_to(labels, (size, s)).copy()
                    for a, b in blocks:
                        codes[:, a:b] = rng.permuted(codes[:, a:b], axis=1)
                    sums = group_sums(codes)
                yield _studentized_pairs(sums, people, pooled, i_idx, j_idx)
                done += size

        raw, single, step_down = _max_t_p_values(observed, null_chunks(), n_permutations)
    return PermutationPValues(names, rates, observed, raw, single, step_down)


def _max_t_p_values(
    observed: np.ndarray, null_chunks: Iterable[np.ndarray], n_draws: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw, single-step, step-down) p-values of the m pair statistics ``observed`` from
    ``n_draws`` null draws given chunk by chunk, arrays of shape (B_c, m) (relabellings or
    bootstrap replicates; the chunks bound the memory, their counts add up).

    ``raw``: each pair's own share ``(1 + #draws at least as large) / (1 + n_draws)``; the
    max-|t| ones of :func:`max_t_exceedances` and :func:`max_t_adjusted`, never below the
    pair's own (a pair is never adjusted to a smaller p-value than it has alone).
    """
    m = observed.shape[0]
    exceed_pair = np.zeros(m, np.int64)
    exceed_max = np.zeros(m, np.int64)
    exceed_step = np.zeros(m, np.int64)
    tol = 1e-12  # floating-point ties count as "as extreme"
    for null in null_chunks:
        exceed_pair += np.count_nonzero(null >= observed[None, :] - tol, axis=0)
        single_count, step_count = max_t_exceedances(observed, null, tol)
        exceed_max += single_count
        exceed_step += step_count
    raw = (1 + exceed_pair) / (1 + n_draws)
    single = np.maximum(max_t_adjusted(observed, exceed_max, n_draws, "single-step"), raw)
    step_down = np.maximum(max_t_adjusted(observed, exceed_step, n_draws, "step-down"), raw)
    return raw, single, step_down


# --------------------------------------------------------------------------------------------
# Parametric null bootstrap-t over people (the default many-group test on per-person counts)
# --------------------------------------------------------------------------------------------

#: Where :func:`null_bootstrap_model` takes each group's intra-person correlation from.
IccSource = Literal["other-groups", "all-groups"]
_ICC_SOURCES: dict[str, str] = {
    "other-groups": "the other groups' people",
    "all-groups": "all groups' people",
}


def null_bootstrap_method(icc_from: IccSource = "other-groups") -> str:
    """The test of :func:`bootstrap_compare_groups`, without its adjustment, in words."""
    if icc_from not in _ICC_SOURCES:
        raise MetricInputError(
            f"icc_from must be one of {sorted(_ICC_SOURCES)}, got {icc_from!r}"
        )
    return (
        "parametric null bootstrap-t over people (each person's errors beta-binomial at the "
        "pooled rate, intra-person correlation by moments of the person rates weighted by "
        f"their searches, from {_ICC_SOURCES[icc_from]}, "
        "each group's own searches per person; design-effect (Rao-Scott) studentized pair "
        "statistics at each pair's pooled rate)"
    )


#: The test of :func:`bootstrap_compare_groups` (default correlation source), no adjustment.
NULL_BOOTSTRAP = null_bootstrap_method()
#: Name of the many-group comparison of :func:`bootstrap_compare_groups` (its defaults).
NULL_BOOTSTRAP_TEST = comparison_method(NULL_BOOTSTRAP, DEFAULT_ADJUSTMENT)
#: The largest intra-person correlation the null model draws with (1 would make every
#: person's searches all errors or none: the beta's parameters would be 0).
ICC_MAX = 0.99
#: Person x replicate draws (per-person path) handled at a time: bounds the memory (~100 MB).
BOOTSTRAP_CHUNK = 4_000_000


@dataclass(frozen=True)
class NullBootstrapModel:
    """The model under equal rates that :func:`bootstrap_compare_groups` draws replicates from.

    Person i of group g, with ``n_i`` searches (the group's real searches per person, kept),
    has error rate ``p_i ~ Beta(a_g, b_g)`` with mean ``rate`` and intra-person correlation
    ``icc[g] = 1 / (a_g + b_g + 1)`` and makes ``e_i ~ Binomial(n_i, p_i)`` errors, every
    person independently (a beta-binomial count; binomial where the correlation is 0).

    Attributes
    ----------
    groups : tuple of str
        Sorted, as the comparison's.
    rate : float
        The pooled rate in [0, 1]: all groups' errors over all their searches.
    icc : ndarray, shape (G,)
        Each group's intra-person correlation in [0, :data:`ICC_MAX`], by moments (see
        :func:`null_bootstrap_model`).
    icc_from : str
        ``"other-groups"`` (default: each group's from the other groups' people) or
        ``"all-groups"``.
    """

    groups: tuple[str, ...]
    rate: float
    icc: np.ndarray
    icc_from: str = "other-groups"


def _icc_moments(sums: PeopleSums) -> tuple[float, float]:
    """(numerator, denominator) of one group's moment estimate of the intra-person
    correlation, relative to the group's **own** rate.

    Each person's squared residual at the group's own rate ``p_g`` is weighted by ``1 / n_i``
    (an ANOVA-type weighting: the between-person sum of squares of the person rates, ``n_i
    (e_i / n_i - p_g)^2``). With ``Var(e_i) = p (1 - p) [n_i + icc (n_i^2 - n_i)]``
    (beta-binomial) and ``p_g`` the group's own errors over its searches,
    ``E[sum (e_i - n_i p_g)^2 / n_i] = p (1 - p) [(s - 1) + icc (N - s - S2 / N + 1)]``
    (``s`` people, ``N`` searches, ``S2 = sum n_i^2``; exact, the ``-1`` and ``+1`` from
    estimating ``p_g``), solved with ``b = p_g (1 - p_g)``:
    ``icc = (u - b (s - 1)) / (b (N - s - S2 / N + 1))``. Both the residuals and ``b`` are at
    the group's own rate, so the estimate is a ratio that does not grow with the group's rate:
    the people who raise a group's rate raise its between-person variance too, and measured
    against the pooled rate instead, a group whose few heavy people happened to raise its rate
    gave a larger correlation exactly when the observed difference was large (size 0.01 in the
    review's design, see :func:`bootstrap_compare_groups`).

    Why ``1 / n_i``: unweighted squared residuals (used before) give a person with errors a
    weight growing as ``n_i^2``, so where a few people carry every error (rare errors, strong
    clustering) the estimate followed those few people's searches: with 10 groups, ICC 0.5,
    rate 0.001, 1,000 people per group (``bench_stats_groups_claims.py`` grid; 1,000 data
    sets, seed 1) it had mean 0.417, 5-95% range 0.17-0.84 and 2.4% clipped at
    :data:`ICC_MAX`, and the test's size was 0.085; weighted, a heavy person counts by its
    observed rate (mean 0.476, range 0.29-0.66, size 0.055 on the same data sets; with the
    true 0.5 plugged in, 0.051). People with one search, a group of one person and a group
    without errors (``b = 0``) carry no information on it (their terms are 0).
    """
    total = sums.trials
    people = float(sums.n_people)  # people without searches carry nothing (not counted)
    if total <= 0 or people < 2:
        return 0.0, 0.0
    errors = float(sums.errors[0])
    rate = errors / total
    binomial = rate * (1.0 - rate)
    # sum (e_i - n_i p)^2 / n_i expanded: sum e^2 / n - 2 p sum e + p^2 sum n (from the sums
    # an aggregate keeps; the residual form gives the same to rounding)
    u = float(sums.squares_per_search[0]) - 2.0 * rate * errors + rate * rate * total
    s2 = sums.trials_squared
    return u - binomial * (people - 1.0), binomial * (total - people - s2 / total + 1.0)


def null_bootstrap_model(
    subject_errors: dict[str, ArrayLike],
    subject_trials: dict[str, ArrayLike],
    *,
    icc_from: IccSource = "other-groups",
) -> NullBootstrapModel:
    """Fit the null model of :func:`bootstrap_compare_groups` to per-person counts.

    Parameters
    ----------
    subject_errors, subject_trials : dict of str to array_like of int, shape (s_g,)
        For each group: each person's errors and searches at one threshold (same keys).
    icc_from : {"other-groups", "all-groups"}
        ``"other-groups"`` (default): group g's intra-person correlation is the pooled moment
        estimate (:func:`_icc_moments`, summed numerators over summed denominators) of the
        **other** groups' people, so the people whose errors make group g's observed rate and
        variance do not also set the spread of its replicates (measured: see Notes of
        :func:`bootstrap_compare_groups`); a group whose others carry no information (one
        search each) takes all groups'. ``"all-groups"``: one estimate from everyone.

    Returns
    -------
    NullBootstrapModel
        The pooled rate (all errors over all searches) and each group's correlation, clipped
        to [0, :data:`ICC_MAX`] (a negative moment estimate means no visible clustering).
    """
    return null_bootstrap_model_from_sums(
        _per_person_sums(subject_errors, subject_trials), icc_from=icc_from
    )


def null_bootstrap_model_from_sums(
    sums: dict[str, PeopleSums], *, icc_from: IccSource = "other-groups"
) -> NullBootstrapModel:
    """:func:`null_bootstrap_model` from each group's :class:`PeopleSums` at one threshold
    (what an aggregate keeps); the same model as from the per-person counts they sum."""
    null_bootstrap_method(icc_from)  # checks the name
    names = sorted(sums)
    parts_of = [sums[g] for g in names]
    errors = float(sum(float(x.errors[0]) for x in parts_of))
    searches = float(sum(x.trials for x in parts_of))
    rate = errors / searches
    icc = np.zeros(len(names))
    if 0.0 < rate < 1.0:
        parts = np.array([_icc_moments(x) for x in parts_of])
        num, den = parts[:, 0], parts[:, 1]
        all_num, all_den = float(num.sum()), float(den.sum())
        if icc_from == "other-groups":
            rest_num, rest_den = all_num - num, all_den - den
            # no information in the other groups (one search per person): everyone's
            informative = rest_den > 1e-9 * max(all_den, 1e-300)
            rest_num = np.where(informative, rest_num, all_num)
            rest_den = np.where(informative, rest_den, all_den)
        else:
            rest_num, rest_den = np.full(len(names), all_num), np.full(len(names), all_den)
        with np.errstate(divide="ignore", invalid="ignore"):
            icc = np.where(rest_den > 0, rest_num / rest_den, 0.0)
        icc = np.clip(np.nan_to_num(icc, nan=0.0), 0.0, ICC_MAX)
    return NullBootstrapModel(tuple(names), float(rate), icc, icc_from)


def _per_person_sums(
    subject_errors: dict[str, ArrayLike], subject_trials: dict[str, ArrayLike]
) -> dict[str, PeopleSums]:
    """Each group's :class:`PeopleSums` of its per-person counts (checked)."""
    names, e_parts, n_parts = _per_person_groups(subject_errors, subject_trials)
    return {g: people_sums(e, n) for g, e, n in zip(names, e_parts, n_parts, strict=True)}


def _per_person_groups(
    subject_errors: dict[str, ArrayLike], subject_trials: dict[str, ArrayLike]
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Sorted group names and each group's per-person errors and searches (float64), checked."""
    names = sorted(subject_errors)
    if len(names) < 2 or set(names) != set(subject_trials):
        raise MetricInputError("at least two groups, with errors and trials for each, are needed")
    e_parts = [np.asarray(subject_errors[g], np.float64).ravel() for g in names]
    n_parts = [np.asarray(subject_trials[g], np.float64).ravel() for g in names]
    for g, e_g, n_g in zip(names, e_parts, n_parts, strict=True):
        if e_g.shape != n_g.shape:
            raise MetricInputError(f"group {g!r}: per-person errors and trials differ in length")
        check_counts(e_g, n_g)
        if n_g.sum() <= 0:
            raise MetricInputError(MSG_NO_TRIALS.format(name=g))
    return names, e_parts, n_parts


@dataclass(frozen=True)
class _GroupDraws:
    """How one group's replicates are drawn: people drawn one by one, and (searches, people)
    types drawn as multinomial counts of their error values.

    Attributes
    ----------
    a, b : float
        The beta's parameters (``inf`` for a correlation of 0: plain binomial counts).
    people : ndarray, shape (s,)
        Searches of the people drawn one by one.
    types : list of (searches, people, pmf)
        Each remaining searches value, its number of people and the beta-binomial pmf of one
        person's errors over ``0..searches``.
    constant : tuple of float
        The group's ``sum n`` and ``sum n^2`` (the same in every replicate).
    """

    a: float
    b: float
    people: np.ndarray
    types: list[tuple[int, int, np.ndarray]]
    constant: tuple[float, float]


def _draw_plan(sums: PeopleSums, rate: float, icc: float, engine: str) -> _GroupDraws:
    """The cheaper way to draw each searches value of one group's people.

    A person costs a beta and a binomial draw per replicate; ``k`` people with the same ``n``
    searches cost one multinomial draw over ``n + 1`` error values (which stops at the last
    person placed), so a crowd whose people mostly share a few searches values costs by
    values, not by people. ``engine="auto"`` takes the multinomial where ``k > n + 1``.
    """
    if icc > 0:
        scale = (1.0 - icc) / icc
        a, b = rate * scale, (1.0 - rate) * scale
    else:
        a = b = float("inf")
    values, counts = sums.searches, sums.people
    by_type = counts > values + 1 if engine == "auto" else np.full(values.shape, engine == "types")
    types = []
    for value, count in zip(values[by_type], counts[by_type], strict=True):
        pmf = _person_errors_pmf(int(value), rate, a, b)
        types.append((int(value), int(count), pmf))
    # one by one in ascending searches (the histogram's order, so that full results and their
    # aggregate draw the same replicates)
    people = np.repeat(values[~by_type], counts[~by_type])
    return _GroupDraws(
        a, b, people.astype(np.int64), types, (sums.trials, sums.trials_squared)
    )


def _person_errors_pmf(searches: int, rate: float, a: float, b: float) -> np.ndarray:
    """P(e errors), e = 0..searches, of one person of the null model: beta-binomial with
    parameters ``a, b`` (binomial at ``rate`` where they are infinite), normalised to sum 1 (a
    multinomial draw refuses probabilities that sum above 1 by rounding)."""
    from scipy import special  # imported here: ~1 s, and not every caller needs it

    k = np.arange(searches + 1, dtype=np.float64)
    log_choose = (
        special.gammaln(searches + 1.0) - special.gammaln(k + 1.0)
        - special.gammaln(searches - k + 1.0)
    )  # fmt: skip
    if np.isinf(a):
        with np.errstate(divide="ignore"):
            log_p = log_choose + special.xlogy(k, rate) + special.xlog1py(searches - k, -rate)
    else:
        log_p = log_choose + special.betaln(k + a, searches - k + b) - special.betaln(a, b)
    pmf = np.exp(log_p - log_p.max())
    out: np.ndarray = pmf / pmf.sum()
    return out


def _replicate_sums(
    plans: list[_GroupDraws], rate: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """(size, 5, G) sums of ``e, n, e^2, e n, n^2`` over each group's people in ``size``
    replicates drawn from the null model."""
    out = np.zeros((size, 5, len(plans)))
    for g, plan in enumerate(plans):
        out[:, 1, g], out[:, 4, g] = plan.constant
        n = plan.people
        if n.shape[0]:
            # people in slices so that one slice's draws stay within BOOTSTRAP_CHUNK
            step = max(1, BOOTSTRAP_CHUNK // size)
            for lo in range(0, n.shape[0], step):
                part = n[lo : lo + step]
                # each person's rate in each replicate (everyone's the pooled rate at ICC 0)
                p: float | np.ndarray = (
                    rate
                    if np.isinf(plan.a)
                    else rng.beta(plan.a, plan.b, size=(size, part.shape[0]))
                )
                e = rng.binomial(part, p, size=(size, part.shape[0])).astype(np.float64)
                out[:, 0, g] += e.sum(axis=1)
                out[:, 2, g] += np.einsum("ij,ij->i", e, e)
                out[:, 3, g] += e @ part.astype(np.float64)
        for value, count, pmf in plan.types:
            x = np.arange(value + 1, dtype=np.float64)
            placed = rng.multinomial(count, pmf, size=size).astype(np.float64)  # (size, n + 1)
            total = placed @ x
            out[:, 0, g] += total
            out[:, 2, g] += placed @ (x * x)
            out[:, 3, g] += value * total
    return out


def bootstrap_compare_groups(
    subject_errors: dict[str, ArrayLike],
    subject_trials: dict[str, ArrayLike],
    *,
    n_replicates: int = 4999,
    seed: int | np.random.Generator | None = 0,
    adjustment: Adjustment = DEFAULT_ADJUSTMENT,
    icc_from: IccSource = "other-groups",
    engine: Literal["auto", "types", "people"] = "auto",
) -> GroupRatesComparison:
    """Every pair of groups compared by a parametric null bootstrap-t over people.

    Parameters
    ----------
    subject_errors, subject_trials : dict of str to array_like of int, shape (s_g,)
        For each group: each person's errors and searches at one threshold (same keys).
    n_replicates : int
        Data sets drawn from the null model; p-values are
        ``(1 + #replicates at least as extreme) / (1 + n_replicates)``, in steps of
        ``1 / (1 + n_replicates)``.
    seed : int or Generator
        Randomness of the replicates, for reproducible p-values.
    adjustment : {"step-down", "single-step"}
        The max-|t| adjustment over all pairs, from the same replicates. Default step-down.
    icc_from : {"other-groups", "all-groups"}
        Where each group's intra-person correlation is estimated (:func:`null_bootstrap_model`);
        the method label says which.
    engine : {"auto", "types", "people"}
        How replicates are drawn (same distribution): person by person, or as multinomial
        counts of the people sharing a searches value (:func:`_draw_plan`); ``"auto"`` takes
        the cheaper for each value.

    Returns
    -------
    GroupRatesComparison
        ``method`` names the test and its adjustment (:data:`NULL_BOOTSTRAP_TEST` by default),
        ``null_model`` the fitted model; each pair's ``p_value`` is its own bootstrap p-value,
        ``p_adjusted`` the max-|t| one over all pairs.

    Notes
    -----
    The statistic of each pair is the one of :func:`permutation_compare_groups`: the
    difference of the groups' rates over its design-effect (Rao–Scott) standard error at the
    pair's pooled rate (:func:`_studentized_pairs`). Its distribution under equal rates is
    not normal where a few people carry most errors (a group whose sample happens to hold
    none of them looks unclustered), and relabelling people between groups whose searches per
    person differ leaves little to relabel; so the reference distribution is drawn instead
    from a model fitted under the null hypothesis (a parametric bootstrap-t; Davison &
    Hinkley 1997, ch. 4): every person's errors beta-binomial at the pooled rate with the
    moment-estimated intra-person correlation, each group keeping its real searches per
    person, the same statistic recomputed on every replicate. Each group's correlation comes
    from the *other* groups' people by default (each measured against its own rate,
    :func:`_icc_moments`), so the critical value does not move with the observed difference:
    from all groups, a group with many searches per person and no heavy person in its sample
    looked unclustered, its replicates too, and equal groups were called different in 0.17 of
    data sets (review's first design); against the pooled rate, the other group's heavy
    people widened the replicates exactly when they raised the observed difference (0.01).
    The adjusted p-value is Westfall & Young's max-|t| over all
    pairs (step-down by default, algorithm 2.8), so the family-wise error rate is controlled,
    also for the highest-vs-lowest pair chosen after seeing the data.

    Measured (``benchmarks/results/null_bootstrap_groups.md``, seeded data sets with known
    truth, 5% of people at 20x the others' rate): size 0.0645 / 0.052 / 0.0615 in the review's
    three designs (30 x ~30 against 300 x ~2 searches, 50 x ~20 against 200 x ~3, 100 x ~10
    each; 2,000 data sets), where the Rao–Scott test gave 0.153 / 0.087 / 0.059 and the
    permutation test 0.009 / 0.045 / 0.045; power at 2x 0.060 / 0.188 / 0.398. On the 18-cell
    grid of ``bench_stats_groups_claims.py`` (2–10 groups, ICC 0–0.5, rates 0.01 and 0.001,
    1,000 data sets each) the size is 0.031–0.058 and the power at 2x above the permutation
    test's in every cell. Each group's correlation is moment-estimated with every person's
    rate weighted by its searches (:func:`_icc_moments`): with unweighted squared residuals
    the estimate followed the searches of the few people who carry rare errors, and ten
    groups at ICC 0.5, rate 0.001 had size 0.085 (0.051 with the true correlation plugged in,
    so neither the beta model nor the max over 45 pairs was at fault). Limits: the
    model is exact only for beta-distributed person rates; it matches the first two moments
    of any other (with the lambs' two-point rates its |t| tail is lighter, so the size sits
    in the upper half of the band). Cost: a beta and a binomial draw per person and replicate
    (about 0.1 us), or one multinomial draw per searches value where many people share it.
    """
    return bootstrap_compare_groups_from_sums(
        _per_person_sums(subject_errors, subject_trials), n_replicates=n_replicates,
        seed=seed, adjustment=adjustment, icc_from=icc_from, engine=engine,
    )  # fmt: skip


def bootstrap_compare_groups_from_sums(
    sums: dict[str, PeopleSums],
    *,
    n_replicates: int = 4999,
    seed: int | np.random.Generator | None = 0,
    adjustment: Adjustment = DEFAULT_ADJUSTMENT,
    icc_from: IccSource = "other-groups",
    engine: Literal["auto", "types", "people"] = "auto",
) -> GroupRatesComparison:
    """:func:`bootstrap_compare_groups` from each group's :class:`PeopleSums` at one
    threshold (e.g. an aggregate's, :meth:`lfr_eval.report.AggregateResult.people_sums`):
    the same test, and with the same seed the same p-values, as on the per-person counts
    those sums were made from. Arguments as there."""
    _check_adjustment(adjustment)
    if n_replicates < 1:
        raise MetricInputError(f"n_replicates must be positive, got {n_replicates}")
    if engine not in ("auto", "types", "people"):
        raise MetricInputError(f"engine must be 'auto', 'types' or 'people', got {engine!r}")
    names = sorted(sums)
    if len(names) < 2:
        raise MetricInputError("at least two groups, with errors and trials for each, are needed")
    for g in names:
        if sums[g].errors.shape != (1,):
            raise MetricInputError(
                f"group {g!r}: sums over people at one threshold are needed, got "
                f"{sums[g].errors.shape[0]} thresholds (take one column of people_sums)"
            )
        if sums[g].trials <= 0:
            raise MetricInputError(MSG_NO_TRIALS.format(name=g))
    model = null_bootstrap_model_from_sums(sums, icc_from=icc_from)
    n_groups = len(names)
    i_idx, j_idx = np.triu_indices(n_groups, 1)
    people = np.array([sums[g].n_people for g in names], np.float64)
    observed_sums = np.stack([sums[g].moments() for g in names], axis=1)  # (5, G)
    rates = observed_sums[0] / observed_sums[1]
    observed = _studentized_pairs(observed_sums, people, model.rate, i_idx, j_idx)
    if model.rate in (0.0, 1.0):
        # no error (or every search one): nothing can differ, and every replicate is the data
        raw = single = step_down = np.ones(i_idx.shape[0])
    else:
        plans = [
            _draw_plan(sums[g], model.rate, float(icc), engine)
            for g, icc in zip(names, model.icc, strict=True)
        ]
        one_by_one = sum(int(p.people.shape[0]) for p in plans)
        chunk = max(1, min(n_replicates, TYPED_CHUNK, BOOTSTRAP_CHUNK // max(one_by_one, 1)))
        rng = np.random.default_rng(seed)

        def null_chunks() -> Iterator[np.ndarray]:
            done = 0
            while done < n_replicates:
                size = min(chunk, n_replicates - done)
                sums = _replicate_sums(plans, model.rate, size, rng)
                yield _studentized_pairs(sums, people, model.rate, i_idx, j_idx)
                done += size

        raw, single, step_down = _max_t_p_values(observed, null_chunks(), n_replicates)
    adjusted = step_down if adjustment == "step-down" else single
    return _comparison(
        names, rates, observed, raw, adjusted,
        comparison_method(null_bootstrap_method(icc_from), adjustment), adjustment, model,
    )  # fmt: skip
