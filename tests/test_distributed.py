"""Embedding on a Dask cluster: same embeddings as one process, resumable, survives a dead worker.

One local cluster (2 worker processes, 1 thread each) serves the whole module; a small LFW
subset keeps it to a few dozen images.
"""

from __future__ import annotations

import functools
import os
import signal

import numpy as np
import pytest

pytest.importorskip("distributed", reason="needs the distributed extra (dask)")

from lfr_eval.atrest import Sealer
from lfr_eval.datasets import EmbeddingCache, embed_manifest, engine_cache_key, load_dataset
from lfr_eval.distributed import (
    ClusterError,
    ClusterSpec,
    ShardKeys,
    embed_on_cluster,
    open_client,
    read_shard,
    shard_folder,
)
from lfr_eval.faces import load_engine

FACTORY = functools.partial(load_engine, "dlib", upsample=0)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    from lfr_eval.datasets._embedding import _workers_skip_main_script

    # earlier tests (Streamlit's AppTest) can leave a page script as __main__; it stays hidden
    # for the cluster's whole life, since a worker that a test kills is restarted by its nanny
    # (spawned again, re-importing __main__) while the tests run
    with (
        _workers_skip_main_script(None),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
    ):
        yield local


@pytest.fixture(scope="module")
def spec(cluster) -> ClusterSpec:
    return ClusterSpec(scheduler=cluster.scheduler_address, shard_size=4)


@pytest.fixture(scope="module")
def manifest(lfw_dir):
    full = load_dataset(lfw_dir, "lfw")
    # the subset `lfr-eval embed --limit 22` takes (subjects drawn with seed 0)
    return full.limit_subjects(22, seed=0)


@pytest.fixture(scope="module")
def engine():
    return FACTORY()


@pytest.fixture(scope="module")
def single(manifest, engine):
    return embed_manifest(manifest, engine, face_choice="central")


def _assert_same(a, b) -> None:
    assert a.engine_key == b.engine_key
    np.testing.assert_array_equal(a.image_sha256, b.image_sha256)
    np.testing.assert_array_equal(a.ok, b.ok)
    np.testing.assert_array_equal(a.n_faces, b.n_faces)
    assert list(a.failure) == list(b.failure)
    # onnxruntime on the CPU is deterministic: bit for bit, not just close
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.det_score, b.det_score)


@pytest.mark.lfw
def test_cluster_embeds_like_one_process(tmp_path, manifest, engine, single, spec):
    assert len(manifest) >= 16
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        result = embed_manifest(
            manifest, engine, cache, face_choice="central", cluster=spec, engine_factory=FACTORY
        )
        _assert_same(result, single)
        assert result.n_computed == len(set(result.image_sha256)) and result.n_from_shards == 0
        key = engine_cache_key(engine, "central")
        assert cache.count(key) == len(set(result.image_sha256))
        # merged shards are deleted: the embeddings live in the cache only
        assert not list(shard_folder(tmp_path / "embedding-shards", key).glob("*"))
        again = embed_manifest(
            manifest, engine, cache, face_choice="central", cluster=spec, engine_factory=FACTORY
        )
        assert again.n_computed == 0
        _assert_same(again, single)


@pytest.mark.lfw
def test_rerun_resumes_from_shards(tmp_path, manifest, engine, single, spec):
    key = engine_cache_key(engine, "central")
    root = tmp_path / "embedding-shards"
    pairs = zip(manifest.absolute_paths(), manifest.image_hashes(), strict=True)
    jobs = list({sha: (str(path), sha) for path, sha in pairs}.values())
    # a driver that dies after two shards were written and before merging them (the shards
    # are sealed under the cache's key, so the run below can open them)
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        shard_keys = cache.shard_keys()
    sealer = shard_keys.sealer
    run = embed_on_cluster(
        spec,
        jobs,
        engine_factory=FACTORY,
        engine_key=key,
        face_choice="central",
        shard_root=root,
        shard_keys=shard_keys,
    )
    written = [next(run), next(run)]
    run.close()  # cancels the unfinished tasks
    assert all(not resumed for _, _, resumed in written)
    folder = shard_folder(root, key)
    done = {e.image_sha256 for _, entries, _ in written for e in entries}
    assert len(done) == 8 and len(list(folder.glob("*.parquet"))) >= 2
    # templates at rest are sealed: no embedding's bytes and no image hash in the shard
    first_path, first_entries, _ = written[0]
    raw = first_path.read_bytes()
    ok = next(e for e in first_entries if e.embedding is not None)
    assert ok.embedding.tobytes()[:16] not in raw and ok.image_sha256.encode() not in raw
    assert os.stat(first_path).st_mode & 0o077 == 0
    # damage that must be ignored: a half-written temporary file and a corrupt shard
    (folder / ".half.parquet.123.tmp").write_bytes(b"PAR1")
    (folder / "corrupt.parquet").write_bytes(b"not parquet")
    assert read_shard(first_path, key, sealer)[0].image_sha256 == first_entries[0].image_sha256
    assert read_shard(first_path, "another engine", sealer) is None
    assert read_shard(first_path, key, Sealer(bytes(32))) is None  # another key: not opened
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        resumed = embed_manifest(
            manifest, engine, cache, face_choice="central", cluster=spec, engine_factory=FACTORY
        )
    _assert_same(resumed, single)
    unique = len(set(resumed.image_sha256))
    # only shards that were finished before the "crash" are reused, nothing else
    assert resumed.n_from_shards >= 8
    assert resumed.n_computed == unique - resumed.n_from_shards
    assert not list(folder.glob("*.parquet"))


@pytest.mark.lfw
def test_dead_worker_loses_only_its_task(tmp_path, manifest, engine, single, spec, cluster):
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_one_worker(done: int, total: int) -> None:
        if done > 0 and not killed:
            pid = sorted(pids.values())[0]
            os.kill(pid, signal.SIGKILL)  # the nanny starts a new worker process
            killed.append(pid)

    result = embed_manifest(
        manifest,
        engine,
        None,
        face_choice="central",
        cluster=spec,
        engine_factory=FACTORY,
        progress=kill_one_worker,
    )
    assert killed
    _assert_same(result, single)


@pytest.mark.lfw
def test_dead_worker_does_not_recompute_received_shards(tmp_path, manifest, engine, spec, cluster):
    """Shards whose results the driver already has are not computed again when a worker dies
    (Dask recomputes a lost result while a client still holds its future)."""
    import time

    from lfr_eval.distributed import using_cluster

    key = engine_cache_key(engine, "central")
    pairs = zip(manifest.absolute_paths(), manifest.image_hashes(), strict=True)
    jobs = list({sha: (str(path), sha) for path, sha in pairs}.values())
    n_shards = -(-len(jobs) // spec.shard_size)
    # one client for the run and for watching it (embed_on_cluster uses the one held open)
    with using_cluster(spec) as client:
        client.wait_for_workers(2, timeout=120)  # a worker killed by a test before restarts
        pids = client.run(os.getpid)
        client.get_task_stream()  # starts recording which worker ran which task
        start = time.time()
        run = embed_on_cluster(
            spec,
            jobs,
            engine_factory=FACTORY,
            engine_key=key,
            face_choice="central",
            shard_root=tmp_path / "shards",
            shard_keys=ShardKeys.ephemeral(),
        )
        received: list[str] = []
        embedded: set[str] = set()
        before: set[str] = set()
        victim_did: set[str] = set()
        for path, entries, _ in run:
            received.append(f"lfr-embed-{path.stem}")
            embedded.update(e.image_sha256 for e in entries)
            if len(received) == max(2, n_shards // 2):
                before = set(received)
                by_worker: dict[str, set[str]] = {}
                for task in client.get_task_stream(start=start):
                    if task["key"] in before:
                        by_worker.setdefault(task["worker"], set()).add(task["key"])
                victim = max(by_worker, key=lambda w: len(by_worker[w]))
                victim_did = by_worker[victim]
                os.kill(pids[victim], signal.SIGKILL)  # its nanny starts a new one
        assert embedded == {sha for _, sha in jobs}
        assert victim_did  # the killed worker had finished shards the driver had received

        def into_memory(dask_scheduler, since=start):
            return [
                str(t.key)
                for t in dask_scheduler.transition_log
                if t.finish == "memory" and t.timestamp >= since
            ]

        done = client.run_on_scheduler(into_memory)
    again = sorted(k for k in before if done.count(k) > 1)
    assert not again, f"{len(again)} received shards computed again after the worker died"


def test_dask_worker_engine_has_its_share_of_threads_and_no_spinning(cluster):
    """Each Dask worker builds its engine (the embedding task's own path) with cores / workers
    on its machine onnxruntime intra-op threads, one inter-op thread and spinning off, as the
    worker's session really reports; 2 workers on one machine then share its cores."""
    from distributed import Client

    from lfr_eval.distributed._cluster import _slots_by_host
    from lfr_eval.faces._dlib_onnx import available_cpus

    key = engine_cache_key(FACTORY(), "central")
    with Client(cluster.scheduler_address) as client:
        client.wait_for_workers(2, timeout=120)  # a worker killed by a test before restarts
        slots = _slots_by_host(client)

        def session_options(slots=slots, key=key):
            from lfr_eval.distributed import _cluster

            threads = _cluster._threads_here(slots)
            engine = _cluster.worker_engine(FACTORY, key, "central", threads)
            options = engine._onnx._session.get_session_options()
            return (
                options.intra_op_num_threads,
                options.inter_op_num_threads,
                options.get_session_config_entry("session.intra_op.allow_spinning"),
                options.get_session_config_entry("session.inter_op.allow_spinning"),
            )

        workers = list(client.scheduler_info(n_workers=-1)["workers"])
        got = [client.submit(session_options, workers=[w], pure=False).result() for w in workers]
    assert len(workers) == 2 and sum(slots.values()) == 2
    assert got == [(max(1, available_cpus() // 2), 1, "0", "0")] * 2


#: A script that, like a Streamlit page, cannot run anywhere but as the driver's __main__.
_PAGE_SCRIPT = """
import os, signal, sys, time
if __name__ != "__main__":
    # what a page script does when a spawned worker re-imports it
    raise SystemExit("the page script was re-imported in a worker process")
from lfr_eval.distributed import ClusterSpec, open_client
with open_client(ClusterSpec(workers=2, gpu_per_worker=False)) as client:
    before = set(client.run(os.getpid).values())
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            now = set(client.run(os.getpid, wait=True).values())
        except Exception:  # the dead worker may still be listed for a moment
            continue
        if len(now) == 2 and victim not in now:
            print("recovered:", sorted(before), "->", sorted(now), flush=True)
            print(sum(client.gather(client.map(lambda x: x * x, range(20)))))
            break
    else:
        print("not recovered", flush=True)
"""


def test_local_cluster_started_from_a_main_script_survives_a_worker_restart(tmp_path):
    """A local cluster opened by a script that is __main__ (a Streamlit page): a worker killed
    and restarted by its nanny comes back. The nanny spawns the new worker process, and a
    spawned process re-imports the starter's __main__: hiding it only while the cluster
    started left a restarted worker re-running the page script and dying."""
    import subprocess
    import sys

    script = tmp_path / "page.py"
    script.write_text(_PAGE_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(script), "60"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "recovered:" in done.stdout, done.stdout + done.stderr[-3000:]
    assert done.stdout.strip().endswith(str(sum(x * x for x in range(20))))


def test_local_cluster_workers_import_from_the_drivers_sys_path(tmp_path, monkeypatch):
    """A local cluster's workers import task code from where the driver did, as processes the
    driver spawned would (the cluster's host process is given the driver's sys.path): here a
    module only reachable through a folder the driver put on sys.path at run time."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "lfr_user_tasks.py").write_text("def square(x):\n    return x * x\n")
    import lfr_user_tasks

    with open_client(ClusterSpec(workers=1, gpu_per_worker=False)) as client:
        assert client.submit(lfr_user_tasks.square, 7).result(timeout=60) == 49


def test_unreachable_scheduler_is_a_clear_error():
    spec = ClusterSpec(scheduler="tcp://127.0.0.1:9", connect_timeout_s=2)
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler"), open_client(spec):
        pass


@pytest.mark.lfw
def test_cli_embed_on_scheduler(tmp_path, lfw_dir, cluster, single, capsys):
    import pandas as pd

    from lfr_eval.cli import main

    out = tmp_path / "emb.parquet"
    main(
        [
            "embed",
            str(lfw_dir),
            "--layout",
            "lfw",
            "--limit",
            "22",
            "--no-cache",
            "--scheduler",
            cluster.scheduler_address,
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert f"embedding on a Dask cluster at {cluster.scheduler_address}" in err
    table = pd.read_parquet(out)
    np.testing.assert_array_equal(table["image_sha256"].to_numpy(), single.image_sha256)
    np.testing.assert_array_equal(table["ok"].to_numpy(), single.ok)
    np.testing.assert_array_equal(np.stack(table["embedding"].to_numpy()), single.vectors)


def _can_hide_folders() -> bool:
    """Whether a process can get a mount namespace of its own (root, ``unshare -m``)."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.lfw
def test_cli_embed_on_separate_dask_processes_that_cannot_see_the_driver_folder(
    tmp_path, lfw_dir, single, monkeypatch, capsys
):
    """The closest rehearsal of a multi-machine cluster one machine allows: a `dask scheduler`
    and two `dask worker` processes started from the command line, each worker with its own
    working directory and home (so its own model cache) and, in a mount namespace of its own,
    the driver's folder (cache, output, workspace) replaced by an empty one. `lfr-eval embed
    --scheduler` then gives the single process's embeddings bit for bit, each worker converts
    the dlib network into its own model cache, and all a worker leaves in its folder is that
    cache and Dask's scratch space."""
    import json
    import subprocess
    import sys
    import time

    import pandas as pd
    from distributed import Client

    from lfr_eval.cli import main

    if not _can_hide_folders():
        pytest.skip("hiding the driver's folder from the workers needs unshare -m (root)")
    driver, sched = tmp_path / "driver", tmp_path / "scheduler"
    for folder in (driver, sched):
        folder.mkdir()
    (driver / "marker").write_text("the driver's folder")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LFR_", "XDG_"))}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    started: list[subprocess.Popen] = []
    try:
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port",
                 "0", "--no-dashboard", "--scheduler-file", str(sched / "scheduler.json")],
                cwd=sched, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (sched / "scheduler.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # written, then read
        address = json.loads((sched / "scheduler.json").read_text())["address"]
        for i in range(2):
            home = tmp_path / f"worker{i}" / "home"
            home.mkdir(parents=True)
            hide = 'mount -t tmpfs none "$0" && exec "$@"'
            started.append(
                subprocess.Popen(
                    ["unshare", "-m", "sh", "-c", hide, str(driver), sys.executable, "-m",
                     "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                     "--no-dashboard", "--name", f"machine-{i}",
                     "--local-directory", str(tmp_path / f"worker{i}" / "scratch")],
                    cwd=home.parent, env={**env, "HOME": str(home)},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
            seen = client.run(lambda: sorted(os.listdir(driver)))
            homes = client.run(lambda: os.environ["HOME"])
        assert all(files == [] for files in seen.values()), seen  # hidden from every worker
        assert len(set(homes.values())) == 2

        monkeypatch.chdir(driver)
        monkeypatch.setenv("LFR_WORKSPACE", str(driver / "workspace"))
        # tasks of 4 images (not 64), so that both workers get some
        import lfr_eval.distributed

        four = functools.partial(lfr_eval.distributed.ClusterSpec, shard_size=4)
        monkeypatch.setattr(lfr_eval.distributed, "ClusterSpec", four)
        args = ["embed", str(lfw_dir), "--layout", "lfw", "--limit", "22", "--scheduler"]
        main([*args, address, "--cache", "cache.sqlite", "--out", "emb.parquet"])
        assert f"embedding on a Dask cluster at {address}" in capsys.readouterr().err
    finally:
        for proc in reversed(started):
            proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    table = pd.read_parquet(driver / "emb.parquet")
    np.testing.assert_array_equal(table["image_sha256"].to_numpy(), single.image_sha256)
    np.testing.assert_array_equal(table["ok"].to_numpy(), single.ok)
    np.testing.assert_array_equal(np.stack(table["embedding"].to_numpy()), single.vectors)
    # a worker wrote only in its own folder: Dask's scratch space and its own model cache
    for i in range(2):
        mine = tmp_path / f"worker{i}"
        written = {p.relative_to(mine).parts[0:2] for p in mine.rglob("*") if p.is_file()}
        assert all(part[0] in ("scratch", "home") for part in written), written
        # each "machine" converted the dlib network into its own model cache
        assert list((mine / "home").rglob("dlib-onnx/*/*.onnx")), "no model of its own"
    assert (driver / "marker").read_text() == "the driver's folder"


def _random_gallery(rng, n_subjects=120, dim=32):
    counts = rng.integers(1, 4, n_subjects)
    subjects = np.repeat([f"s{i:04d}" for i in range(n_subjects)], counts)
    vectors = rng.normal(size=(len(subjects), dim)).astype(np.float32)
    # exact ties: two subjects share a template
    vectors[-1] = vectors[0]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, subjects


def test_scoring_tasks_merge_exactly(spec, cluster):
    from distributed import Client

    from lfr_eval.distributed import score_all_on_cluster
    from lfr_eval.distributed._scoring import tile_aligned_shards
    from lfr_eval.search._kernel import Gallery, score_all

    rng = np.random.default_rng(11)
    vectors, subjects = _random_gallery(rng)
    groups = rng.integers(0, 3, len(np.unique(subjects)))
    gallery = Gallery.build(vectors, subjects, subject_groups=groups, n_groups=3)
    probes = rng.normal(size=(300, vectors.shape[1])).astype(np.float32)
    probes[:5] = vectors[:5]  # probes identical to a template (and so to its tie)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    mates = np.where(rng.random(300) < 0.5, rng.integers(0, gallery.n_subjects, 300), -1)
    thresholds = np.linspace(-0.2, 1.0, 41)
    # small tiles (about 30 templates for 64 probes) so the gallery splits into several shards
    tiles = {"block": 64, "tile_bytes": 4 * 64 * 30}
    assert len(tile_aligned_shards(gallery, 64, tiles["tile_bytes"], 5)) == 5
    expected = score_all(probes, gallery, k=7, thresholds=thresholds, mate_codes=mates, **tiles)
    with Client(cluster.scheduler_address) as client:
        got = score_all_on_cluster(
            client,
            probes,
            gallery,
            k=7,
            thresholds=thresholds,
            mate_codes=mates,
            n_shards=5,
            **tiles,
        )
    for name in ("top_scores", "top_subjects", "top_rows", "higher", "counts"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def test_cluster_scoring_equals_one_process_whatever_the_memory_setting(spec, tmp_path):
    """Scoring on the cluster under a tiny and the default memory setting gives the single
    process's arrays bit for bit: a block's whole 512-row chunks and its short last chunk use
    tiles of different widths, so each goes to its own tile-aligned shards (one shard set for
    the whole block left a 76 × 6 product in the last shard, which BLAS rounds differently)."""
    from lfr_eval.distributed import using_cluster
    from lfr_eval.search._blocks import score_probes
    from lfr_eval.search._kernel import Gallery

    rng = np.random.default_rng(14)
    # 1,030 one-template subjects: 512-wide tiles leave a last tile of 6 templates
    templates = rng.normal(size=(1030, 128)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    gallery = Gallery.build(templates, [f"s{i:04d}" for i in range(1030)])
    probes = templates[rng.integers(0, 1030, 1100)] + 0.05 * rng.normal(size=(1100, 128))
    probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
    mates = np.where(rng.random(1100) < 0.3, rng.integers(0, 1030, 1100), -1)
    options = {"k": 5, "thresholds": np.linspace(-0.2, 1.0, 61), "mate_codes": mates}
    expected = score_probes(probes, gallery, **options)
    tiny = gallery.matrix.nbytes + probes.nbytes + 10_000  # 512-row blocks, kept on disk
    with using_cluster(spec):
        runs = [
            score_probes(probes, gallery, memory_bytes=tiny, work_dir=tmp_path, **options),
            score_probes(probes, gallery, **options),  # one block: 1,024 + 76 rows
        ]
    for got in runs:
        for name in ("top_scores", "top_subjects", "top_rows", "higher", "counts"):
            assert np.array_equal(getattr(got, name), getattr(expected, name)), name


def test_cluster_scoring_in_kept_blocks_sends_the_gallery_once(spec, tmp_path, monkeypatch):
    """With a work folder (or counts too large for memory) score_probes calls the cluster once
    per probe block: the gallery still reaches the workers once, and the numbers are the
    single process's, bit for bit."""
    from lfr_eval.distributed import using_cluster
    from lfr_eval.search._blocks import score_probes
    from lfr_eval.search._kernel import Gallery

    rng = np.random.default_rng(12)
    vectors, subjects = _random_gallery(rng, n_subjects=200)
    gallery = Gallery.build(vectors, subjects)
    probes = rng.normal(size=(320, vectors.shape[1])).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    mates = np.where(rng.random(320) < 0.3, rng.integers(0, gallery.n_subjects, 320), -1)
    thresholds = np.linspace(-0.2, 1.0, 25)
    options = {"k": 5, "thresholds": thresholds, "mate_codes": mates, "rows_per_block": 64}
    expected = score_probes(probes, gallery, **options)
    with using_cluster(spec) as client:
        sent: list[str] = []
        scatter = client.scatter

        def counting(data, *args, **kwargs):
            sent.append(type(data).__name__)
            return scatter(data, *args, **kwargs)

        monkeypatch.setattr(client, "scatter", counting)
        got = score_probes(probes, gallery, work_dir=tmp_path, **options)
    assert sent == ["Gallery"], f"the gallery was sent {sent.count('Gallery')} times for 5 blocks"
    for name in ("top_scores", "top_subjects", "top_rows", "higher", "counts"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def test_cluster_scoring_reports_progress(spec):
    """Scoring as cluster tasks moves the progress bar (a callback here) block by block."""
    from lfr_eval.distributed import using_cluster
    from lfr_eval.search._blocks import score_probes
    from lfr_eval.search._kernel import Gallery

    rng = np.random.default_rng(13)
    vectors, subjects = _random_gallery(rng, n_subjects=80)
    gallery = Gallery.build(vectors, subjects)
    probes = rng.normal(size=(300, vectors.shape[1])).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    seen: list[tuple[int, int]] = []
    with using_cluster(spec):
        score_probes(
            probes,
            gallery,
            k=3,
            thresholds=np.linspace(0.0, 1.0, 11),
            rows_per_block=64,
            progress=lambda done, total: seen.append((done, total)),
        )
    assert seen == [(i, 5) for i in range(1, 6)]


@pytest.mark.lfw
def test_evaluation_on_cluster_equals_one_process(manifest, engine, spec):
    from lfr_eval.distributed import using_cluster
    from lfr_eval.evaluation import evaluate
    from lfr_eval.protocols import OpenSetParams
    from lfr_eval.search import _kernel

    calls: list[int] = []
    local = evaluate(manifest, engine, OpenSetParams(seed=0), face_choice="central", n_resamples=0)
    with using_cluster(spec):
        executor = _kernel.block_executor.get()

        def counting(*args, **kwargs):
            calls.append(1)
            return executor(*args, **kwargs)

        _kernel.block_executor.set(counting)
        remote = evaluate(
            manifest,
            engine,
            OpenSetParams(seed=0),
            face_choice="central",
            n_resamples=0,
            cluster=spec,
            engine_factory=FACTORY,
        )
    assert calls  # the scoring really ran as cluster tasks
    a, b = local.searches, remote.searches
    np.testing.assert_array_equal(a.mate_scores, b.mate_scores)
    np.testing.assert_array_equal(a.mate_ranks, b.mate_ranks)
    np.testing.assert_array_equal(a.non_mated_topk, b.non_mated_topk)
    import pandas as pd

    pd.testing.assert_frame_equal(local.scaling, remote.scaling)
