"""The open-set 1:N protocol: a watchlist, mated searches and non-mated searches from a manifest.

The split is by **subject**, never by image: an enrolled subject's other images are its mated
searches; the images of subjects never enrolled are the non-mated searches. A subject is thus
either on the watchlist or a stranger to it, never both, so a non-mated search can never meet
its own subject's template.

A manifest's ``role`` column (see :mod:`lfr_eval.datasets`) fixes the role of the subjects that
have one: ``enrol`` images are templates, ``mated`` images mated searches, ``non_mated`` images
strangers' searches and ``filler`` images watchlist templates never searched (padding). Only
the subjects without roles are split by the seed.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lfr_eval.datasets import ROLES, UNKNOWN, Manifest, ManifestWarning
from lfr_eval.errors import ProtocolError
from lfr_eval.wording import plural

MSG_NO_ELIGIBLE = (
    "no subject has the {needed} images needed "  # plural: >= 2
    "to enrol one and search with another "
    "({n_subjects}, at most {max_images} each); add subjects with several images, or lower "
    "--enrolment-images (enrolment_images in Python)"
)
MSG_TOO_MANY_ENROLLED = (
    "asked for {asked} but only {available} at least {needed} images"  # plural: >= 2
)
MSG_NO_NON_MATED = (
    "no subject is left for non-mated searches: {n_enrolled} of {n_subjects} {are} "
    "enrolled; enrol fewer (--n-enrolled or --enrolled-fraction; n_enrolled or "
    "enrolled_fraction in Python) or add subjects"
)
MSG_BALANCE_COLUMN = "cannot balance by {column!r}: the manifest's attributes are {attributes}"
MSG_BALANCE_UNKNOWN = "balancing by {column!r} leaves out {count} whose label is unknown"
MSG_NO_WATCHLIST = (
    "nobody is on the watchlist: no image has role enrol or filler and no subject without a "
    "role has the {needed} images needed to enrol one and search with another"  # plural: >= 2
)


@dataclass(frozen=True)
class OpenSetParams:
    """Settings of :func:`build_open_set_protocol` (all recorded with every result).

    Attributes
    ----------
    seed : int
        Seed of the random choices (which subjects enrol, which images enrol and search).
    n_enrolled : int or None
        Watchlist subjects; None uses ``enrolled_fraction`` of the eligible subjects.
    enrolled_fraction : float in (0, 1)
        Fraction of eligible subjects (those with more than ``enrolment_images`` images)
        enrolled when ``n_enrolled`` is None.
    enrolment_images : int >= 1
        Images of each enrolled subject used as templates; the rest are mated searches.
    max_mated_per_subject, max_non_mated_per_subject : int or None
        Cap on searches per subject (None: all images). Capping keeps prolific subjects from
        dominating a group's rate; intervals are clustered by subject either way.
    balance_by : str or None
        An attribute; when set, each known label of it gets the same number of enrolled
        subjects and of non-mated subjects (subjects labelled unknown are left out, with a
        warning).
    """

    seed: int = 0
    n_enrolled: int | None = None
    enrolled_fraction: float = 0.5
    enrolment_images: int = 1
    max_mated_per_subject: int | None = None
    max_non_mated_per_subject: int | None = None
    balance_by: str | None = None

    def __post_init__(self) -> None:
        if self.n_enrolled is not None and self.n_enrolled < 1:
            raise ProtocolError(f"n_enrolled must be at least 1, got {self.n_enrolled}")
        if not 0.0 < self.enrolled_fraction < 1.0:
            raise ProtocolError(
                f"enrolled_fraction must be between 0 and 1, got {self.enrolled_fraction}"
            )
        if self.enrolment_images < 1:
            raise ProtocolError(f"enrolment_images must be at least 1, got {self.enrolment_images}")
        for name in ("max_mated_per_subject", "max_non_mated_per_subject"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ProtocolError(f"{name} must be at least 1 (or None for all), got {value}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpenSetParams:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ProtocolCounts:
    """Sizes of a protocol: images and subjects in each role."""

    enrolled_subjects: int
    enrolment_images: int
    mated_searches: int
    mated_subjects: int
    non_mated_searches: int
    non_mated_subjects: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class OpenSetProtocol:
    """Which manifest rows enrol, search mated and search non-mated.

    Attributes
    ----------
    manifest : Manifest
    params : OpenSetParams
    enrolment, mated, non_mated : ndarray of int
        Row numbers of the manifest in each role (disjoint; subjects of ``non_mated`` never
        appear in ``enrolment``).
    """

    manifest: Manifest
    params: OpenSetParams
    enrolment: np.ndarray
    mated: np.ndarray
    non_mated: np.ndarray
    kind: str = field(default="open_set", init=False)

    @property
    def watchlist_subjects(self) -> np.ndarray:
        """Sorted ids of the enrolled subjects."""
        return np.unique(self.manifest.subject_ids[self.enrolment].astype(str))

    @property
    def watchlist_size(self) -> int:
        return len(self.watchlist_subjects)

    def rows_used(self) -> np.ndarray:
        """Sorted manifest rows the protocol uses (the only images that need embedding)."""
        return np.unique(np.concatenate([self.enrolment, self.mated, self.non_mated]))

    def counts(self) -> ProtocolCounts:
        subjects = self.manifest.subject_ids
        return ProtocolCounts(
            enrolled_subjects=self.watchlist_size,
            enrolment_images=len(self.enrolment),
            mated_searches=len(self.mated),
            mated_subjects=len(np.unique(subjects[self.mated].astype(str))),
            non_mated_searches=len(self.non_mated),
            non_mated_subjects=len(np.unique(subjects[self.non_mated].astype(str))),
        )

    def role_frame(self) -> pd.DataFrame:
        """The manifest rows used, with a ``role`` column (enrolment, mated, non_mated)."""
        parts = []
        for role, rows in (
            ("enrolment", self.enrolment),
            ("mated", self.mated),
            ("non_mated", self.non_mated),
        ):
            part = self.manifest.frame.iloc[rows].copy()
            part.insert(0, "role", role)
            part.insert(1, "row", rows)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)


def _cap_per_subject(
    rows: np.ndarray, subjects: np.ndarray, cap: int | None, rng: np.random.Generator
) -> np.ndarray:
    """At most ``cap`` rows per subject, chosen at random; rows stay sorted."""
    if cap is None or len(rows) == 0:
        return np.sort(rows)
    shuffled = rows[rng.permutation(len(rows))]
    order = pd.Series(subjects[shuffled]).groupby(subjects[shuffled]).cumcount().to_numpy()
    return np.sort(shuffled[order < cap])


def _balanced_choice(
    subjects: np.ndarray,
    labels: pd.Series,
    total: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Equal numbers of subjects per label (``total // n_labels`` each, or as many as the
    smallest group has when ``total`` is None or too large)."""
    frame = pd.DataFrame({"subject": subjects, "label": labels.reindex(subjects).to_numpy()})
    groups = {label: part["subject"].to_numpy() for label, part in frame.groupby("label")}
    if not groups:
        return np.array([], dtype=object)
    smallest = min(len(g) for g in groups.values())
    per_group = smallest if total is None else min(smallest, total // len(groups))
    chosen = [
        rng.choice(np.sort(g), size=per_group, replace=False) for _, g in sorted(groups.items())
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=object)


def build_open_set_protocol(
    manifest: Manifest, params: OpenSetParams | None = None, **kwargs: object
) -> OpenSetProtocol:
    """Split a manifest by subject into watchlist, mated and non-mated searches.

    Parameters
    ----------
    manifest : Manifest
    params : OpenSetParams, optional
        Settings; keyword arguments (``seed=``, ``n_enrolled=`` …) build one instead.

    Returns
    -------
    OpenSetProtocol

    Raises
    ------
    ProtocolError
        No subject has enough images to enrol and search, more enrolled subjects than
        eligible ones were asked for, nobody is left for non-mated searches, or
        ``balance_by`` is not an attribute.

    Notes
    -----
    Eligible subjects (more than ``enrolment_images`` images) are enrolled at random; every
    other subject — including all single-image subjects — provides non-mated searches.
    Subjects with a ``role`` in the manifest keep it (``filler``: enrolled, never searched);
    the caps on searches per subject apply to them too. The same manifest, params and seed
    always give the same protocol.
    """
    if params is None:
        params = OpenSetParams(**kwargs)  # type: ignore[arg-type]
    elif kwargs:
        raise TypeError("pass either params or keyword settings, not both")
    rng = np.random.default_rng(params.seed)
    subjects = manifest.subject_ids.astype(str)
    roles = manifest.roles
    rows = np.arange(len(manifest))
    fixed = _fixed_roles(roles, rows)
    free = roles == ""
    if free.any():
        enrolment, mated_pool, non_mated_pool = _seeded_split(
            manifest.select(free), params, rng, roles_given=not free.all()
        )
        free_rows = rows[free]
        enrolment, mated_pool, non_mated_pool = (
            free_rows[enrolment],
            free_rows[mated_pool],
            free_rows[non_mated_pool],
        )
    else:
        enrolment = mated_pool = non_mated_pool = np.array([], dtype=np.int64)
    enrolment = np.sort(np.concatenate([enrolment, fixed["enrol"], fixed["filler"]]))
    if len(enrolment) == 0:
        raise ProtocolError(MSG_NO_WATCHLIST.format(needed=params.enrolment_images + 1))
    mated_pool = np.concatenate([mated_pool, fixed["mated"]])
    non_mated_pool = np.concatenate([non_mated_pool, fixed["non_mated"]])
    if len(non_mated_pool) == 0:
        raise ProtocolError(
            MSG_NO_NON_MATED.format(
                n_enrolled=len(np.unique(subjects[enrolment])),
                n_subjects=plural(manifest.n_subjects, "subject"),
                are=plural(len(np.unique(subjects[enrolment])), "is", number=False),
            )
        )
    mated = _cap_per_subject(mated_pool, subjects, params.max_mated_per_subject, rng)
    non_mated = _cap_per_subject(non_mated_pool, subjects, params.max_non_mated_per_subject, rng)
    return OpenSetProtocol(
        manifest=manifest, params=params, enrolment=enrolment, mated=mated, non_mated=non_mated
    )


def _fixed_roles(roles: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Manifest rows of each role given in the manifest's ``role`` column."""
    return {role: rows[roles == role].astype(np.int64) for role in ROLES}


def _seeded_split(
    manifest: Manifest, params: OpenSetParams, rng: np.random.Generator, *, roles_given: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seeded split of a manifest (rows: enrolment, mated pool, non-mated pool).

    With ``roles_given`` (other subjects have fixed roles) an empty side is not an error: the
    fixed roles may fill it."""
    subjects = manifest.subject_ids.astype(str)
    per_subject = manifest.images_per_subject()
    needed = params.enrolment_images + 1
    eligible = np.sort(per_subject.index[per_subject >= needed].to_numpy(dtype=str))
    empty = np.array([], dtype=np.int64)
    if len(eligible) == 0:
        if roles_given:
            return empty, empty, np.arange(len(manifest))
        raise ProtocolError(
            MSG_NO_ELIGIBLE.format(
                needed=needed,
                n_subjects=plural(len(per_subject), "subject"),
                max_images=plural(int(per_subject.max()), "image"),
            )
        )
    all_subjects = np.sort(per_subject.index.to_numpy(dtype=str))

    labels: pd.Series | None = None
    if params.balance_by is not None:
        if params.balance_by not in manifest.attributes:
            raise ProtocolError(
                MSG_BALANCE_COLUMN.format(
                    column=params.balance_by, attributes=list(manifest.attributes)
                )
            )
        labels = manifest.subject_attributes([params.balance_by])[params.balance_by]
        unknown = labels.index[labels == UNKNOWN]
        if len(unknown):
            warnings.warn(
                MSG_BALANCE_UNKNOWN.format(
                    column=params.balance_by, count=plural(len(unknown), "subject")
                ),
                ManifestWarning,
                stacklevel=3,
            )
        labels = labels[labels != UNKNOWN]
        eligible = eligible[np.isin(eligible, labels.index)]
        all_subjects = all_subjects[np.isin(all_subjects, labels.index)]

    if params.n_enrolled is not None:
        if params.n_enrolled > len(eligible):
            raise ProtocolError(
                MSG_TOO_MANY_ENROLLED.format(
                    asked=plural(params.n_enrolled, "enrolled subject"),
                    available=f"{len(eligible):,} {plural(len(eligible), 'has', number=False)}",
                    needed=needed,
                )
            )
        n_enrolled = params.n_enrolled
    else:
        n_enrolled = max(1, round(params.enrolled_fraction * len(eligible)))

    if labels is None:
        enrolled = np.sort(rng.choice(eligible, size=n_enrolled, replace=False))
        strangers = np.setdiff1d(all_subjects, enrolled)
    else:
        enrolled = _balanced_choice(eligible, labels, n_enrolled, rng)
        strangers = _balanced_choice(np.setdiff1d(all_subjects, enrolled), labels, None, rng)
    if len(strangers) == 0 and not roles_given:
        raise ProtocolError(
            MSG_NO_NON_MATED.format(
                n_enrolled=len(enrolled),
                n_subjects=plural(len(all_subjects), "subject"),
                are=plural(len(enrolled), "is", number=False),
            )
        )

    rows = np.arange(len(manifest))
    on_list = np.isin(subjects, enrolled)
    # Enrolment images: a random `enrolment_images` of each enrolled subject's images.
    listed_rows = rows[on_list]
    shuffled = listed_rows[rng.permutation(len(listed_rows))]
    position = pd.Series(subjects[shuffled]).groupby(subjects[shuffled]).cumcount().to_numpy()
    enrolment = np.sort(shuffled[position < params.enrolment_images])
    mated_pool = np.setdiff1d(listed_rows, enrolment)
    non_mated_pool = rows[np.isin(subjects, strangers)]
    return enrolment, mated_pool, non_mated_pool
