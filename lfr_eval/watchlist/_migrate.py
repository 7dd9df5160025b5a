"""Migration of schema-1 watchlists (clear rows with stored digests) to schema 2 (sealed rows).

Run once, on the first open by a version that reads schema 2, in one transaction: every v1 row
is first checked against its stored digest and the file's last recorded content hash (a file
edited outside lfr-eval is refused, not sealed and thereby blessed); then subjects, templates
and stored images are sealed under this installation's data key, the audit log is rewritten
with pseudonyms in place of subject ids and image hashes and given its keyed chain, and the
file is vacuumed so no clear copy of a name or an embedding survives in its free pages.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from lfr_eval.atrest import Sealer, file_keys
from lfr_eval.errors import WatchlistError
from lfr_eval.watchlist import _hashing
from lfr_eval.watchlist._types import SubjectInfo, from_iso

if TYPE_CHECKING:
    from lfr_eval.watchlist._store import Watchlist

def _seq(con: sqlite3.Connection, table: str) -> int:
    row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return int(row[0]) if row else 0


def migrate_v1(wl: Watchlist) -> None:
    """Rewrite ``wl``'s schema-1 file as schema 2 (see module docstring); no-op if done already.

    Raises
    ------
    WatchlistError
        A v1 row does not match its digest, or the data does not match the last content hash
        the audit log recorded: the file was edited outside lfr-eval.
    """
    with wl._lock, wl._connect() as con:
        con.execute("PRAGMA foreign_keys = OFF")  # tables are renamed and rebuilt below
        con.execute("BEGIN IMMEDIATE")
        try:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("schema_version") != "1":
                con.execute("ROLLBACK")
                return  # another process migrated it meanwhile
            _migrate(wl, con, meta)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("VACUUM")


def _verified_v1_rows(
    wl: Watchlist, con: sqlite3.Connection
) -> tuple[list[Any], list[Any], list[Any], str]:
    """The v1 rows, each checked against its digest and all against the last audited hash."""
    from lfr_eval.watchlist._store import MSG_TAMPERED

    def tampered(why: str) -> WatchlistError:
        return WatchlistError(MSG_TAMPERED.format(path=wl.path, why=why))

    subjects = con.execute(
        "SELECT id, display_name, category, reason, created, expires, digest FROM subjects"
    ).fetchall()
    templates = con.execute(
        "SELECT t.id, t.subject_id, t.engine, e.recognizer_key, t.embedding, t.image_sha256, "
        "t.quality, t.created, t.image, t.image_ext, t.digest FROM templates t "
        "JOIN engines e ON e.id = t.engine ORDER BY t.id"
    ).fetchall()
    audit = con.execute(
        "SELECT id, at, action, subject_id, template_id, actor, content_hash, details "
        "FROM audit ORDER BY id"
    ).fetchall()
    subject_digests = []
    for sid, name, category, reason, _, expires, digest in subjects:
        if _hashing.subject_digest(sid, name, category, reason, expires) != digest:
            raise tampered(f"subject {sid!r} does not match its digest")
        subject_digests.append(digest)
    template_digests = []
    for tid, sid, _, key, blob, sha, *_rest, digest in templates:
        if _hashing.template_digest(sid, key, sha, bytes(blob)) != digest:
            raise tampered(f"template {tid} does not match its digest")
        template_digests.append(digest)
    content = _hashing.content_hash(subject_digests, template_digests)
    if audit and audit[-1][6] != content:
        raise tampered("its rows do not match the version its audit log last recorded")
    return subjects, templates, audit, content


def _migrate(wl: Watchlist, con: sqlite3.Connection, meta: dict[str, str]) -> None:
    from lfr_eval.watchlist._store import (
        DATA_TABLES,
        _image_ad,
        _pack_template,
        _PendingAudit,
        _template_ad,
        _Transaction,
    )

    subjects, templates, audit, content = _verified_v1_rows(wl, con)
    salt = meta["watchlist_id"]
    wl._file_id = salt
    wl._keys = file_keys(salt, what=f"watchlist {wl.path}")
    wl._sealer = Sealer(wl._keys.seal)
    template_seq, audit_seq = _seq(con, "templates"), _seq(con, "audit")

    con.execute("DROP INDEX IF EXISTS templates_subject")
    con.execute("DROP INDEX IF EXISTS templates_image")
    for table in ("subjects", "templates", "audit"):
        con.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
    for statement in DATA_TABLES.split(";"):
        if statement.strip():
            con.execute(statement)

    tx = _Transaction(con, wl._keys, wl._sealer)
    for sid, name, category, reason, created, expires, _ in subjects:
        info = SubjectInfo(sid, name, category, reason, from_iso(expires) if expires else None)
        wl._seal_subject(tx, info, created, expires, insert=True)
    for tid, sid, engine, _, blob, sha, quality, created, image, ext, _ in templates:
        ref = wl.subject_ref(sid)
        sealed = wl._sealer.seal(
            _pack_template(sha, bytes(blob)),
            _template_ad(int(tid), ref, int(engine), quality, created),
        )
        sealed_image = (
            None if image is None else wl._sealer.seal(bytes(image), _image_ad(int(tid), ref, ext))
        )
        con.execute(
            "INSERT INTO templates (id, subject_ref, engine, sealed, image_ref, quality, created, "
            "image, image_ext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                int(tid),
                ref,
                int(engine),
                sealed,
                wl.image_ref(sha) if sha else None,
                quality,
                created,
                sealed_image,
                ext if image is not None else None,
            ),
        )
    previous = "0" * 64
    for eid, at, action, sid, template_id, actor, content_hash, details in audit:
        audit_ref = None if sid is None else wl.subject_ref(sid)
        clean = json.dumps(wl._pseudonymous(json.loads(details)), sort_keys=True)
        fields = (at, action, audit_ref, template_id, actor, content_hash, clean)
        previous = wl._chain(previous, fields)
        con.execute(
            "INSERT INTO audit (id, at, action, subject_ref, template_id, actor, content_hash, "
            "details, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (eid, *fields, previous),
        )
    for table in ("subjects", "templates", "audit"):
        con.execute(f"DROP TABLE {table}_v1")
    for table, seq in (("templates", template_seq), ("audit", audit_seq)):
        # keep ids of deleted templates retired: the audit log refers to them
        con.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT ?, 0 WHERE NOT EXISTS "
            "(SELECT 1 FROM sqlite_sequence WHERE name = ?)",
            (table, table),
        )
        con.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (seq, table))
    con.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [("schema_version", "2"), ("key_salt", salt), ("key_id", wl._keys.key_id)],
    )
    recomputed = wl._content_hash(con)
    if recomputed != content:
        raise RuntimeError("migrated watchlist does not reproduce its content hash")  # a bug
    wl._set_mac(con, content)
    wl._write_audit(
        con, [_PendingAudit("migrate", None, None, {"from_schema": 1, "to_schema": 2})], content
    )
