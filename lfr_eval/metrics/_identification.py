"""Open-set 1:N identification rates (NIST FRTE 1:N, ISO/IEC 19795-1), over many thresholds.

Every function takes a :class:`~lfr_eval.metrics.SearchSet` (or plain score arrays) and an array
of thresholds, and returns an array of the same shape as the thresholds. Thresholds are
similarities in [-1, 1]; a candidate is returned (an alert is raised) when its score is
**at or above** the threshold. Counting is done on sorted scores with ``searchsorted``, so many
thresholds cost O((n + m) log n), not O(n * m).

Failures to acquire count as NIST FRTE counts them (see :mod:`lfr_eval.metrics._searches`): a
failed mated search (score ``-inf``, rank N + 1) is a miss at every threshold and rank, and a
failed non-mated search (a row of ``-inf``) is a search with no candidate. Use
:meth:`SearchSet.without_failures` to leave them out instead.

Definitions (domain brief, section 3):

- FPIR(N, T) = non-mated searches with at least one candidate scoring >= T / non-mated searches;
- FNIR(N, R, T) = mated searches whose mate is not returned at rank <= R with score >= T
  / mated searches; TPIR = 1 - FNIR;
- SEL(N, T) = non-mated candidates scoring >= T / non-mated searches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from lfr_eval.metrics._intervals import IntervalMethod, RateCurve, Sided, rate_curve
from lfr_eval.metrics._searches import SearchSet
from lfr_eval.metrics._validation import MetricInputError, as_scores, as_thresholds

if TYPE_CHECKING:
    import plotly.graph_objects as go


def count_at_or_above(scores: np.ndarray, thresholds: ArrayLike) -> np.ndarray:
    """How many of ``scores`` are ``>= T`` for each threshold ``T`` (shape of ``thresholds``).

    Parameters
    ----------
    scores : ndarray
        Any shape; flattened. ``-inf`` entries never count.
    thresholds : array_like
        Similarities; any shape.
    """
    flat = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    thr = np.asarray(thresholds, dtype=np.float64)
    at_or_above: np.ndarray = flat.shape[0] - np.searchsorted(flat, thr, side="left")
    return at_or_above


def _non_mated_topk(searches: SearchSet | ArrayLike) -> np.ndarray:
    if isinstance(searches, SearchSet):
        topk = np.asarray(searches.non_mated_topk)
    else:
        topk = np.asarray(searches)
        if topk.ndim == 1:
            topk = topk[:, None]
    if topk.ndim != 2:
        raise MetricInputError(
            "non-mated scores must be 1-D (best score per search) or 2-D (n_searches, k)"
        )
    if topk.dtype.kind != "f":
        topk = topk.astype(np.float64)
    if not np.all(np.isfinite(topk) | (topk == -np.inf)):
        raise MetricInputError(
            "non-mated scores contain NaN or +inf values; similarities must be finite "
            "(-inf marks a search that failed to acquire)"
        )
    return topk


def _mated_hit_scores(
    searches: SearchSet | ArrayLike, ranks: ArrayLike | None, rank: int
) -> np.ndarray:
    """Mate scores, with ``-inf`` where the mate is ranked worse than ``rank`` (never a hit)."""
    if rank < 1:
        raise MetricInputError(f"rank must be >= 1 (1 = best candidate), got {rank}")
    if isinstance(searches, SearchSet):
        scores = as_scores(searches.mate_scores, "mate_scores", allow_failed=True)
        ranks_arr = np.asarray(searches.mate_ranks)
    else:
        scores = as_scores(searches, "mate scores", allow_failed=True)
        ranks_arr = np.ones(scores.shape[0], np.int64) if ranks is None else np.asarray(ranks)
        if ranks_arr.shape != scores.shape:
            raise MetricInputError("mate ranks must have one entry per mate score")
    return np.where(ranks_arr <= rank, scores.astype(np.float64), -np.inf)


def fpir_errors(searches: SearchSet | ArrayLike, thresholds: ArrayLike) -> tuple[np.ndarray, int]:
    """False positive identification counts: (errors per threshold, non-mated searches)."""
    topk = _non_mated_topk(searches)
    thr = as_thresholds(thresholds)
    return count_at_or_above(topk[:, 0], thr), int(topk.shape[0])


def fnir_errors(
    searches: SearchSet | ArrayLike,
    thresholds: ArrayLike,
    *,
    rank: int = 1,
    ranks: ArrayLike | None = None,
) -> tuple[np.ndarray, int]:
    """False negative identification counts: (misses per threshold, mated searches)."""
    hit_scores = _mated_hit_scores(searches, ranks, rank)
    thr = as_thresholds(thresholds)
    n = int(hit_scores.shape[0])
    return n - count_at_or_above(hit_scores, thr), n


def _rate(errors: np.ndarray, trials: int) -> np.ndarray:
    if trials == 0:
        return np.full(np.shape(errors), np.nan)
    return np.asarray(errors, dtype=np.float64) / trials


def fpir(searches: SearchSet | ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """False positive identification rate FPIR(N, T) at each threshold.

    Parameters
    ----------
    searches : SearchSet or array_like
        A SearchSet (its non-mated searches are used), or the non-mated scores: 1-D best score
        per search, or 2-D top-k (column 0 is the best).
    thresholds : array_like of float
        Similarity thresholds in [-1, 1], any shape.

    Returns
    -------
    ndarray of float, shape of ``thresholds``
        Rates in [0, 1]; NaN if there are no non-mated searches.

    Examples
    --------
    >>> fpir([0.1, 0.5, 0.7, 0.9], [0.5, 0.8]).tolist()
    [0.75, 0.25]
    """
    errors, n = fpir_errors(searches, thresholds)
    return _rate(errors, n)


def fnir(
    searches: SearchSet | ArrayLike,
    thresholds: ArrayLike,
    *,
    rank: int = 1,
    ranks: ArrayLike | None = None,
) -> np.ndarray:
    """False negative identification rate FNIR(N, R, T) at each threshold.

    Parameters
    ----------
    searches : SearchSet or array_like
        A SearchSet (its mated searches are used) or the mate scores, 1-D.
    thresholds : array_like of float
        Similarity thresholds in [-1, 1], any shape.
    rank : int
        R: the mate must be at rank <= R (1 = top candidate) to count as found.
    ranks : array_like of int, optional
        1-based mate ranks when ``searches`` is an array; default all rank 1.

    Returns
    -------
    ndarray of float, shape of ``thresholds``
        Miss rates in [0, 1]; NaN if there are no mated searches.

    Examples
    --------
    >>> fnir([0.4, 0.6, 0.8], 0.6, ranks=[1, 2, 1]).item()  # 0.4 below T, 0.6 at rank 2
    0.6666666666666666
    """
    errors, n = fnir_errors(searches, thresholds, rank=rank, ranks=ranks)
    return _rate(errors, n)


def tpir(
    searches: SearchSet | ArrayLike,
    thresholds: ArrayLike,
    *,
    rank: int = 1,
    ranks: ArrayLike | None = None,
) -> np.ndarray:
    """True positive identification rate, ``1 - FNIR(N, R, T)``; same arguments as :func:`fnir`."""
    return 1.0 - fnir(searches, thresholds, rank=rank, ranks=ranks)


def selectivity(searches: SearchSet | ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """Selectivity SEL(N, T): non-mated candidates scoring >= T per non-mated search.

    Only the ``k`` candidates kept per search are seen, so SEL is exact only while every search
    has fewer than ``k`` candidates at or above T; :func:`selectivity_truncated` says where
    that fails (there the value is a lower bound). Values lie in [0, k].
    """
    topk = _non_mated_topk(searches)
    thr = as_thresholds(thresholds)
    n = topk.shape[0]
    return _rate(count_at_or_above(topk, thr), n)


def selectivity_truncated(searches: SearchSet | ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """True at thresholds where some search has all ``k`` kept candidates >= T (SEL too low)."""
    topk = _non_mated_topk(searches)
    thr = as_thresholds(thresholds)
    return count_at_or_above(topk[:, -1], thr) > 0


def rank_k_identification_rate(searches: SearchSet | ArrayLike, ranks: ArrayLike = 1) -> np.ndarray:
    """Closed-set rank-k identification rate: mated searches with mate rank <= k, no threshold.

    Parameters
    ----------
    searches : SearchSet or array_like
        A SearchSet (``mate_ranks`` is used) or the 1-based mate ranks themselves.
    ranks : array_like of int
        One or more k >= 1.

    Returns
    -------
    ndarray of float, shape of ``ranks``
        Rates in [0, 1] (the CMC curve when ``ranks = 1..K``).
    """
    mate_ranks = np.asarray(
        searches.mate_ranks if isinstance(searches, SearchSet) else searches, dtype=np.float64
    ).ravel()
    k = np.asarray(ranks)
    if np.any(k < 1):
        raise MetricInputError("ranks must be >= 1 (1 = best candidate)")
    if mate_ranks.size == 0:
        return np.full(k.shape, np.nan)
    sorted_ranks = np.sort(mate_ranks)
    return np.searchsorted(sorted_ranks, k, side="right") / mate_ranks.size


def cmc_curve(searches: SearchSet | ArrayLike, max_rank: int = 20) -> np.ndarray:
    """Cumulative match characteristic: rank-k identification rate for k = 1..max_rank."""
    return rank_k_identification_rate(searches, np.arange(1, max_rank + 1))


#: Interval of :func:`fpir_estimate` / :func:`fnir_estimate` for a SearchSet unless named: the
#: :class:`~lfr_eval.metrics.IdentificationFrame` default, clustered by person.
CLUSTERED_DEFAULT = "design-effect-jeffreys"


def _estimate(
    metric: str,
    searches: SearchSet | ArrayLike,
    thr: np.ndarray,
    errors: np.ndarray,
    n: int,
    confidence: float,
    method: IntervalMethod | None,
    sided: Sided,
    rank: int,
) -> RateCurve:
    """A search-level binomial curve when the method is named or no subject ids are known,
    else the IdentificationFrame's clustered interval (one function per figure)."""
    if method is not None or not isinstance(searches, SearchSet):
        return rate_curve(
            metric, thr, errors, n, confidence, method=method or "clopper-pearson", sided=sided
        )
    if sided != "two-sided":
        raise MetricInputError(
            "a one-sided bound clustered by person comes from lfr_eval.claims.fpir_upper_bound "
            "(or lfr_eval.metrics.korn_graubard); name method='clopper-pearson' or 'wilson' "
            "for a search-level one"
        )
    from lfr_eval.metrics._group_frame import IdentificationFrame

    frame = IdentificationFrame(searches, thr, rank=rank, confidence=confidence)
    table = frame.overall.xs(metric, level="metric")
    rows = np.searchsorted(frame.thresholds, thr)  # the frame sorts and de-duplicates them
    labels = table["ci_method"].to_numpy(dtype=object)[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = errors / n if n else np.full(errors.shape, np.nan)
    return RateCurve(
        metric=metric,
        thresholds=thr.astype(np.float64),
        errors=np.asarray(errors, dtype=np.int64),
        trials=int(n),
        rate=np.asarray(rate, dtype=np.float64),
        ci_low=table["ci_low"].to_numpy(np.float64)[rows],
        ci_high=table["ci_high"].to_numpy(np.float64)[rows],
        method=CLUSTERED_DEFAULT,
        confidence=float(confidence),
        row_methods=labels,
    )


def fpir_estimate(
    searches: SearchSet | ArrayLike,
    thresholds: ArrayLike,
    confidence: float = 0.95,
    *,
    method: IntervalMethod | None = None,
    sided: Sided = "two-sided",
) -> RateCurve:
    """FPIR at each threshold with counts and intervals.

    For a :class:`~lfr_eval.metrics.SearchSet` (subject ids known) the intervals are clustered
    by person by default: :class:`~lfr_eval.metrics.IdentificationFrame`'s
    (``"design-effect-jeffreys"``; each row's method in ``row_methods``). Search-level binomial
    intervals (``method="clopper-pearson"`` or ``"wilson"``) treat searches as independent and
    come only by name, or for bare score arrays, which carry no subject ids.
    """
    thr = np.atleast_1d(as_thresholds(thresholds)).ravel()
    errors, n = fpir_errors(searches, thr)
    return _estimate("fpir", searches, thr, errors, n, confidence, method, sided, 1)


def fnir_estimate(
    searches: SearchSet | ArrayLike,
    thresholds: ArrayLike,
    confidence: float = 0.95,
    *,
    rank: int = 1,
    ranks: ArrayLike | None = None,
    method: IntervalMethod | None = None,
    sided: Sided = "two-sided",
) -> RateCurve:
    """FNIR(N, R, T) at each threshold with counts and intervals (clustered by person for a
    SearchSet unless ``method`` names a search-level one, as :func:`fpir_estimate`).

    TPIR's estimate at threshold ``i`` is ``fnir_estimate(...)[i].complement()``.
    """
    thr = np.atleast_1d(as_thresholds(thresholds)).ravel()
    errors, n = fnir_errors(searches, thr, rank=rank, ranks=ranks)
    return _estimate("fnir", searches, thr, errors, n, confidence, method, sided, rank)


@dataclass(frozen=True)
class IdentificationDet:
    """Identification DET: FNIR against FPIR as the threshold moves.

    Attributes
    ----------
    thresholds : ndarray of shape (m,)
        Ascending similarities.
    fpir, fnir : ndarray of shape (m,)
        FPIR decreases and FNIR increases along the thresholds.
    rank : int
        R used for FNIR.
    watchlist_size : int or None
        N, when known.
    """

    thresholds: np.ndarray
    fpir: np.ndarray
    fnir: np.ndarray
    rank: int
    watchlist_size: int | None

    def plot(self) -> go.Figure:
        """FNIR against FPIR, log–log (:class:`lfr_eval.report.DetCurveDisplay`)."""
        from lfr_eval.report import DetCurveDisplay  # plotly loads only to draw

        return DetCurveDisplay(self).plot()


def identification_det_curve(
    searches: SearchSet,
    thresholds: ArrayLike | None = None,
    *,
    rank: int = 1,
) -> IdentificationDet:
    """FPIR and FNIR(R) over thresholds; by default at every distinct observed score.

    Parameters
    ----------
    searches : SearchSet
    thresholds : array_like, optional
        Similarities; default: all distinct best non-mated and mate scores, ascending.
    rank : int
        R for FNIR.
    """
    if thresholds is None:
        observed = np.concatenate([searches.non_mated_best, searches.mate_scores])
        observed = observed.astype(np.float64)
        thr = np.unique(observed[np.isfinite(observed)])  # failures (-inf) are no threshold
    else:
        thr = np.sort(np.atleast_1d(as_thresholds(thresholds)).ravel())
    return IdentificationDet(
        thresholds=thr,
        fpir=fpir(searches, thr),
        fnir=fnir(searches, thr, rank=rank),
        rank=rank,
        watchlist_size=searches.watchlist_size,
    )
