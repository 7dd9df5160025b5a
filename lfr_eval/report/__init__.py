"""Evaluation reports: aggregates, plotly figures and a self-contained HTML page.

- :class:`AggregateResult` — per-group, per-threshold counts, rates and intervals, binned
  score histograms and watchlist scaling; no per-person data, so it can be shared;
- figure functions (:func:`det_figure`, :func:`rate_vs_threshold_figure`,
  :func:`group_ratio_figure`, :func:`watchlist_scaling_figure`,
  :func:`score_histogram_figure`) used by the report and the app alike;
- :func:`build_html_report` / :func:`write_report` — the report and its CSV tables.
"""

from __future__ import annotations

from lfr_eval.report._aggregate import (
    AGGREGATE_SCHEMA_VERSION,
    ALL,
    RATE_COLUMNS,
    AggregateResult,
    as_aggregate,
    cluster_summary,
    threshold_grid,
)
from lfr_eval.report._figures import (
    det_figure,
    group_ratio_figure,
    operating_thresholds,
    rate_vs_threshold_figure,
    score_histogram_figure,
    summary_table,
    watchlist_scaling_figure,
)
from lfr_eval.report._html import REPORT_FILE, build_html_report, write_report

__all__ = [
    "AGGREGATE_SCHEMA_VERSION",
    "ALL",
    "RATE_COLUMNS",
    "REPORT_FILE",
    "AggregateResult",
    "as_aggregate",
    "build_html_report",
    "cluster_summary",
    "det_figure",
    "group_ratio_figure",
    "operating_thresholds",
    "rate_vs_threshold_figure",
    "score_histogram_figure",
    "summary_table",
    "threshold_grid",
    "watchlist_scaling_figure",
    "write_report",
]
