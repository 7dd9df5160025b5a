"""Alerts are stored off the recognition thread: a failing or locked alert store never stops
recognition, and an alert whose write failed is stored when the write is retried."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from live_support import LivePeople, inline_pipeline

from lfr_eval.live import (
    AlertStore,
    FaceAppearance,
    LiveAlert,
    LiveSession,
    SceneScript,
)
from lfr_eval.live._writer import AlertWriter


class FlakyStore:
    """The real alert store, whose first ``failures`` writes fail as a locked database does."""

    def __init__(self, store: AlertStore, failures: int = 1) -> None:
        self._store = store
        self.failures = failures
        self.attempts = 0
        self.retention = store.retention

    def add(self, alert: LiveAlert):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise sqlite3.OperationalError("database is locked")
        return self._store.add(alert)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def _scene(people: LivePeople) -> SceneScript:
    """The listed person from 0.3 s, a stranger joining at 1.5 s (a face to recognise after the
    alert), 10 fps, 3 s."""
    return SceneScript(
        (
            FaceAppearance(people.camera_photo, 0.3, 3.0, 40, 120, width=200, label="listed"),
            FaceAppearance(people.strangers[0], 1.5, 3.0, 380, 120, width=200, label="stranger"),
        ),
        duration_s=3.0,
        fps=10,
    )


def test_failing_alert_write_does_not_stop_recognition_and_is_stored_on_retry(
    dlib_engine, people, threshold, watchlist, workspace
) -> None:
    store = AlertStore.open(workspace)
    flaky = FlakyStore(store, failures=1)
    session = LiveSession(flaky)  # type: ignore[arg-type]
    session.writer.retry_initial_s = 0.05  # type: ignore[union-attr]
    pipeline = inline_pipeline(dlib_engine, watchlist, threshold, session)
    scene = _scene(people)
    results = [pipeline.process(f, scene.frame_time(i)) for i, f in enumerate(scene.frames())]
    # recognition went on after the failed write: the stranger who came later was found
    assert pipeline.error is None
    assert results[-1].n_alerting == 1 and len(results[-1].tracks) == 2
    assert session.stats().alerts == 1 and session.stats().faces_seen == 2
    assert session.flush(timeout=20)
    status = session.writer_status()
    assert status.failed_attempts == 1 and status.lost == 0 and status.written == 1
    assert "database is locked" in status.last_error
    (stored,) = store.alerts()
    assert stored.subject_id == "listed-1" and flaky.attempts == 2
    # the stored alert can be reviewed, and the counts the page shows follow
    session.review(stored.alert_id, "confirmed", "PC 1")
    assert session.stats().confirmed == 1


def test_locked_database_does_not_stall_recognition(
    dlib_engine, people, threshold, watchlist, workspace
) -> None:
    """Another process holds the alert database's write lock while the alert is raised."""
    store = AlertStore.open(workspace)
    session = LiveSession(store)
    pipeline = inline_pipeline(dlib_engine, watchlist, threshold, session)
    blocker = sqlite3.connect(store.path, timeout=1, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        scene = _scene(people)
        results = [pipeline.process(f, scene.frame_time(i)) for i, f in enumerate(scene.frames())]
        # every frame was recognised while the store was locked; the alert is counted, not lost
        assert results[-1].n_alerting == 1 and pipeline.error is None
        assert session.stats().alerts == 1
        assert session.writer_status().pending == 1
    finally:
        blocker.rollback()
        blocker.close()
    assert session.flush(timeout=40)
    assert [a.subject_id for a in store.alerts()] == ["listed-1"]
    assert session.writer_status().lost == 0


def _alert(n: int, score: float = 0.95) -> LiveAlert:
    return LiveAlert(
        f"a{n}",
        "s",
        n,
        "listed-1",
        "Listed",
        score,
        0.9,
        datetime.now(timezone.utc),
        0.4,
        np.full((60, 60, 3), 120, np.uint8),
    )


def test_refused_alert_and_full_queue_are_counted_as_lost(workspace: Path) -> None:
    store = AlertStore.open(workspace)
    writer = AlertWriter(store, capacity=2)
    assert writer.submit(_alert(1, score=0.5))  # below its threshold: the store refuses it
    assert writer.flush(10)
    status = writer.status()
    assert status.lost == 1 and "refused" in status.last_error and store.alerts() == []

    gate = threading.Event()

    class SlowStore:
        def add(self, alert):
            gate.wait(10)
            return store.add(alert)

        def get(self, alert_id):
            return store.get(alert_id)

    slow = AlertWriter(SlowStore(), capacity=1)
    assert slow.submit(_alert(2))  # taken by the writer thread, waiting on the gate
    deadline = threading.Event()
    while slow._queue.qsize() and not deadline.wait(0.01):
        pass
    assert slow.submit(_alert(3))  # waits in the queue
    assert not slow.submit(_alert(4))  # queue full: counted, not silently dropped
    assert slow.status().lost == 1 and "already waiting" in slow.status().last_error
    gate.set()
    final = slow.close(10)
    assert final.written == 2 and final.pending == 0
    assert sorted(a.alert_id for a in store.alerts()) == ["a2", "a3"]
