"""Benchmark the Live page in a real browser: displayed fps, box coverage, time to alert.

Runs the real-browser test (``tests/test_live_browser.py``: headless Chromium, a fake camera
playing a 640x480 scene built from real face photos, WebRTC over loopback inside a private
network namespace, see ``shared/testing_live.md``) in its benchmark mode (``LFR_LIVE_BENCH=1``):
the camera plays at 30 fps with each frame's index stamped on it, and the Live page logs every
frame it receives with the boxes it drew. Reported per run:

- ``displayed_fps_browser``: frames the browser painted in the processed ``<video>`` per second
  (``requestVideoFrameCallback``) over a 10 s window after the first alert;
- ``server_side.callback_fps``: frames that reached the page's frame callback per second;
- ``server_side.box_coverage``: face-frames with a box on the face among face-frames shown,
  from the frame stamps and the scene's ground truth;
- ``server_side.time_to_alert_s``: per passage of the listed person, from its first frame
  reaching the page to the alert; ``alerts_per_passage`` (1 is right);
- ``chromium_webrtc``: Chromium's own WebRTC statistics over the window, for the camera stream
  it sends (``outbound-rtp``: frames encoded per second, its encoder's ms per frame, whether it
  lowered quality for CPU) and the processed stream it receives (``inbound-rtp``: frames
  received, decoded and dropped per second, decode ms per frame): together with the painted
  rate they say where frames are lost (sent, received, decoded, painted);
- ``page_recognition_share``: the page's line on recognition's share (bound, busy and CPU share
  used, steps per second); ``cpu_cores_used``: server, Chromium and the whole machine;
- the machine's load average before and after the window (the machine may be shared).

A run ends after the measurement and the second alert (``LFR_LIVE_BENCH_FULL=1`` walks the
rest of the trainer's path too). ``--cpu-share`` sets the Live page's recognition share
(``LFR_LIVE_CPU_SHARE``).

Scenes (``--faces``): 1 (the listed person alone, then a stranger) or 3 (the listed person with
two strangers, then three strangers). ``--busy N`` keeps N CPU-bound processes running beside
the app (the issue's "another process keeps one core busy"). Targets (issue 14): at least 25
displayed fps with 1-3 faces on 2 cores, at least 15 with one core kept busy; reported, not
asserted. Needs root (network namespace) and Debian's Chromium; each run takes about 2 minutes
(most of it preparing the scene, starting the app and enrolling).

Examples
--------
::

    python benchmarks/bench_live_browser.py --faces 1 3 --busy 0 1 --tag 2core
    python benchmarks/bench_live_browser.py --faces 3 --cpu-share 0.3 0.5 1.0
    python benchmarks/bench_live_browser.py --faces 1 --profile gil   # py-spy, GIL view
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lfr_eval.live._settings import DEFAULT_RECOGNITION_SHARE, ENV_RECOGNITION_SHARE

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"


def run_once(
    engine: str, faces: int, busy: int, profile: str | None, share: float | None = None
) -> dict:
    """One benchmark run of the browser test; its JSON result with the runner's notes."""
    name = f"live_bench_{engine}_{faces}face{'s' if faces != 1 else ''}"
    result_file = ARTIFACTS / f"{name}{'_busy' if busy else ''}.json"
    result_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "LFR_LIVE_BENCH": "1",
        "LFR_LIVE_BENCH_FACES": str(faces),
        "LFR_LIVE_BENCH_BUSY": str(busy),
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    env.pop("LFR_LIVE_BENCH_PROFILE", None)
    env.pop(ENV_RECOGNITION_SHARE, None)
    if share is not None:
        env[ENV_RECOGNITION_SHARE] = str(share)
    if profile:
        env["LFR_LIVE_BENCH_PROFILE"] = profile
    command = [sys.executable, "-m", "pytest", "tests/test_live_browser.py", "-m", "browser"]
    command += ["-k", f"test_live_page_in_a_real_browser and {engine}", "-q", "-p"]
    command += ["no:cacheprovider", "-s"]
    load_before = os.getloadavg()
    start = time.monotonic()
    proc = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if proc.returncode != 0 or not result_file.is_file():
        # reported, not hidden: on an overloaded machine a page step can time out
        print(proc.stdout[-6000:] + proc.stderr[-2000:], file=sys.stderr)
        return {
            "failed": f"the browser test failed ({engine}, {faces} faces, busy {busy}); "
            "its output is above",
            "load_average_before_run": load_before,
            "load_average_after_run": os.getloadavg(),
        }
    result = json.loads(result_file.read_text())
    result["runner"] = {
        "seconds": round(time.monotonic() - start, 1),
        "load_average_before_run": load_before,
        "load_average_after_run": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="dlib", choices=["dlib", "insightface"])
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 3], choices=[1, 3])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy processes")
    parser.add_argument("--profile", choices=["gil", "cpu"], help="py-spy the server")
    parser.add_argument(
        "--cpu-share",
        type=float,
        nargs="+",
        default=[None],
        help="recognition's share of one core on the Live page (LFR_LIVE_CPU_SHARE); "
        f"default the page's, {DEFAULT_RECOGNITION_SHARE}",
    )
    parser.add_argument("--tag", default="", help="suffix of the result files' names")
    parser.add_argument(
        "--out-dir", type=Path, default=REPO / "benchmarks" / "results", help="where to write"
    )
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    runs = [(b, f, c) for c in args.cpu_share for b in args.busy for f in args.faces]
    for busy, faces, share in runs:
        result = run_once(args.engine, faces, busy, args.profile, share)
        name = f"live_browser_{args.engine}_{faces}face{'s' if faces != 1 else ''}"
        name += f"_busy{busy}" if busy else ""
        name += f"_share{share}" if share is not None else ""
        name += f"_{args.tag}" if args.tag else ""
        (args.out_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
        if "failed" in result:
            rows.append(f"{faces} face(s), busy {busy}: FAILED ({result['failed']})")
            print(rows[-1], flush=True)
            continue
        server = result["server_side"]
        rows.append(
            f"{faces} face(s), busy {busy}, share {result.get('recognition_share')}: "
            f"{result['displayed_fps_browser']:.1f} fps painted, "
            f"{server['callback_fps']:.1f} fps at the callback, box coverage "
            f"{server['box_coverage']:.1%}, alerts/passage {server['alerts_per_passage']} "
            f"({server['passages']} passages), time to alert median "
            f"{server['time_to_alert_s_median']} s; page: {result.get('page_recognition_share')};"
            f" CPU cores used {result.get('cpu_cores_used')}; {result['machine']}"
        )
        print(rows[-1], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
