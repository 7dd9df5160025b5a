"""The dataset manifest: which image shows whom, and under which demographic or capture conditions.

A manifest is a table with one row per image:

- ``path`` — the image file, relative to the manifest's root folder (or absolute);
- ``subject_id`` — who is in the image (any string; one person, one id);
- any number of **attribute** columns (``sex``, ``ethnicity``, ``age_band``, ``capture`` …) whose
  values are group labels. A missing label is the string ``"unknown"``: rows are never dropped
  because a label is missing, so every image still counts in the overall figures;
- optionally ``role`` — what the image is for in a protocol: ``enrol`` (a watchlist template),
  ``mated`` (a search for an enrolled subject), ``non_mated`` (a stranger's search) or
  ``filler`` (a gallery entry never searched: the NPL design's filler set, or padding of an
  open-set watchlist). Roles override the seeded split for the subjects that have them;
  subjects without roles are split by the seed as usual. Per subject the roles must be one of
  {enrol}, {enrol, mated}, {non_mated} or {filler} (a stranger is never on the watchlist).

Manifests are read from CSV or Parquet (:func:`read_manifest`) or built by the loaders
(:func:`~lfr_eval.datasets.load_folder`, :func:`~lfr_eval.datasets.load_lfw`).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from lfr_eval.errors import ManifestError
from lfr_eval.faces import sha256_file
from lfr_eval.wording import plural

#: Label used for a missing attribute value.
UNKNOWN = "unknown"

#: Columns every manifest has.
REQUIRED_COLUMNS = ("path", "subject_id")

#: Optional column fixing each image's protocol role.
ROLE_COLUMN = "role"

#: Roles an image can have (see the module docstring).
ROLES = ("enrol", "mated", "non_mated", "filler")

#: Role sets a subject may have: on the watchlist (templates, maybe searches), a stranger, or a
#: filler.
ALLOWED_SUBJECT_ROLES = (
    frozenset({"enrol"}),
    frozenset({"enrol", "mated"}),
    frozenset({"non_mated"}),
    frozenset({"filler"}),
)

#: Columns with a fixed meaning that are not group attributes.
RESERVED_COLUMNS = ("path", "subject_id", "image_sha256", ROLE_COLUMN)

MSG_MISSING_COLUMNS = (
    "manifest {source} lacks the {columns} {missing}; a manifest needs 'path' (image file, "
    "relative to the manifest's folder) and 'subject_id' (who is in the image). Columns found: "
    "{found}"
)
MSG_EMPTY = "manifest {source} has no rows: list at least one image per line"
MSG_BLANK_FIELD = (
    "manifest {source} has {count} with an empty '{column}' (first at row {first}); "
    "fill it in or delete those rows"
)
MSG_UNKNOWN_PATHS = (
    "manifest {source}: {count} not found under {root}, e.g. {examples}; "
    "check the paths are relative to the manifest's folder, or absolute"
)
MSG_DUPLICATE_PATHS = (
    "manifest {source} lists {count} more than once, e.g. {examples}; "
    "each image must appear on exactly one row"
)
MSG_BAD_FORMAT = "cannot read manifest {source}: expected a .csv or .parquet file"
MSG_UNREADABLE = "cannot read manifest {source}: {reason}"
MSG_SINGLETONS = (
    "{count} of {total} {have} only one image: usable as non-mated searches but never "
    "enrolled (an enrolled subject needs a second image to search with)"
)
MSG_DUPLICATE_CONTENT = (
    "{count} {have} the same content as another row, e.g. {examples}; identical images "
    "inflate mated scores (and are a labelling error when the subjects differ)"
)
MSG_INCONSISTENT_SUBJECT_LABEL = (
    "attribute '{column}' differs between images of {count}, e.g. {examples}; "
    "per-subject grouping uses each subject's most common label"
)


MSG_BAD_ROLE = (
    "manifest {source} has {count} with an unknown role, e.g. {examples} (first at row "
    "{first}); roles are enrol, mated, non_mated and filler (or empty for the seeded split)"
)
MSG_PARTIAL_ROLES = (
    "manifest {source}: {count} {have} a role on some images but not others, e.g. "
    "{examples}; give every image of a subject a role, or none"
)
MSG_MIXED_ROLES = (
    "manifest {source}: {count} {mix} roles that cannot go together, e.g. {examples}; "
    "a subject is on the watchlist (enrol, plus mated searches), a stranger (non_mated) or a "
    "filler, never two of these"
)


class ManifestWarning(UserWarning):
    """A manifest is usable but something about it will limit or bias an evaluation."""


def _relative(path: str, root: Path | None) -> str:
    """POSIX path of ``path`` relative to ``root`` when it lies under it (for stable hashes)."""
    p = Path(path)
    if root is not None and p.is_absolute():
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return p.as_posix()
    return p.as_posix()


def _add_labels(frame: pd.DataFrame, out: pd.DataFrame, source: str) -> None:
    """Copy the role column (checked) and the attribute columns (missing: "unknown")."""
    if ROLE_COLUMN in frame.columns:
        roles = _roles(frame[ROLE_COLUMN].reset_index(drop=True), out["subject_id"], source)
        if (roles != "").any():
            out[ROLE_COLUMN] = roles
    for column in (c for c in frame.columns if c not in RESERVED_COLUMNS):
        values = frame[column].reset_index(drop=True)
        text = values.astype(object).where(values.notna(), UNKNOWN).astype(str).str.strip()
        out[str(column)] = text.where(text != "", UNKNOWN).to_numpy(dtype=object)


def _roles(values: pd.Series, subjects: pd.Series, source: str) -> np.ndarray:
    """Normalised roles ("" for none), checked value by value and subject by subject."""
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip().str.lower()
    text = text.str.replace("-", "_").replace({"non mated": "non_mated", "enroll": "enrol"})
    bad = ~text.isin(["", *ROLES]).to_numpy()
    if bad.any():
        raise ManifestError(
            MSG_BAD_ROLE.format(
                source=source,
                count=plural(int(bad.sum()), "row"),
                examples=_examples(values[bad].astype(str).tolist()),
                first=int(np.flatnonzero(bad)[0]) + 1,
            )
        )
    frame = pd.DataFrame({"subject": subjects.to_numpy(), "role": text.to_numpy()})
    sets = frame.groupby("subject", sort=True)["role"].agg(lambda r: frozenset(r))
    partial = [str(s) for s, r in sets.items() if "" in r and len(r) > 1]
    if partial:
        raise ManifestError(
            MSG_PARTIAL_ROLES.format(
                source=source,
                count=plural(len(partial), "subject"),
                have=plural(len(partial), "has", number=False),
                examples=_examples(partial),
            )
        )
    mixed = [
        f"{s} ({', '.join(sorted(r))})"
        for s, r in sets.items()
        if "" not in r and r not in ALLOWED_SUBJECT_ROLES
    ]
    if mixed:
        raise ManifestError(
            MSG_MIXED_ROLES.format(
                source=source,
                count=plural(len(mixed), "subject"),
                mix=plural(len(mixed), "mixes", number=False),
                examples=_examples(mixed),
            )
        )
    normalised: np.ndarray = text.to_numpy(dtype=object)  # pandas ships no type information
    return normalised


def _examples(values: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(repr(str(v)) for v in list(values)[:limit])
    more = len(values) - limit
    return shown + (f" (+{more} more)" if more > 0 else "")


@dataclass(frozen=True, eq=False)
class Manifest:
    """A validated list of images with subject ids and group attributes.

    Build one with :meth:`from_frame`, :func:`read_manifest` or a loader; the constructor itself
    does no validation.

    Attributes
    ----------
    frame : DataFrame
        One row per image, columns ``path`` (POSIX, relative to ``root`` where possible),
        ``subject_id`` and the attribute columns, all strings. Missing labels are ``"unknown"``.
    root : Path or None
        Folder relative paths are resolved against (None: paths are absolute or relative to the
        current directory).
    name : str
        Short name for reports (``"lfw"``, the manifest's file name…).
    """

    frame: pd.DataFrame
    root: Path | None = None
    name: str = "manifest"
    _hashes: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        root: str | os.PathLike[str] | None = None,
        *,
        name: str = "manifest",
        check_files: bool = True,
        source: str | None = None,
    ) -> Manifest:
        """Validate a table and wrap it.

        Parameters
        ----------
        frame : DataFrame
            Needs ``path`` and ``subject_id`` columns; every other column except
            ``image_sha256`` is an attribute. An ``image_sha256`` column, when present, is
            trusted as the files' hashes (saves reading every file again).
        root : path-like, optional
            Folder relative paths are resolved against.
        name : str
            Short dataset name for reports.
        check_files : bool
            Check every image file exists (a clear error beats a failure half-way through
            embedding).
        source : str, optional
            What to call the manifest in messages (default: ``name``).

        Raises
        ------
        ManifestError
            Missing columns, no rows, empty paths or subject ids, a path listed twice, or image
            files that do not exist.

        Warns
        -----
        ManifestWarning
            Some subjects have only one image (they can never be enrolled).
        """
        source = source or name
        root_path = Path(root).expanduser().resolve() if root is not None else None
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ManifestError(
                MSG_MISSING_COLUMNS.format(
                    source=source,
                    columns=plural(len(missing), "column", number=False),
                    missing=", ".join(missing),
                    found=", ".join(map(str, frame.columns)),
                )
            )
        if len(frame) == 0:
            raise ManifestError(MSG_EMPTY.format(source=source))

        out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
        for column in REQUIRED_COLUMNS:
            values = frame[column].reset_index(drop=True)
            blank = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
            if blank.any():
                raise ManifestError(
                    MSG_BLANK_FIELD.format(
                        source=source,
                        count=plural(int(blank.sum()), "row"),
                        column=column,
                        first=int(np.flatnonzero(blank)[0]) + 1,
                    )
                )
            out[column] = values.astype(str).str.strip().to_numpy(dtype=object)
        out["path"] = [_relative(p, root_path) for p in out["path"]]

        duplicated = out["path"].duplicated(keep="first").to_numpy()
        if duplicated.any():
            raise ManifestError(
                MSG_DUPLICATE_PATHS.format(
                    source=source,
                    count=plural(int(duplicated.sum()), "image"),
                    examples=_examples(out["path"][duplicated].tolist()),
                )
            )

        _add_labels(frame, out, source)

        manifest = cls(frame=out, root=root_path, name=name)
        if "image_sha256" in frame.columns:
            hashes = frame["image_sha256"].astype(str).to_numpy(dtype=object)
            manifest._hashes["sha256"] = hashes
        if check_files:
            manifest._check_files(source)
        manifest._warn_singletons()
        return manifest

    def _check_files(self, source: str) -> None:
        exists = np.fromiter((p.is_file() for p in self.absolute_paths()), bool, len(self))
        if not exists.all():
            missing = self.frame["path"][~exists].tolist()
            raise ManifestError(
                MSG_UNKNOWN_PATHS.format(
                    source=source,
                    count=plural(len(missing), "image file"),
                    root=self.root if self.root is not None else Path.cwd(),
                    examples=_examples(missing),
                )
            )

    def _warn_singletons(self) -> None:
        # subjects with a role were placed on purpose (a stranger needs one image only)
        counts = self.frame["subject_id"][self.roles == ""].value_counts()
        singletons = int((counts == 1).sum())
        if singletons:
            warnings.warn(
                MSG_SINGLETONS.format(
                    count=singletons,
                    total=plural(len(counts), "subject"),
                    have=plural(singletons, "has", number=False),
                ),
                ManifestWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ basic views
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def n_images(self) -> int:
        return len(self.frame)

    @property
    def n_subjects(self) -> int:
        return int(self.frame["subject_id"].nunique())

    @property
    def attributes(self) -> tuple[str, ...]:
        """Names of the attribute (group) columns, in table order."""
        return tuple(c for c in self.frame.columns if c not in RESERVED_COLUMNS)

    @property
    def has_roles(self) -> bool:
        """Whether any image has a ``role``."""
        return ROLE_COLUMN in self.frame.columns

    @property
    def roles(self) -> np.ndarray:
        """Each image's role (:data:`ROLES`), ``""`` where none was given, shape (n_images,)."""
        if not self.has_roles:
            return np.full(len(self), "", dtype=object)
        column: np.ndarray = self.frame[ROLE_COLUMN].to_numpy(dtype=object)
        return column

    @property
    def paths(self) -> np.ndarray:
        """Relative (or absolute) POSIX paths as stored, shape (n_images,)."""
        column: np.ndarray = self.frame["path"].to_numpy(dtype=object)
        return column

    @property
    def subject_ids(self) -> np.ndarray:
        column: np.ndarray = self.frame["subject_id"].to_numpy(dtype=object)
        return column

    def absolute_paths(self) -> list[Path]:
        """Each image's path resolved against :attr:`root`."""
        if self.root is None:
            return [Path(p) for p in self.frame["path"]]
        return [self.root / p for p in self.frame["path"]]

    def images_per_subject(self) -> pd.Series:
        """Number of images of each subject, indexed by subject id."""
        return self.frame["subject_id"].value_counts().sort_index()

    def subject_attributes(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One label per subject and attribute: the subject's most common label.

        Ties go to the label that sorts first, except that a known label beats ``"unknown"``.
        Subjects whose images disagree are reported once with a :class:`ManifestWarning`.

        Returns
        -------
        DataFrame indexed by subject id, one column per attribute.
        """
        columns = list(self.attributes if columns is None else columns)
        subjects = np.sort(self.frame["subject_id"].unique())
        result = pd.DataFrame(index=pd.Index(subjects, name="subject_id"))
        for column in columns:
            counts = self.frame.groupby(["subject_id", column]).size().rename("n").reset_index()
            counts["is_unknown"] = counts[column] == UNKNOWN
            counts = counts.sort_values(
                ["subject_id", "n", "is_unknown", column], ascending=[True, False, True, True]
            )
            n_labels = counts.groupby("subject_id")[column].nunique()
            inconsistent = n_labels[n_labels > 1].index.tolist()
            if inconsistent:
                warnings.warn(
                    MSG_INCONSISTENT_SUBJECT_LABEL.format(
                        column=column,
                        count=plural(len(inconsistent), "subject"),
                        examples=_examples(inconsistent),
                    ),
                    ManifestWarning,
                    stacklevel=2,
                )
            best = counts.drop_duplicates("subject_id", keep="first").set_index("subject_id")
            result[column] = best[column].reindex(subjects).to_numpy(dtype=object)
        return result

    # ------------------------------------------------------------------ selection
    def select(self, mask: np.ndarray | Sequence[bool], *, name: str | None = None) -> Manifest:
        """A manifest of the rows where ``mask`` is True (hashes already computed carry over)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise ValueError(f"mask must have shape ({len(self)},), got {mask.shape}")
        out = Manifest(
            frame=self.frame.loc[mask].reset_index(drop=True),
            root=self.root,
            name=name or self.name,
        )
        if "sha256" in self._hashes:
            out._hashes["sha256"] = self._hashes["sha256"][mask]
        return out

    def limit_subjects(
        self,
        max_images: int,
        *,
        seed: int = 0,
        min_images: int = 1,
        max_images_per_subject: int | None = None,
    ) -> Manifest:
        """A random subset of whole subjects with at most about ``max_images`` images.

        Subjects are drawn in a seeded random order and kept while the image count stays within
        ``max_images``, so a subject is never split (protocols split by subject, not image).
        ``min_images`` keeps only subjects with at least that many images.
        ``max_images_per_subject`` first keeps each subject's first that many images (in
        manifest order), which spreads a budget over more people; ``min_images`` and
        ``max_images`` then count the images kept.
        """
        if max_images < 1:
            raise ValueError("max_images must be at least 1")
        if max_images_per_subject is not None:
            if max_images_per_subject < 1:
                raise ValueError("max_images_per_subject must be at least 1 (or None for all)")
            position = self.frame.groupby("subject_id").cumcount().to_numpy()
            capped = self.select(position < max_images_per_subject)
            return capped.limit_subjects(max_images, seed=seed, min_images=min_images)
        counts = self.images_per_subject()
        counts = counts[counts >= min_images]
        order = np.random.default_rng(seed).permutation(len(counts))
        sizes = counts.to_numpy()[order]
        chosen: set[str] = set()
        total = 0
        # Greedy: a subject too big for the room left is skipped, smaller ones still fit.
        for position, size in zip(order, sizes):
            if total + size <= max_images:
                chosen.add(counts.index[position])
                total += int(size)
        return self.select(self.frame["subject_id"].isin(chosen).to_numpy())

    # ------------------------------------------------------------------ hashing
    def image_hashes(self, progress: bool | None = None) -> np.ndarray:
        """Hex sha256 of every image file, shape (n_images,), computed once and kept.

        Warns
        -----
        ManifestWarning
            Two rows have byte-identical images.
        """
        if "sha256" not in self._hashes:
            paths = self.absolute_paths()
            iterator = paths
            if progress:
                from tqdm import tqdm

                iterator = tqdm(paths, desc="hashing images", unit="img")
            self._hashes["sha256"] = np.array([sha256_file(p) for p in iterator], dtype=object)
            self._warn_duplicate_content()
        return self._hashes["sha256"]

    def _warn_duplicate_content(self) -> None:
        hashes = pd.Series(self._hashes["sha256"])
        dup = hashes.duplicated(keep=False).to_numpy()
        if dup.any():
            n_copies = int(hashes.duplicated(keep="first").sum())
            warnings.warn(
                MSG_DUPLICATE_CONTENT.format(
                    count=plural(n_copies, "image"),
                    have=plural(n_copies, "has", number=False),
                    examples=_examples(self.frame["path"][dup].tolist()),
                ),
                ManifestWarning,
                stacklevel=3,
            )

    def dataset_hash(self) -> str:
        """sha256 identifying the images and labels: over sorted (path, image sha256, subject,
        labels) rows. Reading every image once is needed the first time (see
        :meth:`image_hashes`)."""
        hashes = self.image_hashes()
        # roles change the evaluation, so they are hashed; a manifest without them hashes as
        # it always has
        labels = [*self.attributes, *([ROLE_COLUMN] if self.has_roles else [])]
        columns = ["path", "subject_id", *labels]
        table = self.frame[columns].copy()
        table["image_sha256"] = hashes
        header = "\t".join(["path", "image_sha256", "subject_id", *labels])
        rows = sorted(
            "\t".join([r[0], r[-1], *r[1:-1]])
            for r in table[columns + ["image_sha256"]].itertuples(index=False, name=None)
        )
        digest = hashlib.sha256(header.encode())
        for row in rows:
            digest.update(b"\n")
            digest.update(row.encode())
        return digest.hexdigest()

    # ------------------------------------------------------------------ output
    def to_frame(self, *, with_hashes: bool = False) -> pd.DataFrame:
        """A copy of the table (optionally with an ``image_sha256`` column)."""
        out = self.frame.copy()
        if with_hashes:
            out["image_sha256"] = self.image_hashes()
        return out

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the manifest as CSV or Parquet (by extension), paths relative to :attr:`root`
        when it is the file's folder, absolute otherwise."""
        path = Path(path)
        frame = self.frame.copy()
        target_root = path.parent.resolve()
        if self.root is not None and self.root != target_root:
            frame["path"] = [
                os.path.relpath(self.root / p, target_root) if not Path(p).is_absolute() else p
                for p in frame["path"]
            ]
            frame["path"] = [Path(p).as_posix() for p in frame["path"]]
        suffix = path.suffix.lower()
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        elif suffix in (".parquet", ".pq"):
            frame.to_parquet(path, index=False)
        else:
            raise ManifestError(MSG_BAD_FORMAT.format(source=path))
        return path

    def summary(self) -> pd.DataFrame:
        """Images and subjects per label of each attribute (a long table)."""
        rows = []
        for column in self.attributes:
            grouped = self.frame.groupby(column)
            for label, part in grouped:
                rows.append(
                    {
                        "attribute": column,
                        "group": label,
                        "n_images": len(part),
                        "n_subjects": part["subject_id"].nunique(),
                    }
                )
        return pd.DataFrame(rows, columns=["attribute", "group", "n_images", "n_subjects"])


def read_manifest(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    check_files: bool = True,
) -> Manifest:
    """Read a manifest from a CSV or Parquet file.

    Parameters
    ----------
    path : path-like
        ``.csv`` (comma-separated, header row) or ``.parquet``.
    root : path-like, optional
        Folder image paths are relative to; default: the manifest file's folder.
    check_files : bool
        Check every listed image exists.

    Raises
    ------
    ManifestError
        Unreadable file, unsupported extension or an invalid table (see
        :meth:`Manifest.from_frame`).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ManifestError(MSG_UNREADABLE.format(source=path, reason="file not found"))
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # Everything as text: subject ids like "007" must not become 7.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise ManifestError(MSG_BAD_FORMAT.format(source=path))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(MSG_UNREADABLE.format(source=path, reason=exc)) from exc
    except (OSError, pa.ArrowException) as exc:
        raise ManifestError(MSG_UNREADABLE.format(source=path, reason=exc)) from exc
    return Manifest.from_frame(
        frame,
        root=root if root is not None else path.parent,
        name=path.stem,
        check_files=check_files,
        source=str(path),
    )
