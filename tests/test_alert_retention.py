"""The alert store enforces retention itself (injected clock), seals captures and names, records
the acting officer, and migrates schema-1 stores."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from lfr_eval.live import ALERTS_DB, AlertError, AlertStore, LiveAlert
from lfr_eval.live._alerts import encode_capture

T0 = datetime(2030, 5, 1, 8, 0, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def crop(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth, photo-like content so the JPEG is realistic in size
    base = rng.integers(0, 255, (12, 12, 3)).astype(np.uint8)
    return np.ascontiguousarray(np.kron(base, np.ones((10, 10, 1), np.uint8)))


def alert(n: int, raised_at: datetime, *, name: str = "Jane Doe") -> LiveAlert:
    return LiveAlert(
        alert_id=f"a{n}",
        session_id="s1",
        track_id=n,
        subject_id=f"jane-doe-{n}",
        subject_name=name,
        score=0.95,
        threshold=0.9,
        raised_at=raised_at,
        time_to_alert_s=0.4,
        capture=crop(n),
    )


def test_expired_alerts_are_never_returned(workspace: Path) -> None:
    clock = Clock(T0)
    store = AlertStore.open(workspace, retention=timedelta(hours=24), clock=clock)
    store.add(alert(1, T0))
    assert [a.alert_id for a in store.alerts()] == ["a1"]
    clock.now = T0 + timedelta(hours=24)  # nobody has purged yet
    assert store.alerts() == []
    for read in (store.get, store.capture, store.capture_jpeg):
        with pytest.raises(AlertError, match="purged"):
            read("a1")
    with pytest.raises(AlertError, match="purged"):
        store.review("a1", "confirmed", "PC 1")


def test_purged_on_open_and_on_add(workspace: Path) -> None:
    clock = Clock(T0)
    store = AlertStore.open(workspace, clock=clock)
    store.add(alert(1, T0))
    store.add(alert(2, T0 + timedelta(hours=1)))
    clock.now = T0 + timedelta(hours=24, minutes=1)
    AlertStore.open(workspace, clock=clock)  # opening purges
    assert [e.alert_id for e in store.purge_log()] == ["a1"]
    clock.now = T0 + timedelta(hours=25, minutes=1)
    store.add(alert(3, clock.now))  # adding purges
    assert {e.alert_id for e in store.purge_log()} == {"a1", "a2"}
    with sqlite3.connect(store.path) as db:
        assert [r[0] for r in db.execute("SELECT alert_id FROM alerts")] == ["a3"]


def test_purge_timer_runs_while_the_app_runs(workspace: Path) -> None:
    clock = Clock(T0)
    store = AlertStore.open(workspace, retention=timedelta(minutes=5), clock=clock)
    store.add(alert(1, T0))
    store.start_purge_timer(timedelta(milliseconds=50))
    store.start_purge_timer(timedelta(milliseconds=50))  # a rerun: still one timer
    try:
        clock.now = T0 + timedelta(minutes=6)
        deadline = time.monotonic() + 10
        while not store.purge_log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e.alert_id for e in store.purge_log()] == ["a1"]
    finally:
        store.stop_purge_timer()


def test_captures_names_and_ids_are_sealed(workspace: Path) -> None:
    store = AlertStore.open(workspace, clock=Clock(T0))
    store.add(alert(1, T0, name="Jane Doe"))
    raw = store.path.read_bytes()
    jpeg = encode_capture(crop(1))
    assert store.capture_jpeg("a1") == jpeg
    for secret in (b"Jane Doe", "Jane Doe".encode("utf-16-le"), b"jane-doe-1"):
        assert secret not in raw
    # no 64-byte piece of the JPEG body (after the shared JFIF header) is in the file
    assert not any(jpeg[i : i + 64] in raw for i in range(200, len(jpeg) - 64, 64))
    assert store.get("a1").subject_name == "Jane Doe"
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700


def test_an_edited_score_or_expiry_makes_the_alert_unreadable(workspace: Path) -> None:
    store = AlertStore.open(workspace, clock=Clock(T0))
    store.add(alert(1, T0))
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE alerts SET expires_at = expires_at + 86400 * 365, score = 0.99")
    with pytest.raises(AlertError, match="changed outside lfr-eval"):
        store.alerts()


def test_decisions_record_the_acting_user(workspace: Path) -> None:
    store = AlertStore.open(workspace, actor="PC 4711", clock=Clock(T0))
    store.add(alert(1, T0))
    store.add(alert(2, T0))
    assert store.review("a1", "confirmed").reviewer == "PC 4711"
    assert store.review("a2", "rejected", "Sgt 12").reviewer == "Sgt 12"


def test_schema_1_store_is_sealed_on_open(workspace: Path) -> None:
    path = workspace / ALERTS_DB
    path.parent.mkdir(parents=True)
    jpeg = encode_capture(crop(7))
    raised = T0.timestamp()
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE alerts (alert_id TEXT PRIMARY KEY, session_id TEXT NOT NULL,
              track_id INTEGER NOT NULL, subject_id TEXT NOT NULL, subject_name TEXT NOT NULL,
              score REAL NOT NULL, threshold REAL NOT NULL, raised_at REAL NOT NULL,
              time_to_alert_s REAL NOT NULL, expires_at REAL NOT NULL, capture BLOB NOT NULL,
              decision TEXT, reviewer TEXT, decided_at REAL, CHECK (score >= threshold));
            CREATE TABLE purge_log (alert_id TEXT PRIMARY KEY, session_id TEXT NOT NULL,
              raised_at REAL NOT NULL, purged_at REAL NOT NULL, decision TEXT,
              time_to_decision_s REAL);
            """
        )
        db.execute(
            "INSERT INTO alerts VALUES ('a7', 's1', 7, 'old-case', 'Old Name', 0.95, 0.9, ?, 0.3, "
            "?, ?, 'confirmed', 'PC 1', ?)",
            (raised, raised + 86400, jpeg, raised + 30),
        )
    assert b"Old Name" in path.read_bytes()
    store = AlertStore.open(workspace, clock=Clock(T0))
    record = store.get("a7")
    assert (record.subject_name, record.decision, record.reviewer) == (
        "Old Name",
        "confirmed",
        "PC 1",
    )
    assert store.capture_jpeg("a7") == jpeg
    raw = path.read_bytes()
    assert b"Old Name" not in raw and b"old-case" not in raw and jpeg[300:364] not in raw
