"""Workspace retention with an injected clock (alerts, watchlist expiry, exports, embedding
cache), ``lfr-eval purge`` for cron, and ``lfr-eval keys rotate-data``."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from cli_support import run

from lfr_eval.atrest import ENV_ACTOR, clear_cache, load_key_ring
from lfr_eval.datasets._cache import CachedEmbedding, EmbeddingCache
from lfr_eval.faces import EngineId, ModelFile
from lfr_eval.live import ALERTS_DB, AlertStore, LiveAlert
from lfr_eval.retention import RetentionSettings, purge_workspace, read_purge_log
from lfr_eval.watchlist import SubjectInfo, Watchlist

ENGINE = EngineId("fake", (ModelFile("recognizer", "rec_a.onnx", "a" * 64),), 16)


def unit(seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(16).astype(np.float32)
    return x / np.linalg.norm(x)


def fill_workspace(ws: Path, now: datetime) -> None:
    """One of everything (alert, expiring subject, export, cache entry), all made at ``now``."""
    store = AlertStore.open(ws, clock=lambda: now)
    store.add(
        LiveAlert(
            "a1",
            "s1",
            1,
            "case-1",
            "Jane Doe",
            0.95,
            0.9,
            now,
            0.2,
            np.full((40, 40, 3), 120, np.uint8),
        )
    )
    wl = Watchlist.open(workspace=ws, clock=lambda: now)
    wl.add_subject(SubjectInfo("case-1", "Jane Doe", expires=now + timedelta(days=1)))
    wl.add_template("case-1", unit(1), ENGINE)
    wl.add_subject(SubjectInfo("case-2", "John Roe"))
    wl.add_template("case-2", unit(2), ENGINE)
    export = ws / "exports" / "watchlist-abc.zip"
    export.parent.mkdir()
    export.write_bytes(b"bundle")
    os.utime(export, (now.timestamp(), now.timestamp()))
    with EmbeddingCache.in_workspace(ws) as cache:
        cache.put_many([CachedEmbedding("f" * 64, 1, unit(3), None, 0.9, 40.0)], "engine-k")


def test_each_store_keeps_data_exactly_as_long_as_its_setting(workspace: Path) -> None:
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    fill_workspace(workspace, t0)
    settings = RetentionSettings(
        alert_capture=timedelta(hours=24),
        watchlist_expiry_grace=timedelta(days=7),
        exports=timedelta(days=30),
        embedding_cache=timedelta(days=90),
    )
    steps = [
        (timedelta(hours=23), (0, 0, 0, 0)),
        (timedelta(hours=24, seconds=1), (1, 0, 0, 0)),  # alert past 24 h
        (timedelta(days=7, hours=23), (0, 0, 0, 0)),  # subject expired, in its grace period
        (timedelta(days=8, seconds=1), (0, 1, 0, 0)),  # expired 1 day + 7 days grace
        (timedelta(days=30, seconds=1), (0, 0, 1, 0)),  # export
        # cache entry (stamped by the real clock while filling, a little after t0)
        (timedelta(days=90, hours=1), (0, 0, 0, 1)),
    ]
    for offset, expected in steps:
        summary = purge_workspace(workspace, settings, now=t0 + offset)
        got = (summary.alerts, summary.watchlist_subjects, summary.exports, summary.cache_entries)
        assert got == expected, (offset, got)
        assert summary.skipped == ()
    wl = Watchlist.open(workspace=workspace, clock=lambda: t0 + timedelta(days=91))
    assert [s.subject_id for s in wl.subjects()] == ["case-2"]
    assert AlertStore.open(workspace, clock=lambda: t0).alerts() == []
    with EmbeddingCache.in_workspace(workspace) as cache:
        assert cache.count() == 0
    assert not any((workspace / "exports").iterdir())
    assert os.stat(workspace / "exports").st_mode & 0o077 == 0  # bundles are clear: owner only
    # the purge log holds counts, never a name, an id or a file name
    log = read_purge_log(workspace)
    assert len(log) == len(steps) and sum(e["alerts"] for e in log) == 1
    text = (workspace / "purge-log.jsonl").read_text()
    for secret in ("Jane", "case-1", "a1", "watchlist-abc", "f" * 64):
        assert secret not in text
    assert os.stat(workspace / "purge-log.jsonl").st_mode & 0o077 == 0


def test_purge_command_for_cron(workspace: Path, capsys, monkeypatch) -> None:
    t0 = datetime.now(timezone.utc) - timedelta(days=100)
    fill_workspace(workspace, t0)
    monkeypatch.setenv("LFR_CACHE_RETENTION_DAYS", "365")
    code, out, _ = run(capsys, "purge", "--workspace", workspace, "--json")
    assert code == 0
    summary = json.loads(out)
    assert (summary["alerts"], summary["watchlist_subjects"], summary["exports"]) == (1, 1, 1)
    assert summary["cache_entries"] == 0  # 365 days asked
    code, out, _ = run(capsys, "purge", "--workspace", workspace)
    assert code == 0 and "purged 0 alerts, 0 watchlist subjects" in out


def test_rotate_data_key_re_encrypts_and_can_forget_the_old_key(
    workspace: Path, capsys, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LFR_EVAL_DATA_KEY_FILE", str(tmp_path / "keys" / "ring.json"))
    monkeypatch.delenv(ENV_ACTOR, raising=False)
    clear_cache()
    try:
        now = datetime.now(timezone.utc)
        fill_workspace(workspace, now)
        wl = Watchlist.open(workspace=workspace)
        before_hash, before_ref = wl.content_hash(), wl.subject_ref("case-2")
        old_key = load_key_ring().current
        code, out, err = run(
            capsys,
            "--actor",
            "admin-3",
            "keys",
            "rotate-data",
            "--workspace",
            workspace,
            "--forget-old",
            "--json",
        )
        monkeypatch.delenv(ENV_ACTOR, raising=False)
        assert code == 0, err
        result = json.loads(out)
        assert result["old_key"] == old_key and result["new_key"] != old_key
        assert result["re_encrypted"] == {"watchlist": 2, "alert store": 1, "embedding cache": 1}
        ring = load_key_ring()
        assert list(ring.keys) == [result["new_key"]]  # the old key is gone
        again = Watchlist.open(workspace=workspace)
        assert again.key_id == result["new_key"] and again.content_hash() == before_hash
        assert again.subject_ref("case-2") != before_ref  # pseudonyms re-keyed too
        assert again.verify_audit() == len(again.audit_log())
        entry = again.audit_log()[-1]
        assert entry.action == "rekey" and entry.actor == "admin-3"
        # the subject's earlier entries follow it to its new pseudonym
        assert [
            e.action for e in again.audit_log() if e.subject_id == again.subject_ref("case-2")
        ] == ["add_subject", "add_template"]
        store = AlertStore.open(workspace, clock=lambda: now)
        assert store.get("a1").subject_name == "Jane Doe"
        with sqlite3.connect(workspace / ALERTS_DB) as db:
            assert (
                db.execute("SELECT value FROM meta WHERE key='key_id'").fetchone()[0]
                == (result["new_key"])
            )
        code, out, _ = run(capsys, "keys", "data-status", "--workspace", workspace, "--json")
        status = json.loads(out)
        assert status["stores"] == {
            "watchlist": result["new_key"],
            "alert store": result["new_key"],
            "embedding cache": result["new_key"],
        }
        # the cache's entries open under the new key alone, found by their re-derived refs
        with EmbeddingCache.in_workspace(workspace) as cache:
            assert cache.key_id == result["new_key"]
            entry = cache.get_many(["f" * 64], "engine-k")["f" * 64]
            np.testing.assert_array_equal(entry.embedding, unit(3))
    finally:
        clear_cache()
