"""Demographic report: per-group error rates with intervals, ratios, tests and the HTML report."""

from __future__ import annotations

import math
from pathlib import Path

import _shared
import pandas as pd
import streamlit as st

from lfr_eval.errors import LfrError
from lfr_eval.explain import (
    WHY_NULL_BOOTSTRAP,
    WHY_NULL_BOOTSTRAP_AGGREGATE,
    GroupComparison,
    group_comparison,
)
from lfr_eval.metrics import IdentificationFrame
from lfr_eval.operational import one_in_n
from lfr_eval.plain import interval_cell
from lfr_eval.report import (
    AggregateResult,
    build_html_report,
    group_ratio_figure,
    rate_vs_threshold_figure,
    score_histogram_figure,
)
from lfr_eval.results import RESULT_FILE, EvaluationResult, load_result

st.set_page_config(page_title="Demographic report · LFR Workbench", page_icon="📊", layout="wide")
_shared.require_role(*_shared.ROLES_RESULTS)
st.title("Demographic report")
st.write(
    "Error rates for each group at one fixed threshold, with intervals clustered by person, "
    "each group's rate over the lowest group's, and a test of the widest gap adjusted for "
    "picking it after seeing the data. FPIR: people not "
    "on the watchlist wrongly flagged. FNIR: listed people missed."
)

#: Replicates of the null bootstrap test (p-values in steps of 1 / 5,000).
N_REPLICATES = 4999


@st.cache_resource(show_spinner="Reading each person's counts…", max_entries=2)
def _full_result(path: str, result_sha256: str) -> EvaluationResult | None:
    """The full results behind the aggregate (None when the folder holds only an aggregate).
    ``result_sha256`` keys the cache: a folder evaluated again is read again."""
    folder = Path(path)
    if not (folder / RESULT_FILE).is_file():
        return None
    result = load_result(folder)
    if result.result_hash != result_sha256:
        raise LfrError(
            f"the full results in {folder} (sha256 {result.result_hash[:12]}) are not the ones "
            f"this aggregate was made from ({result_sha256[:12]}): load the folder again"
        )
    return result


@st.cache_resource(show_spinner="Counting errors person by person…", max_entries=8)
def _frame_at(
    path: str, result_sha256: str, threshold: float, attribute: str
) -> IdentificationFrame | None:
    """The per-person frame by ``attribute`` at one threshold (None without full results);
    one for both metrics."""
    result = _full_result(path, result_sha256)
    return None if result is None else result.identification_frame([threshold], [attribute])


@st.cache_resource(show_spinner="Comparing groups…", max_entries=32)
def _comparison(
    _agg: AggregateResult, path: str | None, result_sha256: str, threshold: float,
    attribute: str, metric: str,
) -> GroupComparison:
    """:func:`lfr_eval.explain.group_comparison`, with the per-person frame of the full results
    where the folder has them (the null bootstrap test over people, the library's default),
    else from the aggregate's sums over people (the same test; Rao–Scott in aggregates made
    before those were kept)."""
    frame = None if path is None else _frame_at(path, result_sha256, threshold, attribute)
    return group_comparison(
        _agg, threshold, attribute, metric, frame=frame, n_replicates=N_REPLICATES
    )  # fmt: skip


loaded = _shared.results_or_stop()
agg = loaded.aggregate
_shared.show_results_summary(loaded)
if not agg.attributes:
    st.info(
        "These results carry no group labels (sex, ethnicity…): add group columns to the "
        "dataset manifest and evaluate again to get a demographic report."
    )
    st.stop()

grid = agg.thresholds
nearest = _shared.default_threshold(agg)

c1, c2 = st.columns([3, 1])
threshold = c1.select_slider(
    "Threshold (cosine similarity)",
    options=[float(t) for t in grid],
    value=nearest,
    format_func=lambda t: f"{t:.4f}",
    key="report_threshold",
    help="Starts at the threshold chosen in the Threshold explorer, if any.",
)
attribute = c2.selectbox("Group attribute", agg.attributes, key="report_attribute")

withheld = agg.withheld
if withheld:
    st.info(
        "Groups withheld from these aggregate results because they were too small to share: "
        + ", ".join(w.describe() for w in withheld)
    )

def _interval(low: object, high: object) -> str:
    """One cell for a ratio's interval ("–" where there is none)."""
    if pd.isna(low) or pd.isna(high):  # type: ignore[arg-type]
        return "–"
    return f"{float(low):.3g} – {float(high):.3g}"  # type: ignore[arg-type]


def _rate_intervals(table: pd.DataFrame, low: str, high: str, confidence: float) -> list[str]:
    """Each rate's interval by lfr_eval.plain's rules, as the HTML report writes it (no lower
    end of 0 when errors were seen; an upper bound when none were; "these data cannot bound
    it")."""
    return [
        "–" if pd.isna(lo) or pd.isna(hi) else interval_cell(
            rate, lo, hi, errors=errors, confidence=confidence
        )
        for rate, lo, hi, errors in zip(table["rate"], table[low], table[high], table["errors"])
    ]  # fmt: skip


def _compact_table(
    table: pd.DataFrame, metric: str, pct: str, confidence: float
) -> pd.DataFrame:
    """The comparison table as a reader reads it: each interval in one cell beside its figure,
    and the simultaneous columns only where the results hold them (so it fits the page)."""
    out = pd.DataFrame(
        {
            "group": table["group"],
            "searches": table["n_searches"],
            "people": table["n_subjects"],
            "errors": table["errors"],
            metric.upper(): table["rate"],
            f"{pct} CI": _rate_intervals(table, "ci_low", "ci_high", confidence),
            "small group": table["small_group"],
            "in comparison": table["compared"],
            "ratio to lowest": table["ratio_to_lowest"],
        }
    )
    if table[["sim_ci_low", "sim_ci_high"]].notna().any().any():
        out[f"{pct} CI, all groups at once"] = _rate_intervals(
            table, "sim_ci_low", "sim_ci_high", confidence
        )
        out["ratio CI, all groups at once"] = [
            _interval(lo, hi) for lo, hi in zip(table["ratio_ci_low"], table["ratio_ci_high"])
        ]
    return out


pct = f"{agg.intervals.confidence:.0%}"
for metric, title in (("fpir", "False positives (FPIR)"), ("fnir", "Missed listed people (FNIR)")):
    st.subheader(f"{title} by {attribute} at {threshold:.4f}")
    try:
        comparison = _comparison(
            agg, None if loaded.path is None else str(loaded.path.resolve()),
            agg.result_sha256, float(threshold), attribute, metric,
        )  # fmt: skip
    except LfrError as exc:
        _shared.show_error(exc)
        continue
    table = _compact_table(comparison.table, metric, pct, agg.intervals.confidence)
    st.dataframe(
        table,
        hide_index=True,
        key=f"report_table_{metric}",
        column_config={
            name: st.column_config.NumberColumn(format="%.3g")
            for name in (metric.upper(), "ratio to lowest")
        },
    )
    small = table[table["small group"]]["group"].tolist()
    if small:
        st.warning(
            f"Small groups ({', '.join(small)}): too few people or searches for a reliable rate. "
            "They are shown with their (wide) intervals but left out of the ratios and the test."
        )
    if comparison.test is None:
        st.caption("Fewer than two groups are large enough to compare.")
    elif comparison.extreme_pair is not None:
        pair = comparison.extreme_pair
        ratio = (
            "undefined (the lowest group has no errors)"
            if math.isnan(comparison.max_min_ratio)
            else f"{comparison.max_min_ratio:.2f}"
        )
        # "significant" only from the family-wise adjusted p-value (never the pair's own)
        verdict = (
            "a statistically significant difference"
            if pair.significant(0.05)
            else "no significant difference"
        )
        test_name = {
            WHY_NULL_BOOTSTRAP: f"null bootstrap test over people, {N_REPLICATES:,} replicates",
            WHY_NULL_BOOTSTRAP_AGGREGATE: (
                f"null bootstrap test over people, {N_REPLICATES:,} replicates, from the "
                "aggregate's sums"
            ),
        }.get(comparison.test_reason or "", "Rao–Scott design-effect test from the aggregate")
        pairs = comparison.pairs  # never None with an extreme pair (group_comparison)
        n_pairs = 0 if pairs is None else len(pairs.pairs)
        adjustment, adjustment_text = (
            ("", "") if pairs is None else (pairs.adjustment, pairs.adjustment_text)
        )
        family = "the one pair" if n_pairs == 1 else f"all {n_pairs} pairs"
        st.markdown(
            f"Highest **{pair.group_a}** ({one_in_n(pair.rate_a)}) vs lowest **{pair.group_b}** "
            f"({one_in_n(pair.rate_b)}): ratio {ratio}; p = {pair.p_adjusted:.3g} ({test_name}) "
            f"adjusted for comparing {family} of groups ({adjustment}), {verdict} at "
            "the 5% family-wise level."
        )
        st.caption(
            f"Which test: {comparison.test_reason}. "
            "The pair was picked after seeing the data, so its p-value is adjusted for every "
            f"pair that could have been picked ({adjustment_text}), and each pair's "
            "statistic allows for repeat searches of one person. "
            f"The columns 'all groups at once' give {comparison.simultaneous_confidence:.0%} "
            "intervals that hold for all compared groups together, and the ratio's interval to "
            f"the lowest group ({comparison.simultaneous_method})."
        )
    else:
        test = comparison.test
        st.markdown(
            f"Highest **{comparison.highest_group}** ({test.errors_a:,} of {test.trials_a:,}) vs "
            f"lowest **{comparison.lowest_group}** ({test.errors_b:,} of {test.trials_b:,}): "
            f"Fisher's exact p = {test.p_value:.3g} (uncorrected)."
        )
        st.caption(
            "These aggregate results predate the clustered statistics, so no significance "
            "verdict is given: Fisher's test treats searches as independent and its p-value "
            "ignores that the pair was picked after seeing the data. Aggregate the full results "
            "again for an adjusted test."
        )

st.subheader("Charts")
left, right = st.columns(2)
left.plotly_chart(rate_vs_threshold_figure(agg, "fpir", attribute), key="report_fpir")
right.plotly_chart(rate_vs_threshold_figure(agg, "fnir", attribute), key="report_fnir")
left.plotly_chart(group_ratio_figure(agg, "fpir", attribute), key="report_ratio_fpir")
right.plotly_chart(group_ratio_figure(agg, "fnir", attribute), key="report_ratio_fnir")
st.plotly_chart(score_histogram_figure(agg, attribute), key="report_hist")

st.subheader("Download")
st.write(
    "The full report as one self-contained HTML file (figures included; aggregate figures only, "
    "no images or per-person data)."
)
if st.button("Build HTML report", key="report_build"):
    with st.spinner("Building the report…"):
        st.session_state["report_html"] = build_html_report(
            agg, thresholds=[threshold], groups=agg.attributes
        )
if "report_html" in st.session_state:
    st.download_button(
        "Download report.html",
        st.session_state["report_html"],
        file_name="lfr_report.html",
        mime="text/html",
        key="report_download",
    )
