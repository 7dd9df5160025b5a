"""Tidy aggregate tables: one row per (attribute, group, threshold), the whole population once,
and the same interval for the same searches wherever they appear (issue 12, item 2)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lfr_eval.metrics import SearchSet
from lfr_eval.report import ALL, AggregateResult
from tests.test_results import synthetic_result

LABELS = ("a", "b", "c", "unknown")


@st.composite
def evaluations(draw: st.DrawFn):
    """Random searches with 2-4 attributes, labels drawn per subject (some attributes known on
    one side only, some groups present on one side only), random failures to acquire."""
    n_attributes = draw(st.integers(2, 4))
    n_mated_subjects = draw(st.integers(1, 12))
    n_non_mated_subjects = draw(st.integers(1, 12))
    per_subject = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n_mated = n_mated_subjects * per_subject
    n_non_mated = n_non_mated_subjects * per_subject
    m_subj = np.repeat([f"m{i}" for i in range(n_mated_subjects)], per_subject).astype(object)
    n_subj = np.repeat([f"n{i}" for i in range(n_non_mated_subjects)], per_subject).astype(object)

    def labels(n_subjects: int, only_unknown: bool) -> np.ndarray:
        if only_unknown:
            return np.repeat("unknown", n_subjects * per_subject).astype(object)
        per = rng.choice(LABELS, n_subjects)
        return np.repeat(per, per_subject).astype(object)

    names = [f"attr{j}" for j in range(n_attributes)]
    # attr0 is unknown for every mated search (a source without that column)
    m_groups = pd.DataFrame(
        {name: labels(n_mated_subjects, j == 0) for j, name in enumerate(names)}
    )
    n_groups = pd.DataFrame({name: labels(n_non_mated_subjects, False) for name in names})
    watchlist = max(n_mated_subjects, 2)
    mate_scores = rng.uniform(-0.2, 1.0, n_mated)
    mate_ranks = rng.integers(1, watchlist + 1, n_mated)
    failed = rng.random(n_mated) < 0.1
    mate_scores[failed] = -np.inf
    mate_ranks[failed] = watchlist + 1
    topk = -np.sort(-rng.uniform(-0.2, 0.9, (n_non_mated, 3)), axis=1)
    topk[rng.random(n_non_mated) < 0.1] = -np.inf
    searches = SearchSet(
        watchlist_size=watchlist,
        mate_scores=mate_scores,
        mate_ranks=mate_ranks,
        mated_subjects=m_subj,
        non_mated_topk=topk,
        non_mated_subjects=n_subj,
        mated_groups=m_groups,
        non_mated_groups=n_groups,
    )
    base = synthetic_result(with_scaling=False)
    return replace(
        base,
        searches=searches,
        search_images=(m_subj.copy(), n_subj.copy()),
        dataset=replace(base.dataset, attributes=tuple(names)),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evaluations(), st.sampled_from(["clopper-pearson", "subject-bootstrap"]))
def test_tables_are_duplicate_free_and_share_intervals(result, ci_method) -> None:
    agg = AggregateResult.from_result(
        result, thresholds=[0.0, 0.3, 0.6], ci_method=ci_method, n_boot=20, max_rank=3
    )
    rates = agg.rates
    assert not rates.duplicated(["metric", "threshold", "attribute", "group"]).any()
    overall = rates[rates["attribute"] == ALL]
    assert (overall["group"] == ALL).all()
    assert len(overall) == 2 * 3  # fpir and fnir at each threshold, once
    assert (rates[rates["attribute"] != ALL]["group"] != ALL).all()

    summary = agg.summary([0.0, 0.3, 0.6])
    assert not summary.duplicated(["threshold", "attribute", "group"]).any()
    assert list(summary.columns[:3]) == ["threshold", "attribute", "group"]
    assert (summary["attribute"] == ALL).sum() == 3
    # every (attribute, group) with searches of either kind has its rows
    expected = {
        (a, str(g))
        for a in result.attributes
        for side in (result.searches.mated_groups, result.searches.non_mated_groups)
        for g in side[a].astype(str).unique()
    }
    assert set(zip(summary["attribute"], summary["group"], strict=True)) - {(ALL, ALL)} == expected

    # attr0 is "unknown" for every mated search: those rows are the overall searches, so they
    # carry the overall interval, not another bootstrap draw
    unknown = rates[
        (rates["metric"] == "fnir")
        & (rates["attribute"] == "attr0")
        & (rates["group"] == "unknown")
    ].set_index("threshold")
    whole = overall[overall["metric"] == "fnir"].set_index("threshold")
    cols = ["n_searches", "errors", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(unknown[cols], whole[cols], check_dtype=False)

    ranks = agg.ranks
    assert ranks is not None
    assert not ranks.duplicated(["rank", "attribute", "group"]).any()
    assert ((ranks["attribute"] == ALL) == (ranks["group"] == ALL)).all()
    # the identification rate never falls as the rank grows
    for _, part in ranks.groupby(["attribute", "group"]):
        assert np.all(np.diff(part.sort_values("rank")["rate"].to_numpy()) >= -1e-12)
