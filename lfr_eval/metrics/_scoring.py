"""Probe x watchlist scoring, summarised into a :class:`SearchSet` without keeping the matrix.

Each probe embedding is compared with every watchlist template by cosine similarity; a
subject's score is the best of its templates. Probes whose subject is on the watchlist are mated
searches (the mate's score and rank among watchlist subjects are kept); the others are
non-mated (the top-k subject scores are kept). Probes are processed in chunks so the score
matrix never exceeds a memory budget, which lets 100,000 probes x 10,000 templates run anywhere.

The scores come from the project's one scoring kernel (:mod:`lfr_eval.search._kernel`), the
same code the live page's :class:`~lfr_eval.search.SearchIndex` runs. Backends: ``"numpy"``
(CPU, BLAS) and ``"torch"`` (CPU or CUDA, fp32 or fp16). numpy gives the live search's
scores bit for bit (each probe/template pair one float32, whatever the batch); torch fp32
agrees to float32 rounding; a GPU that was asked for but is not usable raises
:class:`~lfr_eval.errors.RuntimeUnavailableError`, never a silent CPU fallback.

Given a threshold grid, each non-mated search also gets, in the same pass, the number of
watchlist subjects at or above every threshold (optionally split by count groups of subjects):
what watchlist-size scaling and selectivity need, without the probes × watchlist matrix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lfr_eval.errors import RuntimeUnavailableError
from lfr_eval.faces._types import RuntimeInfo
from lfr_eval.metrics._searches import SearchSet
from lfr_eval.metrics._validation import MetricInputError

if TYPE_CHECKING:
    from lfr_eval.search._kernel import Gallery, Precision

Backend = Literal["numpy", "torch"]


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
    non_mated_counts : ndarray of shape (n_non_mated, n_groups, n_thresholds), or None
        With ``thresholds``: watchlist subjects of each count group whose best score is
        ``>= thresholds[t]``, per non-mated search; in the smallest type that holds the
        largest group's subjects (uint8, uint16 or int32: widen before summing).
    non_mated_top_rows : ndarray of shape (n_non_mated, k), int64
        Gallery row (of the ``gallery`` argument) of the template behind each of
        ``searches.non_mated_topk``.
    """

    searches: SearchSet
    mated_probe_index: np.ndarray
    non_mated_probe_index: np.ndarray
    runtime: RuntimeInfo
    non_mated_counts: np.ndarray | None = None
    non_mated_top_rows: np.ndarray | None = None


def _normalise(x: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise MetricInputError(f"{what} must be a non-empty 2-D array (n, dim), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MetricInputError(f"{what} contains NaN or infinite values")
    from lfr_eval.search._kernel import row_norms, unit_rows

    norms = row_norms(arr)
    if np.any(norms == 0):
        raise MetricInputError(f"{what} has an all-zero embedding; it has no direction to compare")
    # row by row, as the live page's SearchIndex does: a probe's scores never depend on the
    # other probes (or templates) it came with; unit rows are not copied (a large gallery)
    return unit_rows(arr, norms)


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
    precision: Precision = "fp32",
    chunk_bytes: int | None = None,
    thresholds: ArrayLike | None = None,
    count_groups: ArrayLike | None = None,
    n_count_groups: int | None = None,
    memory_bytes: int | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
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
    backend : {"numpy", "torch"}
    device : str
        ``"cpu"`` or ``"cuda"`` / ``"cuda:1"`` (torch).
    precision : {"fp32", "fp16"}
        fp16 (torch only): products in half precision, about 1e-3 from fp32.
    chunk_bytes : int, optional
        Memory of one tile of the score matrix (float32), in bytes (default: the backend's,
        2 MiB per 512-probe chunk for numpy). It sets the matrix products' shapes (not the
        numpy backend's scores: every product is padded to a shape BLAS rounds alike).
    thresholds : array_like, optional
        Ascending similarity grid: each non-mated search's subjects at or above every
        threshold are counted (:attr:`ScoringResult.non_mated_counts`).
    count_groups : array_like of int, shape (n_templates,), optional
        Count group (>= 0) of each template's subject (constant within a subject); counts are
        split by it. Default: one group.
    n_count_groups : int, optional
        Number of count groups (default the largest code + 1); code -1 marks subjects that
        are searched but not counted.
    memory_bytes : int, optional
        Memory setting of the run (default 3 GiB: fits a 4 GB machine); probe blocks are sized
        from it and large counts are memory-mapped (see :mod:`lfr_eval.search._blocks`). The
        numbers are bit-identical whatever it is.
    work_dir : path, optional
        Keep finished blocks there (resume after Ctrl-C or a crash; inputs are hashed, so
        changed inputs never reuse them).
    progress : bool, optional
        tqdm bars on stderr.

    Returns
    -------
    ScoringResult
        The SearchSet (scores in float32), probe indices of each search, and the runtime used.

    Notes
    -----
    A mate's rank is 1 + the number of other watchlist subjects scoring strictly higher
    (ties favour the mate). Each probe is scored once.
    """
    from lfr_eval.search._blocks import DEFAULT_MEMORY_BYTES, score_probes
    from lfr_eval.search._kernel import Gallery, kernel_backend

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
    if backend not in ("numpy", "torch"):
        raise MetricInputError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    if backend == "numpy" and device != "cpu":
        raise RuntimeUnavailableError(
            "the numpy scoring backend runs on the CPU only; use backend='torch' with "
            "device='cuda' for a GPU"
        )

    subject_groups = None
    if count_groups is not None:
        per_template = np.asarray(count_groups, dtype=np.int64)
        if per_template.shape != (g.shape[0],) or (per_template < -1).any():
            raise MetricInputError("count_groups needs one code >= -1 per gallery template")
        _, first = np.unique(g_subj, return_index=True)
        subject_groups = per_template[first]
    wl = Gallery.build(g, g_subj, subject_groups=subject_groups, n_groups=n_count_groups)
    n_subjects = wl.n_subjects
    k = min(k, n_subjects)
    mate = wl.codes_of(p_subj)
    m_idx, nm_idx = np.flatnonzero(mate >= 0), np.flatnonzero(mate < 0)

    try:
        be = kernel_backend(backend, device, precision)
    except ValueError as exc:
        raise MetricInputError(str(exc)) from exc
    memory = DEFAULT_MEMORY_BYTES if memory_bytes is None else int(memory_bytes)
    mated = score_probes(
        p[m_idx],
        wl,
        k=1,
        mate_codes=mate[m_idx],
        backend=be,
        memory_bytes=memory,
        work_dir=work_dir,
        progress=progress,
        desc="mated searches",
        tile_bytes=chunk_bytes,
    )
    mate_scores = _mate_scores(p[m_idx], wl, mate[m_idx]) if m_idx.size else np.empty(0, np.float32)
    thr = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    non_mated = score_probes(
        p[nm_idx],
        wl,
        k=k,
        thresholds=thr,
        backend=be,
        memory_bytes=memory,
        work_dir=work_dir,
        progress=progress,
        desc="non-mated searches",
        tile_bytes=chunk_bytes,
    )

    groups = probe_groups.reset_index(drop=True) if probe_groups is not None else None
    searches = SearchSet(
        watchlist_size=int(n_subjects),
        mate_scores=mate_scores,
        mate_ranks=(mated.higher + 1).astype(np.int64),
        mated_subjects=p_subj[m_idx],
        non_mated_topk=np.clip(non_mated.top_scores, -1.0, 1.0),
        non_mated_subjects=p_subj[nm_idx],
        mated_groups=pd.DataFrame()
        if groups is None
        else groups.iloc[m_idx].reset_index(drop=True),
        non_mated_groups=pd.DataFrame()
        if groups is None
        else groups.iloc[nm_idx].reset_index(drop=True),
    )
    top_rows = np.where(
        non_mated.top_rows >= 0, wl.template_rows[np.maximum(non_mated.top_rows, 0)], -1
    )
    gpu = be.device.startswith("cuda")
    runtime = RuntimeInfo(
        name=be.name,
        providers=(be.device,),
        gpu_requested=device != "cpu",
        gpu_active=gpu,
        precision=be.precision,
        version=be.version,
    )
    return ScoringResult(searches, m_idx, nm_idx, runtime, non_mated.counts, top_rows)


def _mate_scores(probes: np.ndarray, wl: Gallery, codes: np.ndarray) -> np.ndarray:
    from lfr_eval.search._kernel import mate_scores

    out: np.ndarray = np.clip(mate_scores(probes, wl, codes), -1.0, 1.0)
    return out
