"""Run the converted networks on onnxruntime or PyTorch, CPU or CUDA, and say honestly where.

:class:`DescriptorRunner` turns 150x150 chips into dlib's 128-d descriptors;
:class:`MmodRunner` finds faces with the converted MMOD detector (pyramid, network, decoding).
Neither needs dlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from lfr_eval.errors import ImageError, RuntimeUnavailableError
from lfr_eval.faces._torch_fp32 import true_fp32
from lfr_eval.faces._types import RuntimeInfo
from lfr_eval.faces.dlib_convert._cache import ConvertedModel
from lfr_eval.faces.dlib_convert._mmod import (
    Detections,
    MmodScoreNet,
    build_pyramid,
    decode,
    output_to_input_map,
    pyramid_up_rgb,
    rect_down,
)
from lfr_eval.faces.dlib_convert._onnx import (
    MMOD_INPUT,
    RESNET_INPUT,
    ort_session,
)
from lfr_eval.faces.dlib_convert._resnet import CHIP_SIZE, DESCRIPTOR_DIM
from lfr_eval.faces.dlib_convert._serialize import DlibNetwork, MmodLoss

Runtime = Literal["onnxruntime", "torch"]
Device = Literal["cpu", "cuda"]
Precision = Literal["fp32", "fp16"]

MSG_BAD_OPTION = "{name} must be one of {choices}, got {value!r}"
MSG_FP16_NEEDS_TORCH_CUDA = (
    "fp16 runs only with runtime='torch' on device='cuda' (asked: runtime={runtime!r}, "
    "device={device!r}); use precision='fp32'."
)
MSG_TORCH_NO_CUDA = (
    "PyTorch cannot use CUDA here (torch {version}, torch.cuda.is_available() is False); "
    "use device='cpu' or install a CUDA build of torch on a machine with a GPU."
)


@dataclass(frozen=True)
class RuntimeChoice:
    """A checked (runtime, device, precision) triple."""

    runtime: Runtime
    device: Device
    precision: Precision

    @classmethod
    def check(cls, runtime: str, device: str, precision: str) -> RuntimeChoice:
        """Validate the request.

        Raises
        ------
        RuntimeUnavailableError
            Unknown names, fp16 outside torch+CUDA, or CUDA asked for and not usable.
        """
        for name, value, choices in (
            ("runtime", runtime, ("onnxruntime", "torch")),
            ("device", device, ("cpu", "cuda")),
            ("precision", precision, ("fp32", "fp16")),
        ):
            if value not in choices:
                raise RuntimeUnavailableError(
                    MSG_BAD_OPTION.format(name=name, choices=choices, value=value)
                )
        if precision == "fp16" and (runtime != "torch" or device != "cuda"):
            raise RuntimeUnavailableError(
                MSG_FP16_NEEDS_TORCH_CUDA.format(runtime=runtime, device=device)
            )
        if runtime == "torch" and device == "cuda" and not torch.cuda.is_available():
            raise RuntimeUnavailableError(MSG_TORCH_NO_CUDA.format(version=torch.__version__))
        return cls(runtime, device, precision)  # type: ignore[arg-type]


def _torch_device(choice: RuntimeChoice) -> torch.device:
    return (
        torch.device("cuda", torch.cuda.current_device())
        if choice.device == "cuda"
        else (torch.device("cpu"))
    )


def _runtime_info(choice: RuntimeChoice, session: Any = None) -> RuntimeInfo:
    if choice.runtime == "onnxruntime":
        import onnxruntime as ort

        providers = tuple(session.get_providers()) if session is not None else ()
        return RuntimeInfo(
            name="onnxruntime",
            providers=providers,
            gpu_requested=choice.device == "cuda",
            gpu_active=bool(providers) and providers[0] == "CUDAExecutionProvider",
            precision=choice.precision,
            version=ort.__version__,
        )
    device = _torch_device(choice)
    label = (
        f"cuda:{device.index} ({torch.cuda.get_device_name(device)})"
        if (device.type == "cuda")
        else "cpu"
    )
    return RuntimeInfo(
        name="torch",
        providers=(label,),
        gpu_requested=choice.device == "cuda",
        gpu_active=device.type == "cuda",
        precision=choice.precision,
        version=torch.__version__,
    )


_Module = TypeVar("_Module", bound=torch.nn.Module)


def _prepare_torch(module: _Module, choice: RuntimeChoice) -> _Module:
    module = module.to(_torch_device(choice))
    if choice.precision == "fp16":
        module = module.half()
    return module.eval()


class DescriptorRunner:
    """dlib's face descriptor on the converted ResNet.

    Parameters
    ----------
    converted : ConvertedModel
        From :func:`~lfr_eval.faces.dlib_convert.convert_dlib_model` with ``kind="resnet"``.
    runtime, device, precision : see :class:`RuntimeChoice`.

    Attributes
    ----------
    runtime_info : RuntimeInfo
        What really runs the network (providers as the runtime reports them).
    model_file : pathlib.Path or None
        The converted file actually loaded (``.onnx`` or ``.pt``); None for
        :meth:`from_module`.
    """

    def __init__(
        self,
        converted: ConvertedModel,
        runtime: str = "onnxruntime",
        device: str = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.choice = RuntimeChoice.check(runtime, device, precision)
        self.converted: ConvertedModel | None = converted
        self.model_file: Path | None
        self._session: Any = None
        self._module: torch.nn.Module | None = None
        if self.choice.runtime == "onnxruntime":
            self._session = ort_session(converted.onnx_path, self.choice.device)
            self.model_file = converted.onnx_path
        else:
            self._module = _prepare_torch(converted.torch_module(), self.choice)
            self._device = _torch_device(self.choice)
            self.model_file = converted.torch_path
        self.runtime_info = _runtime_info(self.choice, self._session)

    @classmethod
    def from_module(
        cls, module: torch.nn.Module, device: str = "cpu", precision: str = "fp32"
    ) -> DescriptorRunner:
        """Run a module built in memory (e.g. ``load_resnet(path)``) with PyTorch.

        No cache and no ONNX involved (``model_file`` and ``converted`` are None): for
        machines without the ``onnx`` package, e.g. a benchmark run.
        """
        runner = cls.__new__(cls)
        runner.choice = RuntimeChoice.check("torch", device, precision)
        runner.converted = None
        runner._session = None
        runner._module = _prepare_torch(module, runner.choice)
        runner._device = _torch_device(runner.choice)
        runner.model_file = None
        runner.runtime_info = _runtime_info(runner.choice)
        return runner

    def __call__(
        self, chips: np.ndarray | Sequence[np.ndarray], *, batch_size: int = 32
    ) -> np.ndarray:
        """Raw 128-d descriptors of 150x150 RGB uint8 chips, ``(n, 128)`` float32.

        Raises
        ------
        ImageError
            A chip is not (150, 150, 3) uint8.
        """
        batch = _as_chip_array(chips)
        if len(batch) == 0:
            return np.zeros((0, DESCRIPTOR_DIM), np.float32)
        step = max(1, int(batch_size))
        out = [self._run(batch[i : i + step]) for i in range(0, len(batch), step)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def _run(self, chips: np.ndarray) -> np.ndarray:
        if self._session is not None:
            descriptors: np.ndarray = self._session.run(None, {RESNET_INPUT: chips})[0]
            return descriptors
        assert self._module is not None
        with torch.inference_mode(), true_fp32(self.choice.device, self.choice.precision):
            x = torch.from_numpy(chips).to(self._device, non_blocking=True)
            out: np.ndarray = self._module(x).cpu().numpy()
            return out


def _as_chip_array(chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(chips, np.ndarray) and chips.ndim == 4:
        batch = chips
    else:
        items = list(chips)
        if not items:
            return np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
        for chip in items:
            if not isinstance(chip, np.ndarray) or chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
                shape = getattr(chip, "shape", type(chip).__name__)
                raise ImageError(
                    f"dlib's descriptor needs 150x150x3 uint8 RGB chips (dlib.get_face_chip, "
                    f"padding 0.25); got {shape}"
                )
        batch = np.stack(items)
    if batch.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3) or batch.dtype != np.uint8:
        raise ImageError(
            f"dlib's descriptor needs 150x150x3 uint8 RGB chips; got {batch.shape[1:]} "
            f"{batch.dtype}"
        )
    return np.ascontiguousarray(batch)


class MmodRunner:
    """dlib's MMOD CNN face detector, converted: same boxes as
    ``dlib.cnn_face_detection_model_v1(path)(image, upsample)``.

    The image pyramid is built with PyTorch on the chosen device (on the CPU for onnxruntime),
    the score network runs on the chosen runtime, and the few cells above the threshold are
    decoded on the CPU.

    Parameters
    ----------
    converted : ConvertedModel
        ``kind="mmod"``.
    runtime, device, precision : see :class:`RuntimeChoice`.
    """

    def __init__(
        self,
        converted: ConvertedModel,
        runtime: str = "onnxruntime",
        device: str = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.choice = RuntimeChoice.check(runtime, device, precision)
        self.converted: ConvertedModel | None = converted
        self.model_file: Path | None
        self._use_network(converted.network())
        self._session: Any = None
        self._module: MmodScoreNet | None = None
        if self.choice.runtime == "onnxruntime":
            self._session = ort_session(converted.onnx_path, self.choice.device)
            self._device = torch.device("cpu")
            self.model_file = converted.onnx_path
        else:
            module = converted.torch_module()
            assert isinstance(module, MmodScoreNet)
            self._module = _prepare_torch(module, self.choice)
            self._device = _torch_device(self.choice)
            self.model_file = converted.torch_path
        self.runtime_info = _runtime_info(self.choice, self._session)

    def _use_network(self, network: DlibNetwork) -> None:
        assert isinstance(network.loss, MmodLoss)
        self.loss: MmodLoss = network.loss
        self.input = network.input
        self.out_to_in = output_to_input_map(network)

    @classmethod
    def from_network(
        cls, network: DlibNetwork, device: str = "cpu", precision: str = "fp32"
    ) -> MmodRunner:
        """Run a parsed network (``load_mmod_network(path)``) with PyTorch, without the cache
        or ONNX (``model_file`` and ``converted`` are None)."""
        runner = cls.__new__(cls)
        runner.choice = RuntimeChoice.check("torch", device, precision)
        runner.converted = None
        runner._use_network(network)
        runner._session = None
        runner._module = _prepare_torch(MmodScoreNet(network), runner.choice)
        runner._device = _torch_device(runner.choice)
        runner.model_file = None
        runner.runtime_info = _runtime_info(runner.choice)
        return runner

    def detect(self, image: np.ndarray, *, upsample: int = 0, threshold: float = 0.0) -> Detections:
        """Faces in one RGB uint8 image ``(H, W, 3)``.

        Parameters
        ----------
        upsample : int >= 0
            Times the image is doubled first (dlib's ``upsample_num_times``).
        threshold : float
            Keep cells scoring above this (dlib's ``adjust_threshold``; default 0).

        Returns
        -------
        Detections
            dlib rectangles (inclusive) in the input image's pixels, best first.
        """
        return self.detect_batch(image[None], upsample=upsample, threshold=threshold)[0]

    def detect_batch(
        self, images: np.ndarray, *, upsample: int = 0, threshold: float = 0.0
    ) -> list[Detections]:
        """Faces in a batch of same-size RGB uint8 images ``(N, H, W, 3)``."""
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ImageError(
                f"expected (N, H, W, 3) uint8 RGB images, got {images.shape} {images.dtype}"
            )
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(images)).to(self._device)
            for _ in range(upsample):
                x = pyramid_up_rgb(x)
            canvas, layout = build_pyramid(
                x,
                self.input.mean_rgb,
                self.input.pyramid_padding,
                self.input.pyramid_outer_padding,
            )
            if layout.levels == 0:
                empty = Detections(np.zeros((0, 4), np.int64), np.zeros(0))
                return [empty for _ in range(len(images))]
            scores = self._scores(canvas)
            results = []
            for sample in scores:
                hits = sample > threshold
                cells = torch.nonzero(hits).cpu().numpy()
                values = sample[hits].double().cpu().numpy()
                found = decode(cells, values, layout, self.loss, self.out_to_in)
                if upsample:
                    found = Detections(rect_down(found.rects, upsample), found.scores)
                results.append(found)
        return results

    def _scores(self, canvas: torch.Tensor) -> torch.Tensor:
        if self._session is not None:
            out = self._session.run(None, {MMOD_INPUT: canvas.numpy()})[0]
            return torch.from_numpy(out)
        assert self._module is not None
        with true_fp32(self.choice.device, self.choice.precision):
            scores: torch.Tensor = self._module(canvas)
            return scores
