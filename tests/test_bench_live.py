"""The live benchmark's GPU mode (``benchmarks/bench_live.py --hd``): its scene, and its refusal
to run on the CPU when CUDA is asked for and absent."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import bench_live  # noqa: E402


def test_hd_scene_holds_ten_whole_faces_apart() -> None:
    photo = np.full((250, 250, 3), 128, np.uint8)
    people = bench_live.People({"a": (photo, photo), "b": (photo, photo)}, [photo] * 9, "test")
    scene, truth = bench_live.build_scene(people, 6.0, 30.0, group_size=10, size=(1920, 1080))
    assert scene.size == (1920, 1080) and len(truth) == 2  # one listed person per group
    for t in (0.5, 2.9):  # entering, and about to leave after drifting right
        rects = [rect for _, rect in scene.placements(t)]
        assert len(rects) == 10
        for rect in rects:
            assert rect[2] - rect[0] == 300 and rect[3] - rect[1] == 300  # whole, in frame
        for i, a in enumerate(rects):
            for b in rects[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
        assert scene.box_coverage(t, np.zeros((0, 4))) == (10, 0)
        assert scene.box_coverage(t, np.stack(rects)) == (10, 10)


def test_gpu_mode_without_a_gpu_is_refused_not_run_on_the_cpu(capsys, tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is available here: the refusal cannot be shown")
    from live_support import build_synthetic_pack

    pack = build_synthetic_pack(tmp_path / "pack")
    for engine in (
        ["--engine", "dlib-torch", "--dlib-detector", "cnn", "--runtime", "torch"],
        ["--engine", "dlib", "--runtime", "onnxruntime"],
        # detector and recognizer both in PyTorch: refused as a whole, never half on the CPU
        ["--engine", "insightface", "--runtime", "torch", "--model-pack", str(pack)],
    ):
        code = bench_live.main(["--hd", "--quick", "--device", "cuda", *engine])
        assert code == 2
        err = capsys.readouterr().err
        assert "RuntimeUnavailableError" in err and "cuda" in err.lower(), err


def test_models_that_find_no_real_face_are_refused_clearly(capsys, tmp_path) -> None:
    """The benchmark enrols real photos: a test-built InsightFace pack (which "detects" only
    white squares) is refused with a message, not a traceback from an empty enrolment."""
    from live_support import build_synthetic_pack

    pack = build_synthetic_pack(tmp_path / "pack")
    code = bench_live.main(
        ["--quick", "--engine", "insightface", "--runtime", "torch", "--model-pack", str(pack)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "finds no face" in err and "test-built InsightFace pack" in err, err


def test_uncovered_face_frames_are_told_apart_by_the_steps_before_them() -> None:
    """The box-coverage breakdown: a face without a box is waiting for its first detection
    step, missed by the detector (never, or in the latest step), or found and not drawn."""
    photo = np.full((100, 100, 3), 128, np.uint8)
    scene = bench_live.SceneScript(
        (bench_live.FaceAppearance(photo, 1.0, 3.0, 100, 100, width=100),),
        duration_s=3.0,
        fps=10,
    )
    on_face, elsewhere = np.array([[120, 120, 180, 180.0]]), np.array([[400, 300, 460, 360.0]])
    reason = bench_live.uncovered_reason
    assert reason(scene, 0, [(0.5, on_face)]) == "no_step_since_entry"  # before it entered
    assert reason(scene, 0, [(1.0, elsewhere), (1.1, np.zeros((0, 4)))]) == "never_detected"
    assert reason(scene, 0, [(1.0, on_face), (1.1, elsewhere)]) == "missed_by_latest_step"
    assert reason(scene, 0, [(1.0, elsewhere), (1.1, on_face)]) == "detected_not_drawn"
