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


def test_host_takes_no_fixed_port() -> None:
    """With Dask's usual port 8787 taken (the user's own cluster, the app's cluster) the host
    neither takes it nor warns "Port 8787 is already in use. Perhaps you already have a
    cluster running?" on the user's terminal: its scheduler's HTTP server (Dask starts one
    even without a dashboard) listens on a free port of 127.0.0.1."""
    import socket

    held = socket.socket()
    try:
        held.bind(("127.0.0.1", 8787))
        held.listen()
    except OSError:
        held.close()  # someone else holds it: the port is taken all the same
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    host = subprocess.Popen(
        [sys.executable, "-m", "lfr_eval._dask_host", "--workers", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert host.stdout is not None and host.stdin is not None
    try:
        line = host.stdout.readline().decode()
        assert '"address"' in line, line
        host.stdin.close()  # the driver is done: the host closes the cluster
        host.wait(timeout=60)
        assert host.stderr is not None
        err = host.stderr.read()
    finally:
        held.close()
        if host.poll() is None:
            host.kill()
            host.wait()
    text = err.decode(errors="replace")
    assert host.returncode == 0, text[-3000:]
    assert "already in use" not in text, text[-3000:]
