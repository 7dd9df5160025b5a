"""Scoring numbers do not depend on the memory setting: cases beyond tests/test_scoring_layout.py.

Several templates per subject (1-5), exact ties between subjects (copied templates, probes
equal to a template), count groups with uncounted subjects (-1), 512-d embeddings and a probe
count one above a multiple of the 512-row chunk (the last chunk is a single row); through the
public ``score_searches`` (the NPL protocol's scoring pass). The small-watchlist case fails on
the code before 88ba73b (top-k scores moved by a float32 step).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lfr_eval.metrics import score_searches
from lfr_eval.search._blocks import _rows_per_block
from lfr_eval.search._kernel import Gallery


def _case(seed: int, n_subjects: int, n_probes: int, dim: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    reps = rng.integers(1, 6, n_subjects)
    subjects = np.repeat([f"s{i:05d}" for i in range(n_subjects)], reps)
    templates = rng.standard_normal((len(subjects), dim)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    # exact ties: 40 templates become copies of other subjects' templates
    templates[rng.choice(len(subjects), 40, replace=False)] = templates[
        rng.choice(len(subjects), 40, replace=False)
    ]
    source = rng.integers(0, len(subjects), n_probes)
    noise = rng.standard_normal((n_probes, dim)).astype(np.float32) / np.sqrt(dim)
    probes = templates[source] + 0.3 * noise
    exact = rng.random(n_probes) < 0.1
    probes[exact] = templates[source[exact]]
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    mated = rng.random(n_probes) < 0.3
    probe_subjects = np.where(mated, subjects[source], np.char.add("x", source.astype(str)))
    count_groups = np.repeat(rng.integers(-1, 3, n_subjects), reps)
    return templates, subjects, probes, probe_subjects, count_groups


@pytest.mark.parametrize(
    ("seed", "n_subjects", "n_probes", "dim", "k"),
    [(2, 400, 2049, 512, 5), (3, 60, 1537, 128, 20)],
)
def test_numbers_do_not_depend_on_the_memory_setting_with_ties_and_groups(  # type: ignore[no-untyped-def]
    tmp_path, seed: int, n_subjects: int, n_probes: int, dim: int, k: int
) -> None:
    templates, subjects, probes, probe_subjects, groups = _case(seed, n_subjects, n_probes, dim)
    options = {"k": k, "count_groups": groups, "n_count_groups": 3}
    grid = np.linspace(-1.0, 1.0, 101)
    first = score_searches(probes, probe_subjects, templates, subjects, thresholds=grid, **options)
    top = first.searches.non_mated_topk
    assert np.sum(np.diff(top, axis=1) == 0) > 50  # tied candidates in the top k
    # thresholds exactly at scores of the run: a score one float32 step off flips a count
    thresholds = np.union1d(grid, np.unique(top[:60, :4].astype(np.float64)))
    n_non_mated = int(np.sum(~np.isin(probe_subjects, subjects)))
    fixed = 4 * templates.shape[1] * (len(templates) + n_non_mated)
    gallery = Gallery.build(templates, subjects)
    medium = next(
        m
        for m in range(fixed + 100_000, fixed + 2**30, 100_000)
        if 512 < _rows_per_block(n_non_mated, gallery, k, len(thresholds), m) < n_non_mated
    )
    runs, blocks = [], set()
    for i, memory in enumerate([fixed + 10_000, medium, 3 * 2**30]):
        folder = tmp_path / str(i)
        runs.append(
            score_searches(
                probes,
                probe_subjects,
                templates,
                subjects,
                thresholds=thresholds,
                memory_bytes=memory,
                work_dir=folder,
                **options,
            )
        )
        for info in folder.glob("*/run.json"):
            blocks.add(json.loads(info.read_text())["rows_per_block"])
    assert len(blocks) >= 2, blocks  # the settings did change the blocks
    ref = runs[0]
    assert ref.non_mated_counts is not None and ref.non_mated_counts.any()
    for other in runs[1:]:
        for name in ("mate_scores", "mate_ranks", "non_mated_topk", "non_mated_subjects"):
            assert np.array_equal(
                np.asarray(getattr(ref.searches, name)), np.asarray(getattr(other.searches, name))
            ), name
        assert np.array_equal(ref.non_mated_counts, other.non_mated_counts)
        assert np.array_equal(ref.non_mated_top_rows, other.non_mated_top_rows)
