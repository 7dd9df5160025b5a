"""One call from a manifest and an engine to an :class:`~lfr_eval.results.EvaluationResult`.

:func:`evaluate` is what the CLI (``lfr-eval evaluate``), the app and the notebooks call:

1. hash every image (the dataset hash and the cache key of each image);
2. build the protocol from the manifest and a seed (split by subject);
3. embed the images the protocol uses, through the cache (a second run recomputes nothing;
   an interrupted run resumes);
4. search every probe against the watchlist, keeping the few numbers the metrics need
   (probes that failed to acquire count as NIST counts them unless ``failures="exclude"``);
5. scale FPIR to other watchlist sizes (and, if given, a deployed watchlist's demographic
   composition) from each non-mated search's false-match rate;
6. record engine, models, runtime, dataset hash, protocol, seed, software and timings.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lfr_eval.datasets import (
    EmbeddingCache,
    ImageEmbeddings,
    Manifest,
    ManifestWarning,
    embed_manifest,
)
from lfr_eval.datasets._embedding import FaceChoice
from lfr_eval.distributed import ClusterSpec
from lfr_eval.faces import FaceEngine
from lfr_eval.metrics._scoring import Backend
from lfr_eval.protocols import (
    EnrolmentSettings,
    FailurePolicy,
    FillerCounts,
    NplParams,
    NplProtocol,
    OpenSetParams,
    OpenSetProtocol,
    ProtocolError,
    ProtocolRun,
    ScoringScale,
    WatchlistComposition,
    build_npl_protocol,
    build_open_set_protocol,
    resample_fpir,
    resample_sizes,
    run_npl_protocol,
    run_protocol,
    scale_fpir,
    tail_model_fpir,
)
from lfr_eval.protocols._run import DEFAULT_THRESHOLDS, DEFAULT_TOP_K
from lfr_eval.results import DatasetInfo, EvaluationResult, ProtocolInfo
from lfr_eval.search._blocks import temporary_blocks_removed_on_success

#: ``progress(stage, done, total)``; stages are "hashing", "embedding", "scoring", "scaling".
StageProgress = Callable[[str, int, int], None]

#: Watchlist sizes FPIR is scaled to by default (the measured size and the filler count are
#: always added): a 1-2-5 series, because the threshold explorer offers exactly the sizes the
#: scaling table holds (one function per figure: no other formula for the sizes between).
DEFAULT_WATCHLIST_SIZES = (
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
)  # fmt: skip

#: Similarity thresholds of the stored scaling tables: [-1, 1] in steps of 0.005.
DEFAULT_SCALING_THRESHOLDS = DEFAULT_THRESHOLDS

MSG_NO_SCALING = "no watchlist-size scaling table: {why}"


class ScalingSkipped(UserWarning):
    """The scaling table could not be made (the message says why)."""


def default_thresholds() -> np.ndarray:
    """The threshold grid used for stored tables: [-1, 1] in steps of 0.005."""
    thresholds: np.ndarray = DEFAULT_SCALING_THRESHOLDS.copy()
    return thresholds


def _expand(part: ImageEmbeddings, rows: np.ndarray, n: int) -> ImageEmbeddings:
    """Embeddings of a subset of rows placed back at their rows of an ``n``-row manifest."""
    dim = part.vectors.shape[1]
    vectors = np.zeros((n, dim), np.float32)
    vectors[rows] = part.vectors
    ok = np.zeros(n, bool)
    ok[rows] = part.ok
    n_faces = np.zeros(n, np.int64)
    n_faces[rows] = part.n_faces
    failure = np.full(n, "not used by the protocol", dtype=object)
    failure[rows] = part.failure
    sha = np.full(n, "", dtype=object)
    sha[rows] = part.image_sha256
    det = np.full(n, np.nan)
    det[rows] = part.det_score
    size = np.full(n, np.nan)
    size[rows] = part.face_size_px
    return ImageEmbeddings(
        part.engine_key, sha, vectors, ok, n_faces, failure, det, size, part.n_computed
    )


def _scaling_table(
    run: ProtocolRun,
    sizes: Sequence[int],
    thresholds: np.ndarray,
    attributes: Sequence[str],
    n_resamples: int,
    seed: int,
    composition: WatchlistComposition | None = None,
    tail_model: bool = False,
) -> pd.DataFrame | None:
    fillers = run.filler_counts
    if fillers.n_searches == 0 or fillers.n_fillers == 0:
        why = (
            "the protocol has no non-mated searches"
            if fillers.n_searches == 0
            else "no filler (watchlist subject) gave a template"
        )
        warnings.warn(MSG_NO_SCALING.format(why=why), ScalingSkipped, stacklevel=3)
        return None
    # the deployed watchlist's make-up, if given, weights every figure (none: the measured mix)
    over = None if composition is None else composition.attribute
    shares = None if composition is None else composition.shares
    tables = [
        scale_fpir(
            fillers, sizes, thresholds, n_boot=200, seed=seed, attribute=over, composition=shares
        ).table
    ]
    for attribute in attributes:
        by = scale_fpir(
            fillers,
            sizes,
            thresholds,
            by=attribute,
            n_boot=200,
            seed=seed,
            attribute=over,
            composition=shares,
        ).table
        tables.append(by[by["group_attribute"] == attribute])
    small = resample_sizes(fillers, sizes, attribute=over, composition=shares)
    if small and n_resamples > 0:
        tables.append(
            resample_fpir(
                fillers,
                small,
                thresholds,
                n_resamples=n_resamples,
                seed=seed,
                attribute=over,
                composition=shares,
            ).table
        )
    if tail_model:
        tables.append(_tail_rows(fillers, sizes, thresholds, seed))
    return pd.concat([t for t in tables if not t.empty], ignore_index=True)


def _tail_rows(
    fillers: FillerCounts, sizes: Sequence[int], thresholds: np.ndarray, seed: int
) -> pd.DataFrame:
    """The GPD tail model's rows (model-based, labelled), or none with a warning saying why."""
    try:
        model = tail_model_fpir(fillers, sizes, thresholds, n_boot=100, seed=seed)
    except ProtocolError as exc:
        warnings.warn(f"no tail model: {exc}", ScalingSkipped, stacklevel=4)
        return pd.DataFrame()
    table = model.table.assign(
        group_attribute="all", group="all", estimator=model.fit.describe()
    )
    return table


def _check_composition(
    composition: WatchlistComposition | None, manifest: Manifest
) -> WatchlistComposition | None:
    if composition is None:
        return None
    if composition.attribute not in manifest.attributes:
        raise ProtocolError(
            f"the watchlist composition is over {composition.attribute!r}, which is not an "
            f"attribute of this dataset ({list(manifest.attributes)}); label the images with "
            "it or drop the composition"
        )
    return composition


def evaluate(
    manifest: Manifest,
    engine: FaceEngine,
    protocol: OpenSetParams | NplParams | None = None,
    *,
    cache: EmbeddingCache | None = None,
    progress: bool | StageProgress | None = None,
    top_k: int = DEFAULT_TOP_K,
    face_choice: FaceChoice = "largest",
    workers: int = 1,
    engine_factory: Callable[[], FaceEngine] | None = None,
    cluster: ClusterSpec | None = None,
    watchlist_sizes: Sequence[int] = DEFAULT_WATCHLIST_SIZES,
    scaling_thresholds: np.ndarray | None = None,
    n_resamples: int = 100,
    scoring_backend: Backend = "numpy",
    scoring_device: str = "cpu",
    failures: FailurePolicy = "nist",
    composition: WatchlistComposition | None = None,
    tail_model: bool = False,
    scoring_scale: ScoringScale | None = None,
    enrolment: EnrolmentSettings | None = None,
) -> EvaluationResult:
    """Run an open-set (or NPL) evaluation of ``engine`` on ``manifest``.

    Parameters
    ----------
    manifest : Manifest
        Images with subject ids and group labels.
    engine : FaceEngine
        The face engine under test.
    protocol : OpenSetParams or NplParams, optional
        Protocol and its settings (seed included); default ``OpenSetParams()``.
    cache : EmbeddingCache, optional
        Embedding cache; without one every image is embedded afresh.
    progress : bool or callable, optional
        True: tqdm bars on stderr. A callable gets ``(stage, done, total)``.
    top_k : int
        Candidates kept per non-mated search.
    face_choice : {"largest", "central"}
        Which face stands for an image with several.
    workers, engine_factory :
        Embed in ``workers`` processes, each building its engine with ``engine_factory``
        (see :func:`~lfr_eval.datasets.embed_manifest`).
    cluster : ClusterSpec, optional
        Run on a Dask cluster (:mod:`lfr_eval.distributed`), opened once for the whole
        evaluation: images embedded as tasks (same embeddings) and the numpy scoring kernel's
        probe blocks × gallery shards as tasks merged exactly (same scores, ranks and counts).
    watchlist_sizes : sequence of int
        Watchlist sizes FPIR is scaled to (the measured size is added).
    scaling_thresholds : ndarray, optional
        Thresholds of the scaling table (default :func:`default_thresholds`).
    n_resamples : int
        Galleries drawn per size for the resampled scaling (0: analytic only).
    scoring_backend, scoring_device :
        Where probe × watchlist scores are computed (``"numpy"``/``"cpu"``, or ``"torch"``
        on ``"cuda"``); a GPU asked for but absent raises
        :class:`~lfr_eval.errors.RuntimeUnavailableError`.
    failures : {"nist", "exclude"}
        How probes that failed to acquire (no face, no template) enter FPIR and FNIR.
    tail_model : bool
        Also add the model-based rows of :func:`lfr_eval.protocols.tail_model_fpir` (a
        generalised Pareto tail of impostor scores, for thresholds where counts run out) to the
        scaling table, labelled ``method = "gpd-tail-model (model-based ...)"``; off by default,
        and never read by :func:`lfr_eval.protocols.scaled_fpir`.
        ``"nist"`` (default, NIST FRTE's convention): a failed mated probe is a miss at every
        threshold and rank; a failed non-mated probe is a search that returned no candidate.
        ``"exclude"``: both are left out of the rates. Either way they are counted by role
        and group in :attr:`EvaluationResult.acquisition`.
    composition : WatchlistComposition, optional
        Demographic make-up of the deployed watchlist: the scaling table weights each
        filler (watchlist-subject) group by its share, as NPL scaled to the deployed
        watchlist's composition. Recorded in the result. Default: the measured mix.
    scoring_scale : ScoringScale, optional
        Memory setting, work folder (resumable blocks) and progress of the scoring pass;
        nothing is skipped for size. Default: 3 GiB, no work folder, progress as ``progress``.
    enrolment : EnrolmentSettings, optional
        Failures to enrol (a watchlist subject with no usable enrolment image): by default
        (ISO/IEC 19795-1) the subject's mated searches count as misses in FNIR;
        ``EnrolmentSettings(failures="exclude")`` leaves them out, ``next_image=True`` enrols
        the subject from its next usable image first. The rate and counts are in
        :attr:`EvaluationResult.protocol` (``enrolment``).

    Returns
    -------
    EvaluationResult

    Raises
    ------
    ProtocolError
        The protocol cannot be built, no enrolment image gave a template, an unknown
        ``failures`` policy, or a composition over an attribute (or labels) the data lack.
    ManifestError
        (From the manifest) images missing on disk.
    """
    if cluster is not None:
        from lfr_eval.distributed import cluster_active, using_cluster

        if not cluster_active(cluster):
            with using_cluster(cluster):
                return evaluate(
                    manifest,
                    engine,
                    protocol,
                    cache=cache,
                    progress=progress,
                    top_k=top_k,
                    face_choice=face_choice,
                    workers=workers,
                    engine_factory=engine_factory,
                    cluster=cluster,
                    watchlist_sizes=watchlist_sizes,
                    scaling_thresholds=scaling_thresholds,
                    n_resamples=n_resamples,
                    scoring_backend=scoring_backend,
                    scoring_device=scoring_device,
                    failures=failures,
                    composition=composition,
                    tail_model=tail_model,
                    scoring_scale=scoring_scale,
                    enrolment=enrolment,
                )
    protocol = protocol if protocol is not None else OpenSetParams()
    composition = _check_composition(composition, manifest)
    timings: dict[str, float] = {}

    def stage(name: str) -> bool | Callable[[int, int], None] | None:
        if callable(progress):
            return lambda done, total: progress(name, done, total)
        return progress

    start = time.perf_counter()
    hash_progress = stage("hashing")
    manifest.image_hashes(progress=hash_progress is True)
    dataset = DatasetInfo(
        name=manifest.name,
        sha256=manifest.dataset_hash(),
        n_images=manifest.n_images,
        n_subjects=manifest.n_subjects,
        attributes=manifest.attributes,
    )
    timings["hashing_s"] = time.perf_counter() - start

    built: OpenSetProtocol | NplProtocol
    if isinstance(protocol, OpenSetParams):
        built = build_open_set_protocol(manifest, protocol)
        kind, counts = "open_set", built.counts().to_dict()
    elif isinstance(protocol, NplParams):
        built = build_npl_protocol(manifest, protocol)
        kind = "npl"
        counts = {
            "volunteers": len(np.unique(manifest.subject_ids[built.enrolment])),
            "enrolment_images": len(built.enrolment),
            "mated_searches": len(built.mated),
            "fillers": built.n_fillers,
            "non_mated_searches": len(built.non_mated),
        }
    else:
        raise TypeError("protocol must be OpenSetParams or NplParams")

    start = time.perf_counter()
    rows = built.rows_used()
    subset = manifest.select(np.isin(np.arange(len(manifest)), rows))
    part = embed_manifest(
        subset,
        engine,
        cache,
        face_choice=face_choice,
        progress=stage("embedding"),
        workers=workers,
        engine_factory=engine_factory,
        cluster=cluster,
    )
    embeddings = _expand(part, rows, len(manifest))
    timings["embedding_s"] = time.perf_counter() - start
    timings["images_embedded"] = float(part.n_computed)
    timings["images_from_cache"] = float(len(set(part.image_sha256)) - part.n_computed)

    thresholds = (
        default_thresholds()
        if scaling_thresholds is None
        else np.asarray(scaling_thresholds, dtype=np.float64)
    )
    if scoring_scale is None:
        scoring_scale = ScoringScale(progress=progress is True)
    # counts memory-mapped from a temporary folder (no work folder given) are deleted once the
    # scaling table is made; an interrupted run keeps them and the same run resumes from them
    with temporary_blocks_removed_on_success():
        start = time.perf_counter()
        with warnings.catch_warnings():
            # inconsistent per-subject labels were already reported when the manifest was read
            warnings.simplefilter("ignore", ManifestWarning)
            options: dict[str, Any] = dict(
                top_k=top_k,
                backend=scoring_backend,
                device=scoring_device,
                failures=failures,
                thresholds=thresholds,
                scale=scoring_scale,
                enrolment=enrolment,
            )
            if isinstance(built, OpenSetProtocol):
                run = run_protocol(built, embeddings, **options)
            else:
                run = run_npl_protocol(built, embeddings, **options)
        timings["scoring_s"] = time.perf_counter() - start

        start = time.perf_counter()
        sizes = sorted({int(n) for n in watchlist_sizes} | {int(run.filler_counts.n_fillers)} - {0})
        scaling = _scaling_table(
            run,
            sizes,
            thresholds,
            manifest.attributes,
            n_resamples,
            int(protocol.seed),
            composition,
            tail_model,
        )
        timings["scaling_s"] = time.perf_counter() - start

    paths = manifest.paths
    return EvaluationResult(
        engine=engine.engine_id,
        runtime=engine.runtime,
        engine_key=part.engine_key,
        dataset=dataset,
        protocol=ProtocolInfo(
            kind=kind,
            params=protocol.to_dict(),
            counts=counts,
            top_k=int(run.searches.k),
            failed_to_enrol=run.failed_to_enrol,
            failures=run.failures,
            enrolment=run.enrolment,
        ),
        searches=run.searches,
        search_images=(paths[run.mated_rows], paths[run.non_mated_rows]),
        acquisition=run.acquisition,
        scaling=scaling,
        composition=composition,
        scoring_runtime=run.scoring_runtime,
        timings=timings,
    )


__all__ = ["DEFAULT_WATCHLIST_SIZES", "ProtocolError", "default_thresholds", "evaluate"]
