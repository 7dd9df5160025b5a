"""One probe/template pair, one float32 score: wherever the project computes it.

The live page's :class:`~lfr_eval.search.SearchIndex` (one face at a time), the evaluation's
:func:`~lfr_eval.metrics.score_searches`, the NPL design's filler counts and every block, batch
size and position of the scoring kernel give the same bits, so an alert at a threshold equal to
a score is decided as the evaluation counts it. The reference everywhere is one large BLAS
product of all probes by all templates (padded past the shapes BLAS rounds otherwise; see
``_kernel._MIN_PRODUCT_ROWS``).

Before: a single probe's search went to BLAS gemv and short products to BLAS's small-matrix
kernel, which round differently (up to 4.2e-7 between one probe and the same probe in a batch;
the mates' scores were rounded from float64, 3.6e-7 from the kernel's).

That holds where the BLAS rounds every element of a product alike whatever its shape and place
(OpenBLAS's SkylakeX kernels; :func:`~lfr_eval.search._kernel.blas_rounding` probes it). Its
Haswell kernels (AVX2 without AVX-512, e.g. AMD Zen 2) round an element by its place in the
register tile: the tests marked ``shape_stable_blas`` are then skipped here and run in a child
process under OpenBLAS's shape-stable Sandybridge core, and ``tests/test_blas_rounding.py``
checks agreement to float32 rounding on this BLAS (``tests/conftest.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lfr_eval.metrics import score_searches
from lfr_eval.search import SearchIndex
from lfr_eval.search._index import float32_dot_error, screened_top_k
from lfr_eval.search._kernel import (
    Gallery,
    mate_scores,
    pair_dots,
    regular_matmul,
    score_all,
    score_block,
)


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _watchlist(rng: np.random.Generator, n_subjects: int, max_templates: int, dim: int):
    """Subjects with 1..max_templates templates, in shuffled rows (the index regroups them)."""
    reps = rng.integers(1, max_templates + 1, n_subjects)
    subjects = np.repeat([f"s{i:05d}" for i in range(n_subjects)], reps)
    order = rng.permutation(len(subjects))
    return _unit(rng, len(subjects), dim)[order], subjects[order]


def _near(rng: np.random.Generator, templates: np.ndarray, n: int, noise: float) -> np.ndarray:
    """Probes near random templates (so mates rank first and scores crowd the top)."""
    src = rng.integers(0, len(templates), n)
    probes = templates[src] + noise * rng.standard_normal((n, templates.shape[1]))
    probes = probes.astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    return probes


def _reference(probes: np.ndarray, gallery: Gallery) -> np.ndarray:
    """Every probe × template score from one large product (>= 1,024 rows and columns)."""
    n, dim = probes.shape
    left = np.zeros((max(n, 1024), dim), np.float32)
    left[:n] = probes
    right = np.zeros((max(gallery.n_templates, 1024), dim), np.float32)
    right[: gallery.n_templates] = gallery.matrix
    with threadpool_limits(1):
        return (left @ right.T)[:n, : gallery.n_templates]


def _reference_top(scores: np.ndarray, gallery: Gallery, k: int):
    """The kernel's top-k from the reference scores: each subject's first best template,
    descending by score, ties by the lower subject code."""
    starts = gallery.starts[:-1]
    best = np.maximum.reduceat(scores, starts, axis=1)
    widths = np.diff(gallery.starts)
    at_best = np.where(
        scores == np.repeat(best, widths, axis=1), np.arange(gallery.n_templates), 1 << 40
    )
    best_row = np.minimum.reduceat(at_best, starts, axis=1)
    codes = np.broadcast_to(np.arange(gallery.n_subjects), best.shape)
    order = np.lexsort((codes, -best), axis=1)[:, :k]
    return (
        best,
        np.take_along_axis(best, order, axis=1),
        order,
        np.take_along_axis(best_row, order, axis=1),
    )


@pytest.mark.shape_stable_blas
@pytest.mark.parametrize("dim", [128, 512])
@pytest.mark.parametrize("max_templates", [1, 5])
def test_kernel_scores_equal_one_large_product_for_every_batch_size(
    dim: int, max_templates: int
) -> None:
    """score_block on every batch size 1..600, each at a random position of the probe set:
    top-k scores, subjects, template rows, counts at thresholds equal to scores and mates'
    ranks equal those from one large product, bit for bit."""
    rng = np.random.default_rng(dim + max_templates)
    templates, subjects = _watchlist(rng, 120 if max_templates > 1 else 300, max_templates, dim)
    gallery = Gallery.build(templates, subjects)
    probes = _near(rng, gallery.matrix, 1200, 0.6)
    ref = _reference(probes, gallery)
    best, top_s, top_j, top_r = _reference_top(ref, gallery, 4)
    # thresholds at scores of the run: a score one float32 step off flips a count
    thr = np.unique(np.concatenate([np.linspace(-1, 1, 41), top_s[:50, :3].ravel()]))
    ref_counts = (best[:, :, None] >= thr[None, None, :]).sum(axis=1)
    mates = rng.integers(0, gallery.n_subjects, len(probes))
    mate_best = best[np.arange(len(probes)), mates]
    ref_higher = (best > mate_best[:, None]).sum(axis=1)
    # with mates the counts leave the mate out
    ref_counts_mated = ref_counts - (mate_best[:, None] >= thr[None, :])
    np.testing.assert_array_equal(mate_scores(probes, gallery, mates), mate_best)

    wrong = []
    for b in range(1, 601):
        a = int(rng.integers(0, len(probes) - b + 1))
        with_counts = b % 7 == 0 or b < 10
        part = score_block(
            probes[a : a + b],
            gallery,
            k=4,
            thresholds=thr if with_counts else None,
            mate_codes=mates[a : a + b] if b % 5 == 0 else None,
        )
        counts_ref = ref_counts_mated if b % 5 == 0 else ref_counts
        same = (
            np.array_equal(part.top_scores, top_s[a : a + b])
            and np.array_equal(part.top_subjects, top_j[a : a + b])
            and np.array_equal(part.top_rows, top_r[a : a + b])
            and (not with_counts or np.array_equal(part.counts[:, 0], counts_ref[a : a + b]))
            and (b % 5 or np.array_equal(part.higher, ref_higher[a : a + b]))
        )
        if not same:
            wrong.append(b)
    assert wrong == []


@pytest.mark.shape_stable_blas
@pytest.mark.parametrize("dim", [128, 512])
def test_every_gallery_size_and_tile_layout_gives_the_same_bits(dim: int) -> None:
    """Small and odd watchlists (1 template to 1,201; a last tile of one template), the
    kernel's tile width and subject shards: the scores never move."""
    rng = np.random.default_rng(7)
    for n_subjects, max_t in [
        (1, 1),
        (2, 1),
        (3, 2),
        (5, 1),
        (17, 5),
        (64, 1),
        (301, 3),
        (1201, 1),
    ]:
        templates, subjects = _watchlist(rng, n_subjects, max_t, dim)
        gallery = Gallery.build(templates, subjects)
        probes = _near(rng, gallery.matrix, 700, 0.8)
        k = min(3, n_subjects)
        _, top_s, top_j, _ = _reference_top(_reference(probes, gallery), gallery, k)
        for b in (1, 2, 3, 4, 5, 7, 63, 64, 65, 511, 512, 513, 600):
            a = int(rng.integers(0, len(probes) - b + 1))
            for tile_bytes in (None, 4 * 37 * 512):
                part = score_block(probes[a : a + b], gallery, k=k, tile_bytes=tile_bytes)
                assert np.array_equal(part.top_scores, top_s[a : a + b]), (n_subjects, b)
                assert np.array_equal(part.top_subjects, top_j[a : a + b]), (n_subjects, b)
        if n_subjects >= 3:
            whole = score_all(probes, gallery, k=k, block=512)
            np.testing.assert_array_equal(whole.top_scores, top_s)


@pytest.mark.shape_stable_blas
@pytest.mark.parametrize("dim", [128, 512])
def test_live_search_equals_evaluation_and_one_probe_at_a_time(dim: int) -> None:
    """SearchIndex one face at a time (the live page), in batches of assorted sizes and all at
    once, and score_searches (the evaluation): the same candidates and the same float32
    scores; an alert at a threshold equal to a score (or one float32 step above it) is
    raised exactly when the evaluation counts a candidate at or above it."""
    rng = np.random.default_rng(dim)
    templates, subjects = _watchlist(rng, 400, 5, dim)
    index = SearchIndex(templates, subjects)
    probes = _near(rng, templates, 900, 0.5)
    strangers = np.array([f"x{i}" for i in range(len(probes))])
    k = 5
    alone = [index.search(probes[i], k) for i in range(len(probes))]
    scores = np.vstack([r.scores for r in alone])
    ids = np.vstack([r.subject_ids for r in alone])
    start = 0
    for b in (1, 2, 3, 4, 5, 17, 300, 513, 57):
        batch = index.search(probes[start : start + b], k)
        np.testing.assert_array_equal(batch.scores, scores[start : start + b])
        np.testing.assert_array_equal(batch.subject_ids, ids[start : start + b])
        start += b
    everything = index.search(probes, k)
    np.testing.assert_array_equal(everything.scores, scores)
    np.testing.assert_array_equal(everything.subject_ids, ids)

    best = scores[:60, 0]  # float32; a threshold at each, and one float32 step above
    step_up = np.nextafter(best, np.float32(2))
    thresholds = np.unique(np.concatenate([best, step_up]).astype(np.float64))
    evaluation = score_searches(probes, strangers, templates, subjects, k=k, thresholds=thresholds)
    np.testing.assert_array_equal(evaluation.searches.non_mated_topk, np.clip(scores, -1, 1))
    for t_index, threshold in enumerate(thresholds):
        alerts = np.vstack([r.alerts(threshold) for r in alone]).ravel()
        counted = evaluation.non_mated_counts[:, 0, t_index] > 0
        np.testing.assert_array_equal(alerts, counted)

    # mated: each probe's mate is the subject it was drawn near; its score and rank
    mated = score_searches(probes, ids[:, 0], templates, subjects, k=k)
    np.testing.assert_array_equal(mated.searches.mate_scores, np.clip(scores[:, 0], -1, 1))
    np.testing.assert_array_equal(mated.searches.mate_ranks, np.ones(len(probes), np.int64))
    second = score_searches(probes, ids[:, 1], templates, subjects, k=k).searches
    np.testing.assert_array_equal(second.mate_scores, np.clip(scores[:, 1], -1, 1))
    np.testing.assert_array_equal(second.mate_ranks, np.where(scores[:, 0] > scores[:, 1], 2, 1))


@pytest.mark.shape_stable_blas
def test_npl_run_scores_equal_the_live_search() -> None:
    """run_npl_protocol (volunteers among fillers, filler counts by cell) on embeddings: the
    non-mated searches' candidates and scores are those SearchIndex gives each probe alone,
    and the mated searches' scores those of their volunteer."""
    from test_protocols import synthetic_manifest

    from lfr_eval.datasets import ImageEmbeddings, ManifestWarning
    from lfr_eval.protocols import NplParams, build_npl_protocol, run_npl_protocol

    manifest = synthetic_manifest(160, seed=5)
    protocol = build_npl_protocol(manifest, NplParams(seed=2))
    rng = np.random.default_rng(5)
    codes = np.unique(manifest.subject_ids.astype(str), return_inverse=True)[1]
    centres = _unit(rng, int(codes.max()) + 1, 128)
    vectors = centres[codes] + 0.3 * rng.standard_normal((len(codes), 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n = len(codes)
    ok = np.ones(n, bool)
    embeddings = ImageEmbeddings(
        "synthetic",
        np.array([f"{i:064x}" for i in range(n)], dtype=object),
        vectors.astype(np.float32),
        ok,
        ok.astype(np.int64),
        np.full(n, "", dtype=object),
        np.full(n, np.nan),
        np.full(n, np.nan),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManifestWarning)
        run = run_npl_protocol(protocol, embeddings, top_k=5)
    subject_of = manifest.subject_ids.astype(str)
    gallery_rows = np.concatenate([protocol.enrolment, protocol.fillers])
    index = SearchIndex(vectors[gallery_rows], subject_of[gallery_rows])
    k = min(5, index.watchlist_size)
    live = [index.search(vectors[r], k) for r in run.non_mated_rows]
    live_scores = np.clip(np.vstack([x.scores for x in live]), -1, 1)
    np.testing.assert_array_equal(run.searches.non_mated_topk[:, :k], live_scores)
    np.testing.assert_array_equal(run.filler_counts.top_scores[:, :k], live_scores)
    everyone = index.search(vectors[run.mated_rows], index.watchlist_size)
    mine = everyone.subject_ids == subject_of[run.mated_rows][:, None]
    assert mine.sum(axis=1).tolist() == [1] * len(run.mated_rows)
    mated_live = everyone.scores[mine]
    np.testing.assert_array_equal(run.searches.mate_scores, np.clip(mated_live, -1, 1))


@pytest.mark.shape_stable_blas
def test_screened_search_keeps_exact_ties_and_falls_back_on_near_copies() -> None:
    """Copied templates (exact ties across subjects and within one) keep the kernel's order,
    and a watchlist of near-copies (the screen keeps every subject) goes through the kernel:
    both give the kernel's bits."""
    rng = np.random.default_rng(3)
    base = _unit(rng, 200, 128)
    templates = np.concatenate([base, base[:40], base[:10]])  # 50 exact copies
    subjects = np.array(
        [f"s{i:04d}" for i in range(200)]
        + [f"c{i:04d}" for i in range(40)]
        + [f"s{i:04d}" for i in range(10)]
    )
    gallery = Gallery.build(templates, subjects)
    probes = np.concatenate([base[:30], _near(rng, base, 30, 0.3)])
    for k in (1, 3, 7):
        for i in range(len(probes)):
            got = screened_top_k(probes[i : i + 1], gallery, k)
            want = score_block(probes[i : i + 1], gallery, k=k)
            for g, w in zip(got, (want.top_scores, want.top_subjects, want.top_rows), strict=True):
                np.testing.assert_array_equal(g, w)
    crowd = _unit(rng, 1, 128) + 1e-4 * rng.standard_normal((300, 128)).astype(np.float32)
    crowd /= np.linalg.norm(crowd, axis=1, keepdims=True)
    crowded = Gallery.build(crowd, [f"n{i:03d}" for i in range(300)])
    probe = crowd[:1] + np.float32(1e-5)
    probe /= np.linalg.norm(probe)
    got = screened_top_k(probe, crowded, 5)
    want = score_block(probe, crowded, k=5)
    np.testing.assert_array_equal(got[0], want.top_scores)
    np.testing.assert_array_equal(got[1], want.top_subjects)


@pytest.mark.shape_stable_blas
def test_padded_products_and_pair_dots_round_like_a_large_product() -> None:
    """regular_matmul on 1..12 × 1..40 shapes (and a misaligned operand) and pair_dots on
    1..300 pairs equal the same elements of one large product (which gemv and the
    small-matrix kernel did not)."""
    rng = np.random.default_rng(1)
    for dim in (128, 512):
        left, right = _unit(rng, 300, dim), _unit(rng, 1100, dim)
        with threadpool_limits(1):
            full = np.vstack([left, np.zeros((800, dim), np.float32)]) @ right.T
        for m in range(1, 13):
            for n in range(1, 41):
                np.testing.assert_array_equal(regular_matmul(left[:m], right[:n]), full[:m, :n])
        for n in (1, 2, 63, 64, 65, 129, 300):
            np.testing.assert_array_equal(pair_dots(left[:n], right[:n]), np.diagonal(full)[:n])
        # an operand in misaligned memory (as a network buffer arrives): numpy would multiply
        # it without BLAS, which rounds otherwise
        raw = np.zeros(4 * 7 * dim + 1, np.uint8)[1:].view(np.float32).reshape(7, dim)
        raw[:] = left[:7]
        assert not raw.flags.aligned
        np.testing.assert_array_equal(regular_matmul(raw, right[:50]), full[:7, :50])
        np.testing.assert_array_equal(regular_matmul(raw, right), full[:7])


def test_float32_dot_error_bounds_every_evaluation() -> None:
    """The screen's bound holds for gemv, the kernel, float32 sums in any order and their
    distance to the float64 dot product (unit vectors, 128-d and 512-d)."""
    rng = np.random.default_rng(4)
    for dim in (128, 512):
        p, t = _unit(rng, 1, dim), _unit(rng, 5000, dim)
        exact = t.astype(np.float64) @ p[0].astype(np.float64)
        e = float32_dot_error(dim)
        for approx in (
            t @ p[0],
            regular_matmul(p, t)[0],
            np.sum(t * p, axis=1, dtype=np.float32),
            np.cumsum((t * p)[:, ::-1], axis=1, dtype=np.float32)[:, -1],
        ):
            assert np.max(np.abs(approx.astype(np.float64) - exact)) <= e


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_other_backends_agree_to_float32_rounding(backend: str) -> None:
    """faiss (its own BLAS calls and SIMD loops) and torch (its own BLAS) do not promise the
    numpy kernel's bits; they agree within the float32 bound of a dot product, with the same
    candidates where the scores are not that close."""
    rng = np.random.default_rng(9)
    templates, subjects = _watchlist(rng, 500, 3, 128)
    probes = _near(rng, templates, 64, 0.5)
    bound = 2 * float32_dot_error(128)
    numpy_index = SearchIndex(templates, subjects, backend="numpy")
    want = numpy_index.search(probes, 5)
    if backend == "faiss":
        pytest.importorskip("faiss")
        got = SearchIndex(templates, subjects, backend="faiss", device="cpu").search(probes, 5)
        got_scores, got_ids = got.scores, got.subject_ids
    else:
        pytest.importorskip("torch")
        from lfr_eval.search._kernel import kernel_backend

        gallery = Gallery.build(templates, subjects)
        part = score_block(probes, gallery, k=5, backend=kernel_backend("torch", "cpu"))
        got_scores, got_ids = part.top_scores, gallery.subject_ids[part.top_subjects]
    assert np.max(np.abs(got_scores - want.scores)) <= bound
    gaps = np.diff(want.scores, axis=1) < -2 * bound
    clear = np.concatenate([gaps, np.ones((len(probes), 1), bool)], axis=1) & np.concatenate(
        [np.ones((len(probes), 1), bool), gaps], axis=1
    )
    assert (got_ids == want.subject_ids)[clear].all()


@pytest.mark.shape_stable_blas
def test_vectors_a_little_off_unit_norm_score_alike_live_and_in_the_evaluation() -> None:
    """SearchIndex accepts norms within 1e-3 of 1 and score_searches any norm: both normalise
    each such row the same way (unit_rows), so the same vectors give the same scores; and a
    probe's scores never depend on the other probes of the batch (before, one row off unit
    norm made score_searches divide every row by its float32 norm)."""
    rng = np.random.default_rng(12)
    templates, subjects = _watchlist(rng, 300, 3, 128)
    probes = _near(rng, templates, 200, 0.5)
    scale = np.where(rng.random((len(templates), 1)) < 0.5, 1.0, 1.0 + 4e-4)
    off_templates = (templates * scale).astype(np.float32)
    off_probes = probes.copy()
    off_probes[::3] *= np.float32(1.0 - 3e-4)
    strangers = [f"x{i}" for i in range(len(probes))]
    index = SearchIndex(off_templates, subjects)
    live = np.vstack([index.search(p, 3).scores for p in off_probes])
    evaluation = score_searches(off_probes, strangers, off_templates, subjects, k=3)
    np.testing.assert_array_equal(evaluation.searches.non_mated_topk, np.clip(live, -1, 1))
    unit_batch = score_searches(probes, strangers, templates, subjects, k=3).searches
    one_off = probes.copy()
    one_off[0] *= np.float32(1.0 + 5e-4)
    mixed = score_searches(one_off, strangers, templates, subjects, k=3).searches
    np.testing.assert_array_equal(mixed.non_mated_topk[1:], unit_batch.non_mated_topk[1:])
