"""Frame stamps and the frame log: what the real-browser benchmark needs to see server-side.

In the browser benchmark the fake camera plays a :class:`~lfr_eval.live.SceneScript` whose
frames carry their index as a row of black and white blocks (:func:`stamp_frame_index`). The
Live page, started with ``LFR_LIVE_FRAME_LOG=<file>``, reads the stamp back from every frame
it receives (:func:`read_frame_index`, after the WebRTC video codec) and writes one JSON line per
frame: arrival time, frame index, frame size and the boxes it drew (:class:`FrameLog`). Against
the scene's ground truth that gives box coverage, time to alert and alerts per passage for
exactly the frames that went through the browser's path (:func:`read_frame_log`). Without the
variable the page logs nothing.

The stamp lies along the bottom of the frame, below where the scenes place faces; no face data is
logged (frame indices and box coordinates only).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lfr_eval.live._scene import ALERT_GRACE_S as _ALERT_GRACE_S
from lfr_eval.live._scene import Passage, alerts_per_passage

if TYPE_CHECKING:
    from lfr_eval.live._scene import SceneScript

#: Environment variable naming the frame log file (benchmark mode of the Live page).
ENV_FRAME_LOG = "LFR_LIVE_FRAME_LOG"

#: Bits of the frame index in a stamp (the scene loops long before 2**INDEX_BITS frames).
INDEX_BITS = 12
#: Stamp geometry on a 640-px-wide frame (scaled with the frame): block width, height, pitch,
#: left edge and top edge, pixels. Blocks of 24x20 px survive VP8 at webcam bitrates.
_BLOCK_W, _BLOCK_H, _PITCH, _LEFT, _TOP_FROM_BOTTOM = 24, 20, 32, 16, 28
_REFERENCE_WIDTH = 640
#: A stamp is a white guard block, a black guard block, then the index bits (MSB first).
_GUARD = (1, 0)


def _blocks(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) of every stamp block for a frame of this size."""
    scale = width / _REFERENCE_WIDTH
    top = height - round(_TOP_FROM_BOTTOM * scale)
    out = []
    for k in range(len(_GUARD) + INDEX_BITS):
        x1 = round((_LEFT + k * _PITCH) * scale)
        out.append((x1, top, x1 + round(_BLOCK_W * scale), top + round(_BLOCK_H * scale)))
    return out


def stamp_frame_index(frame: np.ndarray, index: int) -> np.ndarray:
    """A copy of ``frame`` (RGB uint8) with ``index`` written along its bottom edge.

    Raises
    ------
    ValueError
        ``index`` outside ``[0, 2**INDEX_BITS)``.
    """
    if not 0 <= index < 2**INDEX_BITS:
        raise ValueError(f"frame index must be in [0, {2**INDEX_BITS}), got {index}")
    out = np.array(frame, copy=True)
    bits = list(_GUARD) + [(index >> (INDEX_BITS - 1 - b)) & 1 for b in range(INDEX_BITS)]
    for bit, (x1, y1, x2, y2) in zip(bits, _blocks(out.shape[1], out.shape[0]), strict=True):
        out[y1:y2, x1:x2] = 255 if bit else 0
    return out


def read_frame_index(frame: np.ndarray) -> int | None:
    """The index stamped on a frame (possibly rescaled and re-encoded), or ``None`` when the
    frame carries no readable stamp."""
    height, width = frame.shape[:2]
    values = []
    for x1, y1, x2, y2 in _blocks(width, height):
        # the middle half of each block: codec ringing stays at the edges
        dx, dy = max(1, (x2 - x1) // 4), max(1, (y2 - y1) // 4)
        patch = frame[y1 + dy : y2 - dy, x1 + dx : x2 - dx]
        if patch.size == 0:
            return None
        level = float(patch.mean())
        if 70 <= level <= 185:
            return None  # neither black nor white: not a stamp
        values.append(1 if level > 185 else 0)
    if tuple(values[: len(_GUARD)]) != _GUARD:
        return None
    index = 0
    for bit in values[len(_GUARD) :]:
        index = index << 1 | bit
    return index


class FrameLog:
    """Appends one JSON line per received frame to a file (the browser benchmark's record).

    Lines: ``{"t": unix seconds, "i": stamped index or null, "w": width, "h": height,
    "boxes": [[x1, y1, x2, y2], ...]}`` (boxes drawn on that frame, pixels of that frame).
    Thread-safe; flushed every few lines so a stopped server loses at most a fraction of a
    second.
    """

    FLUSH_EVERY = 15

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the server
        self._pending = 0

    def record(self, frame: np.ndarray, boxes: Iterable[Sequence[float]]) -> None:
        """Log one frame as it arrived (before drawing) and the boxes drawn on it."""
        line = json.dumps(
            {
                "t": round(time.time(), 4),
                "i": read_frame_index(frame),
                "w": int(frame.shape[1]),
                "h": int(frame.shape[0]),
                "boxes": [[round(float(v), 1) for v in box] for box in boxes],
            }
        )
        with self._lock:
            self._out.write(line + "\n")
            self._pending += 1
            if self._pending >= self.FLUSH_EVERY:
                self._out.flush()
                self._pending = 0

    @classmethod
    def from_env(cls) -> FrameLog | None:
        """The log named by ``LFR_LIVE_FRAME_LOG`` (one per file per process), or ``None``."""
        path = os.environ.get(ENV_FRAME_LOG)
        return _frame_log(path) if path else None


@lru_cache(maxsize=4)
def _frame_log(path: str) -> FrameLog:
    return FrameLog(path)


@dataclass(frozen=True)
class LoggedFrame:
    """One line of a frame log.

    Attributes
    ----------
    t : float
        When the frame reached the page's frame callback, Unix seconds.
    index : int or None
        Stamped frame index of the scene loop (``None`` when unreadable).
    size : tuple of int
        ``(width, height)`` of the frame as received, pixels (WebRTC may scale it down).
    boxes : ndarray (n, 4)
        Boxes drawn on it, pixels of the received frame.
    """

    t: float
    index: int | None
    size: tuple[int, int]
    boxes: np.ndarray


def read_frame_log(path: str | os.PathLike[str]) -> list[LoggedFrame]:
    """The frames of a :class:`FrameLog` file in order (a torn last line is skipped)."""
    frames = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        frames.append(
            LoggedFrame(
                t=float(row["t"]),
                index=row["i"],
                size=(int(row["w"]), int(row["h"])),
                boxes=np.asarray(row["boxes"], dtype=float).reshape(-1, 4),
            )
        )
    return frames


#: Seconds after a passage's last frame in which an alert still counts for it (the rule is
#: :func:`lfr_eval.live._scene.alerts_per_passage`, shared with ``bench_live.py``).
ALERT_GRACE_S = _ALERT_GRACE_S


@dataclass(frozen=True)
class BrowserFigures:
    """What the frames logged on the browser's path show against the scene's ground truth.

    Attributes
    ----------
    frames : int
        Frames logged with a readable stamp.
    unstamped : int
        Frames logged whose stamp could not be read (left out of every figure).
    callback_fps : float
        Those frames per second of wall time (frames that reached the page's callback).
    received_size : tuple of int
        Most common ``(width, height)`` of the frames as received.
    box_coverage : float
        Face-frames with a drawn box on the face, of face-frames shown
        (:meth:`SceneScript.box_coverage`), in [0, 1].
    passages : int
        Passages of a listed person seen whole in the log and ended at least
        :data:`ALERT_GRACE_S` before the alerts were collected.
    alerts_per_passage : float
        Alerts per passage (an alert counts for the latest passage begun before it, up to
        :data:`ALERT_GRACE_S` after its end: :func:`lfr_eval.live._scene.alerts_per_passage`);
        1 is right.
    missed_passages : int
        Passages without an alert.
    time_to_alert_s : tuple of float
        Per alerted passage, from the first frame of the passage reaching the page to its
        first alert, seconds.
    """

    frames: int
    unstamped: int
    callback_fps: float
    received_size: tuple[int, int]
    box_coverage: float
    passages: int
    alerts_per_passage: float
    missed_passages: int
    time_to_alert_s: tuple[float, ...]


def browser_figures(
    frames: Sequence[LoggedFrame],
    scene: SceneScript,
    alert_times: Sequence[float],
    *,
    listed_label: str = "listed",
    until: float | None = None,
) -> BrowserFigures:
    """Box coverage, alerts per passage and time to alert from a frame log.

    Parameters
    ----------
    frames : sequence of LoggedFrame
        :func:`read_frame_log`'s result.
    scene : SceneScript
        The scene the fake camera loops (stamped with :func:`stamp_frame_index`).
    alert_times : sequence of float
        When each alert for a listed person was raised, Unix seconds.
    listed_label : str
        :attr:`FaceAppearance.label` of the listed person's appearances.
    until : float, optional
        Only frames and passages up to this Unix time (e.g. before the threshold was raised).
    """
    window = [f for f in frames if until is None or f.t <= until]
    stamped = [f for f in window if f.index is not None]

    def at(frame: LoggedFrame) -> float:
        """Scene time of a stamped frame, seconds."""
        assert frame.index is not None  # only stamped frames are timed
        return scene.frame_time(frame.index)

    # the camera loops: a stamp index lower than the one before starts a new loop
    loops, loop, last = [], 0, -1
    for frame in stamped:
        if frame.index is not None and frame.index < last:
            loop += 1
        last = frame.index if frame.index is not None else last
        loops.append(loop)
    shown = covered = 0
    sizes: dict[tuple[int, int], int] = {}
    for frame in stamped:
        sizes[frame.size] = sizes.get(frame.size, 0) + 1
        scale = scene.size[0] / frame.size[0]
        s, c = scene.box_coverage(at(frame), frame.boxes * scale)
        shown, covered = shown + s, covered + c
    listed = [a for a in scene.appearances if a.label == listed_label]
    spans = []  # (first frame's arrival, last frame's arrival) of every passage seen whole
    for n in range(loop + 1):
        in_loop = [f for f, k in zip(stamped, loops, strict=True) if k == n]
        for face in listed:
            during = [f for f in in_loop if face.visible(at(f))]
            after = [f for f in in_loop if at(f) >= face.end_s]
            # only passages seen whole: from their first frames to past their end
            if not during or not after:
                continue
            if at(during[0]) > face.start_s + 0.25:
                continue
            spans.append((during[0].t, during[-1].t))
    # One rule for every benchmark: an alert belongs to the latest passage begun before it, up
    # to ALERT_GRACE_S after that passage's last frame; a passage that ended less than that
    # before the alerts were collected is not judged (its alert may still have been coming).
    attributed = alerts_per_passage(
        [Passage(listed_label, start, end) for start, end in spans],
        [(t, listed_label) for t in alert_times],
        grace_s=ALERT_GRACE_S,
        until=until if until is not None else (window[-1].t if window else None),
    )
    wall = stamped[-1].t - stamped[0].t if len(stamped) > 1 else 0.0
    return BrowserFigures(
        frames=len(stamped),
        unstamped=len(window) - len(stamped),
        callback_fps=round((len(stamped) - 1) / wall, 2) if wall > 0 else 0.0,
        received_size=max(sizes, key=lambda k: sizes[k]) if sizes else (0, 0),
        box_coverage=round(covered / shown, 4) if shown else 0.0,
        passages=attributed.passages,
        alerts_per_passage=round(attributed.alerts_per_passage, 3),
        missed_passages=attributed.missed,
        time_to_alert_s=attributed.time_to_alert_s,
    )
