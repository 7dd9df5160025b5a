"""Settings of a running live stream, shared between the UI thread and the video threads.

Streamlit reruns the page script on the UI thread whenever a widget moves; the frame callback
and the recognition worker run on their own threads and must never call Streamlit. They meet in
one small lock-protected object: the page writes with :meth:`LiveSettings.update`, the video
threads read an immutable :class:`LiveConfig` snapshot with :meth:`LiveSettings.snapshot` once
per frame, so a threshold moved on the slider acts on the very next frame.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lfr_eval.faces._choice import DEFAULT_THRESHOLDS, default_threshold  # noqa: F401 (re-export)

# One default per engine for the whole workbench (lfr_eval.faces.default_threshold); re-exported
# here for the live package's users.
DEFAULT_THRESHOLD = DEFAULT_THRESHOLDS["dlib"]


#: Default :attr:`LiveConfig.recognition_cpu_share`: no duty-cycle pause, so the bound is the
#: live engine's one thread (one core of the machine). Measured in the browser benchmark on the
#: 2-core machine (``benchmarks/RESULTS.md``, "Recognition's share"): 0.5 gave no more painted
#: frames than 1.0 (23.1-23.8 against 21.7-25.3 fps; the frames are lost in Chromium's painting,
#: not for want of CPU on the server) and a third of the recognition steps (3-4.6 against
#: 4.8-15.8 per second, box coverage 83-89 % against 86-94 %). Lower it on the page when the
#: video stutters on a slower machine.
DEFAULT_RECOGNITION_SHARE = 1.0
#: Environment variable: the Live page's starting recognition share, a number in (0, 1].
ENV_RECOGNITION_SHARE = "LFR_LIVE_CPU_SHARE"


def recognition_share_from_env(environ: Mapping[str, str] | None = None) -> float:
    """The recognition share set by :data:`ENV_RECOGNITION_SHARE`, else the default.

    Raises
    ------
    ValueError
        The variable is set but is not a number in (0, 1].
    """
    text = (os.environ if environ is None else environ).get(ENV_RECOGNITION_SHARE, "").strip()
    if not text:
        return DEFAULT_RECOGNITION_SHARE
    try:
        share = float(text)
    except ValueError:
        share = math.nan
    if not 0.0 < share <= 1.0:
        raise ValueError(
            f"{ENV_RECOGNITION_SHARE}={text!r}: the recognition share must be a number in (0, 1] "
            "(the fraction of one core the live recognition worker may use)"
        )
    return share


#: Cosine similarity below which two captures of one track are taken to be different people,
#: per backend: the engine's 1:1 verification operating point (dlib's 0.6 Euclidean tolerance is
#: about 0.91 cosine; buffalo_l's usual verification threshold is about 0.3). Captures of one
#: person a fraction of a second apart score far above it.
SAME_FACE_SIMILARITY: dict[str, float] = {"dlib": 0.91, "dlib-torch": 0.91, "insightface": 0.3}


def default_same_face_similarity(backend: str) -> float | None:
    """:attr:`LiveConfig.same_face_similarity` for a backend; ``None`` if unknown (no check)."""
    return SAME_FACE_SIMILARITY.get(backend)


@dataclass(frozen=True)
class LiveConfig:
    """One consistent view of the live settings.

    Attributes
    ----------
    threshold : float
        Face-match threshold, cosine similarity in [-1, 1]. An alert is raised when a face's best
        watchlist similarity is at or above it.
    recheck_interval_s : float
        Seconds after which a tracked face is embedded and searched again (> 0). Between checks
        the track keeps its last result, so one face is not re-embedded every frame.
    new_face_recheck_s : float
        Re-check interval during a track's first ``new_face_window_s`` seconds (> 0): a face
        entering the picture is often blurred or half-turned at first, and a quick second look
        raises its alert sooner without embedding it on every frame.
    new_face_window_s : float
        How long a track counts as new, seconds (>= 0).
    recheck_iou : float
        Re-embed a track early when the IoU of its box with the box it was last embedded at
        drops below this, in [0, 1] (the face moved or turned a lot).
    max_missing_s : float
        A track not re-detected for this long ends (seconds, > 0).
    hold_unseen_s : float
        A track missed by the latest detection steps is still drawn, at the place its
        constant-velocity prediction puts it, until this long after it was last detected
        (seconds, >= 0); then it is hidden. Longer hides fewer short misses but leaves a box on
        empty space for that long after a face leaves (benchmarks/RESULTS.md, "steady boxes").
    min_detection_interval_s : float
        Shortest time between two detections (seconds, >= 0). Leaves CPU for the video thread
        on small machines; 0 detects as often as the worker can.
    recognition_cpu_share : float
        Most of the wall clock, in (0, 1], the recognition worker may spend in its steps: after
        a step that took ``w`` seconds the next starts no sooner than ``w / share`` after it
        began (:class:`~lfr_eval.live._duty.DutyCycle`). With the live engine's one-threaded
        runtimes (:func:`~lfr_eval.live.live_engine`) a busy worker uses one core, so this is
        the most of one core recognition uses; the rest stays with the video path and the
        browser. Default :data:`DEFAULT_RECOGNITION_SHARE` (chosen by measurement,
        ``benchmarks/RESULTS.md``); 1.0 = no bound beyond ``min_detection_interval_s``.
    max_faces_per_step : int
        Most faces embedded and searched in one worker step (>= 1), most urgent first (never
        checked, then seen again after a gap, then routine re-checks); the others wait for the
        next step. Keeps steps short so detection, and every box, stays frequent.
    detection_width : int or None
        Frames wider than this are scaled down to this width (pixels) for detection only;
        landmarks, crops and embeddings use the full frame. ``None`` detects at full size.
    same_face_similarity : float or None
        When a track is re-checked and its new embedding's cosine similarity to the previous one
        is below this, someone else has taken the place of the tracked face: the track is split
        and the newcomer counts as a new face (and can raise its own alert). ``None``: the
        engine's default (:data:`SAME_FACE_SIMILARITY`), no check for unknown engines.
    alert_cooldown_s : float
        An alert is one passage of one person: a subject matched again within this many seconds
        of their last match (>= 0), e.g. on a new track after the face was lost for a moment, does
        not raise another alert.
    show_scores : bool
        Draw the best score next to each box.
    show_non_matches : bool
        Draw boxes of faces below the threshold (grey) as well as alerts (red).
    """

    threshold: float = DEFAULT_THRESHOLD
    recheck_interval_s: float = 1.0
    new_face_recheck_s: float = 0.5
    new_face_window_s: float = 1.5
    recheck_iou: float = 0.5
    max_missing_s: float = 0.7
    hold_unseen_s: float = 0.3
    min_detection_interval_s: float = 0.05
    recognition_cpu_share: float = DEFAULT_RECOGNITION_SHARE
    max_faces_per_step: int = 1
    detection_width: int | None = 320
    same_face_similarity: float | None = None
    alert_cooldown_s: float = 4.0
    show_scores: bool = True
    show_non_matches: bool = True

    def __post_init__(self) -> None:
        checks = {
            "threshold": math.isfinite(self.threshold) and -1.0 <= self.threshold <= 1.0,
            "recheck_interval_s": self.recheck_interval_s > 0,
            "new_face_recheck_s": self.new_face_recheck_s > 0,
            "new_face_window_s": self.new_face_window_s >= 0,
            "recheck_iou": 0.0 <= self.recheck_iou <= 1.0,
            "max_missing_s": self.max_missing_s > 0,
            "hold_unseen_s": 0 <= self.hold_unseen_s <= self.max_missing_s,
            "min_detection_interval_s": self.min_detection_interval_s >= 0,
            "recognition_cpu_share": 0.0 < self.recognition_cpu_share <= 1.0,
            "max_faces_per_step": self.max_faces_per_step >= 1,
            "detection_width": self.detection_width is None or self.detection_width >= 64,
            "alert_cooldown_s": self.alert_cooldown_s >= 0,
            "same_face_similarity": self.same_face_similarity is None
            or -1.0 <= self.same_face_similarity <= 1.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ValueError(
                f"invalid live settings: {values} (threshold is a cosine similarity in [-1, 1]; "
                "intervals are positive seconds; detection_width is at least 64 px or None)"
            )


class LiveSettings:
    """Thread-safe holder of the current :class:`LiveConfig`.

    Parameters
    ----------
    **values
        Initial values of :class:`LiveConfig` fields.

    Examples
    --------
    >>> settings = LiveSettings(threshold=0.8)
    >>> settings.update(threshold=0.9).threshold
    0.9
    >>> settings.snapshot().threshold
    0.9
    """

    def __init__(self, **values: Any) -> None:
        self._lock = threading.Lock()
        self._config = LiveConfig(**values)
        self._version = 0

    def snapshot(self) -> LiveConfig:
        """The current settings (an immutable object: read it as often as needed)."""
        with self._lock:
            return self._config

    @property
    def version(self) -> int:
        """Increases by one on every change that altered a value."""
        with self._lock:
            return self._version

    @property
    def threshold(self) -> float:
        """Current face-match threshold (cosine similarity in [-1, 1])."""
        return self.snapshot().threshold

    def update(self, **changes: Any) -> LiveConfig:
        """Change some settings atomically and return the new snapshot.

        Raises
        ------
        ValueError
            An unknown field or an out-of-range value; nothing is changed then.
        """
        names = {f.name for f in dataclasses.fields(LiveConfig)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown live settings {unknown}; known: {sorted(names)}")
        with self._lock:
            new = dataclasses.replace(self._config, **changes)
            if new != self._config:
                self._config = new
                self._version += 1
            return self._config
