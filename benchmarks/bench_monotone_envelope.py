"""Checks behind the one-sided bound monotone in the errors (issue 9): its family and its cap.

:func:`lfr_eval.metrics.monotone_upper_bound` is the maximum of the plain Korn–Graubard bound
over a family of data sets with fewer errors (``_family_keeps``: none; the top 1..M people by
errors, ties by the higher rate, and the top 1..M by rate, keeping all their errors; the last of
the top j by errors scanned over fewer; each stored person alone; all of them; all with one of
them one fewer or left out) and the data themselves, with M =
:data:`lfr_eval.metrics.MONOTONE_TOP_PEOPLE`. Four measurements:

1. **Exhaustive check of the family.** Small data sets (equal and unequal searches per person,
   1–5 people with 1–7 errors each): the bound equals the maximum of the plain bound over
   *every* data set with fewer errors per person (monotone by construction).
2. **The cap M.** On the data sets of the simulation grid (``bench_stats_grid.py``'s cells,
   ``--datasets`` per cell): the bound with M = 8 against the family without a cap (every
   person with an error, up to ``--full-cap``), and where in the family the maximum sits.
3. **Monotone on the grid's data?** Each data set with one more error (in a random person with
   a search left, in the person with the most errors, in the one with the fewest): how often and
   how far the bound falls.
4. **Cost.** CPU seconds of the bound with its envelope and of the plain bound on those data.

Usage::

    python benchmarks/bench_monotone_envelope.py                 # ~3-5 CPU min
    python benchmarks/bench_monotone_envelope.py --datasets 50   # quick look

Writes ``<out>.md`` and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model

from lfr_eval.metrics import MONOTONE_TOP_PEOPLE, korn_graubard_from_summary, summarise_clusters
from lfr_eval.metrics._clustered import (
    SCAN_NEAR,
    SCAN_SPREAD,
    ClusterSummary,
    _top_family,
    design_effect_interval,
    top_people,
)
from lfr_eval.simulation import ClusterDesign, draw_batches

PEOPLE = (20, 100, 500, 2000)
SEARCHES = (1, 10, 100)
ICC = (0.0, 0.1, 0.3, 0.5)
RATES = (1e-4, 1e-3, 1e-2, 0.1, 0.3)
#: Where the extra error goes in check 3.
PICKS = ("random", "top", "fewest")


def plain(errors: np.ndarray, trials: np.ndarray) -> np.ndarray:
    return design_effect_interval(summarise_clusters(errors, trials), sided="upper").ci_high


def bound(summary: ClusterSummary) -> np.ndarray:
    return korn_graubard_from_summary(summary, sided="upper").ci_high


def with_top(summary: ClusterSummary, errors: np.ndarray, trials: np.ndarray, k: int):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    e, n = top_people(errors, trials, k)
    return replace(summary, top_errors=e, top_trials=n)


def member_name(index: int, per_ranking: int) -> str:
    """What member ``index`` of the family (``_family_keeps`` order) is."""
    if index == -1:
        return "the data"
    if index == 0:
        return "no error"
    if index <= per_ranking:
        return f"top {index} by errors"
    if index <= 2 * per_ranking:
        return f"top {index - per_ranking} by rate"
    scans = per_ranking * (SCAN_NEAR + SCAN_SPREAD)
    if index <= 2 * per_ranking + scans:
        return f"scan of person {(index - 2 * per_ranking - 1) // 16 + 1} by errors"
    # the rank-free members (_family_keeps groups 4-7), k = 2 * per_ranking stored slots each
    rest, k = index - 2 * per_ranking - scans - 1, 2 * per_ranking
    if rest < k:
        return "one stored person alone"
    if rest == k:
        return "every stored person"
    return "every stored person, one with one fewer" if rest < 2 * k + 1 else (
        "every stored person but one"
    )


def exhaustive(cases: int, rng: np.random.Generator) -> dict:
    """Random small data sets: implementation against the maximum over every y <= x."""
    worst, misses, done = 1.0, [], 0
    for _ in range(cases):
        s = int(rng.choice([20, 50, 200, 500, 2000]))
        if rng.random() < 0.5:
            n = rng.integers(1, 41, s)
        else:
            n = np.full(s, int(rng.choice([1, 3, 10, 20, 40, 100])))
        # half the cases: many people with 1-2 errors each (ties between unequal people)
        ties = rng.random() < 0.5
        q = int(rng.integers(2, 8)) if ties else int(rng.integers(1, 6))
        idx = rng.choice(s, q, replace=False)
        e = np.zeros(s)
        for i in idx:
            e[i] = int(rng.integers(1, min(n[i], 2 if ties else 7) + 1))
        values = np.array(list(itertools.product(*[range(int(e[i]) + 1) for i in idx]))).T
        if values.shape[1] > 6000:
            continue
        every = np.zeros((s, values.shape[1]))
        every[idx] = values
        brute = float(plain(every, n).max())
        got = float(bound(summarise_clusters(e, n))[0])
        done += 1
        ratio = brute / got
        if ratio > 1 + 1e-9:
            misses.append({"people": s, "errors": e[idx].tolist(), "searches": n[idx].tolist(),
                           "ratio": ratio})
            worst = max(worst, ratio)
    misses.sort(key=lambda c: -c["ratio"])
    return {"cases": done, "misses": len(misses), "worst_ratio": worst, "examples": misses[:5]}


def grid(n_datasets: int, full_cap: int, seed: int) -> dict:
    cells = changed_cells = sets = changed = 0
    falls = dict.fromkeys(PICKS, 0)
    worst_fall = dict.fromkeys(PICKS, 0.0)
    worst_useful = dict.fromkeys(PICKS, 0.0)
    fall_cells: dict[str, set[str]] = {p: set() for p in PICKS}
    argmax_counts: dict[int, int] = {}
    worst_change = 1.0
    where: list[str] = []
    # CPU seconds of the one-sided bound with its envelope and of the plain bound alone
    cost = {"envelope": 0.0, "plain": 0.0}
    combos = itertools.product(PEOPLE, SEARCHES, ICC, RATES, (False, True))
    for i, (people, m, icc, rate, unequal) in enumerate(combos):
        if m == 1 and (icc > 0 or unequal):
            continue
        design = ClusterDesign(people, m, icc, rate, unequal)
        rng = np.random.default_rng(seed + i)
        cell_changed = False
        for trials, errors in draw_batches(design, n_datasets, 1, rng):
            errors = errors.astype(np.float64)
            summary = summarise_clusters(errors, trials)
            t0 = time.process_time()
            capped = bound(summary)
            t1 = time.process_time()
            design_effect_interval(summary, sided="upper")
            cost["envelope"] += t1 - t0
            cost["plain"] += time.process_time() - t1
            full_summary = with_top(summary, errors, trials, full_cap)
            full = bound(full_summary)
            sets += errors.shape[1]
            diff = full > capped * (1 + 1e-9)
            changed += int(diff.sum())
            if diff.any():
                cell_changed = True
                worst_change = max(worst_change, float((full / capped).max()))
                where.append(f"{people}x{m} icc {icc:g} rate {rate:g} unequal {unequal}")
            # where in the (uncapped) family the maximum sits: 0 = no error, j = top j people,
            # -1 = the data themselves
            fam = design_effect_interval(_top_family(full_summary), sided="upper").ci_high
            fam = fam.reshape(-1, errors.shape[1])
            own = design_effect_interval(summary, sided="upper").ci_high
            arg = np.where(own >= fam.max(axis=0) * (1 - 1e-12), -1, fam.argmax(axis=0))
            for a in arg.tolist():
                argmax_counts[int(a)] = argmax_counts.get(int(a), 0) + 1
            # one more error: in a random person with a search left, and in the top person
            room = errors < trials[:, None]
            for pick in PICKS:
                more = errors.copy()
                for j in range(errors.shape[1]):
                    if not room[:, j].any():
                        continue
                    if pick == "random":
                        person = rng.choice(np.flatnonzero(room[:, j]))
                    elif pick == "top":
                        person = int(np.argmax(np.where(room[:, j], errors[:, j], -1)))
                    else:  # the person with the fewest errors (a residual far below the rate)
                        person = int(np.argmin(np.where(room[:, j], errors[:, j], np.inf)))
                    more[person, j] += 1
                after = bound(summarise_clusters(more, trials))
                fell = after < capped * (1 - 1e-9)
                falls[pick] += int(fell.sum())
                if fell.any():
                    drop = np.where(fell, 1 - after / capped, 0.0)
                    worst_fall[pick] = max(worst_fall[pick], float(drop.max()))
                    # where the bound says something (below one half: the plain-language
                    # rule's "no useful bound" above it)
                    useful = np.where(capped < 0.5, drop, 0.0)
                    worst_useful[pick] = max(worst_useful[pick], float(useful.max()))
                    fall_cells[pick].add(f"{people}x{m} icc {icc:g} rate {rate:g} "
                                         f"{'unequal' if unequal else 'equal'}")
        cells += 1
        changed_cells += int(cell_changed)
    return {
        "cells": cells,
        "data_sets": sets,
        "cap": MONOTONE_TOP_PEOPLE,
        "full_cap": full_cap,
        "data_sets_changed_by_a_larger_cap": changed,
        "cells_changed": changed_cells,
        "worst_ratio_larger_cap": worst_change,
        "where_changed": sorted(set(where))[:10],
        "argmax": dict(sorted(argmax_counts.items())),
        "falls_after_one_more_error": falls,
        "worst_relative_fall": worst_fall,
        "worst_relative_fall_below_one_half": worst_useful,
        "cells_with_a_fall": {p: sorted(c) for p, c in fall_cells.items()},
        "one_more_error_checks_each": sets,
        "cpu_s_bound": {k: round(v, 2) for k, v in cost.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200, help="data sets per grid cell")
    parser.add_argument("--cases", type=int, default=1500, help="exhaustive small cases")
    parser.add_argument(
        "--full-cap", type=int, default=32, help="people per ranking of the larger family"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default="benchmarks/results/monotone_envelope")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    cpu0 = time.process_time()
    small = exhaustive(args.cases, np.random.default_rng(args.seed))
    cpu1 = time.process_time()
    on_grid = grid(args.datasets, args.full_cap, args.seed)
    cpu2 = time.process_time()
    report = {
        "exhaustive": small,
        "grid": on_grid,
        "cpu_s": {"exhaustive": round(cpu1 - cpu0, 1), "grid": round(cpu2 - cpu1, 1)},
        "machine": f"{cpu_model()} ({platform.machine()}, {os.cpu_count()} CPUs)",
        "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)],
        "numpy": np.__version__,
        "seed": args.seed,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    g = on_grid
    named: dict[str, int] = {}
    for k, v in g["argmax"].items():
        named[member_name(k, args.full_cap)] = named.get(member_name(k, args.full_cap), 0) + v
    argmax = ", ".join(f"{name}: {v}" for name, v in named.items())
    examples = "; examples: " + json.dumps(small["examples"]) if small["misses"] else ""
    text = f"""# The one-sided bound's envelope over fewer errors: family and cap (issue 9)

`python benchmarks/bench_monotone_envelope.py --datasets {args.datasets} --cases {args.cases}
--full-cap {args.full_cap} --seed {args.seed}`; {report['cpu_s']['exhaustive']:.0f} CPU s
(exhaustive) + {report['cpu_s']['grid']:.0f} CPU s (grid) on {report['machine']}; 1-minute load
average {report['load_average'][0]} at the start, {report['load_average'][1]} at the end (counts
over seeded data sets: the load changes only the time). numpy {np.__version__}.

## 1. Exhaustive check of the family

{small['cases']} random small data sets (20–2,000 people, equal or unequal searches 1–100 per
person; half with 1–5 people with 1–7 errors, half with 2–7 people with 1–2 errors, i.e. ties in
the count between people with unequal searches): the bound against the maximum of the plain
Korn–Graubard bound over **every** data set with fewer errors per person.

- cases where the exhaustive maximum is higher: **{small['misses']}** (worst ratio
  {small['worst_ratio']:.6f}){examples}

## 2. The cap M = {g['cap']}

{g['cells']} grid cells × {args.datasets} data sets = {g['data_sets']:,} data sets (people
20–2,000, searches 1–100 equal and unequal, ICC 0–0.5, rates 1e-4–0.3). The bound with the top
{g['cap']} people of each ranking against the family with {g['full_cap']} of each.

- data sets whose bound a larger cap raises: **{g['data_sets_changed_by_a_larger_cap']}**
  (in {g['cells_changed']} cells; worst ratio {g['worst_ratio_larger_cap']:.6f})
  {('; cells: ' + '; '.join(g['where_changed'])) if g['where_changed'] else ''}
- where the maximum of the uncapped family sits ({argmax})

## 3. Adding one error to the grid's data sets

Each of the {g['data_sets']:,} data sets with one more error, in turn in a random person with a
search left, in the person with the most errors, and in the person with the fewest: data sets
whose bound fell (more than 1e-9 relative), the largest relative fall (overall, and where
the bound before was below one half, i.e. says something), and the cells.

| where the error goes | falls | largest relative fall | where the bound was < 0.5 | cells |
|---|---|---|---|---|
""" + "".join(
        f"| {p} | {g['falls_after_one_more_error'][p]} | {g['worst_relative_fall'][p]:.2e} | "
        f"{g['worst_relative_fall_below_one_half'][p]:.2e} | "
        f"{'; '.join(g['cells_with_a_fall'][p][:6]) or '-'} |\n"
        for p in PICKS
    ) + f"""
## 4. Cost

CPU seconds over the {g['data_sets']:,} data sets (one call per grid cell, all its data sets
at once): the one-sided bound with its envelope {g['cpu_s_bound']['envelope']:.1f} s, the
plain Korn–Graubard bound alone {g['cpu_s_bound']['plain']:.1f} s.
"""
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
