"""Synthetic camera scenes built from real face photographs, for tests, benchmarks and training.

A :class:`SceneScript` places face photos (e.g. LFW images of listed people and of strangers) on
a plain background at given times and positions, optionally moving, and renders frames at a
fixed rate. :func:`write_y4m` writes them as a YUV4MPEG2 file, the format Chromium plays as a
fake webcam (``--use-file-for-fake-video-capture``). The times at which each face enters are
known exactly, so the time from a face entering to its alert can be measured.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

#: Share of a photo's width that must be inside the frame for its face to count as shown.
SHOWN_FRACTION = 0.75


@dataclass(frozen=True)
class FaceAppearance:
    """One face photo shown in the scene for a while.

    Attributes
    ----------
    image : ndarray (h, w, 3) uint8 RGB
        The photo (a whole LFW image is fine: the face is in its middle).
    start_s, end_s : float
        When it is visible, seconds from the start of the scene (``start_s <= t < end_s``).
    x, y : float
        Top-left corner of the photo at ``start_s``, pixels.
    width : int
        Width the photo is scaled to, pixels (height keeps the aspect ratio).
    velocity : tuple of float
        Movement in pixels per second, ``(vx, vy)``.
    label : str
        Who it is (for the caller's bookkeeping; not drawn).
    """

    image: np.ndarray = field(repr=False)
    start_s: float
    end_s: float
    x: float
    y: float
    width: int = 210
    velocity: tuple[float, float] = (0.0, 0.0)
    label: str = ""

    def visible(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


@dataclass(frozen=True)
class SceneScript:
    """A camera scene: background, size, frame rate and the faces shown.

    Attributes
    ----------
    appearances : tuple of FaceAppearance
    duration_s : float
        Length of the scene, seconds.
    fps : float
        Frames per second.
    size : tuple of int
        ``(width, height)`` in pixels; 640×480 by default.
    background : int
        Grey level of the background, 0–255.
    """

    appearances: tuple[FaceAppearance, ...]
    duration_s: float
    fps: float = 15.0
    size: tuple[int, int] = (640, 480)
    background: int = 110

    @property
    def n_frames(self) -> int:
        return round(self.duration_s * self.fps)

    def frame_time(self, index: int) -> float:
        """Scene time of frame ``index``, seconds."""
        return index / self.fps

    def render(self, t: float) -> np.ndarray:
        """The frame at scene time ``t`` (RGB uint8, ``(height, width, 3)``)."""
        width, height = self.size
        # A faint gradient rather than a flat colour gives the video encoder something to do,
        # as a real background would.
        ramp = np.linspace(-12, 12, width, dtype=np.float32)[None, :]
        base = np.clip(self.background + ramp, 0, 255).astype(np.uint8)
        frame = np.repeat(np.repeat(base[:, :, None], 3, axis=2), height, axis=0)
        for face in self.appearances:
            if not face.visible(t):
                continue
            h0, w0 = face.image.shape[:2]
            w = int(face.width)
            h = round(h0 * w / w0)
            photo = cv2.resize(face.image, (w, h), interpolation=cv2.INTER_AREA)
            dt = t - face.start_s
            x = round(face.x + face.velocity[0] * dt)
            y = round(face.y + face.velocity[1] * dt)
            # paste the part of the photo that lies inside the frame
            fx1, fy1 = max(0, x), max(0, y)
            fx2, fy2 = min(width, x + w), min(height, y + h)
            if fx2 <= fx1 or fy2 <= fy1:
                continue
            frame[fy1:fy2, fx1:fx2] = photo[fy1 - y : fy2 - y, fx1 - x : fx2 - x]
        return frame

    def placements(self, t: float) -> list[tuple[int, np.ndarray]]:
        """Ground truth at scene time ``t``: (appearance index, photo rectangle) of every face
        shown, the rectangle ``(x1, y1, x2, y2)`` clipped to the frame (pixels). Photos wholly
        outside the frame are left out."""
        width, height = self.size
        out = []
        for index, face in enumerate(self.appearances):
            if not face.visible(t):
                continue
            h0, w0 = face.image.shape[:2]
            w = int(face.width)
            h = round(h0 * w / w0)
            dt = t - face.start_s
            x = round(face.x + face.velocity[0] * dt)
            y = round(face.y + face.velocity[1] * dt)
            rect = np.array([max(0, x), max(0, y), min(width, x + w), min(height, y + h)], float)
            if rect[2] > rect[0] and rect[3] > rect[1]:
                out.append((index, rect))
        return out

    def box_coverage(self, t: float, boxes: np.ndarray) -> tuple[int, int]:
        """Faces shown at scene time ``t`` and how many of them have a box on them.

        A face counts as shown when at least :data:`SHOWN_FRACTION` of its photo's width is in
        the frame; it has a box when the centre of one of ``boxes`` (``(n, 4)``, scene pixels)
        lies on its photo. The one definition of box coverage for the benchmarks.

        Returns
        -------
        (int, int)
            ``(shown, covered)``.
        """
        faces = self.shown_faces(t, boxes)
        return len(faces), sum(faces.values())

    def shown_faces(self, t: float, boxes: np.ndarray) -> dict[int, bool]:
        """The faces shown at scene time ``t`` (:meth:`box_coverage`'s rule): appearance index
        -> whether one of ``boxes`` (``(n, 4)``, scene pixels) is centred on its photo."""
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        out = {}
        for index, rect in self.placements(t):
            if rect[2] - rect[0] < SHOWN_FRACTION * self.appearances[index].width:
                continue
            on_face = (cx >= rect[0]) & (cx <= rect[2]) & (cy >= rect[1]) & (cy <= rect[3])
            out[index] = bool(on_face.any())
        return out

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame of the scene in order."""
        for i in range(self.n_frames):
            yield self.render(self.frame_time(i))

    def entries(self, label: str | None = None) -> list[float]:
        """Start times of the appearances (of one label if given), sorted, seconds."""
        return sorted(a.start_s for a in self.appearances if label is None or a.label == label)


#: Seconds after a passage's end in which an alert for its person still counts for it: on a
#: busy machine recognition can finish a second or two after the person left the picture.
ALERT_GRACE_S = 3.0


@dataclass(frozen=True)
class Passage:
    """One passage of a listed person through the scene (ground truth).

    Attributes
    ----------
    subject_id : str
        Who (the watchlist subject the alert should name).
    start_s, end_s : float
        First and last moment the person is in the picture, seconds on the caller's clock (the
        same clock as the alert times given to :func:`alerts_per_passage`).
    """

    subject_id: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class PassageAlerts:
    """Alerts attributed to passages: what "one passage, one alert" measured.

    Attributes
    ----------
    passages : int
        Passages judged (ended at least ``grace_s`` before the alerts were collected).
    alerts : tuple of int
        Alerts counted for each judged passage, in passage order (1 is right; 0 is a missed
        passage, 2 or more a passage split into several alerts).
    time_to_alert_s : tuple of float
        For each alerted passage, seconds from its start to its first alert.
    late_alerts : int
        First alerts raised after their person had left the picture (within ``grace_s``).
    unattributed_alerts : int
        Alerts naming a subject with no passage of theirs begun before it, or raised more than
        ``grace_s`` after that passage ended: false alerts.
    """

    passages: int
    alerts: tuple[int, ...]
    time_to_alert_s: tuple[float, ...]
    late_alerts: int
    unattributed_alerts: int

    @property
    def alerts_per_passage(self) -> float:
        """Mean alerts per judged passage (0.0 when none was judged)."""
        return float(np.mean(self.alerts)) if self.alerts else 0.0

    @property
    def missed(self) -> int:
        """Judged passages without an alert."""
        return sum(1 for n in self.alerts if n == 0)

    @property
    def split(self) -> int:
        """Judged passages with more than one alert."""
        return sum(1 for n in self.alerts if n > 1)


def alerts_per_passage(
    passages: Sequence[Passage],
    alerts: Sequence[tuple[float, str]],
    *,
    grace_s: float = ALERT_GRACE_S,
    until: float | None = None,
) -> PassageAlerts:
    """Attribute alerts to the passages of listed people (the one rule for every benchmark).

    An alert ``(t, subject_id)`` belongs to the latest passage of that subject begun at or
    before ``t``, if ``t`` is no later than ``grace_s`` after that passage's end. A passage
    that ended less than ``grace_s`` before ``until`` (when the alerts were collected) is not
    judged, and neither are its alerts: its alert may simply not have come yet.

    Parameters
    ----------
    passages : sequence of Passage
    alerts : sequence of (float, str)
        Time each alert was raised (the passages' clock) and the subject it names.
    grace_s : float
        See :data:`ALERT_GRACE_S` (>= 0).
    until : float, optional
        When the alerts were collected; ``None`` when every alert that will ever come is in
        (the pipeline has stopped).
    """
    order = sorted(range(len(passages)), key=lambda k: passages[k].start_s)
    judged = [until is None or passages[k].end_s + grace_s <= until for k in range(len(passages))]
    hits: dict[int, list[float]] = {k: [] for k in range(len(passages))}
    unattributed = 0
    for t, subject in alerts:
        owner = None
        for k in order:
            if passages[k].subject_id == subject and passages[k].start_s <= t:
                owner = k
        if owner is None or t > passages[owner].end_s + grace_s:
            unattributed += 1
        elif judged[owner]:
            hits[owner].append(t)
    counted = [k for k in order if judged[k]]
    alerted = [k for k in counted if hits[k]]
    return PassageAlerts(
        passages=len(counted),
        alerts=tuple(len(hits[k]) for k in counted),
        time_to_alert_s=tuple(round(min(hits[k]) - passages[k].start_s, 3) for k in alerted),
        late_alerts=sum(1 for k in alerted if min(hits[k]) > passages[k].end_s),
        unattributed_alerts=unattributed,
    )


def write_y4m(path: str | os.PathLike[str], frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write RGB frames as a YUV4MPEG2 (``.y4m``) video, 4:2:0.

    Parameters
    ----------
    path : path
        Output file.
    frames : iterable of ndarray (H, W, 3) uint8 RGB
        All the same size; width and height must be even (4:2:0 chroma).
    fps : float
        Frame rate; written as an integer ratio (``fps * 1000 : 1000``).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    rate = round(fps * 1000)
    with open(path, "wb") as out:
        size: tuple[int, int] | None = None
        for frame in frames:
            height, width = frame.shape[:2]
            if size is None:
                if width % 2 or height % 2:
                    raise ValueError(f"y4m 4:2:0 needs even frame sizes, got {width}x{height}")
                size = (width, height)
                out.write(f"YUV4MPEG2 W{width} H{height} F{rate}:1000 Ip A1:1 C420jpeg\n".encode())
            elif (width, height) != size:
                raise ValueError(f"all frames must be {size[0]}x{size[1]}, got {width}x{height}")
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes())
        if size is None:
            raise ValueError("no frames to write")
    return path
