"""Load a dataset laid out as one sub-folder per subject."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from lfr_eval.datasets._manifest import UNKNOWN, Manifest, ManifestWarning
from lfr_eval.errors import ManifestError
from lfr_eval.wording import plural

#: File name endings treated as images (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

MSG_NOT_A_FOLDER = "dataset folder not found: {root}"
MSG_NO_IMAGES = (
    "no images found in {root}: expected one sub-folder per subject holding that subject's "
    "images ({extensions})"
)
MSG_LOOSE_FILES = (
    "{count} directly in {root}, not in a subject's sub-folder, {are} ignored, e.g. {example}"
)
MSG_ATTRIBUTES_NO_SUBJECT = (
    "subject attribute table {source} needs a 'subject_id' column naming the sub-folders"
)
MSG_ATTRIBUTES_UNMATCHED = (
    "{count} in {source} without a sub-folder {are} ignored, e.g. {examples}"
)


def _read_subject_table(
    attributes: str | os.PathLike[str] | pd.DataFrame,
) -> tuple[pd.DataFrame, str]:
    if isinstance(attributes, pd.DataFrame):
        return attributes.copy(), "<attributes table>"
    path = Path(attributes)
    if not path.is_file():
        raise ManifestError(f"subject attribute table not found: {path}")
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]), str(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path), str(path)
    raise ManifestError(f"subject attribute table must be .csv or .parquet: {path}")


def load_folder(
    root: str | os.PathLike[str],
    *,
    attributes: str | os.PathLike[str] | pd.DataFrame | None = None,
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
    name: str | None = None,
) -> Manifest:
    """Build a manifest from ``root/<subject_id>/<any name>.<image extension>``.

    Images in nested folders below a subject's folder belong to that subject.

    Parameters
    ----------
    root : path-like
        The dataset folder.
    attributes : path-like or DataFrame, optional
        A per-subject table (CSV/Parquet or DataFrame) with a ``subject_id`` column and one
        column per attribute (``sex``, ``ethnicity`` …). Subjects missing from it get
        ``"unknown"``.
    extensions : tuple of str
        File endings counted as images.
    name : str, optional
        Dataset name for reports (default: the folder's name).

    Raises
    ------
    ManifestError
        The folder does not exist or holds no images in sub-folders.
    """
    root_path = Path(root).expanduser().resolve()
    if not root_path.is_dir():
        raise ManifestError(MSG_NOT_A_FOLDER.format(root=root_path))
    lowered = tuple(e.lower() for e in extensions)
    loose = sorted(
        p.name for p in root_path.iterdir() if p.is_file() and p.suffix.lower() in lowered
    )
    if loose:
        warnings.warn(
            MSG_LOOSE_FILES.format(
                count=plural(len(loose), "image"),
                are=plural(len(loose), "is", number=False),
                root=root_path,
                example=loose[0],
            ),
            ManifestWarning,
            stacklevel=2,
        )
    rows: list[tuple[str, str]] = []
    for subject_dir in sorted(p for p in root_path.iterdir() if p.is_dir()):
        if subject_dir.name.startswith("."):
            continue
        for path in sorted(subject_dir.rglob("*")):
            if path.is_file() and path.suffix.lower() in lowered and not path.name.startswith("."):
                rows.append((path.relative_to(root_path).as_posix(), subject_dir.name))
    if not rows:
        raise ManifestError(MSG_NO_IMAGES.format(root=root_path, extensions=", ".join(extensions)))
    frame = pd.DataFrame(rows, columns=["path", "subject_id"])
    if attributes is not None:
        table, source = _read_subject_table(attributes)
        if "subject_id" not in table.columns:
            raise ManifestError(MSG_ATTRIBUTES_NO_SUBJECT.format(source=source))
        table["subject_id"] = table["subject_id"].astype(str)
        table = table.drop_duplicates("subject_id").set_index("subject_id")
        unmatched = sorted(set(table.index) - set(frame["subject_id"]))
        if unmatched:
            warnings.warn(
                MSG_ATTRIBUTES_UNMATCHED.format(
                    count=plural(len(unmatched), "subject"),
                    are=plural(len(unmatched), "is", number=False),
                    source=source,
                    examples=", ".join(unmatched[:3]),
                ),
                ManifestWarning,
                stacklevel=2,
            )
        for column in table.columns:
            if column in ("path", "image_sha256"):
                continue
            frame[column] = frame["subject_id"].map(table[column]).fillna(UNKNOWN)
    return Manifest.from_frame(
        frame, root=root_path, name=name or root_path.name, check_files=False, source=str(root_path)
    )
