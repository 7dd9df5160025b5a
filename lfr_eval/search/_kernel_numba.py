"""The numpy backend's compiled (numba) reduction of one similarity tile.

Imported on first use by :mod:`lfr_eval.search._kernel` (numba compiles it once and caches the
machine code on disk). One call reduces a (probe rows × tile templates) float32 block that the
calling thread has just filled with one BLAS product, while that block is still in the core's
cache: each subject's best template, the top-k, the subjects above the mate and the per-group
threshold histogram.

Per probe row it makes two passes over the tile's subjects:

1. a vector pass (LLVM vectorises it: float32 lanes only, no reductions) that gives every
   subject its histogram slot ``group offset + bin`` on a uniform grid, or ``-1`` ("slow") where
   the arithmetic bin is too close to a threshold to be trusted, where the grid is not uniform,
   or where the score could enter the top-k (above the k-th best so far);
2. a scalar pass that adds one to the slot of every subject (one increment per pair) and, for
   the rare slow ones, computes the exact bin and tries the top-k insertion.

Until a row's top-k is full (its first tile) the top-k is made by a plain scalar pass first,
so that the vector pass then flags only what is near a threshold.

Threshold bins are exact: a score ``x`` goes to bin ``b = #{t : thr32[t] <= x}`` (``thr32`` is
the grid rounded up to float32, so the comparison is the float64 one). On a uniform grid the
bin is ``floor(x / step + 1 - thr32[0] / step)``, trusted only when that position lies more
than ``delta`` (the grid's deviation from uniform plus the float32 rounding bound) from an
integer; otherwise the bin comes from a look-up table and a forward step over the sorted
thresholds. The histogram is uint16 (half the cache footprint of int32): the caller adds it
into int32 before any slot could pass 65,535 (at most one increment per subject and row).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _exact_bin(x, thr, lut, lut_lo, lut_inv_h):  # type: ignore[no-untyped-def]
    """Number of thresholds at or below ``x`` (``thr`` ends with a +inf sentinel)."""
    y = (x - lut_lo) * lut_inv_h
    y = min(max(y, np.float32(0.0)), np.float32(lut.shape[0] - 2))
    b = lut[np.int32(y)]
    while thr[b] <= x:
        b += 1
    return b


@numba.njit(cache=True, nogil=True, inline="always")
def _insert(i, v, subject, row, top_s, top_j, top_r):  # type: ignore[no-untyped-def]
    """Put score ``v`` into row ``i``'s descending top-k (strict ``<`` keeps the lower subject
    first among equal scores); returns the new k-th best score."""
    k = top_s.shape[1]
    pos = k - 1
    while pos > 0 and top_s[i, pos - 1] < v:
        top_s[i, pos] = top_s[i, pos - 1]
        top_j[i, pos] = top_j[i, pos - 1]
        top_r[i, pos] = top_r[i, pos - 1]
        pos -= 1
    top_s[i, pos] = v
    top_j[i, pos] = subject
    top_r[i, pos] = row
    return top_s[i, k - 1]


@numba.njit(cache=True, nogil=True, fastmath=False, boundscheck=False)
def reduce_rows(  # type: ignore[no-untyped-def]  # noqa: C901 - one numba pass, kept together
    sims,  # (n, w) float32: probes × the tile's templates
    single,  # bool: one template per subject (local_starts is then 0..n_sub)
    local_starts,  # (n_sub + 1,) int64: subject runs within the tile
    subject_offset,  # int: code of the tile's first subject
    row_offset,  # int: gallery row of the tile's first template
    gbase,  # (n_sub,) int32: offset of each subject's group in a histogram row
    gbase_f,  # (n_sub,) float32: the same offsets as floats (the vector pass's lanes)
    mates,  # (n,) int64: mate code of each probe (-1: none)
    mate_sc,  # (n,) float32: mate score of each probe (-inf: none)
    thr,  # (T + 1,) float32 ascending with a +inf sentinel; T == 0: no counts
    lut,  # (cells + 1,) int32: thresholds at or below each cell's start
    lut_lo,  # float32: score at the table's first cell
    lut_inv_h,  # float32: cells per unit of score
    uniform,  # bool: thr is a uniform grid (arithmetic bins)
    u_shift,  # float32: 1 - thr[0] / step (uniform grids)
    u_inv_step,  # float32: 1 / grid step (uniform grids)
    u_delta,  # float32: distance from an integer position below which a bin is recomputed
    top_s,  # (n, k) float32, in/out, descending
    top_j,  # (n, k) int64, in/out
    top_r,  # (n, k) int64, in/out
    higher,  # (n,) int64, in/out
    hist,  # (n, H) uint16, in/out: per group (gbase) T + 1 bins
    best_buf,  # (1, >= n_sub) float32 scratch (several templates per subject)
    arg_buf,  # (>= n_sub,) int64 scratch
    code_buf,  # (>= n_sub,) int32 scratch
):
    n = sims.shape[0]
    n_sub = local_starts.shape[0] - 1
    k = top_s.shape[1]
    n_thr = thr.shape[0] - 1
    lo_pos = np.float32(0.5)
    hi_pos = np.float32(n_thr) + np.float32(0.5)
    # on a non-uniform grid no position is trusted: every subject takes the exact path
    half = np.float32(0.5) - u_delta if uniform else np.float32(-1.0)
    code = code_buf
    for i in range(n):
        # each subject's best template: row r of ``scores`` (2-D indexing throughout, no
        # per-row array views: their reference counting costs more than a short row's work)
        if single:
            scores = sims
            r = i
        else:
            scores = best_buf
            r = 0
            for s in range(n_sub):
                a = local_starts[s]
                v_best = sims[i, a]
                a_best = a
                for t in range(a + 1, local_starts[s + 1]):
                    v = sims[i, t]
                    if v > v_best:
                        v_best = v
                        a_best = t
                best_buf[0, s] = v_best
                arg_buf[s] = a_best
        mate = mates[i] - subject_offset  # local index of the mate (may be outside)
        ms = mate_sc[i]
        kth = top_s[i, k - 1]
        # subjects above the mate: every (finite) score is above -inf, so a probe without a
        # mate needs no pass
        if ms == -np.inf:
            above = n_sub
        else:
            above = 0
            for s in range(n_sub):
                above += scores[r, s] > ms
        if 0 <= mate < n_sub and scores[r, mate] > ms:
            above -= 1  # the mate is not above itself (its score may round differently)
        higher[i] += above
        # the top-k in a plain scalar pass when there are no counts, and while the row's
        # top-k is not full (its first tile): there the vector pass would flag every subject
        # as a candidate and send it down the slow path
        scan = n_thr <= 0 or kth == -np.inf
        if scan:
            for s in range(n_sub):
                v = scores[r, s]
                if v > kth:
                    kth = _insert(
                        i, v, subject_offset + s, row_offset + (s if single else arg_buf[s]),
                        top_s, top_j, top_r,
                    )  # fmt: skip
        if n_thr <= 0:
            continue
        # 1. vector pass: histogram slot, or -1 for the exact path / a top-k candidate
        for s in range(n_sub):
            v = scores[r, s]
            y = min(max(v * u_inv_step + u_shift, lo_pos), hi_pos)
            f = np.floor(y)
            fast = (abs(y - f - np.float32(0.5)) < half) & (v <= kth)
            code[s] = np.int32(gbase_f[s] + f if fast else np.float32(-1.0))
        # 2. scalar pass: one increment per subject (increments cannot be vectorised)
        for s in range(n_sub):
            c = code[s]
            if c < 0:
                v = scores[r, s]
                c = gbase[s] + _exact_bin(v, thr, lut, lut_lo, lut_inv_h)
                if v > kth and not scan:
                    kth = _insert(
                        i, v, subject_offset + s, row_offset + (s if single else arg_buf[s]),
                        top_s, top_j, top_r,
                    )  # fmt: skip
            hist[i, np.uint32(c)] += 1
        if 0 <= mate < n_sub:
            c = gbase[mate] + _exact_bin(scores[r, mate], thr, lut, lut_lo, lut_inv_h)
            hist[i, np.uint32(c)] -= 1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def add_reverse_sums(hist, total, counts, n_thr):  # type: ignore[no-untyped-def]
    """``counts[i, g, t] += sum(bins t + 1 … T of group g)``: the subjects at or above each
    threshold, from one chunk's histograms (uint16 ``hist`` plus the int32 ``total`` of its
    flushes, or an empty ``total``); the last group of a row (the uncounted) is skipped."""
    flushed = total.shape[0] > 0
    for i in range(counts.shape[0]):
        for g in range(counts.shape[1]):
            base = g * (n_thr + 1)
            run = 0
            for b in range(n_thr, 0, -1):
                run += hist[i, base + b]
                if flushed:
                    run += total[i, base + b]
                counts[i, g, b - 1] += run
