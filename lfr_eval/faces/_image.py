"""Reading images from disk or bytes with clear errors.

Images come back as RGB ``uint8`` arrays of shape ``(height, width, 3)``.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lfr_eval.errors import (
    MSG_IMAGE_EMPTY,
    MSG_IMAGE_MISSING,
    MSG_IMAGE_TOO_LARGE,
    MSG_IMAGE_UNREADABLE,
    ImageError,
)

#: Largest image accepted, in pixels (width × height). 50 MP covers any camera frame or
#: photo an evaluation team uses; beyond that a "decompression bomb" is more likely than a face.
MAX_PIXELS = 50_000_000


def _check_size(width: int, height: int, source: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            MSG_IMAGE_TOO_LARGE.format(width=width, height=height, limit=max_pixels, path=source)
        )


def _header_size(data: bytes, source: str) -> tuple[int, int]:
    """Width and height from the file header, without decoding any pixel.

    Pillow's ``Image.open`` is lazy: it parses the header of every format it knows (JPEG in any
    marker order, PNG, GIF, TIFF, WebP, BMP, …) and stops. Data Pillow cannot identify is
    refused here: OpenCV would otherwise decode it with no size check first.

    Raises
    ------
    ImageError
        Not an image Pillow can identify.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit; ours (lower) is applied by the caller.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _open_size(Image.open, data)
    except Image.DecompressionBombError as exc:
        # Pillow refuses beyond twice its limit before telling us the size.
        raise ImageError(f"image is too large ({exc}): {source}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        # Unreadable to Pillow (e.g. a header with nothing after it): say "too large" when the
        # header alone says so, "unreadable" otherwise.
        size = _marker_size(data)
        if size is not None:
            _check_size(size[0], size[1], source, MAX_PIXELS)
        raise ImageError(MSG_IMAGE_UNREADABLE.format(path=source)) from None


def _marker_size(data: bytes) -> tuple[int, int] | None:
    """Width and height read by hand from a PNG IHDR or a JPEG SOF segment (or None)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            # SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC) carry the frame size
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height = int.from_bytes(data[i + 5 : i + 7], "big")
                width = int.from_bytes(data[i + 7 : i + 9], "big")
                return width, height
            i += 2 + length
    return None


def _open_size(open_image: Callable[[io.BytesIO], Any], data: bytes) -> tuple[int, int]:
    # The first frame only: OpenCV's imdecode decodes the first frame (GIF, TIFF pages), and
    # seeking to later frames would make Pillow decode the earlier ones.
    with open_image(io.BytesIO(data)) as image:
        width, height = image.size
    return int(width), int(height)


def decode_image(
    data: bytes, source: str = "<bytes>", *, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, BMP, WebP…) to RGB uint8.

    The size is read from the header first (:func:`_header_size`, every format), so an image
    over ``max_pixels`` is refused before any pixel is decoded.

    Raises
    ------
    ImageError
        If the bytes are empty, not an image, corrupt, or the image exceeds ``max_pixels``.
    """
    if len(data) == 0:
        raise ImageError(MSG_IMAGE_EMPTY.format(path=source))
    width, height = _header_size(data, source)
    _check_size(width, height, source, max_pixels)
    # OpenCV is imported here, not at module level: `lfr_eval.faces` types are used by the metrics
    # and the CLI, which must not pay for loading OpenCV (tests/test_imports.py)
    import cv2

    buffer = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageError(MSG_IMAGE_UNREADABLE.format(path=source))
    _check_size(bgr.shape[1], bgr.shape[0], source, max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_image(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 ``(height, width, 3)``.

    Raises
    ------
    ImageError
        Missing file, zero-byte file, non-image, corrupt data, or more than ``max_pixels``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(MSG_IMAGE_MISSING.format(path=path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror}") from exc
    return decode_image(data, str(path), max_pixels=max_pixels)


def ensure_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Check an in-memory image is ``(H, W, 3)`` uint8 (grey is expanded, RGBA drops alpha)."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy image array, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(f"expected an image of shape (H, W, 3), got {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {image.dtype}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ImageError(f"image is too small to hold a face: {image.shape[1]}x{image.shape[0]}")
    return np.ascontiguousarray(image)
