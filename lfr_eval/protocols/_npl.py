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

A search whose row of scores is all ``-inf`` is a non-mated search that failed to acquire (no
face, no template): it is counted as a search that returned no candidate (NIST FRTE's
convention), so it lowers FPIR and raises n.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
#: ``interval`` column values of :attr:`WatchlistScaling.table`
INTERVAL_BOOTSTRAP = "subject-bootstrap"
INTERVAL_RESAMPLED = "gallery-resampling"
INTERVAL_EXACT_ZERO = "exact one-sided (no false matches)"
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
    array and a single searchsorted answers every (row, threshold) pair. ``-inf`` (a search
    that failed to acquire) is first raised to -1.75, still below every threshold (clipped to
    [-1.5, 1.5]) but finite, so the rows stay in their own bands.
    """
    n_rows, n_cols = sorted_rows.shape
    offsets = 4.0 * np.arange(n_rows)
    flat = (np.maximum(sorted_rows, -1.75) + offsets[:, None]).ravel()
    clipped = np.clip(thresholds, -1.5, 1.5)
    positions = np.searchsorted(flat, clipped[None, :] + offsets[:, None], side="left")
    return positions - (np.arange(n_rows) * n_cols)[:, None]


def count_at_or_above_rows(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Searches (rows of ``scores``) whose best score reaches each threshold, shape (m,)."""
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        return np.zeros(len(thresholds), np.int64)
    best = np.sort(scores.max(axis=1).astype(np.float64))
    return len(best) - np.searchsorted(best, thresholds, side="left")


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

    def to_dict(self) -> dict:
        return {"attribute": self.attribute, "shares": dict(self.shares)}

    @classmethod
    def from_dict(cls, data: dict) -> WatchlistComposition:
        return cls(str(data["attribute"]), {str(k): float(v) for k, v in data["shares"].items()})


def resample_sizes(
    filler_scores: FillerScores,
    watchlist_sizes: Sequence[int],
    *,
    attribute: str | None = None,
    composition: Mapping[str, float] | None = None,
) -> list[int]:
    """The sizes :func:`resample_fpir` can draw (each group's share fits its fillers)."""
    labels_per_filler = filler_scores._filler_labels(attribute)
    labels = sorted(set(labels_per_filler))
    if composition is None and attribute is not None:
        composition = {label: float((labels_per_filler == label).sum()) for label in labels}
    shares = _shares(labels, composition, attribute)
    available = np.array([(labels_per_filler == label).sum() for label in labels])
    return [
        int(n)
        for n in watchlist_sizes
        if np.all(np.round(int(n) * shares).astype(int) <= available)
    ]


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
        Coverage of the interval: two-sided for the bootstrap, one-sided for the exact bound
        used where no search met any filler.
    seed : int

    Returns
    -------
    WatchlistScaling
        Rows with ``method == "analytic"``. ``lower``/``upper`` are the subject-clustered
        bootstrap percentiles (``interval == "subject-bootstrap"``), except where no search
        met any filler: there FPIR is 0 and every replicate is 0, so the rows carry
        ``lower = 0`` and the exact one-sided upper bound of :func:`zero_false_match_upper`
        (``interval == "exact one-sided (no false matches)"``) instead of a 0 – 0 interval.
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
            method = np.full(len(thresholds), INTERVAL_NONE, dtype=object)
            if n_boot > 0:
                lower, upper = _clustered_bootstrap(
                    per_search[mask], filler_scores.search_subjects[mask], n_boot, confidence, rng
                )
                method[:] = INTERVAL_BOOTSTRAP
                # No false match at all: the bootstrap cannot see past the sample (0 - 0).
                zero = fpir == 0
                if zero.any():
                    bound = zero_false_match_upper(
                        int(mask.sum()), int(n), sizes, shares, confidence
                    )
                    lower = np.where(zero, 0.0, lower)
                    upper = np.where(zero, bound, upper)
                    method[zero] = INTERVAL_EXACT_ZERO
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
                        method[t],
                        attr_name,
                        label,
                        int(mask.sum()),
                    )
                )
    table = pd.DataFrame(rows, columns=list(SCALING_COLUMNS))
    return WatchlistScaling(
        table=table,
        attribute=attribute,
        composition={label: float(s) for label, s in zip(labels, shares)},
        interval=f"subject-clustered bootstrap ({n_boot} replicates, {confidence:.0%}); exact "
        f"one-sided {confidence:.0%} bound where no search met a filler"
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
    labels_per_filler = filler_scores._filler_labels(attribute)
    labels = sorted(set(labels_per_filler))
    if composition is None and attribute is not None:
        composition = {label: float((labels_per_filler == label).sum()) for label in labels}
    shares = _shares(labels, composition, attribute)
    members = [np.flatnonzero(labels_per_filler == label) for label in labels]
    member_sizes = np.array([len(m) for m in members])
    # A search meets some filler at T iff its best score over all fillers reaches T.
    any_match = count_at_or_above_rows(filler_scores.scores, thresholds) > 0
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
        zero_bound = zero_false_match_upper(
            filler_scores.n_searches, int(n), member_sizes, shares, confidence
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
                    filler_scores.n_searches,
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


def filler_groups_known(filler_scores: FillerScores, attribute: str) -> bool:
    """Whether any filler has a known label for ``attribute`` (composition weighting needs it)."""
    values = filler_scores.filler_groups.get(attribute)
    return values is not None and bool((values != UNKNOWN).any())
