"""Why a grid cell over-covers: two-sided misses by data pattern (issue 9, two-sided band).

For a few representative cells of ``benchmarks/bench_stats_grid.py`` it draws seeded data sets
(the grid's person model, :mod:`lfr_eval.simulation`), sorts each by its pattern (no error;
one person with errors, each error alone or one with several; two people; three or more) and
counts, per pattern, how often the default two-sided interval and the previous default miss the
true rate below and above. With the cell's exact lowest attainable coverage
(:func:`lfr_eval.attainable_coverage.lowest_attainable_coverage`) it shows which patterns an
interval could miss in at all. The table goes into ``benchmarks/results/stats_grid.md``.

With ``--joint`` it computes instead the exact joint bound of
:func:`lfr_eval.attainable_coverage.joint_attainable` for every design of the grid with equal
searches per person (people × searches per person; its cells are the grid's rates × ICCs): the
most cells one interval can put in 0.93–0.97 at once while keeping every cell >= 0.93, each
cell's lowest attainable coverage, the default interval's exact coverage on the same patterns
and, where the bound is above the default's count, what the optimal interval nearest the
default changes. With the grid table (``results/stats_grid.csv``, the default's measured
coverage) it gives "at most X of 340 cells": the designs with unequal searches per person keep
the no-error argument of :func:`~lfr_eval.attainable_coverage.lowest_attainable_coverage`.
Writes ``results/attainable_joint.csv`` (one row per cell) and ``results/attainable_joint.md``.

Usage::

    python benchmarks/bench_coverage_patterns.py            # 2,000 data sets per cell, ~1 CPU min
    python benchmarks/bench_coverage_patterns.py --joint    # the joint bound, ~10 CPU min
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lfr_eval.attainable_coverage import (
    GRID_ICC,
    GRID_RATES,
    JointBound,
    interval_table,
    joint_attainable,
    lowest_attainable_coverage,
)
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


#: The designs of the grid (``benchmarks/bench_stats_grid.py``) with equal searches per person.
JOINT_PEOPLE = (20, 100, 500, 2000)
JOINT_SEARCHES = (1, 10, 100)
#: A pattern is listed among the changes where some cell gives it at least this probability.
SHOWN_PROBABILITY = 0.005
RESULTS = Path(__file__).parent / "results"


def _held(row: np.ndarray) -> str:
    on = [f"{r:g}" for r, held in zip(GRID_RATES, row, strict=True) if held]
    return "{" + ", ".join(on) + "}" if on else "none"


def joint_rows(bound: JointBound) -> tuple[list[dict[str, object]], list[str]]:
    """Per-cell rows of one design and the lines describing the optimum's changes."""
    ps = bound.patterns
    default = interval_table(ps, bound.rates)
    rate_of = [bound.rates.index(r) for r, _ in ps.cells]
    rows = []
    for j, (rate, icc) in enumerate(ps.cells):
        exact = float(ps.probabilities[j] @ default[:, rate_of[j]])
        single = lowest_attainable_coverage(ClusterDesign(ps.people, ps.searches, icc, rate))
        rows.append(
            {
                "people": ps.people,
                "searches_per_person": ps.searches,
                "icc": icc,
                "rate": rate,
                "free": bound.free[j],
                "joint_lowest": bound.lowest[j],
                "joint_out_of_reach": bool(bound.out_of_reach[j]),
                "single_rate_lowest": single.lowest,
                "optimum_in_band": bool(bound.in_band[j]),
                "optimum_coverage": bound.coverage[j],
                "default_exact_low": exact,
                "default_exact_high": min(1.0, exact + float(ps.free[j])),
            }
        )
    changes = []
    # rates at which the pattern is a variable of a constrained cell: elsewhere either is free
    weight = np.zeros((len(ps.patterns), len(bound.rates)))
    for j in range(len(ps.cells)):
        if bound.free[j] < bound.band[1]:
            weight[:, rate_of[j]] = np.maximum(weight[:, rate_of[j]], ps.probabilities[j])
    differs = (bound.covers != default) & (weight >= SHOWN_PROBABILITY)
    for p in np.nonzero(differs.any(axis=1))[0]:
        pattern = tuple(int(v) for v in ps.patterns[p] if v)
        changes.append(
            f"- {pattern or '()'} (probability up to {weight[p].max():.3f}): default holds "
            f"{_held(default[p])}, optimum {_held(bound.covers[p])}"
        )
    return rows, changes


def joint_grid(
    grid: pd.DataFrame | None,
    monotone: bool = False,
    designs: list[tuple[int, int]] | None = None,
) -> tuple[pd.DataFrame, str]:
    rows, lines, totals = [], [], []
    for people, m in designs or [(s, m) for s in JOINT_PEOPLE for m in JOINT_SEARCHES]:
        start = time.process_time()
        bound = joint_attainable(people, m, monotone=monotone)
        cells, changes = joint_rows(bound)
        part = pd.DataFrame(cells)
        measured = None
        if grid is not None:
            g = grid[(grid["people"] == people) & (grid["searches_per_person"] == m)]
            g = g[~g["unequal"] & (g["method"] == METHODS[0])]
            part = part.merge(
                g[["icc", "rate", "two_sided"]].rename(columns={"two_sided": "default_measured"}),
                on=["icc", "rate"],
                how="left",
            )
            measured = int(part["default_measured"].between(0.93, 0.97).sum())
        # the default's coverage: exact where (nearly) every pattern is enumerated
        exact = part["default_exact_high"] - part["default_exact_low"] < 1e-4
        best = part["default_exact_low"].where(exact, part.get("default_measured"))
        part["default_best"] = best
        best_count = int(best.between(0.93, 0.97).sum())
        seconds = time.process_time() - start
        totals.append(
            {
                "design": f"{people} × {m}",
                "cells": len(part),
                "at most in band": bound.max_in_band,
                "LP relaxation": round(bound.lp_max_in_band, 2),
                "default in band (measured)": measured,
                "default in band (exact where enumerated, else measured)": best_count,
                "proved out of reach (joint)": int(part["joint_out_of_reach"].sum()),
                "proved out of reach (single rate)": int((part["single_rate_lowest"] > 0.97).sum()),
                "unconstrained cells": int((part["free"] >= 0.97).sum()),
                "largest free share, constrained cells": float(
                    f"{part.loc[part['free'] < 0.97, 'free'].max():.2g}"
                ),
                "optimum found (rounded)": bound.attained,
                "patterns": len(bound.patterns.patterns),
                "CPU s": round(seconds, 1),
            }
        )
        rows.append(part)
        if measured is not None and bound.max_in_band > measured and changes:
            lines.append(
                f"**{people} × {m}**: at most {bound.max_in_band} of {len(part)} "
                f"(default {measured}); the optimum nearest the default changes "
                f"(patterns with probability >= {SHOWN_PROBABILITY:g} in a constrained "
                "cell, rates held among the grid's):\n"
            )
            lines += changes + [""]
        print(totals[-1], flush=True)
    table = pd.concat(rows, ignore_index=True)
    summary = pd.DataFrame(totals)
    text = [_markdown_table(summary), ""]
    if grid is not None and designs is None:
        default = grid[grid["method"] == METHODS[0]]
        unequal = default[default["unequal"]]
        exact_count = int(
            summary["default in band (exact where enumerated, else measured)"].sum()
        ) + int(unequal["two_sided"].between(0.93, 0.97).sum())
        proved_unequal = int((unequal["attainable_lowest"] > 0.97).sum())
        equal_max = int(summary["at most in band"].sum())
        n_cells = len(default)
        measured_all = int(default["two_sided"].between(0.93, 0.97).sum())
        bound_all = equal_max + len(unequal) - proved_unequal
        text.insert(
            0,
            f"**At most {bound_all} of {n_cells} cells** can be in 0.93–0.97 for any "
            "non-randomised interval that is a function of the pattern and keeps every cell "
            ">= 0.93: "
            f"{equal_max} of the {int(summary['cells'].sum())} cells with equal searches per "
            "person (this joint bound, per design), and "
            f"{len(unequal) - proved_unequal} of the {len(unequal)} with unequal searches "
            f"(no-error argument only: {proved_unequal} proved out of reach, the others "
            f"counted as reachable). The default puts {measured_all} in band (measured, "
            f"{len(default)} cells; {exact_count} counting its exact coverage where every "
            "pattern of note is enumerated)."
            + (
                " Monotone intervals only (ends never fall when an error is added)."
                if monotone
                else ""
            )
            + "\n",
        )
    text += lines
    return table, "\n".join(text)


def _markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([head, rule, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=99)
    parser.add_argument("--joint", action="store_true", help="the joint bound (see above)")
    parser.add_argument(
        "--monotone", action="store_true", help="with --joint: monotone intervals only"
    )
    parser.add_argument(
        "--designs", default="", help="with --joint: e.g. 20x10,100x10 (default: all twelve)"
    )
    parser.add_argument("--grid", type=Path, default=RESULTS / "stats_grid.csv")
    parser.add_argument("--out", type=Path, default=RESULTS / "attainable_joint")
    args = parser.parse_args()
    load, cpu = os.getloadavg()[0], time.process_time()
    if args.joint:
        grid = pd.read_csv(args.grid) if args.grid.exists() else None
        designs = [tuple(int(v) for v in d.split("x")) for d in args.designs.split(",") if d]
        table, text = joint_grid(grid, args.monotone, designs or None)  # type: ignore[arg-type]
        if args.monotone:
            args.out = args.out.with_name(args.out.name + "_monotone")
        head = (
            f"Joint bound (`lfr_eval.attainable_coverage.joint_attainable`), rates "
            f"{', '.join(f'{r:g}' for r in GRID_RATES)} × ICC "
            f"{', '.join(f'{i:g}' for i in GRID_ICC)}; {platform.machine()}, "
            f"{os.cpu_count()} CPUs, 1-minute load {load:.1f} at the start; "
            f"{time.process_time() - cpu:.0f} CPU s.\n\n"
        )
        args.out.with_suffix(".csv").write_text(table.to_csv(index=False))
        args.out.with_suffix(".md").write_text(head + text + "\n")
        print(head + text)
        return
    text = markdown(patterns(args.datasets, args.seed))
    print(
        f"{args.datasets} data sets per cell, seed {args.seed}; "
        f"{time.process_time() - cpu:.0f} CPU s; 1-minute load {load:.1f} at the start\n"
    )
    print(text)


if __name__ == "__main__":
    main()
