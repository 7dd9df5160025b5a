"""Run the scoring kernel over many probes within a memory budget, resumably.

:func:`score_probes` cuts the probes into blocks sized from a memory setting, scores each block
with :func:`~lfr_eval.search._kernel.score_block` and, when given a work folder, keeps every
finished block on disk:

- ``<work_dir>/<key>/counts.npy``: the (probes × groups × thresholds) counts in the smallest
  type that holds them (:meth:`~lfr_eval.search._kernel.Gallery.counts_dtype`: uint16 at NPL
  size, half of int32's bytes), written block by block through a memory map (never held in
  memory whole when it is large);
- ``<work_dir>/<key>/block_000123.npz``: block 123's top-k, ranks (``higher``) — written after
  its counts rows are flushed, atomically (temporary file, then rename), so its presence means
  the block is complete.

``<key>`` is a SHA-256 of everything that determines the numbers (probe and gallery bytes,
subjects, count groups, thresholds, k, mates, backend and precision) and the counts file's type,
so a changed input never reuses stale blocks, a file of another type is never misread, and an
interrupted run (Ctrl-C, a killed process) resumes from its finished blocks. Ctrl-C raises
:class:`ScoringInterrupted` (a ``KeyboardInterrupt``) saying how many blocks are kept and
where.

Keeping both cores busy (numpy backend): two blocks are in flight at once, their chunks queued
in one pool of scoring threads, so no thread waits at a block boundary; the scoring threads
write each block's counts straight into its rows of the counts (in memory, or of the file),
and a keeper thread flushes a finished block's rows and writes its block file while the next
block is scored. Every chunk computes exactly what it computes alone, so the numbers do not
depend on this overlap. Ctrl-C waits for the keeper, so every block scored to the end is kept.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lfr_eval.search._kernel import (
    _CHUNK_ROWS,
    DEFAULT_TILE_BYTES,
    Gallery,
    Partial,
    _NumpyKernel,
    _TorchKernel,
    block_executor,
    check_thresholds,
    default_threads,
    empty_partial,
    mate_scores,
    score_block,
    shared_chunk_pool,
)

#: Default memory setting for one scoring run (bytes): fits a 4 GB machine with room to spare.
DEFAULT_MEMORY_BYTES = 3 * 2**30

#: Counts larger than this share of the memory setting live in a memory-mapped file.
_COUNTS_IN_MEMORY_SHARE = 0.25

BlockProgress = Callable[[int, int], None]

MSG_INTERRUPTED = (
    "scoring interrupted after {done} of {total} blocks; the finished blocks are kept in "
    "{folder} and a run with the same inputs resumes from them"
)
MSG_MEMORY = (
    "the memory setting ({setting:.2f} GiB) is too small for this scoring run: the gallery "
    "alone takes {gallery:.2f} GiB; raise it (--scoring-memory / memory_bytes)"
)


MSG_COUNTS_FILE = (
    "the counts file {path} holds {found} where this run needs {wanted}: it was changed "
    "after the run made it; delete its folder to score again"
)

MSG_COUNTS_IN_RAM = (
    "the per-threshold counts of this scoring run ({size:.2f} GB) are memory-mapped under "
    "{folder}, which is a {fs} (RAM): they count against the machine's memory, not its disk. "
    "Name a folder on a disk with --scoring-work-dir (work_dir), or set TMPDIR to one"
)


class ScoringInterrupted(KeyboardInterrupt):
    """Ctrl-C during scoring; the message says which finished blocks were kept, and where."""


class CountsInMemoryWarning(UserWarning):
    """Memory-mapped counts live on a RAM file system (a tmpfs ``/tmp``): they use memory."""


def filesystem_type(path: str | os.PathLike[str]) -> str | None:
    """The file system type (``"ext4"``, ``"tmpfs"``…) holding ``path``, from ``/proc/mounts``
    (the longest mount point above it); None where that table cannot be read (not Linux)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")  # /proc/mounts escapes spaces
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


#: Folders :func:`score_probes` made itself (no work folder given, counts too large for memory)
#: while :func:`temporary_blocks_removed_on_success` is active.
_made_folders: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar(
    "lfr_scoring_made_folders", default=None
)


@contextlib.contextmanager
def temporary_blocks_removed_on_success() -> Iterator[None]:
    """Delete, when the block ends normally, the folders :func:`score_probes` made itself.

    Without a work folder, counts too large for the memory setting are memory-mapped from
    ``<temp dir>/lfr-scoring/<key>`` with the finished blocks beside them (GBs at NPL scale).
    A caller that is done with the counts (an evaluation, once its scaling table is made) wraps
    the run in this: after success the folders go; after an error or Ctrl-C they stay, so the
    same run resumes from them. Folders the caller named (``work_dir``) are never deleted.
    """
    made: list[Path] = []
    token = _made_folders.set(made)
    try:
        yield
    finally:
        _made_folders.reset(token)
    # only reached without an exception: nothing more will read these counts
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def scoring_key(
    probes: np.ndarray,
    gallery: Gallery,
    *,
    k: int,
    thresholds: np.ndarray | None,
    mate_codes: np.ndarray | None,
    backend: str,
) -> str:
    """SHA-256 (hex) of everything that determines a scoring run's numbers."""
    h = hashlib.sha256()
    for part in (
        np.ascontiguousarray(probes, np.float32),
        gallery.matrix,
        gallery.starts,
        gallery.subject_groups,
        np.empty(0) if thresholds is None else np.asarray(thresholds, np.float64),
        np.empty(0, np.int64) if mate_codes is None else np.asarray(mate_codes, np.int64),
    ):
        h.update(str(part.shape).encode())
        h.update(np.ascontiguousarray(part).data.cast("B"))
    h.update("\x1f".join(map(str, gallery.subject_ids)).encode())
    h.update(f"k={k};groups={gallery.n_groups};backend={backend}".encode())
    return h.hexdigest()


def _rows_per_block(
    n_probes: int,
    gallery: Gallery,
    k: int,
    n_thr: int,
    memory: int,
    threads: int | None = None,
) -> int:
    """Probe rows per block: the block's partial results and the kernel's working memory take
    about a quarter of the memory setting, so that the gallery, the probes and the result have
    the rest.

    Always a whole number of the kernel's chunks (:data:`~lfr_eval.search._kernel._CHUNK_ROWS`
    rows, at least one, at most four): the chunks, and so every BLAS product's shape, are then
    the same for every memory setting, and so are the numbers (see
    :func:`~lfr_eval.search._kernel.chunk_layout`). The kernel's working memory does not grow
    with the block: each thread holds one chunk's similarity tile (a core's L2 cache) and threshold
    histogram (6 bytes per cell: uint16 cells and the int32 cells they are flushed into)."""
    gallery_bytes = gallery.matrix.nbytes
    spare = memory - gallery_bytes - 4 * int(np.prod(gallery.matrix.shape[1:])) * n_probes
    if spare <= 0:
        raise MemoryError(MSG_MEMORY.format(setting=memory / 2**30, gallery=gallery_bytes / 2**30))
    per_row = 4 * gallery.n_groups * n_thr + 24 * k + 16
    cells = (gallery.n_groups + 1) * (n_thr + 1) if n_thr else 0
    working = (threads or default_threads()) * (DEFAULT_TILE_BYTES + 6 * _CHUNK_ROWS * cells)
    rows = int(min(4 * _CHUNK_ROWS, (spare // 4 - working) // max(per_row, 1)))
    return max(_CHUNK_ROWS, rows - rows % _CHUNK_ROWS)


def _counts_rows(path: Path, a: int, e: int) -> np.memmap:
    """Rows ``a:e`` of the counts file ``path`` (a ``.npy``), mapped read-write on their own."""
    head = np.load(path, mmap_mode="r")
    shape, offset, dtype = head.shape, head.offset, head.dtype
    del head
    row_bytes = dtype.itemsize * int(np.prod(shape[1:]))
    return np.memmap(
        path, dtype, mode="r+", offset=offset + a * row_bytes, shape=(e - a, *shape[1:])
    )


@dataclass(frozen=True, eq=False)
class _Finished:
    """A scored block waiting to be kept: its results and, when on disk, its mapped counts
    rows."""

    block_file: Path
    top_scores: np.ndarray
    top_subjects: np.ndarray
    top_rows: np.ndarray
    higher: np.ndarray
    counts_rows: np.memmap | None

    def keep(self) -> None:
        """Flush the mapped counts rows, then write the block file atomically (temporary
        file, then rename): a block file's presence means its block is complete."""
        if self.counts_rows is not None:
            self.counts_rows.flush()
        tmp = self.block_file.with_name(self.block_file.stem + ".tmp.npz")
        try:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    top_scores=self.top_scores,
                    top_subjects=self.top_subjects,
                    top_rows=self.top_rows,
                    higher=self.higher,
                )
            os.replace(tmp, self.block_file)
        except BaseException:
            tmp.unlink(missing_ok=True)  # no half-written file is left behind
            raise


@dataclass(eq=False)
class _InFlight:
    """A block being scored: its probe rows, its block file and counts rows (when kept on
    disk), and the scoring task when blocks overlap."""

    rows: tuple[int, int]
    block_file: Path | None
    counts_rows: np.memmap | None
    future: Future[Partial] | None = None
    handed: bool = False  # its results are in place (and with the keeper)

    def result(self) -> Partial:
        assert self.future is not None
        return self.future.result()

    def succeeded(self) -> bool:
        """Scored to the end (only asked once no task runs any more)."""
        return (
            self.future is not None
            and self.future.done()
            and not self.future.cancelled()
            and self.future.exception() is None
        )


class _BlockKeeper:
    """Keeps finished blocks (:meth:`_Finished.keep`) on a thread of its own, in order.

    The flush of a block's counts rows (disk I/O) and its block file used to run between two
    blocks with both scoring threads idle; here they overlap the next block's scoring. At
    most one block waits (the queue holds one), so memory stays bounded.
    """

    def __init__(self) -> None:
        self.kept = 0
        self._error: BaseException | None = None
        self._closed = False
        self._queue: queue.Queue[_Finished | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="lfr-keep-blocks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    item.keep()
                    self.kept += 1
                except BaseException as exc:  # noqa: BLE001 - raised in the scoring thread
                    self._error = exc
            del item  # unmaps the block's counts rows

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: _Finished) -> None:
        """Hand over a finished block (waits while another one is waiting)."""
        self._raise()
        self._queue.put(item)

    def close(self) -> None:
        """Wait until every block handed over is kept; raise the first error keeping one."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        self._raise()


def score_probes(  # noqa: C901 - one loop with resume, memory map and Ctrl-C
    probes: np.ndarray,
    gallery: Gallery,
    *,
    k: int,
    thresholds: np.ndarray | None = None,
    mate_codes: np.ndarray | None = None,
    backend: _NumpyKernel | _TorchKernel | None = None,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    work_dir: str | os.PathLike[str] | None = None,
    progress: bool | BlockProgress | None = None,
    desc: str = "scoring",
    tile_bytes: int | None = None,
    rows_per_block: int | None = None,
) -> Partial:
    """Score all probes against the whole gallery in blocks, keeping finished blocks on disk.

    Parameters
    ----------
    probes : ndarray of shape (n, d), float32, unit rows
    gallery : Gallery
    k, thresholds, mate_codes, backend :
        As in :func:`~lfr_eval.search._kernel.score_block`.
    memory_bytes : int
        Memory setting for the run (gallery, probes, one block's tile and partials, and the
        counts when they are small; larger counts are memory-mapped from ``work_dir``, or
        without one from ``<temp dir>/lfr-scoring/<key>``, which a re-run also resumes from).
        It only chooses how many of the kernel's fixed-shape chunks a block holds (at least
        one), so the numbers are bit-identical whatever the setting.
    work_dir : path, optional
        Folder for finished blocks (resume). Without it nothing is kept after the run.
    progress : bool or callable, optional
        True: a tqdm bar on stderr; a callable gets ``(blocks done, blocks in all)``.
    desc : str
        Label of the progress bar.
    tile_bytes : int, optional
        Memory of one similarity tile (default: the backend's, e.g. one core's L2 cache per
        thread chunk for numpy).
    rows_per_block : int, optional
        Probe rows per block (default: sized from ``memory_bytes``, a multiple of the kernel's
        512-row chunk). Any multiple of 512 gives the same numbers, bit for bit, as every
        memory setting; other sizes change the BLAS products' shapes and so the float32
        rounding of the scores (up to about 5e-7).

    Returns
    -------
    Partial
        One row per probe; ``counts`` (of the gallery's
        :meth:`~lfr_eval.search._kernel.Gallery.counts_dtype`: uint8, uint16 or int32; widen
        before summing) may be a read-only memory map of the work folder's ``counts.npy``.

    Raises
    ------
    ScoringInterrupted
        On Ctrl-C, after keeping the finished blocks.
    MemoryError
        The memory setting cannot hold the gallery.
    """
    be = backend if backend is not None else _NumpyKernel()
    probes = np.ascontiguousarray(probes, dtype=np.float32)
    if np.may_share_memory(probes, gallery.matrix):
        # A self-search (the templates searched against themselves): numpy multiplies a matrix
        # by its own transpose with BLAS syrk instead of gemm wherever a probe chunk and a tile
        # are the same memory, and syrk rounds differently in the last bit -- the scores would
        # then differ from any other layout and from a cluster's workers (which get copies).
        probes = probes.copy()
    n = probes.shape[0]
    thr = None if thresholds is None else check_thresholds(thresholds)
    n_thr = 0 if thr is None else len(thr)
    rows = (
        int(rows_per_block)
        if rows_per_block
        else _rows_per_block(n, gallery, k, n_thr, int(memory_bytes), getattr(be, "threads", None))
    )
    n_blocks = -(-n // rows) if n else 0
    tile = int(tile_bytes) if tile_bytes else None
    mates = None if mate_codes is None else np.asarray(mate_codes, np.int64)
    ms = None if mates is None else mate_scores(probes, gallery, mates)

    # the smallest type that holds every count (uint16 at NPL size): half of int32's bytes to
    # write, on disk or in memory
    counts_type = gallery.counts_dtype()
    counts_bytes = counts_type.itemsize * n * gallery.n_groups * n_thr
    folder: Path | None = None
    made_here = False
    if (
        work_dir is None
        and thr is not None
        and counts_bytes > _COUNTS_IN_MEMORY_SHARE * memory_bytes
    ):
        # counts too large for the memory setting live on disk even without a work folder
        work_dir = Path(tempfile.gettempdir()) / "lfr-scoring"
        made_here = True
    if work_dir is not None:
        key = scoring_key(
            probes,
            gallery,
            k=k,
            thresholds=thr,
            mate_codes=mates,
            # the product layout (chunk rows, tile memory) fixed the float32 rounding before
            # every product was padded ("regular"): blocks made otherwise are never reused
            # and the counts file's type: a file of another type (int32 before stop 22) is
            # never read as this one
            backend=(
                f"{be.name}:{be.precision};chunks={_CHUNK_ROWS};tile={tile or 'default'};"
                f"products=regular;counts={counts_type.name}"
            ),
        )
        folder = Path(work_dir) / key
        # the blocks hold who each search found (subject codes, scores): owner-only (imported
        # here: the live page's search path never loads the at-rest module)
        from lfr_eval.atrest import private_dir

        private_dir(folder)
        fs = filesystem_type(folder) if thr is not None else None
        if fs in ("tmpfs", "ramfs"):
            warnings.warn(
                MSG_COUNTS_IN_RAM.format(size=counts_bytes / 1e9, folder=folder.parent, fs=fs),
                CountsInMemoryWarning,
                stacklevel=2,
            )
        made = _made_folders.get()
        if made_here and made is not None:
            made.append(folder)
        info = {
            "n_probes": n,
            "n_subjects": gallery.n_subjects,
            "k": k,
            "n_thresholds": n_thr,
            "n_groups": gallery.n_groups,
            "rows_per_block": rows,
            "backend": be.name,
            "counts_dtype": counts_type.name,
        }
        info_path = folder / "run.json"
        if info_path.exists():
            # blocks are only reusable with the block size they were made with
            rows = int(json.loads(info_path.read_text())["rows_per_block"])
            n_blocks = -(-n // rows) if n else 0
        else:
            info_path.write_text(json.dumps(info))

    counts_path = None if folder is None or thr is None else folder / "counts.npy"
    counts_mem: np.ndarray | None = None
    counts_shape = (n, gallery.n_groups, n_thr)
    if thr is not None and counts_path is None:
        counts_mem = np.zeros(counts_shape, counts_type)
    elif counts_path is not None and not counts_path.exists():
        tmp = counts_path.with_suffix(".tmp.npy")
        np.lib.format.open_memmap(tmp, mode="w+", dtype=counts_type, shape=counts_shape).flush()
        os.replace(tmp, counts_path)
    elif counts_path is not None:
        head = np.load(counts_path, mmap_mode="r")
        found = (head.dtype, head.shape)
        del head
        if found != (counts_type, counts_shape):
            # the key names both, so only a file changed by hand gets here: never misread
            raise ValueError(
                MSG_COUNTS_FILE.format(
                    path=counts_path, found=found, wanted=(counts_type, counts_shape)
                )
            )

    # On a Dask cluster (lfr_eval.distributed.using_cluster) the numpy kernel's blocks run as
    # the cluster's tasks; without a work folder the whole run is one call (the gallery is sent
    # to the workers once), with one the blocks go one by one so finished ones are kept.
    executor = block_executor.get() if isinstance(be, _NumpyKernel) else None
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_blocks, desc=desc, unit="block")
    if executor is not None and folder is None:
        # the blocks run as the cluster's tasks, all at once: the bar moves as they finish
        def advance(done: int, total: int) -> None:
            if bar is not None:
                bar.update(done - bar.n)
            elif callable(progress):
                progress(done, total)

        try:
            whole = executor(
                probes,
                gallery,
                k=k,
                thresholds=thr,
                mate_codes=mates,
                block=rows,
                tile_bytes=tile,
                progress=advance,
            )
            if whole.counts is None:
                return whole
            # the same type as every other path (the tasks' blocks come back as int32)
            return Partial(
                whole.top_scores,
                whole.top_subjects,
                whole.top_rows,
                whole.higher,
                whole.counts.astype(counts_type, copy=False),
            )
        finally:
            if bar is not None:
                bar.close()

    top_s = np.full((n, k), -np.inf, np.float32)
    top_j = np.full((n, k), -1, np.int64)
    top_r = np.full((n, k), -1, np.int64)
    higher = np.zeros(n, np.int64)
    # finished blocks are kept on disk by a thread of their own while the next block is scored
    keeper = None if folder is None else _BlockKeeper()
    reused = 0  # blocks found on disk
    reported = 0

    def report(kept: int) -> None:
        nonlocal reported
        while reported < kept:
            reported += 1
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(reported, n_blocks)

    def score(
        kernel: _NumpyKernel | _TorchKernel, a: int, e: int, out: np.ndarray | None
    ) -> Partial:
        if executor is not None:
            part = executor(
                probes[a:e],
                gallery,
                k=k,
                thresholds=thr,
                mate_codes=None if mates is None else mates[a:e],
                block=rows,
                tile_bytes=tile,
            )
            if part.counts is not None and out is not None:
                out[...] = part.counts
            return part
        # the counts go straight to their place (``out``): this block's rows of the counts in
        # memory, or of the counts file, written by the scoring threads themselves
        return score_block(
            probes[a:e],
            gallery,
            k=k,
            thresholds=thr,
            mate_codes=None if mates is None else mates[a:e],
            mate_score=None if ms is None else ms[a:e],
            backend=kernel,
            tile_bytes=tile,
            counts_out=out,
        )

    def finish(block: _InFlight, part: Partial) -> None:
        a, e = block.rows
        top_s[a:e], top_j[a:e] = part.top_scores, part.top_subjects
        top_r[a:e], higher[a:e] = part.top_rows, part.higher
        if keeper is not None:
            assert block.block_file is not None  # a keeper means a work folder
            keeper.put(
                _Finished(
                    block.block_file,
                    part.top_scores,
                    part.top_subjects,
                    part.top_rows,
                    part.higher,
                    block.counts_rows,
                )
            )
        block.handed = True

    def done_now() -> int:
        return reused + (keeper.kept if keeper is not None else finished)

    # The numpy kernel scores two blocks at once (the second one's chunks queued behind the
    # first one's in one pool of threads): the cores then never wait at a block boundary
    # while one thread finishes the block's last chunk, or while the block is handed over.
    overlap = executor is None and isinstance(be, _NumpyKernel) and n_blocks > 1
    inflight: collections.deque[_InFlight] = collections.deque()
    finished = 0
    try:
        with contextlib.ExitStack() as stack:
            kernel: _NumpyKernel | _TorchKernel = be
            drivers = None
            if overlap:
                assert isinstance(be, _NumpyKernel)
                kernel = stack.enter_context(shared_chunk_pool(be.threads))
                drivers = stack.enter_context(ThreadPoolExecutor(2, thread_name_prefix="lfr-block"))
            try:
                for b in range(n_blocks):
                    a, e = b * rows, min(n, (b + 1) * rows)
                    block_file = None if folder is None else folder / f"block_{b:06d}.npz"
                    if block_file is not None and block_file.exists():
                        with np.load(block_file) as kept:
                            top_s[a:e], top_j[a:e] = kept["top_scores"], kept["top_subjects"]
                            top_r[a:e], higher[a:e] = kept["top_rows"], kept["higher"]
                        reused += 1
                        report(done_now())
                        continue
                    rows_map = None
                    if counts_path is not None:
                        # a mapping of just this block's rows: once kept, they leave this
                        # process's memory
                        rows_map = _counts_rows(counts_path, a, e)
                    out = counts_mem[a:e] if counts_mem is not None else None
                    if rows_map is not None:
                        out = np.asarray(rows_map)
                    block = _InFlight((a, e), block_file, rows_map)
                    if drivers is None:
                        finish(block, score(kernel, a, e, out))
                        finished += 1
                    else:
                        if len(inflight) == 2:
                            finish(inflight[0], inflight[0].result())
                            inflight.popleft()
                            finished += 1
                        block.future = drivers.submit(score, kernel, a, e, out)
                        inflight.append(block)
                    del block, rows_map, out
                    report(done_now())
                while inflight:
                    finish(inflight[0], inflight[0].result())
                    inflight.popleft()
                    finished += 1
                    report(done_now())
            except BaseException:
                if isinstance(kernel, _NumpyKernel):
                    kernel.cancel_queued()  # the blocks in flight stop after their running chunks
                raise
        if keeper is not None:
            keeper.close()
        report(n_blocks)
    except KeyboardInterrupt:
        # every block that was scored to the end is kept before saying how many are
        for block in inflight:
            if block.succeeded() and not block.handed:
                finish(block, block.result())
        if keeper is not None:
            keeper.close()
        where = "memory only (no work folder)" if folder is None else str(folder)
        raise ScoringInterrupted(
            MSG_INTERRUPTED.format(done=done_now(), total=n_blocks, folder=where)
        ) from None
    finally:
        inflight.clear()
        if keeper is not None:
            keeper.close()
        if bar is not None:
            bar.close()

    if thr is None:
        counts = None
    elif counts_mem is not None:
        counts = counts_mem
    else:
        assert counts_path is not None
        counts = np.load(counts_path, mmap_mode="r")
    if n == 0:
        return empty_partial(0, k, gallery.n_groups, None if thr is None else n_thr)
    return Partial(top_s, top_j, top_r, higher, counts)
