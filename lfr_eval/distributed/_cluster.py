"""Connect to a Dask cluster (or start a local one) and embed images on its workers.

What moves where
----------------
The driver (the ``lfr-eval`` process) sends each task a list of ``(image path, sha256)``
pairs and a picklable recipe for the engine; a worker builds the engine once per process
(:func:`worker_engine`, checked against the driver's engine cache key), reads the images
**from its own filesystem** (the paths must resolve on every worker: a shared filesystem, or
the same copy of the data set on each machine) and returns the embeddings (128 or 512 floats
and a few numbers per image). The driver writes each finished task as a Parquet shard, sealed
under the cache's key, merges it into the embedding cache and deletes it. Images never travel;
embeddings never leave the driver's disk except as task results. Task keys and shard names are
keyed hashes of the image hashes (:class:`~lfr_eval.distributed._shards.ShardKeys`), so the
scheduler's dashboard and the shard folder do not tell which images a run holds.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lfr_eval.datasets._cache import CachedEmbedding, engine_cache_key
from lfr_eval.errors import LfrError
from lfr_eval.faces import FaceEngine

if TYPE_CHECKING:
    from distributed import Client

    from lfr_eval.datasets._embedding import FaceChoice
    from lfr_eval.distributed._shards import ShardKeys

MSG_DASK_MISSING = (
    "running on a Dask cluster needs the distributed extra: pip install "
    "'lfr-workbench[distributed]' (or pip install 'dask[distributed]')"
)
MSG_SCHEDULER_UNREACHABLE = (
    "cannot reach the Dask scheduler at {address}: {reason}. Start it (dask scheduler, "
    "dask-jobqueue, dask-kubernetes) and pass the address it prints, e.g. tcp://10.0.0.5:8786"
)
MSG_TASK_KILLED = (
    "the Dask workers died {times} times embedding a shard of {n} images (first: {first}); "
    "a worker may be running out of memory or crashing on one of these images"
)

MSG_NO_GPU = (
    "no GPU found: CUDA_VISIBLE_DEVICES names none and nvidia-smi lists none, so the {n} local "
    "workers run on the CPU and a GPU engine (--device cuda) will fail on them"
)

#: Images per embedding task (and per Parquet shard).
DEFAULT_SHARD_SIZE = 64


#: ``(spec, client)`` of the cluster :func:`~lfr_eval.distributed.using_cluster` holds open.
active_client: contextvars.ContextVar[tuple[ClusterSpec, Client] | None] = contextvars.ContextVar(
    "lfr_active_client", default=None
)


class ClusterError(LfrError):
    """The cluster cannot be reached, or its workers keep dying on a task."""

    exit_code = 19


@dataclass(frozen=True)
class ClusterSpec:
    """Where embedding (and scoring) tasks run.

    Attributes
    ----------
    scheduler : str or None
        Address of a running scheduler (``tcp://host:8786``); None starts a local cluster.
    workers : int
        Worker processes of the local cluster (ignored with ``scheduler``).
    shard_size : int
        Images per task and per Parquet shard.
    connect_timeout_s : float
        How long to wait for the scheduler before giving up.
    gpu_per_worker : bool
        Local cluster only: give each worker process its own GPU (``CUDA_VISIBLE_DEVICES``
        set per worker, Dask resource ``GPU=1``) when the machine has GPUs; with more workers
        than GPUs they are shared round-robin. A cluster you started sets its own.
    """

    scheduler: str | None = None
    workers: int = 2
    shard_size: int = DEFAULT_SHARD_SIZE
    connect_timeout_s: float = 20.0
    gpu_per_worker: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1 or self.shard_size < 1:
            raise ValueError("workers and shard_size must be at least 1")

    def describe(self) -> str:
        if self.scheduler:
            return f"Dask cluster at {self.scheduler}"
        text = f"local Dask cluster of {self.workers} worker processes"
        if not self.gpu_per_worker:
            return text
        return f"{text} ({describe_gpu_plan(worker_gpu_plan(self.workers, visible_gpus()))})"


#: Seconds a local cluster's workers may take to start before the run is refused.
WORKER_START_TIMEOUT_S = 120.0


def visible_gpus() -> list[str]:
    """GPUs local workers may use: ``CUDA_VISIBLE_DEVICES`` when set, else ``nvidia-smi``'s.

    Returns device ids as CUDA takes them in ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs);
    empty when there is no GPU or no NVIDIA driver. torch is not imported (1.3 s a process).
    """
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    if named is not None:
        ids = [part.strip() for part in named.split(",") if part.strip()]
        # CUDA stops at the first invalid entry ("-1" is the usual way to hide every GPU)
        valid: list[str] = []
        for device in ids:
            if device.startswith("-"):
                break
            valid.append(device)
        return valid
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        listed = subprocess.run(
            [exe, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.splitlines() if line.strip().isdigit()]


def worker_gpu_plan(n_workers: int, gpus: Sequence[str]) -> list[str | None]:
    """The ``CUDA_VISIBLE_DEVICES`` of each local worker: GPUs round-robin, None without one."""
    if n_workers < 1:
        raise ValueError("n_workers must be at least 1")
    if not gpus:
        return [None] * n_workers
    return [str(gpus[i % len(gpus)]) for i in range(n_workers)]


def describe_gpu_plan(plan: Sequence[str | None]) -> str:
    """One line for the user: which GPU each worker sees, or that there is none."""
    if not plan or all(device is None for device in plan):
        return MSG_NO_GPU.format(n=len(plan))
    per_gpu = len(plan) / len(set(plan))
    shared = "" if per_gpu == 1 else f", {per_gpu:g} workers per GPU"
    return "CUDA_VISIBLE_DEVICES per worker: " + ", ".join(map(str, plan)) + shared


def gpu_worker_specs(
    base: Mapping[str, Any], plan: Sequence[str | None]
) -> dict[int, dict[str, Any]]:
    """Dask worker specs (``SpecCluster.worker_spec``) of a local cluster, one GPU each.

    ``base`` is the local cluster's own spec (``{"cls": Nanny, "options": {...}}``); each
    worker gets ``env={"CUDA_VISIBLE_DEVICES": device}`` (set before the worker process starts
    CUDA, so its ``cuda:0`` is that GPU) and ``resources={"GPU": 1}``.
    """
    specs: dict[int, dict[str, Any]] = {}
    for i, device in enumerate(plan):
        options = dict(base.get("options", {}))
        if device is not None:
            options["env"] = {**options.get("env", {}), "CUDA_VISIBLE_DEVICES": device}
            options["resources"] = {**options.get("resources", {}), "GPU": 1}
        specs[i] = {"cls": base["cls"], "options": options}
    return specs


def cluster_active(spec: ClusterSpec) -> bool:
    """Whether :func:`~lfr_eval.distributed.using_cluster` holds this spec's cluster open."""
    active = active_client.get()
    return active is not None and active[0] == spec


def dask_available() -> bool:
    """Whether ``dask.distributed`` can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def open_client(spec: ClusterSpec) -> Iterator[Client]:
    """A ``distributed.Client`` on the spec's cluster, closed (local cluster stopped) on exit.

    Raises
    ------
    ClusterError
        dask is not installed, or the scheduler cannot be reached.
    """
    active = active_client.get()
    if active is not None and active[0] == spec:
        yield active[1]  # held open by using_cluster, which closes it
        return
    try:
        from distributed import Client
    except ImportError as exc:
        raise ClusterError(MSG_DASK_MISSING) from exc
    if spec.scheduler:
        try:
            client = Client(spec.scheduler, timeout=f"{spec.connect_timeout_s}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                MSG_SCHEDULER_UNREACHABLE.format(address=spec.scheduler, reason=exc)
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    plan = worker_gpu_plan(spec.workers, visible_gpus() if spec.gpu_per_worker else [])
    with _local_cluster(spec.workers, plan) as address, Client(address) as client:
        yield client


@contextlib.contextmanager
def _local_cluster(workers: int, plan: Sequence[str | None]) -> Iterator[str]:
    """Start a local cluster in a host process of its own; yields the scheduler's address.

    The scheduler and the nannies run in ``python -m lfr_eval._dask_host``, never
    in the driver: a nanny spawns its worker process (again whenever the worker dies), and a
    spawned process re-imports the ``__main__`` of the process that spawns it -- under
    Streamlit the page script, which dies outside the page (see the host module). The host
    stops the cluster when the driver closes its stdin, or dies.

    Raises
    ------
    ClusterError
        The host could not start the cluster, or its workers did not start in time.
    """
    import json
    import queue
    import sys

    import lfr_eval

    # the host imports this package from wherever the driver found it
    root = str(Path(lfr_eval.__file__).resolve().parent.parent)
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    cmd = [
        sys.executable,
        "-m",
        "lfr_eval._dask_host",
        "--workers",
        str(workers),
        "--gpu-plan",
        json.dumps(list(plan) if any(plan) else []),
        "--timeout",
        str(WORKER_START_TIMEOUT_S),
        "--sys-path",
        json.dumps(sys.path),
    ]
    # a session of its own: Ctrl-C reaches the driver, which then stops the host in order
    host = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    assert host.stdout is not None and host.stdin is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = host.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        try:
            first = lines.get(timeout=WORKER_START_TIMEOUT_S + 30)
        except queue.Empty:
            first = ""
        message = json.loads(first) if first.strip().startswith("{") else {}
        if "address" not in message:
            why = message.get("error") or (
                f"its process exited with code {host.poll()}"
                if host.poll() is not None
                else f"no answer within {WORKER_START_TIMEOUT_S + 30:.0f} s"
            )
            raise ClusterError(f"the local Dask cluster did not start: {why}")
        yield str(message["address"])
    finally:
        with contextlib.suppress(OSError):
            host.stdin.close()  # the host closes the cluster and exits
        try:
            host.wait(timeout=60)
        except subprocess.TimeoutExpired:
            host.kill()
            host.wait()


# ------------------------------------------------------------------------ worker side
_engines: dict[str, FaceEngine] = {}
_engines_lock = threading.Lock()


def worker_engine(
    factory: Callable[[], FaceEngine], key: str, face_choice: FaceChoice, threads: int
) -> FaceEngine:
    """This worker process's engine for ``key``, built on first use.

    Raises
    ------
    RuntimeError
        The worker's engine differs from the driver's (other model files or settings on
        that machine): its embeddings would not be comparable.
    """
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            from lfr_eval.faces._dlib_onnx import set_cpu_threads

            set_cpu_threads(threads)
            engine = factory()
            found = engine_cache_key(engine, face_choice)
            if found != key:
                raise RuntimeError(f"worker engine differs from the driver's: {found} != {key}")
            _engines[key] = engine
        return engine


def _threads_here(slots_by_host: dict[str, int]) -> int:
    from distributed import get_worker

    from lfr_eval.faces._dlib_onnx import available_cpus

    try:
        host = get_worker().address.rsplit(":", 1)[0].split("://")[-1]
    except ValueError:  # not inside a worker (e.g. a synchronous test run)
        return available_cpus()
    return max(1, available_cpus() // max(1, slots_by_host.get(host, 1)))


def embed_shard(
    jobs: Sequence[tuple[str, str]],
    factory: Callable[[], FaceEngine],
    key: str,
    face_choice: FaceChoice,
    slots_by_host: dict[str, int],
) -> list[CachedEmbedding]:
    """A task: embed ``(path, sha256)`` pairs on this worker (failures become entries)."""
    from lfr_eval.datasets._embedding import embed_image_file

    engine = worker_engine(factory, key, face_choice, _threads_here(slots_by_host))
    return [embed_image_file(engine, path, sha, face_choice) for path, sha in jobs]


# ------------------------------------------------------------------------ driver side
def _slots_by_host(client: Client) -> dict[str, int]:
    slots: dict[str, int] = {}
    for info in client.scheduler_info(n_workers=-1)["workers"].values():
        host = str(info.get("host", ""))
        slots[host] = slots.get(host, 0) + int(info.get("nthreads", 1))
    return slots


def embed_on_cluster(
    spec: ClusterSpec,
    jobs: Sequence[tuple[str, str]],
    *,
    engine_factory: Callable[[], FaceEngine],
    engine_key: str,
    face_choice: FaceChoice,
    shard_root: Path,
    shard_keys: ShardKeys,
) -> Iterator[tuple[Path, list[CachedEmbedding], bool]]:
    """Embed ``(path, sha256)`` jobs on a cluster, one Parquet shard per task, sealed and
    named with ``shard_keys`` (the embedding cache's
    :meth:`~lfr_eval.datasets.EmbeddingCache.shard_keys`).

    Yields ``(shard path, entries, resumed)`` as shards finish: first the whole shards an
    earlier run left under ``shard_root`` (``resumed=True``, nothing recomputed), then the new
    ones in completion order. The caller merges each into the cache and then deletes the file.
    Stopping the generator (an error, Ctrl-C) cancels the tasks not yet finished; finished
    shards stay on disk for the next run.
    """
    from lfr_eval.distributed._shards import finished_shards, shard_folder, write_shard

    sealer = shard_keys.sealer
    done: set[str] = set()
    for path, entries in finished_shards(shard_root, engine_key, sealer):
        done.update(e.image_sha256 for e in entries)
        yield path, entries, True
    remaining = sorted((sha, path) for path, sha in jobs if sha not in done)
    if not remaining:
        return
    chunks = [
        [(path, sha) for sha, path in remaining[i : i + spec.shard_size]]
        for i in range(0, len(remaining), spec.shard_size)
    ]
    names = [shard_keys.shard_id([sha for _, sha in chunk]) for chunk in chunks]
    folder = shard_folder(shard_root, engine_key)
    with open_client(spec) as client:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        slots = _slots_by_host(client)
        futures = [
            client.submit(
                embed_shard,
                chunk,
                engine_factory,
                engine_key,
                face_choice,
                slots,
                key=f"lfr-embed-{name}",
                pure=False,
            )
            for chunk, name in zip(chunks, names, strict=True)
        ]
        by_key = {
            f.key: (chunk, name) for f, chunk, name in zip(futures, chunks, names, strict=True)
        }
        # Only the futures not yet received are held: a task whose result the driver has is
        # released at once, so a worker that dies later loses only its unfinished tasks (the
        # scheduler recomputes every lost result a client still holds a future for).
        pending = {f.key: f for f in futures}
        del futures
        try:
            for future in as_completed(list(pending.values())):
                chunk, name = by_key[future.key]
                try:
                    entries = future.result()
                except KilledWorker as exc:
                    raise ClusterError(
                        MSG_TASK_KILLED.format(times="several", n=len(chunk), first=chunk[0][0])
                    ) from exc
                del pending[future.key]
                future.release()
                path = write_shard(folder / f"{name}.parquet", entries, engine_key, sealer)
                yield path, entries, False
        finally:
            client.cancel([f for f in pending.values() if not f.done()])
