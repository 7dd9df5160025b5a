"""NPL-scale scoring from embeddings: time, peak memory and the ratio to a raw BLAS matmul.

Cases (each runs in a fresh child process, so its peak RSS is its own):

- ``npl``: the NPL design from synthetic 128-d embeddings, through the real path
  (:func:`lfr_eval.protocols.run_npl_protocol`: the scoring kernel, per-group filler counts at
  every threshold of the grid, resumable blocks in a work folder), then the per-group
  watchlist-size scaling (:func:`lfr_eval.protocols.scale_fpir`). Default 200,000 fillers ×
  (150,000 non-mated + 4,000 mated), 1,000 thresholds, 4 filler/search groups. Then, in the
  same process and on the same cores, the physical floor: a raw ``np.matmul`` of the same
  probes × gallery with nothing kept (every layout tried on 5% of the probes, the fastest run
  on all). Recorded: wall and CPU seconds of both, their ratios, the load average sampled
  every 5 s during each, peak RSS.
- ``growth``: the kernel alone (:func:`lfr_eval.search._blocks.score_probes`) for probes
  10k → 100k → 1M against 1,000 templates and gallery 1k → 10k → 100k for 10,000 probes,
  each case in a fresh process (wall and CPU seconds, peak RSS after the inputs and after
  scoring, load sampled every 5 s), then the raw matmul of the same size; the summary fits
  time = a · probes + b · probes · gallery and gives the kernel's memory above its inputs.
- ``ratio``: the kernel (:func:`lfr_eval.search._kernel.score_block`, 1,000 thresholds, 4
  groups, k = 20, one probe in 40 mated) against the raw matmul of the same size in several
  layouts, with 1 thread and with 2, repeated and interleaved in one process; the minimum CPU
  and wall seconds of each are compared (load only ever adds time).

Usage::

    python benchmarks/bench_scale.py npl --out benchmarks/results/bench_scale_npl_full.json
    python benchmarks/bench_scale.py growth --out benchmarks/results/bench_scale_growth.json
    python benchmarks/bench_scale.py ratio --probes 4096 --gallery 200000 --repeats 3
    python benchmarks/bench_scale.py all --out benchmarks/results/bench_scale.json

Embeddings are random (one direction per subject plus noise): no face data is involved.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from _machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _machine() -> dict:
    load = os.getloadavg()
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "load_average_1_5_15": [round(v, 2) for v in load],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "code": _code_version(),
    }


def _code_version() -> str:
    """The commit of the checkout whose ``lfr_eval`` runs (``git describe``), or its folder."""
    import lfr_eval

    where = Path(lfr_eval.__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            ["git", "-C", str(where), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return str(where)
    return done.stdout.strip() or str(where)


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = [f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()]
        return ", ".join(info)
    except Exception:  # noqa: BLE001 - only a description
        return "unknown"


def case_npl(args: argparse.Namespace) -> dict:
    """The NPL design through run_npl_protocol, then per-group scaling."""
    import pandas as pd

    from lfr_eval.datasets import ImageEmbeddings, Manifest
    from lfr_eval.protocols import NplParams, ScoringScale, scale_fpir
    from lfr_eval.protocols._npl import NplProtocol
    from lfr_eval.protocols._run import run_npl_protocol

    rng = np.random.default_rng(0)
    d = 128
    n_vol = max(1, args.mated // 10)
    per_vol = 1 + args.mated // n_vol  # one enrolment image + mated searches
    n_f, n_nm = args.fillers, args.non_mated
    subjects = np.concatenate(
        [
            np.repeat([f"v{i:06d}" for i in range(n_vol)], per_vol),
            [f"f{i:07d}" for i in range(n_f)],
            [f"s{i:07d}" for i in range(n_nm)],
        ]
    )
    n = len(subjects)
    groups = np.array(["a", "b", "c", "d"])[rng.integers(0, 4, n)]
    # subjects: a direction each; volunteers' images: their direction plus noise
    vectors = rng.standard_normal((n, d), dtype=np.float32)
    vol_rows = np.arange(n_vol * per_vol)
    centres = rng.standard_normal((n_vol, d), dtype=np.float32)
    vectors[vol_rows] = centres[vol_rows // per_vol] + 0.6 * vectors[vol_rows]
    _unit(vectors)
    frame = pd.DataFrame(
        {"path": [f"img/{i}.jpg" for i in range(n)], "subject_id": subjects, "group": groups}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = Manifest.from_frame(frame, root=None, check_files=False)
    enrol = np.arange(0, n_vol * per_vol, per_vol)
    mated = np.setdiff1d(vol_rows, enrol)
    fillers = np.arange(n_vol * per_vol, n_vol * per_vol + n_f)
    non_mated = np.arange(n_vol * per_vol + n_f, n)
    protocol = NplProtocol(manifest, NplParams(), enrol, mated, fillers, non_mated)
    ok = np.ones(n, bool)
    embeddings = ImageEmbeddings(
        "synthetic-128",
        np.array([f"{i:064x}" for i in range(n)], dtype=object),
        vectors,
        ok,
        ok.astype(np.int64),
        np.full(n, "", dtype=object),
        np.full(n, np.nan),
        np.full(n, np.nan),
    )
    thresholds = np.round(np.linspace(-1.0, 1.0, args.thresholds), 6)
    if args.work_dir and Path(args.work_dir).exists() and any(Path(args.work_dir).iterdir()):
        # finished blocks there would be resumed, and the timing would not be of scoring
        raise SystemExit(f"--work-dir {args.work_dir} is not empty: a benchmark needs a new one")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-scale-"))
    scale = ScoringScale(
        memory_bytes=int(args.memory_gib * 2**30), work_dir=work, progress=args.progress
    )
    setup_rss = _peak_rss_gib()
    # numba's compiled reduction loaded (or, after an edit of its source, compiled) first and
    # timed apart, as in the kernel case: a one-off per process, not scoring
    start = time.perf_counter()
    _warm_up_with_counts()
    warm_up_s = time.perf_counter() - start

    with _load_sampler() as load_scoring:
        start, cpu = time.perf_counter(), time.process_time()
        run = run_npl_protocol(protocol, embeddings, thresholds=thresholds, scale=scale)
        scoring_s = time.perf_counter() - start
        scoring_cpu = time.process_time() - cpu
    scoring_rss = _peak_rss_gib()
    fc = run.filler_counts

    # the operating thresholds a report asks for (a sub-grid: stats' estimators materialise
    # per-search float64 tables of the thresholds they are given)
    wanted = thresholds[(thresholds >= 0.2) & (thresholds <= 0.7)][
        :: max(1, args.thresholds // 100)
    ]
    start = time.perf_counter()
    table = scale_fpir(
        fc, [1_000, 10_000, 100_000], wanted, attribute="group", by="group", n_boot=args.n_boot
    ).table
    scaling_s = time.perf_counter() - start
    fpir_1k = float(
        table[(table.watchlist_size == 1_000) & (table.group == "all")]
        .set_index("threshold")["fpir"]
        .iloc[np.argmin(np.abs(wanted - 0.5))]
    )
    scaling_rows = len(table)

    # the floor: the same probes × gallery product and nothing else, in this process, on the
    # same cores (every layout tried on a share, the best one run in full)
    probes = np.ascontiguousarray(vectors[np.concatenate([mated, non_mated])])
    gallery = np.ascontiguousarray(vectors[np.concatenate([enrol, fillers])])
    with _load_sampler() as load_floor:
        floor = _matmul_floor(probes, gallery)
    matmul_s = floor["wall_s"]
    counts_gib = fc.counts.nbytes / 2**30
    counts_dtype = str(fc.counts.dtype)
    del run, fc, table
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)  # the blocks and the counts file (GBs)
    return {
        "case": "npl",
        "fillers": n_f,
        "non_mated": n_nm,
        "mated": len(mated),
        "volunteers": n_vol,
        "dim": d,
        "thresholds": args.thresholds,
        "groups": 4,
        "memory_setting_gib": args.memory_gib,
        "scoring_s": round(scoring_s, 2),
        "scaling_s": round(scaling_s, 2),
        "scaling_thresholds": len(wanted),
        "scaling_rows": scaling_rows,
        "scoring_cpu_s": round(scoring_cpu, 2),
        "numba_warm_up_s": round(warm_up_s, 3),
        "load_average_during_scoring": load_scoring,
        "load_average_during_matmul": load_floor,
        "raw_matmul_s": round(matmul_s, 2),
        "raw_matmul": floor,
        "ratio_scoring_to_matmul": round(scoring_s / matmul_s, 2),
        "ratio_cpu_time": round(scoring_cpu / floor["cpu_s"], 2),
        "peak_rss_after_setup_gib": round(setup_rss, 3),
        "peak_rss_after_scoring_gib": round(scoring_rss, 3),
        "peak_rss_gib": round(_peak_rss_gib(), 3),
        "counts_on_disk_gib": round(counts_gib, 3),
        "counts_dtype": counts_dtype,
        "work_dir": str(work),
        "fpir_1k_at_0.5": fpir_1k,
    }


def _warm_up_with_counts() -> None:
    """Load the kernel's compiled code for a scoring run with counts (``warm_up`` covers the
    search-only path; the counts' reverse sums are compiled on their first use)."""
    from lfr_eval.search._kernel import Gallery, score_block, warm_up

    warm_up()
    templates = _unit(np.random.default_rng(0).standard_normal((4, 8), dtype=np.float32))
    gallery = Gallery.build(templates, ["a", "b", "c", "d"])
    score_block(templates[:2], gallery, k=1, thresholds=np.array([0.0, 0.5]))


def _matmul_floor(probes: np.ndarray, gallery: np.ndarray, share: float = 0.05) -> dict:
    """The physical floor: raw float32 products of ``probes`` × ``gallery``, nothing kept,
    with every core. Each layout of :func:`_floor_runs` is tried on ``share`` of the probes
    (at least 2,048 rows); the one with the least CPU time then runs on all of them."""
    from lfr_eval.search._kernel import default_threads

    threads = default_threads()
    part = probes[: max(min(len(probes), 2048), int(len(probes) * share))]
    trial = _floor_layouts(part, gallery, threads)
    best = min(trial, key=lambda n: trial[n][1])
    wall, cpu = _thread_cpu_of(_floor_runs(probes, gallery, threads)[best])
    return {
        "layout": best,
        "threads": threads,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "trial_share": round(len(part) / len(probes), 4),
        "trial_cpu_s": {n: round(c, 3) for n, (_, c) in sorted(trial.items())},
    }


def case_kernel(args: argparse.Namespace) -> dict:
    """The kernel alone: probes × gallery with counts at every threshold (numba's compiled
    code loaded first and timed apart: a one-off per process, not growth)."""
    from lfr_eval.search._blocks import score_probes
    from lfr_eval.search._kernel import Gallery, warm_up

    start = time.perf_counter()
    warm_up()
    warm_up_s = time.perf_counter() - start

    rng = np.random.default_rng(1)
    d = 128
    gallery_v = _unit(rng.standard_normal((args.gallery, d), dtype=np.float32))
    gal = Gallery.build(gallery_v, np.array([f"g{i:07d}" for i in range(args.gallery)]))
    probes = _unit(rng.standard_normal((args.probes, d), dtype=np.float32))
    thresholds = np.linspace(-1.0, 1.0, args.thresholds)
    work = tempfile.mkdtemp(prefix="bench-kernel-")
    setup = _peak_rss_gib()
    try:
        with _load_sampler() as load_kernel:
            start, cpu = time.perf_counter(), time.process_time()
            part = score_probes(
                probes,
                gal,
                k=20,
                thresholds=thresholds,
                memory_bytes=int(args.memory_gib * 2**30),
                work_dir=work,
            )
            kernel_s = time.perf_counter() - start
            kernel_cpu = time.process_time() - cpu
        assert part.counts is not None
        after_kernel = _peak_rss_gib()
        del part
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the counts file: 4 GB at 1M probes
    _quiet_blas()
    with _load_sampler() as load_floor:
        floor = _matmul_floor(probes, gal.matrix, share=1.0)
    matmul_s = floor["wall_s"]
    return {
        "case": "kernel",
        "probes": args.probes,
        "gallery": args.gallery,
        "thresholds": args.thresholds,
        "kernel_s": round(kernel_s, 3),
        "raw_matmul_s": round(matmul_s, 3),
        "raw_matmul": floor,
        "kernel_cpu_s": round(kernel_cpu, 3),
        "numba_warm_up_s": round(warm_up_s, 3),
        "ratio": round(kernel_s / matmul_s, 2),
        "ratio_cpu_time": round(kernel_cpu / floor["cpu_s"], 2),
        "ns_per_pair": round(kernel_s / (args.probes * args.gallery) * 1e9, 3),
        "cpu_ns_per_pair": round(kernel_cpu / (args.probes * args.gallery) * 1e9, 3),
        "peak_rss_after_setup_gib": round(setup, 3),
        "peak_rss_after_kernel_gib": round(after_kernel, 3),
        "peak_rss_gib": round(_peak_rss_gib(), 3),
        "load_average_during_kernel": load_kernel,
        "load_average_during_floor": load_floor,
    }


#: The growth series: probes 10k → 1M at a 1,000-template gallery, then the gallery 1k → 100k
#: at 10,000 probes (the issue's "Growth" benchmark).
GROWTH_CASES = [
    (10_000, 1_000),
    (100_000, 1_000),
    (1_000_000, 1_000),
    (10_000, 10_000),
    (10_000, 100_000),
]


def growth_summary(cases: list[dict]) -> dict:
    """How the kernel's time and memory grow over the series.

    Time is fitted as ``a * probes + b * probes * gallery`` (least squares, CPU and wall
    seconds): ``a`` is the per-probe cost that does not depend on the gallery (turning each
    probe's threshold histogram into counts at every threshold and writing them, the first
    k insertions of its top-k), ``b`` the cost per score. The kernel's own memory is its peak
    RSS above what the inputs took (``peak_rss_after_kernel - peak_rss_after_setup``).
    """
    done = [c for c in cases if "error" not in c]
    if len({c["probes"] for c in done}) < 2 or len({c["gallery"] for c in done}) < 2:
        return {}  # the two terms cannot be told apart
    p = np.array([c["probes"] for c in done], float)
    g = np.array([c["gallery"] for c in done], float)
    design = np.column_stack([p, p * g])
    out: dict = {"cases": len(done)}
    for name, key in (("wall", "kernel_s"), ("cpu", "kernel_cpu_s")):
        t = np.array([c[key] for c in done], float)
        (a, b), *_ = np.linalg.lstsq(design, t, rcond=None)
        fitted = design @ np.array([a, b])
        out[name] = {
            "per_probe_us": round(a * 1e6, 3),
            "per_pair_ns": round(b * 1e9, 3),
            "worst_relative_residual": round(float(np.max(np.abs(fitted - t) / t)), 3),
        }
    out["kernel_memory_above_inputs_gib"] = {
        f"{c['probes']}x{c['gallery']}": round(
            c.get("peak_rss_after_kernel_gib", c["peak_rss_gib"]) - c["peak_rss_after_setup_gib"],
            3,
        )
        for c in done
    }
    return out


@contextmanager
def _load_sampler(every_s: float = 5.0) -> Iterator[dict]:
    """The 1-minute load average sampled every ``every_s`` seconds while the block runs:
    yields a dict filled in on exit (first, mean, max, last, samples)."""
    samples = [os.getloadavg()[0]]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every_s):
            samples.append(os.getloadavg()[0])

    out: dict = {}
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        samples.append(os.getloadavg()[0])
        out.update(
            first=round(samples[0], 2),
            mean=round(float(np.mean(samples)), 2),
            max=round(max(samples), 2),
            last=round(samples[-1], 2),
            samples=len(samples),
        )


def _thread_cpu_of(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall s, CPU s of this process) of ``fn()``."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def _floor_runs(
    probes: np.ndarray, gallery: np.ndarray, threads: int
) -> dict[str, Callable[[], None]]:
    """Raw float32 products of probes × gallery with nothing kept, in several layouts, each
    with ``threads`` cores: Python threads over row chunks with a single-threaded BLAS
    (``chunk R x W``: R probe rows × W templates per product, the kernel's own layout among
    them), and the BLAS's own threads over 1,024 × 8,192 products (``blas``)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from lfr_eval.search._kernel import _CHUNK_ROWS, numpy_tile_width

    def chunked(rows: int, width: int) -> None:
        def one(a: int) -> None:
            p = probes[a : a + rows]
            out = np.empty((len(p), width), np.float32)
            for t in range(0, len(gallery), width):
                g = gallery[t : t + width]
                np.matmul(p, g.T, out=out[:, : len(g)])

        with threadpool_limits(1), ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(0, len(probes), rows)))

    def blas() -> None:
        rows, width = 1024, 8192
        out = np.empty((rows, width), np.float32)
        with threadpool_limits(threads):
            for a in range(0, len(probes), rows):
                p = probes[a : a + rows]
                for t in range(0, len(gallery), width):
                    g = gallery[t : t + width]
                    np.matmul(p, g.T, out=out[: len(p), : len(g)])

    layouts = {
        (_CHUNK_ROWS, numpy_tile_width(len(probes))),
        (128, 2048),
        (256, 1024),
        (512, 512),
        (512, 1024),
    }
    runs: dict[str, Callable[[], None]] = {
        f"chunk {r}x{w}": functools.partial(chunked, r, w) for r, w in sorted(layouts)
    }
    runs["blas"] = blas
    return runs


def _floor_layouts(probes: np.ndarray, gallery: np.ndarray, threads: int) -> dict:
    """{layout: (wall s, CPU s)} of every layout of :func:`_floor_runs`."""
    out = {n: _thread_cpu_of(f) for n, f in _floor_runs(probes, gallery, threads).items()}
    _quiet_blas()
    return out


def _quiet_blas() -> None:
    """Let OpenBLAS's idle threads stop spinning (they busy-wait for a while after a threaded
    product) before the next timed run, whose process CPU time would otherwise include them."""
    time.sleep(1.0)


def case_ratio(args: argparse.Namespace) -> dict:
    """The kernel's CPU seconds against the raw matmul's, in the same process, for 1 and 2
    threads, repeated and interleaved (the minimum of each is kept: load only adds time)."""
    from lfr_eval.search._kernel import Gallery, _NumpyKernel, score_block, warm_up

    rng = np.random.default_rng(2)
    d = 128
    gallery_v = _unit(rng.standard_normal((args.gallery, d), dtype=np.float32))
    groups = rng.integers(0, 4, args.gallery)
    gal = Gallery.build(
        gallery_v, np.array([f"g{i:07d}" for i in range(args.gallery)]), subject_groups=groups
    )
    probes = _unit(rng.standard_normal((args.probes, d), dtype=np.float32))
    # one probe in 40 is mated (as in the NPL design): its mate is a gallery subject
    mated = np.arange(args.probes) % 40 == 0
    mates = np.where(mated, rng.integers(0, args.gallery, args.probes), -1)
    thresholds = np.round(np.linspace(-1.0, 1.0, args.thresholds), 6)
    warm_up()
    load = [round(os.getloadavg()[0], 2)]
    best: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.repeats):
        for threads in (1, 2):
            kernel = _NumpyKernel(threads=threads)
            wall, cpu = _thread_cpu_of(
                lambda kernel=kernel: score_block(
                    probes, gal, k=20, thresholds=thresholds, mate_codes=mates, backend=kernel
                )
            )
            best.setdefault(f"kernel {threads}", {"wall": [], "cpu": []})
            best[f"kernel {threads}"]["wall"].append(wall)
            best[f"kernel {threads}"]["cpu"].append(cpu)
            for name, (wall, cpu) in _floor_layouts(probes, gal.matrix, threads).items():
                entry = best.setdefault(f"matmul {threads} {name}", {"wall": [], "cpu": []})
                entry["wall"].append(wall)
                entry["cpu"].append(cpu)
        load.append(round(os.getloadavg()[0], 2))
    pairs = args.probes * args.gallery
    result: dict = {
        "case": "ratio",
        "probes": args.probes,
        "gallery": args.gallery,
        "thresholds": args.thresholds,
        "groups": 4,
        "k": 20,
        "repeats": args.repeats,
        "load_average_1min_per_repeat": load,
        "ns_per_pair_cpu": {
            name: round(min(v["cpu"]) / pairs * 1e9, 3) for name, v in sorted(best.items())
        },
    }
    for threads in (1, 2):
        floors = {n: v for n, v in best.items() if n.startswith(f"matmul {threads} ")}
        floor_cpu = min(min(v["cpu"]) for v in floors.values())
        floor_wall = min(min(v["wall"]) for v in floors.values())
        kernel = best[f"kernel {threads}"]
        result[f"threads_{threads}"] = {
            "kernel_cpu_s": round(min(kernel["cpu"]), 3),
            "kernel_wall_s": round(min(kernel["wall"]), 3),
            "matmul_floor_cpu_s": round(floor_cpu, 3),
            "matmul_floor_wall_s": round(floor_wall, 3),
            "matmul_floor_layout": min(floors, key=lambda n: min(floors[n]["cpu"])),
            "ratio_cpu": round(min(kernel["cpu"]) / floor_cpu, 3),
            "ratio_wall": round(min(kernel["wall"]) / floor_wall, 3),
        }
    result["peak_rss_gib"] = round(_peak_rss_gib(), 3)
    return result


def _child(argv: list[str], timeout: float) -> dict:
    """Run one case in a fresh process (its own peak RSS)."""
    cmd = [sys.executable, __file__, "_case", *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        return {"case": argv[0], "error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["npl", "growth", "ratio", "all", "_case"])
    parser.add_argument("case", nargs="?", default="npl")
    parser.add_argument("--fillers", type=int, default=200_000)
    parser.add_argument("--non-mated", type=int, default=150_000)
    parser.add_argument("--mated", type=int, default=4_000)
    parser.add_argument("--thresholds", type=int, default=1_000)
    parser.add_argument("--n-boot", type=int, default=100)
    parser.add_argument("--memory-gib", type=float, default=3.0)
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--gallery", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--growth-cases",
        type=int,
        default=len(GROWTH_CASES),
        help="growth: run only the first N cases of the series (a quick check)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.what == "_case":
        cases = {"npl": case_npl, "kernel": case_kernel, "ratio": case_ratio}
        result = cases[args.case](args)
        print(json.dumps(result))
        return
    results = {"machine": _machine(), "cases": []}
    common = ["--memory-gib", str(args.memory_gib), "--thresholds", str(args.thresholds)]
    if args.what in ("npl", "all"):
        argv = [
            "npl",
            *common,
            "--fillers",
            str(args.fillers),
            "--non-mated",
            str(args.non_mated),
            "--mated",
            str(args.mated),
            "--n-boot",
            str(args.n_boot),
        ]
        if args.work_dir:
            argv += ["--work-dir", args.work_dir]
        results["cases"].append(_child(argv, args.timeout))
        print(json.dumps(results["cases"][-1]), flush=True)
    if args.what == "ratio":
        argv = ["ratio", *common, "--probes", str(args.probes), "--gallery", str(args.gallery)]
        results["cases"].append(_child([*argv, "--repeats", str(args.repeats)], args.timeout))
        print(json.dumps(results["cases"][-1]), flush=True)
    if args.what in ("growth", "all"):
        growth = []
        for probes, gallery in GROWTH_CASES[: args.growth_cases]:
            argv = ["kernel", *common, "--probes", str(probes), "--gallery", str(gallery)]
            growth.append(_child(argv, args.timeout))
            print(json.dumps(growth[-1]), flush=True)
        results["cases"].extend(growth)
        results["growth_summary"] = growth_summary(growth)
        print(json.dumps(results["growth_summary"]), flush=True)
    results["machine_after"] = _machine()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
