"""Cost of the studentized permutation group test at crowd scale (issue 9, demographic page).

``permutation_compare_groups`` (what ``IdentificationFrame.compare_groups`` and the demographic
page on full results run) on seeded per-person counts: G groups of people with 1 + Poisson
searches each (mean 10, unequal), errors beta-binomial (ICC 0.2) at an FPIR of 1 in 1,000 or 1
in 100. It times the typed path (relabelling drawn as hypergeometric numbers of each (errors,
searches) type: cost by distinct types, not people; what the function uses) and, where it is
affordable, the direct path (every person's label permuted), and checks that both give the
same p-values within Monte-Carlo error::

    python benchmarks/bench_group_permutation.py                 # 100k and 1M people
    python benchmarks/bench_group_permutation.py --people 100000 --json out.json

CPU seconds are reported beside wall time (the machine is shared); peak RSS from
``resource.getrusage``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np
from _machine import cpu_model, finish_report

from lfr_eval.metrics import permutation_compare_groups
from lfr_eval.simulation import ClusterDesign, draw_errors, draw_trials


def counts(people: int, n_groups: int, rate: float, seed: int) -> tuple[dict, dict]:
    """Per-person errors and searches of ``n_groups`` equal groups (``people`` in all)."""
    rng = np.random.default_rng(seed)
    errors, trials = {}, {}
    for g in range(n_groups):
        design = ClusterDesign(people // n_groups, 10, 0.2, rate, True)
        t = draw_trials(design, rng)
        errors[f"g{g}"] = draw_errors(design, t, 1, rng)[:, 0]
        trials[f"g{g}"] = t
    return errors, trials


def timed(errors: dict, trials: dict, n_permutations: int, engine: str) -> dict:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = permutation_compare_groups(
        errors, trials, n_permutations=n_permutations, seed=1, engine=engine
    )
    return {
        "engine": engine,
        "n_permutations": n_permutations,
        "cpu_s": round(time.process_time() - cpu0, 2),
        "wall_s": round(time.perf_counter() - wall0, 2),
        "p_adjusted": [round(p.p_adjusted, 4) for p in result.pairs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--rates", type=float, nargs="+", default=[1e-3, 1e-2])
    parser.add_argument("--permutations", type=int, default=4999, help="the page's number")
    parser.add_argument(
        "--direct-permutations", type=int, default=199,
        help="relabellings for the direct path (its cost is linear in them)",
    )  # fmt: skip
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    load_start = os.getloadavg()
    runs = []
    for people in args.people:
        for rate in args.rates:
            errors, trials = counts(people, args.groups, rate, seed=people % 97)
            row = {"people": people, "groups": args.groups, "rate": rate}
            row["typed"] = timed(errors, trials, args.permutations, "types")
            row["direct"] = timed(errors, trials, args.direct_permutations, "people")
            per = row["direct"]["cpu_s"] / args.direct_permutations
            row["direct_cpu_s_extrapolated_to_typed_permutations"] = round(
                per * args.permutations, 1
            )
            print(row, flush=True)
            runs.append(row)
    report = {
        "benchmark": "bench_group_permutation",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "arch": platform.machine()},
        "load_average_start": load_start,
        "runs": runs,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
