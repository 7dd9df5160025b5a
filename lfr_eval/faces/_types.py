"""Typed objects shared by every face engine backend.

Conventions (all backends):

- images are ``numpy.uint8`` arrays of shape ``(height, width, 3)`` in **RGB** order;
- boxes are ``(x1, y1, x2, y2)`` in pixels of the input image, floats;
- landmarks are five ``(x, y)`` points in pixels: left eye, right eye, nose tip, left mouth
  corner, right mouth corner (the subject's left/right as seen in the image: InsightFace order);
- embeddings are ``float32`` vectors with unit L2 norm, so cosine similarity is a dot product,
  in ``[-1, 1]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelFile:
    """One model file an engine uses, identified by content hash.

    Attributes
    ----------
    role : str
        What the file does: ``"detector"``, ``"landmarks"``, ``"recognizer"``.
    name : str
        File name (no directory: the directory differs between machines, the hash does not).
    sha256 : str
        Hex sha256 of the file's bytes.
    """

    role: str
    name: str
    sha256: str

    @classmethod
    def from_path(cls, role: str, path: str | Path) -> ModelFile:
        path = Path(path)
        return cls(role=role, name=path.name, sha256=sha256_file(path))

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "name": self.name, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> ModelFile:
        return cls(role=data["role"], name=data["name"], sha256=data["sha256"])


@dataclass(frozen=True)
class EngineId:
    """Identity of the engine that produced an embedding.

    Two embeddings are comparable only if their engines have the same :attr:`recognizer_key`:
    the same backend family and the same recognizer weights (the detector may differ: it moves
    the crop a little but does not change the embedding space).

    Attributes
    ----------
    backend : str
        ``"dlib"``, ``"insightface"``, ``"dlib-torch"`` …
    models : tuple of ModelFile
        Every model file the engine loaded, with hashes.
    embedding_dim : int
        Length of the embedding vectors (128 for dlib, 512 for ArcFace).
    """

    backend: str
    models: tuple[ModelFile, ...]
    embedding_dim: int

    @property
    def recognizer(self) -> ModelFile:
        for model in self.models:
            if model.role == "recognizer":
                return model
        raise ValueError(f"engine {self.backend} has no recognizer model")

    @property
    def recognizer_key(self) -> str:
        """Key of the embedding space: ``"<recognizer file name>@<sha256[:16]>"``.

        Backends that run the same recognizer weights (dlib's ResNet in dlib, or converted to
        ONNX/PyTorch) share the key of the *source* weights, so their templates mix.
        """
        rec = self.recognizer
        return f"{rec.name}@{rec.sha256[:16]}"

    @property
    def key(self) -> str:
        """Short human-readable id: ``"dlib:dlib_face_recognition_resnet_model_v1.dat@1a2b…"``."""
        return f"{self.backend}:{self.recognizer_key}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "embedding_dim": self.embedding_dim,
            "models": [m.to_dict() for m in self.models],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineId:
        return cls(
            backend=data["backend"],
            embedding_dim=int(data["embedding_dim"]),
            models=tuple(ModelFile.from_dict(m) for m in data["models"]),
        )


@dataclass(frozen=True)
class RuntimeInfo:
    """What actually runs the networks, as reported by the runtime itself (not as requested).

    Attributes
    ----------
    name : str
        ``"dlib"``, ``"onnxruntime"``, ``"torch"``.
    providers : tuple of str
        Execution providers / devices actually in use, e.g. ``("CPUExecutionProvider",)``
        or ``("cuda:0",)``.
    gpu_requested : bool
        Whether the user asked for a GPU.
    gpu_active : bool
        Whether a GPU is really in use. ``gpu_requested and not gpu_active`` never happens:
        engines raise :class:`~lfr_eval.errors.RuntimeUnavailableError` instead.
    precision : str
        ``"fp32"`` or ``"fp16"``.
    version : str
        Version of the runtime library.
    """

    name: str
    providers: tuple[str, ...]
    gpu_requested: bool
    gpu_active: bool
    precision: str = "fp32"
    version: str = ""

    def describe(self) -> str:
        where = "GPU" if self.gpu_active else "CPU"
        return (
            f"{self.name} {self.version} on {where} ({', '.join(self.providers)}, {self.precision})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "providers": list(self.providers),
            "gpu_requested": self.gpu_requested,
            "gpu_active": self.gpu_active,
            "precision": self.precision,
            "version": self.version,
        }


@dataclass(frozen=True)
class FaceQuality:
    """Simple, model-free quality measures of one detected face.

    Attributes
    ----------
    size_px : float
        Inter-ocular distance in pixels of the input image (a standard face-size measure).
    box_size_px : float
        Geometric mean of box width and height, pixels.
    blur : float
        Variance of the Laplacian of the aligned grey crop; higher is sharper (below ~50 is blurry).
    yaw_deg, pitch_deg, roll_deg : float
        Rough head pose in degrees estimated from the five landmarks (0 = frontal).
    """

    size_px: float
    box_size_px: float
    blur: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float

    def to_dict(self) -> dict[str, float]:
        return {
            "size_px": self.size_px,
            "box_size_px": self.box_size_px,
            "blur": self.blur,
            "yaw_deg": self.yaw_deg,
            "pitch_deg": self.pitch_deg,
            "roll_deg": self.roll_deg,
        }


@dataclass
class Face:
    """One face found in an image.

    Attributes
    ----------
    box : ndarray of shape (4,)
        ``(x1, y1, x2, y2)`` in input-image pixels.
    landmarks : ndarray of shape (5, 2)
        Five landmarks in input-image pixels (see module docstring for the order).
    det_score : float
        Detector confidence. Scale depends on the detector (SCRFD: probability in [0, 1];
        dlib HOG/MMOD: SVM margin, typically -0.5..3); comparable within one engine only.
    crop : ndarray of shape (S, S, 3)
        The aligned face chip fed to the recognizer, RGB uint8.
    embedding : ndarray of shape (D,) or None
        Unit-norm float32 embedding; ``None`` when only detection was asked for.
    quality : FaceQuality
    """

    box: np.ndarray
    landmarks: np.ndarray
    det_score: float
    crop: np.ndarray
    quality: FaceQuality
    embedding: np.ndarray | None = None

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


@dataclass(frozen=True)
class Detections:
    """Faces found in one image by an engine's detector, before alignment.

    Attributes
    ----------
    boxes : ndarray of shape (n, 4), float64
        ``(x1, y1, x2, y2)`` in input-image pixels, clipped to the image, largest first.
    scores : ndarray of shape (n,), float64
        Detector confidence; its scale depends on the detector (comparable within one engine).
    landmarks : ndarray of shape (n, 5, 2), float64, or None
        Five landmarks per face in input-image pixels when the detector gives them (SCRFD);
        ``None`` when the engine finds them at alignment time (dlib's shape predictor works
        from the box).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        if self.landmarks is not None:
            landmarks = np.asarray(self.landmarks, dtype=np.float64).reshape(-1, 5, 2)
            if len(landmarks) != len(boxes):
                raise ValueError(f"{len(boxes)} boxes but {len(landmarks)} landmark sets")
            object.__setattr__(self, "landmarks", landmarks)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, *, with_landmarks: bool = False) -> Detections:
        """No face."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)) if with_landmarks else None)

    @classmethod
    def from_faces(cls, faces: Sequence[Face]) -> Detections:
        """The detections behind :meth:`FaceEngine.analyze`'s faces (boxes, scores, landmarks)."""
        if not faces:
            return cls.empty(with_landmarks=True)
        return cls(
            np.stack([f.box for f in faces]),
            np.array([f.det_score for f in faces]),
            np.stack([f.landmarks for f in faces]),
        )

    def scaled(self, factor: float) -> Detections:
        """Coordinates multiplied by ``factor`` (e.g. back to the full frame after detecting on
        a downscaled copy: ``factor = full width / small width``)."""
        return Detections(
            self.boxes * factor,
            self.scores,
            None if self.landmarks is None else self.landmarks * factor,
        )

    def select(self, indices: Sequence[int] | np.ndarray) -> Detections:
        """The detections at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.intp).reshape(-1)
        return Detections(
            self.boxes[idx],
            self.scores[idx],
            None if self.landmarks is None else self.landmarks[idx],
        )


@runtime_checkable
class FaceEngine(Protocol):
    """What every backend provides. Use :func:`lfr_eval.faces.load_engine` to get one.

    The contract every caller (live pipeline, identification, enrolment, evaluation) relies on:

    - :meth:`detect` finds faces and returns :class:`Detections`;
    - :meth:`crops` turns chosen detections into the aligned chips the recognizer takes;
    - :meth:`embed_crops` embeds chips in batches;
    - :meth:`analyze` does all three for every face of an image (``Face`` objects with quality).

    ``engine.embed_crops(engine.crops(image, engine.detect(image)))`` gives the same embeddings
    as ``analyze(image)``, in the same order.
    """

    engine_id: EngineId
    runtime: RuntimeInfo

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in an RGB uint8 image, largest first (see :class:`Detections`)."""
        ...

    def crops(
        self,
        image: np.ndarray,
        detections: Detections,
        indices: Sequence[int] | None = None,
    ) -> list[np.ndarray]:
        """Aligned chips, ready for :meth:`embed_crops`, of the detections at ``indices``
        (default all), taken from ``image`` (the image the detections' coordinates refer to)."""
        ...

    def analyze(self, image: np.ndarray, *, embed: bool = True) -> list[Face]:
        """Detect, align and (if ``embed``) embed every face in an RGB uint8 image.

        Faces are returned largest first.
        """
        ...

    def embed_crops(self, crops: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        """Embed aligned chips (as produced in :attr:`Face.crop`) in batches.

        Returns ``float32`` array of shape ``(len(crops), embedding_dim)``, rows unit-norm.
        """
        ...


@dataclass(frozen=True)
class EngineInfo:
    """Everything ``lfr-eval info`` and the Home page show about an engine."""

    engine_id: EngineId
    runtime: RuntimeInfo
    model_paths: dict[str, str] = field(default_factory=dict)
