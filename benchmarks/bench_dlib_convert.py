"""Benchmark and GPU check of dlib's networks converted to ONNX/PyTorch (issue 6).

Three ways to run it:

``--prepare DIR`` (a machine with dlib and LFW): writes what a machine *without* dlib needs,
into DIR (keep it out of git: ``workspace/`` is ignored): the two ``.dat`` models, 256 aligned
LFW chips made by dlib (``chips.npy``), a few hundred LFW images (``lfw_subset/``) and t1.jpg;
and the reference ``DIR/dlib_reference.npz`` (dlib's descriptors of those chips and dlib's CNN
boxes on some of those images). Descriptors of real people's faces are biometric data: they stay
in DIR, out of git, like the images.

default (any machine; dlib optional): converts the models, checks them against the reference
(descriptors: max |difference|, cosine; boxes: count, pixels), and times descriptor
throughput at batch 1/32/256, detection per 640x480 and 1920x1080 frame, and (``--lfw``) a
detection + embedding pass over LFW images. With dlib installed it times dlib too; with a
CUDA GPU it adds PyTorch fp32/fp16 on CUDA (and onnxruntime CUDA if installed). Every part is
time-bounded; a part that fails is recorded with its error and the rest goes on.

``--pairs`` (with dlib and LFW): LFW pairs accuracy (10 folds) of the dlib and converted
backends on the same chips, with the same threshold rules. Slow on a CPU (~15 min on 2 cores).

Examples::

    python benchmarks/bench_dlib_convert.py --prepare workspace/dlib_bench
    python benchmarks/bench_dlib_convert.py --data workspace/dlib_bench \\
        --lfw workspace/dlib_bench/lfw_subset --out bench.json
    python benchmarks/bench_dlib_convert.py --pairs --lfw ../shared/datasets/lfw --out pairs.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runs from a bare checkout too (no pip install -e .)
    sys.path.insert(0, str(REPO))

from lfr_eval.faces.dlib_convert import (  # noqa: E402 - after the sys.path set-up above
    DescriptorRunner,
    MmodRunner,
    convert_dlib_model,
    load_mmod_network,
    load_resnet,
)

REFERENCE_NAME = "dlib_reference.npz"  # written by --prepare into its folder, never committed
RESNET_DAT = "dlib_face_recognition_resnet_model_v1.dat"
MMOD_DAT = "mmod_human_face_detector.dat"
SHAPE_DAT = "shape_predictor_5_face_landmarks.dat"
LFW_TOTAL = 13_233
N_CHIPS = 256
N_DET_CHECK = 24  # LFW images whose dlib CNN boxes go in the reference (upsample 0)
N_DET_CHECK_UP = 3  # ... and with upsample 1
N_SUBSET = 600  # LFW images copied by --prepare for the wall-time run
FRAMES = {"640x480": (480, 640), "1920x1080": (1080, 1920)}


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def have_dlib() -> bool:
    try:
        import dlib  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], *, min_seconds: float, max_reps: int = 200) -> dict:
    """Mean seconds per call after one warm-up call; at least one timed call."""
    fn()
    cuda_sync()
    reps, start = 0, time.perf_counter()
    while True:
        fn()
        cuda_sync()
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or reps >= max_reps:
            return {"seconds_per_call": elapsed / reps, "reps": reps}


def lfw_images_root(path: Path) -> Path:
    return path / "images" if (path / "images").is_dir() else path


def list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def make_frame(images: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """A test frame: LFW portraits tiled edge to edge, cropped to (height, width)."""
    tile_h, tile_w = images[0].shape[:2]
    rows, cols = -(-height // tile_h), -(-width // tile_w)
    canvas = np.zeros((rows * tile_h, cols * tile_w, 3), np.uint8)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        canvas[r * tile_h : (r + 1) * tile_h, c * tile_w : (c + 1) * tile_w] = images[
            k % len(images)
        ]
    return np.ascontiguousarray(canvas[:height, :width])


def box_crop_chip(image: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """Stand-in for dlib's alignment where dlib is absent: the box plus 25 % each side, resized
    to 150x150 (same cost class as get_face_chip; not the same pixels)."""
    left, top, right, bottom = (int(v) for v in rect)
    pad_w, pad_h = (right - left + 1) // 4, (bottom - top + 1) // 4
    h, w = image.shape[:2]
    x1, y1 = max(0, left - pad_w), max(0, top - pad_h)
    x2, y2 = min(w, right + 1 + pad_w), min(h, bottom + 1 + pad_h)
    if x2 <= x1 or y2 <= y1:
        return np.zeros((150, 150, 3), np.uint8)
    return cv2.resize(image[y1:y2, x1:x2], (150, 150), interpolation=cv2.INTER_LINEAR)


class Report:
    """Collects results; a failing section is recorded with its error, the others go on."""

    def __init__(self) -> None:
        self.data: dict = {"sections": {}, "errors": {}, "skipped": {}}

    def section(self, name: str, fn: Callable[[], object]) -> None:
        log(f"--- {name}")
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - recorded in the report, not hidden
            self.data["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} FAILED: {exc}")
            traceback.print_exc()
            return
        if result is not None:
            self.data["sections"][name] = result
            log(json.dumps(result, default=float)[:1500])
        log(f"{name} took {time.perf_counter() - start:.1f} s")

    def skip(self, name: str, reason: str) -> None:
        self.data["skipped"][name] = reason
        log(f"--- {name} skipped: {reason}")


def machine_info() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["ort_providers"] = ort.get_available_providers()
    except ImportError:
        info["onnxruntime"] = None
    if have_dlib():
        import dlib

        info["dlib"] = dlib.__version__
    return info


def find_models(models: Path | None, data: Path | None) -> Path:
    candidates = [models] if models else []
    if data:
        candidates.append(data / "models")
    env = os.environ.get("LFR_DLIB_MODELS")
    if env:
        candidates.append(Path(env))
    try:
        from lfr_eval.faces._dlib_models import default_models_folder

        folder = default_models_folder()
        if folder:
            candidates.append(folder)
    except ImportError:
        pass
    for folder in candidates:
        if folder and (folder / RESNET_DAT).is_file() and (folder / MMOD_DAT).is_file():
            return folder
    raise SystemExit(
        f"dlib model files not found (looked in {[str(c) for c in candidates]}); pass --models "
        "or --data from a --prepare run"
    )


# ----------------------------------------------------------------------------------------
# --prepare
# ----------------------------------------------------------------------------------------


def dlib_cnn_rects(detector, image: np.ndarray, upsample: int) -> tuple[np.ndarray, np.ndarray]:
    found = detector(image, upsample)
    rects = np.array(
        [[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in found],
        dtype=np.int32,
    ).reshape(-1, 4)
    return rects, np.array([d.confidence for d in found], dtype=np.float32)


def prepare(data: Path, lfw: Path) -> None:
    """Chips, models, an LFW subset and dlib's reference numbers into ``data``."""
    import dlib

    from lfr_eval.faces import load_engine

    images_root = lfw_images_root(lfw)
    files = list_images(images_root)
    if len(files) < N_SUBSET:
        raise SystemExit(f"need at least {N_SUBSET} LFW images under {images_root}")
    # a spread of people: every k-th image of the sorted list
    step = len(files) // N_SUBSET
    subset = files[::step][:N_SUBSET]
    names = [str(p.relative_to(images_root)) for p in subset]
    data.mkdir(parents=True, exist_ok=True)
    (data / "models").mkdir(exist_ok=True)
    engine = load_engine("dlib")  # HOG, upsample 1: the dlib backend's own pipeline
    models = Path(engine.model_paths["recognizer"]).parent
    for name in (RESNET_DAT, MMOD_DAT):
        shutil.copy2(models / name, data / "models" / name)
    log(f"copying {len(subset)} LFW images")
    for src, name in zip(subset, names):
        dst = data / "lfw_subset" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    try:
        import insightface

        t1 = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
        shutil.copy2(t1, data / "t1.jpg")
    except (ImportError, OSError):
        t1 = None
    log(f"making {N_CHIPS} chips with dlib")
    chips, chip_names = [], []
    for path, name in zip(subset, names):
        image = read_rgb(path)
        boxes = engine.detect(image).boxes
        if len(boxes) == 0:
            continue
        chips.append(engine.align(image, boxes[:1])[0][1])
        chip_names.append(name)
        if len(chips) == N_CHIPS:
            break
    chips_array = np.stack(chips)
    np.save(data / "chips.npy", chips_array)
    descriptors = engine.raw_descriptors(list(chips_array), batch_size=64).astype(np.float32)
    log("dlib CNN boxes on LFW images (slow on a CPU)")
    cnn = dlib.cnn_face_detection_model_v1(str(models / MMOD_DAT))
    det_names = names[:: max(1, len(names) // N_DET_CHECK)][:N_DET_CHECK]
    reference: dict[str, np.ndarray] = {
        "chip_names": np.array(chip_names),
        "descriptors": descriptors,
        "dlib_version": np.array(dlib.__version__),
    }
    for upsample, count in ((0, N_DET_CHECK), (1, N_DET_CHECK_UP)):
        rects, scores, counts = [], [], []
        for name in det_names[:count]:
            r, s = dlib_cnn_rects(cnn, read_rgb(images_root / name), upsample)
            rects.append(r)
            scores.append(s)
            counts.append(len(r))
        reference[f"det{upsample}_names"] = np.array(det_names[:count])
        reference[f"det{upsample}_rects"] = np.concatenate(rects)
        reference[f"det{upsample}_scores"] = np.concatenate(scores)
        reference[f"det{upsample}_counts"] = np.array(counts)
    if t1 is not None:
        r, s = dlib_cnn_rects(cnn, read_rgb(t1), 0)
        reference["t1_rects"], reference["t1_scores"] = r, s
    np.savez_compressed(data / REFERENCE_NAME, **reference)
    log(f"wrote {data} ({len(chips_array)} chips and {REFERENCE_NAME})")


# ----------------------------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.report = Report()
        self.models = find_models(args.models, args.data)
        self.cuda = torch.cuda.is_available()
        self.quick = args.quick
        self.min_seconds = 0.5 if args.quick else 2.0
        reference_file = args.data / REFERENCE_NAME if args.data else None
        self.reference = (
            dict(np.load(reference_file)) if reference_file and reference_file.is_file() else None
        )
        self.chips: np.ndarray | None = None
        chips_file = args.data / "chips.npy" if args.data else None
        if chips_file and chips_file.is_file():
            self.chips = np.load(chips_file)
        self.converted: dict = {}
        self.lfw = lfw_images_root(args.lfw) if args.lfw else None
        if self.lfw is None and args.data and (args.data / "lfw_subset").is_dir():
            self.lfw = args.data / "lfw_subset"

    # -- runners ------------------------------------------------------------------------

    def descriptor(self, runtime: str, device: str, precision: str = "fp32") -> DescriptorRunner:
        if runtime == "torch" and "resnet" not in self.converted:
            return DescriptorRunner.from_module(
                load_resnet(self.models / RESNET_DAT), device, precision
            )
        return DescriptorRunner(self.converted["resnet"], runtime, device, precision)

    def detector(self, runtime: str, device: str, precision: str = "fp32") -> MmodRunner:
        if runtime == "torch" and "mmod" not in self.converted:
            return MmodRunner.from_network(
                load_mmod_network(self.models / MMOD_DAT), device, precision
            )
        return MmodRunner(self.converted["mmod"], runtime, device, precision)

    def configs(self) -> list[tuple[str, str, str]]:
        """(runtime, device, precision) combinations this machine can run."""
        out = []
        if not (self.cuda and self.args.gpu_only):
            if "resnet" in self.converted:
                out.append(("onnxruntime", "cpu", "fp32"))
            out.append(("torch", "cpu", "fp32"))
        if self.cuda:
            out += [("torch", "cuda", "fp32"), ("torch", "cuda", "fp16")]
            try:
                import onnxruntime as ort

                if "CUDAExecutionProvider" in ort.get_available_providers() and self.converted:
                    out.append(("onnxruntime", "cuda", "fp32"))
            except ImportError:
                pass
        return out

    # -- sections -----------------------------------------------------------------------

    def convert(self) -> dict:
        cache = Path(tempfile.mkdtemp(prefix="dlib-converted-"))
        result = {"cache": str(cache)}
        for kind, name in (("resnet", RESNET_DAT), ("mmod", MMOD_DAT)):
            start = time.perf_counter()
            try:
                self.converted[kind] = convert_dlib_model(self.models / name, kind, cache_dir=cache)
            except Exception as exc:  # noqa: BLE001 - e.g. no `onnx` package; recorded
                result[f"{kind}_error"] = (
                    f"ONNX conversion failed ({type(exc).__name__}: {exc}); PyTorch runs the "
                    "network built straight from the .dat instead"
                )
                continue
            result[f"{kind}_seconds"] = time.perf_counter() - start
            result[f"{kind}_export_max_abs_diff"] = self.converted[kind].export_max_abs_diff
        return result

    def descriptor_accuracy(self) -> list[dict]:
        assert self.chips is not None and self.reference is not None
        reference = self.reference["descriptors"].astype(np.float64)
        names = list(self.reference["chip_names"])
        if len(names) != len(self.chips):
            raise ValueError("chips.npy and the reference do not match: rerun --prepare")
        rows, fp32_cuda = [], None
        for runtime, device, precision in self.configs():
            ours = self.descriptor(runtime, device, precision)(self.chips, batch_size=64)
            cosine = np.sum(ours * reference, 1) / (
                np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
            )
            row = {
                "runtime": runtime,
                "device": device,
                "precision": precision,
                "n_chips": len(ours),
                "max_abs_diff_vs_dlib": float(np.max(np.abs(ours - reference))),
                "min_cosine_vs_dlib": float(cosine.min()),
                "meets_fp32_target": bool(
                    np.max(np.abs(ours - reference)) <= 1e-4 and cosine.min() >= 0.99999
                ),
            }
            if device == "cuda" and precision == "fp32" and runtime == "torch":
                fp32_cuda = ours
            if precision == "fp16" and fp32_cuda is not None:
                c16 = np.sum(ours * fp32_cuda, 1) / (
                    np.linalg.norm(ours, axis=1) * np.linalg.norm(fp32_cuda, axis=1)
                )
                row["min_cosine_vs_fp32_cuda"] = float(c16.min())
                row["meets_fp16_target"] = bool(cosine.min() >= 0.9999)
            rows.append(row)
        return rows

    def descriptor_throughput(self) -> list[dict]:
        assert self.chips is not None
        chips = self.chips
        while len(chips) < 256:
            chips = np.concatenate([chips, self.chips])
        batches = (1, 32) if self.quick else (1, 32, 256)
        rows = []
        if have_dlib():
            import dlib

            recognizer = dlib.face_recognition_model_v1(str(self.models / RESNET_DAT))
            for batch in batches:
                items = [np.ascontiguousarray(c) for c in chips[:batch]]
                t = timed(
                    partial(recognizer.compute_face_descriptor, items),
                    min_seconds=self.min_seconds,
                )
                rows.append(self._throughput_row("dlib", "cpu", "fp32", batch, t))
        for runtime, device, precision in self.configs():
            runner = self.descriptor(runtime, device, precision)
            for batch in batches:
                sample = chips[:batch]
                t = timed(partial(runner, sample, batch_size=batch), min_seconds=self.min_seconds)
                rows.append(self._throughput_row(runtime, device, precision, batch, t))
        return rows

    @staticmethod
    def _throughput_row(engine: str, device: str, precision: str, batch: int, t: dict) -> dict:
        return {
            "engine": engine,
            "device": device,
            "precision": precision,
            "batch": batch,
            "faces_per_second": batch / t["seconds_per_call"],
            "ms_per_batch": 1000 * t["seconds_per_call"],
            "reps": t["reps"],
            "cpu_threads": torch.get_num_threads() if device == "cpu" else None,
        }

    def detector_accuracy(self) -> list[dict]:
        assert self.reference is not None
        cases = []
        t1 = self.args.data / "t1.jpg" if self.args.data else None
        if "t1_rects" in self.reference and t1 is not None and t1.is_file():
            cases.append(("t1.jpg", [read_rgb(t1)], 0, self.reference["t1_rects"], [None]))
        for upsample in (0, 1):
            key = f"det{upsample}"
            if f"{key}_names" not in self.reference or self.lfw is None:
                continue
            names = list(self.reference[f"{key}_names"])
            if not all((self.lfw / n).is_file() for n in names):
                continue
            cases.append(
                (
                    f"lfw_upsample{upsample}",
                    [read_rgb(self.lfw / n) for n in names],
                    upsample,
                    self.reference[f"{key}_rects"],
                    list(self.reference[f"{key}_counts"]),
                )
            )
        if not cases:
            raise FileNotFoundError("no reference images found (t1.jpg or the LFW subset)")
        rows = []
        for runtime, device, precision in self.configs():
            runner = self.detector(runtime, device, precision)
            for label, images, upsample, ref_rects, counts in cases:
                if self.quick and upsample:
                    continue
                ours = [runner.detect(im, upsample=upsample).rects for im in images]
                counts = [len(ref_rects)] if counts == [None] else counts
                splits = np.split(ref_rects, np.cumsum(counts)[:-1])
                mismatched, worst = 0, 0
                for mine, theirs in zip(ours, splits):
                    if len(mine) != len(theirs):
                        mismatched += 1
                        continue
                    if len(mine):
                        a = mine[np.lexsort(mine.T[::-1])]
                        b = theirs[np.lexsort(theirs.T[::-1])]
                        worst = max(worst, int(np.abs(a - b).max()))
                rows.append(
                    {
                        "case": label,
                        "runtime": runtime,
                        "device": device,
                        "precision": precision,
                        "images": len(images),
                        "faces_dlib": int(sum(counts)),
                        "images_with_different_count": mismatched,
                        "max_px_difference": worst,
                        "meets_target": mismatched == 0 and worst <= 2,
                    }
                )
        return rows

    def detection_time(self) -> list[dict]:
        if self.lfw is None:
            raise FileNotFoundError("no LFW images (--lfw or --data with lfw_subset)")
        portraits = [read_rgb(p) for p in list_images(self.lfw)[:40]]
        rows = []
        for label, (height, width) in FRAMES.items():
            if self.quick and width > 1000:
                continue
            frame = make_frame(portraits, height, width)
            if have_dlib():
                import dlib

                hog = dlib.get_frontal_face_detector()
                for upsample in (0, 1):
                    t = timed(partial(hog, frame, upsample), min_seconds=self.min_seconds)
                    rows.append(self._frame_row("dlib-hog", "cpu", "fp32", label, upsample, t))
                if not self.args.no_dlib_cnn:
                    cnn = dlib.cnn_face_detection_model_v1(str(self.models / MMOD_DAT))
                    start = time.perf_counter()
                    cnn(frame, 0)  # one call: ~10-20 s a frame on a CPU
                    t = {"seconds_per_call": time.perf_counter() - start, "reps": 1}
                    rows.append(self._frame_row("dlib-cnn", "cpu", "fp32", label, 0, t))
            for runtime, device, precision in self.configs():
                runner = self.detector(runtime, device, precision)
                t = timed(
                    partial(runner.detect, frame),
                    min_seconds=self.min_seconds,
                    max_reps=3 if device == "cpu" else 50,
                )
                row = self._frame_row(f"converted-cnn/{runtime}", device, precision, label, 0, t)
                row["faces"] = len(runner.detect(frame).rects)
                rows.append(row)
        return rows

    @staticmethod
    def _frame_row(
        detector: str, device: str, precision: str, frame: str, upsample: int, t: dict
    ) -> dict:
        return {
            "detector": detector,
            "device": device,
            "precision": precision,
            "frame": frame,
            "upsample": upsample,
            "ms_per_frame": 1000 * t["seconds_per_call"],
            "reps": t["reps"],
        }

    def lfw_wall_time(self) -> list[dict]:
        """Detection (converted CNN) + chip + embedding over LFW images, time-bounded."""
        if self.lfw is None:
            raise FileNotFoundError("no LFW images (--lfw or --data with lfw_subset)")
        files = list_images(self.lfw)
        configs = [c for c in self.configs() if c[1] == "cuda"] or [("torch", "cpu", "fp32")]
        budget = self.args.max_seconds / len(configs)
        rows = []
        for runtime, device, precision in configs:
            detector = self.detector(runtime, device, precision)
            descriptor = self.descriptor(runtime, device, precision)
            rows.append(self._wall(files, detector, descriptor, budget))
            rows[-1].update(runtime=runtime, device=device, precision=precision)
        return rows

    def _wall(self, files, detector, descriptor, budget: float) -> dict:
        chunk = 64  # images decoded in parallel, then detected as one batch
        detector.detect(read_rgb(files[0]))  # warm-up (kernels, pyramid plan)
        descriptor(np.zeros((8, 150, 150, 3), np.uint8))
        cuda_sync()
        done, faces, chips = 0, 0, []
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
            for first in range(0, len(files), chunk):
                images = list(pool.map(read_rgb, files[first : first + chunk]))
                groups: dict[tuple[int, ...], list[np.ndarray]] = {}
                for image in images:
                    groups.setdefault(image.shape, []).append(image)
                for same_size in groups.values():
                    found = detector.detect_batch(np.stack(same_size))
                    for image, result in zip(same_size, found):
                        if len(result.rects):
                            faces += 1
                            chips.append(box_crop_chip(image, result.rects[0]))
                if len(chips) >= 256:
                    descriptor(np.stack(chips), batch_size=256)
                    chips = []
                done += len(images)
                if time.perf_counter() - start > budget:
                    break
            if chips:
                descriptor(np.stack(chips), batch_size=256)
        cuda_sync()
        elapsed = time.perf_counter() - start
        rate = done / elapsed
        return {
            "images": done,
            "faces_embedded": faces,
            "seconds": elapsed,
            "images_per_second": rate,
            "lfw_13233_seconds_extrapolated": LFW_TOTAL / rate,
            "extrapolated": done < LFW_TOTAL,
            "note": "JPEG decode + converted MMOD detection (batched by size) + chip + embedding "
            "(batch 256); chips cut from the box, since dlib's shape predictor is CPU-only (see "
            "alignment_cost)",
        }

    def alignment_cost(self) -> dict:
        import dlib

        from lfr_eval.faces import load_engine

        engine = load_engine("dlib")
        files = list_images(self.lfw)[:20]
        images = [read_rgb(p) for p in files]
        boxes = [engine.detect(im).boxes[:1] for im in images]
        pairs = [(im, b) for im, b in zip(images, boxes) if len(b)]
        start = time.perf_counter()
        for image, box in pairs:
            engine.align(image, box)
        per_face = (time.perf_counter() - start) / max(1, len(pairs))
        return {
            "alignment_ms_per_face": 1000 * per_face,
            "faces": len(pairs),
            "dlib": dlib.__version__,
        }

    def lfw_pairs(self) -> dict:
        return lfw_pairs_accuracy(self.args.lfw, self.converted["resnet"], self.args.max_pairs)

    def run(self) -> dict:
        report = self.report
        report.data["machine"] = machine_info()
        report.section("conversion", self.convert)
        if self.reference is None:
            report.skip("checks", f"no {REFERENCE_NAME} in --data: run --prepare on a dlib machine")
        if self.chips is None:
            report.skip("descriptors", "no chips.npy: pass --data DIR from a --prepare run")
        elif self.reference is not None:
            report.section("descriptor_accuracy", self.descriptor_accuracy)
        if self.chips is not None:
            report.section("descriptor_throughput", self.descriptor_throughput)
        if self.reference is not None:
            report.section("detector_accuracy", self.detector_accuracy)
        report.section("detection_time", self.detection_time)
        if self.lfw is not None and not self.args.no_wall:
            report.section("lfw_wall_time", self.lfw_wall_time)
            if have_dlib():
                report.section("alignment_cost", self.alignment_cost)
        if self.args.pairs:
            if not have_dlib() or "resnet" not in self.converted:
                report.skip("lfw_pairs", "needs dlib and the ONNX conversion")
            else:
                report.section("lfw_pairs", self.lfw_pairs)
        return report.data


# ----------------------------------------------------------------------------------------
# LFW pairs accuracy, dlib vs converted (CPU, needs dlib)
# ----------------------------------------------------------------------------------------


def ten_fold_accuracy(scores: np.ndarray, mated: np.ndarray, folds: np.ndarray) -> dict:
    """LFW's protocol: for each fold, the threshold that is best on the other nine (halfway
    between consecutive scores), applied to it. Returns the mean and each fold's accuracy."""
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        ordered = np.sort(scores[train])
        candidates = (ordered[1:] + ordered[:-1]) / 2
        decisions = scores[train][None, :] >= candidates[:, None]
        best = candidates[int(np.argmax((decisions == mated[train][None, :]).mean(axis=1)))]
        thresholds.append(float(best))
        accuracies.append(float(np.mean((scores[test] >= best) == mated[test])))
    return {
        "mean_accuracy": float(np.mean(accuracies)),
        "std_accuracy": float(np.std(accuracies)),
        "fold_accuracies": accuracies,
        "thresholds": thresholds,
    }


def lfw_pairs_accuracy(lfw: Path, converted_resnet, max_pairs: int = 0) -> dict:
    from lfr_eval.datasets import read_lfw_pairs
    from lfr_eval.faces import load_engine

    pairs = read_lfw_pairs(lfw)
    frame = pairs.frame if not max_pairs else pairs.frame.groupby("fold").head(max_pairs // 10)
    paths = sorted(set(frame["path_a"]) | set(frame["path_b"]))
    engine = load_engine("dlib")  # HOG, upsample 1, dlib's chips
    runner = DescriptorRunner(converted_resnet, "onnxruntime", "cpu")
    chips, fallback = [], 0
    start = time.perf_counter()
    for i, rel in enumerate(paths):
        image = read_rgb(pairs.root / rel)
        boxes = engine.detect(image).boxes
        if len(boxes) == 0:  # LFW faces are centred: landmarks inside the middle box
            boxes, fallback = np.array([[70.0, 70.0, 180.0, 180.0]]), fallback + 1
        chips.append(engine.align(image, boxes[:1])[0][1])
        if (i + 1) % 1000 == 0:
            log(f"chips {i + 1}/{len(paths)}")
    chips_array = np.stack(chips)
    t_chips = time.perf_counter() - start
    start = time.perf_counter()
    theirs = engine.raw_descriptors(list(chips_array), batch_size=64)
    t_dlib = time.perf_counter() - start
    start = time.perf_counter()
    ours = runner(chips_array, batch_size=64).astype(np.float64)
    t_ours = time.perf_counter() - start
    index = {p: i for i, p in enumerate(paths)}
    a = frame["path_a"].map(index).to_numpy()
    b = frame["path_b"].map(index).to_numpy()
    mated = frame["mated"].to_numpy(dtype=bool)
    folds = frame["fold"].to_numpy()
    result: dict = {
        "pairs": len(frame),
        "images": len(paths),
        "images_without_hog_face": fallback,
        "seconds": {"chips": t_chips, "dlib_descriptors": t_dlib, "converted_onnxruntime": t_ours},
        "max_abs_descriptor_diff": float(np.max(np.abs(ours - theirs))),
    }
    for label, d in (("dlib", theirs), ("converted", ours)):
        unit = d / np.linalg.norm(d, axis=1, keepdims=True)
        cosine = np.sum(unit[a] * unit[b], axis=1)
        distance = np.linalg.norm(d[a] - d[b], axis=1)
        result[label] = {
            "cosine_10fold": ten_fold_accuracy(cosine, mated, folds),
            "euclidean_0.6_accuracy": float(np.mean((distance < 0.6) == mated)),
            "descriptor_norm_mean": float(np.linalg.norm(d, axis=1).mean()),
        }
        result[label]["_cosine"] = cosine
        result[label]["_same_06"] = distance < 0.6
    result["pairs_with_different_decision_0.6"] = int(
        np.sum(result["dlib"].pop("_same_06") != result["converted"].pop("_same_06"))
    )
    c_dlib, c_ours = result["dlib"].pop("_cosine"), result["converted"].pop("_cosine")
    result["max_abs_cosine_diff"] = float(np.max(np.abs(c_dlib - c_ours)))
    thresholds = result["dlib"]["cosine_10fold"]["thresholds"]
    result["pairs_with_different_decision_dlib_thresholds"] = int(
        sum(
            np.sum((c_dlib[folds == f] >= t) != (c_ours[folds == f] >= t))
            for f, t in zip(np.unique(folds), thresholds)
        )
    )
    return result


# ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", type=Path, help="write chips/models/LFW subset here")
    parser.add_argument("--data", type=Path, help="folder made by --prepare")
    parser.add_argument("--lfw", type=Path, help="LFW folder (or any folder of images)")
    parser.add_argument("--models", type=Path, help="folder with the dlib .dat files")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--pairs", action="store_true", help="LFW pairs accuracy (needs dlib)")
    parser.add_argument("--max-pairs", type=int, default=0, help="limit pairs (0 = all 6000)")
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="budget of the LFW wall-time pass"
    )
    parser.add_argument("--no-wall", action="store_true", help="skip the LFW wall-time pass")
    parser.add_argument(
        "--no-dlib-cnn", action="store_true", help="do not time dlib's CNN (slow on CPU)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--gpu-only", action="store_true", help="with a GPU, skip the CPU runtimes")
    args = parser.parse_args(argv)
    if args.prepare:
        if not args.lfw:
            parser.error("--prepare needs --lfw")
        prepare(args.prepare, args.lfw)
        return 0
    start = time.perf_counter()
    data = Bench(args).run()
    data["total_seconds"] = time.perf_counter() - start
    text = json.dumps(data, indent=2, default=float)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        log(f"wrote {args.out}")
    else:
        print(text)
    return 1 if data["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
