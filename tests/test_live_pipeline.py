"""The live matching pipeline: settings, tracker, recognition, alerts, timing, summary.

Recognition tests use the real dlib engine on real face photos (LFW, or insightface's bundled
images when LFW is absent) composed into 640x480 camera scenes.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from live_support import LivePeople, best_face_embedding, inline_pipeline

from lfr_eval.errors import WatchlistError
from lfr_eval.live import (
    AlertStore,
    FaceAppearance,
    FaceTracker,
    FrameResult,
    LiveConfig,
    LivePipeline,
    LiveSession,
    LiveSettings,
    SceneScript,
    TrackView,
    WatchlistHolder,
    box_iou,
    draw_tracks,
    write_y4m,
)
from lfr_eval.search import SearchIndex


# ---------------------------------------------------------------------- settings
def test_settings_update_is_atomic_and_validated() -> None:
    settings = LiveSettings(threshold=0.9)
    assert settings.threshold == 0.9 and settings.version == 0
    config = settings.update(threshold=0.95, recheck_interval_s=0.5)
    assert (config.threshold, config.recheck_interval_s) == (0.95, 0.5)
    assert settings.version == 1
    settings.update(threshold=0.95)  # no change, no new version
    assert settings.version == 1
    with pytest.raises(ValueError, match="cosine similarity in \\[-1, 1\\]"):
        settings.update(threshold=1.5)
    with pytest.raises(ValueError, match="unknown live settings"):
        settings.update(treshold=0.5)
    assert settings.threshold == 0.95  # a refused update changes nothing
    with pytest.raises(ValueError):
        LiveConfig(recheck_interval_s=0)


def test_settings_shared_between_threads() -> None:
    settings = LiveSettings()
    seen: list[float] = []
    torn: list[LiveConfig] = []

    def reader() -> None:
        for _ in range(2000):
            config = settings.snapshot()
            # a snapshot is consistent: both fields were written together
            if config.recheck_interval_s != config.threshold:
                torn.append(config)
            seen.append(config.threshold)

    settings.update(threshold=0.5, recheck_interval_s=0.5)
    thread = threading.Thread(target=reader)
    thread.start()
    for value in np.linspace(0.5, 0.99, 500):
        settings.update(threshold=float(value), recheck_interval_s=float(value))
    thread.join()
    assert len(seen) == 2000 and not torn


# ---------------------------------------------------------------------- tracker
def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 20, 20]])
    b = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [30, 30, 40, 40]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 25 / 175, 0.0])
    np.testing.assert_allclose(iou[1], [0.25, 0.25, 0.0])


def test_tracker_follows_moving_faces_and_ends_lost_ones() -> None:
    tracker = FaceTracker(max_missing_s=0.5)
    left, right = np.array([100, 100, 200, 200.0]), np.array([400, 100, 500, 200.0])
    first = tracker.update(np.stack([left, right]), 0.0)
    assert first.track_ids == (1, 2) and first.new_track_ids == (1, 2)
    # both move 10 px per step; order of detections swapped: association is by overlap
    for step in range(1, 6):
        shift = np.array([10, 0, 10, 0.0]) * step
        update = tracker.update(np.stack([right + shift, left + shift]), step * 0.1)
        assert update.track_ids == (2, 1) and update.new_track_ids == ()
    track = tracker.get(1)
    assert track.hits == 6 and track.velocity[0] > 50  # px/s, moving right
    # prediction carries the box on between detections
    assert tracker.get(1).predict(0.6)[0] > track.box[0]
    # the right face leaves; the left one stays; after 0.5 s the right track ends
    shift = np.array([60, 0, 60, 0.0])
    assert tracker.update((left + shift)[None], 0.8).ended_track_ids == ()
    update = tracker.update((left + shift)[None], 1.2)
    assert update.ended_track_ids == (2,)
    assert [t.track_id for t in tracker.tracks] == [1]
    # a face far from every track is a new face
    assert tracker.update(np.array([[10, 300, 90, 380.0]]), 1.3).new_track_ids == (3,)
    assert tracker.n_started == 3


def test_one_slow_missed_step_does_not_end_a_track() -> None:
    """On a busy CPU detection steps can be a second apart; one miss must not split a face."""
    tracker = FaceTracker(max_missing_s=0.7)
    box = np.array([100, 100, 200, 200.0])
    tracker.update(box[None], 0.0)
    assert tracker.update(np.zeros((0, 4)), 1.5).ended_track_ids == ()  # missed once, slowly
    assert tracker.update(box[None], 2.5).track_ids == (1,)
    assert tracker.update(np.zeros((0, 4)), 2.6).ended_track_ids == ()
    assert tracker.update(np.zeros((0, 4)), 3.3).ended_track_ids == (1,)  # 2 misses and 0.8 s


# ---------------------------------------------------------------------- real faces
def scene_of(
    people: LivePeople, *, listed: bool = True, strangers: int = 2, duration: float = 4.0
) -> SceneScript:
    """640x480 at 10 fps: the listed person walks in at 0.5 s (left, moving right 10 px/s),
    strangers stand at 250 px and 450 px from 1.0 s and 1.5 s. The photos never overlap."""
    faces = []
    if listed:
        faces.append(
            FaceAppearance(
                people.camera_photo, 0.5, 3.5, 10, 120, width=200, velocity=(10, 0), label="listed"
            )
        )
    for k in range(strangers):
        faces.append(
            FaceAppearance(
                people.strangers[k],
                1.0 + 0.5 * k,
                duration,
                250 + 200 * k,
                40 + 220 * (k % 2),
                width=170,
                label="stranger",
            )
        )
    return SceneScript(tuple(faces), duration_s=duration, fps=10)


class CountingEngine:
    """The real dlib engine, counting how many faces it embeds."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.engine_id = engine.engine_id
        self.runtime = engine.runtime
        self.embedded = 0

    def detect(self, image):
        return self._engine.detect(image)

    def crops(self, image, detections, indices=None):
        return self._engine.crops(image, detections, indices)

    def analyze(self, image, *, embed=True):
        return self._engine.analyze(image, embed=embed)

    def embed_crops(self, crops, *, batch_size=32):
        self.embedded += len(crops)
        return self._engine.embed_crops(crops, batch_size=batch_size)


def run_scene(pipeline: LivePipeline, scene: SceneScript) -> list[FrameResult]:
    return [pipeline.process(frame, scene.frame_time(i)) for i, frame in enumerate(scene.frames())]


def test_listed_person_alerts_once_strangers_never(
    dlib_engine, people, threshold, watchlist, workspace
) -> None:
    engine = CountingEngine(dlib_engine)
    store = AlertStore.open(workspace)
    session = LiveSession(store)
    pipeline = inline_pipeline(engine, watchlist, threshold, session)
    scene = scene_of(people)
    results = run_scene(pipeline, scene)

    assert session.flush()  # alerts are written on the writer thread
    alerts = store.alerts()
    assert len(alerts) == 1, "one alert per track and subject, not one per frame"
    (alert,) = alerts
    assert alert.subject_id == "listed-1" and alert.subject_name == people.listed_name
    assert alert.score >= threshold and alert.threshold == threshold
    # the alert's capture is the listed person's face, not a stranger's
    capture_embedding = best_face_embedding(dlib_engine, store.capture(alert.alert_id))
    assert capture_embedding @ best_face_embedding(dlib_engine, people.enrol_photo) >= threshold
    # drawn: the listed face is red in the frames where it is tracked, strangers never are
    alerting = [r for r in results if r.n_alerting]
    assert alerting and all(r.n_alerting == 1 for r in alerting)
    stats = session.stats()
    assert stats.faces_seen == 3 and stats.alerts == 1
    # faces are re-checked about once a second, not embedded on every frame
    faces_in_frames = sum(len(r.tracks) for r in results)
    assert engine.embedded < faces_in_frames / 3
    assert engine.embedded >= 3
    # non-matching captures never reach disk: the workspace holds the two stores only
    files = sorted(p.relative_to(workspace).as_posix() for p in workspace.rglob("*") if p.is_file())
    assert files == ["live/alerts.sqlite", "watchlist.sqlite"]


def test_threshold_change_acts_on_the_next_frame(dlib_engine, people, threshold, watchlist) -> None:
    settings = LiveSettings(threshold=threshold, recheck_interval_s=60)
    pipeline = LivePipeline(dlib_engine, WatchlistHolder(watchlist), settings, background=False)
    scene = scene_of(people, strangers=0)
    for i in range(10, 14):
        result = pipeline.process(scene.render(scene.frame_time(i)), scene.frame_time(i))
    assert result.n_alerting == 1
    settings.update(threshold=0.999)
    assert pipeline._result(scene.frame_time(14), settings.snapshot()).n_alerting == 0
    result = pipeline.process(scene.render(scene.frame_time(14)), scene.frame_time(14))
    assert result.n_alerting == 0 and result.threshold == 0.999
    assert pipeline.session.stats().alerts == 1  # raised before the threshold went up


def test_higher_threshold_no_alerts_and_nothing_written(
    dlib_engine, people, watchlist, workspace
) -> None:
    store = AlertStore.open(workspace)
    pipeline = LivePipeline(
        dlib_engine,
        WatchlistHolder(watchlist),
        LiveSettings(threshold=0.999),
        session=LiveSession(store),
        background=False,
    )
    results = run_scene(pipeline, scene_of(people))
    assert any(r.tracks for r in results)
    assert pipeline.session.flush()
    assert store.alerts() == [] and pipeline.session.stats().alerts == 0
    with open(store.path, "rb") as handle:
        assert bytes([0xFF, 0xD8, 0xFF]) not in handle.read()


def test_enrolment_during_the_stream_is_picked_up(
    dlib_engine, people, threshold, watchlist
) -> None:
    holder = WatchlistHolder(None)
    pipeline = LivePipeline(
        dlib_engine, holder, LiveSettings(threshold=threshold), background=False
    )
    scene = scene_of(people, strangers=0)
    for i in range(8, 11):
        result = pipeline.process(scene.render(scene.frame_time(i)), scene.frame_time(i))
    assert result.tracks and result.tracks[0].score is None and result.watchlist_size == 0
    holder.set(watchlist)  # as the page does after "Enrol"
    result = pipeline.process(scene.render(scene.frame_time(11)), scene.frame_time(11))
    assert result.watchlist_size == 1 and result.n_alerting == 1


#: Longest wait for another thread before a test gives up: a guard against hanging, far above
#: what any step takes on a loaded CPU (nothing asserts how fast anything is).
HANG_GUARD_S = 120.0


class EmbeddingGate:
    """An engine whose embedding calls block until :attr:`release` is set (everything else is
    the wrapped engine's): recognition can be held mid-step while the video thread is watched."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def embed_crops(self, crops, **kwargs):
        self.calls += 1
        self.entered.set()
        if not self.release.wait(HANG_GUARD_S):
            raise TimeoutError("the test never released the embedding gate")
        return self._engine.embed_crops(crops, **kwargs)


def test_background_worker_keeps_the_video_thread_fast(
    dlib_engine, people, threshold, watchlist
) -> None:
    """The video thread never waits for recognition: while the worker is held inside an
    embedding call (the slow part of a step), frame after frame is returned with the tracks
    the worker found before it was held. Shown by order of events, not by timing: if the video
    thread waited on the worker (or on a lock the worker holds while embedding), the frames
    below would not come back until the gate opens, and the test fails."""
    scene = scene_of(people, strangers=1, duration=3.0)
    t0 = 2.0  # the listed person and the stranger are both in the picture
    gate = EmbeddingGate(dlib_engine)
    session = LiveSession()
    pipeline = LivePipeline(
        gate, WatchlistHolder(watchlist), LiveSettings(threshold=threshold), session=session
    )
    served: list = []

    def video_thread() -> None:
        for j in range(30):
            t = t0 + 0.01 * (j + 1)
            served.append(pipeline.render(scene.render(t), t)[1])

    try:
        pipeline.process(scene.render(t0), t0)  # the worker takes it, detects, starts embedding
        assert gate.entered.wait(HANG_GUARD_S), "the worker never reached the embedding"
        video = threading.Thread(target=video_thread, daemon=True)
        video.start()
        video.join(HANG_GUARD_S)
        # every frame came back while the worker was still inside its first embedding call
        assert not video.is_alive(), f"video thread blocked after {len(served)} frames"
        assert not gate.release.is_set() and gate.calls == 1
        assert len(served) == 30
        for result in served:
            # the faces detected before the hold are drawn; none is recognised yet
            assert len(result.tracks) >= 1, result
            assert all(tr.subject_id is None and tr.score is None for tr in result.tracks)
        gate.release.set()
        # recognition finishes its step: the listed person is alerted on, the stranger is not
        t = t0 + 0.3
        while session.stats().alerts == 0 and pipeline.error is None:
            assert t < t0 + HANG_GUARD_S, "no alert after the gate opened"
            pipeline.render(scene.render(min(t, 2.9)), t)
            time.sleep(0.05)
            t += 0.05
        stats = session.stats()
    finally:
        gate.release.set()
        pipeline.close()
    assert pipeline.error is None
    assert [a.subject_id for a in session.recent_alerts] == ["listed-1"]
    assert stats.alerts == 1 and stats.faces_seen >= 2


def test_worker_failure_is_reported_not_hidden(dlib_engine, people) -> None:
    other_space = SearchIndex(np.eye(128, dtype=np.float32)[:1], ["x"], embedding_space="other@1")
    scene = scene_of(people, strangers=0)
    with LivePipeline(dlib_engine, lambda: other_space) as pipeline:
        deadline = time.monotonic() + 20
        i = 5
        while pipeline.error is None and time.monotonic() < deadline:
            pipeline.process(scene.render(scene.frame_time(i)))
            time.sleep(0.05)
            i = min(i + 1, 30)
        assert pipeline.error is not None and "WatchlistError" in pipeline.error
        assert "embedding space" in pipeline.error
        assert pipeline.process(scene.render(1.0)).error == pipeline.error
    with pytest.raises(WatchlistError):
        other_space.search(
            best_face_embedding(dlib_engine, people.enrol_photo),
            embedding_space=dlib_engine.engine_id.recognizer_key,
        )


def test_snapshot_is_a_copy(dlib_engine, people) -> None:
    pipeline = LivePipeline(dlib_engine, lambda: None, background=False)
    assert pipeline.snapshot() is None
    frame = SceneScript((), 1.0).render(0.0)
    pipeline.process(frame, 0.0)
    snap = pipeline.snapshot()
    assert np.array_equal(snap, frame) and snap is not frame
    pipeline.close()
    assert pipeline.snapshot() is None


def test_draw_tracks_marks_alerts_red_and_keeps_the_input() -> None:
    frame = np.full((240, 320, 3), 100, np.uint8)
    tracks = (
        TrackView(1, np.array([20, 40, 100, 140.0]), "a", "Alice", 0.95, True),
        TrackView(2, np.array([180, 40, 260, 140.0]), "a", "Alice", 0.5, False),
    )
    out = draw_tracks(frame, FrameResult(0.0, tracks, 0.9, 1))
    assert np.all(frame == 100)
    red = (out[..., 0] > 200) & (out[..., 1] < 80)
    assert red[:, :150].any() and not red[:, 170:].any()
    hidden = draw_tracks(
        frame, FrameResult(0.0, tracks, 0.9, 1), LiveConfig(show_non_matches=False)
    )
    assert np.all(hidden[:, 170:] == 100)


def test_deployment_summary_in_published_style(workspace: Path, people: LivePeople) -> None:
    store = AlertStore.open(workspace)
    session = LiveSession(store, deployment="Training room 2")
    from lfr_eval.live import LiveAlert

    start = datetime.now(timezone.utc)
    for n in range(40):
        session.on_new_face(n + 1, float(n))
    for n, decision in enumerate(["confirmed", "rejected", None]):
        session.on_alert(
            LiveAlert(
                f"a{n}",
                session.session_id,
                n + 1,
                "listed-1",
                "Listed",
                0.95,
                0.92,
                start,
                0.4,
                people.camera_photo,
            )
        )
        if decision:
            session.review(f"a{n}", decision, "PC 9", now=start + timedelta(seconds=30))
    summary = session.summary(
        watchlist_size=12, threshold=0.93, engine="dlib:x", ended_at=start + timedelta(minutes=45)
    )
    assert (summary.faces_scanned, summary.alerts) == (40, 3)
    assert (summary.true_alerts, summary.false_alerts, summary.unreviewed_alerts) == (1, 1, 1)
    assert summary.false_alert_rate.rate == pytest.approx(1 / 40)
    assert summary.rates.per_face_scanned == pytest.approx(1 / 40)
    assert summary.rates.false_discovery == pytest.approx(1 / 3)
    assert summary.rates.fpir is None  # unknown without the number of listed passers-by
    assert summary.thresholds == (0.92, 0.93)
    assert summary.median_time_to_decision_s == pytest.approx(30)
    text = summary.to_text()
    for needle in (
        "Training room 2",
        "Faces scanned: 40",
        "Alerts: 3",
        "1 in 40 faces scanned",
        "Watchlist size: 12",
        "not FPIR",
        "(45 min)",
    ):
        assert needle in text
    assert summary.to_dict()["false_alert_rate_per_face_scanned"]["rate"] == pytest.approx(0.025)
    empty = LiveSession().summary(watchlist_size=0, threshold=0.9, engine="dlib:x")
    assert empty.false_alert_rate.insufficient_data and "not enough data" in empty.to_text()


def test_y4m_file_layout(tmp_path: Path, people: LivePeople) -> None:
    scene = SceneScript((FaceAppearance(people.camera_photo, 0.0, 1.0, 10, 10),), 1.0, fps=5)
    path = write_y4m(tmp_path / "cam.y4m", scene.frames(), scene.fps)
    data = path.read_bytes()
    header, _, _ = data.partition(b"\n")
    assert header == b"YUV4MPEG2 W640 H480 F5000:1000 Ip A1:1 C420jpeg"
    assert data.count(b"FRAME\n") == 5
    assert len(data) == len(header) + 1 + 5 * (6 + 640 * 480 * 3 // 2)


def test_one_engine_shared_by_the_stream_and_the_page(dlib_engine, people) -> None:
    """The live worker and a page (snapshot, enrolment) use the one cached engine at once.

    dlib's detector is not thread-safe; without the engine's lock this crashes the process.
    """
    image = np.ascontiguousarray(np.tile(people.enrol_photo, (2, 3, 1)))
    found: list[int] = []

    def work() -> None:
        for _ in range(4):
            found.append(len(dlib_engine.analyze(image)))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 12 and len(set(found)) == 1 and found[0] >= 6


def test_detector_jitter_over_a_short_gap_does_not_split_a_face() -> None:
    tracker = FaceTracker()
    box = np.array([100, 100, 190, 190.0])
    tracker.update(box[None], 0.0)
    # two detections 10 ms apart, 8 px apart: not a face moving at 800 px/s
    tracker.update((box + 8)[None], 0.01)
    assert abs(tracker.get(1).velocity).max() < 1e-9
    assert tracker.update(box[None], 0.3).track_ids == (1,)
    assert tracker.n_started == 1


def test_worker_stops_when_the_stream_stops_and_restarts(dlib_engine, people) -> None:
    scene = scene_of(people, strangers=0)
    frame = scene.render(2.0)
    with LivePipeline(dlib_engine, lambda: None, idle_exit_s=0.5) as pipeline:

        def stream(seconds: float) -> FrameResult:
            end = time.monotonic() + seconds
            while True:
                result = pipeline.process(frame)
                if time.monotonic() > end and result.tracks:
                    return result
                time.sleep(0.05)

        assert len(stream(0.5).tracks) == 1
        worker = pipeline._worker
        time.sleep(2.0)  # the browser went away: no frames
        assert not worker.is_alive() and pipeline._worker is None
        assert pipeline._result(time.monotonic(), pipeline.settings.snapshot()).tracks == ()
        assert len(stream(0.5).tracks) == 1  # frames again: a new worker picks them up
        assert pipeline._worker is not None and pipeline._worker.is_alive()


def test_tracker_split_starts_a_new_face() -> None:
    tracker = FaceTracker()
    tracker.update(np.array([[100, 100, 200, 200.0]]), 0.0)
    new_id = tracker.split(1, 0.5)
    assert new_id == 2 and tracker.get(1) is None and tracker.get(2).first_seen_t == 0.5
    assert tracker.update(np.array([[102, 100, 202, 200.0]]), 0.6).track_ids == (2,)
    assert tracker.n_started == 2


@pytest.mark.parametrize("listed_first", [True, False])
def test_someone_stepping_into_a_tracked_place_is_a_new_face(
    dlib_engine, people, threshold, watchlist, listed_first
) -> None:
    """A person leaves and another stands in the same spot 0.3 s later (within the tracker's
    patience): the newcomer must not inherit the previous person's name, score or alert."""
    first, second = (
        (people.camera_photo, people.strangers[0])
        if listed_first
        else (people.strangers[0], people.camera_photo)
    )
    scene = SceneScript(
        (FaceAppearance(first, 0.3, 2.0, 200, 100), FaceAppearance(second, 2.3, 4.0, 200, 100)),
        duration_s=4.0,
        fps=10,
    )
    pipeline = LivePipeline(
        dlib_engine, WatchlistHolder(watchlist), LiveSettings(threshold=threshold), background=False
    )
    results = run_scene(pipeline, scene)
    stats = pipeline.session.stats()
    assert stats.faces_seen == 2 and stats.alerts == 1
    late = [r for r in results if r.t >= 2.6]  # the second person, after a detection or two
    listed_late = not listed_first
    assert all(r.n_alerting == (1 if listed_late else 0) for r in late if r.tracks)
    assert all(tr.subject_name is not None for r in late for tr in r.tracks)


def test_same_listed_person_matched_twice_is_not_split(dlib_engine, people, watchlist) -> None:
    """Blur or pose can move a face's embedding a lot between checks; if both checks match the
    same listed person above the threshold it is still them (no second face, no second alert)."""
    from lfr_eval.live._pipeline import _Recognition

    pipeline = LivePipeline(
        dlib_engine,
        WatchlistHolder(watchlist),
        LiveSettings(threshold=0.9, same_face_similarity=0.999),
        background=False,
    )
    pipeline._tracker.update(np.array([[100, 100, 200, 200.0]]), 0.0)
    config = pipeline.settings.snapshot()
    listed = best_face_embedding(dlib_engine, people.enrol_photo)
    camera = best_face_embedding(dlib_engine, people.camera_photo)
    stranger = best_face_embedding(dlib_engine, people.strangers[0])

    def check(embedding: np.ndarray) -> _Recognition:
        score = float(embedding @ listed)
        return _Recognition(
            checked_t=0.0,
            subject_id="listed-1",
            score=score,
            embedding=embedding,
            checked_box=np.zeros(4),
        )

    pipeline._store_check(1, check(listed), 0.1, config)
    pipeline._store_check(1, check(camera), 0.2, config)  # 0.97 < 0.999, same person matched
    assert [t.track_id for t in pipeline._tracker.tracks] == [1]
    pipeline._store_check(1, check(stranger), 0.3, config)  # a stranger took the place
    assert [t.track_id for t in pipeline._tracker.tracks] == [2]
    assert pipeline.session.stats().faces_seen == 1  # the split counted (update() counted none)


def test_one_alert_per_passage_even_when_the_track_breaks(
    dlib_engine, people, threshold, watchlist
) -> None:
    """The listed person is hidden for 1 s (longer than a track survives) and comes back: the
    same passage, no second alert. Back after the cool-down: a new passage, a new alert."""
    photo = people.camera_photo
    scene = SceneScript(
        (
            FaceAppearance(photo, 0.3, 2.0, 200, 100, width=200),
            FaceAppearance(photo, 3.0, 4.5, 200, 100, width=200),  # 1 s gap: same passage
            FaceAppearance(photo, 9.5, 11.0, 200, 100, width=200),  # 5 s later: a new one
        ),
        duration_s=11.0,
        fps=5,
    )
    session = LiveSession()
    pipeline = inline_pipeline(dlib_engine, watchlist, threshold, session, alert_cooldown_s=4.0)
    alerts_at = []
    for i, frame in enumerate(scene.frames()):
        before = session.stats().alerts
        pipeline.process(frame, scene.frame_time(i))
        if session.stats().alerts > before:
            alerts_at.append(scene.frame_time(i))
    assert session.stats().faces_seen == 3  # three tracks
    assert len(alerts_at) == 2 and alerts_at[0] < 2.0 and alerts_at[1] > 9.5, alerts_at
