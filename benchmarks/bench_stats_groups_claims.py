"""Group-comparison size/power and claim false-support simulation (issue 9).

Prints the markdown tables of ``benchmarks/results/stats_groups_claims.md``::

    python benchmarks/bench_stats_groups_claims.py --groups-only   # group tests, ~15 CPU min
    python benchmarks/bench_stats_groups_claims.py --claims-only   # claim checker, ~2 CPU min

The group rows compare the studentized permutation test over people
(:func:`lfr_eval.metrics.permutation_compare_groups`, what ``IdentificationFrame.compare_groups``
and ``group_test`` run on per-person data) with the Rao-Scott max-|z| test from clustered
summaries (:func:`lfr_eval.metrics.compare_group_rates`, what the demographic page runs on an
aggregate). 199 permutations give an exact 5% level (10 / 200).
"""

from __future__ import annotations

from lfr_eval.simulation import ClusterDesign, claim_support_rate, group_test_rejection

SEARCHES_PER_PERSON = [5, 10, 20, 40, 2, 8, 15, 30, 3, 50]


def group_rows(size_sets: int = 400, power_sets: int = 300, permutations: int = 199) -> None:
    """One row per cell: the studentized permutation test (per-person data, the frame's
    default) and the Rao-Scott max-|z| test (clustered summaries, the aggregate's)."""
    print(
        "| groups | icc | rate | people/group | searches/person "
        "| size: permutation | power 2x: permutation | power 3x: permutation "
        "| size: Rao-Scott | power 2x: Rao-Scott | power 3x: Rao-Scott "
        "| ratio CI excludes 1 (equal rates) | ratio power (2x) | ratio power (3x) "
        "| ratio to overall excludes 1 (equal rates) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n_groups in (2, 4, 10):
        for icc in (0.0, 0.2, 0.5):
            for rate, people in ((0.01, 150), (0.001, 1000)):
                ms = SEARCHES_PER_PERSON[:n_groups]

                def designs(
                    factor: float, ms: list = ms, icc: float = icc, rate: float = rate,
                    people: int = people,
                ) -> list:
                    return [
                        ClusterDesign(people, m, icc, rate * (factor if g == 0 else 1), True)
                        for g, m in enumerate(ms)
                    ]

                cells = []
                runs = ((1, size_sets, 1), (2, power_sets, 2), (3, power_sets, 3))
                for factor, sets, seed in runs:
                    perm = group_test_rejection(
                        designs(factor), n_datasets=sets, seed=seed,
                        n_permutations=permutations,
                    )
                    rs = group_test_rejection(
                        designs(factor), n_datasets=sets, seed=seed, test="rao-scott",
                        ratios=False,
                    )
                    cells.append((perm, rs))
                perm_cols = " | ".join(f"{p.any_pair:.3f}" for p, _ in cells)
                rs_cols = " | ".join(f"{r.any_pair:.3f}" for _, r in cells)
                ratio_cols = " | ".join(f"{p.ratio_excludes_one:.3f}" for p, _ in cells)
                print(
                    f"| {n_groups} | {icc} | {rate} | {people} | {','.join(map(str, ms))} "
                    f"(unequal) | {perm_cols} | {rs_cols} | {ratio_cols} "
                    f"| {cells[0][0].overall_ratio_excludes_one:.3f} |",
                    flush=True,
                )


def claim_rows() -> None:
    print(
        "| people x searches | icc | true FPIR | claimed bound | supported: korn-graubard "
        "| supported: search-level CP |"
    )
    print("|---|---|---|---|---|---|")
    for people, m in ((2000, 10), (500, 40), (200, 100)):
        for icc in (0.0, 0.1, 0.3):
            for truth, bound in ((1 / 4000, 1 / 6000), (1e-3, 1e-3), (1 / 3000, 1e-3)):
                design = ClusterDesign(people, m, icc, truth)
                kg = claim_support_rate(design, bound, n_datasets=1000, seed=5)
                cp = claim_support_rate(
                    design, bound, "clopper-pearson (independence)", n_datasets=1000, seed=5
                )
                print(
                    f"| {people}x{m} | {icc} | {truth:.3g} | {bound:.3g} | {kg.supported:.3f} "
                    f"| {cp.supported:.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups-only", action="store_true")
    parser.add_argument("--claims-only", action="store_true")
    parser.add_argument("--size-datasets", type=int, default=400)
    parser.add_argument("--power-datasets", type=int, default=300)
    parser.add_argument("--permutations", type=int, default=199)
    args = parser.parse_args()
    if not args.claims_only:
        group_rows(args.size_datasets, args.power_datasets, args.permutations)
    if not args.groups_only:
        print()
        claim_rows()
