"""Group-comparison size/power and claim false-support simulation (issue 9).

Writes the tables of ``benchmarks/results/stats_groups_claims.md``::

    python benchmarks/bench_stats_groups_claims.py --groups-only --write   # group tests
    python benchmarks/bench_stats_groups_claims.py --claims-only            # claim checker
    python benchmarks/bench_stats_groups_claims.py --step-down-only --groups 4 --write
    python benchmarks/bench_stats_groups_claims.py --rao-scott-only --write  # its columns only

    python benchmarks/bench_stats_groups_claims.py --bootstrap-only --size-datasets 400  # printed

``--bootstrap-only`` prints the size and power (first group at 2x) of the default test on
per-person counts, the parametric null bootstrap-t over people
(:func:`lfr_eval.metrics.bootstrap_compare_groups`, ``--permutations`` replicates), on the
same cells; its committed figures are in ``benchmarks/results/null_bootstrap_groups.md``.

``--write`` replaces the "Group comparisons" section of the results file (the claims section is
kept) and records the CPU seconds and the load average; without it the table is printed.

The group rows compare the studentized permutation test over people
(:func:`lfr_eval.metrics.permutation_compare_groups`, by name since stop 24: the default of
``IdentificationFrame.compare_groups``, ``group_test`` and the demographic page on full results is
the null bootstrap of ``--bootstrap-only``) with the Rao-Scott max-|z| test from
clustered summaries (:func:`lfr_eval.metrics.compare_group_rates`, what the page runs on an
aggregate alone). 199 permutations give an exact 5% level (10 / 200). The ratio columns (the
simultaneous intervals of the ratio to the lowest group and to the overall rate) need no
permutations and are run on more data sets (``--ratio-datasets``) so that 0.05 and 0.07 can be
told apart in every cell.
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

from _machine import cpu_model

from lfr_eval.simulation import (
    PLAIN_KORN_GRAUBARD,
    ClusterDesign,
    claim_support_rate,
    group_test_rejection,
)

SEARCHES_PER_PERSON = [5, 10, 20, 40, 2, 8, 15, 30, 3, 50]
RESULTS = Path(__file__).resolve().parent / "results" / "stats_groups_claims.md"
SECTION = "## Group comparisons"
CLAIMS_SECTION = "## Claim checker"

HEADER = (
    "| groups | icc | rate | people/group | searches/person "
    "| size: permutation | power 2x: permutation | power 3x: permutation "
    "| size: Rao-Scott | power 2x: Rao-Scott | power 3x: Rao-Scott "
    "| ratio to lowest excludes 1 (equal rates) | ratio to lowest power 2x "
    "| ratio to overall excludes 1 (equal rates) | ratio to overall power 2x |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _designs(ms: list[int], icc: float, rate: float, people: int, factor: float) -> list:
    """One group per entry of ``ms``; the first at ``factor`` times the others' rate."""
    return [
        ClusterDesign(people, m, icc, rate * (factor if g == 0 else 1), True)
        for g, m in enumerate(ms)
    ]


GROUP_COUNTS = (2, 4, 10)
#: (rate, people per group) of the cells
RATES = ((0.01, 150), (0.001, 1000))


def group_rows(
    size_sets: int = 1000,
    power_sets: int = 300,
    ratio_sets: int = 2000,
    permutations: int = 199,
    group_counts: tuple[int, ...] = GROUP_COUNTS,
    rates: tuple[float, ...] = (0.01, 0.001),
) -> list[str]:
    """One markdown row per cell (18 cells: 2 / 4 / 10 groups x ICC 0 / 0.2 / 0.5 x two rates;
    ``group_counts`` and ``rates`` select some)."""
    rows = []
    for n_groups in group_counts:
        for icc in (0.0, 0.2, 0.5):
            for rate, people in ((r, p) for r, p in RATES if r in rates):
                ms = SEARCHES_PER_PERSON[:n_groups]
                tests = []
                runs = ((1, size_sets, 1), (2, power_sets, 2), (3, power_sets, 3))
                for factor, sets, seed in runs:
                    designs = _designs(ms, icc, rate, people, factor)
                    perm = group_test_rejection(
                        designs, n_datasets=sets, seed=seed, n_permutations=permutations,
                        ratios=False, test="permutation",
                    )  # fmt: skip
                    rs = group_test_rejection(
                        designs, n_datasets=sets, seed=seed, test="rao-scott", ratios=False
                    )
                    tests.append((perm.any_pair, rs.any_pair))
                ratios = [
                    group_test_rejection(
                        _designs(ms, icc, rate, people, factor), n_datasets=ratio_sets,
                        seed=10 + seed, test=None,
                    )  # fmt: skip
                    for factor, seed in ((1, 1), (2, 2))
                ]
                cols = [f"{p:.3f}" for p, _ in tests] + [f"{r:.3f}" for _, r in tests]
                cols += [f"{r.ratio_excludes_one:.3f}" for r in ratios]
                cols += [f"{r.overall_ratio_excludes_one:.3f}" for r in ratios]
                row = (
                    f"| {n_groups} | {icc} | {rate} | {people} | {','.join(map(str, ms))} "
                    f"(unequal) | " + " | ".join(cols) + " |"
                )
                print(row, flush=True)
                rows.append(row)
    return rows


BOOTSTRAP_HEADER = (
    "| groups | icc | rate | people/group | searches/person | size: null bootstrap "
    "| power 2x: null bootstrap | data sets (size / power) |\n|---|---|---|---|---|---|---|---|"
)


def bootstrap_rows(
    size_sets: int = 1000,
    power_sets: int = 300,
    replicates: int = 199,
    group_counts: tuple[int, ...] = GROUP_COUNTS,
    rates: tuple[float, ...] = (0.01, 0.001),
) -> list[str]:
    """One markdown row per cell: size and power 2x of the null bootstrap-t (the same designs
    and seeds as :func:`group_rows`' size and 2x columns)."""
    rows = []
    for n_groups in group_counts:
        for icc in (0.0, 0.2, 0.5):
            for rate, people in ((r, p) for r, p in RATES if r in rates):
                ms = SEARCHES_PER_PERSON[:n_groups]
                cols = [
                    group_test_rejection(
                        _designs(ms, icc, rate, people, factor), n_datasets=sets, seed=seed,
                        test="bootstrap", n_replicates=replicates, ratios=False,
                    ).any_pair
                    for factor, sets, seed in ((1, size_sets, 1), (2, power_sets, 2))
                ]  # fmt: skip
                row = (
                    f"| {n_groups} | {icc} | {rate} | {people} | {','.join(map(str, ms))} "
                    f"(unequal) | {cols[0]:.3f} | {cols[1]:.3f} | {size_sets} / {power_sets} |"
                )
                print(row, flush=True)
                rows.append(row)
    return rows


#: Cells (0-based, between the pipes) of the Rao–Scott columns: size, power 2x, power 3x.
RAO_SCOTT_CELLS = (8, 9, 10)


def rao_scott_rows(
    size_sets: int = 1000,
    power_sets: int = 300,
    group_counts: tuple[int, ...] = GROUP_COUNTS,
    rates: tuple[float, ...] = (0.01, 0.001),
    pooled_rate: str = "all",
) -> list[str]:
    """The committed table's rows of these cells with only the Rao–Scott columns re-run (same
    designs, data sets and seeds as :func:`group_rows`; the other columns are kept as they
    are): the columns cost seconds, the permutation test's minutes."""
    old = {_cell(r): r for r in _table_rows(RESULTS.read_text(encoding="utf-8"))}
    rows = []
    for n_groups in group_counts:
        for icc in (0.0, 0.2, 0.5):
            for rate, people in ((r, p) for r, p in RATES if r in rates):
                if (n_groups, icc, rate) not in old:
                    raise SystemExit(
                        f"no row for {n_groups} groups, ICC {icc}, rate {rate} in "
                        f"{RESULTS.name}: run --groups-only for it first"
                    )
                ms = SEARCHES_PER_PERSON[:n_groups]
                cols = [
                    group_test_rejection(
                        _designs(ms, icc, rate, people, factor), n_datasets=sets, seed=seed,
                        test="rao-scott", ratios=False, pooled_rate=pooled_rate,
                    ).any_pair
                    for factor, sets, seed in ((1, size_sets, 1), (2, power_sets, 2),
                                               (3, power_sets, 3))
                ]  # fmt: skip
                kept = old[(n_groups, icc, rate)]
                parts = [c.strip() for c in kept.strip().strip("|").split("|")]
                for index, value in zip(RAO_SCOTT_CELLS, cols, strict=True):
                    parts[index] = f"{value:.3f}"
                row = "| " + " | ".join(parts) + " |"
                print(row, flush=True)
                rows.append(row)
    return rows


def _table_rows(text: str) -> list[str]:
    """The group table's rows in the results file's text."""
    section = text[text.index(SECTION) : text.index(CLAIMS_SECTION)]
    table_start = section.index("| groups |")
    table_end = section.index("\n\n", table_start)
    return [r for r in section[table_start:table_end].splitlines()[2:] if r.startswith("|")]


def write_rao_scott(
    rows: list[str], command: str, cpu_s: float, wall_s: float, load: tuple
) -> None:
    """Put rows with re-run Rao–Scott columns into the group table (as :func:`write_section`),
    recorded in their own run line (which a full re-run of the table removes)."""
    with open(RESULTS, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        text = handle.read()
        start = text.index(SECTION)
        section = text[start : text.index(CLAIMS_SECTION)]
        table_start = start + section.index("| groups |")
        table_end = text.index("\n\n", table_start)
        by_cell = {_cell(r): r for r in _table_rows(text)}
        by_cell.update({_cell(r): r for r in rows})
        lines = text[table_start:table_end].splitlines()[:2] + list(by_cell.values())
        groups = ",".join(sorted({str(_cell(r)[0]) for r in rows}, key=int))
        rate_list = ",".join(sorted({str(_cell(r)[2]) for r in rows}))
        key = f"rao-scott {groups} {rate_list}"
        run = (
            f"<!-- run {key} -->Rao–Scott columns only, groups {groups}, rates {rate_list}: run "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
            f"({cpu_model()}, {platform.machine()}), {cpu_s:.0f} CPU s, {wall_s:.0f} s wall, "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at "
            f"the end; `{command}`<!-- /run -->"
        )
        before = re.sub(
            rf"<!-- run {re.escape(key)} -->.*?<!-- /run -->\n*", "", text[:table_start],
            flags=re.S,
        ).rstrip() + "\n\n" + run + "\n\n"  # fmt: skip
        handle.seek(0)
        handle.write(before + "\n".join(lines) + text[table_end:])
        handle.truncate()


STEP_SECTION = "## Multiplicity: step-down against single-step"
STEP_HEADER = (
    "| groups | icc | rate | people/group | true rates | equal pairs / different pairs "
    "| FWER: step-down | FWER: single-step | some pair called: step-down "
    "| some pair called: single-step | different pairs found: step-down "
    "| different pairs found: single-step | all different pairs found: step-down "
    "| all different pairs found: single-step | data sets |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
#: (label, factor of each group's rate) of the step-down table's true rates
TRUTHS = (
    ("all equal", lambda g, n: 1.0),
    ("first at 3x", lambda g, n: 3.0 if g == 0 else 1.0),
    ("first half at 3x", lambda g, n: 3.0 if g < n // 2 else 1.0),
)


def step_down_rows(
    sets: int = 1000,
    permutations: int = 199,
    group_counts: tuple[int, ...] = (4, 10),
    rates: tuple[float, ...] = (0.01, 0.001),
) -> list[str]:
    """One markdown row per cell: the step-down and the single-step max-|t| adjustment of the
    permutation test on the same relabellings
    (:func:`lfr_eval.simulation.multiplicity_rejection`)."""
    from lfr_eval.simulation import multiplicity_rejection

    rows = []
    for n_groups in group_counts:
        for icc in (0.0, 0.2, 0.5):
            for rate, people in ((r, p) for r, p in RATES if r in rates):
                ms = SEARCHES_PER_PERSON[:n_groups]
                for t, (label, factor) in enumerate(TRUTHS):
                    designs = [
                        ClusterDesign(people, m, icc, rate * factor(g, n_groups), True)
                        for g, m in enumerate(ms)
                    ]
                    r = multiplicity_rejection(
                        designs, n_datasets=sets, seed=20 + t, n_permutations=permutations
                    )
                    cols = []
                    for measure in (r.family_wise_error, r.any_pair, r.found, r.all_found):
                        cols += [
                            "–" if measure[k] != measure[k] else f"{measure[k]:.3f}"
                            for k in ("step-down", "single-step")
                        ]
                    row = (
                        f"| {n_groups} | {icc} | {rate} | {people} | {label} "
                        f"| {r.n_true_null} / {r.n_false_null} | " + " | ".join(cols)
                        + f" | {sets} |"
                    )
                    print(row, flush=True)
                    rows.append(row)
    return rows


def write_step_down(
    rows: list[str], command: str, cpu_s: float, wall_s: float, load: tuple
) -> None:
    """Merge ``rows`` (by cell: groups, icc, rate, true rates) into the step-down section at the
    end of the results file, with a run line; the other sections are kept (file locked)."""
    with open(RESULTS, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        text = handle.read()
        if STEP_SECTION not in text:
            text = text.rstrip() + "\n\n" + STEP_SECTION + "\n\n" + STEP_INTRO + "\n"
        start = text.index(STEP_SECTION)
        head, section = text[:start], text[start:]
        key = lambda row: tuple(c.strip() for c in row.strip().strip("|").split("|")[:5])  # noqa: E731
        lines = section.splitlines()
        old = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| groups")]
        by_cell = {key(r): r for r in old}
        by_cell.update({key(r): r for r in rows})
        groups = ",".join(sorted({key(r)[0] for r in rows}, key=int))
        rate_list = ",".join(sorted({key(r)[2] for r in rows}))
        run = (
            f"<!-- run {groups} {rate_list} -->groups {groups}, rates {rate_list}: run "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
            f"({cpu_model()}, {platform.machine()}), {cpu_s:.0f} CPU s, {wall_s:.0f} s wall, "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at "
            f"the end; `{command}`<!-- /run -->"
        )
        table_at = section.index("| groups |") if "| groups |" in section else len(section)
        before = re.sub(
            rf"<!-- run {re.escape(groups)} {re.escape(rate_list)} -->.*?<!-- /run -->\n*", "",
            section[:table_at], flags=re.S,
        )  # fmt: skip
        tail = ""
        if "| groups |" in section:
            rest = section[table_at:]
            end = rest.find("\n\n")
            tail = "" if end < 0 else rest[end:]
        order = {
            (str(g), str(i), str(r), label): n
            for n, (g, i, r, label) in enumerate(
                (g, i, r, label)
                for g in GROUP_COUNTS
                for i in (0.0, 0.2, 0.5)
                for r, _ in RATES
                for label, _ in TRUTHS
            )
        }
        cells = sorted(by_cell, key=lambda c: order.get((c[0], c[1], c[2], c[4]), len(order)))
        table = "\n".join([STEP_HEADER, *(by_cell[c] for c in cells)])
        new = head + before.rstrip() + "\n\n" + run + "\n\n" + table + (tail or "\n")
        handle.seek(0)
        handle.write(new)
        handle.truncate()


STEP_INTRO = (
    "`python benchmarks/bench_stats_groups_claims.py --step-down-only --groups 4 --write` and "
    "`... --groups 10 --write`\n"
    "(`lfr_eval.simulation.multiplicity_rejection`). Each data set runs the permutation test\n"
    "of `permutation_compare_groups` once (199 relabellings) and adjusts the same relabellings\n"
    "both ways: the **step-down** max-|t| (Westfall & Young 1993, algorithm 2.8; the default)\n"
    "and the **single-step** max-|t|. Groups as in the table above (unequal searches per\n"
    "person, 5–50 per group). 'FWER': share of data sets where some pair of groups with equal\n"
    "true rates is called different at a family-wise 5% (with all rates equal: the size; with\n"
    "some at 3x: the check of strong control). 'some pair called' is the group table's size /\n"
    "power column; 'different pairs found': mean share of the truly different pairs called\n"
    "different (average power); 'all ... found': all of them called. Monte-Carlo s.e. of a\n"
    "share near 0.05 with 1,000 data sets: ~0.007."
)


def claim_rows() -> None:
    """The claim table: the verdict's bound (Korn–Graubard, envelope over fewer errors), the plain
    Korn–Graubard bound it replaced (same data sets: what the envelope costs in power) and the
    search-level Clopper–Pearson bound."""
    print(
        "| people x searches | icc | true FPIR | claimed bound | supported: korn-graubard, "
        "envelope over fewer errors | supported: korn-graubard [not monotone] "
        "| supported: search-level CP |"
    )
    print("|---|---|---|---|---|---|---|")
    for people, m in ((2000, 10), (500, 40), (200, 100)):
        for icc in (0.0, 0.1, 0.3):
            # the claims (all below 3 / people: no monotone valid bound can support
            # them, as its bound with no error at all is about 3 / people), then a claim of
            # 5 / people, which a monotone bound can reach: false support at the bound, power at
            # a third of it
            reachable = 5.0 / people
            for truth, bound in (
                (1 / 4000, 1 / 6000),
                (1e-3, 1e-3),
                (1 / 3000, 1e-3),
                (reachable, reachable),
                (reachable / 3, reachable),
            ):
                design = ClusterDesign(people, m, icc, truth)
                kg = claim_support_rate(design, bound, n_datasets=1000, seed=5)
                plain = claim_support_rate(
                    design, bound, PLAIN_KORN_GRAUBARD, n_datasets=1000, seed=5
                )
                cp = claim_support_rate(
                    design, bound, "clopper-pearson (independence)", n_datasets=1000, seed=5
                )
                print(
                    f"| {people}x{m} | {icc} | {truth:.3g} | {bound:.3g} | {kg.supported:.3f} "
                    f"| {plain.supported:.3f} | {cp.supported:.3f} |",
                    flush=True,
                )


def _cell(row: str) -> tuple[int, float, float]:
    """(groups, icc, rate) of a table row, for its place in the table."""
    parts = [c.strip() for c in row.strip().strip("|").split("|")]
    return int(parts[0]), float(parts[1]), float(parts[2])


def write_section(rows: list[str], command: str, cpu_s: float, wall_s: float, load: tuple) -> None:
    """Put ``rows`` into the table of the "Group comparisons" section of the results file:
    they replace the rows of the same cells, the others are kept (so the table can be made by
    several runs, each recorded in a line above the table); the claims section is kept. The
    file is locked while it is read and rewritten, so runs of different cells may run at once."""
    with open(RESULTS, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        text = handle.read()
        handle.seek(0)
        handle.write(_merged(text, rows, command, cpu_s, wall_s, load))
        handle.truncate()


def _merged(
    text: str, rows: list[str], command: str, cpu_s: float, wall_s: float, load: tuple
) -> str:
    """The results file's text with ``rows`` merged into the group table (see write_section)."""
    start, end = text.index(SECTION), text.index(CLAIMS_SECTION)
    section = text[start:end]
    table_start = section.index("| groups |")
    table_end = section.index("\n\n", table_start)
    old_rows = [r for r in section[table_start:table_end].splitlines()[2:] if r.startswith("|")]
    header_lines = section[table_start:table_end].splitlines()[:2]
    by_cell = {} if header_lines != HEADER.splitlines() else {_cell(r): r for r in old_rows}
    by_cell.update({_cell(r): r for r in rows})
    cells = [c for c in by_cell]
    order = {
        (g, icc, rate): i
        for i, (g, icc, rate) in enumerate(
            (g, icc, r) for g in GROUP_COUNTS for icc in (0.0, 0.2, 0.5) for r, _ in RATES
        )
    }
    cells.sort(key=lambda c: order.get(c, len(order)))
    groups = ",".join(sorted({str(_cell(r)[0]) for r in rows}, key=int))
    rate_list = ",".join(sorted({str(_cell(r)[2]) for r in rows}))
    run = (
        f"<!-- run {groups} {rate_list} -->groups {groups}, rates {rate_list}: run "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
        f"({cpu_model()}, {platform.machine()}), {cpu_s:.0f} CPU s, {wall_s:.0f} s wall, load "
        f"average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at the end; "
        f"`{command}`<!-- /run -->"
    )
    before = section[:table_start]
    if by_cell.keys() == {_cell(r) for r in rows}:  # a new table: earlier run lines go
        before = re.sub(r"<!-- run .*?<!-- /run -->\n*", "", before, flags=re.S)
    before = re.sub(
        rf"<!-- run {re.escape(groups)} {re.escape(rate_list)} -->.*?<!-- /run -->\n*", "",
        before, flags=re.S,
    )  # fmt: skip
    before = before.rstrip() + "\n\n" + run + "\n\n"
    table = "\n".join([HEADER, *(by_cell[c] for c in cells)])
    return text[:start] + before + table + section[table_end:] + text[end:]


def _run_table(header: str, make_rows: Callable[[], list[str]], write: Callable | None) -> None:
    """Print ``header`` and the rows ``make_rows`` makes, with their CPU seconds; with
    ``write``, merge them into the results file with the command line and the load."""
    import sys

    cpu0, wall0 = time.process_time(), time.perf_counter()
    print(header)
    rows = make_rows()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"\n{cpu:.0f} CPU s, {wall:.0f} s wall, load {os.getloadavg()}")
    if write is not None:
        command = "python benchmarks/bench_stats_groups_claims.py " + " ".join(sys.argv[1:])
        write(rows, command, cpu, wall, os.getloadavg())


if __name__ == "__main__":
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups-only", action="store_true")
    parser.add_argument("--claims-only", action="store_true")
    parser.add_argument(
        "--step-down-only", action="store_true",
        help="only the step-down against single-step table (4 and 10 groups)",
    )  # fmt: skip
    parser.add_argument(
        "--rao-scott-only", action="store_true",
        help="re-run only the group table's Rao-Scott columns (seconds), keeping the others",
    )  # fmt: skip
    parser.add_argument(
        "--bootstrap-only", action="store_true",
        help="print the null bootstrap test's size and power 2x on the cells (not written)",
    )  # fmt: skip
    parser.add_argument(
        "--pooled-rate", choices=("all", "pair"), default="all",
        help="with --rao-scott-only: the test's pooled_rate ('pair' is printed, never written)",
    )  # fmt: skip
    parser.add_argument("--step-down-datasets", type=int, default=1000)
    parser.add_argument("--size-datasets", type=int, default=1000)
    parser.add_argument("--power-datasets", type=int, default=300)
    parser.add_argument("--ratio-datasets", type=int, default=2000)
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument(
        "--groups", default="2,4,10", help="group counts of the cells to run (2, 4, 10)"
    )
    parser.add_argument("--rates", default="0.01,0.001", help="rates of the cells to run")
    parser.add_argument("--write", action="store_true", help=f"update {RESULTS.name}")
    args = parser.parse_args()
    groups = tuple(int(g) for g in args.groups.split(","))
    rates = tuple(float(r) for r in args.rates.split(","))
    if args.rao_scott_only:
        _run_table(
            HEADER,
            lambda: rao_scott_rows(
                args.size_datasets, args.power_datasets, groups, rates, args.pooled_rate
            ),
            # the table holds the default test; the by-name variant is printed only
            write_rao_scott if args.write and args.pooled_rate == "all" else None,
        )
        sys.exit(0)
    if args.bootstrap_only:
        _run_table(
            BOOTSTRAP_HEADER,
            lambda: bootstrap_rows(
                args.size_datasets, args.power_datasets, args.permutations, groups, rates
            ),
            None,
        )
        sys.exit(0)
    if args.step_down_only:
        _run_table(
            STEP_HEADER,
            lambda: step_down_rows(
                args.step_down_datasets, args.permutations, tuple(g for g in groups if g > 2),
                rates,
            ),
            write_step_down if args.write else None,
        )  # fmt: skip
        sys.exit(0)
    if not args.claims_only:
        _run_table(
            HEADER,
            lambda: group_rows(
                args.size_datasets, args.power_datasets, args.ratio_datasets, args.permutations,
                groups, rates,
            ),
            write_section if args.write else None,
        )  # fmt: skip
    if not args.groups_only:
        print()
        claim_rows()
