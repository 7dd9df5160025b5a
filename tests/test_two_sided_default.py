"""The two-sided default of stop 24 on the simulation grid: the fast path and the cells it moved.

:func:`lfr_eval.simulation.interval_coverages` is what ``benchmarks/bench_stats_grid.py`` runs
(one clustered summary and one one-sided envelope per batch, shared by every method); it must
give exactly what the slow path, :func:`~lfr_eval.simulation.interval_coverage` method by
method on the raw counts, gives on the same seed.

The discriminating cells are grid cells that the stop-24 rule (the floor at Kish's effective
number of people, the exact lower end at exactly one error) moved into 0.93–0.97 on the tuning
seed and the confirmation seed (``benchmarks/results/stats_grid.md``, "Stop 24"); the check
fails when the default's coverage there leaves the band, and it shows on the same data sets
that the previous rule is outside it, so the check can tell the two apart.
"""

from __future__ import annotations

import math
from dataclasses import fields

import pytest

from lfr_eval.metrics._clustered import PREVIOUS_RULE_NAME
from lfr_eval.simulation import (
    PLAIN_KORN_GRAUBARD,
    ClusterDesign,
    interval_coverage,
    interval_coverages,
)

DEFAULT = "design-effect-jeffreys"
PREVIOUS = f"design-effect-jeffreys [{PREVIOUS_RULE_NAME}]"


@pytest.mark.parametrize(
    "cell",
    [(100, 10, 0.3, 0.01, True), (300, 1, 0.0, 0.01, False)],
    ids=lambda c: "-".join(map(str, c)),
)
def test_interval_coverages_agrees_with_the_slow_path(cell: tuple) -> None:
    design = ClusterDesign(*cell)
    methods = (
        DEFAULT,
        PREVIOUS,
        "korn-graubard",
        PLAIN_KORN_GRAUBARD,
        "clopper-pearson (independence)",
    )
    fast = interval_coverages(design, methods, n_datasets=240, seed=5)
    assert list(fast) == list(methods)
    for method in methods:
        slow = interval_coverage(design, method, n_datasets=240, seed=5)
        for f in fields(slow):
            assert getattr(fast[method], f.name) == getattr(slow, f.name), (method, f.name)
    # the methods differ on these data sets, so agreement is not the same number five times
    assert len({r.two_sided for r in fast.values()}) >= 3
    two_only = interval_coverages(design, methods[:2], n_datasets=240, seed=5, upper=False)
    for method in methods[:2]:
        assert math.isnan(two_only[method].upper)
        assert two_only[method].two_sided == fast[method].two_sided
    with pytest.raises(KeyError, match="unknown interval methods"):
        interval_coverages(design, ("bootstrap",), n_datasets=8)


N_DATASETS = 2000

#: (people, searches per person, ICC, rate, unequal): cells the stop-24 rule moved into the band
#: on both seeds of the grid (7 and the confirmation seed); previous coverage in brackets there.
MOVED_CELLS: list[tuple[int, int, float, float, bool]] = []


@pytest.mark.parametrize("cell", MOVED_CELLS, ids=lambda c: "-".join(map(str, c)))
def test_default_in_band_where_the_stop_24_rule_moved_it(cell: tuple) -> None:
    design = ClusterDesign(*cell)
    r = interval_coverages(design, (DEFAULT, PREVIOUS), n_datasets=N_DATASETS, seed=23, upper=False)
    assert 0.93 <= r[DEFAULT].two_sided <= 0.97, r[DEFAULT]
    assert r[PREVIOUS].two_sided > 0.97, r[PREVIOUS]  # the check discriminates
