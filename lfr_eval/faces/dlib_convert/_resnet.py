"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The architecture is the one dlib publishes with the model (``dnn_face_recognition_ex.cpp``):
a 7x7/2 convolution and 3x3/2 max-pool, then 29 convolutions in residual blocks of 32, 64, 128
and 256 filters (3x3, affine in place of batch norm), a global average pool and a 128-output
fully connected layer without bias. Input: a 150x150 RGB face chip; output: the 128-d
descriptor (not normalised; dlib compares descriptors by Euclidean distance, < 0.6 = same).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from lfr_eval.faces.dlib_convert._graph import DlibLayers
from lfr_eval.faces.dlib_convert._resnet_spec import (
    CHIP_SIZE,
    DESCRIPTOR_DIM,
    RESNET_FILE,
    RESNET_SPEC,
)
from lfr_eval.faces.dlib_convert._serialize import DlibNetwork, read_network

__all__ = [
    "CHIP_SIZE",
    "DESCRIPTOR_DIM",
    "RESNET_FILE",
    "RESNET_SPEC",
    "ResNetDescriptor",
    "load_resnet",
]

class ResNetDescriptor(nn.Module):
    """150x150 RGB chips in, 128-d dlib face descriptors out.

    Input: ``uint8`` tensor of shape (N, 150, 150, 3), RGB, as ``dlib.get_face_chip`` makes
    them. Output: ``float32`` (N, 128), the raw descriptor (same as dlib's
    ``compute_face_descriptor``). The network runs in the dtype of its parameters (call
    ``.half()`` for fp16); the input normalisation always runs in fp32.
    """

    mean: torch.Tensor

    def __init__(self, network: DlibNetwork) -> None:
        super().__init__()
        if network.spec.name != RESNET_SPEC.name:
            raise ValueError(f"not a ResNet descriptor network: {network.spec.name}")
        self.body = DlibLayers(network.layers)
        mean = np.asarray(network.input.mean_rgb, dtype=np.float32).reshape(1, 3, 1, 1)
        self.register_buffer("mean", torch.from_numpy(mean), persistent=True)

    def normalise(self, chips: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC pixels to the float NCHW tensor dlib feeds the network."""
        x = chips.permute(0, 3, 1, 2).to(torch.float32)
        # dlib: (pixel - channel mean) / 256, in float
        return (x - self.mean.to(torch.float32)) / 256.0

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = self.normalise(chips)
        dtype = next(self.body.parameters()).dtype
        descriptors: torch.Tensor = self.body(x.to(dtype)).to(torch.float32)
        return descriptors


def load_resnet(path: str | os.PathLike[str]) -> ResNetDescriptor:
    """Read ``dlib_face_recognition_resnet_model_v1.dat`` into an fp32 module in eval mode.

    Raises
    ------
    ModelError
        Missing or unreadable file.
    DlibFormatError
        Not the dlib face recognition ResNet (corrupt, truncated or another network).
    """
    module = ResNetDescriptor(read_network(path, RESNET_SPEC))
    return module.eval()
