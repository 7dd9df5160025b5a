"""Subject bootstrap and clustered summary at crowd scale: dense matrix vs sparse histogram.

Issue 10 item 5: the subject bootstrap kept subjects x thresholds int64 counts (3 GB and
7-10 s at 100k people); the sparse per-subject histogram with chunked replicates must let
1M distinct crowd faces fit. Each configuration runs in its own process (peak RSS is the
process's ``ru_maxrss``), on synthetic scores: one non-mated search per crowd face (the
worst case for the dense form: as many subjects as searches), best scores ~ N(0.4, 0.1).

- ``dense``: the former path — :func:`count_at_or_above_by_subject` (s x m matrices), the
  (B x s) @ (s x m) replicate product, :func:`summarise_clusters` on the matrix;
- ``sparse``: :func:`subject_histogram`, :func:`bootstrap_rates` on it (chunked replicates),
  :func:`summarise_subjects`; the replicates are checked bit-identical to ``dense`` when both run;
- ``frame``: the whole :class:`IdentificationFrame` (subject bootstrap, 2 groups).

Usage::

    python benchmarks/bench_bootstrap.py --people 100000 1000000 --json results/bootstrap.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import finish_report

REPO = Path(__file__).resolve().parents[1]


def _scores(people: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.arange(people), rng.normal(0.4, 0.1, people)


def _one(mode: str, people: int, thresholds: int, n_boot: int, out: str | None) -> dict:
    from lfr_eval.metrics import (
        bootstrap_rates,
        count_at_or_above_by_subject,
        subject_histogram,
        summarise_clusters,
        summarise_subjects,
    )
    from lfr_eval.metrics._intervals import bootstrap_weights

    subjects, scores = _scores(people)
    grid = np.linspace(0.0, 1.0, thresholds)
    start = time.perf_counter()
    if mode == "dense":
        names, trials, hits = count_at_or_above_by_subject(subjects, scores, grid)
        weights = bootstrap_weights(len(names), n_boot, np.random.default_rng(0))
        dtype = np.float32 if trials.sum() * 4 < 2**24 else np.float64
        errors = weights.astype(dtype) @ hits.astype(dtype)
        reps = errors.astype(np.float64) / (weights @ trials.astype(np.float64))[:, None]
        summarise_clusters(hits, trials)
    elif mode == "sparse":
        hist = subject_histogram(subjects, scores, grid)
        reps = bootstrap_rates(hist, n_boot, seed=0)
        summarise_subjects(hist)
    else:
        import pandas as pd

        from lfr_eval.metrics import IdentificationFrame, SearchSet

        rng = np.random.default_rng(1)
        n_m = 4000
        searches = SearchSet(
            watchlist_size=10_000,
            mate_scores=rng.normal(0.7, 0.1, n_m),
            mate_ranks=np.ones(n_m, np.int64),
            mated_subjects=np.arange(n_m) // 10,
            non_mated_topk=scores[:, None],
            non_mated_subjects=subjects,
            mated_groups=pd.DataFrame({"sex": rng.choice(["f", "m"], n_m)}),
            non_mated_groups=pd.DataFrame({"sex": rng.choice(["f", "m"], people)}),
        )
        IdentificationFrame(searches, grid, ["sex"], ci_method="subject-bootstrap", n_boot=n_boot)
        reps = None
    seconds = time.perf_counter() - start
    if out is not None and reps is not None:
        np.save(out, reps)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = usage.ru_maxrss
    return {
        "mode": mode,
        "people": people,
        "thresholds": thresholds,
        "n_boot": n_boot,
        "seconds": seconds,
        "peak_rss_mib": peak_kib / 1024,
        # CPU seconds of the whole process (set-up included): what the wall time would be on
        # a quiet machine, less any use of both cores at once
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--thresholds", type=int, default=1000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--dense-up-to", type=int, default=100_000, help="larger: dense skipped")
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", nargs=2, metavar=("MODE", "PEOPLE"), help=argparse.SUPPRESS)
    parser.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = _one(args.one[0], int(args.one[1]), args.thresholds, args.n_boot, args.save)
        print(json.dumps(result))
        return
    report: dict = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_start": os.getloadavg(),
        "runs": [],
    }
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for people in args.people:
        modes = ["dense", "sparse", "frame"] if people <= args.dense_up_to else ["sparse", "frame"]
        saved = {}
        for mode in modes:
            save = tmp / f"bench_bootstrap_{mode}_{people}.npy"
            command = [sys.executable, __file__, "--one", mode, str(people)]
            command += ["--thresholds", str(args.thresholds), "--n-boot", str(args.n_boot)]
            command += ["--save", str(save)]
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            run = json.loads(done.stdout.strip().splitlines()[-1])
            run["load_average_1min"] = os.getloadavg()[0]
            report["runs"].append(run)
            print(json.dumps(run), flush=True)
            if save.exists():
                saved[mode] = np.load(save)
                save.unlink()
        if "dense" in saved:
            report.setdefault("replicates_identical", {})[str(people)] = bool(
                np.array_equal(saved["dense"], saved["sparse"])
            )
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
