"""The GPU scale benchmark's own logic, run on the CPU at a small size (no GPU is needed): it
must keep working for the session that is lent one (``benchmarks/run_gpu_scale.sh``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_scale_gpu  # noqa: E402


def _args(**kw: object) -> argparse.Namespace:
    base = dict(
        device="cpu",
        precision="fp32",
        fillers=1500,
        non_mated=600,
        mated=40,
        thresholds=30,
        check=300,
        memory_gib=1.0,
        out=None,
    )
    base.update(kw)
    return argparse.Namespace(**base)


def test_cpu_smoke_run_matches_the_reference_and_says_it_is_no_gpu_figure() -> None:
    report = bench_scale_gpu.run(_args())
    assert report["case"].startswith("smoke run on the CPU")
    assert report["gpu_peak_memory_gib"] is None
    check = report["check_against_numpy_fp32"]
    # torch fp32 on the CPU gives the evaluation's numbers to float32 rounding
    assert check["top1_subject_agreement"] == 1.0
    assert check["max_abs_top1_score_difference"] < 1e-5
    assert check["max_abs_counts_difference"] <= 1
    assert report["kernel_s"] > 0 and report["roofline_matmul_s"] > 0


def test_mated_searches_find_their_volunteer() -> None:
    v = bench_scale_gpu.npl_vectors(fillers=500, non_mated=50, mated=30)
    sims = v.probes[:30] @ v.gallery.T
    assert (sims.argmax(axis=1) == v.mate_codes[:30]).all()
    assert (v.gallery_groups[:3] == -1).all() and (v.gallery_groups[3:] >= 0).all()


def test_without_cuda_it_stops_with_a_message() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(SystemExit, match="no CUDA on this machine"):
        bench_scale_gpu.run(_args(device="cuda"))
