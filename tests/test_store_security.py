"""The watchlist store as an attacker and a careless user meet it: edited files, damaged files,
raw-file scans for biometric data, lost keys, file permissions, the pseudonymous audit chain,
migration of schema-1 files, and expiry with an injected clock."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from lfr_eval.atrest import ENV_KEY_FILE, DataKeyError, clear_cache, default_key_file
from lfr_eval.errors import WatchlistError
from lfr_eval.faces import EngineId, ModelFile
from lfr_eval.watchlist import SubjectInfo, Watchlist, _hashing

ENGINE = EngineId("fake", (ModelFile("recognizer", "rec_a.onnx", "a" * 64),), 16)
NAMES = ("Jane Doe", "John Roe")
REASONS = ("warrant 17/2024", "reported missing 3/2025")
IMAGE = b"\xff\xd8\xff\xe0 a stored enrolment photo, pretend JPEG " * 20


def unit(rng: np.random.Generator, d: int = 16) -> np.ndarray:
    x = rng.standard_normal(d).astype(np.float32)
    return x / np.linalg.norm(x)


@pytest.fixture()
def two_people(tmp_path: Path) -> tuple[Watchlist, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    wl = Watchlist(tmp_path / "ws" / "wl.sqlite", actor="officer-1")
    embeddings = {}
    for sid, name, reason in zip(("jane-doe", "john-roe"), NAMES, REASONS, strict=True):
        wl.add_subject(SubjectInfo(sid, name, "wanted", reason))
        embeddings[sid] = unit(rng)
        wl.add_template(
            sid, embeddings[sid], ENGINE, image_sha256=sid[0] * 64, image=IMAGE, image_ext=".jpg"
        )
    return wl, embeddings


def raw_edit(path: Path, *statements: tuple[str, tuple]) -> None:
    con = sqlite3.connect(path)
    with con:
        for sql, args in statements:
            con.execute(sql, args)
    con.close()


def rows(path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------- integrity
def test_swapping_templates_and_renaming_is_refused(two_people) -> None:
    """The attack of issue 11: swap two people's templates and give one the other's name."""
    wl, embeddings = two_people
    probe = embeddings["jane-doe"]
    assert wl.search_index(ENGINE).search(probe[None, :], k=1).subject_ids[0][0] == "jane-doe"
    (t1, s1), (t2, s2) = rows(wl.path, "SELECT id, sealed FROM templates ORDER BY id")
    (r1, n1), (r2, n2) = rows(wl.path, "SELECT ref, sealed FROM subjects ORDER BY ref")
    raw_edit(
        wl.path,
        ("UPDATE templates SET sealed = ? WHERE id = ?", (s2, t1)),
        ("UPDATE templates SET sealed = ? WHERE id = ?", (s1, t2)),
        ("UPDATE subjects SET sealed = ? WHERE ref = ?", (n2, r1)),
    )
    # an object opened before the edit refuses to search, enrol or export ...
    with pytest.raises(WatchlistError, match="integrity check"):
        wl.search_index(ENGINE)
    with pytest.raises(WatchlistError, match="integrity check"):
        wl.add_template("jane-doe", probe, ENGINE)
    with pytest.raises(WatchlistError, match="integrity check"):
        wl.export_bundle(wl.path.parent / "out.zip")
    # ... and so does every later open
    with pytest.raises(WatchlistError, match="changed outside lfr-eval"):
        Watchlist(wl.path)


@pytest.mark.parametrize(
    "edit",
    [
        # whole rows moved between people (pseudonym and sealed value together)
        "UPDATE templates SET subject_ref = (SELECT ref FROM subjects WHERE ref != subject_ref) "
        "WHERE id = 1",
        # a template deleted: every remaining row still authenticates, the MAC does not
        "DELETE FROM templates WHERE id = 2",
        # an expiry set in the past / a category changed in the clear columns
        "UPDATE subjects SET expires = '2001-01-01T00:00:00+00:00'",
        "UPDATE subjects SET category = 'victim'",
        # the content MAC replaced by the one of an older version
        "UPDATE meta SET value = '00' WHERE key = 'content_mac'",
    ],
)
def test_any_edit_outside_lfr_eval_is_refused(two_people, edit: str) -> None:
    wl, _ = two_people
    raw_edit(wl.path, (edit, ()))
    with pytest.raises(WatchlistError, match="integrity check"):
        Watchlist(wl.path)
    with pytest.raises(WatchlistError, match="integrity check"):
        wl.matrix(ENGINE)


def test_corrupted_file_is_refused_with_advice(two_people) -> None:
    wl, _ = two_people
    data = bytearray(wl.path.read_bytes())
    page = 4096
    for offset in range(page * 2 + 100, min(len(data), page * 4), 7):
        data[offset] ^= 0x5A  # scribble over the second and third pages
    wl.path.write_bytes(bytes(data))
    with pytest.raises(WatchlistError, match="damaged|not an LFR watchlist|integrity") as info:
        Watchlist(wl.path)
    assert "backup" in str(info.value) or "SQLite" in str(info.value)


def test_verify_audit_chain_and_pseudonyms(two_people) -> None:
    wl, _ = two_people
    wl.remove_subjects(["john-roe"])
    n = wl.verify_audit()
    entries = wl.audit_log()
    assert n == len(entries) and entries[-1].action == "remove_subject"
    assert {e.actor for e in entries} == {"officer-1"}
    assert entries[-1].subject_id == wl.subject_ref("john-roe")
    text = json.dumps([(e.subject_id, e.details) for e in entries])
    assert "john" not in text.lower() and "j" * 64 not in text
    assert "image_ref" in text  # the image hash is there, keyed
    raw_edit(wl.path, ("UPDATE audit SET actor = 'somebody else' WHERE id = 2", ()))
    with pytest.raises(WatchlistError, match="audit entry 2"):
        wl.verify_audit()


def test_as_actor_records_the_signed_in_user(two_people) -> None:
    wl, _ = two_people
    wl.as_actor("sergeant-7").update_subject("jane-doe", reason="warrant renewed")
    assert wl.audit_log()[-1].actor == "sergeant-7"
    assert wl.actor == "officer-1"


# ---------------------------------------------------------------------- encryption at rest
def test_raw_file_holds_no_template_bytes_names_or_images(two_people) -> None:
    wl, embeddings = two_people
    wl.remove_templates([1])  # a removal leaves nothing readable behind either
    raw = wl.path.read_bytes()
    journal = wl.path.with_name(wl.path.name + "-journal")
    assert not journal.exists()
    secrets = [e.astype("<f4").tobytes() for e in embeddings.values()]
    secrets += [e.astype("<f4").tobytes()[:16] for e in embeddings.values()]  # any 4 floats
    for text in (*NAMES, *REASONS, "jane-doe", "john-roe", "j" * 64):
        secrets += [text.encode("utf-8"), text.encode("utf-16-le")]
    secrets.append(IMAGE[:32])
    found = [s[:12] for s in secrets if s in raw]
    assert not found, f"clear biometric data in the file: {found}"
    # and it still reads back
    assert {s.display_name for s in wl.subjects()} == set(NAMES)
    assert wl.image(2) == (IMAGE, ".jpg")


def test_files_and_folders_are_private(two_people) -> None:
    wl, _ = two_people
    mode = stat.S_IMODE(os.stat(wl.path).st_mode)
    assert mode == 0o600, oct(mode)
    assert stat.S_IMODE(os.stat(wl.path.parent).st_mode) == 0o700  # the store created it
    key_file = default_key_file()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_file.parent).st_mode) == 0o700
    os.chmod(wl.path, 0o644)  # a careless copy
    Watchlist(wl.path)
    assert stat.S_IMODE(os.stat(wl.path).st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX only")
def test_a_journal_that_vanishes_while_the_store_is_made_private_is_not_an_error(
    tmp_path: Path, monkeypatch
) -> None:
    # the live page failed once (stop 23) when another connection's transaction ended and
    # SQLite deleted its journal between the existence check and the chmod
    from lfr_eval.atrest import _files

    db = tmp_path / "alerts.sqlite"
    db.write_bytes(b"")
    os.chmod(db, 0o644)
    journal = tmp_path / "alerts.sqlite-journal"
    real_exists = Path.exists
    # the journal is there when looked for and gone when its mode is read
    monkeypatch.setattr(Path, "exists", lambda p: p == journal or real_exists(p))
    _files.private_file(db)
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    # the store's own file missing is still an error
    with pytest.raises(FileNotFoundError):
        _files.private_file(tmp_path / "gone.sqlite")


def test_lost_key_says_what_it_means(two_people, tmp_path: Path, monkeypatch) -> None:
    wl, _ = two_people
    monkeypatch.setenv(ENV_KEY_FILE, str(tmp_path / "elsewhere" / "data-keys.json"))
    clear_cache()
    try:
        with pytest.raises(DataKeyError, match="cannot be read by anyone") as info:
            Watchlist(wl.path)
        assert info.value.exit_code == 17
    finally:
        clear_cache()


def test_key_file_beside_the_data_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_KEY_FILE, str(tmp_path / "ws" / "keys" / "data-keys.json"))
    clear_cache()
    try:
        with pytest.raises(DataKeyError, match="beside the data"):
            Watchlist(tmp_path / "ws" / "wl.sqlite")
    finally:
        clear_cache()


# ---------------------------------------------------------------------- expiry by the store
def test_expired_subjects_unsearched_then_purged_after_grace(tmp_path: Path) -> None:
    now = [datetime(2030, 1, 1, tzinfo=timezone.utc)]
    wl = Watchlist(tmp_path / "wl.sqlite", clock=lambda: now[0], expiry_grace=timedelta(days=7))
    rng = np.random.default_rng(2)
    wl.add_subject(SubjectInfo("short", expires=now[0] + timedelta(days=1)))
    wl.add_template("short", unit(rng), ENGINE)
    wl.add_subject(SubjectInfo("long"))
    wl.add_template("long", unit(rng), ENGINE)
    assert set(wl.matrix(ENGINE).subject_ids) == {"short", "long"}
    now[0] += timedelta(days=2)  # expired: kept, but never searched
    assert set(wl.matrix(ENGINE).subject_ids) == {"long"}
    assert set(wl.search_index(ENGINE).subject_ids) == {"long"}
    reopened = Watchlist(wl.path, clock=lambda: now[0], expiry_grace=timedelta(days=7))
    assert "short" in reopened and reopened.n_past_grace() == 0
    now[0] += timedelta(days=7)  # past the grace period: the store deletes it on open
    reopened = Watchlist(wl.path, clock=lambda: now[0], expiry_grace=timedelta(days=7))
    assert "short" not in reopened and len(reopened) == 1
    entry = reopened.audit_log()[-1]
    assert entry.action == "remove_subject" and entry.details["why"] == "expired"
    assert b"short" not in wl.path.read_bytes()


# ---------------------------------------------------------------------- migration of schema 1
_V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE engines (id INTEGER PRIMARY KEY, recognizer_key TEXT NOT NULL,
    engine_key TEXT NOT NULL, embedding_dim INTEGER NOT NULL, engine_json TEXT NOT NULL UNIQUE);
CREATE TABLE subjects (id TEXT PRIMARY KEY, display_name TEXT NOT NULL, category TEXT NOT NULL,
    reason TEXT NOT NULL, created TEXT NOT NULL, expires TEXT, digest TEXT NOT NULL);
CREATE TABLE templates (id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    engine INTEGER NOT NULL REFERENCES engines(id), embedding BLOB NOT NULL, image_sha256 TEXT,
    quality TEXT, created TEXT NOT NULL, image BLOB, image_ext TEXT, digest TEXT NOT NULL);
CREATE INDEX templates_subject ON templates(subject_id);
CREATE INDEX templates_image ON templates(image_sha256);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
    action TEXT NOT NULL, subject_id TEXT, template_id INTEGER, actor TEXT NOT NULL,
    content_hash TEXT NOT NULL, details TEXT NOT NULL);
"""


def _v1_file(path: Path, embedding: np.ndarray, *, tamper: bool = False) -> str:
    """A schema-1 watchlist as lfr-eval 0.1 wrote it (one subject, one template)."""
    blob = _hashing.embedding_bytes(embedding)
    created = "2025-01-01T00:00:00+00:00"
    sdig = _hashing.subject_digest("jane-doe", "Jane Doe", "wanted", "warrant 17/2024", None)
    tdig = _hashing.template_digest("jane-doe", ENGINE.recognizer_key, "f" * 64, blob)
    content = _hashing.content_hash([sdig], [tdig])
    con = sqlite3.connect(path)
    con.executescript(_V1_SCHEMA)
    with con:
        con.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [
                ("format", "lfr-watchlist"),
                ("schema_version", "1"),
                ("content_hash_version", "1"),
                ("created", created),
                ("watchlist_id", "ab" * 16),
            ],
        )
        con.execute(
            "INSERT INTO engines VALUES (1, ?, ?, 16, ?)",
            (ENGINE.recognizer_key, ENGINE.key, json.dumps(ENGINE.to_dict(), sort_keys=True)),
        )
        con.execute(
            "INSERT INTO subjects VALUES ('jane-doe', 'Jane Doe', 'wanted', 'warrant 17/2024', ?, "
            "NULL, ?)",
            (created, sdig),
        )
        stored = blob if not tamper else _hashing.embedding_bytes(-embedding)
        con.execute(
            "INSERT INTO templates VALUES (5, 'jane-doe', 1, ?, ?, NULL, ?, NULL, NULL, ?)",
            (stored, "f" * 64, created, tdig),
        )
        for i, (action, sid, details) in enumerate(
            [
                ("create", None, {}),
                ("add_subject", "jane-doe", {}),
                ("add_template", "jane-doe", {"image_sha256": "f" * 64}),
            ]
        ):
            con.execute(
                "INSERT INTO audit (at, action, subject_id, template_id, actor, content_hash, "
                "details) VALUES (?, ?, ?, ?, 'root', ?, ?)",
                (
                    created,
                    action,
                    sid,
                    5 if i == 2 else None,
                    content if i else _hashing.content_hash([], []),
                    json.dumps(details),
                ),
            )
    con.close()
    return content


def test_schema_1_file_is_migrated_sealed_and_keeps_its_version(tmp_path: Path) -> None:
    embedding = unit(np.random.default_rng(3))
    path = tmp_path / "old.sqlite"
    content = _v1_file(path, embedding)
    assert b"Jane Doe" in path.read_bytes()
    wl = Watchlist(path)
    assert wl.content_hash() == content  # same version name as before
    assert wl.subject("jane-doe").display_name == "Jane Doe"
    assert np.array_equal(wl.templates()[0].embedding, embedding)
    assert wl.templates()[0].template_id == 5
    raw = path.read_bytes()
    assert b"Jane Doe" not in raw and b"jane-doe" not in raw and b"warrant" not in raw
    assert embedding.astype("<f4").tobytes() not in raw and b"f" * 64 not in raw
    assert [e.action for e in wl.audit_log()][-1] == "migrate"
    assert wl.verify_audit() == 4
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    new_id = wl.add_template("jane-doe", unit(np.random.default_rng(4)), ENGINE)
    assert new_id == 6  # ids of the old file stay retired


def test_tampered_schema_1_file_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _v1_file(path, unit(np.random.default_rng(3)), tamper=True)
    before = path.read_bytes()
    with pytest.raises(WatchlistError, match="does not match its digest"):
        Watchlist(path)
    assert path.read_bytes() == before  # refused, not half-migrated


def test_verify_command_exit_codes(two_people, capsys) -> None:
    from cli_support import run

    wl, _ = two_people
    code, out, _ = run(capsys, "watchlist", "verify", "--watchlist", wl.path, "--json")
    assert code == 0 and json.loads(out)["content_hash"] == wl.content_hash()
    raw_edit(wl.path, ("DELETE FROM templates WHERE id = 1", ()))
    code, _, err = run(capsys, "watchlist", "verify", "--watchlist", wl.path)
    assert code == 7 and "integrity check" in err and "Traceback" not in err


def test_workspace_set_to_home_still_finds_its_default_key(tmp_path: Path, monkeypatch) -> None:
    """The per-user config folder is never part of a workspace, even one set to the home folder."""
    import platformdirs

    home = tmp_path / "home"
    config = home / ".config" / "lfr-eval"
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda *a, **k: str(config))
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)
    # never the developer's real OS keyring
    monkeypatch.setattr("lfr_eval.atrest._keys._keyring_backend", lambda: None)
    clear_cache()
    try:
        wl = Watchlist(home / "wl.sqlite")
        assert default_key_file() == config / "data-keys.json" and default_key_file().is_file()
        assert len(wl) == 0
    finally:
        clear_cache()
