"""Aggregate figures of an evaluation: what a report or the app needs, and nothing per person.

An :class:`AggregateResult` holds, per threshold and per group, the counts behind FPIR and FNIR
(errors, searches, subjects) with their intervals; binned score histograms per group; the
watchlist-size scaling table; and failures to acquire per group. It holds no embeddings, no
image names, no subject ids and no individual scores, so it can be shared or shipped as an
example (``datasets/examples/``) even when the evaluation ran on real people's faces. Intervals
are computed (clustered by subject: design-effect Jeffreys by default) *before* aggregation, so
they stay clustered by subject without keeping the subjects.

Groups with fewer than ``min_subjects`` subjects can be withheld entirely
(:meth:`AggregateResult.from_result`); :attr:`AggregateResult.withheld` lists what was withheld,
so nothing disappears silently.

Tables are tidy: every row names its ``attribute`` and ``group`` (``"all"``/``"all"`` for the
whole population, once), and a group made of exactly the same searches as another (an attribute
that is ``"unknown"`` for every mated search, say) carries the same interval as that one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from lfr_eval.errors import ResultError
from lfr_eval.metrics import IdentificationFrame, SearchSet
from lfr_eval.metrics._clustered import ClusterSummary, summary_of_row
from lfr_eval.metrics._group_frame import CiMethod
from lfr_eval.metrics._people_sums import PeopleSums, people_sums_of_row
from lfr_eval.results import (
    EvaluationResult,
    IntervalSettings,
    Provenance,
    runtime_from_dict,
)

#: Version of the aggregate folder layout. 2: typed provenance under ``provenance`` and the
#: rank table (``ranks.csv``); version 1 folders (flat metadata) are still read.
AGGREGATE_SCHEMA_VERSION = 2

#: Layout versions :meth:`AggregateResult.load` reads.
READABLE_AGGREGATE_VERSIONS = (1, 2)

AGGREGATE_FILE = "aggregate.json"
RATES_FILE = "rates.csv"
HISTOGRAMS_FILE = "histograms.csv"
SCALING_FILE = "scaling.csv"
ACQUISITION_FILE = "acquisition.csv"
RANKS_FILE = "ranks.csv"

#: Interval method of aggregates unless asked otherwise (clustered by person).
DEFAULT_CI_METHOD: CiMethod = "design-effect-jeffreys"

#: Default deepest rank of the rank table (CMC).
DEFAULT_MAX_RANK = 10

#: Label of the "whole population" rows (attribute and group).
ALL = "all"

#: Score histogram bin width (cosine similarity units).
HISTOGRAM_BIN = 0.01

RATE_COLUMNS = (
    "metric",
    "threshold",
    "attribute",
    "group",
    "n_searches",
    "n_subjects",
    "errors",
    "rate",
    "ci_low",
    "ci_high",
    "ci_method",
    "small_group",
    "insufficient_data",
    "rate_variance",
    "variance_df",
    "effective_people",
    "top_people",
    "searches_fourth_moment",
    "searches_max",
    "errors_squared",
    "errors_searches",
    "errors_squared_per_search",
    "searches_histogram",
)

#: Columns of :attr:`AggregateResult.ranks`: the identification rate at rank r (share of mated
#: searches whose mate is among the r best candidates, whatever its score) -- the CMC.
RANK_COLUMNS = (
    "rank",
    "attribute",
    "group",
    "n_searches",
    "n_subjects",
    "hits",
    "rate",
    "ci_low",
    "ci_high",
    "ci_method",
    "small_group",
    "insufficient_data",
)

#: Columns of the interval that rows over the same searches share.
_INTERVAL_COLUMNS = ("ci_low", "ci_high", "ci_method")

#: The clustered interval's sufficient statistics, shared the same way.
_CLUSTER_COLUMNS = (
    "rate_variance",
    "variance_df",
    "effective_people",
    "top_people",
    "searches_fourth_moment",
    "searches_max",
)


#: Columns written with every digit (17 significant): a bound computed from an aggregate read
#: back must be the full data's, not one from statistics rounded to the tables' 8 digits.
_EXACT_COLUMNS = (
    "rate_variance",
    "variance_df",
    "effective_people",
    "searches_fourth_moment",
    "searches_max",
    "errors_squared_per_search",
)


def _exact_floats(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``table`` with its float ``columns`` as shortest round-trip text (NaN stays empty)."""
    present = [c for c in columns if c in table.columns]
    if not present:
        return table
    out = table.copy()
    for column in present:
        values = pd.to_numeric(out[column], errors="coerce").to_numpy(dtype=np.float64)
        out[column] = [None if np.isnan(v) else repr(float(v)) for v in values]
    return out


def threshold_grid(step: float = 0.0025) -> np.ndarray:
    """Regular similarity thresholds over [-1, 1] (rounded so they print cleanly)."""
    n = round(2.0 / step) + 1
    return np.round(np.linspace(-1.0, 1.0, n), 6)


def _useful_range(result: EvaluationResult, grid: np.ndarray) -> np.ndarray:
    """The part of ``grid`` where FPIR or FNIR changes (plus one step either side): beyond it
    FPIR is 1 and FNIR 0, or FPIR 0 and FNIR 1, and rows say nothing new."""
    s = result.searches
    scores = np.concatenate([s.non_mated_best, s.mate_scores]).astype(np.float64)
    scores = scores[np.isfinite(scores)]  # failures to acquire (-inf) place no threshold
    if scores.size == 0:
        return grid
    low = np.searchsorted(grid, scores.min(), side="right") - 2
    high = np.searchsorted(grid, scores.max(), side="left") + 2
    return grid[max(low, 0) : min(high, len(grid))]


def cluster_summary(row: pd.Series | Mapping[str, Any]) -> ClusterSummary | None:
    """The Korn–Graubard sufficient statistics of one ``rates`` row (None in old aggregates;
    without the top people's counts in aggregates written before the monotone bound:
    :func:`lfr_eval.metrics.summary_of_row`)."""
    return summary_of_row(row)


def _rates_long(frame: IdentificationFrame, attribute: str | None) -> pd.DataFrame:
    table = frame.overall if attribute is None else frame.by_group
    out = table.reset_index()
    if attribute is None:
        out["attribute"] = ALL
        out["group"] = ALL
    else:
        out = out.rename(columns={attribute: "group"})
        out["attribute"] = attribute
        out["group"] = out["group"].astype(str)
    return out[[c for c in RATE_COLUMNS if c in out.columns]]


def _selection_keys(
    searches: SearchSet, attributes: Sequence[str]
) -> dict[tuple[str, str, str], str]:
    """Which searches each (metric, attribute, group) row counts, as a digest of its mask:
    rows with the same digest are computed over exactly the same searches."""
    keys: dict[tuple[str, str, str], str] = {}
    for metric, groups, n in (
        ("fnir", searches.mated_groups, searches.n_mated),
        ("fpir", searches.non_mated_groups, searches.n_non_mated),
    ):
        keys[(metric, ALL, ALL)] = hashlib.sha1(np.ones(n, bool).tobytes()).hexdigest()
        for attribute in attributes:
            if attribute not in groups.columns or n == 0:
                continue
            labels = groups[attribute].astype(str).to_numpy()
            for group in np.unique(labels):
                mask = labels == group
                keys[(metric, attribute, str(group))] = hashlib.sha1(mask.tobytes()).hexdigest()
    return keys


def _share_intervals(
    table: pd.DataFrame, keys: Mapping[tuple[str, str, str], str], metric: str | None, by: str
) -> pd.DataFrame:
    """Give every row the interval of the first row over the same searches at the same ``by``
    (threshold or rank), so one set of searches has one interval wherever it appears.

    A bootstrap run once per attribute would otherwise give the same searches slightly
    different intervals in each attribute's table."""
    if table.empty:
        return table
    metrics = table["metric"] if metric is None else pd.Series(metric, index=table.index)
    selection = [
        keys.get((m, a, g), f"{m}|{a}|{g}")
        for m, a, g in zip(metrics, table["attribute"], table["group"], strict=True)
    ]
    out = table.reset_index(drop=True)
    positions = pd.Series(np.arange(len(out)))
    first = positions.groupby([pd.Series(selection), out[by]], sort=False).transform("min")
    columns = [c for c in (*_INTERVAL_COLUMNS, *_CLUSTER_COLUMNS) if c in out.columns]
    out.loc[:, columns] = out.loc[first.to_numpy(), columns].to_numpy()
    return out


def cmc_table(
    searches: SearchSet,
    attributes: Sequence[str] = (),
    max_rank: int = DEFAULT_MAX_RANK,
    **interval_options: Any,
) -> pd.DataFrame:
    """Identification rate at ranks 1..``max_rank`` (the CMC), overall and per group.

    The rate at rank r is the share of mated searches whose mate is among the r best
    candidates (distinct watchlist subjects), whatever its score: 1 - FNIR(N, r, T) at the
    lowest threshold, T = -1, so its interval comes from the same machinery, and the same
    method, as every FNIR interval. Ties rank in the mate's favour (NIST FRTE; bob.measure
    counts tied non-mates against it). Failures to acquire, where counted, are misses at every
    rank. Groups without mated searches have no rows.

    Parameters
    ----------
    searches : SearchSet
    attributes : sequence of str
        Group attributes (columns of ``searches.mated_groups``).
    max_rank : int
        Deepest rank, >= 1 (capped at the watchlist size N).
    **interval_options
        ``ci_method``, ``confidence``, ``n_boot``, ``seed`` of
        :class:`lfr_eval.metrics.IdentificationFrame`.

    Returns
    -------
    DataFrame
        Columns :data:`RANK_COLUMNS`, the whole population first.
    """
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    parts = []
    for r in range(1, min(max_rank, max(searches.watchlist_size, 1)) + 1):
        for attribute in [None, *attributes]:
            frame = IdentificationFrame(
                searches,
                [-1.0],
                [] if attribute is None else [attribute],
                rank=r,
                **interval_options,
            )
            table = _rates_long(frame, attribute)
            # groups with no mated search (strangers only) have no rank to report
            table = table[(table["metric"] == "fnir") & (table["n_searches"] > 0)]
            parts.append(
                pd.DataFrame(
                    {
                        "rank": r,
                        "attribute": table["attribute"],
                        "group": table["group"],
                        "n_searches": table["n_searches"],
                        "n_subjects": table["n_subjects"],
                        "hits": table["n_searches"] - table["errors"],
                        "rate": 1.0 - table["rate"],
                        "ci_low": 1.0 - table["ci_high"],
                        "ci_high": 1.0 - table["ci_low"],
                        "ci_method": table["ci_method"],
                        "small_group": table["small_group"],
                        "insufficient_data": table["insufficient_data"],
                    }
                )
            )
    out = pd.concat(parts, ignore_index=True)[list(RANK_COLUMNS)]
    out = out.sort_values(["attribute", "group", "rank"], kind="stable", key=_all_first)
    return _share_intervals(
        out.reset_index(drop=True), _selection_keys(searches, attributes), "fnir", "rank"
    )


def _all_first(column: pd.Series) -> pd.Series:
    """Sort key putting the whole-population rows ("all") before the groups."""
    if column.dtype.kind in "iuf":
        return column
    return column.map(lambda v: (v != ALL, str(v)))


def _histograms(result: EvaluationResult, attributes: Sequence[str]) -> pd.DataFrame:
    s = result.searches
    edges = np.round(np.arange(-1.0, 1.0 + HISTOGRAM_BIN / 2, HISTOGRAM_BIN), 6)
    rows = []
    for kind, scores, groups in (
        ("mated", np.asarray(s.mate_scores, np.float64), s.mated_groups),
        ("non_mated", np.asarray(s.non_mated_best, np.float64), s.non_mated_groups),
    ):
        selections = [(ALL, ALL, np.ones(len(scores), bool))]
        for attribute in attributes:
            if attribute in groups.columns and len(scores):
                labels = groups[attribute].astype(str).to_numpy()
                selections += [(attribute, g, labels == g) for g in sorted(set(labels))]
        scored = np.isfinite(scores)  # failures to acquire (-inf) have no score to bin
        for attribute, group, mask in selections:
            counts, _ = np.histogram(np.clip(scores[mask & scored], -1, 1), bins=edges)
            nonzero = np.flatnonzero(counts)
            rows += [
                (kind, attribute, group, float(edges[i]), float(edges[i + 1]), int(counts[i]))
                for i in nonzero
            ]
    return pd.DataFrame(
        rows, columns=["kind", "attribute", "group", "bin_low", "bin_high", "count"]
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class WithheldGroup:
    """A group left out of an aggregate because it had fewer than ``min_subjects`` subjects."""

    attribute: str
    group: str

    def describe(self) -> str:
        return f"{self.attribute} = {self.group}"


@dataclass(frozen=True, eq=False)
class AggregateResult:
    """Per-group, per-threshold aggregates of an evaluation (no per-person data).

    Attributes
    ----------
    provenance : Provenance
        Engine (models with hashes), runtime, dataset, protocol and seed, software, interval
        settings and the hash of the evaluation result it was made from.
    rates : DataFrame
        Columns :data:`RATE_COLUMNS`: for ``metric`` in (``fpir``, ``fnir``), each threshold and
        each group of each attribute (``attribute == group == "all"`` for the whole
        population, once): searches, subjects, errors, rate and interval.
    histograms : DataFrame
        Binned similarity counts: ``kind`` (``mated``: mate scores; ``non_mated``: best
        candidate scores), ``attribute``, ``group``, ``bin_low``, ``bin_high``, ``count``
        (empty bins left out).
    scaling : DataFrame or None
        FPIR predicted for other watchlist sizes (see
        :class:`lfr_eval.protocols.WatchlistScaling`).
    acquisition : DataFrame
        Failures to acquire per role and group.
    watchlist_size : int
        N, subjects on the evaluated watchlist.
    n_mated, n_non_mated : int
        Searches of each kind (failures to acquire included when counted).
    rank : int
        Rank R of FNIR(N, R, T) in :attr:`rates`.
    ranks : DataFrame or None
        Columns :data:`RANK_COLUMNS`: identification rate at ranks 1..k (the CMC) overall and
        per group (None for aggregates written before it was recorded).
    min_subjects : int
        Groups with fewer subjects were withheld.
    withheld : tuple of WithheldGroup
        The groups withheld.
    timings : mapping of str to float
        Seconds the evaluation spent (see :attr:`EvaluationResult.timings`).
    created : str
        ISO 8601 UTC time the aggregate was made.
    """

    provenance: Provenance
    rates: pd.DataFrame
    histograms: pd.DataFrame
    scaling: pd.DataFrame | None
    acquisition: pd.DataFrame
    watchlist_size: int
    n_mated: int
    n_non_mated: int
    rank: int = 1
    ranks: pd.DataFrame | None = None
    min_subjects: int = 1
    withheld: tuple[WithheldGroup, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    schema_version: int = AGGREGATE_SCHEMA_VERSION

    # ------------------------------------------------------------------ views
    @property
    def intervals(self) -> IntervalSettings:
        """How this aggregate's intervals were made."""
        if self.provenance.intervals is None:  # pragma: no cover - set by every constructor
            raise ResultError("aggregate results record no interval settings")
        return self.provenance.intervals

    @property
    def result_sha256(self) -> str:
        """The hash of the evaluation result this aggregate was made from
        (:func:`lfr_eval.results.result_sha256`)."""
        return self.provenance.result_sha256

    @property
    def attributes(self) -> list[str]:
        """Attributes with group rows, in the order they were computed."""
        values = self.rates["attribute"].drop_duplicates().tolist()
        return [v for v in values if v != ALL]

    @property
    def thresholds(self) -> np.ndarray:
        return np.sort(self.rates["threshold"].unique())

    def groups(self, attribute: str) -> list[str]:
        part = self.rates[self.rates["attribute"] == attribute]
        return sorted(part["group"].unique().tolist())

    def curve(self, metric: str, attribute: str = ALL, group: str = ALL) -> pd.DataFrame:
        """One group's rate curve: rows by ascending threshold."""
        part = self.rates[
            (self.rates["metric"] == metric)
            & (self.rates["attribute"] == attribute)
            & (self.rates["group"] == group)
        ]
        return part.sort_values("threshold").reset_index(drop=True)

    def at_threshold(self, threshold: float, attribute: str | None = None) -> pd.DataFrame:
        """FPIR and FNIR rows at the grid threshold nearest ``threshold`` (whole population and,
        when given, the groups of ``attribute``; every attribute's when None)."""
        grid = self.thresholds
        nearest = float(grid[int(np.argmin(np.abs(grid - threshold)))])
        part = self.rates[np.isclose(self.rates["threshold"], nearest)]
        if attribute is not None:
            part = part[part["attribute"].isin([ALL, attribute])]
        return part.reset_index(drop=True)

    def summary(
        self, thresholds: Sequence[float], attributes: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """FPIR, FNIR and TPIR with intervals at the grid thresholds nearest ``thresholds``.

        Tidy: one row per (attribute, group, threshold); the whole population once
        (``attribute == group == "all"``), then the groups of each attribute in ``attributes``
        (default: all). Columns ``threshold``, ``attribute``, ``group``, then for ``fpir`` and
        ``fnir`` the rate, ``*_ci_low``, ``*_ci_high``, ``*_errors``, ``*_searches``,
        ``*_subjects``, ``*_small_group``, and ``tpir``. A group with searches of one kind
        only has NaN for the other kind.
        """
        wanted = self.attributes if attributes is None else list(attributes)
        unknown = [a for a in wanted if a not in self.attributes]
        if unknown:
            raise ResultError(
                f"no attribute {', '.join(map(repr, unknown))} in these results; they have "
                f"{', '.join(self.attributes) or 'none'}"
            )
        grid = self.thresholds
        chosen = sorted({float(grid[int(np.argmin(np.abs(grid - t)))]) for t in thresholds})
        rates = self.rates[
            self.rates["attribute"].isin([ALL, *wanted])
            & np.isin(self.rates["threshold"].to_numpy(), chosen)
        ]
        keys = ["threshold", "attribute", "group"]
        sides = []
        for metric in ("fpir", "fnir"):
            part = rates[rates["metric"] == metric][
                keys
                + [
                    "rate",
                    "ci_low",
                    "ci_high",
                    "errors",
                    "n_searches",
                    "n_subjects",
                    "small_group",
                ]
            ]
            part = part.rename(
                columns={
                    "rate": metric,
                    "ci_low": f"{metric}_ci_low",
                    "ci_high": f"{metric}_ci_high",
                    "errors": f"{metric}_errors",
                    "n_searches": f"{metric}_searches",
                    "n_subjects": f"{metric}_subjects",
                    "small_group": f"{metric}_small_group",
                }
            )
            sides.append(part)
        out = sides[0].merge(sides[1], on=keys, how="outer")
        out["tpir"] = 1.0 - out["fnir"]
        order = {a: i for i, a in enumerate([ALL, *wanted])}
        out = out.sort_values(
            ["threshold", "attribute", "group"],
            key=lambda c: c.map(order) if c.name == "attribute" else _all_first(c),
            kind="stable",
        )
        return out.reset_index(drop=True)

    def cluster_summary(
        self, threshold: float, metric: str = "fpir", attribute: str = ALL, group: str = ALL
    ) -> ClusterSummary | None:
        """The clustered interval's sufficient statistics at the grid threshold nearest
        ``threshold`` (None for aggregates made before they were recorded): pass them to
        :func:`lfr_eval.claims.check_fpir_claim` (``cluster_summary=``) for a bound clustered by
        person from aggregate figures alone."""
        rows = self.at_threshold(threshold)
        rows = rows[
            (rows["metric"] == metric) & (rows["attribute"] == attribute) & (rows["group"] == group)
        ]
        return cluster_summary(rows.iloc[0]) if len(rows) else None

    def people_sums(
        self, threshold: float, metric: str = "fpir", attribute: str = ALL, group: str = ALL
    ) -> PeopleSums | None:
        """One group's sums over people and searches-per-person histogram at the grid
        threshold nearest ``threshold``: what the null bootstrap group test needs
        (:func:`lfr_eval.metrics.bootstrap_compare_groups_from_sums`); None for aggregates
        made before they were recorded. :class:`~lfr_eval.errors.ResultError` where the row's
        sums do not fit together (edited or damaged)."""
        rows = self.at_threshold(threshold)
        rows = rows[
            (rows["metric"] == metric) & (rows["attribute"] == attribute) & (rows["group"] == group)
        ]
        return people_sums_of_row(rows.iloc[0]) if len(rows) else None

    def describe_engine(self) -> str:
        return self.provenance.describe_engine()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_result(
        cls,
        result: EvaluationResult,
        *,
        thresholds: Sequence[float] | np.ndarray | None = None,
        attributes: Sequence[str] | None = None,
        ci_method: CiMethod = DEFAULT_CI_METHOD,
        n_boot: int = 1000,
        confidence: float = 0.95,
        rank: int = 1,
        max_rank: int | None = None,
        min_subjects: int = 1,
        seed: int = 0,
    ) -> AggregateResult:
        """Aggregate an evaluation result.

        Parameters
        ----------
        result : EvaluationResult
        thresholds : array_like, optional
            Similarity thresholds in [-1, 1]; default a 0.0025 grid over the range where the
            rates change.
        attributes : sequence of str, optional
            Group attributes (default: all of the result's).
        ci_method : str
            ``"design-effect-jeffreys"`` (default): clustered by subject (the Jeffreys
            interval of the design-effect effective sample size); ``"korn-graubard"`` (the
            same with exact Clopper–Pearson ends) and the others by name only (the binomial
            ones treat searches as independent).
        n_boot, confidence, rank, seed :
            Interval and FNIR settings (see :class:`lfr_eval.metrics.IdentificationFrame`).
        max_rank : int, optional
            Deepest rank of the rank table (CMC); default ``min(10, N)``; 0 for none.
        min_subjects : int
            Groups with fewer subjects (on both the mated and non-mated side) are withheld:
            their rows and histograms are left out and listed in :attr:`withheld`.
        """
        attributes = list(result.attributes if attributes is None else attributes)
        grid = (
            _useful_range(result, threshold_grid())
            if thresholds is None
            else np.unique(np.asarray(thresholds, dtype=np.float64))
        )

        def frame(sensitive: list[str]) -> IdentificationFrame:
            return IdentificationFrame(
                result.searches,
                grid,
                sensitive,
                rank=rank,
                confidence=confidence,
                ci_method=ci_method,
                n_boot=n_boot,
                seed=seed,
            )

        overall = frame([])
        parts = [_rates_long(overall, None)]
        for attribute in attributes:
            parts.append(_rates_long(frame([attribute]), attribute))
        keys = _selection_keys(result.searches, attributes)
        rates = _share_intervals(pd.concat(parts, ignore_index=True), keys, None, "threshold")
        depth = min(DEFAULT_MAX_RANK, result.watchlist_size) if max_rank is None else max_rank
        ranks = None
        if depth > 0 and result.searches.n_mated:
            ranks = cmc_table(
                result.searches,
                attributes,
                depth,
                confidence=confidence,
                ci_method=ci_method,
                n_boot=n_boot,
                seed=seed,
            )
        histograms = _histograms(result, attributes)
        acquisition = result.acquisition.copy()
        withheld: list[WithheldGroup] = []
        if min_subjects > 1:
            subjects = (
                rates[rates["attribute"] != ALL]
                .groupby(["attribute", "group", "metric"])["n_subjects"]
                .max()
                .unstack("metric")
                .fillna(0)
            )
            small = subjects[(subjects.max(axis=1) < min_subjects)].index.tolist()
            for attribute, group in small:
                withheld.append(WithheldGroup(str(attribute), str(group)))

                def keep(table: pd.DataFrame, column: str = "attribute") -> pd.DataFrame:
                    drop = (table[column] == attribute) & (table["group"] == group)  # noqa: B023
                    return table[~drop]

                rates = keep(rates)
                histograms = keep(histograms)
                acquisition = keep(acquisition)
                if ranks is not None:
                    ranks = keep(ranks)
        scaling = result.scaling
        if scaling is not None and withheld:
            drop = np.zeros(len(scaling), bool)
            for item in withheld:
                drop |= (scaling["group_attribute"] == item.attribute) & (
                    scaling["group"] == item.group
                )
            scaling = scaling[~drop]
        if scaling is not None:
            # the scaling table only needs the thresholds the curves show
            lo, hi = float(grid.min()), float(grid.max())
            scaling = scaling[
                (scaling["threshold"] >= lo - 1e-9) & (scaling["threshold"] <= hi + 1e-9)
            ]
        intervals = IntervalSettings(
            method=overall.ci_method,
            confidence=float(confidence),
            n_boot=int(n_boot) if "bootstrap" in overall.ci_method else None,
            seed=int(seed),
        )
        return cls(
            provenance=result.provenance.with_intervals(intervals),
            rates=rates.reset_index(drop=True),
            histograms=histograms.reset_index(drop=True),
            scaling=None if scaling is None else scaling.reset_index(drop=True),
            acquisition=acquisition.reset_index(drop=True),
            watchlist_size=result.watchlist_size,
            n_mated=int(result.searches.n_mated),
            n_non_mated=int(result.searches.n_non_mated),
            rank=int(rank),
            ranks=None if ranks is None else ranks.reset_index(drop=True),
            min_subjects=int(min_subjects),
            withheld=tuple(withheld),
            timings=dict(result.timings),
        )

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """``aggregate.json``'s content (without the tables' hashes)."""
        return {
            "schema_version": self.schema_version,
            "created": self.created,
            "provenance": self.provenance.to_dict(),
            "watchlist_size": self.watchlist_size,
            "n_mated": self.n_mated,
            "n_non_mated": self.n_non_mated,
            "rank": self.rank,
            "min_subjects": self.min_subjects,
            "withheld": [{"attribute": w.attribute, "group": w.group} for w in self.withheld],
            "timings": dict(self.timings),
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``aggregate.json`` and CSV tables (``aggregate.json`` last, with their hashes)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tables = {
            RATES_FILE: self.rates,
            HISTOGRAMS_FILE: self.histograms,
            ACQUISITION_FILE: self.acquisition,
        }
        if self.scaling is not None:
            tables[SCALING_FILE] = self.scaling
        if self.ranks is not None:
            tables[RANKS_FILE] = self.ranks
        files = {}
        for name, table in tables.items():
            tmp = directory / (name + ".tmp")
            _exact_floats(table, _EXACT_COLUMNS).to_csv(tmp, index=False, float_format="%.8g")
            os.replace(tmp, directory / name)
            files[name] = _sha256(directory / name)
        for stale in (SCALING_FILE, RANKS_FILE):
            if stale not in files and (directory / stale).exists():
                (directory / stale).unlink()
        meta = self.to_dict()
        meta["files"] = files
        tmp = directory / (AGGREGATE_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
        os.replace(tmp, directory / AGGREGATE_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> AggregateResult:
        """Read a folder written by :meth:`save`, checking the tables' hashes.

        Raises
        ------
        ResultError
            Missing ``aggregate.json``, another layout version, a missing field, or altered
            tables.
        """
        directory = Path(directory)
        path = directory / AGGREGATE_FILE
        if not path.is_file():
            raise ResultError(
                f"{directory} holds no aggregate results ({AGGREGATE_FILE} missing); make one "
                "with 'lfr-eval report' or AggregateResult.from_result(...).save(folder)"
            )
        from lfr_eval.limits import load_json

        meta = load_json(path.read_bytes(), source=str(path), error=ResultError)
        if not isinstance(meta, dict) or meta.get("schema_version") not in (
            READABLE_AGGREGATE_VERSIONS
        ):
            found = meta.get("schema_version") if isinstance(meta, dict) else None
            raise ResultError(
                f"aggregate results in {directory} use layout version {found}; this lfr-eval "
                f"reads versions {', '.join(map(str, READABLE_AGGREGATE_VERSIONS))}"
            )
        files = meta.pop("files", {})
        for name, expected in files.items():
            if not (directory / name).is_file() or _sha256(directory / name) != expected:
                raise ResultError(
                    f"{name} in {directory} does not match the hash in {AGGREGATE_FILE}: the "
                    "aggregate was changed after it was written"
                )

        tables = _read_tables(directory, files)
        try:
            fields = _fields_v1(meta) if meta["schema_version"] == 1 else _fields_v2(meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultError(
                f"{path} lacks or garbles a field ({exc}); re-make the aggregate"
            ) from exc
        return cls(
            rates=tables.rates,
            histograms=tables.histograms,
            acquisition=tables.acquisition,
            scaling=tables.scaling,
            ranks=tables.ranks,
            **fields,
        )


class _Tables(NamedTuple):
    rates: pd.DataFrame
    histograms: pd.DataFrame
    acquisition: pd.DataFrame
    scaling: pd.DataFrame | None
    ranks: pd.DataFrame | None


def _read_tables(directory: Path, files: Mapping[str, str]) -> _Tables:
    """The CSV tables of an aggregate folder (hashes already checked), labels as text."""

    def read(name: str) -> pd.DataFrame | None:
        if name not in files:
            return None
        table = pd.read_csv(directory / name, keep_default_na=False, na_values=[""])
        for column in ("group", "attribute"):
            if column in table.columns:
                table[column] = table[column].astype(str)
        if "top_people" in table.columns:
            # an empty cell (no one with an error) reads back as NaN
            table["top_people"] = table["top_people"].fillna("").astype(str)
        return table

    rates, histograms, acquisition = (
        read(RATES_FILE),
        read(HISTOGRAMS_FILE),
        read(ACQUISITION_FILE),
    )
    if rates is None or histograms is None or acquisition is None:
        raise ResultError(f"aggregate results in {directory} lack a table")
    return _Tables(rates, histograms, acquisition, read(SCALING_FILE), read(RANKS_FILE))


def _fields_v2(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "provenance": Provenance.from_dict(meta["provenance"]),
        "watchlist_size": int(meta["watchlist_size"]),
        "n_mated": int(meta["n_mated"]),
        "n_non_mated": int(meta["n_non_mated"]),
        "rank": int(meta["rank"]),
        "min_subjects": int(meta["min_subjects"]),
        "withheld": tuple(WithheldGroup(w["attribute"], w["group"]) for w in meta["withheld"]),
        "timings": dict(meta["timings"]),
        "created": str(meta["created"]),
        "schema_version": int(meta["schema_version"]),
    }


def _fields_v1(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Version 1 kept provenance flat beside the counts; its source hash was computed another
    way (content hash), so it names no result folder written today."""
    method = str(meta["ci_method"])
    provenance = Provenance.from_dict(
        {
            "engine": meta["engine"],
            "engine_key": meta["engine_key"],
            "runtime": meta["runtime"],
            "scoring_runtime": None,
            "dataset": meta["dataset"],
            "protocol": meta["protocol"],
            "software": meta["software"],
            "result_sha256": meta["source"]["result_sha256"],
            "result_created": meta["source"]["result_created"],
            "intervals": {
                "method": method,
                "confidence": meta["confidence"],
                "n_boot": meta["n_boot"] if "bootstrap" in method else None,
            },
        }
    )
    fields = _fields_v2(
        {
            **meta,
            "provenance": provenance.to_dict(),
            "schema_version": AGGREGATE_SCHEMA_VERSION,
        }
    )
    runtime_from_dict(meta["runtime"])  # fail here, not at first use, on a garbled runtime
    return fields


def as_aggregate(result: EvaluationResult | AggregateResult, **options: Any) -> AggregateResult:
    """``result`` itself if already aggregated, else :meth:`AggregateResult.from_result`.

    Warnings from the metrics (e.g. a group with no searches) reach the caller."""
    if isinstance(result, AggregateResult):
        return result
    return AggregateResult.from_result(result, **options)
