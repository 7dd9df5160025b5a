"""The scores do not depend on where the probes live in memory."""

from __future__ import annotations

import numpy as np

from lfr_eval.search._kernel import Gallery, score_all


def test_self_search_rounds_like_any_other_search() -> None:
    """Templates searched against themselves give the same bits as a copy of them searched.

    numpy multiplies a matrix by its own transpose (same memory, same shape) with BLAS syrk, not
    gemm, and syrk rounds differently: a self-search then differed in the last bit from every
    other layout, and from a Dask cluster's workers, which receive copies
    (``benchmarks/bench_distributed.py`` scores the sample against itself)."""
    rng = np.random.default_rng(3)
    templates = rng.standard_normal((23, 128)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    gallery = Gallery.build(templates, [f"s{i:03d}" for i in range(23)])
    assert np.shares_memory(gallery.matrix, templates)  # grouped already: no copy was made
    thresholds = np.linspace(-1.0, 1.0, 401)
    itself = score_all(templates, gallery, k=20, thresholds=thresholds)
    copied = score_all(templates.copy(), gallery, k=20, thresholds=thresholds)
    for name in ("top_scores", "top_subjects", "top_rows", "higher", "counts"):
        np.testing.assert_array_equal(getattr(itself, name), getattr(copied, name), err_msg=name)
