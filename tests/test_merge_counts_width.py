"""Review (session 22): shards with narrow counts merge without wrapping (merge_partials)."""

from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_shards_with_narrow_counts_merge_without_wrapping() -> None:
    """Two gallery shards of one count group of 400 subjects, 200 each: each shard's counts
    fit uint8 (score_block accepts a uint8 ``counts_out`` for a shard whose largest group has
    at most 255 subjects), but their sum does not. ``merge_partials`` must give the whole
    gallery's counts (400 at the threshold -1), not a count wrapped at 256."""
    from lfr_eval.search._kernel import Gallery, merge_partials, score_block

    rng = np.random.default_rng(3)
    templates = _unit(rng.normal(size=(400, 8)))
    gal = Gallery.build(templates, np.array([f"f{i:03d}" for i in range(400)]))
    probes = _unit(rng.normal(size=(3, 8)))
    thr = np.array([-1.0, 0.0, 0.5])
    whole = score_block(probes, gal, k=2, thresholds=thr)
    parts = [
        score_block(
            probes,
            gal,
            k=2,
            thresholds=thr,
            subjects=shard,
            counts_out=np.empty((3, 1, 3), np.uint8),
        )  # fmt: skip
        for shard in ((0, 200), (200, 400))
    ]
    merged = merge_partials(parts)
    assert merged.counts is not None and whole.counts is not None
    assert (np.asarray(merged.counts)[:, 0, 0].astype(np.int64) == 400).all()
    np.testing.assert_array_equal(
        np.asarray(merged.counts, np.int64), np.asarray(whole.counts, np.int64)
    )
