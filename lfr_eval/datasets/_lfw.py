"""Labeled Faces in the Wild (LFW): images, demographic labels and the verification pairs.

Two layouts are accepted:

- the project's copy (``../shared/datasets/lfw``): ``images/<Name>/<Name>_NNNN.jpg`` and
  ``labels/`` with ``male_names.txt``, ``female_names.txt``, ``race_by_person.json``,
  ``kumar_attributes_62people.csv`` and ``pairs.txt``;
- a user's own download, as unpacked from ``lfw.tgz`` / ``lfw-deepfunneled.tgz``: the person
  folders directly in the folder given (or in an ``lfw``/``lfw-deepfunneled``/``lfw_funneled``
  folder inside it), optionally with ``pairs.txt`` beside them. With no ``labels`` folder every
  image's sex and ethnicity are ``"unknown"`` (a warning says so); nothing is dropped.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lfr_eval.datasets._manifest import UNKNOWN, Manifest, ManifestWarning
from lfr_eval.errors import ManifestError
from lfr_eval.wording import plural

#: Folder names an LFW archive unpacks to.
LFW_IMAGE_FOLDERS = (
    "images",
    "lfw-deepfunneled",
    "lfw_deepfunneled",
    "lfw-funneled",
    "lfw_funneled",
    "lfw",
)

_IMAGE_NAME = re.compile(r"^(?P<name>.+)_(?P<number>\d{4})\.jpg$")

MSG_NOT_LFW = (
    "no LFW images found in {root}: expected person folders like 'George_W_Bush/"
    "George_W_Bush_0001.jpg' in it, or in one of its sub-folders {folders}"
)
MSG_NO_LABELS = (
    "no LFW labels folder at {labels}: sex and ethnicity are 'unknown' for every image. "
    "Put male_names.txt, female_names.txt and race_by_person.json there to get groups"
)
MSG_NO_PAIRS = (
    "LFW pairs file not found: looked for {candidates}; download pairs.txt from the LFW site "
    "and put it beside the images or in labels/"
)
MSG_BAD_PAIRS = "malformed LFW pairs file {path}, line {line}: {reason}"

#: Ethnicity label given to people with more than one label in ``race_by_person.json``.
MIXED = "mixed"


def find_lfw_images(root: str | os.PathLike[str]) -> Path:
    """The folder holding LFW's person folders, for either layout.

    Raises
    ------
    ManifestError
        No LFW person folders were found.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ManifestError(f"LFW folder not found: {root}")
    candidates = [root / name for name in LFW_IMAGE_FOLDERS]
    # Kaggle's copy nests the archive folder once more (lfw-deepfunneled/lfw-deepfunneled/…).
    candidates += [c / c.name for c in candidates]
    candidates.append(root)
    for candidate in candidates:
        if candidate.is_dir() and _looks_like_lfw(candidate):
            return candidate
    raise ManifestError(MSG_NOT_LFW.format(root=root, folders=", ".join(LFW_IMAGE_FOLDERS)))


def _looks_like_lfw(folder: Path) -> bool:
    for person in folder.iterdir():
        if person.is_dir():
            first = person / f"{person.name}_0001.jpg"
            if first.is_file():
                return True
    return False


def _read_names(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _sex_labels(labels: Path, files: pd.Series) -> pd.Series:
    male = _read_names(labels / "male_names.txt")
    female = _read_names(labels / "female_names.txt")
    is_male = files.isin(male)
    is_female = files.isin(female)
    # Names in both lists or in neither are unknown: a wrong label is worse than none.
    sex = np.where(is_male & ~is_female, "male", np.where(is_female & ~is_male, "female", UNKNOWN))
    return pd.Series(sex, index=files.index, dtype=object)


def _ethnicity_labels(labels: Path, people: pd.Series) -> pd.Series:
    table: dict[str, str] = json.loads((labels / "race_by_person.json").read_text())
    mapped = {
        name: (MIXED if "," in value else value.strip()) for name, value in table.items() if value
    }
    return people.map(mapped).fillna(UNKNOWN).astype(object)


def _age_band_labels(labels: Path, people: pd.Series, numbers: pd.Series) -> pd.Series:
    """Age band per image from Kumar et al.'s attribute scores: the highest of Youth,
    Middle Aged, Senior (scores are classifier margins; only 62 people are covered)."""
    kumar = pd.read_csv(labels / "kumar_attributes_62people.csv")
    bands = {"Youth": "youth", "Middle.Aged": "middle_aged", "Senior": "senior"}
    best = kumar[list(bands)].idxmax(axis=1).map(bands)
    key = kumar["person"].str.replace(" ", "_") + "#" + kumar["imagenum"].astype(int).astype(str)
    lookup = dict(zip(key, best, strict=True))
    image_key = people + "#" + numbers.astype(int).astype(str)
    return image_key.map(lookup).fillna(UNKNOWN).astype(object)


def load_lfw(
    root: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    age_band: bool = False,
) -> Manifest:
    """Load LFW as a manifest with ``sex`` and ``ethnicity`` columns (``"unknown"`` where
    unlabelled).

    Parameters
    ----------
    root : path-like
        The LFW folder (either layout, see the module docstring).
    labels : path-like, optional
        Folder with the label files; default ``<root>/labels``.
    age_band : bool
        Add an ``age_band`` column (``youth``/``middle_aged``/``senior``) from the Kumar
        attribute scores; only 2,999 images of 62 people are covered, the rest are unknown.

    Returns
    -------
    Manifest
        ``subject_id`` is the person's folder name; ``sex`` is ``male``/``female`` by image
        (names in both or neither list are unknown); ``ethnicity`` is the person's label from
        ``race_by_person.json``, or ``"mixed"`` for people with several labels.

    Warns
    -----
    ManifestWarning
        No labels folder (all labels unknown); subjects with a single image.
    """
    root_path = Path(root).expanduser().resolve()
    images = find_lfw_images(root_path)
    rows = []
    for person in sorted(p for p in images.iterdir() if p.is_dir()):
        for file in sorted(person.iterdir()):
            match = _IMAGE_NAME.match(file.name)
            if match and file.is_file():
                rows.append(
                    (f"{person.name}/{file.name}", person.name, file.name, int(match["number"]))
                )
    frame = pd.DataFrame(rows, columns=["path", "subject_id", "file", "number"])
    labels_dir = Path(labels).expanduser() if labels is not None else root_path / "labels"
    if labels_dir.is_dir() and (labels_dir / "male_names.txt").is_file():
        frame["sex"] = _sex_labels(labels_dir, frame["file"])
        if (labels_dir / "race_by_person.json").is_file():
            frame["ethnicity"] = _ethnicity_labels(labels_dir, frame["subject_id"])
        else:
            frame["ethnicity"] = UNKNOWN
        if age_band:
            if (labels_dir / "kumar_attributes_62people.csv").is_file():
                frame["age_band"] = _age_band_labels(
                    labels_dir, frame["subject_id"], frame["number"]
                )
            else:
                frame["age_band"] = UNKNOWN
    else:
        warnings.warn(MSG_NO_LABELS.format(labels=labels_dir), ManifestWarning, stacklevel=2)
        frame["sex"] = UNKNOWN
        frame["ethnicity"] = UNKNOWN
        if age_band:
            frame["age_band"] = UNKNOWN
    frame = frame.drop(columns=["file", "number"])
    with warnings.catch_warnings():
        # LFW's 4,069 one-image people are expected; they serve as non-mated searches.
        warnings.simplefilter("ignore", ManifestWarning)
        return Manifest.from_frame(
            frame, root=images, name="lfw", check_files=False, source=str(images)
        )


@dataclass(frozen=True)
class VerificationPairs:
    """A 1:1 verification protocol: pairs of images, mated (same person) or not.

    Attributes
    ----------
    frame : DataFrame
        Columns ``fold`` (0-based), ``path_a``, ``path_b`` (relative to :attr:`root`),
        ``subject_a``, ``subject_b`` and ``mated`` (bool).
    root : Path
        Folder the paths are relative to.
    """

    frame: pd.DataFrame
    root: Path

    @property
    def n_folds(self) -> int:
        return int(self.frame["fold"].nunique())

    @property
    def mated(self) -> np.ndarray:
        mated: np.ndarray = self.frame["mated"].to_numpy(dtype=bool)
        return mated

    def image_paths(self) -> list[str]:
        """Every distinct relative image path the pairs use, sorted."""
        return sorted(set(self.frame["path_a"]) | set(self.frame["path_b"]))


def _image_path(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_lfw_pairs(
    root: str | os.PathLike[str], *, pairs_file: str | os.PathLike[str] | None = None
) -> VerificationPairs:
    """Read LFW's ``pairs.txt`` (10 folds × (300 mated + 300 non-mated pairs)).

    Parameters
    ----------
    root : path-like
        The LFW folder (either layout).
    pairs_file : path-like, optional
        The pairs file; default ``<root>/labels/pairs.txt``, else ``<root>/pairs.txt``.

    Raises
    ------
    ManifestError
        No pairs file, a malformed line, or a pair naming an image that does not exist.
    """
    root_path = Path(root).expanduser().resolve()
    images = find_lfw_images(root_path)
    if pairs_file is not None:
        candidates = [Path(pairs_file)]
    else:
        candidates = [
            root_path / "labels" / "pairs.txt",
            root_path / "pairs.txt",
            images.parent / "pairs.txt",
        ]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise ManifestError(MSG_NO_PAIRS.format(candidates=", ".join(map(str, candidates))))
    lines = path.read_text().splitlines()
    try:
        n_folds, per_fold = (int(v) for v in lines[0].split())
    except (ValueError, IndexError) as exc:
        raise ManifestError(
            MSG_BAD_PAIRS.format(path=path, line=1, reason="expected '<folds> <pairs per fold>'")
        ) from exc
    expected = n_folds * per_fold * 2
    body = [line.split() for line in lines[1:] if line.strip()]
    if len(body) != expected:
        raise ManifestError(
            MSG_BAD_PAIRS.format(
                path=path, line=len(lines), reason=f"expected {expected} pairs, found {len(body)}"
            )
        )
    rows = []
    for i, fields in enumerate(body):
        fold = i // (2 * per_fold)
        if len(fields) == 3:
            name, a, b = fields
            rows.append((fold, _image_path(name, a), _image_path(name, b), name, name, True))
        elif len(fields) == 4:
            name_a, a, name_b, b = fields
            rows.append(
                (fold, _image_path(name_a, a), _image_path(name_b, b), name_a, name_b, False)
            )
        else:
            raise ManifestError(
                MSG_BAD_PAIRS.format(path=path, line=i + 2, reason="expected 3 or 4 fields")
            )
    frame = pd.DataFrame(
        rows, columns=["fold", "path_a", "path_b", "subject_a", "subject_b", "mated"]
    )
    pairs = VerificationPairs(frame=frame, root=images)
    missing = [p for p in pairs.image_paths() if not (images / p).is_file()]
    if missing:
        raise ManifestError(
            f"LFW pairs file {path} names {plural(len(missing), 'image')} not found under "
            f"{images}, e.g. {missing[0]}"
        )
    return pairs
