"""The watchlist store: one SQLite file holding subjects, templates and an audit log.

Design choices, and why:

- **One file, any path.** A watchlist is collated per deployment, so it is a file a user can
  copy, archive or delete; by default ``<workspace>/watchlist.sqlite``.
- **One embedding space per watchlist.** Every template records the :class:`EngineId` that made
  it, and all templates must share one :attr:`EngineId.recognizer_key`: a similarity between a dlib
  and an ArcFace embedding means nothing, so mixing them is refused rather than filtered.
- **Encrypted at rest.** Subject ids, names and reasons, embeddings, image hashes and stored
  images are sealed with AES-256-GCM (:mod:`lfr_eval.atrest`) under keys derived from the
  installation's data key and this file's id; the associated data binds each sealed value to its
  row (subject pseudonym, template id, clear columns), so a value moved to another row or a row
  whose clear columns were edited does not open. Rows are found by keyed hashes (HMAC) of the
  subject id and image sha256. In clear remain only categories, times, qualities, engines.
- **Integrity checked, not trusted.** The content hash is recomputed from the decrypted data
  (never from digests stored in the file) on open and before every search, and compared with a
  MAC over it (keyed, so it cannot be recomputed by whoever edits the file) that every change
  updates. ``PRAGMA quick_check`` runs on open. A mismatch refuses to search or enrol, with a
  message saying what to do. Decryption results are cached per process by (row, sealed bytes), so
  re-checking an unchanged watchlist costs one read and one sha256 per row.
- **All-or-nothing writes.** Every change runs in one ``BEGIN IMMEDIATE`` transaction; a failure
  rolls back and leaves the file as it was.
- **Deletion is real.** ``PRAGMA secure_delete`` overwrites freed pages with zeros and removals
  are followed by ``VACUUM``, so a removed person's (sealed) embedding and name are no longer in
  the file. SQLite's rollback journal holds the old pages only while a removal runs.
- **Pseudonymous audit.** The audit log records pseudonyms (keyed hashes) of subject ids and
  image hashes, categories and the acting user, never names, reasons, images or embeddings; each
  entry carries a keyed hash chained to the previous one, so removing a subject leaves no name
  behind while :meth:`Watchlist.verify_audit` still proves the log complete and unedited.
- **Private files.** The file is 0600 and a folder the store creates is 0700.
- **Thread safety.** Each call opens its own connection and writes are serialised by a lock (and
  by SQLite's file lock across processes). Searches use an immutable :class:`SearchIndex`
  snapshot from :meth:`Watchlist.search_index`, so a video thread never waits for enrolment.
"""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lfr_eval.atrest import (
    FileKeys,
    Sealer,
    SealError,
    associated_data,
    check_actor,
    check_key_outside,
    file_keys,
    private_dir,
    private_file,
)
from lfr_eval.errors import WatchlistError
from lfr_eval.faces._types import EngineId, Face, FaceEngine, FaceQuality
from lfr_eval.search import SearchIndex
from lfr_eval.search._index import Backend, Device
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
#: 1: clear rows with stored digests; 2: sealed rows, keyed pseudonyms, content MAC, audit chain.
SCHEMA_VERSION = 2

#: How long an expired subject is kept (not searched) before the store deletes it, so an
#: expiry set by mistake can still be extended.
DEFAULT_EXPIRY_GRACE = timedelta(days=7)

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
MSG_TAMPERED = (
    "watchlist {path} fails its integrity check ({why}): it was changed outside lfr-eval or is "
    "damaged, so it is not searched or changed. Restore it from a backup or re-import its "
    "signed bundle; 'lfr-eval watchlist verify' repeats the check"
)
MSG_DAMAGED = (
    "watchlist {path} is damaged (SQLite quick_check: {why}); it is not used. Restore it from a "
    "backup or re-import its bundle"
)

#: The sealed data tables (schema 2); the migration from schema 1 creates the same ones.
DATA_TABLES = """
CREATE TABLE subjects (
    ref TEXT PRIMARY KEY,
    sealed BLOB NOT NULL,
    category TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT
);
CREATE TABLE templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_ref TEXT NOT NULL REFERENCES subjects(ref) ON DELETE CASCADE,
    engine INTEGER NOT NULL REFERENCES engines(id),
    sealed BLOB NOT NULL,
    image_ref TEXT,
    quality TEXT,
    created TEXT NOT NULL,
    image BLOB,
    image_ext TEXT
);
CREATE INDEX templates_subject ON templates(subject_ref);
CREATE INDEX templates_image ON templates(image_ref);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_ref TEXT,
    template_id INTEGER,
    actor TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    details TEXT NOT NULL,
    chain TEXT NOT NULL
);
"""

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE engines (
    id INTEGER PRIMARY KEY,
    recognizer_key TEXT NOT NULL,
    engine_key TEXT NOT NULL,
    embedding_dim INTEGER NOT NULL,
    engine_json TEXT NOT NULL UNIQUE
);
""" + DATA_TABLES

_GENESIS = "0" * 64


def _actor() -> str:
    """Kept for callers of the old name: the OS user (see :func:`lfr_eval.atrest.default_actor`)."""
    return check_actor(None)


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


@dataclass(frozen=True)
class _SubjectRow:
    """A subject as decrypted from the file."""

    ref: str
    subject_id: str
    display_name: str
    category: str
    reason: str
    created: str
    expires: str | None

    @cached_property
    def digest(self) -> str:
        return _hashing.subject_digest(
            self.subject_id, self.display_name, self.category, self.reason, self.expires
        )


@dataclass(frozen=True)
class _TemplateRow:
    """A template as decrypted from the file (image bytes stay sealed until asked for)."""

    template_id: int
    subject_ref: str
    subject_id: str
    engine: int
    recognizer_key: str
    embedding: bytes
    image_sha256: str | None
    quality: str | None
    created: str
    has_image: bool

    @cached_property
    def digest(self) -> str:
        return _hashing.template_digest(
            self.subject_id, self.recognizer_key, self.image_sha256, self.embedding
        )


@dataclass(frozen=True)
class _Snapshot:
    """Every subject and template of one read, decrypted and checked against the content MAC."""

    subjects: list[_SubjectRow]
    templates: list[_TemplateRow]
    content_hash: str

    def subject_by_ref(self) -> dict[str, _SubjectRow]:
        return {s.ref: s for s in self.subjects}


class _Transaction:
    """An open write transaction that collects audit entries for the change."""

    def __init__(self, con: sqlite3.Connection, keys: FileKeys, sealer: Sealer) -> None:
        self.con = con
        self.keys = keys
        self.sealer = sealer
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

# Per-process caches of opened sealed values and decoded rows, keyed by the file's key and the
# row's every stored byte (sealed value and the clear columns bound into its associated data).
# A hit needs the very same bytes that an earlier successful authentication opened, so it is as
# trustworthy as decrypting again; the content hash is still recomputed from the rows each time.
_OPENED: dict[tuple[str, bytes, bytes], bytes] = {}
_DECODED: dict[tuple[Any, ...], object] = {}
_OPENED_LIMIT = 500_000


def _remember(key: tuple[Any, ...], value: object) -> None:
    if len(_DECODED) >= _OPENED_LIMIT:
        _DECODED.clear()
    _DECODED[key] = value


def _subject_ad(ref: str, category: str, created: str, expires: str | None) -> bytes:
    return associated_data("subject", ref, category, created, expires)


def _template_ad(
    template_id: int, subject_ref: str, engine: int, quality: str | None, created: str
) -> bytes:
    return associated_data("template", template_id, subject_ref, engine, quality, created)


def _image_ad(template_id: int, subject_ref: str, image_ext: str | None) -> bytes:
    return associated_data("image", template_id, subject_ref, image_ext)


def _pack_template(image_sha256: str | None, embedding: bytes) -> bytes:
    sha = (image_sha256 or "").encode("utf-8")
    return struct.pack(">H", len(sha)) + sha + embedding


def _unpack_template(payload: bytes) -> tuple[str | None, bytes]:
    (n,) = struct.unpack(">H", payload[:2])
    sha = payload[2 : 2 + n].decode("utf-8")
    return (sha or None), payload[2 + n :]


class Watchlist:
    """A watchlist stored in one SQLite file.

    Parameters
    ----------
    path : path-like
        The SQLite file. Created (with its folder) when missing and ``create`` is True.
    create : bool
        If False, a missing file raises :class:`WatchlistError` instead of being created.
    actor : str, optional
        Who acts through this object: recorded in every audit entry (default: the OS user; the
        app passes its signed-in user).
    expiry_grace : timedelta
        Expired subjects are not searched; once expired for longer than this they are deleted
        (on open and by :meth:`purge_expired`).
    clock : callable, optional
        Returns the current UTC time (tests inject one); default the system clock.

    Raises
    ------
    WatchlistError
        The file is missing (``create=False``), is not SQLite, is not a watchlist, is damaged or
        fails its integrity check.
    DataKeyError
        The data key the file was encrypted with is not available.

    Examples
    --------
    >>> wl = Watchlist.open(workspace="/tmp/ws")  # doctest: +SKIP
    >>> jane = SubjectInfo("case-17", "Jane Doe")  # doctest: +SKIP
    >>> report = wl.enrol_files(engine, jane, ["a.jpg"])  # doctest: +SKIP
    >>> index = wl.search_index(engine.engine_id)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        actor: str | None = None,
        expiry_grace: timedelta = DEFAULT_EXPIRY_GRACE,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.actor = check_actor(actor)
        self.expiry_grace = expiry_grace
        self._clock = clock or utc_now
        self._lock = threading.RLock()
        if not self.path.exists():
            if not create:
                raise WatchlistError(MSG_NO_WATCHLIST.format(path=self.path))
            check_key_outside(self.path.parent)
            self._create()
        elif self.path.is_dir():
            raise WatchlistError(MSG_NOT_A_WATCHLIST.format(path=self.path, why="a directory"))
        check_key_outside(self.path.parent)
        private_file(self.path)
        self._quick_check()
        self._check_format()
        self.verify()
        self._purge_past_grace()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        workspace: str | os.PathLike[str] | None = None,
        create: bool = True,
        actor: str | None = None,
        expiry_grace: timedelta = DEFAULT_EXPIRY_GRACE,
        clock: Callable[[], datetime] | None = None,
    ) -> Watchlist:
        """Open the watchlist at ``path``, or ``<workspace>/watchlist.sqlite`` when no path."""
        if path is None:
            path = workspace_dir(workspace) / DEFAULT_WATCHLIST_NAME
        return cls(path, create=create, actor=actor, expiry_grace=expiry_grace, clock=clock)

    def as_actor(self, actor: str | None) -> Watchlist:
        """The same watchlist file, with changes recorded as made by ``actor``."""
        other = object.__new__(Watchlist)
        other.__dict__.update(self.__dict__)
        other.actor = check_actor(actor)
        return other

    def __repr__(self) -> str:
        return f"Watchlist({str(self.path)!r})"

    def _now(self) -> datetime:
        return self._clock().replace(microsecond=0)

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
        """One all-or-nothing change, with its audit entries stamped with the new content hash.

        The file's state is verified first (a change never blesses a tampered file), and the
        content MAC is updated with the change.
        """
        with self._lock, self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            tx = _Transaction(con, self._keys, self._sealer)
            try:
                self._snapshot(con)  # raises on a tampered file
                yield tx
                tx.content_hash = self._snapshot(con, check_mac=False).content_hash
                self._set_mac(con, tx.content_hash)
                self._write_audit(con, tx.entries, tx.content_hash)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            if tx.vacuum:
                # Outside the transaction (VACUUM cannot run inside one): rewrites the file so
                # freed pages of removed subjects are gone, not just zeroed.
                con.execute("VACUUM")
                # and no decrypted copy of a removed person stays in this process's caches
                _OPENED.clear()
                _DECODED.clear()

    def _create(self) -> None:
        if not self.path.parent.exists():
            private_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.creating")
        tmp.unlink(missing_ok=True)
        # Created 0600 before SQLite opens it: the umask must not make a watchlist readable.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # Build the schema in a side file and rename it into place, so a crash or a concurrent
        # opener never sees a half-created watchlist.
        con = sqlite3.connect(tmp, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = DELETE")
            con.executescript(_SCHEMA)
            con.execute("BEGIN")
            now = to_iso(self._now())
            watchlist_id = uuid.uuid4().hex
            keys = file_keys(watchlist_id, what=f"watchlist {self.path}")
            con.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("format", FORMAT_NAME),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("content_hash_version", str(_hashing.CONTENT_HASH_VERSION)),
                    ("created", now),
                    ("watchlist_id", watchlist_id),
                    # keys stay derived from the creation id when an import adopts another id
                    ("key_salt", watchlist_id),
                    ("key_id", keys.key_id),
                ],
            )
            self._keys = keys
            self._file_id = watchlist_id
            empty = _hashing.content_hash([], [])
            self._set_mac(con, empty)
            self._write_audit(
                con,
                [_PendingAudit("create", None, None, {"schema_version": SCHEMA_VERSION})],
                empty,
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

    def _quick_check(self) -> None:
        try:
            with self._connect() as con:
                rows = con.execute("PRAGMA quick_check").fetchall()
        except WatchlistError as exc:
            raise WatchlistError(MSG_DAMAGED.format(path=self.path, why=exc)) from None
        problems = [str(r[0]) for r in rows if r[0] != "ok"]
        if problems:
            shown = "; ".join(problems[:3])
            raise WatchlistError(MSG_DAMAGED.format(path=self.path, why=shown))

    def _meta(self) -> dict[str, str]:
        with self._connect() as con:
            try:
                return dict(con.execute("SELECT key, value FROM meta").fetchall())
            except sqlite3.OperationalError:
                raise WatchlistError(
                    MSG_NOT_A_WATCHLIST.format(path=self.path, why="no watchlist tables")
                ) from None

    def _check_format(self) -> None:
        rows = self._meta()
        if rows.get("format") != FORMAT_NAME:
            raise WatchlistError(
                MSG_NOT_A_WATCHLIST.format(path=self.path, why="wrong format marker")
            )
        version = rows.get("schema_version", "0")
        if version == "1":
            from lfr_eval.watchlist._migrate import migrate_v1

            migrate_v1(self)
            rows = self._meta()
            version = rows.get("schema_version", "0")
        if version != str(SCHEMA_VERSION):
            raise WatchlistError(
                f"watchlist {self.path} has schema version {version}, this version of lfr-eval "
                f"reads versions 1 (migrated on open) and {SCHEMA_VERSION}; export it with the "
                "version that wrote it and import the bundle here"
            )
        self._load_keys(rows)

    def _load_keys(self, meta: dict[str, str]) -> None:
        self._file_id = meta["key_salt"]
        self._keys = file_keys(self._file_id, meta.get("key_id"), what=f"watchlist {self.path}")
        self._sealer = Sealer(self._keys.seal)

    @property
    def watchlist_id(self) -> str:
        """Stable identifier of this watchlist (a random hex id made at creation).

        Unlike :meth:`content_hash` it stays the same as subjects are added or removed; a new
        watchlist that imports a bundle before any other change becomes a copy of the bundle's
        watchlist and takes its id (its keys stay derived from the id it was created with).
        """
        with self._read() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'watchlist_id'").fetchone()
        return str(row[0])

    @property
    def key_id(self) -> str:
        """Id of the data key this file is encrypted with."""
        return self._keys.key_id

    # ------------------------------------------------------------------ sealing
    def subject_ref(self, subject_id: str) -> str:
        """The pseudonym of a subject id in this file (its row key and its name in the audit)."""
        return self._keys.pseudonym("subject", subject_id)

    def image_ref(self, image_sha256: str) -> str:
        """The pseudonym of an image sha256 in this file (duplicate checks and the audit)."""
        return self._keys.pseudonym("image", image_sha256)

    def _open(self, sealed: bytes, ad: bytes, what: str) -> bytes:
        cache_key = (self._file_id + self._keys.key_id, ad, bytes(sealed))
        hit = _OPENED.get(cache_key)
        if hit is not None:
            return hit
        try:
            plain = self._sealer.open(sealed, ad)
        except SealError as exc:
            raise WatchlistError(MSG_TAMPERED.format(path=self.path, why=f"{what} {exc}")) from None
        if len(_OPENED) >= _OPENED_LIMIT:
            _OPENED.clear()
        _OPENED[cache_key] = plain
        return plain

    def _decode_subject(self, row: Sequence[Any]) -> _SubjectRow:
        cache_key = (self._file_id, self._keys.key_id, "subject", *row)
        hit = _DECODED.get(cache_key)
        if isinstance(hit, _SubjectRow):
            return hit
        ref, sealed, category, created, expires = row
        plain = self._open(sealed, _subject_ad(ref, category, created, expires), "a subject")
        fields = json.loads(plain.decode("utf-8"))
        subject = _SubjectRow(
            ref, fields["id"], fields["name"], category, fields["reason"], created, expires
        )
        if not hmac.compare_digest(self.subject_ref(subject.subject_id), ref):
            raise WatchlistError(MSG_TAMPERED.format(path=self.path, why="a subject key moved"))
        _remember(cache_key, subject)
        return subject

    _SUBJECT_COLUMNS = "ref, sealed, category, created, expires"

    def _decode_template(
        self, row: Sequence[Any], subjects: dict[str, _SubjectRow]
    ) -> _TemplateRow:
        tid, ref, engine, sealed, quality, created, has_image, key = row
        if ref not in subjects:
            raise WatchlistError(
                MSG_TAMPERED.format(path=self.path, why="a template lost its subject")
            )
        cache_key = (self._file_id, self._keys.key_id, "template", *row)
        hit = _DECODED.get(cache_key)
        if isinstance(hit, _TemplateRow):
            return hit
        plain = self._open(
            sealed, _template_ad(int(tid), ref, int(engine), quality, created), "a template"
        )
        sha, embedding = _unpack_template(plain)
        subject = subjects[ref]
        template = _TemplateRow(
            int(tid),
            ref,
            subject.subject_id,
            int(engine),
            key,
            embedding,
            sha,
            quality,
            created,
            bool(has_image),
        )
        _remember(cache_key, template)
        return template

    _TEMPLATE_COLUMNS = (
        "t.id, t.subject_ref, t.engine, t.sealed, t.quality, t.created, t.image IS NOT NULL, "
        "e.recognizer_key"
    )
    _TEMPLATE_FROM = " FROM templates t JOIN engines e ON e.id = t.engine "

    def _seal_subject(
        self,
        tx: _Transaction,
        info: SubjectInfo,
        created: str,
        expires: str | None,
        *,
        insert: bool,
    ) -> str:
        ref = self.subject_ref(info.subject_id)
        payload = json.dumps(
            {"id": info.subject_id, "name": info.name, "reason": info.reason},
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")
        sealed = tx.sealer.seal(payload, _subject_ad(ref, info.category, created, expires))
        if insert:
            tx.con.execute(
                "INSERT INTO subjects (ref, sealed, category, created, expires) "
                "VALUES (?, ?, ?, ?, ?)",
                (ref, sealed, info.category, created, expires),
            )
        else:
            tx.con.execute(
                "UPDATE subjects SET sealed = ?, category = ?, expires = ? WHERE ref = ?",
                (sealed, info.category, expires, ref),
            )
        return ref

    # ------------------------------------------------------------------ hashing and audit
    def _snapshot(self, con: sqlite3.Connection, *, check_mac: bool = True) -> _Snapshot:
        """Decrypt every row and recompute the content hash from the data itself.

        Raises
        ------
        WatchlistError
            A row does not authenticate, or the recomputed hash does not match the file's MAC.
        """
        subjects = [
            self._decode_subject(r)
            for r in con.execute(f"SELECT {self._SUBJECT_COLUMNS} FROM subjects ORDER BY ref")
        ]
        by_ref = {s.ref: s for s in subjects}
        templates = [
            self._decode_template(r, by_ref)
            for r in con.execute(
                f"SELECT {self._TEMPLATE_COLUMNS}{self._TEMPLATE_FROM}ORDER BY t.id"
            )
        ]
        content = _hashing.content_hash([s.digest for s in subjects], [t.digest for t in templates])
        if check_mac:
            row = con.execute("SELECT value FROM meta WHERE key = 'content_mac'").fetchone()
            expected = self._mac_text(con, content)
            if row is None or not hmac.compare_digest(str(row[0]), expected):
                raise WatchlistError(
                    MSG_TAMPERED.format(
                        path=self.path,
                        why="its content does not match the version it was last saved as",
                    )
                )
        return _Snapshot(subjects, templates, content)

    def _mac_text(self, con: sqlite3.Connection, content: str) -> str:
        row = con.execute("SELECT value FROM meta WHERE key = 'watchlist_id'").fetchone()
        watchlist_id = "" if row is None else str(row[0])
        return self._keys.content_mac(f"lfr-watchlist-mac-v1\n{watchlist_id}\n{content}")

    def _content_hash(self, con: sqlite3.Connection) -> str:
        """The content hash recomputed from the data in ``con`` (no MAC check: mid-change)."""
        return self._snapshot(con, check_mac=False).content_hash

    def _set_mac(self, con: sqlite3.Connection, content: str) -> None:
        con.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('content_mac', ?)",
            (self._mac_text(con, content),),
        )

    def _chain(self, previous: str, fields: Sequence[Any]) -> str:
        text = json.dumps([previous, *fields], sort_keys=True, separators=(",", ":"))
        return self._keys.content_mac("lfr-watchlist-audit-v1\n" + text)

    def _pseudonymous(self, details: dict[str, Any]) -> dict[str, Any]:
        # image hashes identify a photo of a person: only their keyed hash enters the log
        out = dict(details)
        for key in ("image_sha256",):
            if out.get(key):
                out[key.replace("sha256", "ref")] = self.image_ref(str(out.pop(key)))
            else:
                out.pop(key, None)
        return out

    def _write_audit(
        self, con: sqlite3.Connection, entries: Iterable[_PendingAudit], content_hash: str
    ) -> None:
        now = to_iso(self._now())
        row = con.execute("SELECT chain FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        previous = str(row[0]) if row else _GENESIS
        for e in entries:
            ref = None if e.subject_id is None else self.subject_ref(e.subject_id)
            details = json.dumps(self._pseudonymous(e.details), sort_keys=True)
            fields = (now, e.action, ref, e.template_id, self.actor, content_hash, details)
            previous = self._chain(previous, fields)
            con.execute(
                "INSERT INTO audit (at, action, subject_ref, template_id, actor, content_hash, "
                "details, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*fields, previous),
            )

    def content_hash(self) -> str:
        """Hex sha256 naming this watchlist version (see :mod:`lfr_eval.watchlist._hashing`).

        It covers subjects (id, name, category, reason, expiry) and templates (embedding bytes,
        embedding space, image sha256), is independent of insertion order, and ignores the audit
        log and creation times. Recomputed from the decrypted data and checked on every call.
        """
        with self._read() as con:
            return self._snapshot(con).content_hash

    def verify(self) -> str:
        """Decrypt every row, recompute the content hash and check it against the file's MAC.

        Returns
        -------
        str
            The content hash.

        Raises
        ------
        WatchlistError
            A row does not authenticate or the content does not match its MAC (the file was
            edited outside lfr-eval or is damaged).
        """
        return self.content_hash()

    def verify_audit(self) -> int:
        """Check the audit log's keyed hash chain; returns the number of entries.

        Raises
        ------
        WatchlistError
            An entry was edited, removed or inserted outside lfr-eval.
        """
        with self._read() as con:
            return self._check_chain(con)

    def _check_chain(self, con: sqlite3.Connection) -> int:
        rows = con.execute(
            "SELECT id, at, action, subject_ref, template_id, actor, content_hash, details, "
            "chain FROM audit ORDER BY id"
        ).fetchall()
        previous = _GENESIS
        for row in rows:
            previous = self._chain(previous, row[1:8])
            if not hmac.compare_digest(previous, str(row[8])):
                raise WatchlistError(
                    MSG_TAMPERED.format(path=self.path, why=f"audit entry {row[0]} was altered")
                )
        return len(rows)

    def audit_log(self, *, limit: int | None = None) -> list[AuditEntry]:
        """The audit log, oldest first (the last ``limit`` entries when given).

        ``subject_id`` of an entry is the subject's pseudonym (:meth:`subject_ref`), and image
        hashes appear as ``image_ref`` pseudonyms: the log names no one, before or after removal.
        """
        query = (
            "SELECT id, at, action, subject_ref, template_id, actor, content_hash, details "
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
        if cur.lastrowid is None:  # sqlite3 sets it after every INSERT
            raise RuntimeError("SQLite gave no row id for the inserted engine")
        return cur.lastrowid

    # ------------------------------------------------------------------ reading
    def _subject_counts(self, con: sqlite3.Connection) -> dict[str, int]:
        return dict(con.execute("SELECT subject_ref, COUNT(*) FROM templates GROUP BY subject_ref"))

    @staticmethod
    def _public_subject(row: _SubjectRow, n_templates: int) -> Subject:
        return Subject(
            subject_id=row.subject_id,
            display_name=row.display_name,
            category=row.category,
            reason=row.reason,
            created=from_iso(row.created),
            expires=from_iso(row.expires) if row.expires else None,
            n_templates=int(n_templates),
        )

    def subjects(
        self, *, include_expired: bool = True, at: datetime | None = None
    ) -> list[Subject]:
        """Every subject, sorted by id (expired ones only if ``include_expired``)."""
        query = f"SELECT {self._SUBJECT_COLUMNS} FROM subjects "
        params: tuple[Any, ...] = ()
        if not include_expired:
            query += "WHERE expires IS NULL OR expires > ? "
            params = (to_iso(at or self._now()),)
        with self._read() as con:
            rows = [self._decode_subject(r) for r in con.execute(query, params)]
            counts = self._subject_counts(con)
        rows.sort(key=lambda s: s.subject_id)
        return [self._public_subject(r, counts.get(r.ref, 0)) for r in rows]

    def _find_subject(self, con: sqlite3.Connection, subject_id: str) -> _SubjectRow | None:
        row = con.execute(
            f"SELECT {self._SUBJECT_COLUMNS} FROM subjects WHERE ref = ?",
            (self.subject_ref(subject_id),),
        ).fetchone()
        return None if row is None else self._decode_subject(row)

    def subject(self, subject_id: str) -> Subject:
        """One subject; :class:`WatchlistError` if unknown."""
        with self._read() as con:
            row = self._find_subject(con, subject_id)
            n = con.execute(
                "SELECT COUNT(*) FROM templates WHERE subject_ref = ?",
                (self.subject_ref(subject_id),),
            ).fetchone()[0]
        if row is None:
            raise WatchlistError(MSG_UNKNOWN_SUBJECT.format(subject_id=subject_id, path=self.path))
        return self._public_subject(row, n)

    def __len__(self) -> int:
        """Number of subjects (including expired ones)."""
        with self._read() as con:
            return int(con.execute("SELECT COUNT(*) FROM subjects").fetchone()[0])

    def __contains__(self, subject_id: object) -> bool:
        if not isinstance(subject_id, str):
            return False
        with self._read() as con:
            return self._has_subject(con, subject_id)

    def _has_subject(self, con: sqlite3.Connection, subject_id: str) -> bool:
        return (
            con.execute(
                "SELECT 1 FROM subjects WHERE ref = ?", (self.subject_ref(subject_id),)
            ).fetchone()
            is not None
        )

    def _image_owner(self, con: sqlite3.Connection, image_sha256: str) -> str | None:
        """Subject id of the template made from this image, or None (duplicate check)."""
        row = con.execute(
            f"SELECT {self._SUBJECT_COLUMNS} FROM subjects WHERE ref = (SELECT subject_ref FROM "
            "templates WHERE image_ref = ? LIMIT 1)",
            (self.image_ref(image_sha256),),
        ).fetchone()
        return None if row is None else self._decode_subject(row).subject_id

    def n_templates(self) -> int:
        with self._read() as con:
            return int(con.execute("SELECT COUNT(*) FROM templates").fetchone()[0])

    def _template_rows(
        self, con: sqlite3.Connection, subject_id: str | None = None
    ) -> list[_TemplateRow]:
        if subject_id is None:
            subjects = {
                s.ref: s
                for s in (
                    self._decode_subject(r)
                    for r in con.execute(f"SELECT {self._SUBJECT_COLUMNS} FROM subjects")
                )
            }
            rows = con.execute(f"SELECT {self._TEMPLATE_COLUMNS}{self._TEMPLATE_FROM}ORDER BY t.id")
        else:
            found = self._find_subject(con, subject_id)
            subjects = {} if found is None else {found.ref: found}
            rows = con.execute(
                f"SELECT {self._TEMPLATE_COLUMNS}{self._TEMPLATE_FROM}"
                "WHERE t.subject_ref = ? ORDER BY t.id",
                (self.subject_ref(subject_id),),
            )
        return [self._decode_template(r, subjects) for r in rows]

    def templates(self, subject_id: str | None = None) -> list[Template]:
        """Templates, ordered by id; only one subject's when ``subject_id`` is given."""
        with self._read() as con:
            rows = self._template_rows(con, subject_id)
            engine_json = dict(con.execute("SELECT id, engine_json FROM engines"))
        engines: dict[int, EngineId] = {}
        result = []
        for t in rows:
            if t.engine not in engines:
                engines[t.engine] = EngineId.from_dict(json.loads(engine_json[t.engine]))
            result.append(
                Template(
                    template_id=t.template_id,
                    subject_id=t.subject_id,
                    engine_id=engines[t.engine],
                    embedding=np.frombuffer(t.embedding, dtype="<f4").astype(np.float32),
                    image_sha256=t.image_sha256,
                    quality=FaceQuality(**json.loads(t.quality)) if t.quality else None,
                    created=from_iso(t.created),
                    has_image=t.has_image,
                )
            )
        return result

    def templates_for(self, engine_id: EngineId) -> list[Template]:
        """Templates comparable with ``engine_id``'s embeddings (same recognizer key)."""
        return [
            t for t in self.templates() if t.engine_id.recognizer_key == engine_id.recognizer_key
        ]

    def _image_bytes(self, con: sqlite3.Connection, template_id: int) -> tuple[bytes, str] | None:
        row = con.execute(
            "SELECT subject_ref, image, image_ext FROM templates WHERE id = ?", (int(template_id),)
        ).fetchone()
        if row is None or row[1] is None:
            return None
        plain = self._open(row[1], _image_ad(int(template_id), row[0], row[2]), "an image")
        return plain, row[2] or ""

    def image(self, template_id: int) -> tuple[bytes, str] | None:
        """The stored source image of a template and its file suffix, or None if not kept."""
        with self._read() as con:
            return self._image_bytes(con, template_id)

    def _matrix_rows(
        self, engine_id: EngineId, include_expired: bool, at: datetime | None
    ) -> tuple[np.ndarray, list[str], np.ndarray, str | None]:
        with self._read() as con:
            self._check_space(con, engine_id)
            space = self._space(con)
            # The whole file is decrypted and checked against its MAC before every search, so
            # an edited file is refused instead of alerting the wrong name.
            snapshot = self._snapshot(con)
        cutoff = to_iso(at or self._now())
        live = {
            s.ref
            for s in snapshot.subjects
            if include_expired or not s.expires or s.expires > cutoff
        }
        rows = [t for t in snapshot.templates if t.subject_ref in live]
        dim = engine_id.embedding_dim
        ids = np.fromiter((t.template_id for t in rows), dtype=np.int64, count=len(rows))
        subjects = [t.subject_id for t in rows]
        if rows:
            matrix = np.frombuffer(b"".join(t.embedding for t in rows), dtype="<f4").reshape(
                -1, dim
            )
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

        Raises
        ------
        WatchlistError
            The file fails its integrity check (see :meth:`verify`).
        """
        matrix, subjects, _, _ = self._matrix_rows(engine_id, include_expired, at)
        return WatchlistMatrix(matrix, np.array(subjects, dtype=object))

    def search_index(
        self,
        engine_id: EngineId,
        *,
        backend: Backend = "auto",
        device: Device = "auto",
        include_expired: bool = False,
        at: datetime | None = None,
    ) -> SearchIndex:
        """An immutable :class:`SearchIndex` snapshot of the searchable templates.

        Build a new one after enrolling; searching an old one is safe from any thread. The file
        is verified first (see :meth:`verify`). See :meth:`matrix` for the parameters;
        ``backend``/``device`` go to :class:`SearchIndex`.
        """
        matrix, subjects, ids, space = self._matrix_rows(engine_id, include_expired, at)
        return SearchIndex(
            matrix,
            subjects,
            template_ids=ids,
            backend=backend,
            device=device,
            embedding_space=space,
            copy=False,  # the matrix was just read from the store; nothing else holds it
        )

    # ------------------------------------------------------------------ writing
    def _insert_subject(
        self, tx: _Transaction, info: SubjectInfo, created: datetime | None = None
    ) -> None:
        expires = to_iso(info.expires) if info.expires else None
        if self._has_subject(tx.con, info.subject_id):
            raise WatchlistError(
                f"subject {info.subject_id!r} is already on this watchlist ({self.path})"
            )
        self._seal_subject(tx, info, to_iso(created or self._now()), expires, insert=True)
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
        ref = self.subject_ref(subject_id)
        engine = self._engine_ref(tx.con, engine_id)
        quality_text = json.dumps(quality.to_dict()) if quality else None
        created_text = to_iso(created or self._now())
        ext = image_ext if image is not None else None
        # The row id is part of the associated data, so it is fixed before sealing: the next
        # AUTOINCREMENT id (this transaction holds the write lock, nobody else can take it).
        row = tx.con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'templates'").fetchone()
        top = tx.con.execute("SELECT COALESCE(MAX(id), 0) FROM templates").fetchone()[0]
        template_id = max(int(row[0]) if row else 0, int(top)) + 1
        sealed = tx.sealer.seal(
            _pack_template(image_sha256, blob),
            _template_ad(template_id, ref, engine, quality_text, created_text),
        )
        sealed_image = (
            None if image is None else tx.sealer.seal(image, _image_ad(template_id, ref, ext))
        )
        tx.con.execute(
            "INSERT INTO templates (id, subject_ref, engine, sealed, image_ref, quality, created, "
            "image, image_ext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                template_id,
                ref,
                engine,
                sealed,
                self.image_ref(image_sha256) if image_sha256 else None,
                quality_text,
                created_text,
                sealed_image,
                ext,
            ),
        )
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
        if not self._has_subject(con, subject_id):
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
            self._seal_subject(tx, info, to_iso(current.created), expires_iso, insert=False)
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
            The encoded source image, stored (sealed) only when given.
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
        embedded: list[tuple[np.ndarray, FaceQuality]] = []
        for face in faces:
            if face.embedding is None:
                raise WatchlistError("a face to enrol has no embedding; analyse with embed=True")
            embedded.append((face.embedding, face.quality))
        with self._write() as tx:
            if not self._has_subject(tx.con, subject.subject_id):
                self._insert_subject(tx, subject)
            return tuple(
                self._insert_template(
                    tx,
                    subject.subject_id,
                    embedding,
                    engine_id,
                    image_sha256=image_sha256,
                    quality=quality,
                )
                for embedding, quality in embedded
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
        ref = self.subject_ref(subject_id)
        category = tx.con.execute("SELECT category FROM subjects WHERE ref = ?", (ref,)).fetchone()[
            0
        ]
        n = tx.con.execute(
            "SELECT COUNT(*) FROM templates WHERE subject_ref = ?", (ref,)
        ).fetchone()[0]
        tx.con.execute("DELETE FROM templates WHERE subject_ref = ?", (ref,))
        tx.con.execute("DELETE FROM subjects WHERE ref = ?", (ref,))
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
            by_id = {t.template_id: t for t in self._template_rows(tx.con)}
            for template_id in ids:
                row = by_id.get(template_id)
                if row is None:
                    raise WatchlistError(f"no template {template_id} on this watchlist")
                tx.con.execute("DELETE FROM templates WHERE id = ?", (template_id,))
                tx.log("remove_template", row.subject_id, template_id)
            tx.con.execute(
                "DELETE FROM engines WHERE id NOT IN (SELECT DISTINCT engine FROM templates)"
            )
            tx.vacuum = vacuum
        return len(ids)

    def rekey(self) -> int:
        """Re-encrypt the file under the installation's current data key (key rotation).

        Every row is decrypted and checked with the old key first (a tampered file is refused,
        not re-sealed), then sealed again with keys derived from the current one; pseudonyms of
        subjects still listed and of their images are re-derived, older audit pseudonyms stay as
        they were, and the audit chain is re-keyed. One transaction, then ``VACUUM``.

        Returns
        -------
        int
            Templates re-sealed (0 when the file already uses the current key).
        """
        from lfr_eval.atrest import load_key_ring

        ring = load_key_ring()
        if self._keys.key_id == ring.current:
            return 0
        old_keys, old_sealer = self._keys, self._sealer
        with self._lock, self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                snapshot = self._snapshot(con)
                self._check_chain(con)
                images = {
                    t.template_id: self._image_bytes(con, t.template_id)
                    for t in snapshot.templates
                    if t.has_image
                }
                audit = con.execute(
                    "SELECT id, at, action, subject_ref, template_id, actor, content_hash, "
                    "details FROM audit ORDER BY id"
                ).fetchall()
                old_refs = {s.ref: s.subject_id for s in snapshot.subjects}
                old_images = {
                    old_keys.pseudonym("image", t.image_sha256): t.image_sha256
                    for t in snapshot.templates
                    if t.image_sha256
                }
                self._keys = file_keys(self._file_id, ring.current, what=f"watchlist {self.path}")
                self._sealer = Sealer(self._keys.seal)
                con.execute("DELETE FROM templates")
                con.execute("DELETE FROM subjects")
                tx = _Transaction(con, self._keys, self._sealer)
                for sub in snapshot.subjects:
                    info = SubjectInfo(
                        sub.subject_id,
                        sub.display_name,
                        sub.category,
                        sub.reason,
                        from_iso(sub.expires) if sub.expires else None,
                    )
                    self._seal_subject(tx, info, sub.created, sub.expires, insert=True)
                for t in snapshot.templates:
                    image = images.get(t.template_id)
                    self._put_template(
                        con,
                        t.template_id,
                        t.subject_id,
                        t.engine,
                        t.image_sha256,
                        t.embedding,
                        t.quality,
                        t.created,
                        None if image is None else image[0],
                        None if image is None else image[1],
                    )
                previous = _GENESIS
                for eid, at, action, ref, template_id, actor, content_hash, details in audit:
                    if ref in old_refs:
                        ref = self.subject_ref(old_refs[ref])
                    parsed = json.loads(details)
                    if parsed.get("image_ref") in old_images:
                        parsed["image_ref"] = self.image_ref(old_images[parsed["image_ref"]])
                    fields = (
                        at,
                        action,
                        ref,
                        template_id,
                        actor,
                        content_hash,
                        json.dumps(parsed, sort_keys=True),
                    )
                    previous = self._chain(previous, fields)
                    con.execute(
                        "UPDATE audit SET subject_ref = ?, details = ?, chain = ? WHERE id = ?",
                        (ref, fields[6], previous, eid),
                    )
                con.execute("UPDATE meta SET value = ? WHERE key = 'key_id'", (self._keys.key_id,))
                self._set_mac(con, snapshot.content_hash)
                self._write_audit(
                    con,
                    [
                        _PendingAudit(
                            "rekey",
                            None,
                            None,
                            {"from_key": old_keys.key_id, "to_key": self._keys.key_id},
                        )
                    ],
                    snapshot.content_hash,
                )
                if self._content_hash(con) != snapshot.content_hash:
                    raise RuntimeError("re-keyed watchlist does not reproduce its content hash")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                self._keys, self._sealer = old_keys, old_sealer
                raise
            con.execute("VACUUM")
        return len(snapshot.templates)

    def _put_template(
        self,
        con: sqlite3.Connection,
        template_id: int,
        subject_id: str,
        engine: int,
        image_sha256: str | None,
        embedding: bytes,
        quality: str | None,
        created: str,
        image: bytes | None,
        image_ext: str | None,
    ) -> None:
        """Insert one template row under a known id, sealed with the current keys."""
        ref = self.subject_ref(subject_id)
        ext = image_ext if image is not None else None
        con.execute(
            "INSERT INTO templates (id, subject_ref, engine, sealed, image_ref, quality, created, "
            "image, image_ext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                template_id,
                ref,
                engine,
                self._sealer.seal(
                    _pack_template(image_sha256, embedding),
                    _template_ad(template_id, ref, engine, quality, created),
                ),
                self.image_ref(image_sha256) if image_sha256 else None,
                quality,
                created,
                None
                if image is None
                else self._sealer.seal(image, _image_ad(template_id, ref, ext)),
                ext,
            ),
        )

    def purge_expired(
        self,
        *,
        at: datetime | None = None,
        grace: timedelta = timedelta(0),
        vacuum: bool = True,
    ) -> tuple[str, ...]:
        """Delete every subject whose expiry passed more than ``grace`` before ``at``.

        Parameters
        ----------
        at : datetime, optional
            The current moment (default: the store's clock).
        grace : timedelta
            How long an expired subject is kept, unsearched, before deletion (default: none).
        vacuum : bool
            Rewrite the file afterwards so the deleted rows' pages are gone.

        Returns
        -------
        tuple of str
            The deleted subjects' ids (the audit log records only their pseudonyms).
        """
        cutoff = to_iso((at or self._now()) - grace)
        with self._write() as tx:
            rows = [
                self._decode_subject(r)
                for r in tx.con.execute(
                    f"SELECT {self._SUBJECT_COLUMNS} FROM subjects "
                    "WHERE expires IS NOT NULL AND expires <= ?",
                    (cutoff,),
                )
            ]
            ids = sorted(s.subject_id for s in rows)
            for subject_id in ids:
                self._delete_subject(tx, subject_id, why="expired")
            tx.vacuum = vacuum and bool(ids)
        return tuple(ids)

    def n_past_grace(self, *, at: datetime | None = None) -> int:
        """Subjects expired for longer than :attr:`expiry_grace` (deleted at the next purge)."""
        cutoff = to_iso((at or self._now()) - self.expiry_grace)
        with self._read() as con:
            return int(
                con.execute(
                    "SELECT COUNT(*) FROM subjects WHERE expires IS NOT NULL AND expires <= ?",
                    (cutoff,),
                ).fetchone()[0]
            )

    def _purge_past_grace(self) -> None:
        #: Ids of the subjects opening the file deleted (expired for longer than the grace).
        self.purged_on_open: tuple[str, ...] = ()
        if self.n_past_grace() == 0:
            return
        try:
            self.purged_on_open = self.purge_expired(grace=self.expiry_grace)
        except WatchlistError as exc:
            if "readonly" not in str(exc) and "read-only" not in str(exc):
                raise
            # a read-only copy (e.g. an archive) is searched without its expired subjects;
            # deleting them is the job of whoever may write the file

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
