"""The scores do not depend on where the probes live in memory."""

from __future__ import annotations

import numpy as np
import pytest

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


def _watchlist_and_probes(seed: int, n_subjects: int = 25, n_probes: int = 1600):
    """A small watchlist (1-3 templates per subject: the products with it are small, where
    BLAS picks other kernels) and probes near its templates, 30% of them mated."""
    rng = np.random.default_rng(seed)
    reps = rng.integers(1, 4, n_subjects)
    subjects = np.repeat([f"s{i:03d}" for i in range(n_subjects)], reps)
    templates = rng.standard_normal((len(subjects), 128)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    source = rng.integers(0, len(subjects), n_probes)
    noise = rng.standard_normal((n_probes, 128)).astype(np.float32)
    probes = templates[source] + 0.05 * noise
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    mated = rng.random(n_probes) < 0.3
    probe_subjects = np.where(mated, subjects[source], "stranger-" + source.astype(str))
    return templates, subjects, probes, probe_subjects


def test_scores_and_counts_do_not_depend_on_the_memory_setting(tmp_path) -> None:
    """The memory setting changes the block size, never a bit of the numbers.

    The thresholds include scores of the run itself, so a score that moved by one float32
    step flips a count. Before the kernel's product shapes were fixed, the tiny setting's
    16-row blocks (16 × 50 products, which BLAS rounds differently) moved 4,500 of the 5,550
    top-k scores by up to 4.8e-7 and flipped 47 counts."""
    import json

    from lfr_eval.metrics import score_searches
    from lfr_eval.search._blocks import _rows_per_block

    templates, subjects, probes, probe_subjects = _watchlist_and_probes(11)
    grid = np.linspace(-1.0, 1.0, 201)
    first = score_searches(
        probes, probe_subjects, templates, subjects, k=5, thresholds=grid, work_dir=tmp_path / "0"
    ).searches.non_mated_topk
    # thresholds exactly at scores of the run: a count at each sits on its threshold
    thresholds = np.union1d(grid, np.unique(first[:40, :3].astype(np.float64)))
    n_non_mated = int(np.sum(~np.isin(probe_subjects, subjects)))
    assert n_non_mated > 1024
    fixed = 4 * 128 * (len(templates) + n_non_mated)  # the gallery and the non-mated probes
    # a setting for two blocks (it depends on the kernel's threads, so it is searched for)
    gallery = Gallery.build(templates, subjects)
    medium = next(
        m
        for m in range(fixed + 250_000, fixed + 2**30, 250_000)
        if 512 < _rows_per_block(n_non_mated, gallery, 5, len(thresholds), m) < n_non_mated
    )
    settings = [fixed + 10_000, medium, 3 * 2**30]  # tiny, medium, the default
    runs, blocks = [], []
    for i, memory in enumerate(settings, start=1):
        # a work folder per run (each computes everything; nothing is left in the temp dir)
        runs.append(
            score_searches(
                probes,
                probe_subjects,
                templates,
                subjects,
                k=5,
                thresholds=thresholds,
                memory_bytes=memory,
                work_dir=tmp_path / str(i),
            )
        )
        info = [json.loads(f.read_text()) for f in (tmp_path / str(i)).glob("*/run.json")]
        blocks.append(max(x["rows_per_block"] for x in info if x["n_thresholds"]))
    # several blocks; two (the last shorter than a 512-row chunk); one block
    assert len(set(blocks)) == 3 and blocks[0] < n_non_mated < blocks[2], blocks
    ref = runs[0]
    assert ref.non_mated_counts is not None and ref.non_mated_counts.any()
    for other in runs[1:]:
        for name in ("mate_scores", "mate_ranks", "non_mated_topk"):
            assert np.array_equal(getattr(ref.searches, name), getattr(other.searches, name)), name
        assert np.array_equal(ref.non_mated_counts, other.non_mated_counts)
        assert np.array_equal(ref.non_mated_top_rows, other.non_mated_top_rows)


def test_torch_backend_numbers_do_not_depend_on_the_block_size() -> None:
    """The torch backend (CPU here) also multiplies fixed 512-row chunks: with 1,537 probes the
    last one is a one-row product in every block size the memory setting can choose (before,
    a block of 2,048 rows multiplied it as one row of 1,537, which rounded differently)."""
    pytest.importorskip("torch")
    from lfr_eval.search._blocks import score_probes
    from lfr_eval.search._kernel import kernel_backend

    templates, subjects, probes, _ = _watchlist_and_probes(11, n_probes=1537)
    gallery = Gallery.build(templates, subjects)
    backend = kernel_backend("torch", "cpu", "fp32")
    grid = np.linspace(-1.0, 1.0, 201)
    runs = [
        score_probes(probes, gallery, k=5, thresholds=grid, backend=backend, rows_per_block=r)
        for r in (512, 1024, 2048)  # blocks of 512 ... 1 row; 1,024 + 513; one block
    ]
    for other in runs[1:]:
        for name in ("top_scores", "top_subjects", "top_rows", "higher", "counts"):
            assert np.array_equal(getattr(runs[0], name), getattr(other, name)), name
