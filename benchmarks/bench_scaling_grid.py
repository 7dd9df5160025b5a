"""Scaled FPIR with known truth (issue 9): coverage and bias of the scaling table's figures.

Each cell draws ``--datasets`` seeded data sets from :class:`lfr_eval.simulation.ScalingDesign`
(per-search false-match rates on the logit scale, a share of their variance shared by each
person's searches), counts the fillers each search meets, and runs the scaling table's own
estimator and interval (:func:`lfr_eval.simulation.scaled_fpir_coverage`):

- N <= F: the hypergeometric estimate with the Korn–Graubard-style clustered beta interval of
  the mean per-search alert probability; acceptance: bias within ±5%, two-sided coverage
  0.93–0.97, one-sided upper coverage >= 0.94;
- N > F (extrapolation): the range from the per-person model's lower end to the pooled model's
  upper end; its coverage (expected conservative) and each model's bias are reported.

Grid: people 20–2,000 × searches per person 1–50 × person share of the variance 0–1 ×
N / F 0.1–10 × median FMR 1e-5–1e-3 (F = 1,000 fillers, logit spread 1).

Usage::

    python benchmarks/bench_scaling_grid.py                   # full grid
    python benchmarks/bench_scaling_grid.py --datasets 200    # quick look
    # the cells of a committed table with the lowest one-sided coverage, again, with many more
    # data sets (a new seed): tells simulation noise from real under-coverage
    python benchmarks/bench_scaling_grid.py --rerun-worst 12 --datasets 4000

Writes ``<out>.csv`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lfr_eval.simulation import ScalingDesign, scaled_fpir_coverage

sys.path.insert(0, str(Path(__file__).parent))
from bench_stats_grid import markdown  # noqa: E402  (one pipe-table writer for both grids)

PEOPLE = (20, 100, 400, 2000)
SEARCHES = (1, 10, 50)
PERSON_SHARE = (0.0, 0.5, 1.0)
N_OVER_F = (0.1, 1.0, 10.0)
MEDIAN_FMR = (1e-5, 1e-4, 1e-3)
FILLERS = 1000


Cell = tuple[int, int, float, float, float]


def all_cells() -> list[Cell]:
    """The grid's cells (people, searches per person, person share, N / F, median FMR)."""
    cells = []
    for people, m, share, ratio, fmr in itertools.product(
        PEOPLE, SEARCHES, PERSON_SHARE, N_OVER_F, MEDIAN_FMR
    ):
        if m == 1 and share > 0:
            continue  # one search per person: no clustering to vary
        if people * m > 20_000:
            continue  # keeps the grid to minutes on 2 cores
        cells.append((people, m, share, ratio, fmr))
    return cells


def worst_cells(table_csv: Path, k: int, by: str = "upper") -> list[Cell]:
    """The ``k`` cells with N <= F of a committed table with the lowest one-sided coverage
    (``by="upper"``) or the largest ``|relative bias|`` (``by="bias"``)."""
    table = pd.read_csv(table_csv)
    within = table[table["n_over_f"] <= 1].copy()
    if by == "bias":
        within["abs_bias"] = within["relative_bias"].abs()
        within = within.nlargest(k, "abs_bias")
    else:
        within = within.nsmallest(k, "upper")
    return [
        (int(r.people), int(r.searches_per_person), float(r.person_share), float(r.n_over_f),
         float(r.median_fmr))
        for r in within.itertuples()
    ]  # fmt: skip


def grid(n_datasets: int, seed: int, cells: list[Cell] | None = None) -> pd.DataFrame:
    rows = []
    for i, (people, m, share, ratio, fmr) in enumerate(cells or all_cells()):
        design = ScalingDesign(people, m, FILLERS, int(ratio * FILLERS), fmr, 1.0, share)
        cpu = time.process_time()
        r = scaled_fpir_coverage(design, n_datasets=n_datasets, seed=seed + i)
        rows.append(
            {
                "people": people,
                "searches_per_person": m,
                "person_share": share,
                "n_over_f": ratio,
                "median_fmr": fmr,
                "true_fpir": r.truth,
                "method": r.method,
                "two_sided": r.two_sided,
                "upper": r.upper,
                "miss_below": r.miss_below,
                "miss_above": r.miss_above,
                "relative_bias": r.relative_bias,
                "relative_bias_se": r.relative_bias_se,
                "bias_z": r.bias_z(),
                "pooled_relative_bias": r.pooled_relative_bias,
                "median_relative_width": r.median_relative_width,
                "matching_people": r.matching_people,
                "n_datasets": n_datasets,
                "cpu_s": time.process_time() - cpu,
            }
        )
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> str:
    lines = []
    for label, part in (
        ("N <= F (hypergeometric, clustered interval)", table[table["n_over_f"] <= 1]),
        ("N > F (extrapolation range)", table[table["n_over_f"] > 1]),
    ):
        lines.append(f"### {label}\n")
        lines.append(
            "| cells | two-sided min | median | max | share in 0.93–0.97 | upper min | "
            "share upper >= 0.94 | max abs bias | max abs pooled bias |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for name, sub in (
            ("all", part),
            ("true FPIR >= 0.01", part[part["true_fpir"] >= 0.01]),
            ("true FPIR < 0.01", part[part["true_fpir"] < 0.01]),
        ):
            if sub.empty:
                continue
            inside = ((sub["two_sided"] >= 0.93) & (sub["two_sided"] <= 0.97)).mean()
            lines.append(
                f"| {name} ({len(sub)}) | {sub['two_sided'].min():.3f} | "
                f"{sub['two_sided'].median():.3f} | {sub['two_sided'].max():.3f} | {inside:.2f} | "
                f"{sub['upper'].min():.3f} | {(sub['upper'] >= 0.94).mean():.2f} | "
                f"{sub['relative_bias'].abs().max():.3f} | "
                f"{sub['pooled_relative_bias'].abs().max():.3f} |"
            )
        worst = part.nsmallest(6, "upper")[
            ["people", "searches_per_person", "person_share", "n_over_f", "median_fmr",
             "true_fpir", "two_sided", "upper", "relative_bias"]
        ]  # fmt: skip
        lines.append("\nLowest one-sided coverage:\n")
        lines.append(markdown(worst.reset_index(drop=True)))
        lines.append("")
        if (part["n_over_f"] <= 1).all():
            lines.append(bias_section(part))
            lines.append(information_bands(part))
    return "\n".join(lines)


def bias_section(within: pd.DataFrame) -> str:
    """|relative bias| against ±5% with its Monte-Carlo standard error, N <= F cells."""
    t = within.copy()
    t["abs_bias"] = t["relative_bias"].abs()
    # a bias beyond 5% that the simulation can tell from noise: more than 2 s.e. past the limit
    t["beyond"] = t["abs_bias"] - 2 * t["relative_bias_se"] > 0.05
    z = t["bias_z"].abs()
    n = len(t)
    # expected max |z| of n independent standard normals (median of the max)
    from scipy import stats

    expected_max = float(stats.norm.ppf(0.5 + 0.5 * 0.5 ** (1 / n))) if n else float("nan")
    lines = [
        "#### Bias against ±5%, with its Monte-Carlo standard error\n",
        "The hypergeometric estimate is unbiased by construction for N <= F; the simulation's "
        "mean estimate is off by noise of one standard error (s.e.: the estimates' s.d. over "
        "data sets / sqrt(data sets) / truth). 'beyond ±5%': |bias| more than 2 s.e. past 5% "
        f"(a real bias). Over {n} cells, |z| = |bias| / s.e. of pure noise has a median maximum "
        f"of {expected_max:.2f}.\n",
        f"- cells with |bias| > 5%: {int((t['abs_bias'] > 0.05).sum())}; beyond ±5% by more "
        f"than 2 s.e.: {int(t['beyond'].sum())}",
        f"- max |z| {z.max():.2f}; cells with |z| > 3: {int((z > 3).sum())}, > 2: "
        f"{int((z > 2).sum())} (noise alone: about {0.0027 * n:.1f} and {0.0455 * n:.1f})",
        f"- median s.e. {t['relative_bias_se'].median():.4f}, max {t['relative_bias_se'].max():.4f}"
        "\n",
        "Largest |bias|:\n",
        markdown(
            t.nlargest(6, "abs_bias")[
                ["people", "searches_per_person", "person_share", "n_over_f", "median_fmr",
                 "true_fpir", "matching_people", "relative_bias", "relative_bias_se", "bias_z"]
            ].reset_index(drop=True)
        ),  # fmt: skip
        "",
    ]
    return "\n".join(lines)


#: Bands of the expected number of false-matching people per data set.
INFORMATION_BANDS = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, np.inf)


def out_of_reach(people: int, matching_people: float) -> bool:
    """Whether no interval that is a function of the count X of false-matching people alone,
    and covers the truth when X = 0 (as any interval keeping the one-sided guarantee must
    where P(X = 0) > 0.05), can cover with probability in 0.93–0.97: X ~ Binomial(people, q),
    q = matching_people / people; every contiguous set of counts is tried. Only where at most
    half of the people match (beyond, this count is not what limits the interval)."""
    from scipy import stats

    q = min(max(matching_people / people, 0.0), 1.0)
    if q > 0.5:
        # most people match: the values (how many fillers each search met), not this count,
        # carry the information, and they are not that coarse
        return False
    pmf = stats.binom.pmf(np.arange(people + 1), people, q)
    cdf = np.concatenate([[0.0], np.cumsum(pmf)])
    first = [0] if pmf[0] > 0.05 else range(people + 1)
    for a in first:
        mass = cdf[a + 1 :] - cdf[a]  # P(a <= X <= b) for b = a..people
        if np.any((mass >= 0.93) & (mass <= 0.97)):
            return False
    return True


def with_information_bands(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its cells' band of false-matching people per data set (``band``) and
    whether the two-sided coverage is inside 0.93-0.97 (``in_band``)."""
    t = table.copy()
    labels = [
        f"{lo:g}–{hi:g}" for lo, hi in zip(INFORMATION_BANDS[:-1], INFORMATION_BANDS[1:],
                                         strict=True)
    ]  # fmt: skip
    t["band"] = pd.cut(t["matching_people"], list(INFORMATION_BANDS), right=False, labels=labels)
    t["in_band"] = (t["two_sided"] >= 0.93) & (t["two_sided"] <= 0.97)
    return t


def information_bands(within: pd.DataFrame) -> str:
    """The two-sided band by expected false-matching people per data set (N <= F)."""
    t = with_information_bands(within)
    t["reach"] = [
        not out_of_reach(int(p), float(k))
        for p, k in zip(t["people"], t["matching_people"], strict=True)
    ]
    lines = [
        "#### Two-sided coverage by information (false-matching people per data set)\n",
        "'out of reach': cells where no interval that depends only on the count of "
        "false-matching people, and keeps the one-sided guarantee, can cover in 0.93–0.97 "
        "(discreteness; the values carry a little more than that count, so this is a guide).\n",
        "| false-matching people | cells | out of reach | two-sided min | median | max | "
        "in 0.93–0.97 | above 0.97 | below 0.93 | in band of those in reach | one-sided min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for band in t["band"].cat.categories:
        part = t[t["band"] == band]
        if part.empty:
            continue
        reach = part[part["reach"]]
        lines.append(
            f"| {band} | {len(part)} | {int((~part['reach']).sum())} | "
            f"{part['two_sided'].min():.3f} | {part['two_sided'].median():.3f} | "
            f"{part['two_sided'].max():.3f} | {int(part['in_band'].sum())} | "
            f"{int((part['two_sided'] > 0.97).sum())} | {int((part['two_sided'] < 0.93).sum())} | "
            f"{reach['in_band'].mean() if len(reach) else float('nan'):.2f} | "
            f"{part['upper'].min():.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000, help="data sets per cell")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--out",
        default=None,
        help="default benchmarks/results/scaling_grid (scaling_grid_worst with --rerun-worst)",
    )
    parser.add_argument(
        "--rerun-worst",
        type=int,
        default=0,
        metavar="K",
        help="run only the K cells (N <= F) of the committed table with the "
        "lowest one-sided coverage",
    )
    parser.add_argument(
        "--by",
        choices=("upper", "bias"),
        default="upper",
        help="with --rerun-worst: the lowest one-sided coverage (upper) or the largest "
        "|relative bias| (bias)",
    )
    parser.add_argument(
        "--within-only", action="store_true", help="only the cells with N <= F (a third faster)"
    )
    args = parser.parse_args()
    results = Path("benchmarks/results")
    cells = [c for c in all_cells() if c[3] <= 1] if args.within_only else None
    if args.rerun_worst:
        cells = worst_cells(results / "scaling_grid.csv", args.rerun_worst, args.by)
    default_out = (
        ("scaling_grid_worst_bias" if args.by == "bias" else "scaling_grid_worst")
        if args.rerun_worst
        else "scaling_grid"
    )
    start, cpu = time.perf_counter(), time.process_time()
    table = grid(args.datasets, args.seed, cells)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    out = Path(args.out) if args.out else results / default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False, float_format="%.5g")
    header = (
        "# Simulation grid: scaled FPIR coverage and bias (issue 9)\n\n"
        f"{args.datasets} data sets per cell, seed {args.seed}; {len(table)} cells"
        + (
            f" (the {args.rerun_worst} "
            + ("largest-|bias|" if args.by == "bias" else "lowest one-sided")
            + " cells of scaling_grid.csv, rerun)"
            if args.rerun_worst
            else ""
        )
        + f"; {cpu:.0f} CPU s ({elapsed:.0f} s wall, load average "
        f"{os.getloadavg()[0]:.1f} at the end) on {platform.machine()} with {os.cpu_count()} "
        f"CPUs shared with other jobs (numpy {np.__version__}).\n\n"
    )
    body = summarise(table) if not args.rerun_worst else rerun_table(table)
    out.with_suffix(".md").write_text(header + body + "\n")
    print(header + body)


def rerun_table(table: pd.DataFrame) -> str:
    """The rerun cells, each with its coverage, bias and their Monte Carlo standard errors."""
    shown = table[
        ["people", "searches_per_person", "person_share", "n_over_f", "median_fmr",
         "true_fpir", "matching_people", "two_sided", "upper", "miss_below", "miss_above",
         "relative_bias", "relative_bias_se", "bias_z"]
    ].copy()  # fmt: skip
    n = table["n_datasets"]
    shown["upper_se"] = np.sqrt(table["upper"] * (1 - table["upper"]) / n)
    beyond = (table["relative_bias"].abs() - 2 * table["relative_bias_se"] > 0.05).sum()
    note = (
        f"\n\nCells whose |bias| is more than 2 s.e. beyond ±5% (a real bias): {int(beyond)}; "
        f"max |bias| {table['relative_bias'].abs().max():.4f}, max |z| "
        f"{table['bias_z'].abs().max():.2f}.\n"
    )
    return markdown(shown.sort_values("upper").reset_index(drop=True)) + note


if __name__ == "__main__":
    main()
