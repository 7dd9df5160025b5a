"""Aggregate figures of an evaluation: what a report or the app needs, and nothing per person.

An :class:`AggregateResult` holds, per threshold and per group, the counts behind FPIR and FNIR
(errors, searches, subjects) with their intervals; binned score histograms per group; the
watchlist-size scaling table; and failures to acquire per group. It holds no embeddings, no
image names, no subject ids and no individual scores, so it can be shared or shipped as an
example (``datasets/examples/``) even when the evaluation ran on real people's faces. Intervals
are computed (clustered by subject: Korn–Graubard by default) *before* aggregation, so they stay clustered by
subject without keeping the subjects.

Groups with fewer than ``min_subjects`` subjects can be withheld entirely
(:meth:`AggregateResult.from_result`); the metadata lists what was withheld, so nothing
disappears silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from lfr_eval.metrics import IdentificationFrame
from lfr_eval.results import EvaluationResult, ResultError

#: Version of the aggregate folder layout.
AGGREGATE_SCHEMA_VERSION = 1

AGGREGATE_FILE = "aggregate.json"
RATES_FILE = "rates.csv"
HISTOGRAMS_FILE = "histograms.csv"
SCALING_FILE = "scaling.csv"
ACQUISITION_FILE = "acquisition.csv"

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
)


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
    return out[list(RATE_COLUMNS)]


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


@dataclass(frozen=True, eq=False)
class AggregateResult:
    """Per-group, per-threshold aggregates of an evaluation (no per-person data).

    Attributes
    ----------
    metadata : dict
        Engine (models with hashes), runtime, dataset name/hash/sizes/attributes, protocol and
        its parameters, seed, software, watchlist size, interval settings, withheld groups.
    rates : DataFrame
        Columns :data:`RATE_COLUMNS`: for ``metric`` in (``fpir``, ``fnir``), each threshold and
        each group of each attribute (``attribute == group == "all"`` for the whole
        population): searches, subjects, errors, rate and interval.
    histograms : DataFrame
        Binned similarity counts: ``kind`` (``mated``: mate scores; ``non_mated``: best
        candidate scores), ``attribute``, ``group``, ``bin_low``, ``bin_high``, ``count``
        (empty bins left out).
    scaling : DataFrame or None
        FPIR predicted for other watchlist sizes (see
        :class:`lfr_eval.protocols.WatchlistScaling`).
    acquisition : DataFrame
        Failures to acquire per role and group.
    """

    metadata: dict
    rates: pd.DataFrame
    histograms: pd.DataFrame
    scaling: pd.DataFrame | None
    acquisition: pd.DataFrame

    # ------------------------------------------------------------------ views
    @property
    def attributes(self) -> list[str]:
        """Attributes with group rows, in the order they were computed."""
        values = self.rates["attribute"].drop_duplicates().tolist()
        return [v for v in values if v != ALL]

    @property
    def thresholds(self) -> np.ndarray:
        return np.sort(self.rates["threshold"].unique())

    @property
    def watchlist_size(self) -> int:
        return int(self.metadata["watchlist_size"])

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
        """FPIR and FNIR rows at the grid threshold nearest ``threshold``."""
        grid = self.thresholds
        nearest = float(grid[int(np.argmin(np.abs(grid - threshold)))])
        part = self.rates[np.isclose(self.rates["threshold"], nearest)]
        if attribute is not None:
            part = part[part["attribute"].isin([ALL, attribute])]
        return part.reset_index(drop=True)

    def describe_engine(self) -> str:
        engine = self.metadata["engine"]
        rec = next((m for m in engine["models"] if m["role"] == "recognizer"), None)
        name = f"{rec['name']} (sha256 {rec['sha256'][:12]}…)" if rec else "?"
        return f"{engine['backend']}: {name}"

    # ------------------------------------------------------------------ building
    @classmethod
    def from_result(
        cls,
        result: EvaluationResult,
        *,
        thresholds: Sequence[float] | np.ndarray | None = None,
        attributes: Sequence[str] | None = None,
        ci_method: str = "korn-graubard",
        n_boot: int = 1000,
        confidence: float = 0.95,
        rank: int = 1,
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
        ci_method : {"korn-graubard", "subject-bootstrap", "clopper-pearson", "wilson"}
            ``"korn-graubard"`` (default): clustered by subject (design-effect
            Clopper–Pearson); the others by name only (the binomial ones treat searches as
            independent).
        n_boot, confidence, rank, seed :
            Interval and FNIR settings (see :class:`lfr_eval.metrics.IdentificationFrame`).
        min_subjects : int
            Groups with fewer subjects (on both the mated and non-mated side) are withheld:
            their rows and histograms are left out and listed in ``metadata["withheld"]``.
        """
        attributes = list(result.attributes if attributes is None else attributes)
        grid = (
            _useful_range(result, threshold_grid())
            if thresholds is None
            else np.unique(np.asarray(thresholds, dtype=np.float64))
        )
        options = {
            "rank": rank,
            "confidence": confidence,
            "ci_method": ci_method,
            "n_boot": n_boot,
            "seed": seed,
        }
        overall = IdentificationFrame(result.searches, grid, [], **options)
        parts = [_rates_long(overall, None)]
        for attribute in attributes:
            frame = IdentificationFrame(result.searches, grid, [attribute], **options)
            parts.append(_rates_long(frame, attribute))
        rates = pd.concat(parts, ignore_index=True)
        histograms = _histograms(result, attributes)
        acquisition = result.acquisition.copy()
        withheld: list[dict] = []
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
                withheld.append({"attribute": attribute, "group": group})
                rates = rates[~((rates["attribute"] == attribute) & (rates["group"] == group))]
                histograms = histograms[
                    ~((histograms["attribute"] == attribute) & (histograms["group"] == group))
                ]
                acquisition = acquisition[
                    ~((acquisition["attribute"] == attribute) & (acquisition["group"] == group))
                ]
        scaling = result.scaling
        if scaling is not None and withheld:
            keep = np.ones(len(scaling), bool)
            for item in withheld:
                keep &= ~(
                    (scaling["group_attribute"] == item["attribute"])
                    & (scaling["group"] == item["group"])
                )
            scaling = scaling[keep]
        if scaling is not None:
            # the scaling table only needs the thresholds the curves show
            lo, hi = float(grid.min()), float(grid.max())
            scaling = scaling[
                (scaling["threshold"] >= lo - 1e-9) & (scaling["threshold"] <= hi + 1e-9)
            ]
        metadata = {
            "schema_version": AGGREGATE_SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).isoformat(),
            "source": {
                "result_created": result.created,
                "result_sha256": result.result_hash,
            },
            "engine": result.engine.to_dict(),
            "engine_key": result.engine_key,
            "runtime": result.runtime.to_dict(),
            "dataset": result.dataset.to_dict(),
            "protocol": result.protocol.to_dict(),
            "watchlist_size": result.watchlist_size,
            "n_mated": result.searches.n_mated,
            "n_non_mated": result.searches.n_non_mated,
            "rank": rank,
            "confidence": confidence,
            "ci_method": ci_method,
            "n_boot": n_boot,
            "min_subjects": min_subjects,
            "withheld": withheld,
            "software": dict(result.software),
            "timings": dict(result.timings),
        }
        return cls(
            metadata=metadata,
            rates=rates.reset_index(drop=True),
            histograms=histograms.reset_index(drop=True),
            scaling=None if scaling is None else scaling.reset_index(drop=True),
            acquisition=acquisition.reset_index(drop=True),
        )

    # ------------------------------------------------------------------ persistence
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
        files = {}
        for name, table in tables.items():
            tmp = directory / (name + ".tmp")
            table.to_csv(tmp, index=False, float_format="%.8g")
            os.replace(tmp, directory / name)
            files[name] = _sha256(directory / name)
        meta = dict(self.metadata)
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
            Missing ``aggregate.json``, another layout version, or altered tables.
        """
        directory = Path(directory)
        path = directory / AGGREGATE_FILE
        if not path.is_file():
            raise ResultError(
                f"{directory} holds no aggregate results ({AGGREGATE_FILE} missing); make one "
                "with AggregateResult.from_result(...).save(folder)"
            )
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ResultError(f"{path} is not valid JSON: {exc}") from exc
        if meta.get("schema_version") != AGGREGATE_SCHEMA_VERSION:
            raise ResultError(
                f"aggregate results in {directory} use layout version "
                f"{meta.get('schema_version')}; this lfr-eval reads {AGGREGATE_SCHEMA_VERSION}"
            )
        files = meta.pop("files", {})
        for name, expected in files.items():
            if not (directory / name).is_file() or _sha256(directory / name) != expected:
                raise ResultError(
                    f"{name} in {directory} does not match the hash in {AGGREGATE_FILE}: the "
                    "aggregate was changed after it was written"
                )

        def read(name: str) -> pd.DataFrame | None:
            if name not in files:
                return None
            return pd.read_csv(directory / name, keep_default_na=False, na_values=[""])

        rates = read(RATES_FILE)
        histograms = read(HISTOGRAMS_FILE)
        acquisition = read(ACQUISITION_FILE)
        if rates is None or histograms is None or acquisition is None:
            raise ResultError(f"aggregate results in {directory} lack a table")
        for table in (rates, histograms, acquisition):
            for column in ("group", "attribute"):
                if column in table.columns:
                    table[column] = table[column].astype(str)
        scaling = read(SCALING_FILE)
        if scaling is not None:
            scaling["group"] = scaling["group"].astype(str)
        return cls(meta, rates, histograms, scaling, acquisition)


def as_aggregate(result: EvaluationResult | AggregateResult, **options: object) -> AggregateResult:
    """``result`` itself if already aggregated, else :meth:`AggregateResult.from_result`."""
    if isinstance(result, AggregateResult):
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return AggregateResult.from_result(result, **options)  # type: ignore[arg-type]
