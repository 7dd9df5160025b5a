"""Embed every image of a manifest once, through the cache, optionally in several processes."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from lfr_eval.datasets._cache import CachedEmbedding, EmbeddingCache, engine_cache_key
from lfr_eval.datasets._manifest import Manifest
from lfr_eval.errors import ImageError
from lfr_eval.faces import Detections, Face, FaceEngine, load_image
from lfr_eval.faces._dlib_onnx import available_cpus

if TYPE_CHECKING:
    from lfr_eval.distributed._cluster import ClusterSpec

FaceChoice = Literal["largest", "central"]

#: ``progress(done, total)`` is called as images are processed.
ProgressCallback = Callable[[int, int], None]

#: Entries written to the cache per transaction: a crash loses at most this many embeddings.
COMMIT_EVERY = 64

FAILURE_NO_FACE = "no face"


@dataclass(frozen=True)
class ImageEmbeddings:
    """One engine's embeddings of a list of images, in the list's order.

    Attributes
    ----------
    engine_key : str
        :func:`~lfr_eval.datasets.engine_cache_key` of the engine that made them.
    image_sha256 : ndarray of shape (n,), object
    vectors : ndarray of shape (n, D), float32
        Unit-norm embeddings; rows of failed images are all zero (check :attr:`ok`).
    ok : ndarray of shape (n,), bool
        Whether the image got an embedding.
    n_faces : ndarray of shape (n,), int
        Faces detected in each image.
    failure : ndarray of shape (n,), object
        Reason for each failure (``"no face"``, ``"unreadable image: …"``), None on success.
    det_score, face_size_px : ndarray of shape (n,), float
        Detector confidence and inter-ocular distance (pixels) of the chosen face; NaN on failure.
    n_computed : int
        How many were computed in this run (the rest came from the cache, or from shards an
        interrupted cluster run left, see :attr:`n_from_shards`).
    n_from_shards : int
        How many came from Parquet shards of an earlier, interrupted cluster run.
    """

    engine_key: str
    image_sha256: np.ndarray
    vectors: np.ndarray
    ok: np.ndarray
    n_faces: np.ndarray
    failure: np.ndarray
    det_score: np.ndarray
    face_size_px: np.ndarray
    n_computed: int = 0
    n_from_shards: int = 0

    def __len__(self) -> int:
        return len(self.image_sha256)

    @property
    def n_failed(self) -> int:
        return int((~self.ok).sum())


def choose_face(faces: Sequence[Face], image_shape: tuple[int, ...], rule: FaceChoice) -> Face:
    """The face an image stands for when several were found.

    ``"largest"`` takes the biggest box (a portrait or enrolment photo); ``"central"`` takes
    the box whose centre is nearest the image centre (datasets cropped around their subject,
    such as LFW, where bystanders appear at the edges).
    """
    if rule == "largest":
        return max(faces, key=lambda f: f.area)
    if rule == "central":
        height, width = image_shape[:2]
        centre = np.array([width / 2.0, height / 2.0])

        def distance(face: Face) -> float:
            x1, y1, x2, y2 = (float(v) for v in face.box)
            return float(np.hypot((x1 + x2) / 2 - centre[0], (y1 + y2) / 2 - centre[1]))

        return min(faces, key=distance)
    raise ValueError(f"face choice must be 'largest' or 'central', got {rule!r}")


def embed_image_file(
    engine: FaceEngine, path: str | Path, image_sha256: str, face_choice: FaceChoice = "largest"
) -> CachedEmbedding:
    """Detect, choose and embed the face of one image file; failures become a cached reason.

    Only failures caused by the image (unreadable, no face) are turned into entries; anything
    else (a broken engine) propagates.
    """
    try:
        image = load_image(path)
    except ImageError as exc:
        return CachedEmbedding(image_sha256, 0, None, f"unreadable image: {exc}")
    faces = engine.analyze(image, embed=False)
    if not faces:
        return CachedEmbedding(image_sha256, 0, None, FAILURE_NO_FACE)
    face = choose_face(faces, image.shape, face_choice)
    # through the engine contract: the recognizer's own chip (dlib's Face.crop can be another size)
    vector = engine.embed_crops(engine.crops(image, Detections.from_faces([face])))[0]
    vector = np.asarray(vector, dtype=np.float32)
    return CachedEmbedding(
        image_sha256=image_sha256,
        n_faces=len(faces),
        embedding=vector,
        failure=None,
        det_score=float(face.det_score),
        face_size_px=float(face.quality.size_px),
    )


# -------------------------------------------------------------------- worker processes
_worker_engine: FaceEngine | None = None
_worker_choice: FaceChoice = "largest"


def _init_worker(
    factory: Callable[[], FaceEngine], key: str, face_choice: FaceChoice, threads: int
) -> None:
    global _worker_engine, _worker_choice
    from lfr_eval.faces._dlib_onnx import set_cpu_threads

    # the workers share the machine's cores instead of each taking all of them
    set_cpu_threads(threads)
    engine = factory()
    found = engine_cache_key(engine, face_choice)
    if found != key:
        raise RuntimeError(f"worker engine differs from the main one: {found} != {key}")
    _worker_engine, _worker_choice = engine, face_choice


def _embed_in_worker(job: tuple[str, str]) -> CachedEmbedding:
    assert _worker_engine is not None, "worker not initialised"
    return embed_image_file(_worker_engine, job[0], job[1], _worker_choice)


def _report(
    progress: bool | ProgressCallback | None, total: int, initial: int
) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A ``update(n)``/``close()`` pair for a tqdm bar, a callback or nothing."""
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=initial, desc="embedding", unit="img")
        return bar.update, bar.close
    if callable(progress):
        done = [initial]
        progress(initial, total)

        def update(n: int) -> None:
            done[0] += n
            progress(done[0], total)

        return update, lambda: None
    return (lambda n: None), (lambda: None)


def embed_manifest(
    manifest: Manifest,
    engine: FaceEngine,
    cache: EmbeddingCache | None = None,
    *,
    face_choice: FaceChoice = "largest",
    progress: bool | ProgressCallback | None = None,
    workers: int = 1,
    engine_factory: Callable[[], FaceEngine] | None = None,
    cluster: ClusterSpec | None = None,
) -> ImageEmbeddings:
    """Embed every image of a manifest, taking what the cache already has.

    Parameters
    ----------
    manifest : Manifest
    engine : FaceEngine
        The engine (its :func:`engine_cache_key` keys the cache).
    cache : EmbeddingCache, optional
        Where embeddings are looked up and stored; without one nothing is kept.
    face_choice : {"largest", "central"}
        Which face stands for an image with several (see :func:`choose_face`).
    progress : bool or callable, optional
        True for a tqdm bar on stderr; a callable gets ``(done, total)``.
    workers : int
        Processes embedding in parallel (each loads its own engine from ``engine_factory``).
    engine_factory : callable, optional
        Picklable zero-argument callable returning an engine identical to ``engine``
        (e.g. ``functools.partial(load_engine, "dlib", detector="hog")``); needed when
        ``workers > 1`` or with ``cluster``.
    cluster : ClusterSpec, optional
        Embed on a Dask cluster (:mod:`lfr_eval.distributed`) instead of local processes:
        one task per shard of images, each finished shard written as Parquet next to the
        cache, merged into it and deleted; a re-run first merges the shards an interrupted
        run left. ``workers`` is then ignored (the spec says how many).

    Returns
    -------
    ImageEmbeddings
        Aligned with the manifest's rows.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if (workers > 1 or cluster is not None) and engine_factory is None:
        raise ValueError("workers > 1 needs an engine_factory to build an engine in each process")
    key = engine_cache_key(engine, face_choice)
    hashes = manifest.image_hashes()
    paths = manifest.absolute_paths()
    known: dict[str, CachedEmbedding] = {}
    if cache is not None:
        cache.register_engine(key, engine)
        known = cache.get_many(hashes, key)
    # Identical files need embedding once.
    todo: dict[str, Path] = {}
    for sha, path in zip(hashes, paths):
        if sha not in known and sha not in todo:
            todo[sha] = path
    total = len(set(hashes))
    update, close = _report(progress, total, total - len(todo))
    pending: list[CachedEmbedding] = []

    def keep(entry: CachedEmbedding) -> None:
        known[entry.image_sha256] = entry
        pending.append(entry)
        if cache is not None and len(pending) >= COMMIT_EVERY:
            cache.put_many(pending, key)
            pending.clear()
        update(1)

    jobs = [(str(path), sha) for sha, path in todo.items()]
    n_from_shards = 0
    try:
        if cluster is not None:
            n_from_shards = _embed_on_cluster(
                cluster, jobs, engine_factory, key, face_choice, cache, known, update
            )
        elif workers == 1 or len(jobs) < 2 * workers:
            for job_path, sha in jobs:
                keep(embed_image_file(engine, job_path, sha, face_choice))
        else:
            assert engine_factory is not None  # refused above: workers > 1 needs a factory
            # spawn, not fork: dlib and BLAS hold threads and locks a forked child must not copy
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(engine_factory, key, face_choice, max(1, available_cpus() // workers)),
            )
            try:
                # map() submits every chunk, and so starts the workers, before it returns
                with _workers_skip_main_script(engine_factory):
                    results = pool.map(_embed_in_worker, jobs, chunksize=8)
                for entry in results:
                    keep(entry)
            finally:
                # on Ctrl-C or an error, drop the queued images instead of embedding them all
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        # What was computed before an interruption is kept: the next run resumes from it.
        if cache is not None and pending:
            cache.put_many(pending, key)
        close()

    return _assembled(
        hashes,
        known,
        key,
        engine.engine_id.embedding_dim,
        n_computed=len(jobs) - n_from_shards,
        n_from_shards=n_from_shards,
    )


def _assembled(
    hashes: np.ndarray,
    known: dict[str, CachedEmbedding],
    key: str,
    dim: int,
    *,
    n_computed: int,
    n_from_shards: int,
) -> ImageEmbeddings:
    """The embeddings of ``hashes`` (one per manifest row, repeats included) from ``known``."""
    n = len(hashes)
    vectors = np.zeros((n, dim), np.float32)
    ok = np.zeros(n, bool)
    n_faces = np.zeros(n, np.int64)
    failure = np.empty(n, dtype=object)
    det_score = np.full(n, np.nan)
    face_size = np.full(n, np.nan)
    for i, sha in enumerate(hashes):
        entry = known[sha]
        n_faces[i] = entry.n_faces
        failure[i] = entry.failure
        det_score[i] = entry.det_score
        face_size[i] = entry.face_size_px
        if entry.embedding is not None:
            if entry.embedding.shape != (dim,):
                raise ValueError(
                    f"cached embedding of {sha[:12]} has {entry.embedding.shape[0]} values, "
                    f"the engine makes {dim}"
                )
            vectors[i] = entry.embedding
            ok[i] = True
    return ImageEmbeddings(
        engine_key=key,
        image_sha256=np.asarray(hashes, dtype=object),
        vectors=vectors,
        ok=ok,
        n_faces=n_faces,
        failure=failure,
        det_score=det_score,
        face_size_px=face_size,
        n_computed=n_computed,
        n_from_shards=n_from_shards,
    )


def _embed_on_cluster(
    cluster: ClusterSpec,
    jobs: list[tuple[str, str]],
    engine_factory: Callable[[], FaceEngine] | None,
    key: str,
    face_choice: FaceChoice,
    cache: EmbeddingCache | None,
    known: dict[str, CachedEmbedding],
    update: Callable[[int], None],
) -> int:
    """Run the jobs on the cluster; each finished shard is committed to the cache, then
    deleted. Returns how many wanted images came from an earlier run's shards."""
    import shutil
    import tempfile

    from lfr_eval.distributed import ShardKeys, embed_on_cluster

    assert engine_factory is not None
    wanted = {sha for _, sha in jobs}
    # shards sit beside the cache (a re-run resumes from them); without a cache, in a
    # temporary folder removed at the end
    temporary = cache is None
    root = (
        Path(tempfile.mkdtemp(prefix="lfr-shards-"))
        if cache is None
        else cache.path.parent / "embedding-shards"
    )
    # a cache's shards are sealed and named under its keys (a later run resumes from them);
    # temporary ones under keys that never leave this process
    shard_keys = ShardKeys.ephemeral() if cache is None else cache.shard_keys()
    resumed = 0
    try:
        for path, entries, from_earlier in embed_on_cluster(
            cluster,
            jobs,
            engine_factory=engine_factory,
            engine_key=key,
            face_choice=face_choice,
            shard_root=root,
            shard_keys=shard_keys,
        ):
            useful = [e for e in entries if e.image_sha256 in wanted]
            if cache is not None:
                cache.put_many(entries, key)
            for entry in useful:
                if entry.image_sha256 not in known:
                    known[entry.image_sha256] = entry
                    update(1)
                    resumed += int(from_earlier)
            # committed: the shard's embeddings now live in the cache only
            path.unlink(missing_ok=True)
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    return resumed


def _defined_in_main(factory: Callable[..., object] | None) -> bool:
    while isinstance(factory, functools.partial):
        factory = factory.func
    return getattr(factory, "__module__", None) == "__main__"


@contextlib.contextmanager
def _workers_skip_main_script(engine_factory: Callable[..., object] | None) -> Iterator[None]:
    """Start spawned workers without re-running the host's ``__main__`` script.

    The spawn start method re-imports ``__main__`` in every worker. Under Streamlit (and its
    AppTest) ``__main__`` is the *page script*: a worker would re-run the page and die, which
    surfaced as ``BrokenProcessPool`` from the Evaluate page. Workers only need functions of
    this module, so while they start, ``__main__`` is a bare module — unless the engine
    factory itself lives in ``__main__`` and must be importable there.
    """
    if _defined_in_main(engine_factory):
        yield
        return
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


#: File endings :func:`save_embeddings` writes.
EMBEDDING_FORMATS = (".npz", ".parquet")


def save_embeddings(
    path: str | Path,
    manifest: Manifest,
    embeddings: ImageEmbeddings,
    engine: FaceEngine,
) -> Path:
    """Write a manifest's embeddings to ``.npz`` or ``.parquet`` (atomically).

    The file holds, per image: ``path``, ``subject_id``, the attributes, ``image_sha256``,
    ``ok``, ``failure``, ``n_faces``, ``det_score``, ``face_size_px`` and the unit-norm
    embedding (zeros where ``ok`` is False); and the engine's models (with hashes), runtime and
    cache key, so the file says what made it. It is an export: the embeddings are in clear
    (whoever receives the file needs them), so the file is made 0600 and protecting it further
    is the user's part (README, "What is not protected").
    """
    import json

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EMBEDDING_FORMATS:
        raise ValueError(f"embeddings file must end in {' or '.join(EMBEDDING_FORMATS)}: {path}")
    if len(embeddings) != len(manifest):
        raise ValueError("embeddings must be aligned with the manifest's rows")
    meta = json.dumps(
        {
            "engine": engine.engine_id.to_dict(),
            "runtime": engine.runtime.to_dict(),
            "engine_key": embeddings.engine_key,
            "dataset": manifest.name,
            "similarity": "cosine in [-1, 1] (embeddings are unit-norm)",
        },
        sort_keys=True,
    )
    table = manifest.to_frame()
    table["image_sha256"] = embeddings.image_sha256
    table["ok"] = embeddings.ok
    table["failure"] = [None if f is None else str(f) for f in embeddings.failure]
    table["n_faces"] = embeddings.n_faces
    table["det_score"] = embeddings.det_score
    table["face_size_px"] = embeddings.face_size_px
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp" + suffix)
    # the file holds templates in clear (the user asked for them): owner-only from the start
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    if suffix == ".npz":
        arrays = {
            column: table[column].to_numpy(dtype=object if table[column].dtype == object else None)
            for column in table.columns
        }
        arrays["failure"] = np.array(["" if f is None else str(f) for f in embeddings.failure])
        arrays = {k: (v.astype(str) if v.dtype == object else v) for k, v in arrays.items()}
        np.savez_compressed(tmp, embeddings=embeddings.vectors, metadata=np.array(meta), **arrays)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(table, preserve_index=False)
        arrow = arrow.append_column(
            "embedding",
            pa.FixedSizeListArray.from_arrays(
                pa.array(embeddings.vectors.ravel(), pa.float32()), embeddings.vectors.shape[1]
            ),
        )
        arrow = arrow.replace_schema_metadata({b"lfr_eval": meta.encode()})
        pq.write_table(arrow, tmp)
    os.replace(tmp, path)
    return path
