"""Scoring blocks as Dask tasks, reduced exactly with the kernel's :func:`merge_partials`.

The gallery (templates grouped by subject, :class:`~lfr_eval.search._kernel.Gallery`) is sent
to every worker once; the probes are cut into the blocks one process would use and the gallery
into up to one shard per worker thread. Each (probe block, gallery shard) is one
:func:`~lfr_eval.search._kernel.score_block` task, and each block's shards are merged by one
more task, so the driver receives one :class:`~lfr_eval.search._kernel.Partial` per probe
block (top-k, mate's ``higher``, per-threshold counts) and concatenates them. The mates'
scores are computed on the driver first, as the kernel requires, so every shard counts the
subjects above the mate.

Bit for bit: a BLAS matrix product's float32 rounding depends on the matrices' shapes (the
same dot product can come out 1.0 or 0.9999999 in products of different sizes), so shards are
made of whole *tiles* of the single-process pass -- the kernel's tiling from a tile boundary
reproduces the same tiles -- and every similarity is computed by the same product as in one
process. A block's whole 512-row chunks and its shorter last chunk have tiles of different
widths, so they are scored as two pieces with their own shards
(:func:`~lfr_eval.search._kernel.chunk_layout`). A gallery that fits in one tile
(``tile_bytes``) is therefore one shard, and the parallelism is over probe blocks. Arrays
arrive on a worker in unaligned network buffers, where numpy's matrix product skips BLAS and
rounds differently; :func:`score_block_task` copies them to aligned memory first (the gallery
once per worker). ``tests/test_distributed.py`` checks equality, also across memory settings.

Scoring goes to the cluster while :func:`using_cluster` is active, for the numpy backend (a
torch/CUDA backend keeps scoring on the driver's device).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from lfr_eval.distributed._cluster import ClusterSpec, active_client, open_client

if TYPE_CHECKING:
    from distributed import Client, Future

    from lfr_eval.search._kernel import Gallery, Partial


def score_all_on_cluster(
    client: Client,
    probes: np.ndarray,
    gallery: Gallery,
    *,
    k: int,
    thresholds: np.ndarray | None = None,
    mate_codes: np.ndarray | None = None,
    block: int = 1024,
    tile_bytes: int | None = None,
    n_shards: int | None = None,
    remote_gallery: Future[Gallery] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Partial:
    """:func:`~lfr_eval.search._kernel.score_all` with its blocks as tasks on ``client``.

    Parameters are those of ``score_all`` (numpy backend); ``n_shards`` is the number of
    gallery shards (default: the cluster's worker threads); ``remote_gallery`` is ``gallery``
    already on the workers (``client.scatter(gallery, broadcast=True)``), so that calls for
    successive probe blocks send it only once (default: scattered here); ``progress`` gets
    ``(blocks done, blocks in all)`` as the blocks' merged results arrive. Returns the same
    ``Partial``.
    """
    from lfr_eval.search._kernel import (
        DEFAULT_TILE_BYTES,
        concat_partials,
        empty_partial,
        mate_scores,
        merge_partials,
        probe_blocks,
    )

    probes = np.ascontiguousarray(probes, dtype=np.float32)
    thr_n = None if thresholds is None else len(np.atleast_1d(thresholds))
    if len(probes) == 0 or gallery.n_subjects == 0:
        return concat_partials([empty_partial(len(probes), k, gallery.n_groups, thr_n)])
    mates = None if mate_codes is None else np.asarray(mate_codes, np.int64)
    ms = None if mates is None else mate_scores(probes, gallery, mates)
    if n_shards is None:
        n_shards = sum(client.nthreads().values()) or 1
    tile_bytes = tile_bytes or DEFAULT_TILE_BYTES
    if remote_gallery is None:
        remote_gallery = client.scatter(gallery, broadcast=True, hash=False)
    merged: list[Future[Partial]] = []
    for a, b in probe_blocks(len(probes), block):
        pieces = []
        for pa, pb in _same_width_pieces(a, b):
            shards = tile_aligned_shards(gallery, pb - pa, tile_bytes, n_shards)
            parts = [
                client.submit(
                    score_block_task,
                    probes[pa:pb],
                    remote_gallery,
                    mate_codes=None if mates is None else mates[pa:pb],
                    mate_score=None if ms is None else ms[pa:pb],
                    subjects=shard,
                    pure=False,
                    k=k,
                    thresholds=thresholds,
                    tile_bytes=tile_bytes,
                )
                for shard in shards
            ]
            pieces.append(client.submit(merge_partials, parts, pure=False))
        merged.append(
            pieces[0] if len(pieces) == 1 else client.submit(concat_partials, pieces, pure=False)
        )
    try:
        if progress is not None:
            from distributed import as_completed

            for done, _ in enumerate(as_completed(merged), start=1):
                progress(done, len(merged))
        return concat_partials(client.gather(merged))
    finally:
        client.cancel(merged)


_aligned: dict[int, tuple[Gallery, Gallery]] = {}
_aligned_lock = threading.Lock()


def _aligned_array(array: np.ndarray) -> np.ndarray:
    if array.flags.aligned and array.flags.c_contiguous and array.ctypes.data % 64 == 0:
        return array
    out = np.empty_like(array, order="C")  # numpy's allocator aligns to 64 bytes
    out[...] = array
    return out


def _aligned_gallery(gallery: Gallery) -> Gallery:
    """The gallery with its arrays in aligned memory, made once per worker process."""
    with _aligned_lock:
        held = _aligned.get(id(gallery))
        if held is None or held[0] is not gallery:
            # the gallery's fields, its numeric arrays copied to aligned memory
            fields: dict[str, Any] = {
                f.name: _aligned_array(v) if isinstance(v, np.ndarray) and v.dtype != object else v
                for f in dataclasses.fields(gallery)
                for v in [getattr(gallery, f.name)]
            }
            if len(_aligned) > 4:
                _aligned.clear()
            held = (gallery, type(gallery)(**fields))
            _aligned[id(gallery)] = held
        return held[1]


def score_block_task(
    probes: np.ndarray,
    gallery: Gallery,
    *,
    k: int,
    thresholds: np.ndarray | None = None,
    mate_codes: np.ndarray | None = None,
    mate_score: np.ndarray | None = None,
    subjects: tuple[int, int] | None = None,
    tile_bytes: int | None = None,
) -> Partial:
    """A task: :func:`~lfr_eval.search._kernel.score_block` on aligned copies of its inputs."""
    from lfr_eval.search._kernel import score_block

    return score_block(
        _aligned_array(probes),
        _aligned_gallery(gallery),
        k=k,
        thresholds=thresholds,
        mate_codes=mate_codes,
        mate_score=mate_score,
        subjects=subjects,
        tile_bytes=tile_bytes,
    )


def _same_width_pieces(a: int, b: int) -> list[tuple[int, int]]:
    """Block ``a:b`` split where the kernel's tile width changes: its whole chunks, then the
    shorter last chunk (whose tiles are wider, :func:`~lfr_eval.search._kernel.chunk_layout`),
    so that each piece's gallery shards are whole tiles of every chunk in it."""
    from lfr_eval.search._kernel import _CHUNK_ROWS

    whole = a + (b - a) // _CHUNK_ROWS * _CHUNK_ROWS
    return [(x, y) for x, y in ((a, whole), (whole, b)) if y > x]


def tile_aligned_shards(
    gallery: Gallery, n_probes: int, tile_bytes: int, n_shards: int
) -> list[tuple[int, int]]:
    """Subject ranges made of whole tiles of the numpy kernel's pass over a chunk of
    ``n_probes`` probe rows (its tile width rule, ``numpy_tile_width``), about ``n_shards`` of
    them."""
    from lfr_eval.search._kernel import _tiles, numpy_tile_width

    width = numpy_tile_width(n_probes, tile_bytes)
    tiles = _tiles(gallery.starts, 0, gallery.n_subjects, width)
    per_shard = -(-len(tiles) // max(1, n_shards))
    return [
        (tiles[i][2], tiles[min(i + per_shard, len(tiles)) - 1][3])
        for i in range(0, len(tiles), per_shard)
    ]


@contextlib.contextmanager
def using_cluster(spec: ClusterSpec) -> Iterator[Client]:
    """Open the cluster once for everything inside: embedding tasks reuse the client and the
    kernel's ``score_all`` (numpy backend) runs its blocks there."""
    from lfr_eval.search import _kernel

    with open_client(spec) as client:
        token = active_client.set((spec, client))
        # the gallery last scattered, and its future: score_probes calls the executor once
        # per probe block when it keeps finished blocks (a work folder, or counts too large
        # for memory), and the gallery must reach the workers once, not once per block
        held: list[tuple[Gallery, Future[Gallery]]] = []

        def remote(gallery: Gallery) -> Future[Gallery]:
            if not held or held[0][0] is not gallery:
                held.clear()
                held.append((gallery, client.scatter(gallery, broadcast=True, hash=False)))
            return held[0][1]

        def executor(
            probes: np.ndarray,
            gallery: Gallery,
            *,
            k: int,
            thresholds: np.ndarray | None = None,
            mate_codes: np.ndarray | None = None,
            block: int = 1024,
            tile_bytes: int | None = None,
            progress: Callable[[int, int], None] | None = None,
        ) -> Partial:
            return score_all_on_cluster(
                client,
                probes,
                gallery,
                k=k,
                thresholds=thresholds,
                mate_codes=mate_codes,
                block=block,
                tile_bytes=tile_bytes,
                remote_gallery=remote(gallery),
                progress=progress,
            )

        kernel_token = _kernel.block_executor.set(executor)
        try:
            yield client
        finally:
            held.clear()
            _kernel.block_executor.reset(kernel_token)
            active_client.reset(token)
