"""Benchmark of a full LFW evaluation with the dlib engine: embedding, then everything after it.

Issue 3 asks for the time of a full LFW evaluation (13,233 images) with the dlib engine (HOG
detector) on 2 CPU cores, split into

1. **embedding** — detect, align and embed every image the protocol uses (cold cache);
2. **after embedding** — scoring every search against the watchlist, watchlist-size scaling,
   per-group FPIR/FNIR with 1,000-replicate subject-bootstrap intervals, the HTML report;
3. a **second run** on the warm cache (what a user waits for when re-running an evaluation).

The default protocol (seed 0) enrols half the people with two or more images (840 of 1,680),
uses every other image of theirs as a mated search and every image of everyone else as a
non-mated search: all 13,233 images take part.

Usage::

    python benchmarks/bench_lfw_evaluation.py               # full LFW, 2 workers on 2 cores
    python benchmarks/bench_lfw_evaluation.py --limit 300        # quick check (~1 min)
    python benchmarks/bench_lfw_evaluation.py --lfw /data/lfw --cores 0   # no pinning

Figures go to stdout and, with ``--json``, to a file (machine, versions and timings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model


def _pin(cores: int) -> list[int] | None:
    """Restrict this process (and the workers it spawns) to the first ``cores`` CPUs."""
    if cores <= 0 or not hasattr(os, "sched_setaffinity"):
        return None
    available = sorted(os.sched_getaffinity(0))
    chosen = available[:cores]
    os.sched_setaffinity(0, chosen)
    # BLAS and OpenMP pools size themselves from these at import time
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(len(chosen)))
    return chosen




def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lfw", default=None, help="LFW folder (default $LFR_LFW_DIR or ../shared/datasets/lfw)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use whole subjects up to this many images (quick check)",
    )
    parser.add_argument("--workers", type=int, default=2, help="embedding processes")
    parser.add_argument(
        "--cores", type=int, default=2, help="pin to the first N CPUs (0: no pinning)"
    )
    parser.add_argument("--detector", choices=["hog", "cnn"], default="hog")
    parser.add_argument(
        "--n-boot",
        type=int,
        default=1000,
        help="subject-bootstrap replicates of the report's intervals",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="embedding cache to use (default: a fresh temporary one, so the "
        "embedding time is a cold-cache time)",
    )
    parser.add_argument("--json", dest="json_path", default=None, help="write figures here")
    args = parser.parse_args(argv)

    pinned = _pin(args.cores)
    # imported after pinning so thread pools see the restricted CPU set
    import functools
    import warnings

    from lfr_eval.datasets import EmbeddingCache, ManifestWarning, load_lfw
    from lfr_eval.evaluation import evaluate
    from lfr_eval.faces import load_engine
    from lfr_eval.protocols import OpenSetParams
    from lfr_eval.report import AggregateResult, write_report
    from lfr_eval.results import software_versions

    repo = Path(__file__).resolve().parents[1]
    lfw = Path(args.lfw or os.environ.get("LFR_LFW_DIR") or repo.parent / "shared/datasets/lfw")
    if not lfw.is_dir():
        sys.exit(f"LFW not found at {lfw}; pass --lfw")

    t0 = time.perf_counter()
    manifest = load_lfw(lfw)
    if args.limit:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ManifestWarning)
            manifest = manifest.limit_subjects(args.limit, seed=0)
    load_s = time.perf_counter() - t0
    engine = load_engine("dlib", detector=args.detector)
    factory = functools.partial(load_engine, "dlib", detector=args.detector)
    params = OpenSetParams(seed=0)

    with tempfile.TemporaryDirectory() as tmp:
        cache_path = Path(args.cache) if args.cache else Path(tmp) / "embeddings.sqlite"
        runs = {}
        for label in ("cold", "warm"):
            start = time.perf_counter()
            with EmbeddingCache(cache_path) as cache:
                result = evaluate(
                    manifest,
                    engine,
                    params,
                    cache=cache,
                    face_choice="central",
                    workers=args.workers,
                    engine_factory=factory,
                    progress=label == "cold" and sys.stderr.isatty(),
                )
            evaluate_s = time.perf_counter() - start
            start = time.perf_counter()
            aggregate = AggregateResult.from_result(result, n_boot=args.n_boot)
            aggregate_s = time.perf_counter() - start
            start = time.perf_counter()
            result.save(Path(tmp) / f"results_{label}")
            report = write_report(aggregate, Path(tmp) / f"report_{label}")
            save_report_s = time.perf_counter() - start
            t = result.timings
            after = t["scoring_s"] + t["scaling_s"] + aggregate_s + save_report_s
            runs[label] = {
                "evaluate_s": evaluate_s,
                "hashing_s": t["hashing_s"],
                "embedding_s": t["embedding_s"],
                "images_embedded": int(t["images_embedded"]),
                "images_from_cache": int(t["images_from_cache"]),
                "scoring_s": t["scoring_s"],
                "scaling_s": t["scaling_s"],
                "aggregate_intervals_s": aggregate_s,
                "save_and_report_s": save_report_s,
                "after_embedding_s": after,
                "report_mb": report.stat().st_size / 1e6,
            }

    figures = {
        "machine": {
            "cpu": cpu_model(),
            "cpus_visible": os.cpu_count(),
            "pinned_to": pinned,
            "platform": platform.platform(),
        },
        "software": software_versions(),
        "dataset": {"images": manifest.n_images, "subjects": manifest.n_subjects, "load_s": load_s},
        "protocol": result.protocol.to_dict(),
        "searches": {
            "watchlist_size": result.watchlist_size,
            "mated": result.searches.n_mated,
            "non_mated": result.searches.n_non_mated,
            "failed_to_acquire": int(
                result.acquisition.query("attribute == 'all'")["failed"].sum()
            ),
        },
        "settings": {
            "workers": args.workers,
            "detector": args.detector,
            "n_boot": args.n_boot,
            "thresholds": int(aggregate.thresholds.size),
        },
        "runs": runs,
    }
    cold, warm = runs["cold"], runs["warm"]
    print(
        f"LFW evaluation, dlib {args.detector}, {args.workers} workers, "
        f"pinned to {pinned or 'all'} CPUs ({cpu_model()})"
    )
    print(
        f"  {manifest.n_images:,} images of {manifest.n_subjects:,} people; watchlist N = "
        f"{result.watchlist_size:,}; {result.searches.n_mated:,} mated, "
        f"{result.searches.n_non_mated:,} non-mated searches"
    )
    print(
        f"  embedding (cold cache): {cold['embedding_s']:.1f} s for "
        f"{cold['images_embedded']:,} images "
        f"({cold['embedding_s'] / max(cold['images_embedded'], 1) * 1000:.0f} ms/image)"
    )
    print(
        f"  after embedding: {cold['after_embedding_s']:.1f} s (scoring {cold['scoring_s']:.2f}, "
        f"scaling {cold['scaling_s']:.2f}, per-group intervals "
        f"{cold['aggregate_intervals_s']:.2f}, save + report {cold['save_and_report_s']:.2f})"
    )
    warm_total = warm["evaluate_s"] + warm["aggregate_intervals_s"] + warm["save_and_report_s"]
    print(
        f"  second run, warm cache: {warm_total:.1f} s ({warm['images_embedded']} images embedded)"
    )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
