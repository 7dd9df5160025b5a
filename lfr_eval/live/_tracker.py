"""Follow faces from one detection to the next so that each face is embedded once, not per frame.

Detection runs on a worker thread at whatever rate the CPU allows (about 10–30 Hz with dlib's
HOG on two cores), while the video runs at 15–30 fps. :class:`FaceTracker` associates each new
set of detections with the existing tracks by box overlap (IoU, optimal assignment with
:func:`scipy.optimize.linear_sum_assignment`) and keeps a smoothed box and velocity per track, so
the video thread can draw every frame with the box moved to where the face should be now.

Short misses (the detector skipped a frame, a face turned or passed behind another for a moment)
are bridged by the track's constant-velocity prediction: a missed track keeps moving at its
measured speed for up to ``max_missing_s``, and a detection near where it *should* be by then is
the same face again. This is what keeps identities apart when two faces cross and one hides the
other: each track's prediction carries it past the crossing, so the hidden face is picked up
again on its own side (``tests/test_live_tracker.py``).

A track is a geometric notion ("the face in this part of the picture"): the recognition state
(embedding, best match) is kept beside it by :class:`~lfr_eval.live.LivePipeline`. The number of
distinct tracks is the "faces seen" count of a deployment. Because tracks are geometric, two
people who swap places between two detections (about 0.1 s apart) are counted as one face; a
person walking out of view and back in is counted twice, as a real deployment counts them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``boxes_a`` with every box in ``boxes_b``.

    Parameters
    ----------
    boxes_a : ndarray of shape (n, 4)
    boxes_b : ndarray of shape (m, 4)
        ``(x1, y1, x2, y2)`` pixels.

    Returns
    -------
    ndarray of shape (n, m), values in [0, 1].
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    iou: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


#: Shortest gap between two detections from which a speed is measured, seconds.
_MIN_VELOCITY_DT_S = 0.05


@dataclass(frozen=True)
class TrackState:
    """Where one tracked face is.

    Attributes
    ----------
    track_id : int
        Unique within a tracker, starting at 1, never reused.
    box : ndarray of shape (4,)
        Smoothed ``(x1, y1, x2, y2)`` at the last detection, pixels.
    velocity : ndarray of shape (4,)
        Rate of change of the box corners, pixels per second.
    first_seen_t : float
        Stream time (seconds) of the frame in which the face was first detected.
    last_seen_t : float
        Stream time of the last frame in which it was detected.
    hits : int
        Number of detections matched to this track.
    misses : int
        Detection steps since the last match (0 when matched in the latest step).
    reacquired : bool
        Matched in the latest step after being missed in the steps before: the face may have
        been hidden, or someone else may have stepped into its place.
    unseen_before_s : float
        When ``reacquired``: how long the track had gone undetected before this match, seconds
        (0 otherwise).
    """

    track_id: int
    box: np.ndarray
    velocity: np.ndarray
    first_seen_t: float
    last_seen_t: float
    hits: int
    misses: int = 0
    reacquired: bool = False
    unseen_before_s: float = 0.0

    def predict(self, t: float, *, max_extrapolation_s: float = 0.7) -> np.ndarray:
        """Box expected at stream time ``t``, moving at the track's velocity.

        Extrapolation is capped at ``max_extrapolation_s`` past the last detection (the
        tracker's ``max_missing_s``, after which a missed track ends) so a face that stopped
        being detected does not drift off.
        """
        dt = float(np.clip(t - self.last_seen_t, 0.0, max_extrapolation_s))
        return self.box + self.velocity * dt


@dataclass(frozen=True)
class TrackUpdate:
    """What one call of :meth:`FaceTracker.update` did.

    Attributes
    ----------
    track_ids : tuple of int
        Track id of each detection, in the order the detections were given.
    new_track_ids : tuple of int
        Tracks started by this update.
    ended_track_ids : tuple of int
        Tracks ended because they were not detected for too long.
    """

    track_ids: tuple[int, ...]
    new_track_ids: tuple[int, ...]
    ended_track_ids: tuple[int, ...]


class FaceTracker:
    """IoU tracker with constant-velocity prediction (not thread-safe: one owner thread).

    Parameters
    ----------
    min_iou : float
        Lowest overlap, in [0, 1], between a track's predicted box and a detection for the two to
        be the same face.
    max_missing_s : float
        A track ends when it has not been detected for this many seconds *and* in at least
        ``min_misses`` detection steps in a row (so a slow detection step on a busy CPU does not
        end every track it happens to miss once).
    min_misses : int
        See ``max_missing_s``.
    smoothing : float
        Weight in (0, 1] of a new detection in the smoothed box (1 = no smoothing). Smoothing
        removes the detector's frame-to-frame jitter from the drawn boxes.
    """

    def __init__(
        self,
        *,
        min_iou: float = 0.3,
        max_missing_s: float = 0.7,
        min_misses: int = 2,
        smoothing: float = 0.6,
    ) -> None:
        if not 0.0 <= min_iou <= 1.0:
            raise ValueError(f"min_iou must be in [0, 1], got {min_iou}")
        if max_missing_s <= 0:
            raise ValueError(f"max_missing_s must be positive seconds, got {max_missing_s}")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.min_iou = float(min_iou)
        self.max_missing_s = float(max_missing_s)
        self.min_misses = max(1, int(min_misses))
        self.smoothing = float(smoothing)
        self._tracks: dict[int, TrackState] = {}
        self._next_id = 1

    @property
    def tracks(self) -> tuple[TrackState, ...]:
        """The live tracks, oldest first."""
        return tuple(self._tracks.values())

    def get(self, track_id: int) -> TrackState | None:
        return self._tracks.get(track_id)

    @property
    def n_started(self) -> int:
        """Tracks started since creation: the number of distinct faces seen."""
        return self._next_id - 1

    def update(self, boxes: np.ndarray, t: float) -> TrackUpdate:
        """Associate the detections of the frame at stream time ``t`` with the tracks.

        Parameters
        ----------
        boxes : ndarray of shape (n, 4)
            Detected ``(x1, y1, x2, y2)`` boxes, pixels.
        t : float
            Stream time of the frame the detections come from, seconds (non-decreasing).

        Returns
        -------
        TrackUpdate
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = list(self._tracks)
        assigned = np.full(len(boxes), -1, dtype=np.int64)
        if ids and len(boxes):
            # Overlap with the predicted box or with the last seen one, whichever is larger: the
            # prediction follows a moving face, the last box keeps a face that stopped.
            predicted = np.stack(
                [self._tracks[i].predict(t, max_extrapolation_s=self.max_missing_s) for i in ids]
            )
            last = np.stack([self._tracks[i].box for i in ids])
            iou = np.maximum(box_iou(predicted, boxes), box_iou(last, boxes))
            rows, cols = linear_sum_assignment(-iou)
            keep = iou[rows, cols] >= self.min_iou
            assigned[cols[keep]] = np.asarray(ids, dtype=np.int64)[rows[keep]]

        new_ids: list[int] = []
        out_ids: list[int] = []
        for box, assigned_id in zip(boxes, assigned, strict=True):
            if assigned_id < 0:
                track_id = self._next_id
                self._next_id += 1
                self._tracks[track_id] = TrackState(
                    track_id=track_id,
                    box=box.copy(),
                    velocity=np.zeros(4),
                    first_seen_t=float(t),
                    last_seen_t=float(t),
                    hits=1,
                )
                new_ids.append(track_id)
            else:
                track_id = int(assigned_id)
                self._tracks[track_id] = self._advance(self._tracks[track_id], box, t)
            out_ids.append(track_id)

        matched = set(out_ids)
        ended = []
        for i, track in list(self._tracks.items()):
            if i in matched:
                continue
            track = dataclasses.replace(track, misses=track.misses + 1)
            self._tracks[i] = track
            if track.misses >= self.min_misses and t - track.last_seen_t > self.max_missing_s:
                ended.append(i)
        for i in ended:
            del self._tracks[i]
        return TrackUpdate(tuple(out_ids), tuple(new_ids), tuple(ended))

    def split(self, track_id: int, t: float) -> int:
        """End a track and start a new one in its place (another person took it over).

        Returns the new track's id; it counts as a new face seen at stream time ``t``.
        """
        old = self._tracks.pop(track_id)
        new_id = self._next_id
        self._next_id += 1
        self._tracks[new_id] = TrackState(
            track_id=new_id,
            box=old.box.copy(),
            velocity=np.zeros(4),
            first_seen_t=float(t),
            last_seen_t=old.last_seen_t,
            hits=1,
        )
        return new_id

    def expire(self, t: float) -> tuple[int, ...]:
        """End tracks not detected since ``t - max_missing_s``; return their ids.

        For when no frame arrives at all (the stream stopped): nothing can be seen, so time alone
        decides.
        """
        ended = [i for i, tr in self._tracks.items() if t - tr.last_seen_t > self.max_missing_s]
        for i in ended:
            del self._tracks[i]
        return tuple(ended)

    def _advance(self, track: TrackState, box: np.ndarray, t: float) -> TrackState:
        dt = t - track.last_seen_t
        predicted = track.predict(t, max_extrapolation_s=self.max_missing_s)
        smoothed = self.smoothing * box + (1.0 - self.smoothing) * predicted
        velocity = track.velocity
        # Over very short gaps the detector's pixel jitter would read as a high speed.
        if dt >= _MIN_VELOCITY_DT_S:
            measured = (smoothed - track.box) / dt
            velocity = 0.5 * measured + 0.5 * track.velocity
            # no face crosses more than two of its own widths per second in front of a camera
            size = max(1.0, float(smoothed[2] - smoothed[0]))
            velocity = np.clip(velocity, -2 * size, 2 * size)
        return TrackState(
            track_id=track.track_id,
            box=smoothed,
            velocity=velocity,
            first_seen_t=track.first_seen_t,
            last_seen_t=float(t),
            hits=track.hits + 1,
            misses=0,
            reacquired=track.misses > 0,
            unseen_before_s=float(dt) if track.misses > 0 else 0.0,
        )
