"""Tracker behaviour the live page's steady boxes rely on: held through short misses by the
prediction, dropped after the miss window, no identity swap when two faces cross."""

from __future__ import annotations

import numpy as np

from lfr_eval.live import FaceTracker, LiveConfig
from lfr_eval.live._pipeline import _drawn

NONE = np.zeros((0, 4))


def _box(x: float, y: float, size: float = 100.0) -> np.ndarray:
    return np.array([x, y, x + size, y + size])


def test_a_moving_face_is_held_through_misses_at_its_predicted_place() -> None:
    tracker = FaceTracker(max_missing_s=0.7)
    config = LiveConfig()
    step_s, speed = 0.05, 150.0  # detected every 50 ms, walking right at 150 px/s
    for step in range(8):
        tracker.update(_box(100 + speed * step * step_s, 100)[None], step * step_s)
    last = 7 * step_s
    missed = [last + k * step_s for k in range(1, 6)]  # five missed steps, 0.25 s
    assert missed[-1] - last < config.hold_unseen_s
    for t in missed:
        assert tracker.update(NONE, t).ended_track_ids == ()
        track = tracker.get(1)
        assert _drawn(track, t, config)
        # the drawn box keeps moving with the face (within a few pixels of where it is)
        assert abs(track.predict(t)[0] - (100 + speed * t)) < 6
    # found again where it moved to: the same face, not a new one
    t = missed[-1] + step_s
    assert tracker.update(_box(100 + speed * t, 100)[None], t).track_ids == (1,)
    assert tracker.n_started == 1


def test_a_face_gone_is_hidden_then_dropped_after_the_miss_window() -> None:
    tracker = FaceTracker(max_missing_s=0.7)
    config = LiveConfig()
    for step in range(5):
        tracker.update(_box(200, 100)[None], step * 0.05)
    last = 0.2
    t = last
    hidden_at = ended_at = None
    while ended_at is None and t < 3.0:
        t = round(t + 0.05, 3)
        update = tracker.update(NONE, t)
        track = tracker.get(1)
        if hidden_at is None and (track is None or not _drawn(track, t, config)):
            hidden_at = t
        if update.ended_track_ids == (1,):
            ended_at = t
    assert hidden_at is not None and ended_at is not None
    # hidden once the hold window is over, not before; ended after max_missing_s
    assert config.hold_unseen_s <= hidden_at - last <= config.hold_unseen_s + 0.051
    assert 0.7 < ended_at - last <= 0.75
    assert tracker.tracks == ()


def test_two_faces_crossing_keep_their_identities() -> None:
    """A walks right, B walks left a little lower; while they overlap, B is hidden behind A
    (only A is detected); after the crossing each track is on its own face again."""
    tracker = FaceTracker(max_missing_s=0.7)
    speed, dt = 200.0, 0.1
    ids_a, ids_b = set(), set()
    for step in range(21):
        t = step * dt
        a, b = _box(100 + speed * t, 100), _box(500 - speed * t, 130)
        overlap = abs(a[0] - b[0]) < 100
        boxes = a[None] if overlap else np.stack([b, a])  # B first: order must not matter
        update = tracker.update(boxes, t)
        if overlap:
            ids_a.add(update.track_ids[0])
        else:
            ids_b.add(update.track_ids[0])
            ids_a.add(update.track_ids[1])
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b
    assert tracker.n_started == 2
    # and each moves the way its face does
    (id_a,), (id_b,) = ids_a, ids_b
    assert tracker.get(id_a).velocity[0] > 100 and tracker.get(id_b).velocity[0] < -100


def test_a_face_hidden_longer_than_the_window_comes_back_as_a_new_face() -> None:
    tracker = FaceTracker(max_missing_s=0.7)
    tracker.update(_box(100, 100)[None], 0.0)
    tracker.update(_box(100, 100)[None], 0.1)
    for t in (0.3, 0.5, 0.7, 0.9):
        tracker.update(NONE, t)
    assert tracker.get(1) is None
    assert tracker.update(_box(100, 100)[None], 1.0).new_track_ids == (2,)


def test_a_jittering_face_keeps_one_track_at_thirty_steps_a_second() -> None:
    """A detector's boxes wobble by a few pixels and a few percent in size from frame to frame
    (BlazeFace's anchors, HOG's pyramid): one face, one track, never a duplicate."""
    rng = np.random.default_rng(7)
    tracker = FaceTracker(max_missing_s=0.7)
    for step in range(90):
        t = step / 30
        size = 100 * (1 + rng.uniform(-0.06, 0.06))
        box = _box(200 + 8 * t + rng.uniform(-5, 5), 120 + rng.uniform(-5, 5), size)
        update = tracker.update(box[None], t)
        assert update.track_ids == (1,) and update.new_track_ids == (() if step else (1,))
    assert tracker.n_started == 1 and len(tracker.tracks) == 1


def test_neighbours_are_assigned_by_overlap_not_by_order() -> None:
    """Two faces side by side, detected in either order and one of them missed now and then:
    each detection goes to its own face's track (optimal assignment over IoU), so neither face
    takes the other's track and no extra track starts."""
    tracker = FaceTracker(max_missing_s=0.7)
    left, right = _box(100, 100), _box(230, 100)
    first = tracker.update(np.stack([left, right]), 0.0).track_ids
    for step in range(1, 30):
        t = step * 0.05
        found = [(left, first[0]), (right, first[1])]
        if step % 7 == 0:
            found = found[1:]  # the left face missed in this step
        if step % 2:
            found = found[::-1]
        update = tracker.update(np.stack([b for b, _ in found]), t)
        assert update.track_ids == tuple(tid for _, tid in found)
    assert tracker.n_started == 2


def test_a_face_found_again_reports_how_long_it_was_unseen() -> None:
    tracker = FaceTracker(max_missing_s=0.7)
    tracker.update(_box(100, 100)[None], 0.0)
    tracker.update(_box(100, 100)[None], 0.1)
    assert not tracker.get(1).reacquired and tracker.get(1).unseen_before_s == 0.0
    for t in (0.2, 0.3, 0.4, 0.5):
        tracker.update(NONE, t)
    tracker.update(_box(100, 100)[None], 0.6)
    track = tracker.get(1)
    assert track.reacquired and abs(track.unseen_before_s - 0.5) < 1e-9
    tracker.update(_box(100, 100)[None], 0.7)  # consecutive again
    assert not tracker.get(1).reacquired and tracker.get(1).unseen_before_s == 0.0
