"""Display objects: computed curves and tables that draw themselves (scikit-learn's ``*Display``).

As in :mod:`sklearn.metrics._plot`, computing is separate from drawing. A display holds an
object that is already computed (a :class:`~lfr_eval.metrics.RateCurve`, a
:class:`~lfr_eval.metrics.DetCurve`, an :class:`~lfr_eval.metrics.IdentificationFrame`, an
:class:`~lfr_eval.report.AggregateResult`, a :class:`~lfr_eval.protocols.WatchlistScaling`, a
rank table); :meth:`plot` draws it as a plotly figure, kept in ``figure_`` and returned. The
``from_*`` constructors build the display and plot it in one call::

    curve = fpir_estimate(searches, thresholds)          # a notebook's own RateCurve
    fig = RateCurveDisplay.from_curve(curve).figure_      # or simply curve.plot()

Nothing is aggregated here (no bootstrap is run while drawing) and no warning is silenced.
A figure with nothing to draw has no traces; :attr:`empty_reason` says why in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from lfr_eval.metrics import DetCurve, IdentificationDet, IdentificationFrame, RateCurve
from lfr_eval.protocols import WatchlistScaling
from lfr_eval.report._aggregate import AggregateResult
from lfr_eval.report._figures import (
    cmc_figure,
    det_figure,
    empty_reason,
    group_ratio_figure,
    rate_vs_threshold_figure,
    score_histogram_figure,
    watchlist_scaling_figure,
)

GroupSource = AggregateResult | IdentificationFrame


@dataclass
class _Display:
    """What every display shares: the drawn figure and why it may be empty."""

    figure_: go.Figure | None = field(default=None, init=False, repr=False)

    def plot(self) -> go.Figure:  # pragma: no cover - every display overrides it
        raise NotImplementedError

    def _keep(self, fig: go.Figure) -> go.Figure:
        self.figure_ = fig
        return fig

    @property
    def empty_reason(self) -> str | None:
        """One line saying why the figure has nothing to draw (None when it has; plots first
        when :meth:`plot` has not been called)."""
        return empty_reason(self.figure_ if self.figure_ is not None else self.plot())


@dataclass
class RateCurveDisplay(_Display):
    """FPIR or FNIR (FMR, FNMR, ...) against the similarity threshold, with interval bands.

    Parameters
    ----------
    source : RateCurve, sequence of RateCurve, IdentificationFrame or AggregateResult
    metric : {"fpir", "fnir"}
        Ignored for a single RateCurve (it knows its metric).
    attribute : str, optional
        One line per group of this attribute (None: the whole population).
    """

    source: RateCurve | Sequence[RateCurve] | GroupSource
    metric: str = "fpir"
    attribute: str | None = None

    @classmethod
    def from_curve(cls, curve: RateCurve | Sequence[RateCurve], **kwargs: Any) -> RateCurveDisplay:
        """Plot a computed curve (or several of one metric, drawn together)."""
        metric = curve.metric if isinstance(curve, RateCurve) else curve[0].metric
        display = cls(curve, metric)
        display.plot(**kwargs)
        return display

    @classmethod
    def from_frame(
        cls, source: GroupSource, metric: str = "fpir", attribute: str | None = None,
        **kwargs: Any,
    ) -> RateCurveDisplay:  # fmt: skip
        """Plot per-group rates from an IdentificationFrame or an aggregate."""
        display = cls(source, metric, attribute)
        display.plot(**kwargs)
        return display

    def plot(self, **kwargs: Any) -> go.Figure:
        """Draw; keyword arguments go to :func:`~lfr_eval.report.rate_vs_threshold_figure`
        (``log_y``, ``threshold_range``, ``show_small``)."""
        return self._keep(rate_vs_threshold_figure(self.source, self.metric, self.attribute,
                                                   **kwargs))  # fmt: skip


@dataclass
class DetCurveDisplay(_Display):
    """DET: FNMR against FMR (a verification DetCurve) or FNIR against FPIR (identification),
    log–log, one line per group.

    Parameters
    ----------
    source : DetCurve, IdentificationDet, pair of RateCurve (FPIR, FNIR), IdentificationFrame
        or AggregateResult
    attribute : str, optional
    """

    source: DetCurve | IdentificationDet | Sequence[RateCurve] | GroupSource
    attribute: str | None = None

    @classmethod
    def from_curve(
        cls, curve: DetCurve | IdentificationDet | Sequence[RateCurve]
    ) -> DetCurveDisplay:
        """Plot a computed DET curve."""
        display = cls(curve)
        display.plot()
        return display

    @classmethod
    def from_frame(cls, source: GroupSource, attribute: str | None = None) -> DetCurveDisplay:
        """Plot per-group DET curves from an IdentificationFrame or an aggregate."""
        display = cls(source, attribute)
        display.plot()
        return display

    def plot(self) -> go.Figure:
        return self._keep(det_figure(self.source, self.attribute))


@dataclass
class GroupRatioDisplay(_Display):
    """Each group's rate over the lowest group's, with the intervals the metrics give."""

    source: GroupSource
    metric: str = "fpir"
    attribute: str | None = None

    @classmethod
    def from_frame(
        cls, source: GroupSource, metric: str = "fpir", attribute: str | None = None,
        **kwargs: Any,
    ) -> GroupRatioDisplay:  # fmt: skip
        display = cls(source, metric, attribute)
        display.plot(**kwargs)
        return display

    def plot(self, **kwargs: Any) -> go.Figure:
        """Draw; keyword arguments go to :func:`~lfr_eval.report.group_ratio_figure`
        (``include_small``, ``include_unknown``)."""
        return self._keep(group_ratio_figure(self.source, self.metric, self.attribute, **kwargs))


@dataclass
class CmcDisplay(_Display):
    """Identification rate against rank (CMC), from a rank table
    (:func:`~lfr_eval.report.cmc_table`) or an aggregate."""

    source: pd.DataFrame | AggregateResult
    attribute: str | None = None

    @classmethod
    def from_table(
        cls, table: pd.DataFrame | AggregateResult, attribute: str | None = None
    ) -> CmcDisplay:
        display = cls(table, attribute)
        display.plot()
        return display

    def plot(self) -> go.Figure:
        return self._keep(cmc_figure(self.source, self.attribute))


@dataclass
class WatchlistScalingDisplay(_Display):
    """FPIR against watchlist size N at one threshold, from a
    :class:`~lfr_eval.protocols.WatchlistScaling`, its table or an aggregate."""

    source: WatchlistScaling | pd.DataFrame | AggregateResult
    threshold: float
    attribute: str | None = None
    measured_size: int | None = None

    @classmethod
    def from_scaling(
        cls,
        scaling: WatchlistScaling | pd.DataFrame | AggregateResult,
        threshold: float,
        *,
        attribute: str | None = None,
        measured_size: int | None = None,
    ) -> WatchlistScalingDisplay:
        display = cls(scaling, threshold, attribute, measured_size)
        display.plot()
        return display

    def plot(self) -> go.Figure:
        return self._keep(
            watchlist_scaling_figure(
                self.source, self.threshold, attribute=self.attribute,
                measured_size=self.measured_size,
            )
        )  # fmt: skip


@dataclass
class ScoreHistogramDisplay(_Display):
    """Mate and best non-mated score distributions, from a binned histogram table (the
    aggregate's ``histograms``) or an aggregate."""

    source: pd.DataFrame | AggregateResult
    attribute: str | None = None

    @classmethod
    def from_table(
        cls, table: pd.DataFrame | AggregateResult, attribute: str | None = None
    ) -> ScoreHistogramDisplay:
        display = cls(table, attribute)
        display.plot()
        return display

    def plot(self) -> go.Figure:
        return self._keep(score_histogram_figure(self.source, self.attribute))
