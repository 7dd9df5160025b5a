"""Dask local cluster vs one process on the same embedding job (issue 10 item 3).

The same random sample of LFW images is embedded with the default engine (HOG upsample 0, the
LFW layout's setting) four ways, without a cache so every image is computed:

- one process (onnxruntime with all the CPUs' threads);
- the process pool (``workers=2``, no Dask; ``--skip-pool`` leaves it out);
- a Dask local cluster of 2 worker processes, 1 thread each, started for the job (what
  ``--workers 2`` does: the start-up is included);
- the same cluster already running (``--scheduler``): the per-job cost without the start-up.

Then the scoring of those embeddings (every image a probe against a gallery of all of them,
k=20, a 401-threshold grid) in one process vs as cluster tasks. It checks that the embeddings
and the partial results are bit for bit equal, and prints the times and overhead ratios as JSON,
with each run's CPU seconds (this process and every worker process it started) and the 1-minute
load average sampled every 5 s during it.

    python benchmarks/bench_distributed.py --images 10000 --skip-pool \
        --json benchmarks/results/distributed_10k_2core_quiet.json
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _machine import LoadSampler, cpu_model, cpu_seconds_with_children, finish_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from distributed import Client, LocalCluster

    from lfr_eval.datasets import embed_manifest, load_dataset
    from lfr_eval.distributed import ClusterSpec, score_all_on_cluster
    from lfr_eval.faces import load_engine
    from lfr_eval.search._kernel import Gallery, score_all

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", default=str(REPO.parent / "shared" / "datasets" / "lfw"))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip-pool", action="store_true", help="leave out the process-pool run (no Dask)"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    full = load_dataset(args.lfw, "lfw")
    rng = np.random.default_rng(args.seed)
    keep = np.zeros(full.n_images, bool)
    keep[rng.choice(full.n_images, size=min(args.images, full.n_images), replace=False)] = True
    manifest = full.select(keep, name="sample")
    manifest.image_hashes()
    factory = functools.partial(load_engine, "dlib", upsample=0)
    engine = factory()
    report: dict = {
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {cpu_model()}",
        "images": manifest.n_images,
        "load_average_start": os.getloadavg(),
    }

    def timed(label: str, **options):
        with LoadSampler() as load:
            start, cpu = time.perf_counter(), cpu_seconds_with_children()
            result = embed_manifest(
                manifest, engine, None, face_choice="central", engine_factory=factory, **options
            )
            report[label] = {
                "seconds": time.perf_counter() - start,
                "cpu_seconds": cpu_seconds_with_children() - cpu,
            }
        report[label]["load_average"] = load.summary()
        return result

    single = timed("one_process")
    pool = None if args.skip_pool else timed("process_pool_2", workers=2)
    local = timed("dask_local_2_with_startup", cluster=ClusterSpec(workers=2))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        spec = ClusterSpec(scheduler=cluster.scheduler_address)
        # warm the workers' engines (a running cluster has them loaded already)
        embed_manifest(
            manifest.select(np.arange(len(manifest)) < 4),
            engine,
            None,
            face_choice="central",
            engine_factory=factory,
            cluster=spec,
        )
        running = timed("dask_running_2", cluster=spec)
        vectors = single.vectors[single.ok]
        subjects = manifest.subject_ids[single.ok]
        gallery = Gallery.build(vectors, subjects)
        thresholds = np.linspace(-1, 1, 401)
        start = time.perf_counter()
        expected = score_all(vectors, gallery, k=20, thresholds=thresholds, block=256)
        report["scoring_one_process"] = {"seconds": time.perf_counter() - start}
        with Client(cluster.scheduler_address) as client:
            start = time.perf_counter()
            got = score_all_on_cluster(
                client, vectors, gallery, k=20, thresholds=thresholds, block=256
            )
            report["scoring_dask_running_2"] = {"seconds": time.perf_counter() - start}
    same = all(
        np.array_equal(single.vectors, r.vectors) and np.array_equal(single.ok, r.ok)
        for r in (pool, local, running)
        if r is not None
    )
    report["embeddings_bit_identical"] = bool(same)
    report["scores_bit_identical"] = bool(
        all(
            np.array_equal(getattr(expected, n), getattr(got, n))
            for n in ("top_scores", "top_subjects", "higher", "counts")
        )
    )
    base = report["one_process"]["seconds"]
    for label in ("process_pool_2", "dask_local_2_with_startup", "dask_running_2"):
        if label in report:
            report[label]["ratio_to_one_process"] = report[label]["seconds"] / base
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
