"""The process that hosts a local Dask cluster (``--workers N``) for a driver.

Why a process of its own: a local cluster's worker processes are *spawned* by their nannies,
and a spawned process re-imports the ``__main__`` module of the process that started it. Under
Streamlit ``__main__`` is the page script, which must not run in a worker (it dies there). The
driver can hide its ``__main__`` while the workers start, but a worker that dies later is
restarted by its nanny at any time, and Streamlit's own threads set ``__main__`` to the
running page again. So the scheduler and the nannies live here instead: this module is
``__main__`` of the host (``python -m lfr_eval._dask_host``), which replaces
itself in ``sys.modules`` by a bare module for its whole life (nothing else runs here), so a
spawned worker imports nothing of the host's, and the driver never spawns anything. It lives
outside :mod:`lfr_eval.distributed` so that starting it does not import that package (pandas
and the embedding code: a second on a small machine) unless GPUs are planned.

Protocol: the host starts the cluster and writes one JSON line on stdout, ``{"address":
"tcp://127.0.0.1:PORT"}`` once every worker is up, or ``{"error": "..."}``; it then keeps the
cluster until its stdin closes (the driver is done, or died), and closes it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import types
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from distributed import LocalCluster


def _start(workers: int, plan: list[str | None], timeout_s: float) -> LocalCluster:
    from distributed import LocalCluster

    # one thread per worker process: dlib and onnxruntime get their threads from
    # set_cpu_threads (cores / workers), not from Dask's thread pool
    cluster = LocalCluster(
        n_workers=0 if any(plan) else workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # Dask starts the scheduler's HTTP server (health, metrics) even without a dashboard,
        # by default on 8787: a free port instead, so that a second cluster (the app's, the
        # user's own) neither loses its port to it nor makes it warn on the terminal
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
    )
    if any(plan):
        from lfr_eval.distributed._cluster import gpu_worker_specs

        # one GPU per worker process: the workers differ only by their environment
        cluster.worker_spec.update(gpu_worker_specs(cluster.new_spec, plan))
        cluster.scale(len(plan))
        try:
            cluster.wait_for_workers(len(plan), timeout=timeout_s)
        except TimeoutError:
            cluster.close()
            raise TimeoutError(
                f"the local cluster's {len(plan)} workers did not start within "
                f"{timeout_s:.0f} s; nothing was computed"
            ) from None
    return cluster


def _tell(channel: TextIO, message: dict[str, str]) -> bool:
    """Write the one JSON line to the driver; False when it is gone (its pipe closed).

    A driver killed while the cluster started (SIGTERM, SIGKILL: no clean-up of its own)
    leaves the pipe closed; the host then closes the cluster and exits quietly, not with a
    traceback on the user's terminal.
    """
    try:
        with channel:
            channel.write(json.dumps(message) + "\n")
    except OSError:  # BrokenPipeError, raised by the write or by the flush on close
        with contextlib.suppress(OSError):
            channel.close()
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--gpu-plan", default="[]", help="JSON list: CUDA_VISIBLE_DEVICES each")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--sys-path", default=None, help="JSON list: the driver's sys.path")
    args = parser.parse_args(argv)
    if args.sys_path:
        # what a process the driver spawned would have had: its workers import the tasks'
        # code (an engine factory in the driver's own modules) from where the driver did
        sys.path[:] = json.loads(args.sys_path)
    plan = json.loads(args.gpu_plan) or [None] * args.workers
    # the spawned workers re-import __main__ (this module) unless it is bare; nothing here
    # needs it
    sys.modules["__main__"] = types.ModuleType("__main__")
    # stdout is the pipe the driver reads one line from: whatever the host and its workers
    # print goes to stderr instead (a full pipe nobody reads would block them)
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        cluster = _start(args.workers, plan, args.timeout)
    except Exception as exc:  # the driver turns this into a ClusterError
        _tell(channel, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    try:
        if not _tell(channel, {"address": cluster.scheduler_address}):
            return 1  # the driver died while the cluster started: nobody will use it
        sys.stdin.read()  # returns when the driver closes the pipe or dies
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
