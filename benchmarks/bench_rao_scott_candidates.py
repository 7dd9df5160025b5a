"""Candidates for the Rao–Scott group test's size "both ways" (issue 9): measured, none adopted.

``compare_group_rates`` (the group test an aggregate alone can run: clustered summaries, no
per-person counts) has size 0.009–0.041 on the grid of ``bench_stats_groups_claims.py`` (too
low where clustering is strong) and 0.141 in the review's "lambs" design (too high: 30 people x
~30 searches against 300 x ~2, 5% of people at 20x the others' rate, mean rate 0.05). This
script measures, on the same seeded data sets, what was tried to bring both into 0.03–0.07:

- ``rao-scott``: the library's test as it is (each group's own design effect, Student's t with
  ``2 (df_i + df_j)`` df, max-|t| step-down adjustment);
- ``common-moment``: each group's rate variance under equal rates from a between-person
  variance ``sigma2`` common to all groups (``Var(y_i) = (p(1-p) - sigma2) n_i + sigma2 n_i^2``,
  a Donner-type common intra-person correlation), ``sigma2`` by the pooled method of moments;
  normal reference;
- ``common-people``: the same, ``sigma2`` the people-weighted mean of each group's own moment
  estimate;
- ``common-leave-out``: the same, each group's ``sigma2`` from the *other* groups only (so a
  group's rate and its variance are independent under the null); normal reference;
- in the lambs designs only: ``common-leave-out-t`` (``common-leave-out`` with Student's t and
  the Satterthwaite df of the estimated between-person parts), ``common-people-or-own`` (each
  group's variance the larger of ``common-people``'s and its own design-effect one);
- on the grid also ``oracle`` (size only): the same max-|z| test with each group's true rate
  variance under the null (beta person rates: known from the rate, the ICC and its searches);
- in the lambs designs also ``oracle``: the Wald test with each group's true rate variance
  (from 20,000 extra data sets), and ``permutation``: the full-data studentized permutation test
  over people (``permutation_compare_groups``, 199 relabellings), the page's default.

The test adopted instead, on per-person counts, is the parametric null bootstrap-t over people
(``bootstrap_compare_groups``): ``--part bootstrap`` measures its size and power in the lambs
designs (each group's intra-person correlation from the other groups, the default, and from
all groups), ``--part bootstrap-cost`` its time on large crowds; the figures are in
``benchmarks/results/null_bootstrap_groups.md``.

Usage::

    python benchmarks/bench_rao_scott_candidates.py --part bootstrap --replicates 199
    python benchmarks/bench_rao_scott_candidates.py --part bootstrap-cost
    python benchmarks/bench_rao_scott_candidates.py --part lambs
    python benchmarks/bench_rao_scott_candidates.py --part breakdown
    python benchmarks/bench_rao_scott_candidates.py --part strata
    python benchmarks/bench_rao_scott_candidates.py --part grid --candidates common-people

Prints markdown rows; the committed figures are in ``benchmarks/results/rao_scott_candidates.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
from _machine import cpu_model

from lfr_eval.metrics import ClusterSummary, summarise_clusters
from lfr_eval.metrics._group_tests import (
    bootstrap_compare_groups,
    compare_group_rates,
    max_t_adjusted,
    max_t_exceedances,
    permutation_compare_groups,
)
from lfr_eval.simulation import ClusterDesign, draw_errors, draw_trials

#: the review's designs: (people, mean searches per person) of groups a and b
LAMBS_DESIGNS = (((30, 30), (300, 2)), ((50, 20), (200, 3)), ((100, 10), (100, 10)))
LAMB_SHARE, LAMB_FACTOR, LAMB_MEAN_RATE = 0.05, 20.0, 0.05
SEARCHES_PER_PERSON = [5, 10, 20, 40, 2, 8, 15, 30, 3, 50]
GRID_RATES = ((0.01, 150), (0.001, 1000))


def _moments(summary: ClusterSummary) -> tuple[float, float, float, float]:
    """(u2, s2, c1, c2): the residual sum of squares at the group's own rate, ``sum n_i^2`` and
    the coefficients of ``E[u2] = a c1 + sigma2 c2`` for ``Var(y_i) = a n_i + sigma2 n_i^2``:
    ``c1 = N - S2 / N``, ``c2 = S2 - 2 S3 / N + S2^2 / N^2`` with ``S3 ~ sqrt(S2 S4)``."""
    n = float(summary.trials)
    s = int(summary.n_subjects)
    s2 = n**2 / max(float(summary.effective_people), 1e-300)
    s4 = float(summary.trials_fourth_moment or s2**2 / n)
    s3 = float(np.sqrt(s2 * s4))
    u2 = float(summary.variance[0]) * n**2 * (s - 1) / s if s > 1 else 0.0
    return u2, s2, n - s2 / n, s2 - 2 * s3 / n + s2**2 / n**2


def common_variance_test(
    summaries: dict[str, ClusterSummary],
    how: str,
    n_draws: int = 4000,
    seed: int = 0,
    *,
    larger_of_own: bool = False,
    satterthwaite_t: bool = False,
) -> float:
    """Smallest step-down max-|z| adjusted p-value over all pairs with each group's rate
    variance from a common between-person variance (``how``: ``"moment"``, ``"people"`` or
    ``"leave-out"``, see the module docstring). ``larger_of_own``: each group's variance at
    least its own design-effect one (as ``rao-scott`` has it); ``satterthwaite_t``: each
    pair's statistic referred to Student's t with the Satterthwaite df of the estimated
    between-person parts (``Var(u2_h) ~ sum r^4 - u2^2 / s``, ``sum r^4`` from the group's df)."""
    from scipy import stats

    groups = [summaries[g] for g in sorted(summaries)]
    k = np.array([float(g.errors[0]) for g in groups])
    n = np.array([float(g.trials) for g in groups])
    pooled = float(k.sum() / n.sum())
    if pooled in (0.0, 1.0):
        return 1.0
    binom = pooled * (1 - pooled)
    u2, s2, c1, c2 = np.array([_moments(g) for g in groups]).T
    excess = c2 - c1
    ok = excess > 0
    if how == "moment":
        sigma2 = np.full(len(groups), (u2.sum() - binom * c1.sum()) / max(excess.sum(), 1e-300))
    else:
        own = np.where(ok, (u2 - binom * c1) / np.where(ok, excess, 1.0), 0.0)
        w = np.where(ok, np.array([max(g.n_subjects - 1.0, 0.0) for g in groups]), 0.0)
        if how == "people":
            sigma2 = np.full(len(groups), (w * own).sum() / max(w.sum(), 1e-300))
        else:
            total_w, total = w.sum(), (w * own).sum()
            sigma2 = (total - w * own) / np.maximum(total_w - w, 1e-300)
    sigma2 = np.clip(sigma2, 0.0, binom)
    var = ((binom - sigma2) * n + sigma2 * s2) / n**2
    if larger_of_own:
        rate = k / n
        own_var = (
            np.array([float(g.variance[0]) for g in groups])
            * binom
            / np.maximum(rate * (1 - rate), 1e-300)
        )
        var = np.maximum(var, np.where((k > 0) & (k < n), own_var, binom / n))
    i_idx, j_idx = np.triu_indices(len(groups), 1)
    pair_var = var[i_idx] + var[j_idx]
    z = np.abs(k[i_idx] / n[i_idx] - k[j_idx] / n[j_idx]) / np.sqrt(pair_var)
    raw = np.minimum(2 * stats.norm.sf(z), 1.0)
    if satterthwaite_t:
        people = np.array([float(g.n_subjects) for g in groups])
        df_g = np.array([float(g.df[0]) if np.isfinite(g.df[0]) else 1.0 for g in groups])
        var_u2 = np.maximum(u2**2 / (np.maximum(df_g, 1.0) + 1.0) - u2**2 / people, 1e-300)
        w = np.where(ok, np.maximum(people - 1.0, 0.0), 0.0)
        term = w**2 * var_u2 / np.maximum(excess, 1e-300) ** 2
        if how == "leave-out":
            var_sigma = (term.sum() - term) / np.maximum(w.sum() - w, 1e-300) ** 2
        else:
            var_sigma = np.full(len(groups), term.sum() / max(w.sum(), 1e-300) ** 2)
        var_between = var_sigma * ((s2 - n) / n**2) ** 2
        den = var_between[i_idx] + var_between[j_idx]
        pair_df = np.maximum(np.where(den > 0, pair_var**2 / np.maximum(den, 1e-300), 1e12), 1.0)
        raw = np.minimum(2 * stats.t.sf(z, pair_df), 1.0)
    z = stats.norm.isf(raw / 2)  # the max adjustment works on equivalent normal scores
    draws = np.random.default_rng(seed).standard_normal((n_draws, len(groups))) * np.sqrt(var)
    null = np.abs(draws[:, i_idx] - draws[:, j_idx]) / np.sqrt(pair_var)
    _, step_down = max_t_exceedances(z, null)
    return float(np.maximum(max_t_adjusted(z, step_down, n_draws, "step-down"), raw).min())


def oracle_test(
    summaries: dict[str, ClusterSummary],
    rate: float,
    icc: float,
    n_draws: int = 4000,
    seed: int = 0,
) -> float:
    """The step-down max-|z| test with each group's true rate variance on the grid (beta person
    rates: ``Var(y_i) = p (1 - p) n_i (1 + (n_i - 1) icc)``, given the group's searches)."""
    from scipy import stats

    groups = [summaries[g] for g in sorted(summaries)]
    k = np.array([float(g.errors[0]) for g in groups])
    n = np.array([float(g.trials) for g in groups])
    s2 = n**2 / np.array([max(float(g.effective_people), 1e-300) for g in groups])
    binom = rate * (1 - rate)
    var = binom * ((1 - icc) * n + icc * s2) / n**2
    i_idx, j_idx = np.triu_indices(len(groups), 1)
    pair_var = var[i_idx] + var[j_idx]
    z = np.abs(k[i_idx] / n[i_idx] - k[j_idx] / n[j_idx]) / np.sqrt(pair_var)
    raw = np.minimum(2 * stats.norm.sf(z), 1.0)
    draws = np.random.default_rng(seed).standard_normal((n_draws, len(groups))) * np.sqrt(var)
    null = np.abs(draws[:, i_idx] - draws[:, j_idx]) / np.sqrt(pair_var)
    _, step_down = max_t_exceedances(z, null)
    return float(np.maximum(max_t_adjusted(z, step_down, n_draws, "step-down"), raw).min())


def _rao_scott(summaries: dict[str, ClusterSummary], seed: int) -> float:
    return min(p.p_adjusted for p in compare_group_rates(summaries, n_draws=4000, seed=seed).pairs)


CANDIDATES: dict[str, Callable[[dict[str, ClusterSummary], int], float]] = {
    "rao-scott": _rao_scott,
    "common-moment": lambda s, seed: common_variance_test(s, "moment", seed=seed),
    "common-people": lambda s, seed: common_variance_test(s, "people", seed=seed),
    "common-leave-out": lambda s, seed: common_variance_test(s, "leave-out", seed=seed),
}
#: measured in the lambs designs only (both fail there already)
LAMBS_ONLY: dict[str, Callable[[dict[str, ClusterSummary], int], float]] = {
    "common-leave-out-t": lambda s, seed: common_variance_test(
        s, "leave-out", seed=seed, satterthwaite_t=True
    ),
    "common-people-or-own": lambda s, seed: common_variance_test(
        s, "people", seed=seed, larger_of_own=True
    ),
}


def _draw_lambs(
    rng: np.random.Generator, design: tuple, factor: float = 1.0, heavy: list | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(errors, searches) per person of each group; 5% of people at 20x; group a x factor.
    ``heavy``: a list to which group a's number of heavy people is appended."""
    base = LAMB_MEAN_RATE / (1 - LAMB_SHARE + LAMB_SHARE * LAMB_FACTOR)
    out = []
    for g, (people, m) in enumerate(design):
        trials = 1 + rng.poisson(rng.gamma(2.0, (m - 1) / 2.0, people))
        lamb = rng.random(people) < LAMB_SHARE
        if heavy is not None and g == 0:
            heavy.append(int(lamb.sum()))
        rate = np.where(lamb, LAMB_FACTOR * base, base)
        rate = np.minimum(rate * (factor if g == 0 else 1.0), 1.0)
        out.append((rng.binomial(trials, rate), trials))
    return out


def lambs_breakdown(sets: int = 2000) -> list[str]:
    """``rao-scott`` in the first lambs design (size's data sets, seed 5) by the number of
    heavy people drawn into group a: share of data sets and share called different."""
    rng = np.random.default_rng(5)
    heavy: list[int] = []
    called = []
    for r in range(sets):
        d = _draw_lambs(rng, LAMBS_DESIGNS[0], 1.0, heavy)
        groups = {
            f"g{g}": summarise_clusters(e[:, None].astype(float), t.astype(float))
            for g, (e, t) in enumerate(d)
        }
        called.append(_rao_scott(groups, r) <= 0.05)
    h, c = np.array(heavy), np.array(called)
    rows = []
    for count in range(int(h.max()) + 1):
        sel = h == count
        if sel.any():
            rows.append(f"| {count} | {sel.mean():.3f} | {c[sel].mean():.3f} |")
            print(rows[-1], flush=True)
    return rows


def lambs_rows(size_sets: int, power_sets: int, permutation_sets: int) -> list[str]:
    """Size (equal rates) and power (group a at 2x) of every candidate in each lambs design."""
    from scipy import stats

    rows = []
    for design in LAMBS_DESIGNS:
        label = " vs ".join(f"{p} x ~{m}" for p, m in design)
        cells = []
        for factor, sets, seed in ((1.0, size_sets, 5), (2.0, power_sets, 6)):
            rng = np.random.default_rng(seed)
            data = [_draw_lambs(rng, design, factor) for _ in range(sets)]
            summaries = [
                {f"g{g}": summarise_clusters(e[:, None].astype(float), t.astype(float))
                 for g, (e, t) in enumerate(d)}
                for d in data
            ]  # fmt: skip
            for name, test in {**CANDIDATES, **LAMBS_ONLY}.items():
                called = np.mean([test(s, r) <= 0.05 for r, s in enumerate(summaries)])
                cells.append((name, factor, float(called)))
        # the oracle: each group's true rate variance under equal rates
        rng = np.random.default_rng(11)
        sims = np.array(
            [[e.sum() / t.sum() for e, t in _draw_lambs(rng, design)] for _ in range(20_000)]
        )
        z = (sims[:, 0] - sims[:, 1]) / np.sqrt(sims.var(axis=0).sum())
        oracle = float(np.mean(2 * stats.norm.sf(np.abs(z)) <= 0.05))
        rng = np.random.default_rng(12)
        perm = 0
        for r in range(permutation_sets):
            d = _draw_lambs(rng, design)
            result = permutation_compare_groups(
                {"a": d[0][0], "b": d[1][0]}, {"a": d[0][1], "b": d[1][1]},
                n_permutations=199, seed=r,
            )  # fmt: skip
            perm += result.pairs[0].p_adjusted <= 0.05
        size = {name: v for name, f, v in cells if f == 1.0}
        power = {name: v for name, f, v in cells if f == 2.0}
        row = (
            f"| {label} | "
            + " | ".join(
                f"{size[name]:.3f} / {power[name]:.3f}" for name in {**CANDIDATES, **LAMBS_ONLY}
            )
            + f" | {oracle:.3f} | {perm / permutation_sets:.3f} |"
        )
        print(row, flush=True)
        rows.append(row)
    return rows


def permutation_strata_rows(sets: int = 1000) -> list[str]:
    """The full-data permutation test in the first two lambs designs, stratified by searches
    per person (its default) and not, with the share of group a's people in a stratum that
    group b also has (the people it can relabel)."""
    from lfr_eval.metrics._group_tests import searches_stratum

    rows = []
    for design in LAMBS_DESIGNS[:2]:
        rng = np.random.default_rng(12)
        called = {True: 0, False: 0}
        shared = []
        for r in range(sets):
            d = _draw_lambs(rng, design)
            strata_b = np.unique(searches_stratum(d[1][1]))
            shared.append(float(np.isin(searches_stratum(d[0][1]), strata_b).mean()))
            for stratify in (True, False):
                result = permutation_compare_groups(
                    {"a": d[0][0], "b": d[1][0]}, {"a": d[0][1], "b": d[1][1]},
                    n_permutations=199, seed=r, stratify=stratify,
                )  # fmt: skip
                called[stratify] += result.pairs[0].p_adjusted <= 0.05
        label = " vs ".join(f"{p} x ~{m}" for p, m in design)
        rows.append(
            f"| {label} | {called[True] / sets:.3f} | {called[False] / sets:.3f} "
            f"| {np.mean(shared):.3f} |"
        )
        print(rows[-1], flush=True)
    return rows


def grid_rows(candidates: list[str], size_sets: int, power_sets: int) -> list[str]:
    """Size and power (first group at 2x) on the grid of bench_stats_groups_claims.py: 2 / 4 /
    10 groups with unequal searches per person, ICC 0 / 0.2 / 0.5, rates 0.01 / 0.001."""
    rows = []
    for n_groups in (2, 4, 10):
        for icc in (0.0, 0.2, 0.5):
            for rate, people in GRID_RATES:
                ms = SEARCHES_PER_PERSON[:n_groups]
                out = {}
                for factor, sets, seed in ((1, size_sets, 1), (2, power_sets, 2)):
                    rng = np.random.default_rng(seed)
                    per_group = []
                    for g, m in enumerate(ms):
                        design = ClusterDesign(
                            people, m, icc, rate * (factor if g == 0 else 1), True
                        )
                        trials = draw_trials(design, rng)
                        per_group.append(
                            summarise_clusters(draw_errors(design, trials, sets, rng), trials)
                        )
                    for name in candidates:
                        called = 0
                        for r in range(sets):
                            groups = {f"g{g}": s.column(r) for g, s in enumerate(per_group)}
                            if name == "oracle":  # size only: the variance at the null's rate
                                p = oracle_test(groups, rate, icc, seed=r) if factor == 1 else 1.0
                            else:
                                p = CANDIDATES[name](groups, r)
                            called += p <= 0.05
                        out[(name, factor)] = called / sets
                row = (
                    f"| {n_groups} | {icc} | {rate} | "
                    + " | ".join(
                        f"{out[(name, 1)]:.3f} / {out[(name, 2)]:.3f}" for name in candidates
                    )
                    + " |"
                )
                print(row, flush=True)
                rows.append(row)
    return rows


def bootstrap_rows(
    size_sets: int, power_sets: int, replicates: int, seeds: tuple[int, int] = (5, 6)
) -> list[str]:
    """Size (equal rates) and power (group a at 2x) of the null bootstrap-t in each lambs
    design, each group's correlation from the other groups (default) and from all groups;
    the same data sets for both (seeds 5 / 6 by default, as ``lambs_rows``)."""
    rows = []
    for design in LAMBS_DESIGNS:
        label = " vs ".join(f"{p} x ~{m}" for p, m in design)
        out = {}
        for factor, sets, seed in ((1.0, size_sets, seeds[0]), (2.0, power_sets, seeds[1])):
            rng = np.random.default_rng(seed)
            called = {"other-groups": 0, "all-groups": 0}
            for r in range(sets):
                d = _draw_lambs(rng, design, factor)
                errors, trials = {"a": d[0][0], "b": d[1][0]}, {"a": d[0][1], "b": d[1][1]}
                for source in called:
                    result = bootstrap_compare_groups(
                        errors, trials, n_replicates=replicates, seed=r, icc_from=source
                    )
                    called[source] += result.pairs[0].p_adjusted <= 0.05
            for source, count in called.items():
                out[(source, factor)] = (count / sets, sets)
        row = (
            f"| {label} | "
            + " | ".join(
                f"{out[(s, 1.0)][0]:.4f} ({out[(s, 1.0)][1]}) / {out[(s, 2.0)][0]:.3f} "
                f"({out[(s, 2.0)][1]})"
                for s in ("other-groups", "all-groups")
            )
            + " |"
        )
        print(row, flush=True)
        rows.append(row)
    return rows


def bootstrap_cost_rows(replicates: int = 999) -> list[str]:
    """Seconds of one ``bootstrap_compare_groups`` call on crowds of 100k and 1M people in 4
    groups (searches per person 1 + Poisson(Gamma(2, 4.5)): mean 10; ICC about 0.2, rate
    0.01), by engine; the per-person engine only at 100k (it costs a beta and a binomial
    draw per person and replicate)."""
    rows = []
    for people in (100_000, 1_000_000):
        rng = np.random.default_rng(1)
        errors, trials = {}, {}
        for g in range(4):
            t = 1 + rng.poisson(rng.gamma(2.0, 4.5, people // 4))
            p = rng.beta(0.01 * 4.0, 0.99 * 4.0, people // 4)
            errors[f"g{g}"], trials[f"g{g}"] = rng.binomial(t, p), t
        for engine in ("auto", "people"):
            if engine == "people" and people > 100_000:
                continue
            cpu0, wall0 = time.process_time(), time.perf_counter()
            result = bootstrap_compare_groups(
                errors, trials, n_replicates=replicates, engine=engine  # type: ignore[arg-type]
            )
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            row = (
                f"| {people:,} | 4 | {replicates} | {engine} | {wall:.1f} | {cpu:.1f} "
                f"| {min(p.p_adjusted for p in result.pairs):.3f} |"
            )
            print(row, flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--part",
        choices=["lambs", "breakdown", "strata", "grid", "bootstrap", "bootstrap-cost"],
        required=True,
    )
    parser.add_argument("--replicates", type=int, default=199, help="bootstrap replicates")
    parser.add_argument("--seeds", default="5,6", help="--part bootstrap: size,power seeds")
    parser.add_argument(
        "--candidates", nargs="+", default=list(CANDIDATES), choices=[*CANDIDATES, "oracle"]
    )
    parser.add_argument("--size-datasets", type=int, default=None)
    parser.add_argument("--power-datasets", type=int, default=None)
    parser.add_argument("--permutation-datasets", type=int, default=1000)
    args = parser.parse_args()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if args.part == "bootstrap":
        print(
            "| design | null bootstrap, ICC from the other groups (default): size (data sets) "
            "/ power 2x (data sets) | ICC from all groups: size / power 2x |\n|---|---|---|"
        )
        seeds = tuple(int(x) for x in args.seeds.split(","))
        bootstrap_rows(
            args.size_datasets or 2000, args.power_datasets or 500, args.replicates,
            (seeds[0], seeds[1]),
        )  # fmt: skip
    elif args.part == "bootstrap-cost":
        print(
            "| people | groups | replicates | engine | s wall | CPU s | smallest p_adjusted |"
            "\n|---|---|---|---|---|---|---|"
        )
        bootstrap_cost_rows(args.replicates if args.replicates != 199 else 999)
    elif args.part == "lambs":
        print(
            "| design | "
            + " | ".join(f"{c}: size / power 2x" for c in {**CANDIDATES, **LAMBS_ONLY})
            + " | oracle variance: size | permutation (full data): size |"
        )
        lambs_rows(
            args.size_datasets or 2000, args.power_datasets or 500, args.permutation_datasets
        )
    elif args.part == "strata":
        print(
            "| design | permutation, stratified (default): size | unstratified: size "
            "| group a's people in a stratum group b has |"
        )
        permutation_strata_rows(args.permutation_datasets)
    elif args.part == "breakdown":
        print("| heavy people in group a | share of data sets | rao-scott: called different |")
        lambs_breakdown(args.size_datasets or 2000)
    else:
        print(
            "| groups | icc | rate | "
            + " | ".join(f"{c}: size / power 2x" for c in args.candidates)
            + " |"
        )
        grid_rows(args.candidates, args.size_datasets or 1000, args.power_datasets or 300)
    load = os.getloadavg()
    print(
        f"\n{os.cpu_count()} cores ({cpu_model()}, {platform.machine()}), "
        f"{time.process_time() - cpu0:.0f} CPU s, {time.perf_counter() - wall0:.0f} s wall, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
