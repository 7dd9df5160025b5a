"""Typed records of the watchlist store: subjects, templates, audit entries, enrolment reports."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal

import numpy as np

from lfr_eval.errors import WatchlistError
from lfr_eval.faces._types import EngineId, FaceQuality

#: Default category of a subject when none is given.
DEFAULT_CATEGORY = "unspecified"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RELATIVE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")


def utc_now() -> datetime:
    """Current time in UTC, to the second (the precision the store keeps)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def to_iso(moment: datetime) -> str:
    """Canonical text form of a moment: UTC, seconds, ``YYYY-MM-DDTHH:MM:SS+00:00``.

    One fixed format keeps stored timestamps comparable as strings (SQLite compares them in
    queries) and makes the content hash independent of how a time was typed.
    """
    if moment.tzinfo is None:
        raise WatchlistError(f"timestamp {moment!r} has no time zone; give an aware datetime")
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def parse_expiry(
    value: str | date | datetime | None, *, now: datetime | None = None
) -> datetime | None:
    """Turn a user's expiry into the moment the subject stops being searched (UTC).

    Parameters
    ----------
    value : str, date, datetime or None
        ``None`` or ``""``: never expires. A ``date`` or ``"YYYY-MM-DD"``: valid through that day
        (UTC), so it expires at the following midnight. An ISO datetime with a zone (naive ones are
        taken as UTC). ``"7d"``, ``"24h"``, ``"30m"``: that long from ``now``.

    Raises
    ------
    WatchlistError
        The text is not one of those forms.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).replace(microsecond=0)
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time(0), tzinfo=timezone.utc)
    text = str(value).strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount)}.get(
            unit, timedelta(minutes=amount)
        )
        return (now or utc_now()) + delta
    try:
        if len(text) == 10:
            return parse_expiry(date.fromisoformat(text))
        return parse_expiry(datetime.fromisoformat(text))
    except ValueError:
        raise WatchlistError(
            f"cannot read expiry {value!r}: use a date (2025-06-30), an ISO date-time "
            "(2025-06-30T18:00:00+01:00) or a duration (7d, 24h, 30m)"
        ) from None


def check_subject_id(subject_id: str) -> str:
    """Validate a subject id: 1–200 characters, no control characters, no outer spaces."""
    if not isinstance(subject_id, str) or not subject_id:
        raise WatchlistError("a subject id must be a non-empty string")
    if subject_id != subject_id.strip() or _CONTROL.search(subject_id) or len(subject_id) > 200:
        raise WatchlistError(
            f"invalid subject id {subject_id!r}: use up to 200 printable characters "
            "without leading or trailing spaces"
        )
    return subject_id


@dataclass(frozen=True)
class SubjectInfo:
    """What is needed to put a new person on a watchlist.

    Attributes
    ----------
    subject_id : str
        Unique id within the watchlist (e.g. a case reference).
    display_name : str, optional
        Name shown to operators; defaults to the id.
    category : str
        Category of inclusion, e.g. ``"wanted"``, ``"missing person"``, ``"test volunteer"``.
    reason : str
        Free-text reason for inclusion (governance: why this person is listed).
    expires : datetime, optional
        When the subject stops being searched (UTC). ``None``: no expiry.
    """

    subject_id: str
    display_name: str | None = None
    category: str = DEFAULT_CATEGORY
    reason: str = ""
    expires: datetime | None = None

    def __post_init__(self) -> None:
        check_subject_id(self.subject_id)
        if self.expires is not None and self.expires.tzinfo is None:
            raise WatchlistError("expiry must be a time-zone aware datetime (use parse_expiry)")

    @property
    def name(self) -> str:
        return self.display_name if self.display_name else self.subject_id


@dataclass(frozen=True)
class Subject:
    """A person on the watchlist.

    Attributes
    ----------
    subject_id, display_name, category, reason : str
    created : datetime
        When the subject was added (UTC).
    expires : datetime or None
        When the subject stops being searched (UTC); ``None`` for no expiry.
    n_templates : int
        Number of templates enrolled.
    """

    subject_id: str
    display_name: str
    category: str
    reason: str
    created: datetime
    expires: datetime | None
    n_templates: int = 0

    def is_expired(self, at: datetime | None = None) -> bool:
        """Whether the subject has expired at ``at`` (default: now)."""
        return self.expires is not None and self.expires <= (at or utc_now())


@dataclass(frozen=True, eq=False)
class Template:
    """One enrolled face template.

    Attributes
    ----------
    template_id : int
        Row id in the store.
    subject_id : str
    engine_id : EngineId
        The engine that produced the embedding (model files with hashes).
    embedding : ndarray of shape (d,), float32
        Unit-norm embedding; cosine similarity with a probe is their dot product, in [-1, 1].
    image_sha256 : str or None
        Hex sha256 of the source image file's bytes (not of decoded pixels).
    quality : FaceQuality or None
    created : datetime
    has_image : bool
        Whether the store keeps the source image (only when enrolment asked for it).
    """

    template_id: int
    subject_id: str
    engine_id: EngineId
    embedding: np.ndarray
    image_sha256: str | None
    quality: FaceQuality | None
    created: datetime
    has_image: bool = False


AuditAction = Literal[
    "create",
    "add_subject",
    "update_subject",
    "remove_subject",
    "add_template",
    "remove_template",
    "import_bundle",
    "export_bundle",
]


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log. Holds ids, categories and hashes, never names or biometrics.

    Attributes
    ----------
    entry_id : int
    at : datetime
        When it happened (UTC).
    action : str
        One of :data:`AuditAction`.
    subject_id : str or None
    template_id : int or None
    actor : str
        Operating-system user who made the change.
    content_hash : str
        Content hash of the watchlist *after* the change (for an export: of what was exported).
    details : dict
        Small, action-specific facts (category, image sha256, engine key, bundle path…).
    """

    entry_id: int
    at: datetime
    action: str
    subject_id: str | None
    template_id: int | None
    actor: str
    content_hash: str
    details: dict[str, Any] = field(default_factory=dict)


RefusalKind = Literal[
    "unreadable_image", "no_face", "several_faces", "duplicate", "not_in_subject_folder"
]


@dataclass(frozen=True)
class EnrolledFile:
    """An image that was enrolled.

    Attributes
    ----------
    source : str
        File path (or upload name).
    subject_id : str
    template_id : int
    image_sha256 : str
    n_faces : int
        Faces found in the image (more than 1 only when the largest face was asked for).
    box : tuple of float
        ``(x1, y1, x2, y2)`` of the enrolled face, pixels.
    """

    source: str
    subject_id: str
    template_id: int
    image_sha256: str
    n_faces: int
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class RefusedFile:
    """An image that was not enrolled, and why.

    Attributes
    ----------
    source : str
    subject_id : str or None
    kind : str
        Machine-readable reason, one of :data:`RefusalKind`.
    reason : str
        Human-readable message saying what was wrong and what to do.
    exit_code : int
        Exit code of the matching :class:`~lfr_eval.errors.LfrError` (3 image, 4 face count,
        7 watchlist), so the CLI can report the first refusal's code.
    """

    source: str
    subject_id: str | None
    kind: str
    reason: str
    exit_code: int


@dataclass(frozen=True)
class EnrolmentReport:
    """Outcome of an enrolment batch: every file is either enrolled or refused.

    Attributes
    ----------
    enrolled : tuple of EnrolledFile
    refused : tuple of RefusedFile
    new_subjects : tuple of str
        Subjects created by this batch.
    content_hash : str
        Content hash of the watchlist after the batch.
    """

    enrolled: tuple[EnrolledFile, ...]
    refused: tuple[RefusedFile, ...]
    new_subjects: tuple[str, ...]
    content_hash: str

    @property
    def n_enrolled(self) -> int:
        return len(self.enrolled)

    @property
    def n_refused(self) -> int:
        return len(self.refused)

    @property
    def all_enrolled(self) -> bool:
        """True when no file was refused."""
        return not self.refused


@dataclass(frozen=True)
class BundleInfo:
    """What an exported or imported watchlist bundle holds.

    Attributes
    ----------
    path : str
    content_hash : str
        Content hash of the watchlist version in the bundle.
    embedding_space : str or None
        :attr:`EngineId.recognizer_key` of the templates (None for a bundle without templates).
    n_subjects, n_templates, n_images : int
    """

    path: str
    content_hash: str
    embedding_space: str | None
    n_subjects: int
    n_templates: int
    n_images: int
