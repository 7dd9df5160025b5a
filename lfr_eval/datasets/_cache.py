"""A persistent store of image embeddings, so a second evaluation run does not recompute them.

Entries are keyed by the image's content (sha256 of its bytes) and the engine's cache key (its
backend, every model file's hash and the detector settings, see :func:`engine_cache_key`):
renaming or moving images keeps the cache valid, and a different model or detector never reuses
another's embeddings. Failures (no face found, unreadable file) are cached too, with their
reason, so a resumed run does not retry them.

The store is one SQLite file; every batch is committed in a transaction, so an interrupted run
loses at most the batch in flight and never leaves a half-written row.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from typing_extensions import Self

from lfr_eval.atrest import private_dir, private_file
from lfr_eval.errors import CacheError
from lfr_eval.faces import FaceEngine

#: Version of the cache's table layout; a file with another version is refused, not migrated.
CACHE_SCHEMA_VERSION = 1

#: File name of the cache inside a workspace's ``cache`` folder.
CACHE_FILE_NAME = "embeddings.sqlite"

MSG_CACHE_UNREADABLE = (
    "embedding cache {path} is not readable ({reason}); delete it to start a fresh cache"
)
MSG_CACHE_VERSION = (
    "embedding cache {path} has layout version {found}, this version of lfr-eval uses "
    "{expected}; delete the file (embeddings will be recomputed) or use another --cache"
)


#: Engine attributes that change the embedding an image gets, beyond the model files.
_SETTING_ATTRIBUTES = (
    "detector_kind",
    "upsample",
    "det_size",
    "det_thresh",
    "chip_size",
    "chip_padding",
)


def engine_cache_key(engine: FaceEngine, face_choice: str = "largest") -> str:
    """The key under which an engine's embeddings are cached.

    It names the backend, every model file (role, name, sha256 prefix), the detector settings
    the engine exposes, the runtime's precision, and the rule choosing the face of an image
    with several, e.g. ``"dlib|landmarks=shape_predictor_5…@c6c1…|recognizer=…|
    detector_kind=hog|upsample=1|fp32|face=largest"``.
    """
    engine_id = engine.engine_id
    parts = [engine_id.backend]
    parts += [f"{m.role}={m.name}@{m.sha256[:16]}" for m in engine_id.models]
    for attribute in _SETTING_ATTRIBUTES:
        value = getattr(engine, attribute, None)
        if value is not None:
            parts.append(f"{attribute}={value}")
    parts.append(engine.runtime.precision)
    parts.append(f"face={face_choice}")
    return "|".join(parts)


@dataclass(frozen=True)
class CachedEmbedding:
    """What one engine made of one image.

    Attributes
    ----------
    image_sha256 : str
    n_faces : int
        Faces the detector found (0 when none or when the image was unreadable).
    embedding : ndarray of shape (D,) float32 or None
        Unit-norm embedding of the chosen face; None on failure.
    failure : str or None
        Why no embedding was made (``"no face"``, ``"unreadable image: …"``); None on success.
    det_score : float
        Detector confidence of the chosen face (NaN on failure), engine-specific scale.
    face_size_px : float
        Inter-ocular distance of the chosen face in pixels (NaN on failure).
    """

    image_sha256: str
    n_faces: int
    embedding: np.ndarray | None
    failure: str | None
    det_score: float = float("nan")
    face_size_px: float = float("nan")

    @property
    def ok(self) -> bool:
        return self.embedding is not None


class EmbeddingCache:
    """SQLite store of embeddings keyed by (image sha256, engine cache key).

    Parameters
    ----------
    path : path-like
        The SQLite file (created with its folder if missing).

    Raises
    ------
    CacheError
        The file is not a cache this version can use.

    Examples
    --------
    >>> cache = EmbeddingCache(tmp / "embeddings.sqlite")       # doctest: +SKIP
    >>> cache.get_many(["ab12…"], "dlib|…")                        # doctest: +SKIP
    {}
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if not self.path.parent.exists():
            private_dir(self.path.parent)
        try:
            if not self.path.exists():
                # embeddings of face images are biometric data: owner-only from the start
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            private_file(self.path)
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            # purged entries are overwritten, not just unlinked
            self._db.execute("PRAGMA secure_delete = ON")
            self._create()
        except sqlite3.DatabaseError as exc:
            raise CacheError(MSG_CACHE_UNREADABLE.format(path=self.path, reason=exc)) from exc

    @classmethod
    def in_workspace(cls, workspace: str | os.PathLike[str] | None = None) -> EmbeddingCache:
        """The cache at ``<workspace>/cache/embeddings.sqlite``."""
        from lfr_eval.workspace import workspace_dir

        return cls(workspace_dir(workspace) / "cache" / CACHE_FILE_NAME)

    def _create(self) -> None:
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(CACHE_SCHEMA_VERSION),)
                )
            elif int(row[0]) != CACHE_SCHEMA_VERSION:
                raise CacheError(
                    MSG_CACHE_VERSION.format(
                        path=self.path, found=row[0], expected=CACHE_SCHEMA_VERSION
                    )
                )
            self._db.execute(
                """CREATE TABLE IF NOT EXISTS engines (
                    engine_key TEXT PRIMARY KEY,
                    engine_json TEXT NOT NULL,
                    created TEXT NOT NULL)"""
            )
            self._db.execute(
                """CREATE TABLE IF NOT EXISTS embeddings (
                    image_sha256 TEXT NOT NULL,
                    engine_key TEXT NOT NULL,
                    n_faces INTEGER NOT NULL,
                    embedding BLOB,
                    failure TEXT,
                    det_score REAL,
                    face_size_px REAL,
                    created TEXT NOT NULL,
                    PRIMARY KEY (image_sha256, engine_key))"""
            )

    # ------------------------------------------------------------------ context manager
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ access
    def register_engine(self, engine_key: str, engine: FaceEngine) -> None:
        """Record which engine (models with hashes, runtime) a key stands for."""
        payload = json.dumps(
            {"engine": engine.engine_id.to_dict(), "runtime": engine.runtime.to_dict()},
            sort_keys=True,
        )
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO engines VALUES (?, ?, ?)",
                (engine_key, payload, datetime.now(timezone.utc).isoformat()),
            )

    def get_many(self, hashes: Iterable[str], engine_key: str) -> dict[str, CachedEmbedding]:
        """Cached entries for these images under ``engine_key`` (missing ones are left out)."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, CachedEmbedding] = {}
        # SQLite limits bound parameters per statement; 900 stays under every default.
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT image_sha256, n_faces, embedding, failure, det_score, face_size_px "
                f"FROM embeddings WHERE engine_key = ? AND image_sha256 IN ({marks})",
                (engine_key, *chunk),
            ).fetchall()
            for sha, n_faces, blob, failure, det_score, size in rows:
                vector = None if blob is None else np.frombuffer(blob, dtype="<f4").copy()
                found[sha] = CachedEmbedding(
                    image_sha256=sha,
                    n_faces=int(n_faces),
                    embedding=vector,
                    failure=failure,
                    det_score=float("nan") if det_score is None else float(det_score),
                    face_size_px=float("nan") if size is None else float(size),
                )
        return found

    def put_many(self, entries: Sequence[CachedEmbedding], engine_key: str) -> None:
        """Store entries in one transaction (all or none)."""
        now = datetime.now(timezone.utc).isoformat()
        rows = [
            (
                e.image_sha256,
                engine_key,
                int(e.n_faces),
                None if e.embedding is None else np.asarray(e.embedding, "<f4").tobytes(),
                e.failure,
                None if np.isnan(e.det_score) else float(e.det_score),
                None if np.isnan(e.face_size_px) else float(e.face_size_px),
                now,
            )
            for e in entries
        ]
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def count(self, engine_key: str | None = None) -> int:
        """Number of cached entries (for one engine key, or all)."""
        if engine_key is None:
            return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM embeddings WHERE engine_key = ?", (engine_key,)
            ).fetchone()[0]
        )

    def purge_older_than(self, cutoff: datetime) -> int:
        """Delete entries computed before ``cutoff`` (aware datetime); returns how many.

        The cache has its own retention (see :mod:`lfr_eval.retention`): an evaluation's
        embeddings are biometric data and are not kept for ever.
        """
        if cutoff.tzinfo is None:
            raise CacheError(f"cutoff {cutoff!r} has no time zone; give an aware datetime")
        stamp = cutoff.astimezone(timezone.utc).isoformat()
        with self._db:
            cur = self._db.execute(
                "DELETE FROM embeddings WHERE julianday(created) < julianday(?)", (stamp,)
            )
        removed = int(cur.rowcount)
        if removed:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")
        return removed

    def engine_keys(self) -> list[str]:
        """Engine keys with at least one cached entry."""
        rows = self._db.execute("SELECT DISTINCT engine_key FROM embeddings ORDER BY 1").fetchall()
        return [r[0] for r in rows]
