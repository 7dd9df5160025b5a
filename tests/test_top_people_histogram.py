"""The envelope's top people from a sparse histogram (``histogram_top_people``) against a brute
force ranking with an explicit tie rule, and against the block path it replaced."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

import lfr_eval.metrics._intervals as intervals
from lfr_eval.metrics import subject_histogram, summarise_subjects
from lfr_eval.metrics._clustered import MONOTONE_TOP_PEOPLE, monotone_upper_bound, top_people
from lfr_eval.metrics._top_people import histogram_top_people


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random people, searches and thresholds; every third data set is full of ties (scores
    on a 0.1 grid, thresholds on the same grid, repeat thresholds, unsorted)."""
    rng = np.random.default_rng(seed)
    people = int(rng.integers(1, 120))
    n = int(rng.integers(1, 1500))
    subjects = rng.integers(0, people, n) * 7 + 3  # not 0..s-1: codes are positions
    if seed % 3 == 0:
        scores = np.round(rng.random(n), 1)
        thresholds = rng.permutation(np.round(rng.random(int(rng.integers(1, 12))), 1))
    else:
        scores = rng.beta(1, 20, n) + 0.3 * (subjects % 5 == 0)
        thresholds = rng.permutation(rng.random(int(rng.integers(1, 30))))
    scores[rng.random(n) < 0.05] = -np.inf  # searches that reach no threshold
    return subjects, scores, thresholds


def _brute_force(errors: np.ndarray, trials: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per threshold: the top k by (errors, higher rate) and by (rate, more errors), each with
    ties taken in person order, their union by person, listed most errors first (ties: fewer
    searches), then 0 / 0 slots."""
    s, m = errors.shape
    out_e, out_n = np.zeros((2 * k, m)), np.zeros((2 * k, m))
    for t in range(m):
        people = [i for i in range(s) if errors[i, t] > 0]
        e = {i: int(errors[i, t]) for i in people}
        n = {i: int(trials[i]) for i in people}
        by_errors = sorted(people, key=lambda i: (-e[i], Fraction(-e[i], n[i]), i))[:k]
        by_rate = sorted(people, key=lambda i: (Fraction(-e[i], n[i]), -e[i], i))[:k]
        chosen = sorted(set(by_errors) | set(by_rate), key=lambda i: (-e[i], n[i]))
        for slot, i in enumerate(chosen):
            out_e[slot, t], out_n[slot, t] = e[i], n[i]
    return out_e, out_n


@pytest.mark.parametrize("error_is_hit", [True, False])
def test_histogram_top_people_is_the_brute_force_ranking(error_is_hit: bool) -> None:
    for seed in range(40):
        subjects, scores, thresholds = _data(seed)
        hist = subject_histogram(subjects, scores, thresholds, error_is_hit=error_is_hit)
        dense = hist.to_counts()
        for k in (MONOTONE_TOP_PEOPLE, 2):
            want = _brute_force(dense.errors, dense.trials, k)
            for cells in (None, 1, 5, 97):  # one threshold at a time .. all at once
                got = histogram_top_people(hist, k, block_cells=cells)
                np.testing.assert_array_equal(got[0], want[0], err_msg=f"seed {seed} k {k}")
                np.testing.assert_array_equal(got[1], want[1], err_msg=f"seed {seed} k {k}")


def test_histogram_top_people_against_the_old_block_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The block path (``top_people`` on every block, argpartition) keeps the same pairs; where
    its two rankings break a tie differently it keeps an extra copy of a tied pair, and the
    envelope it feeds gives the same bound. Every other statistic of the summary is identical,
    in one block and in many."""
    extra_copies = 0
    for seed in range(24):
        subjects, scores, thresholds = _data(seed)
        for error_is_hit in (True, False):
            hist = subject_histogram(subjects, scores, thresholds, error_is_hit=error_is_hit)
            dense = hist.to_counts()
            old_e, old_n = top_people(dense.errors, dense.trials)
            new_e, new_n = histogram_top_people(hist)
            for t in range(thresholds.shape[0]):
                old = Counter(zip(old_e[:, t][old_e[:, t] > 0], old_n[:, t][old_e[:, t] > 0]))
                new = Counter(zip(new_e[:, t][new_e[:, t] > 0], new_n[:, t][new_e[:, t] > 0]))
                assert set(old) == set(new)
                assert all(new[p] <= old[p] for p in new)
                extra_copies += old != new
            for chunk in (intervals.SUMMARY_CHUNK_CELLS, 40):
                monkeypatch.setattr(intervals, "SUMMARY_CHUNK_CELLS", chunk)
                fast = summarise_subjects(hist)
                block = summarise_subjects(hist, block_top_people=True)
                for name in ("errors", "variance", "df"):
                    np.testing.assert_array_equal(getattr(fast, name), getattr(block, name))
                assert fast.effective_people == block.effective_people
                assert fast.trials_fourth_moment == block.trials_fourth_moment
                np.testing.assert_array_equal(
                    monotone_upper_bound(fast).ci_high, monotone_upper_bound(block).ci_high
                )
    assert extra_copies > 0  # the ties where the two paths differ were exercised


def test_dense_chunks_are_the_reverse_cumulative_counts() -> None:
    """The forward-cumulative blocks give the counts of ``count_at_or_above_by_subject``."""
    from lfr_eval.metrics._intervals import count_at_or_above_by_subject

    for seed in range(6):
        subjects, scores, thresholds = _data(seed)
        _, trials, hits = count_at_or_above_by_subject(subjects, scores, thresholds)
        for error_is_hit, want in ((True, hits), (False, trials[:, None] - hits)):
            hist = subject_histogram(subjects, scores, thresholds, error_is_hit=error_is_hit)
            got = np.concatenate([e for e, _ in hist.dense_chunks(7)], axis=0)
            np.testing.assert_array_equal(got, want)


def test_value_histograms_keep_the_block_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A histogram of per-search values (float sums: P(alert) at N, composite FMRs) is not
    counted by runs of whole-number errors: its summary is the block path's, and the runs'
    function refuses it rather than truncating the values."""
    from scipy.sparse import csr_array

    from lfr_eval.metrics import MetricInputError
    from lfr_eval.protocols._scaling import SearchValueHistogram

    rng = np.random.default_rng(4)
    people, m = 60, 6
    trials = rng.integers(1, 9, people)
    dense = np.zeros((people, m + 1))
    dense[:, 1:] = rng.random((people, m)) * (rng.random((people, m)) < 0.3)
    dense *= trials[:, None] / np.maximum(dense.sum(axis=1, keepdims=True), 1e-9) * 0.7
    hist = SearchValueHistogram(
        np.arange(people), trials, csr_array(dense), np.linspace(0.1, 0.6, m), True
    )
    for chunk in (intervals.SUMMARY_CHUNK_CELLS, 30):
        monkeypatch.setattr(intervals, "SUMMARY_CHUNK_CELLS", chunk)
        got = summarise_subjects(hist)
        want = summarise_subjects(hist, block_top_people=True)
        np.testing.assert_array_equal(got.top_errors, want.top_errors)
        np.testing.assert_array_equal(got.top_trials, want.top_trials)
        assert np.any((got.top_errors % 1) != 0)  # fractional sums kept, not truncated
    with pytest.raises(MetricInputError, match="whole-number"):
        histogram_top_people(hist)
