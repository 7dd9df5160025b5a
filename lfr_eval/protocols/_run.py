"""Score a protocol's searches against its watchlist: embeddings in, a SearchSet out.

The searches themselves are scored by :func:`lfr_eval.metrics.score_searches`; this module
chooses the probes and gallery of each role and keeps, for watchlist-size scaling, each
non-mated search's similarity to every watchlist subject (or filler).

Images the engine could not use (no face, unreadable) are **failures to acquire**. They are left
out of the SearchSet and counted, by role and group, in :attr:`ProtocolRun.acquisition`: an
evaluation reports them beside FPIR/FNIR rather than folding them in silently. An enrolled
subject none of whose enrolment images gave a template is a **failure to enrol**: the subject is
not on the watchlist, and its mated searches are dropped (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lfr_eval.datasets import ImageEmbeddings, Manifest
from lfr_eval.faces import RuntimeInfo
from lfr_eval.metrics import SearchSet
from lfr_eval.metrics._scoring import Backend, score_searches
from lfr_eval.protocols._npl import FillerScores, NplProtocol
from lfr_eval.protocols._open_set import OpenSetProtocol, ProtocolError

#: Candidates kept per non-mated search (selectivity needs more than one).
DEFAULT_TOP_K = 20

#: Largest probes × templates block scored at once (float32: 2**24 values = 64 MiB).
_BLOCK_ELEMENTS = 1 << 24

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
        Mated and non-mated searches that got a template, against the enrolled watchlist.
    filler_scores : FillerScores
        Each non-mated search's similarity to every watchlist subject (open set) or every
        filler (NPL): the input of watchlist-size scaling.
    acquisition : DataFrame
        Failures to acquire: columns ``role`` (enrolment, mated, non_mated, filler),
        ``attribute``, ``group`` (``"all"``/``"all"`` for the totals), ``images``, ``failed``.
    failed_to_enrol : int
        Enrolled subjects with no usable enrolment image (off the watchlist).
    mated_rows, non_mated_rows : ndarray of int
        Manifest rows behind each search of :attr:`searches`, in order.
    scoring_runtime : RuntimeInfo
        What computed the scores (numpy on the CPU, torch/cupy on a GPU).
    """

    searches: SearchSet
    filler_scores: FillerScores
    acquisition: pd.DataFrame
    failed_to_enrol: int
    mated_rows: np.ndarray
    non_mated_rows: np.ndarray
    scoring_runtime: RuntimeInfo


def subject_scores(
    probes: np.ndarray, templates: np.ndarray, template_subjects: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each probe's similarity to each subject: the best over the subject's templates.

    Parameters
    ----------
    probes : ndarray of shape (p, d), unit rows
    templates : ndarray of shape (t, d), unit rows
    template_subjects : ndarray of shape (t,)

    Returns
    -------
    scores : ndarray of shape (p, s), float32
        Cosine similarities in [-1, 1].
    subjects : ndarray of shape (s,)
        Sorted distinct subject ids (the columns of ``scores``).
    """
    subjects, codes = np.unique(np.asarray(template_subjects).astype(str), return_inverse=True)
    order = np.argsort(codes, kind="stable")
    sorted_templates = np.ascontiguousarray(templates[order], dtype=np.float32)
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    out = np.empty((len(probes), len(subjects)), np.float32)
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(1, len(sorted_templates)))
    probes = np.asarray(probes, dtype=np.float32)
    for start in range(0, len(probes), rows_per_block):
        block = probes[start : start + rows_per_block] @ sorted_templates.T
        out[start : start + rows_per_block] = np.maximum.reduceat(block, starts, axis=1)
    np.clip(out, -1.0, 1.0, out=out)
    return out, subjects


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


def _score(
    embeddings: ImageEmbeddings,
    manifest: Manifest,
    attributes: list[str],
    mated: np.ndarray,
    non_mated: np.ndarray,
    gallery: np.ndarray,
    top_k: int,
    backend: Backend,
    device: str,
) -> tuple[SearchSet, np.ndarray, np.ndarray, RuntimeInfo]:
    """The SearchSet of mated and non-mated probes against a gallery (metrics' scoring), with
    the manifest rows behind each mated and each non-mated search."""
    subjects = manifest.subject_ids.astype(str)
    probes = np.concatenate([mated, non_mated])
    scored = score_searches(
        embeddings.vectors[probes],
        subjects[probes],
        embeddings.vectors[gallery],
        subjects[gallery],
        k=top_k,
        probe_groups=_groups(manifest, probes, attributes) if attributes else None,
        backend=backend,
        device=device,
    )
    return (
        scored.searches,
        probes[scored.mated_probe_index],
        probes[scored.non_mated_probe_index],
        scored.runtime,
    )


def _empty_watchlist(protocol_rows: np.ndarray, embeddings: ImageEmbeddings) -> ProtocolError:
    reasons = sorted({str(r) for r in embeddings.failure[protocol_rows]})
    return ProtocolError(
        MSG_EMPTY_WATCHLIST.format(n=len(protocol_rows), reasons="; ".join(reasons))
    )


def run_protocol(
    protocol: OpenSetProtocol,
    embeddings: ImageEmbeddings,
    *,
    top_k: int = DEFAULT_TOP_K,
    backend: Backend = "numpy",
    device: str = "cpu",
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

    Returns
    -------
    ProtocolRun

    Raises
    ------
    ProtocolError
        No enrolment image gave a template.
    """
    manifest = protocol.manifest
    _check(manifest, embeddings)
    attributes = list(manifest.attributes)
    subjects = manifest.subject_ids.astype(str)
    ok = embeddings.ok
    enrol = protocol.enrolment[ok[protocol.enrolment]]
    if len(enrol) == 0:
        raise _empty_watchlist(protocol.enrolment, embeddings)
    enrolled = np.unique(subjects[enrol])
    mated = protocol.mated[ok[protocol.mated] & np.isin(subjects[protocol.mated], enrolled)]
    non_mated = protocol.non_mated[ok[protocol.non_mated]]
    searches, mated_rows, non_mated_rows, runtime = _score(
        embeddings, manifest, attributes, mated, non_mated, enrol, top_k, backend, device
    )
    # The watchlist subjects play the fillers' part: each non-mated search's false-match
    # rate against them is what scales to other watchlist sizes.
    non_mated_scores, columns = subject_scores(
        embeddings.vectors[non_mated_rows], embeddings.vectors[enrol], subjects[enrol]
    )
    if attributes:
        filler_groups = manifest.subject_attributes(attributes).loc[columns].reset_index(drop=True)
    else:
        filler_groups = pd.DataFrame(index=range(len(columns)))
    filler_scores = FillerScores(
        scores=non_mated_scores,
        search_subjects=subjects[non_mated_rows].astype(object),
        search_groups=_groups(manifest, non_mated_rows, attributes),
        filler_groups=filler_groups,
    )
    roles = {
        "enrolment": protocol.enrolment,
        "mated": protocol.mated,
        "non_mated": protocol.non_mated,
    }
    return ProtocolRun(
        searches=searches,
        filler_scores=filler_scores,
        acquisition=_acquisition_table(manifest, roles, ok, attributes),
        failed_to_enrol=int(protocol.watchlist_size - len(enrolled)),
        mated_rows=mated_rows,
        non_mated_rows=non_mated_rows,
        scoring_runtime=runtime,
    )


def run_npl_protocol(
    protocol: NplProtocol,
    embeddings: ImageEmbeddings,
    *,
    top_k: int = DEFAULT_TOP_K,
    backend: Backend = "numpy",
    device: str = "cpu",
) -> ProtocolRun:
    """Score the NPL design: volunteers enrolled among the fillers (watchlist = volunteers +
    fillers); mated searches find their volunteer's template; non-mated searches meet every
    filler (the :attr:`ProtocolRun.filler_scores`) and every volunteer (the SearchSet)."""
    manifest = protocol.manifest
    _check(manifest, embeddings)
    attributes = list(manifest.attributes)
    subjects = manifest.subject_ids.astype(str)
    ok = embeddings.ok
    enrol = protocol.enrolment[ok[protocol.enrolment]]
    fillers = protocol.fillers[ok[protocol.fillers]]
    if len(enrol) == 0:
        raise _empty_watchlist(protocol.enrolment, embeddings)
    enrolled = np.unique(subjects[enrol])
    n_volunteers = len(np.unique(subjects[protocol.enrolment]))
    mated = protocol.mated[ok[protocol.mated] & np.isin(subjects[protocol.mated], enrolled)]
    non_mated = protocol.non_mated[ok[protocol.non_mated]]
    gallery = np.concatenate([enrol, fillers])
    searches, mated_rows, non_mated_rows, runtime = _score(
        embeddings, manifest, attributes, mated, non_mated, gallery, top_k, backend, device
    )
    filler_scores = FillerScores.from_embeddings(
        embeddings.vectors[non_mated_rows],
        embeddings.vectors[fillers],
        subjects[non_mated_rows],
        _groups(manifest, non_mated_rows, attributes),
        _groups(manifest, fillers, attributes)
        if attributes
        else pd.DataFrame(index=range(len(fillers))),
    )
    roles = {
        "enrolment": protocol.enrolment,
        "mated": protocol.mated,
        "non_mated": protocol.non_mated,
        "filler": protocol.fillers,
    }
    return ProtocolRun(
        searches=searches,
        filler_scores=filler_scores,
        acquisition=_acquisition_table(manifest, roles, ok, attributes),
        failed_to_enrol=int(n_volunteers - len(enrolled)),
        mated_rows=mated_rows,
        non_mated_rows=non_mated_rows,
        scoring_runtime=runtime,
    )
