"""NPL-scale scoring on one GPU: the torch kernel against the GPU's own matmul (issue 10).

The issue's GPU benchmark: 200,000 fillers × (150,000 non-mated + 4,000 mated) searches, 128-d,
1,000 thresholds, 4 count groups, top-20, through the same kernel the evaluation runs
(:func:`lfr_eval.search._blocks.score_probes` with the torch backend, fp16 by default; target
under 30 s), then, in the same process on the same GPU, the roofline: the raw product of the
same probes × gallery in the same precision, written to a reused buffer and nothing else kept
(``torch.mm`` with ``out=``, timed between CUDA synchronisations). Recorded: both times, their
ratio, the GPU's peak memory, and a check of the fp16 numbers against the numpy fp32 kernel on
the first ``--check`` probes (top-1 subject agreement, largest score difference, counts cells
that differ: fp16 products round about 1e-3 from fp32, so a score near a threshold can change
bin).

It stops at once without CUDA: nothing here runs on the CPU instead, except ``--device cpu``,
a small smoke run that keeps the script honest where no GPU is lent (its figures are not GPU
figures and say so).

Usage (on the GPU machine; ``benchmarks/run_gpu_scale.sh`` wraps it)::

    python benchmarks/bench_scale_gpu.py --out benchmarks/results/bench_scale_gpu_h200.json
    python benchmarks/bench_scale_gpu.py --device cpu --precision fp32 --fillers 3000 \\
        --non-mated 2000 --mated 100 --thresholds 50 --check 500

Embeddings are random (one direction per subject plus noise): no face data is involved.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from _machine import cpu_model, finish_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Count groups of the NPL benchmark (as ``bench_scale.py npl``).
N_GROUPS = 4
#: Candidates kept per search.
TOP_K = 20


@dataclass(frozen=True)
class NplVectors:
    """Synthetic NPL-sized unit embeddings (float32): the gallery (volunteers' enrolment
    templates, then fillers) and the probes (mated searches, then non-mated)."""

    gallery: np.ndarray  # (n_volunteers + fillers, d)
    gallery_groups: np.ndarray  # (n_volunteers + fillers,) int: -1 volunteers (not counted)
    probes: np.ndarray  # (mated + non_mated, d)
    mate_codes: np.ndarray  # (mated + non_mated,) gallery subject code of the mate, -1: none


def npl_vectors(fillers: int, non_mated: int, mated: int, dim: int = 128) -> NplVectors:
    """One direction per subject; a volunteer's searches are its direction plus noise (so
    mated searches find their mate), non-mated searches and fillers are random directions."""
    rng = np.random.default_rng(0)
    n_vol = max(1, mated // 10)
    centres = rng.standard_normal((n_vol, dim), dtype=np.float32)
    gallery = np.concatenate([centres, rng.standard_normal((fillers, dim), dtype=np.float32)])
    owner = np.arange(mated) % n_vol
    searches = centres[owner] + 0.6 * rng.standard_normal((mated, dim), dtype=np.float32)
    probes = np.concatenate([searches, rng.standard_normal((non_mated, dim), dtype=np.float32)])
    for x in (gallery, probes):
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    # fillers in 4 count groups; the volunteers are searched but not counted, as in the NPL
    groups = np.concatenate([np.full(n_vol, -1), rng.integers(0, N_GROUPS, fillers)])
    return NplVectors(
        gallery=gallery,
        gallery_groups=groups.astype(np.int64),
        probes=probes,
        mate_codes=np.concatenate([owner, np.full(non_mated, -1)]).astype(np.int64),
    )


@dataclass(frozen=True)
class FpCheck:
    """The torch run's numbers against a fp32 reference on the same first probes."""

    reference: str  # which kernel the numbers are compared with
    probes: int
    top1_subject_agreement: float  # share of probes, 0–1
    max_abs_top1_score_difference: float  # cosine units
    counts_cells_differing: float  # share of (probe, group, threshold) cells, 0–1
    max_abs_counts_difference: int  # subjects


def _gallery(v: NplVectors):  # noqa: ANN202 - lfr_eval's Gallery, imported late
    from lfr_eval.search._kernel import Gallery

    ids = np.array([f"g{i:07d}" for i in range(len(v.gallery))])
    return Gallery.build(v.gallery, ids, subject_groups=v.gallery_groups, n_groups=N_GROUPS)


def _sync(torch, device: str) -> None:  # noqa: ANN001 - the torch module
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def roofline_s(
    probes: np.ndarray, gallery: np.ndarray, device: str, precision: str, rows: int = 8192
) -> float:
    """Seconds for the raw product probes × galleryᵀ on ``device`` in ``precision``, block of
    ``rows`` probes at a time into one reused output buffer (inputs already on the device, as
    the kernel keeps its gallery there; the probes' transfer is timed, as the kernel's is)."""
    import torch

    dtype = torch.float16 if precision == "fp16" else torch.float32
    g = torch.from_numpy(gallery).to(device, dtype)
    out = torch.empty((rows, g.shape[0]), dtype=dtype, device=device)
    first = torch.from_numpy(probes[:rows]).to(device, dtype)
    torch.mm(first, g.T, out=out[: first.shape[0]])
    _sync(torch, device)  # the first product (library load, autotuning) is not the floor
    start = time.perf_counter()
    for a in range(0, len(probes), rows):
        p = torch.from_numpy(probes[a : a + rows]).to(device, dtype)
        torch.mm(p, g.T, out=out[: p.shape[0]])
    _sync(torch, device)
    return time.perf_counter() - start


def fp_check(v: NplVectors, thresholds: np.ndarray, device: str, precision: str, n: int) -> FpCheck:
    """Score the first ``n`` probes with the torch backend and with the numpy fp32 kernel
    (the evaluation's reference); where numba, which the numpy kernel compiles with, is not
    installed (a bare GPU machine), the reference is the torch kernel in IEEE fp32 on the same
    device, and the report says so."""
    import importlib.util

    from lfr_eval.search._kernel import kernel_backend, score_block

    if importlib.util.find_spec("numba") is not None:
        reference, ref_backend = "numpy fp32 kernel", kernel_backend("numpy")
    else:
        reference = f"torch fp32 kernel on {device} (numba is not installed here)"
        ref_backend = kernel_backend("torch", device, "fp32")
    gal = _gallery(v)
    probes, mates = v.probes[:n], v.mate_codes[:n]
    ref, got = (
        score_block(probes, gal, k=TOP_K, thresholds=thresholds, mate_codes=mates, backend=be)
        for be in (ref_backend, kernel_backend("torch", device, precision))  # type: ignore[arg-type]
    )
    assert ref.counts is not None and got.counts is not None
    diff = np.abs(ref.counts.astype(np.int64) - got.counts.astype(np.int64))
    return FpCheck(
        reference=reference,
        probes=n,
        top1_subject_agreement=float(np.mean(ref.top_subjects[:, 0] == got.top_subjects[:, 0])),
        max_abs_top1_score_difference=float(
            np.max(np.abs(ref.top_scores[:, 0].astype(np.float64) - got.top_scores[:, 0]))
        ),
        counts_cells_differing=float(np.mean(diff > 0)),
        max_abs_counts_difference=int(diff.max(initial=0)),
    )


def run(args: argparse.Namespace) -> dict:
    """The kernel on the whole design, the roofline, the fp check: one report."""
    import torch

    from lfr_eval.search._blocks import score_probes
    from lfr_eval.search._kernel import kernel_backend

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            "no CUDA on this machine (torch.cuda.is_available() is False): nothing to measure; "
            "run with --device cpu for a smoke run"
        )
    v = npl_vectors(args.fillers, args.non_mated, args.mated)
    thresholds = np.round(np.linspace(-1.0, 1.0, args.thresholds), 6)
    gal = _gallery(v)
    backend = kernel_backend("torch", args.device, args.precision)  # type: ignore[arg-type]
    # the gallery's device copy and CUDA's libraries loaded before the clock starts
    score_probes(v.probes[:512], gal, k=TOP_K, thresholds=thresholds, backend=backend)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="bench-scale-gpu-") as work:
        start = time.perf_counter()
        part = score_probes(
            v.probes,
            gal,
            k=TOP_K,
            thresholds=thresholds,
            mate_codes=v.mate_codes,
            backend=backend,
            memory_bytes=int(args.memory_gib * 2**30),
            work_dir=work,
        )
        _sync(torch, args.device)
        kernel_s = time.perf_counter() - start
        assert part.counts is not None
        del part
    floor_s = roofline_s(v.probes, v.gallery, args.device, args.precision)
    check = fp_check(v, thresholds, args.device, args.precision, min(args.check, len(v.probes)))
    on_gpu = args.device.startswith("cuda")
    return {
        "case": "npl-gpu" if on_gpu else "smoke run on the CPU (NOT a GPU figure)",
        "device": torch.cuda.get_device_name(0) if on_gpu else cpu_model(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "precision": args.precision,
        "fillers": args.fillers,
        "non_mated": args.non_mated,
        "mated": args.mated,
        "gallery_templates": len(v.gallery),
        "thresholds": args.thresholds,
        "groups": N_GROUPS,
        "top_k": TOP_K,
        "kernel_s": round(kernel_s, 3),
        "roofline_matmul_s": round(floor_s, 4),
        "ratio_to_roofline": round(kernel_s / floor_s, 2),
        "target_kernel_s": 30.0,
        "gpu_peak_memory_gib": (
            round(torch.cuda.max_memory_allocated() / 2**30, 3) if on_gpu else None
        ),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "check_against_numpy_fp32": asdict(check),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    parser.add_argument("--fillers", type=int, default=200_000)
    parser.add_argument("--non-mated", type=int, default=150_000)
    parser.add_argument("--mated", type=int, default=4_000)
    parser.add_argument("--thresholds", type=int, default=1_000)
    parser.add_argument("--check", type=int, default=2_048, help="probes checked against fp32")
    parser.add_argument("--memory-gib", type=float, default=16.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    finish_report(run(args), args.out)


if __name__ == "__main__":
    main()
