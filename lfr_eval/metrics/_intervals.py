"""Confidence intervals for error rates: Clopper–Pearson, Wilson and the subject bootstrap.

Binomial intervals (Clopper–Pearson, Wilson) treat every search as an independent trial. Repeat
images of one person are not independent (Schuckers et al. 2022), so the subject bootstrap
resamples *subjects* with replacement and recomputes the error counts. A replicate is a vector
``w`` of how many times each subject was drawn, so its errors at every threshold are ``w @ C``
for the per-subject counts ``C`` (subjects x thresholds).

At scale ``C`` is never formed: :class:`SubjectHistogram` keeps, per subject, how many of its
searches fall in each bin between consecutive thresholds (a sparse matrix with at most one entry
per search), and a replicate's errors are ``w @ H`` followed by a cumulative sum over bins. The
replicates are drawn and reduced a chunk at a time, so memory is O(searches + chunk x subjects),
not O(subjects x thresholds) — a million crowd faces at a thousand thresholds fit. With the same
seed the replicates are bit-identical to the dense computation (the draws are taken from the
generator in the same order and every sum is an exact integer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lfr_eval.metrics._clustered import (
    ClusterSummary,
    korn_graubard_from_summary,
    merge_top_people,
    summarise_clusters,
    top_people,
)
from lfr_eval.metrics._people_sums import PeopleSumsBuilder
from lfr_eval.metrics._top_people import histogram_top_people
from lfr_eval.metrics._validation import (
    MetricInputError,
    check_confidence,
    check_counts,
    check_sided,
)

IntervalMethod = Literal["clopper-pearson", "wilson"]
Sided = Literal["two-sided", "upper", "lower"]

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from scipy.sparse import csr_array

#: Bytes of replicate weights drawn at a time by the subject bootstrap (chunked replicates).
BOOTSTRAP_CHUNK_BYTES = 64 * 2**20
#: Subjects densified at a time (x thresholds, float64) for the clustered summary: up to this
#: many cells it is :func:`summarise_clusters` of one block, bit for bit.
SUMMARY_CHUNK_CELLS = 4 * 2**20
#: Cells of each block beyond that (8 MiB of int64): blocks that stay in cache. The per-block
#: cumulative sums and residual powers ran 3-4x slower on 32 MiB blocks (the group frame at
#: 1M people, bench_group_frame.py).
SUMMARY_BLOCK_CELLS = 2**20


def summary_block_rows(m: int) -> int:
    """People per block (>= 1) of a pass over per-person counts at ``m`` thresholds."""
    return max(1, min(SUMMARY_CHUNK_CELLS, SUMMARY_BLOCK_CELLS) // max(1, m))

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
    # The beta quantiles straight from scipy.special (what scipy.stats.beta.ppf computes, to
    # the bit): scipy.stats costs ~1 s more at import, and the app's Home page shows an interval
    # (tests/test_imports.py)
    from scipy import special

    k, n = check_counts(errors, trials)
    a_low, a_high = _tail_probabilities(confidence, sided)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Safe parameters where the closed form applies; the edge cases are set below.
        low = special.betaincinv(np.maximum(k, 1), np.maximum(n - k + 1, 1), a_low)
        high = special.betaincinv(k + 1, np.maximum(n - k, 1), 1 - a_high)
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
            out: np.ndarray = centre + sign * half
            return out

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

    @classmethod
    def from_row(cls, row: Any, confidence: float) -> RateEstimate:
        """The estimate of one rates-table row (columns ``errors``, ``n_searches``, ``rate``,
        ``ci_low``, ``ci_high``, ``ci_method``, ``insufficient_data``), as a frame's table or an
        aggregate's ``rates`` hold it."""
        return cls(
            errors=int(row["errors"]),
            trials=int(row["n_searches"]),
            rate=float(row["rate"]),
            ci_low=float(row["ci_low"]),
            ci_high=float(row["ci_high"]),
            method=str(row["ci_method"]),
            confidence=float(confidence),
            insufficient_data=bool(row["insufficient_data"]),
        )

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
    row_methods : ndarray of str, shape (m,), or None
        Each threshold's interval method where they differ (a clustered interval names its
        edge cases, e.g. "counted by people" where no error was seen); None: ``method``.
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
    row_methods: np.ndarray | None = None

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
            method=self.method if self.row_methods is None else str(self.row_methods[index]),
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
        """One row per threshold: threshold, errors, trials, rate, ci_low, ci_high, ci_method."""
        return pd.DataFrame(
            {
                "threshold": self.thresholds,
                "errors": self.errors,
                "trials": self.trials,
                "rate": self.rate,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "ci_method": self.method if self.row_methods is None else self.row_methods,
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

    def error_totals(self) -> np.ndarray:
        """Errors summed over subjects at each threshold, int64 shape (m,)."""
        m = self.thresholds.shape[0]
        return self.errors.sum(axis=0) if self.n_subjects else np.zeros(m, np.int64)

    def errors_at(self, index: int) -> np.ndarray:
        """Errors of each subject at threshold ``thresholds[index]``, shape (s,)."""
        return np.asarray(self.errors[:, index])

    def dense_chunks(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(errors (k, m), trials (k,)) of consecutive blocks of at most ``rows`` subjects."""
        for start in range(0, self.n_subjects, max(1, rows)):
            stop = start + max(1, rows)
            yield self.errors[start:stop], self.trials[start:stop]

    def replicate_errors(self, weights: np.ndarray) -> np.ndarray:
        """Errors of bootstrap replicates ``weights`` (B, s) at each threshold, shape (B, m)."""
        # float32 holds integer sums exactly up to 2**24; beyond that float64 (exact to 2**53)
        dtype = np.float32 if self.trials.sum() * 4 < 2**24 else np.float64
        return (weights.astype(dtype) @ self.errors.astype(dtype)).astype(np.float64)


@dataclass(frozen=True)
class SubjectHistogram:
    """Per-subject search counts between thresholds: :class:`SubjectCounts` without the matrix.

    Row ``i`` of ``bins`` holds, for each search of subject ``i``, the number ``j`` of (sorted)
    thresholds at or below its score — the search reaches sorted threshold ``t`` iff ``t < j``
    — aggregated to (bin, count) pairs. Memory is O(searches), whatever the thresholds.

    Attributes
    ----------
    subjects : ndarray of shape (s,)
        Distinct subject (or cluster) ids, sorted.
    trials : ndarray of int64, shape (s,)
        Searches of each subject (all >= 1).
    bins : scipy.sparse.csr_array of int64, shape (s, m + 1)
        ``bins[i, j]`` = searches of subject ``i`` whose score reaches exactly the ``j``
        lowest thresholds.
    thresholds : ndarray of shape (m,)
        In the caller's order (any order).
    error_is_hit : bool
        True: an error is a score ``>= T`` (false positives, FPIR); False: an error is a
        score below ``T`` (misses, FNIR).
    """

    subjects: np.ndarray
    trials: np.ndarray
    bins: csr_array
    thresholds: np.ndarray
    error_is_hit: bool = True

    @property
    def n_subjects(self) -> int:
        return int(self.subjects.shape[0])

    @property
    def _order(self) -> np.ndarray:
        return np.argsort(np.asarray(self.thresholds, dtype=np.float64), kind="stable")

    def _errors_from_hits_sorted(self, hits_sorted: np.ndarray, trials: np.ndarray) -> np.ndarray:
        """Errors in the caller's threshold order from hits at sorted thresholds (..., m)."""
        hits = np.empty_like(hits_sorted)
        hits[..., self._order] = hits_sorted
        return hits if self.error_is_hit else trials[..., None] - hits

    @staticmethod
    def _hits_sorted(binned: np.ndarray) -> np.ndarray:
        """Hits at sorted thresholds from bin counts (..., m + 1): a reverse cumulative sum."""
        return np.cumsum(binned[..., ::-1], axis=-1)[..., ::-1][..., 1:]

    def subset(self, mask: np.ndarray) -> SubjectHistogram:
        """The histogram of the subjects selected by a boolean mask of shape (s,)."""
        rows = np.flatnonzero(mask)
        return SubjectHistogram(
            self.subjects[rows],
            self.trials[rows],
            self.bins[rows],
            self.thresholds,
            self.error_is_hit,
        )

    def error_totals(self) -> np.ndarray:
        """Errors summed over subjects at each threshold, int64 shape (m,)."""
        binned = np.asarray(self.bins.sum(axis=0), dtype=np.int64).ravel()
        total = np.asarray(self.trials.sum(), dtype=np.int64)
        return self._errors_from_hits_sorted(self._hits_sorted(binned), total)

    def errors_at(self, index: int) -> np.ndarray:
        """Errors of each subject at threshold ``thresholds[index]``, int64 shape (s,)."""
        position = int(np.flatnonzero(self._order == index)[0])
        hits = np.asarray(self.bins[:, position + 1 :].sum(axis=1), dtype=np.int64).ravel()
        return hits if self.error_is_hit else self.trials - hits

    def dense_chunks(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(errors (k, m), trials (k,)) of consecutive blocks of at most ``rows`` subjects."""
        order = self._order
        in_order = bool(np.array_equal(order, np.arange(order.shape[0])))
        for start in range(0, self.n_subjects, max(1, rows)):
            stop = min(start + max(1, rows), self.n_subjects)
            binned = self.bins[start:stop].toarray()
            trials = self.trials[start:stop]
            # hits at sorted threshold t = row total - searches in bins 0..t: one contiguous
            # forward cumulative sum (whole numbers, so the same counts as the reverse one)
            below = np.cumsum(binned[:, :-1], axis=1)
            total = binned[:, -1] + (below[:, -1] if below.shape[1] else 0)
            del binned
            if self.error_is_hit:
                np.subtract(total[:, None], below, out=below)
            else:
                gap = trials - total  # 0 wherever the trials are the bins' row sums
                if np.any(gap):
                    below += gap[:, None]
            if in_order:
                yield below, trials
            else:
                errors = np.empty_like(below)
                errors[:, order] = below
                yield errors, trials

    def replicate_errors(self, weights: np.ndarray) -> np.ndarray:
        """Errors of bootstrap replicates ``weights`` (B, s) at each threshold, shape (B, m)."""
        # (H^T W^T)^T: one pass over the histogram's entries per replicate, exact in int64
        binned = np.asarray(self.bins.T @ weights.T.astype(np.int64), dtype=np.int64).T
        trials = weights.astype(np.int64) @ self.trials.astype(np.int64)
        return self._errors_from_hits_sorted(self._hits_sorted(binned), trials).astype(np.float64)

    def to_counts(self) -> SubjectCounts:
        """The dense :class:`SubjectCounts` (s x m int64): only for small data."""
        errors, trials = next(self.dense_chunks(max(1, self.n_subjects)), (None, None))
        if errors is None:
            errors = np.zeros((0, self.thresholds.shape[0]), np.int64)
        return SubjectCounts(self.subjects, self.trials, errors, self.thresholds)


#: Either per-subject form the bootstrap and the clustered summary accept.
SubjectTable = SubjectCounts | SubjectHistogram


def subject_histogram(
    subject_ids: ArrayLike,
    scores: ArrayLike,
    thresholds: ArrayLike,
    *,
    error_is_hit: bool = True,
) -> SubjectHistogram:
    """The sparse per-subject histogram of scores between thresholds, in O(n log n) and O(n).

    Parameters
    ----------
    subject_ids : array_like of shape (n,)
        Subject (or cluster) of each search; any labels numpy can sort.
    scores : array_like of shape (n,)
        One score per search (similarity, or any value compared with ``>= T``); ``-inf``
        marks a search that never reaches a threshold.
    thresholds : array_like of shape (m,)
        Any order.
    error_is_hit : bool
        Whether an error is a score ``>= T`` (FPIR) or below it (FNIR).

    Returns
    -------
    SubjectHistogram
        Holds the same counts as :func:`count_at_or_above_by_subject` without its
        (s, m) matrices.
    """
    from scipy.sparse import csr_array

    subjects, codes = np.unique(np.asarray(subject_ids), return_inverse=True)
    codes = codes.ravel().astype(np.int64)
    thr = np.asarray(thresholds, dtype=np.float64)
    sorted_thr = np.sort(thr, kind="stable")
    m = sorted_thr.shape[0]
    j = np.searchsorted(sorted_thr, np.asarray(scores, dtype=np.float64), side="right")
    keys, counts = np.unique(codes * (m + 1) + j, return_counts=True)
    rows, cols = np.divmod(keys, m + 1)
    s = subjects.shape[0]
    indptr = np.zeros(s + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=s), out=indptr[1:])
    bins = csr_array((counts.astype(np.int64), cols, indptr), shape=(s, m + 1))
    trials = np.bincount(codes, minlength=s).astype(np.int64)
    return SubjectHistogram(subjects, trials, bins, thr, error_is_hit)


def _whole_number_histogram(counts: SubjectTable) -> TypeGuard[SubjectHistogram]:
    """A :class:`SubjectHistogram` of 0/1 errors (integer bins). Subclasses holding per-search
    values (``SearchValueHistogram``: float sums of P(alert) or composite FMRs) are not: their
    top people are ranked on the dense blocks."""
    return isinstance(counts, SubjectHistogram) and np.asarray(counts.bins.data).dtype.kind in "iu"


def summarise_subjects(
    counts: SubjectTable,
    *,
    block_top_people: bool = False,
    people_sums: PeopleSumsBuilder | None = None,
) -> ClusterSummary:
    """:class:`~lfr_eval.metrics.ClusterSummary` of per-subject counts, in bounded memory.

    The same statistics as :func:`~lfr_eval.metrics.summarise_clusters` (identical for up to
    :data:`SUMMARY_CHUNK_CELLS` cells), computed over blocks of subjects: the rate comes from
    the exact totals first, then each block adds its squared (and fourth-power) residuals.

    The envelope's top people of a :class:`SubjectHistogram` come from its runs of equal
    errors (:func:`~lfr_eval.metrics._top_people.histogram_top_people`, O(searches));
    ``block_top_people=True`` ranks every block of people instead
    (:func:`~lfr_eval.metrics._clustered.top_people`, the path before it: the same people but
    for ties, where it may keep an extra copy of a tied (errors, searches) pair, and about
    two thirds of the group frame's time at 1M people).

    ``people_sums``, when given, is fed every block of whole-number counts this pass expands
    (:class:`~lfr_eval.metrics._people_sums.PeopleSumsBuilder`), so the group test's sums come
    from the same pass: expanding the blocks is most of its cost (the group frame at 1M people).
    """
    m = counts.thresholds.shape[0]
    rows = max(1, SUMMARY_CHUNK_CELLS // max(1, m))
    keep = counts.trials > 0
    s = int(keep.sum())
    if s <= rows:
        errors, trials = next(counts.dense_chunks(max(1, counts.n_subjects)), (None, None))
        if errors is None or trials is None:
            return summarise_clusters(np.zeros((0, m)), np.zeros(0))
        if people_sums is not None:
            people_sums.add(errors, trials)
        small = summarise_clusters(errors, trials)
        if _whole_number_histogram(counts) and not block_top_people:
            # the same top people as the blocks below give
            top_e, top_n = histogram_top_people(counts)
            small = dataclasses.replace(small, top_errors=top_e, top_trials=top_n)
        return small
    n_all = counts.trials[keep].astype(np.float64)
    total = float(n_all.sum())
    rate = counts.error_totals().astype(np.float64) / total
    u2_sum = np.zeros(m)
    u4_sum = np.zeros(m)
    histogram = _whole_number_histogram(counts) and not block_top_people
    tops = [top_people(np.zeros((0, m)), np.zeros(0))]
    lowest = np.ones(m)  # the scaled envelope's floor (ClusterSummary.lowest_rate)
    for errors, trials in counts.dense_chunks(summary_block_rows(m)):
        if people_sums is not None:
            people_sums.add(errors, trials)
        use = trials > 0
        every = bool(use.all())
        mine = errors if every else errors[use]
        # each person's rate first, in the buffer the residuals reuse (no extra block)
        resid = np.divide(mine, (trials if every else trials[use])[:, None], dtype=np.float64)
        if len(resid):
            np.minimum(lowest, resid.min(axis=0), out=lowest)
        # in place, the same operations in the same order as
        # u2 = (errors - rate * trials) ** 2; u2_sum += u2.sum(0); u4_sum += (u2 * u2).sum(0)
        np.multiply(rate[None, :], (trials if every else trials[use])[:, None], out=resid)
        np.subtract(mine, resid, out=resid)
        np.multiply(resid, resid, out=resid)
        u2_sum += resid.sum(axis=0)
        np.multiply(resid, resid, out=resid)
        u4_sum += resid.sum(axis=0)
        del resid, mine  # the block's top people below need the room
        if not histogram:
            # the top people of the whole are among each block's top people
            tops = [merge_top_people([*tops, top_people(errors[use], trials[use])])]
    if histogram and _whole_number_histogram(counts):
        # from the histogram's runs of equal errors, O(searches): the per-block argpartition
        # was two thirds of the group frame's time at 1M people (bench_group_frame.py)
        tops = [histogram_top_people(counts)]
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = s / (s - 1) * u2_sum / total**2
        df = u2_sum**2 / u4_sum - 1.0
    df = np.clip(np.where(np.isfinite(df), df, s - 1.0), 1.0, max(s - 1.0, 1.0))
    return ClusterSummary(
        errors=counts.error_totals().astype(np.float64),
        trials=total,
        n_subjects=s,
        variance=np.where(np.isfinite(variance), variance, 0.0),
        df=df,
        effective_people=total**2 / float((n_all**2).sum()),
        top_errors=tops[0][0],
        top_trials=tops[0][1],
        trials_fourth_moment=float((n_all**4).sum()),
        lowest_rate=lowest,
        largest_trials=float(n_all.max()) if n_all.size else 0.0,
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
    replacement. Drawing the rows in several calls gives the same rows as one call (numpy
    draws the integers in order), which is what :func:`iter_bootstrap_weights` relies on.
    """
    draws = rng.integers(0, n_subjects, size=(n_boot, n_subjects))
    flat = draws + (np.arange(n_boot) * n_subjects)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n_subjects).reshape(n_boot, n_subjects)


def iter_bootstrap_weights(
    n_subjects: int,
    n_boot: int,
    rng: np.random.Generator,
    *,
    chunk_bytes: int = BOOTSTRAP_CHUNK_BYTES,
) -> Iterator[np.ndarray]:
    """:func:`bootstrap_weights` a block of replicates at a time (the same rows, in order).

    Each block holds at most about ``chunk_bytes`` of draws (int64), at least one replicate.
    """
    rows = max(1, int(chunk_bytes) // (8 * max(1, n_subjects)))
    for start in range(0, n_boot, rows):
        yield bootstrap_weights(n_subjects, min(rows, n_boot - start), rng)


def bootstrap_replicates(
    counts: SubjectTable, n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Errors (n_boot, m) and searches (n_boot,) of subject-bootstrap replicates, as float64.

    The draws come from ``rng`` in the order of :func:`bootstrap_weights` (one call for all
    replicates), in chunks of :data:`BOOTSTRAP_CHUNK_BYTES`.
    """
    m = counts.thresholds.shape[0]
    errors = np.empty((n_boot, m))
    trials = np.empty(n_boot)
    start = 0
    for weights in iter_bootstrap_weights(counts.n_subjects, n_boot, rng):
        stop = start + weights.shape[0]
        errors[start:stop] = counts.replicate_errors(weights)
        trials[start:stop] = weights.astype(np.float64) @ counts.trials.astype(np.float64)
        start = stop
    return errors, trials


def bootstrap_rates(
    counts: SubjectTable, n_boot: int = 1000, *, seed: int | np.random.Generator | None = 0
) -> np.ndarray:
    """Replicate rates of the subject bootstrap, shape (n_boot, m).

    Subjects are resampled with replacement; each replicate's rate is its total errors over its
    total searches. NaN where a replicate has no searches (only possible with no subjects).
    ``counts`` may be dense (:class:`SubjectCounts`) or sparse (:class:`SubjectHistogram`):
    the same seed gives the same replicates.
    """
    if n_boot < 1:
        raise MetricInputError(f"n_boot must be a positive number of replicates, got {n_boot}")
    rng = np.random.default_rng(seed)
    m = counts.thresholds.shape[0]
    if counts.n_subjects == 0:
        return np.full((n_boot, m), np.nan)
    errors, trials = bootstrap_replicates(counts, n_boot, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates: np.ndarray = errors / trials[:, None]
    return rates


def _linear_quantile(ordered: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` of each column of a column-sorted array (numpy's default 'linear')."""
    pos = q * (ordered.shape[0] - 1)
    below = int(np.floor(pos))
    above = min(below + 1, ordered.shape[0] - 1)
    frac = pos - below
    out: np.ndarray = ordered[below] * (1 - frac) + ordered[above] * frac
    return out


def subject_bootstrap_interval(
    counts: SubjectTable,
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
        summary = summarise_subjects(counts)
        clustered = korn_graubard_from_summary(summary, confidence, sided=sided)
        low = np.where(degenerate, clustered.ci_low, low)
        high = np.where(degenerate, clustered.ci_high, high)
    return low, high


def bootstrap_degenerate(counts: SubjectTable) -> np.ndarray:
    """Thresholds where every subject-bootstrap replicate has the same rate, shape (m,).

    That happens when every subject has the same error rate ``e_i / n_i`` — no errors at all
    (every replicate 0), errors in every search (every replicate 1), a single subject, or e.g.
    30 people with one error in two searches each (every replicate 0.5): a percentile interval
    there has zero width and says nothing about the sampling uncertainty.
    """
    m = counts.thresholds.shape[0]
    if counts.n_subjects < 2 or int((counts.trials > 0).sum()) < 2:
        return np.ones(m, bool)
    # The first block of subjects with searches gives the candidate common rate r0 (and rules
    # out most thresholds); the rest never needs the (subjects x thresholds) matrix: r0 = 0 for
    # everyone means no errors at all, r0 = 1 errors in every search (both read off the
    # totals), and any other candidate is checked one threshold at a time.
    rows = max(1, SUMMARY_CHUNK_CELLS // max(1, m))
    first_errors, first_trials = next(
        (e[t > 0], t[t > 0]) for e, t in counts.dense_chunks(rows) if (t > 0).any()
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = first_errors / first_trials[:, None]
    first = rates[0]
    same = np.all(np.isclose(rates, first[None, :], rtol=0.0, atol=1e-12), axis=0)
    if first_trials.shape[0] == int((counts.trials > 0).sum()):
        return np.asarray(same, dtype=bool)
    totals = counts.error_totals()
    searched = int(counts.trials[counts.trials > 0].sum())
    same &= np.where(first == 0, totals == 0, True) & np.where(first == 1, totals == searched, True)
    use = counts.trials > 0
    for t in np.flatnonzero(same & (first > 0) & (first < 1)):
        with np.errstate(invalid="ignore", divide="ignore"):
            all_rates = counts.errors_at(int(t))[use] / counts.trials[use]
        same[t] = bool(np.all(np.isclose(all_rates, first[t], rtol=0.0, atol=1e-12)))
    return np.asarray(same, dtype=bool)
