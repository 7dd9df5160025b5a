"""Exact 1:N cosine search over a watchlist's templates, with numpy or faiss.

A :class:`SearchIndex` is an immutable snapshot: the live page's video thread can search one while
the UI thread enrols into the store and later swaps in a new index.

Ranks are over distinct *subjects*, as NIST FRTE 1:N defines them: a subject enrolled with several
templates is scored by its best template, so one person never takes two places in a candidate
list.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lfr_eval.errors import RuntimeUnavailableError, WatchlistError
from lfr_eval.search._kernel import (
    _MIN_PRODUCT_ROWS,
    Gallery,
    faiss_top_k,
    regular_matmul,
    row_norms,
    score_all,
    score_block,
    single_thread_limits,
    unit_rows,
)

Backend = Literal["numpy", "faiss", "auto"]
Device = Literal["cpu", "gpu", "auto"]

#: Tolerance on the L2 norm of embeddings and probes. Engines return unit vectors in float32;
#: anything further from 1 than this was not normalised and would not give cosine similarities.
_NORM_TOLERANCE = 1e-3

MSG_ENGINE_MISMATCH = (
    "probe embeddings come from embedding space {probe!r} but the watchlist was enrolled in "
    "{index!r}; templates from different engines cannot be compared. Use the engine the "
    "watchlist was enrolled with, or enrol the watchlist again with this engine."
)


def faiss_available() -> bool:
    """Whether the ``faiss`` package can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def faiss_gpu_available() -> bool:
    """Whether faiss can really run on a GPU here.

    True only if the installed faiss was built with GPU support *and* it sees at least one
    device (``faiss.get_num_gpus() > 0``). A CUDA-capable build on a machine with no GPU, or
    ``faiss-cpu`` on a machine with one, both give False.
    """
    try:
        import faiss
    except ImportError:
        return False
    if not hasattr(faiss, "StandardGpuResources"):
        return False
    return int(faiss.get_num_gpus()) > 0


@dataclass(frozen=True, eq=False)
class SearchResult:
    """Top-k candidates of a batch of 1:N searches.

    Attributes
    ----------
    scores : ndarray of shape (n_probes, k), float32
        Cosine similarity in [-1, 1] of each candidate (the subject's best template), sorted
        descending along each row.
    subject_ids : ndarray of shape (n_probes, k), object (str)
        Subject id of each candidate; the subjects in one row are distinct.
    template_ids : ndarray of shape (n_probes, k), int64
        Id of the template that gave each candidate its score (the index's ``template_ids``,
        or row numbers of the embedding matrix when none were given).
    watchlist_size : int
        N, the number of distinct subjects searched.
    backend : str
        What ran the search: ``"numpy"``, ``"faiss-cpu"`` or ``"faiss-gpu"``.

    Notes
    -----
    ``k`` is ``min(requested k, watchlist_size)``: a watchlist of 3 subjects returns at most 3
    candidates, and an empty watchlist returns ``k == 0`` columns (no candidate, never an alert).
    """

    scores: np.ndarray
    subject_ids: np.ndarray
    template_ids: np.ndarray
    watchlist_size: int
    backend: str

    @property
    def n_probes(self) -> int:
        return int(self.scores.shape[0])

    @property
    def k(self) -> int:
        """Number of candidates per probe actually returned."""
        return int(self.scores.shape[1])

    @property
    def best_scores(self) -> np.ndarray:
        """Best similarity of each probe, shape (n_probes,); ``-inf`` for an empty watchlist."""
        if self.k == 0:
            return np.full(self.n_probes, -np.inf, dtype=np.float32)
        return self.scores[:, 0]

    def alerts(self, threshold: float) -> np.ndarray:
        """Whether each probe raises an alert: best similarity ``>=`` threshold (cosine).

        The comparison is made in float64, as the evaluation counts a score at a threshold
        (:func:`~lfr_eval.metrics.count_at_or_above`, the kernel's counts): rounding the
        threshold to float32 first would move 0.7 down to 0.69999999 and alert on a score
        the evaluation does not count at 0.7.

        Returns a bool array of shape (n_probes,).
        """
        best = np.asarray(self.best_scores, dtype=np.float64)
        return np.asarray(best >= float(threshold), dtype=bool)

    def rank_of(self, subject_ids: Sequence[str]) -> np.ndarray:
        """1-based rank of a given subject among each probe's candidates; 0 if not in the top k.

        Parameters
        ----------
        subject_ids : sequence of str, length n_probes
            The subject to look for in each row (e.g. the probe's true identity).
        """
        wanted = np.asarray(subject_ids, dtype=object).reshape(-1, 1)
        if wanted.shape[0] != self.n_probes:
            raise ValueError("rank_of needs one subject id per probe")
        hit = self.subject_ids == wanted
        found = hit.any(axis=1)
        return np.where(found, hit.argmax(axis=1) + 1, 0).astype(np.int64)


def _as_unit_matrix(array: np.ndarray, name: str, dim: int | None = None) -> np.ndarray:
    matrix = np.asarray(array)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d); got shape {matrix.shape}")
    if dim is not None and matrix.shape[1] != dim:
        raise ValueError(
            f"{name} have dimension {matrix.shape[1]} but the index holds {dim}-d embeddings"
        )
    if not np.issubdtype(matrix.dtype, np.floating):
        raise ValueError(f"{name} must be floating point; got {matrix.dtype}")
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if matrix.size:
        # norms row by row in float64 chunks (no temporary as large as the matrix: 2 GiB for
        # a million 512-d rows); a NaN or infinite element makes its row's norm NaN or
        # infinite, so this catches those.
        norms = row_norms(matrix)
        if not np.isfinite(norms).all():
            raise ValueError(f"{name} contain NaN or infinite values")
        if np.abs(norms - 1.0).max() > _NORM_TOLERANCE:
            raise ValueError(
                f"{name} must be L2-normalised (cosine similarity is a dot product of unit "
                f"vectors); norms range {norms.min():.4f}..{norms.max():.4f}"
            )
        # rows a little off unit norm are normalised exactly as the evaluation does
        # (score_searches), so both give the same scores for the same vectors
        matrix = unit_rows(matrix, norms)
    return matrix


class SearchIndex:
    """Exact cosine top-k search over a fixed set of templates.

    Parameters
    ----------
    embeddings : ndarray of shape (n_templates, d)
        Unit-norm template embeddings (float32, or anything that casts to it).
    subject_ids : sequence of str, length n_templates
        Subject of each template. A subject may have several templates.
    template_ids : sequence of int, optional
        Id of each template (e.g. the store's row id), reported in results. Default: row numbers.
    backend : {"auto", "numpy", "faiss"}
        ``"auto"``: a faiss GPU index when the device allows it and a GPU really is available,
        otherwise numpy (on the CPU numpy is as fast as faiss-cpu's flat index, see
        ``benchmarks/bench_search.py``). Both are exact searches. numpy gives the scoring
        kernel's float32 scores bit for bit (those of :func:`~lfr_eval.metrics.score_searches`
        and the NPL design on the same vectors, whatever the batch), so an alert at a
        threshold is decided as the evaluation counts it. faiss computes its own products (its
        BLAS calls and SIMD loops): scores within float32 rounding of numpy's (at most
        ``2 * float32_dot_error(d)``, about 1.5e-5 at 128-d and 6e-5 at 512-d, typically
        1e-7), so candidates may differ where two subjects score that close.
    device : {"auto", "cpu", "gpu"}
        ``"gpu"`` raises :class:`RuntimeUnavailableError` unless :func:`faiss_gpu_available`
        (never a silent fall-back); ``"auto"`` uses a GPU only when one really is available;
        ``"cpu"`` never does. numpy always runs on the CPU (``"gpu"`` with ``backend="numpy"``
        is refused).
    embedding_space : str, optional
        :attr:`EngineId.recognizer_key` of the engine that made the templates; when set,
        :meth:`search` refuses probes from another embedding space.
    copy : bool
        Copy ``embeddings`` (default). Pass False only for an array nothing else will modify,
        to save memory with large watchlists (a million 512-d templates take 2 GiB).

    Notes
    -----
    The index never changes its arrays, so it is safe to search from several threads.
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        subject_ids: Sequence[str],
        *,
        template_ids: Sequence[int] | np.ndarray | None = None,
        backend: Backend = "auto",
        device: Device = "auto",
        embedding_space: str | None = None,
        copy: bool = True,
    ) -> None:
        matrix = np.asarray(embeddings)
        if matrix.ndim != 2:
            raise ValueError(f"embeddings must be a 2-D array (n, d); got shape {matrix.shape}")
        matrix = _as_unit_matrix(matrix, "embeddings")
        n_templates, dim = matrix.shape
        subjects = np.asarray(list(subject_ids), dtype=object)
        if subjects.shape != (n_templates,):
            raise ValueError(
                f"need one subject id per template: {n_templates} embeddings, "
                f"{subjects.shape[0]} subject ids"
            )
        if template_ids is None:
            ids = np.arange(n_templates, dtype=np.int64)
        else:
            ids = np.asarray(template_ids, dtype=np.int64)
            if ids.shape != (n_templates,):
                raise ValueError("need one template id per template")

        # Group templates by subject (stable, so a subject's templates keep their order): the
        # scoring kernel takes each subject's best template over contiguous rows. Rows already
        # grouped (e.g. ordered by subject id) are used as they are, copied only if ``copy``.
        self._gallery = Gallery.build(matrix, subjects, copy=copy and matrix is embeddings)
        self._template_ids = ids[self._gallery.template_rows]
        self._template_ids.setflags(write=False)
        self._dim = int(dim)
        self.embedding_space = embedding_space

        self._backend, self._device = self._resolve_backend(backend, device)
        self._faiss_index: Any = None  # faiss ships no type information
        self._faiss_lock = threading.Lock()
        if self._backend == "faiss" and n_templates:
            self._faiss_index = self._build_faiss()

    @staticmethod
    def _resolve_backend(backend: str, device: str) -> tuple[str, str]:
        if backend not in ("auto", "numpy", "faiss"):
            raise ValueError(f"unknown search backend {backend!r}; use 'auto', 'numpy' or 'faiss'")
        if device not in ("cpu", "gpu", "auto"):
            raise ValueError(f"unknown search device {device!r}; use 'cpu', 'gpu' or 'auto'")
        if backend == "auto":
            if device == "gpu" or (device == "auto" and faiss_gpu_available()):
                backend = "faiss"
            else:
                # On the CPU numpy's BLAS matched or beat faiss-cpu's flat index in
                # benchmarks/bench_search.py (faiss-cpu wheels bundle an older OpenBLAS).
                return "numpy", "cpu"
        if backend == "faiss" and not faiss_available():
            raise RuntimeUnavailableError(
                "the faiss search backend was requested but faiss is not installed; "
                "pip install faiss-cpu (or faiss-gpu-cu12), or use --search-backend numpy"
            )
        if backend == "numpy":
            if device == "gpu":
                raise RuntimeUnavailableError(
                    "the numpy search backend runs on the CPU only; use the faiss backend "
                    "with a GPU build of faiss for GPU search"
                )
            return "numpy", "cpu"
        gpu = faiss_gpu_available()
        if device == "gpu" and not gpu:
            raise RuntimeUnavailableError(
                "GPU search was requested but faiss sees no GPU (faiss.get_num_gpus() == 0 or a "
                "CPU-only faiss build); install faiss-gpu-cu12 on a machine with a CUDA GPU, "
                "or search on the CPU"
            )
        return "faiss", "gpu" if (device != "cpu" and gpu) else "cpu"

    def _build_faiss(self) -> Any:
        import faiss

        index: Any = faiss.IndexFlatIP(self._dim)
        if self._device == "gpu":
            resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(resources, 0, index)
            self._faiss_resources = resources  # must outlive the GPU index
        index.add(self._gallery.matrix)
        return index

    # ------------------------------------------------------------------ properties
    @property
    def backend(self) -> str:
        """``"numpy"``, ``"faiss-cpu"`` or ``"faiss-gpu"``: what really runs the search."""
        return "numpy" if self._backend == "numpy" else f"faiss-{self._device}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def n_templates(self) -> int:
        return self._gallery.n_templates

    @property
    def watchlist_size(self) -> int:
        """N: the number of distinct subjects."""
        return self._gallery.n_subjects

    @property
    def subject_ids(self) -> tuple[str, ...]:
        """The distinct subject ids, sorted."""
        return tuple(str(s) for s in self._gallery.subject_ids)

    # ------------------------------------------------------------------ search
    def search(
        self,
        probes: np.ndarray,
        k: int = 1,
        *,
        embedding_space: str | None = None,
    ) -> SearchResult:
        """Find the ``k`` most similar distinct subjects for each probe.

        Parameters
        ----------
        probes : ndarray of shape (n_probes, d) or (d,)
            Unit-norm probe embeddings.
        k : int
            Candidates per probe (>= 1). Capped at the watchlist size.
        embedding_space : str, optional
            :attr:`EngineId.recognizer_key` of the probe's engine. If both it and the index's
            embedding space are known and differ, the search is refused.

        Returns
        -------
        SearchResult

        Raises
        ------
        WatchlistError
            The probes come from another embedding space than the templates.
        """
        if (
            embedding_space is not None
            and self.embedding_space is not None
            and embedding_space != self.embedding_space
        ):
            raise WatchlistError(
                MSG_ENGINE_MISMATCH.format(probe=embedding_space, index=self.embedding_space)
            )
        if k < 1:
            raise ValueError(f"k must be at least 1; got {k}")
        queries = _as_unit_matrix(probes, "probes", self._dim)
        n_probes = queries.shape[0]
        k_eff = min(int(k), self.watchlist_size)
        if k_eff == 0 or n_probes == 0:
            return SearchResult(
                scores=np.empty((n_probes, k_eff), dtype=np.float32),
                subject_ids=np.empty((n_probes, k_eff), dtype=object),
                template_ids=np.empty((n_probes, k_eff), dtype=np.int64),
                watchlist_size=self.watchlist_size,
                backend=self.backend,
            )
        if self._backend == "numpy":
            scores, subj, rows = self._search_numpy(queries, k_eff)
        else:
            scores, subj, rows = self._search_faiss(queries, k_eff)
        return SearchResult(
            scores=scores,
            subject_ids=self._gallery.subject_ids[subj],
            template_ids=self._template_ids[rows],
            watchlist_size=self.watchlist_size,
            backend=self.backend,
        )

    def _search_numpy(
        self, queries: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # One probe is a matrix-vector product: one BLAS thread does it faster than a pool that
        # must wake up (and, on a loaded machine, wait for cores); see benchmarks/bench_search.py.
        if queries.shape[0] <= _SCREENED_PROBES:
            with single_thread_limits():
                return screened_top_k(queries, self._gallery, k)
        part = score_all(queries, self._gallery, k=k, block=_PROBE_BLOCK)
        return part.top_scores, part.top_subjects, part.top_rows

    def _search_faiss(
        self, queries: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # GPU indexes are not safe for concurrent use; CPU IndexFlat search is, but the lock
        # costs nothing next to the search itself.
        def run(q: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
            with self._faiss_lock:
                scores, rows = self._faiss_index.search(q, width)
            return np.asarray(scores), np.asarray(rows)

        if queries.shape[0] <= _SINGLE_THREAD_PROBES and self._device == "cpu":
            with single_thread_limits():
                return faiss_top_k(run, self._gallery, queries, k)
        return faiss_top_k(run, self._gallery, queries, k)


#: Searches of at most this many probes run with one BLAS/OpenMP thread.
_SINGLE_THREAD_PROBES = 1

#: Searches of at most this many probes (the live page's one face) take the numpy backend's
#: screened path (:func:`screened_top_k`); larger ones the scoring kernel. Both give the same
#: bits: the kernel pads products of fewer rows to this + 1 anyway.
_SCREENED_PROBES = _MIN_PRODUCT_ROWS - 1


def float32_dot_error(dim: int, norm_tolerance: float = _NORM_TOLERANCE) -> float:
    """A bound on how far any float32 evaluation of a dot product of two ``dim``-d vectors of
    norm at most ``1 + norm_tolerance`` lies from the exact dot product (whatever the order of
    the sum, with or without fused multiply-adds): ``gamma_dim * |p| |t|`` with
    ``gamma_n = n u / (1 - n u)``, ``u = 2**-24`` (Higham, *Accuracy and Stability of
    Numerical Algorithms*, 2nd ed., eq. 3.5 with Cauchy-Schwarz)."""
    nu = dim * 2.0**-24
    return nu / (1.0 - nu) * (1.0 + norm_tolerance) ** 2


def screened_top_k(
    queries: np.ndarray, gallery: Gallery, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scoring kernel's top-k for a few probes, bit for bit, at matrix-vector speed.

    One probe × the gallery is a matrix-vector product (BLAS gemv, memory-bound), which
    rounds differently from the kernel's large products by up to about 5e-7; padding it to
    a product the kernel would make costs 3× more for a large watchlist (measured:
    ``benchmarks/bench_live_search.py``). So the gemv scores only *screen*: each float32
    evaluation of a dot product lies within ``e = float32_dot_error(d)`` of the exact value,
    so the gemv and kernel scores of a pair differ by at most ``2 e``; a subject of the
    kernel's top-k then has a gemv score at least the k-th best gemv score minus ``4 e``
    (order statistics move by at most ``2 e``). Every template of those subjects is rescored
    with :func:`~lfr_eval.search._kernel.regular_matmul` (the kernel's rounding) and the top-k
    is made from those scores as the kernel makes it: a subject's first best template, ties
    by the lower subject code. The screen keeps about k subjects (a few more within ``4 e``
    of the k-th: 3e-5 at 128-d, 1.2e-4 at 512-d); should it keep more than an eighth of the
    templates (near-copies), the probe goes through
    :func:`~lfr_eval.search._kernel.score_block` instead.

    Returns top scores (float32), subject codes and gallery rows, each of shape (n, k).
    """
    n = queries.shape[0]
    n_sub, starts = gallery.n_subjects, gallery.starts
    single = gallery.max_templates <= 1
    scores = np.full((n, k), -np.inf, np.float32)
    subjects = np.full((n, k), -1, np.int64)
    rows = np.full((n, k), -1, np.int64)
    approx = queries @ gallery.matrix.T
    best = approx if single else np.maximum.reduceat(approx, starts[:-1], axis=1)
    # the k-th best screening score of each probe
    kth = best.max(axis=1) if k == 1 else np.partition(best, n_sub - k, axis=1)[:, n_sub - k]
    margin = 4.0 * float32_dot_error(gallery.dim)
    for i in range(n):
        cand = np.flatnonzero(best[i] >= kth[i] - margin)
        lo = starts[cand]
        widths = starts[cand + 1] - lo
        total = int(widths.sum())
        if total > max(64, gallery.n_templates // 8):
            part = score_block(queries[i : i + 1], gallery, k=k)
            scores[i], subjects[i], rows[i] = part.top_scores, part.top_subjects, part.top_rows
            continue
        run = np.cumsum(widths) - widths  # where each candidate's templates start
        t_rows = np.repeat(lo - run, widths) + np.arange(total)
        exact = regular_matmul(queries[i : i + 1], gallery.matrix[t_rows])[0]
        if single:
            s_best, s_row = exact, t_rows
        else:
            s_best = np.maximum.reduceat(exact, run)
            # the first template at the subject's best, as the kernel takes it
            at_best = np.where(exact == np.repeat(s_best, widths), np.arange(total), total)
            s_row = t_rows[np.minimum.reduceat(at_best, run)]
        order = np.lexsort((cand, -s_best))[:k]
        scores[i], subjects[i], rows[i] = s_best[order], cand[order], s_row[order]
    return scores, subjects, rows


#: Probes scored together by the numpy backend (one pass over the templates per block).
_PROBE_BLOCK = 1024
