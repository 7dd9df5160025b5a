"""Counts kept in the smallest integer type that holds them (issue 10, stop 22).

A count is at most its group's number of subjects, so a scoring run keeps its counts (in
memory or in the work folder's ``counts.npy``) as uint8 up to 255 subjects in the largest
count group, uint16 up to 65,535 and int32 above. These tests pin the type at each edge, the
numbers against the kernel's own int32 counts, the resume key (a file of another type is never
read as this one) and the readers (every sum widened: the NPL path gives the int32 results).
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from lfr_eval.search._blocks import score_probes, scoring_key
from lfr_eval.search._kernel import Gallery, _NumpyKernel, counts_dtype_for, score_block

# -1.0: every subject counts, so each group's count reaches its number of subjects (the type's
# edge); the others cut through the scores
THRESHOLDS = np.array([-1.0, -0.2, 0.0, 0.3, 0.7])


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _gallery(sizes: list[int], seed: int = 0) -> Gallery:
    """One template per subject, ``sizes[g]`` subjects in count group g (interleaved), plus
    three uncounted subjects (group -1), 4-d."""
    rng = np.random.default_rng(seed)
    groups = np.concatenate([np.full(n, g) for g, n in enumerate(sizes)] + [np.full(3, -1)])
    groups = groups[rng.permutation(len(groups))]
    ids = [f"s{i:06d}" for i in range(len(groups))]
    return Gallery.build(_unit(rng.standard_normal((len(groups), 4))), ids, subject_groups=groups)


@pytest.mark.parametrize(
    ("sizes", "dtype"),
    [
        ([40, 255, 7], np.uint8),
        ([256, 3], np.uint16),
        ([65_535, 2], np.uint16),
        ([65_536, 2], np.int32),
    ],
)
def test_counts_are_kept_in_the_smallest_type_that_holds_them(tmp_path, sizes, dtype) -> None:
    gal = _gallery(sizes)
    assert gal.counts_dtype() == np.dtype(dtype)
    rng = np.random.default_rng(1)
    probes = _unit(rng.standard_normal((6, 4)))
    mates = np.array([-1, 0, 5, -1, gal.n_subjects - 1, -1])
    reference = score_block(probes, gal, k=3, thresholds=THRESHOLDS, mate_codes=mates)
    assert reference.counts is not None and reference.counts.dtype == np.int32
    # the largest group's count reaches its size at -1.0 (the type's edge), mates excluded
    assert reference.counts[:, :, 0].max() == max(sizes)
    in_memory = score_probes(probes, gal, k=3, thresholds=THRESHOLDS, mate_codes=mates)
    on_disk = score_probes(
        probes, gal, k=3, thresholds=THRESHOLDS, mate_codes=mates, work_dir=tmp_path
    )
    (folder,) = tmp_path.iterdir()
    assert np.load(folder / "counts.npy", mmap_mode="r").dtype == np.dtype(dtype)
    assert json.loads((folder / "run.json").read_text())["counts_dtype"] == np.dtype(dtype).name
    for part in (in_memory, on_disk):
        assert part.counts is not None and part.counts.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(part.counts, reference.counts)
        np.testing.assert_array_equal(part.top_scores, reference.top_scores)
        np.testing.assert_array_equal(part.higher, reference.higher)


def test_the_types_edges() -> None:
    assert [counts_dtype_for(n) for n in (0, 255, 256, 65_535, 65_536, 2**31 - 1)] == [
        np.uint8,
        np.uint8,
        np.uint16,
        np.uint16,
        np.int32,
        np.int32,
    ]
    with pytest.raises(ValueError, match="more than int32 holds"):
        counts_dtype_for(2**31)


def test_counts_out_too_narrow_for_a_group_is_refused() -> None:
    """A count group of 300 subjects in uint8 would wrap silently: score_block refuses it;
    a shard holding at most 255 of them may use uint8."""
    gal = _gallery([300, 10])
    probes = _unit(np.random.default_rng(2).standard_normal((3, 4)))
    out = np.empty((3, 2, len(THRESHOLDS)), np.uint8)
    with pytest.raises(ValueError, match="cannot hold the counts of a count group of 300"):
        score_block(probes, gal, k=1, thresholds=THRESHOLDS, counts_out=out)
    part = score_block(probes, gal, k=1, thresholds=THRESHOLDS, subjects=(0, 200), counts_out=out)
    whole = score_block(probes, gal, k=1, thresholds=THRESHOLDS, subjects=(0, 200))
    np.testing.assert_array_equal(part.counts, whole.counts)
    with pytest.raises(ValueError, match="uint8, uint16 or int32"):
        score_block(probes, gal, k=1, thresholds=THRESHOLDS, counts_out=out.astype(np.int64))


def _run_inputs():
    gal = _gallery([300, 120, 80], seed=4)
    probes = _unit(np.random.default_rng(5).standard_normal((40, 4)))
    return gal, probes


def test_an_int32_counts_folder_from_before_is_never_misread(tmp_path) -> None:
    """Resume across the change: a work folder made before stop 22 (int32 counts.npy, its
    key without the counts' type) is not the folder of the same run now, so its file is never
    read as uint16; the run scores afresh and gives the numbers it gives without a folder."""
    gal, probes = _run_inputs()
    assert gal.counts_dtype() == np.uint16
    reference = score_probes(probes, gal, k=2, thresholds=THRESHOLDS, rows_per_block=16)
    be = _NumpyKernel()
    old_key = scoring_key(
        probes,
        gal,
        k=2,
        thresholds=THRESHOLDS,
        mate_codes=None,
        backend=f"{be.name}:{be.precision};chunks=512;tile=default;products=regular",
    )
    old = tmp_path / old_key
    old.mkdir()
    # an old run, finished: int32 counts (each one 7 more than the truth, so a misread shows)
    # and every block file
    stale = np.lib.format.open_memmap(
        old / "counts.npy", mode="w+", dtype=np.int32, shape=reference.counts.shape
    )
    stale[...] = np.asarray(reference.counts, np.int32) + 7
    stale.flush()
    del stale
    info = {"n_probes": 40, "rows_per_block": 16, "backend": "numpy"}
    (old / "run.json").write_text(json.dumps(info))
    for b in range(3):
        a, e = 16 * b, min(40, 16 * (b + 1))
        np.savez(
            old / f"block_{b:06d}.npz",
            top_scores=reference.top_scores[a:e],
            top_subjects=reference.top_subjects[a:e],
            top_rows=reference.top_rows[a:e],
            higher=reference.higher[a:e],
        )
    resumed = score_probes(
        probes, gal, k=2, thresholds=THRESHOLDS, rows_per_block=16, work_dir=tmp_path
    )
    assert resumed.counts is not None and resumed.counts.dtype == np.uint16
    np.testing.assert_array_equal(resumed.counts, reference.counts)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([old_key, _folder_of(resumed)])
    # and the new folder resumes itself
    again = score_probes(
        probes, gal, k=2, thresholds=THRESHOLDS, rows_per_block=16, work_dir=tmp_path
    )
    np.testing.assert_array_equal(again.counts, reference.counts)


def _folder_of(part) -> str:
    from pathlib import Path

    return Path(part.counts.filename).parent.name


def test_a_counts_file_of_another_type_in_the_runs_folder_is_refused(tmp_path) -> None:
    gal, probes = _run_inputs()
    first = score_probes(probes, gal, k=2, thresholds=THRESHOLDS, work_dir=tmp_path)
    folder = tmp_path / _folder_of(first)
    widened = np.asarray(first.counts, np.int32)
    del first
    np.save(folder / "counts.npy", widened)
    with pytest.raises(ValueError, match="changed after the run made it"):
        score_probes(probes, gal, k=2, thresholds=THRESHOLDS, work_dir=tmp_path)
    shutil.rmtree(folder)


def test_npl_results_with_narrow_counts_equal_the_int32_ones(tmp_path, monkeypatch) -> None:
    """The NPL path (counts on disk, a failed search appended, scaling, pooled FMR, the tail
    model's totals) gives the same numbers from uint8 counts as from int32 ones; the filler
    cells' counts summed over a label exceed 255, so a sum kept in the counts' type would
    wrap."""
    from test_protocols import _synthetic_embeddings, synthetic_manifest

    from lfr_eval.datasets import ManifestWarning
    from lfr_eval.protocols import NplParams, ScoringScale, build_npl_protocol, scale_fpir
    from lfr_eval.protocols._run import run_npl_protocol
    from lfr_eval.protocols._tail import _total_counts

    manifest = synthetic_manifest(800, seed=3)
    protocol = build_npl_protocol(manifest, NplParams(seed=1))
    embeddings = _synthetic_embeddings(manifest, protocol.non_mated[:3])
    grid = np.round(np.linspace(-1.0, 1.0, 41), 6)
    runs = {}
    for name in ("narrow", "int32"):
        if name == "int32":
            monkeypatch.setattr(Gallery, "counts_dtype", lambda self: np.dtype(np.int32))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ManifestWarning)
            runs[name] = run_npl_protocol(
                protocol,
                embeddings,
                thresholds=grid,
                scale=ScoringScale(memory_bytes=300_000, work_dir=tmp_path / name),
            ).filler_counts
    narrow, wide = runs["narrow"], runs["int32"]
    assert narrow.counts.dtype == np.uint8 and wide.counts.dtype == np.int32
    assert isinstance(narrow.counts, np.memmap)
    np.testing.assert_array_equal(narrow.counts, wide.counts)
    totals = _total_counts(narrow)
    assert totals.max() > 255  # the sums leave uint8's range
    np.testing.assert_array_equal(totals, _total_counts(wide))
    for attribute in (None, "sex"):
        a, _, _ = narrow.group_counts(attribute)
        b, _, _ = wide.group_counts(attribute)
        assert a.dtype == np.int64
        np.testing.assert_array_equal(a, b)
    thresholds = [-1.0, 0.2, 0.4, 0.6]
    np.testing.assert_array_equal(narrow.pooled_fmr(thresholds), wide.pooled_fmr(thresholds))
    np.testing.assert_array_equal(narrow.any_match(thresholds), wide.any_match(thresholds))
    np.testing.assert_array_equal(narrow.scored, wide.scored)
    pd.testing.assert_frame_equal(
        scale_fpir(narrow, [10, 100], thresholds, by="sex", n_boot=20).table,
        scale_fpir(wide, [10, 100], thresholds, by="sex", n_boot=20).table,
    )


def test_counts_in_the_file_equal_the_counts_in_memory_and_resume(tmp_path) -> None:
    """The counts the scoring threads write into the mapped counts file equal the counts of a
    run in memory, and a re-run resumes from the file."""
    gal, probes = _run_inputs()
    reference = score_probes(probes, gal, k=2, thresholds=THRESHOLDS, rows_per_block=16)
    where = tmp_path / "work"
    part = score_probes(probes, gal, k=2, thresholds=THRESHOLDS, rows_per_block=16, work_dir=where)
    np.testing.assert_array_equal(part.counts, reference.counts)
    again = score_probes(probes, gal, k=2, thresholds=THRESHOLDS, rows_per_block=16, work_dir=where)
    np.testing.assert_array_equal(again.counts, reference.counts)
