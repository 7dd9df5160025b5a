"""The NPL design: measure false matches against a large filler gallery, then scale to a
deployed watchlist of size N.

NPL's equitability study (domain brief, section 4) searched a crowd against a watchlist padded
with a large demographically balanced **filler** set, then scaled the false-positive rate to the
size and composition of the watchlist a force deploys. Here:

1. the manifest is split by subject into *volunteers* (enrolled; their other images are mated
   searches), *fillers* (one image per subject: the reference gallery) and *strangers* (the
   non-mated searches);
2. each non-mated search is compared with every filler, which gives its own false-match rate
   ``FMR_p(T)`` = fillers scoring ``>= T`` / fillers (per filler group when the fillers carry
   a demographic attribute);
3. FPIR for a watchlist of N entries follows **analytically** as the mean over searches of
   ``1 - prod_g (1 - FMR_pg(T)) ** (N * w_g)`` (``w_g``: the watchlist's share of group g; one
   group with ``w = 1`` when composition is ignored), which for small rates is ``N * FMR``; and
   **empirically** by drawing many galleries of N fillers (stratified by group when a
   composition is given) and counting the searches whose best filler score reaches T.

The analytic form treats each search's comparisons as independent draws at its own FMR (with
replacement), which
keeps per-search differences (some faces draw false matches far more than others) that a
single pooled FMR would hide. The resampled form needs no such assumption but cannot go beyond
the number of fillers measured; when N is a large share of the fillers it runs a little above
the analytic form, because a gallery drawn without replacement holds more distinct fillers.

Where no non-mated search meets any filler at a threshold, every bootstrap replicate (and every
resampled gallery) gives 0 and a percentile interval would collapse to 0 – 0, which is not
certainty. Those rows get the exact one-sided upper bound of :func:`zero_false_match_upper`
instead (about ``3 N / (n F)`` at 95% for n searches and F fillers: the rule of three scaled to
N); their ``interval`` column says so.

The fillers enter as :class:`FillerCounts`: per search, the fillers scoring at or above each
threshold of a grid (made in one streaming pass, never the searches × fillers matrix). A
search whose counts are all zero and whose candidates are ``-inf`` is a non-mated search that
failed to acquire (no face, no template): it is counted as a search that returned no candidate
(NIST FRTE's convention), so it lowers FPIR and raises n.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lfr_eval.datasets import ROLES, UNKNOWN, Manifest
from lfr_eval.errors import ProtocolError
from lfr_eval.metrics._intervals import summarise_subjects
from lfr_eval.protocols._open_set import _cap_per_subject
from lfr_eval.protocols._scaling import (
    ANALYTIC,
    HISTOGRAM_ROWS,
    POOLED,
    SCALED_KORN_GRAUBARD,
    SCALED_ZERO,
    ScaledInterval,
    SearchClusters,
    SearchValue,
    SearchValueHistogram,
    composite_fmr,
    draws_per_group,
    effective_people,
    extrapolation_range,
    interval_from_summary,
    largest_person_sum,
    per_search_fpir,
    per_search_fpir_model,
    pooled_interval_from_rate,
    pooled_map_from_rates,
    reorder_interval,
    search_value_histogram,
    search_value_histograms,
    within_fillers,
    zero_exponent,
)
from lfr_eval.wording import plural

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from lfr_eval.metrics import ClusterSummary

MSG_TOO_FEW_SUBJECTS = (
    "the NPL design needs volunteers (subjects with {needed}+ images), fillers and strangers; "
    "this manifest gives {volunteers}, {fillers} and {strangers}. Use a larger dataset or "
    "smaller fractions"
)
MSG_COMPOSITION = (
    "watchlist composition must give a share in [0, 1] for labels of {attribute!r} found among "
    "the fillers ({labels}); got {composition}"
)
#: ``interval`` column values of :attr:`WatchlistScaling.table`
INTERVAL_BOOTSTRAP = "subject-bootstrap"
INTERVAL_RESAMPLED = "gallery-resampling"
INTERVAL_EXACT_ZERO = SCALED_ZERO
INTERVAL_NONE = "none"

#: Columns of :attr:`WatchlistScaling.table`.
SCALING_COLUMNS = (
    "method",
    "watchlist_size",
    "threshold",
    "fpir",
    "lower",
    "upper",
    "interval",
    "group_attribute",
    "group",
    "n_searches",
    "upper_bound",
    "n_subjects",
    "confidence",
    "estimator",
    "extrapolation",
)
#: ``interval`` settings of :func:`scale_fpir`.
ScalingInterval = Literal["korn-graubard", "subject-bootstrap", "none"]
SCALING_INTERVALS: tuple[str, ...] = ("korn-graubard", "subject-bootstrap", "none")

MSG_RESAMPLE_TOO_LARGE = (
    "cannot draw a gallery of {size} fillers: only {available} fillers{where}; use the "
    "analytic scaling for larger watchlists"
)


@dataclass(frozen=True)
class NplParams:
    """Settings of :func:`build_npl_protocol`.

    Attributes
    ----------
    seed : int
    volunteer_fraction : float in (0, 1)
        Share of the subjects with several images who enrol as volunteers (mated searches).
    filler_fraction : float in (0, 1)
        Share of the remaining subjects whose one (random) image joins the filler gallery;
        the rest are strangers whose images are non-mated searches.
    enrolment_images : int
        Images per volunteer enrolled.
    max_mated_per_subject, max_non_mated_per_subject : int or None
        Caps on searches per subject.
    """

    seed: int = 0
    volunteer_fraction: float = 0.3
    filler_fraction: float = 0.5
    enrolment_images: int = 1
    max_mated_per_subject: int | None = None
    max_non_mated_per_subject: int | None = None

    def __post_init__(self) -> None:
        for name in ("volunteer_fraction", "filler_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ProtocolError(f"{name} must be between 0 and 1, got {value}")
        if self.enrolment_images < 1:
            raise ProtocolError("enrolment_images must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class NplProtocol:
    """Manifest rows in each role of the NPL design (disjoint subjects across roles).

    Attributes
    ----------
    manifest : Manifest
    params : NplParams
    enrolment, mated : ndarray of int
        Volunteers' enrolment images and their mated searches.
    fillers : ndarray of int
        One image per filler subject: the reference gallery.
    non_mated : ndarray of int
        Strangers' images: the non-mated searches.
    """

    manifest: Manifest
    params: NplParams
    enrolment: np.ndarray
    mated: np.ndarray
    fillers: np.ndarray
    non_mated: np.ndarray
    kind: str = field(default="npl", init=False)

    def rows_used(self) -> np.ndarray:
        return np.unique(np.concatenate([self.enrolment, self.mated, self.fillers, self.non_mated]))

    @property
    def n_fillers(self) -> int:
        return len(self.fillers)


def build_npl_protocol(
    manifest: Manifest, params: NplParams | None = None, **kwargs: object
) -> NplProtocol:
    """Split a manifest by subject into volunteers, fillers and strangers (see module doc).

    Subjects with a ``role`` in the manifest keep it: ``enrol``/``mated`` images are volunteers'
    templates and searches, ``non_mated`` images strangers' searches, and ``filler`` images the
    filler gallery (one image per filler subject). When any image is a filler, the gallery is
    exactly those fillers and every role-less subject who does not volunteer is a stranger.

    Raises
    ------
    ProtocolError
        A role would be empty.
    """
    if params is None:
        params = NplParams(**kwargs)  # type: ignore[arg-type]
    rng = np.random.default_rng(params.seed)
    subjects = manifest.subject_ids.astype(str)
    roles = manifest.roles
    free = roles == ""
    per_subject = manifest.select(free).images_per_subject() if free.any() else pd.Series([])
    needed = params.enrolment_images + 1
    eligible = np.sort(per_subject.index[per_subject >= needed].to_numpy(dtype=str))
    n_volunteers = round(params.volunteer_fraction * len(eligible))
    volunteers = np.sort(rng.choice(eligible, size=n_volunteers, replace=False))
    others = np.setdiff1d(np.sort(per_subject.index.to_numpy(dtype=str)), volunteers)
    # a filler gallery named by the manifest is the whole gallery: the other role-less
    # subjects are strangers
    named = bool((roles == "filler").any())
    n_fillers = 0 if named else round(params.filler_fraction * len(others))
    filler_subjects = np.sort(rng.choice(others, size=n_fillers, replace=False))
    strangers = np.setdiff1d(others, filler_subjects)
    fixed = {role: np.unique(subjects[roles == role]) for role in ROLES}
    counts = {
        "volunteers": len(volunteers) + len(fixed["enrol"]),
        "fillers": len(filler_subjects) + len(fixed["filler"]),
        "strangers": len(strangers) + len(fixed["non_mated"]),
    }
    if min(counts.values()) == 0:
        raise ProtocolError(
            MSG_TOO_FEW_SUBJECTS.format(
                needed=needed, **{role: plural(n, role[:-1]) for role, n in counts.items()}
            )
        )
    rows = np.arange(len(manifest))

    def first_k_per_subject(pool: np.ndarray, k: int) -> np.ndarray:
        shuffled = pool[rng.permutation(len(pool))]
        position = pd.Series(subjects[shuffled]).groupby(subjects[shuffled]).cumcount().to_numpy()
        return np.sort(shuffled[position < k])

    volunteer_rows = rows[free & np.isin(subjects, volunteers)]
    enrolment = first_k_per_subject(volunteer_rows, params.enrolment_images)
    mated_pool = np.concatenate([np.setdiff1d(volunteer_rows, enrolment), rows[roles == "mated"]])
    enrolment = np.sort(np.concatenate([enrolment, rows[roles == "enrol"]]))
    mated = _cap_per_subject(mated_pool, subjects, params.max_mated_per_subject, rng)
    # one image per filler subject: the gallery counts people, not photos
    fillers = first_k_per_subject(
        rows[(free & np.isin(subjects, filler_subjects)) | (roles == "filler")], 1
    )
    non_mated = _cap_per_subject(
        rows[(free & np.isin(subjects, strangers)) | (roles == "non_mated")],
        subjects,
        params.max_non_mated_per_subject,
        rng,
    )
    return NplProtocol(manifest, params, enrolment, mated, fillers, non_mated)


MSG_OFF_GRID = (
    "threshold(s) {missing} are not on the grid the filler counts were made with "
    "({n} thresholds from {lo:g} to {hi:g}); score again with them in the grid "
    "(run_protocol(..., thresholds=...), evaluate(..., scaling_thresholds=...))"
)


def _sum_cells(chunk: np.ndarray, members: list[np.ndarray], index: np.ndarray) -> np.ndarray:
    """Counts (rows, cells, thresholds) summed over each group's cells at thresholds ``index``:
    shape (rows, len(members), len(index)), int64.

    A cell at a time into an int64 block: 2.4x faster than ``sum(axis=1, dtype=int64)`` over
    a fancy-indexed copy (a strided reduction), measured on 4,096 x 12 x 1,000 uint16 counts.
    """
    full = len(index) == chunk.shape[2] and bool(np.all(index == np.arange(chunk.shape[2])))
    part = chunk if full else chunk[:, :, index]
    out = np.zeros((chunk.shape[0], len(members), len(index)), np.int64)
    for g, cells in enumerate(members):
        total = out[:, g, :]
        for c in cells:
            total += part[:, c, :]
    return out


@dataclass(frozen=True, eq=False)
class FillerCounts:
    """Each non-mated search's false matches against the fillers, at every threshold of a grid.

    What watchlist-size scaling needs from the filler gallery, without the (searches × fillers)
    score matrix: made in one streaming pass by :mod:`lfr_eval.search._kernel` (memory per
    block; see :func:`~lfr_eval.protocols.run_npl_protocol` and
    :class:`~lfr_eval.protocols.ScoringScale`).

    Fillers are split into *cells*: the distinct combinations of their attribute labels
    (e.g. ``sex`` × ``ethnicity``); per-attribute counts are sums over cells.

    Attributes
    ----------
    thresholds : ndarray of shape (n_thresholds,), float64
        Ascending similarity grid (cosine, in [-1, 1]).
    counts : ndarray of shape (n_searches, n_cells, n_thresholds), int32, uint16 or uint8
        ``counts[i, c, t]``: distinct fillers of cell ``c`` whose best score against search
        ``i`` is ``>= thresholds[t]``. A search that failed to acquire has a row of zeros (a
        search with no candidate). May be a read-only memory map of a work folder's file. A
        scoring run keeps them in the smallest type that holds the largest cell's fillers
        (uint16 at NPL size): every reader here sums them as int64.
    cell_sizes : ndarray of shape (n_cells,), int64
        F_c, fillers in each cell (sum: F, :attr:`n_fillers`).
    cells : DataFrame
        One row per cell, one column per filler attribute (its labels); no columns when the
        fillers carry no attributes (then one cell).
    filler_cells : ndarray of shape (n_fillers,), int64
        Cell of each filler (filler index = position in the gallery the counts were made
        from).
    search_subjects : ndarray of shape (n_searches,), object
        Subject of each search (for subject-clustered intervals).
    search_groups : DataFrame
        Attributes of each search (one row per search).
    top_scores : ndarray of shape (n_searches, k), float32, optional
        Each search's k best candidate scores, descending (``-inf`` padding); the candidates
        are fillers (and, in the NPL design, volunteers, marked -1 in :attr:`top_fillers`).
    top_fillers : ndarray of shape (n_searches, k), int64, optional
        Filler index of each of those candidates; -1 for a non-filler or padding.
    """

    thresholds: np.ndarray
    counts: np.ndarray
    cell_sizes: np.ndarray
    cells: pd.DataFrame
    filler_cells: np.ndarray
    search_subjects: np.ndarray
    search_groups: pd.DataFrame
    top_scores: np.ndarray | None = None
    top_fillers: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, c, t = self.counts.shape
        if len(self.thresholds) != t or len(self.cell_sizes) != c or len(self.cells) != c:
            raise ProtocolError("filler counts, thresholds and cells do not agree in shape")
        if len(self.search_subjects) != n:
            raise ProtocolError("need one search subject per row of filler counts")
        if len(self.filler_cells) != int(np.sum(self.cell_sizes)):
            raise ProtocolError("need one cell per filler")

    @property
    def n_searches(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_fillers(self) -> int:
        """F, the fillers searched."""
        return int(np.sum(self.cell_sizes))

    @property
    def n_thresholds(self) -> int:
        return len(self.thresholds)

    @property
    def filler_groups(self) -> pd.DataFrame:
        """Attributes of each filler (one row per filler)."""
        return self.cells.iloc[self.filler_cells].reset_index(drop=True)

    @classmethod
    def from_scores(
        cls,
        scores: np.ndarray,
        thresholds: ArrayLike,
        search_subjects: ArrayLike,
        search_groups: pd.DataFrame,
        filler_groups: pd.DataFrame,
        *,
        top_k: int = 20,
    ) -> FillerCounts:
        """Counts from a dense (searches × fillers) score matrix (small data and tests).

        A row of ``-inf`` is a search that failed to acquire.
        """
        from lfr_eval.search._kernel import check_thresholds

        thr = check_thresholds(np.atleast_1d(np.asarray(thresholds, np.float64)))
        scores = np.asarray(scores, np.float32)
        cells, filler_cells = filler_cell_codes(filler_groups, scores.shape[1])
        counts = np.zeros((scores.shape[0], len(cells), len(thr)), np.int32)
        for c in range(len(cells)):
            block = scores[:, filler_cells == c].astype(np.float64)
            counts[:, c, :] = (block[:, :, None] >= thr[None, None, :]).sum(axis=1)
        k = min(top_k, scores.shape[1])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(scores, order, axis=1)
        return cls(
            thresholds=thr,
            counts=counts,
            cell_sizes=np.bincount(filler_cells, minlength=len(cells)).astype(np.int64),
            cells=cells,
            filler_cells=filler_cells,
            search_subjects=np.asarray(search_subjects, dtype=object),
            search_groups=search_groups.reset_index(drop=True),
            top_scores=top,
            top_fillers=np.where(np.isfinite(top), order, -1).astype(np.int64),
        )

    def threshold_index(self, thresholds: ArrayLike) -> np.ndarray:
        """Position of each threshold on :attr:`thresholds` (within 1e-9).

        Raises
        ------
        ProtocolError
            A threshold is not on the grid (counts exist only for the grid's thresholds).
        """
        wanted = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
        grid = self.thresholds
        pos = np.clip(np.searchsorted(grid, wanted), 0, max(len(grid) - 1, 0))
        for shift in (-1, 0):
            alt = np.clip(pos + shift, 0, max(len(grid) - 1, 0))
            closer = np.abs(grid[alt] - wanted) < np.abs(grid[pos] - wanted)
            pos = np.where(closer, alt, pos)
        off = np.abs(grid[pos] - wanted) > 1e-9 if len(grid) else np.ones(len(wanted), bool)
        if off.any():
            raise ProtocolError(
                MSG_OFF_GRID.format(
                    missing=", ".join(f"{t:g}" for t in wanted[off][:5]),
                    n=len(grid),
                    lo=grid[0] if len(grid) else np.nan,
                    hi=grid[-1] if len(grid) else np.nan,
                )
            )
        return pos

    def _filler_labels(self, attribute: str | None) -> np.ndarray:
        """Label of each filler for ``attribute`` (``"all"`` when None)."""
        out: np.ndarray = self._cell_labels(attribute)[self.filler_cells]
        return out

    def _cell_labels(self, attribute: str | None) -> np.ndarray:
        if attribute is None:
            return np.full(len(self.cells), "all", dtype=object)
        if attribute not in self.cells.columns:
            raise ProtocolError(
                f"fillers have no attribute {attribute!r}; they have {list(self.cells.columns)}"
            )
        out: np.ndarray = self.cells[attribute].to_numpy(dtype=object)
        return out

    def group_counts(
        self, attribute: str | None = None, thresholds: ArrayLike | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Counts summed over the cells of each label of ``attribute``.

        Returns
        -------
        counts : ndarray of shape (n_searches, n_labels, n_thresholds), int64
        sizes : ndarray of shape (n_labels,), int64
            Fillers with each label.
        labels : list of str
            Sorted labels (``["all"]`` when ``attribute`` is None).
        """
        idx = (
            np.arange(self.n_thresholds)
            if thresholds is None
            else self.threshold_index(thresholds)
        )
        sizes, labels = self.group_sizes(attribute)
        counts = np.zeros((self.n_searches, len(labels), len(idx)), np.int64)
        for a, chunk in self.group_chunks(attribute, idx):
            counts[a : a + len(chunk)] = chunk
        return counts, sizes, labels

    def group_sizes(self, attribute: str | None = None) -> tuple[np.ndarray, list[str]]:
        """Fillers with each label of ``attribute`` (int64) and the sorted labels."""
        cell_labels = self._cell_labels(attribute)
        labels = sorted(set(cell_labels))
        sizes = np.array(
            [int(self.cell_sizes[cell_labels == label].sum()) for label in labels], np.int64
        )
        return sizes, labels

    def group_chunks(
        self, attribute: str | None, index: np.ndarray, rows: int = HISTOGRAM_ROWS
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, counts (rows, n_labels, len(index)) int64)``: :meth:`group_counts` a
        block of searches at a time (memory per block, whatever the searches)."""
        cell_labels = self._cell_labels(attribute)
        members = [np.flatnonzero(cell_labels == label) for label in sorted(set(cell_labels))]
        for a, chunk in self.row_chunks(rows):
            yield a, _sum_cells(chunk, members, index)

    def group_counts_of(
        self, attribute: str | None, index: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """Counts per label of ``attribute`` at thresholds ``index`` for the searches ``rows``
        (ascending), shape (len(rows), n_labels, len(index)) int64: one block, read directly."""
        cell_labels = self._cell_labels(attribute)
        members = [np.flatnonzero(cell_labels == label) for label in sorted(set(cell_labels))]
        path = getattr(self.counts, "filename", None)
        source = self.counts if path is None else np.load(path, mmap_mode="r")
        chunk = np.asarray(source[rows])
        del source
        return _sum_cells(chunk, members, index)

    def row_chunks(self, rows: int = 4096) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, counts[first : first + rows])`` over all searches.

        When :attr:`counts` is a memory map (large runs) each chunk is read through a map of
        its own that is closed before the next, so reading every row does not keep the whole
        file in this process's memory.
        """
        path = getattr(self.counts, "filename", None)
        for a in range(0, self.n_searches, rows):
            if path is None:
                yield a, np.asarray(self.counts[a : a + rows])
            else:
                view = np.load(path, mmap_mode="r")
                yield a, np.array(view[a : a + rows])
                del view

    def false_match_counts(
        self, thresholds: ArrayLike, attribute: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Fillers at or above each threshold, per search and filler group (see
        :meth:`group_counts`); the thresholds must be on :attr:`thresholds`."""
        return self.group_counts(attribute, thresholds)

    def any_match(self, thresholds: ArrayLike | None = None) -> np.ndarray:
        """Whether any search meets any filler at each threshold, shape (n_thresholds,)."""
        idx = (
            np.arange(self.n_thresholds)
            if thresholds is None
            else self.threshold_index(thresholds)
        )
        total = np.zeros(len(idx), np.int64)
        for _, chunk in self.row_chunks():
            total += chunk[:, :, idx].sum(axis=(0, 1), dtype=np.int64)
        return total > 0

    def pooled_fmr(self, thresholds: ArrayLike | None = None) -> np.ndarray:
        """Share of all (scored search, filler) comparisons at or above each threshold: the
        pooled false-match rate, shape (n_thresholds,). Failed searches compare nothing."""
        idx = (
            np.arange(self.n_thresholds)
            if thresholds is None
            else self.threshold_index(thresholds)
        )
        scored = self.scored
        total = np.zeros(len(idx), np.int64)
        for a, chunk in self.row_chunks():
            use = scored[a : a + len(chunk)]
            total += chunk[use][:, :, idx].sum(axis=(0, 1), dtype=np.int64)
        comparisons = int(scored.sum()) * self.n_fillers
        return total / max(comparisons, 1)

    @property
    def scored(self) -> np.ndarray:
        """Searches that gave a template (a failed search has no candidate at all)."""
        if self.top_scores is not None and self.top_scores.shape[1]:
            out: np.ndarray = np.isfinite(self.top_scores[:, 0])
            return out
        if len(self.thresholds) and self.thresholds[0] <= -1.0:
            # every score is >= -1: a scored search counts every filler there
            return np.concatenate(
                [chunk[:, :, 0].sum(axis=1) > 0 for _, chunk in self.row_chunks()]
                or [np.zeros(0, bool)]
            )
        return np.ones(self.n_searches, bool)


def filler_cell_codes(
    filler_groups: pd.DataFrame, n_fillers: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct label combinations of the fillers (the cells) and each filler's cell."""
    if len(filler_groups.columns) == 0 or n_fillers == 0:
        return pd.DataFrame(index=range(1)), np.zeros(n_fillers, np.int64)
    frame = filler_groups.reset_index(drop=True).astype(str)
    # one joined key per row, built column-wise (a row-wise DataFrame.apply took 8 s of one
    # core at 200,000 fillers, before the scoring could start)
    columns = [frame[c].to_numpy(dtype=object) for c in frame.columns]
    keys = np.array(["\x1f".join(labels) for labels in zip(*columns)], dtype=str)
    unique, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    cells = frame.iloc[first].reset_index(drop=True).astype(object)
    return cells, codes.astype(np.int64).reshape(-1)


def _shares(
    labels: list[str], composition: Mapping[str, float] | None, attribute: str | None
) -> np.ndarray:
    if composition is None:
        return np.full(len(labels), 1.0 / len(labels))
    shares = np.array([float(composition.get(label, 0.0)) for label in labels])
    unknown_labels = set(composition) - set(labels)
    if (shares < 0).any() or unknown_labels or shares.sum() <= 0:
        raise ProtocolError(
            MSG_COMPOSITION.format(
                attribute=attribute, labels=labels, composition=dict(composition)
            )
        )
    out: np.ndarray = shares / shares.sum()
    return out


MSG_COMPOSITION_SYNTAX = (
    "cannot read watchlist composition {text!r}: write ATTRIBUTE=LABEL:SHARE,LABEL:SHARE "
    "(e.g. ethnicity=african:0.2,caucasian:0.6,asian:0.2), or give a .json file "
    '({{"attribute": "ethnicity", "shares": {{"african": 0.2, ...}}}}) or a .csv file with '
    "columns attribute, label, share"
)


@dataclass(frozen=True)
class WatchlistComposition:
    """The demographic make-up of a deployed watchlist, for scaling FPIR to it.

    Attributes
    ----------
    attribute : str
        The filler attribute the shares refer to (e.g. ``"ethnicity"``).
    shares : dict of str to float
        Share of the deployed watchlist with each label, each in [0, 1]; normalised to sum to
        1 when used. Labels not named count 0.
    """

    attribute: str
    shares: dict[str, float]

    def __post_init__(self) -> None:
        if not self.attribute or not self.shares:
            raise ProtocolError(MSG_COMPOSITION_SYNTAX.format(text=self.to_text()))
        values = np.array(list(self.shares.values()), dtype=np.float64)
        if not np.all(np.isfinite(values)) or (values < 0).any() or values.sum() <= 0:
            raise ProtocolError(
                f"watchlist composition shares must be non-negative numbers with a positive "
                f"sum; got {self.shares}"
            )

    @classmethod
    def parse(cls, text: str) -> WatchlistComposition:
        """From ``"ethnicity=african:0.2,caucasian:0.6,asian:0.2"``."""
        attribute, sep, rest = text.partition("=")
        shares: dict[str, float] = {}
        try:
            if not sep:
                raise ValueError("no '='")
            for item in rest.split(","):
                label, colon, value = item.strip().rpartition(":")
                if not colon or not label.strip():
                    raise ValueError(item)
                shares[label.strip()] = float(value)
        except ValueError as exc:
            raise ProtocolError(MSG_COMPOSITION_SYNTAX.format(text=text)) from exc
        return cls(attribute.strip(), shares)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WatchlistComposition:
        """From a JSON file (``{"attribute": ..., "shares": {label: share}}``) or a CSV file
        with columns ``attribute``, ``label``, ``share`` (one attribute)."""
        path = Path(path)
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(path.read_text())
                return cls(
                    str(data["attribute"]), {str(k): float(v) for k, v in data["shares"].items()}
                )
            table = pd.read_csv(path, dtype={"attribute": str, "label": str})
            attributes = table["attribute"].unique()
            if len(attributes) != 1:
                raise ValueError(f"one attribute expected, found {list(attributes)}")
            return cls(
                str(attributes[0]),
                {str(k): float(v) for k, v in zip(table["label"], table["share"])},
            )
        except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ProtocolError(
                f"cannot read watchlist composition from {path}: {exc}. "
                + MSG_COMPOSITION_SYNTAX.format(text=str(path))
            ) from exc

    @classmethod
    def from_option(cls, value: str) -> WatchlistComposition:
        """A file path (``.json``/``.csv``) when one exists, else the inline form."""
        if Path(value).suffix.lower() in (".json", ".csv") or Path(value).is_file():
            return cls.from_file(value)
        return cls.parse(value)

    def to_text(self) -> str:
        return f"{self.attribute}=" + ",".join(f"{k}:{v:g}" for k, v in self.shares.items())

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "shares": dict(self.shares)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchlistComposition:
        return cls(str(data["attribute"]), {str(k): float(v) for k, v in data["shares"].items()})


def resample_sizes(
    filler_counts: FillerCounts,
    watchlist_sizes: Sequence[int],
    *,
    attribute: str | None = None,
    composition: Mapping[str, float] | None = None,
) -> list[int]:
    """The sizes :func:`resample_fpir` can draw (each group's share fits its fillers)."""
    labels_per_filler = filler_counts._filler_labels(attribute)
    labels = sorted(set(labels_per_filler))
    if composition is None and attribute is not None:
        composition = {label: float((labels_per_filler == label).sum()) for label in labels}
    shares = _shares(labels, composition, attribute)
    available = np.array([(labels_per_filler == label).sum() for label in labels])
    sizes = []
    for n in watchlist_sizes:
        need = draws_per_group(n, shares)
        # a gallery of every filler is the same in every draw: nothing to resample
        if np.all(need <= available) and not np.all(need == available):
            sizes.append(int(n))
    return sizes


@dataclass(frozen=True)
class WatchlistScaling:
    """FPIR predicted for watchlists of several sizes, by threshold.

    Attributes
    ----------
    table : DataFrame
        Columns ``method`` (``"analytic"`` or ``"resampled"``), ``watchlist_size`` (N),
        ``threshold``, ``fpir``, ``lower``, ``upper`` (interval bounds, NaN where not computed),
        ``interval`` (how that row's bounds were made: ``"subject-bootstrap"``,
        ``"gallery-resampling"``, ``"exact one-sided (no false matches)"`` or ``"none"``),
        ``group_attribute``, ``group`` (``"all"`` for every search; else a search group label),
        ``n_searches``.
    attribute : str or None
        Filler attribute the composition refers to (None: composition ignored).
    composition : dict
        Share of each filler label in the deployed watchlist.
    interval : str
        How ``lower``/``upper`` were made.
    """

    table: pd.DataFrame
    attribute: str | None
    composition: dict[str, float]
    interval: str

    def plot(
        self, threshold: float, *, attribute: str | None = None, measured_size: int | None = None
    ) -> go.Figure:
        """FPIR against N at the computed threshold nearest ``threshold`` (cosine, [-1, 1])
        (:class:`lfr_eval.report.WatchlistScalingDisplay`)."""
        from lfr_eval.report import WatchlistScalingDisplay  # plotly loads only to draw

        return WatchlistScalingDisplay(self, threshold, attribute, measured_size).plot()

    def at(self, watchlist_size: int, threshold: float, method: str = "analytic") -> float:
        """Overall FPIR at one size and threshold (the closest threshold computed)."""
        part = self.table[
            (self.table["method"] == method)
            & (self.table["watchlist_size"] == watchlist_size)
            & (self.table["group"] == "all")
        ]
        if part.empty:
            raise KeyError(f"no {method} FPIR for N={watchlist_size}")
        row = part.iloc[int(np.argmin(np.abs(part["threshold"].to_numpy() - threshold)))]
        return float(row["fpir"])


def _clustered_bootstrap(
    values: np.ndarray,
    subjects: np.ndarray,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the mean of per-search values (n, m), resampling subjects: the
    :func:`_histogram_bootstrap` of their per-person histogram (small data, e.g. the
    simulations; :func:`scale_fpir` builds the histograms from the counts directly)."""
    values = np.asarray(values, dtype=np.float64)
    histogram = search_value_histograms(
        iter([(0, values[:, None, :])]),
        np.asarray(subjects),
        [np.ones(len(values), bool)],
        {"values": lambda chunk: chunk[:, 0, :]},
        np.arange(values.shape[1], dtype=np.float64),
    )[("values", 0)]
    return _histogram_bootstrap(histogram, n_boot, confidence, rng)


def _histogram_bootstrap(
    histogram: SearchValueHistogram,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
    chunk_bytes: int = 64 * 2**20,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the mean of per-search values, resampling people, from their
    sparse histogram: each replicate is a multinomial draw of the people (a block of
    replicates at a time, the same draws as one call), its mean the replicate's sum over its
    searches; no (people x thresholds) sums are formed."""
    s = histogram.n_subjects
    m = histogram.thresholds.shape[0]
    means = np.empty((n_boot, m))
    per_block = max(1, int(chunk_bytes) // (8 * max(1, s)))
    for start in range(0, n_boot, per_block):
        size = min(per_block, n_boot - start)
        weights = rng.multinomial(s, np.full(s, 1.0 / s), size=size)
        sums = histogram.replicate_errors(weights)
        searches = weights.astype(np.float64) @ histogram.trials.astype(np.float64)
        means[start : start + size] = sums / np.maximum(searches, 1.0)[:, None]
    alpha = (1.0 - confidence) / 2.0
    return np.quantile(means, alpha, axis=0), np.quantile(means, 1.0 - alpha, axis=0)


def zero_false_match_upper(
    n_searches: int,
    watchlist_size: int,
    filler_sizes: ArrayLike,
    shares: ArrayLike,
    confidence: float = 0.95,
) -> float:
    """Exact one-sided upper bound on FPIR(N) when no search met any filler.

    Parameters
    ----------
    n_searches : int
        n, the non-mated searches (each compared with every filler), treated as independent.
    watchlist_size : int
        N, the deployed watchlist size the bound is for.
    filler_sizes : array_like of int
        F_g, the fillers of each group (one group: all fillers).
    shares : array_like of float
        w_g, each group's share of the deployed watchlist (sums to 1).
    confidence : float
        One-sided coverage in (0, 1).

    Returns
    -------
    float
        ``1 - alpha ** max_g(N * w_g / (n * F_g))`` with ``alpha = 1 - confidence``; 1 when
        there are no searches.

    Notes
    -----
    With one filler pool of F this is Clopper–Pearson's zero-error bound scaled to N. The n
    searches each met all F fillers and none returned a candidate, so FPIR(F) <= 1 - alpha^(1/n)
    (about 3/n at 95%: the rule of three). The independence model that scales FPIR,
    FPIR(N) = 1 - (1 - FMR)^N, turns that into FMR <= 1 - alpha^(1/(nF)) per comparison and
    FPIR(N) <= 1 - alpha^(N/(nF)), about 3N/(nF): the bound shrinks with the fillers measured
    and grows with the watchlist deployed. (Treating the n*F comparisons as independent
    trials gives the same number.) The map is monotone, so the coverage carries over under
    that model.

    With filler groups of rates f_g, the chance of seeing no false match is
    prod_g (1 - f_g)^(n F_g); the rates not rejected at level alpha are those with
    sum_g n F_g x_g <= -ln(alpha), x_g = -ln(1 - f_g), and FPIR(N) = 1 - exp(-N sum_g w_g x_g)
    is largest at the corner that puts everything on the group with the largest
    ``w_g / F_g``: the formula above. Repeat images of one person are not independent; with
    few people the bound is optimistic, as every binomial bound is.

    Examples
    --------
    >>> round(zero_false_match_upper(1000, 100, [100], [1.0]) * 1000, 2)  # N = F: 3/n
    2.99
    """
    sizes = np.asarray(filler_sizes, dtype=np.float64)
    w = np.asarray(shares, dtype=np.float64)
    if n_searches <= 0:
        return 1.0
    alpha = 1.0 - float(confidence)
    use = (w > 0) & (sizes > 0)
    if not use.any():
        return 1.0
    exponent = float(np.max(watchlist_size * w[use] / (n_searches * sizes[use])))
    return float(-np.expm1(exponent * np.log(alpha)))


def _rows_of(
    method: str,
    n: int,
    thresholds: np.ndarray,
    interval: ScaledInterval | None,
    fpir: np.ndarray,
    attr_name: str,
    label: str,
    estimator: str,
    extrapolation: float,
    mask: np.ndarray,
    subjects: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    upper_bound: np.ndarray | None = None,
    how: np.ndarray | None = None,
) -> list[tuple[Any, ...]]:
    """Scaling-table rows of one N, one search set, every threshold (see SCALING_COLUMNS)."""
    nan = np.full(len(thresholds), np.nan)
    if interval is not None:
        lower = interval.lower if lower is None else lower
        upper = interval.upper if upper is None else upper
        upper_bound = interval.upper_bound if upper_bound is None else upper_bound
        how = interval.method if how is None else how
    lower = nan if lower is None else lower
    upper = nan if upper is None else upper
    upper_bound = nan if upper_bound is None else upper_bound
    how = np.full(len(thresholds), INTERVAL_NONE, dtype=object) if how is None else how
    n_searches = int(np.sum(mask))
    n_subjects = len(set(np.asarray(subjects)[mask].astype(str)))
    confidence = np.nan if interval is None else interval.confidence
    return [
        (
            method, int(n), float(thr), float(fpir[t]), float(lower[t]), float(upper[t]),
            str(how[t]), attr_name, label, n_searches, float(upper_bound[t]), n_subjects,
            float(confidence), estimator, float(extrapolation),
        )
        for t, thr in enumerate(thresholds)
    ]  # fmt: skip


def _bootstrap_interval(
    histogram: SearchValueHistogram,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
    base: ScaledInterval,
) -> ScaledInterval:
    """The percentile subject bootstrap (kept by name: it under-covers under clustering)."""
    lower, upper = _histogram_bootstrap(histogram, n_boot, confidence, rng)
    one_low, one_high = _histogram_bootstrap(histogram, n_boot, 2 * confidence - 1, rng)
    del one_low
    zero = base.method == SCALED_ZERO
    method = np.where(zero, SCALED_ZERO, INTERVAL_BOOTSTRAP).astype(object)
    return replace(
        base,
        lower=np.where(zero, base.lower, lower),
        upper=np.where(zero, base.upper, upper),
        upper_bound=np.where(zero, base.upper_bound, one_high),
        method=method,
    )


def _composite_summaries(
    filler_counts: FillerCounts,
    attribute: str | None,
    index: np.ndarray,
    sizes: np.ndarray,
    shares: np.ndarray,
    clusters: SearchClusters,
    rates: np.ndarray,
    block: int = HISTOGRAM_ROWS,
) -> list[tuple[ClusterSummary, np.ndarray]]:
    """The clustered summary and largest per-person sum of each search's composite FMR
    (:func:`composite_fmr`), for everyone and each group, over blocks of whole people.

    The composite FMR changes at almost every threshold below a search's best score, so a
    histogram of it would be about searches x thresholds; its summary needs only each person's
    sums, one block of people at a time, and the rates (``rates``, (sets, m): each set's pooled
    composite FMR, known from the counts' sums) to centre them.
    """
    from lfr_eval.metrics import ClusterSummary
    from lfr_eval.metrics._clustered import merge_top_people, top_people

    order = np.argsort(clusters.clusters, kind="stable")  # rows of a person are consecutive
    owner = clusters.person[clusters.clusters[order]]
    # where each person starts; blocks of about ``block`` searches end where a person does
    person_starts = np.concatenate([[0], np.flatnonzero(np.diff(owner)) + 1, [len(order)]])
    ends = person_starts[np.searchsorted(person_starts, np.arange(block, len(order), block))]
    starts = np.unique(np.concatenate([[0], ends, [len(order)]]))
    n_sets = 1 + clusters.n_labels
    m = rates.shape[1]
    u2, u4, largest = (np.zeros((n_sets, m)) for _ in range(3))
    n2 = np.zeros(n_sets)
    n4 = np.zeros(n_sets)
    most = np.zeros(n_sets)
    # the one-sided bound's envelope needs the top people (a person lies in one block, so the
    # top people of a set are among its blocks' own)
    tops = [top_people(np.zeros((0, m)), np.zeros(0)) for _ in range(n_sets)]
    # and its floor, the lowest per-person composite FMR (ClusterSummary.lowest_rate): near
    # the lowest thresholds every person meets some filler and it is above 0
    lowest = np.ones((n_sets, m))
    people = np.zeros(n_sets, np.int64)
    searches = np.zeros(n_sets)
    for a, b in zip(starts[:-1], starts[1:]):
        rows = np.sort(order[a:b])
        values = composite_fmr(
            filler_counts.group_counts_of(attribute, index, rows), sizes, shares
        )
        row_cluster = clusters.clusters[rows]
        first = int(row_cluster.min())
        local = row_cluster - first
        span = int(row_cluster.max()) - first + 1
        sums = np.zeros((span, m))
        np.add.at(sums, local, values)
        trials = np.bincount(local, minlength=span).astype(np.float64)
        person = clusters.person[first : first + span]
        label = clusters.label[first : first + span]
        merged = np.zeros((int(person.max()) - int(person.min()) + 1, m))
        np.add.at(merged, person - person.min(), sums)
        merged_n = np.bincount(person - person.min(), weights=trials)
        sets = [(merged, merged_n, 0)] + [
            (sums[label == g], trials[label == g], g + 1) for g in range(clusters.n_labels)
        ]
        for v, n, k in sets:
            keep = n > 0
            v, n = v[keep], n[keep]
            resid = v - rates[k][None, :] * n[:, None]
            sq = resid * resid
            u2[k] += sq.sum(axis=0)
            u4[k] += (sq * sq).sum(axis=0)
            if len(v):
                largest[k] = np.maximum(largest[k], v.max(axis=0))
                lowest[k] = np.minimum(lowest[k], (v / n[:, None]).min(axis=0))
            n2[k] += float((n * n).sum())
            n4[k] += float((n**4).sum())
            if len(n):
                most[k] = max(most[k], float(n.max()))
            tops[k] = merge_top_people([tops[k], top_people(v, n)])
            people[k] += len(n)
            searches[k] += float(n.sum())
    out = []
    for k in range(n_sets):
        s, total = int(people[k]), max(float(searches[k]), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = (s / (s - 1) if s > 1 else 0.0) * u2[k] / total**2
            df = u2[k] ** 2 / u4[k] - 1.0
        df = np.clip(np.where(np.isfinite(df), df, s - 1.0), 1.0, max(s - 1.0, 1.0))
        summary = ClusterSummary(
            errors=rates[k] * searches[k],
            trials=float(searches[k]),
            n_subjects=s,
            variance=np.where(np.isfinite(variance), variance, 0.0),
            df=df if s > 1 else np.full(m, np.nan),
            effective_people=float(searches[k]) ** 2 / max(n2[k], 1.0),
            top_errors=tops[k][0],
            top_trials=tops[k][1],
            trials_fourth_moment=float(n4[k]),
            lowest_rate=lowest[k] if s > 0 else np.zeros(m),
            largest_trials=float(most[k]),
        )
        out.append((summary, largest[k]))
    return out


def _alert_probability(
    chunk: np.ndarray, *, sizes: np.ndarray, shares: np.ndarray, n: int
) -> np.ndarray:
    """Each search's P(alert) at watchlist size ``n`` (:func:`per_search_fpir`), (rows, m)."""
    return per_search_fpir(chunk, sizes, shares, n)[0]


def _scaled_figures(
    histogram: SearchValueHistogram,
    composite: tuple[ClusterSummary, np.ndarray] | None,
    n: int,
    fmr_g: np.ndarray,
    shares: np.ndarray,
    interval: str,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
    *,
    within: bool,
    exponent: float,
) -> tuple[np.ndarray, ScaledInterval | None, np.ndarray | None, ScaledInterval | None]:
    """One N and search set at the sorted thresholds, from the set's histograms of P(alert) at
    N and (beyond F) the composite FMR's summary and largest person: (FPIR, its interval, and
    beyond F the pooled
    model's FPIR and interval); intervals None with ``interval="none"``."""
    summary = summarise_subjects(histogram)
    fpir = summary.errors / max(summary.trials, 1.0)
    if interval == "none":
        rates = (shares @ fmr_g)[None, :]
        high = None if within else pooled_map_from_rates(fmr_g, shares, n, rates)[0]
        return fpir, None, high, None
    main = interval_from_summary(summary, exponent, confidence, largest_person_sum(histogram))
    if interval == "subject-bootstrap":
        main = _bootstrap_interval(histogram, n_boot, confidence, rng, main)
    if within:
        return fpir, main, None, None
    if composite is None:
        raise ProtocolError("beyond the fillers the pooled model needs the composite FMR")
    rate = interval_from_summary(composite[0], 1.0, confidence, composite[1])
    pooled = pooled_interval_from_rate(rate, fmr_g, shares, n, exponent)
    return fpir, extrapolation_range(main, pooled), pooled.fpir, pooled


def scale_fpir(
    filler_counts: FillerCounts,
    watchlist_sizes: Sequence[int],
    thresholds: ArrayLike,
    *,
    attribute: str | None = None,
    composition: Mapping[str, float] | None = None,
    by: str | None = None,
    interval: ScalingInterval = "korn-graubard",
    n_boot: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> WatchlistScaling:
    """FPIR(N, T) from each non-mated search's false matches among the F fillers.

    Parameters
    ----------
    filler_counts : FillerCounts
    watchlist_sizes : sequence of int
        Deployed watchlist sizes N (entries; may exceed the number of fillers).
    thresholds : array_like
        Similarity thresholds in [-1, 1], on the counts' grid.
    attribute : str, optional
        Filler attribute for ``composition`` (e.g. ``"ethnicity"``).
    composition : mapping, optional
        Share of each label of ``attribute`` in the deployed watchlist, e.g.
        ``{"caucasian": 0.6, "african": 0.3, "eastasian": 0.1}``. Default: each filler group
        counts by its share among the fillers (when ``attribute`` is given) or all fillers form
        one pool.
    by : str, optional
        Also report FPIR per label of this search attribute (e.g. the probes' ``sex``).
    interval : {"korn-graubard", "subject-bootstrap", "none"}
        ``"korn-graubard"`` (default): the design-effect beta interval of the mean of
        per-search alert probabilities, clustered by person
        (:func:`~lfr_eval.protocols._scaling.interval_from_person_sums`: two-sided with
        Jeffreys ends; the one-sided bound exact and allowing one more person as large as
        the largest seen, Fay & Feuer; coverage measured in
        ``benchmarks/bench_scaling_grid.py``). ``"subject-bootstrap"``: the percentile
        bootstrap over people, kept by name for comparison (it under-covers when searches
        correlate within a person). ``"none"``: no interval.
    n_boot : int
        Bootstrap replicates of ``"subject-bootstrap"``; ``n_boot=0`` also means no interval.
    confidence : float
        Two-sided coverage of ``lower``/``upper``; ``upper_bound`` is one-sided at it.
    seed : int

    Returns
    -------
    WatchlistScaling
        Rows with ``method == "analytic"``: unbiased hypergeometric estimates for N <= F and
        the per-person model beyond, where ``lower``/``upper`` span from the per-person
        model's lower end to the pooled model's upper end (``interval`` says
        :data:`~lfr_eval.protocols._scaling.SCALED_RANGE`) and ``extrapolation`` is N / F;
        beyond F also ``method == "analytic-pooled"`` rows (one pooled rate, the high end) with
        their own clustered interval. Where no search met any filler FPIR is 0 and the rows
        carry ``lower = 0`` and the exact bound counted by people.

    Notes
    -----
    Memory does not grow with searches x thresholds: the counts are read a block of searches
    at a time, once per N, into one sparse histogram per N over (person, group) rows
    (:class:`~lfr_eval.protocols._scaling.SearchValueHistogram`: a search adds entries only
    where its P(alert) changes with the threshold, typically 10–40 of 401); everyone's figures
    merge the rows by person, each group's is a subset. Beyond F the pooled model's interval
    needs each search's composite false-match rate, which changes at almost every threshold
    below the search's best score; it is summarised over blocks of whole people instead
    (no histogram, no bootstrap).
    """
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if interval not in SCALING_INTERVALS:
        raise ProtocolError(
            f"interval must be one of {', '.join(SCALING_INTERVALS)}; got {interval!r}"
        )
    if n_boot <= 0:
        interval = "none"
    # the thresholds in ascending order (the per-search values fall along that axis); rows are
    # written in the caller's order
    index = filler_counts.threshold_index(thresholds)
    order = np.argsort(index, kind="stable")
    sorted_thr = thresholds[order]
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    sizes, labels = filler_counts.group_sizes(attribute)
    if composition is None and attribute is not None:
        composition = {label: float(size) for label, size in zip(labels, sizes)}
    shares = _shares(labels, composition, attribute)
    rng = np.random.default_rng(seed)
    search_sets = [("all", "all", np.ones(filler_counts.n_searches, bool))]
    subjects = np.asarray(filler_counts.search_subjects)
    groups = None
    if by is not None:
        values = filler_counts.search_groups[by].to_numpy(dtype=object)
        by_labels = sorted(set(values))
        search_sets += [(by, label, values == label) for label in by_labels]
        groups = np.zeros(len(values), np.int64)
        for g, (_, _, mask) in enumerate(search_sets[1:]):
            groups[mask] = g
    clusters = SearchClusters.of(subjects, groups)
    sizes_n = [int(n) for n in watchlist_sizes]
    models = {n: per_search_fpir_model(n, sizes, shares) for n in sizes_n}
    chunk_index = index[order]

    def chunks() -> Iterator[tuple[int, np.ndarray]]:
        return filler_counts.group_chunks(attribute, chunk_index)

    def per_set(value: SearchValue) -> list[SearchValueHistogram]:
        # one pass over the counts, one N at a time: per person (within group), the sparse
        # increments of each search's value, never a searches x thresholds table
        histogram = search_value_histogram(
            chunks(), clusters.clusters, clusters.ids, value, sorted_thr
        )
        return clusters.per_set(histogram)

    group_sums = np.zeros((len(search_sets), len(sizes), len(sorted_thr)))
    for a, chunk in chunks():
        for k, (_, _, mask) in enumerate(search_sets):
            group_sums[k] += chunk[mask[a : a + len(chunk)]].sum(axis=0)
    composite: list[tuple[ClusterSummary, np.ndarray]] | None = None
    rows: list[tuple[Any, ...]] = []
    for n in sizes_n:
        within = within_fillers(n, sizes, shares)
        factor = 0.0 if within else n / float(np.sum(sizes))
        exponent = zero_exponent(n, sizes, shares)
        alerts = per_set(partial(_alert_probability, sizes=sizes, shares=shares, n=n))
        if not within and composite is None and interval != "none":
            set_sizes = np.array([mask.sum() for _, _, mask in search_sets], np.float64)
            rates = np.einsum("kgt,g->kt", group_sums / sizes[None, :, None], shares)
            composite = _composite_summaries(
                filler_counts, attribute, chunk_index, sizes, shares, clusters,
                rates / set_sizes[:, None],
            )  # fmt: skip
        for k, (attr_name, label, mask) in enumerate(search_sets):
            fmr_g = group_sums[k] / (int(mask.sum()) * sizes.astype(np.float64)[:, None])
            fpir, main, high, pooled = _scaled_figures(
                alerts[k], None if composite is None else composite[k], n, fmr_g, shares,
                interval, n_boot, confidence, rng, within=within, exponent=exponent,
            )  # fmt: skip
            main = None if main is None else reorder_interval(main, back)
            rows += _rows_of(ANALYTIC, n, thresholds, main, fpir[back], attr_name, label,
                             models[n], factor, mask, subjects)  # fmt: skip
            if high is not None:
                pooled = None if pooled is None else reorder_interval(pooled, back)
                rows += _rows_of(POOLED, n, thresholds, pooled, high[back], attr_name, label,
                                 "pooled model", factor, mask, subjects)  # fmt: skip
        del alerts
    table = pd.DataFrame(rows, columns=list(SCALING_COLUMNS))
    estimators = "; ".join(f"N={n:,}: {m}" for n, m in models.items())
    described = {
        "korn-graubard": f"{SCALED_KORN_GRAUBARD}, {confidence:.0%}",
        "subject-bootstrap": f"percentile subject bootstrap ({n_boot} replicates, "
        f"{confidence:.0%}; under-covers when searches correlate within a person)",
        "none": "none",
    }[interval]
    return WatchlistScaling(
        table=table,
        attribute=attribute,
        composition={label: float(s) for label, s in zip(labels, shares)},
        interval=(
            described
            + ("" if interval == "none" else f"; {SCALED_ZERO} where no search met a filler")
            + f". Estimators: {estimators}; beyond F also '{POOLED}' rows (one pooled rate, the "
            "high end of the extrapolation range)"
        ),
    )


@dataclass(frozen=True, eq=False)
class _ListedFillers:
    """The fillers each search lists among its top candidates (scores and groups), for
    resampling galleries from counts.

    A drawn gallery of n_g fillers per group g meets search i at threshold T when a listed
    filler in the gallery scores ``>= T`` (known exactly), or else when one of the unlisted
    matches (``counts - listed matches``, per group) is in it. Given which listed fillers were
    drawn (j_g), the rest of the gallery is a uniform draw of ``n_g - j_g`` from the
    ``F_g - L_g`` unlisted fillers, so the chance of no unlisted match is the hypergeometric
    ``prod_g C(F_g - L_g - m_g, n_g - j_g) / C(F_g - L_g, n_g - j_g)``; that event is drawn
    for each search. Where every match of a search is listed (all thresholds above its k-th
    candidate) this is the exact replicate; below, each search's replicate is exact in
    distribution and searches are drawn independently of one another.
    """

    fillers: np.ndarray  # (n, k) filler index or -1
    scores: np.ndarray  # (n, k) float32
    groups: np.ndarray  # (n, k) group of each listed filler, -1 for none
    listed: np.ndarray  # (n, G) listed fillers per group
    listed_ge: np.ndarray  # (n, G, T) listed fillers per group scoring >= T
    thresholds: np.ndarray

    @classmethod
    def of(
        cls,
        fc: FillerCounts,
        labels_per_filler: np.ndarray,
        labels: list[str],
        thresholds: np.ndarray,
    ) -> _ListedFillers:
        n, n_groups = fc.n_searches, len(labels)
        if fc.top_fillers is None or fc.top_scores is None:
            fillers = np.full((n, 0), -1, np.int64)
            scores = np.empty((n, 0), np.float32)
        else:
            fillers, scores = fc.top_fillers, fc.top_scores
        code = {label: g for g, label in enumerate(labels)}
        filler_group = np.array([code[x] for x in labels_per_filler], dtype=np.int64)
        groups = np.where(fillers >= 0, filler_group[np.maximum(fillers, 0)], -1)
        listed = np.stack([(groups == g).sum(axis=1) for g in range(n_groups)], axis=1)
        ge = scores[:, :, None].astype(np.float64) >= thresholds[None, None, :]
        listed_ge = np.stack(
            [((groups == g)[:, :, None] & ge).sum(axis=1) for g in range(n_groups)], axis=1
        )
        return cls(fillers, scores, groups, listed, listed_ge, thresholds)

    def matches(
        self,
        drawn: np.ndarray,
        counts: np.ndarray,
        sizes: np.ndarray,
        per_group: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Whether each search meets the drawn gallery at each threshold, (n, T) bool."""
        from scipy.special import gammaln

        in_gallery = (self.fillers >= 0) & drawn[np.maximum(self.fillers, 0)]
        best = np.where(in_gallery, self.scores, -np.inf).max(axis=1, initial=-np.inf)
        matched: np.ndarray = best[:, None].astype(np.float64) >= self.thresholds[None, :]
        unlisted = counts - self.listed_ge  # (n, G, T) matches not listed
        todo = ~matched & (unlisted > 0).any(axis=1)
        if not todo.any():
            return matched
        i, t = np.nonzero(todo)
        drawn_listed = np.stack(
            [(in_gallery & (self.groups == g)).sum(axis=1) for g in range(len(sizes))], axis=1
        )
        pool = (sizes[None, :] - self.listed)[i].astype(np.float64)  # (m, G)
        take = (per_group[None, :] - drawn_listed)[i].astype(np.float64)
        hits = unlisted[i, :, t].astype(np.float64)
        free = pool - hits
        possible = free >= take
        log_none = np.where(
            possible,
            gammaln(free + 1) - gammaln(free - take + 1) - gammaln(pool + 1)
            + gammaln(pool - take + 1),
            -np.inf,
        ).sum(axis=1)
        none = rng.random(len(i)) < np.exp(log_none)
        matched[i, t] = ~none
        return matched


def resample_fpir(
    filler_counts: FillerCounts,
    watchlist_sizes: Sequence[int],
    thresholds: ArrayLike,
    *,
    n_resamples: int = 200,
    attribute: str | None = None,
    composition: Mapping[str, float] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> WatchlistScaling:
    """FPIR(N, T) measured on random galleries of N fillers drawn without replacement.

    Each replicate draws a gallery (stratified so group g has ``round(N * w_g)`` fillers when a
    composition is given), takes each search's best score in it and counts searches at or
    above each threshold. ``fpir`` is the mean over replicates; ``lower``/``upper`` are the
    replicate percentiles: how much FPIR varies from one deployed watchlist to another
    (``interval == "gallery-resampling"``). Where no search meets any filler every gallery
    gives 0; those rows carry the exact one-sided upper bound of
    :func:`zero_false_match_upper` instead (``interval == "exact one-sided (no false
    matches)"``), since 0 – 0 would read as certainty.

    Raises
    ------
    ProtocolError
        N (or a group's share of it) exceeds the fillers available.
    """
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    labels_per_filler = filler_counts._filler_labels(attribute)
    labels = sorted(set(labels_per_filler))
    if composition is None and attribute is not None:
        composition = {label: float((labels_per_filler == label).sum()) for label in labels}
    shares = _shares(labels, composition, attribute)
    members = [np.flatnonzero(labels_per_filler == label) for label in labels]
    member_sizes = np.array([len(m) for m in members])
    any_match = filler_counts.any_match(thresholds)
    counts, _, _ = filler_counts.group_counts(attribute, thresholds)
    listed = _ListedFillers.of(filler_counts, labels_per_filler, labels, thresholds)
    rng = np.random.default_rng(seed)
    rows = []
    n_people = len(set(np.asarray(filler_counts.search_subjects).astype(str)))
    people = max(effective_people(filler_counts.search_subjects), 1.0)
    alpha = (1.0 - confidence) / 2.0
    for n in watchlist_sizes:
        per_group = draws_per_group(n, shares)
        for label, need, pool in zip(labels, per_group, members):
            if need > len(pool):
                where = "" if attribute is None else f" labelled {attribute}={label!r}"
                raise ProtocolError(
                    MSG_RESAMPLE_TOO_LARGE.format(size=need, available=len(pool), where=where)
                )
        rates = np.empty((n_resamples, len(thresholds)))
        drawn = np.zeros(filler_counts.n_fillers, bool)
        for r in range(n_resamples):
            drawn[:] = False
            for need, pool in zip(per_group, members):
                drawn[rng.choice(pool, size=need, replace=False)] = True
            matched = listed.matches(drawn, counts, member_sizes, per_group, rng)
            rates[r] = matched.sum(axis=0) / max(filler_counts.n_searches, 1)
        # counted by people, as the analytic rows: one person's searches are not independent
        zero_bound = float(
            -np.expm1(zero_exponent(int(n), member_sizes, shares) / people * np.log(alpha * 2))
        )
        for t, threshold in enumerate(thresholds):
            if any_match[t]:
                low = float(np.quantile(rates[:, t], alpha))
                high = float(np.quantile(rates[:, t], 1 - alpha))
                how = INTERVAL_RESAMPLED
            else:
                low, high, how = 0.0, zero_bound, INTERVAL_EXACT_ZERO
            rows.append(
                (
                    "resampled",
                    int(n),
                    float(threshold),
                    float(rates[:, t].mean()),
                    low,
                    high,
                    how,
                    "all",
                    "all",
                    filler_counts.n_searches,
                    np.nan,  # no one-sided bound: the spread is between galleries
                    n_people,
                    float(confidence),
                    "gallery resampling",
                    0.0,
                )
            )
    table = pd.DataFrame(rows, columns=list(SCALING_COLUMNS))
    return WatchlistScaling(
        table=table,
        attribute=attribute,
        composition={label: float(s) for label, s in zip(labels, shares)},
        interval=f"gallery resampling percentiles ({n_resamples} galleries, {confidence:.0%}); "
        f"exact one-sided {confidence:.0%} bound where no search met a filler",
    )


def filler_groups_known(filler_counts: FillerCounts, attribute: str) -> bool:
    """Whether any filler has a known label for ``attribute`` (composition weighting needs it)."""
    values = filler_counts.cells.get(attribute)
    return values is not None and bool((values != UNKNOWN).any())
