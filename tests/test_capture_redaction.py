"""Alert captures keep only the face that alerted: bystanders inside the crop margin are blanked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lfr_eval.faces import load_image
from lfr_eval.live._pipeline import crop_capture


def test_other_boxes_inside_the_crop_are_blanked_and_the_alerting_face_kept() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(1, 255, (200, 300, 3)).astype(np.uint8)
    face = np.array([100.0, 50.0, 160.0, 120.0])
    bystander = np.array([165.0, 60.0, 215.0, 110.0])  # beside it, inside the margin
    far_away = np.array([10.0, 150.0, 40.0, 190.0])
    plain = crop_capture(frame, face, 0.5)
    capture = crop_capture(frame, face, 0.5, others=np.stack([bystander, far_away]))
    assert capture.shape == plain.shape
    left, top = 70, 15  # 100 - 0.5*60, 50 - 0.5*70
    # the alerting face is untouched
    assert np.array_equal(
        capture[50 - top : 120 - top, 100 - left : 160 - left], frame[50:120, 100:160]
    )
    # the bystander's box (what lies inside the crop) is black
    assert not capture[60 - top : 110 - top, 165 - left : plain.shape[1]].any()
    # the rest of the crop is the frame
    assert np.array_equal(capture[:5, :20], plain[:5, :20])
    assert capture.base is None or capture.base is not frame


def test_a_capture_from_a_group_photo_shows_one_face(dlib_engine, insightface_images: Path) -> None:
    """Real faces: t1.jpg (six people side by side), a wide crop around one of them."""
    group = load_image(insightface_images / "t1.jpg")
    boxes = dlib_engine.detect(group).boxes
    assert len(boxes) >= 5
    margin = 2.0  # wide, so that neighbours come into the crop
    with_bystanders = 0
    for i in range(len(boxes)):
        unredacted = crop_capture(group, boxes[i], margin)
        with_bystanders += len(dlib_engine.detect(unredacted).boxes) >= 2
        capture = crop_capture(group, boxes[i], margin, others=np.delete(boxes, i, axis=0))
        found = dlib_engine.detect(capture).boxes
        assert len(found) == 1, i  # only the alerting face is left to see
    assert with_bystanders >= 3  # without blanking, bystanders would have been kept
