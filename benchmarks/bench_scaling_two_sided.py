"""Scaled FPIR, N <= F: which two-sided interval rule keeps 0.93–0.97 (issue 9).

The scaling grid (``bench_scaling_grid.py``) put only about half of its N <= F cells inside
0.93–0.97 two-sided, nearly all the others above 0.97. This script draws the grid's N <= F
cells with the grid's seeds (the same data sets as ``bench_scaling_grid.py --within-only``)
and computes, **on the same data sets**, the two-sided interval under several rules of
:func:`lfr_eval.protocols._scaling.interval_from_summary`:

- ends: ``exact`` (Clopper–Pearson beta quantiles of the effective counts, Korn–Graubard),
  ``jeffreys`` (``Beta(x + 1/2, n - x + 1/2)``: the design-effect Jeffreys form of the plain
  rates' default) or ``mid-p``;
- degrees of freedom of the t widening: ``people`` (the people carrying the variance) or
  ``satterthwaite`` (only the variance beyond the binomial is estimated from few people), on
  both ends or on the lower end only;
- ``raised``: the upper end raised to the one-sided bound (which adds one more person as large
  as the largest seen, Fay & Feuer 1997) or not.

The one-sided bound is the same under every rule (reported once). Coverage is also shown by
the expected number of false-matching people per data set, with the cells that discreteness
puts out of reach (``bench_scaling_grid.out_of_reach``).

Usage::

    python benchmarks/bench_scaling_two_sided.py --datasets 1000   # ~3 CPU min

Writes ``benchmarks/results/scaling_two_sided.{csv,md}``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lfr_eval.metrics._clustered import summarise_clusters
from lfr_eval.protocols._scaling import (
    interval_from_summary,
    largest_person_sum,
    per_search_fpir,
    person_sums,
    zero_exponent,
)
from lfr_eval.simulation import ScalingDesign, scaling_batches

sys.path.insert(0, str(Path(__file__).parent))
from bench_scaling_grid import (  # noqa: E402
    FILLERS,
    all_cells,
    out_of_reach,
    with_information_bands,
)
from bench_stats_grid import markdown  # noqa: E402

#: name -> (two-sided ends, degrees-of-freedom rule, raise to the one-sided bound)
RULES: dict[str, tuple[str, str, bool]] = {
    "exact, raised (before)": ("exact", "people", True),
    "exact": ("exact", "people", False),
    "exact, satterthwaite": ("exact", "satterthwaite", False),
    "mid-p": ("mid-p", "people", False),
    "jeffreys, raised": ("jeffreys", "people", True),
    "jeffreys": ("jeffreys", "people", False),
    "jeffreys, satterthwaite": ("jeffreys", "satterthwaite", False),
    "jeffreys, satterthwaite lower end (now)": ("jeffreys", "satterthwaite-lower", False),
    "mid-p, satterthwaite lower end": ("mid-p", "satterthwaite-lower", False),
}


def cell_rules(design: ScalingDesign, n_datasets: int, seed: int) -> list[dict]:
    """Two-sided coverage of every rule in one cell, on the same seeded data sets (drawn in
    the batches :func:`lfr_eval.simulation.scaled_fpir_coverage` uses)."""
    rng = np.random.default_rng(seed)
    truth = design.true_fpir()
    sizes, shares, n = np.array([design.n_fillers]), np.array([1.0]), design.watchlist_size
    subjects = np.repeat(np.arange(design.n_people), design.searches_per_person)
    exponent = zero_exponent(n, sizes, shares)
    hits = {name: np.zeros(4) for name in RULES}  # inside, below, above, upper < bound
    upper_ok = 0
    matching = []
    for counts, matched in scaling_batches(design, n_datasets, rng):
        matching.append(matched)
        values, _ = per_search_fpir(counts, sizes, shares, n)
        sums, trials = person_sums(values, subjects)
        sums = np.clip(sums, 0.0, trials[:, None])
        summary, largest = summarise_clusters(sums, trials), largest_person_sum(sums)
        for name, (ends, df_rule, raised) in RULES.items():
            r = interval_from_summary(
                summary, exponent, 0.95, largest,
                two_sided_ends=ends, two_sided_df=df_rule, raise_two_sided=raised,  # type: ignore[arg-type]
            )  # fmt: skip
            hits[name] += [
                np.count_nonzero((r.lower <= truth) & (truth <= r.upper)),
                np.count_nonzero(truth < r.lower),
                np.count_nonzero(truth > r.upper),
                np.count_nonzero(r.upper < r.upper_bound),
            ]
        upper_ok += int(np.count_nonzero(truth <= r.upper_bound))
    rows = []
    for name, (inside, below, above, unnested) in hits.items():
        rows.append(
            {
                "people": design.n_people,
                "searches_per_person": design.searches_per_person,
                "person_share": design.person_share,
                "n_over_f": design.extrapolation,
                "median_fmr": design.median_fmr,
                "true_fpir": truth,
                "matching_people": float(np.mean(np.concatenate(matching))),
                "rule": name,
                "two_sided": inside / n_datasets,
                "miss_below": below / n_datasets,
                "miss_above": above / n_datasets,
                "upper": upper_ok / n_datasets,
                "upper_end_below_bound": unnested / n_datasets,
                "n_datasets": n_datasets,
            }
        )
    return rows


def summary_table(table: pd.DataFrame) -> str:
    """Per rule: the band over all N <= F cells and over the cells in reach."""
    t = table.copy()
    t["in_band"] = (t["two_sided"] >= 0.93) & (t["two_sided"] <= 0.97)
    t["reach"] = [
        not out_of_reach(int(p), float(k))
        for p, k in zip(t["people"], t["matching_people"], strict=True)
    ]
    n_cells = t["rule"].eq(next(iter(RULES))).sum()
    lines = [
        f"| rule | cells | in 0.93–0.97 | above 0.97 | below 0.93 | min | median | max | "
        f"in band, cells in reach ({int(t[t['rule'] == next(iter(RULES))]['reach'].sum())}) | "
        "data sets with upper end < one-sided bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in RULES:
        part = t[t["rule"] == name]
        reach = part[part["reach"]]
        lines.append(
            f"| {name} | {n_cells} | {part['in_band'].mean():.2f} | "
            f"{int((part['two_sided'] > 0.97).sum())} | {int((part['two_sided'] < 0.93).sum())} | "
            f"{part['two_sided'].min():.3f} | {part['two_sided'].median():.3f} | "
            f"{part['two_sided'].max():.3f} | {reach['in_band'].mean():.2f} | "
            f"{part['upper_end_below_bound'].mean():.3f} |"
        )
    return "\n".join(lines) + "\n"


def band_table(table: pd.DataFrame) -> str:
    """Share in 0.93–0.97 by false-matching people per data set, per rule."""
    t = with_information_bands(table)
    first = next(iter(RULES))
    lines = [
        "| false-matching people | cells | out of reach | "
        + " | ".join(f"{r}: in band / below" for r in RULES)
        + " |",
        "|" + "---|" * (3 + len(RULES)),
    ]
    for band in t["band"].cat.categories:
        part = t[t["band"] == band]
        if part.empty:
            continue
        base = part[part["rule"] == first]
        unreachable = sum(
            out_of_reach(int(p), float(k))
            for p, k in zip(base["people"], base["matching_people"], strict=True)
        )
        cells = [
            f"{int(part[part['rule'] == r]['in_band'].sum())} / "
            f"{int((part[part['rule'] == r]['two_sided'] < 0.93).sum())}"
            for r in RULES
        ]
        lines.append(f"| {band} | {len(base)} | {unreachable} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000, help="data sets per cell")
    parser.add_argument("--seed", type=int, default=2026, help="the grid's seed")
    parser.add_argument("--out", default="benchmarks/results/scaling_two_sided")
    args = parser.parse_args()
    start, cpu = time.perf_counter(), time.process_time()
    rows: list[dict] = []
    for i, (people, m, share, ratio, fmr) in enumerate(all_cells()):
        if ratio > 1:
            continue
        design = ScalingDesign(people, m, FILLERS, int(ratio * FILLERS), fmr, 1.0, share)
        rows += cell_rules(design, args.datasets, args.seed + i)  # the grid's seed of the cell
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False, float_format="%.5g")
    worst = table.sort_values("two_sided").groupby("rule", sort=False).head(3)
    text = (
        "# Scaled FPIR, N <= F: two-sided rules on the same data sets (issue 9)\n\n"
        f"{args.datasets} data sets per cell, the grid's seeds (base {args.seed}); "
        f"{len(table) // len(RULES)} cells; {cpu:.0f} CPU s ({elapsed:.0f} s wall, load average "
        f"{os.getloadavg()[0]:.1f} at the end) on {platform.machine()} with {os.cpu_count()} "
        f"CPUs shared with other jobs (numpy {np.__version__}). One-sided coverage (the same "
        f"bound under every rule): min {table['upper'].min():.3f}.\n\n"
        "## Two-sided coverage by rule\n\n"
        + summary_table(table)
        + "\n## By false-matching people per data set (cells in band / cells below 0.93)\n\n"
        + band_table(table)
        + "\n## Lowest two-sided cells of each rule\n\n"
        + markdown(
            worst[["rule", "people", "searches_per_person", "person_share", "n_over_f",
                   "median_fmr", "matching_people", "two_sided", "miss_below",
                   "miss_above"]].reset_index(drop=True)
        )  # fmt: skip
        + "\n"
    )
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
