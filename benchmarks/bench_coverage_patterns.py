"""Why a grid cell over-covers: two-sided misses by data pattern (issue 9, two-sided band).

For a few representative cells of ``benchmarks/bench_stats_grid.py`` it draws seeded data sets
(the grid's person model, :mod:`lfr_eval.simulation`), sorts each by its pattern (no error;
one person with errors, each error alone or one with several; two people; three or more) and
counts, per pattern, how often the default two-sided interval and the previous default miss the
true rate below and above. With the cell's exact lowest attainable coverage
(:func:`lfr_eval.attainable_coverage.lowest_attainable_coverage`) it shows which patterns an
interval could miss in at all. The table goes into ``benchmarks/results/stats_grid.md``.

Usage::

    python benchmarks/bench_coverage_patterns.py            # 2,000 data sets per cell, ~1 CPU min
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from lfr_eval.attainable_coverage import lowest_attainable_coverage
from lfr_eval.simulation import INTERVALS, ClusterDesign, draw_batches

#: (people, searches per person, ICC, rate, unequal): discreteness; 1-2 people carry the errors
#: (two cells); a Poisson-like count at ICC 0; many people but strong clustering.
CELLS = [
    (100, 10, 0.0, 1e-4, False),
    (2000, 10, 0.5, 1e-4, False),
    (100, 100, 0.3, 1e-3, False),
    (500, 10, 0.0, 1e-3, False),
    (500, 100, 0.3, 1e-3, True),
]
METHODS = ("design-effect-jeffreys", "design-effect-jeffreys [without the few-errors rule]")
PATTERNS = (
    "no error",
    "1 person (one error each)",
    "1 person (one with several)",
    "2 people (one error each)",
    "2 people (one with several)",
    ">= 3 people",
)


def pattern_of(errors: np.ndarray) -> np.ndarray:
    """Pattern name of each data set (column) of per-person errors (people, data sets)."""
    carriers = np.count_nonzero(errors, axis=0)
    several = errors.max(axis=0) > 1
    names = np.where(several, " (one with several)", " (one error each)")
    return np.select(
        [carriers == 0, carriers == 1, carriers == 2],
        ["no error", np.char.add("1 person", names), np.char.add("2 people", names)],
        ">= 3 people",
    )


def patterns(n_datasets: int, seed: int) -> pd.DataFrame:
    rows = []
    for i, cell in enumerate(CELLS):
        design = ClusterDesign(*cell)
        rng = np.random.default_rng(seed + i)
        for trials, errors in draw_batches(design, n_datasets, 8, rng):
            names = pattern_of(errors)
            ends = {m: INTERVALS[m](errors, trials, 0.95, "two-sided") for m in METHODS}
            for j, name in enumerate(names):
                row = {"cell": cell, "pattern": name}
                for m, (low, high) in ends.items():
                    row[f"{m}: below"] = bool(design.rate < low[j])
                    row[f"{m}: above"] = bool(design.rate > high[j])
                rows.append(row)
    frame = pd.DataFrame(rows)
    table = frame.groupby(["cell", "pattern"], sort=False).agg(
        share=("pattern", "size"), **{c: (c, "sum") for c in frame.columns if ": " in c}
    )
    order = {name: i for i, name in enumerate(PATTERNS)}
    table = table.sort_index(level=1, key=lambda names: names.map(order), sort_remaining=False)
    return table.reindex([c for c in dict.fromkeys(table.index.get_level_values(0))], level=0) / (
        n_datasets
    )


def markdown(table: pd.DataFrame) -> str:
    lines = []
    for cell, part in table.groupby(level=0, sort=False):
        design = ClusterDesign(*cell)
        reach = lowest_attainable_coverage(design)
        cover = {m: 1 - part[f"{m}: below"].sum() - part[f"{m}: above"].sum() for m in METHODS}
        lines.append(
            f"**{cell[0]} people × {cell[1]} searches, ICC {cell[2]:g}, rate {cell[3]:g}, "
            f"{'unequal' if cell[4] else 'equal'}** ({design.expected_errors:g} expected errors; "
            f"exact no-error share {reach.no_errors:.3f}; lowest attainable coverage "
            f"{reach.lowest:.3f}, {reach.basis}). Two-sided coverage: "
            + "; ".join(f"`{m}` {c:.3f}" for m, c in cover.items())
            + "\n"
        )
        lines.append(
            "| pattern | share | "
            + " | ".join(f"{m}: miss below | {m}: miss above" for m in METHODS)
            + " |"
        )
        lines.append("|" + "---|" * (2 + 2 * len(METHODS)))
        for (_, name), row in part.iterrows():
            lines.append(
                f"| {name} | {row['share']:.4f} | "
                + " | ".join(
                    f"{row[f'{m}: below']:.4f} | {row[f'{m}: above']:.4f}" for m in METHODS
                )
                + " |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=99)
    args = parser.parse_args()
    load, cpu = os.getloadavg()[0], time.process_time()
    text = markdown(patterns(args.datasets, args.seed))
    print(
        f"{args.datasets} data sets per cell, seed {args.seed}; "
        f"{time.process_time() - cpu:.0f} CPU s; 1-minute load {load:.1f} at the start\n"
    )
    print(text)


if __name__ == "__main__":
    main()
