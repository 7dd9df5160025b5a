"""Frame stamps and the frame log the real-browser benchmark measures with."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lfr_eval.live import FaceAppearance, SceneScript
from lfr_eval.live._framelog import (
    FrameLog,
    LoggedFrame,
    browser_figures,
    read_frame_index,
    read_frame_log,
    stamp_frame_index,
)


def _scene() -> SceneScript:
    photo = np.full((100, 100, 3), 200, np.uint8)
    return SceneScript(
        (
            FaceAppearance(photo, 0.5, 1.5, 100, 100, width=100, label="listed"),
            FaceAppearance(photo, 0.5, 1.5, 300, 100, width=100, label="stranger"),
        ),
        duration_s=2.0,
        fps=10,
    )


@pytest.mark.parametrize("index", [0, 1, 239, 2**12 - 1])
def test_stamp_survives_scaling_and_lossy_compression(index: int) -> None:
    frame = _scene().render(1.0)
    stamped = stamp_frame_index(frame, index)
    assert read_frame_index(stamped) == index
    # WebRTC may scale the camera down under load and always compresses it
    small = cv2.resize(stamped, (320, 240), interpolation=cv2.INTER_AREA)
    jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 30])[1]
    assert read_frame_index(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)) == index
    assert read_frame_index(frame) is None  # no stamp, no index
    with pytest.raises(ValueError):
        stamp_frame_index(frame, 2**12)


def test_frame_log_round_trip(tmp_path: Path) -> None:
    log = FrameLog(tmp_path / "frames.jsonl")
    frame = stamp_frame_index(_scene().render(0.0), 7)
    log.record(frame, [np.array([1.0, 2.0, 3.0, 4.0])])
    log._out.flush()
    (row,) = read_frame_log(log.path)
    assert row.index == 7 and row.size == (640, 480)
    np.testing.assert_allclose(row.boxes, [[1, 2, 3, 4]])


def test_browser_figures_from_a_log() -> None:
    """Two loops of the scene at half size (as a browser under load may send): the listed face
    boxed in every frame of loop 1 and alerted 0.3 s in; in loop 2 the stranger is never boxed
    and nobody alerted."""
    scene = _scene()
    listed, stranger = np.array([110, 110, 190, 190.0]), np.array([310, 110, 390, 190.0])
    frames, t = [], 1000.0
    for loop in range(2):
        for i in range(scene.n_frames):
            boxes = [listed, stranger] if loop == 0 else [listed]
            shown = scene.appearances[0].visible(scene.frame_time(i))
            frames.append(
                LoggedFrame(t, i, (320, 240), np.array(boxes if shown else []).reshape(-1, 4) / 2)
            )
            t += 0.1
    first_listed = frames[5].t  # frame 5 = 0.5 s, the passage's first frame
    # the alerts were collected well after the log's last frame (1003.9 s)
    figures = browser_figures(frames, scene, [first_listed + 0.3], until=1010.0)
    assert figures.frames == 40 and figures.unstamped == 0
    assert figures.received_size == (320, 240)
    assert figures.callback_fps == pytest.approx(10.0)
    # 2 faces x 10 frames per loop: all 20 boxed in loop 1, 10 of 20 in loop 2
    assert figures.box_coverage == pytest.approx(30 / 40)
    assert figures.passages == 2 and figures.missed_passages == 1
    assert figures.alerts_per_passage == 0.5
    assert figures.time_to_alert_s == pytest.approx((0.3,))
    # collected at 1004.5 s: loop 2's passage ended 1.1 s before, too soon to say its alert
    # will not come, so it is not judged (a run's last passage is not a miss); loop 1's is
    now = browser_figures(frames, scene, [first_listed + 0.3], until=1004.5)
    assert now.passages == 1 and now.missed_passages == 0 and now.alerts_per_passage == 1.0
    # collected at the last frame: neither passage ended 3 s before
    assert browser_figures(frames, scene, [first_listed + 0.3]).passages == 0
    # until: only what came before (the first loop)
    early = browser_figures(frames, scene, [first_listed + 0.3], until=frames[19].t)
    assert early.box_coverage == 1.0
    assert early.passages == 0  # its passage ended 0.5 s before: too soon to judge
