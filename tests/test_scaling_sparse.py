"""scale_fpir without the (searches x thresholds) tables (issue 10, item 5): the sparse
per-person histograms give the same figures as the dense per-search computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lfr_eval.protocols import FillerCounts, scale_fpir
from lfr_eval.protocols._npl import _clustered_bootstrap, _histogram_bootstrap
from lfr_eval.protocols._scaling import (
    clustered_scaled_interval,
    extrapolation_range,
    per_search_fpir,
    pooled_interval,
    search_value_histograms,
    within_fillers,
    zero_exponent,
)

THRESHOLDS = np.round(np.arange(0.2, 0.8001, 0.01), 4)


def _counts(seed: int = 3) -> FillerCounts:
    """300 searches of 100 people (3 each, correlated), 240 fillers in two groups."""
    rng = np.random.default_rng(seed)
    n, f = 300, 240
    person = np.repeat(rng.normal(0.0, 0.05, n // 3), 3)
    scores = rng.normal(0.35, 0.08, (n, f)) + person[:, None]
    scores[:, : f // 3] += 0.03  # one filler group draws more false matches
    return FillerCounts.from_scores(
        scores.astype(np.float32),
        THRESHOLDS,
        np.array([f"p{i // 3}" for i in range(n)], dtype=object),
        pd.DataFrame({"sex": np.where(np.arange(n) % 6 < 3, "female", "male")}),
        pd.DataFrame({"ethnicity": np.where(np.arange(f) < f // 3, "a", "b")}),
    )


def _dense(fc: FillerCounts, n: int, thresholds: np.ndarray, composition: dict) -> list:
    """The former dense computation: per-search values (searches x thresholds), per-person
    sums, the clustered interval; beyond F the pooled model's interval and the range."""
    counts, sizes, labels = fc.false_match_counts(thresholds, "ethnicity")
    shares = np.array([composition[label] for label in labels])
    values, _ = per_search_fpir(counts, sizes, shares, n)
    subjects = np.asarray(fc.search_subjects)
    exponent = zero_exponent(n, sizes, shares)
    out = []
    for mask in (np.ones(fc.n_searches, bool), fc.search_groups["sex"].to_numpy() == "female"):
        kg = clustered_scaled_interval(values[mask], subjects[mask], exponent)
        if not within_fillers(n, sizes, shares):
            pooled = pooled_interval(counts[mask], sizes, shares, n, subjects[mask], exponent)
            out.append((extrapolation_range(kg, pooled), pooled))
        else:
            out.append((kg, None))
    return out


@pytest.mark.parametrize("n", [60, 160, 240, 2_400])  # within, at F's limit, beyond
def test_sparse_scale_fpir_equals_the_dense_computation(n: int) -> None:
    fc = _counts()
    composition = {"a": 0.5, "b": 0.5}
    # thresholds in a shuffled order: rows come back in the caller's order
    thresholds = np.random.default_rng(0).permutation(THRESHOLDS)
    table = scale_fpir(
        fc, [n], thresholds, attribute="ethnicity", composition=composition, by="sex"
    ).table
    for (kg, pooled), group in zip(_dense(fc, n, thresholds, composition), ["all", "female"]):
        rows = table[(table["group"] == group) & (table["method"] == "analytic")]
        np.testing.assert_allclose(rows["threshold"], thresholds)
        for column, dense in (("fpir", kg.fpir), ("lower", kg.lower), ("upper", kg.upper),
                              ("upper_bound", kg.upper_bound)):  # fmt: skip
            np.testing.assert_allclose(rows[column], dense, rtol=1e-9, atol=1e-13, err_msg=column)
        assert list(rows["interval"]) == list(kg.method)
        if pooled is not None:
            high = table[(table["group"] == group) & (table["method"] == "analytic-pooled")]
            np.testing.assert_allclose(high["fpir"], pooled.fpir, rtol=1e-9, atol=1e-13)
            np.testing.assert_allclose(high["upper"], pooled.upper, rtol=1e-9, atol=1e-13)
    # the histograms hold far fewer entries than searches x thresholds
    counts, sizes, _ = fc.false_match_counts(THRESHOLDS, "ethnicity")
    histogram = search_value_histograms(
        iter([(0, counts)]), fc.search_subjects, [np.ones(fc.n_searches, bool)],
        {"n": lambda c: per_search_fpir(c, sizes, np.array([0.5, 0.5]), n)[0]}, THRESHOLDS,
    )[("n", 0)]  # fmt: skip
    assert histogram.bins.nnz < 0.5 * fc.n_searches * len(THRESHOLDS)


def test_sparse_bootstrap_equals_the_dense_product() -> None:
    fc = _counts()
    counts, sizes, _ = fc.false_match_counts(THRESHOLDS)
    values, _ = per_search_fpir(counts, sizes, np.array([1.0]), 100)
    subjects = np.asarray(fc.search_subjects).astype(str)
    # the dense reference: per-person sums (people x thresholds) and the weights' product
    codes, inverse = np.unique(subjects, return_inverse=True)
    sums = np.zeros((len(codes), values.shape[1]))
    np.add.at(sums, inverse, values)
    sizes_i = np.bincount(inverse).astype(np.float64)
    weights = np.random.default_rng(7).multinomial(len(codes), np.full(len(codes), 1 / len(codes)),
                                                   size=200)  # fmt: skip
    means = (weights @ sums) / np.maximum(weights @ sizes_i, 1.0)[:, None]
    dense = np.quantile(means, 0.025, axis=0), np.quantile(means, 0.975, axis=0)
    sparse = _clustered_bootstrap(values, subjects, 200, 0.95, np.random.default_rng(7))
    np.testing.assert_allclose(sparse, dense, rtol=1e-10, atol=1e-14)
    # replicates drawn a few at a time are the same replicates
    histogram = search_value_histograms(
        iter([(0, values[:, None, :])]), subjects, [np.ones(len(values), bool)],
        {"v": lambda c: c[:, 0, :]}, THRESHOLDS,
    )[("v", 0)]  # fmt: skip
    blocks = _histogram_bootstrap(histogram, 200, 0.95, np.random.default_rng(7), 8 * 100 * 7)
    np.testing.assert_allclose(blocks, dense, rtol=1e-10, atol=1e-14)
    # and scale_fpir's bootstrap rows are those of the same draws
    table = scale_fpir(fc, [100], THRESHOLDS, interval="subject-bootstrap", n_boot=200,
                       seed=7).table  # fmt: skip
    np.testing.assert_allclose(table["lower"], np.where(values.sum(0) > 0, dense[0], 0.0),
                               rtol=1e-10, atol=1e-14)  # fmt: skip


def test_composite_summary_over_blocks_of_people_equals_the_dense_one() -> None:
    """Beyond F the pooled model's interval rests on each person's composite FMR, summarised
    a block of whole people at a time: the same statistics as from the dense sums."""
    from lfr_eval.metrics import summarise_clusters
    from lfr_eval.protocols._npl import _composite_summaries
    from lfr_eval.protocols._scaling import SearchClusters, composite_fmr, person_sums

    fc = _counts()
    index = np.arange(len(THRESHOLDS))
    counts, sizes, _ = fc.false_match_counts(THRESHOLDS, "ethnicity")
    shares = np.array([0.3, 0.7])
    values = composite_fmr(counts, sizes, shares)
    female = fc.search_groups["sex"].to_numpy() == "female"
    clusters = SearchClusters.of(fc.search_subjects, np.where(female, 0, 1))
    subjects = np.asarray(fc.search_subjects)
    masks = [np.ones(fc.n_searches, bool), female, ~female]
    rates = np.stack([values[mask].mean(axis=0) for mask in masks])
    for block in (7, 4096):  # many blocks (cut where a person ends), and one
        got = _composite_summaries(fc, "ethnicity", index, sizes, shares, clusters, rates, block)
        for (summary, largest), mask in zip(got, masks):
            sums, trials = person_sums(values[mask], subjects[mask])
            dense = summarise_clusters(sums, trials)
            np.testing.assert_allclose(summary.errors, dense.errors, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(summary.variance, dense.variance, rtol=1e-9, atol=1e-20)
            np.testing.assert_allclose(summary.df, dense.df, rtol=1e-9)
            assert summary.n_subjects == dense.n_subjects
            assert summary.effective_people == pytest.approx(dense.effective_people)
            np.testing.assert_allclose(largest, sums.max(axis=0), rtol=1e-12)
            # the scaled envelope's floor: the lowest per-person composite FMR
            assert summary.lowest_rate is not None
            np.testing.assert_allclose(summary.lowest_rate, dense.lowest_rate, rtol=1e-12)
