"""GPU per worker of a local Dask cluster: which worker sees which GPU, and the no-GPU message.

There is no GPU on CI: the assignment logic is tested directly, and a real local cluster is
started with a fake ``CUDA_VISIBLE_DEVICES`` to check that each worker process really gets
its own (nothing initialises CUDA, so the ids need not exist).
"""

from __future__ import annotations

import os

import pytest

from lfr_eval.distributed import ClusterSpec, visible_gpus, worker_gpu_plan
from lfr_eval.distributed._cluster import MSG_NO_GPU, describe_gpu_plan, gpu_worker_specs


def test_plan_gives_each_worker_its_gpu_round_robin() -> None:
    assert worker_gpu_plan(2, ["0", "1"]) == ["0", "1"]
    assert worker_gpu_plan(4, ["0", "1"]) == ["0", "1", "0", "1"]
    assert worker_gpu_plan(1, ["GPU-5d1c"]) == ["GPU-5d1c"]
    assert worker_gpu_plan(3, []) == [None, None, None]
    with pytest.raises(ValueError):
        worker_gpu_plan(0, ["0"])
    assert describe_gpu_plan(["0", "1", "0", "1"]).endswith("2 workers per GPU")
    assert describe_gpu_plan([None, None]) == MSG_NO_GPU.format(n=2)


def test_visible_gpus_reads_cuda_visible_devices(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5")
    assert visible_gpus() == ["3", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # the usual way to hide every GPU
    assert visible_gpus() == []
    assert "no GPU found" in ClusterSpec(workers=2).describe()
    assert "GPU" not in ClusterSpec(workers=2, gpu_per_worker=False).describe()


def test_worker_specs_set_the_environment_and_resource() -> None:
    base = {"cls": object, "options": {"nthreads": 1, "env": {"OMP_NUM_THREADS": "1"}}}
    specs = gpu_worker_specs(base, ["2", "7"])
    assert specs[1]["options"]["env"] == {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "7"}
    assert specs[0]["options"]["resources"] == {"GPU": 1}
    assert base["options"]["env"] == {"OMP_NUM_THREADS": "1"}  # the shared spec is not changed
    assert "env" not in gpu_worker_specs({"cls": object, "options": {}}, [None])[0]["options"]


def test_local_cluster_workers_each_see_their_own_gpu(monkeypatch) -> None:
    pytest.importorskip("distributed", reason="needs the distributed extra (dask)")
    from lfr_eval.distributed import open_client

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    with open_client(ClusterSpec(workers=2)) as client:
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
        resources = {w["resources"].get("GPU") for w in client.scheduler_info()["workers"].values()}
    assert sorted(seen.values()) == ["4", "6"]
    assert resources == {1}
