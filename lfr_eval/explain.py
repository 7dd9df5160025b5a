"""What a threshold means for a deployment, in numbers and in plain language.

Policy staff choose a face-match threshold (a cosine similarity in [-1, 1]); what they need to
know is what it does on a real deployment: how many false alerts to expect among the faces
scanned, and what share of the listed people who walk past would be flagged. This module
turns an evaluation's aggregate figures (:class:`~lfr_eval.report.AggregateResult`) into that,
overall and per demographic group, keeping the three "false alert rates" apart
(:class:`~lfr_eval.operational.FalseAlertRates`).

FPIR grows with the watchlist size N. An evaluation measures it at its own N; for a deployment
with another N the figure is the results' filler-gallery scaling
(:func:`lfr_eval.protocols.scaled_fpir`, the same function and numbers as the report's scaling
table: unbiased up to the fillers measured, a labelled extrapolation range beyond, intervals
clustered by person; a threshold between the counts' grid values is read at the grid value at
or below it). That is the only scaled FPIR shown (one function per figure): the sizes on offer
are the ones the scaling table holds (:func:`offered_watchlist_sizes`), and another size, or a
threshold below the table's grid, is an :class:`ExplainError` saying what would give a figure,
never a number from another formula. TPIR is reported as measured: it changes little with N.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from lfr_eval.datasets import UNKNOWN
from lfr_eval.errors import LfrError
from lfr_eval.metrics import (
    DEFAULT_ADJUSTMENT,
    SIMULTANEOUS_KG,
    SIMULTANEOUS_RATIO,
    GroupRatesComparison,
    GroupTestResult,
    IdentificationFrame,
    PairComparison,
    RateEstimate,
    RatioToLowest,
    bootstrap_compare_groups_from_sums,
    compare_group_rates,
    fisher_exact_test,
    ratio_to_lowest,
)
from lfr_eval.metrics._group_tests import Adjustment
from lfr_eval.operational import FalseAlertRates, one_in_n
from lfr_eval.plain import (
    PlainFigure,
    data_needed_for_fpir,
    format_number,
    interval_cell,
    plain_count,
    plain_rate,
)
from lfr_eval.protocols import ProtocolError, ScaledFpir, scaled_fpir
from lfr_eval.protocols._scaling import ANALYTIC
from lfr_eval.report import ALL, AggregateResult

#: The methods of a group comparison's "all groups at once" columns (its rates, its ratios).
SIMULTANEOUS_COLUMNS = (
    f"rates: {SIMULTANEOUS_KG}, each end within the interval counted by people and the "
    "lower end at least errors x alpha / searches (Markov); "
    f"ratios to the lowest: {SIMULTANEOUS_RATIO}"
)
#: A threshold is "on" an aggregate's grid when it is this close to a grid value.
GRID_TOLERANCE = 1e-6

MSG_OFF_GRID = (
    "threshold {threshold:g} is not one of the thresholds these results were computed at; the "
    "nearest are {nearest}. Choose one of those"
)
MSG_NO_ROW = "the results hold no {metric} figures for {attribute} = {group}"
MSG_FRAME_MISMATCH = (
    "the per-person results do not match the aggregate for {attribute} = {group} at "
    "{threshold:.4f} ({what}): load the evaluation the aggregate was made from"
)

#: Why :func:`group_comparison` ran the null bootstrap test (per-person counts given; default).
WHY_NULL_BOOTSTRAP = (
    "the full results hold each person's counts, so groups are compared by the parametric "
    "null bootstrap-t over people (data sets drawn under equal rates, person by person with "
    "each group's own searches per person and the clustering seen in the other groups), the "
    "same function as IdentificationFrame.compare_groups; its size was measured at 0.03-0.07 "
    "where groups differ in searches per person and a few people carry most errors"
)
#: Why :func:`group_comparison` ran the permutation test (per-person counts, asked by name).
WHY_PERMUTATION = (
    "the full results hold each person's counts and the permutation test was asked for, so "
    "groups are compared by the studentized permutation test over people (whole people "
    "relabelled among people with about as many searches), the same function as "
    "IdentificationFrame.compare_groups(test='permutation')"
)
#: Why :func:`group_comparison` ran the null bootstrap test on an aggregate's sums.
WHY_NULL_BOOTSTRAP_AGGREGATE = (
    "these are aggregate results; they keep each group's sums over people and its "
    "searches-per-person histogram (nothing per person), which is all the null bootstrap "
    "test needs, so groups are compared by the same parametric null bootstrap-t over people "
    "as the full results, with the same p-values; its size was measured at 0.03-0.07 where "
    "groups differ in searches per person and a few people carry most errors"
)
#: Why :func:`group_comparison` ran the Rao–Scott test (an aggregate without those sums).
WHY_RAO_SCOTT = (
    "these aggregate results were written before each group's sums over people were kept, "
    "so groups are compared by design-effect-adjusted (Rao-Scott) z tests from the clustered "
    "totals; measured, that test calls equal groups different in 0.009-0.041 of data sets on "
    "the grid but in about 0.15 where a few heavy people fall in a group of few people with "
    "many searches each (benchmarks/results/stats_groups_claims.md, "
    "null_bootstrap_groups.md); re-make the aggregate (lfr-eval report) for the null "
    "bootstrap test"
)
#: No scaled FPIR at a size the results' scaling table does not hold.
MSG_NO_SCALED = (
    "these results hold no scaled FPIR for a {n:,}-person watchlist{why}; they give FPIR at "
    "N = {sizes}. Choose one of those, or evaluate again with that size "
    "(lfr-eval evaluate --watchlist-size {n})"
)
MSG_NO_SCALING_TABLE = " (they hold no watchlist-size scaling table)"
MSG_NOT_IN_TABLE = " (the scaling table holds N = {table})"


class ExplainError(LfrError):
    """A threshold or group the results cannot speak for."""


def grid_threshold(agg: AggregateResult, threshold: float) -> float:
    """The grid threshold of ``agg`` equal to ``threshold`` (within :data:`GRID_TOLERANCE`).

    Raises
    ------
    ExplainError
        ``threshold`` is not on the grid; the message names the nearest grid values.
    """
    grid = agg.thresholds
    i = int(np.argmin(np.abs(grid - threshold)))
    if abs(float(grid[i]) - threshold) > GRID_TOLERANCE:
        j = int(np.searchsorted(grid, threshold))
        around = grid[max(j - 1, 0) : j + 1]  # the grid values either side
        nearest = " and ".join(f"{t:g}" for t in around)
        raise ExplainError(MSG_OFF_GRID.format(threshold=threshold, nearest=nearest))
    return float(grid[i])


def rate_at(
    agg: AggregateResult,
    metric: str,
    threshold: float,
    attribute: str = ALL,
    group: str = ALL,
) -> RateEstimate:
    """One row of the aggregate as a :class:`~lfr_eval.metrics.RateEstimate`.

    Parameters
    ----------
    agg : AggregateResult
    metric : {"fpir", "fnir"}
    threshold : float
        A threshold on the aggregate's grid (cosine similarity in [-1, 1]).
    attribute, group : str
        ``"all"`` for the whole population.
    """
    t = grid_threshold(agg, threshold)
    rates = agg.rates
    part = rates[
        (rates["metric"] == metric)
        & (rates["attribute"] == attribute)
        & (rates["group"] == group)
        & np.isclose(rates["threshold"], t, rtol=0, atol=GRID_TOLERANCE)
    ]
    if part.empty:
        raise ExplainError(MSG_NO_ROW.format(metric=metric, attribute=attribute, group=group))
    return RateEstimate.from_row(part.iloc[0], agg.intervals.confidence)


@dataclass(frozen=True)
class ThresholdExplanation:
    """What one threshold means for one deployment, for the whole population or one group.

    Attributes
    ----------
    threshold : float
        Cosine similarity in [-1, 1].
    attribute, group : str
        ``"all"`` for the whole population.
    evaluated_watchlist_size : int
        N of the evaluation.
    watchlist_size : int
        N of the deployment.
    faces_scanned : int
        Faces searched per deployment.
    listed_passers_by : int
        How many of those faces are of listed people (used for true alerts and the share of
        alerts that are false).
    fpir_measured : RateEstimate
        FPIR as measured, at ``evaluated_watchlist_size``.
    fpir, fpir_ci_low, fpir_ci_high : float
        FPIR and its interval at ``watchlist_size`` (scaled when the sizes differ).
    tpir : RateEstimate
        Share of mated searches whose mate is returned at rank 1 at or above the threshold.
    expected_false_alerts, expected_ci_low, expected_ci_high : float
        False alerts expected among the ``faces_scanned - listed_passers_by`` faces of people
        not listed, with a confidence interval for that **expected** number (the long-run
        mean per deployment: the FPIR interval times the faces), not a prediction interval
        for the count one deployment will see, which varies more
        (:func:`lfr_eval.operational.expected_false_alerts` gives that one). Coverage of the
        expected count checked by simulation (``tests/test_operational.py``).
    expected_true_alerts : float
        ``listed_passers_by * TPIR``.
    rates : FalseAlertRates
        The three "false alert rates", labelled.
    small_group : bool
        The group has too few subjects or searches for a reliable figure.
    insufficient_data : bool
        No searches at all: the rates are undefined.
    scaling_method : str
        How ``fpir`` at the deployed N was made.
    scaled_fpir : ScaledFpir or None
        The filler-gallery figure (:func:`lfr_eval.protocols.scaled_fpir`, the report's
        scaling table) when the results hold one for this N; its ``grid_threshold`` is the
        counts' threshold it was read at.
    """

    threshold: float
    attribute: str
    group: str
    evaluated_watchlist_size: int
    watchlist_size: int
    faces_scanned: int
    listed_passers_by: int
    fpir_measured: RateEstimate
    fpir: float
    fpir_ci_low: float
    fpir_ci_high: float
    tpir: RateEstimate
    expected_false_alerts: float
    expected_ci_low: float
    expected_ci_high: float
    expected_true_alerts: float
    rates: FalseAlertRates | None
    small_group: bool
    insufficient_data: bool
    scaling_method: str = "measured at this watchlist size"
    scaled_fpir: ScaledFpir | None = None

    @property
    def scaled(self) -> bool:
        """True when FPIR was scaled from the evaluation's watchlist size."""
        return self.watchlist_size != self.evaluated_watchlist_size

    @property
    def fpir_errors(self) -> int:
        """The false positives the FPIR at the deployed N rests on, for the plain-language
        rules (0: the figure is an upper bound): as measured at the evaluated N; for a
        filler-gallery figure, none exactly when no search met a filler (its FPIR is 0)."""
        if self.scaled_fpir is None:
            return self.fpir_measured.errors
        return 0 if self.fpir == 0 else max(self.fpir_measured.errors, 1)

    @property
    def label(self) -> str:
        return "everyone" if self.attribute == ALL else f"{self.attribute} = {self.group}"

    def sentence(self) -> str:
        """The plain-language summary, e.g. "At 0.60 with a 10,000-person watchlist …"."""
        lead = (
            f"At {_threshold_text(self.threshold)} with a {self.watchlist_size:,}-person watchlist "
            f"and {self.faces_scanned:,} faces per deployment"
        )
        if self.attribute != ALL:
            lead = f"If every face scanned were of {self.label}: at" + lead[2:]
        if self.insufficient_data:
            return f"{lead}, the results hold no searches for {self.label}: no figure is possible."
        alerts = self.false_alerts_figure()
        if alerts.bounded:
            text = f"{lead}, expect {alerts.value_text} false alerts ({alerts.interval_text})"
        else:
            needs = f": {alerts.needs.describe()}" if alerts.needs else ""
            text = f"{lead}, the number of false alerts is not bounded by these data{needs}"
        if self.tpir.insufficient_data:
            text += "; the results hold no mated searches, so the share caught is unknown"
        else:
            caught = self.tpir_figure()
            text += (
                f" and catch {caught.value_text} of listed people who pass "
                f"({caught.interval_text})"
            )
        text += "."
        if self.small_group:
            who = "these results" if self.attribute == ALL else "this group"
            text += f" Few searches or people in {who}: treat the figure with caution."
        return text

    def false_alerts_figure(self) -> PlainFigure:
        """Expected false alerts per deployment in plain language (:func:`plain_count`): not
        printed as a number when the data cannot bound it, with the searches, people and
        filler gallery that would."""
        non_mated = self.faces_scanned - self.listed_passers_by
        target_count = max(2.0 * self.expected_false_alerts, 10.0)
        needs = None
        # the gallery the figure rests on: the fillers behind a filler-gallery figure (N / F
        # beyond them; at least N within them), else the evaluated watchlist
        gallery = self.evaluated_watchlist_size
        if self.scaled_fpir is not None:
            gallery = (
                round(self.watchlist_size / self.scaled_fpir.extrapolation)
                if self.scaled_fpir.extrapolated
                else self.watchlist_size
            )
        if non_mated > 0 and math.isfinite(self.expected_false_alerts):
            needs = data_needed_for_fpir(
                min(target_count / non_mated, 0.5),
                evaluated_watchlist_size=gallery,
                watchlist_size=self.watchlist_size,
                target=f"to at most about {format_number(target_count)} false alerts",
            )
        figure = plain_count(
            self.expected_false_alerts,
            self.expected_ci_low,
            self.expected_ci_high,
            total=non_mated,
            errors=self.fpir_errors,
            confidence=self.fpir_measured.confidence,
            needs=needs,
        )
        return self._as_range(figure, format_number)

    def fpir_figure(self) -> PlainFigure:
        """FPIR at the deployed watchlist size in plain language ("1 in N", :func:`plain_rate`)."""
        figure = plain_rate(
            self.fpir,
            self.fpir_ci_low,
            self.fpir_ci_high,
            errors=self.fpir_errors,
            confidence=self.fpir_measured.confidence,
            needs=self.false_alerts_figure().needs,
        )
        return self._as_range(figure, one_in_n)

    @property
    def extrapolated(self) -> bool:
        """The deployed N lies beyond the fillers measured: the figure is a model range."""
        return self.scaled_fpir is not None and self.scaled_fpir.extrapolated

    def _ranged(self, figure: PlainFigure) -> bool:
        """Whether ``figure`` is shown as a model range (:meth:`_as_range`)."""
        return self.extrapolated and figure.bounded and not figure.upper_only

    def _as_range(self, figure: PlainFigure, fmt: Callable[[float], str]) -> PlainFigure:
        """Beyond the fillers measured the figure is a range, not a number: its low end is
        the per-person model (FPIR cannot fall as N grows), its high end the pooled model's
        upper end, and the data cannot tell where in it the truth lies. So a bounded figure
        there reads "a–b" with that said, never the low end alone as "expect a"."""
        if not self._ranged(figure):
            return figure
        assert self.scaled_fpir is not None
        fillers = round(self.watchlist_size / self.scaled_fpir.extrapolation)
        value = f"{fmt(figure.low)}–{fmt(figure.high)}"
        interval = (
            f"a range, not an estimate: from the per-person to the pooled model, with their "
            f"{figure.confidence:.0%} interval, extrapolated x{self.scaled_fpir.extrapolation:.3g} "
            f"beyond the {fillers:,} fillers measured; these data cannot tell where in it"
        )
        return dataclasses.replace(
            figure, value_text=value, interval_text=interval, text=f"{value} ({interval})"
        )

    def tpir_figure(self) -> PlainFigure:
        """TPIR (share of listed people flagged) in plain language (:func:`plain_rate`)."""
        return plain_rate(
            self.tpir.rate,
            self.tpir.ci_low,
            self.tpir.ci_high,
            errors=self.tpir.errors,
            confidence=self.tpir.confidence,
            style="percent",
        )

    def to_row(self) -> dict[str, object]:
        """A flat record for tables that fit a page: rates as fractions, each interval in one
        cell next to its rate, counts as "errors / searches". A figure the data cannot bound
        (:mod:`lfr_eval.plain`) is NaN, its interval cell "these data cannot bound it"."""
        confidence = self.fpir_measured.confidence
        pct = f"{confidence:.0%}"
        # intervals by lfr_eval.plain's rules, as the report's tables write them
        fpir_ci = interval_cell(
            self.fpir, self.fpir_ci_low, self.fpir_ci_high,
            errors=self.fpir_errors, confidence=confidence,
        )  # fmt: skip
        tpir_ci = interval_cell(
            self.tpir.rate, self.tpir.ci_low, self.tpir.ci_high,
            errors=self.tpir.errors, confidence=confidence,
        )  # fmt: skip
        alerts, rate = self.false_alerts_figure(), self.fpir_figure()
        # a figure these data cannot bound is no number (its interval cell says why), nor is
        # a range beyond the fillers measured (its low end is no estimate)
        fpir = self.fpir if rate.bounded and not self._ranged(rate) else math.nan
        expected_ci = alerts.interval_text
        if self._ranged(rate):
            fpir_ci = f"range {self.fpir_ci_low:.3g}–{self.fpir_ci_high:.3g} (extrapolated)"
        if self._ranged(alerts):
            expected_ci = f"range {alerts.value_text} (extrapolated)"
        return {
            "group": self.label,
            "FPIR at N": fpir,
            f"FPIR {pct} CI": fpir_ci,
            "false positives / non-mated": (
                f"{self.fpir_measured.errors:,} / {self.fpir_measured.trials:,}"
            ),
            "TPIR": self.tpir.rate,
            f"TPIR {pct} CI": tpir_ci,
            "hits / mated": f"{self.tpir.errors:,} / {self.tpir.trials:,}",
            "expected false alerts": (
                self.expected_false_alerts
                if alerts.bounded and not self._ranged(alerts)
                else math.nan
            ),
            f"expected {pct} CI": expected_ci,
            "small group": self.small_group,
        }


def _threshold_text(threshold: float) -> str:
    """A threshold as written by people: at least two decimals, no trailing zeros beyond them."""
    text = f"{threshold:.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def format_count(value: float) -> str:
    """Expected counts as :func:`lfr_eval.plain.format_number` writes them (a positive count
    never reads 0; whole numbers from 100 up)."""
    return format_number(value)


def explain_threshold(
    agg: AggregateResult,
    threshold: float,
    *,
    watchlist_size: int,
    faces_scanned: int,
    listed_passers_by: int = 0,
    attribute: str = ALL,
    group: str = ALL,
) -> ThresholdExplanation:
    """What ``threshold`` means for a deployment, for everyone or one group.

    Parameters
    ----------
    agg : AggregateResult
        The evaluation's aggregate figures.
    threshold : float
        A threshold on the aggregate's grid, cosine similarity in [-1, 1].
    watchlist_size : int
        People on the deployment's watchlist (N >= 1): the evaluated size or one of the
        scaling table's (:func:`offered_watchlist_sizes`).
    faces_scanned : int
        Faces searched in one deployment (>= 0).
    listed_passers_by : int
        How many of those are listed people (0 <= listed <= faces_scanned).
    attribute, group : str
        A group of the aggregate, or ``"all"``.

    Raises
    ------
    ExplainError
        Threshold off the grid, unknown group, impossible counts, or a watchlist size other
        than the evaluated one for which the scaling table holds no figure (see
        :func:`offered_watchlist_sizes`; a threshold below the table's grid too).

    Examples
    --------
    >>> e = explain_threshold(agg, 0.6, watchlist_size=10_000,
    ...                       faces_scanned=30_000)  # doctest: +SKIP
    >>> e.sentence()  # doctest: +SKIP
    'At 0.60 with a 10,000-person watchlist and 30,000 faces per deployment, expect 4.2 ...'
    """
    if watchlist_size < 1:
        raise ExplainError("the watchlist must hold at least one person")
    if faces_scanned < 0 or not 0 <= listed_passers_by <= faces_scanned:
        raise ExplainError(
            "faces scanned must be >= 0 and listed passers-by between 0 and the faces scanned"
        )
    t = grid_threshold(agg, threshold)
    fpir = rate_at(agg, "fpir", t, attribute, group)
    tpir = rate_at(agg, "fnir", t, attribute, group).complement()
    small = _is_small(agg, t, attribute, group)
    evaluated = agg.watchlist_size
    figure = None
    if not fpir.insufficient_data and watchlist_size != evaluated:
        figure = _scaled_figure(agg, int(watchlist_size), t, attribute, group)
    scaling_method = "measured at this watchlist size"
    if fpir.insufficient_data:
        scaled = (math.nan, math.nan, math.nan)
    elif figure is not None:
        scaled = (figure.fpir, figure.lower, figure.upper)
        scaling_method = "filler-gallery scaling: " + figure.describe()
    else:
        scaled = (fpir.rate, fpir.ci_low, fpir.ci_high)
    non_mated_faces = faces_scanned - listed_passers_by
    tpir_value = None if tpir.insufficient_data else tpir.rate
    prevalence = listed_passers_by / faces_scanned if faces_scanned else 0.0
    rates = None
    if not fpir.insufficient_data and prevalence < 1:
        rates = FalseAlertRates.from_fpir(
            scaled[0],
            prevalence=prevalence,
            tpir=tpir_value,
            watchlist_size=watchlist_size,
            threshold=t,
        )
    return ThresholdExplanation(
        threshold=t,
        attribute=attribute,
        group=group,
        evaluated_watchlist_size=evaluated,
        watchlist_size=int(watchlist_size),
        faces_scanned=int(faces_scanned),
        listed_passers_by=int(listed_passers_by),
        fpir_measured=fpir,
        fpir=scaled[0],
        fpir_ci_low=scaled[1],
        fpir_ci_high=scaled[2],
        tpir=tpir,
        expected_false_alerts=non_mated_faces * scaled[0],
        expected_ci_low=non_mated_faces * scaled[1],
        expected_ci_high=non_mated_faces * scaled[2],
        expected_true_alerts=listed_passers_by
        * (tpir_value if tpir_value is not None else math.nan),
        rates=rates,
        small_group=small,
        insufficient_data=fpir.insufficient_data,
        scaling_method=scaling_method,
        scaled_fpir=figure,
    )


def offered_watchlist_sizes(agg: AggregateResult) -> tuple[int, ...]:
    """The watchlist sizes an explanation can give FPIR for, ascending.

    The evaluated size (FPIR as measured) and every size of the results' scaling table
    (:func:`lfr_eval.protocols.scaled_fpir`); the explorer offers exactly these.
    """
    sizes = {int(agg.watchlist_size)}
    table = agg.scaling
    if isinstance(table, pd.DataFrame) and not table.empty:
        sizes |= {int(n) for n in table.loc[table["method"] == ANALYTIC, "watchlist_size"]}
    return tuple(sorted(sizes))


def scaling_threshold_floor(agg: AggregateResult) -> float | None:
    """The lowest threshold the results' scaling table holds (None without a table): below it
    only the evaluated watchlist size has an FPIR."""
    table = agg.scaling
    if not isinstance(table, pd.DataFrame) or table.empty:
        return None
    return float(table.loc[table["method"] == ANALYTIC, "threshold"].min())


def _scaled_figure(
    agg: AggregateResult, watchlist_size: int, threshold: float, attribute: str, group: str
) -> ScaledFpir:
    """The scaling table's figure (:func:`scaled_fpir`), or an :class:`ExplainError` saying why
    there is none and what would give one."""
    table = agg.scaling
    sizes = ", ".join(f"{n:,}" for n in offered_watchlist_sizes(agg))
    try:
        # the same figure as the report's scaling table (one function for both)
        figure = scaled_fpir(table, watchlist_size, threshold, attribute=attribute, group=group)
    except ProtocolError as exc:  # a threshold below the table's grid
        raise ExplainError(
            f"no scaled FPIR for a {watchlist_size:,}-person watchlist at {threshold:g}: {exc}. "
            f"Choose a higher threshold, or N = {agg.watchlist_size:,} (as measured)"
        ) from None
    if figure is not None:
        return figure
    if not isinstance(table, pd.DataFrame) or table.empty:
        why = MSG_NO_SCALING_TABLE
    else:
        held = sorted({int(n) for n in table.loc[table["method"] == ANALYTIC, "watchlist_size"]})
        why = MSG_NOT_IN_TABLE.format(table=", ".join(f"{n:,}" for n in held))
        if watchlist_size in held:
            label = "everyone" if attribute == ALL else f"{attribute} = {group}"
            why = f" for {label} at {threshold:g}"
    raise ExplainError(MSG_NO_SCALED.format(n=watchlist_size, why=why, sizes=sizes))


def _is_small(agg: AggregateResult, threshold: float, attribute: str, group: str) -> bool:
    rates = agg.rates
    part = rates[
        (rates["attribute"] == attribute)
        & (rates["group"] == group)
        & np.isclose(rates["threshold"], threshold, rtol=0, atol=GRID_TOLERANCE)
    ]
    return bool(part["small_group"].astype(bool).any())


def explain_by_group(
    agg: AggregateResult,
    threshold: float,
    attribute: str | None,
    *,
    watchlist_size: int,
    faces_scanned: int,
    listed_passers_by: int = 0,
) -> list[ThresholdExplanation]:
    """:func:`explain_threshold` for everyone, then for each group of ``attribute``."""

    def explain(of_attribute: str = ALL, of_group: str = ALL) -> ThresholdExplanation:
        return explain_threshold(
            agg,
            threshold,
            attribute=of_attribute,
            group=of_group,
            watchlist_size=watchlist_size,
            faces_scanned=faces_scanned,
            listed_passers_by=listed_passers_by,
        )

    out = [explain()]
    if attribute is not None and attribute != ALL:
        out += [explain(attribute, g) for g in agg.groups(attribute)]
    return out


def explanation_table(explanations: list[ThresholdExplanation]) -> pd.DataFrame:
    """One row per explanation (see :meth:`ThresholdExplanation.to_row`)."""
    return pd.DataFrame([e.to_row() for e in explanations])


def false_alert_rates_table(explanation: ThresholdExplanation) -> pd.DataFrame:
    """The three "false alert rates" side by side, each with what it divides by.

    Rows: per face scanned (the forces' figure), FPIR (NPL/NIST/ISO), and false alerts ÷ all
    alerts (the critics' figure). ``value`` is NaN where the inputs do not fix it (e.g. the
    share of alerts that are false needs listed passers-by and a TPIR).
    """
    r = explanation.rates
    # rates built without a prevalence have no per-face figure (None): shown as NaN / "—"
    per_face = r.per_face_scanned if r and r.per_face_scanned is not None else math.nan
    fpir = r.fpir if r and r.fpir is not None else math.nan
    fdr = r.false_discovery if r and r.false_discovery is not None else math.nan
    ranges = _rate_ranges(explanation)
    rows = [
        ("false alerts ÷ faces scanned", "the forces' published figure", per_face),
        (
            f"FPIR at N = {explanation.watchlist_size:,}",
            "false positives ÷ non-mated searches (NPL, NIST, ISO)",
            fpir,
        ),
        ("false alerts ÷ all alerts", "1 − precision; depends on how many listed people pass", fdr),
    ]
    if ranges is not None:
        # beyond the fillers measured each rate is a range, not a number (see _as_range)
        return pd.DataFrame(
            [
                {
                    "rate": name,
                    "what it divides": what,
                    "value": math.nan,
                    "as 1 in N": "—"
                    if span is None
                    else f"{one_in_n(span[0])} – {one_in_n(span[1])} (extrapolated range)",
                }
                for (name, what, _), span in zip(rows, ranges, strict=True)
            ]
        )
    return pd.DataFrame(
        [
            {
                "rate": name,
                "what it divides": what,
                "value": value,
                "as 1 in N": one_in_n(value) if math.isfinite(value) and value > 0 else "—",
            }
            for name, what, value in rows
        ]
    )


def _rate_ranges(
    explanation: ThresholdExplanation,
) -> list[tuple[float, float] | None] | None:
    """Beyond the fillers measured: (low, high) of the three rates from the ends of the scaled
    FPIR's range (None where a rate needs more inputs); None within them."""
    r = explanation.rates
    if r is None or not explanation._ranged(explanation.fpir_figure()):
        return None
    ends = [
        FalseAlertRates.from_fpir(
            v, prevalence=r.prevalence, tpir=r.tpir, watchlist_size=r.watchlist_size,
            threshold=r.threshold,
        )  # fmt: skip
        for v in (explanation.fpir_ci_low, explanation.fpir_ci_high)
    ]
    out: list[tuple[float, float] | None] = []
    for name in ("per_face_scanned", "fpir", "false_discovery"):
        low, high = (getattr(e, name) for e in ends)
        out.append(None if low is None or high is None or high <= 0 else (low, high))
    return out


@dataclass(frozen=True)
class GroupComparison:
    """Per-group error rates at one threshold, their ratios and a test of the widest gap.

    Attributes
    ----------
    metric : str
        ``"fpir"`` or ``"fnir"``.
    threshold : float
        Cosine similarity in [-1, 1].
    attribute : str
    table : DataFrame
        One row per group: ``group``, ``n_searches``, ``n_subjects``, ``errors``, ``rate``,
        ``ci_low``, ``ci_high``, ``ratio_to_lowest`` (NaN when the lowest compared rate is 0 or
        the group is left out of the comparison), ``small_group``, ``compared``.
    lowest_group, highest_group : str or None
        The compared groups (not small, not ``unknown``, with searches) with the lowest and
        highest rate; None when fewer than two groups can be compared.
    max_min_ratio : float
        Highest compared rate over the lowest (NaN when the lowest is 0 or too few groups).
    test : GroupTestResult or None
        Fisher's exact test of the highest against the lowest compared group, for reference
        only: it treats searches as independent and its p-value is not corrected for picking
        the pair after seeing the data. Never read it as "significant"; use ``pairs``.
    pairs : GroupRatesComparison or None
        Every pair of compared groups with a max-statistic multiplicity adjustment over all
        pairs: with per-person counts (``frame``) the parametric null bootstrap-t over people
        (:meth:`lfr_eval.metrics.IdentificationFrame.compare_groups`; the permutation test
        over people by name), from an aggregate alone
        the design-effect-adjusted (Rao–Scott) tests (:func:`lfr_eval.metrics.compare_group_rates`);
        ``pairs.method`` names it. None for aggregates made before the clustered statistics
        were recorded.
    extreme_pair : PairComparison or None
        The highest-vs-lowest pair out of ``pairs``: its ``p_adjusted`` is valid although the
        pair was chosen after seeing the data.
    simultaneous_confidence : float or None
        Coverage of the table's ``sim_ci_low``/``sim_ci_high`` (all compared groups at once,
        Bonferroni over groups) and of ``ratio_ci_low``/``ratio_ci_high`` (ratio to the
        lowest group, simultaneous over every pair: :func:`lfr_eval.metrics.ratio_to_lowest`).
    simultaneous_method : str or None
        Which methods made those columns, in words (:data:`SIMULTANEOUS_COLUMNS`).
    test_reason : str or None
        Why ``pairs`` used the test it did (:data:`WHY_NULL_BOOTSTRAP`,
        :data:`WHY_PERMUTATION` or :data:`WHY_RAO_SCOTT`),
        for the page to say.
    """

    metric: str
    threshold: float
    attribute: str
    table: pd.DataFrame
    lowest_group: str | None
    highest_group: str | None
    max_min_ratio: float
    test: GroupTestResult | None
    pairs: GroupRatesComparison | None = None
    extreme_pair: PairComparison | None = None
    simultaneous_confidence: float | None = None
    test_reason: str | None = None
    simultaneous_method: str | None = None


def group_comparison(
    agg: AggregateResult,
    threshold: float,
    attribute: str,
    metric: str = "fpir",
    *,
    frame: IdentificationFrame | None = None,
    n_permutations: int = 4999,
    seed: int = 0,
    adjustment: Adjustment = DEFAULT_ADJUSTMENT,
    test: Literal["bootstrap", "permutation"] = "bootstrap",
    n_replicates: int = 4999,
) -> GroupComparison:
    """Compare the groups of ``attribute`` on ``metric`` at ``threshold``.

    Small groups (flagged by the evaluation) and the ``unknown`` label are shown but left out
    of the ratios and the test, so a handful of searches cannot drive the headline figure.

    Parameters
    ----------
    frame : IdentificationFrame, optional
        The same evaluation's per-person frame by ``attribute`` at (at least) this threshold,
        e.g. ``result.identification_frame([threshold], [attribute])`` of the full results
        the aggregate was made from. Given, the pair tests are ``test`` over people
        (:meth:`IdentificationFrame.compare_groups`); without it, the same null bootstrap
        from each group's sums over people in the aggregate's rates rows
        (:func:`lfr_eval.metrics.bootstrap_compare_groups_from_sums`), or the Rao–Scott tests
        from the clustered totals for an aggregate written before those sums were kept (the
        reason says so). Its per-group counts must equal the aggregate's.
    test : {"bootstrap", "permutation"}
        With ``frame``: the parametric null bootstrap-t over people (default, the frame's and
        the library's; :func:`lfr_eval.metrics.bootstrap_compare_groups`) or, by name, the
        studentized permutation test over people.
    n_replicates, n_permutations, seed : int
        Bootstrap replicates, relabellings of the permutation test (with ``frame``), and
        their seed.

    Raises
    ------
    ResultError
        A group's sums over people in the aggregate do not fit together (edited or damaged).
    adjustment : {"step-down", "single-step"}
        The max-statistic multiplicity adjustment over all pairs of either test (default
        step-down); ``pairs.adjustment`` and ``pairs.adjustment_text`` say which was used.
    """
    t = grid_threshold(agg, threshold)
    rates = agg.rates
    part = rates[
        (rates["metric"] == metric)
        & (rates["attribute"] == attribute)
        & np.isclose(rates["threshold"], t, rtol=0, atol=GRID_TOLERANCE)
    ]
    if part.empty:
        raise ExplainError(MSG_NO_ROW.format(metric=metric, attribute=attribute, group="any"))
    table = part[
        ["group", "n_searches", "n_subjects", "errors", "rate", "ci_low", "ci_high", "small_group"]
    ].copy()
    table["small_group"] = table["small_group"].astype(bool)
    table["compared"] = (
        ~table["small_group"] & (table["group"] != UNKNOWN) & (table["n_searches"] > 0)
    )
    compared = table[table["compared"]].sort_values("rate", kind="stable")
    lowest = highest = None
    ratio = math.nan
    fisher = None
    table["ratio_to_lowest"] = math.nan
    if len(compared) >= 2:
        low_row, high_row = compared.iloc[0], compared.iloc[-1]
        lowest, highest = str(low_row["group"]), str(high_row["group"])
        if low_row["rate"] > 0:
            table.loc[table["compared"], "ratio_to_lowest"] = (
                table.loc[table["compared"], "rate"] / low_row["rate"]
            )
            ratio = float(high_row["rate"] / low_row["rate"])
        fisher = fisher_exact_test(
            int(high_row["errors"]),
            int(high_row["n_searches"]),
            int(low_row["errors"]),
            int(low_row["n_searches"]),
            group_a=highest,
            group_b=lowest,
        )
        pairs, extreme, sim_conf, reason = _clustered_comparison(
            agg, t, attribute, metric, table, lowest, highest, adjustment,
            n_replicates=n_replicates, seed=seed, test_pairs=frame is None,
        )  # fmt: skip
        # sim_conf is None only for an aggregate without the clustered statistics: then no
        # clustered test at all, with or without the frame (the page says why)
        if frame is not None and sim_conf is not None:
            pairs = _per_person_pairs(
                frame, t, attribute, metric, table, n_permutations=n_permutations, seed=seed,
                adjustment=adjustment, test=test, n_replicates=n_replicates,
            )  # fmt: skip
            reason = WHY_NULL_BOOTSTRAP if test == "bootstrap" else WHY_PERMUTATION
            extreme = pairs.pair(highest, lowest)
    else:
        pairs = extreme = sim_conf = reason = None
    return GroupComparison(
        metric=metric,
        threshold=t,
        attribute=attribute,
        table=table.sort_values("group").reset_index(drop=True),
        lowest_group=lowest,
        highest_group=highest,
        max_min_ratio=ratio,
        test=fisher,
        pairs=pairs,
        extreme_pair=extreme,
        simultaneous_confidence=sim_conf,
        test_reason=reason,
        simultaneous_method=None if sim_conf is None else SIMULTANEOUS_COLUMNS,
    )


def _per_person_pairs(
    frame: IdentificationFrame,
    threshold: float,
    attribute: str,
    metric: str,
    table: pd.DataFrame,
    *,
    n_permutations: int,
    seed: int,
    adjustment: Adjustment = DEFAULT_ADJUSTMENT,
    test: str = "bootstrap",
    n_replicates: int = 4999,
) -> GroupRatesComparison:
    """The frame's test on per-person counts (``test``) over exactly the aggregate's compared
    groups, after checking that the frame holds the same counts (so page and frame show one
    p-value)."""
    if test not in ("bootstrap", "permutation"):
        raise ExplainError(f"test must be 'bootstrap' or 'permutation', got {test!r}")
    if list(frame.sensitive_features) != [attribute]:
        raise ExplainError(
            f"the per-person frame is by {frame.sensitive_features}, not by [{attribute!r}]"
        )
    rows = frame.by_group.xs(metric, level="metric")
    compared = table[table["compared"]]
    for _, row in compared.iterrows():
        key = (float(threshold), str(row["group"]))
        if key not in rows.index:
            raise ExplainError(
                MSG_FRAME_MISMATCH.format(
                    attribute=attribute, group=row["group"], threshold=threshold,
                    what="the group or threshold is missing from the frame",
                )
            )  # fmt: skip
        mine = rows.loc[key]
        if (int(mine["errors"]), int(mine["n_searches"])) != (
            int(row["errors"]),
            int(row["n_searches"]),
        ):
            raise ExplainError(
                MSG_FRAME_MISMATCH.format(
                    attribute=attribute, group=row["group"], threshold=threshold,
                    what=f"{int(mine['errors'])} of {int(mine['n_searches'])} errors in the "
                    f"frame, {int(row['errors'])} of {int(row['n_searches'])} in the aggregate",
                )
            )  # fmt: skip
    return frame.compare_groups(
        metric,  # type: ignore[arg-type]
        threshold,
        groups=compared["group"].astype(str).tolist(),
        test=test,  # type: ignore[arg-type]
        n_permutations=n_permutations,
        n_replicates=n_replicates,
        seed=seed,
        adjustment=adjustment,
    )


def _clustered_comparison(
    agg: AggregateResult,
    threshold: float,
    attribute: str,
    metric: str,
    table: pd.DataFrame,
    lowest: str,
    highest: str,
    adjustment: Adjustment = DEFAULT_ADJUSTMENT,
    *,
    n_replicates: int = 4999,
    seed: int = 0,
    test_pairs: bool = True,
) -> tuple[GroupRatesComparison | None, PairComparison | None, float | None, str | None]:
    """Multiplicity-adjusted pair tests, simultaneous intervals (columns added to ``table``)
    and why that test: the null bootstrap from each group's sums over people where the
    aggregate keeps them (the full results' test and p-values), else Rao–Scott.
    ``test_pairs=False``: the intervals only (pairs, pair and reason None), where the
    per-person frame's test replaces the aggregate's."""
    compared = table[table["compared"]]["group"].astype(str).tolist()
    summaries = {g: agg.cluster_summary(threshold, metric, attribute, g) for g in compared}
    for column in ("sim_ci_low", "sim_ci_high", "ratio_ci_low", "ratio_ci_high"):
        table[column] = math.nan
    if any(v is None for v in summaries.values()):
        return None, None, None, None
    clean = {g: v for g, v in summaries.items() if v is not None}
    confidence = float(agg.intervals.confidence)
    _simultaneous_columns(table, ratio_to_lowest(clean, confidence))
    if not test_pairs:
        return None, None, confidence, None
    sums = {g: agg.people_sums(threshold, metric, attribute, g) for g in compared}
    if all(v is not None for v in sums.values()):
        pairs = bootstrap_compare_groups_from_sums(
            {g: v for g, v in sums.items() if v is not None},
            n_replicates=n_replicates, seed=seed, adjustment=adjustment,
        )  # fmt: skip
        reason = WHY_NULL_BOOTSTRAP_AGGREGATE
    else:
        pairs = compare_group_rates(clean, adjustment=adjustment)
        reason = WHY_RAO_SCOTT
    return pairs, pairs.pair(highest, lowest), confidence, reason


def _simultaneous_columns(table: pd.DataFrame, bounds: RatioToLowest) -> None:
    """Fill ``table``'s simultaneous rate and ratio-to-lowest columns from ``bounds``."""
    rows = table["group"].astype(str)
    for i, g in enumerate(bounds.groups):
        table.loc[rows == g, "sim_ci_low"] = float(bounds.rate_low[i, 0])
        table.loc[rows == g, "sim_ci_high"] = float(bounds.rate_high[i, 0])
        table.loc[rows == g, "ratio_ci_low"] = float(bounds.ratio_low[i, 0])
        table.loc[rows == g, "ratio_ci_high"] = float(bounds.ratio_high[i, 0])
