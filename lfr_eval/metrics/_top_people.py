"""The envelope's top people straight from a sparse per-subject histogram, in O(searches).

:func:`~lfr_eval.metrics._clustered.top_people` ranks every person at every threshold (two
``argpartition`` passes over a (people x thresholds) block): at a million crowd faces and 401
thresholds that was about two thirds of the group frame's time
(``benchmarks/bench_group_frame.py``). With whole-number errors the ranking needs only how
many people share each (errors, searches) pair at each threshold: people with the same pair
are interchangeable, and both rankings (most errors, ties by the higher rate; the highest
rate, ties by more errors) order the pairs the same way at every threshold. A person's errors
change only at the thresholds its searches' scores fall between, so the counts of each pair
come from one difference array over those steps.

Ties are broken the same way in both rankings (people with the same pair are taken in one
fixed order), so a pair's people in the union of the two top-``k`` sets are
``max(taken by errors, taken by rate)``. That is what :func:`top_people` gives whenever its
two ``argpartition`` calls break a tie the same way; where they do not, it may keep one more
copy of a tied pair, which only widens the envelope's family by a data set equal to one
already in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lfr_eval.metrics._clustered import MONOTONE_TOP_PEOPLE
from lfr_eval.metrics._validation import MetricInputError

if TYPE_CHECKING:
    from lfr_eval.metrics._intervals import SubjectHistogram

#: cells (pairs x thresholds) of one block of the pair-count table
TOP_PEOPLE_BLOCK_CELLS = 4 * 2**20


def _segments(hist: SubjectHistogram) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, errors, searches) of each person's runs of equal errors over the sorted
    thresholds, runs with no error left out: the person has ``errors`` errors at every sorted
    threshold ``start <= t < end``."""
    bins = hist.bins
    if np.asarray(bins.data).dtype.kind not in "iu":
        raise MetricInputError(
            "histogram_top_people needs whole-number errors (integer bins); a histogram of "
            f"per-search values ({np.asarray(bins.data).dtype}) is ranked by top_people"
        )
    m = int(bins.shape[1]) - 1
    indptr = np.asarray(bins.indptr, dtype=np.int64)
    cols = np.asarray(bins.indices, dtype=np.int64)
    data = np.asarray(bins.data, dtype=np.int64)
    trials = np.asarray(hist.trials, dtype=np.int64)
    s = trials.shape[0]
    counts_per_row = np.diff(indptr)
    row = np.repeat(np.arange(s, dtype=np.int64), counts_per_row)
    # the csr columns are sorted within each row (subject_histogram builds them so); checked
    # here because the runs below rely on it
    if cols.size > 1:
        same_row = row[1:] == row[:-1]
        if np.any(cols[1:][same_row] <= cols[:-1][same_row]):
            order = np.lexsort((cols, row))
            row, cols, data = row[order], cols[order], data[order]
    # searches of the row at or above each entry's bin: a reverse cumulative sum within rows
    total = np.cumsum(data)
    row_end_total = total[indptr[1:] - 1][row] if data.size else total
    before = total - data
    suffix = row_end_total - before  # sum of data[p:row_end]
    first = np.ones(cols.shape[0], dtype=bool)
    first[1:] = row[1:] != row[:-1]
    start = np.where(first, 0, np.concatenate([[0], cols[:-1]]))
    # run p: sorted thresholds [bin of entry p-1, bin of entry p) reach ``suffix[p]`` hits;
    # after the row's last bin, none
    last = np.flatnonzero(counts_per_row > 0)
    last_col = cols[indptr[1:][last] - 1]
    starts = np.concatenate([start, last_col])
    ends = np.concatenate([cols, np.full(last.shape[0], m, np.int64)])
    hits = np.concatenate([suffix, np.zeros(last.shape[0], np.int64)])
    owner = np.concatenate([row, last])
    n = trials[owner]
    errors = hits if hist.error_is_hit else n - hits
    keep = (ends > starts) & (errors > 0) & (n > 0)
    return starts[keep], ends[keep], errors[keep], n[keep]


def histogram_top_people(
    hist: SubjectHistogram, k: int = 0, *, block_cells: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~lfr_eval.metrics._clustered.top_people` of a :class:`SubjectHistogram`.

    Parameters
    ----------
    hist : SubjectHistogram
        Per-person counts (whole-number errors).
    k : int
        How many by each ranking (0: :data:`MONOTONE_TOP_PEOPLE`).
    block_cells : int, optional
        Cells of the (pairs x thresholds) count table held at once
        (default :data:`TOP_PEOPLE_BLOCK_CELLS`); more pairs give narrower blocks of
        thresholds, never a larger table.

    Returns
    -------
    top_errors, top_trials : ndarray of float, shape (2k, m)
        At each threshold (the histogram's order) the union of the ``k`` people with the most
        errors (ties: the higher rate) and the ``k`` with the highest rate (ties: more
        errors), a person in both once; most errors first (ties: fewer searches), then empty
        slots holding 0 errors in 0 searches. The same people as :func:`top_people` of the
        dense counts (see the module docstring for ties).
    """
    k = k or MONOTONE_TOP_PEOPLE
    cells = TOP_PEOPLE_BLOCK_CELLS if block_cells is None else max(1, int(block_cells))
    m = int(hist.thresholds.shape[0])
    out_e = np.zeros((2 * k, m))
    out_n = np.zeros((2 * k, m))
    if m == 0:
        return out_e, out_n
    start, end, errors, n = _segments(hist)
    if errors.size == 0:
        return out_e, out_n
    base = int(n.max()) + 1
    pair_keys, pair_of = np.unique(errors * base + n, return_inverse=True)
    pair_of = pair_of.ravel()
    pair_e, pair_n = np.divmod(pair_keys, base)
    c = int(pair_keys.shape[0])
    # both rankings as orders of the pairs (exact: whole numbers, and e / n of distinct
    # fractions with these denominators are distinct floats)
    by_errors = np.lexsort((pair_n, -pair_e))
    rate = pair_e / pair_n
    by_rate = np.lexsort((-pair_e, -rate))
    width = max(1, min(m, cells // max(1, c)))
    sorted_e = np.zeros((2 * k, m))
    sorted_n = np.zeros((2 * k, m))
    slot_e = pair_e[by_errors].astype(np.float64)
    slot_n = pair_n[by_errors].astype(np.float64)
    for t0 in range(0, m, width):
        t1 = min(m, t0 + width)
        w = t1 - t0
        live = (start < t1) & (end > t0)
        s_, e_, p_ = np.maximum(start[live], t0) - t0, np.minimum(end[live], t1) - t0, pair_of[live]
        size = c * (w + 1)
        diff = np.bincount(p_ * (w + 1) + s_, minlength=size) - np.bincount(
            p_ * (w + 1) + e_, minlength=size
        )
        diff = diff.reshape(c, w + 1)
        counts = np.cumsum(diff[:, :w], axis=1)  # (c, w): people of each pair at each t
        take = []
        for order in (by_errors, by_rate):
            ranked = counts[order]
            before = np.cumsum(ranked, axis=0) - ranked
            taken = np.clip(k - before, 0, ranked)
            back = np.empty_like(taken)
            back[order] = taken
            take.append(back)
        union = np.maximum(take[0], take[1])[by_errors]  # (c, w) in the errors order
        cols, pairs = np.nonzero(union.T)  # column-major: each column's pairs in order
        reps = union.T[cols, pairs]
        cols_rep = np.repeat(cols, reps)
        pairs_rep = np.repeat(pairs, reps)
        firsts = np.concatenate([[0], np.cumsum(np.bincount(cols_rep, minlength=w))[:-1]])
        slot = np.arange(cols_rep.shape[0]) - firsts[cols_rep]
        sorted_e[slot, t0 + cols_rep] = slot_e[pairs_rep]
        sorted_n[slot, t0 + cols_rep] = slot_n[pairs_rep]
    order = np.argsort(np.asarray(hist.thresholds, dtype=np.float64), kind="stable")
    out_e[:, order] = sorted_e
    out_n[:, order] = sorted_n
    return out_e, out_n
