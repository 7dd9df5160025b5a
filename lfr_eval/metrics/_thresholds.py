"""Named threshold rules, chosen on a development split and reported on a held-out split.

As in bob.bio.base, a threshold is *chosen* on dev searches by a named rule and then *applied* to
eval searches; reporting the dev rates as if they were held-out results is optimistic (the
threshold was fitted to them). :func:`choose_threshold` records both in one
:class:`ThresholdChoice`.

Rules (similarities in [-1, 1], an alert when score >= T):

- ``"fpir"``: the lowest T with FPIR(T) <= target on dev (most sensitive threshold that keeps
  false positives within the target);
- ``"tpir"``: the highest T with TPIR(T) >= target on dev (fewest false positives that still
  finds the target share of mates at rank <= R);
- ``"eer"``: the observed score where FPIR and FNIR are closest on dev.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from lfr_eval.metrics._group_frame import CiMethod, IdentificationFrame
from lfr_eval.metrics._identification import _mated_hit_scores, _non_mated_topk
from lfr_eval.metrics._intervals import RateEstimate
from lfr_eval.metrics._searches import SearchSet
from lfr_eval.metrics._validation import MetricInputError, check_confidence, check_rate
from lfr_eval.metrics._verification import EqualErrorRate, _eer_from_scores

Rule = Literal["fpir", "tpir", "eer"]
RULES: tuple[str, ...] = ("fpir", "tpir", "eer")

# Targets such as 0.89 * 100 are 89.00000000000001 in floating point; counts are integers.
_COUNT_TOLERANCE = 1e-9


def threshold_at_fpir(searches: SearchSet | ArrayLike, target_fpir: float) -> float:
    """Lowest similarity threshold with FPIR <= ``target_fpir`` on these searches.

    Parameters
    ----------
    searches : SearchSet or array_like
        Non-mated searches: a SearchSet, best scores (1-D) or top-k (2-D).
    target_fpir : float
        In [0, 1].

    Returns
    -------
    float
        Just above the ``(k+1)``-th highest best non-mated score, where ``k`` is the number of
        false positives the target allows, so exactly ``k`` (or fewer, with ties) remain.

    Examples
    --------
    >>> t = threshold_at_fpir([0.1, 0.2, 0.3, 0.4], 0.25)  # one false positive allowed
    >>> 0.3 < t < 0.30001
    True
    """
    target = check_rate(target_fpir, "target_fpir")
    best = _non_mated_topk(searches)[:, 0]
    n = best.shape[0]
    if n == 0:
        raise MetricInputError("no non-mated searches to set an FPIR threshold on")
    allowed = int(np.floor(target * n + _COUNT_TOLERANCE))
    # Failed searches (-inf) return no candidate at any threshold: they count in n only.
    scored = best[np.isfinite(best)]
    if allowed >= scored.shape[0]:
        return float(scored.min()) if scored.size else -1.0
    desc = np.sort(scored)[::-1]
    # nextafter in the scores' own precision, so the threshold survives a cast back to it
    return float(np.nextafter(desc[allowed], np.asarray(np.inf, dtype=desc.dtype)))


def threshold_at_tpir(
    searches: SearchSet | ArrayLike,
    target_tpir: float,
    *,
    rank: int = 1,
    ranks: ArrayLike | None = None,
) -> float:
    """Highest similarity threshold with TPIR(R) >= ``target_tpir`` on these searches.

    Raises
    ------
    MetricInputError
        If the target cannot be reached at any threshold (too many mates ranked below R).

    Examples
    --------
    >>> threshold_at_tpir([0.5, 0.6, 0.7, 0.8], 0.75)
    0.6
    """
    target = check_rate(target_tpir, "target_tpir")
    hits = _mated_hit_scores(searches, ranks, rank)
    n = hits.shape[0]
    if n == 0:
        raise MetricInputError("no mated searches to set a TPIR threshold on")
    needed = int(np.ceil(target * n - _COUNT_TOLERANCE))
    desc = np.sort(hits)[::-1]
    if needed == 0:
        top = desc[0] if np.isfinite(desc[0]) else 1.0
        return float(np.nextafter(top, np.inf))
    if not np.isfinite(desc[needed - 1]):
        reachable = np.count_nonzero(np.isfinite(hits)) / n
        raise MetricInputError(
            f"TPIR {target:g} cannot be reached at rank {rank}: only {reachable:.3g} of mates "
            f"are ranked <= {rank}; lower the target or raise the rank"
        )
    return float(desc[needed - 1])


def identification_eer(searches: SearchSet, *, rank: int = 1) -> EqualErrorRate:
    """Operating point where FPIR and FNIR(R) are closest (``fmr``/``fnmr`` hold FPIR/FNIR)."""
    if searches.n_mated == 0 or searches.n_non_mated == 0:
        raise MetricInputError("the EER needs both mated and non-mated searches")
    hits = _mated_hit_scores(searches, None, rank)
    best = np.asarray(searches.non_mated_best, dtype=np.float64)
    return _eer_from_scores(hits, best)


@dataclass(frozen=True)
class OperatingPoint:
    """FPIR and FNIR of one set of searches at one threshold.

    Attributes
    ----------
    threshold : float
        Similarity in [-1, 1].
    fpir, fnir : RateEstimate
        With two-sided intervals clustered by person by default (each estimate's ``method``
        names how its interval was made: :class:`~lfr_eval.metrics.IdentificationFrame`'s
        ``ci_method``).
    rank : int
        R of FNIR.
    watchlist_size : int
        N of the searches.
    """

    threshold: float
    fpir: RateEstimate
    fnir: RateEstimate
    rank: int
    watchlist_size: int

    @property
    def tpir(self) -> RateEstimate:
        return self.fnir.complement()


def _overall_estimate(frame: IdentificationFrame, metric: str) -> RateEstimate:
    """The frame's overall row for ``metric`` (one threshold) as a :class:`RateEstimate`."""
    row = frame.overall.xs(metric, level="metric").iloc[0]
    return RateEstimate.from_row(row, frame.confidence)


def operating_point(
    searches: SearchSet,
    threshold: float,
    *,
    rank: int = 1,
    confidence: float = 0.95,
    ci_method: CiMethod = "design-effect-jeffreys",
    seed: int = 0,
) -> OperatingPoint:
    """FPIR and FNIR, with counts and intervals, at one threshold.

    The intervals are those of :class:`~lfr_eval.metrics.IdentificationFrame` (one function
    per figure): clustered by person by default, because a person's repeat searches are not
    independent; ``ci_method="clopper-pearson"`` or ``"wilson"`` treat searches as independent
    (by name only). ``seed`` is the subject bootstrap's.
    """
    frame = IdentificationFrame(
        searches, [threshold], rank=rank, confidence=confidence, ci_method=ci_method, seed=seed
    )
    return OperatingPoint(
        threshold=float(threshold),
        fpir=_overall_estimate(frame, "fpir"),
        fnir=_overall_estimate(frame, "fnir"),
        rank=rank,
        watchlist_size=int(searches.watchlist_size),
    )


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold chosen by a named rule on dev searches, and how it fares on eval searches.

    Attributes
    ----------
    rule : str
        ``"fpir"``, ``"tpir"`` or ``"eer"``.
    target : float or None
        The rule's target rate (None for ``"eer"``).
    threshold : float
        The chosen similarity threshold.
    dev : OperatingPoint
        Rates on the searches the threshold was chosen on (optimistic).
    eval : OperatingPoint or None
        Rates on held-out searches: the numbers to report.
    """

    rule: str
    target: float | None
    threshold: float
    dev: OperatingPoint
    eval: OperatingPoint | None

    @property
    def dev_value(self) -> float:
        """The rule's own metric on dev (FPIR for "fpir", TPIR for "tpir", FPIR for "eer")."""
        return self._value(self.dev)

    @property
    def eval_value(self) -> float | None:
        """The rule's own metric on eval, or None without eval searches."""
        return None if self.eval is None else self._value(self.eval)

    def _value(self, point: OperatingPoint) -> float:
        if self.rule == "tpir":
            return point.tpir.rate
        return point.fpir.rate


def choose_threshold(
    rule: Rule,
    dev: SearchSet,
    eval: SearchSet | None = None,
    *,
    target: float | None = None,
    rank: int = 1,
    confidence: float = 0.95,
    ci_method: CiMethod = "design-effect-jeffreys",
) -> ThresholdChoice:
    """Choose a threshold on ``dev`` by ``rule`` and report it on ``eval``.

    Parameters
    ----------
    rule : {"fpir", "tpir", "eer"}
    dev : SearchSet
        Development searches (the threshold is fitted to them).
    eval : SearchSet, optional
        Held-out searches (other subjects) to report on.
    target : float
        Target FPIR or TPIR in [0, 1]; not used by ``"eer"``.
    rank : int
        R for FNIR/TPIR.
    confidence : float
        Coverage of the reported intervals.
    ci_method : str
        How they are made (:func:`operating_point`): clustered by person by default.
    """
    check_confidence(confidence)
    if rule not in RULES:
        raise MetricInputError(f"rule must be one of {list(RULES)}, got {rule!r}")
    if rule in ("fpir", "tpir") and target is None:
        raise MetricInputError(f"the {rule!r} rule needs a target rate")
    if rule == "fpir":
        threshold = threshold_at_fpir(dev, float(target))  # type: ignore[arg-type]
    elif rule == "tpir":
        threshold = threshold_at_tpir(dev, float(target), rank=rank)  # type: ignore[arg-type]
    else:
        threshold = identification_eer(dev, rank=rank).threshold
        target = None
    options: dict[str, Any] = {"rank": rank, "confidence": confidence, "ci_method": ci_method}
    return ThresholdChoice(
        rule=rule,
        target=None if target is None else float(target),
        threshold=threshold,
        dev=operating_point(dev, threshold, **options),
        eval=None if eval is None else operating_point(eval, threshold, **options),
    )
