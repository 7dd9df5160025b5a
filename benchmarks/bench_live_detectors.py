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
- ``blazeface-full`` / ``blazeface-full-sparse`` / ``blazeface-short``: MediaPipe's BlazeFace
  models (:class:`lfr_eval.faces.BlazeFaceDetector`: LiteRT, one thread, our own anchor
  decoding), installed with ``lfr-eval models install blazeface``; skipped when absent;
- ``blazeface-*-tiles2``: the whole frame plus 2x2 overlapping tiles (5 passes), for small faces.

Scenes: ``1 face`` (walking), ``3 faces`` (the live benchmark's kind), and ``LFW crowd``: 40
LFW people (not the test's), four at a time, photos 110–230 px wide (faces about 45–100 px),
some moving, to find where each detector stops finding faces. ``--k`` also reports each variant
run on every k-th frame only (boxes of the last detection kept): the coverage a tracker without
prediction would give at that cadence.

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


def blazeface_variant(model: str, workspace: Path | None, tiles: int = 1):
    """BlazeFace through LiteRT, or None with the reason it cannot run."""
    from lfr_eval.errors import ModelError
    from lfr_eval.faces import BlazeFaceDetector

    try:
        detector = BlazeFaceDetector(model, workspace=workspace, threads=1, tiles=tiles)
    except ModelError as exc:
        return None, str(exc)
    return (lambda frame: detector.detect(frame).boxes), detector.describe()


def crowd_scene(lfw: Path | None) -> SceneScript | None:
    """40 LFW people four at a time, photo widths 110-230 px (faces ~45-100 px), some moving."""
    if lfw is None:
        return None
    from lfr_eval.faces import load_image

    folders = sorted(p for p in (lfw / "images").iterdir() if p.is_dir())
    rng = np.random.default_rng(14)
    chosen = rng.choice(len(folders), size=40, replace=False)
    appearances = []
    for k, index in enumerate(chosen):
        photo = load_image(next(iter(sorted(folders[index].glob("*.jpg")))))
        group, slot = divmod(k, 4)
        width = int(110 + 120 * ((k * 7) % 10) / 9)
        x = 10 + slot * 155
        y = 40 + (k % 3) * 110
        start = group * 1.2
        velocity = (25.0 * (1 if k % 2 else -1), 0.0) if k % 3 == 0 else (0.0, 0.0)
        appearances.append(
            FaceAppearance(photo, start, start + 1.2, x, y, width=width, velocity=velocity)
        )
    return SceneScript(tuple(appearances), duration_s=12.0, fps=10)


def measure(detect, scene: SceneScript, every: int = 1) -> dict:
    """Recall over face-frames, false detections and ms per detection of one variant.

    With ``every`` > 1 the detector runs on every ``every``-th frame and its boxes stand for the
    frames in between (what a tracker without prediction shows at that cadence).
    """
    found = shown = false = detected = 0
    times = []
    detect(scene.render(1.0))  # warm-up
    boxes = np.zeros((0, 4))
    for i in range(scene.n_frames):
        t = scene.frame_time(i)
        placements = scene.placements(t)
        if i % every == 0:
            frame = scene.render(t)
            start = time.perf_counter()
            boxes = detect(frame)
            times.append(time.perf_counter() - start)
            detected += len(boxes)
        centres = np.c_[(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2]
        on_a_face = np.zeros(len(boxes), dtype=bool)
        for index, rect in placements:
            inside = (
                (centres[:, 0] >= rect[0])
                & (centres[:, 0] <= rect[2])
                & (centres[:, 1] >= rect[1])
                & (centres[:, 1] <= rect[3])
            )
            on_a_face |= inside
            if rect[2] - rect[0] < 0.6 * scene.appearances[index].width:
                continue  # mostly outside the frame: not a face to find
            shown += 1
            found += bool(inside.any())
        if i % every == 0:
            false += int((~on_a_face).sum())
    ms = np.array(times) * 1000
    return {
        "every_k_frames": every,
        "face_frames": shown,
        "recall": round(found / max(1, shown), 4),
        "false_detections_per_detection_frame": round(false / max(1, len(times)), 4),
        "ms_median": round(float(np.median(ms)), 1),
        "ms_p95": round(float(np.percentile(ms, 95)), 1),
    }


def alignment_check(engine, lfw: Path, workspace: Path | None, n_images: int = 150) -> list[dict]:
    """dlib's chips from BlazeFace boxes against chips from HOG boxes, on LFW first images.

    dlib's 5-point shape predictor was trained on HOG/MMOD boxes; the embedding of the chip it
    cuts from a BlazeFace box must match the one from the HOG box for BlazeFace to serve the dlib
    engines. Reported: images where both found the face, IoU of the boxes, cosine similarity of
    the two embeddings (min, 5th percentile, median).
    """
    from lfr_eval.faces import BlazeFaceDetector, load_image
    from lfr_eval.live import box_iou

    paths = sorted((lfw / "images").glob("*/*_0001.jpg"))[::40][:n_images]
    rows = []
    for model in ("full", "full-sparse"):
        detector = BlazeFaceDetector(model, workspace=workspace)
        ious, cosines = [], []
        for path in paths:
            image = load_image(path)
            hog, blaze = engine.detect(image), detector.detect(image)
            if not len(hog) or not len(blaze):
                continue
            overlap = box_iou(hog.boxes[:1], blaze.boxes)[0]
            j = int(overlap.argmax())
            if overlap[j] < 0.2:
                continue
            ours = engine.embed_crops(engine.crops(image, blaze, [j]))[0]
            theirs = engine.embed_crops(engine.crops(image, hog, [0]))[0]
            ious.append(float(overlap[j]))
            cosines.append(float(ours @ theirs))
        c = np.array(cosines)
        rows.append(
            {
                "model": model,
                "images": len(paths),
                "both_found": len(c),
                "iou_median": round(float(np.median(ious)), 3),
                "cosine_min": round(float(c.min()), 4),
                "cosine_p5": round(float(np.percentile(c, 5)), 4),
                "cosine_median": round(float(np.median(c)), 4),
            }
        )
        print(f"alignment {rows[-1]}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--k", type=int, nargs="*", default=[3], help="also detect every k frames")
    parser.add_argument("--workspace", type=Path, help="workspace with the BlazeFace models")
    parser.add_argument(
        "--alignment-only", action="store_true", help="only the LFW alignment check"
    )
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    engine = load_engine("dlib")
    import insightface

    lfw = lfw_root()
    if args.alignment_only:
        if lfw is None:
            print("LFW not found")
            return 1
        rows = alignment_check(engine, lfw, args.workspace)
        if args.json:
            args.json.write_text(json.dumps({"alignment": rows}, indent=2))
        return 0
    people = live_people(lfw, Path(insightface.__file__).parent / "data" / "images", engine)
    variants = {
        "hog-320-up1": (hog_variant(engine, 320, 1), "dlib HOG, 320-px copy, upsample 1"),
        "hog-640-up0": (hog_variant(engine, None, 0), "dlib HOG, full frame, upsample 0"),
        "hog-640-up1": (hog_variant(engine, None, 1), "dlib HOG, full frame, upsample 1"),
    }
    for model, tiles in (
        ("full", 1),
        ("full-sparse", 1),
        ("short", 1),
        ("full", 2),
        ("full-sparse", 2),
    ):
        name = f"blazeface-{model}" + (f"-tiles{tiles}" if tiles > 1 else "")
        blaze, note = blazeface_variant(model, args.workspace, tiles)
        if blaze is not None:
            variants[name] = (blaze, note)
        else:
            print(f"{name} skipped: {note}")
    all_scenes = scenes(people)
    crowd = crowd_scene(lfw)
    if crowd is not None:
        all_scenes["LFW crowd"] = crowd
    load_before = os.getloadavg()
    rows = []
    for scene_name, scene in all_scenes.items():
        for name, (detect, description) in variants.items():
            for every in [1, *args.k]:
                row = {"scene": scene_name, "variant": name, "description": description}
                row.update(measure(detect, scene, every))
                rows.append(row)
                print(
                    f"{scene_name:9s} {name:21s} k={every} recall {row['recall']:.3f} over "
                    f"{row['face_frames']} face-frames, "
                    f"{row['false_detections_per_detection_frame']:.3f} false/frame; "
                    f"{row['ms_median']:.1f} ms/detection (p95 {row['ms_p95']:.1f})"
                )
    load_after = os.getloadavg()
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"Python {sys.version.split()[0]}, people from {people.source}; load average "
        f"(1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after (shared machine)"
    )
    print(machine)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
