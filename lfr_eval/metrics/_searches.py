"""The scores of a set of 1:N searches: the one input every identification metric takes.

A protocol (see :mod:`lfr_eval.protocols`) runs probes against a watchlist and summarises each
search by the few numbers the NIST FRTE 1:N metrics need, so metrics never need images or the
full score matrix:

- a **mated** search (the probe's subject is on the watchlist) keeps the similarity of its mate
  (best template of the right subject) and the mate's rank among watchlist *subjects*;
- a **non-mated** search keeps its top-k similarities against distinct watchlist subjects, sorted
  descending (the first column is the best score, which decides FPIR; all k feed selectivity).

All similarities are cosine similarities in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lfr_eval.metrics._validation import MetricInputError


@dataclass(frozen=True)
class SearchSet:
    """Summarised results of mated and non-mated 1:N searches against one watchlist.

    Attributes
    ----------
    watchlist_size : int
        N, the number of distinct subjects on the watchlist searched.
    mate_scores : ndarray of shape (n_mated,)
        Similarity of each mated search's mate, in [-1, 1].
    mate_ranks : ndarray of shape (n_mated,)
        1-based rank of the mate among watchlist subjects (1 = best candidate).
    mated_subjects : ndarray of shape (n_mated,)
        Subject id of each mated probe (str). Used to cluster intervals by subject.
    non_mated_topk : ndarray of shape (n_non_mated, k)
        The k highest similarities of each non-mated search against distinct subjects, sorted
        descending. ``k >= 1``; column 0 is the best score.
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


def _take_rows(groups: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    if not len(groups.columns):
        return pd.DataFrame()
    return groups.iloc[np.flatnonzero(mask)].reset_index(drop=True)
