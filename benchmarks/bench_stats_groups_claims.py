"""Group-comparison size/power and claim false-support simulation (issue 9).

Prints the markdown tables of ``benchmarks/results/stats_groups_claims.md``::

    python benchmarks/bench_stats_groups_claims.py > benchmarks/results/stats_groups_claims.md
"""

from __future__ import annotations

from lfr_eval.simulation import ClusterDesign, claim_support_rate, group_test_rejection

SEARCHES_PER_PERSON = [5, 10, 20, 40, 2, 8, 15, 30, 3, 50]


def group_rows() -> None:
    print(
        "| groups | icc | rate | people/group | searches/person | size (equal rates) "
        "| power (one group 2x) | power (one group 3x) | ratio CI excludes 1 (equal rates) "
        "| ratio power (2x) | ratio power (3x) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
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

                size = group_test_rejection(designs(1), n_datasets=400, seed=1)
                two = group_test_rejection(designs(2), n_datasets=300, seed=2)
                three = group_test_rejection(designs(3), n_datasets=300, seed=3)
                print(
                    f"| {n_groups} | {icc} | {rate} | {people} | {','.join(map(str, ms))} "
                    f"(unequal) | {size.any_pair:.3f} | {two.any_pair:.3f} | "
                    f"{three.any_pair:.3f} | {size.ratio_excludes_one:.3f} | "
                    f"{two.ratio_excludes_one:.3f} | {three.ratio_excludes_one:.3f} |",
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
    import sys

    group_rows()
    if "--groups-only" not in sys.argv:
        print()
        claim_rows()
