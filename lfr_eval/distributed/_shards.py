"""Parquet shards of embeddings, keyed by image sha256 and engine cache key.

A shard holds what one task embedded: one row per image (``image_sha256``, ``n_faces``,
``embedding`` or null, ``failure``, ``det_score``, ``face_size_px``) and, in the file's
metadata, the engine cache key and the shard layout version. Shards live under
``<shard root>/<sha256 of the engine key>[:32]/<shard id>.parquet`` and are written to a
temporary name then renamed, so a shard on disk is always whole. They are the hand-over from
the cluster to the embedding cache: each is merged into the cache and then deleted; a run that
was interrupted leaves its finished shards, which the next run merges before computing anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lfr_eval.datasets._cache import CachedEmbedding

#: Version of the shard layout; shards of another version are ignored (and recomputed).
SHARD_VERSION = 1
_META_KEY = b"lfr_eval_shard"


def shard_folder(root: str | os.PathLike[str], engine_key: str) -> Path:
    """The folder holding one engine key's shards."""
    digest = hashlib.sha256(engine_key.encode()).hexdigest()[:32]
    return Path(root) / digest


def shard_id(image_hashes: Sequence[str]) -> str:
    """A shard's name: the sha256 of the image hashes it holds, in order (first 32 hex)."""
    return hashlib.sha256("\n".join(image_hashes).encode()).hexdigest()[:32]


def write_shard(path: Path, entries: Sequence[CachedEmbedding], engine_key: str) -> Path:
    """Write entries as one Parquet shard, atomically (temporary file, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dims = {e.embedding.shape[0] for e in entries if e.embedding is not None}
    if len(dims) > 1:
        raise ValueError(f"embeddings of different lengths in one shard: {sorted(dims)}")
    dim = dims.pop() if dims else 0
    flat = np.zeros((len(entries), dim), np.float32)
    valid = np.zeros(len(entries), bool)
    for i, entry in enumerate(entries):
        if entry.embedding is not None:
            flat[i], valid[i] = entry.embedding, True
    values = pa.array(flat.ravel(), pa.float32())
    embedding = pa.FixedSizeListArray.from_arrays(values, dim, mask=pa.array(~valid))
    table = pa.table(
        {
            "image_sha256": pa.array([e.image_sha256 for e in entries], pa.string()),
            "n_faces": pa.array([int(e.n_faces) for e in entries], pa.int64()),
            "embedding": embedding,
            "failure": pa.array([e.failure for e in entries], pa.string()),
            "det_score": pa.array([float(e.det_score) for e in entries], pa.float64()),
            "face_size_px": pa.array([float(e.face_size_px) for e in entries], pa.float64()),
        }
    )
    meta = json.dumps({"version": SHARD_VERSION, "engine_key": engine_key, "dim": dim})
    table = table.replace_schema_metadata({_META_KEY: meta.encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_shard(path: Path, engine_key: str) -> list[CachedEmbedding] | None:
    """A shard's entries, or None if it is unreadable or belongs to another engine/version."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[_META_KEY])
    except (OSError, ValueError, KeyError):
        return None
    if meta.get("version") != SHARD_VERSION or meta.get("engine_key") != engine_key:
        return None
    dim = int(meta["dim"])
    column = table.column("embedding").combine_chunks()
    valid = np.asarray(column.is_valid())
    # .values keeps the slots under null rows (flatten() would drop them)
    start = column.offset * dim
    flat = column.values.to_numpy(zero_copy_only=False)[start : start + len(table) * dim]
    vectors = flat.reshape(len(table), dim) if dim else np.zeros((len(table), 0), np.float32)
    shas = table.column("image_sha256").to_pylist()
    n_faces = table.column("n_faces").to_pylist()
    failures = table.column("failure").to_pylist()
    det = table.column("det_score").to_pylist()
    size = table.column("face_size_px").to_pylist()
    return [
        CachedEmbedding(
            image_sha256=shas[i],
            n_faces=int(n_faces[i]),
            embedding=vectors[i].copy() if valid[i] else None,
            failure=failures[i],
            det_score=float(det[i]),
            face_size_px=float(size[i]),
        )
        for i in range(len(table))
    ]


def finished_shards(
    root: str | os.PathLike[str], engine_key: str
) -> Iterator[tuple[Path, list[CachedEmbedding]]]:
    """Every whole shard of ``engine_key`` under ``root`` (left by an earlier run).

    A ``.parquet`` file there that is not a readable shard of this engine and layout version is
    deleted (shards are renamed into place only when whole, so it is damage, not work in
    progress); its images are then simply embedded again.
    """
    folder = shard_folder(root, engine_key)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.parquet")):
        entries = read_shard(path, engine_key)
        if entries is None:
            path.unlink(missing_ok=True)
        else:
            yield path, entries
