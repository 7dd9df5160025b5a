"""Threshold explorer (for policy staff): what a threshold means for a deployment."""

from __future__ import annotations

import math

import _shared
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from lfr_eval.claims import Claim, check_fpir_claim, claim_scaled_fpir
from lfr_eval.errors import LfrError
from lfr_eval.explain import (
    ExplainError,
    explain_by_group,
    explanation_table,
    false_alert_rates_table,
    format_count,
    offered_watchlist_sizes,
    scaling_threshold_floor,
)
from lfr_eval.operational import one_in_n
from lfr_eval.report import ALL, cmc_figure, det_figure, rate_vs_threshold_figure

st.set_page_config(page_title="Threshold explorer · LFR Workbench", page_icon="🎚️", layout="wide")
_shared.require_role(*_shared.ROLES_RESULTS)
st.title("Threshold explorer")
st.write(
    "Move the face-match threshold and see what it means for one deployment: how many false "
    "alerts to expect among the faces scanned, and what share of the listed people who walk "
    "past would be flagged — overall and for each group. The threshold is a **cosine "
    "similarity** for the engine these results were measured on; it does not carry over to "
    "another engine."
)

loaded = _shared.results_or_stop()
agg = loaded.aggregate
_shared.show_results_summary(loaded)

grid = agg.thresholds
step = float(round(grid[1] - grid[0], 6)) if len(grid) > 1 else 0.01
default = _shared.default_threshold(agg)

with st.container(border=True):
    slider_slot = st.container()  # the slider sits on top; its range depends on N below
    c1, c2, c3, c4 = st.columns(4)
    # only the sizes the results give FPIR for: the evaluated one and the scaling table's
    # (lfr_eval.protocols.scaled_fpir), never a figure from another formula
    sizes = list(offered_watchlist_sizes(agg))
    wanted = int(st.session_state.get(_shared.STATE_WATCHLIST_SIZE, 10_000))
    watchlist_size = c1.selectbox(
        "People on the watchlist (N)",
        sizes,
        index=int(np.argmin([abs(math.log(n / wanted)) for n in sizes])),
        format_func="{:,}".format,
        key="explorer_watchlist_size",
        help=f"The evaluated size ({agg.watchlist_size:,}, as measured) and the sizes the "
        "results' watchlist-size scaling table holds. For another size, evaluate again with "
        "lfr-eval evaluate --watchlist-size N.",
    )
    # another N has a figure only from the scaling table's lowest threshold up
    lowest = float(grid.min())
    floor = scaling_threshold_floor(agg)
    if int(watchlist_size) != agg.watchlist_size and floor is not None and floor > lowest:
        above = grid[grid >= floor - 1e-9]
        if not len(above):
            st.error(
                f"The scaling table starts at {floor:g}, above every threshold of these "
                f"results: choose N = {agg.watchlist_size:,} (as measured)."
            )
            st.stop()
        lowest = float(above[0])
    if st.session_state.get("explorer_threshold", lowest) < lowest:
        st.session_state["explorer_threshold"] = lowest
    # the widget's own state wins once it exists (a value as well would warn)
    start = {} if "explorer_threshold" in st.session_state else {"value": max(default, lowest)}
    threshold = slider_slot.slider(
        "Face-match threshold (cosine similarity)",
        min_value=lowest,
        max_value=float(grid.max()),
        step=step,
        format="%.4f",
        key="explorer_threshold",
        help="An alert fires when a face's best watchlist similarity is at or above this.",
        **start,
    )
    if lowest > float(grid.min()):
        slider_slot.caption(
            f"Thresholds start at {lowest:.4f} for N = {int(watchlist_size):,}: the scaling "
            f"table has no figure below {floor:g}. N = {agg.watchlist_size:,} (as measured) "
            f"goes down to {float(grid.min()):.4f}."
        )
    faces_scanned = c2.number_input(
        "Faces scanned per deployment",
        min_value=0,
        value=int(st.session_state.get(_shared.STATE_FACES, 30_000)),
        step=1_000,
        key="explorer_faces",
    )
    listed_passers_by = c3.number_input(
        "Listed people walking past",
        min_value=0,
        max_value=int(faces_scanned),
        value=min(10, int(faces_scanned)),
        key="explorer_listed",
        help="How many of the faces scanned are people on the watchlist. Needed for true alerts "
        "and for the share of alerts that are false.",
    )
    attributes = agg.attributes
    attribute = c4.selectbox(
        "Break down by",
        ["(no breakdown)", *attributes],
        index=1 if attributes else 0,
        key="explorer_attribute",
    )
attribute = None if attribute == "(no breakdown)" else attribute

# Remembered outside the widgets (whose state Streamlit drops on other pages) so the Export
# page can offer the chosen threshold.
st.session_state[_shared.STATE_THRESHOLD] = float(threshold)
st.session_state[_shared.STATE_WATCHLIST_SIZE] = int(watchlist_size)
st.session_state[_shared.STATE_FACES] = int(faces_scanned)

try:
    explanations = explain_by_group(
        agg,
        round(threshold, 6),
        attribute,
        watchlist_size=int(watchlist_size),
        faces_scanned=int(faces_scanned),
        listed_passers_by=int(listed_passers_by),
    )
except LfrError as exc:
    _shared.show_error(exc)
    st.stop()
overall = explanations[0]

st.subheader("In plain language")
st.info(overall.sentence())
figure = overall.scaled_fpir
if figure is not None and figure.extrapolated:
    st.warning(
        f"{overall.watchlist_size:,} is {figure.extrapolation:,.3g} times the filler gallery "
        "these results measured: the figure is an extrapolation, a range between the "
        "per-person and the pooled model, which few fillers cannot pin down. Evaluate with a "
        "filler gallery nearer the deployed size."
    )
elif overall.scaled:
    st.caption(
        f"FPIR was measured with a {overall.evaluated_watchlist_size:,}-person watchlist and "
        f"scaled to {overall.watchlist_size:,} (a bigger watchlist gives more false alerts at "
        "the same threshold). TPIR is shown as measured."
    )
if overall.scaled:
    st.caption(f"How FPIR was scaled: {overall.scaling_method}.")
for explanation in explanations[1:]:
    st.markdown(f"- {explanation.sentence()}")

c1, c2, c3, c4 = st.columns(4)
# the same plain-language figures as the sentence above (lfr_eval.plain): a figure the data
# cannot bound is not shown as a number
alerts = overall.false_alerts_figure()
c1.metric(
    "Expected false alerts",
    alerts.value_text,
    help="Among the faces scanned of people not on the watchlist, at the deployed N.",
)
c1.caption(alerts.interval_text if alerts.bounded else alerts.sentence())
if overall.tpir.insufficient_data:
    c2.metric("Listed people flagged (TPIR)", "no mated searches")
else:
    caught = overall.tpir_figure()
    c2.metric("Listed people flagged (TPIR)", caught.value_text)
    c2.caption(caught.interval_text)
fpir_plain = overall.fpir_figure()
c3.metric(f"FPIR at N = {overall.watchlist_size:,}", fpir_plain.value_text)
c3.caption(fpir_plain.interval_text)
expected_true = overall.expected_true_alerts
c4.metric(
    "Expected true alerts",
    "—" if math.isnan(expected_true) else format_count(expected_true),
    help="Listed people walking past × TPIR.",
)
c4.caption(f"of {overall.listed_passers_by:,} listed people walking past")

st.subheader("Three different “false alert rates”")
st.write("Each is a correct figure for a different question; published numbers often mix them up.")
rates = false_alert_rates_table(overall)
cols = st.columns(3)
for col, (_, row) in zip(cols, rates.iterrows()):
    value = row["value"]
    # "—": the inputs do not fix it; beyond the fillers a range (no single value)
    col.metric(row["rate"], row["as 1 in N"] if row["as 1 in N"] != "—" else "needs more inputs")
    col.caption(row["what it divides"] + ("" if math.isnan(value) else f" · {value:.3g}"))

st.subheader("Overall and by group")
table = explanation_table(explanations)
st.dataframe(
    table,
    hide_index=True,
    key="explorer_table",
    column_config={
        name: st.column_config.NumberColumn(format="%.3g")
        for name in table.columns
        if table[name].dtype.kind == "f"
    },
)
if any(e.small_group for e in explanations):
    st.warning(
        "Some groups are small: their intervals are wide and a difference between groups may be "
        "chance. That is a finding, not a reason to drop them."
    )

left, right = st.columns(2)
det = det_figure(agg)  # everyone: the marked point is the overall operating point
point_fpir = overall.fpir_measured.rate
point_fnir = 1.0 - overall.tpir.rate
if point_fpir > 0 and point_fnir > 0:
    det.add_trace(
        go.Scatter(
            x=[point_fpir],
            y=[point_fnir],
            mode="markers+text",
            marker={"size": 14, "color": "black", "symbol": "x"},
            text=[f"T = {overall.threshold:.4f}"],
            textposition="top right",
            name=f"chosen threshold {overall.threshold:.4f}",
        )
    )
left.plotly_chart(det, key="explorer_det")
if not (point_fpir > 0 and point_fnir > 0):
    left.caption(
        f"At {overall.threshold:.4f} FPIR is {point_fpir:.3g} and FNIR {point_fnir:.3g}: a zero "
        "cannot be marked on log axes."
    )
fpir_fig = rate_vs_threshold_figure(agg, "fpir", attribute)
fpir_fig.add_vline(x=overall.threshold, line={"color": "black", "dash": "dash"})
right.plotly_chart(fpir_fig, key="explorer_fpir")
fnir_fig = rate_vs_threshold_figure(agg, "fnir", attribute)
fnir_fig.add_vline(x=overall.threshold, line={"color": "black", "dash": "dash"})
st.plotly_chart(fnir_fig, key="explorer_fnir")

st.subheader("Rank-based identification (CMC)")
if agg.ranks is None or agg.ranks.empty:
    st.caption("These results hold no rank table (made before ranks were recorded).")
else:
    st.caption(
        "Share of mated searches whose mate is among the r best candidates, whatever its score "
        f"(no threshold); {agg.intervals.describe()}. Ties rank in the mate's favour (NIST)."
    )
    ranks = agg.ranks[agg.ranks["attribute"].isin([ALL, attribute])]
    keys = ["attribute", "group"]
    wide = ranks.pivot_table(index=keys, columns="rank", values="rate", sort=False)
    wide.columns = [f"rank {r}" for r in wide.columns]
    counts = ranks.groupby(keys, sort=False)[["n_searches", "n_subjects"]].first()
    counts = counts.rename(columns={"n_searches": "mated searches", "n_subjects": "people"})
    shown = counts.join(wide)
    st.dataframe(
        shown.reset_index(),
        hide_index=True,
        key="explorer_ranks",
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in wide.columns},
    )
    st.plotly_chart(cmc_figure(agg, attribute), key="explorer_cmc")

st.subheader("Claim checker")
st.write(
    "Does this evaluation support a published claim such as “false alerts at worst 1 in 6,000 on "
    f"a 10,000-image watchlist”? Checked at the threshold above ({overall.threshold:.4f}) with a "
    "one-sided upper bound clustered by person (Korn–Graubard design-effect Clopper–Pearson: "
    "repeat passes of one person are not independent). A claim about another watchlist size "
    "uses the filler-gallery scaling at that size (the report's scaling table, the same figure "
    "as above), so the sizes on offer are the ones the results hold."
)
c1, c2, c3 = st.columns(3)
claimed_one_in = c1.number_input(
    "Claimed FPIR: at most 1 in", min_value=2, value=6_000, step=500, key="claim_one_in"
)
claimed_size = c2.selectbox(
    "Claimed watchlist size",
    sizes,
    index=int(np.argmin([abs(math.log(n / 10_000)) for n in sizes])),
    format_func="{:,}".format,
    key="claim_watchlist_size",
)
claim_confidence = c3.selectbox(
    "Confidence", [0.95, 0.9, 0.99], index=0, key="claim_confidence", format_func="{:.0%}".format
)
try:
    claim = Claim.one_in(
        int(claimed_one_in),
        watchlist_size=int(claimed_size),
        threshold=overall.threshold,
        confidence=float(claim_confidence),
    )
    # another N: the report's filler-gallery scaling at that N, through the one function the
    # report and the explanation above use; a table at another confidence raises (no verdict
    # from another formula)
    figure = None
    if int(claimed_size) != agg.watchlist_size:
        figure = claim_scaled_fpir(agg.scaling, claim)
        if figure is None:
            raise ExplainError(
                f"these results hold no scaled FPIR for N = {int(claimed_size):,} at "
                f"{overall.threshold:g}: the claim cannot be checked at that size"
            )
    check = check_fpir_claim(
        claim,
        false_positives=overall.fpir_measured.errors,
        non_mated_searches=overall.fpir_measured.trials,
        watchlist_size=agg.watchlist_size,
        n_subjects=_shared.non_mated_subjects(agg, overall.threshold),
        # clustered by person from the aggregate's recorded variance (None in old
        # aggregates: the check then says it treats searches as independent)
        cluster_summary=agg.cluster_summary(overall.threshold, "fpir"),
        scale_watchlist=figure is not None,
        scaled_fpir=figure,
    )
except LfrError as exc:
    _shared.show_error(exc)
else:
    verdict = st.success if check.supported else st.warning
    verdict(
        f"The data {'support' if check.supported else 'do not support'} "
        f"“FPIR ≤ {one_in_n(check.claim.bound)} at N = {int(claimed_size):,}”. They support "
        f"{check.supported_claim_text('≤')}."
    )
    st.write(check.summary())
