"""The numpy scoring kernel's tile layout: probe rows per chunk × templates per tile.

The kernel (``search/_kernel.py``) multiplies each chunk of ``_CHUNK_ROWS`` probe rows by one
gallery tile of ``tile_bytes / (4 × rows)`` templates at a time and reduces the product right
after (subject maxima, top-k, mate rank, the per-group threshold histogram). The layout sets
both the product's speed (OpenBLAS packs both operands for every call) and the reduction's
(each probe row's histogram lines are fetched once per tile). This script runs the real
``score_block`` — 1,000 thresholds on [-1, 1], 4 count groups, k = 20, one probe in 40 mated,
128-d random unit vectors — under several layouts, with 1 and 2 threads, repeated and
interleaved in one process, and reports the minimum and median CPU and wall ns per pair of
each (load only adds time). It first checks that every layout gives the same scores, top-k,
ranks and counts as 512 × 512 (large products round alike: ``tests/test_exact_scores.py``).

    python benchmarks/bench_kernel_layouts.py --probes 4096 --gallery 200000 --repeats 3 \\
        --layouts 512x512,512x1024 --out benchmarks/results/kernel_layouts.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from _machine import LoadSampler, cpu_model, finish_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lfr_eval.search import _kernel  # noqa: E402


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probes", type=int, default=4096)
    parser.add_argument("--gallery", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--layouts", default="512x512,512x1024", help="ROWSxTEMPLATES, comma-separated"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    layouts = [tuple(int(v) for v in item.split("x")) for item in args.layouts.split(",")]

    rng = np.random.default_rng(2)
    d = 128
    gallery = _kernel.Gallery.build(
        _unit(rng.standard_normal((args.gallery, d), dtype=np.float32)),
        np.array([f"g{i:07d}" for i in range(args.gallery)]),
        subject_groups=rng.integers(0, 4, args.gallery),
    )
    probes = _unit(rng.standard_normal((args.probes, d), dtype=np.float32))
    mates = np.where(
        np.arange(args.probes) % 40 == 0, rng.integers(0, args.gallery, args.probes), -1
    )
    thresholds = np.round(np.linspace(-1.0, 1.0, 1000), 6)
    mate_score = _kernel.mate_scores(probes, gallery, mates)
    default_rows = _kernel._CHUNK_ROWS

    def run(rows: int, width: int, threads: int) -> _kernel.Partial:
        _kernel._CHUNK_ROWS = rows  # the chunk layout reads it at every call
        try:
            return _kernel.score_block(
                probes,
                gallery,
                k=20,
                thresholds=thresholds,
                mate_codes=mates,
                mate_score=mate_score,
                backend=_kernel._NumpyKernel(threads=threads),
                tile_bytes=4 * rows * width,
            )
        finally:
            _kernel._CHUNK_ROWS = default_rows

    _kernel.warm_up()
    reference = run(512, 512, 2)
    fields = ("top_scores", "top_subjects", "top_rows", "higher", "counts")
    identical = {
        f"{r}x{w}": all(
            np.array_equal(getattr(run(r, w, 2), f), getattr(reference, f)) for f in fields
        )
        for r, w in layouts
    }
    if not all(identical.values()):
        sys.exit(f"a layout changes the results: {identical}")
    times: dict[str, list[tuple[float, float]]] = {}
    with LoadSampler(period=5.0) as load:
        for _ in range(args.repeats):
            for threads in (2, 1):
                for r, w in layouts:
                    wall, cpu = time.perf_counter(), time.process_time()
                    run(r, w, threads)
                    times.setdefault(f"{r}x{w} threads={threads}", []).append(
                        (time.perf_counter() - wall, time.process_time() - cpu)
                    )
    pairs = args.probes * args.gallery
    report = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "probes": args.probes,
        "gallery": args.gallery,
        "repeats": args.repeats,
        "identical_to_512x512": identical,
        "ns_per_pair": {
            name: {
                "cpu_min": round(min(c for _, c in v) / pairs * 1e9, 3),
                "cpu_median": round(float(np.median([c for _, c in v])) / pairs * 1e9, 3),
                "wall_min": round(min(w for w, _ in v) / pairs * 1e9, 3),
            }
            for name, v in sorted(times.items())
        },
        "load_average_samples": load.samples,
    }
    finish_report(report, args.out)


if __name__ == "__main__":
    main()
