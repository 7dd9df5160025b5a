"""Exact 1:N search: numpy and faiss agree with a brute-force reference and with each other."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lfr_eval.errors import RuntimeUnavailableError, WatchlistError
from lfr_eval.search import SearchIndex, faiss_available, faiss_gpu_available

needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")


def unit_vectors(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_search(
    embeddings: np.ndarray, subjects: list[str], probes: np.ndarray, k: int
) -> tuple[list[list[str]], np.ndarray]:
    """Slow, obviously-correct search: best template per subject, then sort."""
    scores = probes.astype(np.float64) @ embeddings.T.astype(np.float64)
    names = sorted(set(subjects))
    codes = np.array([names.index(s) for s in subjects])
    per_subject = np.full((len(probes), len(names)), -np.inf)
    for j, code in enumerate(codes):
        per_subject[:, code] = np.maximum(per_subject[:, code], scores[:, j])
    order = np.argsort(-per_subject, axis=1, kind="stable")[:, :k]
    ids = [[names[c] for c in row] for row in order]
    return ids, np.take_along_axis(per_subject, order, axis=1)


@pytest.fixture(scope="module")
def gallery() -> tuple[np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(7)
    # 900 subjects with 1 to 4 templates each, in shuffled order
    counts = rng.integers(1, 5, size=900)
    subjects = [f"subject-{i:04d}" for i, c in enumerate(counts) for _ in range(c)]
    rng.shuffle(subjects)
    embeddings = unit_vectors(rng, len(subjects), 64)
    probes = unit_vectors(rng, 150, 64)
    return embeddings, subjects, probes


@pytest.mark.parametrize("backend", ["numpy", pytest.param("faiss", marks=needs_faiss)])
def test_matches_brute_force_reference(gallery, backend: str) -> None:
    embeddings, subjects, probes = gallery
    index = SearchIndex(embeddings, subjects, backend=backend)
    result = index.search(probes, k=10)
    ref_ids, ref_scores = reference_search(embeddings, subjects, probes, 10)
    assert result.scores.shape == (150, 10)
    assert result.subject_ids.tolist() == ref_ids
    np.testing.assert_allclose(result.scores, ref_scores, atol=1e-5)
    # each row: distinct subjects, sorted by score
    for row in result.subject_ids:
        assert len(set(row)) == len(row)
    assert np.all(np.diff(result.scores, axis=1) <= 0)
    # the reported template really belongs to the subject and gives the score
    rows = result.template_ids  # row numbers, since no template ids were given
    assert all(
        subjects[t] == s for t, s in zip(rows.ravel(), result.subject_ids.ravel(), strict=True)
    )
    np.testing.assert_allclose(
        np.einsum("pd,pkd->pk", probes, embeddings[rows]), result.scores, atol=1e-5
    )


def test_numpy_blocked_search_matches_reference(gallery, monkeypatch) -> None:
    """Large watchlists are searched in template blocks; merging blocks must not change results."""
    from lfr_eval.search import _kernel

    embeddings, subjects, probes = gallery
    # tiles of ~20 templates for 150 probes
    monkeypatch.setattr(_kernel, "DEFAULT_TILE_BYTES", 4 * 150 * 20)
    index = SearchIndex(embeddings, subjects, backend="numpy")
    starts = index._gallery.starts
    assert len(_kernel._tiles(starts, 0, index.watchlist_size, 20)) > 50
    result = index.search(probes, k=7)
    ref_ids, ref_scores = reference_search(embeddings, subjects, probes, 7)
    assert result.subject_ids.tolist() == ref_ids
    np.testing.assert_allclose(result.scores, ref_scores, atol=1e-5)
    np.testing.assert_allclose(
        np.einsum("pd,pkd->pk", probes, embeddings[result.template_ids]), result.scores, atol=1e-5
    )
    single = SearchIndex(embeddings[:500], [f"x{i}" for i in range(500)], backend="numpy")
    one_by_one = np.concatenate([single.search(p, 5).scores for p in probes[:20]])
    np.testing.assert_allclose(single.search(probes[:20], 5).scores, one_by_one, atol=1e-6)


@needs_faiss
@pytest.mark.parametrize("templates_per_subject", [1, 3])
def test_numpy_and_faiss_identical(templates_per_subject: int) -> None:
    rng = np.random.default_rng(11)
    n_subjects = 2000
    subjects = [f"s{i}" for i in range(n_subjects) for _ in range(templates_per_subject)]
    embeddings = unit_vectors(rng, len(subjects), 128)
    ids = rng.permutation(len(subjects)) + 1000
    probes = unit_vectors(rng, 64, 128)
    a = SearchIndex(embeddings, subjects, template_ids=ids, backend="numpy").search(probes, 20)
    b = SearchIndex(embeddings, subjects, template_ids=ids, backend="faiss").search(probes, 20)
    assert a.backend == "numpy" and b.backend == "faiss-cpu"
    assert (a.subject_ids == b.subject_ids).all()
    assert (a.template_ids == b.template_ids).all()
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_single_probe_and_mates_found() -> None:
    rng = np.random.default_rng(3)
    embeddings = unit_vectors(rng, 500, 32)
    subjects = [f"p{i}" for i in range(500)]
    index = SearchIndex(embeddings, subjects, backend="numpy")
    # a slightly perturbed copy of template 42 must find subject p42 first
    probe = embeddings[42] + 0.05 * unit_vectors(rng, 1, 32)[0]
    probe /= np.linalg.norm(probe)
    result = index.search(probe, k=3)
    assert result.n_probes == 1 and result.k == 3
    assert result.subject_ids[0, 0] == "p42"
    assert result.rank_of(["p42"]).tolist() == [1]
    assert result.rank_of(["nobody"]).tolist() == [0]
    assert result.alerts(0.9).tolist() == [True]
    assert result.alerts(0.9999).tolist() == [False]


def test_k_larger_than_watchlist_and_empty_watchlist() -> None:
    rng = np.random.default_rng(5)
    index = SearchIndex(unit_vectors(rng, 5, 8), ["a", "a", "b", "c", "c"], backend="numpy")
    result = index.search(unit_vectors(rng, 4, 8), k=10)
    assert result.k == 3 and result.watchlist_size == 3
    assert all(sorted(row) == ["a", "b", "c"] for row in result.subject_ids.tolist())

    empty = SearchIndex(np.empty((0, 8), np.float32), [], backend="numpy")
    result = empty.search(unit_vectors(rng, 2, 8), k=5)
    assert result.scores.shape == (2, 0)
    assert result.alerts(-1.0).tolist() == [False, False]


def test_refuses_other_embedding_space_and_bad_input() -> None:
    rng = np.random.default_rng(1)
    index = SearchIndex(unit_vectors(rng, 10, 16), list("abcdefghij"), embedding_space="rec@1")
    with pytest.raises(WatchlistError, match="different engines"):
        index.search(unit_vectors(rng, 1, 16), embedding_space="rec@2")
    with pytest.raises(ValueError, match="dimension"):
        index.search(unit_vectors(rng, 1, 8))
    with pytest.raises(ValueError, match="L2-normalised"):
        index.search(np.ones((1, 16), np.float32))
    with pytest.raises(ValueError, match="one subject id per template"):
        SearchIndex(unit_vectors(rng, 3, 16), ["a"])
    with pytest.raises(ValueError, match="k must be"):
        index.search(unit_vectors(rng, 1, 16), k=0)


def test_gpu_request_never_falls_back() -> None:
    rng = np.random.default_rng(2)
    embeddings = unit_vectors(rng, 10, 16)
    with pytest.raises(RuntimeUnavailableError):
        SearchIndex(embeddings, list("abcdefghij"), backend="numpy", device="gpu")
    if faiss_available() and not faiss_gpu_available():
        with pytest.raises(RuntimeUnavailableError, match="no GPU"):
            SearchIndex(embeddings, list("abcdefghij"), backend="faiss", device="gpu")
        # "auto" uses a GPU only when one is really there
        auto = SearchIndex(embeddings, list("abcdefghij"), backend="faiss", device="auto")
        assert auto.backend == "faiss-cpu"
    if not faiss_gpu_available():
        assert SearchIndex(embeddings, list("abcdefghij")).backend == "numpy"


@pytest.mark.parametrize("backend", ["numpy", pytest.param("faiss", marks=needs_faiss)])
def test_concurrent_searches_agree(backend: str) -> None:
    rng = np.random.default_rng(9)
    embeddings = unit_vectors(rng, 3000, 64)
    index = SearchIndex(embeddings, [f"s{i % 1000}" for i in range(3000)], backend=backend)
    probes = unit_vectors(rng, 40, 64)
    expected = index.search(probes, 5).subject_ids
    failures: list[str] = []

    def worker() -> None:
        for _ in range(5):
            if not (index.search(probes, 5).subject_ids == expected).all():
                failures.append("mismatch")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_no_silent_copies_of_the_template_matrix() -> None:
    """copy=False uses the caller's grouped float32 matrix itself; a search allocates scores of
    its probes (16 x 100,000 float32 here: 6 MB), never a second template matrix (51 MB)."""
    import tracemalloc

    rng = np.random.default_rng(8)
    n, dim = 100_000, 128  # 51 MB of templates
    templates = rng.standard_normal((n, dim), dtype=np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    subjects = [f"s{i // 2:06d}" for i in range(n)]  # already grouped by subject
    shared = SearchIndex(templates, subjects, backend="numpy", copy=False)
    assert np.shares_memory(shared._gallery.matrix, templates)
    owned = SearchIndex(templates, subjects, backend="numpy")  # the documented default: a copy
    assert not np.shares_memory(owned._gallery.matrix, templates)
    probes = templates[:16] + 0.01
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    shared.search(probes[:1], k=5)  # warm up (compiled kernels, thread pools)
    tracemalloc.start()
    one = shared.search(probes[:1], k=5)
    single_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    batch = shared.search(probes, k=5)
    batch_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert one.subject_ids[0, 0] == subjects[0] and batch.subject_ids[15, 0] == subjects[15]
    assert single_peak < 0.1 * templates.nbytes, single_peak
    assert batch_peak < 0.5 * templates.nbytes, batch_peak
