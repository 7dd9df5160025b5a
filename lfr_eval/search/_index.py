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
from typing import Literal

import numpy as np

from lfr_eval.errors import RuntimeUnavailableError, WatchlistError

Backend = Literal["numpy", "faiss", "auto"]
Device = Literal["cpu", "gpu", "auto"]

#: Largest similarity block (probes × templates) the numpy backend materialises at once.
#: 2**24 float32 values is 64 MiB: big enough for BLAS to run at full speed, small enough that a
#: batch of probes against a million templates does not exhaust memory.
_BLOCK_ELEMENTS = 1 << 24

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

        Returns a bool array of shape (n_probes,).
        """
        return self.best_scores >= np.float32(threshold)

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
        # einsum avoids a temporary as large as the matrix (2 GiB for a million 512-d rows);
        # a NaN or infinite element makes its row's norm NaN or infinite, so this catches those.
        norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
        if not np.isfinite(norms).all():
            raise ValueError(f"{name} contain NaN or infinite values")
        if np.abs(norms - 1.0).max() > _NORM_TOLERANCE:
            raise ValueError(
                f"{name} must be L2-normalised (cosine similarity is a dot product of unit "
                f"vectors); norms range {norms.min():.4f}..{norms.max():.4f}"
            )
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
        ``benchmarks/bench_search.py``). Both are exact and return the same candidates (up to
        float rounding, about 1e-6, which only matters for exact ties).
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

        # Group templates by subject (stable, so a subject's templates keep their order):
        # contiguous segments let numpy take each subject's best score with one reduceat.
        codes_unique, codes = np.unique(subjects.astype(str), return_inverse=True)
        codes = codes.astype(np.int64)
        if np.all(codes[1:] >= codes[:-1]):
            # already grouped (e.g. rows ordered by subject id): no copy of a large matrix
            self._matrix = matrix.copy() if copy and matrix is embeddings else matrix
            self._template_subject = codes
            self._template_ids = ids.copy()
        else:
            order = np.argsort(codes, kind="stable")
            self._matrix = matrix[order]
            self._template_subject = codes[order]
            self._template_ids = ids[order]
        self._subject_names = codes_unique.astype(object)
        counts = np.bincount(self._template_subject, minlength=len(codes_unique))
        self._segment_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._max_templates = int(counts.max()) if counts.size else 0
        self._dim = int(dim)
        self.embedding_space = embedding_space

        self._backend, self._device = self._resolve_backend(backend, device)
        self._faiss_index = None
        self._faiss_lock = threading.Lock()
        if self._backend == "faiss" and n_templates:
            self._faiss_index = self._build_faiss()
        self._matrix.setflags(write=False)

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

    def _build_faiss(self):
        import faiss

        index = faiss.IndexFlatIP(self._dim)
        if self._device == "gpu":
            resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(resources, 0, index)
            self._faiss_resources = resources  # must outlive the GPU index
        index.add(self._matrix)
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
        return int(self._matrix.shape[0])

    @property
    def watchlist_size(self) -> int:
        """N: the number of distinct subjects."""
        return len(self._subject_names)

    @property
    def subject_ids(self) -> tuple[str, ...]:
        """The distinct subject ids, sorted."""
        return tuple(str(s) for s in self._subject_names)

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
            subject_ids=self._subject_names[subj],
            template_ids=self._template_ids[rows],
            watchlist_size=self.watchlist_size,
            backend=self.backend,
        )

    @staticmethod
    def _top_k_rows(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and values of the k largest entries of each row, sorted descending."""
        n_cols = values.shape[1]
        if k < n_cols:
            part = np.argpartition(values, n_cols - k, axis=1)[:, n_cols - k :]
        else:
            part = np.broadcast_to(np.arange(n_cols), values.shape).copy()
        # Sort descending by score; among equal scores the lower column (subject) comes first,
        # so ties are ordered the same way by both backends.
        part_sorted = np.sort(part, axis=1)
        part_values = np.take_along_axis(values, part_sorted, axis=1)
        order = np.argsort(-part_values, axis=1, kind="stable")
        return (
            np.take_along_axis(part_sorted, order, axis=1),
            np.take_along_axis(part_values, order, axis=1),
        )

    def _template_blocks(self, block_templates: int) -> list[tuple[int, int, int, int]]:
        """Split templates into blocks of about ``block_templates`` rows on subject boundaries.

        Returns ``(first template, end template, first subject, end subject)`` per block; no
        subject straddles two blocks, so per-block subject maxima are final.
        """
        starts = self._segment_starts
        n_subjects, n_templates = len(starts), self.n_templates
        blocks = []
        s0 = 0
        while s0 < n_subjects:
            t0 = int(starts[s0])
            s1 = int(np.searchsorted(starts, t0 + block_templates, side="right")) - 1
            s1 = n_subjects if t0 + block_templates >= n_templates else max(s1, s0 + 1)
            t1 = int(starts[s1]) if s1 < n_subjects else n_templates
            blocks.append((t0, t1, s0, s1))
            s0 = s1
        return blocks

    def _search_numpy(
        self, queries: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_probes = queries.shape[0]
        single = self._max_templates == 1
        # Tile probes x templates so each similarity block holds about _BLOCK_ELEMENTS values:
        # all probes of a chunk share one pass over the templates (memory traffic), and a
        # running top-k is merged across template blocks.
        chunk = max(1, min(n_probes, 1024))
        blocks = self._template_blocks(max(1, _BLOCK_ELEMENTS // chunk))
        out_scores = np.empty((n_probes, k), dtype=np.float32)
        out_subjects = np.empty((n_probes, k), dtype=np.int64)
        out_rows = np.empty((n_probes, k), dtype=np.int64)
        for start in range(0, n_probes, chunk):
            probes = queries[start : start + chunk]
            best: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
            for t0, t1, s0, s1 in blocks:
                block = probes @ self._matrix[t0:t1].T  # cosine, (chunk, t1 - t0)
                kk = min(k, s1 - s0)
                if single:
                    cols, vals = self._top_k_rows(block, kk)
                    subjects, rows = cols + s0, cols + t0
                else:
                    segment_starts = self._segment_starts[s0:s1] - t0
                    per_subject = np.maximum.reduceat(block, segment_starts, axis=1)
                    cols, vals = self._top_k_rows(per_subject, kk)
                    subjects = cols + s0
                    rows = self._best_template_rows(block, subjects, t0)
                if best is None:
                    best = (vals, subjects, rows)
                    continue
                # Earlier blocks hold lower subject indices, so a stable sort on the score keeps
                # the tie order of a single pass (lower subject first).
                merged_vals = np.concatenate([best[0], vals], axis=1)
                order = np.argsort(-merged_vals, axis=1, kind="stable")[:, :k]
                best = (
                    np.take_along_axis(merged_vals, order, axis=1),
                    np.take_along_axis(np.concatenate([best[1], subjects], axis=1), order, 1),
                    np.take_along_axis(np.concatenate([best[2], rows], axis=1), order, 1),
                )
            assert best is not None  # there is at least one block when k >= 1
            stop = start + len(probes)
            out_scores[start:stop], out_subjects[start:stop], out_rows[start:stop] = best
        return out_scores, out_subjects, out_rows

    def _best_template_rows(self, block: np.ndarray, subjects: np.ndarray, t0: int) -> np.ndarray:
        """Row of the best template of each chosen subject, shape like ``subjects``.

        ``block`` holds the similarities of templates ``t0, t0 + 1, …``.
        """
        starts = self._segment_starts[subjects] - t0  # (chunk, k), local to the block
        ends = np.append(self._segment_starts[1:], self.n_templates)[subjects] - t0
        offsets = np.arange(self._max_templates)
        rows = starts[..., None] + offsets  # (chunk, k, m)
        valid = rows < ends[..., None]
        rows = np.where(valid, rows, starts[..., None])
        gathered = np.take_along_axis(block[:, None, :], rows, axis=2)
        gathered = np.where(valid, gathered, -np.inf)
        best = np.take_along_axis(rows, gathered.argmax(axis=2)[..., None], axis=2)[..., 0]
        return best + t0

    def _search_faiss(
        self, queries: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # The k-th best subject's best template ranks at most (k - 1) * m + 1 among templates
        # (m = most templates of one subject), so k * m templates always hold k distinct subjects.
        k_templates = min(self.n_templates, k * self._max_templates)
        # GPU indexes are not safe for concurrent use; CPU IndexFlat search is, but the lock
        # costs nothing next to the search itself.
        with self._faiss_lock:
            scores, rows = self._faiss_index.search(queries, k_templates)
        rows = rows.astype(np.int64, copy=False)
        subjects = self._template_subject[rows]
        if self._max_templates == 1:
            return scores[:, :k].astype(np.float32), subjects[:, :k], rows[:, :k]
        return self._collapse_sorted(scores, subjects, rows, k)

    def _collapse_sorted(
        self, scores: np.ndarray, subjects: np.ndarray, rows: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keep each subject's first (best) template in score-sorted rows, then the top k."""
        n_probes, width = scores.shape
        probe = np.repeat(np.arange(n_probes, dtype=np.int64), width)
        flat_subject = subjects.ravel()
        flat_score = scores.ravel()
        flat_row = rows.ravel()
        position = np.tile(np.arange(width, dtype=np.int64), n_probes)
        # Order by (probe, subject, position): the first entry of each (probe, subject) group is
        # that subject's best template because faiss returns each row sorted by score.
        order = np.lexsort((position, flat_subject, probe))
        p, s = probe[order], flat_subject[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (p[1:] != p[:-1]) | (s[1:] != s[:-1])
        keep = order[first]
        p, s = probe[keep], flat_subject[keep]
        v, r = flat_score[keep], flat_row[keep]
        # Within each probe sort by score descending, subject ascending (same tie rule as numpy).
        order = np.lexsort((s, -v, p))
        p, s, v, r = p[order], s[order], v[order], r[order]
        starts = np.searchsorted(p, np.arange(n_probes))
        take = starts[:, None] + np.arange(k)
        return v[take].astype(np.float32), s[take], r[take]
