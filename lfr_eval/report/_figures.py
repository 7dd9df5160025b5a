"""Plotly figures of computed evaluation objects (computing is done elsewhere).

Each function draws what it is given and computes nothing behind the caller's back, in the
spirit of scikit-learn's ``*Display.from_*`` classes:

- an :class:`~lfr_eval.report.AggregateResult` (what the report and the app hold);
- an :class:`~lfr_eval.metrics.IdentificationFrame` (a notebook's own per-group rates);
- a :class:`~lfr_eval.metrics.RateCurve` (one rate against the threshold) for
  :func:`rate_vs_threshold_figure`, a pair of them (FPIR, FNIR) or a verification
  :class:`~lfr_eval.metrics.DetCurve` for :func:`det_figure`;
- a :class:`~lfr_eval.protocols.WatchlistScaling` (or its table) for
  :func:`watchlist_scaling_figure`; a rank table for :func:`cmc_figure`.

A full :class:`~lfr_eval.results.EvaluationResult` is refused with a message: aggregating it
(intervals, bootstrap) is a choice the caller makes once, with
:meth:`AggregateResult.from_result`. A figure with nothing to draw has no traces and says why in
``fig.layout.meta["empty"]``; the report prints that line instead of an empty chart. Every
title names the population (group) and the watchlist size N where known; similarities on the
axes are cosine similarities in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from lfr_eval.metrics import (
    DetCurve,
    IdentificationDet,
    IdentificationFrame,
    RateCurve,
    ratio_to_lowest,
    summary_of_row,
)
from lfr_eval.protocols import WatchlistScaling
from lfr_eval.report._aggregate import ALL, RATE_COLUMNS, AggregateResult, _rates_long
from lfr_eval.results import EvaluationResult
from lfr_eval.wording import plural

ResultLike = AggregateResult | IdentificationFrame

METRIC_LABELS = {
    "fpir": "FPIR (false positive identification rate)",
    "fnir": "FNIR (false negative identification rate)",
}
PALETTE = qualitative.Plotly + qualitative.D3

#: Most interval bands drawn on one scaling chart (more hide each other).
MAX_BANDS = 3

MSG_AGGREGATE_FIRST = (
    "figures draw computed objects and do not aggregate behind your back: make the aggregate "
    "once with AggregateResult.from_result(result, ci_method=..., n_boot=...) and pass it"
)


def _colour(i: int) -> str:
    return str(PALETTE[i % len(PALETTE)])


def _rgba(colour: str, alpha: float) -> str:
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _interval_band(
    x: np.ndarray, low: np.ndarray, high: np.ndarray, colour: str, legendgroup: str
) -> go.Scatter:
    """A shaded interval band between ``low`` and ``high`` along ``x`` (no legend entry; it
    shows and hides with its curve's ``legendgroup``)."""
    return go.Scatter(
        x=np.concatenate([x, x[::-1]]),
        y=np.concatenate([high, low[::-1]]),
        mode="lines",  # plotly's default adds markers to short traces: stray dots on the edges
        fill="toself",
        fillcolor=_rgba(colour, 0.15),
        line={"width": 0},
        hoverinfo="skip",
        showlegend=False,
        legendgroup=legendgroup,
    )


@dataclass(frozen=True)
class _Rates:
    """What the rate figures read: a tidy rates table (:data:`RATE_COLUMNS`) and its context."""

    rates: pd.DataFrame
    watchlist_size: int | None
    rank: int | None
    interval: str
    frame: IdentificationFrame | None = None
    confidence: float = 0.95

    @classmethod
    def of(cls, source: object) -> _Rates:
        if isinstance(source, AggregateResult):
            return cls(
                source.rates,
                source.watchlist_size,
                source.rank,
                source.intervals.describe(),
                confidence=float(source.intervals.confidence),
            )
        if isinstance(source, IdentificationFrame):
            parts = [_rates_long(source, None)]
            features = source.sensitive_features
            if len(features) == 1:
                parts.append(_rates_long(source, features[0]))
            elif features:
                table = source.by_group.reset_index()
                table["attribute"] = " × ".join(features)
                table["group"] = table[features].astype(str).agg(", ".join, axis=1)
                parts.append(table[[c for c in RATE_COLUMNS if c in table.columns]])
            interval = f"{source.confidence:.0%} {source.ci_method} intervals"
            return cls(
                pd.concat(parts, ignore_index=True),
                source.watchlist_size,
                source.rank,
                interval,
                source,
                source.confidence,
            )
        if isinstance(source, RateCurve):
            return cls(_curve_rows(source), None, None, _curve_interval(source))
        if isinstance(source, Sequence) and all(isinstance(c, RateCurve) for c in source):
            curves = list(source)
            table = pd.concat([_curve_rows(c) for c in curves], ignore_index=True)
            return cls(table, None, None, _curve_interval(curves[0]) if curves else "")
        if isinstance(source, EvaluationResult):
            raise TypeError(MSG_AGGREGATE_FIRST)
        raise TypeError(
            "expected an AggregateResult, an IdentificationFrame or RateCurve(s), got "
            f"{type(source).__name__}"
        )

    def curve(self, metric: str, attribute: str = ALL, group: str = ALL) -> pd.DataFrame:
        r = self.rates
        part = r[(r["metric"] == metric) & (r["attribute"] == attribute) & (r["group"] == group)]
        return part.sort_values("threshold").reset_index(drop=True)

    def groups(self, attribute: str) -> list[str]:
        return sorted(self.rates[self.rates["attribute"] == attribute]["group"].unique())

    def series(self, attribute: str | None) -> list[tuple[str, str, str]]:
        """(attribute, group, legend label) of every curve to draw."""
        if attribute is None or attribute == ALL:
            return [(ALL, ALL, "all searches")]
        return [(attribute, g, f"{attribute} = {g}") for g in self.groups(attribute)]

    def where(self, attribute: str | None) -> str:
        """Title suffix naming the population and N."""
        who = " (all searches)" if attribute in (None, ALL) else f" by {attribute}"
        n = "" if self.watchlist_size is None else f", watchlist N = {self.watchlist_size:,}"
        return who + n


def _curve_rows(curve: RateCurve) -> pd.DataFrame:
    n = len(curve)
    return pd.DataFrame(
        {
            "metric": curve.metric,
            "threshold": curve.thresholds,
            "attribute": ALL,
            "group": ALL,
            "n_searches": np.full(n, curve.trials),
            "n_subjects": np.full(n, np.nan),
            "errors": curve.errors,
            "rate": curve.rate,
            "ci_low": curve.ci_low,
            "ci_high": curve.ci_high,
            "ci_method": curve.method if curve.row_methods is None else curve.row_methods,
            "small_group": False,
            "insufficient_data": curve.insufficient_data,
        }
    )


def _curve_interval(curve: RateCurve) -> str:
    return f"{curve.confidence:.0%} {curve.method} intervals"


def _aggregate(source: object) -> AggregateResult:
    """``source`` if it is an aggregate; a full result is refused (no hidden aggregation)."""
    if isinstance(source, AggregateResult):
        return source
    if isinstance(source, EvaluationResult):
        raise TypeError(MSG_AGGREGATE_FIRST)
    raise TypeError(f"expected an AggregateResult, got {type(source).__name__}")


def _counts(curve: pd.DataFrame) -> str:
    searches = int(curve["n_searches"].max())
    people = curve["n_subjects"].max()
    return plural(searches, "search") + ("" if pd.isna(people) else f", {plural(people, 'person')}")


def _layout(fig: go.Figure, title: str, x: str, y: str, *, log_x: bool, log_y: bool) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        template="plotly_white",
        height=520,
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
        margin={"l": 70, "r": 20, "t": 60, "b": 40},
        hovermode="closest",
    )
    if log_x:
        fig.update_xaxes(type="log", exponentformat="power")
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    return fig


def _empty(fig: go.Figure, title: str, why: str) -> go.Figure:
    """Mark a figure with nothing to draw: no traces, and the reason in its metadata."""
    fig.update_layout(title=f"{title}: nothing to show ({why})", meta={"empty": why})
    return fig


def empty_reason(fig: go.Figure) -> str | None:
    """Why a figure has nothing to draw (None when it has something)."""
    meta = fig.layout.meta
    if isinstance(meta, dict) and meta.get("empty"):
        return str(meta["empty"])
    return None if fig.data else "no data"


def _threshold_axis(fig: go.Figure, thresholds: np.ndarray) -> None:
    """Keep the threshold axis on the data, inside the cosine domain [-1, 1]."""
    finite = thresholds[np.isfinite(thresholds)]
    if finite.size:
        lo, hi = max(float(finite.min()), -1.0), min(float(finite.max()), 1.0)
        pad = max((hi - lo) * 0.02, 0.005)
        fig.update_xaxes(range=[max(lo - pad, -1.0), min(hi + pad, 1.0)])


def det_figure(
    source: ResultLike | DetCurve | IdentificationDet | Sequence[RateCurve],
    attribute: str | None = None,
) -> go.Figure:
    """Identification DET: FNIR against FPIR as the threshold moves, log–log, one curve per group
    (an :class:`~lfr_eval.metrics.DetCurve` gives verification FNMR against FMR; an
    :class:`~lfr_eval.metrics.IdentificationDet` or a pair of RateCurves (FPIR, FNIR) one
    identification curve).

    Groups without both mated and non-mated searches, and points where either rate is 0
    (undrawable on log axes), are left out; the legend says so.
    """
    fig = go.Figure()
    if isinstance(source, DetCurve):
        return _single_det(
            fig, "DET (verification)", ("FMR", "FNMR"), source.thresholds, source.fmr, source.fnmr
        )
    if isinstance(source, IdentificationDet):
        n = "" if source.watchlist_size is None else f", watchlist N = {source.watchlist_size:,}"
        return _single_det(
            fig, f"DET (identification, rank {source.rank}) (all searches{n})", ("FPIR", "FNIR"),
            source.thresholds, source.fpir, source.fnir,
        )  # fmt: skip
    view = _Rates.of(source)
    rank = "" if view.rank is None else f", rank {view.rank}"
    title = f"DET (identification{rank}){view.where(attribute)}"
    skipped = []
    for i, (attr, group, label) in enumerate(view.series(attribute)):
        fpir = view.curve("fpir", attr, group)
        fnir = view.curve("fnir", attr, group)
        if (
            fpir.empty
            or fnir.empty
            or fpir["n_searches"].max() == 0
            or fnir["n_searches"].max() == 0
        ):
            skipped.append(group)
            continue
        both = (
            fpir[["threshold", "rate"]]
            .rename(columns={"rate": "fpir"})
            .merge(fnir[["threshold", "rate"]].rename(columns={"rate": "fnir"}), on="threshold")
        )
        both = both[(both["fpir"] > 0) & (both["fnir"] > 0)]
        if both.empty:
            skipped.append(group)
            continue
        # two lines: a legend entry does not wrap, and half-width app columns cut it off
        name = f"{label}: {_counts(fnir)} mated;<br>{_counts(fpir)} non-mated"
        fig.add_trace(
            go.Scatter(
                x=both["fpir"],
                y=both["fnir"],
                mode="lines",
                name=name,
                line={"color": _colour(i)},
                customdata=both["threshold"],
                hovertemplate="threshold %{customdata:.4f}<br>FPIR %{x:.3g}<br>FNIR %{y:.3g}"
                "<extra>" + label + "</extra>",
            )
        )
    if not fig.data:
        return _empty(
            fig, title, "no group has mated and non-mated searches with both rates above 0"
        )
    if skipped:
        title += (
            "<br><sup>not drawn (no mated or no non-mated searches, or a rate of 0): "
            f"{', '.join(skipped)}</sup>"
        )
    return _layout(fig, title, "FPIR", "FNIR", log_x=True, log_y=True)


def _single_det(
    fig: go.Figure,
    title: str,
    names: tuple[str, str],
    thresholds: np.ndarray,
    false_positive: np.ndarray,
    false_negative: np.ndarray,
) -> go.Figure:
    """One DET curve (verification FNMR vs FMR, or identification FNIR vs FPIR), log–log;
    points where either rate is 0 cannot be drawn and are left out."""
    x_name, y_name = names
    keep = (false_positive > 0) & (false_negative > 0)
    if not keep.any():
        return _empty(fig, title, f"{x_name} or {y_name} is 0 at every threshold")
    fig.add_trace(
        go.Scatter(
            x=false_positive[keep],
            y=false_negative[keep],
            mode="lines",
            name=f"{y_name} vs {x_name}",
            customdata=thresholds[keep],
            hovertemplate=f"threshold %{{customdata:.4f}}<br>{x_name} %{{x:.3g}}<br>"
            f"{y_name} %{{y:.3g}}",
        )
    )
    return _layout(fig, title, x_name, y_name, log_x=True, log_y=True)


def rate_vs_threshold_figure(
    source: ResultLike | RateCurve | Sequence[RateCurve],
    metric: str = "fpir",
    attribute: str | None = None,
    *,
    log_y: bool | None = None,
    threshold_range: tuple[float, float] | None = None,
    show_small: bool = True,
    small_bands: bool = False,
) -> go.Figure:
    """FPIR or FNIR against the threshold, one line per group with its interval as a band.

    Parameters
    ----------
    source : AggregateResult, IdentificationFrame or RateCurve(s)
        A :class:`~lfr_eval.metrics.RateCurve` draws itself (its own ``metric``).
    metric : {"fpir", "fnir"}
    attribute : str, optional
        Group attribute (None: the whole population).
    log_y : bool, optional
        Log rate axis (default: True for FPIR, whose interesting values span decades).
    threshold_range : (low, high), optional
        Similarity range shown (default: the thresholds computed, within [-1, 1]).
    show_small : bool
        Draw groups flagged ``small_group`` (dashed) as well.
    small_bands : bool
        Draw small groups' interval bands too. By default they are left out when larger groups
        are drawn (their wide bands cover the others; the hover text still gives each
        interval) and the subtitle says so.
    """
    if isinstance(source, RateCurve):
        metric = source.metric
    view = _Rates.of(source)
    log_y = (metric == "fpir") if log_y is None else log_y
    fig = go.Figure()
    title = f"{metric.upper()} vs threshold{view.where(attribute)}"
    curves = []
    for i, (attr, group, label) in enumerate(view.series(attribute)):
        curve = view.curve(metric, attr, group)
        curve = curve[~curve["insufficient_data"].astype(bool)]
        if curve.empty:
            continue
        small = bool(curve["small_group"].astype(bool).any())
        if small and not show_small:
            continue
        curves.append((i, label, curve, small))
    any_large = any(not small for *_, small in curves)
    unbanded = []
    for i, label, curve, small in curves:
        colour = _colour(i)
        name = f"{label} ({_counts(curve)})" + (" — small" if small else "")
        x = curve["threshold"].to_numpy()
        low = curve["ci_low"].to_numpy(dtype=float)
        high = curve["ci_high"].to_numpy(dtype=float)
        if small and any_large and not small_bands:
            unbanded.append(label)
        else:
            fig.add_trace(_interval_band(x, low, high, colour, label))
        fig.add_trace(
            go.Scatter(
                x=x,
                y=curve["rate"],
                mode="lines",
                name=name,
                legendgroup=label,
                line={"color": colour, "dash": "dash" if small else "solid"},
                customdata=np.stack([curve["errors"], curve["n_searches"], low, high], axis=1),
                hovertemplate="threshold %{x:.4f}<br>"
                + metric.upper()
                + " %{y:.3g} (%{customdata[0]:,} of %{customdata[1]:,})"
                "<br>interval %{customdata[2]:.3g} – %{customdata[3]:.3g}<extra></extra>",
            )
        )
    kind = "non-mated" if metric == "fpir" else "mated"
    if not fig.data:
        return _empty(fig, title, f"no {kind} searches")  # plural: no count
    bands = f"bands: {view.interval}"
    if unbanded:
        bands += "; small groups (dashed) without bands, their intervals in the hover text"
    fig = _layout(
        fig,
        f"{title}<br><sup>{bands}</sup>",
        "similarity threshold (cosine)",
        METRIC_LABELS.get(metric, metric),
        log_x=False,
        log_y=log_y,
    )
    if threshold_range is not None:
        fig.update_xaxes(range=list(threshold_range))
    else:
        _threshold_axis(fig, view.rates["threshold"].to_numpy(dtype=float))
    return fig


def _ratio_table(
    view: _Rates,
    metric: str,
    attribute: str,
    include_small: bool,
    include_unknown: bool,
    confidence: float,
) -> tuple[pd.DataFrame, bool]:
    """Ratio of each compared group's rate to the lowest group's at each threshold, with the
    simultaneous clustered intervals of :func:`lfr_eval.metrics.ratio_to_lowest` built from the
    rows' Korn–Graubard statistics, and whether there were such statistics (aggregates made
    before they were recorded have none: ratios without intervals)."""
    columns = ["threshold", "group", "ratio", "low", "high"]
    part = view.rates[(view.rates["metric"] == metric) & (view.rates["attribute"] == attribute)]
    part = part[~part["insufficient_data"].astype(bool) & (part["n_searches"] > 0)]
    if not include_small:
        part = part[~part["small_group"].astype(bool)]
    if not include_unknown:
        part = part[part["group"] != "unknown"]
    if part.empty:
        return pd.DataFrame(columns=columns), True
    if "rate_variance" not in part.columns or not np.isfinite(part["rate_variance"]).all():
        # an aggregate made before the clustered statistics were recorded: ratios, no bands
        lowest = part.groupby("threshold")["rate"].transform("min")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(lowest > 0, part["rate"] / lowest, np.nan)
        return part.assign(ratio=ratio, low=np.nan, high=np.nan)[columns], False
    groups = sorted(part["group"].unique())
    shared = set.intersection(*(set(part[part["group"] == g]["threshold"]) for g in groups))
    thresholds = np.sort(np.fromiter(shared, float))
    summaries = {}
    for g in groups:
        rows = part[part["group"] == g].set_index("threshold").loc[thresholds]
        # the group's own statistics (searches, people, M, ...) read as the page reads them,
        # with this chart's thresholds as its columns
        first = summary_of_row(rows.iloc[0])
        if first is None:
            return pd.DataFrame(columns=columns), True
        summaries[str(g)] = replace(
            first,
            errors=rows["errors"].to_numpy(float),
            variance=rows["rate_variance"].to_numpy(float),
            df=rows["variance_df"].to_numpy(float),
            top_errors=None,
            top_trials=None,
            lowest_rate=None,
        )
    if len(summaries) < 2:
        return pd.DataFrame(columns=columns), True
    bounds = ratio_to_lowest(summaries, confidence)
    out = pd.DataFrame(
        {
            "threshold": np.tile(thresholds, len(groups)),
            "group": np.repeat(list(bounds.groups), len(thresholds)),
            "ratio": bounds.ratio.ravel(),
            "low": bounds.ratio_low.ravel(),
            "high": bounds.ratio_high.ravel(),
        }
    )
    # the lowest group's own ratio is 1 by construction: its band says nothing new
    lowest = np.tile(bounds.lowest, len(groups)) == out["group"].to_numpy()
    out.loc[lowest, ["low", "high"]] = np.nan
    return out, True


def group_ratio_figure(
    source: ResultLike,
    metric: str = "fpir",
    attribute: str | None = None,
    *,
    include_small: bool = False,
    include_unknown: bool = False,
) -> go.Figure:
    """Each group's rate divided by the lowest group's rate at each threshold (NIST's
    convention); 1 means parity. Thresholds where the lowest rate is 0 are left out.

    Intervals: from an :class:`~lfr_eval.metrics.IdentificationFrame`, its
    :meth:`~lfr_eval.metrics.IdentificationFrame.ratio` intervals; from an aggregate, the
    simultaneous intervals clustered by person of :func:`lfr_eval.metrics.ratio_to_lowest` (the
    same numbers as the demographic page's ratio columns), which cover the lowest group being
    picked after seeing the data. Aggregates without the clustered statistics draw no band and
    say so.
    """
    view = _Rates.of(source)
    attributes = [a for a in view.rates["attribute"].unique() if a != ALL]
    attribute = attribute or (attributes[0] if attributes else None)
    fig = go.Figure()
    title = f"{metric.upper()} ratio to the lowest group"
    if attribute is None:
        return _empty(fig, title, "no group attribute to compare")
    title += view.where(attribute)
    confidence = view.confidence
    if view.frame is not None and view.frame.sensitive_features == [attribute]:
        table = view.frame.ratio(
            metric,  # type: ignore[arg-type]
            include_small=include_small,
            include_unknown=include_unknown,
        ).reset_index()
        table = table.rename(
            columns={attribute: "group", "ratio_ci_low": "low", "ratio_ci_high": "high"}
        )
        if not include_unknown:
            table = table[table["group"] != "unknown"]
        method = f"{confidence:.0%} simultaneous, clustered by person"
    else:
        clustered, has_intervals = _ratio_table(
            view, metric, attribute, include_small, include_unknown, confidence
        )
        method = (
            f"{confidence:.0%} simultaneous, clustered by person"
            if has_intervals
            else "none (these rates carry no clustered statistics)"
        )
        table = clustered
    table = table[np.isfinite(table["ratio"].astype(float))]
    if table["group"].nunique() < 2:
        left_out = "small groups" + ("" if include_unknown else " and 'unknown'")
        return _empty(
            fig, title, f"fewer than two groups to compare ({left_out} are left out), or the "
            "lowest group's rate is 0 at every threshold",
        )  # fmt: skip
    for i, (group, rows) in enumerate(table.groupby("group", sort=True)):
        rows = rows.sort_values("threshold")
        x = rows["threshold"].to_numpy(dtype=float)
        low = rows["low"].to_numpy(dtype=float)
        high = rows["high"].to_numpy(dtype=float)
        ok = np.isfinite(low) & np.isfinite(high)
        if ok.any():
            fig.add_trace(_interval_band(x[ok], low[ok], high[ok], _colour(i), str(group)))
        fig.add_trace(
            go.Scatter(
                x=x,
                y=rows["ratio"],
                mode="lines",
                name=f"{attribute} = {group}",
                legendgroup=str(group),
                line={"color": _colour(i)},
                customdata=np.stack([low, high], axis=1),
                hovertemplate="threshold %{x:.4f}<br>ratio %{y:.3g}"
                "<br>interval %{customdata[0]:.3g} – %{customdata[1]:.3g}<extra></extra>",
            )
        )
    fig.add_hline(y=1.0, line={"color": "grey", "dash": "dot"})
    note = "" if include_small else "; small groups left out"
    fig = _layout(
        fig,
        f"{title}<br><sup>bands: {method}{note}</sup>",
        "similarity threshold (cosine)",
        f"{metric.upper()} / lowest group's",
        log_x=False,
        log_y=True,
    )
    _threshold_axis(fig, table["threshold"].to_numpy(dtype=float))
    return fig


def cmc_figure(result: ResultLike, attribute: str | None = None) -> go.Figure:
    """Cumulative match characteristic: identification rate against rank (mate among the r best
    candidates, whatever its score), one line per group with interval bars.

    Accepts an aggregate or the rank table itself (:func:`lfr_eval.report.cmc_table`, a
    notebook's own)."""
    if isinstance(result, pd.DataFrame):
        ranks = result
        n = None
    else:
        agg = _aggregate(result)
        ranks = agg.ranks
        n = agg.watchlist_size
    fig = go.Figure()
    if ranks is None or ranks.empty:
        return _empty(fig, "Identification rate by rank (CMC)", "no rank table in these results")
    wanted = ALL if attribute in (None, ALL) else attribute
    part = ranks[ranks["attribute"] == wanted]
    for i, (group, rows) in enumerate(part.groupby("group", sort=True)):
        rows = rows.sort_values("rank")
        searches = int(rows["n_searches"].iloc[0])
        label = "all mated searches" if wanted == ALL else f"{wanted} = {group}"
        fig.add_trace(
            go.Scatter(
                x=rows["rank"],
                y=rows["rate"],
                mode="lines+markers",
                name=f"{label} ({plural(searches, 'search')}, "
                f"{plural(int(rows['n_subjects'].iloc[0]), 'person')})",
                line={"color": _colour(i)},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["ci_high"] - rows["rate"],
                    "arrayminus": rows["rate"] - rows["ci_low"],
                },
                customdata=np.stack([rows["hits"], rows["n_searches"]], axis=1),
                hovertemplate="rank %{x}<br>rate %{y:.3f} (%{customdata[0]:,} of "
                "%{customdata[1]:,})<extra>" + label + "</extra>",
            )
        )
    where = "" if n is None else f", watchlist N = {n:,}"
    title = "Identification rate by rank (CMC)" + (f" by {attribute}" if wanted != ALL else "")
    fig = _layout(fig, title + where, "rank r", "mate among the r best candidates", log_x=False,
                  log_y=False)  # fmt: skip
    fig.update_xaxes(dtick=1, range=[0.5, float(ranks["rank"].max()) + 0.5])
    fig.update_yaxes(range=[0, 1.02])
    return fig


def watchlist_scaling_figure(
    result: AggregateResult | WatchlistScaling | pd.DataFrame,
    threshold: float,
    *,
    attribute: str | None = None,
    measured_size: int | None = None,
) -> go.Figure:
    """FPIR against watchlist size N at one threshold (log–log): the analytic scaling from each
    non-mated search's false-match rate, with its interval band, and the resampled galleries
    (mean and percentile bars) where the data allow.

    ``result`` is an aggregate, a :class:`~lfr_eval.protocols.WatchlistScaling` or its table;
    ``measured_size`` marks the evaluated N (an aggregate knows it). The N axis runs from the
    smallest to the largest size asked for, no further."""
    fig = go.Figure()
    if isinstance(result, WatchlistScaling):
        table = result.table
    elif isinstance(result, pd.DataFrame):
        table = result
    else:
        agg = _aggregate(result)
        table = agg.scaling
        measured_size = agg.watchlist_size if measured_size is None else measured_size
    title = "FPIR vs watchlist size"
    if table is None or table.empty:
        return _empty(fig, title, "no watchlist-size scaling in these results")
    grid = np.sort(table["threshold"].unique())
    nearest = float(grid[int(np.argmin(np.abs(grid - threshold)))])
    at = table[np.isclose(table["threshold"], nearest)]
    selections = [(ALL, ALL, "all searches")]
    if attribute is not None:
        groups = sorted(at[at["group_attribute"] == attribute]["group"].unique())
        selections = [(attribute, g, f"{attribute} = {g}") for g in groups]
    # more than a few overlapping bands hide each other: then the lines carry their intervals
    # in the hover text and the subtitle says so
    banded = len(selections) <= MAX_BANDS
    for i, (attr, group, label) in enumerate(selections):
        colour = _colour(i)
        rows = at[
            (at["method"] == "analytic") & (at["group_attribute"] == attr) & (at["group"] == group)
        ].sort_values("watchlist_size")
        if not rows.empty:
            x = rows["watchlist_size"].to_numpy(float)
            low = rows["lower"].to_numpy(float)
            high = rows["upper"].to_numpy(float)
            if banded and np.isfinite(low).all():
                fig.add_trace(_interval_band(x, low, high, colour, label))
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=rows["fpir"],
                    mode="lines+markers",
                    name=f"{label}, analytic",
                    legendgroup=label,
                    line={"color": colour},
                    customdata=np.stack([low, high], axis=1),
                    hovertemplate="N %{x:,}<br>FPIR %{y:.3g}"
                    "<br>interval %{customdata[0]:.3g} – %{customdata[1]:.3g}<extra></extra>",
                )
            )
        sampled = at[
            (at["method"] == "resampled") & (at["group_attribute"] == attr) & (at["group"] == group)
        ].sort_values("watchlist_size")
        if not sampled.empty:
            fig.add_trace(
                go.Scatter(
                    x=sampled["watchlist_size"],
                    y=sampled["fpir"],
                    mode="markers",
                    name=f"{label}, resampled galleries",
                    legendgroup=label,
                    marker={"color": colour, "symbol": "diamond", "size": 9},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": sampled["upper"] - sampled["fpir"],
                        "arrayminus": sampled["fpir"] - sampled["lower"],
                    },
                    hovertemplate="N %{x:,}<br>FPIR %{y:.3g}<extra>resampled</extra>",
                )
            )
    who = "all searches" if attribute is None else f"by {attribute}"
    if not fig.data:
        return _empty(fig, f"{title} at threshold {nearest:.4g} ({who})", "no rows at it")
    if measured_size is not None:
        fig.add_vline(x=measured_size, line={"color": "grey", "dash": "dot"})
        # an annotation on a log axis takes log10 of its position (the line's label would
        # otherwise land far off the chart)
        fig.add_annotation(
            x=float(np.log10(measured_size)), y=1.0, yref="paper", xanchor="left",
            yanchor="top", showarrow=False, text=f" measured N = {measured_size:,}",
            font={"color": "grey"},
        )  # fmt: skip
    note = "" if banded else f"<br><sup>{len(selections)} groups: intervals in the hover text</sup>"
    fig = _layout(
        fig,
        f"{title} at threshold {nearest:.4g} ({who}){note}",
        "watchlist size N (entries)",
        "FPIR",
        log_x=True,
        log_y=True,
    )
    sizes = at["watchlist_size"].to_numpy(dtype=float)
    sizes = sizes[np.isfinite(sizes) & (sizes > 0)]
    if measured_size:
        sizes = np.append(sizes, float(measured_size))
    if sizes.size:
        fig.update_xaxes(range=[np.log10(sizes.min()) - 0.1, np.log10(sizes.max()) + 0.1])
    return fig


def score_histogram_figure(
    result: AggregateResult | pd.DataFrame, attribute: str | None = None
) -> go.Figure:
    """Distributions of mate scores (mated searches) and best candidate scores (non-mated
    searches), as shares of each kind's searches; per group of ``attribute`` when given.

    ``result`` is an aggregate or its binned histogram table (columns ``kind``, ``attribute``,
    ``group``, ``bin_low``, ``bin_high``, ``count``; similarities in [-1, 1])."""
    hist = result if isinstance(result, pd.DataFrame) else _aggregate(result).histograms
    fig = go.Figure()
    if attribute in (None, ALL):
        selections = [(ALL, ALL, "all searches")]
    else:
        groups = sorted(hist[hist["attribute"] == attribute]["group"].unique())
        selections = [(attribute, g, f"{attribute} = {g}") for g in groups]
    for i, (attr, group, label) in enumerate(selections):
        for kind, dash, kind_label in (
            ("mated", "solid", "mate score"),
            ("non_mated", "dot", "best non-mated score"),
        ):
            part = hist[
                (hist["kind"] == kind) & (hist["attribute"] == attr) & (hist["group"] == group)
            ].sort_values("bin_low")
            total = part["count"].sum()
            if total == 0:
                continue
            centres = (part["bin_low"] + part["bin_high"]) / 2
            colour = _colour(i) if attribute else ("#1f77b4" if kind == "mated" else "#d62728")
            fig.add_trace(
                go.Scatter(
                    x=centres,
                    y=part["count"] / total,
                    mode="lines",
                    line_shape="hvh",
                    name=f"{label}: {kind_label} ({total:,})",
                    line={"color": colour, "dash": dash},
                    hovertemplate="similarity %{x:.3f}<br>share %{y:.3g}<extra></extra>",
                )
            )
    title = "Similarity distributions" + (f" by {attribute}" if attribute else " (all searches)")
    if not fig.data:
        return _empty(fig, title, "no searches with a score")
    fig = _layout(fig, title, "cosine similarity", "share of searches", log_x=False, log_y=False)
    _threshold_axis(fig, hist[hist["count"] > 0][["bin_low", "bin_high"]].to_numpy(float).ravel())
    return fig


def operating_thresholds(
    result: ResultLike, fpir_targets: tuple[float, ...] = (1e-2, 1e-3)
) -> list[float]:
    """Grid thresholds where overall FPIR first falls to each target (lowest such threshold).

    These are chosen on the evaluated data itself: descriptive operating points, not a
    held-out threshold choice.
    """
    agg = _aggregate(result)
    curve = agg.curve("fpir")
    out = []
    for target in fpir_targets:
        meets = curve[curve["rate"] <= target]
        if not meets.empty:
            out.append(float(meets["threshold"].iloc[0]))
    return sorted(set(out))


def summary_table(
    result: ResultLike, thresholds: list[float], attribute: str | None = None
) -> pd.DataFrame:
    """FPIR, FNIR and TPIR with intervals at the given thresholds: the whole population and,
    when ``attribute`` is given, its groups (:meth:`AggregateResult.summary`, one row per
    attribute, group and threshold)."""
    agg = _aggregate(result)
    return agg.summary(thresholds, [] if attribute is None else [attribute])
