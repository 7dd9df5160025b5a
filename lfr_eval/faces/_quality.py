"""Model-free quality measures of a detected face: size, blur and a rough head pose.

All backends compute these from the same inputs (five landmarks in our convention, the box and
the aligned crop) so the figures are comparable between engines, except ``blur``, which depends
on how much context the backend's crop holds (dlib's 150 px chip with 25 % padding vs ArcFace's
112 px crop).

The pose uses the eyes and the nose tip only: dlib's 5-point model has no mouth corners (the
dlib engine estimates them), so leaning on them would make pitch depend on the backend.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lfr_eval.faces._types import FaceQuality

#: ArcFace's canonical five points in a 112x112 crop (insightface ``face_align.arcface_dst``):
#: left eye, right eye, nose tip, left and right mouth corner.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

#: Vertical drop from the eye line to the nose tip over the inter-ocular distance of a frontal
#: face (from the template above: 20.1 / 35.2).
_FRONTAL_NOSE_DROP = 0.571
#: How far the nose tip stands in front of the eye centres, over half the inter-ocular distance
#: (generic 3D head model used with solvePnP: eyes at x = ±170, 135 behind the nose tip).
_NOSE_DEPTH = 0.8
#: Side of the square grey image the blur is measured on, so crops of any size compare.
_BLUR_SIZE = 112


def inter_ocular_px(landmarks: np.ndarray) -> float:
    """Distance between the two eye centres, in pixels of the image the landmarks refer to."""
    points = np.asarray(landmarks, dtype=np.float64)
    return float(np.hypot(*(points[1] - points[0])))


def blur_score(crop: np.ndarray) -> float:
    """Sharpness of an aligned crop: variance of the Laplacian of its grey image.

    The crop is resized to 112x112 first, so the value does not grow with crop size.
    Higher is sharper; below about 50 a face is visibly blurred. Unitless, >= 0.
    """
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    if grey.shape != (_BLUR_SIZE, _BLUR_SIZE):
        grey = cv2.resize(grey, (_BLUR_SIZE, _BLUR_SIZE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float]:
    """Rough head pose ``(yaw, pitch, roll)`` in degrees from the eyes and nose tip.

    A weak-perspective model of a generic head: roll is the slope of the eye line; after
    undoing it, yaw comes from how far the nose tip sits sideways of the eye midpoint and pitch
    from how far it sits below the eye line, both relative to the inter-ocular distance. Yaw
    and roll are good to about ±10° up to ±45° yaw; pitch is cruder (faces differ in nose
    length: with the dlib engine, 90 % of LFW faces fall between -14° and +29°). Meant for
    flagging turned heads, not for measurement.

    Signs: yaw > 0 when the nose tip is right of the eye midpoint in the image; pitch > 0 when
    the head is tilted up (nose tip closer to the eye line than in a frontal face); roll > 0 when
    the eye line slopes downwards to the right of the image.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    left_eye, right_eye, nose = points[0], points[1], points[2]
    eye_vec = right_eye - left_eye
    iod = float(np.hypot(*eye_vec))
    if iod < 1e-6:
        return 0.0, 0.0, 0.0
    roll = math.atan2(eye_vec[1], eye_vec[0])
    # nose tip in a frame whose x axis follows the eye line, origin at the eye midpoint
    cos_r, sin_r = math.cos(roll), math.sin(roll)
    rel = nose - (left_eye + right_eye) / 2.0
    along = rel[0] * cos_r + rel[1] * sin_r
    below = -rel[0] * sin_r + rel[1] * cos_r
    yaw = math.atan2(along / (iod / 2.0), _NOSE_DEPTH)
    # the eyes' apparent distance shrinks with cos(yaw): undo it before using it as the scale
    face_width = iod / max(math.cos(yaw), 0.2)
    # below / width ~ A cos(pitch) - B sin(pitch) with A the frontal drop and B the nose depth;
    # we use its first-order form A - B tan(pitch): the exact one peaks at -35 degrees, where
    # ordinary differences between faces would pin every slightly long nose at that value
    drop_change = _FRONTAL_NOSE_DROP - below / face_width
    pitch = math.atan2(drop_change, _NOSE_DEPTH / 2.0)
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def face_quality(box: np.ndarray, landmarks: np.ndarray, crop: np.ndarray) -> FaceQuality:
    """All quality measures of one face (see :class:`~lfr_eval.faces.FaceQuality`)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    yaw, pitch, roll = pose_from_landmarks(landmarks)
    return FaceQuality(
        size_px=inter_ocular_px(landmarks),
        box_size_px=math.sqrt(max(0.0, x2 - x1) * max(0.0, y2 - y1)),
        blur=blur_score(crop),
        yaw_deg=yaw,
        pitch_deg=pitch,
        roll_deg=roll,
    )
