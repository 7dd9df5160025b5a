"""Review of the sealed embedding cache (layout 2): the cases its own tests left open.

Genuine entries whose clear columns do not survive SQLite unchanged (``-0.0``), edited column
types and meta rows that must end in a one-line :class:`CacheError` (never a traceback), two
processes opening or writing the same cache (a migration racing another opener, a rotation while
the app holds the cache open, a lock held past the timeout), retention that an edited ``created``
must not dodge unnoticed, and a key rotation that a damaged cache must stop before anything is
re-encrypted.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from cli_support import run

from lfr_eval.atrest import clear_cache, load_key_ring, rotate_key_ring
from lfr_eval.datasets import _cache
from lfr_eval.datasets._cache import CachedEmbedding, EmbeddingCache
from lfr_eval.distributed import ShardKeys
from lfr_eval.errors import CacheError
from lfr_eval.faces import EngineId, ModelFile
from lfr_eval.retention import purge_workspace
from lfr_eval.watchlist import SubjectInfo, Watchlist
from tests.test_cache_at_rest import KEY, _edit, sha
from tests.test_cache_at_rest import unit as _unit


def unit(seed: int) -> np.ndarray:
    """16-d, as the fake watchlist engine below produces."""
    return _unit(seed, 16)


def _one_line(exc: BaseException, path: Path) -> str:
    message = str(exc)
    assert "\n" not in message and str(path) in message
    return message


@pytest.fixture()
def own_key_ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A key ring of this test's own (rotations must not touch the session's ring)."""
    monkeypatch.setenv("LFR_EVAL_DATA_KEY_FILE", str(tmp_path / "keys" / "ring.json"))
    clear_cache()
    yield
    clear_cache()


# ---------------------------------------------------------------------- associated data
@pytest.mark.parametrize(
    ("det", "size"),
    [
        (-0.0, 12.0),  # SQLite keeps a REAL of integral value as an integer: the sign is lost
        (0.5, -0.0),
        (np.float32(0.7), np.float32(33.3)),  # what an engine hands over
        (float("inf"), 2.0**53 + 1),
    ],
)
def test_a_genuine_entry_opens_whatever_its_scores(tmp_path: Path, det, size) -> None:
    path = tmp_path / "e.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many([CachedEmbedding(sha(1), 1, unit(1), None, det, size)], KEY)
    with EmbeddingCache(path) as cache:
        got = cache.get_many([sha(1)], KEY)[sha(1)]
    np.testing.assert_array_equal(got.embedding, unit(1))
    assert got.det_score == float(det) and got.face_size_px == float(size)


def test_a_genuine_entry_with_negative_zero_survives_rekey(tmp_path: Path, own_key_ring) -> None:
    path = tmp_path / "e.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many([CachedEmbedding(sha(1), 1, unit(1), None, -0.0, -0.0)], KEY)
    rotate_key_ring()
    with EmbeddingCache(path) as cache:
        assert cache.rekey() == 1
    with EmbeddingCache(path) as cache:
        assert cache.get_many([sha(1)], KEY)[sha(1)].det_score == 0.0


# ---------------------------------------------------------------------- edited files
@pytest.mark.parametrize("value", ["a text", 1.5, 2**62])
def test_a_sealed_column_of_another_type_is_a_one_line_cache_error(
    tmp_path: Path, value: object
) -> None:
    # 2**62: ``bytes(n)`` of an integer would try to allocate n zero bytes
    path = tmp_path / "e.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many([CachedEmbedding(sha(1), 1, unit(1), None, 0.5, 3.0)], KEY)
    _edit(path, "UPDATE embeddings SET sealed = ?", value)
    with EmbeddingCache(path) as cache, pytest.raises(CacheError) as caught:
        cache.get_many([sha(1)], KEY)
    assert "delete it" in _one_line(caught.value, path) and caught.value.exit_code == 12


@pytest.mark.parametrize("missing", ["cache_id", "key_id"])
def test_a_meta_without_its_ids_is_a_one_line_cache_error(tmp_path: Path, missing: str) -> None:
    path = tmp_path / "e.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many([CachedEmbedding(sha(1), 1, unit(1), None, 0.5, 3.0)], KEY)
    _edit(path, "DELETE FROM meta WHERE key = ?", missing)
    with pytest.raises(CacheError) as caught:
        EmbeddingCache(path)
    message = _one_line(caught.value, path)
    assert missing in message and "delete" in message


def test_a_layout_2_file_without_its_table_is_an_empty_cache(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many([CachedEmbedding(sha(1), 1, unit(1), None, 0.5, 3.0)], KEY)
    _edit(path, "DROP TABLE embeddings")
    with EmbeddingCache(path) as cache:
        assert cache.count() == 0 and cache.get_many([sha(1)], KEY) == {}


# ---------------------------------------------------------------------- retention
def test_an_entry_whose_created_was_edited_does_not_dodge_the_purge_unnoticed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "e.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many([CachedEmbedding(sha(i), 1, unit(i), None, 0.5, 3.0) for i in (1, 2)], KEY)
    ref = sqlite3.connect(path).execute("SELECT image_ref FROM embeddings").fetchone()[0]
    _edit(
        path, "UPDATE embeddings SET created = '2099-01-01T00:00:00+00:00' WHERE image_ref = ?", ref
    )
    with EmbeddingCache(path) as cache, pytest.raises(CacheError) as caught:
        cache.purge_older_than(datetime.now(timezone.utc) + timedelta(days=1))
    assert "delete it" in _one_line(caught.value, path)
    # the genuine expired entry went all the same
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 1


def test_the_workspace_purge_reports_an_edited_cache(workspace: Path) -> None:
    with EmbeddingCache.in_workspace(workspace) as cache:
        cache.put_many([CachedEmbedding(sha(1), 1, unit(1), None, 0.5, 3.0)], KEY)
        path = cache.path
    _edit(path, "UPDATE embeddings SET created = 'never'")
    summary = purge_workspace(workspace)
    assert any(s.startswith("embedding cache: ") and "delete it" in s for s in summary.skipped)


# ---------------------------------------------------------------------- concurrency
def _layout_1(path: Path) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.execute(
            "CREATE TABLE embeddings (image_sha256 TEXT NOT NULL, engine_key TEXT NOT NULL, "
            "n_faces INTEGER NOT NULL, embedding BLOB, failure TEXT, det_score REAL, "
            "face_size_px REAL, created TEXT NOT NULL, PRIMARY KEY (image_sha256, engine_key))"
        )
        db.execute(
            "INSERT INTO embeddings VALUES (?, ?, 1, ?, NULL, 0.5, 3.0, ?)",
            (sha(1), KEY, unit(1).astype("<f4").tobytes(), "2026-11-30T10:00:00+00:00"),
        )
    db.close()


def test_a_migration_racing_another_opener_leaves_both_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both openers read layout 1; the other one seals the file first (the app and the CLI
    starting together): this one must then use the sealed file, not seal it again."""
    path = tmp_path / "old.sqlite"
    _layout_1(path)
    real = EmbeddingCache._seal_layout_1
    raced: dict[str, EmbeddingCache] = {}
    calls = {"n": 0}

    def other_opener_first(self: EmbeddingCache) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raced["other"] = EmbeddingCache(path)  # runs the real migration to the end
        real(self)

    monkeypatch.setattr(EmbeddingCache, "_seal_layout_1", other_opener_first)
    with EmbeddingCache(path) as cache:
        assert cache.get_many([sha(1)], KEY)[sha(1)].n_faces == 1
    with raced["other"] as other:
        assert other.get_many([sha(1)], KEY)[sha(1)].n_faces == 1


def test_two_openers_creating_one_cache_agree_on_its_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both find the new file empty; the other one writes its ids first: this one must take
    them, not overwrite them (the other's entries would be sealed under ids the file lost)."""
    path = tmp_path / "new.sqlite"
    real = EmbeddingCache._new_meta
    raced: dict[str, EmbeddingCache] = {}
    calls = {"n": 0}

    def other_opener_first(self: EmbeddingCache, **kwargs: bool) -> dict[str, str]:
        calls["n"] += 1
        if calls["n"] == 1:
            raced["other"] = EmbeddingCache(path)
        return real(self, **kwargs)

    monkeypatch.setattr(EmbeddingCache, "_new_meta", other_opener_first)
    with EmbeddingCache(path) as cache, raced["other"] as other:
        other.put_many([CachedEmbedding(sha(1), 1, unit(1), None, 0.5, 3.0)], KEY)
        assert sha(1) in cache.get_many([sha(1)], KEY)
    monkeypatch.setattr(EmbeddingCache, "_new_meta", real)
    with EmbeddingCache(path) as fresh:
        assert fresh.verify() == 1


def test_a_cache_held_open_while_another_process_rekeys_it_stays_consistent(
    tmp_path: Path, own_key_ring
) -> None:
    """The app holds the cache open; ``keys rotate-data`` re-keys it meanwhile. The app's
    next writes must be sealed under the file's new key, and it must still find entries."""
    path = tmp_path / "e.sqlite"
    app = EmbeddingCache(path)
    app.put_many([CachedEmbedding(sha(1), 1, unit(1), None, 0.5, 3.0)], KEY)
    rotate_key_ring()
    with EmbeddingCache(path) as cli:
        assert cli.rekey() == 1
    assert sha(1) in app.get_many([sha(1)], KEY)
    app.put_many([CachedEmbedding(sha(2), 1, unit(2), None, 0.5, 3.0)], KEY)
    app.close()
    with EmbeddingCache(path) as cache:
        got = cache.get_many([sha(1), sha(2)], KEY)
        cache.verify()
    assert set(got) == {sha(1), sha(2)}


def test_a_cache_locked_past_the_timeout_is_a_one_line_error_not_delete_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cache, "BUSY_TIMEOUT_S", 0.2, raising=False)
    path = tmp_path / "e.sqlite"
    cache = EmbeddingCache(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing a long batch
    try:
        with pytest.raises(CacheError) as caught:
            cache.put_many([CachedEmbedding(sha(1), 1, unit(1), None, 0.5, 3.0)], KEY)
        message = _one_line(caught.value, path)
        assert "locked" in message and "delete" not in message
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        cache.close()


# ---------------------------------------------------------------------- key rotation
ENGINE = EngineId("fake", (ModelFile("recognizer", "rec_a.onnx", "a" * 64),), 16)


def test_a_damaged_cache_stops_the_rotation_before_anything_is_re_encrypted(
    workspace: Path, capsys, own_key_ring
) -> None:
    wl = Watchlist.open(workspace=workspace)
    wl.add_subject(SubjectInfo("case-1", "Jane Doe"))
    wl.add_template("case-1", unit(1), ENGINE)
    with EmbeddingCache.in_workspace(workspace) as cache:
        cache.put_many([CachedEmbedding(sha(1), 1, unit(2), None, 0.5, 3.0)], KEY)
        path = cache.path
    _edit(path, "UPDATE embeddings SET det_score = 0.99")
    old = load_key_ring().current
    code, out, err = run(capsys, "keys", "rotate-data", "--workspace", workspace, "--forget-old")
    assert code == 12, (out, err)
    assert str(path) in err and "Traceback" not in err
    clear_cache()
    ring = load_key_ring()
    assert ring.current == old and list(ring.keys) == [old]  # nothing rotated
    assert Watchlist.open(workspace=workspace).key_id == old  # nothing re-encrypted


def test_data_status_names_the_cache_key(workspace: Path, capsys, own_key_ring) -> None:
    with EmbeddingCache.in_workspace(workspace) as cache:
        cache.put_many([CachedEmbedding(sha(1), 1, unit(2), None, 0.5, 3.0)], KEY)
    code, out, _ = run(capsys, "keys", "data-status", "--workspace", workspace, "--json")
    assert code == 0
    assert json.loads(out)["stores"]["embedding cache"] == load_key_ring().current


def test_data_status_says_a_layout_1_cache_is_not_sealed(
    workspace: Path, capsys, own_key_ring
) -> None:
    load_key_ring()
    path = workspace / "cache" / "embeddings.sqlite"
    path.parent.mkdir()
    _layout_1(path)
    code, out, _ = run(capsys, "keys", "data-status", "--workspace", workspace)
    assert code == 0 and "embedding cache: not sealed" in out


def test_a_shard_name_does_not_tell_which_images_it_holds(
    workspace: Path, own_key_ring
) -> None:
    """A shard's file name (and its Dask task key) was the plain sha256 of the image hashes it
    held: whoever had the images and guessed the shard size could confirm from the names alone
    that a run embedded them. It is now keyed by the cache's pseudonym key."""
    import hashlib

    hashes = [sha(1), sha(2)]
    unkeyed = hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:32]
    with EmbeddingCache.in_workspace(workspace) as cache:
        name = cache.shard_keys().shard_id(hashes)
        assert cache.shard_keys().shard_id(hashes) == name  # a resumed run finds the same name
    with EmbeddingCache.in_workspace(workspace) as cache:
        assert cache.shard_keys().shard_id(hashes) == name  # and so does the next process
        assert cache.shard_keys().shard_id(hashes[::-1]) != name  # order is part of the name
    assert name != unkeyed and len(name) == 32
    assert unkeyed not in {ShardKeys.ephemeral().shard_id(hashes) for _ in range(3)}


def test_cache_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "e.sqlite"
    with EmbeddingCache(path) as cache:
        cache.put_many([CachedEmbedding(sha(1), 1, unit(1), None, 0.5, 3.0)], KEY)
        for side in ("", "-wal", "-shm"):
            f = Path(str(path) + side)
            if f.exists():
                assert os.stat(f).st_mode & 0o077 == 0, side


def test_every_file_of_a_results_folder_is_owner_only(tmp_path: Path) -> None:
    from test_results import synthetic_result

    folder = synthetic_result(n_mated=30, n_non_mated=90).save(tmp_path / "run")
    modes = {p.name: os.stat(p).st_mode & 0o077 for p in folder.iterdir()}
    assert modes and all(mode == 0 for mode in modes.values()), modes
