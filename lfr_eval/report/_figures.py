"""Plotly figures of an evaluation, drawn from aggregates (computing is done elsewhere).

Every function takes an :class:`~lfr_eval.report.AggregateResult` (or an
:class:`~lfr_eval.results.EvaluationResult`, aggregated on the fly with default settings) and
returns a ``plotly.graph_objects.Figure``; the HTML report and the Streamlit pages draw the
same figures. Similarities on the axes are cosine similarities in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from lfr_eval.report._aggregate import ALL, AggregateResult, as_aggregate
from lfr_eval.results import EvaluationResult

ResultLike = EvaluationResult | AggregateResult

METRIC_LABELS = {
    "fpir": "FPIR (false positive identification rate)",
    "fnir": "FNIR (false negative identification rate)",
}
PALETTE = qualitative.Plotly + qualitative.D3


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


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
        fill="toself",
        fillcolor=_rgba(colour, 0.15),
        line={"width": 0},
        hoverinfo="skip",
        showlegend=False,
        legendgroup=legendgroup,
    )


def _series(agg: AggregateResult, attribute: str | None) -> list[tuple[str, str, str]]:
    """(attribute, group, legend label) of every curve to draw."""
    if attribute is None or attribute == ALL:
        return [(ALL, ALL, "all searches")]
    return [(attribute, g, f"{attribute} = {g}") for g in agg.groups(attribute)]


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


def det_figure(result: ResultLike, attribute: str | None = None) -> go.Figure:
    """Identification DET: FNIR against FPIR as the threshold moves, log–log, one curve per group.

    Points where either rate is 0 cannot be drawn on log axes and are left out.
    """
    agg = as_aggregate(result)
    fig = go.Figure()
    for i, (attr, group, label) in enumerate(_series(agg, attribute)):
        fpir = agg.curve("fpir", attr, group)[["threshold", "rate"]].rename(
            columns={"rate": "fpir"}
        )
        fnir = agg.curve("fnir", attr, group)[["threshold", "rate"]].rename(
            columns={"rate": "fnir"}
        )
        both = fpir.merge(fnir, on="threshold")
        both = both[(both["fpir"] > 0) & (both["fnir"] > 0)]
        fig.add_trace(
            go.Scatter(
                x=both["fpir"],
                y=both["fnir"],
                mode="lines",
                name=label,
                line={"color": _colour(i)},
                customdata=both["threshold"],
                hovertemplate="threshold %{customdata:.4f}<br>FPIR %{x:.3g}<br>FNIR %{y:.3g}"
                "<extra>" + label + "</extra>",
            )
        )
    n = agg.watchlist_size
    return _layout(
        fig,
        f"DET (identification, watchlist N = {n:,}, rank {agg.rank})",
        "FPIR",
        "FNIR",
        log_x=True,
        log_y=True,
    )


def rate_vs_threshold_figure(
    result: ResultLike,
    metric: str = "fpir",
    attribute: str | None = None,
    *,
    log_y: bool | None = None,
    threshold_range: tuple[float, float] | None = None,
    show_small: bool = True,
) -> go.Figure:
    """FPIR or FNIR against the threshold, one line per group with its interval as a band.

    Parameters
    ----------
    metric : {"fpir", "fnir"}
    attribute : str, optional
        Group attribute (None: the whole population).
    log_y : bool, optional
        Log rate axis (default: True for FPIR, whose interesting values span decades).
    threshold_range : (low, high), optional
        Similarity range shown.
    show_small : bool
        Draw groups flagged ``small_group`` (dashed) as well.
    """
    agg = as_aggregate(result)
    log_y = (metric == "fpir") if log_y is None else log_y
    fig = go.Figure()
    for i, (attr, group, label) in enumerate(_series(agg, attribute)):
        curve = agg.curve(metric, attr, group)
        curve = curve[~curve["insufficient_data"].astype(bool)]
        if curve.empty:
            continue
        small = bool(curve["small_group"].astype(bool).any())
        if small and not show_small:
            continue
        colour = _colour(i)
        n_subj = int(curve["n_subjects"].max())
        n_search = int(curve["n_searches"].max())
        name = f"{label} ({n_search:,} searches, {n_subj:,} subjects)" + (
            " — small" if small else ""
        )
        x = curve["threshold"].to_numpy()
        low = curve["ci_low"].to_numpy(dtype=float)
        high = curve["ci_high"].to_numpy(dtype=float)
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
    title = f"{metric.upper()} vs threshold" + (f" by {attribute}" if attribute else "")
    fig = _layout(
        fig,
        f"{title} (bands: {agg.intervals.describe()})",
        "similarity threshold (cosine)",
        METRIC_LABELS.get(metric, metric),
        log_x=False,
        log_y=log_y,
    )
    if threshold_range is not None:
        fig.update_xaxes(range=list(threshold_range))
    return fig


def group_ratio_figure(
    result: ResultLike,
    metric: str = "fpir",
    attribute: str | None = None,
    *,
    include_small: bool = False,
    include_unknown: bool = False,
) -> go.Figure:
    """Each group's rate divided by the lowest group's rate at each threshold (NIST's
    convention); 1 means parity. Thresholds where the lowest rate is 0 are left out."""
    agg = as_aggregate(result)
    attribute = attribute or (agg.attributes[0] if agg.attributes else None)
    fig = go.Figure()
    if attribute is None:
        return _layout(
            fig, "no group attribute to compare", "threshold", "ratio", log_x=False, log_y=False
        )
    part = agg.rates[(agg.rates["metric"] == metric) & (agg.rates["attribute"] == attribute)]
    part = part[~part["insufficient_data"].astype(bool)]
    if not include_small:
        part = part[~part["small_group"].astype(bool)]
    if not include_unknown:
        part = part[part["group"] != "unknown"]
    wide = part.pivot_table(index="threshold", columns="group", values="rate")
    lowest = wide.min(axis=1)
    ratio = wide.div(lowest.where(lowest > 0), axis=0).dropna(how="all")
    for i, group in enumerate(ratio.columns):
        fig.add_trace(
            go.Scatter(
                x=ratio.index,
                y=ratio[group],
                mode="lines",
                name=f"{attribute} = {group}",
                line={"color": _colour(i)},
                hovertemplate="threshold %{x:.4f}<br>ratio %{y:.3g}<extra></extra>",
            )
        )
    fig.add_hline(y=1.0, line={"color": "grey", "dash": "dot"})
    note = "" if include_small else " (small groups left out)"
    return _layout(
        fig,
        f"{metric.upper()} ratio to the lowest {attribute} group{note}",
        "similarity threshold (cosine)",
        f"{metric.upper()} / lowest group's",
        log_x=False,
        log_y=True,
    )


def cmc_figure(result: ResultLike, attribute: str | None = None) -> go.Figure:
    """Cumulative match characteristic: identification rate against rank (mate among the r best
    candidates, whatever its score), one line per group with interval bars.

    Accepts an aggregate, a full result, or the rank table itself
    (:func:`lfr_eval.report.cmc_table`)."""
    if isinstance(result, pd.DataFrame):
        ranks = result
        n = None
    else:
        agg = as_aggregate(result)
        ranks = agg.ranks
        n = agg.watchlist_size
    fig = go.Figure()
    if ranks is None or ranks.empty:
        return _layout(
            fig, "no rank table in these results", "rank", "rate", log_x=False, log_y=False
        )
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
                name=f"{label} ({searches:,} searches, {int(rows['n_subjects'].iloc[0]):,} people)",
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
    result: ResultLike,
    threshold: float,
    *,
    attribute: str | None = None,
) -> go.Figure:
    """FPIR against watchlist size N at one threshold (log–log): the analytic scaling from each
    non-mated search's false-match rate, with its interval band, and the resampled galleries
    (mean and percentile bars) where the data allow."""
    agg = as_aggregate(result)
    fig = go.Figure()
    table = agg.scaling
    if table is None or table.empty:
        return _layout(
            fig, "no watchlist-size scaling in this result", "N", "FPIR", log_x=True, log_y=True
        )
    grid = np.sort(table["threshold"].unique())
    nearest = float(grid[int(np.argmin(np.abs(grid - threshold)))])
    at = table[np.isclose(table["threshold"], nearest)]
    selections = [(ALL, ALL, "all searches")]
    if attribute is not None:
        groups = sorted(at[at["group_attribute"] == attribute]["group"].unique())
        selections = [(attribute, g, f"{attribute} = {g}") for g in groups]
    for i, (attr, group, label) in enumerate(selections):
        colour = _colour(i)
        rows = at[
            (at["method"] == "analytic") & (at["group_attribute"] == attr) & (at["group"] == group)
        ].sort_values("watchlist_size")
        if not rows.empty:
            x = rows["watchlist_size"].to_numpy(float)
            low = rows["lower"].to_numpy(float)
            high = rows["upper"].to_numpy(float)
            if np.isfinite(low).all():
                fig.add_trace(_interval_band(x, low, high, colour, label))
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=rows["fpir"],
                    mode="lines+markers",
                    name=f"{label}, analytic",
                    legendgroup=label,
                    line={"color": colour},
                    hovertemplate="N %{x:,}<br>FPIR %{y:.3g}<extra></extra>",
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
    measured = agg.watchlist_size
    fig.add_vline(
        x=measured,
        line={"color": "grey", "dash": "dot"},
        annotation_text=f"measured N = {measured:,}",
    )
    return _layout(
        fig,
        f"FPIR vs watchlist size at threshold {nearest:.4g}",
        "watchlist size N (entries)",
        "FPIR",
        log_x=True,
        log_y=True,
    )


def score_histogram_figure(result: ResultLike, attribute: str | None = None) -> go.Figure:
    """Distributions of mate scores (mated searches) and best candidate scores (non-mated
    searches), as shares of each kind's searches; per group of ``attribute`` when given."""
    agg = as_aggregate(result)
    hist = agg.histograms
    fig = go.Figure()
    selections = _series(agg, attribute)
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
    return _layout(
        fig,
        "Similarity distributions" + (f" by {attribute}" if attribute else ""),
        "cosine similarity",
        "share of searches",
        log_x=False,
        log_y=False,
    )


def operating_thresholds(
    result: ResultLike, fpir_targets: tuple[float, ...] = (1e-2, 1e-3)
) -> list[float]:
    """Grid thresholds where overall FPIR first falls to each target (lowest such threshold).

    These are chosen on the evaluated data itself: descriptive operating points, not a
    held-out threshold choice.
    """
    agg = as_aggregate(result)
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
    agg = as_aggregate(result)
    return agg.summary(thresholds, [] if attribute is None else [attribute])
