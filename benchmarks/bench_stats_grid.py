"""The full simulation grid behind the workbench's statistics (issue 9): coverage with known truth.

Grid: people 20–2,000 × searches per person 1–100 (equal and unequal between people) × intra-person
correlation 0–0.5 × rates 1e-4–0.3. For each cell, ``--datasets`` seeded data sets are drawn from
the beta-binomial person model of :mod:`lfr_eval.simulation`; the table gives how often each
interval holds the true rate: the default (design-effect Jeffreys, clustered by person), the same
ends with the other small-sample rules compared for it (``[no Kish floor; exact at <= 1
effective error]``: the default through stop 23, without the floor at Kish's effective number of
people and with the exact lower end at one *effective* error instead of one observed error;
``[Kish floor only]`` / ``[exact at one error only]``: each half of that change alone (the
latter at the lower end only); ``[exact lower end only at one error]``: the default with
Jeffreys' upper end at one error;
``[without the few-errors rule]``: the default until 2026-12-02, whose lower end kept the whole t
factor where 1–4 people carry the variance even with a handful of errors; ``[t on the whole
variance]``: the default before that; ``[t on the excess]`` at both ends; ``[no floor on
people]``: the rule before the few-errors rule without its floor on the people carrying the
variance), the exact Korn–Graubard design-effect Clopper–Pearson (what claim verdicts use) and,
for contrast, Clopper–Pearson over searches. The one-sided column of every design-effect method
is the Korn–Graubard bound made monotone in the errors
(:func:`lfr_eval.metrics.monotone_upper_bound`), computed once per cell for all of them
(:func:`lfr_eval.simulation.interval_coverages`; every method sees the same data sets);
``--methods`` can add the methods of :data:`COMPARED_MONOTONE` (the plain bound, and the
default with a monotone two-sided upper end).

Acceptance (issue 9): two-sided 95% coverage 0.93–0.97, one-sided 95% upper-bound coverage
>= 0.94. Some cells with few expected errors are conservative by necessity, many more only by
the default's choice; the summary separates them by expected errors and by people with errors,
and says which cells no interval can bring into 0.93–0.97 (:mod:`lfr_eval.attainable_coverage`:
the column ``attainable_lowest`` is the lowest two-sided coverage any interval can have in the
cell while keeping every cell of the same people, searches and rate at >= 0.93; the summary
also reads ``results/attainable_joint.csv``, the exact joint bound over every cell of a design
with equal searches per person, and states each share against the most cells any interval can
put in the band).

Usage::

    python benchmarks/bench_stats_grid.py                      # full grid, 2,000 data sets per cell
    python benchmarks/bench_stats_grid.py --datasets 300       # quick look
    python benchmarks/bench_stats_grid.py --two-sided-only     # no one-sided column (cheap)
    python benchmarks/bench_stats_grid.py --methods design-effect-jeffreys,korn-graubard
    python benchmarks/bench_stats_grid.py --summary-only       # re-summarise the committed CSV

Writes ``<out>.csv`` (one row per cell and method) and ``<out>.md`` (summary tables).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _machine import cpu_model

from lfr_eval.attainable_coverage import lowest_attainable_coverage
from lfr_eval.metrics._clustered import PREVIOUS_RULE_NAME
from lfr_eval.simulation import ClusterDesign, interval_coverages

PEOPLE = (20, 100, 500, 2000)
SEARCHES = (1, 10, 100)
ICC = (0.0, 0.1, 0.3, 0.5)
RATES = (1e-4, 1e-3, 1e-2, 0.1, 0.3)
#: The default's method name, and the default through stop 23 (what the summary sets it against).
DEFAULT = "design-effect-jeffreys"
PREVIOUS = f"design-effect-jeffreys [{PREVIOUS_RULE_NAME}]"
#: The default, the other small-sample rules compared (the previous defaults first, then the
#: two halves of the stop-24 change alone), the exact interval of claim verdicts and the
#: independence interval.
METHODS = (
    DEFAULT,
    PREVIOUS,
    "design-effect-jeffreys [Kish floor only]",
    "design-effect-jeffreys [exact at one error only]",
    "design-effect-jeffreys [exact lower end only at one error]",
    "design-effect-jeffreys [without the few-errors rule]",
    "design-effect-jeffreys [t on the whole variance]",
    "design-effect-jeffreys [t on the excess]",
    "design-effect-jeffreys [no floor on people]",
    "korn-graubard",
    "clopper-pearson (independence)",
)
#: Also in the committed table, by name (``--methods``): the default with its two-sided upper
#: end made monotone in the errors (rejected: it cuts the cells in 0.93–0.97 from 0.57 to
#: 0.16) and the plain, not monotone, one-sided Korn–Graubard bound the verdicts used before.
COMPARED_MONOTONE = (
    "design-effect-jeffreys [monotone upper end]",
    "korn-graubard [not monotone]",
)

#: Cells with fewer expected errors than this are "low-information" in the summary.
INFORMATIVE_ERRORS = 20


def grid_cells() -> list[tuple[int, ClusterDesign]]:
    """The grid's 340 cells with their seed offsets (the index in the full product, so a cell's
    data sets do not depend on which other cells are run)."""
    out = []
    cells = itertools.product(PEOPLE, SEARCHES, ICC, RATES, (False, True))
    for i, (people, m, icc, rate, unequal) in enumerate(cells):
        if m == 1 and (icc > 0 or unequal):
            continue  # one search per person: no clustering to vary
        out.append((i, ClusterDesign(people, m, icc, rate, unequal)))
    return out


def coverage_grid(
    n_datasets: int,
    seed: int,
    methods: tuple[str, ...] = METHODS,
    *,
    two_sided_only: bool = False,
) -> pd.DataFrame:
    """One row per cell and method: coverage over ``n_datasets`` data sets drawn with seed
    ``seed + i`` for cell ``i`` (the same data sets for every method of a cell).
    ``two_sided_only``: no one-sided bound is computed (the ``upper`` column is NaN)."""
    rows = []
    for i, design in grid_cells():
        reach = lowest_attainable_coverage(design)
        results = interval_coverages(
            design, methods, n_datasets=n_datasets, seed=seed + i, upper=not two_sided_only
        )
        for method in methods:
            r = results[method]
            rows.append(
                {
                    "people": design.n_people,
                    "searches_per_person": int(design.searches_per_person),
                    "unequal": design.unequal,
                    "icc": design.icc,
                    "rate": design.rate,
                    "expected_errors": design.expected_errors,
                    "method": method,
                    "two_sided": r.two_sided,
                    "upper": r.upper,
                    "miss_below": r.miss_below,
                    "miss_above": r.miss_above,
                    "median_relative_width": r.median_relative_width,
                    "no_errors": r.no_errors,
                    "people_with_errors": r.people_with_errors,
                    "attainable_lowest": reach.lowest,
                    "attainable_basis": reach.basis,
                    "n_datasets": n_datasets,
                }
            )
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (no extra dependency)."""
    frame = frame.reset_index() if not isinstance(frame.index, pd.RangeIndex) else frame
    names = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns]

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


#: Expected-error bands of the discreteness table.
BANDS = (0, 1, 5, 20, 100, np.inf)
#: Bands of the mean number of people with at least one error per data set.
PEOPLE_BANDS = (0, 1, 3, 10, 30, 100, np.inf)
#: Below this mean number of people with errors, the band is out of reach (see :func:`bands`).
FEW_PEOPLE = 3


#: The exact joint bound per design (``bench_coverage_patterns.py --joint``).
JOINT = Path(__file__).parent / "results" / "attainable_joint.csv"


def with_joint(table: pd.DataFrame, path: Path = JOINT) -> pd.DataFrame:
    """Add ``joint_lowest`` (equal searches per person: the lowest coverage any
    non-randomised interval can have in the cell while keeping *every* cell of its design,
    all rates and ICCs, at >= 0.93 and holding contiguous rates;
    :func:`lfr_eval.attainable_coverage.joint_attainable`) from the committed table, and
    ``reachable`` (not proved out of reach: ``joint_lowest`` <= 0.97 where computed, else
    the single-rate ``attainable_lowest`` <= 0.97)."""
    t = table.copy()
    if "joint_lowest" not in t and path.exists():
        keys = ["people", "searches_per_person", "icc", "rate"]
        joint = pd.read_csv(path)[[*keys, "joint_lowest"]]
        joint["unequal"] = False
        t = t.merge(joint, on=[*keys, "unequal"], how="left")
    single = t["attainable_lowest"] if "attainable_lowest" in t else pd.Series(0.0, index=t.index)
    lowest = t["joint_lowest"].fillna(single) if "joint_lowest" in t else single
    t["reachable"] = lowest <= 0.97
    return t


def bands(table: pd.DataFrame, column: str = "expected_errors", edges: tuple = BANDS) -> str:
    """Share of cells in 0.93-0.97 two-sided by band of ``column``, per method, and how many
    cells no method that keeps the one-sided guarantee can bring into the band (more than 97%
    of data sets show no error at all, and every such method covers the truth there)."""
    t = with_joint(table)
    labels = [f"{lo:g}–{hi:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    t["band"] = pd.cut(t[column], list(edges), right=False, labels=labels)
    t["in_band"] = (t["two_sided"] >= 0.93) & (t["two_sided"] <= 0.97)
    t["forced"] = t["no_errors"] > 0.97
    # proved out of reach: every interval that keeps the cells of the same design and rate at
    # >= 0.93 covers more than 0.97 here (lfr_eval.attainable_coverage)
    t["proved"] = ~t["reachable"]
    what = {
        "expected_errors": "expected errors per data set",
        "people_with_errors": "mean number of people with at least one error per data set",
    }[column]
    lines = [f"### Share of cells in 0.93–0.97 two-sided, by {what}\n"]
    methods = list(dict.fromkeys(t["method"]))
    if column == "people_with_errors":
        lines.append(
            "The information about the spread *between* people is in the people who show an "
            "error, not in the error count: with strong clustering ten expected errors can sit "
            "in 0.1 expected people. Where fewer than "
            f"{FEW_PEOPLE:g} people carry the errors (on average), the interval rests on 0–2 "
            "people's counts: Korn–Graubard's t factor with 1–2 degrees of freedom, which the "
            "rules through stop 23 kept there and so covered nearly always (the default floors "
            "it at Kish's effective number of people). Covering nearly always there is a "
            "choice, not a necessity: "
            "with equal searches per person the exact joint bound "
            "(`lfr_eval.attainable_coverage.joint_attainable`, 'at most in band') shows that "
            "every such cell not proved out of reach can be in 0.93–0.97 *together with* every "
            "other reachable cell of its design, every cell kept at >= 0.93 (the earlier "
            "belief that the clustered cells of the same rate pin the upper end is false on "
            "this grid). With unequal searches only the no-error share is used, so 'at most' "
            "there is the cells less those proved by it. The same rule without the floor on "
            "people (`[no floor on people]`, where run) shows what merely narrowing costs: its "
            "lowest two-sided coverage in those cells is given below.\n"
        )
        few = t[t[column] < FEW_PEOPLE]
        lowest = few.groupby("method", sort=False)["two_sided"].agg(["min", "idxmin"])
        lines.append(f"Lowest two-sided coverage in the {int((few['method'] == methods[0]).sum())} "
                     f"cells with fewer than {FEW_PEOPLE:g} people with errors:\n")
        for method, row in lowest.iterrows():
            c = t.loc[row["idxmin"]]
            lines.append(
                f"- {method}: {row['min']:.3f} ({c['people']} people × "
                f"{c['searches_per_person']} searches, ICC {c['icc']:g}, rate {c['rate']:g}, "
                f"{'unequal' if c['unequal'] else 'equal'} searches per person)"
            )
        lines.append("")
    if column == "expected_errors":
        lines.append(
            "'forced above 0.97': cells where more than 97% of data sets show no error at all; "
            "every interval that keeps the one-sided guarantee covers the truth in those data "
            "sets (its upper end with no errors is about 3 / people). 'proved out of reach': "
            "cells where every non-randomised interval that is a function of the pattern and "
            "keeps every cell of the same design at >= 0.93 covers more than 0.97 (equal "
            "searches per person: the exact joint bound over all rates and ICCs of the design, "
            "with contiguity across rates, `lfr_eval.attainable_coverage.joint_attainable`, "
            "table `results/attainable_joint.md`; unequal: the no-error share only, so it "
            "proves less there). 'at most in band' = cells less those proved out of reach: no "
            "such interval puts more in band; the default's count is set against it.\n"
        )
    lines.append(
        f"| band | cells | forced above 0.97 | proved out of reach | at most in band | "
        f"{methods[0]}: in band / at most | {methods[0]}: lowest | "
        + " | ".join(f"{m}: in band" for m in methods)
        + " | "
        + " | ".join(f"{m}: median" for m in methods)
        + " |"
    )
    lines.append("|" + "---|" * (7 + 2 * len(methods)))
    for band in labels:
        part = t[t["band"] == band]
        if part.empty:
            continue
        first = part[part["method"] == methods[0]]
        shares = [f"{part[part['method'] == m]['in_band'].mean():.2f}" for m in methods]
        medians = [f"{part[part['method'] == m]['two_sided'].median():.3f}" for m in methods]
        most = len(first) - int(first["proved"].sum())
        lines.append(
            f"| {band} | {len(first)} | {int(first['forced'].sum())} | "
            f"{int(first['proved'].sum())} | {most} | "
            f"{int(first['in_band'].sum())} / {most} | "
            f"{first['two_sided'].min():.3f} | "
            + " | ".join(shares)
            + " | "
            + " | ".join(medians)
            + " |"
        )
    return "\n".join(lines) + "\n"


def upper_cells(upper: pd.Series) -> str:
    """The one-sided columns of a summary row: lowest coverage and share >= 0.94, or dashes in
    a two-sided-only run (no bound computed: not a share of 0)."""
    if upper.isna().all():
        return "– | –"
    return f"{upper.min():.3f} | {(upper >= 0.94).mean():.2f}"


def in_band(coverage: pd.Series) -> pd.Series:
    """Whether each two-sided coverage is in the acceptance band 0.93–0.97 (inclusive)."""
    return (coverage >= 0.93) & (coverage <= 0.97)


def against_previous(table: pd.DataFrame, new: str = DEFAULT, old: str = PREVIOUS) -> str:
    """The default set against the default through stop 23 on the same data sets: cells in band,
    cells moved into and out of it, lowest coverage, and the moved cells listed. Empty when the
    table lacks either method."""
    keys = ["people", "searches_per_person", "unequal", "icc", "rate"]
    a = table[table["method"] == new].set_index(keys)
    b = table[table["method"] == old].set_index(keys)
    if a.empty or b.empty:
        return ""
    b = b.loc[a.index]
    ia, ib = in_band(a["two_sided"]), in_band(b["two_sided"])
    into, out_of = ia & ~ib, ~ia & ib
    lines = [
        f"### {new} against {old} (the default through stop 23), the same data sets\n",
        f"- In 0.93–0.97: **{int(ia.sum())} of {len(a)}** cells (previous {int(ib.sum())}); "
        f"{int(into.sum())} moved into the band, {int(out_of.sum())} out of it.",
        f"- Lowest two-sided coverage {a['two_sided'].min():.4f} (previous "
        f"{b['two_sided'].min():.4f}); cells below 0.93: {int((a['two_sided'] < 0.93).sum())} "
        f"(previous {int((b['two_sided'] < 0.93).sum())}); above 0.97: "
        f"{int((a['two_sided'] > 0.97).sum())} (previous {int((b['two_sided'] > 0.97).sum())}).",
    ]
    if a["upper"].notna().any():
        lines.append(
            f"- One-sided (the same exact bound for both): min {a['upper'].min():.4f}, "
            f"cells >= 0.94: {int((a['upper'] >= 0.94).sum())} of {len(a)}."
        )
    moved = into | out_of | ((a["two_sided"] - b["two_sided"]).abs() >= 0.01)
    if moved.any():
        shown = pd.DataFrame(
            {
                "expected_errors": a["expected_errors"],
                "people_with_errors": a["people_with_errors"],
                "previous": b["two_sided"],
                "new": a["two_sided"],
                "new miss below": a["miss_below"],
                "new miss above": a["miss_above"],
                "move": np.select([into, out_of], ["into band", "OUT of band"], ""),
            }
        )[moved]
        lines.append(
            f"\nCells that moved into or out of the band or changed by 0.01 or more "
            f"({int(moved.sum())}):\n"
        )
        lines.append(markdown(shown.reset_index()))
    return "\n".join(lines) + "\n"


def summarise(table: pd.DataFrame) -> str:
    lines = [against_previous(table)]
    for method, part in table.groupby("method", sort=False):
        informative = part[part["expected_errors"] >= INFORMATIVE_ERRORS]
        low_info = part[part["expected_errors"] < INFORMATIVE_ERRORS]
        lines.append(f"### {method}\n")
        lines.append(
            "| cells | n | two-sided min | two-sided median | two-sided max | "
            "share in 0.93–0.97 | upper min | share upper >= 0.94 |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for name, sub in (
            ("all", part),
            (f"expected errors >= {INFORMATIVE_ERRORS}", informative),
            (f"expected errors < {INFORMATIVE_ERRORS}", low_info),
        ):
            if sub.empty:
                continue
            inside = in_band(sub["two_sided"]).mean()
            lines.append(
                f"| {name} | {len(sub)} | {sub['two_sided'].min():.3f} | "
                f"{sub['two_sided'].median():.3f} | {sub['two_sided'].max():.3f} | "
                f"{inside:.2f} | {upper_cells(sub['upper'])} |"
            )
        if part["upper"].isna().all():
            lines.append("\n(two-sided only: no one-sided column in this run)\n")
            continue
        worst = part.nsmallest(5, "upper")[
            [
                "people",
                "searches_per_person",
                "unequal",
                "icc",
                "rate",
                "expected_errors",
                "two_sided",
                "upper",
            ]
        ]
        lines.append("\nLowest one-sided coverage:\n")
        lines.append(markdown(worst.reset_index(drop=True)))
        lines.append("")
    lines.append(bands(table))
    lines.append(bands(table, "people_with_errors", PEOPLE_BANDS))
    by_icc = (
        table[table["expected_errors"] >= INFORMATIVE_ERRORS]
        .groupby(["method", "icc"])[["two_sided", "upper"]]
        .agg(["min", "median"])
    )
    lines.append(f"### By correlation (cells with >= {INFORMATIVE_ERRORS} expected errors)\n")
    lines.append(markdown(by_icc))
    return "\n".join(lines)


def code_version() -> str:
    """``git describe --always --dirty`` of the checkout that ran (``-dirty``: not committed
    code), or "unknown" outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=2000, help="data sets per cell")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default="benchmarks/results/stats_grid")
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated interval methods (keys of lfr_eval.simulation.INTERVALS)",
    )
    parser.add_argument(
        "--two-sided-only",
        action="store_true",
        help="skip the one-sided bounds (the 'upper' column is empty): the two-sided columns "
        "cost a small part of a cell",
    )
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="no simulation: print the summary of the committed <out>.csv (e.g. after the "
        "joint bound's table changed)",
    )
    args = parser.parse_args()
    if args.summary_only:
        print(summarise(pd.read_csv(Path(args.out).with_suffix(".csv"))))
        return
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    # before the run: the run writes its own tracked outputs, which would read as "-dirty"
    version = code_version()
    load_start = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    table = coverage_grid(args.datasets, args.seed, methods, two_sided_only=args.two_sided_only)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    load_end = os.getloadavg()[0]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False, float_format="%.5g")
    command = "python " + shlex.join(["benchmarks/bench_stats_grid.py", *sys.argv[1:]])
    header = (
        f"# Simulation grid: interval coverage (issue 9)\n\n"
        f"Command: `{command}` (code: {version}).\n"
        f"{args.datasets} data sets per cell, seed {args.seed}"
        f"{', two-sided only' if args.two_sided_only else ''}; {len(table)} rows; "
        f"{cpu:.0f} CPU s ({elapsed:.0f} s wall) on {cpu_model()} ({platform.machine()}, "
        f"{os.cpu_count()} CPUs; 1-minute load average {load_start:.1f} at the start, "
        f"{load_end:.1f} at the end; numpy {np.__version__}). Coverage is a count over seeded "
        f"data sets: the load changes only the time, not the figures.\n\n"
    )
    out.with_suffix(".md").write_text(header + summarise(table) + "\n")
    print(header + summarise(table))


if __name__ == "__main__":
    main()
