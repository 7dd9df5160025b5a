"""Two-sided coverage off the grid's beta model: a few people ("lambs") draw most false matches.

The grid (``benchmarks/bench_stats_grid.py``) draws person rates from a beta distribution. Here 5%
of people (Doddington et al. 1998's "lambs") have 20 times the others' rate, mean rate ``rate``;
searches per person ``1 + Poisson(Gamma(2, (m - 1) / 2))`` redrawn for each of 8 batches, as the
grid's unequal designs. The generator is ``lfr_eval.simulation.lambs_coverage``, which
``tests/test_review_findings.py`` uses too (same draws for the same seed), so a rule tuned on
the beta model is also checked on a two-point mixture. Table in
``benchmarks/results/stats_grid.md``.

Usage::

    python benchmarks/bench_lambs_coverage.py                 # 2,000 data sets per cell, ~15 CPU s
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

from lfr_eval.simulation import lambs_coverage

METHODS = (
    "design-effect-jeffreys",
    # the default through stop 23 (no floor at Kish's people, exact at one effective error)
    "design-effect-jeffreys [no Kish floor; exact at <= 1 effective error]",
    "design-effect-jeffreys [without the few-errors rule]",
    "korn-graubard",
)
#: review's three cells (50 x 20 at 0.02 is its xfail test), then a small grid
CELLS = [(50, 20, 0.02), (20, 50, 0.01), (100, 10, 0.05)] + list(
    itertools.product((100, 500, 2000), (10, 100), (1e-4, 1e-3, 1e-2))
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    load, cpu = os.getloadavg()[0], time.process_time()
    lines = [
        "| people | searches per person | mean rate | " + " | ".join(METHODS) + " |",
        "|---|---|---|" + "---|" * len(METHODS),
    ]
    for people, m, rate in CELLS:
        cov = [lambs_coverage(x, people, m, rate, args.datasets, args.seed) for x in METHODS]
        lines.append(f"| {people} | {m} | {rate:g} | " + " | ".join(f"{c:.4f}" for c in cov) + " |")
    print(
        f"{args.datasets} data sets per cell, seed {args.seed}; "
        f"{time.process_time() - cpu:.0f} CPU s; 1-minute load {load:.1f} at the start\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
