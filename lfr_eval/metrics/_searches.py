"""The scores of a set of 1:N searches: the one input every identification metric takes.

A protocol (see :mod:`lfr_eval.protocols`) runs probes against a watchlist and summarises each
search by the few numbers the NIST FRTE 1:N metrics need, so metrics never need images or the
full score matrix:

- a **mated** search (the probe's subject is on the watchlist) keeps the similarity of its mate
  (best template of the right subject) and the mate's rank among watchlist *subjects*;
- a **non-mated** search keeps its top-k similarities against distinct watchlist subjects, sorted
  descending (the first column is the best score, which decides FPIR; all k feed selectivity).

All similarities are cosine similarities in [-1, 1].

**Failures to acquire** (no face found in the probe, no template made) are searches too, as in
NIST FRTE: a failed mated search is a miss at every threshold and rank, and a failed non-mated
search returns no candidate (it can never be a false positive, but it counts among the
non-mated searches). They are written with sentinels every metric already handles, so no
metric needs a special case:

- failed mated search: ``mate_score = -inf`` and ``mate_rank = watchlist_size + 1``;
- failed non-mated search: a row of ``-inf`` in ``non_mated_topk``.

:attr:`SearchSet.mated_failed` and :attr:`SearchSet.non_mated_failed` recover the masks, and
:meth:`SearchSet.without_failures` gives the older convention (failures left out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lfr_eval.metrics._validation import MetricInputError

MSG_BAD_SENTINEL = (
    "{what} contains NaN or +inf; similarities must be finite cosine scores in [-1, 1] "
    "(-inf marks a search that failed to acquire)"
)
MSG_FAILED_RANK = (
    "a mated search that failed to acquire (mate score -inf) must have rank "
    "watchlist_size + 1 = {rank}"
)
MSG_PARTIAL_ROW = (
    "a non-mated search is either scored (finite top-k) or failed to acquire (a row of -inf), "
    "never partly -inf"
)


@dataclass(frozen=True)
class SearchSet:
    """Summarised results of mated and non-mated 1:N searches against one watchlist.

    Attributes
    ----------
    watchlist_size : int
        N, the number of distinct subjects on the watchlist searched.
    mate_scores : ndarray of shape (n_mated,)
        Similarity of each mated search's mate, in [-1, 1]; ``-inf`` for a search that failed
        to acquire (a miss at every threshold).
    mate_ranks : ndarray of shape (n_mated,)
        1-based rank of the mate among watchlist subjects (1 = best candidate);
        ``watchlist_size + 1`` for a search that failed to acquire (a miss at every rank).
    mated_subjects : ndarray of shape (n_mated,)
        Subject id of each mated probe (str). Used to cluster intervals by subject.
    non_mated_topk : ndarray of shape (n_non_mated, k)
        The k highest similarities of each non-mated search against distinct subjects, sorted
        descending. ``k >= 1``; column 0 is the best score. A row of ``-inf`` is a search that
        failed to acquire (no candidate at any threshold).
    non_mated_subjects : ndarray of shape (n_non_mated,)
        Subject id of each non-mated probe (str).
    mated_groups, non_mated_groups : DataFrame
        One column per demographic/condition attribute (e.g. ``sex``, ``ethnicity``), one row per
        search, values as strings with ``"unknown"`` for missing labels. May have no columns.
    """

    watchlist_size: int
    mate_scores: np.ndarray
    mate_ranks: np.ndarray
    mated_subjects: np.ndarray
    non_mated_topk: np.ndarray
    non_mated_subjects: np.ndarray
    mated_groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    non_mated_groups: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        n_m = len(self.mate_scores)
        if len(self.mate_ranks) != n_m or len(self.mated_subjects) != n_m:
            raise MetricInputError(
                "mate_scores, mate_ranks and mated_subjects must have equal length"
            )
        if self.non_mated_topk.ndim != 2:
            raise MetricInputError("non_mated_topk must be 2-D (n_non_mated, k)")
        if len(self.non_mated_subjects) != self.non_mated_topk.shape[0]:
            raise MetricInputError("non_mated_subjects must have one entry per non-mated search")
        if len(self.mated_groups.columns) and len(self.mated_groups) != n_m:
            raise MetricInputError("mated_groups must have one row per mated search")
        if len(self.non_mated_groups.columns) and len(self.non_mated_groups) != len(
            self.non_mated_subjects
        ):
            raise MetricInputError("non_mated_groups must have one row per non-mated search")
        mate = np.asarray(self.mate_scores, dtype=np.float64)
        if np.isnan(mate).any() or (mate == np.inf).any():
            raise MetricInputError(MSG_BAD_SENTINEL.format(what="mate_scores"))
        failed = mate == -np.inf
        if np.any(np.asarray(self.mate_ranks)[failed] != self.watchlist_size + 1):
            raise MetricInputError(MSG_FAILED_RANK.format(rank=self.watchlist_size + 1))
        topk = np.asarray(self.non_mated_topk, dtype=np.float64)
        if np.isnan(topk).any() or (topk == np.inf).any():
            raise MetricInputError(MSG_BAD_SENTINEL.format(what="non_mated_topk"))
        row_failed = topk == -np.inf
        if np.any(row_failed.any(axis=1) != row_failed.all(axis=1)):
            raise MetricInputError(MSG_PARTIAL_ROW)

    @property
    def n_mated(self) -> int:
        return len(self.mate_scores)

    @property
    def n_non_mated(self) -> int:
        return int(self.non_mated_topk.shape[0])

    @property
    def non_mated_best(self) -> np.ndarray:
        """Best (highest) similarity of each non-mated search, shape (n_non_mated,)."""
        return self.non_mated_topk[:, 0]

    @property
    def mated_failed(self) -> np.ndarray:
        """Mated searches that failed to acquire (mate score ``-inf``), shape (n_mated,)."""
        failed: np.ndarray = np.asarray(self.mate_scores, dtype=np.float64) == -np.inf
        return failed

    @property
    def non_mated_failed(self) -> np.ndarray:
        """Non-mated searches that failed to acquire (a row of ``-inf``), shape (n_non_mated,)."""
        if self.non_mated_topk.shape[0] == 0:
            return np.zeros(0, bool)
        failed: np.ndarray = np.asarray(self.non_mated_topk[:, 0], dtype=np.float64) == -np.inf
        return failed

    @property
    def n_failed_mated(self) -> int:
        return int(self.mated_failed.sum())

    @property
    def n_failed_non_mated(self) -> int:
        return int(self.non_mated_failed.sum())

    def without_failures(self) -> SearchSet:
        """The searches that got a template: failures to acquire left out of every rate."""
        return self.subset(~self.mated_failed, ~self.non_mated_failed)

    def with_failures(
        self,
        mated_subjects: np.ndarray,
        non_mated_subjects: np.ndarray,
        mated_groups: pd.DataFrame | None = None,
        non_mated_groups: pd.DataFrame | None = None,
    ) -> SearchSet:
        """These searches plus searches that failed to acquire, appended after them.

        Parameters
        ----------
        mated_subjects, non_mated_subjects : ndarray
            Subject of each failed mated / non-mated search.
        mated_groups, non_mated_groups : DataFrame, optional
            Their group labels (same columns as this SearchSet's; required when it has any).
        """
        mated_subjects = np.asarray(mated_subjects, dtype=object)
        non_mated_subjects = np.asarray(non_mated_subjects, dtype=object)
        n_m, n_nm = len(mated_subjects), len(non_mated_subjects)
        topk = np.asarray(self.non_mated_topk)
        return SearchSet(
            watchlist_size=self.watchlist_size,
            mate_scores=np.concatenate(
                [np.asarray(self.mate_scores), np.full(n_m, -np.inf, dtype=topk.dtype)]
            ),
            mate_ranks=np.concatenate(
                [
                    np.asarray(self.mate_ranks, dtype=np.int64),
                    np.full(n_m, self.watchlist_size + 1, np.int64),
                ]
            ),
            mated_subjects=np.concatenate(
                [np.asarray(self.mated_subjects, object), mated_subjects]
            ),
            non_mated_topk=np.concatenate([topk, np.full((n_nm, self.k), -np.inf, topk.dtype)]),
            non_mated_subjects=np.concatenate(
                [np.asarray(self.non_mated_subjects, object), non_mated_subjects]
            ),
            mated_groups=_append_rows(self.mated_groups, mated_groups, self.n_mated, n_m),
            non_mated_groups=_append_rows(
                self.non_mated_groups, non_mated_groups, self.n_non_mated, n_nm
            ),
        )

    @property
    def k(self) -> int:
        """Number of candidates kept per non-mated search (columns of ``non_mated_topk``)."""
        return int(self.non_mated_topk.shape[1])

    def subset(
        self,
        mated_mask: np.ndarray | None = None,
        non_mated_mask: np.ndarray | None = None,
    ) -> SearchSet:
        """The searches selected by boolean masks (``None`` keeps all of that kind).

        The watchlist size is unchanged: a subset of searches was still run against the whole
        watchlist.
        """
        m = np.ones(self.n_mated, bool) if mated_mask is None else np.asarray(mated_mask, bool)
        nm = (
            np.ones(self.n_non_mated, bool)
            if non_mated_mask is None
            else np.asarray(non_mated_mask, bool)
        )
        if m.shape != (self.n_mated,) or nm.shape != (self.n_non_mated,):
            raise MetricInputError(
                "subset masks must be boolean arrays with one entry per mated / non-mated search"
            )
        return SearchSet(
            watchlist_size=self.watchlist_size,
            mate_scores=self.mate_scores[m],
            mate_ranks=self.mate_ranks[m],
            mated_subjects=self.mated_subjects[m],
            non_mated_topk=self.non_mated_topk[nm],
            non_mated_subjects=self.non_mated_subjects[nm],
            mated_groups=_take_rows(self.mated_groups, m),
            non_mated_groups=_take_rows(self.non_mated_groups, nm),
        )


def _append_rows(
    groups: pd.DataFrame, extra: pd.DataFrame | None, n_existing: int, n: int
) -> pd.DataFrame:
    """Group labels of existing searches followed by those of ``n`` failed ones."""
    if n == 0:
        return groups
    if extra is not None and len(extra.columns) == 0:
        extra = None  # labels without columns say nothing
    if not len(groups.columns) and n_existing == 0:
        # no scored searches of this kind: the failed ones bring the columns
        return extra.reset_index(drop=True).astype(object) if extra is not None else pd.DataFrame()
    if not len(groups.columns) and extra is None:
        return pd.DataFrame()
    if extra is None or list(extra.columns) != list(groups.columns) or len(extra) != n:
        raise MetricInputError(
            f"failed searches need group labels with columns {list(groups.columns)}, one row each"
        )
    return pd.concat([groups, extra.astype(object)], ignore_index=True)


def _take_rows(groups: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    if not len(groups.columns):
        return pd.DataFrame()
    return groups.iloc[np.flatnonzero(mask)].reset_index(drop=True)
