"""The one scoring kernel against brute force: every backend, best-of-templates, ties, shards
merged exactly, resumable blocks, and the same candidates from SearchIndex and score_searches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfr_eval.search._blocks import ScoringInterrupted, score_probes
from lfr_eval.search._kernel import (
    Gallery,
    kernel_backend,
    mate_scores,
    merge_partials,
    score_all,
    score_block,
)

THRESHOLDS = np.round(np.linspace(-1.0, 1.0, 81), 4)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _backends() -> list[str]:
    names = ["numpy"]
    try:
        import torch  # noqa: F401

        names.append("torch-cpu")
        if torch.cuda.is_available():
            names += ["torch-cuda"]
    except ImportError:
        pass
    return names


def _backend(name: str):
    if name == "numpy":
        return kernel_backend("numpy")
    return kernel_backend("torch", "cuda" if name.endswith("cuda") else "cpu")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n_subjects = 60
    # 1 to 4 templates per subject, rows shuffled (the gallery must group them)
    per = rng.integers(1, 5, n_subjects)
    subj = np.repeat([f"s{i:03d}" for i in range(n_subjects)], per)
    centres = rng.normal(size=(n_subjects, 24))
    templates = centres[np.repeat(np.arange(n_subjects), per)] + rng.normal(size=(len(subj), 24))
    order = rng.permutation(len(subj))
    templates, subj = _unit(templates[order]), subj[order]
    probes = _unit(rng.normal(size=(150, 24)) + 0.8 * centres[rng.integers(0, n_subjects, 150)])
    mates = np.array([f"s{i:03d}" for i in rng.integers(0, 90, 150)])  # some not listed
    groups = rng.integers(0, 3, n_subjects)
    groups[:5] = -1  # searched, not counted
    return templates, subj, probes, mates, groups


def _brute(templates, subj, probes, mates, groups, thresholds, k):
    names = np.unique(subj)
    sims = probes.astype(np.float64) @ templates.astype(np.float64).T
    sub = np.full((len(probes), len(names)), -np.inf)
    for j, s in enumerate(subj):
        c = np.searchsorted(names, s)
        sub[:, c] = np.maximum(sub[:, c], sims[:, j])
    code = np.array([np.searchsorted(names, m) if m in names else -1 for m in mates])
    mate_score = np.where(code >= 0, sub[np.arange(len(probes)), np.maximum(code, 0)], -np.inf)
    others = sub.copy()
    others[np.arange(len(probes))[code >= 0], code[code >= 0]] = -np.inf
    higher = (others > mate_score[:, None]).sum(axis=1)
    counts = np.stack(
        [
            (others[:, groups == g][:, :, None] >= thresholds).sum(axis=1)
            for g in range(groups.max() + 1)
        ],
        axis=1,
    )
    top = -np.sort(-sub, axis=1)[:, :k]
    return sub, code, higher, counts, top


@pytest.mark.parametrize("backend", _backends())
def test_kernel_equals_brute_force(data, backend: str) -> None:
    templates, subj, probes, mates, groups = data
    gal = Gallery.build(templates, subj, subject_groups=groups)
    assert gal.n_groups == 3 and gal.max_templates > 1
    codes = gal.codes_of(mates)
    # tiny tiles and blocks: many tiles per probe block, merged on the way
    part = score_all(
        probes,
        gal,
        k=7,
        thresholds=THRESHOLDS,
        mate_codes=codes,
        backend=_backend(backend),
        block=40,
        tile_bytes=4 * 40 * 9,
    )
    sub, code, higher, counts, top = _brute(templates, subj, probes, mates, groups, THRESHOLDS, 7)
    np.testing.assert_array_equal(codes, code)
    np.testing.assert_allclose(part.top_scores, top, atol=2e-6)
    # each candidate is the subject's best template, and that template is the reported row
    chosen = sub[np.arange(len(probes))[:, None], part.top_subjects]
    np.testing.assert_allclose(part.top_scores, chosen, atol=2e-6)
    row_subject = gal.template_subjects[part.top_rows]
    np.testing.assert_array_equal(row_subject, part.top_subjects)
    row_scores = np.einsum("pd,pkd->pk", probes, gal.matrix[part.top_rows])
    np.testing.assert_allclose(row_scores, part.top_scores, atol=2e-6)
    np.testing.assert_array_equal(part.higher, higher)
    # kept in the smallest type that holds them (here at most 60 subjects a group)
    assert part.counts is not None and part.counts.dtype == gal.counts_dtype() == np.uint8
    np.testing.assert_array_equal(part.counts, counts)
    np.testing.assert_allclose(
        mate_scores(probes, gal, codes),
        np.where(code >= 0, sub[np.arange(len(probes)), np.maximum(code, 0)], -np.inf),
        atol=1e-6,
    )


def test_ties_favour_lower_subject_and_the_mate() -> None:
    # exactly representable scores: every backend and order of summation gives the same value
    templates = np.zeros((6, 4), np.float32)
    templates[:, 0] = 1.0
    templates[4] = [0.0, 1.0, 0.0, 0.0]
    templates[5] = [0.5, 0.5, 0.5, 0.5]
    subj = np.array(["e", "c", "a", "d", "b", "f"])
    probe = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)
    gal = Gallery.build(templates, subj)
    for name in _backends():
        part = score_all(
            probe,
            gal,
            k=5,
            thresholds=[0.5, 1.0],
            mate_codes=gal.codes_of(["d"]),
            backend=_backend(name),
        )
        # a, c, d, e tie at 1.0: lower subject first; then f (0.5); b scores 0
        assert list(gal.subject_ids[part.top_subjects[0]]) == ["a", "c", "d", "e", "f"]
        assert part.higher[0] == 0  # equal scores never rank above the mate
        np.testing.assert_array_equal(part.counts[0, 0], [4, 3])  # mate d left out


@pytest.mark.shape_stable_blas
def test_shards_merge_exactly_in_any_order(data) -> None:
    templates, subj, probes, mates, groups = data
    gal = Gallery.build(templates, subj, subject_groups=groups)
    codes = gal.codes_of(mates)
    ms = mate_scores(probes, gal, codes)
    whole = score_block(probes, gal, k=6, thresholds=THRESHOLDS, mate_codes=codes, mate_score=ms)
    shards = gal.shards(5)
    assert len(shards) >= 4 and shards[0][0] == 0 and shards[-1][1] == gal.n_subjects
    parts = [
        score_block(
            probes,
            gal,
            k=6,
            thresholds=THRESHOLDS,
            mate_codes=codes,
            mate_score=ms,
            subjects=shard,
        )
        for shard in shards
    ]
    for merged in (
        merge_partials(parts),
        merge_partials(parts[::-1]),
        merge_partials([merge_partials(parts[:2]), merge_partials(parts[2:])]),
    ):
        np.testing.assert_array_equal(merged.top_scores, whole.top_scores)
        np.testing.assert_array_equal(merged.top_subjects, whole.top_subjects)
        np.testing.assert_array_equal(merged.top_rows, whole.top_rows)
        np.testing.assert_array_equal(merged.higher, whole.higher)
        np.testing.assert_array_equal(merged.counts, whole.counts)


def _block_files(folder) -> list[str]:
    return sorted(f.name for f in folder.glob("block_*.npz"))


class _CountingScoreBlock:
    """``score_block`` counting its calls (blocks are scored on two threads at once)."""

    def __init__(self, real) -> None:
        import threading

        self.real, self.n, self.lock = real, 0, threading.Lock()

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.n += 1
        return self.real(*args, **kwargs)


def test_resumable_blocks_equal_an_uninterrupted_run(data, tmp_path, monkeypatch) -> None:
    from lfr_eval.search import _blocks

    templates, subj, probes, mates, groups = data
    gal = Gallery.build(templates, subj, subject_groups=groups)
    monkeypatch.setattr(_blocks, "_rows_per_block", lambda *a, **k: 16)
    # the same blocks uninterrupted: bit-identical on any BLAS (the same products, shape for
    # shape; other block sizes are, too, only on a shape-stable one: test_exact_scores.py)
    reference = score_probes(probes, gal, k=5, thresholds=THRESHOLDS)
    counted = _CountingScoreBlock(_blocks.score_block)
    monkeypatch.setattr(_blocks, "score_block", counted)

    def ctrl_c(done: int, total: int) -> None:
        # Ctrl-C reaches the calling thread, here once three blocks are kept
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(ScoringInterrupted, match=r"after (\d+) of 10 blocks") as stopped:
        score_probes(probes, gal, k=5, thresholds=THRESHOLDS, work_dir=tmp_path, progress=ctrl_c)
    (folder,) = tmp_path.iterdir()
    kept = int(str(stopped.value).split("after ")[1].split(" of")[0])
    # the message counts what is on disk, and no block scored to the end was dropped (the
    # blocks in flight at the Ctrl-C may have finished too)
    assert kept == len(_block_files(folder)) and 3 <= kept < 10
    assert not list(folder.glob("*.tmp.*"))
    assert os.stat(folder).st_mode & 0o077 == 0  # who each search found: owner-only
    counted.n = 0
    resumed = score_probes(probes, gal, k=5, thresholds=THRESHOLDS, work_dir=tmp_path)
    assert counted.n == 10 - kept  # only the unfinished blocks were scored
    for name in ("top_scores", "top_subjects", "top_rows", "higher", "counts"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(reference, name))
    # other inputs never reuse those blocks
    other = score_probes(probes[::-1], gal, k=5, thresholds=THRESHOLDS, work_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    np.testing.assert_array_equal(other.counts, reference.counts[::-1])


def test_resume_overwrites_counts_rows_a_killed_run_left_half_written(data, tmp_path, monkeypatch):
    # a killed run leaves the counts rows of the blocks it was scoring with whatever had been
    # written there; the scoring threads write a block's counts in place, so a re-run must
    # overwrite every count of a block, never add to it
    from lfr_eval.search import _blocks

    templates, subj, probes, _, groups = data
    gal = Gallery.build(templates, subj, subject_groups=groups)
    monkeypatch.setattr(_blocks, "_rows_per_block", lambda *a, **k: 32)
    reference = score_probes(probes, gal, k=5, thresholds=THRESHOLDS)  # the same blocks
    real = _blocks.score_block

    def dies_after_block_2(block, *args, **kwargs):
        part = real(block, *args, **kwargs)
        if np.array_equal(block, probes[64:96]):
            raise KeyboardInterrupt  # after this block's counts were written in place
        return part

    monkeypatch.setattr(_blocks, "score_block", dies_after_block_2)
    with pytest.raises(ScoringInterrupted):
        score_probes(probes, gal, k=5, thresholds=THRESHOLDS, work_dir=tmp_path)
    (folder,) = tmp_path.iterdir()
    files = _block_files(folder)
    assert "block_000002.npz" not in files
    counts = np.load(folder / "counts.npy", mmap_mode="r+")
    assert counts[64:96].any()  # block 2's counts are there, its block file is not
    rng = np.random.default_rng(0)
    for b in range(5):
        if f"block_{b:06d}.npz" not in files:
            rows = counts[32 * b : 32 * (b + 1)]
            rows[:] = rng.integers(0, 1000, rows.shape)
    counts.flush()
    del counts
    monkeypatch.setattr(_blocks, "score_block", real)
    resumed = score_probes(probes, gal, k=5, thresholds=THRESHOLDS, work_dir=tmp_path)
    np.testing.assert_array_equal(resumed.counts, reference.counts)
    np.testing.assert_array_equal(resumed.top_scores, reference.top_scores)


@pytest.mark.parametrize("name", _backends())
def test_counts_out_is_overwritten_whatever_it_held(data, name) -> None:
    templates, subj, probes, mates, groups = data
    gal = Gallery.build(templates, subj, subject_groups=groups)
    be = _backend(name)
    codes = gal.codes_of(mates)
    plain = score_block(probes, gal, k=4, thresholds=THRESHOLDS, mate_codes=codes, backend=be)
    out = np.full(plain.counts.shape, 7_777, np.int32)
    into = score_block(
        probes, gal, k=4, thresholds=THRESHOLDS, mate_codes=codes, backend=be, counts_out=out
    )
    assert into.counts is out
    np.testing.assert_array_equal(out, plain.counts)
    # an empty subject range counts nothing: zeros, not what the array held
    out[:] = 5
    score_block(probes, gal, k=4, thresholds=THRESHOLDS, subjects=(3, 3), counts_out=out)
    assert not out.any()
    with pytest.raises(ValueError, match="counts_out must be"):
        score_block(probes, gal, k=4, thresholds=THRESHOLDS, counts_out=out[:, :, :-1])


def test_a_block_that_cannot_be_kept_stops_the_run_with_its_error(data, tmp_path, monkeypatch):
    # blocks are kept on a thread of their own: its error reaches the caller, and the blocks
    # kept before it stay
    from lfr_eval.search import _blocks

    templates, subj, probes, _, _ = data
    gal = Gallery.build(templates, subj)
    monkeypatch.setattr(_blocks, "_rows_per_block", lambda *a, **k: 16)
    real = np.savez
    saved = {"n": 0}

    def full_disk(*args, **kwargs):
        saved["n"] += 1
        if saved["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(_blocks.np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        score_probes(probes, gal, k=5, thresholds=THRESHOLDS, work_dir=tmp_path)
    (folder,) = tmp_path.iterdir()
    assert sorted(f.name for f in folder.glob("block_*.npz")) == [
        "block_000000.npz",
        "block_000001.npz",
    ]


@pytest.mark.parametrize("kept", [False, True])
def test_blocks_scored_two_at_a_time_land_in_their_rows(data, tmp_path, kept) -> None:
    # two blocks are in flight at once (their chunks share one pool): each block's top-k,
    # ranks and counts must land in its own rows, as block-by-block calls give them
    from lfr_eval.search._kernel import concat_partials

    templates, subj, probes, mates, groups = data
    gal = Gallery.build(templates, subj, subject_groups=groups)
    codes = gal.codes_of(mates)
    ms = mate_scores(probes, gal, codes)
    one_by_one = concat_partials(
        [
            score_block(
                probes[a : a + 16],
                gal,
                k=6,
                thresholds=THRESHOLDS,
                mate_codes=codes[a : a + 16],
                mate_score=ms[a : a + 16],
            )
            for a in range(0, len(probes), 16)
        ]
    )
    run = score_probes(
        probes,
        gal,
        k=6,
        thresholds=THRESHOLDS,
        mate_codes=codes,
        rows_per_block=16,
        work_dir=tmp_path if kept else None,
    )
    for name in ("top_scores", "top_subjects", "top_rows", "higher", "counts"):
        np.testing.assert_array_equal(getattr(run, name), getattr(one_by_one, name))


def test_a_failing_block_stops_the_run_with_its_error(data, tmp_path, monkeypatch) -> None:
    from lfr_eval.search import _blocks

    templates, subj, probes, _, _ = data
    gal = Gallery.build(templates, subj)
    real = _blocks.score_block

    def fails_on_block_3(block, *args, **kwargs):
        if np.array_equal(block, probes[48:64]):
            raise MemoryError("no room for block 3")
        return real(block, *args, **kwargs)

    monkeypatch.setattr(_blocks, "score_block", fails_on_block_3)
    with pytest.raises(MemoryError, match="block 3"):
        score_probes(probes, gal, k=3, thresholds=THRESHOLDS, rows_per_block=16, work_dir=tmp_path)
    (folder,) = tmp_path.iterdir()
    kept = _block_files(folder)
    assert {"block_000000.npz", "block_000001.npz", "block_000002.npz"} <= set(kept)
    assert "block_000003.npz" not in kept and not list(folder.glob("*.tmp.*"))


def test_progress_of_kept_blocks_is_reported_in_order_on_the_calling_thread(data, tmp_path):
    import threading

    templates, subj, probes, _, _ = data
    gal = Gallery.build(templates, subj)
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total, threading.current_thread() is threading.main_thread()))

    kwargs = {"k": 3, "thresholds": THRESHOLDS, "rows_per_block": 40, "progress": progress}
    score_probes(probes, gal, work_dir=tmp_path, **kwargs)
    assert seen == [(i, 4, True) for i in range(1, 5)]
    seen.clear()
    score_probes(probes, gal, work_dir=tmp_path, **kwargs)  # all four found on disk
    assert seen == [(i, 4, True) for i in range(1, 5)]


def test_large_counts_are_memory_mapped(data, tmp_path, monkeypatch) -> None:
    import tempfile

    templates, subj, probes, _, _ = data
    gal = Gallery.build(templates, subj)
    small = score_probes(probes, gal, k=3, thresholds=THRESHOLDS)
    # without a work folder the map lives in the temp dir (here the test's own)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mapped = score_probes(probes, gal, k=3, thresholds=THRESHOLDS, memory_bytes=40_000)
    assert isinstance(mapped.counts, np.memmap) and not isinstance(small.counts, np.memmap)
    assert len(list((tmp_path / "lfr-scoring").glob("*/counts.npy"))) == 1
    np.testing.assert_array_equal(mapped.counts, small.counts)


def test_counts_memory_mapped_on_a_tmpfs_say_they_use_ram(data, tmp_path, monkeypatch) -> None:
    """Where the temp dir is a tmpfs (RAM), memory-mapped counts use memory, not disk: the run
    says so, naming the way out; on a disk it says nothing."""
    import shutil
    import tempfile
    import uuid
    import warnings

    from lfr_eval.search._blocks import CountsInMemoryWarning, filesystem_type

    if filesystem_type("/dev/shm") != "tmpfs":
        pytest.skip("needs a tmpfs at /dev/shm to put the temp dir on")
    templates, subj, probes, _, _ = data
    gal = Gallery.build(templates, subj)
    ram = Path("/dev/shm") / f"lfr-test-{uuid.uuid4().hex}"
    ram.mkdir()
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(ram))
        with pytest.warns(CountsInMemoryWarning, match="tmpfs.*--scoring-work-dir"):
            score_probes(probes, gal, k=3, thresholds=THRESHOLDS, memory_bytes=40_000)
    finally:
        shutil.rmtree(ram)
    if filesystem_type(tmp_path) not in ("tmpfs", "ramfs"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", CountsInMemoryWarning)
            score_probes(probes, gal, k=3, thresholds=THRESHOLDS, work_dir=tmp_path)


@pytest.mark.shape_stable_blas
def test_search_index_and_score_searches_agree(data) -> None:
    from lfr_eval.metrics import score_searches
    from lfr_eval.search import SearchIndex

    templates, subj, probes, mates, _ = data
    index = SearchIndex(templates, subj, backend="numpy")
    live = index.search(probes, k=8)
    scored = score_searches(probes, mates, templates, subj, k=8)
    nm = scored.non_mated_probe_index
    np.testing.assert_array_equal(live.scores[nm], scored.searches.non_mated_topk)
    np.testing.assert_array_equal(live.template_ids[nm], scored.non_mated_top_rows)
    # mated: the rank the live page would show is the rank the evaluation reports
    m = scored.mated_probe_index
    hit = live.subject_ids[m] == mates[m][:, None]
    rank = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
    in_top = rank > 0
    assert in_top.sum() > 10
    np.testing.assert_array_equal(rank[in_top], scored.searches.mate_ranks[in_top])
    assert (scored.searches.mate_ranks[~in_top] > 8).all()
    # one probe at a time is a matrix-vector product (another BLAS routine): float32 rounding
    one = np.concatenate([index.search(p, k=8).scores for p in probes[:10]])
    np.testing.assert_allclose(one, live.scores[:10], atol=1e-6)


def test_score_searches_counts_equal_brute_force(data) -> None:
    from lfr_eval.metrics import score_searches

    templates, subj, probes, mates, groups = data
    names = np.unique(subj)
    per_template = groups[np.searchsorted(names, subj)]
    res = score_searches(
        probes,
        mates,
        templates,
        subj,
        k=4,
        thresholds=THRESHOLDS,
        count_groups=per_template,
        n_count_groups=3,
        probe_groups=pd.DataFrame({"x": ["y"] * len(probes)}),
    )
    _, code, _, counts, _ = _brute(templates, subj, probes, mates, groups, THRESHOLDS, 4)
    nm = res.non_mated_probe_index
    np.testing.assert_array_equal(res.non_mated_counts, counts[nm])
    assert (code[nm] == -1).all()


def test_torch_fp16_is_close_and_says_so(data) -> None:
    torch = pytest.importorskip("torch")
    from lfr_eval.metrics import score_searches

    templates, subj, probes, mates, _ = data
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ref = score_searches(probes, mates, templates, subj, k=5)
    half = score_searches(
        probes, mates, templates, subj, k=5, backend="torch", device=device, precision="fp16"
    )
    assert half.runtime.precision == "fp16" and ref.runtime.precision == "fp32"
    np.testing.assert_allclose(half.searches.non_mated_topk, ref.searches.non_mated_topk, atol=3e-3)
    with pytest.raises(ValueError, match="fp32 only"):
        kernel_backend("numpy", "cpu", "fp16")


@pytest.mark.parametrize(
    "grid",
    [
        np.round(np.linspace(-1.0, 1.0, 1000), 6),  # uniform: arithmetic bins
        np.linspace(0.1, 0.95, 777),
        np.sort(np.r_[np.round(np.linspace(-1.0, 1.0, 1000), 6), 0.12345]),  # look-up table
        np.r_[-np.inf, np.linspace(0.3, 0.4, 50), np.linspace(0.9, 1.0, 3)],
    ],
    ids=["uniform", "uniform-777", "irregular", "dense-with-inf"],
)
def test_counts_exact_at_and_beside_every_threshold(grid: np.ndarray) -> None:
    """Scores exactly on a threshold, one float32 step either side, and random ones: counts
    are ``score >= threshold`` compared in float64, for every probe row a thread handles."""
    rng = np.random.default_rng(3)
    finite = grid[np.isfinite(grid)]
    on = finite.astype(np.float32)
    values = np.concatenate(
        [
            on,
            np.nextafter(on, np.float32(np.inf)),
            np.nextafter(on, np.float32(-np.inf)),
            rng.uniform(-1, 1, 500).astype(np.float32),
        ]
    )
    values = np.clip(values, -1, 1).astype(np.float32)
    # probe e0 against templates (v, sqrt(1 - v^2), 0): the product is exactly v
    templates = np.zeros((len(values), 3), np.float32)
    templates[:, 0] = values
    templates[:, 1] = np.sqrt(1 - values.astype(np.float64) ** 2)
    names = np.array([f"t{i:05d}" for i in range(len(values))])
    groups = rng.integers(-1, 2, len(values))
    gal = Gallery.build(templates, names, subject_groups=groups, n_groups=2)
    probes = np.zeros((1100, 3), np.float32)  # 1,100 rows: several thread chunks
    probes[:, 0] = 1.0
    from lfr_eval.search._kernel import _Grid

    assert _Grid.build(grid).uniform == (len(grid) in (1000, 777))
    part = score_block(probes, gal, k=3, thresholds=grid, tile_bytes=4 * 128 * 97)
    expected = np.stack(
        [(values[groups == g].astype(np.float64)[:, None] >= grid).sum(axis=0) for g in (0, 1)]
    )
    assert part.counts is not None
    for row in (0, 511, 512, 1023, 1024, 1099):
        np.testing.assert_array_equal(part.counts[row], expected)
    np.testing.assert_array_equal(part.top_scores[0], -np.sort(-values)[:3])


@pytest.mark.parametrize("tile_bytes", [None, 4 * 2 * 9_000])
def test_counts_past_a_histogram_cell(tile_bytes: int | None) -> None:
    """70,000 subjects in two histogram bins: more than a uint16 cell holds, so the counts
    come from the flushed int32 cells (one tile of the default size, reduced in windows, or
    several tiles), for scores on a
    threshold (0.5: the exact path) and between thresholds (0.51: the arithmetic path)."""
    n = 70_000
    values = np.full(n, 0.5, np.float32)
    values[n // 2 :] = 0.51
    values[:100] = np.linspace(-0.9, 0.9, 100, dtype=np.float32)
    templates = np.zeros((n, 3), np.float32)
    templates[:, 0] = values
    templates[:, 1] = np.sqrt(1 - values.astype(np.float64) ** 2)
    gal = Gallery.build(templates, np.array([f"t{i:06d}" for i in range(n)]))
    probes = np.zeros((2, 3), np.float32)
    probes[:, 0] = 1.0
    grid = np.round(np.linspace(-1.0, 1.0, 101), 6)
    part = score_block(probes, gal, k=2, thresholds=grid, tile_bytes=tile_bytes)
    expected = (values.astype(np.float64)[:, None] >= grid).sum(axis=0)
    assert part.counts is not None and expected.max() > 2**16
    for row in (0, 1):
        np.testing.assert_array_equal(part.counts[row, 0], expected)


@pytest.mark.parametrize("tile_bytes", [None, 4 * 4 * 30_000, 4 * 4 * 65_536])
def test_counts_at_the_flush_of_a_uint16_cell(tile_bytes: int | None) -> None:
    """Bins holding 65,535, 65,536 and 65,537 subjects (a uint16 cell's range ends at 65,535,
    so they are flushed into int32 cells), with mates in the 65,536 bin and in the 65,535 bin
    (taken out of the int32 cells): in tiles of 131,072 templates (the default for 4 rows,
    reduced in windows of 32,768 subjects), of 30,000 (a flush every two or three tiles) and
    of 65,536 (a flush before every tile); 4 probe rows."""
    sizes = [65_535, 65_536, 65_537]
    grid = np.round(np.linspace(-1.0, 1.0, 101), 6)  # bins 0.02 wide
    centres = np.array([-0.31, 0.11, 0.51])  # bin centres: the arithmetic path
    values = np.repeat(centres, sizes).astype(np.float32)
    values = values[np.random.default_rng(12).permutation(len(values))]
    templates = np.zeros((len(values), 3), np.float32)
    templates[:, 0] = values
    templates[:, 1] = np.sqrt(1 - values.astype(np.float64) ** 2)
    names = np.array([f"t{i:06d}" for i in range(len(values))])
    gal = Gallery.build(templates, names)
    probes = np.zeros((4, 3), np.float32)
    probes[:, 0] = 1.0
    in_bin = [np.flatnonzero(values == np.float32(c)) for c in centres]
    mates = np.array([-1, in_bin[1][0], in_bin[0][-1], -1])
    part = score_block(probes, gal, k=2, thresholds=grid, mate_codes=mates, tile_bytes=tile_bytes)
    assert part.counts is not None
    for row, mate in enumerate(mates):
        keep = np.arange(len(values)) != mate
        expected = (values[keep].astype(np.float64)[:, None] >= grid).sum(axis=0)
        np.testing.assert_array_equal(part.counts[row, 0], expected)
    everyone = len(values)  # a probe without a mate has every subject above it
    assert part.higher.tolist() == [everyone, 65_537, 65_536 + 65_537, everyone]


@pytest.mark.parametrize("tile_bytes", [None, 4 * 4 * 100, 4 * 4 * 256])
def test_counts_at_the_carry_of_a_histogram_cell(tile_bytes: int | None) -> None:
    """Bins holding 255, 256, 257, 511, 512, 513 and 768 subjects (where the kernel's earlier
    uint8 cells wrapped and carried), with the mate in a bin whose count is a multiple of 256,
    in one tile and split over tiles of 100 and 256 templates."""
    sizes = [255, 256, 257, 511, 512, 513, 768]
    grid = np.round(np.linspace(-1.0, 1.0, 101), 6)  # bins 0.02 wide
    centres = np.round(np.linspace(-0.79, 0.71, len(sizes)), 2)  # bin centres
    values = np.repeat(centres, sizes).astype(np.float32)
    rng = np.random.default_rng(11)
    order = rng.permutation(len(values))  # the bins' subjects interleaved
    values = values[order]
    templates = np.zeros((len(values), 3), np.float32)
    templates[:, 0] = values
    templates[:, 1] = np.sqrt(1 - values.astype(np.float64) ** 2)
    groups = np.where(rng.random(len(values)) < 0.25, 1, 0)
    groups[np.isin(values, centres[[1, 4]].astype(np.float32))] = 0  # 256 and 512 whole
    names = np.array([f"t{i:05d}" for i in range(len(values))])
    gal = Gallery.build(templates, names, subject_groups=groups, n_groups=2)
    probes = np.zeros((4, 3), np.float32)
    probes[:, 0] = 1.0
    in_bin = [np.flatnonzero(values == np.float32(centres[b])) for b in range(len(sizes))]
    # no mate; a mate in the 256 bin, in the 512 bin (both multiples of 256), in the 257 bin
    mates = np.array([-1, in_bin[1][0], in_bin[4][7], in_bin[2][3]])
    part = score_block(probes, gal, k=3, thresholds=grid, mate_codes=mates, tile_bytes=tile_bytes)
    assert part.counts is not None
    for row, mate in enumerate(mates):
        keep = np.arange(len(values)) != mate
        expected = np.stack(
            [
                (values[keep & (groups == g)].astype(np.float64)[:, None] >= grid).sum(axis=0)
                for g in (0, 1)
            ]
        )
        np.testing.assert_array_equal(part.counts[row], expected)
    assert part.counts[0, 0].max() > 256 * 4  # several carries in one cell's reverse sum


def test_carry_when_a_cell_wraps_inside_a_group_of_four() -> None:
    """The increments go four at a time: one bin hit by three of every four subjects (subject
    1 lies in another bin, so the bin's count is 3 + 4 j after each group of four), past 256
    (where the earlier uint8 cells wrapped inside a group)."""
    n = 1_030
    values = np.full(n, 0.51, np.float32)  # bin centres: the arithmetic (fast) path
    values[1] = -0.51
    templates = np.zeros((n, 3), np.float32)
    templates[:, 0] = values
    templates[:, 1] = np.sqrt(1 - values.astype(np.float64) ** 2)
    gal = Gallery.build(templates, np.array([f"t{i:05d}" for i in range(n)]))
    probes = np.zeros((2, 3), np.float32)
    probes[:, 0] = 1.0
    grid = np.round(np.linspace(-1.0, 1.0, 101), 6)
    part = score_block(probes, gal, k=2, thresholds=grid, mate_codes=np.array([-1, 7]))
    assert part.counts is not None
    for row, mate in enumerate((-1, 7)):
        keep = np.arange(n) != mate
        expected = (values[keep].astype(np.float64)[:, None] >= grid).sum(axis=0)
        np.testing.assert_array_equal(part.counts[row, 0], expected)


def test_too_many_histogram_cells_is_refused() -> None:
    """Histogram slots are made in float32 lanes: a grid × groups too large for them is refused
    with a message, never counted wrongly."""
    templates = _unit(np.eye(3, dtype=np.float32))
    gal = Gallery.build(templates, ["a", "b", "c"], subject_groups=np.zeros(3), n_groups=4096)
    with pytest.raises(ValueError, match="histogram cells per probe"):
        score_block(templates, gal, k=1, thresholds=np.linspace(-1, 1, 4096))


def test_equal_scores_keep_the_lower_code_first() -> None:
    """Tied scores across interleaved groups, in the first tile and in later ones: the top-k
    keeps score descending, then the lower subject code first; k cuts through the tie."""
    n = 48
    templates = np.zeros((n, 4), np.float32)
    templates[:, 0] = 1.0  # every subject scores exactly 1.0 ...
    templates[n // 2 :, 0] = 0.5  # ... or 0.5
    templates[n // 2 :, 1] = np.sqrt(0.75)
    ids = np.array([f"s{i:03d}" for i in range(n)])
    shuffle = np.random.default_rng(1).permutation(n)
    groups = (np.arange(n) % 3)[shuffle]  # interleaved in code order
    groups[5] = -1
    gal = Gallery.build(templates, ids, subject_groups=groups)
    probes = np.zeros((5, 4), np.float32)
    probes[:, 0] = 1.0
    mates = np.array([-1, 3, 30, 0, 47])
    for tile_bytes in (None, 4 * 4 * 3, 4 * 4 * 7):
        for k in (1, 7, 24, 30):
            part = score_block(
                probes, gal, k=k, thresholds=[0.5, 1.0], mate_codes=mates, tile_bytes=tile_bytes
            )
            # order: score descending, then code ascending
            expected = np.arange(n)[:k]
            np.testing.assert_array_equal(part.top_subjects, np.tile(expected, (5, 1)))
            np.testing.assert_array_equal(part.top_rows, gal.starts[part.top_subjects])
            # no mate: every subject counts as above; mates 30 and 47 score 0.5
            np.testing.assert_array_equal(part.higher, [n, 0, n // 2, 0, n // 2])
            assert part.counts is not None
            for row, mate in enumerate(mates):
                keep = (np.arange(n) != mate) & (groups >= 0)
                for g in range(3):
                    in_g = keep & (groups == g)
                    np.testing.assert_array_equal(
                        part.counts[row, g], [in_g.sum(), (in_g & (np.arange(n) < n // 2)).sum()]
                    )


def test_default_tile_is_one_cores_l2_cache(tmp_path) -> None:
    """The numpy kernel's default tile is the size of a core's L2 cache, read from sysfs;
    2 MiB where it cannot be read."""
    from lfr_eval.search._kernel import _core_l2_bytes

    def cache(name: str, level: int, kind: str, size: str) -> None:
        folder = tmp_path / name
        folder.mkdir()
        for field, value in (("level", level), ("type", kind), ("size", size)):
            (folder / field).write_text(f"{value}\n")

    assert _core_l2_bytes(caches=str(tmp_path)) == 2**21  # nothing there
    cache("index0", 1, "Data", "32K")
    cache("index1", 1, "Instruction", "32K")
    cache("index3", 3, "Unified", "32768K")
    assert _core_l2_bytes(caches=str(tmp_path)) == 2**21  # no L2 listed
    cache("index2", 2, "Unified", "1024K")
    assert _core_l2_bytes(caches=str(tmp_path)) == 2**20
    (tmp_path / "index2" / "size").write_text("2M\n")
    assert _core_l2_bytes(caches=str(tmp_path)) == 2**21
    (tmp_path / "index2" / "size").write_text("64M\n")
    assert _core_l2_bytes(caches=str(tmp_path)) == 2**22  # at most 4 MiB
    (tmp_path / "index2" / "size").write_text("garbled\n")
    assert _core_l2_bytes(caches=str(tmp_path)) == 2**21
