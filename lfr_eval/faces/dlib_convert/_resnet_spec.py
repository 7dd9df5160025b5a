"""The architecture of dlib's face recognition ResNet, as the ``.dat`` reader checks it.

Kept apart from :mod:`._resnet` (the PyTorch module) so that reading the weights -- and the
torch-free ONNX build of :mod:`lfr_eval.faces._dlib_onnx` -- never imports torch.
"""

from __future__ import annotations

from lfr_eval.faces.dlib_convert._serialize import NetSpec, Node

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
DESCRIPTOR_DIM = 128


def _con(filters: int, size: int, stride: int) -> Node:
    return Node("con", outputs=filters, size=(size, size), stride=(stride, stride))


_AFFINE = Node("affine")
_RELU = Node("relu")


def _block(filters: int, stride: int) -> list[Node]:
    """Two 3x3 convolutions, each followed by an affine, with a ReLU between them."""
    return [_con(filters, 3, stride), _AFFINE, _RELU, _con(filters, 3, 1), _AFFINE]


def _residual(filters: int) -> list[Node]:
    """Identity-shortcut block followed by ReLU (``ares`` in dlib's example)."""
    return [Node("tag", tag=1), *_block(filters, 1), Node("add_prev", tag=1), _RELU]


def _residual_down(filters: int) -> list[Node]:
    """Stride-2 block whose shortcut is a 2x2 average pool (``ares_down``)."""
    return [
        Node("tag", tag=1),
        *_block(filters, 2),
        Node("tag", tag=2),
        Node("skip", tag=1),
        Node("pool_avg", size=(2, 2), stride=(2, 2)),
        Node("add_prev", tag=2),
        _RELU,
    ]


def _level(filters: int, plain: int, down: bool) -> list[Node]:
    nodes = _residual_down(filters) if down else []
    for _ in range(plain):
        nodes += _residual(filters)
    return nodes


RESNET_SPEC = NetSpec(
    name="dlib face recognition ResNet",
    input_kind="sized",
    input_size=(CHIP_SIZE, CHIP_SIZE),
    loss_kind="metric",
    expected_file=RESNET_FILE,
    nodes=(
        _con(32, 7, 2),
        _AFFINE,
        _RELU,
        Node("pool_max", size=(3, 3), stride=(2, 2)),
        *_level(32, 3, down=False),
        *_level(64, 3, down=True),
        *_level(128, 2, down=True),
        *_level(256, 2, down=True),
        *_level(256, 0, down=True),
        Node("pool_avg", size=(0, 0), stride=(1, 1)),
        Node("fc", outputs=DESCRIPTOR_DIM, bias=False),
    ),
)
