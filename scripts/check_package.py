"""Check that the package installs what each user needs and nothing else, in fresh venvs.

Usage: ``python scripts/check_package.py [--keep DIR] [--lfw DIR] [--steps core,app,insightface]``

Each step installs this checkout (``pip install .`` — a normal, non-editable install, as a user
gets it) into a new virtual environment and checks:

core
    ``pip check`` is clean (no complaint at all); exactly one OpenCV distribution (and one
    distribution owning ``cv2``); none of streamlit, streamlit-webrtc,
    insightface, faiss, scikit-learn, torch; ``lfr-eval --help`` works and ``lfr-eval evaluate``
    runs on a few LFW images (skipped, and said so, when LFW is absent).
app
    adds ``[app]``: ``pip check`` still clean, one OpenCV, and ``streamlit run app/Home.py``
    answers its health check.
insightface
    adds ``[insightface]`` (insightface 0.7.3, built from source): ``pip check`` still clean,
    one OpenCV, and the InsightFace engine
    loads a synthetic model pack (``tests/onnx_models.py``) and finds the one face painted for it.

Exit code 0 when every step passed; the first failure is printed with the command's output.
Needs a package index (PyPI) and a few minutes; run by ``tests/test_packaging.py`` (slow).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Distributions that each provide the ``cv2`` package: at most one may be installed.
OPENCV_DISTRIBUTIONS = {
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
}
#: Not in the core install (they belong to extras).
NOT_IN_CORE = {
    "streamlit",
    "streamlit-webrtc",
    "insightface",
    "faiss-cpu",
    "faiss-gpu-cu12",
    "scikit-learn",
    "torch",
    "dask",
}


class CheckFailed(Exception):
    """A check did not hold; the message says which and shows the output."""


def run(cmd: list[str], *, cwd: Path | None = None, timeout: float = 1800) -> str:
    """Run ``cmd``; its stdout+stderr, or :class:`CheckFailed` on a non-zero exit."""
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise CheckFailed(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-4000:]}")
    return output


def installed(python: Path) -> dict[str, str]:
    """Normalised distribution name -> version in the venv of ``python``."""
    listing = json.loads(run([str(python), "-m", "pip", "list", "--format", "json"]))
    return {item["name"].lower().replace("_", "-"): item["version"] for item in listing}


#: Run in the venv: which installed distributions provide the top-level ``cv2`` package.
_CV2_OWNERS = (
    "import json; from importlib import metadata; "
    "print(json.dumps(sorted(set(metadata.packages_distributions().get('cv2', [])))))"
)


def check_common(python: Path, step: str) -> dict[str, str]:
    """``pip check`` fully clean and exactly one distribution owning ``cv2``; returns the
    installed distributions."""
    proc = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    complaints = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        raise CheckFailed(f"{step}: pip check: " + "; ".join(complaints) + proc.stderr[-2000:])
    dists = installed(python)
    opencv = sorted(OPENCV_DISTRIBUTIONS & set(dists))
    owners = json.loads(run([str(python), "-c", _CV2_OWNERS]).strip().splitlines()[-1])
    if len(opencv) != 1 or len(owners) != 1:
        raise CheckFailed(
            f"{step}: expected one OpenCV distribution, found {opencv} "
            f"(distributions owning cv2: {owners})"
        )
    print(f"  {step}: pip check clean; one OpenCV: {opencv[0]} {dists[opencv[0]]}")
    return dists


def pip_install(python: Path, spec: str) -> None:
    start = time.monotonic()
    run([str(python), "-m", "pip", "install", "-q", spec], cwd=ROOT)
    print(f"  pip install {spec}: {time.monotonic() - start:.0f} s")


def step_core(python: Path, lfw: Path | None, work: Path) -> None:
    pip_install(python, ".")
    dists = check_common(python, "core")
    extra = sorted(NOT_IN_CORE & set(dists))
    if extra:
        raise CheckFailed(f"core: installed packages that belong to extras: {extra}")
    bindir = python.parent
    run([str(bindir / "lfr-eval"), "--help"], cwd=work)
    if lfw is None:
        print("  core: lfr-eval evaluate SKIPPED (no LFW folder: pass --lfw or set LFR_LFW_DIR)")
        return
    out = work / "results"
    run(
        [
            str(bindir / "lfr-eval"),
            "evaluate",
            str(lfw),
            "--limit",
            "12",
            "--out",
            str(out),
            "--workspace",
            str(work / "workspace"),
            "--no-cache",
        ],
        cwd=work,
    )
    if not (out / "result.json").is_file():
        raise CheckFailed("core: lfr-eval evaluate wrote no result.json")
    print(f"  core: lfr-eval evaluate on 12 LFW images wrote {out / 'result.json'}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def step_app(python: Path, work: Path) -> None:
    pip_install(python, ".[app]")
    check_common(python, "app")
    port = _free_port()
    env = {**os.environ, "LFR_WORKSPACE": str(work / "workspace")}
    server = subprocess.Popen(
        [
            str(python),
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app" / "Home.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CheckFailed(f"app: streamlit exited {server.returncode}")
            try:
                url = f"http://127.0.0.1:{port}/_stcore/health"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        print(f"  app: streamlit answers on port {port}")
                        return
            except OSError:
                time.sleep(0.5)
        raise CheckFailed("app: streamlit did not answer its health check within 90 s")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def step_insightface(python: Path, work: Path) -> None:
    pip_install(python, ".[insightface]")
    dists = check_common(python, "insightface")
    print(f"  insightface: insightface {dists.get('insightface', 'MISSING')}")
    script = (
        "import sys, numpy as np\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from pathlib import Path\n"
        "from onnx_models import build_arcface_like, build_scrfd_like, paint_face_cell\n"
        "from lfr_eval.faces import load_engine\n"
        f"pack = Path({str(work)!r}) / 'packs' / 'tiny'\n"
        "pack.mkdir(parents=True)\n"
        "build_scrfd_like(pack / 'det_10g.onnx')\n"
        "build_arcface_like(pack / 'w600k_r50.onnx')\n"
        "engine = load_engine('insightface', model_pack=str(pack))\n"
        "image = np.zeros((480, 640, 3), np.uint8)\n"
        "paint_face_cell(image, col=8, row=6)\n"
        "faces = engine.analyze(image)\n"
        "assert len(faces) == 1, faces\n"
        "print('insightface engine found the painted face:', faces[0].embedding.shape)\n"
    )
    out = run([str(python), "-c", script], cwd=work)
    print("  " + out.strip().splitlines()[-1])


STEPS = ("core", "app", "insightface")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="make the venv here and keep it")
    parser.add_argument("--lfw", type=Path, default=None, help="LFW folder (images/, labels/)")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps")
    args = parser.parse_args(argv)
    steps = [s for s in args.steps.split(",") if s]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; known: {', '.join(STEPS)}")
    lfw = args.lfw
    if lfw is None:
        env = os.environ.get("LFR_LFW_DIR")
        candidate = Path(env) if env else ROOT.parent / "shared" / "datasets" / "lfw"
        lfw = candidate if (candidate / "images").is_dir() else None

    with tempfile.TemporaryDirectory(prefix="lfr-check-package-") as tmp:
        work = Path(tmp)
        venv = args.keep or work / "venv"
        try:
            run([sys.executable, "-m", "venv", "--clear", str(venv)])
            python = venv / "bin" / "python"
            for step in steps:
                print(f"[{step}]")
                if step == "core":
                    step_core(python, lfw, work)
                elif step == "app":
                    step_app(python, work)
                else:
                    step_insightface(python, work)
        except CheckFailed as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
    print("package checks passed: " + ", ".join(steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
