"""dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``) in PyTorch.

How dlib runs it (``dnn_mmod_face_detection_ex.cpp`` and ``cnn_face_detector.cpp``), and how we
reproduce each step:

1. *Upsampling* (optional, ``upsample_num_times``): the RGB image is enlarged with dlib's
   ``pyramid_up`` (bilinear, to ``2h + 1`` rows by ``2w + 2`` columns, truncating to uint8).
2. *Tiled image pyramid* (``input_rgb_image_pyramid<pyramid_down<6>>``): the image, normalised
   to ``(pixel - channel mean) / 256``, and copies of it shrunk by 5/6 again and again (down to
   5 rows) are packed into one zero-filled canvas, 10 px apart with an 11 px border, each level
   resized from the previous one with dlib's bilinear resize. :func:`pyramid_layout` computes
   the tile rectangles, :func:`build_pyramid` fills the canvas with the exact float arithmetic
   dlib uses (bit-identical on CPU), in PyTorch, so it runs on the GPU too.
3. *The network*: three 5x5/2 convolutions (the "downsampler"), three 5x5 convolutions with 45
   filters and a 9x9 convolution to one score channel, every convolution but the last followed
   by an affine and a ReLU. One pass over the whole canvas (:class:`MmodScoreNet`).
4. *Decoding* (``loss_mmod_::to_label``): every output cell scoring above the threshold is
   mapped back through the convolutions to a point of the canvas, the 80x80 detector window is
   centred there, the window is assigned to the nearest pyramid tile and scaled back to the
   image, then boxes are sorted by score and greedily suppressed when they overlap a kept box
   (dlib's ``test_box_overlap``: intersection over the *bounding box* of both above the file's
   IoU threshold, or either box covered beyond its coverage threshold). :func:`decode`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from lfr_eval.faces.dlib_convert._graph import DlibLayers
from lfr_eval.faces.dlib_convert._serialize import (
    ConvLayer,
    DlibFormatError,
    DlibNetwork,
    MmodLoss,
    NetSpec,
    Node,
    read_network,
)

MMOD_FILE = "mmod_human_face_detector.dat"
#: dlib's pyramid_down<6>: each level is 5/6 the size of the previous one
PYRAMID_RATE_DEN = 6
#: compute_tiled_image_pyramid_details stops below this many rows
MIN_LEVEL_HEIGHT = 5

_U64 = 1 << 64


def _con(filters: int, size: int, stride: int) -> Node:
    return Node("con", outputs=filters, size=(size, size), stride=(stride, stride))


def _con_affine_relu(filters: int, size: int, stride: int) -> tuple[Node, Node, Node]:
    return (_con(filters, size, stride), Node("affine"), Node("relu"))


MMOD_SPEC = NetSpec(
    name="dlib MMOD face detector",
    input_kind="pyramid",
    loss_kind="mmod",
    expected_file=MMOD_FILE,
    nodes=(
        # the "downsampler": three 5x5 stride-2 convolutions (8x smaller)
        *_con_affine_relu(16, 5, 2),
        *_con_affine_relu(32, 5, 2),
        *_con_affine_relu(32, 5, 2),
        # three 5x5 convolutions with 45 filters ("rcon5")
        *_con_affine_relu(45, 5, 1),
        *_con_affine_relu(45, 5, 1),
        *_con_affine_relu(45, 5, 1),
        # one score per position for the single 80x80 detector window
        _con(1, 9, 1),
    ),
)


# ----------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------


class MmodScoreNet(nn.Module):
    """Normalised pyramid canvas ``(N, 3, H, W)`` float in, score map ``(N, windows, H', W')``
    out. Runs in the dtype of its parameters; returns float32."""

    def __init__(self, network: DlibNetwork) -> None:
        super().__init__()
        self.body = DlibLayers(network.layers)

    def forward(self, canvas: torch.Tensor) -> torch.Tensor:
        dtype = next(self.body.parameters()).dtype
        scores: torch.Tensor = self.body(canvas.to(dtype)).to(torch.float32)
        return scores


def output_to_input_map(network: DlibNetwork) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, offset)`` such that output cell (x, y) sits at ``scale * (x, y) + offset``
    of the input canvas (dlib's ``output_tensor_to_input_tensor``; arrays are (x, y))."""
    scale, offset = np.ones(2), np.zeros(2)
    for layer in reversed(network.layers):
        if isinstance(layer, ConvLayer):
            # compose p -> p * stride - pad + size // 2 (from the output layer inwards)
            size = np.array([layer.weight.shape[3], layer.weight.shape[2]], dtype=np.float64)
            stride = np.array([layer.stride[1], layer.stride[0]], dtype=np.float64)
            pad = np.array([layer.padding[1], layer.padding[0]], dtype=np.float64)
            offset = offset * stride - pad + size // 2
            scale = scale * stride
    return scale, offset


# ----------------------------------------------------------------------------------------
# Tiled image pyramid
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResizePlan:
    """Source taps and weights of dlib's bilinear resize from one level to the next.

    Rows: ``top``/``bottom`` indices and ``tb`` fraction (float64). Columns: ``left``/
    ``right`` indices and fraction ``lr`` (float32); the first ``n_main`` columns use dlib's
    vectorised float32 weights, the rest its scalar formula (fractions also kept in float64,
    ``lr_tail64``, as the RGB resize uses them).
    """

    top: np.ndarray
    bottom: np.ndarray
    tb: np.ndarray
    left: np.ndarray
    right: np.ndarray
    lr: np.ndarray
    lr_tail64: np.ndarray
    n_main: int


@dataclass(frozen=True)
class PyramidLayout:
    """Canvas size and tile rectangles ``(left, top, right, bottom)``, inclusive, level 0 =
    the image itself; ``plans[i - 1]`` resizes level ``i - 1`` into level ``i``."""

    height: int
    width: int
    rects: np.ndarray
    plans: tuple[ResizePlan, ...]

    @property
    def levels(self) -> int:
        return len(self.rects)


def _running_sum(start: float, step: float, count: int, dtype: type = np.float64) -> np.ndarray:
    """``start + step``, ``start + 2 step``… accumulated one addition at a time in ``dtype``
    (``np.add.accumulate`` is sequential, like dlib's loops, unlike pairwise ``np.sum``)."""
    terms: np.ndarray = np.full(count + 1, step, dtype=dtype)
    terms[0] = start
    return np.add.accumulate(terms, dtype=dtype)[1:]


def _resize_plan(src_h: int, src_w: int, dst_h: int, dst_w: int) -> ResizePlan:
    """Reproduce the index and weight arithmetic of dlib's bilinear ``resize_image``."""
    x_scale = (src_w - 1) / max(dst_w - 1, 1)
    y_scale = (src_h - 1) / max(dst_h - 1, 1)
    ys = _running_sum(-y_scale, y_scale, dst_h)
    top = np.floor(ys).astype(np.int64)
    bottom = np.minimum(top + 1, src_h - 1)
    tb = ys - top
    # columns, vectorised part: four float32 lanes advanced by 4 * x_scale in float32 and
    # truncated to the left tap, until a group's last right tap would leave the image
    x0 = -4 * x_scale
    groups = (dst_w + 3) // 4
    lanes = np.stack(
        [
            _running_sum(np.float32(x0 + j * x_scale), np.float32(4 * x_scale), groups, np.float32)
            for j in range(4)
        ],
        axis=1,
    )
    lefts = np.trunc(lanes).astype(np.int64)
    inside = lefts[:, 3] + 1 < src_w
    n_groups = groups if inside.all() else int(np.argmin(inside))
    n_main = min(4 * n_groups, dst_w)
    left_main = lefts[:n_groups].reshape(-1)[:n_main]
    lr_main = lanes[:n_groups].reshape(-1)[:n_main] - left_main.astype(np.float32)
    # the remaining columns: a float64 running sum restarted where the vector loop stopped
    x_tail = _running_sum(-x_scale + n_main * x_scale, x_scale, dst_w - n_main)
    left_tail = np.floor(x_tail).astype(np.int64)
    left = np.concatenate([left_main, left_tail])
    return ResizePlan(
        top=top,
        bottom=bottom,
        tb=tb,
        left=left,
        right=np.minimum(left + 1, src_w - 1),
        lr=np.concatenate([lr_main, (x_tail - left_tail).astype(np.float32)]).astype(np.float32),
        lr_tail64=x_tail - left_tail,
        n_main=n_main,
    )


@lru_cache(maxsize=32)
def pyramid_layout(height: int, width: int, padding: int = 10, outer: int = 11) -> PyramidLayout:
    """Where dlib's ``input_rgb_image_pyramid<pyramid_down<6>>`` puts each pyramid level.

    Follows ``compute_tiled_image_pyramid_details``, including its unsigned arithmetic: the
    levels go down the left column until the remaining ones fit beside the first level, then
    up the right side from the bottom.
    """
    if height * width == 0:
        return PyramidLayout(0, 0, np.zeros((0, 4), np.int64), ())
    sizes = [(width, height)]  # (w, h)
    nr, nc = height, width
    rate = (PYRAMID_RATE_DEN - 1.0) / PYRAMID_RATE_DEN
    while True:
        nr, nc = math.floor(rate * nr), math.floor(rate * nc)
        if nr * nc == 0 or nr < MIN_LEVEL_HEIGHT:
            break
        sizes.append((nc, nr))
    w0, h0 = sizes[0]
    total_height = sum(h + padding for _, h in sizes) - 2 * padding
    column_height, prev_width = 0, 0
    for w, h in sizes:
        # C++ does these comparisons in unsigned long: reproduce the wrap-around
        fits_beside = w <= (w0 - prev_width - padding) % _U64
        half_done = ((column_height - h0) % _U64) * 2 % _U64 >= (total_height - h0) % _U64
        if fits_beside and half_done:
            break
        column_height += h + padding
        prev_width = w
    column_height -= padding
    canvas_h, canvas_w = column_height + 2 * outer, w0 + 2 * outer
    rects: list[tuple[int, int, int, int]] = []
    y, i = outer, 0
    while y < column_height + outer and i < len(sizes):
        w, h = sizes[i]
        rects.append((outer, y, outer + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    if not rects:
        # images narrower than the padding: dlib's own layout then writes outside its canvas
        # (undefined behaviour); no tile fits, so there is nothing to detect
        return PyramidLayout(0, 0, np.zeros((0, 4), np.int64), ())
    first = rects[0]
    while i < len(sizes):
        w, h = sizes[i]
        right, bottom = outer + w0 - 1, y - 1
        rect = (right - (w - 1), bottom - (h - 1), right, bottom)
        # stop if this tile would overlap the full-size image
        if max(first[0], rect[0]) <= min(first[2], rect[2]) and max(first[1], rect[1]) <= min(
            first[3], rect[3]
        ):
            break
        rects.append(rect)
        y -= h + padding
        i += 1
    rect_array = np.array(rects, dtype=np.int64)
    plans = tuple(
        _resize_plan(
            int(rect_array[k - 1, 3] - rect_array[k - 1, 1] + 1),
            int(rect_array[k - 1, 2] - rect_array[k - 1, 0] + 1),
            int(rect_array[k, 3] - rect_array[k, 1] + 1),
            int(rect_array[k, 2] - rect_array[k, 0] + 1),
        )
        for k in range(1, len(rect_array))
    )
    return PyramidLayout(canvas_h, canvas_w, rect_array, plans)


class _DevicePlan:
    """A :class:`ResizePlan` as tensors on one device (built once per image size)."""

    def __init__(self, plan: ResizePlan, device: torch.device) -> None:
        def long(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        self.top, self.bottom = long(plan.top), long(plan.bottom)
        self.left, self.right = long(plan.left), long(plan.right)
        self.n_main = plan.n_main
        tb32 = torch.from_numpy(plan.tb.astype(np.float32)).to(device)
        inv_tb32 = torch.from_numpy((1.0 - plan.tb).astype(np.float32)).to(device)
        lr = torch.from_numpy(plan.lr[: plan.n_main]).to(device)
        inv_lr = 1 - lr
        # dlib's float32 weights, each product rounded to float32 as in its SIMD loop
        self.w_tl = inv_tb32[:, None] * inv_lr[None, :]
        self.w_tr = inv_tb32[:, None] * lr[None, :]
        self.w_bl = tb32[:, None] * inv_lr[None, :]
        self.w_br = tb32[:, None] * lr[None, :]
        self.tb64 = torch.from_numpy(plan.tb).to(device)
        self.lr_tail = torch.from_numpy(plan.lr[plan.n_main :]).to(device)

    def apply(self, src: torch.Tensor) -> torch.Tensor:
        """Resize ``src`` (N, C, h, w) float32 exactly as dlib does."""
        rows_t = src.index_select(2, self.top)
        rows_b = src.index_select(2, self.bottom)
        n = self.n_main
        left_m, right_m = self.left[:n], self.right[:n]
        main = (
            self.w_tl * rows_t.index_select(3, left_m)
            + self.w_tr * rows_t.index_select(3, right_m)
            + self.w_bl * rows_b.index_select(3, left_m)
            + self.w_br * rows_b.index_select(3, right_m)
        )
        if self.lr_tail.numel() == 0:
            return main
        left_t, right_t = self.left[n:], self.right[n:]
        lr, inv_lr = self.lr_tail, 1 - self.lr_tail
        top_mix = inv_lr * rows_t.index_select(3, left_t) + lr * rows_t.index_select(3, right_t)
        bot_mix = inv_lr * rows_b.index_select(3, left_t) + lr * rows_b.index_select(3, right_t)
        tb = self.tb64[:, None]
        tail = ((1 - tb) * top_mix.double() + tb * bot_mix.double()).to(torch.float32)
        return torch.cat([main, tail], dim=3)


_device_plans: dict[tuple[int, int, int, int, str], list[_DevicePlan]] = {}


def _plans_on(
    layout: PyramidLayout, key: tuple[int, int, int, int], device: torch.device
) -> list[_DevicePlan]:
    cache_key = (*key, str(device))
    plans = _device_plans.get(cache_key)
    if plans is None:
        if len(_device_plans) > 64:
            _device_plans.clear()
        plans = [_DevicePlan(p, device) for p in layout.plans]
        _device_plans[cache_key] = plans
    return plans


def build_pyramid(
    images: torch.Tensor,
    mean_rgb: tuple[float, float, float],
    padding: int = 10,
    outer: int = 11,
) -> tuple[torch.Tensor, PyramidLayout]:
    """The normalised tiled pyramid canvas dlib's MMOD network sees.

    Parameters
    ----------
    images : tensor (N, H, W, 3) uint8, RGB, on any device; all the same size.
    mean_rgb : channel means subtracted before dividing by 256 (from the model file).

    Returns
    -------
    canvas : tensor (N, 3, canvas_h, canvas_w) float32 on the images' device.
    layout : PyramidLayout
    """
    n, h, w, _ = images.shape
    layout = pyramid_layout(int(h), int(w), padding, outer)
    device = images.device
    canvas = torch.zeros((n, 3, layout.height, layout.width), dtype=torch.float32, device=device)
    if layout.levels == 0:
        return canvas, layout
    mean = torch.tensor(mean_rgb, dtype=torch.float32, device=device).reshape(1, 3, 1, 1)
    l0, t0, r0, b0 = (int(v) for v in layout.rects[0])
    canvas[:, :, t0 : b0 + 1, l0 : r0 + 1] = (
        images.permute(0, 3, 1, 2).to(torch.float32) - mean
    ) / 256.0
    plans = _plans_on(layout, (int(h), int(w), padding, outer), device)
    for k, plan in enumerate(plans, start=1):
        pl, pt, pr, pb = (int(v) for v in layout.rects[k - 1])
        dl, dt, dr, db = (int(v) for v in layout.rects[k])
        src = canvas[:, :, pt : pb + 1, pl : pr + 1]
        canvas[:, :, dt : db + 1, dl : dr + 1] = plan.apply(src)
    return canvas, layout


# ----------------------------------------------------------------------------------------
# Upsampling (dlib's pyramid_up of the RGB image)
# ----------------------------------------------------------------------------------------


def pyramid_up_rgb(images: torch.Tensor) -> torch.Tensor:
    """dlib's ``pyramid_up`` of uint8 RGB images (N, H, W, 3): about twice the size.

    The output is ``2h + 1`` rows by ``2w + 2`` columns (dlib maps the image rectangle up
    with ``pyramid_down<2>``'s ``(p + (1.25, 0.75)) * 2`` and rounds), filled by its bilinear
    resize with values truncated to uint8.
    """
    _, h, w, _ = images.shape
    out_h, out_w = 2 * int(h) + 1, 2 * int(w) + 2
    plan = _resize_plan(int(h), int(w), out_h, out_w)
    device = images.device
    dplan = _DevicePlan(plan, device)
    src = images.permute(0, 3, 1, 2).to(torch.float32)
    rows_t = src.index_select(2, dplan.top)
    rows_b = src.index_select(2, dplan.bottom)
    m = dplan.n_main
    main = (
        dplan.w_tl * rows_t.index_select(3, dplan.left[:m])
        + dplan.w_tr * rows_t.index_select(3, dplan.right[:m])
        + dplan.w_bl * rows_b.index_select(3, dplan.left[:m])
        + dplan.w_br * rows_b.index_select(3, dplan.right[:m])
    )
    parts = [torch.trunc(main)]
    if out_w > m:
        # scalar tail of dlib's RGB resize: float64 throughout
        lr = torch.from_numpy(plan.lr_tail64).to(device)
        left_t, right_t = dplan.left[m:], dplan.right[m:]
        top_d, bot_d = rows_t.double(), rows_b.double()
        top_mix = (1 - lr) * top_d.index_select(3, left_t) + lr * top_d.index_select(3, right_t)
        bot_mix = (1 - lr) * bot_d.index_select(3, left_t) + lr * bot_d.index_select(3, right_t)
        tb = dplan.tb64[:, None]
        parts.append(torch.trunc((1 - tb) * top_mix + tb * bot_mix).to(torch.float32))
    out = torch.cat(parts, dim=3).clamp_(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous()


# ----------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------


def _lround(x: np.ndarray) -> np.ndarray:
    """C's ``lround``: halves away from zero (numpy's ``round`` goes to even)."""
    rounded: np.ndarray = (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)
    return rounded


def _nearest_tile(rects: np.ndarray, points: np.ndarray) -> np.ndarray:
    """dlib's ``nearest_rect``: first tile containing the point, else the closest one."""
    x, y = points[:, 0:1], points[:, 1:2]
    left, top, right, bottom = (rects[None, :, i] for i in range(4))
    inside = (x >= left) & (x <= right) & (y >= top) & (y <= bottom)
    dx = np.clip(x, left, right) - x
    dy = np.clip(y, top, bottom) - y
    dist = np.hypot(dx, dy)
    # containing tiles win (distance -1), then the first of equal distances
    dist = np.where(inside, -1.0, dist)
    nearest: np.ndarray = np.argmin(dist, axis=1)
    return nearest


def _overlaps(kept: np.ndarray, box: np.ndarray, iou: float, covered: float) -> bool:
    """dlib's ``test_box_overlap`` of one inclusive integer box against kept boxes."""
    if len(kept) == 0:
        return False
    il = np.maximum(kept[:, 0], box[0])
    it = np.maximum(kept[:, 1], box[1])
    ir = np.minimum(kept[:, 2], box[2])
    ib = np.minimum(kept[:, 3], box[3])
    inner = np.where((ir >= il) & (ib >= it), (ir - il + 1) * (ib - it + 1), 0).astype(float)
    # "outer" is the bounding box of both, not the union
    ol = np.minimum(kept[:, 0], box[0])
    ot = np.minimum(kept[:, 1], box[1])
    orr = np.maximum(kept[:, 2], box[2])
    ob = np.maximum(kept[:, 3], box[3])
    outer = ((orr - ol + 1) * (ob - ot + 1)).astype(float)
    area_k = ((kept[:, 2] - kept[:, 0] + 1) * (kept[:, 3] - kept[:, 1] + 1)).astype(float)
    area_b = float((box[2] - box[0] + 1) * (box[3] - box[1] + 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = (inner > 0) & (
            (inner / outer > iou) | (inner / area_k > covered) | (inner / area_b > covered)
        )
    return bool(hit.any())


@dataclass(frozen=True)
class Detections:
    """Boxes found in one image.

    Attributes
    ----------
    rects : ndarray (n, 4) int64
        dlib rectangles ``(left, top, right, bottom)``, inclusive pixel coordinates of the
        image given to the detector, highest score first.
    scores : ndarray (n,) float64
        Detector confidence (MMOD score; dlib keeps > 0 by default).
    """

    rects: np.ndarray
    scores: np.ndarray


def decode(
    cells: np.ndarray,
    scores: np.ndarray,
    layout: PyramidLayout,
    loss: MmodLoss,
    out_to_in: tuple[np.ndarray, np.ndarray],
) -> Detections:
    """Turn above-threshold score cells into non-overlapping boxes (dlib's ``to_label``).

    Parameters
    ----------
    cells : ndarray (m, 3) int
        ``(window, row, column)`` of each output cell above the threshold.
    scores : ndarray (m,) float
        Their scores.
    layout, loss, out_to_in : as from :func:`pyramid_layout`, the model file, and
        :func:`output_to_input_map`.
    """
    if len(cells) == 0 or layout.levels == 0:
        return Detections(np.zeros((0, 4), np.int64), np.zeros(0))
    scale, offset = out_to_in
    centres = cells[:, [2, 1]].astype(np.float64) * scale + offset  # (x, y) in the canvas
    windows = np.array([(w.width, w.height) for w in loss.windows], dtype=np.float64)
    half = (windows[cells[:, 0]] - 1) / 2  # centered_drect shrinks width/height by one
    boxes = np.concatenate([centres - half, centres + half], axis=1)  # l, t, r, b
    # the tile a box belongs to: the one nearest its centre (rounded to a pixel)
    middle = (boxes[:, :2] + boxes[:, 2:]) / 2
    tile = _nearest_tile(layout.rects, np.floor(middle + 0.5))
    origin = layout.rects[tile][:, :2].astype(np.float64)
    boxes = boxes - np.concatenate([origin, origin], axis=1)
    ratio = PYRAMID_RATE_DEN / (PYRAMID_RATE_DEN - 1.0)
    for level in range(1, int(tile.max()) + 1):
        # point_up applied `tile` times: p * 6/5 + 0.3, one level at a time
        up = tile >= level
        boxes[up] = boxes[up] * ratio + 0.3
    rects = _lround(boxes)
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for index in order:
        if not _overlaps(rects[kept], rects[index], loss.nms_iou, loss.nms_percent_covered):
            kept.append(int(index))
    return Detections(rects[kept], scores[kept].astype(np.float64))


def rect_down(rects: np.ndarray, levels: int) -> np.ndarray:
    """Map rectangles found on a ``pyramid_up``-ed image back (dlib's ``rect_down``)."""
    boxes = rects.astype(np.float64)
    for _ in range(levels):
        boxes = boxes / 2.0 - np.array([1.25, 0.75, 1.25, 0.75])
    return _lround(boxes)


# ----------------------------------------------------------------------------------------
# Detector
# ----------------------------------------------------------------------------------------


def load_mmod_network(path: str | os.PathLike[str]) -> DlibNetwork:
    """Parse ``mmod_human_face_detector.dat`` (raises ``DlibFormatError`` if it is not one)."""
    network = read_network(path, MMOD_SPEC)
    assert isinstance(network.loss, MmodLoss)
    unsupported = []
    if network.loss.bounding_box_regression:
        unsupported.append("bounding-box regression")
    if not network.loss.assume_image_pyramid:
        unsupported.append("no image pyramid")
    if len(network.layers) and len({w.label for w in network.loss.windows}) > 1:
        unsupported.append("several labels")
    if unsupported:
        raise DlibFormatError(
            f"{path} is an MMOD detector with options this converter does not support "
            f"({', '.join(unsupported)}); expected {MMOD_FILE}."
        )
    return network
