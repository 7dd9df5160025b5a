"""Does one more error ever lower the one-sided clustered bound? A seeded randomized search.

:func:`lfr_eval.metrics.monotone_upper_bound` is the envelope of the plain Korn–Graubard bound
over a family of data sets with fewer errors (none, the top 1..M people, the data). This script
tries to break it, independently of the simulation grid's data sets
(``bench_monotone_envelope.py`` checks those): random designs (people 2–2,000, log-uniform;
equal or unequal searches per person, 1–100), a random starting state (no errors, a few people
with 1–3 errors, or binomial errors at a rate 1e-4–0.3), then 5–60 errors added one at a time:
to random people, to a pool of 1–12 people, piled on one person, or a mixture. Each path's
bounds are checked for a fall (relative, above 1e-9: the last digits differ between the
data's own sums and the top people's expansion) and for a bound below the plain one under the
same cap at the bound counted by people (never allowed). Falls are tallied by people and by
the rate after the added error. It also reports
the minimal data sets the search led to (``tests/test_review_findings.py``).

``--scaled`` searches the scaled FPIR's one-sided bound instead
(:func:`lfr_eval.protocols._scaling.interval_from_summary`): a person's "errors" are the sum of
their searches' P(alert) at N of F fillers (hypergeometric), and one more false match raises one
search's count of matching fillers by one. Designs: people 2–2,000, searches 1–60, F 1,000 or
5,000, N = F / 10 or F / 100; starting states as above plus "every person with one false match"
(equal sums: the state whose variance of 0 made the bound fall a lot before the floor,
``tests/test_review_findings.py``).

``--paths`` stops after that many paths (a fixed count of paths, whatever the machine; the
CPU-second limit still applies).

Usage::

    python benchmarks/bench_monotone_falls.py                       # 240 CPU s
    python benchmarks/bench_monotone_falls.py --paths 1000          # 1,000 paths
    python benchmarks/bench_monotone_falls.py --scaled --paths 1000 \
        --out benchmarks/results/monotone_falls_scaled

Writes ``<out>.md`` and ``<out>.json`` (``benchmarks/results/monotone_falls``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model

from lfr_eval.metrics import korn_graubard, summarise_clusters
from lfr_eval.metrics._clustered import capped_by_people, design_effect_interval

#: Minimal data sets found by the search: (people, searches each, {person: errors}, the person
#: who gets one more error, {person: searches} overrides).
MINIMAL_CASES = {
    "1,000 x 50, errors 46 and 49, one more to the first": (1000, 50, {0: 46, 1: 49}, 0, {}),
    "100 x 20 except 15/15 and 15/100, one more to the second": (
        100,
        20,
        {0: 15, 1: 15},
        1,
        {0: 15, 1: 100},
    ),
}


def random_path(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Searches per person (s,) and the data sets of one path, shape (s, steps + 1)."""
    s = int(np.clip(np.exp(rng.uniform(np.log(2), np.log(2000))), 2, 2000))
    m = int(rng.integers(1, 101))
    n = np.full(s, m) if rng.random() < 0.5 else rng.integers(1, m + 1, s)
    e = np.zeros(s)
    start = rng.integers(0, 3)
    if start == 1:
        k = int(rng.integers(1, min(s, 30) + 1))
        who = rng.choice(s, k, replace=False)
        e[who] = np.minimum(n[who], rng.integers(1, 4, k))
    elif start == 2:
        e = rng.binomial(n, 10 ** rng.uniform(-4, np.log10(0.3))).astype(float)
    mode = rng.integers(0, 4)
    pool = rng.choice(s, int(rng.integers(1, min(s, 12) + 1)), replace=False)
    pile = int(rng.integers(0, s))
    cols = [e.copy()]
    for _ in range(int(rng.integers(5, 60))):
        room = np.flatnonzero(e < n)
        if room.size == 0:
            break
        if mode == 0:
            p = int(rng.choice(room))
        elif mode == 1:
            free = pool[e[pool] < n[pool]]
            if free.size == 0:
                break
            p = int(rng.choice(free))
        elif mode == 2:
            if e[pile] >= n[pile]:
                pile = int(rng.choice(room))
            p = pile
        else:
            p = int(rng.choice(pool)) if rng.random() < 0.5 else int(rng.integers(0, s))
            if e[p] >= n[p]:
                continue
        e[p] += 1
        cols.append(e.copy())
    return n, np.stack(cols, axis=1)


def random_scaled_path(
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Searches per person (s,), per-person P(alert) sums of one path (s, steps + 1) and the
    zero-false-match exponent N / F, for the scaled FPIR's bound."""
    from lfr_eval.protocols._scaling import hypergeometric_fpir

    s = int(np.clip(np.exp(rng.uniform(np.log(2), np.log(2000))), 2, 2000))
    m = int(rng.integers(1, 61))
    n = np.full(s, m) if rng.random() < 0.5 else rng.integers(1, m + 1, s)
    fillers = int(rng.choice([1000, 5000]))
    size = fillers // int(rng.choice([10, 100]))
    # P(alert) of a search meeting c fillers, c = 0 .. 64 (hypergeometric, N <= F)
    table = hypergeometric_fpir(
        np.arange(65, dtype=float)[:, None, None], np.array([fillers]), np.array([1.0]), size
    )[:, 0]
    owner = np.repeat(np.arange(s), n)
    counts = np.zeros(owner.shape[0], np.int64)
    start = rng.integers(0, 4)
    if start == 1:
        who = rng.choice(owner.shape[0], int(rng.integers(1, min(s, 30) + 1)), replace=False)
        counts[who] = rng.integers(1, 4, who.shape[0])
    elif start == 2:
        counts = rng.binomial(4, 10 ** rng.uniform(-4, np.log10(0.3)), owner.shape[0])
    elif start == 3:  # every person with one false match: equal sums
        counts[np.r_[0, np.cumsum(n)[:-1]]] = 1
    mode = rng.integers(0, 4)
    pool = rng.choice(s, int(rng.integers(1, min(s, 12) + 1)), replace=False)
    pile = int(rng.integers(0, s))
    first = np.r_[0, np.cumsum(n)[:-1]]

    def sums() -> np.ndarray:
        return np.bincount(owner, weights=table[counts], minlength=s)

    cols = [sums()]
    for _ in range(int(rng.integers(5, 40))):
        if mode == 0:
            p = int(rng.integers(0, s))
        elif mode == 1:
            p = int(rng.choice(pool))
        elif mode == 2:
            p = pile
        else:
            p = int(rng.choice(pool)) if rng.random() < 0.5 else int(rng.integers(0, s))
        j = first[p] + int(rng.integers(0, n[p]))
        if counts[j] >= 64:
            continue
        counts[j] += 1
        cols.append(sums())
    return n.astype(float), np.stack(cols, axis=1), size / fillers


def scaled_bounds(n: np.ndarray, data: np.ndarray, exponent: float) -> tuple[np.ndarray, ...]:
    """(envelope, plain bound, rate) of each column of per-person sums ``data``."""
    from lfr_eval.protocols._scaling import interval_from_summary, largest_person_sum

    data = np.minimum(data, n[:, None])  # rounding only
    summary, largest = summarise_clusters(data, n), largest_person_sum(data)
    env = interval_from_summary(summary, exponent, 0.95, largest)
    plain = interval_from_summary(summary, exponent, 0.95, largest, envelope=False)
    return env.upper_bound, plain.upper_bound, env.fpir


def people_bin(s: int) -> str:
    return "2-19" if s < 20 else ("20-199" if s < 200 else "200-2,000")


def rate_bin(r: float) -> str:
    return "< 1%" if r < 0.01 else ("1-10%" if r < 0.1 else ">= 10%")


def search(seed: int, cpu_seconds: float, max_paths: int = 0, scaled: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    start = time.process_time()
    paths = steps = below_plain = paths_with_fall = falls = 0
    largest_fall = 0.0
    cells: dict[tuple[str, str], dict[str, float]] = {}
    while time.process_time() - start < cpu_seconds and not (max_paths and paths >= max_paths):
        if scaled:
            n, data, exponent = random_scaled_path(rng)
            if data.shape[1] < 2:
                continue
            bound, plain, rates = scaled_bounds(n, data, exponent)
        else:
            n, data = random_path(rng)
            if data.shape[1] < 2:
                continue
            bound = korn_graubard(data, n, sided="upper").ci_high
            summary = summarise_clusters(data, n)
            plain_rate = design_effect_interval(summary, sided="upper")
            # the plain bound under the same cap at the bound counted by people (stop 25):
            # the envelope never goes below that
            plain = capped_by_people(summary, plain_rate).ci_high
            rates = data.sum(axis=0) / n.sum()
        paths += 1
        steps += data.shape[1] - 1
        below_plain += int(np.sum(bound < plain * (1 - 1e-12)))
        fall = 1 - bound[1:] / bound[:-1]
        where = np.flatnonzero(fall > 1e-9)
        paths_with_fall += int(where.size > 0)
        falls += int(where.size)
        if where.size:
            largest_fall = max(largest_fall, float(fall[where].max()))
        for j in range(data.shape[1] - 1):
            key = (people_bin(len(n)), rate_bin(float(rates[j + 1])))
            cell = cells.setdefault(key, {"steps": 0, "falls": 0, "largest": 0.0})
            cell["steps"] += 1
            if fall[j] > 1e-9:
                cell["falls"] += 1
                cell["largest"] = max(cell["largest"], float(fall[j]))
    return {
        "seed": seed,
        "bound": "scaled FPIR (interval_from_summary)" if scaled else "korn-graubard counts",
        "cpu_seconds": time.process_time() - start,
        "paths": paths,
        "added_errors": steps,
        "paths_with_a_fall": paths_with_fall,
        "falls": falls,
        "largest_relative_fall": largest_fall,
        "bounds_below_plain": below_plain,
        "cells": [{"people": k[0], "rate": k[1], **v} for k, v in sorted(cells.items())],
    }


def minimal_cases() -> list[dict]:
    out = []
    for name, (s, m, errors, person, searches) in MINIMAL_CASES.items():
        n = np.full(s, m)
        for who, value in searches.items():
            n[who] = value
        before = np.zeros(s)
        for who, value in errors.items():
            before[who] = value
        after = before.copy()
        after[person] += 1
        bound = korn_graubard(np.stack([before, after], axis=1), n, sided="upper").ci_high
        out.append({"case": name, "before": float(bound[0]), "after": float(bound[1])})
    return out


#: Minimal data sets of the scaled bound (``tests/test_review_findings.py``): people, searches
#: each, fillers F, watchlist N; every person with one false match, then one more for the first.
SCALED_CASES = {
    "200 x 10, F = 1,000, N = 100, every person one false match, one more to the first": (
        200, 10, 1000, 100
    ),
    "34 x 35, F = 5,000, N = 50, every person one false match, one more to the first": (
        34, 35, 5000, 50
    ),
}


def minimal_scaled_cases() -> list[dict]:
    import math

    out = []
    for name, (s, m, fillers, size) in SCALED_CASES.items():
        p_one = 1.0 - math.comb(fillers - 1, size) / math.comb(fillers, size)
        before = np.full(s, p_one)
        after = before.copy()
        after[0] += p_one
        bound = scaled_bounds(np.full(s, float(m)), np.stack([before, after], axis=1),
                              size / fillers)[0]  # fmt: skip
        out.append({"case": name, "before": float(bound[0]), "after": float(bound[1])})
    return out


def bound_code(scaled: bool = False) -> str:
    """The last commit of the bound's modules (what was measured), or "unknown"."""
    files = ["lfr_eval/metrics/_clustered.py"]
    if scaled:
        files.append("lfr_eval/protocols/_scaling.py")
    try:
        return subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", *files],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--cpu-seconds", type=float, default=240.0)
    parser.add_argument("--paths", type=int, default=0, help="stop after this many (0: none)")
    parser.add_argument("--scaled", action="store_true", help="the scaled FPIR's bound")
    parser.add_argument("--out", default="benchmarks/results/monotone_falls")
    args = parser.parse_args()
    report = {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, {platform.python_version()}",
        "bound_code": bound_code(args.scaled),
        "load_before": os.getloadavg()[0],
        "search": search(args.seed, args.cpu_seconds, args.paths, args.scaled),
        "minimal_cases": minimal_scaled_cases() if args.scaled else minimal_cases(),
        "load_after": os.getloadavg()[0],
    }
    found = report["search"]
    share = found["paths_with_a_fall"] / max(found["paths"], 1)
    what = "scaled FPIR's" if args.scaled else "clustered"
    modules = (
        "lfr_eval/metrics/_clustered.py, lfr_eval/protocols/_scaling.py"
        if args.scaled
        else "lfr_eval/metrics/_clustered.py"
    )
    added = "false matches" if args.scaled else "errors"
    command = "python benchmarks/bench_monotone_falls.py" + "".join(
        f" {flag}"
        for flag in (
            f"--seed {args.seed}",
            f"--cpu-seconds {args.cpu_seconds:g}",
            f"--paths {args.paths}" if args.paths else "",
            "--scaled" if args.scaled else "",
        )
        if flag
    )
    lines = [
        f"# Falls of the {what} one-sided bound (bench_monotone_falls.py)",
        "",
        f"`{command}`",
        "",
        f"Machine: {report['machine']}; load average {report['load_before']:.1f} before, "
        f"{report['load_after']:.1f} after (CPU seconds count, so load does not matter). "
        f"Bound code: {modules} at {report['bound_code']} (the last commit touching them; "
        "uncommitted changes are not named).",
        "",
        f"Seed {found['seed']}: {found['paths']:,} paths, {found['added_errors']:,} {added} "
        f"added one at a time, {found['cpu_seconds']:.0f} CPU s. Paths with a fall: "
        f"{found['paths_with_a_fall']:,} ({share:.1%}); falls {found['falls']:,}, the largest "
        f"{found['largest_relative_fall']:.3g} relative."
        f" Bounds below the plain bound: {found['bounds_below_plain']}.",
        "",
        f"| people | rate after the {'false match' if args.scaled else 'error'} | {added} added "
        "| falls | largest relative fall |",
        "|---|---|---:|---:|---:|",
    ]
    for c in found["cells"]:
        lines.append(
            f"| {c['people']} | {c['rate']} | {c['steps']:,} | {c['falls']:,} | "
            f"{c['largest']:.3g} |"
        )
    lines += ["", "Minimal data sets (one-sided 95% bound before and after the added error):", ""]
    for c in report["minimal_cases"]:
        lines.append(f"- {c['case']}: {c['before']:.6g} -> {c['after']:.6g}")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
