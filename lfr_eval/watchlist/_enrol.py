"""Enrolment from image files, from a folder per subject, or from a CSV manifest.

Every file ends up either enrolled or refused with a reason; nothing is half-done. Faces are
detected and embedded first (the slow part, outside any lock), then all accepted files are
written in one transaction, so a crash or error mid-batch leaves the watchlist unchanged.

An enrolment image must hold exactly one face. With ``largest_face=True`` the biggest face of a
group photo is taken instead (and the report says how many faces there were).
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lfr_eval.errors import (
    MSG_IMAGE_MISSING,
    FaceCountError,
    ImageError,
    LfrError,
    ManifestError,
    WatchlistError,
)
from lfr_eval.faces._engine import embed_faces, select_one_face
from lfr_eval.faces._image import decode_image
from lfr_eval.faces._types import Face, FaceEngine
from lfr_eval.watchlist._store import Watchlist
from lfr_eval.watchlist._types import (
    DEFAULT_CATEGORY,
    EnrolledFile,
    EnrolmentReport,
    RefusedFile,
    SubjectInfo,
    parse_expiry,
)
from lfr_eval.wording import plural

#: Called after each file with (files done, files in total).
Progress = Callable[[int, int], None]

#: Columns of an enrolment manifest; ``path`` and ``subject_id`` are required.
MANIFEST_COLUMNS = ("path", "subject_id", "display_name", "category", "reason", "expires")
MANIFEST_REQUIRED = ("path", "subject_id")


@dataclass(frozen=True)
class EnrolmentRequest:
    """One image to enrol for one subject."""

    source: Path
    subject: SubjectInfo


@dataclass(frozen=True)
class _Accepted:
    request: EnrolmentRequest
    data: bytes
    sha256: str
    face: Face
    n_faces: int


def _refusal(source: str, subject_id: str | None, kind: str, exc: LfrError | str) -> RefusedFile:
    code = exc.exit_code if isinstance(exc, LfrError) else 2
    return RefusedFile(
        source=source, subject_id=subject_id, kind=kind, reason=str(exc), exit_code=code
    )


def _analyse(
    engine: FaceEngine, request: EnrolmentRequest, largest_face: bool
) -> _Accepted | RefusedFile:
    source = str(request.source)
    sid = request.subject.subject_id
    try:
        if not request.source.is_file():
            raise ImageError(MSG_IMAGE_MISSING.format(path=source))
        try:
            data = request.source.read_bytes()
        except OSError as exc:
            raise ImageError(f"cannot read {source}: {exc.strerror}") from exc
        image = decode_image(data, source)
        faces = engine.analyze(image, embed=False)
    except ImageError as exc:
        return _refusal(source, sid, "unreadable_image", exc)
    try:
        face = select_one_face(faces, source, largest=largest_face)
    except FaceCountError as exc:
        return _refusal(source, sid, "no_face" if not faces else "several_faces", exc)
    # only the face enrolled is embedded, through the engine contract
    (face,) = embed_faces(engine, image, [face])
    return _Accepted(request, data, hashlib.sha256(data).hexdigest(), face, len(faces))


def enrol_requests(
    watchlist: Watchlist,
    engine: FaceEngine,
    requests: Sequence[EnrolmentRequest],
    *,
    largest_face: bool = False,
    keep_image: bool = False,
    progress: Progress | None = None,
    refused: Iterable[RefusedFile] = (),
) -> EnrolmentReport:
    """Enrol a batch of (image, subject) requests with ``engine``.

    Parameters
    ----------
    watchlist : Watchlist
    engine : FaceEngine
        Must share the watchlist's embedding space (checked before any image is read).
    requests : sequence of EnrolmentRequest
    largest_face : bool
        Take the largest face of an image with several, instead of refusing it.
    keep_image : bool
        Store each enrolled source image in the watchlist (default: only its sha256).
    progress : callable, optional
        ``progress(done, total)`` after each analysed file.
    refused : iterable of RefusedFile
        Refusals found while planning the batch, carried into the report.

    Returns
    -------
    EnrolmentReport
        Enrolled files and refused files with reasons. New subjects are created only if at least
        one of their images was enrolled; existing subjects keep their details.

    Raises
    ------
    WatchlistError
        The engine's embedding space differs from the watchlist's (nothing is read or written).
    """
    engine_id = engine.engine_id
    watchlist.check_engine(engine_id)
    refusals = list(refused)
    accepted: list[_Accepted] = []
    seen: dict[str, str] = {}
    for done, request in enumerate(requests, start=1):
        outcome = _analyse(engine, request, largest_face)
        if isinstance(outcome, _Accepted):
            if outcome.sha256 in seen:
                outcome = _refusal(
                    str(request.source),
                    request.subject.subject_id,
                    "duplicate",
                    WatchlistError(
                        f"{request.source} is the same image as {seen[outcome.sha256]} "
                        "earlier in this batch; it was enrolled once"
                    ),
                )
            else:
                seen[outcome.sha256] = str(request.source)
        if isinstance(outcome, RefusedFile):
            refusals.append(outcome)
        else:
            accepted.append(outcome)
        if progress is not None:
            progress(done, len(requests))
    if not accepted:
        return EnrolmentReport((), tuple(refusals), (), watchlist.content_hash())

    enrolled: list[EnrolledFile] = []
    new_subjects: list[str] = []
    with watchlist._write() as tx:
        for item in accepted:
            subject = item.request.subject
            source = str(item.request.source)
            owner = watchlist._image_owner(tx.con, item.sha256)
            if owner is not None:
                refusals.append(
                    _refusal(
                        source,
                        subject.subject_id,
                        "duplicate",
                        WatchlistError(
                            f"{source} is already enrolled (as subject {owner!r}); "
                            "remove that template first to enrol it again"
                        ),
                    )
                )
                continue
            if not watchlist._has_subject(tx.con, subject.subject_id):
                watchlist._insert_subject(tx, subject)
                new_subjects.append(subject.subject_id)
            template_id = watchlist._insert_template(
                tx,
                subject.subject_id,
                item.face.embedding,  # type: ignore[arg-type]
                engine_id,
                image_sha256=item.sha256,
                quality=item.face.quality,
                image=item.data if keep_image else None,
                image_ext=item.request.source.suffix.lower() if keep_image else None,
            )
            x1, y1, x2, y2 = (float(v) for v in item.face.box)
            enrolled.append(
                EnrolledFile(
                    source,
                    subject.subject_id,
                    template_id,
                    item.sha256,
                    item.n_faces,
                    (x1, y1, x2, y2),
                )
            )
    return EnrolmentReport(tuple(enrolled), tuple(refusals), tuple(new_subjects), tx.content_hash)


def enrol_files(
    watchlist: Watchlist,
    engine: FaceEngine,
    subject: SubjectInfo | str,
    paths: Iterable[str | os.PathLike[str]],
    **options: object,
) -> EnrolmentReport:
    """Enrol image files of one subject (created if new; a plain id means default details).

    ``options`` are those of :func:`enrol_requests` (``largest_face``, ``keep_image``,
    ``progress``).
    """
    info = SubjectInfo(subject) if isinstance(subject, str) else subject
    requests = [EnrolmentRequest(Path(p), info) for p in paths]
    return enrol_requests(watchlist, engine, requests, **options)  # type: ignore[arg-type]


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def plan_folder(
    folder: str | os.PathLike[str],
    *,
    category: str = DEFAULT_CATEGORY,
    reason: str = "",
    expires: datetime | None = None,
) -> tuple[list[EnrolmentRequest], list[RefusedFile]]:
    """Requests for a folder with one sub-folder per subject.

    The sub-folder name is the subject id; its display name is the same with ``_`` shown as a
    space (LFW's ``George_W_Bush`` becomes "George W Bush"). Every non-hidden file directly
    inside a sub-folder is a request (non-images are refused later with a reason); files lying
    beside the sub-folders are refused as not belonging to a subject.

    Raises
    ------
    ManifestError
        The folder does not exist or has no sub-folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ManifestError(f"enrolment folder not found: {root}")
    requests: list[EnrolmentRequest] = []
    refused: list[RefusedFile] = []
    subfolders = 0
    for entry in sorted(root.iterdir()):
        if _is_hidden(entry):
            continue
        if entry.is_file():
            refused.append(
                _refusal(
                    str(entry),
                    None,
                    "not_in_subject_folder",
                    f"{entry} is not inside a subject folder; put each subject's images in a "
                    "sub-folder named after the subject",
                )
            )
            continue
        if not entry.is_dir():
            continue
        subfolders += 1
        info = SubjectInfo(
            subject_id=entry.name,
            display_name=entry.name.replace("_", " "),
            category=category,
            reason=reason,
            expires=expires,
        )
        for image in sorted(entry.iterdir()):
            if image.is_file() and not _is_hidden(image):
                requests.append(EnrolmentRequest(image, info))
    if subfolders == 0:
        raise ManifestError(
            f"no sub-folders in {root}: put each subject's images in a sub-folder named "
            "after the subject (e.g. images/Jane_Doe/1.jpg)"
        )
    return requests, refused


def enrol_folder(
    watchlist: Watchlist,
    engine: FaceEngine,
    folder: str | os.PathLike[str],
    *,
    category: str = DEFAULT_CATEGORY,
    reason: str = "",
    expires: datetime | None = None,
    **options: object,
) -> EnrolmentReport:
    """Enrol a folder with one sub-folder per subject (see :func:`plan_folder`)."""
    requests, refused = plan_folder(folder, category=category, reason=reason, expires=expires)
    return enrol_requests(
        watchlist,
        engine,
        requests,
        refused=refused,
        **options,  # type: ignore[arg-type]
    )


def plan_manifest(
    manifest: str | os.PathLike[str],
    *,
    category: str = DEFAULT_CATEGORY,
    reason: str = "",
    expires: datetime | None = None,
) -> list[EnrolmentRequest]:
    """Requests from a CSV manifest.

    Columns: ``path`` and ``subject_id`` (required), ``display_name``, ``category``, ``reason``,
    ``expires`` (optional; empty cells take the defaults given here). Relative paths are relative
    to the manifest's folder. Rows of one subject must agree on its details.

    Raises
    ------
    ManifestError
        Missing file or columns, an empty path or subject id, an unreadable expiry, or rows of
        one subject that disagree. Nothing is enrolled from a malformed manifest.
    """
    path = Path(manifest)
    if not path.is_file():
        raise ManifestError(f"enrolment manifest not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            rows = [
                {(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader
            ]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"cannot read {path} as a UTF-8 CSV file: {exc}") from exc
    missing = [c for c in MANIFEST_REQUIRED if c not in columns]
    if missing:
        raise ManifestError(
            f"{path} lacks {plural(len(missing), 'column', number=False)} {', '.join(missing)}; "
            "an enrolment manifest needs "
            f"{', '.join(MANIFEST_REQUIRED)} and may have {', '.join(MANIFEST_COLUMNS[2:])}"
        )
    base = path.parent
    subjects: dict[str, SubjectInfo] = {}
    requests = []
    for line, row in enumerate(rows, start=2):
        if not row.get("path") or not row.get("subject_id"):
            raise ManifestError(f"{path} line {line}: empty path or subject_id")
        try:
            info = SubjectInfo(
                subject_id=row["subject_id"],
                display_name=row.get("display_name") or None,
                category=row.get("category") or category,
                reason=row.get("reason") or reason,
                expires=parse_expiry(row["expires"]) if row.get("expires") else expires,
            )
        except WatchlistError as exc:
            raise ManifestError(f"{path} line {line}: {exc}") from None
        previous = subjects.setdefault(info.subject_id, info)
        if previous != info:
            raise ManifestError(
                f"{path} line {line}: subject {info.subject_id!r} has different details "
                "(name, category, reason or expiry) than on an earlier line"
            )
        image = Path(row["path"])
        requests.append(EnrolmentRequest(image if image.is_absolute() else base / image, info))
    if not requests:
        raise ManifestError(f"{path} lists no images")
    return requests


def enrol_manifest(
    watchlist: Watchlist,
    engine: FaceEngine,
    manifest: str | os.PathLike[str],
    *,
    category: str = DEFAULT_CATEGORY,
    reason: str = "",
    expires: datetime | None = None,
    **options: object,
) -> EnrolmentReport:
    """Enrol the images a CSV manifest lists (see :func:`plan_manifest`)."""
    requests = plan_manifest(manifest, category=category, reason=reason, expires=expires)
    return enrol_requests(watchlist, engine, requests, **options)  # type: ignore[arg-type]
