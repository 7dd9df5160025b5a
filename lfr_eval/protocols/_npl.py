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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lfr_eval.datasets import UNKNOWN, Manifest
from lfr_eval.protocols._open_set import ProtocolError, _cap_per_subject

MSG_TOO_FEW_SUBJECTS = (
    "the NPL design needs volunteers (subjects with {needed}+ images), fillers and strangers; "
    "this manifest gives {volunteers} volunteer(s), {fillers} filler(s), {strangers} "
    "stranger(s). Use a larger dataset or smaller fractions"
)
MSG_COMPOSITION = (
    "watchlist composition must give a share in [0, 1] for labels of {attribute!r} found among "
    "the fillers ({labels}); got {composition}"
)
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

    def to_dict(self) -> dict:
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

    Raises
    ------
    ProtocolError
        A role would be empty.
    """
    if params is None:
        params = NplParams(**kwargs)  # type: ignore[arg-type]
    rng = np.random.default_rng(params.seed)
    subjects = manifest.subject_ids.astype(str)
    per_subject = manifest.images_per_subject()
    needed = params.enrolment_images + 1
    eligible = np.sort(per_subject.index[per_subject >= needed].to_numpy(dtype=str))
    n_volunteers = round(params.volunteer_fraction * len(eligible))
    volunteers = np.sort(rng.choice(eligible, size=n_volunteers, replace=False))
    others = np.setdiff1d(np.sort(per_subject.index.to_numpy(dtype=str)), volunteers)
    n_fillers = round(params.filler_fraction * len(others))
    filler_subjects = np.sort(rng.choice(others, size=n_fillers, replace=False))
    strangers = np.setdiff1d(others, filler_subjects)
    if min(len(volunteers), len(filler_subjects), len(strangers)) == 0:
        raise ProtocolError(
            MSG_TOO_FEW_SUBJECTS.format(
                needed=needed,
                volunteers=len(volunteers),
                fillers=len(filler_subjects),
                strangers=len(strangers),
            )
        )
    rows = np.arange(len(manifest))

    def first_k_per_subject(pool: np.ndarray, k: int) -> np.ndarray:
        shuffled = pool[rng.permutation(len(pool))]
        position = pd.Series(subjects[shuffled]).groupby(subjects[shuffled]).cumcount().to_numpy()
        return np.sort(shuffled[position < k])

    volunteer_rows = rows[np.isin(subjects, volunteers)]
    enrolment = first_k_per_subject(volunteer_rows, params.enrolment_images)
    mated = _cap_per_subject(
        np.setdiff1d(volunteer_rows, enrolment), subjects, params.max_mated_per_subject, rng
    )
    fillers = first_k_per_subject(rows[np.isin(subjects, filler_subjects)], 1)
    non_mated = _cap_per_subject(
        rows[np.isin(subjects, strangers)], subjects, params.max_non_mated_per_subject, rng
    )
    return NplProtocol(manifest, params, enrolment, mated, fillers, non_mated)


@dataclass(frozen=True, eq=False)
class FillerScores:
    """Similarities of non-mated searches against every filler.

    Attributes
    ----------
    scores : ndarray of shape (n_searches, n_fillers), float32
        Cosine similarity in [-1, 1] of each (search, filler) pair.
    search_subjects : ndarray of shape (n_searches,)
        Subject of each search (for subject-clustered intervals).
    search_groups : DataFrame
        Attributes of each search (one row per search).
    filler_groups : DataFrame
        Attributes of each filler (one row per filler).
    """

    scores: np.ndarray
    search_subjects: np.ndarray
    search_groups: pd.DataFrame
    filler_groups: pd.DataFrame

    @property
    def n_searches(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_fillers(self) -> int:
        return int(self.scores.shape[1])

    @classmethod
    def from_embeddings(
        cls,
        search_vectors: np.ndarray,
        filler_vectors: np.ndarray,
        search_subjects: ArrayLike,
        search_groups: pd.DataFrame,
        filler_groups: pd.DataFrame,
    ) -> FillerScores:
        """Score unit-norm search embeddings against unit-norm filler embeddings."""
        scores = np.asarray(search_vectors, np.float32) @ np.asarray(filler_vectors, np.float32).T
        np.clip(scores, -1.0, 1.0, out=scores)
        return cls(
            scores=scores,
            search_subjects=np.asarray(search_subjects, dtype=object),
            search_groups=search_groups.reset_index(drop=True),
            filler_groups=filler_groups.reset_index(drop=True),
        )

    def _filler_labels(self, attribute: str | None) -> np.ndarray:
        if attribute is None:
            return np.full(self.n_fillers, "all", dtype=object)
        if attribute not in self.filler_groups.columns:
            raise ProtocolError(
                f"fillers have no attribute {attribute!r}; they have "
                f"{list(self.filler_groups.columns)}"
            )
        return self.filler_groups[attribute].to_numpy(dtype=object)

    def false_match_counts(
        self, thresholds: ArrayLike, attribute: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Fillers at or above each threshold, per search and filler group.

        Returns
        -------
        counts : ndarray of shape (n_searches, n_groups, n_thresholds), int
        sizes : ndarray of shape (n_groups,), int
            Fillers in each group.
        labels : list of str
            Group labels (``["all"]`` when ``attribute`` is None).
        """
        thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
        labels_per_filler = self._filler_labels(attribute)
        labels = sorted(set(labels_per_filler))
        counts = np.zeros((self.n_searches, len(labels), len(thresholds)), np.int64)
        sizes = np.zeros(len(labels), np.int64)
        for g, label in enumerate(labels):
            block = np.sort(self.scores[:, labels_per_filler == label].astype(np.float64), axis=1)
            sizes[g] = block.shape[1]
            counts[:, g, :] = block.shape[1] - _rowwise_searchsorted(block, thresholds)
        return counts, sizes, labels


def _rowwise_searchsorted(sorted_rows: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each row of a row-sorted matrix, how many entries are below each threshold.

    Similarities lie in [-1, 1], so shifting row i by 4*i makes the flattened matrix one sorted
    array and a single searchsorted answers every (row, threshold) pair.
    """
    n_rows, n_cols = sorted_rows.shape
    offsets = 4.0 * np.arange(n_rows)
    flat = (sorted_rows + offsets[:, None]).ravel()
    clipped = np.clip(thresholds, -1.5, 1.5)
    positions = np.searchsorted(flat, clipped[None, :] + offsets[:, None], side="left")
    return positions - (np.arange(n_rows) * n_cols)[:, None]


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
    return shares / shares.sum()


@dataclass(frozen=True)
class WatchlistScaling:
    """FPIR predicted for watchlists of several sizes, by threshold.

    Attributes
    ----------
    table : DataFrame
        Columns ``method`` (``"analytic"`` or ``"resampled"``), ``watchlist_size`` (N),
        ``threshold``, ``fpir``, ``lower``, ``upper`` (interval bounds, NaN where not computed),
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


def _per_search_fpir(
    counts: np.ndarray, sizes: np.ndarray, shares: np.ndarray, n: int
) -> np.ndarray:
    """1 - prod_g (1 - FMR_pg)^(n w_g), shape (n_searches, n_thresholds), computed in log space
    so that N in the millions stays accurate for tiny FMRs."""
    fmr = counts / sizes[None, :, None]
    with np.errstate(divide="ignore"):
        log_no_match = np.log1p(-np.minimum(fmr, 1.0))
    exponent = (n * shares)[None, :, None]
    total = np.where(exponent > 0, exponent * log_no_match, 0.0).sum(axis=1)
    return -np.expm1(total)


def _clustered_bootstrap(
    values: np.ndarray,
    subjects: np.ndarray,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the mean of per-search values, resampling subjects."""
    codes, inverse = np.unique(subjects.astype(str), return_inverse=True)
    sums = np.zeros((len(codes), values.shape[1]))
    np.add.at(sums, inverse, values)
    sizes = np.bincount(inverse, minlength=len(codes)).astype(np.float64)
    weights = rng.multinomial(len(codes), np.full(len(codes), 1.0 / len(codes)), size=n_boot)
    means = (weights @ sums) / np.maximum(weights @ sizes, 1.0)[:, None]
    alpha = (1.0 - confidence) / 2.0
    return np.quantile(means, alpha, axis=0), np.quantile(means, 1.0 - alpha, axis=0)


def scale_fpir(
    filler_scores: FillerScores,
    watchlist_sizes: Sequence[int],
    thresholds: ArrayLike,
    *,
    attribute: str | None = None,
    composition: Mapping[str, float] | None = None,
    by: str | None = None,
    n_boot: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> WatchlistScaling:
    """FPIR(N, T) from each non-mated search's false-match rate against the fillers.

    Parameters
    ----------
    filler_scores : FillerScores
    watchlist_sizes : sequence of int
        Deployed watchlist sizes N (entries; may exceed the number of fillers).
    thresholds : array_like
        Similarity thresholds in [-1, 1].
    attribute : str, optional
        Filler attribute for ``composition`` (e.g. ``"ethnicity"``).
    composition : mapping, optional
        Share of each label of ``attribute`` in the deployed watchlist, e.g.
        ``{"caucasian": 0.6, "african": 0.3, "eastasian": 0.1}``. Default: each filler group
        counts by its share among the fillers (when ``attribute`` is given) or all fillers form
        one pool.
    by : str, optional
        Also report FPIR per label of this search attribute (e.g. the probes' ``sex``).
    n_boot : int
        Subject-clustered bootstrap replicates for the interval (0: no interval).
    confidence : float
    seed : int

    Returns
    -------
    WatchlistScaling
        Rows with ``method == "analytic"``.
    """
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    counts, sizes, labels = filler_scores.false_match_counts(thresholds, attribute)
    if composition is None and attribute is not None:
        composition = {label: float(size) for label, size in zip(labels, sizes)}
    shares = _shares(labels, composition, attribute)
    rng = np.random.default_rng(seed)
    search_sets = [("all", "all", np.ones(filler_scores.n_searches, bool))]
    if by is not None:
        values = filler_scores.search_groups[by].to_numpy(dtype=object)
        search_sets += [(by, label, values == label) for label in sorted(set(values))]
    rows = []
    for n in watchlist_sizes:
        per_search = _per_search_fpir(counts, sizes, shares, int(n))
        for attr_name, label, mask in search_sets:
            if not mask.any():
                continue
            fpir = per_search[mask].mean(axis=0)
            if n_boot > 0:
                lower, upper = _clustered_bootstrap(
                    per_search[mask], filler_scores.search_subjects[mask], n_boot, confidence, rng
                )
            else:
                lower = upper = np.full(len(thresholds), np.nan)
            for t, threshold in enumerate(thresholds):
                rows.append(
                    (
                        "analytic",
                        int(n),
                        float(threshold),
                        float(fpir[t]),
                        float(lower[t]),
                        float(upper[t]),
                        attr_name,
                        label,
                        int(mask.sum()),
                    )
                )
    table = pd.DataFrame(
        rows,
        columns=[
            "method",
            "watchlist_size",
            "threshold",
            "fpir",
            "lower",
            "upper",
            "group_attribute",
            "group",
            "n_searches",
        ],
    )
    return WatchlistScaling(
        table=table,
        attribute=attribute,
        composition={label: float(s) for label, s in zip(labels, shares)},
        interval=f"subject-clustered bootstrap ({n_boot} replicates, {confidence:.0%})"
        if n_boot
        else "none",
    )


def resample_fpir(
    filler_scores: FillerScores,
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
    replicate percentiles: how much FPIR varies from one deployed watchlist to another.

    Raises
    ------
    ProtocolError
        N (or a group's share of it) exceeds the fillers available.
    """
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    labels_per_filler = filler_scores._filler_labels(attribute)
    labels = sorted(set(labels_per_filler))
    if composition is None and attribute is not None:
        composition = {label: float((labels_per_filler == label).sum()) for label in labels}
    shares = _shares(labels, composition, attribute)
    members = [np.flatnonzero(labels_per_filler == label) for label in labels]
    rng = np.random.default_rng(seed)
    rows = []
    alpha = (1.0 - confidence) / 2.0
    for n in watchlist_sizes:
        per_group = np.round(int(n) * shares).astype(int)
        for label, need, pool in zip(labels, per_group, members):
            if need > len(pool):
                where = "" if attribute is None else f" labelled {attribute}={label!r}"
                raise ProtocolError(
                    MSG_RESAMPLE_TOO_LARGE.format(size=need, available=len(pool), where=where)
                )
        rates = np.empty((n_resamples, len(thresholds)))
        for r in range(n_resamples):
            columns = np.concatenate(
                [
                    rng.choice(pool, size=need, replace=False)
                    for need, pool in zip(per_group, members)
                ]
            )
            best = filler_scores.scores[:, columns].max(axis=1)
            best.sort()
            rates[r] = (len(best) - np.searchsorted(best, thresholds, side="left")) / len(best)
        for t, threshold in enumerate(thresholds):
            rows.append(
                (
                    "resampled",
                    int(n),
                    float(threshold),
                    float(rates[:, t].mean()),
                    float(np.quantile(rates[:, t], alpha)),
                    float(np.quantile(rates[:, t], 1 - alpha)),
                    "all",
                    "all",
                    filler_scores.n_searches,
                )
            )
    table = pd.DataFrame(
        rows,
        columns=[
            "method",
            "watchlist_size",
            "threshold",
            "fpir",
            "lower",
            "upper",
            "group_attribute",
            "group",
            "n_searches",
        ],
    )
    return WatchlistScaling(
        table=table,
        attribute=attribute,
        composition={label: float(s) for label, s in zip(labels, shares)},
        interval=f"gallery resampling percentiles ({n_resamples} galleries, {confidence:.0%})",
    )


def filler_groups_known(filler_scores: FillerScores, attribute: str) -> bool:
    """Whether any filler has a known label for ``attribute`` (composition weighting needs it)."""
    values = filler_scores.filler_groups.get(attribute)
    return values is not None and bool((values != UNKNOWN).any())
