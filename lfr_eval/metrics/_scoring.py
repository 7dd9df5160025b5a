"""Probe x watchlist scoring, summarised into a :class:`SearchSet` without keeping the matrix.

Each probe embedding is compared with every watchlist template by cosine similarity; a
subject's score is the best of its templates. Probes whose subject is on the watchlist are mated
searches (the mate's score and rank among watchlist subjects are kept); the others are
non-mated (the top-k subject scores are kept). Probes are processed in chunks so the score
matrix never exceeds a memory budget, which lets 100,000 probes x 10,000 templates run anywhere.

Backends: ``"numpy"`` (CPU, BLAS), ``"torch"`` (CPU or CUDA) and ``"cupy"`` (CUDA). All compute
in float32 and give the same numbers to float32 rounding; a GPU that was asked for but is not
usable raises :class:`~lfr_eval.errors.RuntimeUnavailableError`, never a silent CPU fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lfr_eval.errors import RuntimeUnavailableError
from lfr_eval.faces._types import RuntimeInfo
from lfr_eval.metrics._searches import SearchSet
from lfr_eval.metrics._validation import MetricInputError

Backend = Literal["numpy", "torch", "cupy"]

#: default bytes for one chunk of the (probes x templates) score matrix
DEFAULT_CHUNK_BYTES = 256 * 2**20

MSG_NO_CUDA_TORCH = (
    "scoring on CUDA was requested but torch.cuda.is_available() is False (torch {version}); "
    "install a CUDA build of PyTorch on a machine with an NVIDIA GPU, or use device='cpu'"
)
MSG_NO_CUPY = (
    "the 'cupy' scoring backend was requested but CuPy is not installed or finds no GPU ({why}); "
    "install cupy-cuda12x on a machine with an NVIDIA GPU, or use backend='numpy'"
)


@dataclass(frozen=True)
class ScoringResult:
    """Summarised searches and what computed them.

    Attributes
    ----------
    searches : SearchSet
        Mated and non-mated searches, in probe order within each kind.
    mated_probe_index, non_mated_probe_index : ndarray of int
        Row of the probe array each mated / non-mated search came from.
    runtime : RuntimeInfo
        Backend and device actually used (``gpu_active`` is True only on a GPU).
    """

    searches: SearchSet
    mated_probe_index: np.ndarray
    non_mated_probe_index: np.ndarray
    runtime: RuntimeInfo


def _normalise(x: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise MetricInputError(f"{what} must be a non-empty 2-D array (n, dim), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MetricInputError(f"{what} contains NaN or infinite values")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise MetricInputError(f"{what} has an all-zero embedding; it has no direction to compare")
    return arr / norms


class _Layout:
    """Where each watchlist subject's templates sit after sorting the gallery by subject."""

    def __init__(self, counts: np.ndarray) -> None:
        self.single = bool(np.all(counts == 1))
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        width = int(counts.max())
        offsets = np.minimum(np.arange(width)[None, :], (counts - 1)[:, None])
        # (subjects x max templates) column table; short rows repeat their first template
        self.table = self.starts[:, None] + offsets


def _topk_values(xp: Any, sub: Any, k: int) -> Any:
    """The k largest values of each row, descending, in about one pass over the matrix.

    The row is cut into blocks of ~sqrt(n) columns; the k largest values all lie in the k
    blocks with the largest maxima (any value outside them is beaten by k block maxima), so
    only those k blocks (plus the ragged tail) are partitioned.
    """
    rows, n = sub.shape
    block = max(k, int(np.sqrt(n)))
    n_blocks = n // block
    if n_blocks <= k:
        vals = xp.partition(sub, n - k, axis=1)[:, n - k :]
    else:
        body = sub[:, : n_blocks * block].reshape(rows, n_blocks, block)
        best_blocks = xp.argpartition(body.max(axis=2), n_blocks - k, axis=1)[:, n_blocks - k :]
        cand = xp.take_along_axis(body, best_blocks[:, :, None], axis=1).reshape(rows, k * block)
        if n_blocks * block < n:
            cand = xp.concatenate([cand, sub[:, n_blocks * block :]], axis=1)
        vals = xp.partition(cand, cand.shape[1] - k, axis=1)[:, cand.shape[1] - k :]
    return -xp.sort(-vals, axis=1)


class _NumpyLike:
    """numpy or cupy: the same array API."""

    def __init__(self, xp: Any, name: str, device: str, version: str) -> None:
        self.xp = xp
        self.name = name
        self.device = device
        self.version = version

    def put(self, arr: np.ndarray) -> Any:
        return self.xp.asarray(arr)

    def get(self, arr: Any) -> np.ndarray:
        return arr.get() if hasattr(arr, "get") else np.asarray(arr)

    def subject_scores(self, probes: Any, gallery: Any, layout: _Layout) -> Any:
        scores = probes @ gallery.T
        if layout.single:
            return scores
        if self.xp is np:  # one pass over contiguous per-subject column runs
            return np.maximum.reduceat(scores, layout.starts, axis=1)
        return scores[:, self.xp.asarray(layout.table)].max(axis=2)

    def mate_and_rank(self, sub: Any, mate_codes: Any) -> tuple[Any, Any]:
        xp = self.xp
        mate = xp.take_along_axis(sub, mate_codes[:, None], axis=1)
        rank = xp.count_nonzero(sub > mate, axis=1) + 1
        return mate[:, 0], rank

    def topk(self, sub: Any, k: int) -> Any:
        return _topk_values(self.xp, sub, k)


class _Torch:
    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeUnavailableError(MSG_NO_CUDA_TORCH.format(version=torch.__version__))
        self.dev = torch.device(device)
        self.name = "torch"
        self.device = str(self.dev) if self.dev.type == "cpu" else f"cuda:{self.dev.index or 0}"
        self.version = torch.__version__

    def put(self, arr: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(arr)).to(self.dev)

    def get(self, arr: Any) -> np.ndarray:
        return arr.cpu().numpy()

    def subject_scores(self, probes: Any, gallery: Any, layout: _Layout) -> Any:
        scores = probes @ gallery.T
        if layout.single:
            return scores
        table = self.torch.from_numpy(layout.table).to(self.dev)
        return scores[:, table].amax(dim=2)

    def mate_and_rank(self, sub: Any, mate_codes: Any) -> tuple[Any, Any]:
        mate = sub.gather(1, mate_codes[:, None])
        rank = (sub > mate).sum(dim=1) + 1
        return mate[:, 0], rank

    def topk(self, sub: Any, k: int) -> Any:
        return self.torch.topk(sub, k, dim=1, largest=True, sorted=True).values


def _backend(backend: str, device: str) -> _NumpyLike | _Torch:
    if backend == "numpy":
        if device != "cpu":
            raise RuntimeUnavailableError(
                "the numpy scoring backend runs on the CPU only; use backend='torch' or 'cupy' "
                "with device='cuda' for a GPU"
            )
        return _NumpyLike(np, "numpy", "cpu", np.__version__)
    if backend == "torch":
        return _Torch(device)
    if backend == "cupy":
        if device == "cpu":
            raise MetricInputError("the cupy backend runs on a GPU only; use device='cuda'")
        try:
            import cupy
        except ImportError as exc:
            raise RuntimeUnavailableError(MSG_NO_CUPY.format(why=exc)) from exc
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError as exc:
            raise RuntimeUnavailableError(MSG_NO_CUPY.format(why=exc)) from exc
        if count == 0:
            raise RuntimeUnavailableError(MSG_NO_CUPY.format(why="no CUDA device"))
        return _NumpyLike(cupy, "cupy", f"cuda:{cupy.cuda.Device().id}", cupy.__version__)
    raise MetricInputError(f"backend must be 'numpy', 'torch' or 'cupy', got {backend!r}")


def score_searches(
    probes: ArrayLike,
    probe_subjects: ArrayLike,
    gallery: ArrayLike,
    gallery_subjects: ArrayLike,
    *,
    k: int = 10,
    probe_groups: pd.DataFrame | None = None,
    backend: Backend = "numpy",
    device: str = "cpu",
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> ScoringResult:
    """Search every probe against the watchlist and summarise each search.

    Parameters
    ----------
    probes : array_like of shape (n_probes, dim)
        Probe embeddings (any scale; L2-normalised here so scores are cosine similarities).
    probe_subjects : array_like of shape (n_probes,)
        Subject id of each probe; a probe is mated when its subject is on the watchlist.
    gallery : array_like of shape (n_templates, dim)
        Watchlist templates; a subject may have several.
    gallery_subjects : array_like of shape (n_templates,)
        Subject id of each template. The watchlist size N is the number of distinct ids.
    k : int
        Candidates (distinct subjects) kept per non-mated search, for selectivity; capped at N.
    probe_groups : DataFrame, optional
        One row per probe (e.g. ``sex``, ``ethnicity``), split into the SearchSet's group tables.
    backend : {"numpy", "torch", "cupy"}
    device : str
        ``"cpu"`` or ``"cuda"`` / ``"cuda:1"`` (torch, cupy).
    chunk_bytes : int
        Memory budget of one chunk of the score matrix (float32), in bytes.

    Returns
    -------
    ScoringResult
        The SearchSet (scores in float32), probe indices of each search, and the runtime used.

    Notes
    -----
    A mate's rank is 1 + the number of other watchlist subjects scoring strictly higher
    (ties favour the mate).
    """
    p = _normalise(probes, "probes")
    g = _normalise(gallery, "gallery")
    if p.shape[1] != g.shape[1]:
        raise MetricInputError(
            f"probe and gallery embeddings differ in dimension ({p.shape[1]} vs {g.shape[1]}); "
            "they must come from the same face model"
        )
    p_subj = np.asarray(probe_subjects).astype(str)
    g_subj = np.asarray(gallery_subjects).astype(str)
    if p_subj.shape != (p.shape[0],) or g_subj.shape != (g.shape[0],):
        raise MetricInputError("need one subject id per probe and per gallery template")
    if probe_groups is not None and len(probe_groups) != p.shape[0]:
        raise MetricInputError("probe_groups must have one row per probe")
    if k < 1:
        raise MetricInputError(f"k must be >= 1, got {k}")

    subjects, g_codes = np.unique(g_subj, return_inverse=True)
    n_subjects = subjects.shape[0]
    k = min(k, n_subjects)
    # Gallery sorted by subject: column runs per subject, and column j = subject j when each
    # subject has one template (the common case, which then needs no reduction at all).
    order = np.argsort(g_codes, kind="stable")
    layout = _Layout(np.bincount(g_codes, minlength=n_subjects))

    pos = np.minimum(np.searchsorted(subjects, p_subj), n_subjects - 1)
    mated = subjects[pos] == p_subj
    m_idx, nm_idx = np.flatnonzero(mated), np.flatnonzero(~mated)

    be = _backend(backend, device)
    g_dev = be.put(g[order])
    width = layout.table.shape[1]
    row_bytes = 4 * (g.shape[0] + (0 if layout.single else n_subjects * width))
    chunk = max(1, int(chunk_bytes // row_bytes))

    mate_scores = np.empty(m_idx.size, np.float32)
    mate_ranks = np.empty(m_idx.size, np.int64)
    for start in range(0, m_idx.size, chunk):
        rows = m_idx[start : start + chunk]
        sub = be.subject_scores(be.put(p[rows]), g_dev, layout)
        mate, rank = be.mate_and_rank(sub, be.put(pos[rows].astype(np.int64)))
        mate_scores[start : start + rows.size] = be.get(mate)
        mate_ranks[start : start + rows.size] = be.get(rank)
    topk = np.empty((nm_idx.size, k), np.float32)
    for start in range(0, nm_idx.size, chunk):
        rows = nm_idx[start : start + chunk]
        sub = be.subject_scores(be.put(p[rows]), g_dev, layout)
        topk[start : start + rows.size] = be.get(be.topk(sub, k))

    groups = probe_groups.reset_index(drop=True) if probe_groups is not None else None
    searches = SearchSet(
        watchlist_size=int(n_subjects),
        mate_scores=mate_scores,
        mate_ranks=mate_ranks,
        mated_subjects=p_subj[m_idx],
        non_mated_topk=topk,
        non_mated_subjects=p_subj[nm_idx],
        mated_groups=pd.DataFrame()
        if groups is None
        else groups.iloc[m_idx].reset_index(drop=True),
        non_mated_groups=pd.DataFrame()
        if groups is None
        else groups.iloc[nm_idx].reset_index(drop=True),
    )
    gpu = be.device.startswith("cuda")
    runtime = RuntimeInfo(
        name=be.name,
        providers=(be.device,),
        gpu_requested=device != "cpu",
        gpu_active=gpu,
        precision="fp32",
        version=be.version,
    )
    return ScoringResult(searches, m_idx, nm_idx, runtime)
