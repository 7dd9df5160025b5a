"""Benchmark the face engines: faces per second for detection + alignment + embedding.

What it measures:

- ``dlib`` on 640x480 camera-like frames (insightface's group photo t1.jpg, letterboxed to
  640x480: six faces of 40-60 px between the eyes), HOG detector with one upsample, the engine's
  default; per stage (detect, landmarks + chip, embedding) and end to end;
- ``dlib`` on LFW images (250x250, one face each), when the LFW folder is found;
- the PyTorch runtime (``TorchRecognizer``) on an ArcFace-R50-sized recognizer with random
  weights (IResNet-50, 43.6 M parameters, built by ``tests/onnx_models.py``: speed does not
  depend on the weights) at batch 1, 32 and 256 in fp16 and fp32 on CUDA; without CUDA, a small
  CPU figure (fp32, batch 1 and 8) and onnxruntime's CPU figure for comparison.

Examples
--------
Quick check that the script works (a minute on 2 cores)::

    python benchmarks/bench_faces.py --quick

Figures for benchmarks/RESULTS.md (quiet machine)::

    python benchmarks/bench_faces.py --json faces-results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the ONNX model builders live with the tests


@dataclass(frozen=True)
class Measurement:
    """One benchmark line.

    Attributes
    ----------
    name : str
    device : str
    batch : int
        Crops per recognizer call (0 where not applicable).
    items : int
        Images (end-to-end) or crops (recognizer only) processed in the timed runs.
    faces : int
        Faces processed in the timed runs.
    seconds : float
        Wall-clock time of the timed runs.
    faces_per_s : float
    ms_per_item : float
    notes : str
    """

    name: str
    device: str
    batch: int
    items: int
    faces: int
    seconds: float
    faces_per_s: float
    ms_per_item: float
    notes: str = ""


def _line(m: Measurement) -> str:
    return (
        f"{m.name:<42} {m.device:<8} batch {m.batch:>4}  {m.faces_per_s:9.1f} faces/s  "
        f"{m.ms_per_item:8.2f} ms/item  ({m.items} items, {m.faces} faces, {m.seconds:.2f} s)"
        + (f"  {m.notes}" if m.notes else "")
    )


def _letterbox(image: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    import cv2

    scale = min(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(
        image,
        (round(image.shape[1] * scale), round(image.shape[0] * scale)),
        interpolation=cv2.INTER_AREA,
    )
    frame = np.zeros((height, width, 3), np.uint8)
    frame[: resized.shape[0], : resized.shape[1]] = resized
    return frame


def bench_dlib_frames(n_frames: int) -> list[Measurement]:
    import insightface

    from lfr_eval.faces import load_engine, load_image

    engine = load_engine("dlib")
    frame = _letterbox(load_image(Path(insightface.__file__).parent / "data/images/t1.jpg"))
    engine.analyze(frame)  # warm up
    t_detect = t_align = t_embed = 0.0
    faces = 0
    start = time.perf_counter()
    for _ in range(n_frames):
        t0 = time.perf_counter()
        boxes = engine.detect(frame).boxes
        t1 = time.perf_counter()
        aligned = engine.align(frame, boxes)
        t2 = time.perf_counter()
        engine.embed_crops([chip for _, chip in aligned])
        t3 = time.perf_counter()
        t_detect, t_align, t_embed = t_detect + t1 - t0, t_align + t2 - t1, t_embed + t3 - t2
        faces += len(boxes)
    total = time.perf_counter() - start
    per_face = (
        f"per frame: detect {1000 * t_detect / n_frames:.0f} ms, landmarks+chips "
        f"{1000 * t_align / n_frames:.1f} ms, embed {1000 * t_embed / max(faces, 1):.1f} ms/face"
    )
    return [
        Measurement(
            "dlib hog 640x480 frame (t1, 6 faces)",
            "cpu",
            0,
            n_frames,
            faces,
            total,
            faces / total,
            1000 * total / n_frames,
            per_face,
        ),
    ]


def bench_dlib_lfw(lfw_dir: Path, n_images: int) -> list[Measurement]:
    from lfr_eval.faces import load_engine, load_image

    engine = load_engine("dlib")
    paths = sorted((lfw_dir / "images").glob("*/*.jpg"))
    step = max(1, len(paths) // n_images)
    paths = paths[::step][:n_images]
    images = [load_image(p) for p in paths]  # decoding is not the engine's cost
    engine.analyze(images[0])
    faces = 0
    start = time.perf_counter()
    for image in images:
        faces += len(engine.analyze(image))
    total = time.perf_counter() - start
    return [
        Measurement(
            "dlib hog LFW 250x250 (analyze)",
            "cpu",
            0,
            len(images),
            faces,
            total,
            faces / total,
            1000 * total / len(images),
            f"{len(images) - faces} images without a face" if faces < len(images) else "",
        ),
    ]


def _nothing_to_wait_for() -> None:
    """The CPU's stand-in for ``torch.cuda.synchronize``: CPU work is done when it returns."""


def _time_embed(run, blob: np.ndarray, repeats: int, sync=_nothing_to_wait_for) -> float:
    run(blob)  # warm up (cudnn autotune, allocator)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        run(blob)
    sync()
    return time.perf_counter() - start


def bench_recognizer(
    model_dir: Path, quick: bool, channels_last: bool | None = None
) -> list[Measurement]:
    import torch
    from onnx_models import build_arcface_r50

    from lfr_eval.faces.torch_runtime import TorchRecognizer

    path = model_dir / "arcface_r50_random.onnx"
    if not path.is_file():
        print(f"building {path} (IResNet-50, random weights) ...", flush=True)
        build_arcface_r50(path)
    rng = np.random.default_rng(0)
    out = []
    if torch.cuda.is_available():
        device = "cuda"
        batches = (1, 32, 256)
        configs = [("fp16", batches), ("fp32", batches)]
        sync = torch.cuda.synchronize
        name = torch.cuda.get_device_name(0)
    else:
        device = "cpu"
        configs = [("fp32", (1, 8) if not quick else (1,))]
        sync = _nothing_to_wait_for
        name = platform.processor() or "cpu"
    for precision, sizes in configs:
        rec = TorchRecognizer(path, device=device, precision=precision, channels_last=channels_last)
        layout = "NHWC" if rec.channels_last else "NCHW"
        for batch in sizes:
            blob = rng.uniform(-1, 1, (batch, 3, 112, 112)).astype(np.float32)
            repeats = max(2, min(50, (2048 if device == "cuda" else 16) // batch))
            if quick:
                repeats = 2
            inputs = [("numpy in, numpy out", blob)]
            if device == "cuda":
                # the crops already on the GPU: the network's own speed, without the copy in
                resident = torch.from_numpy(blob).to(
                    device, torch.float16 if precision == "fp16" else torch.float32
                )
                inputs.append(("input on GPU", resident))
            for label, data in inputs:
                seconds = _time_embed(rec.embed, data, repeats, sync)
                crops = batch * repeats
                out.append(
                    Measurement(
                        f"torch ArcFace-R50 {precision} {layout} ({label})",
                        device,
                        batch,
                        crops,
                        crops,
                        seconds,
                        crops / seconds,
                        1000 * seconds / repeats,
                        name,
                    )
                )
    if device == "cpu":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for batch in configs[0][1]:
            blob = rng.uniform(-1, 1, (batch, 3, 112, 112)).astype(np.float32)
            repeats = 2 if quick else max(2, 16 // batch)
            seconds = _time_embed(lambda b: session.run(None, {"input.1": b}), blob, repeats)
            crops = batch * repeats
            out.append(
                Measurement(
                    "onnxruntime ArcFace-R50 fp32",
                    "cpu",
                    batch,
                    crops,
                    crops,
                    seconds,
                    crops / seconds,
                    1000 * seconds / repeats,
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="640x480 frames for dlib")
    parser.add_argument("--lfw-images", type=int, default=200, help="LFW images for dlib")
    parser.add_argument(
        "--lfw-dir",
        type=Path,
        default=None,
        help="LFW folder (default $LFR_LFW_DIR or ../shared/datasets/lfw)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="where to build/cache the R50-sized ONNX (default: a temp folder)",
    )
    parser.add_argument("--skip-dlib", action="store_true")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument(
        "--layout",
        choices=["auto", "nchw", "nhwc"],
        default="auto",
        help="torch memory layout (auto: NHWC on CUDA, NCHW on the CPU)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the script runs")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.lfw_images = 2, 5

    print(
        f"{platform.platform(terse=True)}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        flush=True,
    )
    results: list[Measurement] = []
    if not args.skip_dlib:
        for m in bench_dlib_frames(args.frames):
            print(_line(m), flush=True)
            results.append(m)
        lfw = args.lfw_dir or Path(
            os.environ.get("LFR_LFW_DIR", REPO.parent / "shared" / "datasets" / "lfw")
        )
        if (lfw / "images").is_dir():
            for m in bench_dlib_lfw(lfw, args.lfw_images):
                print(_line(m), flush=True)
                results.append(m)
        else:
            print(f"LFW not found at {lfw}: skipping the LFW figure", flush=True)
    if not args.skip_torch:
        try:
            import onnx2torch  # noqa: F401
            import torch  # noqa: F401
        except ImportError as exc:
            print(f"torch runtime skipped: {exc}")
        else:
            layout = {"auto": None, "nchw": False, "nhwc": True}[args.layout]
            if args.model_dir is not None:
                args.model_dir.mkdir(parents=True, exist_ok=True)
                ms = bench_recognizer(args.model_dir, args.quick, layout)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    ms = bench_recognizer(Path(tmp), args.quick, layout)
            for m in ms:
                print(_line(m), flush=True)
            results += ms
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": platform.platform(terse=True),
                    "cpus": os.cpu_count(),
                    "results": [asdict(m) for m in results],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
