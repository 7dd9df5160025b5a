"""Run an ONNX face recognizer in PyTorch (via ``onnx2torch``), fp32 or fp16, CPU or CUDA.

Many GPU machines have a CUDA build of PyTorch but not ``onnxruntime-gpu``; converting the
ArcFace ONNX graph to a ``torch.nn.Module`` lets the recognizer run there, batched, in half
precision. Embeddings match onnxruntime's to within floating-point rounding in fp32 (cosine
similarity of the two embeddings of one crop above 0.99999 on CPU); in fp16 expect a cosine
similarity above 0.999.

>>> rec = TorchRecognizer("w600k_r50.onnx", device="cuda", precision="fp16")  # doctest: +SKIP
>>> rec.embed(batch_nchw_float32).shape  # doctest: +SKIP
(256, 512)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from lfr_eval.errors import ModelError, RuntimeUnavailableError
from lfr_eval.faces._torch_fp32 import true_fp32

MSG_TORCH_MISSING = (
    "the torch runtime needs PyTorch and onnx2torch: pip install torch onnx2torch ({detail})"
)
MSG_CUDA_UNAVAILABLE = (
    "device {device!r} was requested but torch.cuda.is_available() is False on this machine "
    "(torch {version}, built for CUDA {cuda}); use --device cpu. We do not fall back to the CPU."
)
MSG_NOT_RECOGNIZER = (
    "{path} is not a face recognizer ONNX model: {detail}. Expected one input Nx3xSxS "
    "(S = 112, the ArcFace crop) and one output NxD (the embedding), e.g. w600k_r50.onnx."
)


class RecognizerSignature:
    """What an ArcFace-style ONNX graph expects, read from the graph itself.

    Attributes
    ----------
    input_name : str
    input_size : int
        Side of the square crop, pixels (112 for ArcFace).
    fixed_batch : int or None
        Batch size the graph is fixed to, or None when the batch axis is dynamic.
    embedding_dim : int
    input_mean, input_std : float
        Pixel normalisation ``(x - mean) / std``; (0, 1) for MXNet exports that normalise
        inside the graph, else (127.5, 127.5), decided as insightface's ``ArcFaceONNX`` does.
    """

    def __init__(self, model: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
        graph = model.graph
        initializers = {init.name for init in graph.initializer}
        inputs = [v for v in graph.input if v.name not in initializers]

        def dims(value: onnx.ValueInfoProto) -> list[int | str]:
            return [
                d.dim_value if d.dim_value > 0 else (d.dim_param or "?")
                for d in value.type.tensor_type.shape.dim
            ]

        if len(inputs) != 1 or len(graph.output) != 1:
            raise ModelError(
                MSG_NOT_RECOGNIZER.format(
                    path=path,
                    detail=f"it has {len(inputs)} inputs and {len(graph.output)} outputs",
                )
            )
        in_dims, out_dims = dims(inputs[0]), dims(graph.output[0])
        square = (
            len(in_dims) == 4
            and in_dims[1] == 3
            and isinstance(in_dims[2], int)
            and in_dims[2] == in_dims[3]
            and in_dims[2] >= 112
            and in_dims[2] % 16 == 0
        )
        if not square or len(out_dims) != 2 or not isinstance(out_dims[1], int):
            raise ModelError(
                MSG_NOT_RECOGNIZER.format(path=path, detail=f"input {in_dims}, output {out_dims}")
            )
        self.input_name = inputs[0].name
        self.input_size = int(in_dims[2])
        self.fixed_batch = in_dims[0] if isinstance(in_dims[0], int) else None
        self.embedding_dim = int(out_dims[1])
        # same rule as insightface.model_zoo.ArcFaceONNX, so both runtimes normalise alike
        names = [node.name for node in graph.node[:8]]
        has_sub = any(n.startswith(("Sub", "_minus")) for n in names)
        has_mul = any(n.startswith(("Mul", "_mul")) for n in names)
        self.input_mean, self.input_std = (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


def load_onnx(path: str | os.PathLike[str], role: str) -> onnx.ModelProto:
    """Read an ONNX file, turning every way it can be unreadable into a :class:`ModelError`."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{role} model file not found: {path}")
    try:
        return onnx.load(str(path))
    except (DecodeError, OSError, ValueError) as exc:
        raise ModelError(f"{path} is not an ONNX model ({role}): {exc}") from exc


def crops_to_blob(crops: list[np.ndarray] | np.ndarray, mean: float, std: float) -> np.ndarray:
    """RGB uint8 crops ``(n, S, S, 3)`` to the float32 NCHW blob ArcFace models take."""
    batch = np.asarray(crops, dtype=np.float32)
    return np.ascontiguousarray(((batch - mean) / std).transpose(0, 3, 1, 2))


class TorchRecognizer:
    """An ONNX face recognizer converted to PyTorch.

    Parameters
    ----------
    onnx_path : path
        ArcFace-style model: input ``Nx3x112x112`` float, output ``NxD``.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``.
    precision : {"fp32", "fp16"}
        fp16 needs CUDA (CPU half-precision convolutions are slow or missing).

    Raises
    ------
    RuntimeUnavailableError
        PyTorch/onnx2torch missing, or CUDA asked for and ``torch.cuda.is_available()`` is False.
    ModelError
        Not an ONNX file, not a recognizer signature, or an operator onnx2torch cannot convert.

    Attributes
    ----------
    signature : RecognizerSignature
    device : str
        Device really used, e.g. ``"cuda:0"``.
    precision : str
    """

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        device: str = "cpu",
        precision: Literal["fp32", "fp16"] = "fp32",
        *,
        channels_last: bool | None = None,
    ) -> None:
        try:
            import onnx2torch
            import torch
        except ImportError as exc:
            raise RuntimeUnavailableError(MSG_TORCH_MISSING.format(detail=exc)) from exc
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
        torch_device = torch.device(device)
        if torch_device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeUnavailableError(
                    MSG_CUDA_UNAVAILABLE.format(
                        device=device, version=torch.__version__, cuda=torch.version.cuda
                    )
                )
            if torch_device.index is None:
                torch_device = torch.device("cuda", torch.cuda.current_device())
        elif torch_device.type != "cpu":
            raise RuntimeUnavailableError(f"unsupported torch device {device!r}; use cpu or cuda")
        if precision == "fp16" and torch_device.type != "cuda":
            raise ValueError("fp16 needs a CUDA device; use precision='fp32' on the CPU")
        self.onnx_path = Path(onnx_path)
        model = load_onnx(self.onnx_path, "recognizer")
        self.signature = RecognizerSignature(model, self.onnx_path)
        try:
            module = onnx2torch.convert(model)
        except NotImplementedError as exc:
            raise ModelError(
                f"{self.onnx_path}: onnx2torch cannot convert this recognizer ({exc}); "
                "use runtime='onnxruntime'"
            ) from exc
        self._torch = torch
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        # NHWC is what tensor-core convolutions want; on the CPU it only adds copies.
        if channels_last is None:
            channels_last = torch_device.type == "cuda"
        self.channels_last = bool(channels_last)
        self._memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self._module = module.eval().to(
            device=torch_device, dtype=self._dtype, memory_format=self._memory_format
        )
        self.device = str(torch_device)
        self._device_type = torch_device.type
        self.precision = precision
        self.version = str(torch.__version__)

    @property
    def gpu_active(self) -> bool:
        return self.device.startswith("cuda")

    def embed(self, batch) -> np.ndarray:
        """Run the network on a preprocessed batch.

        Parameters
        ----------
        batch : ndarray or torch.Tensor of shape (n, 3, S, S), float
            Normalised crops (see :func:`crops_to_blob`), RGB.

        Returns
        -------
        ndarray of shape (n, D), float32: raw (not normalised) embeddings, as the ONNX model
        outputs them.
        """
        torch = self._torch
        # No cuDNN autotuning here: live batches change size every call, and each new shape
        # would be re-tuned (and torch.backends.cudnn.flags() would reset TF32 and cuDNN itself).
        with torch.inference_mode(), true_fp32(self._device_type, self.precision):
            x = torch.as_tensor(batch).to(self.device, dtype=self._dtype, non_blocking=True)
            x = x.contiguous(memory_format=self._memory_format)
            out = self._module(x)
            return out.float().cpu().numpy()

    def embed_crops(
        self, crops: list[np.ndarray] | np.ndarray, batch_size: int = 256
    ) -> np.ndarray:
        """Embed RGB uint8 crops ``(n, S, S, 3)`` in batches; raw embeddings ``(n, D)``."""
        sig = self.signature
        if len(crops) == 0:
            return np.zeros((0, sig.embedding_dim), np.float32)
        parts = [
            self.embed(crops_to_blob(crops[i : i + batch_size], sig.input_mean, sig.input_std))
            for i in range(0, len(crops), batch_size)
        ]
        return np.concatenate(parts)
