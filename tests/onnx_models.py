"""Build small ONNX face models with the real signatures, for tests and benchmarks.

Nothing here is downloaded: the graphs are written with ``onnx.helper`` and deterministic weights.

- :func:`build_scrfd_like` writes a detector with SCRFD's interface (input ``1x3xHxW``, nine
  outputs: scores, box distances and keypoint offsets for strides 8, 16 and 32, two anchors per
  location) that insightface's :class:`~insightface.model_zoo.scrfd.SCRFD` class parses. It
  "detects" a face wherever a 32x32 cell of the (letterboxed) detector input, aligned to the
  stride-32 grid, is white: that anchor scores ~0.87, every other ~0, and the decoded box and
  five keypoints sit at fixed offsets from the anchor (:data:`SCRFD_BOX_OFFSETS`,
  :data:`SCRFD_KPS_OFFSETS`). So a test controls where the face is by where it paints the cell.
- :func:`build_arcface_like` writes a recognizer with ArcFace's interface (input ``Nx3x112x112``,
  output ``Nx512``) and the same layer types as insightface's IResNet (BN-Conv-BN-PReLU-Conv-BN
  blocks, BN-Flatten-FC-BN head) with seeded random weights. ``layers=(3, 4, 14, 3)``,
  ``widths=(64, 128, 256, 512)`` gives an ArcFace-R50-sized model (~43.6 M parameters).
- :func:`build_fpn_detector_like` writes a random-weight detector with SCRFD's interface and
  its layer types (strided convolutions, a feature pyramid with ``Resize``, convolution heads),
  to check runtimes against onnxruntime on the operators real SCRFD graphs use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17

#: Box edges around the firing stride-32 anchor, pixels of the detector input: (left, top,
#: right, bottom) distances. The anchor "centre" SCRFD uses is the cell's top-left corner.
SCRFD_BOX_OFFSETS = np.array([80.0, 80.0, 80.0, 112.0], dtype=np.float32)
#: Five keypoints (left eye, right eye, nose, left and right mouth corner) relative to the anchor,
#: pixels, in a frontal-face layout that fits the box above.
SCRFD_KPS_OFFSETS = np.array(
    [[-30.0, -20.0], [30.0, -20.0], [0.0, 12.0], [-24.0, 44.0], [24.0, 44.0]], dtype=np.float32
)
#: Score of a firing anchor (sigmoid(20 * (0.996 - 0.9))) and of every other anchor.
SCRFD_FIRING_SCORE = float(1 / (1 + np.exp(-20 * (127.5 / 128 - 0.9))))


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name=name)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    """Check the graph as an ONNX model (opset :data:`OPSET`, IR 8) and write it to ``path``."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def build_scrfd_like(path: str | Path) -> Path:
    """Write the SCRFD-like detector described in the module docstring; returns ``path``."""
    path = Path(path)
    nodes, inits = [], []
    # grey level of each cell: the detector input is (pixel - 127.5) / 128, so white ~ +0.996
    nodes.append(helper.make_node("ReduceMean", ["input.1"], ["grey"], axes=[1], keepdims=1))
    outputs: dict[str, list[str]] = {"score": [], "bbox": [], "kps": []}
    for stride in (8, 16, 32):
        pooled = f"pool{stride}"
        nodes.append(
            helper.make_node(
                "AveragePool",
                ["grey"],
                [pooled],
                kernel_shape=[stride, stride],
                strides=[stride, stride],
            )
        )
        if stride == 32:
            gain, bias = 20.0, -18.0  # logit 20 * (mean - 0.9)
        else:
            gain, bias = 0.0, -10.0  # never fires
        inits += [
            _const(f"gain{stride}", np.float32(gain)),
            _const(f"bias{stride}", np.float32(bias)),
        ]
        nodes += [
            helper.make_node("Mul", [pooled, f"gain{stride}"], [f"scaled{stride}"]),
            helper.make_node("Add", [f"scaled{stride}", f"bias{stride}"], [f"logit{stride}"]),
            helper.make_node("Sigmoid", [f"logit{stride}"], [f"prob{stride}"]),
            # two anchors per location, identical
            helper.make_node(
                "Concat", [f"prob{stride}", f"prob{stride}"], [f"prob2_{stride}"], axis=1
            ),
            # a zero map of the feature size, to broadcast constant regressions over it
            helper.make_node("Mul", [pooled, "zero"], [f"zeros{stride}"]),
        ]
        if stride == 32:
            box = np.tile(SCRFD_BOX_OFFSETS / stride, 2)
            kps = np.tile(SCRFD_KPS_OFFSETS.reshape(-1) / stride, 2)
        else:
            box, kps = np.zeros(8), np.zeros(20)
        inits += [
            _const(f"box{stride}", box.astype(np.float32).reshape(1, 8, 1, 1)),
            _const(f"kps{stride}", kps.astype(np.float32).reshape(1, 20, 1, 1)),
        ]
        nodes += [
            helper.make_node("Add", [f"zeros{stride}", f"box{stride}"], [f"boxmap{stride}"]),
            helper.make_node("Add", [f"zeros{stride}", f"kps{stride}"], [f"kpsmap{stride}"]),
        ]
        for kind, source, width in (
            ("score", f"prob2_{stride}", 1),
            ("bbox", f"boxmap{stride}", 4),
            ("kps", f"kpsmap{stride}", 10),
        ):
            name = f"{kind}_{stride}"
            nodes += [
                helper.make_node("Transpose", [source], [f"{name}_t"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [f"{name}_t", f"shape{width}"], [name]),
            ]
            outputs[kind].append(name)
    inits.append(_const("zero", np.float32(0.0)))
    for width in (1, 4, 10):
        inits.append(_const(f"shape{width}", np.array([-1, width], dtype=np.int64)))
    graph_outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"n_{name}", width])
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10))
        for name in outputs[kind]
    ]
    graph = helper.make_graph(
        nodes,
        "scrfd_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])],
        graph_outputs,
        initializer=inits,
    )
    return _save(graph, path)


class _GraphBuilder:
    """Accumulates nodes and seeded weights for :func:`build_arcface_like`."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, kind: str) -> str:
        # node names never start with "Sub"/"Mul": insightface's ArcFaceONNX would then assume
        # an MXNet graph with built-in normalisation and skip its (x - 127.5) / 127.5
        self.count += 1
        return f"{kind.lower()}_{self.count}"

    def weight(self, name: str, value: np.ndarray) -> str:
        self.inits.append(_const(name, value.astype(np.float32)))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int) -> str:
        n = self.name("conv")
        fan_in = cin * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin, k, k))
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self.weight(f"{n}.w", w)],
                [n],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
                name=n,
            )
        )
        return n

    def bn(self, x: str, c: int) -> str:
        n = self.name("bn")
        params = [
            self.rng.uniform(0.8, 1.2, c),  # scale
            self.rng.normal(0, 0.05, c),  # bias
            self.rng.normal(0, 0.05, c),  # running mean
            self.rng.uniform(0.8, 1.2, c),  # running var
        ]
        names = [self.weight(f"{n}.{p}", v) for p, v in zip(("g", "b", "m", "v"), params)]
        self.nodes.append(
            helper.make_node("BatchNormalization", [x, *names], [n], epsilon=1e-5, name=n)
        )
        return n

    def prelu(self, x: str, c: int) -> str:
        n = self.name("prelu")
        slope = self.weight(f"{n}.slope", np.full((c, 1, 1), 0.25))
        self.nodes.append(helper.make_node("PRelu", [x, slope], [n], name=n))
        return n

    def add(self, a: str, b: str) -> str:
        n = self.name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [n], name=n))
        return n

    def block(self, x: str, cin: int, cout: int, stride: int) -> str:
        """insightface's IBasicBlock: BN-Conv3-BN-PReLU-Conv3(stride)-BN, plus shortcut."""
        y = self.bn(x, cin)
        y = self.conv(y, cin, cout, 3, 1)
        y = self.bn(y, cout)
        y = self.prelu(y, cout)
        y = self.conv(y, cout, cout, 3, stride)
        y = self.bn(y, cout)
        shortcut = x
        if stride != 1 or cin != cout:
            shortcut = self.bn(self.conv(x, cin, cout, 1, stride), cout)
        return self.add(y, shortcut)


def build_arcface_like(
    path: str | Path,
    *,
    layers: tuple[int, ...] = (1, 1, 1, 1),
    widths: tuple[int, ...] = (8, 16, 16, 32),
    embedding_dim: int = 512,
    stem_width: int | None = None,
    seed: int = 0,
) -> Path:
    """Write an IResNet-style recognizer ``Nx3x112x112 -> Nx<embedding_dim>``; returns ``path``.

    Parameters
    ----------
    layers, widths : tuple of int
        Blocks and channels per stage (four stages of stride 2: 112 -> 7). ArcFace-R50 is
        ``layers=(3, 4, 14, 3)``, ``widths=(64, 128, 256, 512)``.
    embedding_dim : int
        Output size (512 for ArcFace).
    seed : int
        Seed of the random weights: same seed, same file bytes.
    """
    path = Path(path)
    g = _GraphBuilder(seed)
    stem = stem_width or widths[0]
    x = g.prelu(g.bn(g.conv("input.1", 3, stem, 3, 1), stem), stem)
    cin = stem
    for n_blocks, width in zip(layers, widths):
        for i in range(n_blocks):
            x = g.block(x, cin, width, 2 if i == 0 else 1)
            cin = width
    x = g.bn(x, cin)
    flat = g.name("flatten")
    g.nodes.append(helper.make_node("Flatten", [x], [flat], axis=1, name=flat))
    fc = g.name("gemm")
    fan_in = cin * 7 * 7
    w = g.weight(f"{fc}.w", g.rng.normal(0, np.sqrt(1.0 / fan_in), (embedding_dim, fan_in)))
    b = g.weight(f"{fc}.b", np.zeros(embedding_dim))
    g.nodes.append(helper.make_node("Gemm", [flat, w, b], [fc], transB=1, name=fc))
    out = g.bn(fc, embedding_dim)
    g.nodes.append(helper.make_node("Identity", [out], ["embedding"], name="output"))
    graph = helper.make_graph(
        g.nodes,
        "arcface_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", embedding_dim])],
        initializer=g.inits,
    )
    return _save(graph, path)


def build_arcface_r50(path: str | Path, *, seed: int = 0) -> Path:
    """ArcFace-R50-sized (IResNet-50, ~43.6 M parameters, ~175 MB) random-weight recognizer."""
    return build_arcface_like(
        path, layers=(3, 4, 14, 3), widths=(64, 128, 256, 512), embedding_dim=512, seed=seed
    )


def paint_face_cell(image: np.ndarray, col: int, row: int, scale: float = 1.0) -> np.ndarray:
    """Paint the white cell that makes :func:`build_scrfd_like` fire at stride-32 cell (col, row).

    ``scale`` is the size of the image relative to the detector input (2.0 for a 1280-wide image
    and a 640 detector size). Returns the anchor point in image pixels.
    """
    size = round(32 * scale)
    x0, y0 = round(col * 32 * scale), round(row * 32 * scale)
    image[y0 : y0 + size, x0 : x0 + size] = 255
    return np.array([x0, y0], dtype=np.float64)


def build_fpn_detector_like(path: str | Path, *, seed: int = 0) -> Path:
    """Write a random-weight detector with SCRFD's interface *and* its layer types; returns
    ``path``.

    Strided 3x3 convolutions with ReLU (backbone), 1x1 lateral convolutions, nearest-neighbour
    ``Resize`` by 2 and ``Add`` (feature pyramid), 3x3 head convolutions, ``Sigmoid`` scores and
    ``Transpose`` + ``Reshape`` to SCRFD's nine outputs (scores, boxes, keypoints for strides 8,
    16 and 32, two anchors per location), on a dynamic ``1x3xHxW`` input (H, W multiples of 32).
    Its "detections" mean nothing: it exists to check that a runtime computes what onnxruntime
    computes for the operators real SCRFD graphs are made of.
    """
    path = Path(path)
    g = _GraphBuilder(seed)

    def conv(x: str, cin: int, cout: int, k: int, stride: int, relu: bool = True) -> str:
        y = g.conv(x, cin, cout, k, stride)
        b = g.weight(f"{y}.b", g.rng.normal(0, 0.1, (1, cout, 1, 1)))
        n = g.name("add")
        g.nodes.append(helper.make_node("Add", [y, b], [n], name=n))
        if not relu:
            return n
        r = g.name("relu")
        g.nodes.append(helper.make_node("Relu", [n], [r], name=r))
        return r

    x = conv("input.1", 3, 8, 3, 2)
    x = conv(x, 8, 16, 3, 2)
    c8 = conv(x, 16, 16, 3, 2)
    c16 = conv(c8, 16, 24, 3, 2)
    c32 = conv(c16, 24, 32, 3, 2)
    g.inits.append(_const("up2", np.array([1.0, 1.0, 2.0, 2.0], dtype=np.float32)))
    g.inits.append(_const("roi", np.zeros(0, dtype=np.float32)))

    def up_add(coarse: str, lateral: str) -> str:
        u = g.name("resize")
        g.nodes.append(
            helper.make_node(
                "Resize",
                [coarse, "roi", "up2"],
                [u],
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
                name=u,
            )
        )
        n = g.name("add")
        g.nodes.append(helper.make_node("Add", [u, lateral], [n], name=n))
        return n

    p32 = conv(c32, 32, 16, 1, 1, relu=False)
    p16 = up_add(p32, conv(c16, 24, 16, 1, 1, relu=False))
    p8 = up_add(p16, conv(c8, 16, 16, 1, 1, relu=False))
    outputs: dict[str, list[str]] = {"score": [], "bbox": [], "kps": []}
    for width in (1, 4, 10):
        g.inits.append(_const(f"shape{width}", np.array([-1, width], dtype=np.int64)))
    for stride, level in ((8, p8), (16, p16), (32, p32)):
        for kind, channels, width in (("score", 2, 1), ("bbox", 8, 4), ("kps", 20, 10)):
            head = conv(level, 16, channels, 3, 1, relu=False)
            if kind == "score":
                s = g.name("sigmoid")
                g.nodes.append(helper.make_node("Sigmoid", [head], [s], name=s))
                head = s
            t = g.name("transpose")
            g.nodes.append(helper.make_node("Transpose", [head], [t], perm=[0, 2, 3, 1], name=t))
            name = f"{kind}_{stride}"
            g.nodes.append(helper.make_node("Reshape", [t, f"shape{width}"], [name], name=name))
            outputs[kind].append(name)
    graph_outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"n_{name}", width])
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10))
        for name in outputs[kind]
    ]
    graph = helper.make_graph(
        g.nodes,
        "scrfd_fpn_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])],
        graph_outputs,
        initializer=g.inits,
    )
    return _save(graph, path)
