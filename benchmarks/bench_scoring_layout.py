"""Why and how the scoring numbers are independent of the memory setting.

Two checks, each a sub-command:

- ``shapes``: does this machine's BLAS round a dot product differently depending on the shape
  of the matrix product it is part of? Every (rows × columns) product of unit 128-d (and 512-d)
  float32 vectors is compared, element by element, with the same elements of a 512 × 512
  product (the scoring kernel's layout), with one BLAS thread and with two. OpenBLAS 0.3.31
  here: products of one or two rows or columns, and small ones (up to about 1,200 elements:
  16 × 64, 3 × 400, 256 × 4) differ in the last bits, at 128-d and 512-d alike; larger ones
  agree whatever their shape or offset. The kernel therefore
  fixes its products' shapes (``lfr_eval.search._kernel.chunk_layout``) rather than relying on
  where this line falls on another machine.
- ``memory``: :func:`~lfr_eval.search._blocks.score_probes` at several memory settings on the
  same data (probes × gallery, 1,000 thresholds, 4 count groups, k = 20), interleaved and
  repeated: rows per block, wall and CPU seconds, and whether every array is bit-identical to
  the first setting's.

Usage (from the repository root; the JSON goes to ``--out``)::

    python benchmarks/bench_scoring_layout.py shapes --out shapes.json     # 10 s
    python benchmarks/bench_scoring_layout.py memory --out memory.json     # 1-2 min
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from _machine import cpu_model, finish_report

ROWS = (1, 2, 3, 4, 8, 16, 32, 64, 100, 256, 511, 512, 1024)
COLS = (1, 2, 3, 4, 8, 16, 64, 100, 256, 257, 400, 511, 512, 4096)


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _product(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    out = np.empty((p.shape[0], g.shape[0]), np.float32)
    np.matmul(p, g.T, out=out)  # the kernel's call
    return out


def shapes(args: argparse.Namespace) -> dict:
    from threadpoolctl import threadpool_info, threadpool_limits

    rng = np.random.default_rng(0)
    report: dict = {
        "blas": [
            {k: info.get(k) for k in ("internal_api", "version", "architecture")}
            for info in threadpool_info()
        ],
        "reference": "512 x 512 product; an entry is the share of elements that differ",
        "results": [],
    }
    for d in (128, 512):
        probes, gallery = _unit(rng, 1024, d), _unit(rng, 4096, d)
        for threads in (1, 2):
            with threadpool_limits(threads):
                ref = _product(probes[:512], gallery[:512])
                table: dict[str, float] = {}
                worst = 0.0
                for m in ROWS:
                    for n in COLS:
                        # offsets too: rows 5.. and columns 7.. of the same vectors
                        for r0, c0 in ((0, 0), (5, 7)):
                            got = _product(probes[r0 : r0 + m], gallery[c0 : c0 + n])
                            rr, cc = min(m, 512 - r0), min(n, 512 - c0)
                            want = ref[r0 : r0 + rr, c0 : c0 + cc]
                            share = float(np.mean(got[:rr, :cc] != want))
                            worst = max(worst, float(np.abs(got[:rr, :cc] - want).max()))
                            key = f"{m}x{n}"
                            table[key] = max(table.get(key, 0.0), share)
            differ = sorted(k for k, v in table.items() if v > 0)
            report["results"].append(
                {
                    "dim": d,
                    "blas_threads": threads,
                    "products_that_differ": differ,
                    "max_abs_difference": worst,
                    "share_differing": {k: round(v, 3) for k, v in table.items() if v > 0},
                }
            )
            print(f"d={d} threads={threads}: {len(differ)} of {len(table)} shapes differ: {differ}")
    return report


def memory(args: argparse.Namespace) -> dict:
    from lfr_eval.search._blocks import (
        _rows_per_block,
        score_probes,
        temporary_blocks_removed_on_success,
    )
    from lfr_eval.search._kernel import Gallery, warm_up

    warm_up()
    rng = np.random.default_rng(0)
    g = _unit(rng, args.gallery, 128)
    groups = rng.integers(0, 4, args.gallery)
    names = np.array([f"s{i:07d}" for i in range(args.gallery)])
    gallery = Gallery.build(g, names, subject_groups=groups, n_groups=4)
    probes = _unit(rng, args.probes, 128)
    thresholds = np.linspace(-1.0, 1.0, 1000)
    settings = [float(x) for x in args.memory_gib.split(",")]
    runs: dict[float, list[dict]] = {s: [] for s in settings}
    first = None
    identical = {s: True for s in settings}
    for repeat in range(args.repeats):
        order = settings if repeat % 2 == 0 else settings[::-1]
        for gib in order:
            memory_bytes = int(gib * 2**30)
            c0, t0 = time.process_time(), time.perf_counter()
            # counts memory-mapped in the temp dir are deleted after each run: a repeat must
            # not resume from the previous run's blocks
            with temporary_blocks_removed_on_success():
                part = score_probes(
                    probes, gallery, k=20, thresholds=thresholds, memory_bytes=memory_bytes
                )
                arrays = tuple(
                    np.array(a)
                    for a in (part.top_scores, part.top_subjects, part.top_rows, part.higher)
                ) + (np.array(part.counts),)
            runs[gib].append(
                {
                    "wall_s": time.perf_counter() - t0,
                    "cpu_s": time.process_time() - c0,
                    "load_1min": os.getloadavg()[0],
                }
            )
            if first is None:
                first = [np.array(a) for a in arrays]
            else:
                identical[gib] &= all(
                    np.array_equal(a, b) for a, b in zip(arrays, first, strict=True)
                )
    table = []
    for gib in settings:
        rows = _rows_per_block(args.probes, gallery, 20, len(thresholds), int(gib * 2**30))
        wall = [r["wall_s"] for r in runs[gib]]
        cpu = [r["cpu_s"] for r in runs[gib]]
        table.append(
            {
                "memory_gib": gib,
                "rows_per_block": rows,
                "blocks": -(-args.probes // rows),
                "wall_s_median": round(statistics.median(wall), 3),
                "cpu_s_median": round(statistics.median(cpu), 3),
                "wall_s": [round(x, 3) for x in wall],
                "cpu_s": [round(x, 3) for x in cpu],
                "load_1min": [round(r["load_1min"], 2) for r in runs[gib]],
                "bit_identical_to_first_setting": identical[gib],
            }
        )
        print(table[-1])
    return {
        "probes": args.probes,
        "gallery": args.gallery,
        "thresholds": len(thresholds),
        "count_groups": 4,
        "k": 20,
        "repeats": args.repeats,
        "settings": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("shapes").add_argument("--out")
    mem = sub.add_parser("memory")
    mem.add_argument("--out")
    mem.add_argument("--probes", type=int, default=8192)
    mem.add_argument("--gallery", type=int, default=50_000)
    mem.add_argument("--memory-gib", default="0.25,0.63,3")
    mem.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "load_average_start": os.getloadavg(),
    }
    report.update(shapes(args) if args.command == "shapes" else memory(args))
    finish_report(report, args.out)


if __name__ == "__main__":
    main()
