"""A persistent store of image embeddings, so a second evaluation run does not recompute them.

Entries are keyed by the image's content (sha256 of its bytes) and the engine's cache key (its
backend, every model file's hash and the detector settings, see :func:`engine_cache_key`):
renaming or moving images keeps the cache valid, and a different model or detector never reuses
another's embeddings. Failures (no face found, unreadable file) are cached too, with their
reason, so a resumed run does not retry them.

The store is one SQLite file; every batch is committed in a transaction, so an interrupted run
loses at most the batch in flight and never leaves a half-written row.

Embeddings of face images are biometric templates, so the cache keeps them as the watchlist
keeps its templates (:mod:`lfr_eval.atrest`): each entry's embedding and failure reason are
sealed with AES-256-GCM under a key derived for this file from the installation's key ring,
bound to the entry's clear columns (engine key, face count, detector score, face size, time),
and rows are found by a keyed hash of the image's sha256, so the file alone tells neither the
templates nor whether a given image was embedded. A layout-1 cache (embeddings in clear) is
sealed in place and vacuumed the first time it is opened.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import numpy as np
from typing_extensions import Self

from lfr_eval.atrest import (
    DataKeyError,
    FileKeys,
    Sealer,
    SealError,
    associated_data,
    file_keys,
    load_key_ring,
    private_dir,
    private_file,
)
from lfr_eval.errors import CacheError
from lfr_eval.faces import FaceEngine

if TYPE_CHECKING:
    from lfr_eval.distributed._shards import ShardKeys

#: Version of the cache's table layout: 2 seals the entries; a layout-1 file (entries in clear)
#: is sealed in place on open; any other version is refused, not migrated.
CACHE_SCHEMA_VERSION = 2

#: File name of the cache inside a workspace's ``cache`` folder.
CACHE_FILE_NAME = "embeddings.sqlite"

MSG_CACHE_UNREADABLE = (
    "embedding cache {path} is not readable ({reason}); delete it to start a fresh cache"
)
MSG_CACHE_SEALED = (
    "embedding cache {path}: entry {why}; the file was edited or damaged, or its key is not "
    "in this key ring: delete it (embeddings will be recomputed) or use another --cache"
)
MSG_CACHE_KEY = (
    "embedding cache {path} is sealed with data key {key}, which is not in this installation's "
    "key ring: restore that key (LFR_EVAL_DATA_KEY_FILE), or delete the cache (embeddings will "
    "be recomputed) or use another --cache"
)
MSG_CACHE_META = (
    "embedding cache {path} has no {what} in its meta table; the file was edited or damaged: "
    "delete it (embeddings will be recomputed) or use another --cache"
)
MSG_CACHE_BUSY = (
    "embedding cache {path} is in use by another process ({reason}) for longer than "
    "{timeout:g} s, e.g. an evaluation or the app writing to it; try again when it is done"
)
MSG_CACHE_VERSION = (
    "embedding cache {path} has layout version {found}, this version of lfr-eval uses "
    "{expected}; delete the file (embeddings will be recomputed) or use another --cache"
)


#: Seconds a connection waits for another process's write (a batch, a migration, a vacuum).
BUSY_TIMEOUT_S = 30.0

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _cache_error(path: Path, exc: sqlite3.DatabaseError) -> CacheError:
    """The one-line error of an SQLite failure: busy (wait and retry) or unreadable (delete)."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return CacheError(MSG_CACHE_BUSY.format(path=path, reason=text, timeout=BUSY_TIMEOUT_S))
    return CacheError(MSG_CACHE_UNREADABLE.format(path=path, reason=text))


def _sqlite_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn an SQLite error of a cache method into a one-line :class:`CacheError`."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            cache = args[0]
            assert isinstance(cache, EmbeddingCache)
            raise _cache_error(cache.path, exc) from exc

    return wrapper


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
    """SQLite store of embeddings keyed by (image sha256, engine cache key), sealed at rest.

    Parameters
    ----------
    path : path-like
        The SQLite file (created with its folder if missing; 0600 in a 0700 folder).

    Raises
    ------
    CacheError
        The file is not a cache this version can use, or an entry does not open (edited,
        damaged, or sealed under a key this key ring does not hold).
    DataKeyError
        The key ring cannot be read.

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
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            self._db.execute("PRAGMA journal_mode=WAL")
            # purged entries are overwritten, not just unlinked
            self._db.execute("PRAGMA secure_delete = ON")
            self._create()
        except sqlite3.DatabaseError as exc:
            raise _cache_error(self.path, exc) from exc

    @classmethod
    def in_workspace(cls, workspace: str | os.PathLike[str] | None = None) -> EmbeddingCache:
        """The cache at ``<workspace>/cache/embeddings.sqlite``."""
        from lfr_eval.workspace import workspace_dir

        return cls(workspace_dir(workspace) / "cache" / CACHE_FILE_NAME)

    def _create(self) -> None:
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            found = meta.get("schema_version")
            if found is None:
                meta = self._new_meta()
            elif found not in ("1", str(CACHE_SCHEMA_VERSION)):
                raise CacheError(
                    MSG_CACHE_VERSION.format(
                        path=self.path, found=found, expected=CACHE_SCHEMA_VERSION
                    )
                )
            self._db.execute(
                """CREATE TABLE IF NOT EXISTS engines (
                    engine_key TEXT PRIMARY KEY,
                    engine_json TEXT NOT NULL,
                    created TEXT NOT NULL)"""
            )
        if found == "1":
            if self._seal_layout_1():
                return
            # another opener sealed it meanwhile (the app and the CLI starting together)
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        self._use_meta(meta)
        with self._db:
            self._db.execute(_EMBEDDINGS_TABLE)

    def _new_meta(self, *, replace: bool = False) -> dict[str, str]:
        """Write a new file's ids; without ``replace``, ids another opener has just written
        win (both openers then use the same), and the meta as committed is returned."""
        meta = {
            "schema_version": str(CACHE_SCHEMA_VERSION),
            "cache_id": uuid.uuid4().hex,
            "key_id": load_key_ring().current,
        }
        verb = "REPLACE" if replace else "IGNORE"
        self._db.executemany(f"INSERT OR {verb} INTO meta VALUES (?, ?)", list(meta.items()))
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def _use_meta(self, meta: dict[str, str]) -> None:
        for what in ("cache_id", "key_id"):
            if not meta.get(what):
                raise CacheError(MSG_CACHE_META.format(path=self.path, what=what))
        self._use_keys(meta["cache_id"], meta["key_id"])

    def _refresh_keys(self) -> None:
        """Follow a re-keying by another process (``keys rotate-data`` while this one holds
        the file open): entries are then sealed and found under the file's current key."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'key_id'").fetchone()
        if row is not None and row[0] != self._keys.key_id:
            self._use_keys(self._cache_id, str(row[0]))

    def _use_keys(self, cache_id: str, key_id: str) -> None:
        self._cache_id = cache_id
        try:
            self._keys: FileKeys = file_keys(cache_id, key_id, what=f"embedding cache {self.path}")
        except DataKeyError:
            if key_id in load_key_ring().keys:
                raise  # the ring itself is the problem: its own message says what to do
            # unlike a watchlist, a cache is recomputable: say so rather than "re-enrol"
            raise CacheError(MSG_CACHE_KEY.format(path=self.path, key=key_id)) from None
        self._sealer = Sealer(self._keys.seal)

    def _seal_layout_1(self) -> bool:
        """Seal a layout-1 cache (embeddings and image hashes in clear) in place, then vacuum
        it so no clear template stays in the file's free pages. False if another opener
        sealed it between this one reading its layout and taking the write lock."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # all or nothing (see rekey)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None or row[0] != "1":
                return False
            self._use_meta(self._new_meta(replace=True))
            self._db.execute("ALTER TABLE embeddings RENAME TO embeddings_v1")
            self._db.execute(_EMBEDDINGS_TABLE)
            rows = self._db.execute(
                "SELECT image_sha256, engine_key, n_faces, embedding, failure, det_score, "
                "face_size_px, created FROM embeddings_v1"
            )
            for sha, key, n_faces, blob, failure, det, size, created in rows.fetchall():
                vector = None if blob is None else np.frombuffer(blob, dtype="<f4")
                self._db.execute(
                    "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?, ?, ?)",
                    self._row(sha, key, int(n_faces), vector, failure, det, size, created),
                )
            self._db.execute("DROP TABLE embeddings_v1")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")
        return True

    # ------------------------------------------------------------------ sealing
    def _ref(self, image_sha256: str) -> str:
        return self._keys.pseudonym("image", image_sha256)

    def _row(
        self,
        image_sha256: str,
        engine_key: str,
        n_faces: int,
        embedding: np.ndarray | None,
        failure: str | None,
        det_score: float | None,
        face_size_px: float | None,
        created: str,
        *,
        keys: FileKeys | None = None,
        sealer: Sealer | None = None,
    ) -> tuple[object, ...]:
        """A table row: the ref and the sealed payload under this file's keys (or others')."""
        keys, sealer = keys or self._keys, sealer or self._sealer
        ref = keys.pseudonym("image", image_sha256)
        clear = (ref, engine_key, n_faces, det_score, face_size_px, created)
        sealed = sealer.seal(pack_entry(image_sha256, embedding, failure), _entry_ad(*clear))
        return (ref, engine_key, n_faces, sealed, det_score, face_size_px, created)

    def _open(
        self, sealer: Sealer, row: Sequence[object]
    ) -> tuple[str, np.ndarray | None, str | None]:
        """``(image sha256, embedding, failure)`` of a table row in column order."""
        ref, key, n_faces, sealed, det, size, created = row
        if not isinstance(sealed, bytes):
            # an edited column type (bytes(n) of an integer would allocate n bytes)
            raise CacheError(MSG_CACHE_SEALED.format(path=self.path, why="is not a sealed value"))
        ad = _entry_ad(ref, key, n_faces, det, size, created)
        try:
            return unpack_entry(sealer.open(sealed, ad))
        except (SealError, ValueError) as exc:
            raise CacheError(MSG_CACHE_SEALED.format(path=self.path, why=exc)) from None

    # ------------------------------------------------------------------ context manager
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ access
    def shard_keys(self) -> ShardKeys:
        """The keys of the Parquet shards a cluster run hands over to this cache
        (:mod:`lfr_eval.distributed`): this file's seal and pseudonym keys, so a resumed run
        can open them, and their names are as opaque as the cache's image refs."""
        from lfr_eval.distributed._shards import ShardKeys

        return ShardKeys(self._sealer, self._keys.ref)

    @property
    def key_id(self) -> str:
        """Id of the data key the entries are sealed under (see ``lfr-eval keys data-status``)."""
        return self._keys.key_id

    @_sqlite_errors
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

    @_sqlite_errors
    def get_many(self, hashes: Iterable[str], engine_key: str) -> dict[str, CachedEmbedding]:
        """Cached entries for these images under ``engine_key`` (missing ones are left out).

        Raises
        ------
        CacheError
            An entry does not open (the file was edited or damaged).
        """
        self._refresh_keys()
        by_ref = {self._ref(sha): sha for sha in dict.fromkeys(hashes)}
        wanted = list(by_ref)
        found: dict[str, CachedEmbedding] = {}
        # SQLite limits bound parameters per statement; 900 stays under every default.
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM embeddings "
                f"WHERE engine_key = ? AND image_ref IN ({marks})",
                (engine_key, *chunk),
            ).fetchall()
            for row in rows:
                sha, vector, failure = self._open(self._sealer, row)
                if sha != by_ref[row[0]]:
                    # a ref is a keyed hash of the sha: a mismatch is an edited file
                    raise CacheError(
                        MSG_CACHE_SEALED.format(path=self.path, why="belongs to another image")
                    )
                _, _, n_faces, _, det_score, size, _ = row
                found[sha] = CachedEmbedding(
                    image_sha256=sha,
                    n_faces=int(n_faces),
                    embedding=vector,
                    failure=failure,
                    det_score=float("nan") if det_score is None else float(det_score),
                    face_size_px=float("nan") if size is None else float(size),
                )
        return found

    @_sqlite_errors
    def put_many(self, entries: Sequence[CachedEmbedding], engine_key: str) -> None:
        """Store entries in one transaction (all or none), each sealed."""
        now = datetime.now(timezone.utc).isoformat()
        with self._db:
            # sealed under the file's key as of the write lock (another process may re-key)
            self._db.execute("BEGIN IMMEDIATE")
            self._refresh_keys()
            rows = [
                self._row(
                    e.image_sha256,
                    engine_key,
                    int(e.n_faces),
                    e.embedding,
                    e.failure,
                    None if np.isnan(e.det_score) else float(e.det_score),
                    None if np.isnan(e.face_size_px) else float(e.face_size_px),
                    now,
                )
                for e in entries
            ]
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )

    @_sqlite_errors
    def verify(self) -> int:
        """Open every entry; returns how many. Raises :class:`CacheError` at the first that
        does not (edited, damaged, or under another key)."""
        self._refresh_keys()
        n = 0
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM embeddings"):
            sha, _, _ = self._open(self._sealer, row)
            if self._ref(sha) != row[0]:
                raise CacheError(
                    MSG_CACHE_SEALED.format(path=self.path, why="belongs to another image")
                )
            n += 1
        return n

    @_sqlite_errors
    def rekey(self) -> int:
        """Re-seal every entry under the installation's current data key (``lfr-eval keys
        rotate-data``), image refs re-derived; returns how many entries (0: already current)."""
        ring = load_key_ring()
        if self._keys.key_id == ring.current:
            return 0
        new_keys = file_keys(self._cache_id, ring.current, what=f"embedding cache {self.path}")
        new_sealer = Sealer(new_keys.seal)
        n = 0
        with self._db:
            # DDL does not open a transaction by itself: one is opened, so a failure part-way
            # leaves the file as it was
            self._db.execute("BEGIN IMMEDIATE")
            self._refresh_keys()  # another process may have re-keyed it since it was opened
            if self._keys.key_id == new_keys.key_id:
                return 0
            self._db.execute("ALTER TABLE embeddings RENAME TO embeddings_old")
            self._db.execute(_EMBEDDINGS_TABLE)
            for row in self._db.execute(f"SELECT {_COLUMNS} FROM embeddings_old").fetchall():
                sha, vector, failure = self._open(self._sealer, row)
                _, key, n_faces, _, det, size, created = row
                self._db.execute(
                    "INSERT INTO embeddings VALUES (?, ?, ?, ?, ?, ?, ?)",
                    self._row(
                        sha, key, n_faces, vector, failure, det, size, created,
                        keys=new_keys, sealer=new_sealer,
                    ),
                )  # fmt: skip
                n += 1
            self._db.execute("DROP TABLE embeddings_old")
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'key_id'", (new_keys.key_id,))
        self._keys, self._sealer = new_keys, new_sealer
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")
        return n

    @_sqlite_errors
    def count(self, engine_key: str | None = None) -> int:
        """Number of cached entries (for one engine key, or all)."""
        if engine_key is None:
            return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM embeddings WHERE engine_key = ?", (engine_key,)
            ).fetchone()[0]
        )

    @_sqlite_errors
    def purge_older_than(self, cutoff: datetime) -> int:
        """Delete entries computed before ``cutoff`` (aware datetime); returns how many.

        The cache has its own retention (see :mod:`lfr_eval.retention`): an evaluation's
        embeddings are biometric data and are not kept for ever. The entries kept are then
        opened (:meth:`verify`), so one whose time was edited to outlive its retention is
        reported (:class:`CacheError`), not kept unnoticed.
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
        self.verify()
        return removed

    @_sqlite_errors
    def engine_keys(self) -> list[str]:
        """Engine keys with at least one cached entry."""
        rows = self._db.execute("SELECT DISTINCT engine_key FROM embeddings ORDER BY 1").fetchall()
        return [r[0] for r in rows]


#: The embeddings table of layout 2 (values sealed, rows found by keyed image refs).
_EMBEDDINGS_TABLE = """CREATE TABLE IF NOT EXISTS embeddings (
    image_ref TEXT NOT NULL,
    engine_key TEXT NOT NULL,
    n_faces INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    det_score REAL,
    face_size_px REAL,
    created TEXT NOT NULL,
    PRIMARY KEY (image_ref, engine_key))"""
_COLUMNS = "image_ref, engine_key, n_faces, sealed, det_score, face_size_px, created"


def _entry_ad(
    ref: object, engine_key: object, n_faces: object, det: object, size: object, created: object
) -> bytes:
    """Associated data of an entry: its clear columns, so none can be edited or swapped."""
    return associated_data("embedding", ref, engine_key, n_faces, _real(det), _real(size), created)


def _real(value: object) -> object:
    """A REAL column's value as SQLite gives it back: it stores ``-0.0`` as the integer 0."""
    return 0.0 if isinstance(value, float) and value == 0.0 else value


def pack_entry(image_sha256: str, embedding: np.ndarray | None, failure: str | None) -> bytes:
    """``sha length (2) | sha (utf-8) | has embedding (1) | dim (4) | float32s | failure``
    (integers little-endian; the failure is ``0`` for none or ``1`` and its utf-8 text)."""
    sha = image_sha256.encode("utf-8")
    if embedding is None:
        head, vector = b"\x00" + (0).to_bytes(4, "little"), b""
    else:
        flat = np.ascontiguousarray(embedding, "<f4").ravel()
        head, vector = b"\x01" + flat.size.to_bytes(4, "little"), flat.tobytes()
    tail = b"\x00" if failure is None else b"\x01" + failure.encode("utf-8")
    return len(sha).to_bytes(2, "little") + sha + head + vector + tail


def unpack_entry(data: bytes) -> tuple[str, np.ndarray | None, str | None]:
    """Inverse of :func:`pack_entry`; ValueError on a malformed payload."""
    n = int.from_bytes(data[:2], "little")
    at = 2 + n
    if len(data) < at + 6:
        raise ValueError("is malformed")
    sha = data[2:at].decode("utf-8")
    has, dim = data[at], int.from_bytes(data[at + 1 : at + 5], "little")
    start, end = at + 5, at + 5 + 4 * dim
    if len(data) < end + 1 or has not in (0, 1) or (has == 0 and dim):
        raise ValueError("is malformed")
    vector = np.frombuffer(data[start:end], dtype="<f4").copy() if has else None
    failure = None if data[end] == 0 else data[end + 1 :].decode("utf-8")
    return sha, vector, failure
