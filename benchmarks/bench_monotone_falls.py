"""Does one more error ever lower the one-sided clustered bound? A seeded randomized search.

:func:`lfr_eval.metrics.monotone_upper_bound` is the envelope of the plain Korn–Graubard bound
over a family of data sets with fewer errors (none, the top 1..M people, the data). This script
tries to break it, independently of the simulation grid's data sets
(``bench_monotone_envelope.py`` checks those): random designs (people 2–2,000, log-uniform;
equal or unequal searches per person, 1–100), a random starting state (no errors, a few people
with 1–3 errors, or binomial errors at a rate 1e-4–0.3), then 5–60 errors added one at a time:
to random people, to a pool of 1–12 people, piled on one person, or a mixture. Each path's
bounds are checked for a fall (relative, above 1e-9: the last digits differ between the
data's own sums and the top people's expansion) and for a bound below the plain one (never
allowed). Falls are tallied by people and by the rate after the added error. It also reports
the minimal data sets the search led to (``tests/test_review_findings.py``).

Usage::

    python benchmarks/bench_monotone_falls.py                       # 240 CPU s
    python benchmarks/bench_monotone_falls.py --cpu-seconds 60      # quick look

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
from lfr_eval.metrics._clustered import design_effect_interval

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


def people_bin(s: int) -> str:
    return "2-19" if s < 20 else ("20-199" if s < 200 else "200-2,000")


def rate_bin(r: float) -> str:
    return "< 1%" if r < 0.01 else ("1-10%" if r < 0.1 else ">= 10%")


def search(seed: int, cpu_seconds: float) -> dict:
    rng = np.random.default_rng(seed)
    start = time.process_time()
    paths = steps = below_plain = paths_with_fall = 0
    cells: dict[tuple[str, str], dict[str, float]] = {}
    while time.process_time() - start < cpu_seconds:
        n, data = random_path(rng)
        if data.shape[1] < 2:
            continue
        paths += 1
        steps += data.shape[1] - 1
        bound = korn_graubard(data, n, sided="upper").ci_high
        plain = design_effect_interval(summarise_clusters(data, n), sided="upper").ci_high
        below_plain += int(np.sum(bound < plain * (1 - 1e-12)))
        rates = data.sum(axis=0) / n.sum()
        fall = 1 - bound[1:] / bound[:-1]
        where = np.flatnonzero(fall > 1e-9)
        paths_with_fall += int(where.size > 0)
        for j in range(data.shape[1] - 1):
            key = (people_bin(len(n)), rate_bin(float(rates[j + 1])))
            cell = cells.setdefault(key, {"steps": 0, "falls": 0, "largest": 0.0})
            cell["steps"] += 1
            if fall[j] > 1e-9:
                cell["falls"] += 1
                cell["largest"] = max(cell["largest"], float(fall[j]))
    return {
        "seed": seed,
        "cpu_seconds": time.process_time() - start,
        "paths": paths,
        "added_errors": steps,
        "paths_with_a_fall": paths_with_fall,
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


def bound_code() -> str:
    """The last commit of the bound's module (what was measured), or "unknown"."""
    try:
        return subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", "lfr_eval/metrics/_clustered.py"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--cpu-seconds", type=float, default=240.0)
    parser.add_argument("--out", default="benchmarks/results/monotone_falls")
    args = parser.parse_args()
    report = {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, {platform.python_version()}",
        "bound_code": bound_code(),
        "load_before": os.getloadavg()[0],
        "search": search(args.seed, args.cpu_seconds),
        "minimal_cases": minimal_cases(),
        "load_after": os.getloadavg()[0],
    }
    found = report["search"]
    share = found["paths_with_a_fall"] / max(found["paths"], 1)
    lines = [
        "# Falls of the one-sided clustered bound (bench_monotone_falls.py)",
        "",
        f"Machine: {report['machine']}; load average {report['load_before']:.1f} before, "
        f"{report['load_after']:.1f} after (CPU seconds count, so load does not matter). "
        f"Bound code: lfr_eval/metrics/_clustered.py at {report['bound_code']}.",
        "",
        f"Seed {found['seed']}: {found['paths']:,} paths, {found['added_errors']:,} errors added "
        f"one at a time, {found['cpu_seconds']:.0f} CPU s. Paths with a fall: "
        f"{found['paths_with_a_fall']:,} ({share:.1%})."
        f" Bounds below the plain Korn–Graubard bound: {found['bounds_below_plain']}.",
        "",
        "| people | rate after the error | errors added | falls | largest relative fall |",
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
