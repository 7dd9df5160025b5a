"""What the benchmark scripts share: the machine they ran on and how they hand back a report.

Imported as ``from _machine import ...``: the scripts run as ``python benchmarks/bench_x.py``, so
this folder is first on ``sys.path`` (the tests that import a benchmark add it too).
"""

from __future__ import annotations

import json
import os
import platform
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
