"""The GPD tail model recovers FPIR where the counts run out, on scores with a known tail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lfr_eval.protocols import FillerCounts, ProtocolError
from lfr_eval.protocols._tail import TAIL_MODEL, fit_tail, tail_model_fpir
from lfr_eval.simulation import TailDesign, draw_tail_scores, true_tail_fpir


def _counts(design: TailDesign, seed: int) -> tuple[FillerCounts, np.ndarray]:
    scores, subjects, q = draw_tail_scores(design, np.random.default_rng(seed))
    fc = FillerCounts.from_scores(
        scores,
        np.round(np.arange(0.3, 0.9001, 0.005), 4),
        subjects,
        pd.DataFrame(index=range(len(subjects))),
        pd.DataFrame(index=range(design.n_fillers)),
        top_k=20,
    )
    return fc, q


def test_tail_model_recovers_fpir_where_counts_run_out() -> None:
    design = TailDesign()
    fc, q = _counts(design, seed=3)
    n, t = 10 * design.n_fillers, 0.74  # N = 10 F; about 4 comparisons in 1.2 million reach T
    result = tail_model_fpir(fc, [n], [t], n_boot=60)
    fit = result.fit
    assert fit.exceedance_threshold >= design.tail_start and fit.n_exceedances >= 200
    assert fit.completeness >= 0.99
    assert fit.shape_ci[0] <= design.shape <= fit.shape_ci[1]
    assert {"u", "shape", "modified_scale"} <= set(fit.stability.columns)
    assert len(fit.mean_excess) and len(fit.qq) and 0 <= fit.ks_statistic < 0.1
    row = result.table.iloc[0]
    assert row["method"] == TAIL_MODEL and "model-based" in row["method"]
    truth = true_tail_fpir(design, q, n, t)
    assert row["lower"] <= truth <= row["upper"]
    assert row["fpir"] == pytest.approx(truth, rel=0.35)
    # the counts alone cannot see it: the per-person model at N = 10 F is far off
    assert abs(row["count_based_fpir"] - truth) / truth > 0.5
    assert "GPD fit" in fit.describe()


def test_tail_model_says_what_data_it_needs() -> None:
    fc, _ = _counts(TailDesign(n_people=10, searches_per_person=1, n_fillers=200), seed=1)
    with pytest.raises(ProtocolError, match="at least 200 impostor scores"):
        fit_tail(fc)


def test_tail_rows_join_the_scaling_table_labelled_and_are_never_the_default() -> None:
    """evaluate(..., tail_model=True) adds labelled rows; scaled_fpir still reads the counts."""
    from lfr_eval.evaluation import _tail_rows
    from lfr_eval.protocols import scale_fpir, scaled_fpir

    design = TailDesign(n_people=100)
    fc, _ = _counts(design, seed=2)
    counted = scale_fpir(fc, [20_000], [0.7, 0.74]).table
    model = _tail_rows(fc, [20_000], np.array([0.7, 0.74]), seed=0)
    assert set(model["method"]) == {TAIL_MODEL} and model["estimator"].str.contains("GPD").all()
    table = pd.concat([counted, model], ignore_index=True)
    figure = scaled_fpir(table, 20_000, 0.74)
    assert figure is not None and figure.fpir == pytest.approx(
        float(
            counted[(counted["method"] == "analytic") & (counted["threshold"] == 0.74)][
                "fpir"
            ].iloc[0]
        )
    )
    with pytest.warns(UserWarning, match="no tail model"):
        small, _ = _counts(TailDesign(n_people=10, searches_per_person=1, n_fillers=200), seed=1)
        assert _tail_rows(small, [1000], np.array([0.7]), seed=0).empty
