"""Parquet shards of embeddings, keyed by image sha256 and engine cache key.

A shard holds what one task embedded: one row per image (``n_faces``, ``det_score``,
``face_size_px`` and ``sealed``: the image's sha256, its embedding or none, and the failure
reason, sealed with AES-256-GCM as the embedding cache seals its entries, bound to the row's
clear columns, its position and the shard's name) and, in the file's metadata, the engine cache
key and the shard layout version. The driver seals and names them with the keys of the cache
the shards merge into (:meth:`~lfr_eval.datasets.EmbeddingCache.shard_keys`), so a run resumed
later can open them; without a cache, with keys that live in memory only (its shards are
temporary anyway). A shard that does not open (another key, edited) counts as damaged. Shards
live under ``<shard root>/<sha256 of the engine key>[:32]/<shard id>.parquet``, the shard id a
keyed hash of the image hashes it holds (:meth:`ShardKeys.shard_id`), and are written to a
temporary name then renamed, so a shard on disk is always whole. They are the hand-over from
the cluster to the embedding cache: each is merged into the cache and then deleted; a run that
was interrupted leaves its finished shards, which the next run merges before computing anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lfr_eval.atrest import Sealer, SealError, associated_data, private_dir
from lfr_eval.datasets._cache import CachedEmbedding, pack_entry, unpack_entry

#: Version of the shard layout; shards of another version are ignored (and recomputed).
#: 2: entries sealed (1 held them in clear).
SHARD_VERSION = 2
_META_KEY = b"lfr_eval_shard"


def shard_folder(root: str | os.PathLike[str], engine_key: str) -> Path:
    """The folder holding one engine key's shards."""
    digest = hashlib.sha256(engine_key.encode()).hexdigest()[:32]
    return Path(root) / digest


@dataclass(frozen=True)
class ShardKeys:
    """What seals a cluster run's shards and what names them.

    Attributes
    ----------
    sealer : Sealer
        Seals each row (AES-256-GCM).
    ref : bytes
        HMAC-SHA256 key of the shards' names (the embedding cache's pseudonym key). A name
        that anyone could compute from the images (a plain sha256 of their hashes) would let
        whoever holds the images and guesses the shard size confirm, from the file names or
        the Dask task keys alone, that a run embedded them.
    """

    sealer: Sealer
    ref: bytes = field(repr=False)

    @classmethod
    def ephemeral(cls) -> ShardKeys:
        """Keys that live in this process only (shards of a run without a cache)."""
        return cls(Sealer(os.urandom(32)), os.urandom(32))

    def shard_id(self, image_hashes: Sequence[str]) -> str:
        """A shard's name: keyed hash of the image hashes it holds, in order (32 hex, 128 bits)."""
        message = b"shard\0" + "\n".join(image_hashes).encode()
        return hmac.new(self.ref, message, "sha256").hexdigest()[:32]


def _row_ad(engine_key: str, name: str, i: int, n_faces: int, det: float, size: float) -> bytes:
    return associated_data("shard", engine_key, name, i, n_faces, det, size)


def write_shard(
    path: Path, entries: Sequence[CachedEmbedding], engine_key: str, sealer: Sealer
) -> Path:
    """Write entries, sealed, as one Parquet shard, atomically (temporary file, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dims = {e.embedding.shape[0] for e in entries if e.embedding is not None}
    if len(dims) > 1:
        raise ValueError(f"embeddings of different lengths in one shard: {sorted(dims)}")
    dim = dims.pop() if dims else 0
    n_faces = [int(e.n_faces) for e in entries]
    det = [float(e.det_score) for e in entries]
    size = [float(e.face_size_px) for e in entries]
    sealed = [
        sealer.seal(
            pack_entry(e.image_sha256, e.embedding, e.failure),
            _row_ad(engine_key, path.stem, i, n_faces[i], det[i], size[i]),
        )
        for i, e in enumerate(entries)
    ]
    table = pa.table(
        {
            "n_faces": pa.array(n_faces, pa.int64()),
            "det_score": pa.array(det, pa.float64()),
            "face_size_px": pa.array(size, pa.float64()),
            "sealed": pa.array(sealed, pa.binary()),
        }
    )
    meta = json.dumps({"version": SHARD_VERSION, "engine_key": engine_key, "dim": dim})
    table = table.replace_schema_metadata({_META_KEY: meta.encode()})
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # owner-only from the start, like every file holding templates
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_shard(path: Path, engine_key: str, sealer: Sealer) -> list[CachedEmbedding] | None:
    """A shard's entries, or None if it is unreadable, belongs to another engine/version, or
    does not open with ``sealer`` (another key, or edited)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[_META_KEY])
    except (OSError, ValueError, KeyError):
        return None
    if meta.get("version") != SHARD_VERSION or meta.get("engine_key") != engine_key:
        return None
    try:
        n_faces = [int(x) for x in table.column("n_faces").to_pylist()]
        det = [float(x) for x in table.column("det_score").to_pylist()]
        size = [float(x) for x in table.column("face_size_px").to_pylist()]
        sealed = table.column("sealed").to_pylist()
        entries = []
        for i, blob in enumerate(sealed):
            ad = _row_ad(engine_key, path.stem, i, n_faces[i], det[i], size[i])
            sha, vector, failure = unpack_entry(sealer.open(blob, ad))
            entries.append(CachedEmbedding(sha, n_faces[i], vector, failure, det[i], size[i]))
    except (KeyError, TypeError, ValueError, SealError):
        return None
    return entries


def finished_shards(
    root: str | os.PathLike[str], engine_key: str, sealer: Sealer
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
        entries = read_shard(path, engine_key, sealer)
        if entries is None:
            path.unlink(missing_ok=True)
        else:
            yield path, entries
