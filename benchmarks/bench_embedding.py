"""Embedding throughput of the default engine on LFW, against dlib's own descriptor call.

What it measures (issue 10 item 4), on a random sample of LFW images (the same images for
every configuration), one process unless ``--workers``:

- per stage, per image: HOG detection (upsample 0 and 1), landmarks + chip, descriptor
  (dlib's ``compute_face_descriptor`` vs the ResNet as ONNX on onnxruntime);
- HOG recall on LFW: images where a face is found, upsample 0 vs 1 (and on the 640x480
  live-style frame, faces found of the 6 in insightface's group photo);
- end to end through :func:`lfr_eval.datasets.embed_manifest` (no cache), default engine vs
  ``embedder="dlib"``, and the extrapolation to all 13,233 LFW images.

Figures go to stdout as JSON and, with ``--json``, to a file. Examples::

    python benchmarks/bench_embedding.py --images 300            # a few minutes on 2 cores
    python benchmarks/bench_embedding.py --images 13233 --skip-dlib --workers 2
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _machine import LoadSampler, finish_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LFW_IMAGES = 13_233


def _load_sample(lfw: Path, n: int, seed: int):
    from lfr_eval.datasets import load_dataset

    manifest = load_dataset(lfw, "lfw")
    rng = np.random.default_rng(seed)
    keep = np.zeros(manifest.n_images, bool)
    keep[rng.choice(manifest.n_images, size=min(n, manifest.n_images), replace=False)] = True
    return manifest.select(keep, name=f"lfw-sample-{int(keep.sum())}")


def _stages(paths: list[Path]) -> dict:
    """Per-image time of each stage and HOG recall at upsample 0 and 1."""
    import dlib

    from lfr_eval.faces import load_engine, load_image

    onnx_engine = load_engine("dlib", upsample=0)
    dlib_engine = load_engine("dlib", embedder="dlib", upsample=0)
    images = [load_image(p) for p in paths]
    out: dict = {"images": len(images)}
    boxes_by_upsample = {}
    for upsample in (0, 1):
        onnx_engine.upsample = upsample
        start = time.perf_counter()
        found = [onnx_engine.detect(im).boxes for im in images]
        seconds = time.perf_counter() - start
        boxes_by_upsample[upsample] = found
        out[f"hog_upsample{upsample}"] = {
            "ms_per_image": 1000 * seconds / len(images),
            "images_with_face": int(sum(len(b) > 0 for b in found)),
            "faces": int(sum(len(b) for b in found)),
        }
    onnx_engine.upsample = 0
    # landmarks + chip on the upsample-0 boxes (the largest face of each image)
    start = time.perf_counter()
    chips = [
        onnx_engine.align(im, b[:1])[0][1]
        for im, b in zip(images, boxes_by_upsample[0], strict=True)
        if len(b)
    ]
    out["landmarks_chip_ms_per_face"] = 1000 * (time.perf_counter() - start) / max(1, len(chips))
    for name, engine, batch in (
        ("descriptor_onnxruntime_batch1", onnx_engine, 1),
        ("descriptor_onnxruntime_batch32", onnx_engine, 32),
        ("descriptor_dlib_batch1", dlib_engine, 1),
    ):
        start = time.perf_counter()
        vectors = engine.raw_descriptors(chips, batch_size=batch)
        out[name] = {"ms_per_face": 1000 * (time.perf_counter() - start) / max(1, len(chips))}
        out.setdefault("_vectors", {})[name] = vectors
    vectors = out.pop("_vectors")
    diff = np.abs(vectors["descriptor_onnxruntime_batch32"] - vectors["descriptor_dlib_batch1"])
    out["descriptor_max_abs_diff_vs_dlib"] = float(diff.max()) if diff.size else 0.0
    out["dlib_version"] = dlib.__version__
    return out


def _live_frame_recall() -> dict:
    """Faces found in the 640x480 letterboxed group photo (6 faces, 40-60 px eyes apart)."""
    import insightface

    from lfr_eval.faces import load_engine, load_image

    photo = load_image(Path(insightface.__file__).parent / "data" / "images" / "t1.jpg")
    frame = np.zeros((480, 640, 3), np.uint8)
    h, w = photo.shape[:2]
    scale = min(640 / w, 480 / h)
    import cv2

    small = cv2.resize(photo, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    frame[: small.shape[0], : small.shape[1]] = small
    engine = load_engine("dlib")
    out = {}
    for upsample in (0, 1):
        engine.upsample = upsample
        start = time.perf_counter()
        for _ in range(3):
            boxes = engine.detect(frame).boxes
        out[f"upsample{upsample}"] = {
            "faces_found_of_6": len(boxes),
            "ms_per_frame": 1000 * (time.perf_counter() - start) / 3,
        }
    return out


def _end_to_end(manifest, embedder: str, upsample: int, workers: int) -> dict:
    import functools

    from lfr_eval.datasets import embed_manifest
    from lfr_eval.faces import load_engine

    factory = functools.partial(load_engine, "dlib", embedder=embedder, upsample=upsample)
    engine = factory()
    manifest.image_hashes()  # hashing is not embedding: done before the clock starts
    cpu_before = _cpu_seconds()
    with LoadSampler() as load:
        start = time.perf_counter()
        result = embed_manifest(
            manifest,
            engine,
            None,
            face_choice="central",
            workers=workers,
            engine_factory=factory,
        )
        seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_before
    return {
        "embedder": embedder,
        "upsample": upsample,
        "workers": workers,
        "images": len(result),
        "failed": result.n_failed,
        "seconds": seconds,
        "ms_per_image": 1000 * seconds / len(result),
        "full_lfw_minutes_extrapolated": seconds / len(result) * LFW_IMAGES / 60,
        "_vectors": result.vectors,
        "_ok": result.ok,
        "runtime": engine.runtime.describe(),
        "onnx_intra_op_threads_per_worker": _threads_per_worker(workers),
        "load_average_1min_during": load.summary(),
        # CPU time of this process and its (finished) workers: on a shared machine the wall
        # time includes waiting for other jobs; cpu / cores is what a quiet machine would need
        "cpu_seconds": cpu,
        "quiet_machine_minutes_estimate": cpu / min(max(1, workers), os.cpu_count() or 1) / 60
        * LFW_IMAGES / len(result),
    }


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _threads_per_worker(workers: int) -> int:
    """``intra_op_num_threads`` of each worker's session (as embed_manifest sets it)."""
    from lfr_eval.faces._dlib_onnx import available_cpus

    return max(1, available_cpus() // workers) if workers > 1 else available_cpus()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", default=str(REPO.parent / "shared" / "datasets" / "lfw"))
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--skip-dlib", action="store_true", help="no end-to-end dlib run")
    parser.add_argument("--skip-stages", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    lfw = Path(args.lfw)
    if not (lfw / "images").is_dir():
        sys.exit(f"LFW not found at {lfw}")
    manifest = _load_sample(lfw, args.images, args.seed)
    report: dict = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_start": os.getloadavg(),
        "images": manifest.n_images,
    }
    if not args.skip_stages:
        report["stages"] = _stages(manifest.absolute_paths()[: min(200, manifest.n_images)])
        report["live_frame"] = _live_frame_recall()
    runs = [_end_to_end(manifest, "onnxruntime", 0, args.workers)]
    if not args.skip_dlib:
        runs.append(_end_to_end(manifest, "dlib", 0, 1))
        ok = runs[0]["_ok"] & runs[1]["_ok"]
        report["same_images_failed"] = bool((runs[0]["_ok"] == runs[1]["_ok"]).all())
        report["embedding_max_abs_diff_vs_dlib"] = float(
            np.abs(runs[0]["_vectors"][ok] - runs[1]["_vectors"][ok]).max()
        )
        report["speedup_vs_dlib"] = runs[1]["seconds"] / runs[0]["seconds"]
    for run in runs:
        run.pop("_vectors")
        run.pop("_ok")
    report["end_to_end"] = runs
    finish_report(report, args.json)


if __name__ == "__main__":
    main()
