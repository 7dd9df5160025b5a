"""Verification (1:1) rates: FMR, FNMR, DET curve and equal error rate.

Genuine scores compare two images of the same person, impostor scores two different people.
Scores are similarities in [-1, 1]; a comparison is accepted as a match when its score is **at or
above** the threshold, the same convention as :func:`sklearn.metrics.det_curve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from lfr_eval.metrics._identification import count_at_or_above
from lfr_eval.metrics._intervals import IntervalMethod, RateCurve, Sided, rate_curve
from lfr_eval.metrics._validation import MetricInputError, as_scores, as_thresholds

if TYPE_CHECKING:
    import plotly.graph_objects as go


def fmr(impostor_scores: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """False match rate: impostor comparisons scoring >= T / impostor comparisons.

    Returns an array of the shape of ``thresholds`` in [0, 1] (NaN with no impostor scores).

    Examples
    --------
    >>> fmr([0.1, 0.2, 0.3, 0.4], [0.25, 0.4]).tolist()
    [0.5, 0.25]
    """
    imp = as_scores(impostor_scores, "impostor_scores")
    thr = as_thresholds(thresholds)
    if imp.size == 0:
        return np.full(thr.shape, np.nan)
    return count_at_or_above(imp, thr) / imp.size


def fnmr(genuine_scores: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """False non-match rate: genuine comparisons scoring < T / genuine comparisons.

    Examples
    --------
    >>> fnmr([0.5, 0.6, 0.7, 0.8], [0.6, 0.75]).tolist()
    [0.25, 0.75]
    """
    gen = as_scores(genuine_scores, "genuine_scores")
    thr = as_thresholds(thresholds)
    if gen.size == 0:
        return np.full(thr.shape, np.nan)
    return (gen.size - count_at_or_above(gen, thr)) / gen.size


def _scores_and_threshold_vector(
    scores: ArrayLike, name: str, thresholds: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Checked scores, and the checked thresholds as a flat vector (a scalar gives one)."""
    return as_scores(scores, name), np.atleast_1d(as_thresholds(thresholds)).ravel()


def fmr_estimate(
    impostor_scores: ArrayLike,
    thresholds: ArrayLike,
    confidence: float = 0.95,
    *,
    method: IntervalMethod = "clopper-pearson",
    sided: Sided = "two-sided",
) -> RateCurve:
    """FMR at each threshold with counts and binomial intervals."""
    imp, thr = _scores_and_threshold_vector(impostor_scores, "impostor_scores", thresholds)
    errors = count_at_or_above(imp, thr)
    return rate_curve("fmr", thr, errors, imp.size, confidence, method=method, sided=sided)


def fnmr_estimate(
    genuine_scores: ArrayLike,
    thresholds: ArrayLike,
    confidence: float = 0.95,
    *,
    method: IntervalMethod = "clopper-pearson",
    sided: Sided = "two-sided",
) -> RateCurve:
    """FNMR at each threshold with counts and binomial intervals."""
    gen, thr = _scores_and_threshold_vector(genuine_scores, "genuine_scores", thresholds)
    errors = gen.size - count_at_or_above(gen, thr)
    return rate_curve("fnmr", thr, errors, gen.size, confidence, method=method, sided=sided)


@dataclass(frozen=True)
class DetCurve:
    """FNMR against FMR as the threshold moves (plot both on probit or log axes).

    Attributes
    ----------
    thresholds : ndarray of shape (m,)
        Ascending similarities.
    fmr : ndarray of shape (m,)
        Non-increasing along ``thresholds``.
    fnmr : ndarray of shape (m,)
        Non-decreasing along ``thresholds``.
    """

    thresholds: np.ndarray
    fmr: np.ndarray
    fnmr: np.ndarray

    def plot(self) -> go.Figure:
        """FNMR against FMR, log–log (:class:`lfr_eval.report.DetCurveDisplay`)."""
        from lfr_eval.report import DetCurveDisplay  # plotly loads only to draw

        return DetCurveDisplay(self).plot()


def _check_both(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    gen = as_scores(genuine, "genuine_scores", allow_empty=False)
    imp = as_scores(impostor, "impostor_scores", allow_empty=False)
    return gen, imp


def det_curve(
    genuine_scores: ArrayLike,
    impostor_scores: ArrayLike,
    thresholds: ArrayLike | None = None,
) -> DetCurve:
    """FMR and FNMR at each threshold; by default at every distinct observed score.

    At the observed scores this matches :func:`sklearn.metrics.det_curve` with genuine as the
    positive class (``fpr`` = FMR, ``fnr`` = FNMR) at the thresholds sklearn keeps.
    """
    gen, imp = _check_both(genuine_scores, impostor_scores)
    if thresholds is None:
        thr = np.unique(np.concatenate([gen, imp]).astype(np.float64))
    else:
        thr = np.sort(np.atleast_1d(as_thresholds(thresholds)).ravel())
    return DetCurve(thresholds=thr, fmr=fmr(imp, thr), fnmr=fnmr(gen, thr))


@dataclass(frozen=True)
class EqualErrorRate:
    """The operating point where FMR and FNMR (or FPIR and FNIR) are closest.

    Attributes
    ----------
    threshold : float
        The observed score (similarity) at which ``|FMR - FNMR|`` is smallest; among ties, the
        one with the smaller ``max(FMR, FNMR)``.
    fmr, fnmr : float
        The two rates at that threshold (for identification: FPIR and FNIR).
    eer : float
        ``(fmr + fnmr) / 2`` at that threshold; with continuous scores and many comparisons
        the two rates are nearly equal there.
    """

    threshold: float
    fmr: float
    fnmr: float
    eer: float


def eer(genuine_scores: ArrayLike, impostor_scores: ArrayLike) -> EqualErrorRate:
    """Equal error rate from genuine and impostor scores, evaluated at observed scores.

    Examples
    --------
    >>> e = eer([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.65])
    >>> (e.threshold, e.fmr, e.fnmr, e.eer)
    (0.65, 0.25, 0.25, 0.25)
    """
    gen, imp = _check_both(genuine_scores, impostor_scores)
    return _eer_from_scores(gen, imp)


def _eer_from_scores(gen: np.ndarray, imp: np.ndarray) -> EqualErrorRate:
    """EER where genuine scores may contain ``-inf`` (an identification miss at every T) and
    impostor scores ``-inf`` (a non-mated search that failed to acquire: never an alert)."""
    finite = np.concatenate([gen[np.isfinite(gen)], imp[np.isfinite(imp)]]).astype(np.float64)
    if finite.size == 0:
        raise MetricInputError("no finite scores to place an equal-error threshold on")
    # One candidate above every score gives FMR = 0 and FNMR = 1 (reject all).
    thr = np.append(np.unique(finite), np.nextafter(finite.max(), np.inf))
    fm = count_at_or_above(imp, thr) / imp.size
    fn = (gen.size - count_at_or_above(gen, thr)) / gen.size
    gap = np.abs(fm - fn)
    worst = np.maximum(fm, fn)
    best = np.lexsort((worst, gap))[0]
    return EqualErrorRate(
        threshold=float(thr[best]),
        fmr=float(fm[best]),
        fnmr=float(fn[best]),
        eer=float((fm[best] + fn[best]) / 2),
    )


def eer_threshold(genuine_scores: ArrayLike, impostor_scores: ArrayLike) -> float:
    """The similarity threshold of :func:`eer` (bob.measure's rule of the same name)."""
    return eer(genuine_scores, impostor_scores).threshold


def roc_points(
    genuine_scores: ArrayLike, impostor_scores: ArrayLike, thresholds: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """(FMR, 1 - FNMR) at each threshold: the ROC, comparable to sklearn's ``roc_curve``."""
    gen, imp = _check_both(genuine_scores, impostor_scores)
    thr = as_thresholds(thresholds)
    return fmr(imp, thr), 1.0 - fnmr(gen, thr)
