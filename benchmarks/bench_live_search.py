"""The live page's search: one face against a watchlist, in thread CPU time.

The live page searches one face at a time (``SearchIndex.search(embedding, k=1)``). Its scores
must be the evaluation's bits (``tests/test_exact_scores.py``), which the project gets by
screening with BLAS gemv and rescoring the few subjects near the top with the kernel's rounding
(``search._index.screened_top_k``). This script says what that costs, per search, against:

- ``gemv``: the bare matrix-vector product ``probe @ templates.T`` (the floor: no top-k);
- ``screened``: ``SearchIndex.search(probe, k)`` (the live page's call);
- ``padded``: ``score_block`` on the one probe, which pads the product to the kernel's
  smallest regular product (4 rows): the other exact route, for comparison.

Times are thread CPU seconds (``time.thread_time``; BLAS held to one thread, as the live path
runs), the median and 95th percentile of ``--searches`` calls, so another job on the machine
changes them little; the load average during the run is recorded. Random unit vectors stand
in for templates (the cost does not depend on what they mean); probes are near a template, so
one subject stands out as a real match does.

Run it against another checkout (e.g. the code before the change) with
``PYTHONPATH=/path/to/checkout python benchmarks/bench_live_search.py``: the report names the
code it ran (``lfr_eval`` path and ``git describe``); ``screened`` is then that code's
``SearchIndex.search`` whatever its method.

Examples
--------
Quick check (seconds)::

    python benchmarks/bench_live_search.py --quick

The figures in benchmarks/RESULTS.md (about 1 minute)::

    python benchmarks/bench_live_search.py --out benchmarks/results/live_search.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import LoadSampler, cpu_model, finish_report
from threadpoolctl import threadpool_info, threadpool_limits

import lfr_eval
from lfr_eval.search import SearchIndex
from lfr_eval.search._kernel import Gallery, score_block


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _cpu_ms(call, probes: np.ndarray) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Median and 95th percentile thread CPU milliseconds of ``call(probe)`` per probe."""
    call(probes[0])  # warm-up (first BLAS call, numba load)
    times = []
    for p in probes:
        start = time.thread_time()
        call(p)
        times.append(time.thread_time() - start)
    ms = np.asarray(times) * 1e3
    return {
        "median_ms": round(float(np.median(ms)), 4),
        "p95_ms": round(float(np.percentile(ms, 95)), 4),
    }


def _code() -> dict[str, str]:
    root = Path(lfr_eval.__file__).resolve().parents[1]
    try:
        described = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return {"lfr_eval": str(root), "git_describe": described or "unknown"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--templates-per-subject", type=int, default=1)
    parser.add_argument("--k", type=int, default=1, help="Candidates (the live page asks 1).")
    parser.add_argument("--searches", type=int, default=300, help="Timed searches per case.")
    parser.add_argument("--out", default=None, help="Also write the JSON report here.")
    parser.add_argument("--quick", action="store_true", help="Small sizes: check it runs.")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.dims, args.searches = [100, 10_000], [128], 40

    rng = np.random.default_rng(0)
    rows = []
    print(f"{'templates':>10} {'dim':>4} {'gemv ms':>9} {'screened ms':>12} {'padded ms':>10}")
    with LoadSampler(2.0) as load, threadpool_limits(1):
        for n in args.sizes:
            for dim in args.dims:
                templates = _unit(rng, n, dim)
                n_subjects = max(1, n // args.templates_per_subject)
                subjects = np.char.add(
                    "s", np.char.zfill((np.arange(n) % n_subjects).astype(str), 7)
                )
                near = templates[rng.integers(0, n, args.searches)]
                probes = near + 0.6 * _unit(rng, args.searches, dim)
                probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
                index = SearchIndex(templates, subjects, backend="numpy", copy=False)
                gallery = Gallery.build(templates, subjects)
                k = min(args.k, index.watchlist_size)
                case = {
                    "templates": n,
                    "subjects": index.watchlist_size,
                    "dim": dim,
                    "k": k,
                    "gemv": _cpu_ms(lambda p: p @ templates.T, probes),  # noqa: B023
                    "screened": _cpu_ms(lambda p: index.search(p, k), probes),  # noqa: B023
                    "padded": _cpu_ms(
                        lambda p: score_block(p[None, :], gallery, k=k),  # noqa: B023
                        probes,
                    ),
                }
                rows.append(case)
                print(
                    f"{n:>10} {dim:>4} {case['gemv']['median_ms']:>9.3f} "
                    f"{case['screened']['median_ms']:>12.3f} {case['padded']['median_ms']:>10.3f}",
                    flush=True,
                )
    report = {
        "benchmark": "bench_live_search",
        "what": "thread CPU ms per one-face search (median, p95), BLAS at one thread",
        "machine": {
            "cpu": cpu_model(),
            "cpus_visible": len(os.sched_getaffinity(0)),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "blas": [
                {key: p.get(key) for key in ("internal_api", "version", "architecture")}
                for p in threadpool_info()
            ],
        },
        "code": _code(),
        "load_average_during": load.summary(),
        "cases": rows,
    }
    finish_report(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
