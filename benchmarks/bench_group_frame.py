"""Building the demographic page's group frame at crowd scale (issue 9 item 3).

:class:`lfr_eval.metrics.IdentificationFrame` (the MetricFrame-style group frame) with its
default intervals (design-effect Jeffreys, clustered by person) on seeded synthetic searches:
``--people`` crowd faces in 4 groups, each person with 1 + Poisson(``--extra-searches``)
non-mated searches (best scores ~ N(0.4, 0.1) plus a per-person shift, so searches cluster by
person), 4,000 mated searches of 400 people, ``--thresholds`` thresholds. Each step runs in its
own process, so its peak RSS is its own (``ru_maxrss``; the data set's construction is in it):

- ``frame``: the frame at every threshold (FPIR and FNIR, overall and by group);
- ``page``: what the demographic page does on full results at one threshold: the
  one-threshold frame and its default group test (``compare_groups``: the studentized
  permutation test over people, 4,999 relabellings, step-down adjustment);
- ``data``: the synthetic data set alone (its peak RSS is the floor under the others).

Usage::

    python benchmarks/bench_group_frame.py --people 1000000 --json results/group_frame_1m.json

CPU seconds (user + system of the process) are the figures to read on a shared machine.
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
from _machine import LoadSampler, cpu_model, finish_report

REPO = Path(__file__).resolve().parents[1]
GROUPS = ("a", "b", "c", "d")


def searches(people: int, extra: float, seed: int = 0):  # -> SearchSet
    """The seeded synthetic SearchSet (see the module docstring)."""
    import pandas as pd

    from lfr_eval.metrics import SearchSet

    rng = np.random.default_rng(seed)
    per_person = 1 + rng.poisson(extra, people)
    subjects = np.repeat(np.arange(people), per_person)
    shift = rng.normal(0.0, 0.05, people)  # the person's part: searches of one person cluster
    scores = rng.normal(0.4, 0.1, subjects.shape[0]) + shift[subjects]
    group_of = rng.choice(np.array(GROUPS), people)
    n_m = 4000
    mated_people = np.arange(n_m) // 10
    return SearchSet(
        watchlist_size=10_000,
        mate_scores=rng.normal(0.7, 0.1, n_m),
        mate_ranks=np.ones(n_m, np.int64),
        mated_subjects=mated_people,
        non_mated_topk=scores[:, None],
        non_mated_subjects=subjects,
        mated_groups=pd.DataFrame({"group": group_of[mated_people]}),
        non_mated_groups=pd.DataFrame({"group": group_of[subjects]}),
    )


def _one(mode: str, people: int, thresholds: int, extra: float, permutations: int) -> dict:
    from lfr_eval.metrics import IdentificationFrame

    data = searches(people, extra)
    grid = np.linspace(0.0, 1.0, thresholds)
    # the page's threshold: where about 1 in 1,000 non-mated searches is a false positive
    one = float(grid[np.searchsorted(grid, np.quantile(data.non_mated_topk[:, 0], 0.999))])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    out: dict = {"mode": mode}
    if mode == "data":
        pass
    elif mode == "frame":
        frame = IdentificationFrame(data, grid, ["group"])
        out["ci_method"] = str(frame.by_group["ci_method"].iloc[0])
        out["rows"] = int(frame.by_group.shape[0])
    else:
        frame = IdentificationFrame(data, [one], ["group"])
        build = time.process_time() - cpu0
        test0 = time.process_time()
        comparison = frame.compare_groups("fpir", one, n_permutations=permutations)
        out["frame_cpu_s"] = round(build, 2)
        out["test_cpu_s"] = round(time.process_time() - test0, 2)
        out["test"] = comparison.method
        out["p_adjusted"] = [round(p.p_adjusted, 4) for p in comparison.pairs]
        out["threshold"] = one
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.update(
        people=people,
        searches=int(data.non_mated_topk.shape[0]),
        thresholds=thresholds if mode == "frame" else 1,
        step_cpu_s=round(time.process_time() - cpu0, 2),
        step_wall_s=round(time.perf_counter() - wall0, 2),
        process_cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
        peak_rss_mib=round(usage.ru_maxrss / 1024, 1),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--thresholds", type=int, default=401)
    parser.add_argument("--extra-searches", type=float, default=1.0)
    parser.add_argument("--permutations", type=int, default=4999, help="the page's number")
    parser.add_argument("--modes", nargs="+", default=["data", "frame", "page"])
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", nargs=2, metavar=("MODE", "PEOPLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run = _one(
            args.one[0], int(args.one[1]), args.thresholds, args.extra_searches, args.permutations
        )
        print(json.dumps(run))
        return
    report: dict = {
        "benchmark": "bench_group_frame",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "arch": platform.machine()},
        "load_average_start": os.getloadavg(),
        "command": " ".join(["python", "benchmarks/bench_group_frame.py", *sys.argv[1:]]),
        "runs": [],
    }
    for people in args.people:
        for mode in args.modes:
            command = [sys.executable, __file__, "--one", mode, str(people)]
            command += ["--thresholds", str(args.thresholds)]
            command += ["--extra-searches", str(args.extra_searches)]
            command += ["--permutations", str(args.permutations)]
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            with LoadSampler() as load:
                done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                sys.exit(f"{mode} at {people:,} people failed:\n{done.stderr[-2000:]}")
            run = json.loads(done.stdout.strip().splitlines()[-1])
            run["load_average_1min"] = load.summary()
            report["runs"].append(run)
            print(json.dumps(run), flush=True)
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
