"""Score a protocol's searches against its watchlist: embeddings in, a SearchSet out.

The searches themselves are scored by :func:`lfr_eval.metrics.score_searches`; this module
chooses the probes and gallery of each role and keeps, for watchlist-size scaling, each
non-mated search's similarity to every watchlist subject (or filler).

Images the engine could not use (no face, unreadable) are **failures to acquire**. By default
(``failures="nist"``) they are counted as NIST FRTE counts them: a mated probe that gave no
template is a miss at every threshold and rank (it is in the SearchSet with mate score ``-inf``
and rank N + 1), and a non-mated probe that gave none is a search that returned no candidate (a
row of ``-inf``: in FPIR's denominator, never a false positive). ``failures="exclude"`` leaves
them out of the SearchSet instead. Either way they are also counted, by role and group, in
:attr:`ProtocolRun.acquisition`, so an evaluation can report them beside FPIR/FNIR.

An enrolled subject none of whose enrolment images gave a template is a **failure to enrol**:
the subject is not on the watchlist, and its mated searches are dropped (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from lfr_eval.datasets import ImageEmbeddings, Manifest
from lfr_eval.faces import RuntimeInfo
from lfr_eval.metrics import SearchSet
from lfr_eval.metrics._scoring import Backend, score_searches
from lfr_eval.protocols._npl import FillerScores, NplProtocol
from lfr_eval.protocols._open_set import OpenSetProtocol, ProtocolError

#: How failures to acquire enter the rates: "nist" (NIST FRTE: failed mated probes are misses,
#: failed non-mated probes searches without candidates) or "exclude" (left out of the rates).
FailurePolicy = Literal["nist", "exclude"]
FAILURE_POLICIES: tuple[str, ...] = ("nist", "exclude")

MSG_FAILURE_POLICY = "failures must be 'nist' (count them, the default) or 'exclude', got {value!r}"

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
        Mated and non-mated searches against the enrolled watchlist; with
        ``failures == "nist"`` the searches that failed to acquire are appended after the
        scored ones of their kind (see module doc).
    filler_scores : FillerScores
        Each non-mated search's similarity to every watchlist subject (open set) or every
        filler (NPL): the input of watchlist-size scaling. Rows follow the SearchSet's
        non-mated searches; a failed search's row is ``-inf`` (no false match).
    acquisition : DataFrame
        Failures to acquire: columns ``role`` (enrolment, mated, non_mated, filler),
        ``attribute``, ``group`` (``"all"``/``"all"`` for the totals), ``images``, ``failed``.
    failed_to_enrol : int
        Enrolled subjects with no usable enrolment image (off the watchlist).
    mated_rows, non_mated_rows : ndarray of int
        Manifest rows behind each search of :attr:`searches`, in order.
    scoring_runtime : RuntimeInfo
        What computed the scores (numpy on the CPU, torch/cupy on a GPU).
    failures : str
        ``"nist"`` or ``"exclude"``: how failures to acquire entered :attr:`searches`.
    """

    searches: SearchSet
    filler_scores: FillerScores
    acquisition: pd.DataFrame
    failed_to_enrol: int
    mated_rows: np.ndarray
    non_mated_rows: np.ndarray
    scoring_runtime: RuntimeInfo
    failures: str = "nist"


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


def _check_policy(failures: str) -> None:
    if failures not in FAILURE_POLICIES:
        raise ProtocolError(MSG_FAILURE_POLICY.format(value=failures))


@dataclass(frozen=True, eq=False)
class _UsableRows:
    """A protocol's manifest rows split by whether the engine could use them.

    ``enrol``, ``mated`` and ``non_mated`` are the rows that gave a template (mated searches
    only of subjects that made it onto the watchlist); ``failed_mated`` and
    ``failed_non_mated`` are the searches that failed to acquire (see module doc).
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


def _usable_rows(
    protocol: OpenSetProtocol | NplProtocol, embeddings: ImageEmbeddings, failures: str
) -> _UsableRows:
    """Check the inputs and split the protocol's enrolment and search rows (both designs)."""
    _check_policy(failures)
    manifest = protocol.manifest
    _check(manifest, embeddings)
    subjects = manifest.subject_ids.astype(str)
    ok = embeddings.ok
    enrol = protocol.enrolment[ok[protocol.enrolment]]
    if len(enrol) == 0:
        raise _empty_watchlist(protocol.enrolment, embeddings)
    enrolled = np.unique(subjects[enrol])
    listed = np.isin(subjects[protocol.mated], enrolled)
    return _UsableRows(
        manifest=manifest,
        attributes=list(manifest.attributes),
        subjects=subjects,
        ok=ok,
        enrol=enrol,
        enrolled=enrolled,
        mated=protocol.mated[ok[protocol.mated] & listed],
        non_mated=protocol.non_mated[ok[protocol.non_mated]],
        failed_mated=protocol.mated[~ok[protocol.mated] & listed],
        failed_non_mated=protocol.non_mated[~ok[protocol.non_mated]],
    )


def _score(
    embeddings: ImageEmbeddings,
    rows: _UsableRows,
    gallery: np.ndarray,
    top_k: int,
    backend: Backend,
    device: str,
) -> tuple[SearchSet, np.ndarray, np.ndarray, RuntimeInfo]:
    """The SearchSet of the usable mated and non-mated probes against a gallery (metrics'
    scoring), with the manifest rows behind each mated and each non-mated search."""
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
    )
    return (
        scored.searches,
        probes[scored.mated_probe_index],
        probes[scored.non_mated_probe_index],
        scored.runtime,
    )


def _add_failures(
    searches: SearchSet,
    mated_rows: np.ndarray,
    non_mated_rows: np.ndarray,
    rows: _UsableRows,
) -> tuple[SearchSet, np.ndarray, np.ndarray]:
    """Append the probes that failed to acquire as NIST counts them (see module doc)."""
    manifest, attributes = rows.manifest, rows.attributes
    failed_mated, failed_non_mated = rows.failed_mated, rows.failed_non_mated
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


def _failed_rows_below(scores: np.ndarray, n_failed: int) -> np.ndarray:
    """Filler scores with a row of ``-inf`` (no false match) per failed non-mated search."""
    if n_failed == 0:
        return scores
    failed = np.full((n_failed, scores.shape[1]), -np.inf, dtype=scores.dtype)
    return np.concatenate([scores, failed])


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
    failures: FailurePolicy = "nist",
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

    Returns
    -------
    ProtocolRun

    Raises
    ------
    ProtocolError
        No enrolment image gave a template, or an unknown ``failures`` policy.
    """
    rows = _usable_rows(protocol, embeddings, failures)
    manifest, attributes, subjects = rows.manifest, rows.attributes, rows.subjects
    ok, enrol = rows.ok, rows.enrol
    searches, mated_rows, non_mated_rows, runtime = _score(
        embeddings, rows, enrol, top_k, backend, device
    )
    # The watchlist subjects play the fillers' part: each non-mated search's false-match
    # rate against them is what scales to other watchlist sizes.
    non_mated_scores, columns = subject_scores(
        embeddings.vectors[non_mated_rows], embeddings.vectors[enrol], subjects[enrol]
    )
    if failures == "nist":
        searches, mated_rows, non_mated_rows = _add_failures(
            searches, mated_rows, non_mated_rows, rows
        )
        non_mated_scores = _failed_rows_below(non_mated_scores, len(rows.failed_non_mated))
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
        failed_to_enrol=int(protocol.watchlist_size - len(rows.enrolled)),
        mated_rows=mated_rows,
        non_mated_rows=non_mated_rows,
        scoring_runtime=runtime,
        failures=failures,
    )


def run_npl_protocol(
    protocol: NplProtocol,
    embeddings: ImageEmbeddings,
    *,
    top_k: int = DEFAULT_TOP_K,
    backend: Backend = "numpy",
    device: str = "cpu",
    failures: FailurePolicy = "nist",
) -> ProtocolRun:
    """Score the NPL design: volunteers enrolled among the fillers (watchlist = volunteers +
    fillers); mated searches find their volunteer's template; non-mated searches meet every
    filler (the :attr:`ProtocolRun.filler_scores`) and every volunteer (the SearchSet).

    ``failures`` is as in :func:`run_protocol`; a filler that failed to acquire is simply not
    in the gallery (counted in :attr:`ProtocolRun.acquisition` under role ``filler``)."""
    rows = _usable_rows(protocol, embeddings, failures)
    manifest, attributes, subjects = rows.manifest, rows.attributes, rows.subjects
    ok = rows.ok
    fillers = protocol.fillers[ok[protocol.fillers]]
    n_volunteers = len(np.unique(subjects[protocol.enrolment]))
    gallery = np.concatenate([rows.enrol, fillers])
    searches, mated_rows, non_mated_rows, runtime = _score(
        embeddings, rows, gallery, top_k, backend, device
    )
    scored_non_mated = non_mated_rows
    if failures == "nist":
        searches, mated_rows, non_mated_rows = _add_failures(
            searches, mated_rows, non_mated_rows, rows
        )
    scores = (
        np.asarray(embeddings.vectors[scored_non_mated], np.float32)
        @ np.asarray(embeddings.vectors[fillers], np.float32).T
    )
    np.clip(scores, -1.0, 1.0, out=scores)
    filler_scores = FillerScores(
        scores=_failed_rows_below(scores, len(non_mated_rows) - len(scored_non_mated)),
        search_subjects=subjects[non_mated_rows].astype(object),
        search_groups=_groups(manifest, non_mated_rows, attributes),
        filler_groups=_groups(manifest, fillers, attributes)
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
        failed_to_enrol=int(n_volunteers - len(rows.enrolled)),
        mated_rows=mated_rows,
        non_mated_rows=non_mated_rows,
        scoring_runtime=runtime,
        failures=failures,
    )
