"""Which detector the live pipeline runs: the engine's own, or MediaPipe's BlazeFace.

Measured on 640x480 scenes of LFW faces on 2 cores (benchmarks/RESULTS.md, "Live detection"):
on the live test scenes BlazeFace (full-range, sparse, one pass over the whole frame) finds every
face, as dlib's HOG with upsampling does, at a few percent of its CPU time; on a harder scene of
small faces (45-100 px) it finds 96% (HOG on a 320-px copy, the live path before: 77%; HOG
upsampled on the full frame: 100% at about 20x the cost; BlazeFace with 2x2 tiles: 100% at 5x
the cost of one pass). The Live page runs one pass: more detections per second keep boxes
steadier than the last few percent of small faces. In the live pipeline on 2 quiet cores
(RESULTS.md, "Box coverage frame by frame") it keeps a box on 97.6-98.1% of face-frames against
93.6-95.9% for HOG on a 320-px copy, the first box and the alert come about twice as soon, and
the worker is busy half as long; what coverage it misses is the first frame or two of each face
(detection latency), never a face it failed to find. It serves the engines that align from a box
(dlib, dlib-torch) whenever it is installed (``lfr-eval models install blazeface``, run by
``scripts/install.sh app``); without it the page says so and detects with the engine. InsightFace
packs keep SCRFD, whose five landmarks their alignment needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lfr_eval.errors import ModelError
from lfr_eval.faces import BlazeFaceDetector, FaceEngine
from lfr_eval.live._pipeline import BOX_ALIGNED_BACKENDS, FaceDetector

#: ``lfr-eval app --live-detector`` values: ``auto`` (BlazeFace when installed and the engine
#: aligns from boxes, else the engine's), ``engine``, ``blazeface`` (refuse to start without it).
LIVE_DETECTORS = ("auto", "engine", "blazeface")
#: Environment variable through which ``lfr-eval app`` passes the choice to the Live page.
ENV_LIVE_DETECTOR = "LFR_LIVE_DETECTOR"
#: The BlazeFace variant and tiling the live page runs (chosen by the measurement above).
LIVE_BLAZEFACE_MODEL = "full-sparse"
LIVE_BLAZEFACE_TILES = 1

MSG_NOT_INSTALLED = (
    "BlazeFace is not installed ({reason}); detecting with the engine's detector instead, "
    "whose boxes are less steady on small or moving faces. Install it once with "
    "'lfr-eval models install blazeface'"
)


@dataclass(frozen=True)
class LiveDetectorChoice:
    """The detector a live pipeline runs, and what to tell the operator about it.

    Attributes
    ----------
    detector : FaceDetector or None
        Pass as ``LivePipeline(detector=...)``; ``None`` runs the engine's own detector.
    description : str
        What detects, with the model's hash (shown on the page).
    note : str or None
        Why it is not the preferred detector, when it is not (shown as a warning).
    """

    detector: FaceDetector | None
    description: str
    note: str | None = None


def live_detector_from_env() -> str:
    """The choice ``lfr-eval app`` made (``auto`` when unset)."""
    value = os.environ.get(ENV_LIVE_DETECTOR, "auto")
    if value not in LIVE_DETECTORS:
        raise ValueError(
            f"{ENV_LIVE_DETECTOR}={value!r}; choose one of {', '.join(LIVE_DETECTORS)}"
        )
    return value


def choose_live_detector(
    engine: FaceEngine, choice: str = "auto", *, workspace: str | Path | None = None
) -> LiveDetectorChoice:
    """Load the live detector for ``engine``.

    Each call loads a new detector (a LiteRT interpreter is not shared between threads):
    call once per pipeline.

    Parameters
    ----------
    engine : FaceEngine
    choice : {"auto", "engine", "blazeface"}
    workspace : path, optional
        Where the BlazeFace models are installed (``$LFR_MODELS`` overrides).

    Raises
    ------
    ModelError
        ``blazeface`` was asked for and is not installed (message says how to install it).
    ValueError
        Unknown choice, or ``blazeface`` with an engine that aligns from landmarks.
    """
    if choice not in LIVE_DETECTORS:
        raise ValueError(f"unknown live detector {choice!r}; choose one of {LIVE_DETECTORS}")
    own = f"the engine's detector ({engine.engine_id.backend})"
    box_aligned = engine.engine_id.backend in BOX_ALIGNED_BACKENDS
    if choice == "engine" or (choice == "auto" and not box_aligned):
        return LiveDetectorChoice(None, own)
    if not box_aligned:
        raise ValueError(
            f"BlazeFace gives boxes only; the {engine.engine_id.backend} engine aligns from its "
            "own detector's landmarks: use --live-detector auto or engine"
        )
    try:
        detector = BlazeFaceDetector(
            LIVE_BLAZEFACE_MODEL, workspace=workspace, tiles=LIVE_BLAZEFACE_TILES, threads=1
        )
    except ModelError as exc:
        if choice == "blazeface":
            raise
        return LiveDetectorChoice(None, own, MSG_NOT_INSTALLED.format(reason=exc))
    return LiveDetectorChoice(detector, detector.describe())
