"""Export the converted networks to ONNX and open them with onnxruntime.

Both graphs have a dynamic batch dimension. The descriptor network takes ``uint8`` chips
``(batch, 150, 150, 3)`` RGB (the cast and normalisation are inside the graph) and returns
``(batch, 128)`` float32 descriptors. The detector network takes the normalised pyramid canvas
``(batch, 3, height, width)`` float32 (any size: the pyramid itself is built outside, see
:mod:`~lfr_eval.faces.dlib_convert._mmod`) and returns the score map ``(batch, 1, h, w)``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from lfr_eval.errors import RuntimeUnavailableError

#: ONNX opset of the exported graphs (supported by onnxruntime >= 1.14)
OPSET = 17

RESNET_INPUT, RESNET_OUTPUT = "chips", "descriptors"
MMOD_INPUT, MMOD_OUTPUT = "canvas", "scores"

MSG_ORT_NO_CUDA = (
    "onnxruntime has no CUDA execution provider here (available: {available}). Install "
    "onnxruntime-gpu with a matching CUDA, or use runtime='torch', or device='cpu'."
)
MSG_ORT_CUDA_INACTIVE = (
    "onnxruntime did not activate CUDA for {path} (session providers: {active}); it would "
    "silently run on the CPU. Check the CUDA/cuDNN libraries onnxruntime-gpu needs."
)


def _export(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    names: tuple[str, str],
    dynamic: dict[str, dict[int, str]],
) -> None:
    module = module.eval()
    with warnings.catch_warnings():
        # the graph is static apart from the batch (and canvas size): shape tests made while
        # tracing, e.g. in dlib's zero-padded add, are constants of the architecture
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        with torch.no_grad():
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[names[0]],
                output_names=[names[1]],
                dynamic_axes=dynamic,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )


def export_resnet_onnx(module: torch.nn.Module, path: str | os.PathLike[str]) -> None:
    """Write the descriptor network (fp32) to ``path``."""
    example = torch.zeros((2, 150, 150, 3), dtype=torch.uint8)
    _export(
        module,
        example,
        Path(path),
        (RESNET_INPUT, RESNET_OUTPUT),
        {RESNET_INPUT: {0: "batch"}, RESNET_OUTPUT: {0: "batch"}},
    )


def export_mmod_onnx(module: torch.nn.Module, path: str | os.PathLike[str]) -> None:
    """Write the detector's score network (fp32) to ``path``."""
    example = torch.zeros((1, 3, 96, 128), dtype=torch.float32)
    _export(
        module,
        example,
        Path(path),
        (MMOD_INPUT, MMOD_OUTPUT),
        {
            MMOD_INPUT: {0: "batch", 2: "height", 3: "width"},
            MMOD_OUTPUT: {0: "batch", 2: "out_height", 3: "out_width"},
        },
    )


def ort_session(path: str | os.PathLike[str], device: str, *, threads: int = 0) -> Any:
    """An onnxruntime session on ``device`` ("cpu" or "cuda"), checked to really use it.

    Raises
    ------
    RuntimeUnavailableError
        CUDA was asked for and onnxruntime cannot use it (never a silent CPU fallback).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if device == "cuda":
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise RuntimeUnavailableError(MSG_ORT_NO_CUDA.format(available=", ".join(available)))
        # TF32 would round fp32 convolutions to a 10-bit mantissa on Ampere and newer GPUs
        providers = [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    active = session.get_providers()
    if device == "cuda" and (not active or active[0] != "CUDAExecutionProvider"):
        raise RuntimeUnavailableError(
            MSG_ORT_CUDA_INACTIVE.format(path=path, active=", ".join(active))
        )
    return session
