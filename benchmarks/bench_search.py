"""Benchmark exact 1:N search: numpy vs faiss, single-probe and batched latency.

Random unit vectors stand in for templates (search cost does not depend on what the vectors
mean). For each watchlist size, dimension and backend the script reports:

- ``build_s``: seconds to build the :class:`~lfr_eval.search.SearchIndex`;
- ``single_ms``: median and 95th-percentile milliseconds for one probe per call (the live
  camera's case: one face at a time);
- ``batched_ms_per_probe``: milliseconds per probe when ``--batch`` probes are searched per call
  (an evaluation's case);
- ``same_as_numpy``: whether faiss returned the same top-k subjects as numpy.

Target (issue 2): under 1 ms per probe for a 10,000-template watchlist on 2 CPU cores.

Examples
--------
Quick check that the script works (seconds)::

    python benchmarks/bench_search.py --quick

The figures for benchmarks/RESULTS.md, on 2 cores (about 8 GiB of memory for 1,000,000 x 512)::

    python benchmarks/bench_search.py --threads 2 --json search-results.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from lfr_eval.search import SearchIndex, faiss_available, faiss_gpu_available


@dataclass(frozen=True)
class Measurement:
    n_templates: int
    dim: int
    backend: str
    k: int
    build_s: float
    single_ms_median: float
    single_ms_p95: float
    batch: int
    batched_ms_per_probe: float
    same_as_numpy: bool | None


def unit_rows(rng: np.random.Generator, n: int, dim: int, chunk: int = 100_000) -> np.ndarray:
    """n random unit vectors, generated in chunks to keep peak memory at one matrix."""
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(block)] = block
    return out


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if faiss_available():
        import faiss

        faiss.omp_set_num_threads(threads)


def time_single(index: SearchIndex, probes: np.ndarray, k: int) -> tuple[float, float]:
    index.search(probes[:1], k)  # warm-up (first BLAS call, faiss thread pool)
    times = []
    for i in range(len(probes)):
        start = time.perf_counter()
        index.search(probes[i : i + 1], k)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    return float(np.median(ms)), float(np.percentile(ms, 95))


def time_batched(index: SearchIndex, probes: np.ndarray, k: int, batch: int, min_s: float) -> float:
    index.search(probes[:batch], k)
    searched, elapsed = 0, 0.0
    while elapsed < min_s or searched == 0:
        start = time.perf_counter()
        index.search(probes[:batch], k)
        elapsed += time.perf_counter() - start
        searched += batch
    return elapsed / searched * 1e3


def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, object] = {
        "cpu": cpu,
        "cpus_visible": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss_gpu": faiss_gpu_available(),
    }
    if faiss_available():
        import faiss

        info["faiss"] = faiss.__version__
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads")}
            for p in threadpool_info()
        ]
    except ImportError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--backends", nargs="+", default=["numpy", "faiss"])
    parser.add_argument("--k", type=int, default=10, help="Candidates per probe.")
    parser.add_argument("--batch", type=int, default=256, help="Probes per batched call.")
    parser.add_argument(
        "--single-probes", type=int, default=200, help="Single-probe calls timed per case."
    )
    parser.add_argument("--min-seconds", type=float, default=1.0, help="Time per batched case.")
    parser.add_argument("--threads", type=int, default=None, help="Limit BLAS/OpenMP threads.")
    parser.add_argument("--device", choices=["cpu", "gpu", "auto"], default="cpu")
    parser.add_argument("--json", dest="json_path", default=None, help="Also write results here.")
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: check the script runs.")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.dims = [2_000, 10_000], [128]
        args.single_probes, args.min_seconds = 50, 0.2
    backends = [b for b in args.backends if b != "faiss" or faiss_available()]
    if len(backends) < len(args.backends):
        print("faiss is not installed: measuring numpy only", file=sys.stderr)

    set_threads(args.threads)
    rng = np.random.default_rng(0)
    results: list[Measurement] = []
    print(
        f"{'templates':>10} {'dim':>4} {'backend':>10} {'build s':>8} {'1-probe ms':>11} "
        f"{'p95 ms':>8} {'batched ms/probe':>17} {'same':>5}"
    )
    for n in args.sizes:
        for dim in args.dims:
            matrix = unit_rows(rng, n, dim)
            subjects = np.char.add("s", np.char.zfill(np.arange(n).astype(str), 8)).astype(object)
            n_probes = max(args.batch, args.single_probes)
            probes = unit_rows(rng, n_probes, dim)
            reference = None
            for backend in backends:
                start = time.perf_counter()
                index = SearchIndex(
                    matrix, subjects, backend=backend, device=args.device, copy=False
                )
                build = time.perf_counter() - start
                single = time_single(index, probes[: args.single_probes], args.k)
                batched = time_batched(index, probes, args.k, args.batch, args.min_seconds)
                ids = index.search(probes[: args.batch], args.k).subject_ids
                same = None
                if reference is None:
                    reference = ids
                else:
                    same = bool((ids == reference).all())
                m = Measurement(
                    n, dim, index.backend, args.k, build, *single, args.batch, batched, same
                )
                results.append(m)
                print(
                    f"{n:>10} {dim:>4} {m.backend:>10} {build:>8.2f} {m.single_ms_median:>11.3f} "
                    f"{m.single_ms_p95:>8.3f} {batched:>17.4f} "
                    f"{'' if same is None else str(same):>5}",
                    flush=True,
                )
                del index
                gc.collect()
            del matrix, subjects
            gc.collect()
    env = machine()
    env["threads_limit"] = args.threads
    print(json.dumps(env))
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump({"machine": env, "results": [asdict(r) for r in results]}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
