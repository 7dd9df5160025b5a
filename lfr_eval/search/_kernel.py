"""The one probes × templates scoring kernel: best template per subject, top-k over distinct
subjects, mate rank and per-threshold counts, in one blocked pass.

Every 1:N score in the project comes from here: the live page's :class:`SearchIndex`, the
evaluation's :func:`~lfr_eval.metrics.score_searches` and the NPL design's filler counts.

How it works
------------
A :class:`Gallery` holds the templates grouped by subject (contiguous rows per subject). The
probes are cut into blocks of rows and the gallery into *tiles* of columns that end on subject
boundaries; each (probe block, tile) similarity matrix is made by one matrix product (BLAS on
the CPU, cuBLAS through torch on a GPU) and immediately reduced, so memory is
O(block × tile), never probes × gallery. What each probe keeps is a :class:`Partial`:

- the k best distinct subjects (score, subject code, template row), ties ordered by the lower
  subject code;
- ``higher``: subjects other than the mate scoring strictly above the mate's score (so the mate's
  rank is ``1 + higher``; ties favour the mate, as NIST FRTE ranks);
- ``counts[i, c, t]``: subjects of count group ``c`` other than the probe's mate whose best
  score is ``>= thresholds[t]`` — the number of false matches of a non-mated search at every
  threshold of a grid, which is what FPIR(N) scaling and selectivity need.

Merging (exact)
---------------
Partials of the same probes over *disjoint sets of whole subjects* (gallery shards that never
split a subject) merge exactly with :func:`merge_partials`: counts and ``higher`` add, top-k
lists are concatenated and re-cut to k by (score descending, subject code ascending). The
mate's score must be known before the shards run (it is an input, see :func:`mate_scores`), so
every shard can count the subjects above it. :func:`score_block` is pure (no state, no I/O): a
Dask task can run it on any shard of any probe block and the reduction gives the same numbers
as one process, bit for bit on the numpy backend.

Backends
--------
``"numpy"``: chunks of 512 probe rows go to one thread per core; each thread multiplies its chunk
by one tile of templates the size of a core's L2 cache (:data:`DEFAULT_TILE_BYTES`: 256,
512 or 1,024 templates for 512 KiB, 1 MiB or 2 MiB) with a single-threaded BLAS and reduces
the product with compiled (numba, ``_kernel_numba``) passes while it is still in the core's
cache, subjects in code order: subject maxima, the top-k, the mate's
``higher`` and a uint16 threshold histogram flushed into int32 cells (one vector pass gives
each subject its bin by arithmetic on a uniform grid, one scalar pass makes one increment per
pair; near a threshold, on other grids and for top-k candidates an exact look-up-table path);
each probe's histogram becomes its counts by one reverse cumulative sum. ``"torch"``: the same
on a torch device (``"cpu"`` or ``"cuda"``) in fp32 or fp16 (products in fp16,
reductions in fp32; fp16 scores agree to about 1e-3, not to float32 rounding). torch is
imported only when chosen. faiss serves top-k-only searches (the live page,
:class:`~lfr_eval.search.SearchIndex`), see :func:`faiss_top_k`.

Same bits everywhere (numpy backend): every BLAS product is padded to a shape BLAS rounds as
it rounds large products (:func:`regular_matmul`), mates' scores are made the same way
(:func:`pair_dots`) and the live page's one-probe search rescores its candidates with it, so
a probe/template pair has one float32 score in the live page, the evaluation and the NPL
counts, for any batch size, position, block, tile or shard (``tests/test_exact_scores.py``).
torch (its own BLAS, cuBLAS) and faiss agree with it to float32 rounding, not bit for bit.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lfr_eval.errors import RuntimeUnavailableError

KernelBackend = Literal["numpy", "torch"]
Precision = Literal["fp32", "fp16"]


def _core_l2_bytes(default: int = 2**21, caches: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """Size of one core's level-2 cache, bytes, from Linux's sysfs (``default`` where it
    cannot be read), within 256 KiB-4 MiB."""
    try:
        for index in sorted(Path(caches).glob("index*")):
            if (index / "level").read_text().strip() != "2":
                continue
            if (index / "type").read_text().strip() not in ("Unified", "Data"):
                continue
            text = (index / "size").read_text().strip().upper()
            scale = {"K": 2**10, "M": 2**20}.get(text[-1:], 1)
            size = int(text.rstrip("KM")) * scale
            return min(max(size, 2**18), 2**22)
    except (OSError, ValueError):
        pass
    return default


#: Default memory for one similarity tile of the numpy backend, bytes (float32): one thread's
#: (probe chunk × templates) product, reduced right after it is made: one core's L2 cache
#: (2 MiB where it cannot be read). Measured (benchmarks/RESULTS.md): with 2 MiB of L2 per
#: core (Intel Xeon, Sapphire Rapids) 512 probes × 1,024 templates took 1-16% less CPU than
#: 512 × 512 (the product costs about the same per pair, and each probe row's histogram lines
#: are fetched once per tile); with 1 MiB (AMD EPYC, Zen 4) 512 × 512 took less than
#: 512 × 1,024 (the product itself 9-12% less per pair, the reduction about the same).
DEFAULT_TILE_BYTES = _core_l2_bytes()

#: Default memory for one (probe block × tile) similarity matrix of the torch backend, bytes:
#: large products keep a GPU busy.
TORCH_TILE_BYTES = 64 * 2**20

#: Cells of the lookup table that maps a score to its threshold bin (see ``_bin_table``).
_LUT_CELLS = 1 << 12

MSG_NO_CUDA_TORCH = (
    "scoring on CUDA was requested but torch.cuda.is_available() is False (torch {version}); "
    "install a CUDA build of PyTorch on a machine with an NVIDIA GPU, or use device='cpu'"
)
MSG_NO_TORCH = (
    "the torch scoring backend was requested but torch is not installed ({why}); "
    "pip install 'lfr-workbench[torch]', or use backend='numpy'"
)
MSG_THRESHOLDS = "thresholds must be a 1-D ascending array of finite or infinite numbers"


# ---------------------------------------------------------------------------------- unit rows
#: Rows whose L2 norm lies within this of 1 are used as they are (engines return unit float32
#: vectors, within about 1e-7); others are divided by their norm (see :func:`unit_rows`).
UNIT_TOLERANCE = 1e-6


def row_norms(matrix: np.ndarray, rows_per_chunk: int = 16_384) -> np.ndarray:
    """L2 norm of each row, float64, from that row alone (chunks of rows in float64: the same
    value whatever matrix the row sits in; memory one chunk)."""
    out = np.empty(matrix.shape[0], np.float64)
    for a in range(0, matrix.shape[0], rows_per_chunk):
        chunk = matrix[a : a + rows_per_chunk].astype(np.float64)
        out[a : a + len(chunk)] = np.sqrt(np.square(chunk).sum(axis=1))
    return out


def unit_rows(matrix: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
    """``matrix`` as float32 C-contiguous unit rows, each row's bits fixed by that row alone.

    The live page (:class:`~lfr_eval.search.SearchIndex`) and the evaluation
    (:func:`~lfr_eval.metrics.score_searches`) both normalise with this, so the same vectors
    give the same scores in both: a row within :data:`UNIT_TOLERANCE` of unit norm is kept as
    it is, any other row is divided by its norm (in float64, rounded once to float32). No copy
    when every row is kept and the input is already float32 and C-contiguous; never changes
    the caller's array.

    Parameters
    ----------
    matrix : ndarray of shape (n, d), finite, no all-zero row (checked by the callers)
    norms : ndarray of shape (n,), float64, optional
        :func:`row_norms` of ``matrix``, when the caller already has them.
    """
    given = matrix
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if matrix.size == 0:
        return matrix
    norms = row_norms(matrix) if norms is None else norms
    off = np.flatnonzero(np.abs(norms - 1.0) > UNIT_TOLERANCE)
    if off.size == 0:
        return matrix
    if matrix is given or np.may_share_memory(matrix, given):
        matrix = matrix.copy()
    matrix[off] = (matrix[off].astype(np.float64) / norms[off, None]).astype(np.float32)
    return matrix


# ---------------------------------------------------------------------------------- gallery
@dataclass(frozen=True, eq=False)
class Gallery:
    """Templates grouped by subject, ready to be scored.

    Build one with :meth:`Gallery.build`; the arrays are read-only.

    Attributes
    ----------
    matrix : ndarray of shape (n_templates, d), float32, C-contiguous
        Unit-norm templates, rows grouped by subject (subject code order).
    subject_ids : ndarray of shape (n_subjects,), object
        Distinct subject ids, sorted; a subject's *code* is its position here.
    starts : ndarray of shape (n_subjects + 1,), int64
        Rows ``starts[s]:starts[s + 1]`` of :attr:`matrix` are subject ``s``'s templates.
    template_rows : ndarray of shape (n_templates,), int64
        Row of the caller's input that each row of :attr:`matrix` came from.
    subject_groups : ndarray of shape (n_subjects,), int64
        Count group (0 … ``n_groups - 1``) of each subject: :attr:`Partial.counts` is split by
        it (e.g. fillers by demographic cell); -1: searched (top-k, rank) but not counted (the
        NPL volunteers). All 0 when no groups were given.
    n_groups : int
    """

    matrix: np.ndarray
    subject_ids: np.ndarray
    starts: np.ndarray
    template_rows: np.ndarray
    subject_groups: np.ndarray
    n_groups: int

    @classmethod
    def build(
        cls,
        embeddings: np.ndarray,
        subject_ids: Sequence[str] | np.ndarray,
        *,
        subject_groups: np.ndarray | None = None,
        n_groups: int | None = None,
        copy: bool = False,
    ) -> Gallery:
        """Group ``embeddings`` by subject.

        Parameters
        ----------
        embeddings : ndarray of shape (n_templates, d)
            Unit-norm templates (checked by the callers). A float32 C-contiguous array already
            grouped by subject is used as it is (no copy) unless ``copy``; otherwise the
            grouped copy is the only one made.
        subject_ids : sequence of str, length n_templates
        subject_groups : ndarray of int, length n_subjects, optional
            Count group of each *distinct* subject, in sorted-subject-id order (-1: not
            counted).
        n_groups : int, optional
            Number of count groups (default ``subject_groups.max() + 1``).
        copy : bool
            Copy even when no reordering is needed.
        """
        matrix = np.asarray(embeddings)
        subjects = np.asarray(subject_ids).astype(str)
        if matrix.ndim != 2 or subjects.shape != (matrix.shape[0],):
            raise ValueError("need a 2-D embedding matrix and one subject id per row")
        names, codes = np.unique(subjects, return_inverse=True)
        codes = codes.astype(np.int64).reshape(-1)
        if np.all(codes[1:] >= codes[:-1]):
            rows = np.arange(len(codes), dtype=np.int64)
            grouped = np.ascontiguousarray(matrix, dtype=np.float32)
            if copy and grouped is matrix:
                grouped = grouped.copy()
        else:
            rows = np.argsort(codes, kind="stable").astype(np.int64)
            grouped = np.ascontiguousarray(matrix[rows], dtype=np.float32)
            codes = codes[rows]
        counts = np.bincount(codes, minlength=len(names))
        starts = np.zeros(len(names) + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        if subject_groups is None:
            groups = np.zeros(len(names), np.int64)
            n = 1 if n_groups is None else int(n_groups)
        else:
            groups = np.asarray(subject_groups, dtype=np.int64)
            if groups.shape != (len(names),):
                raise ValueError("need one count group per distinct subject")
            n = int(groups.max(initial=0)) + 1 if n_groups is None else int(n_groups)
            if len(groups) and (groups.min() < -1 or groups.max() >= n):
                raise ValueError(f"count groups must lie in -1..{n - 1}")
        for array in (grouped, starts, rows, groups):
            # read-only, except an array that is still the caller's own
            if array is not matrix and array is not subject_groups and array.flags.owndata:
                array.setflags(write=False)
        return cls(grouped, names.astype(object), starts, rows, groups, max(n, 1))

    @property
    def n_subjects(self) -> int:
        return len(self.subject_ids)

    @property
    def n_templates(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def max_templates(self) -> int:
        """Most templates of one subject (0 for an empty gallery)."""
        return int(np.diff(self.starts).max()) if self.n_subjects else 0

    @property
    def template_subjects(self) -> np.ndarray:
        """Subject code of each row of :attr:`matrix`."""
        return np.repeat(np.arange(self.n_subjects, dtype=np.int64), np.diff(self.starts))

    def group_sizes(self) -> np.ndarray:
        """Subjects in each count group, shape (n_groups,) (uncounted subjects, group -1, in
        none)."""
        groups = self.subject_groups
        return np.bincount(groups[groups >= 0], minlength=self.n_groups).astype(np.int64)

    def counts_dtype(self) -> np.dtype:
        """The smallest integer type that holds every count of this gallery: a count is at
        most its group's number of subjects, so ``uint8`` up to 255 subjects in the largest
        count group, ``uint16`` up to 65,535, else ``int32``. The counts of a scoring run
        (:func:`~lfr_eval.search._blocks.score_probes`, in memory or on disk) are of this
        type; readers widen them (e.g. ``sum(dtype=np.int64)``) before adding them up."""
        return counts_dtype_for(int(self.group_sizes().max(initial=0)))

    def codes_of(self, subject_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Subject code of each id; -1 for an id not in the gallery."""
        wanted = np.asarray(subject_ids).astype(str)
        if self.n_subjects == 0:
            return np.full(wanted.shape, -1, np.int64)
        names = self.subject_ids.astype(str)
        pos = np.minimum(np.searchsorted(names, wanted), self.n_subjects - 1)
        return np.where(names[pos] == wanted, pos, -1).astype(np.int64)

    def shards(self, n_shards: int) -> list[tuple[int, int]]:
        """Split the subjects into about ``n_shards`` ranges ``(first, end)`` of similar
        template counts; no subject straddles two (what :func:`merge_partials` needs)."""
        return [
            (s0, s1)
            for _, _, s0, s1 in _tiles(
                self.starts, 0, self.n_subjects, -(-self.n_templates // max(1, n_shards))
            )
        ]


def _tiles(starts: np.ndarray, s0: int, s1: int, width: int) -> list[tuple[int, int, int, int]]:
    """Template tiles ``(t0, t1, first subject, end subject)`` of about ``width`` rows covering
    subjects ``s0:s1``, cut on subject boundaries (a subject wider than ``width`` is one tile)."""
    out = []
    width = max(1, int(width))
    s = s0
    while s < s1:
        t0 = int(starts[s])
        e = int(np.searchsorted(starts, t0 + width, side="right")) - 1
        e = min(max(e, s + 1), s1)
        out.append((t0, int(starts[e]), s, e))
        s = e
    return out


#: Integer types the counts may be kept in, smallest first (see :meth:`Gallery.counts_dtype`).
COUNT_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int32))


def counts_dtype_for(largest_group: int) -> np.dtype:
    """The smallest of :data:`COUNT_DTYPES` holding counts up to ``largest_group`` (subjects
    in the largest count group, >= 0)."""
    for dtype in COUNT_DTYPES:
        if largest_group <= np.iinfo(dtype).max:
            return dtype
    raise ValueError(f"a count group of {largest_group:,} subjects is more than int32 holds")


# ---------------------------------------------------------------------------------- partials
@dataclass(frozen=True, eq=False)
class Partial:
    """What a block of probes keeps from (part of) a gallery; mergeable, see module doc.

    Attributes
    ----------
    top_scores : ndarray of shape (n, k), float32
        Best subjects' scores (cosine), descending; ``-inf`` pads rows with fewer than k.
    top_subjects : ndarray of shape (n, k), int64
        Their subject codes (-1 in padding).
    top_rows : ndarray of shape (n, k), int64
        Row of :attr:`Gallery.matrix` of the template that gave each score (-1 in padding).
    higher : ndarray of shape (n,), int64
        Subjects other than the mate scoring strictly above the mate's score (0 without one).
    counts : ndarray of shape (n, n_groups, n_thresholds), int32 (or the gallery's
        :meth:`~Gallery.counts_dtype`, uint8/uint16, from a scoring run), or None
        Subjects (mate excluded) of each count group with best score ``>= thresholds[t]``.
    """

    top_scores: np.ndarray
    top_subjects: np.ndarray
    top_rows: np.ndarray
    higher: np.ndarray
    counts: np.ndarray | None

    @property
    def n_probes(self) -> int:
        return int(self.top_scores.shape[0])


def empty_partial(n: int, k: int, n_groups: int = 1, n_thresholds: int | None = None) -> Partial:
    """The identity of :func:`merge_partials`: nothing seen yet."""
    return Partial(
        np.full((n, k), -np.inf, np.float32),
        np.full((n, k), -1, np.int64),
        np.full((n, k), -1, np.int64),
        np.zeros(n, np.int64),
        None if n_thresholds is None else np.zeros((n, n_groups, n_thresholds), np.int32),
    )


def merge_partials(parts: Sequence[Partial]) -> Partial:
    """Combine partials of the *same probes* over disjoint sets of whole subjects.

    Counts and ``higher`` add; the top-k lists are pooled and cut back to k by score descending
    then subject code ascending (the order one pass over the whole gallery gives). Associative
    and commutative, so a tree reduction of shards in any order gives identical arrays.
    """
    if not parts:
        raise ValueError("nothing to merge")
    if len(parts) == 1:
        return parts[0]
    n = parts[0].n_probes
    k = max(p.top_scores.shape[1] for p in parts)
    if any(p.n_probes != n for p in parts):
        raise ValueError("partials of different probe blocks cannot be merged")
    scores = np.concatenate([p.top_scores for p in parts], axis=1)
    subjects = np.concatenate([p.top_subjects for p in parts], axis=1)
    rows = np.concatenate([p.top_rows for p in parts], axis=1)
    # padding (-1) sorts after every real subject at -inf
    tie_key = np.where(subjects < 0, np.iinfo(np.int64).max, subjects)
    order = np.lexsort((tie_key, -scores.astype(np.float64)), axis=1)[:, :k]
    counts = None
    if parts[0].counts is not None:
        blocks = [p.counts for p in parts]
        assert all(c is not None for c in blocks)
        # shards' counts add up past what each shard's narrow type holds (two uint8 shards of
        # 200 subjects of one group sum to 400): the sum is kept in int32 at least
        counts = parts[0].counts.astype(np.result_type(np.int32, *blocks))
        for p in parts[1:]:
            assert p.counts is not None
            counts += p.counts
    return Partial(
        np.take_along_axis(scores, order, axis=1),
        np.take_along_axis(subjects, order, axis=1),
        np.take_along_axis(rows, order, axis=1),
        np.sum([p.higher for p in parts], axis=0).astype(np.int64),
        counts,
    )


# ---------------------------------------------------------------------------------- helpers
def check_thresholds(thresholds: np.ndarray | Sequence[float]) -> np.ndarray:
    """Thresholds as a float64 1-D ascending array (raises ValueError otherwise)."""
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.ndim != 1 or np.isnan(thr).any() or np.any(np.diff(thr) < 0):
        raise ValueError(MSG_THRESHOLDS)
    return thr


def _bin_table(thr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.float32, np.float32]:
    """Float32 thresholds and a lookup table for ``searchsorted(thr, s, 'right')``.

    ``thr32[t]`` is the smallest float32 at or above ``thr[t]``, so for a float32 score s,
    ``s >= thr[t]`` (compared exactly in float64) iff ``s >= thr32[t]``. Cell c of the table
    covers ``[lo + c h, lo + (c + 1) h)`` and holds the number of thresholds at or below its
    start; the kernel steps over the few thresholds inside the cell, so the bin is exact (the
    table only saves a binary search per score).
    """
    thr32 = thr.astype(np.float32)
    low = thr32.astype(np.float64) < thr
    thr32[low] = np.nextafter(thr32[low], np.float32(np.inf))
    # a +inf sentinel ends the kernel's forward step without a bounds test
    thr32 = np.append(thr32, np.float32(np.inf))
    lo, hi = -1.0 - 1e-6, 1.0 + 1e-6
    h = (hi - lo) / _LUT_CELLS
    # cell starts lowered by a margin, so a score that rounding puts into cell c is never
    # below cell c's start: the table never overshoots and the kernel only steps forward
    starts = lo + h * np.arange(_LUT_CELLS + 1) - 1e-5
    table = np.searchsorted(thr32[:-1].astype(np.float64), starts, side="right").astype(np.int32)
    table[0] = 0  # scores below the table's range (and -inf) start from the first bin
    return thr32, table, np.float32(lo), np.float32(1.0 / h)


def mate_scores(probes: np.ndarray, gallery: Gallery, mate_codes: np.ndarray) -> np.ndarray:
    """Each probe's score against its mate (best of the mate's templates), float32.

    ``-inf`` where ``mate_codes`` is -1 (no mate in the gallery). Each template's score is
    rounded exactly as the kernel's products round it (:func:`pair_dots`), so a mate's score
    here is the very float32 the top-k, the ranks and the live page's search give that
    probe/template pair (a mated search at a threshold equal to a score decides alike).
    """
    probes = np.asarray(probes, dtype=np.float32)
    codes = np.asarray(mate_codes, dtype=np.int64)
    out = np.full(len(codes), -np.inf, np.float32)
    has = np.flatnonzero(codes >= 0)
    if has.size == 0:
        return out
    first = gallery.starts[codes[has]]
    width = gallery.starts[codes[has] + 1] - first
    for m in range(int(width.max())):
        use = width > m
        rows = first[use] + m
        dots = pair_dots(probes[has[use]], gallery.matrix[rows])
        out[has[use]] = np.maximum(out[has[use]], dots)
    return out


# ---------------------------------------------------------------------------------- numpy backend
@dataclass(frozen=True)
class _Grid:
    """A threshold grid prepared for the compiled reduction (see ``_kernel_numba``)."""

    thr32: np.ndarray  # (T + 1,) float32, rounded up, +inf sentinel
    lut: np.ndarray
    lut_lo: np.float32
    lut_inv_h: np.float32
    uniform: bool
    shift: np.float32
    inv_step: np.float32
    delta: np.float32

    @classmethod
    def build(cls, thr: np.ndarray) -> _Grid:
        thr32, lut, lo, inv_h = _bin_table(thr)
        t = thr32[:-1].astype(np.float64)
        uniform, shift, inv_step, delta = False, np.float32(0), np.float32(1), np.float32(0)
        if len(t) >= 2 and np.all(np.isfinite(t)) and t[-1] > t[0]:
            # the kernel's bin is int(x / step + shift), the number of thresholds <= x
            inv_step = np.float32((len(t) - 1) / (t[-1] - t[0]))
            shift = np.float32(1.0 - t[0] * float(inv_step))
            pos = t * float(inv_step) + float(shift)
            # a bin is trusted when the float32 position y lies more than d from an integer m:
            # then the exact position P(x) = x * inv_step + shift (the same float32 constants,
            # monotone) is within m + (d - err, 1 - d + err), and P at threshold m - 1 or m lies
            # within dev of m or m + 1, so d >= dev + err puts x between those two thresholds.
            # err bounds the two float32 roundings of y, 2**-24 * (|x inv| + |y|), for every x
            # whose y is not clamped (|x| <= reach: a step past the grid; farther scores clamp
            # to bin 0 or T whatever the rounding); twice that is kept as a margin
            dev = float(np.max(np.abs(pos - np.arange(1, len(t) + 1))))
            reach = max(1.01, abs(t[0]), abs(t[-1])) + (t[-1] - t[0]) / (len(t) - 1)
            err = 2.0**-24 * (2.0 * reach * abs(float(inv_step)) + abs(float(shift)) + 1.0)
            d = dev + 2.0 * err + 1e-6
            if d < 0.25:
                uniform, delta = True, np.float32(d)
        return cls(thr32, lut, lo, inv_h, uniform, shift, inv_step, delta)


#: Probe rows one thread scores at a time (one BLAS product per tile). Single-threaded
#: OpenBLAS sgemm at 128-d: about 2.1 ns per pair for 512-row products, 2.35 for 256 and 2.8
#: for 128 (the gallery tile is re-packed for every product); the reduction's histogram rows
#: (uint16, about 10 KB per probe at 1,000 thresholds and 4 groups, of which about 2 KB are
#: touched on random data) are prefetched two rows ahead.
_CHUNK_ROWS = 512

#: Histogram cells per probe row the reduction can address: slots are made in float32 lanes,
#: exact below 2**24.
_MAX_HIST_CELLS = 2**24

MSG_TOO_MANY_CELLS = (
    "per-threshold counts for {groups} count groups × {thresholds} thresholds need {cells:,} "
    "histogram cells per probe; the numpy kernel handles fewer than {limit:,}: use fewer "
    "thresholds or count groups"
)


def numpy_tile_width(n_probes: int, tile_bytes: int | None = None) -> int:
    """Templates per tile of the numpy backend for a chunk of ``n_probes`` probe rows (at most
    ``_CHUNK_ROWS`` are used: a block's threads take chunks of that many rows, each tile
    ``tile_bytes`` of float32).

    The width depends on the chunk's own rows only, never on the block it came in, so every
    product has the same shape whatever the block size (see :func:`chunk_layout`)."""
    tile = DEFAULT_TILE_BYTES if tile_bytes is None else int(tile_bytes)
    # a chunk of fewer rows is multiplied padded to _MIN_PRODUCT_ROWS (see regular_shape)
    rows = min(max(int(n_probes), _MIN_PRODUCT_ROWS), _CHUNK_ROWS)
    return max(1, tile // (4 * rows))


def chunk_layout(n_probes: int) -> list[tuple[int, int]]:
    """The probe chunks ``(start, stop)`` a block of ``n_probes`` rows is multiplied in (numpy
    and torch backends alike).

    Why the layout was fixed (before :func:`regular_matmul` padded every product, which makes
    the scores independent of any layout): a BLAS product's float32 rounding depends on its
    shape, not only on the two vectors. Measured with OpenBLAS 0.3.31 (SkylakeX kernels, 128-d
    and 512-d, one thread or two; ``benchmarks/bench_scoring_layout.py shapes``): products of
    one or two rows or columns and small ones (16 × 64, 3 × 400, 256 × 4) round differently from
    a 512 × 512 product, by up to 5e-7 on a cosine, while larger products agreed whatever their
    rows, columns or offsets (other BLAS builds may draw other lines). So every product the
    kernel makes has a shape that depends only on the probe's position in the whole run: chunks
    of ``_CHUNK_ROWS`` rows from the block's start (the last one shorter) times tiles whose
    width depends only on the chunk's rows. Blocks made of whole chunks (any multiple of
    ``_CHUNK_ROWS`` rows, which is what the memory setting chooses, see
    :func:`~lfr_eval.search._blocks.score_probes`) therefore give bit-identical scores, counts
    and ranks for every block size, thread count and Dask task split.
    """
    return list(probe_blocks(n_probes, _CHUNK_ROWS))


#: The smallest BLAS product the kernel makes: every product is padded (zero rows) to at
#: least this many rows and columns and :data:`_MIN_PRODUCT_CELLS` cells (rows × columns).
#: Why: BLAS rounds small and thin products differently from large ones. Measured with
#: OpenBLAS 0.3.31 (SkylakeX kernels, 128-d and 512-d; ``tests/test_exact_scores.py``,
#: ``benchmarks/bench_scoring_layout.py shapes``): numpy sends a product with one row or column
#: to gemv, and OpenBLAS sends one of at most 1,200 cells (for the kernel's ``A @ B.T``) to its
#: "small matrix" kernel; each rounds differently, by up to 5e-7 on a cosine. Every larger
#: product gives each element the same float32 whatever its shape, its other rows and columns
#: and its position (here one fused multiply-add chain per 256 dimensions, the partial sums
#: added). Padded past both lines with a margin, a probe/template score is one number wherever
#: it is computed: one probe or a batch, any batch size, position, block, tile or shard (what
#: ``tests/test_exact_scores.py`` pins down; another BLAS may draw other lines: run it).
_MIN_PRODUCT_ROWS = 4
_MIN_PRODUCT_COLS = 4
_MIN_PRODUCT_CELLS = 4096
#: Side of the square a product with too few cells is grown towards (cheapest padding).
_MIN_PRODUCT_SIDE = 64


def regular_shape(rows: int, cols: int) -> tuple[int, int]:
    """The (rows, columns) a ``rows × cols`` product is padded to (at least its own), so that
    BLAS rounds it as it rounds large products; see :data:`_MIN_PRODUCT_ROWS`."""
    r = max(int(rows), _MIN_PRODUCT_ROWS)
    c = max(int(cols), _MIN_PRODUCT_COLS)
    if r * c < _MIN_PRODUCT_CELLS and r < _MIN_PRODUCT_SIDE:
        # grow the short side first: 1 × 3 becomes 64 × 64, not 4 × 1,024
        r = max(r, min(_MIN_PRODUCT_SIDE, -(-_MIN_PRODUCT_CELLS // c)))
    c = max(c, -(-_MIN_PRODUCT_CELLS // r))
    return r, c


#: Each thread's zero-padded operands of small products, one 64-row buffer per operand and
#: dimension (reused: a fresh 128 KiB array per call is mapped and faulted in by the OS,
#: which cost more than the product).
_PAD_BUFFERS = threading.local()


def _padded(rows: np.ndarray, n: int, side: int) -> np.ndarray:
    """``rows`` followed by zero rows up to ``n``: for ``n <= _MIN_PRODUCT_SIDE`` the first
    ``n`` rows of a per-thread buffer (see ``_PAD_BUFFERS``; ``side`` tells the two operands'
    buffers apart), else a new array."""
    if rows.shape[0] == n:
        return rows
    dim = rows.shape[1]
    if n > _MIN_PRODUCT_SIDE:
        out = np.zeros((n, dim), np.float32)
        out[: rows.shape[0]] = rows
        return out
    cache: dict[tuple[int, int], np.ndarray] = _PAD_BUFFERS.__dict__.setdefault("buffers", {})
    buf = cache.get((side, dim))
    if buf is None:
        buf = cache[(side, dim)] = np.zeros((_MIN_PRODUCT_SIDE, dim), np.float32)
    buf[: rows.shape[0]] = rows
    buf[rows.shape[0] : n] = 0.0  # rows a previous call filled
    return buf[:n]


def _blas_operand(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.float32 and a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.array(a, dtype=np.float32, order="C")


def regular_matmul(
    left: np.ndarray, right: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """``left @ right.T`` in float32, every element rounded as a large BLAS product rounds it.

    Parameters
    ----------
    left : ndarray of shape (m, d), float32
    right : ndarray of shape (n, d), float32 (e.g. a tile of :attr:`Gallery.matrix`)
    out : ndarray of shape (m, n), float32, optional
        Written in place (C-contiguous).

    Notes
    -----
    Products smaller than :func:`regular_shape` are computed with zero rows appended to
    ``left`` and/or ``right`` and cut back: the padding costs about 10 microseconds for one
    probe against a few templates and nothing for the kernel's 512-row tiles.

    The caller holds :func:`single_thread_limits` (every kernel path does): a BLAS running
    two threads may split a large product's sums otherwise (OpenBLAS 0.3.31 rounded a
    600 × 900 product at d = 513 and 1,000 differently with two threads than with one).
    """
    # numpy multiplies misaligned or strided operands (e.g. a network buffer) without BLAS,
    # which rounds otherwise: such operands are copied (fresh numpy memory is aligned)
    left, right = _blas_operand(left), _blas_operand(right)
    m, n = left.shape[0], right.shape[0]
    r, c = regular_shape(m, n)
    if r == m and c == n:
        if np.may_share_memory(left, right):
            # a matrix times its own transpose goes to BLAS syrk, which rounds otherwise
            left = left.copy()
        return np.matmul(left, right.T, out=out)
    full = np.matmul(_padded(left, r, 0), _padded(right, c, 1).T)
    if out is None:
        return np.ascontiguousarray(full[:m, :n])
    out[...] = full[:m, :n]
    return out


def pair_dots(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left[i] @ right[i]`` for every i, float32, with the same rounding as the kernel's
    products (:func:`regular_matmul`): e.g. each probe's score against its mate's template.

    Pairs go in groups of 64 (``64 × 64`` products, so a pair costs 64 multiply-adds per
    dimension); each group's diagonal is its pairs' scores.
    """
    n = left.shape[0]
    out = np.empty(n, np.float32)
    g = _MIN_PRODUCT_SIDE  # g × g = _MIN_PRODUCT_CELLS: no padding
    # one BLAS thread: the products are small, and a pool's wake-ups cost more than them
    with single_thread_limits():
        for a in range(0, n, g):
            e = min(n, a + g)
            out[a:e] = np.diagonal(regular_matmul(left[a:e], right[a:e]))
    return out


@dataclass(frozen=True)
class BlasRounding:
    """How this process's BLAS rounds the numpy kernel's float32 products.

    Attributes
    ----------
    library : str
        The BLAS numpy calls, as threadpoolctl names it, e.g. ``"openblas 0.3.31 (Haswell)"``.
    shape_stable : bool
        Whether a score is one float32 wherever it is computed (one probe or a batch, any
        block, tile or shard): what makes the live search and the evaluation bit-identical.
        OpenBLAS's SkylakeX kernels (AVX-512 CPUs) are, past :func:`regular_shape`'s lines;
        its Haswell kernels (AVX2 CPUs without AVX-512, e.g. AMD Zen 2: measured 2026-12-02)
        are not: there an element's last bit depends on its row's and its column's place in
        the kernel's register tile (two classes each way), which no padding removes. Scores
        then agree across layouts to float32 rounding (a cosine to about 1e-7), and a count
        or a rank can differ where a score sits that close to a threshold or a tie.
    """

    library: str
    shape_stable: bool

    def describe(self) -> str:
        """One line for reports and runtime descriptions."""
        if self.shape_stable:
            return f"{self.library}: scores bit-identical whatever the batch, block or shard"
        return (
            f"{self.library}: a score's last bit depends on its place in the BLAS product "
            "(batches, blocks and shards agree to float32 rounding, not bit for bit)"
        )


def _blas_library() -> str:
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("user_api") == "blas":
            core = info.get("architecture")
            name = f"{info.get('internal_api', 'blas')} {info.get('version', '')}".strip()
            return f"{name} ({core})" if core else name
    return "unknown BLAS"


@functools.lru_cache(maxsize=1)
def blas_rounding() -> BlasRounding:
    """Probe, once per process, whether the BLAS rounds the kernel's products shape-stably
    (see :class:`BlasRounding`): a seeded 96 × 320 product at 128 and 512 dimensions against
    its single rows, an offset sub-block and a shifted one, through :func:`regular_matmul`
    with one BLAS thread, as the kernel multiplies (about a millisecond)."""
    rng = np.random.default_rng(20261202)
    stable = True
    with single_thread_limits():
        for dim in (128, 512):
            left = rng.standard_normal((96, dim)).astype(np.float32)
            right = rng.standard_normal((320, dim)).astype(np.float32)
            full = regular_matmul(left, right)
            parts = [(regular_matmul(left[i : i + 1], right), full[i : i + 1]) for i in (0, 7, 50)]
            parts.append((regular_matmul(left[5:70], right[13:250]), full[5:70, 13:250]))
            parts.append((regular_matmul(left[1:], right[1:]), full[1:, 1:]))
            stable = stable and all(np.array_equal(a, b) for a, b in parts)
    return BlasRounding(_blas_library(), stable)


def _tile_runs(
    gallery: Gallery, s0: int, s1: int, width: int
) -> list[tuple[int, int, int, int, np.ndarray]]:
    """``_tiles`` plus each tile's subject runs relative to its first row."""
    return [
        (t0, t1, a, b, gallery.starts[a : b + 1] - t0)
        for t0, t1, a, b in _tiles(gallery.starts, s0, s1, width)
    ]


#: Most subjects one call of the compiled reduction takes when it counts: its uint16
#: histogram cells are flushed between calls, so no call may add more than 65,535 to a cell.
#: Tiles of more subjects (a chunk of fewer than 16 probe rows has wider tiles: 524,288
#: templates for one row) are reduced in windows of this many subjects, in order, which gives
#: the same top-k, ranks and counts as one pass.
_WINDOW_SUBJECTS = 32768


def _reduction_windows(
    local: np.ndarray, first: int, gbase: np.ndarray, gbase_f: np.ndarray, counting: bool
) -> list[tuple[int, int, int, np.ndarray, np.ndarray, np.ndarray]]:
    """One tile's calls of the reduction: ``(first column, end column, first subject code,
    subject runs from the first column, group offsets, the same as floats)``."""
    n_sub = len(local) - 1
    step = _WINDOW_SUBJECTS if counting else max(1, n_sub)
    out = []
    for j0 in range(0, n_sub, step):
        j1 = min(n_sub, j0 + step)
        c0, c1 = int(local[j0]), int(local[j1])
        out.append(
            (
                c0,
                c1,
                first + j0,
                local[j0 : j1 + 1] - c0,
                gbase[first + j0 : first + j1],
                gbase_f[first + j0 : first + j1],
            )
        )
    return out


class _NumpyKernel:
    name = "numpy"
    device = "cpu"
    precision: Precision = "fp32"

    def __init__(self, threads: int | None = None, pool: Executor | None = None) -> None:
        self.threads = threads
        # see shared_chunk_pool: the chunks of every block in flight go to this one pool
        self._pool = pool

    @property
    def version(self) -> str:
        # the BLAS and whether it rounds shape-stably: what "the same numbers live and in the
        # evaluation" rests on (see BlasRounding)
        return f"{np.__version__}; {blas_rounding().describe()}"

    def cancel_queued(self) -> None:
        """Drop the chunks still waiting in the shared pool (after an error or Ctrl-C); the
        blocks they belong to then fail with ``CancelledError``."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def run(
        self,
        probes: np.ndarray,
        gallery: Gallery,
        s0: int,
        s1: int,
        part: Partial,
        mates: np.ndarray,
        mate_sc: np.ndarray,
        thr: np.ndarray,
        tile_bytes: int | None,
    ) -> None:
        """Chunks of probe rows go to threads; each thread multiplies its chunk by one tile at a
        time with a single-threaded BLAS and reduces the product while it is in cache, so
        the two cores never wait for each other inside a product (on a loaded machine a
        multi-threaded BLAS spends more time at its barriers than computing). Every element
        of ``part.counts`` is assigned (it may come uninitialised, see ``score_block``)."""
        from lfr_eval.search._kernel_numba import PREFETCH, reduce_rows, set_reverse_sums

        n = probes.shape[0]
        chunks = chunk_layout(n)
        n_thr = len(thr)
        hist_cols = (gallery.n_groups + 1) * (n_thr + 1) if n_thr else 0
        if hist_cols >= _MAX_HIST_CELLS:
            raise ValueError(
                MSG_TOO_MANY_CELLS.format(
                    groups=gallery.n_groups,
                    thresholds=n_thr,
                    cells=hist_cols,
                    limit=_MAX_HIST_CELLS,
                )
            )
        grid = _Grid.build(thr)
        groups = gallery.subject_groups
        # each subject's offset in a histogram row: T + 1 bins per group, then a discard
        # group for the uncounted (-1) subjects
        gbase = (np.where(groups < 0, gallery.n_groups, groups) * (n_thr + 1)).astype(np.int32)
        gbase_f = gbase.astype(np.float32)  # exact below _MAX_HIST_CELLS
        single = gallery.max_templates <= 1

        # per-tile arguments, sliced once per tile width (a block has at most two chunk sizes:
        # whole chunks and a shorter last one, whose tiles are wider)
        layouts: dict[int, tuple[int, list[tuple[Any, ...]]]] = {}
        for a, e in chunks:
            width = numpy_tile_width(e - a, tile_bytes)
            if width not in layouts:
                tiles = _tile_runs(gallery, s0, s1, width)
                layouts[width] = (
                    max(t1 - t0 for t0, t1, _, _, _ in tiles),
                    [
                        (t0, t1, _reduction_windows(local, sa, gbase, gbase_f, bool(n_thr)))
                        for t0, t1, sa, _sb, local in tiles
                    ],
                )

        def chunk(a: int, e: int) -> None:
            rows = e - a
            widest, tile_args = layouts[numpy_tile_width(rows, tile_bytes)]
            buf = np.empty(rows * widest, np.float32)
            # uint16 cells (half of int32's cache footprint, no wrap test per increment) and
            # the int32 cells they are flushed into once per 65,535 subjects (np.zeros: pages
            # are mapped only where touched)
            hist = np.zeros((rows, hist_cols), np.uint16)
            hist_wide = np.zeros((rows, hist_cols), np.int32)
            pending = np.zeros(1, np.int64)
            best = np.empty((1, 0 if single else widest), np.float32)
            arg = np.empty(0 if single else widest, np.int64)
            code = np.empty(widest if n_thr else 0, np.int32)
            flags = np.empty(widest // 4 + 1 if n_thr else 0, np.uint64)
            p_rows, m_codes, m_scores = probes[a:e], mates[a:e], mate_sc[a:e]
            top_s, top_j = part.top_scores[a:e], part.top_subjects[a:e]
            top_r, higher = part.top_rows[a:e], part.higher[a:e]
            for t0, t1, windows in tile_args:
                sims = buf[: rows * (t1 - t0)].reshape(rows, t1 - t0)
                regular_matmul(p_rows, gallery.matrix[t0:t1], out=sims)
                for c0, c1, sa, local, g_int, g_float in windows:
                    # a window of a wide tile is copied out (contiguous rows for the vector
                    # pass); the kernel's own tiles are one window, reduced in place
                    part_sims = sims if c1 - c0 == t1 - t0 else sims[:, c0:c1].copy()
                    reduce_rows(
                        part_sims, single, local, sa, t0 + c0, g_int, g_float, m_codes,
                        m_scores, grid.thr32, grid.lut, grid.lut_lo, grid.lut_inv_h,
                        grid.uniform, grid.shift, grid.inv_step, grid.delta,
                        top_s, top_j, top_r, higher, hist, hist_wide, pending,
                        best, arg, code, flags, PREFETCH,
                    )  # fmt: skip
            if n_thr and part.counts is not None:
                # bin b holds subjects at or above thresholds[:b]: counts are reverse sums,
                # assigned (score_block's counts may be uninitialised output rows)
                set_reverse_sums(hist, hist_wide, part.counts[a:e], n_thr)

        if self._pool is not None:
            # the owner of the shared pool holds the single-threaded BLAS limits
            for done in [self._pool.submit(chunk, a, e) for a, e in chunks]:
                done.result()
            return
        threads = min(self.threads or default_threads(), len(chunks))
        # the products are small (one chunk × one tile): a multi-threaded BLAS would spend
        # more time waking and waiting for its threads than multiplying, so it always runs
        # single-threaded and the cores share out the chunks instead
        with single_thread_limits():
            if threads <= 1:
                for a, e in chunks:
                    chunk(a, e)
                return
            with ThreadPoolExecutor(threads) as pool:
                for done in [pool.submit(chunk, a, e) for a, e in chunks]:
                    done.result()


@contextlib.contextmanager
def shared_chunk_pool(threads: int | None = None) -> Iterator[_NumpyKernel]:
    """A numpy backend whose chunks, from however many blocks are scored at once, all go to
    one pool of ``threads`` threads (default: one per core), first come first served.

    Two blocks in flight then keep the cores busy across block boundaries: the threads go
    from one block's last chunks straight to the next block's first ones, instead of one
    waiting while the other finishes (see :func:`~lfr_eval.search._blocks.score_probes`).
    BLAS is limited to one thread for the whole ``with`` block (the limits are process-wide,
    so they cannot be entered and left per block when blocks overlap). Results are the same
    bit for bit: every chunk computes exactly what it computes alone.
    """
    n = max(1, int(threads or default_threads()))
    with single_thread_limits(), ThreadPoolExecutor(n, thread_name_prefix="lfr-score") as pool:
        yield _NumpyKernel(n, pool=pool)


class _TorchKernel:
    name = "torch"

    def __init__(self, device: str, precision: Precision) -> None:
        try:
            import torch
        except ImportError as exc:
            raise RuntimeUnavailableError(MSG_NO_TORCH.format(why=exc)) from exc
        self.torch = torch
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeUnavailableError(MSG_NO_CUDA_TORCH.format(version=torch.__version__))
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
        self.dev = torch.device(device)
        self.device = "cpu" if self.dev.type == "cpu" else f"cuda:{self.dev.index or 0}"
        self.precision = precision
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self._gallery: tuple[int, Any] | None = None

    @property
    def version(self) -> str:
        return str(self.torch.__version__)

    def _matrix(self, gallery: Gallery) -> Any:
        # one device copy per gallery, kept while the same gallery is scored
        if self._gallery is None or self._gallery[0] != id(gallery.matrix):
            with warnings.catch_warnings():
                # the gallery is read-only and torch only reads it
                warnings.simplefilter("ignore", UserWarning)
                tensor = self.torch.from_numpy(gallery.matrix)
            self._gallery = (id(gallery.matrix), tensor.to(self.dev, self.dtype))
        return self._gallery[1]

    def run(
        self,
        probes: np.ndarray,
        gallery: Gallery,
        s0: int,
        s1: int,
        part: Partial,
        mates: np.ndarray,
        mate_sc: np.ndarray,
        thr: np.ndarray,
        tile_bytes: int | None,
    ) -> None:
        # chunks of the numpy backend's rows, each with tiles sized from its own rows: the
        # products' shapes, and so their rounding, do not depend on the block size (the
        # memory setting); see chunk_layout
        for a, e in chunk_layout(probes.shape[0]):
            view = Partial(
                part.top_scores[a:e],
                part.top_subjects[a:e],
                part.top_rows[a:e],
                part.higher[a:e],
                None if part.counts is None else part.counts[a:e],
            )
            self._run_chunk(
                probes[a:e], gallery, s0, s1, view, mates[a:e], mate_sc[a:e], thr, tile_bytes
            )

    def _run_chunk(
        self,
        probes: np.ndarray,
        gallery: Gallery,
        s0: int,
        s1: int,
        part: Partial,
        mates: np.ndarray,
        mate_sc: np.ndarray,
        thr: np.ndarray,
        tile_bytes: int | None,
    ) -> None:
        torch = self.torch
        n = probes.shape[0]
        k = part.top_scores.shape[1]
        g_dev = self._matrix(gallery)
        p_dev = torch.from_numpy(np.ascontiguousarray(probes)).to(self.dev, self.dtype)
        # float32 sims plus int64 bins per element
        tile = TORCH_TILE_BYTES if tile_bytes is None else int(tile_bytes)
        width = max(1, tile // (12 * max(1, n)))
        mates_t = torch.from_numpy(np.ascontiguousarray(mates)).to(self.dev)
        mate_t = torch.from_numpy(np.ascontiguousarray(mate_sc)).to(self.dev)
        thr_t = torch.from_numpy(thr).to(self.dev)
        n_thr = len(thr)
        for t0, t1, a, b, local in _tile_runs(gallery, s0, s1, width):
            sims = (p_dev @ g_dev[t0:t1].T).float()
            widths = np.diff(local)
            if np.all(widths == 1):
                sub, arg = sims, None
            else:
                m = int(widths.max())
                table = np.minimum(local[:-1, None] + np.arange(m), local[1:, None] - 1)
                table_t = torch.from_numpy(table).to(self.dev)
                sub, arg_local = sims[:, table_t].max(dim=2)
                arg = table_t[torch.arange(b - a, device=self.dev)[None, :], arg_local]
            kk = min(k, b - a)
            vals, cols = torch.topk(sub, kk, dim=1, largest=True, sorted=True)
            rows = cols if arg is None else arg.gather(1, cols)
            found = Partial(
                vals.cpu().numpy().astype(np.float32),
                cols.cpu().numpy().astype(np.int64) + a,
                rows.cpu().numpy().astype(np.int64) + t0,
                np.zeros(n, np.int64),
                None,
            )
            # torch.topk's order among equal scores is unspecified: re-sort like numpy
            merged = merge_partials([_as_top(part), found])
            part.top_scores[:] = merged.top_scores
            part.top_subjects[:] = merged.top_subjects
            part.top_rows[:] = merged.top_rows
            codes = torch.arange(a, b, device=self.dev)
            is_mate = codes[None, :] == mates_t[:, None]
            sub = sub.masked_fill(is_mate, float("-inf"))
            part.higher[:] += (sub > mate_t[:, None]).sum(dim=1).cpu().numpy()
            if n_thr and part.counts is not None:
                n_groups = part.counts.shape[1]
                bins = torch.searchsorted(thr_t, sub.double().contiguous(), right=True)
                group_t = torch.from_numpy(gallery.subject_groups[a:b]).to(self.dev)
                skip = is_mate | (group_t < 0)[None, :]
                bins = bins.masked_fill(skip, 0)  # bin 0: below every threshold, dropped
                idx = group_t.clamp(min=0)[None, :] * (n_thr + 1) + bins
                hist = torch.zeros((n, n_groups * (n_thr + 1)), dtype=torch.int32, device=self.dev)
                hist.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.int32))
                hist = hist.view(n, n_groups, n_thr + 1)
                above = hist.flip(2).cumsum(2).flip(2)[:, :, 1:]
                # a count fits the counts' type (see score_block), whatever it is
                np.add(
                    part.counts, above.to(torch.int32).cpu().numpy(), out=part.counts,
                    casting="unsafe",
                )  # fmt: skip


def _as_top(part: Partial) -> Partial:
    return Partial(part.top_scores, part.top_subjects, part.top_rows, part.higher * 0, None)


def kernel_backend(
    backend: str = "numpy", device: str = "cpu", precision: Precision = "fp32"
) -> _NumpyKernel | _TorchKernel:
    """The backend object :func:`score_block` runs on (reuse it across blocks: torch keeps
    the gallery on the device)."""
    if backend == "numpy":
        if device != "cpu":
            raise RuntimeUnavailableError(
                "the numpy scoring backend runs on the CPU only; use backend='torch' with "
                "device='cuda' for a GPU"
            )
        if precision != "fp32":
            raise ValueError("the numpy backend computes in fp32 only")
        return _NumpyKernel()
    if backend == "torch":
        return _TorchKernel(device, precision)
    raise ValueError(f"scoring backend must be 'numpy' or 'torch', got {backend!r}")


# ---------------------------------------------------------------------------------- entry points
MSG_COUNTS_DTYPE = (
    "counts_out of type {dtype} cannot hold the counts of a count group of {largest:,} "
    "subjects; use Gallery.counts_dtype() (or int32)"
)


@functools.lru_cache(maxsize=1)
def warm_up() -> None:
    """Compile the numpy backend's reduction now, once per process.

    numba compiles :func:`~lfr_eval.search._kernel_numba.reduce_rows` on its first call (about
    2 s on a small CPU the first time on a machine, then read back from numba's disk cache).
    The live page calls this when its pipeline is made, so the first person searched is not
    held up by the compiler.
    """
    rng = np.random.default_rng(0)
    templates = rng.standard_normal((2, 8)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    gallery = Gallery.build(templates, ["a", "b"])
    score_block(templates[:1], gallery, k=1)
    from lfr_eval.search._kernel_numba import set_reverse_sums

    # the counts' reverse sums, once per type the counts are kept in (Gallery.counts_dtype)
    hist = np.zeros((1, 4), np.uint16)
    for dtype in COUNT_DTYPES:
        set_reverse_sums(hist, hist.astype(np.int32), np.empty((1, 1, 3), dtype), 3)


def score_block(
    probes: np.ndarray,
    gallery: Gallery,
    *,
    k: int,
    thresholds: np.ndarray | None = None,
    mate_codes: np.ndarray | None = None,
    mate_score: np.ndarray | None = None,
    subjects: tuple[int, int] | None = None,
    backend: _NumpyKernel | _TorchKernel | None = None,
    tile_bytes: int | None = None,
    counts_out: np.ndarray | None = None,
) -> Partial:
    """Score one block of probes against a range of whole subjects of the gallery.

    Pure: the result depends only on the arguments (and, given ``counts_out``, is written
    there), so blocks can run anywhere (threads, processes, Dask tasks) and be merged with
    :func:`merge_partials`.

    Parameters
    ----------
    probes : ndarray of shape (n, d), float32, unit rows
    gallery : Gallery
    k : int
        Candidates kept per probe (>= 1; rows hold ``-inf`` padding past the subjects seen).
    thresholds : ndarray of shape (T,), optional
        Ascending similarity grid for :attr:`Partial.counts` (None: no counts).
    mate_codes : ndarray of shape (n,), int, optional
        Each probe's mate subject code (-1: none); excluded from counts and ``higher``.
    mate_score : ndarray of shape (n,), float32, optional
        Each probe's mate score, from :func:`mate_scores` (needed with ``mate_codes``).
    subjects : (first, end), optional
        The subject range (shard) to score; default all.
    backend : from :func:`kernel_backend` (default numpy)
    tile_bytes : int, optional
        Memory of one similarity tile (float32), bytes (default :data:`DEFAULT_TILE_BYTES`
        for numpy, :data:`TORCH_TILE_BYTES` for torch).
    counts_out : ndarray of shape (n, n_groups, T), C-contiguous, optional
        Where the counts go (every element is overwritten; it need not be initialised), e.g.
        this block's rows of a memory-mapped counts file: the numpy backend's scoring threads
        then write them in parallel instead of the caller copying them afterwards. It is the
        returned :attr:`Partial.counts`. Its type is one of :data:`COUNT_DTYPES` that holds
        the largest count group's subjects in ``subjects`` (uint8, uint16 or int32). Default:
        a new int32 array.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    probes = np.ascontiguousarray(probes, dtype=np.float32)
    n = probes.shape[0]
    thr = np.empty(0) if thresholds is None else check_thresholds(thresholds)
    if counts_out is None:
        part = empty_partial(n, k, gallery.n_groups, None if thresholds is None else len(thr))
    else:
        if (
            thresholds is None
            or counts_out.shape != (n, gallery.n_groups, len(thr))
            or counts_out.dtype not in COUNT_DTYPES
            or not counts_out.flags.c_contiguous
            or not counts_out.flags.writeable
        ):
            raise ValueError(
                f"counts_out must be a writeable C-contiguous uint8, uint16 or int32 array of "
                f"shape ({n}, {gallery.n_groups}, {len(thr)}), given thresholds"
            )
        r0, r1 = (0, gallery.n_subjects) if subjects is None else subjects
        shard_groups = gallery.subject_groups[r0:r1]
        largest = int(np.bincount(shard_groups[shard_groups >= 0], minlength=1).max(initial=0))
        if largest > np.iinfo(counts_out.dtype).max:
            # a narrower type would wrap silently: refused
            raise ValueError(MSG_COUNTS_DTYPE.format(dtype=counts_out.dtype, largest=largest))
        part = replace(empty_partial(n, k), counts=counts_out)
    mates = np.full(n, -1, np.int64) if mate_codes is None else np.asarray(mate_codes, np.int64)
    if mate_codes is not None and mate_score is None:
        mate_score = mate_scores(probes, gallery, mates)
    ms = (
        np.full(n, -np.inf, np.float32)
        if mate_score is None
        else np.asarray(mate_score, np.float32)
    )
    s0, s1 = (0, gallery.n_subjects) if subjects is None else subjects
    be = backend if backend is not None else _NumpyKernel()
    if counts_out is not None and (n == 0 or s1 <= s0 or not isinstance(be, _NumpyKernel)):
        # the numpy backend assigns every count; the torch one adds into them
        counts_out[...] = 0
    if n == 0 or s1 <= s0:
        return part
    be.run(probes, gallery, s0, s1, part, mates, np.ascontiguousarray(ms), thr, tile_bytes)
    return part


def probe_blocks(n_probes: int, block: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive probe blocks of at most ``block`` rows."""
    block = max(1, int(block))
    for start in range(0, n_probes, block):
        yield start, min(n_probes, start + block)


def block_rows(
    n_templates: int, n_groups: int, n_thresholds: int, k: int, memory_bytes: int
) -> int:
    """Probe rows per block so that one block's similarity tile and its partial results fit in
    ``memory_bytes`` (the gallery itself not counted)."""
    per_row = 4 * n_groups * n_thresholds + 20 * k + 8 + 4 * min(n_templates, 1 << 16)
    return int(max(1, min(4096, memory_bytes // max(1, per_row))))


#: Set by :func:`lfr_eval.distributed.using_cluster`: runs :func:`score_all`'s blocks as tasks
#: on a Dask cluster (numpy backend only), merged exactly with :func:`merge_partials`.
block_executor: contextvars.ContextVar[Callable[..., Partial] | None] = contextvars.ContextVar(
    "lfr_block_executor", default=None
)


def score_all(
    probes: np.ndarray,
    gallery: Gallery,
    *,
    k: int,
    thresholds: np.ndarray | None = None,
    mate_codes: np.ndarray | None = None,
    backend: _NumpyKernel | _TorchKernel | None = None,
    block: int = 1024,
    tile_bytes: int | None = None,
) -> Partial:
    """:func:`score_block` over consecutive probe blocks of ``block`` rows, concatenated:
    :func:`~lfr_eval.search._blocks.score_probes` with a fixed block size and no work folder
    (the cluster's tasks while :data:`block_executor` is set)."""
    from lfr_eval.search._blocks import score_probes

    return score_probes(
        probes,
        gallery,
        k=k,
        thresholds=thresholds,
        mate_codes=mate_codes,
        backend=backend,
        tile_bytes=tile_bytes,
        rows_per_block=block,
    )


def concat_partials(parts: Sequence[Partial]) -> Partial:
    """Stack partials of consecutive probe blocks (over the same subjects)."""
    blocks = [p.counts for p in parts if p.counts is not None]
    if blocks and len(blocks) != len(parts):
        raise ValueError("cannot stack partials with and without counts")
    counts = np.concatenate(blocks) if blocks else None
    return Partial(
        np.concatenate([p.top_scores for p in parts]),
        np.concatenate([p.top_subjects for p in parts]),
        np.concatenate([p.top_rows for p in parts]),
        np.concatenate([p.higher for p in parts]),
        counts,
    )


def trim(part: Partial, k: int) -> Partial:
    """The first ``k`` candidate columns of a partial."""
    return replace(
        part,
        top_scores=part.top_scores[:, :k],
        top_subjects=part.top_subjects[:, :k],
        top_rows=part.top_rows[:, :k],
    )


# ---------------------------------------------------------------------------------- faiss
def faiss_top_k(
    search: Any, gallery: Gallery, probes: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k distinct subjects from a faiss flat inner-product index over ``gallery.matrix``.

    ``search(queries, n)`` runs the index. The k-th best subject's best template ranks at most
    (k - 1) m + 1 among templates (m = most templates of one subject), so k m templates always
    hold k distinct subjects. Returns scores, subject codes and gallery rows, ordered as
    :func:`merge_partials` orders them.
    """
    m = gallery.max_templates
    width = min(gallery.n_templates, k * m)
    scores, rows = search(probes, width)
    rows = rows.astype(np.int64, copy=False)
    subjects = gallery.template_subjects[rows]
    part = Partial(
        scores.astype(np.float32, copy=False), subjects, rows, np.zeros(len(rows), np.int64), None
    )
    if m > 1:
        # keep each subject's best template (faiss rows are sorted by score)
        order = np.lexsort((np.arange(width)[None, :].repeat(len(rows), 0), subjects), axis=1)
        s_sorted = np.take_along_axis(subjects, order, axis=1)
        dup = np.zeros_like(s_sorted, dtype=bool)
        dup[:, 1:] = s_sorted[:, 1:] == s_sorted[:, :-1]
        drop = np.zeros_like(dup)
        np.put_along_axis(drop, order, dup, axis=1)
        part = Partial(
            np.where(drop, -np.inf, part.top_scores).astype(np.float32),
            np.where(drop, -1, subjects),
            np.where(drop, -1, rows),
            part.higher,
            None,
        )
    merged = merge_partials([part, empty_partial(len(rows), 1)])
    return merged.top_scores[:, :k], merged.top_subjects[:, :k], merged.top_rows[:, :k]


_CONTROLLER: list[Any] = []


def single_thread_limits() -> Any:
    """A context manager limiting BLAS/OpenMP pools to one thread (threadpoolctl).

    A single probe's search is one matrix-vector product, and the numpy backend's products
    are cache-sized: on a loaded machine a thread pool's start-up and contention cost more
    than the product itself. threadpoolctl's scan of the loaded libraries is done once per
    process (it takes milliseconds).
    """
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1)


def default_threads() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
