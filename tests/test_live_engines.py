"""The live pipeline with every engine: dlib, dlib-torch (converted ResNet on onnxruntime) and
InsightFace (a pack built from the test ONNX models, so no download and cheap on a CPU).

Each engine goes through the one engine contract (``detect`` -> ``Detections``, ``crops``,
``embed_crops``); these tests fail if an engine's detections or crops do not fit the pipeline
(as InsightFace's did: the worker stopped on its first frame).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import lfw_root
from live_support import (
    LivePeople,
    best_face_embedding,
    build_synthetic_pack,
    grid_position,
    live_people,
    marked_people,
    separating_threshold,
)

from lfr_eval.faces import Detections, embed_faces, load_engine
from lfr_eval.live import (
    AlertStore,
    FaceAppearance,
    LivePipeline,
    LiveSession,
    LiveSettings,
    LiveWatchlist,
    SceneScript,
    WatchlistHolder,
)
from lfr_eval.watchlist._store import Watchlist
from lfr_eval.watchlist._types import SubjectInfo

ENGINES = ("dlib", "dlib-torch", "insightface")


class Case:
    """One engine with the people and threshold its scenes use."""

    def __init__(self, name: str, engine, people: LivePeople) -> None:
        self.name = name
        self.engine = engine
        self.people = people
        self.mate, self.best_stranger, self.threshold = separating_threshold(engine, people)

    def __repr__(self) -> str:
        return f"Case({self.name})"


@pytest.fixture(scope="module", params=ENGINES)
def case(request, tmp_path_factory, dlib_engine, insightface_images: Path) -> Case:
    people = live_people(lfw_root(), insightface_images, dlib_engine)
    tmp = tmp_path_factory.mktemp(f"live-{request.param}")
    if request.param == "dlib":
        return Case("dlib", dlib_engine, people)
    if request.param == "dlib-torch":
        engine = load_engine("dlib-torch", runtime="onnxruntime", cache_dir=tmp / "converted")
        return Case("dlib-torch", engine, people)
    pack = build_synthetic_pack(tmp / "synthetic_pack")
    engine = load_engine("insightface", model_pack=str(pack))
    return Case("insightface", engine, marked_people(people, tmp))


def _watchlist(case: Case, workspace: Path) -> LiveWatchlist:
    store = Watchlist.open(workspace=workspace)
    engine = case.engine
    faces = engine.analyze(case.people.enrol_photo, embed=False)
    face = max(faces, key=lambda f: f.area)
    embed_faces(engine, case.people.enrol_photo, [face])
    store.enrol_faces(SubjectInfo("listed-1", case.people.listed_name), [face], engine.engine_id)
    return LiveWatchlist.from_watchlist(store, engine)


def _scene(people: LivePeople, duration: float = 4.0) -> SceneScript:
    """640x480, 10 fps: the listed person from 0.5 s on the left, two strangers from 1.0 s and
    1.5 s; all still, at positions that suit every engine (grid cells for the synthetic one)."""
    spots = [grid_position(4, 4), grid_position(11, 4), grid_position(18, 11)]
    photos = (people.camera_photo, people.strangers[0], people.strangers[1])
    starts = (0.5, 1.0, 1.5)
    labels = ("listed", "stranger", "stranger")
    faces = tuple(
        FaceAppearance(photo, t0, duration, x, y, width=200, label=label)
        for photo, t0, (x, y), label in zip(photos, starts, spots, labels, strict=True)
    )
    return SceneScript(faces, duration_s=duration, fps=10)


def test_contract_crops_reproduce_analyze(case: Case) -> None:
    """detect -> crops -> embed_crops is what analyze does, for every engine."""
    engine = case.engine
    frame = _scene(case.people).render(2.0)
    found = engine.detect(frame)
    assert isinstance(found, Detections) and len(found) == 3
    assert found.boxes.shape == (3, 4) and found.scores.shape == (3,)
    assert found.landmarks is None or found.landmarks.shape == (3, 5, 2)
    faces = engine.analyze(frame)
    np.testing.assert_allclose(found.boxes, [f.box for f in faces])
    embedded = engine.embed_crops(engine.crops(frame, found))
    np.testing.assert_allclose(embedded, [f.embedding for f in faces], atol=1e-5)
    # chosen indices, in the order asked
    picked = engine.embed_crops(engine.crops(frame, found, [2, 0]))
    np.testing.assert_allclose(picked, embedded[[2, 0]], atol=1e-5)
    # detections found on a half-size copy, scaled back, still crop the same faces
    if found.landmarks is None:  # the synthetic detector only fires on its own pixel grid
        import cv2

        small = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)
        rescaled = engine.detect(small).scaled(2.0)
        assert len(rescaled) == 3
        again = engine.embed_crops(engine.crops(frame, rescaled))
        # (equal-sized faces may come in another order)
        assert np.all((again @ embedded.T).max(axis=1) > 0.95)


def test_listed_person_alerts_once_with_every_engine(case: Case, workspace: Path) -> None:
    store = AlertStore.open(workspace)
    session = LiveSession(store)
    pipeline = LivePipeline(
        case.engine,
        WatchlistHolder(_watchlist(case, workspace)),
        LiveSettings(threshold=case.threshold, detection_width=None),
        session=session,
        background=False,
    )
    scene = _scene(case.people)
    results = [pipeline.process(f, scene.frame_time(i)) for i, f in enumerate(scene.frames())]
    assert pipeline.error is None
    assert session.flush()
    alerts = store.alerts()
    assert [a.subject_id for a in alerts] == ["listed-1"], (case, alerts)
    assert alerts[0].score >= case.threshold
    stats = session.stats()
    assert stats.faces_seen == 3 and stats.alerts == 1
    late = [r for r in results if r.t >= 2.5]
    assert all(len(r.tracks) == 3 and r.n_alerting == 1 for r in late)
    # the capture stored is cut from the listed person's place in the frame (left third)
    capture = store.capture(alerts[0].alert_id)
    assert capture.shape[0] >= 100 and capture.shape[1] >= 100


def test_background_worker_runs_with_every_engine(case: Case, workspace: Path) -> None:
    """The worker thread (as on the Live page) raises the alert and never stops with an error."""
    session = LiveSession()
    scene = _scene(case.people, duration=3.0)
    frames = list(scene.frames())
    with LivePipeline(
        case.engine,
        WatchlistHolder(_watchlist(case, workspace)),
        LiveSettings(threshold=case.threshold),
        session=session,
    ) as pipeline:
        start = time.monotonic()
        for i, frame in enumerate(frames):
            time.sleep(max(0.0, start + scene.frame_time(i) - time.monotonic()))
            pipeline.render(frame)
        deadline = time.monotonic() + 10
        while session.stats().alerts == 0 and time.monotonic() < deadline:
            pipeline.render(frames[-1])
            time.sleep(0.1)
        assert pipeline.error is None, pipeline.error
    assert session.stats().alerts == 1
    assert {a.subject_id for a in session.recent_alerts} == {"listed-1"}


def test_best_face_embedding_helper_matches_pipeline(case: Case) -> None:
    """The scores the tests separate on are the ones the engine gives inside a frame."""
    enrolled = best_face_embedding(case.engine, case.people.enrol_photo)
    assert abs(float(np.linalg.norm(enrolled)) - 1) < 1e-4
    assert case.mate > case.best_stranger
