"""The one function behind every scaled FPIR the workbench shows: :func:`scaled_fpir`.

The report's scaling table (``scaling.csv``), the threshold explorer, the claim checker and the
deployment config's evidence all read FPIR at a deployed watchlist size N through
:func:`scaled_fpir`, from the filler counts of a run or from the scaling table stored with the
results (which :func:`~lfr_eval.protocols.scale_fpir` made from those counts), so they show the
same number for the same result.

Counts exist only on the scoring grid of thresholds (:attr:`FillerCounts.thresholds`, 0.005
steps by default). A threshold between two grid values is read at the grid threshold **at or
below** it: a lower threshold can only give more false alerts, so the figure is conservative
for FPIR (never below the true value at T); :attr:`ScaledFpir.grid_threshold` says which was
used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lfr_eval.errors import ProtocolError
from lfr_eval.protocols._npl import FillerCounts, scale_fpir
from lfr_eval.protocols._scaling import ANALYTIC, POOLED

#: How a threshold off the counts' grid is read.
OFF_GRID_RULE = (
    "read at the counts' grid threshold at or below it (conservative: FPIR can only be lower "
    "at the exact threshold)"
)
#: Grid values within this of a threshold count as that threshold.
GRID_TOLERANCE = 1e-6

MSG_BELOW_GRID = (
    "threshold {threshold:g} is below the lowest threshold the filler counts were made at "
    "({lowest:g}); no scaled FPIR can be read there"
)
MSG_CONFIDENCE = (
    "the scaling table holds {table:.0%} intervals; a {asked:.0%} figure needs the filler "
    "counts (lfr_eval.protocols.scaled_fpir(run.filler_counts, ...)) or a table made at "
    "{asked:.0%}"
)


#: What a stored interval label's one-sided part starts with (:data:`SCALED_KORN_GRAUBARD`).
_ONE_SIDED_PART = "one-sided bound: "


def one_sided_method(interval: str) -> str:
    """The method of a scaled FPIR's one-sided upper bound, from its interval label.

    It is the scaling's own bound (:func:`~lfr_eval.protocols._scaling.interval_from_summary`),
    not the claim checker's envelope of the plain rates: the label's one-sided part where it
    has one, the zero-false-match bound counted by people, or beyond the fillers the higher of
    the per-person and the pooled model's bounds; an older label is named as it stands.
    """
    from lfr_eval.protocols._scaling import SCALED_KORN_GRAUBARD, SCALED_RANGE, SCALED_ZERO

    if interval == SCALED_ZERO:
        return SCALED_ZERO
    base = SCALED_KORN_GRAUBARD if interval == SCALED_RANGE else interval
    if _ONE_SIDED_PART in base:
        part = base.split(_ONE_SIDED_PART, 1)[1]
        part = part[:-1] if part.endswith(")") else part  # the label's own closing bracket
        own = f"the scaling's own, clustered by person: {part}"
        if interval == SCALED_RANGE:
            return f"{own}; the higher of the per-person and the pooled model's bounds"
        return own
    return f"the scaling's own ({interval})"


def one_sided_bound_text(upper_bound: float, confidence: float, interval: str) -> str:
    """A scaled FPIR's one-sided upper bound in words, with its method: the one text that
    :meth:`ScaledFpir.describe` and the config evidence
    (:meth:`lfr_eval.deployment.ScaledFpirEvidence.describe`) print.

    ``"one-sided 95% upper bound 1 in 420 (0.00238; the scaling's own, ...)"``; a bound at or
    above one half is given as a number said to bound nothing (:mod:`lfr_eval.plain`'s rule:
    no "1 in 1"), and NaN means the table recorded none.
    """
    from lfr_eval.operational import one_in_n
    from lfr_eval.plain import UNBOUNDED_SHARE

    conf = "" if math.isnan(confidence) else f"{confidence:.0%} "
    if math.isnan(upper_bound):
        return f"no one-sided {conf}upper bound recorded (a scaling table made before it was)"
    method = one_sided_method(interval)
    if upper_bound >= UNBOUNDED_SHARE:
        # no "1 in 1": the value only, said to bound nothing
        return (
            f"one-sided {conf}upper bound {upper_bound:.3g} (no useful bound: near or above "
            f"one half; {method})"
        )
    return f"one-sided {conf}upper bound {one_in_n(upper_bound)} ({upper_bound:.3g}; {method})"


@dataclass(frozen=True)
class ScaledFpir:
    """FPIR at a deployed watchlist size N and threshold T, scaled from the filler gallery.

    Attributes
    ----------
    watchlist_size : int
        N, the deployed watchlist size.
    threshold : float
        The threshold asked for (cosine similarity in [-1, 1]).
    grid_threshold : float
        The grid threshold the counts were read at (``<= threshold``; see module notes).
    fpir : float
        Point estimate in [0, 1]: hypergeometric (unbiased) for N <= F, the per-person model
        beyond.
    lower, upper : float
        Two-sided interval at ``confidence``; beyond F it runs from the per-person model's
        lower end to the pooled model's upper end.
    upper_bound : float
        One-sided upper confidence bound at ``confidence`` (NaN in tables made before it was
        recorded).
    confidence : float
        NaN when the table does not record it.
    estimator : str
        How ``fpir`` was made (e.g. ``"hypergeometric (exact for N <= F)"``).
    interval : str
        The interval method (e.g. ``"korn-graubard (per-search P(alert), clustered by
        person)"``).
    extrapolation : float
        N / F beyond the fillers measured, 0 within them.
    pooled_fpir : float or None
        Beyond F, the pooled model's FPIR (the high end of the range).
    n_searches, n_subjects : int
        Non-mated searches and people behind the figure (0 people: not recorded).
    group_attribute, group : str
        ``"all"`` for everyone.
    """

    watchlist_size: int
    threshold: float
    grid_threshold: float
    fpir: float
    lower: float
    upper: float
    upper_bound: float
    confidence: float
    estimator: str
    interval: str
    extrapolation: float
    pooled_fpir: float | None
    n_searches: int
    n_subjects: int
    group_attribute: str = "all"
    group: str = "all"

    @property
    def extrapolated(self) -> bool:
        """N exceeds the fillers measured: the figure rests on a model, not on counts alone."""
        return self.extrapolation > 1.0

    @property
    def off_grid(self) -> bool:
        return abs(self.threshold - self.grid_threshold) > GRID_TOLERANCE

    def describe(self) -> str:
        """One line naming the estimator, the interval method and any extrapolation."""
        from lfr_eval.operational import one_in_n  # imported here: it loads scipy.stats
        conf = "" if math.isnan(self.confidence) else f"{self.confidence:.0%} "
        # "+ 0.0": a table written before the pooled map returned +0.0 holds -0.0 ("-0")
        fpir, pooled = self.fpir + 0.0, None if self.pooled_fpir is None else self.pooled_fpir + 0.0
        # no false match: "0 (none)" once, not "0 (0 (none))"
        point = one_in_n(fpir) if fpir == 0 else f"{fpir:.3g} ({one_in_n(fpir)})"
        text = (
            f"FPIR at N = {self.watchlist_size:,}, T = {self.grid_threshold:g}: "
            f"{point}, {conf}interval {self.lower:.3g}–"
            f"{self.upper:.3g} [{self.interval}]; "
            + one_sided_bound_text(self.upper_bound, self.confidence, self.interval)
            + "; estimator: "
            f"{self.estimator or 'not recorded (a scaling table made before it was)'}"
        )
        if self.extrapolated and pooled is not None:
            text += (
                f"; EXTRAPOLATION x{self.extrapolation:.3g} beyond the fillers measured: "
                f"per-person model {fpir:.3g}, pooled model {pooled:.3g}"
            )
        if self.off_grid:
            text += f"; threshold {self.threshold:g} {OFF_GRID_RULE}"
        return text


def grid_threshold_at_or_below(grid: np.ndarray, threshold: float) -> float:
    """The largest grid value ``<= threshold`` (within :data:`GRID_TOLERANCE`).

    Raises
    ------
    ProtocolError
        ``threshold`` is below the grid.
    """
    grid = np.sort(np.asarray(grid, dtype=np.float64))
    i = int(np.searchsorted(grid, threshold + GRID_TOLERANCE, side="right")) - 1
    if len(grid) == 0 or i < 0:
        lowest = float(grid[0]) if len(grid) else float("nan")
        raise ProtocolError(MSG_BELOW_GRID.format(threshold=threshold, lowest=lowest))
    return float(grid[i])


def _value(row: pd.Series, name: str, default: float = float("nan")) -> float:
    value = row.get(name, default)
    return default if value is None or pd.isna(value) else float(value)


def _from_table(
    table: pd.DataFrame,
    watchlist_size: int,
    threshold: float,
    attribute: str,
    group: str,
    confidence: float | None,
) -> ScaledFpir | None:
    t = grid_threshold_at_or_below(table["threshold"].unique(), threshold)
    at = table[
        (table["watchlist_size"] == int(watchlist_size))
        & (table["group_attribute"].astype(str) == attribute)
        & (table["group"].astype(str) == group)
        & np.isclose(table["threshold"].to_numpy(dtype=float), t, rtol=0, atol=GRID_TOLERANCE)
    ]
    main = at[at["method"] == ANALYTIC]
    if main.empty:
        return None
    row = main.iloc[0]
    recorded = _value(row, "confidence")
    if confidence is not None and not math.isnan(recorded) and abs(recorded - confidence) > 1e-9:
        raise ProtocolError(MSG_CONFIDENCE.format(table=recorded, asked=confidence))
    pooled = at[at["method"] == POOLED]
    upper = _value(row, "upper")
    pooled_fpir = None if pooled.empty else float(pooled.iloc[0]["fpir"])
    if pooled_fpir is not None and "upper_bound" not in row.index:
        # a table made before the range was stored: its upper end is the pooled point
        upper = max(upper, pooled_fpir)
    extrapolation = _value(row, "extrapolation", 0.0)
    if "extrapolation" not in row.index and pooled_fpir is not None:
        extrapolation = float("inf")  # beyond F, by how much the old table did not record
    return ScaledFpir(
        watchlist_size=int(watchlist_size),
        threshold=float(threshold),
        grid_threshold=t,
        fpir=float(row["fpir"]),
        lower=_value(row, "lower"),
        upper=upper,
        upper_bound=_value(row, "upper_bound"),
        confidence=recorded,
        estimator=str(row.get("estimator", "") or ""),
        interval=str(row["interval"]),
        extrapolation=extrapolation,
        pooled_fpir=pooled_fpir,
        n_searches=int(row["n_searches"]),
        n_subjects=int(_value(row, "n_subjects", 0.0)),
        group_attribute=attribute,
        group=group,
    )


def scaled_fpir(
    source: FillerCounts | pd.DataFrame | None,
    watchlist_size: int,
    threshold: float,
    *,
    attribute: str = "all",
    group: str = "all",
    confidence: float | None = None,
    composition_attribute: str | None = None,
    composition: Mapping[str, float] | None = None,
) -> ScaledFpir | None:
    """FPIR at watchlist size N and threshold T, from filler counts or a stored scaling table.

    Parameters
    ----------
    source : FillerCounts or DataFrame or None
        A run's filler counts (computed afresh, at any confidence) or the scaling table stored
        with the results (``EvaluationResult.scaling``, ``scaling.csv``); None gives None.
    watchlist_size : int
        N.
    threshold : float
        Cosine similarity in [-1, 1]; off the counts' grid it is read at the grid threshold at
        or below it (:data:`OFF_GRID_RULE`).
    attribute, group : str
        A search group (``"all"``: every non-mated search).
    confidence : float, optional
        Interval coverage (default 0.95 from counts; the table's own from a table, and a
        different one asked of a table raises).
    composition_attribute, composition : optional
        The deployed watchlist's make-up (filler attribute and label shares), from counts only:
        a table was made with the composition it records.

    Returns
    -------
    ScaledFpir or None
        None where a table holds no figure for that N (it has a fixed list of sizes).

    Raises
    ------
    ProtocolError
        The threshold is below the counts' grid, or a table is asked for another confidence.
    """
    if source is None:
        return None
    if isinstance(source, FillerCounts):
        t = grid_threshold_at_or_below(source.thresholds, threshold)
        conf = 0.95 if confidence is None else float(confidence)
        table = scale_fpir(
            source,
            [int(watchlist_size)],
            [t],
            attribute=composition_attribute,
            composition=composition,
            by=None if attribute == "all" else attribute,
            confidence=conf,
        ).table
        return _from_table(table, watchlist_size, threshold, attribute, group, conf)
    if not isinstance(source, pd.DataFrame) or source.empty:
        return None
    return _from_table(source, watchlist_size, threshold, attribute, group, confidence)
