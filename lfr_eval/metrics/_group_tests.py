"""Tests of whether two groups' error rates differ: Fisher's exact test and a subject permutation test.

Fisher's exact test treats every search as an independent trial. When people appear in several
searches (repeat passes, several images) their searches are correlated and Fisher's test is too
eager to call a difference; the permutation test keeps its size by permuting group labels
between **subjects**, carrying each subject's searches along.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

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
        Subjects in each group (permutation test only).
    n_permutations : int or None
    independence_assumed : bool
        True when the test treats searches as independent (Fisher).
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
