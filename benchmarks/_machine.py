"""What the benchmark scripts share: the machine they ran on and how they hand back a report.

Imported as ``from _machine import ...``: the scripts run as ``python benchmarks/bench_x.py``, so
this folder is first on ``sys.path`` (the tests that import a benchmark add it too).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import threading
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def finish_report(report: dict, json_path: str | None) -> None:
    """Record the load average at the end, print the report as JSON, and write it to
    ``json_path`` when one was given."""
    report["load_average_end"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n")


class LoadSampler:
    """Samples the 1-minute load average every ``period`` seconds while a run is timed.

    The benchmark machine is shared (other jobs run beside it); the samples say how loaded it
    was during the figure, not only before and after.
    """

    def __init__(self, period: float = 5.0) -> None:
        self.period = period
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.period)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        values = self.samples or [os.getloadavg()[0]]
        return {
            "period_s": self.period,
            "samples": len(values),
            "min": round(min(values), 2),
            "mean": round(sum(values) / len(values), 2),
            "max": round(max(values), 2),
        }


def cpu_seconds_with_children() -> float:
    """CPU seconds (user + system) of this process and every process it started: the ones
    that ended and were waited for (``RUSAGE_CHILDREN``) and the ones still running (their
    own time and that of their ended children, via psutil). The difference of two calls is
    what a run cost in CPU wherever its worker processes ran on this machine."""
    import psutil

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.Error:  # ended meanwhile: RUSAGE_CHILDREN has it once it is waited for
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total
