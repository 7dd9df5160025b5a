"""Verification rates on hand-computed cases and against scikit-learn's curves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import det_curve as sk_det_curve
from sklearn.metrics import roc_curve as sk_roc_curve

from lfr_eval.metrics import (
    MetricInputError,
    det_curve,
    eer,
    eer_threshold,
    fmr,
    fmr_estimate,
    fnmr,
    fnmr_estimate,
    roc_points,
)

GENUINE = np.array([0.5, 0.6, 0.7, 0.8])
IMPOSTOR = np.array([0.1, 0.2, 0.3, 0.6])


def test_fmr_fnmr_hand_case() -> None:
    np.testing.assert_allclose(fmr(IMPOSTOR, [0.0, 0.2, 0.6, 0.61]), [1, 0.75, 0.25, 0])
    np.testing.assert_allclose(fnmr(GENUINE, [0.0, 0.6, 0.61, 0.9]), [0, 0.25, 0.5, 1])
    assert fmr_estimate(IMPOSTOR, 0.6)[0].errors == 1
    assert fnmr_estimate(GENUINE, 0.61)[0].errors == 2


def test_eer_hand_case() -> None:
    e = eer(GENUINE, IMPOSTOR)
    # at 0.6: FMR 1/4 (0.6 >= 0.6), FNMR 1/4 (0.5 < 0.6): equal
    assert (e.threshold, e.fmr, e.fnmr, e.eer) == (0.6, 0.25, 0.25, 0.25)
    assert eer_threshold(GENUINE, IMPOSTOR) == 0.6
    perfect = eer([0.8, 0.9], [0.1, 0.2])
    assert perfect.eer == 0.0 and 0.2 < perfect.threshold <= 0.8


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    # rounded so that ties between and within classes occur, as with real quantised scores
    gen = np.round(rng.normal(0.6, 0.12, 700), 2)
    imp = np.round(rng.normal(0.15, 0.1, 3000), 2)
    return gen, imp


def test_det_curve_agrees_with_sklearn(scores) -> None:
    gen, imp = scores
    y = np.r_[np.ones(gen.size), np.zeros(imp.size)]
    s = np.r_[gen, imp]
    fpr, fnr, thr = sk_det_curve(y, s)
    np.testing.assert_allclose(fmr(imp, thr), fpr, atol=1e-12)
    np.testing.assert_allclose(fnmr(gen, thr), fnr, atol=1e-12)
    ours = det_curve(gen, imp)
    assert np.all(np.diff(ours.thresholds) > 0)
    # every sklearn point is one of ours
    idx = np.searchsorted(ours.thresholds, thr)
    np.testing.assert_allclose(ours.fmr[idx], fpr, atol=1e-12)
    np.testing.assert_allclose(ours.fnmr[idx], fnr, atol=1e-12)


def test_roc_agrees_with_sklearn(scores) -> None:
    gen, imp = scores
    y = np.r_[np.ones(gen.size), np.zeros(imp.size)]
    fpr, tpr, thr = sk_roc_curve(y, np.r_[gen, imp], drop_intermediate=False)
    finite = np.isfinite(thr)
    ours_fpr, ours_tpr = roc_points(gen, imp, thr[finite])
    np.testing.assert_allclose(ours_fpr, fpr[finite], atol=1e-12)
    np.testing.assert_allclose(ours_tpr, tpr[finite], atol=1e-12)


def test_eer_near_crossing_of_sklearn_curve(scores) -> None:
    gen, imp = scores
    e = eer(gen, imp)
    fpr, fnr, _ = sk_det_curve(np.r_[np.ones(gen.size), np.zeros(imp.size)], np.r_[gen, imp])
    assert np.min(np.abs(fpr - fnr)) == pytest.approx(abs(e.fmr - e.fnmr), abs=1e-12)


def test_verification_input_errors() -> None:
    with pytest.raises(MetricInputError, match="empty"):
        det_curve([], [0.1])
    with pytest.raises(MetricInputError, match="one-dimensional"):
        fmr(np.zeros((2, 2)), 0.5)
    assert np.isnan(fmr([], [0.5])).all()
