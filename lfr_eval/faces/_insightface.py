"""InsightFace backend: an SCRFD detector and an ArcFace recognizer from a model pack (ONNX).

The models are driven through insightface's own classes (``insightface.model_zoo.get_model``
returning :class:`~insightface.model_zoo.scrfd.SCRFD` / ``ArcFaceONNX``) and aligned with
``insightface.utils.face_align.norm_crop``, so crops and embeddings are the ones insightface
itself would produce. The ``insightface`` extra installs insightface 0.7.3 (later releases
require the GUI ``opencv-python`` beside our headless OpenCV); 2.x, installed by hand, works
too: the few differences (the detector class the model router returns, where the detection
threshold is set, one session or one per input size) are handled here.

Nothing is ever downloaded: a missing pack is a :class:`ModelError` that says where to put
which files.

Model packs: a directory holding ``*.onnx`` files, such as insightface's ``buffalo_l``
(``det_10g.onnx`` + ``w600k_r50.onnx``), ``buffalo_s`` (``det_500m.onnx`` + ``w600k_mbf.onnx``)
or ``antelopev2`` (``scrfd_10g_bnkps.onnx`` + ``glintr100.onnx``); extra files (landmark,
gender/age models) are ignored. A pack name is looked up under :func:`lfr_eval.workspace.
models_dir` (``$LFR_MODELS`` or ``<workspace>/models``) and then ``~/.insightface/models``.

Runtimes: ``"onnxruntime"`` runs both networks in onnxruntime (CUDA provider when
``device="cuda"``); ``"torch"`` runs both in PyTorch on the chosen device (fp16 on CUDA by
default): the recognizer via :class:`~lfr_eval.faces.torch_runtime.TorchRecognizer`, the SCRFD
detector's network via :class:`~lfr_eval.faces.torch_runtime.TorchSession` handed to the
detector class insightface's model zoo picks for the file, so its pre-processing, anchor
decoding and NMS stay insightface's own. The engine reports where each part runs in
:attr:`detector_providers` and :attr:`recognizer_providers`; with ``device="cuda"`` neither
part ever runs on the CPU instead.

Similarity is the cosine of unit-norm 512-d embeddings, in [-1, 1]. InsightFace's usual
verification threshold for buffalo_l is around 0.2-0.3 cosine; each model needs its own.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime
from google.protobuf.message import DecodeError
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from lfr_eval.errors import MSG_IMAGE_TOO_LARGE, ImageError, ModelError, RuntimeUnavailableError
from lfr_eval.faces._image import MAX_PIXELS, ensure_rgb_uint8
from lfr_eval.faces._quality import face_quality
from lfr_eval.faces._types import (
    Detections,
    EngineId,
    EngineInfo,
    Face,
    ModelFile,
    RuntimeInfo,
)
from lfr_eval.faces.torch_runtime import (
    RecognizerSignature,
    TorchRecognizer,
    TorchSession,
    crops_to_blob,
    load_onnx,
    torch_device,
)
from lfr_eval.workspace import models_dir

DEFAULT_PACK = "buffalo_l"

#: File names of the detectors and recognizers in insightface's published packs.
_DETECTOR_NAME = re.compile(r"^(det_|scrfd)", re.IGNORECASE)
_RECOGNIZER_NAME = re.compile(r"(w600k|glint|arcface|ms1m|webface|_r\d+|^r\d+|mbf)", re.IGNORECASE)

MSG_PACK_LAYOUT = (
    "A model pack is a folder named after the pack holding its ONNX files as insightface "
    "publishes them, e.g.\n"
    "  {root}/buffalo_l/det_10g.onnx      (SCRFD detector)\n"
    "  {root}/buffalo_l/w600k_r50.onnx    (ArcFace recognizer)\n"
    "(buffalo_s: det_500m.onnx + w600k_mbf.onnx; antelopev2: scrfd_10g_bnkps.onnx + "
    "glintr100.onnx). Unzip the pack there, or pass the folder path, or give "
    "detector_path/recognizer_path. Nothing is downloaded automatically."
)
MSG_PACK_MISSING = (
    "InsightFace model pack {pack!r} not found; looked in: {searched}.\n" + MSG_PACK_LAYOUT
)
MSG_PACK_INCOMPLETE = (
    "model pack folder {folder} has no {role} file, {expected} (found: {found}).\n"
    + MSG_PACK_LAYOUT
)
MSG_WRONG_MODEL = "{path} is not a valid {role}: {detail}. Expected {expected}."
_EXPECTED = {
    "detector": "an SCRFD detector with keypoints (input 1x3xHxW, 9 or 15 outputs), "
    "e.g. det_10g.onnx",
    "recognizer": "an ArcFace recognizer (input Nx3x112x112, one output NxD), e.g. w600k_r50.onnx",
}
MSG_ORT_NO_CUDA = (
    "device 'cuda' was requested but onnxruntime {version} offers only {available}: install "
    "onnxruntime-gpu, or use runtime='torch' (PyTorch on CUDA), or device='cpu'. "
    "We do not fall back to the CPU."
)
MSG_TORCH_DETECTOR_UNUSED = (
    "insightface {version}'s {kind} did not run its network through the PyTorch session (it "
    "keeps sessions of its own); use runtime='onnxruntime'. We do not run it elsewhere silently."
)
MSG_ORT_CUDA_INACTIVE = (
    "onnxruntime did not activate CUDA for the {role} (session providers: {providers}); the "
    "CUDA/cuDNN libraries probably failed to load. We do not fall back to the CPU."
)

#: Exceptions onnxruntime raises for a file that is not a loadable model.
_ORT_LOAD_ERRORS: tuple[type[BaseException], ...] = tuple(
    getattr(ort_state, name)
    for name in (
        "Fail",
        "InvalidArgument",
        "InvalidProtobuf",
        "InvalidGraph",
        "NoSuchFile",
        "NotImplemented",
        "RuntimeException",
    )
    if hasattr(ort_state, name)
)


def _pack_roots(workspace: str | os.PathLike[str] | None) -> list[Path]:
    return [models_dir(workspace), Path.home() / ".insightface" / "models"]


def find_model_pack(
    pack: str | os.PathLike[str], workspace: str | os.PathLike[str] | None = None
) -> Path:
    """Resolve a model pack: an existing directory, or a name under the model roots.

    Raises
    ------
    ModelError
        Not found, with the folders searched and the expected layout.
    """
    direct = Path(pack).expanduser()
    if direct.is_dir():
        return direct
    roots = _pack_roots(workspace)
    name = str(pack)
    if direct.is_absolute() or os.sep in name:
        searched = [direct]
    else:
        searched = [root / name for root in roots]
    for candidate in searched:
        if candidate.is_dir():
            return candidate
    raise ModelError(
        MSG_PACK_MISSING.format(
            pack=name, searched=", ".join(str(p) for p in searched), root=roots[0]
        )
    )


def _graph_role(path: Path) -> str | None:
    """'detector', 'recognizer' or None, from the graph's inputs and outputs."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError):
        return None
    if len(model.graph.output) in (9, 15):
        return "detector"
    try:
        RecognizerSignature(model, path)
    except ModelError:
        return None
    return "recognizer"


def pack_files(folder: Path, workspace_root: Path | None = None) -> tuple[Path, Path]:
    """The detector and recognizer ONNX files of a pack folder.

    Known insightface file names decide first; other files are classified by their graph.
    """
    files = sorted(folder.glob("*.onnx"))
    found: dict[str, list[Path]] = {"detector": [], "recognizer": []}
    unknown = []
    for path in files:
        if _DETECTOR_NAME.search(path.name):
            found["detector"].append(path)
        elif _RECOGNIZER_NAME.search(path.name):
            found["recognizer"].append(path)
        else:
            unknown.append(path)
    for role in ("detector", "recognizer"):
        if not found[role]:
            found[role] = [p for p in unknown if _graph_role(p) == role]
        if not found[role]:
            raise ModelError(
                MSG_PACK_INCOMPLETE.format(
                    folder=folder,
                    role=role,
                    expected=_EXPECTED[role],
                    found=", ".join(p.name for p in files) or "no .onnx files",
                    root=workspace_root or folder.parent,
                )
            )
    return found["detector"][0], found["recognizer"][0]


def _ort_providers(device: str) -> list[str]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    available = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise RuntimeUnavailableError(
            MSG_ORT_NO_CUDA.format(version=onnxruntime.__version__, available=available)
        )
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def _load_zoo_model(path: Path, role: str, providers: list[str]) -> Any:
    """Load with insightface's model zoo and check it is the kind of model we asked for."""
    from insightface.model_zoo import get_model
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.model_zoo.scrfd import SCRFD

    # insightface 0.7's router returns its RetinaFace class for SCRFD graphs (the same anchor
    # decoder as its SCRFD class); 2.x returns SCRFD
    detectors: tuple[type, ...] = (SCRFD,)
    with contextlib.suppress(ImportError):
        from insightface.model_zoo.retinaface import RetinaFace

        detectors += (RetinaFace,)

    if not path.is_file():
        raise ModelError(
            f"{role} model file not found: {path}\n"
            + MSG_PACK_LAYOUT.format(root=path.parent.parent)
        )
    try:
        # a file path ending in .onnx: get_model never downloads (download=False is the default
        # and we pass it anyway)
        with contextlib.redirect_stdout(io.StringIO()):
            # insightface 0.7 prints the providers it applied: our stdout may be JSON
            model: Any = get_model(str(path), providers=providers, download=False)
    except _ORT_LOAD_ERRORS as exc:
        raise ModelError(
            MSG_WRONG_MODEL.format(
                path=path,
                role=role,
                detail=f"onnxruntime cannot load it ({exc})",
                expected=_EXPECTED[role],
            )
        ) from exc
    except (AssertionError, DecodeError) as exc:
        # ArcFaceONNX asserts a single output; onnx.load fails on a non-ONNX file
        raise ModelError(
            MSG_WRONG_MODEL.format(
                path=path,
                role=role,
                detail=f"unexpected graph ({exc or type(exc).__name__})",
                expected=_EXPECTED[role],
            )
        ) from exc
    wanted = detectors if role == "detector" else (ArcFaceONNX,)
    if not isinstance(model, wanted):
        if isinstance(model, detectors):
            kind = "an SCRFD detector"
        else:
            kind = type(model).__name__ if model is not None else "an unrecognised model"
        raise ModelError(
            MSG_WRONG_MODEL.format(
                path=path,
                role=role,
                detail=f"insightface reads it as {kind}",
                expected=_EXPECTED[role],
            )
        )
    if role == "detector" and not getattr(model, "use_kps", False):
        raise ModelError(
            MSG_WRONG_MODEL.format(
                path=path,
                role=role,
                detail="it has no keypoint outputs (needed for alignment)",
                expected=_EXPECTED[role],
            )
        )
    return model


def _torch_detector(
    path: Path, device: str, precision: Literal["fp32", "fp16"]
) -> tuple[Any, TorchSession]:
    """The detector class insightface's model zoo picks for ``path``, built on a
    :class:`TorchSession` so its network runs in PyTorch on ``device``.

    The zoo loads the file once on onnxruntime's CPU provider to route and validate it (the
    same checks and messages as the onnxruntime runtime); that session is dropped and the same
    class is rebuilt through its ``session=`` argument.
    """
    routed = _load_zoo_model(path, "detector", ["CPUExecutionProvider"])
    session = TorchSession(path, "detector", device=device, precision=precision)
    return type(routed)(model_file=str(path), session=session), session


def _check_active(session: Any, role: str, device: str) -> tuple[str, ...]:
    providers = tuple(session.get_providers())
    if device == "cuda" and (not providers or providers[0] != "CUDAExecutionProvider"):
        raise RuntimeUnavailableError(
            MSG_ORT_CUDA_INACTIVE.format(role=role, providers=list(providers))
        )
    return providers


class InsightFaceEngine:
    """InsightFace engine: SCRFD detection, 5 keypoints, ArcFace crop and embedding.

    Parameters
    ----------
    model_pack : str or path, optional
        Pack folder or name (default ``"buffalo_l"`` unless both model paths are given).
    detector_path, recognizer_path : path, optional
        Explicit ONNX files; each overrides the pack's file of that role.
    runtime : {"onnxruntime", "torch"}
        What runs both networks (detector and recognizer).
    device : {"cpu", "cuda"}
        ``"cuda"`` must really run on the GPU, else :class:`RuntimeUnavailableError`.
    det_size : (int, int)
        Detector input (width, height), pixels; the image is letterboxed into it.
    det_thresh : float in [0, 1]
        Minimum detector score.
    precision : {"fp32", "fp16"}, optional
        Torch runtime only (both networks); default fp16 on CUDA, fp32 on the CPU.
    workspace : path, optional
        Workspace whose ``models/`` folder is searched for packs.
    nms_thresh : float
        IoU above which overlapping detections are merged.

    Raises
    ------
    ModelError
        Pack or file missing (message gives the layout), or a file of the wrong kind.
    RuntimeUnavailableError
        A GPU was requested and is not active for either network.

    Attributes
    ----------
    detector_providers, recognizer_providers : tuple of str
        Where each network really runs: onnxruntime providers (``"CUDAExecutionProvider"``,
        ...) or the torch device (``"cuda:0"``, ``"cpu"``).
    """

    backend = "insightface"

    def __init__(
        self,
        model_pack: str | os.PathLike[str] | None = None,
        detector_path: str | os.PathLike[str] | None = None,
        recognizer_path: str | os.PathLike[str] | None = None,
        runtime: Literal["onnxruntime", "torch"] = "onnxruntime",
        device: Literal["cpu", "cuda"] = "cpu",
        det_size: tuple[int, int] = (640, 640),
        det_thresh: float = 0.5,
        *,
        precision: Literal["fp32", "fp16"] | None = None,
        workspace: str | os.PathLike[str] | None = None,
        nms_thresh: float = 0.4,
    ) -> None:
        if runtime not in ("onnxruntime", "torch"):
            raise ValueError(f"runtime must be 'onnxruntime' or 'torch', got {runtime!r}")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        if not 0.0 <= float(det_thresh) <= 1.0:
            raise ValueError(f"det_thresh must be in [0, 1], got {det_thresh}")
        width, height = (int(v) for v in det_size)
        if width < 32 or height < 32 or width % 32 or height % 32:
            raise ValueError(
                f"det_size must be multiples of 32 (SCRFD's largest stride): {det_size}"
            )
        self.det_size = (width, height)
        self.det_thresh = float(det_thresh)
        self.device = device
        self.runtime_name = runtime

        if detector_path is None or recognizer_path is None:
            folder = find_model_pack(model_pack or DEFAULT_PACK, workspace)
            pack_det, pack_rec = pack_files(folder)
            detector_path = detector_path or pack_det
            recognizer_path = recognizer_path or pack_rec
        self.model_pack = str(model_pack) if model_pack is not None else None
        det_path, rec_path = Path(detector_path), Path(recognizer_path)

        # fail on the GPU request before loading anything heavy
        precision_used: Literal["fp32", "fp16"] = "fp32"
        self._torch: TorchRecognizer | None = None
        self._torch_session: TorchSession | None = None
        if runtime == "onnxruntime":
            if precision is not None and precision != "fp32":
                raise ValueError(
                    "precision applies to runtime='torch' only (onnxruntime runs fp32)"
                )
            providers = _ort_providers(device)
            self._detector = _load_zoo_model(det_path, "detector", providers)
        else:
            torch_device(device)
            precision_used = precision or ("fp16" if device == "cuda" else "fp32")
            self._detector, self._torch_session = _torch_detector(det_path, device, precision_used)
        # the threshold is set here, not per detect() call: insightface 0.7's detect() takes
        # none (2.x's falls back to this one)
        with contextlib.redirect_stdout(io.StringIO()):
            self._detector.prepare(
                0,
                input_size=self.det_size,
                det_thresh=self.det_thresh,
                nms_thresh=float(nms_thresh),
            )

        if runtime == "onnxruntime":
            self._recognizer = _load_zoo_model(rec_path, "recognizer", providers)
            signature = RecognizerSignature(load_onnx(rec_path, "recognizer"), rec_path)
            rec_providers = _check_active(self._recognizer.session, "recognizer", device)
            self._input_mean = float(self._recognizer.input_mean)
            self._input_std = float(self._recognizer.input_std)
            version = onnxruntime.__version__
        else:
            self._torch = TorchRecognizer(rec_path, device=device, precision=precision_used)
            signature = self._torch.signature
            rec_providers = (self._torch.device,)
            self._input_mean, self._input_std = signature.input_mean, signature.input_std
            version = self._torch.version
        self._signature = signature
        self.crop_size = signature.input_size
        self._fixed_batch = signature.fixed_batch

        # run the detector once so its per-resolution session exists and we can report where
        # it really runs (and fail now, not on the first frame)
        self._detect_bgr(np.zeros((height, width, 3), np.uint8))
        detector_used: tuple[str, ...] = ()
        if self._torch_session is not None:
            if self._torch_session.calls == 0:
                import insightface

                raise RuntimeUnavailableError(
                    MSG_TORCH_DETECTOR_UNUSED.format(
                        version=insightface.__version__, kind=type(self._detector).__name__
                    )
                )
            detector_used = tuple(self._torch_session.get_providers())
        else:
            # insightface 2.x keeps a session per input resolution; 0.7 has the one session
            per_resolution = getattr(self._detector, "resolution_sessions", None) or {}
            for session in list(per_resolution.values()) or [self._detector.session]:
                detector_used = _check_active(session, "detector", device)
        self.detector_providers = detector_used
        self.recognizer_providers = tuple(rec_providers)

        self.model_paths = {"detector": str(det_path), "recognizer": str(rec_path)}
        self.engine_id = EngineId(
            backend=self.backend,
            models=(
                ModelFile.from_path("detector", det_path),
                ModelFile.from_path("recognizer", rec_path),
            ),
            embedding_dim=signature.embedding_dim,
        )
        in_use = tuple(dict.fromkeys(self.recognizer_providers + self.detector_providers))
        if self._torch is not None and self._torch_session is not None:
            gpu_active = self._torch.gpu_active and self._torch_session.gpu_active
        else:
            gpu_active = rec_providers[0] == "CUDAExecutionProvider"
        self.runtime = RuntimeInfo(
            name=runtime,
            providers=in_use,
            gpu_requested=device == "cuda",
            gpu_active=bool(gpu_active),
            precision=precision_used,
            version=str(version),
        )

    def __repr__(self) -> str:
        return (
            f"InsightFaceEngine(detector={Path(self.model_paths['detector']).name!r}, "
            f"recognizer={Path(self.model_paths['recognizer']).name!r}, "
            f"runtime={self.runtime.describe()!r})"
        )

    def info(self) -> EngineInfo:
        """Engine id, runtime and model file paths (for ``lfr-eval info`` and the app)."""
        return EngineInfo(self.engine_id, self.runtime, dict(self.model_paths))

    def _detect_bgr(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # insightface's own pre-processing and decoding; the network runs in onnxruntime or,
        # for runtime="torch", in the TorchSession the detector was built on
        dets, kpss = self._detector.detect(bgr, input_size=self.det_size)
        return dets, kpss

    def detect(self, image: np.ndarray) -> Detections:
        """Find faces in an RGB uint8 image.

        Returns
        -------
        Detections
            Boxes (n, 4) in pixels, clipped to the image, largest first; scores are SCRFD
            probabilities in [0, 1]; landmarks (n, 5, 2) in pixels (insightface order = ours).
        """
        image = self._check_image(image)
        height, width = image.shape[:2]
        # insightface's detector takes BGR (it swaps to RGB inside)
        dets, kpss = self._detect_bgr(np.ascontiguousarray(image[:, :, ::-1]))
        if len(dets) == 0:
            return Detections.empty(with_landmarks=True)
        boxes = np.clip(dets[:, :4].astype(np.float64), 0, [width, height, width, height])
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = boxes[keep], dets[keep, 4].astype(np.float64)
        landmarks = kpss[keep].astype(np.float64)
        order = np.argsort(
            -(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable"
        )
        return Detections(boxes[order], scores[order], landmarks[order])

    @staticmethod
    def _check_image(image: np.ndarray) -> np.ndarray:
        image = ensure_rgb_uint8(image)
        height, width = image.shape[:2]
        if height * width > MAX_PIXELS:
            raise ImageError(
                MSG_IMAGE_TOO_LARGE.format(
                    width=width, height=height, limit=MAX_PIXELS, path="<array>"
                )
            )
        return image

    def align(self, image: np.ndarray, landmarks: np.ndarray) -> list[np.ndarray]:
        """ArcFace crops (``crop_size`` square, RGB uint8) for (n, 5, 2) landmarks."""
        from insightface.utils.face_align import norm_crop

        image = self._check_image(image)
        with warnings.catch_warnings():
            # norm_crop calls skimage's SimilarityTransform.estimate, deprecated in skimage 0.26;
            # the warning is insightface's to fix and would repeat on every face
            warnings.simplefilter("ignore", FutureWarning)
            return [
                norm_crop(image, landmark=np.asarray(points, np.float32), image_size=self.crop_size)
                for points in np.asarray(landmarks).reshape(-1, 5, 2)
            ]

    def crops(
        self,
        image: np.ndarray,
        detections: Detections,
        indices: Sequence[int] | None = None,
    ) -> list[np.ndarray]:
        """ArcFace crops (``crop_size`` square, RGB uint8) of chosen detections, from their
        five landmarks.

        Raises
        ------
        ValueError
            The detections carry no landmarks (they did not come from this engine's detector).
        """
        chosen = detections if indices is None else detections.select(indices)
        if chosen.landmarks is None:
            raise ValueError(
                "InsightFace crops are aligned on the detector's five landmarks; these "
                "detections have none (use this engine's detect())"
            )
        return self.align(image, chosen.landmarks)

    def analyze(self, image: np.ndarray, *, embed: bool = True) -> list[Face]:
        """Detect, align and (if ``embed``) embed every face; largest first.

        Raises
        ------
        ImageError
            Not an RGB uint8 image, or too large.
        """
        image = self._check_image(image)
        found = self.detect(image)
        boxes, scores, landmarks = found.boxes, found.scores, found.landmarks
        assert landmarks is not None  # this engine's detect() always gives them
        crops = self.crops(image, found)
        faces = [
            Face(
                box=box,
                landmarks=points,
                det_score=float(score),
                crop=crop,
                quality=face_quality(box, points, crop),
            )
            for box, score, points, crop in zip(boxes, scores, landmarks, crops)
        ]
        if embed and faces:
            for face, vector in zip(faces, self.embed_crops(crops)):
                face.embedding = vector
        return faces

    def embed_crops(self, crops: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        """Embed aligned crops in batches.

        Parameters
        ----------
        crops : sequence of ndarray (S, S, 3) uint8 RGB, S = :attr:`crop_size` (112)
        batch_size : int
            Crops per network call (1 when the model's batch axis is fixed to 1).

        Returns
        -------
        ndarray (n, D) float32, rows of unit L2 norm (cosine similarity = dot product).
        """
        size = self.crop_size
        crops = list(crops)
        for crop in crops:
            if crop.shape != (size, size, 3) or crop.dtype != np.uint8:
                raise ImageError(
                    f"expected {size}x{size}x3 uint8 ArcFace crops (face_align.norm_crop), "
                    f"got {crop.shape} {crop.dtype}"
                )
        dim = self.engine_id.embedding_dim
        if not crops:
            return np.zeros((0, dim), np.float32)
        step = self._fixed_batch or max(1, int(batch_size))
        parts: list[np.ndarray] = []
        for start in range(0, len(crops), step):
            blob = crops_to_blob(crops[start : start + step], self._input_mean, self._input_std)
            if self._torch is not None:
                parts.append(self._torch.embed(blob))
            else:
                session = self._recognizer.session
                parts.append(
                    session.run(self._recognizer.output_names, {self._recognizer.input_name: blob})[
                        0
                    ]
                )
        raw = np.concatenate(parts).astype(np.float32).reshape(len(crops), dim)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return np.asarray(raw / np.maximum(norms, 1e-12), dtype=np.float32)
