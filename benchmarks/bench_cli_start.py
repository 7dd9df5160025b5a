"""Benchmark how long ``lfr-eval --help`` takes, against the interpreter alone and ``import click``.

Each figure is the median wall time of ``--repeats`` fresh processes, started one after the other
(alternating the three commands, so a change in the machine's load hits all three alike):

- ``python``: ``python -c pass`` (the interpreter starting and stopping);
- ``click``: ``python -c "import click"`` (the least the command group needs);
- ``lfr_eval_help``: ``python -m lfr_eval --help`` (the console script does the same import).

The target (issue 13): ``lfr_eval_help`` under 0.3 s. What the help imports (no numpy, pandas,
cv2…) is checked by tests/test_imports.py, not here.

Examples
--------
The figures for benchmarks/RESULTS.md (about 10 s)::

    python benchmarks/bench_cli_start.py --repeats 15
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python": [sys.executable, "-c", "pass"],
    "click": [sys.executable, "-c", "import click"],
    "lfr_eval_help": [sys.executable, "-m", "lfr_eval", "--help"],
}
TARGET_S = 0.3


def time_once(command: list[str]) -> float:
    """Wall seconds of one run of ``command`` (output discarded; a failure raises)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs per command")
    parser.add_argument("--json", type=Path, default=None, help="write the timings here")
    args = parser.parse_args(argv)
    for command in COMMANDS.values():  # untimed: the OS file cache holds every module
        time_once(command)
    runs: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            runs[name].append(time_once(command))
    medians = {name: statistics.median(times) for name, times in runs.items()}
    for name, median in medians.items():
        print(f"{name:14s} median {median:.3f} s  (min {min(runs[name]):.3f} s)")
    verdict = "met" if medians["lfr_eval_help"] < TARGET_S else "NOT met"
    print(f"lfr-eval --help: {medians['lfr_eval_help']:.3f} s, target < {TARGET_S} s: {verdict}")
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": runs, "median": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
