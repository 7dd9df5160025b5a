"""Watchlist-size scaling at crowd scale (issue 10, item 5): scale_fpir's memory with 1M faces.

``scale_fpir`` keeps, per person, only the thresholds where a search's P(alert) at N changes
(:class:`lfr_eval.protocols._scaling.SearchValueHistogram`), never a searches × thresholds
table. This benchmark builds filler counts for ``--searches`` distinct crowd faces (one search
per person, the hard case for a per-person table) against ``--fillers`` fillers on the stored
0.005 grid (401 thresholds), as a memory-mapped file the way a large run keeps them, and times
``scale_fpir`` to N in ``--sizes`` (all within the fillers) with a breakdown by a 4-label search
attribute. Each search's counts are the expected number of fillers above each threshold for an
impostor score distribution N(mu_i, 0.07), mu_i ~ N(0.55, 0.03) (dlib-like cosine scores).

Reports CPU seconds, wall seconds, peak RSS, the load average, the histogram entries per search
and what the former dense tables would have needed (per N: searches × thresholds float64, plus
the int64 group counts).

Usage::

    python benchmarks/bench_scaling_sparse.py                       # 1M faces, ~2 GB of counts
    python benchmarks/bench_scaling_sparse.py --searches 100000     # quick look
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def build_counts(n: int, n_fillers: int, thresholds: np.ndarray, work: Path, seed: int):
    """FillerCounts of ``n`` one-search people, counts memory-mapped in ``work``."""
    from scipy.special import ndtr

    from lfr_eval.protocols import FillerCounts

    rng = np.random.default_rng(seed)
    path = work / "counts.npy"
    counts = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.int32, shape=(n, 1, len(thresholds))
    )
    for a in range(0, n, 65_536):
        b = min(n, a + 65_536)
        mu = rng.normal(0.55, 0.03, b - a)
        above = n_fillers * ndtr(-(thresholds[None, :] - mu[:, None]) / 0.07)
        counts[a:b, 0, :] = np.floor(above + 0.5).astype(np.int32)
    counts.flush()
    del counts
    return FillerCounts(
        thresholds=thresholds,
        counts=np.load(path, mmap_mode="r"),
        cell_sizes=np.array([n_fillers], np.int64),
        cells=pd.DataFrame(index=range(1)),
        filler_cells=np.zeros(n_fillers, np.int64),
        search_subjects=np.array([f"crowd{i}" for i in range(n)], dtype=object),
        search_groups=pd.DataFrame({"group": np.array(list("abcd"))[np.arange(n) % 4]}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=1_000_000)
    parser.add_argument("--fillers", type=int, default=200_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/scaling_sparse.json")
    args = parser.parse_args()

    from lfr_eval.evaluation import default_thresholds
    from lfr_eval.protocols import scale_fpir
    from lfr_eval.protocols._scaling import per_search_fpir, search_value_histogram

    thresholds = default_thresholds()
    with tempfile.TemporaryDirectory(prefix="bench_scaling_sparse_") as tmp:
        fc = build_counts(args.searches, args.fillers, thresholds, Path(tmp), args.seed)
        rss_setup = _peak_rss_gib()
        load = [round(os.getloadavg()[0], 2)]
        wall, cpu = time.perf_counter(), time.process_time()
        table = scale_fpir(fc, args.sizes, thresholds, by="group").table
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        load.append(round(os.getloadavg()[0], 2))
        rss = _peak_rss_gib()
        # histogram entries per search at each N, on the first ~100k searches (report only)
        sizes = np.array([args.fillers])
        shares = np.array([1.0])
        sample = min(fc.n_searches, 25 * 4096)
        people = np.arange(fc.n_searches)
        entries = {
            n: search_value_histogram(
                itertools.islice(fc.group_chunks(None, np.arange(len(thresholds))), 25),
                people,
                people,
                lambda c, n=n: per_search_fpir(c, sizes, shares, n)[0],
                thresholds,
            ).bins.nnz
            / sample
            for n in args.sizes
        }
    m = len(thresholds)
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
        },
        "searches": args.searches,
        "people": args.searches,
        "fillers": args.fillers,
        "thresholds": m,
        "sizes": args.sizes,
        "by_groups": 4,
        "scale_fpir_cpu_s": round(cpu, 1),
        "scale_fpir_wall_s": round(wall, 1),
        "load_average_before_after": load,
        "peak_rss_after_counts_gib": round(rss_setup, 3),
        "peak_rss_gib": round(rss, 3),
        "counts_on_disk_gib": round(args.searches * m * 4 / 2**30, 3),
        "histogram_entries_per_search": {str(n): round(v, 1) for n, v in entries.items()},
        "dense_tables_would_need_gib": round(
            (args.searches * m * 8 * (1 + 1)) / 2**30, 3
        ),  # one N's per-search float64 table + the int64 group counts
        "rows": len(table),
        "fpir_at_0.7": {
            str(n): float(
                table[(table.watchlist_size == n) & (table.group == "all")]
                .set_index("threshold")["fpir"]
                .iloc[int(np.argmin(np.abs(thresholds - 0.7)))]
            )
            for n in args.sizes
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
