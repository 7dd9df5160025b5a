"""Open whatever the user points at: a manifest file, an LFW folder or a folder per subject."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from lfr_eval.datasets._folder import load_folder
from lfr_eval.datasets._lfw import LFW_IMAGE_FOLDERS, load_lfw
from lfr_eval.datasets._manifest import Manifest, read_manifest
from lfr_eval.errors import ManifestError

Layout = Literal["auto", "manifest", "lfw", "folder"]
LAYOUTS: tuple[str, ...] = ("auto", "manifest", "lfw", "folder")


def detect_layout(source: str | os.PathLike[str]) -> str:
    """``"manifest"`` for a .csv/.parquet file; ``"lfw"`` for a folder holding ``images/`` or
    an LFW archive folder (``lfw``, ``lfw-deepfunneled`` …) or named like one; else
    ``"folder"``.

    Raises
    ------
    ManifestError
        The path does not exist, or is a file of another kind.
    """
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix.lower() in (".csv", ".parquet", ".pq"):
            return "manifest"
        raise ManifestError(f"{path} is neither a manifest (.csv/.parquet) nor a folder of images")
    if not path.is_dir():
        raise ManifestError(f"dataset not found: {path}")
    if any((path / name).is_dir() for name in LFW_IMAGE_FOLDERS):
        return "lfw"
    if path.name.lower().startswith("lfw"):
        return "lfw"
    return "folder"


def load_dataset(
    source: str | os.PathLike[str],
    layout: Layout = "auto",
    *,
    labels: str | os.PathLike[str] | None = None,
    attributes: str | os.PathLike[str] | None = None,
) -> Manifest:
    """A manifest from a manifest file, an LFW folder (either layout) or a folder per subject.

    Parameters
    ----------
    source : path-like
    layout : {"auto", "manifest", "lfw", "folder"}
        ``"auto"`` uses :func:`detect_layout`.
    labels : path-like, optional
        LFW labels folder (default ``<source>/labels``).
    attributes : path-like, optional
        Per-subject attribute table for the folder layout.
    """
    chosen = detect_layout(source) if layout == "auto" else layout
    if chosen == "manifest":
        return read_manifest(source)
    if chosen == "lfw":
        return load_lfw(source, labels=labels)
    if chosen == "folder":
        return load_folder(source, attributes=attributes)
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
