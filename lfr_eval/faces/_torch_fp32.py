"""Keeping "fp32" honest on CUDA (shared by every PyTorch runner)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def true_fp32(device_type: str, precision: str) -> Iterator[None]:
    """Keep fp32 convolutions and matmuls in IEEE fp32 on CUDA, for the ``with`` block.

    cuDNN runs fp32 convolutions in TF32 (10-bit mantissa) on Ampere and newer GPUs unless
    told otherwise, which moves embeddings by ~1e-3: "fp32" must mean fp32. The switches are
    global, so they are set only around our own forward passes and restored after. Does
    nothing unless ``device_type == "cuda"`` and ``precision == "fp32"``.
    """
    if device_type != "cuda" or precision != "fp32":
        yield
        return
    import torch

    # (owner, attribute, value): torch's backend modules, untyped here
    settings: list[tuple[Any, str, object]] = []
    for owner in (getattr(torch.backends.cudnn, "conv", None), torch.backends.cuda.matmul):
        if owner is not None and hasattr(owner, "fp32_precision"):  # torch >= 2.9
            settings.append((owner, "fp32_precision", "ieee"))
    if not settings:  # older torch: the legacy switches
        settings = [
            (torch.backends.cudnn, "allow_tf32", False),
            (torch.backends.cuda.matmul, "allow_tf32", False),
        ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in settings]
    try:
        for owner, name, value in settings:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
