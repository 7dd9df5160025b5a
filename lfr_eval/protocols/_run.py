"""Score a protocol's searches against its watchlist: embeddings in, a SearchSet out.

The searches are scored by :func:`lfr_eval.metrics.score_searches` (the project's one scoring
kernel); this module chooses the probes and gallery of each role. In the same pass each
non-mated search's watchlist subjects (open set) or fillers (NPL) at or above every threshold
of a grid are counted: the :class:`~lfr_eval.protocols.FillerCounts` that watchlist-size scaling
needs, without a searches × fillers matrix. Each probe is scored once.

Images the engine could not use (no face, unreadable) are **failures to acquire**. By default
(``failures="nist"``) they are counted as NIST FRTE counts them: a mated probe that gave no
template is a miss at every threshold and rank (it is in the SearchSet with mate score ``-inf``
and rank N + 1), and a non-mated probe that gave none is a search that returned no candidate (a
row of ``-inf``: in FPIR's denominator, never a false positive). ``failures="exclude"`` leaves
them out of the SearchSet instead. Either way they are also counted, by role and group, in
:attr:`ProtocolRun.acquisition`, so an evaluation can report them beside FPIR/FNIR.

An enrolled subject none of whose enrolment images gave a template (or passed the optional
face-size gate) is a **failure to enrol** (:mod:`lfr_eval.protocols._enrolment`): the subject is
not on the watchlist. By default (``EnrolmentSettings(failures="nist")``, ISO/IEC 19795-1) its
mated searches stay in the SearchSet as misses (mate score ``-inf``, rank N + 1, like a failure
to acquire); ``failures="exclude"`` drops them; ``next_image=True`` first tries to enrol the
subject from its next usable image. :attr:`ProtocolRun.enrolment` reports the rate and counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lfr_eval.datasets import ImageEmbeddings, Manifest
from lfr_eval.errors import ProtocolError
from lfr_eval.faces import RuntimeInfo
from lfr_eval.metrics import SearchSet
from lfr_eval.metrics._scoring import Backend, score_searches
from lfr_eval.protocols._enrolment import (
    ENROLMENT_FAILURE_POLICIES,
    MSG_ENROLMENT_POLICY,
    MSG_MIN_FACE,
    EnrolmentFailurePolicy,
    EnrolmentOutcome,
)
from lfr_eval.protocols._npl import FillerCounts, NplProtocol, filler_cell_codes
from lfr_eval.protocols._open_set import OpenSetProtocol

#: How failures to acquire enter the rates: "nist" (NIST FRTE: failed mated probes are misses,
#: failed non-mated probes searches without candidates) or "exclude" (left out of the rates).
FailurePolicy = Literal["nist", "exclude"]
FAILURE_POLICIES: tuple[str, ...] = ("nist", "exclude")

MSG_FAILURE_POLICY = "failures must be 'nist' (count them, the default) or 'exclude', got {value!r}"

#: Candidates kept per non-mated search (selectivity needs more than one).
DEFAULT_TOP_K = 20

#: Similarity thresholds the filler counts are made at by default: [-1, 1] in steps of 0.005.
DEFAULT_THRESHOLDS = np.round(np.linspace(-1.0, 1.0, 401), 4)

MSG_EMPTY_WATCHLIST = (
    "no enrolment image gave a template ({n} tried, all failed: {reasons}); the watchlist is "
    "empty. Check the images hold detectable faces, or try another detector"
)
MSG_NOT_ALIGNED = "embeddings have {found} rows but the manifest has {expected} images"


@dataclass(frozen=True, eq=False)
class ProtocolRun:
    """A protocol's searches scored, plus what could not be scored.

    Attributes
    ----------
    searches : SearchSet
        Mated and non-mated searches against the enrolled watchlist; with
        ``failures == "nist"`` the searches that failed to acquire are appended after the
        scored ones of their kind (see module doc).
    filler_counts : FillerCounts
        Each non-mated search's watchlist subjects (open set) or fillers (NPL) at or above
        every threshold of the grid: the input of watchlist-size scaling. Rows follow the
        SearchSet's non-mated searches; a failed search's counts are 0 (no false match).
    acquisition : DataFrame
        Failures to acquire: columns ``role`` (enrolment, mated, non_mated, filler),
        ``attribute``, ``group`` (``"all"``/``"all"`` for the totals), ``images``, ``failed``.
    failed_to_enrol : int
        Enrolled subjects with no usable enrolment image (off the watchlist).
    mated_rows, non_mated_rows : ndarray of int
        Manifest rows behind each search of :attr:`searches`, in order.
    scoring_runtime : RuntimeInfo
        What computed the scores (numpy on the CPU, torch on the CPU or a GPU).
    failures : str
        ``"nist"`` or ``"exclude"``: how failures to acquire entered :attr:`searches`.
    enrolment : EnrolmentOutcome or None
        Failure-to-enrol rate, counts and what became of those subjects' mated searches.
    """

    searches: SearchSet
    filler_counts: FillerCounts
    acquisition: pd.DataFrame
    failed_to_enrol: int
    mated_rows: np.ndarray
    non_mated_rows: np.ndarray
    scoring_runtime: RuntimeInfo
    failures: str = "nist"
    enrolment: EnrolmentOutcome | None = None


@dataclass(frozen=True)
class EnrolmentSettings:
    """What happens when a watchlist subject cannot be enrolled (see module doc).

    Attributes
    ----------
    failures : {"nist", "exclude"}
        ``"nist"`` (default, ISO/IEC 19795-1): the subject's mated searches are misses in
        FNIR; ``"exclude"``: they are left out.
    next_image : bool
        Enrol a subject whose enrolment images all fail from its next usable image.
    min_face_px : float or None
        Quality gate: an enrolment image whose face is smaller than this (inter-ocular
        distance, pixels) fails; None accepts any detected face.
    """

    failures: EnrolmentFailurePolicy = "nist"
    next_image: bool = False
    min_face_px: float | None = None

    def __post_init__(self) -> None:
        if self.failures not in ENROLMENT_FAILURE_POLICIES:
            raise ProtocolError(MSG_ENROLMENT_POLICY.format(value=self.failures))
        if self.min_face_px is not None and not (
            np.isfinite(self.min_face_px) and self.min_face_px > 0
        ):
            raise ProtocolError(MSG_MIN_FACE.format(value=self.min_face_px))


def _acquisition_table(
    manifest: Manifest, roles: dict[str, np.ndarray], ok: np.ndarray, attributes: list[str]
) -> pd.DataFrame:
    rows = []
    for role, role_rows in roles.items():
        failed = ~ok[role_rows]
        rows.append((role, "all", "all", len(role_rows), int(failed.sum())))
        for attribute in attributes:
            labels = manifest.frame[attribute].to_numpy(dtype=object)[role_rows]
            for label in sorted(set(labels)):
                mask = labels == label
                rows.append((role, attribute, label, int(mask.sum()), int(failed[mask].sum())))
    return pd.DataFrame(rows, columns=["role", "attribute", "group", "images", "failed"])


def _groups(manifest: Manifest, rows: np.ndarray, attributes: list[str]) -> pd.DataFrame:
    if not attributes:
        return pd.DataFrame()
    return manifest.frame[attributes].iloc[rows].reset_index(drop=True).astype(object)


def _check(manifest: Manifest, embeddings: ImageEmbeddings) -> None:
    if len(embeddings) != len(manifest):
        raise ValueError(MSG_NOT_ALIGNED.format(found=len(embeddings), expected=len(manifest)))


def _check_policy(failures: str) -> None:
    if failures not in FAILURE_POLICIES:
        raise ProtocolError(MSG_FAILURE_POLICY.format(value=failures))


@dataclass(frozen=True, eq=False)
class _UsableRows:
    """A protocol's manifest rows split by whether the engine could use them.

    ``enrol``, ``mated`` and ``non_mated`` are the rows that gave a template (mated searches
    only of subjects that made it onto the watchlist); ``failed_mated`` and
    ``failed_non_mated`` are the searches appended as failures under the two policies (see
    module doc): failures to acquire (``failures="nist"``) and the mated searches of subjects
    who failed to enrol (``EnrolmentSettings.failures="nist"``).
    """

    manifest: Manifest
    attributes: list[str]
    subjects: np.ndarray
    ok: np.ndarray
    enrol: np.ndarray
    enrolled: np.ndarray
    mated: np.ndarray
    non_mated: np.ndarray
    failed_mated: np.ndarray
    failed_non_mated: np.ndarray
    enrolment: EnrolmentOutcome


def _usable_rows(
    protocol: OpenSetProtocol | NplProtocol,
    embeddings: ImageEmbeddings,
    failures: str,
    settings: EnrolmentSettings,
) -> _UsableRows:
    """Check the inputs and split the protocol's enrolment and search rows (both designs)."""
    _check_policy(failures)
    manifest = protocol.manifest
    _check(manifest, embeddings)
    subjects = manifest.subject_ids.astype(str)
    ok = embeddings.ok
    enrol_ok = ok
    if settings.min_face_px is not None:
        size = np.nan_to_num(np.asarray(embeddings.face_size_px, np.float64), nan=0.0)
        enrol_ok = ok & (size >= settings.min_face_px)
    enrol = protocol.enrolment[enrol_ok[protocol.enrolment]]
    tried = np.unique(subjects[protocol.enrolment])
    missing = np.setdiff1d(tried, subjects[enrol])
    mated = protocol.mated
    rescued = 0
    if settings.next_image and len(missing):
        # "next" image: the first of the subject's search images, in manifest order, that passes
        spare = np.sort(mated[np.isin(subjects[mated], missing) & enrol_ok[mated]])
        _, first = np.unique(subjects[spare], return_index=True)
        extra = spare[first]
        rescued = len(extra)
        enrol = np.sort(np.concatenate([enrol, extra]))
        mated = mated[~np.isin(mated, extra)]
        missing = np.setdiff1d(missing, subjects[extra])
    if len(enrol) == 0:
        raise _empty_watchlist(protocol.enrolment, embeddings)
    enrolled = np.unique(subjects[enrol])
    listed = np.isin(subjects[mated], enrolled)
    of_failed = mated[np.isin(subjects[mated], missing)]
    failed_mated = mated[~ok[mated] & listed] if failures == "nist" else mated[:0]
    if settings.failures == "nist":
        failed_mated = np.concatenate([failed_mated, of_failed]).astype(np.int64)
    non_mated = protocol.non_mated
    return _UsableRows(
        manifest=manifest,
        attributes=list(manifest.attributes),
        subjects=subjects,
        ok=ok,
        enrol=enrol,
        enrolled=enrolled,
        mated=mated[ok[mated] & listed],
        non_mated=non_mated[ok[non_mated]],
        failed_mated=failed_mated,
        failed_non_mated=non_mated[~ok[non_mated]] if failures == "nist" else non_mated[:0],
        enrolment=EnrolmentOutcome(
            subjects=len(tried),
            failed=len(missing),
            next_image=rescued,
            mated_searches=len(of_failed),
            policy=settings.failures,
            next_image_option=settings.next_image,
            min_face_px=settings.min_face_px,
        ),
    )


@dataclass(frozen=True)
class ScoringScale:
    """How a large scoring pass runs (none of it changes the numbers).

    Attributes
    ----------
    memory_bytes : int or None
        Memory setting (default 3 GiB, which fits a 4 GB machine); blocks are sized from it
        and large filler counts are memory-mapped from ``work_dir`` (or a temporary folder).
    work_dir : path or None
        Folder where finished blocks are kept: an interrupted run resumes from them.
    progress : bool
        tqdm bars on stderr.
    """

    memory_bytes: int | None = None
    work_dir: str | os.PathLike[str] | None = None
    progress: bool = False


@dataclass(frozen=True, eq=False)
class _Scored:
    searches: SearchSet
    mated_rows: np.ndarray
    non_mated_rows: np.ndarray
    runtime: RuntimeInfo
    counts: np.ndarray
    top_scores: np.ndarray
    top_gallery: np.ndarray  # position in the gallery rows of each candidate, -1 padding


def _score(
    embeddings: ImageEmbeddings,
    rows: _UsableRows,
    gallery: np.ndarray,
    top_k: int,
    backend: Backend,
    device: str,
    thresholds: np.ndarray,
    count_groups: np.ndarray,
    n_count_groups: int,
    scale: ScoringScale,
) -> _Scored:
    """The SearchSet of the usable mated and non-mated probes against a gallery (one pass of
    the scoring kernel), with the manifest rows behind each search and the non-mated
    searches' counts by count group of the gallery's subjects."""
    subjects, attributes = rows.subjects, rows.attributes
    probes = np.concatenate([rows.mated, rows.non_mated])
    scored = score_searches(
        embeddings.vectors[probes],
        subjects[probes],
        embeddings.vectors[gallery],
        subjects[gallery],
        k=top_k,
        probe_groups=_groups(rows.manifest, probes, attributes) if attributes else None,
        backend=backend,
        device=device,
        thresholds=thresholds,
        count_groups=count_groups,
        n_count_groups=n_count_groups,
        memory_bytes=scale.memory_bytes,
        work_dir=scale.work_dir,
        progress=scale.progress,
    )
    assert scored.non_mated_counts is not None and scored.non_mated_top_rows is not None
    return _Scored(
        scored.searches,
        probes[scored.mated_probe_index],
        probes[scored.non_mated_probe_index],
        scored.runtime,
        scored.non_mated_counts,
        scored.searches.non_mated_topk,
        scored.non_mated_top_rows,
    )


def _add_failures(
    searches: SearchSet,
    mated_rows: np.ndarray,
    non_mated_rows: np.ndarray,
    rows: _UsableRows,
) -> tuple[SearchSet, np.ndarray, np.ndarray]:
    """Append the probes that failed to acquire as NIST counts them, and the mated searches
    of subjects who failed to enrol as misses (see module doc); nothing when there are none."""
    manifest, attributes = rows.manifest, rows.attributes
    failed_mated, failed_non_mated = rows.failed_mated, rows.failed_non_mated
    if len(failed_mated) == 0 and len(failed_non_mated) == 0:
        return searches, mated_rows, non_mated_rows
    searches = searches.with_failures(
        rows.subjects[failed_mated].astype(object),
        rows.subjects[failed_non_mated].astype(object),
        _groups(manifest, failed_mated, attributes) if attributes else None,
        _groups(manifest, failed_non_mated, attributes) if attributes else None,
    )
    return (
        searches,
        np.concatenate([mated_rows, failed_mated]).astype(np.int64),
        np.concatenate([non_mated_rows, failed_non_mated]).astype(np.int64),
    )


def _append_zero_rows(counts: np.ndarray, n_rows: int) -> np.ndarray:
    """Counts with ``n_rows`` rows of zeros appended; a memory-mapped array stays on disk
    (copied in chunks into a file beside it)."""
    path = getattr(counts, "filename", None)
    if path is None:
        return np.concatenate([counts, np.zeros((n_rows, *counts.shape[1:]), counts.dtype)])
    target = Path(path).with_name(Path(path).stem + f"_and_{n_rows}_failed.npy")
    if not target.exists():
        tmp = target.with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(
            tmp,
            mode="w+",
            dtype=counts.dtype,  # the scoring run's (uint16 at NPL size)
            shape=(counts.shape[0] + n_rows, *counts.shape[1:]),
        )
        n = counts.shape[0]
        for a in range(0, n, 4096):
            out[a : min(n, a + 4096)] = counts[a : a + 4096]
        out[counts.shape[0] :] = 0
        out.flush()
        del out
        os.replace(tmp, target)
    mapped: np.ndarray = np.load(target, mmap_mode="r")
    return mapped


def _filler_counts(
    scored: _Scored,
    rows: _UsableRows,
    non_mated_rows: np.ndarray,
    thresholds: np.ndarray,
    cells: pd.DataFrame,
    filler_cells: np.ndarray,
    filler_of_gallery: np.ndarray,
) -> FillerCounts:
    """The non-mated searches' counts over the filler cells (the first ``len(cells)`` count
    groups), with a row of zeros per search that failed to acquire."""
    n_failed = len(non_mated_rows) - scored.counts.shape[0]
    counts = scored.counts
    top_fillers = np.where(
        scored.top_gallery >= 0, filler_of_gallery[np.maximum(scored.top_gallery, 0)], -1
    )
    top_scores = scored.top_scores
    if n_failed:
        counts = _append_zero_rows(counts, n_failed)
        top_scores = np.concatenate(
            [top_scores, np.full((n_failed, top_scores.shape[1]), -np.inf, np.float32)]
        )
        top_fillers = np.concatenate(
            [top_fillers, np.full((n_failed, top_fillers.shape[1]), -1, np.int64)]
        )
    return FillerCounts(
        thresholds=thresholds,
        counts=counts,
        cell_sizes=np.bincount(filler_cells, minlength=len(cells)).astype(np.int64),
        cells=cells,
        filler_cells=filler_cells,
        search_subjects=rows.subjects[non_mated_rows].astype(object),
        search_groups=_groups(rows.manifest, non_mated_rows, rows.attributes),
        top_scores=top_scores.astype(np.float32),
        top_fillers=top_fillers.astype(np.int64),
    )


def _empty_watchlist(protocol_rows: np.ndarray, embeddings: ImageEmbeddings) -> ProtocolError:
    reasons = sorted({str(r) for r in embeddings.failure[protocol_rows]})
    return ProtocolError(
        MSG_EMPTY_WATCHLIST.format(n=len(protocol_rows), reasons="; ".join(reasons))
    )


def _check_grid(thresholds: ArrayLike | None) -> np.ndarray:
    from lfr_eval.search._kernel import check_thresholds

    if thresholds is None:
        out: np.ndarray = DEFAULT_THRESHOLDS.copy()
        return out
    try:
        return check_thresholds(np.atleast_1d(np.asarray(thresholds, dtype=np.float64)))
    except ValueError as exc:
        raise ProtocolError(str(exc)) from exc


def run_protocol(
    protocol: OpenSetProtocol,
    embeddings: ImageEmbeddings,
    *,
    top_k: int = DEFAULT_TOP_K,
    backend: Backend = "numpy",
    device: str = "cpu",
    failures: FailurePolicy = "nist",
    thresholds: ArrayLike | None = None,
    scale: ScoringScale | None = None,
    enrolment: EnrolmentSettings | None = None,
) -> ProtocolRun:
    """Search every mated and non-mated probe against the protocol's watchlist.

    Parameters
    ----------
    protocol : OpenSetProtocol
    embeddings : ImageEmbeddings
        Aligned with ``protocol.manifest`` rows (rows the protocol does not use may be empty).
    top_k : int
        Candidates kept per non-mated search.
    backend, device :
        Scoring backend and device (see :func:`lfr_eval.metrics.score_searches`); a GPU asked
        for but absent raises :class:`~lfr_eval.errors.RuntimeUnavailableError`.
    failures : {"nist", "exclude"}
        ``"nist"`` (default): probes that failed to acquire stay in the SearchSet, a failed
        mated probe as a miss at every threshold and rank, a failed non-mated probe as a
        search with no candidate (NIST FRTE). ``"exclude"``: they are left out of the rates.
        They are counted in :attr:`ProtocolRun.acquisition` either way.
    thresholds : array_like, optional
        Ascending similarity grid of :attr:`ProtocolRun.filler_counts` (default
        :data:`DEFAULT_THRESHOLDS`); scaling can report only thresholds on it.
    scale : ScoringScale, optional
        Memory setting, work folder (resume) and progress bars of the scoring pass.
    enrolment : EnrolmentSettings, optional
        What happens to subjects who fail to enrol (default: their mated searches are misses,
        no next image, no face-size gate); the outcome is :attr:`ProtocolRun.enrolment`.

    Returns
    -------
    ProtocolRun

    Raises
    ------
    ProtocolError
        No enrolment image gave a template, or an unknown ``failures`` policy.
    """
    grid = _check_grid(thresholds)
    rows = _usable_rows(protocol, embeddings, failures, enrolment or EnrolmentSettings())
    manifest, attributes, subjects = rows.manifest, rows.attributes, rows.subjects
    ok, enrol = rows.ok, rows.enrol
    # The watchlist subjects play the fillers' part: each non-mated search's false-match
    # rate against them is what scales to other watchlist sizes.
    listed = np.unique(subjects[enrol])
    if attributes:
        subject_labels = manifest.subject_attributes(attributes).loc[listed]
    else:
        subject_labels = pd.DataFrame(index=range(len(listed)))
    cells, filler_cells = filler_cell_codes(subject_labels.reset_index(drop=True), len(listed))
    template_cells = filler_cells[np.searchsorted(listed, subjects[enrol])]
    scored = _score(
        embeddings, rows, enrol, top_k, backend, device, grid, template_cells, len(cells),
        scale or ScoringScale(),
    )
    searches, mated_rows = scored.searches, scored.mated_rows
    non_mated_rows = scored.non_mated_rows
    searches, mated_rows, non_mated_rows = _add_failures(
        searches, mated_rows, non_mated_rows, rows
    )
    # a candidate's filler index is its subject's position among the listed subjects
    filler_of_gallery = np.searchsorted(listed, subjects[enrol]).astype(np.int64)
    filler_counts = _filler_counts(
        scored, rows, non_mated_rows, grid, cells, filler_cells, filler_of_gallery
    )
    roles = {
        "enrolment": protocol.enrolment,
        "mated": protocol.mated,
        "non_mated": protocol.non_mated,
    }
    return ProtocolRun(
        searches=searches,
        filler_counts=filler_counts,
        acquisition=_acquisition_table(manifest, roles, ok, attributes),
        failed_to_enrol=rows.enrolment.failed,
        mated_rows=mated_rows,
        non_mated_rows=non_mated_rows,
        scoring_runtime=scored.runtime,
        failures=failures,
        enrolment=rows.enrolment,
    )


def run_npl_protocol(
    protocol: NplProtocol,
    embeddings: ImageEmbeddings,
    *,
    top_k: int = DEFAULT_TOP_K,
    backend: Backend = "numpy",
    device: str = "cpu",
    failures: FailurePolicy = "nist",
    thresholds: ArrayLike | None = None,
    scale: ScoringScale | None = None,
    enrolment: EnrolmentSettings | None = None,
) -> ProtocolRun:
    """Score the NPL design: volunteers enrolled among the fillers (watchlist = volunteers +
    fillers); mated searches find their volunteer's template; non-mated searches meet every
    filler and every volunteer in one pass: the SearchSet, and the fillers at or above each
    threshold (:attr:`ProtocolRun.filler_counts`).

    ``failures``, ``thresholds``, ``scale`` and ``enrolment`` are as in :func:`run_protocol`;
    a filler that failed to acquire is simply not in the gallery (counted in
    :attr:`ProtocolRun.acquisition` under role ``filler``)."""
    grid = _check_grid(thresholds)
    rows = _usable_rows(protocol, embeddings, failures, enrolment or EnrolmentSettings())
    manifest, attributes = rows.manifest, rows.attributes
    ok = rows.ok
    fillers = protocol.fillers[ok[protocol.fillers]]
    gallery = np.concatenate([rows.enrol, fillers])
    filler_labels = (
        _groups(manifest, fillers, attributes)
        if attributes
        else pd.DataFrame(index=range(len(fillers)))
    )
    cells, filler_cells = filler_cell_codes(filler_labels, len(fillers))
    # volunteers are searched (SearchSet) but not counted among the fillers (group -1)
    template_cells = np.concatenate([np.full(len(rows.enrol), -1, np.int64), filler_cells])
    scored = _score(
        embeddings, rows, gallery, top_k, backend, device, grid, template_cells, len(cells),
        scale or ScoringScale(),
    )
    searches, mated_rows = scored.searches, scored.mated_rows
    non_mated_rows = scored.non_mated_rows
    searches, mated_rows, non_mated_rows = _add_failures(
        searches, mated_rows, non_mated_rows, rows
    )
    filler_of_gallery = np.concatenate(
        [np.full(len(rows.enrol), -1, np.int64), np.arange(len(fillers), dtype=np.int64)]
    )
    filler_counts = _filler_counts(
        scored, rows, non_mated_rows, grid, cells, filler_cells, filler_of_gallery
    )
    roles = {
        "enrolment": protocol.enrolment,
        "mated": protocol.mated,
        "non_mated": protocol.non_mated,
        "filler": protocol.fillers,
    }
    return ProtocolRun(
        searches=searches,
        filler_counts=filler_counts,
        acquisition=_acquisition_table(manifest, roles, ok, attributes),
        failed_to_enrol=rows.enrolment.failed,
        mated_rows=mated_rows,
        non_mated_rows=non_mated_rows,
        scoring_runtime=scored.runtime,
        failures=failures,
        enrolment=rows.enrolment,
    )
