"""Step-down max-|t| multiplicity adjustment (Westfall & Young 1993, algorithm 2.8) of the group
comparisons: hand cases, its relation to the single step on the same draws, and its family-wise
error by a seeded simulation with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from lfr_eval.metrics import (
    ADJUSTMENTS,
    MetricInputError,
    compare_group_rates,
    max_t_adjusted,
    max_t_exceedances,
    permutation_compare_groups,
    summarise_clusters,
)
from lfr_eval.simulation import ClusterDesign, draw_errors, draw_trials, multiplicity_rejection


def test_step_down_hand_case() -> None:
    """Three hypotheses, four null draws, counted by hand.

    Single step: row maxima 2.5, 3.5, 1.5, 0.4 -> at least 3.0: 1 row, 2.0: 2, 1.0: 3, so
    p = (1 + c) / 5 = 0.4, 0.6, 0.8. Step-down: hypothesis 1 (t = 2.0) is referred to the
    maxima over hypotheses 1 and 2 only (2.5, 0.1, 1.5, 0.4: one at least 2.0), hypothesis 2
    to its own column (0.2, 0.1, 1.5, 0.4: one at least 1.0): 0.4, 0.4, 0.4.
    """
    observed = np.array([3.0, 2.0, 1.0])
    null = np.array(
        [[0.5, 2.5, 0.2], [3.5, 0.1, 0.1], [0.1, 0.1, 1.5], [0.2, 0.3, 0.4]]
    )
    single, step = max_t_exceedances(observed, null)
    assert single.tolist() == [1, 2, 3] and step.tolist() == [1, 1, 1]
    assert max_t_adjusted(observed, single, 4, "single-step") == pytest.approx([0.4, 0.6, 0.8])
    assert max_t_adjusted(observed, step, 4, "step-down") == pytest.approx([0.4, 0.4, 0.4])
    # given in another order, the same answer for each hypothesis
    perm = [2, 0, 1]
    single_p, step_p = max_t_exceedances(observed[perm], null[:, perm])
    assert step_p.tolist() == [1, 1, 1] and single_p.tolist() == [3, 1, 2]


def test_step_down_is_made_monotone_in_the_ranking() -> None:
    """A less extreme hypothesis whose own step count is smaller than a more extreme one's
    keeps the larger p-value (the step-down stops at the first hypothesis it keeps)."""
    observed = np.array([3.0, 1.0])
    null = np.array([[3.2, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    _, step = max_t_exceedances(observed, null)
    assert step.tolist() == [1, 0]  # hypothesis 2 alone: no draw reaches 1.0
    assert max_t_adjusted(observed, step, 4, "step-down") == pytest.approx([0.4, 0.4])
    with pytest.raises(MetricInputError, match="adjustment must be one of"):
        max_t_adjusted(observed, step, 4, "holm")  # type: ignore[arg-type]


def _groups(seed: int, factors: tuple[float, ...], icc: float = 0.2):
    rng = np.random.default_rng(seed)
    errors, trials = {}, {}
    for g, (m, f) in enumerate(zip((5, 10, 20, 40, 8), factors, strict=False)):
        design = ClusterDesign(150, m, icc, 0.01 * f, True)
        t = draw_trials(design, rng)
        errors[f"g{g}"], trials[f"g{g}"] = draw_errors(design, t, 1, rng)[:, 0], t
    return errors, trials


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_step_down_is_at_most_the_single_step_and_monotone(seed: int) -> None:
    errors, trials = _groups(seed, (3.0, 1.0, 1.0, 2.0, 1.0))
    step = permutation_compare_groups(errors, trials, n_permutations=499, seed=seed)
    single = permutation_compare_groups(
        errors, trials, n_permutations=499, seed=seed, adjustment="single-step"
    )
    assert step.adjustment == "step-down" and single.adjustment == "single-step"
    assert ADJUSTMENTS["step-down"] in step.method and ADJUSTMENTS["single-step"] in single.method
    by_pair = {(p.group_a, p.group_b): p for p in single.pairs}
    for p in step.pairs:
        q = by_pair[(p.group_a, p.group_b)]
        assert p.p_value == q.p_value  # the same relabellings: the same raw p-values
        assert p.p_value <= p.p_adjusted <= q.p_adjusted
    ranked = sorted(step.pairs, key=lambda p: -p.statistic)
    adjusted = [p.p_adjusted for p in ranked]
    assert adjusted == sorted(adjusted)  # monotone in the ranking by statistic
    assert ranked[0].p_adjusted == by_pair[(ranked[0].group_a, ranked[0].group_b)].p_adjusted
    # and the Rao-Scott path (normal draws) by the same rule
    summaries = {g: summarise_clusters(errors[g], trials[g]) for g in errors}
    rs_step = compare_group_rates(summaries, seed=seed)
    rs_single = {
        (p.group_a, p.group_b): p
        for p in compare_group_rates(summaries, seed=seed, adjustment="single-step").pairs
    }
    for p in rs_step.pairs:
        assert p.p_adjusted <= rs_single[(p.group_a, p.group_b)].p_adjusted
    assert rs_step.adjustment == "step-down"


def test_step_down_finds_more_with_family_wise_error_kept() -> None:
    """Seeded simulation, four groups with 5-40 searches per person, ICC 0.2: with all rates
    equal the family-wise error is the single step's (the first step is the same); with the
    first group at 3x the false calls among the three truly equal pairs stay under 0.07 (strong
    control) and the step-down finds more of the three truly different pairs."""
    ms = (5, 10, 20, 40)
    equal = multiplicity_rejection(
        [ClusterDesign(150, m, 0.2, 0.01, True) for m in ms], n_datasets=300, seed=7
    )
    assert equal.family_wise_error["step-down"] == equal.family_wise_error["single-step"]
    assert 0.02 <= equal.family_wise_error["step-down"] <= 0.08
    one_high = multiplicity_rejection(
        [ClusterDesign(150, m, 0.2, 0.01 * (3 if g == 0 else 1), True) for g, m in enumerate(ms)],
        n_datasets=300,
        seed=8,
    )
    assert one_high.n_true_null == 3 and one_high.n_false_null == 3
    assert one_high.family_wise_error["step-down"] <= 0.07
    assert one_high.found["step-down"] > one_high.found["single-step"]
    assert one_high.all_found["step-down"] > one_high.all_found["single-step"]
