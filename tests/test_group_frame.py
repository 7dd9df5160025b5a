"""The per-group frame: counts, intervals, ratios, FDR, intersections and group tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lfr_eval.metrics import (
    FRAME_COLUMNS,
    IdentificationFrame,
    MetricInputError,
    SearchSet,
    clopper_pearson,
    fisher_exact_test,
    fnir,
    fpir,
    permutation_test_subjects,
    wilson,
)
from lfr_eval.metrics._clustered import KORN_GRAUBARD_ALL_ERRORS, KORN_GRAUBARD_NO_ERRORS


@pytest.fixture()
def searches() -> SearchSet:
    """Non-mated: group A 4 searches (2 people), B 6 (3), unknown 1. Mated: A 4, B 2."""
    best = np.array([0.7, 0.5, 0.65, 0.2, 0.61, 0.3, 0.3, 0.3, 0.3, 0.3, 0.9])
    eth = ["A", "A", "A", "A", "B", "B", "B", "B", "B", "B", None]
    sex = ["f", "m", "f", "m", "f", "f", "m", "m", "f", "f", "f"]
    nm_subj = ["a1", "a1", "a2", "a2", "b1", "b1", "b2", "b2", "b3", "b3", "u1"]
    return SearchSet(
        watchlist_size=1000,
        mate_scores=np.array([0.9, 0.55, 0.8, 0.7, 0.59, 0.95]),
        mate_ranks=np.array([1, 1, 2, 1, 1, 1]),
        mated_subjects=np.array(["m1", "m1", "m2", "m3", "m4", "m4"]),
        non_mated_topk=best[:, None],
        non_mated_subjects=np.array(nm_subj),
        mated_groups=pd.DataFrame(
            {"ethnicity": ["A", "A", "A", "A", "B", "B"], "sex": ["f", "f", "m", "m", "f", "f"]}
        ),
        non_mated_groups=pd.DataFrame({"ethnicity": eth, "sex": sex}),
    )


def test_overall_matches_plain_functions(searches: SearchSet) -> None:
    thr = [0.6, 0.64]
    frame = IdentificationFrame(searches, thr, ["ethnicity"])
    assert list(frame.overall.columns) == list(FRAME_COLUMNS)
    overall_fpir = frame.overall.xs("fpir", level="metric")
    np.testing.assert_allclose(overall_fpir["rate"], fpir(searches, thr))
    np.testing.assert_allclose(
        frame.overall.xs("fnir", level="metric")["rate"], fnir(searches, thr)
    )
    assert overall_fpir["n_subjects"].tolist() == [6, 6]
    assert overall_fpir["n_searches"].tolist() == [11, 11]


def test_by_group_counts_and_intervals(searches: SearchSet) -> None:
    frame = IdentificationFrame(
        searches, [0.6], ["ethnicity"], min_subjects=3, min_searches=5,
        ci_method="clopper-pearson",
    )
    g = frame.by_group.xs(("fpir", 0.6), level=["metric", "threshold"])
    # A: 0.7, 0.65 >= 0.6 -> 2/4 ; B: 0.61 -> 1/6 ; unknown label kept: 0.9 -> 1/1
    assert g.index.tolist() == ["A", "B", "unknown"]
    assert g["errors"].tolist() == [2, 1, 1]
    assert g["n_searches"].tolist() == [4, 6, 1]
    assert g["n_subjects"].tolist() == [2, 3, 1]
    assert g["small_group"].tolist() == [True, False, True]  # flagged, never hidden
    low, high = clopper_pearson([2, 1, 1], [4, 6, 1])
    np.testing.assert_allclose(g["ci_low"], low)
    np.testing.assert_allclose(g["ci_high"], high)
    # FNIR in A: misses 0.55 (score) and rank 2 -> 2/4 ; B: 0.59 -> 1/2 ; unknown: no mated
    f = frame.by_group.xs(("fnir", 0.6), level=["metric", "threshold"])
    assert f.loc["A", "errors"] == 2 and f.loc["B", "errors"] == 1
    assert bool(f.loc["unknown", "insufficient_data"]) and np.isnan(f.loc["unknown", "rate"])
    wil = IdentificationFrame(searches, [0.6], ["ethnicity"], ci_method="wilson")
    _, wh = wilson(2, 4)
    assert wil.by_group.loc[("fpir", 0.6, "A"), "ci_high"] == pytest.approx(float(wh))


def test_ratios_and_fairness_discrepancy_rate(searches: SearchSet) -> None:
    frame = IdentificationFrame(searches, [0.6, 0.64], ["ethnicity"])
    every = {"include_small": True, "include_unknown": True}  # all groups here are small
    r = frame.ratio("fpir", "lowest", **every).xs(0.6, level="threshold")
    # rates A 1/2, B 1/6, unknown 1 -> lowest is B
    np.testing.assert_allclose(r["ratio"], [3.0, 1.0, 6.0])
    r_ref = frame.ratio("fpir", "A", **every).xs(0.6, level="threshold")
    np.testing.assert_allclose(r_ref["ratio"], [1.0, 1 / 3, 2.0])
    r_all = frame.ratio("fpir", None, **every).xs(0.6, level="threshold")
    np.testing.assert_allclose(r_all["reference_rate"], 4 / 11)
    no_small = frame.ratio("fpir", "lowest", include_small=False, include_unknown=True)
    assert "unknown" not in no_small.index.get_level_values("ethnicity")
    # at 0.64: A 2/4, B 0/6 -> ratio to lowest is inf, 0/0 is NaN
    r64 = frame.ratio("fpir", **every).xs(0.64, level="threshold")["ratio"]
    assert np.isinf(r64["A"]) and np.isnan(r64["B"])
    mm = frame.max_min_ratio("fpir", **every)
    # the lowest rate 0: max/min is undefined (NaN), as on the demographic page
    assert mm[0.6] == pytest.approx(6.0) and np.isnan(mm[0.64])
    assert frame.max_min_ratio("fpir").isna().all()  # by default small groups are left out
    # FDR at 0.6: A(FPIR) = 1 - 1/6 ; B(FNIR) = |2/4 - 1/2| = 0 (unknown has no mated searches)
    fdr = frame.fairness_discrepancy_rate(alpha=0.5, **every)
    assert fdr[0.6] == pytest.approx(1 - 0.5 * (5 / 6))
    fdr_b = frame.fairness_discrepancy_rate(alpha=0.0, **every)
    assert fdr_b[0.6] == pytest.approx(1.0)
    with pytest.raises(MetricInputError, match="sum"):
        frame.fairness_discrepancy_rate(alpha=0.5, beta=0.2)
    with pytest.raises(MetricInputError, match="not found"):
        frame.ratio("fpir", "Z")


def test_intersections(searches: SearchSet) -> None:
    frame = IdentificationFrame(searches, [0.6], ["ethnicity", "sex"])
    g = frame.by_group.xs(("fpir", 0.6), level=["metric", "threshold"])
    assert ("A", "f") in frame.groups and ("unknown", "f") in frame.groups
    assert g.loc[("A", "f"), "errors"] == 2 and g.loc[("A", "m"), "errors"] == 0
    assert g.loc[("B", "f"), "n_searches"] == 4
    r = frame.ratio("fnir", ("A", "f"), include_small=True)
    assert r.loc[(0.6, "A", "m"), "reference_rate"] == pytest.approx(0.5)
    assert frame.rates("fpir").shape == (1, len(frame.groups))


def test_no_features_gives_one_group(searches: SearchSet) -> None:
    frame = IdentificationFrame(searches, [0.6])
    assert frame.groups == ["all"]
    assert frame.by_group.loc[("fpir", 0.6, "all"), "errors"] == 4


def test_bad_arguments(searches: SearchSet) -> None:
    with pytest.raises(MetricInputError, match="not a column"):
        IdentificationFrame(searches, [0.6], ["age"])
    with pytest.raises(MetricInputError, match="ci_method"):
        IdentificationFrame(searches, [0.6], ci_method="jackknife")  # type: ignore[arg-type]
    frame = IdentificationFrame(searches, [0.6], ["ethnicity"])
    with pytest.raises(MetricInputError, match="thresholds"):
        frame.group_test("fpir", 0.7, "A", "B")
    with pytest.raises(MetricInputError, match="metric"):
        frame.ratio("sel")  # type: ignore[arg-type]


def test_bootstrap_intervals_fall_back_to_exact_at_zero_errors(searches: SearchSet) -> None:
    frame = IdentificationFrame(
        searches, [0.6, 0.95], ["ethnicity"], ci_method="subject-bootstrap", n_boot=200
    )
    g = frame.by_group
    row = g.loc[("fpir", 0.95, "A")]
    # No errors: the bound is counted by people (2 in group A), not by its 4 searches.
    assert row["errors"] == 0 and row["ci_method"] == KORN_GRAUBARD_NO_ERRORS
    assert row["ci_high"] == pytest.approx(float(clopper_pearson(0, 2)[1]))
    assert row["ci_high"] > float(clopper_pearson(0, 4)[1])
    assert g.loc[("fpir", 0.6, "B"), "ci_method"] == "subject-bootstrap"
    assert g.loc[("fpir", 0.6, "unknown"), "ci_method"].startswith("korn-graubard")
    again = IdentificationFrame(
        searches, [0.6, 0.95], ["ethnicity"], ci_method="subject-bootstrap", n_boot=200
    )
    pd.testing.assert_frame_equal(g, again.by_group)  # seeded: reproducible


def test_bootstrap_intervals_fall_back_to_exact_when_every_search_errs(
    searches: SearchSet,
) -> None:
    # At T = 0.1 every non-mated search of group B (0.3 or 0.61) is a false positive: every
    # bootstrap replicate is 1 and the percentile interval would be 1 - 1.
    frame = IdentificationFrame(
        searches, [0.1], ["ethnicity"], ci_method="subject-bootstrap", n_boot=200
    )
    row = frame.by_group.loc[("fpir", 0.1, "B")]
    assert row["errors"] == row["n_searches"] == 6
    assert row["ci_method"] == KORN_GRAUBARD_ALL_ERRORS
    assert row["ci_high"] == 1.0
    assert row["ci_low"] == pytest.approx(float(clopper_pearson(3, 3)[0]))  # 3 people
    assert row["ci_low"] < 1.0


def test_group_tests_from_frame(searches: SearchSet) -> None:
    frame = IdentificationFrame(searches, [0.6], ["ethnicity"])
    fisher = frame.group_test("fpir", 0.6, "A", "B", test="fisher")
    expected = stats.fisher_exact([[2, 2], [1, 5]]).pvalue
    assert fisher.p_value == pytest.approx(expected) and fisher.independence_assumed
    perm = frame.group_test("fpir", 0.6, "A", "B", test="permutation", n_permutations=999)
    assert perm.n_subjects_a == 2 and perm.n_subjects_b == 3
    assert perm.statistic == pytest.approx(2 / 4 - 1 / 6)
    # 5 subjects, 10 distinct relabellings: the p-value cannot be small
    assert perm.p_value > 0.2 and not perm.independence_assumed


def test_permutation_test_detects_a_real_difference() -> None:
    rng = np.random.default_rng(0)
    e_a = rng.binomial(5, 0.3, 60)
    e_b = rng.binomial(5, 0.05, 60)
    res = permutation_test_subjects(e_a, np.full(60, 5), e_b, np.full(60, 5), n_permutations=1999)
    assert res.p_value < 0.001 and res.significant()
    one = permutation_test_subjects(
        e_a, np.full(60, 5), e_b, np.full(60, 5), n_permutations=999, alternative="less"
    )
    assert one.p_value > 0.9


def _clustered(rng, n_subjects: int, per: int, mean: float, concentration: float) -> np.ndarray:
    p = rng.beta(mean * concentration, (1 - mean) * concentration, n_subjects)
    return rng.binomial(per, p)


def test_group_tests_keep_their_size_under_the_null() -> None:
    """Same rate in both groups: rejections at 5% should be about 5% (simulation)."""
    rng = np.random.default_rng(123)
    sims = 400
    perm_rej = fisher_clustered_rej = fisher_indep_rej = 0
    for i in range(sims):
        # clustered: 40 subjects per group, 6 searches each, subject-specific error rates
        a = _clustered(rng, 40, 6, 0.1, 1.0)
        b = _clustered(rng, 40, 6, 0.1, 1.0)
        n = np.full(40, 6)
        perm = permutation_test_subjects(a, n, b, n, n_permutations=499, seed=i)
        perm_rej += perm.p_value <= 0.05
        fisher_clustered_rej += fisher_exact_test(a.sum(), 240, b.sum(), 240).p_value <= 0.05
        # independent searches: Fisher is valid (conservative)
        ia, ib = rng.binomial(240, 0.1), rng.binomial(240, 0.1)
        fisher_indep_rej += fisher_exact_test(ia, 240, ib, 240).p_value <= 0.05
    se = np.sqrt(0.05 * 0.95 / sims)
    assert abs(perm_rej / sims - 0.05) < 3 * se
    assert fisher_indep_rej / sims < 0.05 + 3 * se
    # the reason for the permutation test: Fisher rejects far too often on clustered searches
    assert fisher_clustered_rej / sims > 0.15


def test_missing_side_is_insufficient_not_fair() -> None:
    ss = SearchSet(
        watchlist_size=10,
        mate_scores=np.array([]),
        mate_ranks=np.array([], int),
        mated_subjects=np.array([], str),
        non_mated_topk=np.linspace(0, 1, 40)[:, None],
        non_mated_subjects=np.arange(40).astype(str),
        non_mated_groups=pd.DataFrame({"sex": ["f", "m"] * 20}),
    )
    frame = IdentificationFrame(ss, [0.5], ["sex"])
    assert frame.by_group.xs("fnir", level="metric")["insufficient_data"].all()
    # 20 searches a group: small (min_searches=100), so named in
    fdr = frame.fairness_discrepancy_rate(include_small=True)
    assert np.isnan(fdr[0.5])  # no FNIR data: unknown
    assert frame.fairness_discrepancy_rate(alpha=1.0, include_small=True)[0.5] == pytest.approx(1.0)


def test_search_set_refuses_inconsistent_lengths() -> None:
    from lfr_eval.errors import LfrError

    with pytest.raises(LfrError, match="equal length"):
        SearchSet(
            1, np.array([0.5]), np.array([1, 2]), np.array(["a"]), np.zeros((1, 1)), np.array(["b"])
        )


def test_ratio_intervals_are_clustered_and_simultaneous() -> None:
    """Group B's FPIR is 3x group A's. The ratio's interval (simultaneous Korn–Graubard
    intervals of both groups, Bonferroni over 2) holds 3, excludes 1 with this much data and
    equals the bounds computed directly from per-person counts."""
    rng = np.random.default_rng(4)
    n_people, per_person = 400, 5
    group = np.repeat(np.where(np.arange(2 * n_people) < n_people, "A", "B"), per_person)
    people = np.repeat(np.arange(2 * n_people), per_person).astype(str)
    # a person-level propensity makes searches of one person correlated (clustered)
    base = np.where(group == "A", 0.02, 0.06)
    propensity = np.repeat(rng.uniform(0.0, 2.0, 2 * n_people), per_person)
    best = np.where(rng.random(group.size) < base * propensity, 0.9, 0.1)
    s = SearchSet(
        watchlist_size=100,
        mate_scores=np.array([0.9]),
        mate_ranks=np.array([1]),
        mated_subjects=np.array(["m"]),
        non_mated_topk=best[:, None],
        non_mated_subjects=people,
        mated_groups=pd.DataFrame({"g": ["A"]}),
        non_mated_groups=pd.DataFrame({"g": group}),
    )
    frame = IdentificationFrame(s, [0.5], ["g"], n_boot=400, seed=1)
    r = frame.ratio("fpir", "lowest").xs(0.5, level="threshold")
    b = r.loc["B"]
    assert b["ratio_ci_low"] < b["ratio"] < b["ratio_ci_high"]
    assert 1.0 < b["ratio_ci_low"] < 3.0 < b["ratio_ci_high"]
    assert r.loc["A", "ratio_ci_low"] <= 1.0 <= r.loc["A", "ratio_ci_high"]
    # the same interval directly from per-person counts (one function for the frame, the
    # demographic page and the simulation); symmetric about the ratio on the log scale
    from lfr_eval.metrics import simultaneous_ratio_intervals, summarise_clusters

    fp = (best >= 0.5).astype(float)
    by_person = pd.DataFrame({"p": people, "g": group, "fp": fp}).groupby(["g", "p"])["fp"]
    sums, counts = by_person.sum(), by_person.count()
    summaries = {
        g: summarise_clusters(sums.loc[g].to_numpy(), counts.loc[g].to_numpy()) for g in "AB"
    }
    direct = simultaneous_ratio_intervals(summaries)
    assert b["ratio_ci_low"] == pytest.approx(direct.low[1, 0])
    assert b["ratio_ci_high"] == pytest.approx(direct.high[1, 0])
    # ... and the aggregate's function (report charts, demographic page) gives it too
    from lfr_eval.metrics import ratio_to_lowest

    agg = ratio_to_lowest(summaries)
    assert agg.lowest[0] == "A"
    assert agg.ratio_low[1, 0] == pytest.approx(b["ratio_ci_low"])
    assert agg.ratio_high[1, 0] == pytest.approx(b["ratio_ci_high"])
    assert np.sqrt(b["ratio_ci_low"] * b["ratio_ci_high"]) == pytest.approx(b["ratio"])
    # other references, and no interval on request
    assert {"ratio_ci_low", "ratio_ci_high"} <= set(frame.ratio("fpir", None).columns)
    named = frame.ratio("fpir", "A").xs(0.5, level="threshold")
    assert named.loc["A", "ratio_ci_low"] == named.loc["A", "ratio_ci_high"] == 1.0
    assert "ratio_ci_low" not in frame.ratio("fpir", ci=False).columns


def test_ratio_interval_when_the_reference_rate_can_be_zero(searches: SearchSet) -> None:
    frame = IdentificationFrame(searches, [0.6, 0.64], ["ethnicity"], n_boot=200)
    r = frame.ratio("fpir", "lowest")
    assert {"ratio_ci_low", "ratio_ci_high"} <= set(r.columns)
    finite = r[np.isfinite(r["ratio"])]
    assert (finite["ratio_ci_low"] <= finite["ratio"]).all()
    assert (finite["ratio"] <= finite["ratio_ci_high"]).all()


def test_compare_group_rates_adjusts_for_all_pairs() -> None:
    from lfr_eval.metrics import compare_group_rates, summarise_clusters

    rng = np.random.default_rng(3)
    summaries = {}
    for g, rate in enumerate([0.01, 0.01, 0.01, 0.04]):
        trials = np.full(300, 10)
        summaries[f"g{g}"] = summarise_clusters(rng.binomial(trials, rate), trials)
    result = compare_group_rates(summaries)
    assert len(result.pairs) == 6
    top = result.pairs[0]
    assert top.group_a == "g3" and top.significant()
    for p in result.pairs:
        assert p.p_adjusted >= p.p_value  # adjusting never makes a pair look stronger
    # a group without errors keeps a variance: no infinite statistic
    summaries["g0"] = summarise_clusters(np.zeros(300), np.full(300, 10))
    assert np.isfinite(compare_group_rates(summaries).pair("g3", "g0").statistic)


def _frame_from_designs(designs, rng, labels=None) -> SearchSet:
    """Non-mated searches of simulated groups (one design each): person-level rates drawn as
    :mod:`lfr_eval.simulation` draws them; an error is a best score of 0.9, else 0.1."""
    from lfr_eval.simulation import draw_errors, draw_trials

    labels = labels or [f"g{g}" for g in range(len(designs))]
    best, subj, grp = [], [], []
    for g, design in enumerate(designs):
        trials = draw_trials(design, rng)
        errors = draw_errors(design, trials, 1, rng)[:, 0]
        for i, (n, e) in enumerate(zip(trials, errors, strict=True)):
            best += [0.9] * int(e) + [0.1] * int(n - e)
            subj += [f"{g}-{i}"] * int(n)
            grp += [labels[g]] * int(n)
    return SearchSet(
        watchlist_size=100,
        mate_scores=np.array([0.9]),
        mate_ranks=np.array([1]),
        mated_subjects=np.array(["m"]),
        non_mated_topk=np.array(best)[:, None],
        non_mated_subjects=np.array(subj),
        mated_groups=pd.DataFrame({"g": [labels[0]]}),
        non_mated_groups=pd.DataFrame({"g": grp}),
    )


def test_clustered_group_test_is_the_default_with_multiplicity_control() -> None:
    from lfr_eval.metrics import (
        MAX_Z_TEST,
        NULL_BOOTSTRAP_TEST,
        STUDENTIZED_PERMUTATION_TEST,
        bootstrap_compare_groups,
        compare_group_rates,
        permutation_compare_groups,
    )
    from lfr_eval.simulation import ClusterDesign

    rng = np.random.default_rng(3)
    designs = [ClusterDesign(150, m, 0.2, 0.02, True) for m in (5, 10, 20)]
    designs.append(ClusterDesign(5, 3, 0.2, 0.02))  # a small group
    s = _frame_from_designs(designs, rng, ["A", "B", "C", "unknown"])
    frame = IdentificationFrame(s, [0.5], ["g"])
    res = frame.group_test("fpir", 0.5, "A", "C", n_replicates=999)
    assert res.test == NULL_BOOTSTRAP_TEST and not res.independence_assumed
    assert res.family == ("A", "B", "C")  # small and unknown groups left out of the family
    assert res.p_unadjusted is not None and res.p_value >= res.p_unadjusted
    # the frame's test is the library function on each person's counts (same seed, same p)
    side = frame._sides["fpir"]
    errors, trials = {}, {}
    for g in ("A", "B", "C"):
        counts = side.clusters.subset(side.cluster_group == frame._code(g))
        errors[g], trials[g] = counts.errors_at(0), counts.trials
    direct = bootstrap_compare_groups(errors, trials, n_replicates=999).pair("A", "C")
    assert res.p_value == pytest.approx(direct.p_adjusted)
    assert abs(res.statistic) == pytest.approx(direct.statistic)
    # the permutation test over people stays available by name, with the same statistic
    by_permutation = frame.compare_groups("fpir", 0.5, test="permutation", n_permutations=999)
    assert by_permutation.method == STUDENTIZED_PERMUTATION_TEST
    same = permutation_compare_groups(errors, trials, n_permutations=999).pair("A", "C")
    assert by_permutation.pair("A", "C").p_adjusted == pytest.approx(same.p_adjusted)
    assert by_permutation.pair("A", "C").statistic == pytest.approx(direct.statistic)
    # the aggregate's test (clustered summaries only) stays available by name
    by_name = frame.compare_groups("fpir", 0.5, test="rao-scott")
    assert by_name.method == MAX_Z_TEST
    summaries = {g: frame._summary_at("fpir", frame._code(g), 0) for g in ("A", "B", "C")}
    assert by_name.pair("A", "C").p_adjusted == pytest.approx(
        compare_group_rates(summaries).pair("A", "C").p_adjusted
    )
    asked = frame.group_test("fpir", 0.5, "A", "unknown", n_replicates=199)
    assert asked.family is not None and "unknown" in asked.family
    with pytest.raises(MetricInputError, match="two-sided"):
        frame.group_test("fpir", 0.5, "A", "B", alternative="greater")


def test_frame_group_test_and_ratio_keep_their_size() -> None:
    """Four groups with equal rates, 2-40 searches per person: through the frame, the
    highest-vs-lowest clustered test and the ratio-to-lowest intervals call a difference in
    at most ~7% of 100 data sets (the raw-difference permutation test and the percentile
    bootstrap ratio did not keep size/power)."""
    from lfr_eval.simulation import ClusterDesign

    rng = np.random.default_rng(11)
    designs = [ClusterDesign(60, m, 0.2, 0.03, True) for m in (2, 5, 10, 40)]
    test_rej = ratio_rej = 0
    n = 100
    for r in range(n):
        frame = IdentificationFrame(_frame_from_designs(designs, rng), [0.5], ["g"])
        rates = frame.by_group.xs(("fpir", 0.5), level=("metric", "threshold"))["rate"]
        high, low = rates.idxmax(), rates.idxmin()
        test_rej += frame.group_test(
            "fpir", 0.5, high, low, seed=r, n_replicates=199
        ).significant()
        ratio = frame.ratio("fpir").xs(0.5, level="threshold")
        ratio_rej += bool(((ratio["ratio_ci_low"] > 1) | (ratio["ratio_ci_high"] < 1)).any())
    assert test_rej / n <= 0.07
    assert ratio_rej / n <= 0.07


def test_ratio_to_overall_is_clustered_and_simultaneous() -> None:
    """reference=None: the library function on the frame's own statistics (one function for
    the figure), the overall rate including groups left out of the family."""
    from lfr_eval.metrics import simultaneous_ratio_to_overall
    from lfr_eval.simulation import ClusterDesign

    rng = np.random.default_rng(5)
    designs = [ClusterDesign(120, m, 0.2, 0.03, True) for m in (4, 8, 16)]
    designs.append(ClusterDesign(4, 3, 0.2, 0.03))  # small
    frame = IdentificationFrame(
        _frame_from_designs(designs, rng, ["A", "B", "C", "D"]), [0.5], ["g"]
    )
    table = frame.ratio("fpir", None, include_small=False).xs(0.5, level="threshold")
    assert set(table.index) == {"A", "B", "C"}
    parts = {str(c): frame._summary_at("fpir", c, 0) for c in range(4)}
    direct = simultaneous_ratio_to_overall(parts, 0.95, family=["0", "1", "2"])
    np.testing.assert_allclose(table["ratio_ci_low"].to_numpy(), direct.low)
    np.testing.assert_allclose(table["ratio_ci_high"].to_numpy(), direct.high)
    overall = frame.overall.xs(("fpir", 0.5))["rate"]
    assert direct.overall_rate == pytest.approx(overall)
    assert np.all(direct.low < direct.ratio) and np.all(direct.ratio < direct.high)


def test_ratio_to_lowest_is_the_aggregates_function() -> None:
    """The frame and the demographic page (ratio_to_lowest on the aggregate's statistics)
    give the same intervals for the same family: small and unknown groups left out."""
    from lfr_eval.metrics import ratio_to_lowest
    from lfr_eval.simulation import ClusterDesign

    rng = np.random.default_rng(8)
    designs = [ClusterDesign(100, m, 0.2, 0.04, True) for m in (3, 6, 12)]
    designs += [ClusterDesign(100, 5, 0.2, 0.04, True), ClusterDesign(4, 3, 0.2, 0.04)]
    labels = ["A", "B", "C", "unknown", "E"]
    frame = IdentificationFrame(_frame_from_designs(designs, rng, labels), [0.5], ["g"])
    table = frame.ratio("fpir", include_small=False, include_unknown=False).xs(
        0.5, level="threshold"
    )
    assert list(table.index) == ["A", "B", "C"]
    summaries = {g: frame._summary_at("fpir", frame._code(g), 0) for g in ("A", "B", "C")}
    page = ratio_to_lowest(summaries, 0.95)
    np.testing.assert_allclose(table["ratio_ci_low"].to_numpy(), page.ratio_low[:, 0])
    np.testing.assert_allclose(table["ratio_ci_high"].to_numpy(), page.ratio_high[:, 0])
    assert (table["ratio_ci_method"] == page.method).all()


def test_typed_relabelling_draws_the_permutation_distribution() -> None:
    """The typed path (hypergeometric numbers of each (errors, searches) type per group) draws
    exactly the distribution of relabelling every person: checked against the full enumeration
    of one small stratum, and against the per-person path's p-values on clustered data."""
    from itertools import combinations

    from lfr_eval.metrics import permutation_compare_groups
    from lfr_eval.metrics._group_tests import _allocation_sums, _stratum_types
    from lfr_eval.simulation import ClusterDesign, draw_errors, draw_trials

    errors = np.array([0, 0, 0, 1, 1, 2, 3, 0], np.float64)
    trials = np.full(8, 3.0)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    typed, fixed = _stratum_types(errors, trials, labels, np.zeros(8, np.int64), 2)
    sums = _allocation_sums(typed, fixed, 40_000, np.random.default_rng(1))
    drawn = sums[:, 0, 0]  # group 0's errors in each relabelling
    exact = np.array([errors[list(c)].sum() for c in combinations(range(8), 3)])
    for value in np.unique(exact):
        p = float(np.mean(exact == value))
        assert abs(float(np.mean(drawn == value)) - p) < 4 * np.sqrt(p * (1 - p) / 40_000)
    np.testing.assert_allclose(sums[:, 1, :], [[9.0, 15.0]] * 40_000)  # searches never move
    np.testing.assert_allclose(sums[:, 0, :].sum(axis=1), errors.sum())

    rng = np.random.default_rng(5)
    e, t = {}, {}
    for g, m in enumerate((5, 10, 20)):
        design = ClusterDesign(300, m, 0.2, 0.02 * (1.5 if g == 0 else 1), True)
        t[f"g{g}"] = draw_trials(design, rng)
        e[f"g{g}"] = draw_errors(design, t[f"g{g}"], 1, rng)[:, 0]
    by_person = permutation_compare_groups(e, t, n_permutations=19_999, engine="people")
    by_type = permutation_compare_groups(e, t, n_permutations=19_999, engine="types")
    for pair in by_person.pairs:
        other = by_type.pair(pair.group_a, pair.group_b)
        assert abs(other.p_adjusted - pair.p_adjusted) < 0.012, (pair, other)
        assert other.statistic == pytest.approx(pair.statistic)


def test_subject_codes_are_the_string_unique_whatever_the_subject_type() -> None:
    """The frame's subject coding without a string per search (integers) gives exactly the
    arrays of ``np.unique(subjects.astype(str))``: the same labels in string order ("10"
    before "9") and the same codes, so every table is unchanged."""
    from lfr_eval.metrics._group_frame import _subject_codes

    rng = np.random.default_rng(0)
    cases = [
        rng.integers(-50, 2_000, 5_000),
        rng.integers(0, 2_000, 5_000).astype(np.uint32),
        np.array([9, 10, 100, 9, -1, 0, 10]),
        rng.integers(0, 300, 1_000).astype(str),
        np.array(["b", "a", 3, 3.0, None], dtype=object),
    ]
    for subjects in cases:
        labels, codes = _subject_codes(subjects)
        want_labels, want_codes = np.unique(subjects.astype(str), return_inverse=True)
        assert labels.dtype.kind == "U" and np.array_equal(labels, want_labels)
        assert np.array_equal(codes, want_codes.ravel())
