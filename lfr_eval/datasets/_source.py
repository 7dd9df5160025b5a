"""Open whatever the user points at: a manifest file, an LFW folder or a folder per subject."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lfr_eval.datasets._folder import load_folder
from lfr_eval.datasets._lfw import LFW_IMAGE_FOLDERS, load_lfw
from lfr_eval.datasets._manifest import UNKNOWN, Manifest, ManifestWarning, read_manifest
from lfr_eval.errors import ManifestError
from lfr_eval.wording import plural

Layout = Literal["auto", "manifest", "lfw", "folder"]
LAYOUTS: tuple[str, ...] = ("auto", "manifest", "lfw", "folder")

MSG_LFW_NOT_FOUND = (
    "LFW not found at {path}: set LFR_LFW_DIR (or LFW_DIR in the parameter cell) to your LFW "
    "folder, or DATA to a manifest file; see datasets/README.md"
)
MSG_MISSING_ATTRIBUTES = "the data have no {columns} {missing}; they have {attributes}"


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


def load_dataset_subset(
    data: str | os.PathLike[str] | None,
    lfw_dir: str | os.PathLike[str],
    *,
    subset: int | None = None,
    seed: int = 0,
    max_images_per_subject: int | None = None,
    required_attributes: Sequence[str] = (),
    labelled_by: str | None = None,
) -> Manifest:
    """A study's data (the notebooks' first cell): ``data`` if given, else LFW at
    ``lfw_dir``, optionally cut to a random subset of whole subjects.

    Parameters
    ----------
    data : path-like, optional
        A manifest file, an LFW copy or a folder per subject (layout detected, see
        :func:`load_dataset`); None reads LFW from ``lfw_dir``.
    lfw_dir : path-like
        The LFW folder (either layout), used when ``data`` is None.
    subset : int, optional
        At most about this many images, whole subjects drawn at random with ``seed`` (see
        :meth:`Manifest.limit_subjects`: a subject is never split). None or 0: every image.
    seed : int
        Seed of the subset.
    max_images_per_subject : int, optional
        With ``subset``: each subject's first that many images only, which spreads the budget
        over more people.
    required_attributes : sequence of str
        Group columns the data must have (checked before any subset is drawn).
    labelled_by : str, optional
        With ``subset``: draw only images whose label in this column is known (not
        ``"unknown"``), so that its groups are not empty. Without ``subset`` unlabelled images
        are kept as ``"unknown"``.

    Raises
    ------
    ManifestError
        ``data`` is None and ``lfw_dir`` is not a folder (the message says how to point at
        LFW), ``data`` cannot be read, or a required column is missing.
    """
    if data is not None:
        manifest = load_dataset(data)
    elif Path(lfw_dir).is_dir():
        manifest = load_lfw(lfw_dir)
    else:
        raise ManifestError(MSG_LFW_NOT_FOUND.format(path=Path(lfw_dir).resolve()))
    required = list(dict.fromkeys([*required_attributes, *([labelled_by] if labelled_by else [])]))
    missing = [a for a in required if a not in manifest.attributes]
    if missing:
        raise ManifestError(
            MSG_MISSING_ATTRIBUTES.format(
                columns=plural(len(missing), "column", number=False),
                missing=", ".join(missing),
                attributes=", ".join(manifest.attributes) or "none",
            )
        )
    if subset:
        if labelled_by is not None:
            manifest = manifest.select(manifest.frame[labelled_by].to_numpy() != UNKNOWN)
        manifest = manifest.limit_subjects(
            subset, seed=seed, max_images_per_subject=max_images_per_subject
        )
    return manifest


@dataclass(frozen=True)
class OpenedDataset:
    """A dataset opened for an evaluation or an embedding run.

    Attributes
    ----------
    manifest : Manifest
        The images, subjects and group labels (a subset of whole subjects with ``limit``).
    layout : str
        The layout used: ``"manifest"``, ``"lfw"`` or ``"folder"`` (decided when ``"auto"``).
    warnings : tuple of str
        What :class:`ManifestWarning` said while reading (show them to the user).
    face_choice : {"central", "largest"}
        Which face stands for an image with several (:func:`default_face_choice`).
    """

    manifest: Manifest
    layout: str
    warnings: tuple[str, ...] = ()
    face_choice: Literal["largest", "central"] = "largest"

    def describe(self) -> str:
        """``dataset NAME (LAYOUT): N images of M subjects; attributes: ...``."""
        m = self.manifest
        return (
            f"dataset {m.name} ({self.layout}): {plural(m.n_images, 'image')} of "
            f"{plural(m.n_subjects, 'subject')}; attributes: {', '.join(m.attributes) or 'none'}"
        )


def default_face_choice(
    layout: str, face_choice: Literal["largest", "central"] | None = None
) -> Literal["largest", "central"]:
    """The face standing for an image with several: ``face_choice`` if given, else the central
    one for LFW (its subject is centred, bystanders sit at the edges), else the largest."""
    if face_choice is not None:
        return face_choice
    return "central" if layout == "lfw" else "largest"


def open_dataset(
    source: str | os.PathLike[str],
    layout: str = "auto",
    *,
    labels: str | os.PathLike[str] | None = None,
    attributes: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    face_choice: Literal["largest", "central"] | None = None,
) -> OpenedDataset:
    """Open a dataset as the CLI's ``evaluate``/``embed`` and the app's Evaluate page do.

    Parameters
    ----------
    source : path
        A manifest (.csv/.parquet), an LFW copy or a folder per subject.
    layout : {"auto", "manifest", "lfw", "folder"}
        ``"auto"`` decides from the path (:func:`detect_layout`).
    labels, attributes : path, optional
        LFW labels folder; per-subject attribute table for the folder layout.
    limit : int, optional
        Keep a seeded random subset of whole subjects with at most this many images.
    seed : int
        Seed of that subset.
    face_choice : {"largest", "central"}, optional
        Override :func:`default_face_choice`.

    Raises
    ------
    ManifestError
        The source cannot be read as a dataset.
    """
    chosen = detect_layout(source) if layout == "auto" else layout
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ManifestWarning)
        manifest = load_dataset(source, chosen, labels=labels, attributes=attributes)  # type: ignore[arg-type]
        if limit is not None and limit < manifest.n_images:
            manifest = manifest.limit_subjects(limit, seed=seed)
    said = tuple(str(w.message) for w in caught if issubclass(w.category, ManifestWarning))
    return OpenedDataset(
        manifest=manifest,
        layout=chosen,
        warnings=said,
        face_choice=default_face_choice(chosen, face_choice),
    )
