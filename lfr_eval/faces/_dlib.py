"""The default face engine: dlib's detectors, 5-point landmarks and 128-d ResNet descriptor.

Runs on the CPU only (the ``dlib-bin`` wheel is built without CUDA). The models come from the
``face_recognition_models`` package; see :mod:`lfr_eval.faces._dlib_models`.

Similarity and dlib's 0.6 tolerance
-----------------------------------
dlib compares raw descriptors by Euclidean distance ``d`` and calls two faces the same person
below ``d = 0.6``. We L2-normalise every embedding and compare by cosine similarity ``s`` in
[-1, 1]. For unit vectors ``d**2 = 2 - 2 s``, i.e. ``s = 1 - d**2 / 2``, which would put dlib's
0.6 at ``s = 0.82`` -- but dlib's raw descriptors are **not** unit length: on 802 LFW faces their
norm ``r`` is 1.27-1.70 (median 1.43, 5-95 % 1.33-1.55). For two descriptors of norm ``r``,
``s = 1 - d**2 / (2 r**2)``, so ``d = 0.6`` is ``s ~= 1 - 0.36 / (2 * 1.43**2) = 0.91``
(0.90-0.93 over that norm range). Measured on LFW fold 1 (592 pairs with both faces found):
the cosine threshold that best reproduces dlib's ``d < 0.6`` decisions is 0.914 (99.5 % of pairs
decided alike), pairs with ``d`` in 0.57-0.63 have ``s`` 0.90-0.93, and the best-accuracy
cosine threshold is 0.90 (98.6 % accuracy vs 98.3 % for ``d < 0.6``). So: **dlib's 0.6 tolerance
is a cosine similarity of about 0.91 here, not 0.82.** Different people commonly score 0.8-0.9
in this space; thresholds quoted for other engines (e.g. ~0.3 for ArcFace) do not transfer.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dlib
import numpy as np
from typing_extensions import Self

from lfr_eval.errors import MSG_IMAGE_TOO_LARGE, ImageError, ModelError, RuntimeUnavailableError
from lfr_eval.faces._dlib_models import (
    MMOD_DETECTOR,
    MSG_DLIB_MODEL_BAD,
    RECOGNITION_RESNET,
    SHAPE_PREDICTOR_5,
    locate_dlib_models,
)
from lfr_eval.faces._image import MAX_PIXELS, ensure_rgb_uint8
from lfr_eval.faces._quality import ARCFACE_TEMPLATE_112, face_quality
from lfr_eval.faces._types import (
    Detections,
    EngineId,
    EngineInfo,
    Face,
    ModelFile,
    RuntimeInfo,
)

if TYPE_CHECKING:
    from lfr_eval.faces._dlib_onnx import OnnxResNet

#: The chip dlib's ResNet was trained on: 150x150, 25 % padding (``dlib.get_face_chip``'s
#: defaults, and what ``compute_face_descriptor(img, shape)`` uses internally).
DESCRIPTOR_CHIP_SIZE = 150
DESCRIPTOR_CHIP_PADDING = 0.25
EMBEDDING_DIM = 128

#: Median of (nose-base drop below the eye line) / (inter-ocular distance) on 148 LFW faces is
#: 0.78 for dlib's point 4; ArcFace's template has 0.571 for the nose tip.
_NOSE_BASE_TO_TIP = 0.78 - 0.571

MSG_DLIB_CPU_ONLY = (
    "the dlib engine runs on the CPU only (dlib-bin has no CUDA); asked for device {device!r}. "
    "Use the dlib-torch or insightface engine for a GPU."
)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def _estimate_mouth_corners(eyes_nose: np.ndarray) -> np.ndarray:
    """Mouth corners placed where ArcFace's template puts them, given eyes and nose tip.

    dlib's 5-point model marks the eye corners and the nose base but no mouth. We fit the
    least-squares similarity transform (scale, rotation, shift) taking the template's eye
    centres and nose tip onto the detected ones and map the template's mouth corners through it.
    They follow the face's position, size and roll, not its expression or pitch.
    """
    src = ARCFACE_TEMPLATE_112[:3, 0] + 1j * ARCFACE_TEMPLATE_112[:3, 1]
    dst = eyes_nose[:, 0] + 1j * eyes_nose[:, 1]
    src0, dst0 = src - src.mean(), dst - dst.mean()
    scale_rot = np.sum(dst0 * np.conj(src0)) / np.sum(np.abs(src0) ** 2)
    mouth = ARCFACE_TEMPLATE_112[3:, 0] + 1j * ARCFACE_TEMPLATE_112[3:, 1]
    mapped = scale_rot * (mouth - src.mean()) + dst.mean()
    return np.stack([mapped.real, mapped.imag], axis=1)


def landmarks_from_shape(shape: dlib.full_object_detection) -> np.ndarray:
    """Convert dlib's 5 points to our convention (see :mod:`lfr_eval.faces._types`).

    dlib's 5-point model gives the outer and inner corner of the image-right eye (points 0, 1),
    of the image-left eye (2, 3) and the bottom of the nose between the nostrils (4). We return:
    image-left eye centre (mean of 2, 3), image-right eye centre (mean of 0, 1), the nose tip
    **estimated** by moving point 4 up by 0.21 inter-ocular distances (the median gap between
    dlib's nose base and ArcFace's nose tip on frontal LFW faces), and two **estimated** mouth
    corners (:func:`_estimate_mouth_corners`).

    Returns
    -------
    ndarray of shape (5, 2), float64, pixels.
    """
    parts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    left_eye, right_eye = parts[2:4].mean(axis=0), parts[0:2].mean(axis=0)
    eye_vec = right_eye - left_eye
    # move the nose base up towards the tip, perpendicular to the eye line
    face_up = np.array([eye_vec[1], -eye_vec[0]])
    nose_tip = parts[4] + _NOSE_BASE_TO_TIP * face_up
    eyes_nose = np.stack([left_eye, right_eye, nose_tip])
    return np.concatenate([eyes_nose, _estimate_mouth_corners(eyes_nose)])


def _rect_to_box(rect: dlib.rectangle, width: int, height: int) -> np.ndarray:
    # dlib rectangles are inclusive; clip because upsampled detections can overhang the frame
    box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], float)
    clipped: np.ndarray = np.clip(box, 0, [width, height, width, height])
    return clipped


def _largest_first(boxes: np.ndarray, scores: np.ndarray) -> Detections:
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable")
    return Detections(boxes[order], scores[order])


def _box_to_rect(box: Sequence[float]) -> dlib.rectangle:
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    return dlib.rectangle(x1, y1, x2 - 1, y2 - 1)


#: Folder under the per-user cache folder holding dlib's HOG detector as a file.
HOG_CACHE_FOLDER = "dlib-hog"


def frontal_face_detector(cache_dir: str | os.PathLike[str] | None = None) -> Any:
    """dlib's HOG frontal face detector, read from a file cached per dlib version.

    ``dlib.get_frontal_face_detector()`` decodes the model from a string compiled into dlib,
    which took 5-6 s on every engine load on the (loaded) 2-core development machine; reading
    the same detector back from the file ``save()`` wrote took 15 ms there (benchmarks/RESULTS.md,
    "App start"). The file is written once (atomically); when it cannot
    be written or read, the detector is decoded as before: the same model either way
    (tests/test_faces_dlib.py compares the detections). The file is derived from the installed
    dlib, not from anyone's data, so it lives in the per-user cache folder and every workspace
    shares it.

    Parameters
    ----------
    cache_dir : path, optional
        Default ``<user cache dir>/lfr-workbench/dlib-hog`` (platformdirs).
    """
    if cache_dir is None:
        import platformdirs

        cache_dir = Path(platformdirs.user_cache_dir("lfr-workbench", appauthor=False))
        cache_dir = cache_dir / HOG_CACHE_FOLDER
    path = Path(cache_dir) / f"frontal_face_detector-dlib-{dlib.__version__}.svm"
    if path.is_file():
        try:
            return dlib.fhog_object_detector(str(path))
        except RuntimeError:
            pass  # a damaged file: decode and write it again below
    detector = dlib.get_frontal_face_detector()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        detector.save(str(partial))
        os.replace(partial, path)
    except (OSError, RuntimeError):
        # a read-only models folder: the next load decodes again, nothing else changes
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return detector


def _load(loader: type, path: os.PathLike[str], role: str, expected: str) -> Any:
    try:
        return loader(str(path))
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise ModelError(
            MSG_DLIB_MODEL_BAD.format(path=path, role=role, detail=detail, expected=expected)
        ) from exc


class DlibEngine:
    """dlib face engine: HOG or MMOD-CNN detector, 5-point landmarks, ResNet 128-d embedding.

    Parameters
    ----------
    detector : {"hog", "cnn"}
        HOG+SVM (fast on CPU, frontal faces of at least ~80 px, or ~40 px with ``upsample=1``)
        or MMOD CNN (finds smaller and more turned faces, several times slower on CPU).
    upsample : int, >= 0
        Times the image is doubled before detection; each doubles the smallest face found and
        quadruples the detection time.
    chip_size : int
        Side of :attr:`Face.crop` in pixels. Embeddings always use dlib's own 150 px chip.
    chip_padding : float
        Context around the face in the crop, as a fraction of the face (dlib's convention).
    device : {"cpu"}
        Only ``"cpu"``; anything else raises :class:`RuntimeUnavailableError`.
    embedder : {"onnxruntime", "dlib"}
        What computes the 128-d descriptor from the chip. ``"onnxruntime"`` (default): dlib's
        ResNet weights as an ONNX graph built from the same ``.dat`` file
        (:mod:`lfr_eval.faces._dlib_onnx`, no torch), several times faster than dlib's own
        call, descriptors within ~1e-6 of it. ``"dlib"``: dlib's own
        ``compute_face_descriptor`` (the reference).
    threads : int, optional
        onnxruntime threads for the descriptor (default: the CPUs this process may use, or
        what :func:`~lfr_eval.faces._dlib_onnx.set_cpu_threads` set for a worker process).
    models_folder, shape_predictor_path, recognizer_path, cnn_detector_path : path, optional
        Where the ``.dat`` files are; default the ``face_recognition_models`` package.

    Raises
    ------
    ModelError
        A model file is missing or is not the dlib model it should be.
    RuntimeUnavailableError
        ``device`` is not ``"cpu"``.

    Notes
    -----
    Embeddings are L2-normalised: compare them by cosine similarity in [-1, 1]. dlib's usual
    Euclidean tolerance 0.6 corresponds to a cosine similarity of about 0.91 (module docstring).

    The engine contract (:class:`~lfr_eval.faces.FaceEngine`): :meth:`detect` gives
    :class:`~lfr_eval.faces.Detections` (boxes, scores, no landmarks), :meth:`crops` turns
    chosen detections into descriptor chips, :meth:`embed_crops` embeds them. :meth:`align`
    (dlib-specific) also returns the 5 landmarks and the ``chip_size`` chips. Other engines
    reuse this one's detection and alignment, so a subclass that overrides only
    :meth:`embed_crops` (and its ``engine_id``/``runtime``) gets exactly the same boxes,
    landmarks and chips.
    """

    backend = "dlib"

    def __init__(
        self,
        detector: Literal["hog", "cnn"] = "hog",
        upsample: int = 1,
        chip_size: int = DESCRIPTOR_CHIP_SIZE,
        chip_padding: float = DESCRIPTOR_CHIP_PADDING,
        *,
        device: str = "cpu",
        models_folder: str | os.PathLike[str] | None = None,
        shape_predictor_path: str | os.PathLike[str] | None = None,
        recognizer_path: str | os.PathLike[str] | None = None,
        cnn_detector_path: str | os.PathLike[str] | None = None,
        embedder: Literal["onnxruntime", "dlib"] = "onnxruntime",
        threads: int | None = None,
    ) -> None:
        if device != "cpu":
            raise RuntimeUnavailableError(MSG_DLIB_CPU_ONLY.format(device=device))
        if detector not in ("hog", "cnn"):
            raise ValueError(f"detector must be 'hog' or 'cnn', got {detector!r}")
        if embedder not in ("onnxruntime", "dlib"):
            raise ValueError(f"embedder must be 'onnxruntime' or 'dlib', got {embedder!r}")
        if int(upsample) < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        if int(chip_size) < 32 or not 0.0 <= float(chip_padding) <= 2.0:
            raise ValueError(
                f"chip_size must be >= 32 and chip_padding in [0, 2], got {chip_size}, "
                f"{chip_padding}"
            )
        self.detector_kind = detector
        # dlib's detector, shape predictor and network objects are not thread-safe: two threads
        # running the same HOG detector at once crash the process (seen with the live page's
        # recognition thread and a page enrolling at the same time). One lock per engine.
        self._native_lock = threading.RLock()
        self.upsample = int(upsample)
        self.chip_size = int(chip_size)
        self.chip_padding = float(chip_padding)
        paths = locate_dlib_models(
            models_folder,
            shape_predictor=shape_predictor_path,
            recognizer=recognizer_path,
            cnn_detector=cnn_detector_path,
            need_cnn=detector == "cnn",
        )
        self._shape_predictor = _load(
            dlib.shape_predictor, paths.shape_predictor, "5-point landmark", SHAPE_PREDICTOR_5
        )
        # dlib loads a 68-point predictor without complaint; our landmark mapping needs 5.
        # The binding does not expose the point count, so run it once on a blank image.
        n_parts = self._shape_predictor(
            np.zeros((64, 64, 3), np.uint8), dlib.rectangle(8, 8, 56, 56)
        ).num_parts
        if n_parts != 5:
            raise ModelError(
                MSG_DLIB_MODEL_BAD.format(
                    path=paths.shape_predictor,
                    role="5-point landmark",
                    detail=f"it predicts {n_parts} points, not 5",
                    expected=SHAPE_PREDICTOR_5,
                )
            )
        self._recognizer = _load(
            dlib.face_recognition_model_v1,
            paths.recognizer,
            "face recognition",
            RECOGNITION_RESNET,
        )
        models = [
            ModelFile.from_path("landmarks", paths.shape_predictor),
            ModelFile.from_path("recognizer", paths.recognizer),
        ]
        self.model_paths: dict[str, str] = {
            "landmarks": str(paths.shape_predictor),
            "recognizer": str(paths.recognizer),
        }
        if detector == "cnn":
            self._cnn = _load(
                dlib.cnn_face_detection_model_v1,
                paths.cnn_detector,
                "MMOD face detector",
                MMOD_DETECTOR,
            )
            models.insert(0, ModelFile.from_path("detector", paths.cnn_detector))
            self.model_paths["detector"] = str(paths.cnn_detector)
        else:
            self._hog = frontal_face_detector()
        self.engine_id = EngineId(
            backend=self.backend, models=tuple(models), embedding_dim=EMBEDDING_DIM
        )
        self.runtime = RuntimeInfo(
            name="dlib",
            providers=("cpu",),
            gpu_requested=False,
            gpu_active=False,
            precision="fp32",
            version=str(dlib.__version__),
        )
        self.embedder = embedder
        self._onnx: OnnxResNet | None = None
        if embedder == "onnxruntime":
            self._use_onnx(paths.recognizer, threads)

    def _use_onnx(self, recognizer: os.PathLike[str], threads: int | None) -> None:
        """Compute descriptors with the ONNX form of the ResNet (same embedding space: the
        recognizer's key stays the ``.dat`` file's, the converted graph is listed beside it)."""
        from lfr_eval.faces._dlib_onnx import OnnxResNet, resnet_onnx

        resnet = OnnxResNet(resnet_onnx(recognizer), threads=threads)
        self._onnx = resnet
        model = resnet.model
        self.engine_id = EngineId(
            backend=self.backend,
            models=(
                *self.engine_id.models,
                ModelFile("recognizer_onnx", model.path.name, model.sha256),
            ),
            embedding_dim=EMBEDDING_DIM,
        )
        self.model_paths["recognizer_onnx"] = str(model.path)
        ort_info = resnet.runtime_info
        # dlib still detects, finds landmarks and cuts the chips; onnxruntime runs the ResNet
        self.runtime = RuntimeInfo(
            name="onnxruntime",
            providers=ort_info.providers,
            gpu_requested=False,
            gpu_active=False,
            precision="fp32",
            version=f"{ort_info.version} (dlib {dlib.__version__} detection and landmarks)",
        )

    @property
    def descriptor_threads(self) -> int:
        """Threads computing descriptors: the onnxruntime session's, or 1 with dlib's own call."""
        return 1 if self._onnx is None else self._onnx.threads

    def with_threads(self, threads: int) -> Self:
        """This engine with its own onnxruntime descriptor session of ``threads`` threads.

        The dlib models (detector, shape predictor, their lock) are shared, not reloaded; only
        the ResNet's session is new (same graph, same embeddings). Used by the live pipeline,
        whose recognition worker runs one-threaded so its CPU share is bounded
        (:mod:`lfr_eval.live._duty`), while other pages keep the shared engine's threads. With
        dlib's own embedder (single-threaded already) this engine itself is returned.

        Raises
        ------
        ValueError
            ``threads`` is below 1.
        """
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if self._onnx is None or self._onnx.threads == int(threads):
            return self
        from lfr_eval.faces._dlib_onnx import OnnxResNet

        copy = _copy.copy(self)
        copy._onnx = OnnxResNet(self._onnx.model, threads=int(threads))
        return copy

    def __repr__(self) -> str:
        return (
            f"DlibEngine(detector={self.detector_kind!r}, upsample={self.upsample}, "
            f"chip_size={self.chip_size}, chip_padding={self.chip_padding}, "
            f"embedder={self.embedder!r})"
        )

    def info(self) -> EngineInfo:
        """Engine id, runtime and model file paths (for ``lfr-eval info`` and the app)."""
        return EngineInfo(self.engine_id, self.runtime, dict(self.model_paths))

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

    def detect(self, image: np.ndarray) -> Detections:
        """Find faces.

        Parameters
        ----------
        image : ndarray (H, W, 3) uint8, RGB

        Returns
        -------
        Detections
            Boxes ``(x1, y1, x2, y2)`` in pixels, clipped to the image, largest first; scores
            are the HOG SVM margin (>= 0 with the default threshold, ~0..3) or the MMOD
            confidence (same kind of scale), comparable within one detector only. No landmarks:
            the shape predictor finds them from the box in :meth:`crops`.
        """
        image = self._check_image(image)
        height, width = image.shape[:2]
        if self.detector_kind == "hog":
            with self._native_lock:
                rects, scores, _ = self._hog.run(image, self.upsample, 0.0)
            pairs = [(_rect_to_box(r, width, height), float(s)) for r, s in zip(rects, scores)]
        else:
            with self._native_lock:
                detections = self._cnn(image, self.upsample)
            pairs = [(_rect_to_box(d.rect, width, height), float(d.confidence)) for d in detections]
        pairs = [(b, s) for b, s in pairs if b[2] > b[0] and b[3] > b[1]]
        if not pairs:
            return Detections.empty()
        return _largest_first(np.stack([b for b, _ in pairs]), np.array([s for _, s in pairs]))

    def _shapes(self, image: np.ndarray, boxes: np.ndarray) -> list[dlib.full_object_detection]:
        with self._native_lock:
            return [self._shape_predictor(image, _box_to_rect(box)) for box in boxes]

    def align(
        self, image: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Landmarks and aligned chip for each box, exactly as :meth:`analyze` makes them.

        Parameters
        ----------
        image : ndarray (H, W, 3) uint8, RGB
        boxes : array-like of shape (n, 4)
            ``(x1, y1, x2, y2)`` pixels, e.g. from :meth:`detect`.

        Returns
        -------
        list of (landmarks, chip)
            ``landmarks`` (5, 2) float64 pixels in our convention (mouth corners estimated, see
            :func:`landmarks_from_shape`); ``chip`` (chip_size, chip_size, 3) uint8 RGB.
        """
        image = self._check_image(image)
        shapes = self._shapes(image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        return [
            (
                landmarks_from_shape(shape),
                dlib.get_face_chip(image, shape, size=self.chip_size, padding=self.chip_padding),
            )
            for shape in shapes
        ]

    def crops(
        self,
        image: np.ndarray,
        detections: Detections,
        indices: Sequence[int] | None = None,
    ) -> list[np.ndarray]:
        """dlib's 150x150 descriptor chips (padding 0.25) for chosen detections.

        The 5-point shape predictor runs on each box (any landmarks in ``detections`` are not
        used: dlib's chip geometry comes from its own points).

        Parameters
        ----------
        image : ndarray (H, W, 3) uint8, RGB
            The image the detection coordinates refer to.
        detections : Detections
        indices : sequence of int, optional
            Which detections (default all), in the order wanted.

        Returns
        -------
        list of ndarray (150, 150, 3) uint8, ready for :meth:`embed_crops`.
        """
        image = self._check_image(image)
        chosen = detections if indices is None else detections.select(indices)
        shapes = self._shapes(image, chosen.boxes)
        return [
            dlib.get_face_chip(
                image, shape, size=DESCRIPTOR_CHIP_SIZE, padding=DESCRIPTOR_CHIP_PADDING
            )
            for shape in shapes
        ]

    def analyze(self, image: np.ndarray, *, embed: bool = True) -> list[Face]:
        """Detect, align and (if ``embed``) embed every face; largest first.

        Parameters
        ----------
        image : ndarray (H, W, 3) uint8, RGB (grey and RGBA are accepted and converted)
        embed : bool
            Compute unit-norm 128-d embeddings (the slow part, ~50-100 ms a face on one core).

        Raises
        ------
        ImageError
            Not an RGB uint8 image, or larger than :data:`~lfr_eval.faces._image.MAX_PIXELS`.
        """
        image = self._check_image(image)
        found = self.detect(image)
        if len(found) == 0:
            return []
        boxes, scores = found.boxes, found.scores
        shapes = self._shapes(image, boxes)
        chips = [
            dlib.get_face_chip(image, s, size=self.chip_size, padding=self.chip_padding)
            for s in shapes
        ]
        faces = []
        for box, score, shape, chip in zip(boxes, scores, shapes, chips):
            landmarks = landmarks_from_shape(shape)
            faces.append(
                Face(
                    box=box,
                    landmarks=landmarks,
                    det_score=float(score),
                    crop=chip,
                    quality=face_quality(box, landmarks, chip),
                )
            )
        if embed:
            if self._crop_is_descriptor_chip:
                descriptor_chips = chips
            else:
                descriptor_chips = [
                    dlib.get_face_chip(
                        image, s, size=DESCRIPTOR_CHIP_SIZE, padding=DESCRIPTOR_CHIP_PADDING
                    )
                    for s in shapes
                ]
            for face, vector in zip(faces, self.embed_crops(descriptor_chips)):
                face.embedding = vector
        return faces

    @property
    def _crop_is_descriptor_chip(self) -> bool:
        return (
            self.chip_size == DESCRIPTOR_CHIP_SIZE and self.chip_padding == DESCRIPTOR_CHIP_PADDING
        )

    def raw_descriptors(self, crops: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        """dlib's descriptors before normalisation, ``(n, 128)`` float64 (Euclidean space).

        Only for comparing with dlib's own distances; use :meth:`embed_crops` otherwise.
        """
        crops = list(crops)
        for chip in crops:
            if (
                chip.shape != (DESCRIPTOR_CHIP_SIZE, DESCRIPTOR_CHIP_SIZE, 3)
                or chip.dtype != np.uint8
            ):
                raise ImageError(
                    f"dlib embeds 150x150x3 uint8 chips as made by dlib.get_face_chip "
                    f"(padding 0.25); got {chip.shape} {chip.dtype}"
                )
        if not crops:
            return np.zeros((0, EMBEDDING_DIM))
        if self._onnx is not None:
            # onnxruntime sessions are thread-safe and release the GIL: no engine lock
            return self._onnx(crops, batch_size=batch_size).astype(np.float64)
        out = []
        for start in range(0, len(crops), max(1, int(batch_size))):
            batch = [np.ascontiguousarray(c) for c in crops[start : start + batch_size]]
            with self._native_lock:
                out.append(np.array(self._recognizer.compute_face_descriptor(batch)))
        return np.concatenate(out).reshape(-1, EMBEDDING_DIM)

    def embed_crops(self, crops: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        """Embed aligned 150x150 chips in batches.

        Parameters
        ----------
        crops : sequence of ndarray (150, 150, 3) uint8 RGB
            Chips as :meth:`align` makes them with the default ``chip_size``/``chip_padding``.
        batch_size : int
            Chips per call into dlib's network.

        Returns
        -------
        ndarray of shape (n, 128), float32, rows of unit L2 norm.
        """
        return _unit_rows(self.raw_descriptors(crops, batch_size=batch_size))
