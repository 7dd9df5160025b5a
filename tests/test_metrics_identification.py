"""Identification rates, threshold rules and scoring on hand-computed cases."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pandas as pd
import pytest

from lfr_eval.errors import RuntimeUnavailableError
from lfr_eval.metrics import (
    IdentificationFrame,
    MetricInputError,
    SearchSet,
    choose_threshold,
    clopper_pearson,
    cmc_curve,
    fnir,
    fnir_estimate,
    fpir,
    fpir_estimate,
    identification_det_curve,
    identification_eer,
    rank_k_identification_rate,
    score_searches,
    selectivity,
    selectivity_truncated,
    threshold_at_fpir,
    threshold_at_tpir,
    tpir,
)


@pytest.fixture()
def small() -> SearchSet:
    """4 mated and 5 non-mated searches whose rates are easy to count by hand."""
    return SearchSet(
        watchlist_size=100,
        mate_scores=np.array([0.9, 0.7, 0.55, 0.65]),
        mate_ranks=np.array([1, 1, 1, 3]),
        mated_subjects=np.array(["a", "a", "b", "c"]),
        non_mated_topk=np.array(
            [
                [0.62, 0.50, 0.10],
                [0.60, 0.59, 0.58],
                [0.40, 0.30, 0.20],
                [0.20, 0.10, 0.00],
                [0.70, 0.65, 0.61],
            ]
        ),
        non_mated_subjects=np.array(["x", "y", "y", "z", "w"]),
        mated_groups=pd.DataFrame({"sex": ["f", "f", "m", "m"]}),
        non_mated_groups=pd.DataFrame({"sex": ["f", "m", "m", "f", "f"]}),
    )


def test_fpir_counts_best_score_at_or_above_threshold(small: SearchSet) -> None:
    # best scores 0.62, 0.60, 0.40, 0.20, 0.70
    np.testing.assert_allclose(
        fpir(small, [0.6, 0.61, 0.65, 0.8, -1.0]), [3 / 5, 2 / 5, 1 / 5, 0, 1]
    )
    # a score exactly at the threshold raises an alert
    assert fpir(small, 0.70).item() == pytest.approx(1 / 5)
    assert fpir([0.1, 0.5, 0.7, 0.9], [[0.5], [0.8]]).shape == (2, 1)


def test_fnir_needs_rank_and_score(small: SearchSet) -> None:
    # mate (score, rank): (0.9,1) (0.7,1) (0.55,1) (0.65,3)
    np.testing.assert_allclose(fnir(small, [0.5, 0.6, 0.8, 0.95]), [1 / 4, 2 / 4, 3 / 4, 1])
    np.testing.assert_allclose(fnir(small, [0.5, 0.6], rank=3), [0, 1 / 4])
    np.testing.assert_allclose(tpir(small, [0.5, 0.6]), [3 / 4, 2 / 4])
    with pytest.raises(MetricInputError, match="rank"):
        fnir(small, 0.5, rank=0)


def test_selectivity_counts_all_candidates(small: SearchSet) -> None:
    # candidates >= 0.6: 0.62 | 0.60 | - | - | 0.70 0.65 0.61 -> 5 over 5 searches
    assert selectivity(small, 0.6).item() == pytest.approx(1.0)
    # >= 0.58: search 2 has all of its 3 kept candidates above: SEL is only a lower bound there
    assert selectivity(small, 0.58).item() == pytest.approx(7 / 5)
    np.testing.assert_array_equal(
        selectivity_truncated(small, [0.58, 0.6, 0.62]), [True, True, False]
    )


def test_rank_k_identification_and_cmc(small: SearchSet) -> None:
    np.testing.assert_allclose(rank_k_identification_rate(small, [1, 2, 3]), [0.75, 0.75, 1.0])
    np.testing.assert_allclose(cmc_curve(small, 4), [0.75, 0.75, 1.0, 1.0])


def test_estimates_carry_counts_and_intervals(small: SearchSet) -> None:
    curve = fpir_estimate(small, [0.6, 0.65])
    assert curve.errors.tolist() == [3, 1] and curve.trials == 5
    est = curve.at(0.6)
    assert (est.errors, est.trials, est.rate) == (3, 5, pytest.approx(0.6))
    assert 0 < est.ci_low < 0.6 < est.ci_high < 1
    tp = fnir_estimate(small, [0.6])[0].complement()
    assert tp.rate == pytest.approx(0.5) and tp.errors == 2
    with pytest.raises(MetricInputError, match="not one of"):
        curve.at(0.7)


def test_det_curve_is_monotone(small: SearchSet) -> None:
    det = identification_det_curve(small)
    assert np.all(np.diff(det.fpir) <= 0) and np.all(np.diff(det.fnir) >= 0)
    assert det.watchlist_size == 100


def test_bad_scores_are_refused() -> None:
    with pytest.raises(MetricInputError, match="NaN"):
        fpir([0.1, np.nan], 0.5)
    with pytest.raises(MetricInputError, match="finite"):
        fpir([0.1, 0.2], [np.inf])
    with pytest.raises(MetricInputError, match="empty"):
        fpir([0.1, 0.2], [])


def test_subset_keeps_watchlist_size(small: SearchSet) -> None:
    sub = small.subset(np.array([True, False, True, False]), np.array([1, 1, 0, 0, 0], bool))
    assert sub.n_mated == 2 and sub.n_non_mated == 2 and sub.watchlist_size == 100
    assert sub.mated_groups["sex"].tolist() == ["f", "m"]
    assert fpir(sub, 0.61).item() == pytest.approx(0.5)


# ------------------------------------------------------------------------ threshold rules


def test_threshold_at_fpir_allows_exactly_the_target_count(small: SearchSet) -> None:
    t = threshold_at_fpir(small, 0.4)  # 2 of 5 allowed: just above the 3rd best (0.60)
    assert 0.60 < t < 0.6000001
    assert fpir(small, t).item() == pytest.approx(0.4)
    assert fpir(small, threshold_at_fpir(small, 0.0)).item() == 0.0
    # float32 scores: the threshold stays above the score after a cast back to float32
    s32 = np.array([0.3, 0.5, 0.5, 0.7], np.float32)
    t32 = threshold_at_fpir(s32, 0.25)
    assert np.float32(t32) > np.float32(0.5) and fpir(s32, t32).item() == 0.25


def test_threshold_at_tpir(small: SearchSet) -> None:
    assert threshold_at_tpir(small, 0.5) == pytest.approx(0.7)  # 2 of 4 found at rank 1
    assert threshold_at_tpir(small, 0.75) == pytest.approx(0.55)
    assert tpir(small, threshold_at_tpir(small, 0.75)).item() == pytest.approx(0.75)
    with pytest.raises(MetricInputError, match="cannot be reached"):
        threshold_at_tpir(small, 1.0)  # one mate is at rank 3
    assert threshold_at_tpir(small, 1.0, rank=3) == pytest.approx(0.55)


def test_choose_threshold_on_dev_report_on_eval(small: SearchSet) -> None:
    rng = np.random.default_rng(3)
    evalset = SearchSet(
        watchlist_size=100,
        mate_scores=rng.uniform(0.4, 1.0, 50),
        mate_ranks=np.ones(50, int),
        mated_subjects=np.arange(50).astype(str),
        non_mated_topk=rng.uniform(0, 0.7, (200, 1)),
        non_mated_subjects=np.arange(200).astype(str),
    )
    choice = choose_threshold("fpir", small, evalset, target=0.2)
    assert choice.rule == "fpir" and choice.target == 0.2
    assert choice.dev.fpir.rate == pytest.approx(0.2)
    assert choice.dev_value == pytest.approx(0.2)
    assert choice.eval is not None
    assert choice.eval_value == pytest.approx(fpir(evalset, choice.threshold).item())
    assert choice.eval.fpir.trials == 200
    tp = choose_threshold("tpir", small, target=0.75)
    assert tp.dev_value == pytest.approx(0.75) and tp.eval is None
    eer = choose_threshold("eer", small)
    assert eer.target is None and eer.threshold == identification_eer(small).threshold
    with pytest.raises(MetricInputError, match="needs a target"):
        choose_threshold("fpir", small)


def _clustered_searches() -> SearchSet:
    """Two of 20 strangers draw every false match, each in all 10 of their searches; one of
    each volunteer's five mated searches is missed."""
    people = np.repeat(np.arange(20), 10).astype(str)
    best = np.where(np.isin(people, ["0", "1"]), 0.97, 0.1)  # above every mate's score
    mates = np.tile([0.95, 0.95, 0.95, 0.95, 0.2], 8)
    return SearchSet(
        watchlist_size=50,
        mate_scores=mates,
        mate_ranks=np.ones(40, int),
        mated_subjects=np.repeat(np.arange(8), 5).astype(str),
        non_mated_topk=best[:, None],
        non_mated_subjects=people,
    )


def test_estimates_of_a_search_set_are_clustered_by_person_unless_named() -> None:
    """Subject ids known: the default interval is the IdentificationFrame's (clustered);
    search-level Clopper-Pearson only by name, or for bare scores (no subject ids)."""
    clustered = _clustered_searches()
    frame = IdentificationFrame(clustered, [0.5, 0.99]).overall
    curve = fpir_estimate(clustered, [0.99, 0.5])  # any order: rows follow the thresholds
    for i, t in enumerate([0.99, 0.5]):
        row = frame.loc[("fpir", t)]
        assert curve[i].method == row["ci_method"] != "clopper-pearson"
        assert (curve[i].ci_low, curve[i].ci_high) == pytest.approx((row["ci_low"], row["ci_high"]))
    assert "people" in curve[0].method  # no false positive at 0.99: counted by people
    assert list(curve.to_frame()["ci_method"]) == [curve[0].method, curve[1].method]
    tp = fnir_estimate(clustered, [0.5])[0]
    assert tp.method == frame.loc[("fnir", 0.5), "ci_method"]
    low, high = clopper_pearson(20, 200)
    by_name = fpir_estimate(clustered, [0.5], method="clopper-pearson")[0]
    assert by_name.method == "clopper-pearson"
    assert (by_name.ci_low, by_name.ci_high) == pytest.approx((low, high))
    bare = fpir_estimate(clustered.non_mated_topk, [0.5])[0]
    assert bare.method == "clopper-pearson" and bare.ci_high == pytest.approx(high)
    with pytest.raises(MetricInputError, match="one-sided bound clustered by person"):
        fpir_estimate(clustered, [0.5], sided="upper")


def test_chosen_threshold_is_reported_with_intervals_clustered_by_person() -> None:
    """The held-out figures are as uncertain as 20 people make them, not 200 independent
    searches (notebook 02's threshold table showed search-level Clopper-Pearson, unnamed)."""
    clustered = _clustered_searches()
    choice = choose_threshold("tpir", clustered, clustered, target=0.8)
    point = choice.eval
    assert point is not None and (point.fpir.errors, point.fpir.trials) == (20, 200)
    frame = IdentificationFrame(clustered, [choice.threshold]).overall
    for metric, estimate in (("fpir", point.fpir), ("fnir", point.fnir)):
        row = frame.loc[(metric, choice.threshold)]
        assert estimate.method == row["ci_method"] != "clopper-pearson"
        assert (estimate.ci_low, estimate.ci_high) == pytest.approx(
            (row["ci_low"], row["ci_high"])
        )
    low, high = clopper_pearson(20, 200)
    assert point.fpir.ci_high - point.fpir.ci_low > 1.5 * (high - low)
    # searches treated as independent only by name
    by_name = choose_threshold("tpir", clustered, target=0.8, ci_method="clopper-pearson")
    assert by_name.dev.fpir.method == "clopper-pearson"
    assert (by_name.dev.fpir.ci_low, by_name.dev.fpir.ci_high) == pytest.approx((low, high))


def test_identification_eer_hand_case(small: SearchSet) -> None:
    e = identification_eer(small)
    # at T = 0.62: FPIR = 2/5 (0.62, 0.70), FNIR = 2/4 (0.55 below, rank 3) -> gap 0.1;
    # at T = 0.65: FPIR = 1/5, FNIR = 2/4 -> gap 0.3; at 0.60: FPIR 3/5, FNIR 2/4 -> gap 0.1
    assert abs(e.fmr - e.fnmr) == pytest.approx(0.1)
    assert e.threshold in (0.6, 0.62)


# ------------------------------------------------------------------------ scoring


def _brute_force(probes, p_subj, gallery, g_subj):
    pn = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    gn = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    subjects = np.unique(g_subj)
    scores = pn @ gn.T
    sub = np.stack([scores[:, g_subj == s].max(axis=1) for s in subjects], axis=1)
    return subjects, sub


@pytest.fixture(scope="module")
def embeddings():
    rng = np.random.default_rng(7)
    gallery = rng.normal(size=(90, 32))
    g_subj = np.concatenate([np.arange(40), np.arange(40), np.arange(10)]).astype(str)
    probes = rng.normal(size=(300, 32))
    p_subj = rng.integers(0, 80, 300).astype(str)
    # make mated probes look like their subject so ranks vary
    for i, s in enumerate(p_subj):
        if int(s) < 40:
            probes[i] += 0.35 * gallery[int(s)]
    groups = pd.DataFrame({"sex": np.where(rng.random(300) < 0.5, "f", "m")})
    return probes, p_subj, gallery, g_subj, groups


def test_scoring_matches_brute_force(embeddings) -> None:
    probes, p_subj, gallery, g_subj, groups = embeddings
    res = score_searches(probes, p_subj, gallery, g_subj, k=5, probe_groups=groups)
    ss = res.searches
    subjects, sub = _brute_force(probes, p_subj, gallery, g_subj)
    assert ss.watchlist_size == 40
    mated = np.isin(p_subj, subjects)
    np.testing.assert_array_equal(res.mated_probe_index, np.flatnonzero(mated))
    col = np.searchsorted(subjects, p_subj[mated])
    mate = sub[mated, col]
    np.testing.assert_allclose(ss.mate_scores, mate, atol=1e-6)
    np.testing.assert_array_equal(ss.mate_ranks, (sub[mated] > mate[:, None]).sum(1) + 1)
    assert (ss.mate_ranks > 1).any()  # the case is not trivial
    top = -np.sort(-sub[~mated], axis=1)[:, :5]
    np.testing.assert_allclose(ss.non_mated_topk, top, atol=1e-6)
    assert ss.mated_groups["sex"].tolist() == groups["sex"][mated].tolist()
    assert res.runtime.name == "numpy" and not res.runtime.gpu_active


def test_scoring_single_template_gallery_in_any_order() -> None:
    rng = np.random.default_rng(21)
    gallery = rng.normal(size=(200, 16))
    g_subj = rng.permutation(200).astype(str)  # one template each, ids in random order
    probes = rng.normal(size=(120, 16))
    p_subj = rng.integers(0, 400, 120).astype(str)
    ss = score_searches(probes, p_subj, gallery, g_subj, k=3).searches
    subjects, sub = _brute_force(probes, p_subj, gallery, g_subj)
    mated = np.isin(p_subj, subjects)
    mate = sub[mated, np.searchsorted(subjects, p_subj[mated])]
    np.testing.assert_allclose(ss.mate_scores, mate, atol=1e-6)
    np.testing.assert_array_equal(ss.mate_ranks, (sub[mated] > mate[:, None]).sum(1) + 1)
    np.testing.assert_allclose(ss.non_mated_topk, -np.sort(-sub[~mated], 1)[:, :3], atol=1e-6)


def test_scoring_backends_and_chunks_give_same_numbers(embeddings) -> None:
    probes, p_subj, gallery, g_subj, _ = embeddings
    ref = score_searches(probes, p_subj, gallery, g_subj, k=5).searches
    others = [
        score_searches(probes, p_subj, gallery, g_subj, k=5, chunk_bytes=4000).searches,
        score_searches(probes, p_subj, gallery, g_subj, k=5, backend="torch").searches,
    ]
    for other in others:
        np.testing.assert_allclose(other.mate_scores, ref.mate_scores, atol=1e-6)
        np.testing.assert_array_equal(other.mate_ranks, ref.mate_ranks)
        np.testing.assert_allclose(other.non_mated_topk, ref.non_mated_topk, atol=1e-6)


def test_scoring_refuses_bad_input_and_missing_gpu(embeddings) -> None:
    probes, p_subj, gallery, g_subj, _ = embeddings
    with pytest.raises(MetricInputError, match="dimension"):
        score_searches(probes[:, :10], p_subj, gallery, g_subj)
    with pytest.raises(MetricInputError, match="all-zero"):
        score_searches(np.zeros((2, 32)), ["1", "2"], gallery, g_subj)
    with pytest.raises(RuntimeUnavailableError):
        score_searches(probes, p_subj, gallery, g_subj, backend="numpy", device="cuda")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RuntimeUnavailableError, match="CUDA"):
            score_searches(probes, p_subj, gallery, g_subj, backend="torch", device="cuda")
    with pytest.raises(MetricInputError, match="backend"):
        score_searches(probes, p_subj, gallery, g_subj, backend="cupy", device="cuda")


def test_scoring_on_cuda_matches_numpy(embeddings) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    probes, p_subj, gallery, g_subj, _ = embeddings
    ref = score_searches(probes, p_subj, gallery, g_subj, k=5).searches
    res = score_searches(probes, p_subj, gallery, g_subj, k=5, backend="torch", device="cuda")
    assert res.runtime.gpu_active and res.runtime.providers[0].startswith("cuda")
    np.testing.assert_allclose(res.searches.mate_scores, ref.mate_scores, atol=1e-5)
    np.testing.assert_array_equal(res.searches.mate_ranks, ref.mate_ranks)
    np.testing.assert_allclose(res.searches.non_mated_topk, ref.non_mated_topk, atol=1e-5)


@pytest.mark.parametrize(
    "module",
    [
        "lfr_eval.metrics._identification",
        "lfr_eval.metrics._verification",
        "lfr_eval.metrics._intervals",
        "lfr_eval.metrics._group_tests",
        "lfr_eval.metrics._thresholds",
        "lfr_eval.operational",
        "lfr_eval.claims",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def _with_failures() -> SearchSet:
    """N = 5. Mated: 0.9 (rank 1), 0.7 (rank 2), 0.5 (rank 1) and one failure to acquire.
    Non-mated: best 0.8, 0.4 and one failure to acquire (no candidate)."""
    scored = SearchSet(
        watchlist_size=5,
        mate_scores=np.array([0.9, 0.7, 0.5]),
        mate_ranks=np.array([1, 2, 1]),
        mated_subjects=np.array(["a", "b", "c"], dtype=object),
        non_mated_topk=np.array([[0.8, 0.3], [0.4, 0.1]]),
        non_mated_subjects=np.array(["x", "y"], dtype=object),
        mated_groups=pd.DataFrame({"sex": ["f", "m", "f"]}),
        non_mated_groups=pd.DataFrame({"sex": ["f", "m"]}),
    )
    return scored.with_failures(
        np.array(["d"]), np.array(["z"]), pd.DataFrame({"sex": ["m"]}), pd.DataFrame({"sex": ["f"]})
    )


def test_failures_to_acquire_count_as_nist_counts_them() -> None:
    s = _with_failures()
    assert s.n_mated == 4 and s.n_non_mated == 3
    assert s.mated_failed.tolist() == [False, False, False, True]
    assert s.non_mated_failed.tolist() == [False, False, True]
    assert s.mate_ranks[-1] == 6 and np.all(s.non_mated_topk[-1] == -np.inf)
    thr = [-1.0, 0.45, 0.6, 0.85]
    # FNIR(rank 1): misses / 4; the failure misses everywhere, the rank-2 mate too
    np.testing.assert_allclose(fnir(s, thr), [2 / 4, 2 / 4, 3 / 4, 3 / 4])
    np.testing.assert_allclose(fnir(s, thr, rank=2), [1 / 4, 1 / 4, 2 / 4, 3 / 4])
    # FPIR: false positives / 3; the failed search is in the denominator only
    np.testing.assert_allclose(fpir(s, thr), [2 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(selectivity(s, [-1.0, 0.2]), [4 / 3, 3 / 3])
    np.testing.assert_allclose(cmc_curve(s, max_rank=5), [2 / 4, 3 / 4, 3 / 4, 3 / 4, 3 / 4])
    # "exclude": the older convention, by hand
    e = s.without_failures()
    np.testing.assert_allclose(fnir(e, thr), [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(fpir(e, thr), [1, 1 / 2, 1 / 2, 0])
    # thresholds and EER ignore the -inf sentinels as candidate thresholds
    assert threshold_at_fpir(s, 1.0) == pytest.approx(0.4)
    assert np.isfinite(identification_eer(s).threshold)
    det = identification_det_curve(s)
    assert np.all(np.isfinite(det.thresholds))
    # group frame: counts include the failures in their own groups
    frame = IdentificationFrame(s, [0.45], ["sex"])
    by = frame.by_group
    assert by.loc[("fnir", 0.45, "m"), ["errors", "n_searches"]].tolist() == [2, 2]
    assert by.loc[("fpir", 0.45, "f"), ["errors", "n_searches"]].tolist() == [1, 2]
    # claim checking counts the failed search as a non-mated search
    from lfr_eval.claims import Claim, check_fpir_claim

    check = check_fpir_claim(Claim(0.5, threshold=0.45), s)
    assert (check.false_positives, check.non_mated_searches) == (1, 3)


def test_failure_sentinels_are_checked() -> None:
    with pytest.raises(MetricInputError, match="rank"):
        SearchSet(
            5, np.array([-np.inf]), np.array([1]), np.array(["a"]), np.zeros((0, 1)), np.array([])
        )
    with pytest.raises(MetricInputError, match="partly"):
        SearchSet(
            5,
            np.array([]),
            np.array([]),
            np.array([]),
            np.array([[0.5, -np.inf]]),
            np.array(["x"]),
        )
    with pytest.raises(MetricInputError, match="NaN"):
        SearchSet(
            5, np.array([np.nan]), np.array([1]), np.array(["a"]), np.zeros((0, 1)), np.array([])
        )
