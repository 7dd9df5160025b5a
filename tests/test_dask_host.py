"""The process hosting a local Dask cluster (``python -m lfr_eval._dask_host``) ends cleanly.

Checked with real processes: the host, its nannies' worker processes and their ports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

pytest.importorskip("distributed", reason="needs the distributed extra (dask)")


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc: no extra package)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads processes from /proc")
def test_host_whose_driver_died_while_it_started_exits_without_a_traceback() -> None:
    """The driver was killed (SIGTERM: no clean-up) while the cluster started: the host's
    line with the address meets a closed pipe. It must close the cluster and exit quietly
    (it printed a BrokenPipeError traceback on the user's terminal), leaving no worker."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    host = subprocess.Popen(
        [sys.executable, "-m", "lfr_eval._dask_host", "--workers", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert host.stdout is not None and host.stdin is not None
    host.stdout.close()  # the driver is gone: nobody reads the address
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while host.poll() is None and time.monotonic() < deadline:
            workers.update(_children(host.pid))
            time.sleep(0.1)
        _, err = host.communicate(timeout=60)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
    text = err.decode(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert host.returncode == 1, text[-3000:]
    assert workers, "the host started no process: the test checked nothing"
    time.sleep(2)
    assert not [p for p in workers if _alive(p)], "worker processes outlived their host"
