"""The watchlist store: one SQLite file holding subjects, templates and an audit log.

Design choices, and why:

- **One file, any path.** A watchlist is collated per deployment, so it is a file a user can
  copy, archive or delete; by default ``<workspace>/watchlist.sqlite``.
- **One embedding space per watchlist.** Every template records the :class:`EngineId` that made
  it, and all templates must share one :attr:`EngineId.recognizer_key`: a similarity between a dlib
  and an ArcFace embedding means nothing, so mixing them is refused rather than filtered.
- **All-or-nothing writes.** Every change runs in one ``BEGIN IMMEDIATE`` transaction; a failure
  rolls back and leaves the file as it was.
- **Deletion is real.** ``PRAGMA secure_delete`` overwrites freed pages with zeros and removals
  are followed by ``VACUUM``, so a removed person's embedding and name are no longer in the file.
  SQLite's rollback journal holds the old pages only while a removal runs; blocks the file
  system frees and SSD wear-levelling are outside SQLite's control, so encrypt the disk where
  a stronger guarantee is needed.
- **Audit without personal data.** The audit log records ids, categories and hashes, never names,
  reasons, images or embeddings, so removing a subject leaves no biometric trace in the log.
- **Thread safety.** Each call opens its own connection and writes are serialised by a lock (and
  by SQLite's file lock across processes). Searches use an immutable :class:`SearchIndex`
  snapshot from :meth:`Watchlist.search_index`, so a video thread never waits for enrolment.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lfr_eval.errors import WatchlistError
from lfr_eval.faces._types import EngineId, Face, FaceEngine, FaceQuality
from lfr_eval.search import SearchIndex
from lfr_eval.watchlist import _hashing
from lfr_eval.watchlist._types import (
    AuditEntry,
    BundleInfo,
    EnrolmentReport,
    Subject,
    SubjectInfo,
    Template,
    from_iso,
    to_iso,
    utc_now,
)
from lfr_eval.workspace import workspace_dir

#: File name of the default watchlist inside the workspace.
DEFAULT_WATCHLIST_NAME = "watchlist.sqlite"

FORMAT_NAME = "lfr-watchlist"
SCHEMA_VERSION = 1

#: Tolerance on an embedding's L2 norm (engines return float32 unit vectors).
_NORM_TOLERANCE = 1e-3

MSG_OTHER_SPACE = (
    "this watchlist holds templates in embedding space {space!r}; engine {engine!r} produces "
    "embeddings in {other!r}, which cannot be compared with them. Use the engine the watchlist "
    "was enrolled with, or use a separate watchlist file (--watchlist PATH)."
)
MSG_UNKNOWN_SUBJECT = "no subject {subject_id!r} on this watchlist ({path})"
MSG_NOT_A_WATCHLIST = "{path} is not an LFR watchlist ({why}); give the path of a watchlist file"
MSG_NO_WATCHLIST = (
    "no watchlist at {path}; enrol someone first (lfr-eval enrol) or give --watchlist PATH"
)

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE engines (
    id INTEGER PRIMARY KEY,
    recognizer_key TEXT NOT NULL,
    engine_key TEXT NOT NULL,
    embedding_dim INTEGER NOT NULL,
    engine_json TEXT NOT NULL UNIQUE
);
CREATE TABLE subjects (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    category TEXT NOT NULL,
    reason TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT,
    digest TEXT NOT NULL
);
CREATE TABLE templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    engine INTEGER NOT NULL REFERENCES engines(id),
    embedding BLOB NOT NULL,
    image_sha256 TEXT,
    quality TEXT,
    created TEXT NOT NULL,
    image BLOB,
    image_ext TEXT,
    digest TEXT NOT NULL
);
CREATE INDEX templates_subject ON templates(subject_id);
CREATE INDEX templates_image ON templates(image_sha256);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_id TEXT,
    template_id INTEGER,
    actor TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    details TEXT NOT NULL
);
"""


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # getpass fails in containers whose uid has no passwd entry
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def check_embedding(embedding: np.ndarray, engine_id: EngineId) -> np.ndarray:
    """Validate one embedding against its engine: shape (d,), finite, unit L2 norm."""
    vector = np.asarray(embedding)
    if vector.ndim != 1 or vector.shape[0] != engine_id.embedding_dim:
        raise WatchlistError(
            f"embedding of shape {vector.shape} does not match engine {engine_id.key}, "
            f"which produces {engine_id.embedding_dim}-d embeddings"
        )
    vector = np.ascontiguousarray(vector, dtype=np.float32)
    if not np.isfinite(vector).all():
        raise WatchlistError("embedding contains NaN or infinite values")
    norm = float(np.linalg.norm(vector))
    if abs(norm - 1.0) > _NORM_TOLERANCE:
        raise WatchlistError(f"embedding is not unit-norm (L2 norm {norm:.4f}); normalise it")
    return vector


class WatchlistMatrix(NamedTuple):
    """Templates of a watchlist as a matrix, ready for search.

    Attributes
    ----------
    embeddings : ndarray of shape (n_templates, d), float32
        Unit-norm rows.
    subject_ids : ndarray of shape (n_templates,), object (str)
    """

    embeddings: np.ndarray
    subject_ids: np.ndarray


@dataclass
class _PendingAudit:
    action: str
    subject_id: str | None
    template_id: int | None
    details: dict[str, Any]


class _Transaction:
    """An open write transaction that collects audit entries for the change."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con
        self.entries: list[_PendingAudit] = []
        self.vacuum = False
        self.content_hash = ""

    def log(
        self,
        action: str,
        subject_id: str | None = None,
        template_id: int | None = None,
        **details: Any,
    ) -> None:
        self.entries.append(_PendingAudit(action, subject_id, template_id, details))


class _Absent:
    """Marker for "leave this field as it is" in :meth:`Watchlist.update_subject`."""


KEEP = _Absent()


class Watchlist:
    """A watchlist stored in one SQLite file.

    Parameters
    ----------
    path : path-like
        The SQLite file. Created (with its folder) when missing and ``create`` is True.
    create : bool
        If False, a missing file raises :class:`WatchlistError` instead of being created.

    Raises
    ------
    WatchlistError
        The file is missing (``create=False``), is not SQLite, or is not a watchlist.

    Examples
    --------
    >>> wl = Watchlist.open(workspace="/tmp/ws")  # doctest: +SKIP
    >>> report = wl.enrol_files(engine, SubjectInfo("case-17", "Jane Doe"), ["a.jpg"])  # doctest: +SKIP
    >>> index = wl.search_index(engine.engine_id)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.RLock()
        if not self.path.exists():
            if not create:
                raise WatchlistError(MSG_NO_WATCHLIST.format(path=self.path))
            self._create()
        elif self.path.is_dir():
            raise WatchlistError(MSG_NOT_A_WATCHLIST.format(path=self.path, why="a directory"))
        self._check_format()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        workspace: str | os.PathLike[str] | None = None,
        create: bool = True,
    ) -> Watchlist:
        """Open the watchlist at ``path``, or ``<workspace>/watchlist.sqlite`` when no path."""
        if path is None:
            path = workspace_dir(workspace) / DEFAULT_WATCHLIST_NAME
        return cls(path, create=create)

    def __repr__(self) -> str:
        return f"Watchlist({str(self.path)!r})"

    # ------------------------------------------------------------------ connections
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise WatchlistError(f"cannot open watchlist {self.path}: {exc}") from exc
        try:
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("PRAGMA secure_delete = ON")
            yield con
        except sqlite3.OperationalError as exc:
            # locked by another process for longer than the timeout, read-only file, disk full
            raise WatchlistError(f"watchlist {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:
                raise  # integrity errors and the like are bugs, not user input
            raise WatchlistError(
                MSG_NOT_A_WATCHLIST.format(path=self.path, why=f"SQLite error: {exc}")
            ) from exc
        finally:
            con.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot (one deferred transaction)."""
        with self._connect() as con:
            con.execute("BEGIN")
            try:
                yield con
            finally:
                con.execute("ROLLBACK")

    @contextmanager
    def _write(self) -> Iterator[_Transaction]:
        """One all-or-nothing change, with its audit entries stamped with the new content hash."""
        with self._lock, self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            tx = _Transaction(con)
            try:
                yield tx
                tx.content_hash = self._content_hash(con)
                self._write_audit(con, tx.entries, tx.content_hash)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            if tx.vacuum:
                # Outside the transaction (VACUUM cannot run inside one): rewrites the file so
                # freed pages of removed subjects are gone, not just zeroed.
                con.execute("VACUUM")

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.creating")
        tmp.unlink(missing_ok=True)
        # Build the schema in a side file and rename it into place, so a crash or a concurrent
        # opener never sees a half-created watchlist.
        con = sqlite3.connect(tmp, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = DELETE")
            con.executescript(_SCHEMA)
            con.execute("BEGIN")
            now = to_iso(utc_now())
            con.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("format", FORMAT_NAME),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("content_hash_version", str(_hashing.CONTENT_HASH_VERSION)),
                    ("created", now),
                    ("watchlist_id", uuid.uuid4().hex),
                ],
            )
            self._write_audit(
                con,
                [_PendingAudit("create", None, None, {"schema_version": SCHEMA_VERSION})],
                _hashing.content_hash([], []),
            )
            con.execute("COMMIT")
        finally:
            con.close()
        try:
            os.link(tmp, self.path)  # fails if another process created it meanwhile
        except FileExistsError:
            pass
        except OSError:
            # file systems without hard links (FAT, some network shares)
            if not self.path.exists():
                os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def _check_format(self) -> None:
        with self._connect() as con:
            try:
                rows = dict(con.execute("SELECT key, value FROM meta").fetchall())
            except sqlite3.OperationalError:
                raise WatchlistError(
                    MSG_NOT_A_WATCHLIST.format(path=self.path, why="no watchlist tables")
                ) from None
        if rows.get("format") != FORMAT_NAME:
            raise WatchlistError(
                MSG_NOT_A_WATCHLIST.format(path=self.path, why="wrong format marker")
            )
        if int(rows.get("schema_version", "0")) != SCHEMA_VERSION:
            raise WatchlistError(
                f"watchlist {self.path} has schema version {rows.get('schema_version')}, this "
                f"version of lfr-eval reads version {SCHEMA_VERSION}; export it with the "
                "version that wrote it and import the bundle here"
            )

    @property
    def watchlist_id(self) -> str:
        """Stable identifier of this watchlist (a random hex id made at creation).

        Unlike :meth:`content_hash` it stays the same as subjects are added or removed; a new
        watchlist that imports a bundle before any other change becomes a copy of the bundle's
        watchlist and takes its id.
        """
        with self._read() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'watchlist_id'").fetchone()
        return str(row[0])

    # ------------------------------------------------------------------ hashing and audit
    @staticmethod
    def _content_hash(con: sqlite3.Connection) -> str:
        subjects = (row[0] for row in con.execute("SELECT digest FROM subjects"))
        templates = (row[0] for row in con.execute("SELECT digest FROM templates"))
        return _hashing.content_hash(list(subjects), list(templates))

    @staticmethod
    def _write_audit(
        con: sqlite3.Connection, entries: Iterable[_PendingAudit], content_hash: str
    ) -> None:
        now = to_iso(utc_now())
        actor = _actor()
        con.executemany(
            "INSERT INTO audit (at, action, subject_id, template_id, actor, content_hash, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    now,
                    e.action,
                    e.subject_id,
                    e.template_id,
                    actor,
                    content_hash,
                    json.dumps(e.details, sort_keys=True),
                )
                for e in entries
            ],
        )

    def content_hash(self) -> str:
        """Hex sha256 naming this watchlist version (see :mod:`lfr_eval.watchlist._hashing`).

        It covers subjects (id, name, category, reason, expiry) and templates (embedding bytes,
        embedding space, image sha256), is independent of insertion order, and ignores the audit
        log and creation times.
        """
        with self._read() as con:
            return self._content_hash(con)

    def verify(self) -> str:
        """Recompute every stored record digest from the data and return the content hash.

        Raises
        ------
        WatchlistError
            A stored digest does not match its row (the file was edited outside lfr-eval).
        """
        with self._read() as con:
            for sid, name, category, reason, expires, digest in con.execute(
                "SELECT id, display_name, category, reason, expires, digest FROM subjects"
            ):
                if _hashing.subject_digest(sid, name, category, reason, expires) != digest:
                    raise WatchlistError(
                        f"subject {sid!r} in {self.path} was altered outside lfr-eval"
                    )
            for tid, sid, key, sha, blob, digest in con.execute(
                "SELECT t.id, t.subject_id, e.recognizer_key, t.image_sha256, t.embedding, "
                "t.digest FROM templates t JOIN engines e ON e.id = t.engine"
            ):
                if _hashing.template_digest(sid, key, sha, blob) != digest:
                    raise WatchlistError(
                        f"template {tid} in {self.path} was altered outside lfr-eval"
                    )
            return self._content_hash(con)

    def audit_log(self, *, limit: int | None = None) -> list[AuditEntry]:
        """The audit log, oldest first (the last ``limit`` entries when given)."""
        query = (
            "SELECT id, at, action, subject_id, template_id, actor, content_hash, details "
            "FROM audit ORDER BY id DESC"
        )
        params: tuple[Any, ...] = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (int(limit),)
        with self._read() as con:
            rows = con.execute(query, params).fetchall()
        return [
            AuditEntry(
                entry_id=int(r[0]),
                at=from_iso(r[1]),
                action=r[2],
                subject_id=r[3],
                template_id=r[4],
                actor=r[5],
                content_hash=r[6],
                details=json.loads(r[7]),
            )
            for r in reversed(rows)
        ]

    # ------------------------------------------------------------------ engines
    @staticmethod
    def _space(con: sqlite3.Connection) -> tuple[str, int] | None:
        row = con.execute(
            "SELECT e.recognizer_key, e.embedding_dim FROM templates t "
            "JOIN engines e ON e.id = t.engine LIMIT 1"
        ).fetchone()
        return (row[0], int(row[1])) if row else None

    @property
    def embedding_space(self) -> str | None:
        """:attr:`EngineId.recognizer_key` every template shares; None while there are none."""
        with self._read() as con:
            space = self._space(con)
        return space[0] if space else None

    def engine_ids(self) -> list[EngineId]:
        """The engines that produced the templates (same embedding space, maybe other backends)."""
        with self._read() as con:
            rows = con.execute(
                "SELECT engine_json FROM engines WHERE id IN (SELECT DISTINCT engine FROM "
                "templates) ORDER BY id"
            ).fetchall()
        return [EngineId.from_dict(json.loads(r[0])) for r in rows]

    def check_engine(self, engine_id: EngineId) -> None:
        """Raise :class:`WatchlistError` if ``engine_id`` cannot be used with this watchlist."""
        with self._read() as con:
            self._check_space(con, engine_id)

    def _check_space(self, con: sqlite3.Connection, engine_id: EngineId) -> None:
        space = self._space(con)
        if space is not None and space[0] != engine_id.recognizer_key:
            raise WatchlistError(
                MSG_OTHER_SPACE.format(
                    space=space[0], engine=engine_id.key, other=engine_id.recognizer_key
                )
            )

    @staticmethod
    def _engine_ref(con: sqlite3.Connection, engine_id: EngineId) -> int:
        text = json.dumps(engine_id.to_dict(), sort_keys=True)
        row = con.execute("SELECT id FROM engines WHERE engine_json = ?", (text,)).fetchone()
        if row:
            return int(row[0])
        cur = con.execute(
            "INSERT INTO engines (recognizer_key, engine_key, embedding_dim, engine_json) "
            "VALUES (?, ?, ?, ?)",
            (engine_id.recognizer_key, engine_id.key, engine_id.embedding_dim, text),
        )
        return int(cur.lastrowid)

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _subject_from_row(row: Sequence[Any]) -> Subject:
        return Subject(
            subject_id=row[0],
            display_name=row[1],
            category=row[2],
            reason=row[3],
            created=from_iso(row[4]),
            expires=from_iso(row[5]) if row[5] else None,
            n_templates=int(row[6]),
        )

    _SUBJECT_QUERY = (
        "SELECT s.id, s.display_name, s.category, s.reason, s.created, s.expires, "
        "COUNT(t.id) FROM subjects s LEFT JOIN templates t ON t.subject_id = s.id "
    )

    def subjects(
        self, *, include_expired: bool = True, at: datetime | None = None
    ) -> list[Subject]:
        """Every subject, sorted by id (expired ones only if ``include_expired``)."""
        query = self._SUBJECT_QUERY
        params: tuple[Any, ...] = ()
        if not include_expired:
            query += "WHERE s.expires IS NULL OR s.expires > ? "
            params = (to_iso(at or utc_now()),)
        query += "GROUP BY s.id ORDER BY s.id"
        with self._read() as con:
            rows = con.execute(query, params).fetchall()
        return [self._subject_from_row(r) for r in rows]

    def subject(self, subject_id: str) -> Subject:
        """One subject; :class:`WatchlistError` if unknown."""
        with self._read() as con:
            row = con.execute(
                self._SUBJECT_QUERY + "WHERE s.id = ? GROUP BY s.id", (subject_id,)
            ).fetchone()
        if row is None:
            raise WatchlistError(MSG_UNKNOWN_SUBJECT.format(subject_id=subject_id, path=self.path))
        return self._subject_from_row(row)

    def __len__(self) -> int:
        """Number of subjects (including expired ones)."""
        with self._read() as con:
            return int(con.execute("SELECT COUNT(*) FROM subjects").fetchone()[0])

    def __contains__(self, subject_id: object) -> bool:
        with self._read() as con:
            return (
                con.execute("SELECT 1 FROM subjects WHERE id = ?", (subject_id,)).fetchone()
                is not None
            )

    def n_templates(self) -> int:
        with self._read() as con:
            return int(con.execute("SELECT COUNT(*) FROM templates").fetchone()[0])

    def templates(self, subject_id: str | None = None) -> list[Template]:
        """Templates, ordered by id; only one subject's when ``subject_id`` is given."""
        query = (
            "SELECT t.id, t.subject_id, e.engine_json, t.embedding, t.image_sha256, t.quality, "
            "t.created, t.image IS NOT NULL FROM templates t JOIN engines e ON e.id = t.engine "
        )
        params: tuple[Any, ...] = ()
        if subject_id is not None:
            query += "WHERE t.subject_id = ? "
            params = (subject_id,)
        with self._read() as con:
            rows = con.execute(query + "ORDER BY t.id", params).fetchall()
        engines: dict[str, EngineId] = {}
        result = []
        for tid, sid, engine_json, blob, sha, quality, created, has_image in rows:
            if engine_json not in engines:
                engines[engine_json] = EngineId.from_dict(json.loads(engine_json))
            result.append(
                Template(
                    template_id=int(tid),
                    subject_id=sid,
                    engine_id=engines[engine_json],
                    embedding=np.frombuffer(blob, dtype="<f4").astype(np.float32),
                    image_sha256=sha,
                    quality=FaceQuality(**json.loads(quality)) if quality else None,
                    created=from_iso(created),
                    has_image=bool(has_image),
                )
            )
        return result

    def templates_for(self, engine_id: EngineId) -> list[Template]:
        """Templates comparable with ``engine_id``'s embeddings (same recognizer key)."""
        return [
            t for t in self.templates() if t.engine_id.recognizer_key == engine_id.recognizer_key
        ]

    def image(self, template_id: int) -> tuple[bytes, str] | None:
        """The stored source image of a template and its file suffix, or None if not kept."""
        with self._read() as con:
            row = con.execute(
                "SELECT image, image_ext FROM templates WHERE id = ?", (int(template_id),)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return bytes(row[0]), row[1] or ""

    def _matrix_rows(
        self, engine_id: EngineId, include_expired: bool, at: datetime | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str | None]:
        query = (
            "SELECT t.id, t.subject_id, t.embedding FROM templates t "
            "JOIN subjects s ON s.id = t.subject_id "
        )
        params: tuple[Any, ...] = ()
        if not include_expired:
            query += "WHERE s.expires IS NULL OR s.expires > ? "
            params = (to_iso(at or utc_now()),)
        with self._read() as con:
            self._check_space(con, engine_id)
            space = self._space(con)
            rows = con.execute(query + "ORDER BY t.id", params).fetchall()
        dim = engine_id.embedding_dim
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        subjects = np.array([r[1] for r in rows], dtype=object)
        if rows:
            matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(-1, dim)
            matrix = matrix.astype(np.float32)
        else:
            matrix = np.empty((0, dim), dtype=np.float32)
        return matrix, subjects, ids, space[0] if space else engine_id.recognizer_key

    def matrix(
        self, engine_id: EngineId, *, include_expired: bool = False, at: datetime | None = None
    ) -> WatchlistMatrix:
        """All searchable templates as a matrix.

        Parameters
        ----------
        engine_id : EngineId
            The probe engine; refused if its embedding space differs from the watchlist's.
        include_expired : bool
            Include subjects whose expiry has passed (default: no, they are not searched).
        at : datetime, optional
            The moment expiry is judged at (default: now).

        Returns
        -------
        WatchlistMatrix
            ``(embeddings (n, d) float32 unit-norm, subject_ids (n,))``.
        """
        matrix, subjects, _, _ = self._matrix_rows(engine_id, include_expired, at)
        return WatchlistMatrix(matrix, subjects)

    def search_index(
        self,
        engine_id: EngineId,
        *,
        backend: str = "auto",
        device: str = "auto",
        include_expired: bool = False,
        at: datetime | None = None,
    ) -> SearchIndex:
        """An immutable :class:`SearchIndex` snapshot of the searchable templates.

        Build a new one after enrolling; searching an old one is safe from any thread.
        See :meth:`matrix` for the parameters; ``backend``/``device`` go to :class:`SearchIndex`.
        """
        matrix, subjects, ids, space = self._matrix_rows(engine_id, include_expired, at)
        return SearchIndex(
            matrix,
            subjects,
            template_ids=ids,
            backend=backend,  # type: ignore[arg-type]
            device=device,  # type: ignore[arg-type]
            embedding_space=space,
            copy=False,  # the matrix was just read from the store; nothing else holds it
        )

    # ------------------------------------------------------------------ writing
    def _insert_subject(
        self, tx: _Transaction, info: SubjectInfo, created: datetime | None = None
    ) -> None:
        expires = to_iso(info.expires) if info.expires else None
        digest = _hashing.subject_digest(
            info.subject_id, info.name, info.category, info.reason, expires
        )
        try:
            tx.con.execute(
                "INSERT INTO subjects (id, display_name, category, reason, created, expires, "
                "digest) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    info.subject_id,
                    info.name,
                    info.category,
                    info.reason,
                    to_iso(created or utc_now()),
                    expires,
                    digest,
                ),
            )
        except sqlite3.IntegrityError:
            raise WatchlistError(
                f"subject {info.subject_id!r} is already on this watchlist ({self.path})"
            ) from None
        tx.log("add_subject", info.subject_id, category=info.category, expires=expires)

    def _insert_template(
        self,
        tx: _Transaction,
        subject_id: str,
        embedding: np.ndarray,
        engine_id: EngineId,
        *,
        image_sha256: str | None = None,
        quality: FaceQuality | None = None,
        image: bytes | None = None,
        image_ext: str | None = None,
        created: datetime | None = None,
    ) -> int:
        vector = check_embedding(embedding, engine_id)
        self._check_space(tx.con, engine_id)
        blob = _hashing.embedding_bytes(vector)
        digest = _hashing.template_digest(subject_id, engine_id.recognizer_key, image_sha256, blob)
        cur = tx.con.execute(
            "INSERT INTO templates (subject_id, engine, embedding, image_sha256, quality, created,"
            " image, image_ext, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                subject_id,
                self._engine_ref(tx.con, engine_id),
                blob,
                image_sha256,
                json.dumps(quality.to_dict()) if quality else None,
                to_iso(created or utc_now()),
                image,
                image_ext if image is not None else None,
                digest,
            ),
        )
        template_id = int(cur.lastrowid)
        tx.log(
            "add_template",
            subject_id,
            template_id,
            engine=engine_id.key,
            image_sha256=image_sha256,
            image_kept=image is not None,
        )
        return template_id

    def _require_subject(self, con: sqlite3.Connection, subject_id: str) -> None:
        if con.execute("SELECT 1 FROM subjects WHERE id = ?", (subject_id,)).fetchone() is None:
            raise WatchlistError(MSG_UNKNOWN_SUBJECT.format(subject_id=subject_id, path=self.path))

    def add_subject(self, info: SubjectInfo) -> Subject:
        """Put a person on the watchlist (with no template yet).

        Raises
        ------
        WatchlistError
            The id is already used.
        """
        with self._write() as tx:
            self._insert_subject(tx, info)
        return self.subject(info.subject_id)

    def update_subject(
        self,
        subject_id: str,
        *,
        display_name: str | _Absent = KEEP,
        category: str | _Absent = KEEP,
        reason: str | _Absent = KEEP,
        expires: datetime | None | _Absent = KEEP,
    ) -> Subject:
        """Change a subject's details; fields left as :data:`KEEP` are unchanged."""
        current = self.subject(subject_id)
        info = SubjectInfo(
            subject_id=subject_id,
            display_name=current.display_name
            if isinstance(display_name, _Absent)
            else display_name,
            category=current.category if isinstance(category, _Absent) else category,
            reason=current.reason if isinstance(reason, _Absent) else reason,
            expires=current.expires if isinstance(expires, _Absent) else expires,
        )
        expires_iso = to_iso(info.expires) if info.expires else None
        with self._write() as tx:
            self._require_subject(tx.con, subject_id)
            tx.con.execute(
                "UPDATE subjects SET display_name = ?, category = ?, reason = ?, expires = ?, "
                "digest = ? WHERE id = ?",
                (
                    info.name,
                    info.category,
                    info.reason,
                    expires_iso,
                    _hashing.subject_digest(
                        subject_id, info.name, info.category, info.reason, expires_iso
                    ),
                    subject_id,
                ),
            )
            changed = [
                name
                for name, value in (
                    ("display_name", display_name),
                    ("category", category),
                    ("reason", reason),
                    ("expires", expires),
                )
                if not isinstance(value, _Absent)
            ]
            tx.log("update_subject", subject_id, fields=changed, expires=expires_iso)
        return self.subject(subject_id)

    def add_template(
        self,
        subject_id: str,
        embedding: np.ndarray,
        engine_id: EngineId,
        *,
        image_sha256: str | None = None,
        quality: FaceQuality | None = None,
        image: bytes | None = None,
        image_ext: str | None = None,
    ) -> int:
        """Add one template (an embedding computed elsewhere) to an existing subject.

        Parameters
        ----------
        subject_id : str
        embedding : ndarray of shape (d,)
            Unit-norm embedding from ``engine_id``.
        engine_id : EngineId
            Must share the watchlist's embedding space.
        image_sha256 : str, optional
            sha256 of the source image bytes.
        quality : FaceQuality, optional
        image : bytes, optional
            The encoded source image, stored only when given (the caller asked to keep images).
        image_ext : str, optional
            Suffix of ``image`` (e.g. ``".jpg"``), used when exporting it.

        Returns
        -------
        int
            The new template's id.
        """
        with self._write() as tx:
            self._require_subject(tx.con, subject_id)
            return self._insert_template(
                tx,
                subject_id,
                embedding,
                engine_id,
                image_sha256=image_sha256,
                quality=quality,
                image=image,
                image_ext=image_ext,
            )

    def enrol_faces(
        self,
        subject: SubjectInfo,
        faces: Sequence[Face],
        engine_id: EngineId,
        *,
        image_sha256: str | None = None,
    ) -> tuple[int, ...]:
        """Enrol already-analysed faces (e.g. webcam snapshots) for one subject, in one change.

        The subject is created from ``subject`` if it is not on the watchlist yet (an existing
        subject's details are left unchanged). Each face must carry an embedding.

        Returns
        -------
        tuple of int
            The new template ids, one per face.
        """
        for face in faces:
            if face.embedding is None:
                raise WatchlistError("a face to enrol has no embedding; analyse with embed=True")
        with self._write() as tx:
            exists = tx.con.execute(
                "SELECT 1 FROM subjects WHERE id = ?", (subject.subject_id,)
            ).fetchone()
            if not exists:
                self._insert_subject(tx, subject)
            return tuple(
                self._insert_template(
                    tx,
                    subject.subject_id,
                    face.embedding,  # type: ignore[arg-type]
                    engine_id,
                    image_sha256=image_sha256,
                    quality=face.quality,
                )
                for face in faces
            )

    def remove_subjects(self, subject_ids: Iterable[str], *, vacuum: bool = True) -> int:
        """Delete subjects and all their templates (really: see module docstring).

        All or nothing: if any id is unknown, nothing is removed.

        Returns
        -------
        int
            Number of templates deleted.

        Raises
        ------
        WatchlistError
            An id is not on the watchlist.
        """
        ids = list(dict.fromkeys(subject_ids))
        if not ids:
            return 0
        with self._write() as tx:
            removed = 0
            for subject_id in ids:
                self._require_subject(tx.con, subject_id)
                removed += self._delete_subject(tx, subject_id, why="removed")
            tx.vacuum = vacuum
        return removed

    def _delete_subject(self, tx: _Transaction, subject_id: str, *, why: str) -> int:
        category = tx.con.execute(
            "SELECT category FROM subjects WHERE id = ?", (subject_id,)
        ).fetchone()[0]
        n = tx.con.execute(
            "SELECT COUNT(*) FROM templates WHERE subject_id = ?", (subject_id,)
        ).fetchone()[0]
        tx.con.execute("DELETE FROM templates WHERE subject_id = ?", (subject_id,))
        tx.con.execute("DELETE FROM subjects WHERE id = ?", (subject_id,))
        tx.con.execute(
            "DELETE FROM engines WHERE id NOT IN (SELECT DISTINCT engine FROM templates)"
        )
        tx.log("remove_subject", subject_id, category=category, templates=int(n), why=why)
        return int(n)

    def remove_templates(self, template_ids: Iterable[int], *, vacuum: bool = True) -> int:
        """Delete individual templates (the subject stays). All or nothing on unknown ids."""
        ids = list(dict.fromkeys(int(t) for t in template_ids))
        if not ids:
            return 0
        with self._write() as tx:
            for template_id in ids:
                row = tx.con.execute(
                    "SELECT subject_id FROM templates WHERE id = ?", (template_id,)
                ).fetchone()
                if row is None:
                    raise WatchlistError(f"no template {template_id} on this watchlist")
                tx.con.execute("DELETE FROM templates WHERE id = ?", (template_id,))
                tx.log("remove_template", row[0], template_id)
            tx.con.execute(
                "DELETE FROM engines WHERE id NOT IN (SELECT DISTINCT engine FROM templates)"
            )
            tx.vacuum = vacuum
        return len(ids)

    def purge_expired(self, *, at: datetime | None = None, vacuum: bool = True) -> tuple[str, ...]:
        """Delete every subject whose expiry has passed; returns their ids."""
        with self._write() as tx:
            rows = tx.con.execute(
                "SELECT id FROM subjects WHERE expires IS NOT NULL AND expires <= ? ORDER BY id",
                (to_iso(at or utc_now()),),
            ).fetchall()
            for (subject_id,) in rows:
                self._delete_subject(tx, subject_id, why="expired")
            tx.vacuum = vacuum and bool(rows)
        return tuple(r[0] for r in rows)

    # ------------------------------------------------------------------ enrolment and bundles
    def enrol_files(
        self,
        engine: FaceEngine,
        subject: SubjectInfo | str,
        paths: Iterable[str | os.PathLike[str]],
        **options: Any,
    ) -> EnrolmentReport:
        """Enrol image files of one subject; see :func:`lfr_eval.watchlist.enrol_files`."""
        from lfr_eval.watchlist._enrol import enrol_files

        return enrol_files(self, engine, subject, paths, **options)

    def enrol_folder(
        self, engine: FaceEngine, folder: str | os.PathLike[str], **options: Any
    ) -> EnrolmentReport:
        """Enrol a folder with one sub-folder per subject; see :func:`enrol_folder`."""
        from lfr_eval.watchlist._enrol import enrol_folder

        return enrol_folder(self, engine, folder, **options)

    def enrol_manifest(
        self, engine: FaceEngine, manifest: str | os.PathLike[str], **options: Any
    ) -> EnrolmentReport:
        """Enrol the images a CSV manifest lists; see :func:`enrol_manifest`."""
        from lfr_eval.watchlist._enrol import enrol_manifest

        return enrol_manifest(self, engine, manifest, **options)

    def export_bundle(self, destination: str | os.PathLike[str], **options: Any) -> BundleInfo:
        """Write a bundle (directory or .zip); see :func:`lfr_eval.watchlist.export_bundle`."""
        from lfr_eval.watchlist._bundle import export_bundle

        return export_bundle(self, destination, **options)

    def import_bundle(self, source: str | os.PathLike[str], **options: Any) -> BundleInfo:
        """Verify and import a bundle; see :func:`lfr_eval.watchlist.import_bundle`."""
        from lfr_eval.watchlist._bundle import import_bundle

        return import_bundle(self, source, **options)
