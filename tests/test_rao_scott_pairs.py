"""The Rao–Scott many-group comparison from clustered summaries (`compare_group_rates`, what the
demographic page runs on an aggregate alone): its t reference on the groups' people, and, by
name, each pair studentized at its own pooled rate (measured, not the default: its size reached
0.089 with ten clustered groups; ``benchmarks/results/stats_groups_claims.md``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lfr_eval.metrics import MetricInputError, compare_group_rates, summarise_clusters
from lfr_eval.metrics._group_tests import PAIR_RATE_SUFFIX, RAO_SCOTT_PAIRS


def _group(errors: list[int], searches: list[int]):
    return summarise_clusters(np.array(errors), np.array(searches))


def test_a_pair_is_studentized_at_its_own_pooled_rate_by_name() -> None:
    """``pooled_rate="pair"``: two groups with the same rate keep their statistic when a third
    group's rate moves (at the rate of all groups, the default, it moves), it equals the
    two-group formula by hand, and the label says which rate was used."""
    a = _group([1, 0, 2, 0, 1, 0, 0, 1] * 25, [10] * 200)  # 125 in 2,000
    b = _group([0, 1, 1, 0, 0, 2, 0, 1] * 25, [10] * 200)  # 125 in 2,000
    low = _group([0] * 199 + [1], [10] * 200)
    high = _group([3, 0, 2, 1] * 50, [10] * 200)
    by_pair = {"n_draws": 2000, "pooled_rate": "pair"}
    first = compare_group_rates({"a": a, "b": b, "c": low}, **by_pair).pair("a", "b")
    second = compare_group_rates({"a": a, "b": b, "c": high}, **by_pair).pair("a", "b")
    assert first.statistic == pytest.approx(second.statistic, abs=1e-12)
    assert first.p_value == pytest.approx(second.p_value, abs=1e-12)
    # a truly different pair (125 against 75 in 2,000): by pair, the third group does not
    # matter; at all groups' rate (the default) it does
    other = _group([1, 0, 0, 0, 1, 0, 0, 1] * 25, [10] * 200)
    for rate, moves in (("pair", False), ("all", True)):
        z = [
            compare_group_rates({"a": a, "o": other, "c": c}, n_draws=2000, pooled_rate=rate)
            .pair("a", "o").statistic
            for c in (low, high)
        ]  # fmt: skip
        assert (abs(z[0] - z[1]) > 1e-6) == moves
    labelled = compare_group_rates({"a": a, "b": b, "c": low}, **by_pair)
    assert labelled.method.startswith(RAO_SCOTT_PAIRS + PAIR_RATE_SUFFIX + ";")
    assert compare_group_rates({"a": a, "b": b}, n_draws=10).method.startswith(
        RAO_SCOTT_PAIRS + ";"
    )
    with pytest.raises(MetricInputError, match="pooled_rate"):
        compare_group_rates({"a": a, "b": b}, pooled_rate="groups")  # type: ignore[arg-type]
    # by hand: p_ab (1 - p_ab) (deff_a / n_a + deff_b / n_b), each deff from the group's own
    # cluster-robust variance over its binomial variance (at least 1)
    lower = _group([1, 0, 2, 0, 1, 0, 0, 1] * 25, [10] * 200)
    c = _group([1, 0, 0, 0, 1, 0, 0, 1] * 25, [10] * 200)  # 75 in 2,000
    pair = compare_group_rates({"a": lower, "c": c, "z": low}, **by_pair).pair("a", "c")
    deff = [
        max(1.0, float(g.variance[0]) / (r * (1 - r) / 2000))
        for g, r in ((lower, 125 / 2000), (c, 75 / 2000))
    ]
    p_ac = 200 / 4000
    z = (125 / 2000 - 75 / 2000) / np.sqrt(p_ac * (1 - p_ac) * (deff[0] + deff[1]) / 2000)
    assert pair.statistic == pytest.approx(z, rel=1e-12)


def test_each_pair_is_referred_to_t_on_its_groups_people() -> None:
    """The pair's p-value is Student's t with 2 (df_i + df_j) degrees of freedom, df_g the
    people carrying group g's variance minus one (the summaries' own df)."""
    a = _group([1] * 30 + [0] * 970, [5] * 1000)
    b = _group([2, 2, 1] * 4 + [0] * 988, [5] * 1000)
    pair = compare_group_rates({"a": a, "b": b}, n_draws=2000).pair("a", "b")
    df = 2 * (float(a.df[0]) + float(b.df[0]))
    assert pair.p_value == pytest.approx(2 * stats.t.sf(pair.statistic, df), rel=1e-9)
    assert pair.p_value > 2 * stats.norm.sf(pair.statistic)
