"""Confidence intervals for error rates: Clopper–Pearson, Wilson and the subject bootstrap.

Binomial intervals (Clopper–Pearson, Wilson) treat every search as an independent trial. Repeat
images of one person are not independent (Schuckers et al. 2022), so the subject bootstrap
resamples *subjects* with replacement and recomputes the error counts. It is vectorised: the
per-subject error counts at every threshold form a matrix ``C`` (subjects x thresholds); a
replicate is a vector of how many times each subject was drawn, so all replicates at all
thresholds are one matrix product ``W @ C``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lfr_eval.metrics._clustered import korn_graubard

if TYPE_CHECKING:
    import plotly.graph_objects as go
from lfr_eval.metrics._validation import (
    MetricInputError,
    check_confidence,
    check_counts,
    check_sided,
)

IntervalMethod = Literal["clopper-pearson", "wilson"]
Sided = Literal["two-sided", "upper", "lower"]

MSG_METHOD = "interval method must be 'clopper-pearson' or 'wilson', got {value!r}"


def _tail_probabilities(confidence: float, sided: str) -> tuple[float, float]:
    """Probability left out below and above the interval."""
    alpha = 1.0 - check_confidence(confidence)
    check_sided(sided)
    if sided == "two-sided":
        return alpha / 2, alpha / 2
    if sided == "upper":  # one-sided upper bound: the lower end is 0
        return 0.0, alpha
    return alpha, 0.0


def _unknown_without_trials(
    low: ArrayLike, high: ArrayLike, trials: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The interval ends as float64, [0, 1] where ``trials == 0``: nothing is known there."""
    empty = trials == 0
    low = np.where(empty, 0.0, low)
    high = np.where(empty, 1.0, high)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def clopper_pearson(
    errors: ArrayLike,
    trials: ArrayLike,
    confidence: float = 0.95,
    *,
    sided: Sided = "two-sided",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) binomial interval for ``errors / trials``.

    Parameters
    ----------
    errors, trials : array_like of int
        Counts, broadcast together; ``0 <= errors <= trials``.
    confidence : float
        Coverage in (0, 1), e.g. 0.95.
    sided : {"two-sided", "upper", "lower"}
        ``"upper"`` gives a one-sided upper confidence bound (lower end 0), as used to support a
        claim such as "FPIR <= 1 in 6,000"; ``"lower"`` a one-sided lower bound (upper end 1).

    Returns
    -------
    low, high : ndarray of float
        Interval ends in [0, 1]. Where ``trials == 0`` nothing is known and the interval is
        [0, 1]. With zero errors the 95% upper bound is about ``3 / trials`` (rule of three).

    Examples
    --------
    >>> low, high = clopper_pearson(0, 1000, sided="upper")
    >>> round(float(high), 5)
    0.00299
    """
    # scipy.stats is imported where it is used: it costs ~1 s at import and the app's pages and
    # the CLI import the metrics without always computing an interval (tests/test_imports.py)
    from scipy import stats

    k, n = check_counts(errors, trials)
    a_low, a_high = _tail_probabilities(confidence, sided)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Safe parameters where the closed form applies; the edge cases are set below.
        low = stats.beta.ppf(a_low, np.maximum(k, 1), np.maximum(n - k + 1, 1))
        high = stats.beta.ppf(1 - a_high, k + 1, np.maximum(n - k, 1))
    low = np.where((k == 0) | (a_low == 0.0), 0.0, low)
    high = np.where((k == n) | (a_high == 0.0), 1.0, high)
    return _unknown_without_trials(low, high, n)


def wilson(
    errors: ArrayLike,
    trials: ArrayLike,
    confidence: float = 0.95,
    *,
    sided: Sided = "two-sided",
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``errors / trials`` (no continuity correction).

    Same parameters and edge-case conventions as :func:`clopper_pearson`. Wilson's interval is
    shorter than Clopper–Pearson's and its coverage is close to nominal on average, but it can
    dip below nominal for some ``(n, p)``; prefer Clopper–Pearson for claims.
    """
    from scipy import stats

    k, n = check_counts(errors, trials)
    a_low, a_high = _tail_probabilities(confidence, sided)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n

        def bound(tail: float, sign: float) -> np.ndarray:
            z = stats.norm.ppf(1 - tail)
            denom = 1 + z**2 / n
            centre = (p + z**2 / (2 * n)) / denom
            half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
            return centre + sign * half

        low = bound(a_low, -1.0) if a_low > 0 else np.zeros_like(p)
        high = bound(a_high, +1.0) if a_high > 0 else np.ones_like(p)
    low = np.where(k == 0, 0.0, np.clip(low, 0.0, 1.0))
    high = np.where(k == n, 1.0, np.clip(high, 0.0, 1.0))
    return _unknown_without_trials(low, high, n)


def binomial_interval(
    errors: ArrayLike,
    trials: ArrayLike,
    confidence: float = 0.95,
    *,
    method: IntervalMethod = "clopper-pearson",
    sided: Sided = "two-sided",
) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch to :func:`clopper_pearson` or :func:`wilson` by name."""
    if method == "clopper-pearson":
        return clopper_pearson(errors, trials, confidence, sided=sided)
    if method == "wilson":
        return wilson(errors, trials, confidence, sided=sided)
    raise MetricInputError(MSG_METHOD.format(value=method))


@dataclass(frozen=True)
class RateEstimate:
    """One observed rate with its confidence interval.

    Attributes
    ----------
    errors : int
        Events counted: errors for FPIR/FNIR/FMR/FNMR (for a complemented rate such as TPIR, the
        count of the complementary event, see :meth:`complement`).
    trials : int
        Searches (or comparisons) the rate is over.
    rate : float
        ``errors / trials`` in [0, 1]; NaN when ``trials == 0``.
    ci_low, ci_high : float
        Interval ends in [0, 1].
    method : str
        How the interval was made: ``"clopper-pearson"``, ``"wilson"``, ``"subject-bootstrap"``.
    confidence : float
        Nominal coverage, e.g. 0.95.
    sided : str
        ``"two-sided"``, ``"upper"`` (one-sided upper bound, ``ci_low == 0``) or ``"lower"``.
    insufficient_data : bool
        True when ``trials == 0``: the rate is undefined, not zero.
    """

    errors: int
    trials: int
    rate: float
    ci_low: float
    ci_high: float
    method: str
    confidence: float
    sided: str = "two-sided"
    insufficient_data: bool = False

    def complement(self) -> RateEstimate:
        """The complementary rate (e.g. TPIR from FNIR): ``1 - rate`` with the interval flipped."""
        return RateEstimate(
            errors=self.trials - self.errors,
            trials=self.trials,
            rate=1.0 - self.rate,
            ci_low=1.0 - self.ci_high,
            ci_high=1.0 - self.ci_low,
            method=self.method,
            confidence=self.confidence,
            sided={"upper": "lower", "lower": "upper"}.get(self.sided, self.sided),
            insufficient_data=self.insufficient_data,
        )


def estimate_rate(
    errors: int,
    trials: int,
    confidence: float = 0.95,
    *,
    method: IntervalMethod = "clopper-pearson",
    sided: Sided = "two-sided",
) -> RateEstimate:
    """A :class:`RateEstimate` for ``errors`` out of ``trials`` with a binomial interval.

    Examples
    --------
    >>> est = estimate_rate(10, 3_147_436)
    >>> f"{est.rate:.1e} ({est.ci_low:.1e}-{est.ci_high:.1e})"
    '3.2e-06 (1.5e-06-5.8e-06)'
    """
    low, high = binomial_interval(errors, trials, confidence, method=method, sided=sided)
    n = int(trials)
    return RateEstimate(
        errors=int(errors),
        trials=n,
        rate=float(errors) / n if n else float("nan"),
        ci_low=float(low),
        ci_high=float(high),
        method=method,
        confidence=float(confidence),
        sided=sided,
        insufficient_data=n == 0,
    )


@dataclass(frozen=True)
class RateCurve:
    """A rate at many thresholds, with intervals: the vectorised twin of :class:`RateEstimate`.

    Attributes
    ----------
    metric : str
        ``"fpir"``, ``"fnir"``, ``"fmr"``, ``"fnmr"``, ...
    thresholds : ndarray of shape (m,)
        Similarity thresholds in [-1, 1] (an alert when score >= threshold), in the order given.
    errors : ndarray of int, shape (m,)
    trials : int
        Searches (or comparisons); the same at every threshold.
    rate, ci_low, ci_high : ndarray of float, shape (m,)
    method, confidence, sided :
        As in :class:`RateEstimate`.
    """

    metric: str
    thresholds: np.ndarray
    errors: np.ndarray
    trials: int
    rate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    method: str
    confidence: float
    sided: str = "two-sided"

    def __len__(self) -> int:
        return int(self.thresholds.shape[0])

    @property
    def insufficient_data(self) -> bool:
        return self.trials == 0

    def __getitem__(self, index: int) -> RateEstimate:
        return RateEstimate(
            errors=int(self.errors[index]),
            trials=int(self.trials),
            rate=float(self.rate[index]),
            ci_low=float(self.ci_low[index]),
            ci_high=float(self.ci_high[index]),
            method=self.method,
            confidence=self.confidence,
            sided=self.sided,
            insufficient_data=self.trials == 0,
        )

    def at(self, threshold: float) -> RateEstimate:
        """The estimate at a threshold that is one of :attr:`thresholds` (exact match)."""
        hits = np.flatnonzero(self.thresholds == float(threshold))
        if hits.size == 0:
            raise MetricInputError(
                f"threshold {threshold} is not one of this curve's thresholds; "
                "compute the metric at that threshold instead"
            )
        return self[int(hits[0])]

    def plot(self, **kwargs: Any) -> go.Figure:
        """This curve with its interval band, as a plotly figure
        (:class:`lfr_eval.report.RateCurveDisplay`; keyword arguments go to its ``plot``)."""
        from lfr_eval.report import RateCurveDisplay  # plotly loads only to draw

        return RateCurveDisplay(self, self.metric).plot(**kwargs)

    def to_frame(self) -> pd.DataFrame:
        """One row per threshold: threshold, errors, trials, rate, ci_low, ci_high."""
        return pd.DataFrame(
            {
                "threshold": self.thresholds,
                "errors": self.errors,
                "trials": self.trials,
                "rate": self.rate,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
            }
        )


def rate_curve(
    metric: str,
    thresholds: np.ndarray,
    errors: np.ndarray,
    trials: int,
    confidence: float = 0.95,
    *,
    method: IntervalMethod = "clopper-pearson",
    sided: Sided = "two-sided",
) -> RateCurve:
    """Build a :class:`RateCurve` from error counts with binomial intervals."""
    errors = np.asarray(errors, dtype=np.int64)
    low, high = binomial_interval(errors, trials, confidence, method=method, sided=sided)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = errors / trials if trials else np.full(errors.shape, np.nan)
    return RateCurve(
        metric=metric,
        thresholds=np.asarray(thresholds, dtype=np.float64),
        errors=errors,
        trials=int(trials),
        rate=np.asarray(rate, dtype=np.float64),
        ci_low=low,
        ci_high=high,
        method=method,
        confidence=float(confidence),
        sided=sided,
    )


# --------------------------------------------------------------------------------------------
# Subject bootstrap
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectCounts:
    """Per-subject counts at many thresholds: the sufficient statistic of the subject bootstrap.

    Attributes
    ----------
    subjects : ndarray of shape (s,)
        Distinct subject ids, sorted.
    trials : ndarray of int, shape (s,)
        Searches of each subject.
    errors : ndarray of int, shape (s, m)
        Errors of each subject at each threshold.
    thresholds : ndarray of shape (m,)
    """

    subjects: np.ndarray
    trials: np.ndarray
    errors: np.ndarray
    thresholds: np.ndarray

    @property
    def n_subjects(self) -> int:
        return int(self.subjects.shape[0])

    def subset(self, mask: np.ndarray) -> SubjectCounts:
        """The counts of the subjects selected by a boolean mask of shape (s,)."""
        return SubjectCounts(
            self.subjects[mask], self.trials[mask], self.errors[mask], self.thresholds
        )


def count_at_or_above_by_subject(
    subject_ids: ArrayLike, scores: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-subject number of scores ``>= T`` at each threshold, in O(n + s*m).

    Parameters
    ----------
    subject_ids : array_like of shape (n,)
        Subject of each search (any hashable labels numpy can sort).
    scores : ndarray of shape (n,)
        One score per search; ``-inf`` marks a search that never reaches any threshold.
    thresholds : ndarray of shape (m,)
        Any order.

    Returns
    -------
    subjects : ndarray of shape (s,)
        Sorted distinct subject ids.
    trials : ndarray of int64, shape (s,)
    hits : ndarray of int64, shape (s, m)
        ``hits[i, t]`` = searches of subject ``i`` with ``score >= thresholds[t]``.
    """
    subjects, codes = np.unique(np.asarray(subject_ids), return_inverse=True)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    order = np.argsort(thresholds, kind="stable")
    sorted_thr = thresholds[order]
    m = sorted_thr.shape[0]
    # j = number of thresholds <= score; the score reaches sorted threshold t iff t < j.
    j = np.searchsorted(sorted_thr, np.asarray(scores, dtype=np.float64), side="right")
    n_subj = subjects.shape[0]
    hist = np.bincount(codes * (m + 1) + j, minlength=n_subj * (m + 1)).reshape(n_subj, m + 1)
    hits_sorted = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]
    hits = np.empty_like(hits_sorted)
    hits[:, order] = hits_sorted
    trials = hist.sum(axis=1)
    return subjects, trials, hits


def bootstrap_weights(n_subjects: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each subject is drawn in each replicate, shape (n_boot, n_subjects).

    Each row is a multinomial(n_subjects, uniform) draw: ``n_subjects`` subjects sampled with
    replacement.
    """
    draws = rng.integers(0, n_subjects, size=(n_boot, n_subjects))
    flat = draws + (np.arange(n_boot) * n_subjects)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n_subjects).reshape(n_boot, n_subjects)


def bootstrap_rates(
    counts: SubjectCounts, n_boot: int = 1000, *, seed: int | np.random.Generator | None = 0
) -> np.ndarray:
    """Replicate rates of the subject bootstrap, shape (n_boot, m).

    Subjects are resampled with replacement; each replicate's rate is its total errors over its
    total searches. NaN where a replicate has no searches (only possible with no subjects).
    """
    if n_boot < 1:
        raise MetricInputError(f"n_boot must be a positive number of replicates, got {n_boot}")
    rng = np.random.default_rng(seed)
    s = counts.n_subjects
    m = counts.errors.shape[1]
    if s == 0:
        return np.full((n_boot, m), np.nan)
    weights = bootstrap_weights(s, n_boot, rng)
    # float32 holds integer sums exactly up to 2**24; beyond that use float64.
    dtype = np.float32 if counts.trials.sum() * 4 < 2**24 else np.float64
    errors = weights.astype(dtype) @ counts.errors.astype(dtype)
    trials = weights.astype(np.float64) @ counts.trials.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return errors.astype(np.float64) / trials[:, None]


def _linear_quantile(ordered: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` of each column of a column-sorted array (numpy's default 'linear')."""
    pos = q * (ordered.shape[0] - 1)
    below = int(np.floor(pos))
    above = min(below + 1, ordered.shape[0] - 1)
    frac = pos - below
    return ordered[below] * (1 - frac) + ordered[above] * frac


def subject_bootstrap_interval(
    counts: SubjectCounts,
    confidence: float = 0.95,
    *,
    n_boot: int = 1000,
    sided: Sided = "two-sided",
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the rate at each threshold from the subject bootstrap.

    Returns
    -------
    low, high : ndarray of shape (m,)
        Percentile interval ends. Where every replicate is the same — every subject has the
        same error rate (no errors, all errors, a single subject, ...) — the bootstrap cannot
        see past the sample and would give a zero-width interval. There the clustered
        Korn–Graubard interval is returned instead (same ``confidence`` and ``sided``; with no
        errors about 3/s at 95% one-sided for s people): see :func:`bootstrap_degenerate`.

    Notes
    -----
    The percentile bootstrap is kept by name for comparison. It under-covers when searches
    correlate strongly within a person (70–93% for a nominal 95% at an intra-person
    correlation of 0.2–0.3), so the workbench's default is :func:`korn_graubard`.
    """
    a_low, a_high = _tail_probabilities(confidence, sided)
    reps = bootstrap_rates(counts, n_boot, seed=seed)
    m = reps.shape[1]
    if counts.n_subjects == 0:
        return np.zeros(m), np.ones(m)
    # Every replicate has searches (each subject has at least one), so no NaN: plain quantile
    # (a partial sort) is much faster than nanquantile's per-column loop.
    ordered = np.sort(reps, axis=0)
    low, high = (_linear_quantile(ordered, q) for q in (a_low, 1 - a_high))
    if a_low == 0:
        low = np.zeros(m)
    if a_high == 0:
        high = np.ones(m)
    degenerate = bootstrap_degenerate(counts)
    if degenerate.any():
        clustered = korn_graubard(counts.errors, counts.trials, confidence, sided=sided)
        low = np.where(degenerate, clustered.ci_low, low)
        high = np.where(degenerate, clustered.ci_high, high)
    return low, high


def bootstrap_degenerate(counts: SubjectCounts) -> np.ndarray:
    """Thresholds where every subject-bootstrap replicate has the same rate, shape (m,).

    That happens when every subject has the same error rate ``e_i / n_i`` — no errors at all
    (every replicate 0), errors in every search (every replicate 1), a single subject, or e.g.
    30 people with one error in two searches each (every replicate 0.5): a percentile interval
    there has zero width and says nothing about the sampling uncertainty.
    """
    m = counts.errors.shape[1]
    if counts.n_subjects < 2:
        return np.ones(m, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts.errors / counts.trials[:, None]
    rates = rates[counts.trials > 0]
    if rates.shape[0] < 2:
        return np.ones(m, bool)
    return np.all(np.isclose(rates, rates[:1], rtol=0.0, atol=1e-12), axis=0)
