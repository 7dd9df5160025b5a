"""The embedding cache holds biometric templates: sealed at rest, refs keyed, edits refused.

Evaluation embeddings are templates of every person in the evaluator's images, as sensitive as
a watchlist's. The cache seals each entry (AES-256-GCM, bound to its clear columns), finds rows
by a keyed hash of the image's sha256, seals a layout-1 file in place on first open (all or
nothing), and refuses a file whose entries were edited or swapped with a one-line error.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lfr_eval.atrest import Sealer, clear_cache
from lfr_eval.datasets._cache import (
    CACHE_SCHEMA_VERSION,
    CachedEmbedding,
    EmbeddingCache,
    pack_entry,
    unpack_entry,
)
from lfr_eval.errors import CacheError

KEY = "dlib|recognizer=r@0123|fp32|face=largest"


def unit(seed: int, dim: int = 128) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return x / np.linalg.norm(x)


def sha(i: int) -> str:
    return f"{i:064x}"


ENTRIES = [
    CachedEmbedding(sha(1), 1, unit(1), None, 0.93, 41.5),
    CachedEmbedding(sha(2), 3, unit(2), None, 0.71, 18.0),
    CachedEmbedding(sha(3), 0, None, "unreadable image: /data/volunteers/jane_doe_03.jpg"),
]


def raw_bytes(path: Path) -> bytes:
    """The file and any SQLite side file: everything of the cache on disk."""
    data = path.read_bytes()
    for suffix in ("-wal", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            data += side.read_bytes()
    return data


def assert_nothing_in_clear(path: Path) -> None:
    data = raw_bytes(path)
    for entry in ENTRIES:
        assert entry.image_sha256.encode() not in data
        if entry.embedding is not None:
            # any 16 consecutive bytes of a template would give it away
            blob = entry.embedding.astype("<f4").tobytes()
            assert not any(blob[i : i + 16] in data for i in range(0, len(blob) - 16, 64))
    assert b"jane_doe" not in data


def test_entries_are_sealed_and_read_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "embeddings.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many(ENTRIES, KEY)
        got = cache.get_many([e.image_sha256 for e in ENTRIES] + [sha(9)], KEY)
        assert cache.get_many([sha(1)], "another engine") == {}
    assert set(got) == {sha(1), sha(2), sha(3)}  # an unknown image is simply missing
    for entry in ENTRIES:
        back = got[entry.image_sha256]
        assert back.n_faces == entry.n_faces and back.failure == entry.failure
        if entry.embedding is None:
            assert back.embedding is None and np.isnan(back.det_score)
        else:
            np.testing.assert_array_equal(back.embedding, entry.embedding)
            assert (back.det_score, back.face_size_px) == (entry.det_score, entry.face_size_px)
    assert_nothing_in_clear(path)
    assert os.stat(path).st_mode & 0o077 == 0 and os.stat(path.parent).st_mode & 0o077 == 0


def test_payload_round_trip_and_malformed_payloads() -> None:
    for entry in ENTRIES + [CachedEmbedding(sha(4), 1, unit(4, 512), "", 0.5, 9.0)]:
        s, v, f = unpack_entry(pack_entry(entry.image_sha256, entry.embedding, entry.failure))
        assert s == entry.image_sha256 and f == entry.failure
        assert (v is None) == (entry.embedding is None)
        if v is not None:
            np.testing.assert_array_equal(v, entry.embedding)
    packed = pack_entry(sha(1), unit(1), None)
    for bad in (b"", packed[:40], packed[:-2]):
        with pytest.raises(ValueError):
            unpack_entry(bad)


def _edit(path: Path, sql: str, *args: object) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute(sql, args)
    db.close()


@pytest.mark.parametrize(
    "edit",
    [
        # another image's sealed entry put under this image's ref: would hand out a wrong template
        "swap",
        # a clear column changed (the detector score that quality filters read)
        "det_score",
        # a flipped byte inside the ciphertext
        "bytes",
    ],
)
def test_an_edited_entry_is_refused_not_read(tmp_path: Path, edit: str) -> None:
    path = tmp_path / "e.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many(ENTRIES[:2], KEY)
    db = sqlite3.connect(path)
    (ref1, blob1), (ref2, blob2) = db.execute(
        "SELECT image_ref, sealed FROM embeddings ORDER BY n_faces"
    ).fetchall()
    db.close()
    if edit == "swap":
        _edit(path, "UPDATE embeddings SET sealed = ? WHERE image_ref = ?", blob2, ref1)
    elif edit == "det_score":
        _edit(path, "UPDATE embeddings SET det_score = 0.99 WHERE image_ref = ?", ref1)
    else:
        flipped = bytearray(blob1)
        flipped[30] ^= 1
        _edit(path, "UPDATE embeddings SET sealed = ? WHERE image_ref = ?", bytes(flipped), ref1)
    with EmbeddingCache(path) as cache, pytest.raises(CacheError) as caught:
        cache.get_many([sha(1), sha(2)], KEY)
    message = str(caught.value)
    assert "\n" not in message and "delete it" in message and str(path) in message
    assert caught.value.exit_code == 12


def test_another_installations_key_cannot_open_it(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "cache" / "e.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many(ENTRIES, KEY)
    monkeypatch.setenv("LFR_EVAL_DATA_KEY_FILE", str(tmp_path / "other-keys" / "ring.json"))
    clear_cache()
    try:
        with pytest.raises(CacheError) as caught, EmbeddingCache(path) as cache:
            cache.get_many([sha(1)], KEY)
        message = str(caught.value)
        assert "\n" not in message and "not in this installation's key ring" in message
        assert "recomputed" in message
    finally:
        clear_cache()


def _layout_1(path: Path) -> None:
    """A cache as version 1 wrote it: image hashes and embeddings in clear."""
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.execute(
            "CREATE TABLE engines (engine_key TEXT PRIMARY KEY, engine_json TEXT NOT NULL, "
            "created TEXT NOT NULL)"
        )
        db.execute(
            "CREATE TABLE embeddings (image_sha256 TEXT NOT NULL, engine_key TEXT NOT NULL, "
            "n_faces INTEGER NOT NULL, embedding BLOB, failure TEXT, det_score REAL, "
            "face_size_px REAL, created TEXT NOT NULL, PRIMARY KEY (image_sha256, engine_key))"
        )
        for e in ENTRIES:
            db.execute(
                "INSERT INTO embeddings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    e.image_sha256,
                    KEY,
                    e.n_faces,
                    None if e.embedding is None else e.embedding.astype("<f4").tobytes(),
                    e.failure,
                    None if np.isnan(e.det_score) else e.det_score,
                    None if np.isnan(e.face_size_px) else e.face_size_px,
                    "2026-11-30T10:00:00+00:00",
                ),
            )
    db.close()


def test_a_layout_1_cache_is_sealed_in_place_and_keeps_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _layout_1(path)
    assert ENTRIES[0].image_sha256.encode() in path.read_bytes()  # the premise: in clear
    with EmbeddingCache(path) as cache:
        got = cache.get_many([e.image_sha256 for e in ENTRIES], KEY)
    np.testing.assert_array_equal(got[sha(2)].embedding, ENTRIES[1].embedding)
    assert got[sha(3)].failure == ENTRIES[2].failure
    assert_nothing_in_clear(path)  # vacuumed: no clear template left in free pages
    db = sqlite3.connect(path)
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    created = {r[0] for r in db.execute("SELECT created FROM embeddings")}
    db.close()
    assert version == str(CACHE_SCHEMA_VERSION)
    assert created == {"2026-11-30T10:00:00+00:00"}  # retention still counts from the original


def test_a_layout_1_cache_whose_sealing_fails_is_left_as_it_was(tmp_path: Path, monkeypatch):
    path = tmp_path / "old.sqlite"
    _layout_1(path)
    before = sqlite3.connect(path).execute("SELECT * FROM embeddings ORDER BY 1").fetchall()
    calls = {"n": 0}
    real = Sealer.seal

    def fail_on_third(self: Sealer, plaintext: bytes, ad: bytes) -> bytes:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, plaintext, ad)

    monkeypatch.setattr(Sealer, "seal", fail_on_third)
    with pytest.raises(OSError, match="disk full"):
        EmbeddingCache(path)
    monkeypatch.setattr(Sealer, "seal", real)
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    after = db.execute("SELECT * FROM embeddings ORDER BY 1").fetchall()
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    db.close()
    assert tables == {"meta", "engines", "embeddings"} and version == "1" and after == before
    with EmbeddingCache(path) as cache:  # the next open seals it
        assert len(cache.get_many([e.image_sha256 for e in ENTRIES], KEY)) == 3
