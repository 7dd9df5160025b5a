"""Rank-based identification (CMC): a hand case, and bob.measure's recognition-rate convention."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lfr_eval.metrics import SearchSet, score_searches
from lfr_eval.report import cmc_table


def _searches(ranks: list[int], groups: list[str], n: int = 5) -> SearchSet:
    k = len(ranks)
    failed = [r == n + 1 for r in ranks]
    return SearchSet(
        watchlist_size=n,
        mate_scores=np.array([-np.inf if f else 0.7 for f in failed]),
        mate_ranks=np.array(ranks),
        mated_subjects=np.array([f"s{i}" for i in range(k)], dtype=object),
        non_mated_topk=np.full((1, 1), 0.2),
        non_mated_subjects=np.array(["x"], dtype=object),
        mated_groups=pd.DataFrame({"sex": groups}),
        non_mated_groups=pd.DataFrame({"sex": ["f"]}),
    )


def test_hand_case() -> None:
    # six mated searches: mates at ranks 1, 1, 2, 3, 5 and one failure to acquire (rank N + 1)
    searches = _searches([1, 1, 2, 3, 5, 6], ["f", "f", "f", "m", "m", "m"])
    table = cmc_table(searches, ["sex"], max_rank=5, ci_method="clopper-pearson")
    overall = table[table["attribute"] == "all"].set_index("rank")
    assert overall["hits"].tolist() == [2, 3, 4, 4, 5]
    assert overall["n_searches"].unique().tolist() == [6]
    np.testing.assert_allclose(overall["rate"], [2 / 6, 3 / 6, 4 / 6, 4 / 6, 5 / 6])
    assert (overall["ci_low"] <= overall["rate"]).all()
    assert (overall["rate"] <= overall["ci_high"]).all()
    female = table[(table["attribute"] == "sex") & (table["group"] == "f")].set_index("rank")
    male = table[(table["attribute"] == "sex") & (table["group"] == "m")].set_index("rank")
    assert female["hits"].tolist() == [2, 3, 3, 3, 3]
    assert male["hits"].tolist() == [0, 0, 1, 1, 2]  # the failure never hits
    # no rows beyond the watchlist size, no duplicate rows
    assert table["rank"].max() == 5
    assert not table.duplicated(["rank", "attribute", "group"]).any()


def bob_recognition_rate(cmc_scores, rank: int) -> float:
    """bob.measure 6.1.1 ``recognition_rate(cmc_scores, threshold=None, rank)``, as its source
    defines it: a probe is correct at rank r when fewer than r negatives score >= its best
    positive; every probe with a positive counts in the denominator."""
    correct = 0
    for negatives, positives in cmc_scores:
        best = np.max(positives)
        if np.sum(np.asarray(negatives) >= best) < rank:
            correct += 1
    return correct / len(cmc_scores)


def test_matches_bob_measure_convention() -> None:
    rng = np.random.default_rng(3)
    n_subjects, dim = 40, 16
    gallery = rng.normal(size=(n_subjects * 2, dim))
    gallery_subjects = np.repeat([f"s{i}" for i in range(n_subjects)], 2)
    probe_subjects = np.array([f"s{i % n_subjects}" for i in range(120)])
    # probes: noisy copies of their subject's first template, so ranks spread over 1..N
    probes = gallery[::2][np.arange(120) % n_subjects] + rng.normal(scale=2.5, size=(120, dim))
    scored = score_searches(probes, probe_subjects, gallery, gallery_subjects, k=5)
    table = cmc_table(scored.searches, [], max_rank=10, ci_method="clopper-pearson")

    # the same searches in bob's format: per probe, its subject's best template score
    # (positive) and every other subject's best template score (negatives)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    p = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    scores = p @ g.T
    per_subject = scores.reshape(len(p), n_subjects, 2).max(axis=2)
    codes = np.array([int(s[1:]) for s in probe_subjects])
    cmc_scores = [
        (np.delete(per_subject[i], codes[i]), per_subject[i, codes[i]]) for i in range(len(p))
    ]
    # continuous random scores: no ties, so NIST's and bob's tie rules agree
    for r in range(1, 11):
        ours = float(table.loc[table["rank"] == r, "rate"].iloc[0])
        assert ours == pytest.approx(bob_recognition_rate(cmc_scores, r), abs=1e-12)
    assert 0.1 < table["rate"].iloc[0] < 0.9  # a case where the ranks actually matter


def test_ties_rank_in_the_mates_favour() -> None:
    """Where a non-mate ties the mate, NIST (and we) give the mate rank 1; bob.measure counts
    the tie against it (rank 2). The CMC says which convention it follows."""
    gallery = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    subjects = np.array(["a", "b", "c"])
    scored = score_searches(np.array([[1.0, 0.0]]), np.array(["a"]), gallery, subjects, k=2)
    assert scored.searches.mate_ranks.tolist() == [1]
    assert bob_recognition_rate([(np.array([1.0, 0.0]), 1.0)], rank=1) == 0.0


def test_command_line_summary_follows_the_plain_language_rules() -> None:
    """`lfr-eval evaluate`/`report` print the rank table by lfr_eval.plain's rules, as the
    report's table: one mate found in 400 searches is not "0.2% (0.0%-1.4%)"."""
    from lfr_eval.report._text import rank_summary_lines

    ranks = pd.DataFrame(
        {
            "rank": [1, 1], "attribute": ["all", "sex"], "group": ["all", "female"],
            "n_searches": [400, 400], "n_subjects": [40, 40], "hits": [1, 0],
            "rate": [1 / 400, 0.0], "ci_low": [0.0000633, 0.0], "ci_high": [0.0138, 0.0092],
            "ci_method": "design-effect-jeffreys", "small_group": False,
            "insufficient_data": False,
        }
    )  # fmt: skip
    lines = rank_summary_lines(ranks, "95% design-effect-jeffreys intervals", shown=(1,))
    text = "\n".join(lines)
    assert "0.0%" not in text
    assert "0.25% (95% CI 0.0063%–1%)" in text
    assert "at most 1% (upper end of the 95% CI; none seen)" in text
