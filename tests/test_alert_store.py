"""AlertStore: alert captures kept for the retention period, purged after, officer review."""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from lfr_eval.faces import load_image
from lfr_eval.live import (
    ALERTS_DB,
    MSG_UNKNOWN_ALERT,
    AlertError,
    AlertStore,
    LiveAlert,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def at_t0() -> datetime:
    """The injected clock: alerts raised at T0 are fresh, whatever today's date."""
    return T0


@pytest.fixture(scope="module")
def face_crops(insightface_images: Path) -> list[np.ndarray]:
    """Real face crops from the group photo t1.jpg (an alert capture is a crop like these)."""
    group = load_image(insightface_images / "t1.jpg")
    # crops around three of the six faces (dlib's boxes on t1.jpg plus a margin, checked by eye)
    crops = [group[40:225, 840:1030], group[255:420, 40:205], group[265:430, 420:590]]
    return [np.ascontiguousarray(c) for c in crops]


def fragments_in_file(data: bytes, path: Path, *, unlike: bytes = b"") -> float:
    """Share of 64-byte pieces of ``data`` found in the file (blobs span SQLite overflow pages).

    Pieces that also occur in ``unlike`` (e.g. the JPEG tables every capture shares) are skipped.
    """
    content = path.read_bytes()
    pieces = [data[i : i + 64] for i in range(0, len(data) - 64, 256)]
    pieces = [piece for piece in pieces if piece not in unlike]
    return sum(piece in content for piece in pieces) / len(pieces)


def make_alert(
    capture: np.ndarray,
    n: int = 0,
    *,
    score: float = 0.95,
    threshold: float = 0.92,
    raised_at: datetime = T0,
    session: str = "s1",
) -> LiveAlert:
    return LiveAlert(
        alert_id=f"a{n}",
        session_id=session,
        track_id=n,
        subject_id=f"case-{n}",
        subject_name=f"Person {n}",
        score=score,
        threshold=threshold,
        raised_at=raised_at,
        time_to_alert_s=0.3,
        capture=capture,
    )


def test_store_lives_in_the_workspace(workspace: Path) -> None:
    store = AlertStore.open(workspace, clock=at_t0)
    assert store.path == workspace / ALERTS_DB
    assert store.path.is_file()
    assert store.retention == timedelta(hours=24)


def test_add_and_read_back(workspace: Path, face_crops: list[np.ndarray]) -> None:
    store = AlertStore.open(workspace, clock=at_t0)
    record = store.add(make_alert(face_crops[0], 1))
    assert record.subject_name == "Person 1" and record.score == pytest.approx(0.95)
    assert record.raised_at == T0 and record.expires_at == T0 + timedelta(hours=24)
    assert record.decision is None and record.time_to_decision_s is None
    capture = store.capture("a1")
    assert capture.shape == face_crops[0].shape
    # JPEG is lossy, but the officer must see the same face
    assert np.abs(capture.astype(int) - face_crops[0].astype(int)).mean() < 4
    assert [a.alert_id for a in store.alerts()] == ["a1"]
    assert store.alerts(session_id="other") == []


def test_non_matching_capture_is_never_written(workspace: Path, face_crops) -> None:
    store = AlertStore.open(workspace, clock=at_t0)
    with pytest.raises(AlertError, match="never written"):
        store.add(make_alert(face_crops[0], 1, score=0.80, threshold=0.92))
    assert store.alerts() == []
    jpeg_start = bytes([0xFF, 0xD8, 0xFF])
    assert jpeg_start not in store.path.read_bytes()


def test_review_confirm_and_reject(workspace: Path, face_crops) -> None:
    store = AlertStore.open(workspace, clock=at_t0)
    store.add(make_alert(face_crops[0], 1))
    store.add(make_alert(face_crops[1], 2))
    confirmed = store.review("a1", "confirmed", "PC 1234", now=T0 + timedelta(seconds=40))
    rejected = store.review("a2", "rejected", "PC 1234", now=T0 + timedelta(seconds=70))
    assert confirmed.decision == "confirmed" and confirmed.reviewer == "PC 1234"
    assert confirmed.time_to_decision_s == pytest.approx(40)
    assert rejected.decision == "rejected" and rejected.time_to_decision_s == pytest.approx(70)
    counts = store.review_counts("s1")
    assert (counts.alerts, counts.confirmed, counts.rejected, counts.pending) == (2, 1, 1, 0)
    assert counts.median_time_to_decision_s == pytest.approx(55)


def test_review_is_refused_when_it_cannot_be_recorded(workspace: Path, face_crops) -> None:
    store = AlertStore.open(workspace, clock=at_t0)
    store.add(make_alert(face_crops[0], 1))
    with pytest.raises(AlertError, match="must be 'confirmed' or 'rejected'"):
        store.review("a1", "maybe", "PC 1")  # type: ignore[arg-type]
    with pytest.raises(AlertError, match="officer"):
        store.review("a1", "confirmed", "  ")
    with pytest.raises(AlertError, match="purged"):
        store.review("nope", "confirmed", "PC 1")
    store.review("a1", "rejected", "PC 1")
    with pytest.raises(AlertError, match="already rejected by PC 1"):
        store.review("a1", "confirmed", "PC 2")
    assert store.get("a1").decision == "rejected"


def test_purge_after_retention(workspace: Path, face_crops, caplog) -> None:
    store = AlertStore.open(workspace, clock=at_t0)
    store.add(make_alert(face_crops[0], 1, raised_at=T0))
    store.add(make_alert(face_crops[1], 2, raised_at=T0 + timedelta(hours=2)))
    store.review("a1", "confirmed", "PC 7", now=T0 + timedelta(minutes=1))
    jpeg_a1, jpeg_a2 = store.capture_jpeg("a1"), store.capture_jpeg("a2")
    # encrypted at rest: the JPEG is not in the file, its sealed form is
    assert fragments_in_file(jpeg_a1, store.path, unlike=jpeg_a2) == 0
    with sqlite3.connect(store.path) as db:
        sealed = dict(db.execute("SELECT alert_id, capture FROM alerts").fetchall())
    sealed_a1, sealed_a2 = bytes(sealed["a1"]), bytes(sealed["a2"])
    assert fragments_in_file(sealed_a1, store.path) > 0.9

    assert store.purge_expired(T0 + timedelta(hours=23, minutes=59)).count == 0
    assert len(store.alerts()) == 2

    with caplog.at_level(logging.INFO, logger="lfr_eval.live"):
        report = store.purge_expired(T0 + timedelta(hours=24))
    assert report.alert_ids == ("a1",)
    assert "purged 1 alert and" in caplog.text  # a count, never a face or a name
    assert [a.alert_id for a in store.alerts()] == ["a2"]
    with pytest.raises(AlertError, match="purged"):
        store.capture("a1")
    # irretrievable: the JPEG bytes are gone from the file itself, not just unlinked
    assert fragments_in_file(sealed_a1, store.path) == 0
    assert fragments_in_file(sealed_a2, store.path) > 0.9

    (entry,) = store.purge_log()
    assert entry.alert_id == "a1" and entry.decision == "confirmed"
    assert entry.purged_at == T0 + timedelta(hours=24)
    assert entry.time_to_decision_s == pytest.approx(60)
    # the purge log keeps no face, subject or score
    with sqlite3.connect(store.path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(purge_log)")]
    assert not {"capture", "subject_id", "subject_name", "score"} & set(columns)
    # deployment counts survive the purge
    counts = store.review_counts("s1")
    assert (counts.alerts, counts.confirmed, counts.pending) == (2, 1, 1)

    assert store.purge_expired(T0 + timedelta(hours=26)).alert_ids == ("a2",)
    assert store.alerts() == []


def test_retention_is_configurable(workspace: Path, face_crops) -> None:
    store = AlertStore.open(workspace, clock=at_t0, retention=timedelta(hours=1))
    record = store.add(make_alert(face_crops[0], 1))
    assert record.expires_at == T0 + timedelta(hours=1)
    assert store.purge_expired(T0 + timedelta(minutes=61)).count == 1
    with pytest.raises(ValueError, match="negative"):
        AlertStore.open(workspace, clock=at_t0, retention=timedelta(hours=-1))


def test_shorter_retention_applies_to_alerts_already_stored(workspace: Path, face_crops) -> None:
    AlertStore.open(workspace, clock=at_t0).add(make_alert(face_crops[0], 1))  # stored under 24 h
    strict = AlertStore.open(workspace, clock=at_t0, retention=timedelta(hours=2))
    assert strict.purge_expired(T0 + timedelta(hours=1)).count == 0
    assert strict.purge_expired(T0 + timedelta(hours=2)).alert_ids == ("a1",)


def test_purge_accepts_epoch_seconds_and_refuses_naive_times(workspace: Path, face_crops) -> None:
    store = AlertStore.open(workspace, clock=at_t0)
    store.add(make_alert(face_crops[0], 1))
    assert store.purge_expired((T0 + timedelta(days=2)).timestamp()).count == 1
    with pytest.raises(AlertError, match="time zone"):
        store.purge_expired(datetime(2026, 3, 5, 12, 0))


def test_concurrent_writers(workspace: Path, face_crops) -> None:
    """The recognition worker adds alerts while the page reviews and purges."""
    store = AlertStore.open(workspace, clock=at_t0)
    errors: list[Exception] = []

    def add(offset: int) -> None:
        try:
            for i in range(10):
                store.add(make_alert(face_crops[i % 3], offset + i))
        except (AlertError, sqlite3.Error) as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(store.alerts()) == 40


def test_messages_are_constants() -> None:
    assert "purged" in MSG_UNKNOWN_ALERT.format(alert_id="x")
