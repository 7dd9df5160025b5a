"""Run ONNX face models in PyTorch (via ``onnx2torch``), fp32 or fp16, CPU or CUDA.

Many GPU machines have a CUDA build of PyTorch but not ``onnxruntime-gpu``; converting the
ONNX graphs to ``torch.nn.Module`` objects lets both networks of an InsightFace pack run there:

- :class:`TorchRecognizer`: an ArcFace recognizer, batched, in half precision on CUDA.
  Embeddings match onnxruntime's to within floating-point rounding in fp32 (cosine similarity
  of the two embeddings of one crop above 0.99999 on CPU); in fp16 expect above 0.999.
- :class:`TorchSession`: any graph (the SCRFD detector) behind the part of
  ``onnxruntime.InferenceSession``'s interface insightface's model classes call, so
  insightface's own SCRFD pre-processing, anchor decoding and NMS run unchanged on the
  network's PyTorch outputs.

Both refuse CUDA when ``torch.cuda.is_available()`` is False: nothing falls back to the CPU.

>>> rec = TorchRecognizer("w600k_r50.onnx", device="cuda", precision="fp16")  # doctest: +SKIP
>>> rec.embed(batch_nchw_float32).shape  # doctest: +SKIP
(256, 512)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from lfr_eval.errors import ModelError, RuntimeUnavailableError
from lfr_eval.faces._torch_fp32 import true_fp32

if TYPE_CHECKING:
    import torch

MSG_TORCH_MISSING = (
    "the torch runtime needs PyTorch and onnx2torch: pip install torch onnx2torch ({detail})"
)
MSG_CUDA_UNAVAILABLE = (
    "device {device!r} was requested but torch.cuda.is_available() is False on this machine "
    "(torch {version}, built for CUDA {cuda}); use --device cpu. We do not fall back to the CPU."
)
MSG_NOT_CONVERTIBLE = (
    "{path}: onnx2torch cannot convert this {role} ({detail}); use runtime='onnxruntime'"
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


def torch_device(device: str) -> torch.device:
    """The ``torch.device`` for ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``, checked.

    Raises
    ------
    RuntimeUnavailableError
        PyTorch/onnx2torch missing, CUDA asked for and ``torch.cuda.is_available()`` is
        False, or a device type other than cpu/cuda.
    """
    try:
        import onnx2torch  # noqa: F401  (checked here: every caller converts a graph next)
        import torch
    except ImportError as exc:
        raise RuntimeUnavailableError(MSG_TORCH_MISSING.format(detail=exc)) from exc
    chosen = torch.device(device)
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeUnavailableError(
                MSG_CUDA_UNAVAILABLE.format(
                    device=device, version=torch.__version__, cuda=torch.version.cuda
                )
            )
        if chosen.index is None:
            chosen = torch.device("cuda", torch.cuda.current_device())
    elif chosen.type != "cpu":
        raise RuntimeUnavailableError(f"unsupported torch device {device!r}; use cpu or cuda")
    return chosen


def _read_for_torch(path: Path, role: str, device: str, precision: str) -> onnx.ModelProto:
    """Check the precision and the device (a missing CUDA is refused before a large file is
    read), then read the graph."""
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
    torch_device(device)
    return load_onnx(path, role)


class TorchGraph:
    """An ONNX graph converted to a ``torch.nn.Module`` by onnx2torch, on one device.

    Parameters
    ----------
    model : onnx.ModelProto
    path : path
        Where the graph was read from (for messages).
    role : str
        ``"detector"`` or ``"recognizer"`` (for messages).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``.
    precision : {"fp32", "fp16"}
        fp16 needs CUDA (CPU half-precision convolutions are slow or missing).
    channels_last : bool, optional
        NHWC memory layout for 4-d inputs; default on CUDA only.

    Raises
    ------
    RuntimeUnavailableError
        See :func:`torch_device`.
    ModelError
        An operator onnx2torch cannot convert.
    ValueError
        Unknown precision, or fp16 on the CPU.

    Attributes
    ----------
    device : str
        Device really used, e.g. ``"cuda:0"``.
    precision : str
    version : str
        PyTorch version.
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        path: str | os.PathLike[str],
        role: str,
        device: str = "cpu",
        precision: Literal["fp32", "fp16"] = "fp32",
        *,
        channels_last: bool | None = None,
    ) -> None:
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
        chosen = torch_device(device)
        if precision == "fp16" and chosen.type != "cuda":
            raise ValueError("fp16 needs a CUDA device; use precision='fp32' on the CPU")
        import onnx2torch
        import torch

        try:
            module = onnx2torch.convert(model)
        except NotImplementedError as exc:
            raise ModelError(MSG_NOT_CONVERTIBLE.format(path=path, role=role, detail=exc)) from exc
        self._torch = torch
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        # NHWC is what tensor-core convolutions want; on the CPU it only adds copies.
        if channels_last is None:
            channels_last = chosen.type == "cuda"
        self.channels_last = bool(channels_last)
        self._memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self._module = module.eval().to(
            device=chosen, dtype=self._dtype, memory_format=self._memory_format
        )
        self.device = str(chosen)
        self._device_type = chosen.type
        self.precision = precision
        self.version = str(torch.__version__)

    @property
    def gpu_active(self) -> bool:
        return self._device_type == "cuda"

    def __call__(self, *inputs: np.ndarray | torch.Tensor) -> tuple[np.ndarray, ...]:
        """Run the network on float inputs (graph input order); float32 numpy outputs in the
        graph's output order."""
        torch = self._torch
        # No cuDNN autotuning here: live batches change size every call, and each new shape
        # would be re-tuned (and torch.backends.cudnn.flags() would reset TF32 and cuDNN itself).
        with torch.inference_mode(), true_fp32(self._device_type, self.precision):
            tensors = []
            for value in inputs:
                x = torch.as_tensor(value).to(self.device, dtype=self._dtype, non_blocking=True)
                if x.dim() == 4:
                    x = x.contiguous(memory_format=self._memory_format)
                tensors.append(x)
            out = self._module(*tensors)
            outputs = out if isinstance(out, (tuple, list)) else (out,)
            return tuple(o.float().cpu().numpy() for o in outputs)


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
        self.onnx_path = Path(onnx_path)
        model = _read_for_torch(self.onnx_path, "recognizer", device, precision)
        self.signature = RecognizerSignature(model, self.onnx_path)
        self._graph = TorchGraph(
            model,
            self.onnx_path,
            "recognizer",
            device=device,
            precision=precision,
            channels_last=channels_last,
        )
        self.channels_last = self._graph.channels_last
        self.device = self._graph.device
        self.precision = precision
        self.version = self._graph.version

    @property
    def gpu_active(self) -> bool:
        return self._graph.gpu_active

    def embed(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
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
        return self._graph(batch)[0]

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


@dataclass(frozen=True)
class GraphValue:
    """One input or output of a graph, as ``onnxruntime.NodeArg`` describes it.

    Attributes
    ----------
    name : str
    shape : list of int, str or None
        Fixed sizes as int, named dynamic axes as their name, unnamed ones as None.
    type : str
        ONNX tensor type, e.g. ``"tensor(float)"``.
    """

    name: str
    shape: list[int | str | None]
    type: str = "tensor(float)"


def _graph_values(values: Sequence[onnx.ValueInfoProto]) -> list[GraphValue]:
    out = []
    for value in values:
        tensor = value.type.tensor_type
        shape: list[int | str | None] = [
            int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor.shape.dim
        ]
        kind = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        out.append(
            GraphValue(value.name, shape, f"tensor({'float' if kind == 'float32' else kind})")
        )
    return out


class TorchSession:
    """An ONNX graph run in PyTorch behind onnxruntime's ``InferenceSession`` interface.

    Only what insightface's model classes call is offered: :meth:`get_inputs`,
    :meth:`get_outputs`, :meth:`run`, :meth:`get_providers` (the torch device, e.g.
    ``["cuda:0"]``) and :meth:`set_providers` (refused: the device is fixed at construction).
    Pass it as ``session=`` to an insightface detector class and its forward pass runs here.

    Parameters
    ----------
    onnx_path : path
    role : str
        For messages, e.g. ``"detector"``.
    device, precision, channels_last : as in :class:`TorchGraph`.

    Raises
    ------
    ModelError
        Not an ONNX file, or not convertible.
    RuntimeUnavailableError
        See :func:`torch_device`.

    Attributes
    ----------
    calls : int
        Forward passes run so far (the engine checks its detector really ran here).
    device, precision, version : str
    """

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        role: str = "detector",
        device: str = "cpu",
        precision: Literal["fp32", "fp16"] = "fp32",
        *,
        channels_last: bool | None = None,
    ) -> None:
        self.onnx_path = Path(onnx_path)
        model = _read_for_torch(self.onnx_path, role, device, precision)
        initializers = {init.name for init in model.graph.initializer}
        self._inputs = _graph_values([v for v in model.graph.input if v.name not in initializers])
        self._outputs = _graph_values(list(model.graph.output))
        self._graph = TorchGraph(
            model,
            self.onnx_path,
            role,
            device=device,
            precision=precision,
            channels_last=channels_last,
        )
        self.device = self._graph.device
        self.precision = precision
        self.version = self._graph.version
        self.calls = 0

    @property
    def gpu_active(self) -> bool:
        return self._graph.gpu_active

    def get_inputs(self) -> list[GraphValue]:
        return list(self._inputs)

    def get_outputs(self) -> list[GraphValue]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [self.device]

    def set_providers(self, providers: Sequence[str] | None = None, *args: Any) -> None:
        raise RuntimeUnavailableError(
            f"this detector runs in PyTorch on {self.device}; it cannot be moved to "
            f"{providers} (build the engine with the device wanted)"
        )

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, np.ndarray],
        run_options: Any = None,
    ) -> list[np.ndarray]:
        """Outputs named in ``output_names`` (all, in graph order, when None), float32."""
        missing = [v.name for v in self._inputs if v.name not in input_feed]
        if missing:
            raise ValueError(f"{self.onnx_path.name}: inputs {missing} were not given")
        outputs = self._graph(*(input_feed[v.name] for v in self._inputs))
        self.calls += 1
        by_name = dict(zip((v.name for v in self._outputs), outputs))
        names = [v.name for v in self._outputs] if output_names is None else output_names
        return [by_name[name] for name in names]
