"""The threshold histogram's increments: scalar (the kernel's) against AVX-512 gather/scatter.

The numpy kernel's reduction makes one increment per (probe, subject) pair: the pair's cell
``group offset + threshold bin`` of the probe's histogram row gets +1. That increment is
a scalar read-modify-write (``search/_kernel_numba.py``: uint16 cells flushed into int32 ones
before they could wrap, four pairs per branch, the cells prefetched two rows ahead), about 1 ns
of the kernel's ~3.2 ns per pair. This script measures whether AVX-512 can do it faster, on the
same cell indices:

- ``u16_scalar``: the kernel's own loop (no test per increment);
- ``u8_scalar``: the kernel's loop until 2026-12-02 (uint8 cells, a wrap test per increment,
  carried into int32 cells: ``_bump`` / ``_carry4`` below);
- ``i32_scalar``: the same with int32 cells (what gather/scatter needs: dword lanes);
- ``i32_conflict``: 16 pairs at a time with AVX-512CD: ``vpconflictd`` gives each lane the
  earlier lanes with the same cell, ``vpopcntd`` their number, then ``vpgatherdd`` the cells,
  add 1 + that number, ``vpscatterdd`` them back (a scatter's later lanes win, so the last lane
  of a cell writes its full count); with and without the prefetch;
- ``i32_lane_private``: no conflicts at all (each lane its own copy of every cell: cell × 16 +
  lane), the cheapest gather/scatter there can be, before the 16 copies are even summed.

The vector code is LLVM's ``llvm.masked.gather`` / ``llvm.masked.scatter`` and
``llvm.x86.avx512.conflict.d.512`` through a numba intrinsic (like the kernel's prefetch).
Cell indices come from real scores: 512 probe rows × 512 subjects per tile (the kernel's
tile), 8 tiles, 128-d unit vectors, 4 count groups × 1,000 thresholds. All variants are checked
to give exact counts, then timed interleaved in one process, thread CPU time, the minimum of
``--rounds`` (load only adds time). Needs an AVX-512CD CPU (checked; exits with a message
otherwise).

    python benchmarks/bench_kernel_histogram.py --out benchmarks/results/kernel_histogram_simd.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
from _machine import LoadSampler, cpu_model, finish_report
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from lfr_eval.search._kernel_numba import _prefetch_for_write


@numba.njit(nogil=True, inline="always")
def _bump(hist, i, c):  # type: ignore[no-untyped-def]
    """Add one to row ``i``'s uint8 cell ``c``; True when it wrapped to 0 (the previous
    kernel's increment)."""
    h = np.uint8(hist[i, c] + np.uint8(1))
    hist[i, c] = h
    return h == 0


@numba.njit(nogil=True)
def _carry4(hist, hist_hi, i, c0, c1, c2, c3):  # type: ignore[no-untyped-def]
    """After four increments of which one or more wrapped a cell: a cell that got m of the
    four wrapped iff its value is now below m; carry one for each such cell."""
    cells = (c0, c1, c2, c3)
    for q in range(4):
        c = cells[q]
        first = True
        m = 0
        for p in range(4):
            if cells[p] == c:
                m += 1
                if p < q:
                    first = False
        if first and np.int64(hist[i, c]) < m:
            hist_hi[i, c] += 1


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _make_hist16(private: bool) -> Any:
    """``hist16(hist, i, codes, s)``: ``hist[i, codes[s:s + 16]] += 1`` in AVX-512 (int32
    cells); ``private``: each lane adds to its own copy (cell × 16 + lane), no conflicts."""

    def typing(typingctx, hist, i, codes, s):  # type: ignore[no-untyped-def]
        sig = types.void(hist, i, codes, s)

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            histty, ity, codesty, sty = signature.args
            h = context.make_array(histty)(context, builder, args[0])
            c = context.make_array(codesty)(context, builder, args[2])
            at = context.cast(builder, args[3], sty, types.intp)
            code_ptr = cgutils.get_item_pointer(context, builder, codesty, c, [at])  # type: ignore[no-untyped-call]
            i32 = ir.IntType(32)
            v16 = ir.VectorType(i32, 16)
            mask_t = ir.VectorType(ir.IntType(1), 16)
            ptr_v = ir.VectorType(i32.as_pointer(), 16)
            idx = builder.load(builder.bitcast(code_ptr, v16.as_pointer()), align=4)
            if private:
                idx = builder.add(
                    builder.shl(idx, ir.Constant(v16, [4] * 16)), ir.Constant(v16, list(range(16)))
                )
            row = context.cast(builder, args[1], ity, types.intp)
            zero = context.get_constant(types.intp, 0)
            base = cgutils.get_item_pointer(context, builder, histty, h, [row, zero])  # type: ignore[no-untyped-call]
            # one base and 16 dword indices: LLVM selects vpgatherdd / vpscatterdd
            ptrs = builder.gep(builder.bitcast(base, i32.as_pointer()), [idx], source_etype=i32)
            ptrs.type = ptr_v  # a vector GEP: one pointer per lane
            mod = builder.module

            def fn(name: str, ret: ir.Type, argtys: list[ir.Type]) -> Any:
                return cgutils.get_or_insert_function(mod, ir.FunctionType(ret, argtys), name)  # type: ignore[no-untyped-call]

            add = ir.Constant(v16, [1] * 16)
            if not private:
                conflict = fn("llvm.x86.avx512.conflict.d.512", v16, [v16])
                popcount = fn("llvm.ctpop.v16i32", v16, [v16])
                add = builder.add(builder.call(popcount, [builder.call(conflict, [idx])]), add)
            gather = fn("llvm.masked.gather.v16i32.v16p0", v16, [ptr_v, i32, mask_t, v16])
            scatter = fn(
                "llvm.masked.scatter.v16i32.v16p0", ir.VoidType(), [v16, ptr_v, i32, mask_t]
            )
            every = ir.Constant(mask_t, [1] * 16)
            old = builder.call(
                gather, [ptrs, ir.Constant(i32, 4), every, ir.Constant(v16, [0] * 16)]
            )
            builder.call(scatter, [builder.add(old, add), ptrs, ir.Constant(i32, 4), every])
            return context.get_dummy_value()

        return sig, codegen

    return intrinsic(typing)


_hist16 = _make_hist16(private=False)
_hist16_private = _make_hist16(private=True)


@numba.njit(nogil=True, boundscheck=False)
def u8_scalar(hist, hist_hi, codes, reps):  # type: ignore[no-untyped-def]
    n, w = codes.shape[1], codes.shape[2]
    n4 = np.uint64(w - (w & 3))
    for r in range(reps):
        t = r % codes.shape[0]
        for i in range(n):
            ahead = min(i + 2, n - 1)
            s4 = np.uint64(0)
            while s4 < n4:
                u0 = np.uint32(codes[t, i, s4])
                u1 = np.uint32(codes[t, i, s4 + np.uint64(1)])
                u2 = np.uint32(codes[t, i, s4 + np.uint64(2)])
                u3 = np.uint32(codes[t, i, s4 + np.uint64(3)])
                _prefetch_for_write(hist, ahead, u0)
                if (
                    _bump(hist, i, u0)
                    | _bump(hist, i, u1)
                    | _bump(hist, i, u2)
                    | _bump(hist, i, u3)
                ):
                    _carry4(hist, hist_hi, i, u0, u1, u2, u3)
                s4 += np.uint64(4)


@numba.njit(nogil=True, boundscheck=False)
def u16_scalar(hist, codes, reps):  # type: ignore[no-untyped-def]
    # the kernel's loop: uint16 cells, no test (the kernel flushes them into int32 cells
    # before any could wrap; 16 tiles of 512 stay far below 65,535 here)
    n, w = codes.shape[1], codes.shape[2]
    n4 = np.uint64(w - (w & 3))
    for r in range(reps):
        t = r % codes.shape[0]
        for i in range(n):
            ahead = min(i + 2, n - 1)
            s4 = np.uint64(0)
            while s4 < n4:
                u0 = np.uint32(codes[t, i, s4])
                _prefetch_for_write(hist, ahead, u0)
                hist[i, u0] += np.uint16(1)
                hist[i, np.uint32(codes[t, i, s4 + np.uint64(1)])] += np.uint16(1)
                hist[i, np.uint32(codes[t, i, s4 + np.uint64(2)])] += np.uint16(1)
                hist[i, np.uint32(codes[t, i, s4 + np.uint64(3)])] += np.uint16(1)
                s4 += np.uint64(4)


@numba.njit(nogil=True, boundscheck=False)
def i32_scalar(hist, codes, reps):  # type: ignore[no-untyped-def]
    n, w = codes.shape[1], codes.shape[2]
    for r in range(reps):
        t = r % codes.shape[0]
        for i in range(n):
            ahead = min(i + 2, n - 1)
            for s in range(w):
                c = np.uint32(codes[t, i, s])
                if (s & 3) == 0:
                    _prefetch_for_write(hist, ahead, c)
                hist[i, c] += 1


@numba.njit(nogil=True, boundscheck=False)
def i32_conflict(hist, rows, reps, prefetch):  # type: ignore[no-untyped-def]
    # rows: (tiles × n, w) int32, each probe row's cells contiguous for the vector loads
    n = hist.shape[0]
    w = rows.shape[1]
    tiles = rows.shape[0] // n
    for r in range(reps):
        t = r % tiles
        for i in range(n):
            ahead = min(i + 2, n - 1)
            row = t * n + i
            for s in range(0, w - 15, 16):
                if prefetch:
                    _prefetch_for_write(hist, ahead, np.uint32(rows[row, s]))
                _hist16(hist, i, rows[row], s)


@numba.njit(nogil=True, boundscheck=False)
def i32_lane_private(hist, rows, reps):  # type: ignore[no-untyped-def]
    n = hist.shape[0]
    w = rows.shape[1]
    tiles = rows.shape[0] // n
    for r in range(reps):
        t = r % tiles
        for i in range(n):
            row = t * n + i
            for s in range(0, w - 15, 16):
                _hist16_private(hist, i, rows[row], s)


def cell_indices(
    tiles: int = 8, n: int = 512, w: int = 512, groups: int = 4, n_thr: int = 1000
) -> tuple[np.ndarray, int]:
    """Histogram cells of real cosine scores (128-d unit vectors), the kernel's layout:
    ``group × (T + 1) + bin``; returns (tiles, n, w) int32 and the cells per row."""
    rng = np.random.default_rng(0)
    p = rng.standard_normal((n, 128), dtype=np.float32)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    out = np.empty((tiles, n, w), np.int32)
    for t in range(tiles):
        g = rng.standard_normal((w, 128), dtype=np.float32)
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        bins = np.floor(((p @ g.T) + 1) / 2 * (n_thr - 1) + 1).astype(np.int32)
        out[t] = rng.integers(0, groups, w).astype(np.int32)[None, :] * (n_thr + 1) + bins
    return out, (groups + 1) * (n_thr + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=32, help="tiles per timed call")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if "avx512cd" not in _cpu_flags():
        sys.exit("this benchmark needs a CPU with AVX-512CD (conflict detection)")
    codes, cells = cell_indices()
    n, w = codes.shape[1], codes.shape[2]
    rows = np.ascontiguousarray(codes.reshape(-1, w))
    u16 = np.zeros((n, cells), np.uint16)
    u8 = np.zeros((n, cells), np.uint8)
    u8_hi = np.zeros((n, cells), np.int32)
    i32 = np.zeros((n, cells), np.int32)
    vec = np.zeros((n, cells), np.int32)
    private = np.zeros((n, cells * 16), np.int32)
    # exact first (16 tiles: every cell below 256 wraps at least once in the uint8 cells)
    u16_scalar(u16, codes, 16)
    u8_scalar(u8, u8_hi, codes, 16)
    i32_scalar(i32, codes, 16)
    i32_conflict(vec, rows, 16, True)
    i32_lane_private(private, rows, 16)
    expected = np.zeros((n, cells), np.int64)
    for t in range(16):
        for i in range(n):
            np.add.at(expected[i], codes[t % codes.shape[0], i], 1)
    exact = {
        "u16_scalar": bool(np.array_equal(u16, expected)),
        "u8_scalar": bool(np.array_equal(u8 + 256 * u8_hi.astype(np.int64), expected)),
        "i32_scalar": bool(np.array_equal(i32, expected)),
        "i32_conflict": bool(np.array_equal(vec, expected)),
        "i32_lane_private": bool(np.array_equal(private.reshape(n, cells, 16).sum(2), expected)),
    }
    if not all(exact.values()):
        sys.exit(f"a variant miscounts: {exact}")
    variants = {
        "u16_scalar_prefetch (the kernel's)": lambda: u16_scalar(u16, codes, args.reps),
        "u8_scalar_prefetch (the kernel's until 2026-12-02)": lambda: u8_scalar(
            u8, u8_hi, codes, args.reps
        ),
        "i32_scalar_prefetch": lambda: i32_scalar(i32, codes, args.reps),
        "i32_conflict_gather_scatter_prefetch": lambda: i32_conflict(vec, rows, args.reps, True),
        "i32_conflict_gather_scatter": lambda: i32_conflict(vec, rows, args.reps, False),
        "i32_lane_private_gather_scatter (no sum of the 16 copies)": lambda: i32_lane_private(
            private, rows, args.reps
        ),
    }
    best = dict.fromkeys(variants, np.inf)
    with LoadSampler(period=1.0) as load:
        for _ in range(args.rounds):
            for name, run in variants.items():
                start = time.thread_time()
                run()
                best[name] = min(best[name], time.thread_time() - start)
    pairs = args.reps * n * w
    report = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "numba": numba.__version__},
        "pairs_per_call": pairs,
        "rounds": args.rounds,
        "exact": exact,
        "ns_per_pair_thread_cpu_min": {k: round(v / pairs * 1e9, 3) for k, v in best.items()},
        "load_average_samples": load.samples,
    }
    finish_report(report, args.out)


if __name__ == "__main__":
    main()
