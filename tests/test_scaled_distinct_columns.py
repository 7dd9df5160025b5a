"""The scaled interval computes each distinct threshold column once (issue 10, evaluation time).

On a fine threshold grid most columns of a small evaluation are the same (every threshold above
the highest impostor score; between two scores the data hold): a 400-image LFW run spent 58 s
of its 66 s in the scaling's envelope, 63 M beta quantiles of which 2.4 M distinct. The figures
must be exactly those of computing every column: same bytes, every field.
"""

from __future__ import annotations

import numpy as np
import pytest

from lfr_eval.metrics import summarise_clusters
from lfr_eval.metrics._clustered import distinct_columns
from lfr_eval.protocols._scaling import (
    _interval_at_columns,
    interval_from_summary,
    largest_person_sum,
)

FIELDS = ("fpir", "lower", "upper", "upper_bound", "method", "design_effect")


def test_distinct_columns_first_seen_and_inverse() -> None:
    a = np.array([0.0, 1.0, 0.0, 2.0, 1.0, np.nan, np.nan, -0.0])
    b = np.array([[5.0, 5.0, 5.0, 5.0, 5.0, 1.0, 1.0, 5.0]])
    keep, inverse = distinct_columns(a, None, b)
    # NaN matches NaN (same bytes); -0.0 is not 0.0 (never a false match)
    assert keep.tolist() == [0, 1, 3, 5, 7]
    assert inverse.tolist() == [0, 1, 0, 2, 1, 3, 3, 4]
    assert np.array_equal(keep[inverse], [0, 1, 0, 3, 1, 5, 5, 7])
    # a second array tells columns apart that the first does not
    keep2, _ = distinct_columns(a, np.arange(8.0))
    assert keep2.tolist() == list(range(8))


def test_distinct_columns_empty() -> None:
    keep, inverse = distinct_columns(np.zeros(0), None)
    assert keep.shape == (0,) and inverse.shape == (0,)
    keep, inverse = distinct_columns(None)
    assert keep.shape == (0,) and inverse.shape == (0,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interval_equals_every_column_computed(seed: int) -> None:
    rng = np.random.default_rng(seed)
    people, m = 40, 60
    trials = rng.integers(1, 12, people).astype(float)
    # per-person sums of P(alert) falling with the threshold, then repeated columns and a tail
    # of zeros, as a fine grid over few impostor scores gives
    base = rng.gamma(0.3, 1.0, (people, 12)) * trials[:, None] * 0.05
    base = np.sort(base, axis=1)[:, ::-1]
    sums = np.concatenate([base[:, rng.integers(0, 12, m - 10)], np.zeros((people, 10))], 1)
    sums = np.minimum(sums, trials[:, None])
    # two columns with the same total but not the same people: distinct figures
    sums[:, 0], sums[:, 1] = 0.0, 0.0
    sums[0, 0], sums[1, 1], sums[2, 1] = 1.0, 0.5, 0.5
    summary, largest = summarise_clusters(sums, trials), largest_person_sum(sums)
    keep, _ = distinct_columns(summary.errors, summary.variance, summary.top_errors)
    assert keep.shape[0] < m  # the case the shortcut is for
    assert summary.errors[0] == summary.errors[1] and summary.variance[0] != summary.variance[1]
    for envelope in (True, False):
        fast = interval_from_summary(summary, 0.3, 0.95, largest, envelope=envelope)
        full = _interval_at_columns(
            summary,
            0.3,
            0.95,
            largest,
            two_sided_ends="jeffreys",
            two_sided_df="satterthwaite-lower",
            raise_two_sided=False,
            envelope=envelope,
        )
        for field in FIELDS:
            got, want = getattr(fast, field), getattr(full, field)
            assert got.shape == want.shape == (m,)
            if got.dtype == object:
                assert got.tolist() == want.tolist(), field
            else:
                assert got.tobytes() == want.tobytes(), field
        assert fast.n_searches == full.n_searches and fast.n_subjects == full.n_subjects
