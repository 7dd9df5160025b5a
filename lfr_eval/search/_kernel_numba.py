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
2. a scalar pass that adds one to the slot of every subject (one increment per pair), four
   subjects at a time with one sign test for the four and no other test (a branch per
   increment cost as much as the increment itself); groups with a slow subject are only noted,
   and a third pass computes their exact bins and tries the top-k insertions. While a row is
   counted, the histogram cells it touches are prefetched in the row two ahead (same
   subjects, similar scores): those cache misses cost as much as the increments. The
   prefetch is a hand-declared LLVM intrinsic: where a numba/llvmlite cannot compile it
   (checked once per process at import, :data:`PREFETCH`), the kernel runs the same loop
   without it, after one :class:`PrefetchUnavailableWarning` line, with the same numbers.

Until a row's top-k is full (its first tile) the top-k is made by a plain scalar pass first,
so that the vector pass then flags only what is near a threshold.

Threshold bins are exact: a score ``x`` goes to bin ``b = #{t : thr32[t] <= x}`` (``thr32`` is
the grid rounded up to float32, so the comparison is the float64 one). On a uniform grid the
bin is ``floor(x / step + 1 - thr32[0] / step)``, trusted only when that position lies more
than ``delta`` (the grid's deviation from uniform plus the float32 rounding bound) from an
integer; otherwise the bin comes from a look-up table and a forward step over the sorted
thresholds.

The histogram cells are uint16 (half of int32's cache footprint: the histogram rows of a
probe chunk are what the reduction misses in cache), flushed into int32 cells (``hist_wide``)
before any cell could wrap: a row adds at most one per subject, so the increment loop needs no
wrap test, and a flush comes once per 65,535 subjects (every 63 tiles of 1,024 templates;
wider tiles are reduced in windows of 32,768 subjects). A cell's count is
``hist + hist_wide``. The uint8 cells with int32 carries used before needed a wrap test per
increment; without it the reduction costs 12–20% less (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import warnings
from typing import Any

import llvmlite
import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload


def _prefetch_typing(typingctx, arr, i, j):  # type: ignore[no-untyped-def]
    """Hint the CPU to fetch the cache line of ``arr[i, j]`` (2-D) for writing (LLVM's
    ``llvm.prefetch``: ``prefetchw`` on x86; never faults). numba has no prefetch of its own."""
    sig = types.void(arr, i, j)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aryty, ity, jty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [
            context.cast(builder, args[1], ity, types.intp),
            context.cast(builder, args[2], jty, types.intp),
        ]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx)  # type: ignore[no-untyped-call]
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, fnty, "llvm.prefetch"
        )
        # rw = 1 (write), locality = 3 (keep in every level), cache type = 1 (data)
        builder.call(
            fn,
            [
                builder.bitcast(ptr, i8p),
                ir.Constant(i32, 1),
                ir.Constant(i32, 3),
                ir.Constant(i32, 1),
            ],
        )
        return context.get_dummy_value()

    return sig, codegen


#: ``_prefetch_for_write(arr, i, j)`` inside compiled code
_prefetch_for_write: Any = intrinsic(_prefetch_typing)


class PrefetchUnavailableWarning(RuntimeWarning):
    """This numba/llvmlite cannot compile the histogram prefetch; the kernel runs without it
    (the same numbers, somewhat slower)."""


def _maybe_prefetch(flag: bool | None, arr: np.ndarray, i: Any, j: Any) -> None:
    """``_prefetch_for_write(arr, i, j)`` when ``flag`` is True, nothing when it is None: the
    two are two compiled versions of :func:`reduce_rows` (distinct argument types, so numba
    caches them apart), and the plain one never touches the intrinsic."""


@overload(_maybe_prefetch, inline="always")
def _maybe_prefetch_impl(flag, arr, i, j):  # type: ignore[no-untyped-def]
    if isinstance(flag, types.NoneType):
        return lambda flag, arr, i, j: None
    return lambda flag, arr, i, j: _prefetch_for_write(arr, i, j)


@numba.njit(cache=True, nogil=True)
def _prefetch_probe(flag, arr):  # type: ignore[no-untyped-def]
    _maybe_prefetch(flag, arr, 0, 0)
    return arr[0, 0]


def _prefetch_flag() -> bool | None:
    """True when this numba/llvmlite compiles the prefetch intrinsic (a one-line check, cached
    on disk like the kernel); None, with one :class:`PrefetchUnavailableWarning`, when it does
    not. Written for numba 0.68.1 / llvmlite 0.50: the intrinsic declares ``llvm.prefetch``
    by hand, which another LLVM may reject."""
    try:
        _prefetch_probe(True, np.zeros((1, 1), np.uint16))
    except Exception as exc:  # noqa: BLE001 - any compile failure means: run without it
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        # line 0: the warning prints as one line (no source line under it)
        warnings.warn_explicit(
            f"numba {numba.__version__} / llvmlite {llvmlite.__version__} cannot compile the "
            f"scoring kernel's histogram prefetch ({type(exc).__name__}: {reason}); the kernel "
            "runs without it: the same numbers, somewhat slower",
            PrefetchUnavailableWarning,
            __file__,
            0,
            module=__name__,
        )
        return None
    return True


#: Passed as :func:`reduce_rows`'s ``prefetch`` argument: True, or None without the intrinsic.
PREFETCH: bool | None = _prefetch_flag()


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
def _enters(i, v, subject, kth, top_j):  # type: ignore[no-untyped-def]
    """True when subject ``subject`` with score ``v`` belongs in row ``i``'s top-k, whose k-th
    best score is ``kth``: the order is score descending, then subject code ascending. The
    rule is stated here rather than left to the visit order (subjects come in code order
    today), so a score equal to the k-th best enters when its subject's code is the lower one."""
    return v > kth or (v == kth and subject < top_j[i, top_j.shape[1] - 1])


@numba.njit(cache=True, nogil=True, inline="always")
def _insert(i, v, subject, row, top_s, top_j, top_r):  # type: ignore[no-untyped-def]
    """Put score ``v`` into row ``i``'s descending top-k (among equal scores the lower subject
    code first, whatever the order the subjects come in; only called when :func:`_enters`);
    returns the new k-th best score."""
    k = top_s.shape[1]
    pos = k - 1
    while pos > 0 and (
        top_s[i, pos - 1] < v or (top_s[i, pos - 1] == v and top_j[i, pos - 1] > subject)
    ):
        top_s[i, pos] = top_s[i, pos - 1]
        top_j[i, pos] = top_j[i, pos - 1]
        top_r[i, pos] = top_r[i, pos - 1]
        pos -= 1
    top_s[i, pos] = v
    top_j[i, pos] = subject
    top_r[i, pos] = row
    return top_s[i, k - 1]


#: Most increments a uint16 histogram cell takes between two flushes into the int32 cells.
_CELL_MAX = 65535


@numba.njit(cache=True, nogil=True)
def _flush(hist, hist_wide):  # type: ignore[no-untyped-def]
    """Move every row's uint16 counts into its int32 cells (``hist`` is zero afterwards)."""
    for i in range(hist.shape[0]):
        for c in range(hist.shape[1]):
            hist_wide[i, c] += np.int32(hist[i, c])
            hist[i, c] = 0


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
    hist,  # (n, H) uint16, in/out: per group (gbase) T + 1 bins, since the last flush
    hist_wide,  # (n, H) int32, in/out: the flushed counts (a cell counts hist + hist_wide)
    pending,  # (1,) int64, in/out: increments per row since the last flush (same for all rows)
    best_buf,  # (1, >= n_sub) float32 scratch (several templates per subject)
    arg_buf,  # (>= n_sub,) int64 scratch
    code_buf,  # (>= n_sub,) int32 scratch
    flag_buf,  # (>= n_sub // 4 + 1,) uint64 scratch
    prefetch,  # True: prefetch histogram rows (PREFETCH); None: the plain loop
):
    n = sims.shape[0]
    k = top_s.shape[1]
    n_thr = thr.shape[0] - 1
    lo_pos = np.float32(0.5)
    hi_pos = np.float32(n_thr) + np.float32(0.5)
    # on a non-uniform grid no position is trusted: every subject takes the exact path
    half = np.float32(0.5) - u_delta if uniform else np.float32(-1.0)
    code = code_buf
    n_sub = local_starts.shape[0] - 1
    if n_thr > 0:
        # each row adds at most one to one cell per subject: flushing whenever this tile
        # could take a cell past _CELL_MAX keeps every uint16 cell exact with no test in the
        # increment loop (the caller cuts wider tiles into windows, see _kernel)
        if n_sub > _CELL_MAX:
            raise ValueError("reduce_rows: more than 65,535 subjects in one call")
        if pending[0] + n_sub > _CELL_MAX:
            _flush(hist, hist_wide)
            pending[0] = 0
        pending[0] += n_sub
    n4 = np.uint64(n_sub - (n_sub & 3))
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
        # subjects above the mate: every (finite) score is above -inf, so a probe without
        # a mate needs no pass
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
        # top-k is not full (its first tile): there the vector pass would flag every
        # subject as a candidate and send it down the slow path
        scan = n_thr <= 0 or kth == -np.inf
        if scan:
            for s in range(n_sub):
                v = scores[r, s]
                if _enters(i, v, subject_offset + s, kth, top_j):
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
            # a score equal to the k-th best may enter (a lower code): slow path
            fast = (abs(y - f - np.float32(0.5)) < half) & (v < kth)
            code[s] = np.int32(gbase_f[s] + f if fast else np.float32(-1.0))
        # 2. scalar pass: one increment per subject, four at a time (one sign test for the
        # four slots, no wrap test: see the flush above); a group of four with a flagged
        # subject is only noted here, so the hot loop keeps its few values in registers
        # (unsigned indices: no negative-index code)
        n_flag = 0
        s4 = np.uint64(0)
        # the row two ahead will mostly touch the same histogram cells as this one (the
        # same subjects, similar scores): prefetching them hides its cache misses, which
        # cost as much as the increments (the rows' histograms do not all stay in L1/L2)
        ahead = min(i + 2, n - 1)
        while s4 < n4:
            c0 = code[s4]
            c1 = code[s4 + np.uint64(1)]
            c2 = code[s4 + np.uint64(2)]
            c3 = code[s4 + np.uint64(3)]
            if (c0 | c1 | c2 | c3) >= 0:
                u0 = np.uint32(c0)
                _maybe_prefetch(prefetch, hist, ahead, u0)
                hist[i, u0] += np.uint16(1)
                hist[i, np.uint32(c1)] += np.uint16(1)
                hist[i, np.uint32(c2)] += np.uint16(1)
                hist[i, np.uint32(c3)] += np.uint16(1)
            else:
                flag_buf[n_flag] = s4
                n_flag += 1
            s4 += np.uint64(4)
        # 3. the noted groups and the last n_sub % 4 subjects, flagged ones exactly
        for g4 in range(n_flag + 1):
            first = np.int64(flag_buf[g4]) if g4 < n_flag else np.int64(n4)
            stop = first + 4 if g4 < n_flag else n_sub
            for s in range(first, stop):
                c = code[s]
                if c < 0:
                    v = scores[r, s]
                    c = gbase[s] + _exact_bin(v, thr, lut, lut_lo, lut_inv_h)
                    if not scan and _enters(i, v, subject_offset + s, kth, top_j):
                        kth = _insert(
                            i, v, subject_offset + s,
                            row_offset + (s if single else arg_buf[s]),
                            top_s, top_j, top_r,
                        )  # fmt: skip
                hist[i, np.uint32(c)] += np.uint16(1)
        if 0 <= mate < n_sub:
            # the mate was counted above: take it back out of its int32 cell (a cell's
            # count is the sum of both, so the int32 part may go below zero meanwhile)
            c = np.uint32(gbase[mate] + _exact_bin(scores[r, mate], thr, lut, lut_lo, lut_inv_h))
            hist_wide[i, c] -= 1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def set_reverse_sums(hist, hist_wide, counts, n_thr):  # type: ignore[no-untyped-def]
    """``counts[i, g, t] = sum(bins t + 1 … T of group g)``: the subjects at or above each
    threshold, from one chunk's histograms (uint16 ``hist`` plus its flushed int32 cells
    ``hist_wide``); the last group of a row (the uncounted) is skipped. Every element of
    ``counts`` is written (assigned, not added: it may be uninitialised rows of a memory-mapped
    file, filled by the scoring threads in parallel)."""
    for i in range(counts.shape[0]):
        for g in range(counts.shape[1]):
            base = g * (n_thr + 1)
            run = 0
            for b in range(n_thr, 0, -1):
                run += np.int64(hist[i, base + b]) + np.int64(hist_wide[i, base + b])
                counts[i, g, b - 1] = run
