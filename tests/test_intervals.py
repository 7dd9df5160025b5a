"""Binomial intervals and the subject bootstrap: exact values and coverage by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lfr_eval.metrics import (
    MetricInputError,
    SubjectCounts,
    bootstrap_rates,
    clopper_pearson,
    count_at_or_above_by_subject,
    estimate_rate,
    subject_bootstrap_interval,
    wilson,
)
from lfr_eval.metrics._intervals import bootstrap_weights

CASES = [(0, 10), (1, 10), (5, 10), (10, 10), (3, 1000), (7, 40_000), (0, 18_000)]


@pytest.mark.parametrize(("k", "n"), CASES)
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_intervals_match_scipy_binomtest(k: int, n: int, confidence: float) -> None:
    res = stats.binomtest(k, n)
    exact = res.proportion_ci(confidence, method="exact")
    low, high = clopper_pearson(k, n, confidence)
    assert (float(low), float(high)) == pytest.approx((exact.low, exact.high), rel=1e-7, abs=1e-15)
    wil = res.proportion_ci(confidence, method="wilson")
    low, high = wilson(k, n, confidence)
    assert (float(low), float(high)) == pytest.approx((wil.low, wil.high), rel=1e-7, abs=1e-12)


@pytest.mark.parametrize(("k", "n"), CASES)
def test_one_sided_bounds_match_scipy(k: int, n: int) -> None:
    up = stats.binomtest(k, n, alternative="less").proportion_ci(0.95, method="exact")
    low, high = clopper_pearson(k, n, 0.95, sided="upper")
    assert float(low) == 0.0 and float(high) == pytest.approx(up.high, rel=1e-7)
    lo = stats.binomtest(k, n, alternative="greater").proportion_ci(0.95, method="exact")
    low, high = clopper_pearson(k, n, 0.95, sided="lower")
    assert float(high) == 1.0 and float(low) == pytest.approx(lo.low, rel=1e-7, abs=1e-15)


def test_rule_of_three_and_published_figures() -> None:
    _, high = clopper_pearson(0, 30_000, sided="upper")
    assert float(high) == pytest.approx(3 / 30_000, rel=0.01)
    # domain brief: Met 10 false alerts in 3,147,436 faces -> 1.5e-6 to 5.8e-6
    est = estimate_rate(10, 3_147_436)
    assert f"{est.ci_low:.1e} {est.ci_high:.1e}" == "1.5e-06 5.8e-06"
    assert est.method == "clopper-pearson" and not est.insufficient_data


def test_vectorised_and_edge_cases() -> None:
    low, high = clopper_pearson([0, 2, 5], 5)
    assert low[0] == 0 and high[2] == 1 and low.shape == (3,)
    empty = estimate_rate(0, 0)
    assert empty.insufficient_data and np.isnan(empty.rate)
    assert (empty.ci_low, empty.ci_high) == (0.0, 1.0)
    with pytest.raises(MetricInputError, match="0 <= errors <= trials"):
        clopper_pearson(3, 2)
    with pytest.raises(MetricInputError, match="confidence"):
        wilson(1, 2, confidence=95)
    with pytest.raises(MetricInputError, match="sided"):
        wilson(1, 2, sided="both")


def _coverage(method, p: float, n: int, reps: int, rng: np.random.Generator) -> float:
    k = rng.binomial(n, p, size=reps)
    low, high = method(k, n, 0.95)
    return float(np.mean((low <= p) & (p <= high)))


def test_binomial_coverage_by_simulation() -> None:
    rng = np.random.default_rng(2024)
    reps = 20_000
    se = np.sqrt(0.95 * 0.05 / reps)
    cp = [
        _coverage(clopper_pearson, p, n, reps, rng) for p, n in [(0.01, 500), (0.1, 80), (0.3, 40)]
    ]
    wi = [_coverage(wilson, p, n, reps, rng) for p, n in [(0.01, 500), (0.1, 80), (0.3, 40)]]
    # Clopper-Pearson is exact: never below nominal (beyond simulation error)
    assert min(cp) >= 0.95 - 3 * se
    # Wilson is close to nominal on average, sometimes a little below
    assert abs(np.mean(wi) - 0.95) < 0.015


# ------------------------------------------------------------------------ subject bootstrap


def test_count_by_subject_hand_case() -> None:
    subjects, trials, hits = count_at_or_above_by_subject(
        ["b", "a", "b", "a", "c"], np.array([0.5, 0.7, 0.9, -np.inf, 0.6]), [0.8, 0.5, 0.6]
    )
    assert subjects.tolist() == ["a", "b", "c"] and trials.tolist() == [2, 2, 1]
    # thresholds in the given order: 0.8, 0.5, 0.6
    assert hits.tolist() == [[0, 1, 1], [1, 2, 1], [0, 1, 1]]


def test_bootstrap_is_the_matrix_form_of_resampling_subjects() -> None:
    rng = np.random.default_rng(5)
    errors = rng.integers(0, 4, size=(30, 3))
    trials = errors.max(axis=1) + rng.integers(1, 3, size=30)
    counts = SubjectCounts(np.arange(30).astype(str), trials, errors, np.array([0.1, 0.2, 0.3]))
    reps = bootstrap_rates(counts, 50, seed=9)
    weights = bootstrap_weights(30, 50, np.random.default_rng(9))
    assert weights.sum(axis=1).tolist() == [30] * 50
    # replicate b by explicit resampling: draw subjects, add up their counts
    draws = np.random.default_rng(9).integers(0, 30, size=(50, 30))
    explicit = errors[draws].sum(axis=1) / trials[draws].sum(axis=1)[:, None]
    np.testing.assert_allclose(reps, explicit, rtol=1e-6)


def _clustered_sample(rng, n_subjects: int, per_subject: int, mean: float, concentration: float):
    """Each subject has its own error probability (Beta); searches of a subject share it."""
    a, b = mean * concentration, (1 - mean) * concentration
    p = rng.beta(a, b, n_subjects)
    errors = rng.binomial(per_subject, p)
    return errors, np.full(n_subjects, per_subject)


def test_subject_bootstrap_covers_clustered_rate_where_binomial_does_not() -> None:
    rng = np.random.default_rng(77)
    true_rate, sims = 0.05, 300
    boot_hits = cp_hits = 0
    for i in range(sims):
        errors, trials = _clustered_sample(rng, 150, 8, true_rate, concentration=2.0)
        counts = SubjectCounts(np.arange(150), trials, errors[:, None], np.array([0.5]))
        low, high = subject_bootstrap_interval(counts, 0.95, n_boot=400, seed=i)
        boot_hits += bool(low[0] <= true_rate <= high[0])
        cl, ch = clopper_pearson(errors.sum(), trials.sum())
        cp_hits += bool(cl <= true_rate <= ch)
    se = np.sqrt(0.95 * 0.05 / sims)
    assert abs(boot_hits / sims - 0.95) < 3 * se + 0.015  # percentile bootstrap: near nominal
    assert cp_hits / sims < 0.85  # searches treated as independent: far too narrow


def test_subject_bootstrap_is_never_zero_width() -> None:
    """No errors (or errors everywhere, or one subject, or every subject at one rate): every
    replicate is equal, so the percentile interval would have zero width; the clustered
    (Korn-Graubard) interval is used, with the no-error bound counted by people."""
    from lfr_eval.metrics import SubjectCounts, bootstrap_degenerate

    subjects = np.array(["a", "b", "c", "d"])
    trials = np.array([50, 50, 50, 50])
    # threshold 0: no errors; threshold 1: errors in every search; threshold 2: ordinary;
    # threshold 3: every subject at the same rate 0.1
    errors = np.array([[0, 50, 5, 5], [0, 50, 0, 5], [0, 50, 9, 5], [0, 50, 1, 5]])
    counts = SubjectCounts(subjects, trials, errors, np.array([0.9, -1.0, 0.5, 0.6]))
    assert bootstrap_degenerate(counts).tolist() == [True, True, False, True]
    low, high = subject_bootstrap_interval(counts, 0.95, n_boot=300, sided="upper")
    assert low[0] == 0 and high[0] == pytest.approx(1 - 0.05 ** (1 / 4))  # ~3 / people
    low2, high2 = subject_bootstrap_interval(counts, 0.95, n_boot=300)
    cp_low, cp_high = clopper_pearson([0, 4], 4)
    assert high2[0] == pytest.approx(cp_high[0]) and high2[0] > 0
    assert low2[1] == pytest.approx(cp_low[1]) and low2[1] < 1 and high2[1] == 1
    assert 0 < low2[2] < 15 / 200 < high2[2]  # the bootstrap proper where replicates differ
    assert low2[3] < 0.1 < high2[3]  # same rate everywhere: not 0.1 - 0.1
    one = counts.subset(np.array([True, False, False, False]))
    low3, high3 = subject_bootstrap_interval(one, 0.95, n_boot=100)
    assert low3[2] < 0.1 < high3[2]  # a single subject: not the 0.1 - 0.1 of its replicates


# ------------------------------------------------------- the bootstrap at scale (sparse, chunked)


def _old_dense_bootstrap_rates(errors, trials, n_boot, seed):
    """The subject bootstrap as it was before the sparse histogram: one (B, s) @ (s, m)."""
    rng = np.random.default_rng(seed)
    weights = bootstrap_weights(errors.shape[0], n_boot, rng)
    dtype = np.float32 if trials.sum() * 4 < 2**24 else np.float64
    e = weights.astype(dtype) @ errors.astype(dtype)
    t = weights.astype(np.float64) @ trials.astype(np.float64)
    return e.astype(np.float64) / t[:, None]


def _crowd(rng, n_searches=3000, n_subjects=700, m=40):
    subjects = rng.integers(0, n_subjects, n_searches).astype(str)
    scores = rng.normal(0.5, 0.1, n_searches)
    scores[rng.random(n_searches) < 0.02] = -np.inf
    thresholds = rng.permutation(np.round(np.linspace(0.2, 0.8, m), 6))  # any order
    return subjects, scores, thresholds


@pytest.mark.parametrize("error_is_hit", [True, False])
def test_histogram_holds_the_dense_counts(error_is_hit: bool) -> None:
    from lfr_eval.metrics import subject_histogram

    subjects, scores, thresholds = _crowd(np.random.default_rng(3))
    hist = subject_histogram(subjects, scores, thresholds, error_is_hit=error_is_hit)
    names, trials, hits = count_at_or_above_by_subject(subjects, scores, thresholds)
    errors = hits if error_is_hit else trials[:, None] - hits
    assert hist.bins.nnz <= len(scores)  # O(searches), not subjects x thresholds
    dense = hist.to_counts()
    assert np.array_equal(dense.subjects, names) and np.array_equal(dense.trials, trials)
    assert np.array_equal(dense.errors, errors)
    assert np.array_equal(hist.error_totals(), errors.sum(axis=0))
    assert np.array_equal(hist.errors_at(7), errors[:, 7])
    sel = np.arange(len(names)) % 3 == 0
    assert np.array_equal(hist.subset(sel).to_counts().errors, errors[sel])


def test_sparse_chunked_bootstrap_is_identical_to_the_dense_product(monkeypatch) -> None:
    """Same seed, same replicates, bit for bit, in one chunk or many (the draws keep order)."""
    from lfr_eval.metrics import _intervals, subject_histogram

    subjects, scores, thresholds = _crowd(np.random.default_rng(4))
    hist = subject_histogram(subjects, scores, thresholds)
    dense = hist.to_counts()
    old = _old_dense_bootstrap_rates(dense.errors, dense.trials, 97, seed=11)
    assert np.array_equal(bootstrap_rates(hist, 97, seed=11), old)
    monkeypatch.setattr(_intervals, "BOOTSTRAP_CHUNK_BYTES", 8 * dense.n_subjects * 10)
    assert np.array_equal(bootstrap_rates(hist, 97, seed=11), old)  # 10 replicates a chunk
    assert np.array_equal(bootstrap_rates(dense, 97, seed=11), old)
    low, high = subject_bootstrap_interval(hist, 0.9, n_boot=97, seed=11)
    low_d, high_d = subject_bootstrap_interval(dense, 0.9, n_boot=97, seed=11)
    assert np.array_equal(low, low_d) and np.array_equal(high, high_d)


def test_clustered_summary_in_blocks_matches_one_pass(monkeypatch) -> None:
    from lfr_eval.metrics import (
        _intervals,
        bootstrap_degenerate,
        subject_histogram,
        summarise_clusters,
        summarise_subjects,
    )

    subjects, scores, thresholds = _crowd(np.random.default_rng(5))
    hist = subject_histogram(subjects, scores, thresholds, error_is_hit=False)
    dense = hist.to_counts()
    whole = summarise_clusters(dense.errors, dense.trials)
    monkeypatch.setattr(_intervals, "SUMMARY_CHUNK_CELLS", 50 * len(thresholds))  # 50 people
    blocks = summarise_subjects(hist)
    for field in ("errors", "variance", "df"):
        np.testing.assert_allclose(getattr(blocks, field), getattr(whole, field), rtol=1e-12)
    assert (blocks.trials, blocks.n_subjects) == (whole.trials, whole.n_subjects)
    assert blocks.effective_people == pytest.approx(whole.effective_people, rel=1e-12)
    assert np.array_equal(bootstrap_degenerate(hist), bootstrap_degenerate(dense))
    never = subject_histogram(subjects, np.full(len(scores), -np.inf), thresholds)
    assert bootstrap_degenerate(never).all()  # no errors anywhere: every replicate is 0
    # later subjects differ from the first block's common rate (0.5, 0 or 1) or do not
    errors = np.ones((120, 5), np.int64)
    errors[:, 2:] = 0
    errors[:, 4] = 2
    errors[-1, 1], errors[-1, 2] = 0, 1  # the last subject only
    trials = np.full(120, 2)
    odd = SubjectCounts(np.arange(120), trials, errors, np.arange(5.0))
    with np.errstate(invalid="ignore"):
        rates = errors / trials[:, None]
    reference = np.all(np.isclose(rates, rates[:1], rtol=0.0, atol=1e-12), axis=0)
    assert reference.tolist() == [True, False, False, True, True]
    assert bootstrap_degenerate(odd).tolist() == reference.tolist()


def test_bootstrap_memory_does_not_grow_with_subjects_times_thresholds() -> None:
    """200,000 crowd faces at 1,000 thresholds: the dense counts alone would be 1.6 GB."""
    import tracemalloc

    from lfr_eval.metrics import subject_histogram, summarise_subjects

    rng = np.random.default_rng(6)
    n, m = 200_000, 1000
    tracemalloc.start()
    hist = subject_histogram(np.arange(n), rng.normal(0.4, 0.1, n), np.linspace(0, 1, m))
    reps = bootstrap_rates(hist, 20, seed=0)
    summarise_subjects(hist)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert reps.shape == (20, m)
    assert peak < 250 * 2**20, f"peak {peak / 2**20:.0f} MiB"
