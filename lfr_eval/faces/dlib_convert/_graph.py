"""Run a parsed dlib layer list as a PyTorch module.

dlib networks are a chain with named side branches: a *tag* remembers the current output, a
*skip* continues from a remembered one, and ``add_prev`` adds a remembered output to the current
one. Walking the layers from input to output with a small tag table reproduces that exactly
(the nearest tag below a layer is the last one seen). The walk is ordinary Python over a fixed
list, so ``torch.onnx.export`` traces it into a static graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lfr_eval.faces.dlib_convert._serialize import (
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    FcLayer,
    Layer,
    PoolLayer,
    ReluLayer,
    SkipLayer,
    TagLayer,
)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


class Affine(nn.Module):
    """``y = gamma * x + beta``, per channel (conv mode) or per element (fc mode)."""

    gamma: torch.Tensor
    beta: torch.Tensor

    def __init__(self, layer: AffineLayer) -> None:
        super().__init__()
        self.disabled = layer.disabled
        shape = (1, -1, 1, 1) if layer.mode == "conv" else (1, *layer.gamma.shape)
        self.register_buffer("gamma", _tensor(layer.gamma).reshape(shape))
        self.register_buffer("beta", _tensor(layer.beta).reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.disabled:
            return x
        return x * self.gamma + self.beta


class GlobalAvgPool(nn.Module):
    """dlib's ``avg_pool_everything``: mean over all rows and columns, keeping 1x1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class Flatten(nn.Module):
    """dlib's fc layers read a sample as one vector in (channel, row, column) order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


def _module(layer: Layer) -> nn.Module:
    if isinstance(layer, ConvLayer):
        out_ch, in_ch, kh, kw = layer.weight.shape
        conv = nn.Conv2d(
            in_ch,
            out_ch,
            (kh, kw),
            stride=layer.stride,
            padding=layer.padding,
            bias=layer.bias is not None,
        )
        with torch.no_grad():
            conv.weight.copy_(_tensor(layer.weight))
            if layer.bias is not None and conv.bias is not None:
                conv.bias.copy_(_tensor(layer.bias))
        return nn.Sequential(conv, nn.ReLU()) if layer.relu else conv
    if isinstance(layer, AffineLayer):
        return Affine(layer)
    if isinstance(layer, ReluLayer):
        return nn.Identity() if layer.disabled else nn.ReLU()
    if isinstance(layer, PoolLayer):
        if layer.size == (0, 0):
            if layer.op != "avg":
                raise ValueError("only average pooling over the whole input is supported")
            return GlobalAvgPool()
        if layer.op == "max":
            return nn.MaxPool2d(layer.size, layer.stride, layer.padding)
        # dlib averages only the cells inside the image
        return nn.AvgPool2d(layer.size, layer.stride, layer.padding, count_include_pad=False)
    if isinstance(layer, FcLayer):
        out_f, in_f = layer.weight.shape
        linear = nn.Linear(in_f, out_f, bias=layer.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(_tensor(layer.weight))
            if layer.bias is not None:
                linear.bias.copy_(_tensor(layer.bias))
        return nn.Sequential(Flatten(), linear)
    raise TypeError(f"no module for {type(layer).__name__}")


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` where the smaller of the two is zero-padded at the end of each dimension.

    dlib's ``add_prev`` does this when a down-sampling block's output and its shortcut differ
    in channels (64 vs 128) or size (3x3 vs 4x4).
    """
    if a.shape == b.shape:
        return a + b
    target = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:])]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        return F.pad(t, (0, target[2] - w, 0, target[1] - h, 0, target[0] - c))

    return pad(a) + pad(b)


class DlibLayers(nn.Module):
    """The layers of a dlib network (input normalisation and loss excluded), as PyTorch.

    Parameters
    ----------
    layers : sequence of Layer
        From input to output, as :func:`~lfr_eval.faces.dlib_convert._serialize.parse_network`
        returns them.
    """

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        self.steps: list[tuple[str, int]] = []
        modules: list[nn.Module] = []
        for layer in layers:
            if isinstance(layer, TagLayer):
                self.steps.append(("tag", layer.tag))
            elif isinstance(layer, SkipLayer):
                self.steps.append(("skip", layer.tag))
            elif isinstance(layer, AddPrevLayer):
                self.steps.append(("add_prev", layer.tag))
            else:
                self.steps.append(("module", len(modules)))
                modules.append(_module(layer))
        self.layers = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tagged: dict[int, torch.Tensor] = {}
        for kind, arg in self.steps:
            if kind == "module":
                x = self.layers[arg](x)
            elif kind == "tag":
                tagged[arg] = x
            elif kind == "skip":
                x = tagged[arg]
            else:
                x = add_zero_padded(x, tagged[arg])
        return x
