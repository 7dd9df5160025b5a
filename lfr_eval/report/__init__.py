"""Evaluation reports: aggregates, plotly figures and a self-contained HTML page.

- :class:`AggregateResult` — per-group, per-threshold counts, rates and intervals, binned
  score histograms and watchlist scaling; no per-person data, so it can be shared;
- figure functions (:func:`det_figure`, :func:`rate_vs_threshold_figure`,
  :func:`group_ratio_figure`, :func:`watchlist_scaling_figure`,
  :func:`score_histogram_figure`, :func:`cmc_figure`) used by the report and the app alike;
- display objects in scikit-learn's style (:class:`RateCurveDisplay`, :class:`DetCurveDisplay`,
  :class:`GroupRatioDisplay`, :class:`CmcDisplay`, :class:`WatchlistScalingDisplay`,
  :class:`ScoreHistogramDisplay`): ``Display.from_curve(curve)`` (or ``curve.plot()``) draws
  a curve a notebook computed itself;
- :func:`build_html_report` / :func:`write_report` — the report and its CSV tables.
"""

from __future__ import annotations

from lfr_eval.report._aggregate import (
    AGGREGATE_SCHEMA_VERSION,
    ALL,
    RANK_COLUMNS,
    RATE_COLUMNS,
    AggregateResult,
    WithheldGroup,
    as_aggregate,
    cluster_summary,
    cmc_table,
    threshold_grid,
)
from lfr_eval.report._display import (
    CmcDisplay,
    DetCurveDisplay,
    GroupRatioDisplay,
    RateCurveDisplay,
    ScoreHistogramDisplay,
    WatchlistScalingDisplay,
)
from lfr_eval.report._figures import (
    cmc_figure,
    det_figure,
    empty_reason,
    group_ratio_figure,
    operating_thresholds,
    rate_vs_threshold_figure,
    score_histogram_figure,
    summary_table,
    watchlist_scaling_figure,
)
from lfr_eval.report._html import (
    PLOTLY_FILE,
    REPORT_FILE,
    build_html_report,
    headline_table,
    write_report,
)

__all__ = [
    "AGGREGATE_SCHEMA_VERSION",
    "ALL",
    "RANK_COLUMNS",
    "RATE_COLUMNS",
    "PLOTLY_FILE",
    "REPORT_FILE",
    "AggregateResult",
    "CmcDisplay",
    "DetCurveDisplay",
    "GroupRatioDisplay",
    "RateCurveDisplay",
    "ScoreHistogramDisplay",
    "WatchlistScalingDisplay",
    "WithheldGroup",
    "as_aggregate",
    "cmc_table",
    "build_html_report",
    "cluster_summary",
    "cmc_figure",
    "det_figure",
    "empty_reason",
    "group_ratio_figure",
    "operating_thresholds",
    "rate_vs_threshold_figure",
    "score_histogram_figure",
    "headline_table",
    "summary_table",
    "threshold_grid",
    "watchlist_scaling_figure",
    "write_report",
]
