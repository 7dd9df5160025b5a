"""Embedding and scoring on a Dask cluster (``--scheduler``) or a local one (``--workers N``).

Needs the ``distributed`` extra (``pip install 'lfr-workbench[distributed]'``); nothing here
imports dask until a cluster is actually opened. See :mod:`._cluster` for what moves where.
"""

from __future__ import annotations

from lfr_eval.distributed._cluster import (
    DEFAULT_SHARD_SIZE,
    ClusterError,
    ClusterSpec,
    cluster_active,
    dask_available,
    embed_on_cluster,
    open_client,
    visible_gpus,
    worker_gpu_plan,
)
from lfr_eval.distributed._scoring import score_all_on_cluster, using_cluster
from lfr_eval.distributed._shards import (
    ShardKeys,
    finished_shards,
    read_shard,
    shard_folder,
    write_shard,
)

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "ClusterError",
    "ClusterSpec",
    "ShardKeys",
    "cluster_active",
    "dask_available",
    "embed_on_cluster",
    "finished_shards",
    "open_client",
    "read_shard",
    "score_all_on_cluster",
    "shard_folder",
    "using_cluster",
    "visible_gpus",
    "worker_gpu_plan",
    "write_shard",
]
